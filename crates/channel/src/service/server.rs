//! The server's engine, for bytes: granting sessions, finding the next request among all of
//! them, routing replies, and recycling the session of a client that left or died.
//!
//! The server keeps its own view of every slot ([`Local`]) and consults the shared `ctl`
//! word only for the steps a client takes (claimed, connected, left). A `ctl` value that does
//! not fit the server's view (a scribble, a client that lost track) ends that session: the
//! server lets go of the slot's rings and frees the slot once no client can still write it.
//!
//! One `ServerCore` is one worker process of the service (`workers.rs`). It serves the
//! sessions it granted (its index is the owner in their `ctl` words), leaves the sessions of
//! other live workers alone, and adopts, once due, a slot whose owner died or left (or whose
//! word no version writes), to free it when its client is gone.

use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::time::{Duration, Instant};

use ringway_ring::{AttachOptions, Party, PopError, PushError, Wait, WaitStrategy, spsc};

use super::ReplyTo;
use super::error::ServeError;
use super::layout::{self, Ctl, Phase};
use super::options::ServiceOptions;
use super::segment::{Rings, Segment};
use super::wire::{self, Wire};
use super::workers::{self, Worker};

/// The server's view of one slot.
#[derive(Debug)]
enum Local {
    /// Free, or being claimed: nothing of the server's is attached.
    Idle,
    /// Granted to a client (connected once it said so): the server's two ring ends.
    Serving {
        generation: u32,
        client: Party,
        ends: Box<Ends>,
    },
    /// The session ended; the slot is freed once no client can still write its rings.
    Recycling {
        generation: u32,
        /// The claimant, to judge while it may still attach (it never connected).
        claimant: Option<Party>,
    },
}

/// The server's ends of one session's rings.
#[derive(Debug)]
struct Ends {
    requests: spsc::Consumer,
    replies: spsc::Producer,
}

/// How a scan of the sessions ended.
enum Found {
    /// A request, in the caller's buffer (header included).
    Request(ReplyTo),
    Nothing,
}

/// A bound service's server side, moving bytes.
#[derive(Debug)]
pub(crate) struct ServerCore {
    // Field order is drop order (see `Drop`): the sessions go before the segment and lock.
    local: Vec<Local>,
    pub(crate) seg: Segment,
    rings: Rings,
    opts: ServiceOptions,
    /// The next slot a scan starts at, so every session gets its turn.
    cursor: u32,
    /// When the slow checks (claimants alive, recycling, other workers) are next due.
    next_check: Instant,
    /// This worker's entry in the worker table: the owner of the sessions it grants.
    me: u32,
    /// The workers alive at the last slow check (bit `w`), re-checked before adopting.
    live: u32,
    /// Given back in `Drop`, after the sessions.
    worker: Option<Worker>,
}

impl ServerCore {
    pub(crate) fn new(
        seg: Segment,
        worker: Worker,
        rings: Rings,
        opts: &ServiceOptions,
    ) -> ServerCore {
        let local = (0..seg.geometry.sessions).map(|_| Local::Idle).collect();
        ServerCore {
            local,
            seg,
            rings,
            opts: opts.clone(),
            cursor: 0,
            next_check: Instant::now(),
            me: worker.index,
            live: 1 << worker.index,
            worker: Some(worker),
        }
    }

    /// This worker's entry in the worker table.
    pub(crate) fn worker(&self) -> u32 {
        self.me
    }

    fn attach_options(&self, slot: u32, reply: bool) -> AttachOptions {
        self.opts
            .channel
            .attach_options(Duration::from_secs(1))
            .liveness(self.seg.ring_liveness(slot, reply))
    }

    fn service(&self) -> Arc<str> {
        self.seg.name.clone()
    }

    /// How long `serve` waits for room for a reply.
    pub(crate) fn open_timeout(&self) -> Duration {
        self.opts.channel.open_timeout
    }

    /// Sessions this worker serves now.
    pub(crate) fn connected(&self) -> usize {
        self.local
            .iter()
            .filter(|l| matches!(l, Local::Serving { .. }))
            .count()
    }

    /// Receives the next request from any session into `out` (payload only).
    pub(crate) fn recv_with(
        &mut self,
        out: &mut Vec<u8>,
        wait: Wait,
    ) -> Result<ReplyTo, ServeError> {
        let deadline = match wait {
            Wait::Try => None,
            Wait::For(d) => Instant::now().checked_add(d),
            Wait::Until(t) => Some(t),
            Wait::Forever => None,
        };
        let spins = match self.opts.channel.wait {
            WaitStrategy::Spin => u32::MAX,
            WaitStrategy::SpinThenPark => 256,
            WaitStrategy::Park => 0,
        };
        let interval = self.opts.interval();
        let mut round = 0u32;
        loop {
            let due = Instant::now() >= self.next_check;
            if due {
                self.next_check = Instant::now() + interval;
                self.live = workers::live_workers(&self.seg.judge, self.seg.header());
            }
            if let Found::Request(to) = self.scan(out, due) {
                return Ok(to);
            }
            if wait == Wait::Try {
                return Err(ServeError::Empty {
                    service: self.service(),
                });
            }
            let interrupt = self.opts.channel.interrupt.clone();
            if interrupt
                .as_ref()
                .is_some_and(crate::Interrupt::is_interrupted)
            {
                return Err(ServeError::Interrupted {
                    service: self.service(),
                });
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(ServeError::Timeout {
                    service: self.service(),
                });
            }
            round = round.saturating_add(1);
            if round < spins {
                if round % 64 == 63 {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            // Sleep until a client rings, the slow checks are due, the deadline, or the
            // interrupt is raised.
            let mut slice = self
                .next_check
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            if let Some(d) = deadline {
                slice = slice.min(d.saturating_duration_since(now));
            }
            if let Some(to) = self.wait_any(out, slice, interrupt.as_ref()) {
                return Ok(to);
            }
        }
    }

    /// Waits up to `slice` for any session to have a request or a client to claim a slot,
    /// and returns a request if the re-check found one. The one place the server sleeps: on
    /// the doorbell, and on the interrupt's flag if there is one.
    fn wait_any(
        &mut self,
        out: &mut Vec<u8>,
        slice: Duration,
        interrupt: Option<&crate::Interrupt>,
    ) -> Option<ReplyTo> {
        let region = self.seg.region.clone();
        let _keep = &region;
        let header = {
            assert!(region.len() >= layout::SLOTS_OFFSET as usize);
            // SAFETY: as in `Segment::header`: a page-aligned mapping of at least a header,
            // made of atomics, alive while `region` (held here) lives.
            unsafe { &*region.as_ptr().cast::<layout::Header>() }
        };
        let bell = super::doorbell::Bell {
            seq: &header.bell,
            sleepers: &header.sleepers,
        };
        bell.wait(slice, interrupt, || match self.scan(out, false) {
            Found::Request(to) => Some(to),
            Found::Nothing => None,
        })
    }

    /// One pass over every slot: grants, requests, and (when `due`) the slow checks.
    fn scan(&mut self, out: &mut Vec<u8>, due: bool) -> Found {
        let n = self.seg.geometry.sessions;
        for k in 0..n {
            let slot = (self.cursor + k) % n;
            if let Some(to) = self.visit(slot, out, due) {
                self.cursor = (slot + 1) % n;
                return Found::Request(to);
            }
        }
        Found::Nothing
    }

    fn visit(&mut self, slot: u32, out: &mut Vec<u8>, due: bool) -> Option<ReplyTo> {
        let raw = self.seg.raw_ctl(slot);
        let ctl = Ctl::decode(raw);
        let i = slot as usize;
        let me = self.me;
        match &mut self.local[i] {
            Local::Idle => match ctl {
                Some(c) if c.phase == Phase::Free => {}
                Some(c) if c.phase == Phase::Claimed => self.grant(slot, c),
                Some(c) if c.phase == Phase::Claiming => {
                    // A claimant that died between its CAS and writing who it is (or a
                    // scribble): recycled like any slot, so the rings are re-made and no
                    // client is attached when it is free again.
                    let claimant = Party {
                        index: slot,
                        pid: c.pid,
                        start_time: 0,
                        pidns: self.seg.slot(slot).client_pidns.load(Relaxed),
                    };
                    if due && !self.claimant_alive(slot, &claimant) {
                        self.adopt(slot, raw);
                    }
                }
                // A session of another live worker: theirs.
                Some(c) if c.owner != self.me && self.live & (1 << c.owner) != 0 => {}
                // Owned by a worker that died or left, by this worker's entry before this
                // worker took it, or a value no version writes: adopt it to free it.
                _ => {
                    if due {
                        self.adopt(slot, raw);
                    }
                }
            },
            Local::Serving {
                generation,
                client,
                ends,
            } => {
                let (generation, client) = (*generation, *client);
                let ours = |c: &Ctl| c.generation == generation && c.owner == me;
                match ctl {
                    Some(c) if ours(&c) && c.phase == Phase::Connected => {
                        match ends.requests.pop_with(out, Wait::Try) {
                            Ok(_) => return self.accept(slot, generation, out),
                            Err(PopError::Empty) => {}
                            // Left or died (after everything it sent was taken), or scribbled.
                            Err(_) => self.end(slot, generation, None),
                        }
                    }
                    Some(c) if ours(&c) && c.phase == Phase::Granted => {
                        if due && !self.claimant_alive(slot, &client) {
                            self.end(slot, generation, Some(client));
                        }
                    }
                    // Gave it back: its ends are closed already.
                    Some(c) if ours(&c) && c.phase == Phase::Left => {
                        self.end(slot, generation, None);
                    }
                    // A value the server never agreed to: wait for the claimant to go.
                    _ => self.end(slot, generation, Some(client)),
                }
            }
            Local::Recycling { .. } => {
                if due {
                    self.try_free(slot);
                }
            }
        }
        None
    }

    /// Takes over a slot this worker has no session in, whose word says it is owned by a
    /// worker that is not alive (or by this worker's entry before this worker took it, or
    /// says nothing a version writes), and recycles it once its client is gone. The CAS to
    /// `BROKEN` with the generation bumped changes the word whatever it was, so of two
    /// workers adopting from the same read, one wins.
    fn adopt(&mut self, slot: u32, raw: u64) {
        let old = Ctl::decode(raw);
        if let Some(c) = old {
            // Fresh verdict: a worker that joined since the last slow check is alive.
            if c.owner != self.me
                && workers::worker_alive(&self.seg.judge, self.seg.header(), c.owner)
            {
                self.live |= 1 << c.owner;
                return;
            }
        }
        let (generation, pid) = old.map_or((0, 0), |c| (c.generation.wrapping_add(1), c.pid));
        let broken = Ctl::new(Phase::Broken, generation, pid).owned(self.me);
        if !self.seg.swap_raw(slot, raw, broken.encode()) {
            return;
        }
        let h = self.seg.slot(slot);
        let claimant = (pid != 0).then(|| Party {
            index: slot,
            pid,
            start_time: h.client_start.load(Relaxed),
            pidns: h.client_pidns.load(Relaxed),
        });
        self.local[slot as usize] = Local::Recycling {
            generation: broken.generation,
            claimant,
        };
        self.try_free(slot);
    }

    /// Checks a received record's header; a bad one ends the session.
    fn accept(&mut self, slot: u32, generation: u32, out: &mut Vec<u8>) -> Option<ReplyTo> {
        match Wire::decode(out) {
            Some(w) if w.generation == generation && w.flags == 0 => {
                wire::strip(out);
                Some(ReplyTo {
                    slot,
                    generation,
                    id: w.id,
                })
            }
            _ => {
                self.end(slot, generation, None);
                None
            }
        }
    }

    /// Whether the client that claimed `slot` is alive (its lock, or its pid).
    fn claimant_alive(&self, slot: u32, party: &Party) -> bool {
        self.seg
            .judge
            .claimant_alive(party, layout::CLAIM_BYTE + slot)
    }

    /// Grants a claimed slot: takes it (`GRANTING`, owned by this worker: of several
    /// workers, the one whose CAS lands), attaches this worker's ends of its (fresh) rings,
    /// then tells the client.
    fn grant(&mut self, slot: u32, ctl: Ctl) {
        let granting = ctl.with(Phase::Granting).owned(self.me);
        if !self.seg.swap_ctl(slot, ctl, granting) {
            // Another worker took it, or the claimant gave up: the next scan sees which.
            return;
        }
        let h = self.seg.slot(slot);
        let client = Party {
            index: slot,
            pid: ctl.pid,
            start_time: h.client_start.load(Relaxed),
            pidns: h.client_pidns.load(Relaxed),
        };
        let ends = (|| {
            let requests = spsc::Consumer::attach(
                &self.seg.ring_memory(slot, false).ok()?,
                &self.attach_options(slot, false),
            )
            .ok()?;
            let replies = spsc::Producer::attach(
                &self.seg.ring_memory(slot, true).ok()?,
                &self.attach_options(slot, true),
            )
            .ok()?;
            Some((requests, replies))
        })();
        let Some((requests, replies)) = ends else {
            // Rings that cannot be attached (scribbled since they were made): start over.
            self.end(slot, ctl.generation, Some(client));
            return;
        };
        if !self
            .seg
            .swap_ctl(slot, granting, granting.with(Phase::Granted))
        {
            // The claimant gave up meanwhile (the slot is still this worker's, `LEFT`).
            drop((requests, replies));
            self.end(slot, ctl.generation, Some(client));
            return;
        }
        self.local[slot as usize] = Local::Serving {
            generation: ctl.generation,
            client,
            ends: Box::new(Ends { requests, replies }),
        };
        self.seg.header().grants.fetch_add(1, Relaxed);
        self.seg.worker_grants(self.me).fetch_add(1, Relaxed);
        let granted = &self.seg.slot(slot).granted;
        // SYNC(grant): Release orders the CAS above before the bump the client sleeps on.
        granted.fetch_add(1, Release);
        super::doorbell::wake(granted);
    }

    /// Ends the session in `slot`: drops the server's ends (its client sees `Disconnected`)
    /// and frees the slot as soon as no client can write it.
    fn end(&mut self, slot: u32, generation: u32, claimant: Option<Party>) {
        self.local[slot as usize] = Local::Recycling {
            generation,
            claimant,
        };
        self.try_free(slot);
    }

    /// Frees a recycling slot if its client is gone: it never connected and is dead, or
    /// nothing of a client is attached to the rings any more. The rings are made anew, so
    /// nothing of the old session reaches the next one.
    fn try_free(&mut self, slot: u32) {
        let Local::Recycling {
            generation,
            claimant,
        } = self.local[slot as usize]
        else {
            return;
        };
        if claimant.is_some_and(|c| self.claimant_alive(slot, &c)) {
            return;
        }
        let raw = self.seg.raw_ctl(slot);
        if Ctl::decode(raw).is_some_and(|c| c.is_owned() && c.owner != self.me) {
            // Another worker adopted it (it judged this one dead, or a scribble made it look
            // so): the slot is theirs to free.
            self.local[slot as usize] = Local::Idle;
            return;
        }
        if !self.rings_released(slot) {
            return;
        }
        if self.seg.init_rings(slot, &self.rings).is_err() {
            return;
        }
        let freed = Ctl::new(Phase::Free, generation, 0).freed();
        // SYNC(claim): Release publishes the fresh rings to the next claimant, whose Acquire
        // load of `ctl` sees FREE. A CAS from the word read above: a late CAS of the old
        // client (to LEFT) makes it fail, and the next slow check tries again.
        if self.seg.swap_raw(slot, raw, freed.encode()) {
            self.local[slot as usize] = Local::Idle;
        }
    }

    /// Whether no live client end is registered on the slot's rings (judged as the ring
    /// endpoints judge each other). A ring whose header no longer reads as one is judged by
    /// the claim lock alone.
    fn rings_released(&self, slot: u32) -> bool {
        for reply in [false, true] {
            let Ok(memory) = self.seg.ring_memory(slot, reply) else {
                return false;
            };
            let liveness = self.seg.ring_liveness(slot, reply);
            match ringway_ring::inspect_with(&memory, &*liveness) {
                Ok(info) => {
                    let client_side = if reply {
                        &info.consumers
                    } else {
                        &info.producers
                    };
                    if client_side.iter().any(|p| p.alive) {
                        return false;
                    }
                }
                Err(_) => {
                    if let super::segment::Judge::Locks(locks) = &self.seg.judge {
                        if locks.locked(layout::CLAIM_BYTE + slot) {
                            return false;
                        }
                    }
                }
            }
        }
        true
    }

    /// Ends the session a request came from (a typed request of the wrong size: a buggy or
    /// hostile client).
    pub(crate) fn reject(&mut self, to: &ReplyTo) {
        if let Some(Local::Serving { generation, .. }) = self.local.get(to.slot as usize) {
            if *generation == to.generation {
                self.end(to.slot, to.generation, None);
            }
        }
    }

    /// Sends a reply of `len` bytes, written by `write` at the pointer it is given, to the
    /// client that asked.
    pub(crate) fn reply_with(
        &mut self,
        to: ReplyTo,
        len: usize,
        write: impl FnOnce(&mut spsc::Grant<'_>),
        wait: Wait,
    ) -> Result<(), ServeError> {
        let service = self.service();
        if len > self.seg.max_reply {
            return Err(ServeError::TooLarge {
                service,
                len,
                max: self.seg.max_reply,
            });
        }
        let Some(Local::Serving {
            generation, ends, ..
        }) = self.local.get_mut(to.slot as usize)
        else {
            return Err(ServeError::Gone { service });
        };
        if *generation != to.generation {
            return Err(ServeError::Gone { service });
        }
        let generation = *generation;
        match ends.replies.reserve_with(wire::LEN + len, wait) {
            Ok(mut grant) => {
                grant.write(0, &Wire::new(to.id, generation).encode());
                write(&mut grant);
                grant.commit();
                self.seg.slot(to.slot).served.fetch_add(1, Relaxed);
                Ok(())
            }
            Err(PushError::Full) => Err(ServeError::Empty { service }),
            Err(PushError::Timeout) => Err(ServeError::Timeout { service }),
            Err(PushError::Interrupted) => Err(ServeError::Interrupted { service }),
            Err(_) => {
                // Closed (the client left or died) or corrupted: the session is over.
                self.end(to.slot, generation, None);
                Err(ServeError::Gone { service })
            }
        }
    }
}

impl Drop for ServerCore {
    fn drop(&mut self) {
        // This worker's clients see their rings closed when its ends drop (and reconnect to
        // another worker); then the entry goes back, and the last worker closes the service
        // (clients waiting for a grant see the flag) and removes the name (if it still names
        // this segment). The slots this worker held are adopted by the others.
        self.local.clear();
        if let Some(worker) = self.worker.take() {
            worker.leave(&self.seg);
        }
    }
}
