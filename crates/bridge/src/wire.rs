//! What the bridge adds to every Zenoh sample: the attachment.
//!
//! The payload is the ringway message, byte for byte; the attachment carries what the
//! receiving bridge needs to check it and to notice what it missed. Version 1, little-endian,
//! fixed-width fields:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `RWB1` (`0x3142_5752` read as a little-endian `u32`) |
//! | 4 | 4 | flags: bit 0 set for a typed channel; other bits zero |
//! | 8 | 8 | stream: a random number drawn by the publishing bridge when it starts the route |
//! | 16 | 8 | sequence number: 0 for the stream's first message, then one more for each |
//! | 24 | 16 | the message type's fingerprint (two words, see [`Fingerprint`]) |
//! | 40 | n | typed channels only: the type's name, UTF-8, at most 64 bytes (for error messages) |
//!
//! A stream is one publishing bridge's run of one route: a restarted bridge draws a new
//! stream, so its sequence numbers start again at 0 without looking like duplicates.

use std::fmt;

use ringway_channel::Message;

/// `RWB1` as a little-endian `u32`.
const MAGIC: u32 = u32::from_le_bytes(*b"RWB1");
const TYPED: u32 = 1;
/// The fixed part of an attachment.
pub(crate) const HEADER_LEN: usize = 40;
/// The longest type name an attachment carries.
const NAME_MAX: usize = 64;

/// What a route's messages are, as the bridges on both ends see it: byte messages, or one
/// plain-data type identified the way ringway identifies it (by layout for
/// `#[derive(Message)]` types, by name otherwise, with its size and alignment).
///
/// Two bridges whose fingerprints differ refuse each other's samples.
#[derive(Clone, PartialEq, Eq)]
pub struct Fingerprint {
    words: [u64; 2],
    name: String,
}

impl Fingerprint {
    /// Byte messages of any length.
    #[must_use]
    pub fn bytes() -> Fingerprint {
        Fingerprint {
            words: [0, fnv1a(FNV_OFFSET, b"ringway::bytes")],
            name: "bytes".to_owned(),
        }
    }

    /// Messages of type `T`: by its layout if it derives [`Message`], else by `type_name`
    /// (what [`ChannelOptions::type_name`](ringway_channel::ChannelOptions::type_name) sets)
    /// or, without one, [`core::any::type_name`].
    #[must_use]
    pub fn of<T: Message>(type_name: Option<&str>) -> Fingerprint {
        let size = core::mem::size_of::<T>() as u64;
        let align = core::mem::align_of::<T>() as u64;
        let head = (1 << 63) | ((align & 0x1f_ffff) << 40) | (size & ((1 << 40) - 1));
        let (hash, name) = match (T::LAYOUT, type_name) {
            (Some(shape), None) => (shape.fingerprint(), struct_name(shape)),
            (Some(shape), Some(name)) => {
                (fnv1a(shape.fingerprint(), name.as_bytes()), name.to_owned())
            }
            (None, name) => {
                let name = name.unwrap_or(core::any::type_name::<T>());
                (fnv1a(FNV_OFFSET, name.as_bytes()), name.to_owned())
            }
        };
        let layout = u64::from(T::LAYOUT.is_some()) << 62;
        Fingerprint {
            words: [head | layout, hash],
            name: cut(&name, NAME_MAX).to_owned(),
        }
    }

    /// Whether these are byte messages.
    #[must_use]
    pub fn is_bytes(&self) -> bool {
        self.words[0] == 0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_bytes() {
            f.write_str("byte messages")
        } else {
            let size = self.words[0] & ((1 << 40) - 1);
            write!(
                f,
                "`{}` ({size} bytes, fingerprint {:016x}{:016x})",
                self.name, self.words[0], self.words[1]
            )
        }
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn struct_name(shape: &ringway_channel::__private::Shape) -> String {
    match shape {
        ringway_channel::__private::Shape::Struct { name, .. } => (*name).to_owned(),
        _ => "message".to_owned(),
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash = (hash ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }
    hash
}

/// One sample's attachment, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) stream: u64,
    pub(crate) seq: u64,
    pub(crate) fingerprint: Fingerprint,
}

/// The attachment of a stream's messages, kept encoded: only the sequence number changes
/// from one message to the next.
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    pub(crate) fn new(stream: u64, fingerprint: &Fingerprint) -> Encoder {
        let mut bytes = Vec::with_capacity(HEADER_LEN + NAME_MAX);
        bytes.extend_from_slice(&MAGIC.to_le_bytes());
        let flags = if fingerprint.is_bytes() { 0 } else { TYPED };
        bytes.extend_from_slice(&flags.to_le_bytes());
        bytes.extend_from_slice(&stream.to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(&fingerprint.words[0].to_le_bytes());
        bytes.extend_from_slice(&fingerprint.words[1].to_le_bytes());
        if !fingerprint.is_bytes() {
            bytes.extend_from_slice(fingerprint.name.as_bytes());
        }
        Encoder { bytes }
    }

    /// The attachment of message `seq`.
    pub(crate) fn encode(&mut self, seq: u64) -> &[u8] {
        self.bytes[16..24].copy_from_slice(&seq.to_le_bytes());
        &self.bytes
    }
}

/// Why an attachment was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BadStamp {
    Missing,
    Short(usize),
    Magic(u32),
    Flags(u32),
}

impl fmt::Display for BadStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadStamp::Missing => f.write_str("the sample has no attachment"),
            BadStamp::Short(n) => write!(f, "its attachment is {n} bytes, fewer than {HEADER_LEN}"),
            BadStamp::Magic(m) => write!(f, "its attachment starts with {m:#010x}, not RWB1"),
            BadStamp::Flags(x) => write!(f, "its attachment has unknown flags {x:#x}"),
        }
    }
}

/// Decodes an attachment (`None`: the sample had none).
pub(crate) fn decode(attachment: Option<&[u8]>) -> Result<Stamp, BadStamp> {
    let a = attachment.ok_or(BadStamp::Missing)?;
    if a.len() < HEADER_LEN {
        return Err(BadStamp::Short(a.len()));
    }
    let word = |at: usize| u64::from_le_bytes(a[at..at + 8].try_into().expect("8 bytes"));
    let magic = u32::from_le_bytes(a[0..4].try_into().expect("4 bytes"));
    if magic != MAGIC {
        return Err(BadStamp::Magic(magic));
    }
    let flags = u32::from_le_bytes(a[4..8].try_into().expect("4 bytes"));
    if flags & !TYPED != 0 {
        return Err(BadStamp::Flags(flags));
    }
    let name = if flags & TYPED != 0 {
        let raw = &a[HEADER_LEN..a.len().min(HEADER_LEN + NAME_MAX)];
        String::from_utf8_lossy(raw).into_owned()
    } else {
        "bytes".to_owned()
    };
    Ok(Stamp {
        stream: word(8),
        seq: word(16),
        fingerprint: Fingerprint {
            words: [word(24), word(32)],
            name,
        },
    })
}

/// A stream number no other bridge run is likely to draw: the clock, the pid and a
/// per-process counter through a 64-bit mix (no randomness crate needed for this).
pub(crate) fn new_stream() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x =
        nanos ^ (u64::from(std::process::id()) << 32) ^ COUNTER.fetch_add(1, Ordering::Relaxed);
    // splitmix64's finaliser.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(ringway_channel::Message)]
    #[repr(C)]
    struct Tick {
        price: f64,
        qty: u32,
        venue: u32,
    }

    #[derive(ringway_channel::Message)]
    #[repr(C)]
    struct Other {
        price: f64,
        qty: u32,
        shelf: u32,
    }

    #[test]
    fn round_trip() {
        for fp in [
            Fingerprint::bytes(),
            Fingerprint::of::<Tick>(None),
            Fingerprint::of::<u64>(None),
        ] {
            let mut enc = Encoder::new(42, &fp);
            let stamp = decode(Some(enc.encode(7))).unwrap();
            assert_eq!(
                stamp,
                Stamp {
                    stream: 42,
                    seq: 7,
                    fingerprint: fp.clone()
                }
            );
            assert_eq!(decode(Some(enc.encode(u64::MAX))).unwrap().seq, u64::MAX);
        }
    }

    #[test]
    fn layouts_differ_by_field_name_and_from_bytes() {
        assert_ne!(
            Fingerprint::of::<Tick>(None),
            Fingerprint::of::<Other>(None)
        );
        assert_ne!(Fingerprint::of::<Tick>(None), Fingerprint::bytes());
        assert_ne!(Fingerprint::of::<u64>(None), Fingerprint::of::<i64>(None));
        assert_eq!(
            Fingerprint::of::<Tick>(None).to_string().split(' ').next(),
            Some("`Tick`")
        );
    }

    #[test]
    fn refuses_what_is_not_ours() {
        assert_eq!(decode(None), Err(BadStamp::Missing));
        assert_eq!(decode(Some(&[0; 12])), Err(BadStamp::Short(12)));
        assert_eq!(decode(Some(&[0; 40])), Err(BadStamp::Magic(0)));
        let mut a = Encoder::new(1, &Fingerprint::bytes()).encode(0).to_vec();
        a[4] = 2;
        assert_eq!(decode(Some(&a)), Err(BadStamp::Flags(2)));
    }

    #[test]
    fn streams_differ() {
        assert_ne!(new_stream(), new_stream());
    }
}
