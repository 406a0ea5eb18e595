//! Re-running this test binary as a separate process that plays a role.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::memfd::{MFdFlags, memfd_create};

use crate::harness::ROLE_ENV;

/// A command that runs this test binary again as a child playing `role`.
///
/// The child sees [`ROLE_ENV`] set to the role, so
/// [`harness::main`](crate::harness::main) runs the role instead of the
/// tests. Its stdin is `/dev/null`; its stdout and stderr are captured (in
/// memfds, so a chatty child cannot block on a full pipe) and shown when it
/// fails.
///
/// # Examples
///
/// ```no_run
/// use ringway_testkit::RoleCommand;
/// use std::os::fd::{AsFd, AsRawFd};
/// use std::time::Duration;
///
/// let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
/// let child = RoleCommand::new("receiver")
///     .env("SOCK_FD", theirs.as_raw_fd().to_string())
///     .inherit_fd(theirs.as_fd())
///     .spawn()
///     .unwrap();
/// drop(theirs);
/// child.expect_success(Duration::from_secs(10));
/// # drop(ours);
/// ```
#[derive(Debug)]
pub struct RoleCommand<'fd> {
    role: String,
    envs: Vec<(String, String)>,
    fds: Vec<BorrowedFd<'fd>>,
}

impl<'fd> RoleCommand<'fd> {
    /// A command for `role`.
    pub fn new(role: &str) -> RoleCommand<'fd> {
        RoleCommand {
            role: role.to_owned(),
            envs: Vec::new(),
            fds: Vec::new(),
        }
    }

    /// Sets an environment variable in the child.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> RoleCommand<'fd> {
        self.envs.push((key.to_owned(), value.into()));
        self
    }

    /// Keeps `fd` open, at the same number, in the child: its `FD_CLOEXEC` is
    /// cleared in the child only, between `fork` and `exec`, so no other
    /// child spawned concurrently inherits it.
    pub fn inherit_fd(mut self, fd: BorrowedFd<'fd>) -> RoleCommand<'fd> {
        self.fds.push(fd);
        self
    }

    /// Starts the child.
    ///
    /// # Errors
    ///
    /// If the current executable cannot be found or started.
    pub fn spawn(self) -> io::Result<Child> {
        let stdout = capture_file("stdout")?;
        let stderr = capture_file("stderr")?;
        let mut command = Command::new(std::env::current_exe()?);
        command
            .env(ROLE_ENV, &self.role)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(stdout.try_clone()?)
            .stderr(stderr.try_clone()?);
        let fds: Vec<RawFd> = self.fds.iter().map(AsRawFd::as_raw_fd).collect();
        if !fds.is_empty() {
            // SAFETY: the hook runs in the forked child before exec, where
            // only async-signal-safe calls are allowed: it calls fcntl(2) only
            // (listed in signal-safety(7)), allocates nothing and takes no
            // locks. The fds are valid: `self.fds` borrows them for 'fd, which
            // outlives this call.
            unsafe {
                command.pre_exec(move || {
                    for &fd in &fds {
                        let flags = libc::fcntl(fd, libc::F_GETFD);
                        if flags == -1
                            || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) == -1
                        {
                            return Err(io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        let inner = command.spawn()?;
        Ok(Child {
            inner,
            role: self.role,
            stdout,
            stderr,
            status: None,
        })
    }
}

/// Runs this test binary again as a child playing `role`, with `env` set.
///
/// # Panics
///
/// If the child cannot be started.
pub fn spawn_role(role: &str, env: &[(&str, &str)]) -> Child {
    let mut command = RoleCommand::new(role);
    for (key, value) in env {
        command = command.env(key, *value);
    }
    command
        .spawn()
        .unwrap_or_else(|e| panic!("testkit: cannot spawn role {role:?}: {e}"))
}

fn capture_file(label: &str) -> io::Result<File> {
    let fd = memfd_create(label, MFdFlags::MFD_CLOEXEC).map_err(io::Error::from)?;
    Ok(File::from(fd))
}

/// A child started by [`spawn_role`] or [`RoleCommand::spawn`].
///
/// Dropping it kills and reaps the child if it is still running, so a failed
/// test leaves no process behind.
#[derive(Debug)]
pub struct Child {
    inner: std::process::Child,
    role: String,
    stdout: File,
    stderr: File,
    status: Option<ExitStatus>,
}

impl Child {
    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.inner.id()
    }

    /// Waits at most `timeout` for the child to exit.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::TimedOut`] if it did not: it is then killed and
    /// reaped, and the error message includes its output so far.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        match wait_timeout(&mut self.inner, timeout) {
            Ok(status) => {
                self.status = Some(status);
                Ok(status)
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                let (out, err) = self.output();
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("role {:?} {e}; stdout:\n{out}\nstderr:\n{err}", self.role),
                ))
            }
            Err(e) => Err(e),
        }
    }

    /// The child's captured stdout and stderr so far.
    pub fn output(&mut self) -> (String, String) {
        (read_all(&mut self.stdout), read_all(&mut self.stderr))
    }

    /// Waits at most `timeout` and returns the exit code.
    ///
    /// # Panics
    ///
    /// If the child times out or is killed by a signal; the message shows
    /// its output.
    pub fn expect_exit(mut self, timeout: Duration) -> i32 {
        let status = self.wait_timeout(timeout).unwrap_or_else(|e| panic!("{e}"));
        match status.code() {
            Some(code) => code,
            None => {
                let (out, err) = self.output();
                panic!(
                    "role {:?} died: {status}; stdout:\n{out}\nstderr:\n{err}",
                    self.role
                )
            }
        }
    }

    /// Waits at most `timeout` for the child to exit with code 0.
    ///
    /// # Panics
    ///
    /// Otherwise, showing its status and output.
    pub fn expect_success(mut self, timeout: Duration) {
        let status = self.wait_timeout(timeout).unwrap_or_else(|e| panic!("{e}"));
        if !status.success() {
            let (out, err) = self.output();
            panic!(
                "role {:?} failed: {status}; stdout:\n{out}\nstderr:\n{err}",
                self.role
            );
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.inner.kill();
            let _ = self.inner.wait();
        }
    }
}

fn read_all(file: &mut File) -> String {
    let mut text = String::new();
    if file.rewind().is_ok() {
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    text
}

/// Waits at most `timeout` for `child` to exit; on timeout kills and reaps it
/// and returns [`io::ErrorKind::TimedOut`]. A test never hangs on a child.
///
/// # Errors
///
/// On timeout, and if waiting fails.
pub fn wait_timeout(child: &mut std::process::Child, timeout: Duration) -> io::Result<ExitStatus> {
    let deadline = Instant::now() + timeout;
    let mut nap = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("timed out after {timeout:?}; killed"),
            ));
        }
        thread::sleep(nap.min(deadline - now));
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}
