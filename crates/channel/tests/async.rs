//! Async sends and receives with tokio's multi-threaded runtime, across processes: ping-pong
//! with an async and with a blocking peer, `tokio::select!` over a receiver, a timer and a
//! `TcpListener`, 1,000 channels each with a peer in another process, a peer killed with
//! SIGKILL while tasks wait, cancelled receives that lose nothing, an idle process with 100
//! parked receivers using no CPU, the `Stream`/`Sink` implementations, and async broadcast
//! subscribers.
//!
//! Peers are forked children (anonymous channels) or, for ping-pong, this binary run again
//! in a role that opens the channels by name (unrelated processes).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use libtest_mimic::{Failed, Trial};
use ringway_channel::{
    BroadcastChannel, ByteChannel, ByteReceiver, ByteSender, Bytes, Channel, ChannelOptions,
    Flavour, Policy, Receiver, RecvError, SendError, Sender,
};
use ringway_ring::select::Reactor;
use ringway_testkit::{ChildExit, ForkedChild, fork_child, spawn_role, unique_posix_name};

/// How long anything another process does may take on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(60);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn opts() -> ChannelOptions {
    ChannelOptions::new()
        .capacity(16)
        .liveness_interval(Duration::from_millis(20))
}

const PINGS: u64 = 2_000;

/// The pong role: opens the two channels named in the environment and answers every ping
/// with ping + 1 until the pinger leaves; async (tokio) or blocking, as `PONG_MODE` says.
fn pong() -> i32 {
    let ping = std::env::var("PING").unwrap_or_default();
    let pong = std::env::var("PONG").unwrap_or_default();
    let asynchronous = std::env::var("PONG_MODE").as_deref() == Ok("async");
    let (Ok(mut rx), Ok(mut tx)) = (
        Receiver::<u64>::open(ping.as_str(), &opts()),
        Sender::<u64>::open(pong.as_str(), &opts()),
    ) else {
        return 2;
    };
    if asynchronous {
        runtime().block_on(async move {
            loop {
                match rx.recv_async().await {
                    Ok(v) => {
                        if tx.send_async(v + 1).await.is_err() {
                            return 3;
                        }
                    }
                    Err(RecvError::Disconnected) => return 0,
                    Err(_) => return 4,
                }
            }
        })
    } else {
        loop {
            match rx.recv() {
                Ok(v) => {
                    if tx.send(v + 1).is_err() {
                        return 3;
                    }
                }
                Err(RecvError::Disconnected) => return 0,
                Err(_) => return 4,
            }
        }
    }
}

/// Ping-pong by name with an unrelated process (this binary run again), the peer async or
/// blocking: every answer is the ping plus one.
fn ping_pong(mode: &'static str) -> Result<(), Failed> {
    let (ping, pong_name) = (unique_posix_name("ping"), unique_posix_name("pong"));
    let mut tx = Sender::<u64>::create(ping.as_str(), &opts())?;
    let mut rx = Receiver::<u64>::create(pong_name.as_str(), &opts())?;
    let child = spawn_role(
        "pong",
        &[("PING", &ping), ("PONG", &pong_name), ("PONG_MODE", mode)],
    );
    runtime().block_on(async {
        for i in 0..PINGS {
            tx.send_async(i).await?;
            let answer = tokio::time::timeout(PATIENCE, rx.recv_async()).await??;
            if answer != i + 1 {
                return Err(Failed::from(format!("ping {i}: answer {answer}")));
            }
        }
        Ok(())
    })?;
    drop(tx);
    child.expect_success(PATIENCE);
    Ok(())
}

/// `tokio::select!` in a loop over a receiver, a timer and a `TcpListener`: every message
/// arrives once and in order although most receive futures are dropped unfinished, the timer
/// ticks, and the connections are accepted.
fn select_with_timer_and_listener() -> Result<(), Failed> {
    const N: u64 = 300;
    let ch = Channel::<u64>::anonymous(&opts())?;
    let feeder = fork_child(|| {
        let Ok(mut tx) = ch.sender() else { return 2 };
        for i in 0..N {
            if tx.send(i).is_err() {
                return 3;
            }
            if i % 16 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        0
    });
    let mut rx = ch.receiver()?;
    let (ticks, accepted) = runtime().block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let clients = tokio::spawn(async move {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(tokio::net::TcpStream::connect(addr).await);
            }
        });
        let mut timer = tokio::time::interval(Duration::from_millis(1));
        let (mut next, mut ticks, mut accepted) = (0u64, 0u64, 0u64);
        let deadline = Instant::now() + PATIENCE;
        while next < N || accepted < 3 {
            if Instant::now() > deadline {
                return Err(Failed::from(format!(
                    "stuck at {next} of {N}, {accepted} accepted"
                )));
            }
            tokio::select! {
                got = rx.recv_async(), if next < N => {
                    let v = got?;
                    if v != next {
                        return Err(Failed::from(format!("got {v}, want {next}")));
                    }
                    next += 1;
                }
                _ = timer.tick() => ticks += 1,
                conn = listener.accept() => {
                    conn?;
                    accepted += 1;
                }
            }
        }
        clients.await?;
        Ok::<_, Failed>((ticks, accepted))
    })?;
    if ticks == 0 || accepted != 3 {
        return Err(format!("{ticks} ticks, {accepted} connections").into());
    }
    expect_exit_0(feeder)?;
    // After the feeder's exit the channel drains to Disconnected.
    match rx.try_recv() {
        Err(RecvError::Disconnected) => Ok(()),
        other => Err(format!("after the last message: {other:?}").into()),
    }
}

fn expect_exit_0(mut child: ForkedChild) -> Result<(), Failed> {
    match child.wait_timeout(PATIENCE)? {
        ChildExit::Exited(0) => Ok(()),
        other => Err(format!("a peer ended with {other:?}").into()),
    }
}

/// 1,000 async receivers in one process (more than one waker thread's worth), each channel
/// fed by a peer in another process in rounds, with pauses that let the tasks park.
fn thousand_channels() -> Result<(), Failed> {
    const CHANNELS: usize = 1_000;
    const ROUNDS: u64 = 4;
    let channels: Vec<Channel<u64>> = (0..CHANNELS)
        // The default wait strategy: re-queue, then park (the pauses let every task park).
        .map(|_| Channel::anonymous(&opts().capacity(4)))
        .collect::<Result<_, _>>()?;
    let feeder = fork_child(|| {
        let Ok(mut txs) = channels
            .iter()
            .map(|c| c.sender())
            .collect::<Result<Vec<_>, _>>()
        else {
            return 2;
        };
        for round in 0..ROUNDS {
            std::thread::sleep(Duration::from_millis(250));
            for (i, tx) in txs.iter_mut().enumerate() {
                if tx.send((i as u64) << 32 | round).is_err() {
                    return 3;
                }
            }
        }
        0
    });
    let rxs = channels
        .iter()
        .map(|c| c.receiver())
        .collect::<Result<Vec<_>, _>>()?;
    runtime().block_on(async {
        let tasks: Vec<_> = rxs
            .into_iter()
            .enumerate()
            .map(|(i, mut rx)| {
                tokio::spawn(async move {
                    for round in 0..ROUNDS {
                        let v = tokio::time::timeout(PATIENCE, rx.recv_async())
                            .await
                            .map_err(|_| format!("channel {i}: no round {round}"))?
                            .map_err(|e| format!("channel {i}: {e}"))?;
                        if v != (i as u64) << 32 | round {
                            return Err(format!("channel {i}: got {v:#x} in round {round}"));
                        }
                    }
                    match rx.recv_async().await {
                        Err(RecvError::Disconnected) => Ok(()),
                        other => Err(format!("channel {i} at the end: {other:?}")),
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await?.map_err(Failed::from)?;
        }
        Ok::<_, Failed>(())
    })?;
    expect_exit_0(feeder)?;
    // A shard holds SHARD_ENTRIES parked operations: a second waker thread means more than
    // that many tasks were parked at once (the pauses let all of them park).
    if Reactor::global().threads() < 2 {
        return Err(format!("{} waker threads", Reactor::global().threads()).into());
    }
    Ok(())
}

/// A peer that dies by SIGKILL while tasks wait on its channels: every task gets
/// `Disconnected`, sends as well as receives.
fn peer_killed_while_tasks_wait() -> Result<(), Failed> {
    const N: usize = 8;
    let down: Vec<Channel<u64>> = (0..N)
        .map(|_| Channel::anonymous(&opts()))
        .collect::<Result<_, _>>()?;
    let up = Channel::<u64>::anonymous(&opts().capacity(2))?;
    let mut child = fork_child(|| {
        let Ok(_txs) = down
            .iter()
            .map(|c| c.sender())
            .collect::<Result<Vec<_>, _>>()
        else {
            return 2;
        };
        let Ok(_rx) = up.receiver() else { return 2 };
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let rxs = down
        .iter()
        .map(|c| c.receiver())
        .collect::<Result<Vec<_>, _>>()?;
    let mut tx = up.sender()?;
    while tx.try_send(0).is_ok() {}
    let pid = child.pid();
    runtime().block_on(async {
        let mut tasks: Vec<_> = rxs
            .into_iter()
            .map(|mut rx| tokio::spawn(async move { rx.recv_async().await.map(|_| ()) }))
            .collect();
        tasks.push(tokio::spawn(async move {
            tx.send_async(1).await.map_err(|_| RecvError::Disconnected)
        }));
        tokio::time::sleep(Duration::from_millis(200)).await;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL)?;
        for t in tasks {
            match tokio::time::timeout(Duration::from_secs(10), t).await {
                Ok(Ok(Err(RecvError::Disconnected))) => {}
                other => return Err(Failed::from(format!("a waiting task ended with {other:?}"))),
            }
        }
        Ok(())
    })?;
    match child.wait_timeout(PATIENCE)? {
        ChildExit::Signaled(9) => Ok(()),
        other => Err(format!("the peer ended with {other:?}").into()),
    }
}

/// Receives cancelled over and over (timeouts of a few microseconds, and a select over two
/// channels): every message arrives exactly once, in order.
fn cancelled_receives_lose_nothing() -> Result<(), Failed> {
    const N: u64 = 3_000;
    let a = Channel::<u64>::anonymous(&opts())?;
    let b = ByteChannel::anonymous(&opts().flavour(Flavour::Mpmc).max_message(8))?;
    let feeder = fork_child(|| {
        let (Ok(mut ta), Ok(mut tb)) = (a.sender(), b.sender()) else {
            return 2;
        };
        for i in 0..N {
            if ta.send(i).is_err() || tb.send(&i.to_le_bytes()).is_err() {
                return 3;
            }
            if i % 64 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        0
    });
    let (mut ra, mut rb) = (a.receiver()?, b.receiver()?);
    let cancelled = runtime().block_on(async {
        let (mut next_a, mut next_b, mut cancelled) = (0u64, 0u64, 0u64);
        let mut buf = Vec::new();
        let deadline = Instant::now() + PATIENCE;
        while next_a < N || next_b < N {
            if Instant::now() > deadline {
                return Err(Failed::from(format!("stuck at {next_a}, {next_b}")));
            }
            if next_a < N {
                match tokio::time::timeout(Duration::from_micros(20), ra.recv_async()).await {
                    Err(_) => cancelled += 1,
                    Ok(v) => {
                        let v = v?;
                        if v != next_a {
                            return Err(Failed::from(format!("a: got {v}, want {next_a}")));
                        }
                        next_a += 1;
                    }
                }
            }
            tokio::select! {
                got = rb.recv_async(&mut buf), if next_b < N => {
                    got?;
                    let v = u64::from_le_bytes(buf[..8].try_into()?);
                    if v != next_b {
                        return Err(Failed::from(format!("b: got {v}, want {next_b}")));
                    }
                    next_b += 1;
                }
                _ = tokio::time::sleep(Duration::from_micros(50)) => cancelled += 1,
            }
        }
        Ok::<_, Failed>(cancelled)
    })?;
    expect_exit_0(feeder)?;
    if cancelled == 0 {
        return Err("no receive was cancelled: the test tested nothing".into());
    }
    match (ra.try_recv(), rb.try_recv(&mut Vec::new())) {
        (Err(RecvError::Disconnected), Err(RecvError::Disconnected)) => Ok(()),
        other => Err(format!("after the last message: {other:?}").into()),
    }
}

/// This process's CPU time (user + system) in clock ticks, from `/proc/self/stat`.
fn cpu_ticks() -> Result<u64, Failed> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after = &stat[stat.rfind(')').ok_or("no ')' in /proc/self/stat")? + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    // Fields 14 and 15 of stat(5) (utime, stime) are 12 and 13 after the command.
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

/// 100 async receivers parked on live but silent peers, at the default liveness interval:
/// over 2 s the process uses no more than a few clock ticks. In a process of its own, so
/// that the other tests' CPU does not count. The waker thread wakes only to probe the peers'
/// liveness, once per liveness interval for all of them, and its round asks about each peer
/// process once (here one process feeds all 100 channels: one `/proc` read per round).
fn idle_parked_receivers_use_no_cpu() -> Result<(), Failed> {
    spawn_role("idle", &[]).expect_success(PATIENCE);
    Ok(())
}

/// The `idle` role: the measurement itself.
fn idle() -> i32 {
    match idle_measure() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("idle: {e:?}");
            1
        }
    }
}

fn idle_measure() -> Result<(), Failed> {
    const N: usize = 100;
    let channels: Vec<Channel<u64>> = (0..N)
        .map(|_| Channel::anonymous(&ChannelOptions::new().capacity(4)))
        .collect::<Result<_, _>>()?;
    let peer = fork_child(|| {
        let Ok(_txs) = channels
            .iter()
            .map(|c| c.sender())
            .collect::<Result<Vec<_>, _>>()
        else {
            return 2;
        };
        std::thread::sleep(Duration::from_secs(4));
        0
    });
    let rxs = channels
        .iter()
        .map(|c| c.receiver())
        .collect::<Result<Vec<_>, _>>()?;
    let ticks = runtime().block_on(async {
        let tasks: Vec<_> = rxs
            .into_iter()
            .map(|mut rx| tokio::spawn(async move { rx.recv_async().await.map(|_| ()) }))
            .collect();
        let start = Instant::now();
        while Reactor::global().parked() < N {
            if start.elapsed() > PATIENCE {
                return Err(Failed::from("the receivers never all parked"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let before = cpu_ticks()?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let ticks = cpu_ticks()? - before;
        for t in tasks {
            match tokio::time::timeout(PATIENCE, t).await {
                Ok(Ok(Err(RecvError::Disconnected))) => {}
                other => return Err(Failed::from(format!("a receiver ended with {other:?}"))),
            }
        }
        Ok(ticks)
    })?;
    expect_exit_0(peer)?;
    eprintln!("idle_parked_receivers_use_no_cpu: {ticks} ticks in 2 s");
    if ticks > 5 {
        return Err(format!("{ticks} clock ticks of CPU in 2 s with {N} parked receivers").into());
    }
    Ok(())
}

/// Broadcast subscribers, async: a publisher in another process sends 0..N in bursts (with
/// pauses in which the subscribers park); one subscriber receives with `recv_async`, one
/// through its `Stream`, one byte subscriber with `recv_ref_async`, each in its own task, and
/// every one gets every value in order, then the end when the publisher leaves. The block
/// policy makes the publisher wait for the slowest, so a descheduled task loses nothing.
fn broadcast_subscribers() -> Result<(), Failed> {
    const N: u64 = 2_000;
    let typed = BroadcastChannel::<u64>::anonymous(&opts().policy(Policy::Block))?;
    let bytes = BroadcastChannel::<Bytes>::anonymous(&opts().policy(Policy::Block).max_message(8))?;
    let (mut a, mut b, mut c) = (
        typed.subscriber()?,
        typed.subscriber()?,
        bytes.subscriber()?,
    );
    let publisher = fork_child(|| {
        let (Ok(mut tp), Ok(mut bp)) = (typed.publisher(), bytes.publisher()) else {
            return 2;
        };
        for i in 0..N {
            if tp.send(i).is_err() || bp.send(&i.to_le_bytes()).is_err() {
                return 3;
            }
            if i % 128 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        0
    });
    runtime().block_on(async {
        let by_recv = tokio::spawn(async move {
            for i in 0..N {
                let v = a.recv_async().await.map_err(|e| format!("a, {i}: {e}"))?;
                if v != i {
                    return Err(format!("a: got {v}, want {i}"));
                }
            }
            match a.recv_async().await {
                Err(RecvError::Disconnected) => Ok(()),
                other => Err(format!("a at the end: {other:?}")),
            }
        });
        let by_stream = tokio::spawn(async move {
            let got: Vec<u64> = (&mut b)
                .map(|v| v.map_err(|e| e.to_string()))
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_, _>>()?;
            if got != (0..N).collect::<Vec<_>>() {
                return Err(format!("b: {} values, not 0..{N} in order", got.len()));
            }
            Ok(())
        });
        let by_ref = tokio::spawn(async move {
            for i in 0..N {
                let msg = c
                    .recv_ref_async()
                    .await
                    .map_err(|e| format!("c, {i}: {e}"))?;
                let v = msg
                    .to_vec()
                    .ok_or("c: overwritten under the block policy")?;
                msg.release().map_err(|e| e.to_string())?;
                if v != i.to_le_bytes() {
                    return Err(format!("c: got {v:?}, want {i}"));
                }
            }
            match c.recv_ref_async().await {
                Err(RecvError::Disconnected) => Ok(()),
                other => Err(format!("c at the end: {:?}", other.map(|m| m.len()))),
            }
        });
        for t in [by_recv, by_stream, by_ref] {
            tokio::time::timeout(PATIENCE, t)
                .await
                .map_err(|_| "a subscriber never finished")??
                .map_err(Failed::from)?;
        }
        Ok::<_, Failed>(())
    })?;
    expect_exit_0(publisher)
}

/// `Sink` and `Stream`: a typed SPSC channel and a byte MPMC one with two sinks feeding one
/// stream, through small rings (so sinks keep items that found no room).
fn stream_and_sink() -> Result<(), Failed> {
    const N: u64 = 5_000;
    let typed = Channel::<u64>::anonymous(&opts().capacity(4))?;
    let bytes = ByteChannel::anonymous(&opts().capacity(4).flavour(Flavour::Mpmc).max_message(16))?;
    let (mut tx, mut rx): (Sender<u64>, Receiver<u64>) = (typed.sender()?, typed.receiver()?);
    let (b1, b2, mut brx): (ByteSender, ByteSender, ByteReceiver) =
        (bytes.sender()?, bytes.sender()?, bytes.receiver()?);
    runtime().block_on(async move {
        let send = tokio::spawn(async move {
            let mut items = futures_util::stream::iter((0..N).map(Ok::<u64, SendError<()>>));
            tx.send_all(&mut items).await
        });
        let sinks = [(b1, 0u64), (b2, 1u64)].map(|(mut s, k)| {
            tokio::spawn(async move {
                for i in 0..N {
                    SinkExt::send(&mut s, &((i << 1) | k).to_le_bytes()[..]).await?;
                }
                SinkExt::close(&mut s).await
            })
        });
        let mut got = Vec::new();
        while let Some(v) = rx.next().await {
            got.push(v?);
        }
        if got != (0..N).collect::<Vec<_>>() {
            return Err(Failed::from("the typed stream lost or reordered values"));
        }
        send.await??;
        let mut next = [0u64; 2];
        while let Some(m) = brx.next().await {
            let v = u64::from_le_bytes(m?[..8].try_into()?);
            let k = (v & 1) as usize;
            if v >> 1 != next[k] {
                return Err(Failed::from(format!(
                    "sink {k}: got {}, want {}",
                    v >> 1,
                    next[k]
                )));
            }
            next[k] += 1;
        }
        for s in sinks {
            s.await??;
        }
        if next != [N, N] {
            return Err(Failed::from(format!("received {next:?}")));
        }
        Ok(())
    })
}

fn main() {
    let tests = vec![
        Trial::test("ping_pong_async_peer", || ping_pong("async")),
        Trial::test("ping_pong_blocking_peer", || ping_pong("blocking")),
        Trial::test(
            "select_with_timer_and_listener",
            select_with_timer_and_listener,
        ),
        Trial::test("thousand_channels", thousand_channels),
        Trial::test("peer_killed_while_tasks_wait", peer_killed_while_tasks_wait),
        Trial::test(
            "cancelled_receives_lose_nothing",
            cancelled_receives_lose_nothing,
        ),
        Trial::test(
            "idle_parked_receivers_use_no_cpu",
            idle_parked_receivers_use_no_cpu,
        ),
        Trial::test("stream_and_sink", stream_and_sink),
        Trial::test("broadcast_subscribers", broadcast_subscribers),
    ];
    ringway_testkit::harness::main(tests, &[("pong", pong), ("idle", idle)]);
}
