//! Process identity and liveness, for the registration table.
//!
//! A pid alone cannot identify a process: pids are recycled. A registration therefore records
//! the pid *and* the process start time (field 22 of `/proc/<pid>/stat`, in clock ticks since
//! boot), and a process is alive only if a process with that pid exists, is not a zombie, and
//! started at that time.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A process: its pid and its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessId {
    /// The pid.
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start_time: u64,
}

/// Checks whether a registered process is alive: `(pid, start_time) -> alive`, for
/// [`AttachOptions::liveness_probe`](crate::AttachOptions::liveness_probe): tests substitute
/// one to model deaths. It sees pids only; see [`Liveness`] for the full interface.
pub type LivenessProbe = fn(pid: u32, start_time: u64) -> bool;

/// A registered party, as a [`Liveness`] check sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Party {
    /// The registration entry's absolute index (producers first, then consumers).
    pub index: u32,
    /// The registered pid (as seen in the registrant's pid namespace).
    pub pid: u32,
    /// The registered process start time (`0`: unknown).
    pub start_time: u64,
    /// The inode of the registrant's pid namespace (`/proc/self/ns/pid`), `0` if unknown.
    pub pidns: u64,
}

/// Something the kernel releases when the process that holds it dies (for example an
/// open-file-description lock): held by an endpoint for as long as it is attached.
pub type Token = Box<dyn std::any::Any + Send + Sync>;

/// How the ring tells a live party from a dead one.
///
/// The ring stays ignorant of files and fds: the layer that mapped the memory knows the best
/// signal its backing gives (an open-file-description lock on the segment's own fd, say) and
/// supplies it here. [`PidLiveness`] is the default.
pub trait Liveness: Send + Sync + std::fmt::Debug {
    /// Whether `party` (a JOINING or ACTIVE entry) is alive.
    fn alive(&self, party: &Party) -> bool;

    /// Called before this process tries to take entry `index`: acquire the token that will
    /// show it alive, and that the kernel releases when it dies. `Ok(None)` if this
    /// liveness has no token.
    ///
    /// # Errors
    /// A description of what failed (attach then fails with it).
    fn token(&self, index: u32) -> Result<Option<Token>, String> {
        let _ = index;
        Ok(None)
    }

    /// Whether the ring's creator (`party.index` is `u32::MAX`) still holds the ring, for
    /// tools that decide whether a segment is abandoned. The default judges it like a party.
    fn creator_alive(&self, party: &Party) -> bool {
        self.alive(party)
    }
}

/// The default [`Liveness`]: the pid and start time, for parties in this process's pid
/// namespace ([`is_alive`]). A party registered from another pid namespace has a pid that
/// means nothing here, so it is never judged by it: it counts as alive (a layer that can, like
/// `ringway-channel` for fd-backed channels, supplies a better signal).
#[derive(Debug, Clone, Copy, Default)]
pub struct PidLiveness;

impl Liveness for PidLiveness {
    fn alive(&self, party: &Party) -> bool {
        if !pid_judgeable(party.pidns) {
            return true;
        }
        is_alive(party.pid, party.start_time)
    }
}

/// Whether a pid registered from pid namespace `pidns` can be judged here: the namespaces
/// match (or one is unknown), and this process's `/proc` shows its own namespace (a container
/// that shares the host's `/proc` sees other processes under those pids).
#[must_use]
pub fn pid_judgeable(pidns: u64) -> bool {
    let ours = pid_namespace();
    (pidns == 0 || ours == 0 || pidns == ours) && proc_is_ours()
}

/// Whether `/proc` belongs to this process's pid namespace: `/proc/self/stat` names the pid
/// `getpid` returns. Cached per process (see [`process_key`]).
fn proc_is_ours() -> bool {
    static CHECKED: AtomicU64 = AtomicU64::new(0);
    static OURS: AtomicU32 = AtomicU32::new(0);
    let key = process_key();
    if CHECKED.load(Ordering::Acquire) == key {
        return OURS.load(Ordering::Relaxed) == 1;
    }
    let pid = std::process::id();
    let ours = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| s.split_ascii_whitespace().next()?.parse::<u32>().ok())
        .is_none_or(|seen| seen == pid);
    OURS.store(u32::from(ours), Ordering::Relaxed);
    CHECKED.store(key, Ordering::Release);
    ours
}

/// A non-zero number that names this process among its fork ancestors and descendants, for
/// per-process caches: one more than the number of `fork`s that led to it (counted by a
/// `pthread_atfork` child handler, installed before any cache is filled), without a system
/// call. `getpid` would do as a key, but it is a system call (glibc does not cache it), and
/// every liveness probe reads these caches. Under Miri, which has no `pthread_atfork`: the pid.
pub(crate) fn process_key() -> u64 {
    #[cfg(not(miri))]
    {
        forks::generation() + 1
    }
    #[cfg(miri)]
    {
        u64::from(std::process::id())
    }
}

/// The count of forks behind [`process_key`] (also what tells the async reactor that it is in
/// a child, where the parent's waker threads do not exist).
pub(crate) mod forks {
    use std::sync::Once;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    /// Incremented in every child `fork` makes.
    static FORKS: AtomicU64 = AtomicU64::new(0);
    static HANDLER: Once = Once::new();

    extern "C" fn in_child() {
        // Async-signal-safe: one atomic add. Relaxed: the child's only thread reads it.
        FORKS.fetch_add(1, Relaxed);
    }

    /// How many forks led to this process since the handler was installed (it is installed
    /// by the first call, so a value read before a fork differs from the child's).
    pub(crate) fn generation() -> u64 {
        HANDLER.call_once(|| {
            // SAFETY: `in_child` is a valid `extern "C" fn()` that lives for the whole
            // program and only adds to an atomic, which is allowed in a child of a
            // multi-threaded fork; the other two handlers are none.
            unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        });
        FORKS.load(Relaxed)
    }
}

/// A [`LivenessProbe`] as a [`Liveness`] (pids only, whatever the namespace).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProbeLiveness(pub(crate) LivenessProbe);

impl Liveness for ProbeLiveness {
    fn alive(&self, party: &Party) -> bool {
        (self.0)(party.pid, party.start_time)
    }
}

/// The inode of this process's pid namespace (`/proc/self/ns/pid`), or `0` if it cannot be
/// read. Cached per process (keyed by a count of forks, not by `getpid`): a process cannot
/// change its own pid namespace (`unshare` changes its children's), but a forked child must
/// read its own.
#[must_use]
pub fn pid_namespace() -> u64 {
    static NS_KEY: AtomicU64 = AtomicU64::new(0);
    static NS: AtomicU64 = AtomicU64::new(0);
    let key = process_key();
    if NS_KEY.load(Ordering::Acquire) == key {
        return NS.load(Ordering::Relaxed);
    }
    let ns = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
    };
    NS.store(ns, Ordering::Relaxed);
    NS_KEY.store(key, Ordering::Release);
    ns
}

// A cache of the current process's identity, keyed by pid so a forked child recomputes it.
static CACHED_PID: AtomicU32 = AtomicU32::new(0);
static CACHED_START: AtomicU64 = AtomicU64::new(0);

impl ProcessId {
    /// The calling process.
    ///
    /// Falls back to a start time of `0` if `/proc` cannot be read; liveness checks then rely
    /// on the pid alone.
    #[must_use]
    pub fn current() -> ProcessId {
        let pid = std::process::id();
        if CACHED_PID.load(Ordering::Acquire) == pid {
            return ProcessId {
                pid,
                start_time: CACHED_START.load(Ordering::Relaxed),
            };
        }
        // `/proc/self`, not `/proc/<pid>`: in a pid namespace without its own `/proc`, the
        // pid means another process there, but `self` is always this one.
        let start_time = std::fs::read("/proc/self/stat")
            .ok()
            .and_then(|text| parse_stat(&text))
            .map_or(0, |stat| stat.start_time);
        CACHED_START.store(start_time, Ordering::Relaxed);
        CACHED_PID.store(pid, Ordering::Release);
        ProcessId { pid, start_time }
    }

    /// Whether this process is still alive (see [`is_alive`]).
    #[must_use]
    pub fn is_alive(&self) -> bool {
        is_alive(self.pid, self.start_time)
    }
}

/// The default [`LivenessProbe`].
///
/// One read of `/proc/<pid>/stat` (three system calls: open, read, close) answers for a
/// process `/proc` shows: alive if it started at `start_time` and is not a zombie (a recycled
/// pid has another start time). Only when `/proc` does not show the pid is `kill(pid, 0)`
/// asked: `ESRCH` means it is gone; any other answer (`EPERM`: it exists but belongs to
/// another user, hidden by `hidepid`) is taken as alive: a live process is never declared
/// dead for lack of information. A start time of `0` means "unknown" and is not compared.
///
/// Within a batch of probes taken at one moment (the async reactor's round), a verdict is
/// reached once per `(pid, start_time)` and shared by the batch.
#[must_use]
pub fn is_alive(pid: u32, start_time: u64) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    if let Some(shared) = memo::get(pid, start_time) {
        return shared;
    }
    let alive = judge(raw, start_time);
    memo::put(pid, start_time, alive);
    alive
}

/// [`is_alive`] without the memo, for a pid already known to be positive.
fn judge(raw: i32, start_time: u64) -> bool {
    if let Some(stat) = read_stat(raw as u32) {
        return (start_time == 0 || stat.start_time == start_time) && stat.runs();
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks that the pid exists and that we
    // may signal it. It has no memory-safety preconditions.
    #[cfg(not(miri))]
    let rc = unsafe { libc::kill(raw, 0) };
    #[cfg(not(miri))]
    if rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return false;
    }
    // Miri cannot call `kill`; the in-process tests it runs need only "does the pid exist",
    // which `/proc/<pid>` answers as well wherever `/proc` shows every process.
    #[cfg(miri)]
    if !std::path::Path::new(&format!("/proc/{raw}")).exists() {
        return false;
    }
    true
}

/// Runs `f` with the verdicts of [`is_alive`] shared on this thread: each `(pid, start_time)`
/// is judged once, at its first query, and every later query within `f` gets that answer.
///
/// For a batch of probes taken at one moment: the reactor's round, which probes every parked
/// watch together once per liveness interval, asks about the same peer process once however
/// many of its rings are parked (100 receivers fed by one process: one `/proc` read per
/// round, not 100). A verdict is never older than the batch, so a death is seen by the next
/// batch, as without sharing.
pub(crate) fn sharing_verdicts<R>(f: impl FnOnce() -> R) -> R {
    let _round = memo::Round::start();
    f()
}

/// The thread-local memo of [`sharing_verdicts`] (none under loom, whose threads share one
/// OS thread).
mod memo {
    #[cfg(not(ringway_loom))]
    std::thread_local! {
        /// `Some` inside [`sharing_verdicts`](super::sharing_verdicts): the verdicts so far.
        static VERDICTS: std::cell::RefCell<Option<Vec<(u32, u64, bool)>>> =
            const { std::cell::RefCell::new(None) };
    }

    /// Ends the batch when dropped (also on a panic inside it).
    pub(super) struct Round {
        /// Whether this round started the batch (nested rounds share the outer one).
        #[cfg_attr(ringway_loom, allow(dead_code))]
        outer: bool,
    }

    impl Round {
        pub(super) fn start() -> Round {
            #[cfg(not(ringway_loom))]
            let outer = VERDICTS.with(|v| {
                let mut v = v.borrow_mut();
                let outer = v.is_none();
                if outer {
                    *v = Some(Vec::new());
                }
                outer
            });
            #[cfg(ringway_loom)]
            let outer = false;
            Round { outer }
        }
    }

    impl Drop for Round {
        fn drop(&mut self) {
            #[cfg(not(ringway_loom))]
            if self.outer {
                VERDICTS.with(|v| *v.borrow_mut() = None);
            }
        }
    }

    pub(super) fn get(pid: u32, start_time: u64) -> Option<bool> {
        #[cfg(not(ringway_loom))]
        return VERDICTS.with(|v| {
            v.borrow().as_ref().and_then(|seen| {
                seen.iter()
                    .find(|&&(p, s, _)| p == pid && s == start_time)
                    .map(|&(_, _, alive)| alive)
            })
        });
        #[cfg(ringway_loom)]
        {
            let _ = (pid, start_time);
            None
        }
    }

    pub(super) fn put(pid: u32, start_time: u64, alive: bool) {
        #[cfg(not(ringway_loom))]
        VERDICTS.with(|v| {
            if let Some(seen) = v.borrow_mut().as_mut() {
                seen.push((pid, start_time, alive));
            }
        });
        #[cfg(ringway_loom)]
        let _ = (pid, start_time, alive);
    }
}

struct Stat {
    state: u8,
    /// Threads in the thread group (field 20).
    threads: u64,
    start_time: u64,
}

impl Stat {
    /// Whether any thread of the process can still run. A process whose main thread called
    /// `pthread_exit` while other threads go on shows its leader as a zombie (`Z`) with
    /// `num_threads > 1`: it is alive, and must not be judged dead (that would let a survivor
    /// reclaim slots its live threads still hold). A real zombie has one thread left, the
    /// leader, waiting to be reaped.
    fn runs(&self) -> bool {
        match self.state {
            b'X' | b'x' => false,
            b'Z' => self.threads > 1,
            _ => true,
        }
    }
}

/// Reads and parses `/proc/<pid>/stat` with one open, one read (the kernel hands the whole
/// line to a read with room for it) and one close, into a buffer on the stack.
fn read_stat(pid: u32) -> Option<Stat> {
    use std::io::Read;
    let mut file = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    // The line is a few hundred bytes (52 numbers and a command name of at most 64 bytes).
    let mut buf = [0u8; 2048];
    let mut len = 0;
    // Until the line's newline, for a kernel that hands it over in pieces.
    while len < buf.len() && !buf[..len].ends_with(b"\n") {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    parse_stat(&buf[..len])
}

/// Parses `/proc/<pid>/stat`: `pid (comm) state ppid ... starttime ...`. The command name may
/// contain spaces and parentheses, so fields are counted after the *last* `)`.
fn parse_stat(text: &[u8]) -> Option<Stat> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(text.get(close + 1..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    // Field 3 is the state, field 20 the thread count (16 fields later), field 22 the start
    // time (2 fields after that).
    let state = *fields.next()?.as_bytes().first()?;
    let threads = fields.nth(16)?.parse().ok()?;
    let start_time = fields.nth(1)?.parse().ok()?;
    Some(Stat {
        state,
        threads,
        start_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_hostile_command_name() {
        let line = b"1234 (a) b) (c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 20 21\n";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.state, b'S');
        assert_eq!(stat.threads, 17);
        assert_eq!(stat.start_time, 987_654);
    }

    #[test]
    fn rejects_truncated_stat() {
        assert!(parse_stat(b"1234 (x) S 1 2").is_none());
        assert!(parse_stat(b"no paren").is_none());
    }

    #[test]
    fn current_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = ProcessId::current();
        assert_eq!(me.pid, std::process::id());
        assert_ne!(me.start_time, 0, "/proc should be readable in tests");
        assert!(me.is_alive());
        assert!(!is_alive(me.pid, me.start_time + 1));
    }

    #[test]
    fn nonexistent_pids_are_dead() {
        assert!(!is_alive(0, 0));
        assert!(!is_alive(u32::MAX, 0));
        // pid_max is at most 2^22 on Linux.
        assert!(!is_alive((1 << 22) + 1, 0));
    }

    #[test]
    #[cfg_attr(miri, ignore = "spawns a process, which Miri cannot")]
    fn a_reaped_child_is_dead_and_a_zombie_too() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = read_stat(pid).map(|s| s.start_time);
        // Wait until it has exited but is not yet reaped: a zombie.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while read_stat(pid).is_some_and(|s| s.state != b'Z') {
            assert!(std::time::Instant::now() < deadline, "child did not exit");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(
            !is_alive(pid, start.unwrap_or(0)),
            "zombie counted as alive"
        );
        child.wait().unwrap();
        assert!(!is_alive(pid, start.unwrap_or(0)));
    }

    extern "C" fn sleeper(_: *mut libc::c_void) -> *mut libc::c_void {
        loop {
            // SAFETY: sleep has no preconditions.
            unsafe { libc::sleep(60) };
        }
    }

    /// A process whose main thread exited while another thread runs shows its leader as a
    /// zombie; it is alive (review item: a false death triggers MPMC reclaim of live claims).
    #[test]
    #[cfg_attr(miri, ignore = "forks a process, which Miri cannot")]
    fn a_process_whose_main_thread_exited_is_alive_while_a_thread_runs() {
        // SAFETY: the child calls only async-signal-safe functions and raw system calls
        // (pthread_create is not on that list, but glibc supports it in a fork child of a
        // multi-threaded parent as long as the child does not touch locks the parent's other
        // threads held: this one touches none), and leaves with the exit system call.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let mut thread: libc::pthread_t = 0;
            // SAFETY: a valid out-pointer and a thread function of the right signature.
            unsafe {
                libc::pthread_create(&mut thread, std::ptr::null(), sleeper, std::ptr::null_mut());
                // Exit this (the leader) thread only, without unwinding Rust frames.
                libc::syscall(libc::SYS_exit, 0);
            }
            unreachable!("the exit system call returned");
        }
        let pid = pid as u32;
        let start = read_stat(pid).map_or(0, |s| s.start_time);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let stat = read_stat(pid).expect("the child is not reaped yet");
            if stat.state == b'Z' && stat.threads > 1 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the leader never exited"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let alive = is_alive(pid, start);
        // SAFETY: kill and waitpid on our own child.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
            libc::waitpid(pid as i32, std::ptr::null_mut(), 0);
        }
        assert!(
            alive,
            "a zombie leader with a running thread was judged dead"
        );
        assert!(!is_alive(pid, start), "the killed and reaped child is dead");
    }
}
