//! `ringway bench`: every transport between two real processes, side by side.
//!
//! The parent only orchestrates: for each measurement it asks the transport to
//! [`prepare`](transport::Transport::prepare) its endpoints, re-executes this binary once per
//! side as a [`peer`] that inherits its endpoint, sleeps until both peers have exited (killing
//! them past a deadline), and reads the one JSON line each prints. Trials are interleaved across
//! transports ([`plan`]) and the median of the trials is reported ([`stats`], [`report`]).

use std::error::Error;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use std::{env, io};

use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

mod asyncio;
mod buf;
mod control;
mod fanout;
mod fdio;
mod loan;
mod machine;
mod measure;
mod memcpy;
pub(crate) mod peer;
mod plan;
mod plot;
mod producers;
mod report;
mod ringway;
mod shm;
mod shmflag;
mod shmring;
mod spawn;
mod stats;
mod transport;
pub(crate) mod units;
mod versus;
mod workload;

use machine::{Machine, Pinning};
use measure::{Failure, Trial, measure};
use plan::{Combo, Timing};
use report::{Cpu, Outcome, Row, SideCpu};
use transport::{Transport, Workload};

/// What `ringway bench --help` says after the options.
pub(crate) const HELP: &str = "\
Workloads:
  pingpong    ROUND TRIP: side A sends S bytes, side B receives all S and sends S bytes back;
              A records every round trip in an HDR histogram (p50, p99, p99.9, max).
  throughput  One way: A streams S-byte messages numbered from 0; B checks every number (a lost
              or reordered message stops the run) and reports msgs/s and bytes/s over its window.
  idle        B waits in one blocking receive while A, attached and alive, sends nothing for 1 s
              (--quick: 250 ms; --measure-ms: that), then one message. Reports the CPU each
              process used over the wait, in % of one CPU: what a parked receiver costs. At the
              smallest size only. Rows: the ringway rows but the batch and fan-out ones, pipe,
              unix-stream, tokio-unix.
  rate        Latency at fixed offered rates (--rates; Aeron's method): A sends message i at its
              intended time T0 + i/rate (spinning on the clock, never skipping a late one); B
              records receive time - intended time (one way, CLOCK_MONOTONIC) in an HDR
              histogram, so a stall counts against every message queued behind it (coordinated
              omission counted). Reports p50/p99/p99.9/max and the rate achieved; a row whose
              sender fell behind the schedule says BEHIND. Rows: ringway-spsc-blocking,
              ringway-async (the default wait strategy), pipe, unix-stream.

Every row also reports the CPU time (getrusage(RUSAGE_SELF): user + sys, all threads) each side
process used over its measured window: per message (per round trip in a ping-pong) in the
table and the JSON, and in % of one CPU in the JSON; spinning costs show here.

ringway rows (byte channels of ringway-channel; send copies S bytes into the ring, the receiver
copies all S out with recv_ref + copy_to; an SPSC ring of max(64 KiB, 4 x S) bytes, an MPMC ring
of the same payload space in S-byte slots):
  ringway-spsc           SPSC ring, both ends busy-spin (WaitStrategy::Spin).
  ringway-spsc-blocking  SPSC ring, the default WaitStrategy::SpinThenPark: a waiting side spins
                         a few microseconds, then yields, then sleeps on a futex until woken.
  ringway-spsc-park      SPSC ring, WaitStrategy::Park: a waiting side spins 32 times, then
                         sleeps on the futex (in a ping-pong, on every message).
  ringway-spsc-loan      ringway-spsc's zero-copy path: the sender writes each message in place
                         in a loan of the ring, the receiver checks every byte in place
                         (recv_ref), neither copies through a private buffer.
  ringway-async          ringway-spsc-blocking driven by send_async/recv_ref_async in a tokio
                         runtime (current-thread) per side: a waiting task is re-queued a few
                         times, then parked with the process's ringway waker thread.
  ringway-async-park     The same with WaitStrategy::Park: a task parks at once. Next to
                         ringway-spsc-park, the cost of a wake from park, async vs blocking.
  ringway-mpmc           MPMC ring (the many-process flavour), one producer and one consumer
                         process, both busy-spinning.
  ringway-mpmc-pN        MPMC (throughput only): N = 1, 2, 4 producer processes, one consumer
                         checking every producer's order; the row is the aggregate msgs/s.
                         Every side spin-then-park (N + 1 processes may outnumber the CPUs).
  ringway-spsc-batchN    ringway-spsc whose sender hands N messages (8, 32, 256) at once to
                         send_batch: one publication and one wake check per batch. Throughput,
                         messages up to 4 KiB; ringway-spsc is the batch-of-1 row.
  ringway-select-1       ringway-spsc-blocking, but a receiving side waits in a Select over its
                         channel, then try_recv_ref.
  ringway-select-16      The same Select over its channel and 15 idle channels (one futex_waitv
                         sleep covers all 16).
  ringway-fanoutN        Broadcast (throughput only): one BytePublisher, N = 1, 2, 4 subscriber
                         processes, each checking every number; the row is the slowest
                         subscriber's msgs/s (the per-reader rate). Block policy, every side
                         spin-then-park (N + 1 processes may outnumber the CPUs).

tokio-unix: tokio's UnixStream over socketpair(AF_UNIX, SOCK_STREAM) in a current-thread tokio
runtime per side (write_all, read until S bytes): the async rows' kernel counterpart.

Reference rows:
  shm-flag    Two processes ping-pong one shared cache line: the latency floor. Ping-pong only;
              no payload, so the size does not apply (it is measured anew for every size).
  shm-ring    The floor of a ring that carries the payload: a bare ring of cache-line slots in
              a memfd (each slot an in-band mark and the S bytes, copied in and out), the
              consumer's releases batched, spin-then-yield, no checks. Ring bytes as
              ringway-spsc's.
  memcpy      One thread copying S bytes between two buffers: the bandwidth floor. Throughput
              only, one process.
  ringway-vs-floor
              Ping-pong only: ringway-spsc and shm-flag in one process pair, alternating blocks
              of round trips, so both see the same CPU placement. Percentiles are ringway's; the
              last column is ringway p50 / floor p50 (x flr), and the JSON carries both
              (floor_p50_ns, vs_floor).

Method: each transport runs between two processes (this binary, re-executed), pinned to two
distinct CPUs unless --no-pin (--same-cpu: both on one CPU). Trials are interleaved across transports and the median of the
trials is reported. Each measurement has a discarded warm-up and a fixed measured window, sized
so that the ping-pong and throughput part of the default run takes about a minute (the idle
and fixed-rate workloads add about a minute more; --quick: about 30 s in all); a subset of
transports, workloads, sizes or rates takes proportionally less. The ratio column compares each row with pipe at
the same size: pipe p50 / row p50 for round trips, row / pipe for throughput; higher is better
in both (none for shm-flag, which moves no payload). When stderr is not a terminal, each
measurement prints one progress line there.

Exit status: 0 when every row was measured (or is unavailable here, with the reason), 1 when a
trial failed, 2 on bad arguments.";

/// The time the ping-pong and throughput measurements of a default run are planned to take
/// (about 60 s; the idle and fixed-rate ones add about a minute).
const BUDGET: Duration = Duration::from_secs(52);
/// The same for a `--quick` run (about 15 s, and about 15 s more for idle and fixed rate).
const QUICK_BUDGET: Duration = Duration::from_secs(12);
/// The sizes a run measures unless `--sizes` says (the same as the option's default values).
const DEFAULT_SIZES: [usize; 4] = [64, 4 << 10, 64 << 10, 1 << 20];
/// The workloads a run measures unless `--workloads` says (the same as the option's default values).
#[cfg(test)]
const DEFAULT_WORKLOADS: [Workload; 4] = [
    Workload::Pingpong,
    Workload::Throughput,
    Workload::Idle,
    Workload::Rate,
];
/// The workloads whose measurements share the time budget (the idle windows are fixed, and
/// the fixed-rate ones take the same windows as these).
const BUDGETED_WORKLOADS: [Workload; 2] = [Workload::Pingpong, Workload::Throughput];
/// The offered rates unless `--rates` says (the same as the option's default values).
const DEFAULT_RATES: [u64; 2] = [100_000, 1_000_000];

/// Options of `ringway bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Transports to measure, comma-separated [default: all]. Ratios are against `pipe`.
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = PossibleValuesParser::new(transport::names()).map(|name| named(&name)),
    )]
    transports: Vec<&'static dyn Transport>,
    /// Workloads to run, comma-separated: pingpong (round trip), throughput (one way), idle
    /// (CPU of a parked receiver), rate (latency at fixed offered rates).
    #[arg(long, value_delimiter = ',', value_enum, default_values = ["pingpong", "throughput", "idle", "rate"])]
    workloads: Vec<Workload>,
    /// Message sizes, comma-separated, in bytes or with a binary suffix (8 to 256M: 4K, 64KiB, 16M).
    #[arg(long, value_delimiter = ',', value_parser = units::parse_size, default_values = ["64", "4K", "64K", "1M"])]
    sizes: Vec<usize>,
    /// Offered rates of the rate workload, comma-separated, messages per second (100k, 1M).
    #[arg(long, value_delimiter = ',', value_parser = units::parse_rate, default_values = ["100k", "1M"])]
    rates: Vec<u64>,
    /// Trials of every measurement; the median is reported. Transports are interleaved across trials.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    trials: u32,
    /// Shorter windows: about 30 s in all instead of about 2 minutes.
    #[arg(long)]
    quick: bool,
    /// Length of each measured window in milliseconds, the idle wait's too (overrides the time budget).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    measure_ms: Option<u64>,
    /// Warm-up before each window in milliseconds, discarded [default: a quarter of the window].
    #[arg(long, requires = "measure_ms")]
    warmup_ms: Option<u64>,
    /// Do not pin the two sides to two CPUs.
    #[arg(long, conflicts_with = "same_cpu")]
    no_pin: bool,
    /// Pin both sides to one CPU (the first allowed), as `taskset -c 0` would: how each
    /// transport fares when the two processes take turns on one CPU.
    #[arg(long)]
    same_cpu: bool,
    /// Write one JSON object per measured row (JSON Lines) to this file.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Draw latency and throughput against message size into this SVG file.
    #[arg(long, value_name = "PATH.svg")]
    plot: Option<PathBuf>,
}

/// The transport of a name clap has already checked against [`transport::names`].
fn named(name: &str) -> &'static dyn Transport {
    transport::find(name).expect("clap accepts only known transport names")
}

/// Entry point of `ringway bench`.
pub(crate) fn run(args: &BenchArgs) -> ExitCode {
    match bench(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ringway bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the trials of one combination produced.
#[derive(Debug, Default)]
struct Trials {
    measured: Vec<Trial>,
    unavailable: Option<String>,
    failures: Vec<String>,
}

fn bench(args: &BenchArgs) -> Result<ExitCode, Box<dyn Error>> {
    let started = Instant::now();
    let exe = env::current_exe().map_err(|e| format!("find this program to re-execute it: {e}"))?;
    let transports: Vec<&'static dyn Transport> = if args.transports.is_empty() {
        transport::ALL.to_vec()
    } else {
        args.transports.clone()
    };
    let combos = plan::combos(&transports, &args.workloads, &args.sizes, &args.rates);
    if combos.is_empty() {
        return Err(
            "nothing to measure: the chosen transports run none of the chosen workloads".into(),
        );
    }
    let trials = args.trials as usize;
    let steps = plan::schedule(trials, combos.len());
    let timing = timing(args);
    let machine = Machine::detect();
    let pinning = if args.same_cpu {
        machine::one_cpu(&machine.allowed)
    } else {
        machine::plan_pinning(&machine.allowed, !args.no_pin, machine::smt_siblings)
    };
    let estimate = timing.estimate(&combos) * u32::try_from(trials).unwrap_or(u32::MAX);
    print_header(&machine, &pinning, &timing, trials, steps.len(), estimate);

    let mut progress = Progress::new(steps.len());
    let mut results: Vec<Trials> = combos.iter().map(|_| Trials::default()).collect();
    for step in steps {
        let combo = &combos[step.combo];
        let result = &mut results[step.combo];
        if result.unavailable.is_some() {
            progress.skip();
            continue;
        }
        progress.start(format!(
            "trial {}/{trials}: {}",
            step.trial + 1,
            what(combo)
        ));
        match measure(&exe, combo, &timing, &pinning) {
            Ok(m) => result.measured.push(m),
            Err(Failure::Unavailable(why)) => result.unavailable = Some(why),
            Err(Failure::Failed(why)) => {
                progress.note(&format!("{}: {why}", describe(combo, step.trial + 1)));
                result.failures.push(why);
            }
            Err(Failure::Integrity(why)) => {
                progress.finish();
                return Err(format!(
                    "{}: {why}\nThe results cannot be trusted; stopping.",
                    describe(combo, step.trial + 1)
                )
                .into());
            }
        }
        progress.done();
    }
    progress.finish();

    let rows: Vec<Row> = combos
        .iter()
        .zip(results)
        .map(|(c, t)| row(c, &timing, t))
        .collect();
    print!("{}", report::table(&rows));
    if let Some(path) = &args.json {
        report::write_json(&rows, path)
            .map_err(|e| format!("write JSON to {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.plot {
        plot::write_svg(&rows, path)
            .map_err(|e| format!("draw the plot into {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    let failed = rows
        .iter()
        .filter(|r| r.trials < trials && !matches!(r.outcome, Outcome::Unavailable(_)))
        .count();
    println!("wall time: {:.1} s", started.elapsed().as_secs_f64());
    if failed > 0 {
        eprintln!("ringway bench: {failed} row(s) had failed trials (see the messages above)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// `pipe rate 64 B 100 k/s`: what a measurement is, for people.
fn what(combo: &Combo) -> String {
    let rate = combo
        .rate
        .map(|r| format!(" {}", units::format_rate(r as f64)))
        .unwrap_or_default();
    format!(
        "{} {} {}{rate}",
        combo.transport.name(),
        combo.workload.name(),
        units::format_size(combo.size)
    )
}

fn describe(combo: &Combo, trial: usize) -> String {
    format!("{} (trial {trial})", what(combo))
}

fn row(combo: &Combo, timing: &Timing, t: Trials) -> Row {
    let measurements: Vec<_> = t.measured.iter().map(|m| m.measurement).collect();
    let cpu = Cpu {
        a: SideCpu::median_of(&t.measured.iter().map(|m| m.cpu_a).collect::<Vec<_>>()),
        b: SideCpu::median_of(&t.measured.iter().map(|m| m.cpu_b).collect::<Vec<_>>()),
    };
    let outcome = match (
        t.unavailable,
        stats::median_of(&measurements),
        t.failures.into_iter().next(),
    ) {
        (Some(why), ..) => Outcome::Unavailable(why),
        (None, Some(m), _) => Outcome::Measured(m),
        (None, None, Some(why)) => Outcome::Failed(why),
        (None, None, None) => Outcome::Failed("no trial ran".into()),
    };
    Row {
        transport: combo.transport.name(),
        workload: combo.workload,
        size: combo.size,
        rate: combo.rate,
        trials: t.measured.len(),
        outcome,
        cpu,
        geometry: combo.transport.geometry(&timing.spec(combo)),
    }
}

fn print_header(
    machine: &Machine,
    pinning: &Pinning,
    timing: &Timing,
    trials: usize,
    measurements: usize,
    estimate: Duration,
) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "ringway bench: each transport between two processes (memcpy: one), re-executing this binary"
    );
    let _ = writeln!(out, "{machine}");
    let _ = writeln!(out, "{pinning}");
    let _ = writeln!(
        out,
        "method: {trials} trials, transports interleaved within each trial, median of the trials reported;\n        \
         each measurement {:.0} ms warm-up (discarded) + {:.0} ms measured (idle: {:.0} ms); {measurements} measurements, about {:.0} s",
        ms(timing.warmup),
        ms(timing.measure),
        ms(timing.idle),
        estimate.as_secs_f64()
    );
    if trials < 3 {
        let _ = writeln!(
            out,
            "note: fewer than 3 trials: a single noisy trial can decide a row"
        );
    }
    let _ = out.flush();
}

/// The windows of every measurement: fixed by `--measure-ms`, or the budget of the default
/// selection (every transport, both workloads, the default sizes) split over its measurements,
/// so a subset keeps the same windows and takes proportionally less time.
fn timing(args: &BenchArgs) -> Timing {
    if let Some(ms) = args.measure_ms {
        return Timing::fixed(
            Duration::from_millis(ms),
            args.warmup_ms.map(Duration::from_millis),
        );
    }
    let default = plan::combos(
        transport::ALL,
        &BUDGETED_WORKLOADS,
        &DEFAULT_SIZES,
        &DEFAULT_RATES,
    )
    .len();
    let measurements = plan::schedule(args.trials as usize, default).len();
    let mut timing =
        Timing::from_budget(if args.quick { QUICK_BUDGET } else { BUDGET }, measurements);
    if args.quick {
        timing.idle = plan::QUICK_IDLE;
    }
    timing
}

/// Progress on stderr: a bar when stderr is a terminal (updated only between measurements: no
/// ticking thread takes a CPU from one), otherwise one line per measurement, so a run whose
/// output goes to a file or a CI log is not silent for a minute.
#[derive(Debug)]
enum Progress {
    Bar(ProgressBar),
    Lines { len: usize, done: usize },
}

impl Progress {
    fn new(len: usize) -> Progress {
        if !io::stderr().is_terminal() {
            return Progress::Lines { len, done: 0 };
        }
        let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed:>4} {msg}") {
            bar.set_style(style);
        }
        Progress::Bar(bar)
    }

    /// A measurement begins.
    fn start(&mut self, what: String) {
        match self {
            Progress::Bar(bar) => bar.set_message(what),
            Progress::Lines { len, done } => eprintln!("[{}/{len}] {what}", *done + 1),
        }
    }

    /// A measurement that is not run (its transport is unavailable here).
    fn skip(&mut self) {
        self.done();
    }

    /// A measurement ended.
    fn done(&mut self) {
        match self {
            Progress::Bar(bar) => bar.inc(1),
            Progress::Lines { done, .. } => *done += 1,
        }
    }

    /// A line for people, between measurements.
    fn note(&self, line: &str) {
        match self {
            Progress::Bar(bar) => bar.suspend(|| eprintln!("{line}")),
            Progress::Lines { .. } => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(args: &[&str]) -> BenchArgs {
        Cli::parse_from([&["bench"], args].concat()).bench
    }

    #[test]
    fn default_sizes_are_the_options_defaults() {
        assert_eq!(parse(&[]).sizes, DEFAULT_SIZES);
        assert_eq!(parse(&[]).workloads, DEFAULT_WORKLOADS);
        assert_eq!(parse(&[]).rates, DEFAULT_RATES);
    }

    /// The default run stays under about three minutes with every workload, `--quick` well
    /// under one.
    #[test]
    fn the_default_run_is_bounded() {
        let estimate = |args: &BenchArgs| {
            let combos = plan::combos(transport::ALL, &args.workloads, &args.sizes, &args.rates);
            timing(args).estimate(&combos) * args.trials
        };
        let full = estimate(&parse(&[]));
        assert!(full <= Duration::from_secs(170), "{full:?}");
        let quick = estimate(&parse(&["--quick"]));
        assert!(quick <= Duration::from_secs(45), "{quick:?}");
    }

    /// A subset keeps the default's windows, so it takes proportionally less time (it used to
    /// spread the whole minute over its few measurements).
    #[test]
    fn a_subset_takes_proportionally_less_time() {
        let combos = |args: &BenchArgs| {
            let transports: Vec<_> = if args.transports.is_empty() {
                transport::ALL.to_vec()
            } else {
                args.transports.clone()
            };
            plan::combos(&transports, &args.workloads, &args.sizes, &args.rates)
        };
        let estimate = |args: &BenchArgs| timing(args).estimate(&combos(args)) * args.trials;
        let all = parse(&["--workloads", "pingpong,throughput"]);
        let full = estimate(&all);
        assert!(full <= BUDGET + Duration::from_secs(10), "{full:?}");
        let subset = parse(&[
            "--workloads",
            "pingpong,throughput",
            "--transports",
            "pipe,tcp",
            "--sizes",
            "64",
        ]);
        assert_eq!(timing(&subset), timing(&all), "the same windows");
        let part = estimate(&subset);
        let share = combos(&subset).len() as f64 / combos(&all).len() as f64;
        assert!(
            part.as_secs_f64() <= full.as_secs_f64() * share * 1.01,
            "{part:?} for {share:.3} of {full:?}"
        );
        let quick = parse(&["--quick", "--sizes", "64"]);
        assert!(timing(&quick).measure < timing(&all).measure);
        assert!(timing(&quick).idle < timing(&all).idle);
    }
}
