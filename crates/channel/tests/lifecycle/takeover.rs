//! Stale names taken over, and takers racing for one.

use std::time::Duration;

use libtest_mimic::Failed;
use ringway_channel::{Receiver, Sender};
use ringway_testkit::{LeakScope, spawn_role};

use super::common::{Msg, TIMEOUT};
use super::{env, kill9, opts, report_host_pid};

/// Role `hold`: creates `ADDR` as a sender, reports its pid, and waits to be killed.
pub(crate) fn role_hold() -> i32 {
    let _tx = Sender::<Msg>::create(env("ADDR").as_str(), &opts()).unwrap();
    report_host_pid();
    std::thread::sleep(Duration::from_secs(600));
    0
}

/// A service killed with SIGKILL leaves its name behind; when it restarts, `create` takes the
/// name over (with takeover off it says so), and the new channel works.
pub(crate) fn a_name_left_by_a_killed_creator_is_taken_over() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("stale");
    let pidfile = scope.temp_path("hold-pid");
    let mut child = spawn_role(
        "hold",
        &[("ADDR", &name), ("PIDFILE", pidfile.to_str().unwrap())],
    );
    let pid = super::pid_from(&pidfile);
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
pub(crate) fn racing_takeovers_have_exactly_one_winner() -> Result<(), Failed> {
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
