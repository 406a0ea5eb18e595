//! How much room a new object of a backing has before it is created: the free space of the
//! filesystem its pages live on (`statvfs(3)`: tmpfs for POSIX shm, the file's own filesystem),
//! or the System V limits. Callers check a size against it to refuse early, with an error that
//! says how much was asked and how much there is, instead of a bare `ENOSPC`, or a `SIGBUS` at
//! first touch where nothing reserved the pages.

use std::path::{Path, PathBuf};

use nix::sys::statvfs::statvfs;

use crate::Backing;

/// Where a new object's pages would live and how much room is there now.
///
/// # Examples
/// ```
/// use ringway_region::Backing;
/// if let Some(room) = Backing::posix("/ticks").room() {
///     println!("{} has {} bytes available", room.place, room.available);
/// }
/// assert!(Backing::Anonymous.room().is_none(), "anonymous memory has no filesystem");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Room {
    /// Where, for people: `/dev/shm (a tmpfs of 64 MiB)`, `the filesystem of "/tmp"`,
    /// `the System V limits (kernel.shmmax, kernel.shmall)`.
    pub place: String,
    /// Bytes a new object can take there now.
    pub available: u64,
    /// How to make more room there, for people.
    pub grow: &'static str,
}

/// Where POSIX shared memory objects live (shm_overview(7): "on Linux, shared memory objects
/// are created in a (tmpfs(5)) virtual filesystem, normally mounted under /dev/shm").
const SHM_DIR: &str = "/dev/shm";

impl Backing {
    /// The room a new object of this backing has now, or `None` where no filesystem or fixed
    /// limit applies (anonymous and `/dev/zero` mappings and memfds take ordinary memory), or
    /// where it cannot be read.
    #[must_use]
    pub fn room(&self) -> Option<Room> {
        match self {
            Backing::Posix { .. } => {
                let (available, total) = fs_room(Path::new(SHM_DIR))?;
                Some(Room {
                    place: format!("{SHM_DIR} (a tmpfs of {})", human(total)),
                    available,
                    grow: "make /dev/shm larger (`mount -o remount,size=1G /dev/shm`; in Docker, \
                           `docker run --shm-size=1g`), or remove stale segments \
                           (`ringway ls`, `ringway clean`; the ringway tool installs with \
                           `cargo install --path crates/cli` from ringway's source)",
                })
            }
            Backing::File { path } => {
                let dir = parent_dir(path);
                let (available, _) = fs_room(&dir)?;
                Some(Room {
                    place: format!("the filesystem of {:?}", dir.display().to_string()),
                    available,
                    grow: "free space on that filesystem, or put the file elsewhere",
                })
            }
            Backing::SysV { .. } => sysv_room(),
            _ => None,
        }
    }
}

/// `(available to an unprivileged user, total)` bytes of the filesystem holding `dir`.
fn fs_room(dir: &Path) -> Option<(u64, u64)> {
    let stat = statvfs(dir).ok()?;
    let unit = stat.fragment_size();
    #[allow(
        clippy::unnecessary_cast,
        reason = "the field types differ between targets"
    )]
    Some((
        (stat.blocks_available() as u64).saturating_mul(unit as u64),
        (stat.blocks() as u64).saturating_mul(unit as u64),
    ))
}

/// The directory a new file at `path` goes into.
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The System V limits: one segment is at most `kernel.shmmax` bytes, and all of them together
/// at most `kernel.shmall` pages (proc(5)).
fn sysv_room() -> Option<Room> {
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let shmmax = read("shmmax")?;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as u64);
    let all = read("shmall")?.saturating_mul(page);
    // Bytes of the existing segments (proc(5), /proc/sysvipc/shm: the fourth column is the
    // size).
    let used: u64 = std::fs::read_to_string("/proc/sysvipc/shm")
        .map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| line.split_whitespace().nth(3)?.parse::<u64>().ok())
                .map(|size| size.div_ceil(page) * page)
                .sum()
        })
        .unwrap_or(0);
    Some(Room {
        place: format!(
            "the System V limits (kernel.shmmax {}, kernel.shmall {} with {} in use)",
            human(shmmax),
            human(all),
            human(used)
        ),
        available: shmmax.min(all.saturating_sub(used)),
        grow: "raise kernel.shmmax and kernel.shmall (`sysctl -w kernel.shmmax=...`), or \
               remove stale segments (`ipcs -m`, `ipcrm`)",
    })
}

/// `64 MiB`, `1.5 GiB`, `512 bytes`.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let rounded = (value * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0} {}", UNITS[unit])
    } else {
        format!("{rounded:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_round_to_one_decimal() {
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(64 << 20), "64 MiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
        assert_eq!(human((2 << 30) + 4096), "2 GiB");
    }

    #[test]
    fn posix_room_is_that_of_dev_shm() {
        let room = Backing::posix("/x")
            .room()
            .expect("/dev/shm is mounted here");
        assert!(
            room.place.starts_with("/dev/shm (a tmpfs of "),
            "{}",
            room.place
        );
        let (available, _) = fs_room(Path::new(SHM_DIR)).unwrap();
        // Others may allocate meanwhile; the two reads are close, not equal.
        assert!(room.available.abs_diff(available) < 64 << 20);
        assert!(Backing::memfd("x").room().is_none());
        assert_eq!(parent_dir(Path::new("ring")), PathBuf::from("."));
        assert_eq!(parent_dir(Path::new("/tmp/ring")), PathBuf::from("/tmp"));
    }
}
