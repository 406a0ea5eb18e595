//! [`BytePublisher`] and [`ByteSubscriber`]: a broadcast channel of byte messages of any
//! length up to its `max_message`.

use std::sync::Arc;
use std::time::Duration;

use ringway_ring::Wait;
use ringway_ring::broadcast::{ReadGrant, Reader, Writer};

use super::{broadcast_methods, guard};
use crate::batch::ByteBatch;
use crate::batch::send_each;
use crate::capacity::Size;
use crate::endpoint::{Endpoint, RingEnd};
use crate::error::{Error, RecvError, SendError};
use crate::message::MessageType;
use crate::options::{Address, ChannelOptions};
use crate::segment::Shared;

/// The publishing end of a byte broadcast channel (see [`Publisher`](crate::Publisher) for
/// the policies and the one-publisher rule).
///
/// # Examples
/// ```
/// use ringway_channel::{BytePublisher, ByteSubscriber, ChannelOptions};
/// # let name = format!("/ringway-doc-byte-publisher-{}", std::process::id());
/// let opts = ChannelOptions::new().max_message(64).history(2);
/// let mut tx = BytePublisher::create(&name, &opts)?;
/// tx.send(b"one")?;
/// tx.send(b"two")?;
/// let mut late = ByteSubscriber::open(&name, &opts)?; // joins with the newest 2
/// let mut out = Vec::new();
/// late.recv(&mut out)?;
/// assert_eq!(out, b"one");
/// assert_eq!(late.recv_ref()?.to_vec().as_deref(), Some(&b"two"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct BytePublisher {
    ep: Endpoint<Writer>,
}

impl BytePublisher {
    /// Creates the byte broadcast channel `address` and attaches as its publisher (see
    /// [`Publisher::create`](crate::Publisher::create)).
    ///
    /// # Errors
    /// As [`Sender::create`](crate::Sender::create).
    pub fn create(
        address: impl Into<Address>,
        opts: &ChannelOptions,
    ) -> Result<BytePublisher, Error> {
        let opts = opts.for_broadcast();
        Endpoint::create(address.into(), MessageType::for_bytes(&opts), &opts)
            .map(|ep| BytePublisher { ep })
    }

    /// Opens the byte broadcast channel `address` and attaches as its publisher.
    ///
    /// # Errors
    /// As [`Publisher::open`](crate::Publisher::open).
    pub fn open(
        address: impl Into<Address>,
        opts: &ChannelOptions,
    ) -> Result<BytePublisher, Error> {
        let opts = opts.for_broadcast();
        Endpoint::open(&address.into(), MessageType::for_bytes(&opts), &opts)
            .map(|ep| BytePublisher { ep })
    }

    pub(crate) fn attach(shared: &Arc<Shared>) -> Result<BytePublisher, Error> {
        Endpoint::attach(shared).map(|ep| BytePublisher { ep })
    }

    /// Sends `msg` to every subscriber, waiting as
    /// [`Publisher::send`](crate::Publisher::send) does.
    ///
    /// # Errors
    /// [`SendError::TooLarge`], [`SendError::Interrupted`], [`SendError::Corrupted`].
    pub fn send(&mut self, msg: &[u8]) -> Result<(), SendError<()>> {
        self.send_with(msg, Wait::Forever)
    }

    /// Sends `msg` if no subscriber holds the channel back now.
    ///
    /// # Errors
    /// [`SendError::Full`] (block policy), and as [`send`](BytePublisher::send).
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), SendError<()>> {
        self.send_with(msg, Wait::Try)
    }

    /// Sends `msg`, waiting up to `timeout` for the slowest subscriber.
    ///
    /// # Errors
    /// [`SendError::Timeout`], and as [`send`](BytePublisher::send).
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendError<()>> {
        self.send_with(msg, Wait::For(timeout))
    }

    fn send_with(&mut self, msg: &[u8], wait: Wait) -> Result<(), SendError<()>> {
        self.ep
            .ring
            .push_with(msg, wait)
            .map_err(|e| SendError::from_push(e, (), &self.ep.name))
    }

    /// Sends every message of `msgs`, as [`Publisher::send_batch`](crate::Publisher::send_batch)
    /// does.
    ///
    /// # Errors
    /// As [`send`](BytePublisher::send) (a message too large stops the batch there); the
    /// error's value is how many messages were sent before it.
    pub fn send_batch<I>(&mut self, msgs: I) -> Result<(), SendError<usize>>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.send_batch_with(msgs, Wait::Forever).map(drop)
    }

    /// Sends as many messages of `msgs` as no subscriber holds back now; returns how many.
    ///
    /// # Errors
    /// [`SendError::Full`] (with value `0`) if not one could be sent.
    pub fn try_send_batch<I>(&mut self, msgs: I) -> Result<usize, SendError<usize>>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.send_batch_with(msgs, Wait::Try)
    }

    /// Like [`send_batch`](BytePublisher::send_batch), waiting up to `timeout` in all.
    ///
    /// # Errors
    /// As [`send_timeout`](BytePublisher::send_timeout), with the count sent before the error.
    pub fn send_batch_timeout<I>(
        &mut self,
        msgs: I,
        timeout: Duration,
    ) -> Result<(), SendError<usize>>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.send_batch_with(msgs, Wait::For(timeout)).map(drop)
    }

    fn send_batch_with<I>(&mut self, msgs: I, wait: Wait) -> Result<usize, SendError<usize>>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        send_each(&mut self.ep.ring, msgs.into_iter(), wait, |w, msg, wait| {
            w.push_with(msg.as_ref(), wait)
        })
        .map_err(|(e, n)| SendError::from_push(e, n, &self.ep.name))
    }

    /// How many messages were ever published on the channel.
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
        Size::bytes(&self.ep.shared().geometry, self.ep.ring.label())
    }
}

/// The receiving end of a byte broadcast channel (see [`Subscriber`](crate::Subscriber)).
#[derive(Debug)]
pub struct ByteSubscriber {
    pub(super) ep: Endpoint<Reader>,
    /// An error met by a batch after it had received something, for the next call.
    stashed: Option<RecvError>,
}

impl ByteSubscriber {
    /// Creates the byte broadcast channel `address` and attaches as a subscriber.
    ///
    /// # Errors
    /// As [`Publisher::create`](crate::Publisher::create).
    pub fn create(
        address: impl Into<Address>,
        opts: &ChannelOptions,
    ) -> Result<ByteSubscriber, Error> {
        let opts = opts.for_broadcast();
        Endpoint::create(address.into(), MessageType::for_bytes(&opts), &opts)
            .map(ByteSubscriber::wrap)
    }

    /// Opens the byte broadcast channel `address` and attaches as a subscriber.
    ///
    /// # Errors
    /// As [`Subscriber::open`](crate::Subscriber::open).
    pub fn open(
        address: impl Into<Address>,
        opts: &ChannelOptions,
    ) -> Result<ByteSubscriber, Error> {
        let opts = opts.for_broadcast();
        Endpoint::open(&address.into(), MessageType::for_bytes(&opts), &opts)
            .map(ByteSubscriber::wrap)
    }

    pub(crate) fn attach(shared: &Arc<Shared>) -> Result<ByteSubscriber, Error> {
        Endpoint::attach(shared).map(ByteSubscriber::wrap)
    }

    fn wrap(ep: Endpoint<Reader>) -> ByteSubscriber {
        ByteSubscriber { ep, stashed: None }
    }

    /// Another subscriber of the same channel (its own cursor and registration).
    ///
    /// # Errors
    /// [`Error::Attach`] if `max_readers` subscribers are attached.
    pub fn try_clone(&self) -> Result<ByteSubscriber, Error> {
        self.ep.try_clone().map(ByteSubscriber::wrap)
    }

    /// Receives the next message into `out` (replacing its contents), waiting as long as the
    /// publisher is alive. Returns its length. The copy is checked after it is made, so a
    /// message overwritten meanwhile is reported as [`RecvError::Lagged`], never returned.
    ///
    /// # Errors
    /// As [`Subscriber::recv`](crate::Subscriber::recv).
    pub fn recv(&mut self, out: &mut Vec<u8>) -> Result<usize, RecvError> {
        self.recv_with(out, Wait::Forever)
    }

    /// Receives the next message if there is one now.
    ///
    /// # Errors
    /// [`RecvError::Empty`], and as [`recv`](ByteSubscriber::recv).
    pub fn try_recv(&mut self, out: &mut Vec<u8>) -> Result<usize, RecvError> {
        self.recv_with(out, Wait::Try)
    }

    /// Receives the next message, waiting up to `timeout`.
    ///
    /// # Errors
    /// [`RecvError::Timeout`], and as [`recv`](ByteSubscriber::recv).
    pub fn recv_timeout(
        &mut self,
        out: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<usize, RecvError> {
        self.recv_with(out, Wait::For(timeout))
    }

    fn recv_with(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<usize, RecvError> {
        if let Some(e) = self.stashed.take() {
            return Err(e);
        }
        self.ep
            .ring
            .pop_with(out, wait)
            .map_err(RecvError::from_pop)
    }

    /// Lends the next message in place; released when the [`BroadcastByteRef`] drops.
    ///
    /// # Errors
    /// As [`recv`](ByteSubscriber::recv).
    pub fn recv_ref(&mut self) -> Result<BroadcastByteRef<'_>, RecvError> {
        self.ref_with(Wait::Forever)
    }

    /// Like [`recv_ref`](ByteSubscriber::recv_ref), without waiting.
    ///
    /// # Errors
    /// As [`try_recv`](ByteSubscriber::try_recv).
    pub fn try_recv_ref(&mut self) -> Result<BroadcastByteRef<'_>, RecvError> {
        self.ref_with(Wait::Try)
    }

    /// Like [`recv_ref`](ByteSubscriber::recv_ref), waiting up to `timeout`.
    ///
    /// # Errors
    /// As [`recv_timeout`](ByteSubscriber::recv_timeout).
    pub fn recv_ref_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<BroadcastByteRef<'_>, RecvError> {
        self.ref_with(Wait::For(timeout))
    }

    fn ref_with(&mut self, wait: Wait) -> Result<BroadcastByteRef<'_>, RecvError> {
        if let Some(e) = self.stashed.take() {
            return Err(e);
        }
        let grant = self.ep.ring.peek_with(wait).map_err(RecvError::from_pop)?;
        Ok(BroadcastByteRef { grant })
    }

    /// Receives up to `max` messages into `batch` (appended), waiting as long as the
    /// publisher is alive for the first one, then taking every message that is there now.
    /// Returns how many were appended (at least one). An error met after the first message
    /// (a lap, say) ends the batch early and is returned by the next call; a message
    /// overwritten while it was copied is never appended.
    ///
    /// # Errors
    /// As [`recv`](ByteSubscriber::recv), when no message was received.
    pub fn recv_batch(&mut self, batch: &mut ByteBatch, max: usize) -> Result<usize, RecvError> {
        self.recv_batch_with(batch, max, Wait::Forever)
    }

    /// Like [`recv_batch`](ByteSubscriber::recv_batch), taking only what is there now.
    ///
    /// # Errors
    /// [`RecvError::Empty`] if nothing is, and as [`try_recv`](ByteSubscriber::try_recv).
    pub fn try_recv_batch(
        &mut self,
        batch: &mut ByteBatch,
        max: usize,
    ) -> Result<usize, RecvError> {
        self.recv_batch_with(batch, max, Wait::Try)
    }

    /// Like [`recv_batch`](ByteSubscriber::recv_batch), waiting up to `timeout` for the first
    /// message.
    ///
    /// # Errors
    /// As [`recv_timeout`](ByteSubscriber::recv_timeout).
    pub fn recv_batch_timeout(
        &mut self,
        batch: &mut ByteBatch,
        max: usize,
        timeout: Duration,
    ) -> Result<usize, RecvError> {
        self.recv_batch_with(batch, max, Wait::For(timeout))
    }

    fn recv_batch_with(
        &mut self,
        batch: &mut ByteBatch,
        max: usize,
        mut wait: Wait,
    ) -> Result<usize, RecvError> {
        if let Some(e) = self.stashed.take() {
            return Err(e);
        }
        let mut n = 0;
        while n < max {
            let got = self.ep.ring.peek_with(wait).and_then(|grant| {
                batch.push_with(grant.len(), |dst| grant.copy_to(dst));
                // The seqlock's second check, after the copy.
                grant.release().inspect_err(|_| {
                    // Torn: take it back out of the batch before anyone sees it.
                    batch.pop_last();
                })
            });
            match got {
                Ok(()) => {}
                Err(ringway_ring::PopError::Empty) if n > 0 => break,
                Err(e) if n > 0 => {
                    self.stashed = Some(RecvError::from_pop(e));
                    break;
                }
                Err(e) => return Err(RecvError::from_pop(e)),
            }
            n += 1;
            wait = Wait::Try;
        }
        Ok(n)
    }

    /// The position of the next message this subscriber receives.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.ep.ring.position()
    }

    /// Messages this subscriber missed because the publisher overwrote them, in total.
    #[must_use]
    pub fn lagged(&self) -> u64 {
        self.ep.ring.lagged()
    }

    /// Messages published and not yet received by this subscriber (at most the capacity).
    #[must_use]
    pub fn len(&self) -> usize {
        self.size().len(self.ep.ring.queued())
    }

    /// Whether no message is waiting for this subscriber, as far as it can tell now.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ep.ring.queued() == 0
    }

    /// Whether this process maps the channel's data area read-only (see
    /// [`Subscriber::is_data_protected`](crate::Subscriber::is_data_protected)).
    #[must_use]
    pub fn is_data_protected(&self) -> bool {
        guard::is_protected(self.ep.shared())
    }

    broadcast_methods!("publisher");

    fn size(&self) -> Size {
        Size::bytes(&self.ep.shared().geometry, self.ep.ring.label())
    }
}

/// A byte broadcast message lent in place by [`ByteSubscriber::recv_ref`]; released when
/// dropped. Under [`Policy::Overwrite`](crate::Policy) the publisher may overwrite it while it
/// is lent: [`to_vec`](BroadcastByteRef::to_vec) checks for that, and after
/// [`copy_to`](BroadcastByteRef::copy_to) or reads through
/// [`as_ptr`](BroadcastByteRef::as_ptr), [`is_intact`](BroadcastByteRef::is_intact) does.
#[derive(Debug)]
pub struct BroadcastByteRef<'a> {
    grant: ReadGrant<'a>,
}

impl BroadcastByteRef<'_> {
    /// The message length.
    #[must_use]
    pub fn len(&self) -> usize {
        self.grant.len()
    }

    /// Whether the message is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.grant.is_empty()
    }

    /// A pointer to the message, valid for reads of [`len`](BroadcastByteRef::len) bytes
    /// while this lives.
    #[must_use]
    pub fn as_ptr(&self) -> *const u8 {
        self.grant.as_ptr()
    }

    /// Copies the first `min(len, dst.len())` bytes into `dst`; returns how many. Check
    /// [`is_intact`](BroadcastByteRef::is_intact) afterwards before trusting them.
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        self.grant.copy_to(dst)
    }

    /// Copies the message into a new vector, or `None` if the publisher overwrote it
    /// meanwhile.
    #[must_use]
    pub fn to_vec(&self) -> Option<Vec<u8>> {
        self.grant.to_vec()
    }

    /// Whether the message is still the one published: everything read through this before
    /// the call returned `true` was untorn.
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.grant.is_intact()
    }

    /// The message as a slice, without copying.
    ///
    /// # Safety
    /// No process may write the message while the slice lives: the channel's policy must be
    /// [`Policy::Block`](crate::Policy::Block) (the publisher waits for this subscriber) and
    /// the publisher must be a correct ringway publisher. Under the overwrite policy use
    /// [`copy_to`](BroadcastByteRef::copy_to) or [`to_vec`](BroadcastByteRef::to_vec).
    #[must_use]
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: forwarded: the caller promises the block policy and a correct publisher,
        // which is the ring's contract for `ReadGrant::as_slice`.
        unsafe { self.grant.as_slice() }
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

impl crate::select::SelectRecv for ByteSubscriber {
    /// As for [`Subscriber`](crate::Subscriber).
    fn watch(&self) -> crate::select::Watch {
        self.ep.ring.watch()
    }
}
