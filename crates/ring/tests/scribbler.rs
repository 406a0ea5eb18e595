//! A hostile third process: while a producer process and a consumer process run a ring over a
//! POSIX shm region, a scribbler process maps the same bytes and writes garbage and adversarial
//! values over the header, the indices, the registration table and the records.
//!
//! The consumer (the victim) must only ever get messages or errors: never a crash, a hang, an
//! out-of-bounds access or a panic, and never a message longer than the ring's maximum. A
//! message whose bytes the scribbler overwrote cannot be told from an honest one by the ring
//! (payloads carry no checksum, and the layout does not promise one: a peer can garble its own
//! messages), so the victim checks each against its pattern and counts intact and garbled ones.
//!
//! The run is split into rounds: an SPSC consumer stays poisoned after `Corrupted`, and an MPMC
//! ring may be left unusable, so the victim ends a round on an error (or after a few thousand
//! messages), waits for the producer to leave, zeroes the ring, initialises it again (while the
//! scribbler keeps writing, so `init` and `attach` meet garbage too) and starts the next round.
//! The processes coordinate through a control page beside the ring that the scribbler leaves
//! alone. `RINGWAY_SCRIBBLE_SECS` sets the duration of each run (default 3 s).
//!
//! The broadcast ring's hostile readers (a reader process writing whatever a reader can
//! reach, while a writer and an honest reader run) are in `bscribble`.

mod bscribble;
mod common;
mod xproc;

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Rng;
use libtest_mimic::{Failed, Trial};
use ringway_ring::layout::{
    SEQ_LOST, STATE_ACTIVE, STATE_CLOSED, ctl_pack, padding_word, record_tag, record_word,
};
use ringway_ring::{
    AttachOptions, Geometry, PopError, PushError, RingConfig, RingKind, init, mpmc, spsc,
};
use ringway_testkit::{LeakScope, harness};
use xproc::{
    PATIENCE, Shared, Via, env_number, fill, fill_raw, finish, get, mismatch, reported, role, set,
};

const SECONDS_ENV: &str = "RINGWAY_SCRIBBLE_SECS";
const KIND_ENV: &str = "RINGWAY_XP_KIND";

/// Control words.
const STOP: usize = 0;
const ROUND: usize = 1;
const PRODUCER_DONE: usize = 2;
const CONSUMER_DONE: usize = 3;

/// A round ends after this many messages, so that init and attach also run under fire.
const ROUND_MESSAGES: u64 = 4000;
/// How long one blocking call may wait in a round.
const CALL_TIMEOUT: Duration = Duration::from_millis(100);
/// A call that takes longer than this has hung (its own timeout is far shorter).
const HUNG: Duration = Duration::from_secs(10);

fn config(kind: RingKind) -> RingConfig {
    match kind {
        RingKind::Spsc => RingConfig::spsc(4096),
        _ => RingConfig::mpmc(64, 48).max_producers(2).max_consumers(2),
    }
}

fn kind_from_env() -> RingKind {
    match std::env::var(KIND_ENV).as_deref() {
        Ok("spsc") => RingKind::Spsc,
        Ok("mpmc") => RingKind::Mpmc,
        other => panic!("{KIND_ENV}={other:?}"),
    }
}

fn opts() -> AttachOptions {
    AttachOptions::new()
        .init_timeout(CALL_TIMEOUT)
        .liveness_interval(Duration::from_millis(10))
}

/// The length of message `seq`: mostly short, now and then the ring's maximum.
fn message_len(seq: u64, max: usize) -> usize {
    let hash = seq.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
    if hash % 50 == 0 {
        max
    } else {
        8 + hash as usize % (max.min(300) - 7)
    }
}

/// Times one call and fails the child if it hung.
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    let start = Instant::now();
    let result = f();
    let took = start.elapsed();
    if took > HUNG {
        return Err(format!("{what} took {took:?}: hung"));
    }
    Ok(result)
}

/// What the victim saw.
#[derive(Default)]
struct Tally {
    rounds: u64,
    init_failed: u64,
    attach_failed: u64,
    intact: u64,
    garbled: u64,
    replayed: u64,
    corrupted: u64,
    timeouts: u64,
    closed: u64,
}

/// One consumer endpoint of either kind.
enum Rx {
    Spsc(spsc::Consumer),
    Mpmc(mpmc::Consumer),
}

impl Rx {
    fn pop(&mut self, out: &mut Vec<u8>, peek: bool) -> Result<usize, PopError> {
        match (self, peek) {
            (Rx::Spsc(rx), false) => rx.pop_timeout(out, CALL_TIMEOUT),
            (Rx::Spsc(rx), true) => rx.peek_timeout(CALL_TIMEOUT).map(|grant| {
                *out = grant.to_vec();
                grant.release();
                out.len()
            }),
            (Rx::Mpmc(rx), false) => rx.pop_timeout(out, CALL_TIMEOUT),
            (Rx::Mpmc(rx), true) => rx.peek_timeout(CALL_TIMEOUT).map(|grant| {
                *out = grant.to_vec();
                out.len()
            }),
        }
    }
}

/// Zeroes the ring's bytes (the scribbler may be writing them at the same time).
fn zero_ring(shared: &Shared) {
    let (ptr, len) = shared.ring_ptr();
    for at in (0..len).step_by(8) {
        // SAFETY: `at + 8 <= len` (the ring length is a multiple of 8) inside the mapping, and
        // 8-aligned; every process reaches these bytes through atomics or raw copies only.
        unsafe { &*ptr.add(at).cast::<AtomicU64>() }.store(0, Ordering::Relaxed);
    }
}

fn victim() -> Result<String, String> {
    let shared = Shared::from_env();
    let memory = shared.memory();
    let kind = kind_from_env();
    let config = config(kind);
    let max = config.geometry().map_err(|e| e.to_string())?.max_message as usize;
    let mut t = Tally::default();
    let mut out = Vec::new();
    let mut round = 0;
    while get(&shared, STOP) == 0 {
        zero_ring(&shared);
        if timed("init", || init(&memory, &config))?.is_err() {
            t.init_failed += 1;
            continue;
        }
        let attached = timed("attach", || match kind {
            RingKind::Spsc => spsc::Consumer::attach(&memory, &opts()).map(Rx::Spsc),
            _ => mpmc::Consumer::attach(&memory, &opts()).map(Rx::Mpmc),
        })?;
        let Ok(mut rx) = attached else {
            t.attach_failed += 1;
            continue;
        };
        round += 1;
        t.rounds += 1;
        set(&shared, ROUND, round);
        let (mut received, mut errors_in_a_row) = (0u64, 0);
        let mut last_intact = None;
        while received < ROUND_MESSAGES && errors_in_a_row < 20 && get(&shared, STOP) == 0 {
            let peek = received % 3 == 2;
            match timed("pop", || rx.pop(&mut out, peek))? {
                Ok(len) => {
                    errors_in_a_row = 0;
                    received += 1;
                    if len > max || out.len() != len {
                        return Err(format!(
                            "round {round}: a message of {len} bytes ({} copied) from a ring \
                             whose maximum is {max}",
                            out.len()
                        ));
                    }
                    let seq = out
                        .get(..8)
                        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
                    match seq {
                        Some(seq)
                            if len == message_len(seq, max) && mismatch(seq, &out).is_none() =>
                        {
                            // An intact message out of order is stale bytes the scribbler
                            // dressed up with a fresh header: the ring cannot tell.
                            if last_intact.is_some_and(|l| l >= seq) {
                                t.replayed += 1;
                            } else {
                                t.intact += 1;
                            }
                            last_intact = Some(seq);
                        }
                        _ => t.garbled += 1,
                    }
                }
                Err(PopError::Corrupted(_)) => {
                    t.corrupted += 1;
                    errors_in_a_row += 1;
                    if kind == RingKind::Spsc {
                        break; // poisoned for good
                    }
                }
                Err(PopError::Timeout) => {
                    t.timeouts += 1;
                    errors_in_a_row += 5;
                }
                Err(PopError::Closed) => {
                    t.closed += 1;
                    break;
                }
                Err(e) => return Err(format!("round {round}: unexpected {e:?}")),
            }
        }
        timed("drop consumer", || drop(rx))?;
        set(&shared, CONSUMER_DONE, round);
        if !xproc::wait_until(PATIENCE, || get(&shared, PRODUCER_DONE) >= round) {
            return Err(format!("round {round}: the producer never left"));
        }
    }
    set(&shared, CONSUMER_DONE, u64::MAX); // tells the producer no round follows
    Ok(format!(
        "rounds={} init_failed={} attach_failed={} intact={} garbled={} replayed={} \
         corrupted={} timeouts={} closed={}",
        t.rounds,
        t.init_failed,
        t.attach_failed,
        t.intact,
        t.garbled,
        t.replayed,
        t.corrupted,
        t.timeouts,
        t.closed
    ))
}

/// One producer endpoint of either kind.
enum Tx {
    Spsc(spsc::Producer),
    Mpmc(mpmc::Producer),
}

impl Tx {
    /// Sends message `seq`, by copy, deferred and flushed, or in place.
    fn send(&mut self, seq: u64, msg: &mut Vec<u8>, max: usize) -> Result<(), PushError> {
        let len = message_len(seq, max);
        msg.resize(len, 0);
        fill(seq, msg);
        match (self, seq % 3) {
            (Tx::Spsc(tx), 0) => tx.push_timeout(msg, CALL_TIMEOUT),
            (Tx::Spsc(tx), 1) => {
                let result = tx.push_deferred(msg);
                tx.flush();
                result
            }
            (Tx::Spsc(tx), _) => tx.reserve_timeout(len, CALL_TIMEOUT).map(|mut g| {
                // SAFETY: the grant is valid for writes of `len` bytes.
                unsafe { fill_raw(seq, g.as_mut_ptr(), len) };
                g.commit();
            }),
            (Tx::Mpmc(tx), 2) => tx.reserve_timeout(len, CALL_TIMEOUT).map(|mut g| {
                // SAFETY: the grant is valid for writes of `len` bytes.
                unsafe { fill_raw(seq, g.as_mut_ptr(), len) };
                g.commit();
            }),
            (Tx::Mpmc(tx), _) => tx.push_timeout(msg, CALL_TIMEOUT),
        }
    }
}

fn feeder() -> Result<String, String> {
    let shared = Shared::from_env();
    let memory = shared.memory();
    let kind = kind_from_env();
    let max = config(kind)
        .geometry()
        .map_err(|e| e.to_string())?
        .max_message as usize;
    let (mut rounds, mut sent, mut corrupted, mut attach_failed) = (0u64, 0u64, 0u64, 0u64);
    let mut msg = Vec::new();
    let mut last = 0;
    loop {
        // Serve rounds until the victim has left: it may start one more after the stop.
        let next = || get(&shared, ROUND) > last || get(&shared, CONSUMER_DONE) == u64::MAX;
        if !xproc::wait_until(PATIENCE, next) {
            return Err(format!("producer: no round after {last}"));
        }
        let round = get(&shared, ROUND);
        if round <= last {
            break; // the victim has left
        }
        last = round;
        let attached = timed("attach", || match kind {
            RingKind::Spsc => spsc::Producer::attach(&memory, &opts()).map(Tx::Spsc),
            _ => mpmc::Producer::attach(&memory, &opts()).map(Tx::Mpmc),
        })?;
        match attached {
            Err(_) => attach_failed += 1,
            Ok(mut tx) => {
                rounds += 1;
                let mut seq = 0;
                let mut errors_in_a_row = 0;
                while get(&shared, CONSUMER_DONE) < round && errors_in_a_row < 50 {
                    match timed("push", || tx.send(seq, &mut msg, max))? {
                        Ok(()) => {
                            seq += 1;
                            sent += 1;
                            errors_in_a_row = 0;
                        }
                        Err(PushError::Full | PushError::Timeout) => {}
                        Err(PushError::Closed) => break,
                        Err(PushError::Corrupted(_)) => {
                            corrupted += 1;
                            errors_in_a_row += 1;
                            if kind == RingKind::Spsc {
                                break; // poisoned for good
                            }
                        }
                        Err(e) => return Err(format!("producer: round {round}: {e}")),
                    }
                }
                timed("drop producer", || drop(tx))?;
            }
        }
        set(&shared, PRODUCER_DONE, round);
    }
    Ok(format!(
        "rounds={rounds} sent={sent} corrupted={corrupted} attach_failed={attach_failed}"
    ))
}

/// One of `choices`, at random (the choices come first so that they may draw on `rng` too).
fn pick<T: Copy>(choices: &[T], rng: &mut Rng) -> T {
    choices[rng.below(choices.len() as u64) as usize]
}

/// Writes an adversarial value somewhere in the ring: record headers and slots near the live
/// positions, the indices, the registration table, the rest of the header, random bytes.
struct Scribbler {
    rng: Rng,
    base: *mut u8,
    len: usize,
    geo: Geometry,
}

impl Scribbler {
    fn word(&self, at: usize) -> &AtomicU64 {
        let at = (at & !7).min(self.len - 8);
        // SAFETY: clamped into the ring and 8-aligned (the mapping is page-aligned); every
        // process reaches these bytes through atomics or raw copies only.
        unsafe { &*self.base.add(at).cast::<AtomicU64>() }
    }

    fn poke(&self, at: usize, value: u64) {
        self.word(at).store(value, Ordering::Relaxed);
    }

    fn load(&self, at: usize) -> u64 {
        self.word(at).load(Ordering::Relaxed)
    }

    /// A position near where the endpoints are now: around `tail` or `head`, this lap or
    /// another.
    fn live_position(&mut self) -> u64 {
        let at = pick(&[128usize, 256], &mut self.rng);
        let index = self.load(at);
        // SPSC positions count bytes (records are 8-aligned), MPMC positions count slots.
        let unit = if self.geo.kind == RingKind::Spsc {
            8
        } else {
            1
        };
        let laps = pick(&[0i64, 0, 0, 1, -1], &mut self.rng);
        index
            .wrapping_add(self.rng.below(16) * unit)
            .wrapping_add_signed(laps * self.geo.capacity as i64)
    }

    fn record(&mut self) {
        let geo = self.geo;
        let data = geo.data_offset as usize;
        if geo.kind == RingKind::Spsc {
            let pos = self.live_position() & !7;
            let offset = pos % geo.capacity;
            let room = geo.capacity - offset - 8;
            let max = u64::from(geo.max_message);
            let len = pick(
                &[max + 1, max, room, room + 1, 0, 1 << 29, self.rng.next()],
                &mut self.rng,
            );
            let other_lap = [
                pos.wrapping_add(geo.capacity),
                pos.wrapping_sub(geo.capacity),
            ];
            let tag_pos = pick(&[pos, pos, other_lap[0], other_lap[1]], &mut self.rng);
            let value = match self.rng.below(6) {
                0 | 1 => record_word(tag_pos, len),
                2 => padding_word(
                    tag_pos,
                    pick(&[room, room.wrapping_sub(8), room + 8, 0], &mut self.rng),
                ),
                3 => record_word(tag_pos, len) & !(1 << 31),
                4 => self.load(data + offset as usize) ^ (1 << self.rng.below(64)),
                _ => (record_tag(pos) << 32) | self.rng.below(1 << 32),
            };
            self.poke(data + offset as usize, value);
        } else {
            let pos = self.live_position();
            let slot = data + (pos % geo.capacity) as usize * geo.slot_stride as usize;
            if self.rng.below(2) == 0 {
                let seq = pick(
                    &[
                        pos,
                        pos.wrapping_add(1),
                        pos.wrapping_add(2),
                        pos.wrapping_add(geo.capacity),
                        pos.wrapping_add(1) | SEQ_LOST,
                        pos.wrapping_sub(1),
                        self.rng.next(),
                    ],
                    &mut self.rng,
                );
                self.poke(slot, seq);
            } else {
                let size = u64::from(geo.slot_size);
                let len = pick(
                    &[size + 1, size, u64::MAX, u64::MAX - 1, self.rng.next()],
                    &mut self.rng,
                );
                self.poke(slot + 8, len);
            }
        }
    }

    fn index(&mut self) {
        let at = pick(&[128usize, 256], &mut self.rng);
        let now = self.load(at);
        let cap = self.geo.capacity;
        let value = pick(
            &[
                now.wrapping_add(8),
                now.wrapping_sub(8),
                now.wrapping_add(1),
                now.wrapping_add(cap),
                now.wrapping_sub(cap),
                0,
                u64::MAX,
                self.rng.next(),
            ],
            &mut self.rng,
        );
        self.poke(at, value);
    }

    fn registration(&mut self) {
        let entries = (self.geo.max_producers + self.geo.max_consumers) as usize;
        let entry = 1024 + 128 * self.rng.below(entries as u64) as usize;
        let field = pick(&[0usize, 0, 8, 16], &mut self.rng);
        let now = self.load(entry + field);
        let value = match field {
            0 => {
                let pid = pick(
                    &[now as u32, 1, 0x3FFF_FFF0, self.rng.next() as u32],
                    &mut self.rng,
                );
                let state = pick(&[STATE_ACTIVE, STATE_CLOSED, 1, 4, 0xFF], &mut self.rng);
                ctl_pack(state, self.rng.below(1 << 24), pid)
            }
            8 => pick(&[now.wrapping_add(1), 0, self.rng.next()], &mut self.rng),
            _ => pick(
                &[
                    now.wrapping_add(1),
                    now.wrapping_sub(1),
                    0,
                    u64::MAX,
                    self.rng.next(),
                ],
                &mut self.rng,
            ),
        };
        self.poke(entry + field, value);
    }

    fn header(&mut self) {
        let at = self.rng.below(128) as usize * 8;
        let now = self.load(at);
        let value = pick(
            &[
                now ^ (1 << self.rng.below(64)),
                now.wrapping_add(1),
                0,
                self.rng.next(),
            ],
            &mut self.rng,
        );
        self.poke(at, value);
    }

    fn bytes(&mut self) {
        let at = self.rng.below(self.len as u64) as usize;
        for i in 0..=self.rng.below(8) as usize {
            if at + i < self.len {
                // SAFETY: `at + i < len`, inside the ring; a byte store through an atomic.
                let byte = unsafe { &*self.base.add(at + i).cast::<AtomicU8>() };
                byte.store(self.rng.next() as u8, Ordering::Relaxed);
            }
        }
    }

    fn scribble(&mut self) {
        match self.rng.below(100) {
            0..=34 => self.record(),
            35..=49 => self.index(),
            50..=59 => self.registration(),
            60..=69 => self.header(),
            _ => self.bytes(),
        }
    }
}

fn scribbler() -> Result<String, String> {
    let shared = Shared::from_env();
    let (base, len) = shared.ring_ptr();
    let geo = config(kind_from_env())
        .geometry()
        .map_err(|e| e.to_string())?;
    let mut s = Scribbler {
        rng: Rng(u64::from(std::process::id()) << 20 | 0x5C41),
        base,
        len,
        geo,
    };
    let mut writes = 0u64;
    while get(&shared, STOP) == 0 {
        // Bursts of a few writes, then quiet, so that messages also get through.
        for _ in 0..=s.rng.below(6) {
            s.scribble();
            writes += 1;
        }
        std::thread::sleep(Duration::from_micros(s.rng.below(3000)));
    }
    Ok(format!("writes={writes}"))
}

fn scribbled(kind: RingKind) -> Result<(), Failed> {
    let scope = LeakScope::new();
    let config = config(kind);
    let shared = Shared::create(&scope, Via::Posix, "scribbled", config.required_len()?, 0);
    let name = match kind {
        RingKind::Spsc => "spsc",
        _ => "mpmc",
    };
    let env = [(KIND_ENV, name.to_string())];
    let victim = shared.spawn("victim", &env);
    let feeder = shared.spawn("feeder", &env);
    let scribbler = shared.spawn("scribbler", &env);
    let seconds = env_number(SECONDS_ENV).unwrap_or(3.0);
    std::thread::sleep(Duration::from_secs_f64(seconds));
    set(&shared, STOP, 1);
    let outputs = finish(vec![
        (scribbler, "scribbler"),
        (victim, "victim (consumer)"),
        (feeder, "feeder (producer)"),
    ]);
    let [scribbler, victim, feeder] = &outputs[..] else {
        unreachable!("three children")
    };
    let count = |key: &str| reported(victim, key);
    // One short line: the counts the run is judged by.
    println!(
        "scribbled {name} ring {seconds} s: {} writes; consumer {} intact, {} garbled, {} \
         Corrupted; producer {} sent",
        reported(scribbler, "writes"),
        count("intact"),
        count("garbled"),
        count("corrupted"),
        reported(feeder, "sent"),
    );
    // The run exercised what it claims to: messages got through, and the scribbler's writes
    // were caught as corruption.
    assert!(count("intact") > 0, "no message got through");
    assert!(count("corrupted") > 0, "no corruption was detected");
    drop(shared);
    drop(scope);
    Ok(())
}

fn main() {
    harness::main(
        vec![
            Trial::test("scribbler_over_a_live_spsc_ring", || {
                scribbled(RingKind::Spsc)
            }),
            Trial::test("scribbler_over_a_live_mpmc_ring", || {
                scribbled(RingKind::Mpmc)
            }),
            Trial::test("hostile_reader_of_a_block_broadcast_ring", || {
                bscribble::hostile_reader(ringway_ring::Policy::Block)
            }),
            Trial::test("hostile_reader_of_an_overwrite_broadcast_ring", || {
                bscribble::hostile_reader(ringway_ring::Policy::Overwrite)
            }),
        ],
        &[
            ("victim", || role(victim)),
            ("feeder", || role(feeder)),
            ("scribbler", || role(scribbler)),
            ("bs-writer", || role(bscribble::writer)),
            ("bs-reader", || role(bscribble::reader)),
            ("bs-hostile", || role(bscribble::hostile)),
        ],
    );
}
