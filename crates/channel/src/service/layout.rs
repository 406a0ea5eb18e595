//! The bytes of a service segment: a header, then `sessions` slots, each a slot header and two
//! SPSC rings (requests, client to server; replies, server to client) at fixed offsets.
//!
//! ```text
//! offset 0                 Header (512 bytes, see the struct)
//! offset SLOTS_OFFSET      slot 0: SlotHeader (128 bytes), request ring, reply ring
//! + slot_stride            slot 1: ...
//! ```
//!
//! Everything here is shared with processes that are not trusted. The server writes the
//! header once before `init` (Release) and reads nothing back from it but the doorbell; every
//! geometry field a client reads is read once and checked against what it can recompute
//! ([`Geometry::check`]). A slot's `ctl` word is the only word both sides change, always by
//! compare-and-swap from a value they read, so a scribbled value can make a session fail, never
//! make a process act on a slot it does not hold.
//!
//! # The slot protocol (`ctl` word: owner in bits 60..64, phase in 56..60, generation in
//! 32..56, pid in 0..32)
//!
//! ```text
//! FREE(g)  --client CAS-->  CLAIMING(g, pid)  --client, identity written-->  CLAIMED(g, pid)
//! CLAIMED  --worker w CAS-->  GRANTING(g, pid, w)  --w attaches its ends, CAS-->  GRANTED(g, pid, w)
//! GRANTED  --client attaches, CAS-->  CONNECTED(g, pid, w)
//! GRANTING/GRANTED/CONNECTED  --client leaves-->  LEFT(g, pid, w)
//! any phase w holds  --w, once the client is gone-->  FREE(g + 1)
//! a slot of a dead or departed worker  --live worker v CAS-->  BROKEN(g + 1, pid, v)
//! BROKEN(_, _, v)  --v, once the client is gone, rings re-made-->  FREE
//! ```
//!
//! A service has one to [`MAX_WORKERS`] worker processes (the first `bind`s, the others
//! `join`), each registered in the header's worker table. The worker whose CAS takes a
//! `CLAIMED` slot to `GRANTING` owns the session: it alone serves and frees it. A slot owned
//! by a worker that died or left is adopted by one live worker, whose CAS to `BROKEN` (the
//! generation bumped, so two adopters that read the same word cannot both win) makes it the
//! owner; it frees the slot once the client is gone. Only an owner frees a slot, and only
//! once its client is gone (left, or judged dead by its lock or pid), so a slot is never
//! handed to a second client while the first can still write it. The generation goes into
//! every request and reply header: a record left over from an earlier session of the slot is
//! recognised and dropped.

use core::mem::offset_of;

use std::sync::atomic::{AtomicU32, AtomicU64};

/// `RWSERVC\0`, little-endian: not a ring's magic, so ring tools do not take it for one.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"RWSERVC\0");
/// Layout version; see `docs/layout.md`, *Service segments*. Version 2 added the worker
/// table and the owner in `ctl`; version 1 readers refuse it by this field.
pub(crate) const VERSION: u32 = 2;
/// The version before the worker table: judged (for takeover) by its one server.
pub(crate) const VERSION_1: u32 = 1;
/// The `init` word's value once the header and every slot are ready.
pub(crate) const INIT_READY: u32 = u32::from_le_bytes(*b"SVC!");
/// Header flag: the last worker left (dropped its `Server`); clients get `Disconnected`.
pub(crate) const FLAG_CLOSED: u32 = 1;

/// Where slot 0 starts.
pub(crate) const SLOTS_OFFSET: u64 = 512;
/// The slot header's length; the request ring follows it.
pub(crate) const SLOT_HEADER_LEN: u64 = 128;
/// The most sessions a service may have.
pub(crate) const MAX_SESSIONS: u32 = 1024;
/// The most worker processes a service may have at once (entries of the worker table).
pub(crate) const MAX_WORKERS: u32 = 8;

/// Bytes of the liveness-lock space (see `liveness.rs`): a client holds a read lock on
/// `CLAIM_BYTE + slot` from before it claims a slot until it leaves; the endpoints of ring `k`
/// (`2 * slot` for requests, `2 * slot + 1` for replies) lock `RING_BYTE + k * RING_BYTES +
/// entry`. Every worker holds a read lock on `liveness::CREATOR_BYTE` (the service is held
/// while any does; the last to leave is the one that gets a write lock there) and one on
/// `WORKER_BYTE + w` for its table entry `w`.
pub(crate) const CLAIM_BYTE: u32 = 1 << 20;
pub(crate) const WORKER_BYTE: u32 = 1 << 19;
pub(crate) const RING_BYTE: u32 = 1 << 21;
pub(crate) const RING_BYTES: u32 = 1024;

/// The service header.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Header {
    /// [`MAGIC`].
    pub(crate) magic: AtomicU64,
    /// [`VERSION`].
    pub(crate) version: AtomicU32,
    /// [`INIT_READY`] once everything else is written; stored last with Release.
    pub(crate) init: AtomicU32,
    /// Number of session slots, `1 ..= MAX_SESSIONS`.
    pub(crate) sessions: AtomicU32,
    /// [`FLAG_CLOSED`].
    pub(crate) flags: AtomicU32,
    /// Bytes per slot (a multiple of 128).
    pub(crate) slot_stride: AtomicU64,
    /// Length of each request ring (from the slot's offset + `SLOT_HEADER_LEN`).
    pub(crate) request_len: AtomicU64,
    /// Length of each reply ring (follows the request ring).
    pub(crate) reply_len: AtomicU64,
    /// Random, per bind: tells a reconnecting client it found a new server.
    pub(crate) epoch: AtomicU64,
    /// `CLOCK_REALTIME` at bind, ns.
    pub(crate) created_ns: AtomicU64,
    /// The pid, start time and pid namespace of the worker that bound the service (for
    /// tools; version 1 judged its one server by them, version 2 judges the worker table).
    pub(crate) server_pid: AtomicU32,
    pub(crate) reserved0: AtomicU32,
    pub(crate) server_start: AtomicU64,
    pub(crate) server_pidns: AtomicU64,
    /// Sessions granted since bind (monitoring).
    pub(crate) grants: AtomicU64,
    /// The largest request and reply payload, in bytes (the wire header not counted).
    pub(crate) max_request: AtomicU64,
    pub(crate) max_reply: AtomicU64,
    pub(crate) reserved1: [AtomicU64; 2],
    /// The doorbell, on a line of its own: clients bump `bell` after a request, a claim or a
    /// departure when `sleepers` is not zero; the server sleeps on `bell` (futex).
    pub(crate) bell: AtomicU32,
    pub(crate) sleepers: AtomicU32,
    pub(crate) reserved2: [AtomicU64; 15],
    /// The worker table: one entry per worker process serving the sessions.
    pub(crate) workers: [WorkerEntry; MAX_WORKERS as usize],
}

/// One entry of the worker table (32 bytes).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct WorkerEntry {
    /// State in bits 56..64 ([`WORKER_FREE`], [`WORKER_JOINING`], [`WORKER_ACTIVE`]), pid in
    /// 0..32. Taken by CAS from `FREE` (or from an entry whose worker is dead) by a worker
    /// holding the entry's lock byte; given back (`FREE`) by the worker when it leaves.
    pub(crate) word: AtomicU64,
    /// The worker's start time and pid namespace, written while `JOINING`.
    pub(crate) start: AtomicU64,
    pub(crate) pidns: AtomicU64,
    /// Sessions this worker granted (monitoring; reset when the entry is taken).
    pub(crate) grants: AtomicU64,
}

/// Worker entry states.
pub(crate) const WORKER_FREE: u64 = 0;
pub(crate) const WORKER_JOINING: u64 = 1;
pub(crate) const WORKER_ACTIVE: u64 = 2;

/// A worker entry's word for `state` and `pid`.
pub(crate) fn worker_word(state: u64, pid: u32) -> u64 {
    (state << 56) | u64::from(pid)
}

/// One session slot's header.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SlotHeader {
    /// Phase, generation and claimant pid (see the module docs).
    pub(crate) ctl: AtomicU64,
    /// The claimant's start time and pid namespace, written while `CLAIMING`.
    pub(crate) client_start: AtomicU64,
    pub(crate) client_pidns: AtomicU64,
    /// Bumped (and woken) by the server after each grant; a connecting client sleeps on it.
    pub(crate) granted: AtomicU32,
    pub(crate) reserved0: AtomicU32,
    /// Requests served in this slot since bind (monitoring).
    pub(crate) served: AtomicU64,
    pub(crate) reserved1: [AtomicU64; 11],
}

const _: () = {
    assert!(core::mem::size_of::<Header>() == SLOTS_OFFSET as usize);
    assert!(offset_of!(Header, magic) == 0);
    assert!(offset_of!(Header, version) == 8);
    assert!(offset_of!(Header, init) == 12);
    assert!(offset_of!(Header, sessions) == 16);
    assert!(offset_of!(Header, flags) == 20);
    assert!(offset_of!(Header, slot_stride) == 24);
    assert!(offset_of!(Header, request_len) == 32);
    assert!(offset_of!(Header, reply_len) == 40);
    assert!(offset_of!(Header, epoch) == 48);
    assert!(offset_of!(Header, created_ns) == 56);
    assert!(offset_of!(Header, server_pid) == 64);
    assert!(offset_of!(Header, server_start) == 72);
    assert!(offset_of!(Header, server_pidns) == 80);
    assert!(offset_of!(Header, grants) == 88);
    assert!(offset_of!(Header, max_request) == 96);
    assert!(offset_of!(Header, max_reply) == 104);
    assert!(offset_of!(Header, bell) == 128);
    assert!(offset_of!(Header, sleepers) == 132);
    assert!(offset_of!(Header, workers) == 256);
    assert!(core::mem::size_of::<WorkerEntry>() == 32);
    assert!(offset_of!(WorkerEntry, start) == 8);
    assert!(offset_of!(WorkerEntry, pidns) == 16);
    assert!(offset_of!(WorkerEntry, grants) == 24);
    assert!(core::mem::size_of::<SlotHeader>() == SLOT_HEADER_LEN as usize);
    assert!(offset_of!(SlotHeader, ctl) == 0);
    assert!(offset_of!(SlotHeader, client_start) == 8);
    assert!(offset_of!(SlotHeader, client_pidns) == 16);
    assert!(offset_of!(SlotHeader, granted) == 24);
    assert!(offset_of!(SlotHeader, served) == 32);
};

/// Where a slot is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Free,
    Claiming,
    Claimed,
    Granted,
    Connected,
    Left,
    Broken,
    Granting,
}

impl Phase {
    const ALL: [Phase; 8] = [
        Phase::Free,
        Phase::Claiming,
        Phase::Claimed,
        Phase::Granted,
        Phase::Connected,
        Phase::Left,
        Phase::Broken,
        Phase::Granting,
    ];

    fn code(self) -> u64 {
        self as u64
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Phase::Free => "free",
            Phase::Claiming => "claiming",
            Phase::Claimed => "claimed",
            Phase::Granted => "granted",
            Phase::Connected => "connected",
            Phase::Left => "left",
            Phase::Broken => "broken",
            Phase::Granting => "granting",
        }
    }
}

/// A decoded `ctl` word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ctl {
    pub(crate) phase: Phase,
    /// 24 bits, wrapping.
    pub(crate) generation: u32,
    pub(crate) pid: u32,
    /// The worker that owns the session (`GRANTING` onwards); 0 in `FREE`, `CLAIMING`,
    /// `CLAIMED`.
    pub(crate) owner: u32,
}

const GEN_MASK: u64 = (1 << 24) - 1;

impl Ctl {
    pub(crate) fn new(phase: Phase, generation: u32, pid: u32) -> Ctl {
        Ctl {
            phase,
            generation: generation & GEN_MASK as u32,
            pid,
            owner: 0,
        }
    }

    /// The same word owned by worker `owner`.
    pub(crate) fn owned(self, owner: u32) -> Ctl {
        Ctl { owner, ..self }
    }

    /// Whether a worker owns the session in this phase.
    pub(crate) fn is_owned(self) -> bool {
        !matches!(self.phase, Phase::Free | Phase::Claiming | Phase::Claimed)
    }

    /// Decodes a word read from shared memory; `None` for a phase or owner no version
    /// writes.
    pub(crate) fn decode(word: u64) -> Option<Ctl> {
        let phase = *Phase::ALL.get(((word >> 56) & 0xF) as usize)?;
        let owner = (word >> 60) as u32;
        if owner >= MAX_WORKERS {
            return None;
        }
        Some(Ctl {
            phase,
            generation: ((word >> 32) & GEN_MASK) as u32,
            pid: word as u32,
            owner,
        })
    }

    pub(crate) fn encode(self) -> u64 {
        (u64::from(self.owner & 0xF) << 60)
            | (self.phase.code() << 56)
            | ((u64::from(self.generation) & GEN_MASK) << 32)
            | u64::from(self.pid)
    }

    /// The same slot in `phase`, same generation and claimant.
    pub(crate) fn with(self, phase: Phase) -> Ctl {
        Ctl { phase, ..self }
    }

    /// The slot freed for its next session.
    pub(crate) fn freed(self) -> Ctl {
        Ctl::new(Phase::Free, self.generation.wrapping_add(1), 0)
    }
}

/// The geometry of a service segment, as the server chose it or a client read and checked it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) sessions: u32,
    pub(crate) request_len: u64,
    pub(crate) reply_len: u64,
    pub(crate) slot_stride: u64,
}

fn round_up_128(n: u64) -> Option<u64> {
    n.checked_add(127).map(|n| n & !127)
}

impl Geometry {
    /// The geometry for `sessions` slots of rings of these lengths; `None` if it overflows.
    pub(crate) fn new(sessions: u32, request_len: u64, reply_len: u64) -> Option<Geometry> {
        let request_len = round_up_128(request_len)?;
        let reply_len = round_up_128(reply_len)?;
        let slot_stride = SLOT_HEADER_LEN
            .checked_add(request_len)?
            .checked_add(reply_len)?;
        let geometry = Geometry {
            sessions,
            request_len,
            reply_len,
            slot_stride,
        };
        geometry.total_len()?;
        Some(geometry)
    }

    /// Bytes from offset 0 to the end of the last slot.
    pub(crate) fn total_len(&self) -> Option<u64> {
        self.slot_stride
            .checked_mul(u64::from(self.sessions))?
            .checked_add(SLOTS_OFFSET)
    }

    /// Checks what a client read against what it can recompute, and against the mapping's
    /// length: every later offset is computed from a geometry that passed this.
    pub(crate) fn check(&self, mapped: u64) -> Result<(), String> {
        if self.sessions == 0 || self.sessions > MAX_SESSIONS {
            return Err(format!("{} sessions (1 ..= {MAX_SESSIONS})", self.sessions));
        }
        let rebuilt = Geometry::new(self.sessions, self.request_len, self.reply_len);
        if rebuilt != Some(*self) {
            return Err(format!(
                "slot stride {} does not match rings of {} and {} bytes",
                self.slot_stride, self.request_len, self.reply_len
            ));
        }
        match self.total_len() {
            Some(total) if total <= mapped => Ok(()),
            total => Err(format!(
                "{} sessions need {total:?} bytes, the object has {mapped}",
                self.sessions
            )),
        }
    }

    /// The offset of slot `slot`'s header (`slot < sessions`).
    pub(crate) fn slot_offset(&self, slot: u32) -> u64 {
        debug_assert!(slot < self.sessions);
        SLOTS_OFFSET + u64::from(slot) * self.slot_stride
    }

    /// The offset of slot `slot`'s request ring.
    pub(crate) fn request_offset(&self, slot: u32) -> u64 {
        self.slot_offset(slot) + SLOT_HEADER_LEN
    }

    /// The offset of slot `slot`'s reply ring.
    pub(crate) fn reply_offset(&self, slot: u32) -> u64 {
        self.request_offset(slot) + self.request_len
    }
}

/// The byte of the liveness-lock space where ring `k`'s registration entries start.
pub(crate) fn ring_lock_base(slot: u32, reply: bool) -> u32 {
    RING_BYTE + (2 * slot + u32::from(reply)) * RING_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctl_words_round_trip_and_unknown_phases_are_refused() {
        for phase in Phase::ALL {
            for owner in [0, 3, MAX_WORKERS - 1] {
                let ctl = Ctl::new(phase, 0x00AB_CDEF, 4242).owned(owner);
                assert_eq!(Ctl::decode(ctl.encode()), Some(ctl));
            }
        }
        assert_eq!(Ctl::decode(8 << 56), None, "an unknown phase");
        assert_eq!(Ctl::decode(8 << 60), None, "an owner past the table");
        assert_eq!(Ctl::decode(u64::MAX), None);
        let wrapped = Ctl::new(Phase::Connected, (1 << 24) - 1, 1).freed();
        assert_eq!(
            (wrapped.phase, wrapped.generation, wrapped.pid),
            (Phase::Free, 0, 0)
        );
    }

    #[test]
    fn geometry_is_checked_against_what_it_implies() {
        let g = Geometry::new(4, 5000, 3000).unwrap();
        assert_eq!(g.request_len % 128, 0);
        assert_eq!(g.slot_stride, 128 + g.request_len + g.reply_len);
        let total = g.total_len().unwrap();
        assert_eq!(g.check(total), Ok(()));
        assert!(g.check(total - 1).is_err(), "a short object is refused");
        let lying = Geometry {
            slot_stride: 128,
            ..g
        };
        assert!(
            lying.check(u64::MAX).is_err(),
            "a stride that overlaps is refused"
        );
        let none = Geometry { sessions: 0, ..g };
        assert!(none.check(total).is_err());
        assert!(Geometry::new(u32::MAX, u64::MAX / 2, 1).is_none());
        assert_eq!(
            g.reply_offset(1),
            SLOTS_OFFSET + g.slot_stride + 128 + g.request_len
        );
        assert!(ring_lock_base(MAX_SESSIONS - 1, true) + RING_BYTES < u32::MAX);
    }
}
