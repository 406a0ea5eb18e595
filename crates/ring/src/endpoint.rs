//! What every producer and consumer handle holds: the memory, the attach-time geometry, its
//! registration, the schedule of its slow-path checks, and what it last concluded about the
//! other side.
//!
//! # The slow path, once for every end
//!
//! Each end (SPSC and MPMC, producer and consumer) runs its slow-path checks from one place:
//! when an operation finds the ring empty (consumers) or full (producers) and the endpoint's
//! [`Schedule`] says they are due. Non-blocking, timed and blocking calls all reach that
//! place, so they share one schedule: a `try_recv` loop, a `recv_timeout` shorter than the
//! liveness interval and a blocking `recv` detect a dead peer, a rewritten header or a
//! truncated object within the same bound (the interval, plus the clock's tick, plus
//! scheduling delay). The checks common to every end live here: [`Endpoint::check_integrity`]
//! and [`Endpoint::peer_gone`].

use std::time::Duration;

use crate::clock::Schedule;
use crate::error::{AttachError, Corruption, RingKind, Side};
use crate::geometry::{Geometry, Identity, attach_geometry};
use crate::layout::{INIT_READY, MAGIC, STATE_ACTIVE, ctl_pid, ctl_state};
use crate::mem::{Mem, RingMemory, WaitWord};
use crate::proc::ProcessId;
use crate::registry::{self, PeerState, Registration};
use crate::sync::Ordering::Relaxed;
use crate::wait::{AttachOptions, Wait, Waiter, notify};

#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) mem: Mem,
    pub(crate) geo: Geometry,
    pub(crate) side: Side,
    pub(crate) reg: Registration,
    pub(crate) opts: AttachOptions,
    pub(crate) identity: Identity,
    /// Shared with this endpoint's [`Watch`](crate::select::Watch)es, which expedite it.
    schedule: std::sync::Arc<Schedule>,
    /// `Some(digest)` once this endpoint concluded that every peer has left or died, with the
    /// digest of the peer side's registration words at that moment. A peer that attaches later
    /// changes the digest, which revokes the conclusion (see [`Endpoint::peer_gone`]).
    gone: Option<u64>,
    closed: bool,
    /// Every peer shares the one CPU this endpoint's thread may run on (or only one CPU is
    /// online): spinning for them is futile, so waits yield and park at once. Refreshed with
    /// the liveness probe, on the slow path (see [`crate::cpu`]).
    solo: bool,
    /// What shows this endpoint alive to the others (a lock the kernel drops when this
    /// process dies); dropped after the entry is marked CLOSED.
    token: Option<crate::proc::Token>,
}

impl core::fmt::Debug for Mem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mem")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Waits for `init`, checks the geometry, registers on `side`. `resolve` is called for an
    /// entry this endpoint has just taken, before it becomes active (see
    /// [`registry::register`]).
    pub(crate) fn attach(
        memory: &RingMemory,
        kind: RingKind,
        side: Side,
        opts: &AttachOptions,
        resolve: &mut dyn FnMut(&Mem, &Geometry, usize) -> bool,
    ) -> Result<Endpoint, AttachError> {
        let (geo, identity) = attach_geometry(memory, kind, opts.init_timeout)?;
        // This process wakes the other side on its sends: register it for the sleepers'
        // barrier, so its wake checks can do without a real fence.
        crate::barrier::register();
        let mem = memory.mem.clone();
        let me = opts.identity.unwrap_or_else(ProcessId::current);
        let (reg, token) =
            registry::register(&mem, &geo, side, me, &*opts.liveness, &mut |index| {
                resolve(&mem, &geo, index)
            })?;
        Ok(Endpoint {
            mem,
            geo,
            side,
            reg,
            schedule: std::sync::Arc::new(Schedule::new(opts.liveness_interval)),
            opts: opts.clone(),
            identity,
            gone: None,
            closed: false,
            solo: false,
            token,
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

    /// Not attached yet, connected, left or died (probes liveness).
    pub(crate) fn peer_state(&self) -> PeerState {
        registry::peer_state(&self.mem, &self.geo, self.peer_side(), &*self.opts.liveness)
    }

    /// How many times a peer attached (every attach of the other side, reattachments
    /// included).
    pub(crate) fn peer_attachments(&self) -> u64 {
        registry::attachments(&self.mem, &self.geo, self.peer_side())
    }

    /// Whether every peer has left or died: a clean close seen at once, a death by probing
    /// liveness (not for a hot loop). Unlike [`peer_gone`](Endpoint::peer_gone), it keeps no
    /// conclusion.
    pub(crate) fn is_disconnected(&self) -> bool {
        self.peer_closed() || self.peer_state().is_disconnected()
    }

    /// Whether every peer has left or died, as far as this endpoint knows.
    ///
    /// A clean close is seen at once (one load per peer entry); a death only when `probe` is
    /// set (a `/proc` read per peer entry: pass the schedule's verdict). Once concluded, the
    /// answer stays `true` — later calls cost one load per peer entry and no `/proc` read —
    /// until the peer side's registration words change, which only an attach does (a dead
    /// process writes nothing): then it is re-evaluated at once. So `Disconnected` lasts
    /// from its detection until a new peer attaches, never flickering back to `Full` or
    /// `Empty` in between.
    pub(crate) fn peer_gone(&mut self, probe: bool) -> bool {
        let digest = registry::side_digest(&self.mem, &self.geo, self.peer_side());
        if let Some(seen) = self.gone {
            if seen == digest {
                return true;
            }
            self.gone = None;
        }
        // The digest is taken before the evaluation: an attach during it changes the words,
        // and the next call sees the change and re-evaluates.
        let gone = self.peer_closed() || (probe && self.peer_state().is_disconnected());
        if probe {
            self.solo = !gone && self.peers_share_our_cpu();
        }
        if gone {
            self.gone = Some(digest);
        }
        gone
    }

    /// Whether every live peer is confined to the single CPU this thread is confined to (see
    /// [`crate::cpu`]). A system call per peer entry: for the slow path only.
    fn peers_share_our_cpu(&self) -> bool {
        let peers = registry::side_range(&self.geo, self.peer_side()).filter_map(|index| {
            let entry = self.mem.entry(index);
            // Relaxed: a hint choosing between two correct ways of waiting; a stale or
            // scribbled pid only makes that choice worse, never wrong.
            let ctl = entry.ctl.load(Relaxed);
            (ctl_state(ctl) == STATE_ACTIVE).then(|| {
                crate::proc::pid_judgeable(entry.pidns.load(Relaxed)).then_some(ctl_pid(ctl))
            })
        });
        crate::cpu::spin_futile(peers)
    }

    /// A waiter for a call of this endpoint that must wait (`None` for [`Wait::Try`]), told
    /// whether spinning can help.
    pub(crate) fn waiter(&self, wait: Wait) -> Option<Waiter> {
        wait.waiter(&self.opts).map(|w| w.solo(self.solo))
    }

    /// `true` if this endpoint has concluded that every peer is gone (no loads at all).
    #[inline]
    pub(crate) fn known_gone(&self) -> bool {
        self.gone.is_some()
    }

    /// Whether the slow-path checks are due (once per liveness interval, per endpoint).
    #[inline]
    pub(crate) fn due(&self) -> bool {
        self.schedule.due()
    }

    /// The schedule, for a [`Watch`](crate::select::Watch) to expedite.
    pub(crate) fn schedule(&self) -> std::sync::Arc<Schedule> {
        self.schedule.clone()
    }

    /// How long a waiting call may sleep before the slow-path checks are due.
    pub(crate) fn until_due(&self) -> Duration {
        self.schedule.until_due()
    }

    /// The checks every end runs on its slow path: the header still says what it said at
    /// attach, and the memory under the ring was not truncated. A peer that rewrote the header,
    /// or truncated the object under us (the region then maps zeros over the lost pages, in
    /// this process only, so the two sides silently diverge), leaves a ring this endpoint can
    /// no longer trust.
    pub(crate) fn check_integrity(&self) -> Result<(), Corruption> {
        self.mem.check_truncation()?;
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
        // Our own entry must still be ours: a peer that took it (judging us dead) or scribbled
        // over it would otherwise go unnoticed until our claims collided with its.
        let ctl = self.mem.entry(self.reg.index).ctl.load(Relaxed);
        if ctl != self.reg.ctl && !self.closed {
            return Err(Corruption::new(
                "this endpoint's registration entry was changed by another process",
                ctl,
                self.reg.ctl,
            ));
        }
        Ok(())
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
            self.token = None;
            self.notify(WaitWord::NotEmpty);
            self.notify(WaitWord::NotFull);
        }
    }
}
