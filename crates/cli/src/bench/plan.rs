//! What is measured in which order, and for how long.
//!
//! Every (transport, workload, size) is a *combination*, one row of the results. A *trial*
//! measures every combination once; trials run one after the other, so trial 1 of every
//! transport comes before trial 2 of any: a disturbance on the machine (another job, a
//! frequency change) lands on all transports alike instead of on one transport's trials.
//! Within a trial the combinations are ordered by workload, then size, then transport, so the
//! rows that are compared with each other are measured back to back.
//!
//! Time is budgeted, not counted in iterations: each measurement gets the same fixed warm-up
//! (discarded) and measured window, derived from the total budget and the number of
//! measurements, so the run time is predictable whatever the transports' speeds, and a slow
//! transport or a large message simply yields fewer samples.

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
}

/// Every combination the transports support, in table order: by workload, then size, then
/// transport (in the order given).
pub(crate) fn combos(
    transports: &[&'static dyn Transport],
    workloads: &[Workload],
    sizes: &[usize],
) -> Vec<Combo> {
    let mut out = Vec::new();
    for &workload in workloads {
        for &size in sizes {
            for &transport in transports.iter().filter(|t| t.supports(workload)) {
                out.push(Combo {
                    transport,
                    workload,
                    size,
                });
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
}

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
        }
    }

    /// Fixed windows: `measure`, and `warmup` (default: a quarter of `measure`, at least 2 ms).
    pub(crate) fn fixed(measure: Duration, warmup: Option<Duration>) -> Self {
        Timing {
            warmup: warmup.unwrap_or((measure / 4).max(Duration::from_millis(2))),
            measure,
        }
    }

    /// What the peers of one measurement are told.
    pub(crate) fn spec(&self, workload: Workload, size: usize) -> PeerSpec {
        PeerSpec {
            workload,
            size,
            warmup: self.warmup,
            measure: self.measure,
        }
    }

    /// The longest one measurement may take before its peers are killed: generous, since a
    /// busy machine can delay a start by a lot, but bounded.
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs(10) + (self.warmup + self.measure) * 4
    }

    /// The expected length of `measurements` measurements.
    pub(crate) fn estimate(&self, measurements: usize) -> Duration {
        (self.warmup + self.measure + OVERHEAD) * u32::try_from(measurements).unwrap_or(u32::MAX)
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
    fn budget_is_split_and_floored() {
        let t = Timing::from_budget(Duration::from_secs(60), 100);
        // 600 ms each, 588 ms after the overhead.
        assert_eq!(t.warmup, Duration::from_micros(117_600));
        assert_eq!(t.measure, Duration::from_micros(470_400));
        assert!(t.estimate(100) <= Duration::from_secs(60));
        let tiny = Timing::from_budget(Duration::from_secs(1), 1000);
        assert_eq!(
            (tiny.warmup, tiny.measure),
            (Duration::from_millis(2), Duration::from_millis(10))
        );
        let f = Timing::fixed(Duration::from_millis(40), None);
        assert_eq!(f.warmup, Duration::from_millis(10));
        assert_eq!(
            f.spec(Workload::Throughput, 64).measure,
            Duration::from_millis(40)
        );
    }
}
