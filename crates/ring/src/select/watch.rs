//! [`Watch`]: an owned readiness handle of one endpoint, judged from shared memory alone.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Schedule;
use crate::error::Side;
use crate::geometry::Geometry;
use crate::interrupt::Interrupt;
use crate::layout::{INIT_READY, MAGIC, REC_VALID, WaitBlock, header_tag, place, record_tag};
use crate::mem::{Mem, WaitWord};
use crate::mpmc::{Slots, before};
use crate::proc::Liveness;
use crate::registry;
use crate::spsc::POSITION_LIMIT;
use crate::sync::Ordering::Relaxed;
use crate::wait::WaitStrategy;

/// What a [`Watch`] judges, and how.
#[derive(Debug, Clone, Copy)]
enum What {
    /// A record is committed at the consumer's published `head`.
    SpscConsumer,
    /// A record with a payload of `len` bytes fits after the producer's published `tail`.
    SpscProducer { len: u64 },
    /// The slot at the consumers' `head` is published.
    MpmcConsumer(Slots),
    /// The slot at the producers' `tail` is free.
    MpmcProducer(Slots),
    /// The broadcast writer's `tail` passed the cursor this reader publishes in its entry
    /// `index` (a message is complete there, or the reader was lapped: either way a pop does
    /// not block).
    BroadcastReader { index: usize },
}

/// What one look at an arm concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// The operation would block.
    Pending,
    /// The operation would not block: a message or room is there, or a value read from shared
    /// memory failed validation (the operation itself then reports `Corrupted`), or a slow-path
    /// check must run (the operation runs it).
    Ready,
    /// The other side left or died (and, for a consumer, nothing it committed is left).
    Closed,
}

/// An owned, cloneable handle that tells whether one endpoint's next operation would block,
/// from shared memory alone, without borrowing the endpoint: what a
/// [`Select`](super::Select) waits on.
///
/// Made by `watch()` on a consumer ([`spsc::Consumer::watch`](crate::spsc::Consumer::watch),
/// [`mpmc::Consumer::watch`](crate::mpmc::Consumer::watch)) or a producer
/// ([`spsc::Producer::watch`](crate::spsc::Producer::watch),
/// [`mpmc::Producer::watch`](crate::mpmc::Producer::watch)). It keeps the ring's memory
/// alive (so it may outlive its endpoint harmlessly), the attach-time geometry, the
/// endpoint's liveness check, interrupt and wait strategy, and a link to the endpoint's
/// schedule of slow-path checks: when a watch finds the peer dead, the header changed or a
/// slot stuck, it makes the endpoint's checks due at once, so the endpoint's next call
/// reports it.
///
/// Readiness is a hint, as with `crossbeam_channel::Select::ready`: the operation itself may
/// still find nothing (another consumer of an MPMC ring took the message, or a check the
/// watch asked for found nothing wrong). Every value a watch reads from shared memory is
/// validated; a bad one makes it ready, never a panic or an out-of-bounds access.
pub struct Watch {
    mem: Mem,
    geo: Geometry,
    what: What,
    liveness: Arc<dyn Liveness>,
    pub(super) interrupt: Option<Interrupt>,
    pub(super) strategy: WaitStrategy,
    /// The endpoint's schedule, expedited when this watch sees something for its slow path.
    endpoint: Arc<Schedule>,
    /// This watch's own schedule of probes, at the endpoint's interval.
    schedule: Schedule,
    interval: Duration,
    /// `Some(digest)` once this watch concluded the peer side gone, with the digest of its
    /// registration words then (as `Endpoint::peer_gone` keeps it).
    gone: Option<u64>,
}

impl core::fmt::Debug for Watch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Watch")
            .field("what", &self.what)
            .field("gone", &self.gone.is_some())
            .finish_non_exhaustive()
    }
}

impl Clone for Watch {
    /// A watch of the same endpoint, with a fresh probe schedule.
    fn clone(&self) -> Watch {
        Watch {
            mem: self.mem.clone(),
            geo: self.geo,
            what: self.what,
            liveness: self.liveness.clone(),
            interrupt: self.interrupt.clone(),
            strategy: self.strategy,
            endpoint: self.endpoint.clone(),
            schedule: Schedule::new(self.interval),
            interval: self.interval,
            gone: None,
        }
    }
}

impl Watch {
    fn new(ep: &crate::endpoint::Endpoint, what: What) -> Watch {
        #[cfg(ringway_loom)]
        ep.mem.mark_selected();
        Watch {
            mem: ep.mem.clone(),
            geo: ep.geo,
            what,
            liveness: ep.opts.liveness.clone(),
            interrupt: ep.opts.interrupt.clone(),
            strategy: ep.opts.wait,
            endpoint: ep.schedule(),
            schedule: Schedule::new(ep.opts.liveness_interval),
            interval: ep.opts.liveness_interval,
            gone: None,
        }
    }

    pub(crate) fn spsc_consumer(ep: &crate::endpoint::Endpoint) -> Watch {
        Watch::new(ep, What::SpscConsumer)
    }

    pub(crate) fn spsc_producer(ep: &crate::endpoint::Endpoint, len: usize) -> Watch {
        Watch::new(ep, What::SpscProducer { len: len as u64 })
    }

    pub(crate) fn mpmc_consumer(ep: &crate::endpoint::Endpoint) -> Watch {
        Watch::new(ep, What::MpmcConsumer(Slots::new(&ep.geo)))
    }

    pub(crate) fn mpmc_producer(ep: &crate::endpoint::Endpoint) -> Watch {
        Watch::new(ep, What::MpmcProducer(Slots::new(&ep.geo)))
    }

    pub(crate) fn broadcast_reader(ep: &crate::endpoint::Endpoint) -> Watch {
        Watch::new(
            ep,
            What::BroadcastReader {
                index: ep.reg.index,
            },
        )
    }

    /// Whether this watches a producer (waiting for room) rather than a consumer.
    #[must_use]
    pub fn is_producer(&self) -> bool {
        matches!(self.what, What::SpscProducer { .. } | What::MpmcProducer(_))
    }

    /// Whether the operation would not block now (see [`Select::try_select`] for a whole
    /// set): a message or room is there, the other side is gone, or a value read from shared
    /// memory is bad. Runs the liveness probe when it is due.
    ///
    /// [`Select::try_select`]: super::Select::try_select
    pub fn is_ready(&mut self) -> bool {
        self.poll() != Seen::Pending
    }

    fn peer_side(&self) -> Side {
        if self.is_producer() {
            Side::Consumer
        } else {
            Side::Producer
        }
    }

    /// The wait word an operation of this endpoint sleeps on, and its block.
    pub(super) fn which(&self) -> WaitWord {
        if self.is_producer() {
            WaitWord::NotFull
        } else {
            WaitWord::NotEmpty
        }
    }

    pub(super) fn block(&self) -> &WaitBlock {
        match self.which() {
            WaitWord::NotEmpty => &self.mem.header().not_empty,
            WaitWord::NotFull => &self.mem.header().not_full,
        }
    }

    pub(super) fn mem(&self) -> &Mem {
        &self.mem
    }

    /// Starts this watch's probe schedule one interval from now (a fresh watch probes at its
    /// first look): a watch cloned for every park of an async task would otherwise probe the
    /// peer's liveness on every park.
    pub(super) fn defer_probes(&self) {
        let _ = self.schedule.due();
    }

    /// Makes this watch's probes due now (the reactor runs the probes of all its watches
    /// together, so that it wakes once per interval rather than once per watch).
    pub(super) fn probe_soon(&self) {
        self.schedule.expedite();
    }

    /// How long until this watch's probes are due.
    pub(super) fn until_due(&self) -> Duration {
        self.schedule.until_due()
    }

    /// A message (consumers) or room (producers) is there, or a value read is bad. Loads
    /// only, Relaxed: in the spin phase nothing depends on them but the decision to return,
    /// after which the operation itself loads with Acquire; in the re-check before a sleep
    /// the SeqCst fence orders them (SYNC(sleep): pairs with the fence in `notify`).
    fn go(&self) -> bool {
        let header = self.mem.header();
        match self.what {
            What::SpscConsumer => {
                let head = header.consumer.head.load(Relaxed);
                if head % 8 != 0 || head >= POSITION_LIMIT {
                    return true; // corrupt: the operation reports it
                }
                let word = self
                    .mem
                    .word(self.geo.data_offset + (head & self.geo.mask()));
                let w = word.load(Relaxed);
                w & REC_VALID != 0 && header_tag(w) == record_tag(head)
            }
            What::SpscProducer { len } => {
                let cap = self.geo.capacity;
                let tail = header.producer.tail.load(Relaxed);
                let head = header.consumer.head.load(Relaxed);
                if (head | tail) % 8 != 0 || tail >= POSITION_LIMIT || head > tail {
                    return true;
                }
                if tail - head > cap || len > u64::from(self.geo.max_message) {
                    return true;
                }
                let need = place(tail & self.geo.mask(), len, cap).need();
                head + cap >= tail + need
            }
            What::MpmcConsumer(slots) => {
                let head = header.consumer.head.load(Relaxed);
                let seq = slots.seq(&self.mem, head).load(Relaxed) & !crate::layout::SEQ_LOST;
                // Published, or ahead of the index (it moved meanwhile, or a peer wrote it):
                // either way the operation finds out.
                !before(seq, head.wrapping_add(1))
            }
            What::MpmcProducer(slots) => {
                let tail = header.producer.tail.load(Relaxed);
                let seq = slots.seq(&self.mem, tail).load(Relaxed) & !crate::layout::SEQ_LOST;
                !before(seq, tail)
            }
            What::BroadcastReader { index } => {
                // The reader stores its cursor in its own entry after every read; a value a
                // peer scribbled there makes the arm ready, and the pop reports the truth.
                let cursor = self.mem.entry(index).cursor.load(Relaxed);
                let tail = header.producer.tail.load(Relaxed);
                cursor >= crate::layout::BROADCAST_MAX_POSITION || tail > cursor
            }
        }
    }

    /// A consumer's look at its data alone (loads only): a message is there, or a value read
    /// is bad. Producers answer `false`: their readiness waits for the look at whether the
    /// consumer side closed, which [`peek`](Watch::peek) makes first.
    pub(super) fn has_data(&self) -> bool {
        !self.is_producer() && self.go()
    }

    /// A look with loads only, no probe: the spin phase and the re-check before a sleep.
    pub(super) fn peek(&self) -> Seen {
        let producer = self.is_producer();
        if !producer && self.go() {
            return Seen::Ready;
        }
        let side = self.peer_side();
        let gone = self
            .gone
            .is_some_and(|d| d == registry::side_digest(&self.mem, &self.geo, side))
            || registry::side_closed(&self.mem, &self.geo, side);
        if gone {
            // A consumer looks once more: what the producer committed before it left is
            // visible after the Acquire that saw it leave.
            if !producer && self.go() {
                return Seen::Ready;
            }
            return Seen::Closed;
        }
        if producer && self.go() {
            return Seen::Ready;
        }
        Seen::Pending
    }

    /// A look, plus the slow-path probes when this watch's schedule says they are due: the
    /// header and the mapping intact, the peer alive, no slot stuck. What they find makes the
    /// endpoint's own checks due at once.
    pub(super) fn poll(&mut self) -> Seen {
        match self.peek() {
            Seen::Pending => self.probe(),
            seen => seen,
        }
    }

    /// The probes of [`poll`](Watch::poll) alone, when due (after a look found nothing).
    pub(super) fn probe(&mut self) -> Seen {
        if !self.schedule.due() {
            return Seen::Pending;
        }
        if let Some(digest) = self.gone {
            let now = registry::side_digest(&self.mem, &self.geo, self.peer_side());
            if now != digest {
                self.gone = None; // a peer attached since: judge again
            }
        }
        if !self.intact() || self.stuck() {
            self.endpoint.expedite();
            return Seen::Ready;
        }
        let side = self.peer_side();
        let digest = registry::side_digest(&self.mem, &self.geo, side);
        let state = registry::peer_state(&self.mem, &self.geo, side, &*self.liveness);
        if state.is_disconnected() {
            self.gone = Some(digest);
            self.endpoint.expedite();
            return self.peek();
        }
        Seen::Pending
    }

    /// The header still says what it said at attach, and the mapping was not truncated.
    /// Relaxed, as in `Endpoint::check_integrity`: values compared, nothing read through them.
    fn intact(&self) -> bool {
        let id = &self.mem.header().identity;
        self.mem.check_truncation().is_ok()
            && id.magic.load(Relaxed) == MAGIC
            && id.init.load(Relaxed) == INIT_READY
    }

    /// MPMC: the next slot was claimed by the other side and has not moved for a whole probe
    /// interval (Relaxed loads: a hint for the endpoint's recovery, which loads with Acquire) (its claimant may have died: the endpoint's recovery decides). Transient for a
    /// live, slow peer, so at worst one spurious readiness per interval.
    fn stuck(&self) -> bool {
        let header = self.mem.header();
        match self.what {
            What::MpmcConsumer(slots) => {
                let head = header.consumer.head.load(Relaxed);
                let tail = header.producer.tail.load(Relaxed);
                let seq = slots.seq(&self.mem, head).load(Relaxed) & !crate::layout::SEQ_LOST;
                before(head, tail) && seq == head
            }
            What::MpmcProducer(slots) => {
                let tail = header.producer.tail.load(Relaxed);
                let head = header.consumer.head.load(Relaxed);
                let seq = slots.seq(&self.mem, tail).load(Relaxed) & !crate::layout::SEQ_LOST;
                let prev = tail.wrapping_sub(slots.cap);
                seq == prev.wrapping_add(1) && before(prev, head)
            }
            What::SpscConsumer | What::SpscProducer { .. } | What::BroadcastReader { .. } => false,
        }
    }
}
