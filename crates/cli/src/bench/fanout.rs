//! The broadcast fan-out rows: `ringway-fanout1`, `-fanout2`, `-fanout4` (throughput only).
//!
//! Side A is a [`BytePublisher`] sending S-byte messages numbered from 0, as in every
//! throughput row. Side B is N subscriber processes: B itself and N - 1 children it forks
//! before it attaches anything. Every subscriber checks every number (a lost, reordered or
//! lapped message is an integrity failure) and measures its own messages per second over its
//! own window; B reports the **slowest subscriber's rate**, the per-reader rate of the
//! fan-out (with the block policy the publisher cannot run ahead of it). B's window decides
//! when the publisher stops, as in the other rows; a child whose window is cut short by the
//! end of the stream reports what it measured until then.
//!
//! The channel: [`Policy::Block`] (every subscriber sees every message), S-byte slots (the
//! MPMC rows' payload space, or up to 256 slots within 4 MiB if that is more: 1024 slots of
//! 64 B, 256 of 4 KiB, 64 of 64 KiB, 4 of 1 MiB), and the default spin-then-park waiting on
//! every side:
//! with up to five processes on a small machine, busy-spinning subscribers would measure the
//! scheduler. B creates the channel; its children open it and tell B over a pipe once they
//! are attached, and B passes the start gate only then, so every subscriber starts at
//! message 0. Names and cleanup are the other ringway rows' (`RemoveNames`).

use std::io::{self, BufRead, Write};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use ringway_channel::{BytePublisher, ByteSubscriber, ChannelOptions, Policy, WaitStrategy};

use super::control::PeerControl;
use super::peer::PeerReport;
use super::ringway::{self, TIMEOUT_SLACK, fresh_base, io_err, mpmc_slots};
use super::stats::{Measurement, RateSummary};
use super::transport::{
    Endpoint, Geometry, PeerError, PeerSpec, Prepared, Role, SetupError, Transport, Workload,
};
use super::workload::{self, Link, missing};

/// One publisher, one subscriber process.
pub(crate) static FANOUT1: Fanout = Fanout {
    name: "ringway-fanout1",
    readers: 1,
};
/// One publisher, two subscriber processes.
pub(crate) static FANOUT2: Fanout = Fanout {
    name: "ringway-fanout2",
    readers: 2,
};
/// One publisher, four subscriber processes.
pub(crate) static FANOUT4: Fanout = Fanout {
    name: "ringway-fanout4",
    readers: 4,
};

/// A broadcast channel read by `readers` subscriber processes.
#[derive(Debug)]
pub(crate) struct Fanout {
    name: &'static str,
    readers: usize,
}

/// Slots of the fan-out ring: the MPMC rows' payload space, or up to 256 slots within 4 MiB
/// if that is more (a small ring makes a publisher and several subscribers on few CPUs take
/// turns sleeping, which measures the scheduler rather than the ring).
fn slots(size: usize) -> usize {
    let roomy = ((4 << 20) / size.max(1)).min(256);
    mpmc_slots(size).max(roomy)
}

fn options(size: usize) -> ChannelOptions {
    ChannelOptions::new()
        .policy(Policy::Block)
        .wait_strategy(WaitStrategy::SpinThenPark)
        .max_message(size)
        .capacity(slots(size))
}

impl Transport for Fanout {
    fn name(&self) -> &'static str {
        self.name
    }

    fn supports(&self, workload: Workload) -> bool {
        workload == Workload::Throughput
    }

    fn geometry(&self, spec: &PeerSpec) -> Geometry {
        let slots = slots(spec.size) as u64;
        Geometry {
            capacity_bytes: Some(slots.saturating_mul(spec.size as u64)),
            slots: Some(slots),
            batch: Some(1),
        }
    }

    fn prepare(&self, spec: &PeerSpec) -> Result<Prepared, SetupError> {
        if spec.size > (1 << 30) - 2 {
            return Err(SetupError::Unavailable(format!(
                "a {}-byte message is larger than a broadcast slot carries",
                spec.size
            )));
        }
        let name = format!("{}-bc", fresh_base());
        Ok(ringway::named_pair(&name, vec![name.clone()]))
    }

    fn run_peer(
        &self,
        role: Role,
        spec: &PeerSpec,
        endpoint: Endpoint,
        ctl: PeerControl,
    ) -> Result<PeerReport, PeerError> {
        let name = ringway::endpoint_name(endpoint, "find the channel name")?;
        let opts = options(spec.size).open_timeout(spec.warmup + spec.measure + TIMEOUT_SLACK);
        if role == Role::A {
            let tx = BytePublisher::open(&name, &opts)
                .map_err(|e| io_err("open the channel to publish on", e))?;
            return workload::drive(role, spec, PubLink(tx), ctl);
        }
        // Fork the other subscribers before this process attaches anything (a child must not
        // inherit an endpoint it would close when it exits).
        let (report_rx, report_tx) = nix::unistd::pipe().map_err(|e| io_err("pipe", e))?;
        let mut children = Vec::new();
        for _ in 1..self.readers {
            // SAFETY: a peer process is single-threaded (it runs one workload and no other
            // thread), so the child may run ordinary code after the fork.
            match unsafe { nix::unistd::fork() }.map_err(|e| io_err("fork a subscriber", e))? {
                nix::unistd::ForkResult::Child => {
                    drop(report_rx);
                    let code = child_subscriber(&name, &opts, spec, report_tx);
                    std::process::exit(code);
                }
                nix::unistd::ForkResult::Parent { child } => children.push(child),
            }
        }
        drop(report_tx);
        let rx = ByteSubscriber::create(&name, &opts)
            .map_err(|e| io_err("create the channel to subscribe to", e))?;
        let mut lines = io::BufReader::new(std::fs::File::from(report_rx)).lines();
        // Each child says `attached` once it is, then its report at the end.
        for _ in 1..self.readers {
            match lines.next() {
                Some(Ok(line)) if line == "attached" => {}
                other => return Err(io_err("wait for the subscribers", format!("{other:?}"))),
            }
        }
        let mine = workload::drive(role, spec, SubLink(rx), ctl)?;
        let Some(Measurement::Rate(mut slowest)) = mine.measurement else {
            return Err(io_err("measure", "the subscriber measured no rate"));
        };
        for line in lines {
            let line = line.map_err(|e| PeerError::io("read a subscriber's report", e))?;
            let (messages, in_window, window_ns) =
                parse_report(&line).ok_or_else(|| io_err("read a subscriber's report", &line))?;
            if messages != mine.messages {
                return Err(PeerError::Integrity(format!(
                    "a subscriber received {messages} messages, another {}",
                    mine.messages
                )));
            }
            let rate = RateSummary::new(in_window, Duration::from_nanos(window_ns), spec.size);
            if window_ns > 0 && in_window > 0 && rate.msgs_per_sec < slowest.msgs_per_sec {
                slowest = rate;
            }
        }
        for child in children {
            match nix::sys::wait::waitpid(child, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => {}
                Ok(nix::sys::wait::WaitStatus::Exited(_, code))
                    if code == PeerError::INTEGRITY_EXIT =>
                {
                    return Err(PeerError::Integrity(
                        "a subscriber found a broken message".into(),
                    ));
                }
                other => return Err(io_err("a subscriber failed", format!("{other:?}"))),
            }
        }
        Ok(PeerReport {
            messages: mine.messages,
            measurement: Some(Measurement::Rate(slowest)),
        })
    }
}

fn parse_report(line: &str) -> Option<(u64, u64, u64)> {
    let mut it = line.split(' ').map(str::parse::<u64>);
    match (it.next()?, it.next()?, it.next()?) {
        (Ok(a), Ok(b), Ok(c)) => Some((a, b, c)),
        _ => None,
    }
}

/// A forked subscriber: attaches, says so, then receives and checks every message, measuring
/// its own window (opening `warmup` after the first message), and reports
/// `messages in_window window_ns`. Returns the exit code.
fn child_subscriber(name: &str, opts: &ChannelOptions, spec: &PeerSpec, out: OwnedFd) -> i32 {
    // Unpin: this process inherited side B's CPU, which B itself uses.
    let mut all = nix::sched::CpuSet::new();
    for cpu in 0..nix::sched::CpuSet::count() {
        let _ = all.set(cpu);
    }
    let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &all);
    let mut out = std::fs::File::from(out);
    let mut rx = match ByteSubscriber::open(name, opts) {
        Ok(rx) => rx,
        Err(e) => {
            eprintln!("subscriber: open {name}: {e}");
            return 1;
        }
    };
    // One `write` per line: the subscribers share the pipe, and `writeln!` on a `File` writes
    // each formatted piece with a system call of its own, so two children's lines interleaved
    // ("25602560 ..."). A write of at most PIPE_BUF bytes to a pipe is atomic.
    if out.write_all(b"attached\n").is_err() {
        return 1;
    }
    let mut buf = vec![0u8; spec.size];
    let (mut expected, mut opened, mut closed) = (0u64, None, None);
    let mut first = None;
    loop {
        match recv_into(&mut rx, &mut buf) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                eprintln!("subscriber: after {expected} messages: {e}");
                return if e.kind() == io::ErrorKind::InvalidData {
                    PeerError::INTEGRITY_EXIT
                } else {
                    1
                };
            }
        }
        let got = u64::from_le_bytes(buf[..8].try_into().unwrap_or_default());
        if got != expected {
            eprintln!("subscriber: expected message {expected}, received {got}");
            return PeerError::INTEGRITY_EXIT;
        }
        expected += 1;
        first.get_or_insert_with(Instant::now);
        if expected % workload::clock_stride(spec.size) != 0 || closed.is_some() {
            continue;
        }
        let now = Instant::now();
        match opened {
            None => opened = Some((now + spec.warmup, None)),
            Some((at, None)) if now >= at => opened = Some((at, Some((now, expected)))),
            Some((_, Some((since, at_message)))) if now >= since + spec.measure => {
                closed = Some((expected - at_message, now - since));
            }
            _ => {}
        }
    }
    // Cut short by the end of the stream: what was measured until then, or (a stream too
    // short to warm up) everything since the first message; nothing (a zero window, which B
    // leaves out) if no message came.
    let (in_window, window) = closed.unwrap_or_else(|| match (opened, first) {
        (Some((_, Some((since, at_message)))), _) => (expected - at_message, since.elapsed()),
        (_, Some(first)) => (expected, first.elapsed()),
        (_, None) => (0, Duration::ZERO),
    });
    let nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
    drop(rx);
    match out.write_all(format!("{expected} {in_window} {nanos}\n").as_bytes()) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// Receives one message into `buf` in place, checking its length and that it was not
/// overwritten while copied; `Ok(false)` once the publisher left and everything was read.
fn recv_into(rx: &mut ByteSubscriber, buf: &mut [u8]) -> io::Result<bool> {
    let Some(msg) = ringway::received(rx.recv_ref())? else {
        return Ok(false);
    };
    ringway::expect_len(msg.len(), buf.len())?;
    msg.copy_to(buf);
    msg.release()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    Ok(true)
}

/// Side A's link: the publisher.
struct PubLink(BytePublisher);

impl Link for PubLink {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.0
            .send(msg)
            .map_err(|e| io::Error::other(e.to_string()))
    }

    fn recv(&mut self, _: &mut [u8]) -> io::Result<bool> {
        Err(missing("channel to receive from"))
    }
}

/// Side B's link: B's own subscriber.
struct SubLink(ByteSubscriber);

impl Link for SubLink {
    fn send(&mut self, _: &[u8]) -> io::Result<()> {
        Err(missing("channel to send on"))
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        recv_into(&mut self.0, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_are_roomy_but_bounded() {
        assert_eq!(slots(64), 1024);
        assert_eq!(slots(4096), 256);
        assert_eq!(slots(64 << 10), 64);
        assert_eq!(slots(1 << 20), 4);
    }

    #[test]
    fn reports_parse() {
        assert_eq!(parse_report("10 5 1000"), Some((10, 5, 1000)));
        assert_eq!(parse_report("10 5"), None);
        assert_eq!(parse_report("attached"), None);
    }
}
