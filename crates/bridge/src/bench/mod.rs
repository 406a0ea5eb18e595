//! `ringway-bridge bench`: one-way throughput and round-trip latency, 64 B and 64 KiB,
//! through ringway + bridge + Zenoh, next to Zenoh pub/sub used directly and a plain TCP
//! stream; on loopback and across two network namespaces joined by a veth pair, in one run.
//! Every figure is the median over `--trials` runs.

#[allow(dead_code)] // shared with the netns tests, which use all of it
mod hosts;
mod roles;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hosts::{ADDR_A, ADDR_B, Hosts, Proc};
use ringway_bridge::BridgeError;
pub(crate) use roles::{RoleArgs, role};

/// Options of `ringway-bridge bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Messages in each 64 B one-way run.
    #[arg(long, default_value_t = 200_000)]
    small: u64,
    /// Messages in each 64 KiB one-way run.
    #[arg(long, default_value_t = 2_000)]
    large: u64,
    /// Round trips in each latency run.
    #[arg(long, default_value_t = 2_000)]
    pings: u64,
    /// Runs of everything; each figure is the median.
    #[arg(long, default_value_t = 3)]
    trials: usize,
    /// Loopback only (the namespace runs need root).
    #[arg(long)]
    loopback_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Bridge,
    Zenoh,
    Tcp,
}

impl Transport {
    const ALL: [Transport; 3] = [Transport::Bridge, Transport::Zenoh, Transport::Tcp];

    fn name(self) -> &'static str {
        match self {
            Transport::Bridge => "ringway + bridge + Zenoh",
            Transport::Zenoh => "Zenoh pub/sub",
            Transport::Tcp => "TCP stream",
        }
    }
}

/// Where the two sides run: both in this namespace on 127.0.0.1, or in two namespaces.
struct Place {
    name: &'static str,
    hosts: Option<Hosts>,
    dir: PathBuf,
}

impl Place {
    fn ns(&self, a: bool) -> Option<&str> {
        self.hosts
            .as_ref()
            .map(|h| if a { h.a.as_str() } else { h.b.as_str() })
    }

    /// The address of host A (`a`) or B.
    fn addr(&self, a: bool) -> &'static str {
        match (&self.hosts, a) {
            (None, _) => "127.0.0.1",
            (Some(_), true) => ADDR_A,
            (Some(_), false) => ADDR_B,
        }
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

fn exe() -> PathBuf {
    std::env::current_exe().expect("this program's path")
}

fn spawn(place: &Place, name: &str, on_a: bool, args: Vec<String>) -> Proc {
    Proc::spawn_in(&place.dir, name, place.ns(on_a), &exe(), &args, &[])
}

fn role_args(role: &str, addr: &str, size: usize, count: u64, tx: &str, rx: &str) -> Vec<String> {
    [
        "bench-role",
        "--role",
        role,
        "--addr",
        addr,
        "--size",
        &size.to_string(),
        "--count",
        &count.to_string(),
        "--tx",
        tx,
        "--rx",
        rx,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// One measurement: `ns` (one way, from first to last message) or `p50` (round trip).
fn measure(place: &Place, transport: Transport, size: usize, count: u64, rtt: bool) -> u64 {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let port = 20_000 + (std::process::id() % 20_000) as u16 + n as u16 % 1000;
    // The far side (in B) listens, except for the bridges, where bridge A listens.
    let addr = place.addr(false);
    let tcp = format!("{addr}:{port}");
    let zenoh = format!("tcp/{addr}:{port}");
    let zenoh_a = format!("tcp/{}:{port}", place.addr(true));
    let chan = |s: &str| format!("/rwbench-{}-{n}-{s}", std::process::id());
    let (a1, a2, b1, b2) = (chan("a1"), chan("a2"), chan("b1"), chan("b2"));
    let mut bridges = Vec::new();
    let (far, near) = match (transport, rtt) {
        (Transport::Tcp, false) => (
            role_args("tcp-recv", &tcp, size, count, "", ""),
            role_args("tcp-send", &tcp, size, count, "", ""),
        ),
        (Transport::Tcp, true) => (
            role_args("tcp-echo", &tcp, size, count, "", ""),
            role_args("tcp-ping", &tcp, size, count, "", ""),
        ),
        (Transport::Zenoh, false) => (
            role_args("zenoh-sub", &zenoh, size, count, "", ""),
            role_args("zenoh-pub", &zenoh, size, count, "", ""),
        ),
        (Transport::Zenoh, true) => (
            role_args("zenoh-echo", &zenoh, size, count, "", ""),
            role_args("zenoh-ping", &zenoh, size, count, "", ""),
        ),
        (Transport::Bridge, _) => {
            let mut a = vec![
                "run".to_owned(),
                format!("--listen={zenoh_a}"),
                format!("--out={a1}=bench/{n}/ab"),
            ];
            let mut b = vec![
                "run".to_owned(),
                format!("--connect={zenoh_a}"),
                format!("--in=bench/{n}/ab={b1}"),
            ];
            if rtt {
                a.push(format!("--in=bench/{n}/ba={a2}"));
                b.push(format!("--out={b2}=bench/{n}/ba"));
            }
            bridges.push(spawn(place, "bridge-a", true, a));
            bridges.push(spawn(place, "bridge-b", false, b));
            if rtt {
                (
                    role_args("ring-echo", "", size, count, &b2, &b1),
                    role_args("ring-ping", "", size, count, &a1, &a2),
                )
            } else {
                (
                    role_args("ring-recv", "", size, count, "", &b1),
                    role_args("ring-send", "", size, count, &a1, ""),
                )
            }
        }
    };
    let mut far = spawn(place, "far", false, far);
    let mut near = spawn(place, "near", true, near);
    let timeout = Duration::from_secs(120);
    let (key, measured) = if rtt {
        let measured = near.expect_success(timeout);
        far.expect_success(timeout);
        ("p50=", measured)
    } else {
        let measured = far.expect_success(timeout);
        near.expect_success(timeout);
        ("ns=", measured)
    };
    for b in &bridges {
        b.terminate();
    }
    for b in &mut bridges {
        b.wait(Duration::from_secs(30));
    }
    measured
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in the output:\n{measured}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn rate(size: usize, per_sec: f64) -> String {
    if size <= 64 {
        format!("{:.0} k msgs/s", per_sec / 1e3)
    } else {
        format!("{:.0} MB/s", per_sec * size as f64 / 1e6)
    }
}

fn micros(ns: f64) -> String {
    format!("{:.0} µs", ns / 1e3)
}

pub(crate) fn main(args: &BenchArgs) -> Result<(), BridgeError> {
    let dir = std::env::temp_dir().join(format!("ringway-bridge-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| BridgeError::io(format!("make {}", dir.display()), e))?;
    let mut places = vec![Place {
        name: "loopback",
        hosts: None,
        dir: dir.clone(),
    }];
    if !args.loopback_only {
        let hosts = Hosts::new();
        let dir = hosts.dir.clone();
        places.push(Place {
            name: "two netns (veth)",
            hosts: Some(hosts),
            dir,
        });
    }
    // Removes this run's channels and logs at the end, also when a measurement panics.
    let _cleanup = Cleanup(dir.clone());
    let sizes = [(64usize, args.small), (65_536usize, args.large)];
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| place | transport | 64 B one way | 64 KiB one way | 64 B round trip, p50 | 64 KiB round trip, p50 |\n|---|---|---|---|---|---|"
    );
    for place in &places {
        for t in Transport::ALL {
            let mut cells = Vec::new();
            for (size, count) in sizes {
                let runs = (0..args.trials)
                    .map(|_| {
                        (count - 1) as f64 / (measure(place, t, size, count, false) as f64 / 1e9)
                    })
                    .collect();
                cells.push(rate(size, median(runs)));
            }
            for (size, _) in sizes {
                let runs = (0..args.trials)
                    .map(|_| measure(place, t, size, args.pings, true) as f64)
                    .collect();
                cells.push(micros(median(runs)));
            }
            let row = format!("| {} | {} | {} |", place.name, t.name(), cells.join(" | "));
            eprintln!("{row}");
            let _ = writeln!(table, "{row}");
        }
    }
    println!("{table}");
    Ok(())
}

struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        remove_leftovers(&self.0);
    }
}

/// Channels of a failed run, and the log directory.
fn remove_leftovers(dir: &Path) {
    let prefix = format!("rwbench-{}-", std::process::id());
    if let Ok(entries) = std::fs::read_dir("/dev/shm") {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
