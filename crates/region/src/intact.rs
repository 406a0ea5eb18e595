//! Whether the object still backs the whole mapping: the slow-path check behind
//! [`Region::check_intact`].
//!
//! The `SIGBUS` guard keeps a process alive when a peer truncates the object under its
//! mapping, but the two sides then diverge silently: this process reads and writes private
//! zero pages, the peers the object. The ring layer reads the guard's counter after every copy
//! ([`Region::fault_counter`]); this check catches the rest, every few milliseconds: a
//! truncation that this process has not touched yet (its size), and one that was undone by
//! growing the object back (the pages this process touched meanwhile are still private).

use nix::errno::Errno;
use nix::sys::stat::fstat;

use crate::error::{Error, Op};
use crate::{Owner, Region, sysv};

/// [`Region::check_intact`].
pub(crate) fn check(region: &Region) -> Result<(), Error> {
    let backing = &region.backing;
    let size = match &region.owner {
        // POSIX shm, memfd, file: the file's size.
        Owner::Fd(fd) => {
            let st = fstat(fd).map_err(|e| Error::os(Op::Check, backing, "fstat", e))?;
            Some(u64::try_from(st.st_size).unwrap_or(0))
        }
        // A SysV segment cannot be resized, but a removed one goes with its last detach; we are
        // attached, so it should still be there: check anyway.
        Owner::SysV(shmid) => match sysv::ipc_stat(*shmid) {
            Ok(ds) => Some(ds.shm_segsz as u64),
            // shmctl(2): "EIDRM shmid points to a removed identifier"; "EINVAL shmid is not a
            // valid identifier".
            Err(Errno::EIDRM | Errno::EINVAL) => None,
            Err(e) => return Err(Error::os(Op::Check, backing, "shmctl(IPC_STAT)", e)),
        },
        // Anonymous and /dev/zero memory has no object anyone else could resize.
        Owner::None => return Ok(()),
    };
    let mapped = region.len() as u64;
    let faults = region.truncation_faults();
    if faults == 0 && size.is_some_and(|size| size >= mapped) {
        return Ok(());
    }
    Err(Error::Truncated {
        what: backing.to_string(),
        mapped,
        size,
        faults,
    })
}
