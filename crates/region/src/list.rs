//! Enumerating named segments: POSIX objects in `/dev/shm`, SysV segments in
//! `/proc/sysvipc/shm`. For `ringway ls` and `ringway clean`, and for leak
//! checks in tests.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use nix::errno::Errno;

use crate::error::{Error, Op};
use crate::{Backing, SysvKey};

/// Where POSIX shm objects live on Linux.
pub(crate) const SHM_DIR: &str = "/dev/shm";
/// The kernel's table of SysV segments.
const SYSV_TABLE: &str = "/proc/sysvipc/shm";

/// One named shared memory segment, as [`Region::list`](crate::Region::list)
/// found it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// How to reach it: [`Backing::Posix`] with its name, or [`Backing::SysV`]
    /// by key ([`SysvKey::Key`]) or, for an `IPC_PRIVATE` or removed segment
    /// (key 0), by id ([`SysvKey::Id`]).
    pub backing: Backing,
    /// The SysV key (0 for `IPC_PRIVATE` and for segments marked for
    /// removal); `None` for POSIX.
    pub key: Option<i32>,
    /// The SysV shmid; `None` for POSIX.
    pub shmid: Option<i32>,
    /// Size in bytes.
    pub size: u64,
    /// Owner's user id.
    pub uid: u32,
    /// Permission bits (and, for SysV, `SHM_DEST` `0o1000` when marked for
    /// removal and `SHM_LOCKED` `0o2000`).
    pub mode: u32,
    /// SysV: number of attached processes.
    pub nattch: Option<u64>,
    /// SysV: pid of the creator.
    pub cpid: Option<i32>,
    /// SysV: pid of the last `shmat`/`shmdt`.
    pub lpid: Option<i32>,
}

impl SegmentInfo {
    /// SysV: whether the segment is marked for removal (`IPC_RMID` done; it
    /// goes when the last process detaches).
    pub fn is_removed(&self) -> bool {
        self.key.is_some() && self.mode & 0o1000 != 0
    }
}

/// All POSIX objects and SysV segments.
pub(crate) fn list() -> Result<Vec<SegmentInfo>, Error> {
    let mut all = list_posix(|_| true)?;
    all.extend(list_sysv()?);
    Ok(all)
}

/// POSIX objects whose name (with its leading `/`) starts with `prefix`.
pub(crate) fn list_prefixed(prefix: &str) -> Result<Vec<SegmentInfo>, Error> {
    list_posix(|name| name.starts_with(prefix))
}

fn io_error(what: &str, call: &'static str, e: &io::Error) -> Error {
    let errno = Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    Error::os_on(Op::List, what.to_owned(), call, errno, None)
}

fn list_posix(keep: impl Fn(&str) -> bool) -> Result<Vec<SegmentInfo>, Error> {
    let mut found = Vec::new();
    let entries = match fs::read_dir(SHM_DIR) {
        Ok(entries) => entries,
        // No /dev/shm mounted: no POSIX objects.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(io_error(SHM_DIR, "opendir", &e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_error(SHM_DIR, "readdir", &e))?;
        let Some(file) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        // glibc keeps POSIX semaphores beside the shm objects as "sem.NAME".
        if file.starts_with("sem.") {
            continue;
        }
        let name = format!("/{file}");
        if !keep(&name) {
            continue;
        }
        // The object may be unlinked between readdir and here.
        let Ok(meta) = fs::symlink_metadata(Path::new(SHM_DIR).join(&file)) else {
            continue;
        };
        if !meta.file_type().is_file() || meta.file_type().is_fifo() {
            continue;
        }
        found.push(SegmentInfo {
            backing: Backing::Posix { name },
            key: None,
            shmid: None,
            size: meta.len(),
            uid: meta.uid(),
            mode: meta.mode() & 0o7777,
            nattch: None,
            cpid: None,
            lpid: None,
        });
    }
    found.sort_by_key(|seg| seg.backing.to_string());
    Ok(found)
}

fn list_sysv() -> Result<Vec<SegmentInfo>, Error> {
    let text = match fs::read_to_string(SYSV_TABLE) {
        Ok(text) => text,
        // A kernel without SysV IPC has no table: no segments.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(SYSV_TABLE, "read", &e)),
    };
    Ok(parse_sysv(&text))
}

/// Parses `/proc/sysvipc/shm`: a header line naming the columns (`key shmid
/// perms size cpid lpid nattch uid ...`), then one line per segment, `perms`
/// in octal. Columns are found by name; malformed lines are skipped.
fn parse_sysv(text: &str) -> Vec<SegmentInfo> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let columns: Vec<&str> = header.split_whitespace().collect();
    let col = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(key), Some(shmid), Some(perms), Some(size)) =
        (col("key"), col("shmid"), col("perms"), col("size"))
    else {
        return Vec::new();
    };
    let (cpid, lpid, nattch, uid) = (col("cpid"), col("lpid"), col("nattch"), col("uid"));
    lines
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let field = |i: usize| fields.get(i).copied();
            let num = |i: Option<usize>| i.and_then(field).and_then(|f| f.parse::<i64>().ok());
            let k = i32::try_from(num(Some(key))?).ok()?;
            let id = i32::try_from(num(Some(shmid))?).ok()?;
            let mode = u32::from_str_radix(field(perms)?, 8).ok()?;
            let backing = Backing::SysV {
                key: if k == 0 {
                    SysvKey::Id(id)
                } else {
                    SysvKey::Key(k)
                },
            };
            Some(SegmentInfo {
                backing,
                key: Some(k),
                shmid: Some(id),
                size: field(size)?.parse().ok()?,
                uid: num(uid).and_then(|u| u32::try_from(u).ok()).unwrap_or(0),
                mode,
                nattch: num(nattch).and_then(|n| u64::try_from(n).ok()),
                cpid: num(cpid).and_then(|p| i32::try_from(p).ok()),
                lpid: num(lpid).and_then(|p| i32::try_from(p).ok()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_table() {
        let text = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n\
                    1381061889          7  1600                  4096   812   813      1     0     0     0     0 1700000000 1700000000 1700000000                  4096                     0\n\
                             0          8   600                 12345   900   900      0  1000  1000  1000  1000          0          0 1700000000                     0                     0\n\
                    garbage\n";
        let segs = parse_sysv(text);
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0].key, Some(1_381_061_889));
        assert_eq!(segs[0].shmid, Some(7));
        assert_eq!(segs[0].mode, 0o1600);
        assert!(segs[0].is_removed());
        assert_eq!(segs[0].nattch, Some(1));
        assert_eq!(segs[0].cpid, Some(812));
        assert_eq!(segs[0].lpid, Some(813));
        assert_eq!(
            segs[1].backing,
            Backing::SysV {
                key: SysvKey::Id(8)
            }
        );
        assert_eq!(segs[1].size, 12345);
        assert_eq!(segs[1].uid, 1000);
        assert!(!segs[1].is_removed());
    }

    #[test]
    fn parses_an_empty_table() {
        assert!(parse_sysv("").is_empty());
        assert!(parse_sysv("key shmid perms size\n").is_empty());
    }
}
