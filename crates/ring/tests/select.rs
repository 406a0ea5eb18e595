//! `select`: each kind of arm fires, nothing fires when nothing is ready, timeouts, closed and
//! dead peers, interrupts, the fallback sleep, more words than one `futex_waitv` takes,
//! rotation, and hostile values in the words a watch reads. Cross-process runs are in the
//! channel crate's tests (`tests/select.rs`).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ringway_ring::select::{FUTEX_WAITV_MAX, Select, SelectError};
use ringway_ring::{
    AttachOptions, Interrupt, PopError, RingConfig, RingMemory, WaitStrategy, mpmc, spsc,
};

const LONG: Duration = Duration::from_secs(30);

fn spsc_pair(opts: &AttachOptions) -> (RingMemory, spsc::Producer, spsc::Consumer) {
    let memory = RingMemory::heap(&RingConfig::spsc(1024)).unwrap();
    let tx = spsc::Producer::attach(&memory, opts).unwrap();
    let rx = spsc::Consumer::attach(&memory, opts).unwrap();
    (memory, tx, rx)
}

#[test]
fn each_kind_of_arm_fires() {
    let opts = AttachOptions::new();
    let (_a, mut tx_a, mut rx_a) = spsc_pair(&opts);
    let memory = mpmc::heap(2, 16).unwrap();
    let mut tx_b = mpmc::Producer::attach(&memory, &opts).unwrap();
    let mut rx_b = mpmc::Consumer::attach(&memory, &opts).unwrap();
    // Fill both rings so the producers' arms are not ready.
    while tx_a.push(&[7; 100]).is_ok() {}
    while tx_b.push(b"x").is_ok() {}
    let mut out = Vec::new();
    // Drain them so the consumers' arms are not ready either, but the producers' are again:
    // select over producers on full rings and consumers on empty ones separately.
    let mut producers = Select::new();
    let pa = producers.add(tx_a.watch(100));
    let pb = producers.add(tx_b.watch());
    assert_eq!(producers.try_select(), Err(SelectError::Empty));
    rx_b.pop(&mut out).unwrap();
    assert_eq!(producers.try_select().unwrap().index(), pb);
    tx_b.push(b"x").unwrap();
    assert_eq!(producers.try_select(), Err(SelectError::Empty));
    rx_a.pop(&mut out).unwrap();
    rx_a.flush();
    let got = producers.select_timeout(LONG).unwrap();
    assert_eq!((got.index(), got.is_closed()), (pa, false));

    while rx_a.pop(&mut out).is_ok() {}
    while rx_b.pop(&mut out).is_ok() {}
    let mut consumers = Select::new();
    let ca = consumers.add(rx_a.watch());
    let cb = consumers.add(rx_b.watch());
    assert_eq!(consumers.try_select(), Err(SelectError::Empty));
    tx_b.push(b"b").unwrap();
    assert_eq!(consumers.select().unwrap().index(), cb);
    rx_b.pop(&mut out).unwrap();
    tx_a.push(b"a").unwrap();
    assert_eq!(consumers.select().unwrap().index(), ca);
    rx_a.pop(&mut out).unwrap();
    assert_eq!(out, b"a");
    assert_eq!(consumers.try_select(), Err(SelectError::Empty));
}

/// Rings whose producers a test hands to other threads, one at a time.
fn rings(n: usize, opts: &AttachOptions) -> (Vec<Option<spsc::Producer>>, Vec<spsc::Consumer>) {
    (0..n)
        .map(|_| {
            let (_, tx, rx) = spsc_pair(opts);
            (Some(tx), rx)
        })
        .unzip()
}

/// Sends one message on ring `target` from another thread after a pause; the select must
/// return that arm.
fn wake_each(sel: &mut Select, txs: &mut [Option<spsc::Producer>], rxs: &mut [spsc::Consumer]) {
    let n = txs.len();
    for target in [n - 1, 0, n / 2, 1] {
        let mut tx = txs[target].take().unwrap();
        let sender = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            tx.push(b"wake").unwrap();
            tx
        });
        let got = sel.select_timeout(LONG).unwrap();
        txs[target] = Some(sender.join().unwrap());
        assert_eq!((got.index(), got.is_closed()), (target, false));
        let mut out = Vec::new();
        rxs[target].pop(&mut out).unwrap();
        assert_eq!(out, b"wake");
    }
}

#[test]
fn a_blocked_select_wakes_for_a_message_on_any_arm() {
    let opts = AttachOptions::new().wait_strategy(WaitStrategy::Park);
    for fallback in [false, true] {
        let (mut txs, mut rxs) = rings(4, &opts);
        let mut sel = Select::new();
        sel.force_fallback(fallback);
        for rx in &rxs {
            sel.add(rx.watch());
        }
        wake_each(&mut sel, &mut txs, &mut rxs);
    }
}

#[test]
fn timeouts_and_deadlines_pass_with_nothing_ready() {
    let opts = AttachOptions::new();
    let (_m, _tx, rx) = spsc_pair(&opts);
    let mut sel = Select::new();
    sel.add(rx.watch());
    for fallback in [false, true] {
        sel.force_fallback(fallback);
        let t = Duration::from_millis(30);
        let start = Instant::now();
        assert_eq!(sel.select_timeout(t), Err(SelectError::Timeout));
        assert!(start.elapsed() >= t);
        let deadline = Instant::now() + t;
        assert_eq!(sel.select_deadline(deadline), Err(SelectError::Timeout));
        assert!(Instant::now() >= deadline);
    }
    // No arms at all: only the deadline ends it.
    let mut none = Select::new();
    assert!(none.is_empty());
    assert_eq!(none.try_select(), Err(SelectError::Empty));
    let start = Instant::now();
    assert_eq!(
        none.select_timeout(Duration::from_millis(10)),
        Err(SelectError::Timeout)
    );
    assert!(start.elapsed() >= Duration::from_millis(10));
}

#[test]
fn a_closed_arm_reports_closed_after_its_messages() {
    let opts = AttachOptions::new();
    let (_m1, _tx1, rx1) = spsc_pair(&opts);
    let (_m2, mut tx2, mut rx2) = spsc_pair(&opts);
    let mut sel = Select::new();
    let _quiet = sel.add(rx1.watch());
    let closing = sel.add(rx2.watch());
    tx2.push(b"last words").unwrap();
    drop(tx2);
    let got = sel.select_timeout(LONG).unwrap();
    assert_eq!((got.index(), got.is_closed()), (closing, false));
    let mut out = Vec::new();
    rx2.pop(&mut out).unwrap();
    let got = sel.select_timeout(LONG).unwrap();
    assert_eq!((got.index(), got.is_closed()), (closing, true));
    assert_eq!(rx2.pop(&mut out), Err(PopError::Closed));
}

/// Whether the "process" `dead_identity(1)` has been killed yet.
static KILLED: AtomicBool = AtomicBool::new(false);

fn killable(pid: u32, start_time: u64) -> bool {
    if pid == common::dead_identity(1).pid {
        return !KILLED.load(Ordering::SeqCst);
    }
    common::probe(pid, start_time)
}

#[test]
fn a_dead_peer_is_reported_closed_and_its_endpoint_told_at_once() {
    let memory = RingMemory::heap(&RingConfig::spsc(1024)).unwrap();
    let victim = AttachOptions::new().identity(common::dead_identity(1));
    // An interval far longer than the test: the consumer's own checks run once, at its first
    // empty poll, and then only when the watch expedites them.
    let opts = AttachOptions::new()
        .liveness_probe(killable)
        .liveness_interval(Duration::from_secs(3600))
        .wait_strategy(WaitStrategy::Park);
    let tx = spsc::Producer::attach(&memory, &victim).unwrap();
    let mut rx = spsc::Consumer::attach(&memory, &opts).unwrap();
    let mut out = Vec::new();
    assert_eq!(rx.pop(&mut out), Err(PopError::Empty)); // the first check: alive
    let (_m, _tx2, other) = spsc_pair(&AttachOptions::new());
    let mut sel = Select::new();
    sel.add(other.watch());
    let arm = sel.add(rx.watch()); // a fresh watch probes at its first look
    assert_eq!(sel.try_select(), Err(SelectError::Empty));
    std::mem::forget(tx); // "killed": never closes its entry
    KILLED.store(true, Ordering::SeqCst);
    assert_eq!(rx.pop(&mut out), Err(PopError::Empty)); // not due for an hour
    // A new watch of the same endpoint probes at once; the select reports the arm closed.
    sel.remove(arm);
    let arm = sel.add(rx.watch());
    let got = sel.select_timeout(LONG).unwrap();
    assert_eq!((got.index(), got.is_closed()), (arm, true));
    // And the endpoint's checks are due at once, not in an hour.
    assert_eq!(rx.pop(&mut out), Err(PopError::Closed));
}

#[test]
fn a_dead_producer_of_a_watched_mpmc_slot_is_recovered() {
    // A producer that dies between its claim and its publication holds the slot the
    // consumers wait at; the watch must not sleep behind it for ever but let the consumer's
    // recovery run.
    let memory = mpmc::heap(8, 16).unwrap();
    let opts = AttachOptions::new()
        .liveness_probe(common::probe)
        .liveness_interval(Duration::from_millis(5))
        .wait_strategy(WaitStrategy::Park);
    let dead = opts.clone().identity(common::dead_identity(2));
    let mut stuck = mpmc::Producer::attach(&memory, &dead).unwrap();
    let mut live = mpmc::Producer::attach(&memory, &opts).unwrap();
    let mut rx = mpmc::Consumer::attach(&memory, &opts).unwrap();
    let grant = stuck.reserve(4).unwrap(); // claims position 0
    std::mem::forget(grant);
    std::mem::forget(stuck);
    live.push(b"after").unwrap(); // position 1
    let mut sel = Select::new();
    sel.add(rx.watch());
    let mut out = Vec::new();
    let start = Instant::now();
    loop {
        sel.select_timeout(LONG).unwrap();
        if rx.pop(&mut out).is_ok() {
            break;
        }
        assert!(start.elapsed() < LONG, "the stuck slot was never recovered");
    }
    assert_eq!(out, b"after");
    assert_eq!(rx.lost(), 1);
}

#[test]
fn an_interrupt_ends_a_select() {
    let stop = Interrupt::new();
    let opts = AttachOptions::new().interrupt(stop.clone());
    let (_m, _tx, rx) = spsc_pair(&opts);
    let (_m2, _tx2, rx2) = spsc_pair(&AttachOptions::new());
    for fallback in [false, true] {
        let mut sel = Select::new();
        sel.force_fallback(fallback);
        sel.add(rx2.watch());
        sel.add(rx.watch());
        let raiser = stop.clone();
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            raiser.interrupt();
        });
        assert_eq!(sel.select(), Err(SelectError::Interrupted));
        t.join().unwrap();
        // Sticky: at once, until cleared; try_select is not affected.
        assert_eq!(sel.select(), Err(SelectError::Interrupted));
        assert_eq!(sel.try_select(), Err(SelectError::Empty));
        stop.clear();
    }
}

#[test]
fn more_arms_than_one_futex_waitv_takes() {
    let opts = AttachOptions::new().wait_strategy(WaitStrategy::Park);
    let (mut txs, mut rxs) = rings(FUTEX_WAITV_MAX + 3, &opts);
    let mut sel = Select::new();
    for rx in &rxs {
        sel.add(rx.watch());
    }
    wake_each(&mut sel, &mut txs, &mut rxs);
}

#[test]
fn the_scan_rotates_so_a_busy_arm_does_not_starve_others() {
    let opts = AttachOptions::new();
    let (mut txs, rxs) = rings(3, &opts);
    let mut sel = Select::new();
    for rx in &rxs {
        sel.add(rx.watch());
    }
    for tx in txs.iter_mut().flatten() {
        tx.push(b"always").unwrap();
    }
    // Every arm stays ready (nothing is popped): successive selects take turns.
    let picks: Vec<usize> = (0..6).map(|_| sel.try_select().unwrap().index()).collect();
    assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    let removed = sel.remove(1);
    assert!(!removed.is_producer());
    let picks: Vec<usize> = (0..4).map(|_| sel.try_select().unwrap().index()).collect();
    assert_eq!(picks, [0, 2, 0, 2]);
}

#[test]
fn hostile_values_make_an_arm_ready_never_a_panic() {
    let opts = AttachOptions::new();
    // SPSC consumer: a misaligned or huge head.
    let (memory, mut tx, mut rx) = spsc_pair(&opts);
    let mut sel = Select::new();
    sel.add(rx.watch());
    sel.add(tx.watch(8));
    const HEAD: usize = 256; // the consumer's `head` (docs/layout.md, Block 2)
    const TAIL: usize = 128; // the producer's `tail` (Block 1)
    for bad in [3u64, u64::MAX, 1 << 63, u64::MAX - 7] {
        common::poke(&memory, HEAD, bad);
        assert!(sel.try_select().is_ok(), "head {bad:#x}");
        assert!(sel.try_select().is_ok(), "head {bad:#x}");
    }
    for bad in [5u64, u64::MAX, 1 << 40] {
        common::poke(&memory, TAIL, bad);
        assert!(sel.try_select().is_ok(), "tail {bad:#x}");
    }
    // The real calls report it (or find nothing); none panics.
    let mut out = Vec::new();
    let _ = rx.pop(&mut out);
    let _ = tx.push(b"x");

    // MPMC: any index value is a position; garbage sequences only make arms ready.
    let memory = mpmc::heap(4, 8).unwrap();
    let mut mtx = mpmc::Producer::attach(&memory, &opts).unwrap();
    let mut mrx = mpmc::Consumer::attach(&memory, &opts).unwrap();
    let mut sel = Select::new();
    sel.add(mrx.watch());
    sel.add(mtx.watch());
    for bad in [u64::MAX, 1 << 63, 12345, 7] {
        common::poke(&memory, HEAD, bad);
        common::poke(&memory, TAIL, bad);
        let _ = sel.try_select();
        let _ = sel.select_timeout(Duration::from_millis(1));
    }
    let _ = mrx.pop(&mut out);
    let _ = mtx.push(b"x");
}
