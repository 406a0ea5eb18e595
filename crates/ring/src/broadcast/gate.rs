//! The block-policy writer's gate: may the slot of position `oldest` be overwritten?
//!
//! It may when every live reader's cursor is past `oldest`. Reading every entry for every
//! message would cost the writer a line per reader, so the writer keeps a *floor* from its last
//! scan and only scans again when it reaches it: the slowest reader's cursor then, lowered to
//! `tail - history - margin` so that a reader joining meanwhile is safe (see `join`). Cursors
//! only grow, so a floor taken earlier is never above the truth for readers still attached.
//!
//! Counted are ACTIVE entries not known to be dead. Liveness is probed (a `/proc` read or a
//! lock query per entry) only when the writer's slow-path checks are due, once per liveness
//! interval; an entry found dead is remembered with its `ctl` word (a dead process writes
//! nothing, and a new registration changes the word), so it costs nothing until it changes.
//!
//! A reader's cursor is untrusted: one ahead of the writer's position counts as caught up (it
//! only loses that reader its own messages); one behind holds the writer, which is what a
//! live reader that stops reading does under this policy.

use super::join::margin;
use crate::error::Side;
use crate::geometry::Geometry;
use crate::layout::{STATE_ACTIVE, ctl_state};
use crate::mem::Mem;
use crate::proc::Liveness;
use crate::registry::{self, EntryStatus};
use crate::sync::Ordering::{Acquire, Relaxed, SeqCst};
use crate::sync::fence;

#[derive(Debug)]
pub(super) struct Gate {
    /// Positions before this may be overwritten without a scan.
    floor: u64,
    /// Per reader entry: the `ctl` word it had when found dead, `0` if not known dead.
    dead: Vec<u64>,
}

impl Gate {
    pub(super) fn new(geo: &Geometry) -> Gate {
        Gate {
            floor: 0,
            dead: vec![0; geo.max_consumers as usize],
        }
    }

    /// Whether `oldest` may be overwritten without scanning (one compare).
    #[inline]
    pub(super) fn open(&self, oldest: u64) -> bool {
        oldest < self.floor
    }

    /// The readers the writer must wait for, as a snapshot for the waiting loop's `ready`.
    pub(super) fn dead(&self) -> &[u64] {
        &self.dead
    }

    /// Scans the table: returns whether `oldest` may be overwritten now, and sets the floor.
    /// `tail` is the writer's position (every message before it is published); `probe`: also
    /// ask `liveness` about the entries counted (the slow-path checks are due).
    pub(super) fn scan(
        &mut self,
        mem: &Mem,
        geo: &Geometry,
        tail: u64,
        oldest: u64,
        probe: bool,
        liveness: &dyn Liveness,
    ) -> bool {
        // SYNC(join): pairs with the SeqCst fence in `join::confirm` (see there).
        fence(SeqCst);
        if probe {
            for (slot, index) in self
                .dead
                .iter_mut()
                .zip(registry::side_range(geo, Side::Consumer))
            {
                let ctl = mem.entry(index).ctl.load(Relaxed);
                *slot = if ctl_state(ctl) == STATE_ACTIVE
                    && registry::entry_status(mem, index, liveness) == EntryStatus::Dead
                {
                    ctl
                } else {
                    0
                };
            }
        }
        let slowest = slowest(mem, geo, tail, &self.dead);
        let reserve = tail
            .saturating_sub(u64::from(geo.history))
            .saturating_sub(margin(geo));
        self.floor = slowest.map_or(reserve, |s| s.min(reserve));
        // With no live reader nothing would ever release the writer: it does not wait.
        slowest.is_none_or(|s| oldest < s)
    }
}

/// The cursor of the slowest reader counted (ACTIVE, not known dead), clamped to `tail`;
/// `None` if none is counted. Loads only, no liveness probe.
pub(super) fn slowest(mem: &Mem, geo: &Geometry, tail: u64, dead: &[u64]) -> Option<u64> {
    let mut slowest: Option<u64> = None;
    for (known_dead, index) in dead.iter().zip(registry::side_range(geo, Side::Consumer)) {
        let entry = mem.entry(index);
        // SYNC(register): Acquire pairs with the Release store of ACTIVE in `activate`, which
        // follows the joining reader's store of its first cursor.
        let ctl = entry.ctl.load(Acquire);
        if ctl_state(ctl) != STATE_ACTIVE || ctl == *known_dead {
            continue;
        }
        // SYNC(cursor): Acquire pairs with the reader's Release store of its cursor after it
        // finished reading a slot: the reader's copy happens before our overwrite.
        let cursor = entry.cursor.load(Acquire);
        // Positions are below 2^62 (the writer's own, and a cursor is clamped to it), so plain
        // comparisons order them.
        let cursor = cursor.min(tail);
        slowest = Some(slowest.map_or(cursor, |s: u64| s.min(cursor)));
    }
    slowest
}
