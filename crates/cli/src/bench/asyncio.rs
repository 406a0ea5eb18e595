//! The async rows: the same two workloads between two tokio processes.
//!
//! - `ringway-async`: an SPSC byte channel driven with `send_async`/`recv_ref_async`, with the
//!   default [`WaitStrategy::SpinThenPark`](ringway_channel::WaitStrategy::SpinThenPark): a waiting task is re-queued a few times, then
//!   parked with the process's ringway waker thread, which wakes it when the other process
//!   publishes.
//! - `ringway-async-park`: the same with [`WaitStrategy::Park`](ringway_channel::WaitStrategy::Park): a task parks at once. In a
//!   ping-pong both sides park on every message, so next to `ringway-spsc-park` (the blocking
//!   API parking on the same futex words) the difference is the cost of an async wake: the
//!   waker thread's `futex_waitv` return and scan, then the runtime's wake of the task.
//! - `tokio-unix`: tokio's `UnixStream` over `socketpair(AF_UNIX, SOCK_STREAM)`, messages
//!   written with `write_all` and read with `read_exact`: what a tokio service uses between
//!   processes today.
//!
//! Each peer runs the workload in a current-thread tokio runtime with I/O enabled (the
//! cheapest runtime: the task is polled on the thread that `block_on`s it, and a wake from
//! another thread, ringway's waker thread or the I/O driver, unparks that one thread). The
//! channels, names and ring sizes are those of the blocking ringway rows (`ringway.rs`).

use std::io;
use std::os::fd::OwnedFd;
use std::time::Instant;

use ringway_channel::{ByteReceiver, ByteSender};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::buf::PageBuf;
use super::control::PeerControl;
use super::peer::PeerReport;
use super::ringway::{self, RingwayTransport, SPSC_BLOCKING, SPSC_PARK};
use super::stats::{Latencies, Measurement};
use super::transport::{
    Endpoint, Geometry, PeerError, PeerSpec, Prepared, Role, SetupError, Transport, Workload,
};
use super::workload::{
    PacedReceiving, Receiving, Schedule, clock_stride, idle_end, missing, mono_ns, number,
    recv_err, send_err, wait_until,
};

/// ringway, async, re-queue then park.
pub(crate) static RINGWAY_ASYNC: AsyncRingway = AsyncRingway {
    name: "ringway-async",
    channels: &SPSC_BLOCKING,
};
/// ringway, async, park at once.
pub(crate) static RINGWAY_ASYNC_PARK: AsyncRingway = AsyncRingway {
    name: "ringway-async-park",
    channels: &SPSC_PARK,
};

/// A ringway row driven by async calls.
#[derive(Debug)]
pub(crate) struct AsyncRingway {
    name: &'static str,
    /// The blocking row whose channels (options, names, guard) this one uses.
    channels: &'static RingwayTransport,
}

impl Transport for AsyncRingway {
    fn name(&self) -> &'static str {
        self.name
    }

    fn supports(&self, workload: Workload) -> bool {
        // A fixed rate for the default strategy only, as the blocking rows.
        workload != Workload::Rate || self.channels.supports(workload)
    }

    fn geometry(&self, spec: &PeerSpec) -> Geometry {
        self.channels.geometry(spec)
    }

    fn prepare(&self, spec: &PeerSpec) -> Result<Prepared, SetupError> {
        self.channels.prepare(spec)
    }

    fn run_peer(
        &self,
        role: Role,
        spec: &PeerSpec,
        endpoint: Endpoint,
        ctl: PeerControl,
    ) -> Result<PeerReport, PeerError> {
        let (tx, rx) = self.channels.open_sides(role, spec, endpoint)?;
        drive(role, spec, ChannelLink { tx, rx }, ctl)
    }
}

/// tokio's `UnixStream` between the two peers.
#[derive(Debug)]
pub(crate) struct TokioUnix;

impl Transport for TokioUnix {
    fn name(&self) -> &'static str {
        "tokio-unix"
    }

    fn supports(&self, workload: Workload) -> bool {
        workload != Workload::Rate
    }

    fn geometry(&self, _: &PeerSpec) -> Geometry {
        Geometry {
            capacity_bytes: super::fdio::unix_stream_sndbuf(),
            slots: None,
            batch: Some(1),
        }
    }

    fn prepare(&self, _spec: &PeerSpec) -> Result<Prepared, SetupError> {
        let (a, b) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| SetupError::io("socketpair(AF_UNIX, SOCK_STREAM)", e))?;
        let end = |fd: OwnedFd| Endpoint {
            fds: vec![fd],
            name: None,
        };
        Ok(Prepared::pair(end(a.into()), end(b.into())))
    }

    fn run_peer(
        &self,
        role: Role,
        spec: &PeerSpec,
        endpoint: Endpoint,
        ctl: PeerControl,
    ) -> Result<PeerReport, PeerError> {
        let [fd] = endpoint.take_fds::<1>()?;
        let std = std::os::unix::net::UnixStream::from(fd);
        std.set_nonblocking(true)
            .map_err(|e| PeerError::io("make the socket non-blocking", e))?;
        // `from_std` registers the socket with the runtime's I/O driver: inside the runtime.
        let rt = runtime()?;
        let stream = {
            let _inside = rt.enter();
            tokio::net::UnixStream::from_std(std)
                .map_err(|e| PeerError::io("register the socket with tokio", e))?
        };
        drive_in(&rt, role, spec, StreamLink(stream), ctl)
    }
}

pub(crate) static TOKIO_UNIX: TokioUnix = TokioUnix;

/// One side's connection, async: as [`Link`](super::workload::Link), one whole message per
/// call.
trait AsyncLink {
    async fn send(&mut self, msg: &[u8]) -> io::Result<()>;
    /// `Ok(false)`: the other side closed cleanly instead of starting a new message.
    async fn recv(&mut self, buf: &mut [u8]) -> io::Result<bool>;
}

struct ChannelLink {
    tx: Option<ByteSender>,
    rx: Option<ByteReceiver>,
}

impl AsyncLink for ChannelLink {
    async fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let tx = self
            .tx
            .as_mut()
            .ok_or_else(|| missing("channel to send on"))?;
        tx.send_async(msg).await.map_err(|e| {
            let kind = match e {
                ringway_channel::SendError::Disconnected { .. } => io::ErrorKind::BrokenPipe,
                ringway_channel::SendError::Corrupted { .. } => io::ErrorKind::InvalidData,
                _ => io::ErrorKind::Other,
            };
            io::Error::new(kind, e.to_string())
        })
    }

    async fn recv(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        let rx = self
            .rx
            .as_mut()
            .ok_or_else(|| missing("channel to receive from"))?;
        let msg = match ringway::received(rx.recv_ref_async().await)? {
            Some(msg) => msg,
            None => return Ok(false),
        };
        ringway::expect_len(msg.len(), buf.len())?;
        msg.copy_to(buf);
        Ok(true)
    }
}

struct StreamLink(tokio::net::UnixStream);

impl AsyncLink for StreamLink {
    async fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.0.write_all(msg).await
    }

    async fn recv(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        let mut got = 0;
        while got < buf.len() {
            match self.0.read(&mut buf[got..]).await? {
                0 if got == 0 => return Ok(false),
                0 => {
                    let why = format!("the stream ended {got} bytes into a message");
                    return Err(io::Error::new(io::ErrorKind::InvalidData, why));
                }
                n => got += n,
            }
        }
        Ok(true)
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, PeerError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| PeerError::io("start a tokio runtime", e))
}

/// [`workload::drive`](super::workload::drive), async, in a runtime of its own.
fn drive<L: AsyncLink>(
    role: Role,
    spec: &PeerSpec,
    link: L,
    ctl: PeerControl,
) -> Result<PeerReport, PeerError> {
    drive_in(&runtime()?, role, spec, link, ctl)
}

fn drive_in<L: AsyncLink>(
    rt: &tokio::runtime::Runtime,
    role: Role,
    spec: &PeerSpec,
    link: L,
    mut ctl: PeerControl,
) -> Result<PeerReport, PeerError> {
    ctl.wait_start()?;
    rt.block_on(async {
        match (spec.workload, role) {
            (Workload::Pingpong, Role::A) => ping(spec, link, &ctl).await,
            (Workload::Pingpong, Role::B) => echo(spec, link, &ctl).await,
            (Workload::Throughput, Role::A) => send_numbered(spec, link, &ctl).await,
            (Workload::Throughput, Role::B) => receive_numbered(spec, link, &ctl).await,
            (Workload::Idle, Role::A) => idle_send(spec, link, &ctl).await,
            (Workload::Idle, Role::B) => idle_receive(spec, link, &ctl).await,
            (Workload::Rate, Role::A) => paced_send(spec, link, &ctl).await,
            (Workload::Rate, Role::B) => paced_receive(spec, link, &ctl).await,
        }
    })
}

async fn ping<L: AsyncLink>(
    spec: &PeerSpec,
    mut link: L,
    ctl: &PeerControl,
) -> Result<PeerReport, PeerError> {
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
        link.send(&buf).await.map_err(|e| send_err(size, e))?;
        if !link.recv(&mut buf).await.map_err(|e| recv_err(size, e))? {
            let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "the echo side closed");
            return Err(PeerError::io(format!("receive echo {round_trips}"), eof));
        }
        let t1 = Instant::now();
        if number(&buf) != round_trips {
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

async fn echo<L: AsyncLink>(
    spec: &PeerSpec,
    mut link: L,
    ctl: &PeerControl,
) -> Result<PeerReport, PeerError> {
    let mut buf = PageBuf::new(spec.size, 0);
    let mut echoed = 0u64;
    while link
        .recv(&mut buf)
        .await
        .map_err(|e| recv_err(spec.size, e))?
    {
        // Before answering: the message that opened A's window counts in this side's too.
        ctl.follow_window(echoed);
        link.send(&buf).await.map_err(|e| send_err(spec.size, e))?;
        echoed += 1;
    }
    ctl.follow_window(echoed);
    Ok(PeerReport {
        messages: echoed,
        measurement: None,
    })
}

async fn send_numbered<L: AsyncLink>(
    spec: &PeerSpec,
    mut link: L,
    ctl: &PeerControl,
) -> Result<PeerReport, PeerError> {
    let size = spec.size;
    let mut buf = PageBuf::new(size, 0x5A);
    let stride = clock_stride(size);
    let mut sent = 0u64;
    while !ctl.stop_requested() {
        for _ in 0..stride {
            // Every message: a load of a line written twice per measurement, so a sender that
            // was blocked or descheduled sees the receiver's window open as soon as it runs.
            ctl.follow_window(sent);
            buf[..8].copy_from_slice(&sent.to_le_bytes());
            link.send(&buf).await.map_err(|e| send_err(size, e))?;
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

async fn receive_numbered<L: AsyncLink>(
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
            if !link.recv(&mut buf).await.map_err(|e| recv_err(size, e))? {
                ended = true;
                break;
            }
            receiving.check(&buf)?;
        }
        receiving.after_stride(spec, ctl, ended)?;
    }
    Ok(receiving.report())
}

/// [`workload`](super::workload)'s idle sender, async: the runtime's one thread sleeps.
async fn idle_send<L: AsyncLink>(
    spec: &PeerSpec,
    mut link: L,
    ctl: &PeerControl,
) -> Result<PeerReport, PeerError> {
    let mut buf = PageBuf::new(spec.size, 0x5A);
    ctl.cpu_open(0);
    std::thread::sleep(spec.measure);
    ctl.cpu_close(0);
    buf[..8].copy_from_slice(&0u64.to_le_bytes());
    link.send(&buf).await.map_err(|e| send_err(spec.size, e))?;
    drop(link);
    Ok(PeerReport {
        messages: 1,
        measurement: None,
    })
}

/// The idle receiver, async: one awaited receive (the task parks), its CPU taken around it.
async fn idle_receive<L: AsyncLink>(
    spec: &PeerSpec,
    mut link: L,
    ctl: &PeerControl,
) -> Result<PeerReport, PeerError> {
    let mut buf = PageBuf::new(spec.size, 0);
    let started = Instant::now();
    ctl.cpu_open(0);
    let got = link
        .recv(&mut buf)
        .await
        .map_err(|e| recv_err(spec.size, e))?;
    ctl.cpu_close(1);
    let waited = started.elapsed();
    let mut rest = PageBuf::new(spec.size, 0);
    let more = if got {
        link.recv(&mut rest).await
    } else {
        Ok(false)
    };
    idle_end(spec, got, &buf, waited, more)
}

/// The fixed-rate sender, async (see [`workload`](super::workload)): it spins on the clock
/// between messages without yielding, as the blocking one does.
async fn paced_send<L: AsyncLink>(
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
            break;
        }
        if now >= schedule.open {
            ctl.cpu_open(sent);
        }
        buf[..8].copy_from_slice(&sent.to_le_bytes());
        link.send(&buf).await.map_err(|e| send_err(size, e))?;
        sent += 1;
    }
    ctl.cpu_close(sent);
    drop(link);
    Ok(PeerReport {
        messages: sent,
        measurement: None,
    })
}

async fn paced_receive<L: AsyncLink>(
    spec: &PeerSpec,
    mut link: L,
    ctl: &PeerControl,
) -> Result<PeerReport, PeerError> {
    let mut buf = PageBuf::new(spec.size, 0);
    let mut receiving = PacedReceiving::new(spec);
    while link
        .recv(&mut buf)
        .await
        .map_err(|e| recv_err(spec.size, e))?
    {
        receiving.arrived(spec, ctl, &buf)?;
    }
    receiving.report(spec, ctl)
}
