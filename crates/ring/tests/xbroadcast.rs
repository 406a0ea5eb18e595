//! Broadcast rings across real processes (the test binary re-executes itself in roles, over a
//! POSIX shm region, as `xprocess.rs` does):
//!
//! - one writer and eight reader processes, block policy: every reader checks every sequence
//!   number and every byte, with its data area mapped read-only;
//! - a reader killed with `SIGKILL` mid-stream, under both policies: under block the writer
//!   carries on once the liveness check finds it dead, under overwrite it never waited; the
//!   surviving reader checks what it received.

mod common;
mod xproc;

use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use ringway_ring::{AttachOptions, Policy, PopError, RingConfig, broadcast, init};
use ringway_testkit::{LeakScope, harness};
use xproc::{PATIENCE, Shared, Via, env_number, fill, finish, mismatch, reported, role};

const COUNT_ENV: &str = "RINGWAY_XB_MESSAGES";
const READERS_ENV: &str = "RINGWAY_XB_READERS";
const POLICY_ENV: &str = "RINGWAY_XB_POLICY";
/// Control word: readers attached so far (the writer starts when all are there).
const ATTACHED: usize = 0;
/// Control word: messages the victim has read (the parent kills it after a few).
const VICTIM_READ: usize = 1;

const SLOTS: u64 = 128;
const SLOT_SIZE: u32 = 48;

fn opts() -> AttachOptions {
    AttachOptions::new()
        .init_timeout(PATIENCE)
        .liveness_interval(Duration::from_millis(20))
}

fn count() -> u64 {
    env_number(COUNT_ENV).expect("the parent gives the message count")
}

/// Message `i` is `8 + i % 41` bytes of the shared pattern (sequence number first).
fn len_of(i: u64) -> usize {
    8 + (i % 41) as usize
}

fn writer() -> Result<String, String> {
    let shared = Shared::from_env();
    let memory = shared.memory();
    let n = count();
    let readers: u64 = env_number(READERS_ENV).expect("the parent gives the reader count");
    let mut tx = broadcast::Writer::attach(&memory, &opts()).map_err(|e| e.to_string())?;
    if !xproc::wait_until(PATIENCE, || xproc::get(&shared, ATTACHED) >= readers) {
        return Err("writer: the readers never attached".into());
    }
    let mut buf = [0u8; SLOT_SIZE as usize];
    let start = Instant::now();
    let victim = std::env::var(POLICY_ENV).is_ok();
    for i in 0..n {
        if victim && i == 100 {
            // Let the victim read its hundred before it is killed, whatever the policy.
            if !xproc::wait_until(PATIENCE, || xproc::get(&shared, VICTIM_READ) >= 100) {
                return Err("writer: the victim never read 100 messages".into());
            }
        }
        let len = len_of(i);
        fill(i, &mut buf[..len]);
        tx.push_timeout(&buf[..len], PATIENCE)
            .map_err(|e| format!("writer: message {i}: {e}"))?;
    }
    Ok(format!("sent={n} micros={}", start.elapsed().as_micros()))
}

fn reader_loop(victim: bool) -> Result<String, String> {
    let shared = Shared::from_env();
    let memory = shared.memory();
    let n = count();
    let mut rx = broadcast::Reader::attach(&memory, &opts()).map_err(|e| e.to_string())?;
    // SAFETY: this process maps the region for itself and attaches no writer through it; it
    // only ever reads the data area (the ring writes nothing there for a reader).
    unsafe { rx.protect_data() }.map_err(|e| format!("reader: mprotect: {e}"))?;
    shared
        .control(ATTACHED)
        .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    let mut out = Vec::new();
    let (mut next, mut received, mut lagged) = (rx.position(), 0u64, 0u64);
    loop {
        match rx.pop_timeout(&mut out, PATIENCE) {
            Ok(_) => {}
            Err(PopError::Lagged(k)) => {
                lagged += k;
                next += k;
                continue;
            }
            Err(PopError::Closed) => break,
            Err(e) => return Err(format!("reader: after {received}: {e}")),
        }
        let seq = u64::from_le_bytes(out[..8].try_into().map_err(|_| "short message")?);
        if seq != next || out.len() != len_of(seq) || mismatch(seq, &out).is_some() {
            return Err(format!(
                "reader: expected message {next}, got {seq}: {out:?}"
            ));
        }
        next += 1;
        received += 1;
        if victim {
            xproc::set(&shared, VICTIM_READ, received);
            if received >= 100 {
                // Stall holding its cursor until the parent kills it.
                std::thread::sleep(PATIENCE * 4);
            }
        }
    }
    if next != n {
        return Err(format!("reader: stopped at {next} of {n}"));
    }
    Ok(format!("received={received} lagged={lagged}"))
}

fn reader() -> Result<String, String> {
    reader_loop(false)
}

fn victim() -> Result<String, String> {
    reader_loop(true)
}

fn setup(scope: &LeakScope, tag: &str, policy: Policy) -> Result<Shared, Failed> {
    let config = RingConfig::broadcast(SLOTS, SLOT_SIZE)
        .max_readers(8)
        .policy(policy);
    let shared = Shared::create(scope, Via::Posix, tag, config.required_len()?, 0);
    init(&shared.memory(), &config)?;
    Ok(shared)
}

fn policy_name(policy: Policy) -> String {
    format!("{policy:?}")
}

fn eight_readers(n: u64) -> Result<(), Failed> {
    let scope = LeakScope::new();
    let shared = setup(&scope, "bcast-eight", Policy::Block)?;
    let env = [(COUNT_ENV, n.to_string()), (READERS_ENV, "8".to_string())];
    let readers: Vec<_> = (0..8).map(|_| shared.spawn("bc-reader", &env)).collect();
    let writer = shared.spawn("bc-writer", &env);
    let children = std::iter::once((writer, "writer"))
        .chain(readers.into_iter().map(|r| (r, "reader")))
        .collect();
    let outputs = finish(children);
    for out in &outputs[1..] {
        assert_eq!(
            reported(out, "received"),
            n,
            "every reader reads every message"
        );
        assert_eq!(reported(out, "lagged"), 0, "block policy: no reader lags");
    }
    println!(
        "broadcast: {n} messages to 8 reader processes in {} us",
        reported(&outputs[0], "micros")
    );
    drop(shared);
    drop(scope);
    Ok(())
}

fn killed_reader(policy: Policy, n: u64) -> Result<(), Failed> {
    let scope = LeakScope::new();
    let shared = setup(&scope, "bcast-kill", policy)?;
    let env = [
        (COUNT_ENV, n.to_string()),
        (READERS_ENV, "2".to_string()),
        (POLICY_ENV, policy_name(policy)),
    ];
    let victim = shared.spawn("bc-victim", &env);
    let survivor = shared.spawn("bc-reader", &env);
    let writer = shared.spawn("bc-writer", &env);
    assert!(
        xproc::wait_until(PATIENCE, || xproc::get(&shared, VICTIM_READ) >= 100),
        "the victim never read 100 messages"
    );
    // SAFETY: kill has no memory-safety preconditions; the pid is our own child's, which has
    // not been reaped (its `Child` is alive), so it names that process.
    let rc = unsafe { libc::kill(victim.pid() as libc::pid_t, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill -9 the victim");
    let outputs = finish(vec![(writer, "writer"), (survivor, "survivor")]);
    let (received, lagged) = (
        reported(&outputs[1], "received"),
        reported(&outputs[1], "lagged"),
    );
    assert_eq!(
        received + lagged,
        n,
        "every position read or counted as lagged"
    );
    if policy == Policy::Block {
        assert_eq!(received, n, "block policy: the survivor reads everything");
    }
    let mut victim = victim;
    let status = victim.wait_timeout(PATIENCE)?;
    assert!(!status.success(), "the victim was killed");
    println!(
        "broadcast {policy:?}: writer carried on past a killed reader; survivor {received} read, {lagged} lagged"
    );
    drop(shared);
    drop(scope);
    Ok(())
}

fn main() {
    let n: u64 = env_number("RINGWAY_STRESS_MESSAGES").map_or(20_000, |m: u64| m / 100);
    let tests = vec![
        Trial::test("broadcast_one_writer_eight_reader_processes", move || {
            eight_readers(n)
        }),
        Trial::test("broadcast_reader_killed_under_block", move || {
            killed_reader(Policy::Block, n)
        }),
        Trial::test("broadcast_reader_killed_under_overwrite", move || {
            killed_reader(Policy::Overwrite, n)
        }),
    ];
    harness::main(
        tests,
        &[
            ("bc-writer", || role(writer)),
            ("bc-reader", || role(reader)),
            ("bc-victim", || role(victim)),
        ],
    );
}
