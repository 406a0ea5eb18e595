//! [`Receiver<T>`]: receives fixed-size plain-data values, by copy or in place, and as an
//! iterator.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use ringway_ring::{Corruption, Wait};

use crate::capacity::Size;
use crate::endpoint::{Endpoint, endpoint_methods};
use crate::error::{Error, RecvError};
use crate::message::MessageType;
use crate::options::{Address, ChannelOptions};
use crate::raw::RxGrant;
use crate::segment::{Rx, Shared};
use crate::shape::Message;

/// The receiving end of a typed channel.
///
/// Messages are checked as they are taken: one whose length is not `size_of::<T>()` (a buggy
/// or hostile sender) is released and reported as [`RecvError::Corrupted`], never read.
///
/// # Examples
/// ```
/// use ringway_channel::{ChannelOptions, Receiver, Sender};
/// # let name = format!("/ringway-doc-receiver-{}", std::process::id());
/// let mut rx = Receiver::<u64>::create(&name, &ChannelOptions::new())?; // either side creates
/// let mut tx = Sender::<u64>::open(&name, &ChannelOptions::new())?;
/// for i in 0..3 {
///     tx.send(i)?;
/// }
/// drop(tx); // the receiver drains, then sees the channel disconnected
/// assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Receiver<T> {
    pub(crate) ep: Endpoint<Rx>,
    /// An error met by a batch after it had received something: the batch returns what it
    /// has, and the next call reports this (see [`recv_batch`](Receiver::recv_batch)).
    stashed: Option<RecvError>,
    _type: PhantomData<fn() -> T>,
}

impl<T: Message> Receiver<T> {
    /// Creates the channel `address` and attaches as its receiver (see [`Sender::create`](crate::Sender::create)).
    ///
    /// # Errors
    /// As [`Sender::create`](crate::Sender::create).
    pub fn create(
        address: impl Into<Address>,
        opts: &ChannelOptions,
    ) -> Result<Receiver<T>, Error> {
        let message = MessageType::of::<T>(opts.type_name.as_deref());
        Endpoint::create(address.into(), message, opts).map(Receiver::wrap)
    }

    /// Opens the channel `address`, waiting up to the open timeout for its creator, and
    /// attaches as its receiver.
    ///
    /// # Errors
    /// As [`Sender::open`](crate::Sender::open).
    pub fn open(address: impl Into<Address>, opts: &ChannelOptions) -> Result<Receiver<T>, Error> {
        let message = MessageType::of::<T>(opts.type_name.as_deref());
        Endpoint::open(&address.into(), message, opts).map(Receiver::wrap)
    }

    pub(crate) fn attach(shared: &Arc<Shared>) -> Result<Receiver<T>, Error> {
        Endpoint::attach(shared).map(Receiver::wrap)
    }

    fn wrap(ep: Endpoint<Rx>) -> Receiver<T> {
        Receiver {
            ep,
            stashed: None,
            _type: PhantomData,
        }
    }

    fn with_endpoint(&self, ep: Endpoint<Rx>) -> Receiver<T> {
        Receiver::wrap(ep)
    }

    /// Receives the next value, waiting as long as a sender is alive.
    ///
    /// # Errors
    /// [`RecvError::Disconnected`] once every sender has left or died and everything sent has
    /// been received; [`RecvError::Corrupted`].
    pub fn recv(&mut self) -> Result<T, RecvError> {
        self.recv_ref_with(Wait::Forever).map(|r| r.get())
    }

    /// Receives the next value if there is one now.
    ///
    /// # Errors
    /// [`RecvError::Empty`], [`RecvError::Disconnected`], [`RecvError::Corrupted`].
    pub fn try_recv(&mut self) -> Result<T, RecvError> {
        self.recv_ref_with(Wait::Try).map(|r| r.get())
    }

    /// Receives the next value, waiting up to `timeout`.
    ///
    /// # Errors
    /// [`RecvError::Timeout`], [`RecvError::Disconnected`], [`RecvError::Corrupted`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvError> {
        self.recv_ref_with(Wait::For(timeout)).map(|r| r.get())
    }

    /// Lends the next message in place, waiting as long as a sender is alive; it is released
    /// when the [`RecvRef`] drops.
    ///
    /// # Errors
    /// As [`recv`](Receiver::recv).
    pub fn recv_ref(&mut self) -> Result<RecvRef<'_, T>, RecvError> {
        self.recv_ref_with(Wait::Forever)
    }

    /// Like [`recv_ref`](Receiver::recv_ref), without waiting.
    ///
    /// # Errors
    /// As [`try_recv`](Receiver::try_recv).
    pub fn try_recv_ref(&mut self) -> Result<RecvRef<'_, T>, RecvError> {
        self.recv_ref_with(Wait::Try)
    }

    /// Receives up to `max` values into `out` (appended), waiting as long as a sender is
    /// alive for the first one, then taking every value that is there now: one call drains a
    /// burst. Returns how many were appended (at least one).
    ///
    /// An error met after the first value ends the batch early and is returned by the next
    /// call, so nothing is lost and nothing is reported twice.
    ///
    /// # Examples
    /// ```
    /// use ringway_channel::{ChannelOptions, Receiver, Sender};
    /// # let name = format!("/ringway-doc-recv-batch-{}", std::process::id());
    /// let mut tx = Sender::<u32>::create(&name, &ChannelOptions::new())?;
    /// let mut rx = Receiver::<u32>::open(&name, &ChannelOptions::new())?;
    /// tx.send_batch(&[1, 2, 3, 4, 5])?;
    /// let mut got = Vec::new();
    /// assert_eq!(rx.recv_batch(&mut got, 3)?, 3);
    /// assert_eq!(rx.recv_batch(&mut got, 100)?, 2);
    /// assert_eq!(got, [1, 2, 3, 4, 5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`recv`](Receiver::recv), when no value was received.
    pub fn recv_batch(&mut self, out: &mut Vec<T>, max: usize) -> Result<usize, RecvError> {
        self.recv_batch_with(out, max, Wait::Forever)
    }

    /// Like [`recv_batch`](Receiver::recv_batch), taking only what is there now.
    ///
    /// # Errors
    /// [`RecvError::Empty`] if nothing is, and as [`try_recv`](Receiver::try_recv).
    pub fn try_recv_batch(&mut self, out: &mut Vec<T>, max: usize) -> Result<usize, RecvError> {
        self.recv_batch_with(out, max, Wait::Try)
    }

    /// Like [`recv_batch`](Receiver::recv_batch), waiting up to `timeout` for the first value.
    ///
    /// # Errors
    /// As [`recv_timeout`](Receiver::recv_timeout).
    pub fn recv_batch_timeout(
        &mut self,
        out: &mut Vec<T>,
        max: usize,
        timeout: Duration,
    ) -> Result<usize, RecvError> {
        self.recv_batch_with(out, max, Wait::For(timeout))
    }

    fn recv_batch_with(
        &mut self,
        out: &mut Vec<T>,
        max: usize,
        wait: Wait,
    ) -> Result<usize, RecvError> {
        if max == 0 {
            return Ok(0);
        }
        out.push(self.recv_ref_with(wait)?.get());
        let mut n = 1;
        while n < max {
            match self.recv_ref_with(Wait::Try).map(|r| r.get()) {
                Ok(value) => out.push(value),
                Err(RecvError::Empty) => break,
                Err(e) => {
                    self.stashed = Some(e);
                    break;
                }
            }
            n += 1;
        }
        self.ep.ring.flush();
        Ok(n)
    }

    fn recv_ref_with(&mut self, wait: Wait) -> Result<RecvRef<'_, T>, RecvError> {
        if let Some(e) = self.stashed.take() {
            return Err(e);
        }
        let grant = self.ep.ring.peek(wait).map_err(RecvError::from_pop)?;
        let size = core::mem::size_of::<T>();
        if grant.len() != size {
            let found = grant.len() as u64;
            drop(grant); // released: the channel moves on
            return Err(RecvError::Corrupted(Corruption {
                what: "a typed message must be exactly size_of::<T>() bytes",
                found,
                limit: size as u64,
            }));
        }
        Ok(RecvRef {
            grant,
            _type: PhantomData,
        })
    }

    /// A blocking iterator over received values; it ends when the channel is disconnected
    /// (or on a corrupted message: use [`recv`](Receiver::recv) to see errors).
    pub fn iter(&mut self) -> Iter<'_, T> {
        Iter { receiver: self }
    }

    /// An iterator over the values available now.
    pub fn try_iter(&mut self) -> TryIter<'_, T> {
        TryIter { receiver: self }
    }

    /// MPMC: messages lost because their sender died between claiming a slot and filling it.
    #[must_use]
    pub fn lost(&self) -> u64 {
        self.ep.ring.lost()
    }

    endpoint_methods!("sender");

    fn size(&self) -> Size {
        Size::typed(&self.ep.shared().geometry, core::mem::size_of::<T>())
    }
}

/// A received message, lent in place by [`Receiver::recv_ref`]; released when dropped.
#[derive(Debug)]
pub struct RecvRef<'a, T> {
    grant: RxGrant<'a>,
    _type: PhantomData<T>,
}

impl<T: Message> RecvRef<'_, T> {
    /// Copies the value out.
    #[must_use]
    pub fn get(&self) -> T {
        // SAFETY: the message is exactly size_of::<T>() bytes (checked when lent) and valid
        // for reads while the grant lives; read_unaligned needs no alignment; T is a Message, so
        // any bytes (even ones a hostile peer rewrites meanwhile) make a valid T.
        unsafe { self.grant.as_ptr().cast::<T>().read_unaligned() }
    }

    /// A pointer to the message in shared memory, aligned for `T` (whose alignment must be at
    /// most 8, checked at compile time), valid for reads while this lives.
    #[must_use]
    pub fn as_ptr(&self) -> *const T {
        const {
            assert!(
                core::mem::align_of::<T>() <= 8,
                "a lent T must have alignment <= 8"
            )
        };
        self.grant.as_ptr().cast::<T>()
    }

    /// The message as `&T`, without copying.
    ///
    /// # Safety
    /// No other process may write these bytes while the reference lives. A correct ringway
    /// sender never does (the message is not released until this drops); a buggy or hostile
    /// one could, which would be undefined behaviour for a `&T`. Use [`get`](RecvRef::get)
    /// when the sender is not trusted.
    #[must_use]
    pub unsafe fn as_ref(&self) -> &T {
        // SAFETY: aligned (as_ptr's check; messages start 8-aligned), valid and initialised
        // for size_of::<T>() bytes, a valid T (a Message: any bits), and not written meanwhile per the
        // caller's promise.
        unsafe { &*self.as_ptr() }
    }

    /// Releases the message (the same as dropping it).
    pub fn release(self) {}
}

/// Blocking iterator from [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    receiver: &'a mut Receiver<T>,
}

impl<T: Message> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.receiver.recv().ok()
    }
}

/// Non-blocking iterator from [`Receiver::try_iter`].
#[derive(Debug)]
pub struct TryIter<'a, T> {
    receiver: &'a mut Receiver<T>,
}

impl<T: Message> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.receiver.try_recv().ok()
    }
}

/// Owning blocking iterator: `for value in receiver { .. }`.
#[derive(Debug)]
pub struct IntoIter<T> {
    receiver: Receiver<T>,
}

impl<T: Message> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.receiver.recv().ok()
    }
}

impl<T: Message> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { receiver: self }
    }
}

impl<'a, T: Message> IntoIterator for &'a mut Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}
