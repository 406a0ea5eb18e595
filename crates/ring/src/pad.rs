//! A 128-byte block of our own, for shared-memory layouts.
//!
//! crossbeam's `CachePadded` picks its alignment per target and may change it between
//! versions; a layout that other processes (possibly built from another version) read must not
//! move. `Block128` is always 128 bytes aligned to 128: two 64-byte cache lines, so that the
//! adjacent-line prefetcher of x86 cores does not couple two hot words either.

/// `T` placed at the start of its own 128-byte, 128-aligned block.
///
/// # Invariants
/// `size_of::<Block128<T>>() == 128` for every `T` used in [`crate::layout`]; this is asserted
/// at compile time there, so a field that grows past 128 bytes fails the build.
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub struct Block128<T>(pub T);

impl<T> core::ops::Deref for Block128<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
