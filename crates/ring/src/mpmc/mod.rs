//! The MPMC slot ring: many producers, many consumers, fixed-size slots (Vyukov's bounded
//! queue, laid out in shared memory).
//!
//! Each slot carries a sequence number `seq`. For a claim position `pos` and slot
//! `pos % capacity`: `seq == pos` means free for the producer claiming `pos`, `pos + 1` means
//! published for the consumer claiming `pos`, and `pos + capacity` means free again for the
//! producer of the next lap. Producers claim positions by a compare-and-swap on `tail`,
//! consumers on `head` (`claim`).
//!
//! A process can die between its swap and its `seq` store, which would stall every process
//! behind it. So each claimant stores the position it is about to claim in its registration
//! entry *before* the swap (and clears it if the swap fails); a process that finds a slot stuck
//! can then find the claimant, and if it is dead, skip the slot (counted in
//! [`lost`](Consumer::lost)) or reclaim it (counted in [`abandoned`](Producer::abandoned)).
//! That decision is made in one place, `recovery`, for the three situations that need it: a
//! consumer finding the next slot unpublished, a producer finding the next slot unreleased,
//! and a process taking over the entry of one that left or died. See `docs/layout.md`, *Dead
//! claimants*.
//!
//! The files follow the algorithm's seams: `claim` (the shared claim loop), `recovery`
//! (dead claimants), `producer` and `consumer` (the two ends and their grants).

mod claim;
mod consumer;
mod producer;
pub(crate) mod recovery;

pub use consumer::{Consumer, SlotReadGrant};
pub use producer::{Producer, SlotGrant};

use crate::geometry::Geometry;
use crate::layout::SLOT_HEADER_LEN;
use crate::mem::{Mem, RingMemory};
use crate::sync::AtomicU64;

/// `a < b` for positions, robust to wrap-around.
///
/// Positions also advance with `wrapping_add`: a peer can set an index to any value, and one
/// near `u64::MAX` must wrap (as 2^64 honest claims would) rather than overflow, which panics
/// wherever overflow checks are on.
#[inline]
pub(crate) fn before(a: u64, b: u64) -> bool {
    (a.wrapping_sub(b) as i64) < 0
}

/// How often a waiting end's readiness check scans the other side's registration table
/// for a clean close: on the first call of each pause, then every `CLOSE_EVERY` calls.
///
/// A table has up to 256 entries (32 by default), one cache line each, and the check runs on
/// every spin: scanning it every time costs a load per entry per spin, which delays seeing
/// the message the spin waits for. A close is still seen at once where it matters: the call
/// a pause makes just before it sleeps is the first of that pause, and so scans (a sleeper
/// never misses a close, whose wake-up pairs with that check); a spinning end sees it within
/// `CLOSE_EVERY` spins, or when its operation is retried (every 1024 spins), whichever is
/// first.
const CLOSE_EVERY: u32 = 16;

/// Whether this call of a readiness check (counted in `calls`, one counter per pause) scans
/// the registration table; see [`CLOSE_EVERY`].
#[inline]
fn closed_check_due(calls: &core::cell::Cell<u32>) -> bool {
    let n = calls.get();
    calls.set(n.wrapping_add(1));
    n % CLOSE_EVERY == 0
}

/// The shape both ends need, copied out of the attach-time geometry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slots {
    data: u64,
    pub(crate) stride: u64,
    pub(crate) cap: u64,
    mask: u64,
    pub(crate) slot_size: u64,
}

impl Slots {
    pub(crate) fn new(geo: &Geometry) -> Slots {
        Slots {
            data: geo.data_offset,
            stride: geo.slot_stride,
            cap: geo.capacity,
            mask: geo.mask(),
            slot_size: u64::from(geo.slot_size),
        }
    }

    #[inline]
    pub(crate) fn slot(&self, pos: u64) -> u64 {
        self.data + (pos & self.mask) * self.stride
    }

    #[inline]
    pub(crate) fn seq<'m>(&self, mem: &'m Mem, pos: u64) -> &'m AtomicU64 {
        mem.word(self.slot(pos))
    }

    #[inline]
    pub(crate) fn len<'m>(&self, mem: &'m Mem, pos: u64) -> &'m AtomicU64 {
        mem.word(self.slot(pos) + 8)
    }

    #[inline]
    pub(crate) fn payload(&self, pos: u64) -> u64 {
        self.slot(pos) + SLOT_HEADER_LEN as u64
    }
}

/// Creates an MPMC ring on the heap (for use between threads, tests and benchmarks) and
/// returns its memory, to which any number of producers and consumers attach.
///
/// # Errors
/// [`crate::InitError`] if the configuration is invalid.
///
/// # Examples
/// ```
/// use ringway_ring::mpmc;
/// let memory = mpmc::heap(64, 16)?;
/// let opts = Default::default();
/// let mut tx = mpmc::Producer::attach(&memory, &opts)?;
/// let mut rx = mpmc::Consumer::attach(&memory, &opts)?;
/// tx.push(b"job")?;
/// let mut out = Vec::new();
/// rx.pop(&mut out)?;
/// assert_eq!(out, b"job");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn heap(slots: u64, slot_size: u32) -> Result<RingMemory, crate::InitError> {
    RingMemory::heap(&crate::RingConfig::mpmc(slots, slot_size))
}

/// Slots claimed by producers and not yet by consumers, at most the capacity.
fn queued(ep: &crate::endpoint::Endpoint) -> u64 {
    let header = ep.mem.header();
    // Relaxed: a count to report, no access to the data depends on it.
    let head = header.consumer.head.load(crate::sync::Ordering::Relaxed);
    let tail = header.producer.tail.load(crate::sync::Ordering::Relaxed);
    tail.saturating_sub(head).min(ep.geo.capacity)
}
