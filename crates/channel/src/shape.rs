//! [`Message`], what a typed channel carries, and [`MessageField`], what a
//! `#[derive(Message)]` struct is made of; the structural description the derive builds.
//!
//! Two programs that each declare
//!
//! ```
//! #[derive(ringway_channel::Message)]
//! #[repr(C)]
//! struct Tick { price: f64, qty: u32, venue: u32 }
//! ```
//!
//! in their own crate and module must be able to share a channel of `Tick`, and two programs
//! whose `Tick`s differ must not. The derive describes the type by its layout, never by its
//! path: for each field its name, offset, size and kind (a primitive, an array of a kind, or
//! a nested struct, recursively), plus the struct's size, alignment and
//! `#[ringway(version = N)]`. That description is a [`Shape`] tree of `'static` data built
//! at compile time, and its 64-bit fingerprint ([`Shape::fingerprint`]) is a `const fn` of
//! the tree, so both programs compute the same number without exchanging anything.
//!
//! A [`bytemuck::Pod`] type without the derive is still a [`Message`] (a blanket impl), but
//! one identified by its name (`core::any::type_name`, which includes the module path): the
//! same program on both sides, or the same
//! [`ChannelOptions::type_name`](crate::ChannelOptions::type_name) on both.

use core::fmt;

/// A type whose values a typed channel ([`Sender`](crate::Sender),
/// [`Receiver`](crate::Receiver), [`Channel`](crate::Channel)) carries between processes:
/// plain data that crosses as its bytes.
///
/// Implemented by `#[derive(Message)]` (which checks the safety requirements at compile
/// time and identifies the type by its layout, so separately built programs interoperate),
/// and for every [`bytemuck::Pod`] type (identified by its name: the same program, or the
/// same [`ChannelOptions::type_name`](crate::ChannelOptions::type_name), on both sides).
/// Integers, floats and arrays of them are `Pod`, so `Sender<u64>` or `Sender<[u8; 4096]>`
/// need nothing.
///
/// A derived type is not also `bytemuck::Pod` (it is already a `Message`; deriving both is a
/// "conflicting implementations" error), and an array of a derived type is not a `Message`:
/// put it in a derived struct (`struct Batch { ticks: [Tick; 8] }`).
///
/// # The derive
///
/// `#[derive(Message)]` alone is enough: it needs no `bytemuck` dependency and no other
/// derive. It requires, and reports at compile time when missing:
///
/// - a struct (an enum has bit patterns that are not values), without generic parameters;
/// - `#[repr(C)]` (optionally with `packed` or `align(N)`) or `#[repr(transparent)]`: Rust's
///   own layout may differ between two builds;
/// - fields that are [`MessageField`]s: integers, floats, arrays of them, or structs that
///   themselves derive `Message` (no `bool`, `char`, enum, pointer or reference);
/// - no padding: the fields' sizes add up to the struct's size (padding bytes are
///   uninitialised, and the other process would see whatever was there);
/// - no `Drop` implementation (a value is a copy of bytes, and may be copied any number of
///   times).
///
/// Options: `#[ringway(version = N)]` (a `u32`, default 0) is part of the fingerprint, for a
/// change of meaning that keeps the layout; `#[ringway(crate = "path")]` names this crate when
/// it is re-exported under another path.
///
/// ```
/// use ringway_channel::{ChannelOptions, Message, Receiver, Sender};
///
/// #[derive(Message, Clone, Copy)]
/// #[repr(C)]
/// struct Point { x: f64, y: f64 }
///
/// #[derive(Message)]
/// #[repr(C)]
/// #[ringway(version = 2)]
/// struct Route { id: u64, stops: [Point; 4], len: u32, _pad: u32 }
///
/// # let name = format!("/ringway-doc-derive-{}", std::process::id());
/// let mut tx = Sender::<Route>::create(&name, &ChannelOptions::new())?;
/// let mut rx = Receiver::<Route>::open(&name, &ChannelOptions::new())?;
/// tx.send(Route { id: 7, stops: [Point { x: 0.0, y: 1.0 }; 4], len: 4, _pad: 0 })?;
/// assert_eq!(rx.recv()?.stops[3].y, 1.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Refused at compile time: without `#[repr(C)]`,
///
/// ```compile_fail
/// #[derive(ringway_channel::Message)]
/// struct Tick { price: f64, qty: u32, venue: u32 }
/// ```
///
/// with a padding byte (a `u8` before a `u32`: 3 bytes of padding, error E0080, a failed
/// compile-time assertion naming the type),
///
/// ```compile_fail,E0080
/// #[derive(ringway_channel::Message)]
/// #[repr(C)]
/// struct Tick { side: u8, qty: u32 }
/// ```
///
/// with a field that is not plain data (a `bool` has 254 invalid bit patterns; error E0277,
/// "`bool` cannot be a field of a `#[derive(Message)]` struct"),
///
/// ```compile_fail,E0277
/// #[derive(ringway_channel::Message)]
/// #[repr(C)]
/// struct Order { qty: u32, buy: bool, _pad: [u8; 3] }
/// ```
///
/// and as an enum:
///
/// ```compile_fail
/// #[derive(ringway_channel::Message)]
/// #[repr(u32)]
/// enum Side { Buy, Sell }
/// ```
///
/// The same types made plain are accepted:
///
/// ```
/// #[derive(ringway_channel::Message)]
/// #[repr(C)]
/// struct Tick { side: u8, _pad: [u8; 3], qty: u32 }
///
/// #[derive(ringway_channel::Message)]
/// #[repr(C)]
/// struct Order { qty: u32, buy: u32 }
/// ```
///
/// # Safety
///
/// Implement it only through the derive or for `bytemuck::Pod` types (the blanket impl).
/// An implementation promises that every pattern of `size_of::<Self>()` bytes is a valid
/// `Self`, that `Self` has no drop glue, and that `LAYOUT`, when it is `Some`, describes
/// `Self` exactly (field offsets, sizes and kinds).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be carried by a typed ringway channel",
    label = "not a `ringway_channel::Message`",
    note = "add `#[derive(ringway_channel::Message)]` and `#[repr(C)]` to its definition: \
            plain data (integers, floats, arrays of them, structs of those) can cross to \
            another process as its bytes",
    note = "for an array of a derived type, wrap the array in a derived struct"
)]
pub unsafe trait Message: Sized + 'static {
    /// The structural description, for a derived type; `None` for a type identified by its
    /// name.
    #[doc(hidden)]
    const LAYOUT: Option<&'static Shape>;
}

// SAFETY: `Pod` promises every bit pattern is a valid value, no padding, and `Copy` (so no
// drop glue); `LAYOUT` is `None`, which promises nothing.
unsafe impl<T: bytemuck::Pod> Message for T {
    const LAYOUT: Option<&'static Shape> = None;
}

/// A type that can be a field of a `#[derive(Message)]` struct, with its structural
/// description: the integers, the floats, arrays of any `MessageField`, and structs that
/// derive [`Message`].
///
/// # Safety
///
/// As [`Message`]: every bit pattern is a valid value, no drop glue, and `SHAPE` describes
/// the type exactly. Implement it only through the derive.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a field of a `#[derive(Message)]` struct",
    label = "not plain data with a known layout",
    note = "fields must be integers (u8 ..= u128, i8 ..= i128, usize, isize), f32, f64, \
            arrays of them, or structs that themselves `#[derive(ringway_channel::Message)]`; \
            `bool`, `char`, enums, pointers and references have bit patterns that are not \
            values"
)]
pub unsafe trait MessageField: Sized + 'static {
    /// The structural description.
    #[doc(hidden)]
    const SHAPE: Shape;
}

/// The primitive kinds a structural description distinguishes.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Prim {
    U8,
    U16,
    U32,
    U64,
    U128,
    Usize,
    I8,
    I16,
    I32,
    I64,
    I128,
    Isize,
    F32,
    F64,
}

impl Prim {
    /// The Rust name, as the layout text shows it.
    pub const fn name(self) -> &'static str {
        match self {
            Prim::U8 => "u8",
            Prim::U16 => "u16",
            Prim::U32 => "u32",
            Prim::U64 => "u64",
            Prim::U128 => "u128",
            Prim::Usize => "usize",
            Prim::I8 => "i8",
            Prim::I16 => "i16",
            Prim::I32 => "i32",
            Prim::I64 => "i64",
            Prim::I128 => "i128",
            Prim::Isize => "isize",
            Prim::F32 => "f32",
            Prim::F64 => "f64",
        }
    }

    /// A stable number for the fingerprint (never reuse one).
    const fn code(self) -> u64 {
        match self {
            Prim::U8 => 1,
            Prim::U16 => 2,
            Prim::U32 => 3,
            Prim::U64 => 4,
            Prim::U128 => 5,
            Prim::Usize => 6,
            Prim::I8 => 7,
            Prim::I16 => 8,
            Prim::I32 => 9,
            Prim::I64 => 10,
            Prim::I128 => 11,
            Prim::Isize => 12,
            Prim::F32 => 13,
            Prim::F64 => 14,
        }
    }
}

/// The structural description of a [`MessageField`] (built by the derive; not a stable API).
#[doc(hidden)]
#[derive(Debug)]
pub enum Shape {
    /// A primitive of `size` bytes.
    Prim {
        /// Which primitive.
        kind: Prim,
        /// `size_of` it (for `usize`, the target's).
        size: usize,
    },
    /// `[elem; len]`.
    Array {
        /// The element.
        elem: &'static Shape,
        /// The number of elements.
        len: usize,
    },
    /// A struct that derives [`Message`].
    Struct {
        /// Its name, without the module path (for messages; not part of the fingerprint).
        name: &'static str,
        /// `#[ringway(version = N)]`, 0 without.
        version: u32,
        /// `size_of` it.
        size: usize,
        /// `align_of` it.
        align: usize,
        /// Its fields, in declaration order.
        fields: &'static [Field],
    },
}

/// One field of a [`Shape::Struct`].
#[doc(hidden)]
#[derive(Debug)]
pub struct Field {
    /// The field's name (`0`, `1`, ... for a tuple struct).
    pub name: &'static str,
    /// `offset_of!` it.
    pub offset: usize,
    /// Its type's description.
    pub shape: &'static Shape,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;
/// Changes if the encoding below ever changes, so old and new never compare equal.
const ENCODING: &[u8] = b"ringway shape 1";

const fn mix_byte(hash: u64, byte: u8) -> u64 {
    (hash ^ byte as u64).wrapping_mul(FNV_PRIME)
}

const fn mix_bytes(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        hash = mix_byte(hash, bytes[i]);
        i += 1;
    }
    hash
}

const fn mix_u64(hash: u64, value: u64) -> u64 {
    mix_bytes(hash, &value.to_le_bytes())
}

impl Shape {
    /// The 64-bit fingerprint of this description: FNV-1a over a canonical encoding of every
    /// field's name, offset and kind, every size, alignment, array length and version, in
    /// order (struct names are not part of it). The same in every program and on every
    /// build, and computed at compile time.
    pub const fn fingerprint(&self) -> u64 {
        self.hash(mix_bytes(FNV_OFFSET, ENCODING))
    }

    const fn hash(&self, mut h: u64) -> u64 {
        match *self {
            Shape::Prim { kind, size } => {
                h = mix_byte(h, b'P');
                h = mix_u64(h, kind.code());
                mix_u64(h, size as u64)
            }
            Shape::Array { elem, len } => {
                h = mix_byte(h, b'A');
                h = mix_u64(h, len as u64);
                elem.hash(h)
            }
            Shape::Struct {
                version,
                size,
                align,
                fields,
                ..
            } => {
                h = mix_byte(h, b'S');
                h = mix_u64(h, version as u64);
                h = mix_u64(h, size as u64);
                h = mix_u64(h, align as u64);
                h = mix_u64(h, fields.len() as u64);
                let mut i = 0;
                while i < fields.len() {
                    let field = &fields[i];
                    h = mix_u64(h, field.name.len() as u64);
                    h = mix_bytes(h, field.name.as_bytes());
                    h = mix_u64(h, field.offset as u64);
                    h = field.shape.hash(h);
                    i += 1;
                }
                h
            }
        }
    }

    /// The compact layout text of this description, as the channel header records it:
    /// `{price:f64,qty:u32,venue:u32}`, `[u8;16]`, `{v2;x:f64}`. Offsets are implied: the
    /// derive allows no padding, so each field starts where the previous one ends.
    pub(crate) fn write_text(&self, out: &mut String) {
        use fmt::Write as _;
        match *self {
            Shape::Prim { kind, .. } => out.push_str(kind.name()),
            Shape::Array { elem, len } => {
                out.push('[');
                elem.write_text(out);
                let _ = write!(out, ";{len}]");
            }
            Shape::Struct {
                version, fields, ..
            } => {
                out.push('{');
                if version != 0 {
                    let _ = write!(out, "v{version};");
                }
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(field.name);
                    out.push(':');
                    field.shape.write_text(out);
                }
                out.push('}');
            }
        }
    }
}

macro_rules! primitive {
    ($($ty:ty => $kind:ident),* $(,)?) => {$(
        // SAFETY: every bit pattern of a primitive integer or float is a valid value, it has
        // no drop glue, and the shape names its kind and size.
        unsafe impl MessageField for $ty {
            const SHAPE: Shape = Shape::Prim { kind: Prim::$kind, size: core::mem::size_of::<$ty>() };
        }
    )*};
}

primitive! {
    u8 => U8, u16 => U16, u32 => U32, u64 => U64, u128 => U128, usize => Usize,
    i8 => I8, i16 => I16, i32 => I32, i64 => I64, i128 => I128, isize => Isize,
    f32 => F32, f64 => F64,
}

// SAFETY: an array is its elements back to back with no padding (its size is `N` times the
// element's, which is a multiple of the element's alignment), so every bit pattern is valid
// when every element's is; no drop glue when the element has none; the shape says so.
unsafe impl<T: MessageField, const N: usize> MessageField for [T; N] {
    const SHAPE: Shape = Shape::Array {
        elem: &T::SHAPE,
        len: N,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const POINT: Shape = Shape::Struct {
        name: "Point",
        version: 0,
        size: 16,
        align: 8,
        fields: &[
            Field {
                name: "x",
                offset: 0,
                shape: &f64::SHAPE,
            },
            Field {
                name: "y",
                offset: 8,
                shape: &f64::SHAPE,
            },
        ],
    };

    fn text(shape: &Shape) -> String {
        let mut out = String::new();
        shape.write_text(&mut out);
        out
    }

    #[test]
    fn text_of_nested_shapes() {
        assert_eq!(text(&<[[u8; 4]; 2]>::SHAPE), "[[u8;4];2]");
        assert_eq!(text(&POINT), "{x:f64,y:f64}");
        const ROUTE: Shape = Shape::Struct {
            name: "Route",
            version: 3,
            size: 40,
            align: 8,
            fields: &[
                Field {
                    name: "stops",
                    offset: 0,
                    shape: &Shape::Array {
                        elem: &POINT,
                        len: 2,
                    },
                },
                Field {
                    name: "id",
                    offset: 32,
                    shape: &u64::SHAPE,
                },
            ],
        };
        assert_eq!(text(&ROUTE), "{v3;stops:[{x:f64,y:f64};2],id:u64}");
    }

    #[test]
    fn fingerprint_is_const_and_sees_every_part() {
        const FP: u64 = POINT.fingerprint();
        assert_eq!(FP, POINT.fingerprint());
        let base = POINT.fingerprint();
        let renamed = Shape::Struct {
            name: "Other",
            version: 0,
            size: 16,
            align: 8,
            fields: &[
                Field {
                    name: "x",
                    offset: 0,
                    shape: &f64::SHAPE,
                },
                Field {
                    name: "y",
                    offset: 8,
                    shape: &f64::SHAPE,
                },
            ],
        };
        assert_eq!(
            renamed.fingerprint(),
            base,
            "the struct's name is not part of it"
        );
        let variants = [
            // A field renamed.
            Shape::Struct {
                name: "Point",
                version: 0,
                size: 16,
                align: 8,
                fields: &[
                    Field {
                        name: "x",
                        offset: 0,
                        shape: &f64::SHAPE,
                    },
                    Field {
                        name: "z",
                        offset: 8,
                        shape: &f64::SHAPE,
                    },
                ],
            },
            // A kind changed, same size.
            Shape::Struct {
                name: "Point",
                version: 0,
                size: 16,
                align: 8,
                fields: &[
                    Field {
                        name: "x",
                        offset: 0,
                        shape: &f64::SHAPE,
                    },
                    Field {
                        name: "y",
                        offset: 8,
                        shape: &u64::SHAPE,
                    },
                ],
            },
            // The version.
            Shape::Struct {
                name: "Point",
                version: 1,
                size: 16,
                align: 8,
                fields: &[
                    Field {
                        name: "x",
                        offset: 0,
                        shape: &f64::SHAPE,
                    },
                    Field {
                        name: "y",
                        offset: 8,
                        shape: &f64::SHAPE,
                    },
                ],
            },
            // The alignment (packed).
            Shape::Struct {
                name: "Point",
                version: 0,
                size: 16,
                align: 1,
                fields: &[
                    Field {
                        name: "x",
                        offset: 0,
                        shape: &f64::SHAPE,
                    },
                    Field {
                        name: "y",
                        offset: 8,
                        shape: &f64::SHAPE,
                    },
                ],
            },
        ];
        for v in &variants {
            assert_ne!(v.fingerprint(), base, "{v:?}");
        }
        assert_ne!(
            <[u32; 2]>::SHAPE.fingerprint(),
            <[u32; 3]>::SHAPE.fingerprint()
        );
        assert_ne!(
            <[f32; 2]>::SHAPE.fingerprint(),
            <[u32; 2]>::SHAPE.fingerprint()
        );
    }
}
