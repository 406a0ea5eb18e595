//! The testkit tests itself: roles and their output, timeouts that kill,
//! forked children, fd inheritance, and leak guards that catch leaks.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use ringway_region::{Backing, Region, RegionOptions};
use ringway_testkit::{
    ChildExit, LeakScope, Leftover, RoleCommand, expect_panic, fork_child, harness, quiet_panics,
    spawn_role,
};

const TIMEOUT: Duration = Duration::from_secs(30);

fn role_ok() -> i32 {
    println!(
        "hello from {}",
        std::env::var("GREETING").unwrap_or_default()
    );
    0
}

fn role_fail() -> i32 {
    eprintln!("something went wrong");
    7
}

fn role_panic() -> i32 {
    panic!("role panics");
}

fn role_sleep() -> i32 {
    std::thread::sleep(Duration::from_secs(60));
    0
}

fn role_write_fd() -> i32 {
    let raw: i32 = std::env::var("FD").unwrap().parse().unwrap();
    // SAFETY: the parent kept this fd open across exec for this role alone.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let stream = UnixStream::from(sock);
    use std::io::Write;
    i32::from((&stream).write_all(b"inherited").is_err())
}

fn roles_report_code_and_output() -> Result<(), Failed> {
    spawn_role("ok", &[("GREETING", "tests")]).expect_success(TIMEOUT);
    let mut child = spawn_role("fail", &[]);
    let status = child.wait_timeout(TIMEOUT)?;
    assert_eq!(status.code(), Some(7));
    let (_, err) = child.output();
    assert!(
        err.contains("something went wrong"),
        "stderr captured: {err:?}"
    );
    assert_eq!(spawn_role("panic", &[]).expect_exit(TIMEOUT), 101);
    assert_eq!(spawn_role("no-such-role", &[]).expect_exit(TIMEOUT), 2);
    let message = expect_panic(|| spawn_role("fail", &[]).expect_success(TIMEOUT));
    assert!(
        message.contains("something went wrong"),
        "the panic shows stderr: {message}"
    );
    Ok(())
}

fn role_timeout_kills() -> Result<(), Failed> {
    let start = Instant::now();
    let mut child = spawn_role("sleep", &[]);
    let pid = child.pid();
    let err = child
        .wait_timeout(Duration::from_millis(200))
        .expect_err("times out");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(start.elapsed() < Duration::from_secs(10));
    // Killed and reaped: no such process any more.
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "child {pid} reaped"
    );
    Ok(())
}

fn role_inherits_fd() -> Result<(), Failed> {
    let (ours, theirs) = UnixStream::pair()?;
    let child = RoleCommand::new("write-fd")
        .env("FD", theirs.as_raw_fd().to_string())
        .inherit_fd(theirs.as_fd())
        .spawn()?;
    drop(theirs);
    child.expect_success(TIMEOUT);
    let mut got = String::new();
    use std::io::Read;
    (&ours).read_to_string(&mut got)?;
    assert_eq!(got, "inherited");
    Ok(())
}

fn forked_children() -> Result<(), Failed> {
    assert_eq!(fork_child(|| 0).expect_exit(TIMEOUT), 0);
    assert_eq!(fork_child(|| 42).expect_exit(TIMEOUT), 42);
    assert_eq!(
        fork_child(|| quiet_panics(|| panic!("child panics"))).expect_exit(TIMEOUT),
        101
    );
    let mut sleeper = fork_child(|| {
        std::thread::sleep(Duration::from_secs(60));
        0
    });
    let pid = sleeper.pid();
    let err = sleeper
        .wait_timeout(Duration::from_millis(100))
        .expect_err("times out");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "child {pid} reaped"
    );
    let mut killer = fork_child(|| {
        // SAFETY: raise only sends a signal to this process.
        unsafe { libc::raise(libc::SIGKILL) };
        0
    });
    assert_eq!(
        killer.wait_timeout(TIMEOUT)?,
        ChildExit::Signaled(libc::SIGKILL)
    );
    Ok(())
}

/// A scope that finds its objects still there removes them and fails the
/// test; a scope whose test already fails just cleans up.
fn leak_scope_catches_leaks() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("leak");
    let key = scope.sysv_key();
    let path = scope.temp_path("leak");
    let opts = RegionOptions::new().size(4096).persist(true);
    drop(Region::create(&Backing::posix(&name), &opts)?);
    drop(Region::create(&Backing::sysv(key), &opts)?);
    drop(Region::create(&Backing::file(&path), &opts)?);
    let private = Region::create(
        &Backing::sysv_private(),
        &RegionOptions::new().size(4096).persist(true),
    )?;
    scope.track_shmid(private.sysv_id().unwrap());
    drop(private);
    let found = scope.leftovers();
    assert_eq!(found.len(), 4, "{found:?}");
    assert!(found.contains(&Leftover::Posix(name.clone())));
    assert!(found.contains(&Leftover::Path(path.clone())));
    let message = expect_panic(move || drop(scope));
    assert!(
        message.contains("leaked") && message.contains(&name),
        "{message}"
    );
    assert!(
        Region::open(&Backing::posix(&name), &RegionOptions::new()).is_err(),
        "removed"
    );
    assert!(
        Region::open(&Backing::sysv(key), &RegionOptions::new()).is_err(),
        "removed"
    );
    assert!(!path.exists(), "removed");

    // While unwinding from a failed assertion: cleaned up, no double panic.
    let name = std::sync::Mutex::new(String::new());
    let message = expect_panic(|| {
        let scope = LeakScope::new();
        *name.lock().unwrap() = scope.posix_name("unwind");
        let region = Region::create(&Backing::posix(&*name.lock().unwrap()), &opts).unwrap();
        drop(region);
        panic!("the test fails");
    });
    assert_eq!(message, "the test fails", "no second panic from the scope");
    assert!(
        Region::list_prefixed(&name.lock().unwrap())?.is_empty(),
        "cleaned on unwind"
    );
    Ok(())
}

fn clean_scope_is_quiet() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let region = Region::create(
        &Backing::posix(scope.posix_name("clean")),
        &RegionOptions::new().size(4096),
    )?;
    assert_eq!(scope.leftovers().len(), 1, "present while alive");
    drop(region);
    assert!(scope.leftovers().is_empty());
    Ok(())
}

/// A passing run looks like one: the self-tests above expect panics and failing children, and
/// none of that reaches stderr. Runs this binary again, without this test.
fn self_tests_are_quiet() -> Result<(), Failed> {
    let output = Command::new(std::env::current_exe()?)
        .args(["--skip", "self_tests_are_quiet"])
        .env_remove(harness::ROLE_ENV)
        .stdin(Stdio::null())
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("test result: ok"), "{stdout}");
    for noise in ["panicked", "stack backtrace", "something went wrong"] {
        assert!(!stderr.contains(noise), "{noise:?} on stderr:\n{stderr}");
    }
    Ok(())
}

/// Panics outside `quiet_panics` are still reported (in a child, so this run stays quiet).
fn other_panics_still_print() -> Result<(), Failed> {
    let mut child = spawn_role("panic", &[]);
    assert_eq!(child.wait_timeout(TIMEOUT)?.code(), Some(101));
    let (_, err) = child.output();
    assert!(err.contains("role panics"), "{err}");
    let mut quiet = spawn_role("quiet-panic", &[]);
    assert_eq!(quiet.wait_timeout(TIMEOUT)?.code(), Some(101));
    let (_, err) = quiet.output();
    assert!(!err.contains("panicked"), "{err}");
    Ok(())
}

fn role_quiet_panic() -> i32 {
    quiet_panics(|| panic!("not printed"))
}

fn main() {
    let tests = vec![
        Trial::test("roles_report_code_and_output", roles_report_code_and_output),
        Trial::test("role_timeout_kills_and_reaps", role_timeout_kills),
        Trial::test("role_inherits_fd", role_inherits_fd),
        Trial::test("forked_children", forked_children),
        Trial::test("leak_scope_catches_leaks", leak_scope_catches_leaks),
        Trial::test("clean_scope_is_quiet", clean_scope_is_quiet),
        Trial::test("self_tests_are_quiet", self_tests_are_quiet),
        Trial::test("other_panics_still_print", other_panics_still_print),
    ];
    let roles: &[harness::Role<'_>] = &[
        ("ok", role_ok),
        ("fail", role_fail),
        ("panic", role_panic),
        ("quiet-panic", role_quiet_panic),
        ("sleep", role_sleep),
        ("write-fd", role_write_fd),
    ];
    harness::main(tests, roles);
}
