//! A file anywhere: `open(O_CREAT | O_EXCL | O_NOFOLLOW)` + `ftruncate` +
//! `mmap(MAP_SHARED)`.
//!
//! On tmpfs this is the same as POSIX shm with a path of one's choosing; on
//! hugetlbfs it gives explicit huge pages; on a disk filesystem the kernel
//! writes the pages back to the file now and then (which costs I/O, but
//! keeps the contents across reboots). The creator unlinks the path on drop
//! unless persisted, after checking that the path still names its own file.
//!
//! Symbolic links are refused on create and open (`O_NOFOLLOW`, open(2):
//! "If the trailing component (i.e., basename) of pathname is a symbolic
//! link, then the open fails, with the error ELOOP"), so a shared directory
//! cannot be used to redirect the mapping to another file.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use nix::fcntl::{OFlag, open as open_path};
use nix::sys::stat::{FileStat, Mode, fstat, lstat};
use nix::unistd::unlink as unlink_path;

use crate::error::{Error, Op};
use crate::map::{access_mode, create_sized, open_sized, require_hugetlbfs};
use crate::options::{HugePages, RegionOptions};
use crate::{Backing, Owner, Region, Undo};

pub(crate) fn create(
    backing: &Backing,
    path: &Path,
    opts: &RegionOptions,
) -> Result<Region, Error> {
    let size = opts.validate(Op::Create, backing)?;
    let mode = Mode::from_bits_truncate(opts.mode_bits());
    let flags =
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = open_path(path, flags, mode).map_err(|e| Error::os(Op::Create, backing, "open", e))?;
    // From here on, a failure unlinks the file again.
    let undo = Undo::new(|| {
        let _ = unlink_path(path);
    });
    if opts.huge() == HugePages::Explicit {
        require_hugetlbfs(Op::Create, backing, fd.as_fd())?;
    }
    let map = create_sized(backing, fd.as_fd(), size, opts, Some(mode), false)?;
    undo.disarm();
    Ok(Region::created(map, backing, Owner::Fd(fd), opts))
}

pub(crate) fn open(backing: &Backing, path: &Path, opts: &RegionOptions) -> Result<Region, Error> {
    let min = opts.validate(Op::Open, backing)?;
    let access = access_mode(opts);
    // O_NONBLOCK so that a FIFO at the path does not block the open; it has
    // no effect on regular files, and fstat then refuses the FIFO.
    let flags = access | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let fd = open_path(path, flags, Mode::empty())
        .map_err(|e| Error::os(Op::Open, backing, "open", e))?;
    let map = open_sized(Op::Open, backing, fd.as_fd(), min, opts)?;
    Ok(Region::opened(map, backing.clone(), Owner::Fd(fd), opts))
}

/// Unlinks `path` if it still names the file open as `fd`, compared by device and inode
/// (`lstat`, so a symbolic link put in its place is not followed); a path that now names
/// another file (ours was removed and the name reused) is left alone ([`Error::Replaced`]).
/// See [`Region::unlink`] for the race that remains.
pub(crate) fn unlink_own(backing: &Backing, path: &Path, fd: BorrowedFd<'_>) -> Result<(), Error> {
    let fail = |call, errno| Error::os(Op::Unlink, backing, call, errno);
    let ours = fstat(fd).map_err(|e| fail("fstat", e))?;
    let there = lstat(path).map_err(|e| fail("lstat", e))?;
    if !same_file(&ours, &there) {
        return Err(Error::Replaced {
            what: backing.to_string(),
        });
    }
    unlink(backing, path)
}

/// Whether two `stat` results describe the same file: the same inode on the same device.
pub(crate) fn same_file(a: &FileStat, b: &FileStat) -> bool {
    (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
}

/// `unlink(path)`; for [`Region::remove`], which removes by name.
pub(crate) fn unlink(backing: &Backing, path: &Path) -> Result<(), Error> {
    unlink_path(path).map_err(|e| Error::os(Op::Unlink, backing, "unlink", e))
}
