//! One page of a memfd, shared between processes: the bench's own minimal shared memory, for
//! the `shm-flag` floor and the peers' stop flag. It uses `memfd_create` + `ftruncate` + `mmap`
//! directly, so the reference rows do not depend on ringway's own code.
//!
//! The page is only ever accessed through [`AtomicU64`] words, each on a 128-byte line of its
//! own (two cache lines, so adjacent-line prefetching cannot couple them either).

use std::ffi::{CStr, c_void};
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};

/// Bytes of the shared object: one page.
pub(crate) const LEN: usize = 4096;
/// Distance between two words: a line of their own each.
const LINE: usize = 128;
/// How many words the page holds.
pub(crate) const WORDS: usize = LEN / LINE;

/// Creates a zero-filled, close-on-exec memfd of [`LEN`] bytes named `name` (a debugging aid).
///
/// # Errors
/// `memfd_create` or `ftruncate` failed; the message says which.
pub(crate) fn create(name: &CStr) -> io::Result<OwnedFd> {
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC)
        .map_err(|e| context(e, format!("memfd_create({name:?})")))?;
    nix::unistd::ftruncate(&fd, LEN as libc::off_t)
        .map_err(|e| context(e, format!("ftruncate the memfd to {LEN} bytes")))?;
    Ok(fd)
}

fn context(e: nix::errno::Errno, what: String) -> io::Error {
    io::Error::new(io::Error::from(e).kind(), format!("{what}: {e}"))
}

/// A `MAP_SHARED` mapping of a whole [`create`]d memfd.
///
/// # Invariants
/// `ptr` is the start of a live, page-aligned, readable and writable mapping of [`LEN`] bytes,
/// unmapped only by `drop`.
#[derive(Debug)]
pub(crate) struct SharedPage {
    ptr: NonNull<c_void>,
}

impl SharedPage {
    /// Maps the memfd `fd`, which must be at least [`LEN`] bytes long.
    ///
    /// # Errors
    /// The object is shorter than [`LEN`] (mapping it would risk `SIGBUS`), or `fstat`/`mmap`
    /// failed.
    pub(crate) fn map(fd: &OwnedFd) -> io::Result<Self> {
        let size = nix::sys::stat::fstat(fd)?.st_size;
        if usize::try_from(size).map_or(true, |s| s < LEN) {
            let why = format!("the shared object is {size} bytes, expected at least {LEN}");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        }
        let len = NonZeroUsize::new(LEN).expect("LEN is not zero");
        let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
        // SAFETY: a fresh mapping placed by the kernel (no address hint, no MAP_FIXED) cannot
        // alias memory this process uses; the object is at least LEN bytes long (checked above),
        // so every mapped byte is backed and no access can SIGBUS.
        let ptr = unsafe { mmap(None, len, prot, MapFlags::MAP_SHARED, fd, 0) }?;
        Ok(SharedPage { ptr })
    }

    /// Word `index` (below [`WORDS`]), at byte `index * 128`.
    ///
    /// # Panics
    /// When `index >= WORDS`.
    pub(crate) fn word(&self, index: usize) -> &AtomicU64 {
        assert!(index < WORDS, "word {index} is outside the shared page");
        // SAFETY: `index * LINE + 8 <= LEN` (asserted), so the 8 bytes lie inside the live
        // mapping (the invariant); the page is page-aligned and LINE is a multiple of 8, so they
        // are 8-aligned. `AtomicU64` has the size and alignment of `u64` and every bit pattern
        // is a valid value, and every process touches these bytes only through atomics, so a
        // shared reference to the atomic is sound while `self` keeps the page mapped.
        unsafe { self.ptr.byte_add(index * LINE).cast::<AtomicU64>().as_ref() }
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // SAFETY: `ptr` and LEN describe exactly the mapping `map` created, it is unmapped only
        // here, and no reference from `word` outlives `self`.
        let _ = unsafe { munmap(self.ptr, LEN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn two_mappings_of_one_memfd_share_their_words() {
        let fd = create(c"ringway-bench-test").unwrap();
        let (a, b) = (SharedPage::map(&fd).unwrap(), SharedPage::map(&fd).unwrap());
        assert_eq!(b.word(3).load(Ordering::Relaxed), 0);
        a.word(3).store(42, Ordering::Relaxed);
        assert_eq!(b.word(3).load(Ordering::Relaxed), 42);
        assert_eq!(b.word(2).load(Ordering::Relaxed), 0);
    }

    #[test]
    fn refuses_a_short_object() {
        let fd = memfd_create(c"short", MFdFlags::MFD_CLOEXEC).unwrap();
        let err = SharedPage::map(&fd).unwrap_err();
        assert!(err.to_string().contains("0 bytes"), "{err}");
    }
}
