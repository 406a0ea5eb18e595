//! The asymmetric fence of the wait protocol: a compiler fence on the waking side (every
//! send), `membarrier` on the sleeping side (rare).
//!
//! The protocol needs, between a waker's publication and its load of `waiters`, and between a
//! sleeper's increment of `waiters` and its re-check, a full fence on each side (the
//! store-load pattern of `docs/layout.md`, *Waiting and waking*). A SeqCst fence on every send
//! drains the sender's store buffer, behind lines the receiver has just read: on this VM it
//! halved one-way 64-byte throughput. `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` issued by
//! the sleeper makes every running thread of every process registered with
//! `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED` execute a full barrier somewhere between the
//! call's start and its return (a thread not running has passed one in its context switch), so
//! a registered waker's compiler fence, which keeps the compiler from moving its load of
//! `waiters` above its publication, is as good as a real fence for this pairing. The argument
//! is in `docs/design.md`, *Waiting*.
//!
//! Who does what:
//! - every process that attaches an endpoint registers itself, once (it is the waker of its
//!   own sends); only a process whose registration succeeded ([`waker_fence`] then answers
//!   with a compiler fence) leaves out the real fence, and a forked child, whose memory is not
//!   registered, starts over with the real fence;
//! - every sleeper issues the barrier after announcing itself (and keeps its real fence,
//!   which is cheap next to a sleep and still pairs with wakers that are not registered);
//!   [`sleeper_fence`] says whether the barrier was issued, and a sleeper that could not issue
//!   it (an old kernel, a seccomp filter) does not rely on it: it sleeps first only briefly
//!   and looks again (see `Waiter::pause`).
//!
//! `RINGWAY_MEMBARRIER` in the environment (read once per process) forces the fallbacks, for
//! tests and for kernels where `membarrier` misbehaves: `off` neither registers nor issues
//! the barrier, `no-barrier` registers (wakers use the compiler fence) but never issues it
//! (sleepers take their fallback).
//!
//! Under loom, which cannot model `membarrier`, both sides issue a SeqCst fence: the model
//! checks the protocol with the fences where the argument places them.

use crate::sync::Ordering::SeqCst;
use crate::sync::fence;

/// How long a sleeper that could not issue the barrier sleeps before it looks again: long
/// enough for a waker's publication to have left its store buffer (nanoseconds), short
/// enough that a wake-up lost to the compiler fence costs little.
#[cfg(not(ringway_loom))]
pub(crate) const UNCOVERED_SLICE: std::time::Duration = std::time::Duration::from_millis(1);

#[cfg(not(ringway_loom))]
mod imp {
    use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

    const MEMBARRIER_CMD_QUERY: libc::c_int = 0;
    const MEMBARRIER_CMD_GLOBAL_EXPEDITED: libc::c_int = 1 << 1;
    const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_int = 1 << 2;

    /// This process is registered for `MEMBARRIER_CMD_GLOBAL_EXPEDITED`: its wakers may use a
    /// compiler fence. Cleared in a forked child (its memory is a new, unregistered one).
    pub(super) static REGISTERED: AtomicBool = AtomicBool::new(false);
    /// The sleepers of this process cannot issue the barrier (it failed once, or the
    /// environment forbids it). Sticky; cleared in a forked child, which tries again.
    pub(super) static NO_BARRIER: AtomicBool = AtomicBool::new(false);
    /// The process key (see `proc::process_key`) [`register`] last ran in; `0`: never.
    static DONE: AtomicU64 = AtomicU64::new(0);
    /// The `pthread_atfork` handler: `0` not installed, `1` being installed, `2` installed.
    /// No lock and no `Once` here: a child forked while another thread held one would
    /// inherit it held and deadlock on its first attach (a channel test forks while other
    /// tests attach).
    static HANDLER: AtomicU8 = AtomicU8::new(0);

    /// Installs the child handler; `false` while another thread is installing it (or was,
    /// in the parent this child was forked from): this process then stays unregistered,
    /// which only keeps the real fence, until a later attach finds it installed.
    fn handler_installed() -> bool {
        match HANDLER.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                // SAFETY: `in_child` is a valid `extern "C" fn()` that lives for the whole
                // program and only stores to atomics, which a child of a multi-threaded fork
                // may do.
                unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
                // Release: a thread that sees `2` sees the handler installed.
                HANDLER.store(2, Ordering::Release);
                true
            }
            Err(state) => state == 2,
        }
    }

    extern "C" fn in_child() {
        // Async-signal-safe: two atomic stores. The child's memory is not registered: its
        // wakers must use the real fence until it registers itself.
        REGISTERED.store(false, Ordering::Relaxed);
        NO_BARRIER.store(false, Ordering::Relaxed);
    }

    fn membarrier(cmd: libc::c_int) -> libc::c_long {
        // SAFETY: membarrier takes two integers and touches no memory of ours; every command
        // and every failure (ENOSYS, EINVAL, EPERM from a seccomp filter) is harmless.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_uint,
                0 as libc::c_int,
            )
        }
    }

    /// What the environment allows: `(register, barrier)`. Read once per process image and
    /// kept (a forked child keeps its parent's answer without reading the environment,
    /// whose lock another thread of the parent may have held at the fork).
    fn allowed() -> (bool, bool) {
        /// `0`: not read yet; else `1 + register + 2 * barrier`.
        static ALLOWED: AtomicU8 = AtomicU8::new(0);
        let mut seen = ALLOWED.load(Ordering::Relaxed);
        if seen == 0 {
            let (register, barrier) = match std::env::var("RINGWAY_MEMBARRIER").as_deref() {
                Ok("off") => (false, false),
                Ok("no-barrier") => (true, false),
                _ => (true, true),
            };
            seen = 1 + u8::from(register) + 2 * u8::from(barrier);
            ALLOWED.store(seen, Ordering::Relaxed);
        }
        ((seen - 1) & 1 != 0, (seen - 1) & 2 != 0)
    }

    pub(super) fn register() {
        if cfg!(miri) {
            NO_BARRIER.store(true, Ordering::Relaxed);
            return;
        }
        let key = crate::proc::process_key();
        // Acquire pairs with the Release store below: whoever sees the key sees the flags.
        if DONE.load(Ordering::Acquire) == key {
            return;
        }
        // Threads that race here all query and register (both idempotent) and store the
        // same answers.
        if !handler_installed() {
            return;
        }
        let (may_register, may_barrier) = allowed();
        let query = membarrier(MEMBARRIER_CMD_QUERY);
        let supports = |cmd: libc::c_int| query > 0 && (query & libc::c_long::from(cmd)) != 0;
        if !may_barrier || !supports(MEMBARRIER_CMD_GLOBAL_EXPEDITED) {
            NO_BARRIER.store(true, Ordering::Relaxed);
        }
        if may_register
            && supports(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED)
            && membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0
        {
            // SYNC(membarrier): Release, with the Acquire load in `waker_fence`: a waker that
            // sees the flag runs after the registration returned, so every barrier issued
            // from then on reaches it, and one issued before found a sleeper's announcement
            // already visible to the waker's later load (see docs/design.md, *Waiting*).
            REGISTERED.store(true, Ordering::Release);
        }
        DONE.store(key, Ordering::Release);
    }

    /// Issues the barrier; `false` if this process cannot.
    pub(super) fn barrier() -> bool {
        if NO_BARRIER.load(Ordering::Relaxed) {
            return false;
        }
        if membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0 {
            return true;
        }
        NO_BARRIER.store(true, Ordering::Relaxed);
        false
    }
}

/// Registers this process as a waker that may use the compiler fence, once per process (and
/// again in a forked child). Called when an endpoint attaches, off the hot path; a failure
/// only keeps the real fence.
pub(crate) fn register() {
    #[cfg(not(ringway_loom))]
    imp::register();
}

/// The waker's fence, between its publication and its load of `waiters`: a compiler fence if
/// this process is registered for the sleepers' barrier, a SeqCst fence otherwise.
#[inline]
pub(crate) fn waker_fence() {
    #[cfg(not(ringway_loom))]
    {
        // SYNC(membarrier): pairs with the Release store in `register`.
        if imp::REGISTERED.load(core::sync::atomic::Ordering::Acquire) {
            // SYNC(sleep): the sleeper's `membarrier` supplies the full barrier on this
            // thread; this keeps the compiler from hoisting the load of `waiters` above the
            // publication.
            core::sync::atomic::compiler_fence(SeqCst);
            return;
        }
    }
    fence(SeqCst);
}

/// The sleeper's fence, between its announcement in `waiters` and its re-check: a SeqCst
/// fence (for wakers that are not registered), then `membarrier` (for those that are).
/// Returns `false` if the barrier could not be issued: a registered waker may then have missed
/// the announcement while its publication was not yet visible to the re-check, so the caller
/// must not sleep long before looking again.
#[must_use]
pub(crate) fn sleeper_fence() -> bool {
    fence(SeqCst);
    #[cfg(not(ringway_loom))]
    {
        imp::barrier()
    }
    #[cfg(ringway_loom)]
    {
        true
    }
}

#[cfg(all(test, not(ringway_loom), not(miri)))]
mod tests {
    use super::*;

    #[test]
    fn registration_is_idempotent_and_the_barrier_answers() {
        register();
        register();
        // Whatever the kernel allows, the answers are consistent: a process whose sleepers
        // can issue the barrier did not fail it.
        let issued = sleeper_fence();
        assert_eq!(
            issued,
            !imp::NO_BARRIER.load(core::sync::atomic::Ordering::Relaxed)
        );
        waker_fence();
    }
}
