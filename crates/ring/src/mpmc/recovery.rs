//! Dead claimants: the one place that decides whether a stuck slot can be recovered.
//!
//! A claimant records `claim = pos + 1` in its registration entry before the swap of the
//! index that claims `pos`, and only overwrites it at its next claim, which comes after it
//! published (producers) or released (consumers) `pos`. So while the slot at `pos` is stuck —
//! claimed (the index has moved past `pos`) but not finished — its claimant's entry reads
//! `claim == pos + 1`. Other entries may read the same value for a moment: a process whose
//! swap for `pos` failed clears its claim right after. [`resolve`] therefore recovers a slot
//! only when *every* entry claiming it is closed or dead; if one is alive it waits (the live one
//! is either the real claimant, which will finish, or a loser about to clear its claim).
//!
//! Three situations need it, and all three call [`resolve`]:
//! - a consumer whose next slot (`head`) is claimed by a producer but not published;
//! - a producer whose next slot (`tail`) still holds the previous lap's message because the
//!   consumer that claimed it never released it;
//! - a process taking over an entry whose occupant left or died, before making the entry its
//!   own: it *takes* the entry first (the swap to JOINING freezes the old claim, since nobody
//!   writes an entry they do not own) and resolves second, passing the entry as `taken`.
//!
//! A recovered slot is moved on with a compare-and-swap from the exact stuck value, so two
//! processes recovering the same slot count it once, and a slot the claimant finished in the
//! meantime is left alone: positions only grow, so the stuck value cannot come back.

use super::{Slots, before};
use crate::error::{Corruption, Side};
use crate::geometry::Geometry;
use crate::layout::SEQ_LOST;
use crate::mem::{Mem, WaitWord};
use crate::proc::Liveness;
use crate::registry::{self, EntryStatus};
use crate::sync::Ordering::{AcqRel, Acquire, Relaxed};

/// What [`resolve`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolution {
    /// The slot is not stuck: not claimed yet, finished, or on another lap.
    NotStuck,
    /// A live entry claims it: leave it to that process.
    Waiting,
    /// Every claimant was closed or dead: the slot was moved on (and counted).
    Recovered,
}

/// Resolves the slot at `pos` as claimed by `side`: a producer's claim (the slot should have
/// been published) or a consumer's (it should have been released).
///
/// `taken` is an entry of `side` that the caller has just taken over from a closed or dead
/// occupant whose claim was `pos + 1`: it counts as a dead claimant, and its (frozen) claim is
/// not read again.
///
/// # Errors
/// [`Corruption`] if the slot is stuck and no entry claims it, which a correct process cannot
/// cause.
pub(crate) fn resolve(
    mem: &Mem,
    geo: &Geometry,
    slots: &Slots,
    side: Side,
    pos: u64,
    liveness: &dyn Liveness,
    taken: Option<usize>,
) -> Result<Resolution, Corruption> {
    let seq_word = slots.seq(mem, pos);
    let header = mem.header();
    // What the slot reads while `pos` is stuck on this side, what recovery moves it to, the
    // index whose move past `pos` proves the claim, and who to tell.
    let (stuck, target, index, counter, wake) = match side {
        Side::Producer => (
            pos,
            pos.wrapping_add(1) | SEQ_LOST,
            &header.producer.tail,
            &header.counters.lost,
            WaitWord::NotEmpty,
        ),
        Side::Consumer => (
            pos.wrapping_add(1),
            pos.wrapping_add(slots.cap),
            &header.consumer.head,
            &header.counters.abandoned,
            WaitWord::NotFull,
        ),
    };
    let seq = seq_word.load(Acquire);
    if seq & !SEQ_LOST != stuck {
        return Ok(Resolution::NotStuck);
    }
    // SYNC(claim): Acquire pairs with the claimant's Release swap of the index, which follows
    // its Release store of `claim`: once we see the index past `pos`, the scan below sees the
    // claimant's `claim == pos + 1` (or a later value, stored only after it finished `pos`).
    if !before(pos, index.load(Acquire)) {
        return Ok(Resolution::NotStuck); // nobody claimed it yet: merely empty or full
    }
    let claim = pos.wrapping_add(1);
    let mut matched = taken.is_some();
    for entry in registry::side_range(geo, side) {
        if Some(entry) == taken {
            continue;
        }
        // SYNC(claim): Acquire pairs with the Release store of `claim` in `claim_position`.
        if mem.entry(entry).claim.load(Acquire) != claim {
            continue;
        }
        matched = true;
        if registry::entry_status(mem, entry, liveness) == EntryStatus::Live {
            return Ok(Resolution::Waiting);
        }
    }
    if !matched {
        // The claimant may have finished and moved on since we read `seq`: its newer claim is
        // stored after it finished, and our Acquire on `claim` then shows the slot moved on.
        if seq_word.load(Acquire) & !SEQ_LOST != stuck {
            return Ok(Resolution::NotStuck);
        }
        return Err(Corruption::new(
            match side {
                Side::Producer => "a claimed MPMC slot has no claimant in the producer table",
                Side::Consumer => "a claimed MPMC slot has no claimant in the consumer table",
            },
            pos,
            index.load(Relaxed),
        ));
    }
    if seq_word
        .compare_exchange(seq, target, AcqRel, Relaxed)
        .is_err()
    {
        return Ok(Resolution::NotStuck); // finished, or recovered by someone else
    }
    counter.fetch_add(1, Relaxed);
    crate::wait::notify(mem, wake);
    Ok(Resolution::Recovered)
}

/// Resolves the claim left in entry `index` of `side`, which the caller has just taken over
/// (see `registry::register`). Returns `false` if a live process claims the same slot, so
/// the entry must keep its claim for now.
pub(crate) fn resolve_taken(
    mem: &Mem,
    geo: &Geometry,
    side: Side,
    index: usize,
    liveness: &dyn Liveness,
) -> bool {
    // The entry is ours now, so the claim is frozen: its occupant closed (SYNC(close): the
    // Acquire pairs with its Release store of CLOSED, after its last claim) or died.
    let claim = mem.entry(index).claim.load(Acquire);
    let Some(pos) = claim.checked_sub(1) else {
        return true;
    };
    let slots = Slots::new(geo);
    match resolve(mem, geo, &slots, side, pos, liveness, Some(index)) {
        Ok(Resolution::Waiting) => false,
        // Corruption cannot come out with `taken` set (the taken entry matches); a ring a peer
        // corrupted is reported by the operations, not by attach.
        Ok(Resolution::NotStuck | Resolution::Recovered) | Err(_) => true,
    }
}
