//! What a channel carries, recorded in the ring header so that two processes that disagree
//! about it get an error instead of garbage.
//!
//! The ring stores two `u64` of fingerprint and a text label for the channel layer. A typed
//! channel stores the size and alignment of `T` and a 64-bit FNV-1a hash of its name in the
//! fingerprint, and the name itself in the label (so an error can name both types); a byte
//! channel stores a fixed marker.

use std::fmt;

/// Set in the first fingerprint word of a typed channel.
const TYPED: u64 = 1 << 63;
const SIZE_MASK: u64 = (1 << 40) - 1;
const ALIGN_SHIFT: u32 = 40;
const ALIGN_MASK: u64 = 0x7F_FFFF;
/// The name hashed for byte channels.
const BYTES_NAME: &str = "ringway::bytes";

/// What a channel's messages are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageType {
    /// The type's name (`core::any::type_name`, or the one set with
    /// [`ChannelOptions::type_name`](crate::ChannelOptions::type_name)); for byte channels,
    /// `"bytes"`. As read from another process's header, it is cut to 120 bytes.
    pub name: String,
    /// `size_of` the type; `None` for byte channels.
    pub size: Option<u64>,
    /// `align_of` the type; `None` for byte channels.
    pub align: Option<u64>,
    pub(crate) fingerprint: [u64; 2],
}

impl MessageType {
    /// The description of a typed channel of `T`.
    pub(crate) fn typed<T>(name: Option<&str>) -> MessageType {
        let name = name.map_or_else(|| core::any::type_name::<T>().to_owned(), str::to_owned);
        let size = core::mem::size_of::<T>() as u64;
        let align = core::mem::align_of::<T>() as u64;
        MessageType {
            fingerprint: [
                TYPED | ((align & ALIGN_MASK) << ALIGN_SHIFT) | (size & SIZE_MASK),
                fnv1a(&name),
            ],
            size: Some(size),
            align: Some(align),
            name,
        }
    }

    /// The description of a byte channel.
    pub(crate) fn bytes() -> MessageType {
        MessageType {
            name: "bytes".to_owned(),
            size: None,
            align: None,
            fingerprint: [0, fnv1a(BYTES_NAME)],
        }
    }

    /// Decodes what another process recorded.
    pub(crate) fn recorded(fingerprint: [u64; 2], label: &str) -> MessageType {
        let typed = fingerprint[0] & TYPED != 0;
        MessageType {
            name: label.to_owned(),
            size: typed.then_some(fingerprint[0] & SIZE_MASK),
            align: typed.then_some((fingerprint[0] >> ALIGN_SHIFT) & ALIGN_MASK),
            fingerprint,
        }
    }

    /// The label stored in the header.
    pub(crate) fn label(&self) -> &str {
        &self.name
    }

    /// Whether two descriptions are of the same messages.
    pub(crate) fn matches(&self, other: &MessageType) -> bool {
        self.fingerprint == other.fingerprint
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.size, self.align) {
            (Some(size), Some(align)) => {
                write!(f, "`{}` ({size} bytes, align {align})", self.name)
            }
            _ if self.fingerprint == MessageType::bytes().fingerprint => {
                f.write_str("byte messages")
            }
            _ => write!(
                f,
                "unknown messages {:?} (fingerprint {:x?})",
                self.name, self.fingerprint
            ),
        }
    }
}

/// 64-bit FNV-1a: stable across builds and platforms, unlike `std`'s hasher.
fn fnv1a(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_reference_vectors() {
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn typed_fingerprints_round_trip_and_differ() {
        let a = MessageType::typed::<[u64; 3]>(None);
        let back = MessageType::recorded(a.fingerprint, a.label());
        assert_eq!(back, a);
        assert_eq!(back.to_string(), "`[u64; 3]` (24 bytes, align 8)");
        let renamed = MessageType::typed::<[u64; 3]>(Some("Quote"));
        assert!(!a.matches(&renamed), "same layout, different name");
        let other = MessageType::typed::<[u32; 6]>(Some("[u64; 3]"));
        assert!(
            !a.matches(&other),
            "same name and size, different alignment"
        );
        assert!(!a.matches(&MessageType::bytes()));
        assert_eq!(MessageType::bytes().to_string(), "byte messages");
    }
}
