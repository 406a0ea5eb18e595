//! Serialized messages (feature `serde`): the serialized type is recorded in the header and
//! checked at open and on every call, and the calls come in blocking, `try_` and `_timeout`
//! forms. Before, a byte channel carried postcard bytes of any type, and a receiver that
//! asked for another type decoded garbage (or failed only by luck).

use std::time::Duration;

use libtest_mimic::{Failed, Trial};
use ringway_channel::{
    ByteChannel, ByteReceiver, ByteSender, ChannelOptions, Error, RecvError, SendError, SerdeError,
};
use ringway_testkit::{LeakScope, harness};
use serde::{Deserialize, Serialize};

mod app {
    /// The type both sides agree on.
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    pub(crate) struct Order {
        pub(crate) id: u64,
        pub(crate) qty: i32,
    }
}

mod other_program {
    /// The same declaration in another module path: the type is recorded without paths, so
    /// it agrees with `app::Order`.
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    pub(crate) struct Order {
        pub(crate) id: u64,
        pub(crate) qty: i32,
    }
}

/// Another type whose postcard encoding `Order`'s bytes decode as without an error: the
/// garbage the type check prevents.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Quote {
    bid: u64,
    ask: i32,
}

fn opts() -> ChannelOptions {
    ChannelOptions::new()
        .capacity(256)
        .open_timeout(Duration::from_secs(5))
}

/// Opening for another serialized type, or as plain bytes, is refused at open like a typed
/// channel's mismatch, naming both types.
fn open_checks_the_serialized_type() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("serde-open");
    let _tx = ByteSender::create(&name, &opts().serialized::<app::Order>())?;

    let err = ByteReceiver::open(&name, &opts().serialized::<Quote>()).unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains(
            "carries serialized `Order` values, but this endpoint is for serialized `Quote` values"
        ),
        "{err}"
    );
    let err = ByteReceiver::open(&name, &opts()).unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("byte messages"), "{err}");

    // The same name from another module path agrees; so does an explicit type_name.
    let _rx = ByteReceiver::open(&name, &opts().serialized::<other_program::Order>())?;
    let name = scope.posix_name("serde-named");
    let _tx = ByteSender::create(
        &name,
        &opts().serialized::<app::Order>().type_name("v1.Order"),
    )?;
    let err = ByteReceiver::open(&name, &opts().serialized::<app::Order>()).unwrap_err();
    assert!(matches!(err, Error::TypeMismatch { .. }), "{err}");
    let _rx = ByteReceiver::open(&name, &opts().serialized::<Quote>().type_name("v1.Order"))?;
    Ok(())
}

/// Each call checks its type against the channel's before touching the channel: nothing is
/// sent, nothing consumed. Without the check, `Order`'s bytes decode as a `Quote`.
fn calls_check_their_type() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("serde-calls");
    let o = opts().serialized::<app::Order>();
    let mut tx = ByteSender::create(&name, &o)?;
    let mut rx = ByteReceiver::open(&name, &o)?;

    let order = app::Order { id: 7, qty: -3 };
    // What a wrong type used to give: the raw bytes decode as a Quote, silently.
    let bytes = postcard::to_allocvec(&order)?;
    assert_eq!(
        postcard::from_bytes::<Quote>(&bytes)?,
        Quote { bid: 7, ask: -3 }
    );

    let err = tx.send_serialized(&Quote { bid: 1, ask: 2 }).unwrap_err();
    assert!(
        matches!(err, SerdeError::WrongType { expected: Some(_), found, .. } if found.ends_with("Quote")),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("carries serialized `serialized::app::Order` values"),
        "{err}"
    );
    assert_eq!(
        rx.try_recv(&mut Vec::new()),
        Err(RecvError::Empty),
        "nothing was sent"
    );

    tx.send_serialized(&order)?;
    let err = rx.try_recv_deserialized::<Quote>().unwrap_err();
    assert!(matches!(err, SerdeError::WrongType { .. }), "{err}");
    assert_eq!(
        rx.try_recv_deserialized::<app::Order>()?,
        order,
        "not consumed by the refusal"
    );

    // A plain byte channel has no type to check against.
    let name = scope.posix_name("serde-plain");
    let mut plain = ByteSender::create(&name, &opts())?;
    let err = plain.send_serialized(&order).unwrap_err();
    assert!(
        matches!(err, SerdeError::WrongType { expected: None, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("plain byte channel"), "{err}");
    Ok(())
}

/// `try_` never waits, `_timeout` waits up to its deadline, both for sending and receiving.
fn try_and_timeout_variants() -> Result<(), Failed> {
    let o = opts()
        .capacity(4)
        .max_message(64)
        .serialized::<app::Order>();
    let channel = ByteChannel::anonymous(&o)?;
    let mut tx = channel.sender()?;
    let mut rx = channel.receiver()?;

    match rx.try_recv_deserialized::<app::Order>() {
        Err(SerdeError::Recv(RecvError::Empty)) => {}
        other => return Err(format!("try on an empty channel: {other:?}").into()),
    }
    match rx.recv_deserialized_timeout::<app::Order>(Duration::from_millis(20)) {
        Err(SerdeError::Recv(RecvError::Timeout)) => {}
        other => return Err(format!("timeout on an empty channel: {other:?}").into()),
    }

    let mut sent = 0;
    loop {
        match tx.try_send_serialized(&app::Order { id: sent, qty: 1 }) {
            Ok(()) => sent += 1,
            Err(SerdeError::Send(SendError::Full { .. })) => break,
            Err(e) => return Err(format!("try_send_serialized: {e}").into()),
        }
        assert!(sent < 1000, "a ring of four 64-byte messages fills");
    }
    assert!(sent > 0);
    match tx.send_serialized_timeout(&app::Order { id: sent, qty: 1 }, Duration::from_millis(20)) {
        Err(SerdeError::Send(SendError::Timeout { .. })) => {}
        other => return Err(format!("timeout on a full channel: {other:?}").into()),
    }
    for id in 0..sent {
        let got = rx.recv_deserialized_timeout::<app::Order>(Duration::from_secs(5))?;
        assert_eq!(got, app::Order { id, qty: 1 });
    }
    tx.send_serialized_timeout(&app::Order { id: 99, qty: 2 }, Duration::from_secs(5))?;
    assert_eq!(rx.recv_deserialized::<app::Order>()?.id, 99);
    Ok(())
}

fn main() {
    harness::main(
        vec![
            Trial::test(
                "open_checks_the_serialized_type",
                open_checks_the_serialized_type,
            ),
            Trial::test("calls_check_their_type", calls_check_their_type),
            Trial::test("try_and_timeout_variants", try_and_timeout_variants),
        ],
        &[],
    );
}
