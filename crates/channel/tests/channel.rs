//! Channels across real processes: every endpoint kind (POSIX, SysV and file names; anonymous
//! and /dev/zero across fork; memfd across exec and over a Unix socket), both flavours, typed
//! and byte messages, in-place loans, type and flavour refusal, timeouts, disconnects, and
//! name cleanup.

mod common;

use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Msg, TIMEOUT, byte_message, consecutive, drain, flavour_env};
use libtest_mimic::{Failed, Trial};
use ringway_channel::{
    Address, ByteChannel, ByteReceiver, ByteSender, Channel, ChannelOptions, Error, Flavour,
    Receiver, RecvError, SendError, Sender,
};
use ringway_testkit::{LeakScope, RoleCommand, fork_child, spawn_role};

fn opts(flavour: Flavour) -> ChannelOptions {
    ChannelOptions::new()
        .flavour(flavour)
        .capacity(256)
        .liveness_interval(Duration::from_millis(10))
}

fn shm_exists(name: &str) -> bool {
    Path::new("/dev/shm").join(&name[1..]).exists()
}

/// POSIX name, SPSC: the parent creates the sender, a separate process opens the receiver.
fn posix_spsc_by_name() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("spsc");
    let mut tx = Sender::<Msg>::create(&name, &opts(Flavour::Spsc))?;
    let child = spawn_role(
        "recv",
        &[
            ("CH", "posix"),
            ("ADDR", &name),
            ("COUNT", "100000"),
            ("EXPECT_END", "1"),
        ],
    );
    for seq in 0..100_000 {
        tx.send(Msg::new(0, seq))?;
    }
    drop(tx);
    child.expect_success(TIMEOUT);
    assert!(!shm_exists(&name), "the last endpoint removes the name");
    Ok(())
}

/// Either order of start: the receiver process opens before the sender creates.
fn open_waits_for_the_creator() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("late");
    let child = spawn_role(
        "recv",
        &[
            ("CH", "posix"),
            ("ADDR", &name),
            ("COUNT", "1000"),
            ("EXPECT_END", "1"),
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!shm_exists(&name));
    let mut tx = Sender::<Msg>::create(&name, &opts(Flavour::Spsc))?;
    for seq in 0..1000 {
        tx.send(Msg::new(0, seq))?;
    }
    drop(tx);
    child.expect_success(TIMEOUT);
    Ok(())
}

/// SysV key, MPMC: two separate sender processes, the parent receives everything exactly
/// once, in order per sender.
fn sysv_mpmc_two_sender_processes() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let key = scope.sysv_key();
    let mut rx = Receiver::<Msg>::create(Address::sysv(key), &opts(Flavour::Mpmc))?;
    const COUNT: u64 = 30_000;
    let children: Vec<_> = (0..2)
        .map(|p| {
            spawn_role(
                "send",
                &[
                    ("CH", "sysv"),
                    ("ADDR", &key.to_string()),
                    ("FLAVOUR", "mpmc"),
                    ("PRODUCER", &p.to_string()),
                    ("COUNT", &COUNT.to_string()),
                ],
            )
        })
        .collect();
    let mut got = [Vec::new(), Vec::new()];
    for _ in 0..2 * COUNT {
        let msg = rx.recv_timeout(TIMEOUT)?;
        assert!(msg.is_intact(), "torn {msg:?}");
        got[msg.producer as usize].push(msg.seq);
    }
    for child in children {
        child.expect_success(TIMEOUT);
    }
    assert_eq!(rx.recv_timeout(TIMEOUT), Err(RecvError::Disconnected));
    for seqs in &got {
        assert_eq!(consecutive(seqs)?, COUNT);
    }
    assert_eq!(rx.lost(), 0);
    Ok(())
}

/// File path, bytes, SPSC: variable sizes up to the maximum, by copy and by loan/ref.
fn file_bytes_by_name() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let path = scope.temp_path("bytes");
    let opts = opts(Flavour::Spsc).capacity(16).max_message(2000);
    let mut rx = ByteReceiver::create(Address::file(&path), &opts)?;
    let max = rx.max_message();
    let child = spawn_role(
        "send-bytes",
        &[
            ("CH", "file"),
            ("ADDR", path.to_str().unwrap()),
            ("COUNT", "20000"),
            ("MAX", &max.to_string()),
        ],
    );
    let mut buf = Vec::new();
    for seq in 0..20_000 {
        rx.recv_timeout(&mut buf, TIMEOUT)?;
        assert_eq!(buf, byte_message(seq, max), "message {seq}");
    }
    assert_eq!(
        rx.recv_timeout(&mut buf, TIMEOUT),
        Err(RecvError::Disconnected)
    );
    child.expect_success(TIMEOUT);
    drop(rx);
    assert!(!path.exists(), "the last endpoint removes the file");
    Ok(())
}

/// Anonymous mapping across fork, typed, both flavours: the child takes the sender.
fn anonymous_across_fork() -> Result<(), Failed> {
    for flavour in [Flavour::Spsc, Flavour::Mpmc] {
        let channel = Channel::<Msg>::anonymous(&opts(flavour))?;
        let child = fork_child(|| {
            let Ok(mut tx) = channel.sender() else {
                return 2;
            };
            for seq in 0..50_000 {
                if tx.send(Msg::new(7, seq)).is_err() {
                    return 3;
                }
            }
            0
        });
        let mut rx = channel.receiver()?;
        let got = drain(&mut rx)?;
        child.expect_success(TIMEOUT);
        assert_eq!(consecutive(&got[&7])?, 50_000, "{flavour}");
    }
    Ok(())
}

/// /dev/zero mapping across fork, bytes: the child takes the receiver.
fn dev_zero_across_fork() -> Result<(), Failed> {
    let channel = ByteChannel::dev_zero(&opts(Flavour::Spsc).capacity(8).max_message(2000))?;
    let child = fork_child(|| {
        let Ok(mut rx) = channel.receiver() else {
            return 2;
        };
        let max = rx.max_message();
        let mut buf = Vec::new();
        for seq in 0..10_000 {
            match rx.recv_timeout(&mut buf, Duration::from_secs(60)) {
                Ok(_) if buf == byte_message(seq, max) => {}
                _ => return 3,
            }
        }
        match rx.recv_timeout(&mut buf, Duration::from_secs(60)) {
            Err(RecvError::Disconnected) => 0,
            _ => 4,
        }
    });
    let mut tx = channel.sender()?;
    let max = tx.max_message();
    for seq in 0..10_000 {
        tx.send(&byte_message(seq, max))?;
    }
    drop(tx);
    child.expect_success(TIMEOUT);
    Ok(())
}

/// memfd inherited across exec: the child finds it by fd number.
fn memfd_across_exec() -> Result<(), Failed> {
    for flavour in [Flavour::Spsc, Flavour::Mpmc] {
        let channel = Channel::<Msg>::memfd("exec-test", &opts(flavour))?;
        channel.set_inheritable(true)?;
        let fd = channel.fd().unwrap();
        let child = RoleCommand::new("recv")
            .env("CH", "memfd-fd")
            .env("FD", fd.as_raw_fd().to_string())
            .env("FLAVOUR", flavour_env(flavour))
            .env("COUNT", "50000")
            .env("EXPECT_END", "1")
            .inherit_fd(fd)
            .spawn()?;
        let mut tx = channel.sender()?;
        for seq in 0..50_000 {
            tx.send(Msg::new(0, seq))?;
        }
        drop(tx);
        child.expect_success(TIMEOUT);
    }
    Ok(())
}

/// memfd passed over a Unix socket (SCM_RIGHTS), MPMC: the child takes the sender.
fn memfd_over_unix_socket() -> Result<(), Failed> {
    let (ours, theirs) = UnixStream::pair()?;
    let channel = Channel::<Msg>::memfd("socket-test", &opts(Flavour::Mpmc))?;
    let child = RoleCommand::new("send")
        .env("CH", "memfd-sock")
        .env("SOCK", theirs.as_raw_fd().to_string())
        .env("FLAVOUR", "mpmc")
        .env("PRODUCER", "3")
        .env("COUNT", "40000")
        .inherit_fd(theirs.as_fd())
        .spawn()?;
    drop(theirs);
    channel.send_fd(ours.as_fd())?;
    let mut rx = channel.receiver()?;
    let got = drain(&mut rx)?;
    child.expect_success(TIMEOUT);
    assert_eq!(consecutive(&got[&3])?, 40_000);
    // An unsealed fd is refused: a peer could shrink it under us.
    let unsealed =
        nix::sys::memfd::memfd_create("unsealed", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    nix::unistd::ftruncate(&unsealed, 1 << 16)?;
    let err = Channel::<Msg>::from_fd(unsealed, &opts(Flavour::Mpmc)).unwrap_err();
    assert!(
        matches!(&err, Error::Region(e) if e.kind() == ringway_region::ErrorKind::Unsealed),
        "{err}"
    );
    Ok(())
}

/// Zero-copy both ways across processes: loans on the sending side, lent references on the
/// receiving side.
fn loans_and_refs() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("loan");
    let mut tx = Sender::<Msg>::create(&name, &opts(Flavour::Spsc))?;
    let child = spawn_role(
        "recv",
        &[
            ("CH", "posix"),
            ("ADDR", &name),
            ("COUNT", "2000"),
            ("EXPECT_END", "1"),
        ],
    );
    for seq in 0..2000 {
        let mut loan = tx.loan()?;
        if seq % 2 == 0 {
            loan.write(Msg::new(0, seq));
        } else {
            // SAFETY: the receiver is a ringway endpoint of this test: it never writes a
            // message it has not been given.
            let msg = unsafe { loan.as_mut() };
            *msg = Msg::new(0, seq);
        }
        loan.commit();
    }
    drop(tx);
    child.expect_success(TIMEOUT);

    // Typed refs, in one process: the value is read in place.
    let name = scope.posix_name("ref");
    let mut tx = Sender::<Msg>::create(&name, &opts(Flavour::Mpmc))?;
    let mut rx = Receiver::<Msg>::open(&name, &opts(Flavour::Mpmc))?;
    tx.send(Msg::new(1, 1))?;
    let lent = rx.recv_ref()?;
    assert_eq!(lent.get(), Msg::new(1, 1));
    // SAFETY: the only sender is in this thread and is not writing.
    assert_eq!(unsafe { lent.as_ref() }.seq, 1);
    drop(lent);
    assert_eq!(rx.try_recv(), Err(RecvError::Empty), "released on drop");
    Ok(())
}

/// Opening with another message type, kind of channel or flavour fails, naming both.
fn mismatches_are_refused() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("types");
    let spsc = opts(Flavour::Spsc).open_timeout(Duration::from_secs(5));
    let _tx = Sender::<Msg>::create(&name, &spsc)?;

    let err = Receiver::<[u64; 8]>::open(&name, &spsc).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{text}");
    assert!(
        text.contains("common::Msg") && text.contains("[u64; 8]"),
        "{text}"
    );
    assert!(text.contains("64 bytes"), "{text}");

    let err = ByteReceiver::open(&name, &spsc).unwrap_err();
    assert!(err.to_string().contains("byte messages"), "{err}");

    let renamed = spsc.clone().type_name("OtherMsg");
    let err = Receiver::<Msg>::open(&name, &renamed).unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");

    let err = Receiver::<Msg>::open(&name, &spsc.clone().flavour(Flavour::Mpmc)).unwrap_err();
    assert!(matches!(err, Error::FlavourMismatch { .. }), "{err}");
    assert!(err.to_string().contains("Flavour::Spsc"), "{err}");

    // The refused openers took no side: the real receiver still attaches.
    let mut rx = Receiver::<Msg>::open(&name, &spsc)?;
    // And an SPSC side attaches once.
    let err = Receiver::<Msg>::open(&name, &spsc).unwrap_err();
    assert!(err.to_string().contains("already attached"), "{err}");
    assert!(rx.try_clone().is_err());
    assert_eq!(rx.try_recv(), Err(RecvError::Empty));
    Ok(())
}

/// Creating a taken name is an error that leaves the taken channel alone; opening a name
/// nobody creates times out with a clear error.
fn create_is_exclusive_and_open_times_out() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("excl");
    let mut tx = Sender::<u64>::create(&name, &opts(Flavour::Spsc))?;
    let err = Sender::<u64>::create(&name, &opts(Flavour::Spsc)).unwrap_err();
    assert!(matches!(&err, Error::AlreadyExists { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("pid {}", std::process::id())) && text.contains("Address::remove"),
        "the error says who holds the name and how to remove it: {text}"
    );
    assert!(
        shm_exists(&name),
        "a refused create must not remove the existing channel"
    );
    tx.send(5)?;
    let mut rx = Receiver::<u64>::open(&name, &opts(Flavour::Spsc))?;
    assert_eq!(rx.recv()?, 5);

    let missing = scope.posix_name("nobody");
    let start = Instant::now();
    let err = Receiver::<u64>::open(
        &missing,
        &ChannelOptions::new().open_timeout(Duration::from_millis(150)),
    )
    .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert!(
        err.to_string().contains("is the creating process running"),
        "{err}"
    );
    Ok(())
}

/// Timed and non-blocking calls, and the values handed back.
fn timeouts_and_full_empty() -> Result<(), Failed> {
    let scope = LeakScope::new();
    for flavour in [Flavour::Spsc, Flavour::Mpmc] {
        let name = scope.posix_name("timeouts");
        let o = opts(flavour).capacity(4);
        let mut tx = Sender::<u64>::create(&name, &o)?;
        let mut rx = Receiver::<u64>::open(&name, &o)?;
        assert_eq!(rx.try_recv(), Err(RecvError::Empty));
        let start = Instant::now();
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(50)),
            Err(RecvError::Timeout)
        );
        assert!(start.elapsed() >= Duration::from_millis(50));
        let mut sent = 0;
        let err = loop {
            match tx.try_send(sent) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent < 10_000, "{flavour}: never full");
        };
        assert!(
            matches!(err, SendError::Full { value, .. } if value == sent),
            "{err:?}"
        );
        let start = Instant::now();
        let err = tx.send_timeout(99, Duration::from_millis(50)).unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert_eq!(err.into_inner(), 99);
        for i in 0..sent {
            assert_eq!(rx.try_recv(), Ok(i));
        }
    }
    Ok(())
}

/// Review item 14: any `Duration` is a valid liveness interval, open timeout and call timeout
/// (`liveness_interval(Duration::MAX)` used to panic on the first empty or full poll).
fn any_duration_is_a_valid_interval_and_timeout() -> Result<(), Failed> {
    let scope = LeakScope::new();
    for flavour in [Flavour::Spsc, Flavour::Mpmc] {
        let name = scope.posix_name("durations");
        let o = opts(flavour)
            .capacity(2)
            .liveness_interval(Duration::MAX)
            .open_timeout(Duration::MAX);
        let mut tx = Sender::<u64>::create(&name, &o)?;
        let mut rx = Receiver::<u64>::open(&name, &o)?;
        assert_eq!(rx.try_recv(), Err(RecvError::Empty));
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(5)),
            Err(RecvError::Timeout)
        );
        let mut full = 0;
        while tx.try_send(7).is_ok() {
            full += 1;
        }
        assert!(matches!(
            tx.try_send(7),
            Err(SendError::Full { value: 7, .. })
        ));
        assert!(matches!(
            tx.send_timeout(7, Duration::from_millis(5)),
            Err(SendError::Timeout { value: 7, .. })
        ));
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                // Exactly the messages that filled the ring: the one sent below stays.
                for _ in 0..full {
                    assert_eq!(rx.recv_timeout(TIMEOUT), Ok(7));
                }
            });
            tx.send_timeout(8, Duration::MAX)
        })
        .map_err(|e| format!("{flavour}: {e}"))?;
        assert_eq!(rx.recv_timeout(Duration::MAX), Ok(8));
    }
    Ok(())
}

/// A receiver process that exits disconnects a blocked sender; a sender process that exits
/// lets the receiver drain, then disconnects it.
fn drop_disconnects_both_ways() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("drop");
    let o = opts(Flavour::Spsc).capacity(16);
    let mut tx = Sender::<Msg>::create(&name, &o)?;
    let child = spawn_role("recv", &[("CH", "posix"), ("ADDR", &name), ("COUNT", "10")]);
    for seq in 0..10 {
        tx.send(Msg::new(0, seq))?;
    }
    child.expect_success(TIMEOUT);
    let start = Instant::now();
    let err = loop {
        if let Err(e) = tx.send(Msg::new(0, 0)) {
            break e;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "send never noticed the receiver left"
        );
    };
    assert!(err.is_disconnected(), "{err}");
    assert!(tx.is_disconnected());
    drop(tx);

    let name = scope.posix_name("drop2");
    let mut rx = Receiver::<Msg>::create(&name, &o)?;
    spawn_role(
        "send",
        &[
            ("CH", "posix"),
            ("ADDR", &name),
            ("PRODUCER", "0"),
            ("COUNT", "5"),
        ],
    )
    .expect_success(TIMEOUT);
    let got = drain(&mut rx)?;
    assert_eq!(consecutive(&got[&0])?, 5, "drained before Disconnected");
    assert!(rx.is_disconnected());
    Ok(())
}

/// MPMC endpoints clone; each clone is its own registration.
fn mpmc_clones() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("clone");
    let o = opts(Flavour::Mpmc);
    let mut tx1 = ByteSender::create(&name, &o)?;
    let mut tx2 = tx1.try_clone()?;
    let mut rx1 = ByteReceiver::open(&name, &o)?;
    let mut rx2 = rx1.try_clone()?;
    tx1.send(b"one")?;
    tx2.send(b"two")?;
    let mut a = Vec::new();
    let mut b = Vec::new();
    rx1.recv_timeout(&mut a, TIMEOUT)?;
    rx2.recv_timeout(&mut b, TIMEOUT)?;
    assert_eq!([a, b], [b"one".to_vec(), b"two".to_vec()]);
    drop(tx1);
    assert_eq!(
        rx1.try_recv(&mut Vec::new()),
        Err(RecvError::Empty),
        "tx2 remains"
    );
    drop(tx2);
    assert_eq!(
        rx1.recv_timeout(&mut Vec::new(), TIMEOUT),
        Err(RecvError::Disconnected)
    );
    Ok(())
}

/// Serialized messages over a byte channel, across processes by fork.
fn serde_messages() -> Result<(), Failed> {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Order {
        id: u64,
        symbol: String,
        legs: Vec<(i32, f64)>,
    }
    let channel = ByteChannel::anonymous(&opts(Flavour::Spsc).capacity(64).serialized::<Order>())?;
    let child = fork_child(|| {
        let Ok(mut tx) = channel.sender() else {
            return 2;
        };
        for id in 0..100 {
            let order = Order {
                id,
                symbol: format!("SYM{id}"),
                legs: vec![(id as i32, 0.5); id as usize % 5],
            };
            if tx.send_serialized(&order).is_err() {
                return 3;
            }
        }
        0
    });
    let mut rx = channel.receiver()?;
    for id in 0..100 {
        let order: Order = rx.recv_deserialized()?;
        assert_eq!(order.id, id);
        assert_eq!(order.symbol, format!("SYM{id}"));
        assert_eq!(order.legs.len(), id as usize % 5);
    }
    child.expect_success(TIMEOUT);
    // A message that does not decode as the type (raw bytes sent on a serialized channel)
    // is an error, not a panic.
    let channel = ByteChannel::anonymous(&opts(Flavour::Spsc).serialized::<Order>())?;
    let (mut tx, mut rx) = (channel.sender()?, channel.receiver()?);
    tx.send(&[0xFF; 3])?;
    let err = rx.recv_deserialized::<Order>().unwrap_err();
    assert!(
        matches!(err, ringway_channel::SerdeError::Decode(_)),
        "{err}"
    );
    Ok(())
}

/// A typed receiver refuses a message of the wrong size (a buggy or hostile sender writing
/// the ring directly), releases it, and carries on with the next.
fn wrong_size_typed_message_is_corrupted() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("size");
    let mut rx = Receiver::<Msg>::create(&name, &opts(Flavour::Spsc))?;
    let region = std::sync::Arc::new(ringway_region::Region::open(
        &ringway_region::Backing::posix(name.as_str()),
        &ringway_region::RegionOptions::new(),
    )?);
    // SAFETY: the region stays mapped while the ring memory (which holds the Arc) lives.
    let memory = unsafe {
        ringway_ring::RingMemory::from_raw(region.as_ptr(), region.len(), Some(region.clone()))
    }?;
    let mut raw = ringway_ring::spsc::Producer::attach(&memory, &Default::default())?;
    raw.push(b"abc")?;
    raw.push(bytemuck::bytes_of(&Msg::new(0, 1)))?;
    assert!(matches!(
        rx.recv_timeout(TIMEOUT),
        Err(RecvError::Corrupted(_))
    ));
    assert_eq!(rx.recv_timeout(TIMEOUT)?, Msg::new(0, 1));
    Ok(())
}

/// The name is removed when the last endpoint leaves, whichever it is.
fn name_lives_with_its_last_endpoint() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("life");
    let tx = Sender::<u64>::create(&name, &opts(Flavour::Spsc))?;
    let rx = Receiver::<u64>::open(&name, &opts(Flavour::Spsc))?;
    drop(tx);
    assert!(shm_exists(&name), "the receiver still uses it");
    drop(rx);
    assert!(!shm_exists(&name));
    Ok(())
}

fn main() {
    let tests = vec![
        Trial::test("posix_spsc_by_name", posix_spsc_by_name),
        Trial::test("open_waits_for_the_creator", open_waits_for_the_creator),
        Trial::test(
            "sysv_mpmc_two_sender_processes",
            sysv_mpmc_two_sender_processes,
        ),
        Trial::test("file_bytes_by_name", file_bytes_by_name),
        Trial::test("anonymous_across_fork", anonymous_across_fork),
        Trial::test("dev_zero_across_fork", dev_zero_across_fork),
        Trial::test("memfd_across_exec", memfd_across_exec),
        Trial::test("memfd_over_unix_socket", memfd_over_unix_socket),
        Trial::test("loans_and_refs", loans_and_refs),
        Trial::test("mismatches_are_refused", mismatches_are_refused),
        Trial::test(
            "create_is_exclusive_and_open_times_out",
            create_is_exclusive_and_open_times_out,
        ),
        Trial::test("timeouts_and_full_empty", timeouts_and_full_empty),
        Trial::test(
            "any_duration_is_a_valid_interval_and_timeout",
            any_duration_is_a_valid_interval_and_timeout,
        ),
        Trial::test("drop_disconnects_both_ways", drop_disconnects_both_ways),
        Trial::test("mpmc_clones", mpmc_clones),
        Trial::test("serde_messages", serde_messages),
        Trial::test(
            "name_lives_with_its_last_endpoint",
            name_lives_with_its_last_endpoint,
        ),
        Trial::test(
            "wrong_size_typed_message_is_corrupted",
            wrong_size_typed_message_is_corrupted,
        ),
    ];
    ringway_testkit::harness::main(tests, common::ROLES);
}
