//! Channels the way services run: peers in other pid namespaces (as containers sharing
//! `/dev/shm` are), peers that come back after their predecessor died, and blocked calls that
//! are interrupted. The tests run as root (creating a pid namespace needs it).

mod common;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Msg, TIMEOUT};
use libtest_mimic::{Failed, Trial};
use ringway_channel::{ChannelOptions, PeerState, Receiver, RecvError, SendError, Sender};
use ringway_region::{Backing, Region, RegionOptions};
use ringway_testkit::{LeakScope, spawn_role};

const INTERVAL: Duration = Duration::from_millis(20);

fn opts() -> ChannelOptions {
    ChannelOptions::new()
        .capacity(64)
        .open_timeout(Duration::from_secs(30))
        .liveness_interval(INTERVAL)
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("child: {key} not set"))
}

/// Writes this process's pid as the host sees it (the first field of `/proc/self/stat`: a
/// child in a new pid namespace without its own `/proc` reads the host's) to `PIDFILE`.
fn report_host_pid() {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let pid = stat.split_ascii_whitespace().next().unwrap();
    let path = env("PIDFILE");
    std::fs::write(format!("{path}.tmp"), pid).unwrap();
    std::fs::rename(format!("{path}.tmp"), path).unwrap();
}

/// Role `ns-relay`: started in a new pid namespace's parent (it called
/// `unshare(CLONE_NEWPID)` before exec), it starts `NS_ROLE` as its child, which is pid 1 of
/// the new namespace, and waits for it.
fn role_ns_relay() -> i32 {
    let role = env("NS_ROLE");
    let mut child = spawn_role(&role, &[]);
    let _ = child.wait_timeout(Duration::from_secs(600));
    0
}

/// Role `ns-send`: opens `ADDR` as a sender and sends for ever (until killed), one message
/// every millisecond or so.
fn role_ns_send() -> i32 {
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
fn role_ns_hold() -> i32 {
    let _tx = Sender::<Msg>::open(env("ADDR").as_str(), &opts()).unwrap();
    report_host_pid();
    std::thread::sleep(Duration::from_secs(600));
    0
}

/// Role `ns-recv`: opens `ADDR` as a receiver and receives for ever (until killed).
fn role_ns_recv() -> i32 {
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
    let start = Instant::now();
    let pid = loop {
        if let Ok(text) = std::fs::read_to_string(&pidfile) {
            break text.trim().parse::<i32>().unwrap();
        }
        assert!(start.elapsed() < TIMEOUT, "{role} never started");
        std::thread::sleep(Duration::from_millis(2));
    };
    let _ = std::fs::remove_file(&pidfile);
    (relay, pid)
}

fn kill9(pid: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid, libc::SIGKILL) };
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
fn a_sender_in_another_pid_namespace_is_judged_right() -> Result<(), Failed> {
    sender_in_other_namespaces(libc::CLONE_NEWPID, "ns sender")
}

/// The same with the sender in another user namespace too (unmapped: it runs as the
/// overflow user there, and its ids mean nothing here either).
fn a_sender_in_another_user_and_pid_namespace_is_judged_right() -> Result<(), Failed> {
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
fn a_tool_sees_a_party_in_another_namespace_alive_until_it_dies() -> Result<(), Failed> {
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
fn a_receiver_in_another_pid_namespace_is_judged_right() -> Result<(), Failed> {
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

/// A blocked `recv` woken from another thread returns `Interrupted`; nothing is lost (what is
/// sent afterwards is received once the flag is cleared), and the flag is sticky until then.
fn interrupt_a_blocked_recv_from_a_thread() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("int-recv");
    let stop = ringway_channel::Interrupt::new();
    let o = opts().interrupt(stop.clone());
    let mut tx = Sender::<Msg>::create(&name, &o)?;
    let mut rx = Receiver::<Msg>::open(&name, &o)?;
    tx.send(Msg::new(0, 0))?;
    assert_eq!(rx.recv(), Ok(Msg::new(0, 0)));
    let waker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            stop.interrupt();
        })
    };
    assert_eq!(rx.recv(), Err(RecvError::Interrupted));
    waker.join().unwrap();
    // Sticky: a call that would wait returns at once; one that need not wait completes, and
    // non-blocking ones are not affected.
    assert_eq!(rx.recv_timeout(TIMEOUT), Err(RecvError::Interrupted));
    assert_eq!(rx.try_recv(), Err(RecvError::Empty));
    tx.send_timeout(Msg::new(0, 1), TIMEOUT)?;
    assert_eq!(
        rx.recv(),
        Ok(Msg::new(0, 1)),
        "a message that is there is received"
    );
    assert_eq!(rx.recv(), Err(RecvError::Interrupted));
    stop.clear();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        tx.send(Msg::new(0, 2)).map(|()| tx)
    });
    assert_eq!(rx.recv(), Ok(Msg::new(0, 2)), "cleared: recv waits again");
    drop(sender.join().unwrap()?);
    Ok(())
}

/// A send blocked on a full ring, interrupted, hands its value back and sends nothing; the
/// receiver then gets exactly what was sent before.
fn interrupt_a_send_on_a_full_ring() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("int-send");
    let stop = ringway_channel::Interrupt::new();
    let o = opts().capacity(4).interrupt(stop.clone());
    let mut tx = Sender::<Msg>::create(&name, &o)?;
    let mut rx = Receiver::<Msg>::open(&name, &o)?;
    let mut sent = 0;
    while tx.try_send(Msg::new(1, sent)).is_ok() {
        sent += 1;
    }
    let waker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            stop.interrupt();
        })
    };
    match tx.send(Msg::new(1, sent)) {
        Err(SendError::Interrupted { value, .. }) => assert_eq!(value, Msg::new(1, sent)),
        other => return Err(format!("expected Interrupted, got {other:?}").into()),
    }
    waker.join().unwrap();
    for seq in 0..sent {
        assert_eq!(rx.try_recv(), Ok(Msg::new(1, seq)));
    }
    assert_eq!(rx.try_recv(), Err(RecvError::Empty), "nothing half-sent");
    Ok(())
}

/// `open` waiting for a creator that never comes is interrupted too.
fn interrupt_an_open_waiting_for_its_creator() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("int-open");
    let stop = ringway_channel::Interrupt::new();
    let waker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            stop.interrupt();
        })
    };
    let started = Instant::now();
    let result = Receiver::<Msg>::open(&name, &opts().open_timeout(TIMEOUT).interrupt(stop));
    waker.join().unwrap();
    assert!(
        matches!(result, Err(ringway_channel::Error::Interrupted { .. })),
        "{result:?}"
    );
    assert!(started.elapsed() < TIMEOUT / 2);
    Ok(())
}

/// The flag raised from a signal handler. Role `sigint-recv` creates `ADDR`, installs a SIGINT
/// handler that raises the channel's interrupt (an atomic store and a futex wake: nothing
/// else), says it is ready, and blocks in `recv`; on `Interrupted` it drops the receiver and
/// exits 0. The test sends SIGINT and checks the exit code and that the name is gone.
static SIGNAL_STOP: std::sync::OnceLock<ringway_channel::Interrupt> = std::sync::OnceLock::new();

extern "C" fn on_sigint(_: libc::c_int) {
    if let Some(stop) = SIGNAL_STOP.get() {
        stop.interrupt();
    }
}

fn role_sigint_recv() -> i32 {
    let stop = SIGNAL_STOP
        .get_or_init(ringway_channel::Interrupt::new)
        .clone();
    // SAFETY: `on_sigint` only reads a OnceLock that is already initialised (an atomic load)
    // and calls `Interrupt::interrupt` (an atomic store and a futex system call): it is
    // async-signal-safe. The sigaction struct is fully initialised before use.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()) != 0 {
            return 2;
        }
    }
    let mut rx = Receiver::<Msg>::create(env("ADDR").as_str(), &opts().interrupt(stop)).unwrap();
    report_host_pid();
    let code = match rx.recv() {
        Err(RecvError::Interrupted) => 0,
        other => {
            eprintln!("sigint-recv: {other:?}");
            1
        }
    };
    drop(rx);
    code
}

fn sigint_ends_a_blocked_recv_cleanly() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("sigint");
    let pidfile = scope.temp_path("sigint-pid");
    let pidfile_str = pidfile.to_str().unwrap().to_owned();
    let child = spawn_role("sigint-recv", &[("ADDR", &name), ("PIDFILE", &pidfile_str)]);
    let start = Instant::now();
    let pid = loop {
        if let Ok(text) = std::fs::read_to_string(&pidfile) {
            break text.trim().parse::<i32>()?;
        }
        assert!(start.elapsed() < TIMEOUT, "the child never got ready");
        std::thread::sleep(Duration::from_millis(2));
    };
    let _ = std::fs::remove_file(&pidfile);
    std::thread::sleep(Duration::from_millis(50)); // let it block in recv
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let code = child.expect_exit(TIMEOUT);
    assert_eq!(code, 0, "the child did not end cleanly on SIGINT");
    assert!(
        !std::path::Path::new("/dev/shm").join(&name[1..]).exists(),
        "the name was left in /dev/shm"
    );
    Ok(())
}

/// Role `hold`: creates `ADDR` as a sender, reports its pid, and waits to be killed.
fn role_hold() -> i32 {
    let _tx = Sender::<Msg>::create(env("ADDR").as_str(), &opts()).unwrap();
    report_host_pid();
    std::thread::sleep(Duration::from_secs(600));
    0
}

fn pid_from(pidfile: &std::path::Path) -> i32 {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(pidfile) {
            let _ = std::fs::remove_file(pidfile);
            return text.trim().parse().unwrap();
        }
        assert!(start.elapsed() < TIMEOUT, "the child never got ready");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A service killed with SIGKILL leaves its name behind; when it restarts, `create` takes the
/// name over (with takeover off it says so), and the new channel works.
fn a_name_left_by_a_killed_creator_is_taken_over() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("stale");
    let pidfile = scope.temp_path("hold-pid");
    let mut child = spawn_role(
        "hold",
        &[("ADDR", &name), ("PIDFILE", pidfile.to_str().unwrap())],
    );
    let pid = pid_from(&pidfile);
    // While the creator lives, the name is never taken over, and the error says who holds it.
    match Sender::<Msg>::create(&name, &opts()) {
        Err(ringway_channel::Error::AlreadyExists { holder, .. }) => {
            assert!(holder.contains(&format!("pid {pid}")), "{holder}");
        }
        other => return Err(format!("a live name was not refused: {other:?}").into()),
    }
    kill9(pid);
    let _ = child.wait_timeout(TIMEOUT);
    assert!(std::path::Path::new("/dev/shm").join(&name[1..]).exists());
    match Sender::<Msg>::create(&name, &opts().takeover(false)) {
        Err(ringway_channel::Error::AlreadyExists { holder, .. }) => {
            assert!(holder.contains("takeover is off"), "{holder}");
        }
        other => return Err(format!("takeover(false) took over: {other:?}").into()),
    }
    let mut tx = Sender::<Msg>::create(&name, &opts())?;
    let mut rx = Receiver::<Msg>::open(&name, &opts())?;
    tx.send(Msg::new(3, 0))?;
    assert_eq!(rx.recv_timeout(TIMEOUT), Ok(Msg::new(3, 0)));
    Ok(())
}

/// Two processes race to take over the same stale name, 200 times: exactly one creates, the
/// other gets `AlreadyExists` naming the winner's live channel.
fn racing_takeovers_have_exactly_one_winner() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("race");
    let rounds = 200;
    let mut tally = [0u32; 1];
    for round in 0..rounds {
        // A stale channel: its creator "dies" without dropping its sender.
        let code =
            ringway_testkit::fork_child(|| match Sender::<Msg>::create(name.as_str(), &opts()) {
                Ok(tx) => {
                    std::mem::forget(tx);
                    0
                }
                Err(_) => 1,
            })
            .expect_exit(TIMEOUT);
        assert_eq!(code, 0, "round {round}: making the stale channel");
        let (go_r, go_w) = nix::unistd::pipe()?;
        let (done_r, done_w) = nix::unistd::pipe()?;
        let (said_r, said_w) = nix::unistd::pipe()?;
        let racer = || {
            ringway_testkit::fork_child(|| {
                let mut byte = [0u8; 1];
                let _ = nix::unistd::read(&go_r, &mut byte);
                let verdict = match Sender::<Msg>::create(name.as_str(), &opts()) {
                    Ok(tx) => Ok(tx),
                    Err(ringway_channel::Error::AlreadyExists { .. }) => Err(b'L'),
                    Err(ringway_channel::Error::Region(e))
                        if e.kind() == ringway_region::ErrorKind::AlreadyExists =>
                    {
                        Err(b'L')
                    }
                    Err(_) => Err(b'E'),
                };
                match verdict {
                    Ok(tx) => {
                        let _ = nix::unistd::write(&said_w, b"W");
                        // Hold the channel until the parent has both verdicts.
                        let _ = nix::unistd::read(&done_r, &mut byte);
                        drop(tx);
                        0
                    }
                    Err(what) => {
                        let _ = nix::unistd::write(&said_w, &[what]);
                        0
                    }
                }
            })
        };
        let a = racer();
        let b = racer();
        nix::unistd::write(&go_w, b"gg")?;
        let mut said = Vec::new();
        while said.len() < 2 {
            let mut buf = [0u8; 2];
            let n = nix::unistd::read(&said_r, &mut buf)?;
            assert!(n > 0, "round {round}: a racer died without a verdict");
            said.extend_from_slice(&buf[..n]);
        }
        nix::unistd::write(&done_w, b"dd")?;
        a.expect_success(TIMEOUT);
        b.expect_success(TIMEOUT);
        said.sort_unstable();
        assert_eq!(said, b"LW", "round {round}: exactly one winner");
        tally[0] += 1;
        assert!(
            !std::path::Path::new("/dev/shm").join(&name[1..]).exists(),
            "round {round}: the winner's clean exit removes the name"
        );
    }
    eprintln!(
        "takeover race: {} rounds, exactly one winner in each",
        tally[0]
    );
    Ok(())
}

/// Role `client`: opens `ADDR` (MPMC) as client `ID`, sends `COUNT` numbered messages, and
/// after each committed one writes its number to the inherited fd `REPORT`.
fn role_client() -> i32 {
    use std::io::Write;
    let id: u64 = env("ID").parse().unwrap();
    let count: u64 = env("COUNT").parse().unwrap();
    let fd: i32 = env("REPORT").parse().unwrap();
    // SAFETY: the parent passed this fd to us across exec for this purpose; nothing else owns it.
    let mut report = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut tx = Sender::<Msg>::open(env("ADDR").as_str(), &service_opts()).unwrap();
    for seq in 0..count {
        if let Err(e) = tx.send_timeout(Msg::new(id, seq), TIMEOUT) {
            eprintln!("client {id}: {e}");
            return 1;
        }
        if report.write_all(&seq.to_le_bytes()).is_err() {
            return 2;
        }
    }
    0
}

fn service_opts() -> ChannelOptions {
    opts()
        .flavour(ringway_channel::Flavour::Mpmc)
        .capacity(64)
        .max_endpoints(8, 1)
}

/// A service that lives through its clients (issue: deployable). One server, in a thread of
/// this process, receives from 100 client processes, four at a time, a third of them killed
/// with SIGKILL while sending. Every message a client committed (its `send` returned `Ok`,
/// which it reported) is received exactly once, in order; nothing it did not commit is
/// received, except at most the one whose `Ok` the kill cut off before it was reported; the
/// server never stops or restarts, and the name is gone at the end.
fn a_service_lives_through_a_hundred_client_lifetimes() -> Result<(), Failed> {
    use std::collections::BTreeMap;
    use std::io::Read;
    let scope = LeakScope::new();
    let name = scope.posix_name("service");
    let stop = ringway_channel::Interrupt::new();
    let mut rx = Receiver::<Msg>::create(&name, &service_opts().interrupt(stop.clone()))?;
    let server_stop = stop.clone();
    let server = std::thread::spawn(move || -> Result<BTreeMap<u64, u64>, String> {
        let mut next = BTreeMap::<u64, u64>::new();
        loop {
            match rx.recv() {
                Ok(msg) => {
                    if !msg.is_intact() {
                        return Err(format!("torn message {msg:?}"));
                    }
                    let expected = next.entry(msg.producer).or_insert(0);
                    if msg.seq != *expected {
                        return Err(format!(
                            "client {}: message {} after {} (lost or duplicated)",
                            msg.producer, msg.seq, expected
                        ));
                    }
                    *expected += 1;
                }
                Err(RecvError::Disconnected) => {
                    if server_stop.sleep(Duration::from_millis(2)) {
                        break;
                    }
                }
                Err(RecvError::Interrupted) => break,
                Err(e) => return Err(format!("server: {e}")),
            }
        }
        drop(rx);
        Ok(next)
    });
    let clients = 100u64;
    let count = 3000u64;
    let mut reported = BTreeMap::<u64, u64>::new();
    let mut killed = BTreeMap::<u64, bool>::new();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for batch in (0..clients).collect::<Vec<_>>().chunks(4) {
        let mut running = Vec::new();
        for &id in batch {
            let (child, report_r) = spawn_reporting("client", &name, id, count);
            running.push((id, child, report_r));
        }
        for (id, mut child, report_r) in running {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let kill = id % 3 == 1;
            if kill {
                std::thread::sleep(Duration::from_micros(500 + rng % 3000));
                kill9(child.pid() as i32);
                let _ = child.wait_timeout(TIMEOUT);
            } else {
                child.expect_success(TIMEOUT);
            }
            let mut bytes = Vec::new();
            std::fs::File::from(report_r).read_to_end(&mut bytes)?;
            reported.insert(id, (bytes.len() / 8) as u64);
            killed.insert(id, kill);
        }
    }
    // Every client is gone: let the server drain what is left, then stop it as a signal would.
    std::thread::sleep(INTERVAL * 3);
    stop.interrupt();
    let got = server.join().unwrap()?;
    let mut cut_off = 0;
    for id in 0..clients {
        let sent = reported[&id];
        let received = got.get(&id).copied().unwrap_or(0);
        if killed[&id] {
            assert!(
                received == sent || received == sent + 1,
                "client {id} (killed): {sent} committed, {received} received"
            );
            cut_off += received - sent;
        } else {
            assert_eq!((sent, received), (count, count), "client {id}");
        }
    }
    eprintln!(
        "service: {clients} client lifetimes, {} killed mid-send, {} messages received, {cut_off} committed but unreported when killed",
        killed.values().filter(|k| **k).count(),
        got.values().sum::<u64>()
    );
    assert!(
        !std::path::Path::new("/dev/shm").join(&name[1..]).exists(),
        "the server's name outlived it"
    );
    Ok(())
}

/// Role `spsc-send`: opens `ADDR` (SPSC) as sender lifetime `ID`, sends `COUNT` messages
/// numbered from 0, reporting each committed one on fd `REPORT`.
fn role_spsc_send() -> i32 {
    spsc_role(|addr, id, count, report| {
        let mut tx = Sender::<Msg>::open(addr, &opts()).map_err(|e| e.to_string())?;
        for seq in 0..count {
            tx.send_timeout(Msg::new(id, seq), TIMEOUT)
                .map_err(|e| e.to_string())?;
            report(seq)?;
        }
        Ok(())
    })
}

/// Role `spsc-recv`: opens `ADDR` (SPSC) as a receiver, receives `COUNT` messages, reporting
/// the number of each on fd `REPORT`.
fn role_spsc_recv() -> i32 {
    spsc_role(|addr, _, count, report| {
        let mut rx = Receiver::<Msg>::open(addr, &opts()).map_err(|e| e.to_string())?;
        for _ in 0..count {
            let msg = rx.recv_timeout(TIMEOUT).map_err(|e| e.to_string())?;
            if !msg.is_intact() {
                return Err(format!("torn {msg:?}"));
            }
            report(msg.seq)?;
        }
        Ok(())
    })
}

type Report<'a> = &'a mut dyn FnMut(u64) -> Result<(), String>;

fn spsc_role(body: impl FnOnce(&str, u64, u64, Report<'_>) -> Result<(), String>) -> i32 {
    use std::io::Write;
    let fd: i32 = env("REPORT").parse().unwrap();
    // SAFETY: the parent passed this fd to us across exec for this purpose; nothing else owns it.
    let mut file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut report = |seq: u64| {
        file.write_all(&seq.to_le_bytes())
            .map_err(|e| e.to_string())
    };
    match body(
        &env("ADDR"),
        env("ID").parse().unwrap(),
        env("COUNT").parse().unwrap(),
        &mut report,
    ) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// Starts `role` as child `id` of `addr` with `COUNT` and a pipe on fd `REPORT` to report on;
/// returns the child and the pipe's read end.
fn spawn_reporting(
    role: &str,
    addr: &str,
    id: u64,
    count: u64,
) -> (ringway_testkit::Child, std::os::fd::OwnedFd) {
    use std::os::fd::AsFd;
    let (report_r, report_w) = nix::unistd::pipe().unwrap();
    let child = ringway_testkit::RoleCommand::new(role)
        .env("ADDR", addr)
        .env("ID", id.to_string())
        .env("COUNT", count.to_string())
        .env(
            "REPORT",
            std::os::fd::AsRawFd::as_raw_fd(&report_w).to_string(),
        )
        .inherit_fd(report_w.as_fd())
        .spawn()
        .unwrap();
    (child, report_r)
}

/// Runs one child lifetime of `role`, killing it after a random moment one time in three;
/// returns what it reported and whether it was killed.
fn lifetime(role: &str, addr: &str, id: u64, count: u64, rng: &mut u64) -> (Vec<u64>, bool) {
    use std::io::Read;
    let (mut child, report_r) = spawn_reporting(role, addr, id, count);
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let kill = *rng % 3 == 0;
    if kill {
        std::thread::sleep(Duration::from_micros(300 + *rng % 2000));
        kill9(child.pid() as i32);
        let _ = child.wait_timeout(TIMEOUT);
    } else {
        child.expect_success(TIMEOUT);
    }
    let mut bytes = Vec::new();
    std::fs::File::from(report_r)
        .read_to_end(&mut bytes)
        .unwrap();
    let seqs = bytes
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (seqs, kill)
}

/// Lifetimes of each side, from environment or default (1,000 each, as the issue asks).
fn lifetimes() -> u64 {
    std::env::var("RINGWAY_LIFETIMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// 1,000 sender lifetimes on one SPSC channel, a third killed while sending, one receiver
/// (this process) for all of them: each lifetime's messages arrive in order, after the
/// previous lifetime's, none twice, every committed one (reported) delivered, and nothing
/// beyond the one whose `Ok` a kill cut off.
fn a_thousand_sender_lifetimes_on_one_spsc_channel() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("senders");
    let mut rx = Receiver::<Msg>::create(&name, &opts())?;
    let (mut rng, mut killed, mut total) = (0x2545_F491_4F6C_DD1Du64, 0, 0);
    for id in 0..lifetimes() {
        let (committed, kill) = lifetime("spsc-send", &name, id, 40, &mut rng);
        killed += u64::from(kill);
        assert!(committed.iter().copied().eq(0..committed.len() as u64));
        // Everything this lifetime committed is in the ring now (or was received): drain it.
        let mut got = 0;
        loop {
            match rx.try_recv() {
                Ok(msg) => {
                    assert_eq!((msg.producer, msg.seq), (id, got), "lifetime {id}");
                    got += 1;
                }
                Err(RecvError::Empty | RecvError::Disconnected) => break,
                Err(e) => return Err(format!("lifetime {id}: {e}").into()),
            }
        }
        let sent = committed.len() as u64;
        assert!(
            got == sent || (kill && got == sent + 1),
            "lifetime {id} (killed: {kill}): {sent} committed, {got} received"
        );
        total += got;
    }
    eprintln!(
        "spsc senders: {} lifetimes, {killed} killed, {total} messages",
        lifetimes()
    );
    Ok(())
}

/// 1,000 receiver lifetimes on one SPSC channel, a third killed while receiving, one sender
/// (a thread of this process) for all of them: the receivers' reports, in order, are the
/// sender's sequence with no repeat and no gap, except one message per killed receiver that it
/// received but could not report.
fn a_thousand_receiver_lifetimes_on_one_spsc_channel() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("receivers");
    let mut tx = Sender::<Msg>::create(&name, &opts().capacity(16))?;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender_done = done.clone();
    let sender = std::thread::spawn(move || -> Result<u64, String> {
        let mut seq = 0;
        while !sender_done.load(std::sync::atomic::Ordering::Relaxed) {
            match tx.send_timeout(Msg::new(9, seq), Duration::from_millis(5)) {
                Ok(()) => seq += 1,
                // No receiver now (between lifetimes), or none yet: try again.
                Err(SendError::Timeout { .. } | SendError::Disconnected { .. }) => {
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(seq)
    });
    let (mut rng, mut killed, mut next, mut lost_to_kills) = (0x9E37_79B9u64, 0, 0u64, 0);
    for id in 0..lifetimes() {
        let (seqs, kill) = lifetime("spsc-recv", &name, id, 30, &mut rng);
        killed += u64::from(kill);
        for seq in seqs {
            // A killed receiver may have received one message it could not report.
            let skipped = seq
                .checked_sub(next)
                .ok_or(format!("lifetime {id}: {seq} again"))?;
            assert!(skipped <= 1, "lifetime {id}: {seq} after {next}");
            if skipped == 1 {
                lost_to_kills += 1;
            }
            next = seq + 1;
        }
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = sender.join().unwrap()?;
    assert!(lost_to_kills <= killed);
    eprintln!(
        "spsc receivers: {} lifetimes, {killed} killed, {next} messages through, {lost_to_kills} received but unreported by killed ones, {sent} sent",
        lifetimes()
    );
    Ok(())
}

fn main() {
    let tests = vec![
        Trial::test(
            "a_sender_in_another_pid_namespace_is_judged_right",
            a_sender_in_another_pid_namespace_is_judged_right,
        ),
        Trial::test(
            "a_sender_in_another_user_and_pid_namespace_is_judged_right",
            a_sender_in_another_user_and_pid_namespace_is_judged_right,
        ),
        Trial::test(
            "a_receiver_in_another_pid_namespace_is_judged_right",
            a_receiver_in_another_pid_namespace_is_judged_right,
        ),
        Trial::test(
            "a_tool_sees_a_party_in_another_namespace_alive_until_it_dies",
            a_tool_sees_a_party_in_another_namespace_alive_until_it_dies,
        ),
        Trial::test(
            "interrupt_a_blocked_recv_from_a_thread",
            interrupt_a_blocked_recv_from_a_thread,
        ),
        Trial::test(
            "interrupt_a_send_on_a_full_ring",
            interrupt_a_send_on_a_full_ring,
        ),
        Trial::test(
            "interrupt_an_open_waiting_for_its_creator",
            interrupt_an_open_waiting_for_its_creator,
        ),
        Trial::test(
            "sigint_ends_a_blocked_recv_cleanly",
            sigint_ends_a_blocked_recv_cleanly,
        ),
        Trial::test(
            "a_name_left_by_a_killed_creator_is_taken_over",
            a_name_left_by_a_killed_creator_is_taken_over,
        ),
        Trial::test(
            "racing_takeovers_have_exactly_one_winner",
            racing_takeovers_have_exactly_one_winner,
        ),
        Trial::test(
            "a_service_lives_through_a_hundred_client_lifetimes",
            a_service_lives_through_a_hundred_client_lifetimes,
        ),
        Trial::test(
            "a_thousand_sender_lifetimes_on_one_spsc_channel",
            a_thousand_sender_lifetimes_on_one_spsc_channel,
        ),
        Trial::test(
            "a_thousand_receiver_lifetimes_on_one_spsc_channel",
            a_thousand_receiver_lifetimes_on_one_spsc_channel,
        ),
    ];
    let mut roles = common::ROLES.to_vec();
    roles.extend_from_slice(&[
        ("ns-relay", role_ns_relay as fn() -> i32),
        ("ns-send", role_ns_send),
        ("ns-recv", role_ns_recv),
        ("ns-hold", role_ns_hold),
        ("sigint-recv", role_sigint_recv),
        ("hold", role_hold),
        ("client", role_client),
        ("spsc-send", role_spsc_send),
        ("spsc-recv", role_spsc_recv),
    ]);
    ringway_testkit::harness::main(tests, &roles);
}
