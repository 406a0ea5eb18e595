//! Running a closure in a forked child.
//!
//! # The fork caveat
//!
//! The test harness runs tests on several threads, and `fork` copies only the
//! calling thread: any lock another thread held at that moment (the stdout
//! lock, an allocator arena, a mutex of the test) stays locked forever in the
//! child. glibc's `malloc` is made safe across `fork`, but nothing else is.
//! So the closure does only simple work (touch memory, make system calls,
//! allocate a little) and avoids `println!` and locks shared with other
//! threads; the child leaves with `_exit`, never returning into the harness
//! and never running destructors or `atexit` handlers it inherited.
//!
//! A panic in the child is reported without the standard hook, which may
//! take the backtrace and stderr locks: [`fork_child`] installs (once) a hook
//! that, in a forked child only, writes the message with one `write(2)`
//! (and says nothing inside [`quiet_panics`](crate::quiet_panics)).

use std::io;
use std::panic::{AssertUnwindSafe, PanicHookInfo, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

/// How a forked child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    /// It exited with this code (101: the closure panicked).
    Exited(i32),
    /// A signal killed it (e.g. `SIGBUS`, `SIGSEGV`).
    Signaled(i32),
}

/// A child made by [`fork_child`]. Dropping it kills and reaps the child if it
/// was not waited for.
#[derive(Debug)]
pub struct ForkedChild {
    pid: Pid,
    reaped: bool,
}

/// Forks; the child runs `f` and `_exit`s with its result (101 if it
/// panics).
///
/// # The fork caveat
///
/// The test harness runs tests on several threads, and `fork` copies only
/// the calling thread: a lock another thread held at that moment (the stdout
/// or stderr lock, a mutex of the test) stays locked forever in the child.
/// glibc's `malloc` is made safe across `fork`, nothing else is. So `f` does
/// simple work (touch memory, make system calls, allocate a little) and
/// avoids `println!` and locks shared with other threads. A panic in `f` is
/// reported with one `write(2)`, without the standard hook's locks.
///
/// # Panics
///
/// If `fork` fails.
pub fn fork_child(f: impl FnOnce() -> i32) -> ForkedChild {
    crate::panic::install();
    // SAFETY: in the child only this thread exists; it runs `f`, which by this
    // function's documented contract does only fork-safe work, and then
    // `_exit`s without returning into the harness or running inherited
    // destructors (fork(2): "The child process is created with a single
    // thread—the one that called fork()").
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            IN_FORKED_CHILD.store(true, Ordering::Relaxed);
            let code = catch_unwind(AssertUnwindSafe(f)).unwrap_or(101);
            // SAFETY: _exit ends the process at once; nothing of the parent's
            // state is touched.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => ForkedChild {
            pid: child,
            reaped: false,
        },
        Err(e) => panic!("testkit: fork failed: {e}"),
    }
}

/// Set in a child made by [`fork_child`], so the panic hook takes no locks.
static IN_FORKED_CHILD: AtomicBool = AtomicBool::new(false);

/// Whether this process is a child made by [`fork_child`].
pub(crate) fn in_forked_child() -> bool {
    IN_FORKED_CHILD.load(Ordering::Relaxed)
}

/// Writes a forked child's panic message to stderr with one `write(2)`,
/// taking none of the locks another thread may have held at `fork`.
pub(crate) fn report_panic(info: &PanicHookInfo<'_>) {
    let message = format!("forked child {info}\n");
    // SAFETY: writes the bytes of a live buffer to fd 2; the result is
    // ignored, as there is nowhere else to report.
    let _ = unsafe { libc::write(2, message.as_ptr().cast(), message.len()) };
}

impl ForkedChild {
    /// The child's pid.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Waits at most `timeout` for the child to end.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::TimedOut`] if it did not: it is then killed and reaped.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<ChildExit> {
        let deadline = Instant::now() + timeout;
        let mut nap = Duration::from_millis(1);
        loop {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => {
                    self.reaped = true;
                    return Ok(ChildExit::Exited(code));
                }
                Ok(WaitStatus::Signaled(_, signal, _)) => {
                    self.reaped = true;
                    return Ok(ChildExit::Signaled(signal as i32));
                }
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            let now = Instant::now();
            if now >= deadline {
                self.kill_and_reap();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("forked child timed out after {timeout:?}; killed"),
                ));
            }
            thread::sleep(nap.min(deadline - now));
            nap = (nap * 2).min(Duration::from_millis(20));
        }
    }

    /// Waits at most `timeout` and returns the exit code.
    ///
    /// # Panics
    ///
    /// If the child times out or is killed by a signal.
    pub fn expect_exit(mut self, timeout: Duration) -> i32 {
        match self.wait_timeout(timeout) {
            Ok(ChildExit::Exited(code)) => code,
            Ok(ChildExit::Signaled(signal)) => panic!("forked child killed by signal {signal}"),
            Err(e) => panic!("{e}"),
        }
    }

    /// Waits at most `timeout` for exit code 0.
    ///
    /// # Panics
    ///
    /// Otherwise.
    pub fn expect_success(self, timeout: Duration) {
        let code = self.expect_exit(timeout);
        assert_eq!(code, 0, "forked child failed with exit code {code}");
    }

    fn kill_and_reap(&mut self) {
        let _ = kill(self.pid, Signal::SIGKILL);
        while let Err(Errno::EINTR) = waitpid(self.pid, None) {}
        self.reaped = true;
    }
}

impl Drop for ForkedChild {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill_and_reap();
        }
    }
}
