//! SPSC ring behaviour on heap memory: edges of the record layout, batching, in-place access,
//! closing, and a hostile peer writing through the documented layout.

#![cfg(not(ringway_loom))]

mod common;

use std::time::Duration;

use common::{Rng, message, peek, poke, wait_for_a_waiting_consumer};
use ringway_ring::layout::{
    REC_ALIGNED, REC_LINES, aligned_record_word, lines_record_word, padding_word, record_word,
};
use ringway_ring::{
    AttachError, AttachOptions, PopError, PushError, RingConfig, RingMemory, WaitStrategy, spsc,
};

const DATA: usize = 1280; // data_offset of an SPSC ring (1024 + 2 * 128)

fn ring(capacity: u64) -> (RingMemory, spsc::Producer, spsc::Consumer) {
    let memory = RingMemory::heap(&RingConfig::spsc(capacity)).unwrap();
    let opts = AttachOptions::new();
    let tx = spsc::Producer::attach(&memory, &opts).unwrap();
    let rx = spsc::Consumer::attach(&memory, &opts).unwrap();
    (memory, tx, rx)
}

fn pop(rx: &mut spsc::Consumer) -> Result<Vec<u8>, PopError> {
    let mut out = Vec::new();
    rx.pop(&mut out).map(|_| out)
}

#[test]
fn zero_length_and_max_length_messages() {
    let (_m, mut tx, mut rx) = ring(64);
    assert_eq!(tx.max_message(), 24);
    tx.push(b"").unwrap();
    assert_eq!(pop(&mut rx).unwrap(), b"");
    let max = vec![0xAB; 24];
    tx.push(&max).unwrap();
    assert_eq!(pop(&mut rx).unwrap(), max);
    assert_eq!(
        tx.push(&[0; 25]),
        Err(PushError::TooLarge { len: 25, max: 24 })
    );
    assert_eq!(pop(&mut rx), Err(PopError::Empty));
}

#[test]
fn exactly_full_then_space_after_release() {
    let (_m, mut tx, mut rx) = ring(64);
    // Two 24-byte messages are two 32-byte records: exactly the 64-byte data area.
    tx.push(&[1; 24]).unwrap();
    tx.push(&[2; 24]).unwrap();
    assert_eq!(tx.push(b""), Err(PushError::Full));
    assert_eq!(pop(&mut rx).unwrap(), [1; 24]);
    tx.push(&[3; 24]).unwrap();
    assert_eq!(tx.push(b""), Err(PushError::Full));
    assert_eq!(pop(&mut rx).unwrap(), [2; 24]);
    assert_eq!(pop(&mut rx).unwrap(), [3; 24]);
    assert_eq!(pop(&mut rx), Err(PopError::Empty));
}

#[test]
fn record_ending_exactly_at_the_end_needs_no_padding() {
    let (memory, mut tx, mut rx) = ring(64);
    tx.push(&[1; 8]).unwrap(); // 16 bytes at 0
    tx.push(&[2; 24]).unwrap(); // 32 bytes at 16
    tx.push(&[3; 8]).unwrap(); // 16 bytes at 48: ends exactly at 64
    for want in [[1u8; 8].as_slice(), &[2; 24], &[3; 8]] {
        assert_eq!(pop(&mut rx).unwrap(), want);
    }
    tx.push(&[4; 8]).unwrap(); // next lap, offset 0
    assert_eq!(peek(&memory, DATA), record_word(64, 8));
    assert_eq!(pop(&mut rx).unwrap(), [4; 8]);
}

#[test]
fn a_record_that_does_not_fit_is_preceded_by_padding() {
    let (memory, mut tx, mut rx) = ring(64);
    tx.push(&[1; 8]).unwrap(); // 16 bytes at 0
    tx.push(&[2; 24]).unwrap(); // 32 bytes at 16; tail at 48
    assert_eq!(pop(&mut rx).unwrap(), [1; 8]);
    assert_eq!(pop(&mut rx).unwrap(), [2; 24]);
    // A 32-byte record does not fit in the 16 bytes left: 16 bytes of padding, then offset 0.
    tx.push(&[3; 24]).unwrap();
    assert_eq!(peek(&memory, DATA + 48), padding_word(48, 8));
    assert_eq!(peek(&memory, DATA), record_word(64, 24));
    assert_eq!(pop(&mut rx).unwrap(), [3; 24]);
    // Padding of zero bytes: a header-only gap of 8 at the very end.
    let (memory, mut tx, mut rx) = ring(256);
    tx.push(&[1; 120]).unwrap(); // 128 at 0 (too large to align in this ring)
    tx.push(&[2; 104]).unwrap(); // 112 at 128
    tx.push(&[]).unwrap(); // 8 at 240; tail 248
    for _ in 0..3 {
        pop(&mut rx).unwrap();
    }
    tx.push(&[3; 8]).unwrap(); // 16 does not fit in 8: an 8-byte padding record (skip 0)
    assert_eq!(peek(&memory, DATA + 248), padding_word(248, 0));
    assert_eq!(pop(&mut rx).unwrap(), [3; 8]);
}

#[test]
fn random_sizes_through_many_laps_keep_order_and_content() {
    let (_m, mut tx, mut rx) = ring(256);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut sent, mut received) = (0u64, 0u64);
    let mut out = Vec::new();
    // Under Miri, which interprets every step, 500 messages (about 150 laps) are enough.
    let total = if cfg!(miri) { 500 } else { 20_000 };
    while received < total {
        if rng.below(2) == 0 {
            let len = 8 + rng.below(113) as usize; // 8 ..= 120 = max_message
            match tx.push(&message(sent, len)) {
                Ok(()) => sent += 1,
                Err(PushError::Full) => {}
                Err(e) => panic!("push: {e}"),
            }
        } else {
            match rx.pop(&mut out) {
                Ok(_) => {
                    let seq = u64::from_le_bytes(out[..8].try_into().unwrap());
                    assert_eq!(seq, received);
                    assert_eq!(out, message(seq, out.len()));
                    received += 1;
                }
                Err(PopError::Empty) => assert_eq!(sent, received, "empty with messages pending"),
                Err(e) => panic!("pop: {e}"),
            }
        }
    }
}

#[test]
fn deferred_pushes_are_invisible_until_flush() {
    let (_m, mut tx, mut rx) = ring(1024);
    for i in 0..3u8 {
        tx.push_deferred(&[i; 5]).unwrap();
    }
    assert_eq!(pop(&mut rx), Err(PopError::Empty));
    tx.flush();
    for i in 0..3u8 {
        assert_eq!(pop(&mut rx).unwrap(), [i; 5]);
    }
    // A deferred batch with a padding record in the middle. The batch must start right after
    // the producer refreshed its cached head, or its second record would find the ring "full"
    // and flush the batch early (which is correct, but not the path under test).
    let (memory, mut tx, mut rx) = ring(256);
    tx.push(&[0; 120]).unwrap(); // 0..128
    pop(&mut rx).unwrap();
    tx.push(&[0; 88]).unwrap(); // 128..224
    pop(&mut rx).unwrap();
    tx.push(&[0; 120]).unwrap(); // padding 224..256, record 256..384 (refreshes the head)
    pop(&mut rx).unwrap();
    tx.push(&[0; 88]).unwrap(); // 384..480
    pop(&mut rx).unwrap();
    tx.push_deferred(&[1; 8]).unwrap(); // 480..496 (refreshes the head: room for a lap)
    tx.push_deferred(&[2; 24]).unwrap(); // padding 496..512, record 512..544
    assert_eq!(
        peek(&memory, DATA),
        record_word(512, 24),
        "stored before the flush"
    );
    assert_eq!(pop(&mut rx), Err(PopError::Empty));
    tx.flush();
    assert_eq!(pop(&mut rx).unwrap(), [1; 8]);
    assert_eq!(pop(&mut rx).unwrap(), [2; 24]);
    assert_eq!(pop(&mut rx), Err(PopError::Empty));
}

#[test]
fn a_full_ring_flushes_deferred_records_before_reporting_full() {
    let (_m, mut tx, mut rx) = ring(64);
    tx.push_deferred(&[1; 24]).unwrap();
    tx.push_deferred(&[2; 24]).unwrap();
    assert_eq!(tx.push_deferred(&[3; 24]), Err(PushError::Full));
    assert_eq!(
        pop(&mut rx).unwrap(),
        [1; 24],
        "the full path flushed the batch"
    );
}

#[test]
fn grants_publish_only_on_commit() {
    let (_m, mut tx, mut rx) = ring(1024);
    let mut grant = tx.reserve(16).unwrap();
    grant.write(0, b"abandoned");
    drop(grant);
    assert_eq!(pop(&mut rx), Err(PopError::Empty));
    let mut grant = tx.reserve(16).unwrap();
    assert_eq!(grant.len(), 16);
    grant.write(0, b"in place");
    grant.write(8, b"!");
    grant.commit_partial(9);
    let mut grant = tx.reserve(4).unwrap();
    let ptr = grant.as_mut_ptr();
    // SAFETY: the grant is valid for writes of 4 bytes; nothing else references them.
    unsafe { core::ptr::copy_nonoverlapping(b"raw!".as_ptr(), ptr, 4) };
    grant.commit();
    assert_eq!(pop(&mut rx).unwrap(), b"in place!");
    assert_eq!(pop(&mut rx).unwrap(), b"raw!");
}

#[test]
#[should_panic(expected = "overflows a grant")]
fn writing_past_a_grant_panics_instead_of_overflowing() {
    let (_m, mut tx, _rx) = ring(1024);
    let mut grant = tx.reserve(4).unwrap();
    grant.write(2, b"abc");
}

#[test]
fn read_grants_release_only_when_asked() {
    let (_m, mut tx, mut rx) = ring(1024);
    tx.push(b"first").unwrap();
    tx.push(b"second").unwrap();
    assert_eq!(rx.peek().unwrap().to_vec(), b"first"); // not released
    let grant = rx.peek().unwrap();
    let mut buf = [0u8; 3];
    assert_eq!(grant.copy_to(&mut buf), 3);
    assert_eq!(&buf, b"fir");
    // SAFETY: this test's producer is not writing.
    assert_eq!(unsafe { grant.as_slice() }, b"first");
    grant.release();
    assert_eq!(rx.peek().unwrap().to_vec(), b"second");
}

#[test]
fn consumer_drains_then_sees_closed_when_the_producer_drops() {
    let (_m, mut tx, mut rx) = ring(1024);
    tx.push(b"last words").unwrap();
    tx.push_deferred(b"flushed on drop").unwrap();
    drop(tx);
    assert_eq!(pop(&mut rx).unwrap(), b"last words");
    assert_eq!(pop(&mut rx).unwrap(), b"flushed on drop");
    assert_eq!(pop(&mut rx), Err(PopError::Closed));
    assert!(rx.is_disconnected());
    let mut out = Vec::new();
    assert_eq!(
        rx.pop_timeout(&mut out, Duration::from_secs(5)),
        Err(PopError::Closed)
    );
}

#[test]
fn producer_sees_closed_when_the_consumer_drops() {
    let (_m, mut tx, rx) = ring(1024);
    tx.push(b"unread").unwrap();
    drop(rx);
    assert_eq!(tx.push(b"more"), Err(PushError::Closed));
    assert_eq!(
        tx.push_timeout(b"more", Duration::from_secs(5)),
        Err(PushError::Closed)
    );
    assert!(tx.is_disconnected());
}

#[test]
fn a_blocked_consumer_is_woken_by_close() {
    let (_m, tx, mut rx) = ring(1024);
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        drop(tx);
    });
    let mut out = Vec::new();
    assert_eq!(rx.pop_blocking(&mut out), Err(PopError::Closed));
    closer.join().unwrap();
}

#[test]
fn timeouts_expire() {
    let (_m, mut tx, mut rx) = ring(64);
    let mut out = Vec::new();
    let start = std::time::Instant::now();
    assert_eq!(
        rx.pop_timeout(&mut out, Duration::from_millis(30)),
        Err(PopError::Timeout)
    );
    assert!(start.elapsed() >= Duration::from_millis(30));
    tx.push(&[0; 24]).unwrap();
    tx.push(&[0; 24]).unwrap();
    assert_eq!(
        tx.push_timeout(&[0; 24], Duration::from_millis(30)),
        Err(PushError::Timeout)
    );
}

#[test]
fn each_side_is_held_by_one_live_endpoint_and_can_be_attached_again() {
    let memory = RingMemory::heap(&RingConfig::spsc(1024)).unwrap();
    let opts = AttachOptions::new();
    let tx = spsc::Producer::attach(&memory, &opts).unwrap();
    assert!(matches!(
        spsc::Producer::attach(&memory, &opts),
        Err(AttachError::Busy { pid, .. }) if pid == std::process::id()
    ));
    drop(tx);
    let tx = spsc::Producer::attach(&memory, &opts).unwrap();
    drop(tx);
    assert!(matches!(
        ringway_ring::mpmc::Producer::attach(&memory, &opts),
        Err(AttachError::WrongKind { found: 1, .. })
    ));
}

#[test]
fn a_dead_producer_is_detected_by_a_waiting_consumer() {
    let memory = RingMemory::heap(&RingConfig::spsc(1024)).unwrap();
    let dead = AttachOptions::new().identity(common::dead_identity(1));
    let opts = AttachOptions::new()
        .liveness_probe(common::probe)
        .liveness_interval(Duration::from_millis(5));
    let mut tx = spsc::Producer::attach(&memory, &dead).unwrap();
    let mut rx = spsc::Consumer::attach(&memory, &opts).unwrap();
    tx.push(b"committed before death").unwrap();
    std::mem::forget(tx); // "killed": never closes its entry
    let mut out = Vec::new();
    rx.pop_timeout(&mut out, Duration::from_secs(5)).unwrap();
    assert_eq!(out, b"committed before death");
    assert_eq!(
        rx.pop_timeout(&mut out, Duration::from_secs(5)),
        Err(PopError::Closed)
    );
}

#[test]
fn stale_payload_bytes_never_pass_for_a_record() {
    // Payload words that are valid headers for the positions they will occupy one lap later.
    let (_m, mut tx, mut rx) = ring(64);
    let mut forged = Vec::new();
    for pos in [72u64, 80, 88] {
        forged.extend_from_slice(&record_word(pos, 0).to_le_bytes());
    }
    tx.push(&forged).unwrap(); // record at 0, payload at 8..32
    tx.push(&[0; 24]).unwrap(); // record at 32
    pop(&mut rx).unwrap();
    pop(&mut rx).unwrap();
    tx.push(b"").unwrap(); // record at 64 (offset 0); the next header would be at 72
    assert_eq!(pop(&mut rx).unwrap(), b"");
    assert_eq!(
        pop(&mut rx),
        Err(PopError::Empty),
        "a stale payload word was read as a record"
    );
}

#[test]
fn a_hostile_record_length_is_corruption_and_poisons_the_consumer() {
    let (memory, mut tx, mut rx) = ring(64);
    tx.push(b"ok").unwrap();
    assert_eq!(pop(&mut rx).unwrap(), b"ok");
    // The next record is at position 16: claim 25 bytes (over max_message 24).
    poke(&memory, DATA + 16, record_word(16, 25));
    assert!(matches!(pop(&mut rx), Err(PopError::Corrupted(_))));
    assert!(
        matches!(pop(&mut rx), Err(PopError::Corrupted(_))),
        "poisoned"
    );
}

#[test]
fn a_whole_lines_record_must_end_its_line_inside_the_lap() {
    use ringway_ring::layout::{Decoded, decode};
    // In a 32-byte ring no line ends inside the lap: the record's own bounds pass, the rounding
    // to its line does not.
    assert!(matches!(
        decode(lines_record_word(32, 8), 32, 32, 8),
        Decoded::Corrupt(..)
    ));
    assert_eq!(
        decode(lines_record_word(64, 16), 64, 128, 56),
        Decoded::Record {
            gap: 8,
            len: 16,
            next: 128
        }
    );
}

#[test]
fn hostile_headers_are_rejected_by_kind() {
    let cases: Vec<(&str, u64, u64)> = vec![
        // (what, position of the header, word)
        ("length past the end of the lap", 48, record_word(48, 16)),
        ("padding at a lap start", 0, padding_word(0, 56)),
        ("padding with the wrong length", 16, padding_word(16, 8)),
        ("length over max_message", 0, record_word(0, 1 << 29)),
        ("aligned padding", 16, padding_word(16, 40) | REC_ALIGNED),
        ("whole-lines padding", 16, padding_word(16, 40) | REC_LINES),
        (
            "aligned record past the end of the lap",
            16,
            aligned_record_word(16, 8),
        ),
    ];
    for (what, pos, word) in cases {
        let (memory, mut tx, mut rx) = ring(64);
        // Walk the consumer to `pos` with honest records first.
        let mut at = 0;
        while at < pos {
            tx.push(&[0; 8]).unwrap();
            pop(&mut rx).unwrap();
            at += 16;
        }
        poke(&memory, DATA + (pos % 64) as usize, word);
        assert!(
            matches!(pop(&mut rx), Err(PopError::Corrupted(_))),
            "{what}: not reported"
        );
    }
}

#[test]
fn a_wrong_tag_or_missing_valid_bit_reads_as_empty() {
    let (memory, _tx, mut rx) = ring(64);
    poke(&memory, DATA, record_word(64, 8)); // a header for the next lap, not this one
    assert_eq!(pop(&mut rx), Err(PopError::Empty));
    poke(&memory, DATA, record_word(0, 8) & !(1 << 31));
    assert_eq!(pop(&mut rx), Err(PopError::Empty));
}

#[test]
fn a_hostile_consumer_head_is_corruption_for_the_producer() {
    let head_offset = 256;
    for bad in [999_999u64, 3, 8] {
        let (memory, mut tx, _rx) = ring(64);
        tx.push(&[0; 24]).unwrap();
        tx.push(&[0; 24]).unwrap();
        if bad == 8 {
            // Move the head back after a valid advance: 32 then 8.
            poke(&memory, head_offset, 32);
            tx.push(&[0; 24]).unwrap();
        }
        poke(&memory, head_offset, bad);
        let result = tx.push(&[0; 24]);
        assert!(
            matches!(result, Err(PushError::Corrupted(_))),
            "head {bad}: {result:?}"
        );
    }
}

#[test]
fn threads_stream_random_messages_in_order() {
    let (_m, mut tx, mut rx) = ring(4096);
    // Under Miri a thousand messages (about 30 laps of the ring) take as long as the native
    // test's 200 000.
    const N: u64 = if cfg!(miri) { 1_000 } else { 200_000 };
    let producer = std::thread::spawn(move || {
        let mut rng = Rng(7);
        for seq in 0..N {
            let len = 8 + rng.below(200) as usize;
            if seq % 7 == 0 {
                let mut grant = tx.reserve_timeout(len, Duration::from_secs(20)).unwrap();
                grant.write(0, &message(seq, len));
                grant.commit();
            } else {
                tx.push_timeout(&message(seq, len), Duration::from_secs(20))
                    .unwrap();
            }
        }
    });
    let mut rng = Rng(7);
    let mut out = Vec::new();
    for seq in 0..N {
        let len = 8 + rng.below(200) as usize;
        rx.pop_timeout(&mut out, Duration::from_secs(20)).unwrap();
        assert_eq!(out.len(), len);
        assert_eq!(out, message(seq, len), "message {seq}");
    }
    producer.join().unwrap();
    assert_eq!(pop(&mut rx), Err(PopError::Closed));
}

/// A consumer waiting for the next record must not read the bytes the producer is about to
/// write there: not even with an atomic load whose value it throws away, because the producer
/// writes payloads with a plain copy, and a plain write racing any read is a data race (UB in
/// the Rust memory model, whatever the hardware does). Natively this test passes whatever the
/// consumer does; under Miri (the `miri` step of `.ci/run`) such a read is reported as the
/// race it is. Each round the producer waits until the consumer has announced its sleep (so it
/// has polled the empty ring), then writes a message that spills past the record's first
/// cache line.
#[test]
fn a_waiting_consumer_never_reads_the_payload_being_written() {
    const ROUNDS: u64 = 3;
    let memory = RingMemory::heap(&RingConfig::spsc(1024)).unwrap();
    // Liveness checks (a `/proc` read, about a second under Miri) would keep the consumer
    // from ever reaching its sleep; nobody dies here.
    let opts = AttachOptions::new()
        .wait_strategy(WaitStrategy::Park)
        .liveness_interval(Duration::from_secs(60));
    let mut tx = spsc::Producer::attach(&memory, &opts).unwrap();
    let mut rx = spsc::Consumer::attach(&memory, &opts).unwrap();
    let (popped, next) = std::sync::mpsc::channel();
    let producer = std::thread::spawn(move || {
        for seq in 0..ROUNDS {
            wait_for_a_waiting_consumer(&memory);
            tx.push(&message(seq, 200)).unwrap();
            // The consumer's sleep for this message is over before it acknowledges it, so the
            // next round waits for a fresh sleep.
            next.recv().unwrap();
        }
    });
    let mut out = Vec::new();
    for seq in 0..ROUNDS {
        rx.pop_timeout(&mut out, Duration::from_secs(20)).unwrap();
        assert_eq!(out, message(seq, 200));
        popped.send(()).unwrap();
    }
    producer.join().unwrap();
}

#[test]
fn a_rewritten_header_is_reported_by_waiting_calls() {
    // A peer that overwrites the header (or truncates the mapping, which the region turns
    // into zero pages) leaves a ring nobody can trust: blocked calls notice within a liveness
    // interval and report corruption instead of waiting on.
    let memory = RingMemory::heap(&RingConfig::spsc(64)).unwrap();
    let opts = AttachOptions::new().liveness_interval(Duration::from_millis(5));
    let mut tx = spsc::Producer::attach(&memory, &opts).unwrap();
    let mut rx = spsc::Consumer::attach(&memory, &opts).unwrap();
    tx.push(&[0; 24]).unwrap();
    tx.push(&[0; 24]).unwrap();
    poke(&memory, 0, 0); // the magic
    let mut out = Vec::new();
    rx.pop(&mut out).unwrap();
    rx.pop(&mut out).unwrap();
    assert!(matches!(
        rx.pop_timeout(&mut out, Duration::from_secs(10)),
        Err(PopError::Corrupted(_))
    ));
    // The producer, blocked on a full ring whose header is then rewritten.
    let (memory, mut tx, _rx) = ring(64);
    tx.push(&[0; 24]).unwrap();
    tx.push(&[0; 24]).unwrap();
    poke(&memory, 0, 0);
    assert!(matches!(
        tx.push_timeout(&[0; 24], Duration::from_secs(10)),
        Err(PushError::Corrupted(_))
    ));
}

#[test]
fn a_small_record_never_straddles_two_cache_lines() {
    let (memory, mut tx, mut rx) = ring(1024);
    // A record whose size divides a line (16, 32, 64 bytes) packs with others.
    tx.push(&[1; 8]).unwrap(); // 16 at 0
    tx.push(&[2; 24]).unwrap(); // 32 at 16; tail 48
    assert_eq!(peek(&memory, DATA + 16), record_word(16, 24));
    // 32 more would straddle the line at 64: a padding record, then the record at 64.
    tx.push(&[3; 24]).unwrap();
    assert_eq!(peek(&memory, DATA + 48), padding_word(48, 8));
    assert_eq!(peek(&memory, DATA + 64), record_word(64, 24));
    // Any other small record (24, 40, 48, 56 bytes) starts on a line and takes it whole
    // (LINES): the next record starts on the next line, with no padding before it.
    tx.push(&[4; 40]).unwrap(); // 48 at 96 would straddle: padding 96..128, record at 128
    assert_eq!(peek(&memory, DATA + 96), padding_word(96, 24));
    assert_eq!(peek(&memory, DATA + 128), lines_record_word(128, 40));
    tx.push(&[5; 16]).unwrap(); // 24 at 192, its line whole
    assert_eq!(peek(&memory, DATA + 192), lines_record_word(192, 16));
    // 56 bytes of payload fill a line exactly: a plain record at 256.
    tx.push(&[6; 56]).unwrap();
    assert_eq!(peek(&memory, DATA + 256), record_word(256, 56));
    // A larger payload starts on the next line, after its header: 64 bytes at 384, their
    // header at 336.
    tx.push(&[7; 8]).unwrap(); // 16 at 320
    tx.push(&[8; 64]).unwrap();
    assert_eq!(peek(&memory, DATA + 336), aligned_record_word(336, 64));
    for want in [
        [1u8; 8].as_slice(),
        &[2; 24],
        &[3; 24],
        &[4; 40],
        &[5; 16],
        &[6; 56],
        &[7; 8],
        &[8; 64],
    ] {
        assert_eq!(pop(&mut rx).unwrap(), want);
    }
    assert_eq!(pop(&mut rx), Err(PopError::Empty));
}

#[test]
fn stale_payload_at_a_line_start_is_never_read_as_a_record() {
    // The producer skips the zero of rule 1 at a line start that still holds its own header
    // of the lap before (a stream of one record size pays no cross-core store for it). Lap 0
    // leaves such a header at offset 128; lap 1 covers offset 128 with payload that forges
    // the record the consumer would accept there in lap 2; lap 2 ends a record at offset
    // 128. The producer must have forgotten lap 0's header and zeroed the word.
    let (memory, mut tx, mut rx) = ring(1024);
    let line = [5u8; 56]; // a 64-byte record, one per line
    for _ in 0..16 {
        tx.push(&line).unwrap();
        assert_eq!(pop(&mut rx).unwrap(), line);
    }
    assert_eq!(peek(&memory, DATA + 128), record_word(128, 56));
    // Lap 1: header at 1024 (offset 0), payload at offsets 64..264; its bytes 64..72 land
    // on offset 128 and read as an 8-byte record at 2176 (offset 128 of lap 2).
    let mut forged = vec![0u8; 200];
    forged[64..72].copy_from_slice(&record_word(2048 + 128, 8).to_le_bytes());
    tx.push(&forged).unwrap();
    assert_eq!(pop(&mut rx).unwrap(), forged);
    assert_eq!(peek(&memory, DATA + 128), record_word(2176, 8));
    // Records at offsets 320 .. 1024 (after a padding from 264), then 0 and 64 of lap 2:
    // the last one ends at 2176.
    for _ in 0..13 {
        tx.push(&line).unwrap();
        assert_eq!(pop(&mut rx).unwrap(), line);
    }
    assert_eq!(
        pop(&mut rx),
        Err(PopError::Empty),
        "the forged record was read"
    );
    assert_eq!(peek(&memory, DATA + 128), 0, "rule 1's zero");
    // And the ring goes on.
    tx.push(&[9; 8]).unwrap();
    assert_eq!(pop(&mut rx).unwrap(), [9; 8]);
}

#[test]
fn payloads_forging_the_next_laps_headers_are_never_read_as_records() {
    // Every payload word holds the header the consumer would accept at that position one lap
    // later. Whenever the producer ends a publication there a lap later, rule 1 must have
    // zeroed the word, or left a header it stored there itself (the line marks): otherwise the
    // consumer reads a forged 8-byte record. Sizes mix packed, whole-line and aligned records,
    // and the number in flight varies, so line starts change hands between payload and
    // headers from lap to lap.
    let cap = 1024u64;
    let (memory, mut tx, mut rx) = ring(cap);
    let data = memory.as_ptr().addr() + DATA;
    let mut rng = Rng(0x5eed_f00d);
    let mut sent = std::collections::VecDeque::new();
    let rounds = if cfg!(miri) { 100 } else { 4000 };
    for _ in 0..rounds {
        for _ in 0..=rng.next() % 3 {
            let len = (rng.next() % 201) as usize;
            let tail = peek(&memory, 128); // the published tail: nothing is deferred
            let mut grant = tx.reserve(len).unwrap();
            let offset = (grant.as_mut_ptr().addr() - data) as u64;
            // The payload's position: the first at or after `tail` with that offset.
            let pos = tail + (offset + cap - tail % cap) % cap;
            let mut msg = vec![0u8; len];
            for (i, word) in msg.chunks_mut(8).enumerate() {
                let forged = record_word(pos + 8 * i as u64 + cap, 8).to_le_bytes();
                word.copy_from_slice(&forged[..word.len()]);
            }
            grant.write(0, &msg);
            grant.commit();
            sent.push_back(msg);
        }
        while let Some(want) = sent.pop_front() {
            assert_eq!(pop(&mut rx).unwrap(), want);
        }
        assert_eq!(pop(&mut rx), Err(PopError::Empty));
    }
}

#[test]
fn a_stream_of_one_size_leaves_last_laps_headers_at_line_starts() {
    // In a stream of 56-byte messages (a record per line), the word after the last record
    // holds the header of the lap before: rule 1 needs no zero there.
    let (memory, mut tx, mut rx) = ring(1024);
    for i in 0..20u64 {
        tx.push(&[i as u8; 56]).unwrap();
        assert_eq!(pop(&mut rx).unwrap(), [i as u8; 56]);
    }
    // 20 records: the next goes at 1280, offset 256, where lap 0's record 4 is.
    assert_eq!(peek(&memory, DATA + 256), record_word(256, 56));
    assert_eq!(pop(&mut rx), Err(PopError::Empty));
}

#[test]
fn a_large_payload_starts_on_a_line_boundary() {
    let (memory, mut tx, mut rx) = ring(16 * 1024);
    let big = message(3, 2000);
    tx.push(&[7; 8]).unwrap(); // 16 bytes at 0
    tx.push(&big).unwrap(); // header at 16, payload at 64
    assert_eq!(peek(&memory, DATA + 16), aligned_record_word(16, 2000));
    // A payload that fits one line with its header follows its header; one byte more, and
    // it starts on the next line.
    tx.push(&[8; 24]).unwrap(); // 32 bytes at 64 + 2000 = 2064
    assert_eq!(peek(&memory, DATA + 2064), record_word(2064, 24));
    tx.push(&[6; 57]).unwrap(); // header at 2096, payload at 2112
    assert_eq!(peek(&memory, DATA + 2096), aligned_record_word(2096, 57));
    assert_eq!(pop(&mut rx).unwrap(), [7; 8]);
    let grant = rx.peek().unwrap();
    assert_eq!(grant.len(), 2000);
    assert_eq!(grant.as_ptr().addr() % 64, 0, "the payload is line aligned");
    assert_eq!(grant.to_vec(), big);
    grant.release();
    assert_eq!(pop(&mut rx).unwrap(), [8; 24]);
    let grant = rx.peek().unwrap();
    assert_eq!(grant.as_ptr().addr() % 64, 0, "57 bytes are line aligned");
    assert_eq!(grant.to_vec(), [6; 57]);
    grant.release();
    // A grant is aligned too, and so is a record at the start of a lap.
    let mut grant = tx.reserve(4096).unwrap();
    assert_eq!(grant.as_mut_ptr().addr() % 64, 0);
    grant.write(0, &[9; 4096]);
    grant.commit();
    assert_eq!(pop(&mut rx).unwrap(), [9; 4096]);
    for i in 0..20 {
        let msg = message(i, 1024 + 8 * i as usize);
        tx.push(&msg).unwrap();
        let grant = rx.peek().unwrap();
        assert_eq!(grant.as_ptr().addr() % 64, 0, "message {i}");
        assert_eq!(grant.to_vec(), msg);
        grant.release();
    }
}

#[test]
fn the_largest_message_fits_without_alignment() {
    // At 2 KiB the largest message (1016 bytes) is below the threshold; at 4 KiB the largest
    // (2040) cannot take the 64-byte gap and stay within half the ring: it goes unaligned.
    for cap in [2048u64, 4096, 8192] {
        let (_m, mut tx, mut rx) = ring(cap);
        let max = tx.max_message();
        for i in 0..10 {
            let msg = message(i, max - (i as usize % 3) * 8);
            tx.push(&msg).unwrap();
            assert_eq!(pop(&mut rx).unwrap(), msg, "{cap} {i}");
        }
    }
}

#[test]
fn a_new_producer_resumes_after_short_padding_and_aligned_records() {
    let memory = RingMemory::heap(&RingConfig::spsc(8192)).unwrap();
    let opts = AttachOptions::new();
    let mut rx = spsc::Consumer::attach(&memory, &opts).unwrap();
    let mut tx = spsc::Producer::attach(&memory, &opts).unwrap();
    tx.push(&[1; 40]).unwrap();
    tx.push(&[2; 40]).unwrap(); // after a short padding
    tx.push(&message(3, 1500)).unwrap(); // aligned
    drop(tx);
    let mut tx = spsc::Producer::attach(&memory, &opts).unwrap();
    tx.push(&[4; 16]).unwrap();
    for want in [vec![1u8; 40], vec![2; 40], message(3, 1500), vec![4; 16]] {
        assert_eq!(pop(&mut rx).unwrap(), want);
    }
    assert_eq!(pop(&mut rx), Err(PopError::Empty));
}

#[test]
fn hostile_short_padding_is_rejected() {
    // A padding record inside a lap must end exactly at the next line boundary.
    let cases: Vec<(&str, u64, u64)> = vec![
        ("short of the line", 16, padding_word(16, 8)),
        ("past the line", 16, padding_word(16, 48)),
        ("a whole line from a line start", 64, padding_word(64, 56)),
    ];
    for (what, pos, word) in cases {
        let (memory, mut tx, mut rx) = ring(1024);
        let mut at = 0;
        while at < pos {
            tx.push(&[0; 8]).unwrap();
            pop(&mut rx).unwrap();
            at += 16;
        }
        poke(&memory, DATA + pos as usize, word);
        assert!(
            matches!(pop(&mut rx), Err(PopError::Corrupted(_))),
            "{what}: not reported"
        );
    }
    // The honest one is followed.
    let (memory, mut tx, mut rx) = ring(1024);
    tx.push(&[0; 8]).unwrap();
    pop(&mut rx).unwrap();
    poke(&memory, DATA + 64, record_word(64, 8));
    poke(&memory, DATA + 16, padding_word(16, 40));
    assert_eq!(pop(&mut rx).unwrap(), [0; 8]);
}
