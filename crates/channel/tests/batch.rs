//! Batches: `send_batch` and `recv_batch` across processes in both flavours, partial
//! non-blocking batches, the one wake a batch owes a parked receiver, byte batches, and an
//! error met inside a batch, which is reported by the next call and never lost.

mod common;

use std::time::Duration;

use common::{Msg, TIMEOUT, flavour_env};
use libtest_mimic::{Failed, Trial};
use ringway_channel::{
    ByteBatch, ByteReceiver, ByteSender, ChannelOptions, Flavour, Receiver, RecvError, SendError,
    Sender, WaitStrategy,
};
use ringway_testkit::{LeakScope, spawn_role};

fn opts(flavour: Flavour) -> ChannelOptions {
    ChannelOptions::new()
        .flavour(flavour)
        .capacity(256)
        .liveness_interval(Duration::from_millis(10))
}

/// A sender process's batches of every size from 1 to 300 (larger than the ring, too) reach
/// a receiver process that takes them in batches of up to 64, all in order.
fn batches_across_processes(flavour: Flavour) -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("batch");
    let mut tx = Sender::<Msg>::create(&name, &opts(flavour))?;
    let count: u64 = 200_000;
    let child = spawn_role(
        "recv-batch",
        &[
            ("CH", "posix"),
            ("ADDR", &name),
            ("FLAVOUR", flavour_env(flavour)),
            ("COUNT", &count.to_string()),
            ("BATCH", "64"),
            ("EXPECT_END", "1"),
        ],
    );
    let mut seq = 0;
    let mut size = 1;
    let mut batch = Vec::new();
    while seq < count {
        batch.clear();
        batch.extend((seq..count).take(size).map(|s| Msg::new(0, s)));
        tx.send_batch(&batch)?;
        seq += batch.len() as u64;
        size = size % 300 + 1;
    }
    drop(tx);
    child.expect_success(TIMEOUT);
    Ok(())
}

/// A non-blocking batch sends what fits and says how many; with no room at all it is `Full`
/// with a count of 0. A non-blocking receive batch takes what is there, then is `Empty`.
fn partial_batches(flavour: Flavour) -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("partial");
    let mut tx = Sender::<u64>::create(&name, &opts(flavour).capacity(16))?;
    let mut rx = Receiver::<u64>::open(&name, &opts(flavour))?;
    let values: Vec<u64> = (0..40).collect();
    let sent = tx.try_send_batch(&values)?;
    assert_eq!(sent, tx.capacity(), "a batch fills the channel exactly");
    match tx.try_send_batch(&values[sent..]) {
        Err(SendError::Full { value: 0, .. }) => {}
        other => return Err(format!("a full channel: {other:?}").into()),
    }
    let mut got = Vec::new();
    assert_eq!(rx.try_recv_batch(&mut got, 5)?, 5, "at most max");
    assert_eq!(rx.try_recv_batch(&mut got, 1000)?, sent - 5);
    assert_eq!(got, values[..sent]);
    assert!(matches!(
        rx.try_recv_batch(&mut got, 10),
        Err(RecvError::Empty)
    ));
    // A timed batch larger than the room left waits, then reports how many it sent.
    match tx.send_batch_timeout(&values, Duration::from_millis(50)) {
        Err(SendError::Timeout { value, .. }) if value == tx.capacity() => {}
        other => return Err(format!("a timed batch into a full channel: {other:?}").into()),
    }
    Ok(())
}

/// A receiver asleep on an empty channel is woken by a batch: the batch's one wake check is
/// not skipped. With an infinite liveness interval nothing else wakes the sleeper before its
/// 60 s deadline, so a lost wake-up shows as a receiver still asleep 10 s after the batch.
fn a_batch_wakes_a_parked_receiver(flavour: Flavour) -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("wake");
    let slow = opts(flavour)
        .liveness_interval(Duration::MAX)
        .wait_strategy(WaitStrategy::Park);
    let mut tx = Sender::<u64>::create(&name, &slow)?;
    let mut rx = Receiver::<u64>::open(&name, &slow)?;
    for round in 0..20u64 {
        let (done, finished) = std::sync::mpsc::channel();
        let receiver = std::thread::spawn(move || {
            let mut got = Vec::new();
            let result = rx.recv_batch_timeout(&mut got, 100, TIMEOUT);
            let _ = done.send(());
            (rx, result, got)
        });
        // Let the receiver park (if it has not, the test passes trivially this round).
        std::thread::sleep(Duration::from_millis(5));
        tx.send_batch(&[round; 10])?;
        if finished.recv_timeout(Duration::from_secs(10)).is_err() {
            return Err(
                format!("round {round}: the batch did not wake the parked receiver").into(),
            );
        }
        let (back, result, got) = receiver.join().expect("receiver thread");
        rx = back;
        let n = result.map_err(|e| format!("round {round}: {e}"))?;
        assert!(n >= 1 && got.iter().all(|&v| v == round));
        // Drain the rest of the round.
        let mut rest = Vec::new();
        while rx.try_recv_batch(&mut rest, 100).is_ok() {}
        assert_eq!(n + rest.len(), 10, "round {round}");
    }
    Ok(())
}

/// Byte batches: every message in order into one reusable [`ByteBatch`]; a message too large
/// stops a send batch there, with the count before it sent.
fn byte_batches(flavour: Flavour) -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("bytes");
    let o = opts(flavour).max_message(100);
    let mut tx = ByteSender::create(&name, &o)?;
    let mut rx = ByteReceiver::open(&name, &o)?;
    let msgs: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; usize::from(i)]).collect();
    tx.send_batch(&msgs)?;
    let mut batch = ByteBatch::new();
    let mut n = 0;
    while n < msgs.len() {
        n += rx.recv_batch_timeout(&mut batch, 7, TIMEOUT)?;
    }
    assert_eq!(batch.len(), msgs.len());
    assert!(batch.iter().eq(msgs.iter().map(Vec::as_slice)));
    let too_large = [
        vec![1u8; 10],
        vec![2u8; 10],
        vec![3u8; tx.max_message() + 1],
        vec![4u8],
    ];
    match tx.send_batch(&too_large) {
        Err(SendError::TooLarge { value: 2, .. }) => {}
        other => return Err(format!("a batch with a message too large: {other:?}").into()),
    }
    batch.clear();
    assert_eq!(rx.try_recv_batch(&mut batch, 10)?, 2);
    assert_eq!(batch.get(1), Some(&[2u8; 10][..]));
    assert!(batch.get(2).is_none());
    Ok(())
}

/// An error met inside a receive batch (here a message of the wrong size, written by a
/// hostile sender straight into the ring) ends the batch with what came before it; the next
/// call reports the error, and the one after goes on with the next message.
fn an_error_inside_a_batch_is_reported_next() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("error");
    let mut rx = Receiver::<Msg>::create(&name, &opts(Flavour::Spsc))?;
    let region = std::sync::Arc::new(ringway_region::Region::open(
        &ringway_region::Backing::posix(name.as_str()),
        &ringway_region::RegionOptions::new(),
    )?);
    // SAFETY: the region stays mapped while the ring memory (which holds the Arc) lives.
    let memory = unsafe {
        ringway_ring::RingMemory::from_raw(region.as_ptr(), region.len(), Some(region.clone()))
    }?;
    let mut raw = ringway_ring::spsc::Producer::attach(&memory, &Default::default())?;
    raw.push(bytemuck::bytes_of(&Msg::new(0, 0)))?;
    raw.push(bytemuck::bytes_of(&Msg::new(0, 1)))?;
    raw.push(b"abc")?;
    raw.push(bytemuck::bytes_of(&Msg::new(0, 2)))?;
    let mut got = Vec::new();
    assert_eq!(rx.recv_batch_timeout(&mut got, 10, TIMEOUT)?, 2);
    assert!(matches!(
        rx.recv_batch_timeout(&mut got, 10, TIMEOUT),
        Err(RecvError::Corrupted(_))
    ));
    assert_eq!(rx.recv_batch_timeout(&mut got, 10, TIMEOUT)?, 1);
    assert_eq!(got, [Msg::new(0, 0), Msg::new(0, 1), Msg::new(0, 2)]);
    Ok(())
}

fn main() {
    let mut tests = Vec::new();
    for flavour in [Flavour::Spsc, Flavour::Mpmc] {
        let f = flavour_env(flavour);
        tests.push(Trial::test(
            format!("batches_across_processes_{f}"),
            move || batches_across_processes(flavour),
        ));
        tests.push(Trial::test(format!("partial_batches_{f}"), move || {
            partial_batches(flavour)
        }));
        tests.push(Trial::test(
            format!("a_batch_wakes_a_parked_receiver_{f}"),
            move || a_batch_wakes_a_parked_receiver(flavour),
        ));
        tests.push(Trial::test(format!("byte_batches_{f}"), move || {
            byte_batches(flavour)
        }));
    }
    tests.push(Trial::test(
        "an_error_inside_a_batch_is_reported_next",
        an_error_inside_a_batch_is_reported_next,
    ));
    ringway_testkit::harness::main(tests, common::ROLES);
}
