//! Panics a test expects, kept off stderr.
//!
//! libtest-mimic does not capture output, so a test that checks that something panics (a
//! failing role's `expect_success`, a leak guard, a forked child) printed the panic, and with
//! `RUST_BACKTRACE` set a backtrace, in the middle of a passing run. The hook installed here
//! stays silent for panics on a thread inside [`quiet_panics`] (which [`expect_panic`] uses);
//! every other panic is reported as before: by the standard hook, or in a forked child by one
//! `write(2)` (see [`fork_child`](crate::fork_child)).

use std::any::Any;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

thread_local! {
    /// Set while this thread runs code whose panics are expected.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Installs the hook once per process, wrapping whatever hook was there.
pub(crate) fn install() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let standard = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                return;
            }
            if crate::fork::in_forked_child() {
                crate::fork::report_panic(info);
            } else {
                standard(info);
            }
        }));
    });
}

/// Runs `f` with this thread's panics not printed; a panic still unwinds out of it (in a
/// forked child, it still ends the child with code 101).
///
/// # Examples
/// ```
/// use ringway_testkit::{ChildExit, fork_child, quiet_panics};
/// let child = fork_child(|| quiet_panics(|| panic!("expected, and not printed")));
/// assert_eq!(child.expect_exit(std::time::Duration::from_secs(30)), 101);
/// ```
pub fn quiet_panics<R>(f: impl FnOnce() -> R) -> R {
    install();
    let was = QUIET.replace(true);
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET.set(was);
    match result {
        Ok(value) => value,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Runs `f`, which must panic, without printing the panic; returns its message.
///
/// # Panics
/// If `f` returns instead.
///
/// # Examples
/// ```
/// let message = ringway_testkit::expect_panic(|| panic!("no {}", "room"));
/// assert_eq!(message, "no room");
/// ```
pub fn expect_panic<R>(f: impl FnOnce() -> R) -> String {
    match catch_unwind(AssertUnwindSafe(|| quiet_panics(f))) {
        Ok(_) => panic!("expected a panic, but the code returned"),
        Err(payload) => message(payload.as_ref()),
    }
}

/// The text of a panic payload.
fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else {
        "(a panic without a message)".to_owned()
    }
}
