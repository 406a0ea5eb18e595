//! Broadcast ring behaviour on heap memory: every reader reads every message, the two
//! policies, late readers with and without history, dead readers, closing, in-place reads, and
//! a hostile peer.

#![cfg(not(ringway_loom))]

mod common;

use std::time::Duration;

use common::{dead_identity, peek, poke, probe};
use ringway_ring::layout::{STAMP_BUSY, broadcast_data_offset, stamp_done};
use ringway_ring::{
    AttachError, AttachOptions, Policy, PopError, PushError, RingConfig, RingMemory, Wait,
    broadcast,
};

const SLOT: u32 = 16;

fn memory(slots: u64, readers: u32, policy: Policy, history: u32) -> RingMemory {
    RingMemory::heap(
        &RingConfig::broadcast(slots, SLOT)
            .max_readers(readers)
            .policy(policy)
            .history(history),
    )
    .unwrap()
}

fn opts() -> AttachOptions {
    AttachOptions::new()
        .liveness_probe(probe)
        .liveness_interval(Duration::from_millis(5))
}

fn msg(i: u64) -> [u8; 8] {
    i.to_le_bytes()
}

fn pop(rx: &mut broadcast::Reader) -> Result<u64, PopError> {
    let mut out = Vec::new();
    rx.pop(&mut out)?;
    Ok(u64::from_le_bytes(out.try_into().unwrap()))
}

/// Offset of slot `i` of a ring with `readers` readers.
fn slot(readers: u32, i: u64) -> usize {
    (broadcast_data_offset(1 + readers) + i * 32) as usize
}

#[test]
fn every_reader_reads_every_message_in_order() {
    for policy in [Policy::Block, Policy::Overwrite] {
        let m = memory(64, 4, policy, 0);
        let readers: Vec<_> = (0..4)
            .map(|_| broadcast::Reader::attach(&m, &opts()).unwrap())
            .collect();
        let mut tx = broadcast::Writer::attach(&m, &opts()).unwrap();
        let n = 20_000u64;
        let handles: Vec<_> = readers
            .into_iter()
            .map(|mut rx| {
                std::thread::spawn(move || {
                    let mut out = Vec::new();
                    let (mut next, mut lagged) = (0u64, 0u64);
                    loop {
                        match rx.pop_timeout(&mut out, Duration::from_secs(30)) {
                            Ok(_) => {
                                let got = u64::from_le_bytes(out[..8].try_into().unwrap());
                                assert_eq!(got, next, "in order, none twice");
                                next += 1;
                            }
                            Err(PopError::Lagged(k)) => {
                                lagged += k;
                                next += k;
                            }
                            Err(PopError::Closed) => return (next, lagged),
                            Err(e) => panic!("reader: {e}"),
                        }
                    }
                })
            })
            .collect();
        for i in 0..n {
            tx.push_timeout(&msg(i), Duration::from_secs(30)).unwrap();
        }
        drop(tx);
        for h in handles {
            let (next, lagged) = h.join().unwrap();
            assert_eq!(
                next, n,
                "{policy:?}: every position read or counted as lagged"
            );
            if policy == Policy::Block {
                assert_eq!(lagged, 0, "a block-policy reader never lags");
            }
        }
    }
}

#[test]
fn block_policy_waits_for_the_slowest_reader() {
    let m = memory(4, 2, Policy::Block, 0);
    let mut fast = broadcast::Reader::attach(&m, &opts()).unwrap();
    let mut slow = broadcast::Reader::attach(&m, &opts()).unwrap();
    let mut tx = broadcast::Writer::attach(&m, &opts()).unwrap();
    for i in 0..4 {
        tx.push(&msg(i)).unwrap();
        assert_eq!(pop(&mut fast).unwrap(), i);
    }
    assert_eq!(tx.push(&msg(4)), Err(PushError::Full));
    assert_eq!(
        tx.push_timeout(&msg(4), Duration::from_millis(20)),
        Err(PushError::Timeout)
    );
    assert_eq!(pop(&mut slow).unwrap(), 0);
    tx.push(&msg(4)).unwrap();
    assert_eq!(tx.push(&msg(5)), Err(PushError::Full));
    // A waiting writer is woken by the slow reader.
    let writer = std::thread::spawn(move || {
        tx.push_blocking(&msg(5)).unwrap();
        tx
    });
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(pop(&mut slow).unwrap(), 1);
    let _tx = writer.join().unwrap();
    for i in 2..6 {
        assert_eq!(pop(&mut slow).unwrap(), i);
    }
    for i in 4..6 {
        assert_eq!(pop(&mut fast).unwrap(), i);
    }
}

#[test]
fn block_policy_without_readers_does_not_wait() {
    let m = memory(4, 2, Policy::Block, 0);
    let mut tx = broadcast::Writer::attach(&m, &opts()).unwrap();
    for i in 0..100 {
        tx.push(&msg(i)).unwrap();
    }
    assert_eq!(tx.position(), 100);
    assert_eq!(tx.readers(), 0);
    // A reader that left does not hold it either.
    let rx = broadcast::Reader::attach(&m, &opts()).unwrap();
    drop(rx);
    for i in 100..200 {
        tx.push(&msg(i)).unwrap();
    }
}

#[test]
fn a_dead_reader_stops_holding_the_writer() {
    let m = memory(4, 2, Policy::Block, 0);
    let dead = broadcast::Reader::attach(&m, &opts().identity(dead_identity(1))).unwrap();
    let mut live = broadcast::Reader::attach(&m, &opts()).unwrap();
    let mut tx = broadcast::Writer::attach(&m, &opts()).unwrap();
    std::mem::forget(dead); // a process killed: its entry stays ACTIVE
    for i in 0..4 {
        tx.push(&msg(i)).unwrap();
        assert_eq!(pop(&mut live).unwrap(), i);
    }
    // The writer finds the reader dead on its slow path, within the liveness interval.
    tx.push_timeout(&msg(4), Duration::from_secs(10)).unwrap();
    for i in 5..50 {
        tx.push_timeout(&msg(i), Duration::from_secs(10)).unwrap();
        assert_eq!(pop(&mut live).unwrap(), i - 1);
    }
}

#[test]
fn a_lapped_reader_is_told_exactly_how_many_it_missed() {
    let m = memory(8, 2, Policy::Overwrite, 0);
    let mut rx = broadcast::Reader::attach(&m, &opts()).unwrap();
    let mut tx = broadcast::Writer::attach(&m, &opts()).unwrap();
    for i in 0..3 {
        tx.push(&msg(i)).unwrap();
    }
    assert_eq!(pop(&mut rx).unwrap(), 0);
    for i in 3..30 {
        tx.push(&msg(i)).unwrap(); // never waits
    }
    // Positions 1..22 were overwritten; 22..30 are the eight still in the ring.
    assert_eq!(pop(&mut rx), Err(PopError::Lagged(21)));
    assert_eq!(rx.lagged(), 21);
    for i in 22..30 {
        assert_eq!(
            pop(&mut rx).unwrap(),
            i,
            "continues at the oldest still there"
        );
    }
    assert_eq!(pop(&mut rx), Err(PopError::Empty));
}

#[test]
fn late_readers_start_at_the_next_message_or_with_history() {
    for policy in [Policy::Block, Policy::Overwrite] {
        for history in [0u32, 3, 7] {
            let m = memory(8, 3, policy, history);
            let mut tx = broadcast::Writer::attach(&m, &opts()).unwrap();
            for i in 0..20 {
                tx.push(&msg(i)).unwrap();
            }
            let mut rx = broadcast::Reader::attach(&m, &opts()).unwrap();
            assert_eq!(rx.position(), 20 - u64::from(history));
            for i in 20 - u64::from(history)..20 {
                assert_eq!(pop(&mut rx).unwrap(), i, "{policy:?} history {history}");
            }
            assert_eq!(pop(&mut rx), Err(PopError::Empty));
            tx.push(&msg(20)).unwrap();
            assert_eq!(pop(&mut rx).unwrap(), 20);
        }
    }
    // History never reaches before the first message.
    let m = memory(8, 1, Policy::Block, 5);
    let mut tx = broadcast::Writer::attach(&m, &opts()).unwrap();
    tx.push(&msg(0)).unwrap();
    tx.push(&msg(1)).unwrap();
    let mut rx = broadcast::Reader::attach(&m, &opts()).unwrap();
    assert_eq!((pop(&mut rx).unwrap(), pop(&mut rx).unwrap()), (0, 1));
}

#[test]
fn readers_drain_then_see_closed_and_a_new_writer_continues() {
    let m = memory(8, 2, Policy::Block, 0);
    let mut rx = broadcast::Reader::attach(&m, &opts()).unwrap();
    let mut tx = broadcast::Writer::attach(&m, &opts()).unwrap();
    tx.push(&msg(0)).unwrap();
    tx.push(&msg(1)).unwrap();
    assert!(matches!(
        broadcast::Writer::attach(&m, &opts()),
        Err(AttachError::Busy { .. })
    ));
    drop(tx);
    assert_eq!(pop(&mut rx).unwrap(), 0);
    assert_eq!(pop(&mut rx).unwrap(), 1);
    assert_eq!(pop(&mut rx), Err(PopError::Closed));
    let mut out = Vec::new();
    assert_eq!(rx.pop_blocking(&mut out), Err(PopError::Closed));
    let mut tx = broadcast::Writer::attach(&m, &opts()).unwrap();
    assert_eq!(
        tx.position(),
        2,
        "a new writer continues after the last message"
    );
    tx.push(&msg(2)).unwrap();
    assert_eq!(pop(&mut rx).unwrap(), 2);
}

#[test]
fn a_writer_that_died_mid_message_is_replaced_cleanly() {
    let m = memory(8, 2, Policy::Block, 0);
    let mut rx = broadcast::Reader::attach(&m, &opts()).unwrap();
    let mut tx = broadcast::Writer::attach(&m, &opts().identity(dead_identity(2))).unwrap();
    tx.push(&msg(0)).unwrap();
    std::mem::forget(tx);
    // It died while writing position 1: the stamp says busy.
    poke(&m, slot(2, 1), stamp_done(1) | STAMP_BUSY);
    assert_eq!(pop(&mut rx).unwrap(), 0);
    let mut out = Vec::new();
    assert_eq!(
        rx.pop_timeout(&mut out, Duration::from_secs(10)),
        Err(PopError::Closed),
        "the half-written message is never delivered"
    );
    let mut tx = broadcast::Writer::attach(&m, &opts()).unwrap();
    assert_eq!(tx.position(), 1);
    tx.push(&msg(1)).unwrap();
    assert_eq!(pop(&mut rx).unwrap(), 1);
}

#[test]
fn read_grants_read_in_place_and_report_an_overwrite() {
    let m = memory(4, 1, Policy::Overwrite, 0);
    let mut rx = broadcast::Reader::attach(&m, &opts()).unwrap();
    let mut tx = broadcast::Writer::attach(&m, &opts()).unwrap();
    tx.push(b"in place").unwrap();
    let grant = rx.peek().unwrap();
    assert_eq!(grant.to_vec().unwrap(), b"in place");
    grant.release().unwrap();
    tx.push(&msg(1)).unwrap();
    let grant = rx.peek_with(Wait::Try).unwrap();
    assert_eq!(grant.len(), 8);
    drop(grant); // dropping releases
    for i in 2..10 {
        tx.push(&msg(i)).unwrap();
    }
    assert_eq!(rx.peek().unwrap_err(), PopError::Lagged(4));
    // The writer laps the reader while it holds a grant.
    let grant = rx.peek().unwrap();
    let mut tx = tx;
    for i in 10..13 {
        tx.push(&msg(i)).unwrap();
    }
    assert!(grant.to_vec().is_none(), "overwritten under the grant");
    assert_eq!(grant.release(), Err(PopError::Lagged(3)));
    assert_eq!(pop(&mut rx).unwrap(), 9);
}

#[test]
fn hostile_values_are_corruption_never_a_panic() {
    let m = memory(4, 2, Policy::Block, 0);
    let mut rx = broadcast::Reader::attach(&m, &opts()).unwrap();
    let mut tx = broadcast::Writer::attach(&m, &opts()).unwrap();
    tx.push(&msg(0)).unwrap();
    // A length beyond the slot: reported, and the reader moves on.
    poke(&m, slot(2, 0) + 8, u64::from(SLOT) + 1);
    assert!(matches!(pop(&mut rx), Err(PopError::Corrupted(_))));
    tx.push(&msg(1)).unwrap();
    assert_eq!(pop(&mut rx).unwrap(), 1);
    // A stamp naming a position of another slot.
    tx.push(&msg(2)).unwrap();
    poke(&m, slot(2, 2), stamp_done(3));
    assert!(matches!(pop(&mut rx), Err(PopError::Corrupted(_))));
    // A stamp claiming a lap the tail has not reached.
    poke(&m, slot(2, 2), stamp_done(2 + 4 * 9));
    assert!(matches!(pop(&mut rx), Err(PopError::Corrupted(_))));
    // A reader cursor scribbled far ahead does not hold the writer; one scribbled behind
    // holds it only while its reader is alive.
    let entry = |i: u64| (1024 + 128 * (1 + i) + 32) as usize;
    poke(&m, entry(0), u64::MAX);
    for i in 3..20 {
        tx.push(&msg(i)).unwrap();
    }
    // A tail beyond 2^62 is refused by a new writer.
    drop(tx);
    poke(&m, 128, 1 << 62);
    assert!(matches!(
        broadcast::Writer::attach(&m, &opts()),
        Err(AttachError::BadGeometry(_))
    ));
}

#[test]
fn geometry_is_validated_on_attach() {
    let config = RingConfig::broadcast(8, 16).max_readers(2);
    assert!(RingConfig::broadcast(8, 16).history(8).geometry().is_err());
    assert!(
        RingConfig::broadcast(8, 16)
            .max_readers(0)
            .geometry()
            .is_err()
    );
    assert!(
        RingConfig::broadcast(8, 16)
            .max_readers(257)
            .geometry()
            .is_err()
    );
    assert!(
        RingConfig::mpmc(8, 16)
            .policy(Policy::Overwrite)
            .geometry()
            .is_err()
    );
    assert!(RingConfig::mpmc(8, 16).history(1).geometry().is_err());
    // flags (offset 60) and history (offset 84), each rewritten to something impossible.
    for (offset, shift, value) in [(56usize, 32, 2u64), (80, 32, 8), (56, 32, 1 << 31)] {
        let m = RingMemory::heap(&config).unwrap();
        let old = peek(&m, offset);
        poke(&m, offset, (old & 0xFFFF_FFFF) | (value << shift));
        assert!(
            matches!(
                broadcast::Reader::attach(&m, &opts()),
                Err(AttachError::BadGeometry(_))
            ),
            "offset {offset} value {value}"
        );
    }
    // A broadcast ring is not an MPMC ring, and the other way round.
    let m = RingMemory::heap(&config).unwrap();
    assert!(matches!(
        ringway_ring::mpmc::Consumer::attach(&m, &opts()),
        Err(AttachError::WrongKind { found: 3, .. })
    ));
    let info = ringway_ring::inspect(&m).unwrap();
    assert_eq!(info.geometry.kind, ringway_ring::RingKind::Broadcast);
    assert_eq!(info.geometry.data_offset, 4096);
}
