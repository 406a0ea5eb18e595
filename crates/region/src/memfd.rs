//! memfd: `memfd_create(MFD_CLOEXEC | MFD_ALLOW_SEALING)` + `ftruncate` +
//! seals, shared by handing the fd over.
//!
//! A memfd has no name in any namespace (the label is only shown in
//! `/proc/PID/fd` and `/proc/PID/maps`): it reaches another process by fd
//! inheritance across `exec` ([`Region::set_inheritable`]) or over a Unix
//! socket ([`fdpass`](crate::fdpass)), and the kernel frees it when the last
//! fd and mapping go, crash or not.
//!
//! The creator seals it with `F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`
//! (fcntl(2): "F_SEAL_SHRINK: If this seal is set, the file in question
//! cannot be reduced in size"; "F_SEAL_SEAL: If this seal is set, any further
//! call to fcntl() with F_ADD_SEALS fails with the error EPERM"), so no peer
//! can truncate it (the others would survive, thanks to the `SIGBUS` guard,
//! but read zeros where the shared contents were). The receiver checks
//! the seals with `F_GET_SEALS` before mapping.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};

use crate::error::{Error, Op};
use crate::map::{create_sized, open_sized};
use crate::options::{HugePages, RegionOptions};
use crate::{Backing, Owner, Region};

/// memfd_create(2): "The name ... is limited to 249 bytes, excluding the
/// terminating null byte."
const LABEL_MAX: usize = 249;

pub(crate) fn create(
    backing: &Backing,
    label: &str,
    opts: &RegionOptions,
) -> Result<Region, Error> {
    let reason = if label.contains('\0') {
        Some("the memfd label contains a NUL byte")
    } else if label.len() > LABEL_MAX {
        Some("the memfd label is longer than 249 bytes")
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(Error::InvalidName {
            op: Op::Create,
            what: backing.to_string(),
            reason,
        });
    }
    let size = opts.validate(Op::Create, backing)?;
    let mut flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    if opts.huge() == HugePages::Explicit {
        flags |= MFdFlags::MFD_HUGETLB;
    }
    let fd = memfd_create(label, flags)
        .map_err(|e| Error::os_create(backing, "memfd_create", e, opts))?;
    // Nothing to undo on failure: dropping the fd frees the memfd.
    let map = create_sized(backing, fd.as_fd(), size, opts, None, true)?;
    Ok(Region::created(map, backing, Owner::Fd(fd), opts))
}

pub(crate) fn from_fd(fd: OwnedFd, opts: &RegionOptions) -> Result<Region, Error> {
    let backing = backing_of(fd.as_fd());
    let min = opts.validate(Op::FromFd, &backing)?;
    let seals = match fcntl(fd.as_fd(), FcntlArg::F_GET_SEALS) {
        Ok(bits) => bits,
        // fcntl(2): "EINVAL ... the filesystem containing the inode referred to
        // by fd does not support sealing": no seals at all.
        Err(Errno::EINVAL) => 0,
        Err(e) => return Err(Error::os(Op::FromFd, &backing, "fcntl(F_GET_SEALS)", e)),
    };
    let needed = (SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW).bits();
    if seals & needed != needed && !opts.is_allow_unsealed() {
        return Err(Error::Unsealed {
            what: backing.to_string(),
            seals,
        });
    }
    let map = open_sized(Op::FromFd, &backing, fd.as_fd(), min, opts)?;
    Ok(Region::opened(map, backing, Owner::Fd(fd), opts))
}

/// # Safety
///
/// As [`Region::from_inherited_fd`].
pub(crate) unsafe fn from_inherited_fd(raw: RawFd, opts: &RegionOptions) -> Result<Region, Error> {
    let what = || format!("inherited fd {raw}");
    if raw < 0 {
        return Err(Error::os_on(
            Op::FromFd,
            what(),
            "fcntl(F_GETFD)",
            Errno::EBADF,
            None,
        ));
    }
    // SAFETY: F_GETFD only reads the fd's flags; on a closed fd it fails with
    // EBADF and we stop before taking ownership.
    if unsafe { libc::fcntl(raw, libc::F_GETFD) } == -1 {
        return Err(Error::os_on(
            Op::FromFd,
            what(),
            "fcntl(F_GETFD)",
            Errno::last(),
            None,
        ));
    }
    // SAFETY: the caller promises that `raw` is open and owned by nobody else
    // (it was inherited across exec, so nothing in this process uses it), and
    // F_GETFD just confirmed it is open.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // Do not pass it on to our own children unless asked again.
    set_cloexec(fd.as_fd(), true)
        .map_err(|e| Error::os_on(Op::FromFd, what(), "fcntl(F_SETFD)", e, None))?;
    from_fd(fd, opts)
}

/// Sets or clears `FD_CLOEXEC`.
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>, yes: bool) -> Result<(), Errno> {
    let flags = FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD)?);
    let flags = if yes {
        flags | FdFlag::FD_CLOEXEC
    } else {
        flags - FdFlag::FD_CLOEXEC
    };
    fcntl(fd, FcntlArg::F_SETFD(flags)).map(drop)
}

/// What a received fd is, from its `/proc/self/fd` link: a memfd shows as
/// `/memfd:LABEL (deleted)`; anything else is described by its path.
fn backing_of(fd: BorrowedFd<'_>) -> Backing {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    match link {
        Ok(path) => {
            let text = path.to_string_lossy();
            match text.strip_prefix("/memfd:") {
                Some(rest) => Backing::Memfd {
                    name: rest.strip_suffix(" (deleted)").unwrap_or(rest).to_owned(),
                },
                None => Backing::File { path },
            }
        }
        Err(_) => Backing::File {
            path: PathBuf::from(format!("fd {}", fd.as_raw_fd())),
        },
    }
}
