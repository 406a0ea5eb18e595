//! What a re-executed second process does. Each role reads its arguments from
//! the environment and returns the exit code: 0 for success, 3 for a wrong
//! pattern, 4 for an error (printed to stderr, which the parent shows).

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::unistd::ftruncate;
use ringway_region::{Backing, Error, Region, RegionOptions, fdpass};
use ringway_testkit::harness::Role;

use crate::peer_exchange;

pub(crate) const ROLES: &[Role<'static>] = &[
    ("open-posix", open_posix),
    ("open-sysv", open_sysv),
    ("open-file", open_file),
    ("memfd-inherited", memfd_inherited),
    ("memfd-socket", memfd_socket),
    ("truncate-memfd", truncate_memfd),
];

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("role needs {key} in the environment"))
}

fn env_num<T: std::str::FromStr>(key: &str) -> T {
    env(key)
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number"))
}

/// The minimum size the creator announced.
fn opts() -> RegionOptions {
    RegionOptions::new().size(env_num("SIZE"))
}

fn exchange(region: Result<Region, Error>) -> i32 {
    match region {
        Ok(region) => {
            if region.is_creator() {
                eprintln!("peer: an opened region claims to be the creator");
                return 5;
            }
            peer_exchange(&region)
        }
        Err(e) => {
            eprintln!("peer: {e}");
            4
        }
    }
}

fn open_posix() -> i32 {
    exchange(Region::open(&Backing::posix(env("NAME")), &opts()))
}

fn open_sysv() -> i32 {
    let backing = match std::env::var("SHMID") {
        Ok(shmid) => Backing::sysv_id(shmid.parse().expect("SHMID")),
        Err(_) => Backing::sysv(env_num("KEY")),
    };
    exchange(Region::open(&backing, &opts()))
}

fn open_file() -> i32 {
    exchange(Region::open(&Backing::file(env("PATH")), &opts()))
}

fn memfd_inherited() -> i32 {
    // SAFETY: the parent passed this fd number across exec for us alone.
    exchange(unsafe { Region::from_inherited_fd(env_num("FD"), &opts()) })
}

fn inherited(key: &str) -> OwnedFd {
    // SAFETY: the parent kept this fd open across exec for this role alone;
    // nothing else in this process knows it.
    unsafe { OwnedFd::from_raw_fd(env_num(key)) }
}

fn memfd_socket() -> i32 {
    let sock = inherited("SOCK");
    let mut buf = [0u8; 32];
    let (fd, n) = match fdpass::recv_fd(sock.as_fd(), &mut buf) {
        Ok(got) => got,
        Err(e) => {
            eprintln!("peer: {e}");
            return 4;
        }
    };
    let size: usize = std::str::from_utf8(&buf[..n])
        .expect("utf-8")
        .parse()
        .expect("size");
    exchange(Region::from_fd(fd, &RegionOptions::new().size(size)))
}

/// A hostile peer: tries to shrink, grow and re-seal an inherited sealed
/// memfd. Exits 0 if the kernel refused all three with EPERM.
fn truncate_memfd() -> i32 {
    let fd = inherited("FD");
    let fd: BorrowedFd<'_> = fd.as_fd();
    let size: i64 = env_num("SIZE");
    let shrink = ftruncate(fd, 0);
    let grow = ftruncate(fd, size * 2);
    let unseal = fcntl(fd, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_WRITE));
    println!("shrink: {shrink:?}, grow: {grow:?}, add seal: {unseal:?}");
    let refused = |r: Result<_, Errno>| r.err() == Some(Errno::EPERM);
    if refused(shrink.map(drop)) && refused(grow.map(drop)) && refused(unseal.map(drop)) {
        0
    } else {
        6
    }
}
