//! The MPMC slot ring: many producers, many consumers, fixed-size slots (Vyukov's bounded
//! queue, laid out in shared memory).
//!
//! Each slot carries a sequence number `seq`. For a claim position `pos` and slot
//! `pos % capacity`: `seq == pos` means free for the producer claiming `pos`, `pos + 1` means
//! published for the consumer claiming `pos`, and `pos + capacity` means free again for the
//! producer of the next lap. Producers claim positions by a compare-and-swap on `tail`,
//! consumers on `head`.
//!
//! A process can die between its swap and its `seq` store, which would stall every process
//! behind it. So each claimant stores the position it is about to claim in its registration
//! entry *before* the swap (and clears it if the swap fails); a process that finds a slot stuck
//! can then find the claimant, and if it is dead, skip the slot (counted in
//! [`lost`](Consumer::lost)) or reclaim it (counted in [`abandoned`](Producer::abandoned)).
//! See `docs/layout.md`, *Dead claimants*.

use std::time::Duration;

use crate::endpoint::Endpoint;
use crate::error::{AttachError, Corruption, PopError, PushError, RingKind, Side};
use crate::geometry::{Geometry, Identity};
use crate::layout::{LEN_CANCELLED, SEQ_LOST, SLOT_HEADER_LEN};
use crate::mem::{Mem, RingMemory, WaitWord};
use crate::registry::{self, EntryStatus, PeerState, SideStatus};
use crate::sync::AtomicU64;
use crate::sync::Ordering::{AcqRel, Acquire, Relaxed, Release};
use crate::wait::{AttachOptions, Pause};

/// How many times in a row a claim may find a slot "ahead" while the index does not move
/// before the slot is declared corrupted (a correct peer cannot cause even one).
const STALL_LIMIT: u32 = 64;
/// Upper bound on the retries of one claim under contention, so that a hostile peer that keeps
/// moving an index cannot hold a caller in the loop forever.
const RETRY_LIMIT: u32 = 1 << 20;

/// `a < b` for positions, robust to wrap-around.
///
/// Positions also advance with `wrapping_add`: a peer can set an index to any value, and one
/// near `u64::MAX` must wrap (as 2^64 honest claims would) rather than overflow, which panics
/// wherever overflow checks are on.
#[inline]
fn before(a: u64, b: u64) -> bool {
    (a.wrapping_sub(b) as i64) < 0
}

/// The shape both ends need, copied out of the attach-time geometry.
#[derive(Debug, Clone, Copy)]
struct Slots {
    data: u64,
    stride: u64,
    cap: u64,
    mask: u64,
    slot_size: u64,
}

impl Slots {
    fn new(geo: &Geometry) -> Slots {
        Slots {
            data: geo.data_offset,
            stride: geo.slot_stride,
            cap: geo.capacity,
            mask: geo.mask(),
            slot_size: u64::from(geo.slot_size),
        }
    }

    #[inline]
    fn slot(&self, pos: u64) -> u64 {
        self.data + (pos & self.mask) * self.stride
    }

    #[inline]
    fn seq<'m>(&self, mem: &'m Mem, pos: u64) -> &'m AtomicU64 {
        mem.word(self.slot(pos))
    }

    #[inline]
    fn len<'m>(&self, mem: &'m Mem, pos: u64) -> &'m AtomicU64 {
        mem.word(self.slot(pos) + 8)
    }

    #[inline]
    fn payload(&self, pos: u64) -> u64 {
        self.slot(pos) + SLOT_HEADER_LEN as u64
    }
}

/// What a scan of the claimants of a stuck slot found.
enum Claimants {
    /// Some entry claiming it is alive: wait.
    Alive,
    /// Every entry claiming it is dead or closed: the slot can be recovered.
    AllDead,
    /// No entry claims it.
    None,
}

fn claimants(mem: &Mem, geo: &Geometry, side: Side, claim: u64, ep: &Endpoint) -> Claimants {
    let mut matched = false;
    for index in registry::side_range(geo, side) {
        // SYNC(claim): Acquire pairs with the Release store of `claim` (a newer claim is stored
        // only after the older one's slot was published or released).
        if mem.entry(index).claim.load(Acquire) != claim {
            continue;
        }
        matched = true;
        if registry::entry_status(mem, index, ep.opts.probe) == EntryStatus::Live {
            return Claimants::Alive;
        }
    }
    if matched {
        Claimants::AllDead
    } else {
        Claimants::None
    }
}

/// A consumer-side recovery: if the slot at `pos` (the next to pop) was claimed by a producer
/// that died before publishing it, mark it lost. Returns whether a slot was recovered.
fn recover_producer_claim(
    mem: &Mem,
    geo: &Geometry,
    slots: &Slots,
    pos: u64,
    ep: &Endpoint,
) -> Result<bool, Corruption> {
    let seq_word = slots.seq(mem, pos);
    let seq = seq_word.load(Acquire);
    if seq & !SEQ_LOST != pos {
        return Ok(false); // published (or a later lap): not stuck
    }
    // SYNC(claim): Acquire pairs with the claimant's Release swap of `tail`, which follows its
    // store of `claim`.
    let tail = mem.header().producer.tail.load(Acquire);
    if !before(pos, tail) {
        return Ok(false); // nobody claimed it yet: merely empty
    }
    match claimants(mem, geo, Side::Producer, pos.wrapping_add(1), ep) {
        Claimants::Alive => Ok(false),
        Claimants::AllDead => {
            if seq_word
                .compare_exchange(seq, pos.wrapping_add(1) | SEQ_LOST, AcqRel, Relaxed)
                .is_ok()
            {
                mem.header().counters.lost.fetch_add(1, Relaxed);
                ep.notify(WaitWord::NotEmpty);
                return Ok(true);
            }
            Ok(false)
        }
        Claimants::None => {
            // The claimant may have published and moved on since we read `seq`: its newer
            // claim is stored after its publication, which our Acquire on `claim` then sees.
            if seq_word.load(Acquire) & !SEQ_LOST != pos {
                return Ok(false);
            }
            Err(Corruption::new(
                "a claimed MPMC slot has no claimant in the producer table",
                pos,
                tail,
            ))
        }
    }
}

/// A producer-side recovery: if the slot for `pos` (the next to push) still holds the message
/// of the previous lap because the consumer that claimed it died before releasing it, release
/// it. Returns whether a slot was recovered.
fn recover_consumer_claim(
    mem: &Mem,
    geo: &Geometry,
    slots: &Slots,
    pos: u64,
    ep: &Endpoint,
) -> Result<bool, Corruption> {
    let Some(prev) = pos.checked_sub(slots.cap) else {
        return Ok(false);
    };
    let seq_word = slots.seq(mem, pos);
    let seq = seq_word.load(Acquire);
    if seq & !SEQ_LOST != prev + 1 {
        return Ok(false);
    }
    // SYNC(claim): as in `recover_producer_claim`, for the consumer's swap of `head`.
    let head = mem.header().consumer.head.load(Acquire);
    if !before(prev, head) {
        return Ok(false); // not claimed by a consumer: the ring is simply full
    }
    match claimants(mem, geo, Side::Consumer, prev + 1, ep) {
        Claimants::Alive => Ok(false),
        Claimants::AllDead => {
            if seq_word.compare_exchange(seq, pos, AcqRel, Relaxed).is_ok() {
                mem.header().counters.abandoned.fetch_add(1, Relaxed);
                ep.notify(WaitWord::NotFull);
                return Ok(true);
            }
            Ok(false)
        }
        Claimants::None => {
            if seq_word.load(Acquire) & !SEQ_LOST != prev + 1 {
                return Ok(false);
            }
            Err(Corruption::new(
                "a claimed MPMC slot has no claimant in the consumer table",
                prev,
                head,
            ))
        }
    }
}

/// Before a dead entry is reused, resolve the claim it may still hold. Returns `false` if the
/// slot is stuck and a live entry claims it too (the entry is then left alone for now).
fn resolve_entry(
    mem: &Mem,
    geo: &Geometry,
    index: usize,
    side: Side,
    ep: Option<&Endpoint>,
) -> bool {
    let claim = mem.entry(index).claim.load(Acquire);
    let Some(pos) = claim.checked_sub(1) else {
        return true;
    };
    let slots = Slots::new(geo);
    let seq_word = slots.seq(mem, pos);
    let seq = seq_word.load(Acquire);
    let (stuck, target, counter) = match side {
        Side::Producer => {
            let tail = mem.header().producer.tail.load(Acquire);
            (
                seq & !SEQ_LOST == pos && before(pos, tail),
                pos.wrapping_add(1) | SEQ_LOST,
                &mem.header().counters.lost,
            )
        }
        Side::Consumer => {
            let head = mem.header().consumer.head.load(Acquire);
            (
                seq & !SEQ_LOST == pos + 1 && before(pos, head),
                pos.wrapping_add(slots.cap),
                &mem.header().counters.abandoned,
            )
        }
    };
    if !stuck {
        return true;
    }
    let probe = ep.map_or(crate::proc::is_alive as crate::proc::LivenessProbe, |e| {
        e.opts.probe
    });
    for other in registry::side_range(geo, side) {
        if other != index
            && mem.entry(other).claim.load(Acquire) == claim
            && registry::entry_status(mem, other, probe) == EntryStatus::Live
        {
            return false;
        }
    }
    if seq_word
        .compare_exchange(seq, target, AcqRel, Relaxed)
        .is_ok()
    {
        counter.fetch_add(1, Relaxed);
    }
    true
}

/// Claims a position on one side: the shared loop of both ends. A slot is ready for this side
/// when its `seq` (without the `LOST` bit) equals `pos + offset` (`0` for producers, `1` for
/// consumers). Returns the claimed position and the slot's raw `seq`, or `None` when the ring
/// is full (producers) or empty (consumers).
fn claim_position(
    mem: &Mem,
    slots: &Slots,
    index: &AtomicU64,
    claim: &AtomicU64,
    offset: u64,
) -> Result<Option<(u64, u64)>, Corruption> {
    let mut pos = index.load(Relaxed);
    let mut stalls = 0;
    for _ in 0..RETRY_LIMIT {
        // SYNC(publish)/SYNC(free): Acquire pairs with the Release store of `seq` by the other
        // side (a publication for consumers, a release for producers).
        let seq = slots.seq(mem, pos).load(Acquire);
        let want = pos.wrapping_add(offset);
        let s = seq & !SEQ_LOST;
        if s == want {
            // The claim is recorded before the swap, so a claimant that dies after the swap is
            // always traceable. SYNC(claim): published by the Release swap below.
            claim.store(pos.wrapping_add(1), Release);
            match index.compare_exchange(pos, pos.wrapping_add(1), Release, Relaxed) {
                Ok(_) => return Ok(Some((pos, seq))),
                Err(actual) => {
                    // Not ours after all: a stale claim must not make us look like the
                    // claimant of a slot someone else holds.
                    claim.store(0, Release);
                    pos = actual;
                    stalls = 0;
                }
            }
        } else if before(s, want) {
            return Ok(None);
        } else {
            let actual = index.load(Relaxed);
            if actual == pos {
                stalls += 1;
                if stalls >= STALL_LIMIT {
                    return Err(Corruption::new(
                        "an MPMC slot sequence is ahead of its index",
                        seq,
                        want,
                    ));
                }
            } else {
                stalls = 0;
            }
            pos = actual;
        }
    }
    Err(Corruption::new(
        "an MPMC index kept moving for a million retries",
        pos,
        u64::from(RETRY_LIMIT),
    ))
}

/// Creates an MPMC ring on the heap (for use between threads, tests and benchmarks) and
/// returns its memory, to which any number of producers and consumers attach.
///
/// # Errors
/// [`crate::InitError`] if the configuration is invalid.
///
/// # Examples
/// ```
/// use ringway_ring::mpmc;
/// let memory = mpmc::heap(64, 16)?;
/// let opts = Default::default();
/// let mut tx = mpmc::Producer::attach(&memory, &opts)?;
/// let mut rx = mpmc::Consumer::attach(&memory, &opts)?;
/// tx.push(b"job")?;
/// let mut out = Vec::new();
/// rx.pop(&mut out)?;
/// assert_eq!(out, b"job");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn heap(slots: u64, slot_size: u32) -> Result<RingMemory, crate::InitError> {
    RingMemory::heap(&crate::RingConfig::mpmc(slots, slot_size))
}

/// A producing end of an MPMC ring. Each producer holds one registration entry.
#[derive(Debug)]
pub struct Producer {
    ep: Endpoint,
    slots: Slots,
}

/// A consuming end of an MPMC ring. Each consumer holds one registration entry.
#[derive(Debug)]
pub struct Consumer {
    ep: Endpoint,
    slots: Slots,
    producers_gone: bool,
}

impl Producer {
    /// Attaches as a producer, taking a free registration entry (or one whose process left or
    /// died, after recovering any slot it held).
    ///
    /// # Errors
    /// Any [`AttachError`]; [`AttachError::TableFull`] if `max_producers` live producers are
    /// attached.
    pub fn attach(memory: &RingMemory, opts: &AttachOptions) -> Result<Producer, AttachError> {
        let ep = Endpoint::attach(
            memory,
            RingKind::Mpmc,
            Side::Producer,
            opts,
            &mut |mem, geo, index| resolve_entry(mem, geo, index, Side::Producer, None),
        )?;
        let slots = Slots::new(&ep.geo);
        Ok(Producer { ep, slots })
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

    /// Slots reclaimed from consumers that died holding them (their messages were lost).
    #[must_use]
    pub fn abandoned(&self) -> u64 {
        self.ep.mem.header().counters.abandoned.load(Relaxed)
    }

    /// The other side: not attached yet, attached and alive, or gone (probes liveness: not
    /// for a hot loop).
    #[must_use]
    pub fn peer_state(&self) -> PeerState {
        self.ep.peer_state()
    }

    /// Whether every consumer has left or died (probes liveness: not for a hot loop).
    #[must_use]
    pub fn is_disconnected(&self) -> bool {
        self.ep.peer_closed() || self.ep.peer_status() == SideStatus::Gone
    }

    /// Copies `msg` into a slot and publishes it, without blocking.
    ///
    /// # Errors
    /// [`PushError::Full`], [`PushError::Closed`] (every consumer left or died; checked when
    /// the ring is full and periodically otherwise), [`PushError::TooLarge`],
    /// [`PushError::Corrupted`].
    pub fn push(&mut self, msg: &[u8]) -> Result<(), PushError> {
        let pos = self.claim(msg.len())?;
        self.fill_and_publish(pos, msg);
        Ok(())
    }

    /// Like [`push`](Producer::push), waiting up to `timeout` for a free slot.
    ///
    /// # Errors
    /// [`PushError::Timeout`], [`PushError::Closed`], [`PushError::TooLarge`],
    /// [`PushError::Corrupted`].
    pub fn push_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), PushError> {
        let pos = self.wait_slot(msg.len(), Some(timeout))?;
        self.fill_and_publish(pos, msg);
        Ok(())
    }

    /// Like [`push`](Producer::push), waiting for a free slot as long as a consumer is alive.
    ///
    /// # Errors
    /// [`PushError::Closed`], [`PushError::TooLarge`], [`PushError::Corrupted`].
    pub fn push_blocking(&mut self, msg: &[u8]) -> Result<(), PushError> {
        let pos = self.wait_slot(msg.len(), None)?;
        self.fill_and_publish(pos, msg);
        Ok(())
    }

    /// Claims a slot to be written in place, without blocking. The slot is published by
    /// [`SlotGrant::commit`]; dropping the grant publishes a cancelled slot that consumers
    /// skip.
    ///
    /// # Errors
    /// As [`push`](Producer::push); `len` is the most the grant may commit.
    pub fn reserve(&mut self, len: usize) -> Result<SlotGrant<'_>, PushError> {
        let pos = self.claim(len)?;
        Ok(SlotGrant {
            producer: self,
            pos,
            len,
            done: false,
        })
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
        let pos = self.wait_slot(len, Some(timeout))?;
        Ok(SlotGrant {
            producer: self,
            pos,
            len,
            done: false,
        })
    }

    /// Like [`reserve`](Producer::reserve), waiting as long as a consumer is alive.
    ///
    /// # Errors
    /// As [`push_blocking`](Producer::push_blocking).
    pub fn reserve_blocking(&mut self, len: usize) -> Result<SlotGrant<'_>, PushError> {
        let pos = self.wait_slot(len, None)?;
        Ok(SlotGrant {
            producer: self,
            pos,
            len,
            done: false,
        })
    }

    /// Recovers the next slot if a dead consumer holds it. The blocking calls do this every
    /// liveness interval; call it to force the check.
    ///
    /// # Errors
    /// [`PushError::Corrupted`] if the slot is stuck with no claimant in the table.
    pub fn recover(&mut self) -> Result<bool, PushError> {
        let pos = self.ep.mem.header().producer.tail.load(Acquire);
        recover_consumer_claim(&self.ep.mem, &self.ep.geo, &self.slots, pos, &self.ep)
            .map_err(PushError::Corrupted)
    }

    fn claim(&mut self, len: usize) -> Result<u64, PushError> {
        if len as u64 > self.slots.slot_size {
            return Err(PushError::TooLarge {
                len,
                max: self.slots.slot_size as usize,
            });
        }
        // Every liveness interval (the clock is read once per 1024 calls), check that some
        // consumer is left and that no dead one holds the next slot. Checking every consumer
        // entry on every push would cost a line per consumer.
        if self.ep.liveness_due() {
            self.check_consumers()?;
        }
        let mem = &self.ep.mem;
        let claimed = claim_position(
            mem,
            &self.slots,
            &mem.header().producer.tail,
            &mem.entry(self.ep.reg.index).claim,
            0,
        )
        .map_err(PushError::Corrupted)?;
        match claimed {
            Some((pos, _)) => Ok(pos),
            None if self.ep.peer_closed() => Err(PushError::Closed),
            None => Err(PushError::Full),
        }
    }

    fn check_consumers(&mut self) -> Result<(), PushError> {
        self.ep.check_header().map_err(PushError::Corrupted)?;
        if self.ep.peer_status() == SideStatus::Gone {
            return Err(PushError::Closed);
        }
        self.recover()?;
        Ok(())
    }

    fn fill_and_publish(&mut self, pos: u64, msg: &[u8]) {
        let mem = &self.ep.mem;
        self.slots.len(mem, pos).store(msg.len() as u64, Relaxed);
        mem.copy_in(self.slots.payload(pos), msg);
        self.publish(pos);
    }

    fn publish(&self, pos: u64) {
        // SYNC(publish): Release pairs with the consumers' Acquire load of `seq` in
        // `claim_position`: the length and payload are visible to whoever claims `pos`.
        self.slots
            .seq(&self.ep.mem, pos)
            .store(pos.wrapping_add(1), Release);
        self.ep.notify(WaitWord::NotEmpty);
    }

    fn wait_slot(&mut self, len: usize, timeout: Option<Duration>) -> Result<u64, PushError> {
        let mut waiter = self.ep.waiter(timeout);
        loop {
            match self.claim(len) {
                Err(PushError::Full) => {}
                other => return other,
            }
            let (mem, geo, slots) = (&self.ep.mem, &self.ep.geo, self.slots);
            let ready = || {
                let pos = mem.header().producer.tail.load(Relaxed);
                slots.seq(mem, pos).load(Relaxed) & !SEQ_LOST == pos
                    || registry::side_closed(mem, geo, Side::Consumer)
            };
            match waiter.pause(mem, WaitWord::NotFull, ready) {
                Pause::Retry => {}
                Pause::TimedOut => return Err(PushError::Timeout),
                Pause::CheckPeers => self.check_consumers()?,
            }
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.ep.close();
    }
}

/// A claimed MPMC slot, to be written in place and committed.
///
/// Dropping it without committing publishes a cancelled slot (consumers skip it), because a
/// claimed slot must be published for the ring to move on.
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
            let p = &self.producer;
            p.slots.len(&p.ep.mem, self.pos).store(len, Relaxed);
            p.publish(self.pos);
        }
    }
}

impl Drop for SlotGrant<'_> {
    fn drop(&mut self) {
        self.finish(LEN_CANCELLED);
    }
}

impl Consumer {
    /// Attaches as a consumer (see [`Producer::attach`]).
    ///
    /// # Errors
    /// As [`Producer::attach`].
    pub fn attach(memory: &RingMemory, opts: &AttachOptions) -> Result<Consumer, AttachError> {
        let ep = Endpoint::attach(
            memory,
            RingKind::Mpmc,
            Side::Consumer,
            opts,
            &mut |mem, geo, index| resolve_entry(mem, geo, index, Side::Consumer, None),
        )?;
        let slots = Slots::new(&ep.geo);
        Ok(Consumer {
            ep,
            slots,
            producers_gone: false,
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

    /// Slots skipped because the producer that claimed them died before publishing.
    #[must_use]
    pub fn lost(&self) -> u64 {
        self.ep.mem.header().counters.lost.load(Relaxed)
    }

    /// The other side: not attached yet, attached and alive, or gone (probes liveness: not
    /// for a hot loop).
    #[must_use]
    pub fn peer_state(&self) -> PeerState {
        self.ep.peer_state()
    }

    /// Whether every producer has left or died (probes liveness: not for a hot loop).
    /// Messages they committed may still be waiting.
    #[must_use]
    pub fn is_disconnected(&self) -> bool {
        self.producers_gone || self.ep.peer_closed() || self.ep.peer_status() == SideStatus::Gone
    }

    /// Copies the next message into `out` (replacing its contents), without blocking.
    ///
    /// # Errors
    /// [`PopError::Empty`], [`PopError::Closed`] (every producer left or died and the ring is
    /// drained), [`PopError::Corrupted`] (a slot with an impossible length: it is released, so
    /// the next call moves on).
    pub fn pop(&mut self, out: &mut Vec<u8>) -> Result<usize, PopError> {
        let (pos, len) = self.next()?;
        Ok(self.take(pos, len, out))
    }

    /// Like [`pop`](Consumer::pop), waiting up to `timeout` for a message.
    ///
    /// # Errors
    /// [`PopError::Timeout`], [`PopError::Closed`], [`PopError::Corrupted`].
    pub fn pop_timeout(&mut self, out: &mut Vec<u8>, timeout: Duration) -> Result<usize, PopError> {
        let (pos, len) = self.wait_message(Some(timeout))?;
        Ok(self.take(pos, len, out))
    }

    /// Like [`pop`](Consumer::pop), waiting as long as a producer is alive.
    ///
    /// # Errors
    /// [`PopError::Closed`], [`PopError::Corrupted`].
    pub fn pop_blocking(&mut self, out: &mut Vec<u8>) -> Result<usize, PopError> {
        let (pos, len) = self.wait_message(None)?;
        Ok(self.take(pos, len, out))
    }

    /// Claims the next message to read in place, without blocking. The slot is released when
    /// the grant is released or dropped.
    ///
    /// # Errors
    /// As [`pop`](Consumer::pop).
    pub fn peek(&mut self) -> Result<SlotReadGrant<'_>, PopError> {
        let (pos, len) = self.next()?;
        Ok(SlotReadGrant {
            consumer: self,
            pos,
            len,
        })
    }

    /// Like [`peek`](Consumer::peek), waiting up to `timeout` for a message.
    ///
    /// # Errors
    /// As [`pop_timeout`](Consumer::pop_timeout).
    pub fn peek_timeout(&mut self, timeout: Duration) -> Result<SlotReadGrant<'_>, PopError> {
        let (pos, len) = self.wait_message(Some(timeout))?;
        Ok(SlotReadGrant {
            consumer: self,
            pos,
            len,
        })
    }

    /// Like [`peek`](Consumer::peek), waiting as long as a producer is alive.
    ///
    /// # Errors
    /// As [`pop_blocking`](Consumer::pop_blocking).
    pub fn peek_blocking(&mut self) -> Result<SlotReadGrant<'_>, PopError> {
        let (pos, len) = self.wait_message(None)?;
        Ok(SlotReadGrant {
            consumer: self,
            pos,
            len,
        })
    }

    /// Skips the next slot if the producer that claimed it died before publishing it. The
    /// blocking calls do this every liveness interval; call it to force the check.
    ///
    /// # Errors
    /// [`PopError::Corrupted`] if the slot is stuck with no claimant in the table.
    pub fn recover(&mut self) -> Result<bool, PopError> {
        let pos = self.ep.mem.header().consumer.head.load(Acquire);
        recover_producer_claim(&self.ep.mem, &self.ep.geo, &self.slots, pos, &self.ep)
            .map_err(PopError::Corrupted)
    }

    fn take(&mut self, pos: u64, len: usize, out: &mut Vec<u8>) -> usize {
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
        len
    }

    fn release(&self, pos: u64) {
        // SYNC(free): Release pairs with the producers' Acquire load of `seq` in
        // `claim_position`: our reads of the slot happen before the next lap's writes.
        self.slots
            .seq(&self.ep.mem, pos)
            .store(pos.wrapping_add(self.slots.cap), Release);
        self.ep.notify(WaitWord::NotFull);
    }

    /// Claims the next real message: skips (and releases) lost and cancelled slots, releases
    /// and reports a slot with an impossible length.
    fn next(&mut self) -> Result<(u64, usize), PopError> {
        let mut recovered = false;
        // Each turn either returns or consumes a slot (or recovers one, at most once), so the
        // loop is bounded even against a peer that marks every slot lost.
        for _ in 0..=self.slots.cap + 1 {
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
                return Ok((pos, len as usize));
            }
            // Empty. If every producer is gone, recover what dead ones left claimed so the
            // drain can finish, then report Closed.
            let slow = self.ep.liveness_due();
            if recovered || !self.producers_left(slow) {
                break;
            }
            recovered = true;
            let mem = &self.ep.mem;
            let head = mem.header().consumer.head.load(Acquire);
            let tail = mem.header().producer.tail.load(Acquire);
            if !before(head, tail) {
                return Err(PopError::Closed);
            }
            // Claimed slots remain: their claimants are gone, so each can be recovered.
            recover_producer_claim(mem, &self.ep.geo, &self.slots, head, &self.ep)
                .map_err(PopError::Corrupted)?;
        }
        Err(PopError::Empty)
    }

    fn producers_left(&mut self, probe: bool) -> bool {
        if !self.producers_gone
            && (self.ep.peer_closed() || (probe && self.ep.peer_status() == SideStatus::Gone))
        {
            self.producers_gone = true;
        }
        self.producers_gone
    }

    fn wait_message(&mut self, timeout: Option<Duration>) -> Result<(u64, usize), PopError> {
        let mut waiter = self.ep.waiter(timeout);
        loop {
            match self.next() {
                Err(PopError::Empty) => {}
                other => return other,
            }
            let (mem, geo, slots) = (&self.ep.mem, &self.ep.geo, self.slots);
            // As in the SPSC consumer: a slot wider than a cache line spills its payload into
            // the next one; keep that line fresh while waiting so it does not cost a second,
            // dependent transfer when the slot is published.
            if slots.stride > 64 {
                let pos = mem.header().consumer.head.load(Relaxed);
                std::hint::black_box(mem.word(slots.slot(pos) + 64).load(Relaxed));
            }
            let ready = || {
                let pos = mem.header().consumer.head.load(Relaxed);
                slots.seq(mem, pos).load(Relaxed) & !SEQ_LOST == pos.wrapping_add(1)
                    || registry::side_closed(mem, geo, Side::Producer)
            };
            match waiter.pause(mem, WaitWord::NotEmpty, ready) {
                Pause::Retry => {}
                Pause::TimedOut => return Err(PopError::Timeout),
                Pause::CheckPeers => {
                    self.ep.check_header().map_err(PopError::Corrupted)?;
                    self.producers_left(true);
                    self.recover()?;
                }
            }
        }
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
