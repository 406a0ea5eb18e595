//! What a user sees when a channel call fails in `fn main() -> Result<(), Box<dyn Error>>`
//! with `?`: each role below is such a `main` (std's `Termination::report` prints
//! `Error: {err:?}`), run in a child whose stderr the test reads word for word.

use std::error::Error as StdError;
use std::process::Termination;
use std::time::Duration;

use libtest_mimic::{Failed, Trial};
use ringway_channel::{ByteReceiver, ByteSender, ChannelOptions, Receiver, Sender};
use ringway_testkit::{LeakScope, harness, spawn_role};

const TIMEOUT: Duration = Duration::from_secs(60);

fn address() -> String {
    std::env::var("ADDR").expect("ADDR names the channel")
}

/// `main` opening a channel nobody creates.
fn role_open_missing() -> i32 {
    fn run() -> Result<(), Box<dyn StdError>> {
        let opts = ChannelOptions::new().open_timeout(Duration::from_millis(300));
        let _rx = Receiver::<u64>::open(address(), &opts)?;
        Ok(())
    }
    exit_code(run())
}

/// `main` sending after the receiver left.
fn role_send_disconnected() -> i32 {
    fn run() -> Result<(), Box<dyn StdError>> {
        let mut tx = Sender::<u64>::create(address(), &ChannelOptions::new())?;
        drop(Receiver::<u64>::open(address(), &ChannelOptions::new())?);
        tx.send(7)?;
        Ok(())
    }
    exit_code(run())
}

/// `main` sending a local `String`'s bytes with `?` (this did not compile while the error
/// borrowed the message), after the receiver left.
fn role_send_local() -> i32 {
    fn run() -> Result<(), Box<dyn StdError>> {
        let mut tx = ByteSender::create(address(), &ChannelOptions::new())?;
        drop(ByteReceiver::open(address(), &ChannelOptions::new())?);
        let s = format!("order {}", 42);
        tx.send(s.as_bytes())?;
        Ok(())
    }
    exit_code(run())
}

/// What `main` does with its result.
fn exit_code(result: Result<(), Box<dyn StdError>>) -> i32 {
    if result.report() == std::process::ExitCode::SUCCESS {
        0
    } else {
        1
    }
}

/// Runs `role` on a fresh channel name and returns its stderr.
fn stderr_of(role: &str, scope: &LeakScope) -> Result<(String, String), Failed> {
    let name = scope.posix_name(role);
    let mut child = spawn_role(role, &[("ADDR", &name)]);
    let status = child.wait_timeout(TIMEOUT)?;
    assert_eq!(status.code(), Some(1), "{role} fails like main does");
    Ok((name, child.output().1))
}

fn open_timeout_reads_like_the_message() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let (name, err) = stderr_of("open-missing", &scope)?;
    let head = format!("Error: open channel POSIX shm \"{name}\": not ready after waiting ");
    // Before: `Error: NotFound { channel: "...", waited: 300.412907ms, source: Os { .. } }`.
    let rest = err.strip_prefix(&head).ok_or_else(|| err.clone())?;
    let (waited, rest) = rest.split_once(" (").ok_or_else(|| err.clone())?;
    let ms: u64 = waited
        .strip_suffix(" ms")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("rounded to whole milliseconds: {waited:?} in {err}"))?;
    assert!((300..1000).contains(&ms), "{err}");
    assert!(
        rest.starts_with(&format!("open POSIX shm \"{name}\": no such object")),
        "{err}"
    );
    assert!(
        err.trim_end()
            .ends_with("(ChannelOptions::open_timeout sets how long to wait)"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    Ok(())
}

fn send_errors_name_the_channel() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let (name, err) = stderr_of("send-disconnected", &scope)?;
    // Before: `Error: SendError(no receiver left (it dropped its end or died))`.
    assert_eq!(
        err,
        format!(
            "Error: send on channel POSIX shm \"{name}\": no receiver left (it dropped its end \
             or died)\n"
        )
    );
    let (name, err) = stderr_of("send-local", &scope)?;
    assert_eq!(
        err,
        format!(
            "Error: send on channel POSIX shm \"{name}\": no receiver left (it dropped its end \
             or died)\n"
        )
    );
    Ok(())
}

fn main() {
    let tests = vec![
        Trial::test(
            "open_timeout_reads_like_the_message",
            open_timeout_reads_like_the_message,
        ),
        Trial::test("send_errors_name_the_channel", send_errors_name_the_channel),
    ];
    let roles: &[harness::Role<'_>] = &[
        ("open-missing", role_open_missing),
        ("send-disconnected", role_send_disconnected),
        ("send-local", role_send_local),
    ];
    harness::main(tests, roles);
}
