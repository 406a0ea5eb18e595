//! Cross-process stress over real shared memory: the test binary re-executes itself as the
//! producers and consumers (ringway-testkit's harness), which share a ring through a
//! `Region` found by POSIX name or through a memfd inherited across exec.
//!
//! - SPSC: millions of messages of random sizes (`0 ..= max_message`, so many laps and padding
//!   records), sent through every producer path (copy, deferred batches, in-place grants,
//!   deferred and partial grant commits) and read through copy and in-place peeks; the consumer
//!   checks every length, sequence number and byte.
//! - MPMC: two producer processes and two consumer processes; consumers count each delivery in
//!   a result area of the region, and the parent checks every message arrived exactly once.
//!   Each consumer also checks that each producer's messages reach it in order.
//!
//! - Wake-ups: a small SPSC ring between two processes that both sleep on the futex almost at
//!   once (`WaitStrategy::Park`) with no periodic wake-up (the liveness interval practically
//!   never), so a lost wake-up stalls a side until its per-message timeout and fails the run.
//!   It runs with each process's `membarrier` mode (`RINGWAY_MEMBARRIER`, see the ring's
//!   `barrier` module): registered wakers with barrier-issuing sleepers (the default), sleepers
//!   that cannot issue the barrier (their fallback) against registered wakers in the other
//!   process, and neither (the plain fences).
//!
//! `RINGWAY_STRESS_MESSAGES` (default 2,000,000) sets the SPSC message count; the memfd run
//! sends a quarter of it and the MPMC run an eighth per producer.

mod common;
mod xproc;

use std::time::Instant;

use common::Rng;
use libtest_mimic::{Failed, Trial};
use ringway_ring::{
    AttachOptions, PopError, PushError, RingConfig, WaitStrategy, init, mpmc, spsc,
};
use ringway_testkit::{LeakScope, harness};
use xproc::{PATIENCE, Shared, Via, env_number, fill, fill_raw, finish, mismatch, reported, role};

/// Raises the message count of the stress runs.
const STRESS_ENV: &str = "RINGWAY_STRESS_MESSAGES";
const DEFAULT_MESSAGES: u64 = 2_000_000;
/// The count the parent hands a child.
const COUNT_ENV: &str = "RINGWAY_XP_MESSAGES";
/// Which MPMC producer a child is (0 or 1).
const INDEX_ENV: &str = "RINGWAY_XP_INDEX";

const SPSC_CAPACITY: u64 = 64 * 1024;
const MPMC_SLOTS: u64 = 256;
const MPMC_SLOT_SIZE: u32 = 56;
const MPMC_PRODUCERS: u64 = 2;
const MPMC_CONSUMERS: u64 = 2;
/// Control word: producers attached so far (a start barrier).
const ATTACHED: usize = 0;

fn stress_messages() -> u64 {
    env_number(STRESS_ENV).unwrap_or(DEFAULT_MESSAGES)
}

fn child_count() -> u64 {
    env_number(COUNT_ENV).expect("the parent gives the message count")
}

fn opts() -> AttachOptions {
    AttachOptions::new().init_timeout(PATIENCE)
}

// ---------------------------------------------------------------------------------------------
// SPSC

/// How the producer sends one message.
#[derive(Debug, Clone, Copy)]
enum Way {
    Push,
    Deferred,
    Grant,
    GrantDeferred,
    /// Reserve more than the message and commit only the message.
    Partial(usize),
}

/// The message sizes and paths, the same sequence on both sides (same seed): sizes are mostly
/// small, sometimes up to `max_message`, so records of every size meet padding at every offset.
struct Plan {
    rng: Rng,
    max: usize,
}

impl Plan {
    fn new(max: usize) -> Plan {
        Plan {
            rng: Rng(0x5EED_5B5C),
            max,
        }
    }

    fn next(&mut self) -> (usize, Way) {
        let size = self.rng.below(1000);
        let cap = match size {
            0..=799 => 64,
            800..=969 => 512,
            970..=994 => 4096,
            _ => self.max,
        };
        let len = self.rng.below(cap as u64 + 1) as usize;
        let way = match self.rng.below(100) {
            0..=54 => Way::Push,
            55..=74 => Way::Deferred,
            75..=89 => Way::Grant,
            90..=94 => Way::GrantDeferred,
            _ => Way::Partial(len + self.rng.below((self.max - len) as u64 + 1) as usize),
        };
        (len, way)
    }
}

fn spsc_producer() -> Result<String, String> {
    let shared = Shared::from_env();
    let memory = shared.memory();
    let n = child_count();
    let mut tx = spsc::Producer::attach(&memory, &opts()).map_err(|e| e.to_string())?;
    let mut plan = Plan::new(tx.max_message());
    let mut buf = vec![0u8; tx.max_message()];
    let mut pending = 0;
    let fail = |seq: u64, e: PushError| format!("producer: message {seq}: {e}");
    for seq in 0..n {
        let (len, way) = plan.next();
        let msg = &mut buf[..len];
        match way {
            Way::Push => {
                fill(seq, msg);
                tx.push_timeout(msg, PATIENCE).map_err(|e| fail(seq, e))?;
                pending = 0;
            }
            Way::Deferred => {
                fill(seq, msg);
                match tx.push_deferred(msg) {
                    Ok(()) => pending += 1,
                    // No room now: the deferred push published the batch; wait for space.
                    Err(PushError::Full) => {
                        tx.push_timeout(msg, PATIENCE).map_err(|e| fail(seq, e))?;
                        pending = 0;
                    }
                    Err(e) => return Err(fail(seq, e)),
                }
            }
            Way::Grant | Way::GrantDeferred | Way::Partial(_) => {
                let reserve = match way {
                    Way::Partial(reserve) => reserve,
                    _ => len,
                };
                let mut grant = tx
                    .reserve_timeout(reserve, PATIENCE)
                    .map_err(|e| fail(seq, e))?;
                // SAFETY: the grant is valid for writes of `reserve >= len` bytes.
                unsafe { fill_raw(seq, grant.as_mut_ptr(), len) };
                match way {
                    Way::GrantDeferred => {
                        grant.commit_deferred();
                        pending += 1;
                    }
                    Way::Partial(_) => {
                        grant.commit_partial(len);
                        pending = 0;
                    }
                    _ => {
                        grant.commit();
                        pending = 0;
                    }
                }
            }
        }
        if pending >= 8 {
            tx.flush();
            pending = 0;
        }
    }
    drop(tx); // flushes, then closes: the consumer sees Closed once drained
    Ok(format!("sent={n}"))
}

fn spsc_consumer() -> Result<String, String> {
    let shared = Shared::from_env();
    let memory = shared.memory();
    let n = child_count();
    let mut rx = spsc::Consumer::attach(&memory, &opts()).map_err(|e| e.to_string())?;
    let mut plan = Plan::new(rx.geometry().max_message as usize);
    let mut out = Vec::new();
    let mut bytes = 0u64;
    let fail = |seq: u64, e: PopError| format!("consumer: message {seq}: {e}");
    let check = |seq: u64, len: usize, got: &[u8]| {
        if got.len() != len {
            return Err(format!(
                "consumer: message {seq}: {} bytes, expected {len}",
                got.len()
            ));
        }
        match mismatch(seq, got) {
            Some(at) => Err(format!(
                "consumer: message {seq} ({len} bytes): wrong byte at {at}: {:#04x}",
                got[at]
            )),
            None => Ok(()),
        }
    };
    for seq in 0..n {
        let (len, _) = plan.next();
        if seq % 3 == 2 {
            let grant = rx.peek_timeout(PATIENCE).map_err(|e| fail(seq, e))?;
            // SAFETY: this test's producer is honest: it never writes a record before the
            // consumer releases it, so the bytes do not change while the slice lives.
            check(seq, len, unsafe { grant.as_slice() })?;
            grant.release();
        } else {
            rx.pop_timeout(&mut out, PATIENCE)
                .map_err(|e| fail(seq, e))?;
            check(seq, len, &out)?;
        }
        bytes += len as u64;
    }
    match rx.pop_timeout(&mut out, PATIENCE) {
        Err(PopError::Closed) => Ok(format!("received={n} bytes={bytes}")),
        other => Err(format!(
            "consumer: after {n} messages expected Closed, got {other:?}"
        )),
    }
}

fn spsc_stress(via: Via, n: u64) -> Result<(), Failed> {
    let scope = LeakScope::new();
    let config = RingConfig::spsc(SPSC_CAPACITY);
    let shared = Shared::create(&scope, via, "spsc-stress", config.required_len()?, 0);
    init(&shared.memory(), &config)?;
    let count = [(COUNT_ENV, n.to_string())];
    let start = Instant::now();
    let consumer = shared.spawn("spsc-consumer", &count);
    let producer = shared.spawn("spsc-producer", &count);
    let outputs = finish(vec![
        (producer, "spsc producer"),
        (consumer, "spsc consumer"),
    ]);
    let report = &outputs[1];
    let wall = start.elapsed();
    assert_eq!(reported(report, "received"), n);
    let bytes = reported(report, "bytes");
    println!(
        "spsc over {via:?}: {n} messages, {:.1} MB of payload checked, {wall:.2?} wall \
         ({:.2} M msg/s)",
        bytes as f64 / 1e6,
        n as f64 / wall.as_secs_f64() / 1e6
    );
    drop(shared);
    drop(scope);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Wake-ups

/// How long one message may take in the wake stress: far beyond any scheduling delay, so
/// only a lost wake-up (which nothing else would end) reaches it.
const WAKE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);
/// The environment variable of the ring's `membarrier` mode.
const MEMBARRIER_ENV: &str = "RINGWAY_MEMBARRIER";

/// Both ends sleep almost at once and are never woken by their slow-path schedule: only the
/// other side's wake (or the timeout) ends a sleep.
fn sleepy() -> AttachOptions {
    opts()
        .wait_strategy(WaitStrategy::Park)
        .liveness_interval(std::time::Duration::MAX)
}

/// A short pause of a length drawn from `rng`: varies where the two sides meet.
fn dawdle(rng: &mut Rng) {
    for _ in 0..rng.next() % 256 {
        std::hint::spin_loop();
    }
}

fn wake_producer() -> Result<String, String> {
    let shared = Shared::from_env();
    let memory = shared.memory();
    let n = child_count();
    let mut tx = spsc::Producer::attach(&memory, &sleepy()).map_err(|e| e.to_string())?;
    let mut rng = Rng(0x3A4E);
    for seq in 0..n {
        tx.push_timeout(&seq.to_le_bytes(), WAKE_PATIENCE)
            .map_err(|e| format!("producer: message {seq}: {e} (a lost wake-up?)"))?;
        dawdle(&mut rng);
    }
    drop(tx);
    Ok(format!("sent={n}"))
}

fn wake_consumer() -> Result<String, String> {
    let shared = Shared::from_env();
    let memory = shared.memory();
    let n = child_count();
    let mut rx = spsc::Consumer::attach(&memory, &sleepy()).map_err(|e| e.to_string())?;
    let mut rng = Rng(0x3A4F);
    let mut out = Vec::new();
    for seq in 0..n {
        rx.pop_timeout(&mut out, WAKE_PATIENCE)
            .map_err(|e| format!("consumer: message {seq}: {e} (a lost wake-up?)"))?;
        if out[..] != seq.to_le_bytes() {
            return Err(format!("consumer: message {seq}: got {out:?}"));
        }
        dawdle(&mut rng);
    }
    Ok(format!("received={n}"))
}

/// `modes`: the `RINGWAY_MEMBARRIER` of the producer and of the consumer (`None`: unset).
fn wake_stress(n: u64, modes: [Option<&str>; 2]) -> Result<(), Failed> {
    let scope = LeakScope::new();
    // Room for a few 16-byte records: the producer often waits for space, the consumer for
    // data, so both wait words see sleeps racing wakes.
    let config = RingConfig::spsc(64);
    let shared = Shared::create(&scope, Via::Posix, "wake-stress", config.required_len()?, 0);
    init(&shared.memory(), &config)?;
    let env = |mode: Option<&str>| {
        let mut env = vec![(COUNT_ENV, n.to_string())];
        if let Some(mode) = mode {
            env.push((MEMBARRIER_ENV, mode.to_owned()));
        }
        env
    };
    let start = Instant::now();
    let consumer = shared.spawn("wake-consumer", &env(modes[1]));
    let producer = shared.spawn("wake-producer", &env(modes[0]));
    let outputs = finish(vec![
        (producer, "wake producer"),
        (consumer, "wake consumer"),
    ]);
    assert_eq!(reported(&outputs[1], "received"), n);
    println!(
        "wake stress {modes:?}: {n} messages, {:.2?} wall",
        start.elapsed()
    );
    drop(shared);
    drop(scope);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// MPMC

/// Message `i` of producer `p`, and its length (`8 ..= slot_size`, a function of the sequence
/// number so that a consumer, which gets an arbitrary subset, can check it).
fn mpmc_message(p: u64, i: u64) -> (u64, usize) {
    let seq = (p << 32) | i;
    let spread = u64::from(MPMC_SLOT_SIZE) - 7;
    (
        seq,
        8 + (seq.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as usize % spread as usize,
    )
}

fn mpmc_producer() -> Result<String, String> {
    let shared = Shared::from_env();
    let memory = shared.memory();
    let per = child_count();
    let p: u64 = env_number(INDEX_ENV).expect("the parent numbers the producers");
    let mut tx = mpmc::Producer::attach(&memory, &opts()).map_err(|e| e.to_string())?;
    // Start together: consumers report Closed once every registered producer has left, so a
    // fast producer must not finish before the other has registered.
    shared
        .control(ATTACHED)
        .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    if !xproc::wait_until(PATIENCE, || xproc::get(&shared, ATTACHED) >= MPMC_PRODUCERS) {
        return Err("producer: the other producer never attached".into());
    }
    let mut buf = [0u8; MPMC_SLOT_SIZE as usize];
    let mut rng = Rng(p + 11);
    let mut cancelled = 0;
    let fail = |i: u64, e: PushError| format!("producer {p}: message {i}: {e}");
    for i in 0..per {
        let (seq, len) = mpmc_message(p, i);
        let way = rng.below(20);
        if way == 0 {
            // A grant dropped uncommitted publishes a cancelled slot that consumers skip.
            let mut grant = tx.reserve_timeout(len, PATIENCE).map_err(|e| fail(i, e))?;
            // SAFETY: the grant is valid for writes of `len` bytes.
            unsafe { fill_raw(seq, grant.as_mut_ptr(), len) };
            drop(grant);
            cancelled += 1;
        }
        if way <= 4 {
            let reserve = if way == 1 {
                MPMC_SLOT_SIZE as usize
            } else {
                len
            };
            let mut grant = tx
                .reserve_timeout(reserve, PATIENCE)
                .map_err(|e| fail(i, e))?;
            // SAFETY: the grant is valid for writes of `reserve >= len` bytes.
            unsafe { fill_raw(seq, grant.as_mut_ptr(), len) };
            grant.commit_partial(len);
        } else {
            fill(seq, &mut buf[..len]);
            tx.push_timeout(&buf[..len], PATIENCE)
                .map_err(|e| fail(i, e))?;
        }
    }
    Ok(format!("sent={per} cancelled={cancelled}"))
}

fn mpmc_consumer() -> Result<String, String> {
    let shared = Shared::from_env();
    let memory = shared.memory();
    let per = child_count();
    let mut rx = mpmc::Consumer::attach(&memory, &opts()).map_err(|e| e.to_string())?;
    if !xproc::wait_until(PATIENCE, || xproc::get(&shared, ATTACHED) >= MPMC_PRODUCERS) {
        return Err("consumer: the producers never attached".into());
    }
    let mut last = [None::<u64>; MPMC_PRODUCERS as usize];
    let mut out = Vec::new();
    let mut got = 0u64;
    loop {
        let result = if got % 4 == 3 {
            rx.peek_timeout(PATIENCE).map(|grant| {
                out = grant.to_vec();
                out.len()
            })
        } else {
            rx.pop_timeout(&mut out, PATIENCE)
        };
        match result {
            Ok(_) => {}
            Err(PopError::Closed) => break,
            Err(e) => return Err(format!("consumer: after {got} messages: {e}")),
        }
        let seq = u64::from_le_bytes(
            out.get(..8)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| format!("consumer: a message of {} bytes", out.len()))?,
        );
        let (p, i) = (seq >> 32, seq & 0xFFFF_FFFF);
        if p >= MPMC_PRODUCERS || i >= per {
            return Err(format!("consumer: unknown message {seq:#x}"));
        }
        let (_, len) = mpmc_message(p, i);
        if out.len() != len || mismatch(seq, &out).is_some() {
            return Err(format!("consumer: message {seq:#x} garbled: {out:?}"));
        }
        let previous = &mut last[p as usize];
        if previous.is_some_and(|l| l >= i) {
            return Err(format!(
                "consumer: producer {p}'s message {i} after {previous:?}"
            ));
        }
        *previous = Some(i);
        shared
            .result((p * per + i) as usize)
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        got += 1;
    }
    Ok(format!("received={got}"))
}

fn mpmc_stress(via: Via, per: u64) -> Result<(), Failed> {
    let scope = LeakScope::new();
    let config = RingConfig::mpmc(MPMC_SLOTS, MPMC_SLOT_SIZE)
        .max_producers(MPMC_PRODUCERS as u32)
        .max_consumers(MPMC_CONSUMERS as u32);
    let total = MPMC_PRODUCERS * per;
    let shared = Shared::create(
        &scope,
        via,
        "mpmc-stress",
        config.required_len()?,
        total as usize,
    );
    init(&shared.memory(), &config)?;
    let start = Instant::now();
    let count = (COUNT_ENV, per.to_string());
    let consumers: Vec<_> = (0..MPMC_CONSUMERS)
        .map(|_| shared.spawn("mpmc-consumer", std::slice::from_ref(&count)))
        .collect();
    let producers: Vec<_> = (0..MPMC_PRODUCERS)
        .map(|p| {
            shared.spawn(
                "mpmc-producer",
                &[count.clone(), (INDEX_ENV, p.to_string())],
            )
        })
        .collect();
    let children = producers
        .into_iter()
        .map(|p| (p, "mpmc producer"))
        .chain(consumers.into_iter().map(|c| (c, "mpmc consumer")))
        .collect();
    let outputs = finish(children);
    let (sent, got) = outputs.split_at(MPMC_PRODUCERS as usize);
    let cancelled: u64 = sent.iter().map(|out| reported(out, "cancelled")).sum();
    let received: Vec<u64> = got.iter().map(|out| reported(out, "received")).collect();
    let wall = start.elapsed();
    let (mut missing, mut repeated) = (Vec::new(), Vec::new());
    for index in 0..total as usize {
        match shared
            .result(index)
            .load(std::sync::atomic::Ordering::Acquire)
        {
            1 => {}
            0 => missing.push(index),
            _ => repeated.push(index),
        }
    }
    assert!(
        missing.is_empty() && repeated.is_empty(),
        "{} messages lost (first {:?}), {} delivered more than once (first {:?})",
        missing.len(),
        missing.first(),
        repeated.len(),
        repeated.first()
    );
    assert_eq!(received.iter().sum::<u64>(), total);
    println!(
        "mpmc over {via:?}: {total} messages from 2 producer processes to 2 consumer \
         processes ({received:?}), {cancelled} cancelled grants skipped, each message \
         delivered exactly once, {wall:.2?} wall"
    );
    drop(shared);
    drop(scope);
    Ok(())
}

fn main() {
    let n = stress_messages();
    let tests = vec![
        Trial::test("spsc_stress_over_posix_shm", move || {
            spsc_stress(Via::Posix, n)
        }),
        Trial::test("spsc_stress_over_inherited_memfd", move || {
            spsc_stress(Via::Memfd, n / 4)
        }),
        Trial::test(
            "mpmc_two_producers_two_consumers_over_posix_shm",
            move || mpmc_stress(Via::Posix, n / 8),
        ),
        Trial::test("wake_stress_membarrier", move || {
            wake_stress(n / 20, [None, None])
        }),
        Trial::test("wake_stress_sleepers_without_barrier", move || {
            wake_stress(n / 20, [None, Some("no-barrier")])
        }),
        Trial::test("wake_stress_plain_fences", move || {
            wake_stress(n / 20, [Some("off"), Some("off")])
        }),
    ];
    harness::main(
        tests,
        &[
            ("spsc-producer", || role(spsc_producer)),
            ("spsc-consumer", || role(spsc_consumer)),
            ("mpmc-producer", || role(mpmc_producer)),
            ("mpmc-consumer", || role(mpmc_consumer)),
            ("wake-producer", || role(wake_producer)),
            ("wake-consumer", || role(wake_consumer)),
        ],
    );
}
