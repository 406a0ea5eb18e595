//! kill -9 at random moments: a sender process, a receiver process, or one of several MPMC
//! senders dies mid-stream. The survivor never hangs (detection is bounded), every message
//! committed before the death arrives exactly once and in order, an MPMC slot the dead sender
//! held is skipped and counted, and the name is removed when the survivor leaves.
//!
//! The rounds rotate through every way to share a channel (POSIX, System V and file names, a
//! memfd inherited across exec, anonymous and /dev/zero mappings across fork) and both
//! flavours. `RINGWAY_CRASH_ROUNDS` sets the rounds per scenario (default 30, so 60 kills of a
//! lone sender or receiver plus 10 MPMC rounds); the soak run documented in
//! `docs/guarantees.md` uses `RINGWAY_CRASH_ROUNDS=600 cargo test --release -p ringway-channel
//! --test crash`.

mod common;

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::{Msg, TIMEOUT, consecutive, flavour_env};
use libtest_mimic::{Failed, Trial};
use ringway_channel::{
    Address, Backing, Channel, ChannelOptions, Flavour, PeerState, Receiver, RecvError, Sender,
};
use ringway_region::{Region, RegionOptions, SysvKey};
use ringway_testkit::{Child, ForkedChild, LeakScope, RoleCommand, fork_child};

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

/// A peer process: re-executed (named channels, memfd across exec) or forked (anonymous and
/// /dev/zero mappings, which only fork shares).
enum Peer {
    Exec(Child),
    Fork(ForkedChild),
}

impl Peer {
    fn pid(&self) -> i32 {
        match self {
            Peer::Exec(c) => c.pid() as i32,
            Peer::Fork(c) => c.pid(),
        }
    }

    /// SIGKILL, then reap.
    fn kill9(&mut self) -> Result<(), Failed> {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own unreaped
        // child, so it cannot have been recycled.
        if unsafe { libc::kill(self.pid(), libc::SIGKILL) } != 0 {
            return Err(format!("kill: {}", std::io::Error::last_os_error()).into());
        }
        match self {
            Peer::Exec(c) => {
                c.wait_timeout(TIMEOUT)?;
            }
            Peer::Fork(c) => {
                c.wait_timeout(TIMEOUT)?;
            }
        }
        Ok(())
    }
}

/// How a round's channel is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Posix,
    SysV,
    File,
    MemfdExec,
    AnonymousFork,
    DevZeroFork,
}

const KINDS: [Kind; 6] = [
    Kind::Posix,
    Kind::SysV,
    Kind::File,
    Kind::MemfdExec,
    Kind::AnonymousFork,
    Kind::DevZeroFork,
];

/// A round's channel: every kind in turn, SPSC and MPMC in turn.
struct Setup {
    scope: LeakScope,
    kind: Kind,
    flavour: Flavour,
    address: Option<Address>,
    channel: Option<Channel<Msg>>,
}

impl Setup {
    fn new(round: u64) -> Setup {
        let scope = LeakScope::new();
        let kind = KINDS[(round % 6) as usize];
        let flavour = if (round / 6) % 2 == 0 {
            Flavour::Spsc
        } else {
            Flavour::Mpmc
        };
        let address = match kind {
            Kind::Posix => Some(Address::posix(scope.posix_name("crash"))),
            Kind::SysV => Some(Address::sysv(scope.sysv_key())),
            Kind::File => Some(Address::file(scope.temp_path("crash"))),
            _ => None,
        };
        let o = opts(flavour);
        let channel = match kind {
            Kind::MemfdExec => Some(Channel::<Msg>::memfd("crash", &o).unwrap()),
            Kind::AnonymousFork => Some(Channel::<Msg>::anonymous(&o).unwrap()),
            Kind::DevZeroFork => Some(Channel::<Msg>::dev_zero(&o).unwrap()),
            _ => None,
        };
        Setup {
            scope,
            kind,
            flavour,
            address,
            channel,
        }
    }

    /// Starts the peer: a sender that sends forever, or a receiver that receives forever.
    fn spawn(&self, sender: bool) -> Peer {
        if let (Kind::AnonymousFork | Kind::DevZeroFork, Some(channel)) = (self.kind, &self.channel)
        {
            return Peer::Fork(fork_child(|| {
                if sender {
                    let Ok(mut tx) = channel.sender() else {
                        return 2;
                    };
                    for seq in 0.. {
                        if tx.send(Msg::new(0, seq)).is_err() {
                            return 3;
                        }
                    }
                } else {
                    let Ok(mut rx) = channel.receiver() else {
                        return 2;
                    };
                    while rx.recv().is_ok() {}
                }
                0
            }));
        }
        let role = if sender { "send" } else { "recv" };
        let cmd = RoleCommand::new(role)
            .env("FLAVOUR", flavour_env(self.flavour))
            .env("PRODUCER", "0")
            .env("COUNT", "inf");
        let cmd = match (&self.address, &self.channel) {
            (Some(address), _) => {
                let (ch, addr) = match address.backing() {
                    Backing::Posix { name } => ("posix", name.clone()),
                    Backing::SysV {
                        key: SysvKey::Key(key),
                    } => ("sysv", key.to_string()),
                    Backing::File { path } => ("file", path.display().to_string()),
                    other => unreachable!("{other}"),
                };
                cmd.env("CH", ch).env("ADDR", addr)
            }
            (None, Some(channel)) => {
                channel.set_inheritable(true).unwrap();
                let fd = channel.fd().unwrap();
                cmd.env("CH", "memfd-fd")
                    .env("FD", fd.as_raw_fd().to_string())
                    .inherit_fd(fd)
            }
            (None, None) => unreachable!(),
        };
        Peer::Exec(cmd.spawn().unwrap())
    }

    fn receiver(&self) -> Receiver<Msg> {
        match (&self.address, &self.channel) {
            (Some(address), _) => Receiver::create(address, &opts(self.flavour)).unwrap(),
            (None, Some(channel)) => channel.receiver().unwrap(),
            (None, None) => unreachable!(),
        }
    }

    fn sender(&self) -> Sender<Msg> {
        match (&self.address, &self.channel) {
            (Some(address), _) => Sender::create(address, &opts(self.flavour)).unwrap(),
            (None, Some(channel)) => channel.sender().unwrap(),
            (None, None) => unreachable!(),
        }
    }

    /// After the survivor left: the name is gone (the dead peer's count notwithstanding).
    fn check_cleaned(&self) -> Result<(), Failed> {
        if let Some(address) = &self.address {
            let gone = matches!(
                Region::open(address.backing(), &RegionOptions::new()),
                Err(e) if e.kind() == ringway_region::ErrorKind::NotFound
            );
            if !gone {
                return Err(format!("{address} left behind by the survivor").into());
            }
        }
        let _ = &self.scope;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("{:?} {}", self.kind, self.flavour)
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
        let mut child = setup.spawn(true);
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
        child.kill9()?;
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
        consecutive(&seqs).map_err(|e| format!("round {round} ({}): {e}", setup.describe()))?;
        assert!(rx.lost() <= 1, "round {round}: lost {}", rx.lost());
        total_lost += rx.lost();
        drop(rx);
        setup.check_cleaned()?;
    }
    eprintln!(
        "kill_sender_at_random: {} rounds, worst detection {} ms, {total_lost} MPMC slots lost",
        rounds(),
        worst.as_millis()
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
        let mut child = setup.spawn(false);
        until_connected(|| tx.peer_state())?;
        let mut rng = Rng(round * 104_729 + 3);
        let before = rng.below(5000);
        for seq in 0..before {
            tx.send_timeout(Msg::new(0, seq), TIMEOUT)?;
        }
        child.kill9()?;
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
        "kill_receiver_at_random: {} rounds, worst detection {} ms",
        rounds(),
        worst.as_millis()
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
        let mut victim = Peer::Exec(spawn("0", "inf"));
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
                        victim.kill9()?;
                        killed = true;
                    }
                }
                Err(RecvError::Disconnected) if killed => break,
                Err(RecvError::Disconnected) => {
                    // The survivor finished before the victim was killed: kill it now and
                    // drain what it committed.
                    victim.kill9()?;
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
        "kill_one_of_two_mpmc_senders: {} rounds, {total_lost} slots lost to the dead sender",
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
