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
