//! Integration tests of ringway-region, across real processes and real
//! kernel objects.
//!
//! - `conformance`: one generic suite, instantiated for every backing (and
//!   every way of handing a region to a second process);
//! - `errors`: every error path, asserted by kind;
//! - `docs`: the documents say what a truncation does as the code does it;
//! - `sigbus`: the SIGBUS guard, each victim in a child process;
//! - `integrity`: `check_intact` and `fault_counter`, what the ring layer
//!   uses to notice a truncation;
//! - `unlink`: a name that now belongs to another object is left alone;
//! - `roles`: what the re-executed second processes do.
//!
//! The binary uses testkit's harness: when re-run with `RINGWAY_TEST_ROLE`
//! set it plays a role instead of running the tests, and after all tests it
//! fails the run if anything of its own is left in `/dev/shm`, the SysV table
//! or the temporary directory.

mod conformance;
mod docs;
mod errors;
mod fixtures;
mod integrity;
mod roles;
mod sigbus;
mod unlink;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use libtest_mimic::{Failed, Trial};
use ringway_region::Region;

/// How long any child may take: generous for a loaded 2-core machine, but a
/// hung child fails the test instead of hanging it.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);

/// The pattern seeds: the creator writes one, the peer checks it and writes
/// the other.
pub(crate) const PARENT_SEED: u8 = 1;
pub(crate) const PEER_SEED: u8 = 2;

/// A size no other test of this process uses at the same time (so a mapping
/// of the same length cannot take the place of one just unmapped), not a
/// multiple of the page size (so `len` is the object size, not the mapping's).
pub(crate) fn unique_size() -> usize {
    static N: AtomicUsize = AtomicUsize::new(0);
    (2 + N.fetch_add(1, Ordering::Relaxed)) * 4096 + 123
}

pub(crate) fn pattern_byte(i: usize, seed: u8) -> u8 {
    (i.wrapping_mul(7) ^ (i >> 8)).wrapping_add(usize::from(seed) * 13) as u8
}

/// Writes the pattern of `seed` over the whole region.
pub(crate) fn fill(region: &Region, seed: u8) {
    let bytes: Vec<u8> = (0..region.len()).map(|i| pattern_byte(i, seed)).collect();
    // SAFETY: the region is mapped read-write for `len` bytes; bytes are
    // copied through raw pointers, no reference into the mapping is made.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), region.as_ptr(), bytes.len()) };
}

/// Checks that the whole region holds the pattern of `seed`.
pub(crate) fn check(region: &Region, seed: u8) -> Result<(), String> {
    let mut bytes = vec![0u8; region.len()];
    // SAFETY: the region is mapped for `len` bytes; copied out through a raw
    // pointer.
    unsafe { std::ptr::copy_nonoverlapping(region.as_ptr(), bytes.as_mut_ptr(), bytes.len()) };
    match bytes
        .iter()
        .enumerate()
        .find(|&(i, &b)| b != pattern_byte(i, seed))
    {
        None => Ok(()),
        Some((i, b)) => Err(format!(
            "{:?}: byte {i} is {b:#04x}, pattern {seed} has {:#04x}",
            region.backing(),
            pattern_byte(i, seed)
        )),
    }
}

/// What a second process does with a region it mapped: check the creator's
/// pattern, answer with its own. Returns the exit code.
pub(crate) fn peer_exchange(region: &Region) -> i32 {
    if let Err(e) = check(region, PARENT_SEED) {
        eprintln!("peer: {e}");
        return 3;
    }
    fill(region, PEER_SEED);
    0
}

/// A test function of this binary.
pub(crate) type TestFn = fn() -> Result<(), Failed>;

/// Named trials: `<prefix>::<name>`.
pub(crate) fn trials(prefix: &str, tests: &[(&str, TestFn)]) -> Vec<Trial> {
    tests
        .iter()
        .map(|&(name, test)| Trial::test(format!("{prefix}::{name}"), test))
        .collect()
}

fn main() {
    // A strict umask for the whole run: creates must still get exactly the
    // mode they ask for (they fchmod after creating).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let mut tests: Vec<Trial> = Vec::new();
    tests.extend(fixtures::all_suites());
    tests.extend(errors::trials());
    tests.extend(docs::trials());
    tests.extend(sigbus::trials());
    tests.extend(integrity::trials());
    tests.extend(unlink::trials());
    let roles: Vec<_> = [roles::ROLES, sigbus::ROLES, integrity::ROLES].concat();
    ringway_testkit::harness::main(tests, &roles);
}
