//! `Select` across processes: 64 receivers in one select, fed by four other processes (with
//! `futex_waitv` and with the fallback sleep); senders waiting for room that another process
//! frees; a peer killed with SIGKILL on one arm, reported closed on that arm only.
//!
//! The peers are forked children (anonymous channels shared across `fork`).

use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use ringway_channel::{
    ByteChannel, Channel, ChannelOptions, Flavour, RecvError, Select, SelectError,
};
use ringway_testkit::{ForkedChild, fork_child};

/// How long anything another process does may take on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(60);
const RECEIVERS: usize = 64;
const FEEDERS: usize = 4;
const ROUNDS: u64 = 100;

fn opts() -> ChannelOptions {
    // Small rings, so the feeders also block on full rings and the wakes go both ways.
    ChannelOptions::new()
        .capacity(8)
        .liveness_interval(Duration::from_millis(10))
}

/// 64 channels, four feeder processes with 16 each; one select receives everything, checks
/// every channel's order, and sees every arm close when its feeder exits.
fn sixty_four_receivers(fallback: bool) -> Result<(), Failed> {
    let channels: Vec<Channel<u64>> = (0..RECEIVERS)
        .map(|_| Channel::anonymous(&opts()))
        .collect::<Result<_, _>>()?;
    let per = RECEIVERS / FEEDERS;
    let mut feeders: Vec<ForkedChild> = Vec::new();
    for k in 0..FEEDERS {
        let mine = &channels[k * per..(k + 1) * per];
        feeders.push(fork_child(|| {
            let Ok(mut txs) = mine
                .iter()
                .map(|c| c.sender())
                .collect::<Result<Vec<_>, _>>()
            else {
                return 2;
            };
            for round in 0..ROUNDS {
                // A different channel order each round.
                for j in 0..per {
                    let j = (j * 7 + round as usize) % per;
                    let index = (k * per + j) as u64;
                    if txs[j].send(index << 32 | round).is_err() {
                        return 3;
                    }
                }
            }
            0 // dropping the senders closes the arms
        }));
    }
    let mut rxs = channels
        .iter()
        .map(|c| c.receiver())
        .collect::<Result<Vec<_>, _>>()?;
    let mut sel = Select::new();
    sel.force_fallback(fallback);
    for rx in &rxs {
        sel.recv(rx);
    }
    let mut next = [0u64; RECEIVERS];
    let mut open = RECEIVERS;
    let mut received = 0;
    while open > 0 {
        let ready = sel.select_timeout(PATIENCE)?;
        let i = ready.index();
        match rxs[i].try_recv() {
            Ok(value) => {
                if value != (i as u64) << 32 | next[i] {
                    return Err(
                        format!("channel {i}: got {value:#x}, want round {}", next[i]).into(),
                    );
                }
                next[i] += 1;
                received += 1;
            }
            Err(RecvError::Disconnected) => {
                if !ready.is_closed() {
                    return Err(format!("arm {i} disconnected but was not reported closed").into());
                }
                sel.remove(i);
                open -= 1;
            }
            Err(RecvError::Empty) if !ready.is_closed() => {
                // An SPSC receiver is the only one: a ready arm must have had its message.
                return Err(format!("arm {i} was ready but its receiver found nothing").into());
            }
            Err(e) => return Err(format!("arm {i} ({ready:?}): {e}").into()),
        }
    }
    if received != RECEIVERS as u64 * ROUNDS || next.iter().any(|&n| n != ROUNDS) {
        return Err(format!("received {received}, per channel {next:?}").into());
    }
    for mut child in feeders {
        let exit = child.wait_timeout(PATIENCE)?;
        if !matches!(exit, ringway_testkit::ChildExit::Exited(0)) {
            return Err(format!("a feeder ended with {exit:?}").into());
        }
    }
    Ok(())
}

/// Senders whose rings are full (a typed SPSC one and a byte MPMC one) wait in one select;
/// another process frees room in each, and each arm fires.
fn senders_wait_for_room_another_process_frees() -> Result<(), Failed> {
    let typed = Channel::<u64>::anonymous(&opts().capacity(4))?;
    let bytes = ByteChannel::anonymous(&opts().capacity(4).flavour(Flavour::Mpmc).max_message(32))?;
    let mut tx = typed.sender()?;
    let mut btx = bytes.sender()?;
    while tx.try_send(1).is_ok() {}
    while btx.try_send(b"full").is_ok() {}
    let mut sel = Select::new();
    let t = sel.send(&tx);
    let b = sel.send(&btx);
    let s = sel.send_bytes(&btx, 4);
    assert_eq!(sel.try_select(), Err(SelectError::Empty));
    let (typed_ref, bytes_ref) = (&typed, &bytes);
    let child = fork_child(move || {
        let (Ok(mut rx), Ok(mut brx)) = (typed_ref.receiver(), bytes_ref.receiver()) else {
            return 2;
        };
        std::thread::sleep(Duration::from_millis(30));
        if rx.recv().is_err() {
            return 3;
        }
        std::thread::sleep(Duration::from_millis(30));
        let mut buf = Vec::new();
        if brx.recv(&mut buf).is_err() {
            return 4;
        }
        // Stay attached until the parent is done (its sends must not see a disconnect).
        std::thread::sleep(PATIENCE);
        0
    });
    let first = sel.select_timeout(PATIENCE)?;
    if first.index() != t || first.is_closed() {
        return Err(format!("first {first:?}, want the typed sender {t}").into());
    }
    tx.try_send(2).map_err(|e| e.to_string())?;
    sel.remove(t);
    let second = sel.select_timeout(PATIENCE)?;
    if ![b, s].contains(&second.index()) || second.is_closed() {
        return Err(format!("second {second:?}, want a byte sender arm").into());
    }
    btx.try_send(b"room").map_err(|e| e.to_string())?;
    drop(child); // kills and reaps it
    Ok(())
}

/// Three channels, each fed by its own process; the one feeding arm 1 is killed with SIGKILL.
/// That arm, and only that one, reports closed, within the liveness interval plus
/// scheduling, and its receiver then reports Disconnected at once.
fn a_peer_killed_on_one_arm_is_reported_closed() -> Result<(), Failed> {
    let channels: Vec<Channel<u64>> = (0..3)
        .map(|_| Channel::anonymous(&opts()))
        .collect::<Result<_, _>>()?;
    let children: Vec<ForkedChild> = channels
        .iter()
        .map(|ch| {
            fork_child(move || {
                let Ok(mut tx) = ch.sender() else { return 2 };
                if tx.send(1).is_err() {
                    return 3;
                }
                std::thread::sleep(PATIENCE); // alive, silent, until killed
                0
            })
        })
        .collect();
    let mut rxs = channels
        .iter()
        .map(|c| c.receiver())
        .collect::<Result<Vec<_>, _>>()?;
    let mut sel = Select::new();
    for rx in &rxs {
        sel.recv(rx);
    }
    let mut got = 0;
    while got < 3 {
        let ready = sel.select_timeout(PATIENCE)?;
        rxs[ready.index()].try_recv()?;
        got += 1;
    }
    assert_eq!(
        sel.select_timeout(Duration::from_millis(50)),
        Err(SelectError::Timeout),
        "the live, silent peers make no arm ready"
    );
    // SAFETY: kill(2) on the pid of our own forked child, which has not been reaped (its
    // ForkedChild lives below), so the pid cannot have been reused.
    unsafe { libc::kill(children[1].pid(), libc::SIGKILL) };
    let killed = Instant::now();
    let ready = sel.select_timeout(PATIENCE)?;
    let took = killed.elapsed();
    if ready.index() != 1 || !ready.is_closed() {
        return Err(format!("after the kill: {ready:?}, want arm 1 closed").into());
    }
    println!("    death seen by the select after {took:?}");
    assert_eq!(rxs[1].try_recv(), Err(RecvError::Disconnected));
    sel.remove(1);
    assert_eq!(
        sel.select_timeout(Duration::from_millis(50)),
        Err(SelectError::Timeout),
        "the other arms stay open"
    );
    drop(children); // kills and reaps the others
    Ok(())
}

/// Broadcast subscribers are arms too: two subscribers of a publisher in another process and
/// an idle receiver in one select; each subscriber receives every message in order, then its
/// arm reports closed once the publisher has exited and it has read everything.
fn subscribers_are_arms() -> Result<(), Failed> {
    const COUNT: u64 = 200;
    let bopts = opts().capacity(16).policy(ringway_channel::Policy::Block);
    let feed = ringway_channel::BroadcastChannel::<u64>::anonymous(&bopts)?;
    let idle = Channel::<u64>::anonymous(&opts())?;
    let mut subs = [feed.subscriber()?, feed.subscriber()?];
    let _idle_tx = idle.sender()?;
    let idle_rx = idle.receiver()?;
    let feed_ref = &feed;
    let child = fork_child(move || {
        let Ok(mut tx) = feed_ref.publisher() else {
            return 2;
        };
        for i in 0..COUNT {
            if tx.send(i).is_err() {
                return 3;
            }
        }
        0
    });
    let mut sel = Select::new();
    let arms = [sel.recv(&subs[0]), sel.recv(&subs[1])];
    let idle_arm = sel.recv(&idle_rx);
    let mut next = [0u64; 2];
    let mut closed = [false; 2];
    while closed != [true, true] {
        let ready = sel.select_timeout(PATIENCE)?;
        assert_ne!(
            ready.index(),
            idle_arm,
            "nothing was sent on the idle channel"
        );
        let k = arms
            .iter()
            .position(|&a| a == ready.index())
            .expect("an arm we added");
        match subs[k].try_recv() {
            Ok(v) => {
                assert_eq!(v, next[k], "subscriber {k} in order");
                next[k] += 1;
            }
            Err(RecvError::Empty) => {} // a hint, as documented
            Err(RecvError::Disconnected) => {
                assert!(ready.is_closed() || next[k] == COUNT);
                closed[k] = true;
                sel.remove(ready.index());
            }
            Err(e) => return Err(format!("subscriber {k}: {e}").into()),
        }
    }
    assert_eq!(next, [COUNT; 2], "every message to each subscriber");
    child.expect_success(PATIENCE);
    Ok(())
}

fn main() {
    let tests = vec![
        Trial::test("subscribers_are_arms", subscribers_are_arms),
        Trial::test("select_over_64_receivers_fed_by_other_processes", || {
            sixty_four_receivers(false)
        }),
        Trial::test("select_over_64_receivers_with_the_fallback_sleep", || {
            sixty_four_receivers(true)
        }),
        Trial::test(
            "senders_wait_for_room_another_process_frees",
            senders_wait_for_room_another_process_frees,
        ),
        Trial::test(
            "a_peer_killed_on_one_arm_is_reported_closed",
            a_peer_killed_on_one_arm_is_reported_closed,
        ),
    ];
    ringway_testkit::harness::main(tests, &[]);
}
