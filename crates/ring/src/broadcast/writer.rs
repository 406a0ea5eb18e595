//! The writing end of a broadcast ring.

use std::time::Duration;

use super::gate::{self, Gate};
use crate::endpoint::Endpoint;
use crate::error::{AttachError, Corruption, PushError, RingKind, Side};
use crate::geometry::{Geometry, Identity, Policy};
use crate::layout::{BROADCAST_MAX_POSITION, stamp_busy, stamp_done};
use crate::mem::{RingMemory, WaitWord};
use crate::mpmc::Slots;
use crate::registry::PeerState;
use crate::sync::Ordering::{Acquire, Relaxed, Release};
use crate::sync::fence;
use crate::wait::{AttachOptions, Pause, Wait};

/// The writing end of a broadcast ring (there is one at a time).
///
/// # Invariants
/// `pos` is the position of the next message; every earlier one is published (its stamp is
/// `done`) and `tail == pos` in the header, as far as this writer wrote it.
#[derive(Debug)]
pub struct Writer {
    ep: Endpoint,
    slots: Slots,
    pos: u64,
    gate: Gate,
}

impl Writer {
    /// Attaches as the writer, taking the writer's entry if it is free or its previous
    /// holder left or died; a new writer continues after the last message published.
    ///
    /// # Errors
    /// Any [`AttachError`]; [`AttachError::Busy`] if a live writer holds the ring;
    /// [`AttachError::BadGeometry`] if the published position is impossible.
    pub fn attach(memory: &RingMemory, opts: &AttachOptions) -> Result<Writer, AttachError> {
        let ep = Endpoint::attach(
            memory,
            RingKind::Broadcast,
            Side::Producer,
            opts,
            &mut |_, _, _| true,
        )?;
        let slots = Slots::new(&ep.geo);
        let mem = &ep.mem;
        let tail = mem.header().producer.tail.load(Acquire);
        if tail >= BROADCAST_MAX_POSITION {
            return Err(AttachError::BadGeometry(Corruption::new(
                "a broadcast tail must be below 2^62",
                tail,
                BROADCAST_MAX_POSITION,
            )));
        }
        // A writer that died between completing a message and storing `tail` left it complete:
        // readers may have read it, so it is not written again.
        let pos = if slots.seq(mem, tail).load(Acquire) == stamp_done(tail) {
            mem.header().producer.tail.store(tail + 1, Release);
            tail + 1
        } else {
            tail
        };
        let gate = Gate::new(&ep.geo);
        Ok(Writer {
            ep,
            slots,
            pos,
            gate,
        })
    }

    /// The ring's geometry, as read at attach time (its policy and history included).
    #[must_use]
    pub fn geometry(&self) -> &Geometry {
        &self.ep.geo
    }

    /// The fingerprint and label the creator stored in the header (read at attach time).
    #[must_use]
    pub fn identity(&self) -> &Identity {
        &self.ep.identity
    }

    /// The position of the next message: how many messages were ever published.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The readers: none attached yet, some alive, all left, or all dead (probes liveness:
    /// not for a hot loop).
    #[must_use]
    pub fn peer_state(&self) -> PeerState {
        self.ep.peer_state()
    }

    /// How many readers are attached and alive now (probes liveness: not for a hot loop).
    #[must_use]
    pub fn readers(&self) -> usize {
        let mem = &self.ep.mem;
        crate::registry::side_range(&self.ep.geo, Side::Consumer)
            .filter(|&i| {
                crate::registry::entry_status(mem, i, &*self.ep.opts.liveness)
                    == crate::registry::EntryStatus::Live
            })
            .count()
    }

    /// Publishes `msg` to every reader, without blocking.
    ///
    /// Under the overwrite policy, and under the block policy while no live reader is
    /// attached, this never waits. A broadcast writer is never `Closed`: readers may attach
    /// at any time.
    ///
    /// # Errors
    /// [`PushError::Full`] (block policy: the slowest live reader is a whole ring behind);
    /// [`PushError::TooLarge`]; [`PushError::Corrupted`].
    pub fn push(&mut self, msg: &[u8]) -> Result<(), PushError> {
        self.push_with(msg, Wait::Try)
    }

    /// Like [`push`](Writer::push), waiting up to `timeout` for the slowest reader.
    ///
    /// # Errors
    /// [`PushError::Timeout`], [`PushError::Interrupted`], [`PushError::TooLarge`],
    /// [`PushError::Corrupted`].
    pub fn push_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), PushError> {
        self.push_with(msg, Wait::For(timeout))
    }

    /// Like [`push`](Writer::push), waiting for the slowest reader as long as it lives.
    ///
    /// # Errors
    /// [`PushError::Interrupted`], [`PushError::TooLarge`], [`PushError::Corrupted`].
    pub fn push_blocking(&mut self, msg: &[u8]) -> Result<(), PushError> {
        self.push_with(msg, Wait::Forever)
    }

    /// Publishes `msg`, waiting for the slowest live reader as `wait` allows (block policy):
    /// the one entry point of [`push`](Writer::push), [`push_timeout`](Writer::push_timeout)
    /// and [`push_blocking`](Writer::push_blocking).
    ///
    /// # Errors
    /// As those: [`PushError::Full`] for [`Wait::Try`], [`PushError::Timeout`] for a deadline.
    pub fn push_with(&mut self, msg: &[u8], wait: Wait) -> Result<(), PushError> {
        if msg.len() as u64 > self.slots.slot_size {
            return Err(PushError::TooLarge {
                len: msg.len(),
                max: self.slots.slot_size as usize,
            });
        }
        self.room(wait)?;
        self.write(msg)
    }

    /// Waits until the slot of the next position may be overwritten (block policy).
    fn room(&mut self, wait: Wait) -> Result<(), PushError> {
        let cap = self.slots.cap;
        if self.ep.geo.policy == Policy::Overwrite || self.pos < cap {
            return Ok(());
        }
        let oldest = self.pos - cap;
        if self.gate.open(oldest) {
            return Ok(());
        }
        let mut waiter = None;
        loop {
            let due = self.ep.due();
            // A truncation fault in this process is permanent; seeing it costs one load.
            if due || self.ep.mem.faulted() {
                self.ep.check_integrity().map_err(PushError::Corrupted)?;
            }
            let (mem, geo) = (&self.ep.mem, &self.ep.geo);
            if self
                .gate
                .scan(mem, geo, self.pos, oldest, due, &*self.ep.opts.liveness)
            {
                return Ok(());
            }
            let waiter = match waiter {
                Some(ref mut w) => w,
                None => match self.ep.waiter(wait) {
                    Some(w) => waiter.insert(w),
                    None => return Err(PushError::Full),
                },
            };
            let (pos, dead) = (self.pos, self.gate.dead());
            let ready = || gate::slowest(mem, geo, pos, dead).is_none_or(|s| oldest < s);
            let ep = &self.ep;
            match waiter.pause(mem, WaitWord::NotFull, ready, || ep.until_due()) {
                Pause::Retry => {}
                Pause::TimedOut => return Err(PushError::Timeout),
                Pause::Interrupted => return Err(PushError::Interrupted),
            }
        }
    }

    /// Writes the next position's slot under the seqlock and publishes it.
    fn write(&mut self, msg: &[u8]) -> Result<(), PushError> {
        let (mem, slots, pos) = (&self.ep.mem, &self.slots, self.pos);
        let stamp = slots.seq(mem, pos);
        // SYNC(stamp): the Release store orders the `tail` store of the previous message before
        // the busy stamp, so a reader that sees this stamp (Acquire) sees `tail >= pos`; the
        // Release fence orders the busy stamp before every payload store below, so a reader
        // whose copy saw any of them (its Acquire fence after the copy) sees the busy stamp or
        // a later one on its second check. Pairs with `Reader::verify`.
        stamp.store(stamp_busy(pos), Release);
        fence(Release);
        slots.len(mem, pos).store(msg.len() as u64, Relaxed);
        mem.copy_in(slots.payload(pos), msg);
        if mem.faulted() {
            // The copy went to a private zero page a peer truncated under us: never publish it
            // (the slot stays busy; readers wait, and see the writer's later errors).
            return Err(PushError::Corrupted(mem.truncation()));
        }
        // SYNC(publish): Release pairs with the readers' Acquire fence after their load of the
        // stamp (`Reader::poll`): the length and payload are visible to whoever sees `done`.
        stamp.store(stamp_done(pos), Release);
        self.pos = pos + 1;
        // SYNC(tail): Release pairs with the Acquire fence in `load_tail` (readers deciding
        // they are lapped or drained, joiners choosing a start).
        mem.header().producer.tail.store(self.pos, Release);
        self.ep.notify(WaitWord::NotEmpty);
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.ep.close();
    }
}
