//! The peer process: one side of a measurement, started by the parent as
//! `ringway __bench-peer ...`, and the wire format between the two (arguments in, one JSON
//! line out).
//!
//! A peer prints exactly one line on stdout, its [`PeerReport`] as JSON, and nothing else;
//! diagnostics go to stderr. It exits 0 on success, [`PeerError::INTEGRITY_EXIT`] when a
//! message was lost, reordered or corrupted, and 1 on any other failure.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use super::control::{self, CpuWindow, PeerControl};
use super::machine;
use super::stats::Measurement;
use super::transport::{self, Endpoint, PeerError, PeerSpec, Role, Workload};

/// What a peer reports to the parent, as one JSON line on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct PeerReport {
    /// Messages (or round trips) this side moved in the whole run, warm-up included; the parent
    /// checks that both sides agree.
    pub(crate) messages: u64,
    /// The measurement, from the side that takes it (ping-pong: A; throughput: B; a
    /// one-process transport: A).
    pub(crate) measurement: Option<Measurement>,
}

/// What a peer prints: its report, and the CPU time it used over its measured window (taken by
/// the workload through its [`PeerControl`], whatever the transport).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct PeerLine {
    /// The transport's report.
    #[serde(flatten)]
    pub(crate) report: PeerReport,
    /// This side's CPU over its window; `None` when its window never opened.
    pub(crate) cpu: Option<CpuWindow>,
}

/// Arguments of the hidden `__bench-peer` subcommand.
#[derive(Debug, Args)]
pub(crate) struct PeerArgs {
    /// Transport name.
    #[arg(long)]
    transport: String,
    /// Which side to play.
    #[arg(long, value_enum)]
    role: Role,
    /// Workload to run.
    #[arg(long, value_enum)]
    workload: Workload,
    /// Message size in bytes.
    #[arg(long)]
    size: usize,
    /// Warm-up, in microseconds.
    #[arg(long)]
    warmup_us: u64,
    /// Measured window, in microseconds.
    #[arg(long)]
    measure_us: u64,
    /// Offered rate of the fixed-rate workload, messages per second.
    #[arg(long)]
    rate: Option<u64>,
    /// An inherited descriptor of the endpoint (repeated, in the transport's order).
    #[arg(long = "fd")]
    fds: Vec<RawFd>,
    /// The control descriptors: the start gate's ready and go pipes, the shared page.
    #[arg(long, value_delimiter = ',', required = true)]
    control: Vec<RawFd>,
    /// A name of the endpoint to open.
    #[arg(long)]
    name: Option<String>,
    /// The CPU to pin this process to.
    #[arg(long)]
    cpu: Option<usize>,
}

/// The command line (after the program name) that makes a peer play `role` of `spec` on
/// `endpoint`, with the controls whose peer descriptors are `control`; descriptors are passed
/// by number and must be inherited unchanged.
pub(crate) fn command_line(
    transport: &str,
    role: Role,
    spec: &PeerSpec,
    endpoint: &Endpoint,
    control: &[BorrowedFd<'_>],
    cpu: Option<usize>,
) -> Vec<OsString> {
    let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX).to_string();
    let mut args: Vec<String> = vec![
        "__bench-peer".into(),
        "--transport".into(),
        transport.into(),
        "--role".into(),
        cli_name(&role),
        "--workload".into(),
        cli_name(&spec.workload),
        "--size".into(),
        spec.size.to_string(),
        "--warmup-us".into(),
        us(spec.warmup),
        "--measure-us".into(),
        us(spec.measure),
    ];
    if let Some(rate) = spec.rate {
        args.extend(["--rate".into(), rate.to_string()]);
    }
    for fd in &endpoint.fds {
        args.extend(["--fd".into(), fd.as_raw_fd().to_string()]);
    }
    let control: Vec<String> = control
        .iter()
        .map(|fd| fd.as_raw_fd().to_string())
        .collect();
    args.extend(["--control".into(), control.join(",")]);
    if let Some(name) = &endpoint.name {
        args.extend(["--name".into(), name.clone()]);
    }
    if let Some(cpu) = cpu {
        args.extend(["--cpu".into(), cpu.to_string()]);
    }
    args.into_iter().map(OsString::from).collect()
}

/// The name clap gives a value of a [`ValueEnum`].
fn cli_name<T: ValueEnum>(value: &T) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

/// Entry point of `ringway __bench-peer`.
pub(crate) fn main(args: &PeerArgs) -> ExitCode {
    match run(args) {
        Ok(report) => {
            let line = PeerLine {
                report,
                cpu: control::take_cpu(),
            };
            let line = serde_json::to_string(&line).expect("a report always serialises");
            let mut out = io::stdout().lock();
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "ringway bench peer ({} {} {} B, side {}): {e}",
                args.transport,
                args.workload.name(),
                args.size,
                cli_name(&args.role)
            );
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

fn run(args: &PeerArgs) -> Result<PeerReport, PeerError> {
    if let Some(cpu) = args.cpu {
        machine::pin_to(cpu).map_err(|e| PeerError::io(format!("pin to CPU {cpu}"), e))?;
    }
    let transport = transport::find(&args.transport).ok_or_else(|| {
        PeerError::io(
            "choose transport",
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown transport {:?}", args.transport),
            ),
        )
    })?;
    let spec = PeerSpec {
        workload: args.workload,
        size: args.size,
        warmup: Duration::from_micros(args.warmup_us),
        measure: Duration::from_micros(args.measure_us),
        rate: args.rate,
    };
    let mut fds = adopt(&[args.fds.as_slice(), args.control.as_slice()].concat())?;
    let control: [OwnedFd; 3] = fds.split_off(args.fds.len()).try_into().map_err(|_| {
        let why = "--control takes three descriptors: READY,GO,PAGE";
        PeerError::io(
            "adopt the controls",
            io::Error::new(io::ErrorKind::InvalidInput, why),
        )
    })?;
    let ctl = PeerControl::new(control).map_err(|e| PeerError::io("map the control page", e))?;
    let endpoint = Endpoint {
        fds,
        name: args.name.clone(),
    };
    transport.run_peer(args.role, &spec, endpoint, ctl)
}

/// Takes ownership of the descriptors the parent says this process inherited.
fn adopt(fds: &[RawFd]) -> Result<Vec<OwnedFd>, PeerError> {
    let mut seen = HashSet::new();
    let mut owned = Vec::with_capacity(fds.len());
    for &fd in fds {
        let bad = |why: &str| {
            PeerError::io(
                format!("adopt inherited fd {fd}"),
                io::Error::new(io::ErrorKind::InvalidInput, why),
            )
        };
        if fd <= 2 {
            return Err(bad("stdin, stdout and stderr are not endpoints"));
        }
        if !seen.insert(fd) {
            return Err(bad("passed twice"));
        }
        // SAFETY: F_GETFD only reads the descriptor flags of `fd`; it touches no memory.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            return Err(PeerError::io(
                format!("adopt inherited fd {fd}"),
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: `fd` is open (checked above), is not stdio, appears once in the list, and the
        // parent handed it to this process for the endpoint alone: nothing else in this process
        // owns it, so exactly one `OwnedFd` now owns it and closes it.
        owned.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    Ok(owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::os::fd::AsFd;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(subcommand)]
        cmd: Sub,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Sub {
        #[command(name = "__bench-peer")]
        Peer(PeerArgs),
    }

    #[test]
    fn command_line_round_trips_through_the_parser() {
        let spec = PeerSpec {
            workload: Workload::Rate,
            size: 4096,
            warmup: Duration::from_millis(20),
            measure: Duration::from_micros(80_500),
            rate: Some(250_000),
        };
        let endpoint = Endpoint {
            fds: Vec::new(),
            name: Some("/ringway-x".into()),
        };
        let mut argv = vec![OsString::from("ringway")];
        let (stdin, stdout, stderr) = (io::stdin(), io::stdout(), io::stderr());
        let stdio = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()];
        argv.extend(command_line(
            "tcp",
            Role::B,
            &spec,
            &endpoint,
            &stdio,
            Some(1),
        ));
        let Sub::Peer(a) = Wrapper::try_parse_from(argv).expect("parses").cmd;
        assert_eq!(
            (a.transport.as_str(), a.role, a.workload, a.size),
            ("tcp", Role::B, Workload::Rate, 4096)
        );
        assert_eq!(a.rate, Some(250_000));
        assert_eq!((a.warmup_us, a.measure_us), (20_000, 80_500));
        assert_eq!(
            (a.name.as_deref(), a.cpu, a.fds.len()),
            (Some("/ringway-x"), Some(1), 0)
        );
        assert_eq!(a.control, vec![0, 1, 2]);
    }

    #[test]
    fn report_is_one_json_object() {
        let r = PeerLine {
            report: PeerReport {
                messages: 7,
                measurement: None,
            },
            cpu: Some(CpuWindow {
                cpu_ns: 5,
                messages: 3,
                window_ns: 10,
            }),
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<PeerLine>(&line).unwrap(), r);
    }
}
