//! Waiting: spin, then yield, then sleep on a futex word of the header, always bounded.
//!
//! The protocol (see `docs/layout.md`, *Waiting and waking*) announces a sleeper in the
//! `waiters` count before it re-checks its condition, and a waker reads that count after it
//! has published, with a SeqCst fence on each side: either the waker sees the sleeper, or the
//! sleeper sees the publication. A waker makes no system call when nobody sleeps.

use std::time::{Duration, Instant};

use crate::layout::WaitBlock;
use crate::mem::{Mem, WaitWord};
use crate::proc::{LivenessProbe, ProcessId};
use crate::sync::Ordering::{Acquire, Relaxed, Release, SeqCst};
use crate::sync::{fence, spin_hint, yield_now};

/// How a blocking call waits for the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitStrategy {
    /// Busy-spin only: the lowest latency, one core burnt while waiting. Deadlines and peer
    /// liveness are still checked (every 1024 spins), so it never waits forever.
    Spin,
    /// Spin briefly (a few microseconds), then yield, then sleep on the futex. The default:
    /// near-spin latency when the peer is running, no CPU when it is not.
    #[default]
    SpinThenPark,
    /// Sleep on the futex almost at once: the least CPU, a system call per wait.
    Park,
}

impl WaitStrategy {
    fn spins(self) -> u32 {
        if cfg!(ringway_loom) {
            // Models park at once: spinning only multiplies the interleavings loom explores.
            return 0;
        }
        match self {
            WaitStrategy::Spin => u32::MAX,
            WaitStrategy::SpinThenPark => 4096,
            WaitStrategy::Park => 32,
        }
    }

    fn yields(self) -> u32 {
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
    pub(crate) probe: LivenessProbe,
    pub(crate) identity: Option<ProcessId>,
}

impl Default for AttachOptions {
    fn default() -> Self {
        AttachOptions {
            init_timeout: Duration::from_secs(2),
            liveness_interval: Duration::from_millis(50),
            wait: WaitStrategy::default(),
            probe: crate::proc::is_alive,
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

    /// How often a waiting call checks that the other side is still alive; this bounds how
    /// long a crash of the peer goes unnoticed. Clamped to at least 1 ms.
    #[must_use]
    pub fn liveness_interval(mut self, interval: Duration) -> AttachOptions {
        self.liveness_interval = interval.max(Duration::from_millis(1));
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

    /// Replaces the liveness check (for tests, or processes in different pid namespaces).
    #[must_use]
    pub fn liveness_probe(mut self, probe: LivenessProbe) -> AttachOptions {
        self.probe = probe;
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

/// What a waiting loop does after one [`Waiter::pause`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pause {
    /// Try the operation again.
    Retry,
    /// A liveness interval passed: check the peers (and recover dead claims), then retry.
    CheckPeers,
    /// The deadline passed.
    TimedOut,
}

/// The state of one blocking call.
#[derive(Debug)]
pub(crate) struct Waiter {
    strategy: WaitStrategy,
    timeout: Option<Duration>,
    /// Set by the first clock read (after the first burst of spins): a call that finds its
    /// message or its room at once, or within a few microseconds, never reads the clock
    /// (about 30 ns in a VM, the price of a whole message). Deadlines therefore start a few
    /// microseconds late, never early.
    deadline: Option<Instant>,
    interval: Duration,
    next_check: Option<Instant>,
    spun: u32,
    yielded: u32,
}

fn block(mem: &Mem, which: WaitWord) -> &WaitBlock {
    match which {
        WaitWord::NotEmpty => &mem.header().not_empty,
        WaitWord::NotFull => &mem.header().not_full,
    }
}

impl Waiter {
    /// A wait of at most `timeout` (`None`: no deadline, only liveness checks end it).
    #[inline]
    pub(crate) fn new(opts: &AttachOptions, timeout: Option<Duration>) -> Waiter {
        Waiter {
            strategy: opts.wait,
            timeout,
            deadline: None,
            interval: opts.liveness_interval,
            next_check: None,
            spun: 0,
            yielded: 0,
        }
    }

    /// The time of the next liveness check, starting the clock on the first pause.
    fn started(&mut self) -> Instant {
        match self.next_check {
            Some(at) => at,
            None => {
                let now = Instant::now();
                self.deadline = self.timeout.and_then(|t| now.checked_add(t));
                let at = now + self.interval;
                self.next_check = Some(at);
                at
            }
        }
    }

    fn clock(&mut self) -> Pause {
        if cfg!(ringway_loom) {
            // Loom has no clock, and a model must be deterministic.
            return Pause::Retry;
        }
        let next_check = self.started();
        let now = Instant::now();
        if self.deadline.is_some_and(|d| now >= d) {
            return Pause::TimedOut;
        }
        if now >= next_check {
            self.next_check = Some(now + self.interval);
            return Pause::CheckPeers;
        }
        Pause::Retry
    }

    /// One step of waiting after an attempt found nothing to do. `ready` re-checks the
    /// condition without side effects (data present, space free, or the peer gone).
    pub(crate) fn pause(&mut self, mem: &Mem, which: WaitWord, ready: impl Fn() -> bool) -> Pause {
        // Spin on the cheap `ready` check alone, not on the whole operation: the loop is a
        // load, a compare and a `pause`, so a message is seen within a few nanoseconds of
        // its arrival. The clock is read every 1024 spins.
        let spins = self.strategy.spins();
        if self.spun < spins {
            loop {
                self.spun += 1;
                if ready() {
                    return Pause::Retry;
                }
                spin_hint();
                if self.spun.is_multiple_of(1024) || self.spun >= spins {
                    return self.clock();
                }
            }
        }
        if self.yielded < self.strategy.yields() {
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
            let now = Instant::now();
            let mut slice = self.started().saturating_duration_since(now);
            if let Some(deadline) = self.deadline {
                slice = slice.min(deadline.saturating_duration_since(now));
            }
            Some(slice)
        };
        let block = block(mem, which);
        let seq = block.seq.load(Acquire);
        block.waiters.fetch_add(1, SeqCst);
        // SYNC(sleep): pairs with the fence in `notify`. Either the waker's load of `waiters`
        // sees our increment (and it bumps `seq`, so the FUTEX_WAIT below returns at once if it
        // has not started), or our `ready()` sees what the waker published before its fence.
        fence(SeqCst);
        if !ready() {
            mem.futex_wait(which, seq, slice);
        }
        block.waiters.fetch_sub(1, SeqCst);
        Pause::Retry
    }
}

/// Wakes the sleepers of `which`, if any, after the caller published something they wait for.
#[inline]
pub(crate) fn notify(mem: &Mem, which: WaitWord) {
    let block = block(mem, which);
    // SYNC(sleep): pairs with the fence in `Waiter::pause` (see there).
    fence(SeqCst);
    if block.waiters.load(Relaxed) != 0 {
        block.seq.fetch_add(1, Release);
        mem.futex_wake(which);
    }
}
