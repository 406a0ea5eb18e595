//! Loom models of the rings: every interleaving (up to a preemption bound) of small
//! configurations, with loom's atomics and a futex modelled by a mutex and condition variable.
//!
//! Run with `RUSTFLAGS="--cfg ringway_loom" cargo test -p ringway-ring --test loom --release`.
//! A lost wake-up shows up as a deadlock, which loom reports; a missing Release/Acquire shows
//! up as a stale payload, which the content assertions catch.

#![cfg(ringway_loom)]

use loom::thread;
use ringway_ring::{
    AttachOptions, Policy, PopError, ProcessId, PushError, RingConfig, RingMemory, WaitStrategy,
    broadcast, mpmc, spsc,
};

const DEAD: u32 = 0x4000_0000;

fn probe(pid: u32, _start: u64) -> bool {
    pid < DEAD
}

fn opts(pid: u32) -> AttachOptions {
    AttachOptions::new()
        .wait_strategy(WaitStrategy::Park)
        .liveness_probe(probe)
        .identity(ProcessId { pid, start_time: 1 })
}

/// Options for the models of recovery: the slow path runs on every empty or full poll.
fn polling_opts(pid: u32) -> AttachOptions {
    opts(pid).liveness_interval(std::time::Duration::from_millis(1))
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

fn msg(i: u8) -> [u8; 8] {
    [i, i ^ 0x5A, i, i, i, i, i, i.wrapping_mul(3)]
}

/// Capacity 32 holds two 8-byte messages (16-byte records): the third push waits for space
/// and lands at the start of the second lap.
#[test]
fn spsc_push_pop_across_wrap_around() {
    model(|| {
        let memory = RingMemory::heap(&RingConfig::spsc(32)).unwrap();
        let mut tx = spsc::Producer::attach(&memory, &opts(1)).unwrap();
        let mut rx = spsc::Consumer::attach(&memory, &opts(2)).unwrap();
        let producer = thread::spawn(move || {
            for i in 0..3 {
                tx.push_blocking(&msg(i)).unwrap();
            }
        });
        let mut out = Vec::new();
        for i in 0..3 {
            rx.pop_blocking(&mut out).unwrap();
            assert_eq!(out, msg(i));
        }
        producer.join().unwrap();
    });
}

/// A record that does not fit before the end is preceded by padding; the padding and the
/// record are published together.
#[test]
fn spsc_padding_is_published_with_its_record() {
    model(|| {
        let memory = RingMemory::heap(&RingConfig::spsc(32)).unwrap();
        let mut tx = spsc::Producer::attach(&memory, &opts(1)).unwrap();
        let mut rx = spsc::Consumer::attach(&memory, &opts(2)).unwrap();
        tx.push(&[1]).unwrap(); // 16 bytes at 0
        let mut out = Vec::new();
        rx.pop(&mut out).unwrap();
        tx.push(&[]).unwrap(); // 8 bytes at 16; tail 24
        let producer = thread::spawn(move || {
            tx.push_blocking(&msg(7)).unwrap(); // 16 bytes: padding 24..32, record at 32
        });
        rx.pop_blocking(&mut out).unwrap();
        assert!(out.is_empty());
        rx.pop_blocking(&mut out).unwrap();
        assert_eq!(out, msg(7));
        producer.join().unwrap();
    });
}

/// A small record that must start on a line is preceded by a short padding record to the
/// line's end (layout versions 4 and 5); the padding and the record are published together.
/// Records of 48 and 56 bytes take their line whole (`LINES`, version 5): the 16-byte ones
/// after the first start on the next line.
#[test]
fn spsc_line_padding_is_published_with_its_record() {
    model(|| {
        let memory = RingMemory::heap(&RingConfig::spsc(256)).unwrap();
        let mut tx = spsc::Producer::attach(&memory, &opts(1)).unwrap();
        let mut rx = spsc::Consumer::attach(&memory, &opts(2)).unwrap();
        tx.push(&[3; 40]).unwrap(); // 48 bytes at 0, its line whole
        let producer = thread::spawn(move || {
            tx.push(&msg(7)).unwrap(); // 16 bytes at 64
            tx.push(&msg(8)).unwrap(); // 16 at 80
            tx.push(&[9; 48]).unwrap(); // 56 must start a line: padding 96..128, then 128
        });
        let mut out = Vec::new();
        rx.pop_blocking(&mut out).unwrap();
        assert_eq!(out, [3; 40]);
        rx.pop_blocking(&mut out).unwrap();
        assert_eq!(out, msg(7));
        rx.pop_blocking(&mut out).unwrap();
        assert_eq!(out, msg(8));
        rx.pop_blocking(&mut out).unwrap();
        assert_eq!(out, [9; 48]);
        producer.join().unwrap();
    });
}

/// A consumer asleep on an empty ring is always woken by a push (no lost wake-up), and a
/// producer asleep on a full ring by a pop.
#[test]
fn spsc_wake_protocol() {
    model(|| {
        let memory = RingMemory::heap(&RingConfig::spsc(32)).unwrap();
        let mut tx = spsc::Producer::attach(&memory, &opts(1)).unwrap();
        let mut rx = spsc::Consumer::attach(&memory, &opts(2)).unwrap();
        tx.push(&msg(0)).unwrap();
        tx.push(&msg(1)).unwrap(); // full
        let producer = thread::spawn(move || {
            tx.push_blocking(&msg(2)).unwrap(); // sleeps until a pop
        });
        let mut out = Vec::new();
        for i in 0..3 {
            rx.pop_blocking(&mut out).unwrap(); // the last one may sleep until the push
            assert_eq!(out, msg(i));
        }
        producer.join().unwrap();
    });
}

/// Dropping the producer wakes a sleeping consumer, which drains, then sees Closed.
#[test]
fn spsc_close_wakes_and_drains() {
    model(|| {
        let memory = RingMemory::heap(&RingConfig::spsc(32)).unwrap();
        let mut tx = spsc::Producer::attach(&memory, &opts(1)).unwrap();
        let mut rx = spsc::Consumer::attach(&memory, &opts(2)).unwrap();
        let producer = thread::spawn(move || {
            tx.push(&msg(3)).unwrap();
            drop(tx);
        });
        let mut out = Vec::new();
        rx.pop_blocking(&mut out).unwrap();
        assert_eq!(out, msg(3));
        assert_eq!(rx.pop_blocking(&mut out), Err(PopError::Closed));
        producer.join().unwrap();
    });
}

fn mpmc_memory(slots: u64) -> RingMemory {
    RingMemory::heap(&RingConfig::mpmc(slots, 8).max_producers(2).max_consumers(2)).unwrap()
}

/// Two producers race for slots of a two-slot ring; one consumer gets both messages once.
#[test]
fn mpmc_two_producers_one_consumer() {
    model(|| {
        let memory = mpmc_memory(2);
        let mut rx = mpmc::Consumer::attach(&memory, &opts(3)).unwrap();
        let handles: Vec<_> = (0..2u8)
            .map(|p| {
                let mut tx = mpmc::Producer::attach(&memory, &opts(1 + u32::from(p))).unwrap();
                thread::spawn(move || tx.push_blocking(&msg(p)).unwrap())
            })
            .collect();
        let mut out = Vec::new();
        let mut got = Vec::new();
        for _ in 0..2 {
            rx.pop_blocking(&mut out).unwrap();
            got.push(out[0]);
        }
        got.sort_unstable();
        assert_eq!(got, [0, 1]);
        for h in handles {
            h.join().unwrap();
        }
    });
}

/// One producer, two consumers racing: each message is delivered to exactly one of them.
#[test]
fn mpmc_one_producer_two_consumers() {
    model(|| {
        let memory = mpmc_memory(2);
        let mut tx = mpmc::Producer::attach(&memory, &opts(1)).unwrap();
        let handles: Vec<_> = (0..2u32)
            .map(|c| {
                let mut rx = mpmc::Consumer::attach(&memory, &opts(2 + c)).unwrap();
                thread::spawn(move || {
                    let mut out = Vec::new();
                    rx.pop_blocking(&mut out).unwrap();
                    assert_eq!(out[1], out[0] ^ 0x5A, "payload published with its slot");
                    out[0]
                })
            })
            .collect();
        tx.push_blocking(&msg(10)).unwrap();
        tx.push_blocking(&msg(11)).unwrap();
        let mut got: Vec<u8> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, [10, 11]);
    });
}

/// A producer that dies between its claim and its publication while another producer lives:
/// a consumer that only polls (`pop`, never a blocking call) finds the slot stuck, finds the
/// claimant dead on its slow path (due on every call under loom), skips the slot, and
/// receives the live producer's message; no interleaving loses or duplicates a message.
#[test]
fn mpmc_a_polling_consumer_recovers_a_dead_claim() {
    model(|| {
        let memory = mpmc_memory(2);
        let mut victim = mpmc::Producer::attach(&memory, &opts(DEAD)).unwrap();
        let mut rx = mpmc::Consumer::attach(&memory, &polling_opts(3)).unwrap();
        let mut tx = mpmc::Producer::attach(&memory, &opts(1)).unwrap();
        let dying = thread::spawn(move || {
            // Claims a slot and dies before publishing it.
            std::mem::forget(victim.reserve(8).unwrap());
            std::mem::forget(victim);
        });
        let live = thread::spawn(move || {
            tx.push(&msg(5)).unwrap();
            tx
        });
        let mut out = Vec::new();
        let got = loop {
            match rx.pop(&mut out) {
                Ok(_) => break out[0],
                Err(PopError::Empty) => thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(got, 5);
        dying.join().unwrap();
        let tx = live.join().unwrap();
        // If the live producer claimed first, the dead claim is behind its message, and the
        // next poll skips it.
        assert_eq!(rx.pop(&mut out), Err(PopError::Empty));
        assert_eq!(rx.lost(), 1);
        drop(tx);
    });
}

/// Two producers attach at once to a ring whose only producer entry belongs to a process
/// that died holding a claim. Exactly one wins the entry; the winner resolves the dead claim
/// (after taking the entry, so the loser's stale view of the entry can never act on the
/// winner's own claim) and its message is delivered; the dead slot is counted lost once.
#[test]
fn mpmc_resolution_racing_an_attach() {
    model(|| {
        let memory =
            RingMemory::heap(&RingConfig::mpmc(2, 8).max_producers(1).max_consumers(1)).unwrap();
        let mut rx = mpmc::Consumer::attach(&memory, &opts(3)).unwrap();
        let mut victim = mpmc::Producer::attach(&memory, &opts(DEAD)).unwrap();
        std::mem::forget(victim.reserve(8).unwrap());
        std::mem::forget(victim);
        let handles: Vec<_> = (0..2u8)
            .map(|p| {
                let memory = memory.clone();
                thread::spawn(move || {
                    match mpmc::Producer::attach(&memory, &opts(1 + u32::from(p))) {
                        Ok(mut tx) => {
                            tx.push(&msg(p)).unwrap();
                            // Stays attached until both attempts are over.
                            Some((p, tx))
                        }
                        Err(ringway_ring::AttachError::TableFull { .. }) => None,
                        Err(e) => panic!("{e}"),
                    }
                })
            })
            .collect();
        let mut winners: Vec<_> = handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect();
        assert_eq!(winners.len(), 1, "exactly one producer takes the entry");
        let (winner, tx) = winners.pop().unwrap();
        let winners = [winner];
        let mut out = Vec::new();
        rx.pop(&mut out).unwrap();
        assert_eq!(out, msg(winners[0]));
        assert_eq!(rx.lost(), 1);
        drop(tx);
        assert_eq!(rx.pop(&mut out), Err(PopError::Closed));
    });
}

/// Closing the only consumer while a producer is blocked on a full ring wakes it with Closed.
#[test]
fn mpmc_close_wakes_a_blocked_producer() {
    model(|| {
        let memory = mpmc_memory(2);
        let mut tx = mpmc::Producer::attach(&memory, &opts(1)).unwrap();
        let rx = mpmc::Consumer::attach(&memory, &opts(2)).unwrap();
        tx.push(&msg(0)).unwrap();
        tx.push(&msg(1)).unwrap();
        let closer = thread::spawn(move || drop(rx));
        assert_eq!(tx.push_blocking(&msg(2)), Err(PushError::Closed));
        closer.join().unwrap();
    });
}

fn broadcast_memory(policy: Policy, readers: u32) -> RingMemory {
    RingMemory::heap(
        &RingConfig::broadcast(2, 16)
            .max_readers(readers)
            .policy(policy),
    )
    .unwrap()
}

/// A 16-byte message whose two words must agree: a torn copy (one word of one lap, one of
/// another) shows.
fn wide(i: u8) -> [u8; 16] {
    let mut m = [i; 16];
    m[15] = i ^ 0xA5;
    m
}

/// The seqlock: the writer laps a reader of a two-slot overwrite ring (position 2 overwrites
/// slot 0) while the reader copies. The reader never gets a torn or stale message: each read
/// is message `next` whole, or `Lagged(n)` accounting for exactly the positions skipped.
#[test]
fn broadcast_overwrite_never_delivers_a_torn_message() {
    model(|| {
        let memory = broadcast_memory(Policy::Overwrite, 1);
        let mut rx = broadcast::Reader::attach(&memory, &opts(2)).unwrap();
        let mut tx = broadcast::Writer::attach(&memory, &opts(1)).unwrap();
        tx.push(&wide(0)).unwrap();
        let writer = thread::spawn(move || {
            tx.push(&wide(1)).unwrap();
            tx.push(&wide(2)).unwrap(); // overwrites slot 0, never waits
        });
        let mut out = Vec::new();
        let mut next = 0u8;
        while next < 3 {
            match rx.pop_blocking(&mut out) {
                Ok(_) => {
                    assert_eq!(out, wide(next), "a whole message, in order");
                    next += 1;
                }
                Err(PopError::Lagged(n)) => {
                    assert!(n >= 1 && next as u64 + n <= 2, "lagged {n} at {next}");
                    next += n as u8;
                }
                Err(e) => panic!("{e}"),
            }
        }
        writer.join().unwrap();
    });
}

/// The block policy's gate: a writer blocked by the slowest reader of a two-slot ring is
/// woken when the reader moves on (no lost wake-up), and never overwrites an unread message.
#[test]
fn broadcast_block_writer_waits_for_the_reader() {
    model(|| {
        let memory = broadcast_memory(Policy::Block, 1);
        let mut rx = broadcast::Reader::attach(&memory, &opts(2)).unwrap();
        let mut tx = broadcast::Writer::attach(&memory, &opts(1)).unwrap();
        tx.push(&wide(0)).unwrap();
        tx.push(&wide(1)).unwrap(); // full for this reader
        let writer = thread::spawn(move || {
            tx.push_blocking(&wide(2)).unwrap();
        });
        let mut out = Vec::new();
        for i in 0..3 {
            rx.pop_blocking(&mut out).unwrap(); // never Lagged under block
            assert_eq!(out, wide(i));
        }
        writer.join().unwrap();
    });
}

/// A reader joining a block-policy ring while the writer publishes (the Dekker meeting of
/// `join::confirm` and the writer's scan): whatever start it gets, it is never lapped.
#[test]
fn broadcast_block_join_races_the_writer() {
    model(|| {
        let memory = broadcast_memory(Policy::Block, 1);
        let mut tx = broadcast::Writer::attach(&memory, &opts(1)).unwrap();
        tx.push(&wide(0)).unwrap();
        tx.push(&wide(1)).unwrap();
        let joiner = {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut rx = broadcast::Reader::attach(&memory, &opts(2)).unwrap();
                let start = rx.position();
                let mut out = Vec::new();
                // Every message from its start is there, whole, none overwritten.
                for i in start..3 {
                    rx.pop_blocking(&mut out).unwrap();
                    assert_eq!(out, wide(i as u8));
                }
            })
        };
        // With no reader yet it does not wait; once the joiner is counted it waits for it.
        tx.push_blocking(&wide(2)).unwrap();
        joiner.join().unwrap();
        drop(tx);
    });
}

/// The lost-wake-up argument of `select` with two arms: the selecting thread announces on
/// both rings' `waiters`, fences, re-checks both, and sleeps on both words at once; each
/// producer runs the single wait's unchanged `notify`. A wake-up lost on either arm shows as
/// a deadlock.
#[test]
fn select_two_arms_never_loses_a_wake_up() {
    use ringway_ring::select::Select;
    model(|| {
        let memories = [
            RingMemory::heap(&RingConfig::spsc(32)).unwrap(),
            RingMemory::heap(&RingConfig::spsc(32)).unwrap(),
        ];
        let mut rxs = Vec::new();
        let mut txs = Vec::new();
        for (i, memory) in memories.iter().enumerate() {
            txs.push(spsc::Producer::attach(memory, &opts(1 + i as u32)).unwrap());
            rxs.push(spsc::Consumer::attach(memory, &opts(3 + i as u32)).unwrap());
        }
        // The watches exist before the producers run (the model's futex_waitv relies on it).
        let mut sel = Select::new();
        for rx in &rxs {
            sel.add(rx.watch());
        }
        let producers: Vec<_> = txs
            .into_iter()
            .enumerate()
            .map(|(i, mut tx)| {
                thread::spawn(move || {
                    tx.push(&msg(i as u8)).unwrap();
                    tx // kept alive: the arms must fire for the message, not a close
                })
            })
            .collect();
        let mut out = Vec::new();
        let mut seen = [false; 2];
        for _ in 0..2 {
            let got = sel.select().unwrap();
            assert!(!got.is_closed());
            let i = got.index();
            rxs[i].pop(&mut out).unwrap();
            assert_eq!(out, msg(i as u8));
            seen[i] = true;
        }
        assert_eq!(seen, [true, true]);
        for p in producers {
            drop(p.join().unwrap());
        }
    });
}

/// The lost-wake-up argument of the async path (`select::Parking` with a reactor thread): the
/// task finds the ring empty, announces, fences, re-checks and hands its waker to the
/// reactor (whose control word it bumps), then returns `Pending`; the reactor thread loads the
/// control word and the ring's `seq`, looks, and sleeps on both; the producer runs the
/// unchanged `notify`. Every interleaving of the push with the park and with the reactor's
/// round must wake the task: a lost wake-up leaves `block_on` waiting for ever, which loom
/// reports as a deadlock. The reactor thread may be asleep on its control word alone when the
/// registration arrives, so the control word's wake is checked too.
#[test]
fn async_park_never_loses_a_wake_up() {
    use ringway_ring::select::{Parking, Reactor};
    use std::task::Poll;
    model(|| {
        let memory = RingMemory::heap(&RingConfig::spsc(64)).unwrap();
        let mut tx = spsc::Producer::attach(&memory, &opts(1)).unwrap();
        let mut rx = spsc::Consumer::attach(&memory, &opts(2)).unwrap();
        let reactor = Reactor::manual();
        let serving = {
            let reactor = reactor.clone();
            thread::spawn(move || reactor.serve())
        };
        let producer = thread::spawn(move || {
            tx.push(&msg(1)).unwrap();
            tx // kept alive: the task must be woken by the push, not by a close
        });
        let watch = rx.watch();
        let mut parking = Parking::with_reactor(reactor.clone());
        let mut out = Vec::new();
        {
            let recv = std::future::poll_fn(|cx| {
                loop {
                    match rx.pop(&mut out) {
                        Err(PopError::Empty) => {}
                        other => return Poll::Ready(other),
                    }
                    if parking.poll_park(&watch, cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            });
            loom::future::block_on(recv).unwrap();
            assert_eq!(out, msg(1));
        }
        drop(parking);
        let tx = producer.join().unwrap();
        reactor.stop();
        serving.join().unwrap();
        drop(tx);
    });
}
