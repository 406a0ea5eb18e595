//! The producer's private record of which line-start words of the data area need no zero
//! before a publication (rule 1 of the in-band commit, `docs/layout.md`).
//!
//! Rule 1 wants the header word right after the last published record to read as "nothing
//! yet": zero, or a header of another lap. When that word starts a cache line, storing the
//! zero takes a line the consumer last held, a cross-core transfer for every message whose
//! record ends on a line boundary (every message of a 56-byte or 128-byte stream). Measured
//! in one process pair, that store alone made a 56-byte round trip 1.45x as long.
//!
//! But in a stream of records of one size, that word already holds the header this producer
//! stored there one lap earlier, whose tag is that of another position: nothing to store. The
//! marks say when this is so: bit `l` is set exactly when the word at data-area offset
//! `64 * l` holds zero or a header (record or padding) that this producer stored during its
//! latest pass over that offset, and nothing since. Every byte this producer writes or skips
//! clears the marks of the line starts it covers ([`LineMarks::cover`], at reservation, for
//! the whole reserved range), and storing a header or a zero at a line start sets its mark
//! ([`LineMarks::set`]).
//!
//! Why a set mark is enough: the producer passes every offset exactly once per lap (each byte
//! of the stream belongs to one record, its gap, or a padding), so a mark that survives to the
//! producer's next arrival at offset `o`, at position `p`, was set during the pass that
//! reached `o` at `p - capacity`: the word holds zero, or a header of position
//! `p - capacity`, whose tag differs from `p`'s (tags of positions less than 2^33 bytes apart
//! differ, and a lap is at most 2^32). Only this producer writes the data area; a consumer that
//! writes it anyway breaks the protocol and can only misread its own messages. A producer
//! that attaches starts with every mark clear: it knows nothing of what earlier ones wrote.

/// A cache line, as the layout's `LINE`.
const LINE: u64 = crate::layout::LINE;

/// One bit per line of the data area. See the module docs.
#[derive(Debug)]
pub(super) struct LineMarks {
    bits: Vec<u64>,
    /// Lines (bits) in use: `capacity / 64`, at least 1.
    lines: u64,
}

impl LineMarks {
    /// Every mark clear, for a data area of `capacity` bytes.
    pub(super) fn new(capacity: u64) -> LineMarks {
        let lines = (capacity / LINE).max(1);
        LineMarks {
            bits: vec![0; lines.div_ceil(64) as usize],
            lines,
        }
    }

    /// Whether the word at data-area offset `offset`, a line start, is marked.
    #[inline]
    pub(super) fn is_set(&self, offset: u64) -> bool {
        let line = offset / LINE;
        line < self.lines && self.bits[(line / 64) as usize] & (1 << (line % 64)) != 0
    }

    /// Marks the line start at data-area offset `offset` (a no-op for an offset inside a line):
    /// a header or a zero was just stored there.
    #[inline]
    pub(super) fn set(&mut self, offset: u64) {
        if offset % LINE == 0 {
            let line = offset / LINE;
            if line < self.lines {
                self.bits[(line / 64) as usize] |= 1 << (line % 64);
            }
        }
    }

    /// Clears the marks of every line start in the data-area offsets `from .. to`: bytes there
    /// are about to be written or skipped.
    #[inline]
    pub(super) fn cover(&mut self, from: u64, to: u64) {
        let first = from.div_ceil(LINE);
        let end = to.div_ceil(LINE).min(self.lines);
        if first >= end {
            return;
        }
        let mut line = first;
        while line < end {
            let lo = line % 64;
            let n = (end - line).min(64 - lo);
            let mask = if n == 64 {
                u64::MAX
            } else {
                ((1u64 << n) - 1) << lo
            };
            self.bits[(line / 64) as usize] &= !mask;
            line += n;
        }
    }

    /// Clears every mark (the producer no longer knows what the data area holds).
    pub(super) fn forget(&mut self) {
        self.bits.fill(0);
    }
}

#[cfg(all(test, not(ringway_loom)))]
mod tests {
    use super::*;

    fn set_lines(m: &LineMarks) -> Vec<u64> {
        (0..m.lines).filter(|&l| m.is_set(l * LINE)).collect()
    }

    #[test]
    fn cover_clears_exactly_the_line_starts_in_range() {
        let cap = 64 * 200;
        for (from, to) in [
            (0, 64),
            (1, 64),
            (64, 65),
            (8, 8),
            (100, 5000),
            (0, cap),
            (63, 4097),
        ] {
            let mut m = LineMarks::new(cap);
            for l in 0..200 {
                m.set(l * LINE);
            }
            m.cover(from, to);
            let expect: Vec<u64> = (0..200)
                .filter(|&l| !(from..to).contains(&(l * LINE)))
                .collect();
            assert_eq!(set_lines(&m), expect, "cover({from}, {to})");
        }
    }

    #[test]
    fn only_line_starts_are_marked_and_small_rings_have_one_mark() {
        let mut m = LineMarks::new(64 * 3);
        m.set(8);
        m.set(128);
        assert_eq!(set_lines(&m), vec![2]);
        m.forget();
        assert!(set_lines(&m).is_empty());
        let mut tiny = LineMarks::new(32);
        tiny.set(0);
        assert!(tiny.is_set(0));
        tiny.cover(0, 16);
        assert!(!tiny.is_set(0));
    }
}
