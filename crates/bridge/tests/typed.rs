//! Typed routes on loopback, in one process: two bridges (two Zenoh sessions) carry a
//! `#[derive(Message)]` struct from one ringway channel to another; an inbound route of
//! another type refuses the samples with an error naming both types.

use std::time::Duration;

use libtest_mimic::{Failed, Trial};
use ringway_bridge::{Bridge, BridgeConfig, BridgeError, Direction, MessageKind, Route};
use ringway_channel::{ChannelOptions, Receiver, Sender};
use ringway_testkit::{LeakScope, harness};

#[derive(Debug, Clone, Copy, PartialEq, ringway_channel::Message)]
#[repr(C)]
struct Tick {
    price: f64,
    qty: u32,
    venue: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, ringway_channel::Message)]
#[repr(C)]
struct Order {
    price: f64,
    qty: u32,
    side: u32,
}

fn port() -> u16 {
    // One port per test process and test; loopback is shared with other runs.
    30_000 + (std::process::id() % 10_000) as u16 * 2
}

fn pair(scope: &LeakScope, port: u16) -> (String, String, BridgeConfig, BridgeConfig) {
    let (a, b) = (scope.posix_name("typed-a"), scope.posix_name("typed-b"));
    let key = format!("ringway/typed/{}", a.trim_start_matches('/'));
    let mut out = BridgeConfig::default();
    out.listen.push(format!("tcp/127.0.0.1:{port}"));
    out.routes
        .push(Route::parse(Direction::Out, &format!("{a}={key}")).unwrap());
    let mut r#in = BridgeConfig::default();
    r#in.connect.push(format!("tcp/127.0.0.1:{port}"));
    r#in.routes
        .push(Route::parse(Direction::In, &format!("{key}={b},create")).unwrap());
    (a, b, out, r#in)
}

fn a_typed_channel_crosses() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let (a, b, out, r#in) = pair(&scope, port());
    let mut tx = Sender::<Tick>::create(&a, &ChannelOptions::new())?;
    let near = Bridge::start_with(&out, |_| MessageKind::of::<Tick>())?;
    let far = Bridge::start_with(&r#in, |_| MessageKind::of::<Tick>())?;
    let mut rx = Receiver::<Tick>::open(
        &b,
        &ChannelOptions::new().open_timeout(Duration::from_secs(30)),
    )?;
    for i in 0..1000u32 {
        tx.send(Tick {
            price: f64::from(i) / 4.0,
            qty: i,
            venue: 7,
        })?;
    }
    for i in 0..1000u32 {
        let tick = rx.recv_timeout(Duration::from_secs(60))?;
        assert_eq!(
            tick,
            Tick {
                price: f64::from(i) / 4.0,
                qty: i,
                venue: 7
            }
        );
    }
    drop((tx, rx));
    near.stop()?;
    far.stop()?;
    Ok(())
}

fn another_type_is_refused() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let (a, _b, out, r#in) = pair(&scope, port() + 1);
    let mut tx = Sender::<Tick>::create(&a, &ChannelOptions::new())?;
    let near = Bridge::start_with(&out, |_| MessageKind::of::<Tick>())?;
    let far = Bridge::start_with(&r#in, |_| MessageKind::of::<Order>())?;
    tx.send(Tick {
        price: 1.0,
        qty: 1,
        venue: 1,
    })?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !far.route_ended() {
        assert!(
            std::time::Instant::now() < deadline,
            "the Order route never saw the Tick"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = far.status();
    let err = far
        .stop()
        .expect_err("a Tick delivered into an Order channel");
    assert!(matches!(err, BridgeError::TypeMismatch { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("refused a sample of `Tick` (16 bytes")
            && text.contains("carries `Order` (16 bytes"),
        "{text}"
    );
    assert_eq!(status.routes[0].messages, 0, "{status}");
    drop(tx);
    near.stop()?;
    Ok(())
}

fn main() {
    harness::main(
        vec![
            Trial::test("a_typed_channel_crosses", a_typed_channel_crosses),
            Trial::test("another_type_is_refused", another_type_is_refused),
        ],
        &[],
    );
}
