//! The endpoint's schedule of slow-path checks, on a clock cheap enough to read on every
//! empty or full poll.
//!
//! Every endpoint runs its slow-path checks (the header still says what it said at attach, the
//! memory was not truncated, the peer is alive, no dead claimant holds the next slot) at most
//! once per liveness interval, from whichever call finds the ring empty or full: a polling
//! `try_recv`, a short `recv_timeout` and a long blocking call all share one schedule, kept in
//! the endpoint, so a call shorter than the interval still runs the checks when they are due.
//!
//! That makes the clock part of every empty poll. `CLOCK_MONOTONIC_COARSE` is read from the
//! vDSO without touching the TSC (about 7 ns here, against 35 ns for `CLOCK_MONOTONIC` in this
//! VM); its resolution is the kernel tick (`clock_getres`, 4 ms on this machine). An interval
//! shorter than four ticks would be stretched by that resolution, so such endpoints read the
//! precise clock instead: the checks then run within the interval plus one coarse tick at
//! worst, and within the interval exactly for short intervals.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Nanoseconds since an arbitrary start, from `clock`.
fn now_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes it. Both clocks
    // used here exist on every Linux since 2.6.32, so a failure leaves `ts` at zero, which
    // only makes checks due early (never late).
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// The coarse clock's resolution in nanoseconds (the kernel tick), read once per process.
fn coarse_resolution() -> u64 {
    static RES: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *RES.get_or_init(|| {
        if cfg!(miri) {
            return u64::MAX; // Miri has no clock_getres; the precise clock it has
        }
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: as in `now_ns`; clock_getres only writes `ts`.
        let rc = unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        if rc != 0 {
            return u64::MAX; // unknown: always use the precise clock
        }
        (ts.tv_sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec as u64)
    })
}

/// A duration in nanoseconds, saturating (any `Duration` is accepted, `Duration::MAX`
/// included, and means "practically never").
pub(crate) fn saturating_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// When an endpoint's slow-path checks are next due.
///
/// The first call to [`due`](Schedule::due) after attach is due at once, so that a fresh
/// endpoint checks its peer on its first empty poll.
#[derive(Debug)]
pub(crate) struct Schedule {
    clock: libc::clockid_t,
    interval_ns: u64,
    /// The clock reading at which the checks are next due; `0`: at once. Process-private
    /// (never in shared memory, never modelled by loom): an atomic only so that the waiting
    /// loops can consult it through `&self` while other fields are borrowed; Relaxed is a
    /// plain load and store.
    next: AtomicU64,
}

impl Schedule {
    pub(crate) fn new(interval: Duration) -> Schedule {
        let interval_ns = saturating_ns(interval);
        let clock = if coarse_resolution().saturating_mul(4) <= interval_ns {
            libc::CLOCK_MONOTONIC_COARSE
        } else {
            libc::CLOCK_MONOTONIC
        };
        Schedule {
            clock,
            interval_ns,
            next: AtomicU64::new(0),
        }
    }

    /// `true` if the checks are due now, and if so schedules the next ones one interval on.
    ///
    /// Under loom there is no clock. An endpoint with the shortest interval (1 ms) runs the
    /// checks on every empty or full poll, which is what the models of recovery by polling
    /// rely on; any other never runs them (they multiply the interleavings loom explores, and
    /// the other models do not need them).
    #[inline]
    pub(crate) fn due(&self) -> bool {
        if cfg!(ringway_loom) {
            return self.interval_ns <= 1_000_000;
        }
        let now = now_ns(self.clock);
        if now < self.next.load(Relaxed) {
            return false;
        }
        self.next
            .store(now.saturating_add(self.interval_ns), Relaxed);
        true
    }

    /// Makes the checks due at once: a [`Watch`](crate::select::Watch) of this endpoint that
    /// saw the peer gone, the header changed or a slot stuck calls it, so that the endpoint's
    /// next call runs them instead of reporting `Empty` or `Full` until the interval passes.
    pub(crate) fn expedite(&self) {
        // Relaxed: a process-private word, as in `due` (no data is published through it; the
        // endpoint's checks then read shared memory with their own orderings).
        self.next.store(0, Relaxed);
    }

    /// How long until the checks are due (zero if they are due now), to bound a sleep.
    pub(crate) fn until_due(&self) -> Duration {
        let now = now_ns(self.clock);
        Duration::from_nanos(self.next.load(Relaxed).saturating_sub(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_check_is_due_at_once_then_once_per_interval() {
        let s = Schedule::new(Duration::from_secs(3600));
        assert!(s.due(), "a fresh schedule is due at once");
        assert!(!s.due(), "then not again within the interval");
        assert!(s.until_due() > Duration::from_secs(3000));
    }

    #[test]
    fn a_short_interval_comes_due_again() {
        let s = Schedule::new(Duration::from_millis(1));
        assert!(s.due());
        std::thread::sleep(Duration::from_millis(20));
        assert!(s.due(), "due again after twenty intervals");
    }

    #[test]
    fn any_duration_is_accepted() {
        let s = Schedule::new(Duration::MAX);
        assert!(s.due());
        assert!(!s.due());
        assert!(
            s.until_due() > Duration::from_secs(1 << 30),
            "centuries away"
        );
        assert_eq!(saturating_ns(Duration::MAX), u64::MAX);
    }
}
