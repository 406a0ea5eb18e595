//! Reconnecting an SPSC ring: either side can attach again after its peer left or died, any
//! number of times, and no committed message is lost or delivered twice (except the one a
//! dead consumer was holding in place, which is delivered again). Deaths are modelled by
//! forgetting an endpoint registered under a fake pid that the probe reports dead.

#![cfg(not(ringway_loom))]

mod common;

use std::time::Duration;

use common::{Rng, dead_identity, message, probe};
use ringway_ring::{AttachOptions, PeerState, PopError, RingConfig, RingMemory, spsc};

fn opts() -> AttachOptions {
    AttachOptions::new()
        .liveness_probe(probe)
        .liveness_interval(Duration::from_millis(2))
}

fn seq_of(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(b)
}

fn len_of(seq: u64) -> usize {
    8 + (seq as usize * 3) % 40
}

/// A producer that left is replaced; the new one continues after the last committed record,
/// whether the consumer has read up to it or not.
#[test]
fn a_new_producer_continues_after_the_last_committed_record() {
    let m = RingMemory::heap(&RingConfig::spsc(256)).unwrap();
    let mut rx = spsc::Consumer::attach(&m, &opts()).unwrap();
    let mut out = Vec::new();
    let mut received = Vec::new();
    let mut tx = spsc::Producer::attach(&m, &opts()).unwrap();
    for seq in 0..5u64 {
        tx.push(&message(seq, len_of(seq))).unwrap();
    }
    rx.pop(&mut out).unwrap();
    received.push(out.clone());
    drop(tx);
    let mut tx = spsc::Producer::attach(&m, &opts()).unwrap();
    for seq in 5..40u64 {
        while tx.push(&message(seq, len_of(seq))).is_err() {
            rx.pop(&mut out).unwrap();
            received.push(out.clone());
        }
    }
    drop(tx);
    loop {
        match rx.pop(&mut out) {
            Ok(_) => received.push(out.clone()),
            Err(PopError::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let expected: Vec<Vec<u8>> = (0..40).map(|seq| message(seq, len_of(seq))).collect();
    assert_eq!(received, expected);
}

/// A producer that died with a batch it never flushed: the batch was not committed and is
/// overwritten; the records committed before it are delivered once.
#[test]
fn a_dead_producers_unflushed_batch_is_not_delivered() {
    let m = RingMemory::heap(&RingConfig::spsc(1024)).unwrap();
    let mut rx = spsc::Consumer::attach(&m, &opts()).unwrap();
    let mut tx = spsc::Producer::attach(&m, &opts().identity(dead_identity(1))).unwrap();
    tx.push(b"committed 1").unwrap();
    tx.push(b"committed 2").unwrap();
    tx.push_deferred(b"never flushed a").unwrap();
    tx.push_deferred(b"never flushed b").unwrap();
    std::mem::forget(tx);
    let mut tx = spsc::Producer::attach(&m, &opts()).unwrap();
    tx.push(b"from the second").unwrap();
    let mut out = Vec::new();
    for want in [&b"committed 1"[..], b"committed 2", b"from the second"] {
        rx.pop_timeout(&mut out, Duration::from_secs(5)).unwrap();
        assert_eq!(out, want);
    }
    assert_eq!(rx.pop(&mut out), Err(PopError::Empty));
}

/// A consumer that died: a new one gets every message the old one had not received, and the
/// one the old one was holding in place (`peek` without release) again — at least once for
/// that message, exactly once for the others.
#[test]
fn a_new_consumer_gets_what_the_old_one_had_not_received() {
    let m = RingMemory::heap(&RingConfig::spsc(1024)).unwrap();
    let mut tx = spsc::Producer::attach(&m, &opts()).unwrap();
    for seq in 0..10u64 {
        tx.push(&message(seq, 16)).unwrap();
    }
    let mut rx = spsc::Consumer::attach(&m, &opts().identity(dead_identity(2))).unwrap();
    let mut out = Vec::new();
    for seq in 0..3u64 {
        rx.pop(&mut out).unwrap();
        assert_eq!(out, message(seq, 16));
    }
    let held = rx.peek().unwrap();
    assert_eq!(held.to_vec(), message(3, 16));
    let _ = held; // not released: the record stays the next to read
    std::mem::forget(rx);
    let mut rx = spsc::Consumer::attach(&m, &opts()).unwrap();
    for seq in 3..10u64 {
        rx.pop(&mut out).unwrap();
        assert_eq!(out, message(seq, 16), "after a consumer died");
    }
    assert_eq!(rx.pop(&mut out), Err(PopError::Empty));
}

/// `peer_state` tells "not yet", "attached", "left" and "died", and counts attachments.
#[test]
fn peer_state_tells_not_yet_attached_left_and_died() {
    let m = RingMemory::heap(&RingConfig::spsc(1024)).unwrap();
    let rx = spsc::Consumer::attach(&m, &opts()).unwrap();
    assert_eq!(rx.peer_state(), PeerState::Waiting);
    let tx = spsc::Producer::attach(&m, &opts()).unwrap();
    assert_eq!(rx.peer_state(), PeerState::Connected);
    assert_eq!(rx.peer_attachments(), 1);
    drop(tx);
    assert_eq!(rx.peer_state(), PeerState::Left);
    let tx = spsc::Producer::attach(&m, &opts().identity(dead_identity(3))).unwrap();
    std::mem::forget(tx);
    assert_eq!(rx.peer_state(), PeerState::Died);
    assert_eq!(rx.peer_attachments(), 2);
    let _tx = spsc::Producer::attach(&m, &opts()).unwrap();
    assert_eq!(rx.peer_state(), PeerState::Connected);
    assert_eq!(rx.peer_attachments(), 3);
}

/// 1,000 producer lifetimes and 1,000 consumer lifetimes on one ring, each ending by a clean
/// drop or a modelled death at a random point, every message checked: in order, no gaps, no
/// duplicates except the documented held-in-place one.
#[test]
fn a_thousand_lifetimes_of_each_side_lose_and_duplicate_nothing() {
    let lifetimes = if cfg!(miri) { 20 } else { 1000 };
    let m = RingMemory::heap(&RingConfig::spsc(512)).unwrap();
    let mut rng = Rng(0x5EED);
    let mut next_send = 0u64;
    let mut next_recv = 0u64;
    let mut tx: Option<spsc::Producer> = None;
    let mut rx: Option<spsc::Consumer> = None;
    let mut out = Vec::new();
    let mut dead = 0u32;
    let (mut producers, mut consumers) = (0, 0);
    while producers < lifetimes || consumers < lifetimes || next_recv < next_send {
        // Every endpoint is registered under a fake pid the probe reports dead, so one that
        // is forgotten ("killed") can be replaced; a live peer seeing it "dead" only means
        // `Closed` at times, which the loop tolerates.
        if tx.is_none() && producers < lifetimes {
            producers += 1;
            let o = opts().identity(dead_identity(10 + producers));
            tx = Some(spsc::Producer::attach(&m, &o).unwrap());
        }
        if rx.is_none() {
            consumers += 1;
            let o = opts().identity(dead_identity(5000 + consumers));
            rx = Some(spsc::Consumer::attach(&m, &o).unwrap());
        }
        if producers >= lifetimes && consumers >= lifetimes {
            tx = None; // the last producer leaves; the consumer drains
        }
        if let Some(t) = tx.as_mut() {
            for _ in 0..rng.below(8) {
                let msg = message(next_send, 8 + rng.below(40) as usize);
                if t.push(&msg).is_ok() {
                    next_send += 1;
                }
            }
        }
        let r = rx.as_mut().unwrap();
        for _ in 0..rng.below(8) {
            match r.pop(&mut out) {
                Ok(_) => {
                    assert_eq!(seq_of(&out), next_recv, "lost or duplicated");
                    assert_eq!(out, message(next_recv, out.len()));
                    next_recv += 1;
                }
                Err(PopError::Empty | PopError::Closed) => break,
                Err(e) => panic!("{e}"),
            }
        }
        if tx.is_some() && producers < lifetimes && rng.below(2) == 0 {
            let t = tx.take().unwrap();
            if rng.below(3) == 0 {
                std::mem::forget(t); // "killed": never closed
            } else {
                drop(t);
            }
        }
        if consumers < lifetimes && rng.below(2) == 0 {
            let mut r = rx.take().unwrap();
            if rng.below(3) == 0 {
                // Killed while holding the next message in place: delivered again.
                if let Ok(g) = r.peek() {
                    let _ = g; // read in place, never released
                }
                std::mem::forget(r);
                dead += 1;
            } else {
                drop(r);
            }
        }
    }
    assert_eq!(next_recv, next_send);
    assert!(dead > 0 && next_send > 1000.min(lifetimes as u64));
}
