//! Two processes play ping-pong over two named channels.
//!
//! `cargo run --release -p ringway-channel --example pingpong` starts the "ping" side, which
//! creates the channels and re-runs this program as the "pong" side; each opens the other's
//! channel by name. Ping sends a 64-byte message, pong sends it back, 100 000 times, and ping
//! prints the round-trip times.

use std::time::{Duration, Instant};

use ringway_channel::{ChannelOptions, Receiver, Sender, WaitStrategy};

/// The message: a sequence number and a payload, 64 bytes in all.
#[derive(Clone, Copy, ringway_channel::Message)]
#[repr(C)]
struct Ball {
    seq: u64,
    payload: [u64; 7],
}

const ROUNDS: u64 = 100_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Both sides spin while waiting: the lowest latency, one core each.
    let opts = ChannelOptions::new()
        .capacity(64)
        .wait_strategy(WaitStrategy::Spin);
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "pong" {
        let mut rx = Receiver::<Ball>::open(args[2].as_str(), &opts)?;
        let mut tx = Sender::<Ball>::open(args[3].as_str(), &opts)?;
        let mut count = 0;
        for ball in rx.iter() {
            tx.send(ball)?;
            count += 1;
        }
        println!(
            "pong (pid {}): returned {count} balls, then saw ping leave",
            std::process::id()
        );
        return Ok(());
    }

    let ping_name = format!("/ringway-example-ping-{}", std::process::id());
    let pong_name = format!("/ringway-example-pong-{}", std::process::id());
    let mut tx = Sender::<Ball>::create(ping_name.as_str(), &opts)?;
    let mut rx = Receiver::<Ball>::create(pong_name.as_str(), &opts)?;
    let mut pong = std::process::Command::new(std::env::current_exe()?)
        .args(["pong", &ping_name, &pong_name])
        .spawn()?;
    println!(
        "ping (pid {}): created {ping_name} and {pong_name}, started pong (pid {})",
        std::process::id(),
        pong.id()
    );

    let mut times = Vec::with_capacity(ROUNDS as usize);
    for seq in 0..ROUNDS {
        let start = Instant::now();
        tx.send(Ball {
            seq,
            payload: [seq; 7],
        })?;
        let back = rx.recv()?;
        times.push(start.elapsed());
        assert_eq!(back.seq, seq, "the ball came back out of order");
    }
    drop(tx); // pong's iterator ends when ping's sender leaves
    pong.wait()?;
    times.sort_unstable();
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "ping: {ROUNDS} round trips of 64 bytes: median {:?}, p99 {:?}, max {:?}",
        pct(0.5),
        pct(0.99),
        times.last().copied().unwrap_or(Duration::ZERO)
    );
    Ok(())
}
