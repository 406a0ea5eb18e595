//! `#[derive(Message)]` for `ringway-channel`. Use it through `ringway_channel::Message`, where
//! it is documented: this crate only generates code that names `ringway_channel`.
//!
//! For a struct
//!
//! ```text
//! #[derive(Message)]
//! #[repr(C)]
//! struct Tick { price: f64, qty: u32, venue: u32 }
//! ```
//!
//! it emits, inside an anonymous `const _: () = { .. };`:
//!
//! - a compile-time assertion that the fields' sizes add up to the struct's (no padding),
//!   and one that the type has no drop glue (no `Drop` implementation);
//! - `unsafe impl MessageField for Tick`, whose `SHAPE` lists each field's name,
//!   `offset_of!`, and its type's `MessageField::SHAPE`, spanned at the field's type so that
//!   a field that is not plain data is reported there;
//! - `unsafe impl Message for Tick`, whose `LAYOUT` points at that shape.
//!
//! What it cannot check with the type system it refuses with `compile_error!`: an enum or a
//! union, generic parameters, a `#[repr]` other than `C` (with `packed` or `align`) or
//! `transparent`, and unknown `#[ringway(..)]` options.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitInt, LitStr, Path, parse_macro_input};

/// Derives `ringway_channel::Message` (see its documentation there).
#[proc_macro_derive(Message, attributes(ringway))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// The `#[ringway(..)]` options.
struct Options {
    version: u32,
    krate: Path,
}

fn options(input: &DeriveInput) -> syn::Result<Options> {
    let mut options = Options {
        version: 0,
        krate: syn::parse_quote!(::ringway_channel),
    };
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("ringway")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("version") {
                let lit: LitInt = meta.value()?.parse()?;
                options.version = lit.base10_parse::<u32>()?;
                Ok(())
            } else if meta.path.is_ident("crate") {
                let lit: LitStr = meta.value()?.parse()?;
                options.krate = lit.parse()?;
                Ok(())
            } else {
                Err(meta
                    .error("unknown ringway option: expected `version = N` or `crate = \"path\"`"))
            }
        })?;
    }
    Ok(options)
}

/// Checks `#[repr]`: `C` (alone, or with `packed`, `packed(N)`, `align(N)`) or `transparent`.
fn check_repr(input: &DeriveInput) -> syn::Result<()> {
    let mut defined = false;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("repr")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("C") || meta.path.is_ident("transparent") {
                defined = true;
            } else if meta.path.is_ident("packed") || meta.path.is_ident("align") {
                // `packed(N)` / `align(N)`: padding they add is caught by the size check.
                if meta.input.peek(syn::token::Paren) {
                    let content;
                    syn::parenthesized!(content in meta.input);
                    content.parse::<LitInt>()?;
                }
            } else {
                return Err(meta.error(
                    "#[derive(Message)] supports #[repr(C)] (optionally with packed or \
                     align(N)) and #[repr(transparent)]",
                ));
            }
            Ok(())
        })?;
    }
    if defined {
        Ok(())
    } else {
        Err(syn::Error::new(
            input.ident.span(),
            format!(
                "#[derive(Message)] needs #[repr(C)] (or #[repr(transparent)]) on `{}`: Rust's \
                 default layout may order fields differently in two builds, so another program \
                 would read other fields",
                input.ident
            ),
        ))
    }
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let ident = &input.ident;
    let fields = match &input.data {
        Data::Struct(data) => &data.fields,
        Data::Enum(data) => {
            return Err(syn::Error::new(
                data.enum_token.span(),
                format!(
                    "#[derive(Message)] works on structs only: an enum such as `{ident}` has bit \
                     patterns that are not values, which another process could send; use an \
                     integer field and convert it"
                ),
            ));
        }
        Data::Union(data) => {
            return Err(syn::Error::new(
                data.union_token.span(),
                "#[derive(Message)] works on structs only, not unions",
            ));
        }
    };
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            input.generics.span(),
            format!(
                "#[derive(Message)] does not support generic parameters: derive it on a \
                 concrete struct (`{ident}` without parameters)"
            ),
        ));
    }
    check_repr(input)?;
    let Options { version, krate } = options(input)?;

    let members: Vec<(String, TokenStream2, &syn::Type)> = match fields {
        Fields::Named(named) => named
            .named
            .iter()
            .map(|f| {
                let name = f.ident.as_ref().expect("a named field has a name");
                // `r#type` is the field `type`.
                let text = name.to_string().trim_start_matches("r#").to_owned();
                (text, name.to_token_stream(), &f.ty)
            })
            .collect(),
        Fields::Unnamed(unnamed) => unnamed
            .unnamed
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let index = syn::Index::from(i);
                (i.to_string(), index.to_token_stream(), &f.ty)
            })
            .collect(),
        Fields::Unit => Vec::new(),
    };

    let name = ident.to_string();
    let sizes = members
        .iter()
        .map(|(_, _, ty)| quote_spanned!(ty.span()=> + ::core::mem::size_of::<#ty>()));
    let padding_message = format!(
        "#[derive(Message)]: `{name}` has padding bytes (its size is more than the sum of its \
         fields' sizes), which would cross to the other process uninitialised: add explicit \
         fields for them (e.g. `_pad: [u8; 3]`), or order the fields from largest to smallest \
         alignment"
    );
    let drop_message = format!(
        "#[derive(Message)]: `{name}` implements Drop (or contains a type that does); a message \
         is plain data, copied as bytes"
    );
    let field_shapes = members.iter().map(|(text, member, ty)| {
        // The trait bound is checked here, at the field's type, so an error points at it.
        let shape = quote_spanned!(ty.span()=> &<#ty as #krate::MessageField>::SHAPE);
        quote! {
            #krate::__private::Field {
                name: #text,
                offset: ::core::mem::offset_of!(#ident, #member),
                shape: #shape,
            }
        }
    });

    Ok(quote! {
        const _: () = {
            const _: () = ::core::assert!(
                ::core::mem::size_of::<#ident>() == 0 #(#sizes)*,
                #padding_message
            );
            const _: () = ::core::assert!(!::core::mem::needs_drop::<#ident>(), #drop_message);

            // SAFETY: checked above and by the compiler: `repr(C)` or `repr(transparent)` (so
            // the layout is fixed), no padding (the fields fill the size), every field a
            // `MessageField` (every bit pattern valid, no drop glue), no drop glue of its own;
            // the shape is built from `offset_of!` and the fields' own shapes.
            #[automatically_derived]
            unsafe impl #krate::MessageField for #ident {
                const SHAPE: #krate::__private::Shape = #krate::__private::Shape::Struct {
                    name: #name,
                    version: #version,
                    size: ::core::mem::size_of::<#ident>(),
                    align: ::core::mem::align_of::<#ident>(),
                    fields: &[#(#field_shapes),*],
                };
            }

            // SAFETY: as for `MessageField` above; `LAYOUT` is that description.
            #[automatically_derived]
            unsafe impl #krate::Message for #ident {
                const LAYOUT: ::core::option::Option<&'static #krate::__private::Shape> =
                    ::core::option::Option::Some(&<#ident as #krate::MessageField>::SHAPE);
            }
        };
    })
}
