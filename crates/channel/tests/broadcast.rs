//! Broadcast channels across real processes: one publisher and eight subscriber processes
//! that each check every sequence number; a subscriber killed with SIGKILL mid-stream under
//! both policies; late joiners with and without history; a lapped subscriber's `Lagged(n)`;
//! sharing by fork; and the errors of every wrong pairing (type, kind of channel). Every test
//! runs in a `LeakScope`: nothing is left in `/dev/shm`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Msg, TIMEOUT};
use libtest_mimic::{Failed, Trial};
use ringway_channel::{
    BroadcastChannel, ByteBatch, ByteChannel, BytePublisher, ByteSubscriber, ChannelOptions, Error,
    Policy, Publisher, Receiver, RecvError, Sender, Subscriber,
};
use ringway_testkit::{LeakScope, fork_child, harness, spawn_role};

fn opts(policy: Policy) -> ChannelOptions {
    ChannelOptions::new()
        .capacity(64)
        .policy(policy)
        .open_timeout(TIMEOUT)
        .liveness_interval(Duration::from_millis(10))
}

fn policy_env(policy: Policy) -> &'static str {
    match policy {
        Policy::Block => "block",
        Policy::Overwrite => "overwrite",
    }
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("child: {key} not set"))
}

fn env_u64(key: &str) -> u64 {
    env(key).parse().expect("a number")
}

fn child_opts() -> ChannelOptions {
    let policy = match std::env::var("POLICY").as_deref() {
        Ok("overwrite") => Policy::Overwrite,
        _ => Policy::Block,
    };
    opts(policy)
}

/// Waits (bounded) until `ready` holds.
fn until(what: &str, ready: impl Fn() -> bool) -> Result<(), Failed> {
    let start = Instant::now();
    while !ready() {
        if start.elapsed() > TIMEOUT {
            return Err(format!("timed out waiting until {what}").into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Receives until the publisher is gone, checking that every message is intact and that
/// sequence numbers run on from `FIRST` with no gap except the ones `Lagged` announced.
/// `STOP_AFTER` (optional): after that many messages, create the file `MARK` and stall
/// holding the cursor (the victim of a kill). Prints what it saw.
fn subscriber() -> i32 {
    let mut rx = Subscriber::<Msg>::open(env("ADDR"), &child_opts()).expect("open");
    assert!(
        rx.is_data_protected(),
        "a subscriber maps the data read-only"
    );
    if let Ok(mark) = std::env::var("ATTACHED") {
        std::fs::write(mark, b"attached").expect("attached mark");
    }
    let mut next = std::env::var("FIRST")
        .ok()
        .map(|s| s.parse::<u64>().unwrap());
    let (mut received, mut lagged) = (0u64, 0u64);
    let stop_after = std::env::var("STOP_AFTER")
        .ok()
        .map(|s| s.parse::<u64>().unwrap());
    loop {
        match rx.recv_timeout(TIMEOUT) {
            Ok(msg) => {
                assert!(msg.is_intact(), "a torn message: {msg:?}");
                let expected = *next.get_or_insert(msg.seq);
                assert_eq!(msg.seq, expected, "after {received} messages");
                next = Some(expected + 1);
                received += 1;
            }
            Err(RecvError::Lagged(n)) => {
                lagged += n;
                next = next.map(|s| s + n);
            }
            Err(RecvError::Disconnected) => break,
            Err(e) => panic!("recv after {received}: {e}"),
        }
        if stop_after == Some(received) {
            std::fs::write(env("MARK"), b"stalled").expect("mark");
            std::thread::sleep(TIMEOUT);
        }
    }
    assert_eq!(rx.lagged(), lagged);
    if let Ok(end) = std::env::var("END") {
        assert_eq!(next, Some(end.parse().unwrap()), "received to the end");
    }
    if std::env::var("NO_LAG").is_ok() {
        assert_eq!(
            lagged, 0,
            "a blocking publisher never laps a live subscriber"
        );
    }
    println!("received={received} lagged={lagged}");
    0
}

/// One publisher, eight subscriber processes, block policy: every subscriber receives every
/// message, in order, untorn.
fn eight_subscribers() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("bc8");
    let mut tx = Publisher::<Msg>::create(&name, &opts(Policy::Block))?;
    let count: u64 = 20_000;
    let end = count.to_string();
    let env = [
        ("ADDR", name.as_str()),
        ("FIRST", "0"),
        ("END", end.as_str()),
        ("NO_LAG", "1"),
    ];
    let children: Vec<_> = (0..8).map(|_| spawn_role("subscriber", &env)).collect();
    until("eight subscribers attached", || tx.subscribers() == 8)?;
    for seq in 0..count {
        tx.send_timeout(Msg::new(0, seq), TIMEOUT)?;
    }
    drop(tx);
    for child in children {
        child.expect_success(TIMEOUT);
    }
    Ok(())
}

/// A subscriber stalls holding its cursor, then is killed with SIGKILL while the publisher is
/// sending. Block: the publisher fills the channel, waits, and carries on once the liveness
/// check finds the subscriber dead. Overwrite: it never waits (every `try_send` succeeds).
/// The surviving subscriber checks everything it received.
fn killed_subscriber(policy: Policy) -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("bckill");
    let mark = scope.temp_path("stalled");
    let mut tx = Publisher::<Msg>::create(&name, &opts(policy))?;
    let count: u64 = 5_000;
    let (mark_s, end) = (mark.display().to_string(), count.to_string());
    let base = [("ADDR", name.as_str()), ("POLICY", policy_env(policy))];
    let mut victim = spawn_role(
        "subscriber",
        &[base[0], base[1], ("STOP_AFTER", "10"), ("MARK", &mark_s)],
    );
    let mut survivor_env = vec![base[0], base[1], ("FIRST", "0"), ("END", end.as_str())];
    if policy == Policy::Block {
        survivor_env.push(("NO_LAG", "1"));
    }
    let survivor = spawn_role("subscriber", &survivor_env);
    until("two subscribers attached", || tx.subscribers() == 2)?;
    for seq in 0..10 {
        tx.send_timeout(Msg::new(0, seq), TIMEOUT)?;
    }
    until("the victim stalled", || Path::new(&mark).exists())?;
    let sending = std::thread::spawn(move || -> Result<_, String> {
        let mut full = 0;
        for seq in 10..count {
            let msg = Msg::new(0, seq);
            match policy {
                Policy::Overwrite => {
                    tx.try_send(msg).map_err(|e| e.to_string())?;
                    // Paced, so the kill lands mid-stream here too.
                    if seq % 50 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                _ => {
                    if tx.try_send(msg).is_err() {
                        full += 1;
                        tx.send_timeout(msg, TIMEOUT).map_err(|e| e.to_string())?;
                    }
                }
            }
        }
        // Handed back, so the publisher outlives the victim: the last endpoint to leave
        // (the survivor) then removes the name, as it does after a crash.
        Ok((full, tx))
    });
    // Let the publisher run into the stalled subscriber (block), then kill it.
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own unreaped child.
    assert_eq!(unsafe { libc::kill(victim.pid() as i32, libc::SIGKILL) }, 0);
    victim.wait_timeout(TIMEOUT)?;
    let (full, tx) = sending.join().expect("publisher thread")?;
    drop(tx);
    if policy == Policy::Block {
        assert!(full > 0, "the stalled subscriber held the publisher back");
    }
    survivor.expect_success(TIMEOUT);
    std::fs::remove_file(&mark)?;
    Ok(())
}

/// A subscriber that joins after 100 messages starts with the newest `history` of them, or
/// with the next one published when the channel keeps none.
fn late_joiner(history: u32) -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("bclate");
    let mut tx = Publisher::<Msg>::create(&name, &opts(Policy::Block).history(history))?;
    for seq in 0..100 {
        tx.try_send(Msg::new(0, seq))?; // no subscriber: never waits
    }
    let first = (100 - u64::from(history)).to_string();
    let attached = scope.temp_path("attached");
    let child = spawn_role(
        "subscriber",
        &[
            ("ADDR", &name),
            ("FIRST", &first),
            ("END", "200"),
            ("ATTACHED", &attached.display().to_string()),
        ],
    );
    // Not `tx.subscribers() == 1`: that counts the subscriber while its `open` may still be
    // settling its start, and messages published then may precede it (see `subscribers`).
    until("the late subscriber's open returned", || attached.exists())?;
    assert_eq!(tx.subscribers(), 1);
    for seq in 100..200 {
        tx.send_timeout(Msg::new(0, seq), TIMEOUT)?;
    }
    drop(tx);
    child.expect_success(TIMEOUT);
    std::fs::remove_file(&attached)?;
    Ok(())
}

/// Under overwrite, a subscriber that reads nothing while the publisher sends 2.5 channels'
/// worth is told exactly how many it missed, then receives the oldest message left and every
/// one after it.
fn lapped_subscriber() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("bclap");
    let mark = scope.temp_path("sent");
    let mut tx = Publisher::<Msg>::create(&name, &opts(Policy::Overwrite))?;
    let cap = tx.capacity() as u64;
    let count = cap * 5 / 2;
    let child = spawn_role(
        "lapped",
        &[
            ("ADDR", &name),
            ("POLICY", "overwrite"),
            ("MARK", &mark.display().to_string()),
            ("COUNT", &count.to_string()),
        ],
    );
    until("the subscriber attached", || tx.subscribers() == 1)?;
    for seq in 0..count {
        tx.try_send(Msg::new(0, seq))?;
    }
    std::fs::write(&mark, b"sent")?;
    child.expect_success(TIMEOUT);
    drop(tx);
    std::fs::remove_file(&mark)?;
    Ok(())
}

fn lapped() -> i32 {
    let mut rx = Subscriber::<Msg>::open(env("ADDR"), &child_opts()).expect("open");
    let (count, cap) = (env_u64("COUNT"), rx.capacity() as u64);
    let mark = env("MARK");
    let start = Instant::now();
    while !Path::new(&mark).exists() {
        assert!(start.elapsed() < TIMEOUT, "the publisher never finished");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(rx.recv(), Err(RecvError::Lagged(count - cap)));
    assert_eq!(rx.lagged(), count - cap);
    let mut got = Vec::new();
    while got.len() < cap as usize {
        rx.recv_batch(&mut got, 16)
            .expect("the oldest messages left");
    }
    let seqs: Vec<u64> = got.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (count - cap..count).collect::<Vec<_>>());
    assert_eq!(rx.try_recv(), Err(RecvError::Empty));
    0
}

/// The same lap in one process, through the byte API and zero-copy reads.
fn lapped_bytes_in_place() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("bclapb");
    let opts = opts(Policy::Overwrite).capacity(8).max_message(16);
    let mut tx = BytePublisher::create(&name, &opts)?;
    let mut rx = ByteSubscriber::open(&name, &opts)?;
    let mut a = rx.try_clone()?;
    for i in 0..20u8 {
        tx.send(&[i; 3])?;
    }
    match rx.recv_ref() {
        Err(RecvError::Lagged(12)) => {}
        other => return Err(format!("expected Lagged(12), got {other:?}").into()),
    }
    let first = rx.recv_ref()?;
    assert_eq!(first.to_vec(), Some(vec![12; 3]));
    first.release()?;
    let mut batch = ByteBatch::new();
    // The clone lapped too: the batch's first call reports it, the next one takes all 8.
    assert_eq!(a.recv_batch(&mut batch, 100), Err(RecvError::Lagged(12)));
    assert_eq!(a.recv_batch(&mut batch, 100)?, 8);
    assert_eq!(batch.get(7), Some(&[19u8; 3][..]));
    assert_eq!(rx.len(), 7);
    assert!(tx.send(&[0; 17]).is_err(), "larger than max_message");
    Ok(())
}

/// Wrong pairings are refused with errors that say what to use instead: a subscriber of
/// another type, a sender or receiver on a broadcast name, a publisher or subscriber on a
/// sender/receiver name, a second live publisher, and the same across fd passing.
fn wrong_pairings_are_refused() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let (bc, p2p) = (scope.posix_name("bcerr"), scope.posix_name("p2perr"));
    let opts = opts(Policy::Block).open_timeout(Duration::from_millis(200));
    let _tx = Publisher::<u64>::create(&bc, &opts)?;
    match Subscriber::<u32>::open(&bc, &opts) {
        Err(Error::TypeMismatch { .. }) => {}
        other => return Err(format!("a subscriber of u32 on u64: {other:?}").into()),
    }
    let said = |r: Result<(), Error>, what: &str| -> Result<(), Failed> {
        match r {
            Err(e @ Error::Unsupported { .. }) if e.to_string().contains(what) => Ok(()),
            other => Err(format!("expected Unsupported naming {what:?}, got {other:?}").into()),
        }
    };
    said(
        Sender::<u64>::open(&bc, &opts).map(drop),
        "Publisher or Subscriber",
    )?;
    said(
        Receiver::<u64>::open(&bc, &opts).map(drop),
        "Publisher or Subscriber",
    )?;
    let _rx = Receiver::<u64>::create(&p2p, &opts)?;
    said(
        Publisher::<u64>::open(&p2p, &opts).map(drop),
        "Sender or Receiver",
    )?;
    said(
        Subscriber::<u64>::open(&p2p, &opts).map(drop),
        "Sender or Receiver",
    )?;
    match Publisher::<u64>::open(&bc, &opts) {
        Err(Error::Attach { .. }) => {}
        other => return Err(format!("a second live publisher: {other:?}").into()),
    }
    let memfd = ByteChannel::memfd("p2p", &opts)?;
    let fd = memfd.fd().expect("a memfd").try_clone_to_owned()?;
    said(
        BroadcastChannel::<ringway_channel::Bytes>::from_fd(fd, &opts).map(drop),
        "Sender or Receiver",
    )?;
    let bmemfd = BroadcastChannel::<ringway_channel::Bytes>::memfd("bc", &opts)?;
    let fd = bmemfd.fd().expect("a memfd").try_clone_to_owned()?;
    said(
        ByteChannel::from_fd(fd, &opts).map(drop),
        "Publisher or Subscriber",
    )?;
    Ok(())
}

/// A broadcast channel shared by fork: three subscriber children and the publisher in the
/// parent. In one process, a publisher taken after a subscriber from the same channel makes
/// the data area writable again (it would fault otherwise), and the subscriber still reads.
fn shared_by_fork() -> Result<(), Failed> {
    let channel = BroadcastChannel::<u64>::anonymous(&opts(Policy::Block))?;
    let children: Vec<_> = (0..3)
        .map(|_| {
            fork_child(|| {
                let mut rx = channel.subscriber().expect("subscriber");
                let ok = rx.is_data_protected()
                    && (0..1000).all(|i| rx.recv_timeout(TIMEOUT) == Ok(i))
                    && rx.recv_timeout(TIMEOUT) == Err(RecvError::Disconnected);
                i32::from(!ok)
            })
        })
        .collect();
    let mut rx = channel.subscriber()?;
    assert!(rx.is_data_protected());
    let mut tx = channel.publisher()?;
    assert!(
        !rx.is_data_protected(),
        "a publisher in this mapping unprotects it"
    );
    until("four subscribers attached", || tx.subscribers() == 4)?;
    for i in 0..1000u64 {
        tx.send_timeout(i, TIMEOUT)?;
        assert_eq!(rx.recv_timeout(TIMEOUT), Ok(i));
    }
    drop(tx);
    for child in children {
        child.expect_success(TIMEOUT);
    }
    Ok(())
}

fn main() {
    let mut tests = vec![
        Trial::test("eight_subscriber_processes", eight_subscribers),
        Trial::test("late_joiner_with_history", || late_joiner(16)),
        Trial::test("late_joiner_without_history", || late_joiner(0)),
        Trial::test("lapped_subscriber_across_processes", lapped_subscriber),
        Trial::test("lapped_subscriber_bytes_in_place", lapped_bytes_in_place),
        Trial::test("wrong_pairings_are_refused", wrong_pairings_are_refused),
        Trial::test("shared_by_fork", shared_by_fork),
    ];
    for policy in [Policy::Block, Policy::Overwrite] {
        tests.push(Trial::test(
            format!("killed_subscriber_{}", policy_env(policy)),
            move || killed_subscriber(policy),
        ));
    }
    harness::main(tests, &[("subscriber", subscriber), ("lapped", lapped)]);
}
