//! The transport abstraction: how one IPC mechanism is set up by the orchestrating parent and
//! driven by each peer process.
//!
//! A measurement of one transport runs in three processes:
//!
//! 1. the **parent** calls [`Transport::prepare`], which creates whatever connects the two sides
//!    (a pipe pair, a socketpair, a TCP connection, a memfd, or just a fresh name) and returns one
//!    [`Endpoint`] per peer: file descriptors for it to inherit and/or a name for it to open;
//! 2. the parent re-executes its own binary once per endpoint as `ringway __bench-peer
//!    --transport NAME --role a|b ... --fd N ... [--name S]`, each child inheriting exactly its
//!    endpoint's descriptors (see `spawn.rs`), then closes its own copies;
//! 3. in each **peer**, [`Transport::run_peer`] rebuilds its side from the [`Endpoint`], waits
//!    at the start gate of its [`PeerControl`] until the other side is ready too, and runs the
//!    workload: usually by wrapping its side in a [`Link`](super::workload::Link) and calling
//!    [`workload::drive`](super::workload::drive), which does both. It returns the
//!    [`PeerReport`] the child prints as one JSON line.
//!
//! # Adding a transport
//!
//! A file with a type implementing [`Transport`], and one line in [`ALL`]. For a message
//! transport (a ringway channel, say, whose endpoints each peer opens by name):
//!
//! - `name`: its JSON/CLI name (e.g. `ringway-spsc`); `supports` defaults to both workloads.
//! - `prepare` (parent): pick a fresh name, create what must exist before the peers open it
//!   (or leave creating to one role, the other waiting for it), and return
//!   `Endpoint { fds: vec![], name: Some(name) }` for each side, with a `guard` that removes
//!   the name on drop, even when a peer crashed. A size it cannot carry is
//!   [`SetupError::Unavailable`] with the reason, never a faked row.
//! - `run_peer` (peer): open its side from the endpoint (a ping-pong needs both directions,
//!   a throughput run A's sender and B's receiver), wrap it in a
//!   [`Link`](super::workload::Link) and return
//!   [`workload::drive(role, spec, link, ctl)`](super::workload::drive), which passes the start
//!   gate and runs the workload. The link sends and receives exactly one whole message per
//!   call, blocking or spinning as the transport does; `recv` returns `Ok(false)` once the
//!   other side has dropped its link and everything sent before has been received; a broken
//!   message is an `InvalidData` error. Nothing may be printed on stdout.

use std::any::Any;
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use super::control::PeerControl;
use super::peer::PeerReport;
use super::{asyncio, fanout, fdio, loan, memcpy, producers, ringway, shmflag, shmring, versus};

/// The transport every row is compared with in the ratio column.
pub(crate) const BASELINE: &str = "pipe";

/// Every transport the bench knows, in table order.
pub(crate) static ALL: &[&dyn Transport] = &[
    &ringway::SPSC,
    &ringway::SPSC_BLOCKING,
    &ringway::SPSC_PARK,
    &loan::Loan,
    &asyncio::RINGWAY_ASYNC,
    &asyncio::RINGWAY_ASYNC_PARK,
    &ringway::MPMC,
    &producers::MPMC_P1,
    &producers::MPMC_P2,
    &producers::MPMC_P4,
    &ringway::SPSC_BATCH8,
    &ringway::SPSC_BATCH32,
    &ringway::SPSC_BATCH256,
    &ringway::SELECT_1,
    &ringway::SELECT_16,
    &fanout::FANOUT1,
    &fanout::FANOUT2,
    &fanout::FANOUT4,
    &fdio::PIPE,
    &fdio::UNIX_STREAM,
    &fdio::UNIX_SEQPACKET,
    &fdio::TCP,
    &asyncio::TOKIO_UNIX,
    &shmflag::ShmFlag,
    &shmring::ShmRing,
    &versus::VsFloor,
    &memcpy::Memcpy,
];

/// Looks a transport up by its command-line name.
pub(crate) fn find(name: &str) -> Option<&'static dyn Transport> {
    ALL.iter().copied().find(|t| t.name() == name)
}

/// The names of every transport, for error messages and help.
pub(crate) fn names() -> Vec<&'static str> {
    ALL.iter().map(|t| t.name()).collect()
}

/// What is measured.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Workload {
    /// Round trip: A sends S bytes, B receives all S and sends S bytes back; A times each one.
    Pingpong,
    /// One way: A streams S-byte messages numbered from 0, B checks the numbers and times them.
    Throughput,
    /// B waits in a blocking receive while A, attached, sends nothing for the idle window, then
    /// one message; each side's CPU over the wait.
    Idle,
    /// A sends at fixed offered rates (`--rates`); B records receive time minus each message's
    /// intended send time (one way, coordinated omission counted).
    Rate,
}

impl Workload {
    /// The name used on the command line and in the JSON `workload` field.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Workload::Pingpong => "pingpong",
            Workload::Throughput => "throughput",
            Workload::Idle => "idle",
            Workload::Rate => "rate",
        }
    }
}

/// Which side of a measurement a peer process plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Role {
    /// The initiator: ping-pong client (it keeps the histogram), throughput sender, or the only
    /// process of a one-process transport (`memcpy`).
    A,
    /// The responder: ping-pong echo, throughput receiver (it measures the rate).
    B,
}

/// Everything a peer needs to know about one measurement besides its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerSpec {
    /// The workload to run.
    pub(crate) workload: Workload,
    /// Message size in bytes, at least 8 (throughput messages start with a `u64` sequence number).
    pub(crate) size: usize,
    /// Time run and discarded before the measured window.
    pub(crate) warmup: Duration,
    /// The measured window.
    pub(crate) measure: Duration,
    /// The offered rate of the fixed-rate workload, in messages per second; `None` otherwise.
    pub(crate) rate: Option<u64>,
}

/// How much a transport holds in flight and how it hands messages over, for the JSON of
/// every row; `None` where it does not apply or is not known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Geometry {
    /// Bytes the transport buffers between the sides (ring or kernel buffer, one direction).
    pub(crate) capacity_bytes: Option<u64>,
    /// Slots of a slot ring (MPMC, broadcast).
    pub(crate) slots: Option<u64>,
    /// Messages the sender hands over per call.
    pub(crate) batch: Option<u64>,
}

/// What one peer process is handed: descriptors it inherits, and/or a name it opens.
#[derive(Debug, Default)]
pub(crate) struct Endpoint {
    /// Inherited descriptors, in an order the transport defines (e.g. `[rx, tx]` for a pipe
    /// ping-pong). In the child they keep their numbers and arrive as `--fd N` arguments.
    pub(crate) fds: Vec<OwnedFd>,
    /// A name to open (e.g. a shared memory object), passed as `--name`.
    pub(crate) name: Option<String>,
}

impl Endpoint {
    /// Takes exactly `N` descriptors (peer side), or fails saying how many there were.
    ///
    /// # Errors
    /// When the endpoint holds another number of descriptors.
    pub(crate) fn take_fds<const N: usize>(self) -> Result<[OwnedFd; N], PeerError> {
        self.fds.try_into().map_err(|fds: Vec<OwnedFd>| {
            let why = format!("expected {N} inherited fds, got {}", fds.len());
            let e = io::Error::new(io::ErrorKind::InvalidInput, why);
            PeerError::io("take the endpoint's descriptors", e)
        })
    }
}

/// The endpoints of one measurement, created by the parent.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// Side A's endpoint.
    pub(crate) a: Endpoint,
    /// Side B's endpoint; `None` for a transport that runs in a single process (`memcpy`).
    pub(crate) b: Option<Endpoint>,
    /// Whatever must live in the parent until both peers have exited (for example a guard that
    /// unlinks a named segment even when a peer crashed); dropped after the measurement.
    pub(crate) guard: Option<Box<dyn Any>>,
}

impl Prepared {
    /// Two peers, nothing to keep in the parent.
    pub(crate) fn pair(a: Endpoint, b: Endpoint) -> Self {
        Prepared {
            a,
            b: Some(b),
            guard: None,
        }
    }
}

/// One IPC mechanism the bench can measure. See the module docs for the life of a measurement.
pub(crate) trait Transport: fmt::Debug + Sync {
    /// The name on the command line, in the table and in the JSON `transport` field.
    fn name(&self) -> &'static str;

    /// Whether this transport runs `workload` at all (by default: ping-pong and throughput;
    /// the idle and fixed-rate workloads are for the rows that opt in).
    fn supports(&self, workload: Workload) -> bool {
        matches!(workload, Workload::Pingpong | Workload::Throughput)
    }

    /// Its buffer and batch for `spec` (by default: unknown buffer, one message per send).
    fn geometry(&self, spec: &PeerSpec) -> Geometry {
        let _ = spec;
        Geometry {
            batch: Some(1),
            ..Geometry::default()
        }
    }

    /// Parent side: creates what connects the peers for one measurement of `spec`.
    ///
    /// # Errors
    /// [`SetupError::Unavailable`] when this transport cannot carry `spec` on this machine (the row
    /// is reported as unavailable with the reason), [`SetupError::Io`] when setting up failed.
    fn prepare(&self, spec: &PeerSpec) -> Result<Prepared, SetupError>;

    /// Peer side, in its own process: runs `role` of `spec.workload` over `endpoint`, passing
    /// the start gate of `ctl` after building its side and before timing anything.
    ///
    /// # Errors
    /// Any failure to reach the other side or to move data ([`PeerError::Io`]), and any lost,
    /// reordered or corrupted message ([`PeerError::Integrity`]).
    fn run_peer(
        &self,
        role: Role,
        spec: &PeerSpec,
        endpoint: Endpoint,
        ctl: PeerControl,
    ) -> Result<PeerReport, PeerError>;
}

/// Why [`Transport::prepare`] produced no endpoints.
#[derive(Debug)]
pub(crate) enum SetupError {
    /// The transport cannot carry this measurement here; the reason is shown in the table.
    Unavailable(String),
    /// An OS call failed.
    Io {
        /// What was attempted, e.g. `socketpair(AF_UNIX, SOCK_SEQPACKET)`.
        what: String,
        /// The OS error.
        source: io::Error,
    },
}

impl SetupError {
    /// Wraps an OS error with what was attempted.
    pub(crate) fn io(what: impl Into<String>, source: impl Into<io::Error>) -> Self {
        SetupError::Io {
            what: what.into(),
            source: source.into(),
        }
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Unavailable(why) => write!(f, "unavailable: {why}"),
            SetupError::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SetupError::Unavailable(_) => None,
            SetupError::Io { source, .. } => Some(source),
        }
    }
}

/// Why a peer failed.
#[derive(Debug)]
pub(crate) enum PeerError {
    /// A message was lost, reordered, truncated or corrupted: the transport is broken, and the
    /// whole bench stops (exit code [`PeerError::INTEGRITY_EXIT`] from the peer).
    Integrity(String),
    /// An OS call failed.
    Io {
        /// What was attempted, e.g. `receive a 4096-byte message`.
        what: String,
        /// The OS error.
        source: io::Error,
    },
}

impl PeerError {
    /// The exit code of a peer that saw an integrity failure.
    pub(crate) const INTEGRITY_EXIT: i32 = 3;

    /// Wraps an OS error with what was attempted.
    pub(crate) fn io(what: impl Into<String>, source: impl Into<io::Error>) -> Self {
        PeerError::Io {
            what: what.into(),
            source: source.into(),
        }
    }

    /// The exit code the peer process ends with.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            PeerError::Integrity(_) => Self::INTEGRITY_EXIT,
            PeerError::Io { .. } => 1,
        }
    }
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::Integrity(what) => write!(f, "integrity failure: {what}"),
            PeerError::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for PeerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PeerError::Integrity(_) => None,
            PeerError::Io { source, .. } => Some(source),
        }
    }
}
