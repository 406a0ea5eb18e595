//! How a person names a segment on the command line, and how `ringway ls` prints one so that
//! the same text works again with `stat` and `rm`.
//!
//! | text | backing |
//! |---|---|
//! | `/ticks` or `ticks` | POSIX shm object `/ticks` |
//! | `sysv:0x52000001`, `sysv:1375731713` | System V segment by key |
//! | `shmid:42` | System V segment by id (`IPC_PRIVATE`, or a removed key: `ipcs -m` shows key 0) |
//! | `file:/dev/hugepages/ring` | a file |

use std::path::PathBuf;

use ringway_region::{Backing, SysvKey};

/// Parses a segment name (see the module docs).
///
/// # Errors
/// A message for clap when the text names nothing a segment can be.
pub(crate) fn parse(text: &str) -> Result<Backing, String> {
    if let Some(key) = text.strip_prefix("sysv:") {
        return parse_key(key).map(Backing::sysv);
    }
    if let Some(id) = text.strip_prefix("shmid:") {
        return id
            .parse::<i32>()
            .ok()
            .filter(|&id| id >= 0)
            .map(Backing::sysv_id)
            .ok_or_else(|| format!("{text:?}: a shmid is a non-negative number, e.g. shmid:42"));
    }
    if let Some(path) = text.strip_prefix("file:") {
        if path.is_empty() {
            return Err(format!("{text:?}: file: needs a path, e.g. file:/tmp/ring"));
        }
        return Ok(Backing::file(PathBuf::from(path)));
    }
    let name = if text.starts_with('/') {
        text.to_owned()
    } else {
        format!("/{text}")
    };
    if name.len() < 2 || name[1..].contains('/') {
        return Err(format!(
            "{text:?} is not a POSIX shm name (one leading '/', no other, e.g. /ticks); \
             use sysv:KEY, shmid:ID or file:PATH for the other kinds"
        ));
    }
    Ok(Backing::posix(name))
}

/// Parses a System V key: decimal, or hexadecimal with `0x`; a negative decimal is taken as
/// the kernel prints keys in `/proc/sysvipc/shm` (signed).
///
/// # Errors
/// A message for clap.
pub(crate) fn parse_key(text: &str) -> Result<i32, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok().map(|k| k as i32),
        None => text.parse::<i32>().ok(),
    };
    match parsed {
        Some(0) => Err(format!(
            "{text:?}: key 0 is IPC_PRIVATE, which no key finds; name the segment by shmid:ID"
        )),
        Some(key) => Ok(key),
        None => Err(format!(
            "{text:?} is not a System V key: write it in decimal or as 0x1234abcd"
        )),
    }
}

/// The text `ls` prints for a segment, which `parse` reads back.
pub(crate) fn display(backing: &Backing) -> String {
    match backing {
        Backing::Posix { name } => name.clone(),
        Backing::SysV {
            key: SysvKey::Key(key),
        } => format!("sysv:{:#010x}", *key as u32),
        Backing::SysV {
            key: SysvKey::Id(id),
        } => format!("shmid:{id}"),
        Backing::File { path } => format!("file:{}", path.display()),
        other => other.to_string(),
    }
}

/// The backing's kind, for the `BACKING` column.
pub(crate) fn kind(backing: &Backing) -> &'static str {
    match backing {
        Backing::Posix { .. } => "posix",
        Backing::SysV { .. } => "sysv",
        Backing::File { .. } => "file",
        Backing::Memfd { .. } => "memfd",
        _ => "anonymous",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_parses_and_displays_back() {
        assert_eq!(parse("/ticks").unwrap(), Backing::posix("/ticks"));
        assert_eq!(parse("ticks").unwrap(), Backing::posix("/ticks"));
        assert_eq!(
            parse("sysv:0x52000001").unwrap(),
            Backing::sysv(0x5200_0001)
        );
        assert_eq!(parse("sysv:4660").unwrap(), Backing::sysv(0x1234));
        assert_eq!(parse("sysv:0xffffffff").unwrap(), Backing::sysv(-1));
        assert_eq!(parse("sysv:-1").unwrap(), Backing::sysv(-1));
        assert_eq!(parse("shmid:42").unwrap(), Backing::sysv_id(42));
        assert_eq!(parse("file:/tmp/r").unwrap(), Backing::file("/tmp/r"));
        for text in [
            "/ticks",
            "sysv:0x52000001",
            "sysv:0xffffffff",
            "shmid:42",
            "file:/tmp/r",
        ] {
            assert_eq!(display(&parse(text).unwrap()), text);
        }
    }

    #[test]
    fn bad_names_say_why() {
        assert!(parse("/a/b").unwrap_err().contains("one leading '/'"));
        assert!(parse("/").is_err());
        assert!(parse("sysv:0").unwrap_err().contains("IPC_PRIVATE"));
        assert!(parse("sysv:zz").unwrap_err().contains("not a System V key"));
        assert!(parse("shmid:-3").is_err());
        assert!(parse("file:").is_err());
    }
}
