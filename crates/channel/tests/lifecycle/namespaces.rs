//! Peers in other pid (and user) namespaces, judged by their locks.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use libtest_mimic::Failed;
use ringway_channel::{PeerState, Receiver, RecvError, SendError, Sender};
use ringway_region::{Backing, Region, RegionOptions};
use ringway_testkit::{LeakScope, spawn_role};

use super::common::{Msg, TIMEOUT};
use super::{INTERVAL, env, kill9, opts, report_host_pid};

/// Role `ns-relay`: started in a new pid namespace's parent (it called
/// `unshare(CLONE_NEWPID)` before exec), it starts `NS_ROLE` as its child, which is pid 1 of
/// the new namespace, and waits for it.
pub(crate) fn role_ns_relay() -> i32 {
    let role = env("NS_ROLE");
    let mut child = spawn_role(&role, &[]);
    let _ = child.wait_timeout(Duration::from_secs(600));
    0
}

/// Role `ns-send`: opens `ADDR` as a sender and sends for ever (until killed), one message
/// every millisecond or so.
pub(crate) fn role_ns_send() -> i32 {
    if std::process::id() != 1 {
        eprintln!("ns-send: expected to be pid 1 of a new pid namespace");
        return 3;
    }
    let mut tx = Sender::<Msg>::open(env("ADDR").as_str(), &opts()).unwrap();
    report_host_pid();
    for seq in 0.. {
        match tx.send_timeout(Msg::new(7, seq), TIMEOUT) {
            Ok(()) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => {
                eprintln!("ns-send: {e}");
                return 1;
            }
        }
    }
    0
}

/// Role `ns-hold`: opens `ADDR` as a sender and holds it, sending nothing, until killed.
pub(crate) fn role_ns_hold() -> i32 {
    let _tx = Sender::<Msg>::open(env("ADDR").as_str(), &opts()).unwrap();
    report_host_pid();
    std::thread::sleep(Duration::from_secs(600));
    0
}

/// Role `ns-recv`: opens `ADDR` as a receiver and receives for ever (until killed).
pub(crate) fn role_ns_recv() -> i32 {
    let mut rx = Receiver::<Msg>::open(env("ADDR").as_str(), &opts()).unwrap();
    report_host_pid();
    loop {
        match rx.recv_timeout(TIMEOUT) {
            Ok(_) => {}
            Err(e) => {
                eprintln!("ns-recv: {e}");
                return 1;
            }
        }
    }
}

/// Starts `role` as pid 1 of a new pid namespace (through a relay), with the channel's
/// address and a pid file; returns the relay and the role's pid as this namespace sees it.
fn in_new_pid_namespace(role: &str, addr: &str, scope: &LeakScope) -> (std::process::Child, i32) {
    in_new_namespaces(role, addr, scope, libc::CLONE_NEWPID)
}

/// As [`in_new_pid_namespace`], with the namespaces of `flags` (`CLONE_NEWUSER` too, say).
fn in_new_namespaces(
    role: &str,
    addr: &str,
    scope: &LeakScope,
    flags: libc::c_int,
) -> (std::process::Child, i32) {
    let pidfile: PathBuf = scope.temp_path("nspid");
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .env(ringway_testkit::harness::ROLE_ENV, "ns-relay")
        .env("NS_ROLE", role)
        .env("ADDR", addr)
        .env("PIDFILE", &pidfile)
        .stdin(std::process::Stdio::null());
    // SAFETY: the hook runs between fork and exec and calls unshare(2) only, which is a plain
    // system call (async-signal-safe); it allocates nothing and takes no locks.
    unsafe {
        command.pre_exec(move || {
            if libc::unshare(flags) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let relay = command.spawn().expect("spawn the namespace relay");
    let pid = super::pid_from(&pidfile);
    (relay, pid)
}

/// Whether a tool inspecting the segment (as `ringway clean` does) sees any party alive.
fn anyone_alive_as_clean_sees_it(name: &str) -> bool {
    let region =
        Region::open(&Backing::posix(name), &RegionOptions::new().read_only(true)).unwrap();
    let keep: ringway_ring::KeepAlive = std::sync::Arc::new(());
    // SAFETY: the region outlives `memory` (both are locals of this function, `memory` is
    // dropped first), and only `inspect_with` (atomic loads) touches the read-only memory.
    let memory =
        unsafe { ringway_ring::RingMemory::from_raw(region.as_ptr(), region.len(), Some(keep)) }
            .unwrap();
    let liveness = ringway_channel::party_liveness(&region);
    let info = ringway_ring::inspect_with(&memory, &*liveness).unwrap();
    info.producers
        .iter()
        .chain(&info.consumers)
        .any(|p| p.alive)
}

/// A sender in another pid namespace, without a `/proc` of its own (its pid, 1, means
/// another process here): alive for as long as it runs — 15 liveness intervals at least —
/// then its kill -9 is detected within the bound, and a tool sees the segment abandoned only
/// after the death.
pub(crate) fn a_sender_in_another_pid_namespace_is_judged_right() -> Result<(), Failed> {
    sender_in_other_namespaces(libc::CLONE_NEWPID, "ns sender")
}

/// The same with the sender in another user namespace too (unmapped: it runs as the
/// overflow user there, and its ids mean nothing here either).
pub(crate) fn a_sender_in_another_user_and_pid_namespace_is_judged_right() -> Result<(), Failed> {
    sender_in_other_namespaces(
        libc::CLONE_NEWUSER | libc::CLONE_NEWPID,
        "user+pid ns sender",
    )
}

fn sender_in_other_namespaces(flags: libc::c_int, what: &str) -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("ns-tx");
    let mut rx = Receiver::<Msg>::create(&name, &opts())?;
    let (mut relay, pid) = in_new_namespaces("ns-send", &name, &scope, flags);
    let alive_for = INTERVAL * 15;
    let start = Instant::now();
    let mut got = 0;
    while start.elapsed() < alive_for {
        match rx.recv_timeout(INTERVAL) {
            Ok(msg) => {
                assert_eq!(msg, Msg::new(7, msg.seq));
                got += 1;
            }
            Err(RecvError::Timeout) => {}
            Err(e) => return Err(format!("a live sender was judged gone: {e}").into()),
        }
        assert_eq!(rx.peer_state(), PeerState::Connected);
    }
    assert!(anyone_alive_as_clean_sees_it(&name));
    assert!(got > 0);
    kill9(pid);
    let killed = Instant::now();
    loop {
        match rx.recv_timeout(TIMEOUT) {
            Ok(_) => {}
            Err(RecvError::Disconnected) => break,
            Err(e) => return Err(format!("after the kill: {e}").into()),
        }
    }
    let detected = killed.elapsed();
    eprintln!("{what}: kill -9 detected after {detected:?} (interval {INTERVAL:?})");
    assert!(detected < INTERVAL * 50, "detection took {detected:?}");
    assert_eq!(rx.peer_state(), PeerState::Died);
    let _ = relay.wait();
    Ok(())
}

/// What `ringway clean` relies on: a segment whose only live party is in another pid
/// namespace is in use while that party lives, and abandoned as soon as it is killed.
pub(crate) fn a_tool_sees_a_party_in_another_namespace_alive_until_it_dies() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("ns-clean");
    let rx = Receiver::<Msg>::create(&name, &opts())?;
    let (mut relay, pid) = in_new_pid_namespace("ns-hold", &name, &scope);
    drop(rx);
    let start = Instant::now();
    while start.elapsed() < INTERVAL * 10 {
        assert!(
            anyone_alive_as_clean_sees_it(&name),
            "the sender in another pid namespace was judged dead while it ran"
        );
        std::thread::sleep(INTERVAL / 4);
    }
    kill9(pid);
    let _ = relay.wait();
    assert!(
        !anyone_alive_as_clean_sees_it(&name),
        "a killed party still counts as alive"
    );
    Region::remove(&Backing::posix(name.as_str()))?;
    Ok(())
}

/// The other direction: a receiver in another pid namespace holds the sender's sends for 15
/// intervals without being judged dead, and its kill -9 ends a blocked send with
/// `Disconnected`.
pub(crate) fn a_receiver_in_another_pid_namespace_is_judged_right() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("ns-rx");
    let mut tx = Sender::<Msg>::create(&name, &opts())?;
    let (mut relay, pid) = in_new_pid_namespace("ns-recv", &name, &scope);
    let start = Instant::now();
    let mut seq = 0;
    while start.elapsed() < INTERVAL * 15 {
        match tx.send_timeout(Msg::new(1, seq), INTERVAL) {
            Ok(()) => seq += 1,
            Err(SendError::Timeout { .. }) => {}
            Err(e) => return Err(format!("a live receiver was judged gone: {e}").into()),
        }
    }
    assert_eq!(tx.peer_state(), PeerState::Connected);
    kill9(pid);
    let killed = Instant::now();
    loop {
        match tx.send_timeout(Msg::new(1, seq), TIMEOUT) {
            Ok(()) => seq += 1,
            Err(SendError::Disconnected { .. }) => break,
            Err(e) => return Err(format!("after the kill: {e}").into()),
        }
    }
    let detected = killed.elapsed();
    eprintln!("ns receiver: kill -9 detected after {detected:?} (interval {INTERVAL:?})");
    assert!(detected < INTERVAL * 50, "detection took {detected:?}");
    let _ = relay.wait();
    Ok(())
}
