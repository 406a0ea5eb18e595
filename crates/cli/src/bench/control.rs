//! How the parent and the peers of one measurement coordinate, whatever the transport under
//! test. Each peer inherits three descriptors for it (`--control READY,GO,PAGE`):
//!
//! - a **start gate**, so both peers start their clocks together. Without it a peer that is
//!   still starting (exec, a busy CPU) would eat into the other's window. Each peer builds its
//!   side of the link, writes one byte to the *ready* pipe and blocks reading one byte from the
//!   *go* pipe; the parent, once every peer is ready, writes one byte per peer to *go*. Pipes,
//!   not spinning: a waiting peer must not take the CPU the other needs to start.
//! - a **stop flag**, word 0 of a shared [`SharedMap`], which the throughput receiver sets when
//!   its measured window closes; the sender checks it between batches of messages (a load of a
//!   line nobody writes until then: no coherence traffic) and stops. So the window always lies
//!   inside the sending period, however late either peer was scheduled, and no clock of the
//!   sender decides anything.
//! - a **window phase**, word 1 of the page, so both sides take their CPU time over the same
//!   measured window (see [`PeerControl::open_window`]): the measuring side sets it when its
//!   window opens and closes; the other side looks at it as it moves messages
//!   ([`PeerControl::follow_window`]) and takes its own snapshots when it sees it change.
//! - a **schedule start**, word 2, for the fixed-rate workload: the `CLOCK_MONOTONIC` time at
//!   which the sender's schedule starts, which the receiver needs to know each message's
//!   intended send time.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::shm::{self, SharedMap};
use super::transport::PeerError;

/// The parent's side of one measurement's controls.
#[derive(Debug)]
pub(crate) struct Control {
    /// Where ready bytes arrive; `None` once all arrived or every peer closed it.
    ready_rx: Option<io::PipeReader>,
    /// Where the go bytes are written; `None` once written.
    go_tx: Option<io::PipeWriter>,
    /// The peers' ends `[ready, go, page]`, held until the peers are spawned.
    peer_ends: Option<[OwnedFd; 3]>,
    expected: usize,
    arrived: usize,
}

impl Control {
    /// Controls for `expected` peers.
    ///
    /// # Errors
    /// Creating the pipes or the shared page.
    pub(crate) fn new(expected: usize) -> io::Result<Self> {
        let (ready_rx, ready_tx) = io::pipe()?;
        let (go_rx, go_tx) = io::pipe()?;
        let page = shm::create(c"ringway-bench-control")?;
        Ok(Control {
            ready_rx: Some(ready_rx),
            go_tx: Some(go_tx),
            peer_ends: Some([ready_tx.into(), go_rx.into(), page]),
            expected,
            arrived: 0,
        })
    }

    /// The descriptors each peer inherits, `[ready, go, page]` (empty once
    /// [`Control::close_peer_ends`] ran).
    pub(crate) fn peer_fds(&self) -> Vec<BorrowedFd<'_>> {
        self.peer_ends.iter().flatten().map(AsFd::as_fd).collect()
    }

    /// Closes the parent's copies of the peers' ends once every peer is spawned, so that the
    /// ready pipe reports end of file when all peers are gone.
    pub(crate) fn close_peer_ends(&mut self) {
        self.peer_ends = None;
    }

    /// The descriptor to poll while peers are still getting ready.
    pub(crate) fn pending(&self) -> Option<BorrowedFd<'_>> {
        self.ready_rx.as_ref().map(AsFd::as_fd)
    }

    /// Reads the ready bytes that arrived; once every peer is ready, opens the gate. Errors are
    /// not returned: a peer that is gone is seen, and reported, by the supervisor.
    pub(crate) fn on_readable(&mut self) {
        let Some(rx) = &mut self.ready_rx else {
            return;
        };
        let mut buf = [0u8; 16];
        match rx.read(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Ok(0) | Err(_) => {
                self.ready_rx = None;
                return;
            }
            Ok(n) => self.arrived += n,
        }
        if self.arrived >= self.expected {
            self.ready_rx = None;
            if let Some(mut go) = self.go_tx.take() {
                // A few bytes: one atomic pipe write. It fails only when every peer is gone.
                let _ = go.write_all(&vec![b'g'; self.expected]);
            }
        }
    }
}

/// Word of the shared page: the stop flag.
const STOP: usize = 0;
/// Word of the shared page: the window phase (0 before the window, [`OPEN`], [`CLOSED`]).
const PHASE: usize = 1;
/// Word of the shared page: the fixed-rate schedule's start, in `CLOCK_MONOTONIC` nanoseconds.
const SCHEDULE: usize = 2;
/// Window phases (the page starts zeroed: before).
const OPEN: u64 = 1;
const CLOSED: u64 = 2;

/// The CPU time one peer process used over its measured window (`getrusage(RUSAGE_SELF)`,
/// user + system, every thread of the process), and what it moved meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CpuWindow {
    /// User + system CPU time over the window.
    pub(crate) cpu_ns: u64,
    /// Messages (round trips in a ping-pong) this side moved in the window.
    pub(crate) messages: u64,
    /// The window's length by this side's clock.
    pub(crate) window_ns: u64,
}

impl CpuWindow {
    /// CPU time per message; `None` when no message moved.
    pub(crate) fn ns_per_msg(&self) -> Option<f64> {
        (self.messages > 0).then(|| self.cpu_ns as f64 / self.messages as f64)
    }

    /// CPU time as a percentage of one CPU over the window; `None` for an empty window.
    pub(crate) fn pct(&self) -> Option<f64> {
        (self.window_ns > 0).then(|| self.cpu_ns as f64 * 100.0 / self.window_ns as f64)
    }
}

/// This process's CPU time so far (user + system, all threads), in nanoseconds.
pub(crate) fn process_cpu_ns() -> u64 {
    // SAFETY: `rusage` is plain old data, for which all-zero bytes are a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable `rusage` for the kernel to fill; RUSAGE_SELF needs
    // nothing else. It cannot fail with these arguments; if it did, `ru` stays zero.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut ru) };
    let ns = |t: libc::timeval| {
        u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000
            + u64::try_from(t.tv_usec).unwrap_or(0) * 1_000
    };
    ns(ru.ru_utime) + ns(ru.ru_stime)
}

/// The window this process measured its CPU over: read once by the peer's `main` after the
/// transport has run (a transport cannot hand it back: its `run_peer` returns only the
/// report). One peer process runs one measurement, so one slot is enough.
static CPU: Mutex<Option<CpuWindow>> = Mutex::new(None);

/// The CPU window this process recorded, if its window both opened and closed.
pub(crate) fn take_cpu() -> Option<CpuWindow> {
    CPU.lock().map_or(None, |mut c| c.take())
}

/// A side's own snapshots: where its window opened, and whether it has closed.
#[derive(Debug, Clone, Copy, Default)]
enum Meter {
    #[default]
    Before,
    Open {
        cpu_ns: u64,
        at: Instant,
        messages: u64,
    },
    Closed,
}

/// A peer's side of the controls.
#[derive(Debug)]
pub(crate) struct PeerControl {
    ready: File,
    go: File,
    page: SharedMap,
    meter: std::cell::Cell<Meter>,
}

impl PeerControl {
    /// The controls of a peer that inherited `[ready, go, page]`.
    ///
    /// # Errors
    /// Mapping the shared page.
    pub(crate) fn new([ready, go, page]: [OwnedFd; 3]) -> io::Result<Self> {
        Ok(PeerControl {
            ready: ready.into(),
            go: go.into(),
            page: SharedMap::map(&page)?,
            meter: std::cell::Cell::new(Meter::Before),
        })
    }

    /// Says this side is ready and waits until every side is. Call it once, after the link is
    /// built and right before the timed part starts.
    ///
    /// # Errors
    /// When the parent closed the gate without opening it (it gave up on the measurement).
    pub(crate) fn wait_start(&mut self) -> Result<(), PeerError> {
        self.ready
            .write_all(b"r")
            .map_err(|e| PeerError::io("signal ready on the start gate", e))?;
        let mut byte = [0u8; 1];
        self.go
            .read_exact(&mut byte)
            .map_err(|e| PeerError::io("wait for the start gate", e))
    }

    /// Whether the receiver has asked the sender to stop.
    pub(crate) fn stop_requested(&self) -> bool {
        // SYNC(stop): Relaxed both ends: a bare signal, it publishes no data.
        self.page.word(STOP).load(Ordering::Relaxed) != 0
    }

    /// Asks the sender to stop (the receiver's window is over).
    pub(crate) fn request_stop(&self) {
        // SYNC(stop): Relaxed both ends: a bare signal, it publishes no data.
        self.page.word(STOP).store(1, Ordering::Relaxed);
    }

    /// This side's CPU window opens now, after `messages` messages: takes the snapshot.
    /// Only the first call does anything.
    pub(crate) fn cpu_open(&self, messages: u64) {
        if let Meter::Before = self.meter.get() {
            self.meter.set(Meter::Open {
                cpu_ns: process_cpu_ns(),
                at: Instant::now(),
                messages,
            });
        }
    }

    /// This side's CPU window closes now, after `messages` messages: records what it used
    /// for the report. Does nothing unless the window is open.
    pub(crate) fn cpu_close(&self, messages: u64) {
        if let Meter::Open {
            cpu_ns,
            at,
            messages: at_message,
        } = self.meter.get()
        {
            let window = CpuWindow {
                cpu_ns: process_cpu_ns().saturating_sub(cpu_ns),
                messages: messages.saturating_sub(at_message),
                window_ns: u64::try_from(at.elapsed().as_nanos()).unwrap_or(u64::MAX),
            };
            self.meter.set(Meter::Closed);
            if let Ok(mut slot) = CPU.lock() {
                *slot = Some(window);
            }
        }
    }

    /// The measuring side's window opens (after `messages` messages): its own snapshot, and
    /// the phase the other side follows.
    pub(crate) fn open_window(&self, messages: u64) {
        self.cpu_open(messages);
        // SYNC(window): Release pairs with the Acquire load in `follow_window`.
        self.page.word(PHASE).store(OPEN, Ordering::Release);
    }

    /// The measuring side's window closes (after `messages` messages).
    pub(crate) fn close_window(&self, messages: u64) {
        // SYNC(window): Release pairs with the Acquire load in `follow_window`.
        self.page.word(PHASE).store(CLOSED, Ordering::Release);
        self.cpu_close(messages);
    }

    /// The other side, after `messages` messages: opens or closes its own CPU window when the
    /// measuring side's has opened or closed since it last looked. Cheap enough to call for
    /// every message: a load of a line written twice per measurement.
    #[inline]
    pub(crate) fn follow_window(&self, messages: u64) {
        // SYNC(window): Acquire pairs with the Release stores in `open_window`/`close_window`.
        let phase = self.page.word(PHASE).load(Ordering::Acquire);
        match (phase, self.meter.get()) {
            (OPEN, Meter::Before) => self.cpu_open(messages),
            (CLOSED, Meter::Open { .. }) => self.cpu_close(messages),
            // Closed before this side ever looked while it was open: no window of its own.
            (CLOSED, Meter::Before) => self.meter.set(Meter::Closed),
            // Nothing changed (an impossible value, the page being ours alone, too).
            _ => {}
        }
    }

    /// The fixed-rate sender publishes when its schedule starts (`CLOCK_MONOTONIC` ns, not 0).
    pub(crate) fn set_schedule_start(&self, mono_ns: u64) {
        // SYNC(schedule): Release pairs with the Acquire load in `schedule_start`; the sender
        // stores it before its first message, which the receiver reads before loading it.
        self.page.word(SCHEDULE).store(mono_ns, Ordering::Release);
    }

    /// When the fixed-rate sender's schedule started, once it has published it.
    pub(crate) fn schedule_start(&self) -> Option<u64> {
        // SYNC(schedule): Acquire pairs with the Release store in `set_schedule_start`.
        let t = self.page.word(SCHEDULE).load(Ordering::Acquire);
        (t != 0).then_some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests that record a CPU window share the process's one slot: one at a time.
    static SLOT: Mutex<()> = Mutex::new(());

    /// A peer's controls over a fresh page, and the page's other mapping's controls.
    fn pair() -> (PeerControl, PeerControl) {
        let page = shm::create(c"ringway-bench-control-test").unwrap();
        let side = |page: OwnedFd| {
            let (ready_rx, _) = io::pipe().unwrap();
            let (_, go_tx) = io::pipe().unwrap();
            PeerControl::new([go_tx.into(), ready_rx.into(), page]).unwrap()
        };
        let dup = page.try_clone().unwrap();
        (side(page), side(dup))
    }

    #[test]
    fn the_follower_takes_its_window_from_the_measuring_sides_phase() {
        let _one = SLOT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (measuring, follower) = pair();
        follower.follow_window(3);
        assert!(matches!(follower.meter.get(), Meter::Before));
        measuring.open_window(10);
        follower.follow_window(5);
        assert!(
            matches!(follower.meter.get(), Meter::Open { messages: 5, .. }),
            "opened where it saw the phase change"
        );
        follower.follow_window(7); // still open: nothing changes
        assert!(matches!(
            follower.meter.get(),
            Meter::Open { messages: 5, .. }
        ));
        measuring.close_window(30);
        let mine = take_cpu().expect("the measuring side's window");
        assert_eq!(mine.messages, 20);
        follower.follow_window(25);
        let theirs = take_cpu().expect("the follower's window");
        assert_eq!(theirs.messages, 20);
        assert!(theirs.window_ns > 0 && theirs.pct().is_some());
        // Once closed, nothing more is recorded.
        follower.follow_window(40);
        assert_eq!(take_cpu(), None);
    }

    #[test]
    fn a_follower_that_never_saw_the_window_open_has_no_window() {
        let _one = SLOT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (measuring, follower) = pair();
        measuring.open_window(0);
        measuring.close_window(1);
        let _ = take_cpu();
        follower.follow_window(1);
        assert!(matches!(follower.meter.get(), Meter::Closed));
        assert_eq!(take_cpu(), None);
    }

    #[test]
    fn cpu_windows_divide_by_messages_and_time() {
        let w = CpuWindow {
            cpu_ns: 1_000,
            messages: 4,
            window_ns: 4_000,
        };
        assert_eq!((w.ns_per_msg(), w.pct()), (Some(250.0), Some(25.0)));
        let idle = CpuWindow {
            messages: 0,
            window_ns: 0,
            ..w
        };
        assert_eq!((idle.ns_per_msg(), idle.pct()), (None, None));
        assert!(process_cpu_ns() > 0);
        let start = schedule_pair_start();
        assert_eq!(start, Some(123));
    }

    fn schedule_pair_start() -> Option<u64> {
        let (a, b) = pair();
        assert_eq!(b.schedule_start(), None);
        a.set_schedule_start(123);
        b.schedule_start()
    }
}
