//! Who can open a channel, what a hostile process can do to one, and what it cannot.
//!
//! Tests run as root, so "another user" is a forked child that drops to uid/gid 65534
//! (`nobody`) before it tries.

mod common;

use std::os::fd::OwnedFd;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::Duration;

use common::{Msg, TIMEOUT};
use libtest_mimic::{Failed, Trial};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid, ftruncate, setgid, setuid};
use ringway_channel::{
    Address, ByteReceiver, ByteSender, ChannelOptions, Error, Flavour, Receiver, RecvError, Sender,
};
use ringway_region::ErrorKind;
use ringway_testkit::{LeakScope, fork_child};

fn opts() -> ChannelOptions {
    ChannelOptions::new()
        .capacity(64)
        .open_timeout(Duration::from_secs(5))
        .liveness_interval(Duration::from_millis(10))
}

/// Runs `f` in a forked child that is uid and gid 65534; returns its exit code.
fn as_nobody(f: impl FnOnce() -> i32) -> i32 {
    fork_child(|| {
        if setgid(Gid::from_raw(65534)).is_err() || setuid(Uid::from_raw(65534)).is_err() {
            return 90;
        }
        f()
    })
    .expect_exit(TIMEOUT)
}

fn region_kind(result: &Result<Receiver<Msg>, Error>) -> Option<ErrorKind> {
    match result {
        Err(Error::Region(e)) => Some(e.kind()),
        _ => None,
    }
}

fn named(scope: &LeakScope) -> [Address; 3] {
    [
        Address::posix(scope.posix_name("perm")),
        Address::sysv(scope.sysv_key()),
        Address::file(scope.temp_path("perm")),
    ]
}

/// Named channels are created 0600: another user can neither open nor map them.
fn other_users_cannot_open_by_default() -> Result<(), Failed> {
    let scope = LeakScope::new();
    for address in named(&scope) {
        let _tx = Sender::<Msg>::create(&address, &opts())?;
        let code = as_nobody(|| {
            let result = Receiver::<Msg>::open(&address, &opts());
            match region_kind(&result) {
                Some(ErrorKind::PermissionDenied) => 0,
                _ => 1,
            }
        });
        assert_eq!(code, 0, "{address}: another user was not refused");
    }
    Ok(())
}

/// An explicit mode widens access exactly as asked: 0666 lets another user in (and the
/// messages flow), 0660 does not let in a user outside the group.
fn explicit_mode_widens_only_as_asked() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("wide");
    let mut tx = Sender::<Msg>::create(&name, &opts().mode(0o666))?;
    let mode = std::fs::metadata(Path::new("/dev/shm").join(&name[1..]))?
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o666, "the mode is exact, whatever the umask");
    let receiver = std::thread::scope(|s| {
        let sender = s.spawn(|| {
            for seq in 0..100 {
                tx.send_timeout(Msg::new(0, seq), TIMEOUT)?;
            }
            Ok::<_, Failed>(())
        });
        let code = as_nobody(|| {
            let Ok(mut rx) = Receiver::<Msg>::open(&name, &opts()) else {
                return 1;
            };
            for seq in 0..100 {
                match rx.recv_timeout(Duration::from_secs(30)) {
                    Ok(msg) if msg == Msg::new(0, seq) => {}
                    _ => return 2,
                }
            }
            0
        });
        sender.join().unwrap().map(|()| code)
    })?;
    assert_eq!(receiver, 0, "another user could not use a 0666 channel");

    let group = scope.posix_name("group");
    let _tx = Sender::<Msg>::create(&group, &opts().mode(0o660))?;
    let code = as_nobody(
        || match region_kind(&Receiver::<Msg>::open(&group, &opts())) {
            Some(ErrorKind::PermissionDenied) => 0,
            _ => 1,
        },
    );
    assert_eq!(code, 0, "0660 let in a user outside the group");
    Ok(())
}

/// Create never adopts an object someone else made first, and unguessable names exist.
fn names_cannot_be_squatted() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("squat");
    // A squatter creates the name first, with bytes of its own.
    let squatter: OwnedFd = nix::sys::mman::shm_open(
        name.as_str(),
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
        Mode::from_bits_truncate(0o666),
    )?;
    ftruncate(&squatter, 1 << 20)?;
    nix::unistd::write(&squatter, b"squatted, with bytes of its own")?;
    let err = Sender::<Msg>::create(&name, &opts()).unwrap_err();
    assert!(
        matches!(&err, Error::Region(e) if e.kind() == ErrorKind::AlreadyExists),
        "{err}"
    );
    assert!(err.to_string().contains("already exists"), "{err}");
    // Opening it is refused too: it is not a ringway ring.
    let err = Receiver::<Msg>::open(&name, &opts()).unwrap_err();
    assert!(err.to_string().contains("not a ringway ring"), "{err}");
    nix::sys::mman::shm_unlink(name.as_str())?;

    let a = Address::unique_posix("/ringway-sec")?;
    let b = Address::unique_posix("/ringway-sec")?;
    assert_ne!(a, b);
    assert!(a.to_string().len() > "POSIX shm \"/ringway-sec-\"".len() + 31);
    let tx = Sender::<Msg>::create(&a, &opts())?;
    let rx = Receiver::<Msg>::open(&a, &opts())?;
    drop((tx, rx));
    Ok(())
}

/// The file backing follows no symbolic link, on create or open.
fn file_backing_refuses_symlinks() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let target = scope.temp_path("target");
    let link = scope.temp_path("link");
    let _tx = Sender::<Msg>::create(Address::file(&target), &opts())?;
    symlink(&target, &link)?;
    scope.track_path(link.clone());
    let err = Receiver::<Msg>::open(Address::file(&link), &opts()).unwrap_err();
    assert!(
        matches!(&err, Error::Region(e) if e.kind() == ErrorKind::Symlink),
        "{err}"
    );
    // Creating at a symbolic link (even one to a file the attacker wants overwritten) is
    // refused by the exclusive create, and the link's target is left alone.
    std::fs::remove_file(&link)?;
    let victim = scope.temp_path("victim");
    std::fs::write(&victim, b"precious")?;
    symlink(&victim, &link)?;
    let err = Sender::<Msg>::create(Address::file(&link), &opts()).unwrap_err();
    assert!(
        matches!(&err, Error::Region(e) if matches!(e.kind(), ErrorKind::Symlink | ErrorKind::AlreadyExists)),
        "{err}"
    );
    assert_eq!(std::fs::read(&victim)?, b"precious");
    std::fs::remove_file(&link)?;
    std::fs::remove_file(&victim)?;
    Ok(())
}

/// A peer truncates a POSIX channel under a live receiver: the receiver reports the ring as
/// corrupted instead of dying of SIGBUS.
fn truncation_under_a_live_receiver() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("trunc");
    let mut tx = Sender::<Msg>::create(&name, &opts())?;
    let (ready_rx, ready_tx) = nix::unistd::pipe()?;
    let child = fork_child(|| {
        let Ok(mut rx) = Receiver::<Msg>::open(&name, &opts()) else {
            return 1;
        };
        if rx.recv_timeout(Duration::from_secs(30)) != Ok(Msg::new(0, 0)) {
            return 2;
        }
        let _ = nix::unistd::write(&ready_tx, b"r");
        match rx.recv_timeout(Duration::from_secs(30)) {
            Err(RecvError::Corrupted(_)) => 0,
            Ok(_) => 3,
            Err(_) => 4,
        }
    });
    tx.send(Msg::new(0, 0))?;
    let mut byte = [0u8; 1];
    nix::unistd::read(&ready_rx, &mut byte)?;
    let fd = nix::sys::mman::shm_open(name.as_str(), OFlag::O_RDWR, Mode::empty())?;
    ftruncate(&fd, 0)?;
    let code = child.expect_exit(TIMEOUT);
    assert_eq!(
        code, 0,
        "the receiver of a truncated channel exited with {code}"
    );
    Ok(())
}

/// Review item 12: a truncation that keeps the header. A 64 KiB byte channel, a few messages
/// received, then the object truncated to 4096 bytes while the sender keeps sending. Before,
/// every send returned `Ok`, the receiver got what fit in page 0 and then timed out for ever
/// (the two processes each had their own private zero pages). Now the sender's sends fail
/// with `Corrupted` once they touch a lost page, and the receiver never delivers a wrong
/// message and ends with `Corrupted`, not a timeout. Both flavours (MPMC with 1000-byte slots,
/// so a slot straddles the lost page boundary).
fn truncation_keeping_the_header_is_corrupted_on_both_sides() -> Result<(), Failed> {
    for flavour in [Flavour::Spsc, Flavour::Mpmc] {
        let scope = LeakScope::new();
        let name = scope.posix_name("trunc4k");
        // 64 messages of 1000 bytes: a 64 KiB SPSC data area, or 64 MPMC slots.
        let opts = ChannelOptions::new()
            .flavour(flavour)
            .capacity(64)
            .max_message(1000)
            .open_timeout(Duration::from_secs(5))
            .liveness_interval(Duration::from_millis(10));
        let mut tx = ByteSender::create(&name, &opts)?;
        let (ready_rx, ready_tx) = nix::unistd::pipe()?;
        let child = fork_child(|| {
            let Ok(mut rx) = ByteReceiver::open(&name, &opts) else {
                return 1;
            };
            let mut buf = Vec::new();
            for seq in 0..5u64 {
                match rx.recv_timeout(&mut buf, Duration::from_secs(30)) {
                    Ok(_) if buf == message(seq) => {}
                    _ => return 2,
                }
            }
            let _ = nix::unistd::write(&ready_tx, b"r");
            for seq in 5u64.. {
                match rx.recv_timeout(&mut buf, Duration::from_secs(30)) {
                    Ok(_) if buf == message(seq) => {}
                    Ok(_) => return 3, // a wrong (zeroed) message delivered as Ok
                    Err(RecvError::Corrupted(_)) => return 0,
                    Err(_) => return 4, // timed out: the truncation went unnoticed
                }
            }
            5
        });
        for seq in 0..5u64 {
            tx.send_timeout(&message(seq), TIMEOUT)
                .map_err(|e| e.to_string())?;
        }
        let mut byte = [0u8; 1];
        nix::unistd::read(&ready_rx, &mut byte)?;
        let fd = nix::sys::mman::shm_open(name.as_str(), OFlag::O_RDWR, Mode::empty())?;
        ftruncate(&fd, 4096)?;
        let mut sent_ok = 0;
        let mut failed = None;
        for seq in 5..400u64 {
            match tx.send_timeout(&message(seq), Duration::from_secs(5)) {
                Ok(()) => sent_ok += 1,
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            }
        }
        let failed = failed.unwrap_or_else(|| panic!("{flavour:?}: all 395 sends returned Ok"));
        assert!(
            failed.contains("truncated"),
            "{flavour:?}: after {sent_ok} sends, {failed}"
        );
        let code = child.expect_exit(TIMEOUT);
        assert_eq!(code, 0, "{flavour:?}: the receiver exited with {code}");
    }
    Ok(())
}

/// Review item 15: if someone replaces a channel's POSIX name with an object of their own,
/// the channel's endpoints leave it alone when they go (before, the last one `shm_unlink`ed it
/// by name).
fn leaving_never_removes_a_strangers_object() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("stranger");
    let tx = Sender::<Msg>::create(&name, &opts())?;
    let rx = Receiver::<Msg>::open(&name, &opts())?;
    nix::sys::mman::shm_unlink(name.as_str())?;
    let stranger = nix::sys::mman::shm_open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL,
        Mode::from_bits_truncate(0o600),
    )?;
    ftruncate(&stranger, 4096)?;
    drop(tx);
    drop(rx);
    let still_there = Path::new("/dev/shm").join(&name[1..]).exists();
    nix::sys::mman::shm_unlink(name.as_str())?;
    assert!(still_there, "the last endpoint removed a stranger's object");
    Ok(())
}

/// 100..1000 bytes, derived from `seq`.
fn message(seq: u64) -> Vec<u8> {
    let len = 100 + (seq * 37 % 900) as usize;
    (0..len).map(|i| (seq as usize * 7 + i) as u8).collect()
}

fn main() {
    let tests = vec![
        Trial::test(
            "other_users_cannot_open_by_default",
            other_users_cannot_open_by_default,
        ),
        Trial::test(
            "explicit_mode_widens_only_as_asked",
            explicit_mode_widens_only_as_asked,
        ),
        Trial::test("names_cannot_be_squatted", names_cannot_be_squatted),
        Trial::test(
            "file_backing_refuses_symlinks",
            file_backing_refuses_symlinks,
        ),
        Trial::test(
            "truncation_under_a_live_receiver",
            truncation_under_a_live_receiver,
        ),
        Trial::test(
            "leaving_never_removes_a_strangers_object",
            leaving_never_removes_a_strangers_object,
        ),
        Trial::test(
            "truncation_keeping_the_header_is_corrupted_on_both_sides",
            truncation_keeping_the_header_is_corrupted_on_both_sides,
        ),
    ];
    ringway_testkit::harness::main(tests, common::ROLES);
}
