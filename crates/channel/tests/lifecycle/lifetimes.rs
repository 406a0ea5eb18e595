//! Many lifetimes of clients, senders and receivers, a third killed: nothing committed lost.

use std::time::Duration;

use libtest_mimic::Failed;
use ringway_channel::{ChannelOptions, Receiver, RecvError, SendError, Sender};
use ringway_testkit::LeakScope;

use super::common::{Msg, TIMEOUT};
use super::{INTERVAL, env, kill9, opts};

/// Role `client`: opens `ADDR` (MPMC) as client `ID`, sends `COUNT` numbered messages, and
/// after each committed one writes its number to the inherited fd `REPORT`.
pub(crate) fn role_client() -> i32 {
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
pub(crate) fn a_service_lives_through_a_hundred_client_lifetimes() -> Result<(), Failed> {
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
pub(crate) fn role_spsc_send() -> i32 {
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
pub(crate) fn role_spsc_recv() -> i32 {
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
pub(crate) fn a_thousand_sender_lifetimes_on_one_spsc_channel() -> Result<(), Failed> {
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
pub(crate) fn a_thousand_receiver_lifetimes_on_one_spsc_channel() -> Result<(), Failed> {
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
