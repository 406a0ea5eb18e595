//! The only module that names atomics, fences and spin hints.
//!
//! Under `--cfg ringway_loom` it swaps in loom's types so the algorithms above it are
//! model-checked unchanged. The cfg is prefixed (never a bare `loom`) so it does not leak into
//! other crates of the build. Loom's atomics have a different size and cannot live in mapped
//! bytes, so under loom the storage is a heap model (see `mem`), and the compile-time layout
//! assertions are skipped.

#[cfg(not(ringway_loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
#[cfg(ringway_loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

#[cfg(ringway_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
/// The async reactor's lock (modelled under loom, where its blocking matters).
#[cfg(not(ringway_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// One iteration of a busy-wait loop.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(ringway_loom))]
    core::hint::spin_loop();
    #[cfg(ringway_loom)]
    loom::thread::yield_now();
}

/// Give the CPU to another thread or process.
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(ringway_loom))]
    std::thread::yield_now();
    #[cfg(ringway_loom)]
    loom::thread::yield_now();
}
