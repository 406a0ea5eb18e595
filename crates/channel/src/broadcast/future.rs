//! Async receives for broadcast subscribers, through the extension point of `crate::future`:
//! each subscriber holds its endpoint's [`Waiting`](crate::future::Waiting), implements
//! [`AsyncEnd`] and [`RefEnd`], and runs [`poll_op`] over its non-blocking receive and the
//! watch it hands to a select (ready when a message is complete at its position, when it was
//! lapped, or when the publisher has gone and nothing is left). Waking, parking, cancellation
//! and liveness are those of the sender/receiver channels (see `docs/design.md`, *Async*).
//! `Stream` for both subscribers is in `crate::stream`.

use std::future::Future;
use std::task::{Context, Poll};

use ringway_ring::select::Watch;

use super::{BroadcastByteRef, BroadcastRef, ByteSubscriber, Subscriber};
use crate::WaitStrategy;
use crate::error::RecvError;
use crate::future::{AsyncEnd, Op, RecvRefFuture, RefEnd, Waiting, empty, poll_op};
use crate::shape::Message;

impl<T> AsyncEnd for Subscriber<T> {
    fn waiting(&mut self) -> &mut Waiting {
        &mut self.ep.waiting
    }
    fn strategy(&self) -> WaitStrategy {
        self.ep.options().wait
    }
}

impl AsyncEnd for ByteSubscriber {
    fn waiting(&mut self) -> &mut Waiting {
        &mut self.ep.waiting
    }
    fn strategy(&self) -> WaitStrategy {
        self.ep.options().wait
    }
}

impl<T: Message> RefEnd for Subscriber<T> {
    type Ref<'a>
        = BroadcastRef<'a, T>
    where
        T: 'a;
    fn try_ref(&mut self) -> Result<BroadcastRef<'_, T>, RecvError> {
        self.try_recv_ref()
    }
    fn watch(&self) -> Watch {
        self.ep.ring.watch()
    }
}

impl RefEnd for ByteSubscriber {
    type Ref<'a> = BroadcastByteRef<'a>;
    fn try_ref(&mut self) -> Result<BroadcastByteRef<'_>, RecvError> {
        self.try_recv_ref()
    }
    fn watch(&self) -> Watch {
        self.ep.ring.watch()
    }
}

impl<T: Message> Subscriber<T> {
    /// Polls for the next value: the poll form of [`recv_async`](Subscriber::recv_async). On
    /// `Pending`, the task of `cx` is woken when a value is published, when this subscriber
    /// was lapped, or when the publisher has gone.
    ///
    /// # Errors
    /// As [`recv`](Subscriber::recv) (`Lagged` included: the next receive gets the oldest
    /// value left).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        poll_op(
            self,
            cx,
            0,
            |sub, _| sub.ep.ring.watch(),
            Subscriber::try_recv,
            empty,
        )
    }

    /// Receives the next value, waiting without blocking the thread as long as the publisher
    /// is alive.
    ///
    /// # Cancel safety
    /// Cancel safe: if the future is dropped before it completes, this subscriber's position
    /// did not move, and the next receive gets the value (unless the publisher overwrites it
    /// meanwhile under [`Policy::Overwrite`](crate::Policy), which the next receive reports as
    /// `Lagged`, as it would without the cancel).
    ///
    /// # Errors
    /// As [`recv`](Subscriber::recv).
    ///
    /// # Examples
    /// ```
    /// use ringway_channel::{BroadcastChannel, ChannelOptions};
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let ch = BroadcastChannel::<u64>::anonymous(&ChannelOptions::new())?;
    ///     let (mut a, mut b) = (ch.subscriber()?, ch.subscriber()?);
    ///     let mut publisher = ch.publisher()?; // another process, after fork
    ///     let sender = tokio::spawn(async move { publisher.send(7) });
    ///     assert_eq!(a.recv_async().await?, 7);
    ///     assert_eq!(b.recv_async().await?, 7);
    ///     sender.await??;
    ///     Ok(())
    /// }
    /// ```
    pub fn recv_async(&mut self) -> impl Future<Output = Result<T, RecvError>> + Send + '_
    where
        T: Send,
    {
        Op::new(self, |sub: &mut Subscriber<T>, cx: &mut Context<'_>| {
            sub.poll_recv(cx)
        })
    }

    /// Lends the next message in place, waiting without blocking the thread as long as the
    /// publisher is alive; copy it out with [`BroadcastRef::get`].
    ///
    /// # Cancel safety
    /// Cancel safe, as [`recv_async`](Subscriber::recv_async): the position moves only when
    /// the lent message is released.
    ///
    /// # Errors
    /// As [`recv`](Subscriber::recv).
    pub fn recv_ref_async(
        &mut self,
    ) -> impl Future<Output = Result<BroadcastRef<'_, T>, RecvError>> + Send + '_
    where
        T: Send,
    {
        RecvRefFuture::new(self)
    }
}

impl ByteSubscriber {
    /// Polls for the next message, received into `out` (replacing its contents): the poll
    /// form of [`recv_async`](ByteSubscriber::recv_async). Returns its length.
    ///
    /// # Errors
    /// As [`recv`](ByteSubscriber::recv).
    pub fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<u8>,
    ) -> Poll<Result<usize, RecvError>> {
        poll_op(
            self,
            cx,
            0,
            |sub, _| sub.ep.ring.watch(),
            |sub| sub.try_recv(out),
            empty,
        )
    }

    /// Receives the next message into `out` (replacing its contents), waiting without
    /// blocking the thread as long as the publisher is alive. Returns its length.
    ///
    /// # Cancel safety
    /// Cancel safe, as [`Subscriber::recv_async`].
    ///
    /// # Errors
    /// As [`recv`](ByteSubscriber::recv).
    pub fn recv_async<'a>(
        &'a mut self,
        out: &'a mut Vec<u8>,
    ) -> impl Future<Output = Result<usize, RecvError>> + Send + 'a {
        Op::new(
            self,
            move |sub: &mut ByteSubscriber, cx: &mut Context<'_>| sub.poll_recv(cx, out),
        )
    }

    /// Lends the next message in place, waiting without blocking the thread as long as the
    /// publisher is alive; released when the [`BroadcastByteRef`] drops.
    ///
    /// # Cancel safety
    /// Cancel safe, as [`Subscriber::recv_ref_async`].
    ///
    /// # Errors
    /// As [`recv`](ByteSubscriber::recv).
    pub fn recv_ref_async(
        &mut self,
    ) -> impl Future<Output = Result<BroadcastByteRef<'_>, RecvError>> + Send + '_ {
        RecvRefFuture::new(self)
    }
}
