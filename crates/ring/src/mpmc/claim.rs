//! The claim loop both ends share: take the next position of one index (`tail` for
//! producers, `head` for consumers) whose slot is ready for this side.

use super::{Slots, before};
use crate::error::Corruption;
use crate::layout::SEQ_LOST;
use crate::mem::Mem;
use crate::sync::AtomicU64;
use crate::sync::Ordering::{Acquire, Relaxed, Release};

/// How many times in a row a claim may find a slot "ahead" while the index does not move
/// before the slot is declared corrupted (a correct peer cannot cause even one).
const STALL_LIMIT: u32 = 64;
/// Upper bound on the retries of one claim under contention, so that a hostile peer that keeps
/// moving an index cannot hold a caller in the loop forever.
const RETRY_LIMIT: u32 = 1 << 20;

/// Claims a position on one side. A slot is ready for this side when its `seq` (without the
/// `LOST` bit) equals `pos + offset` (`0` for producers, `1` for consumers). Returns the
/// claimed position and the slot's raw `seq`, or `None` when the ring is full (producers) or
/// empty (consumers).
pub(super) fn claim_position(
    mem: &Mem,
    slots: &Slots,
    index: &AtomicU64,
    claim: &AtomicU64,
    offset: u64,
) -> Result<Option<(u64, u64)>, Corruption> {
    let mut pos = index.load(Relaxed);
    let mut stalls = 0;
    for _ in 0..RETRY_LIMIT {
        // SYNC(publish)/SYNC(free): Acquire pairs with the Release store of `seq` by the other
        // side (a publication for consumers, a release for producers).
        let seq = slots.seq(mem, pos).load(Acquire);
        let want = pos.wrapping_add(offset);
        let s = seq & !SEQ_LOST;
        if s == want {
            // The claim is recorded before the swap, so a claimant that dies after the swap is
            // always traceable. SYNC(claim): published by the Release swap below; pairs with
            // the Acquire load of the index in `recovery::resolve`.
            claim.store(pos.wrapping_add(1), Release);
            match index.compare_exchange(pos, pos.wrapping_add(1), Release, Relaxed) {
                Ok(_) => return Ok(Some((pos, seq))),
                Err(actual) => {
                    // Not ours after all: a stale claim must not make us look like the
                    // claimant of a slot someone else holds.
                    claim.store(0, Release);
                    pos = actual;
                    stalls = 0;
                }
            }
        } else if before(s, want) {
            return Ok(None);
        } else {
            let actual = index.load(Relaxed);
            if actual == pos {
                stalls += 1;
                if stalls >= STALL_LIMIT {
                    return Err(Corruption::new(
                        "an MPMC slot sequence is ahead of its index",
                        seq,
                        want,
                    ));
                }
            } else {
                stalls = 0;
            }
            pos = actual;
        }
    }
    Err(Corruption::new(
        "an MPMC index kept moving for a million retries",
        pos,
        u64::from(RETRY_LIMIT),
    ))
}
