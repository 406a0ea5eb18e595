//! The SPSC byte ring: one producer, one consumer, variable-size contiguous records.
//!
//! Positions are monotonically increasing `u64` byte offsets; a record at position `p` lives
//! at `p % capacity` of the data area, as an 8-byte header word followed by the payload,
//! padded to 8 bytes. A record that would cross the end of the data area is preceded by a
//! padding record, so every payload is contiguous (see `docs/layout.md`, *SPSC data area*).
//!
//! The header word is the commit (*in-band commit*): the producer stores it last, with
//! Release, and the consumer detects a new record by polling the word at its own position.
//! The consumer never reads the producer's index, so a small message crosses in the cache
//! lines of the record itself. Each side keeps the other's index in a private cache and
//! re-reads the shared one only when the cache says full (the producer; the consumer never
//! needs the producer's index at all).
//!
//! Both indices are private to their owner: the producer's `tail` and the consumer's `head`
//! are never read back from shared memory. What is read from shared memory (the consumer's
//! published `head`, record headers) is read once and checked against the attach-time
//! geometry; a violation is [`PushError::Corrupted`] / [`PopError::Corrupted`].

use std::time::Duration;

use crate::endpoint::Endpoint;
use crate::error::{AttachError, Corruption, PopError, PushError, RingKind, Side};
use crate::geometry::{Geometry, Identity};
use crate::layout::{
    REC_HEADER_LEN, REC_LEN_MASK, REC_PAD, REC_VALID, padding_word, record_size, record_tag,
    record_word,
};
use crate::mem::{RingMemory, WaitWord};
use crate::registry::{self, PeerState, SideStatus};
use crate::sync::Ordering::{Acquire, Relaxed, Release};
use crate::wait::{AttachOptions, Pause, Wait};

/// The producing end of an SPSC ring.
///
/// # Invariants
/// - `head_cache <= tail`, `tail - head_cache <= capacity`, both multiples of 8: `head_cache` is
///   the last validated value of the consumer's published `head`.
/// - `pending` holds the first header word of the batch committed since the last
///   [`flush`](Producer::flush), not yet stored; every later header of that batch is stored.
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
    poisoned: Option<Corruption>,
}

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
    poisoned: Option<Corruption>,
}

/// Positions at or beyond this are corrupt: 2^63 bytes is decades at memory bandwidth, and
/// the bound keeps `position + capacity` arithmetic far from overflow whatever a peer wrote.
const POSITION_LIMIT: u64 = 1 << 63;

/// Checks the `head` a reattaching endpoint resumes from (a peer may have written anything).
fn check_resumed_head(head: u64) -> Option<Corruption> {
    if head % 8 != 0 || head >= POSITION_LIMIT {
        return Some(Corruption::new(
            "consumer head must be 8-aligned and below 2^63",
            head,
            POSITION_LIMIT,
        ));
    }
    None
}

/// Creates an SPSC ring on the heap and attaches both ends: for use between threads of one
/// process, for tests and for benchmarks.
///
/// # Errors
/// [`crate::InitError`] if `capacity` is not a power of two in `32 ..= 2^32`.
///
/// # Examples
/// ```
/// let (mut tx, mut rx) = ringway_ring::spsc::heap(1024)?;
/// tx.push(b"ping")?;
/// let mut buf = Vec::new();
/// assert_eq!(rx.pop(&mut buf)?, 4);
/// assert_eq!(buf, b"ping");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn heap(capacity: u64) -> Result<(Producer, Consumer), crate::InitError> {
    let memory = RingMemory::heap(&crate::RingConfig::spsc(capacity))?;
    let opts = AttachOptions::default();
    let producer = Producer::attach(&memory, &opts)
        .expect("a freshly initialised heap ring accepts its producer");
    let consumer = Consumer::attach(&memory, &opts)
        .expect("a freshly initialised heap ring accepts its consumer");
    Ok((producer, consumer))
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
        while pos - head < self.cap {
            let offset = pos & self.mask;
            // SYNC(commit): Acquire pairs with the earlier producer's Release store of the
            // header, as in `Consumer::poll`.
            let word = self.header_word(pos).load(Acquire);
            if word & REC_VALID == 0 || word >> 32 != record_tag(pos) {
                break;
            }
            let len = word & REC_LEN_MASK;
            let next = if word & REC_PAD != 0 {
                if offset == 0 || len != self.cap - offset - REC_HEADER_LEN as u64 {
                    break;
                }
                pos + self.cap - offset
            } else {
                if len > self.max_message as u64 || len > self.cap - offset - REC_HEADER_LEN as u64
                {
                    break;
                }
                pos + record_size(len)
            };
            if next - head > self.cap {
                break;
            }
            pos = next;
        }
        self.tail = pos;
        self.head_cache = head;
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
        self.ep.peer_closed() || self.ep.peer_status() == SideStatus::Gone
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
        let (pos, pad) = self.acquire(msg.len(), wait)?;
        self.write_payload(pos, msg);
        if self.ep.mem.faulted() {
            // The copy touched a page a peer truncated away: the bytes went to a private zero
            // page nobody else sees. Never publish them.
            return Err(self.truncated());
        }
        self.commit(pos, msg.len(), pad, deferred);
        Ok(())
    }

    fn grant(&mut self, len: usize, wait: Wait) -> Result<Grant<'_>, PushError> {
        let (pos, pad) = self.acquire(len, wait)?;
        Ok(Grant {
            producer: self,
            pos,
            len,
            pad,
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
        // Rule 1 of the in-band commit: zero the next header word if it is free space, so
        // stale bytes there can never pass for a record.
        if tail + REC_HEADER_LEN as u64 <= self.head_cache + self.cap {
            self.header_word(tail).store(0, Relaxed);
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

    #[inline]
    fn write_payload(&self, pos: u64, msg: &[u8]) {
        self.ep
            .mem
            .copy_in(self.data + (pos & self.mask) + REC_HEADER_LEN as u64, msg);
    }

    /// Finds room for a payload of `len` bytes: `(record position, padding before it)`.
    #[inline]
    fn claim(&mut self, len: usize) -> Result<(u64, u64), PushError> {
        // The common case, kept small enough to inline: no padding needed, and room by the
        // cached head.
        if self.poisoned.is_none()
            && len <= self.max_message
            && !self.ep.known_gone()
            && !self.ep.peer_closed()
        {
            let record = record_size(len as u64);
            if (self.tail & self.mask) + record <= self.cap
                && self.tail + record <= self.head_cache + self.cap
            {
                return Ok((self.tail, 0));
            }
        }
        self.claim_slow(len)
    }

    /// [`claim`](Producer::claim) with every case: errors, padding, a full cache.
    #[cold]
    fn claim_slow(&mut self, len: usize) -> Result<(u64, u64), PushError> {
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
        let record = record_size(len as u64);
        let offset = self.tail & self.mask;
        // A record never crosses the end: pad to the next lap if it would.
        let pad = if offset + record > self.cap {
            self.cap - offset
        } else {
            0
        };
        let need = pad + record;
        if self.tail + need > self.head_cache + self.cap {
            // Let the consumer see everything before concluding the ring is full.
            self.flush();
            self.reload_head()?;
            if self.tail + need > self.head_cache + self.cap {
                return Err(self.full());
            }
        }
        Ok((self.tail + pad, pad))
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

    /// Records a written payload of `len` bytes at `pos` (after `pad` bytes of padding at the
    /// old tail), publishing it now or with the next flush.
    #[inline]
    fn commit(&mut self, pos: u64, len: usize, pad: u64, deferred: bool) {
        let word = record_word(pos, len as u64);
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
        self.tail = pos + record_size(len as u64);
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
    #[inline]
    fn acquire(&mut self, len: usize, wait: Wait) -> Result<(u64, u64), PushError> {
        match self.claim(len) {
            Err(PushError::Full) if wait != Wait::Try => self.wait_space(len, wait),
            other => other,
        }
    }

    #[cold]
    fn wait_space(&mut self, len: usize, wait: Wait) -> Result<(u64, u64), PushError> {
        let Some(mut waiter) = wait.waiter(&self.ep.opts) else {
            return Err(PushError::Full);
        };
        loop {
            let record = record_size(len as u64);
            let offset = self.tail & self.mask;
            let need = if offset + record > self.cap {
                self.cap - offset + record
            } else {
                record
            };
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
    pos: u64,
    len: usize,
    pad: u64,
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
        self.producer.data + (self.pos & self.producer.mask) + REC_HEADER_LEN as u64
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
        self.producer.commit(self.pos, self.len, self.pad, false);
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
        self.producer.commit(self.pos, len, self.pad, false);
    }

    /// Commits without publishing; [`Producer::flush`] publishes the whole batch at once.
    pub fn commit_deferred(self) {
        self.producer.commit(self.pos, self.len, self.pad, true);
    }
}

impl Consumer {
    /// Attaches as the consumer of an SPSC ring (see [`Producer::attach`]).
    ///
    /// # Errors
    /// As [`Producer::attach`].
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
        self.ep.known_gone() || self.ep.peer_closed() || self.ep.peer_status() == SideStatus::Gone
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
        let (pos, len) = self.next()?;
        self.take(pos, len, out)
    }

    /// The one entry point of every pop: the next record, waiting as `wait` allows.
    #[inline]
    fn acquire(&mut self, wait: Wait) -> Result<(u64, usize), PopError> {
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
        let (pos, len) = self.acquire(Wait::For(timeout))?;
        self.take(pos, len, out)
    }

    /// Like [`pop`](Consumer::pop), waiting as long as the producer is alive.
    ///
    /// # Errors
    /// [`PopError::Closed`], [`PopError::Corrupted`].
    pub fn pop_blocking(&mut self, out: &mut Vec<u8>) -> Result<usize, PopError> {
        let (pos, len) = self.acquire(Wait::Forever)?;
        self.take(pos, len, out)
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
        let (pos, len) = self.acquire(wait)?;
        if self.ep.mem.faulted() {
            return Err(self.truncated());
        }
        Ok(ReadGrant {
            consumer: self,
            pos,
            len,
        })
    }

    #[cold]
    fn truncated(&mut self) -> PopError {
        let c = self.ep.mem.truncation();
        self.poisoned = Some(c);
        PopError::Corrupted(c)
    }

    /// Publishes the releases made so far to the producer. Releases are published lazily:
    /// when the ring is found empty, when a quarter of the capacity has been released since
    /// the last store, on close, or here.
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
    fn take(&mut self, pos: u64, len: usize, out: &mut Vec<u8>) -> Result<usize, PopError> {
        let src = self.data + (pos & self.mask) + REC_HEADER_LEN as u64;
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
        self.release(pos, len);
        Ok(len)
    }

    #[inline]
    fn release(&mut self, pos: u64, len: usize) {
        self.head = pos + record_size(len as u64);
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
    fn poll(&mut self) -> Result<Option<(u64, usize)>, Corruption> {
        let mut followed_padding = false;
        loop {
            let pos = self.head;
            let offset = pos & self.mask;
            // SYNC(commit): Acquire pairs with the Release store of the header in
            // `Producer::flush`: the payload and every header of its batch are visible.
            let word = self.ep.mem.word(self.data + offset).load(Acquire);
            if word & REC_VALID == 0 || word >> 32 != record_tag(pos) {
                return Ok(None);
            }
            let len = word & REC_LEN_MASK;
            if word & REC_PAD != 0 {
                let expected = self.cap - offset - REC_HEADER_LEN as u64;
                if offset == 0 || followed_padding || len != expected {
                    return Err(Corruption::new(
                        "a padding record must reach the end of the lap and not start one",
                        len,
                        expected,
                    ));
                }
                // Consume the padding; the record it announces starts the next lap.
                self.head = pos + self.cap - offset;
                followed_padding = true;
                continue;
            }
            let room = self.cap - offset - REC_HEADER_LEN as u64;
            if len > self.max_message || len > room {
                return Err(Corruption::new(
                    "a record length must fit max_message and the rest of the lap",
                    len,
                    self.max_message.min(room),
                ));
            }
            return Ok(Some((pos, len as usize)));
        }
    }

    /// The next record, or why there is none.
    #[inline]
    fn next(&mut self) -> Result<(u64, usize), PopError> {
        // The common case, kept small enough to inline: a complete, valid record (not a
        // padding) at the consumer's position. Everything else goes the long way.
        if self.poisoned.is_none() {
            let pos = self.head;
            let offset = pos & self.mask;
            // SYNC(commit): Acquire pairs with the Release store of the header in
            // `Producer::flush`, as in `poll`.
            let word = self.ep.mem.word(self.data + offset).load(Acquire);
            if word & (REC_VALID | REC_PAD) == REC_VALID && word >> 32 == record_tag(pos) {
                let len = word & REC_LEN_MASK;
                if len <= self.max_message && len <= self.cap - offset - REC_HEADER_LEN as u64 {
                    return Ok((pos, len as usize));
                }
            }
        }
        self.next_slow()
    }

    /// [`next`](Consumer::next) with every case: padding, empty, closed, corrupted.
    #[cold]
    fn next_slow(&mut self) -> Result<(u64, usize), PopError> {
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

    fn poll_checked(&mut self) -> Result<Option<(u64, usize)>, PopError> {
        self.poll().map_err(|c| {
            self.poisoned = Some(c);
            PopError::Corrupted(c)
        })
    }

    #[cold]
    fn wait_record(&mut self, wait: Wait) -> Result<(u64, usize), PopError> {
        let Some(mut waiter) = wait.waiter(&self.ep.opts) else {
            return Err(PopError::Empty);
        };
        loop {
            let word = self.ep.mem.word(self.data + (self.head & self.mask));
            // A record of more than 56 bytes spills into the next cache line. Prefetching that
            // line while waiting keeps a fresh copy of it here, so when the header arrives the
            // payload does not cost a second, dependent transfer from the producer's core (two
            // transfers per message where the bare floor has one). A prefetch instruction, not
            // a load: the producer may be writing that line with plain stores.
            let next_line = self.data + (((self.head | 63) + 1) & self.mask);
            let tag = record_tag(self.head);
            let (mem, geo) = (&self.ep.mem, &self.ep.geo);
            let ready = || {
                mem.prefetch(next_line);
                let w = word.load(Relaxed);
                (w & REC_VALID != 0 && w >> 32 == tag)
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
    pos: u64,
    len: usize,
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

    fn payload(&self) -> u64 {
        self.consumer.data + (self.pos & self.consumer.mask) + REC_HEADER_LEN as u64
    }

    /// A pointer to the message, valid for reads of [`len`](ReadGrant::len) bytes while the
    /// grant lives.
    #[cfg(not(ringway_loom))]
    #[must_use]
    pub fn as_ptr(&self) -> *const u8 {
        self.consumer.ep.mem.ptr(self.payload(), self.len)
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
        unsafe { core::slice::from_raw_parts(self.as_ptr(), self.len) }
    }

    /// Copies the first `min(len, dst.len())` bytes of the message into `dst`; returns how many.
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        let n = self.len.min(dst.len());
        self.consumer.ep.mem.copy_out(self.payload(), &mut dst[..n]);
        n
    }

    /// Copies the message into a new vector.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0; self.len];
        self.copy_to(&mut out);
        out
    }

    /// Releases the message: the producer may reuse its space.
    pub fn release(self) {
        self.consumer.release(self.pos, self.len);
    }
}
