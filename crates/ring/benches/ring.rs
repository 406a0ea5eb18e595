//! In-process cost of a push and a pop on both rings, on heap memory.
//!
//! - `*/push+pop/N`: one thread pushes a message of N bytes and pops it again: the instruction
//!   path of both ends, with every line already in this core's cache.
//! - `*/two-threads/N`: a producer thread streams messages to the consumer on the bench thread
//!   (throughput, in elements per second; on a loaded or 2-core machine the numbers mostly
//!   measure the scheduler).
//!
//! Run with `cargo bench -p ringway-ring --bench ring`. Peer comparisons (pipes, sockets,
//! other queues) live in the workspace's `benches/` and in `ringway bench`.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringway_ring::{AttachOptions, PopError, PushError, mpmc, spsc};

const SIZES: [usize; 3] = [8, 64, 1024];
/// SPSC data area and MPMC slot count: room for bursts, small enough to stay in cache.
const SPSC_CAPACITY: u64 = 64 * 1024;
const MPMC_SLOTS: u64 = 1024;
const TIMEOUT: Duration = Duration::from_secs(30);

fn mpmc_pair(size: usize) -> (mpmc::Producer, mpmc::Consumer) {
    let memory = mpmc::heap(MPMC_SLOTS, size as u32).expect("a valid MPMC config");
    let opts = AttachOptions::new();
    (
        mpmc::Producer::attach(&memory, &opts).expect("fresh ring"),
        mpmc::Consumer::attach(&memory, &opts).expect("fresh ring"),
    )
}

/// One message of `size` bytes pushed, then popped, per iteration, on the pair of ends
/// `pair(size)` makes (generic, so the calls inline as in real use).
fn push_pop<P, C>(
    c: &mut Criterion,
    group: &str,
    pair: impl Fn(usize) -> (P, C),
    push: impl Fn(&mut P, &[u8]) -> Result<(), PushError>,
    pop: impl Fn(&mut C, &mut Vec<u8>) -> Result<usize, PopError>,
) {
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Elements(1));
    for size in SIZES {
        let (mut tx, mut rx) = pair(size);
        let msg = vec![0xA5u8; size];
        let mut out = Vec::with_capacity(size);
        group.bench_with_input(BenchmarkId::from_parameter(size), &msg, |b, msg| {
            b.iter(|| {
                push(&mut tx, black_box(msg)).expect("room for one message");
                pop(&mut rx, &mut out).expect("the message just pushed");
                black_box(&out);
            });
        });
    }
    group.finish();
}

fn single_thread(c: &mut Criterion) {
    push_pop(
        c,
        "spsc/push+pop",
        |_| spsc::heap(SPSC_CAPACITY).expect("a valid SPSC config"),
        spsc::Producer::push,
        spsc::Consumer::pop,
    );
    push_pop(
        c,
        "mpmc/push+pop",
        mpmc_pair,
        mpmc::Producer::push,
        mpmc::Consumer::pop,
    );
}

/// Streams `n` messages from a producer thread and returns the time until the last one was
/// popped on this thread.
fn stream<P: Send + 'static>(
    n: u64,
    mut producer: P,
    push: fn(&mut P, &[u8]),
    size: usize,
    mut pop: impl FnMut(&mut Vec<u8>) -> Result<usize, PopError>,
) -> Duration {
    let start = Instant::now();
    let sender = thread::spawn(move || {
        let msg = vec![0xA5u8; size];
        for _ in 0..n {
            push(&mut producer, &msg);
        }
    });
    let mut out = Vec::with_capacity(size);
    for _ in 0..n {
        pop(&mut out).expect("the producer sends every message");
    }
    let elapsed = start.elapsed();
    sender.join().expect("the producer thread");
    elapsed
}

fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("spsc/two-threads");
    group.throughput(Throughput::Elements(1));
    for size in SIZES {
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter_custom(|n| {
                let (tx, mut rx) = spsc::heap(SPSC_CAPACITY).expect("a valid SPSC config");
                let push = |tx: &mut spsc::Producer, msg: &[u8]| {
                    tx.push_timeout(msg, TIMEOUT)
                        .expect("the consumer keeps up");
                };
                stream(n, tx, push, size, |out| rx.pop_timeout(out, TIMEOUT))
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("mpmc/two-threads");
    group.throughput(Throughput::Elements(1));
    for size in SIZES {
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter_custom(|n| {
                let (tx, mut rx) = mpmc_pair(size);
                let push = |tx: &mut mpmc::Producer, msg: &[u8]| {
                    tx.push_timeout(msg, TIMEOUT)
                        .expect("the consumer keeps up");
                };
                stream(n, tx, push, size, |out| rx.pop_timeout(out, TIMEOUT))
            });
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = single_thread, two_threads
}
criterion_main!(benches);
