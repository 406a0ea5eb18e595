//! What the fuzz targets share: the input read as a stream of small integers, and the
//! messages they send (each checkable from its sequence number alone).

/// Reads the fuzz input as a stream of small integers; an exhausted input reads as zeros.
pub struct Input<'a> {
    pub data: &'a [u8],
}

impl Input<'_> {
    /// Whether every byte was read.
    #[allow(dead_code)] // not every target runs until its input ends
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        for b in &mut bytes {
            *b = self.u8();
        }
        u64::from_le_bytes(bytes)
    }
}

/// Message `seq` of `len` bytes: the sequence number, then a pattern derived from it.
pub fn message(seq: u64, len: usize) -> Vec<u8> {
    let tag = seq.to_le_bytes();
    (0..len)
        .map(|i| {
            tag.get(i)
                .copied()
                .unwrap_or((seq as u8) ^ (i as u8).wrapping_mul(13))
        })
        .collect()
}
