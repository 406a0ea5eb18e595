//! A telemetry stream in batches: one process samples, another aggregates.
//!
//! `cargo run --release -p ringway-channel --example batch` starts the sampler, which creates
//! the channel and re-runs this program as the aggregator. The sampler sends 2 million
//! 32-byte samples twice: one `send` each, then `send_batch` of 64 at a time (one publication
//! and one wake check per batch). The aggregator drains with `recv_batch` (every sample that
//! is ready, up to 1024, in one call), checks that none is lost or out of order, and prints
//! the rate of each run.

use std::process::Command;
use std::time::Instant;

use ringway_channel::{ChannelOptions, Receiver, RecvError, Sender};

/// One reading of a sensor.
#[derive(Clone, Copy, Debug, ringway_channel::Message)]
#[repr(C)]
struct Sample {
    seq: u64,
    sensor: u32,
    flags: u32,
    value: f64,
    at_ns: u64,
}

const SAMPLES: u64 = 2_000_000;
const BATCH: usize = 64;

fn sample(seq: u64) -> Sample {
    Sample {
        seq,
        sensor: (seq % 16) as u32,
        flags: 0,
        value: seq as f64 * 0.5,
        at_ns: seq * 1000,
    }
}

fn aggregate(name: &str, opts: &ChannelOptions) -> Result<(), Box<dyn std::error::Error>> {
    let mut rx = Receiver::<Sample>::open(name, opts)?;
    let mut batch = Vec::with_capacity(1024);
    let runs = ["one send each", "send_batch of 64"];
    // Both runs are one stream of 2 x SAMPLES samples; a batch may hold the end of the first
    // run and the start of the second.
    let mut received = 0;
    let mut calls = [0u64; 2];
    let mut started = [None; 2];
    while received < 2 * SAMPLES {
        batch.clear();
        rx.recv_batch(&mut batch, 1024)?;
        let run = (received / SAMPLES) as usize;
        started[run].get_or_insert_with(Instant::now);
        calls[run] += 1;
        for s in &batch {
            let expected = received % SAMPLES;
            if s.seq != expected || s.value != expected as f64 * 0.5 {
                return Err(format!("sample {expected} arrived as {s:?}").into());
            }
            received += 1;
            if received == SAMPLES {
                started[1] = Some(Instant::now());
                let secs = started[0].map_or(0.0, |t| t.elapsed().as_secs_f64());
                report(runs[0], secs, calls[0]);
            }
        }
    }
    let secs = started[1].map_or(0.0, |t| t.elapsed().as_secs_f64());
    report(runs[1], secs, calls[1]);
    match rx.recv() {
        Err(RecvError::Disconnected) => Ok(()),
        other => Err(format!("expected the sampler to have left, got {other:?}").into()),
    }
}

fn report(run: &str, secs: f64, calls: u64) {
    println!(
        "aggregator: {run}: {SAMPLES} samples in order, {:.1} M samples/s, {:.1} per recv_batch",
        SAMPLES as f64 / secs / 1e6,
        SAMPLES as f64 / calls.max(1) as f64
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let opts = ChannelOptions::new().capacity(4096);
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "aggregate" {
        return aggregate(&args[2], &opts);
    }
    let name = format!("/ringway-example-batch-{}", std::process::id());
    let mut tx = Sender::<Sample>::create(name.as_str(), &opts)?;
    let mut aggregator = Command::new(std::env::current_exe()?)
        .args(["aggregate", &name])
        .spawn()?;

    for seq in 0..SAMPLES {
        tx.send(sample(seq))?;
    }
    let mut buf = Vec::with_capacity(BATCH);
    let mut seq = 0;
    while seq < SAMPLES {
        buf.clear();
        buf.extend((seq..SAMPLES).take(BATCH).map(sample));
        // On an error, the count of samples that went out is in the error's value.
        tx.send_batch(&buf)?;
        seq += buf.len() as u64;
    }
    drop(tx);
    let status = aggregator.wait()?;
    if !status.success() {
        return Err(format!("the aggregator failed: {status}").into());
    }
    println!(
        "sampler: sent {SAMPLES} samples twice; the channel's name is gone with its last endpoint"
    );
    Ok(())
}
