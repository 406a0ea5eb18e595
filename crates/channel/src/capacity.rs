//! How big a channel is, in one unit for every flavour and kind of message.
//!
//! **`capacity` is a number of messages**: the channel holds that many messages of
//! `max_message` bytes (a typed channel's messages are all `size_of::<T>()` bytes), SPSC or
//! MPMC alike. Rings come in powers of two, so a channel may hold more than asked for; the
//! endpoints' `capacity()` says how many it really holds, and both processes compute the same
//! number from the ring's geometry.
//!
//! - MPMC: one slot per message, `max_message` bytes each; slots are a power of two, at
//!   least 2.
//! - SPSC: variable-size records of an 8-byte header and the payload padded to 8 bytes, in a
//!   data area of a power of two bytes (counted with `layout::record_span`: a small record
//!   that does not divide a cache line takes a whole one, a large one its alignment gap). A record never crosses the end of the data area (it is
//!   preceded by padding instead, less than one record), so the area holds
//!   `(area + 8) / record - 1` records whatever the positions, and `area / record` when every
//!   record has the same power-of-two size (a typed channel whose records divide the area
//!   never pads). The area is also at least twice a record (the ring's largest message is
//!   half its area, less a header).
//!
//! The default capacity is 1024 messages, or as many as fit a 4 MiB data area if fewer (at
//! least one), so a large message type does not make a large segment. A byte channel's
//! largest message is 4096 bytes unless set. An SPSC ring could carry larger messages than
//! the channel's `max_message` (up to half its area); the channel records its own limit in the
//! ring's label, so both sides enforce and report the same one.

use ringway_region::Backing;
use ringway_ring::layout::{self, MPMC_MAX_CAPACITY, MPMC_MAX_SLOT_SIZE, SPSC_MAX_CAPACITY};
use ringway_ring::{Geometry, RingConfig, RingKind};

use crate::error::Error;
use crate::options::{ChannelOptions, Flavour};

/// Messages in a channel when the options do not say.
pub(crate) const DEFAULT_MESSAGES: u64 = 1024;
/// The most data area a default capacity takes.
pub(crate) const DEFAULT_AREA: u64 = 4 << 20;
/// A byte channel's largest message when the options do not say.
pub(crate) const DEFAULT_BYTE_MESSAGE: u64 = 4096;
/// What a byte channel's ring label starts with; the channel's largest message follows.
/// What a byte channel's label ends with: the channel's largest message follows.
pub(crate) const MAX_SUFFIX: &str = ", max_message ";

/// The ring for these options, checked: `size` is `Some(size_of::<T>())` for a typed channel,
/// `None` for bytes.
pub(crate) fn plan(size: Option<u64>, opts: &ChannelOptions, name: &str) -> Result<Plan, Error> {
    let invalid = |option: &'static str, reason: String| Error::InvalidOptions {
        channel: name.to_owned(),
        option,
        reason,
    };
    let message = match (size, opts.max_message) {
        (Some(size), None) => size,
        (Some(size), Some(max)) if max as u64 == size => size,
        (Some(size), Some(max)) => {
            return Err(invalid(
                "ChannelOptions::max_message",
                format!(
                    "{max} bytes asked for, but a typed channel's messages are exactly \
                     size_of::<T>() = {size} bytes; leave max_message unset"
                ),
            ));
        }
        (None, Some(0)) => {
            return Err(invalid(
                "ChannelOptions::max_message",
                "0 bytes: a channel's largest message must be at least 1 byte".to_owned(),
            ));
        }
        (None, Some(max)) => max as u64,
        (None, None) => DEFAULT_BYTE_MESSAGE,
    };
    let uniform = size.is_some();
    let messages = match opts.capacity {
        Some(0) => {
            return Err(invalid(
                "ChannelOptions::capacity",
                "0 messages: a channel holds at least one message".to_owned(),
            ));
        }
        Some(n) => n as u64,
        // A broadcast ring is slots, like MPMC.
        None if opts.broadcast => default_messages(Flavour::Mpmc, message, uniform),
        None => default_messages(opts.flavour, message, uniform),
    };
    let too_large = |what: String| {
        invalid(
            "ChannelOptions::capacity",
            format!(
                "{messages} messages of {message} bytes: {what}; ask for fewer or smaller \
                 messages"
            ),
        )
    };
    let config = match opts.flavour {
        _ if opts.broadcast => {
            if message > u64::from(MPMC_MAX_SLOT_SIZE) {
                return Err(invalid(
                    "ChannelOptions::max_message",
                    format!(
                        "{message} bytes: a broadcast slot carries at most \
                         {MPMC_MAX_SLOT_SIZE} bytes"
                    ),
                ));
            }
            // History needs one slot more than it keeps (the one being written).
            let slots = messages
                .max(u64::from(opts.history) + 1)
                .max(2)
                .checked_next_power_of_two()
                .filter(|&slots| slots <= MPMC_MAX_CAPACITY)
                .ok_or_else(|| {
                    too_large(format!(
                        "a broadcast ring has at most {MPMC_MAX_CAPACITY} slots"
                    ))
                })?;
            RingConfig::broadcast(slots, message as u32)
                .max_readers(opts.max_readers)
                .policy(opts.policy)
                .history(opts.history)
        }
        Flavour::Mpmc => {
            if message > u64::from(MPMC_MAX_SLOT_SIZE) {
                return Err(invalid(
                    "ChannelOptions::max_message",
                    format!(
                        "{message} bytes: an MPMC slot carries at most {MPMC_MAX_SLOT_SIZE} bytes"
                    ),
                ));
            }
            let slots = messages
                .max(2)
                .checked_next_power_of_two()
                .filter(|&slots| slots <= MPMC_MAX_CAPACITY)
                .ok_or_else(|| {
                    too_large(format!(
                        "an MPMC ring has at most {MPMC_MAX_CAPACITY} slots"
                    ))
                })?;
            RingConfig::mpmc(slots, message as u32)
                .max_producers(opts.max_producers)
                .max_consumers(opts.max_consumers)
        }
        Flavour::Spsc => {
            let area = spsc_area(messages, message, uniform)
                .filter(|&area| area <= SPSC_MAX_CAPACITY)
                .ok_or_else(|| {
                    too_large(format!(
                        "an SPSC ring's data area is at most {SPSC_MAX_CAPACITY} bytes \
                         (use Flavour::Mpmc for more)"
                    ))
                })?;
            RingConfig::spsc(area)
        }
    };
    Ok(Plan {
        config,
        byte_max: (!uniform).then_some(message),
    })
}

/// A ring configuration and, for a byte channel, its largest message.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) config: RingConfig,
    pub(crate) byte_max: Option<u64>,
}

impl Plan {
    /// The label the ring stores: the message type's name, or for a byte channel the marker
    /// and its largest message.
    pub(crate) fn label(&self, type_label: &str) -> String {
        match self.byte_max {
            Some(max) => format!("{type_label}{MAX_SUFFIX}{max}"),
            None => type_label.to_owned(),
        }
    }
}

/// The SPSC data area holding `messages` records of a `message`-byte payload.
fn spsc_area(messages: u64, message: u64, uniform: bool) -> Option<u64> {
    let record = layout::record_span(message);
    let records = messages.checked_mul(record)?;
    let need = if uniform && record.is_power_of_two() {
        records
    } else {
        // Room for the padding before a record that would cross the end.
        records.checked_add(record - 8)?
    };
    // The ring's largest message is half its area less a header.
    let for_one = message
        .checked_add(layout::REC_HEADER_LEN as u64)?
        .checked_mul(2)?;
    need.max(for_one)
        .max(layout::SPSC_MIN_CAPACITY)
        .checked_next_power_of_two()
}

/// 1024 messages, or as many as fit [`DEFAULT_AREA`] if fewer, at least one.
fn default_messages(flavour: Flavour, message: u64, uniform: bool) -> u64 {
    let fits = |n: u64| match flavour {
        Flavour::Spsc => spsc_area(n, message, uniform).is_some_and(|a| a <= DEFAULT_AREA),
        Flavour::Mpmc => {
            n.max(2).next_power_of_two()
                * layout::mpmc_slot_stride(message.min(u32::MAX.into()) as u32)
                <= DEFAULT_AREA
        }
    };
    if fits(DEFAULT_MESSAGES) {
        return DEFAULT_MESSAGES;
    }
    // The largest n that fits, by bisection (fits is monotonic in n).
    let (mut lo, mut hi) = (1, DEFAULT_MESSAGES);
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) { lo = mid } else { hi = mid }
    }
    lo
}

/// The size of a channel as both sides see it, from the ring's geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size {
    /// Messages of `max_message` bytes the channel holds.
    pub(crate) capacity: usize,
    /// The largest message.
    pub(crate) max_message: usize,
    /// SPSC: bytes one message of `max_message` bytes takes; MPMC: 1 (one slot).
    unit: u64,
    /// SPSC: every record has the same size (typed channels), so a count of bytes in use
    /// divides exactly.
    uniform: bool,
}

impl Size {
    /// A typed channel of `size`-byte messages.
    pub(crate) fn typed(geometry: &Geometry, size: usize) -> Size {
        Size::of(geometry, size as u64, true)
    }

    /// A byte channel whose ring carries `label`.
    pub(crate) fn bytes(geometry: &Geometry, label: &str) -> Size {
        let ring_max = u64::from(geometry.max_message);
        let max = match geometry.kind {
            RingKind::Mpmc | RingKind::Broadcast => ring_max,
            // A label a peer rewrote, or one from a version without it: the ring's limit.
            RingKind::Spsc => label
                .rsplit_once(MAX_SUFFIX)
                .and_then(|(_, n)| n.parse::<u64>().ok())
                .filter(|&n| n > 0 && n <= ring_max)
                .unwrap_or(ring_max),
        };
        Size::of(geometry, max, false)
    }

    fn of(geometry: &Geometry, max: u64, uniform: bool) -> Size {
        let (capacity, unit) = match geometry.kind {
            RingKind::Mpmc | RingKind::Broadcast => (geometry.capacity, 1),
            RingKind::Spsc => {
                let record = layout::record_span(max);
                let area = geometry.capacity;
                let n = if uniform && record.is_power_of_two() {
                    area / record
                } else {
                    ((area + 8) / record).saturating_sub(1).max(1)
                };
                (n, record)
            }
        };
        Size {
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
            max_message: usize::try_from(max).unwrap_or(usize::MAX),
            unit,
            // Records padded to a line or carrying an alignment gap: the bytes in use end
            // with a partial unit, so they are counted up, not down.
            uniform: uniform && layout::record_span(max) == layout::record_size(max),
        }
    }

    /// Messages in the channel, from the ring's count of what is in use (slots for MPMC,
    /// bytes for SPSC). A byte SPSC channel's messages vary in size: there it is the room in
    /// use in messages of `max_message` bytes, rounded up, so it is not zero while anything
    /// is queued.
    pub(crate) fn len(&self, queued: u64) -> usize {
        let n = if self.uniform || self.unit == 1 {
            // A typed record is padded by less than one record.
            queued / self.unit
        } else {
            queued.div_ceil(self.unit)
        };
        usize::try_from(n).unwrap_or(usize::MAX).min(self.capacity)
    }
}

/// The size getters every endpoint has, the same on both sides of a channel: `$size` is the
/// endpoint's [`Size`] and `$queued` what its ring has in use.
macro_rules! size_getters {
    () => {
        /// How many messages of [`max_message`](Self::max_message) bytes the channel holds:
        /// what [`ChannelOptions::capacity`](crate::ChannelOptions::capacity) asked for,
        /// rounded up to what the ring makes.
        #[must_use]
        pub fn capacity(&self) -> usize {
            self.size().capacity
        }

        /// Bytes of shared memory the channel takes: its header, registration table and
        /// ring, as the segment is sized (what it costs in `/dev/shm`).
        #[must_use]
        pub fn capacity_bytes(&self) -> usize {
            self.ep.shared().region.len()
        }

        /// The largest message, in bytes (`size_of::<T>()` for a typed channel).
        #[must_use]
        pub fn max_message(&self) -> usize {
            self.size().max_message
        }

        /// Messages sent and not yet received, as far as this endpoint can tell now (the
        /// other side may be sending or receiving meanwhile; a sender of an SPSC channel sees
        /// what the receiver took up to a quarter of the capacity late). For a byte SPSC
        /// channel, whose messages vary in size, it is the room in use counted in messages of
        /// `max_message` bytes, rounded up.
        #[must_use]
        pub fn len(&self) -> usize {
            self.size()
                .len($crate::endpoint::RingEnd::queued(&self.ep.ring))
        }

        /// Whether no message is waiting, as far as this endpoint can tell now.
        #[must_use]
        pub fn is_empty(&self) -> bool {
            $crate::endpoint::RingEnd::queued(&self.ep.ring) == 0
        }

        /// Whether the channel holds [`capacity`](Self::capacity) messages, as far as this
        /// endpoint can tell now.
        #[must_use]
        pub fn is_full(&self) -> bool {
            self.len() >= self.capacity()
        }
    };
}
pub(crate) use size_getters;

/// Refuses a segment of `len` bytes that the place its pages would live cannot hold now.
pub(crate) fn check_room(backing: &Backing, len: usize, name: &str) -> Result<(), Error> {
    let Some(room) = backing.room() else {
        return Ok(());
    };
    let requested = len as u64;
    if requested <= room.available {
        return Ok(());
    }
    Err(Error::NoSpace {
        channel: name.to_owned(),
        requested,
        available: room.available,
        place: room.place,
        grow: room.grow,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(size: Option<u64>, opts: &ChannelOptions) -> Geometry {
        plan(size, opts, "test").unwrap().config.geometry().unwrap()
    }

    #[test]
    fn capacity_counts_messages_in_every_flavour() {
        for flavour in [Flavour::Spsc, Flavour::Mpmc] {
            let opts = ChannelOptions::new().flavour(flavour).capacity(100);
            let typed = Size::typed(&geometry(Some(24), &opts), 24);
            assert!(
                (100..=256).contains(&typed.capacity),
                "{flavour}: {typed:?}"
            );
            let bytes_opts = opts.clone().max_message(1000);
            let plan = plan(None, &bytes_opts, "t").unwrap();
            let label = plan.label("bytes");
            let bytes = Size::bytes(&plan.config.geometry().unwrap(), &label);
            assert_eq!(bytes.max_message, 1000, "{flavour}");
            assert!(
                (100..=256).contains(&bytes.capacity),
                "{flavour}: {bytes:?}"
            );
        }
    }

    #[test]
    fn spsc_capacity_is_what_fits_wherever_the_ring_starts() {
        // A payload of 96 bytes starts on a line: its record spans up to 64 + 96 bytes, which
        // does not divide a power of two, so 3 records need 1024 bytes, not 480.
        let opts = ChannelOptions::new().capacity(3);
        let g = geometry(Some(96), &opts);
        assert_eq!(g.capacity, 1024);
        assert_eq!(Size::typed(&g, 96).capacity, 5, "(1024 + 8) / 160 - 1");
        // A record of 40 bytes (32 of payload) never straddles two lines: each takes a line.
        let g = geometry(Some(32), &opts);
        assert_eq!((g.capacity, Size::typed(&g, 32).capacity), (256, 4));
        // Records of 16 bytes divide the area: no padding, every byte is used.
        let g = geometry(Some(8), &ChannelOptions::new().capacity(4));
        assert_eq!((g.capacity, Size::typed(&g, 8).capacity), (64, 4));
    }

    #[test]
    fn default_capacity_is_bounded_in_bytes() {
        for flavour in [Flavour::Spsc, Flavour::Mpmc] {
            let opts = ChannelOptions::new().flavour(flavour);
            let small = Size::typed(&geometry(Some(8), &opts), 8);
            assert_eq!(small.capacity, 1024, "{flavour}");
            let big = geometry(Some(1 << 20), &opts);
            assert!(
                big.total_len <= DEFAULT_AREA + (64 << 10),
                "{flavour}: {big:?}"
            );
            assert!(Size::typed(&big, 1 << 20).capacity >= 1, "{flavour}");
            let huge = geometry(Some(16 << 20), &opts);
            assert!(Size::typed(&huge, 16 << 20).capacity >= 1, "{flavour}");
        }
    }

    #[test]
    fn meaningless_values_are_refused() {
        let err = |size, opts: ChannelOptions| plan(size, &opts, "c").unwrap_err().to_string();
        let zero = err(Some(8), ChannelOptions::new().capacity(0));
        assert!(
            zero.contains("ChannelOptions::capacity: 0 messages"),
            "{zero}"
        );
        let no_bytes = err(None, ChannelOptions::new().max_message(0));
        assert!(
            no_bytes.contains("ChannelOptions::max_message: 0 bytes"),
            "{no_bytes}"
        );
        let typed_max = err(Some(8), ChannelOptions::new().max_message(64));
        assert!(
            typed_max.contains("size_of::<T>() = 8 bytes"),
            "{typed_max}"
        );
        let huge = err(
            None,
            ChannelOptions::new().capacity(usize::MAX).max_message(64),
        );
        assert!(huge.contains("ask for fewer or smaller messages"), "{huge}");
    }

    #[test]
    fn a_rewritten_label_falls_back_to_the_ring_limit() {
        let g = geometry(None, &ChannelOptions::new().capacity(4).max_message(100));
        assert_eq!(Size::bytes(&g, "bytes, max_message 100").max_message, 100);
        let ring_max = g.max_message as usize;
        for label in [
            "bytes",
            "bytes, max_message 0",
            "bytes, max_message 99999999999",
        ] {
            assert_eq!(Size::bytes(&g, label).max_message, ring_max, "{label}");
        }
    }

    #[test]
    fn len_counts_messages() {
        let typed = Size::typed(&geometry(Some(96), &ChannelOptions::new().capacity(3)), 96);
        assert_eq!(typed.len(0), 0);
        assert_eq!(typed.len(2 * 104 + 96), 2, "padding is not a message");
        // 40-byte records, one a line: the second ends 24 bytes short of its line's end.
        let lines = Size::typed(&geometry(Some(32), &ChannelOptions::new().capacity(3)), 32);
        assert_eq!(lines.len(64 + 40), 2);
        let plan = plan(
            None,
            &ChannelOptions::new().capacity(4).max_message(100),
            "t",
        )
        .unwrap();
        let bytes = Size::bytes(&plan.config.geometry().unwrap(), &plan.label("bytes"));
        assert_eq!(bytes.len(16), 1, "a small message is not nothing");
    }
}
