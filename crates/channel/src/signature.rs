//! The layout text of a `#[derive(Message)]` type, as recorded in the channel header's label,
//! read back and compared, so that a mismatch names the first field that differs.
//!
//! The header has room for a 64-bit fingerprint of the layout, which decides whether two
//! types match, and 120 bytes of label, which holds the type's name and its layout text
//! (`Tick{price:f64,qty:u32,venue:u32}`, written by
//! [`Shape::write_text`](crate::shape::Shape)). The grammar:
//!
//! ```text
//! label  = name struct          (name: anything but '{')
//! struct = '{' [ 'v' digits ';' ] [ field { ',' field } ] '}'
//! field  = ident ':' type
//! type   = prim | '[' type ';' digits ']' | struct
//! ```
//!
//! Offsets are not written: the derive refuses padding, so each field starts where the one
//! before it ends, and a difference in an offset shows as a difference in an earlier field.
//! A long layout is cut at 120 bytes, so what the other side recorded may end anywhere; the
//! parser keeps what it read and marks the structs it did not see the end of, and the
//! comparison then says how far the two agree. The label is written by another process and
//! may be anything: the parser never panics and gives up on text that does not follow the
//! grammar (no diagnosis then, only the fingerprints).

use std::fmt::Write as _;

/// How deep structs and arrays may nest in a label before the parser gives up.
const MAX_DEPTH: usize = 32;

/// A field's type, as read from a layout text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ty {
    Prim(String),
    Array(Box<Ty>, u64),
    Struct(Struct),
}

/// A struct, as read from a layout text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Struct {
    version: u32,
    fields: Vec<(String, Ty)>,
    /// Whether its closing `}` was read: `false` if the text was cut inside it.
    complete: bool,
}

/// The text did not follow the grammar.
#[derive(Debug)]
struct Bad;

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

fn is_delimiter(c: char) -> bool {
    matches!(c, '{' | '}' | '[' | ']' | ':' | ';' | ',')
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
        }
    }

    /// A run of characters that are not delimiters; `None` if the text ends in it (so it
    /// may have been cut).
    fn word(&mut self) -> Option<&str> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if is_delimiter(c) {
                return Some(&self.text[start..self.pos]);
            }
            self.bump();
        }
        None
    }

    fn number(&mut self) -> Result<Option<u64>, Bad> {
        match self.word() {
            None => Ok(None),
            Some(w) => w.parse().map(Some).map_err(|_| Bad),
        }
    }

    /// After a `{`: a struct, complete or cut.
    fn parse_struct(&mut self) -> Result<Struct, Bad> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Bad);
        }
        let mut st = Struct {
            version: 0,
            fields: Vec::new(),
            complete: false,
        };
        // `v<digits>;` is a version, `v1:u8` a field named `v1`.
        let rest = &self.text[self.pos..];
        if let Some(digits) = rest.strip_prefix('v') {
            let end = digits
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(digits.len());
            match digits[end..].chars().next() {
                Some(';') if end > 0 => {
                    st.version = digits[..end].parse().map_err(|_| Bad)?;
                    self.pos += 1 + end + 1;
                }
                // Cut inside what may be a version: nothing usable.
                None => return Ok(st),
                _ => {}
            }
        }
        loop {
            match self.peek() {
                None => return Ok(st),
                Some('}') => {
                    self.bump();
                    st.complete = true;
                    self.depth -= 1;
                    return Ok(st);
                }
                Some(',') if !st.fields.is_empty() => self.bump(),
                Some(_) if st.fields.is_empty() => {}
                Some(_) => return Err(Bad),
            }
            let Some(name) = self.word() else {
                return Ok(st);
            };
            if name.is_empty() {
                return Err(Bad);
            }
            let name = name.to_owned();
            match self.peek() {
                None => return Ok(st),
                Some(':') => self.bump(),
                Some(_) => return Err(Bad),
            }
            match self.parse_type()? {
                None => return Ok(st),
                Some(ty) => {
                    let whole = ty_complete(&ty);
                    st.fields.push((name, ty));
                    if !whole {
                        return Ok(st);
                    }
                }
            }
        }
    }

    /// A type; `None` if the text ends before enough of it to compare.
    fn parse_type(&mut self) -> Result<Option<Ty>, Bad> {
        match self.peek() {
            None => Ok(None),
            Some('{') => {
                self.bump();
                self.parse_struct().map(|st| Some(Ty::Struct(st)))
            }
            Some('[') => {
                self.bump();
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(Bad);
                }
                let Some(elem) = self.parse_type()? else {
                    return Ok(None);
                };
                if !ty_complete(&elem) {
                    return Ok(None);
                }
                match self.peek() {
                    None => return Ok(None),
                    Some(';') => self.bump(),
                    Some(_) => return Err(Bad),
                }
                let Some(len) = self.number()? else {
                    return Ok(None);
                };
                match self.peek() {
                    None => Ok(None),
                    Some(']') => {
                        self.bump();
                        self.depth -= 1;
                        Ok(Some(Ty::Array(Box::new(elem), len)))
                    }
                    Some(_) => Err(Bad),
                }
            }
            Some(_) => match self.word() {
                None => Ok(None),
                Some("") => Err(Bad),
                Some(w) => Ok(Some(Ty::Prim(w.to_owned()))),
            },
        }
    }
}

fn ty_complete(ty: &Ty) -> bool {
    match ty {
        Ty::Prim(_) => true,
        Ty::Array(elem, _) => ty_complete(elem),
        Ty::Struct(st) => st.complete,
    }
}

/// Splits a label into the type's name and its layout text (from the first `{`).
pub(crate) fn split_label(label: &str) -> (&str, Option<&str>) {
    match label.find('{') {
        Some(i) => (&label[..i], Some(&label[i..])),
        None => (label, None),
    }
}

/// Reads a layout text (starting at `{`); `None` if it does not follow the grammar.
fn parse(text: &str) -> Option<Struct> {
    let rest = text.strip_prefix('{')?;
    let mut parser = Parser {
        text: rest,
        pos: 0,
        depth: 0,
    };
    parser.parse_struct().ok()
}

/// The first difference found between two layouts.
#[derive(Debug, PartialEq, Eq)]
enum Finding {
    /// The versions of the struct at `path` (empty: the message type itself) differ.
    Version {
        path: String,
        ours: u32,
        theirs: u32,
    },
    /// The field at `path` has the same name but another type.
    Type {
        path: String,
        ours: String,
        theirs: String,
    },
    /// The `index`th field of the struct at `path` has another name (renamed, moved, added
    /// or removed).
    Name {
        path: String,
        index: usize,
        ours: String,
        theirs: String,
    },
    /// Our field at `path` is past the end of theirs, which ends after `after`.
    Extra {
        path: String,
        ty: String,
        after: Option<String>,
    },
    /// Their field at `path` is past the end of ours.
    Missing {
        path: String,
        ty: String,
        after: Option<String>,
    },
    /// They agree as far as their text goes, which was cut; the last field compared is
    /// `agreed`.
    Cut { agreed: Option<String> },
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// A type for a message, in Rust's spelling; long struct types are abbreviated.
fn show(ty: &Ty) -> String {
    let mut out = String::new();
    show_into(ty, &mut out);
    if out.chars().count() > 60 {
        let cut: String = out.chars().take(56).collect();
        return format!("{cut} ..}}");
    }
    out
}

fn show_into(ty: &Ty, out: &mut String) {
    match ty {
        Ty::Prim(name) => out.push_str(name),
        Ty::Array(elem, len) => {
            out.push('[');
            show_into(elem, out);
            let _ = write!(out, "; {len}]");
        }
        Ty::Struct(st) => {
            out.push('{');
            if st.version != 0 {
                let _ = write!(out, " version {};", st.version);
            }
            for (i, (name, ty)) in st.fields.iter().enumerate() {
                out.push_str(if i == 0 { " " } else { ", " });
                out.push_str(name);
                out.push_str(": ");
                show_into(ty, out);
            }
            out.push_str(if st.complete { " }" } else { " .." });
        }
    }
}

fn compare_struct(
    path: &str,
    ours: &Struct,
    theirs: &Struct,
    last: &mut Option<String>,
) -> Option<Finding> {
    if ours.version != theirs.version {
        return Some(Finding::Version {
            path: path.to_owned(),
            ours: ours.version,
            theirs: theirs.version,
        });
    }
    for i in 0.. {
        match (ours.fields.get(i), theirs.fields.get(i)) {
            (Some((a, ta)), Some((b, tb))) => {
                let here = join(path, a);
                if a != b {
                    return Some(Finding::Name {
                        path: here,
                        index: i,
                        ours: format!("{a}: {}", show(ta)),
                        theirs: format!("{b}: {}", show(tb)),
                    });
                }
                if let Some(found) = compare_ty(&here, ta, tb, last) {
                    return Some(found);
                }
                *last = Some(here);
            }
            (Some((a, ta)), None) if theirs.complete => {
                return Some(Finding::Extra {
                    path: join(path, a),
                    ty: show(ta),
                    after: last.clone(),
                });
            }
            (None, Some((b, tb))) => {
                return Some(Finding::Missing {
                    path: join(path, b),
                    ty: show(tb),
                    after: last.clone(),
                });
            }
            (_, None) if !theirs.complete => {
                return Some(Finding::Cut {
                    agreed: last.clone(),
                });
            }
            _ => return None,
        }
    }
    None
}

fn compare_ty(path: &str, ours: &Ty, theirs: &Ty, last: &mut Option<String>) -> Option<Finding> {
    match (ours, theirs) {
        (Ty::Prim(a), Ty::Prim(b)) if a == b => None,
        (Ty::Array(a, n), Ty::Array(b, m)) if n == m => {
            compare_ty(&format!("{path}[]"), a, b, last)
        }
        (Ty::Struct(a), Ty::Struct(b)) => compare_struct(path, a, b, last),
        _ => Some(Finding::Type {
            path: path.to_owned(),
            ours: show(ours),
            theirs: show(theirs),
        }),
    }
}

fn ordinal(i: usize) -> String {
    let n = i + 1;
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

impl Finding {
    fn sentence(&self) -> String {
        match self {
            Finding::Version { path, ours, theirs } if path.is_empty() => format!(
                "the versions differ: #[ringway(version = {ours})] here, {theirs} in the \
                 channel's type"
            ),
            Finding::Version { path, ours, theirs } => format!(
                "the first field that differs is `{path}`: its type is #[ringway(version = \
                 {ours})] here, {theirs} in the channel's type"
            ),
            Finding::Type { path, ours, theirs } => format!(
                "the first field that differs is `{path}`: `{ours}` here, `{theirs}` in the \
                 channel's type"
            ),
            Finding::Name {
                path,
                index,
                ours,
                theirs,
            } => format!(
                "the first field that differs is `{path}`, the {} field{}: `{ours}` here, \
                 `{theirs}` in the channel's type (a field renamed, moved, added or removed)",
                ordinal(*index),
                match path.rsplit_once('.') {
                    Some((outer, _)) => format!(" of `{outer}`"),
                    None => String::new(),
                }
            ),
            Finding::Extra { path, ty, after } => format!(
                "the first field that differs is `{path}`: `{path}: {ty}` here, but the \
                 channel's type has no field there (it ends {})",
                match after {
                    Some(f) => format!("after `{f}`"),
                    None => "before it".to_owned(),
                }
            ),
            Finding::Missing { path, ty, after } => format!(
                "the first field that differs is `{path}`: the channel's type has `{path}: \
                 {ty}`{}, this type has no field there",
                match after {
                    Some(f) => format!(" after `{f}`"),
                    None => String::new(),
                }
            ),
            Finding::Cut { agreed } => format!(
                "the fields the channel's header records agree with this type{}, but the \
                 header has room for only part of the layout (120 bytes of label), so the \
                 difference is in a later field",
                match agreed {
                    Some(f) => format!(" (through `{f}`)"),
                    None => String::new(),
                }
            ),
        }
    }
}

/// Names the first difference between our layout text and the one another process recorded
/// (both starting at `{`); `None` if theirs does not parse or no difference shows in the
/// text.
pub(crate) fn first_difference(ours: &str, theirs: &str) -> Option<String> {
    let ours = parse(ours)?;
    let theirs = parse(theirs)?;
    compare_struct("", &ours, &theirs, &mut None).map(|f| f.sentence())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(ours: &str, theirs: &str) -> String {
        first_difference(ours, theirs).unwrap_or_else(|| "<none>".to_owned())
    }

    #[test]
    fn parses_nested_and_cut_texts() {
        let st = parse("{v2;a:u8,b:[{x:f64};3],c:{y:i32}}").unwrap();
        assert_eq!(st.version, 2);
        assert!(st.complete);
        assert_eq!(st.fields.len(), 3);
        assert_eq!(
            st.fields[1].1,
            Ty::Array(
                Box::new(Ty::Struct(Struct {
                    version: 0,
                    fields: vec![("x".into(), Ty::Prim("f64".into()))],
                    complete: true
                })),
                3
            )
        );
        // Cut in the middle of a primitive's name: the field is dropped.
        let cut = parse("{a:u8,b:u3").unwrap();
        assert_eq!(cut.fields.len(), 1);
        assert!(!cut.complete);
        // Cut inside a nested struct: the part read is kept.
        let cut = parse("{a:u8,c:{y:i32,z").unwrap();
        assert_eq!(cut.fields.len(), 2);
        assert!(!ty_complete(&cut.fields[1].1));
        // A field named like a version.
        assert_eq!(parse("{v1:u8}").unwrap().fields[0].0, "v1");
    }

    #[test]
    fn hostile_labels_do_not_parse_and_do_not_panic() {
        for text in [
            "{:u8}",
            "{a:u8;b:u8}",
            "{a:[u8;x]}",
            "{a:[u8;4}",
            "{a::}",
            "{,a:u8}",
            "{v99999999999;a:u8}",
            "{a:u8}}",
            "{a:[u8;99999999999999999999999]}",
        ] {
            let _ = parse(text);
            let _ = first_difference("{a:u8}", text);
        }
        let deep = "{a:".repeat(100);
        assert!(parse(&deep).is_none(), "nesting is bounded");
        let deep_arrays = format!("{{a:{}u8", "[".repeat(100));
        assert!(parse(&deep_arrays).is_none());
        assert!(parse("no brace").is_none());
        // Multi-byte text is handled on character boundaries.
        let _ = first_difference("{prix:f64}", "{prïx:f64,é");
    }

    #[test]
    fn names_a_changed_type() {
        assert_eq!(
            diff(
                "{price:f64,qty:i32,venue:u32}",
                "{price:f64,qty:u32,venue:u32}"
            ),
            "the first field that differs is `qty`: `i32` here, `u32` in the channel's type"
        );
        // A changed size reads the same way.
        assert!(diff("{price:f64,qty:u64}", "{price:f64,qty:u32}").contains("`qty`: `u64` here"));
    }

    #[test]
    fn names_a_changed_order_or_name() {
        assert_eq!(
            diff("{qty:u32,venue:u32}", "{venue:u32,qty:u32}"),
            "the first field that differs is `qty`, the 1st field: `qty: u32` here, `venue: u32` \
             in the channel's type (a field renamed, moved, added or removed)"
        );
    }

    #[test]
    fn names_added_and_removed_fields() {
        assert_eq!(
            diff("{a:u32,b:u32}", "{a:u32}"),
            "the first field that differs is `b`: `b: u32` here, but the channel's type has no \
             field there (it ends after `a`)"
        );
        assert_eq!(
            diff("{a:u32}", "{a:u32,b:u32}"),
            "the first field that differs is `b`: the channel's type has `b: u32` after `a`, this \
             type has no field there"
        );
    }

    #[test]
    fn names_nested_fields_and_arrays() {
        assert_eq!(
            diff("{id:u64,pos:{x:f64,y:f32}}", "{id:u64,pos:{x:f64,y:f64}}"),
            "the first field that differs is `pos.y`: `f32` here, `f64` in the channel's type"
        );
        assert_eq!(
            diff("{pts:[{x:f64,y:i64};4]}", "{pts:[{x:f64,y:u64};4]}"),
            "the first field that differs is `pts[].y`: `i64` here, `u64` in the channel's type"
        );
        assert_eq!(
            diff("{pts:[u8;4]}", "{pts:[u8;8]}"),
            "the first field that differs is `pts`: `[u8; 4]` here, `[u8; 8]` in the channel's type"
        );
        assert!(diff("{p:{a:u8,b:u8}}", "{p:{b:u8,a:u8}}").contains("the 1st field of `p`"));
    }

    #[test]
    fn names_versions() {
        assert_eq!(
            diff("{v2;a:u32}", "{v1;a:u32}"),
            "the versions differ: #[ringway(version = 2)] here, 1 in the channel's type"
        );
        assert_eq!(
            diff("{a:u32}", "{v1;a:u32}"),
            "the versions differ: #[ringway(version = 0)] here, 1 in the channel's type"
        );
        assert!(
            diff("{p:{v3;a:u8}}", "{p:{a:u8}}").starts_with("the first field that differs is `p`")
        );
    }

    #[test]
    fn a_cut_text_says_how_far_it_agrees() {
        // The difference is past the cut.
        assert_eq!(
            diff("{a:u32,b:u32,c:u64}", "{a:u32,b:u3"),
            "the fields the channel's header records agree with this type (through `a`), but the \
             header has room for only part of the layout (120 bytes of label), so the difference \
             is in a later field"
        );
        // The difference is before the cut: named.
        assert!(diff("{a:u64,b:u32,c:u64}", "{a:u32,b:u3").contains("`a`: `u64` here"));
        // Cut inside a nested struct after the differing field.
        assert!(diff("{p:{x:i8,y:u8}}", "{p:{x:u8,y").contains("`p.x`: `i8` here"));
        // Cut after a primitive's name: it may have been longer (`u32` of `u321`?).
        assert!(
            diff("{a:u32}", "{a:u32")
                .starts_with("the fields the channel's header records agree with this type, but")
        );
        // Cut exactly before the closing brace: cannot tell whether more fields followed.
        assert!(diff("{a:u32,b:[u8;2]}", "{a:u32,b:[u8;2]").contains("(through `b`)"));
    }

    #[test]
    fn the_same_text_has_no_difference() {
        assert_eq!(
            first_difference("{a:u32,b:[u8;4]}", "{a:u32,b:[u8;4]}"),
            None
        );
    }

    #[test]
    fn labels_split_at_the_first_brace() {
        assert_eq!(split_label("Tick{a:u8}"), ("Tick", Some("{a:u8}")));
        assert_eq!(split_label("app::Tick"), ("app::Tick", None));
    }
}
