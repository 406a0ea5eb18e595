//! System V shared memory: `shmget` + `shmat`, removed with `IPC_RMID`.
//!
//! A segment is named by a 32-bit key (given, derived with `ftok`, or
//! `IPC_PRIVATE`) and identified by a shmid. `IPC_RMID` removes the key at
//! once, but the segment itself lives on until the last process detaches;
//! until then Linux still lets a process attach it by shmid (shmctl(2):
//! "Linux permits a process to attach (shmat(2)) a shared memory segment
//! that has already been marked for deletion"). That is what
//! [`RegionOptions::remove_after_attach`] builds on: nothing is left behind
//! even when every process crashes.
//!
//! SysV permissions are not filtered by the umask, and a segment cannot be
//! resized, so an attached segment never causes `SIGBUS`.

use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;

use crate::error::{Error, ErrorKind, Op};
use crate::map::Mapping;
use crate::options::{HugePages, RegionOptions};
use crate::{Backing, Owner, Region, SysvKey, Undo};

/// The key to pass to `shmget` for `key`, or an error for keys that cannot
/// be used for `op`. [`SysvKey::Id`] is handled by the callers.
fn resolve_key(op: Op, backing: &Backing, key: &SysvKey) -> Result<libc::key_t, Error> {
    let invalid = |reason| Error::InvalidName {
        op,
        what: backing.to_string(),
        reason,
    };
    match key {
        SysvKey::Key(0) => Err(invalid(
            "key 0 is IPC_PRIVATE; use Backing::sysv_private() for that",
        )),
        SysvKey::Key(key) => Ok(*key),
        SysvKey::Ftok { id: 0, .. } => Err(invalid("ftok needs a non-zero id (ftok(3))")),
        SysvKey::Ftok { path, id } => {
            let path = CString::new(path.as_os_str().as_bytes())
                .map_err(|_| invalid("the ftok path contains a NUL byte"))?;
            // SAFETY: `path` is a valid NUL-terminated string that outlives the
            // call; ftok only stat(2)s it.
            let key = unsafe { libc::ftok(path.as_ptr(), libc::c_int::from(*id)) };
            if key == -1 {
                return Err(Error::os(op, backing, "ftok", Errno::last()));
            }
            Ok(key)
        }
        SysvKey::Private if op == Op::Create => Ok(libc::IPC_PRIVATE),
        SysvKey::Private => Err(Error::unsupported(
            op,
            backing,
            "backing",
            "an IPC_PRIVATE segment has no key to open it by; open it by shmid with \
             Backing::sysv_id(region.sysv_id())",
        )),
        SysvKey::Id(_) => unreachable!("callers handle SysvKey::Id"),
    }
}

pub(crate) fn create(
    backing: &Backing,
    key: &SysvKey,
    opts: &RegionOptions,
) -> Result<Region, Error> {
    let size = opts.validate(Op::Create, backing)?;
    let k = resolve_key(Op::Create, backing, key)?;
    let explicit = opts.huge() == HugePages::Explicit;
    let fail = |call, errno| Error::os_create(backing, call, errno, opts);
    // Only the permission bits: `validate` refused anything else.
    let mut flags = libc::IPC_CREAT | libc::IPC_EXCL | opts.mode_bits() as libc::c_int;
    if explicit {
        flags |= libc::SHM_HUGETLB;
    }
    let len = size as usize;
    // SAFETY: shmget takes plain integers and touches no memory of ours.
    let shmid = unsafe { libc::shmget(k, len, flags) };
    if shmid == -1 {
        let errno = Errno::last();
        if errno == Errno::EINVAL {
            // shmget(2): "EINVAL A new segment was to be created and size is
            // less than SHMMIN or greater than SHMMAX."
            return Err(Error::invalid_size(
                Op::Create,
                backing,
                size,
                "outside SHMMIN..SHMMAX (see /proc/sys/kernel/shmmax)".to_owned(),
            ));
        }
        return Err(fail("shmget", errno));
    }
    // From here on, a failure removes the segment again.
    let undo = Undo::new(|| {
        let _ = rmid(shmid);
    });
    let map = Mapping::shmat(shmid, len, false).map_err(|e| fail("shmat", e))?;
    let removed = opts.is_remove_after_attach();
    if removed {
        rmid(shmid).map_err(|e| fail("shmctl(IPC_RMID)", e))?;
    }
    map.apply(opts, false).map_err(|(call, e)| fail(call, e))?;
    undo.disarm();
    let region = Region::created(map, backing, Owner::SysV(shmid), opts);
    region.mark_removed(removed);
    Ok(region)
}

pub(crate) fn open(
    backing: &Backing,
    key: &SysvKey,
    opts: &RegionOptions,
) -> Result<Region, Error> {
    let op = Op::Open;
    let min = opts.validate(op, backing)?;
    let read_only = opts.is_read_only();
    let fail = |call, errno| Error::os(op, backing, call, errno);
    let shmid = match key {
        SysvKey::Id(id) => *id,
        key => {
            let k = resolve_key(op, backing, key)?;
            // shmget(2) with size 0 and no IPC_CREAT finds an existing segment;
            // the permission bits ask for the access we need, so a segment we
            // may not use is EACCES here already.
            let want = if read_only { 0o400 } else { 0o600 };
            // SAFETY: plain integers, no memory of ours.
            let shmid = unsafe { libc::shmget(k, 0, want) };
            if shmid == -1 {
                return Err(fail("shmget", Errno::last()));
            }
            shmid
        }
    };
    let stat = ipc_stat(shmid).map_err(|e| match (key, e) {
        // shmctl(2): "EINVAL shmid is not a valid identifier"; "EIDRM shmid
        // points to a removed identifier".
        (SysvKey::Id(_), Errno::EINVAL | Errno::EIDRM) => {
            let mut err = fail("shmctl(IPC_STAT)", e);
            if let Error::Os { kind, .. } = &mut err {
                *kind = ErrorKind::NotFound;
            }
            err
        }
        _ => fail("shmctl(IPC_STAT)", e),
    })?;
    let size = stat.shm_segsz as u64;
    if size == 0 {
        return Err(Error::Empty {
            op,
            what: backing.to_string(),
        });
    }
    if size < min {
        return Err(Error::TooSmall {
            op,
            what: backing.to_string(),
            size,
            required: min,
        });
    }
    let map = Mapping::shmat(shmid, stat.shm_segsz, read_only).map_err(|e| fail("shmat", e))?;
    let removed = opts.is_remove_after_attach();
    if removed {
        rmid(shmid).map_err(|e| fail("shmctl(IPC_RMID)", e))?;
    }
    map.apply(opts, read_only)
        .map_err(|(call, e)| fail(call, e))?;
    let region = Region::opened(map, backing.clone(), Owner::SysV(shmid), opts);
    region.mark_removed(removed);
    Ok(region)
}

/// Removes the segment named by `backing` (by key or by shmid), for
/// [`Region::remove`].
pub(crate) fn remove(backing: &Backing, key: &SysvKey) -> Result<(), Error> {
    let shmid = match key {
        SysvKey::Id(id) => *id,
        key => {
            let k = resolve_key(Op::Unlink, backing, key)?;
            // SAFETY: plain integers, no memory of ours.
            let shmid = unsafe { libc::shmget(k, 0, 0) };
            if shmid == -1 {
                return Err(Error::os(Op::Unlink, backing, "shmget", Errno::last()));
            }
            shmid
        }
    };
    unlink(backing, shmid)
}

/// `IPC_RMID` for [`Region::unlink`]; an already removed id is not an error.
pub(crate) fn unlink(backing: &Backing, shmid: i32) -> Result<(), Error> {
    match rmid(shmid) {
        Ok(()) => Ok(()),
        Err(e) => Err(Error::os(Op::Unlink, backing, "shmctl(IPC_RMID)", e)),
    }
}

/// `shmctl(shmid, IPC_RMID)`: the key goes now, the segment when the last
/// process detaches.
fn rmid(shmid: i32) -> Result<(), Errno> {
    // SAFETY: IPC_RMID ignores the buffer argument (shmctl(2): "The argument
    // buf is ignored"), so a null pointer is fine.
    let ret = unsafe { libc::shmctl(shmid, libc::IPC_RMID, std::ptr::null_mut()) };
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// `shmctl(shmid, IPC_STAT)`.
pub(crate) fn ipc_stat(shmid: i32) -> Result<libc::shmid_ds, Errno> {
    let mut ds = MaybeUninit::<libc::shmid_ds>::zeroed();
    // SAFETY: `ds` is a writable, properly aligned shmid_ds; on success the
    // kernel fills it ("IPC_STAT: Copy information from the kernel data
    // structure associated with shmid into the shmid_ds structure pointed to
    // by buf").
    let ret = unsafe { libc::shmctl(shmid, libc::IPC_STAT, ds.as_mut_ptr()) };
    if ret == -1 {
        return Err(Errno::last());
    }
    // SAFETY: zero-initialised and filled by a successful IPC_STAT; every
    // field is a plain integer, valid for any bits.
    Ok(unsafe { ds.assume_init() })
}
