//! The two workloads, written once over a [`Link`], and run by every message-passing
//! transport in its peer process.
//!
//! - **ping-pong** (round trip): A writes its round-trip number into the first 8 bytes of an
//!   S-byte message and sends it; B receives all S bytes and sends them back; A receives all S
//!   bytes, checks the number, and records the time of the whole round trip. Warm-up round
//!   trips are discarded; the measured window is recorded in an HDR histogram.
//! - **throughput** (one way): A sends S-byte messages whose first 8 bytes are a sequence number
//!   counting from 0, until B raises the stop flag (see [`control`](super::control)), then
//!   closes. B checks every number is the next one (a lost or reordered message is an
//!   integrity failure) and measures messages per second over its window, which opens
//!   `warmup` after the start gate and lasts `measure`; then it raises the stop flag and
//!   drains the rest until end of stream. So the window always sees a busy sender.
//!
//! - **idle**: B waits in one blocking receive while A, attached, sleeps for the measured
//!   window (sending nothing), then sends one message (number 0) and closes. Each side takes its
//!   CPU time around its wait: what a parked receiver (and an idle sender) costs.
//! - **rate** (fixed offered rate): A publishes the `CLOCK_MONOTONIC` time `T0` its schedule
//!   starts at, then sends message `i` (numbered as in throughput) at its intended time
//!   `T0 + i / rate`, waiting for it by spinning on the clock, and never skipping one: a message
//!   that is late is sent at once. B knows each message's intended time from its number and
//!   `T0` (so an 8-byte message carries all it needs; `CLOCK_MONOTONIC` is one clock for every
//!   process of the host) and records `receive time - intended time` in an HDR histogram for
//!   every message due in the window `[T0 + warmup, T0 + warmup + measure)`, whenever it
//!   arrives: a transport that stalls makes every message queued behind the stall late, so
//!   coordinated omission is counted. A stops at the window's end, by its clock, whether or not
//!   it has sent every message due by then; B reports which share of the messages due in the
//!   window arrived (`on_schedule`: below 99%, the row did not keep up, and the messages never
//!   sent are in no percentile) and the rate it received at over the window.
//!
//! Both sides count what they moved; the parent checks the counts agree, which catches a lost
//! tail that sequence numbers alone cannot.
//!
//! Every workload also measures each side's CPU time over the measured window (see
//! [`PeerControl::open_window`]): the side that measures (ping-pong: A; throughput, rate, idle:
//! B) opens and closes the window, and the other side follows it.

use std::time::{Duration, Instant};
use std::{hint, io, thread};

use super::buf::PageBuf;
use super::control::PeerControl;
use super::peer::PeerReport;
use super::stats::{IdleSummary, Latencies, Measurement, PacedSummary, RateSummary};
use super::transport::{PeerError, PeerSpec, Role, Workload};

/// One side's connection to the other, as the workloads see it.
///
/// A message is exactly `len` bytes: `send` sends all of `msg` as one message, `recv` fills
/// all of `buf` with one message. Dropping the link closes it, which the other side's `recv`
/// reports as end of stream.
pub(crate) trait Link {
    /// Whether `recv` fills the buffer with what the other side sent. `false` for the shm-flag
    /// floor, which moves a counter and no payload (its counter is its own sequence check).
    const CARRIES_PAYLOAD: bool = true;

    /// Sends `msg` as one message.
    fn send(&mut self, msg: &[u8]) -> io::Result<()>;

    /// Receives one message of exactly `buf.len()` bytes into `buf`. Returns `Ok(false)` when
    /// the other side closed cleanly instead of starting a new message.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<bool>;

    /// How many messages the throughput sender hands to [`send_batch`](Link::send_batch) at
    /// once; 1 (the default): it calls `send` for each.
    fn batch(&self) -> usize {
        1
    }

    /// Sends the messages of `size` bytes laid end to end in `msgs`, as separate messages; a
    /// transport that can publish many at once overrides it.
    fn send_batch(&mut self, msgs: &[u8], size: usize) -> io::Result<()> {
        for msg in msgs.chunks_exact(size) {
            self.send(msg)?;
        }
        Ok(())
    }
}

/// The error of a link used in a direction it was not built for (a throughput sender asked to
/// receive, say): `this side has no {what}`.
pub(crate) fn missing(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("this side has no {what}"),
    )
}

/// Waits at the start gate of `ctl` for the other side, then runs `role` of `spec.workload`
/// over `link`; the usual body of [`Transport::run_peer`](super::transport::Transport::run_peer).
///
/// # Errors
/// I/O failures of the link, and integrity failures (lost, reordered or corrupted messages).
pub(crate) fn drive<L: Link>(
    role: Role,
    spec: &PeerSpec,
    link: L,
    mut ctl: PeerControl,
) -> Result<PeerReport, PeerError> {
    ctl.wait_start()?;
    match (spec.workload, role) {
        (Workload::Pingpong, Role::A) => ping(spec, link, &ctl),
        (Workload::Pingpong, Role::B) => echo(spec, link, &ctl),
        (Workload::Throughput, Role::A) => send_numbered(spec, link, &ctl),
        (Workload::Throughput, Role::B) => receive_numbered(spec, link, &ctl),
        (Workload::Idle, Role::A) => idle_send(spec, link, &ctl),
        (Workload::Idle, Role::B) => idle_receive(spec, link, &ctl),
        (Workload::Rate, Role::A) => paced_send(spec, link, &ctl),
        (Workload::Rate, Role::B) => paced_receive(spec, link, &ctl),
    }
}

/// `CLOCK_MONOTONIC` now, in nanoseconds: one clock for every process of the host, so times
/// taken in two processes can be subtracted.
pub(crate) fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux, so
    // the call cannot fail (if it did, `ts` stays zero).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

fn as_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The fixed-rate schedule: when message `i` is due.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    /// `CLOCK_MONOTONIC` ns at which message 0 is due.
    pub(crate) start: u64,
    /// Messages per second.
    pub(crate) rate: u64,
    /// The window: messages due in `[open, close)` are measured.
    pub(crate) open: u64,
    pub(crate) close: u64,
}

impl Schedule {
    pub(crate) fn new(start: u64, spec: &PeerSpec) -> Result<Schedule, PeerError> {
        let rate = spec.rate.filter(|&r| r > 0).ok_or_else(|| {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "no --rate given");
            PeerError::io("run the fixed-rate workload", e)
        })?;
        let open = start + as_ns(spec.warmup);
        Ok(Schedule {
            start,
            rate,
            open,
            close: open + as_ns(spec.measure),
        })
    }

    /// When message `i` is due.
    pub(crate) fn due(&self, i: u64) -> u64 {
        let offset = u128::from(i) * 1_000_000_000 / u128::from(self.rate);
        self.start + u64::try_from(offset).unwrap_or(u64::MAX / 2)
    }

    /// How many messages are due in the window.
    pub(crate) fn due_in_window(&self) -> u64 {
        // The first number due at or after `t`: ceil((t - start) * rate / 1e9).
        let first_at = |t: u64| {
            let n = u128::from(t - self.start) * u128::from(self.rate);
            u64::try_from(n.div_ceil(1_000_000_000)).unwrap_or(u64::MAX)
        };
        first_at(self.close) - first_at(self.open)
    }
}

/// How many messages to move between two looks at the clock (or at the stop flag): every
/// message for large messages, up to 256 for small ones, where a clock read would cost as much
/// as a message.
pub(crate) fn clock_stride(size: usize) -> u64 {
    (64 * 1024 / size.max(1)).clamp(1, 256) as u64
}

pub(crate) fn send_err(size: usize, e: io::Error) -> PeerError {
    PeerError::io(format!("send a {size}-byte message"), e)
}

/// A receive failure; `InvalidData` (a message of the wrong length, a flag with an impossible
/// value) means the transport broke a message, which is an integrity failure.
pub(crate) fn recv_err(size: usize, e: io::Error) -> PeerError {
    if e.kind() == io::ErrorKind::InvalidData {
        PeerError::Integrity(format!("receive a {size}-byte message: {e}"))
    } else {
        PeerError::io(format!("receive a {size}-byte message"), e)
    }
}

pub(crate) fn number(buf: &[u8]) -> u64 {
    let mut n = [0u8; 8];
    n.copy_from_slice(&buf[..8]);
    u64::from_le_bytes(n)
}

fn ping<L: Link>(spec: &PeerSpec, mut link: L, ctl: &PeerControl) -> Result<PeerReport, PeerError> {
    let size = spec.size;
    let mut buf = PageBuf::new(size, 0xA5);
    let mut latencies = Latencies::new();
    let start = Instant::now();
    let window_start = start + spec.warmup;
    let end = window_start + spec.measure;
    let mut round_trips = 0u64;
    let mut t0 = start;
    // The window holds the round trips that start in it (at least one, however slow): the CPU
    // window opens before the first one is sent, so the echo side sees it open when that
    // message arrives.
    let mut open = false;
    loop {
        if !open && t0 >= window_start {
            ctl.open_window(round_trips);
            open = true;
        }
        buf[..8].copy_from_slice(&round_trips.to_le_bytes());
        link.send(&buf).map_err(|e| send_err(size, e))?;
        if !link.recv(&mut buf).map_err(|e| recv_err(size, e))? {
            let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "the echo side closed");
            return Err(PeerError::io(format!("receive echo {round_trips}"), eof));
        }
        let t1 = Instant::now();
        if L::CARRIES_PAYLOAD && number(&buf) != round_trips {
            return Err(PeerError::Integrity(format!(
                "round trip {round_trips} came back as {}",
                number(&buf)
            )));
        }
        round_trips += 1;
        if open {
            latencies.record(t1 - t0);
        }
        t0 = t1;
        if open && t1 >= end {
            break;
        }
    }
    ctl.close_window(round_trips);
    drop(link);
    Ok(PeerReport {
        messages: round_trips,
        measurement: Some(Measurement::Latency(latencies.summary())),
    })
}

fn echo<L: Link>(spec: &PeerSpec, mut link: L, ctl: &PeerControl) -> Result<PeerReport, PeerError> {
    let mut buf = PageBuf::new(spec.size, 0);
    let mut echoed = 0u64;
    while link.recv(&mut buf).map_err(|e| recv_err(spec.size, e))? {
        // Before answering: the message that opened A's window counts in this side's too.
        ctl.follow_window(echoed);
        link.send(&buf).map_err(|e| send_err(spec.size, e))?;
        echoed += 1;
    }
    ctl.follow_window(echoed);
    Ok(PeerReport {
        messages: echoed,
        measurement: None,
    })
}

fn send_numbered<L: Link>(
    spec: &PeerSpec,
    mut link: L,
    ctl: &PeerControl,
) -> Result<PeerReport, PeerError> {
    let size = spec.size;
    let batch = link.batch();
    if batch > 1 {
        return send_numbered_batches(spec, link, ctl, batch);
    }
    let mut buf = PageBuf::new(size, 0x5A);
    let stride = clock_stride(size);
    let mut sent = 0u64;
    while !ctl.stop_requested() {
        for _ in 0..stride {
            // Every message: a load of a line written twice per measurement, so a sender that
            // was blocked or descheduled sees the receiver's window open as soon as it runs.
            ctl.follow_window(sent);
            buf[..8].copy_from_slice(&sent.to_le_bytes());
            link.send(&buf).map_err(|e| send_err(size, e))?;
            sent += 1;
        }
    }
    ctl.follow_window(sent);
    drop(link);
    Ok(PeerReport {
        messages: sent,
        measurement: None,
    })
}

/// [`send_numbered`] for a link that sends `batch` messages at once: the same numbered
/// messages, written into one buffer and handed over together.
fn send_numbered_batches<L: Link>(
    spec: &PeerSpec,
    mut link: L,
    ctl: &PeerControl,
    batch: usize,
) -> Result<PeerReport, PeerError> {
    let size = spec.size;
    let mut buf = PageBuf::new(size * batch, 0x5A);
    let rounds = (clock_stride(size) / batch as u64).max(1);
    let mut sent = 0u64;
    while !ctl.stop_requested() {
        for _ in 0..rounds {
            ctl.follow_window(sent);
            for msg in buf.chunks_exact_mut(size) {
                msg[..8].copy_from_slice(&sent.to_le_bytes());
                sent += 1;
            }
            link.send_batch(&buf, size).map_err(|e| send_err(size, e))?;
        }
    }
    ctl.follow_window(sent);
    drop(link);
    Ok(PeerReport {
        messages: sent,
        measurement: None,
    })
}

/// The receiver's measured window.
enum Window {
    /// Warming up until `opens_at`.
    Before { opens_at: Instant },
    /// Counting since `since`, when `at_message` messages had arrived, until `closes_at`.
    Open {
        since: Instant,
        at_message: u64,
        closes_at: Instant,
    },
    /// Over: what it saw.
    Closed(RateSummary),
}

/// The throughput receiver's bookkeeping, shared by the blocking and the async workloads:
/// the sequence check and the measured window.
pub(crate) struct Receiving {
    size: usize,
    /// The number the next message must carry (also: how many arrived).
    pub(crate) expected: u64,
    window: Window,
}

impl Receiving {
    pub(crate) fn new(spec: &PeerSpec) -> Receiving {
        Receiving {
            size: spec.size,
            expected: 0,
            window: Window::Before {
                opens_at: Instant::now() + spec.warmup,
            },
        }
    }

    /// Checks one received message's number.
    pub(crate) fn check(&mut self, buf: &[u8]) -> Result<(), PeerError> {
        let got = number(buf);
        if got != self.expected {
            return Err(PeerError::Integrity(format!(
                "expected message {}, received message {got}: lost or reordered",
                self.expected
            )));
        }
        self.expected += 1;
        Ok(())
    }

    /// After a stride of messages (`ended`: the sender closed during it): opens or closes the
    /// window, raising the stop flag when it closes.
    pub(crate) fn after_stride(
        &mut self,
        spec: &PeerSpec,
        ctl: &PeerControl,
        ended: bool,
    ) -> Result<(), PeerError> {
        if matches!(self.window, Window::Closed(_)) {
            return Ok(()); // draining after the window
        }
        let now = Instant::now();
        match self.window {
            Window::Before { opens_at } if now >= opens_at => {
                ctl.open_window(self.expected);
                self.window = Window::Open {
                    since: now,
                    at_message: self.expected,
                    closes_at: now + spec.measure,
                };
            }
            Window::Open {
                since,
                at_message,
                closes_at,
            } if now >= closes_at => {
                self.window = Window::Closed(RateSummary::new(
                    self.expected - at_message,
                    now - since,
                    self.size,
                ));
                ctl.close_window(self.expected);
                ctl.request_stop();
            }
            _ => {}
        }
        if ended && !matches!(self.window, Window::Closed(_)) {
            // The sender only stops when asked to: it failed (its own report says why).
            let why = format!(
                "the sender closed after {} messages, before the window ended",
                self.expected
            );
            return Err(PeerError::io(
                "measure throughput",
                io::Error::new(io::ErrorKind::UnexpectedEof, why),
            ));
        }
        Ok(())
    }

    /// The report, once the stream has ended with the window closed.
    pub(crate) fn report(self) -> PeerReport {
        match self.window {
            Window::Closed(rate) => PeerReport {
                messages: self.expected,
                measurement: Some(Measurement::Rate(rate)),
            },
            _ => unreachable!("the loop ends only at end of stream with the window closed"),
        }
    }
}

fn receive_numbered<L: Link>(
    spec: &PeerSpec,
    mut link: L,
    ctl: &PeerControl,
) -> Result<PeerReport, PeerError> {
    let size = spec.size;
    let mut buf = PageBuf::new(size, 0);
    let stride = clock_stride(size);
    let mut receiving = Receiving::new(spec);
    let mut ended = false;
    while !ended {
        for _ in 0..stride {
            if !link.recv(&mut buf).map_err(|e| recv_err(size, e))? {
                ended = true;
                break;
            }
            receiving.check(&buf)?;
        }
        receiving.after_stride(spec, ctl, ended)?;
    }
    Ok(receiving.report())
}

/// The idle sender: attached, it sleeps through the window, then sends message 0 and closes.
fn idle_send<L: Link>(
    spec: &PeerSpec,
    mut link: L,
    ctl: &PeerControl,
) -> Result<PeerReport, PeerError> {
    let mut buf = PageBuf::new(spec.size, 0x5A);
    ctl.cpu_open(0);
    thread::sleep(spec.measure);
    ctl.cpu_close(0);
    buf[..8].copy_from_slice(&0u64.to_le_bytes());
    link.send(&buf).map_err(|e| send_err(spec.size, e))?;
    drop(link);
    Ok(PeerReport {
        messages: 1,
        measurement: None,
    })
}

/// The idle receiver: one blocking receive, its CPU time taken around it, then the end of the
/// stream.
fn idle_receive<L: Link>(
    spec: &PeerSpec,
    mut link: L,
    ctl: &PeerControl,
) -> Result<PeerReport, PeerError> {
    let mut buf = PageBuf::new(spec.size, 0);
    let started = Instant::now();
    ctl.cpu_open(0);
    let got = link.recv(&mut buf).map_err(|e| recv_err(spec.size, e))?;
    ctl.cpu_close(1);
    let waited = started.elapsed();
    let mut rest = PageBuf::new(spec.size, 0);
    let more = if got { link.recv(&mut rest) } else { Ok(false) };
    idle_end(spec, got, &buf, waited, more)
}

/// After the idle receive (`got`: a message in `buf`) and the one after it (`more`: which
/// must be the end of the stream): checks them and reports the wait.
pub(crate) fn idle_end(
    spec: &PeerSpec,
    got: bool,
    buf: &[u8],
    waited: Duration,
    more: io::Result<bool>,
) -> Result<PeerReport, PeerError> {
    if !got {
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "the sender closed first");
        return Err(PeerError::io("wait for the idle sender's message", eof));
    }
    if number(buf) != 0 {
        return Err(PeerError::Integrity(format!(
            "expected message 0, received message {}",
            number(buf)
        )));
    }
    if more.map_err(|e| recv_err(spec.size, e))? {
        return Err(PeerError::Integrity(
            "a second message where the idle sender sent one".into(),
        ));
    }
    Ok(PeerReport {
        messages: 1,
        measurement: Some(Measurement::Idle(IdleSummary {
            window_ns: as_ns(waited),
        })),
    })
}

/// Waits, spinning on the clock, until `due`; returns the time then.
pub(crate) fn wait_until(due: u64) -> u64 {
    loop {
        let now = mono_ns();
        if now >= due {
            return now;
        }
        hint::spin_loop();
    }
}

/// The fixed-rate sender: message `i` at `T0 + i / rate`, until the window's end.
fn paced_send<L: Link>(
    spec: &PeerSpec,
    mut link: L,
    ctl: &PeerControl,
) -> Result<PeerReport, PeerError> {
    let size = spec.size;
    let mut buf = PageBuf::new(size, 0x5A);
    let schedule = Schedule::new(mono_ns(), spec)?;
    ctl.set_schedule_start(schedule.start);
    let mut sent = 0u64;
    loop {
        let due = schedule.due(sent);
        if due >= schedule.close {
            break;
        }
        let now = wait_until(due);
        if now >= schedule.close {
            break; // behind schedule: the window is over
        }
        if now >= schedule.open {
            ctl.cpu_open(sent);
        }
        buf[..8].copy_from_slice(&sent.to_le_bytes());
        link.send(&buf).map_err(|e| send_err(size, e))?;
        sent += 1;
    }
    ctl.cpu_close(sent);
    drop(link);
    Ok(PeerReport {
        messages: sent,
        measurement: None,
    })
}

/// The fixed-rate receiver's bookkeeping, shared by the blocking and the async workloads.
pub(crate) struct PacedReceiving {
    size: usize,
    schedule: Option<Schedule>,
    /// The number the next message must carry (also: how many arrived).
    pub(crate) expected: u64,
    latencies: Latencies,
    /// Messages due in the window that arrived.
    due_arrived: u64,
    /// Messages received during the window (by receive time).
    in_window: u64,
}

impl PacedReceiving {
    pub(crate) fn new(spec: &PeerSpec) -> PacedReceiving {
        PacedReceiving {
            size: spec.size,
            schedule: None,
            expected: 0,
            latencies: Latencies::new(),
            due_arrived: 0,
            in_window: 0,
        }
    }

    /// One message has arrived in `buf`.
    pub(crate) fn arrived(
        &mut self,
        spec: &PeerSpec,
        ctl: &PeerControl,
        buf: &[u8],
    ) -> Result<(), PeerError> {
        let now = mono_ns();
        let got = number(buf);
        if got != self.expected {
            return Err(PeerError::Integrity(format!(
                "expected message {}, received message {got}: lost or reordered",
                self.expected
            )));
        }
        self.expected += 1;
        let schedule = match self.schedule {
            Some(s) => s,
            None => {
                // The sender published its start before its first message, which is here.
                let start = ctl.schedule_start().ok_or_else(|| {
                    PeerError::Integrity("a message arrived before its schedule".into())
                })?;
                *self.schedule.insert(Schedule::new(start, spec)?)
            }
        };
        let due = schedule.due(got);
        // Latency for every message due in the window, whenever it arrives (also after the
        // window: selecting by arrival would leave out exactly the late ones).
        if (schedule.open..schedule.close).contains(&due) {
            self.latencies.record_ns(now.saturating_sub(due));
            self.due_arrived += 1;
        }
        if (schedule.open..schedule.close).contains(&now) {
            ctl.cpu_open(self.expected - 1);
            self.in_window += 1;
        } else if now >= schedule.close {
            ctl.cpu_close(self.expected - 1);
        }
        Ok(())
    }

    /// The report, at the end of the stream.
    pub(crate) fn report(
        self,
        spec: &PeerSpec,
        ctl: &PeerControl,
    ) -> Result<PeerReport, PeerError> {
        ctl.cpu_close(self.expected);
        let schedule = self.schedule.ok_or_else(|| {
            let e = io::Error::new(io::ErrorKind::UnexpectedEof, "no message arrived");
            PeerError::io("measure at a fixed rate", e)
        })?;
        let due = schedule.due_in_window().max(1);
        Ok(PeerReport {
            messages: self.expected,
            measurement: Some(Measurement::Paced(PacedSummary {
                latency: self.latencies.summary(),
                offered_per_sec: schedule.rate as f64,
                achieved: RateSummary::new(self.in_window, spec.measure, self.size),
                on_schedule: self.due_arrived as f64 / due as f64,
            })),
        })
    }
}

fn paced_receive<L: Link>(
    spec: &PeerSpec,
    mut link: L,
    ctl: &PeerControl,
) -> Result<PeerReport, PeerError> {
    let mut buf = PageBuf::new(spec.size, 0);
    let mut receiving = PacedReceiving::new(spec);
    while link.recv(&mut buf).map_err(|e| recv_err(spec.size, e))? {
        receiving.arrived(spec, ctl, &buf)?;
    }
    receiving.report(spec, ctl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_stride_is_one_for_large_messages_and_bounded_for_small() {
        assert_eq!(clock_stride(8), 256);
        assert_eq!(clock_stride(64), 256);
        assert_eq!(clock_stride(4096), 16);
        assert_eq!(clock_stride(64 * 1024), 1);
        assert_eq!(clock_stride(1 << 20), 1);
    }

    #[test]
    fn the_schedule_spaces_messages_evenly_and_counts_the_window() {
        let spec = PeerSpec {
            workload: Workload::Rate,
            size: 8,
            warmup: Duration::from_millis(10),
            measure: Duration::from_millis(100),
            rate: Some(100_000),
        };
        let s = Schedule::new(1_000, &spec).unwrap();
        assert_eq!(
            (s.due(0), s.due(1), s.due(100_000)),
            (1_000, 11_000, 1_000_001_000)
        );
        // 100 ms at 100 k/s: 10 000 messages due, numbers 1 000 to 10 999.
        assert_eq!(s.due_in_window(), 10_000);
        assert!(s.due(999) < s.open && s.due(1_000) == s.open);
        let third = Schedule::new(
            0,
            &PeerSpec {
                rate: Some(3),
                ..spec
            },
        )
        .unwrap();
        // Due at 0, 333.3 ms, 666.6 ms: the window [10 ms, 110 ms) holds none of them.
        assert_eq!(third.due_in_window(), 0);
        assert!(Schedule::new(0, &PeerSpec { rate: None, ..spec }).is_err());
    }
}
