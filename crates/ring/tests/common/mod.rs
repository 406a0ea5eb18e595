//! Helpers shared by the ring's integration tests: playing a hostile peer through the
//! documented layout, and fake processes for liveness.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ringway_ring::{ProcessId, RingMemory};

/// Pids at or above this are "processes" that tests declare dead (Linux pids stay below 2^22).
pub const FAKE_DEAD_PID: u32 = 0x4000_0000;

/// A liveness probe for which fake pids are dead and real ones are checked as usual.
pub fn probe(pid: u32, start_time: u64) -> bool {
    pid < FAKE_DEAD_PID && ringway_ring::is_alive(pid, start_time)
}

/// An identity that `probe` reports dead.
pub fn dead_identity(n: u32) -> ProcessId {
    ProcessId {
        pid: FAKE_DEAD_PID + n,
        start_time: 1,
    }
}

fn word(memory: &RingMemory, offset: usize) -> &AtomicU64 {
    assert!(offset % 8 == 0 && offset + 8 <= memory.len());
    // SAFETY: in bounds and 8-aligned (asserted; the memory is 128-aligned); an AtomicU64 may
    // view any 8 aligned bytes, and the memory outlives the returned reference's use.
    unsafe { &*memory.as_ptr().add(offset).cast::<AtomicU64>() }
}

/// Writes a 64-bit word at `offset` of the ring, as a hostile peer would.
pub fn poke(memory: &RingMemory, offset: usize, value: u64) {
    word(memory, offset).store(value, Ordering::SeqCst);
}

/// Reads the 64-bit word at `offset` of the ring.
pub fn peek(memory: &RingMemory, offset: usize) -> u64 {
    word(memory, offset).load(Ordering::SeqCst)
}

/// A deterministic xorshift generator (tests must be reproducible).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The message `seq` of length `len`: the sequence number then a pattern derived from it.
pub fn message(seq: u64, len: usize) -> Vec<u8> {
    let bytes = seq.to_le_bytes();
    (0..len)
        .map(|i| match bytes.get(i) {
            Some(&b) => b,
            None => (seq as u8).wrapping_mul(31).wrapping_add(i as u8),
        })
        .collect()
}

/// Returns once a consumer of the ring has announced that it is going to sleep (the header's
/// `waiters` count, read through `inspect`): it has then re-checked its condition at least
/// once, after everything this thread did before. Panics after 20 s.
pub fn wait_for_a_waiting_consumer(memory: &RingMemory) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while ringway_ring::inspect(memory).unwrap().consumers_waiting == 0 {
        assert!(Instant::now() < deadline, "no consumer started waiting");
        std::thread::sleep(Duration::from_millis(1));
    }
}
