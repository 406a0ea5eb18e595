//! Waking a blocked call from another thread or from a signal handler.
//!
//! An [`Interrupt`] is a flag, private to the process, that the blocking calls of every
//! endpoint attached with it ([`AttachOptions::interrupt`](crate::AttachOptions::interrupt))
//! watch while they wait. Raising it is an atomic store and a `FUTEX_WAKE`, nothing else, so
//! it may be done from a signal handler. A waiting call sleeps on two futexes at once
//! (`futex_waitv`): the ring's wait word, shared with the other process, and the flag; it
//! announces itself, re-checks its condition *and the flag*, then sleeps, so a raise either is
//! seen by the re-check or wakes the sleep (the flag no longer holds the value the sleep
//! expects) — the same argument as for the ring's own wake-ups. On a kernel without
//! `futex_waitv` (before 5.16) the sleep is cut into slices of at most 10 ms, and a raise is
//! seen within one slice.
//!
//! The flag is sticky: once raised, every blocking or timed call of those endpoints that would
//! have to wait returns `Interrupted` at once, having done nothing (a call that can complete
//! without waiting still completes, and non-blocking calls are not affected), until
//! [`Interrupt::clear`]. That is what a shutdown wants: a signal that arrives between two calls
//! is not lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// A flag that interrupts blocking calls (see the module docs). Cloning shares the flag.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ringway_ring::{AttachOptions, Interrupt, PopError, RingConfig, RingMemory, spsc};
///
/// let stop = Interrupt::new();
/// let memory = RingMemory::heap(&RingConfig::spsc(1024))?;
/// let opts = AttachOptions::new().interrupt(stop.clone());
/// let _tx = spsc::Producer::attach(&memory, &opts)?;
/// let mut rx = spsc::Consumer::attach(&memory, &opts)?;
/// let waker = std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(20));
///     stop.interrupt(); // also fine from a signal handler
/// });
/// let mut out = Vec::new();
/// assert_eq!(rx.pop_blocking(&mut out), Err(PopError::Interrupted));
/// waker.join().unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    /// `0` until raised, then `1`; a futex word private to this process.
    word: Arc<AtomicU32>,
}

impl Interrupt {
    /// A flag that is not raised.
    #[must_use]
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Raises the flag and wakes every call waiting on it.
    ///
    /// Async-signal-safe: an atomic store and a `FUTEX_WAKE` system call, no allocation, no
    /// lock. Call it from a signal handler (with `signal-hook`'s `low_level::register`, for
    /// example) through a clone kept for the purpose.
    pub fn interrupt(&self) {
        // SYNC(interrupt): SeqCst pairs with the waiter's SeqCst fence before its re-check:
        // either the re-check sees the flag, or the sleep sees the word changed.
        self.word.store(1, Ordering::SeqCst);
        #[cfg(not(ringway_loom))]
        crate::futex::wake_private(&self.word);
    }

    /// Whether the flag is raised.
    #[must_use]
    pub fn is_interrupted(&self) -> bool {
        self.word.load(Ordering::SeqCst) != 0
    }

    /// Sleeps up to `duration`, or less if the flag is raised meanwhile (or already is).
    /// Returns whether it is raised. For waits of the layers above that are not ring waits
    /// (waiting for a channel's creator, say).
    pub fn sleep(&self, duration: std::time::Duration) -> bool {
        #[cfg(not(ringway_loom))]
        if !self.is_interrupted()
            && !crate::futex::wait_any([(&*self.word, 0, false)], Some(duration))
        {
            // No futex_waitv (Linux before 5.16): sleep the whole duration on the flag's word
            // (a raise is seen when it ends; the wake is private, this wait is not).
            crate::futex::wait(&self.word, 0, Some(duration));
        }
        #[cfg(ringway_loom)]
        let _ = duration;
        self.is_interrupted()
    }

    /// Sleeps while the futex `word` (in shared memory or not) holds `expected`, up to
    /// `timeout`, or until this flag is raised: the building block for a layer above that
    /// waits on a word of its own (a doorbell) and must stay interruptible. Returns whether
    /// the flag is raised. A wake on `word`, a value other than `expected`, the timeout or a
    /// signal all return; callers re-check what they wait for.
    ///
    /// Both words are slept on at once with `futex_waitv` (Linux 5.16); without it, the sleep
    /// is on `word` alone, cut into slices of at most 10 ms, so a raise is seen within one.
    pub fn wait_on(&self, word: &AtomicU32, expected: u32, timeout: std::time::Duration) -> bool {
        #[cfg(not(ringway_loom))]
        if !self.is_interrupted() {
            let words = [(word, expected, true), (&*self.word, 0, false)];
            if !crate::futex::wait_any(words, Some(timeout)) {
                let slice = timeout.min(std::time::Duration::from_millis(10));
                crate::futex::wait(word, expected, Some(slice));
            }
        }
        #[cfg(ringway_loom)]
        let _ = (word, expected, timeout);
        self.is_interrupted()
    }

    /// Lowers the flag: blocking calls wait again.
    pub fn clear(&self) {
        self.word.store(0, Ordering::SeqCst);
    }

    /// Whether `other` is a clone of this flag.
    pub(crate) fn same(&self, other: &Interrupt) -> bool {
        Arc::ptr_eq(&self.word, &other.word)
    }

    #[cfg(not(ringway_loom))]
    pub(crate) fn word(&self) -> &AtomicU32 {
        &self.word
    }
}

#[cfg(all(test, not(ringway_loom)))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// `wait_on` ends on a raise of the flag and on a wake of the word, each long before its
    /// timeout (a minute: a missed raise or wake would make the wait run it out).
    #[test]
    fn wait_on_ends_on_a_raise_or_a_wake_of_the_word() {
        let long = Duration::from_secs(60);
        let word = Arc::new(AtomicU32::new(7));
        let stop = Interrupt::new();
        let (w, s) = (word.clone(), stop.clone());
        let waiter = std::thread::spawn(move || {
            let start = Instant::now();
            // As a caller does: wait again until raised (without futex_waitv, as under Miri,
            // one call sleeps at most a 10 ms slice).
            let mut raised = false;
            while !raised && start.elapsed() < long {
                raised = s.wait_on(&w, 7, long);
            }
            (raised, start.elapsed())
        });
        std::thread::sleep(Duration::from_millis(20));
        stop.interrupt();
        let (raised, took) = waiter.join().unwrap();
        assert!(raised && took < Duration::from_secs(30), "{took:?}");

        stop.clear();
        let (w, s) = (word.clone(), stop.clone());
        let waiter = std::thread::spawn(move || {
            let start = Instant::now();
            // Re-checks its own condition as a caller would: until the word moved.
            while w.load(Ordering::SeqCst) == 7 && start.elapsed() < long {
                assert!(!s.wait_on(&w, 7, long), "not raised");
            }
            start.elapsed()
        });
        std::thread::sleep(Duration::from_millis(20));
        word.store(8, Ordering::SeqCst);
        crate::futex::wake_all(&word);
        let took = waiter.join().unwrap();
        assert!(took < Duration::from_secs(30), "{took:?}");
    }
}
