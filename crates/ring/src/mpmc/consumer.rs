//! The consuming end of an MPMC ring, and its in-place read grant.

use std::time::Duration;

use super::claim::claim_position;
use super::recovery::{self, Resolution};
use super::{Slots, before};
use crate::endpoint::Endpoint;
use crate::error::{AttachError, Corruption, PopError, RingKind, Side};
use crate::geometry::{Geometry, Identity};
use crate::layout::{LEN_CANCELLED, SEQ_LOST};
use crate::mem::{RingMemory, WaitWord};
use crate::registry::{self, PeerState};
use crate::sync::Ordering::{Acquire, Relaxed, Release};
use crate::wait::{AttachOptions, Pause, Wait};

/// A consuming end of an MPMC ring. Each consumer holds one registration entry.
#[derive(Debug)]
pub struct Consumer {
    ep: Endpoint,
    slots: Slots,
}

/// What the slow path of an empty poll concluded.
enum Empty {
    /// A slot was recovered or published meanwhile: claim again.
    Retry,
    /// Nothing to read yet.
    Wait,
    /// Every producer is gone and everything they committed was read.
    Closed,
}

impl Consumer {
    /// Attaches as a consumer (see [`Producer::attach`](super::Producer::attach)).
    ///
    /// # Errors
    /// As [`Producer::attach`](super::Producer::attach).
    pub fn attach(memory: &RingMemory, opts: &AttachOptions) -> Result<Consumer, AttachError> {
        let liveness = opts.liveness.clone();
        let ep = Endpoint::attach(
            memory,
            RingKind::Mpmc,
            Side::Consumer,
            opts,
            &mut |mem, geo, index| {
                recovery::resolve_taken(mem, geo, Side::Consumer, index, &*liveness)
            },
        )?;
        let slots = Slots::new(&ep.geo);
        Ok(Consumer { ep, slots })
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

    /// An owned readiness handle of this consumer for a
    /// [`Select`](crate::select::Select): ready when a message is there or the producer
    /// side is gone. It borrows nothing, so `pop` stays callable while a select holds it.
    ///
    /// # Examples
    /// ```
    /// use ringway_ring::select::Select;
    /// let memory = ringway_ring::mpmc::heap(16, 8)?;
    /// let mut tx = ringway_ring::mpmc::Producer::attach(&memory, &Default::default())?;
    /// let mut rx = ringway_ring::mpmc::Consumer::attach(&memory, &Default::default())?;
    /// let mut sel = Select::new();
    /// let i = sel.add(rx.watch());
    /// tx.push(b"x")?;
    /// assert_eq!(sel.try_select()?.index(), i);
    /// let mut out = Vec::new();
    /// rx.pop(&mut out)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn watch(&self) -> crate::select::Watch {
        crate::select::Watch::mpmc_consumer(&self.ep)
    }

    /// Slots skipped because the producer that claimed them died before publishing.
    #[must_use]
    pub fn lost(&self) -> u64 {
        self.ep.mem.header().counters.lost.load(Relaxed)
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

    /// Whether every producer has left or died (probes liveness: not for a hot loop).
    /// Messages they committed may still be waiting.
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

    /// Copies the next message into `out` (replacing its contents), without blocking.
    ///
    /// # Errors
    /// [`PopError::Empty`]; [`PopError::Closed`]: every producer left or died and the ring
    /// is drained (a clean close is seen at once, a death by the slow-path checks that an
    /// empty ring runs once per liveness interval; it is reported until a producer attaches
    /// again, after which its messages are delivered); [`PopError::Corrupted`] (a slot with an
    /// impossible length: it is released, so the next call moves on).
    pub fn pop(&mut self, out: &mut Vec<u8>) -> Result<usize, PopError> {
        let (pos, len) = self.next(Wait::Try)?;
        self.take(pos, len, out)
    }

    /// Like [`pop`](Consumer::pop), waiting up to `timeout` for a message.
    ///
    /// # Errors
    /// [`PopError::Timeout`], [`PopError::Closed`], [`PopError::Corrupted`].
    pub fn pop_timeout(&mut self, out: &mut Vec<u8>, timeout: Duration) -> Result<usize, PopError> {
        let (pos, len) = self.next(Wait::For(timeout))?;
        self.take(pos, len, out)
    }

    /// Like [`pop`](Consumer::pop), waiting as long as a producer is alive.
    ///
    /// # Errors
    /// [`PopError::Closed`], [`PopError::Corrupted`].
    pub fn pop_blocking(&mut self, out: &mut Vec<u8>) -> Result<usize, PopError> {
        let (pos, len) = self.next(Wait::Forever)?;
        self.take(pos, len, out)
    }

    /// Copies the next message into `out` and releases its slot, waiting as `wait` allows:
    /// the one entry point of [`pop`](Consumer::pop), [`pop_timeout`](Consumer::pop_timeout)
    /// and [`pop_blocking`](Consumer::pop_blocking). Returns the message length.
    ///
    /// # Errors
    /// As those: [`PopError::Empty`] for [`Wait::Try`], [`PopError::Timeout`] for a deadline.
    #[inline]
    pub fn pop_with(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<usize, PopError> {
        let (pos, len) = self.next(wait)?;
        self.take(pos, len, out)
    }

    /// Claims the next message to read in place, waiting as `wait` allows: the one entry
    /// point of the `peek` calls.
    ///
    /// # Errors
    /// As [`pop_with`](Consumer::pop_with).
    pub fn peek_with(&mut self, wait: Wait) -> Result<SlotReadGrant<'_>, PopError> {
        self.grant(wait)
    }

    /// Claims the next message to read in place, without blocking. The slot is released when
    /// the grant is released or dropped.
    ///
    /// # Errors
    /// As [`pop`](Consumer::pop).
    pub fn peek(&mut self) -> Result<SlotReadGrant<'_>, PopError> {
        self.grant(Wait::Try)
    }

    /// Like [`peek`](Consumer::peek), waiting up to `timeout` for a message.
    ///
    /// # Errors
    /// As [`pop_timeout`](Consumer::pop_timeout).
    pub fn peek_timeout(&mut self, timeout: Duration) -> Result<SlotReadGrant<'_>, PopError> {
        self.grant(Wait::For(timeout))
    }

    /// Like [`peek`](Consumer::peek), waiting as long as a producer is alive.
    ///
    /// # Errors
    /// As [`pop_blocking`](Consumer::pop_blocking).
    pub fn peek_blocking(&mut self) -> Result<SlotReadGrant<'_>, PopError> {
        self.grant(Wait::Forever)
    }

    /// Skips the next slot if the producer that claimed it died before publishing it. Empty
    /// polls do this once per liveness interval from every call; call it to force the check.
    ///
    /// # Errors
    /// [`PopError::Corrupted`] if the slot is stuck with no claimant in the table.
    pub fn recover(&mut self) -> Result<bool, PopError> {
        let head = self.ep.mem.header().consumer.head.load(Acquire);
        let found = recovery::resolve(
            &self.ep.mem,
            &self.ep.geo,
            &self.slots,
            Side::Producer,
            head,
            &*self.ep.opts.liveness,
            None,
        )
        .map_err(PopError::Corrupted)?;
        Ok(found == Resolution::Recovered)
    }

    fn grant(&mut self, wait: Wait) -> Result<SlotReadGrant<'_>, PopError> {
        let (pos, len) = self.next(wait)?;
        if self.ep.mem.faulted() {
            self.release(pos);
            return Err(self.truncated());
        }
        Ok(SlotReadGrant {
            consumer: self,
            pos,
            len,
        })
    }

    fn take(&mut self, pos: u64, len: usize, out: &mut Vec<u8>) -> Result<usize, PopError> {
        let src = self.slots.payload(pos);
        out.clear();
        #[cfg(not(ringway_loom))]
        {
            out.reserve(len);
            // SAFETY: `reserve` made room for `len` bytes in `out`'s private buffer, which
            // cannot overlap the ring; `copy_out_raw` checks the source range; every byte
            // pattern is a valid u8.
            unsafe {
                self.ep.mem.copy_out_raw(src, out.as_mut_ptr(), len);
                out.set_len(len);
            }
        }
        #[cfg(ringway_loom)]
        {
            out.resize(len, 0);
            self.ep.mem.copy_out(src, out);
        }
        self.release(pos);
        // A copy that touched a page a peer truncated away read zeros: never deliver it.
        if self.ep.mem.faulted() {
            out.clear();
            return Err(self.truncated());
        }
        Ok(len)
    }

    fn truncated(&self) -> PopError {
        PopError::Corrupted(self.ep.mem.truncation())
    }

    fn release(&self, pos: u64) {
        // SYNC(free): Release pairs with the producers' Acquire load of `seq` in
        // `claim_position`: our reads of the slot happen before the next lap's writes.
        self.slots
            .seq(&self.ep.mem, pos)
            .store(pos.wrapping_add(self.slots.cap), Release);
        self.ep.notify(WaitWord::NotFull);
    }

    /// The one entry point of every pop: claims the next real message, waiting as `wait`
    /// allows. Skips (and releases) lost and cancelled slots, releases and reports a slot
    /// with an impossible length, and runs the slow path whenever the ring is found empty.
    fn next(&mut self, wait: Wait) -> Result<(u64, usize), PopError> {
        let mut waiter = None;
        loop {
            if let Some(found) = self.poll()? {
                return Ok(found);
            }
            let waiter = match waiter {
                Some(ref mut w) => w,
                None => match self.ep.waiter(wait) {
                    Some(w) => waiter.insert(w),
                    None => return Err(PopError::Empty),
                },
            };
            let (mem, geo, slots) = (&self.ep.mem, &self.ep.geo, self.slots);
            // As in the SPSC consumer: a slot wider than a cache line spills its payload into
            // the next one; keep that line fresh while waiting so it does not cost a second,
            // dependent transfer when the slot is published. A prefetch, not a load: the
            // producer may be writing that line.
            let spill = (slots.stride > 64)
                .then(|| slots.slot(mem.header().consumer.head.load(Relaxed)) + 64);
            // The producer table is scanned on the first call of each pause and every
            // CLOSE_EVERY-th spin after it (see `super::CLOSE_EVERY`).
            let calls = core::cell::Cell::new(0u32);
            let ready = || {
                if let Some(line) = spill {
                    mem.prefetch(line);
                }
                let pos = mem.header().consumer.head.load(Relaxed);
                slots.seq(mem, pos).load(Relaxed) & !SEQ_LOST == pos.wrapping_add(1)
                    || super::closed_check_due(&calls)
                        && registry::side_closed(mem, geo, Side::Producer)
            };
            let ep = &self.ep;
            match waiter.pause(mem, WaitWord::NotEmpty, ready, || ep.until_due()) {
                Pause::Retry => {}
                Pause::TimedOut => return Err(PopError::Timeout),
                Pause::Interrupted => return Err(PopError::Interrupted),
            }
        }
    }

    /// Claims the next real message without waiting: `None` if there is none now (after the
    /// slow path, when due). Each turn consumes, recovers or gives up, and the turns are
    /// bounded by the capacity, even against a peer that marks every slot lost, so a waiting
    /// caller gets back to its deadline.
    fn poll(&mut self) -> Result<Option<(u64, usize)>, PopError> {
        for _ in 0..self.slots.cap + 2 {
            let mem = &self.ep.mem;
            let claimed = claim_position(
                mem,
                &self.slots,
                &mem.header().consumer.head,
                &mem.entry(self.ep.reg.index).claim,
                1,
            )
            .map_err(PopError::Corrupted)?;
            if let Some((pos, seq)) = claimed {
                let len = self.slots.len(mem, pos).load(Relaxed);
                if seq & SEQ_LOST != 0 || len == LEN_CANCELLED {
                    self.release(pos);
                    continue;
                }
                if len > self.slots.slot_size {
                    self.release(pos);
                    return Err(PopError::Corrupted(Corruption::new(
                        "an MPMC slot length must not exceed slot_size",
                        len,
                        self.slots.slot_size,
                    )));
                }
                return Ok(Some((pos, len as usize)));
            }
            match self.empty()? {
                Empty::Retry => {}
                Empty::Closed => return Err(PopError::Closed),
                Empty::Wait => return Ok(None),
            }
        }
        Ok(None)
    }

    /// The slow path of an empty poll, shared by every pop. When the checks are due: the
    /// integrity checks, and the recovery of the next slot if a producer that died before
    /// publishing holds it (whether or not other producers live: a live one cannot move the
    /// ring past a stuck slot). When every producer is gone: recovery of what they left
    /// claimed, so the drain can finish, then `Closed`.
    fn empty(&mut self) -> Result<Empty, PopError> {
        let due = self.ep.due();
        // A truncation fault in this process is permanent; seeing it costs one load.
        if due || self.ep.mem.faulted() {
            self.ep.check_integrity().map_err(PopError::Corrupted)?;
        }
        let gone = self.ep.peer_gone(due);
        if !due && !gone {
            return Ok(Empty::Wait);
        }
        if self.recover()? {
            return Ok(Empty::Retry);
        }
        if !gone {
            return Ok(Empty::Wait);
        }
        let mem = &self.ep.mem;
        let head = mem.header().consumer.head.load(Acquire);
        let tail = mem.header().producer.tail.load(Acquire);
        if !before(head, tail) {
            return Ok(Empty::Closed);
        }
        // Claimed slots remain. If the one at `head` was published since we looked, claim it;
        // otherwise a claimant we believe gone still holds it (a live one would have kept
        // `gone` false): wait for the next round.
        let seq = self.slots.seq(mem, head).load(Acquire);
        if seq & !SEQ_LOST == head.wrapping_add(1) {
            return Ok(Empty::Retry);
        }
        Ok(Empty::Wait)
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.ep.close();
    }
}

/// A claimed MPMC message, read in place; its slot is released when the grant is released or
/// dropped.
#[derive(Debug)]
pub struct SlotReadGrant<'a> {
    consumer: &'a mut Consumer,
    pos: u64,
    len: usize,
}

impl SlotReadGrant<'_> {
    /// The message length.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the message is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A pointer to the message, valid for reads of [`len`](SlotReadGrant::len) bytes while
    /// the grant lives.
    #[cfg(not(ringway_loom))]
    #[must_use]
    pub fn as_ptr(&self) -> *const u8 {
        let c = &self.consumer;
        c.ep.mem.ptr(c.slots.payload(self.pos), self.len)
    }

    /// The message as a slice, without copying.
    ///
    /// # Safety
    /// No other process may write the slot while the slice lives. A correct ringway peer never
    /// does (the slot is ours until released); a buggy or hostile one could, which for a
    /// `&[u8]` is undefined behaviour. Use [`copy_to`](SlotReadGrant::copy_to) otherwise.
    #[cfg(not(ringway_loom))]
    #[must_use]
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the range is inside the ring (checked by `ptr`), its bytes are initialised
        // (all bytes of a mapping are), and the caller promises no concurrent writes.
        unsafe { core::slice::from_raw_parts(self.as_ptr(), self.len) }
    }

    /// Copies the first `min(len, dst.len())` bytes into `dst`; returns how many.
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        let n = self.len.min(dst.len());
        let c = &self.consumer;
        c.ep.mem.copy_out(c.slots.payload(self.pos), &mut dst[..n]);
        n
    }

    /// Copies the message into a new vector.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0; self.len];
        self.copy_to(&mut out);
        out
    }

    /// Releases the slot (the same as dropping the grant).
    pub fn release(self) {}
}

impl Drop for SlotReadGrant<'_> {
    fn drop(&mut self) {
        self.consumer.release(self.pos);
    }
}
