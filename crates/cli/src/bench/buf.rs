//! Page-aligned message buffers.
//!
//! Where a buffer lies matters more than it should: on AMD Zen CPUs a `rep movsb` copy (glibc's
//! `memcpy` for mid-sized blocks, and the kernel's copy to and from user memory) slows down
//! more than tenfold when the destination is a few bytes past the source modulo 4 KiB, which
//! is exactly where two back-to-back heap blocks of 16 to 96 KiB land (measured on the 2-core
//! EPYC: 1.5 GB/s instead of 40). Every message buffer of the bench starts on a page boundary,
//! so no transport wins or loses by a placement accident.

use std::ops::{Deref, DerefMut};

const PAGE: usize = 4096;

/// `len` bytes starting on a page boundary.
#[derive(Debug)]
pub(crate) struct PageBuf {
    block: Vec<u8>,
    offset: usize,
    len: usize,
}

impl PageBuf {
    /// A page-aligned buffer of `len` bytes, each `fill`.
    pub(crate) fn new(len: usize, fill: u8) -> Self {
        let block = vec![fill; len + PAGE];
        let offset = block.as_ptr().align_offset(PAGE);
        PageBuf { block, offset, len }
    }
}

impl Deref for PageBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.block[self.offset..self.offset + self.len]
    }
}

impl DerefMut for PageBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.block[self.offset..self.offset + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_start_on_a_page() {
        for len in [8, 4096, 65536 + 8] {
            let buf = PageBuf::new(len, 7);
            assert_eq!((buf.as_ptr() as usize % PAGE, buf.len()), (0, len));
            assert!(buf.iter().all(|&b| b == 7));
        }
    }
}
