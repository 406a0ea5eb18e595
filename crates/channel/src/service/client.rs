//! The client's engine, for bytes: claiming a session, waiting for the server's grant,
//! sending requests and taking the replies meant for them, and giving the session back.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::time::{Duration, Instant};

use ringway_ring::{AttachOptions, Wait, spsc};

use super::error::{CallError, ServiceError};
use super::layout::{self, Ctl, Phase};
use super::options::ServiceOptions;
use super::segment::{OpenFailure, Segment};
use super::wire::{self, Wire};
use crate::error::Error;
use crate::message::MessageType;
use crate::options::Address;

/// A claimed and connected session.
#[derive(Debug)]
struct Session {
    // Field order is drop order, but `Drop` takes the ends first anyway.
    requests: Option<spsc::Producer>,
    replies: Option<spsc::Consumer>,
    seg: Segment,
    slot: u32,
    generation: u32,
    /// The worker that granted the session (its entry in the worker table).
    worker: u32,
    /// The id the next request gets; every earlier one was sent in this session.
    next_id: u64,
    /// The lock on the slot's claim byte, held from before the claim until the end.
    _claim: Option<OwnedFd>,
}

impl Session {
    /// Gives the slot back: ends closed first (the server sees them go), then `LEFT`.
    fn give_back(seg: &Segment, slot: u32, generation: u32) {
        for _ in 0..4 {
            match seg.ctl(slot) {
                Some(c)
                    if c.generation == generation
                        && matches!(
                            c.phase,
                            Phase::Claiming
                                | Phase::Claimed
                                | Phase::Granting
                                | Phase::Granted
                                | Phase::Connected
                        ) =>
                {
                    if seg.swap_ctl(slot, c, c.with(Phase::Left)) {
                        break;
                    }
                }
                _ => break,
            }
        }
        seg.bell().ring();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        drop(self.requests.take());
        drop(self.replies.take());
        Session::give_back(&self.seg, self.slot, self.generation);
        // Workers killed with SIGKILL cannot remove the name; the client that notices every
        // one dead removes it (only if it still names this segment: a new server's is left
        // alone).
        if self.seg.abandoned() {
            let _ = self.seg.region.unlink();
        }
    }
}

/// A client of a service, moving bytes; reconnects on request.
#[derive(Debug)]
pub(crate) struct ClientCore {
    session: Option<Session>,
    address: Address,
    opts: ServiceOptions,
    request_type: MessageType,
    reply_type: MessageType,
    pub(crate) name: Arc<str>,
}

/// Why one attempt to claim a session did not end with one.
enum Claim {
    /// Every one of the segment's sessions is held by a live client.
    NoFree(u32),
    /// The server went away; open the name again.
    ServerGone,
    Failed(ServiceError),
}

impl ClientCore {
    pub(crate) fn connect(
        address: Address,
        opts: &ServiceOptions,
        request_type: MessageType,
        reply_type: MessageType,
    ) -> Result<ClientCore, ServiceError> {
        let mut core = ClientCore {
            session: None,
            name: Arc::from(address.to_string().as_str()),
            address,
            opts: opts.clone(),
            request_type,
            reply_type,
        };
        core.reconnect()?;
        Ok(core)
    }

    /// Gives the session back (if any) and connects again, waiting up to the open timeout
    /// for a live server and a free session.
    pub(crate) fn reconnect(&mut self) -> Result<(), ServiceError> {
        drop(self.session.take());
        let start = Instant::now();
        let deadline = start + self.opts.channel.open_timeout;
        let mut last = "nothing under this name".to_owned();
        let mut pause = Duration::from_micros(200);
        loop {
            let seg = match Segment::open(&self.address, &self.opts, deadline) {
                Ok(seg) => seg,
                Err(OpenFailure::Timeout) => break,
                Err(OpenFailure::Interrupted) => return Err(self.interrupted()),
                Err(OpenFailure::Error(e)) => return Err(e),
            };
            if seg.service_alive() {
                match self.claim(seg, deadline) {
                    Ok(session) => {
                        self.session = Some(session);
                        return Ok(());
                    }
                    Err(Claim::NoFree(sessions)) => {
                        return Err(ServiceError::NoSession {
                            service: self.name.to_string(),
                            sessions,
                            waited: start.elapsed(),
                        });
                    }
                    Err(Claim::ServerGone) => last = "its server went away".to_owned(),
                    Err(Claim::Failed(e)) => return Err(e),
                }
            } else {
                last = "its server died or left, and no new one has bound the name yet".to_owned();
                // Remove what dead workers left (the next bind would take it over anyway).
                if seg.abandoned() {
                    let _ = seg.region.unlink();
                }
            }
            if self.nap(&mut pause, deadline)? {
                break;
            }
        }
        Err(ServiceError::NoServer {
            service: self.name.to_string(),
            waited: start.elapsed(),
            last,
        })
    }

    fn interrupted(&self) -> ServiceError {
        ServiceError::Interrupted {
            service: self.name.to_string(),
        }
    }

    /// Sleeps a little (interruptibly); `Ok(true)` once the deadline has passed.
    fn nap(&self, pause: &mut Duration, deadline: Instant) -> Result<bool, ServiceError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(true);
        }
        let nap = (*pause).min(left);
        *pause = (*pause * 2).min(Duration::from_millis(20));
        match &self.opts.channel.interrupt {
            Some(stop) if stop.sleep(nap) => Err(self.interrupted()),
            Some(_) => Ok(false),
            None => {
                std::thread::sleep(nap);
                Ok(false)
            }
        }
    }

    fn attach_options(&self, seg: &Segment, slot: u32, reply: bool) -> AttachOptions {
        self.opts
            .channel
            .attach_options(Duration::from_secs(1))
            .liveness(seg.ring_liveness(slot, reply))
    }

    /// Claims a free slot of `seg`, waits for the grant and attaches.
    fn claim(&self, seg: Segment, deadline: Instant) -> Result<Session, Claim> {
        let me = ringway_ring::ProcessId::current();
        let n = seg.geometry.sessions;
        let first = me.pid % n;
        let mut pause = Duration::from_micros(200);
        loop {
            for k in 0..n {
                let slot = (first + k) % n;
                let Some(free) = seg.ctl(slot).filter(|c| c.phase == Phase::Free) else {
                    continue;
                };
                // The lock first, so that whoever sees the claim sees it held.
                let lock = seg.judge.token(layout::CLAIM_BYTE + slot).map_err(|what| {
                    Claim::Failed(
                        Error::Unsupported {
                            channel: self.name.to_string(),
                            what,
                        }
                        .into(),
                    )
                })?;
                let claiming = Ctl::new(Phase::Claiming, free.generation, me.pid);
                if !seg.swap_ctl(slot, free, claiming) {
                    continue;
                }
                let h = seg.slot(slot);
                h.client_start.store(me.start_time, Relaxed);
                h.client_pidns.store(ringway_ring::pid_namespace(), Relaxed);
                let claimed = claiming.with(Phase::Claimed);
                if !seg.swap_ctl(slot, claiming, claimed) {
                    // The server judged the claim dead (it cannot be: it is this process);
                    // only a scribble gets here. Try another slot.
                    continue;
                }
                seg.bell().ring();
                return self.await_grant(seg, slot, claimed, lock, deadline);
            }
            if !seg.service_alive() {
                return Err(Claim::ServerGone);
            }
            match self.nap(&mut pause, deadline) {
                Ok(true) => return Err(Claim::NoFree(n)),
                Ok(false) => {}
                Err(e) => return Err(Claim::Failed(e)),
            }
        }
    }

    /// Waits for the server to grant `slot`, then attaches this client's ends.
    fn await_grant(
        &self,
        seg: Segment,
        slot: u32,
        claimed: Ctl,
        lock: Option<OwnedFd>,
        deadline: Instant,
    ) -> Result<Session, Claim> {
        let generation = claimed.generation;
        let fail = |seg: &Segment, claim: Claim| {
            Session::give_back(seg, slot, generation);
            Err(claim)
        };
        // Ours while the generation and pid are (any worker may take it to GRANTING and then
        // GRANTED, writing itself as the owner).
        let ours = |c: &Ctl| c.generation == generation && c.pid == claimed.pid;
        let granted = loop {
            let seq = seg.slot(slot).granted.load(Acquire);
            match seg.ctl(slot) {
                Some(c) if ours(&c) && c.phase == Phase::Granted => break c,
                Some(c) if ours(&c) && matches!(c.phase, Phase::Claimed | Phase::Granting) => {}
                // Taken away (only a scribble or a worker that judged us dead does that).
                _ => return fail(&seg, Claim::ServerGone),
            }
            if !seg.service_alive() {
                return fail(&seg, Claim::ServerGone);
            }
            let now = Instant::now();
            if now >= deadline {
                let e = ServiceError::NoServer {
                    service: self.name.to_string(),
                    waited: self.opts.channel.open_timeout,
                    last: "the server did not grant the session it was asked for".to_owned(),
                };
                return fail(&seg, Claim::Failed(e));
            }
            let mut slice = self.opts.interval().min(deadline - now);
            if let Some(stop) = &self.opts.channel.interrupt {
                if stop.is_interrupted() {
                    return fail(&seg, Claim::Failed(self.interrupted()));
                }
                slice = slice.min(Duration::from_millis(10));
            }
            // SYNC(grant): the futex compares `granted` with the value read before the `ctl`
            // check, so a grant between the check and the sleep returns at once.
            super::doorbell::sleep(&seg.slot(slot).granted, seq, slice);
        };
        let ends = (|| -> Result<_, ServiceError> {
            let attach_error = |e| Error::attach(&self.name, e);
            let requests = spsc::Producer::attach(
                &seg.ring_memory(slot, false)?,
                &self.attach_options(&seg, slot, false),
            )
            .map_err(attach_error)?;
            let replies = spsc::Consumer::attach(
                &seg.ring_memory(slot, true)?,
                &self.attach_options(&seg, slot, true),
            )
            .map_err(attach_error)?;
            self.check_type(&self.request_type, requests.identity())?;
            self.check_type(&self.reply_type, replies.identity())?;
            let limit = |ring_max: usize| ring_max.saturating_sub(wire::LEN);
            if seg.max_request > limit(requests.max_message())
                || seg.max_reply > limit(replies.geometry().max_message as usize)
            {
                return Err(ServiceError::Incompatible {
                    service: self.name.to_string(),
                    what: "its header promises larger messages than its rings carry".to_owned(),
                });
            }
            Ok((requests, replies))
        })();
        let (requests, replies) = match ends {
            Ok(ends) => ends,
            Err(e) => return fail(&seg, Claim::Failed(e)),
        };
        if !seg.swap_ctl(slot, granted, granted.with(Phase::Connected)) {
            drop((requests, replies));
            return fail(&seg, Claim::ServerGone);
        }
        seg.bell().ring();
        Ok(Session {
            requests: Some(requests),
            replies: Some(replies),
            seg,
            slot,
            generation,
            worker: granted.owner,
            next_id: 0,
            _claim: lock,
        })
    }

    fn check_type(
        &self,
        ours: &MessageType,
        identity: &ringway_ring::Identity,
    ) -> Result<(), ServiceError> {
        let theirs = MessageType::recorded(identity.fingerprint, &identity.label);
        if ours.matches(&theirs) {
            return Ok(());
        }
        Err(Error::TypeMismatch {
            channel: self.name.to_string(),
            ours: Box::new(ours.clone()),
            theirs: Box::new(theirs),
        }
        .into())
    }

    fn disconnected(&self) -> CallError {
        CallError::Disconnected {
            service: self.name.clone(),
        }
    }

    /// Sends a request of `len` bytes written by `write`; returns its id.
    pub(crate) fn send_with(
        &mut self,
        len: usize,
        write: impl FnOnce(&mut spsc::Grant<'_>),
        wait: Wait,
    ) -> Result<u64, CallError> {
        let Some(session) = self.session.as_mut() else {
            return Err(self.disconnected());
        };
        if len > session.seg.max_request {
            return Err(CallError::TooLarge {
                service: self.name.clone(),
                len,
                max: session.seg.max_request,
            });
        }
        let Some(requests) = session.requests.as_mut() else {
            return Err(self.disconnected());
        };
        let id = session.next_id;
        let mut grant = requests
            .reserve_with(wire::LEN + len, wait)
            .map_err(|e| CallError::from_push(e, &self.name))?;
        grant.write(0, &Wire::new(id, session.generation).encode());
        write(&mut grant);
        grant.commit();
        session.next_id += 1;
        session.seg.bell().ring();
        Ok(id)
    }

    /// Receives the next reply of this session into `out` (payload only); returns its id.
    /// Records of an earlier session of the slot are dropped; a reply to a request never
    /// sent is corruption.
    pub(crate) fn recv_with(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<u64, CallError> {
        let wait = match wait {
            Wait::For(d) => Instant::now()
                .checked_add(d)
                .map_or(Wait::Forever, Wait::Until),
            other => other,
        };
        let Some(session) = self.session.as_mut() else {
            return Err(self.disconnected());
        };
        let Some(replies) = session.replies.as_mut() else {
            return Err(self.disconnected());
        };
        loop {
            replies
                .pop_with(out, wait)
                .map_err(|e| CallError::from_pop(e, &self.name))?;
            let corrupted = |what: &'static str, found: u64, limit: u64| CallError::Corrupted {
                service: self.name.clone(),
                corruption: ringway_ring::Corruption { what, found, limit },
            };
            let Some(w) = Wire::decode(out) else {
                return Err(corrupted(
                    "a reply shorter than its header",
                    out.len() as u64,
                    wire::LEN as u64,
                ));
            };
            if w.generation != session.generation {
                continue; // from an earlier session of this slot
            }
            if w.id >= session.next_id || w.flags != 0 {
                return Err(corrupted(
                    "a reply to a request never sent",
                    w.id,
                    session.next_id,
                ));
            }
            if out.len() - wire::LEN > session.seg.max_reply {
                return Err(corrupted(
                    "a reply larger than the service's maximum",
                    (out.len() - wire::LEN) as u64,
                    session.seg.max_reply as u64,
                ));
            }
            wire::strip(out);
            return Ok(w.id);
        }
    }

    /// Sends a request and waits for its reply, both within one deadline; replies to
    /// earlier requests (whose calls timed out) are dropped on the way.
    pub(crate) fn call_with(
        &mut self,
        len: usize,
        write: impl FnOnce(&mut spsc::Grant<'_>),
        out: &mut Vec<u8>,
        wait: Wait,
    ) -> Result<(), CallError> {
        let wait = match wait {
            Wait::For(d) => Instant::now()
                .checked_add(d)
                .map_or(Wait::Forever, Wait::Until),
            other => other,
        };
        let id = self.send_with(len, write, wait)?;
        loop {
            if self.recv_with(out, wait)? == id {
                return Ok(());
            }
        }
    }

    /// The server's epoch (changes when a new server binds the name).
    pub(crate) fn epoch(&self) -> Option<u64> {
        self.session.as_ref().map(|s| s.seg.epoch)
    }

    /// The session's slot, for diagnostics.
    pub(crate) fn slot(&self) -> Option<u32> {
        self.session.as_ref().map(|s| s.slot)
    }

    /// The worker serving the session.
    pub(crate) fn worker(&self) -> Option<u32> {
        self.session.as_ref().map(|s| s.worker)
    }

    pub(crate) fn max_request(&self) -> usize {
        self.session.as_ref().map_or(0, |s| s.seg.max_request)
    }
}
