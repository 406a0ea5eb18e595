//! The registration table: who is attached, and whether they are still alive.
//!
//! Every producer and consumer holds one entry (see `docs/layout.md`, *Registration table*).
//! Entries let each side tell "the other side has not come yet" from "the other side left"
//! and "the other side died", and in an MPMC ring they record the claim that lets a survivor
//! recover a slot a dead process held.

use core::ops::Range;

use crate::error::{AttachError, RingKind, Side};
use crate::geometry::Geometry;
use crate::layout::{
    STATE_ACTIVE, STATE_CLOSED, STATE_FREE, STATE_JOINING, ctl_generation, ctl_pack, ctl_pid,
    ctl_state,
};
use crate::mem::{Mem, RingMemory};
use crate::proc::{Liveness, Party, ProcessId, Token};
use crate::sync::Ordering::{AcqRel, Acquire, Relaxed, Release};
use crate::sync::fence;

/// The state of a used registration entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartyState {
    /// The process is filling the entry in.
    Joining,
    /// Attached (the process may have died since: see [`PartyInfo::alive`]).
    Active,
    /// Left cleanly.
    Closed,
    /// A state value outside the layout (written by a buggy or hostile peer).
    Invalid(u8),
}

/// One registration entry, decoded, for inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyInfo {
    /// Index within its side's table.
    pub index: u32,
    /// The entry's state.
    pub state: PartyState,
    /// The registered pid.
    pub pid: u32,
    /// The registered process start time.
    pub start_time: u64,
    /// How many times the entry has been taken.
    pub generation: u32,
    /// MPMC: `position + 1` last claimed, `0` for none.
    pub claim: u64,
    /// Broadcast reader: the position of the next message it reads; otherwise `0`.
    pub cursor: u64,
    /// Whether the process is alive now (always `false` for a closed entry).
    pub alive: bool,
}

/// What one endpoint knows of the other side of its ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerState {
    /// Nobody has attached on the other side yet.
    Waiting,
    /// At least one endpoint on the other side is attached and alive.
    Connected,
    /// Endpoints attached on the other side, and every one left cleanly (dropped its end).
    Left,
    /// Endpoints attached on the other side, none is alive, and at least one died without
    /// leaving (killed, crashed).
    Died,
}

impl PeerState {
    /// `true` for [`Left`](PeerState::Left) and [`Died`](PeerState::Died): the other side was
    /// there and is not now (it may attach again).
    #[must_use]
    pub fn is_disconnected(self) -> bool {
        matches!(self, PeerState::Left | PeerState::Died)
    }
}

/// The peer side's state, probing liveness, and how many times its entries were taken.
pub(crate) fn peer_state(
    mem: &Mem,
    geometry: &Geometry,
    side: Side,
    liveness: &dyn Liveness,
) -> PeerState {
    let (mut used, mut died) = (false, false);
    for index in side_range(geometry, side) {
        match entry_status(mem, index, liveness) {
            EntryStatus::Free => {}
            EntryStatus::Live => return PeerState::Connected,
            EntryStatus::Closed => used = true,
            EntryStatus::Dead => (used, died) = (true, true),
        }
    }
    match (used, died) {
        (false, _) => PeerState::Waiting,
        (true, false) => PeerState::Left,
        (true, true) => PeerState::Died,
    }
}

/// How many times the entries of `side` have been taken (each attach takes one; an entry's
/// generation counts its takes).
pub(crate) fn attachments(mem: &Mem, geometry: &Geometry, side: Side) -> u64 {
    side_range(geometry, side)
        .map(|index| ctl_generation(mem.entry(index).ctl.load(Relaxed)))
        .sum()
}

/// The liveness of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryStatus {
    Free,
    Closed,
    Live,
    Dead,
}

/// This endpoint's entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Registration {
    /// Absolute entry index (producers first).
    pub(crate) index: usize,
    /// The `ctl` word we stored when we became ACTIVE.
    pub(crate) ctl: u64,
}

/// The absolute entry indices of one side.
pub(crate) fn side_range(geometry: &Geometry, side: Side) -> Range<usize> {
    let producers = geometry.max_producers as usize;
    match side {
        Side::Producer => 0..producers,
        Side::Consumer => producers..producers + geometry.max_consumers as usize,
    }
}

/// Reads one entry's liveness. Asks `liveness` (a `/proc` read, a lock query) about JOINING
/// and ACTIVE entries.
pub(crate) fn entry_status(mem: &Mem, index: usize, liveness: &dyn Liveness) -> EntryStatus {
    let entry = mem.entry(index);
    // SYNC(register): Relaxed plus the Acquire fence pairs with the Release store of ACTIVE in
    // `activate`, so the start time read below is the one the registrant wrote. A load and a
    // fence rather than an Acquire load: inspection tools map rings read-only, where std
    // promises only Relaxed loads to work.
    let ctl = entry.ctl.load(Relaxed);
    fence(Acquire);
    match ctl_state(ctl) {
        STATE_FREE => EntryStatus::Free,
        STATE_CLOSED => EntryStatus::Closed,
        STATE_JOINING | STATE_ACTIVE => alive(liveness.alive(&Party {
            index: index as u32,
            pid: ctl_pid(ctl),
            // A JOINING entry's start time may not be written yet: pid only.
            start_time: if ctl_state(ctl) == STATE_ACTIVE {
                entry.start_time.load(Relaxed)
            } else {
                0
            },
            pidns: entry.pidns.load(Relaxed),
        })),
        // An invalid state cannot be a live registration; treat it as dead so that it can
        // neither wedge the other side nor pass for a live peer.
        _ => EntryStatus::Dead,
    }
}

fn alive(yes: bool) -> EntryStatus {
    if yes {
        EntryStatus::Live
    } else {
        EntryStatus::Dead
    }
}

/// A digest of `side`'s registration words (no `/proc` reads): it changes whenever an entry
/// is taken, activated or closed, which is how an endpoint that concluded "every peer is gone"
/// notices a new one (see `Endpoint::peer_gone`). Taking an entry always bumps its generation,
/// so the wrapping sum cannot come back to an earlier value by an attach.
pub(crate) fn side_digest(mem: &Mem, geometry: &Geometry, side: Side) -> u64 {
    side_range(geometry, side).fold(0u64, |sum, index| {
        sum.wrapping_add(mem.entry(index).ctl.load(Relaxed))
    })
}

/// `true` if every used entry of `side` is CLOSED and at least one was used (no `/proc`
/// reads: a cleanly closed side is seen at once, a dead one only by [`side_status`]).
pub(crate) fn side_closed(mem: &Mem, geometry: &Geometry, side: Side) -> bool {
    let mut closed = false;
    for index in side_range(geometry, side) {
        // SYNC(close): Acquire pairs with the Release store of CLOSED in `close`, so whatever
        // the closing endpoint published before leaving is visible after this returns true.
        match ctl_state(mem.entry(index).ctl.load(Acquire)) {
            STATE_FREE => {}
            STATE_CLOSED => closed = true,
            _ => return false,
        }
    }
    closed
}

/// Registers the calling process on `side`, returning its entry and its liveness token.
///
/// A side takes a free entry, else one whose occupant closed or died (an SPSC side has one
/// entry, so a side whose endpoint left or died can be attached again, any number of times).
/// The liveness token is acquired before the entry is taken, so from the moment the entry
/// names this process, a liveness check can see it alive. An entry is taken first and
/// resolved second: the swap to JOINING (under a new generation) freezes the old occupant's
/// `claim`, since nobody else may write an entry it does not own, and only then is that
/// claim resolved by `resolve(index)` (which recovers the slot if it is stuck). Resolving
/// before taking would race: another process could take the entry and make a claim of its own
/// in between, and the stale resolution would then act on that live claim. If `resolve`
/// returns `false` (a live process claims the same position, so it cannot be decided yet),
/// the entry is put back CLOSED with its claim intact, for a consumer's or producer's recovery
/// to find later, and another entry is tried.
pub(crate) fn register(
    mem: &Mem,
    geometry: &Geometry,
    side: Side,
    me: ProcessId,
    liveness: &dyn Liveness,
    resolve: &mut dyn FnMut(usize) -> bool,
) -> Result<(Registration, Option<Token>), AttachError> {
    let range = side_range(geometry, side);
    let mut skipped = vec![false; range.len()];
    let mut busy = None;
    // Free entries first, then closed, dead or invalid ones.
    for pass in 0..2 {
        for index in range.clone() {
            if skipped[index - range.start] {
                continue;
            }
            let ctl = mem.entry(index).ctl.load(Acquire);
            let candidate = match (pass, ctl_state(ctl)) {
                (0, STATE_FREE) => true,
                (1, STATE_CLOSED) => true,
                (1, STATE_JOINING | STATE_ACTIVE) => {
                    let dead = entry_status(mem, index, liveness) == EntryStatus::Dead;
                    if !dead {
                        busy = Some(ctl_pid(ctl));
                    }
                    dead
                }
                (1, state) => state > STATE_CLOSED,
                _ => false,
            };
            if !candidate {
                continue;
            }
            let token = liveness
                .token(index as u32)
                .map_err(|reason| AttachError::Liveness { side, reason })?;
            // The generation in `ctl` makes the swap take exactly the registration that was
            // judged above: if anyone took the entry since, the swap fails.
            let Some(joining) = take(mem, index, ctl, me) else {
                busy = Some(ctl_pid(mem.entry(index).ctl.load(Relaxed)));
                continue;
            };
            if resolve(index) {
                return Ok((activate(mem, joining), token));
            }
            put_back(mem, &joining);
            skipped[index - range.start] = true;
        }
    }
    match (geometry.kind, side, busy) {
        (RingKind::Spsc, _, Some(pid)) | (RingKind::Broadcast, Side::Producer, Some(pid)) => {
            Err(AttachError::Busy { side, pid })
        }
        _ => Err(AttachError::TableFull {
            side,
            max: range.len() as u32,
        }),
    }
}

/// Takes entry `index` if its `ctl` still reads `seen`, as JOINING under a new generation.
/// The entry's `claim` is left as the old occupant left it, for `resolve`.
fn take(mem: &Mem, index: usize, seen: u64, me: ProcessId) -> Option<Registration> {
    let entry = mem.entry(index);
    let generation = ctl_generation(seen) + 1;
    let joining = ctl_pack(STATE_JOINING, generation, me.pid);
    // The generation makes this swap ABA-proof: whoever took the entry since `seen` was read
    // changed the generation, so a second process acting on the same stale read fails here.
    entry
        .ctl
        .compare_exchange(seen, joining, AcqRel, Relaxed)
        .ok()?;
    entry.start_time.store(me.start_time, Relaxed);
    entry.pidns.store(crate::proc::pid_namespace(), Relaxed);
    Some(Registration {
        index,
        ctl: joining,
    })
}

/// Makes a taken (JOINING) entry ours for good: no claim, ACTIVE.
fn activate(mem: &Mem, joining: Registration) -> Registration {
    let entry = mem.entry(joining.index);
    entry.claim.store(0, Relaxed);
    let active = ctl_pack(
        STATE_ACTIVE,
        ctl_generation(joining.ctl),
        ctl_pid(joining.ctl),
    );
    // SYNC(register): Release pairs with the Acquire fence after the load of `ctl` in
    // `entry_status`; it also orders the cleared claim before the entry reads as ACTIVE.
    entry.ctl.store(active, Release);
    Registration {
        index: joining.index,
        ctl: active,
    }
}

/// Gives back an entry taken by `take` whose claim could not be resolved yet: CLOSED, with
/// the old claim left in place for a later recovery to find.
fn put_back(mem: &Mem, joining: &Registration) {
    let closed = ctl_pack(
        STATE_CLOSED,
        ctl_generation(joining.ctl),
        ctl_pid(joining.ctl),
    );
    let _ = mem
        .entry(joining.index)
        .ctl
        .compare_exchange(joining.ctl, closed, Release, Relaxed);
}

/// Marks this endpoint's entry CLOSED, after everything it publishes.
pub(crate) fn close(mem: &Mem, registration: &Registration) {
    let closed = ctl_pack(
        STATE_CLOSED,
        ctl_generation(registration.ctl),
        ctl_pid(registration.ctl),
    );
    // SYNC(close): Release pairs with the Acquire load in `side_closed` and `entry_status`.
    // Only swap if the entry is still ours: a peer that decided we were dead may have taken it.
    let _ = mem.entry(registration.index).ctl.compare_exchange(
        registration.ctl,
        closed,
        Release,
        Relaxed,
    );
}

/// Decodes the used entries of both sides, for [`crate::inspect`].
pub(crate) fn parties(
    memory: &RingMemory,
    geometry: &Geometry,
    liveness: &dyn Liveness,
) -> (Vec<PartyInfo>, Vec<PartyInfo>) {
    let decode = |side: Side| {
        let range = side_range(geometry, side);
        let first = range.start;
        range
            .filter_map(|index| {
                let entry = memory.mem.entry(index);
                // Relaxed plus a fence, not an Acquire load: this runs on read-only mappings
                // (see `entry_status`).
                let ctl = entry.ctl.load(Relaxed);
                fence(Acquire);
                let state = match ctl_state(ctl) {
                    STATE_FREE => return None,
                    STATE_JOINING => PartyState::Joining,
                    STATE_ACTIVE => PartyState::Active,
                    STATE_CLOSED => PartyState::Closed,
                    other => PartyState::Invalid(other as u8),
                };
                Some(PartyInfo {
                    index: (index - first) as u32,
                    state,
                    pid: ctl_pid(ctl),
                    start_time: entry.start_time.load(Relaxed),
                    generation: ctl_generation(ctl) as u32,
                    claim: entry.claim.load(Relaxed),
                    cursor: entry.cursor.load(Relaxed),
                    alive: entry_status(&memory.mem, index, liveness) == EntryStatus::Live,
                })
            })
            .collect()
    };
    (decode(Side::Producer), decode(Side::Consumer))
}
