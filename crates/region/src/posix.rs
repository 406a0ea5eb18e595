//! POSIX shared memory: `shm_open` + `ftruncate` + `mmap(MAP_SHARED)`.
//!
//! On Linux a POSIX shm object is a file in the tmpfs mounted at `/dev/shm`
//! (glibc's `shm_open("/x")` opens `/dev/shm/x`), so it outlives every
//! process until `shm_unlink`, and anyone who knows the name and has the
//! permission can open it. The creator removes the name on drop unless told
//! to persist; an opener never does.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman;
use nix::sys::stat::{FileStat, Mode, fstat, lstat};

use crate::error::{Error, Op};
use crate::file::same_file;
use crate::list::SHM_DIR;
use crate::map::{access_mode, create_sized, open_sized};
use crate::options::RegionOptions;
use crate::{Backing, Owner, Region, Undo};

/// The longest name after the leading slash (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// Checks a POSIX shm name before any system call: exactly one leading `/`,
/// no other `/`, not empty after it, not `.` or `..`, no NUL, at most
/// `NAME_MAX` bytes after the slash.
pub(crate) fn validate_name(op: Op, name: &str) -> Result<(), Error> {
    let reason = if !name.starts_with('/') {
        Some("a POSIX shm name starts with '/', e.g. \"/ticks\"")
    } else if name.len() == 1 {
        Some("the name is empty after the '/'")
    } else if name[1..].contains('/') {
        Some("a POSIX shm name has no '/' after the leading one")
    } else if name == "/." || name == "/.." {
        Some("\".\" and \"..\" are not names")
    } else if name.contains('\0') {
        Some("the name contains a NUL byte")
    } else if name.len() - 1 > NAME_MAX {
        Some("the name is longer than NAME_MAX (255) bytes after the '/'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName {
            op,
            what: Backing::Posix {
                name: name.to_owned(),
            }
            .to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

pub(crate) fn create(backing: &Backing, name: &str, opts: &RegionOptions) -> Result<Region, Error> {
    validate_name(Op::Create, name)?;
    let size = opts.validate(Op::Create, backing)?;
    let mode = Mode::from_bits_truncate(opts.mode_bits());
    // shm_open(3): "O_EXCL: If O_CREAT was also specified, and a shared memory
    // object with the given name already exists, return an error." glibc adds
    // O_CLOEXEC ("The FD_CLOEXEC flag is set for the file descriptor").
    let fd = mman::shm_open(name, OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR, mode)
        .map_err(|e| Error::os(Op::Create, backing, "shm_open", e))?;
    // From here on, a failure removes the name again: nothing is left behind.
    let undo = Undo::new(|| {
        let _ = mman::shm_unlink(name);
    });
    let map = create_sized(backing, fd.as_fd(), size, opts, Some(mode), false)?;
    undo.disarm();
    Ok(Region::created(map, backing, Owner::Fd(fd), opts))
}

pub(crate) fn open(backing: &Backing, name: &str, opts: &RegionOptions) -> Result<Region, Error> {
    validate_name(Op::Open, name)?;
    let min = opts.validate(Op::Open, backing)?;
    let access = access_mode(opts);
    let fd = mman::shm_open(name, access, Mode::empty())
        .map_err(|e| Error::os(Op::Open, backing, "shm_open", e))?;
    let map = open_sized(Op::Open, backing, fd.as_fd(), min, opts)?;
    Ok(Region::opened(map, backing.clone(), Owner::Fd(fd), opts))
}

/// `shm_unlink(name)` if `name` still belongs to the object open as `fd`, compared by device
/// and inode; a name that now belongs to another object is left alone ([`Error::Replaced`]).
/// See [`Region::unlink`] for the race that remains.
pub(crate) fn unlink_own(backing: &Backing, name: &str, fd: BorrowedFd<'_>) -> Result<(), Error> {
    validate_name(Op::Unlink, name)?;
    let fail = |call, errno| Error::os(Op::Unlink, backing, call, errno);
    let ours = fstat(fd).map_err(|e| fail("fstat", e))?;
    let there = match stat_name(name) {
        Ok(there) => there,
        // open(2): "ELOOP ... the trailing component ... is a symbolic link" (O_NOFOLLOW);
        // "ENXIO ... The file is a UNIX domain socket": neither can be our object.
        Err((_, Errno::ELOOP | Errno::ENXIO)) => return Err(replaced(backing)),
        Err((call, errno)) => return Err(fail(call, errno)),
    };
    if !same_file(&ours, &there) {
        return Err(replaced(backing));
    }
    unlink(backing, name)
}

fn replaced(backing: &Backing) -> Error {
    Error::Replaced {
        what: backing.to_string(),
    }
}

/// What `name` names now: `shm_open` resolves it exactly as `shm_unlink` will, read-only (we
/// only `fstat` it), `O_NOFOLLOW` (glibc adds it too: a symbolic link is never ours) and
/// `O_NONBLOCK` (a FIFO put in its place must not block us). If we may not read it (our own
/// object too, when its creator gave it mode 0), the directory entry in `/dev/shm` (where glibc
/// keeps the names, and [`Region::list`] reads them) is compared instead, which needs no
/// permission on the object. Returns the failing call with its error.
fn stat_name(name: &str) -> Result<FileStat, (&'static str, Errno)> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
    match mman::shm_open(name, flags, Mode::empty()) {
        Ok(fd) => fstat(&fd).map_err(|e| ("fstat", e)),
        Err(Errno::EACCES) => lstat(&Path::new(SHM_DIR).join(&name[1..])).map_err(|e| ("lstat", e)),
        Err(e) => Err(("shm_open", e)),
    }
}

/// `shm_unlink(name)`: the name goes now, existing mappings and fds stay. For
/// [`Region::remove`], which removes by name.
pub(crate) fn unlink(backing: &Backing, name: &str) -> Result<(), Error> {
    validate_name(Op::Unlink, name)?;
    mman::shm_unlink(name).map_err(|e| Error::os(Op::Unlink, backing, "shm_unlink", e))
}
