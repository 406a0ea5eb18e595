//! A memfd shared between processes: the bench's own minimal shared memory, for the `shm-flag`
//! and `shm-ring` floors and the peers' controls. It uses `memfd_create` + `ftruncate` + `mmap`
//! directly, so the reference rows do not depend on ringway's own code.
//!
//! A mapping is reached through [`AtomicU64`] words, each on a 128-byte line of its own (two
//! cache lines, so adjacent-line prefetching cannot couple them either), and, for the bare
//! ring's payloads, through raw byte ranges ([`SharedMap::bytes`]).

use std::ffi::{CStr, c_void};
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};

/// Bytes of the usual shared object: one page.
pub(crate) const LEN: usize = 4096;
/// Distance between two words: a line of their own each.
pub(crate) const LINE: usize = 128;
/// Spins (with the CPU's pause hint) before a side waiting on a shared word starts yielding
/// its CPU, in the bare floors (`shm-flag`, `shm-ring`, `ringway-vs-floor`): far more than a
/// round trip between two running cores takes, so a pinned run never yields, while a run
/// where both sides share one CPU still makes progress.
pub(crate) const SPINS_BEFORE_YIELD: u32 = 1 << 14;

/// Creates a zero-filled, close-on-exec memfd of [`LEN`] bytes named `name` (a debugging aid).
///
/// # Errors
/// `memfd_create` or `ftruncate` failed; the message says which.
pub(crate) fn create(name: &CStr) -> io::Result<OwnedFd> {
    create_len(name, LEN)
}

/// Creates a zero-filled, close-on-exec memfd of `len` bytes named `name`.
///
/// # Errors
/// `memfd_create` or `ftruncate` failed; the message says which.
pub(crate) fn create_len(name: &CStr, len: usize) -> io::Result<OwnedFd> {
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC)
        .map_err(|e| context(e, format!("memfd_create({name:?})")))?;
    let size = libc::off_t::try_from(len).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{len} bytes is too large for a memfd"),
        )
    })?;
    nix::unistd::ftruncate(&fd, size)
        .map_err(|e| context(e, format!("ftruncate the memfd to {len} bytes")))?;
    Ok(fd)
}

fn context(e: nix::errno::Errno, what: String) -> io::Error {
    io::Error::new(io::Error::from(e).kind(), format!("{what}: {e}"))
}

/// A `MAP_SHARED` mapping of the first `len` bytes of a [`create`]d or [`create_len`]d memfd.
///
/// # Invariants
/// `ptr` is the start of a live, page-aligned, readable and writable mapping of `len` bytes
/// (`len > 0`), every one backed by the object, unmapped only by `drop`.
#[derive(Debug)]
pub(crate) struct SharedMap {
    ptr: NonNull<c_void>,
    len: usize,
}

impl SharedMap {
    /// Maps the first [`LEN`] bytes of the memfd `fd`.
    ///
    /// # Errors
    /// As [`SharedMap::map_len`].
    pub(crate) fn map(fd: &OwnedFd) -> io::Result<Self> {
        Self::map_len(fd, LEN)
    }

    /// Maps the first `len` bytes (`len > 0`) of the memfd `fd`.
    ///
    /// # Errors
    /// The object is shorter than `len` (mapping it would risk `SIGBUS`), `len` is zero, or
    /// `fstat`/`mmap` failed.
    pub(crate) fn map_len(fd: &OwnedFd, len: usize) -> io::Result<Self> {
        let size = nix::sys::stat::fstat(fd)?.st_size;
        if usize::try_from(size).map_or(true, |s| s < len) {
            let why = format!("the shared object is {size} bytes, expected at least {len}");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        }
        let Some(nonzero) = NonZeroUsize::new(len) else {
            let why = "a shared mapping of 0 bytes";
            return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        };
        let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
        // SAFETY: a fresh mapping placed by the kernel (no address hint, no MAP_FIXED) cannot
        // alias memory this process uses; the object is at least `len` bytes long (checked
        // above), so every mapped byte is backed and no access can SIGBUS.
        let ptr = unsafe { mmap(None, nonzero, prot, MapFlags::MAP_SHARED, fd, 0) }?;
        Ok(SharedMap { ptr, len })
    }

    /// Word `index`, at byte `index * 128`.
    ///
    /// # Panics
    /// When the word does not lie inside the mapping.
    pub(crate) fn word(&self, index: usize) -> &AtomicU64 {
        self.word_at(index * LINE)
    }

    /// The word at byte `offset`, a multiple of 8.
    ///
    /// # Panics
    /// When `offset` is not 8-aligned or the word does not lie inside the mapping.
    pub(crate) fn word_at(&self, offset: usize) -> &AtomicU64 {
        assert!(
            offset.is_multiple_of(8) && offset.checked_add(8).is_some_and(|end| end <= self.len),
            "word at {offset} is outside the {}-byte mapping or not 8-aligned",
            self.len
        );
        // SAFETY: `offset + 8 <= len` (asserted), so the 8 bytes lie inside the live mapping
        // (the invariant); the mapping is page-aligned and `offset` a multiple of 8, so they
        // are 8-aligned. `AtomicU64` has the size and alignment of `u64` and every bit pattern
        // is a valid value, and every process touches the words only through atomics, so a
        // shared reference to the atomic is sound while `self` keeps the mapping.
        unsafe { self.ptr.byte_add(offset).cast::<AtomicU64>().as_ref() }
    }

    /// A pointer to the `n` bytes at `offset`, for copies in and out of the mapping. The bytes
    /// may be written by another process at any time: reach them only by raw copies, never as a
    /// Rust reference.
    ///
    /// # Panics
    /// When the range does not lie inside the mapping.
    pub(crate) fn bytes(&self, offset: usize, n: usize) -> *mut u8 {
        assert!(
            offset.checked_add(n).is_some_and(|end| end <= self.len),
            "bytes {offset}+{n} are outside the {}-byte mapping",
            self.len
        );
        // SAFETY: `offset <= len` (asserted), so the result stays inside (or one past) the
        // live mapping.
        unsafe { self.ptr.byte_add(offset).cast::<u8>().as_ptr() }
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len` describe exactly the mapping `map_len` created, it is
        // unmapped only here, and no reference from `word_at` outlives `self`.
        let _ = unsafe { munmap(self.ptr, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn two_mappings_of_one_memfd_share_their_words() {
        let fd = create(c"ringway-bench-test").unwrap();
        let (a, b) = (SharedMap::map(&fd).unwrap(), SharedMap::map(&fd).unwrap());
        assert_eq!(b.word(3).load(Ordering::Relaxed), 0);
        a.word(3).store(42, Ordering::Relaxed);
        assert_eq!(b.word(3).load(Ordering::Relaxed), 42);
        assert_eq!(b.word(2).load(Ordering::Relaxed), 0);
    }

    #[test]
    fn refuses_a_short_object() {
        let fd = memfd_create(c"short", MFdFlags::MFD_CLOEXEC).unwrap();
        let err = SharedMap::map(&fd).unwrap_err();
        assert!(err.to_string().contains("0 bytes"), "{err}");
    }

    #[test]
    fn a_longer_mapping_shares_its_bytes_and_bounds_every_access() {
        let len = 3 * 4096;
        let fd = create_len(c"ringway-bench-test-long", len).unwrap();
        let (a, b) = (
            SharedMap::map_len(&fd, len).unwrap(),
            SharedMap::map_len(&fd, len).unwrap(),
        );
        // SAFETY: 4 bytes inside `a`'s mapping, written only here.
        unsafe {
            a.bytes(len - 4, 4)
                .copy_from_nonoverlapping([1u8, 2, 3, 4].as_ptr(), 4)
        };
        let mut out = [0u8; 4];
        // SAFETY: 4 bytes inside `b`'s mapping, copied into a local array.
        unsafe {
            out.as_mut_ptr()
                .copy_from_nonoverlapping(b.bytes(len - 4, 4), 4)
        };
        assert_eq!(out, [1, 2, 3, 4]);
        b.word_at(len - 8).store(7, Ordering::Relaxed);
        assert_eq!(a.word_at(len - 8).load(Ordering::Relaxed), 7);
        assert!(std::panic::catch_unwind(|| a.bytes(len - 3, 4)).is_err());
        assert!(std::panic::catch_unwind(|| a.word_at(len - 4)).is_err());
        assert!(std::panic::catch_unwind(|| a.word_at(12)).is_err());
        let err = SharedMap::map_len(&fd, len + 1).unwrap_err();
        assert!(err.to_string().contains(&format!("{len} bytes")), "{err}");
    }
}
