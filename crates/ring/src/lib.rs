//! Lock-free rings laid out in shared memory: an SPSC byte ring for variable-size messages, an
//! MPMC slot ring for many producers and consumers, and a broadcast ring whose every reader
//! reads every message, safe against a hostile peer.
//!
//! A ring works on a byte range it does not own ([`RingMemory`]): a mapping shared between
//! processes (from `ringway-region`), or heap memory for threads, tests and benchmarks. The
//! byte layout is specified once, in `docs/layout.md`, which [`layout`] carries as its
//! documentation next to the matching `#[repr(C)]` structs. Nothing on the fast path makes a
//! system call; a side that has to wait spins, yields, then sleeps on a futex word of the
//! header.
//!
//! - [`spsc`]: one producer, one consumer, variable-size contiguous records with in-band
//!   commit ([`spsc::Producer`], [`spsc::Consumer`], in-place [`spsc::Grant`] and
//!   [`spsc::ReadGrant`]).
//! - [`mpmc`]: many producers and consumers, fixed-size slots, recovery of slots held by dead
//!   processes ([`mpmc::Producer`], [`mpmc::Consumer`]).
//! - [`broadcast`]: one writer, many readers, each reading every message, with a per-ring
//!   [`Policy`] (the writer waits for the slowest reader, or overwrites and the reader learns
//!   it [`Lagged`](PopError::Lagged)) and optional history for late readers
//!   ([`broadcast::Writer`], [`broadcast::Reader`], in-place [`broadcast::ReadGrant`]).
//! - [`RingConfig`], [`init`], [`Geometry`]: create a ring; [`inspect`] reads one without
//!   attaching.
//! - [`AttachOptions`], [`WaitStrategy`]: how endpoints attach and wait.
//! - [`select`]: wait for the first of many endpoints ([`select::Select`] over
//!   [`select::Watch`]es, `futex_waitv` across processes).
//! - [`layout`]: the byte-level specification.
//! - Errors: [`InitError`], [`AttachError`], [`PushError`], [`PopError`], [`Corruption`].
//!
//! # Examples
//!
//! ```
//! use ringway_ring::{AttachOptions, RingConfig, RingMemory, spsc};
//!
//! // In real use the memory is a shared mapping; here it is on the heap.
//! let memory = RingMemory::heap(&RingConfig::spsc(64 * 1024))?;
//! let opts = AttachOptions::new();
//! let mut producer = spsc::Producer::attach(&memory, &opts)?;
//! let mut consumer = spsc::Consumer::attach(&memory, &opts)?;
//!
//! let sender = std::thread::spawn(move || {
//!     for i in 0u32..1000 {
//!         producer.push_blocking(&i.to_le_bytes()).unwrap();
//!     }
//! });
//! let mut buf = Vec::new();
//! for i in 0u32..1000 {
//!     consumer.pop_timeout(&mut buf, std::time::Duration::from_secs(10))?;
//!     assert_eq!(buf, i.to_le_bytes());
//! }
//! sender.join().unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Safety model
//!
//! The process on the other side of the mapping is not trusted: it may be buggy, crashed
//! mid-write, or hostile, and it can write any byte of the ring at any time.
//!
//! - **It cannot make this process crash, panic, read or write out of bounds, or loop without
//!   bound.** Geometry is read once at attach and every offset is computed from
//!   that local copy with `% capacity`. Every index, length and flag read from shared memory
//!   is read once into a local and checked; a violation is [`Corrupted`](PopError::Corrupted).
//!   Retry loops are bounded. No `&`/`&mut` is ever formed over shared bytes except to atomics
//!   (all header, table and index fields are atomics); payloads are copied through raw
//!   pointers after the Acquire that publishes them. The only way to get a slice over shared
//!   bytes is an `unsafe` method whose contract names the trust it needs.
//! - **Undefined behaviour**: see *Data races on payload bytes* below for the one residual
//!   question the Rust memory model leaves open.
//! - **It can** garble, drop or withhold its own messages, stall the ring, and report lies in
//!   monitoring fields. It can also fake a live registration (pid 1 with init's start time),
//!   so a call with no deadline (`pop_blocking`, `push_blocking`) may wait for ever on a
//!   hostile peer: with peers you do not trust, use the `_timeout` calls.
//! - **Crashes** are detected through the registration table on every endpoint's slow path,
//!   run at most once per liveness interval by whichever call finds the ring empty or full, so
//!   the fast path pays nothing and a polling caller detects a crash as fast as a blocked one.
//!   Who is alive is a [`Liveness`]: by default the pid and start time, for parties in this pid
//!   namespace ([`PidLiveness`]); the layer that maps the ring can supply a better signal (the
//!   channel layer uses locks the kernel drops when a process dies, whatever its namespace).
//!   In an MPMC ring a slot claimed by a dead process is recovered (see `docs/layout.md`,
//!   *Dead claimants*); an SPSC side whose endpoint left or died can be attached again.
//! - **Truncation** of the mapping by a peer: the layer that mapped it tells the ring how to
//!   notice ([`RingMemory::with_truncation_check`]); a message that touched a page lost to a
//!   truncation is never published or delivered as `Ok`, and every end reports
//!   `Corrupted` from its slow path.
//!
//! # Feature flags
//!
//! None. Under `RUSTFLAGS="--cfg ringway_loom"` the crate swaps its atomics for loom's and its
//! storage for a heap model, for the model-checking tests in `tests/loom.rs`.

#![deny(unsafe_op_in_unsafe_fn)]

mod barrier;
pub mod broadcast;
mod clock;
mod cpu;
mod endpoint;
mod error;
#[cfg(not(ringway_loom))]
mod futex;
mod geometry;
mod interrupt;
pub mod layout;
mod mem;
pub mod mpmc;
mod pad;
mod proc;
mod registry;
pub mod select;
pub mod spsc;
mod sync;
mod wait;

pub use error::{AttachError, Corruption, InitError, PopError, PushError, RingKind, Side};
pub use geometry::{
    Geometry, Identity, Policy, RingConfig, RingInfo, has_magic, init, inspect, inspect_with,
    wait_initialized,
};
pub use interrupt::Interrupt;
pub use mem::{KeepAlive, RingMemory, Truncated, TruncationCheck};
pub use pad::Block128;
pub use proc::{
    Liveness, LivenessProbe, Party, PidLiveness, ProcessId, Token, is_alive, pid_judgeable,
    pid_namespace,
};
pub use registry::{PartyInfo, PartyState, PeerState};
pub use wait::{AttachOptions, Wait, WaitStrategy};
