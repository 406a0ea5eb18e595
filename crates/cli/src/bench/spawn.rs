//! Starting peer processes with their inherited descriptors, and watching them until they end.
//!
//! Every descriptor the bench creates is close-on-exec, so a peer inherits exactly the ones of
//! its own endpoint: `FD_CLOEXEC` is cleared on those, in the child between fork and exec, and
//! they keep their numbers (the peer is told them with `--fd N`).
//!
//! The parent then sleeps in `poll(2)` on the peers' stdout and stderr, without a thread or a
//! timer of its own that could take a CPU from a measurement, until every peer has exited. A
//! peer that fails gets the others killed at once (they would otherwise wait for it forever);
//! past the deadline every peer still running is killed.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::control::Control;
use super::transport::Role;

/// Starts `exe args`, with stdin from /dev/null, stdout and stderr piped back, and `inherit`
/// open in the child under the same numbers.
pub(crate) fn spawn(
    exe: &Path,
    args: &[OsString],
    inherit: &[BorrowedFd<'_>],
) -> io::Result<Child> {
    let raw: Vec<RawFd> = inherit.iter().map(AsRawFd::as_raw_fd).collect();
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // calls are allowed: it calls fcntl(2) alone and allocates nothing (`raw` was built before
    // the fork and is only iterated). The descriptors are open: `inherit` borrows them from the
    // parent for the whole of `spawn`, so the fork copies them.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &raw {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// How one peer ended.
#[derive(Debug)]
pub(crate) struct PeerRun {
    /// The side it played.
    pub(crate) role: Role,
    /// Its exit status.
    pub(crate) status: ExitStatus,
    /// Whether the parent killed it (timeout, or the other peer failed).
    pub(crate) killed: bool,
    /// All it printed on stdout.
    pub(crate) stdout: Vec<u8>,
    /// All it printed on stderr.
    pub(crate) stderr: Vec<u8>,
}

/// How a group of peers ended.
#[derive(Debug)]
pub(crate) struct Supervised {
    /// One entry per peer, in the order given.
    pub(crate) runs: Vec<PeerRun>,
    /// Whether the deadline passed and the peers still running were killed.
    pub(crate) timed_out: bool,
}

struct Watched {
    role: Role,
    child: Child,
    out: Option<ChildStdout>,
    err: Option<ChildStderr>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Option<ExitStatus>,
    killed: bool,
}

/// After the deadline and the kills, how long to wait for the killed peers' pipes to close.
const GRACE: Duration = Duration::from_secs(5);

/// Collects the output of `children` until all have exited, opening the start gate of `ctl`
/// when they are all ready, killing the rest as soon as one fails and all of them once
/// `timeout` has passed.
///
/// # Errors
/// Only failures of `poll` or `waitpid` themselves; the peers are killed and reaped first.
pub(crate) fn supervise(
    children: Vec<(Role, Child)>,
    ctl: &mut Control,
    timeout: Duration,
) -> io::Result<Supervised> {
    let deadline = Instant::now() + timeout;
    let mut peers: Vec<Watched> = children
        .into_iter()
        .map(|(role, mut child)| Watched {
            role,
            out: child.stdout.take(),
            err: child.stderr.take(),
            child,
            stdout: Vec::new(),
            stderr: Vec::new(),
            status: None,
            killed: false,
        })
        .collect();
    let timed_out = match watch(&mut peers, ctl, deadline) {
        Ok(timed_out) => timed_out,
        Err(e) => {
            kill_running(&mut peers);
            for p in peers.iter_mut().filter(|p| p.status.is_none()) {
                let _ = p.child.wait();
            }
            return Err(e);
        }
    };
    let runs = peers
        .into_iter()
        .map(|p| PeerRun {
            role: p.role,
            status: p.status.expect("every peer was reaped"),
            killed: p.killed,
            stdout: p.stdout,
            stderr: p.stderr,
        })
        .collect();
    Ok(Supervised { runs, timed_out })
}

/// The supervision loop; returns whether the deadline passed.
fn watch(peers: &mut [Watched], ctl: &mut Control, deadline: Instant) -> io::Result<bool> {
    let mut timed_out = false;
    loop {
        reap(peers)?;
        if peers.iter().all(|p| p.status.is_some()) {
            break;
        }
        let now = Instant::now();
        if now >= deadline && !timed_out {
            timed_out = true;
            kill_running(peers);
        }
        if now >= deadline + GRACE {
            // A killed peer's pipe is still open (held by something it started?): stop reading.
            for p in peers.iter_mut() {
                (p.out, p.err) = (None, None);
            }
            continue;
        }
        let wait = if timed_out {
            deadline + GRACE
        } else {
            deadline
        }
        .saturating_duration_since(now);
        read_ready(peers, ctl, wait)?;
    }
    Ok(timed_out)
}

/// Waits for the peers whose output has ended (they are exiting); a failed one gets the others
/// killed.
fn reap(peers: &mut [Watched]) -> io::Result<()> {
    for i in 0..peers.len() {
        let p = &mut peers[i];
        if p.status.is_none() && p.out.is_none() && p.err.is_none() {
            let status = p.child.wait()?;
            p.status = Some(status);
            if !status.success() {
                kill_running(peers);
            }
        }
    }
    Ok(())
}

fn kill_running(peers: &mut [Watched]) {
    for p in peers.iter_mut().filter(|p| p.status.is_none() && !p.killed) {
        // The child is not reaped yet, so its pid cannot have been reused; an error means it
        // has exited already, which is what we wanted.
        let _ = p.child.kill();
        p.killed = true;
    }
}

/// Sleeps in poll(2) until some peer output (or a ready byte at the gate) is there or `wait`
/// has passed, then reads it; an end of file closes that pipe.
fn read_ready(peers: &mut [Watched], ctl: &mut Control, wait: Duration) -> io::Result<()> {
    let (ready, gate_ready) = {
        let mut fds = Vec::new();
        let mut which = Vec::new();
        let gate_fd = ctl.pending();
        if let Some(fd) = gate_fd {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        for (i, p) in peers.iter().enumerate() {
            if let Some(out) = &p.out {
                fds.push(PollFd::new(out.as_fd(), PollFlags::POLLIN));
                which.push((i, false));
            }
            if let Some(err) = &p.err {
                fds.push(PollFd::new(err.as_fd(), PollFlags::POLLIN));
                which.push((i, true));
            }
        }
        let ms = PollTimeout::try_from(wait.as_millis().max(1)).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, ms) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let is_ready = |fd: &PollFd<'_>| fd.any().unwrap_or(true);
        let skip = usize::from(gate_fd.is_some());
        let ready: Vec<(usize, bool)> = fds[skip..]
            .iter()
            .zip(which)
            .filter(|(fd, _)| is_ready(fd))
            .map(|(_, w)| w)
            .collect();
        (ready, gate_fd.is_some() && is_ready(&fds[0]))
    };
    if gate_ready {
        ctl.on_readable();
    }
    let mut chunk = vec![0u8; 64 * 1024];
    for (i, is_err) in ready {
        let p = &mut peers[i];
        let (pipe, buf): (&mut dyn Read, &mut Vec<u8>) = match (is_err, &mut p.out, &mut p.err) {
            (false, Some(out), _) => (out, &mut p.stdout),
            (true, _, Some(err)) => (err, &mut p.stderr),
            _ => continue,
        };
        match pipe.read(&mut chunk) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Ok(0) | Err(_) => {
                if is_err {
                    p.err = None;
                } else {
                    p.out = None;
                }
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Ok(())
}
