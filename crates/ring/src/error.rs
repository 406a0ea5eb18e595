//! Errors of the rings, one enum per operation.
//!
//! Every error that comes from reading shared memory carries a [`Corruption`] naming what was
//! read, the value found and the rule it broke: the process on the other side is untrusted,
//! and a broken rule is reported, never a panic.

use core::fmt;
use std::time::Duration;

/// Which end of a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// A process that pushes.
    Producer,
    /// A process that pops.
    Consumer,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Producer => "producer",
            Side::Consumer => "consumer",
        })
    }
}

/// The two kinds of ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RingKind {
    /// Single producer, single consumer, variable-size records.
    Spsc,
    /// Many producers, many consumers, fixed-size slots.
    Mpmc,
    /// One writer, many readers, each of which reads every message (fixed-size slots).
    Broadcast,
}

impl RingKind {
    /// The `kind` value stored in the header.
    #[must_use]
    pub const fn code(self) -> u32 {
        match self {
            RingKind::Spsc => crate::layout::KIND_SPSC,
            RingKind::Mpmc => crate::layout::KIND_MPMC,
            RingKind::Broadcast => crate::layout::KIND_BROADCAST,
        }
    }

    /// The kind a header's `kind` value names, if any.
    #[must_use]
    pub const fn from_code(code: u32) -> Option<RingKind> {
        match code {
            crate::layout::KIND_SPSC => Some(RingKind::Spsc),
            crate::layout::KIND_MPMC => Some(RingKind::Mpmc),
            crate::layout::KIND_BROADCAST => Some(RingKind::Broadcast),
            _ => None,
        }
    }
}

impl fmt::Display for RingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RingKind::Spsc => "SPSC",
            RingKind::Mpmc => "MPMC",
            RingKind::Broadcast => "broadcast",
        })
    }
}

/// A value read from shared memory that breaks the layout's rules.
///
/// The peer that wrote it is buggy, crashed mid-write or hostile; the reader refuses the value
/// instead of trusting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corruption {
    /// What was read, and the rule it must follow.
    pub what: &'static str,
    /// The value found.
    pub found: u64,
    /// The bound or expected value the rule compares against.
    pub limit: u64,
}

impl Corruption {
    pub(crate) const fn new(what: &'static str, found: u64, limit: u64) -> Corruption {
        Corruption { what, found, limit }
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ring corrupted by a peer: {} (found {:#x}, limit {:#x})",
            self.what, self.found, self.limit
        )
    }
}

impl std::error::Error for Corruption {}

/// Why a ring could not be initialised.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InitError {
    /// A configuration value is out of range.
    InvalidConfig {
        /// The setting and its rule.
        what: &'static str,
        /// The value given.
        value: u64,
    },
    /// The memory is smaller than the configuration needs.
    TooSmall {
        /// Bytes needed.
        need: u64,
        /// Bytes available.
        have: u64,
    },
    /// The memory does not start on a 128-byte boundary.
    Misaligned {
        /// The start address.
        addr: usize,
    },
    /// The memory already holds an initialised ring (its `init` word is set).
    AlreadyInitialized,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::InvalidConfig { what, value } => {
                write!(f, "invalid ring configuration: {what} (got {value})")
            }
            InitError::TooSmall { need, have } => write!(
                f,
                "memory too small for the ring: need {need} bytes, have {have}"
            ),
            InitError::Misaligned { addr } => write!(
                f,
                "ring memory at {addr:#x} is not 128-byte aligned (use a page-aligned mapping)"
            ),
            InitError::AlreadyInitialized => write!(
                f,
                "memory already holds an initialised ring; attach to it, or remove it and create a new one"
            ),
        }
    }
}

impl std::error::Error for InitError {}

/// Why attaching to a ring failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttachError {
    /// The memory does not start on a 128-byte boundary.
    Misaligned {
        /// The start address.
        addr: usize,
    },
    /// The memory is smaller than the header, or than the ring the header describes.
    TooSmall {
        /// Bytes the ring needs.
        need: u64,
        /// Bytes available.
        have: u64,
    },
    /// The creator did not finish initialising within the timeout.
    NotInitialized {
        /// How long the attach waited.
        waited: Duration,
    },
    /// The `magic` field is not ringway's: this memory is not a ringway ring.
    BadMagic {
        /// The value found.
        found: u64,
    },
    /// The layout version is not one this build reads.
    BadVersion {
        /// The version found.
        found: u32,
    },
    /// The ring is of the other kind.
    WrongKind {
        /// The kind code found.
        found: u32,
        /// The kind asked for.
        expected: RingKind,
    },
    /// A geometry field breaks the layout's rules.
    BadGeometry(Corruption),
    /// This side of an SPSC ring is held by a live process.
    Busy {
        /// The side asked for.
        side: Side,
        /// The process holding it.
        pid: u32,
    },
    /// The liveness token (for example a lock on the segment's fd) could not be acquired.
    Liveness {
        /// The side asked for.
        side: Side,
        /// What failed.
        reason: String,
    },
    /// Every entry of the MPMC registration table for this side is taken by a live process.
    TableFull {
        /// The side asked for.
        side: Side,
        /// The table size.
        max: u32,
    },
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttachError::Misaligned { addr } => {
                write!(
                    f,
                    "attach: ring memory at {addr:#x} is not 128-byte aligned"
                )
            }
            AttachError::TooSmall { need, have } => write!(
                f,
                "attach: the ring needs {need} bytes but the memory has {have} (truncated, or not a ring)"
            ),
            AttachError::NotInitialized { waited } => write!(
                f,
                "attach: the creator did not finish initialising the ring within {waited:?} (did it crash during create?)"
            ),
            AttachError::BadMagic { found } => write!(
                f,
                "attach: not a ringway ring (magic {found:#018x}, expected {:#018x})",
                crate::layout::MAGIC
            ),
            AttachError::BadVersion { found } => write!(
                f,
                "attach: ring layout version {found} is not supported (this build reads version {})",
                crate::layout::VERSION
            ),
            AttachError::WrongKind { found, expected } => {
                let found_name = RingKind::from_code(*found)
                    .map_or_else(|| format!("unknown kind {found}"), |k| k.to_string());
                write!(f, "attach: ring is {found_name}, expected {expected}")
            }
            AttachError::BadGeometry(c) => write!(f, "attach: {c}"),
            AttachError::Busy { side, pid } => write!(
                f,
                "attach: the {side} side is already attached by live process {pid}"
            ),
            AttachError::Liveness { side, reason } => write!(
                f,
                "attach: could not take the {side} side's liveness token: {reason}"
            ),
            AttachError::TableFull { side, max } => write!(
                f,
                "attach: all {max} {side} entries of the ring are held by live processes"
            ),
        }
    }
}

impl std::error::Error for AttachError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AttachError::BadGeometry(c) => Some(c),
            _ => None,
        }
    }
}

/// Why a push (or an in-place reserve) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushError {
    /// No room now (non-blocking calls only).
    Full,
    /// No room before the deadline (timed calls only).
    Timeout,
    /// The endpoint's [`Interrupt`](crate::Interrupt) was raised while the call waited
    /// (blocking and timed calls only); nothing was written.
    Interrupted,
    /// No consumer is left: every consumer closed or died.
    Closed,
    /// The message is larger than the ring's `max_message`.
    TooLarge {
        /// The length asked for.
        len: usize,
        /// The largest length this ring carries.
        max: usize,
    },
    /// The consumer side wrote values that break the layout.
    Corrupted(Corruption),
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full => f.write_str("push: ring is full"),
            PushError::Timeout => f.write_str("push: timed out waiting for space"),
            PushError::Interrupted => f.write_str("push: interrupted while waiting for space"),
            PushError::Closed => f.write_str("push: no consumer left (closed or dead)"),
            PushError::TooLarge { len, max } => write!(
                f,
                "push: message of {len} bytes exceeds the ring's maximum of {max} bytes"
            ),
            PushError::Corrupted(c) => write!(f, "push: {c}"),
        }
    }
}

impl std::error::Error for PushError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PushError::Corrupted(c) => Some(c),
            _ => None,
        }
    }
}

/// Why a pop (or an in-place peek) returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PopError {
    /// Nothing committed now (non-blocking calls only).
    Empty,
    /// Nothing committed before the deadline (timed calls only).
    Timeout,
    /// The endpoint's [`Interrupt`](crate::Interrupt) was raised while the call waited
    /// (blocking and timed calls only); nothing was consumed.
    Interrupted,
    /// Every producer closed or died, and everything they committed has been read.
    Closed,
    /// Broadcast readers only: the writer overwrote this many messages before this reader
    /// read them (an `overwrite` ring, or a reader that attached in a race it lost). The
    /// reader now stands at the oldest message still in the ring, which the next call
    /// returns; nothing torn or half-overwritten is ever delivered.
    Lagged(u64),
    /// A producer wrote values that break the layout.
    Corrupted(Corruption),
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PopError::Empty => f.write_str("pop: ring is empty"),
            PopError::Timeout => f.write_str("pop: timed out waiting for a message"),
            PopError::Interrupted => f.write_str("pop: interrupted while waiting for a message"),
            PopError::Closed => {
                f.write_str("pop: no producer left (closed or dead) and ring drained")
            }
            PopError::Lagged(n) => write!(
                f,
                "pop: this reader fell behind and missed {n} messages the writer overwrote"
            ),
            PopError::Corrupted(c) => write!(f, "pop: {c}"),
        }
    }
}

impl std::error::Error for PopError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PopError::Corrupted(c) => Some(c),
            _ => None,
        }
    }
}
