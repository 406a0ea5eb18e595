//! Shared memory for ringway: create, open, map and clean up memory shared
//! between processes, from every source Linux offers.
//!
//! A [`Region`] is one page-aligned `MAP_SHARED` mapping plus what it takes
//! to share it and to clean it up. Where the bytes come from is its
//! [`Backing`]: a POSIX shm name, a System V key, an anonymous or
//! `/dev/zero` mapping shared with forked children, a sealed memfd handed
//! over as an fd, or a file. Creation is exclusive and never leaves anything
//! behind on failure; opening reads the real size and refuses an empty or
//! too-small object instead of crashing later; an option a backing cannot
//! honour is an error.
//!
//! - [`Region`]: [`create`](Region::create), [`open`](Region::open),
//!   [`from_fd`](Region::from_fd), [`as_ptr`](Region::as_ptr),
//!   [`len`](Region::len), [`unlink`](Region::unlink),
//!   [`list`](Region::list); against truncation by a peer:
//!   [`is_guarded`](Region::is_guarded),
//!   [`fault_counter`](Region::fault_counter),
//!   [`check_intact`](Region::check_intact).
//! - [`Backing`] and [`SysvKey`]: where the memory comes from.
//! - [`RegionOptions`] and [`HugePages`]: size, mode, read-only, prefault,
//!   lock, huge pages, persist, and the rest.
//! - [`Error`], [`ErrorKind`], [`Op`]: what failed, on what, and why.
//! - [`fdpass`]: sending an fd over a Unix socket (`SCM_RIGHTS`).
//! - [`SegmentInfo`]: one entry of [`Region::list`].
//! - `examples/memfd_exec.rs`: two processes sharing a sealed memfd across
//!   `exec` (`cargo run -p ringway-region --example memfd_exec`).
//!
//! | backing | shared with | cleanup |
//! |---|---|---|
//! | [`Backing::Posix`] | any process that knows the name | creator `shm_unlink`s on drop unless persisted, if the name is still its object |
//! | [`Backing::SysV`] | any process that knows the key (or shmid) | creator `IPC_RMID`s on drop unless persisted; the segment goes with the last detach |
//! | [`Backing::Anonymous`] | children forked after create | the kernel, with the last mapping |
//! | [`Backing::DevZero`] | children forked after create | the kernel, with the last mapping |
//! | [`Backing::Memfd`] | processes the fd is handed to (exec inheritance, `SCM_RIGHTS`) | the kernel, with the last fd and mapping |
//! | [`Backing::File`] | any process that can open the path | creator unlinks on drop unless persisted, if the path is still its file |
//!
//! # Examples
//!
//! ```
//! use ringway_region::{Backing, Region, RegionOptions};
//!
//! let name = format!("/ringway-doc-{}", std::process::id());
//! let created = Region::create(&Backing::posix(&name), &RegionOptions::new().size(4096))?;
//! // Another process would do this, knowing only the name:
//! let opened = Region::open(&Backing::posix(&name), &RegionOptions::new().size(16))?;
//! assert_eq!(opened.len(), 4096);
//!
//! // SAFETY: both mappings are live and at least 4096 bytes long; nothing
//! // else touches them in this example.
//! unsafe {
//!     created.as_ptr().write(42);
//!     assert_eq!(opened.as_ptr().read_volatile(), 42);
//! }
//! drop(opened);
//! drop(created); // the creator removes the name
//! assert!(Region::list_prefixed(&name)?.is_empty());
//! # Ok::<(), ringway_region::Error>(())
//! ```
//!
//! # Safety model
//!
//! The mapped bytes are shared with other processes, which may write them at
//! any time, without any synchronisation this process can see. So the region
//! never hands out `&[u8]` or `&mut [u8]` over the mapping (that would
//! promise the bytes do not change, which no one can promise): it hands out
//! [`as_ptr`](Region::as_ptr) and [`len`](Region::len), and the layers above
//! access the bytes through raw pointers and atomics, treating every value
//! read as untrusted. The pointer is valid for `len` bytes until the
//! [`Region`] is dropped.
//!
//! What a peer can break beyond the contents: it can truncate a file-backed
//! object that is not sealed, and every process touching the pages past the
//! new end would die of `SIGBUS` (mmap(2)). Immune: a memfd created here or
//! received through [`Region::from_fd`] (which refuses it without
//! `F_SEAL_SHRINK | F_SEAL_GROW` unless [`RegionOptions::allow_unsealed`]),
//! SysV segments and anonymous or `/dev/zero` mappings (they cannot be
//! resized at all). Exposed: POSIX shm, files and unsealed memfds, which any
//! process with write permission on them can truncate; keep their mode tight
//! (the default is `0600`). For those, a `SIGBUS` guard (one handler per
//! process, chained to the action in place before it) replaces a truncated
//! page by a private zero page when it is touched, so the process reads
//! zeros instead of dying, and counts it: the sides have diverged, which
//! [`Region::fault_counter`] (fast path) and [`Region::check_intact`] (slow
//! path) report. Every other `SIGBUS` (a fault elsewhere, a hardware memory
//! error, one sent by a process) does what it would have done without the
//! guard. [`Region::is_guarded`] is `false` if the guard could not be set up.
//! [`Region::unlink`] and the creator's drop only remove a name that still
//! belongs to the region's own object.
//!
//! # Feature flags
//!
//! None yet.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

mod anon;
mod error;
pub mod fdpass;
mod file;
mod intact;
mod list;
mod map;
mod memfd;
mod options;
mod posix;
mod room;
mod sigbus;
mod sysv;

pub use error::{Error, ErrorKind, Op};
pub use list::SegmentInfo;
pub use options::{HugePages, RegionOptions};
pub use room::Room;

use map::Mapping;

/// Where a [`Region`]'s memory comes from, and how it is named.
///
/// # Examples
///
/// ```
/// use ringway_region::{Backing, SysvKey};
///
/// assert_eq!(Backing::posix("/ticks"), Backing::Posix { name: "/ticks".into() });
/// assert_eq!(Backing::sysv(0x5157), Backing::SysV { key: SysvKey::Key(0x5157) });
/// assert_eq!(Backing::posix("/ticks").to_string(), "POSIX shm \"/ticks\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backing {
    /// POSIX shared memory (`shm_open`): `name` has exactly one `/`, at the
    /// start, and at most 255 bytes after it.
    Posix {
        /// The name, e.g. `/ticks`.
        name: String,
    },
    /// System V shared memory (`shmget` + `shmat`).
    SysV {
        /// The key or id.
        key: SysvKey,
    },
    /// `mmap(MAP_SHARED | MAP_ANONYMOUS)`, shared with children forked after
    /// create.
    Anonymous,
    /// `mmap(MAP_SHARED)` of `/dev/zero`, shared with children forked after
    /// create.
    DevZero,
    /// `memfd_create`, sealed, shared by handing the fd over.
    Memfd {
        /// The label shown in `/proc/PID/fd` and `/proc/PID/maps` (at most 249
        /// bytes); not a name anyone can open.
        name: String,
    },
    /// A file at `path` on any filesystem.
    File {
        /// The path; its last component must not be a symbolic link.
        path: PathBuf,
    },
}

/// How a System V segment is found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SysvKey {
    /// An explicit non-zero key.
    Key(i32),
    /// The key `ftok(path, id)` derives from an existing file and a non-zero
    /// id.
    Ftok {
        /// An existing file.
        path: PathBuf,
        /// A non-zero project id.
        id: u8,
    },
    /// `IPC_PRIVATE`: a new segment no key finds; others attach it by shmid.
    /// Create only.
    Private,
    /// An existing segment's shmid ([`Region::sysv_id`]). Open only; the way
    /// to reach a private or removed segment.
    Id(i32),
}

impl Backing {
    /// [`Backing::Posix`] with `name`.
    pub fn posix(name: impl Into<String>) -> Backing {
        Backing::Posix { name: name.into() }
    }
    /// [`Backing::SysV`] with an explicit key.
    pub fn sysv(key: i32) -> Backing {
        Backing::SysV {
            key: SysvKey::Key(key),
        }
    }
    /// [`Backing::SysV`] with the key `ftok(path, id)`.
    pub fn ftok(path: impl Into<PathBuf>, id: u8) -> Backing {
        Backing::SysV {
            key: SysvKey::Ftok {
                path: path.into(),
                id,
            },
        }
    }
    /// [`Backing::SysV`] with `IPC_PRIVATE`.
    pub fn sysv_private() -> Backing {
        Backing::SysV {
            key: SysvKey::Private,
        }
    }
    /// [`Backing::SysV`] by shmid, to open an existing segment.
    pub fn sysv_id(shmid: i32) -> Backing {
        Backing::SysV {
            key: SysvKey::Id(shmid),
        }
    }
    /// [`Backing::Posix`] with an unpredictable name: `prefix`, a dash, and 128 random bits
    /// in hex (from `getrandom`), e.g. `/ticks-3f09…`. Nobody can squat a name they cannot
    /// guess; hand it to the peer (argument, environment, socket).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidName`] if `prefix` does not start with `/`, contains another `/`,
    /// or leaves no room for the random part; the OS error if `getrandom` fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringway_region::Backing;
    ///
    /// let a = Backing::posix_random("/ticks")?;
    /// let b = Backing::posix_random("/ticks")?;
    /// assert_ne!(a, b);
    /// assert!(a.to_string().starts_with("POSIX shm \"/ticks-"));
    /// # Ok::<(), ringway_region::Error>(())
    /// ```
    pub fn posix_random(prefix: &str) -> Result<Backing, Error> {
        let mut bytes = [0u8; 16];
        let mut filled = 0;
        while filled < bytes.len() {
            // SAFETY: the pointer and length describe the unfilled tail of `bytes`, which
            // getrandom(2) only writes; flags 0 reads the urandom pool, blocking only before
            // it is initialised at boot.
            let n = unsafe {
                libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0)
            };
            if n < 0 {
                let errno = nix::errno::Errno::last();
                if errno == nix::errno::Errno::EINTR {
                    continue;
                }
                return Err(Error::os_on(
                    Op::Create,
                    format!("a random name after {prefix:?}"),
                    "getrandom",
                    errno,
                    None,
                ));
            }
            filled += n as usize;
        }
        let name = format!(
            "{prefix}-{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        posix::validate_name(Op::Create, &name)?;
        Ok(Backing::posix(name))
    }

    /// [`Backing::Memfd`] with a label.
    pub fn memfd(label: impl Into<String>) -> Backing {
        Backing::Memfd { name: label.into() }
    }
    /// [`Backing::File`] at `path`.
    pub fn file(path: impl Into<PathBuf>) -> Backing {
        Backing::File { path: path.into() }
    }
}

impl fmt::Display for Backing {
    /// Describes the object the way errors name it: `POSIX shm "/ticks"`,
    /// `SysV shm key 0x00005157`, `memfd "label"`, `file "/tmp/x"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backing::Posix { name } => write!(f, "POSIX shm {name:?}"),
            Backing::SysV {
                key: SysvKey::Key(key),
            } => write!(f, "SysV shm key {key:#010x}"),
            Backing::SysV {
                key: SysvKey::Ftok { path, id },
            } => {
                write!(f, "SysV shm ftok({path:?}, {id})")
            }
            Backing::SysV {
                key: SysvKey::Private,
            } => f.write_str("SysV shm IPC_PRIVATE"),
            Backing::SysV {
                key: SysvKey::Id(id),
            } => write!(f, "SysV shm id {id}"),
            Backing::Anonymous => f.write_str("anonymous shared mapping"),
            Backing::DevZero => f.write_str("/dev/zero shared mapping"),
            Backing::Memfd { name } => write!(f, "memfd {name:?}"),
            Backing::File { path } => write!(f, "file {path:?}"),
        }
    }
}

/// What keeps the object alive besides the mapping.
#[derive(Debug)]
enum Owner {
    /// Nothing (anonymous, `/dev/zero`).
    None,
    /// An fd (POSIX shm, memfd, file).
    Fd(OwnedFd),
    /// A SysV shmid.
    SysV(i32),
}

/// A shared memory mapping and what it takes to share and clean it up.
///
/// Created with [`create`](Region::create), reached from another process
/// with [`open`](Region::open) or [`from_fd`](Region::from_fd). Dropping it
/// unmaps the memory, closes its fd, and, for the creator of a named backing
/// that was not persisted, removes the name (`shm_unlink`, `IPC_RMID`,
/// `unlink`); errors on drop are ignored, since nothing could be done about
/// them there: call [`unlink`](Region::unlink) to see them.
///
/// # Invariants
///
/// - `map` is the whole object: `map.len()` is its size (create: the size
///   asked for; open: the size `fstat`/`IPC_STAT` reported);
/// - `removed` is true once the name is gone (by [`unlink`](Region::unlink)
///   or `remove_after_attach`), so that drop never removes it twice.
pub struct Region {
    // Drop order: `Drop::drop` removes the name first, then the fields drop in
    // this order, so the mapping goes before the fd.
    map: Mapping,
    owner: Owner,
    backing: Backing,
    creator: bool,
    read_only: bool,
    persist: bool,
    removed: AtomicBool,
}

impl Region {
    /// A region this process created: removes its name on drop unless
    /// `opts` say persist.
    fn created(map: Mapping, backing: &Backing, owner: Owner, opts: &RegionOptions) -> Region {
        Region::new(map, backing.clone(), owner, true, false, opts.is_persist())
    }

    /// A region this process opened: never removes anything on drop.
    fn opened(map: Mapping, backing: Backing, owner: Owner, opts: &RegionOptions) -> Region {
        Region::new(map, backing, owner, false, opts.is_read_only(), false)
    }

    fn new(
        map: Mapping,
        backing: Backing,
        owner: Owner,
        creator: bool,
        read_only: bool,
        persist: bool,
    ) -> Region {
        Region {
            map,
            owner,
            backing,
            creator,
            read_only,
            persist,
            removed: AtomicBool::new(false),
        }
    }

    fn mark_removed(&self, removed: bool) {
        if removed {
            self.removed.store(true, Ordering::Relaxed);
        }
    }

    /// Creates a new object of `backing` and maps it read-write.
    ///
    /// Creation is exclusive (`O_EXCL`, `IPC_EXCL`) with mode `0600` unless
    /// [`RegionOptions::mode`] says otherwise (applied exactly, whatever the
    /// umask). The size ([`RegionOptions::size`], required) is set before
    /// mapping, and on tmpfs the pages are reserved up front. A failure
    /// half-way removes whatever was created.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::InvalidName`]: a bad POSIX name (checked before any
    ///   system call), memfd label or SysV key;
    /// - [`ErrorKind::InvalidSize`]: no size, zero, too large, or not a
    ///   multiple of the huge page size with [`HugePages::Explicit`];
    /// - [`ErrorKind::Unsupported`]: an option the backing cannot honour;
    /// - [`ErrorKind::AlreadyExists`]: the name, key or path is taken;
    /// - [`ErrorKind::NoSpace`], [`ErrorKind::HugePagesUnavailable`],
    ///   [`ErrorKind::OutOfMemory`], [`ErrorKind::PermissionDenied`] and
    ///   others from the OS.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringway_region::{Backing, Region, RegionOptions};
    ///
    /// let region = Region::create(&Backing::Anonymous, &RegionOptions::new().size(8192))?;
    /// assert_eq!(region.len(), 8192);
    /// assert!(region.is_creator());
    /// # Ok::<(), ringway_region::Error>(())
    /// ```
    pub fn create(backing: &Backing, opts: &RegionOptions) -> Result<Region, Error> {
        match backing {
            Backing::Posix { name } => posix::create(backing, name, opts),
            Backing::SysV { key } => sysv::create(backing, key, opts),
            Backing::Anonymous => anon::create_anonymous(backing, opts),
            Backing::DevZero => anon::create_dev_zero(backing, opts),
            Backing::Memfd { name } => memfd::create(backing, name, opts),
            Backing::File { path } => file::create(backing, path, opts),
        }
    }

    /// Opens an existing object of `backing` and maps all of it.
    ///
    /// The real size is read (`fstat`, `IPC_STAT`); an empty object, or one
    /// smaller than [`RegionOptions::size`] (here a minimum), is refused.
    /// POSIX shm, SysV (by key, `ftok` or shmid) and files can be opened;
    /// anonymous and `/dev/zero` mappings are shared by `fork`, and a memfd by
    /// handing its fd over ([`Region::from_fd`]).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`], [`ErrorKind::PermissionDenied`],
    /// [`ErrorKind::Empty`], [`ErrorKind::TooSmall`],
    /// [`ErrorKind::Symlink`] and [`ErrorKind::NotRegular`] (files),
    /// [`ErrorKind::InvalidName`], and [`ErrorKind::Unsupported`] for the
    /// backings that cannot be opened by name and for create-only options.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringway_region::{Backing, ErrorKind, Region, RegionOptions};
    ///
    /// let err = Region::open(&Backing::posix("/ringway-doc-missing"), &RegionOptions::new())
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::NotFound);
    /// ```
    pub fn open(backing: &Backing, opts: &RegionOptions) -> Result<Region, Error> {
        match backing {
            Backing::Posix { name } => posix::open(backing, name, opts),
            Backing::SysV { key } => sysv::open(backing, key, opts),
            Backing::File { path } => file::open(backing, path, opts),
            Backing::Anonymous | Backing::DevZero => Err(Error::unsupported(
                Op::Open,
                backing,
                "backing",
                anon::OPEN_HINT,
            )),
            Backing::Memfd { .. } => Err(Error::unsupported(
                Op::Open,
                backing,
                "backing",
                "a memfd has no name to open: hand its fd to the peer, by inheritance across \
                 exec (Region::set_inheritable, then Region::from_inherited_fd) or over a Unix \
                 socket (fdpass::send_fd, fdpass::recv_fd, then Region::from_fd)",
            )),
        }
    }

    /// Maps the object behind `fd`: a memfd received with
    /// [`fdpass::recv_fd`] or inherited, or any other fd of a regular file.
    ///
    /// The fd must carry `F_SEAL_SHRINK | F_SEAL_GROW` (as a memfd made by
    /// [`Region::create`] does), so that no peer can shrink it under this
    /// process, unless [`RegionOptions::allow_unsealed`] is set. The size is
    /// read with `fstat` and checked as by [`open`](Region::open). The
    /// region is not the creator: dropping it only unmaps and closes.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsealed`], [`ErrorKind::Empty`], [`ErrorKind::TooSmall`],
    /// [`ErrorKind::NotRegular`], [`ErrorKind::Unsupported`] for
    /// create-only options, [`ErrorKind::PermissionDenied`] for a read-only
    /// fd mapped read-write.
    pub fn from_fd(fd: OwnedFd, opts: &RegionOptions) -> Result<Region, Error> {
        memfd::from_fd(fd, opts)
    }

    /// [`from_fd`](Region::from_fd) for an fd number inherited across `exec`
    /// (see [`set_inheritable`](Region::set_inheritable)). Sets `FD_CLOEXEC`
    /// on it again, so it is not passed on further.
    ///
    /// # Safety
    ///
    /// - `fd` must be an open file descriptor (a closed one is detected and
    ///   reported as an error, but one that was closed and reused for
    ///   something else is not);
    /// - nothing else in this process may own or close it: the returned
    ///   region closes it on drop.
    ///
    /// # Errors
    ///
    /// As [`from_fd`](Region::from_fd), and `EBADF` for a closed fd.
    pub unsafe fn from_inherited_fd(fd: RawFd, opts: &RegionOptions) -> Result<Region, Error> {
        // SAFETY: the caller upholds this function's contract, which is the
        // callee's.
        unsafe { memfd::from_inherited_fd(fd, opts) }
    }

    /// The start of the mapping, page-aligned, valid for [`len`](Region::len)
    /// bytes until the region is dropped. Other processes may read and write
    /// these bytes at any time: access them through raw pointers or atomics,
    /// never through `&`/`&mut` slices. Writing through it is undefined
    /// behaviour if the region [`is_read_only`](Region::is_read_only) (the
    /// process gets `SIGSEGV`).
    pub fn as_ptr(&self) -> *mut u8 {
        self.map.ptr()
    }

    /// The size of the object in bytes, all of it mapped.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Always `false`: create refuses size 0 and open refuses empty objects.
    /// (For `clippy::len_without_is_empty`.)
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// The backing this region was created or opened with. For
    /// [`from_fd`](Region::from_fd), a [`Backing::Memfd`] with the fd's label,
    /// or a [`Backing::File`] with its path for other fds.
    pub fn backing(&self) -> &Backing {
        &self.backing
    }

    /// Whether this region created the object (and so removes its name on
    /// drop unless persisted).
    pub fn is_creator(&self) -> bool {
        self.creator
    }

    /// Whether the mapping is read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The fd of a POSIX shm object, memfd or file; `None` for SysV,
    /// anonymous and `/dev/zero`.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.owner {
            Owner::Fd(fd) => Some(fd.as_fd()),
            Owner::None | Owner::SysV(_) => None,
        }
    }

    /// Clears (`yes`) or sets `FD_CLOEXEC` on [`fd`](Region::fd), so that a
    /// program this process `exec`s inherits the fd and can map it with
    /// [`Region::from_inherited_fd`]. Remember that every child spawned while
    /// it is inheritable inherits it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] for backings without an fd.
    pub fn set_inheritable(&self, yes: bool) -> Result<(), Error> {
        let Some(fd) = self.fd() else {
            return Err(Error::unsupported(
                Op::SetInheritable,
                &self.backing,
                "inheritable",
                "this backing has no fd: SysV is found by key or shmid, anonymous and /dev/zero \
                 mappings are inherited by fork",
            ));
        };
        memfd::set_cloexec(fd, !yes)
            .map_err(|e| Error::os(Op::SetInheritable, &self.backing, "fcntl(F_SETFD)", e))
    }

    /// Whether the creator keeps the name when dropped. Has no effect for
    /// openers and for backings without a name.
    pub fn set_persist(&mut self, persist: bool) {
        self.persist = persist;
    }

    /// Removes the name now (`shm_unlink`, `IPC_RMID`, `unlink`); the mapping
    /// stays valid until drop, and processes that have it mapped keep it.
    /// Calling it again, or dropping afterwards, does nothing more. For
    /// backings without a name it does nothing.
    ///
    /// Only this region's own object loses its name, whether the region
    /// created it or opened it. For POSIX shm the name is opened read-only
    /// (`O_NOFOLLOW`) and its device and inode are compared with those of the
    /// region's fd; for a file, those of `lstat(path)`. If the name now
    /// belongs to another object (someone removed ours and created theirs
    /// under the same name, or put a symbolic link there), nothing is removed
    /// and the error is [`ErrorKind::Replaced`]; the creator's drop leaves it
    /// alone too. A SysV segment is removed by its shmid, which names this
    /// segment and no other as long as any process is attached to it, and
    /// this region is attached until it is dropped.
    ///
    /// What remains is a race: between the identity check and
    /// `shm_unlink(2)`/`unlink(2)` a process that can remove the name could
    /// replace our object with its own, which would then be removed. Linux
    /// has no unlink by inode, nor an `unlinkat` that checks what it removes.
    /// `/dev/shm` is sticky (mode `1777`): there only the object's owner
    /// (normally this user), the directory's owner (root) or a process with
    /// `CAP_FOWNER` can remove or rename our name, so the racer must already
    /// be this user or privileged. For a file, any process with write
    /// permission on its directory can, unless the directory is sticky.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Replaced`] as above; the OS error otherwise, for example
    /// [`ErrorKind::NotFound`] if someone removed the name already. A failed
    /// unlink can be retried.
    pub fn unlink(&self) -> Result<(), Error> {
        if self.removed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let result = self.remove_name();
        if result.is_err() {
            self.removed.store(false, Ordering::Release);
        }
        result
    }

    fn remove_name(&self) -> Result<(), Error> {
        match (&self.backing, &self.owner) {
            (Backing::Posix { name }, Owner::Fd(fd)) => {
                posix::unlink_own(&self.backing, name, fd.as_fd())
            }
            // By shmid, not by key: the id stays allocated to this segment while any process
            // is attached (shmctl(2): a segment marked for removal "will actually be destroyed
            // only after the last process detaches it"), and this region is attached until its
            // mapping drops, after this call. So IPC_RMID cannot reach another segment.
            (Backing::SysV { .. }, Owner::SysV(shmid)) => sysv::unlink(&self.backing, *shmid),
            (Backing::File { path }, Owner::Fd(fd)) => {
                file::unlink_own(&self.backing, path, fd.as_fd())
            }
            _ => Ok(()),
        }
    }

    /// Removes the name of an object without opening it (`shm_unlink`,
    /// `IPC_RMID` by key or shmid, `unlink`), as `ringway rm` does. Processes
    /// that have it mapped keep their mapping.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] if there is no such object,
    /// [`ErrorKind::PermissionDenied`], and [`ErrorKind::Unsupported`] for
    /// backings without a name.
    pub fn remove(backing: &Backing) -> Result<(), Error> {
        match backing {
            Backing::Posix { name } => posix::unlink(backing, name),
            Backing::SysV { key } => sysv::remove(backing, key),
            Backing::File { path } => file::unlink(backing, path),
            Backing::Anonymous | Backing::DevZero | Backing::Memfd { .. } => {
                Err(Error::unsupported(
                    Op::Unlink,
                    backing,
                    "backing",
                    "this backing has no name; the kernel frees it with its last mapping or fd",
                ))
            }
        }
    }

    /// The SysV shmid, for other processes to attach with
    /// [`Backing::sysv_id`]; `None` for other backings.
    pub fn sysv_id(&self) -> Option<i32> {
        match self.owner {
            Owner::SysV(shmid) => Some(shmid),
            _ => None,
        }
    }

    /// Every POSIX shm object in `/dev/shm` (but not glibc's `sem.*`
    /// semaphores) and every SysV segment in `/proc/sysvipc/shm`.
    ///
    /// # Errors
    ///
    /// The OS error if `/dev/shm` or the SysV table exists but cannot be read.
    pub fn list() -> Result<Vec<SegmentInfo>, Error> {
        list::list()
    }

    /// The POSIX shm objects whose name (with its leading `/`) starts with
    /// `prefix`, e.g. `"/ringway-"`.
    ///
    /// # Errors
    ///
    /// As [`list`](Region::list).
    pub fn list_prefixed(prefix: &str) -> Result<Vec<SegmentInfo>, Error> {
        list::list_prefixed(prefix)
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.creator && !self.persist && !self.removed.load(Ordering::Acquire) {
            // Nothing can be done about a failure here (someone removed the
            // name already, or it now belongs to another object, which
            // `remove_name` leaves alone).
            let _ = self.remove_name();
        }
        // Then `map` unmaps (munmap, or shmdt for SysV) and `owner` closes.
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Region");
        d.field("backing", &self.backing)
            .field("ptr", &self.map.ptr())
            .field("len", &self.map.len())
            .field("creator", &self.creator)
            .field("read_only", &self.read_only)
            .field("persist", &self.persist)
            .field("guarded", &self.map.is_guarded())
            .field("removed", &self.removed.load(Ordering::Relaxed));
        match &self.owner {
            Owner::Fd(fd) => d.field("fd", fd),
            Owner::SysV(shmid) => d.field("shmid", shmid),
            Owner::None => d.field("fd", &None::<RawFd>),
        };
        d.finish()
    }
}

/// Undoes a half-finished create when dropped, unless disarmed.
struct Undo<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Undo<F> {
    fn new(undo: F) -> Undo<F> {
        Undo(Some(undo))
    }

    /// The create succeeded: keep what it made.
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for Undo<F> {
    fn drop(&mut self) {
        if let Some(undo) = self.0.take() {
            undo();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Region>();
    }

    #[test]
    fn backing_display_names_the_object() {
        assert_eq!(Backing::sysv(0x5157).to_string(), "SysV shm key 0x00005157");
        assert_eq!(Backing::sysv(-1).to_string(), "SysV shm key 0xffffffff");
        assert_eq!(Backing::sysv_id(12).to_string(), "SysV shm id 12");
        assert_eq!(Backing::memfd("x").to_string(), "memfd \"x\"");
        assert_eq!(Backing::file("/tmp/x").to_string(), "file \"/tmp/x\"");
    }
}
