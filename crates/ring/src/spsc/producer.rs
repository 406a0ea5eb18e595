//! The producing end of an SPSC ring, and its in-place grant.

use std::time::Duration;

use super::check_resumed_head;
use super::marks::LineMarks;
use crate::endpoint::Endpoint;
use crate::error::{AttachError, Corruption, PushError, RingKind, Side};
use crate::geometry::{Geometry, Identity};
use crate::layout::{
    Decoded, LINE, Placement, REC_HEADER_LEN, REC_LINES, aligned_record_word, decode, padding_word,
    place, record_end, record_word,
};
use crate::mem::{RingMemory, WaitWord};
use crate::registry::{self, PeerState};
use crate::sync::Ordering::{Acquire, Relaxed, Release};
use crate::wait::{AttachOptions, Pause, Wait};

/// The producing end of an SPSC ring.
///
/// # Invariants
/// - `head_cache <= tail`, `tail - head_cache <= capacity`, both multiples of 8: `head_cache` is
///   the last validated value of the consumer's published `head`.
/// - `pending` holds the first header word of the batch committed since the last
///   [`flush`](Producer::flush), not yet stored; every later header of that batch is stored.
/// - `marks` says which line-start words need no zero before a publication (see
///   `spsc/marks.rs`): every byte reserved or skipped has cleared the marks it covers.
#[derive(Debug)]
pub struct Producer {
    ep: Endpoint,
    data: u64,
    cap: u64,
    mask: u64,
    max_message: usize,
    /// The next position to write; private, never read back from shared memory.
    tail: u64,
    /// Last validated value of the consumer's `head`.
    head_cache: u64,
    /// `(position, word)` of the first unpublished header of the current batch.
    pending: Option<(u64, u64)>,
    /// Which line-start words hold zero or a header of the previous lap (rule 1).
    marks: LineMarks,
    poisoned: Option<Corruption>,
}

impl Producer {
    /// Attaches as the producer of an SPSC ring, waiting (up to the options' init timeout) for
    /// its creator to finish initialising it.
    ///
    /// # Errors
    /// Any [`AttachError`]: not a ring, the wrong kind, a geometry that breaks the layout or
    /// does not fit the memory, or a live producer already attached ([`AttachError::Busy`]).
    /// A side whose endpoint left or died can be attached again: a
    /// new producer continues after the last committed record, a new consumer at the first
    /// record its predecessor had not received.
    pub fn attach(memory: &RingMemory, opts: &AttachOptions) -> Result<Producer, AttachError> {
        let ep = Endpoint::attach(
            memory,
            RingKind::Spsc,
            Side::Producer,
            opts,
            &mut |_, _, _| true,
        )?;
        let geo = ep.geo;
        let mut producer = Producer {
            data: geo.data_offset,
            cap: geo.capacity,
            mask: geo.mask(),
            max_message: geo.max_message as usize,
            tail: 0,
            head_cache: 0,
            pending: None,
            marks: LineMarks::new(geo.capacity),
            poisoned: None,
            ep,
        };
        producer.resume();
        Ok(producer)
    }

    /// Finds where an earlier producer stopped, for a producer that attaches after another
    /// left or died: the end of the committed records, found by walking them from the
    /// consumer's released `head` exactly as the consumer would read them. The walk stops at
    /// the first word that is not a record of its position (rule 1 of the in-band commit leaves
    /// a zero or an earlier lap's header after the last publication; a batch the old producer
    /// never flushed has no first header), so a new producer continues after the last committed
    /// record and overwrites only what was never published. On a fresh ring it finds `0`.
    /// A walk that meets a record breaking the layout stops there too: the consumer reports
    /// that record as `Corrupted`, and this producer writes after the valid ones.
    fn resume(&mut self) {
        // SYNC(release): Acquire pairs with the consumer's Release store of `head`.
        let head = self.ep.mem.header().consumer.head.load(Acquire);
        if let Some(c) = check_resumed_head(head) {
            self.poisoned = Some(c);
            return;
        }
        let mut pos = head;
        let mut followed_padding = false;
        while pos - head < self.cap {
            // SYNC(commit): Acquire pairs with the earlier producer's Release store of the
            // header, as in `Consumer::poll`.
            let word = self.header_word(pos).load(Acquire);
            let next = match decode(word, pos, self.cap, self.max_message as u64) {
                Decoded::Record { next, .. } => {
                    followed_padding = false;
                    next
                }
                Decoded::Padding { next } if !followed_padding => {
                    followed_padding = true;
                    next
                }
                Decoded::Padding { .. } | Decoded::Empty | Decoded::Corrupt(..) => break,
            };
            if next - head > self.cap {
                break;
            }
            pos = next;
        }
        self.tail = pos;
        self.head_cache = head;
        self.marks.forget();
    }

    /// The ring's geometry, as read at attach time.
    #[must_use]
    pub fn geometry(&self) -> &Geometry {
        &self.ep.geo
    }

    /// The largest message this ring carries: `capacity / 2 - 8` bytes.
    #[must_use]
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// The fingerprint and label the creator stored in the header (read at attach time).
    #[must_use]
    pub fn identity(&self) -> &Identity {
        &self.ep.identity
    }

    /// An owned readiness handle of this producer for a
    /// [`Select`](crate::select::Select): ready when a message of `len` bytes fits (padding
    /// at the end of the lap counted) or the consumer side is gone. It borrows nothing, so
    /// `push` stays callable while a select holds it. It judges room from the published
    /// `tail`, so a producer holding [deferred](Producer::push_deferred) records may be
    /// reported ready spuriously until a `push` that finds the ring full flushes them.
    ///
    /// # Examples
    /// ```
    /// use ringway_ring::select::Select;
    /// let (mut tx, mut rx) = ringway_ring::spsc::heap(64)?;
    /// let mut sel = Select::new();
    /// let i = sel.add(tx.watch(24));
    /// assert_eq!(sel.try_select()?.index(), i);
    /// tx.push(&[0; 24])?; // a 32-byte record at 0
    /// tx.push(&[0; 24])?; // at 32
    /// assert!(tx.push(&[0; 24]).is_err()); // the ring is full
    /// assert!(sel.try_select().is_err());
    /// let mut out = Vec::new();
    /// rx.pop(&mut out)?;
    /// assert_eq!(sel.try_select()?.index(), i);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn watch(&self, len: usize) -> crate::select::Watch {
        crate::select::Watch::spsc_producer(&self.ep, len)
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

    /// Whether the consumer has left or died (probes its liveness: not for a hot loop).
    #[must_use]
    pub fn is_disconnected(&self) -> bool {
        self.ep.is_disconnected()
    }

    /// Bytes of the data area in use (records and padding) as this producer sees them: from
    /// the consumer's published position, which lags what it has read by up to a quarter of
    /// the capacity, to this producer's next position. At most the capacity.
    #[must_use]
    pub fn queued(&self) -> u64 {
        // Relaxed: a count to report, no access to the data depends on it.
        let head = self.ep.mem.header().consumer.head.load(Relaxed);
        self.tail.saturating_sub(head).min(self.cap)
    }

    /// Copies `msg` into the ring and publishes it, without blocking.
    ///
    /// # Errors
    /// [`PushError::Full`], [`PushError::Closed`] (the consumer left or died),
    /// [`PushError::TooLarge`], [`PushError::Corrupted`].
    pub fn push(&mut self, msg: &[u8]) -> Result<(), PushError> {
        self.send(msg, Wait::Try, false)
    }

    /// Like [`push`](Producer::push), but does not publish yet: a burst of deferred pushes
    /// followed by [`flush`](Producer::flush) costs one Release store and one wake check.
    ///
    /// # Errors
    /// As [`push`](Producer::push). If the ring is full, pending records are flushed first.
    pub fn push_deferred(&mut self, msg: &[u8]) -> Result<(), PushError> {
        self.send(msg, Wait::Try, true)
    }

    /// Copies `msg` into the ring, waiting up to `timeout` for space.
    ///
    /// # Errors
    /// [`PushError::Timeout`], [`PushError::Closed`], [`PushError::TooLarge`],
    /// [`PushError::Corrupted`].
    pub fn push_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), PushError> {
        self.send(msg, Wait::For(timeout), false)
    }

    /// Copies `msg` into the ring, waiting as long as the consumer is alive.
    ///
    /// # Errors
    /// [`PushError::Closed`] (the consumer left or died), [`PushError::TooLarge`],
    /// [`PushError::Corrupted`].
    pub fn push_blocking(&mut self, msg: &[u8]) -> Result<(), PushError> {
        self.send(msg, Wait::Forever, false)
    }

    /// Copies `msg` into the ring and publishes it, waiting for space as `wait` allows: the
    /// one entry point of [`push`](Producer::push), [`push_timeout`](Producer::push_timeout)
    /// and [`push_blocking`](Producer::push_blocking).
    ///
    /// # Errors
    /// As those: [`PushError::Full`] for [`Wait::Try`], [`PushError::Timeout`] for a deadline.
    #[inline]
    pub fn push_with(&mut self, msg: &[u8], wait: Wait) -> Result<(), PushError> {
        self.send(msg, wait, false)
    }

    /// Like [`push_with`](Producer::push_with), but does not publish yet (see
    /// [`push_deferred`](Producer::push_deferred)). While it waits for space, everything
    /// pending is published first, so a batch larger than the ring still gets through.
    ///
    /// # Errors
    /// As [`push_with`](Producer::push_with).
    #[inline]
    pub fn push_deferred_with(&mut self, msg: &[u8], wait: Wait) -> Result<(), PushError> {
        self.send(msg, wait, true)
    }

    /// Reserves `len` contiguous bytes, waiting for space as `wait` allows: the one entry
    /// point of the `reserve` calls.
    ///
    /// # Errors
    /// As [`push_with`](Producer::push_with).
    pub fn reserve_with(&mut self, len: usize, wait: Wait) -> Result<Grant<'_>, PushError> {
        self.grant(len, wait)
    }

    /// Reserves `len` contiguous bytes in the ring to be written in place, without blocking.
    /// Nothing is published until [`Grant::commit`]; dropping the grant publishes nothing.
    ///
    /// # Errors
    /// As [`push`](Producer::push).
    pub fn reserve(&mut self, len: usize) -> Result<Grant<'_>, PushError> {
        self.grant(len, Wait::Try)
    }

    /// Like [`reserve`](Producer::reserve), waiting up to `timeout` for space.
    ///
    /// # Errors
    /// As [`push_timeout`](Producer::push_timeout).
    pub fn reserve_timeout(
        &mut self,
        len: usize,
        timeout: Duration,
    ) -> Result<Grant<'_>, PushError> {
        self.grant(len, Wait::For(timeout))
    }

    /// Like [`reserve`](Producer::reserve), waiting for space as long as the consumer is alive.
    ///
    /// # Errors
    /// As [`push_blocking`](Producer::push_blocking).
    pub fn reserve_blocking(&mut self, len: usize) -> Result<Grant<'_>, PushError> {
        self.grant(len, Wait::Forever)
    }

    /// The one body of every push: room for the message (waiting as `wait` allows), the
    /// copy, and the commit (published now, or with the next flush if `deferred`).
    #[inline]
    fn send(&mut self, msg: &[u8], wait: Wait, deferred: bool) -> Result<(), PushError> {
        let place = self.acquire(msg.len(), wait)?;
        self.write_payload(place, msg);
        if self.ep.mem.faulted() {
            // The copy touched a page a peer truncated away: the bytes went to a private zero
            // page nobody else sees. Never publish them.
            return Err(self.truncated());
        }
        self.commit(place, msg.len(), deferred);
        Ok(())
    }

    fn grant(&mut self, len: usize, wait: Wait) -> Result<Grant<'_>, PushError> {
        let place = self.acquire(len, wait)?;
        Ok(Grant {
            producer: self,
            place,
            len,
        })
    }

    #[cold]
    fn truncated(&mut self) -> PushError {
        let c = self.ep.mem.truncation();
        self.poisoned = Some(c);
        PushError::Corrupted(c)
    }

    /// Publishes everything committed with the `*_deferred` calls.
    #[inline]
    pub fn flush(&mut self) {
        let Some((pos, word)) = self.pending.take() else {
            return;
        };
        let tail = self.tail;
        // Rule 1 of the in-band commit: the header word at `tail`, if it is free space, must
        // read "nothing yet", so stale bytes there can never pass for a record. Inside a line
        // it is the line just written: store a zero. At a line start, it may still hold the
        // header this producer stored there a lap ago, which is as good as a zero and saves
        // a cross-core transfer (see `LineMarks`).
        let offset = tail & self.mask;
        if tail + REC_HEADER_LEN as u64 <= self.head_cache + self.cap
            && !(offset % LINE == 0 && self.marks.is_set(offset))
        {
            self.header_word(tail).store(0, Relaxed);
            self.marks.set(offset);
        }
        // SYNC(commit): Release pairs with the Acquire load of the header in
        // `Consumer::poll`; it publishes the payloads, the headers stored Relaxed in this
        // batch and the zero above.
        self.header_word(pos).store(word, Release);
        self.ep.mem.header().producer.tail.store(tail, Relaxed);
        self.ep.notify(WaitWord::NotEmpty);
    }

    #[inline]
    fn header_word(&self, pos: u64) -> &crate::sync::AtomicU64 {
        self.ep.mem.word(self.data + (pos & self.mask))
    }

    /// The data-area offset of the payload of a record placed at `place`.
    #[inline]
    fn payload(&self, place: Place) -> u64 {
        self.data + (place.pos & self.mask) + place.gap
    }

    #[inline]
    fn write_payload(&self, place: Place, msg: &[u8]) {
        self.ep.mem.copy_in(self.payload(place), msg);
    }

    /// Finds room for a payload of `len` bytes.
    #[inline]
    fn claim(&mut self, len: usize) -> Result<Place, PushError> {
        // The common case, kept small enough to inline: no padding needed and room by the
        // cached head.
        if self.poisoned.is_none()
            && len <= self.max_message
            && !self.ep.known_gone()
            && !self.ep.peer_closed()
        {
            let p = place(self.tail & self.mask, len as u64, self.cap);
            if p.pad == 0 && self.tail + p.record <= self.head_cache + self.cap {
                return Ok(Place {
                    pos: self.tail,
                    pad: 0,
                    aligned: p.aligned,
                    lines: p.lines,
                    gap: p.gap,
                });
            }
        }
        self.claim_slow(len)
    }

    /// [`claim`](Producer::claim) with every case: errors, padding, alignment, a full cache.
    #[cold]
    fn claim_slow(&mut self, len: usize) -> Result<Place, PushError> {
        if let Some(c) = self.poisoned {
            return Err(PushError::Corrupted(c));
        }
        if len > self.max_message {
            return Err(PushError::TooLarge {
                len,
                max: self.max_message,
            });
        }
        if self.ep.known_gone() && self.ep.peer_gone(false) {
            return Err(PushError::Closed);
        }
        if self.ep.peer_closed() {
            return Err(PushError::Closed);
        }
        // A record never crosses the end (padding to the next lap), a small one never
        // straddles a line (padding to the next line), a large one is aligned.
        let p: Placement = place(self.tail & self.mask, len as u64, self.cap);
        let need = p.need();
        if self.tail + need > self.head_cache + self.cap {
            // Let the consumer see everything before concluding the ring is full.
            self.flush();
            self.reload_head()?;
            if self.tail + need > self.head_cache + self.cap {
                return Err(self.full());
            }
        }
        Ok(Place {
            pos: self.tail + p.pad,
            pad: p.pad,
            aligned: p.aligned,
            lines: p.lines,
            gap: p.gap,
        })
    }

    fn reload_head(&mut self) -> Result<(), PushError> {
        // SYNC(release): Acquire pairs with the Release store of `head` in
        // `Consumer::publish`: the consumer's reads of released records happen before our
        // writes over them.
        let head = self.ep.mem.header().consumer.head.load(Acquire);
        if head < self.head_cache || head > self.tail || head % 8 != 0 {
            let c = Corruption::new(
                "consumer head must be 8-aligned, not move back, and not pass the producer",
                head,
                self.tail,
            );
            self.poisoned = Some(c);
            return Err(PushError::Corrupted(c));
        }
        self.head_cache = head;
        Ok(())
    }

    /// Records a written payload of `len` bytes placed at `place` (after `place.pad` bytes of
    /// padding at the old tail), publishing it now or with the next flush.
    #[inline]
    fn commit(&mut self, place: Place, len: usize, deferred: bool) {
        let Place {
            pos,
            pad,
            aligned,
            lines,
            gap,
        } = place;
        let word = if aligned {
            aligned_record_word(pos, len as u64)
        } else if lines {
            record_word(pos, len as u64) | REC_LINES
        } else {
            record_word(pos, len as u64)
        };
        let start = self.tail;
        let pad_word = (pad > 0).then(|| padding_word(start, pad - REC_HEADER_LEN as u64));
        if self.pending.is_none() {
            // This record starts a batch. Its first header (the padding's, if any) is the one
            // published with Release at flush; the record after a padding is stored now, so
            // it is visible before the padding (rule 4).
            match pad_word {
                Some(pad_word) => {
                    self.header_word(pos).store(word, Relaxed);
                    self.pending = Some((start, pad_word));
                }
                None => self.pending = Some((pos, word)),
            }
        } else {
            // Inside a batch: the consumer cannot reach these headers before it acquires the
            // batch's first one, which the flush stores last.
            self.header_word(pos).store(word, Relaxed);
            if let Some(pad_word) = pad_word {
                self.header_word(start).store(pad_word, Relaxed);
            }
        }
        // Both headers are stored by the flush at the latest (rule 1's line marks).
        self.marks.set(pos & self.mask);
        if pad > 0 {
            self.marks.set(start & self.mask);
        }
        self.tail = record_end(pos + gap + ((len as u64 + 7) & !7), lines);
        if !deferred {
            self.flush();
        }
    }

    /// The slow path of a full ring, shared by every push: when due, the integrity checks and
    /// a liveness probe of the consumer. Returns the error to report: `Full`, `Closed`, or
    /// `Corrupted` (which poisons the producer).
    #[cold]
    fn full(&mut self) -> PushError {
        let due = self.ep.due();
        if let Some(c) = due.then(|| self.ep.check_integrity().err()).flatten() {
            self.poisoned = Some(c);
            return PushError::Corrupted(c);
        }
        if self.ep.peer_gone(due) {
            return PushError::Closed;
        }
        PushError::Full
    }

    /// The one entry point of every push: room for a payload of `len` bytes, waiting as `wait`
    /// allows: `(record position, padding before it)`.
    ///
    /// Every byte it hands out (the padding before the record, the record, and for a grant
    /// the whole reservation, however much of it is committed) is about to be written or
    /// skipped: the line marks of rule 1 it covers are cleared here.
    #[inline]
    fn acquire(&mut self, len: usize, wait: Wait) -> Result<Place, PushError> {
        let place = match self.claim(len) {
            Err(PushError::Full) if wait != Wait::Try => self.wait_space(len, wait),
            other => other,
        }?;
        let start = self.tail & self.mask;
        if place.pad > 0 {
            self.marks.cover(start, start + place.pad);
        }
        let at = place.pos & self.mask;
        self.marks
            .cover(at, at + place.gap + ((len as u64 + 7) & !7));
        Ok(place)
    }

    #[cold]
    fn wait_space(&mut self, len: usize, wait: Wait) -> Result<Place, PushError> {
        let Some(mut waiter) = self.ep.waiter(wait) else {
            return Err(PushError::Full);
        };
        loop {
            let need = place(self.tail & self.mask, len as u64, self.cap).need();
            let target = self.tail + need;
            let header = self.ep.mem.header();
            let (mem, geo, cap) = (&self.ep.mem, &self.ep.geo, self.cap);
            let ready = || {
                header.consumer.head.load(Relaxed).saturating_add(cap) >= target
                    || registry::side_closed(mem, geo, Side::Consumer)
            };
            let ep = &self.ep;
            match waiter.pause(mem, WaitWord::NotFull, ready, || ep.until_due()) {
                Pause::Retry => {}
                Pause::TimedOut => return Err(PushError::Timeout),
                Pause::Interrupted => return Err(PushError::Interrupted),
            }
            match self.claim(len) {
                Err(PushError::Full) => {}
                other => return other,
            }
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.flush();
        self.ep.close();
    }
}

/// Bytes reserved in an SPSC ring, to be written in place and then committed.
///
/// Dropping a grant without committing publishes nothing; the space is reused by the next
/// reservation.
#[derive(Debug)]
#[must_use = "a grant publishes nothing until it is committed"]
pub struct Grant<'a> {
    producer: &'a mut Producer,
    place: Place,
    len: usize,
}

/// Where a claimed record goes: its position, the padding before it, whether it is aligned
/// and the bytes from its header to its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    pos: u64,
    pad: u64,
    aligned: bool,
    lines: bool,
    gap: u64,
}

impl Grant<'_> {
    /// The number of bytes reserved.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether zero bytes were reserved.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn payload(&self) -> u64 {
        self.producer.payload(self.place)
    }

    /// A pointer to the reserved bytes, valid for writes of [`len`](Grant::len) bytes until
    /// the grant is committed or dropped.
    ///
    /// The bytes are shared memory: write them through this pointer (or `write`), never
    /// through a `&mut [u8]` made from it, since another process may access them.
    #[cfg(not(ringway_loom))]
    #[must_use]
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.producer.ep.mem.ptr(self.payload(), self.len)
    }

    /// Copies `bytes` into the reservation at `offset`.
    ///
    /// # Panics
    /// If `offset + bytes.len()` exceeds the reservation.
    pub fn write(&mut self, offset: usize, bytes: &[u8]) {
        assert!(
            offset <= self.len && bytes.len() <= self.len - offset,
            "write of {} bytes at {offset} overflows a grant of {}",
            bytes.len(),
            self.len
        );
        let at = self.payload() + offset as u64;
        self.producer.ep.mem.copy_in(at, bytes);
    }

    /// Publishes the reserved bytes as one message.
    pub fn commit(self) {
        self.producer.commit(self.place, self.len, false);
    }

    /// Publishes only the first `len` bytes (for a reservation of a maximum size that was not
    /// filled, such as a `read` into the ring).
    ///
    /// # Panics
    /// If `len` exceeds the reservation.
    pub fn commit_partial(self, len: usize) {
        assert!(
            len <= self.len,
            "commit of {len} bytes from a grant of {}",
            self.len
        );
        self.producer.commit(self.place, len, false);
    }

    /// Commits without publishing; [`Producer::flush`] publishes the whole batch at once.
    pub fn commit_deferred(self) {
        self.producer.commit(self.place, self.len, true);
    }
}
