//! A reading end of a broadcast ring, and its in-place read grant.

use std::time::Duration;

use super::{join, load_tail};
use crate::endpoint::Endpoint;
use crate::error::{AttachError, Corruption, PopError, RingKind, Side};
use crate::geometry::{Geometry, Identity, Policy};
use crate::layout::{BROADCAST_MAX_POSITION, STAMP_BUSY, stamp_done};
use crate::mem::{RingMemory, WaitWord};
use crate::mpmc::Slots;
use crate::registry::{self, PeerState};
use crate::sync::Ordering::{Acquire, Relaxed, Release};
use crate::sync::fence;
use crate::wait::{AttachOptions, Pause, Wait};

/// A reading end of a broadcast ring: it reads every message the writer publishes after it
/// attached (and the ring's history), in order, each exactly once, or learns how many it
/// missed ([`PopError::Lagged`]).
///
/// # Invariants
/// `cursor` is the position of the next message to read, below 2^62; the entry's `cursor`
/// field holds the same value (this reader is the only one that writes it).
#[derive(Debug)]
pub struct Reader {
    ep: Endpoint,
    slots: Slots,
    cursor: u64,
    lagged: u64,
}

/// What the stamp of the slot at the cursor says.
enum Stamp {
    /// The message at the cursor is complete.
    Ready,
    /// Not written yet (a stamp of an earlier lap, never written, or being written).
    NotYet,
    /// Overwritten by a later lap: this reader was lapped.
    Lapped,
}

impl Reader {
    /// Attaches as a reader, starting with the next message published, or with the newest
    /// `history` messages if the ring keeps history.
    ///
    /// # Errors
    /// Any [`AttachError`]; [`AttachError::TableFull`] if `max_readers` live readers are
    /// attached.
    pub fn attach(memory: &RingMemory, opts: &AttachOptions) -> Result<Reader, AttachError> {
        let mut proposed = (0, 0);
        let ep = Endpoint::attach(
            memory,
            RingKind::Broadcast,
            Side::Consumer,
            opts,
            &mut |mem, geo, index| {
                proposed = join::propose(mem, geo, index);
                true
            },
        )?;
        let (start, tail) = proposed;
        let cursor = join::confirm(&ep.mem, &ep.geo, ep.reg.index, start, tail);
        let slots = Slots::new(&ep.geo);
        Ok(Reader {
            ep,
            slots,
            cursor,
            lagged: 0,
        })
    }

    /// A readiness handle for [`Select`](crate::select::Select) and async parking: ready
    /// when a message is complete at this reader's cursor (or it was lapped, or the writer
    /// has gone and nothing is left to read).
    #[must_use]
    pub fn watch(&self) -> crate::select::Watch {
        crate::select::Watch::broadcast_reader(&self.ep)
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

    /// The position of the next message this reader reads.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.cursor
    }

    /// Messages this reader missed because the writer overwrote them, in total.
    #[must_use]
    pub fn lagged(&self) -> u64 {
        self.lagged
    }

    /// Messages published and not yet read by this reader, as far as the published `tail`
    /// tells (at most the capacity).
    #[must_use]
    pub fn pending(&self) -> u64 {
        join::tail(&self.ep.mem)
            .saturating_sub(self.cursor)
            .min(self.slots.cap)
    }

    /// The writer: not attached yet, attached and alive, left, or died (probes liveness: not
    /// for a hot loop).
    #[must_use]
    pub fn peer_state(&self) -> PeerState {
        self.ep.peer_state()
    }

    /// Whether the writer has left or died (probes liveness: not for a hot loop). Messages it
    /// published may still be waiting.
    #[must_use]
    pub fn is_disconnected(&self) -> bool {
        self.ep.is_disconnected()
    }

    /// Makes the ring's data area read-only in this process, so that nothing this process
    /// does can write another party's messages. Returns an error, and changes nothing, if the
    /// memory is not page aligned or the mapping refuses (a heap buffer, huge pages whose size
    /// does not divide the data offset).
    ///
    /// # Errors
    /// The `mprotect` error, or [`std::io::ErrorKind::InvalidInput`] for unaligned memory.
    ///
    /// # Safety
    /// The memory must be a mapping of this process's own (as from `ringway-region`), and
    /// nothing in this process may write its data area, or the rest of the data area's last
    /// page, afterwards: no [`Writer`](super::Writer) attached in this process through the
    /// same mapping (it would fault), and no other use of those addresses.
    #[cfg(not(ringway_loom))]
    pub unsafe fn protect_data(&self) -> std::io::Result<()> {
        let geo = &self.ep.geo;
        // SAFETY: the caller's contract is the one `protect_read_only` needs; the range is the
        // data area of the attach-time geometry, which lies inside the memory.
        unsafe {
            self.ep
                .mem
                .protect_read_only(geo.data_offset, geo.total_len - geo.data_offset)
        }
    }

    /// Copies the next message into `out` (replacing its contents), without blocking.
    ///
    /// # Errors
    /// [`PopError::Empty`]; [`PopError::Lagged`]`(n)`: the writer overwrote the next `n`
    /// messages before this reader read them; the next call returns the oldest message still
    /// in the ring; [`PopError::Closed`]: the writer left or died and everything it published
    /// was read (until a writer attaches again); [`PopError::Corrupted`].
    pub fn pop(&mut self, out: &mut Vec<u8>) -> Result<usize, PopError> {
        self.pop_with(out, Wait::Try)
    }

    /// Like [`pop`](Reader::pop), waiting up to `timeout` for a message.
    ///
    /// # Errors
    /// [`PopError::Timeout`], [`PopError::Interrupted`], [`PopError::Lagged`],
    /// [`PopError::Closed`], [`PopError::Corrupted`].
    pub fn pop_timeout(&mut self, out: &mut Vec<u8>, timeout: Duration) -> Result<usize, PopError> {
        self.pop_with(out, Wait::For(timeout))
    }

    /// Like [`pop`](Reader::pop), waiting as long as the writer is there.
    ///
    /// # Errors
    /// [`PopError::Interrupted`], [`PopError::Lagged`], [`PopError::Closed`],
    /// [`PopError::Corrupted`].
    pub fn pop_blocking(&mut self, out: &mut Vec<u8>) -> Result<usize, PopError> {
        self.pop_with(out, Wait::Forever)
    }

    /// Copies the next message into `out`, waiting as `wait` allows: the one entry point of
    /// [`pop`](Reader::pop), [`pop_timeout`](Reader::pop_timeout) and
    /// [`pop_blocking`](Reader::pop_blocking). Returns the message length.
    ///
    /// The copy is checked after it is made: if the writer started overwriting the slot
    /// meanwhile, the copy is discarded and the call reports [`PopError::Lagged`].
    ///
    /// # Errors
    /// As those: [`PopError::Empty`] for [`Wait::Try`], [`PopError::Timeout`] for a deadline.
    pub fn pop_with(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<usize, PopError> {
        self.next(wait)?;
        let pos = self.cursor;
        let len = self.slots.len(&self.ep.mem, pos).load(Relaxed);
        let n = len.min(self.slots.slot_size) as usize;
        out.clear();
        #[cfg(not(ringway_loom))]
        {
            out.reserve(n);
            // SAFETY: `reserve` made room for `n` bytes in `out`'s private buffer, which
            // cannot overlap the ring; `copy_out_raw` checks the source range (`n` is at most
            // the slot size); every byte pattern is a valid u8.
            unsafe {
                self.ep
                    .mem
                    .copy_out_raw(self.slots.payload(pos), out.as_mut_ptr(), n);
                out.set_len(n);
            }
        }
        #[cfg(ringway_loom)]
        {
            out.resize(n, 0);
            self.ep.mem.copy_out(self.slots.payload(pos), out);
        }
        if let Err(e) = self.finish(pos, len) {
            out.clear();
            return Err(e);
        }
        Ok(n)
    }

    /// Claims the next message to read in place, waiting as `wait` allows. Under the block
    /// policy the writer does not overwrite it while the grant lives; under the overwrite
    /// policy it may, which [`ReadGrant::release`] reports.
    ///
    /// # Errors
    /// As [`pop_with`](Reader::pop_with).
    pub fn peek_with(&mut self, wait: Wait) -> Result<ReadGrant<'_>, PopError> {
        self.next(wait)?;
        let pos = self.cursor;
        let len = self.slots.len(&self.ep.mem, pos).load(Relaxed);
        if len > self.slots.slot_size {
            // `finish` reports the lap or the bad length, and moves past the slot.
            let bad = Corruption::new(
                "a broadcast slot length must not exceed slot_size",
                len,
                self.slots.slot_size,
            );
            return Err(self
                .finish(pos, len)
                .err()
                .unwrap_or(PopError::Corrupted(bad)));
        }
        Ok(ReadGrant {
            reader: self,
            pos,
            len: len as usize,
            done: false,
        })
    }

    /// Claims the next message to read in place, without blocking (see
    /// [`peek_with`](Reader::peek_with)).
    ///
    /// # Errors
    /// As [`pop`](Reader::pop).
    pub fn peek(&mut self) -> Result<ReadGrant<'_>, PopError> {
        self.peek_with(Wait::Try)
    }

    /// Like [`peek`](Reader::peek), waiting up to `timeout` for a message.
    ///
    /// # Errors
    /// As [`pop_timeout`](Reader::pop_timeout).
    pub fn peek_timeout(&mut self, timeout: Duration) -> Result<ReadGrant<'_>, PopError> {
        self.peek_with(Wait::For(timeout))
    }

    /// Like [`peek`](Reader::peek), waiting as long as the writer is there.
    ///
    /// # Errors
    /// As [`pop_blocking`](Reader::pop_blocking).
    pub fn peek_blocking(&mut self) -> Result<ReadGrant<'_>, PopError> {
        self.peek_with(Wait::Forever)
    }

    /// Whether the slot at `pos` still holds message `pos`: the seqlock's second check, made
    /// after a copy.
    fn intact(&self, pos: u64) -> bool {
        // SYNC(stamp): the Acquire fence after the copy pairs with the Release fence after the
        // writer's busy stamp: if the copy saw any byte of a later write, this load sees its
        // busy stamp (or a later one).
        fence(Acquire);
        self.slots.seq(&self.ep.mem, pos).load(Relaxed) == stamp_done(pos)
    }

    /// The end of a read of message `pos` whose `len` was read: the stamp check, then the
    /// length check, then the move to the next message.
    fn finish(&mut self, pos: u64, len: u64) -> Result<(), PopError> {
        if !self.intact(pos) {
            return Err(self.lapped());
        }
        self.advance(pos.wrapping_add(1));
        if len > self.slots.slot_size {
            return Err(PopError::Corrupted(Corruption::new(
                "a broadcast slot length must not exceed slot_size",
                len,
                self.slots.slot_size,
            )));
        }
        if self.ep.mem.faulted() {
            return Err(PopError::Corrupted(self.ep.mem.truncation()));
        }
        Ok(())
    }

    fn advance(&mut self, to: u64) {
        self.cursor = to;
        // SYNC(cursor): Release pairs with the writer's Acquire load in `gate::slowest`: our
        // reads of the slots before `to` happen before the writer overwrites them.
        self.ep
            .mem
            .entry(self.ep.reg.index)
            .cursor
            .store(to, Release);
        if self.ep.geo.policy == Policy::Block {
            self.ep.notify(WaitWord::NotFull);
        }
    }

    /// This reader was lapped: moves it to the oldest message still in the ring and says how
    /// many it skipped.
    fn lapped(&mut self) -> PopError {
        // SYNC(stamp): the fence makes the later stamp we saw (stored with Release after the
        // writer's `tail` store for that position) carry `tail` with it.
        fence(Acquire);
        let tail = load_tail(&self.ep.mem.header().producer.tail);
        let (c, cap) = (self.cursor, self.slots.cap);
        if tail >= BROADCAST_MAX_POSITION || tail < c + cap {
            return PopError::Corrupted(Corruption::new(
                "a broadcast slot was overwritten by a lap the writer's tail has not reached",
                tail,
                c + cap,
            ));
        }
        // The oldest message still there is `tail - cap`, unless the writer is overwriting it
        // right now; then the next read finds out and reports the one more it missed.
        let to = (tail - cap).max(c + 1);
        self.lagged += to - c;
        self.advance(to);
        PopError::Lagged(to - c)
    }

    fn stamp(&self, pos: u64) -> Result<Stamp, PopError> {
        let word = self.slots.seq(&self.ep.mem, pos).load(Relaxed);
        // SYNC(publish): pairs with the writer's Release store of `done` in `Writer::write`.
        // A load and a fence: the data area may be mapped read-only here.
        fence(Acquire);
        if word == stamp_done(pos) {
            return Ok(Stamp::Ready);
        }
        let Some(at) = (word & !STAMP_BUSY).checked_sub(1) else {
            return Ok(Stamp::NotYet); // never written
        };
        if (at ^ pos) & (self.slots.cap - 1) != 0 {
            return Err(PopError::Corrupted(Corruption::new(
                "a broadcast slot's stamp names a position of another slot",
                word,
                stamp_done(pos),
            )));
        }
        Ok(if pos < at {
            Stamp::Lapped
        } else {
            Stamp::NotYet
        })
    }

    /// Waits, as `wait` allows, until the message at the cursor is complete.
    fn next(&mut self, wait: Wait) -> Result<(), PopError> {
        let mut waiter = None;
        loop {
            if self.poll()? {
                return Ok(());
            }
            let waiter = match waiter {
                Some(ref mut w) => w,
                None => match self.ep.waiter(wait) {
                    Some(w) => waiter.insert(w),
                    None => return Err(PopError::Empty),
                },
            };
            let (mem, geo, c) = (&self.ep.mem, &self.ep.geo, self.cursor);
            // `>`, not `!=`: a stale (older) tail must not read as news, or the loop spins.
            let ready = || {
                mem.header().producer.tail.load(Relaxed) > c
                    || registry::side_closed(mem, geo, Side::Producer)
            };
            let ep = &self.ep;
            match waiter.pause(mem, WaitWord::NotEmpty, ready, || ep.until_due()) {
                Pause::Retry => {}
                Pause::TimedOut => return Err(PopError::Timeout),
                Pause::Interrupted => return Err(PopError::Interrupted),
            }
        }
    }

    /// Whether the message at the cursor is complete, without waiting; the slow path (when
    /// due, or once the writer is gone) when it is not.
    fn poll(&mut self) -> Result<bool, PopError> {
        match self.stamp(self.cursor)? {
            Stamp::Ready => return Ok(true),
            Stamp::Lapped => return Err(self.lapped()),
            Stamp::NotYet => {}
        }
        let due = self.ep.due();
        if due || self.ep.mem.faulted() {
            self.ep.check_integrity().map_err(PopError::Corrupted)?;
        }
        if !self.ep.peer_gone(due) {
            return Ok(false);
        }
        // The writer left or died. `tail` is stored after each message is complete, so what
        // is before it is readable, and a message it died writing (at `tail`) is not.
        let tail = join::tail(&self.ep.mem);
        if self.cursor >= tail {
            return Err(PopError::Closed);
        }
        match self.stamp(self.cursor)? {
            Stamp::Ready => Ok(true),
            Stamp::Lapped => Err(self.lapped()),
            Stamp::NotYet => Err(PopError::Corrupted(Corruption::new(
                "a broadcast position below the tail was never completed",
                self.cursor,
                tail,
            ))),
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.ep.close();
    }
}

/// A broadcast message read in place. Release it with [`release`](ReadGrant::release), which
/// says whether the bytes read through it were intact; dropping it releases it too.
#[derive(Debug)]
#[must_use = "a read grant holds the reader at this message until released"]
pub struct ReadGrant<'a> {
    reader: &'a mut Reader,
    pos: u64,
    len: usize,
    done: bool,
}

impl ReadGrant<'_> {
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

    /// A pointer to the message, valid for reads of [`len`](ReadGrant::len) bytes while the
    /// grant lives. The writer may overwrite the bytes under the overwrite policy (or if it is
    /// hostile): check [`is_intact`](ReadGrant::is_intact) or the result of
    /// [`release`](ReadGrant::release) after reading.
    #[cfg(not(ringway_loom))]
    #[must_use]
    pub fn as_ptr(&self) -> *const u8 {
        let r = &self.reader;
        r.ep.mem.ptr(r.slots.payload(self.pos), self.len)
    }

    /// The message as a slice, without copying.
    ///
    /// # Safety
    /// No process may write the slot while the slice lives: the ring's policy must be block
    /// (the writer waits for this reader) and the writer must be a correct ringway writer. Under
    /// the overwrite policy the writer may overwrite it at any time, which for a `&[u8]` is
    /// undefined behaviour: use [`copy_to`](ReadGrant::copy_to) there.
    #[cfg(not(ringway_loom))]
    #[must_use]
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the range is inside the ring (checked by `ptr`), its bytes are initialised
        // (all bytes of a mapping are), and the caller promises no concurrent writes.
        unsafe { core::slice::from_raw_parts(self.as_ptr(), self.len) }
    }

    /// Copies the first `min(len, dst.len())` bytes into `dst`; returns how many. Check
    /// [`is_intact`](ReadGrant::is_intact) afterwards before trusting them.
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        let n = self.len.min(dst.len());
        let r = &self.reader;
        r.ep.mem.copy_out(r.slots.payload(self.pos), &mut dst[..n]);
        n
    }

    /// Copies the message into a new vector, or `None` if the writer overwrote it meanwhile.
    #[must_use]
    pub fn to_vec(&self) -> Option<Vec<u8>> {
        let mut out = vec![0; self.len];
        self.copy_to(&mut out);
        self.is_intact().then_some(out)
    }

    /// Whether the slot still holds this message: everything read through the grant before
    /// this call returned `true` was the message as published, untorn.
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.reader.intact(self.pos)
    }

    /// Moves the reader past the message.
    ///
    /// # Errors
    /// [`PopError::Lagged`] if the writer overwrote the message while it was being read (what
    /// was read through the grant may be torn); the reader then stands at the oldest message
    /// still in the ring.
    pub fn release(mut self) -> Result<(), PopError> {
        self.done = true;
        self.reader.finish(self.pos, self.len as u64)
    }
}

impl Drop for ReadGrant<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.reader.finish(self.pos, self.len as u64);
        }
    }
}
