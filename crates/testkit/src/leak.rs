//! Finding and removing shared memory a test left behind.

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;

use ringway_region::{Backing, Region, SegmentInfo};

use crate::names::{self, HANDED_OUT, SYSV_KEY_TAG};

/// Something a test left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Leftover {
    /// A POSIX shm object.
    Posix(String),
    /// A SysV segment not marked for removal.
    SysV {
        /// Its key (0 for `IPC_PRIVATE`).
        key: i32,
        /// Its shmid.
        shmid: i32,
    },
    /// A file.
    Path(PathBuf),
}

impl Leftover {
    fn remove(&self) {
        let backing = match self {
            Leftover::Posix(name) => Backing::posix(name),
            Leftover::SysV { shmid, .. } => Backing::sysv_id(*shmid),
            Leftover::Path(path) => Backing::file(path),
        };
        if let Err(err) = Region::remove(&backing) {
            eprintln!("testkit: could not remove leftover {self}: {err}");
        }
    }
}

impl fmt::Display for Leftover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leftover::Posix(name) => write!(f, "POSIX shm {name:?}"),
            Leftover::SysV { key, shmid } => write!(f, "SysV shm key {key:#010x} shmid {shmid}"),
            Leftover::Path(path) => write!(f, "file {path:?}"),
        }
    }
}

/// Guards one test against leaks.
///
/// Create one at the top of each test and take every name from it. When it
/// drops, normally or while unwinding from a failed assertion, it looks for
/// what it handed out: POSIX objects under its own prefix, SysV segments with
/// its keys or tracked shmids (unless marked for removal), and its paths. It
/// removes what it finds and then, unless the test is already panicking,
/// panics to fail the test: something leaked.
///
/// # Examples
///
/// ```
/// use ringway_region::{Backing, Region, RegionOptions};
/// use ringway_testkit::LeakScope;
///
/// let scope = LeakScope::new();
/// let name = scope.posix_name("doc");
/// let region = Region::create(&Backing::posix(&name), &RegionOptions::new().size(4096)).unwrap();
/// drop(region); // removes the name: the scope finds nothing
/// drop(scope);
/// ```
#[derive(Debug)]
pub struct LeakScope {
    prefix: String,
    keys: Mutex<Vec<i32>>,
    shmids: Mutex<Vec<i32>>,
    paths: Mutex<Vec<PathBuf>>,
}

impl Default for LeakScope {
    fn default() -> LeakScope {
        LeakScope::new()
    }
}

impl LeakScope {
    /// A new scope with its own POSIX prefix.
    pub fn new() -> LeakScope {
        LeakScope {
            prefix: format!("{}{}-", names::process_posix_prefix(), names::next()),
            keys: Mutex::new(Vec::new()),
            shmids: Mutex::new(Vec::new()),
            paths: Mutex::new(Vec::new()),
        }
    }

    /// The prefix of this scope's POSIX names.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A POSIX shm name under this scope's prefix.
    ///
    /// # Panics
    ///
    /// As [`unique_posix_name`](crate::unique_posix_name).
    pub fn posix_name(&self, tag: &str) -> String {
        let name = crate::unique_posix_name(tag);
        format!(
            "{}{}",
            self.prefix,
            name.trim_start_matches(&names::process_posix_prefix())
        )
    }

    /// A SysV key ([`unique_sysv_key`](crate::unique_sysv_key)) watched by
    /// this scope.
    pub fn sysv_key(&self) -> i32 {
        let key = crate::unique_sysv_key();
        lock(&self.keys).push(key);
        key
    }

    /// Watches a shmid, for `IPC_PRIVATE` segments (which have no key).
    pub fn track_shmid(&self, shmid: i32) {
        lock(&self.shmids).push(shmid);
    }

    /// A temporary path ([`unique_temp_path`](crate::unique_temp_path))
    /// watched by this scope.
    pub fn temp_path(&self, tag: &str) -> PathBuf {
        let path = crate::unique_temp_path(tag);
        self.track_path(path.clone());
        path
    }

    /// Watches a path made elsewhere.
    pub fn track_path(&self, path: PathBuf) {
        lock(&self.paths).push(path);
    }

    /// What of this scope is still there (nothing is removed).
    pub fn leftovers(&self) -> Vec<Leftover> {
        let mut found = posix_under(&self.prefix);
        let keys = lock(&self.keys).clone();
        let shmids = lock(&self.shmids).clone();
        found.extend(live_sysv().into_iter().filter_map(|seg| {
            let (key, shmid) = (seg.key?, seg.shmid?);
            (keys.contains(&key) || shmids.contains(&shmid))
                .then_some(Leftover::SysV { key, shmid })
        }));
        found.extend(existing(&lock(&self.paths)));
        found
    }
}

impl Drop for LeakScope {
    fn drop(&mut self) {
        let leftovers = self.leftovers();
        for leftover in &leftovers {
            leftover.remove();
        }
        if !leftovers.is_empty() && !std::thread::panicking() {
            let list: Vec<String> = leftovers.iter().map(ToString::to_string).collect();
            panic!("test leaked (now removed): {}", list.join(", "));
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A test that panicked while holding the lock does not make the list wrong.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn posix_under(prefix: &str) -> Vec<Leftover> {
    let found = Region::list_prefixed(prefix).expect("testkit: cannot list /dev/shm");
    found
        .into_iter()
        .filter_map(|seg| match seg.backing {
            Backing::Posix { name } => Some(Leftover::Posix(name)),
            _ => None,
        })
        .collect()
}

/// SysV segments not marked for removal (a removed one goes by itself with
/// its last detach).
fn live_sysv() -> Vec<SegmentInfo> {
    let all = Region::list().expect("testkit: cannot read /proc/sysvipc/shm");
    all.into_iter()
        .filter(|seg| seg.shmid.is_some() && !seg.is_removed())
        .collect()
}

fn existing(paths: &[PathBuf]) -> Vec<Leftover> {
    paths
        .iter()
        .filter(|p| p.symlink_metadata().is_ok())
        .map(|p| Leftover::Path(p.clone()))
        .collect()
}

/// Everything this process handed out or created that is still there,
/// removed: the final check of [`harness::main`](crate::harness::main).
pub(crate) fn process_leftovers() -> Vec<Leftover> {
    let pid = std::process::id() as i32;
    let handed = lock(&HANDED_OUT);
    let mut found = posix_under(&names::process_posix_prefix());
    found.extend(live_sysv().into_iter().filter_map(|seg| {
        let (key, shmid) = (seg.key?, seg.shmid?);
        let ours = handed.keys.contains(&key)
            || (seg.cpid == Some(pid) && (key == 0 || key >> 24 == SYSV_KEY_TAG));
        ours.then_some(Leftover::SysV { key, shmid })
    }));
    found.extend(existing(&handed.paths));
    for leftover in &found {
        leftover.remove();
    }
    found
}
