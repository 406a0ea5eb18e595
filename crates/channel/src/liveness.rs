//! How a channel tells a live party from a dead one, whatever pid namespace it lives in.
//!
//! A pid only means something in the pid namespace it was read in, and containers that share
//! `/dev/shm` (two containers of a pod, `unshare --pid`) do not share one. So every endpoint
//! of a channel with an fd holds a token the kernel releases when its process dies, whatever
//! its namespace: an open-file-description read lock (`F_OFD_SETLK`) on byte `index` of the
//! shared object, where `index` is its registration entry. It takes the lock through an open
//! file description of its own (`/proc/self/fd/N` opened again), so that nothing it shares
//! with other processes (an fd inherited across `fork`, or received over a socket) holds it,
//! and it takes it *before* the entry, so no checker ever sees the entry without it.
//!
//! The verdict ([`LockLiveness::alive`]): a party registered in this process's pid namespace
//! (when this process's `/proc` is its own) is judged by its pid and start time (exact, and it also catches a dead process whose lock a
//! forked child still holds through an inherited fd); a party from another namespace is alive
//! while its byte is locked. Anonymous and `/dev/zero` channels, which have no fd, carry a
//! companion memfd for the locks, inherited by the children they are shared with. System V
//! segments have neither: they use the pid alone ([`PidLiveness`]), and a party in another
//! namespace is taken as alive.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::sys::stat::Mode;
use ringway_ring::{Liveness, Party, PidLiveness, Token, is_alive, pid_judgeable};

/// The byte the creator of a named channel locks while it has the channel open.
pub(crate) const CREATOR_BYTE: u32 = 65536;

/// Liveness by open-file-description locks on one file (see the module docs).
#[derive(Debug)]
pub(crate) struct LockLiveness {
    /// The object the locks are on. Its own open file description holds no lock, so a query
    /// through it sees every token, this process's included.
    file: Arc<OwnedFd>,
}

impl LockLiveness {
    pub(crate) fn new(file: Arc<OwnedFd>) -> LockLiveness {
        LockLiveness { file }
    }

    /// Whether some open file description holds a lock on `byte`.
    pub(crate) fn locked(&self, byte: u32) -> bool {
        let mut query = flock(libc::F_WRLCK, byte);
        match fcntl(self.file.as_fd(), FcntlArg::F_OFD_GETLK(&mut query)) {
            Ok(_) => i32::from(query.l_type) != libc::F_UNLCK,
            // A query that fails says nothing: never declare a party dead for lack of an answer.
            Err(_) => true,
        }
    }

    /// Takes a read lock on `byte` through a new open file description of the object.
    pub(crate) fn lock(&self, byte: u32) -> Result<OwnedFd, String> {
        let fd = reopen(self.file.as_fd())?;
        let lock = flock(libc::F_RDLCK, byte);
        fcntl(fd.as_fd(), FcntlArg::F_OFD_SETLK(&lock))
            .map_err(|e| format!("fcntl(F_OFD_SETLK) on byte {byte}: {e}"))?;
        Ok(fd)
    }

    /// The verdict for a party registered from `pidns` with this pid and start time, and a
    /// lock on `byte`.
    pub(crate) fn verdict(&self, party: &Party, byte: u32) -> bool {
        if pid_judgeable(party.pidns) {
            is_alive(party.pid, party.start_time)
        } else {
            self.locked(byte)
        }
    }
}

impl Liveness for LockLiveness {
    fn alive(&self, party: &Party) -> bool {
        self.verdict(party, party.index)
    }

    fn token(&self, index: u32) -> Result<Option<Token>, String> {
        Ok(Some(Box::new(self.lock(index)?)))
    }

    fn creator_alive(&self, party: &Party) -> bool {
        self.verdict(party, CREATOR_BYTE)
    }
}

/// The byte a process taking over a stale channel write-locks in the old object while it
/// checks, removes and re-creates the name, so two takers never interleave (see `takeover`).
pub(crate) const TAKEOVER_BYTE: u32 = 65537;

/// Takes an exclusive (write) lock on `byte` of the object behind `fd`, without waiting,
/// through a new open file description: `Ok(None)` if another one holds a lock there.
pub(crate) fn try_lock_exclusive(fd: BorrowedFd<'_>, byte: u32) -> Result<Option<OwnedFd>, String> {
    let fd = reopen_with(fd, OFlag::O_RDWR)?;
    let lock = flock(libc::F_WRLCK, byte);
    match fcntl(fd.as_fd(), FcntlArg::F_OFD_SETLK(&lock)) {
        Ok(_) => Ok(Some(fd)),
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => Ok(None),
        Err(e) => Err(format!("fcntl(F_OFD_SETLK, F_WRLCK) on byte {byte}: {e}")),
    }
}

/// A new open file description of the object behind `fd`.
fn reopen(fd: BorrowedFd<'_>) -> Result<OwnedFd, String> {
    reopen_with(fd, OFlag::O_RDONLY)
}

fn reopen_with(fd: BorrowedFd<'_>, access: OFlag) -> Result<OwnedFd, String> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    open(path.as_str(), access | OFlag::O_CLOEXEC, Mode::empty())
    .map_err(|e| {
        format!("open({path}): {e} (a liveness lock needs its own open file description; is /proc mounted?)")
    })
}

fn flock(kind: libc::c_int, byte: u32) -> libc::flock {
    // SAFETY: `flock` is a plain C struct; all-zero is a valid value for every field.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = libc::off_t::from(byte);
    lock.l_len = 1;
    lock
}

/// The liveness for a region: locks on its fd, on `companion` for channels without one, or
/// the pid alone for System V.
pub(crate) fn for_fd(fd: Option<BorrowedFd<'_>>) -> Result<Arc<dyn Liveness>, String> {
    match fd {
        Some(fd) => {
            let file = fd
                .try_clone_to_owned()
                .map_err(|e| format!("dup of the segment fd: {e}"))?;
            Ok(Arc::new(LockLiveness::new(Arc::new(file))))
        }
        None => Ok(Arc::new(PidLiveness)),
    }
}

/// A companion memfd for the liveness locks of a channel that has no fd of its own
/// (anonymous and `/dev/zero` memory, shared by `fork`): children inherit it with the mapping.
pub(crate) fn companion() -> Result<OwnedFd, String> {
    nix::sys::memfd::memfd_create(c"ringway-liveness", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| format!("memfd_create for the liveness locks: {e}"))
}
