//! What a bridge has done so far: per route, messages and bytes carried, gaps found, drops
//! and refusals; for the session, the peers connected. Counters are atomics the route
//! threads bump and anyone reads; a [`StatusSnapshot`] prints as one line, or as the
//! `key=value` lines of the status file.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// One route's counters. Every counter only grows.
#[derive(Debug, Default)]
pub struct RouteStatus {
    label: String,
    /// Messages carried (published, or delivered into the local channel).
    pub(crate) messages: AtomicU64,
    /// Their payload bytes.
    pub(crate) bytes: AtomicU64,
    /// Inbound: times a stream's sequence number jumped forward.
    pub(crate) gaps: AtomicU64,
    /// Inbound: messages those jumps skipped (lost between the bridges).
    pub(crate) missing: AtomicU64,
    /// Inbound: messages before the first one this bridge saw of a stream it joined late
    /// (delivered by an earlier run of this bridge, or lost while it was down).
    pub(crate) unseen: AtomicU64,
    /// Lossy inbound: messages dropped because the local channel was full or had no receiver.
    pub(crate) drops: AtomicU64,
    /// Inbound: samples refused (no or bad attachment, an old sequence number).
    pub(crate) refused: AtomicU64,
    /// Inbound: streams seen.
    pub(crate) streams: AtomicU64,
}

impl RouteStatus {
    pub(crate) fn new(label: String) -> Arc<RouteStatus> {
        Arc::new(RouteStatus {
            label,
            ..RouteStatus::default()
        })
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    fn snapshot(&self) -> RouteSnapshot {
        RouteSnapshot {
            label: self.label.clone(),
            messages: self.messages.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            gaps: self.gaps.load(Relaxed),
            missing: self.missing.load(Relaxed),
            unseen: self.unseen.load(Relaxed),
            drops: self.drops.load(Relaxed),
            refused: self.refused.load(Relaxed),
            streams: self.streams.load(Relaxed),
        }
    }
}

/// A bridge's counters.
#[derive(Debug, Default)]
pub struct Status {
    pub(crate) routes: Vec<Arc<RouteStatus>>,
    pub(crate) peers: AtomicU64,
}

impl Status {
    /// The counters now.
    #[must_use]
    pub fn snapshot(&self) -> StatusSnapshot {
        StatusSnapshot {
            peers: self.peers.load(Relaxed),
            routes: self.routes.iter().map(|r| r.snapshot()).collect(),
        }
    }
}

/// One route's counters at one moment (see [`RouteStatus`] for what each counts).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct RouteSnapshot {
    pub label: String,
    pub messages: u64,
    pub bytes: u64,
    pub gaps: u64,
    pub missing: u64,
    pub unseen: u64,
    pub drops: u64,
    pub refused: u64,
    pub streams: u64,
}

/// A bridge's counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSnapshot {
    /// Zenoh peers connected to this bridge's session.
    pub peers: u64,
    /// Each route's counters, in the configuration's order.
    pub routes: Vec<RouteSnapshot>,
}

impl StatusSnapshot {
    /// The status file's text: `peers=N`, then one line per route,
    /// `messages=N bytes=N gaps=N missing=N unseen=N drops=N refused=N streams=N route=LABEL`
    /// (the label last: it holds spaces).
    #[must_use]
    pub fn to_file_text(&self) -> String {
        let mut s = format!("peers={}\n", self.peers);
        for r in &self.routes {
            s += &format!(
                "messages={} bytes={} gaps={} missing={} unseen={} drops={} refused={} \
                 streams={} route={}\n",
                r.messages,
                r.bytes,
                r.gaps,
                r.missing,
                r.unseen,
                r.drops,
                r.refused,
                r.streams,
                r.label
            );
        }
        s
    }

    /// Reads what [`to_file_text`](StatusSnapshot::to_file_text) wrote (`None`: not a status
    /// file, or written by another version).
    #[must_use]
    pub fn parse(text: &str) -> Option<StatusSnapshot> {
        let mut lines = text.lines();
        let peers = lines.next()?.strip_prefix("peers=")?.parse().ok()?;
        let mut routes = Vec::new();
        for line in lines {
            let (counts, label) = line.split_once(" route=")?;
            let mut n = [0u64; 8];
            let mut fields = counts.split(' ');
            for slot in &mut n {
                *slot = fields.next()?.split_once('=')?.1.parse().ok()?;
            }
            let label = label.to_owned();
            let [
                messages,
                bytes,
                gaps,
                missing,
                unseen,
                drops,
                refused,
                streams,
            ] = n;
            routes.push(RouteSnapshot {
                label,
                messages,
                bytes,
                gaps,
                missing,
                unseen,
                drops,
                refused,
                streams,
            });
        }
        Some(StatusSnapshot { peers, routes })
    }
}

impl fmt::Display for StatusSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peers {}", self.peers)?;
        for r in &self.routes {
            write!(f, " | {}: {} msgs, {} B", r.label, r.messages, r.bytes)?;
            if r.label.starts_with("in ") {
                write!(
                    f,
                    ", gaps {} ({} missing), unseen {}, drops {}, refused {}",
                    r.gaps, r.missing, r.unseen, r.drops, r.refused
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_text_reads_back() {
        let status = Status {
            routes: vec![
                RouteStatus::new("in a/b -> /c".into()),
                RouteStatus::new("out /d -> e".into()),
            ],
            peers: AtomicU64::new(2),
        };
        RouteStatus::add(&status.routes[0].missing, 5);
        RouteStatus::add(&status.routes[1].messages, 7);
        let snap = status.snapshot();
        assert_eq!(
            StatusSnapshot::parse(&snap.to_file_text()),
            Some(snap.clone())
        );
        assert_eq!(
            snap.to_string(),
            "peers 2 | in a/b -> /c: 0 msgs, 0 B, gaps 0 (5 missing), unseen 0, drops 0, refused 0 | out /d -> e: 7 msgs, 0 B"
        );
    }
}
