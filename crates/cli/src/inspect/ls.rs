//! `ringway ls`: every ringway segment on the machine, one line each.
//!
//! It walks every POSIX shm object in `/dev/shm` and every System V segment, maps each
//! read-only and keeps those whose first bytes carry ringway's magic. Other objects are
//! skipped silently; the objects that cannot be opened for lack of permission (other users')
//! are counted in one note on stderr; any other failure to open one, and one that carries the
//! magic but whose header is not a valid ring (being created, or damaged), get a note each.
//! Services (`ringway_channel::Server`) get a line each after the rings' table. `--json`
//! prints the same rows as one JSON array, for scripts: rings and services alike, each with a
//! `kind` field (`SPSC`, `MPMC`, `broadcast`, `service`).

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringway_region::{ErrorKind, Region, SegmentInfo};
use ringway_ring::{PartyInfo, RingInfo};
use serde::Serialize;

use super::describe::{capacity, columns, fill, kind, parties, party_state};
use super::probe::{self, Found};
use super::{LsArgs, finish, target};
use crate::bench::units::format_size;

/// How many parties of one side a line shows.
const PARTIES_SHOWN: usize = 3;

/// Entry point of `ringway ls`.
pub(crate) fn run(args: &LsArgs) -> ExitCode {
    finish("ls", ls(args))
}

fn ls(args: &LsArgs) -> Result<(), String> {
    let segments = Region::list().map_err(|e| e.to_string())?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut rings = Vec::new();
    let mut services = Vec::new();
    let mut notes = Vec::new();
    let mut denied = 0usize;
    for seg in &segments {
        let name = target::display(&seg.backing);
        match probe::probe(&seg.backing) {
            Ok(p) => match p.found {
                Found::Ring(ring) => rings.push(Listed::new(seg, name, &ring.info, now)),
                Found::Broken { error, .. } => notes.push(format!(
                    "{name}: carries ringway's magic but is not a valid ring: {error} \
                     (ringway stat {name} shows its header)"
                )),
                Found::Service(service) => match *service {
                    Ok(info) => services.push(ListedService::new(seg, name, &info, now)),
                    Err(why) => notes.push(format!("{name}: {why}")),
                },
                Found::Foreign { .. } => {}
            },
            // Removed since the listing, or not sized yet: nothing to show.
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Empty) => {}
            // Other users' segments: counted, not one line each.
            Err(e) if e.kind() == ErrorKind::PermissionDenied => denied += 1,
            Err(e) => notes.push(format!("{name}: cannot open it to look: {e}")),
        }
    }
    if args.json {
        let rows: Vec<Row<'_>> = rings
            .iter()
            .map(Row::Ring)
            .chain(services.iter().map(Row::Service))
            .collect();
        let json = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
        println!("{json}");
    } else if rings.is_empty() && services.is_empty() {
        println!("no ringway segments");
    } else if rings.is_empty() {
    } else {
        let mut rows = vec![header()];
        rows.extend(rings.iter().map(Listed::row));
        print!("{}", columns(&rows));
    }
    if !args.json {
        for service in &services {
            println!("{}", service.line);
        }
    }
    for note in notes {
        eprintln!("note: {note}");
    }
    if denied > 0 {
        eprintln!(
            "note: {denied} segment(s) could not be read (permission denied: another user's, \
             with mode 0600?); run as their owner or as root to list them"
        );
    }
    Ok(())
}

/// One row of `ls --json`: a ring or a service, each with its `kind`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Row<'a> {
    Ring(&'a Listed),
    Service(&'a ListedService),
}

/// One service as `ls` shows it, as a line and as a JSON object.
#[derive(Debug, Serialize)]
struct ListedService {
    name: String,
    backing: String,
    removed: bool,
    size: u64,
    /// `service`.
    kind: &'static str,
    uid: u32,
    owner: String,
    mode: String,
    /// Seconds since it was bound.
    age_s: u64,
    sessions: u32,
    /// Sessions a client is connected to now.
    connected: usize,
    /// Largest request and reply payloads, in bytes.
    max_request: u64,
    max_reply: u64,
    /// Sessions granted since bind, and requests answered.
    grants: u64,
    served: u64,
    /// Whether a worker is alive (and the last has not left).
    alive: bool,
    /// The pid of the worker that bound it.
    server_pid: u32,
    workers: Vec<Worker>,
    #[serde(skip)]
    line: String,
}

/// A worker process of a service, for `--json`.
#[derive(Debug, Serialize)]
struct Worker {
    index: u32,
    pid: u32,
    alive: bool,
    grants: u64,
}

impl ListedService {
    fn new(
        seg: &SegmentInfo,
        name: String,
        info: &ringway_channel::ServiceInfo,
        now: Duration,
    ) -> ListedService {
        let line = crate::inspect::describe::service_line(&name, info, now);
        ListedService {
            name,
            backing: target::kind(&seg.backing).to_owned(),
            removed: seg.is_removed(),
            size: seg.size,
            kind: "service",
            uid: seg.uid,
            owner: owner(seg.uid),
            mode: format!("{:04o}", seg.mode & 0o777),
            age_s: now
                .saturating_sub(Duration::from_nanos(info.created_ns))
                .as_secs(),
            sessions: info.sessions,
            connected: info.slots.iter().filter(|s| s.phase == "connected").count(),
            max_request: info.max_message.0,
            max_reply: info.max_message.1,
            grants: info.grants,
            served: info.slots.iter().map(|s| s.served).sum(),
            alive: info.server_alive,
            server_pid: info.server_pid,
            workers: info
                .workers
                .iter()
                .map(|w| Worker {
                    index: w.index,
                    pid: w.pid,
                    alive: w.alive,
                    grants: w.grants,
                })
                .collect(),
            line,
        }
    }
}

/// One ring as `ls` shows it, in the table and as a JSON object.
#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    backing: String,
    removed: bool,
    size: u64,
    kind: &'static str,
    /// SPSC: data bytes; MPMC: slots.
    capacity: u64,
    /// MPMC: bytes per slot; SPSC: 0.
    slot_size: u32,
    /// SPSC: bytes in use; MPMC: messages.
    fill: u64,
    #[serde(rename = "type")]
    label: String,
    uid: u32,
    owner: String,
    /// Permission bits, `0600`.
    mode: String,
    /// Seconds since the creator initialised it.
    age_s: u64,
    creator_pid: u32,
    creator_alive: bool,
    producers: Vec<Party>,
    consumers: Vec<Party>,
    #[serde(skip)]
    info: RingSummary,
}

/// A registered process, for `--json`.
#[derive(Debug, Serialize)]
struct Party {
    pid: u32,
    state: String,
    alive: bool,
}

/// What the table's text columns need of the ring (formatted once).
#[derive(Debug, Default)]
struct RingSummary {
    size: String,
    capacity: String,
    fill: String,
    age: String,
    producers: String,
    consumers: String,
}

impl Listed {
    fn new(seg: &SegmentInfo, name: String, info: &RingInfo, now: Duration) -> Listed {
        let party = |p: &PartyInfo| Party {
            pid: p.pid,
            state: party_state(p),
            alive: p.alive,
        };
        let age = now.saturating_sub(Duration::from_nanos(info.created_ns));
        Listed {
            name,
            backing: target::kind(&seg.backing).to_owned(),
            removed: seg.is_removed(),
            size: seg.size,
            kind: kind(info),
            capacity: info.geometry.capacity,
            slot_size: info.geometry.slot_size,
            fill: info.fill(),
            label: info.label.clone(),
            uid: seg.uid,
            owner: owner(seg.uid),
            mode: format!("{:04o}", seg.mode & 0o777),
            age_s: age.as_secs(),
            creator_pid: info.creator_pid,
            creator_alive: info.creator_alive,
            producers: info.producers.iter().map(party).collect(),
            consumers: info.consumers.iter().map(party).collect(),
            info: RingSummary {
                size: format_size(usize::try_from(seg.size).unwrap_or(usize::MAX)),
                capacity: capacity(info),
                fill: fill(info),
                age: format_age(age),
                producers: parties(&info.producers, PARTIES_SHOWN),
                consumers: parties(&info.consumers, PARTIES_SHOWN),
            },
        }
    }

    fn row(&self) -> Vec<String> {
        let backing = if self.removed {
            format!("{} (removed)", self.backing)
        } else {
            self.backing.clone()
        };
        let s = &self.info;
        vec![
            self.name.clone(),
            backing,
            s.size.clone(),
            self.kind.to_owned(),
            s.capacity.clone(),
            s.fill.clone(),
            if self.label.is_empty() {
                "-".to_owned()
            } else {
                self.label.clone()
            },
            self.owner.clone(),
            self.mode.clone(),
            s.age.clone(),
            s.producers.clone(),
            s.consumers.clone(),
        ]
    }
}

/// The user name of `uid`, or the number if it has none.
fn owner(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => user.name,
        _ => uid.to_string(),
    }
}

/// `42 s`, `5 min`, `3 h`, `2 d`.
fn format_age(age: Duration) -> String {
    let s = age.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

fn header() -> Vec<String> {
    [
        "NAME",
        "BACKING",
        "SIZE",
        "KIND",
        "CAPACITY",
        "FILL",
        "TYPE",
        "OWNER",
        "MODE",
        "AGE",
        "PRODUCERS",
        "CONSUMERS",
    ]
    .map(String::from)
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_in_one_unit() {
        assert_eq!(format_age(Duration::from_secs(42)), "42 s");
        assert_eq!(format_age(Duration::from_secs(300)), "5 min");
        assert_eq!(format_age(Duration::from_secs(3 * 3600 + 5)), "3 h");
        assert_eq!(format_age(Duration::from_secs(2 * 86_400)), "2 d");
        assert_eq!(owner(0), "root");
    }
}
