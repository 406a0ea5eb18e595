//! A job queue: one process hands out jobs over an MPMC channel to several worker processes,
//! which send results back over another; each job goes to exactly one worker.
//!
//! `cargo run -p ringway-channel --example mpmc_workers`

use std::collections::BTreeMap;

use ringway_channel::{ChannelOptions, Flavour, Receiver, Sender};

#[derive(Clone, Copy, ringway_channel::Message)]
#[repr(C)]
struct Job {
    id: u64,
    n: u64,
}

#[derive(Clone, Copy, ringway_channel::Message)]
#[repr(C)]
struct Done {
    id: u64,
    worker: u64,
    result: u64,
}

const JOBS: u64 = 20_000;
const WORKERS: u64 = 3;

fn opts() -> ChannelOptions {
    ChannelOptions::new().flavour(Flavour::Mpmc).capacity(256)
}

fn collatz_steps(mut n: u64) -> u64 {
    let mut steps = 0;
    while n > 1 {
        n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
        steps += 1;
    }
    steps
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 5 && args[1] == "worker" {
        let worker: u64 = args[2].parse()?;
        let mut jobs = Receiver::<Job>::open(args[3].as_str(), &opts())?;
        let mut done = Sender::<Done>::open(args[4].as_str(), &opts())?;
        let mut count = 0;
        for job in jobs.iter() {
            done.send(Done {
                id: job.id,
                worker,
                result: collatz_steps(job.n),
            })?;
            count += 1;
        }
        println!(
            "worker {worker} (pid {}): did {count} jobs, then the queue closed",
            std::process::id()
        );
        return Ok(());
    }

    let jobs_name = format!("/ringway-example-jobs-{}", std::process::id());
    let done_name = format!("/ringway-example-done-{}", std::process::id());
    let mut jobs = Sender::<Job>::create(jobs_name.as_str(), &opts())?;
    let mut done = Receiver::<Done>::create(done_name.as_str(), &opts())?;
    let mut children = Vec::new();
    for worker in 0..WORKERS {
        children.push(
            std::process::Command::new(std::env::current_exe()?)
                .args(["worker", &worker.to_string(), &jobs_name, &done_name])
                .spawn()?,
        );
    }

    // Hand out jobs while collecting results, so neither channel fills up for good.
    let mut per_worker = BTreeMap::new();
    let mut total = 0u64;
    let mut received = 0;
    let mut next = 0;
    while received < JOBS {
        if next < JOBS
            && jobs
                .try_send(Job {
                    id: next,
                    n: next + 1,
                })
                .is_ok()
        {
            next += 1;
            continue;
        }
        if let Ok(d) = done.recv_timeout(std::time::Duration::from_millis(1)) {
            *per_worker.entry(d.worker).or_insert(0u64) += 1;
            total += d.result;
            received += 1;
        }
    }
    drop(jobs); // the workers' iterators end once the queue is drained
    for mut child in children {
        child.wait()?;
    }
    let expected: u64 = (1..=JOBS).map(collatz_steps).sum();
    println!(
        "boss (pid {}): {JOBS} jobs done by {WORKERS} worker processes: {per_worker:?}",
        std::process::id()
    );
    println!("boss: total Collatz steps {total} (expected {expected})");
    assert_eq!(total, expected);
    Ok(())
}
