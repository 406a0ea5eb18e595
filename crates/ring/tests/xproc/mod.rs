//! Helpers for the cross-process tests (`xprocess.rs`, `scribbler.rs`): a real `Region` that
//! children find by name or by an inherited fd, a control block beside the ring for the
//! processes to coordinate through, and self-checking message contents.

#![allow(dead_code, unreachable_pub)]

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ringway_region::{Backing, Region, RegionOptions};
use ringway_ring::RingMemory;
use ringway_testkit::{Child, LeakScope, RoleCommand};

/// Where a child finds the region: `posix:/name` or `fd:N` (an inherited memfd).
const SHARE_ENV: &str = "RINGWAY_XP_SHARE";
/// Bytes of the region given to the ring (the rest is control block and results).
const RING_LEN_ENV: &str = "RINGWAY_XP_RING_LEN";

/// The control block: one page of `u64` words after the ring, which no scribbler touches.
const CONTROL_LEN: usize = 4096;
const PAGE: usize = 4096;

/// How long a child waits for anything another process does before it gives up: generous,
/// because the tests share two cores with everything else `cargo test` runs.
pub const PATIENCE: Duration = Duration::from_secs(30);
/// How long the parent waits for a child to finish.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(240);

/// The backings the tests share a ring through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// POSIX shm, opened by name.
    Posix,
    /// A sealed memfd, inherited across exec.
    Memfd,
}

/// A region laid out as `| ring (page-rounded) | control page | results |`.
pub struct Shared {
    region: Arc<Region>,
    ring_len: usize,
    share: String,
}

impl Shared {
    /// Creates the region (the parent's side): `ring_len` bytes of ring, then the control
    /// page, then `results` bytes of zeroed result area.
    pub fn create(
        scope: &LeakScope,
        via: Via,
        tag: &str,
        ring_len: usize,
        results: usize,
    ) -> Shared {
        let size = ring_len.next_multiple_of(PAGE) + CONTROL_LEN + results.next_multiple_of(PAGE);
        let (backing, name) = match via {
            Via::Posix => {
                let name = scope.posix_name(tag);
                (Backing::posix(&name), Some(name))
            }
            Via::Memfd => (Backing::memfd(tag), None),
        };
        let region = Region::create(&backing, &RegionOptions::new().size(size))
            .unwrap_or_else(|e| panic!("create the test region: {e}"));
        let share = match name {
            Some(name) => format!("posix:{name}"),
            None => format!(
                "fd:{}",
                region.fd().expect("a memfd region has an fd").as_raw_fd()
            ),
        };
        Shared {
            region: Arc::new(region),
            ring_len,
            share,
        }
    }

    /// Opens the region a parent shared (a child's side), as the environment describes it.
    pub fn from_env() -> Shared {
        let share = std::env::var(SHARE_ENV).expect("the parent names the region");
        let ring_len: usize = env_number(RING_LEN_ENV).expect("the parent gives the ring length");
        let opts = RegionOptions::new().size(ring_len);
        let region = if let Some(name) = share.strip_prefix("posix:") {
            Region::open(&Backing::posix(name), &opts)
        } else {
            let fd = share
                .strip_prefix("fd:")
                .and_then(|fd| fd.parse().ok())
                .expect("posix:NAME or fd:N");
            // SAFETY: the parent kept this fd open across exec for this process only
            // (`RoleCommand::inherit_fd`), and nothing else here owns or closes it.
            unsafe { Region::from_inherited_fd(fd, &opts) }
        }
        .unwrap_or_else(|e| panic!("open the test region {share}: {e}"));
        Shared {
            region: Arc::new(region),
            ring_len,
            share,
        }
    }

    /// A command for a child playing `role` over this region.
    pub fn command(&self, role: &str) -> RoleCommand<'_> {
        let mut command = RoleCommand::new(role)
            .env(SHARE_ENV, self.share.clone())
            .env(RING_LEN_ENV, self.ring_len.to_string());
        if let Some(fd) = self.region.fd().filter(|_| self.share.starts_with("fd:")) {
            command = command.inherit_fd(fd);
        }
        command
    }

    /// Starts a child playing `role` with extra environment.
    pub fn spawn(&self, role: &str, env: &[(&str, String)]) -> Child {
        let mut command = self.command(role);
        for (key, value) in env {
            command = command.env(key, value.clone());
        }
        command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn role {role}: {e}"))
    }

    /// The ring's bytes, kept alive by the region.
    pub fn memory(&self) -> RingMemory {
        let keep: ringway_ring::KeepAlive = self.region.clone();
        // SAFETY: the first `ring_len` bytes of the mapping are valid for reads and writes
        // while the region lives, which `keep` guarantees for every clone and endpoint; this
        // process reaches them only through the ring (and the scribbler's raw writes).
        unsafe { RingMemory::from_raw(self.region.as_ptr(), self.ring_len, Some(keep)) }
            .expect("a page-aligned mapping of at least the ring's length")
    }

    /// The ring's bytes as a raw range (for the scribbler and for re-initialising).
    pub fn ring_ptr(&self) -> (*mut u8, usize) {
        (self.region.as_ptr(), self.ring_len)
    }

    /// Word `i` of the control block.
    pub fn control(&self, i: usize) -> &AtomicU64 {
        assert!(i < CONTROL_LEN / 8, "control word {i} out of range");
        let at = self.ring_len.next_multiple_of(PAGE) + i * 8;
        // SAFETY: `at + 8` lies inside the mapping (create sized it), it is 8-aligned (a page
        // multiple plus a multiple of 8), and every process reaches these bytes only as atomics.
        unsafe { &*self.region.as_ptr().add(at).cast::<AtomicU64>() }
    }

    /// Byte `i` of the result area.
    pub fn result(&self, i: usize) -> &AtomicU8 {
        let at = self.ring_len.next_multiple_of(PAGE) + CONTROL_LEN + i;
        assert!(at < self.region.len(), "result byte {i} out of range");
        // SAFETY: in bounds (asserted); every process reaches these bytes only as atomics.
        unsafe { &*self.region.as_ptr().add(at).cast::<AtomicU8>() }
    }
}

/// Stores `value` in control word `i` (Release, to publish what came before).
pub fn set(shared: &Shared, i: usize, value: u64) {
    shared.control(i).store(value, Ordering::Release);
}

/// Loads control word `i` (Acquire).
pub fn get(shared: &Shared, i: usize) -> u64 {
    shared.control(i).load(Ordering::Acquire)
}

/// Waits (sleeping briefly) until `ready` holds, for at most `timeout`; returns whether it did.
pub fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// A number from the environment.
pub fn env_number<T: std::str::FromStr>(key: &str) -> Option<T> {
    std::env::var(key).ok().and_then(|v| v.parse().ok())
}

/// Waits for every child (each for at most [`CHILD_TIMEOUT`]) and returns their stdouts, in
/// order; fails the test unless all exited with code 0, showing every child's output (the
/// first to fail is often not the one that went wrong).
pub fn finish(children: Vec<(Child, &str)>) -> Vec<String> {
    let mut outputs = Vec::new();
    let mut failed = false;
    let mut story = String::new();
    for (mut child, role) in children {
        let status = child.wait_timeout(CHILD_TIMEOUT);
        let (out, err) = child.output();
        let ok = matches!(&status, Ok(s) if s.success());
        failed |= !ok;
        story += &format!("--- {role}: {status:?}\nstdout:\n{out}\nstderr:\n{err}\n");
        outputs.push(out);
    }
    assert!(!failed, "a child did not exit normally:\n{story}");
    outputs
}

/// Runs a child role: the report is printed on a `report` line (see [`reported`]), an error
/// on stderr, and becomes exit code 1.
pub fn role(body: fn() -> Result<String, String>) -> i32 {
    match body() {
        Ok(report) => {
            println!("report {report}");
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// The value of `key=` on the `report` line a child printed.
pub fn reported(out: &str, key: &str) -> u64 {
    out.lines()
        .filter(|l| l.starts_with("report "))
        .flat_map(str::split_ascii_whitespace)
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in the child's report:\n{out}"))
}

/// Random bytes that message bodies are cut from (`fill` and `mismatch` are then a `memcpy`
/// and a `memcmp`, fast even in the unoptimised builds `cargo test` makes).
fn table() -> &'static [u8] {
    static TABLE: OnceLock<Vec<u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut x = 0x243F_6A88_85A3_08D3u64;
        (0..TABLE_OFFSETS + TABLE_BODY)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect()
    })
}

/// Message bodies start at one of this many offsets into the table.
const TABLE_OFFSETS: usize = 4096;
/// The longest message body the helpers support.
const TABLE_BODY: usize = 64 * 1024;

/// Message `seq` of `len` bytes is its sequence number (little-endian, cut to `len`), then
/// `len - 8` bytes of the table from an offset that depends on `seq`: a shifted, stale or
/// foreign byte shows.
fn parts(seq: u64, len: usize) -> ([u8; 8], &'static [u8]) {
    assert!(
        len <= 8 + TABLE_BODY,
        "message of {len} bytes is too long for the pattern"
    );
    let offset = (seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52) as usize % TABLE_OFFSETS;
    let body = len.saturating_sub(8);
    (seq.to_le_bytes(), &table()[offset..offset + body])
}

/// Fills `out` with message `seq`.
pub fn fill(seq: u64, out: &mut [u8]) {
    let (head, body) = parts(seq, out.len());
    let n = out.len().min(8);
    out[..n].copy_from_slice(&head[..n]);
    out[n..].copy_from_slice(body);
}

/// Writes message `seq` of `len` bytes through a raw pointer (into a grant, in place).
///
/// # Safety
/// `dst` must be valid for writes of `len` bytes.
pub unsafe fn fill_raw(seq: u64, dst: *mut u8, len: usize) {
    let (head, body) = parts(seq, len);
    let n = len.min(8);
    // SAFETY: `n + body.len() == len`, and the caller guarantees `dst` is writable for `len`
    // bytes; the sources are process-private, so nothing overlaps.
    unsafe {
        core::ptr::copy_nonoverlapping(head.as_ptr(), dst, n);
        core::ptr::copy_nonoverlapping(body.as_ptr(), dst.add(n), body.len());
    }
}

/// The first byte at which `got` differs from message `seq` of the same length, if any.
pub fn mismatch(seq: u64, got: &[u8]) -> Option<usize> {
    let (head, body) = parts(seq, got.len());
    let n = got.len().min(8);
    if got[..n] == head[..n] && got[n..] == *body {
        return None;
    }
    head[..n]
        .iter()
        .chain(body)
        .zip(got)
        .position(|(want, have)| want != have)
}
