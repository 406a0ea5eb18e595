//! The `main` of a `harness = false` test binary.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::exit;

use libtest_mimic::{Arguments, Trial};

use crate::leak;

/// The environment variable naming the role a re-executed test binary plays.
pub const ROLE_ENV: &str = "RINGWAY_TEST_ROLE";

/// A role a re-executed test binary can play: its name and the function that
/// plays it, returning the exit code.
pub type Role<'a> = (&'a str, fn() -> i32);

/// Runs a test binary.
///
/// If [`ROLE_ENV`] names one of `roles`, runs that role and exits with its
/// code (101 if it panics, 2 if the role is unknown): the binary was
/// re-executed by [`spawn_role`](crate::spawn_role). Otherwise runs `tests`
/// with libtest-mimic's usual argument parsing, then checks that this process
/// left nothing behind (POSIX names with [`process_posix_prefix`], SysV
/// segments with keys from [`unique_sysv_key`] or created by this process,
/// paths from [`unique_temp_path`]): leftovers are listed, removed, and fail
/// the run.
///
/// [`process_posix_prefix`]: crate::process_posix_prefix
/// [`unique_sysv_key`]: crate::unique_sysv_key
/// [`unique_temp_path`]: crate::unique_temp_path
pub fn main(tests: Vec<Trial>, roles: &[Role<'_>]) -> ! {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        let Some((_, run)) = roles.iter().find(|(name, _)| *name == role) else {
            eprintln!(
                "testkit: unknown role {role:?}; known: {:?}",
                roles.iter().map(|r| r.0).collect::<Vec<_>>()
            );
            exit(2);
        };
        let code = catch_unwind(AssertUnwindSafe(run)).unwrap_or(101);
        exit(code);
    }
    let args = Arguments::from_args();
    let conclusion = libtest_mimic::run(&args, tests);
    let leftovers = leak::process_leftovers();
    if !leftovers.is_empty() {
        eprintln!("testkit: this test run left shared memory behind (now removed):");
        for leftover in &leftovers {
            eprintln!("  {leftover}");
        }
        exit(1);
    }
    conclusion.exit()
}
