//! One [`Fixture`] per backing and per way of reaching a second process:
//! what the generic conformance suite needs to know about each.

use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;

use libtest_mimic::Trial;
use ringway_region::{Backing, Error, Region, RegionOptions, SysvKey, fdpass};
use ringway_testkit::{LeakScope, RoleCommand, fork_child, spawn_role};

use crate::{TIMEOUT, conformance, peer_exchange};

/// What explicit huge pages do on a backing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Huge {
    /// Refused before anything is created ([`ErrorKind::Unsupported`]).
    Refused,
    /// Works, or fails with `HugePagesUnavailable` when the pool is empty.
    Pool,
}

/// A backing, seen by the conformance suite.
pub(crate) trait Fixture: 'static {
    /// The name in test names.
    const NAME: &'static str;
    /// Whether the object has a name that outlives its creator (so persist,
    /// exclusive create and open by name apply).
    const NAMED: bool;
    /// Whether a second create of the same backing fails with AlreadyExists.
    const EXCLUSIVE: bool = Self::NAMED;
    /// Whether [`Region::fd`] is `Some`.
    const HAS_FD: bool;
    /// What explicit huge pages do.
    const HUGE: Huge;

    /// A fresh backing whose names the scope watches.
    fn backing(scope: &LeakScope) -> Backing;

    /// Options every create of this fixture adds.
    fn base(opts: RegionOptions) -> RegionOptions {
        opts
    }

    /// Hands `region` to a second process, which checks the creator's pattern
    /// and writes its own; returns when it exited successfully.
    fn run_peer(region: &Region);

    /// Maps the same object again in this process, the way a peer would.
    fn reopen(region: &Region, opts: &RegionOptions) -> Result<Region, Error> {
        Region::open(region.backing(), opts)
    }
}

pub(crate) fn all_suites() -> Vec<Trial> {
    let mut all = Vec::new();
    all.extend(conformance::suite::<Posix>());
    all.extend(conformance::suite::<Sysv<false>>());
    all.extend(conformance::suite::<Sysv<true>>());
    all.extend(conformance::suite::<Forked<false>>());
    all.extend(conformance::suite::<Forked<true>>());
    all.extend(conformance::suite::<Memfd<false>>());
    all.extend(conformance::suite::<Memfd<true>>());
    all.extend(conformance::suite::<File>());
    all
}

/// POSIX shm, opened by name in a re-executed process.
pub(crate) struct Posix;

impl Fixture for Posix {
    const NAME: &'static str = "posix";
    const NAMED: bool = true;
    const HAS_FD: bool = true;
    const HUGE: Huge = Huge::Refused;

    fn backing(scope: &LeakScope) -> Backing {
        Backing::posix(scope.posix_name("conf"))
    }

    fn run_peer(region: &Region) {
        let Backing::Posix { name } = region.backing() else {
            unreachable!()
        };
        let size = region.len().to_string();
        spawn_role("open-posix", &[("NAME", name), ("SIZE", &size)]).expect_success(TIMEOUT);
    }
}

/// SysV, opened in a re-executed process by key, or (`BY_ID`) marked for
/// removal right after attach and opened by shmid: the key is gone at once,
/// the segment only with its last detach.
pub(crate) struct Sysv<const BY_ID: bool>;

impl<const BY_ID: bool> Fixture for Sysv<BY_ID> {
    const NAME: &'static str = if BY_ID {
        "sysv_id_removed_after_attach"
    } else {
        "sysv_key"
    };
    const NAMED: bool = true;
    // A removed key is free again as soon as the first create removed it.
    const EXCLUSIVE: bool = !BY_ID;
    const HAS_FD: bool = false;
    const HUGE: Huge = Huge::Pool;

    fn backing(scope: &LeakScope) -> Backing {
        Backing::sysv(scope.sysv_key())
    }

    fn base(opts: RegionOptions) -> RegionOptions {
        if BY_ID {
            opts.remove_after_attach(true)
        } else {
            opts
        }
    }

    fn run_peer(region: &Region) {
        let size = region.len().to_string();
        let (var, value) = match region.backing() {
            _ if BY_ID => ("SHMID", region.sysv_id().expect("shmid")),
            Backing::SysV {
                key: SysvKey::Key(key),
            } => ("KEY", *key),
            other => unreachable!("{other}"),
        };
        spawn_role("open-sysv", &[(var, &value.to_string()), ("SIZE", &size)])
            .expect_success(TIMEOUT);
    }

    fn reopen(region: &Region, opts: &RegionOptions) -> Result<Region, Error> {
        match region.sysv_id() {
            Some(shmid) if BY_ID => Region::open(&Backing::sysv_id(shmid), opts),
            _ => Region::open(region.backing(), opts),
        }
    }
}

/// `MAP_SHARED | MAP_ANONYMOUS`, or (`DEV_ZERO`) `/dev/zero`, shared with a
/// forked child.
pub(crate) struct Forked<const DEV_ZERO: bool>;

impl<const DEV_ZERO: bool> Fixture for Forked<DEV_ZERO> {
    const NAME: &'static str = if DEV_ZERO { "dev_zero" } else { "anonymous" };
    const NAMED: bool = false;
    const HAS_FD: bool = false;
    const HUGE: Huge = if DEV_ZERO { Huge::Refused } else { Huge::Pool };

    fn backing(_: &LeakScope) -> Backing {
        if DEV_ZERO {
            Backing::DevZero
        } else {
            Backing::Anonymous
        }
    }

    fn run_peer(region: &Region) {
        fork_child(|| peer_exchange(region)).expect_success(TIMEOUT);
    }
}

/// memfd handed to a re-executed process: inherited across exec, or
/// (`BY_SOCKET`) sent over a Unix socket with `SCM_RIGHTS`.
pub(crate) struct Memfd<const BY_SOCKET: bool>;

impl<const BY_SOCKET: bool> Fixture for Memfd<BY_SOCKET> {
    const NAME: &'static str = if BY_SOCKET {
        "memfd_scm_rights"
    } else {
        "memfd_inherited"
    };
    const NAMED: bool = false;
    const HAS_FD: bool = true;
    const HUGE: Huge = Huge::Pool;

    fn backing(scope: &LeakScope) -> Backing {
        // The label only has to be unique, to find the memfd in /proc/self.
        Backing::memfd(scope.posix_name("memfd").trim_start_matches('/'))
    }

    fn run_peer(region: &Region) {
        let fd = region.fd().expect("a memfd region has an fd");
        let size = region.len().to_string();
        if BY_SOCKET {
            let (ours, theirs) = UnixStream::pair().expect("socketpair");
            let child = RoleCommand::new("memfd-socket")
                .env("SOCK", theirs.as_raw_fd().to_string())
                .inherit_fd(theirs.as_fd())
                .spawn()
                .expect("spawn");
            drop(theirs);
            fdpass::send_fd(ours.as_fd(), fd, size.as_bytes()).expect("send_fd");
            child.expect_success(TIMEOUT);
        } else {
            // What a user does: make the fd inheritable, exec, make it
            // private again. (Children other tests spawn meanwhile inherit it
            // too; they just hold the memfd a little longer.)
            region.set_inheritable(true).expect("set_inheritable(true)");
            let child = RoleCommand::new("memfd-inherited")
                .env("FD", fd.as_raw_fd().to_string())
                .env("SIZE", size)
                .spawn();
            region
                .set_inheritable(false)
                .expect("set_inheritable(false)");
            child.expect("spawn").expect_success(TIMEOUT);
        }
    }

    fn reopen(region: &Region, opts: &RegionOptions) -> Result<Region, Error> {
        let fd = region.fd().expect("fd").try_clone_to_owned().expect("dup");
        Region::from_fd(fd, opts)
    }
}

/// A file, opened by path in a re-executed process.
pub(crate) struct File;

impl Fixture for File {
    const NAME: &'static str = "file";
    const NAMED: bool = true;
    const HAS_FD: bool = true;
    // The temporary directory is not on hugetlbfs.
    const HUGE: Huge = Huge::Refused;

    fn backing(scope: &LeakScope) -> Backing {
        Backing::file(scope.temp_path("conf"))
    }

    fn run_peer(region: &Region) {
        let Backing::File { path } = region.backing() else {
            unreachable!()
        };
        let path = path.to_str().expect("utf-8 temp path");
        let size = region.len().to_string();
        spawn_role("open-file", &[("PATH", path), ("SIZE", &size)]).expect_success(TIMEOUT);
    }
}
