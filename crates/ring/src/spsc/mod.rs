//! The SPSC byte ring: one producer, one consumer, variable-size contiguous records.
//!
//! Positions are monotonically increasing `u64` byte offsets; a record at position `p` lives
//! at `p % capacity` of the data area, as an 8-byte header word followed by the payload,
//! padded to 8 bytes (a large payload starts at the next cache-line boundary instead). A record
//! that would cross the end of the data area is preceded by a padding record, so every payload
//! is contiguous, and a small record that would straddle two cache lines by a short one (see
//! `docs/layout.md`, *SPSC data area*).
//!
//! The header word is the commit (*in-band commit*): the producer stores it last, with
//! Release, and the consumer detects a new record by polling the word at its own position.
//! The consumer never reads the producer's index, so a small message crosses in the cache
//! lines of the record itself. Each side keeps the other's index in a private cache and
//! re-reads the shared one only when the cache says full (the producer; the consumer never
//! needs the producer's index at all).
//!
//! Both indices are private to their owner: the producer's `tail` and the consumer's `head`
//! are never read back from shared memory. What is read from shared memory (the consumer's
//! published `head`, record headers) is read once and checked against the attach-time
//! geometry; a violation is [`PushError::Corrupted`](crate::PushError::Corrupted) /
//! [`PopError::Corrupted`](crate::PopError::Corrupted).
//!
//! The files follow the two ends: `producer` (with its in-place [`Grant`]) and `consumer`
//! (with its [`ReadGrant`]).

mod consumer;
mod marks;
mod producer;

pub use consumer::{Consumer, ReadGrant};
pub use producer::{Grant, Producer};

use crate::error::Corruption;
use crate::mem::RingMemory;
use crate::wait::AttachOptions;

/// Positions at or beyond this are corrupt: 2^63 bytes is decades at memory bandwidth, and
/// the bound keeps `position + capacity` arithmetic far from overflow whatever a peer wrote.
pub(crate) const POSITION_LIMIT: u64 = 1 << 63;

/// A record the consumer found at its position: where it is, where its payload starts and
/// how long it is, and where the next one starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    /// The record's position (its header's).
    pub(crate) pos: u64,
    /// Bytes from the header to the payload (`8`, or up to 64 for an aligned record).
    pub(crate) gap: u64,
    /// Payload bytes.
    pub(crate) len: usize,
    /// The position after the record.
    pub(crate) next: u64,
}

/// Checks the `head` a reattaching endpoint resumes from (a peer may have written anything).
pub(crate) fn check_resumed_head(head: u64) -> Option<Corruption> {
    if head % 8 != 0 || head >= POSITION_LIMIT {
        return Some(Corruption::new(
            "consumer head must be 8-aligned and below 2^63",
            head,
            POSITION_LIMIT,
        ));
    }
    None
}

/// Creates an SPSC ring on the heap and attaches both ends: for use between threads of one
/// process, for tests and for benchmarks.
///
/// # Errors
/// [`crate::InitError`] if `capacity` is not a power of two in `32 ..= 2^32`.
///
/// # Examples
/// ```
/// let (mut tx, mut rx) = ringway_ring::spsc::heap(1024)?;
/// tx.push(b"ping")?;
/// let mut buf = Vec::new();
/// assert_eq!(rx.pop(&mut buf)?, 4);
/// assert_eq!(buf, b"ping");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn heap(capacity: u64) -> Result<(Producer, Consumer), crate::InitError> {
    let memory = RingMemory::heap(&crate::RingConfig::spsc(capacity))?;
    let opts = AttachOptions::default();
    let producer = Producer::attach(&memory, &opts)
        .expect("a freshly initialised heap ring accepts its producer");
    let consumer = Consumer::attach(&memory, &opts)
        .expect("a freshly initialised heap ring accepts its consumer");
    Ok((producer, consumer))
}
