//! The mapping itself: `mmap`/`shmat` in, `munmap`/`shmdt` out, and what is
//! done to it afterwards (`madvise`, `mlock`). Shared by every backing.

use std::num::NonZeroUsize;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, SealFlag, fcntl, posix_fallocate};
use nix::sys::mman::{self, MapFlags, MmapAdvise, ProtFlags};
use nix::sys::stat::{Mode, fchmod, fstat};
use nix::sys::statfs::{HUGETLBFS_MAGIC, fstatfs};
use nix::unistd::ftruncate;

use crate::Backing;
use crate::error::{Error, Op};
use crate::options::{HugePages, RegionOptions};
use crate::sigbus::{self, Guard};

/// How a [`Mapping`] is undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unmap {
    /// `munmap(ptr, len)`.
    Munmap,
    /// `shmdt(ptr)`.
    Shmdt,
}

/// A shared mapping this process owns.
///
/// # Invariants
///
/// - `ptr .. ptr + len` is one mapping made by `mmap` (`MAP_SHARED`, no
///   `MAP_FIXED`) or `shmat`, page-aligned, `len > 0`;
/// - nothing else unmaps it: only `Drop` does, once;
/// - no Rust reference is ever made over it (another process may write it at
///   any time), only raw pointers.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    unmap: Unmap,
    /// Whether a peer can truncate the object, and if so the SIGBUS guard's entry.
    watch: Watch,
}

/// What the SIGBUS guard does for a mapping.
#[derive(Debug)]
enum Watch {
    /// Nothing to guard: the object cannot shrink (SysV, anonymous, `/dev/zero`, a memfd
    /// sealed with `F_SEAL_SHRINK`).
    NotNeeded,
    /// The object can shrink, and the guard watches the mapping.
    Guarded(Guard),
    /// The object can shrink, but the guard could not be set up (`sigaction` failed, or there
    /// was no memory to grow the table): touching a truncated page kills the process.
    Unguarded,
}

// SAFETY: a `Mapping` is a range of this process's address space, not tied to
// the thread that made it; `munmap`/`shmdt` may be called from any thread.
unsafe impl Send for Mapping {}
// SAFETY: `&Mapping` only hands out the pointer and length; every access to
// the memory goes through raw pointers whose synchronisation is the caller's
// business, exactly as for memory written by another process.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// `mmap(NULL, len, prot, MAP_SHARED [| MAP_POPULATE], fd, 0)`.
    pub(crate) fn map_fd(
        fd: BorrowedFd<'_>,
        len: usize,
        read_only: bool,
        opts: &RegionOptions,
    ) -> Result<Mapping, Errno> {
        let len = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        let flags = MapFlags::MAP_SHARED | populate(opts);
        // SAFETY: no address hint and no MAP_FIXED, so the kernel picks a range
        // that overlaps nothing else in this process (mmap(2): "If addr is NULL,
        // then the kernel chooses the (page-aligned) address at which to create
        // the mapping"). The returned memory is only ever accessed through raw
        // pointers. A file that a peer shrinks later makes accesses past its
        // end raise SIGBUS (mmap(2), "Use of a mapped region can result in
        // these signals: SIGBUS"): that is a documented risk of the backing
        // (see the crate's safety model), not a memory-safety violation of
        // this call.
        let ptr = unsafe { mman::mmap(None, len, prot(read_only), flags, fd, 0)? };
        // A peer that can open the object may truncate it: guard the range so that touching
        // a truncated page reads zeros instead of killing us.
        let watch = if can_shrink(fd) {
            let granule = match fstatfs(fd) {
                Ok(fs) if fs.filesystem_type() == HUGETLBFS_MAGIC => fs.block_size() as usize,
                _ => 4096,
            };
            let prot = prot(read_only).bits();
            match Guard::register(ptr.as_ptr().cast(), len.get(), granule, prot) {
                Ok(guard) => Watch::Guarded(guard),
                Err(_) => Watch::Unguarded,
            }
        } else {
            Watch::NotNeeded
        };
        Ok(Mapping {
            ptr: ptr.cast(),
            len: len.get(),
            unmap: Unmap::Munmap,
            watch,
        })
    }

    /// How many pages a peer truncated under this mapping (each one was replaced by a private
    /// zero page when touched, instead of raising `SIGBUS`).
    pub(crate) fn truncation_faults(&self) -> u64 {
        self.fault_counter()
            .map_or(0, |faults| faults.load(Ordering::Relaxed))
    }

    /// The guard's counter for this mapping, if the guard watches it.
    pub(crate) fn fault_counter(&self) -> Option<&'static AtomicU64> {
        match &self.watch {
            Watch::Guarded(guard) => Some(guard.faults()),
            Watch::NotNeeded | Watch::Unguarded => None,
        }
    }

    /// Whether touching this mapping after a truncation cannot kill the process: the object
    /// cannot shrink, or the guard watches the mapping and is still the SIGBUS action.
    pub(crate) fn is_guarded(&self) -> bool {
        match &self.watch {
            Watch::NotNeeded => true,
            Watch::Guarded(_) => sigbus::is_armed(),
            Watch::Unguarded => false,
        }
    }

    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS [|
    /// MAP_HUGETLB] [| MAP_POPULATE], -1, 0)`.
    pub(crate) fn map_anonymous(len: usize, opts: &RegionOptions) -> Result<Mapping, Errno> {
        let len = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        let mut flags = MapFlags::MAP_SHARED | populate(opts);
        if opts.huge() == HugePages::Explicit {
            flags |= MapFlags::MAP_HUGETLB;
        }
        // SAFETY: as in `map_fd`: no hint, no MAP_FIXED, so nothing existing is
        // replaced; anonymous memory cannot be truncated, so no SIGBUS either.
        let ptr = unsafe { mman::mmap_anonymous(None, len, prot(false), flags)? };
        Ok(Mapping {
            ptr: ptr.cast(),
            len: len.get(),
            unmap: Unmap::Munmap,
            watch: Watch::NotNeeded,
        })
    }

    /// `shmat(shmid, NULL, 0 or SHM_RDONLY)`; `len` is the segment size read
    /// with `IPC_STAT`.
    pub(crate) fn shmat(shmid: i32, len: usize, read_only: bool) -> Result<Mapping, Errno> {
        let flags = if read_only { libc::SHM_RDONLY } else { 0 };
        // SAFETY: a null address lets the kernel choose an unused range
        // (shmat(2): "If shmaddr is NULL, the system chooses a suitable
        // (unused) page-aligned address to attach the segment"), so nothing
        // existing is replaced. A SysV segment cannot be resized, so the
        // whole `len` stays valid until shmdt.
        let addr = unsafe { libc::shmat(shmid, std::ptr::null(), flags) };
        if addr as isize == -1 {
            return Err(Errno::last());
        }
        let ptr = NonNull::new(addr.cast::<u8>()).ok_or(Errno::EINVAL)?;
        Ok(Mapping {
            ptr,
            len,
            unmap: Unmap::Shmdt,
            watch: Watch::NotNeeded,
        })
    }

    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// What the options ask for after mapping: transparent huge pages,
    /// prefault where `MAP_POPULATE` was not available (SysV), and `mlock`.
    /// Returns the failing call's name with its error.
    pub(crate) fn apply(
        &self,
        opts: &RegionOptions,
        read_only: bool,
    ) -> Result<(), (&'static str, Errno)> {
        if opts.huge() == HugePages::Transparent {
            self.advise(MmapAdvise::MADV_HUGEPAGE)
                .map_err(|e| ("madvise(MADV_HUGEPAGE)", e))?;
        }
        if opts.is_prefault() && self.unmap == Unmap::Shmdt {
            let advice = if read_only {
                MmapAdvise::MADV_POPULATE_READ
            } else {
                MmapAdvise::MADV_POPULATE_WRITE
            };
            self.advise(advice)
                .map_err(|e| ("madvise(MADV_POPULATE)", e))?;
        }
        if opts.is_lock() {
            // SAFETY: the range is exactly this mapping (invariant); mlock
            // changes residency only, not contents or validity.
            unsafe { mman::mlock(self.ptr.cast(), self.len) }.map_err(|e| ("mlock", e))?;
        }
        Ok(())
    }

    fn advise(&self, advice: MmapAdvise) -> Result<(), Errno> {
        // SAFETY: the range is exactly this mapping (invariant), and the
        // advice given here (HUGEPAGE, POPULATE_READ, POPULATE_WRITE) never
        // discards data: madvise(2) "MADV_POPULATE_WRITE ... Populate (prefault)
        // page tables writable, faulting-in all pages ... Populating writable
        // page tables does not modify the content"; MADV_HUGEPAGE only
        // enables THP for the range.
        unsafe { mman::madvise(self.ptr.cast(), self.len, advice) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // Leave the SIGBUS table before the range goes: once unmapped, the addresses may be
        // reused by someone else.
        self.watch = Watch::NotNeeded;
        match self.unmap {
            Unmap::Munmap => {
                // SAFETY: the range is a mapping this value owns (invariant)
                // and nobody holds a reference into it; the pointers handed out
                // by `Region::as_ptr` dangle from here on, as documented.
                // Errors are ignored: munmap(2) fails only for a bad range,
                // which the invariant excludes.
                let _ = unsafe { mman::munmap(self.ptr.cast(), self.len) };
            }
            Unmap::Shmdt => {
                // SAFETY: `ptr` is the address shmat returned (invariant), not
                // detached before; as for munmap, handed-out pointers dangle
                // from here on.
                let _ = unsafe { libc::shmdt(self.ptr.as_ptr().cast()) };
            }
        }
    }
}

fn prot(read_only: bool) -> ProtFlags {
    if read_only {
        ProtFlags::PROT_READ
    } else {
        ProtFlags::PROT_READ | ProtFlags::PROT_WRITE
    }
}

/// Whether a process that has the object open could shrink it under a mapping: a regular file
/// (POSIX shm, memfd, file) without `F_SEAL_SHRINK` (fcntl(2): "If this seal is set, the file
/// in question cannot be reduced in size"). `/dev/zero` is a character device. When in doubt
/// (a failed `fstat`), yes.
fn can_shrink(fd: BorrowedFd<'_>) -> bool {
    if fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT != libc::S_IFREG) {
        return false;
    }
    match fcntl(fd, FcntlArg::F_GET_SEALS) {
        Ok(seals) => seals & SealFlag::F_SEAL_SHRINK.bits() == 0,
        // EINVAL: the filesystem has no seals at all.
        Err(_) => true,
    }
}

fn populate(opts: &RegionOptions) -> MapFlags {
    if opts.is_prefault() {
        MapFlags::MAP_POPULATE
    } else {
        MapFlags::empty()
    }
}

/// The default huge page size (`Hugepagesize` in `/proc/meminfo`), 2 MiB if
/// it cannot be read.
pub(crate) fn huge_page_size() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|meminfo| {
            meminfo.lines().find_map(|line| {
                let kib = line
                    .strip_prefix("Hugepagesize:")?
                    .trim()
                    .strip_suffix("kB")?;
                kib.trim().parse::<u64>().ok().map(|kib| kib * 1024)
            })
        })
        .unwrap_or(2 << 20)
}

/// Sizes a freshly created file-like object and maps it: exact `mode`
/// (`fchmod`, since `open`/`shm_open` filter the mode through the umask),
/// `ftruncate`, `posix_fallocate` unless `reserve(false)`, the memfd seals
/// when `seal` is set, then `mmap` and the post-map options.
///
/// The caller removes the object if this fails.
pub(crate) fn create_sized(
    backing: &Backing,
    fd: BorrowedFd<'_>,
    size: u64,
    opts: &RegionOptions,
    mode: Option<Mode>,
    seal: bool,
) -> Result<Mapping, Error> {
    let fail = |call, errno| Error::os_create(backing, call, errno, opts);
    if let Some(mode) = mode {
        fchmod(fd, mode).map_err(|e| fail("fchmod", e))?;
    }
    // `validate` checked that the size fits in off_t.
    let len = size as libc::off_t;
    ftruncate(fd, len).map_err(|e| fail("ftruncate", e))?;
    if opts.is_reserve() {
        // posix_fallocate(3): "After a successful call, subsequent writes into
        // the specified range are guaranteed not to fail because of lack of
        // disk space." On tmpfs this allocates the pages now, so a full
        // /dev/shm is ENOSPC here and not SIGBUS at first touch.
        posix_fallocate(fd, 0, len).map_err(|e| fail("posix_fallocate", e))?;
    }
    if seal {
        let seals = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL;
        fcntl(fd, FcntlArg::F_ADD_SEALS(seals)).map_err(|e| fail("fcntl(F_ADD_SEALS)", e))?;
    }
    let map = Mapping::map_fd(fd, size as usize, false, opts).map_err(|e| fail("mmap", e))?;
    map.apply(opts, false).map_err(|(call, e)| fail(call, e))?;
    Ok(map)
}

/// Reads the real size of an opened file-like object (`fstat`), refuses a
/// non-regular, empty or too-small one, and maps all of it.
pub(crate) fn open_sized(
    op: Op,
    backing: &Backing,
    fd: BorrowedFd<'_>,
    min: u64,
    opts: &RegionOptions,
) -> Result<Mapping, Error> {
    let what = || backing.to_string();
    let st = fstat(fd).map_err(|e| Error::os(op, backing, "fstat", e))?;
    let file_type = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => None,
        libc::S_IFDIR => Some("directory"),
        libc::S_IFCHR => Some("character device"),
        libc::S_IFBLK => Some("block device"),
        libc::S_IFIFO => Some("FIFO"),
        libc::S_IFSOCK => Some("socket"),
        _ => Some("special file"),
    };
    if let Some(file_type) = file_type {
        return Err(Error::NotRegular {
            op,
            what: what(),
            file_type,
        });
    }
    let size = u64::try_from(st.st_size).unwrap_or(0);
    if size == 0 {
        return Err(Error::Empty { op, what: what() });
    }
    if size < min {
        return Err(Error::TooSmall {
            op,
            what: what(),
            size,
            required: min,
        });
    }
    let len = usize::try_from(size)
        .ok()
        .filter(|&len| len <= isize::MAX as usize)
        .ok_or_else(|| {
            Error::invalid_size(
                op,
                backing,
                size,
                "larger than the address space".to_owned(),
            )
        })?;
    if opts.huge() == HugePages::Explicit {
        require_hugetlbfs(op, backing, fd)?;
    }
    let read_only = opts.is_read_only();
    let map =
        Mapping::map_fd(fd, len, read_only, opts).map_err(|e| Error::os(op, backing, "mmap", e))?;
    map.apply(opts, read_only)
        .map_err(|(call, e)| Error::os(op, backing, call, e))?;
    Ok(map)
}

/// `O_RDONLY` for a read-only open, `O_RDWR` otherwise.
pub(crate) fn access_mode(opts: &RegionOptions) -> OFlag {
    if opts.is_read_only() {
        OFlag::O_RDONLY
    } else {
        OFlag::O_RDWR
    }
}

/// Explicit huge pages on an fd need it to live on hugetlbfs (a file on a
/// hugetlbfs mount, or a memfd made with `MFD_HUGETLB`).
pub(crate) fn require_hugetlbfs(
    op: Op,
    backing: &Backing,
    fd: BorrowedFd<'_>,
) -> Result<(), Error> {
    let fs = fstatfs(fd).map_err(|e| Error::os(op, backing, "fstatfs", e))?;
    if fs.filesystem_type() == HUGETLBFS_MAGIC {
        Ok(())
    } else {
        Err(Error::unsupported(
            op,
            backing,
            "huge_pages(Explicit)",
            "the file is not on hugetlbfs; put it on a hugetlbfs mount (e.g. /dev/hugepages), \
             or use HugePages::Transparent",
        ))
    }
}
