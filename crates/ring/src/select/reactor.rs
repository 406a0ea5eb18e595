//! Waking async tasks: a select, run by a waker thread, over the watches of parked tasks.
//!
//! An async operation that finds its ring empty (or full) cannot sleep in the futex itself: it
//! must return `Poll::Pending` and be woken later through its [`Waker`]. A [`Parking`] does
//! that. It hands a clone of the operation's [`Watch`] and the task's waker to a [`Reactor`]:
//! one or a few threads per process, each sleeping in one `futex_waitv` on the wait words of
//! up to [`SHARD_ENTRIES`] parked operations and on a private control word. When a publisher
//! wakes a word, the thread looks at every watch it holds, wakes the wakers of those that are
//! ready (or whose peer is gone) and forgets them.
//!
//! # No lost wake-up
//!
//! The protocol is the blocking wait's (`docs/layout.md`, *Waiting and waking*), with the
//! announcement made by the task and held by the reactor:
//!
//! 1. The task announces on its ring's `waiters` (SeqCst), issues a SeqCst fence, and
//!    re-checks its watch. Ready: it withdraws and the caller retries the operation. Not
//!    ready: the entry goes to a shard, whose control word it bumps (and wakes).
//! 2. The announcement stays in place until the entry leaves the shard. The publisher's
//!    `notify` is unchanged: publish, fence, read `waiters`, and if non-zero bump `seq` and
//!    `FUTEX_WAKE`. By the single wait's argument, every publication the task's re-check missed
//!    is followed by such a bump and wake; with a registered waker's compiler fence (see
//!    `crate::barrier`) that argument needs the sleeper's `membarrier`, which each round
//!    issues before its look, so the round's look or the bump catches it.
//! 3. Each round of the reactor loads the control word, then (under the shard's lock) each
//!    entry's `seq` (Acquire), looks at each watch, fires and removes the ready ones, and
//!    sleeps on the control word and every remaining `seq` with the values it loaded. A bump
//!    the round's load did not see makes the sleep return at once; one it saw carried the
//!    publication with it (Release/Acquire), so the look saw the message. A new entry either
//!    is seen by the round (it was inserted before the round took the lock) or bumped the
//!    control word after the round loaded it.
//!
//! So a publisher makes a system call only while a task is parked on its ring, exactly as
//! with a blocking receiver, and an async operation whose peer keeps up makes none.
//!
//! # Liveness
//!
//! A parked watch's probes (the peer alive, the header intact, no slot stuck) run from the
//! reactor on the endpoint's liveness interval, counted from the park: each sleep is bounded by
//! the earliest of them. A probe that finds the peer dead fires the entry and makes the
//! endpoint's checks due, so the woken task's next try reports `Disconnected`.
//!
//! # Processes
//!
//! The reactor's threads belong to the process that started them. A child made by `fork`
//! has none of them, so [`Reactor::global`] starts a fresh reactor in a child (it counts
//! forks with `pthread_atfork`).

use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::watch::{Seen, Watch};
use crate::mem::{Mem, WaitWord};
use crate::sync::Ordering::{Acquire, Release, SeqCst};
use crate::sync::{AtomicU32, Mutex, fence};

/// The most parked operations one waker thread sleeps on: one `futex_waitv` takes
/// [`FUTEX_WAITV_MAX`](super::FUTEX_WAITV_MAX) words, one of which is the thread's control
/// word. A process with more parked operations runs more threads (1,000 parked receivers:
/// eight).
pub const SHARD_ENTRIES: usize = super::FUTEX_WAITV_MAX - 1;

/// One parked operation.
struct Entry {
    id: u64,
    watch: Watch,
    waker: Waker,
}

impl Entry {
    /// Takes back the announcement the task made when it parked.
    fn withdraw(&self) {
        // SYNC(sleep): pairs with the fence in `notify`: while the count is non-zero, the
        // publisher wakes; after this, it may not.
        self.watch.block().waiters.fetch_sub(1, SeqCst);
    }
}

#[derive(Default)]
struct ShardState {
    entries: Vec<Entry>,
    next_id: u64,
    /// Set by [`Reactor::stop`]: the thread returns once no entry is left.
    stop: bool,
}

/// What one waker thread sleeps on.
struct Shard {
    /// Bumped (Release) after every change of `state` the thread must see before it sleeps
    /// again; a private futex word.
    control: AtomicU32,
    state: Mutex<ShardState>,
}

fn lock<T>(m: &Mutex<T>) -> crate::sync::MutexGuard<'_, T> {
    // A panic while the lock was held leaves the entries consistent (each change is one
    // push or one remove), so a poisoned lock is used as it is.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shard {
    fn new() -> Shard {
        Shard {
            control: AtomicU32::new(0),
            state: Mutex::new(ShardState::default()),
        }
    }

    /// Tells the thread to look at `state` again.
    fn kick(&self) {
        // SYNC(control): pairs with the Acquire load at the start of a round: a change made
        // before this bump is seen by the round that loads it, and a round that loaded an
        // older value sleeps on that value, so the sleep returns at once.
        self.control.fetch_add(1, Release);
        #[cfg(not(ringway_loom))]
        crate::futex::wake_private(&self.control);
        #[cfg(ringway_loom)]
        Mem::futex_wake_words();
    }

    /// One round (see the module docs): fires what is ready, then sleeps on the rest. Returns
    /// `false` once the shard is stopped and empty.
    fn round(&self) -> bool {
        // SYNC(control): pairs with the Release bump in `kick`.
        let control = self.control.load(Acquire);
        let mut fired = Vec::new();
        let mut words: Vec<(Mem, WaitWord, u32)> = Vec::new();
        let mut timeout: Option<Duration> = None;
        let covered;
        {
            let mut state = lock(&self.state);
            if state.stop && state.entries.is_empty() {
                return false;
            }
            let seqs: Vec<u32> = state
                .entries
                .iter()
                // SYNC(sleep): the value the sleep expects; the announcement is in place, so
                // a publication this round's look misses bumps `seq` after this load
                // (Release in `notify`).
                .map(|e| e.watch.block().seq.load(Acquire))
                .collect();
            // SYNC(sleep): as the fence of a single wait's re-check (the loads below see at
            // least what the `seq` loads above synchronised with): the sleeper's side of
            // `crate::barrier`. This round's re-check is what `poll_park`'s announcement
            // relies on when its own look (after a plain SeqCst fence) misses a publication.
            // Without the barrier, the sleep is cut to a fallback slice (see `Waiter::pause`).
            covered = crate::barrier::sleeper_fence();
            // Once one watch's probes are due, everyone's run: the schedules line up, and an
            // idle shard wakes once per liveness interval, not once per parked watch.
            if state.entries.iter().any(|e| e.watch.until_due().is_zero()) {
                state.entries.iter().for_each(|e| e.watch.probe_soon());
            }
            let mut k = 0;
            // One liveness verdict per peer process for the whole round: 100 parked rings
            // fed by one process cost one `/proc` read per interval, not 100.
            crate::proc::sharing_verdicts(|| {
                state.entries.retain_mut(|e| {
                    let seq = seqs[k];
                    k += 1;
                    if e.watch.poll() == Seen::Pending {
                        let word = e.watch.mem().wait_word(e.watch.which());
                        if !words
                            .iter()
                            .any(|(m, w, _)| core::ptr::eq(m.wait_word(*w), word))
                        {
                            words.push((e.watch.mem().clone(), e.watch.which(), seq));
                        }
                        let due = e.watch.until_due();
                        timeout = Some(timeout.map_or(due, |t| t.min(due)));
                        true
                    } else {
                        e.withdraw();
                        fired.push(e.waker.clone());
                        false
                    }
                })
            });
        }
        for waker in fired {
            waker.wake();
        }
        if !covered {
            timeout = Some(timeout.map_or(super::FALLBACK_SLICE, |t| t.min(super::FALLBACK_SLICE)));
        }
        self.sleep(control, &words, timeout);
        true
    }

    /// Sleeps until the control word or a ring's word changes, or `timeout`.
    #[cfg(not(ringway_loom))]
    fn sleep(&self, control: u32, words: &[(Mem, WaitWord, u32)], timeout: Option<Duration>) {
        use core::sync::atomic::Ordering::Relaxed;
        let all = core::iter::once((&self.control, control, false)).chain(
            words
                .iter()
                .map(|(mem, which, seq)| (mem.wait_word(*which), *seq, true)),
        );
        if !super::park::NO_WAITV.load(Relaxed) {
            if crate::futex::wait_any(all, timeout) {
                return;
            }
            super::park::NO_WAITV.store(true, Relaxed);
        }
        // No futex_waitv (Linux before 5.16): the control word, in slices, so the rings are
        // looked at every FALLBACK_SLICE (see `docs/design.md`, *Async*).
        let slice = timeout.map_or(super::FALLBACK_SLICE, |t| t.min(super::FALLBACK_SLICE));
        crate::futex::wait(&self.control, control, Some(slice));
    }

    /// Under loom: the model of `futex_waitv` (no clock).
    #[cfg(ringway_loom)]
    fn sleep(&self, control: u32, words: &[(Mem, WaitWord, u32)], _timeout: Option<Duration>) {
        let mut all: Vec<(&AtomicU32, u32)> = vec![(&self.control, control)];
        all.extend(
            words
                .iter()
                .map(|(mem, which, seq)| (mem.wait_word(*which), *seq)),
        );
        Mem::futex_wait_words(&all);
    }
}

/// The waker threads of a process (see the module docs): [`Reactor::global`] for real use.
pub struct Reactor {
    shards: Mutex<Vec<Arc<Shard>>>,
    /// Whether shards get a thread of their own when made (not for [`Reactor::manual`]).
    threads: bool,
    /// The fork generation this reactor was made in (see [`Reactor::global`]).
    #[cfg_attr(ringway_loom, allow(dead_code))]
    generation: u64,
}

impl core::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Reactor")
            .field("shards", &lock(&self.shards).len())
            .field("threads", &self.threads)
            .finish()
    }
}

#[cfg(not(ringway_loom))]
mod global {
    use std::sync::{Arc, Mutex};

    use super::Reactor;

    pub(super) static GLOBAL: Mutex<Option<Arc<Reactor>>> = Mutex::new(None);

    /// Forks since the handler was installed (it counts them in every child).
    pub(super) fn generation() -> u64 {
        crate::proc::forks::generation()
    }
}

impl Reactor {
    fn new(threads: bool) -> Reactor {
        Reactor {
            shards: Mutex::new(Vec::new()),
            threads,
            #[cfg(not(ringway_loom))]
            generation: global::generation(),
            #[cfg(ringway_loom)]
            generation: 0,
        }
    }

    /// This process's reactor, started lazily: its threads start with the first parks and
    /// then stay, asleep and using no CPU while nothing is parked. In a child made by `fork`
    /// after it started, a new one (the parent's threads do not exist there).
    #[cfg(not(ringway_loom))]
    #[must_use]
    pub fn global() -> Arc<Reactor> {
        let mut slot = lock(&global::GLOBAL);
        match &*slot {
            Some(r) if r.generation == global::generation() => r.clone(),
            _ => {
                let r = Arc::new(Reactor::new(true));
                *slot = Some(r.clone());
                r
            }
        }
    }

    /// A reactor without threads: the caller runs [`serve`](Reactor::serve) (for models and
    /// tests; it has one shard, so at most [`SHARD_ENTRIES`] parked operations).
    #[doc(hidden)]
    #[must_use]
    pub fn manual() -> Arc<Reactor> {
        let r = Reactor::new(false);
        lock(&r.shards).push(Arc::new(Shard::new()));
        Arc::new(r)
    }

    /// Runs the rounds of a [`manual`](Reactor::manual) reactor's shard until
    /// [`stop`](Reactor::stop) and no operation is parked.
    #[doc(hidden)]
    pub fn serve(&self) {
        let shard = lock(&self.shards).first().cloned();
        if let Some(shard) = shard {
            while shard.round() {}
        }
    }

    /// Tells [`serve`](Reactor::serve) to return once nothing is parked.
    #[doc(hidden)]
    pub fn stop(&self) {
        for shard in lock(&self.shards).iter() {
            lock(&shard.state).stop = true;
            shard.kick();
        }
    }

    /// How many operations are parked now.
    #[must_use]
    pub fn parked(&self) -> usize {
        lock(&self.shards)
            .iter()
            .map(|s| lock(&s.state).entries.len())
            .sum()
    }

    /// How many waker threads (shards) it has.
    #[must_use]
    pub fn threads(&self) -> usize {
        lock(&self.shards).len()
    }

    /// Puts `entry` in a shard with room (a new one, with its thread, if none has), kicks
    /// that shard, and returns it with the entry's id.
    fn place(&self, watch: Watch, waker: Waker) -> (Arc<Shard>, u64) {
        let mut shards = lock(&self.shards);
        for shard in shards.iter() {
            let mut state = lock(&shard.state);
            if state.entries.len() < SHARD_ENTRIES || !self.threads {
                let id = state.next_id;
                state.next_id += 1;
                state.entries.push(Entry { id, watch, waker });
                drop(state);
                shard.kick();
                return (shard.clone(), id);
            }
        }
        let shard = Arc::new(Shard::new());
        {
            let mut state = lock(&shard.state);
            state.entries.push(Entry {
                id: 0,
                watch,
                waker,
            });
            state.next_id = 1;
        }
        #[cfg(not(ringway_loom))]
        {
            let serving = shard.clone();
            std::thread::Builder::new()
                .name(format!("ringway-waker-{}", shards.len()))
                .spawn(move || while serving.round() {})
                .expect("ringway: could not start the async waker thread");
        }
        shards.push(shard.clone());
        (shard, 0)
    }
}

/// The parking of one async operation (see the module docs): at most one registration with
/// the reactor at a time, withdrawn when it fires, on [`cancel`](Parking::cancel), or on drop.
///
/// # Examples
/// ```
/// use std::future::poll_fn;
/// use std::task::Poll;
/// use ringway_ring::select::Parking;
/// use ringway_ring::{PopError, spsc};
///
/// let (mut tx, mut rx) = spsc::heap(1024)?;
/// let watch = rx.watch();
/// let mut parking = Parking::new();
/// let mut out = Vec::new();
/// let sender = std::thread::spawn(move || tx.push(b"hi").unwrap());
/// // A minimal executor: block the thread until the future is done.
/// let recv = poll_fn(|cx| loop {
///     match rx.pop(&mut out) {
///         Err(PopError::Empty) => {}
///         other => return Poll::Ready(other),
///     }
///     if parking.poll_park(&watch, cx).is_pending() {
///         return Poll::Pending;
///     }
/// });
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     use std::task::{Context, Wake, Waker};
/// #     struct Thread(std::thread::Thread);
/// #     impl Wake for Thread { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
/// #     let waker = Waker::from(std::sync::Arc::new(Thread(std::thread::current())));
/// #     let mut f = std::pin::pin!(f);
/// #     loop {
/// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v }
/// #         std::thread::park();
/// #     }
/// # }
/// assert_eq!(block_on(recv)?, 2);
/// sender.join().unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Parking {
    reactor: Option<Arc<Reactor>>,
    parked: Option<(Arc<Shard>, u64)>,
}

impl core::fmt::Debug for Parking {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Parking")
            .field("parked", &self.parked.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(not(ringway_loom))]
impl Default for Parking {
    fn default() -> Parking {
        Parking::new()
    }
}

impl Parking {
    /// A parking with the process's [`Reactor::global`] (taken at the first park).
    #[cfg(not(ringway_loom))]
    #[must_use]
    pub fn new() -> Parking {
        Parking {
            reactor: None,
            parked: None,
        }
    }

    /// A parking with the given reactor.
    #[must_use]
    pub fn with_reactor(reactor: Arc<Reactor>) -> Parking {
        Parking {
            reactor: Some(reactor),
            parked: None,
        }
    }

    /// Call after the operation found it must wait (`Empty`, `Full`). Registers the task of
    /// `cx` to be woken when `watch` is ready, and returns `Pending`; or returns `Ready(())`
    /// if a re-check after the announcement found it ready already: retry the operation.
    /// While a registration is in place it only updates the waker (no system call).
    pub fn poll_park(&mut self, watch: &Watch, cx: &mut Context<'_>) -> Poll<()> {
        if let Some((shard, id)) = &self.parked {
            let mut state = lock(&shard.state);
            if let Some(entry) = state.entries.iter_mut().find(|e| e.id == *id) {
                if !entry.waker.will_wake(cx.waker()) {
                    entry.waker = cx.waker().clone();
                }
                return Poll::Pending;
            }
            // Fired, but the operation found nothing (another consumer took the message, or
            // a probe only asked the endpoint to run its checks): park again.
            drop(state);
            self.parked = None;
        }
        let parked = watch.clone();
        parked.defer_probes();
        // SYNC(sleep): the announcement, then the fence before the re-check: pairs with a
        // waker's SeqCst fence in `notify`. A registered waker's compiler fence is completed
        // only by the barrier of the reactor's round, which re-checks after this placement.
        parked.block().waiters.fetch_add(1, SeqCst);
        fence(SeqCst);
        if parked.peek() != Seen::Pending {
            parked.block().waiters.fetch_sub(1, SeqCst);
            return Poll::Ready(());
        }
        let reactor = self.reactor();
        self.parked = Some(reactor.place(parked, cx.waker().clone()));
        Poll::Pending
    }

    #[cfg(not(ringway_loom))]
    fn reactor(&mut self) -> Arc<Reactor> {
        match &self.reactor {
            Some(r) if r.generation == global::generation() || !r.threads => r.clone(),
            _ => {
                let r = Reactor::global();
                self.reactor = Some(r.clone());
                r
            }
        }
    }

    #[cfg(ringway_loom)]
    fn reactor(&mut self) -> Arc<Reactor> {
        self.reactor
            .clone()
            .expect("a loom parking has a manual reactor")
    }

    /// Whether a registration is in place (it may have fired since).
    #[must_use]
    pub fn is_parked(&self) -> bool {
        self.parked.is_some()
    }

    /// Withdraws the registration, if it has not fired (the operation was cancelled or
    /// completed another way).
    pub fn cancel(&mut self) {
        if let Some((shard, id)) = self.parked.take() {
            let mut state = lock(&shard.state);
            if let Some(i) = state.entries.iter().position(|e| e.id == id) {
                let entry = state.entries.swap_remove(i);
                entry.withdraw();
                drop(state);
                // The thread may sleep on this entry's word: let it re-arm without it. Its
                // sleep holds its own handle on the memory, so dropping ours is safe.
                shard.kick();
            }
        }
    }
}

impl Drop for Parking {
    fn drop(&mut self) {
        self.cancel();
    }
}
