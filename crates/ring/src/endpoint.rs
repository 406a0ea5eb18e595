//! What every producer and consumer handle holds: the memory, the attach-time geometry, its
//! registration, and the bookkeeping for liveness checks.

use std::time::{Duration, Instant};

use crate::error::{AttachError, Corruption, RingKind, Side};
use crate::geometry::{Geometry, Identity, attach_geometry};
use crate::layout::{INIT_READY, MAGIC};
use crate::mem::{Mem, RingMemory, WaitWord};
use crate::proc::ProcessId;
use crate::registry::{self, PeerState, Registration, SideStatus};
use crate::sync::Ordering::Relaxed;
use crate::wait::{AttachOptions, Waiter, notify};

/// Non-blocking calls check the peer's liveness at most once per this many empty/full polls
/// (and at most once per liveness interval), so a spinning caller pays for a clock read only
/// rarely and for a `/proc` read more rarely still.
const POLLS_PER_CLOCK_READ: u32 = 1024;

#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) mem: Mem,
    pub(crate) geo: Geometry,
    pub(crate) side: Side,
    pub(crate) reg: Registration,
    pub(crate) opts: AttachOptions,
    pub(crate) identity: Identity,
    polls: u32,
    next_check: Option<Instant>,
    closed: bool,
}

impl core::fmt::Debug for Mem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mem")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Waits for `init`, checks the geometry, registers on `side`.
    pub(crate) fn attach(
        memory: &RingMemory,
        kind: RingKind,
        side: Side,
        opts: &AttachOptions,
        resolve: &mut dyn FnMut(&Mem, &Geometry, usize) -> bool,
    ) -> Result<Endpoint, AttachError> {
        let (geo, identity) = attach_geometry(memory, kind, opts.init_timeout)?;
        let mem = memory.mem.clone();
        let me = opts.identity.unwrap_or_else(ProcessId::current);
        let reg = registry::register(&mem, &geo, side, me, opts.probe, &mut |index| {
            resolve(&mem, &geo, index)
        })?;
        Ok(Endpoint {
            mem,
            geo,
            side,
            reg,
            opts: opts.clone(),
            identity,
            polls: 0,
            next_check: None,
            closed: false,
        })
    }

    pub(crate) fn peer_side(&self) -> Side {
        match self.side {
            Side::Producer => Side::Consumer,
            Side::Consumer => Side::Producer,
        }
    }

    /// The peer side closed cleanly (one load per entry, no `/proc` read).
    #[inline]
    pub(crate) fn peer_closed(&self) -> bool {
        registry::side_closed(&self.mem, &self.geo, self.peer_side())
    }

    /// Not attached yet, connected, or gone (a clean close is seen at once, a death by
    /// probing `/proc`).
    pub(crate) fn peer_state(&self) -> PeerState {
        if self.peer_closed() {
            return PeerState::Disconnected;
        }
        self.peer_status().into()
    }

    /// The peer side's liveness, probing `/proc` (slow path only).
    pub(crate) fn peer_status(&self) -> SideStatus {
        registry::side_status(&self.mem, &self.geo, self.peer_side(), self.opts.probe)
    }

    /// Checks, on the slow path, that the header still says what it said at attach: a peer
    /// that rewrote it, or truncated the mapping under us (the region then maps zeros over the
    /// lost pages), leaves a ring this endpoint can no longer trust.
    pub(crate) fn check_header(&self) -> Result<(), Corruption> {
        let id = &self.mem.header().identity;
        let magic = id.magic.load(Relaxed);
        if magic != MAGIC {
            return Err(Corruption::new(
                "the ring header's magic changed after attach (overwritten, or the segment truncated)",
                magic,
                MAGIC,
            ));
        }
        let init = id.init.load(Relaxed);
        if init != INIT_READY {
            return Err(Corruption::new(
                "the ring header's init word changed after attach",
                u64::from(init),
                u64::from(INIT_READY),
            ));
        }
        Ok(())
    }

    /// Rate limit for non-blocking calls: `true` at most once per liveness interval, and only
    /// every [`POLLS_PER_CLOCK_READ`] calls does it even read the clock.
    pub(crate) fn liveness_due(&mut self) -> bool {
        if cfg!(ringway_loom) {
            return false;
        }
        self.polls = self.polls.wrapping_add(1);
        if self.polls % POLLS_PER_CLOCK_READ != 1 {
            return false;
        }
        let now = Instant::now();
        match self.next_check {
            Some(at) if now < at => false,
            _ => {
                self.next_check = Some(now + self.opts.liveness_interval);
                true
            }
        }
    }

    pub(crate) fn waiter(&self, timeout: Option<Duration>) -> Waiter {
        Waiter::new(&self.opts, timeout)
    }

    #[inline]
    pub(crate) fn notify(&self, which: WaitWord) {
        notify(&self.mem, which);
    }

    /// Marks our entry CLOSED and wakes everyone waiting on either word.
    pub(crate) fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            registry::close(&self.mem, &self.reg);
            self.notify(WaitWord::NotEmpty);
            self.notify(WaitWord::NotFull);
        }
    }
}
