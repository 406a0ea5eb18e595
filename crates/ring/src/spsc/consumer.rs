//! The consuming end of an SPSC ring, and its in-place read grant.

use std::time::Duration;

use super::Found;
use super::check_resumed_head;
use crate::endpoint::Endpoint;
use crate::error::{AttachError, Corruption, PopError, RingKind, Side};
use crate::geometry::{Geometry, Identity};
use crate::layout::{
    Decoded, LINE, REC_ALIGNED, REC_LEN_MASK, REC_LINE_PAYLOAD, REC_LINES, REC_PAD, REC_VALID,
    decode, header_tag, payload_gap, record_end, record_tag,
};
use crate::mem::{RingMemory, WaitWord};
use crate::registry::{self, PeerState};
use crate::sync::Ordering::{Acquire, Relaxed, Release};
use crate::wait::{AttachOptions, Pause, Wait};

/// The consuming end of an SPSC ring.
///
/// # Invariants
/// - `released <= head`; both are record boundaries (or lap starts after a padding record).
/// - `head` is private: the consumer's position is never read back from shared memory.
#[derive(Debug)]
pub struct Consumer {
    ep: Endpoint,
    data: u64,
    cap: u64,
    mask: u64,
    max_message: u64,
    /// The position of the next record; private.
    head: u64,
    /// The last `head` value published to the producer.
    released: u64,
    /// Whether the last record received had 57 to 128 payload bytes (so its payload did not
    /// end in its header's line, and takes one or two more): the guess for the next one, for
    /// the wait's prefetch.
    spilled: bool,
    poisoned: Option<Corruption>,
}

impl Consumer {
    /// Attaches as the consumer of an SPSC ring (see [`Producer::attach`](super::Producer::attach)).
    ///
    /// # Errors
    /// As [`Producer::attach`](super::Producer::attach).
    pub fn attach(memory: &RingMemory, opts: &AttachOptions) -> Result<Consumer, AttachError> {
        let ep = Endpoint::attach(
            memory,
            RingKind::Spsc,
            Side::Consumer,
            opts,
            &mut |_, _, _| true,
        )?;
        let geo = ep.geo;
        // A consumer that attaches after another left or died starts where that one had
        // released: everything it had received is gone, everything else is still there. A
        // hostile value only makes this consumer read records that do not validate.
        // SYNC(release): Acquire pairs with the earlier consumer's Release store of `head`.
        let head = ep.mem.header().consumer.head.load(Acquire);
        let poisoned = check_resumed_head(head);
        let head = if poisoned.is_some() { 0 } else { head };
        Ok(Consumer {
            data: geo.data_offset,
            cap: geo.capacity,
            mask: geo.mask(),
            max_message: u64::from(geo.max_message),
            head,
            released: head,
            spilled: false,
            poisoned,
            ep,
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

    /// An owned readiness handle of this consumer for a
    /// [`Select`](crate::select::Select): ready when a message is there or the producer
    /// side is gone. It borrows nothing, so `pop` stays callable while a select holds it.
    ///
    /// # Examples
    /// ```
    /// use ringway_ring::select::Select;
    /// let (mut tx, mut rx) = ringway_ring::spsc::heap(1024)?;
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
        crate::select::Watch::spsc_consumer(&self.ep)
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

    /// Whether the producer has left or died (probes its liveness: not for a hot loop).
    /// Messages it committed may still be waiting to be read.
    #[must_use]
    pub fn is_disconnected(&self) -> bool {
        self.ep.known_gone() || self.ep.is_disconnected()
    }

    /// Bytes of the data area in use (records and padding) as this consumer sees them: from
    /// its own position to the producer's published one. At most the capacity.
    #[must_use]
    pub fn queued(&self) -> u64 {
        // Relaxed: a count to report, no access to the data depends on it.
        let tail = self.ep.mem.header().producer.tail.load(Relaxed);
        tail.saturating_sub(self.head).min(self.cap)
    }

    /// Copies the next message into `out` (replacing its contents) and releases it, without
    /// blocking. Returns the message length.
    ///
    /// # Errors
    /// [`PopError::Empty`], [`PopError::Closed`] (the producer left or died and everything it
    /// committed has been read), [`PopError::Corrupted`].
    pub fn pop(&mut self, out: &mut Vec<u8>) -> Result<usize, PopError> {
        let found = self.next()?;
        self.take(found, out)
    }

    /// Copies the next message into `out` and releases it, waiting as `wait` allows: the
    /// one entry point of [`pop`](Consumer::pop), [`pop_timeout`](Consumer::pop_timeout) and
    /// [`pop_blocking`](Consumer::pop_blocking). Returns the message length.
    ///
    /// # Errors
    /// As those: [`PopError::Empty`] for [`Wait::Try`], [`PopError::Timeout`] for a deadline.
    #[inline]
    pub fn pop_with(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<usize, PopError> {
        let found = self.acquire(wait)?;
        self.take(found, out)
    }

    /// Lends the next message in place, waiting as `wait` allows: the one entry point of the
    /// `peek` calls.
    ///
    /// # Errors
    /// As [`pop_with`](Consumer::pop_with).
    pub fn peek_with(&mut self, wait: Wait) -> Result<ReadGrant<'_>, PopError> {
        self.grant(wait)
    }

    /// The next record, waiting as `wait` allows.
    #[inline]
    fn acquire(&mut self, wait: Wait) -> Result<Found, PopError> {
        match self.next() {
            Err(PopError::Empty) if wait != Wait::Try => self.wait_record(wait),
            other => other,
        }
    }

    /// Like [`pop`](Consumer::pop), waiting up to `timeout` for a message.
    ///
    /// # Errors
    /// [`PopError::Timeout`], [`PopError::Closed`], [`PopError::Corrupted`].
    pub fn pop_timeout(&mut self, out: &mut Vec<u8>, timeout: Duration) -> Result<usize, PopError> {
        let found = self.acquire(Wait::For(timeout))?;
        self.take(found, out)
    }

    /// Like [`pop`](Consumer::pop), waiting as long as the producer is alive.
    ///
    /// # Errors
    /// [`PopError::Closed`], [`PopError::Corrupted`].
    pub fn pop_blocking(&mut self, out: &mut Vec<u8>) -> Result<usize, PopError> {
        let found = self.acquire(Wait::Forever)?;
        self.take(found, out)
    }

    /// Lends the next message in place, without blocking. It stays in the ring until
    /// [`ReadGrant::release`]; dropping the grant leaves it for the next call.
    ///
    /// # Errors
    /// As [`pop`](Consumer::pop).
    pub fn peek(&mut self) -> Result<ReadGrant<'_>, PopError> {
        self.grant(Wait::Try)
    }

    /// Like [`peek`](Consumer::peek), waiting up to `timeout` for a message.
    ///
    /// # Errors
    /// As [`pop_timeout`](Consumer::pop_timeout).
    pub fn peek_timeout(&mut self, timeout: Duration) -> Result<ReadGrant<'_>, PopError> {
        self.grant(Wait::For(timeout))
    }

    /// Like [`peek`](Consumer::peek), waiting as long as the producer is alive.
    ///
    /// # Errors
    /// As [`pop_blocking`](Consumer::pop_blocking).
    pub fn peek_blocking(&mut self) -> Result<ReadGrant<'_>, PopError> {
        self.grant(Wait::Forever)
    }

    fn grant(&mut self, wait: Wait) -> Result<ReadGrant<'_>, PopError> {
        let found = self.acquire(wait)?;
        if self.ep.mem.faulted() {
            return Err(self.truncated());
        }
        Ok(ReadGrant {
            consumer: self,
            found,
        })
    }

    #[cold]
    fn truncated(&mut self) -> PopError {
        let c = self.ep.mem.truncation();
        self.poisoned = Some(c);
        PopError::Corrupted(c)
    }

    /// Wakes a producer waiting for room, if anything was released since the last wake.
    /// Releases themselves are published at once (`head` is stored on every release); the
    /// wake is batched: when a quarter of the capacity has been released since the last one,
    /// when the ring is found empty, on close, or here.
    pub fn flush(&mut self) {
        if self.head != self.released {
            self.publish_head();
            self.released = self.head;
            self.ep.notify(WaitWord::NotFull);
        }
    }

    #[inline]
    fn publish_head(&self) {
        // SYNC(release): Release pairs with the Acquire load in `Producer::reload_head` (and
        // `Producer::resume`): our reads of the released records happen before the producer
        // overwrites them.
        self.ep.mem.header().consumer.head.store(self.head, Release);
    }

    #[inline]
    fn take(&mut self, found: Found, out: &mut Vec<u8>) -> Result<usize, PopError> {
        let src = self.payload(found);
        let len = found.len;
        out.clear();
        #[cfg(not(ringway_loom))]
        {
            out.reserve(len);
            // SAFETY: `reserve` made room for `len` bytes in `out`'s private buffer, which
            // cannot overlap the ring; `copy_out_raw` checks the source range. Every byte
            // pattern is a valid u8, so the bytes are initialised once copied.
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
        // A copy that touched a page a peer truncated away read zeros: never deliver it.
        if self.ep.mem.faulted() {
            out.clear();
            return Err(self.truncated());
        }
        self.release(found);
        Ok(len)
    }

    /// The data-area offset of a found record's payload.
    #[inline]
    fn payload(&self, found: Found) -> u64 {
        self.data + (found.pos & self.mask) + found.gap
    }

    #[inline]
    fn release(&mut self, found: Found) {
        self.head = found.next;
        self.spilled = (REC_LINE_PAYLOAD + 1..=2 * LINE).contains(&(found.len as u64));
        // The release is published at once (a plain store to this consumer's own line), so a
        // consumer that dies loses nothing it had not received: one that attaches next starts
        // here. Only the wake of a producer waiting for room is batched, to a quarter of the
        // capacity (or an empty ring, or close).
        self.publish_head();
        if self.head - self.released >= self.cap / 4 {
            self.released = self.head;
            self.ep.notify(WaitWord::NotFull);
        }
    }

    /// Looks for the record at the consumer's position, following one padding record.
    fn poll(&mut self) -> Result<Option<Found>, Corruption> {
        let mut followed_padding = false;
        loop {
            let pos = self.head;
            // SYNC(commit): Acquire pairs with the Release store of the header in
            // `Producer::flush`: the payload and every header of its batch are visible.
            let word = self
                .ep
                .mem
                .word(self.data + (pos & self.mask))
                .load(Acquire);
            match decode(word, pos, self.cap, self.max_message) {
                Decoded::Empty => return Ok(None),
                Decoded::Padding { next } => {
                    if followed_padding {
                        return Err(Corruption::new(
                            "a padding record must not follow another",
                            word & REC_LEN_MASK,
                            0,
                        ));
                    }
                    // Consume the padding; the record it announces starts where it ends.
                    self.head = next;
                    followed_padding = true;
                }
                Decoded::Record { gap, len, next } => {
                    return Ok(Some(Found {
                        pos,
                        gap,
                        len: len as usize,
                        next,
                    }));
                }
                Decoded::Corrupt(what, found, limit) => {
                    return Err(Corruption::new(what, found, limit));
                }
            }
        }
    }

    /// The next record, or why there is none.
    #[inline]
    fn next(&mut self) -> Result<Found, PopError> {
        // The common case, kept small enough to inline: a complete, valid record (not a
        // padding) at the consumer's position, judged exactly as `layout::decode` does.
        // Everything else goes the long way.
        if self.poisoned.is_none() {
            let pos = self.head;
            let offset = pos & self.mask;
            // SYNC(commit): Acquire pairs with the Release store of the header in
            // `Producer::flush`, as in `poll`.
            let word = self.ep.mem.word(self.data + offset).load(Acquire);
            if word & (REC_VALID | REC_PAD) == REC_VALID && header_tag(word) == record_tag(pos) {
                let len = word & REC_LEN_MASK;
                let gap = payload_gap(offset, word & REC_ALIGNED != 0);
                let body = (len + 7) & !7;
                let lines = word & REC_LINES != 0;
                if len <= self.max_message
                    && offset + gap <= self.cap
                    && len <= self.cap - offset - gap
                    && record_end(offset + gap + body, lines) <= self.cap
                {
                    return Ok(Found {
                        pos,
                        gap,
                        len: len as usize,
                        next: record_end(pos + gap + body, lines),
                    });
                }
            }
        }
        self.next_slow()
    }

    /// [`next`](Consumer::next) with every case: padding, empty, closed, corrupted.
    #[cold]
    fn next_slow(&mut self) -> Result<Found, PopError> {
        if let Some(c) = self.poisoned {
            return Err(PopError::Corrupted(c));
        }
        if let Some(found) = self.poll_checked()? {
            return Ok(found);
        }
        self.flush();
        let due = self.ep.due();
        if let Some(c) = due.then(|| self.ep.check_integrity().err()).flatten() {
            self.poisoned = Some(c);
            return Err(PopError::Corrupted(c));
        }
        if self.ep.peer_gone(due) {
            // The Acquire that saw the producer leave follows its last publication: look once
            // more for what it committed before it left.
            return match self.poll_checked()? {
                Some(found) => Ok(found),
                None => Err(PopError::Closed),
            };
        }
        Err(PopError::Empty)
    }

    fn poll_checked(&mut self) -> Result<Option<Found>, PopError> {
        self.poll().map_err(|c| {
            self.poisoned = Some(c);
            PopError::Corrupted(c)
        })
    }

    #[cold]
    fn wait_record(&mut self, wait: Wait) -> Result<Found, PopError> {
        let Some(mut waiter) = self.ep.waiter(wait) else {
            return Err(PopError::Empty);
        };
        loop {
            let word = self.ep.mem.word(self.data + (self.head & self.mask));
            // After a record of 57 to 128 bytes, guess the next one is alike and keep a fresh
            // copy of the line its payload starts on (the line after the header's) while
            // waiting, with a prefetch instruction, so it is here when the header is: the MPMC
            // consumer's slot trick (64-byte round trip 0.41 -> 0.35 us, in one process pair
            // alternating builds). After a small record that line is the one after the next
            // record, which the producer writes later, and each prefetch would pull it back
            // from under it (measured with packed records: a 64-byte round trip took 2.8x the
            // bare cache-line floor with it, 2.0x without); before a larger payload it pulls
            // back the first of the lines the producer is still copying (1 KiB: 0.62 ->
            // 0.73 us): neither has it.
            let spill = (self.head & self.mask | (LINE - 1)) + 1;
            let ahead = (self.spilled && spill < self.cap).then_some(self.data + spill);
            let tag = record_tag(self.head);
            let (mem, geo) = (&self.ep.mem, &self.ep.geo);
            let ready = || {
                if let Some(line) = ahead {
                    mem.prefetch(line);
                }
                let w = word.load(Relaxed);
                (w & REC_VALID != 0 && header_tag(w) == tag)
                    || registry::side_closed(mem, geo, Side::Producer)
            };
            let ep = &self.ep;
            match waiter.pause(mem, WaitWord::NotEmpty, ready, || ep.until_due()) {
                Pause::Retry => {}
                Pause::TimedOut => return Err(PopError::Timeout),
                Pause::Interrupted => return Err(PopError::Interrupted),
            }
            match self.next() {
                Err(PopError::Empty) => {}
                other => return other,
            }
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.flush();
        self.ep.close();
    }
}

/// A message lent in place by [`Consumer::peek`].
///
/// The bytes are shared memory that another process could (in violation of the protocol)
/// write at any time, so they are reached by copying ([`copy_to`](ReadGrant::copy_to),
/// [`to_vec`](ReadGrant::to_vec)) or through a raw pointer, and only unsafely as a slice.
#[derive(Debug)]
pub struct ReadGrant<'a> {
    consumer: &'a mut Consumer,
    found: Found,
}

impl ReadGrant<'_> {
    /// The message length.
    #[must_use]
    pub fn len(&self) -> usize {
        self.found.len
    }

    /// Whether the message is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.found.len == 0
    }

    fn payload(&self) -> u64 {
        self.consumer.payload(self.found)
    }

    /// A pointer to the message, valid for reads of [`len`](ReadGrant::len) bytes while the
    /// grant lives.
    #[cfg(not(ringway_loom))]
    #[must_use]
    pub fn as_ptr(&self) -> *const u8 {
        self.consumer.ep.mem.ptr(self.payload(), self.found.len)
    }

    /// The message as a slice, without copying.
    ///
    /// # Safety
    /// The producer must not write these bytes while the slice lives. A correct ringway
    /// producer never does (it writes only free space, and this record is not released until
    /// the grant is); a buggy or hostile one could, which for a `&[u8]` is undefined
    /// behaviour. Use [`copy_to`](ReadGrant::copy_to) when the producer is not trusted.
    #[cfg(not(ringway_loom))]
    #[must_use]
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the range is inside the ring (checked by `ptr`), initialised (all bytes of a
        // mapping are), and the caller promises no concurrent writes while the slice lives.
        unsafe { core::slice::from_raw_parts(self.as_ptr(), self.found.len) }
    }

    /// Copies the first `min(len, dst.len())` bytes of the message into `dst`; returns how many.
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        let n = self.found.len.min(dst.len());
        self.consumer.ep.mem.copy_out(self.payload(), &mut dst[..n]);
        n
    }

    /// Copies the message into a new vector.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0; self.found.len];
        self.copy_to(&mut out);
        out
    }

    /// Releases the message: the producer may reuse its space.
    pub fn release(self) {
        self.consumer.release(self.found);
    }
}
