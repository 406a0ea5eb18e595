//! Crash recovery and the slow path, on heap rings with dead processes modelled by a liveness
//! probe: each test is one finding of the review of the ring crate (issue 9), and failed
//! before its fix.

#![cfg(not(ringway_loom))]

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{FAKE_DEAD_PID, dead_identity, peek, poke, probe};
use ringway_ring::layout::SEQ_LOST;
use ringway_ring::{
    AttachError, AttachOptions, PopError, PushError, RingConfig, RingMemory, mpmc, spsc,
};

const INTERVAL: Duration = Duration::from_millis(20);

fn opts() -> AttachOptions {
    AttachOptions::new()
        .liveness_probe(probe)
        .liveness_interval(INTERVAL)
}

fn mpmc_memory(slots: u64, producers: u32, consumers: u32) -> RingMemory {
    RingMemory::heap(
        &RingConfig::mpmc(slots, 8)
            .max_producers(producers)
            .max_consumers(consumers),
    )
    .unwrap()
}

/// Offset of MPMC slot `i` (slot size 8, stride 24).
fn slot(producers: u32, consumers: u32, i: u64) -> usize {
    (1024 + 128 * (producers + consumers) as u64 + i * 24) as usize
}

/// Polls `f` until it returns something other than `Empty`/`Full`/`Timeout`, for at most 5 s.
fn poll<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(found) = f() {
            return found;
        }
        assert!(Instant::now() < deadline, "no progress in 5 s");
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Item 1: producer A dies between its claim and its publish while producer B stays alive.
/// A consumer that only polls (`pop`) or waits less than the liveness interval at a time
/// (`pop_timeout`) must still get past A's slot: the liveness clock is the endpoint's, not
/// the call's.
#[test]
fn a_polling_consumer_recovers_a_dead_producers_claim_while_another_lives() {
    for timed in [false, true] {
        let m = mpmc_memory(4, 2, 1);
        let mut a = mpmc::Producer::attach(&m, &opts().identity(dead_identity(1))).unwrap();
        let mut b = mpmc::Producer::attach(&m, &opts()).unwrap();
        let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
        // A few polls first, so the endpoint's first (immediate) check is spent.
        let mut out = Vec::new();
        assert_eq!(rx.pop(&mut out), Err(PopError::Empty));
        std::mem::forget(a.reserve(8).unwrap());
        std::mem::forget(a);
        b.push(b"from b").unwrap();
        let got = poll(|| {
            let result = if timed {
                rx.pop_timeout(&mut out, INTERVAL / 4)
            } else {
                rx.pop(&mut out)
            };
            match result {
                Ok(_) => Some(out.clone()),
                Err(PopError::Empty | PopError::Timeout) => None,
                Err(e) => panic!("unexpected {e}"),
            }
        });
        assert_eq!(got, b"from b", "timed: {timed}");
        assert_eq!(rx.lost(), 1);
    }
}

/// The same for a producer: a consumer that died holding a slot is reclaimed by `push` polls.
#[test]
fn a_polling_producer_reclaims_a_dead_consumers_slot() {
    let m = mpmc_memory(2, 1, 2);
    let mut tx = mpmc::Producer::attach(&m, &opts()).unwrap();
    let mut victim = mpmc::Consumer::attach(&m, &opts().identity(dead_identity(2))).unwrap();
    let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
    tx.push(b"0").unwrap();
    tx.push(b"1").unwrap();
    assert!(matches!(tx.push(b"x"), Err(PushError::Full)));
    std::mem::forget(victim.peek().unwrap());
    std::mem::forget(victim);
    let mut out = Vec::new();
    rx.pop(&mut out).unwrap();
    assert_eq!(out, b"1");
    poll(|| match tx.push_timeout(b"2", INTERVAL / 4) {
        Ok(()) => Some(()),
        Err(PushError::Full | PushError::Timeout) => None,
        Err(e) => panic!("unexpected {e}"),
    });
    assert_eq!(tx.abandoned(), 1);
}

/// What the probe runs, once, the first time it is asked about a fake-dead pid: the moment a
/// slow `/proc` read would let another process act.
static WHILE_PROBING: Mutex<Option<Box<dyn FnOnce() + Send>>> = Mutex::new(None);
static GRANT: Mutex<Option<mpmc::SlotGrant<'static>>> = Mutex::new(None);

fn slow_probe(pid: u32, start_time: u64) -> bool {
    if pid >= FAKE_DEAD_PID {
        let hook = WHILE_PROBING.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
    }
    probe(pid, start_time)
}

/// Item 2: process B judges entry E dead (its `/proc` read is slow); meanwhile A takes E and
/// claims a slot. B must not then act on A's live claim as if it were the dead occupant's:
/// an entry is taken first (which fails for B, since A changed its generation) and only then
/// resolved.
#[test]
fn an_attach_racing_another_never_resolves_the_winners_live_claim() {
    let m = mpmc_memory(4, 1, 1);
    let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
    // E: a producer that published one message, then died.
    let mut dead = mpmc::Producer::attach(&m, &opts().identity(dead_identity(3))).unwrap();
    dead.push(b"the dead").unwrap();
    std::mem::forget(dead);
    let mut out = Vec::new();
    rx.pop(&mut out).unwrap();
    let memory = m.clone();
    *WHILE_PROBING.lock().unwrap() = Some(Box::new(move || {
        // A, during B's probe of E: takes E (the table has one producer entry) and claims
        // position 1 without publishing yet.
        let a = Box::leak(Box::new(
            mpmc::Producer::attach(&memory, &opts().liveness_probe(slow_probe)).unwrap(),
        ));
        *GRANT.lock().unwrap() = Some(a.reserve(8).unwrap());
    }));
    let b = mpmc::Producer::attach(&m, &opts().liveness_probe(slow_probe));
    assert!(
        matches!(b, Err(AttachError::TableFull { .. })),
        "B finds the only entry taken by A: {b:?}"
    );
    assert_eq!(rx.lost(), 0, "A's live claim was marked lost");
    assert_eq!(
        peek(&m, slot(1, 1, 1)) & SEQ_LOST,
        0,
        "A's slot was marked lost"
    );
    let mut grant = GRANT.lock().unwrap().take().unwrap();
    grant.write(0, b"from a");
    grant.commit_partial(6);
    rx.pop_timeout(&mut out, Duration::from_secs(5)).unwrap();
    assert_eq!(out, b"from a");
    assert!(matches!(rx.pop(&mut out), Err(PopError::Empty)));
}

/// Item 3: a producer that forgot a slot grant and then left cleanly leaves a CLOSED entry
/// with a stuck claim. The next producer to take that entry resolves the claim first, so
/// consumers skip the slot instead of reporting "a claimed MPMC slot has no claimant".
#[test]
fn a_closed_entry_is_resolved_before_it_is_reused() {
    let m = mpmc_memory(4, 1, 1);
    let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
    let mut first = mpmc::Producer::attach(&m, &opts()).unwrap();
    std::mem::forget(first.reserve(8).unwrap());
    drop(first);
    let mut second = mpmc::Producer::attach(&m, &opts()).unwrap();
    second.push(b"second").unwrap();
    let mut out = Vec::new();
    for _ in 0..3 {
        rx.pop_timeout(&mut out, Duration::from_secs(5)).unwrap();
        assert_eq!(out, b"second");
        second.push(b"second").unwrap();
    }
    assert_eq!(rx.lost(), 1);
}

/// Item 4: "every producer is gone" is not cached for ever; a producer that attaches later
/// (by name, or a clone) is served. Until one does, the consumer keeps saying Closed.
#[test]
fn disconnected_lasts_until_a_producer_attaches_again() {
    let m = mpmc_memory(4, 2, 1);
    let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
    drop(mpmc::Producer::attach(&m, &opts()).unwrap());
    let mut out = Vec::new();
    for _ in 0..100 {
        assert_eq!(rx.pop(&mut out), Err(PopError::Closed));
    }
    let mut late = mpmc::Producer::attach(&m, &opts()).unwrap();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        late.push(b"late").unwrap();
        late
    });
    let started = Instant::now();
    let got = rx.pop_timeout(&mut out, Duration::from_secs(5));
    assert_eq!(
        got,
        Ok(4),
        "after {:?}, with a live producer attached",
        started.elapsed()
    );
    assert_eq!(out, b"late");
    drop(sender.join().unwrap());
    assert_eq!(rx.pop(&mut out), Err(PopError::Closed));
}

/// Item 16: once a producer has reported Closed (its consumer died), it stays Closed, not
/// `Full` until the next liveness tick. SPSC and MPMC.
#[test]
fn once_closed_a_producer_stays_closed() {
    // SPSC: the consumer "dies" (a fake dead identity, never closed).
    let m = RingMemory::heap(&RingConfig::spsc(64)).unwrap();
    let mut tx = spsc::Producer::attach(&m, &opts()).unwrap();
    std::mem::forget(spsc::Consumer::attach(&m, &opts().identity(dead_identity(4))).unwrap());
    let e = poll(|| match tx.push(b"1234567") {
        Ok(()) | Err(PushError::Full) => None,
        Err(e) => Some(e),
    });
    assert_eq!(e, PushError::Closed);
    for _ in 0..1000 {
        assert_eq!(tx.push(b"x"), Err(PushError::Closed));
    }
    // MPMC.
    let m = mpmc_memory(2, 1, 1);
    let mut tx = mpmc::Producer::attach(&m, &opts()).unwrap();
    std::mem::forget(mpmc::Consumer::attach(&m, &opts().identity(dead_identity(5))).unwrap());
    let e = poll(|| match tx.push(b"x") {
        Ok(()) | Err(PushError::Full) => None,
        Err(e) => Some(e),
    });
    assert_eq!(e, PushError::Closed);
    for _ in 0..1000 {
        assert_eq!(tx.push(b"x"), Err(PushError::Closed));
    }
}

/// Item 6: a consumer that polls with `pop` every 2 ms, or loops over `pop_timeout(5 ms)`,
/// sees the death of its producer within the liveness interval plus a clock tick and
/// scheduling, not after a thousand polls. The bound asserted is 50 intervals (1 s), far
/// above the promise so a loaded machine cannot fail it, and far below what the poll gate
/// took (about 2 s and 5 s here).
#[test]
fn an_spsc_consumer_sees_a_dead_producer_within_the_interval_whatever_it_calls() {
    for timed in [false, true] {
        let m = RingMemory::heap(&RingConfig::spsc(1024)).unwrap();
        let mut rx = spsc::Consumer::attach(&m, &opts()).unwrap();
        let mut out = Vec::new();
        assert_eq!(rx.pop(&mut out), Err(PopError::Empty));
        let mut tx = spsc::Producer::attach(&m, &opts().identity(dead_identity(6))).unwrap();
        tx.push(b"last words").unwrap();
        std::mem::forget(tx);
        let died = Instant::now();
        rx.pop(&mut out).unwrap();
        let seen = loop {
            let result = if timed {
                rx.pop_timeout(&mut out, Duration::from_millis(5))
            } else {
                std::thread::sleep(Duration::from_millis(2));
                rx.pop(&mut out)
            };
            match result {
                Err(PopError::Empty | PopError::Timeout) => {}
                Err(PopError::Closed) => break died.elapsed(),
                other => panic!("unexpected {other:?}"),
            }
            assert!(died.elapsed() < Duration::from_secs(10), "never detected");
        };
        assert!(
            seen < INTERVAL * 50,
            "death seen after {seen:?} (timed: {timed})"
        );
    }
}

/// Item 13: the non-blocking calls run the same slow-path checks as the waiting ones. A
/// header wiped under the endpoints (what a truncation to zero and re-extension leaves) is
/// `Corrupted` for `pop` on an empty ring and `push` on a full one, not Empty/Full for ever.
#[test]
fn non_blocking_calls_check_the_header() {
    let wipe = |m: &RingMemory| {
        for off in (0..1024).step_by(8) {
            poke(m, off, 0);
        }
    };
    // SPSC consumer (empty ring) and producer (full ring).
    let m = RingMemory::heap(&RingConfig::spsc(64)).unwrap();
    let mut tx = spsc::Producer::attach(&m, &opts()).unwrap();
    let mut rx = spsc::Consumer::attach(&m, &opts()).unwrap();
    let mut out = Vec::new();
    assert_eq!(rx.pop(&mut out), Err(PopError::Empty));
    while tx.push(b"1234567").is_ok() {}
    assert_eq!(tx.push(b"1234567"), Err(PushError::Full));
    wipe(&m);
    let other = poll(|| match tx.push(b"1234567") {
        Err(PushError::Full) => None,
        other => Some(other),
    });
    assert!(matches!(other, Err(PushError::Corrupted(_))), "{other:?}");
    let m2 = RingMemory::heap(&RingConfig::spsc(64)).unwrap();
    let _tx2 = spsc::Producer::attach(&m2, &opts()).unwrap();
    let mut rx2 = spsc::Consumer::attach(&m2, &opts()).unwrap();
    assert_eq!(rx2.pop(&mut out), Err(PopError::Empty));
    wipe(&m2);
    let other = poll(|| match rx2.pop(&mut out) {
        Err(PopError::Empty) => None,
        other => Some(other),
    });
    assert!(matches!(other, Err(PopError::Corrupted(_))), "{other:?}");
    drop(rx);
    // MPMC consumer and producer.
    let m = mpmc_memory(2, 1, 1);
    let mut tx = mpmc::Producer::attach(&m, &opts()).unwrap();
    let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
    assert_eq!(rx.pop(&mut out), Err(PopError::Empty));
    tx.push(b"a").unwrap();
    tx.push(b"b").unwrap();
    assert_eq!(tx.push(b"c"), Err(PushError::Full));
    wipe(&m);
    let other = poll(|| match tx.push(b"c") {
        Err(PushError::Full) => None,
        other => Some(other),
    });
    assert!(matches!(other, Err(PushError::Corrupted(_))), "{other:?}");
    let m2 = mpmc_memory(2, 1, 1);
    let _tx2 = mpmc::Producer::attach(&m2, &opts()).unwrap();
    let mut rx2 = mpmc::Consumer::attach(&m2, &opts()).unwrap();
    assert_eq!(rx2.pop(&mut out), Err(PopError::Empty));
    wipe(&m2);
    let other = poll(|| match rx2.pop(&mut out) {
        Err(PopError::Empty) => None,
        other => Some(other),
    });
    assert!(matches!(other, Err(PopError::Corrupted(_))), "{other:?}");
    drop(rx);
}

/// Item 14: any `Duration` is a valid liveness interval and a valid timeout; nothing computes
/// `now + interval` unchecked.
#[test]
fn any_duration_is_accepted_as_interval_and_timeout() {
    let o = opts().liveness_interval(Duration::MAX);
    let m = RingMemory::heap(&RingConfig::spsc(64)).unwrap();
    let mut tx = spsc::Producer::attach(&m, &o).unwrap();
    let mut rx = spsc::Consumer::attach(&m, &o).unwrap();
    let mut out = Vec::new();
    assert_eq!(rx.pop(&mut out), Err(PopError::Empty));
    assert_eq!(
        rx.pop_timeout(&mut out, Duration::from_millis(2)),
        Err(PopError::Timeout)
    );
    while tx.push(b"1234567").is_ok() {}
    assert_eq!(tx.push(b"x"), Err(PushError::Full));
    assert_eq!(
        tx.push_timeout(b"x", Duration::from_millis(2)),
        Err(PushError::Timeout)
    );
    while rx.pop(&mut out).is_ok() {}
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        tx.push(b"woken").unwrap();
        tx
    });
    rx.pop_timeout(&mut out, Duration::MAX).unwrap();
    assert_eq!(out, b"woken");
    drop(sender.join().unwrap());

    let m = mpmc_memory(2, 1, 1);
    let mut tx = mpmc::Producer::attach(&m, &o).unwrap();
    let mut rx = mpmc::Consumer::attach(&m, &o).unwrap();
    assert_eq!(rx.pop(&mut out), Err(PopError::Empty));
    assert_eq!(
        rx.pop_timeout(&mut out, Duration::from_millis(2)),
        Err(PopError::Timeout)
    );
    tx.push(b"a").unwrap();
    tx.push(b"b").unwrap();
    assert_eq!(tx.push(b"c"), Err(PushError::Full));
    assert_eq!(
        tx.push_timeout(b"c", Duration::from_millis(2)),
        Err(PushError::Timeout)
    );
    // A push with no deadline at all, unblocked by a pop from another thread.
    let popper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        let mut out = Vec::new();
        rx.pop(&mut out).unwrap();
        rx
    });
    tx.push_timeout(b"c", Duration::MAX).unwrap();
    drop(popper.join().unwrap());
}
