//! Waiting for the first of many endpoints, across processes, without spinning a core.
//!
//! A [`Select`] owns a set of [`Watch`]es, readiness handles made by `watch()` on consumers
//! (a message is there) and producers (room for a message of a given size), and returns the
//! index of the first one whose operation would not block, in the style of
//! `crossbeam_channel::Select::ready`. The caller then runs the operation itself, on the
//! endpoint it still owns (a `pop`, a `push`): a watch borrows nothing, so the endpoints'
//! `&mut self` calls borrow-check while the select lives.
//!
//! Waiting follows the endpoint's [`WaitStrategy`]: spin over the arms
//! briefly, yield, then sleep on every arm's wait word at once with `futex_waitv` (Linux
//! 5.16), announcing on every arm before a re-check so that no wake-up is lost (see `park`
//! and `docs/layout.md`, *Waiting and waking*); a producer's `notify` is the one a single
//! wait uses, unchanged. Where `futex_waitv` is missing or the arms need more than
//! [`FUTEX_WAITV_MAX`] words, the sleep is cut into slices of [`FALLBACK_SLICE`] (see
//! `docs/design.md`, *Select*). Interrupts of the arms' endpoints end the wait.
//!
//! Each select starts its scan at the arm after the last one it returned, so one busy arm
//! does not starve the others.
//!
//! # Examples
//! ```
//! use std::time::Duration;
//! use ringway_ring::select::{Select, SelectError};
//! use ringway_ring::spsc;
//!
//! let (mut tx_a, mut rx_a) = spsc::heap(1024)?;
//! let (mut tx_b, mut rx_b) = spsc::heap(1024)?;
//! let mut sel = Select::new();
//! let a = sel.add(rx_a.watch());
//! let b = sel.add(rx_b.watch());
//! assert_eq!(sel.try_select(), Err(SelectError::Empty));
//!
//! tx_b.push(b"to b")?;
//! let ready = sel.select_timeout(Duration::from_secs(5))?;
//! assert_eq!(ready.index(), b);
//! let mut out = Vec::new();
//! rx_b.pop(&mut out)?; // the select borrowed nothing: the endpoint is ours to use
//! assert_eq!(out, b"to b");
//!
//! drop(tx_a); // a closed arm reports closed
//! let ready = sel.select()?;
//! assert_eq!((ready.index(), ready.is_closed()), (a, true));
//! # let _ = (&mut rx_a, &mut tx_b);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod park;
mod reactor;
mod watch;

use std::time::{Duration, Instant};

pub use park::{FALLBACK_SLICE, FUTEX_WAITV_MAX, waitv_unavailable};
pub use reactor::{Parking, Reactor, SHARD_ENTRIES};
pub use watch::Watch;

use crate::interrupt::Interrupt;
use crate::sync::{spin_hint, yield_now};
use crate::wait::{Pause, Wait, WaitStrategy};
use watch::Seen;

/// The arm a select found ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Selected {
    index: usize,
    closed: bool,
}

impl Selected {
    /// The index [`Select::add`] returned for the arm.
    #[must_use]
    pub fn index(&self) -> usize {
        self.index
    }

    /// `true` if the other side of the arm left or died (for a consumer: and nothing it
    /// committed is left): the operation reports `Closed`/`Disconnected`. `false`: it
    /// should find a message or room (see [`Watch`] on why it may still not).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

/// Why a select returned no arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SelectError {
    /// [`Select::try_select`]: no arm is ready now.
    Empty,
    /// The deadline passed with no arm ready.
    Timeout,
    /// The [`Interrupt`] of an arm's endpoint is raised.
    Interrupted,
}

impl core::fmt::Display for SelectError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SelectError::Empty => "select: no operation is ready",
            SelectError::Timeout => "select: timed out with no operation ready",
            SelectError::Interrupted => "select: interrupted",
        })
    }
}

impl std::error::Error for SelectError {}

/// A set of [`Watch`]es to wait on (see the module docs).
///
/// # Invariants
/// - `start < arms.len()` or `arms` is empty.
/// - A removed arm leaves `None`, so the indices of the others do not change.
#[derive(Debug, Default)]
pub struct Select {
    arms: Vec<Option<Watch>>,
    /// Where the next scan starts: after the arm last returned.
    start: usize,
    strategy: Option<WaitStrategy>,
    fallback: bool,
}

impl Select {
    /// An empty set.
    #[must_use]
    pub fn new() -> Select {
        Select::default()
    }

    /// Adds an arm; returns its index, which [`Selected::index`] reports.
    pub fn add(&mut self, watch: Watch) -> usize {
        self.arms.push(Some(watch));
        self.arms.len() - 1
    }

    /// Removes arm `index` (the others keep theirs) and returns its watch.
    ///
    /// # Panics
    /// If `index` was never returned by [`add`](Select::add) or was removed already.
    pub fn remove(&mut self, index: usize) -> Watch {
        self.arms
            .get_mut(index)
            .and_then(Option::take)
            .expect("Select::remove: no arm at this index")
    }

    /// The number of arms.
    #[must_use]
    pub fn len(&self) -> usize {
        self.arms.iter().filter(|a| a.is_some()).count()
    }

    /// Whether there are no arms.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How to wait (default: the strategy of the first arm's endpoint, else
    /// [`WaitStrategy::SpinThenPark`]).
    pub fn wait_strategy(&mut self, strategy: WaitStrategy) -> &mut Select {
        self.strategy = Some(strategy);
        self
    }

    /// Sleeps as a kernel without `futex_waitv` does: in slices of at most
    /// [`FALLBACK_SLICE`] on one arm's word, looking at every arm after each (for tests of
    /// that path, and to measure it).
    pub fn force_fallback(&mut self, on: bool) -> &mut Select {
        self.fallback = on;
        self
    }

    /// The first ready arm, without waiting.
    ///
    /// # Errors
    /// [`SelectError::Empty`] if none is.
    pub fn try_select(&mut self) -> Result<Selected, SelectError> {
        self.select_with(Wait::Try)
    }

    /// Waits until an arm is ready. With no arms, it waits for ever.
    ///
    /// # Errors
    /// [`SelectError::Interrupted`].
    pub fn select(&mut self) -> Result<Selected, SelectError> {
        self.select_with(Wait::Forever)
    }

    /// Waits up to `timeout` for an arm to be ready.
    ///
    /// # Errors
    /// [`SelectError::Timeout`], [`SelectError::Interrupted`].
    pub fn select_timeout(&mut self, timeout: Duration) -> Result<Selected, SelectError> {
        self.select_with(Wait::For(timeout))
    }

    /// Waits until `deadline` for an arm to be ready.
    ///
    /// # Errors
    /// [`SelectError::Timeout`], [`SelectError::Interrupted`].
    pub fn select_deadline(&mut self, deadline: Instant) -> Result<Selected, SelectError> {
        self.select_with(Wait::Until(deadline))
    }

    /// The one entry point of the `select` calls: the first ready arm, waiting as `wait`
    /// allows. Looks at every arm once first, so an arm that is ready is returned even if an
    /// interrupt is raised or the deadline has passed.
    ///
    /// # Errors
    /// [`SelectError::Empty`] for [`Wait::Try`], [`SelectError::Timeout`],
    /// [`SelectError::Interrupted`].
    pub fn select_with(&mut self, wait: Wait) -> Result<Selected, SelectError> {
        if let Some(found) = self.scan(true) {
            return Ok(found);
        }
        let strategy = self.strategy.unwrap_or_else(|| {
            self.arms
                .iter()
                .flatten()
                .next()
                .map_or(WaitStrategy::default(), |w| w.strategy)
        });
        let Some(mut waiter) = wait.deadline_waiter(strategy) else {
            return Err(SelectError::Empty);
        };
        let interrupts = self.interrupts();
        let live = self.len().max(1) as u32;
        let (spins, yields) = (strategy.spins(), strategy.yields());
        let (mut spun, mut yielded) = (0u32, 0u32);
        loop {
            if interrupts.iter().any(Interrupt::is_interrupted) {
                return Err(SelectError::Interrupted);
            }
            if spins.is_none_or(|limit| spun < limit) {
                // A burst of about 1024 arm looks (loads only), then the clock and the probes.
                let burst = spun.saturating_add(1024);
                while spun < burst && spins.is_none_or(|limit| spun < limit) {
                    spun = spun.saturating_add(live);
                    if let Some(found) = self.scan(false) {
                        return Ok(found);
                    }
                    spin_hint();
                }
            } else if yielded < yields {
                yielded += 1;
                yield_now();
            } else {
                if waiter.clock() == Pause::TimedOut {
                    return Err(SelectError::Timeout);
                }
                let mut slice = self.arms.iter().flatten().map(Watch::until_due).min();
                if let Some(left) = waiter.remaining() {
                    slice = Some(slice.map_or(left, |s| s.min(left)));
                }
                if cfg!(ringway_loom) {
                    slice = None;
                }
                if let Some((index, seen)) =
                    park::park(&self.arms, self.start, &interrupts, slice, self.fallback)
                {
                    return Ok(self.selected(index, seen));
                }
            }
            if waiter.clock() == Pause::TimedOut {
                return Err(SelectError::Timeout);
            }
            if let Some(found) = self.scan(true) {
                return Ok(found);
            }
        }
    }

    /// The distinct interrupts of the arms' endpoints.
    fn interrupts(&self) -> Vec<Interrupt> {
        let mut out: Vec<Interrupt> = Vec::new();
        for watch in self.arms.iter().flatten() {
            if let Some(i) = &watch.interrupt {
                if !out.iter().any(|o| o.same(i)) {
                    out.push(i.clone());
                }
            }
        }
        out
    }

    /// Looks at every arm once, from `start` (loads only); then, if none is ready and
    /// `probe` is set, runs each watch's slow-path probes that are due. The looks come first
    /// so that a ready arm costs no clock reads for the idle ones, and the looks at data
    /// come before the looks at the peers' registration entries (whether a side closed), so
    /// that a message on one arm costs one or two cached loads per idle arm, not a walk of
    /// each idle arm's table.
    fn scan(&mut self, probe: bool) -> Option<Selected> {
        if let Some(i) = self
            .rotation()
            .find(|&i| self.arms[i].as_ref().is_some_and(Watch::has_data))
        {
            return Some(self.selected(i, Seen::Ready));
        }
        for i in self.rotation() {
            if let Some(watch) = &self.arms[i] {
                let seen = watch.peek();
                if seen != Seen::Pending {
                    return Some(self.selected(i, seen));
                }
            }
        }
        if !probe {
            return None;
        }
        for i in self.rotation() {
            if let Some(watch) = &mut self.arms[i] {
                let seen = watch.probe();
                if seen != Seen::Pending {
                    return Some(self.selected(i, seen));
                }
            }
        }
        None
    }

    /// Every arm's index once, from `start` round to `start - 1` (two ranges, no division
    /// per arm: this runs for every message a busy select receives).
    fn rotation(&self) -> impl Iterator<Item = usize> + use<> {
        let (n, start) = (self.arms.len(), self.start.min(self.arms.len()));
        (start..n).chain(0..start)
    }

    fn selected(&mut self, index: usize, seen: Seen) -> Selected {
        self.start = (index + 1) % self.arms.len();
        Selected {
            index,
            closed: seen == Seen::Closed,
        }
    }
}
