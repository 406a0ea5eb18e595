//! Looking at a segment without touching it: map it read-only, check ringway's magic, decode
//! and validate the header with [`ringway_ring::inspect`].
//!
//! Nothing here attaches, registers, or writes a byte: `ringway ls` and `ringway stat` can look
//! at a ring while its processes run (the figures are a snapshot, and a ring's `head` and
//! `tail` are published lazily, so its fill is approximate).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ringway_region::{Backing, Region, RegionOptions};
use ringway_ring::layout::{self, Header};
use ringway_ring::{AttachError, KeepAlive, RingInfo, RingMemory};

/// What a segment turned out to hold.
#[derive(Debug)]
pub(crate) enum Found {
    /// A valid ringway ring.
    Ring(Box<Ring>),
    /// ringway's magic, but a header that is not (or not yet) a valid ring.
    Broken {
        /// The raw identity fields.
        raw: RawHeader,
        /// What is wrong with it.
        error: AttachError,
    },
    /// A service's rendezvous segment (`ringway_channel::Server::bind`), read through the
    /// library; `Err` says what is wrong with one that carries the service magic.
    Service(Box<Result<ringway_channel::ServiceInfo, String>>),
    /// Something else: the first 8 bytes, if the object has that many.
    Foreign {
        /// The first 8 bytes as a native-endian `u64`.
        magic: Option<u64>,
    },
}

/// A valid ring: the decoded snapshot and the raw fields `inspect` does not return.
#[derive(Debug)]
pub(crate) struct Ring {
    /// Decoded and validated by [`ringway_ring::inspect`].
    pub(crate) info: RingInfo,
    /// The raw identity and wait words.
    pub(crate) raw: RawHeader,
}

/// Header fields as stored, for `ringway stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawHeader {
    pub(crate) magic: u64,
    pub(crate) version: u32,
    pub(crate) kind: u32,
    pub(crate) flags: u32,
    pub(crate) init: u32,
    /// The futex word consumers sleep on.
    pub(crate) not_empty_seq: u32,
    /// The futex word producers sleep on.
    pub(crate) not_full_seq: u32,
}

/// One segment, looked at.
#[derive(Debug)]
pub(crate) struct Probe {
    /// The object's size in bytes.
    pub(crate) len: usize,
    /// What it holds.
    pub(crate) found: Found,
}

/// Maps `backing` read-only and looks at what it holds.
///
/// # Errors
/// Opening the object (no such object, permission denied, an empty object, ...).
pub(crate) fn probe(backing: &Backing) -> Result<Probe, ringway_region::Error> {
    let region = Region::open(backing, &RegionOptions::new().read_only(true))?;
    let len = region.len();
    let found = examine(Arc::new(region));
    Ok(Probe { len, found })
}

fn examine(region: Arc<Region>) -> Found {
    if let Some(service) = ringway_channel::inspect_service(&region) {
        return Found::Service(Box::new(service));
    }
    let (ptr, len) = (region.as_ptr(), region.len());
    if len < layout::HEADER_LEN {
        let magic = (len >= 8).then(|| {
            // SAFETY: the mapping is page-aligned (so 8-aligned), at least 8 bytes long, and
            // lives while `region` does (to the end of this closure). An atomic load is the
            // only access: atomic loads of read-only memory are sound for lock-free types
            // (std::sync::atomic, "Atomic accesses to read-only memory"), and another process
            // writing the word meanwhile races only with an atomic.
            unsafe { (*ptr.cast::<AtomicU64>()).load(Ordering::Relaxed) }
        });
        return Found::Foreign { magic };
    }
    let raw = raw_header(&region);
    if raw.magic != layout::MAGIC {
        return Found::Foreign {
            magic: Some(raw.magic),
        };
    }
    let keep: KeepAlive = region.clone();
    // SAFETY: the mapping is page-aligned and `len` bytes long, and `keep` holds the region
    // (and so the mapping) for as long as the memory and anything made from it lives. The
    // mapping is read-only where `from_raw` asks for writable memory: this memory is only ever
    // given to `ringway_ring::inspect`, which reads the header and the registration table with
    // atomic loads and never attaches, stores or waits (sound on read-only memory, see above);
    // no endpoint is ever attached to it.
    let memory = match unsafe { RingMemory::from_raw(ptr, len, Some(keep)) } {
        Ok(memory) => memory,
        Err(error) => return Found::Broken { raw, error },
    };
    // The same liveness the endpoints use on each other (locks on the segment's fd, so a party
    // in another pid namespace is judged right), so `ls`, `stat` and `clean` agree with them.
    let liveness = ringway_channel::party_liveness(&region);
    match ringway_ring::inspect_with(&memory, &*liveness) {
        Ok(info) => Found::Ring(Box::new(Ring { info, raw })),
        Err(error) => Found::Broken { raw, error },
    }
}

fn raw_header(region: &Region) -> RawHeader {
    // SAFETY: the mapping is page-aligned (Header needs 128) and at least HEADER_LEN bytes
    // (checked by the caller), Header is `#[repr(C)]` atomics only, so any bytes are a valid
    // Header and other processes may write them concurrently; the reference does not outlive
    // `region`. Only atomic loads are made (sound on read-only memory, see `examine`).
    let header = unsafe { &*region.as_ptr().cast::<Header>() };
    let id = &header.identity;
    RawHeader {
        magic: id.magic.load(Ordering::Relaxed),
        version: id.version.load(Ordering::Relaxed),
        kind: id.kind.load(Ordering::Relaxed),
        flags: id.flags.load(Ordering::Relaxed),
        init: id.init.load(Ordering::Relaxed),
        not_empty_seq: header.not_empty.seq.load(Ordering::Relaxed),
        not_full_seq: header.not_full.seq.load(Ordering::Relaxed),
    }
}

/// Whether anybody still uses a ring: a registered producer or consumer alive, or its creator
/// (who may not have attached an endpoint yet).
pub(crate) fn in_use(info: &RingInfo) -> bool {
    info.producers
        .iter()
        .chain(&info.consumers)
        .any(|party| party.alive)
        || creator_alive(info)
}

/// Whether the creator is alive (its pid and the start time recorded in the header, so a
/// process that recycled the pid does not count).
pub(crate) fn creator_alive(info: &RingInfo) -> bool {
    info.creator_alive
}
