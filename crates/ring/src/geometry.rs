//! Ring configuration, the geometry derived from it, initialisation and the attach checks.
//!
//! The geometry is computed once, from a [`RingConfig`] by the creator or from the header by
//! an attaching process, and every later offset is derived from this local copy: a peer that
//! rewrites the header after attach changes nothing for us.

use std::time::{Duration, Instant};

use crate::error::{AttachError, Corruption, InitError, RingKind};
use crate::layout::{
    self, BROADCAST_MAX_READERS, FLAG_OVERWRITE, HEADER_LEN, INIT_READY, KIND_BROADCAST, KIND_SPSC,
    LABEL_MAX, MAGIC, MAX_PARTIES, MPMC_MAX_CAPACITY, MPMC_MAX_SLOT_SIZE, MPMC_MIN_CAPACITY,
    REC_HEADER_LEN, SPSC_MAX_CAPACITY, SPSC_MAX_MESSAGE, SPSC_MIN_CAPACITY, VERSION,
};
use crate::mem::RingMemory;
use crate::sync::Ordering::{Acquire, Relaxed, Release};
use crate::sync::fence;

/// Offset of the 8-byte block of the header that holds the 4-byte `init` word.
const INIT_OFFSET: u64 = 120;
#[cfg(not(ringway_loom))]
const _: () = assert!(core::mem::offset_of!(crate::layout::Identity, init) == INIT_OFFSET as usize);

/// What a broadcast writer does when the slot it must write next still holds a message a
/// reader has not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Policy {
    /// Wait for the slowest live reader (a reader that dies stops holding the writer back
    /// within the liveness interval). With no live reader attached the writer does not wait.
    /// The only policy of SPSC and MPMC rings.
    #[default]
    Block,
    /// Never wait: overwrite the oldest message; a reader that was lapped gets
    /// [`PopError::Lagged`](crate::PopError::Lagged) with the number it missed.
    Overwrite,
}

/// What to build: the kind of ring and its size.
///
/// # Examples
/// ```
/// use ringway_ring::RingConfig;
/// let spsc = RingConfig::spsc(1 << 20);
/// assert_eq!(spsc.geometry()?.max_message, (1 << 19) - 8);
/// let mpmc = RingConfig::mpmc(1024, 64).max_producers(4);
/// assert_eq!(mpmc.geometry()?.max_message, 64);
/// # Ok::<(), ringway_ring::InitError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingConfig {
    kind: RingKind,
    capacity: u64,
    slot_size: u32,
    max_producers: u32,
    max_consumers: u32,
    fingerprint: [u64; 2],
    label: String,
    users: u32,
    policy: Policy,
    history: u32,
}

impl RingConfig {
    /// An SPSC byte ring with a data area of `capacity` bytes (a power of two, `32 ..= 2^32`).
    /// It carries messages of up to `capacity / 2 - 8` bytes.
    #[must_use]
    pub fn spsc(capacity: u64) -> RingConfig {
        RingConfig {
            kind: RingKind::Spsc,
            capacity,
            slot_size: 0,
            max_producers: 1,
            max_consumers: 1,
            fingerprint: [0; 2],
            label: String::new(),
            users: 0,
            policy: Policy::Block,
            history: 0,
        }
    }

    /// An MPMC ring of `slots` slots (a power of two, `2 ..= 2^32`), each carrying up to
    /// `slot_size` bytes, with room for 32 producers and 32 consumers.
    #[must_use]
    pub fn mpmc(slots: u64, slot_size: u32) -> RingConfig {
        RingConfig {
            kind: RingKind::Mpmc,
            capacity: slots,
            slot_size,
            max_producers: 32,
            max_consumers: 32,
            fingerprint: [0; 2],
            label: String::new(),
            users: 0,
            policy: Policy::Block,
            history: 0,
        }
    }

    /// A broadcast ring of `slots` slots (a power of two, `2 ..= 2^32`), each carrying up to
    /// `slot_size` bytes, with one writer and room for 32 readers, [`Policy::Block`] and no
    /// history.
    ///
    /// # Examples
    /// ```
    /// use ringway_ring::{Policy, RingConfig};
    /// let config = RingConfig::broadcast(64, 48)
    ///     .max_readers(8)
    ///     .policy(Policy::Overwrite)
    ///     .history(16);
    /// let geometry = config.geometry()?;
    /// assert_eq!((geometry.max_consumers, geometry.history), (8, 16));
    /// assert_eq!(geometry.data_offset % 4096, 0, "readers can map the data read-only");
    /// # Ok::<(), ringway_ring::InitError>(())
    /// ```
    #[must_use]
    pub fn broadcast(slots: u64, slot_size: u32) -> RingConfig {
        RingConfig {
            kind: RingKind::Broadcast,
            max_producers: 1,
            ..RingConfig::mpmc(slots, slot_size)
        }
    }

    /// Broadcast: how many readers may be attached at once (`1 ..= 256`); the same as
    /// [`max_consumers`](RingConfig::max_consumers).
    #[must_use]
    pub fn max_readers(self, n: u32) -> RingConfig {
        self.max_consumers(n)
    }

    /// Broadcast: what the writer does when the slowest reader is a whole ring behind.
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> RingConfig {
        self.policy = policy;
        self
    }

    /// Broadcast: a reader that attaches late starts with the newest `k` messages still in
    /// the ring (`0 ..= slots - 1`; `0`, the default: with the next message published).
    #[must_use]
    pub fn history(mut self, k: u32) -> RingConfig {
        self.history = k;
        self
    }

    /// MPMC: how many producers may be attached at once (`1 ..= 256`).
    #[must_use]
    pub fn max_producers(mut self, n: u32) -> RingConfig {
        self.max_producers = n;
        self
    }

    /// MPMC: how many consumers may be attached at once (`1 ..= 256`).
    #[must_use]
    pub fn max_consumers(mut self, n: u32) -> RingConfig {
        self.max_consumers = n;
        self
    }

    /// A fingerprint stored in the header for the channel layer (the ring only keeps it).
    #[must_use]
    pub fn fingerprint(mut self, fingerprint: [u64; 2]) -> RingConfig {
        self.fingerprint = fingerprint;
        self
    }

    /// A label stored in the header for the channel layer (the message type's name), cut to
    /// 120 bytes at a character boundary.
    #[must_use]
    pub fn label(mut self, label: &str) -> RingConfig {
        let mut end = label.len().min(LABEL_MAX);
        while !label.is_char_boundary(end) {
            end -= 1;
        }
        self.label = label[..end].to_owned();
        self
    }

    /// The initial value of the header's `users` count (the creator counting itself before
    /// anyone can attach).
    #[must_use]
    pub fn users(mut self, users: u32) -> RingConfig {
        self.users = users;
        self
    }

    /// The kind of ring.
    #[must_use]
    pub fn kind(&self) -> RingKind {
        self.kind
    }

    /// The geometry this configuration gives.
    ///
    /// # Errors
    /// [`InitError::InvalidConfig`] naming the first value out of range.
    pub fn geometry(&self) -> Result<Geometry, InitError> {
        Geometry::compute(
            self.kind,
            self.capacity,
            self.slot_size,
            self.max_producers,
            self.max_consumers,
            self.policy,
            self.history,
        )
        .map_err(|(what, value)| InitError::InvalidConfig { what, value })
    }

    /// Bytes of memory the ring needs.
    ///
    /// # Errors
    /// As [`RingConfig::geometry`].
    pub fn required_len(&self) -> Result<usize, InitError> {
        let geometry = self.geometry()?;
        usize::try_from(geometry.total_len).map_err(|_| InitError::InvalidConfig {
            what: "ring size exceeds the address space",
            value: geometry.total_len,
        })
    }
}

/// The shape of a ring, derived from its four free parameters.
///
/// # Invariants
/// Every field is consistent with the others and with the rules of `docs/layout.md`:
/// `capacity` is a power of two in range, `data_offset` and `total_len` follow from the table
/// sizes and the data area, `max_message` from the capacity or slot size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// The kind of ring.
    pub kind: RingKind,
    /// SPSC: data bytes; MPMC: slots.
    pub capacity: u64,
    /// MPMC: payload bytes per slot; SPSC: 0.
    pub slot_size: u32,
    /// MPMC: bytes per slot; SPSC: 0.
    pub slot_stride: u64,
    /// Offset of the data area.
    pub data_offset: u64,
    /// Bytes from the start of the header to the end of the data area.
    pub total_len: u64,
    /// The largest payload.
    pub max_message: u32,
    /// Producer registration entries.
    pub max_producers: u32,
    /// Consumer registration entries (broadcast: readers).
    pub max_consumers: u32,
    /// Broadcast: the writer's policy; other kinds: [`Policy::Block`].
    pub policy: Policy,
    /// Broadcast: messages a late reader starts with; other kinds: 0.
    pub history: u32,
}

impl Geometry {
    /// The `flags` word of the header for this geometry.
    #[must_use]
    pub fn flags(&self) -> u32 {
        match self.policy {
            Policy::Overwrite => FLAG_OVERWRITE,
            Policy::Block => 0,
        }
    }

    /// `capacity - 1`: positions map to offsets or slots with `& mask`.
    #[must_use]
    pub fn mask(&self) -> u64 {
        self.capacity - 1
    }

    fn compute(
        kind: RingKind,
        capacity: u64,
        slot_size: u32,
        max_producers: u32,
        max_consumers: u32,
        policy: Policy,
        history: u32,
    ) -> Result<Geometry, (&'static str, u64)> {
        if !capacity.is_power_of_two() {
            return Err(("capacity must be a power of two", capacity));
        }
        if kind != RingKind::Broadcast && (policy != Policy::Block || history != 0) {
            return Err((
                "only broadcast rings have a policy and a history",
                u64::from(history),
            ));
        }
        let (slot_stride, data_len, max_message) = match kind {
            RingKind::Spsc => {
                if !(SPSC_MIN_CAPACITY..=SPSC_MAX_CAPACITY).contains(&capacity) {
                    return Err(("SPSC capacity must be in 32 ..= 2^32 bytes", capacity));
                }
                if slot_size != 0 {
                    return Err(("SPSC rings have no slot size", u64::from(slot_size)));
                }
                if max_producers != 1 || max_consumers != 1 {
                    return Err((
                        "SPSC rings have one producer and one consumer",
                        u64::from(max_producers.max(max_consumers)),
                    ));
                }
                let max = (capacity / 2 - REC_HEADER_LEN as u64).min(SPSC_MAX_MESSAGE);
                (0, capacity, max as u32)
            }
            RingKind::Mpmc => {
                if !(MPMC_MIN_CAPACITY..=MPMC_MAX_CAPACITY).contains(&capacity) {
                    return Err(("MPMC slot count must be in 2 ..= 2^32", capacity));
                }
                if slot_size > MPMC_MAX_SLOT_SIZE {
                    return Err((
                        "MPMC slot size must be at most 2^30 - 2",
                        u64::from(slot_size),
                    ));
                }
                for n in [max_producers, max_consumers] {
                    if !(1..=MAX_PARTIES).contains(&n) {
                        return Err((
                            "MPMC producer/consumer limits must be in 1 ..= 256",
                            u64::from(n),
                        ));
                    }
                }
                let stride = layout::mpmc_slot_stride(slot_size);
                let Some(data_len) = stride.checked_mul(capacity) else {
                    return Err(("MPMC ring size overflows", capacity));
                };
                (stride, data_len, slot_size)
            }
            RingKind::Broadcast => {
                if !(MPMC_MIN_CAPACITY..=MPMC_MAX_CAPACITY).contains(&capacity) {
                    return Err(("broadcast slot count must be in 2 ..= 2^32", capacity));
                }
                if slot_size > MPMC_MAX_SLOT_SIZE {
                    return Err((
                        "broadcast slot size must be at most 2^30 - 2",
                        u64::from(slot_size),
                    ));
                }
                if max_producers != 1 {
                    return Err(("broadcast rings have one writer", u64::from(max_producers)));
                }
                if !(1..=BROADCAST_MAX_READERS).contains(&max_consumers) {
                    return Err((
                        "broadcast reader limit must be in 1 ..= 256",
                        u64::from(max_consumers),
                    ));
                }
                if u64::from(history) >= capacity {
                    return Err((
                        "broadcast history must be below the slot count",
                        u64::from(history),
                    ));
                }
                let stride = layout::slot_stride(slot_size);
                let Some(data_len) = stride.checked_mul(capacity) else {
                    return Err(("broadcast ring size overflows", capacity));
                };
                (stride, data_len, slot_size)
            }
        };
        let data_offset = if kind == RingKind::Broadcast {
            layout::broadcast_data_offset(max_producers + max_consumers)
        } else {
            layout::data_offset(max_producers + max_consumers)
        };
        let Some(total_len) = data_offset.checked_add(data_len) else {
            return Err(("ring size overflows", data_len));
        };
        if isize::try_from(total_len).is_err() {
            return Err(("ring size exceeds the address space", total_len));
        }
        Ok(Geometry {
            kind,
            capacity,
            slot_size,
            slot_stride,
            data_offset,
            total_len,
            max_message,
            max_producers,
            max_consumers,
            policy,
            history,
        })
    }

    /// Reads and checks the geometry in an initialised header (every field read once).
    fn read(memory: &RingMemory, expected: Option<RingKind>) -> Result<Geometry, AttachError> {
        let id = &memory.mem.header().identity;
        let magic = id.magic.load(Relaxed);
        if magic != MAGIC {
            return Err(AttachError::BadMagic { found: magic });
        }
        let version = id.version.load(Relaxed);
        if version != VERSION {
            return Err(AttachError::BadVersion { found: version });
        }
        let kind_code = id.kind.load(Relaxed);
        let kind = match (RingKind::from_code(kind_code), expected) {
            (Some(kind), None) => kind,
            (Some(kind), Some(want)) if kind == want => kind,
            (_, Some(want)) => {
                return Err(AttachError::WrongKind {
                    found: kind_code,
                    expected: want,
                });
            }
            (None, None) => {
                return Err(AttachError::BadGeometry(Corruption::new(
                    "kind must be 1 (SPSC), 2 (MPMC) or 3 (broadcast)",
                    u64::from(kind_code),
                    u64::from(KIND_BROADCAST),
                )));
            }
        };
        let capacity = id.capacity.load(Relaxed);
        let slot_size = id.slot_size.load(Relaxed);
        let max_producers = id.max_producers.load(Relaxed);
        let max_consumers = id.max_consumers.load(Relaxed);
        let flags = id.flags.load(Relaxed);
        let history = id.history.load(Relaxed);
        // Every bit of `flags` but the broadcast policy is reserved; an SPSC or MPMC ring has
        // none (`compute` refuses a policy or a history on them).
        if flags & !FLAG_OVERWRITE != 0 {
            return Err(AttachError::BadGeometry(Corruption::new(
                "flags may only carry bit 0 (broadcast overwrite)",
                u64::from(flags),
                u64::from(FLAG_OVERWRITE),
            )));
        }
        let policy = if flags & FLAG_OVERWRITE != 0 {
            Policy::Overwrite
        } else {
            Policy::Block
        };
        let geometry = Geometry::compute(
            kind,
            capacity,
            slot_size,
            max_producers,
            max_consumers,
            policy,
            history,
        )
        .map_err(|(what, value)| AttachError::BadGeometry(Corruption::new(what, value, 0)))?;
        let derived: [(&'static str, u64, u64); 4] = [
            (
                "slot_stride must equal align_up(16 + slot_size, 64) (MPMC) or 8 (broadcast)",
                u64::from(id.slot_stride.load(Relaxed)),
                geometry.slot_stride,
            ),
            (
                "data_offset must equal 1024 + 128 * (max_producers + max_consumers) \
                 (broadcast: rounded up to 4096)",
                id.data_offset.load(Relaxed),
                geometry.data_offset,
            ),
            (
                "total_len must equal data_offset + data area",
                id.total_len.load(Relaxed),
                geometry.total_len,
            ),
            (
                "max_message must follow from the capacity or slot size",
                u64::from(id.max_message.load(Relaxed)),
                u64::from(geometry.max_message),
            ),
        ];
        for (what, found, want) in derived {
            if found != want {
                return Err(AttachError::BadGeometry(Corruption::new(what, found, want)));
            }
        }
        if geometry.total_len > memory.len() as u64 {
            return Err(AttachError::TooSmall {
                need: geometry.total_len,
                have: memory.len() as u64,
            });
        }
        Ok(geometry)
    }
}

/// Initialises a ring in `memory` and returns its geometry.
///
/// The creator must be the only process writing the memory until this returns; processes
/// attaching meanwhile wait for the `init` word, which is stored last.
///
/// # Errors
/// [`InitError::InvalidConfig`], [`InitError::TooSmall`] if the memory cannot hold the ring,
/// [`InitError::AlreadyInitialized`] if it already holds one.
///
/// # Examples
/// ```
/// use ringway_ring::{RingConfig, RingMemory, init};
/// let config = RingConfig::spsc(4096);
/// let memory = RingMemory::zeroed(config.required_len()?);
/// let geometry = init(&memory, &config)?;
/// assert_eq!(geometry.capacity, 4096);
/// assert!(init(&memory, &config).is_err(), "a ring is initialised once");
/// # Ok::<(), ringway_ring::InitError>(())
/// ```
pub fn init(memory: &RingMemory, config: &RingConfig) -> Result<Geometry, InitError> {
    let geometry = config.geometry()?;
    if geometry.total_len > memory.len() as u64 {
        return Err(InitError::TooSmall {
            need: geometry.total_len,
            have: memory.len() as u64,
        });
    }
    let mem = &memory.mem;
    let header = mem.header();
    if header.identity.init.load(Acquire) != 0 {
        return Err(InitError::AlreadyInitialized);
    }
    // Header and table: all zero (memory fresh from the OS already is; this is for memory
    // reused by a caller), then the identity. The 8 bytes holding the 4-byte `init` word are
    // skipped: an opener may be polling it with 4-byte loads, and an 8-byte store over it
    // would be a mixed-size race. It reads 0 (checked above), and its neighbour is reserved.
    mem.zero(0, INIT_OFFSET);
    mem.zero(INIT_OFFSET + 8, geometry.data_offset - INIT_OFFSET - 8);
    header.identity.reserved2.store(0, Relaxed);
    let id = &header.identity;
    id.magic.store(MAGIC, Relaxed);
    id.version.store(VERSION, Relaxed);
    id.kind.store(geometry.kind.code(), Relaxed);
    id.total_len.store(geometry.total_len, Relaxed);
    id.capacity.store(geometry.capacity, Relaxed);
    id.slot_size.store(geometry.slot_size, Relaxed);
    id.slot_stride.store(geometry.slot_stride as u32, Relaxed);
    id.data_offset.store(geometry.data_offset, Relaxed);
    id.max_message.store(geometry.max_message, Relaxed);
    id.max_producers.store(geometry.max_producers, Relaxed);
    id.max_consumers.store(geometry.max_consumers, Relaxed);
    id.flags.store(geometry.flags(), Relaxed);
    id.history.store(geometry.history, Relaxed);
    id.fingerprint[0].store(config.fingerprint[0], Relaxed);
    id.fingerprint[1].store(config.fingerprint[1], Relaxed);
    let me = crate::proc::ProcessId::current();
    id.creator_pid.store(me.pid, Relaxed);
    id.creator_start.store(me.start_time, Relaxed);
    id.creator_pidns
        .store(crate::proc::pid_namespace(), Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    id.created_ns.store(now, Relaxed);
    write_label(memory, &config.label);
    header.counters.users.store(config.users, Relaxed);
    // Data area.
    match geometry.kind {
        // Only the first header word must be zero (rule 3 of the in-band commit).
        RingKind::Spsc => mem.word(geometry.data_offset).store(0, Relaxed),
        RingKind::Mpmc => {
            for i in 0..geometry.capacity {
                let slot = geometry.data_offset + i * geometry.slot_stride;
                mem.word(slot).store(i, Relaxed);
                mem.word(slot + 8).store(0, Relaxed);
            }
        }
        // Every stamp `0` (never written), so no reader takes a slot for a message.
        RingKind::Broadcast => {
            for i in 0..geometry.capacity {
                let slot = geometry.data_offset + i * geometry.slot_stride;
                mem.word(slot).store(0, Relaxed);
                mem.word(slot + 8).store(0, Relaxed);
            }
        }
    }
    // SYNC(init): Release publishes every store above; pairs with the Acquire load in
    // `wait_ready` (attach) and in `inspect`.
    id.init.store(INIT_READY, Release);
    Ok(geometry)
}

/// Waits (bounded) for the `init` word, then reads and checks the geometry.
pub(crate) fn attach_geometry(
    memory: &RingMemory,
    expected: RingKind,
    timeout: Duration,
) -> Result<(Geometry, Identity), AttachError> {
    read_initialized(memory, Some(expected), timeout)
}

/// Waits up to `timeout` for the creator to finish initialising the ring, then reads and
/// checks its geometry and identity, without attaching: for a layer that must check what the
/// ring carries before taking a side of it.
///
/// # Errors
/// As [`crate::spsc::Producer::attach`], except the registration errors.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ringway_ring::{RingConfig, RingKind, RingMemory, wait_initialized};
/// let memory = RingMemory::heap(&RingConfig::mpmc(8, 32).label("jobs"))?;
/// let (geometry, identity) = wait_initialized(&memory, Duration::from_secs(1))?;
/// assert_eq!(geometry.kind, RingKind::Mpmc);
/// assert_eq!(identity.label, "jobs");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn wait_initialized(
    memory: &RingMemory,
    timeout: Duration,
) -> Result<(Geometry, Identity), AttachError> {
    read_initialized(memory, None, timeout)
}

fn read_initialized(
    memory: &RingMemory,
    expected: Option<RingKind>,
    timeout: Duration,
) -> Result<(Geometry, Identity), AttachError> {
    wait_ready(memory, timeout)?;
    let geometry = Geometry::read(memory, expected)?;
    Ok((
        geometry,
        Identity {
            fingerprint: read_fingerprint(memory),
            label: read_label(memory),
        },
    ))
}

/// What the creator recorded about the messages: the channel layer's fingerprint and label.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// The fingerprint.
    pub fingerprint: [u64; 2],
    /// The label.
    pub label: String,
}

fn write_label(memory: &RingMemory, label: &str) {
    let block = &memory.mem.header().label;
    let bytes = label.as_bytes();
    for (i, word) in block.bytes.iter().enumerate() {
        let mut chunk = [0u8; 8];
        let start = (i * 8).min(bytes.len());
        let end = (start + 8).min(bytes.len());
        chunk[..end - start].copy_from_slice(&bytes[start..end]);
        word.store(u64::from_le_bytes(chunk), Relaxed);
    }
    block.len.store(bytes.len() as u32, Relaxed);
}

/// Reads the label: the length is clamped to the block and the text decoded lossily, since a
/// peer may have written anything there.
fn read_label(memory: &RingMemory) -> String {
    let block = &memory.mem.header().label;
    let len = (block.len.load(Relaxed) as usize).min(LABEL_MAX);
    let mut bytes = Vec::with_capacity(LABEL_MAX);
    for word in &block.bytes {
        bytes.extend_from_slice(&word.load(Relaxed).to_le_bytes());
    }
    bytes.truncate(len);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn read_fingerprint(memory: &RingMemory) -> [u64; 2] {
    let fp = &memory.mem.header().identity.fingerprint;
    [fp[0].load(Relaxed), fp[1].load(Relaxed)]
}

fn wait_ready(memory: &RingMemory, timeout: Duration) -> Result<(), AttachError> {
    let id = &memory.mem.header().identity;
    let start = Instant::now();
    let mut pause = Duration::from_micros(50);
    loop {
        // SYNC(init): the Acquire fence pairs with the Release store in `init`. A load and a
        // fence rather than an Acquire load, so this works on read-only mappings too (std
        // promises only Relaxed loads there).
        if id.init.load(Relaxed) == INIT_READY {
            fence(Acquire);
            return Ok(());
        }
        // Memory that carries some other magic is not a ring being created: fail at once.
        let magic = id.magic.load(Relaxed);
        if magic != 0 && magic != MAGIC {
            return Err(AttachError::BadMagic { found: magic });
        }
        let waited = start.elapsed();
        if cfg!(ringway_loom) || waited >= timeout {
            return Err(AttachError::NotInitialized { waited });
        }
        std::thread::sleep(pause.min(timeout - waited));
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// A snapshot of a ring's header, decoded and checked, for inspection tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingInfo {
    /// The geometry.
    pub geometry: Geometry,
    /// The channel layer's type fingerprint.
    pub fingerprint: [u64; 2],
    /// The channel layer's label (the message type's name).
    pub label: String,
    /// Pid of the creator.
    pub creator_pid: u32,
    /// The creator's start time, to tell it from a process that recycled its pid (`0`:
    /// unknown).
    pub creator_start_time: u64,
    /// Whether the creator is alive now (pid and start time).
    pub creator_alive: bool,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_ns: u64,
    /// SPSC: producer's published position; MPMC: next claim position.
    pub tail: u64,
    /// SPSC: consumer's released position; MPMC: next claim position.
    pub head: u64,
    /// MPMC: slots skipped for dead producers.
    pub lost: u64,
    /// MPMC: slots reclaimed from dead consumers.
    pub abandoned: u64,
    /// Endpoints attached, as counted by the channel layer.
    pub users: u32,
    /// Consumers asleep or about to sleep.
    pub consumers_waiting: u32,
    /// Producers asleep or about to sleep.
    pub producers_waiting: u32,
    /// Registered producers (entries ever used).
    pub producers: Vec<crate::registry::PartyInfo>,
    /// Registered consumers (entries ever used).
    pub consumers: Vec<crate::registry::PartyInfo>,
}

impl RingInfo {
    /// Messages (MPMC) or bytes (SPSC) committed and not yet released, as far as the
    /// published indices tell (SPSC publishes them lazily, so this is approximate).
    #[must_use]
    pub fn fill(&self) -> u64 {
        if self.geometry.kind == crate::RingKind::Broadcast {
            // The slowest live reader's backlog (readers keep their own cursors).
            return self
                .consumers
                .iter()
                .filter(|r| r.alive)
                .map(|r| self.tail.saturating_sub(r.cursor))
                .max()
                .unwrap_or(0)
                .min(self.geometry.capacity);
        }
        self.tail.saturating_sub(self.head)
    }
}

/// Reads a ring's header without attaching: for `ringway ls`/`stat`.
///
/// Returns at once (no waiting) if the ring is not initialised.
///
/// # Errors
/// Any [`AttachError`] describing why the bytes are not a valid ring.
pub fn inspect(memory: &RingMemory) -> Result<RingInfo, AttachError> {
    inspect_with(memory, &crate::proc::PidLiveness)
}

/// [`inspect`], judging the parties with `liveness` (the one the endpoints use, so that a tool
/// sees parties alive or dead exactly as they see each other).
///
/// # Errors
/// As [`inspect`].
pub fn inspect_with(
    memory: &RingMemory,
    liveness: &dyn crate::proc::Liveness,
) -> Result<RingInfo, AttachError> {
    let header = memory.mem.header();
    // SYNC(init): the Acquire fence pairs with the Release store in `init`; a load and a fence
    // because tools inspect read-only mappings, where std promises only Relaxed loads.
    let init = header.identity.init.load(Relaxed);
    fence(Acquire);
    if init != INIT_READY {
        let magic = header.identity.magic.load(Relaxed);
        if magic != MAGIC {
            return Err(AttachError::BadMagic { found: magic });
        }
        return Err(AttachError::NotInitialized {
            waited: Duration::ZERO,
        });
    }
    let geometry = Geometry::read(memory, None)?;
    let (producers, consumers) = crate::registry::parties(memory, &geometry, liveness);
    let creator_pid = header.identity.creator_pid.load(Relaxed);
    let creator_start_time = header.identity.creator_start.load(Relaxed);
    Ok(RingInfo {
        geometry,
        fingerprint: read_fingerprint(memory),
        label: read_label(memory),
        creator_pid,
        creator_start_time,
        creator_alive: liveness.creator_alive(&crate::proc::Party {
            index: u32::MAX,
            pid: creator_pid,
            start_time: creator_start_time,
            pidns: header.identity.creator_pidns.load(Relaxed),
        }),
        created_ns: header.identity.created_ns.load(Relaxed),
        tail: header.producer.tail.load(Relaxed),
        head: header.consumer.head.load(Relaxed),
        lost: header.counters.lost.load(Relaxed),
        abandoned: header.counters.abandoned.load(Relaxed),
        users: header.counters.users.load(Relaxed),
        consumers_waiting: header.not_empty.waiters.load(Relaxed),
        producers_waiting: header.not_full.waiters.load(Relaxed),
        producers,
        consumers,
    })
}

/// `true` if the header's first bytes carry ringway's magic (a cheap pre-check for tools that
/// scan segments of unknown origin). The memory must hold at least 8 bytes.
#[must_use]
pub fn has_magic(memory: &RingMemory) -> bool {
    memory.mem.header().identity.magic.load(Relaxed) == MAGIC
}

const _: () = assert!(KIND_SPSC == 1 && HEADER_LEN == 1024);

#[cfg(all(test, not(ringway_loom)))]
mod tests {
    use super::*;

    #[test]
    fn spsc_geometry_edges() {
        let g = RingConfig::spsc(32).geometry().unwrap();
        assert_eq!(g.max_message, 8);
        assert_eq!(g.data_offset, 1280);
        assert_eq!(g.total_len, 1280 + 32);
        let g = RingConfig::spsc(1 << 32).geometry().unwrap();
        assert_eq!(
            u64::from(g.max_message),
            (1 << 30) - 1,
            "capped by the length field"
        );
        for bad in [0, 16, 48, 1 << 33] {
            assert!(matches!(
                RingConfig::spsc(bad).geometry(),
                Err(InitError::InvalidConfig { .. })
            ));
        }
    }

    #[test]
    fn mpmc_geometry_edges() {
        let g = RingConfig::mpmc(2, 0)
            .max_producers(1)
            .max_consumers(1)
            .geometry()
            .unwrap();
        // A slot is at least a cache line (layout version 4).
        assert_eq!(g.slot_stride, 64);
        assert_eq!(g.total_len, 1280 + 128);
        assert!(RingConfig::mpmc(1, 8).geometry().is_err());
        assert!(RingConfig::mpmc(4, 8).max_producers(0).geometry().is_err());
        assert!(
            RingConfig::mpmc(4, 8)
                .max_consumers(257)
                .geometry()
                .is_err()
        );
        assert!(
            RingConfig::mpmc(4, MPMC_MAX_SLOT_SIZE + 1)
                .geometry()
                .is_err()
        );
    }

    #[test]
    fn attach_rejects_each_geometry_field() {
        let config = RingConfig::mpmc(8, 24).max_producers(2).max_consumers(2);
        let fields: [(usize, u64); 6] = [
            (36, 999),   // slot_stride
            (40, 4096),  // data_offset
            (16, 99999), // total_len
            (48, 7),     // max_message
            (60, 1),     // flags
            (24, 3),     // capacity not a power of two
        ];
        for (offset, value) in fields {
            let memory = RingMemory::heap(&config).unwrap();
            let mem = &memory.mem;
            if offset == 16 || offset == 24 || offset == 40 {
                mem.word(offset as u64).store(value, Relaxed);
            } else {
                let word = mem.word((offset & !7) as u64);
                let shift = (offset & 7) * 8;
                let old = word.load(Relaxed);
                word.store((old & !(0xFFFF_FFFF << shift)) | (value << shift), Relaxed);
            }
            let err = Geometry::read(&memory, Some(RingKind::Mpmc)).unwrap_err();
            assert!(
                matches!(err, AttachError::BadGeometry(_)),
                "offset {offset}: {err:?}"
            );
        }
    }

    #[test]
    fn attach_rejects_magic_version_kind_and_short_memory() {
        let config = RingConfig::spsc(64);
        let memory = RingMemory::heap(&config).unwrap();
        assert!(matches!(
            Geometry::read(&memory, Some(RingKind::Mpmc)),
            Err(AttachError::WrongKind { found: 1, .. })
        ));
        // The next version, and the previous one (version 1 had no `pidns` in its entries and
        // resolved entries before taking them: a v2 process must not share a ring with it).
        for other in [VERSION + 1, VERSION - 1] {
            memory
                .mem
                .word(8)
                .store(u64::from(other) | (1 << 32), Relaxed);
            assert!(matches!(
                Geometry::read(&memory, Some(RingKind::Spsc)),
                Err(AttachError::BadVersion { found }) if found == other
            ));
        }
        memory.mem.word(0).store(0x1234, Relaxed);
        assert!(matches!(
            Geometry::read(&memory, Some(RingKind::Spsc)),
            Err(AttachError::BadMagic { found: 0x1234 })
        ));
        // A ring whose header claims more bytes than the memory has.
        let big = RingConfig::spsc(1 << 16);
        let memory = RingMemory::zeroed(2048);
        assert!(matches!(
            init(&memory, &big),
            Err(InitError::TooSmall { .. })
        ));
    }

    #[test]
    fn labels_are_cut_at_char_boundaries_and_read_defensively() {
        let long = "é".repeat(100); // 200 bytes
        let config = RingConfig::spsc(64).label(&long);
        let memory = RingMemory::heap(&config).unwrap();
        let label = inspect(&memory).unwrap().label;
        assert_eq!(label, "é".repeat(60));
        // A hostile length and invalid UTF-8.
        let block = &memory.mem.header().label;
        block.len.store(u32::MAX, Relaxed);
        block.bytes[0].store(u64::MAX, Relaxed);
        let label = inspect(&memory).unwrap().label;
        assert!(label.starts_with('\u{FFFD}'));
    }

    #[test]
    fn attach_waits_for_init_then_times_out() {
        let memory = RingMemory::zeroed(4096);
        let start = Instant::now();
        let err = attach_geometry(&memory, RingKind::Spsc, Duration::from_millis(30)).unwrap_err();
        assert!(matches!(err, AttachError::NotInitialized { .. }));
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn inspect_reports_the_header() {
        let config = RingConfig::spsc(256)
            .fingerprint([7, 9])
            .label("my::Tick")
            .users(1);
        let memory = RingMemory::heap(&config).unwrap();
        let info = inspect(&memory).unwrap();
        assert_eq!(info.geometry, config.geometry().unwrap());
        assert_eq!(info.fingerprint, [7, 9]);
        assert_eq!(info.label, "my::Tick");
        assert_eq!(info.users, 1);
        assert_eq!(memory.add_user(), 2);
        assert_eq!(memory.remove_user(), 1);
        assert_eq!(memory.remove_user(), 0);
        assert_eq!(memory.remove_user(), 0, "never below zero");
        assert_eq!(info.creator_pid, std::process::id());
        assert_eq!(
            info.creator_start_time,
            crate::ProcessId::current().start_time
        );
        assert!(info.creator_alive);
        assert!(info.producers.is_empty() && info.consumers.is_empty());
        assert!(has_magic(&memory));
        assert!(!has_magic(&RingMemory::zeroed(1024)));
    }
}
