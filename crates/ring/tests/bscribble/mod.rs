//! Hostile broadcast readers (part of the `scribbler` test binary): a writer process and an
//! honest reader process run a broadcast ring over a POSIX shm region while a third process,
//! attached as a reader too, writes adversarial values into everything a reader can reach
//! without breaking the layout's trust boundary: its own cursor, the other readers' entries
//! (cursor, state, identity), the writer's entry, and the header words readers touch (the
//! wait words and their waiter counts, the user count). It never writes the data area: the
//! point is that a reader, whatever it writes, cannot make the writer or another reader
//! misbehave.
//!
//! The writer must get errors or carry on, never panic or hang: a hostile cursor may hold a
//! block-policy writer back (`Full`/`Timeout`) but only until its liveness check or a
//! re-scan. The honest reader must only ever receive intact messages in increasing order, or
//! errors (`Lagged` when a forged cursor let the writer lap it, `Corrupted`); a torn or foreign
//! message is a failure. Every call is timed against `HUNG`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use libtest_mimic::Failed;
use ringway_ring::layout::{
    BROADCAST_MAX_POSITION, ENTRY_LEN, STATE_ACTIVE, STATE_CLOSED, STATE_FREE, TABLE_OFFSET,
    ctl_pack, ctl_pid,
};
use ringway_ring::{AttachOptions, Policy, PopError, PushError, RingConfig, broadcast, init};
use ringway_testkit::LeakScope;

use crate::common::Rng;
use crate::xproc::{
    Shared, Via, env_number, fill, finish, get, mismatch, reported, set, wait_until,
};

/// The policy, for the record (the roles read it from the header).
const POLICY_ENV: &str = "RINGWAY_BS_POLICY";
const SECONDS_ENV: &str = "RINGWAY_SCRIBBLE_SECS";
/// Control word: the run is over.
const STOP: usize = 0;
/// Control word: the writer has attached. The hostile reader scribbles on the writer's entry
/// too (live under its own pid, say), so it waits for this: scribbling first could make the
/// writer's attach find its side taken ("already attached by live process"), which is a
/// squatted side, not the run this test is about (seen once under ASan, whose slower start
/// let the hostile reader go first).
const WRITER_ATTACHED: usize = 1;

const SLOTS: u64 = 64;
const SLOT_SIZE: u32 = 48;
const READERS: u32 = 4;
/// How long one blocking call may wait.
const CALL_TIMEOUT: Duration = Duration::from_millis(100);
/// A call that takes longer than this has hung (its own timeout is far shorter).
const HUNG: Duration = Duration::from_secs(10);

/// Offsets of the header words a reader writes in the wait protocol, and the user count.
const NOT_EMPTY_SEQ: usize = 384;
const NOT_EMPTY_WAITERS: usize = 388;
const NOT_FULL_SEQ: usize = 512;
const NOT_FULL_WAITERS: usize = 516;
const USERS: usize = 656;
/// Offsets inside a registration entry.
const ENTRY_CTL: usize = 0;
const ENTRY_START_TIME: usize = 8;
const ENTRY_CURSOR: usize = 32;
/// The header's published `tail`.
const TAIL: usize = 128;

fn config(policy: Policy) -> RingConfig {
    RingConfig::broadcast(SLOTS, SLOT_SIZE)
        .max_readers(READERS)
        .policy(policy)
}

fn opts() -> AttachOptions {
    AttachOptions::new()
        .init_timeout(Duration::from_secs(30))
        .liveness_interval(Duration::from_millis(10))
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    let start = Instant::now();
    let result = f();
    let took = start.elapsed();
    if took > HUNG {
        return Err(format!("{what} took {took:?}: hung"));
    }
    Ok(result)
}

/// The writer: publishes numbered messages until told to stop, tolerating every error a
/// reader can cause, and reports what it saw.
pub(crate) fn writer() -> Result<String, String> {
    let shared = Shared::from_env();
    let memory = shared.memory();
    let mut tx = broadcast::Writer::attach(&memory, &opts()).map_err(|e| e.to_string())?;
    set(&shared, WRITER_ATTACHED, 1);
    let (mut sent, mut held, mut corrupted) = (0u64, 0u64, 0u64);
    let mut buf = [0u8; SLOT_SIZE as usize];
    let mut seq = tx.position();
    while get(&shared, STOP) == 0 {
        let len = 8 + (seq % 41) as usize;
        fill(seq, &mut buf[..len]);
        match timed("push", || tx.push_timeout(&buf[..len], CALL_TIMEOUT))? {
            Ok(()) => {
                sent += 1;
                seq += 1;
            }
            Err(PushError::Full | PushError::Timeout) => held += 1,
            Err(PushError::Corrupted(_)) => corrupted += 1,
            Err(e) => return Err(format!("writer: unexpected {e}")),
        }
    }
    Ok(format!("sent={sent} held={held} corrupted={corrupted}"))
}

/// The honest reader: every message it receives must be intact, and later than the last.
pub(crate) fn reader() -> Result<String, String> {
    let shared = Shared::from_env();
    let memory = shared.memory();
    let mut rx = broadcast::Reader::attach(&memory, &opts()).map_err(|e| e.to_string())?;
    // SAFETY: this process maps the region for itself and attaches no writer through it.
    unsafe { rx.protect_data() }.map_err(|e| format!("reader: mprotect: {e}"))?;
    let (mut intact, mut lagged, mut corrupted, mut idle) = (0u64, 0u64, 0u64, 0u64);
    let mut last: Option<u64> = None;
    let mut out = Vec::new();
    while get(&shared, STOP) == 0 {
        match timed("pop", || rx.pop_timeout(&mut out, CALL_TIMEOUT))? {
            Ok(_) => {
                let seq = u64::from_le_bytes(out[..8].try_into().map_err(|_| "short message")?);
                if let Some(at) = mismatch(seq, &out) {
                    return Err(format!("reader: message {seq} torn at byte {at}: {out:?}"));
                }
                if last.is_some_and(|l| seq <= l) {
                    return Err(format!("reader: message {seq} after {last:?}"));
                }
                last = Some(seq);
                intact += 1;
            }
            Err(PopError::Lagged(_)) => lagged += 1,
            Err(PopError::Corrupted(_)) => corrupted += 1,
            Err(PopError::Timeout | PopError::Closed) => idle += 1,
            Err(e) => return Err(format!("reader: unexpected {e}")),
        }
    }
    Ok(format!(
        "intact={intact} lagged={lagged} corrupted={corrupted} idle={idle}"
    ))
}

/// The hostile reader: attached like any reader, it writes what a reader can reach.
pub(crate) fn hostile() -> Result<String, String> {
    let shared = Shared::from_env();
    let memory = shared.memory();
    let _rx = broadcast::Reader::attach(&memory, &opts()).map_err(|e| e.to_string())?;
    let attached = || get(&shared, WRITER_ATTACHED) != 0 || get(&shared, STOP) != 0;
    if !wait_until(HUNG, attached) {
        return Err("hostile reader: the writer never attached".into());
    }
    let (base, len) = shared.ring_ptr();
    let u64_at = |at: usize| {
        assert!(at + 8 <= len && at % 8 == 0);
        // SAFETY: inside the mapping and 8-aligned (checked); every process reaches these
        // bytes through atomics or raw copies only.
        unsafe { &*base.add(at).cast::<AtomicU64>() }
    };
    let u32_at = |at: usize| {
        assert!(at + 4 <= len && at % 4 == 0);
        // SAFETY: as above, 4-aligned.
        unsafe { &*base.add(at).cast::<AtomicU32>() }
    };
    let entry = |i: u32| TABLE_OFFSET + ENTRY_LEN * i as usize;
    let me = std::process::id();
    let mut rng = Rng(u64::from(me) << 20 | 0xB5C1);
    let mut writes = 0u64;
    while get(&shared, STOP) == 0 {
        for _ in 0..=rng.below(4) {
            let tail = u64_at(TAIL).load(Ordering::Relaxed);
            let cursor = [
                0,
                tail,
                tail.wrapping_add(1 + rng.below(3 * SLOTS)),
                tail.wrapping_sub(rng.below(3 * SLOTS)),
                BROADCAST_MAX_POSITION,
                u64::MAX,
                rng.next(),
            ][rng.below(7) as usize];
            // Entry 0 is the writer's; readers follow.
            let i = rng.below(u64::from(READERS) + 1) as u32;
            let mine = ctl_pid(u64_at(entry(i) + ENTRY_CTL).load(Ordering::Relaxed)) == me;
            match rng.below(10) {
                // Its own cursor, or another reader's (or the writer's entry's).
                0..=3 => u64_at(entry(i) + ENTRY_CURSOR).store(cursor, Ordering::Relaxed),
                // Another entry's state and identity: closed, freed, live under pid 1 or ours.
                4 | 5 if !mine => {
                    let state = [STATE_ACTIVE, STATE_CLOSED, STATE_FREE][rng.below(3) as usize];
                    let pid = [1, me, rng.next() as u32][rng.below(3) as usize];
                    let ctl = ctl_pack(state, rng.below(1 << 24), pid);
                    u64_at(entry(i) + ENTRY_CTL).store(ctl, Ordering::Relaxed);
                }
                6 => u64_at(entry(i) + ENTRY_START_TIME).store(rng.next(), Ordering::Relaxed),
                // The wait words and waiter counts, and the user count.
                _ => {
                    let at = [
                        NOT_EMPTY_SEQ,
                        NOT_EMPTY_WAITERS,
                        NOT_FULL_SEQ,
                        NOT_FULL_WAITERS,
                        USERS,
                    ][rng.below(5) as usize];
                    let value = [0, 1, u32::MAX, rng.next() as u32][rng.below(4) as usize];
                    u32_at(at).store(value, Ordering::Relaxed);
                }
            }
            writes += 1;
        }
        std::thread::sleep(Duration::from_micros(rng.below(3000)));
    }
    Ok(format!("writes={writes}"))
}

/// One run: writer, honest reader and hostile reader processes for a few seconds.
pub(crate) fn hostile_reader(policy: Policy) -> Result<(), Failed> {
    let scope = LeakScope::new();
    let config = config(policy);
    let shared = Shared::create(&scope, Via::Posix, "bscribble", config.required_len()?, 0);
    init(&shared.memory(), &config)?;
    let env = [(POLICY_ENV, format!("{policy:?}").to_lowercase())];
    let reader = shared.spawn("bs-reader", &env);
    let hostile = shared.spawn("bs-hostile", &env);
    let writer = shared.spawn("bs-writer", &env);
    let seconds = env_number(SECONDS_ENV).unwrap_or(2.0);
    std::thread::sleep(Duration::from_secs_f64(seconds));
    set(&shared, STOP, 1);
    let outputs = finish(vec![
        (hostile, "hostile reader"),
        (writer, "writer"),
        (reader, "honest reader"),
    ]);
    let [hostile, writer, reader] = &outputs[..] else {
        unreachable!("three children")
    };
    println!(
        "hostile reader over a {policy:?} broadcast ring, {seconds} s: {} writes; writer {} \
         sent, {} held back, {} Corrupted; reader {} intact, {} Lagged, {} Corrupted",
        reported(hostile, "writes"),
        reported(writer, "sent"),
        reported(writer, "held"),
        reported(writer, "corrupted"),
        reported(reader, "intact"),
        reported(reader, "lagged"),
        reported(reader, "corrupted"),
    );
    assert!(
        reported(hostile, "writes") > 0,
        "the hostile reader wrote nothing"
    );
    assert!(reported(writer, "sent") > 0, "the writer never published");
    assert!(reported(reader, "intact") > 0, "no message got through");
    drop(shared);
    drop(scope);
    Ok(())
}
