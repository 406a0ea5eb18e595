//! Errors: what was tried, on what, why it failed, and what to do about it.
//!
//! [`Error`] is one enum for every operation of the crate. Each variant carries
//! the operation ([`Op`]) and a description of the object (`POSIX shm "/ticks"`,
//! `SysV shm key 0x52000001`, `file "/tmp/x"`, ...), and an OS failure keeps
//! the OS error as [`source()`](std::error::Error::source). Callers match on
//! [`Error::kind`], which is stable across wording changes; the text is for
//! people.

use std::fmt;
use std::io;

use nix::errno::Errno;

use crate::Backing;
use crate::options::{HugePages, RegionOptions};

/// What [`Region`](crate::Region) or [`fdpass`](crate::fdpass) was doing when
/// it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// [`Region::create`](crate::Region::create).
    Create,
    /// [`Region::open`](crate::Region::open).
    Open,
    /// [`Region::from_fd`](crate::Region::from_fd) and
    /// [`Region::from_inherited_fd`](crate::Region::from_inherited_fd).
    FromFd,
    /// [`Region::unlink`](crate::Region::unlink) and
    /// [`Region::remove`](crate::Region::remove).
    Unlink,
    /// [`Region::set_inheritable`](crate::Region::set_inheritable).
    SetInheritable,
    /// [`Region::check_intact`](crate::Region::check_intact).
    Check,
    /// [`Region::list`](crate::Region::list).
    List,
    /// [`fdpass::send_fd`](crate::fdpass::send_fd).
    SendFd,
    /// [`fdpass::recv_fd`](crate::fdpass::recv_fd).
    RecvFd,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Create => "create",
            Op::Open => "open",
            Op::FromFd => "open from fd",
            Op::Unlink => "unlink",
            Op::SetInheritable => "set inheritable",
            Op::Check => "check",
            Op::List => "list",
            Op::SendFd => "send fd over",
            Op::RecvFd => "receive fd from",
        })
    }
}

/// The kind of an [`Error`], for matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Exclusive create found the name, key or path taken (`EEXIST`).
    AlreadyExists,
    /// Open found no such name, key, id or path (`ENOENT`, `EINVAL` for a
    /// SysV id).
    NotFound,
    /// The caller lacks permission (`EACCES`, `EPERM`).
    PermissionDenied,
    /// A POSIX shm name or memfd label breaks a rule (checked before any
    /// system call), or the name is too long for the OS.
    InvalidName,
    /// The requested size is zero, missing, too large, or not a multiple of
    /// the huge page size.
    InvalidSize,
    /// The object exists but is smaller than the caller's minimum size.
    TooSmall,
    /// The object exists but has length zero (its creator has not sized it
    /// yet, or crashed before it did).
    Empty,
    /// A received memfd lacks the seals that make its size immutable.
    Unsealed,
    /// The backing or the operation cannot honour an option.
    Unsupported,
    /// No space left where the pages live (`ENOSPC`: `/dev/shm` or the
    /// filesystem is full, or the SysV limits are reached).
    NoSpace,
    /// Explicit huge pages were asked for and none are free.
    HugePagesUnavailable,
    /// The kernel could not allocate or lock the memory (`ENOMEM`).
    OutOfMemory,
    /// The path is a symbolic link, which file open and create refuse
    /// (`O_NOFOLLOW`).
    Symlink,
    /// The object is not a regular file (a directory, a device, ...).
    NotRegular,
    /// A Unix socket message carried no fd, or its control data was
    /// truncated.
    FdPass,
    /// The object no longer backs the whole mapping: a peer truncated it
    /// (perhaps growing it back later), or it no longer exists.
    Truncated,
    /// The name now belongs to another object than the one the region maps
    /// (ours was removed and the name reused), so it was left alone.
    Replaced,
    /// Any other OS error; see [`std::error::Error::source`].
    Other,
}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::NotFound => "no such object",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::InvalidName => "invalid name",
            ErrorKind::InvalidSize => "invalid size",
            ErrorKind::TooSmall => "too small",
            ErrorKind::Empty => "empty",
            ErrorKind::Unsealed => "not sealed",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::NoSpace => "no space left",
            ErrorKind::HugePagesUnavailable => "no huge pages available",
            ErrorKind::OutOfMemory => "out of memory",
            ErrorKind::Symlink => "is a symbolic link",
            ErrorKind::NotRegular => "not a regular file",
            ErrorKind::FdPass => "fd passing failed",
            ErrorKind::Truncated => "truncated under the mapping",
            ErrorKind::Replaced => "the name belongs to another object now",
            ErrorKind::Other => "failed",
        }
    }

    /// The kind of an OS error in general; [`Error::os`] refines it with what
    /// was being done.
    fn from_errno(errno: Errno) -> ErrorKind {
        match errno {
            Errno::EEXIST => ErrorKind::AlreadyExists,
            Errno::ENOENT => ErrorKind::NotFound,
            Errno::EACCES | Errno::EPERM => ErrorKind::PermissionDenied,
            Errno::ENOSPC => ErrorKind::NoSpace,
            Errno::ENOMEM => ErrorKind::OutOfMemory,
            Errno::ELOOP => ErrorKind::Symlink,
            Errno::ENAMETOOLONG => ErrorKind::InvalidName,
            _ => ErrorKind::Other,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// An error from this crate.
///
/// Every variant names the operation and the object; match on
/// [`kind`](Error::kind) rather than on variants or text.
///
/// # Examples
///
/// ```
/// use ringway_region::{Backing, ErrorKind, Region, RegionOptions};
///
/// let err = Region::create(&Backing::posix("no/slash/allowed"), &RegionOptions::new().size(64))
///     .unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidName);
/// assert!(err.to_string().contains("no/slash/allowed"));
/// // What `main` returning this error prints is the message too; `{:#?}` shows the fields.
/// assert_eq!(format!("{err:?}"), err.to_string());
/// assert!(format!("{err:#?}").starts_with("InvalidName {"));
/// ```
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    Os {
        /// What was being done.
        op: Op,
        /// The object, e.g. `POSIX shm "/ticks"`.
        what: String,
        /// The system call that failed, e.g. `shm_open`.
        call: &'static str,
        /// The kind, refined by context (e.g. `ENOMEM` with explicit huge
        /// pages is [`ErrorKind::HugePagesUnavailable`]).
        kind: ErrorKind,
        /// What to do about it, when there is something to say.
        hint: Option<String>,
        /// The OS error.
        source: io::Error,
    },
    /// A POSIX shm name or memfd label breaks a rule. Checked before any
    /// system call, so nothing was created.
    InvalidName {
        /// What was being done.
        op: Op,
        /// The object, e.g. `POSIX shm "a/b"`.
        what: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The options ask for something the backing or the operation cannot do.
    Unsupported {
        /// What was being done.
        op: Op,
        /// The object.
        what: String,
        /// The option, e.g. `persist`.
        option: &'static str,
        /// Why, and what to use instead.
        hint: &'static str,
    },
    /// The size cannot be used.
    InvalidSize {
        /// What was being done.
        op: Op,
        /// The object.
        what: String,
        /// The size asked for, in bytes.
        size: u64,
        /// Why it cannot be used.
        reason: String,
    },
    /// The object has length zero.
    Empty {
        /// What was being done.
        op: Op,
        /// The object.
        what: String,
    },
    /// The object is smaller than the caller's minimum.
    TooSmall {
        /// What was being done.
        op: Op,
        /// The object.
        what: String,
        /// Its real size, in bytes.
        size: u64,
        /// The minimum asked for with [`RegionOptions::size`](crate::RegionOptions::size).
        required: u64,
    },
    /// The object is not a regular file.
    NotRegular {
        /// What was being done.
        op: Op,
        /// The object.
        what: String,
        /// What it is instead, e.g. `directory`.
        file_type: &'static str,
    },
    /// A received memfd lacks `F_SEAL_SHRINK` or `F_SEAL_GROW`.
    Unsealed {
        /// The object.
        what: String,
        /// The seals it has (`F_GET_SEALS`).
        seals: i32,
    },
    /// A Unix socket message carried no fd or arrived truncated.
    FdPass {
        /// [`Op::SendFd`] or [`Op::RecvFd`].
        op: Op,
        /// The socket.
        what: String,
        /// What went wrong.
        reason: &'static str,
    },
    /// [`Region::check_intact`](crate::Region::check_intact) found that the object no longer
    /// backs the whole mapping.
    Truncated {
        /// The object.
        what: String,
        /// The mapped length, in bytes.
        mapped: u64,
        /// The object's size now; `None` if it no longer exists.
        size: Option<u64>,
        /// Truncated pages this process touched, which the `SIGBUS` guard replaced by private
        /// zero pages ([`Region::truncation_faults`](crate::Region::truncation_faults)).
        faults: u64,
    },
    /// [`Region::unlink`](crate::Region::unlink) (or the creator's drop) found the name taken
    /// by another object than the one the region maps, and left it alone.
    Replaced {
        /// The object as the region knows it, e.g. `POSIX shm "/ticks"`.
        what: String,
    },
}

impl Error {
    /// The kind of error, for matching.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Os { kind, .. } => *kind,
            Error::InvalidName { .. } => ErrorKind::InvalidName,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::InvalidSize { .. } => ErrorKind::InvalidSize,
            Error::Empty { .. } => ErrorKind::Empty,
            Error::TooSmall { .. } => ErrorKind::TooSmall,
            Error::NotRegular { .. } => ErrorKind::NotRegular,
            Error::Unsealed { .. } => ErrorKind::Unsealed,
            Error::FdPass { .. } => ErrorKind::FdPass,
            Error::Truncated { .. } => ErrorKind::Truncated,
            Error::Replaced { .. } => ErrorKind::Replaced,
        }
    }

    /// The operation that failed.
    pub fn op(&self) -> Op {
        match self {
            Error::Os { op, .. }
            | Error::InvalidName { op, .. }
            | Error::Unsupported { op, .. }
            | Error::InvalidSize { op, .. }
            | Error::Empty { op, .. }
            | Error::TooSmall { op, .. }
            | Error::NotRegular { op, .. }
            | Error::FdPass { op, .. } => *op,
            Error::Unsealed { .. } => Op::FromFd,
            Error::Truncated { .. } => Op::Check,
            Error::Replaced { .. } => Op::Unlink,
        }
    }

    /// The OS error number, if a system call failed.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Os { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// A failed system call `call` during `op` on `backing`, with a hint chosen
    /// by kind and backing.
    pub(crate) fn os(op: Op, backing: &Backing, call: &'static str, errno: Errno) -> Error {
        Error::os_on(op, backing.to_string(), call, errno, Some(backing))
    }

    /// A failed system call on something that is not a backing (a socket,
    /// `/dev/shm` itself).
    pub(crate) fn os_on(
        op: Op,
        what: String,
        call: &'static str,
        errno: Errno,
        backing: Option<&Backing>,
    ) -> Error {
        let mut kind = ErrorKind::from_errno(errno);
        if call == "mlock" && matches!(errno, Errno::ENOMEM | Errno::EPERM | Errno::EAGAIN) {
            // mlock(2): "ENOMEM ... the caller had a nonzero RLIMIT_MEMLOCK soft
            // resource limit, but tried to lock more memory than the limit
            // permitted"; EPERM when the limit is zero.
            kind = ErrorKind::OutOfMemory;
        }
        let hint = backing.and_then(|b| hint(op, b, call, kind));
        Error::Os {
            op,
            what,
            call,
            kind,
            hint,
            source: io::Error::from(errno),
        }
    }

    /// A failed system call during create: like [`Error::os`], and when
    /// explicit huge pages were requested, an `ENOMEM`/`ENOSPC` that means "no
    /// huge pages" becomes [`ErrorKind::HugePagesUnavailable`].
    pub(crate) fn os_create(
        backing: &Backing,
        call: &'static str,
        errno: Errno,
        opts: &RegionOptions,
    ) -> Error {
        let err = Error::os(Op::Create, backing, call, errno);
        if opts.huge() == HugePages::Explicit {
            err.huge_pages_context()
        } else {
            err
        }
    }

    fn huge_pages_context(self) -> Error {
        match self {
            Error::Os {
                op,
                what,
                call,
                kind,
                source,
                ..
            } if matches!(kind, ErrorKind::OutOfMemory | ErrorKind::NoSpace) && call != "mlock" => {
                let hint = Some(
                    "no free huge pages: reserve some (`echo 64 > /proc/sys/vm/nr_hugepages`), \
                     or use HugePages::Transparent"
                        .to_owned(),
                );
                Error::Os {
                    op,
                    what,
                    call,
                    kind: ErrorKind::HugePagesUnavailable,
                    hint,
                    source,
                }
            }
            other => other,
        }
    }

    pub(crate) fn unsupported(
        op: Op,
        backing: &Backing,
        option: &'static str,
        hint: &'static str,
    ) -> Error {
        Error::Unsupported {
            op,
            what: backing.to_string(),
            option,
            hint,
        }
    }

    pub(crate) fn invalid_size(op: Op, backing: &Backing, size: u64, reason: String) -> Error {
        Error::InvalidSize {
            op,
            what: backing.to_string(),
            size,
            reason,
        }
    }
}

/// How to get the `ringway` tool that hints name: it is not on a system by default.
pub(crate) const TOOL: &str =
    "the ringway tool installs with `cargo install --path crates/cli` from ringway's source";

/// The hint for an OS failure, by kind and backing.
fn hint(op: Op, backing: &Backing, call: &'static str, kind: ErrorKind) -> Option<String> {
    let hint = match (kind, backing) {
        (ErrorKind::AlreadyExists, Backing::Posix { name }) => format!(
            "another process created it, or a crashed run left it; remove it with \
             `ringway rm {name}` ({TOOL}) or pick another name"
        ),
        (ErrorKind::AlreadyExists, Backing::SysV { .. }) => "another process created it, or a \
            crashed run left it; remove it with `ipcrm` (see `ipcs -m`) or pick another key"
            .to_owned(),
        (ErrorKind::AlreadyExists, Backing::File { .. }) => {
            "another process created it, or a crashed run left it; remove the file or pick \
             another path"
                .to_owned()
        }
        (ErrorKind::NotFound, Backing::Posix { .. }) if op == Op::Open => {
            "was it created, and in the same mount namespace? names live in /dev/shm".to_owned()
        }
        (ErrorKind::NotFound, Backing::SysV { .. }) if op == Op::Open => {
            "was it created, in the same IPC namespace? once removed (IPC_RMID) a segment can \
             only be attached by shmid, until its last process detaches"
                .to_owned()
        }
        (ErrorKind::NotFound, Backing::SysV { .. }) if call == "ftok" => {
            "ftok needs an existing path".to_owned()
        }
        (ErrorKind::NotFound, Backing::File { .. }) => {
            "was it created? (create also needs the parent directory to exist)".to_owned()
        }
        (ErrorKind::PermissionDenied, Backing::Posix { .. } | Backing::SysV { .. })
        | (ErrorKind::PermissionDenied, Backing::File { .. })
            if op == Op::Open =>
        {
            "created by another user, with mode 0600? the creator can widen it with \
             RegionOptions::mode, or open it read-only"
                .to_owned()
        }
        (ErrorKind::NoSpace, Backing::SysV { .. }) => match backing.room() {
            Some(room) => format!(
                "{} bytes are available under {}: {}",
                room.available, room.place, room.grow
            ),
            None => "the SysV shm limits are reached (see /proc/sys/kernel/shmmni, shmall, \
                     shmmax): remove stale segments (`ipcs -m`)"
                .to_owned(),
        },
        (ErrorKind::NoSpace, Backing::Memfd { .. }) => {
            "the kernel could not reserve its pages (a memory or cgroup limit)".to_owned()
        }
        // Only "full" when it is: a request larger than a small, empty /dev/shm (Docker's
        // 64 MiB) fails the same way.
        (ErrorKind::NoSpace, Backing::Posix { .. } | Backing::File { .. }) => {
            match backing.room() {
                Some(room) if room.available < 1 << 20 => {
                    format!("{} is full: {}", room.place, room.grow)
                }
                Some(room) => format!(
                    "{} has only {} available, less than this object needs: ask for less, or {}",
                    room.place,
                    crate::room::human(room.available),
                    room.grow
                ),
                None => "no space left where its pages live".to_owned(),
            }
        }
        (ErrorKind::OutOfMemory, _) if call == "mlock" => {
            "locking needs CAP_IPC_LOCK or a larger RLIMIT_MEMLOCK (`ulimit -l`)".to_owned()
        }
        (ErrorKind::Symlink, _) => {
            "ringway does not follow symbolic links; give the real path".to_owned()
        }
        _ => return None,
    };
    Some(hint)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Os {
                op,
                what,
                call,
                kind,
                hint,
                source,
            } => {
                write!(f, "{op} {what}: {kind} ({call}: {source})")?;
                if let Some(hint) = hint {
                    write!(f, ": {hint}")?;
                }
                Ok(())
            }
            Error::InvalidName { op, what, reason } => {
                write!(f, "{op} {what}: invalid name: {reason}")
            }
            Error::Unsupported {
                op,
                what,
                option,
                hint,
            } => {
                write!(f, "{op} {what}: option `{option}` is not supported: {hint}")
            }
            Error::InvalidSize {
                op,
                what,
                size,
                reason,
            } => {
                write!(f, "{op} {what}: invalid size {size}: {reason}")
            }
            Error::Empty { op, what } => write!(
                f,
                "{op} {what}: the object is empty (length 0): its creator has not sized it yet, \
                 or crashed before it did"
            ),
            Error::TooSmall {
                op,
                what,
                size,
                required,
            } => write!(
                f,
                "{op} {what}: too small: it has {size} bytes, at least {required} are required \
                 (was it created by another version, or for another purpose?)"
            ),
            Error::NotRegular {
                op,
                what,
                file_type,
            } => {
                write!(f, "{op} {what}: not a regular file but a {file_type}")
            }
            Error::Unsealed { what, seals } => write!(
                f,
                "open {what} from fd: not sealed (seals {seals:#x}): without F_SEAL_SHRINK and \
                 F_SEAL_GROW a peer could truncate it, and this process would read zeros where \
                 the shared contents were (the SIGBUS guard keeps it alive, not the data); \
                 create it with Region::create(&Backing::memfd(..)) or accept the risk with \
                 RegionOptions::allow_unsealed(true)"
            ),
            Error::FdPass { op, what, reason } => write!(f, "{op} {what}: {reason}"),
            Error::Replaced { what } => write!(
                f,
                "unlink {what}: the name now belongs to another object, not the one this region \
                 maps, so it was left alone: ours was removed and the name reused (by another \
                 process, or by a later create); if that object is stale, remove it by name \
                 (Region::remove, or `ringway rm`: {TOOL})"
            ),
            Error::Truncated {
                what,
                mapped,
                size,
                faults,
            } => {
                write!(f, "check {what}: truncated: {mapped} bytes are mapped")?;
                match size {
                    None => f.write_str(" but the object no longer exists")?,
                    Some(size) if size < mapped => {
                        write!(f, " but the object has {size} bytes now")?;
                    }
                    Some(size) => write!(f, " and the object has {size} bytes again")?,
                }
                if *faults > 0 {
                    let (pages, were) = if *faults == 1 {
                        ("page", "was")
                    } else {
                        ("pages", "were")
                    };
                    let joint = match size {
                        Some(size) if size >= mapped => "but",
                        _ => "and",
                    };
                    write!(
                        f,
                        ", {joint} {faults} truncated {pages} of the mapping {were} touched and \
                         replaced by private zero pages, which no other process sees"
                    )?;
                }
                f.write_str(
                    "; the shared contents can no longer be trusted: use a sealed memfd \
                     (Backing::Memfd), which no process can truncate, or find out who truncates \
                     it (any process that can open it for writing)",
                )
            }
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            // What `fn main() -> Result<(), Box<dyn Error>>` prints: the message, not the
            // struct.
            return fmt::Display::fmt(self, f);
        }
        match self {
            Error::Os {
                op,
                what,
                call,
                kind,
                hint,
                source,
            } => f
                .debug_struct("Os")
                .field("op", op)
                .field("what", what)
                .field("call", call)
                .field("kind", kind)
                .field("hint", hint)
                .field("source", source)
                .finish(),
            Error::InvalidName { op, what, reason } => f
                .debug_struct("InvalidName")
                .field("op", op)
                .field("what", what)
                .field("reason", reason)
                .finish(),
            Error::Unsupported {
                op,
                what,
                option,
                hint,
            } => f
                .debug_struct("Unsupported")
                .field("op", op)
                .field("what", what)
                .field("option", option)
                .field("hint", hint)
                .finish(),
            Error::InvalidSize {
                op,
                what,
                size,
                reason,
            } => f
                .debug_struct("InvalidSize")
                .field("op", op)
                .field("what", what)
                .field("size", size)
                .field("reason", reason)
                .finish(),
            Error::Empty { op, what } => f
                .debug_struct("Empty")
                .field("op", op)
                .field("what", what)
                .finish(),
            Error::TooSmall {
                op,
                what,
                size,
                required,
            } => f
                .debug_struct("TooSmall")
                .field("op", op)
                .field("what", what)
                .field("size", size)
                .field("required", required)
                .finish(),
            Error::NotRegular {
                op,
                what,
                file_type,
            } => f
                .debug_struct("NotRegular")
                .field("op", op)
                .field("what", what)
                .field("file_type", file_type)
                .finish(),
            Error::Unsealed { what, seals } => f
                .debug_struct("Unsealed")
                .field("what", what)
                .field("seals", seals)
                .finish(),
            Error::FdPass { op, what, reason } => f
                .debug_struct("FdPass")
                .field("op", op)
                .field("what", what)
                .field("reason", reason)
                .finish(),
            Error::Truncated {
                what,
                mapped,
                size,
                faults,
            } => f
                .debug_struct("Truncated")
                .field("what", what)
                .field("mapped", mapped)
                .field("size", size)
                .field("faults", faults)
                .finish(),
            Error::Replaced { what } => f.debug_struct("Replaced").field("what", what).finish(),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Os { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    /// Converts to an [`io::Error`] whose kind follows [`Error::kind`], for
    /// callers that work in `io::Result`.
    fn from(err: Error) -> io::Error {
        let kind = match err.kind() {
            ErrorKind::AlreadyExists => io::ErrorKind::AlreadyExists,
            ErrorKind::NotFound => io::ErrorKind::NotFound,
            ErrorKind::PermissionDenied => io::ErrorKind::PermissionDenied,
            ErrorKind::InvalidName | ErrorKind::InvalidSize => io::ErrorKind::InvalidInput,
            ErrorKind::Unsupported => io::ErrorKind::Unsupported,
            ErrorKind::NoSpace => io::ErrorKind::StorageFull,
            ErrorKind::OutOfMemory | ErrorKind::HugePagesUnavailable => io::ErrorKind::OutOfMemory,
            ErrorKind::TooSmall
            | ErrorKind::Empty
            | ErrorKind::Unsealed
            | ErrorKind::NotRegular
            | ErrorKind::Symlink
            | ErrorKind::FdPass
            | ErrorKind::Truncated => io::ErrorKind::InvalidData,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truncated(size: Option<u64>, faults: u64) -> String {
        Error::Truncated {
            what: "POSIX shm \"/ticks\"".to_owned(),
            mapped: 16384,
            size,
            faults,
        }
        .to_string()
    }

    #[test]
    fn truncated_says_what_happened_and_what_to_do() {
        let shrunk = truncated(Some(4096), 0);
        assert!(
            shrunk.starts_with(
                "check POSIX shm \"/ticks\": truncated: 16384 bytes are mapped but the object \
                 has 4096 bytes now; "
            ),
            "{shrunk}"
        );
        assert!(shrunk.contains("sealed memfd (Backing::Memfd)"), "{shrunk}");
        assert!(shrunk.contains("find out who truncates it"), "{shrunk}");

        let touched = truncated(Some(4096), 3);
        assert!(
            touched.contains(
                "has 4096 bytes now, and 3 truncated pages of the mapping were touched and \
                 replaced by private zero pages"
            ),
            "{touched}"
        );
        let regrown = truncated(Some(16384), 1);
        assert!(
            regrown
                .contains("has 16384 bytes again, but 1 truncated page of the mapping was touched"),
            "{regrown}"
        );
        let gone = truncated(None, 0);
        assert!(gone.contains("but the object no longer exists;"), "{gone}");
    }
}
