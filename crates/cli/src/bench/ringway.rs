//! The ringway rows: byte channels of `ringway-channel` between the two peer processes.
//!
//! - `ringway-spsc`: an SPSC byte ring, both ends busy-spinning ([`WaitStrategy::Spin`]).
//! - `ringway-spsc-blocking`: the same ring with the default [`WaitStrategy::SpinThenPark`]: a
//!   waiting side spins briefly, then yields its CPU, then sleeps on a futex word in the ring's
//!   header until the other side wakes it. "Blocking" means a `send`/`recv` that finds nothing
//!   to do gives its CPU away after a few microseconds instead of burning it, what an
//!   application that is not dedicated to one channel would use.
//! - `ringway-spsc-park`: the same ring with [`WaitStrategy::Park`]: a waiting side spins 32
//!   times and sleeps; in a ping-pong both sides sleep on every message, so next to
//!   `ringway-async-park` (see `asyncio.rs`) it gives the cost of a wake from park.
//! - `ringway-mpmc`: an MPMC slot ring (the flavour for many sender and receiver processes),
//!   driven here by one producer and one consumer process, both spinning.
//! - `ringway-spsc-batch8`, `-batch32`, `-batch256` (throughput only, messages up to 4 KiB):
//!   `ringway-spsc` whose sender hands its messages over `N` at a time with
//!   `ByteSender::send_batch` (one publication and one wake check per batch); the receiver
//!   still takes them one at a time. `ringway-spsc` itself is the batch-of-1 row.
//! - `ringway-select-1`, `ringway-select-16`: `ringway-spsc-blocking`, except that a receiving
//!   side waits in a [`Select`] (then `try_recv_ref`) instead of in `recv_ref`: over its one
//!   channel, or over it and 15 idle channels of its own (an SPSC channel nobody sends on),
//!   which every scan and every sleep also covers. Next to `ringway-spsc-blocking`, the cost
//!   of waiting on many channels at once.
//!
//! Each peer *creates* the channel it sends on (`ByteSender::create`) and *opens* the one it
//! receives from (`ByteReceiver::open`, which waits for the other side's create), so no side
//! waits for the other before creating: a ping-pong has two channels (A→B, B→A), a throughput
//! run one (A→B). The names are POSIX shm names unique to the parent and the measurement
//! (`/ringway-bench-<parent pid>-<counter>-ab`). A channel removes its name when its last
//! endpoint leaves; the parent's guard removes them again after the peers have exited, so a
//! peer that crashed (or was killed at the deadline) leaves nothing in `/dev/shm`.
//!
//! The message really crosses, as with the kernel transports: the sender copies the S bytes
//! from its private buffer into the ring (`send`), and the receiver copies all S bytes out of
//! the ring into its private, page-aligned buffer (`recv_ref` + `copy_to`, then release), where
//! the workload checks the sequence number.
//!
//! # Ring sizes
//!
//! An SPSC ring of `max(64 KiB, 4 × S)` bytes rounded up to a power of two: 64 KiB for 64 B
//! and 4 KiB messages (910 and 15 messages in flight), 256 KiB for 64 KiB messages, 4 MiB for
//! 1 MiB messages (3 in flight: a record is S + 8 bytes), 64 MiB for 16 MiB. The MPMC ring gets
//! the same payload space in S-byte slots (at least 4): 8192 slots of 8 B, 1024 of 64 B, 16 of
//! 4 KiB, 4 of 64 KiB, 1 MiB or 16 MiB; [`Transport::geometry`] reports them for the JSON.
//! The registration tables keep their defaults (32 producers, 32 consumers), as an application
//! that does not tune them gets.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

use ringway_channel::{
    ByteBatch, ByteChannel, ByteReceiver, ByteSender, ChannelOptions, Flavour, RecvError, Select,
    SendError, WaitStrategy,
};
use ringway_region::{Backing, ErrorKind, Region};

use super::control::PeerControl;
use super::peer::PeerReport;
use super::transport::{
    Endpoint, Geometry, PeerError, PeerSpec, Prepared, Role, SetupError, Transport, Workload,
};
use super::workload::{self, Link, missing};

/// SPSC, busy-spinning on both ends.
pub(crate) static SPSC: RingwayTransport = RingwayTransport {
    name: "ringway-spsc",
    flavour: Flavour::Spsc,
    wait: WaitStrategy::Spin,
    batch: 1,
    select: 0,
};
/// SPSC with the default spin-then-park waiting on both ends.
pub(crate) static SPSC_BLOCKING: RingwayTransport = RingwayTransport {
    name: "ringway-spsc-blocking",
    flavour: Flavour::Spsc,
    wait: WaitStrategy::SpinThenPark,
    batch: 1,
    select: 0,
};
/// SPSC with [`WaitStrategy::Park`] on both ends: a waiting side spins 32 times, then sleeps
/// on the futex; next to `ringway-async-park`, what a wake from a blocking park costs.
pub(crate) static SPSC_PARK: RingwayTransport = RingwayTransport {
    name: "ringway-spsc-park",
    flavour: Flavour::Spsc,
    wait: WaitStrategy::Park,
    batch: 1,
    select: 0,
};
/// MPMC, one producer and one consumer process, busy-spinning.
pub(crate) static MPMC: RingwayTransport = RingwayTransport {
    name: "ringway-mpmc",
    flavour: Flavour::Mpmc,
    wait: WaitStrategy::Spin,
    batch: 1,
    select: 0,
};
/// SPSC blocking, receiving through a select over the one channel.
pub(crate) static SELECT_1: RingwayTransport = RingwayTransport {
    name: "ringway-select-1",
    flavour: Flavour::Spsc,
    wait: WaitStrategy::SpinThenPark,
    select: 1,
    batch: 1,
};
/// SPSC blocking, receiving through a select over the channel and 15 idle ones.
pub(crate) static SELECT_16: RingwayTransport = RingwayTransport {
    name: "ringway-select-16",
    flavour: Flavour::Spsc,
    wait: WaitStrategy::SpinThenPark,
    select: 16,
    batch: 1,
};
/// SPSC, busy-spinning, the sender publishing batches of 8.
pub(crate) static SPSC_BATCH8: RingwayTransport = RingwayTransport {
    name: "ringway-spsc-batch8",
    flavour: Flavour::Spsc,
    wait: WaitStrategy::Spin,
    batch: 8,
    select: 0,
};
/// SPSC, busy-spinning, the sender publishing batches of 32.
pub(crate) static SPSC_BATCH32: RingwayTransport = RingwayTransport {
    name: "ringway-spsc-batch32",
    flavour: Flavour::Spsc,
    wait: WaitStrategy::Spin,
    batch: 32,
    select: 0,
};
/// SPSC, busy-spinning, the sender publishing batches of 256.
pub(crate) static SPSC_BATCH256: RingwayTransport = RingwayTransport {
    name: "ringway-spsc-batch256",
    flavour: Flavour::Spsc,
    wait: WaitStrategy::Spin,
    batch: 256,
    select: 0,
};

/// The largest message the batch rows measure: batches are for small messages, and a batch
/// of 256 large ones would only measure the ring filling up.
const MAX_BATCHED: usize = 4096;

/// The smallest SPSC ring the bench uses, in bytes.
const MIN_RING: usize = 64 * 1024;
/// A ring holds at least this many messages' worth of bytes.
const MESSAGES_PER_RING: usize = 4;

/// A ringway byte channel of one flavour and waiting strategy.
#[derive(Debug)]
pub(crate) struct RingwayTransport {
    name: &'static str,
    flavour: Flavour,
    wait: WaitStrategy,
    /// Messages the throughput sender publishes at once (1: one `send` each).
    batch: usize,
    /// `0`: receive with `recv_ref`; `n`: wait in a select over `n` channels (the real one and
    /// `n - 1` idle ones), then `try_recv_ref`.
    select: usize,
}

/// Bytes of the SPSC ring for `size`-byte messages (see the module docs).
pub(crate) fn ring_bytes(size: usize) -> usize {
    size.saturating_mul(MESSAGES_PER_RING)
        .max(MIN_RING)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX)
}

/// Slots of the MPMC ring for `size`-byte messages: the SPSC ring's payload space, at least
/// [`MESSAGES_PER_RING`] slots.
pub(crate) fn mpmc_slots(size: usize) -> usize {
    (ring_bytes(size) / size.max(1)).max(MESSAGES_PER_RING)
}

/// Messages of `size` bytes an SPSC ring of [`ring_bytes`] holds wherever it starts (a channel's
/// capacity counts messages: the ring is sized from it): its records less one for the
/// padding before a record that would cross the end.
pub(crate) fn spsc_messages(size: usize) -> usize {
    let record = ringway_ring::layout::record_span(size as u64) as usize;
    ((ring_bytes(size) + 8) / record).saturating_sub(1).max(1)
}

impl RingwayTransport {
    fn options(&self, size: usize) -> ChannelOptions {
        let opts = ChannelOptions::new()
            .flavour(self.flavour)
            .wait_strategy(self.wait)
            .max_message(size);
        match self.flavour {
            Flavour::Spsc => opts.capacity(spsc_messages(size)),
            Flavour::Mpmc => opts.capacity(mpmc_slots(size)),
        }
    }
}

/// The names of one measurement's channels: `<base>-ab` carries A→B, `<base>-ba` B→A.
fn channel_name(base: &str, direction: &str) -> String {
    format!("{base}-{direction}")
}

/// A base name no other measurement of any bench run uses: the parent's pid and a counter.
pub(crate) fn fresh_base() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("/ringway-bench-{}-{n}", std::process::id())
}

/// Removes a measurement's channel names when dropped (after both peers have exited): a channel
/// removes its own name when its last endpoint leaves cleanly, so this only finds something
/// after a crash, a kill at the deadline, or a failed create.
#[derive(Debug)]
pub(crate) struct RemoveNames(pub(crate) Vec<String>);

impl Drop for RemoveNames {
    fn drop(&mut self) {
        for name in &self.0 {
            match Region::remove(&Backing::posix(name.as_str())) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => eprintln!("ringway bench: clean up after a measurement: {e}"),
            }
        }
    }
}

impl Transport for RingwayTransport {
    fn name(&self) -> &'static str {
        self.name
    }

    fn supports(&self, workload: Workload) -> bool {
        match workload {
            Workload::Throughput => true,
            Workload::Pingpong | Workload::Idle => self.batch == 1,
            // Latency at a fixed rate: for the default waiting strategy.
            Workload::Rate => {
                self.batch == 1 && self.select == 0 && self.wait == WaitStrategy::SpinThenPark
            }
        }
    }

    fn geometry(&self, spec: &PeerSpec) -> Geometry {
        let size = spec.size as u64;
        let (capacity_bytes, slots) = match self.flavour {
            Flavour::Spsc => (ring_bytes(spec.size) as u64, None),
            Flavour::Mpmc => {
                let slots = mpmc_slots(spec.size) as u64;
                (slots.saturating_mul(size), Some(slots))
            }
        };
        Geometry {
            capacity_bytes: Some(capacity_bytes),
            slots,
            batch: Some(self.batch as u64),
        }
    }

    fn prepare(&self, spec: &PeerSpec) -> Result<Prepared, SetupError> {
        if self.batch > 1 && spec.size > MAX_BATCHED {
            return Err(SetupError::Unavailable(format!(
                "batch rows measure messages up to {MAX_BATCHED} bytes"
            )));
        }
        if spec.size > u32::MAX as usize / 2 {
            return Err(SetupError::Unavailable(format!(
                "a {}-byte message is larger than a ring carries",
                spec.size
            )));
        }
        let base = fresh_base();
        let mut names = vec![channel_name(&base, "ab")];
        if spec.workload == Workload::Pingpong {
            names.push(channel_name(&base, "ba"));
        }
        Ok(named_pair(&base, names))
    }

    fn run_peer(
        &self,
        role: Role,
        spec: &PeerSpec,
        endpoint: Endpoint,
        ctl: PeerControl,
    ) -> Result<PeerReport, PeerError> {
        let (tx, rx) = self.open_sides(role, spec, endpoint)?;
        let batch = self.batch;
        let select = match (&rx, self.select) {
            (Some(rx), n) if n > 0 => Some(Selecting::new(rx, n, self.wait)?),
            _ => None,
        };
        workload::drive(
            role,
            spec,
            ChannelLink {
                tx,
                rx,
                batch,
                select,
                received: ByteBatch::new(),
                taken: 0,
            },
            ctl,
        )
    }
}

impl RingwayTransport {
    /// Peer side: creates the channel `role` sends on and opens the one it receives from (see
    /// the module docs), as `spec.workload` needs them.
    pub(crate) fn open_sides(
        &self,
        role: Role,
        spec: &PeerSpec,
        endpoint: Endpoint,
    ) -> Result<(Option<ByteSender>, Option<ByteReceiver>), PeerError> {
        let base = endpoint_name(endpoint, "find the channel names")?;
        let opts = self.options(spec.size);
        let (mine, theirs) = match role {
            Role::A => ("ab", "ba"),
            Role::B => ("ba", "ab"),
        };
        // Create what this side sends on first, then open what it receives from: neither side
        // waits for the other before creating.
        let sends = spec.workload == Workload::Pingpong || role == Role::A;
        let receives = spec.workload == Workload::Pingpong || role == Role::B;
        let tx = sends
            .then(|| {
                ByteSender::create(channel_name(&base, mine), &opts).map_err(|e| {
                    PeerError::io("create the channel to send on", io::Error::other(e))
                })
            })
            .transpose()?;
        let rx = receives
            .then(|| {
                ByteReceiver::open(channel_name(&base, theirs), &opts).map_err(|e| {
                    PeerError::io("open the channel to receive from", io::Error::other(e))
                })
            })
            .transpose()?;
        Ok((tx, rx))
    }
}

/// A select over the channel a side receives from and `n - 1` idle channels of its own.
#[derive(Debug)]
struct Selecting {
    sel: Select,
    /// Kept attached, so their arms stay open and idle.
    _idle: Vec<(ByteChannel, ByteReceiver)>,
}

impl Selecting {
    fn new(rx: &ByteReceiver, n: usize, wait: WaitStrategy) -> Result<Selecting, PeerError> {
        let mut sel = Select::new();
        let opts = ChannelOptions::new().wait_strategy(wait).capacity(16);
        let mut idle = Vec::new();
        for _ in 1..n {
            let ch = ByteChannel::anonymous(&opts)
                .map_err(|e| PeerError::io("create an idle channel", io::Error::other(e)))?;
            let idle_rx = ch
                .receiver()
                .map_err(|e| PeerError::io("attach to an idle channel", io::Error::other(e)))?;
            sel.recv(&idle_rx);
            idle.push((ch, idle_rx));
        }
        // The real channel last: a scan from the start looks at every idle arm first.
        sel.recv(rx);
        Ok(Selecting { sel, _idle: idle })
    }
}

/// One side's channels: what it sends on and what it receives from.
#[derive(Debug)]
struct ChannelLink {
    tx: Option<ByteSender>,
    rx: Option<ByteReceiver>,
    select: Option<Selecting>,
    batch: usize,
    /// Batch rows: the receiver takes up to `batch` messages at a time with `recv_batch`
    /// (one release of the ring's space per batch, as the sender publishes once per batch),
    /// and hands them out one by one from here; `taken` of them were handed out.
    received: ByteBatch,
    taken: usize,
}

fn send_error<V>(e: SendError<V>) -> io::Error {
    let kind = match e {
        SendError::Disconnected { .. } => io::ErrorKind::BrokenPipe,
        SendError::Corrupted { .. } => io::ErrorKind::InvalidData,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e.to_string())
}

/// Both sides of a measurement over named segments: each side gets `name` (the one name its
/// segments are found by), and the guard removes `segments` whatever becomes of the peers.
pub(crate) fn named_pair(name: &str, segments: Vec<String>) -> Prepared {
    let end = || Endpoint {
        fds: Vec::new(),
        name: Some(name.to_owned()),
    };
    Prepared {
        a: end(),
        b: Some(end()),
        guard: Some(Box::new(RemoveNames(segments))),
    }
}

/// The name [`named_pair`] gave a peer's endpoint; `what` says what the peer was doing.
pub(crate) fn endpoint_name(endpoint: Endpoint, what: &str) -> Result<String, PeerError> {
    endpoint.name.ok_or_else(|| {
        let why = io::Error::new(io::ErrorKind::InvalidInput, "no --name given");
        PeerError::io(what, why)
    })
}

/// A channel error met while setting up or running a peer, as a [`PeerError`].
pub(crate) fn io_err(what: &str, e: impl std::fmt::Display) -> PeerError {
    PeerError::io(what, io::Error::other(e.to_string()))
}

/// How long past its windows a peer waits for the other side to appear (the fan-out and
/// producer-sweep peers, which open a channel another process creates).
pub(crate) const TIMEOUT_SLACK: std::time::Duration = std::time::Duration::from_secs(10);

/// A receive's outcome as the links report it: `Some` of what came, `None` once every sender
/// left and everything was read (the other side closed cleanly), and the rest as I/O errors:
/// `InvalidData` for a corrupted ring or a lapped subscriber (a lost message to the bench).
pub(crate) fn received<T>(outcome: Result<T, RecvError>) -> io::Result<Option<T>> {
    match outcome {
        Ok(got) => Ok(Some(got)),
        Err(RecvError::Disconnected) => Ok(None),
        Err(e @ (RecvError::Corrupted(_) | RecvError::Lagged(_))) => {
            Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
        }
        Err(e) => Err(io::Error::other(e.to_string())),
    }
}

/// A message of `len` bytes where `want` were expected is `InvalidData`.
pub(crate) fn expect_len(len: usize, want: usize) -> io::Result<()> {
    if len == want {
        return Ok(());
    }
    let why = format!("a {len}-byte message where {want} bytes were expected");
    Err(io::Error::new(io::ErrorKind::InvalidData, why))
}

impl Link for ChannelLink {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let tx = self
            .tx
            .as_mut()
            .ok_or_else(|| missing("channel to send on"))?;
        tx.send(msg).map_err(send_error)
    }

    fn batch(&self) -> usize {
        self.batch
    }

    fn send_batch(&mut self, msgs: &[u8], size: usize) -> io::Result<()> {
        let tx = self
            .tx
            .as_mut()
            .ok_or_else(|| missing("channel to send on"))?;
        tx.send_batch(msgs.chunks_exact(size)).map_err(send_error)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        let rx = self
            .rx
            .as_mut()
            .ok_or_else(|| missing("channel to receive from"))?;
        if self.batch > 1 && self.select.is_none() {
            if self.taken == self.received.len() {
                self.received.clear();
                self.taken = 0;
                if received(rx.recv_batch(&mut self.received, self.batch))?.is_none() {
                    return Ok(false);
                }
            }
            let msg = self.received.get(self.taken).unwrap_or_default();
            self.taken += 1;
            expect_len(msg.len(), buf.len())?;
            buf.copy_from_slice(msg);
            return Ok(true);
        }
        let next = match &mut self.select {
            None => rx.recv_ref(),
            Some(selecting) => loop {
                // Only the real channel can become ready (the idle ones have no sender), and
                // its receiver is the only one: a ready arm has its message or is closed.
                match selecting.sel.select() {
                    Ok(_) => {}
                    Err(e) => return Err(io::Error::other(e.to_string())),
                }
                match rx.try_recv_ref() {
                    Err(RecvError::Empty) => {}
                    other => break other,
                }
            },
        };
        let msg = match received(next)? {
            Some(msg) => msg,
            None => return Ok(false),
        };
        expect_len(msg.len(), buf.len())?;
        msg.copy_to(buf);
        // Dropping `msg` releases its space to the sender.
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_hold_four_messages_and_a_few_hundred_small_ones() {
        assert_eq!(ring_bytes(64), 64 * 1024);
        assert_eq!(ring_bytes(4096), 64 * 1024);
        assert_eq!(ring_bytes(64 * 1024), 256 * 1024);
        assert_eq!(ring_bytes(1 << 20), 4 << 20);
        for size in [8, 64, 4096, 65536, 1 << 20] {
            // An SPSC ring carries messages up to capacity / 2 - 8.
            assert!(ring_bytes(size) / 2 - 8 >= size, "{size}");
        }
        for size in [8, 64, 4096, 65536, 1 << 20] {
            let opts = SPSC.options(size);
            let name = format!("/ringway-bench-test-{}-{size}", std::process::id());
            let tx = ringway_channel::ByteSender::create(&name, &opts).unwrap();
            assert!(
                tx.capacity_bytes() <= ring_bytes(size) + 64 * 1024,
                "{size}: the SPSC ring is ring_bytes, not more: {}",
                tx.capacity_bytes()
            );
            assert!(tx.capacity() >= spsc_messages(size), "{size}");
        }
        assert_eq!(mpmc_slots(64), 1024);
        assert_eq!(mpmc_slots(4096), 16);
        assert_eq!(mpmc_slots(1 << 20), 4);
    }

    #[test]
    fn names_are_unique_per_measurement() {
        let (a, b) = (fresh_base(), fresh_base());
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("/ringway-bench-{}-", std::process::id())));
        assert_eq!(channel_name(&a, "ab").matches('/').count(), 1);
    }

    #[test]
    fn the_guard_removes_what_a_crashed_peer_left() {
        let name = channel_name(&fresh_base(), "ab");
        let tx = ByteSender::create(&name, &SPSC.options(64)).expect("create a channel");
        // A peer that dies never drops its endpoint: its name stays.
        std::mem::forget(tx);
        let path = std::path::Path::new("/dev/shm").join(&name[1..]);
        assert!(path.exists());
        drop(RemoveNames(vec![
            name.clone(),
            channel_name(&fresh_base(), "ba"),
        ]));
        assert!(
            !path.exists(),
            "{name} removed; a name never created is no error"
        );
    }
}
