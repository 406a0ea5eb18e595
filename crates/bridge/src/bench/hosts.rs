//! Two "hosts" on one machine: two network namespaces joined by a veth pair, made by the
//! test and removed when its guard drops (also when the test fails); and processes inside
//! them that are killed when their guard drops.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Host A's address on the veth pair (a private range, inside the namespaces only).
pub(crate) const ADDR_A: &str = "10.77.0.1";
pub(crate) const ADDR_B: &str = "10.77.0.2";

static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("run `ip {}`: {e} (is iproute2 installed?)", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Two network namespaces `a` and `b`, joined by veths `veth_a` (in `a`, [`ADDR_A`]) and
/// `veth_b` (in `b`, [`ADDR_B`]), loopback up in both. Names hold the pid and a counter, so
/// parallel tests and parallel runs never collide. Dropping it deletes both namespaces
/// (which deletes the veths).
pub(crate) struct Hosts {
    pub(crate) a: String,
    pub(crate) b: String,
    pub(crate) veth_a: String,
    pub(crate) dir: PathBuf,
}

impl Hosts {
    /// Makes the two hosts, or panics saying why (not root, no netns support, no `ip`): a
    /// test that needs them must not pass without them.
    pub(crate) fn new() -> Hosts {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}x{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("ringway-bridge-hosts-{tag}"));
        std::fs::create_dir_all(&dir).expect("make the test's temporary directory");
        let hosts = Hosts {
            a: format!("rwb{tag}a"),
            b: format!("rwb{tag}b"),
            // Interface names are at most 15 bytes.
            veth_a: format!("rwa{tag}"),
            dir,
        };
        let veth_b = format!("rwb{tag}");
        assert!(
            hosts.veth_a.len() <= 15,
            "veth name {} too long",
            hosts.veth_a
        );
        let setup = || -> Result<(), String> {
            ip(&["netns", "add", &hosts.a])?;
            ip(&["netns", "add", &hosts.b])?;
            ip(&[
                "link",
                "add",
                &hosts.veth_a,
                "netns",
                &hosts.a,
                "type",
                "veth",
                "peer",
                "name",
                &veth_b,
                "netns",
                &hosts.b,
            ])?;
            for (ns, dev, addr) in [
                (&hosts.a, &hosts.veth_a, ADDR_A),
                (&hosts.b, &veth_b, ADDR_B),
            ] {
                ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
                ip(&["-n", ns, "link", "set", dev, "up"])?;
                ip(&["-n", ns, "link", "set", "lo", "up"])?;
            }
            Ok(())
        };
        if let Err(e) = setup() {
            drop(hosts);
            panic!(
                "two hosts need two network namespaces joined by a veth pair, made with \
                 `ip netns add` and `ip link add ... type veth`, which takes root (this process \
                 runs as uid {}) and a kernel with network namespaces: {e}",
                euid()
            );
        }
        hosts
    }

    /// Takes host A's end of the link down or up.
    pub(crate) fn link(&self, up: bool) {
        ip(&[
            "-n",
            &self.a,
            "link",
            "set",
            &self.veth_a,
            if up { "up" } else { "down" },
        ])
        .expect("set the link");
    }

    /// A path in the test's temporary directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The effective uid, from `/proc/self/status` (`Uid: real effective saved fs`).
fn euid() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?;
            line.split_whitespace().nth(2).map(str::to_owned)
        })
        .unwrap_or_else(|| "?".to_owned())
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            if Path::new("/run/netns").join(ns).exists()
                && let Err(e) = ip(&["netns", "del", ns])
            {
                eprintln!("cleanup: {e}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A process in a namespace, killed (SIGKILL) and reaped when dropped. Its stdout and
/// stderr go to files in the test's directory, shown when it fails.
pub(crate) struct Proc {
    pub(crate) name: String,
    child: Option<Child>,
    out: PathBuf,
}

impl Proc {
    /// Runs `exe args` in namespace `ns` with `env`.
    pub(crate) fn spawn(
        hosts: &Hosts,
        name: &str,
        ns: &str,
        exe: &Path,
        args: &[String],
        env: &[(&str, String)],
    ) -> Proc {
        Proc::spawn_in(&hosts.dir, name, Some(ns), exe, args, env)
    }

    /// Runs `exe args` with `env`, in namespace `ns` if given, its output in `dir`.
    pub(crate) fn spawn_in(
        dir: &Path,
        name: &str,
        ns: Option<&str>,
        exe: &Path,
        args: &[String],
        env: &[(&str, String)],
    ) -> Proc {
        let out = dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&out).expect("make a log file");
        let mut cmd = match ns {
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns]).arg(exe);
                cmd
            }
            None => Command::new(exe),
        };
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup the log"))
            .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} in {ns:?}: {e}"));
        Proc {
            name: name.to_owned(),
            child: Some(child),
            out,
        }
    }

    /// What it printed so far.
    pub(crate) fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Kills it with SIGKILL and reaps it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM (a clean stop for a bridge).
    pub(crate) fn terminate(&self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
    }

    /// Waits up to `timeout` for it to exit; kills it and panics with its output if it
    /// does not.
    pub(crate) fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("still running");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status;
            }
            if start.elapsed() > timeout {
                self.kill();
                panic!(
                    "{} did not finish within {timeout:?}; its output:\n{}",
                    self.name,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a successful exit, or panics with its output.
    pub(crate) fn expect_success(&mut self, timeout: Duration) -> String {
        let status = self.wait(timeout);
        let output = self.output();
        assert!(
            status.success(),
            "{} failed ({status}); its output:\n{output}",
            self.name
        );
        output
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` every 20 ms until it returns `Some`, or panics after `timeout` with `what`.
pub(crate) fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
