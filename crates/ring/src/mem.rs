//! Where a ring's bytes live: a byte range the ring does not own.
//!
//! In a real build, [`RingMemory`] is a pointer and a length (a shared mapping, or a heap
//! buffer for in-process use and tests), and every field is reached by casting an offset to an
//! atomic. Under `--cfg ringway_loom` it is a heap *model* of the same layout made of loom's
//! atomics, because loom's atomics cannot live in raw bytes; the ring algorithms use the same
//! accessors (`header`, `entry`, `word`, `copy_in`, `copy_out`, `futex_*`) either way.
//!
//! # Invariants
//! - The memory starts on a [`RING_ALIGN`] boundary and is at least [`HEADER_LEN`] bytes long.
//! - It stays mapped and valid for reads and writes as long as any `Mem` clone lives (the
//!   `keep` handle, or the caller's promise to [`RingMemory::from_raw`]).
//! - Other processes may write any byte at any time. Nothing here hands out a `&`/`&mut` to
//!   anything but atomics; payload bytes are only copied through raw pointers.

#[cfg(not(ringway_loom))]
use core::ptr::NonNull;
use std::any::Any;
use std::sync::Arc;
#[cfg(not(ringway_loom))]
use std::time::Duration;

#[cfg(not(ringway_loom))]
use crate::error::AttachError;
use crate::error::Corruption;
use crate::layout::{Entry, Header};
#[cfg(not(ringway_loom))]
use crate::layout::{HEADER_LEN, RING_ALIGN, TABLE_OFFSET};
use crate::sync::{AtomicU32, AtomicU64};

/// The futex words of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitWord {
    /// Consumers wait here for data.
    NotEmpty,
    /// Producers wait here for space.
    NotFull,
}

/// Something that keeps the memory under a [`RingMemory`] alive (a mapping, a buffer).
pub type KeepAlive = Arc<dyn Any + Send + Sync>;

/// The object under a mapping no longer backs all of it: a peer truncated it.
///
/// Reported by the check a [`RingMemory`] is given with
/// [`with_truncation_check`](RingMemory::with_truncation_check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated {
    /// The object's size now, in bytes.
    pub size: u64,
    /// The length this process mapped.
    pub mapped: u64,
    /// Pages of the mapping this process found truncated and replaced by zeros so far.
    pub faults: u64,
}

/// The slow-path check of [`RingMemory::with_truncation_check`].
pub type TruncationCheck = Arc<dyn Fn() -> Option<Truncated> + Send + Sync>;

impl Truncated {
    // Under loom the memory model has no truncation check to report from.
    #[cfg_attr(ringway_loom, allow(dead_code))]
    pub(crate) fn corruption(self) -> Corruption {
        if self.size < self.mapped {
            Corruption::new(
                "the shared object was truncated under this mapping (a peer called ftruncate): \
                 the lost pages read as zeros in this process only (a sealed memfd prevents it)",
                self.size,
                self.mapped,
            )
        } else {
            Corruption::new(
                "pages of this mapping were truncated away and replaced by zeros in this process \
                 (the object was truncated, and maybe extended again since)",
                self.faults,
                0,
            )
        }
    }
}

/// The bytes a ring lives in, plus whatever keeps them alive.
///
/// Cloning is cheap (a pointer and a reference count); every clone refers to the same bytes.
/// Build one over a shared mapping with [`RingMemory::from_raw`], or on the heap with
/// [`RingMemory::heap`] for in-process use.
#[derive(Clone)]
pub struct RingMemory {
    pub(crate) mem: Mem,
}

impl core::fmt::Debug for RingMemory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RingMemory")
            .field("len", &self.mem.len())
            .finish_non_exhaustive()
    }
}

impl RingMemory {
    /// The length of the byte range.
    #[must_use]
    pub fn len(&self) -> usize {
        self.mem.len()
    }

    /// Always `false`: a ring memory holds at least a header.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Counts one more user in the header's `users` field (channel-layer bookkeeping, so the
    /// last endpoint to leave can remove a named ring). Returns the new count.
    pub fn add_user(&self) -> u32 {
        let users = &self.mem.header().counters.users;
        users
            .fetch_add(1, crate::sync::Ordering::AcqRel)
            .wrapping_add(1)
    }

    /// Counts one user fewer; returns how many remain. Never goes below zero, whatever a peer
    /// wrote there.
    pub fn remove_user(&self) -> u32 {
        let users = &self.mem.header().counters.users;
        let mut current = users.load(crate::sync::Ordering::Acquire);
        loop {
            let next = current.saturating_sub(1);
            match users.compare_exchange_weak(
                current,
                next,
                crate::sync::Ordering::AcqRel,
                crate::sync::Ordering::Acquire,
            ) {
                Ok(_) => return next,
                Err(seen) => current = seen,
            }
        }
    }
}

#[cfg(not(ringway_loom))]
impl RingMemory {
    /// Wraps a byte range that other processes may share.
    ///
    /// `keep` is held by every endpoint attached to this memory and dropped with the last one:
    /// pass the owner of the mapping (for example an `Arc` of a `ringway_region::Region`).
    ///
    /// # Errors
    /// [`AttachError::Misaligned`] if `ptr` is not 128-byte aligned, [`AttachError::TooSmall`]
    /// if `len` cannot hold the 1024-byte header.
    ///
    /// # Safety
    /// - `ptr` must be valid for reads and writes of `len` bytes for as long as any clone of the
    ///   returned value, or any endpoint attached to it, lives (typically guaranteed by `keep`).
    ///   A mapping that is only readable is allowed if nothing but [`crate::inspect`] and
    ///   [`crate::has_magic`] is ever called on it: those only load.
    /// - The bytes must not be accessed through Rust references (`&[u8]`, `&mut [u8]`)
    ///   elsewhere in this process while the ring uses them; other *processes* may write them
    ///   at any time, which the ring is built to survive.
    pub unsafe fn from_raw(
        ptr: *mut u8,
        len: usize,
        keep: Option<KeepAlive>,
    ) -> Result<RingMemory, AttachError> {
        let Some(base) = NonNull::new(ptr) else {
            return Err(AttachError::Misaligned { addr: 0 });
        };
        if base.as_ptr().addr() % RING_ALIGN != 0 {
            return Err(AttachError::Misaligned {
                addr: base.as_ptr().addr(),
            });
        }
        if len < HEADER_LEN {
            return Err(AttachError::TooSmall {
                need: HEADER_LEN as u64,
                have: len as u64,
            });
        }
        Ok(RingMemory {
            mem: Mem {
                base,
                len,
                _keep: keep,
                faults: None,
                check: None,
            },
        })
    }

    /// Allocates `len` zeroed, 128-byte aligned bytes on the heap (not yet a ring: call
    /// [`crate::init`], or use [`RingMemory::heap`]).
    ///
    /// Useful for in-process rings, tests, and inspecting arbitrary bytes as a ring.
    ///
    /// # Panics
    /// If `len` is smaller than the 1024-byte header or the allocation fails.
    #[must_use]
    pub fn zeroed(len: usize) -> RingMemory {
        assert!(
            len >= HEADER_LEN,
            "ring memory needs at least {HEADER_LEN} bytes"
        );
        let buf = Arc::new(HeapBuf::new(len));
        let ptr = buf.ptr.as_ptr();
        let keep: KeepAlive = buf;
        // SAFETY: `ptr` is a fresh allocation of `len` bytes aligned to RING_ALIGN, owned by
        // `keep`, which every clone of the memory holds; nothing else references it.
        unsafe { RingMemory::from_raw(ptr, len, Some(keep)) }
            .expect("a fresh aligned allocation of at least HEADER_LEN bytes is valid ring memory")
    }

    /// The start of the byte range.
    #[must_use]
    pub fn as_ptr(&self) -> *mut u8 {
        self.mem.base.as_ptr()
    }

    /// Tells the ring how to notice that the object under the mapping was truncated by a
    /// peer (the layer that mapped it knows; the ring does not).
    ///
    /// - `faults`: a counter that this process's `SIGBUS` guard increments whenever it
    ///   replaces a truncated page of this mapping with zeros. Every copy into or out of the
    ///   ring reads it afterwards (one load of a process-private word), so a message that
    ///   touched a replaced page is never published or delivered as `Ok`: the operation
    ///   reports [`Corrupted`](crate::PopError::Corrupted) instead, and so does every later one.
    /// - `check`: run on every endpoint's slow path (once per liveness interval, when the ring
    ///   is found empty or full); `Some` if the object is now smaller than the mapping or a
    ///   page was replaced, which every endpoint then reports as corruption. It catches a
    ///   truncation this process has not touched yet, which the other side may already have.
    ///
    /// Endpoints attached afterwards use both; endpoints attached before do not.
    #[must_use]
    pub fn with_truncation_check(
        mut self,
        faults: Option<&'static std::sync::atomic::AtomicU64>,
        check: TruncationCheck,
    ) -> RingMemory {
        self.mem.faults = faults;
        self.mem.check = Some(check);
        self
    }
}

impl RingMemory {
    /// Allocates heap memory for a ring of this configuration and initialises it.
    ///
    /// # Errors
    /// [`crate::InitError`] if the configuration is invalid.
    ///
    /// # Examples
    /// ```
    /// use ringway_ring::{RingConfig, RingMemory, spsc};
    /// let mem = RingMemory::heap(&RingConfig::spsc(4096))?;
    /// let opts = Default::default();
    /// let mut tx = spsc::Producer::attach(&mem, &opts)?;
    /// let mut rx = spsc::Consumer::attach(&mem, &opts)?;
    /// tx.push(b"hello")?;
    /// let mut out = Vec::new();
    /// rx.pop(&mut out)?;
    /// assert_eq!(out, b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn heap(config: &crate::RingConfig) -> Result<RingMemory, crate::InitError> {
        let geometry = config.geometry()?;
        #[cfg(not(ringway_loom))]
        let memory = RingMemory::zeroed(geometry.total_len as usize);
        #[cfg(ringway_loom)]
        let memory = RingMemory {
            mem: Mem::model(&geometry),
        };
        crate::geometry::init(&memory, config)?;
        Ok(memory)
    }
}

/// A zeroed, aligned heap allocation that frees itself.
#[cfg(not(ringway_loom))]
struct HeapBuf {
    ptr: NonNull<u8>,
    layout: std::alloc::Layout,
}

#[cfg(not(ringway_loom))]
impl HeapBuf {
    fn new(len: usize) -> HeapBuf {
        let layout = std::alloc::Layout::from_size_align(len, RING_ALIGN)
            .expect("ring memory length overflows a Layout");
        // SAFETY: the layout has a non-zero size (len >= HEADER_LEN, checked by the caller).
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        HeapBuf { ptr, layout }
    }
}

#[cfg(not(ringway_loom))]
impl Drop for HeapBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc_zeroed` with this exact layout and is freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

// SAFETY: HeapBuf owns its allocation exclusively; the bytes are only accessed through atomics
// and raw-pointer copies by the ring, which does its own synchronisation.
#[cfg(not(ringway_loom))]
unsafe impl Send for HeapBuf {}
// SAFETY: as above; `&HeapBuf` exposes nothing but the pointer value.
#[cfg(not(ringway_loom))]
unsafe impl Sync for HeapBuf {}

/// The crate-internal view of a ring's bytes (see the module docs for its invariants).
#[cfg(not(ringway_loom))]
#[derive(Clone)]
pub(crate) struct Mem {
    base: NonNull<u8>,
    len: usize,
    /// Held, never read: it keeps the memory alive as long as this clone.
    _keep: Option<KeepAlive>,
    /// This mapping's truncation-fault counter, read after every copy (see
    /// [`RingMemory::with_truncation_check`]). Process-private, never shared memory.
    faults: Option<&'static std::sync::atomic::AtomicU64>,
    /// The slow-path truncation check.
    check: Option<TruncationCheck>,
}

// SAFETY: `Mem` is a pointer into memory that is valid while `keep` (or the from_raw caller's
// promise) lasts, independent of the thread; all access goes through atomics or raw copies.
#[cfg(not(ringway_loom))]
unsafe impl Send for Mem {}
// SAFETY: shared access is only through atomics (`&AtomicU64` is Sync) and raw-pointer copies
// whose races with other parties the ring's protocol orders, as with other processes.
#[cfg(not(ringway_loom))]
unsafe impl Sync for Mem {}

#[cfg(not(ringway_loom))]
impl Mem {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// `true` if a page of this mapping was ever replaced by the truncation guard. Called
    /// right after a copy: the guard's handler runs synchronously inside the faulting copy, on
    /// this thread, so the compiler fence (a signal fence) is all the ordering needed for the
    /// load to see its increment.
    #[inline]
    pub(crate) fn faulted(&self) -> bool {
        match self.faults {
            None => false,
            Some(counter) => {
                core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
                counter.load(core::sync::atomic::Ordering::Relaxed) != 0
            }
        }
    }

    /// What to report after a copy found [`faulted`](Mem::faulted): the truncation, as the
    /// slow-path check describes it.
    #[cold]
    pub(crate) fn truncation(&self) -> Corruption {
        self.check_truncation()
            .err()
            .unwrap_or(Corruption::new("the mapping was truncated", 0, 0))
    }

    /// The slow-path truncation check (a `fstat`), and the fault counter.
    pub(crate) fn check_truncation(&self) -> Result<(), Corruption> {
        if let Some(t) = self.check.as_ref().and_then(|check| check()) {
            return Err(t.corruption());
        }
        if self.faulted() {
            return Err(Truncated {
                size: self.len as u64,
                mapped: self.len as u64,
                faults: self
                    .faults
                    .map_or(0, |c| c.load(core::sync::atomic::Ordering::Relaxed)),
            }
            .corruption());
        }
        Ok(())
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the memory starts on a 128-byte boundary and holds at least HEADER_LEN
        // bytes (checked in `from_raw`); `Header` is 1024 bytes of atomics with no padding, so
        // a shared reference to it is sound even while other processes write those bytes.
        unsafe { &*self.base.as_ptr().cast::<Header>() }
    }

    /// The registration entry `index` (producers first, then consumers).
    ///
    /// # Panics
    /// If the entry lies outside the memory: `index` comes from the attach-time geometry,
    /// which was checked against the length, so this is a bug, never a peer's doing.
    pub(crate) fn entry(&self, index: usize) -> &Entry {
        let off = TABLE_OFFSET + index * core::mem::size_of::<Entry>();
        assert!(
            off + core::mem::size_of::<Entry>() <= self.len,
            "entry out of range"
        );
        // SAFETY: in bounds (asserted), 128-byte aligned (the base is, TABLE_OFFSET and the
        // entry size are multiples of 128), and `Entry` is atomics only.
        unsafe { &*self.base.as_ptr().add(off).cast::<Entry>() }
    }

    /// The 8-byte word at byte offset `off` of the ring.
    ///
    /// # Panics
    /// If `off` is unaligned or out of range: offsets are computed from the local geometry
    /// with `% capacity`, so this is a bug, never a peer's doing.
    #[inline]
    pub(crate) fn word(&self, off: u64) -> &AtomicU64 {
        let off = usize::try_from(off).unwrap_or(usize::MAX);
        // Offsets come from the local geometry and are 8-aligned by construction (positions
        // and the data offset are multiples of 8); one compare keeps the range honest even if
        // that construction had a bug.
        debug_assert!(off % 8 == 0, "unaligned word offset");
        assert!(off < self.len - 7, "word offset out of range");
        // SAFETY: in bounds and 8-byte aligned (asserted; the base is 128-aligned), and an
        // AtomicU64 has the size and alignment of a u64, so any 8 aligned bytes can be viewed as
        // one, even while other processes write them.
        unsafe { &*self.base.as_ptr().add(off).cast::<AtomicU64>() }
    }

    /// A raw pointer to byte `off` of the ring, for in-place access through a grant.
    #[inline]
    pub(crate) fn ptr(&self, off: u64, len: usize) -> *mut u8 {
        let off = usize::try_from(off).unwrap_or(usize::MAX);
        assert!(
            off <= self.len && len <= self.len - off,
            "byte range out of range"
        );
        // SAFETY: `off <= len` of an allocation/mapping of `self.len` bytes (asserted).
        unsafe { self.base.as_ptr().add(off) }
    }

    /// Hints the CPU to bring the cache line at byte offset `off` here, without accessing it
    /// in the language's sense: a prefetch instruction cannot race another thread's plain
    /// write the way a load would (the consumers use it to keep the line a record will spill
    /// into fresh while they wait). A no-op where there is no stable prefetch intrinsic.
    #[inline]
    pub(crate) fn prefetch(&self, off: u64) {
        let off = usize::try_from(off).unwrap_or(usize::MAX);
        if off >= self.len {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `off < len`, so the address lies inside the mapping; a prefetch never faults
        // and never reads or writes memory as far as the program can observe.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                self.base.as_ptr().add(off).cast::<i8>(),
            );
        }
    }

    /// Makes the whole pages from byte `off` (page aligned) to the page end at or after
    /// `off + len` read-only in this process's mapping.
    ///
    /// # Safety
    /// Nothing in this process may write those pages afterwards (through this mapping or any
    /// other view of the same addresses), and the pages must belong to a mapping (not to a
    /// heap allocation other code in this process uses).
    pub(crate) unsafe fn protect_read_only(&self, off: u64, len: u64) -> std::io::Result<()> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = u64::try_from(page).unwrap_or(4096).max(1);
        let start = self.base.as_ptr().addr() as u64 + off;
        if start % page != 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
        }
        let end = off.saturating_add(len);
        assert!(end <= self.len as u64, "protected range out of the ring");
        // SAFETY: the range starts inside this memory on a page boundary; the caller promises
        // that nothing in this process writes those pages afterwards and that they are a
        // mapping's; mprotect only changes this process's view and fails cleanly otherwise.
        let rc = unsafe {
            libc::mprotect(
                self.base.as_ptr().add(off as usize).cast(),
                len as usize,
                libc::PROT_READ,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Copies `src` into the ring at byte offset `off`.
    #[inline]
    pub(crate) fn copy_in(&self, off: u64, src: &[u8]) {
        let dst = self.ptr(off, src.len());
        // SAFETY: `ptr` checked that `off..off + src.len()` lies inside the memory; `src` is
        // process-private, so the ranges cannot overlap. Other processes may read these bytes
        // concurrently only in violation of the protocol, which harms only their own reads.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) }
    }

    /// Copies bytes at offset `off` of the ring into `dst`.
    ///
    /// A peer writing these bytes at the same time can garble the copy, never make it unsafe:
    /// every byte pattern is a valid `u8`, and no reference to the shared bytes exists.
    #[inline]
    pub(crate) fn copy_out(&self, off: u64, dst: &mut [u8]) {
        let src = self.ptr(off, dst.len());
        // SAFETY: `ptr` checked the range; `dst` is process-private, so no overlap.
        unsafe { core::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) }
    }

    /// Copies `len` bytes at offset `off` of the ring to the raw destination `dst`.
    ///
    /// # Safety
    /// `dst` must be valid for writes of `len` bytes and not overlap the ring.
    #[inline]
    pub(crate) unsafe fn copy_out_raw(&self, off: u64, dst: *mut u8, len: usize) {
        let src = self.ptr(off, len);
        // SAFETY: `ptr` checked the source range; the caller guarantees the destination.
        unsafe { core::ptr::copy_nonoverlapping(src, dst, len) }
    }

    pub(crate) fn wait_word(&self, which: WaitWord) -> &AtomicU32 {
        let header = self.header();
        match which {
            WaitWord::NotEmpty => &header.not_empty.seq,
            WaitWord::NotFull => &header.not_full.seq,
        }
    }

    pub(crate) fn futex_wait(&self, which: WaitWord, expected: u32, timeout: Option<Duration>) {
        crate::futex::wait(self.wait_word(which), expected, timeout);
    }

    pub(crate) fn futex_wake(&self, which: WaitWord) {
        crate::futex::wake_all(self.wait_word(which));
    }

    /// Zeroes `len` bytes from `off` with atomic stores (8-aligned, in range).
    pub(crate) fn zero(&self, off: u64, len: u64) {
        let mut at = off;
        while at < off + len {
            self.word(at).store(0, crate::sync::Ordering::Relaxed);
            at += 8;
        }
    }
}

/// Under loom: a heap model of the same layout.
#[cfg(ringway_loom)]
#[derive(Clone)]
pub(crate) struct Mem {
    model: Arc<Model>,
}

#[cfg(ringway_loom)]
struct Model {
    header: Header,
    entries: Vec<Entry>,
    data_offset: u64,
    data: Vec<AtomicU64>,
    total_len: usize,
    futex: [(loom::sync::Mutex<()>, loom::sync::Condvar); 2],
    /// Set when a select watches this ring (before the model's threads start): only then do
    /// its wakes also notify the `futex_waitv` model, which keeps the other models as small
    /// as they were. Not a modelled atomic: it is written before any thread could read it.
    selected: std::sync::atomic::AtomicBool,
    _keep: Option<KeepAlive>,
}

#[cfg(ringway_loom)]
loom::lazy_static! {
    /// The futex model of `futex_waitv` (see `Mem::futex_wait_any`).
    static ref WAITV: (loom::sync::Mutex<()>, loom::sync::Condvar) =
        (loom::sync::Mutex::new(()), loom::sync::Condvar::new());
}

#[cfg(ringway_loom)]
fn zeroed_array<const N: usize>() -> [AtomicU64; N] {
    core::array::from_fn(|_| AtomicU64::new(0))
}

#[cfg(ringway_loom)]
impl Mem {
    pub(crate) fn model(geometry: &crate::Geometry) -> Mem {
        use crate::layout::*;
        use crate::pad::Block128;
        let wait = || {
            Block128(WaitBlock {
                seq: AtomicU32::new(0),
                waiters: AtomicU32::new(0),
                reserved: zeroed_array(),
            })
        };
        let header = Header {
            identity: Block128(Identity {
                magic: AtomicU64::new(0),
                version: AtomicU32::new(0),
                kind: AtomicU32::new(0),
                total_len: AtomicU64::new(0),
                capacity: AtomicU64::new(0),
                slot_size: AtomicU32::new(0),
                slot_stride: AtomicU32::new(0),
                data_offset: AtomicU64::new(0),
                max_message: AtomicU32::new(0),
                max_producers: AtomicU32::new(0),
                max_consumers: AtomicU32::new(0),
                flags: AtomicU32::new(0),
                fingerprint: zeroed_array(),
                creator_pid: AtomicU32::new(0),
                history: AtomicU32::new(0),
                created_ns: AtomicU64::new(0),
                creator_start: AtomicU64::new(0),
                creator_pidns: AtomicU64::new(0),
                reserved1: zeroed_array(),
                init: AtomicU32::new(0),
                reserved2: AtomicU32::new(0),
            }),
            producer: Block128(ProducerIndex {
                tail: AtomicU64::new(0),
                reserved: zeroed_array(),
            }),
            consumer: Block128(ConsumerIndex {
                head: AtomicU64::new(0),
                reserved: zeroed_array(),
            }),
            not_empty: wait(),
            not_full: wait(),
            counters: Block128(Counters {
                lost: AtomicU64::new(0),
                abandoned: AtomicU64::new(0),
                users: AtomicU32::new(0),
                reserved0: AtomicU32::new(0),
                reserved: zeroed_array(),
            }),
            label: Block128(Label {
                len: AtomicU32::new(0),
                reserved0: AtomicU32::new(0),
                bytes: zeroed_array(),
            }),
            reserved: Block128(ReservedBlock {
                reserved: zeroed_array(),
            }),
        };
        let parties = (geometry.max_producers + geometry.max_consumers) as usize;
        let entries = (0..parties)
            .map(|_| Entry {
                ctl: AtomicU64::new(0),
                start_time: AtomicU64::new(0),
                reserved0: AtomicU64::new(0),
                pidns: AtomicU64::new(0),
                cursor: AtomicU64::new(0),
                reserved1: zeroed_array(),
                claim: AtomicU64::new(0),
                reserved: zeroed_array(),
            })
            .collect();
        let words = ((geometry.total_len - geometry.data_offset) / 8) as usize;
        Mem {
            model: Arc::new(Model {
                header,
                entries,
                data_offset: geometry.data_offset,
                data: (0..words).map(|_| AtomicU64::new(0)).collect(),
                total_len: geometry.total_len as usize,
                futex: [
                    (loom::sync::Mutex::new(()), loom::sync::Condvar::new()),
                    (loom::sync::Mutex::new(()), loom::sync::Condvar::new()),
                ],
                selected: std::sync::atomic::AtomicBool::new(false),
                _keep: None,
            }),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.model.total_len
    }

    pub(crate) fn faulted(&self) -> bool {
        false
    }

    pub(crate) fn prefetch(&self, _off: u64) {}

    pub(crate) fn check_truncation(&self) -> Result<(), Corruption> {
        Ok(())
    }

    pub(crate) fn truncation(&self) -> Corruption {
        Corruption::new("the mapping was truncated", 0, 0)
    }

    pub(crate) fn header(&self) -> &Header {
        &self.model.header
    }

    pub(crate) fn entry(&self, index: usize) -> &Entry {
        &self.model.entries[index]
    }

    pub(crate) fn word(&self, off: u64) -> &AtomicU64 {
        assert!(off % 8 == 0 && off >= self.model.data_offset);
        &self.model.data[((off - self.model.data_offset) / 8) as usize]
    }

    /// Copies `src` in, one atomic access per 8-byte word (a whole-word store where the word
    /// is fully covered, a read-modify-write at the edges), to keep models small.
    pub(crate) fn copy_in(&self, off: u64, src: &[u8]) {
        use crate::sync::Ordering::Relaxed;
        let mut at = off;
        let end = off + src.len() as u64;
        while at < end {
            let base = at & !7;
            let word = self.word(base);
            let lo = (at - base) as usize;
            let hi = ((end - base).min(8)) as usize;
            let mut bytes = if lo == 0 && hi == 8 {
                [0; 8]
            } else {
                word.load(Relaxed).to_le_bytes()
            };
            let from = (at - off) as usize;
            bytes[lo..hi].copy_from_slice(&src[from..from + hi - lo]);
            word.store(u64::from_le_bytes(bytes), Relaxed);
            at = base + hi as u64;
        }
    }

    pub(crate) fn copy_out(&self, off: u64, dst: &mut [u8]) {
        use crate::sync::Ordering::Relaxed;
        let mut at = off;
        let end = off + dst.len() as u64;
        while at < end {
            let base = at & !7;
            let lo = (at - base) as usize;
            let hi = ((end - base).min(8)) as usize;
            let bytes = self.word(base).load(Relaxed).to_le_bytes();
            let from = (at - off) as usize;
            dst[from..from + hi - lo].copy_from_slice(&bytes[lo..hi]);
            at = base + hi as u64;
        }
    }

    fn index(which: WaitWord) -> usize {
        match which {
            WaitWord::NotEmpty => 0,
            WaitWord::NotFull => 1,
        }
    }

    pub(crate) fn wait_word(&self, which: WaitWord) -> &AtomicU32 {
        match which {
            WaitWord::NotEmpty => &self.model.header.not_empty.seq,
            WaitWord::NotFull => &self.model.header.not_full.seq,
        }
    }

    /// The model of `futex_waitv` over words of several rings: one lock and condition
    /// variable for the whole model, which every `futex_wake` of a watched ring also
    /// notifies. The check of
    /// every word and the sleep are atomic with respect to a wake, as in `futex_wait`.
    pub(crate) fn futex_wait_any(words: &[(&Mem, WaitWord, u32)]) {
        let (lock, cv) = &*WAITV;
        let guard = lock.lock().unwrap();
        let unchanged = words.iter().all(|&(mem, which, expected)| {
            mem.wait_word(which).load(crate::sync::Ordering::SeqCst) == expected
        });
        if unchanged {
            drop(cv.wait(guard).unwrap());
        }
    }

    /// The model of a `futex_waitv` over words that need not live in a ring (the async
    /// reactor's private control word with the rings' words): sleeps unless a word differs
    /// from its expected value, until any ring's `futex_wake` or [`Mem::futex_wake_words`].
    pub(crate) fn futex_wait_words(words: &[(&AtomicU32, u32)]) {
        let (lock, cv) = &*WAITV;
        let guard = lock.lock().unwrap();
        let unchanged = words
            .iter()
            .all(|&(word, expected)| word.load(crate::sync::Ordering::SeqCst) == expected);
        if unchanged {
            drop(cv.wait(guard).unwrap());
        }
    }

    /// The model of a `FUTEX_WAKE` on a word [`Mem::futex_wait_words`] sleeps on.
    pub(crate) fn futex_wake_words() {
        let (lock, cv) = &*WAITV;
        let _guard = lock.lock().unwrap();
        cv.notify_all();
    }

    /// The futex model: the value check and the sleep are atomic with respect to a wake,
    /// because the waker takes the same lock before notifying. Timeouts are not modelled (loom
    /// has no clock): a lost wake-up shows up as a deadlock, which loom reports.
    pub(crate) fn futex_wait(
        &self,
        which: WaitWord,
        expected: u32,
        _timeout: Option<std::time::Duration>,
    ) {
        let (lock, cv) = &self.model.futex[Self::index(which)];
        let guard = lock.lock().unwrap();
        if self.wait_word(which).load(crate::sync::Ordering::SeqCst) != expected {
            return;
        }
        drop(cv.wait(guard).unwrap());
    }

    pub(crate) fn futex_wake(&self, which: WaitWord) {
        let (lock, cv) = &self.model.futex[Self::index(which)];
        let guard = lock.lock().unwrap();
        cv.notify_all();
        drop(guard);
        if self
            .model
            .selected
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            let (lock, cv) = &*WAITV;
            let _guard = lock.lock().unwrap();
            cv.notify_all();
        }
    }

    /// Marks this ring as watched by a select (see `Model::selected`).
    pub(crate) fn mark_selected(&self) {
        self.model
            .selected
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn zero(&self, _off: u64, _len: u64) {
        // A model is created zeroed.
    }
}
