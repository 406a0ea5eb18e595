//! Attach on arbitrary bytes: the input is a ring's memory as a hostile creator (or a stray
//! process) left it. `inspect` and every attach must return `Ok` or an error, never panic or
//! read out of bounds; an endpoint that does attach must survive a few operations on it.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use ringway_ring::{AttachOptions, RingMemory, WaitStrategy, inspect, mpmc, spsc};

/// The smallest memory a ring can be given (the header).
const MIN_LEN: usize = 1024;

fuzz_target!(|data: &[u8]| {
    // Round up to 8 so every word offset the ring may compute lies in the buffer; the rest
    // stays zero, as the tail of a fresh mapping would.
    let len = data.len().max(MIN_LEN).next_multiple_of(8);
    let memory = RingMemory::zeroed(len);
    // SAFETY: `memory` is a fresh private allocation of `len >= data.len()` bytes that nothing
    // else references yet; `data` is a separate buffer, so the ranges do not overlap.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), memory.as_ptr(), data.len()) };

    if let Ok(info) = inspect(&memory) {
        let _ = info.fill();
    }
    let opts = AttachOptions::new()
        .init_timeout(Duration::ZERO)
        .wait_strategy(WaitStrategy::Park)
        .liveness_interval(Duration::from_millis(1));
    let mut out = Vec::new();

    if let Ok(mut tx) = spsc::Producer::attach(&memory, &opts) {
        let max = tx.max_message();
        let _ = tx.push(b"fuzz");
        let _ = tx.push_deferred(&data[..data.len().min(max)]);
        tx.flush();
        let _ = tx.is_disconnected();
    }
    if let Ok(mut rx) = spsc::Consumer::attach(&memory, &opts) {
        for _ in 0..4 {
            let _ = rx.pop(&mut out);
        }
        if let Ok(grant) = rx.peek() {
            let _ = grant.to_vec();
            grant.release();
        }
        let _ = rx.pop_timeout(&mut out, Duration::ZERO);
        let _ = rx.is_disconnected();
    }
    if let Ok(mut tx) = mpmc::Producer::attach(&memory, &opts) {
        let _ = tx.push(&data[..data.len().min(8)]);
        let _ = tx.recover();
        let _ = tx.push_timeout(b"", Duration::ZERO);
        let _ = tx.abandoned();
    }
    if let Ok(mut rx) = mpmc::Consumer::attach(&memory, &opts) {
        for _ in 0..4 {
            let _ = rx.pop(&mut out);
        }
        let _ = rx.recover();
        let _ = rx.pop_timeout(&mut out, Duration::ZERO);
        let _ = rx.lost();
    }
    let _ = inspect(&memory);
});
