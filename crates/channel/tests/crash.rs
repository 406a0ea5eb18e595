//! kill -9 at random moments: a sender process, a receiver process, or one of several MPMC
//! senders dies mid-stream. The survivor never hangs (detection is bounded), every message
//! committed before the death arrives exactly once and in order, an MPMC slot the dead sender
//! held is skipped and counted, and the name is removed when the survivor leaves.
//!
//! `RINGWAY_CRASH_ROUNDS` sets the rounds per scenario (default 30: 60 kills of a single
//! sender or receiver, plus MPMC rounds).

mod common;

use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Msg, TIMEOUT, consecutive, flavour_env};
use libtest_mimic::{Failed, Trial};
use ringway_channel::{Channel, ChannelOptions, Flavour, PeerState, Receiver, RecvError, Sender};
use ringway_testkit::{Child, LeakScope, RoleCommand};

/// The longest a survivor may take to notice a death: the liveness interval (10 ms here) plus
/// scheduling on a loaded 2-core machine. Typical figures are printed.
const DETECTION_BOUND: Duration = Duration::from_secs(10);

fn rounds() -> u64 {
    std::env::var("RINGWAY_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(30)
}

fn opts(flavour: Flavour) -> ChannelOptions {
    ChannelOptions::new()
        .flavour(flavour)
        .capacity(64)
        .liveness_interval(Duration::from_millis(10))
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Waits until the child has attached: a child killed before it attached never was a peer,
/// and a blocking call rightly waits for one to come.
fn until_connected(state: impl Fn() -> PeerState) -> Result<(), Failed> {
    let start = Instant::now();
    while state() == PeerState::Waiting {
        if start.elapsed() > TIMEOUT {
            return Err("the child never attached".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn kill9(child: &mut Child) -> Result<(), Failed> {
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own unreaped child,
    // so it cannot have been recycled.
    if unsafe { libc::kill(child.pid() as i32, libc::SIGKILL) } != 0 {
        return Err(format!("kill: {}", std::io::Error::last_os_error()).into());
    }
    child.wait_timeout(TIMEOUT)?;
    Ok(())
}

/// A round's channel: named (POSIX) on even rounds, a memfd inherited across exec on odd ones.
struct Setup {
    scope: LeakScope,
    name: Option<String>,
    flavour: Flavour,
    memfd: Option<Channel<Msg>>,
}

impl Setup {
    fn new(round: u64) -> Setup {
        let scope = LeakScope::new();
        let name = round.is_multiple_of(2).then(|| scope.posix_name("crash"));
        let flavour = if (round / 2).is_multiple_of(2) {
            Flavour::Spsc
        } else {
            Flavour::Mpmc
        };
        let memfd = name
            .is_none()
            .then(|| Channel::<Msg>::memfd("crash", &opts(flavour)).unwrap());
        Setup {
            scope,
            name,
            flavour,
            memfd,
        }
    }

    fn spawn(&self, role: &str, extra: &[(&str, &str)]) -> Child {
        let mut cmd = RoleCommand::new(role).env("FLAVOUR", flavour_env(self.flavour));
        for (k, v) in extra {
            cmd = cmd.env(k, *v);
        }
        match (&self.name, &self.memfd) {
            (Some(name), _) => cmd.env("CH", "posix").env("ADDR", name.as_str()),
            (None, Some(channel)) => {
                channel.set_inheritable(true).unwrap();
                let fd = channel.fd().unwrap();
                cmd.env("CH", "memfd-fd")
                    .env("FD", fd.as_raw_fd().to_string())
                    .inherit_fd(fd)
            }
            (None, None) => unreachable!(),
        }
        .spawn()
        .unwrap()
    }

    fn receiver(&self) -> Receiver<Msg> {
        match (&self.name, &self.memfd) {
            (Some(name), _) => Receiver::create(name, &opts(self.flavour)).unwrap(),
            (None, Some(channel)) => channel.receiver().unwrap(),
            (None, None) => unreachable!(),
        }
    }

    fn sender(&self) -> Sender<Msg> {
        match (&self.name, &self.memfd) {
            (Some(name), _) => Sender::create(name, &opts(self.flavour)).unwrap(),
            (None, Some(channel)) => channel.sender().unwrap(),
            (None, None) => unreachable!(),
        }
    }

    /// After the survivor left: its name is gone (the dead peer's count notwithstanding).
    fn check_cleaned(&self) -> Result<(), Failed> {
        if let Some(name) = &self.name
            && Path::new("/dev/shm").join(&name[1..]).exists()
        {
            return Err(format!("{name} left behind by the survivor").into());
        }
        let _ = &self.scope;
        Ok(())
    }
}

/// The receiver survives: everything the dead sender committed arrives once, in order, then
/// `Disconnected`, within the detection bound.
fn kill_sender_at_random() -> Result<(), Failed> {
    let mut worst = Duration::ZERO;
    let mut total_lost = 0;
    for round in 0..rounds() {
        let setup = Setup::new(round);
        let mut rx = setup.receiver();
        let mut child = setup.spawn("send", &[("PRODUCER", "0"), ("COUNT", "inf")]);
        until_connected(|| rx.peer_state())?;
        let mut rng = Rng(round * 7919 + 1);
        let before = rng.below(5000);
        let mut seqs = Vec::new();
        for _ in 0..before {
            let msg = rx.recv_timeout(TIMEOUT)?;
            assert!(msg.is_intact(), "round {round}: torn {msg:?}");
            seqs.push(msg.seq);
        }
        // Sometimes kill at once, sometimes after a pause (the ring full, the sender asleep).
        if rng.below(3) == 0 {
            std::thread::sleep(Duration::from_millis(rng.below(20)));
        }
        kill9(&mut child)?;
        let killed = Instant::now();
        loop {
            match rx.recv_timeout(TIMEOUT) {
                Ok(msg) => {
                    assert!(msg.is_intact(), "round {round}: torn {msg:?}");
                    seqs.push(msg.seq);
                }
                Err(RecvError::Disconnected) => break,
                Err(e) => return Err(format!("round {round}: {e}").into()),
            }
        }
        let detected = killed.elapsed();
        worst = worst.max(detected);
        assert!(
            detected < DETECTION_BOUND,
            "round {round}: detection took {detected:?}"
        );
        consecutive(&seqs).map_err(|e| format!("round {round} ({:?}): {e}", setup.flavour))?;
        assert!(rx.lost() <= 1, "round {round}: lost {}", rx.lost());
        total_lost += rx.lost();
        drop(rx);
        setup.check_cleaned()?;
    }
    eprintln!(
        "kill_sender_at_random: {} rounds, worst detection {worst:?}, MPMC slots lost {total_lost}",
        rounds()
    );
    Ok(())
}

/// The sender survives: a blocked send returns `Disconnected` within the bound instead of
/// waiting forever on a full ring.
fn kill_receiver_at_random() -> Result<(), Failed> {
    let mut worst = Duration::ZERO;
    for round in 0..rounds() {
        let setup = Setup::new(round);
        let mut tx = setup.sender();
        let mut child = setup.spawn("recv", &[("COUNT", "inf")]);
        until_connected(|| tx.peer_state())?;
        let mut rng = Rng(round * 104_729 + 3);
        let before = rng.below(5000);
        for seq in 0..before {
            tx.send_timeout(Msg::new(0, seq), TIMEOUT)?;
        }
        kill9(&mut child)?;
        let killed = Instant::now();
        let mut seq = before;
        let err = loop {
            match tx.send(Msg::new(0, seq)) {
                Ok(()) => seq += 1,
                Err(e) => break e,
            }
        };
        let detected = killed.elapsed();
        worst = worst.max(detected);
        assert!(err.is_disconnected(), "round {round}: {err}");
        assert!(
            detected < DETECTION_BOUND,
            "round {round}: detection took {detected:?}"
        );
        drop(tx);
        setup.check_cleaned()?;
    }
    eprintln!(
        "kill_receiver_at_random: {} rounds, worst detection {worst:?}",
        rounds()
    );
    Ok(())
}

/// Two MPMC sender processes, one killed mid-stream: the consumer is never wedged by the slot
/// it may have held, its messages are an in-order prefix, the other's all arrive.
fn kill_one_of_two_mpmc_senders() -> Result<(), Failed> {
    const SURVIVOR: u64 = 20_000;
    let mut total_lost = 0;
    for round in 0..rounds().div_ceil(3) {
        let scope = LeakScope::new();
        let name = scope.posix_name("mpmc-crash");
        let mut rx = Receiver::<Msg>::create(&name, &opts(Flavour::Mpmc))?;
        let spawn = |producer: &str, count: &str| {
            RoleCommand::new("send")
                .env("CH", "posix")
                .env("ADDR", name.as_str())
                .env("FLAVOUR", "mpmc")
                .env("PRODUCER", producer)
                .env("COUNT", count)
                .spawn()
                .unwrap()
        };
        let mut victim = spawn("0", "inf");
        let survivor = spawn("1", &SURVIVOR.to_string());
        let mut rng = Rng(round * 31 + 11);
        let kill_after = 1 + rng.below(3000);
        let mut got = [Vec::new(), Vec::new()];
        let mut killed = false;
        loop {
            match rx.recv_timeout(TIMEOUT) {
                Ok(msg) => {
                    assert!(msg.is_intact(), "round {round}: torn {msg:?}");
                    got[msg.producer as usize].push(msg.seq);
                    // Kill only once both senders have shown up: a sender that has not attached
                    // yet is no peer, and the consumer may rightly see the other's death as
                    // the end of the stream.
                    if !killed && got[0].len() as u64 >= kill_after && !got[1].is_empty() {
                        kill9(&mut victim)?;
                        killed = true;
                    }
                }
                Err(RecvError::Disconnected) if killed => break,
                Err(RecvError::Disconnected) => {
                    // The survivor finished before the victim was killed: kill it now and
                    // drain what it committed.
                    kill9(&mut victim)?;
                    killed = true;
                }
                Err(e) => return Err(format!("round {round}: {e}").into()),
            }
        }
        survivor.expect_success(TIMEOUT);
        consecutive(&got[0]).map_err(|e| format!("round {round}, victim: {e}"))?;
        assert_eq!(consecutive(&got[1])?, SURVIVOR, "round {round}: survivor");
        assert!(rx.lost() <= 1, "round {round}: lost {}", rx.lost());
        total_lost += rx.lost();
    }
    eprintln!(
        "kill_one_of_two_mpmc_senders: {} rounds, slots lost to the dead sender {total_lost}",
        rounds().div_ceil(3)
    );
    Ok(())
}

fn main() {
    let tests = vec![
        Trial::test("kill_sender_at_random", kill_sender_at_random),
        Trial::test("kill_receiver_at_random", kill_receiver_at_random),
        Trial::test("kill_one_of_two_mpmc_senders", kill_one_of_two_mpmc_senders),
    ];
    ringway_testkit::harness::main(tests, common::ROLES);
}
