//! One [`Fixture`] per backing and per way of reaching a second process:
//! what the generic conformance suite needs to know about each.

use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

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
    all.extend(conformance::suite::<SysvByKey>());
    all.extend(conformance::suite::<SysvById>());
    all.extend(conformance::suite::<Anonymous>());
    all.extend(conformance::suite::<DevZero>());
    all.extend(conformance::suite::<MemfdInherited>());
    all.extend(conformance::suite::<MemfdSocket>());
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

/// SysV, opened by key in a re-executed process.
pub(crate) struct SysvByKey;

impl Fixture for SysvByKey {
    const NAME: &'static str = "sysv_key";
    const NAMED: bool = true;
    const HAS_FD: bool = false;
    const HUGE: Huge = Huge::Pool;

    fn backing(scope: &LeakScope) -> Backing {
        Backing::sysv(scope.sysv_key())
    }

    fn run_peer(region: &Region) {
        let Backing::SysV {
            key: SysvKey::Key(key),
        } = region.backing()
        else {
            unreachable!()
        };
        let size = region.len().to_string();
        spawn_role("open-sysv", &[("KEY", &key.to_string()), ("SIZE", &size)])
            .expect_success(TIMEOUT);
    }
}

/// SysV marked for removal right after attach, opened by shmid in a
/// re-executed process: the key is gone, the segment is not.
pub(crate) struct SysvById;

impl Fixture for SysvById {
    const NAME: &'static str = "sysv_id_removed_after_attach";
    const NAMED: bool = true;
    // The key is free again as soon as the first create removed it.
    const EXCLUSIVE: bool = false;
    const HAS_FD: bool = false;
    const HUGE: Huge = Huge::Pool;

    fn backing(scope: &LeakScope) -> Backing {
        Backing::sysv(scope.sysv_key())
    }

    fn base(opts: RegionOptions) -> RegionOptions {
        opts.remove_after_attach(true)
    }

    fn run_peer(region: &Region) {
        let shmid = region
            .sysv_id()
            .expect("a SysV region has a shmid")
            .to_string();
        let size = region.len().to_string();
        spawn_role("open-sysv", &[("SHMID", &shmid), ("SIZE", &size)]).expect_success(TIMEOUT);
    }

    fn reopen(region: &Region, opts: &RegionOptions) -> Result<Region, Error> {
        Region::open(&Backing::sysv_id(region.sysv_id().expect("shmid")), opts)
    }
}

/// `MAP_SHARED | MAP_ANONYMOUS`, shared with a forked child.
pub(crate) struct Anonymous;

impl Fixture for Anonymous {
    const NAME: &'static str = "anonymous";
    const NAMED: bool = false;
    const HAS_FD: bool = false;
    const HUGE: Huge = Huge::Pool;

    fn backing(_: &LeakScope) -> Backing {
        Backing::Anonymous
    }

    fn run_peer(region: &Region) {
        fork_child(|| peer_exchange(region)).expect_success(TIMEOUT);
    }
}

/// `/dev/zero`, shared with a forked child.
pub(crate) struct DevZero;

impl Fixture for DevZero {
    const NAME: &'static str = "dev_zero";
    const NAMED: bool = false;
    const HAS_FD: bool = false;
    const HUGE: Huge = Huge::Refused;

    fn backing(_: &LeakScope) -> Backing {
        Backing::DevZero
    }

    fn run_peer(region: &Region) {
        fork_child(|| peer_exchange(region)).expect_success(TIMEOUT);
    }
}

fn memfd_backing(scope: &LeakScope) -> Backing {
    // The label only has to be unique, to find the memfd in /proc/self.
    Backing::memfd(scope.posix_name("memfd").trim_start_matches('/'))
}

fn reopen_memfd(region: &Region, opts: &RegionOptions) -> Result<Region, Error> {
    let fd = region
        .fd()
        .expect("a memfd region has an fd")
        .try_clone_to_owned()
        .expect("dup");
    Region::from_fd(fd, opts)
}

/// memfd inherited across exec by a re-executed process.
pub(crate) struct MemfdInherited;

impl Fixture for MemfdInherited {
    const NAME: &'static str = "memfd_inherited";
    const NAMED: bool = false;
    const HAS_FD: bool = true;
    const HUGE: Huge = Huge::Pool;

    fn backing(scope: &LeakScope) -> Backing {
        memfd_backing(scope)
    }

    fn run_peer(region: &Region) {
        let fd = region.fd().expect("fd").as_raw_fd();
        // What a user does: make the fd inheritable, exec, make it private
        // again. (Children other tests spawn meanwhile inherit it too; they
        // just hold the memfd a little longer.)
        region.set_inheritable(true).expect("set_inheritable(true)");
        let child = RoleCommand::new("memfd-inherited")
            .env("FD", fd.to_string())
            .env("SIZE", region.len().to_string())
            .spawn();
        region
            .set_inheritable(false)
            .expect("set_inheritable(false)");
        child.expect("spawn").expect_success(TIMEOUT);
    }

    fn reopen(region: &Region, opts: &RegionOptions) -> Result<Region, Error> {
        reopen_memfd(region, opts)
    }
}

/// memfd sent over a Unix socket (`SCM_RIGHTS`) to a re-executed process.
pub(crate) struct MemfdSocket;

impl Fixture for MemfdSocket {
    const NAME: &'static str = "memfd_scm_rights";
    const NAMED: bool = false;
    const HAS_FD: bool = true;
    const HUGE: Huge = Huge::Pool;

    fn backing(scope: &LeakScope) -> Backing {
        memfd_backing(scope)
    }

    fn run_peer(region: &Region) {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        let child = RoleCommand::new("memfd-socket")
            .env("SOCK", theirs.as_raw_fd().to_string())
            .inherit_fd(theirs.as_fd())
            .spawn()
            .expect("spawn");
        drop(theirs);
        let size = region.len().to_string();
        fdpass::send_fd(ours.as_fd(), region.fd().expect("fd"), size.as_bytes()).expect("send_fd");
        child.expect_success(TIMEOUT);
    }

    fn reopen(region: &Region, opts: &RegionOptions) -> Result<Region, Error> {
        reopen_memfd(region, opts)
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
        let path: &Path = path;
        let size = region.len().to_string();
        spawn_role(
            "open-file",
            &[
                ("PATH", path.to_str().expect("utf-8 temp path")),
                ("SIZE", &size),
            ],
        )
        .expect_success(TIMEOUT);
    }
}
