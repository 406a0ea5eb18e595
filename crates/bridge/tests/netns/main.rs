//! The bridge between two hosts, made of two network namespaces joined by a veth pair: a
//! producer in A writes numbered messages into a ringway channel, bridge A publishes them,
//! bridge B subscribes and writes them into a channel in B, and the consumer there checks
//! every one. Then the same under back-pressure, a cut link, a killed bridge and a lossy
//! route. Real processes (`ip netns exec`), root needed; everything made is removed, also
//! when a test fails.

#[allow(dead_code)] // shared with `ringway-bridge bench`, which uses part of it
#[path = "../../src/bench/hosts.rs"]
mod hosts;
mod roles;

use std::path::PathBuf;
use std::time::Duration;

use hosts::{ADDR_A, Hosts, Proc, wait_for};
use libtest_mimic::{Failed, Trial};
use ringway_bridge::StatusSnapshot;
use ringway_testkit::{LeakScope, harness};

const PORT: u16 = 7447;
/// Ample for any step on a loaded 2-core machine; a hang fails instead of spinning.
const LONG: Duration = Duration::from_secs(240);

fn bridge_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ringway-bridge"))
}

/// One test's world: the hosts, its channel names, its processes.
struct World {
    hosts: Hosts,
    _scope: LeakScope,
    chan_a: String,
    chan_b: String,
    key: String,
}

impl World {
    fn new(test: &str) -> World {
        let hosts = Hosts::new();
        let scope = LeakScope::new();
        let chan_a = scope.posix_name(&format!("{test}-a"));
        let chan_b = scope.posix_name(&format!("{test}-b"));
        let key = format!("ringway/test/{}", chan_a.trim_start_matches('/'));
        World {
            hosts,
            _scope: scope,
            chan_a,
            chan_b,
            key,
        }
    }

    fn role(&self, role: &str, ns: &str, env: &[(&str, String)]) -> Proc {
        let mut env = env.to_vec();
        env.push((harness::ROLE_ENV, role.to_owned()));
        let exe = std::env::current_exe().expect("the test binary");
        Proc::spawn(&self.hosts, role, ns, &exe, &[], &env)
    }

    /// Bridge A: listens on A's address, publishes channel A on the key.
    fn bridge_a(&self, options: &str) -> Proc {
        let args = [
            "run".to_owned(),
            format!("--listen=tcp/{ADDR_A}:{PORT}"),
            format!("--out={}={}{options}", self.chan_a, self.key),
            format!(
                "--status-file={}",
                self.hosts.path("bridge-a.status").display()
            ),
        ];
        Proc::spawn(
            &self.hosts,
            "bridge-a",
            &self.hosts.a,
            &bridge_exe(),
            &args,
            &[],
        )
    }

    /// Bridge B (run number `run`): connects to A, delivers the key into channel B.
    fn bridge_b(&self, options: &str, run: u32) -> Proc {
        let args = [
            "run".to_owned(),
            format!("--connect=tcp/{ADDR_A}:{PORT}"),
            format!("--in={}={}{options}", self.key, self.chan_b),
            format!("--status-file={}", self.status_b(run).display()),
        ];
        Proc::spawn(
            &self.hosts,
            &format!("bridge-b{run}"),
            &self.hosts.b,
            &bridge_exe(),
            &args,
            &[],
        )
    }

    fn status_b(&self, run: u32) -> PathBuf {
        self.hosts.path(&format!("bridge-b{run}.status"))
    }

    fn read_status(&self, path: &PathBuf) -> Option<StatusSnapshot> {
        StatusSnapshot::parse(&std::fs::read_to_string(path).ok()?)
    }

    /// Waits until bridge B's run `run` has delivered at least `n` messages.
    fn wait_delivered(&self, run: u32, n: u64) -> StatusSnapshot {
        wait_for(LONG, &format!("bridge B to deliver {n} messages"), || {
            self.read_status(&self.status_b(run))
                .filter(|s| s.routes[0].messages >= n)
        })
    }
}

/// With `RINGWAY_BRIDGE_TEST_VERBOSE` set, says what a test saw (the tests are quiet
/// otherwise).
fn tell(test: &str, consumer: &str, status: &StatusSnapshot) {
    if std::env::var_os("RINGWAY_BRIDGE_TEST_VERBOSE").is_some() {
        eprintln!("{test}: consumer {} / bridge B: {status}", consumer.trim());
    }
}

/// Stops bridges cleanly (SIGTERM), so they drop their channel ends and the names go.
fn stop(bridges: &mut [&mut Proc]) {
    for b in bridges.iter() {
        b.terminate();
    }
    for b in bridges.iter_mut() {
        b.expect_success(Duration::from_secs(60));
    }
}

/// `key=value` pairs of a role's last output line.
fn field(output: &str, key: &str) -> u64 {
    output
        .lines()
        .rev()
        .flat_map(|l| l.split(' '))
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in:\n{output}"))
}

fn env_of(
    w: &World,
    channel: &str,
    count: u64,
    extra: &[(&str, &str)],
) -> Vec<(&'static str, String)> {
    let _ = w;
    let mut env = vec![
        ("CHANNEL", channel.to_owned()),
        ("COUNT", count.to_string()),
    ];
    for (k, v) in extra {
        env.push((leak(k), (*v).to_owned()));
    }
    env
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// The plain case: 1 M numbered 64 B messages from A to B, none lost, none duplicated, in
/// order.
fn a_million_messages_cross_in_order() -> Result<(), Failed> {
    let w = World::new("million");
    let count = 1_000_000;
    let mut consumer = w.role("consumer", &w.hosts.b, &env_of(&w, &w.chan_b, count, &[]));
    let mut producer = w.role("producer", &w.hosts.a, &env_of(&w, &w.chan_a, count, &[]));
    let mut a = w.bridge_a("");
    let mut b = w.bridge_b("", 0);
    let out = consumer.expect_success(LONG);
    producer.expect_success(LONG);
    assert_eq!(field(&out, "received"), count, "{out}");
    let status = w.wait_delivered(0, count);
    tell("million", &out, &status);
    assert_eq!(
        (status.routes[0].gaps, status.routes[0].refused),
        (0, 0),
        "{status}"
    );
    stop(&mut [&mut a, &mut b]);
    Ok(())
}

/// The consumer in B stops for 2 s: the full channel in B holds bridge B, Zenoh's queues and
/// TCP fill, bridge A stops reading, and the producer in A sees a full channel; nothing is
/// lost.
fn back_pressure_reaches_the_producer() -> Result<(), Failed> {
    let w = World::new("pressure");
    let count = 300_000;
    let small = [("CAPACITY", "1024")];
    let pause = [
        ("CAPACITY", "1024"),
        ("PAUSE_AT", "1000"),
        ("PAUSE_MS", "2000"),
    ];
    let mut consumer = w.role(
        "consumer",
        &w.hosts.b,
        &env_of(&w, &w.chan_b, count, &pause),
    );
    let mut producer = w.role(
        "producer",
        &w.hosts.a,
        &env_of(&w, &w.chan_a, count, &small),
    );
    let mut a = w.bridge_a("");
    let mut b = w.bridge_b("", 0);
    let out = consumer.expect_success(LONG);
    let produced = producer.expect_success(LONG);
    tell(
        "pressure",
        &format!("{out} producer {produced}"),
        &w.wait_delivered(0, count),
    );
    assert_eq!(field(&out, "received"), count, "{out}");
    assert!(
        field(&produced, "full") > 0,
        "the producer never saw a full channel: {produced}"
    );
    stop(&mut [&mut a, &mut b]);
    Ok(())
}

/// The link between the hosts is cut for 2 s, then restored. Zenoh's lease (10 s) outlasts
/// the cut and TCP retransmits what was in flight, so the session survives and nothing is
/// lost; had the session closed, the gap would be reported (checked: bridge B's counters
/// agree with what the consumer saw).
fn a_cut_link_loses_nothing() -> Result<(), Failed> {
    let w = World::new("linkdown");
    let count = 300_000;
    let mut consumer = w.role(
        "consumer",
        &w.hosts.b,
        &env_of(&w, &w.chan_b, count, &[("GAPS", "allowed")]),
    );
    let mut producer = w.role("producer", &w.hosts.a, &env_of(&w, &w.chan_a, count, &[]));
    let mut a = w.bridge_a("");
    let mut b = w.bridge_b("", 0);
    w.wait_delivered(0, 20_000);
    w.hosts.link(false);
    std::thread::sleep(Duration::from_secs(2));
    w.hosts.link(true);
    let out = consumer.expect_success(LONG);
    producer.expect_success(LONG);
    let status = w.wait_delivered(0, field(&out, "received"));
    tell("linkdown", &out, &status);
    let route = &status.routes[0];
    assert_eq!(
        field(&out, "skipped"),
        route.missing,
        "consumer and bridge disagree: {out} / {status}"
    );
    assert_eq!(
        field(&out, "received"),
        count,
        "lost across the cut (reported: {status}): {out}"
    );
    stop(&mut [&mut a, &mut b]);
    Ok(())
}

/// Bridge B is killed with SIGKILL mid-stream and restarted: what was in flight is lost,
/// the restarted bridge reports where it joined the stream, and the consumer's first
/// message after the gap is exactly that one; nothing duplicated, nothing garbled.
fn a_killed_bridge_restarts_and_reports_the_gap() -> Result<(), Failed> {
    let w = World::new("killb");
    let count = 300_000;
    let gaps = [("GAPS", "allowed"), ("IDLE_MS", "20000")];
    let mut consumer = w.role("consumer", &w.hosts.b, &env_of(&w, &w.chan_b, count, &gaps));
    let mut producer = w.role("producer", &w.hosts.a, &env_of(&w, &w.chan_a, count, &[]));
    let mut a = w.bridge_a("");
    let mut b0 = w.bridge_b("", 0);
    w.wait_delivered(0, 20_000);
    b0.kill();
    std::thread::sleep(Duration::from_millis(500));
    let mut b = w.bridge_b("", 1);
    let out = consumer.expect_success(LONG);
    producer.expect_success(LONG);
    // The restarted bridge joined the stream at `unseen` and delivered the rest.
    let status = wait_for(LONG, "bridge B's second run to deliver the rest", || {
        w.read_status(&w.status_b(1))
            .filter(|s| s.routes[0].messages + s.routes[0].unseen >= count)
    });
    tell("killb", &out, &status);
    let route = &status.routes[0];
    assert_eq!(
        field(&out, "next"),
        count,
        "the consumer did not get the last message: {out}"
    );
    assert!(field(&out, "gaps") <= 1, "{out}");
    assert_eq!(route.messages + route.unseen, count, "{status}");
    if field(&out, "gaps") == 1 {
        assert_eq!(
            field(&out, "first_after_gap"),
            route.unseen,
            "gap not where bridge B said it joined: {out} / {status}"
        );
    }
    assert_eq!(route.missing, 0, "{status}");
    stop(&mut [&mut a, &mut b]);
    Ok(())
}

/// Lossy routes under overload (a slow consumer with a small channel): bridge B drops what
/// does not fit and counts it; everything the consumer gets is intact and in order, and
/// every number it did not get is counted by the bridge.
fn lossy_mode_counts_its_drops() -> Result<(), Failed> {
    let w = World::new("lossy");
    let count = 200_000;
    let slow = [
        ("GAPS", "allowed"),
        ("CAPACITY", "256"),
        ("PAUSE_AT", "1"),
        ("PAUSE_MS", "2000"),
        ("IDLE_MS", "3000"),
    ];
    let mut consumer = w.role("consumer", &w.hosts.b, &env_of(&w, &w.chan_b, count, &slow));
    let mut producer = w.role("producer", &w.hosts.a, &env_of(&w, &w.chan_a, count, &[]));
    let mut a = w.bridge_a(",lossy");
    let mut b = w.bridge_b(",lossy", 0);
    let out = consumer.expect_success(LONG);
    producer.expect_success(LONG);
    let received = field(&out, "received");
    let status = wait_for(LONG, "bridge B's counters to settle", || {
        w.read_status(&w.status_b(0))
            .filter(|s| s.routes[0].messages == received)
    });
    tell("lossy", &out, &status);
    let route = &status.routes[0];
    assert!(route.drops > 0, "nothing dropped under overload: {status}");
    if field(&out, "next") == count {
        // The last message arrived, so every number before it was either received or
        // counted by the bridge: dropped at the full channel, or a gap in transit.
        assert_eq!(
            field(&out, "skipped"),
            route.drops + route.missing,
            "{out} / {status}"
        );
    }
    assert!(
        field(&out, "skipped") <= route.drops + route.missing,
        "the consumer missed more than the bridge counted: {out} / {status}"
    );
    stop(&mut [&mut a, &mut b]);
    Ok(())
}

fn main() {
    let tests = [
        (
            "a_million_messages_cross_in_order",
            a_million_messages_cross_in_order as fn() -> Result<(), Failed>,
        ),
        (
            "back_pressure_reaches_the_producer",
            back_pressure_reaches_the_producer,
        ),
        ("a_cut_link_loses_nothing", a_cut_link_loses_nothing),
        (
            "a_killed_bridge_restarts_and_reports_the_gap",
            a_killed_bridge_restarts_and_reports_the_gap,
        ),
        ("lossy_mode_counts_its_drops", lossy_mode_counts_its_drops),
    ];
    let trials = tests
        .into_iter()
        .map(|(name, f)| Trial::test(name, f))
        .collect();
    harness::main(
        trials,
        &[("producer", roles::producer), ("consumer", roles::consumer)],
    );
}
