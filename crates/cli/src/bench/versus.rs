//! `ringway-vs-floor` (ping-pong only): ringway's round trip against the bare cache-line
//! floor, measured in **one process pair**.
//!
//! Separate rows are measured in different process pairs, at different moments, possibly with
//! the two vCPUs placed differently by the hypervisor, and a cache-line transfer's cost
//! depends on that placement (see `docs/benchmarks.md`). This row runs both in the same two
//! pinned processes, alternating blocks of [`block`] round trips: a bare shared-flag
//! ping-pong (exactly `shm-flag`'s: one `u64` on a line of its own in a shared memfd page,
//! stored with Release and spun on with Acquire) and a ringway SPSC ping-pong of S bytes
//! (exactly `ringway-spsc`'s: busy-spinning byte channels, `send` copies in, `recv_ref` +
//! `copy_to` copies out). Every round trip goes into the histogram of its kind. The row's
//! percentiles are ringway's; it also carries the floor's p50 measured alongside, and the
//! table prints ringway p50 / floor p50.

use std::hint;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Instant;

use ringway_channel::RecvError;

use super::buf::PageBuf;
use super::control::PeerControl;
use super::peer::PeerReport;
use super::ringway::{self, RingwayTransport};
use super::shm::{self, SharedMap};
use super::stats::{Latencies, Measurement};
use super::transport::{
    Endpoint, Geometry, PeerError, PeerSpec, Prepared, Role, SetupError, Transport, Workload,
};
use super::workload::{self, number, recv_err, send_err};

/// The row.
#[derive(Debug)]
pub(crate) struct VsFloor;

/// Round trips of one kind before switching to the other: 256 for small messages, fewer for
/// large ones (one for 64 KiB and more), so that every window sees many blocks of both kinds.
pub(crate) fn block(size: usize) -> u64 {
    workload::clock_stride(size)
}

/// The value A stores in the flag when it is done.
const CLOSED: u64 = u64::MAX;

static BASE: &RingwayTransport = &ringway::SPSC;

impl Transport for VsFloor {
    fn name(&self) -> &'static str {
        "ringway-vs-floor"
    }

    fn supports(&self, workload: Workload) -> bool {
        workload == Workload::Pingpong
    }

    fn geometry(&self, spec: &PeerSpec) -> Geometry {
        BASE.geometry(spec)
    }

    fn prepare(&self, spec: &PeerSpec) -> Result<Prepared, SetupError> {
        let mut prepared = BASE.prepare(spec)?;
        let fd = shm::create(c"ringway-bench-vs-floor")
            .map_err(|e| SetupError::io("create the flag's memfd", e))?;
        let dup = fd
            .try_clone()
            .map_err(|e| SetupError::io("dup the memfd", e))?;
        prepared.a.fds.push(fd);
        if let Some(b) = prepared.b.as_mut() {
            b.fds.push(dup);
        }
        Ok(prepared)
    }

    fn run_peer(
        &self,
        role: Role,
        spec: &PeerSpec,
        mut endpoint: Endpoint,
        mut ctl: PeerControl,
    ) -> Result<PeerReport, PeerError> {
        let fds = std::mem::take(&mut endpoint.fds);
        let [fd] = Endpoint { fds, name: None }.take_fds()?;
        let map = SharedMap::map(&fd).map_err(|e| PeerError::io("map the flag's memfd", e))?;
        let (tx, rx) = BASE.open_sides(role, spec, endpoint)?;
        let (Some(mut tx), Some(mut rx)) = (tx, rx) else {
            let why = io::Error::new(io::ErrorKind::InvalidInput, "a ping-pong has both sides");
            return Err(PeerError::io("open the channels", why));
        };
        let flag = map.word(0);
        let size = spec.size;
        let mut buf = PageBuf::new(size, 0xA5);
        let mut round = 0u64; // flag rounds completed
        let block = block(size);
        ctl.wait_start()?;
        if role == Role::B {
            let mut echoed = 0u64;
            loop {
                for _ in 0..block {
                    if !wait(flag, 2 * round + 1, 2 * round)? {
                        return Ok(PeerReport {
                            messages: echoed,
                            measurement: None,
                        });
                    }
                    round += 1;
                    // SYNC(flag): Release pairs with A's Acquire load in `wait`.
                    flag.store(2 * round, Ordering::Release);
                }
                for _ in 0..block {
                    receive(&mut rx, &mut buf)?;
                    tx.send(&buf)
                        .map_err(|e| send_err(size, io::Error::other(e.to_string())))?;
                    echoed += 1;
                }
            }
        }
        let mut floor = Latencies::new();
        let mut ring = Latencies::new();
        let start = Instant::now();
        let window_start = start + spec.warmup;
        let end = window_start + spec.measure;
        let mut trips = 0u64;
        loop {
            let mut t0 = Instant::now();
            for _ in 0..block {
                // SYNC(flag): Release pairs with B's Acquire load in `wait`.
                flag.store(2 * round + 1, Ordering::Release);
                if !wait(flag, 2 * round + 2, 2 * round + 1)? {
                    let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "the flag closed");
                    return Err(PeerError::io("ping-pong the flag", eof));
                }
                round += 1;
                let t1 = Instant::now();
                if t1 >= window_start {
                    floor.record(t1 - t0);
                }
                t0 = t1;
            }
            let mut t0 = Instant::now();
            for _ in 0..block {
                buf[..8].copy_from_slice(&trips.to_le_bytes());
                tx.send(&buf)
                    .map_err(|e| send_err(size, io::Error::other(e.to_string())))?;
                receive(&mut rx, &mut buf)?;
                let t1 = Instant::now();
                if number(&buf) != trips {
                    return Err(PeerError::Integrity(format!(
                        "round trip {trips} came back as {}",
                        number(&buf)
                    )));
                }
                trips += 1;
                if t1 >= window_start {
                    ring.record(t1 - t0);
                }
                t0 = t1;
            }
            if Instant::now() >= end {
                break;
            }
        }
        // SYNC(flag): Release pairs with B's Acquire load in `wait`, which then ends.
        flag.store(CLOSED, Ordering::Release);
        let mut summary = ring.summary();
        summary.floor_p50_ns = Some(floor.summary().p50_ns);
        Ok(PeerReport {
            messages: trips,
            measurement: Some(Measurement::Latency(summary)),
        })
    }
}

/// Receives one message of `buf.len()` bytes into `buf`, as `ringway-spsc` does.
fn receive(rx: &mut ringway_channel::ByteReceiver, buf: &mut [u8]) -> Result<(), PeerError> {
    let size = buf.len();
    let msg = match rx.recv_ref() {
        Ok(msg) => msg,
        Err(RecvError::Disconnected) => {
            let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "the other side closed");
            return Err(recv_err(size, eof));
        }
        Err(e) => return Err(recv_err(size, io::Error::other(e.to_string()))),
    };
    if msg.len() != size {
        let why = format!("a {}-byte message where {size} were expected", msg.len());
        return Err(recv_err(
            size,
            io::Error::new(io::ErrorKind::InvalidData, why),
        ));
    }
    msg.copy_to(buf);
    Ok(())
}

/// Spins until the flag holds `want` (`Ok(true)`) or [`CLOSED`] (`Ok(false)`); meanwhile it may
/// only hold `own`, the last value this side stored (as `shm-flag`'s wait).
fn wait(flag: &AtomicU64, want: u64, own: u64) -> Result<bool, PeerError> {
    let mut spins = 0u32;
    loop {
        // SYNC(flag): Acquire pairs with the other side's Release store.
        let v = flag.load(Ordering::Acquire);
        if v == want {
            return Ok(true);
        }
        if v == CLOSED {
            return Ok(false);
        }
        if v != own {
            return Err(PeerError::Integrity(format!(
                "the flag holds {v}, expected {own} or {want}"
            )));
        }
        if spins < shm::SPINS_BEFORE_YIELD {
            spins += 1;
            hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
}
