//! What one trial measures, and how trials are combined: per-field medians.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Round-trip times of one trial, in an HDR histogram (1 ns to 1 h, 3 significant digits: a
/// reported value is within 0.1% of the recorded one).
#[derive(Debug)]
pub(crate) struct Latencies(Histogram<u64>);

impl Latencies {
    /// An empty histogram.
    pub(crate) fn new() -> Self {
        const HOUR_NS: u64 = 3_600_000_000_000;
        Latencies(
            Histogram::new_with_bounds(1, HOUR_NS, 3).expect("constant, valid histogram bounds"),
        )
    }

    /// Records one round trip (clamped into the histogram's range).
    pub(crate) fn record(&mut self, rtt: Duration) {
        self.record_ns(u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Records one latency in nanoseconds (clamped into the histogram's range).
    pub(crate) fn record_ns(&mut self, ns: u64) {
        self.0.saturating_record(ns.max(1));
    }

    /// The percentiles the bench reports.
    pub(crate) fn summary(&self) -> LatencySummary {
        let h = &self.0;
        LatencySummary {
            p50_ns: h.value_at_quantile(0.50),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
            samples: h.len(),
            floor_p50_ns: None,
        }
    }
}

/// Round-trip percentiles, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct LatencySummary {
    /// Median round trip.
    pub(crate) p50_ns: u64,
    /// 99th percentile.
    pub(crate) p99_ns: u64,
    /// 99.9th percentile.
    pub(crate) p999_ns: u64,
    /// Slowest round trip.
    pub(crate) max_ns: u64,
    /// Round trips recorded in the window.
    pub(crate) samples: u64,
    /// `ringway-vs-floor` only: the p50 of the bare cache-line ping-pong measured in the same
    /// process pair, alternating with these round trips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) floor_p50_ns: Option<u64>,
}

/// One-way throughput over a receiver's window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct RateSummary {
    /// Messages received in the window.
    pub(crate) messages: u64,
    /// The window's length.
    pub(crate) window_ns: u64,
    /// `messages / window`.
    pub(crate) msgs_per_sec: f64,
    /// `msgs_per_sec * message size`.
    pub(crate) bytes_per_sec: f64,
}

impl RateSummary {
    /// The rate of `messages` messages of `size` bytes in `window`.
    pub(crate) fn new(messages: u64, window: Duration, size: usize) -> Self {
        let secs = window.as_secs_f64().max(1e-9);
        let msgs_per_sec = messages as f64 / secs;
        RateSummary {
            messages,
            window_ns: u64::try_from(window.as_nanos()).unwrap_or(u64::MAX),
            msgs_per_sec,
            bytes_per_sec: msgs_per_sec * size as f64,
        }
    }
}

/// A fixed-rate run: latencies from each message's intended send time to its receipt, and what
/// was delivered against what was offered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct PacedSummary {
    /// One-way latencies from the intended send time (messages due in the window).
    pub(crate) latency: LatencySummary,
    /// The offered rate, messages per second.
    pub(crate) offered_per_sec: f64,
    /// What the receiver got over its window (by receive time).
    pub(crate) achieved: RateSummary,
    /// Of the messages due in the window, the fraction the sender managed to send by the
    /// window's end (1.0: it kept the schedule).
    pub(crate) on_schedule: f64,
}

impl PacedSummary {
    /// The share of the window's schedule that must have been sent for a row to have kept up.
    pub(crate) const KEPT_UP: f64 = 0.99;

    /// Whether the sender kept the offered rate.
    pub(crate) fn kept_up(&self) -> bool {
        self.on_schedule >= Self::KEPT_UP
    }
}

/// An idle run: how long the receiver waited.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct IdleSummary {
    /// From the start of the blocking receive to its return.
    pub(crate) window_ns: u64,
}

/// What one trial of one (transport, workload, size) measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum Measurement {
    /// A ping-pong: round-trip percentiles.
    Latency(LatencySummary),
    /// A throughput run: the receiver's rate.
    Rate(RateSummary),
    /// A fixed-rate run.
    Paced(PacedSummary),
    /// An idle run (the CPU figures are the result).
    Idle(IdleSummary),
}

impl Measurement {
    /// The round-trip percentiles, if this is a ping-pong.
    pub(crate) fn latency(&self) -> Option<&LatencySummary> {
        match self {
            Measurement::Latency(l) => Some(l),
            _ => None,
        }
    }

    /// The rate, if this is a throughput run.
    pub(crate) fn rate(&self) -> Option<&RateSummary> {
        match self {
            Measurement::Rate(r) => Some(r),
            _ => None,
        }
    }

    /// The fixed-rate summary, if this is a fixed-rate run.
    pub(crate) fn paced(&self) -> Option<&PacedSummary> {
        match self {
            Measurement::Paced(p) => Some(p),
            _ => None,
        }
    }
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

fn median_u64(values: impl Iterator<Item = u64>) -> u64 {
    let v: Vec<f64> = values.map(|x| x as f64).collect();
    median(&v).map_or(0, |m| m.round() as u64)
}

/// Combines trials field by field: each percentile (or rate) is the median of that field
/// across trials. `None` when there are no trials or they are of different kinds.
pub(crate) fn median_of(trials: &[Measurement]) -> Option<Measurement> {
    match trials.first()? {
        Measurement::Latency(_) => {
            let l: Vec<&LatencySummary> = trials
                .iter()
                .map(Measurement::latency)
                .collect::<Option<_>>()?;
            Some(Measurement::Latency(median_latency(&l)))
        }
        Measurement::Rate(_) => {
            let r: Vec<&RateSummary> = trials
                .iter()
                .map(Measurement::rate)
                .collect::<Option<_>>()?;
            Some(Measurement::Rate(median_rate(&r)?))
        }
        Measurement::Paced(_) => {
            let p: Vec<&PacedSummary> = trials
                .iter()
                .map(Measurement::paced)
                .collect::<Option<_>>()?;
            let l: Vec<&LatencySummary> = p.iter().map(|x| &x.latency).collect();
            let r: Vec<&RateSummary> = p.iter().map(|x| &x.achieved).collect();
            let f =
                |g: fn(&PacedSummary) -> f64| median(&p.iter().map(|x| g(x)).collect::<Vec<_>>());
            Some(Measurement::Paced(PacedSummary {
                latency: median_latency(&l),
                offered_per_sec: f(|x| x.offered_per_sec)?,
                achieved: median_rate(&r)?,
                on_schedule: f(|x| x.on_schedule)?,
            }))
        }
        Measurement::Idle(_) => {
            let w = trials.iter().map(|m| match m {
                Measurement::Idle(i) => Some(i.window_ns),
                _ => None,
            });
            let w: Vec<u64> = w.collect::<Option<_>>()?;
            Some(Measurement::Idle(IdleSummary {
                window_ns: median_u64(w.into_iter()),
            }))
        }
    }
}

fn median_latency(l: &[&LatencySummary]) -> LatencySummary {
    let field = |f: fn(&LatencySummary) -> u64| median_u64(l.iter().map(|x| f(x)));
    LatencySummary {
        p50_ns: field(|x| x.p50_ns),
        p99_ns: field(|x| x.p99_ns),
        p999_ns: field(|x| x.p999_ns),
        max_ns: field(|x| x.max_ns),
        samples: field(|x| x.samples),
        floor_p50_ns: l
            .iter()
            .map(|x| x.floor_p50_ns)
            .collect::<Option<Vec<u64>>>()
            .map(|f| median_u64(f.into_iter())),
    }
}

fn median_rate(r: &[&RateSummary]) -> Option<RateSummary> {
    let field = |f: fn(&RateSummary) -> f64| median(&r.iter().map(|x| f(x)).collect::<Vec<_>>());
    Some(RateSummary {
        messages: median_u64(r.iter().map(|x| x.messages)),
        window_ns: median_u64(r.iter().map(|x| x.window_ns)),
        msgs_per_sec: field(|x| x.msgs_per_sec)?,
        bytes_per_sec: field(|x| x.bytes_per_sec)?,
    })
}

/// The median of the `Some` values, `None` when there are none.
pub(crate) fn median_some(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    median(&values.flatten().collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lat(p50: u64, p99: u64) -> Measurement {
        Measurement::Latency(LatencySummary {
            p50_ns: p50,
            p99_ns: p99,
            p999_ns: p99,
            max_ns: p99,
            samples: 10,
            floor_p50_ns: None,
        })
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[5.0]), Some(5.0));
        assert_eq!(median(&[9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn latency_medians_are_taken_per_field() {
        let m = median_of(&[lat(100, 900), lat(300, 200), lat(200, 500)]);
        let Some(Measurement::Latency(l)) = m else {
            panic!("expected latency, got {m:?}")
        };
        assert_eq!((l.p50_ns, l.p99_ns), (200, 500));
    }

    #[test]
    fn rate_medians_keep_bytes_consistent_with_messages() {
        let rate = |n| Measurement::Rate(RateSummary::new(n, Duration::from_secs(1), 64));
        let Some(Measurement::Rate(r)) = median_of(&[rate(10), rate(30), rate(20)]) else {
            panic!()
        };
        assert_eq!(r.msgs_per_sec, 20.0);
        assert_eq!(r.bytes_per_sec, 20.0 * 64.0);
    }

    #[test]
    fn mixed_or_empty_trials_have_no_median() {
        assert_eq!(median_of(&[]), None);
        let rate = Measurement::Rate(RateSummary::new(1, Duration::from_secs(1), 8));
        assert_eq!(median_of(&[lat(1, 1), rate]), None);
    }

    #[test]
    fn histogram_summary_reports_percentiles() {
        let mut l = Latencies::new();
        for ns in 1..=1000u64 {
            l.record(Duration::from_nanos(ns * 10));
        }
        let s = l.summary();
        assert_eq!(s.samples, 1000);
        assert!((4990..=5010).contains(&s.p50_ns), "{s:?}");
        assert!((9890..=9910).contains(&s.p99_ns), "{s:?}");
        assert!(s.p50_ns <= s.p99_ns && s.p99_ns <= s.p999_ns && s.p999_ns <= s.max_ns);
    }
}
