//! Two bridges on one machine, as they would run on two hosts: bridge A publishes the
//! local channel `/example-ticks-a` on `ringway/example/ticks`, bridge B delivers that key
//! into `/example-ticks-b`. A sender writes 100,000 numbered messages into A's channel and a
//! receiver checks them out of B's: none lost, none duplicated, in order.
//!
//! On two real hosts, run each half as `ringway-bridge run` (see docs/beyond-one-host.md):
//!
//! ```text
//! host A: ringway-bridge run --listen tcp/10.0.0.1:7447 --out /ticks=ringway/ticks
//! host B: ringway-bridge run --connect tcp/10.0.0.1:7447 --in ringway/ticks=/ticks
//! ```
//!
//! Run with `cargo run --release -p ringway-bridge --example loopback`.

use std::time::{Duration, Instant};

use ringway_bridge::{Bridge, BridgeConfig, Direction, Route};
use ringway_channel::{ByteReceiver, ByteSender, ChannelOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pid = std::process::id();
    let (chan_a, chan_b) = (
        format!("/example-ticks-a-{pid}"),
        format!("/example-ticks-b-{pid}"),
    );
    let endpoint = format!("tcp/127.0.0.1:{}", 40_000 + pid % 20_000);
    let key = format!("ringway/example/{pid}/ticks");

    // Host A's program and bridge.
    let mut tx = ByteSender::create(chan_a.as_str(), &ChannelOptions::new())?;
    let mut a = BridgeConfig::default();
    a.listen.push(endpoint.clone());
    a.routes
        .push(Route::parse(Direction::Out, &format!("{chan_a}={key}"))?);
    let bridge_a = Bridge::start(&a)?;

    // Host B's program and bridge.
    let mut rx = ByteReceiver::create(chan_b.as_str(), &ChannelOptions::new())?;
    let mut b = BridgeConfig::default();
    b.connect.push(endpoint);
    b.routes
        .push(Route::parse(Direction::In, &format!("{key}={chan_b}"))?);
    let bridge_b = Bridge::start(&b)?;

    let count = 100_000u64;
    let start = Instant::now();
    let sender = std::thread::spawn(move || -> Result<(), String> {
        for i in 0..count {
            tx.send(&i.to_le_bytes()).map_err(|e| e.to_string())?;
        }
        Ok(())
    });
    let mut buf = Vec::new();
    for i in 0..count {
        rx.recv_timeout(&mut buf, Duration::from_secs(30))?;
        let got = u64::from_le_bytes(buf[..8].try_into()?);
        assert_eq!(got, i, "message {i} came as {got}");
    }
    sender.join().expect("the sender thread")?;
    println!(
        "{count} messages across two bridges in {:.2?}, in order",
        start.elapsed()
    );
    println!("bridge B: {}", bridge_b.status());
    bridge_a.stop()?;
    bridge_b.stop()?;
    Ok(())
}
