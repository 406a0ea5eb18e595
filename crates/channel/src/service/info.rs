//! What a service segment holds, for tools that look without attaching (`ringway ls`,
//! `stat`, `clean`): read through the library, judged with the liveness the ends use.

use std::sync::atomic::Ordering::{Acquire, Relaxed};

use ringway_region::Region;

use super::layout::{self, Ctl, Geometry};
use super::segment::{Judge, judge_service};
use super::workers;

/// A service segment, as a tool sees it (a snapshot; every field was written by processes
/// that are not trusted, and is shown, not acted on).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceInfo {
    /// Session slots.
    pub sessions: u32,
    /// Bytes per request and reply ring.
    pub ring_bytes: (u64, u64),
    /// Largest request and reply payload, in bytes.
    pub max_message: (u64, u64),
    /// The pid of the worker that bound the service (in its pid namespace).
    pub server_pid: u32,
    /// Whether the service is up: a worker alive (by its lock, or its pid), and the last
    /// one has not left.
    pub server_alive: bool,
    /// The worker table's entries that hold a worker (alive or not).
    pub workers: Vec<WorkerInfo>,
    /// Changes with every bind.
    pub epoch: u64,
    /// `CLOCK_REALTIME` at bind, ns.
    pub created_ns: u64,
    /// Sessions granted since bind.
    pub grants: u64,
    /// Every slot, in order.
    pub slots: Vec<SessionInfo>,
}

/// One entry of the worker table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerInfo {
    /// The entry, which is also the owner recorded in the sessions the worker granted.
    pub index: u32,
    /// The worker's pid (in its pid namespace).
    pub pid: u32,
    /// Whether it is alive (by its lock, or its pid).
    pub alive: bool,
    /// Sessions it granted.
    pub grants: u64,
}

/// One session slot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// `free`, `claiming`, `claimed`, `granted`, `connected`, `left`, `broken`, or
    /// `invalid` for a value no version writes.
    pub phase: &'static str,
    /// The slot's generation (one more per session).
    pub generation: u32,
    /// The claimant's pid, `0` when free.
    pub client_pid: u32,
    /// The worker that owns the session (granting it, serving it, or recycling it).
    pub worker: Option<u32>,
    /// Requests answered in this slot since bind.
    pub served: u64,
}

/// Reads the service segment in `region`: `None` if it is not one (no service magic),
/// `Some(Err)` with what is wrong if it is one that cannot be read (not initialised, bad
/// geometry).
#[must_use]
pub fn inspect_service(region: &Region) -> Option<Result<ServiceInfo, String>> {
    if !super::segment::is_service(region) {
        return None;
    }
    let h = super::segment::header_of(region);
    // SYNC(service-init): a Relaxed load and an Acquire fence (the mapping may be read-only);
    // pairs with the Release store of `init`.
    let init = h.init.load(Relaxed);
    std::sync::atomic::fence(Acquire);
    if init != layout::INIT_READY {
        return Some(Err(
            "a service being created (not initialised yet)".to_owned()
        ));
    }
    let version = h.version.load(Relaxed);
    if version != layout::VERSION {
        return Some(Err(format!(
            "a service of layout version {version} (this build reads {})",
            layout::VERSION
        )));
    }
    let geometry = Geometry {
        sessions: h.sessions.load(Relaxed),
        request_len: h.request_len.load(Relaxed),
        reply_len: h.reply_len.load(Relaxed),
        slot_stride: h.slot_stride.load(Relaxed),
    };
    if let Err(what) = geometry.check(region.len() as u64) {
        return Some(Err(format!("a service with a bad geometry: {what}")));
    }
    let judge = Judge::for_region(region).ok();
    let server_alive = judge.as_ref().is_some_and(|j| judge_service(j, h));
    let workers = (0..layout::MAX_WORKERS)
        .filter_map(|w| {
            let e = &h.workers[w as usize];
            let word = e.word.load(Relaxed);
            (word >> 56 != layout::WORKER_FREE).then(|| WorkerInfo {
                index: w,
                pid: word as u32,
                alive: judge
                    .as_ref()
                    .is_some_and(|j| workers::worker_alive(j, h, w)),
                grants: e.grants.load(Relaxed),
            })
        })
        .collect();
    let slots = (0..geometry.sessions)
        .map(|slot| {
            let offset = geometry.slot_offset(slot) as usize;
            // SAFETY: the geometry passed `check` against the mapping's length, so the slot
            // header lies inside it, 128-byte aligned, made of atomics only (loaded here).
            let s = unsafe { &*region.as_ptr().add(offset).cast::<layout::SlotHeader>() };
            let word = s.ctl.load(Relaxed);
            let ctl = Ctl::decode(word);
            SessionInfo {
                phase: ctl.map_or("invalid", |c| c.phase.name()),
                generation: ctl.map_or(0, |c| c.generation),
                client_pid: ctl.map_or(0, |c| c.pid),
                worker: ctl.filter(|c| c.is_owned()).map(|c| c.owner),
                served: s.served.load(Relaxed),
            }
        })
        .collect();
    Some(Ok(ServiceInfo {
        sessions: geometry.sessions,
        ring_bytes: (geometry.request_len, geometry.reply_len),
        max_message: (h.max_request.load(Relaxed), h.max_reply.load(Relaxed)),
        server_pid: h.server_pid.load(Relaxed),
        server_alive,
        workers,
        epoch: h.epoch.load(Relaxed),
        created_ns: h.created_ns.load(Relaxed),
        grants: h.grants.load(Relaxed),
        slots,
    }))
}
