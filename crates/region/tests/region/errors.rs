//! Error paths, each asserted by kind, and the odd corners of the API.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, symlink};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use libtest_mimic::{Failed, Trial};
use nix::fcntl::{FcntlArg, FdFlag, OFlag, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid, ftruncate, setgid, setuid};
use ringway_region::{Backing, Error, ErrorKind, HugePages, Op, Region, RegionOptions, fdpass};
use ringway_testkit::{LeakScope, RoleCommand, fork_child};

use crate::{PARENT_SEED, TIMEOUT, check, fill};

pub(crate) fn trials() -> Vec<Trial> {
    crate::trials(
        "errors",
        &[
            ("invalid_posix_names", invalid_posix_names),
            ("longest_posix_name_works", longest_posix_name),
            (
                "invalid_memfd_labels_and_sysv_keys",
                invalid_labels_and_keys,
            ),
            ("sysv_ftok_roundtrip", ftok_roundtrip),
            ("sysv_private_opened_by_id", sysv_private),
            ("open_missing", open_missing),
            ("open_empty", open_empty),
            ("open_too_small_raw_objects", open_too_small),
            ("permission_denied_for_other_users", permission_denied),
            ("widened_mode_is_exact_and_lets_others_in", widened_mode),
            ("unsealed_memfd_refused", unsealed_memfd),
            (
                "sealed_memfd_resists_peer_truncate",
                sealed_memfd_resists_truncate,
            ),
            (
                "truncation_by_a_peer_reads_zeros_instead_of_sigbus",
                truncation_reads_zeros,
            ),
            ("file_refuses_symlinks", file_symlinks),
            ("file_refuses_non_regular", file_non_regular),
            ("unsupported_options", unsupported_options),
            ("create_needs_a_size", create_needs_size),
            ("full_dev_shm_is_no_space_and_leaves_nothing", no_space),
            ("failed_lock_leaves_nothing", failed_lock),
            ("fdpass_errors", fdpass_errors),
            ("list_finds_our_segments", list),
            ("inherited_fd_checks", inherited_fd),
            ("error_messages_and_sources", error_messages),
        ],
    )
}

fn opts(size: usize) -> RegionOptions {
    RegionOptions::new().size(size)
}

#[track_caller]
fn assert_kind<T: std::fmt::Debug>(result: Result<T, Error>, kind: ErrorKind) -> Error {
    let err = result.expect_err("expected an error");
    assert_eq!(err.kind(), kind, "wrong kind for: {err}");
    err
}

pub(crate) fn dev_shm(name: &str) -> PathBuf {
    Path::new("/dev/shm").join(&name[1..])
}

fn invalid_posix_names() -> Result<(), Failed> {
    let long = format!("/{}", "a".repeat(256));
    let bad = [
        "",
        "noslash",
        "/",
        "/a/b",
        "//a",
        "/.",
        "/..",
        "/a\0b",
        long.as_str(),
    ];
    for name in bad {
        let backing = Backing::posix(name);
        let err = assert_kind(
            Region::create(&backing, &opts(4096)),
            ErrorKind::InvalidName,
        );
        assert_eq!(err.op(), Op::Create);
        assert_kind(
            Region::open(&backing, &RegionOptions::new()),
            ErrorKind::InvalidName,
        );
        assert_kind(Region::remove(&backing), ErrorKind::InvalidName);
    }
    // Nothing reached the kernel: "noslash" and "a" do not exist.
    assert!(!Path::new("/dev/shm/noslash").exists());
    Ok(())
}

fn longest_posix_name() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let base = scope.posix_name("long");
    let name = format!("{base}{}", "x".repeat(256 - base.len()));
    assert_eq!(name.len(), 256, "255 bytes after the slash");
    let region = Region::create(&Backing::posix(&name), &opts(4096))?;
    assert!(dev_shm(&name).exists());
    drop(region);
    assert!(!dev_shm(&name).exists());
    Ok(())
}

fn invalid_labels_and_keys() -> Result<(), Failed> {
    assert_kind(
        Region::create(&Backing::memfd("a\0b"), &opts(4096)),
        ErrorKind::InvalidName,
    );
    assert_kind(
        Region::create(&Backing::memfd("m".repeat(250)), &opts(4096)),
        ErrorKind::InvalidName,
    );
    Region::create(&Backing::memfd("m".repeat(249)), &opts(4096))?;
    assert_kind(
        Region::create(&Backing::sysv(0), &opts(4096)),
        ErrorKind::InvalidName,
    );
    assert_kind(
        Region::open(&Backing::sysv(0), &RegionOptions::new()),
        ErrorKind::InvalidName,
    );
    assert_kind(
        Region::create(&Backing::ftok("/", 0), &opts(4096)),
        ErrorKind::InvalidName,
    );
    let err = assert_kind(
        Region::create(&Backing::ftok("/nonexistent/ringway", 1), &opts(4096)),
        ErrorKind::NotFound,
    );
    assert!(err.to_string().contains("ftok"), "{err}");
    Ok(())
}

fn ftok_roundtrip() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let path = scope.temp_path("ftok");
    fs::write(&path, b"ftok anchor")?;
    let backing = Backing::ftok(&path, 7);
    let result = (|| -> Result<(), Failed> {
        let region = Region::create(&backing, &opts(8192))?;
        scope.track_shmid(region.sysv_id().expect("shmid"));
        let opened = Region::open(&backing, &RegionOptions::new())?;
        assert_eq!(opened.sysv_id(), region.sysv_id());
        fill(&region, PARENT_SEED);
        check(&opened, PARENT_SEED)?;
        assert_kind(
            Region::create(&backing, &opts(8192)),
            ErrorKind::AlreadyExists,
        );
        // An opener may mark it for removal right after attaching: the key
        // goes at once, the mappings stay, and the creator's drop (which
        // would IPC_RMID) does not fail on the removed segment.
        let remover = Region::open(&backing, &RegionOptions::new().remove_after_attach(true))?;
        assert_kind(
            Region::open(&backing, &RegionOptions::new()),
            ErrorKind::NotFound,
        );
        check(&remover, PARENT_SEED)?;
        let by_id = Region::open(
            &Backing::sysv_id(remover.sysv_id().expect("shmid")),
            &RegionOptions::new(),
        )?;
        check(&by_id, PARENT_SEED)?;
        drop((region, opened, remover, by_id));
        Ok(())
    })();
    fs::remove_file(&path)?;
    result
}

fn sysv_private() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let a = Region::create(&Backing::sysv_private(), &opts(4096))?;
    let b = Region::create(&Backing::sysv_private(), &opts(4096))?;
    let id = a.sysv_id().expect("shmid");
    scope.track_shmid(id);
    scope.track_shmid(b.sysv_id().expect("shmid"));
    assert_ne!(
        Some(id),
        b.sysv_id(),
        "IPC_PRIVATE always makes a new segment"
    );
    assert_kind(
        Region::open(&Backing::sysv_private(), &RegionOptions::new()),
        ErrorKind::Unsupported,
    );
    let opened = Region::open(&Backing::sysv_id(id), &RegionOptions::new())?;
    fill(&a, PARENT_SEED);
    check(&opened, PARENT_SEED)?;
    assert_kind(
        Region::create(&Backing::sysv_id(id), &opts(4096)),
        ErrorKind::Unsupported,
    );
    drop((a, b, opened));
    assert_kind(
        Region::open(&Backing::sysv_id(id), &RegionOptions::new()),
        ErrorKind::NotFound,
    );
    Ok(())
}

fn open_missing() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let any = RegionOptions::new();
    let err = assert_kind(
        Region::open(&Backing::posix(scope.posix_name("missing")), &any),
        ErrorKind::NotFound,
    );
    assert!(err.to_string().contains("was it created"), "{err}");
    assert_kind(
        Region::open(&Backing::sysv(scope.sysv_key()), &any),
        ErrorKind::NotFound,
    );
    assert_kind(
        Region::open(&Backing::file(scope.temp_path("missing")), &any),
        ErrorKind::NotFound,
    );
    // A shmid whose segment is gone.
    let region = Region::create(&Backing::sysv_private(), &opts(4096))?;
    let id = region.sysv_id().expect("shmid");
    drop(region);
    assert_kind(
        Region::open(&Backing::sysv_id(id), &any),
        ErrorKind::NotFound,
    );
    assert_kind(
        Region::remove(&Backing::posix(scope.posix_name("missing"))),
        ErrorKind::NotFound,
    );
    assert_kind(Region::remove(&Backing::Anonymous), ErrorKind::Unsupported);
    Ok(())
}

/// A raw POSIX object of `len` bytes, made with the bare syscalls.
pub(crate) fn raw_posix(name: &str, len: i64) -> OwnedFd {
    let fd = shm_open(
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
        Mode::from_bits_truncate(0o600),
    )
    .expect("shm_open");
    ftruncate(&fd, len).expect("ftruncate");
    fd
}

/// A raw sealed memfd of `len` bytes.
fn raw_memfd(len: i64, seals: SealFlag) -> OwnedFd {
    let fd = memfd_create(
        "ringway-raw",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .expect("memfd_create");
    ftruncate(&fd, len).expect("ftruncate");
    fcntl(&fd, FcntlArg::F_ADD_SEALS(seals)).expect("F_ADD_SEALS");
    fd
}

fn open_empty() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let any = RegionOptions::new();
    let name = scope.posix_name("empty");
    let _fd = raw_posix(&name, 0);
    let err = assert_kind(Region::open(&Backing::posix(&name), &any), ErrorKind::Empty);
    assert!(err.to_string().contains("empty"), "{err}");
    shm_unlink(name.as_str())?;

    let path = scope.temp_path("empty");
    fs::write(&path, b"")?;
    assert_kind(Region::open(&Backing::file(&path), &any), ErrorKind::Empty);
    fs::remove_file(&path)?;

    let sealed = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL;
    assert_kind(
        Region::from_fd(raw_memfd(0, sealed), &any),
        ErrorKind::Empty,
    );
    Ok(())
}

fn open_too_small() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let want = opts(4096);
    let name = scope.posix_name("small");
    let _fd = raw_posix(&name, 100);
    let err = assert_kind(
        Region::open(&Backing::posix(&name), &want),
        ErrorKind::TooSmall,
    );
    assert!(err.to_string().contains("100 bytes"), "{err}");
    // What is there is fine for a caller who asks for less.
    assert_eq!(Region::open(&Backing::posix(&name), &opts(100))?.len(), 100);
    shm_unlink(name.as_str())?;

    let key = scope.sysv_key();
    // SAFETY: plain integers; the segment is removed below.
    let shmid = unsafe { libc::shmget(key, 100, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
    assert!(shmid >= 0, "shmget: {}", std::io::Error::last_os_error());
    let result = Region::open(&Backing::sysv(key), &want);
    Region::remove(&Backing::sysv_id(shmid))?;
    assert_kind(result, ErrorKind::TooSmall);

    let path = scope.temp_path("small");
    fs::write(&path, [7u8; 100])?;
    assert_kind(
        Region::open(&Backing::file(&path), &want),
        ErrorKind::TooSmall,
    );
    fs::remove_file(&path)?;

    let sealed = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW;
    assert_kind(
        Region::from_fd(raw_memfd(100, sealed), &want),
        ErrorKind::TooSmall,
    );
    Ok(())
}

/// In a forked child: become nobody (uid and gid 65534), then run `f`.
pub(crate) fn as_nobody(f: impl FnOnce() -> i32) -> i32 {
    fork_child(|| {
        if setgid(Gid::from_raw(65534)).is_err() || setuid(Uid::from_raw(65534)).is_err() {
            return 90;
        }
        f()
    })
    .expect_exit(TIMEOUT)
}

/// Exit code of a child expecting `kind`: 0 if it got it.
fn expect_in_child(result: Result<Region, Error>, kind: ErrorKind) -> i32 {
    match result {
        Err(e) if e.kind() == kind => 0,
        Err(e) => {
            eprintln!("child: wrong error: {e}");
            1
        }
        Ok(_) => 2,
    }
}

fn named_backings(scope: &LeakScope) -> [Backing; 3] {
    [
        Backing::posix(scope.posix_name("perm")),
        Backing::sysv(scope.sysv_key()),
        Backing::file(scope.temp_path("perm")),
    ]
}

fn permission_denied() -> Result<(), Failed> {
    let scope = LeakScope::new();
    for backing in named_backings(&scope) {
        let region = Region::create(&backing, &opts(4096))?;
        for read_only in [false, true] {
            let code = as_nobody(|| {
                let opened = Region::open(&backing, &RegionOptions::new().read_only(read_only));
                expect_in_child(opened, ErrorKind::PermissionDenied)
            });
            assert_eq!(
                code, 0,
                "nobody opening {backing} (read_only {read_only}) gets PermissionDenied"
            );
        }
        drop(region);
    }
    Ok(())
}

fn widened_mode() -> Result<(), Failed> {
    let scope = LeakScope::new();
    for backing in named_backings(&scope) {
        let region = Region::create(&backing, &opts(4096).mode(0o666))?;
        // The umask (the harness sets 0o077) does not filter the mode.
        let mode = match &backing {
            Backing::Posix { name } => fs::metadata(dev_shm(name))?.mode() & 0o777,
            Backing::File { path } => fs::metadata(path)?.mode() & 0o777,
            _ => {
                let info = Region::list()?
                    .into_iter()
                    .find(|s| s.shmid == region.sysv_id())
                    .expect("listed");
                info.mode & 0o777
            }
        };
        assert_eq!(mode, 0o666, "{backing} has exactly the mode asked for");
        fill(&region, PARENT_SEED);
        let code = as_nobody(|| match Region::open(&backing, &RegionOptions::new()) {
            Ok(opened) => i32::from(check(&opened, PARENT_SEED).is_err()) * 3,
            Err(e) => {
                eprintln!("child: {e}");
                4
            }
        });
        assert_eq!(code, 0, "nobody can open {backing} created 0666");
    }
    Ok(())
}

fn unsealed_memfd() -> Result<(), Failed> {
    let plain = RegionOptions::new();
    let err = assert_kind(
        Region::from_fd(raw_memfd(4096, SealFlag::empty()), &plain),
        ErrorKind::Unsealed,
    );
    assert!(err.to_string().contains("allow_unsealed"), "{err}");
    assert_kind(
        Region::from_fd(raw_memfd(4096, SealFlag::F_SEAL_SHRINK), &plain),
        ErrorKind::Unsealed,
    );
    // A memfd made without MFD_ALLOW_SEALING carries F_SEAL_SEAL only.
    let unsealable = memfd_create("ringway-raw", MFdFlags::MFD_CLOEXEC)?;
    ftruncate(&unsealable, 4096)?;
    assert_kind(
        Region::from_fd(unsealable.try_clone()?, &plain),
        ErrorKind::Unsealed,
    );
    // Accepted when the caller opts in.
    let region = Region::from_fd(unsealable, &RegionOptions::new().allow_unsealed(true))?;
    assert_eq!(region.len(), 4096);
    assert!(matches!(region.backing(), Backing::Memfd { name } if name == "ringway-raw"));
    let sealed = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW;
    assert_eq!(
        Region::from_fd(raw_memfd(4096, sealed), &plain)?.len(),
        4096
    );
    Ok(())
}

fn sealed_memfd_resists_truncate() -> Result<(), Failed> {
    let region = Region::create(&Backing::memfd("ringway-sealed"), &opts(16384))?;
    fill(&region, PARENT_SEED);
    let fd = region.fd().expect("fd");
    RoleCommand::new("truncate-memfd")
        .env("FD", fd.as_raw_fd().to_string())
        .env("SIZE", region.len().to_string())
        .inherit_fd(fd)
        .spawn()?
        .expect_success(TIMEOUT);
    // Still whole: the kernel refused the peer (touching a truncated page
    // would have killed this test with SIGBUS).
    assert_eq!(nix::sys::stat::fstat(fd)?.st_size, 16384);
    check(&region, PARENT_SEED)?;
    Ok(())
}

/// A peer truncates a POSIX object and a file under a live mapping: touching the lost pages
/// must not kill the process (the SIGBUS guard maps zeros there), the surviving page keeps its
/// bytes, and the region reports the faults.
fn truncation_reads_zeros() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let path = scope.temp_path("truncated");
    for backing in [
        Backing::posix(scope.posix_name("truncated")),
        Backing::file(&path),
    ] {
        let len = 4 * 4096;
        let region = Region::create(&backing, &opts(len))?;
        fill(&region, PARENT_SEED);
        let (ready_rx, ready_tx) = nix::unistd::pipe()?;
        let child = fork_child(|| {
            // Wait until the parent has truncated the object to one page.
            let mut byte = [0u8; 1];
            if nix::unistd::read(&ready_rx, &mut byte) != Ok(1) {
                return 2;
            }
            let mut bytes = vec![0xAAu8; len];
            // SAFETY: the region is mapped for `len` bytes; copied through raw pointers. The
            // pages past the first were truncated: the guard makes them read as zeros.
            unsafe { std::ptr::copy_nonoverlapping(region.as_ptr(), bytes.as_mut_ptr(), len) };
            let first_intact = bytes[..4096]
                .iter()
                .enumerate()
                .all(|(i, &b)| b == crate::pattern_byte(i, PARENT_SEED));
            if !first_intact {
                return 3;
            }
            if bytes[4096..].iter().any(|&b| b != 0) {
                return 4;
            }
            if region.truncation_faults() != 3 {
                return 5;
            }
            0
        });
        let fd: OwnedFd = match &backing {
            Backing::Posix { name } => shm_open(name.as_str(), OFlag::O_RDWR, Mode::empty())?,
            _ => fs::OpenOptions::new().write(true).open(&path)?.into(),
        };
        ftruncate(&fd, 4096)?;
        nix::unistd::write(&ready_tx, b"t")?;
        let code = child.expect_exit(TIMEOUT);
        assert_eq!(
            code, 0,
            "{backing}: the truncated-page reader failed (code {code})"
        );
        drop(region);
    }
    Ok(())
}

fn file_symlinks() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let target = scope.temp_path("target");
    let link = scope.temp_path("link");
    let region = Region::create(&Backing::file(&target), &opts(4096))?;
    symlink(&target, &link)?;
    let err = assert_kind(
        Region::open(&Backing::file(&link), &RegionOptions::new()),
        ErrorKind::Symlink,
    );
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_kind(
        Region::create(&Backing::file(&link), &opts(4096)),
        ErrorKind::AlreadyExists,
    );
    fs::remove_file(&link)?;
    // A dangling link is not followed either: its target is not created.
    let nowhere = scope.temp_path("nowhere");
    symlink(&nowhere, &link)?;
    assert_kind(
        Region::create(&Backing::file(&link), &opts(4096)),
        ErrorKind::AlreadyExists,
    );
    assert!(!nowhere.exists());
    fs::remove_file(&link)?;
    drop(region);
    Ok(())
}

fn file_non_regular() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let dir = scope.temp_path("dir");
    fs::create_dir(&dir)?;
    let result = Region::open(&Backing::file(&dir), &RegionOptions::new().read_only(true));
    fs::remove_dir(&dir)?;
    assert_kind(result, ErrorKind::NotRegular);
    Ok(())
}

fn unsupported_options() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let posix = Backing::posix(scope.posix_name("unsup"));
    let sysv = Backing::sysv(scope.sysv_key());
    let create_cases: Vec<(Backing, RegionOptions)> = vec![
        (Backing::Anonymous, opts(4096).persist(true)),
        (Backing::DevZero, opts(4096).persist(true)),
        (Backing::memfd("x"), opts(4096).persist(true)),
        (Backing::Anonymous, opts(4096).mode(0o600)),
        (Backing::DevZero, opts(4096).mode(0o644)),
        (Backing::memfd("x"), opts(4096).mode(0o600)),
        (posix.clone(), opts(4096).mode(0o4777)),
        (posix.clone(), opts(2 << 20).huge_pages(HugePages::Explicit)),
        (
            Backing::DevZero,
            opts(2 << 20).huge_pages(HugePages::Explicit),
        ),
        (posix.clone(), opts(4096).read_only(true)),
        (posix.clone(), opts(4096).remove_after_attach(true)),
        (
            Backing::file(scope.temp_path("unsup")),
            opts(4096).remove_after_attach(true),
        ),
        (posix.clone(), opts(4096).allow_unsealed(true)),
        (sysv.clone(), opts(4096).reserve(true)),
        (Backing::Anonymous, opts(4096).reserve(true)),
        (Backing::sysv_id(1), opts(4096)),
    ];
    for (backing, options) in &create_cases {
        let err = assert_kind(Region::create(backing, options), ErrorKind::Unsupported);
        assert!(
            err.to_string().contains(backing.to_string().as_str()),
            "{err}"
        );
    }
    // Defaults and explicit "no" are fine everywhere.
    Region::create(
        &Backing::Anonymous,
        &opts(4096).reserve(false).persist(false),
    )?;

    let region = Region::create(&posix, &opts(4096))?;
    let open_cases = [
        RegionOptions::new().mode(0o600),
        RegionOptions::new().persist(true),
        RegionOptions::new().reserve(true),
        RegionOptions::new().allow_unsealed(true),
        RegionOptions::new().remove_after_attach(true),
    ];
    for options in &open_cases {
        assert_kind(Region::open(&posix, options), ErrorKind::Unsupported);
    }
    let explicit = RegionOptions::new().huge_pages(HugePages::Explicit);
    assert_kind(Region::open(&posix, &explicit), ErrorKind::Unsupported);
    assert_kind(Region::open(&sysv, &explicit), ErrorKind::Unsupported);
    for backing in [Backing::Anonymous, Backing::DevZero, Backing::memfd("x")] {
        let err = assert_kind(
            Region::open(&backing, &RegionOptions::new()),
            ErrorKind::Unsupported,
        );
        assert!(
            err.to_string().contains("fork") || err.to_string().contains("fdpass"),
            "{err}"
        );
    }
    // Region-level: set_inheritable needs an fd.
    let segment = Region::create(&sysv, &opts(4096))?;
    assert_kind(segment.set_inheritable(true), ErrorKind::Unsupported);
    region.set_inheritable(true)?;
    let flags = FdFlag::from_bits_truncate(fcntl(region.fd().expect("fd"), FcntlArg::F_GETFD)?);
    assert!(!flags.contains(FdFlag::FD_CLOEXEC));
    region.set_inheritable(false)?;
    let flags = FdFlag::from_bits_truncate(fcntl(region.fd().expect("fd"), FcntlArg::F_GETFD)?);
    assert!(flags.contains(FdFlag::FD_CLOEXEC));
    // from_fd refuses create-only options.
    let dup = region.fd().expect("fd").try_clone_to_owned()?;
    assert_kind(
        Region::from_fd(dup, &RegionOptions::new().persist(true)),
        ErrorKind::Unsupported,
    );
    Ok(())
}

fn create_needs_size() -> Result<(), Failed> {
    let scope = LeakScope::new();
    for backing in [
        Backing::posix(scope.posix_name("nosize")),
        Backing::Anonymous,
        Backing::memfd("x"),
    ] {
        assert_kind(
            Region::create(&backing, &RegionOptions::new()),
            ErrorKind::InvalidSize,
        );
        assert_kind(Region::create(&backing, &opts(0)), ErrorKind::InvalidSize);
    }
    assert_kind(
        Region::create(&Backing::Anonymous, &opts(usize::MAX)),
        ErrorKind::InvalidSize,
    );
    Ok(())
}

/// 1 TiB does not fit in /dev/shm (tmpfs checks fallocate against its size
/// before allocating anything): NoSpace at create, and the name is gone.
fn no_space() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let huge = opts(1 << 40);
    let name = scope.posix_name("full");
    let err = assert_kind(
        Region::create(&Backing::posix(&name), &huge),
        ErrorKind::NoSpace,
    );
    assert!(
        err.to_string().contains("/dev/shm"),
        "the hint names /dev/shm: {err}"
    );
    // "Full" only when it is: a request larger than an empty tmpfs says how much it has.
    let room = Backing::posix(&name)
        .room()
        .expect("/dev/shm is measurable");
    if room.available >= 1 << 20 {
        let text = err.to_string();
        assert!(!text.contains("is full"), "{text}");
        assert!(
            text.contains("has only") && text.contains("less than this object needs"),
            "{text}"
        );
    }
    assert!(err.errno() == Some(libc::ENOSPC));
    assert!(
        !dev_shm(&name).exists(),
        "a failed create leaves nothing behind"
    );
    // A file on the same tmpfs.
    let file = dev_shm(&scope.posix_name("full-file"));
    assert_kind(
        Region::create(&Backing::file(&file), &huge),
        ErrorKind::NoSpace,
    );
    assert!(!file.exists(), "a failed create leaves nothing behind");
    Ok(())
}

/// A failure after mapping (mlock without the privilege or the limit) undoes
/// the whole create.
fn failed_lock() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let backings = [
        Backing::posix(scope.posix_name("lock")),
        Backing::sysv(scope.sysv_key()),
        Backing::file(dev_shm(&scope.posix_name("lock-file"))),
    ];
    for backing in &backings {
        let code = fork_child(|| {
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: setrlimit reads the struct we pass.
            if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &none) } != 0 {
                return 91;
            }
            // Dropping root drops CAP_IPC_LOCK.
            if setgid(Gid::from_raw(65534)).is_err() || setuid(Uid::from_raw(65534)).is_err() {
                return 90;
            }
            expect_in_child(
                Region::create(backing, &opts(8192).lock(true)),
                ErrorKind::OutOfMemory,
            )
        })
        .expect_exit(TIMEOUT);
        assert_eq!(
            code, 0,
            "create of {backing} with lock(true) fails with OutOfMemory"
        );
        let gone = match backing {
            Backing::Posix { name } => !dev_shm(name).exists(),
            Backing::File { path } => !path.exists(),
            Backing::SysV { .. } => Region::open(backing, &RegionOptions::new()).is_err(),
            _ => unreachable!(),
        };
        assert!(gone, "the failed create of {backing} left nothing behind");
    }
    Ok(())
}

fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd")
        .map(Iterator::count)
        .unwrap_or(0)
}

fn fdpass_errors() -> Result<(), Failed> {
    let (a, b) = UnixStream::pair()?;
    let memfd = raw_memfd(4096, SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW);
    assert_kind(
        fdpass::send_fd(a.as_fd(), memfd.as_fd(), b""),
        ErrorKind::FdPass,
    );

    // Data without an fd.
    use std::io::Write;
    (&a).write_all(b"x")?;
    let mut buf = [0u8; 8];
    assert_kind(fdpass::recv_fd(b.as_fd(), &mut buf), ErrorKind::FdPass);

    // Two fds: the first is returned, the second closed.
    let two = [memfd.as_raw_fd(), memfd.as_raw_fd()];
    sendmsg::<()>(
        a.as_raw_fd(),
        &[std::io::IoSlice::new(b"y")],
        &[ControlMessage::ScmRights(&two)],
        MsgFlags::empty(),
        None,
    )?;
    let (fd, n) = fdpass::recv_fd(b.as_fd(), &mut buf)?;
    assert_eq!(&buf[..n], b"y");
    let flags = FdFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFD)?);
    assert!(
        flags.contains(FdFlag::FD_CLOEXEC),
        "received with MSG_CMSG_CLOEXEC"
    );
    drop(fd);

    // More fds than accepted: truncated control data is refused, and what
    // arrived is closed. (Other tests open fds concurrently, so the count is
    // compared with slack.)
    let many = [memfd.as_raw_fd(); 40];
    sendmsg::<()>(
        a.as_raw_fd(),
        &[std::io::IoSlice::new(b"z")],
        &[ControlMessage::ScmRights(&many)],
        MsgFlags::empty(),
        None,
    )?;
    let before = open_fds();
    let err = assert_kind(fdpass::recv_fd(b.as_fd(), &mut buf), ErrorKind::FdPass);
    assert!(err.to_string().contains("truncated"), "{err}");
    assert!(
        open_fds() < before + 8,
        "the fds of a truncated message are closed"
    );

    // The peer went away.
    drop(a);
    let err = assert_kind(fdpass::recv_fd(b.as_fd(), &mut buf), ErrorKind::FdPass);
    assert!(err.to_string().contains("closed"), "{err}");
    // Sending to a closed peer is EPIPE, not SIGPIPE.
    let (c, d) = UnixStream::pair()?;
    drop(d);
    let err = fdpass::send_fd(c.as_fd(), memfd.as_fd(), b"x").expect_err("peer closed");
    assert_eq!(err.errno(), Some(libc::EPIPE));
    Ok(())
}

fn list() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("list");
    let posix = Region::create(&Backing::posix(&name), &opts(12345).mode(0o640))?;
    let key = scope.sysv_key();
    let sysv = Region::create(&Backing::sysv(key), &opts(23456))?;
    scope.track_shmid(sysv.sysv_id().expect("shmid"));

    let mine = Region::list_prefixed(scope.prefix())?;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0].backing, Backing::posix(&name));
    assert_eq!((mine[0].size, mine[0].mode, mine[0].uid), (12345, 0o640, 0));

    let all = Region::list()?;
    assert!(all.iter().any(|s| s.backing == Backing::posix(&name)));
    let seg = all
        .iter()
        .find(|s| s.key == Some(key))
        .expect("SysV segment listed");
    assert_eq!(seg.shmid, sysv.sysv_id());
    assert_eq!(seg.size, 23456);
    assert_eq!(seg.mode & 0o777, 0o600);
    assert_eq!(seg.nattch, Some(1));
    assert_eq!(seg.cpid, Some(std::process::id() as i32));
    assert!(!seg.is_removed());
    assert_eq!(seg.backing, Backing::sysv(key));
    drop((posix, sysv));
    assert!(Region::list_prefixed(scope.prefix())?.is_empty());
    Ok(())
}

fn inherited_fd() -> Result<(), Failed> {
    // A bad fd number is reported, not adopted.
    for raw in [-1, 1_000_000] {
        // SAFETY: neither number can be an open fd (negative, or above any
        // fd limit); the function must report EBADF before taking ownership.
        let result = unsafe { Region::from_inherited_fd(raw, &RegionOptions::new()) };
        assert_eq!(result.unwrap_err().errno(), Some(libc::EBADF));
    }
    // A good one gets FD_CLOEXEC back.
    let region = Region::create(&Backing::memfd("inherit"), &opts(4096))?;
    let dup = nix::unistd::dup(region.fd().expect("fd"))?;
    fcntl(&dup, FcntlArg::F_SETFD(FdFlag::empty()))?;
    let raw = std::os::fd::IntoRawFd::into_raw_fd(dup);
    // SAFETY: `raw` is a dup we own and give away here.
    let opened = unsafe { Region::from_inherited_fd(raw, &RegionOptions::new()) }?;
    let flags = FdFlag::from_bits_truncate(fcntl(opened.fd().expect("fd"), FcntlArg::F_GETFD)?);
    assert!(flags.contains(FdFlag::FD_CLOEXEC));
    assert!(!opened.is_creator());
    Ok(())
}

fn error_messages() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("ticks");
    let _region = Region::create(&Backing::posix(&name), &opts(4096))?;
    let err = assert_kind(
        Region::create(&Backing::posix(&name), &opts(4096)),
        ErrorKind::AlreadyExists,
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("create POSIX shm \"{name}\": already exists")),
        "{text}"
    );
    assert!(text.contains(&format!("ringway rm {name}")), "{text}");
    assert!(
        text.contains("cargo install --path crates/cli"),
        "the hint says where the tool comes from: {text}"
    );
    // `fn main() -> Result<(), Box<dyn Error>>` prints Debug: the same text.
    let boxed: Box<dyn std::error::Error> =
        Box::new(Region::create(&Backing::posix(&name), &opts(4096)).unwrap_err());
    assert_eq!(format!("{boxed:?}"), text);
    assert!(format!("{err:#?}").starts_with("Os {"), "{err:#?}");
    let source = std::error::Error::source(&err).expect("the OS error is the source");
    let io = source
        .downcast_ref::<std::io::Error>()
        .expect("an io::Error");
    assert_eq!(io.raw_os_error(), Some(libc::EEXIST));
    assert_eq!(err.op(), Op::Create);
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::AlreadyExists);
    Ok(())
}
