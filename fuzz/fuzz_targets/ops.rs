//! An arbitrary sequence of operations on a valid ring, interleaved with corrupting writes of
//! fuzz-chosen values at fuzz-chosen offsets.
//!
//! The input's first bytes choose the ring (SPSC or MPMC, and its geometry); every following
//! byte starts one operation. The ring must never panic, loop or access memory out of bounds.
//! Until the first corrupting write, every result is also checked against a model: FIFO order
//! and content, `TooLarge` exactly above the maximum, `Empty` only when nothing published is
//! left, `Full` (MPMC) exactly at capacity, `Closed` exactly when the other side is gone.

#![no_main]

use std::collections::VecDeque;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use ringway_ring::layout::{padding_word, record_word};
use ringway_ring::{
    AttachOptions, PopError, PushError, RingConfig, RingMemory, WaitStrategy, mpmc, spsc,
};

#[path = "../common/input.rs"]
mod input;
use input::{Input, message};

/// A length in `0 ..= max + 8`, so that some requests are too large.
fn length(input: &mut Input<'_>, max: usize) -> usize {
    usize::from(input.u16()) % (max + 9)
}

/// Writes a fuzz-chosen value at a fuzz-chosen offset of the ring, as a hostile peer would.
fn corrupt(input: &mut Input<'_>, memory: &RingMemory) {
    let len = memory.len();
    let mode = input.u8();
    let offset = usize::from(input.u16()) % len;
    let word_at = (offset & !7).min(len - 8);
    let value = match mode % 8 {
        0 => input.u64(),
        1 => u64::from(input.u8()),
        2 => u64::MAX - u64::from(input.u8()),
        // A well-formed SPSC header for some position, possibly of another lap.
        3 => record_word(u64::from(input.u16()) * 8, u64::from(input.u16())),
        4 => padding_word(u64::from(input.u16()) * 8, u64::from(input.u16())),
        // One bit flipped in the word already there.
        5 => read_word(memory, word_at) ^ (1 << (input.u8() % 64)),
        // The word plus or minus a little: off-by-one lengths, indices and sequences.
        6 => read_word(memory, word_at).wrapping_add(u64::from(input.u8()) as i8 as u64),
        _ => {
            let byte = input.u8();
            // SAFETY: `offset < len` of the ring's private heap buffer; this single-threaded
            // target holds no reference to those bytes, and a byte write cannot tear.
            unsafe { memory.as_ptr().add(offset).write_volatile(byte) };
            return;
        }
    };
    // SAFETY: `word_at + 8 <= len` and `word_at` is a multiple of 8 of a 128-aligned buffer,
    // so the 8 bytes are in bounds and aligned; nothing holds a reference to them.
    unsafe {
        memory
            .as_ptr()
            .add(word_at)
            .cast::<u64>()
            .write_volatile(value)
    };
}

fn read_word(memory: &RingMemory, at: usize) -> u64 {
    // SAFETY: as in `corrupt`: in bounds, aligned, no reference to the bytes exists.
    unsafe { memory.as_ptr().add(at).cast::<u64>().read_volatile() }
}

fn options() -> AttachOptions {
    AttachOptions::new()
        .init_timeout(Duration::ZERO)
        .wait_strategy(WaitStrategy::Park)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input { data };
    let shape = input.u8();
    if shape & 1 == 0 {
        spsc_ops(shape >> 1, &mut input);
    } else {
        mpmc_ops(shape >> 1, &mut input);
    }
});

/// The SPSC model: the committed messages in order, and how many of them are surely published
/// (deferred ones are published by a flush, which the producer may also do on its own).
struct SpscModel {
    queue: VecDeque<Vec<u8>>,
    visible: usize,
    clean: bool,
}

impl SpscModel {
    fn committed(&mut self, msg: Vec<u8>, deferred: bool) {
        self.queue.push_back(msg);
        if !deferred {
            self.visible = self.queue.len();
        }
    }

    fn push_result(&self, result: Result<(), PushError>, len: usize, max: usize, rx_gone: bool) {
        if !self.clean {
            return;
        }
        match result {
            Err(PushError::TooLarge { .. }) => assert!(len > max, "TooLarge for {len} <= {max}"),
            _ if len > max => panic!("a push of {len} > {max} gave {result:?}"),
            Err(PushError::Closed) => assert!(rx_gone, "Closed with a consumer attached"),
            _ if rx_gone => panic!("a push with the consumer gone gave {result:?}"),
            Ok(()) | Err(PushError::Full | PushError::Timeout) => {}
            Err(e) => panic!("push on a clean ring: {e}"),
        }
    }

    /// Checks a popped (or peeked) message; `take` removes it from the model.
    fn popped(&mut self, result: Result<Vec<u8>, PopError>, tx_gone: bool, take: bool) {
        if !self.clean {
            return;
        }
        match result {
            Ok(got) => {
                let want = if take {
                    self.queue.pop_front()
                } else {
                    self.queue.front().cloned()
                };
                assert_eq!(Some(got), want, "FIFO content");
                if take {
                    self.visible = self.visible.saturating_sub(1);
                }
            }
            Err(PopError::Empty | PopError::Timeout) => {
                assert_eq!(self.visible, 0, "empty with published messages");
                assert!(!tx_gone, "Empty instead of Closed after the producer left");
            }
            Err(PopError::Closed) => {
                assert!(tx_gone, "Closed with the producer attached");
                assert!(self.queue.is_empty(), "Closed before the ring was drained");
            }
            Err(e) => panic!("pop on a clean ring: {e}"),
        }
    }
}

fn spsc_ops(shape: u8, input: &mut Input<'_>) {
    let capacity = 32u64 << (shape % 8);
    let memory = RingMemory::heap(&RingConfig::spsc(capacity)).expect("a valid SPSC config");
    let opts = options();
    let mut tx = Some(spsc::Producer::attach(&memory, &opts).expect("fresh ring: producer"));
    let mut rx = Some(spsc::Consumer::attach(&memory, &opts).expect("fresh ring: consumer"));
    let max = tx.as_ref().map_or(0, spsc::Producer::max_message);
    let mut model = SpscModel {
        queue: VecDeque::new(),
        visible: 0,
        clean: true,
    };
    let mut seq = 0u64;
    let mut out = Vec::new();

    while !input.is_empty() {
        let op = input.u8();
        let (tx_gone, rx_gone) = (tx.is_none(), rx.is_none());
        match op % 16 {
            // Producer operations.
            0..=4 => {
                let Some(p) = tx.as_mut() else { continue };
                let len = length(input, max);
                let msg = message(seq, len);
                seq += 1;
                let (result, deferred) = match op % 16 {
                    0 => (p.push(&msg), false),
                    1 => (p.push_deferred(&msg), true),
                    2 => (p.push_timeout(&msg, Duration::ZERO), false),
                    _ => match p.reserve(len) {
                        Ok(mut grant) => {
                            grant.write(0, &msg);
                            match input.u8() % 4 {
                                0 => {
                                    grant.commit();
                                    model.committed(msg, false);
                                }
                                1 => {
                                    grant.commit_deferred();
                                    model.committed(msg, true);
                                }
                                2 => {
                                    let keep = usize::from(input.u8()) % (len + 1);
                                    grant.commit_partial(keep);
                                    model.committed(msg[..keep].to_vec(), false);
                                }
                                _ => drop(grant),
                            }
                            model.push_result(Ok(()), len, max, rx_gone);
                            continue;
                        }
                        Err(e) => (Err(e), false),
                    },
                };
                model.push_result(result, len, max, rx_gone);
                if result.is_ok() {
                    model.committed(msg, deferred);
                }
            }
            5 => {
                if let Some(p) = tx.as_mut() {
                    p.flush();
                    model.visible = model.queue.len();
                }
            }
            // Consumer operations.
            6..=8 => {
                let Some(c) = rx.as_mut() else { continue };
                let result = match op % 16 {
                    6 => c.pop(&mut out),
                    _ => c.pop_timeout(&mut out, Duration::ZERO),
                };
                model.popped(result.map(|_| out.clone()), tx_gone, true);
            }
            9 | 10 => {
                let Some(c) = rx.as_mut() else { continue };
                let release = op % 16 == 9;
                let result = match c.peek() {
                    Ok(grant) => {
                        let bytes = grant.to_vec();
                        let mut first = [0u8; 3];
                        let n = grant.copy_to(&mut first);
                        assert_eq!(first[..n], bytes[..n]);
                        if release {
                            grant.release();
                        }
                        Ok(bytes)
                    }
                    Err(e) => Err(e),
                };
                model.popped(result, tx_gone, release);
            }
            11 => {
                if let Some(c) = rx.as_mut() {
                    c.flush();
                }
            }
            12 => {
                if input.u8() % 2 == 0 {
                    if tx.take().is_some() {
                        model.visible = model.queue.len(); // a dropped producer flushes
                    }
                } else {
                    rx = None;
                }
            }
            13 => {
                if let Some(p) = tx.as_ref() {
                    let gone = p.is_disconnected();
                    assert!(
                        !model.clean || gone == rx_gone,
                        "producer's is_disconnected"
                    );
                }
                if let Some(c) = rx.as_ref() {
                    let gone = c.is_disconnected();
                    assert!(
                        !model.clean || gone == tx_gone,
                        "consumer's is_disconnected"
                    );
                }
            }
            _ => {
                corrupt(input, &memory);
                model.clean = false;
            }
        }
    }
}

/// The MPMC model: claimed positions in order, `None` for a cancelled claim.
struct MpmcModel {
    queue: VecDeque<Option<Vec<u8>>>,
    cap: usize,
    clean: bool,
}

impl MpmcModel {
    fn push_result(&self, result: Result<(), PushError>, len: usize, max: usize, rx_gone: bool) {
        if !self.clean {
            return;
        }
        let full = self.queue.len() == self.cap;
        match result {
            Err(PushError::TooLarge { .. }) => assert!(len > max, "TooLarge for {len} <= {max}"),
            _ if len > max => panic!("a push of {len} > {max} gave {result:?}"),
            // With every consumer gone a push may still succeed until the producer checks.
            Err(PushError::Closed) => assert!(rx_gone, "Closed with a consumer attached"),
            _ if rx_gone && full => panic!("a push to a full ring without consumers: {result:?}"),
            Ok(()) => assert!(!full, "a push into a full ring succeeded"),
            Err(PushError::Full | PushError::Timeout) => {
                assert!(
                    full,
                    "Full with {} of {} slots used",
                    self.queue.len(),
                    self.cap
                );
            }
            Err(e) => panic!("push on a clean ring: {e}"),
        }
    }

    fn popped(&mut self, result: Result<Vec<u8>, PopError>, tx_gone: bool) {
        if !self.clean {
            return;
        }
        // Consumers skip cancelled claims silently.
        let want = loop {
            match self.queue.pop_front() {
                Some(None) => {}
                Some(Some(msg)) => break Some(msg),
                None => break None,
            }
        };
        match (result, want) {
            (Ok(got), Some(want)) => assert_eq!(got, want, "FIFO content"),
            (Err(PopError::Empty | PopError::Timeout), None) => {
                assert!(
                    !tx_gone,
                    "Empty instead of Closed after every producer left"
                );
            }
            (Err(PopError::Closed), None) => assert!(tx_gone, "Closed with a producer attached"),
            (result, want) => panic!("pop gave {result:?}, the model has {want:?}"),
        }
    }
}

fn mpmc_ops(shape: u8, input: &mut Input<'_>) {
    let slots = 2u64 << (shape % 6);
    let slot_size = u32::from(input.u8() % 65);
    let parties = input.u8();
    let (producers, consumers) = (1 + parties % 2, 1 + (parties >> 1) % 2);
    let config = RingConfig::mpmc(slots, slot_size)
        .max_producers(u32::from(producers + (parties >> 2) % 2))
        .max_consumers(u32::from(consumers + (parties >> 3) % 2));
    let memory = RingMemory::heap(&config).expect("a valid MPMC config");
    let opts = options();
    let mut txs: Vec<Option<mpmc::Producer>> = (0..producers)
        .map(|_| Some(mpmc::Producer::attach(&memory, &opts).expect("fresh ring: producer")))
        .collect();
    let mut rxs: Vec<Option<mpmc::Consumer>> = (0..consumers)
        .map(|_| Some(mpmc::Consumer::attach(&memory, &opts).expect("fresh ring: consumer")))
        .collect();
    let max = slot_size as usize;
    let mut model = MpmcModel {
        queue: VecDeque::new(),
        cap: slots as usize,
        clean: true,
    };
    let mut seq = 0u64;
    let mut out = Vec::new();

    while !input.is_empty() {
        let op = input.u8();
        let who = usize::from(op >> 4);
        let tx_gone = txs.iter().all(Option::is_none);
        let rx_gone = rxs.iter().all(Option::is_none);
        let tx_index = who % txs.len();
        let rx_index = who % rxs.len();
        match op % 16 {
            0..=3 => {
                let Some(p) = txs[tx_index].as_mut() else {
                    continue;
                };
                let len = length(input, max);
                let msg = message(seq, len);
                seq += 1;
                let result = match op % 16 {
                    0 => p.push(&msg),
                    1 => p.push_timeout(&msg, Duration::ZERO),
                    _ => match p.reserve(len) {
                        Ok(mut grant) => {
                            assert_eq!(grant.len(), len);
                            grant.write(0, &msg);
                            let entry = match input.u8() % 3 {
                                0 => {
                                    grant.commit();
                                    Some(msg.clone())
                                }
                                1 => {
                                    let keep = usize::from(input.u8()) % (len + 1);
                                    grant.commit_partial(keep);
                                    Some(msg[..keep].to_vec())
                                }
                                _ => {
                                    drop(grant); // published as a cancelled claim
                                    None
                                }
                            };
                            model.push_result(Ok(()), len, max, rx_gone);
                            model.queue.push_back(entry);
                            continue;
                        }
                        Err(e) => Err(e),
                    },
                };
                model.push_result(result, len, max, rx_gone);
                if result.is_ok() {
                    model.queue.push_back(Some(msg));
                }
            }
            4..=5 => {
                let Some(c) = rxs[rx_index].as_mut() else {
                    continue;
                };
                let result = match op % 16 {
                    4 => c.pop(&mut out),
                    _ => c.pop_timeout(&mut out, Duration::ZERO),
                };
                model.popped(result.map(|_| out.clone()), tx_gone);
            }
            6..=7 => {
                let Some(c) = rxs[rx_index].as_mut() else {
                    continue;
                };
                let result = match c.peek() {
                    Ok(grant) => {
                        let bytes = grant.to_vec();
                        if op % 16 == 6 {
                            grant.release();
                        } else {
                            drop(grant); // releases too
                        }
                        Ok(bytes)
                    }
                    Err(e) => Err(e),
                };
                model.popped(result, tx_gone);
            }
            8 => {
                if let Some(p) = txs[tx_index].as_mut() {
                    let result = p.recover();
                    assert!(!model.clean || result == Ok(false), "recover: {result:?}");
                }
            }
            9 => {
                if let Some(c) = rxs[rx_index].as_mut() {
                    let result = c.recover();
                    assert!(!model.clean || result == Ok(false), "recover: {result:?}");
                }
            }
            10 => txs[tx_index] = None,
            11 => rxs[rx_index] = None,
            12 => {
                for p in txs.iter().flatten() {
                    assert!(!model.clean || p.abandoned() == 0);
                    let _ = p.is_disconnected();
                }
                for c in rxs.iter().flatten() {
                    assert!(!model.clean || c.lost() == 0);
                    let _ = c.is_disconnected();
                }
            }
            _ => {
                corrupt(input, &memory);
                model.clean = false;
            }
        }
    }
}
