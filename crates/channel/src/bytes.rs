//! [`ByteSender`] and [`ByteReceiver`]: variable-size byte messages, by copy or in place.

use std::sync::Arc;
use std::time::Duration;

use ringway_ring::Wait;

use crate::batch::ByteBatch;
use crate::capacity::Size;
use crate::endpoint::{Endpoint, RingEnd, endpoint_methods};
use crate::error::{Error, RecvError, SendError};
use crate::message::MessageType;
use crate::options::{Address, ChannelOptions};
use crate::raw::{RxGrant, TxGrant};
use crate::segment::{Rx, Shared, Tx};

/// The sending end of a byte channel: messages of any length up to
/// [`max_message`](ByteSender::max_message).
///
/// # Examples
/// ```
/// use ringway_channel::{ByteReceiver, ByteSender, ChannelOptions};
/// # let name = format!("/ringway-doc-bytes-{}", std::process::id());
/// let opts = ChannelOptions::new().capacity(64 * 1024);
/// let mut tx = ByteSender::create(&name, &opts)?;
/// let mut rx = ByteReceiver::open(&name, &opts)?;
/// tx.send(b"hello")?;
/// let mut loan = tx.loan_bytes(5)?; // write in place, no intermediate buffer
/// loan.write(0, b"world");
/// loan.commit();
/// let mut buf = Vec::new();
/// rx.recv(&mut buf)?;
/// assert_eq!(buf, b"hello");
/// assert_eq!(rx.recv_ref()?.to_vec(), b"world");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ByteSender {
    pub(crate) ep: Endpoint<Tx>,
    /// The channel's largest message (an SPSC ring could carry larger ones).
    max: usize,
}

impl ByteSender {
    /// Creates the channel `address` and attaches as its sender.
    ///
    /// # Errors
    /// As [`Sender::create`](crate::Sender::create).
    pub fn create(address: impl Into<Address>, opts: &ChannelOptions) -> Result<ByteSender, Error> {
        Endpoint::create(address.into(), MessageType::for_bytes(opts), opts).map(ByteSender::wrap)
    }

    /// Opens the channel `address`, waiting up to the open timeout for its creator.
    ///
    /// # Errors
    /// As [`Sender::open`](crate::Sender::open).
    pub fn open(address: impl Into<Address>, opts: &ChannelOptions) -> Result<ByteSender, Error> {
        Endpoint::open(&address.into(), MessageType::for_bytes(opts), opts).map(ByteSender::wrap)
    }

    pub(crate) fn attach(shared: &Arc<Shared>) -> Result<ByteSender, Error> {
        Endpoint::attach(shared).map(ByteSender::wrap)
    }

    fn wrap(ep: Endpoint<Tx>) -> ByteSender {
        let max = Size::bytes(&ep.shared().geometry, ep.ring.label()).max_message;
        ByteSender { ep, max }
    }

    fn with_endpoint(&self, ep: Endpoint<Tx>) -> ByteSender {
        ByteSender { ep, max: self.max }
    }

    /// Sends `msg`, waiting for room as long as a receiver is alive.
    ///
    /// The error does not hold on to `msg` (the caller still has it), so `?` works on a
    /// message borrowed from a local:
    ///
    /// ```
    /// use ringway_channel::{ByteReceiver, ByteSender, ChannelOptions};
    ///
    /// fn greet(tx: &mut ByteSender, who: &str) -> Result<(), Box<dyn std::error::Error>> {
    ///     let s = format!("hello, {who}");
    ///     tx.send(s.as_bytes())?;
    ///     Ok(())
    /// }
    /// # let name = format!("/ringway-doc-send-local-{}", std::process::id());
    /// let mut tx = ByteSender::create(&name, &ChannelOptions::new())?;
    /// let mut rx = ByteReceiver::open(&name, &ChannelOptions::new())?;
    /// greet(&mut tx, "world")?;
    /// let mut buf = Vec::new();
    /// rx.recv(&mut buf)?;
    /// assert_eq!(buf, b"hello, world");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`SendError::Disconnected`], [`SendError::TooLarge`], [`SendError::Corrupted`].
    pub fn send(&mut self, msg: &[u8]) -> Result<(), SendError<()>> {
        self.send_with(msg, Wait::Forever)
    }

    /// Sends `msg` if there is room now.
    ///
    /// # Errors
    /// [`SendError::Full`], and as [`send`](ByteSender::send).
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), SendError<()>> {
        self.send_with(msg, Wait::Try)
    }

    /// Sends `msg`, waiting up to `timeout` for room.
    ///
    /// # Errors
    /// [`SendError::Timeout`], and as [`send`](ByteSender::send).
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendError<()>> {
        self.send_with(msg, Wait::For(timeout))
    }

    pub(crate) fn send_with(&mut self, msg: &[u8], wait: Wait) -> Result<(), SendError<()>> {
        self.check_len(msg.len(), ())?;
        self.ep
            .ring
            .push(msg, wait)
            .map_err(|e| SendError::from_push(e, (), &self.ep.name))
    }

    /// Sends every message of `msgs` (a slice of messages, or any iterator of them such as
    /// `buf.chunks(n)`), waiting for room as long as a receiver is alive, and publishes them
    /// together (see [`Sender::send_batch`](crate::Sender::send_batch)).
    ///
    /// # Errors
    /// As [`send`](ByteSender::send) (a message too large stops the batch there); the error's
    /// value is how many messages were sent before it.
    pub fn send_batch<I>(&mut self, msgs: I) -> Result<(), SendError<usize>>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.send_batch_with(msgs, Wait::Forever).map(drop)
    }

    /// Sends as many messages of `msgs` as there is room for now, in one publication; returns
    /// how many (the first that many of `msgs`).
    ///
    /// # Errors
    /// [`SendError::Full`] (with value `0`) if there is no room for one; otherwise as
    /// [`try_send`](ByteSender::try_send), with the count sent before the error.
    pub fn try_send_batch<I>(&mut self, msgs: I) -> Result<usize, SendError<usize>>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.send_batch_with(msgs, Wait::Try)
    }

    /// Like [`send_batch`](ByteSender::send_batch), waiting up to `timeout` in all for room.
    ///
    /// # Errors
    /// As [`send_timeout`](ByteSender::send_timeout), with the count sent before the error.
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
        let max = self.max;
        let sent = crate::batch::send_each(
            &mut self.ep.ring,
            msgs.into_iter(),
            wait,
            |ring, msg, wait| {
                let msg = msg.as_ref();
                if msg.len() > max {
                    return Err(ringway_ring::PushError::TooLarge {
                        len: msg.len(),
                        max,
                    });
                }
                ring.push_deferred(msg, wait)
            },
        );
        sent.map_err(|(e, n)| SendError::from_push(e, n, &self.ep.name))
    }

    /// Refuses a message longer than the channel's largest, which an SPSC ring would carry.
    fn check_len<V>(&self, len: usize, value: V) -> Result<V, SendError<V>> {
        if len > self.max {
            return Err(SendError::from_push(
                ringway_ring::PushError::TooLarge { len, max: self.max },
                value,
                &self.ep.name,
            ));
        }
        Ok(value)
    }

    /// Lends `len` bytes of shared memory for the next message, waiting for room as long as a
    /// receiver is alive: write them, then commit (all, or a prefix).
    ///
    /// # Errors
    /// As [`send`](ByteSender::send), handing back `len`.
    pub fn loan_bytes(&mut self, len: usize) -> Result<ByteLoan<'_>, SendError<usize>> {
        self.loan_with(len, Wait::Forever)
    }

    /// Like [`loan_bytes`](ByteSender::loan_bytes), without waiting.
    ///
    /// # Errors
    /// As [`try_send`](ByteSender::try_send), handing back `len`.
    pub fn try_loan_bytes(&mut self, len: usize) -> Result<ByteLoan<'_>, SendError<usize>> {
        self.loan_with(len, Wait::Try)
    }

    /// Like [`loan_bytes`](ByteSender::loan_bytes), waiting up to `timeout`.
    ///
    /// # Errors
    /// As [`send_timeout`](ByteSender::send_timeout), handing back `len`.
    pub fn loan_bytes_timeout(
        &mut self,
        len: usize,
        timeout: Duration,
    ) -> Result<ByteLoan<'_>, SendError<usize>> {
        self.loan_with(len, Wait::For(timeout))
    }

    fn loan_with(&mut self, len: usize, wait: Wait) -> Result<ByteLoan<'_>, SendError<usize>> {
        self.check_len(len, len)?;
        let grant = self
            .ep
            .ring
            .reserve(len, wait)
            .map_err(|e| SendError::from_push(e, len, &self.ep.name))?;
        Ok(ByteLoan { grant })
    }

    /// The options this endpoint was made with (the serialized type, for `serde`).
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(crate) fn options(&self) -> &ChannelOptions {
        self.ep.options()
    }

    endpoint_methods!("receiver");

    fn size(&self) -> Size {
        Size::bytes(&self.ep.shared().geometry, self.ep.ring.label())
    }
}

/// Bytes of shared memory lent by [`ByteSender::loan_bytes`] for one message.
///
/// Dropping it without committing sends nothing.
#[derive(Debug)]
#[must_use = "a loan sends nothing until committed"]
pub struct ByteLoan<'a> {
    grant: TxGrant<'a>,
}

impl ByteLoan<'_> {
    /// How many bytes were lent.
    #[must_use]
    pub fn len(&self) -> usize {
        self.grant.len()
    }

    /// Whether zero bytes were lent.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.grant.len() == 0
    }

    /// Copies `bytes` in at `offset`.
    ///
    /// # Panics
    /// If the range exceeds the loan.
    pub fn write(&mut self, offset: usize, bytes: &[u8]) {
        self.grant.write(offset, bytes);
    }

    /// A pointer to the lent bytes (8-byte aligned), valid for writes of
    /// [`len`](ByteLoan::len) bytes until the loan is committed or dropped: for `read(2)` or a
    /// serializer writing straight into the channel. Write through the pointer, never
    /// through a `&mut [u8]` made from it, unless the other side is trusted.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.grant.as_mut_ptr()
    }

    /// Sends all the lent bytes as one message.
    pub fn commit(self) {
        let len = self.grant.len();
        self.grant.commit_partial(len);
    }

    /// Sends the first `len` bytes as one message.
    ///
    /// # Panics
    /// If `len` exceeds the loan.
    pub fn commit_partial(self, len: usize) {
        self.grant.commit_partial(len);
    }
}

/// The receiving end of a byte channel.
#[derive(Debug)]
pub struct ByteReceiver {
    pub(crate) ep: Endpoint<Rx>,
    /// An error met by a batch after it had received something, for the next call.
    stashed: Option<RecvError>,
}

impl ByteReceiver {
    /// Creates the channel `address` and attaches as its receiver.
    ///
    /// # Errors
    /// As [`Sender::create`](crate::Sender::create).
    pub fn create(
        address: impl Into<Address>,
        opts: &ChannelOptions,
    ) -> Result<ByteReceiver, Error> {
        Endpoint::create(address.into(), MessageType::for_bytes(opts), opts).map(ByteReceiver::wrap)
    }

    /// Opens the channel `address`, waiting up to the open timeout for its creator.
    ///
    /// # Errors
    /// As [`Sender::open`](crate::Sender::open).
    pub fn open(address: impl Into<Address>, opts: &ChannelOptions) -> Result<ByteReceiver, Error> {
        Endpoint::open(&address.into(), MessageType::for_bytes(opts), opts).map(ByteReceiver::wrap)
    }

    pub(crate) fn attach(shared: &Arc<Shared>) -> Result<ByteReceiver, Error> {
        Endpoint::attach(shared).map(ByteReceiver::wrap)
    }

    fn wrap(ep: Endpoint<Rx>) -> ByteReceiver {
        ByteReceiver { ep, stashed: None }
    }

    fn with_endpoint(&self, ep: Endpoint<Rx>) -> ByteReceiver {
        ByteReceiver::wrap(ep)
    }

    /// Receives the next message into `out` (replacing its contents), waiting as long as a
    /// sender is alive. Returns its length.
    ///
    /// # Errors
    /// [`RecvError::Disconnected`] once every sender has left or died and everything was
    /// received; [`RecvError::Corrupted`].
    pub fn recv(&mut self, out: &mut Vec<u8>) -> Result<usize, RecvError> {
        self.recv_with(out, Wait::Forever)
    }

    /// Receives the next message if there is one now.
    ///
    /// # Errors
    /// [`RecvError::Empty`], and as [`recv`](ByteReceiver::recv).
    pub fn try_recv(&mut self, out: &mut Vec<u8>) -> Result<usize, RecvError> {
        self.recv_with(out, Wait::Try)
    }

    /// Receives the next message, waiting up to `timeout`.
    ///
    /// # Errors
    /// [`RecvError::Timeout`], and as [`recv`](ByteReceiver::recv).
    pub fn recv_timeout(
        &mut self,
        out: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<usize, RecvError> {
        self.recv_with(out, Wait::For(timeout))
    }

    pub(crate) fn recv_with(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<usize, RecvError> {
        if let Some(e) = self.stashed.take() {
            return Err(e);
        }
        self.ep.ring.pop(out, wait).map_err(RecvError::from_pop)
    }

    /// Receives up to `max` messages into `batch` (appended), waiting as long as a sender is
    /// alive for the first one, then taking every message that is there now. Returns how
    /// many were appended (at least one). An error met after the first message ends the
    /// batch early and is returned by the next call.
    ///
    /// # Errors
    /// As [`recv`](ByteReceiver::recv), when no message was received.
    pub fn recv_batch(&mut self, batch: &mut ByteBatch, max: usize) -> Result<usize, RecvError> {
        self.recv_batch_with(batch, max, Wait::Forever)
    }

    /// Like [`recv_batch`](ByteReceiver::recv_batch), taking only what is there now.
    ///
    /// # Errors
    /// [`RecvError::Empty`] if nothing is, and as [`try_recv`](ByteReceiver::try_recv).
    pub fn try_recv_batch(
        &mut self,
        batch: &mut ByteBatch,
        max: usize,
    ) -> Result<usize, RecvError> {
        self.recv_batch_with(batch, max, Wait::Try)
    }

    /// Like [`recv_batch`](ByteReceiver::recv_batch), waiting up to `timeout` for the first
    /// message.
    ///
    /// # Errors
    /// As [`recv_timeout`](ByteReceiver::recv_timeout).
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
            match self.ep.ring.peek(wait) {
                Ok(grant) => batch.push_with(grant.len(), |dst| grant.copy_to(dst)),
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
        self.ep.ring.flush();
        Ok(n)
    }

    /// Lends the next message in place, waiting as long as a sender is alive; released when
    /// the [`ByteRef`] drops.
    ///
    /// # Errors
    /// As [`recv`](ByteReceiver::recv).
    pub fn recv_ref(&mut self) -> Result<ByteRef<'_>, RecvError> {
        self.ref_with(Wait::Forever)
    }

    /// Like [`recv_ref`](ByteReceiver::recv_ref), without waiting.
    ///
    /// # Errors
    /// As [`try_recv`](ByteReceiver::try_recv).
    pub fn try_recv_ref(&mut self) -> Result<ByteRef<'_>, RecvError> {
        self.ref_with(Wait::Try)
    }

    /// Like [`recv_ref`](ByteReceiver::recv_ref), waiting up to `timeout`.
    ///
    /// # Errors
    /// As [`recv_timeout`](ByteReceiver::recv_timeout).
    pub fn recv_ref_timeout(&mut self, timeout: Duration) -> Result<ByteRef<'_>, RecvError> {
        self.ref_with(Wait::For(timeout))
    }

    fn ref_with(&mut self, wait: Wait) -> Result<ByteRef<'_>, RecvError> {
        let grant = self.ep.ring.peek(wait).map_err(RecvError::from_pop)?;
        Ok(ByteRef { grant })
    }

    /// A blocking iterator of received messages (each a new `Vec`); it ends when the channel
    /// is disconnected or on an error.
    pub fn iter(&mut self) -> ByteIter<'_> {
        ByteIter { receiver: self }
    }

    /// MPMC: messages lost because their sender died between claiming a slot and filling it.
    #[must_use]
    pub fn lost(&self) -> u64 {
        self.ep.ring.lost()
    }

    /// The options this endpoint was made with (the serialized type, for `serde`).
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(crate) fn options(&self) -> &ChannelOptions {
        self.ep.options()
    }

    endpoint_methods!("sender");

    fn size(&self) -> Size {
        Size::bytes(&self.ep.shared().geometry, self.ep.ring.label())
    }
}

/// A received message lent in place by [`ByteReceiver::recv_ref`]; released when dropped.
#[derive(Debug)]
pub struct ByteRef<'a> {
    grant: RxGrant<'a>,
}

impl ByteRef<'_> {
    /// The message length.
    #[must_use]
    pub fn len(&self) -> usize {
        self.grant.len()
    }

    /// Whether the message is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.grant.len() == 0
    }

    /// A pointer to the message (8-byte aligned), valid for reads of [`len`](ByteRef::len)
    /// bytes while this lives.
    #[must_use]
    pub fn as_ptr(&self) -> *const u8 {
        self.grant.as_ptr()
    }

    /// The message as a slice, without copying.
    ///
    /// # Safety
    /// No other process may write these bytes while the slice lives. A correct ringway sender
    /// never does; a buggy or hostile one could, which would be undefined behaviour for a
    /// `&[u8]`. Use [`copy_to`](ByteRef::copy_to) or [`to_vec`](ByteRef::to_vec) when the
    /// sender is not trusted.
    #[must_use]
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: valid and initialised for `len` bytes while the grant lives; not written
        // meanwhile per the caller's promise.
        unsafe { core::slice::from_raw_parts(self.as_ptr(), self.len()) }
    }

    /// Copies the first `min(len, dst.len())` bytes into `dst`; returns how many.
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        self.grant.copy_to(dst)
    }

    /// Copies the message into a new vector.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        self.grant.to_vec()
    }

    /// Releases the message (the same as dropping it).
    pub fn release(self) {}
}

/// Blocking iterator from [`ByteReceiver::iter`].
#[derive(Debug)]
pub struct ByteIter<'a> {
    receiver: &'a mut ByteReceiver,
}

impl Iterator for ByteIter<'_> {
    type Item = Vec<u8>;
    fn next(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.receiver.recv(&mut out).ok().map(|_| out)
    }
}
