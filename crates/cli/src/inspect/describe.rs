//! How the inspection commands put a ring into words: capacity, fill, parties, aligned columns.

use ringway_ring::{PartyInfo, PartyState, RingInfo, RingKind};

use crate::bench::units::format_size;

/// `SPSC`, `MPMC` or `BCAST`.
pub(crate) fn kind(info: &RingInfo) -> &'static str {
    match info.geometry.kind {
        RingKind::Spsc => "SPSC",
        RingKind::Mpmc => "MPMC",
        RingKind::Broadcast => "BCAST",
    }
}

/// SPSC: the data bytes (`64 KiB`); MPMC and broadcast: slots times their size (`1024 x 64 B`).
pub(crate) fn capacity(info: &RingInfo) -> String {
    let g = &info.geometry;
    match g.kind {
        RingKind::Spsc => format_size(usize::try_from(g.capacity).unwrap_or(usize::MAX)),
        RingKind::Mpmc | RingKind::Broadcast => {
            format!("{} x {}", g.capacity, format_size(g.slot_size as usize))
        }
    }
}

/// What is committed and not yet released, as far as the published indices tell: bytes for
/// SPSC (published lazily, so approximate), messages for MPMC, the slowest live reader's backlog
/// for broadcast.
pub(crate) fn fill(info: &RingInfo) -> String {
    let fill = info.fill();
    match info.geometry.kind {
        RingKind::Spsc => format_size(usize::try_from(fill).unwrap_or(usize::MAX)),
        RingKind::Mpmc => format!("{fill} msgs"),
        RingKind::Broadcast => format!("{fill} msgs behind"),
    }
}

/// `alive`, `dead`, `closed`, `joining`, or `invalid state N`.
pub(crate) fn party_state(p: &PartyInfo) -> String {
    match (p.state, p.alive) {
        (PartyState::Closed, _) => "closed".into(),
        (PartyState::Joining, true) => "joining".into(),
        (PartyState::Active, true) => "alive".into(),
        (PartyState::Active | PartyState::Joining, false) => "dead".into(),
        (PartyState::Invalid(s), _) => format!("invalid state {s}"),
    }
}

/// `4242 alive, 4250 dead` for a side's registered parties (at most `max` shown), `-` for none.
pub(crate) fn parties(list: &[PartyInfo], max: usize) -> String {
    if list.is_empty() {
        return "-".into();
    }
    let mut shown: Vec<String> = list
        .iter()
        .take(max)
        .map(|p| format!("{} {}", p.pid, party_state(p)))
        .collect();
    if list.len() > max {
        shown.push(format!("+{} more", list.len() - max));
    }
    shown.join(", ")
}

/// Left-aligned columns, two spaces apart, trailing spaces trimmed.
pub(crate) fn columns(rows: &[Vec<String>]) -> String {
    let width = |i: usize| {
        rows.iter()
            .filter_map(|r| r.get(i))
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..rows.iter().map(Vec::len).max().unwrap_or(0))
        .map(width)
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// One line of `ringway ls` for a service: its sessions, its server, its age.
pub(crate) fn service_line(
    name: &str,
    info: &ringway_channel::ServiceInfo,
    now: std::time::Duration,
) -> String {
    let connected = info.slots.iter().filter(|s| s.phase == "connected").count();
    let age = now
        .saturating_sub(std::time::Duration::from_nanos(info.created_ns))
        .as_secs();
    let live: Vec<String> = info
        .workers
        .iter()
        .filter(|w| w.alive)
        .map(|w| w.pid.to_string())
        .collect();
    let workers = if live.is_empty() {
        "no live worker".to_owned()
    } else {
        format!("worker pid {} alive", live.join(", "))
    };
    format!(
        "{name}  service  {} sessions ({connected} connected)  {workers}  {} requests served, \
         {} sessions granted  bound {age} s ago",
        info.sessions,
        info.slots.iter().map(|s| s.served).sum::<u64>(),
        info.grants,
    )
}

/// `ringway stat` of a service: its header and one line per session.
pub(crate) fn service_fields(info: &ringway_channel::ServiceInfo) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "{:<15}service", "kind");
    let _ = writeln!(
        out,
        "{:<15}{} (request ring {} bytes, reply ring {} bytes)",
        "sessions", info.sessions, info.ring_bytes.0, info.ring_bytes.1
    );
    let _ = writeln!(
        out,
        "{:<15}request {} bytes, reply {} bytes",
        "max message", info.max_message.0, info.max_message.1
    );
    let _ = writeln!(
        out,
        "{:<15}pid {} ({}), epoch {:#018x}, {} sessions granted",
        "server",
        info.server_pid,
        if info.server_alive {
            "alive"
        } else {
            "dead or left"
        },
        info.epoch,
        info.grants
    );
    for w in &info.workers {
        let _ = writeln!(
            out,
            "{:<15}pid {} ({}), {} sessions granted",
            format!("worker {}", w.index),
            w.pid,
            if w.alive { "alive" } else { "dead" },
            w.grants
        );
    }
    for (slot, s) in info.slots.iter().enumerate() {
        let mut client = if s.client_pid == 0 {
            String::new()
        } else {
            format!(", client pid {}", s.client_pid)
        };
        if let Some(w) = s.worker {
            client.push_str(&format!(", worker {w}"));
        }
        let _ = writeln!(
            out,
            "{:<15}{} (generation {}{client}), {} served",
            format!("session {slot}"),
            s.phase,
            s.generation,
            s.served
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(pid: u32, state: PartyState, alive: bool) -> PartyInfo {
        PartyInfo {
            index: 0,
            state,
            pid,
            start_time: 1,
            generation: 1,
            claim: 0,
            cursor: 0,
            alive,
        }
    }

    #[test]
    fn parties_read_as_pid_and_state() {
        assert_eq!(parties(&[], 3), "-");
        let list = [
            party(10, PartyState::Active, true),
            party(11, PartyState::Active, false),
            party(12, PartyState::Closed, false),
            party(13, PartyState::Invalid(9), false),
        ];
        assert_eq!(parties(&list, 3), "10 alive, 11 dead, 12 closed, +1 more");
        assert_eq!(party_state(&list[3]), "invalid state 9");
    }

    #[test]
    fn columns_line_up() {
        let rows = vec![
            vec!["A".to_owned(), "BB".to_owned(), "C".to_owned()],
            vec!["xxx".to_owned(), "y".to_owned(), String::new()],
        ];
        assert_eq!(columns(&rows), "A    BB  C\nxxx  y\n");
    }
}
