//! What the channel test binaries share: the message type, how a child process finds its
//! channel from its environment, and the roles children play.

#![allow(dead_code, unreachable_pub)]

use std::os::fd::RawFd;
use std::time::Duration;

use ringway_channel::{
    Address, ByteChannel, ByteReceiver, ByteSender, Channel, ChannelOptions, Flavour, Receiver,
    RecvError, Sender,
};

/// How long any child or any wait may take: generous for a loaded 2-core machine, but a hung
/// test fails instead of hanging.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A 64-byte message: who sent it, its sequence number, and a pattern derived from both so a
/// torn or misplaced message is caught.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct Msg {
    pub producer: u64,
    pub seq: u64,
    pub check: [u64; 6],
}

impl Msg {
    pub fn new(producer: u64, seq: u64) -> Msg {
        let mut check = [0; 6];
        for (i, c) in check.iter_mut().enumerate() {
            *c = (producer << 48 ^ seq).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i as u64;
        }
        Msg {
            producer,
            seq,
            check,
        }
    }

    pub fn is_intact(&self) -> bool {
        *self == Msg::new(self.producer, self.seq)
    }
}

/// A byte message of seed-derived length (up to `max`) and content.
pub fn byte_message(seq: u64, max: usize) -> Vec<u8> {
    let len = (seq.wrapping_mul(2_654_435_761) % (max as u64 + 1)) as usize;
    (0..len)
        .map(|i| (seq as usize).wrapping_mul(31).wrapping_add(i) as u8)
        .collect()
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("child: {key} not set"))
}

fn env_u64(key: &str) -> u64 {
    env(key)
        .parse()
        .unwrap_or_else(|_| panic!("child: {key} is not a number"))
}

/// Options of a child: the flavour from `FLAVOUR`, a short liveness interval.
pub fn child_options() -> ChannelOptions {
    let flavour = match std::env::var("FLAVOUR").as_deref() {
        Ok("mpmc") => Flavour::Mpmc,
        _ => Flavour::Spsc,
    };
    ChannelOptions::new()
        .flavour(flavour)
        .open_timeout(Duration::from_secs(30))
        .liveness_interval(Duration::from_millis(10))
}

pub fn flavour_env(flavour: Flavour) -> &'static str {
    match flavour {
        Flavour::Spsc => "spsc",
        Flavour::Mpmc => "mpmc",
    }
}

/// Where a child finds its channel: `CH=posix|sysv|file` with `ADDR`, `CH=memfd-fd` with
/// `FD` (inherited across exec), or `CH=memfd-sock` with `SOCK` (an fd arrives over it).
fn child_typed_channel() -> Result<Option<Channel<Msg>>, ringway_channel::Error> {
    let opts = child_options();
    Ok(match env("CH").as_str() {
        "memfd-fd" => {
            let fd: RawFd = env("FD").parse().unwrap();
            // SAFETY: the parent passed this fd to us across exec; nothing else owns it.
            Some(unsafe { Channel::from_raw_fd(fd, &opts) }?)
        }
        "memfd-sock" => {
            let sock: RawFd = env("SOCK").parse().unwrap();
            // SAFETY: the parent passed this socket to us across exec; we only borrow it.
            let sock = unsafe { std::os::fd::BorrowedFd::borrow_raw(sock) };
            Some(Channel::recv_fd(sock, &opts)?)
        }
        _ => None,
    })
}

fn child_address() -> Address {
    match env("CH").as_str() {
        "posix" => Address::posix(env("ADDR")),
        "sysv" => Address::sysv(env("ADDR").parse().unwrap()),
        "file" => Address::file(env("ADDR")),
        other => panic!("child: no address for CH={other}"),
    }
}

pub fn child_sender() -> Sender<Msg> {
    let opts = child_options();
    match child_typed_channel().unwrap() {
        Some(channel) => channel.sender().unwrap(),
        None => Sender::open(child_address(), &opts).unwrap(),
    }
}

pub fn child_receiver() -> Receiver<Msg> {
    let opts = child_options();
    match child_typed_channel().unwrap() {
        Some(channel) => channel.receiver().unwrap(),
        None => Receiver::open(child_address(), &opts).unwrap(),
    }
}

fn child_byte_channel() -> Option<ByteChannel> {
    let opts = child_options();
    match env("CH").as_str() {
        "memfd-fd" => {
            let fd: RawFd = env("FD").parse().unwrap();
            // SAFETY: the parent passed this fd to us across exec; nothing else owns it.
            Some(unsafe { ByteChannel::from_raw_fd(fd, &opts) }.unwrap())
        }
        _ => None,
    }
}

/// Role `send`: sends `COUNT` messages as producer `PRODUCER` (or forever if `COUNT` is
/// `inf`, until killed), then exits, which disconnects.
pub fn role_send() -> i32 {
    let mut tx = child_sender();
    let producer = env_u64("PRODUCER");
    let count = match env("COUNT").as_str() {
        "inf" => u64::MAX,
        n => n.parse().unwrap(),
    };
    for seq in 0..count {
        if let Err(e) = tx.send(Msg::new(producer, seq)) {
            eprintln!("send {seq}: {e}");
            return 1;
        }
    }
    0
}

/// Role `recv`: receives `COUNT` messages (checking content and per-producer order), then,
/// if `EXPECT_END=1`, expects the channel to report `Disconnected`; or receives forever
/// (`COUNT=inf`) until killed.
pub fn role_recv() -> i32 {
    let mut rx = child_receiver();
    let count = match env("COUNT").as_str() {
        "inf" => u64::MAX,
        n => n.parse().unwrap(),
    };
    let mut next = std::collections::HashMap::<u64, u64>::new();
    for i in 0..count {
        let msg = match rx.recv_timeout(TIMEOUT) {
            Ok(msg) => msg,
            Err(e) => {
                eprintln!("recv {i}: {e}");
                return 1;
            }
        };
        let expected = next.entry(msg.producer).or_insert(0);
        if !msg.is_intact() || msg.seq != *expected {
            eprintln!("recv {i}: got {msg:?}, expected seq {expected}");
            return 1;
        }
        *expected += 1;
    }
    if std::env::var("EXPECT_END").as_deref() == Ok("1") {
        match rx.recv_timeout(TIMEOUT) {
            Err(RecvError::Disconnected) => {}
            other => {
                eprintln!("after {count} messages: expected Disconnected, got {other:?}");
                return 1;
            }
        }
    }
    println!("received {count}");
    0
}

/// Role `send-bytes`: sends `COUNT` byte messages of `byte_message(seq, MAX)`.
pub fn role_send_bytes() -> i32 {
    let opts = child_options();
    let mut tx = match child_byte_channel() {
        Some(channel) => channel.sender().unwrap(),
        None => ByteSender::open(child_address(), &opts).unwrap(),
    };
    let max = env_u64("MAX") as usize;
    for seq in 0..env_u64("COUNT") {
        let msg = byte_message(seq, max);
        if seq % 3 == 0 {
            let mut loan = tx.loan_bytes(msg.len()).unwrap();
            loan.write(0, &msg);
            loan.commit();
        } else if let Err(e) = tx.send(&msg) {
            eprintln!("send {seq}: {e}");
            return 1;
        }
    }
    0
}

/// Role `recv-bytes`: receives `COUNT` byte messages and checks each, then `Disconnected`.
pub fn role_recv_bytes() -> i32 {
    let opts = child_options();
    let mut rx = match child_byte_channel() {
        Some(channel) => channel.receiver().unwrap(),
        None => ByteReceiver::open(child_address(), &opts).unwrap(),
    };
    let max = env_u64("MAX") as usize;
    let mut buf = Vec::new();
    for seq in 0..env_u64("COUNT") {
        let ok = if seq % 2 == 0 {
            rx.recv_timeout(&mut buf, TIMEOUT)
                .map(|_| buf == byte_message(seq, max))
        } else {
            rx.recv_ref().map(|r| r.to_vec() == byte_message(seq, max))
        };
        match ok {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("message {seq} differs");
                return 1;
            }
            Err(e) => {
                eprintln!("recv {seq}: {e}");
                return 1;
            }
        }
    }
    match rx.recv_timeout(&mut buf, TIMEOUT) {
        Err(RecvError::Disconnected) => 0,
        other => {
            eprintln!("expected Disconnected, got {other:?}");
            1
        }
    }
}

/// All roles, for the harness.
pub const ROLES: &[ringway_testkit::harness::Role<'static>] = &[
    ("send", role_send),
    ("recv", role_recv),
    ("send-bytes", role_send_bytes),
    ("recv-bytes", role_recv_bytes),
    ("recv-batch", role_recv_batch),
];

/// Role `recv-batch`: like `recv`, with `recv_batch_timeout` of up to `BATCH` messages.
pub fn role_recv_batch() -> i32 {
    let mut rx = child_receiver();
    let count = env_u64("COUNT");
    let batch = env_u64("BATCH") as usize;
    let mut next = std::collections::HashMap::<u64, u64>::new();
    let mut got = Vec::with_capacity(batch);
    let mut received = 0;
    while received < count {
        got.clear();
        if let Err(e) = rx.recv_batch_timeout(&mut got, batch, TIMEOUT) {
            eprintln!("recv_batch after {received}: {e}");
            return 1;
        }
        if got.is_empty() || got.len() > batch {
            eprintln!("recv_batch returned {} messages (max {batch})", got.len());
            return 1;
        }
        for msg in &got {
            let expected = next.entry(msg.producer).or_insert(0);
            if !msg.is_intact() || msg.seq != *expected {
                eprintln!("message {received}: got {msg:?}, expected seq {expected}");
                return 1;
            }
            *expected += 1;
            received += 1;
        }
    }
    if received != count {
        eprintln!("received {received}, more than the {count} sent");
        return 1;
    }
    if std::env::var("EXPECT_END").as_deref() == Ok("1") {
        match rx.recv_batch_timeout(&mut got, batch, TIMEOUT) {
            Err(RecvError::Disconnected) => {}
            other => {
                eprintln!("after {count} messages: expected Disconnected, got {other:?}");
                return 1;
            }
        }
    }
    0
}

/// Receives until `Disconnected`, checking content and per-producer order; returns the
/// messages of each producer (as sequence numbers) in arrival order.
pub fn drain(rx: &mut Receiver<Msg>) -> Result<std::collections::BTreeMap<u64, Vec<u64>>, String> {
    let mut got = std::collections::BTreeMap::<u64, Vec<u64>>::new();
    loop {
        match rx.recv_timeout(TIMEOUT) {
            Ok(msg) => {
                if !msg.is_intact() {
                    return Err(format!("torn message {msg:?}"));
                }
                got.entry(msg.producer).or_default().push(msg.seq);
            }
            Err(RecvError::Disconnected) => return Ok(got),
            Err(e) => return Err(format!("recv: {e}")),
        }
    }
}

/// Checks that `seqs` is exactly `0..n` for some `n`: nothing lost in the middle, nothing
/// twice, in order. Returns `n`.
pub fn consecutive(seqs: &[u64]) -> Result<u64, String> {
    for (i, &s) in seqs.iter().enumerate() {
        if s != i as u64 {
            return Err(format!(
                "position {i} holds seq {s} (a gap, a duplicate or reordering)"
            ));
        }
    }
    Ok(seqs.len() as u64)
}
