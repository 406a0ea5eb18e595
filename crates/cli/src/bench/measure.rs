//! One measurement, from the parent's side: the transport's endpoints, two peer processes that
//! inherit them (responder first, so it waits when the initiator starts), their supervision,
//! and what their reports and exit statuses add up to.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use super::control::{Control, CpuWindow};
use super::machine::Pinning;
use super::peer::{self, PeerLine};
use super::plan::{Combo, Timing};
use super::spawn;
use super::stats::Measurement;
use super::transport::{PeerError, Prepared, Role, SetupError};

/// Why a measurement produced nothing.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The transport cannot carry this combination here (not an error).
    Unavailable(String),
    /// The measurement failed (timeout, crash, OS error); the others go on.
    Failed(String),
    /// A message was lost, reordered or corrupted: the whole run stops.
    Integrity(String),
}

/// What one measurement produced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Trial {
    /// The measuring side's result.
    pub(crate) measurement: Measurement,
    /// Side A's CPU over its window, if it took one.
    pub(crate) cpu_a: Option<CpuWindow>,
    /// Side B's CPU over its window (`None` for a one-process transport).
    pub(crate) cpu_b: Option<CpuWindow>,
}

/// Runs one measurement of `combo`: endpoints, peers, their reports.
pub(crate) fn measure(
    exe: &Path,
    combo: &Combo,
    timing: &Timing,
    pinning: &Pinning,
) -> Result<Trial, Failure> {
    let spec = timing.spec(combo);
    let name = combo.transport.name();
    let prepared = combo.transport.prepare(&spec).map_err(|e| match e {
        SetupError::Unavailable(why) => Failure::Unavailable(why),
        e @ SetupError::Io { .. } => Failure::Failed(format!("set up: {e}")),
    })?;
    // The responder first, so it is waiting when the initiator starts.
    let mut sides = Vec::new();
    if let Some(b) = &prepared.b {
        sides.push((Role::B, b, pinning.b));
    }
    sides.push((Role::A, &prepared.a, pinning.a));
    let mut ctl = Control::new(sides.len())
        .map_err(|e| Failure::Failed(format!("create the controls: {e}")))?;
    let mut children: Vec<(Role, Child)> = Vec::new();
    for (role, endpoint, cpu) in sides {
        let ctl_fds = ctl.peer_fds();
        let args = peer::command_line(name, role, &spec, endpoint, &ctl_fds, cpu);
        let inherit: Vec<BorrowedFd<'_>> = endpoint
            .fds
            .iter()
            .map(AsFd::as_fd)
            .chain(ctl_fds)
            .collect();
        match spawn::spawn(exe, &args, &inherit) {
            Ok(child) => children.push((role, child)),
            Err(e) => {
                for (_, mut c) in children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                return Err(Failure::Failed(format!(
                    "start {} as side {role:?}: {e}",
                    exe.display()
                )));
            }
        }
    }
    // Close the parent's copies, so that a peer's exit is seen as end of stream by the other.
    let Prepared { a, b, guard } = prepared;
    drop((a, b));
    ctl.close_peer_ends();
    let supervised = spawn::supervise(children, &mut ctl, timing.timeout())
        .map_err(|e| Failure::Failed(format!("watch the peers: {e}")))?;
    drop(guard);
    interpret(supervised, timing.timeout())
}

/// Turns what the peers printed and how they exited into a measurement or a failure.
fn interpret(s: spawn::Supervised, timeout: Duration) -> Result<Trial, Failure> {
    let stderr = |run: &spawn::PeerRun| {
        let text = String::from_utf8_lossy(&run.stderr);
        let lines: Vec<&str> = text.trim_end().lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n    ");
        if tail.is_empty() {
            String::new()
        } else {
            format!("\n    side {:?} stderr: {tail}", run.role)
        }
    };
    let all_stderr: String = s.runs.iter().map(stderr).collect();
    if let Some(run) = s
        .runs
        .iter()
        .find(|r| r.status.code() == Some(PeerError::INTEGRITY_EXIT))
    {
        return Err(Failure::Integrity(format!(
            "side {:?} found a broken message{}",
            run.role,
            stderr(run)
        )));
    }
    if s.timed_out {
        let running: Vec<String> = s
            .runs
            .iter()
            .filter(|r| r.killed)
            .map(|r| format!("{:?}", r.role))
            .collect();
        return Err(Failure::Failed(format!(
            "timed out after {:.1} s; killed side(s) {}{all_stderr}",
            timeout.as_secs_f64(),
            running.join(", ")
        )));
    }
    if let Some(run) = s.runs.iter().find(|r| !r.status.success() && !r.killed) {
        return Err(Failure::Failed(format!(
            "side {:?} failed ({}){all_stderr}",
            run.role, run.status
        )));
    }
    let mut reports = Vec::new();
    for run in &s.runs {
        let text = String::from_utf8_lossy(&run.stdout);
        let report: PeerLine = match text.lines().collect::<Vec<_>>().as_slice() {
            [line] => serde_json::from_str(line).map_err(|e| {
                Failure::Failed(format!(
                    "side {:?} printed a bad report ({e}): {line}",
                    run.role
                ))
            })?,
            other => {
                let why = format!(
                    "side {:?} printed {} lines instead of one report{all_stderr}",
                    run.role,
                    other.len()
                );
                return Err(Failure::Failed(why));
            }
        };
        reports.push((run.role, report));
    }
    if let [(_, a), (_, b)] = reports.as_slice()
        && a.report.messages != b.report.messages
    {
        return Err(Failure::Integrity(format!(
            "the sides disagree on how many messages moved: {} and {}",
            a.report.messages, b.report.messages
        )));
    }
    let cpu = |role: Role| {
        reports
            .iter()
            .find(|(r, _)| *r == role)
            .and_then(|(_, line)| line.cpu)
    };
    let mut measured = reports.iter().filter_map(|(_, r)| r.report.measurement);
    match (measured.next(), measured.next()) {
        (Some(measurement), None) => Ok(Trial {
            measurement,
            cpu_a: cpu(Role::A),
            cpu_b: cpu(Role::B),
        }),
        _ => Err(Failure::Failed(
            "expected exactly one side to report a measurement".into(),
        )),
    }
}
