//! Inputs found by the fuzz targets (`fuzz/`) that broke the ring, kept as plain tests so they
//! stay fixed without a fuzzer. Each test names the target and what the input did.

#![cfg(not(ringway_loom))]

mod common;

use std::time::Duration;

use common::poke;
use ringway_ring::{AttachOptions, PopError, PushError, RingConfig, RingMemory, mpmc};

const TAIL: usize = 128;
const HEAD: usize = 256;

/// `ops`: a peer that set the MPMC indices near `u64::MAX` made `pos + 1` overflow, which is
/// a panic wherever overflow checks are on (debug builds, tests, fuzzing). Positions advance
/// wrapping now; such indices are refused as `Corrupted` (or read as empty or full), and no
/// call panics, whichever slot and side meets them.
#[test]
fn mpmc_indices_at_the_top_of_the_range_do_not_overflow() {
    let hostile = [u64::MAX, u64::MAX - 1, u64::MAX - 4, 1 << 63, (1 << 63) - 1];
    let slot = |i: u64| 1024 + 2 * 128 + (i as usize % 4) * 24;
    for &index in &hostile {
        for seq_offset in [0u64, 1, 4] {
            let memory =
                RingMemory::heap(&RingConfig::mpmc(4, 8).max_producers(1).max_consumers(1))
                    .unwrap();
            let opts = AttachOptions::new().liveness_interval(Duration::from_millis(1));
            let mut tx = mpmc::Producer::attach(&memory, &opts).unwrap();
            let mut rx = mpmc::Consumer::attach(&memory, &opts).unwrap();
            poke(&memory, TAIL, index);
            poke(&memory, HEAD, index);
            poke(&memory, slot(index), index.wrapping_add(seq_offset));
            let mut out = Vec::new();
            let case = format!("index {index:#x}, seq index + {seq_offset}");

            let pushed = tx.push(b"x");
            assert!(
                matches!(
                    pushed,
                    Ok(()) | Err(PushError::Full | PushError::Corrupted(_))
                ),
                "{case}: push {pushed:?}"
            );
            let recovered = tx.recover();
            assert!(
                matches!(recovered, Ok(false) | Err(PushError::Corrupted(_))),
                "{case}: producer recover {recovered:?}"
            );
            let recovered = rx.recover();
            assert!(
                matches!(recovered, Ok(false) | Err(PopError::Corrupted(_))),
                "{case}: consumer recover {recovered:?}"
            );
            let popped = rx.pop(&mut out);
            assert!(
                matches!(
                    popped,
                    Ok(_) | Err(PopError::Empty | PopError::Corrupted(_))
                ),
                "{case}: pop {popped:?}"
            );
            let popped = rx.pop_timeout(&mut out, Duration::from_millis(5));
            assert!(
                matches!(
                    popped,
                    Ok(_) | Err(PopError::Timeout | PopError::Corrupted(_))
                ),
                "{case}: pop_timeout {popped:?}"
            );
            let pushed = tx.push_timeout(b"y", Duration::from_millis(5));
            assert!(
                matches!(
                    pushed,
                    Ok(()) | Err(PushError::Timeout | PushError::Corrupted(_))
                ),
                "{case}: push_timeout {pushed:?}"
            );
        }
    }
}
