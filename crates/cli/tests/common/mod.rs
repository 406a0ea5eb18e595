//! Running the real `ringway` binary from a test, with a deadline: a test never hangs on it.

// Each test binary that includes this module uses part of it.
#![allow(dead_code)]

use std::fs;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How one run of `ringway` ended.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `ringway args...` in `dir` (its output goes to files there), killing it if it takes
/// longer than `limit`.
pub(crate) fn ringway_in(dir: &Path, args: &[&str], limit: Duration) -> Run {
    let out = dir.join("stdout.txt");
    let err = dir.join("stderr.txt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringway"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .expect("start ringway");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for ringway") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ringway {args:?} took longer than {limit:?}\nstdout:\n{}\nstderr:\n{}",
                fs::read_to_string(&out).unwrap_or_default(),
                fs::read_to_string(&err).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Run {
        status,
        stdout: fs::read_to_string(out).unwrap(),
        stderr: fs::read_to_string(err).unwrap(),
    }
}

/// Runs `ringway args...` in a scratch directory of its own, removed afterwards.
pub(crate) fn ringway(args: &[&str], limit: Duration) -> Run {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "ringway-run-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&dir).expect("create scratch dir");
    let run = ringway_in(&dir, args, limit);
    let _ = fs::remove_dir_all(&dir);
    run
}
