//! What a channel carries, recorded in the ring header so that two processes that disagree
//! about it get an error instead of garbage.
//!
//! The ring stores two `u64` of fingerprint and a 120-byte text label for the channel layer.
//!
//! - A typed channel of a `#[derive(Message)]` type stores its size, alignment and the
//!   `STRUCTURAL` flag in the first word, the layout's fingerprint
//!   ([`Shape::fingerprint`], computed at compile time) in the second, and the type's name
//!   followed by its layout text in the label (`Tick{price:f64,qty:u32,venue:u32}`), from
//!   which an opener whose layout differs names the first field that differs
//!   ([`signature`](crate::signature)). The module path is in none of them, so two programs
//!   that declare the type alike agree.
//! - A typed channel of another [`Message`] (a `bytemuck::Pod` type) stores its size and
//!   alignment and a 64-bit FNV-1a hash of its name (`core::any::type_name`, or
//!   [`ChannelOptions::type_name`](crate::ChannelOptions::type_name)), and the name in the
//!   label (so an error can name both types).
//! - A byte channel stores a fixed marker; one for serialized messages (feature `serde`) the
//!   `SERIALIZED` flag and a hash of the serialized type's name.
//!
//! A name set with `ChannelOptions::type_name` is part of a structural fingerprint too (the
//! `NAMED` flag says so), so setting one keeps its meaning for every type.

use std::fmt;

use crate::shape::{Message, Shape};
use crate::signature;

/// Set in the first fingerprint word of a typed channel.
const TYPED: u64 = 1 << 63;
/// Typed: the second word is a structural fingerprint. Untyped: serialized messages.
const STRUCTURAL: u64 = 1 << 62;
const SERIALIZED: u64 = 1 << 62;
/// Typed and structural: a name set with `ChannelOptions::type_name` is hashed in too.
const NAMED: u64 = 1 << 61;
const SIZE_MASK: u64 = (1 << 40) - 1;
const ALIGN_SHIFT: u32 = 40;
const ALIGN_MASK: u64 = (1 << 21) - 1;
/// The name hashed for byte channels.
const BYTES_NAME: &str = "ringway::bytes";
/// How much of the label a structural type's name may take, leaving the rest to the layout.
const LABEL_NAME_MAX: usize = 40;

/// What a channel's messages are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageType {
    /// The type's name: for a `#[derive(Message)]` type its name without module path, for
    /// another type `core::any::type_name`, unless set with
    /// [`ChannelOptions::type_name`](crate::ChannelOptions::type_name); for byte channels,
    /// `"bytes"`. As read from another process's header, it is cut to fit the 120-byte label.
    pub name: String,
    /// `size_of` the type; `None` for byte channels.
    pub size: Option<u64>,
    /// `align_of` the type; `None` for byte channels.
    pub align: Option<u64>,
    pub(crate) fingerprint: [u64; 2],
    /// What the header's label holds: the name, followed by the layout text for a structural
    /// type. Ours is whole; one read from a header may be cut.
    label: String,
}

/// How a [`MessageType`] identifies the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A typed channel, by the type's name.
    Named,
    /// A typed channel, by the layout (`#[derive(Message)]`).
    Structural,
    /// Bytes.
    Bytes,
    /// Bytes holding serialized values of one type (feature `serde`).
    Serialized,
    /// Something this version does not know.
    Unknown,
}

impl MessageType {
    /// The description of a typed channel of `T`: by its layout if it derives `Message`, by
    /// its name otherwise. `name` is `ChannelOptions::type_name`.
    pub(crate) fn of<T: Message>(name: Option<&str>) -> MessageType {
        match T::LAYOUT {
            None => MessageType::typed::<T>(name),
            Some(shape) => MessageType::structural::<T>(
                shape,
                const { structural_fingerprint(T::LAYOUT) },
                name,
            ),
        }
    }

    /// The description of a typed channel of `T` identified by its name.
    pub(crate) fn typed<T>(name: Option<&str>) -> MessageType {
        let name = name.map_or_else(|| core::any::type_name::<T>().to_owned(), str::to_owned);
        let size = core::mem::size_of::<T>() as u64;
        let align = core::mem::align_of::<T>() as u64;
        MessageType {
            fingerprint: [size_align(TYPED, size, align), fnv1a(&name)],
            size: Some(size),
            align: Some(align),
            label: name.clone(),
            name,
        }
    }

    /// The description of a typed channel of `T`, described by `shape` whose fingerprint is
    /// `fingerprint`; `name`, if set, is hashed in too.
    fn structural<T>(shape: &Shape, fingerprint: u64, name: Option<&str>) -> MessageType {
        let size = core::mem::size_of::<T>() as u64;
        let align = core::mem::align_of::<T>() as u64;
        let mut word = size_align(TYPED | STRUCTURAL, size, align);
        let mut hash = fingerprint;
        if let Some(name) = name {
            word |= NAMED;
            hash = fnv1a_from(hash, name);
        }
        let display = match (name, shape) {
            (Some(name), _) => name,
            (None, Shape::Struct { name, .. }) => name,
            (None, _) => core::any::type_name::<T>(),
        };
        let mut label = label_name(display);
        shape.write_text(&mut label);
        MessageType {
            name: display.to_owned(),
            size: Some(size),
            align: Some(align),
            fingerprint: [word, hash],
            label,
        }
    }

    /// The description of a byte channel.
    pub(crate) fn bytes() -> MessageType {
        MessageType {
            name: "bytes".to_owned(),
            size: None,
            align: None,
            fingerprint: [0, fnv1a(BYTES_NAME)],
            label: "bytes".to_owned(),
        }
    }

    /// The description of a byte channel of values of the type named `name`, serialized.
    pub(crate) fn serialized(name: &str) -> MessageType {
        MessageType {
            name: name.to_owned(),
            size: None,
            align: None,
            fingerprint: [SERIALIZED, fnv1a(name)],
            label: name.to_owned(),
        }
    }

    /// The description of a byte channel with these options: serialized values if they name
    /// a type ([`ChannelOptions::serialized`](crate::ChannelOptions)), bytes otherwise.
    pub(crate) fn for_bytes(opts: &crate::ChannelOptions) -> MessageType {
        match opts.serialized {
            Some(full) => MessageType::serialized(
                &opts.type_name.clone().unwrap_or_else(|| strip_paths(full)),
            ),
            None => MessageType::bytes(),
        }
    }

    /// Decodes what another process recorded.
    pub(crate) fn recorded(fingerprint: [u64; 2], label: &str) -> MessageType {
        let typed = fingerprint[0] & TYPED != 0;
        let name = if typed && fingerprint[0] & STRUCTURAL != 0 {
            signature::split_label(label).0
        } else if typed {
            label
        } else {
            // A byte channel's label ends with its largest message.
            label
                .rsplit_once(crate::capacity::MAX_SUFFIX)
                .map_or(label, |(name, _)| name)
        };
        MessageType {
            name: name.to_owned(),
            size: typed.then_some(fingerprint[0] & SIZE_MASK),
            align: typed.then_some((fingerprint[0] >> ALIGN_SHIFT) & ALIGN_MASK),
            fingerprint,
            label: label.to_owned(),
        }
    }

    /// The label stored in the header.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// Whether two descriptions are of the same messages.
    pub(crate) fn matches(&self, other: &MessageType) -> bool {
        self.fingerprint == other.fingerprint
    }

    fn kind(&self) -> Kind {
        let [word, hash] = self.fingerprint;
        if word & TYPED != 0 {
            if word & STRUCTURAL != 0 {
                Kind::Structural
            } else {
                Kind::Named
            }
        } else if word == 0 && hash == fnv1a(BYTES_NAME) {
            Kind::Bytes
        } else if word == SERIALIZED {
            Kind::Serialized
        } else {
            Kind::Unknown
        }
    }

    /// Why `self` (this endpoint's) does not match `theirs` (the channel's), and what to do:
    /// the tail of [`Error::TypeMismatch`](crate::Error::TypeMismatch)'s message.
    pub(crate) fn mismatch(&self, theirs: &MessageType) -> String {
        match (self.kind(), theirs.kind()) {
            (Kind::Structural, Kind::Structural) => {
                let what = self.structural_difference(theirs);
                format!(
                    "{what}; both programs must declare the message type alike (field names, \
                     types and order, #[repr] and #[ringway(version)])"
                )
            }
            (Kind::Structural, Kind::Named) => "this endpoint's type derives \
                 ringway_channel::Message and is checked by its layout, the channel's is a \
                 bytemuck::Pod type checked by its name: derive Message on the type in both \
                 programs"
                .to_owned(),
            (Kind::Named, Kind::Structural) => "the channel's type derives \
                 ringway_channel::Message and is checked by its layout, this endpoint's is a \
                 bytemuck::Pod type checked by its name: derive Message on the type in both \
                 programs"
                .to_owned(),
            (Kind::Named, Kind::Named) => "both processes must use the same message type, or \
                 set the same ChannelOptions::type_name on both sides (a type without \
                 #[derive(Message)] is identified by its name, module path included, so \
                 only the same program agrees with itself); a type declared separately in \
                 each program can #[derive(ringway_channel::Message)] instead, which compares \
                 layouts, not names"
                .to_owned(),
            (Kind::Serialized, Kind::Serialized) => "both processes must serialize the same \
                 type (ChannelOptions::serialized::<V>() with the same type name on both \
                 sides, or the same ChannelOptions::type_name)"
                .to_owned(),
            (Kind::Serialized, Kind::Bytes) | (Kind::Bytes, Kind::Serialized) => "both \
                 processes must open it with ChannelOptions::serialized::<V>() to send and \
                 receive serialized values, or neither for raw bytes"
                .to_owned(),
            _ => "both processes must use the same kind of channel (typed, bytes or \
                  serialized) and the same message type"
                .to_owned(),
        }
    }

    /// Says how two structural descriptions differ, naming the first field that differs
    /// when the recorded layout text shows it.
    fn structural_difference(&self, theirs: &MessageType) -> String {
        let ours_text = signature::split_label(&self.label).1.unwrap_or("{}");
        let found = signature::split_label(&theirs.label)
            .1
            .and_then(|theirs_text| signature::first_difference(ours_text, theirs_text));
        if let Some(found) = found {
            return found;
        }
        let [ours_word, ours_hash] = self.fingerprint;
        let [theirs_word, theirs_hash] = theirs.fingerprint;
        if self.align != theirs.align {
            return format!(
                "the fields agree, but the alignment is {} here and {} in the channel's type \
                 (#[repr(packed)] or #[repr(align)] differs)",
                self.align.unwrap_or(0),
                theirs.align.unwrap_or(0)
            );
        }
        if self.size != theirs.size {
            return format!(
                "the fields agree, but the size is {} bytes here and {} in the channel's type",
                self.size.unwrap_or(0),
                theirs.size.unwrap_or(0)
            );
        }
        if (ours_word ^ theirs_word) & NAMED != 0
            || (ours_word & NAMED != 0 && ours_hash != theirs_hash)
        {
            return format!(
                "the layouts agree, but the names set with ChannelOptions::type_name differ \
                 ({} here, {} in the channel)",
                self.named_for_message(),
                theirs.named_for_message()
            );
        }
        "the fingerprints differ, but the layout the channel's header records does not show \
         where (it may be cut, or the other program was built with another ringway version)"
            .to_owned()
    }

    fn named_for_message(&self) -> String {
        if self.fingerprint[0] & NAMED != 0 {
            format!("`{}`", self.name)
        } else {
            "none".to_owned()
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind(), self.size, self.align) {
            (Kind::Named | Kind::Structural, Some(size), Some(align)) => {
                write!(f, "`{}` ({size} bytes, align {align})", self.name)
            }
            (Kind::Bytes, ..) => f.write_str("byte messages"),
            (Kind::Serialized, ..) => write!(f, "serialized `{}` values", self.name),
            _ => write!(
                f,
                "unknown messages {:?} (fingerprint {:x?})",
                self.name, self.fingerprint
            ),
        }
    }
}

/// The first fingerprint word: `flags`, the alignment and the size.
fn size_align(flags: u64, size: u64, align: u64) -> u64 {
    flags | ((align & ALIGN_MASK) << ALIGN_SHIFT) | (size & SIZE_MASK)
}

/// The structural fingerprint of a `Message`'s shape (0 for none), for a `const` block.
const fn structural_fingerprint(shape: Option<&Shape>) -> u64 {
    match shape {
        Some(shape) => shape.fingerprint(),
        None => 0,
    }
}

/// The name at the start of a structural label: cut to leave room for the layout, with no
/// `{` (which starts the layout).
fn label_name(name: &str) -> String {
    let mut out = String::with_capacity(LABEL_NAME_MAX);
    for c in name.chars() {
        if out.len() + c.len_utf8() > LABEL_NAME_MAX {
            break;
        }
        out.push(if c == '{' { '(' } else { c });
    }
    out
}

/// A type name without module paths, in every position: `alloc::vec::Vec<app::Order>` is
/// `Vec<Order>`. Serialized types are identified this way, as serde names them, so that
/// separately built programs agree.
pub(crate) fn strip_paths(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut word = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            word.clear();
            continue;
        }
        out.push_str(&word);
        word.clear();
        out.push(c);
    }
    out.push_str(&word);
    out
}

/// 64-bit FNV-1a: stable across builds and platforms, unlike `std`'s hasher.
fn fnv1a(text: &str) -> u64 {
    fnv1a_from(0xcbf2_9ce4_8422_2325, text)
}

/// FNV-1a continued from `hash`.
fn fnv1a_from(mut hash: u64, text: &str) -> u64 {
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

    // The same struct declared in two modules, as two programs would; and variants of it.
    mod a {
        #[derive(crate::Message)]
        #[ringway(crate = "crate")]
        #[repr(C)]
        pub(super) struct Tick {
            price: f64,
            qty: u32,
            venue: u32,
        }
    }
    mod b {
        #[derive(crate::Message)]
        #[ringway(crate = "crate")]
        #[repr(C)]
        pub(super) struct Tick {
            price: f64,
            qty: u32,
            venue: u32,
        }

        /// `qty` changed from `u32` to `i32`: the same size.
        #[derive(crate::Message)]
        #[ringway(crate = "crate")]
        #[repr(C)]
        pub(super) struct SignedQty {
            price: f64,
            qty: i32,
            venue: u32,
        }

        #[derive(crate::Message)]
        #[ringway(crate = "crate")]
        #[repr(C, packed)]
        pub(super) struct Packed {
            price: f64,
            qty: u32,
            venue: u32,
        }

        #[derive(crate::Message)]
        #[ringway(crate = "crate", version = 1)]
        #[repr(C)]
        pub(super) struct Versioned {
            price: f64,
            qty: u32,
            venue: u32,
        }
    }

    /// What an opener sees: `ours` against `theirs` as read back from a header, whose label
    /// the ring cuts to 120 bytes.
    fn opened(ours: &MessageType, theirs: &MessageType) -> Option<String> {
        let label: String = theirs.label().chars().take(120).collect();
        let theirs = MessageType::recorded(theirs.fingerprint, &label);
        (!ours.matches(&theirs)).then(|| ours.mismatch(&theirs))
    }

    #[test]
    fn structural_types_match_across_module_paths() {
        let a = MessageType::of::<a::Tick>(None);
        let b = MessageType::of::<b::Tick>(None);
        assert_ne!(
            core::any::type_name::<a::Tick>(),
            core::any::type_name::<b::Tick>()
        );
        assert!(a.matches(&b));
        assert_eq!(a.label(), "Tick{price:f64,qty:u32,venue:u32}");
        assert_eq!(a.to_string(), "`Tick` (16 bytes, align 8)");
        let back = MessageType::recorded(a.fingerprint, a.label());
        assert_eq!(back, a);
        assert_eq!(opened(&a, &b), None);
        // The same struct without the derive is identified by its path.
        assert!(!MessageType::typed::<a::Tick>(None).matches(&MessageType::typed::<b::Tick>(None)));
    }

    #[test]
    fn structural_mismatches_name_what_differs() {
        let ours = MessageType::of::<a::Tick>(None);
        assert_eq!(
            opened(&ours, &MessageType::of::<b::SignedQty>(None)).unwrap(),
            "the first field that differs is `qty`: `u32` here, `i32` in the channel's type; \
             both programs must declare the message type alike (field names, types and order, \
             #[repr] and #[ringway(version)])"
        );
        assert!(
            opened(&ours, &MessageType::of::<b::Packed>(None))
                .unwrap()
                .starts_with(
                    "the fields agree, but the alignment is 8 here and 1 in the channel's type"
                )
        );
        assert!(
            opened(&ours, &MessageType::of::<b::Versioned>(None))
                .unwrap()
                .starts_with("the versions differ: #[ringway(version = 0)] here, 1")
        );
        // A name set with `type_name` is compared too.
        let named = MessageType::of::<a::Tick>(Some("Quote"));
        assert_eq!(named.name, "Quote");
        assert!(
            opened(&named, &MessageType::of::<b::Tick>(Some("Trade")))
                .unwrap()
                .starts_with("the layouts agree, but the names set with ChannelOptions::type_name differ (`Quote` here, `Trade` in the channel)")
        );
        assert!(
            opened(&named, &ours)
                .unwrap()
                .contains("(`Quote` here, none in the channel)")
        );
        assert_eq!(
            opened(&named, &MessageType::of::<b::Tick>(Some("Quote"))),
            None
        );
        // One side derived, the other not.
        assert!(
            opened(&ours, &MessageType::typed::<b::Tick>(None))
                .unwrap()
                .starts_with("this endpoint's type derives ringway_channel::Message")
        );
    }

    mod wide {
        /// A layout whose text does not fit in the label.
        #[derive(crate::Message)]
        #[ringway(crate = "crate")]
        #[repr(C)]
        pub(super) struct Wide {
            pub(super) first_field_with_a_long_name: u64,
            pub(super) second_field_with_a_long_name: u64,
            pub(super) third_field_with_a_long_name: u64,
            pub(super) fourth_field_with_a_long_name: u64,
            pub(super) fifth: u64,
        }
        #[derive(crate::Message)]
        #[ringway(crate = "crate")]
        #[repr(C)]
        pub(super) struct WideLate {
            pub(super) first_field_with_a_long_name: u64,
            pub(super) second_field_with_a_long_name: u64,
            pub(super) third_field_with_a_long_name: u64,
            pub(super) fourth_field_with_a_long_name: u64,
            pub(super) fifth: i64,
        }
        #[derive(crate::Message)]
        #[ringway(crate = "crate")]
        #[repr(C)]
        pub(super) struct WideEarly {
            pub(super) first_field_with_a_long_name: i64,
            pub(super) second_field_with_a_long_name: u64,
            pub(super) third_field_with_a_long_name: u64,
            pub(super) fourth_field_with_a_long_name: u64,
            pub(super) fifth: u64,
        }
    }

    #[test]
    fn a_cut_label_names_what_it_can() {
        let ours = MessageType::of::<wide::Wide>(None);
        assert!(ours.label().len() > 120);
        assert!(
            opened(&ours, &MessageType::of::<wide::WideEarly>(None))
                .unwrap()
                .starts_with("the first field that differs is `first_field_with_a_long_name`: `u64` here, `i64`")
        );
        assert!(
            opened(&ours, &MessageType::of::<wide::WideLate>(None))
                .unwrap()
                .starts_with("the fields the channel's header records agree with this type (through `third_field_with_a_long_name`)")
        );
    }

    #[test]
    fn serialized_types_are_named_without_paths() {
        assert_eq!(strip_paths("app::wire::Order"), "Order");
        assert_eq!(strip_paths("alloc::vec::Vec<app::Order>"), "Vec<Order>");
        assert_eq!(
            strip_paths("(u32, alloc::string::String, [app::X; 4], &str)"),
            "(u32, String, [X; 4], &str)"
        );
        let a = MessageType::serialized("Order");
        assert!(a.matches(&MessageType::recorded(a.fingerprint, a.label())));
        assert!(!a.matches(&MessageType::serialized("Quote")));
        assert!(!a.matches(&MessageType::bytes()));
        assert_eq!(a.to_string(), "serialized `Order` values");
    }
}
