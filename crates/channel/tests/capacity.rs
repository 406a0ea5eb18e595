//! Sizes in one unit: `capacity` counts messages in every flavour and kind, the default is
//! bounded in bytes, meaningless values and rings that do not fit are refused before anything
//! is created, and every endpoint reports what was made.

use libtest_mimic::{Failed, Trial};
use ringway_channel::{
    Address, ByteReceiver, ByteSender, ChannelOptions, Error, Flavour, Receiver, SendError, Sender,
};
use ringway_testkit::{LeakScope, harness};

const FLAVOURS: [Flavour; 2] = [Flavour::Spsc, Flavour::Mpmc];

/// A 1 MiB message type (bytemuck has `Pod` arrays up to 4096 elements: nest them).
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Frame {
    pixels: [[u64; 4096]; 32],
}

/// Issue: a 1 MiB struct with the default options made a 2 GiB segment (1024 messages).
fn a_large_type_gets_a_default_bounded_in_bytes() -> Result<(), Failed> {
    let scope = LeakScope::new();
    for flavour in FLAVOURS {
        let name = scope.posix_name("frame");
        let opts = ChannelOptions::new().flavour(flavour);
        let tx = Sender::<Frame>::create(&name, &opts)?;
        assert!(
            tx.capacity_bytes() <= 5 << 20,
            "{flavour}: a {} byte segment",
            tx.capacity_bytes()
        );
        assert!(tx.capacity() >= 1, "{flavour}");
        assert_eq!(tx.max_message(), 1 << 20, "{flavour}");
        let rx = Receiver::<Frame>::open(&name, &opts)?;
        assert_eq!(
            (rx.capacity(), rx.capacity_bytes(), rx.max_message()),
            (tx.capacity(), tx.capacity_bytes(), tx.max_message()),
            "{flavour}: both sides report the same"
        );
        // Small types keep 1024 messages.
        let small = Sender::<u64>::create(scope.posix_name("small"), &opts)?;
        assert_eq!(small.capacity(), 1024, "{flavour}");
    }
    Ok(())
}

/// Issue: switching a byte channel from SPSC to MPMC turned `capacity(1 << 20)` from bytes
/// into slots. Now both count messages, typed and byte channels alike.
fn spsc_and_mpmc_count_the_same_thing() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let mut typed = Vec::new();
    let mut bytes = Vec::new();
    for flavour in FLAVOURS {
        let opts = ChannelOptions::new().flavour(flavour).capacity(1000);
        let tx = Sender::<[u64; 3]>::create(scope.posix_name("typed"), &opts)?;
        typed.push(tx.capacity());
        let opts = opts.max_message(200);
        let tx = ByteSender::create(scope.posix_name("bytes"), &opts)?;
        assert_eq!(tx.max_message(), 200, "{flavour}");
        assert!(
            (1000..2048).contains(&tx.capacity()),
            "{flavour}: {} messages of 200 bytes",
            tx.capacity()
        );
        // A record takes at most 264 bytes (an SPSC payload starts on a line; an MPMC slot
        // is 256), and the ring rounds up to a power of two.
        assert!(
            tx.capacity_bytes() < 1000 * 264 * 2,
            "{flavour}: {} bytes for 1000 messages of 200 bytes",
            tx.capacity_bytes()
        );
        bytes.push(tx);
    }
    assert_eq!(
        typed,
        [1024, 1024],
        "[SPSC, MPMC] capacity(1000) of 24-byte messages"
    );
    // Each holds at least `capacity()` messages of `max_message()` bytes, without a receiver
    // taking any, and is then full: MPMC exactly; SPSC within a few more, because the count
    // assumes every record takes the most a 200-byte one can (264 bytes, the payload starting
    // on a line after its header), while one after another they take 256.
    for tx in &mut bytes {
        let capacity = tx.capacity();
        let message = vec![7u8; tx.max_message()];
        for i in 0..capacity {
            tx.try_send(&message)
                .map_err(|e| format!("{}: message {i} of {capacity}: {e}", tx.flavour()))?;
        }
        let mut extra = 0;
        while tx.try_send(&message).is_ok() {
            extra += 1;
        }
        let slack = match tx.flavour() {
            Flavour::Spsc => capacity / 16,
            Flavour::Mpmc => 0,
        };
        assert!(extra <= slack, "{}: {extra} more", tx.flavour());
        assert!(tx.is_full(), "{}", tx.flavour());
        assert_eq!(tx.len(), capacity, "{}", tx.flavour());
    }
    Ok(())
}

/// `capacity(0)` and `max_message(0)` were silently changed; now they are refused, and so is
/// `max_message` on a typed channel that disagrees with its type.
fn meaningless_values_are_refused() -> Result<(), Failed> {
    let scope = LeakScope::new();
    for flavour in FLAVOURS {
        let name = scope.posix_name("zero");
        let opts = ChannelOptions::new().flavour(flavour);
        let err = Sender::<u64>::create(&name, &opts.clone().capacity(0)).unwrap_err();
        assert!(matches!(err, Error::InvalidOptions { .. }), "{err:#?}");
        assert_eq!(
            err.to_string(),
            format!(
                "create channel POSIX shm \"{name}\": ChannelOptions::capacity: 0 messages: a \
                 channel holds at least one message"
            )
        );
        let err = ByteSender::create(&name, &opts.clone().max_message(0)).unwrap_err();
        assert!(
            err.to_string().contains("max_message: 0 bytes"),
            "{flavour}: {err}"
        );
        let err = Sender::<u64>::create(&name, &opts.clone().max_message(4096)).unwrap_err();
        assert!(
            err.to_string().contains("size_of::<T>() = 8 bytes"),
            "{flavour}: {err}"
        );
        // One message is a capacity; MPMC rounds it up to its smallest ring, and says so.
        let one = Sender::<u64>::create(&name, &opts.clone().capacity(1))?;
        let expected = if flavour == Flavour::Mpmc { 2 } else { 1 };
        assert!(one.capacity() >= expected, "{flavour}: {}", one.capacity());
    }
    Ok(())
}

/// A ring larger than what /dev/shm has free is refused before anything is created, with the
/// bytes asked for and the bytes available, and what to change.
fn a_ring_larger_than_dev_shm_is_refused() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("huge");
    let Some(room) = Address::from(name.as_str()).backing().room() else {
        return Err("no /dev/shm to measure".into());
    };
    let slot = 1usize << 29;
    let slots = usize::try_from(room.available)? / slot + 2;
    let opts = ChannelOptions::new()
        .flavour(Flavour::Mpmc)
        .max_message(slot)
        .capacity(slots);
    let err = ByteSender::create(&name, &opts).unwrap_err();
    let Error::NoSpace {
        requested,
        available,
        ..
    } = &err
    else {
        return Err(format!("not NoSpace: {err:#?}").into());
    };
    assert!(requested > available, "{err}");
    let text = err.to_string();
    for part in [
        &format!("create channel POSIX shm \"{name}\": its ring needs {requested} bytes"),
        "but /dev/shm (a tmpfs of ",
        &format!("has {available} bytes"),
        "ChannelOptions::capacity",
    ] {
        assert!(text.contains(part), "{part:?} in {text}");
    }
    assert!(scope.leftovers().is_empty(), "nothing was created");
    Ok(())
}

/// The getters on every endpoint: what was made, and what is in it now.
fn endpoints_report_size_and_fill() -> Result<(), Failed> {
    let scope = LeakScope::new();
    for flavour in FLAVOURS {
        let opts = ChannelOptions::new().flavour(flavour).capacity(8);
        let name = scope.posix_name("fill");
        let mut tx = Sender::<u64>::create(&name, &opts)?;
        let mut rx = Receiver::<u64>::open(&name, &opts)?;
        assert_eq!((tx.capacity(), rx.capacity()), (8, 8), "{flavour}");
        assert!(tx.is_empty() && rx.is_empty() && !tx.is_full(), "{flavour}");
        for i in 0..3 {
            tx.send(i)?;
        }
        assert_eq!((tx.len(), rx.len()), (3, 3), "{flavour}");
        while tx.try_send(9).is_ok() {}
        assert!(tx.is_full() && rx.is_full(), "{flavour}");
        assert_eq!(rx.len(), 8, "{flavour}");
        for _ in 0..8 {
            rx.recv()?;
        }
        assert!(rx.is_empty(), "{flavour}: the receiver knows what it took");
        assert_eq!(rx.len(), 0, "{flavour}");

        let name = scope.posix_name("bytes");
        let opts = opts.max_message(100);
        let mut tx = ByteSender::create(&name, &opts)?;
        let mut rx = ByteReceiver::open(&name, &opts)?;
        assert_eq!(
            (tx.max_message(), rx.max_message()),
            (100, 100),
            "{flavour}"
        );
        assert_eq!(tx.capacity(), rx.capacity(), "{flavour}");
        tx.send(b"short")?;
        assert_eq!((tx.len(), rx.len()), (1, 1), "{flavour}");
        let err = tx.send(&[0; 101]).unwrap_err();
        assert!(
            matches!(
                err,
                SendError::TooLarge {
                    len: 101,
                    max: 100,
                    ..
                }
            ),
            "{flavour}: the channel's limit, not the ring's: {err}"
        );
        let mut buf = Vec::new();
        rx.recv(&mut buf)?;
        assert!(rx.is_empty(), "{flavour}");
    }
    Ok(())
}

fn main() {
    let tests = vec![
        Trial::test(
            "a_large_type_gets_a_default_bounded_in_bytes",
            a_large_type_gets_a_default_bounded_in_bytes,
        ),
        Trial::test(
            "spsc_and_mpmc_count_the_same_thing",
            spsc_and_mpmc_count_the_same_thing,
        ),
        Trial::test(
            "meaningless_values_are_refused",
            meaningless_values_are_refused,
        ),
        Trial::test(
            "a_ring_larger_than_dev_shm_is_refused",
            a_ring_larger_than_dev_shm_is_refused,
        ),
        Trial::test(
            "endpoints_report_size_and_fill",
            endpoints_report_size_and_fill,
        ),
    ];
    harness::main(tests, &[]);
}
