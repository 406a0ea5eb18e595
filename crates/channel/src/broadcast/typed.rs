//! [`Publisher<T>`] and [`Subscriber<T>`]: a broadcast channel of fixed-size plain-data
//! values.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use ringway_ring::broadcast::{ReadGrant, Reader, Writer};
use ringway_ring::{Corruption, Wait};

use super::{broadcast_methods, guard};
use crate::batch::{bytes_of, send_each};
use crate::capacity::Size;
use crate::endpoint::Endpoint;
use crate::error::{Error, RecvError, SendError};
use crate::message::MessageType;
use crate::options::{Address, ChannelOptions};
use crate::segment::Shared;
use crate::shape::Message;

/// The publishing end of a typed broadcast channel: every value it sends is received by
/// every [`Subscriber`] attached at the time (and, with history, by late ones).
///
/// A channel has one publisher at a time. Opening a channel whose publisher left or died
/// takes over its place, continuing after the last message published; opening one whose
/// publisher is alive is [`Error::Attach`] ([`AttachError::Busy`](ringway_ring::AttachError)).
///
/// # Examples
/// ```
/// use ringway_channel::{ChannelOptions, Publisher, Subscriber};
/// # let name = format!("/ringway-doc-publisher-{}", std::process::id());
/// let mut tx = Publisher::<u64>::create(&name, &ChannelOptions::new())?;
/// let mut a = Subscriber::<u64>::open(&name, &ChannelOptions::new())?; // usually other processes
/// let mut b = Subscriber::<u64>::open(&name, &ChannelOptions::new())?;
/// tx.send(7)?;
/// assert_eq!((a.recv()?, b.recv()?), (7, 7), "every subscriber receives every value");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Publisher<T> {
    ep: Endpoint<Writer>,
    _type: PhantomData<fn(T)>,
}

impl<T: Message> Publisher<T> {
    /// Creates the broadcast channel `address` and attaches as its publisher. The options'
    /// [`max_readers`](ChannelOptions::max_readers), [`policy`](ChannelOptions::policy),
    /// [`history`](ChannelOptions::history) and [`capacity`](ChannelOptions::capacity)
    /// shape it; its flavour is ignored.
    ///
    /// # Errors
    /// As [`Sender::create`](crate::Sender::create).
    pub fn create(
        address: impl Into<Address>,
        opts: &ChannelOptions,
    ) -> Result<Publisher<T>, Error> {
        let opts = opts.for_broadcast();
        let message = MessageType::of::<T>(opts.type_name.as_deref());
        Endpoint::create(address.into(), message, &opts).map(Publisher::wrap)
    }

    /// Opens the broadcast channel `address`, waiting up to the open timeout for its creator,
    /// and attaches as its publisher.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::TypeMismatch`], [`Error::Unsupported`] if `address` is a
    /// sender/receiver channel, [`Error::Attach`] if a live publisher holds it.
    pub fn open(address: impl Into<Address>, opts: &ChannelOptions) -> Result<Publisher<T>, Error> {
        let opts = opts.for_broadcast();
        let message = MessageType::of::<T>(opts.type_name.as_deref());
        Endpoint::open(&address.into(), message, &opts).map(Publisher::wrap)
    }

    pub(crate) fn attach(shared: &Arc<Shared>) -> Result<Publisher<T>, Error> {
        Endpoint::attach(shared).map(Publisher::wrap)
    }

    fn wrap(ep: Endpoint<Writer>) -> Publisher<T> {
        Publisher {
            ep,
            _type: PhantomData,
        }
    }

    /// Sends `value` to every subscriber. Under [`Policy::Block`](crate::Policy::Block) it
    /// waits while the slowest live subscriber is a whole channel behind (a dead one stops
    /// counting within the liveness interval); under [`Policy::Overwrite`](crate::Policy) it
    /// never waits. With no subscriber attached it never waits either: a publisher is never
    /// disconnected, since subscribers may attach at any time.
    ///
    /// # Errors
    /// [`SendError::Interrupted`], [`SendError::Corrupted`].
    pub fn send(&mut self, value: T) -> Result<(), SendError<T>> {
        self.send_with(value, Wait::Forever)
    }

    /// Sends `value` if no subscriber holds the channel back now.
    ///
    /// # Errors
    /// [`SendError::Full`] (block policy), [`SendError::Corrupted`].
    pub fn try_send(&mut self, value: T) -> Result<(), SendError<T>> {
        self.send_with(value, Wait::Try)
    }

    /// Sends `value`, waiting up to `timeout` for the slowest subscriber.
    ///
    /// # Errors
    /// [`SendError::Timeout`], and as [`send`](Publisher::send).
    pub fn send_timeout(&mut self, value: T, timeout: Duration) -> Result<(), SendError<T>> {
        self.send_with(value, Wait::For(timeout))
    }

    fn send_with(&mut self, value: T, wait: Wait) -> Result<(), SendError<T>> {
        match self.ep.ring.push_with(bytes_of(&value), wait) {
            Ok(()) => Ok(()),
            Err(e) => Err(SendError::from_push(e, value, &self.ep.name)),
        }
    }

    /// Sends every value of `values`, waiting as [`send`](Publisher::send) does, all under
    /// one deadline for the `_timeout` form. Each value is visible to the subscribers as soon
    /// as it is written (a broadcast ring has no deferred publication); the batch saves the
    /// per-call overhead.
    ///
    /// # Errors
    /// As [`send`](Publisher::send); the error's value is how many values were sent before it.
    pub fn send_batch(&mut self, values: &[T]) -> Result<(), SendError<usize>> {
        self.send_batch_with(values, Wait::Forever).map(drop)
    }

    /// Sends as many values of `values` as no subscriber holds back now; returns how many.
    ///
    /// # Errors
    /// [`SendError::Full`] (with value `0`) if not one could be sent.
    pub fn try_send_batch(&mut self, values: &[T]) -> Result<usize, SendError<usize>> {
        self.send_batch_with(values, Wait::Try)
    }

    /// Like [`send_batch`](Publisher::send_batch), waiting up to `timeout` in all.
    ///
    /// # Errors
    /// As [`send_timeout`](Publisher::send_timeout), with the count sent before the error.
    pub fn send_batch_timeout(
        &mut self,
        values: &[T],
        timeout: Duration,
    ) -> Result<(), SendError<usize>> {
        self.send_batch_with(values, Wait::For(timeout)).map(drop)
    }

    fn send_batch_with(&mut self, values: &[T], wait: Wait) -> Result<usize, SendError<usize>> {
        send_each(&mut self.ep.ring, values.iter(), wait, |w, v, wait| {
            w.push_with(bytes_of(v), wait)
        })
        .map_err(|(e, n)| SendError::from_push(e, n, &self.ep.name))
    }

    /// How many messages were ever published on the channel (the position of the next one).
    #[must_use]
    pub fn position(&self) -> u64 {
        self.ep.ring.position()
    }

    /// How many subscribers are attached and alive now (probes liveness: not for a hot loop).
    ///
    /// A subscriber is counted from the moment it registers, while its `open` may still be
    /// choosing where it starts: it receives everything published after its `open` returned,
    /// but of what is published while it attaches, possibly only a later part (under the
    /// block policy, when the publisher outruns the join). To hand a subscriber an exact
    /// first message, have it say so (through your own protocol) once `open` has returned,
    /// or give the channel a `history`.
    #[must_use]
    pub fn subscribers(&self) -> usize {
        self.ep.ring.readers()
    }

    broadcast_methods!("subscriber");

    fn size(&self) -> Size {
        Size::typed(&self.ep.shared().geometry, core::mem::size_of::<T>())
    }
}

/// The receiving end of a typed broadcast channel: it receives every value published after
/// it attached (and the channel's history), in order, each once, or learns how many it
/// missed ([`RecvError::Lagged`]).
///
/// Its process maps the channel's data area read-only where it can (see
/// [`is_data_protected`](Subscriber::is_data_protected)): a subscriber writes nothing but its
/// own cursor, so nothing it does can disturb the publisher or the other subscribers.
///
/// # Examples
/// A subscriber that is lapped under [`Policy::Overwrite`](crate::Policy) learns how many
/// values it missed, then continues with the oldest one still there:
/// ```
/// use ringway_channel::{ChannelOptions, Policy, Publisher, RecvError, Subscriber};
/// # let name = format!("/ringway-doc-subscriber-{}", std::process::id());
/// let opts = ChannelOptions::new().capacity(4).policy(Policy::Overwrite);
/// let mut tx = Publisher::<u32>::create(&name, &opts)?;
/// let mut rx = Subscriber::<u32>::open(&name, &opts)?;
/// for i in 0..10 {
///     tx.send(i)?; // never waits
/// }
/// assert_eq!(rx.recv(), Err(RecvError::Lagged(6)));
/// assert_eq!(rx.recv()?, 6);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Subscriber<T> {
    pub(super) ep: Endpoint<Reader>,
    /// An error met by a batch after it had received something, for the next call.
    stashed: Option<RecvError>,
    _type: PhantomData<fn() -> T>,
}

impl<T: Message> Subscriber<T> {
    /// Creates the broadcast channel `address` and attaches as a subscriber (see
    /// [`Publisher::create`]).
    ///
    /// # Errors
    /// As [`Publisher::create`].
    pub fn create(
        address: impl Into<Address>,
        opts: &ChannelOptions,
    ) -> Result<Subscriber<T>, Error> {
        let opts = opts.for_broadcast();
        let message = MessageType::of::<T>(opts.type_name.as_deref());
        Endpoint::create(address.into(), message, &opts).map(Subscriber::wrap)
    }

    /// Opens the broadcast channel `address`, waiting up to the open timeout for its creator,
    /// and attaches as a subscriber, starting with the next value published (or the newest
    /// `history` values).
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::TypeMismatch`], [`Error::Unsupported`] if `address` is a
    /// sender/receiver channel, [`Error::Attach`] if `max_readers` subscribers are attached.
    pub fn open(
        address: impl Into<Address>,
        opts: &ChannelOptions,
    ) -> Result<Subscriber<T>, Error> {
        let opts = opts.for_broadcast();
        let message = MessageType::of::<T>(opts.type_name.as_deref());
        Endpoint::open(&address.into(), message, &opts).map(Subscriber::wrap)
    }

    pub(crate) fn attach(shared: &Arc<Shared>) -> Result<Subscriber<T>, Error> {
        Endpoint::attach(shared).map(Subscriber::wrap)
    }

    fn wrap(ep: Endpoint<Reader>) -> Subscriber<T> {
        Subscriber {
            ep,
            stashed: None,
            _type: PhantomData,
        }
    }

    /// Another subscriber of the same channel, starting where a new one would (its own
    /// cursor and registration).
    ///
    /// # Errors
    /// [`Error::Attach`] if `max_readers` subscribers are attached.
    pub fn try_clone(&self) -> Result<Subscriber<T>, Error> {
        self.ep.try_clone().map(Subscriber::wrap)
    }

    /// Receives the next value, waiting as long as the publisher is alive.
    ///
    /// # Errors
    /// [`RecvError::Lagged`]`(n)`: `n` values were overwritten before this subscriber
    /// received them (the next call returns the oldest one left); [`RecvError::Disconnected`]
    /// once the publisher left or died and everything it published was received (a new
    /// publisher may take over later); [`RecvError::Corrupted`]; [`RecvError::Interrupted`].
    pub fn recv(&mut self) -> Result<T, RecvError> {
        self.recv_with(Wait::Forever)
    }

    /// Receives the next value if there is one now.
    ///
    /// # Errors
    /// [`RecvError::Empty`], and as [`recv`](Subscriber::recv).
    pub fn try_recv(&mut self) -> Result<T, RecvError> {
        self.recv_with(Wait::Try)
    }

    /// Receives the next value, waiting up to `timeout`.
    ///
    /// # Errors
    /// [`RecvError::Timeout`], and as [`recv`](Subscriber::recv).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvError> {
        self.recv_with(Wait::For(timeout))
    }

    fn recv_with(&mut self, wait: Wait) -> Result<T, RecvError> {
        let r = self.recv_ref_with(wait)?;
        let value = r.get();
        // The seqlock's second check: a value overwritten while it was copied is not returned.
        r.release()?;
        // Stamps only move forward, so a copy found torn is found lapped by `release` too;
        // only a hostile publisher rewinding a stamp gets here.
        value.ok_or(RecvError::Corrupted(Corruption {
            what: "a broadcast stamp went back to a message already overwritten",
            found: 0,
            limit: 0,
        }))
    }

    /// Lends the next message in place; copy it out with [`BroadcastRef::get`], which checks
    /// after copying that the publisher did not overwrite it meanwhile.
    ///
    /// # Errors
    /// As [`recv`](Subscriber::recv).
    pub fn recv_ref(&mut self) -> Result<BroadcastRef<'_, T>, RecvError> {
        self.recv_ref_with(Wait::Forever)
    }

    /// Like [`recv_ref`](Subscriber::recv_ref), without waiting.
    ///
    /// # Errors
    /// As [`try_recv`](Subscriber::try_recv).
    pub fn try_recv_ref(&mut self) -> Result<BroadcastRef<'_, T>, RecvError> {
        self.recv_ref_with(Wait::Try)
    }

    /// Like [`recv_ref`](Subscriber::recv_ref), waiting up to `timeout`.
    ///
    /// # Errors
    /// As [`recv_timeout`](Subscriber::recv_timeout).
    pub fn recv_ref_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<BroadcastRef<'_, T>, RecvError> {
        self.recv_ref_with(Wait::For(timeout))
    }

    fn recv_ref_with(&mut self, wait: Wait) -> Result<BroadcastRef<'_, T>, RecvError> {
        if let Some(e) = self.stashed.take() {
            return Err(e);
        }
        let grant = self.ep.ring.peek_with(wait).map_err(RecvError::from_pop)?;
        let size = core::mem::size_of::<T>();
        if grant.len() != size {
            let found = grant.len() as u64;
            // Released: the subscriber moves on (a lap found meanwhile is the better report).
            grant.release().map_err(RecvError::from_pop)?;
            return Err(RecvError::Corrupted(Corruption {
                what: "a typed message must be exactly size_of::<T>() bytes",
                found,
                limit: size as u64,
            }));
        }
        Ok(BroadcastRef {
            grant,
            _type: PhantomData,
        })
    }

    /// Receives up to `max` values into `out` (appended), waiting as long as the publisher is
    /// alive for the first one, then taking every value that is there now. Returns how many
    /// were appended (at least one). An error met after the first value (a lap, say) ends
    /// the batch early and is returned by the next call.
    ///
    /// # Errors
    /// As [`recv`](Subscriber::recv), when no value was received.
    pub fn recv_batch(&mut self, out: &mut Vec<T>, max: usize) -> Result<usize, RecvError> {
        self.recv_batch_with(out, max, Wait::Forever)
    }

    /// Like [`recv_batch`](Subscriber::recv_batch), taking only what is there now.
    ///
    /// # Errors
    /// [`RecvError::Empty`] if nothing is, and as [`try_recv`](Subscriber::try_recv).
    pub fn try_recv_batch(&mut self, out: &mut Vec<T>, max: usize) -> Result<usize, RecvError> {
        self.recv_batch_with(out, max, Wait::Try)
    }

    /// Like [`recv_batch`](Subscriber::recv_batch), waiting up to `timeout` for the first
    /// value.
    ///
    /// # Errors
    /// As [`recv_timeout`](Subscriber::recv_timeout).
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
        out.push(self.recv_with(wait)?);
        let mut n = 1;
        while n < max {
            match self.recv_with(Wait::Try) {
                Ok(value) => out.push(value),
                Err(RecvError::Empty) => break,
                Err(e) => {
                    self.stashed = Some(e);
                    break;
                }
            }
            n += 1;
        }
        Ok(n)
    }

    /// The position of the next message this subscriber receives (messages are numbered
    /// from 0 since the channel was created).
    #[must_use]
    pub fn position(&self) -> u64 {
        self.ep.ring.position()
    }

    /// Messages this subscriber missed because the publisher overwrote them, in total.
    #[must_use]
    pub fn lagged(&self) -> u64 {
        self.ep.ring.lagged()
    }

    /// Messages published and not yet received by this subscriber, as far as it can tell now
    /// (at most the capacity).
    #[must_use]
    pub fn len(&self) -> usize {
        self.size().len(self.ep.ring.pending())
    }

    /// Whether no message is waiting for this subscriber, as far as it can tell now.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ep.ring.pending() == 0
    }

    /// Whether this process maps the channel's data area read-only (see the type's docs): true
    /// unless `mprotect` refused, or a publisher attached through the same mapping (the same
    /// [`BroadcastChannel`](crate::BroadcastChannel) in this process).
    #[must_use]
    pub fn is_data_protected(&self) -> bool {
        guard::is_protected(self.ep.shared())
    }

    broadcast_methods!("publisher");

    fn size(&self) -> Size {
        Size::typed(&self.ep.shared().geometry, core::mem::size_of::<T>())
    }
}

/// A broadcast message lent in place by [`Subscriber::recv_ref`]; released when dropped.
#[derive(Debug)]
pub struct BroadcastRef<'a, T> {
    grant: ReadGrant<'a>,
    _type: PhantomData<T>,
}

impl<T: Message> BroadcastRef<'_, T> {
    /// Copies the value out, or `None` if the publisher overwrote it meanwhile (possible under
    /// [`Policy::Overwrite`](crate::Policy) only; [`release`](BroadcastRef::release) then
    /// reports how many values were missed). A value returned is the one published, untorn.
    #[must_use]
    pub fn get(&self) -> Option<T> {
        // SAFETY: the message is exactly size_of::<T>() bytes (checked when lent) inside the
        // ring, valid for reads while the grant lives; read_unaligned needs no alignment; T is
        // a Message, so any bytes (even ones the publisher is overwriting) make a valid T.
        let value = unsafe { self.grant.as_ptr().cast::<T>().read_unaligned() };
        self.grant.is_intact().then_some(value)
    }

    /// A pointer to the message in shared memory, valid for reads while this lives. Under
    /// the overwrite policy the publisher may overwrite it at any time: check
    /// [`is_intact`](BroadcastRef::is_intact) after reading through it.
    #[must_use]
    pub fn as_ptr(&self) -> *const T {
        self.grant.as_ptr().cast::<T>()
    }

    /// Whether the message is still the one published: everything read through this before
    /// the call returned `true` was untorn.
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.grant.is_intact()
    }

    /// Releases the message, moving the subscriber past it.
    ///
    /// # Errors
    /// [`RecvError::Lagged`] if the publisher overwrote it while it was lent (what was read
    /// through it may be torn); the subscriber then stands at the oldest message left.
    pub fn release(self) -> Result<(), RecvError> {
        self.grant.release().map_err(RecvError::from_pop)
    }
}

impl<T: Message> crate::select::SelectRecv for Subscriber<T> {
    /// Ready when a message is complete at this subscriber's position, when it was lapped
    /// (the receive reports `Lagged`), or when the publisher has gone and nothing is left.
    fn watch(&self) -> crate::select::Watch {
        self.ep.ring.watch()
    }
}
