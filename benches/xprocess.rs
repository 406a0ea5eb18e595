//! Cross-process criterion benches: ringway SPSC against a pipe and a Unix stream socket, with
//! 64-byte messages between this process and a peer process.
//!
//! - `xprocess/pingpong/<transport>`: one round trip (send 64 B, the peer receives them and
//!   sends them back, receive 64 B); the time reported is per round trip.
//! - `xprocess/throughput/<transport>`: a one-way stream of 64-byte messages; the peer reads
//!   every one and answers only the last of each batch, so the time per element is the
//!   one-way cost of a message (plus one round trip per batch, negligible for large batches).
//!
//! The peer is this bench binary, re-executed with `RINGWAY_BENCH_PEER` naming the transport;
//! the two processes are pinned to two different CPUs when there are two. Each message is
//! really copied across: ringway `send` copies it into the ring and the peer copies it out with
//! `recv_ref` + `copy_to`, the kernel copies it into and out of its buffers. The ringway channel
//! busy-spins on both sides (`WaitStrategy::Spin`), as `ringway bench`'s `ringway-spsc` row.
//!
//! Run with `cargo bench -p ringway-benches`. For every transport and size, with latency
//! percentiles, see `ringway bench`; for the rings' in-process costs, `crates/ring/benches`.

// `criterion` wants undocumented public items of its own.
#![allow(missing_docs)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;
use ringway_channel::{ByteReceiver, ByteSender, ChannelOptions, RecvError, WaitStrategy};

/// Names the peer's transport when this binary is re-executed as the peer.
const PEER_ENV: &str = "RINGWAY_BENCH_PEER";
/// The channel base name, for the ringway peer.
const NAME_ENV: &str = "RINGWAY_BENCH_NAME";
/// The CPU the peer pins itself to.
const CPU_ENV: &str = "RINGWAY_BENCH_CPU";

const SIZE: usize = 64;
/// Byte 0 of a message: answer it with itself.
const ECHO: u8 = 0;
/// Byte 0 of a message: part of a stream, no answer.
const STREAM: u8 = 1;
/// Byte 0 of a message: the last of a stream; answer it.
const LAST: u8 = 2;

/// The ring: 64 KiB holds 910 messages of 64 bytes, as in `ringway bench`.
const RING_BYTES: usize = 64 * 1024;

/// One side of a two-process link: whole 64-byte messages each way.
trait Link {
    fn send(&mut self, msg: &[u8; SIZE]);
    /// Fills `buf` with the next message; `false` at end of stream.
    fn recv(&mut self, buf: &mut [u8; SIZE]) -> bool;
}

/// A kernel byte stream: a pipe pair or a socket.
struct FdLink<R, W> {
    rx: R,
    tx: W,
}

impl<R: Read, W: Write> Link for FdLink<R, W> {
    fn send(&mut self, msg: &[u8; SIZE]) {
        self.tx.write_all(msg).expect("write a message");
    }

    fn recv(&mut self, buf: &mut [u8; SIZE]) -> bool {
        match self.rx.read_exact(buf) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => false,
            Err(e) => panic!("read a message: {e}"),
        }
    }
}

/// A pair of ringway SPSC byte channels, one each way.
struct RingLink {
    tx: ByteSender,
    rx: ByteReceiver,
}

impl Link for RingLink {
    fn send(&mut self, msg: &[u8; SIZE]) {
        self.tx.send(msg).expect("send a message");
    }

    fn recv(&mut self, buf: &mut [u8; SIZE]) -> bool {
        match self.rx.recv_ref() {
            Ok(msg) => {
                assert_eq!(msg.copy_to(buf), SIZE, "a whole message");
                true
            }
            Err(RecvError::Disconnected) => false,
            Err(e) => panic!("receive a message: {e}"),
        }
    }
}

fn ring_options() -> ChannelOptions {
    // Capacity counts messages: as many SIZE-byte records (8-byte header each) as fill
    // RING_BYTES, less one for the padding before a record that would cross the end.
    ChannelOptions::new()
        .max_message(SIZE)
        .capacity(RING_BYTES / (SIZE + 8) - 1)
        .wait_strategy(WaitStrategy::Spin)
}

/// The peer's loop: answer ECHO and LAST messages, swallow STREAM ones, until end of stream.
fn serve(link: &mut impl Link) {
    let mut buf = [0u8; SIZE];
    while link.recv(&mut buf) {
        if buf[0] != STREAM {
            link.send(&buf);
        }
    }
}

fn peer(transport: &str) {
    if let Some(cpu) = std::env::var(CPU_ENV).ok().and_then(|c| c.parse().ok()) {
        pin(cpu);
    }
    match transport {
        // stdin and stdout are the pipes, or both the socket: read and write them unbuffered
        // (std's stdin buffers and its stdout flushes at newlines), through duplicates.
        "pipe" | "unix-stream" => {
            let dup = |fd: BorrowedFd<'_>| File::from(fd.try_clone_to_owned().expect("dup"));
            serve(&mut FdLink {
                rx: dup(io::stdin().as_fd()),
                tx: dup(io::stdout().as_fd()),
            });
        }
        "ringway-spsc" => {
            let base = std::env::var(NAME_ENV).expect("the channel name");
            let opts = ring_options();
            let mut link = RingLink {
                rx: ByteReceiver::open(format!("{base}-ab"), &opts).expect("open A->B"),
                tx: ByteSender::open(format!("{base}-ba"), &opts).expect("open B->A"),
            };
            serve(&mut link);
        }
        other => panic!("unknown peer transport {other:?}"),
    }
}

/// The CPUs this process could use when it started (before it pinned itself, so that the
/// peer, which inherits the pinning, is still sent to the second one).
fn cpus() -> &'static [usize] {
    static CPUS: OnceLock<Vec<usize>> = OnceLock::new();
    CPUS.get_or_init(|| {
        let set = sched_getaffinity(Pid::from_raw(0)).unwrap_or_else(|_| CpuSet::new());
        (0..CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect()
    })
}

fn pin(cpu: usize) {
    let mut set = CpuSet::new();
    if set.set(cpu).is_ok() {
        // Best effort: an unpinned run is still a valid run.
        let _ = sched_setaffinity(Pid::from_raw(0), &set);
    }
}

/// The peer process, killed and reaped if it outlives the bench.
struct Peer(Child);

impl Peer {
    fn spawn(transport: &str, stdin: Stdio, stdout: Stdio, name: Option<&str>) -> Peer {
        let mut cmd = Command::new(std::env::current_exe().expect("this bench binary"));
        cmd.env(PEER_ENV, transport)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::inherit());
        if let Some(name) = name {
            cmd.env(NAME_ENV, name);
        }
        if let [_, second, ..] = *cpus() {
            cmd.env(CPU_ENV, second.to_string());
        }
        Peer(cmd.spawn().expect("start the peer"))
    }

    /// Waits (bounded) for the peer to see end of stream and exit.
    fn finish(mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.0.try_wait() {
                Ok(Some(status)) => {
                    assert!(status.success(), "the peer failed: {status}");
                    return;
                }
                Ok(None) => thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("wait for the peer: {e}"),
            }
        }
        panic!("the peer did not exit after end of stream");
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A connected link to a fresh peer process.
fn connect(transport: &str) -> (Box<dyn Link>, Peer) {
    match transport {
        "pipe" => {
            let mut peer = Peer::spawn(transport, Stdio::piped(), Stdio::piped(), None);
            let link = FdLink {
                rx: peer.0.stdout.take().expect("piped stdout"),
                tx: peer.0.stdin.take().expect("piped stdin"),
            };
            (Box::new(link), peer)
        }
        "unix-stream" => {
            let (mine, theirs) = UnixStream::pair().expect("socketpair");
            let theirs: OwnedFd = theirs.into();
            let out = theirs.try_clone().expect("dup the socket");
            let peer = Peer::spawn(transport, Stdio::from(theirs), Stdio::from(out), None);
            let rx = mine.try_clone().expect("dup the socket");
            (Box::new(FdLink { rx, tx: mine }), peer)
        }
        "ringway-spsc" => {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let base = format!(
                "/ringway-criterion-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let opts = ring_options();
            let tx = ByteSender::create(format!("{base}-ab"), &opts).expect("create A->B");
            let rx = ByteReceiver::create(format!("{base}-ba"), &opts).expect("create B->A");
            let peer = Peer::spawn(transport, Stdio::null(), Stdio::null(), Some(&base));
            (Box::new(RingLink { tx, rx }), peer)
        }
        other => unreachable!("no transport {other}"),
    }
}

const TRANSPORTS: [&str; 3] = ["ringway-spsc", "pipe", "unix-stream"];

/// Benches `group/<transport>` for every transport, each against a fresh peer: `run(link, n)`
/// does `n` iterations over the link and returns how long they took.
fn each_transport(
    c: &mut Criterion,
    group: &str,
    per_message: bool,
    mut run: impl FnMut(&mut dyn Link, u64) -> Duration,
) {
    let mut group = c.benchmark_group(group);
    if per_message {
        group.throughput(Throughput::Elements(1));
    }
    for transport in TRANSPORTS {
        let (mut link, peer) = connect(transport);
        group.bench_function(transport, |b| b.iter_custom(|n| run(&mut *link, n)));
        drop(link);
        peer.finish();
    }
    group.finish();
}

/// `n` round trips, each message numbered and checked when it comes back.
fn round_trips(link: &mut dyn Link, n: u64) -> Duration {
    let mut msg = [ECHO; SIZE];
    let start = Instant::now();
    for i in 0..n {
        msg[8..16].copy_from_slice(&i.to_le_bytes());
        link.send(&msg);
        assert!(link.recv(&mut msg), "the peer answers");
        assert_eq!(msg[8..16], i.to_le_bytes(), "the same message came back");
    }
    start.elapsed()
}

/// `n` messages one way; the peer answers the last one, which ends the timing.
fn stream(link: &mut dyn Link, n: u64) -> Duration {
    let mut msg = [STREAM; SIZE];
    let start = Instant::now();
    for i in 1..=n {
        msg[0] = if i == n { LAST } else { STREAM };
        msg[8..16].copy_from_slice(&i.to_le_bytes());
        link.send(&msg);
    }
    assert!(link.recv(&mut msg), "the peer answers the last message");
    assert_eq!(msg[8..16], n.to_le_bytes(), "the last message came back");
    start.elapsed()
}

fn main() {
    if let Ok(transport) = std::env::var(PEER_ENV) {
        peer(&transport);
        return;
    }
    if let Some(&first) = cpus().first() {
        pin(first);
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    each_transport(&mut c, "xprocess/pingpong", false, round_trips);
    each_transport(&mut c, "xprocess/throughput", true, stream);
    c.final_summary();
}
