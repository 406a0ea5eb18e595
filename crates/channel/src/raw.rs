//! The flavour-independent endpoint operations every public endpoint is built on: sending
//! and receiving bytes, and in-place grants, over either ring, each through the ring's one
//! entry point for it with the caller's [`Wait`].

use ringway_ring::{AttachOptions, PeerState, PopError, PushError, RingKind, Wait, mpmc, spsc};

use crate::error::Error;

use crate::endpoint::RingEnd;
use crate::segment::{Rx, Shared, Tx};

impl Tx {
    #[inline]
    pub(crate) fn push(&mut self, msg: &[u8], wait: Wait) -> Result<(), PushError> {
        match self {
            Tx::Spsc(p) => p.push_with(msg, wait),
            Tx::Mpmc(p) => p.push_with(msg, wait),
        }
    }

    /// Like [`push`](Tx::push), but not published before the next [`flush`](Tx::flush) (or a
    /// push that finds the ring full): a batch costs one publication and at most one wake.
    /// The MPMC ring publishes each slot on its own; its batch saves the wakes.
    #[inline]
    pub(crate) fn push_deferred(&mut self, msg: &[u8], wait: Wait) -> Result<(), PushError> {
        match self {
            Tx::Spsc(p) => p.push_deferred_with(msg, wait),
            Tx::Mpmc(p) => p.push_deferred_with(msg, wait),
        }
    }

    /// Publishes what the deferred pushes wrote, and wakes a waiting receiver.
    #[inline]
    pub(crate) fn flush(&mut self) {
        match self {
            Tx::Spsc(p) => p.flush(),
            Tx::Mpmc(p) => p.flush(),
        }
    }

    pub(crate) fn reserve(&mut self, len: usize, wait: Wait) -> Result<TxGrant<'_>, PushError> {
        Ok(match self {
            Tx::Spsc(p) => TxGrant::Spsc(p.reserve_with(len, wait)?),
            Tx::Mpmc(p) => TxGrant::Mpmc(p.reserve_with(len, wait)?),
        })
    }
}

impl RingEnd for Tx {
    const CLONE: &'static str = "clone a sender";

    fn attach(shared: &Shared, opts: &AttachOptions) -> Result<Tx, Error> {
        match shared.geometry.kind {
            RingKind::Spsc => spsc::Producer::attach(&shared.memory, opts).map(Tx::Spsc),
            RingKind::Mpmc => mpmc::Producer::attach(&shared.memory, opts).map(Tx::Mpmc),
            RingKind::Broadcast => return Err(shared.not_point_to_point()),
        }
        .map_err(|e| Error::attach(&shared.name, e))
    }

    fn is_disconnected(&self) -> bool {
        match self {
            Tx::Spsc(p) => p.is_disconnected(),
            Tx::Mpmc(p) => p.is_disconnected(),
        }
    }

    fn peer_state(&self) -> PeerState {
        match self {
            Tx::Spsc(p) => p.peer_state(),
            Tx::Mpmc(p) => p.peer_state(),
        }
    }

    fn queued(&self) -> u64 {
        match self {
            Tx::Spsc(p) => p.queued(),
            Tx::Mpmc(p) => p.queued(),
        }
    }

    fn label(&self) -> &str {
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
    #[inline]
    pub(crate) fn pop(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<usize, PopError> {
        match self {
            Rx::Spsc(c) => c.pop_with(out, wait),
            Rx::Mpmc(c) => c.pop_with(out, wait),
        }
    }

    #[inline]
    pub(crate) fn peek(&mut self, wait: Wait) -> Result<RxGrant<'_>, PopError> {
        let inner = match self {
            Rx::Spsc(c) => RxInner::Spsc(c.peek_with(wait)?),
            Rx::Mpmc(c) => RxInner::Mpmc(c.peek_with(wait)?),
        };
        Ok(RxGrant { inner: Some(inner) })
    }

    /// Wakes a sender waiting for room if anything was released since the last wake (an SPSC
    /// receiver batches those wakes; an MPMC one wakes on every release).
    pub(crate) fn flush(&mut self) {
        match self {
            Rx::Spsc(c) => c.flush(),
            Rx::Mpmc(_) => {}
        }
    }

    pub(crate) fn lost(&self) -> u64 {
        match self {
            Rx::Spsc(_) => 0,
            Rx::Mpmc(c) => c.lost(),
        }
    }
}

impl RingEnd for Rx {
    const CLONE: &'static str = "clone a receiver";

    fn attach(shared: &Shared, opts: &AttachOptions) -> Result<Rx, Error> {
        match shared.geometry.kind {
            RingKind::Spsc => spsc::Consumer::attach(&shared.memory, opts).map(Rx::Spsc),
            RingKind::Mpmc => mpmc::Consumer::attach(&shared.memory, opts).map(Rx::Mpmc),
            RingKind::Broadcast => return Err(shared.not_point_to_point()),
        }
        .map_err(|e| Error::attach(&shared.name, e))
    }

    fn is_disconnected(&self) -> bool {
        match self {
            Rx::Spsc(c) => c.is_disconnected(),
            Rx::Mpmc(c) => c.is_disconnected(),
        }
    }

    fn peer_state(&self) -> PeerState {
        match self {
            Rx::Spsc(c) => c.peer_state(),
            Rx::Mpmc(c) => c.peer_state(),
        }
    }

    fn queued(&self) -> u64 {
        match self {
            Rx::Spsc(c) => c.queued(),
            Rx::Mpmc(c) => c.queued(),
        }
    }

    fn label(&self) -> &str {
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
