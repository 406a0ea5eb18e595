//! A price feed: one publisher process, several subscriber processes, each receiving every
//! tick; one subscriber joins late and starts with the newest ticks the channel keeps.
//!
//! `cargo run --release -p ringway-channel --example broadcast` starts the publisher, which
//! creates the broadcast channel (block policy: it waits for the slowest subscriber; a history
//! of 100 ticks for late joiners) and re-runs this program as three subscribers. Once they are
//! attached it publishes 1 million ticks; halfway it starts a fourth, late subscriber. Every
//! subscriber checks that the ticks it receives are consecutive up to the last one, and
//! prints where it started and how many it received. While it runs, `ringway ls` shows the
//! channel as `BCAST` with its readers.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use ringway_channel::{ChannelOptions, Policy, Publisher, RecvError, Subscriber};

/// One price update.
#[derive(Clone, Copy, Debug, ringway_channel::Message)]
#[repr(C)]
struct Tick {
    seq: u64,
    instrument: u32,
    qty: u32,
    price: f64,
}

const TICKS: u64 = 1_000_000;
const HISTORY: u32 = 100;

fn tick(seq: u64) -> Tick {
    Tick {
        seq,
        instrument: (seq % 64) as u32,
        qty: (seq % 1000) as u32,
        price: 100.0 + (seq % 500) as f64 * 0.01,
    }
}

fn options() -> ChannelOptions {
    ChannelOptions::new()
        .capacity(1024)
        .policy(Policy::Block)
        .history(HISTORY)
}

fn subscribe(name: &str, who: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut rx = Subscriber::<Tick>::open(name, &options())?;
    let start = rx.position();
    let mut next = None;
    let mut received = 0u64;
    let began = Instant::now();
    loop {
        match rx.recv() {
            Ok(t) => {
                let expected = *next.get_or_insert(t.seq);
                if t.seq != expected || t.price != tick(expected).price {
                    return Err(format!("{who}: tick {expected} arrived as {t:?}").into());
                }
                next = Some(expected + 1);
                received += 1;
            }
            // Under the block policy a live subscriber is never lapped.
            Err(RecvError::Lagged(n)) => return Err(format!("{who}: missed {n} ticks").into()),
            Err(RecvError::Disconnected) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if next != Some(TICKS) {
        return Err(format!("{who}: stopped at {next:?} of {TICKS}").into());
    }
    println!(
        "{who}: joined at tick {start}, received {received} consecutive ticks to the last \
         ({:.1} M ticks/s; data mapped read-only: {})",
        received as f64 / began.elapsed().as_secs_f64() / 1e6,
        rx.is_data_protected()
    );
    Ok(())
}

fn spawn(name: &str, who: &str) -> std::io::Result<Child> {
    Command::new(std::env::current_exe()?)
        .args(["subscribe", name, who])
        .spawn()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "subscribe" {
        return subscribe(&args[2], &args[3]);
    }
    let name = format!("/ringway-example-broadcast-{}", std::process::id());
    let mut tx = Publisher::<Tick>::create(name.as_str(), &options())?;
    let mut children = Vec::new();
    for i in 1..=3 {
        children.push(spawn(&name, &format!("subscriber {i}"))?);
    }
    let waiting = Instant::now();
    while tx.subscribers() < 3 {
        if waiting.elapsed() > Duration::from_secs(30) {
            return Err("the subscribers did not attach".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    for seq in 0..TICKS {
        if seq == TICKS / 2 {
            children.push(spawn(&name, "late subscriber")?);
        }
        tx.send(tick(seq))?;
    }
    // Keep the channel until the late subscriber is in (it may come after the last tick: it
    // then starts with the history alone).
    while tx.subscribers() < 4 {
        if waiting.elapsed() > Duration::from_secs(60) {
            return Err("the late subscriber did not attach".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(tx); // the subscribers drain, then see the publisher gone
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a subscriber failed: {status}").into());
        }
    }
    println!("publisher: sent {TICKS} ticks to every subscriber; the name is gone with the last");
    Ok(())
}
