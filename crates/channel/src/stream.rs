//! `futures::Stream` for receivers and `futures::Sink` for senders, over the async core of
//! `future.rs`.
//!
//! A receiver's stream yields `Ok(message)`, `Err` for a message it could not deliver
//! ([`RecvError::Corrupted`]), and ends (`None`) once the channel is disconnected and drained.
//! A sender's sink sends each item whole or not at all; `start_send` may not wait, so an item
//! that finds the ring full (only possible where another sender took the room
//! `poll_ready` saw, on an MPMC channel) is kept, copied, and sent by the next `poll_ready`
//! or `poll_flush`.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_sink::Sink;
use ringway_ring::{PushError, Wait};

use crate::bytes::{ByteReceiver, ByteSender};
use crate::error::{RecvError, SendError};
use crate::future::{AsyncEnd, poll_op};
use crate::receiver::Receiver;
use crate::segment::Tx;
use crate::sender::Sender;
use crate::shape::Message;

fn item<T>(r: Poll<Result<T, RecvError>>) -> Poll<Option<Result<T, RecvError>>> {
    r.map(|r| match r {
        Err(RecvError::Disconnected) => None,
        other => Some(other),
    })
}

impl<T: Message> Stream for Receiver<T> {
    type Item = Result<T, RecvError>;

    /// The next value; `None` once every sender has gone and everything was received.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        item(self.get_mut().poll_recv(cx))
    }
}

impl Stream for ByteReceiver {
    type Item = Result<Vec<u8>, RecvError>;

    /// The next message, in a new vector; `None` once every sender has gone and everything
    /// was received.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut out = Vec::new();
        item(
            self.get_mut()
                .poll_recv(cx, &mut out)
                .map(|r| r.map(|_| out)),
        )
    }
}

impl<T: Message> Stream for crate::Subscriber<T> {
    type Item = Result<T, RecvError>;

    /// The next value (or `Err(Lagged(n))` after this subscriber was lapped, then the oldest
    /// value left); `None` once the publisher has gone and everything was received.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        item(self.get_mut().poll_recv(cx))
    }
}

impl Stream for crate::ByteSubscriber {
    type Item = Result<Vec<u8>, RecvError>;

    /// The next message, in a new vector (or `Err(Lagged(n))`, as for
    /// [`Subscriber`](crate::Subscriber)); `None` once the publisher has gone and everything
    /// was received.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut out = Vec::new();
        item(
            self.get_mut()
                .poll_recv(cx, &mut out)
                .map(|r| r.map(|_| out)),
        )
    }
}

/// An endpoint whose `Sink` keeps a message that found no room.
trait SinkEnd: AsyncEnd {
    fn tx(&mut self) -> &mut Tx;
    fn watch(&self, len: usize) -> ringway_ring::select::Watch;
    fn name(&self) -> std::sync::Arc<str>;
}

/// Publishes `msg` (exactly its bytes) if there is room now; `Full` otherwise.
fn push_now(tx: &mut Tx, msg: &[MaybeUninit<u8>]) -> Result<(), PushError> {
    let mut grant = tx.reserve(msg.len(), Wait::Try)?;
    // SAFETY: `msg` is valid for `msg.len()` reads (a live slice); the grant is valid for
    // writes of as many bytes (it was reserved for that length) until it is committed, and
    // it lies in the ring, which no heap slice overlaps. A byte copy carries uninitialised
    // bytes (a typed value's padding) as they are, which is defined for a raw copy.
    unsafe {
        core::ptr::copy_nonoverlapping(msg.as_ptr().cast::<u8>(), grant.as_mut_ptr(), msg.len());
    }
    grant.commit_partial(msg.len());
    Ok(())
}

/// Sends the kept message, if any: the `poll_ready` and `poll_flush` of both sinks.
fn poll_unsent<X: SinkEnd>(x: &mut X, cx: &mut Context<'_>) -> Poll<Result<(), SendError<()>>> {
    let Some(len) = x.waiting().unsent.as_ref().map(Vec::len) else {
        return Poll::Ready(Ok(()));
    };
    let attempt = |x: &mut X| {
        let msg = x.waiting().unsent.take().unwrap_or_default();
        match push_now(x.tx(), &msg) {
            Ok(()) => Ok(()),
            Err(PushError::Full) => {
                x.waiting().unsent = Some(msg);
                Err(None)
            }
            Err(e) => Err(Some(SendError::from_push(e, (), &x.name()))),
        }
    };
    poll_op(x, cx, len, |x, len| x.watch(len), attempt, Option::is_none)
        .map(|r| r.map_err(|e| e.expect("only a full ring would block")))
}

/// `start_send`: sends `msg` now, or keeps a copy for [`poll_unsent`] if the ring is full.
fn start<X: SinkEnd>(x: &mut X, msg: &[MaybeUninit<u8>]) -> Result<(), SendError<()>> {
    debug_assert!(
        x.waiting().unsent.is_none(),
        "start_send without poll_ready"
    );
    match push_now(x.tx(), msg) {
        Ok(()) => Ok(()),
        Err(PushError::Full) => {
            x.waiting().unsent = Some(msg.to_vec());
            Ok(())
        }
        Err(e) => Err(SendError::from_push(e, (), &x.name())),
    }
}

/// The bytes of a typed value, padding (uninitialised) included.
fn value_bytes<T: Message>(value: &T) -> &[MaybeUninit<u8>] {
    // SAFETY: `value` is a live `T`, so valid for reads of `size_of::<T>()` bytes for the
    // borrow's lifetime; viewing them as `MaybeUninit<u8>` makes no claim that any byte is
    // initialised, and `MaybeUninit<u8>` has alignment 1.
    unsafe {
        core::slice::from_raw_parts(
            (value as *const T).cast::<MaybeUninit<u8>>(),
            core::mem::size_of::<T>(),
        )
    }
}

fn init_bytes(msg: &[u8]) -> &[MaybeUninit<u8>] {
    // SAFETY: `u8` and `MaybeUninit<u8>` have the same size and alignment, and every `u8`
    // is a valid `MaybeUninit<u8>`; the slice is only read.
    unsafe { core::slice::from_raw_parts(msg.as_ptr().cast::<MaybeUninit<u8>>(), msg.len()) }
}

impl<T: Message> SinkEnd for Sender<T> {
    fn tx(&mut self) -> &mut Tx {
        &mut self.ep.ring
    }
    fn watch(&self, len: usize) -> ringway_ring::select::Watch {
        self.ep.ring.watch(len)
    }
    fn name(&self) -> std::sync::Arc<str> {
        self.ep.name.clone()
    }
}

impl SinkEnd for ByteSender {
    fn tx(&mut self) -> &mut Tx {
        &mut self.ep.ring
    }
    fn watch(&self, len: usize) -> ringway_ring::select::Watch {
        self.ep.ring.watch(len)
    }
    fn name(&self) -> std::sync::Arc<str> {
        self.ep.name.clone()
    }
}

impl<T: Message> Sink<T> for Sender<T> {
    type Error = SendError<()>;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        poll_unsent(self.get_mut(), cx)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Self::Error> {
        start(self.get_mut(), value_bytes(&item))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        poll_unsent(self.get_mut(), cx)
    }

    /// Flushes; the channel closes when the sender drops.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        poll_unsent(self.get_mut(), cx)
    }
}

impl<'a> Sink<&'a [u8]> for ByteSender {
    type Error = SendError<()>;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        poll_unsent(self.get_mut(), cx)
    }

    /// Sends the item, or keeps a copy if the ring is full; refuses one larger than
    /// [`max_message`](ByteSender::max_message) with [`SendError::TooLarge`].
    fn start_send(self: Pin<&mut Self>, msg: &'a [u8]) -> Result<(), Self::Error> {
        let this = self.get_mut();
        if msg.len() > this.max_message() {
            return Err(SendError::from_push(
                ringway_ring::PushError::TooLarge {
                    len: msg.len(),
                    max: this.max_message(),
                },
                (),
                &this.ep.name,
            ));
        }
        start(this, init_bytes(msg))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        poll_unsent(self.get_mut(), cx)
    }

    /// Flushes; the channel closes when the sender drops.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        poll_unsent(self.get_mut(), cx)
    }
}
