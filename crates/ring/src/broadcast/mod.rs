//! The broadcast ring: one writer, many readers, and every reader reads every message.
//!
//! The data area is `capacity` slots laid out like MPMC slots (`seq`, `len`, payload), but a
//! slot is never claimed: the writer writes position `p` into slot `p % capacity`, and each
//! reader keeps its own cursor, in its own registration entry, and reads the slots in order.
//! A slot's `seq` is a *stamp*, a seqlock word: `p + 1` once message `p` is complete, with
//! bit 63 ([`STAMP_BUSY`](crate::layout::STAMP_BUSY)) set while the writer is writing it. A
//! reader checks the stamp before it copies and again after: if the writer started
//! overwriting the slot in between, the second check fails and the copy is thrown away, so a
//! torn message is never delivered (see `docs/layout.md`, *Broadcast data area*).
//!
//! What the writer does when the slowest reader is a whole ring behind is the ring's
//! [`Policy`](crate::Policy):
//! - **block**: it waits until every live reader has moved past the slot (`gate`). A reader
//!   that dies stops counting on the writer's slow path, within the liveness interval. With no
//!   live reader the writer does not wait: nothing would ever release it.
//! - **overwrite**: it never waits and never reads a reader's entry; a reader that was lapped
//!   gets [`PopError::Lagged`](crate::PopError::Lagged) with the exact number of messages it
//!   missed, and continues at the oldest message still in the ring.
//!
//! A reader that attaches late starts at the next message, or with the newest `history`
//! messages. Under the block policy it must make sure the writer has seen its cursor before the
//! writer overwrites anything it has not read (`join`).
//!
//! A reader writes nothing but its own entry (its cursor and registration) and the futex
//! words of the wait protocol; it never writes the data area, which can therefore be mapped
//! read-only in a reader's process ([`Reader::protect_data`]).
//!
//! Positions are below 2^62 (`tail` is validated against it wherever it is read, and a
//! cursor only moves to a validated `tail` or one past a message read), so they are compared
//! as plain integers.
//!
//! The files follow the algorithm's seams: `join` (where a new reader starts), `gate` (how a
//! block-policy writer finds the slowest reader), `writer` and `reader` (the two ends).

mod gate;
mod join;
mod reader;
mod writer;

pub use reader::{ReadGrant, Reader};
pub use writer::Writer;

use crate::mem::RingMemory;
use crate::sync::AtomicU64;
use crate::sync::Ordering::Relaxed;
use crate::sync::fence;

/// Reads the writer's published `tail` for a decision that depends on what was written
/// before it. Relaxed plus an Acquire fence rather than an Acquire load, because readers may
/// map the ring read-only where std promises only Relaxed loads.
///
/// SYNC(tail): the fence pairs with the writer's Release store of `tail` in `Writer::publish`.
#[inline]
pub(crate) fn load_tail(tail: &AtomicU64) -> u64 {
    let t = tail.load(Relaxed);
    fence(crate::sync::Ordering::Acquire);
    t
}

/// Creates a broadcast ring on the heap (for threads, tests and benchmarks) with `slots`
/// slots of `slot_size` bytes, the block policy and no history, and returns its memory, to
/// which one writer and any number of readers (up to 32) attach. For other settings, use
/// [`RingMemory::heap`] with [`RingConfig::broadcast`](crate::RingConfig::broadcast).
///
/// # Errors
/// [`crate::InitError`] if the configuration is invalid.
///
/// # Examples
/// ```
/// use ringway_ring::broadcast;
/// let memory = broadcast::heap(64, 16)?;
/// let opts = Default::default();
/// let mut a = broadcast::Reader::attach(&memory, &opts)?;
/// let mut b = broadcast::Reader::attach(&memory, &opts)?;
/// let mut tx = broadcast::Writer::attach(&memory, &opts)?;
/// tx.push(b"tick")?;
/// let mut out = Vec::new();
/// a.pop(&mut out)?;
/// assert_eq!(out, b"tick");
/// b.pop(&mut out)?;
/// assert_eq!(out, b"tick", "every reader reads every message");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn heap(slots: u64, slot_size: u32) -> Result<RingMemory, crate::InitError> {
    RingMemory::heap(&crate::RingConfig::broadcast(slots, slot_size))
}
