//! [`Sender<T>`]: sends fixed-size plain-data values, by copy or in place.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use ringway_ring::Wait;

use crate::capacity::Size;
use crate::endpoint::{Endpoint, endpoint_methods};
use crate::error::{Error, SendError};
use crate::message::MessageType;
use crate::options::{Address, ChannelOptions};
use crate::raw::TxGrant;
use crate::segment::{Shared, Tx};
use crate::shape::Message;

/// The sending end of a typed channel: values of `T` cross to another process by a single
/// copy into shared memory (or none, with [`loan`](Sender::loan)).
///
/// `T` is bounded by [`Message`]: plain data in which every bit pattern is a valid value, so
/// whatever the other process writes is a valid `T` for this one. Derive it
/// (`#[derive(Message)]`, which checks this at compile time), or use a `bytemuck::Pod` type.
/// Types with pointers, references, `bool`, `char`, enums or padding are refused at compile
/// time:
///
/// ```compile_fail,E0599
/// # use ringway_channel::{ChannelOptions, Sender};
/// let tx = Sender::<String>::create("/not-plain-data", &ChannelOptions::new());
/// ```
///
/// ```compile_fail,E0277
/// # use ringway_channel::{ChannelOptions, Sender};
/// // A `bool` has invalid bit patterns, so this struct cannot be a `Message`: the derive fails.
/// #[derive(ringway_channel::Message)]
/// #[repr(C)]
/// struct Order { qty: u32, buy: bool, _pad: [u8; 3] }
/// let tx = Sender::<Order>::create("/not-plain-data", &ChannelOptions::new());
/// ```
///
/// The same struct with the flag as a `u32` is accepted:
///
/// ```
/// # use ringway_channel::{ChannelOptions, Sender};
/// #[derive(ringway_channel::Message)]
/// #[repr(C)]
/// struct Order { qty: u32, buy: u32 }
/// # let name = format!("/ringway-doc-plain-{}", std::process::id());
/// let tx = Sender::<Order>::create(&name, &ChannelOptions::new())?;
/// # Ok::<(), ringway_channel::Error>(())
/// ```
///
/// # Examples
/// ```
/// use ringway_channel::{ChannelOptions, Receiver, Sender};
/// # let name = format!("/ringway-doc-sender-{}", std::process::id());
/// let mut tx = Sender::<[u64; 2]>::create(&name, &ChannelOptions::new())?;
/// let mut rx = Receiver::<[u64; 2]>::open(&name, &ChannelOptions::new())?; // usually another process
/// tx.send([1, 2])?;
/// assert_eq!(rx.recv()?, [1, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Sender<T> {
    pub(crate) ep: Endpoint<Tx>,
    _type: PhantomData<fn(T)>,
}

impl<T: Message> Sender<T> {
    /// Creates the channel `address` (a POSIX shm name such as `"/ticks"`, or an
    /// [`Address`]) and attaches as its sender. The receiver opens it by the same address.
    ///
    /// # Errors
    /// [`Error::Region`] if the name is taken or invalid (the message says how to proceed),
    /// [`Error::Config`] for impossible sizes.
    pub fn create(address: impl Into<Address>, opts: &ChannelOptions) -> Result<Sender<T>, Error> {
        let message = MessageType::of::<T>(opts.type_name.as_deref());
        Endpoint::create(address.into(), message, opts).map(Sender::wrap)
    }

    /// Opens the channel `address`, waiting up to the open timeout for its creator, and
    /// attaches as its sender.
    ///
    /// # Errors
    /// [`Error::NotFound`] after the timeout, [`Error::TypeMismatch`] if the channel carries
    /// another type, [`Error::FlavourMismatch`], [`Error::Attach`] if its sender is taken.
    pub fn open(address: impl Into<Address>, opts: &ChannelOptions) -> Result<Sender<T>, Error> {
        let message = MessageType::of::<T>(opts.type_name.as_deref());
        Endpoint::open(&address.into(), message, opts).map(Sender::wrap)
    }

    pub(crate) fn attach(shared: &Arc<Shared>) -> Result<Sender<T>, Error> {
        Endpoint::attach(shared).map(Sender::wrap)
    }

    fn wrap(ep: Endpoint<Tx>) -> Sender<T> {
        Sender {
            ep,
            _type: PhantomData,
        }
    }

    fn with_endpoint(&self, ep: Endpoint<Tx>) -> Sender<T> {
        Sender::wrap(ep)
    }

    /// Sends `value`, waiting for room as long as a receiver is alive.
    ///
    /// # Errors
    /// [`SendError::Disconnected`] once no receiver is left, [`SendError::Corrupted`].
    pub fn send(&mut self, value: T) -> Result<(), SendError<T>> {
        self.send_with(value, Wait::Forever)
    }

    /// Sends `value` if there is room now.
    ///
    /// # Errors
    /// [`SendError::Full`], [`SendError::Disconnected`], [`SendError::Corrupted`].
    pub fn try_send(&mut self, value: T) -> Result<(), SendError<T>> {
        self.send_with(value, Wait::Try)
    }

    /// Sends `value`, waiting up to `timeout` for room.
    ///
    /// # Errors
    /// [`SendError::Timeout`], [`SendError::Disconnected`], [`SendError::Corrupted`].
    pub fn send_timeout(&mut self, value: T, timeout: Duration) -> Result<(), SendError<T>> {
        self.send_with(value, Wait::For(timeout))
    }

    fn send_with(&mut self, value: T, wait: Wait) -> Result<(), SendError<T>> {
        let size = core::mem::size_of::<T>();
        match self.ep.ring.reserve(size, wait) {
            Ok(mut grant) => {
                let ptr = grant.as_mut_ptr().cast::<T>();
                // SAFETY: the grant is valid for writes of `size_of::<T>()` bytes until it is
                // committed; `write_unaligned` needs no alignment, and the bytes are written
                // through a raw pointer, never a reference.
                unsafe { ptr.write_unaligned(value) };
                grant.commit_partial(size);
                Ok(())
            }
            Err(e) => Err(SendError::from_push(e, value, &self.ep.name)),
        }
    }

    /// Sends every value of `values`, waiting for room as long as a receiver is alive, and
    /// publishes them together: an SPSC channel makes them visible with one store and one
    /// wake check (more only when the ring fills up meanwhile); an MPMC channel publishes each
    /// slot as it is written and checks for sleeping receivers once. Faster than a loop of
    /// [`send`](Sender::send) when values come in bursts, at the price of the first value's
    /// latency.
    ///
    /// # Examples
    /// ```
    /// use ringway_channel::{ChannelOptions, Receiver, Sender};
    /// # let name = format!("/ringway-doc-send-batch-{}", std::process::id());
    /// let mut tx = Sender::<u64>::create(&name, &ChannelOptions::new().capacity(64))?;
    /// let mut rx = Receiver::<u64>::open(&name, &ChannelOptions::new())?;
    /// tx.send_batch(&[7; 32])?;
    /// assert_eq!(rx.try_iter().count(), 32);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`send`](Sender::send); the error's value is how many values were sent (and
    /// published) before it.
    pub fn send_batch(&mut self, values: &[T]) -> Result<(), SendError<usize>> {
        self.send_batch_with(values, Wait::Forever).map(drop)
    }

    /// Sends as many values of `values` as there is room for now, in one publication;
    /// returns how many (a prefix of `values`: send the rest later).
    ///
    /// # Errors
    /// [`SendError::Full`] (with value `0`) if there is no room for one; otherwise as
    /// [`try_send`](Sender::try_send), with the count sent before the error.
    pub fn try_send_batch(&mut self, values: &[T]) -> Result<usize, SendError<usize>> {
        self.send_batch_with(values, Wait::Try)
    }

    /// Like [`send_batch`](Sender::send_batch), waiting up to `timeout` in all for room.
    ///
    /// # Errors
    /// As [`send_timeout`](Sender::send_timeout), with the count sent before the error.
    pub fn send_batch_timeout(
        &mut self,
        values: &[T],
        timeout: Duration,
    ) -> Result<(), SendError<usize>> {
        self.send_batch_with(values, Wait::For(timeout)).map(drop)
    }

    fn send_batch_with(&mut self, values: &[T], wait: Wait) -> Result<usize, SendError<usize>> {
        let ring = &mut self.ep.ring;
        let sent = crate::batch::send_each(ring, values.iter(), wait, |ring, value, wait| {
            ring.push_deferred(crate::batch::bytes_of(value), wait)
        });
        sent.map_err(|(e, n)| SendError::from_push(e, n, &self.ep.name))
    }

    /// Lends the next message's place in shared memory, waiting for room as long as a receiver
    /// is alive: write the value in place, then [`commit`](Loan::commit).
    ///
    /// # Errors
    /// As [`send`](Sender::send), with nothing to hand back.
    pub fn loan(&mut self) -> Result<Loan<'_, T>, SendError<()>> {
        self.loan_with(Wait::Forever)
    }

    /// Like [`loan`](Sender::loan), without waiting.
    ///
    /// # Errors
    /// As [`try_send`](Sender::try_send), with nothing to hand back.
    pub fn try_loan(&mut self) -> Result<Loan<'_, T>, SendError<()>> {
        self.loan_with(Wait::Try)
    }

    fn loan_with(&mut self, wait: Wait) -> Result<Loan<'_, T>, SendError<()>> {
        let grant = self
            .ep
            .ring
            .reserve(core::mem::size_of::<T>(), wait)
            .map_err(|e| SendError::from_push(e, (), &self.ep.name))?;
        Ok(Loan {
            grant,
            _type: PhantomData,
        })
    }

    endpoint_methods!("receiver");

    fn size(&self) -> Size {
        Size::typed(&self.ep.shared().geometry, core::mem::size_of::<T>())
    }
}

/// The place of one message in shared memory, lent by [`Sender::loan`].
///
/// Its bytes are unspecified until written (every bit pattern is a valid `T`). Dropping it
/// without [`commit`](Loan::commit) sends nothing.
#[derive(Debug)]
#[must_use = "a loan sends nothing until committed"]
pub struct Loan<'a, T> {
    grant: TxGrant<'a>,
    _type: PhantomData<T>,
}

impl<T: Message> Loan<'_, T> {
    /// Writes the whole value in place.
    pub fn write(&mut self, value: T) {
        let ptr = self.grant.as_mut_ptr().cast::<T>();
        // SAFETY: the grant is valid for writes of size_of::<T>() bytes; unaligned write.
        unsafe { ptr.write_unaligned(value) };
    }

    /// Copies `bytes` into the message at byte `offset` (to fill a large value piecewise).
    ///
    /// # Panics
    /// If the range exceeds `size_of::<T>()`.
    pub fn write_bytes(&mut self, offset: usize, bytes: &[u8]) {
        self.grant.write(offset, bytes);
    }

    /// A pointer to the message in shared memory, aligned for `T`, valid for writes until the
    /// loan is committed or dropped. `T`'s alignment must be at most 8 (checked at compile
    /// time): messages start on 8-byte boundaries.
    pub fn as_mut_ptr(&mut self) -> *mut T {
        const {
            assert!(
                core::mem::align_of::<T>() <= 8,
                "a loaned T must have alignment <= 8"
            )
        };
        self.grant.as_mut_ptr().cast::<T>()
    }

    /// The message as `&mut T`, to build it field by field in place.
    ///
    /// # Safety
    /// No other process may access these bytes while the reference lives. A correct ringway
    /// receiver never does (the place is free space until committed); a buggy or hostile
    /// process with the mapping could, which would be undefined behaviour here. Use
    /// [`write`](Loan::write) or [`as_mut_ptr`](Loan::as_mut_ptr) when the other side is not
    /// trusted.
    pub unsafe fn as_mut(&mut self) -> &mut T {
        let ptr = self.as_mut_ptr();
        // SAFETY: aligned (as_mut_ptr's compile-time check; messages start 8-aligned),
        // valid for size_of::<T>() bytes, initialised (mapping bytes always are) with a valid
        // T (Message: any bits), and exclusive per the caller's promise.
        unsafe { &mut *ptr }
    }

    /// Sends the message.
    pub fn commit(self) {
        let size = self.grant.len();
        self.grant.commit_partial(size);
    }
}
