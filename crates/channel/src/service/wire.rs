//! The 16-byte header in front of every request and reply: the request id, chosen by the
//! client (one more per request, from 0 in each session), and the session's generation, so a
//! record from an earlier session of the slot, or a reply to a request never made, is told
//! apart from the one awaited. Little-endian; 16 bytes keep a typed payload 8-byte aligned.

/// The header's length.
pub(crate) const LEN: usize = 16;

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wire {
    pub(crate) id: u64,
    pub(crate) generation: u32,
    /// Zero in version 1; anything else is refused.
    pub(crate) flags: u32,
}

impl Wire {
    pub(crate) fn new(id: u64, generation: u32) -> Wire {
        Wire {
            id,
            generation,
            flags: 0,
        }
    }

    pub(crate) fn encode(self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[..8].copy_from_slice(&self.id.to_le_bytes());
        out[8..12].copy_from_slice(&self.generation.to_le_bytes());
        out[12..].copy_from_slice(&self.flags.to_le_bytes());
        out
    }

    /// Decodes the front of a record; `None` if it is shorter than a header.
    pub(crate) fn decode(record: &[u8]) -> Option<Wire> {
        let head: &[u8; LEN] = record.get(..LEN)?.try_into().ok()?;
        let word = |range: core::ops::Range<usize>| {
            let mut bytes = [0u8; 8];
            bytes[..range.len()].copy_from_slice(&head[range]);
            u64::from_le_bytes(bytes)
        };
        Some(Wire {
            id: word(0..8),
            generation: word(8..12) as u32,
            flags: word(12..16) as u32,
        })
    }
}

/// Removes the header from a received record in `out`, leaving the payload.
pub(crate) fn strip(out: &mut Vec<u8>) {
    out.copy_within(LEN.., 0);
    out.truncate(out.len() - LEN);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_short_records_are_refused() {
        let wire = Wire::new(0x0102_0304_0506_0708, 0xAB_CDEF);
        let mut record = wire.encode().to_vec();
        record.extend_from_slice(b"payload");
        assert_eq!(Wire::decode(&record), Some(wire));
        assert_eq!(Wire::decode(&record[..15]), None);
        strip(&mut record);
        assert_eq!(record, b"payload");
    }
}
