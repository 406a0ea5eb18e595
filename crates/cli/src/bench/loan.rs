//! `ringway-spsc-loan`: the zero-copy path of the SPSC byte channel, both ends busy-spinning.
//!
//! The sender does not copy a private buffer into the ring: it borrows S bytes of the ring
//! (`ByteSender::loan_bytes`) and writes the message there, every 8-byte word the message's
//! sequence number (the last `S % 8` bytes its low bytes), then commits. The receiver does not
//! copy out either: it reads every byte where it lies (`recv_ref`, then `as_slice`) and checks
//! each against the sequence number, then releases. So every one of the S bytes is still
//! produced by the sender and consumed by the receiver, but each side touches the message once,
//! in the ring, instead of twice (buffer and ring). Next to `ringway-spsc`, what a
//! zero-copy application gains. Rings are sized as for `ringway-spsc`.

use std::io;

use ringway_channel::{ByteReceiver, ByteSender};

use super::control::PeerControl;
use super::peer::PeerReport;
use super::ringway::{self, RingwayTransport};
use super::transport::{
    Endpoint, Geometry, PeerError, PeerSpec, Prepared, Role, SetupError, Transport,
};
use super::workload::{self, Link, missing, number};

/// The loan row.
#[derive(Debug)]
pub(crate) struct Loan;

/// The ring and waiting strategy the loan row shares with `ringway-spsc`.
static BASE: &RingwayTransport = &ringway::SPSC;

impl Transport for Loan {
    fn name(&self) -> &'static str {
        "ringway-spsc-loan"
    }

    fn geometry(&self, spec: &PeerSpec) -> Geometry {
        BASE.geometry(spec)
    }

    fn prepare(&self, spec: &PeerSpec) -> Result<Prepared, SetupError> {
        BASE.prepare(spec)
    }

    fn run_peer(
        &self,
        role: Role,
        spec: &PeerSpec,
        endpoint: Endpoint,
        ctl: PeerControl,
    ) -> Result<PeerReport, PeerError> {
        let (tx, rx) = BASE.open_sides(role, spec, endpoint)?;
        workload::drive(role, spec, LoanLink { tx, rx }, ctl)
    }
}

/// One side's channels, written and read in place.
#[derive(Debug)]
struct LoanLink {
    tx: Option<ByteSender>,
    rx: Option<ByteReceiver>,
}

/// Writes the message pattern of sequence number `seq` into `len` bytes at `ptr`.
///
/// # Safety
/// `ptr` must be 8-byte aligned and valid for writes of `len` bytes that nothing else reads or
/// writes meanwhile (a loan's bytes until it is committed).
unsafe fn fill(ptr: *mut u8, len: usize, seq: u64) {
    let words = len / 8;
    // SAFETY: the caller's promise: aligned, writable, not accessed by anyone else; `words * 8
    // <= len`.
    let body = unsafe { core::slice::from_raw_parts_mut(ptr.cast::<u64>(), words) };
    body.fill(seq.to_le());
    let tail = seq.to_le_bytes();
    for (i, &b) in tail.iter().enumerate().take(len % 8) {
        // SAFETY: `words * 8 + i < len`, inside the loan.
        unsafe { ptr.add(words * 8 + i).write(b) };
    }
}

/// Whether the `bytes` (8-byte aligned) hold the message pattern of `seq` (see [`fill`]).
fn holds(bytes: &[u8], seq: u64) -> bool {
    let (body, tail) = bytes.split_at(bytes.len() / 8 * 8);
    let want = seq.to_le_bytes();
    let words = body.chunks_exact(8).fold(0u64, |acc, w| {
        acc | (u64::from_ne_bytes(w.try_into().unwrap()) ^ u64::from_ne_bytes(want))
    });
    words == 0 && tail == &want[..tail.len()]
}

impl Link for LoanLink {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let tx = self
            .tx
            .as_mut()
            .ok_or_else(|| missing("channel to send on"))?;
        let seq = number(msg);
        let mut loan = tx
            .loan_bytes(msg.len())
            .map_err(|e| io::Error::other(e.to_string()))?;
        // SAFETY: a loan's pointer is 8-byte aligned and valid for writes of its length until
        // it is committed; the bench's own receiver does not look at it before.
        unsafe { fill(loan.as_mut_ptr(), msg.len(), seq) };
        loan.commit();
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        let rx = self
            .rx
            .as_mut()
            .ok_or_else(|| missing("channel to receive from"))?;
        let msg = match ringway::received(rx.recv_ref())? {
            Some(msg) => msg,
            None => return Ok(false),
        };
        ringway::expect_len(msg.len(), buf.len())?;
        // SAFETY: the sender is the bench's own peer, which writes a message only before it
        // commits it; the slice lives until `msg` is released below.
        let bytes = unsafe { msg.as_slice() };
        let seq = number(bytes);
        if !holds(bytes, seq) {
            let why = format!("message {seq} does not hold its pattern");
            return Err(io::Error::new(io::ErrorKind::InvalidData, why));
        }
        // Only the number leaves the ring: the workload checks it.
        buf[..8].copy_from_slice(&seq.to_le_bytes());
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_round_trips_and_detects_a_changed_byte() {
        // (An 8-byte message is only its number: the workload's sequence check covers it.)
        for len in [8usize, 13, 64, 4096 + 5] {
            let mut words = vec![0u64; len.div_ceil(8)];
            let ptr = words.as_mut_ptr().cast::<u8>();
            // SAFETY: `words` is 8-aligned and at least `len` bytes, private to this test.
            unsafe { fill(ptr, len, 0x0102_0304_0506_0708 + len as u64) };
            // SAFETY: as above, initialised.
            let bytes = unsafe { core::slice::from_raw_parts_mut(ptr, len) };
            let seq = 0x0102_0304_0506_0708 + len as u64;
            assert_eq!(number(bytes), seq);
            assert!(holds(bytes, seq), "{len}");
            bytes[len - 1] ^= 1;
            assert!(!holds(bytes, seq), "{len}");
        }
    }
}
