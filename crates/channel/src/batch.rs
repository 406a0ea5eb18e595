//! Batches: many messages published with one store and at most one wake check, and every
//! message that is ready taken in one call. The public calls are `send_batch` and
//! `recv_batch` (with `try_` and `_timeout` forms) on each endpoint; this module holds the
//! loop they share and [`ByteBatch`], the reusable container a byte batch is received into.

use std::time::Instant;

use ringway_ring::broadcast::Writer;
use ringway_ring::{PushError, Wait};

use crate::segment::Tx;
use crate::shape::Message;

/// A ring end a batch is sent through: what it must do once the batch's messages are in.
pub(crate) trait BatchEnd {
    /// Publishes what the batch's deferred pushes wrote (and wakes a waiting receiver).
    fn flush(&mut self);
}

impl BatchEnd for Tx {
    fn flush(&mut self) {
        Tx::flush(self);
    }
}

impl BatchEnd for Writer {
    /// A broadcast writer publishes each message as it goes: nothing is pending.
    fn flush(&mut self) {}
}

/// The bytes of a value of a [`Message`] type.
pub(crate) fn bytes_of<T: Message>(value: &T) -> &[u8] {
    // SAFETY: `value` is a valid `&T` for `size_of::<T>()` bytes, and a `Message` has no
    // padding (checked by its derive or by `Pod`), so every one of those bytes is initialised
    // and may be read as a `u8` for as long as the borrow lives.
    unsafe {
        core::slice::from_raw_parts((value as *const T).cast::<u8>(), core::mem::size_of::<T>())
    }
}

/// A batch's timeout covers the whole batch: a relative wait becomes a deadline, once.
fn deadline(wait: Wait) -> Wait {
    match wait {
        Wait::For(timeout) => Wait::deadline(Instant::now().checked_add(timeout)),
        other => other,
    }
}

/// Pushes every item with `push` (a deferred push where the ring has one), then publishes
/// them all with one flush. A timeout covers the whole batch. Returns how many were pushed;
/// on an error, what was pushed before it is published and the error comes back with that
/// count. A non-blocking batch that fills the ring after at least one message returns the
/// count, not `Full`.
pub(crate) fn send_each<R: BatchEnd, X>(
    ring: &mut R,
    items: impl Iterator<Item = X>,
    wait: Wait,
    mut push: impl FnMut(&mut R, X, Wait) -> Result<(), PushError>,
) -> Result<usize, (PushError, usize)> {
    let wait = deadline(wait);
    let mut sent = 0;
    for item in items {
        if let Err(e) = push(ring, item, wait) {
            ring.flush();
            if sent > 0 && matches!(e, PushError::Full) {
                return Ok(sent);
            }
            return Err((e, sent));
        }
        sent += 1;
    }
    ring.flush();
    Ok(sent)
}

/// Byte messages received together by
/// [`ByteReceiver::recv_batch`](crate::ByteReceiver::recv_batch): one buffer for all their
/// bytes and one for where each ends, reused from batch to batch (no allocation once they
/// have grown to the batch size). Batches append; [`clear`](ByteBatch::clear) empties it.
///
/// # Examples
/// ```
/// use ringway_channel::{ByteBatch, ByteReceiver, ByteSender, ChannelOptions};
/// # let name = format!("/ringway-doc-byte-batch-{}", std::process::id());
/// let mut tx = ByteSender::create(&name, &ChannelOptions::new())?;
/// let mut rx = ByteReceiver::open(&name, &ChannelOptions::new())?;
/// tx.send_batch(&["one", "two", "three"])?;
/// let mut batch = ByteBatch::new();
/// rx.recv_batch(&mut batch, 16)?;
/// assert_eq!(batch.iter().collect::<Vec<_>>(), [&b"one"[..], b"two", b"three"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ByteBatch {
    data: Vec<u8>,
    /// `ends[i]` is where message `i` ends in `data` (it starts where `i - 1` ends).
    ends: Vec<usize>,
}

impl ByteBatch {
    /// An empty batch.
    #[must_use]
    pub fn new() -> ByteBatch {
        ByteBatch::default()
    }

    /// How many messages it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether it holds no message.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Message `i`, if there is one.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.data[start..end])
    }

    /// The messages, in the order they were received.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        (0..self.len()).map(|i| self.get(i).unwrap_or_default())
    }

    /// Empties it, keeping its buffers.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    /// Removes the last message (one a broadcast subscriber found torn after copying it).
    pub(crate) fn pop_last(&mut self) {
        if self.ends.pop().is_some() {
            self.data.truncate(self.ends.last().copied().unwrap_or(0));
        }
    }

    /// Appends a message of `len` bytes, written by `fill` into the space made for it.
    pub(crate) fn push_with(&mut self, len: usize, fill: impl FnOnce(&mut [u8]) -> usize) {
        let start = self.data.len();
        self.data.resize(start + len, 0);
        let written = fill(&mut self.data[start..]);
        debug_assert_eq!(written, len);
        self.ends.push(self.data.len());
    }
}

impl<'a> IntoIterator for &'a ByteBatch {
    type Item = &'a [u8];
    type IntoIter = Box<dyn ExactSizeIterator<Item = &'a [u8]> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}
