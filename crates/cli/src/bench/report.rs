//! The results: rows, their ratios against `pipe`, the human table and the JSON Lines.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use super::stats::{LatencySummary, Measurement, RateSummary};
use super::transport::{BASELINE, Workload};
use super::units::{format_bandwidth, format_ns, format_rate, format_ratio, format_size};

/// What became of one (transport, workload, size).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// The median of the successful trials.
    Measured(Measurement),
    /// The transport cannot carry this on this machine, and why.
    Unavailable(String),
    /// Every trial failed; the first failure.
    Failed(String),
}

/// One row of the results.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// Transport name.
    pub(crate) transport: &'static str,
    /// Workload.
    pub(crate) workload: Workload,
    /// Message size in bytes.
    pub(crate) size: usize,
    /// Successful trials behind the median.
    pub(crate) trials: usize,
    /// The result.
    pub(crate) outcome: Outcome,
}

impl Row {
    /// The measurement, if the row was measured.
    fn measured(&self) -> Option<&Measurement> {
        match &self.outcome {
            Outcome::Measured(m) => Some(m),
            Outcome::Unavailable(_) | Outcome::Failed(_) => None,
        }
    }

    /// The round-trip percentiles of a measured ping-pong row.
    pub(crate) fn latency(&self) -> Option<&LatencySummary> {
        self.measured().and_then(Measurement::latency)
    }

    /// The rate of a measured throughput row.
    pub(crate) fn rate(&self) -> Option<&RateSummary> {
        self.measured().and_then(Measurement::rate)
    }
}

/// One line of `--json`: exactly these fields, `null` where a field does not apply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct JsonRow {
    transport: &'static str,
    workload: &'static str,
    msg_size: usize,
    p50_ns: Option<u64>,
    p99_ns: Option<u64>,
    p999_ns: Option<u64>,
    max_ns: Option<u64>,
    msgs_per_sec: Option<f64>,
    bytes_per_sec: Option<f64>,
    trials: usize,
    /// `ringway-vs-floor` only: the floor's p50 measured in the same process pair.
    #[serde(skip_serializing_if = "Option::is_none")]
    floor_p50_ns: Option<u64>,
    /// `ringway-vs-floor` only: `p50_ns / floor_p50_ns`.
    #[serde(skip_serializing_if = "Option::is_none")]
    vs_floor: Option<f64>,
}

impl JsonRow {
    /// The JSON line of a measured row; `None` for an unavailable or failed one.
    pub(crate) fn of(row: &Row) -> Option<Self> {
        row.measured()?;
        let (l, r) = (row.latency(), row.rate());
        Some(JsonRow {
            transport: row.transport,
            workload: row.workload.name(),
            msg_size: row.size,
            p50_ns: l.map(|l| l.p50_ns),
            p99_ns: l.map(|l| l.p99_ns),
            p999_ns: l.map(|l| l.p999_ns),
            max_ns: l.map(|l| l.max_ns),
            msgs_per_sec: r.map(|r| r.msgs_per_sec),
            bytes_per_sec: r.map(|r| r.bytes_per_sec),
            trials: row.trials,
            floor_p50_ns: l.and_then(|l| l.floor_p50_ns),
            vs_floor: l.and_then(floor_ratio),
        })
    }
}

/// Writes one JSON object per measured row to `path`.
///
/// # Errors
/// Creating or writing the file.
pub(crate) fn write_json(rows: &[Row], path: &Path) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    for row in rows.iter().filter_map(JsonRow::of) {
        serde_json::to_writer(&mut out, &row)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// How many times faster than pipe a round trip is: `pipe p50 / row p50`.
pub(crate) fn latency_ratio(pipe_p50_ns: u64, row_p50_ns: u64) -> Option<f64> {
    (row_p50_ns > 0).then(|| pipe_p50_ns as f64 / row_p50_ns as f64)
}

/// `ringway-vs-floor`: the row's p50 over the floor's p50 measured alongside it.
pub(crate) fn floor_ratio(l: &LatencySummary) -> Option<f64> {
    let floor = l.floor_p50_ns.filter(|&f| f > 0)?;
    Some(l.p50_ns as f64 / floor as f64)
}

/// How many times pipe's throughput a row reaches: `row rate / pipe rate`.
pub(crate) fn rate_ratio(row_per_sec: f64, pipe_per_sec: f64) -> Option<f64> {
    (pipe_per_sec > 0.0).then(|| row_per_sec / pipe_per_sec)
}

fn baseline(rows: &[Row], workload: Workload, size: usize) -> Option<&Row> {
    rows.iter()
        .find(|r| r.transport == BASELINE && r.workload == workload && r.size == size)
}

/// Transports that move no payload (a shared flag): a ratio against pipe moving S bytes means
/// nothing.
const NO_PAYLOAD: &[&str] = &["shm-flag"];
/// Rows whose sides busy-spin while they wait (the table says so next to the name).
const BUSY_SPIN: &[&str] = &["ringway-spsc", "ringway-mpmc"];

/// The name of a row in the table: the transport, and how it waits when that is not obvious.
fn label(transport: &str) -> String {
    if BUSY_SPIN.contains(&transport) {
        format!("{transport} (busy-spin)")
    } else {
        transport.to_owned()
    }
}

/// The ratio column of `row`: against pipe's row of the same workload and size; `-` where it
/// means nothing (no payload, or too small to print).
fn ratio(rows: &[Row], row: &Row) -> String {
    if NO_PAYLOAD.contains(&row.transport) {
        return "-".to_owned();
    }
    if let Some(r) = row.latency().and_then(floor_ratio) {
        return format!("{r:.2}x flr");
    }
    let pipe = baseline(rows, row.workload, row.size);
    let r = match (row.latency(), row.rate()) {
        (Some(l), _) => pipe
            .and_then(Row::latency)
            .and_then(|p| latency_ratio(p.p50_ns, l.p50_ns)),
        (_, Some(r)) => pipe
            .and_then(Row::rate)
            .and_then(|p| rate_ratio(r.msgs_per_sec, p.msgs_per_sec)),
        _ => None,
    };
    r.filter(|&r| r >= 0.005)
        .map_or_else(|| "-".to_owned(), format_ratio)
}

/// A percentile for the table, marked `~` when fewer than `needs` samples stand behind it.
fn percentile(ns: u64, samples: u64, needs: u64) -> String {
    let mark = if samples < needs { "~" } else { "" };
    format!("{mark}{}", format_ns(ns))
}

/// The human tables: one for ping-pong, one for throughput, grouped by size.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    for workload in [Workload::Pingpong, Workload::Throughput] {
        let these: Vec<&Row> = rows.iter().filter(|r| r.workload == workload).collect();
        if these.is_empty() {
            continue;
        }
        let (title, head) = match workload {
            Workload::Pingpong => (
                "PING-PONG: ROUND-TRIP latency (A sends S bytes, B receives all S and sends S back; \
                 A times the whole round trip)\n  vs pipe = pipe p50 / row p50: times faster than pipe (higher is better)",
                format!(
                    "{:<26} {:>8} {:>10} {:>10} {:>10} {:>10} {:>9} {:>6} {:>10}",
                    "transport",
                    "size",
                    "p50",
                    "p99",
                    "p99.9",
                    "max",
                    "samples",
                    "trials",
                    "vs pipe"
                ),
            ),
            Workload::Throughput => (
                "THROUGHPUT: one way, A -> B, measured by the receiver, which checks every sequence number\n  \
                 vs pipe = row msgs/s / pipe msgs/s (higher is better); MB and GB are 10^6 and 10^9 bytes",
                format!(
                    "{:<26} {:>8} {:>12} {:>12} {:>6} {:>10}",
                    "transport", "size", "msgs/s", "bandwidth", "trials", "vs pipe"
                ),
            ),
        };
        let _ = writeln!(s, "\n{title}\n{head}");
        let mut last_size = None;
        for row in these {
            if last_size.is_some_and(|l| l != row.size) {
                s.push('\n');
            }
            last_size = Some(row.size);
            let name = format!("{:<26} {:>8}", label(row.transport), format_size(row.size));
            let _ = match (&row.outcome, row.latency(), row.rate()) {
                (_, Some(l), _) => writeln!(
                    s,
                    "{name} {:>10} {:>10} {:>10} {:>10} {:>9} {:>6} {:>10}",
                    format_ns(l.p50_ns),
                    percentile(l.p99_ns, l.samples, 100),
                    percentile(l.p999_ns, l.samples, 1000),
                    format_ns(l.max_ns),
                    l.samples,
                    row.trials,
                    ratio(rows, row)
                ),
                (_, _, Some(r)) => writeln!(
                    s,
                    "{name} {:>12} {:>12} {:>6} {:>10}",
                    format_rate(r.msgs_per_sec),
                    format_bandwidth(r.bytes_per_sec),
                    row.trials,
                    ratio(rows, row)
                ),
                (Outcome::Unavailable(why), ..) => writeln!(s, "{name}   unavailable: {why}"),
                (Outcome::Failed(why), ..) => {
                    writeln!(s, "{name}   FAILED: {}", why.lines().next().unwrap_or(""))
                }
                (Outcome::Measured(_), ..) => unreachable!("a measured row is a latency or a rate"),
            };
        }
    }
    let present = |t: &str| rows.iter().any(|r| r.transport == t);
    if present("ringway-spsc-blocking") {
        s.push_str("\nringway-spsc-blocking: a waiting side spins briefly, then yields, then sleeps on a futex (the default); the other ringway rows busy-spin, but for the fan-out rows.");
    }
    if rows
        .iter()
        .any(|r| r.transport.starts_with("ringway-fanout"))
    {
        s.push_str("\nringway-fanoutN: one publisher and N subscriber processes of a broadcast channel, every side spin-then-park; the rate is the slowest subscriber's.");
    }
    if present("shm-flag") {
        s.push_str("\nshm-flag: two processes ping-pong one shared cache line (no payload, whatever the size): the latency floor; no ratio, since it moves no payload.");
    }
    if present("ringway-vs-floor") {
        s.push_str("\nringway-vs-floor: ringway-spsc and the shm-flag floor in one process pair, alternating blocks of round trips; its percentiles are ringway's, and its last column is ringway p50 / floor p50 (x flr), not a ratio to pipe:");
        for row in rows.iter().filter(|r| r.transport == "ringway-vs-floor") {
            let Some(l) = row.latency() else { continue };
            if let (Some(f), Some(r)) = (l.floor_p50_ns, floor_ratio(l)) {
                let _ = write!(
                    s,
                    "\n  {}: ringway p50 {}, floor p50 {}: {r:.2}x",
                    format_size(row.size),
                    format_ns(l.p50_ns),
                    format_ns(f)
                );
            }
        }
    }
    if present("ringway-spsc-loan") {
        s.push_str("\nringway-spsc-loan: ringway-spsc's zero-copy path: the sender writes each message in place in the ring (a loan), the receiver checks every byte in place (recv_ref), neither copies.");
    }
    if rows
        .iter()
        .filter_map(Row::latency)
        .any(|l| l.samples < 1000)
    {
        s.push_str("\n~: fewer round trips than the percentile needs (100 for p99, 1000 for p99.9): about the max.");
    }
    if present("memcpy") {
        s.push_str("\nmemcpy: one thread copying S bytes between two buffers, in one process: the bandwidth floor.");
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn lat_row(transport: &'static str, p50: u64) -> Row {
        let l = LatencySummary {
            p50_ns: p50,
            p99_ns: 2 * p50,
            p999_ns: 3 * p50,
            max_ns: 4 * p50,
            samples: 100,
            floor_p50_ns: None,
        };
        Row {
            transport,
            workload: Workload::Pingpong,
            size: 64,
            trials: 3,
            outcome: Outcome::Measured(Measurement::Latency(l)),
        }
    }

    fn rate_row(transport: &'static str, msgs: u64) -> Row {
        let r = RateSummary::new(msgs, Duration::from_secs(1), 64);
        Row {
            transport,
            workload: Workload::Throughput,
            size: 64,
            trials: 3,
            outcome: Outcome::Measured(Measurement::Rate(r)),
        }
    }

    #[test]
    fn ratios_read_as_times_better_than_pipe() {
        assert_eq!(latency_ratio(10_000, 500), Some(20.0));
        assert_eq!(latency_ratio(10_000, 0), None);
        assert_eq!(rate_ratio(3e6, 1e6), Some(3.0));
        assert_eq!(rate_ratio(3e6, 0.0), None);
        let rows = [
            lat_row("pipe", 10_000),
            lat_row("tcp", 20_000),
            rate_row("pipe", 1_000),
            rate_row("memcpy", 50_000),
        ];
        assert_eq!(ratio(&rows, &rows[0]), "1.00x");
        assert_eq!(ratio(&rows, &rows[1]), "0.50x");
        assert_eq!(ratio(&rows, &rows[3]), "50.0x");
        // No payload, or a ratio that rounds to nothing: not printed.
        let flag = [lat_row("pipe", 10_000_000), lat_row("shm-flag", 200)];
        assert_eq!(ratio(&flag, &flag[1]), "-");
        let slow = [lat_row("pipe", 10), lat_row("tcp", 1_000_000)];
        assert_eq!(ratio(&slow, &slow[1]), "-", "not 0.00x");
        let no_pipe = [lat_row("tcp", 20_000)];
        assert_eq!(ratio(&no_pipe, &no_pipe[0]), "-");
    }

    #[test]
    fn json_rows_have_exactly_the_documented_fields() {
        let fields = |row: &Row| {
            let v = serde_json::to_value(JsonRow::of(row).unwrap()).unwrap();
            let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            (keys, v)
        };
        let mut expected = [
            "transport",
            "workload",
            "msg_size",
            "p50_ns",
            "p99_ns",
            "p999_ns",
            "max_ns",
            "msgs_per_sec",
            "bytes_per_sec",
            "trials",
        ];
        expected.sort_unstable();

        let (keys, v) = fields(&lat_row("pipe", 1000));
        assert_eq!(keys, expected);
        assert_eq!(v["workload"], "pingpong");
        assert_eq!(v["p999_ns"], 3000);
        assert!(v["msgs_per_sec"].is_null() && v["bytes_per_sec"].is_null());

        let (keys, v) = fields(&rate_row("memcpy", 10));
        assert_eq!(keys, expected);
        assert_eq!(
            (
                v["workload"].as_str(),
                v["msg_size"].as_u64(),
                v["trials"].as_u64()
            ),
            (Some("throughput"), Some(64), Some(3))
        );
        assert_eq!(v["bytes_per_sec"], 640.0);
        assert!(v["p50_ns"].is_null() && v["max_ns"].is_null());

        let gone = Row {
            outcome: Outcome::Unavailable("too big".into()),
            ..lat_row("unix-seqpacket", 1)
        };
        assert_eq!(JsonRow::of(&gone), None);
    }

    #[test]
    fn table_states_round_trip_and_ratio_direction() {
        let rows = [
            lat_row("pipe", 10_000),
            Row {
                outcome: Outcome::Failed("boom\nmore".into()),
                ..lat_row("tcp", 1)
            },
        ];
        let t = table(&rows);
        assert!(t.contains("ROUND-TRIP"));
        assert!(
            t.contains("~30.0 µs"),
            "p99.9 of 100 samples is marked:\n{t}"
        );
        assert!(t.contains("pipe p50 / row p50"));
        assert!(t.contains("FAILED: boom"));
        let spin = table(&[
            lat_row("ringway-spsc", 100),
            lat_row("ringway-spsc-blocking", 900),
        ]);
        assert!(spin.contains("ringway-spsc (busy-spin) "), "{spin}");
        assert!(
            !spin.contains("ringway-spsc-blocking (busy-spin)"),
            "{spin}"
        );
        assert!(!t.contains("THROUGHPUT"));
    }
}
