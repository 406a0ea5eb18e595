//! In: subscribe to a key expression and send each sample into a local ringway channel,
//! after checking its stamp: the message type (a mismatch stops the route: nothing is
//! delivered that the channel's receiver would misread), and the stream's sequence number
//! (a jump forward is a gap, reported and counted; an old number is refused, so nothing is
//! ever delivered twice or out of order).
//!
//! Reliable mode waits while the channel is full. Zenoh's subscriber queue
//! ([`QUEUE`] samples) then fills, Zenoh stops reading the link, TCP's window closes, and the
//! publishing bridge's puts block: back-pressure all the way to the sender on the other host.
//! Lossy mode drops (and counts) what does not fit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use zenoh::handlers::FifoChannel;
use zenoh::{Session, Wait};

use crate::local::{Put, Sink};
use crate::outbound::POLL;
use crate::status::RouteStatus;
use crate::wire::{Stamp, decode};
use crate::{BridgeError, Delivery, Fingerprint, Route};

/// Samples Zenoh holds for the route between the link and the channel: part of what a crash
/// of the receiving bridge can lose.
pub(crate) const QUEUE: usize = 256;

/// What happened to one stream's sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// The next one, or a stream's first at 0.
    Next,
    /// A stream's first, later than 0: this many earlier ones were never seen here.
    Joined(u64),
    /// A jump forward over this many.
    Gap(u64),
    /// At or before one already delivered: refused.
    Stale,
}

/// The next sequence number expected of each stream.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    next: HashMap<u64, u64>,
}

impl Streams {
    pub(crate) fn check(&mut self, stream: u64, seq: u64) -> Order {
        let order = match self.next.get(&stream) {
            None if seq == 0 => Order::Next,
            None => Order::Joined(seq),
            Some(&next) if seq == next => Order::Next,
            Some(&next) if seq > next => Order::Gap(seq - next),
            Some(_) => return Order::Stale,
        };
        self.next.insert(stream, seq.saturating_add(1));
        order
    }
}

pub(crate) fn run(
    session: &Session,
    route: &Route,
    fingerprint: &Fingerprint,
    message_size: Option<usize>,
    mut sink: Box<dyn Sink>,
    status: &RouteStatus,
    stop: &AtomicBool,
) -> Result<(), BridgeError> {
    let label = route.label();
    let subscriber = session
        .declare_subscriber(route.key.clone())
        .with(FifoChannel::new(QUEUE))
        .wait()
        .map_err(|e| BridgeError::zenoh(format!("{label}: declare a subscriber"), e))?;
    let mut streams = Streams::default();
    while !stop.load(Relaxed) {
        let sample = match subscriber.recv_timeout(POLL) {
            Ok(Some(sample)) => sample,
            Ok(None) => continue,
            Err(e) => return Err(BridgeError::zenoh(format!("{label}: receive"), e)),
        };
        let attachment = sample.attachment().map(|a| a.to_bytes());
        let Stamp {
            stream,
            seq,
            fingerprint: theirs,
        } = match decode(attachment.as_deref()) {
            Ok(stamp) => stamp,
            Err(why) => {
                RouteStatus::add(&status.refused, 1);
                eprintln!(
                    "ringway-bridge: {label}: refused a sample: {why} (not from a ringway bridge?)"
                );
                continue;
            }
        };
        if theirs != *fingerprint {
            return Err(BridgeError::TypeMismatch {
                route: label,
                ours: fingerprint.clone(),
                theirs,
            });
        }
        let payload = sample.payload().to_bytes();
        if let Some(expected) = message_size.filter(|&n| n != payload.len()) {
            return Err(BridgeError::BadPayload {
                route: label,
                len: payload.len(),
                expected,
            });
        }
        match streams.check(stream, seq) {
            Order::Next => {}
            Order::Joined(before) => {
                RouteStatus::add(&status.streams, 1);
                RouteStatus::add(&status.unseen, before);
                eprintln!(
                    "ringway-bridge: {label}: joined stream {stream:016x} at message {seq}: the \
                     {before} before it were not seen by this bridge (delivered before it \
                     restarted, or lost)"
                );
            }
            Order::Gap(missing) => {
                RouteStatus::add(&status.gaps, 1);
                RouteStatus::add(&status.missing, missing);
                eprintln!(
                    "ringway-bridge: {label}: gap in stream {stream:016x}: {missing} messages \
                     lost before message {seq}"
                );
            }
            Order::Stale => {
                RouteStatus::add(&status.refused, 1);
                continue;
            }
        }
        if seq == 0 {
            RouteStatus::add(&status.streams, 1);
        }
        if deliver(&mut *sink, &payload, route.delivery, stop, &label)? {
            RouteStatus::add(&status.messages, 1);
            RouteStatus::add(&status.bytes, payload.len() as u64);
        } else {
            RouteStatus::add(&status.drops, 1);
        }
    }
    Ok(())
}

/// Sends one message: reliable waits for room and for a receiver (until stopped); lossy
/// tries once. Returns whether it went in.
fn deliver(
    sink: &mut dyn Sink,
    msg: &[u8],
    delivery: Delivery,
    stop: &AtomicBool,
    label: &str,
) -> Result<bool, BridgeError> {
    let local = |message| BridgeError::Local {
        route: label.to_owned(),
        message,
    };
    match delivery {
        Delivery::Lossy => Ok(sink.put(msg, Duration::ZERO).map_err(local)? == Put::Sent),
        Delivery::Reliable => loop {
            match sink.put(msg, POLL).map_err(local)? {
                Put::Sent => return Ok(true),
                Put::Full => {}
                // Wait for a receiver to attach again (a restarted consumer).
                Put::NoReceiver => std::thread::sleep(POLL),
            }
            if stop.load(Relaxed) {
                return Ok(false);
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_make_gaps_joins_and_refusals() {
        let mut s = Streams::default();
        assert_eq!(s.check(1, 0), Order::Next);
        assert_eq!(s.check(1, 1), Order::Next);
        assert_eq!(s.check(1, 5), Order::Gap(3));
        assert_eq!(s.check(1, 5), Order::Stale);
        assert_eq!(s.check(1, 2), Order::Stale);
        assert_eq!(s.check(1, 6), Order::Next);
        assert_eq!(s.check(2, 10), Order::Joined(10));
        assert_eq!(s.check(2, 11), Order::Next);
        assert_eq!(s.check(1, 7), Order::Next);
    }
}
