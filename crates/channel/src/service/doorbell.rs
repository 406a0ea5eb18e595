//! The server's doorbell: one futex word in the service header that clients bump after they
//! publish something the server waits for (a request, a claim, a departure), so a server
//! serving many sessions sleeps in one place instead of spinning over all of them.
//!
//! The protocol is the rings' own (`crates/ring/src/wait.rs`, *Waiting and waking* in
//! `docs/layout.md`): the server reads `bell`, announces itself in `sleepers`, issues a SeqCst
//! fence, re-checks every session, and only then sleeps on `bell` with the value it read; a
//! client publishes, issues a SeqCst fence, and bumps `bell` and wakes only if `sleepers` is
//! not zero. Either the client's load sees the announcement, or the server's re-check sees
//! the publication; a bump between the server's read and its sleep makes `FUTEX_WAIT` return
//! at once. A client pays a fence and a load per request while the server is busy, a system
//! call only when it sleeps. The words are shared with untrusted processes: a scribbled
//! `sleepers` costs spurious wake-ups, a scribbled `bell` one early return, never a lost
//! request (the server's sleeps are bounded by the liveness interval anyway).
//!
//! The doorbell stays rather than a `Select` over every session's request ring: one word
//! covers any number of sessions (a `futex_waitv` takes at most 128), and a grant, a claim and
//! a departure ring it too. With an [`Interrupt`](ringway_ring::Interrupt), the sleep is on
//! the bell and the interrupt's flag at once (`Interrupt::wait_on`, `futex_waitv`).

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicU32, fence};
use std::time::Duration;

/// The two words of a doorbell, borrowed from the service header (or a slot's `granted`
/// word, which has no sleepers count: it is woken on every grant).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bell<'a> {
    pub(crate) seq: &'a AtomicU32,
    pub(crate) sleepers: &'a AtomicU32,
}

impl Bell<'_> {
    /// Client side, after publishing: wakes the server if it sleeps.
    pub(crate) fn ring(&self) {
        // SYNC(bell): pairs with the fence in `wait`: either this load sees the server's
        // announcement, or the server's re-check sees what the caller published before it.
        fence(SeqCst);
        if self.sleepers.load(Relaxed) != 0 {
            self.seq.fetch_add(1, Release);
            wake(self.seq);
        }
    }

    /// Server side: announces, re-checks with `ready` (which may do the work it finds and
    /// returns whether it found any), and sleeps up to `slice` if it found none, on the bell
    /// and on `interrupt`'s flag at once. Returns what `ready` returned.
    pub(crate) fn wait<T>(
        &self,
        slice: Duration,
        interrupt: Option<&ringway_ring::Interrupt>,
        mut ready: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        let seq = self.seq.load(Acquire);
        self.sleepers.fetch_add(1, SeqCst);
        // SYNC(bell): pairs with the fence in `ring` (see there).
        // SYNC(interrupt): the same fence pairs with the SeqCst store that raises the flag:
        // either the check below sees it, or the raise's wake ends the sleep.
        fence(SeqCst);
        let found = ready();
        if found.is_none() {
            match interrupt {
                Some(interrupt) if interrupt.is_interrupted() => {}
                Some(interrupt) => drop(interrupt.wait_on(self.seq, seq, slice)),
                None => sleep(self.seq, seq, slice),
            }
        }
        self.sleepers.fetch_sub(1, SeqCst);
        found
    }
}

/// Sleeps while `*word == expected`, at most `timeout`; returns on a wake, a timeout, a
/// signal, or at once if the value differs (callers re-check, so the reason does not matter).
pub(crate) fn sleep(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: `word` is a live, 4-byte aligned u32 (an AtomicU32 in a mapping this process
    // holds) for the duration of the call; FUTEX_WAIT only reads it, atomically. `ts` outlives
    // the call and is a relative timeout. No private flag: the word is shared between
    // processes. The result is ignored: EAGAIN, ETIMEDOUT and EINTR all mean "re-check".
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            core::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes every process sleeping on `word`.
pub(crate) fn wake(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE only uses its address as the key of
    // the wait queue. The result (how many woke) is not needed.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            core::ptr::null::<libc::timespec>(),
            core::ptr::null::<u32>(),
            0u32,
        );
    }
}
