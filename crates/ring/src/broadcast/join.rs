//! Where a reader that attaches starts, and how it makes a block-policy writer wait for it.
//!
//! A new reader starts at `tail - history` (the newest `history` messages, or as many as were
//! written). Under the overwrite policy that is all: the writer never looks at readers, and a
//! reader whose start is overwritten before it reads it is told so by the stamp check, as any
//! lapped reader is.
//!
//! Under the block policy the writer must not overwrite a position at or after the reader's
//! cursor once the reader is attached. The writer does not read the table on every message: it
//! keeps a *floor* below which it may overwrite without looking, computed at its last scan as
//! `min(slowest live reader, tail_at_scan - history - margin)` (see `gate`), where
//! `margin = (capacity - history) / 2`. The two ends meet like Dekker's:
//!
//! - the reader stores its cursor, then its entry's ACTIVE state (Release), issues a SeqCst
//!   fence and loads `tail`;
//! - the writer stores `tail` (Release), and when it scans, issues a SeqCst fence and loads
//!   the entries.
//!
//! Either the writer's scan sees the reader (and its floor is at most the cursor), or the
//! reader's load sees the `tail` the writer had when it scanned, so the writer's floor is at
//! most `t' - history - margin`, with `t'` the tail the reader loaded. The reader's start
//! `t - history` (from its earlier load `t`) is therefore safe from every scan that missed it
//! when `t' - t <= margin`. If the writer moved further during the join, the reader moves its
//! start to the newer tail, stores it and checks again: each round only needs the writer to
//! publish fewer than `margin` messages in the few nanoseconds between two loads. Rounds are
//! bounded; a reader that loses every round (a writer faster than the join, with no slower
//! reader to hold it) starts anyway, and if its start is overwritten it learns so from the stamp
//! check as [`Lagged`](crate::PopError::Lagged).

use super::load_tail;
use crate::geometry::{Geometry, Policy};
use crate::layout::BROADCAST_MAX_POSITION;
use crate::mem::Mem;
use crate::sync::Ordering::{Relaxed, SeqCst};
use crate::sync::fence;

/// How many times a joining reader re-reads the writer's progress before it gives up on
/// being protected from its first overwrite (see the module docs).
const JOIN_ROUNDS: u32 = 64;

/// The writer's margin: how far it may get ahead of a joining reader's view of `tail` without
/// scanning the table again. Both ends compute it from their local geometry.
pub(super) fn margin(geo: &Geometry) -> u64 {
    (geo.capacity - u64::from(geo.history)) / 2
}

/// The published `tail`, if it is a valid position (a hostile writer may have written any
/// value; an invalid one makes the reader start at `0` and find out from the stamps).
pub(super) fn tail(mem: &Mem) -> u64 {
    let t = load_tail(&mem.header().producer.tail);
    if t >= BROADCAST_MAX_POSITION { 0 } else { t }
}

/// Chooses a new reader's start and stores it as its cursor, before the entry becomes ACTIVE
/// (whose Release store publishes it). Returns `(start, tail)`.
pub(super) fn propose(mem: &Mem, geo: &Geometry, index: usize) -> (u64, u64) {
    let t = tail(mem);
    let start = t.saturating_sub(u64::from(geo.history));
    mem.entry(index).cursor.store(start, Relaxed);
    (start, t)
}

/// After the entry is ACTIVE: under the block policy, makes sure every writer scan that missed
/// this reader left its start alone (see the module docs). Returns the start.
pub(super) fn confirm(mem: &Mem, geo: &Geometry, index: usize, start: u64, t: u64) -> u64 {
    if geo.policy == Policy::Overwrite {
        return start;
    }
    let margin = margin(geo);
    let (mut start, mut t) = (start, t);
    for _ in 0..JOIN_ROUNDS {
        // SYNC(join): pairs with the SeqCst fence in `gate::scan`: either the writer's scan
        // sees our ACTIVE entry and cursor, or this load sees the tail it scanned at.
        fence(SeqCst);
        let now = tail(mem);
        if now <= t + margin {
            return start;
        }
        t = now;
        start = t.saturating_sub(u64::from(geo.history));
        mem.entry(index).cursor.store(start, Relaxed);
    }
    start
}
