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
//! Both sides count what they moved; the parent checks the counts agree, which catches a lost
//! tail that sequence numbers alone cannot.

use std::io;
use std::time::Instant;

use super::buf::PageBuf;
use super::control::PeerControl;
use super::peer::PeerReport;
use super::stats::{Latencies, Measurement, RateSummary};
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
        (Workload::Pingpong, Role::A) => ping(spec, link),
        (Workload::Pingpong, Role::B) => echo(spec, link),
        (Workload::Throughput, Role::A) => send_numbered(spec, link, &ctl),
        (Workload::Throughput, Role::B) => receive_numbered(spec, link, &ctl),
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

fn ping<L: Link>(spec: &PeerSpec, mut link: L) -> Result<PeerReport, PeerError> {
    let size = spec.size;
    let mut buf = PageBuf::new(size, 0xA5);
    let mut latencies = Latencies::new();
    let start = Instant::now();
    let window_start = start + spec.warmup;
    let end = window_start + spec.measure;
    let mut round_trips = 0u64;
    let mut t0 = start;
    loop {
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
        if t1 >= window_start {
            latencies.record(t1 - t0);
        }
        t0 = t1;
        if t1 >= end {
            break;
        }
    }
    drop(link);
    Ok(PeerReport {
        messages: round_trips,
        measurement: Some(Measurement::Latency(latencies.summary())),
    })
}

fn echo<L: Link>(spec: &PeerSpec, mut link: L) -> Result<PeerReport, PeerError> {
    let mut buf = PageBuf::new(spec.size, 0);
    let mut echoed = 0u64;
    while link.recv(&mut buf).map_err(|e| recv_err(spec.size, e))? {
        link.send(&buf).map_err(|e| send_err(spec.size, e))?;
        echoed += 1;
    }
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
            buf[..8].copy_from_slice(&sent.to_le_bytes());
            link.send(&buf).map_err(|e| send_err(size, e))?;
            sent += 1;
        }
    }
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
            for msg in buf.chunks_exact_mut(size) {
                msg[..8].copy_from_slice(&sent.to_le_bytes());
                sent += 1;
            }
            link.send_batch(&buf, size).map_err(|e| send_err(size, e))?;
        }
    }
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
}
