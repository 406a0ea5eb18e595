//! The producing end of an MPMC ring, and its in-place slot grant.

use std::time::Duration;

use super::Slots;
use super::claim::claim_position;
use super::recovery::{self, Resolution};
use crate::endpoint::Endpoint;
use crate::error::{AttachError, PushError, RingKind, Side};
use crate::geometry::{Geometry, Identity};
use crate::layout::{LEN_CANCELLED, SEQ_LOST};
use crate::mem::{RingMemory, WaitWord};
use crate::registry::{self, PeerState};
use crate::sync::Ordering::{Acquire, Relaxed, Release};
use crate::wait::{AttachOptions, Pause, Wait};

/// A producing end of an MPMC ring. Each producer holds one registration entry.
#[derive(Debug)]
pub struct Producer {
    ep: Endpoint,
    slots: Slots,
    /// Slots published by `push_deferred_with` since the last wake check.
    unwoken: bool,
}

impl Producer {
    /// Attaches as a producer, taking a free registration entry, or one whose process left or
    /// died (after recovering any slot that process held).
    ///
    /// # Errors
    /// Any [`AttachError`]; [`AttachError::TableFull`] if `max_producers` live producers are
    /// attached.
    pub fn attach(memory: &RingMemory, opts: &AttachOptions) -> Result<Producer, AttachError> {
        let liveness = opts.liveness.clone();
        let ep = Endpoint::attach(
            memory,
            RingKind::Mpmc,
            Side::Producer,
            opts,
            &mut |mem, geo, index| {
                recovery::resolve_taken(mem, geo, Side::Producer, index, &*liveness)
            },
        )?;
        let slots = Slots::new(&ep.geo);
        Ok(Producer {
            ep,
            slots,
            unwoken: false,
        })
    }

    /// The ring's geometry, as read at attach time.
    #[must_use]
    pub fn geometry(&self) -> &Geometry {
        &self.ep.geo
    }

    /// The fingerprint and label the creator stored in the header (read at attach time).
    #[must_use]
    pub fn identity(&self) -> &Identity {
        &self.ep.identity
    }

    /// An owned readiness handle of this producer for a
    /// [`Select`](crate::select::Select): ready when the next slot is free or every
    /// consumer is gone. It borrows nothing, so `push` stays callable while a select holds
    /// it. Other producers may take the free slot first: readiness is a hint.
    ///
    /// # Examples
    /// ```
    /// use ringway_ring::select::Select;
    /// let memory = ringway_ring::mpmc::heap(2, 8)?;
    /// let mut tx = ringway_ring::mpmc::Producer::attach(&memory, &Default::default())?;
    /// let mut rx = ringway_ring::mpmc::Consumer::attach(&memory, &Default::default())?;
    /// let mut sel = Select::new();
    /// let i = sel.add(tx.watch());
    /// tx.push(b"a")?;
    /// tx.push(b"b")?;
    /// assert!(sel.try_select().is_err()); // full
    /// let mut out = Vec::new();
    /// rx.pop(&mut out)?;
    /// assert_eq!(sel.try_select()?.index(), i);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn watch(&self) -> crate::select::Watch {
        crate::select::Watch::mpmc_producer(&self.ep)
    }

    /// Slots reclaimed from consumers that died holding them (their messages were lost).
    #[must_use]
    pub fn abandoned(&self) -> u64 {
        self.ep.mem.header().counters.abandoned.load(Relaxed)
    }

    /// The other side: not attached yet, attached and alive, left, or died (probes
    /// liveness: not for a hot loop).
    #[must_use]
    pub fn peer_state(&self) -> PeerState {
        self.ep.peer_state()
    }

    /// How many times an endpoint of the other side has attached, reattachments included.
    #[must_use]
    pub fn peer_attachments(&self) -> u64 {
        self.ep.peer_attachments()
    }

    /// Whether every consumer has left or died (probes liveness: not for a hot loop).
    #[must_use]
    pub fn is_disconnected(&self) -> bool {
        self.ep.is_disconnected()
    }

    /// Slots claimed by producers and not yet claimed by consumers (messages in the ring,
    /// counting ones still being written). At most the capacity.
    #[must_use]
    pub fn queued(&self) -> u64 {
        super::queued(&self.ep)
    }

    /// Copies `msg` into a slot and publishes it, without blocking.
    ///
    /// # Errors
    /// [`PushError::Full`]; [`PushError::Closed`]: every consumer left or died (a clean
    /// close is seen at once, a death by the slow-path checks that a full ring runs once per
    /// liveness interval; once reported it stays so until a consumer attaches);
    /// [`PushError::TooLarge`]; [`PushError::Corrupted`].
    pub fn push(&mut self, msg: &[u8]) -> Result<(), PushError> {
        self.send(msg, Wait::Try, false)
    }

    /// Like [`push`](Producer::push), waiting up to `timeout` for a free slot.
    ///
    /// # Errors
    /// [`PushError::Timeout`], [`PushError::Closed`], [`PushError::TooLarge`],
    /// [`PushError::Corrupted`].
    pub fn push_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), PushError> {
        self.send(msg, Wait::For(timeout), false)
    }

    /// Like [`push`](Producer::push), waiting for a free slot as long as a consumer is alive.
    ///
    /// # Errors
    /// [`PushError::Closed`], [`PushError::TooLarge`], [`PushError::Corrupted`].
    pub fn push_blocking(&mut self, msg: &[u8]) -> Result<(), PushError> {
        self.send(msg, Wait::Forever, false)
    }

    /// Copies `msg` into a slot and publishes it, waiting for a free slot as `wait` allows:
    /// the one entry point of [`push`](Producer::push), [`push_timeout`](Producer::push_timeout)
    /// and [`push_blocking`](Producer::push_blocking).
    ///
    /// # Errors
    /// As those: [`PushError::Full`] for [`Wait::Try`], [`PushError::Timeout`] for a deadline.
    #[inline]
    pub fn push_with(&mut self, msg: &[u8], wait: Wait) -> Result<(), PushError> {
        self.send(msg, wait, false)
    }

    /// Like [`push_with`](Producer::push_with), but without the wake: the slot is published
    /// at once (each MPMC slot is published on its own), and a consumer asleep on an empty
    /// ring is woken by the next [`flush`](Producer::flush), by a push that must wait for
    /// room, or when this producer drops. A burst of deferred pushes and one flush costs one
    /// wake check instead of one per message.
    ///
    /// # Errors
    /// As [`push_with`](Producer::push_with).
    #[inline]
    pub fn push_deferred_with(&mut self, msg: &[u8], wait: Wait) -> Result<(), PushError> {
        self.send(msg, wait, true)
    }

    /// Wakes consumers asleep on an empty ring if a deferred push published since the last
    /// wake check.
    #[inline]
    pub fn flush(&mut self) {
        if self.unwoken {
            self.unwoken = false;
            self.ep.notify(WaitWord::NotEmpty);
        }
    }

    /// Claims a slot for up to `len` bytes, waiting as `wait` allows: the one entry point of
    /// the `reserve` calls.
    ///
    /// # Errors
    /// As [`push_with`](Producer::push_with).
    pub fn reserve_with(&mut self, len: usize, wait: Wait) -> Result<SlotGrant<'_>, PushError> {
        self.grant(len, wait)
    }

    /// Claims a slot to be written in place, without blocking. The slot is published by
    /// [`SlotGrant::commit`]; dropping the grant publishes a cancelled slot that consumers
    /// skip.
    ///
    /// # Errors
    /// As [`push`](Producer::push); `len` is the most the grant may commit.
    pub fn reserve(&mut self, len: usize) -> Result<SlotGrant<'_>, PushError> {
        self.grant(len, Wait::Try)
    }

    /// Like [`reserve`](Producer::reserve), waiting up to `timeout` for a free slot.
    ///
    /// # Errors
    /// As [`push_timeout`](Producer::push_timeout).
    pub fn reserve_timeout(
        &mut self,
        len: usize,
        timeout: Duration,
    ) -> Result<SlotGrant<'_>, PushError> {
        self.grant(len, Wait::For(timeout))
    }

    /// Like [`reserve`](Producer::reserve), waiting as long as a consumer is alive.
    ///
    /// # Errors
    /// As [`push_blocking`](Producer::push_blocking).
    pub fn reserve_blocking(&mut self, len: usize) -> Result<SlotGrant<'_>, PushError> {
        self.grant(len, Wait::Forever)
    }

    /// Recovers the next slot if a dead consumer holds it. Full rings do this once per
    /// liveness interval from every call; call it to force the check.
    ///
    /// # Errors
    /// [`PushError::Corrupted`] if the slot is stuck with no claimant in the table.
    pub fn recover(&mut self) -> Result<bool, PushError> {
        let tail = self.ep.mem.header().producer.tail.load(Acquire);
        // The slot for `tail` holds the message of `tail - capacity` until a consumer releases it.
        let pos = tail.wrapping_sub(self.slots.cap);
        let found = recovery::resolve(
            &self.ep.mem,
            &self.ep.geo,
            &self.slots,
            Side::Consumer,
            pos,
            &*self.ep.opts.liveness,
            None,
        )
        .map_err(PushError::Corrupted)?;
        Ok(found == Resolution::Recovered)
    }

    fn send(&mut self, msg: &[u8], wait: Wait, deferred: bool) -> Result<(), PushError> {
        let pos = self.acquire(msg.len(), wait)?;
        let mem = &self.ep.mem;
        self.slots.len(mem, pos).store(msg.len() as u64, Relaxed);
        mem.copy_in(self.slots.payload(pos), msg);
        if mem.faulted() {
            // The copy touched a page a peer truncated away: the message went to a private
            // zero page nobody else sees. Publish the slot as cancelled so the ring moves on.
            self.slots.len(mem, pos).store(LEN_CANCELLED, Relaxed);
            let truncation = mem.truncation();
            self.publish(pos, false);
            return Err(PushError::Corrupted(truncation));
        }
        self.publish(pos, deferred);
        Ok(())
    }

    fn grant(&mut self, len: usize, wait: Wait) -> Result<SlotGrant<'_>, PushError> {
        let pos = self.acquire(len, wait)?;
        Ok(SlotGrant {
            producer: self,
            pos,
            len,
            done: false,
        })
    }

    /// The one entry point of every push: claims a slot for `len` bytes, waiting as `wait`
    /// allows, running the slow-path checks when the ring is full and they are due.
    fn acquire(&mut self, len: usize, wait: Wait) -> Result<u64, PushError> {
        if len as u64 > self.slots.slot_size {
            return Err(PushError::TooLarge {
                len,
                max: self.slots.slot_size as usize,
            });
        }
        // Once every consumer is known gone, stay Closed (one load per consumer entry) until
        // one attaches.
        if self.ep.known_gone() && self.ep.peer_gone(false) {
            return Err(PushError::Closed);
        }
        let mut waiter = None;
        loop {
            let mem = &self.ep.mem;
            let claimed = claim_position(
                mem,
                &self.slots,
                &mem.header().producer.tail,
                &mem.entry(self.ep.reg.index).claim,
                0,
            )
            .map_err(PushError::Corrupted)?;
            if let Some((pos, _)) = claimed {
                return Ok(pos);
            }
            // Whatever the deferred pushes published must wake its consumers before this
            // call waits for them to make room.
            self.flush();
            if self.full()? {
                continue;
            }
            let waiter = match waiter {
                Some(ref mut w) => w,
                None => match self.ep.waiter(wait) {
                    Some(w) => waiter.insert(w),
                    None => return Err(PushError::Full),
                },
            };
            let (mem, geo, slots) = (&self.ep.mem, &self.ep.geo, self.slots);
            // As in the consumer: the consumer table on the first call and every
            // CLOSE_EVERY-th spin.
            let calls = core::cell::Cell::new(0u32);
            let ready = || {
                let pos = mem.header().producer.tail.load(Relaxed);
                slots.seq(mem, pos).load(Relaxed) & !SEQ_LOST == pos
                    || super::closed_check_due(&calls)
                        && registry::side_closed(mem, geo, Side::Consumer)
            };
            let ep = &self.ep;
            match waiter.pause(mem, WaitWord::NotFull, ready, || ep.until_due()) {
                Pause::Retry => {}
                Pause::TimedOut => return Err(PushError::Timeout),
                Pause::Interrupted => return Err(PushError::Interrupted),
            }
        }
    }

    /// The slow path of a full ring, shared by every push: when due, the integrity checks
    /// and the recovery of a slot a dead consumer holds; always, whether every consumer is
    /// gone. Returns `true` if a slot was recovered (try again at once).
    fn full(&mut self) -> Result<bool, PushError> {
        let due = self.ep.due();
        // A truncation fault in this process is permanent; seeing it costs one load.
        if due || self.ep.mem.faulted() {
            self.ep.check_integrity().map_err(PushError::Corrupted)?;
        }
        if self.ep.peer_gone(due) {
            return Err(PushError::Closed);
        }
        Ok(due && self.recover()?)
    }

    fn publish(&mut self, pos: u64, deferred: bool) {
        // SYNC(publish): Release pairs with the consumers' Acquire load of `seq` in
        // `claim_position`: the length and payload are visible to whoever claims `pos`.
        self.slots
            .seq(&self.ep.mem, pos)
            .store(pos.wrapping_add(1), Release);
        if deferred {
            self.unwoken = true;
        } else {
            self.unwoken = false;
            self.ep.notify(WaitWord::NotEmpty);
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.flush();
        self.ep.close();
    }
}

/// A claimed MPMC slot, to be written in place and committed.
///
/// Dropping it without committing publishes a cancelled slot (consumers skip it), because a
/// claimed slot must be published for the ring to move on. Forgetting it (`mem::forget`)
/// leaves the slot claimed: consumers wait for it until this producer leaves or dies, then
/// skip it (counted in [`Consumer::lost`](super::Consumer::lost)).
#[derive(Debug)]
#[must_use = "a slot grant publishes a cancelled slot unless committed"]
pub struct SlotGrant<'a> {
    producer: &'a mut Producer,
    pos: u64,
    len: usize,
    done: bool,
}

impl SlotGrant<'_> {
    /// The most bytes the grant may commit.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the grant holds zero bytes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A pointer to the slot's payload, valid for writes of [`len`](SlotGrant::len) bytes
    /// until the grant is committed or dropped. Write through the pointer, never through a
    /// `&mut [u8]` made from it: the bytes are shared memory.
    #[cfg(not(ringway_loom))]
    #[must_use]
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        let p = &self.producer;
        p.ep.mem.ptr(p.slots.payload(self.pos), self.len)
    }

    /// Copies `bytes` into the slot at `offset`.
    ///
    /// # Panics
    /// If `offset + bytes.len()` exceeds the grant.
    pub fn write(&mut self, offset: usize, bytes: &[u8]) {
        assert!(
            offset <= self.len && bytes.len() <= self.len - offset,
            "write of {} bytes at {offset} overflows a grant of {}",
            bytes.len(),
            self.len
        );
        let p = &self.producer;
        p.ep.mem
            .copy_in(p.slots.payload(self.pos) + offset as u64, bytes);
    }

    /// Publishes the slot with all [`len`](SlotGrant::len) bytes.
    pub fn commit(self) {
        let len = self.len;
        self.commit_partial(len);
    }

    /// Publishes the slot with its first `len` bytes.
    ///
    /// # Panics
    /// If `len` exceeds the grant.
    pub fn commit_partial(mut self, len: usize) {
        assert!(
            len <= self.len,
            "commit of {len} bytes from a grant of {}",
            self.len
        );
        self.finish(len as u64);
    }

    fn finish(&mut self, len: u64) {
        if !self.done {
            self.done = true;
            let p = &mut *self.producer;
            // A grant written over a page a peer truncated away holds zeros nobody else sees:
            // publish it as cancelled rather than as a message.
            let len = if p.ep.mem.faulted() {
                LEN_CANCELLED
            } else {
                len
            };
            p.slots.len(&p.ep.mem, self.pos).store(len, Relaxed);
            p.publish(self.pos, false);
        }
    }
}

impl Drop for SlotGrant<'_> {
    fn drop(&mut self) {
        self.finish(LEN_CANCELLED);
    }
}
