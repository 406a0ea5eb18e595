//! What a ring does when the layer that mapped it reports a truncated object
//! ([`RingMemory::with_truncation_check`]), on heap rings: the fault counter and the
//! slow-path check are set by hand here; `ringway-channel`'s tests truncate real objects.

#![cfg(not(ringway_loom))]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ringway_ring::{
    AttachOptions, PopError, PushError, RingConfig, RingMemory, Truncated, mpmc, spsc,
};

fn opts() -> AttachOptions {
    AttachOptions::new().liveness_interval(Duration::from_millis(5))
}

fn guarded(config: &RingConfig, faults: &'static AtomicU64, shrunk: Arc<AtomicBool>) -> RingMemory {
    let len = RingMemory::heap(config).unwrap().len() as u64;
    RingMemory::heap(config).unwrap().with_truncation_check(
        Some(faults),
        Arc::new(move || {
            shrunk.load(Ordering::SeqCst).then_some(Truncated {
                size: 4096,
                mapped: len,
                faults: 0,
            })
        }),
    )
}

fn eventually<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "not reported within 5 s");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// A message copied after this process replaced a truncated page with zeros is never
/// delivered (nor published) as `Ok`.
#[test]
fn after_a_fault_no_message_is_delivered_or_published() {
    static FAULTS: AtomicU64 = AtomicU64::new(0);
    let m = guarded(
        &RingConfig::spsc(1024),
        &FAULTS,
        Arc::new(AtomicBool::new(false)),
    );
    let mut tx = spsc::Producer::attach(&m, &opts()).unwrap();
    let mut rx = spsc::Consumer::attach(&m, &opts()).unwrap();
    tx.push(b"intact").unwrap();
    FAULTS.store(1, Ordering::SeqCst);
    let mut out = Vec::new();
    assert!(matches!(rx.pop(&mut out), Err(PopError::Corrupted(_))));
    assert!(out.is_empty(), "the zeroed copy is not handed out");
    assert!(matches!(rx.pop(&mut out), Err(PopError::Corrupted(_))));
    assert!(matches!(tx.push(b"lost"), Err(PushError::Corrupted(_))));
    assert!(matches!(tx.push(b"lost"), Err(PushError::Corrupted(_))));
}

#[test]
fn after_a_fault_no_mpmc_message_is_delivered_or_published() {
    static FAULTS: AtomicU64 = AtomicU64::new(0);
    let m = guarded(
        &RingConfig::mpmc(4, 64).max_producers(1).max_consumers(1),
        &FAULTS,
        Arc::new(AtomicBool::new(false)),
    );
    let mut tx = mpmc::Producer::attach(&m, &opts()).unwrap();
    let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
    tx.push(b"intact").unwrap();
    FAULTS.store(1, Ordering::SeqCst);
    let mut out = Vec::new();
    assert!(matches!(rx.pop(&mut out), Err(PopError::Corrupted(_))));
    assert!(out.is_empty());
    assert!(matches!(tx.push(b"lost"), Err(PushError::Corrupted(_))));
    // The slot the failed push claimed was published as cancelled, so the ring still moves
    // for whoever can use it; this process's calls keep reporting the truncation.
    assert!(matches!(rx.pop(&mut out), Err(PopError::Corrupted(_))));
    assert!(matches!(rx.peek(), Err(PopError::Corrupted(_))));
}

type PushFn = Box<dyn FnMut() -> Result<(), PushError>>;
type PopFn = Box<dyn FnMut() -> Result<usize, PopError>>;

/// An object that shrank under the mapping is reported by the slow path of every end, from
/// non-blocking calls too, before this process touches a lost page.
#[test]
fn a_shrunk_object_is_reported_by_every_end() {
    static FAULTS: AtomicU64 = AtomicU64::new(0);
    for mpmc in [false, true] {
        let shrunk = Arc::new(AtomicBool::new(false));
        let config = if mpmc {
            RingConfig::mpmc(2, 8).max_producers(1).max_consumers(1)
        } else {
            RingConfig::spsc(64)
        };
        let m = guarded(&config, &FAULTS, shrunk.clone());
        let (mut push, mut pop): (PushFn, PopFn) = if mpmc {
            let mut tx = mpmc::Producer::attach(&m, &opts()).unwrap();
            let mut rx = mpmc::Consumer::attach(&m, &opts()).unwrap();
            let mut out = Vec::new();
            (
                Box::new(move || tx.push(b"1234567")),
                Box::new(move || rx.pop(&mut out)),
            )
        } else {
            let mut tx = spsc::Producer::attach(&m, &opts()).unwrap();
            let mut rx = spsc::Consumer::attach(&m, &opts()).unwrap();
            let mut out = Vec::new();
            (
                Box::new(move || tx.push(b"1234567")),
                Box::new(move || rx.pop(&mut out)),
            )
        };
        while push().is_ok() {}
        assert_eq!(push(), Err(PushError::Full));
        shrunk.store(true, Ordering::SeqCst);
        let other = eventually(|| match push() {
            Err(PushError::Full) => None,
            other => Some(other),
        });
        assert!(matches!(other, Err(PushError::Corrupted(_))), "{other:?}");
        // Drain what is there (those records are intact: no fault in this process), then the
        // empty ring's slow path reports the truncation.
        let other = eventually(|| match pop() {
            Ok(_) | Err(PopError::Empty) => None,
            other => Some(other),
        });
        assert!(matches!(other, Err(PopError::Corrupted(_))), "{other:?}");
    }
}
