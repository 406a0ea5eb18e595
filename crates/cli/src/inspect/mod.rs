//! The inspection subcommands: `ringway ls`, `ringway stat`, `ringway rm`, `ringway clean`.
//!
//! - [`ls`]: every ringway segment on the machine (POSIX objects in `/dev/shm` and System V
//!   segments whose first bytes carry ringway's magic), one line each, or `--json`.
//! - [`stat`]: one segment's header, decoded and validated, field by field.
//! - [`remove`]: `rm` removes one segment by name, refusing one in use or not ringway's
//!   unless `--force`; `clean` removes every segment of this user (or of `--prefix`, or with
//!   `--all-users`) whose registered processes and creator are all dead.
//!
//! All of them look at segments through a read-only mapping ([`probe`]): they never attach,
//! register or write, so they are safe to run next to live channels. Segments are named as in
//! [`target`]: `/name`, `sysv:0xKEY`, `shmid:ID`, `file:PATH`.

use std::process::ExitCode;

use clap::Args;
use ringway_region::{Backing, ErrorKind};

mod describe;
pub(crate) mod ls;
mod probe;
pub(crate) mod remove;
pub(crate) mod stat;
mod target;

use probe::{Found, Probe};

/// Options of `ringway ls`.
#[derive(Debug, Args)]
pub(crate) struct LsArgs {
    /// Print the segments as one JSON array (for scripts) instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// A segment named by `NAME` or `--sysv KEY`.
#[derive(Debug, Args)]
pub(crate) struct Named {
    /// The segment: /name (POSIX shm), sysv:0xKEY, shmid:ID or file:PATH, as `ringway ls` prints it.
    #[arg(
        value_name = "NAME",
        value_parser = target::parse,
        required_unless_present = "sysv",
        conflicts_with = "sysv"
    )]
    name: Option<Backing>,
    /// A System V segment by key (decimal or 0x hex), the same as NAME sysv:KEY.
    #[arg(long, value_name = "KEY", value_parser = target::parse_key)]
    sysv: Option<i32>,
}

impl Named {
    /// The backing named.
    pub(crate) fn backing(&self) -> Backing {
        match (&self.name, self.sysv) {
            (Some(backing), _) => backing.clone(),
            (None, Some(key)) => Backing::sysv(key),
            (None, None) => unreachable!("clap requires NAME or --sysv"),
        }
    }
}

/// Options of `ringway stat`.
#[derive(Debug, Args)]
pub(crate) struct StatArgs {
    #[command(flatten)]
    pub(crate) target: Named,
}

/// Options of `ringway rm`.
#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    #[command(flatten)]
    pub(crate) target: Named,
    /// Remove the object even if a process still uses it, if it is not a ringway segment, or if
    /// it cannot be opened to check.
    #[arg(long)]
    pub(crate) force: bool,
}

/// Options of `ringway clean`.
#[derive(Debug, Args)]
pub(crate) struct CleanArgs {
    /// List what would be removed, and remove nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Only POSIX segments whose name starts with this (e.g. /myapp-), whoever owns them;
    /// System V segments are then left alone.
    #[arg(long, value_name = "PREFIX")]
    pub(crate) prefix: Option<String>,
    /// Without --prefix: other users' segments too (by default only yours).
    #[arg(long)]
    pub(crate) all_users: bool,
}

/// Prints `ringway CMD: message` and fails, or succeeds.
pub(crate) fn finish(command: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ringway {command}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A segment that `stat` and `rm` were pointed at, or why it is not one they can work on.
#[derive(Debug)]
enum Looked {
    /// A ringway segment (valid, or at least carrying the magic).
    Ringway(Probe),
    /// An object that is not ringway's; the message says why.
    Foreign(String),
}

/// Probes a named segment for `stat` and `rm`, turning a missing object into the error users
/// see (`no such segment ...: ringway ls lists them`).
fn look(backing: &Backing) -> Result<Looked, String> {
    match probe::probe(backing) {
        Ok(p) => match p.found {
            Found::Foreign { magic } => Ok(Looked::Foreign(not_ringway(backing, magic, p.len))),
            _ => Ok(Looked::Ringway(p)),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => {
            Err(format!("no such segment {backing}: ringway ls lists them"))
        }
        Err(e) if e.kind() == ErrorKind::Empty => Ok(Looked::Foreign(format!(
            "{backing} is not a ringway segment (it is empty)"
        ))),
        Err(e) => Err(e.to_string()),
    }
}

/// `... is not a ringway segment (magic ...)`.
fn not_ringway(backing: &Backing, magic: Option<u64>, len: usize) -> String {
    match magic {
        Some(magic) => format!(
            "{backing} is not a ringway segment (magic {magic:#018x}, expected {:#018x})",
            ringway_ring::layout::MAGIC
        ),
        None => format!("{backing} is not a ringway segment (only {len} bytes)"),
    }
}
