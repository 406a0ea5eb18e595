//! MPMC ring behaviour on heap memory: FIFO, grants, closing, recovery of slots held by dead
//! processes, registration, a hostile peer, and threads hammering it.

#![cfg(not(ringway_loom))]

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Rng, dead_identity, message, peek, poke, probe, wait_for_a_waiting_consumer};
use ringway_ring::layout::SEQ_LOST;
use ringway_ring::{
    AttachError, AttachOptions, PopError, PushError, RingConfig, RingMemory, WaitStrategy, mpmc,
};

fn memory(slots: u64, slot_size: u32, parties: u32) -> RingMemory {
    RingMemory::heap(
        &RingConfig::mpmc(slots, slot_size)
            .max_producers(parties)
            .max_consumers(parties),
    )
    .unwrap()
}

fn opts() -> AttachOptions {
    AttachOptions::new()
        .liveness_probe(probe)
        .liveness_interval(Duration::from_millis(5))
}

fn dead(n: u32) -> AttachOptions {
    opts().identity(dead_identity(n))
}

fn pop(rx: &mut mpmc::Consumer) -> Result<Vec<u8>, PopError> {
    let mut out = Vec::new();
    rx.pop(&mut out).map(|_| out)
}

/// Offset of slot `i` in a ring with `parties` producers and consumers and `slot_size`.
fn slot(parties: u32, slot_size: u32, i: u64) -> usize {
    // Header and payload, rounded up to a cache line (layout version 4).
    let stride = (16 + slot_size as u64 + 63) & !63;
    (1024 + 128 * 2 * parties as u64 + i * stride) as usize
}

#[test]
fn fifo_full_and_empty() {
    let m = memory(4, 8, 2);
    let mut tx = mpmc::Producer::attach(&m, &opts()).unwrap();
    let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
    assert_eq!(pop(&mut rx), Err(PopError::Empty));
    for i in 0..4u8 {
        tx.push(&[i; 3]).unwrap();
    }
    assert_eq!(tx.push(b"x"), Err(PushError::Full));
    assert_eq!(
        tx.push(&[0; 9]),
        Err(PushError::TooLarge { len: 9, max: 8 })
    );
    for i in 0..4u8 {
        assert_eq!(pop(&mut rx).unwrap(), [i; 3]);
    }
    tx.push(b"").unwrap();
    tx.push(&[7; 8]).unwrap();
    assert_eq!(pop(&mut rx).unwrap(), b"");
    assert_eq!(pop(&mut rx).unwrap(), [7; 8]);
    assert_eq!(pop(&mut rx), Err(PopError::Empty));
}

#[test]
fn slot_grants_commit_cancel_and_read_in_place() {
    let m = memory(8, 16, 2);
    let mut tx = mpmc::Producer::attach(&m, &opts()).unwrap();
    let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
    let mut grant = tx.reserve(16).unwrap();
    grant.write(0, b"cancelled");
    drop(grant); // published as cancelled: skipped by consumers
    let mut grant = tx.reserve(16).unwrap();
    grant.write(0, b"kept");
    grant.commit_partial(4);
    let mut grant = tx.reserve(2).unwrap();
    let ptr = grant.as_mut_ptr();
    // SAFETY: the grant is valid for writes of 2 bytes.
    unsafe { core::ptr::copy_nonoverlapping(b"ok".as_ptr(), ptr, 2) };
    grant.commit();
    let grant = rx.peek().unwrap();
    assert_eq!(grant.to_vec(), b"kept");
    // SAFETY: no producer writes this slot while we hold it.
    assert_eq!(unsafe { grant.as_slice() }, b"kept");
    grant.release();
    let grant = rx.peek().unwrap();
    let mut two = [0u8; 8];
    assert_eq!(grant.copy_to(&mut two), 2);
    drop(grant); // dropping releases too
    assert_eq!(&two[..2], b"ok");
    assert_eq!(pop(&mut rx), Err(PopError::Empty));
    assert_eq!(rx.lost(), 0, "a cancelled slot is not a lost one");
}

#[test]
fn closing_each_side() {
    let m = memory(8, 8, 2);
    let mut tx1 = mpmc::Producer::attach(&m, &opts()).unwrap();
    let mut tx2 = mpmc::Producer::attach(&m, &opts()).unwrap();
    let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
    tx1.push(b"a").unwrap();
    tx2.push(b"b").unwrap();
    drop(tx1);
    assert_eq!(pop(&mut rx).unwrap(), b"a");
    assert_eq!(pop(&mut rx).unwrap(), b"b");
    assert_eq!(
        pop(&mut rx),
        Err(PopError::Empty),
        "one producer is still attached"
    );
    drop(tx2);
    assert_eq!(pop(&mut rx), Err(PopError::Closed));
    assert!(rx.is_disconnected());

    let m = memory(2, 8, 2);
    let mut tx = mpmc::Producer::attach(&m, &opts()).unwrap();
    let rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
    tx.push(b"1").unwrap();
    drop(rx);
    // Producers notice at once when the ring is full, and periodically before that.
    let mut result = Ok(());
    for _ in 0..3 {
        result = tx.push(b"2");
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(PushError::Closed));
    assert_eq!(
        tx.push_timeout(b"3", Duration::from_secs(5)),
        Err(PushError::Closed)
    );
}

#[test]
fn a_consumer_skips_a_slot_claimed_by_a_dead_producer() {
    let m = memory(4, 8, 2);
    let mut victim = mpmc::Producer::attach(&m, &dead(1)).unwrap();
    let mut tx = mpmc::Producer::attach(&m, &opts()).unwrap();
    let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
    tx.push(b"before").unwrap();
    // The victim claims slot 1 and "dies" before publishing it.
    std::mem::forget(victim.reserve(8).unwrap());
    std::mem::forget(victim);
    tx.push(b"after").unwrap();
    assert_eq!(pop(&mut rx).unwrap(), b"before");
    // Slot 1 is stuck; non-blocking polls alone get past it, once the slow path is due (on
    // the endpoint's first empty poll, then once per liveness interval).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let out = loop {
        match pop(&mut rx) {
            Err(PopError::Empty) => assert!(std::time::Instant::now() < deadline, "stuck"),
            other => break other.unwrap(),
        }
    };
    assert_eq!(out, b"after");
    assert_eq!(rx.lost(), 1);
}

#[test]
fn a_live_claimant_is_waited_for_not_skipped() {
    let m = memory(4, 8, 2);
    let mut slow = mpmc::Producer::attach(&m, &opts()).unwrap();
    let mut tx = mpmc::Producer::attach(&m, &opts()).unwrap();
    let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
    let mut grant = slow.reserve(8).unwrap();
    tx.push(b"second").unwrap();
    assert_eq!(rx.recover(), Ok(false));
    let mut out = Vec::new();
    assert_eq!(
        rx.pop_timeout(&mut out, Duration::from_millis(30)),
        Err(PopError::Timeout)
    );
    grant.write(0, b"first");
    grant.commit_partial(5);
    assert_eq!(pop(&mut rx).unwrap(), b"first");
    assert_eq!(pop(&mut rx).unwrap(), b"second");
    assert_eq!(rx.lost(), 0);
}

#[test]
fn a_producer_reclaims_a_slot_held_by_a_dead_consumer() {
    let m = memory(2, 8, 2);
    let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
    let mut victim = mpmc::Consumer::attach(&m, &dead(2)).unwrap();
    let mut tx = mpmc::Producer::attach(&m, &opts()).unwrap();
    tx.push(b"taken").unwrap(); // position 0, slot 0
    tx.push(b"kept").unwrap(); // position 1, slot 1
    // The victim claims position 0 and dies before releasing slot 0.
    std::mem::forget(victim.peek().unwrap());
    std::mem::forget(victim);
    assert_eq!(pop(&mut rx).unwrap(), b"kept");
    // Position 2 maps to slot 0, still held by the dead consumer: non-blocking pushes alone
    // reclaim it once the slow path is due.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while let Err(e) = tx.push(b"next") {
        assert_eq!(e, PushError::Full, "slot 0 is held");
        assert!(std::time::Instant::now() < deadline, "never reclaimed");
    }
    assert_eq!(tx.abandoned(), 1);
    assert_eq!(pop(&mut rx).unwrap(), b"next");
    assert_eq!(pop(&mut rx), Err(PopError::Empty));
}

#[test]
fn the_last_producer_dying_mid_claim_still_lets_consumers_drain_and_close() {
    let m = memory(4, 8, 2);
    let mut tx = mpmc::Producer::attach(&m, &dead(3)).unwrap();
    let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
    tx.push(b"one").unwrap();
    std::mem::forget(tx.reserve(1).unwrap());
    std::mem::forget(tx);
    let mut out = Vec::new();
    rx.pop_timeout(&mut out, Duration::from_secs(5)).unwrap();
    assert_eq!(out, b"one");
    assert_eq!(
        rx.pop_timeout(&mut out, Duration::from_secs(5)),
        Err(PopError::Closed)
    );
    assert_eq!(rx.lost(), 1);
}

#[test]
fn registration_table_full_and_reuse() {
    let m = memory(4, 8, 2);
    let a = mpmc::Producer::attach(&m, &opts()).unwrap();
    let b = mpmc::Producer::attach(&m, &opts()).unwrap();
    assert!(matches!(
        mpmc::Producer::attach(&m, &opts()),
        Err(AttachError::TableFull { max: 2, .. })
    ));
    drop(a); // a closed entry is reused
    let _c = mpmc::Producer::attach(&m, &opts()).unwrap();
    // A dead entry is reused too, after its stuck claim is resolved.
    drop(b);
    let m = memory(4, 8, 1);
    let mut victim = mpmc::Producer::attach(&m, &dead(4)).unwrap();
    std::mem::forget(victim.reserve(1).unwrap());
    std::mem::forget(victim);
    let mut tx = mpmc::Producer::attach(&m, &opts()).unwrap();
    let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
    tx.push(b"z").unwrap();
    assert_eq!(pop(&mut rx).unwrap(), b"z");
    assert_eq!(rx.lost(), 1);
}

#[test]
fn a_hostile_length_is_reported_and_the_ring_moves_on() {
    let m = memory(4, 8, 1);
    let mut tx = mpmc::Producer::attach(&m, &opts()).unwrap();
    let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
    tx.push(b"bad").unwrap();
    tx.push(b"good").unwrap();
    poke(&m, slot(1, 8, 0) + 8, 9); // len 9 > slot_size 8
    assert!(matches!(pop(&mut rx), Err(PopError::Corrupted(_))));
    assert_eq!(pop(&mut rx).unwrap(), b"good");
}

#[test]
fn a_sequence_ahead_of_a_frozen_index_is_corruption_not_a_livelock() {
    let m = memory(4, 8, 1);
    let mut tx = mpmc::Producer::attach(&m, &opts()).unwrap();
    let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
    poke(&m, slot(1, 8, 0), 1 << 40);
    assert!(matches!(tx.push(b"x"), Err(PushError::Corrupted(_))));
    assert!(matches!(pop(&mut rx), Err(PopError::Corrupted(_))));
}

#[test]
fn lost_marks_from_a_hostile_peer_are_skipped_boundedly() {
    let m = memory(4, 8, 1);
    let mut tx = mpmc::Producer::attach(&m, &opts()).unwrap();
    let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
    for _ in 0..4 {
        tx.push(b"x").unwrap();
    }
    for i in 0..4 {
        let at = slot(1, 8, i);
        poke(&m, at, peek(&m, at) | SEQ_LOST);
    }
    assert_eq!(pop(&mut rx), Err(PopError::Empty));
    tx.push(b"y").unwrap();
    assert_eq!(pop(&mut rx).unwrap(), b"y");
}

#[test]
fn two_producers_two_consumers_deliver_everything_exactly_once() {
    // Under Miri a few laps of the 64 slots per producer.
    const PER_PRODUCER: u64 = if cfg!(miri) { 300 } else { 50_000 };
    let m = memory(64, 24, 4);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    // Attach both producers before any consumer runs: consumers report Closed once every
    // registered producer has left, and a fast first producer must not end the stream.
    let producers: Vec<_> = (0..2)
        .map(|_| mpmc::Producer::attach(&m, &opts()).unwrap())
        .collect();
    for (p, mut tx) in (0u64..).zip(producers) {
        threads.push(std::thread::spawn(move || {
            let mut rng = Rng(p + 1);
            for i in 0..PER_PRODUCER {
                let seq = (p << 32) | i;
                let len = 8 + rng.below(17) as usize;
                tx.push_timeout(&message(seq, len), Duration::from_secs(20))
                    .unwrap();
            }
        }));
    }
    for _ in 0..2 {
        let m = m.clone();
        let seen = seen.clone();
        threads.push(std::thread::spawn(move || {
            let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
            let mut out = Vec::new();
            let mut mine = Vec::new();
            let mut last = [None::<u64>; 2];
            loop {
                match rx.pop_timeout(&mut out, Duration::from_secs(20)) {
                    Ok(_) => {
                        let seq = u64::from_le_bytes(out[..8].try_into().unwrap());
                        assert_eq!(out, message(seq, out.len()));
                        // Per producer, one consumer sees increasing sequence numbers.
                        let p = (seq >> 32) as usize;
                        assert!(last[p].is_none_or(|l| l < seq), "reordered");
                        last[p] = Some(seq);
                        mine.push(seq);
                    }
                    Err(PopError::Closed) => break,
                    Err(e) => panic!("pop: {e}"),
                }
            }
            seen.lock().unwrap().extend(mine);
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    let unique: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(seen.len() as u64, 2 * PER_PRODUCER, "count");
    assert_eq!(unique.len(), seen.len(), "duplicates");
}

/// As the SPSC test of the same name: a consumer waiting for the next slot must not read the
/// payload bytes a producer is about to write into it with a plain copy (a data race, which
/// Miri reports), here in slots wider than a cache line.
#[test]
fn a_waiting_consumer_never_reads_the_slot_being_written() {
    const ROUNDS: u64 = 3;
    let m = memory(4, 200, 1);
    // Liveness checks (a `/proc` read, about a second under Miri) would keep the consumer
    // from ever reaching its sleep; nobody dies here.
    let opts = opts()
        .wait_strategy(WaitStrategy::Park)
        .liveness_interval(Duration::from_secs(60));
    let mut tx = mpmc::Producer::attach(&m, &opts).unwrap();
    let mut rx = mpmc::Consumer::attach(&m, &opts).unwrap();
    let (popped, next) = std::sync::mpsc::channel();
    let producer = std::thread::spawn(move || {
        for seq in 0..ROUNDS {
            wait_for_a_waiting_consumer(&m);
            tx.push(&message(seq, 200)).unwrap();
            next.recv().unwrap();
        }
    });
    let mut out = Vec::new();
    for seq in 0..ROUNDS {
        rx.pop_timeout(&mut out, Duration::from_secs(20)).unwrap();
        assert_eq!(out, message(seq, 200));
        popped.send(()).unwrap();
    }
    producer.join().unwrap();
}
