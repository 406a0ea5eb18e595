//! Sleeping on the wait words of many rings at once: `futex_waitv`, or the fallback.
//!
//! The protocol is the single wait's (`docs/layout.md`, *Waiting and waking*) applied to every
//! arm before one sleep: load each arm's `seq`, announce on each arm's `waiters`, one SeqCst
//! fence, re-check every arm, sleep on all the `seq` words (and the interrupt flags), then
//! withdraw every announcement (the fences are those of `crate::barrier`: the sleeper's
//! SeqCst fence and `membarrier`, the waker's compiler or SeqCst fence). A waker on any arm
//! runs the unchanged `notify`: fence, read
//! `waiters`, bump `seq`, `FUTEX_WAKE`. Per arm the argument is the single wait's: either the
//! waker's load of `waiters` sees our announcement, and then it bumps `seq` after our load of
//! it, so the sleep (which compares every word with the value loaded before the announcement)
//! returns at once or is woken; or our re-check sees what the waker published before its
//! fence. One arm's wake ends the sleep on all of them.
//!
//! Fallback, where one `futex_waitv` cannot cover the arms (a kernel before 5.16, which answers
//! `ENOSYS`, or more words than [`FUTEX_WAITV_MAX`]): the sleep is cut into slices of at most
//! [`FALLBACK_SLICE`], after each of which every arm is looked at again. Without `futex_waitv`
//! the slice sleeps in `FUTEX_WAIT` on one arm's word (the first arm the rotating scan will
//! look at), so that arm still wakes it at once; the others are seen within a slice. With too
//! many words, the first `FUTEX_WAITV_MAX` (from the rotating start, interrupts first) are
//! waited on and the rest are seen within a slice.

use std::time::Duration;

#[cfg(not(ringway_loom))]
use std::sync::atomic::AtomicBool;

use super::watch::{Seen, Watch};
use crate::interrupt::Interrupt;
use crate::mem::{Mem, WaitWord};
use crate::sync::Ordering::{Acquire, SeqCst};

/// The longest slice of a fallback sleep: how late, at worst, an arm that the sleep does not
/// cover is seen. A fallback select wakes about a thousand times a second while idle.
pub const FALLBACK_SLICE: Duration = Duration::from_millis(1);

/// The most futexes one `futex_waitv` call takes (`FUTEX_WAITV_MAX` of `<linux/futex.h>`):
/// the interrupts and the arms' distinct wait words together.
pub const FUTEX_WAITV_MAX: usize = 128;

/// Set once a `futex_waitv` call answered `ENOSYS`: this kernel lacks it, use the fallback.
/// Relaxed everywhere: a process-private hint that publishes nothing (a select that has not
/// seen it yet makes one more `ENOSYS` call).
#[cfg(not(ringway_loom))]
pub(super) static NO_WAITV: AtomicBool = AtomicBool::new(false);

/// One announcement: the arm's memory, its word, and the `seq` value loaded before it.
struct Announced<'a> {
    mem: &'a Mem,
    which: WaitWord,
    seq: u32,
}

/// Announces on every live arm, re-checks them all, and sleeps unless one is ready (or an
/// interrupt is raised). Returns the index of the first arm (from `start`) the re-check
/// found ready or closed, with what it saw.
pub(super) fn park(
    arms: &[Option<Watch>],
    start: usize,
    interrupts: &[Interrupt],
    slice: Option<Duration>,
    fallback: bool,
) -> Option<(usize, Seen)> {
    let n = arms.len();
    let order = (0..n).map(|k| (start + k) % n);
    let mut announced: Vec<Announced<'_>> = Vec::with_capacity(n);
    for i in order.clone() {
        let Some(watch) = &arms[i] else { continue };
        let block = watch.block();
        // SYNC(sleep): the value the sleep expects; a waker that sees our announcement bumps
        // it afterwards (Release in `notify`), so the sleep cannot miss that wake.
        let seq = block.seq.load(Acquire);
        // SYNC(sleep): the announcement; the waker's Relaxed load of `waiters` after its
        // fence in `notify` sees it, or our re-check after the fence below sees its publication.
        block.waiters.fetch_add(1, SeqCst);
        announced.push(Announced {
            mem: watch.mem(),
            which: watch.which(),
            seq,
        });
    }
    // SYNC(sleep): pairs with the waker's fence in `notify`, per arm (see the module docs and
    // `crate::barrier`). Without the barrier (`covered` false) a registered waker may have
    // missed the announcement while its publication was not yet visible to the re-check: the
    // sleep is then cut into fallback slices, so the arm is looked at again within one.
    // SYNC(interrupt): the SeqCst fence in it pairs with the SeqCst store in
    // `Interrupt::interrupt`.
    let covered = crate::barrier::sleeper_fence();
    let mut found = None;
    for i in order {
        let Some(watch) = &arms[i] else { continue };
        match watch.peek() {
            Seen::Pending => {}
            seen => {
                found = Some((i, seen));
                break;
            }
        }
    }
    if found.is_none() && !interrupts.iter().any(Interrupt::is_interrupted) {
        sleep(&announced, interrupts, slice, fallback || !covered);
    }
    for a in &announced {
        let block = match a.which {
            WaitWord::NotEmpty => &a.mem.header().not_empty,
            WaitWord::NotFull => &a.mem.header().not_full,
        };
        // SYNC(sleep): withdrawn after the sleep; a waker that still sees it only makes one
        // system call too many, as for a single wait.
        block.waiters.fetch_sub(1, SeqCst);
    }
    found
}

/// The sleep itself, on every announced word at once where the kernel allows.
#[cfg(not(ringway_loom))]
fn sleep(
    announced: &[Announced<'_>],
    interrupts: &[Interrupt],
    slice: Option<Duration>,
    fallback: bool,
) {
    if announced.is_empty() {
        // No arms: only the deadline (or an interrupt) can end the wait.
        let d = slice.unwrap_or(Duration::from_secs(3600));
        match interrupts.first() {
            Some(i) => drop(i.sleep(d)),
            None => std::thread::sleep(d),
        }
        return;
    }
    let mut words: Vec<(&crate::sync::AtomicU32, u32, bool)> =
        Vec::with_capacity(announced.len() + interrupts.len());
    words.extend(interrupts.iter().map(|i| (i.word(), 0, false)));
    for a in announced {
        let word = a.mem.wait_word(a.which);
        // Two arms on one ring's word (say, two consumers of one MPMC ring) need it once.
        if !words.iter().any(|(w, _, _)| core::ptr::eq(*w, word)) {
            words.push((word, a.seq, true));
        }
    }
    let short =
        |slice: Option<Duration>| Some(slice.map_or(FALLBACK_SLICE, |s| s.min(FALLBACK_SLICE)));
    if !fallback && !NO_WAITV.load(core::sync::atomic::Ordering::Relaxed) {
        let covered = words.len() <= FUTEX_WAITV_MAX;
        let slice = if covered { slice } else { short(slice) };
        if crate::futex::wait_any(words.iter().copied(), slice) {
            return;
        }
        NO_WAITV.store(true, core::sync::atomic::Ordering::Relaxed);
    }
    // Fallback: one word, short slices. The first arm announced is the first the rotating
    // scan looks at.
    let a = &announced[0];
    a.mem.futex_wait(a.which, a.seq, short(slice));
}

/// Under loom: the model of `futex_waitv` (no clock, no interrupts, no fallback).
#[cfg(ringway_loom)]
fn sleep(
    announced: &[Announced<'_>],
    _interrupts: &[Interrupt],
    _slice: Option<Duration>,
    _fallback: bool,
) {
    let words: Vec<(&Mem, WaitWord, u32)> =
        announced.iter().map(|a| (a.mem, a.which, a.seq)).collect();
    Mem::futex_wait_any(&words);
}

/// Whether this process has found that its kernel lacks `futex_waitv`.
#[must_use]
pub fn waitv_unavailable() -> bool {
    #[cfg(not(ringway_loom))]
    return NO_WAITV.load(core::sync::atomic::Ordering::Relaxed);
    #[cfg(ringway_loom)]
    false
}
