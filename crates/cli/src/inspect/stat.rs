//! `ringway stat NAME`: one segment's header, decoded and validated, every field of
//! `docs/layout.md` with its meaning, then the registration table.

use std::fmt::Write as _;
use std::process::ExitCode;

use ringway_ring::layout::{INIT_READY, KIND_BROADCAST, KIND_MPMC, KIND_SPSC, MAGIC};
use ringway_ring::{PartyInfo, RingInfo, RingKind};

use super::describe::{capacity, fill, party_state};
use super::probe::{Found, RawHeader, creator_alive};
use super::{Looked, StatArgs, finish, look};
use crate::bench::units::format_size;

/// Entry point of `ringway stat`.
pub(crate) fn run(args: &StatArgs) -> ExitCode {
    finish("stat", stat(args))
}

fn stat(args: &StatArgs) -> Result<(), String> {
    let backing = args.target.backing();
    let probe = match look(&backing)? {
        Looked::Ringway(probe) => probe,
        Looked::Foreign(why) => return Err(why),
    };
    let mut out = String::new();
    field(&mut out, "segment", backing.to_string());
    field(
        &mut out,
        "size",
        format!("{} bytes ({})", probe.len, format_size(probe.len)),
    );
    match &probe.found {
        Found::Ring(ring) => {
            field(
                &mut out,
                "valid",
                "yes (magic, version, kind and geometry checked)",
            );
            raw_fields(&mut out, &ring.raw);
            ring_fields(&mut out, &ring.info);
        }
        Found::Broken { raw, error } => {
            field(&mut out, "valid", format!("NO: {error}"));
            raw_fields(&mut out, raw);
        }
        Found::Service(service) => match &**service {
            Ok(info) => {
                field(
                    &mut out,
                    "valid",
                    "yes (magic, version and geometry checked)",
                );
                out.push_str(&super::describe::service_fields(info));
            }
            Err(why) => field(&mut out, "valid", format!("NO: {why}")),
        },
        Found::Foreign { .. } => unreachable!("look() turns a foreign object into an error"),
    }
    print!("{out}");
    Ok(())
}

fn field(out: &mut String, name: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{name:<15}{value}");
}

fn raw_fields(out: &mut String, raw: &RawHeader) {
    let check = |ok: bool| if ok { "" } else { " (WRONG)" };
    field(
        out,
        "magic",
        format!("{:#018x}{}", raw.magic, check(raw.magic == MAGIC)),
    );
    field(out, "version", raw.version);
    let kind = match raw.kind {
        KIND_SPSC => "SPSC byte ring",
        KIND_MPMC => "MPMC slot ring",
        KIND_BROADCAST => "broadcast slot ring",
        _ => "unknown",
    };
    field(out, "kind", format!("{} ({kind})", raw.kind));
    let init = if raw.init == INIT_READY {
        "ready"
    } else {
        "not initialised: being created, or its creator died while creating it"
    };
    field(out, "init", format!("{:#010x} ({init})", raw.init));
    field(out, "flags", raw.flags);
    field(
        out,
        "wait words",
        format!(
            "not-empty seq {}, not-full seq {}",
            raw.not_empty_seq, raw.not_full_seq
        ),
    );
}

fn ring_fields(out: &mut String, info: &RingInfo) {
    let g = &info.geometry;
    field(out, "total_len", format!("{} bytes", g.total_len));
    let cap = match g.kind {
        RingKind::Spsc => format!("{} data bytes ({})", g.capacity, capacity(info)),
        RingKind::Mpmc | RingKind::Broadcast => {
            format!("{} slots ({})", g.capacity, capacity(info))
        }
    };
    field(out, "capacity", cap);
    if g.kind == RingKind::Broadcast {
        let policy = match g.policy {
            ringway_ring::Policy::Block => "block (the writer waits for the slowest reader)",
            ringway_ring::Policy::Overwrite => "overwrite (lapped readers are told they lagged)",
        };
        field(out, "policy", policy);
        field(out, "history", format!("{} msgs", g.history));
    }
    field(out, "slot_size", g.slot_size);
    field(out, "slot_stride", g.slot_stride);
    field(out, "data_offset", g.data_offset);
    field(out, "max_message", format!("{} bytes", g.max_message));
    field(out, "max_producers", g.max_producers);
    field(out, "max_consumers", g.max_consumers);
    field(
        out,
        "fingerprint",
        format!(
            "{:#018x} {:#018x}",
            info.fingerprint[0], info.fingerprint[1]
        ),
    );
    field(
        out,
        "label",
        if info.label.is_empty() {
            "(none)"
        } else {
            &info.label
        },
    );
    let creator = if creator_alive(info) { "alive" } else { "dead" };
    field(
        out,
        "creator",
        format!("pid {} ({creator})", info.creator_pid),
    );
    field(out, "created", utc(info.created_ns));
    field(out, "tail", info.tail);
    field(out, "head", info.head);
    let approx = match g.kind {
        RingKind::Spsc => " (approximate: both indices are published lazily)",
        RingKind::Mpmc => "",
        RingKind::Broadcast => " (the slowest live reader)",
    };
    field(out, "fill", format!("{}{approx}", fill(info)));
    field(out, "lost", info.lost);
    field(out, "abandoned", info.abandoned);
    field(out, "users", info.users);
    field(
        out,
        "waiting",
        format!(
            "{} consumer(s), {} producer(s)",
            info.consumers_waiting, info.producers_waiting
        ),
    );
    table(out, "producers", &info.producers);
    table(out, "consumers", &info.consumers);
}

fn table(out: &mut String, side: &str, parties: &[PartyInfo]) {
    if parties.is_empty() {
        field(out, side, "none registered");
        return;
    }
    let _ = writeln!(out, "{side}");
    for p in parties {
        let _ = writeln!(
            out,
            "  #{:<3} pid {:<8} {:<8} start_time {} generation {} claim {} cursor {}",
            p.index,
            p.pid,
            party_state(p),
            p.start_time,
            p.generation,
            p.claim,
            p.cursor
        );
    }
}

/// `2025-03-01 12:34:56.789 UTC` for nanoseconds since the Unix epoch.
fn utc(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let millis = (ns / 1_000_000) % 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{millis:03} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000 UTC");
        // 2000-02-29 (a leap day of a century leap year) 13:14:15.678
        assert_eq!(utc(951_830_055_678_000_000), "2000-02-29 13:14:15.678 UTC");
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_088), (2024, 12, 31));
    }
}
