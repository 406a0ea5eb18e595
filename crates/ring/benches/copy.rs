//! What a race-free payload copy would cost (review item 8).
//!
//! The rings copy payloads between private buffers and shared memory with
//! `ptr::copy_nonoverlapping` (`Mem::copy_in`, `copy_out`, `copy_out_raw`). A hostile peer may
//! write the same shared bytes at the same time: harmless on the hardware (every byte pattern is
//! a valid `u8`), but a data race, and so undefined behaviour, in the Rust memory model. This
//! bench measures the copies that avoid it, against the plain one:
//!
//! - `memcpy`: `ptr::copy_nonoverlapping`, what the rings do now.
//! - `atomic64`: a Relaxed `AtomicU64` load and store per 8-byte word, `AtomicU8` for the bytes
//!   before and after the 8-aligned middle (both sides atomic).
//! - `atomic64x4`: the same, four words per iteration (four loads, then four stores).
//! - `atomic64-load`: the shape `copy_out` needs: atomic loads from the shared source, plain
//!   stores into the private destination.
//! - `atomic64-store`: the shape `copy_in` needs: plain loads from the private source, atomic
//!   stores into the shared destination.
//! - `volatile64`: `read_volatile`/`write_volatile` per `u64` (not race-free in the Rust memory
//!   model, which treats a volatile access like a plain one when it races, but what C and the
//!   Linux kernel use for memory shared with an untrusted party).
//! - `rep-movsb`: one `rep movsb` in inline assembly. Assembly is opaque to the compiler, and the
//!   instruction's byte accesses are what a byte-wise atomic copy would do, so it is the usual
//!   argument for a race-free `memcpy` today (the argument, not a documented guarantee).
//! - `asm-sse2`: the same argument with a loop of 16-byte `movdqu` loads and stores in inline
//!   assembly, 64 bytes per iteration; the last `len % 64` bytes through `atomic64`.
//!
//! Sizes 8 B, 64 B, 1 KiB, 64 KiB and 1 MiB, source and destination 64-byte aligned. `hot`: the
//! same source every iteration (in L1 or L2 up to 64 KiB; 1 MiB is larger than this machine's
//! per-core L2). `cold`: each iteration copies the next chunk of a 64 MiB arena, larger than
//! L2 and L3, so the source comes from memory (the big sizes only).
//!
//! Run with `cargo bench -p ringway-ring --bench copy`.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::hint::black_box;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// A copy of `len` bytes from `src` to `dst`.
///
/// Every implementation requires: `src` valid for reads and `dst` valid for writes of `len`
/// bytes, the two ranges not overlapping.
type CopyFn = unsafe fn(src: *const u8, dst: *mut u8, len: usize);

const SIZES: [usize; 5] = [8, 64, 1024, 64 * 1024, 1024 * 1024];
/// Sizes also measured with a cold source.
const COLD_SIZES: [usize; 2] = [64 * 1024, 1024 * 1024];
const ARENA: usize = 64 * 1024 * 1024;
const ALIGN: usize = 64;

const VARIANTS: [(&str, CopyFn); 8] = [
    ("memcpy", memcpy),
    ("atomic64", atomic64),
    ("atomic64x4", atomic64x4),
    ("atomic64-load", atomic64_load),
    ("atomic64-store", atomic64_store),
    ("volatile64", volatile64),
    ("rep-movsb", rep_movsb),
    ("asm-sse2", asm_sse2),
];

/// (a) What the rings do now.
unsafe fn memcpy(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: the caller's contract (see `CopyFn`).
    unsafe { core::ptr::copy_nonoverlapping(src, dst, len) }
}

/// A Relaxed atomic view of the byte at `p`.
///
/// # Safety
/// `p` must be valid for reads and writes for as long as the returned reference is used, and
/// be accessed only atomically meanwhile (or not concurrently).
unsafe fn byte<'a>(p: *const u8) -> &'a AtomicU8 {
    // SAFETY: AtomicU8 has the size and alignment of u8; the caller guarantees validity.
    unsafe { AtomicU8::from_ptr(p.cast_mut()) }
}

/// A Relaxed atomic view of the 8-aligned word at `p`.
///
/// # Safety
/// As [`byte`], and `p` must be 8-aligned.
unsafe fn word<'a>(p: *const u8) -> &'a AtomicU64 {
    // SAFETY: the caller guarantees validity and 8-byte alignment, which is AtomicU64's.
    unsafe { AtomicU64::from_ptr(p.cast_mut().cast::<u64>()) }
}

/// Splits `len` at `dst`'s 8-byte alignment: `(head, words)`, the bytes before the first
/// aligned word and the number of whole words after them; `None` if `src` and `dst` are not
/// equally misaligned (so no word is aligned on both sides).
fn split(src: *const u8, dst: *mut u8, len: usize) -> Option<(usize, usize)> {
    let head = dst.align_offset(8).min(len);
    if (src.addr() + head) % 8 != 0 {
        return None;
    }
    Some((head, (len - head) / 8))
}

/// Byte-wise Relaxed atomics for `range` of both sides.
///
/// # Safety
/// As `CopyFn`, for the bytes in `range`.
unsafe fn atomic_bytes(src: *const u8, dst: *mut u8, range: core::ops::Range<usize>) {
    for i in range {
        // SAFETY: `i` is inside the caller's ranges.
        unsafe { byte(dst.add(i)).store(byte(src.add(i)).load(Relaxed), Relaxed) }
    }
}

/// (b) One Relaxed atomic load and store per word, bytes at the edges.
unsafe fn atomic64(src: *const u8, dst: *mut u8, len: usize) {
    let Some((head, words)) = split(src, dst, len) else {
        // SAFETY: the caller's contract.
        return unsafe { atomic_bytes(src, dst, 0..len) };
    };
    // SAFETY: every offset below is inside `0..len`, and the word offsets are 8-aligned on
    // both sides (`split`).
    unsafe {
        atomic_bytes(src, dst, 0..head);
        for w in 0..words {
            let at = head + 8 * w;
            word(dst.add(at)).store(word(src.add(at)).load(Relaxed), Relaxed);
        }
        atomic_bytes(src, dst, head + 8 * words..len);
    }
}

/// (d) As `atomic64`, four words per iteration.
unsafe fn atomic64x4(src: *const u8, dst: *mut u8, len: usize) {
    let Some((head, words)) = split(src, dst, len) else {
        // SAFETY: the caller's contract.
        return unsafe { atomic_bytes(src, dst, 0..len) };
    };
    // SAFETY: as in `atomic64`.
    unsafe {
        atomic_bytes(src, dst, 0..head);
        let (s, d) = (src.add(head), dst.add(head));
        let mut w = 0;
        while w + 4 <= words {
            let at = 8 * w;
            let a = word(s.add(at)).load(Relaxed);
            let b = word(s.add(at + 8)).load(Relaxed);
            let c = word(s.add(at + 16)).load(Relaxed);
            let e = word(s.add(at + 24)).load(Relaxed);
            word(d.add(at)).store(a, Relaxed);
            word(d.add(at + 8)).store(b, Relaxed);
            word(d.add(at + 16)).store(c, Relaxed);
            word(d.add(at + 24)).store(e, Relaxed);
            w += 4;
        }
        while w < words {
            word(d.add(8 * w)).store(word(s.add(8 * w)).load(Relaxed), Relaxed);
            w += 1;
        }
        atomic_bytes(src, dst, head + 8 * words..len);
    }
}

/// (d) `copy_out`'s shape: atomic loads from the (shared) source, aligned there; plain
/// unaligned stores into the (private) destination.
unsafe fn atomic64_load(src: *const u8, dst: *mut u8, len: usize) {
    let head = src.align_offset(8).min(len);
    let words = (len - head) / 8;
    // SAFETY: every offset is inside `0..len`; the atomic word loads are 8-aligned on the
    // source side, the stores unaligned plain writes to the destination.
    unsafe {
        for i in 0..head {
            *dst.add(i) = byte(src.add(i)).load(Relaxed);
        }
        for w in 0..words {
            let at = head + 8 * w;
            let v = word(src.add(at)).load(Relaxed);
            dst.add(at).cast::<u64>().write_unaligned(v);
        }
        for i in head + 8 * words..len {
            *dst.add(i) = byte(src.add(i)).load(Relaxed);
        }
    }
}

/// (d) `copy_in`'s shape: plain unaligned loads from the (private) source; atomic stores into
/// the (shared) destination, aligned there.
unsafe fn atomic64_store(src: *const u8, dst: *mut u8, len: usize) {
    let head = dst.align_offset(8).min(len);
    let words = (len - head) / 8;
    // SAFETY: as in `atomic64_load`, with the sides swapped.
    unsafe {
        for i in 0..head {
            byte(dst.add(i)).store(*src.add(i), Relaxed);
        }
        for w in 0..words {
            let at = head + 8 * w;
            let v = src.add(at).cast::<u64>().read_unaligned();
            word(dst.add(at)).store(v, Relaxed);
        }
        for i in head + 8 * words..len {
            byte(dst.add(i)).store(*src.add(i), Relaxed);
        }
    }
}

/// (c) A volatile read and write per word (unaligned on the source side if the phases
/// differ), volatile bytes at the edges.
unsafe fn volatile64(src: *const u8, dst: *mut u8, len: usize) {
    let head = dst.align_offset(8).min(len);
    let words = (len - head) / 8;
    // SAFETY: every offset is inside `0..len`; word stores are 8-aligned on the destination;
    // word loads are aligned when the phases match and read unaligned otherwise.
    unsafe {
        for i in 0..head {
            dst.add(i).write_volatile(src.add(i).read_volatile());
        }
        let aligned = (src.addr() + head) % 8 == 0;
        for w in 0..words {
            let at = head + 8 * w;
            let p = src.add(at).cast::<u64>();
            let v = if aligned {
                p.read_volatile()
            } else {
                p.read_unaligned()
            };
            dst.add(at).cast::<u64>().write_volatile(v);
        }
        for i in head + 8 * words..len {
            dst.add(i).write_volatile(src.add(i).read_volatile());
        }
    }
}

/// (d) `rep movsb`: the CPU's own copy, which on this hardware moves cache lines at a time.
unsafe fn rep_movsb(src: *const u8, dst: *mut u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `rep movsb` copies `rcx` bytes from `[rsi]` to `[rdi]` upwards (the direction
    // flag is clear at every Rust call boundary, as the ABI requires); the caller guarantees
    // both ranges. It touches no other memory and no stack.
    unsafe {
        core::arch::asm!(
            "rep movsb",
            inout("rcx") len => _,
            inout("rsi") src => _,
            inout("rdi") dst => _,
            options(nostack, preserves_flags),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: the caller's contract.
    unsafe {
        memcpy(src, dst, len)
    }
}

/// (d) 64 bytes per iteration through four 16-byte registers, in inline assembly (SSE2 is
/// part of x86_64, so no feature detection is needed); the rest through `atomic64`.
unsafe fn asm_sse2(src: *const u8, dst: *mut u8, len: usize) {
    let blocks = len / 64;
    #[cfg(target_arch = "x86_64")]
    if blocks > 0 {
        // SAFETY: the loop reads `[src, src + 64 * blocks)` and writes the same length at
        // `dst`, inside the caller's ranges (`blocks > 0`, so the counter never wraps). It
        // touches no other memory and no stack; the flags it changes are declared clobbered
        // (no `preserves_flags`).
        unsafe {
            core::arch::asm!(
                "2:",
                "movdqu {a}, xmmword ptr [{s}]",
                "movdqu {b}, xmmword ptr [{s} + 16]",
                "movdqu {c}, xmmword ptr [{s} + 32]",
                "movdqu {d}, xmmword ptr [{s} + 48]",
                "movdqu xmmword ptr [{t}], {a}",
                "movdqu xmmword ptr [{t} + 16], {b}",
                "movdqu xmmword ptr [{t} + 32], {c}",
                "movdqu xmmword ptr [{t} + 48], {d}",
                "add {s}, 64",
                "add {t}, 64",
                "dec {n}",
                "jnz 2b",
                s = inout(reg) src => _,
                t = inout(reg) dst => _,
                n = inout(reg) blocks => _,
                a = out(xmm_reg) _,
                b = out(xmm_reg) _,
                c = out(xmm_reg) _,
                d = out(xmm_reg) _,
                options(nostack),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let blocks = 0;
    let done = 64 * blocks;
    // SAFETY: the rest of the caller's ranges.
    unsafe { atomic64(src.add(done), dst.add(done), len - done) }
}

/// A zeroed, 64-byte aligned heap buffer.
struct Buf {
    ptr: *mut u8,
    layout: Layout,
}

impl Buf {
    fn new(len: usize) -> Buf {
        let layout = Layout::from_size_align(len, ALIGN).expect("a valid layout");
        // SAFETY: `len` is non-zero for every buffer here.
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "allocation of {len} bytes failed");
        // Touch every page with a pattern so the cold arena is really in memory.
        for i in (0..len).step_by(64) {
            // SAFETY: `i < len`.
            unsafe { ptr.add(i).write(i as u8 ^ 0x5A) };
        }
        Buf { ptr, layout }
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

/// Every variant copies exactly what `memcpy` copies, for short lengths at every pair of
/// misalignments (the edges are where they differ).
fn check_variants() {
    let src = Buf::new(512);
    let dst = Buf::new(512);
    for i in 0..512 {
        // SAFETY: `i < 512`.
        unsafe { src.ptr.add(i).write((i * 7 + 3) as u8) };
    }
    for (name, copy) in VARIANTS {
        for len in 0..100 {
            for s in 0..8 {
                for d in 0..8 {
                    // SAFETY: `s + len` and `d + len` stay below 512; the buffers differ.
                    let ok = unsafe {
                        core::ptr::write_bytes(dst.ptr, 0, 512);
                        copy(src.ptr.add(s), dst.ptr.add(d), len);
                        core::slice::from_raw_parts(src.ptr.add(s), len)
                            == core::slice::from_raw_parts(dst.ptr.add(d), len)
                            && *dst.ptr.add(d + len) == 0
                    };
                    assert!(ok, "{name}: wrong copy of {len} bytes at offsets {s}, {d}");
                }
            }
        }
    }
}

fn copies(c: &mut Criterion) {
    check_variants();
    let hot_src = Buf::new(*SIZES.last().expect("sizes"));
    let arena = Buf::new(ARENA);
    let dst = Buf::new(*SIZES.last().expect("sizes"));
    let mut group = c.benchmark_group("copy");
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        for (name, copy) in VARIANTS {
            group.bench_function(BenchmarkId::new(name, format!("{size}/hot")), |b| {
                b.iter(|| {
                    // SAFETY: both buffers hold at least `size` bytes and do not overlap.
                    unsafe { copy(black_box(hot_src.ptr), black_box(dst.ptr), size) }
                });
            });
            if COLD_SIZES.contains(&size) {
                let mut at = 0;
                group.bench_function(BenchmarkId::new(name, format!("{size}/cold")), |b| {
                    b.iter(|| {
                        // SAFETY: `at + size <= ARENA` (ARENA is a multiple of every size);
                        // the arena and `dst` do not overlap.
                        unsafe { copy(black_box(arena.ptr.add(at)), black_box(dst.ptr), size) };
                        at = (at + size) % ARENA;
                    });
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, copies);
criterion_main!(benches);
