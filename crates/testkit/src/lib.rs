//! Test helpers for ringway's cross-process tests: a harness whose test
//! binary re-executes itself as a child with a role, forked children, waits
//! that never hang, unique names, and guards that find and remove leaked
//! shared memory.
//!
//! - [`harness::main`]: the `main` of a `harness = false` test binary, on top
//!   of `libtest-mimic` (so `cargo test`, filters, `--test-threads` and
//!   cargo-nextest work), dispatching to a role when the binary is re-run as
//!   a child, and checking for leftovers after all trials.
//! - [`spawn_role`] and [`RoleCommand`]: run this test binary again as a
//!   separate process playing a role, optionally inheriting fds; its output is
//!   captured and shown when it fails; [`Child::wait_timeout`] kills and reaps
//!   on timeout.
//! - [`fork_child`]: run a closure in a forked child ([`ForkedChild`]).
//! - [`unique_posix_name`], [`unique_sysv_key`], [`unique_temp_path`]: names
//!   no other test (or concurrent test run) uses.
//! - [`LeakScope`]: hands out those names for one test and, when dropped
//!   (also while unwinding from a failed assertion), removes whatever of
//!   them is still there and fails the test if anything was.
//! - [`expect_panic`] and [`quiet_panics`]: panics a test expects, kept off
//!   stderr (libtest-mimic does not capture output).
//!
//! # Examples
//!
//! A test binary declared with `harness = false`:
//!
//! ```no_run
//! use libtest_mimic::{Failed, Trial};
//! use ringway_testkit::{LeakScope, harness, spawn_role};
//! use std::time::Duration;
//!
//! fn peer() -> i32 {
//!     let name = std::env::var("NAME").unwrap();
//!     println!("peer opens {name}");
//!     0
//! }
//!
//! fn two_processes() -> Result<(), Failed> {
//!     let scope = LeakScope::new();
//!     let name = scope.posix_name("demo");
//!     spawn_role("peer", &[("NAME", &name)]).expect_success(Duration::from_secs(10));
//!     Ok(())
//! }
//!
//! fn main() {
//!     harness::main(vec![Trial::test("two_processes", two_processes)], &[("peer", peer)]);
//! }
//! ```

mod fork;
pub mod harness;
mod leak;
mod names;
mod panic;
mod process;

pub use fork::{ChildExit, ForkedChild, fork_child};
pub use leak::{LeakScope, Leftover};
pub use names::{
    SYSV_KEY_TAG, process_posix_prefix, unique_posix_name, unique_sysv_key, unique_temp_path,
};
pub use panic::{expect_panic, quiet_panics};
pub use process::{Child, RoleCommand, spawn_role, wait_timeout};
