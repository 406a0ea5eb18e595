//! Two separately compiled programs share typed channels: `interop-producer` and
//! `interop-consumer` each declare the same `#[repr(C)]` structs in their own crate and
//! module (`interop_producer::wire::Req`, `interop_consumer::protocol::Req`), and run as
//! separate processes over a POSIX shm name.
//!
//! - With `#[derive(Message)]` they interoperate: the fingerprint is the layout's.
//! - A third program whose `Req` has `qty: i32` instead of `u32` is refused at open, with an
//!   error that names `qty`, and takes nothing from the channel.
//! - Without the derive (bytemuck types) the type is identified by its path, as before: the
//!   programs are refused, naming both paths, unless both set `ChannelOptions::type_name`.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use libtest_mimic::{Failed, Trial};
use ringway_testkit::{LeakScope, harness, wait_timeout};

const PRODUCER: &str = env!("CARGO_BIN_EXE_interop-producer");
const CONSUMER: &str = env!("CARGO_BIN_EXE_interop-consumer");
const CHANGED: &str = env!("CARGO_BIN_EXE_interop-consumer-changed");

/// How long a program may take: generous for a loaded 2-core machine, but bounded.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A program running; dropping it closes its stdin (the producer's signal to give up) and
/// waits for it, so a failed test leaves no process behind.
struct Running(Option<Child>);

fn start(program: &str, args: &[&str]) -> Running {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    Running(Some(child))
}

impl Running {
    /// Closes the program's stdin.
    fn close_stdin(&mut self) {
        if let Some(child) = &mut self.0 {
            drop(child.stdin.take());
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.close_stdin();
        if let Some(mut child) = self.0.take() {
            let _ = wait_timeout(&mut child, TIMEOUT);
        }
    }
}

/// What a program did: its exit code, stdout and stderr.
struct Run {
    code: i32,
    out: String,
    err: String,
}

impl Run {
    /// The first line of stdout: the program's `type_name` of its message type.
    fn type_name(&self) -> &str {
        self.out.lines().next().unwrap_or("")
    }
}

fn finish(mut running: Running) -> Run {
    let mut child = running.0.take().expect("not finished yet");
    let status = wait_timeout(&mut child, TIMEOUT).expect("the program exits in time");
    let mut run = Run {
        code: status.code().unwrap_or(-1),
        out: String::new(),
        err: String::new(),
    };
    let _ = child.stdout.take().unwrap().read_to_string(&mut run.out);
    let _ = child.stderr.take().unwrap().read_to_string(&mut run.err);
    run
}

fn expect_code(run: &Run, code: i32, what: &str) -> Result<(), Failed> {
    if run.code != code {
        return Err(format!(
            "{what}: exit code {} (expected {code})\nstdout:\n{}\nstderr:\n{}",
            run.code, run.out, run.err
        )
        .into());
    }
    Ok(())
}

/// The same struct, derived in two programs: every message arrives, in order and intact.
fn derived_types_cross_programs() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("derive");
    let producer = start(PRODUCER, &["derive", &name, "500"]);
    let consumer = finish(start(CONSUMER, &["derive", &name, "500"]));
    expect_code(&consumer, 0, "consumer")?;
    assert!(consumer.out.contains("received 500"), "{}", consumer.out);
    let producer = finish(producer);
    expect_code(&producer, 0, "producer")?;
    // Two programs, two paths for the same declaration.
    assert_eq!(producer.type_name(), "interop_producer::wire::Req");
    assert_eq!(consumer.type_name(), "interop_consumer::protocol::Req");
    Ok(())
}

/// A drifted field type is refused at open, naming the field; the channel is untouched and
/// the matching consumer still gets everything.
fn changed_field_is_refused_naming_it() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("changed");
    let producer = start(PRODUCER, &["derive", &name, "50"]);
    let changed = finish(start(CHANGED, &[&name]));
    expect_code(&changed, 2, "changed consumer")?;
    let expected = "the first field that differs is `qty`: `i32` here, `u32` in the channel's type";
    assert!(changed.err.contains(expected), "{}", changed.err);
    assert!(
        changed
            .err
            .contains("carries `Req` (24 bytes, align 8), but this endpoint is for `Req`"),
        "{}",
        changed.err
    );
    let consumer = finish(start(CONSUMER, &["derive", &name, "50"]));
    expect_code(&consumer, 0, "consumer after the refused one")?;
    expect_code(&finish(producer), 0, "producer")?;
    Ok(())
}

/// Without the derive the type is identified by its path, as before: refused naming both
/// paths, unless both programs set the same `ChannelOptions::type_name`.
fn types_without_the_derive_match_by_name() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("pod");
    let mut producer = start(PRODUCER, &["pod", &name, "20"]);
    let consumer = finish(start(CONSUMER, &["pod", &name, "20"]));
    expect_code(&consumer, 2, "consumer of a bytemuck type")?;
    assert!(
        consumer.err.contains(
            "carries `interop_producer::wire::PodReq` (24 bytes, align 8), but this endpoint is \
             for `interop_consumer::protocol::PodReq` (24 bytes, align 8)"
        ),
        "{}",
        consumer.err
    );
    assert!(
        consumer.err.contains("#[derive(ringway_channel::Message)]"),
        "the error points at the derive: {}",
        consumer.err
    );
    producer.close_stdin(); // nobody will attach: let it go
    expect_code(&finish(producer), 4, "producer left waiting")?;

    let name = scope.posix_name("pod-named");
    let producer = start(PRODUCER, &["pod", &name, "20", "PodReq"]);
    let consumer = finish(start(CONSUMER, &["pod", &name, "20", "PodReq"]));
    expect_code(&consumer, 0, "consumer with the same type_name")?;
    expect_code(&finish(producer), 0, "producer")?;
    Ok(())
}

fn main() {
    harness::main(
        vec![
            Trial::test("derived_types_cross_programs", derived_types_cross_programs),
            Trial::test(
                "changed_field_is_refused_naming_it",
                changed_field_is_refused_naming_it,
            ),
            Trial::test(
                "types_without_the_derive_match_by_name",
                types_without_the_derive_match_by_name,
            ),
        ],
        &[],
    );
}
