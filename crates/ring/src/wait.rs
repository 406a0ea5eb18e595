//! Waiting: spin, then yield, then sleep on a futex word of the header, always bounded.
//!
//! The protocol (see `docs/layout.md`, *Waiting and waking*) announces a sleeper in the
//! `waiters` count before it re-checks its condition, and a waker reads that count after it
//! has published, with a full fence on each side (on the waker's, hot side a compiler fence
//! completed by the sleeper's `membarrier` where the kernel allows: see [`crate::barrier`]):
//! either the waker sees the sleeper, or the sleeper sees the publication. A waker makes no
//! system call when nobody sleeps.

use std::time::{Duration, Instant};

use crate::layout::WaitBlock;
use crate::mem::{Mem, WaitWord};
use std::sync::Arc;

use crate::proc::{Liveness, LivenessProbe, PidLiveness, ProbeLiveness, ProcessId};
use crate::sync::Ordering::{Acquire, Relaxed, Release, SeqCst};
use crate::sync::{spin_hint, yield_now};

/// How a blocking call waits for the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitStrategy {
    /// Busy-spin only: the lowest latency, one core burnt while waiting; it never sleeps.
    /// Deadlines and the endpoint's slow-path checks (peer liveness, header, truncation) still
    /// run on their schedule, so a wait for a dead peer ends. A spinning waiter whose peer has
    /// no CPU to run on (both on one core) delays that peer: use it with a core per side.
    /// An endpoint that finds every peer confined to the one CPU it is confined to yields
    /// instead of spinning.
    Spin,
    /// Spin briefly (a few microseconds), then yield, then sleep on the futex. The default:
    /// near-spin latency when the peer is running, no CPU when it is not. An endpoint that
    /// finds every peer confined to the one CPU it is confined to (or one CPU online) sleeps
    /// at once: spinning or yielding there only keeps the peer waiting.
    #[default]
    SpinThenPark,
    /// Sleep on the futex almost at once: the least CPU, a system call per wait.
    Park,
}

impl WaitStrategy {
    /// Spins before yielding; `None`: spin for ever (never yield or sleep).
    pub(crate) fn spins(self) -> Option<u32> {
        if cfg!(ringway_loom) {
            // Models park at once: spinning only multiplies the interleavings loom explores.
            return Some(0);
        }
        match self {
            WaitStrategy::Spin => None,
            WaitStrategy::SpinThenPark => Some(4096),
            WaitStrategy::Park => Some(32),
        }
    }

    /// Yields after spinning, before sleeping.
    pub(crate) fn yields(self) -> u32 {
        match self {
            WaitStrategy::SpinThenPark if !cfg!(ringway_loom) => 16,
            _ => 0,
        }
    }
}

/// How an endpoint attaches and waits.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ringway_ring::{AttachOptions, WaitStrategy};
/// let opts = AttachOptions::new()
///     .wait_strategy(WaitStrategy::Spin)
///     .init_timeout(Duration::from_secs(5))
///     .liveness_interval(Duration::from_millis(20));
/// assert_eq!(opts.strategy(), WaitStrategy::Spin);
/// ```
#[derive(Debug, Clone)]
pub struct AttachOptions {
    pub(crate) init_timeout: Duration,
    pub(crate) liveness_interval: Duration,
    pub(crate) wait: WaitStrategy,
    pub(crate) liveness: Arc<dyn Liveness>,
    pub(crate) interrupt: Option<crate::Interrupt>,
    pub(crate) identity: Option<ProcessId>,
}

impl Default for AttachOptions {
    fn default() -> Self {
        AttachOptions {
            init_timeout: Duration::from_secs(2),
            liveness_interval: Duration::from_millis(50),
            wait: WaitStrategy::default(),
            liveness: Arc::new(PidLiveness),
            interrupt: None,
            identity: None,
        }
    }
}

impl AttachOptions {
    /// The defaults: wait up to 2 s for the creator's `init`, check peer liveness every 50 ms
    /// of waiting, [`WaitStrategy::SpinThenPark`], `/proc`-based liveness.
    #[must_use]
    pub fn new() -> AttachOptions {
        AttachOptions::default()
    }

    /// How long attach waits for a creator that has not finished initialising.
    #[must_use]
    pub fn init_timeout(mut self, timeout: Duration) -> AttachOptions {
        self.init_timeout = timeout;
        self
    }

    /// How often an endpoint runs its slow-path checks (the other side is still alive, the
    /// header and the memory are intact, no dead process holds the next slot); this bounds how
    /// long a crash of the peer goes unnoticed. The checks run from whichever call finds the
    /// ring empty or full once the interval has passed, non-blocking calls included. Clamped
    /// to at least 1 ms; any longer `Duration` is accepted (`Duration::MAX`: practically
    /// never).
    #[must_use]
    pub fn liveness_interval(mut self, interval: Duration) -> AttachOptions {
        self.liveness_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Lets `interrupt` wake the blocking and timed calls of the endpoints attached with
    /// these options: once it is raised they return `Interrupted` (see [`crate::Interrupt`]).
    #[must_use]
    pub fn interrupt(mut self, interrupt: crate::Interrupt) -> AttachOptions {
        self.interrupt = Some(interrupt);
        self
    }

    /// How blocking calls wait.
    #[must_use]
    pub fn wait_strategy(mut self, strategy: WaitStrategy) -> AttachOptions {
        self.wait = strategy;
        self
    }

    /// The wait strategy.
    #[must_use]
    pub fn strategy(&self) -> WaitStrategy {
        self.wait
    }

    /// Replaces the liveness check by a function of pid and start time (for tests that model
    /// deaths with fake pids).
    #[must_use]
    pub fn liveness_probe(mut self, probe: LivenessProbe) -> AttachOptions {
        self.liveness = Arc::new(ProbeLiveness(probe));
        self
    }

    /// Replaces the liveness check (default [`PidLiveness`]): the layer that mapped the ring
    /// supplies the best signal its backing gives, for example a lock the kernel releases
    /// when the process dies, whatever its pid namespace.
    #[must_use]
    pub fn liveness(mut self, liveness: Arc<dyn Liveness>) -> AttachOptions {
        self.liveness = liveness;
        self
    }

    /// Registers under this identity instead of the calling process's (for tests that model
    /// several processes with threads).
    #[must_use]
    pub fn identity(mut self, identity: ProcessId) -> AttachOptions {
        self.identity = Some(identity);
        self
    }
}

/// How long one call may wait: the one parameter of each operation's entry point
/// (`push_with`, `pop_with`, `reserve_with`, `peek_with`), of which the `x`, `x_timeout` and
/// `x_blocking` calls are thin wrappers. Layers above pass theirs straight through.
///
/// # Examples
/// ```
/// use std::time::{Duration, Instant};
/// use ringway_ring::{spsc, PopError, Wait};
/// let (mut tx, mut rx) = spsc::heap(1024)?;
/// let mut out = Vec::new();
/// assert_eq!(rx.pop_with(&mut out, Wait::Try), Err(PopError::Empty));
/// let deadline = Instant::now() + Duration::from_millis(1);
/// assert_eq!(rx.pop_with(&mut out, Wait::Until(deadline)), Err(PopError::Timeout));
/// tx.push_with(b"hi", Wait::Forever)?;
/// assert_eq!(rx.pop_with(&mut out, Wait::For(Duration::from_secs(1)))?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Not at all: the non-blocking calls.
    Try,
    /// Up to this long from the first time the call finds it must wait (any `Duration`; one
    /// too long for the clock means no deadline). A call that succeeds at once never reads
    /// the clock.
    For(Duration),
    /// Until this instant (one already past still makes one attempt).
    Until(Instant),
    /// As long as the other side is there.
    Forever,
}

impl Wait {
    /// `Until(deadline)`, or `Forever` for `None`: the form of a deadline that layers above
    /// keep for a call made of several waits (a select, a request and its reply).
    #[must_use]
    pub fn deadline(deadline: Option<Instant>) -> Wait {
        deadline.map_or(Wait::Forever, Wait::Until)
    }

    /// A waiter for a call that found nothing to do at once; `None` for [`Wait::Try`].
    pub(crate) fn waiter(self, opts: &AttachOptions) -> Option<Waiter> {
        match self {
            Wait::Try => None,
            Wait::For(timeout) => Some(Waiter::new(opts, Some(timeout))),
            Wait::Until(deadline) => Some(Waiter::until(opts, deadline)),
            Wait::Forever => Some(Waiter::new(opts, None)),
        }
    }

    /// A waiter that keeps only the deadline (no interrupt: a select watches the interrupts
    /// of all its arms itself); `None` for [`Wait::Try`].
    pub(crate) fn deadline_waiter(self, strategy: WaitStrategy) -> Option<Waiter> {
        let bare = |timeout| Waiter {
            strategy,
            timeout,
            deadline: None,
            started: false,
            spun: 0,
            yielded: 0,
            solo: false,
            interrupt: None,
        };
        match self {
            Wait::Try => None,
            Wait::For(timeout) => Some(bare(Some(timeout))),
            Wait::Until(deadline) => {
                let mut waiter = bare(Some(Duration::ZERO));
                waiter.started = true;
                waiter.deadline = Some(deadline);
                Some(waiter)
            }
            Wait::Forever => Some(bare(None)),
        }
    }
}

/// What a waiting loop does after one [`Waiter::pause`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pause {
    /// Try the operation again (which also runs the endpoint's slow-path checks when due).
    Retry,
    /// The deadline passed.
    TimedOut,
    /// The endpoint's [`Interrupt`](crate::Interrupt) was raised.
    Interrupted,
}

/// The state of one blocking call: its deadline and how far it has got through spinning and
/// yielding. The liveness schedule is not here but in the endpoint, shared by every call.
#[derive(Debug)]
pub(crate) struct Waiter {
    strategy: WaitStrategy,
    timeout: Option<Duration>,
    /// Set by the first clock read (after the first burst of spins): a call that finds its
    /// message or its room at once, or within a few microseconds, never reads the clock
    /// (about 30 ns in a VM, the price of a whole message). Deadlines therefore start a few
    /// microseconds late, never early. `None` after the start: no deadline (none was given,
    /// or it lies beyond what `Instant` can represent).
    deadline: Option<Instant>,
    started: bool,
    spun: u32,
    yielded: u32,
    /// The peer cannot run while this thread spins (they share one CPU): spinning only delays
    /// it, so the wait yields instead (see [`crate::cpu`]).
    solo: bool,
    interrupt: Option<crate::Interrupt>,
}

fn block(mem: &Mem, which: WaitWord) -> &WaitBlock {
    match which {
        WaitWord::NotEmpty => &mem.header().not_empty,
        WaitWord::NotFull => &mem.header().not_full,
    }
}

impl Waiter {
    /// A wait of at most `timeout` (`None`: no deadline, only the peer's departure ends it).
    #[inline]
    pub(crate) fn new(opts: &AttachOptions, timeout: Option<Duration>) -> Waiter {
        Waiter {
            strategy: opts.wait,
            timeout,
            deadline: None,
            started: false,
            spun: 0,
            yielded: 0,
            solo: false,
            interrupt: opts.interrupt.clone(),
        }
    }

    /// Tells the waiter whether its peer shares its only CPU: then it does not spin.
    /// [`WaitStrategy::Spin`] yields instead (it still never sleeps), the others sleep at
    /// once.
    #[must_use]
    pub(crate) fn solo(mut self, solo: bool) -> Waiter {
        self.solo = solo;
        self
    }

    fn interrupted(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(crate::Interrupt::is_interrupted)
    }

    /// A wait that ends at `deadline`.
    pub(crate) fn until(opts: &AttachOptions, deadline: Instant) -> Waiter {
        let mut waiter = Waiter::new(opts, Some(Duration::ZERO));
        waiter.started = true;
        waiter.deadline = Some(deadline);
        waiter
    }

    /// Checks the deadline, starting the clock on the first call. Any timeout is accepted:
    /// one past what `Instant` can hold is no deadline at all.
    pub(crate) fn clock(&mut self) -> Pause {
        if self.interrupted() {
            return Pause::Interrupted;
        }
        if cfg!(ringway_loom) || self.timeout.is_none() {
            // Loom has no clock, and a model must be deterministic.
            return Pause::Retry;
        }
        let now = Instant::now();
        if !self.started {
            self.started = true;
            self.deadline = self.timeout.and_then(|t| now.checked_add(t));
        }
        if self.deadline.is_some_and(|d| now >= d) {
            return Pause::TimedOut;
        }
        Pause::Retry
    }

    /// How long until the deadline (`None`: there is none, or the clock has not started).
    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// One step of waiting after an attempt found nothing to do. `ready` re-checks the
    /// condition without side effects (data present, space free, or the peer gone);
    /// `until_due` is how long until the endpoint's slow-path checks are due, which bounds a
    /// sleep so that they run on time.
    pub(crate) fn pause(
        &mut self,
        mem: &Mem,
        which: WaitWord,
        ready: impl Fn() -> bool,
        until_due: impl FnOnce() -> Duration,
    ) -> Pause {
        // Spin on the cheap `ready` check alone, not on the whole operation: the loop is a
        // load, a compare and a `pause`, so a message is seen within a few nanoseconds of
        // its arrival. Every 1024 spins the caller retries the operation (which runs the
        // slow-path checks when due) and the deadline is checked.
        if self.interrupted() {
            return Pause::Interrupted;
        }
        let spins = self.strategy.spins();
        if self.solo && !cfg!(ringway_loom) {
            if spins.is_none() {
                // Spin on one shared CPU: hand the CPU to the peer, never sleep.
                yield_now();
                return self.clock();
            }
        } else if spins.is_none_or(|limit| self.spun < limit) {
            loop {
                self.spun = self.spun.wrapping_add(1);
                if ready() {
                    return Pause::Retry;
                }
                spin_hint();
                if self.spun % 1024 == 0 || spins.is_some_and(|l| self.spun >= l) {
                    return self.clock();
                }
            }
        }
        // Solo, yielding hands the CPU to whatever else is runnable there, for a whole time
        // slice (measured: a 64-byte round trip on one loaded CPU went from 7 µs parked to
        // 4 ms yielding): sleep at once, the peer's wake is what ends the wait.
        if !self.solo && self.yielded < self.strategy.yields() {
            self.yielded += 1;
            yield_now();
            return self.clock();
        }
        match self.clock() {
            Pause::Retry => {}
            other => return other,
        }
        let slice = if cfg!(ringway_loom) {
            None
        } else {
            let mut slice = until_due();
            if let Some(deadline) = self.deadline {
                slice = slice.min(deadline.saturating_duration_since(Instant::now()));
            }
            Some(slice)
        };
        let block = block(mem, which);
        let seq = block.seq.load(Acquire);
        block.waiters.fetch_add(1, SeqCst);
        // SYNC(sleep): pairs with the waker's fence in `notify` (a SeqCst fence, or a compiler
        // fence that this barrier completes: see `crate::barrier`). Either the waker's load of
        // `waiters` sees our increment (and it bumps `seq`, so the FUTEX_WAIT below returns at
        // once if it has not started), or our `ready()` sees what the waker published before
        // its fence.
        // SYNC(interrupt): the SeqCst fence in it pairs with the SeqCst store in
        // `Interrupt::interrupt`.
        let covered = crate::barrier::sleeper_fence();
        if !ready() && !self.interrupted() {
            #[cfg(not(ringway_loom))]
            if !covered {
                // No barrier: a registered waker may have read `waiters` before our increment
                // while its publication was not yet visible to `ready()`. That publication is
                // visible within nanoseconds, and every later wake check sees our increment:
                // sleep briefly, look again, then sleep the rest with the same expectation.
                let short = crate::barrier::UNCOVERED_SLICE;
                self.sleep(mem, which, seq, Some(slice.map_or(short, |s| s.min(short))));
                if !ready() && !self.interrupted() && slice.is_none_or(|s| s > short) {
                    self.sleep(mem, which, seq, slice.map(|s| s - short));
                }
            }
            if covered {
                self.sleep(mem, which, seq, slice);
            }
        }
        block.waiters.fetch_sub(1, SeqCst);
        if self.interrupted() {
            return Pause::Interrupted;
        }
        Pause::Retry
    }

    /// Sleeps on the ring's wait word, and on the interrupt flag if there is one.
    fn sleep(&self, mem: &Mem, which: WaitWord, seq: u32, slice: Option<Duration>) {
        #[cfg(not(ringway_loom))]
        if let Some(interrupt) = &self.interrupt {
            let words = [
                (mem.wait_word(which), seq, true),
                (interrupt.word(), 0, false),
            ];
            if crate::futex::wait_any(words, slice) {
                return;
            }
            // No futex_waitv (Linux before 5.16): slices short enough to see the flag soon.
            let short = Duration::from_millis(10);
            mem.futex_wait(which, seq, Some(slice.map_or(short, |s| s.min(short))));
            return;
        }
        mem.futex_wait(which, seq, slice);
    }
}

/// Wakes the sleepers of `which`, if any, after the caller published something they wait for.
#[inline]
pub(crate) fn notify(mem: &Mem, which: WaitWord) {
    let block = block(mem, which);
    // SYNC(sleep): pairs with the sleeper's fence in `Waiter::pause` (see there, and
    // `crate::barrier`: a compiler fence when this process is registered for the sleepers'
    // `membarrier`, a SeqCst fence otherwise).
    crate::barrier::waker_fence();
    if block.waiters.load(Relaxed) != 0 {
        block.seq.fetch_add(1, Release);
        mem.futex_wake(which);
    }
}
