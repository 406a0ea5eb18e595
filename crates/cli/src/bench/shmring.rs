//! `shm-ring`: the floor of a ring that carries payloads, written as bare as a ring can be.
//!
//! `shm-flag` moves one counter on one line: no payload, so no ring of messages can match it
//! once a message and its commit mark need two lines (any message over 56 bytes). This row is
//! what the hardware allows a ring that does carry the payload: the same memory, the same
//! copies in and out as ringway's rows, and nothing else.
//!
//! One ring per direction, each in a memfd of its own created by the parent (see [`shm`]):
//!
//! - byte 0: the consumer's count of messages released, stored with Release once per quarter
//!   of the ring (and read by the producer only when its cached copy says the ring is full);
//! - byte 128: the producer's closed flag;
//! - from byte 256: [`slots`] slots of `align_up(8 + size, 64)` bytes each, so a message of at
//!   most 56 bytes is one cache line with its mark, a 64-byte one two. Slot `n % slots` holds
//!   message `n`: its payload at byte 8, copied in first, and then its mark `n + 1` at byte 0,
//!   stored with Release. The consumer spins on the mark with Acquire loads and copies the
//!   payload out.
//!
//! Lines are whole, the mark is in-band (no separate tail to fetch), releases are batched:
//! what is left is the cache-line transfers themselves and the two copies. The ring holds the
//! same bytes as the `ringway-spsc` ring of the same size ([`ring_bytes`]). There is no
//! validation of what the other side wrote beyond the mark's value, no wait strategy but
//! spin-then-yield, no liveness, no reattach: it is a measuring stick, not a transport.

use std::io;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Instant;
use std::{ffi::CStr, hint};

use super::control::PeerControl;
use super::peer::PeerReport;
use super::ringway::{TIMEOUT_SLACK, ring_bytes};
use super::shm::{self, SharedMap};
use super::transport::{
    Endpoint, Geometry, PeerError, PeerSpec, Prepared, Role, SetupError, Transport, Workload,
};
use super::workload::{self, Link, missing};

/// The bare ring.
#[derive(Debug)]
pub(crate) struct ShmRing;

/// Where the consumer's released count lives.
const HEAD: usize = 0;
/// Where the producer's closed flag lives.
const CLOSED: usize = shm::LINE;
/// Where the first slot starts.
const SLOTS_AT: usize = 2 * shm::LINE;
/// A cache line.
const CACHE_LINE: usize = 64;
/// Bytes of the mark before each payload.
const MARK: usize = 8;

/// Bytes of one slot for `size`-byte messages: the mark and the payload, in whole lines.
pub(crate) fn stride(size: usize) -> usize {
    (MARK + size).next_multiple_of(CACHE_LINE)
}

/// Slots of the ring for `size`-byte messages: as many as fit in the `ringway-spsc` ring's
/// bytes, at least 2.
pub(crate) fn slots(size: usize) -> usize {
    (ring_bytes(size) / stride(size)).max(2)
}

/// Bytes of one ring's memfd.
fn mapping_len(size: usize) -> usize {
    SLOTS_AT + slots(size) * stride(size)
}

impl Transport for ShmRing {
    fn name(&self) -> &'static str {
        "shm-ring"
    }

    fn geometry(&self, spec: &PeerSpec) -> Geometry {
        let slots = slots(spec.size);
        Geometry {
            capacity_bytes: Some((slots * stride(spec.size)) as u64),
            slots: Some(slots as u64),
            batch: Some(1),
        }
    }

    fn prepare(&self, spec: &PeerSpec) -> Result<Prepared, SetupError> {
        let len = mapping_len(spec.size);
        let ring = |name: &CStr| -> Result<_, SetupError> {
            let fd = shm::create_len(name, len)
                .map_err(|e| SetupError::io(format!("create a {len}-byte ring memfd"), e))?;
            let dup = fd
                .try_clone()
                .map_err(|e| SetupError::io("dup the ring memfd", e))?;
            Ok((fd, dup))
        };
        // fds: [A→B, B→A] on both sides; a throughput run uses only the first.
        let (ab_a, ab_b) = ring(c"ringway-bench-shm-ring-ab")?;
        let (ba_a, ba_b) = match spec.workload {
            Workload::Pingpong => ring(c"ringway-bench-shm-ring-ba").map(Some)?,
            _ => None,
        }
        .unzip();
        let end = |fds: Vec<_>| Endpoint { fds, name: None };
        Ok(Prepared::pair(
            end([Some(ab_a), ba_a].into_iter().flatten().collect()),
            end([Some(ab_b), ba_b].into_iter().flatten().collect()),
        ))
    }

    fn run_peer(
        &self,
        role: Role,
        spec: &PeerSpec,
        endpoint: Endpoint,
        ctl: PeerControl,
    ) -> Result<PeerReport, PeerError> {
        let deadline = Instant::now() + spec.warmup + spec.measure + TIMEOUT_SLACK;
        let map = |fd| {
            SharedMap::map_len(&fd, mapping_len(spec.size))
                .map_err(|e| PeerError::io("map the ring's memfd", e))
        };
        let ring = |fd, deadline| Ok(Ring::new(map(fd)?, spec.size, deadline));
        let link = if spec.workload == Workload::Pingpong {
            let [ab, ba] = endpoint.take_fds()?;
            let (ab, ba) = (ring(ab, deadline)?, ring(ba, deadline)?);
            match role {
                Role::A => RingLink {
                    tx: Some(ab),
                    rx: Some(ba),
                },
                Role::B => RingLink {
                    tx: Some(ba),
                    rx: Some(ab),
                },
            }
        } else {
            let [ab] = endpoint.take_fds()?;
            let ab = ring(ab, deadline)?;
            match role {
                Role::A => RingLink {
                    tx: Some(ab),
                    rx: None,
                },
                Role::B => RingLink {
                    tx: None,
                    rx: Some(ab),
                },
            }
        };
        workload::drive(role, spec, link, ctl)
    }
}

/// One side's view of one ring: a producer's or a consumer's, by which methods it calls.
#[derive(Debug)]
struct Ring {
    map: SharedMap,
    size: usize,
    stride: usize,
    slots: u64,
    /// Messages this side has moved (sent or received).
    count: u64,
    /// Producer: the consumer's released count as last read. Consumer: the count last
    /// published.
    head: u64,
    /// When a wait gives up (the other side is stuck or gone).
    deadline: Instant,
}

impl Ring {
    fn new(map: SharedMap, size: usize, deadline: Instant) -> Ring {
        Ring {
            map,
            size,
            stride: stride(size),
            slots: slots(size) as u64,
            count: 0,
            head: 0,
            deadline,
        }
    }

    /// Byte offset of the slot of message `n`.
    fn slot(&self, n: u64) -> usize {
        // The remainder is below `slots`, a usize.
        SLOTS_AT + (n % self.slots) as usize * self.stride
    }

    fn mark(&self, n: u64) -> &AtomicU64 {
        self.map.word_at(self.slot(n))
    }

    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        if msg.len() != self.size {
            let why = format!("a {}-byte message on a {}-byte ring", msg.len(), self.size);
            return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        }
        let n = self.count;
        if n - self.head >= self.slots {
            let mut spins = 0;
            loop {
                // SYNC(head): Acquire pairs with the consumer's Release store of its count in
                // `recv`: its copies out of the slots it released happen before ours in.
                let head = self.map.word_at(HEAD).load(Ordering::Acquire);
                if head > n {
                    let why = format!("the consumer released {head} of {n} messages sent");
                    return Err(io::Error::new(io::ErrorKind::InvalidData, why));
                }
                self.head = head;
                if n - head < self.slots {
                    break;
                }
                self.pause(&mut spins, "room in the ring")?;
            }
        }
        let at = self.slot(n) + MARK;
        // SAFETY: `bytes` checked that the payload range lies inside the mapping; `msg` is a
        // private buffer of exactly `size` bytes, so the two cannot overlap. The slot is free
        // (the consumer released message `n - slots`, the head check above), so no honest
        // consumer reads these bytes until the mark below is stored.
        unsafe { ptr::copy_nonoverlapping(msg.as_ptr(), self.map.bytes(at, msg.len()), msg.len()) };
        // SYNC(mark): Release pairs with the consumer's Acquire load of the mark in `recv`: the
        // payload copied above is visible to it once it sees `n + 1`.
        self.mark(n).store(n + 1, Ordering::Release);
        self.count = n + 1;
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        if buf.len() != self.size {
            let why = format!("a {}-byte buffer on a {}-byte ring", buf.len(), self.size);
            return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        }
        let n = self.count;
        // What the slot holds before message `n` arrives: message `n - slots`'s mark, or 0.
        let before = (n + 1).saturating_sub(self.slots);
        let mut spins = 0;
        loop {
            // SYNC(mark): Acquire pairs with the producer's Release store of the mark in `send`.
            let mark = self.mark(n).load(Ordering::Acquire);
            if mark == n + 1 {
                break;
            }
            if mark != before {
                let why = format!("slot mark {mark}, expected {before} or {}", n + 1);
                return Err(io::Error::new(io::ErrorKind::InvalidData, why));
            }
            // SYNC(closed): Acquire pairs with the producer's Release store in `close`, made
            // after its last mark: a second look at the mark then sees everything it sent.
            if self.map.word_at(CLOSED).load(Ordering::Acquire) != 0
                && self.mark(n).load(Ordering::Acquire) != n + 1
            {
                return Ok(false);
            }
            self.pause(&mut spins, "a message")?;
        }
        let at = self.slot(n) + MARK;
        // SAFETY: `bytes` checked that the payload range lies inside the mapping; `buf` is a
        // private buffer of exactly `size` bytes, so the two cannot overlap. The producer wrote
        // the payload before the mark we acquired and does not write the slot again before we
        // release it below.
        unsafe {
            ptr::copy_nonoverlapping(self.map.bytes(at, buf.len()), buf.as_mut_ptr(), buf.len())
        };
        self.count = n + 1;
        if self.count - self.head >= (self.slots / 4).max(1) {
            self.head = self.count;
            // SYNC(head): Release pairs with the producer's Acquire load in `send`: our copy
            // out of the released slots happens before it writes them again.
            self.map.word_at(HEAD).store(self.count, Ordering::Release);
        }
        Ok(true)
    }

    /// The producer is done: the consumer sees end of stream once it has taken every message.
    fn close(&self) {
        // SYNC(closed): Release pairs with the consumer's Acquire load in `recv`.
        self.map.word_at(CLOSED).store(1, Ordering::Release);
    }

    /// One round of waiting for `what`: spins first, then yields; an error past the deadline.
    fn pause(&self, spins: &mut u32, what: &str) -> io::Result<()> {
        if *spins < shm::SPINS_BEFORE_YIELD {
            *spins += 1;
            hint::spin_loop();
            return Ok(());
        }
        if Instant::now() >= self.deadline {
            let why = format!("waited past the measurement's end for {what}");
            return Err(io::Error::new(io::ErrorKind::TimedOut, why));
        }
        thread::yield_now();
        Ok(())
    }
}

/// A peer's rings: a ping-pong has both, a throughput sender only `tx`, its receiver only `rx`.
#[derive(Debug)]
struct RingLink {
    tx: Option<Ring>,
    rx: Option<Ring>,
}

impl Link for RingLink {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.tx.as_mut().ok_or_else(|| missing("sender"))?.send(msg)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.rx
            .as_mut()
            .ok_or_else(|| missing("receiver"))?
            .recv(buf)
    }
}

impl Drop for RingLink {
    fn drop(&mut self) {
        if let Some(tx) = &self.tx {
            tx.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pair(size: usize) -> (Ring, Ring) {
        let len = mapping_len(size);
        let fd = shm::create_len(c"ringway-bench-shm-ring-test", len).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let tx = Ring::new(SharedMap::map_len(&fd, len).unwrap(), size, deadline);
        let rx = Ring::new(SharedMap::map_len(&fd, len).unwrap(), size, deadline);
        (tx, rx)
    }

    #[test]
    fn slots_are_whole_lines_and_fill_the_ringway_ring() {
        assert_eq!(
            (stride(8), stride(56), stride(64), stride(4096)),
            (64, 64, 128, 4160)
        );
        assert_eq!(slots(64) * stride(64), ring_bytes(64));
        assert!(slots(16 << 20) >= 2);
    }

    #[test]
    fn messages_arrive_in_order_across_many_laps_then_end_of_stream() {
        let (mut tx, mut rx) = pair(64);
        let laps = 3 * slots(64) as u64;
        let mut buf = [0u8; 64];
        for n in 0..laps {
            let mut msg = [0u8; 64];
            msg[..8].copy_from_slice(&n.to_le_bytes());
            msg[63] = n as u8;
            tx.send(&msg).unwrap();
            assert!(rx.recv(&mut buf).unwrap());
            assert_eq!((workload::number(&buf), buf[63]), (n, n as u8));
        }
        tx.close();
        assert!(!rx.recv(&mut buf).unwrap());
    }

    #[test]
    fn a_full_ring_waits_for_room_and_a_forged_mark_is_an_error() {
        let (mut tx, mut rx) = pair(8);
        for _ in 0..slots(8) {
            tx.send(&[1; 8]).unwrap();
        }
        tx.deadline = Instant::now();
        let err = tx.send(&[1; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        let mut buf = [0u8; 8];
        assert!(rx.recv(&mut buf).unwrap());
        rx.mark(1).store(77, Ordering::Relaxed);
        let err = rx.recv(&mut buf).unwrap_err();
        assert!(err.to_string().contains("slot mark 77"), "{err}");
    }
}
