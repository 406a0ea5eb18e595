//! What is measured in which order, and for how long.
//!
//! Every (transport, workload, size, and for the fixed-rate workload offered rate) is a
//! *combination*, one row of the results. The idle workload does not depend on the message
//! size: it is measured at the smallest size only. A *trial*
//! measures every combination once; trials run one after the other, so trial 1 of every
//! transport comes before trial 2 of any: a disturbance on the machine (another job, a
//! frequency change) lands on all transports alike instead of on one transport's trials.
//! Within a trial the combinations are ordered by workload, then size, then transport, so the
//! rows that are compared with each other are measured back to back.
//!
//! Time is budgeted, not counted in iterations: each measurement gets the same fixed warm-up
//! (discarded) and measured window, derived from the total budget and the number of
//! measurements, so the run time is predictable whatever the transports' speeds, and a slow
//! transport or a large message simply yields fewer samples. The idle workload's window is
//! its own ([`Timing::idle`]: 1 s by default), since what it measures is CPU per second of idle.

use std::time::Duration;

use super::transport::{PeerSpec, Transport, Workload};

/// One row of the results: a transport, a workload and a message size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Combo {
    /// The transport.
    pub(crate) transport: &'static dyn Transport,
    /// The workload.
    pub(crate) workload: Workload,
    /// The message size in bytes.
    pub(crate) size: usize,
    /// The offered rate (messages per second) of a fixed-rate combination.
    pub(crate) rate: Option<u64>,
}

/// Every combination the transports support, in table order: by workload, then size (then
/// rate), then transport (in the order given). Idle combinations only at the smallest size.
pub(crate) fn combos(
    transports: &[&'static dyn Transport],
    workloads: &[Workload],
    sizes: &[usize],
    rates: &[u64],
) -> Vec<Combo> {
    let mut out = Vec::new();
    let smallest: Vec<usize> = sizes.iter().copied().min().into_iter().collect();
    for &workload in workloads {
        let sizes = if workload == Workload::Idle {
            &smallest
        } else {
            sizes
        };
        let rates: Vec<Option<u64>> = if workload == Workload::Rate {
            rates.iter().copied().map(Some).collect()
        } else {
            vec![None]
        };
        for &size in sizes {
            for &rate in &rates {
                for &transport in transports.iter().filter(|t| t.supports(workload)) {
                    out.push(Combo {
                        transport,
                        workload,
                        size,
                        rate,
                    });
                }
            }
        }
    }
    out
}

/// One measurement: trial `trial` (from 0) of combination `combo` (an index into the list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    /// The trial, from 0.
    pub(crate) trial: usize,
    /// Index of the combination.
    pub(crate) combo: usize,
}

/// The order of all measurements: trial by trial, every combination in each trial.
pub(crate) fn schedule(trials: usize, combos: usize) -> Vec<Step> {
    (0..trials)
        .flat_map(|trial| (0..combos).map(move |combo| Step { trial, combo }))
        .collect()
}

/// How long each measurement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    /// Run and discarded before the window.
    pub(crate) warmup: Duration,
    /// The measured window.
    pub(crate) measure: Duration,
    /// The idle workload's window.
    pub(crate) idle: Duration,
}

/// The idle workload's window by default (`--quick`: [`QUICK_IDLE`]).
pub(crate) const IDLE: Duration = Duration::from_secs(1);
/// The idle workload's window of a `--quick` run.
pub(crate) const QUICK_IDLE: Duration = Duration::from_millis(250);

/// Time a measurement costs besides its windows: starting two processes, setting up, tearing
/// down. Measured at 5 to 10 ms on a 2-core machine; budgeted generously.
pub(crate) const OVERHEAD: Duration = Duration::from_millis(12);

impl Timing {
    /// Splits `budget` evenly over `measurements`: after the fixed overhead, 20% warm-up and
    /// 80% measured (with floors of 2 and 10 ms).
    pub(crate) fn from_budget(budget: Duration, measurements: usize) -> Self {
        let each = budget / u32::try_from(measurements.max(1)).unwrap_or(u32::MAX);
        let usable = each.saturating_sub(OVERHEAD);
        Timing {
            warmup: (usable / 5).max(Duration::from_millis(2)),
            measure: (usable * 4 / 5).max(Duration::from_millis(10)),
            idle: IDLE,
        }
    }

    /// Fixed windows: `measure` (the idle window too), and `warmup` (default: a quarter of
    /// `measure`, at least 2 ms).
    pub(crate) fn fixed(measure: Duration, warmup: Option<Duration>) -> Self {
        Timing {
            warmup: warmup.unwrap_or((measure / 4).max(Duration::from_millis(2))),
            measure,
            idle: measure,
        }
    }

    /// What the peers of one measurement are told: an idle one waits for its idle window,
    /// with no warm-up.
    pub(crate) fn spec(&self, combo: &Combo) -> PeerSpec {
        let (warmup, measure) = match combo.workload {
            Workload::Idle => (Duration::ZERO, self.idle),
            _ => (self.warmup, self.measure),
        };
        PeerSpec {
            workload: combo.workload,
            size: combo.size,
            warmup,
            measure,
            rate: combo.rate,
        }
    }

    /// The longest one measurement may take before its peers are killed: generous, since a
    /// busy machine can delay a start by a lot, but bounded.
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs(10) + (self.warmup + self.measure).max(self.idle) * 4
    }

    /// The expected length of one trial of every combination of `combos`.
    pub(crate) fn estimate(&self, combos: &[Combo]) -> Duration {
        combos
            .iter()
            .map(|c| {
                let s = self.spec(c);
                s.warmup + s.measure + OVERHEAD
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::super::transport::{self, find};
    use super::*;

    #[test]
    fn trials_are_interleaved_across_transports() {
        let steps = schedule(3, 4);
        assert_eq!(steps.len(), 12);
        assert_eq!(steps[0], Step { trial: 0, combo: 0 });
        assert_eq!(steps[3], Step { trial: 0, combo: 3 });
        assert_eq!(steps[4], Step { trial: 1, combo: 0 });
        // Every measurement of trial k comes before any of trial k + 1.
        assert!(steps.windows(2).all(|w| w[0].trial <= w[1].trial));
        // Each trial measures every combination exactly once.
        for trial in 0..3 {
            let mut seen: Vec<usize> = steps
                .iter()
                .filter(|s| s.trial == trial)
                .map(|s| s.combo)
                .collect();
            seen.sort_unstable();
            assert_eq!(seen, vec![0, 1, 2, 3]);
        }
    }

    #[test]
    fn combos_group_transports_by_workload_and_size_and_skip_unsupported() {
        let ts: Vec<_> = ["pipe", "shm-flag", "memcpy"]
            .iter()
            .map(|n| find(n).unwrap())
            .collect();
        let c = combos(
            &ts,
            &[Workload::Pingpong, Workload::Throughput],
            &[64, 4096],
            &[1000],
        );
        let names: Vec<_> = c
            .iter()
            .map(|c| (c.workload, c.size, c.transport.name()))
            .collect();
        assert_eq!(
            names,
            vec![
                (Workload::Pingpong, 64, "pipe"),
                (Workload::Pingpong, 64, "shm-flag"),
                (Workload::Pingpong, 4096, "pipe"),
                (Workload::Pingpong, 4096, "shm-flag"),
                (Workload::Throughput, 64, "pipe"),
                (Workload::Throughput, 64, "memcpy"),
                (Workload::Throughput, 4096, "pipe"),
                (Workload::Throughput, 4096, "memcpy"),
            ]
        );
        assert_eq!(transport::names().first(), Some(&"ringway-spsc"));
    }

    #[test]
    fn idle_runs_at_the_smallest_size_and_rate_once_per_rate() {
        let ts: Vec<_> = ["pipe", "shm-flag"]
            .iter()
            .map(|n| find(n).unwrap())
            .collect();
        let c = combos(
            &ts,
            &[Workload::Idle, Workload::Rate],
            &[4096, 64],
            &[1000, 2000],
        );
        let names: Vec<_> = c
            .iter()
            .map(|c| (c.workload, c.size, c.rate, c.transport.name()))
            .collect();
        assert_eq!(
            names,
            vec![
                (Workload::Idle, 64, None, "pipe"),
                (Workload::Rate, 4096, Some(1000), "pipe"),
                (Workload::Rate, 4096, Some(2000), "pipe"),
                (Workload::Rate, 64, Some(1000), "pipe"),
                (Workload::Rate, 64, Some(2000), "pipe"),
            ]
        );
        let t = Timing::fixed(Duration::from_millis(40), None);
        let idle = t.spec(&c[0]);
        assert_eq!(
            (idle.warmup, idle.measure, idle.rate),
            (Duration::ZERO, t.idle, None)
        );
        assert_eq!(t.spec(&c[2]).rate, Some(2000));
    }

    #[test]
    fn budget_is_split_and_floored() {
        let t = Timing::from_budget(Duration::from_secs(60), 100);
        // 600 ms each, 588 ms after the overhead.
        assert_eq!(t.warmup, Duration::from_micros(117_600));
        assert_eq!(t.measure, Duration::from_micros(470_400));
        let pipe = find("pipe").unwrap();
        let hundred = combos(&[pipe], &[Workload::Pingpong], &[64; 100], &[]);
        assert!(t.estimate(&hundred) <= Duration::from_secs(60));
        let tiny = Timing::from_budget(Duration::from_secs(1), 1000);
        assert_eq!(
            (tiny.warmup, tiny.measure),
            (Duration::from_millis(2), Duration::from_millis(10))
        );
        let f = Timing::fixed(Duration::from_millis(40), None);
        assert_eq!(f.warmup, Duration::from_millis(10));
        let combo = Combo {
            transport: pipe,
            workload: Workload::Throughput,
            size: 64,
            rate: None,
        };
        assert_eq!(f.spec(&combo).measure, Duration::from_millis(40));
    }
}
