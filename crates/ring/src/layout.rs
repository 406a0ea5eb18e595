#![doc = include_str!("../../../docs/layout.md")]
//!
//! # The structs
//!
//! Every struct below is `#[repr(C)]`, made only of atomics (so a `&` to it is sound while
//! other processes write it), and has no padding bytes: reserved space is spelled out as
//! atomics too. A `const` block at the end asserts every offset, size and alignment in the
//! tables above.

use crate::pad::Block128;
use crate::sync::{AtomicU32, AtomicU64};

/// `magic`: the bytes `RINGWAY\0` read as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"RINGWAY\0");
/// The layout version this crate reads and writes.
pub const VERSION: u32 = 5;
/// `kind` of an SPSC byte ring.
pub const KIND_SPSC: u32 = 1;
/// `kind` of an MPMC slot ring.
pub const KIND_MPMC: u32 = 2;
/// `kind` of a broadcast ring (one writer, many readers, each reads every message).
pub const KIND_BROADCAST: u32 = 3;
/// `init` once the header is complete (`RDY!`).
pub const INIT_READY: u32 = u32::from_le_bytes(*b"RDY!");

/// Size of the header, in bytes.
pub const HEADER_LEN: usize = 1024;
/// Size of one registration entry, in bytes.
pub const ENTRY_LEN: usize = 128;
/// Offset of the registration table.
pub const TABLE_OFFSET: usize = HEADER_LEN;
/// Alignment the start of a ring must have.
pub const RING_ALIGN: usize = 128;

/// Registration state: never used.
pub const STATE_FREE: u64 = 0;
/// Registration state: a process is filling the entry in.
pub const STATE_JOINING: u64 = 1;
/// Registration state: in use by a (possibly dead) process.
pub const STATE_ACTIVE: u64 = 2;
/// Registration state: left cleanly.
pub const STATE_CLOSED: u64 = 3;

/// `ctl` field packing: the pid in bits 0..32.
pub const CTL_PID_MASK: u64 = 0xFFFF_FFFF;
/// `ctl` field packing: the generation in bits 32..56.
pub const CTL_GEN_SHIFT: u32 = 32;
/// `ctl` field packing: generation mask (after shifting down).
pub const CTL_GEN_MASK: u64 = 0xFF_FFFF;
/// `ctl` field packing: the state in bits 56..64.
pub const CTL_STATE_SHIFT: u32 = 56;

/// Largest number of producers or of consumers an MPMC ring can register.
pub const MAX_PARTIES: u32 = 256;

/// SPSC record header: the `VALID` bit.
pub const REC_VALID: u64 = 1 << 31;
/// SPSC record header: the `PAD` bit.
pub const REC_PAD: u64 = 1 << 30;
/// SPSC record header: the `ALIGNED` bit: the payload starts at the first 64-byte line boundary
/// after the header word (a producer sets it on large records, so a copy into or out of the
/// ring works on whole, aligned cache lines).
pub const REC_ALIGNED: u64 = 1 << 62;
/// SPSC record header: the `LINES` bit: the record takes whole cache lines, so the next record
/// starts at the first 64-byte line boundary at or after the end of its payload (a producer
/// sets it on records of 57 to 1023 payload bytes, which it starts on a line: the lines of
/// such a stream cross between cores as a slot ring's do). Never on a padding record.
pub const REC_LINES: u64 = 1 << 63;
/// SPSC record header: mask of the tag after shifting it down 32 bits (30 bits: a lap holds at
/// most 2^29 tags, so positions one lap apart still have different tags).
pub const REC_TAG_MASK: u64 = (1 << 30) - 1;
/// SPSC: a cache line; records of up to [`REC_LINE_PAYLOAD`] bytes never straddle two.
pub const LINE: u64 = 64;
/// SPSC: the largest payload that fits one cache line with its header. A producer places such a
/// record so that it does not straddle two lines (a short padding record before it if needed).
pub const REC_LINE_PAYLOAD: u64 = LINE - REC_HEADER_LEN as u64;
/// SPSC: payloads of at least this many bytes are written [`REC_ALIGNED`] (where the ring's
/// largest record with the alignment gap still fits half the data area); smaller ones that do
/// not fit one line with their header start on a line and take whole lines ([`REC_LINES`]).
pub const REC_ALIGN_MIN: u64 = REC_LINE_PAYLOAD + 1;
/// SPSC record header: mask of the length field.
pub const REC_LEN_MASK: u64 = (1 << 30) - 1;
/// SPSC record header size.
pub const REC_HEADER_LEN: usize = 8;
/// SPSC: smallest data area.
pub const SPSC_MIN_CAPACITY: u64 = 32;
/// SPSC: largest data area (a lap of at most 2^29 tags keeps adjacent laps' tags apart).
pub const SPSC_MAX_CAPACITY: u64 = 1 << 32;
/// SPSC: the largest payload any ring can carry (the length field's range).
pub const SPSC_MAX_MESSAGE: u64 = REC_LEN_MASK;

/// MPMC slot header size (`seq`, `len`, reserved).
pub const SLOT_HEADER_LEN: usize = 16;
/// MPMC `seq`: bit 63 marks a slot skipped for a dead producer.
pub const SEQ_LOST: u64 = 1 << 63;
/// MPMC `len` of a claim that was cancelled (an in-place grant dropped without commit).
pub const LEN_CANCELLED: u64 = u64::MAX;
/// MPMC: largest `slot_size`.
pub const MPMC_MAX_SLOT_SIZE: u32 = (1 << 30) - 2;
/// MPMC: smallest number of slots (Vyukov's sequence scheme needs two).
pub const MPMC_MIN_CAPACITY: u64 = 2;
/// MPMC: largest number of slots.
pub const MPMC_MAX_CAPACITY: u64 = 1 << 32;

/// Broadcast `flags`: the writer overwrites the oldest message instead of waiting for the
/// slowest reader.
pub const FLAG_OVERWRITE: u32 = 1;
/// Broadcast: the data area starts on a multiple of this, so that a reader can map it
/// read-only (`mprotect` works on whole pages).
pub const BROADCAST_DATA_ALIGN: u64 = 4096;
/// Broadcast slot `seq`: bit 63 is set while the writer is writing the slot (the seqlock's
/// odd state); the other bits are `position + 1` of the message the slot holds or is being
/// written with, `0` for never written.
pub const STAMP_BUSY: u64 = 1 << 63;
/// Broadcast: positions stay below this (a `tail` at or above it is corruption): 2^62
/// messages is millennia at any rate, and it keeps `position + 1` clear of [`STAMP_BUSY`].
pub const BROADCAST_MAX_POSITION: u64 = 1 << 62;
/// Broadcast: largest number of readers.
pub const BROADCAST_MAX_READERS: u32 = MAX_PARTIES;

/// Block 0: identity and geometry, written once by the creator before `init`.
#[repr(C)]
#[derive(Debug)]
pub struct Identity {
    /// [`MAGIC`].
    pub magic: AtomicU64,
    /// [`VERSION`].
    pub version: AtomicU32,
    /// [`KIND_SPSC`] or [`KIND_MPMC`].
    pub kind: AtomicU32,
    /// Bytes from offset 0 to the end of the data area.
    pub total_len: AtomicU64,
    /// SPSC: data bytes; MPMC: slots.
    pub capacity: AtomicU64,
    /// MPMC: payload bytes per slot.
    pub slot_size: AtomicU32,
    /// MPMC: bytes per slot.
    pub slot_stride: AtomicU32,
    /// Offset of the data area.
    pub data_offset: AtomicU64,
    /// Largest payload.
    pub max_message: AtomicU32,
    /// Producer entries.
    pub max_producers: AtomicU32,
    /// Consumer entries.
    pub max_consumers: AtomicU32,
    /// Broadcast: bit 0 [`FLAG_OVERWRITE`]; other bits and other kinds: zero.
    pub flags: AtomicU32,
    /// Type fingerprint stored for the channel layer.
    pub fingerprint: [AtomicU64; 2],
    /// Pid of the initialising process.
    pub creator_pid: AtomicU32,
    /// Broadcast: how many of the newest messages a reader that attaches late starts with,
    /// `0 ..= capacity - 1`; other kinds: zero.
    pub history: AtomicU32,
    /// `CLOCK_REALTIME` at initialisation, ns.
    pub created_ns: AtomicU64,
    /// The creator's start time (`/proc/<pid>/stat` field 22).
    pub creator_start: AtomicU64,
    /// The inode of the creator's pid namespace, `0` if unknown (informational).
    pub creator_pidns: AtomicU64,
    /// Reserved, zero.
    pub reserved1: [AtomicU64; 1],
    /// [`INIT_READY`] once complete; stored last with Release.
    pub init: AtomicU32,
    /// Reserved, zero.
    pub reserved2: AtomicU32,
}

/// Block 1: the producer index.
#[repr(C)]
#[derive(Debug)]
pub struct ProducerIndex {
    /// SPSC: committed position (monitoring); MPMC: next position to claim.
    pub tail: AtomicU64,
    /// Reserved, zero.
    pub reserved: [AtomicU64; 15],
}

/// Block 2: the consumer index.
#[repr(C)]
#[derive(Debug)]
pub struct ConsumerIndex {
    /// SPSC: released position; MPMC: next position to claim.
    pub head: AtomicU64,
    /// Reserved, zero.
    pub reserved: [AtomicU64; 15],
}

/// Blocks 3 and 4: a futex word and its waiter count.
#[repr(C)]
#[derive(Debug)]
pub struct WaitBlock {
    /// The futex word; incremented by a waker before `FUTEX_WAKE`.
    pub seq: AtomicU32,
    /// Number of parties about to sleep or asleep on `seq`.
    pub waiters: AtomicU32,
    /// Reserved, zero.
    pub reserved: [AtomicU64; 15],
}

/// Block 5: counters.
#[repr(C)]
#[derive(Debug)]
pub struct Counters {
    /// MPMC: slots skipped for dead producers.
    pub lost: AtomicU64,
    /// MPMC: slots reclaimed from dead consumers.
    pub abandoned: AtomicU64,
    /// Endpoints attached (channel-layer bookkeeping).
    pub users: AtomicU32,
    /// Reserved, zero.
    pub reserved0: AtomicU32,
    /// Reserved, zero.
    pub reserved: [AtomicU64; 13],
}

/// Block 6: a label the channel layer stores (the message type's name).
#[repr(C)]
#[derive(Debug)]
pub struct Label {
    /// Bytes of `bytes` in use.
    pub len: AtomicU32,
    /// Reserved, zero.
    pub reserved0: AtomicU32,
    /// UTF-8 text, little-endian packed into words.
    pub bytes: [AtomicU64; 15],
}

/// Capacity of the label, in bytes.
pub const LABEL_MAX: usize = 120;

/// A reserved block of the header.
#[repr(C)]
#[derive(Debug)]
pub struct ReservedBlock {
    /// Reserved, zero.
    pub reserved: [AtomicU64; 16],
}

/// The 1024-byte header at offset 0 of every ring.
#[repr(C)]
#[derive(Debug)]
pub struct Header {
    /// Block 0.
    pub identity: Block128<Identity>,
    /// Block 1.
    pub producer: Block128<ProducerIndex>,
    /// Block 2.
    pub consumer: Block128<ConsumerIndex>,
    /// Block 3: consumers wait here for data.
    pub not_empty: Block128<WaitBlock>,
    /// Block 4: producers wait here for space.
    pub not_full: Block128<WaitBlock>,
    /// Block 5.
    pub counters: Block128<Counters>,
    /// Block 6.
    pub label: Block128<Label>,
    /// Block 7.
    pub reserved: Block128<ReservedBlock>,
}

/// One registration entry of the table at [`TABLE_OFFSET`].
#[repr(C)]
#[derive(Debug)]
pub struct Entry {
    /// `state << 56 | generation << 32 | pid`.
    pub ctl: AtomicU64,
    /// The registered process's start time (`/proc/<pid>/stat` field 22).
    pub start_time: AtomicU64,
    /// Reserved, zero (version 3 kept `claim` here, on the line peers read `ctl` from).
    pub reserved0: AtomicU64,
    /// The inode of the registrant's pid namespace (`/proc/self/ns/pid`), `0` if unknown: a
    /// pid is only judged in the namespace it was registered from.
    pub pidns: AtomicU64,
    /// Broadcast reader: the position of the next message it reads (every earlier one is
    /// done with); otherwise zero.
    pub cursor: AtomicU64,
    /// Reserved, zero.
    pub reserved1: [AtomicU64; 3],
    /// MPMC: `position + 1` being claimed, `0` for none. On the entry's second cache line:
    /// the claimant writes it on every claim, while peers waiting on the ring read `ctl` (to
    /// see a close), which must not be a line the claimant keeps taking from them.
    pub claim: AtomicU64,
    /// Reserved, zero.
    pub reserved: [AtomicU64; 7],
}

/// The 16-byte header of an MPMC slot; the payload follows it.
#[repr(C)]
#[derive(Debug)]
pub struct SlotHeader {
    /// Vyukov sequence number; bit 63 is [`SEQ_LOST`].
    pub seq: AtomicU64,
    /// Payload length, or [`LEN_CANCELLED`].
    pub len: AtomicU64,
}

/// Packs a registration `ctl` word.
#[must_use]
pub const fn ctl_pack(state: u64, generation: u64, pid: u32) -> u64 {
    (state << CTL_STATE_SHIFT) | ((generation & CTL_GEN_MASK) << CTL_GEN_SHIFT) | pid as u64
}

/// The state of a registration `ctl` word.
#[must_use]
pub const fn ctl_state(ctl: u64) -> u64 {
    ctl >> CTL_STATE_SHIFT
}

/// The generation of a registration `ctl` word.
#[must_use]
pub const fn ctl_generation(ctl: u64) -> u64 {
    (ctl >> CTL_GEN_SHIFT) & CTL_GEN_MASK
}

/// The pid of a registration `ctl` word.
#[must_use]
pub const fn ctl_pid(ctl: u64) -> u32 {
    (ctl & CTL_PID_MASK) as u32
}

/// The tag an SPSC record header at `position` must carry.
#[must_use]
pub const fn record_tag(position: u64) -> u64 {
    (position >> 3) & REC_TAG_MASK
}

/// The tag field of an SPSC header word (bits 32..62).
#[must_use]
pub const fn header_tag(word: u64) -> u64 {
    (word & !(REC_ALIGNED | REC_LINES)) >> 32
}

/// An SPSC record header word for a payload of `len` bytes at `position`.
#[must_use]
pub const fn record_word(position: u64, len: u64) -> u64 {
    (record_tag(position) << 32) | REC_VALID | (len & REC_LEN_MASK)
}

/// An SPSC header word for an [`REC_ALIGNED`] record of `len` bytes at `position`.
#[must_use]
pub const fn aligned_record_word(position: u64, len: u64) -> u64 {
    record_word(position, len) | REC_ALIGNED
}

/// An SPSC header word for a [`REC_LINES`] record of `len` bytes at `position`.
#[must_use]
pub const fn lines_record_word(position: u64, len: u64) -> u64 {
    record_word(position, len) | REC_LINES
}

/// The position after a record whose payload ends at `end`: `end`, or for a [`REC_LINES`]
/// record the first line boundary at or after it.
#[must_use]
pub const fn record_end(end: u64, lines: bool) -> u64 {
    if lines {
        (end + LINE - 1) & !(LINE - 1)
    } else {
        end
    }
}

/// Bytes from an SPSC record's header to its payload, for a header at data-area offset
/// `offset`: `8`, or for an [`REC_ALIGNED`] record up to the next line boundary after the
/// header word (`8 ..= 64`).
#[must_use]
pub const fn payload_gap(offset: u64, aligned: bool) -> u64 {
    if aligned {
        ((offset + REC_HEADER_LEN as u64 + LINE - 1) & !(LINE - 1)) - offset
    } else {
        REC_HEADER_LEN as u64
    }
}

/// Where an SPSC producer puts a record, from the data-area offset of its next position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Bytes of padding before the record: `0`, a short padding to the next line boundary,
    /// or a padding to the end of the lap.
    pub pad: u64,
    /// Whether the record is [`REC_ALIGNED`].
    pub aligned: bool,
    /// Whether the record is [`REC_LINES`].
    pub lines: bool,
    /// Bytes from the record's header to its payload ([`payload_gap`]).
    pub gap: u64,
    /// Bytes from the record's header to the end of the record.
    pub record: u64,
}

impl Placement {
    /// Bytes the padding and the record take together.
    #[must_use]
    pub const fn need(&self) -> u64 {
        self.pad + self.record
    }
}

/// Where the producer of an SPSC ring of `capacity` bytes places a payload of `len` bytes
/// when its next position is at data-area offset `offset` (see *SPSC data area*): a record
/// of up to [`REC_LINE_PAYLOAD`] bytes that would straddle a line starts at the next line
/// (after a short padding record); a larger one below [`REC_ALIGN_MIN`] starts on a line
/// (after a short padding record if needed) and is [`REC_LINES`]; a payload of at least
/// [`REC_ALIGN_MIN`] bytes is [`REC_ALIGNED`] if `64 + len` (rounded up to 8) fits half the
/// capacity; a record that does not fit before the end of the lap starts the next lap (after
/// a padding record to the end). `len <= capacity / 2 - 8` (the ring's largest message),
/// `capacity` a power of two.
#[must_use]
pub const fn place(offset: u64, len: u64, capacity: u64) -> Placement {
    let body = (len + 7) & !7;
    let aligned = len >= REC_ALIGN_MIN && LINE + body <= capacity / 2;
    // A small record whose size divides a line (16, 32 or 64 bytes) packs with others of its
    // size; any other (24, 40, 48 or 56 bytes) would leave a padding before every second or
    // every record, and takes its line whole instead.
    let lines = len <= REC_LINE_PAYLOAD
        && !(REC_HEADER_LEN as u64 + body).is_power_of_two()
        && capacity >= LINE;
    let in_line = offset & (LINE - 1);
    let mut pad = 0;
    if (len <= REC_LINE_PAYLOAD && in_line + REC_HEADER_LEN as u64 + body > LINE)
        || (lines && in_line != 0 && capacity >= LINE)
    {
        pad = LINE - in_line;
    }
    let mut gap = payload_gap(offset + pad, aligned);
    if offset + pad + gap + body > capacity {
        pad = capacity - offset;
        gap = payload_gap(0, aligned);
    }
    Placement {
        pad,
        aligned,
        lines,
        gap,
        record: record_end(gap + body, lines),
    }
}

/// The most bytes of data area an SPSC message of `len` bytes takes, padding and alignment
/// gap included, when every message has that length (the channel layer sizes rings with it):
/// a whole line for a record of up to 64 bytes that does not divide a line, whole lines for a
/// [`REC_LINES`] one, `64 + len` (rounded up to 8) for an aligned one. The padding before a
/// record that would cross the end of the lap is not counted.
#[must_use]
pub const fn record_span(len: u64) -> u64 {
    let record = record_size(len);
    if len <= REC_LINE_PAYLOAD {
        if LINE % record == 0 { record } else { LINE }
    } else {
        LINE + ((len + 7) & !7)
    }
}

/// What an SPSC header word says about the position it was read at, judged against the
/// reader's own geometry (the writer is not trusted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// No record there yet: `VALID` clear, or the tag of another position.
    Empty,
    /// A record: its payload of `len` bytes starts `gap` bytes after the header; the next
    /// record starts at `next`.
    Record {
        /// Bytes from the header to the payload.
        gap: u64,
        /// Payload bytes.
        len: u64,
        /// The position after the record.
        next: u64,
    },
    /// A padding record: the next record starts at `next`.
    Padding {
        /// The position after the padding.
        next: u64,
    },
    /// A record that breaks the layout: what, the value found, and the limit.
    Corrupt(&'static str, u64, u64),
}

/// Reads the header `word` found at `position` of an SPSC ring of `capacity` bytes (a power
/// of two) whose largest message is `max_message`. See *Validation by the consumer*.
#[must_use]
pub const fn decode(word: u64, position: u64, capacity: u64, max_message: u64) -> Decoded {
    if word & REC_VALID == 0 || header_tag(word) != record_tag(position) {
        return Decoded::Empty;
    }
    let offset = position & (capacity - 1);
    let len = word & REC_LEN_MASK;
    let aligned = word & REC_ALIGNED != 0;
    if word & REC_PAD != 0 {
        let end = offset + REC_HEADER_LEN as u64 + len;
        let to_line = offset & (LINE - 1) != 0 && end == (offset | (LINE - 1)) + 1;
        let lines = word & REC_LINES != 0;
        if aligned || lines || offset == 0 || end > capacity || !(end == capacity || to_line) {
            return Decoded::Corrupt(
                "a padding record must reach the end of the lap or of its line, not start a lap, and carry no ALIGNED or LINES bit",
                len,
                capacity - offset - REC_HEADER_LEN as u64,
            );
        }
        return Decoded::Padding {
            next: position + REC_HEADER_LEN as u64 + len,
        };
    }
    let gap = payload_gap(offset, aligned);
    let room = if offset + gap <= capacity {
        capacity - offset - gap
    } else {
        0
    };
    if len > max_message || len > room || offset + gap > capacity {
        let limit = if max_message < room {
            max_message
        } else {
            room
        };
        return Decoded::Corrupt(
            "a record length must fit max_message and the rest of the lap",
            len,
            limit,
        );
    }
    let body = (len + 7) & !7;
    let lines = word & REC_LINES != 0;
    if record_end(offset + gap + body, lines) > capacity {
        return Decoded::Corrupt(
            "a LINES record must end its last line before the end of the lap",
            len,
            room,
        );
    }
    Decoded::Record {
        gap,
        len,
        next: record_end(position + gap + body, lines),
    }
}
/// An SPSC padding header word at `position` skipping `skip` bytes after the header.
#[must_use]
pub const fn padding_word(position: u64, skip: u64) -> u64 {
    (record_tag(position) << 32) | REC_VALID | REC_PAD | (skip & REC_LEN_MASK)
}

/// Bytes an SPSC record with a payload of `len` bytes occupies.
#[must_use]
pub const fn record_size(len: u64) -> u64 {
    REC_HEADER_LEN as u64 + ((len + 7) & !7)
}

/// Bytes a broadcast slot of `slot_size` payload bytes occupies: header and payload,
/// rounded up to 8.
#[must_use]
pub const fn slot_stride(slot_size: u32) -> u64 {
    (SLOT_HEADER_LEN as u64 + slot_size as u64 + 7) & !7
}

/// MPMC slots start on a multiple of this (a cache line): a slot shares no line with its
/// neighbours, so a producer filling one slot never takes the line a consumer is reading
/// the previous one from, and a slot of up to 48 payload bytes is one line.
pub const MPMC_SLOT_ALIGN: u64 = 64;

/// Bytes an MPMC slot of `slot_size` payload bytes occupies: header and payload, rounded up
/// to [`MPMC_SLOT_ALIGN`].
#[must_use]
pub const fn mpmc_slot_stride(slot_size: u32) -> u64 {
    (SLOT_HEADER_LEN as u64 + slot_size as u64 + MPMC_SLOT_ALIGN - 1) & !(MPMC_SLOT_ALIGN - 1)
}

/// Offset of the data area for a table of `parties` entries.
#[must_use]
pub const fn data_offset(parties: u32) -> u64 {
    (TABLE_OFFSET + ENTRY_LEN * parties as usize) as u64
}

/// Offset of a broadcast ring's data area for a table of `parties` entries: page aligned.
#[must_use]
pub const fn broadcast_data_offset(parties: u32) -> u64 {
    let end = data_offset(parties);
    (end + BROADCAST_DATA_ALIGN - 1) & !(BROADCAST_DATA_ALIGN - 1)
}

/// A broadcast slot `seq` for a finished message at `position`.
#[must_use]
pub const fn stamp_done(position: u64) -> u64 {
    position.wrapping_add(1) & !STAMP_BUSY
}

/// A broadcast slot `seq` for a message at `position` being written.
#[must_use]
pub const fn stamp_busy(position: u64) -> u64 {
    stamp_done(position) | STAMP_BUSY
}

// Compile-time agreement with the tables above. Under loom the atomics are loom's (a different
// size), and no ring is ever mapped, so the checks apply to real builds only.
#[cfg(not(ringway_loom))]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};

    // Block 0.
    assert!(offset_of!(Identity, magic) == 0);
    assert!(offset_of!(Identity, version) == 8);
    assert!(offset_of!(Identity, kind) == 12);
    assert!(offset_of!(Identity, total_len) == 16);
    assert!(offset_of!(Identity, capacity) == 24);
    assert!(offset_of!(Identity, slot_size) == 32);
    assert!(offset_of!(Identity, slot_stride) == 36);
    assert!(offset_of!(Identity, data_offset) == 40);
    assert!(offset_of!(Identity, max_message) == 48);
    assert!(offset_of!(Identity, max_producers) == 52);
    assert!(offset_of!(Identity, max_consumers) == 56);
    assert!(offset_of!(Identity, flags) == 60);
    assert!(offset_of!(Identity, fingerprint) == 64);
    assert!(offset_of!(Identity, creator_pid) == 80);
    assert!(offset_of!(Identity, history) == 84);
    assert!(offset_of!(Identity, created_ns) == 88);
    assert!(offset_of!(Identity, creator_start) == 96);
    assert!(offset_of!(Identity, creator_pidns) == 104);
    assert!(offset_of!(Identity, reserved1) == 112);
    assert!(offset_of!(Identity, init) == 120);
    assert!(offset_of!(Identity, reserved2) == 124);
    assert!(size_of::<Identity>() == 128);

    // Blocks 1 to 7, each exactly one 128-byte block with no padding.
    assert!(offset_of!(ProducerIndex, tail) == 0);
    assert!(size_of::<ProducerIndex>() == 128);
    assert!(offset_of!(ConsumerIndex, head) == 0);
    assert!(size_of::<ConsumerIndex>() == 128);
    assert!(offset_of!(WaitBlock, seq) == 0);
    assert!(offset_of!(WaitBlock, waiters) == 4);
    assert!(size_of::<WaitBlock>() == 128);
    assert!(offset_of!(Counters, lost) == 0);
    assert!(offset_of!(Counters, abandoned) == 8);
    assert!(offset_of!(Counters, users) == 16);
    assert!(offset_of!(Counters, reserved0) == 20);
    assert!(size_of::<Counters>() == 128);
    assert!(offset_of!(Label, len) == 0);
    assert!(offset_of!(Label, reserved0) == 4);
    assert!(offset_of!(Label, bytes) == 8);
    assert!(size_of::<Label>() == 128);
    assert!(LABEL_MAX == 15 * 8);
    assert!(size_of::<ReservedBlock>() == 128);

    // The header, block by block.
    assert!(offset_of!(Header, identity) == 0);
    assert!(offset_of!(Header, producer) == 128);
    assert!(offset_of!(Header, consumer) == 256);
    assert!(offset_of!(Header, not_empty) == 384);
    assert!(offset_of!(Header, not_full) == 512);
    assert!(offset_of!(Header, counters) == 640);
    assert!(offset_of!(Header, label) == 768);
    assert!(offset_of!(Header, reserved) == 896);
    assert!(size_of::<Header>() == HEADER_LEN);
    assert!(align_of::<Header>() == RING_ALIGN);
    assert!(size_of::<Block128<Identity>>() == 128);
    assert!(align_of::<Block128<Identity>>() == 128);

    // Absolute offsets of the header fields named in the spec.
    assert!(offset_of!(Header, producer) + offset_of!(ProducerIndex, tail) == 128);
    assert!(offset_of!(Header, consumer) + offset_of!(ConsumerIndex, head) == 256);
    assert!(offset_of!(Header, not_empty) + offset_of!(WaitBlock, seq) == 384);
    assert!(offset_of!(Header, not_empty) + offset_of!(WaitBlock, waiters) == 388);
    assert!(offset_of!(Header, not_full) + offset_of!(WaitBlock, seq) == 512);
    assert!(offset_of!(Header, not_full) + offset_of!(WaitBlock, waiters) == 516);
    assert!(offset_of!(Header, counters) + offset_of!(Counters, lost) == 640);
    assert!(offset_of!(Header, counters) + offset_of!(Counters, abandoned) == 648);
    assert!(offset_of!(Header, counters) + offset_of!(Counters, users) == 656);
    assert!(offset_of!(Header, label) + offset_of!(Label, len) == 768);
    assert!(offset_of!(Header, label) + offset_of!(Label, bytes) == 776);

    // Registration entry.
    assert!(offset_of!(Entry, ctl) == 0);
    assert!(offset_of!(Entry, start_time) == 8);
    assert!(offset_of!(Entry, reserved0) == 16);
    assert!(offset_of!(Entry, pidns) == 24);
    assert!(offset_of!(Entry, cursor) == 32);
    assert!(offset_of!(Entry, reserved1) == 40);
    // `claim` on the second 64-byte line, `ctl` on the first.
    assert!(offset_of!(Entry, claim) == 64);
    assert!(offset_of!(Entry, claim) / 64 != offset_of!(Entry, ctl) / 64);
    assert!(offset_of!(Entry, reserved) == 72);
    assert!(size_of::<Entry>() == ENTRY_LEN);
    assert!(TABLE_OFFSET == 1024);

    // MPMC slot header.
    assert!(offset_of!(SlotHeader, seq) == 0);
    assert!(offset_of!(SlotHeader, len) == 8);
    assert!(size_of::<SlotHeader>() == SLOT_HEADER_LEN);
    assert!(align_of::<SlotHeader>() == 8);

    // Record and slot arithmetic named in the spec.
    assert!(MAGIC == 0x0059_4157_474E_4952);
    assert!(INIT_READY == 0x2159_4452);
    assert!(record_size(0) == 8 && record_size(1) == 16 && record_size(8) == 16);
    assert!(slot_stride(0) == 16 && slot_stride(1) == 24 && slot_stride(64) == 80);
    assert!(mpmc_slot_stride(0) == 64 && mpmc_slot_stride(48) == 64);
    assert!(mpmc_slot_stride(49) == 128 && mpmc_slot_stride(64) == 128);
    assert!(mpmc_slot_stride(MPMC_MAX_SLOT_SIZE) % MPMC_SLOT_ALIGN == 0);
    // A ring starts on a 128-byte boundary and its data area on a multiple of 128 (1024 +
    // 128 per entry), so every MPMC slot starts on a cache line.
    assert!(data_offset(1) % MPMC_SLOT_ALIGN == 0);
    assert!(data_offset(2) == 1280);
    assert!(broadcast_data_offset(33) == 8192 && broadcast_data_offset(1) == 4096);
    assert!(broadcast_data_offset(24) == 4096 && broadcast_data_offset(25) == 8192);
    assert!(stamp_done(0) == 1 && stamp_busy(0) == (1 | (1 << 63)));
    assert!(stamp_done(BROADCAST_MAX_POSITION - 1) & STAMP_BUSY == 0);
    assert!(FLAG_OVERWRITE == 1 && KIND_BROADCAST == 3);
    // A lap holds at most 2^29 tags, so tags one lap apart differ in 30 bits.
    assert!(SPSC_MAX_CAPACITY / 8 < REC_TAG_MASK + 1);
    assert!(REC_ALIGNED == 1 << 62 && REC_TAG_MASK << 32 < REC_ALIGNED && REC_LINES == 1 << 63);
    assert!(REC_LEN_MASK < REC_PAD && REC_PAD < REC_VALID && REC_VALID < 1 << 32);
    assert!(payload_gap(0, true) == 64 && payload_gap(56, true) == 8 && payload_gap(8, true) == 56);
    assert!(payload_gap(0, false) == 8);
    assert!(record_span(8) == 16 && record_span(40) == 64 && record_span(56) == 64);
    assert!(
        record_span(57) == 128 && record_span(64) == 128 && record_span(1 << 16) == (1 << 16) + 64
    );
    // A small record whose size does not divide a line starts on one and takes it whole; one
    // that divides it packs.
    let p = place(72, 16, 4096);
    assert!(p.pad == 56 && p.lines && !p.aligned && p.gap == 8 && p.record == 64);
    let p = place(4032, 40, 4096);
    assert!(p.pad == 0 && p.lines && p.record == 64);
    let p = place(72, 8, 4096);
    assert!(p.pad == 0 && !p.lines && p.record == 16);
    let p = place(64, 56, 4096);
    assert!(p.pad == 0 && !p.lines && p.record == 64);
};
