//! `ringway ls`: every ringway segment on the machine, one line each.
//!
//! It walks every POSIX shm object in `/dev/shm` and every System V segment, maps each
//! read-only and keeps those whose first bytes carry ringway's magic. Other objects are
//! skipped silently; an object that cannot be opened (another user's, say) gets a note on
//! stderr, as does one that carries the magic but whose header is not a valid ring (being
//! created, or damaged).

use std::process::ExitCode;

use ringway_region::{ErrorKind, Region, SegmentInfo};

use super::describe::{capacity, columns, fill, kind, parties};
use super::probe::{self, Found};
use super::{LsArgs, finish, target};
use crate::bench::units::format_size;

/// How many parties of one side a line shows.
const PARTIES_SHOWN: usize = 3;

/// Entry point of `ringway ls`.
pub(crate) fn run(_: &LsArgs) -> ExitCode {
    finish("ls", ls())
}

fn ls() -> Result<(), String> {
    let segments = Region::list().map_err(|e| e.to_string())?;
    let mut rows = vec![header()];
    let mut notes = Vec::new();
    for seg in &segments {
        let name = target::display(&seg.backing);
        match probe::probe(&seg.backing) {
            Ok(p) => match p.found {
                Found::Ring(ring) => rows.push(row(seg, &name, &ring.info)),
                Found::Broken { error, .. } => notes.push(format!(
                    "{name}: carries ringway's magic but is not a valid ring: {error} \
                     (ringway stat {name} shows its header)"
                )),
                Found::Foreign { .. } => {}
            },
            // Removed since the listing, or not sized yet: nothing to show.
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Empty) => {}
            Err(e) => notes.push(format!("{name}: cannot open it to look: {e}")),
        }
    }
    if rows.len() == 1 {
        println!("no ringway segments");
    } else {
        print!("{}", columns(&rows));
    }
    for note in notes {
        eprintln!("note: {note}");
    }
    Ok(())
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
        "PRODUCERS",
        "CONSUMERS",
    ]
    .map(String::from)
    .to_vec()
}

fn row(seg: &SegmentInfo, name: &str, info: &ringway_ring::RingInfo) -> Vec<String> {
    let backing = if seg.is_removed() {
        format!("{} (removed)", target::kind(&seg.backing))
    } else {
        target::kind(&seg.backing).to_owned()
    };
    vec![
        name.to_owned(),
        backing,
        format_size(usize::try_from(seg.size).unwrap_or(usize::MAX)),
        kind(info).to_owned(),
        capacity(info),
        fill(info),
        if info.label.is_empty() {
            "-".to_owned()
        } else {
            info.label.clone()
        },
        parties(&info.producers, PARTIES_SHOWN),
        parties(&info.consumers, PARTIES_SHOWN),
    ]
}
