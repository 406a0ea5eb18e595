//! The two futex operations, on a `u32` that may live in shared memory.
//!
//! Neither uses `FUTEX_PRIVATE_FLAG`: the kernel keys a shared futex on the page's backing
//! object and offset, so processes that map the same object at different addresses wait on and
//! wake the same futex.

use std::time::Duration;

use crate::sync::AtomicU32;

/// Sleeps while `*word == expected`, at most `timeout`.
///
/// Returns on a wake, on a timeout, on a signal, or at once if the value differs: callers
/// always re-check their condition, so the reason does not matter.
#[cfg(not(ringway_loom))]
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(t.subsec_nanos() as i32),
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(core::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, 4-byte aligned u32 (an AtomicU32) for the duration of the call;
    // FUTEX_WAIT only reads it, atomically, and compares it with `expected`. `ts_ptr` is null or
    // points to a timespec that outlives the call; FUTEX_WAIT treats it as a relative timeout.
    // The return value is deliberately ignored: EAGAIN, ETIMEDOUT and EINTR all mean "re-check".
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            core::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes every process sleeping on `word`.
#[cfg(not(ringway_loom))]
pub(crate) fn wake_all(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE does not access it, it only uses the
    // address as the key of the wait queue. The result (number woken, or an error for an
    // address that is not mapped, which cannot happen for a live reference) is not needed.
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

use crate::select::FUTEX_WAITV_MAX;

/// `futex_waitv` (Linux 5.16): sleeps until any futex of `words` differs from its expected
/// value, a wake on any, the timeout, or a signal. Each entry is `(word, expected, shared)`; a
/// shared word is keyed on its backing object (it may live in shared memory), a private one
/// on this process's address. At most [`FUTEX_WAITV_MAX`] entries are used (the caller keeps
/// within it; any beyond are not waited on). Returns `false` if the kernel lacks the call
/// (`ENOSYS`), so the caller can fall back; every other outcome means "re-check".
#[cfg(not(ringway_loom))]
pub(crate) fn wait_any<'a>(
    words: impl IntoIterator<Item = (&'a AtomicU32, u32, bool)>,
    timeout: Option<Duration>,
) -> bool {
    if cfg!(miri) {
        // Miri has no futex_waitv: answer as a kernel without it does, so the callers'
        // fallbacks (which Miri does run) are what it checks.
        return false;
    }
    /// `struct futex_waitv` of `<linux/futex.h>`.
    #[derive(Clone, Copy)]
    #[repr(C)]
    struct FutexWaitv {
        val: u64,
        uaddr: u64,
        flags: u32,
        reserved: u32,
    }
    const FUTEX2_SIZE_U32: u32 = 0x02;
    const FUTEX2_PRIVATE: u32 = 128;
    const SYS_FUTEX_WAITV: libc::c_long = 449;
    let mut waiters = [FutexWaitv {
        val: 0,
        uaddr: 0,
        flags: 0,
        reserved: 0,
    }; FUTEX_WAITV_MAX];
    let mut n = 0;
    for ((word, expected, shared), slot) in words.into_iter().zip(waiters.iter_mut()) {
        *slot = FutexWaitv {
            val: u64::from(expected),
            uaddr: word.as_ptr() as u64,
            flags: FUTEX2_SIZE_U32 | if shared { 0 } else { FUTEX2_PRIVATE },
            reserved: 0,
        };
        n += 1;
    }
    if n == 0 {
        return true;
    }
    // futex_waitv takes an absolute CLOCK_MONOTONIC deadline.
    let deadline = timeout.map(|t| {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid, writable timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
        let nanos = i64::from(now.tv_nsec as i32) + i64::from(t.subsec_nanos());
        libc::timespec {
            tv_sec: now
                .tv_sec
                .saturating_add(libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX))
                .saturating_add((nanos / 1_000_000_000) as libc::time_t),
            tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
        }
    });
    let deadline_ptr = deadline
        .as_ref()
        .map_or(core::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: the first `n` entries of `waiters` (1 ..= FUTEX_WAITV_MAX) are futex_waitv
    // entries, each naming a live, 4-byte aligned u32 (an AtomicU32 borrowed for `'a`, which
    // outlives the call); the kernel only reads the words, atomically. `deadline_ptr` is null
    // or a timespec that outlives the call.
    let rc = unsafe {
        libc::syscall(
            SYS_FUTEX_WAITV,
            waiters.as_ptr(),
            n as libc::c_uint,
            0u32,
            deadline_ptr,
            libc::CLOCK_MONOTONIC,
        )
    };
    !(rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
}

/// Wakes the threads of this process sleeping on the process-private `word`.
#[cfg(not(ringway_loom))]
pub(crate) fn wake_private(word: &std::sync::atomic::AtomicU32) {
    // SAFETY: as in `wake_all`: the address is only a key. FUTEX_WAKE is async-signal-safe (a
    // plain system call), which `Interrupt::interrupt` relies on.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
            core::ptr::null::<libc::timespec>(),
            core::ptr::null::<u32>(),
            0u32,
        );
    }
}
