//! An arbitrary sequence of operations on a broadcast ring (one writer, up to three readers,
//! either policy, with or without history), interleaved with hostile writes: fuzz-chosen
//! values anywhere (a hostile writer or a truncated peer), or only where a reader may write
//! (its registration entry and the header's wait words: a hostile reader).
//!
//! The input's first bytes choose the geometry and policy; every following byte starts one
//! operation. The ring must never panic, loop or access memory out of bounds. Until the first
//! hostile write, every result is also checked against a model: each reader receives every
//! message from where it joined, in order and intact; under overwrite a lapped reader gets
//! `Lagged(n)` with exactly the number it missed and then the oldest message left; under
//! block a `try` push is `Full` exactly when the slowest reader is a whole ring behind;
//! `Empty` and `Closed` exactly when nothing is left with and without a writer.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use ringway_ring::broadcast::{Reader, Writer};
use ringway_ring::layout::{ENTRY_LEN, TABLE_OFFSET};
use ringway_ring::{
    AttachOptions, Policy, PopError, PushError, RingConfig, RingMemory, Wait, WaitStrategy,
};

#[path = "../common/input.rs"]
mod input;
use input::{Input, message};

/// The length of message `seq` in a ring of `max`-byte slots (at least 8: it carries `seq`).
fn length(seq: u64, max: usize) -> usize {
    8 + (seq.wrapping_mul(7) % (max as u64 - 7)) as usize
}

fn options() -> AttachOptions {
    AttachOptions::new()
        .init_timeout(Duration::ZERO)
        .wait_strategy(WaitStrategy::Park)
}

fn write_word(memory: &RingMemory, at: usize, value: u64) {
    let at = (at & !7).min(memory.len() - 8);
    // SAFETY: clamped in bounds and 8-aligned in a 128-aligned buffer; this single-threaded
    // target holds no reference to those bytes.
    unsafe { memory.as_ptr().add(at).cast::<u64>().write_volatile(value) };
}

/// One reader and what the model expects of it.
struct Slot {
    reader: Reader,
    /// The position of the next message it receives.
    next: u64,
}

struct Ring {
    memory: RingMemory,
    writer: Option<Writer>,
    readers: Vec<Option<Slot>>,
    /// Messages ever published.
    published: u64,
    cap: u64,
    slot_size: usize,
    policy: Policy,
    history: u64,
    /// No hostile write yet: results are checked against the model.
    clean: bool,
}

impl Ring {
    fn push(&mut self) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        let seq = self.published;
        let got = writer.push_with(&message(seq, length(seq, self.slot_size)), Wait::Try);
        if !self.clean {
            if got.is_ok() {
                self.published = writer.position();
            }
            return;
        }
        let slowest = self.readers.iter().flatten().map(|s| s.next).min();
        let full = self.policy == Policy::Block && slowest.is_some_and(|s| seq - s >= self.cap);
        match got {
            Ok(()) => {
                assert!(!full, "a push past a reader a whole ring behind");
                self.published += 1;
            }
            Err(PushError::Full) => assert!(full, "Full with room"),
            Err(e) => panic!("push: {e}"),
        }
    }

    fn pop(&mut self, r: usize, in_place: bool) {
        let (clean, published, cap, writer) =
            (self.clean, self.published, self.cap, self.writer.is_some());
        let Some(slot) = self.readers[r].as_mut() else {
            return;
        };
        let mut out = Vec::new();
        let got = if in_place {
            slot.reader.peek_with(Wait::Try).and_then(|grant| {
                let copy = grant.to_vec();
                grant.release()?;
                Ok(copy.expect("released intact, so copied intact"))
            })
        } else {
            slot.reader.pop_with(&mut out, Wait::Try).map(|_| out)
        };
        if !clean {
            return;
        }
        let oldest = published.saturating_sub(cap);
        match got {
            Ok(msg) => {
                assert!(
                    slot.next >= oldest && slot.next < published,
                    "a message from nowhere"
                );
                assert_eq!(msg, message(slot.next, length(slot.next, self.slot_size)));
                slot.next += 1;
            }
            Err(PopError::Lagged(n)) => {
                assert_eq!(self.policy, Policy::Overwrite, "a block reader lapped");
                assert_eq!(n, oldest - slot.next, "Lagged counts what was missed");
                slot.next = oldest;
            }
            Err(PopError::Empty) => assert!(writer && slot.next == published, "Empty with news"),
            Err(PopError::Closed) => assert!(!writer && slot.next == published, "Closed early"),
            Err(e) => panic!("pop: {e}"),
        }
        assert_eq!(slot.reader.position(), slot.next);
    }

    fn attach_reader(&mut self, r: usize) {
        if self.readers[r].is_some() {
            self.readers[r] = None; // detach
            return;
        }
        match Reader::attach(&self.memory, &options()) {
            Ok(reader) => {
                let next = self.published.saturating_sub(self.history);
                if self.clean {
                    assert_eq!(
                        reader.position(),
                        next,
                        "a new reader starts at the history"
                    );
                }
                let next = reader.position();
                self.readers[r] = Some(Slot { reader, next });
            }
            Err(e) => assert!(!self.clean, "attach a reader: {e}"),
        }
    }

    fn toggle_writer(&mut self) {
        if self.writer.take().is_some() {
            return;
        }
        match Writer::attach(&self.memory, &options()) {
            Ok(writer) => {
                if self.clean {
                    assert_eq!(writer.position(), self.published, "a new writer continues");
                }
                self.published = writer.position();
                self.writer = Some(writer);
            }
            Err(e) => assert!(!self.clean, "attach the writer: {e}"),
        }
    }

    /// A hostile reader's write: an entry's word, or a header wait word.
    fn hostile_reader(&mut self, input: &mut Input<'_>) {
        self.clean = false;
        let entry = TABLE_OFFSET + ENTRY_LEN * usize::from(input.u8() % 5);
        let at = match input.u8() % 4 {
            0 => entry + 32,                              // a cursor
            1 => entry,                                   // a state and pid
            2 => 384 + 128 * usize::from(input.u8() % 2), // a wait word and its waiters
            _ => entry + 8 * usize::from(input.u8() % 16),
        };
        let value = match input.u8() % 4 {
            0 => self.published.wrapping_add(u64::from(input.u8())),
            1 => self.published.wrapping_sub(u64::from(input.u8())),
            2 => u64::MAX - u64::from(input.u8()),
            _ => input.u64(),
        };
        write_word(&self.memory, at, value);
    }

    /// Anyone's write, anywhere.
    fn hostile_anyone(&mut self, input: &mut Input<'_>) {
        self.clean = false;
        let at = usize::from(input.u16()) * 8 % self.memory.len();
        let value = match input.u8() % 3 {
            0 => input.u64(),
            1 => u64::from(input.u8()),
            _ => {
                (self.published.wrapping_add(u64::from(input.u8())) + 1)
                    | (u64::from(input.u8() & 1) << 63)
            }
        };
        write_word(&self.memory, at, value);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input { data };
    let shape = input.u8();
    let cap = 2u64 << (shape % 5); // 2 ..= 32 slots
    let slot_size = 8 + usize::from(input.u8() % 57); // 8 ..= 64 bytes
    let policy = if shape & 0x80 == 0 {
        Policy::Block
    } else {
        Policy::Overwrite
    };
    let history = u64::from(input.u8()) % cap;
    let config = RingConfig::broadcast(cap, slot_size as u32)
        .max_readers(3)
        .policy(policy)
        .history(history as u32);
    let Ok(memory) = RingMemory::heap(&config) else {
        return;
    };
    let mut ring = Ring {
        memory,
        writer: None,
        readers: vec![None, None, None],
        published: 0,
        cap,
        slot_size,
        policy,
        history,
        clean: true,
    };
    ring.toggle_writer();
    let mut steps = 0;
    while !input.data.is_empty() && steps < 2000 {
        steps += 1;
        let op = input.u8();
        let r = usize::from(op >> 6) % 3;
        match op % 16 {
            0..=5 => ring.push(),
            6..=8 => ring.pop(r, false),
            9 | 10 => ring.pop(r, true),
            11 => ring.attach_reader(r),
            12 => ring.toggle_writer(),
            13 => {
                // Read in place without releasing cleanly: the grant's drop releases it.
                if let Some(slot) = ring.readers[r].as_mut() {
                    let copied = slot.reader.peek_with(Wait::Try).map(|g| {
                        let mut buf = [0u8; 64];
                        g.copy_to(&mut buf);
                        g.is_intact()
                    });
                    if ring.clean && copied == Ok(true) {
                        slot.next += 1;
                    }
                    if !ring.clean || copied.is_err() {
                        // Resynchronise the model with whatever the reader did.
                        slot.next = slot.reader.position();
                    }
                }
            }
            14 => ring.hostile_reader(&mut input),
            _ => ring.hostile_anyone(&mut input),
        }
    }
});
