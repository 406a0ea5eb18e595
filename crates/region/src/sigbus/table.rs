//! The table of guarded mappings, which the SIGBUS handler searches without locks.
//!
//! The table is a list of fixed-size chunks of entries. The first chunk is a static; further
//! chunks are allocated by [`insert`] (never by the handler) when every entry is taken, linked
//! through `next` pointers, and never freed: once linked, a chunk stays valid for the life of
//! the process, so the handler can walk the list without locks and an entry's fault counter
//! can be handed out as `&'static`. The memory kept is bounded by the largest number of
//! mappings guarded at the same time.
//!
//! An entry is claimed with its `claimed` flag (a compare-and-swap: one owner per entry), and
//! its fields are written under a sequence lock: `seq` is odd while they are written, and the
//! handler only uses fields it read between two loads of the same even `seq`, so it never
//! pairs the start of one mapping with the length of another, even when it runs on another
//! thread while an entry is being freed and reused.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr;
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence,
};

use nix::errno::Errno;

/// Entries per chunk.
const CHUNK_SLOTS: usize = 64;

/// What the handler needs to know of a guarded mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    /// The first byte, page-aligned; 0 for a free entry.
    pub(super) start: usize,
    /// The length in bytes; 0 for a free entry.
    pub(super) len: usize,
    /// The page size of the mapping (4096, or the huge page size on hugetlbfs), a power of two.
    pub(super) granule: usize,
    /// The mapping's protection (`PROT_READ`, maybe `| PROT_WRITE`), which a replacement page
    /// gets too.
    pub(super) prot: libc::c_int,
}

impl Entry {
    const FREE: Entry = Entry {
        start: 0,
        len: 0,
        granule: 0,
        prot: 0,
    };

    pub(super) fn contains(&self, addr: usize) -> bool {
        addr >= self.start && addr - self.start < self.len
    }
}

/// One entry of the table.
///
/// # Invariants
///
/// - `seq` is even when the fields are stable, odd while the owner writes them;
/// - only the owner (who set `claimed`) writes `seq`, the fields and `faults`, except that the
///   handler increments `faults`;
/// - a free entry has `len == 0`.
#[derive(Debug)]
pub(super) struct Slot {
    seq: AtomicUsize,
    claimed: AtomicBool,
    start: AtomicUsize,
    len: AtomicUsize,
    granule: AtomicUsize,
    prot: AtomicI32,
    /// Truncated pages replaced in the mapping now registered here; reset by [`insert`].
    faults: AtomicU64,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            seq: AtomicUsize::new(0),
            claimed: AtomicBool::new(false),
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            granule: AtomicUsize::new(0),
            prot: AtomicI32::new(0),
            faults: AtomicU64::new(0),
        }
    }

    /// The counter of truncated pages replaced in this entry's mapping.
    pub(super) fn faults(&self) -> &AtomicU64 {
        &self.faults
    }

    fn claim(&self) -> bool {
        // SYNC(claim): Acquire pairs with the Release store in `remove`: the new owner sees
        // the entry as the previous owner left it, free.
        self.claimed
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Writes the fields under the sequence lock. Only the owner calls it.
    fn write(&self, entry: Entry) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        // SYNC(seq-open): the odd `seq` is ordered before the field stores; pairs with the
        // Acquire fence in `read`: a reader that sees any of the new fields then sees `seq`
        // changed and discards what it read.
        fence(Ordering::Release);
        self.start.store(entry.start, Ordering::Relaxed);
        self.len.store(entry.len, Ordering::Relaxed);
        self.granule.store(entry.granule, Ordering::Relaxed);
        self.prot.store(entry.prot, Ordering::Relaxed);
        // SYNC(seq-close): pairs with the Acquire load of `seq` in `read`: a reader that sees
        // this even value sees all the fields stored above.
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// The fields, if they were stable while read and describe a mapping. Only atomic loads:
    /// async-signal-safe.
    fn read(&self) -> Option<Entry> {
        // SYNC(seq-close): pairs with the Release store of the even `seq` in `write`.
        let before = self.seq.load(Ordering::Acquire);
        if before % 2 == 1 {
            return None;
        }
        let entry = Entry {
            start: self.start.load(Ordering::Relaxed),
            len: self.len.load(Ordering::Relaxed),
            granule: self.granule.load(Ordering::Relaxed),
            prot: self.prot.load(Ordering::Relaxed),
        };
        // SYNC(seq-open): pairs with the Release fence in `write`.
        fence(Ordering::Acquire);
        let after = self.seq.load(Ordering::Relaxed);
        (before == after && entry.len != 0).then_some(entry)
    }
}

/// A chunk of entries and the link to the next chunk.
///
/// All-zero bytes are a valid, empty chunk: every field is an atomic integer, flag or pointer,
/// for which zero is 0, `false` and null. [`Chunk::next_or_grow`] relies on it.
struct Chunk {
    slots: [Slot; CHUNK_SLOTS],
    next: AtomicPtr<Chunk>,
}

static FIRST: Chunk = Chunk {
    slots: [const { Slot::new() }; CHUNK_SLOTS],
    next: AtomicPtr::new(ptr::null_mut()),
};

impl Chunk {
    /// The next chunk, if there is one. Only an atomic load: async-signal-safe.
    fn next(&'static self) -> Option<&'static Chunk> {
        // SYNC(grow): pairs with the Release of the compare-exchange in `next_or_grow`: the
        // chunk's zeroed bytes are visible before its address.
        let next = self.next.load(Ordering::Acquire);
        // SAFETY: a non-null `next` was allocated by `next_or_grow`, zero-filled (a valid
        // empty chunk, see the type's docs) before it was linked, and is never freed.
        unsafe { next.as_ref() }
    }

    /// The next chunk, allocated and linked if there is none yet.
    fn next_or_grow(&'static self) -> Result<&'static Chunk, Errno> {
        if let Some(next) = self.next() {
            return Ok(next);
        }
        let layout = Layout::new::<Chunk>();
        // SAFETY: `Chunk` is not zero-sized, as alloc_zeroed requires.
        let fresh = unsafe { alloc_zeroed(layout) }.cast::<Chunk>();
        if fresh.is_null() {
            return Err(Errno::ENOMEM);
        }
        // SYNC(grow): Release publishes the zeroed chunk, pairs with the Acquire load in
        // `next`; Acquire on failure, for the chunk another thread linked first.
        match self.next.compare_exchange(
            ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: as in `next`: zero-filled, now linked, never freed.
            Ok(_) => Ok(unsafe { &*fresh }),
            Err(theirs) => {
                // SAFETY: `fresh` came from alloc_zeroed with this layout and was never
                // published, so nobody else can see it.
                unsafe { dealloc(fresh.cast(), layout) };
                // SAFETY: as in `next`: `theirs` is a linked chunk, never freed.
                Ok(unsafe { &*theirs })
            }
        }
    }
}

/// Claims a free entry, growing the table by a chunk if every entry is taken, and writes
/// `entry` into it with its fault counter at zero. Not for the handler: it may allocate.
///
/// # Errors
///
/// `ENOMEM` if every entry is taken and a new chunk cannot be allocated.
pub(super) fn insert(entry: Entry) -> Result<&'static Slot, Errno> {
    let mut chunk: &'static Chunk = &FIRST;
    loop {
        if let Some(slot) = chunk.slots.iter().find(|slot| slot.claim()) {
            slot.faults.store(0, Ordering::Relaxed);
            slot.write(entry);
            return Ok(slot);
        }
        chunk = chunk.next_or_grow()?;
    }
}

/// Frees `slot`, which [`insert`] returned. A handler reading it meanwhile sees `seq` change
/// and ignores what it read.
pub(super) fn remove(slot: &'static Slot) {
    slot.write(Entry::FREE);
    // SYNC(claim): pairs with the Acquire compare-exchange in `claim`.
    slot.claimed.store(false, Ordering::Release);
}

/// The entry whose mapping contains `addr`, and its slot. Atomic loads only, no allocation
/// and no lock: async-signal-safe.
pub(super) fn find(addr: usize) -> Option<(&'static Slot, Entry)> {
    let mut chunk: &'static Chunk = &FIRST;
    loop {
        for slot in &chunk.slots {
            if let Some(entry) = slot.read().filter(|entry| entry.contains(addr)) {
                return Some((slot, entry));
            }
        }
        chunk = chunk.next()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(start: usize) -> Entry {
        Entry {
            start,
            len: 2 * 4096,
            granule: 4096,
            prot: libc::PROT_READ,
        }
    }

    /// The table grows past its first chunk, finds every entry, and reuses freed entries with
    /// their counters reset. (Addresses here are made up: nothing is mapped or faulted.)
    #[test]
    fn grows_finds_and_reuses() {
        // Far from anything mapped, so that entries of other tests cannot contain them.
        let base = 0x7e00_0000_0000;
        let count = 3 * CHUNK_SLOTS + 5;
        let slots: Vec<_> = (0..count)
            .map(|i| insert(entry(base + i * 0x10_0000)).expect("insert"))
            .collect();
        for (i, slot) in slots.iter().enumerate() {
            let at = base + i * 0x10_0000 + 4096 + 17;
            let (found, got) = find(at).expect("registered");
            assert!(ptr::eq(found, *slot));
            assert_eq!(got, entry(base + i * 0x10_0000));
        }
        assert!(
            find(base + 0x10_0000 - 1).is_none(),
            "past the end of the first"
        );
        slots[7].faults().store(3, Ordering::Relaxed);
        remove(slots[7]);
        assert!(find(base + 7 * 0x10_0000).is_none(), "freed");
        let again = insert(entry(base - 0x10_0000)).expect("insert");
        // The first free entry (no other unit test of this binary registers anything).
        assert!(ptr::eq(again, slots[7]), "the freed entry is reused");
        assert_eq!(again.faults().load(Ordering::Relaxed), 0, "reset on reuse");
        remove(again);
        for (i, slot) in slots.into_iter().enumerate() {
            if i != 7 {
                remove(slot);
            }
        }
    }
}
