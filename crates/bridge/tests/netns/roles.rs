//! The producer and the consumer, run as this test binary in a namespace.
//!
//! Message `i` is 64 bytes: `i` as a little-endian `u64`, then 56 bytes each `i as u8 ^ k`
//! for their index `k`, so a message that is not exactly what the producer wrote (a torn or
//! mixed-up one, garbage) is caught, not only a wrong number.

use std::time::{Duration, Instant};

use ringway_channel::{ByteReceiver, ByteSender, ChannelOptions, RecvError};

pub(crate) const LEN: usize = 64;

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} not set"))
}

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key).map_or(default, |v| v.parse().expect(key))
}

pub(crate) fn message(i: u64) -> [u8; LEN] {
    let mut m = [0u8; LEN];
    m[..8].copy_from_slice(&i.to_le_bytes());
    for (k, b) in m[8..].iter_mut().enumerate() {
        *b = (i as u8) ^ (k as u8);
    }
    m
}

fn options() -> ChannelOptions {
    ChannelOptions::new()
        .capacity(env_u64("CAPACITY", 4096) as usize)
        .max_message(LEN)
}

/// Creates the channel `CHANNEL`, waits for the bridge to attach, sends `COUNT` messages;
/// tries each first and counts how often the channel was full. Prints `full=N`.
pub(crate) fn producer() -> i32 {
    let mut tx =
        ByteSender::create(env("CHANNEL"), &options()).expect("create the producer's channel");
    let count = env_u64("COUNT", 0);
    let mut full = 0u64;
    for i in 0..count {
        let m = message(i);
        match tx.try_send(&m) {
            Ok(()) => {}
            Err(e) if e.is_full() => {
                full += 1;
                tx.send_timeout(&m, Duration::from_secs(60)).expect("send");
            }
            Err(e) => panic!("send {i}: {e}"),
        }
    }
    // Dropping the sender keeps what it sent: the bridge drains it.
    println!("full={full}");
    0
}

/// Creates the channel `CHANNEL` and receives until it has message `COUNT - 1` or nothing
/// came for `IDLE_MS`. Checks every message's bytes. Unless `GAPS=allowed`, every number
/// must come, once, in order. `PAUSE_AT`/`PAUSE_MS`: stop receiving for a while after that
/// many messages. Prints `received=N skipped=N first_after_gap=N gaps=N`.
pub(crate) fn consumer() -> i32 {
    let mut rx =
        ByteReceiver::create(env("CHANNEL"), &options()).expect("create the consumer's channel");
    let count = env_u64("COUNT", 0);
    let gaps_allowed = std::env::var("GAPS").is_ok_and(|v| v == "allowed");
    let pause_at = env_u64("PAUSE_AT", u64::MAX);
    let pause = Duration::from_millis(env_u64("PAUSE_MS", 0));
    let idle = Duration::from_millis(env_u64("IDLE_MS", 30_000));
    let (mut received, mut skipped, mut gaps, mut first_after_gap) = (0u64, 0u64, 0u64, 0u64);
    let mut next = 0u64;
    let mut buf = Vec::new();
    let mut last_message = Instant::now();
    while next < count {
        match rx.recv_timeout(&mut buf, Duration::from_millis(100)) {
            Ok(_) => {}
            Err(RecvError::Timeout | RecvError::Disconnected) => {
                if last_message.elapsed() > idle {
                    break;
                }
                // Disconnected: the bridge died; a restarted one attaches again.
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(e) => panic!("receive after {received} messages: {e}"),
        }
        last_message = Instant::now();
        assert_eq!(
            buf.len(),
            LEN,
            "message after {next} has {} bytes",
            buf.len()
        );
        let i = u64::from_le_bytes(buf[..8].try_into().unwrap());
        assert_eq!(
            buf[..],
            message(i)[..],
            "message numbered {i} is not what was sent"
        );
        assert!(
            i >= next,
            "message {i} came after {}: duplicated or reordered",
            next.wrapping_sub(1)
        );
        if i > next {
            assert!(gaps_allowed, "messages {next}..{i} lost (reliable mode)");
            gaps += 1;
            skipped += i - next;
            first_after_gap = i;
        }
        next = i + 1;
        received += 1;
        if received == pause_at {
            std::thread::sleep(pause);
        }
    }
    println!(
        "received={received} skipped={skipped} first_after_gap={first_after_gap} gaps={gaps} next={next}"
    );
    0
}
