//! The results: rows, their ratios against `pipe`, the human table and the JSON Lines.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use super::control::CpuWindow;
use super::stats::{self, LatencySummary, Measurement, PacedSummary, RateSummary};
use super::transport::{BASELINE, Geometry, Workload};
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
    /// The offered rate of a fixed-rate row, messages per second.
    pub(crate) rate: Option<u64>,
    /// Successful trials behind the median.
    pub(crate) trials: usize,
    /// The result.
    pub(crate) outcome: Outcome,
    /// Each side's CPU time (medians of the trials).
    pub(crate) cpu: Cpu,
    /// The transport's buffer and batch for this size.
    pub(crate) geometry: Geometry,
}

/// One side's CPU figures: medians over the trials that measured them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct SideCpu {
    /// CPU time per message (per round trip in a ping-pong), ns.
    pub(crate) ns_per_msg: Option<f64>,
    /// CPU time over the window, in % of one CPU.
    pub(crate) pct: Option<f64>,
}

impl SideCpu {
    /// The medians of the trials' windows (`None` entries: trials whose side took none).
    pub(crate) fn median_of(windows: &[Option<CpuWindow>]) -> SideCpu {
        let all = || windows.iter().flatten();
        SideCpu {
            ns_per_msg: stats::median_some(all().map(CpuWindow::ns_per_msg)),
            pct: stats::median_some(all().map(CpuWindow::pct)),
        }
    }
}

/// Both sides' CPU figures of a row.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Cpu {
    /// Side A (ping-pong client, sender; the one process of `memcpy`).
    pub(crate) a: SideCpu,
    /// Side B (echo, receiver).
    pub(crate) b: SideCpu,
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

    /// The summary of a measured fixed-rate row.
    pub(crate) fn paced(&self) -> Option<&PacedSummary> {
        self.measured().and_then(Measurement::paced)
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
    rate_per_sec: Option<u64>,
    kept_up: Option<bool>,
    cpu_a_ns_per_msg: Option<f64>,
    cpu_b_ns_per_msg: Option<f64>,
    cpu_a_pct: Option<f64>,
    cpu_b_pct: Option<f64>,
    capacity_bytes: Option<u64>,
    slots: Option<u64>,
    batch: Option<u64>,
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
        let p = row.paced();
        // A fixed-rate row that received nothing in its window has no latencies.
        let l = row
            .latency()
            .or(p.map(|p| &p.latency).filter(|l| l.samples > 0));
        let r = row.rate().or(p.map(|p| &p.achieved));
        // An idle row moves one message: no CPU per message, only the share of a CPU.
        let per_msg = |s: &SideCpu| s.ns_per_msg.filter(|_| row.workload != Workload::Idle);
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
            rate_per_sec: row.rate,
            kept_up: p.map(PacedSummary::kept_up),
            cpu_a_ns_per_msg: per_msg(&row.cpu.a),
            cpu_b_ns_per_msg: per_msg(&row.cpu.b),
            cpu_a_pct: row.cpu.a.pct,
            cpu_b_pct: row.cpu.b.pct,
            capacity_bytes: row.geometry.capacity_bytes,
            slots: row.geometry.slots,
            batch: row.geometry.batch,
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

/// A CPU-per-message cell: `1.23 µs`, or `-` when not measured.
fn cpu_cell(ns: Option<f64>) -> String {
    ns.map_or_else(|| "-".to_owned(), |ns| format_ns(ns.round() as u64))
}

/// A share-of-a-CPU cell: `0.02%`, `99.7%`, or `-` when not measured.
fn pct_cell(pct: Option<f64>) -> String {
    match pct {
        None => "-".to_owned(),
        Some(p) if p < 10.0 => format!("{p:.2}%"),
        Some(p) => format!("{p:.1}%"),
    }
}

/// The title and column heads of one workload's table.
fn heads(workload: Workload) -> (&'static str, String) {
    match workload {
        Workload::Pingpong => (
            "PING-PONG: ROUND-TRIP latency (A sends S bytes, B receives all S and sends S back; \
             A times the whole round trip)\n  vs pipe = pipe p50 / row p50: times faster than pipe (higher is better); \
             cpu A, cpu B = CPU time (user + sys) each process used per round trip",
            format!(
                "{:<26} {:>8} {:>10} {:>10} {:>10} {:>10} {:>9} {:>6} {:>10} {:>9} {:>9}",
                "transport",
                "size",
                "p50",
                "p99",
                "p99.9",
                "max",
                "samples",
                "trials",
                "vs pipe",
                "cpu A/rt",
                "cpu B/rt"
            ),
        ),
        Workload::Throughput => (
            "THROUGHPUT: one way, A -> B, measured by the receiver, which checks every sequence number\n  \
             vs pipe = row msgs/s / pipe msgs/s (higher is better); MB and GB are 10^6 and 10^9 bytes; \
             cpu A, cpu B = CPU time (user + sys) each process used per message",
            format!(
                "{:<26} {:>8} {:>12} {:>12} {:>6} {:>10} {:>9} {:>9}",
                "transport",
                "size",
                "msgs/s",
                "bandwidth",
                "trials",
                "vs pipe",
                "cpu A/msg",
                "cpu B/msg"
            ),
        ),
        Workload::Idle => (
            "IDLE: B waits in one blocking receive while A, attached, sends nothing (then one message);\n  \
             the CPU time (user + sys, all threads) each process used over the wait, in % of one CPU",
            format!(
                "{:<26} {:>8} {:>10} {:>10} {:>10} {:>6}",
                "transport", "size", "waited", "cpu B", "cpu A", "trials"
            ),
        ),
        Workload::Rate => (
            "FIXED RATE: A sends at the offered rate; latency = B's receive time - the message's intended send time\n  \
             (one way, CLOCK_MONOTONIC; a stall delays every message queued behind it: coordinated omission counted);\n  \
             achieved = what B received over the window; cpu A includes A's pacing loop, which spins on the clock",
            format!(
                "{:<26} {:>8} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9} {:>6}",
                "transport",
                "size",
                "offered",
                "achieved",
                "p50",
                "p99",
                "p99.9",
                "max",
                "cpu A/msg",
                "cpu B/msg",
                "trials"
            ),
        ),
    }
}

/// One measured row of a table, after its name and size; `None` if it measured nothing.
fn cells(rows: &[Row], row: &Row) -> Option<String> {
    let (a, b) = (
        cpu_cell(row.cpu.a.ns_per_msg),
        cpu_cell(row.cpu.b.ns_per_msg),
    );
    if let Some(l) = row.latency() {
        return Some(format!(
            "{:>10} {:>10} {:>10} {:>10} {:>9} {:>6} {:>10} {a:>9} {b:>9}",
            format_ns(l.p50_ns),
            percentile(l.p99_ns, l.samples, 100),
            percentile(l.p999_ns, l.samples, 1000),
            format_ns(l.max_ns),
            l.samples,
            row.trials,
            ratio(rows, row)
        ));
    }
    if let Some(r) = row.rate() {
        return Some(format!(
            "{:>12} {:>12} {:>6} {:>10} {a:>9} {b:>9}",
            format_rate(r.msgs_per_sec),
            format_bandwidth(r.bytes_per_sec),
            row.trials,
            ratio(rows, row)
        ));
    }
    if let Some(p) = row.paced() {
        let l = &p.latency;
        let behind = if p.kept_up() {
            String::new()
        } else {
            // Rounded down: a row that missed the mark never reads as 99.0%.
            format!(
                "  BEHIND: sent {:.1}% of the schedule",
                (p.on_schedule * 1000.0).floor() / 10.0
            )
        };
        let [p50, p99, p999, max] = if l.samples == 0 {
            ["-"; 4].map(str::to_owned)
        } else {
            [
                format_ns(l.p50_ns),
                percentile(l.p99_ns, l.samples, 100),
                percentile(l.p999_ns, l.samples, 1000),
                format_ns(l.max_ns),
            ]
        };
        return Some(format!(
            "{:>9} {:>10} {p50:>10} {p99:>10} {p999:>10} {max:>10} {a:>9} {b:>9} {:>6}{behind}",
            format_rate(p.offered_per_sec),
            format_rate(p.achieved.msgs_per_sec),
            row.trials
        ));
    }
    if let Some(Measurement::Idle(i)) = row.measured() {
        return Some(format!(
            "{:>10} {:>10} {:>10} {:>6}",
            format_ns(i.window_ns),
            pct_cell(row.cpu.b.pct),
            pct_cell(row.cpu.a.pct),
            row.trials
        ));
    }
    None
}

/// The human tables: one per workload, grouped by size.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    for workload in [
        Workload::Pingpong,
        Workload::Throughput,
        Workload::Idle,
        Workload::Rate,
    ] {
        let these: Vec<&Row> = rows.iter().filter(|r| r.workload == workload).collect();
        if these.is_empty() {
            continue;
        }
        let (title, head) = heads(workload);
        let _ = writeln!(s, "\n{title}\n{head}");
        let mut last = None;
        for row in these {
            if last.is_some_and(|l| l != (row.size, row.rate)) {
                s.push('\n');
            }
            last = Some((row.size, row.rate));
            let name = format!("{:<26} {:>8}", label(row.transport), format_size(row.size));
            let _ = match (&row.outcome, cells(rows, row)) {
                (_, Some(cells)) => writeln!(s, "{name} {cells}"),
                (Outcome::Unavailable(why), _) => writeln!(s, "{name}   unavailable: {why}"),
                (Outcome::Failed(why), _) => {
                    writeln!(s, "{name}   FAILED: {}", why.lines().next().unwrap_or(""))
                }
                (Outcome::Measured(_), None) => writeln!(s, "{name}   (nothing to show)"),
            };
        }
    }
    let present = |t: &str| rows.iter().any(|r| r.transport == t);
    if present("ringway-spsc-blocking") {
        s.push_str("\nringway-spsc-blocking: a waiting side spins briefly, then yields, then sleeps on a futex (the default); the other ringway rows busy-spin, but for the fan-out and producer-sweep rows.");
    }
    if rows
        .iter()
        .any(|r| r.transport.starts_with("ringway-fanout"))
    {
        s.push_str("\nringway-fanoutN: one publisher and N subscriber processes of a broadcast channel, every side spin-then-park; the rate is the slowest subscriber's.");
    }
    if rows
        .iter()
        .any(|r| r.transport.starts_with("ringway-mpmc-p"))
    {
        s.push_str("\nringway-mpmc-pN: N producer processes and one consumer of an MPMC channel, every side spin-then-park; the rate is all producers' together.");
    }
    if present("shm-flag") {
        s.push_str("\nshm-flag: two processes ping-pong one shared cache line (no payload, whatever the size): the latency floor; no ratio, since it moves no payload.");
    }
    if present("shm-ring") {
        s.push_str("\nshm-ring: the floor of a ring that carries the payload: a bare ring of line-aligned slots (an in-band mark and the S bytes, copied in and out), batched releases, no checks; the same ring bytes as ringway-spsc.");
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
        .filter_map(|r| r.latency().or(r.paced().map(|p| &p.latency)))
        .any(|l| l.samples < 1000)
    {
        s.push_str("\n~: fewer samples than the percentile needs (100 for p99, 1000 for p99.9): about the max.");
    }
    if present("memcpy") {
        s.push_str("\nmemcpy: one thread copying S bytes between two buffers, in one process: the bandwidth floor.");
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::super::stats::IdleSummary;
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
            rate: None,
            trials: 3,
            outcome: Outcome::Measured(Measurement::Latency(l)),
            cpu: Cpu::default(),
            geometry: Geometry::default(),
        }
    }

    fn rate_row(transport: &'static str, msgs: u64) -> Row {
        let r = RateSummary::new(msgs, Duration::from_secs(1), 64);
        Row {
            transport,
            workload: Workload::Throughput,
            size: 64,
            rate: None,
            trials: 3,
            outcome: Outcome::Measured(Measurement::Rate(r)),
            cpu: Cpu::default(),
            geometry: Geometry::default(),
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
            "rate_per_sec",
            "kept_up",
            "cpu_a_ns_per_msg",
            "cpu_b_ns_per_msg",
            "cpu_a_pct",
            "cpu_b_pct",
            "capacity_bytes",
            "slots",
            "batch",
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

        // CPU figures and the geometry come from the row; an idle row has no per-message CPU.
        let side = |ns, pct| SideCpu {
            ns_per_msg: Some(ns),
            pct: Some(pct),
        };
        let idle = Row {
            workload: Workload::Idle,
            outcome: Outcome::Measured(Measurement::Idle(IdleSummary {
                window_ns: 1_000_000_000,
            })),
            cpu: Cpu {
                a: side(5.0, 0.01),
                b: side(9.0, 0.02),
            },
            geometry: Geometry {
                capacity_bytes: Some(65536),
                slots: None,
                batch: Some(1),
            },
            ..rate_row("ringway-spsc-blocking", 1)
        };
        let (keys, v) = fields(&idle);
        assert_eq!(keys, expected);
        assert_eq!(
            (v["workload"].as_str(), v["cpu_b_pct"].as_f64()),
            (Some("idle"), Some(0.02))
        );
        assert!(v["cpu_a_ns_per_msg"].is_null() && v["msgs_per_sec"].is_null());
        assert_eq!(
            (v["capacity_bytes"].as_u64(), v["batch"].as_u64()),
            (Some(65536), Some(1))
        );
        assert!(v["slots"].is_null());

        // A fixed-rate row: one-way latencies, the achieved rate, the offered one, kept_up.
        let paced = |on_schedule| Row {
            workload: Workload::Rate,
            rate: Some(1000),
            outcome: Outcome::Measured(Measurement::Paced(PacedSummary {
                latency: LatencySummary {
                    p50_ns: 10,
                    p99_ns: 20,
                    p999_ns: 30,
                    max_ns: 40,
                    samples: 900,
                    floor_p50_ns: None,
                },
                offered_per_sec: 1000.0,
                achieved: RateSummary::new(900, Duration::from_secs(1), 64),
                on_schedule,
            })),
            cpu: Cpu {
                a: side(100.0, 10.0),
                b: side(50.0, 5.0),
            },
            ..rate_row("pipe", 1)
        };
        let (keys, v) = fields(&paced(1.0));
        assert_eq!(keys, expected);
        assert_eq!(
            (v["p50_ns"].as_u64(), v["msgs_per_sec"].as_f64()),
            (Some(10), Some(900.0))
        );
        assert_eq!(
            (v["rate_per_sec"].as_u64(), v["kept_up"].as_bool()),
            (Some(1000), Some(true))
        );
        assert_eq!(v["cpu_a_ns_per_msg"].as_f64(), Some(100.0));
        let (_, v) = fields(&paced(0.5));
        assert_eq!(v["kept_up"].as_bool(), Some(false));
        let t = table(&[paced(0.5), idle]);
        assert!(t.contains("BEHIND: sent 50.0% of the schedule"), "{t}");
        assert!(t.contains("FIXED RATE") && t.contains("IDLE"), "{t}");
        assert!(t.contains("0.02%"), "{t}");
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
