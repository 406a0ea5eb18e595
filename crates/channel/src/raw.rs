//! The flavour-independent endpoint operations every public endpoint is built on: sending
//! and receiving bytes with a chosen way of waiting, and in-place grants, over either ring.

use std::time::Duration;

use ringway_ring::{PeerState, PopError, PushError, mpmc, spsc};

use crate::segment::{Rx, Tx};

/// How long a call may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Not at all.
    Try,
    /// Up to this long.
    For(Duration),
    /// As long as the other side is alive.
    Forever,
}

impl Tx {
    pub(crate) fn push(&mut self, msg: &[u8], wait: Wait) -> Result<(), PushError> {
        match (self, wait) {
            (Tx::Spsc(p), Wait::Try) => p.push(msg),
            (Tx::Spsc(p), Wait::For(d)) => p.push_timeout(msg, d),
            (Tx::Spsc(p), Wait::Forever) => p.push_blocking(msg),
            (Tx::Mpmc(p), Wait::Try) => p.push(msg),
            (Tx::Mpmc(p), Wait::For(d)) => p.push_timeout(msg, d),
            (Tx::Mpmc(p), Wait::Forever) => p.push_blocking(msg),
        }
    }

    pub(crate) fn reserve(&mut self, len: usize, wait: Wait) -> Result<TxGrant<'_>, PushError> {
        Ok(match (self, wait) {
            (Tx::Spsc(p), Wait::Try) => TxGrant::Spsc(p.reserve(len)?),
            (Tx::Spsc(p), Wait::For(d)) => TxGrant::Spsc(p.reserve_timeout(len, d)?),
            (Tx::Spsc(p), Wait::Forever) => TxGrant::Spsc(p.reserve_blocking(len)?),
            (Tx::Mpmc(p), Wait::Try) => TxGrant::Mpmc(p.reserve(len)?),
            (Tx::Mpmc(p), Wait::For(d)) => TxGrant::Mpmc(p.reserve_timeout(len, d)?),
            (Tx::Mpmc(p), Wait::Forever) => TxGrant::Mpmc(p.reserve_blocking(len)?),
        })
    }

    pub(crate) fn is_disconnected(&self) -> bool {
        match self {
            Tx::Spsc(p) => p.is_disconnected(),
            Tx::Mpmc(p) => p.is_disconnected(),
        }
    }

    pub(crate) fn peer_state(&self) -> PeerState {
        match self {
            Tx::Spsc(p) => p.peer_state(),
            Tx::Mpmc(p) => p.peer_state(),
        }
    }

    /// What the ring has in use: bytes (SPSC) or slots (MPMC).
    pub(crate) fn queued(&self) -> u64 {
        match self {
            Tx::Spsc(p) => p.queued(),
            Tx::Mpmc(p) => p.queued(),
        }
    }

    /// The label the creator stored (read at attach time).
    pub(crate) fn label(&self) -> &str {
        match self {
            Tx::Spsc(p) => &p.identity().label,
            Tx::Mpmc(p) => &p.identity().label,
        }
    }
}

/// Bytes reserved in either ring, written in place, then committed.
#[derive(Debug)]
pub(crate) enum TxGrant<'a> {
    Spsc(spsc::Grant<'a>),
    Mpmc(mpmc::SlotGrant<'a>),
}

impl TxGrant<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            TxGrant::Spsc(g) => g.len(),
            TxGrant::Mpmc(g) => g.len(),
        }
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        match self {
            TxGrant::Spsc(g) => g.as_mut_ptr(),
            TxGrant::Mpmc(g) => g.as_mut_ptr(),
        }
    }

    pub(crate) fn write(&mut self, offset: usize, bytes: &[u8]) {
        match self {
            TxGrant::Spsc(g) => g.write(offset, bytes),
            TxGrant::Mpmc(g) => g.write(offset, bytes),
        }
    }

    pub(crate) fn commit_partial(self, len: usize) {
        match self {
            TxGrant::Spsc(g) => g.commit_partial(len),
            TxGrant::Mpmc(g) => g.commit_partial(len),
        }
    }
}

impl Rx {
    pub(crate) fn pop(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<usize, PopError> {
        match (self, wait) {
            (Rx::Spsc(c), Wait::Try) => c.pop(out),
            (Rx::Spsc(c), Wait::For(d)) => c.pop_timeout(out, d),
            (Rx::Spsc(c), Wait::Forever) => c.pop_blocking(out),
            (Rx::Mpmc(c), Wait::Try) => c.pop(out),
            (Rx::Mpmc(c), Wait::For(d)) => c.pop_timeout(out, d),
            (Rx::Mpmc(c), Wait::Forever) => c.pop_blocking(out),
        }
    }

    pub(crate) fn peek(&mut self, wait: Wait) -> Result<RxGrant<'_>, PopError> {
        let inner = match (self, wait) {
            (Rx::Spsc(c), Wait::Try) => RxInner::Spsc(c.peek()?),
            (Rx::Spsc(c), Wait::For(d)) => RxInner::Spsc(c.peek_timeout(d)?),
            (Rx::Spsc(c), Wait::Forever) => RxInner::Spsc(c.peek_blocking()?),
            (Rx::Mpmc(c), Wait::Try) => RxInner::Mpmc(c.peek()?),
            (Rx::Mpmc(c), Wait::For(d)) => RxInner::Mpmc(c.peek_timeout(d)?),
            (Rx::Mpmc(c), Wait::Forever) => RxInner::Mpmc(c.peek_blocking()?),
        };
        Ok(RxGrant { inner: Some(inner) })
    }

    pub(crate) fn is_disconnected(&self) -> bool {
        match self {
            Rx::Spsc(c) => c.is_disconnected(),
            Rx::Mpmc(c) => c.is_disconnected(),
        }
    }

    pub(crate) fn peer_state(&self) -> PeerState {
        match self {
            Rx::Spsc(c) => c.peer_state(),
            Rx::Mpmc(c) => c.peer_state(),
        }
    }

    pub(crate) fn lost(&self) -> u64 {
        match self {
            Rx::Spsc(_) => 0,
            Rx::Mpmc(c) => c.lost(),
        }
    }

    /// What the ring has in use: bytes (SPSC) or slots (MPMC).
    pub(crate) fn queued(&self) -> u64 {
        match self {
            Rx::Spsc(c) => c.queued(),
            Rx::Mpmc(c) => c.queued(),
        }
    }

    /// The label the creator stored (read at attach time).
    pub(crate) fn label(&self) -> &str {
        match self {
            Rx::Spsc(c) => &c.identity().label,
            Rx::Mpmc(c) => &c.identity().label,
        }
    }
}

#[derive(Debug)]
enum RxInner<'a> {
    Spsc(spsc::ReadGrant<'a>),
    Mpmc(mpmc::SlotReadGrant<'a>),
}

/// A message lent in place by either ring; released when dropped.
#[derive(Debug)]
pub(crate) struct RxGrant<'a> {
    inner: Option<RxInner<'a>>,
}

impl RxGrant<'_> {
    fn inner(&self) -> &RxInner<'_> {
        self.inner
            .as_ref()
            .expect("a grant is only emptied by drop")
    }

    pub(crate) fn len(&self) -> usize {
        match self.inner() {
            RxInner::Spsc(g) => g.len(),
            RxInner::Mpmc(g) => g.len(),
        }
    }

    pub(crate) fn as_ptr(&self) -> *const u8 {
        match self.inner() {
            RxInner::Spsc(g) => g.as_ptr(),
            RxInner::Mpmc(g) => g.as_ptr(),
        }
    }

    pub(crate) fn copy_to(&self, dst: &mut [u8]) -> usize {
        match self.inner() {
            RxInner::Spsc(g) => g.copy_to(dst),
            RxInner::Mpmc(g) => g.copy_to(dst),
        }
    }

    pub(crate) fn to_vec(&self) -> Vec<u8> {
        match self.inner() {
            RxInner::Spsc(g) => g.to_vec(),
            RxInner::Mpmc(g) => g.to_vec(),
        }
    }
}

impl Drop for RxGrant<'_> {
    fn drop(&mut self) {
        match self.inner.take() {
            Some(RxInner::Spsc(g)) => g.release(),
            Some(RxInner::Mpmc(g)) => g.release(),
            None => {}
        }
    }
}
