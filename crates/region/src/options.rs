//! [`RegionOptions`]: the builder passed to every constructor, and the check
//! that a backing can honour what it asks for.
//!
//! Every option is stored as "set or not", so that an option the caller set
//! explicitly on a backing that cannot honour it is an error
//! ([`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported)) instead of being
//! ignored, while the defaults work everywhere.

use crate::error::{Error, Op};
use crate::{Backing, SysvKey};

/// Which huge pages to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum HugePages {
    /// Normal pages (the default).
    #[default]
    None,
    /// Explicit huge pages from the kernel's reserved pool: `MAP_HUGETLB`
    /// (anonymous), `SHM_HUGETLB` (SysV), `MFD_HUGETLB` (memfd), or a file
    /// on hugetlbfs. Fails with
    /// [`ErrorKind::HugePagesUnavailable`](crate::ErrorKind::HugePagesUnavailable)
    /// when the pool (`/proc/sys/vm/nr_hugepages`) is empty. The size must be
    /// a multiple of the huge page size. POSIX shm and `/dev/zero` cannot
    /// have them.
    Explicit,
    /// Transparent huge pages: `madvise(MADV_HUGEPAGE)`, a hint the kernel may
    /// follow (see `/sys/kernel/mm/transparent_hugepage/`). Works on every
    /// backing.
    Transparent,
}

/// Options for [`Region::create`](crate::Region::create),
/// [`Region::open`](crate::Region::open) and
/// [`Region::from_fd`](crate::Region::from_fd), built with chained setters.
///
/// An option a backing or an operation cannot honour is an error, not
/// silently ignored: for example `persist` on an anonymous mapping,
/// `read_only` on create, `mode` on anything without a name.
///
/// # Examples
///
/// ```
/// use ringway_region::{HugePages, RegionOptions};
///
/// let create = RegionOptions::new().size(1 << 20).mode(0o640).prefault(true);
/// let open = RegionOptions::new().size(4096).read_only(true);
/// let big = RegionOptions::new().size(4 << 20).huge_pages(HugePages::Transparent);
/// # let _ = (create, open, big);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionOptions {
    pub(crate) size: Option<u64>,
    pub(crate) mode: Option<u32>,
    pub(crate) read_only: Option<bool>,
    pub(crate) prefault: Option<bool>,
    pub(crate) lock: Option<bool>,
    pub(crate) huge_pages: Option<HugePages>,
    pub(crate) persist: Option<bool>,
    pub(crate) remove_after_attach: Option<bool>,
    pub(crate) allow_unsealed: Option<bool>,
    pub(crate) reserve: Option<bool>,
}

impl RegionOptions {
    /// Options with every default: no size, mode 0600, read-write, no
    /// prefault, no lock, normal pages, removed on drop, pages reserved where
    /// the backing allows.
    pub fn new() -> RegionOptions {
        RegionOptions::default()
    }

    /// On create, the exact size in bytes (required, non-zero). On open, the
    /// minimum acceptable size: the real size is read with `fstat` or
    /// `IPC_STAT` and mapped whole, and a smaller object is an
    /// [`ErrorKind::TooSmall`](crate::ErrorKind::TooSmall) error.
    pub fn size(mut self, bytes: usize) -> RegionOptions {
        self.size = Some(bytes as u64);
        self
    }

    /// Permission bits for a created POSIX shm object, SysV segment or file
    /// (default `0o600`). Applied exactly: the process umask does not filter
    /// it. Create only, named backings only.
    pub fn mode(mut self, mode: u32) -> RegionOptions {
        self.mode = Some(mode);
        self
    }

    /// Map read-only (`PROT_READ`, `O_RDONLY`, `SHM_RDONLY`). Open and
    /// `from_fd` only: a creator must write the size and the contents.
    pub fn read_only(mut self, yes: bool) -> RegionOptions {
        self.read_only = Some(yes);
        self
    }

    /// Fault every page in at map time (`MAP_POPULATE`; for SysV
    /// `madvise(MADV_POPULATE_WRITE)` or `MADV_POPULATE_READ`), so the first
    /// touch does not take a page fault.
    pub fn prefault(mut self, yes: bool) -> RegionOptions {
        self.prefault = Some(yes);
        self
    }

    /// Lock the pages in RAM (`mlock`), so they are never swapped out.
    /// Needs `CAP_IPC_LOCK` or enough `RLIMIT_MEMLOCK`.
    pub fn lock(mut self, yes: bool) -> RegionOptions {
        self.lock = Some(yes);
        self
    }

    /// Huge pages; see [`HugePages`].
    pub fn huge_pages(mut self, huge: HugePages) -> RegionOptions {
        self.huge_pages = Some(huge);
        self
    }

    /// Keep the name (POSIX shm name, SysV segment, file) when the creator
    /// drops the region. Create only, named backings only.
    pub fn persist(mut self, yes: bool) -> RegionOptions {
        self.persist = Some(yes);
        self
    }

    /// SysV only: mark the segment for removal (`IPC_RMID`) right after
    /// attaching. The key is freed at once; the segment lives on until the
    /// last process detaches, even if they all crash, and other processes can
    /// still attach it by shmid ([`Backing::sysv_id`]).
    pub fn remove_after_attach(mut self, yes: bool) -> RegionOptions {
        self.remove_after_attach = Some(yes);
        self
    }

    /// [`Region::from_fd`](crate::Region::from_fd) only: accept an fd without
    /// `F_SEAL_SHRINK | F_SEAL_GROW`. A peer could then truncate the object:
    /// the `SIGBUS` guard keeps this process alive (a touched page past the
    /// new end reads zeros), but the shared contents are lost, which
    /// [`Region::check_intact`](crate::Region::check_intact) reports.
    pub fn allow_unsealed(mut self, yes: bool) -> RegionOptions {
        self.allow_unsealed = Some(yes);
        self
    }

    /// Reserve the pages at create time with `posix_fallocate` (default
    /// `true` where the backing has a file: POSIX shm, memfd, file), so that
    /// a full `/dev/shm` is an [`ErrorKind::NoSpace`](crate::ErrorKind::NoSpace)
    /// error now rather than a `SIGBUS` at first touch. Create only.
    pub fn reserve(mut self, yes: bool) -> RegionOptions {
        self.reserve = Some(yes);
        self
    }

    pub(crate) fn mode_bits(&self) -> u32 {
        self.mode.unwrap_or(0o600)
    }
    pub(crate) fn is_read_only(&self) -> bool {
        self.read_only.unwrap_or(false)
    }
    pub(crate) fn is_prefault(&self) -> bool {
        self.prefault.unwrap_or(false)
    }
    pub(crate) fn is_lock(&self) -> bool {
        self.lock.unwrap_or(false)
    }
    pub(crate) fn huge(&self) -> HugePages {
        self.huge_pages.unwrap_or_default()
    }
    pub(crate) fn is_persist(&self) -> bool {
        self.persist.unwrap_or(false)
    }
    pub(crate) fn is_remove_after_attach(&self) -> bool {
        self.remove_after_attach.unwrap_or(false)
    }
    pub(crate) fn is_allow_unsealed(&self) -> bool {
        self.allow_unsealed.unwrap_or(false)
    }
    pub(crate) fn is_reserve(&self) -> bool {
        self.reserve.unwrap_or(true)
    }

    /// Checks, before any system call, that `backing` can honour these
    /// options for `op`, and returns the size to create with (create) or the
    /// minimum size (open, `from_fd`; 0 when unset).
    pub(crate) fn validate(&self, op: Op, backing: &Backing) -> Result<u64, Error> {
        let unsupported = |option, hint| Err(Error::unsupported(op, backing, option, hint));
        let named = matches!(
            backing,
            Backing::Posix { .. } | Backing::SysV { .. } | Backing::File { .. }
        );
        let has_fd = matches!(
            backing,
            Backing::Posix { .. } | Backing::Memfd { .. } | Backing::File { .. }
        );
        let set = |o: Option<bool>| o == Some(true);

        if op == Op::Create {
            if set(self.read_only) {
                return unsupported(
                    "read_only",
                    "a creator maps read-write; open the region read-only in the readers",
                );
            }
            if self.mode.is_some() && !named {
                return unsupported(
                    "mode",
                    "this backing has no name in any namespace, so there are no permissions to \
                     set; it is shared by fork, fd inheritance or fd passing",
                );
            }
            if self.mode.is_some_and(|mode| mode & !0o777 != 0) {
                return unsupported("mode", "only the permission bits 0o777 can be set");
            }
            if set(self.persist) && !named {
                return unsupported(
                    "persist",
                    "this backing has no name to keep: the kernel frees it when the last \
                     mapping and fd go",
                );
            }
            if set(self.reserve) && !has_fd {
                return unsupported(
                    "reserve",
                    "this backing has no file to posix_fallocate; use prefault(true) to \
                     populate the pages instead",
                );
            }
            if self.allow_unsealed.is_some() {
                return unsupported("allow_unsealed", "it applies to Region::from_fd only");
            }
            if matches!(
                backing,
                Backing::SysV {
                    key: SysvKey::Id(_)
                }
            ) {
                return unsupported(
                    "backing",
                    "a shmid names an existing segment; create with a key, ftok or IPC_PRIVATE",
                );
            }
        } else {
            if self.mode.is_some() {
                return unsupported("mode", "the creator sets the mode; open cannot change it");
            }
            if self.persist.is_some() {
                return unsupported("persist", "an opener never removes the object");
            }
            if self.reserve.is_some() {
                return unsupported("reserve", "pages are reserved by the creator, at create");
            }
            if self.allow_unsealed.is_some() && op != Op::FromFd {
                return unsupported("allow_unsealed", "it applies to Region::from_fd only");
            }
        }
        if self.remove_after_attach.is_some() && !matches!(backing, Backing::SysV { .. }) {
            return unsupported(
                "remove_after_attach",
                "only SysV segments outlive their name while attached by id; for the other \
                 named backings call Region::unlink once the peers have opened it",
            );
        }
        if self.huge() == HugePages::Explicit {
            match backing {
                Backing::Posix { .. } => {
                    return unsupported(
                        "huge_pages(Explicit)",
                        "POSIX shm lives on /dev/shm, which has no huge pages; use a memfd \
                         (MFD_HUGETLB) or a File on a hugetlbfs mount, or HugePages::Transparent",
                    );
                }
                Backing::DevZero => {
                    return unsupported(
                        "huge_pages(Explicit)",
                        "/dev/zero cannot be mapped with huge pages; use Backing::Anonymous \
                         (MAP_HUGETLB)",
                    );
                }
                Backing::SysV { .. } if op != Op::Create => {
                    return unsupported(
                        "huge_pages(Explicit)",
                        "the creator chooses SHM_HUGETLB; open the segment without it",
                    );
                }
                _ => {}
            }
        }

        let size = self.size.unwrap_or(0);
        if op == Op::Create {
            if size == 0 {
                return Err(Error::invalid_size(
                    op,
                    backing,
                    size,
                    "create needs a non-zero size: RegionOptions::new().size(bytes)".to_owned(),
                ));
            }
            if size > isize::MAX as u64 || i64::try_from(size).is_err() {
                return Err(Error::invalid_size(
                    op,
                    backing,
                    size,
                    "larger than the address space".to_owned(),
                ));
            }
            if self.huge() == HugePages::Explicit {
                let huge = crate::map::huge_page_size();
                if size % huge != 0 {
                    return Err(Error::invalid_size(
                        op,
                        backing,
                        size,
                        format!(
                            "explicit huge pages need a multiple of the huge page size ({huge} bytes)"
                        ),
                    ));
                }
            }
        }
        Ok(size)
    }
}
