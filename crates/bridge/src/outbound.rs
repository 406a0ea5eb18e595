//! Out: read a local ringway channel, publish each message on a key expression, stamped with
//! the stream and its sequence number.
//!
//! Nothing is taken from the ring while no subscriber matches the key expression: Zenoh drops
//! a put nobody subscribes to, so the messages wait in the ring instead (and a sender on a
//! full ring sees it full). In reliable mode a put blocks while Zenoh's queue to the far side
//! is full (congestion control *block*), so the bridge stops reading its ring; in lossy mode
//! Zenoh drops what does not fit (congestion control *drop*), and the receiving bridge
//! counts the gap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use ringway_channel::RecvError;
use zenoh::qos::CongestionControl;
use zenoh::{Session, Wait};

use crate::local::Source;
use crate::status::RouteStatus;
use crate::wire::{Encoder, new_stream};
use crate::{BridgeError, Delivery, Fingerprint, Route};

/// How long a route's thread waits for its ring before it looks at the stop flag again.
pub(crate) const POLL: Duration = Duration::from_millis(50);

pub(crate) fn run(
    session: &Session,
    route: &Route,
    fingerprint: &Fingerprint,
    mut source: Box<dyn Source>,
    status: &RouteStatus,
    stop: &AtomicBool,
) -> Result<(), BridgeError> {
    let label = route.label();
    let congestion = match route.delivery {
        Delivery::Reliable => CongestionControl::Block,
        Delivery::Lossy => CongestionControl::Drop,
    };
    let publisher = session
        .declare_publisher(route.key.clone())
        .congestion_control(congestion)
        .wait()
        .map_err(|e| BridgeError::zenoh(format!("{label}: declare a publisher"), e))?;
    let matching = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&matching);
    let _listener = publisher
        .matching_listener()
        .callback(move |m| flag.store(m.matching(), Relaxed))
        .wait()
        .map_err(|e| BridgeError::zenoh(format!("{label}: watch for subscribers"), e))?;
    if let Ok(m) = publisher.matching_status().wait() {
        matching.fetch_or(m.matching(), Relaxed);
    }

    let mut stamp = Encoder::new(new_stream(), fingerprint);
    let mut seq = 0u64;
    let mut failed = None;
    while !stop.load(Relaxed) {
        if !matching.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let taken = source.take(POLL, &mut |msg| {
            if failed.is_some() {
                return;
            }
            let put = publisher.put(msg).attachment(stamp.encode(seq)).wait();
            match put {
                Ok(()) => {
                    seq += 1;
                    RouteStatus::add(&status.messages, 1);
                    RouteStatus::add(&status.bytes, msg.len() as u64);
                }
                Err(e) => failed = Some(BridgeError::zenoh(format!("{label}: put"), e)),
            }
        });
        if let Some(e) = failed.take() {
            return Err(e);
        }
        match taken {
            Ok(_) | Err(RecvError::Timeout | RecvError::Empty) => {}
            // The local sender left or died; another may attach (Disconnected is revocable).
            Err(RecvError::Disconnected) => std::thread::sleep(POLL),
            Err(e) => {
                return Err(BridgeError::Local {
                    route: label,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(())
}
