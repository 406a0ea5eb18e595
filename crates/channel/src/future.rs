//! Async sends and receives: the runtime-agnostic core (a [`Waker`](std::task::Waker) is all
//! it needs) under `recv_async`, `send_async`, `recv_ref_async`, the `poll_*` methods, and the
//! `Stream`/`Sink` implementations.
//!
//! Every async operation is the endpoint's non-blocking call (`try_recv`, `try_send`) in a
//! loop: while it succeeds the task never leaves the fast path (no system call, no lock).
//! When it would block, the endpoint's [`WaitStrategy`] decides: `Spin` re-queues the task at
//! once (it never parks), `SpinThenPark` (the default) re-queues it [`YIELDS`] times and then
//! parks, `Park` parks at once. Parking hands the task's waker and the endpoint's readiness
//! watch to the process's waker threads ([`ringway_ring::select::Parking`]): they sleep on
//! every parked ring at once with `futex_waitv` and wake the task when its peer publishes
//! (see `docs/design.md`, *Async*).
//!
//! # Extension point
//!
//! A new kind of endpoint (the broadcast subscribers, in `broadcast/future.rs`) gets the same async calls by holding
//! a [`Waiting`], implementing [`AsyncEnd`], and calling [`poll_op`] with its non-blocking
//! operation and its ring's watch (the one it hands to [`Select`](crate::Select) through
//! [`SelectRecv`](crate::SelectRecv)); [`RecvRefFuture`] serves an in-place receive.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use ringway_ring::select::{Parking, Watch};

use crate::WaitStrategy;
use crate::bytes::{ByteReceiver, ByteRef, ByteSender};
use crate::error::{RecvError, SendError};
use crate::receiver::{Receiver, RecvRef};
use crate::sender::Sender;
use crate::shape::Message;

/// How many times a `SpinThenPark` operation re-queues its task before it parks: long enough
/// for a peer that answers within a few microseconds, short enough not to hold a worker.
pub(crate) const YIELDS: u32 = 32;

/// How long a `SpinThenPark` operation re-queues its task at most, from the first poll that
/// found nothing, whatever [`YIELDS`] says. Re-queueing is worth it while the task comes back
/// within microseconds; when many tasks wait at once (1,000 receivers on two workers), one
/// trip through the run queue takes longer than a peer's answer, every re-queued poll is
/// spent on the others' re-queues and their slow-path checks, and the tasks never reach
/// their park. With the bound, such tasks park after a trip or two and the workers go idle.
pub(crate) const YIELD_WINDOW: std::time::Duration = std::time::Duration::from_micros(50);

/// The async state of one endpoint.
#[derive(Debug, Default)]
pub(crate) struct Waiting {
    parking: Option<Parking>,
    /// The watch a park hands out, made at the first park, and the message length it was
    /// made for (a producer's watch waits for room for a given length).
    watch: Option<(Watch, usize)>,
    /// Polls in a row that found nothing and re-queued the task.
    yields: u32,
    /// When the first of those polls was (`None` while `yields` is 0).
    since: Option<std::time::Instant>,
    /// A sink's message that found no room (`start_send` may not wait): sent by the next
    /// `poll_ready` or `poll_flush`.
    pub(crate) unsent: Option<Vec<core::mem::MaybeUninit<u8>>>,
}

impl Waiting {
    /// The operation completed: withdraw a registration still in place.
    fn finish(&mut self) {
        self.yields = 0;
        self.since = None;
        if let Some(p) = &mut self.parking {
            p.cancel();
        }
    }

    /// The operation was dropped before it completed.
    pub(crate) fn cancel(&mut self) {
        self.finish();
    }
}

/// An endpoint with async operations.
pub(crate) trait AsyncEnd {
    fn waiting(&mut self) -> &mut Waiting;
    fn strategy(&self) -> WaitStrategy;
}

/// One poll of an async operation: `attempt` (the non-blocking call) until it does not
/// `would_block`, yielding or parking on `watch(self, len)` in between, as the endpoint's
/// strategy says.
pub(crate) fn poll_op<X: AsyncEnd, R, E>(
    x: &mut X,
    cx: &mut Context<'_>,
    len: usize,
    watch: impl Fn(&X, usize) -> Watch,
    mut attempt: impl FnMut(&mut X) -> Result<R, E>,
    would_block: impl Fn(&E) -> bool,
) -> Poll<Result<R, E>> {
    loop {
        match attempt(x) {
            Err(e) if would_block(&e) => {}
            done => {
                x.waiting().finish();
                return Poll::Ready(done);
            }
        }
        if poll_wait(x, cx, len, &watch).is_pending() {
            return Poll::Pending;
        }
    }
}

/// The step after an attempt that would block: re-queue the task (`Pending`), or park it
/// (`Pending`), or find at the re-check before parking that the operation is ready
/// (`Ready`: attempt again).
pub(crate) fn poll_wait<X: AsyncEnd>(
    x: &mut X,
    cx: &mut Context<'_>,
    len: usize,
    watch: impl Fn(&X, usize) -> Watch,
) -> Poll<()> {
    let strategy = x.strategy();
    let w = x.waiting();
    let yield_now = match strategy {
        WaitStrategy::Spin => true,
        WaitStrategy::SpinThenPark => {
            w.yields < YIELDS && w.since.is_none_or(|t| t.elapsed() < YIELD_WINDOW)
        }
        _ => false,
    };
    if yield_now {
        if w.yields == 0 {
            w.since = Some(std::time::Instant::now());
        }
        w.yields = w.yields.saturating_add(1);
        cx.waker().wake_by_ref();
        return Poll::Pending;
    }
    if x.waiting().watch.as_ref().is_none_or(|(_, l)| *l != len) {
        let made = watch(x, len);
        x.waiting().watch = Some((made, len));
    }
    let w = x.waiting();
    let Some((watch, _)) = &w.watch else {
        unreachable!("the watch was made above")
    };
    w.parking
        .get_or_insert_with(Parking::new)
        .poll_park(watch, cx)
}

/// A future over one operation of `end`, which withdraws its parked task if dropped before
/// it completes.
pub(crate) struct Op<'a, X: AsyncEnd, F> {
    end: &'a mut X,
    poll: F,
}

// Nothing is pinned structurally: `poll` is only ever called through `&mut`.
impl<X: AsyncEnd, F> Unpin for Op<'_, X, F> {}

impl<'a, X: AsyncEnd, F> Op<'a, X, F> {
    pub(crate) fn new(end: &'a mut X, poll: F) -> Op<'a, X, F> {
        Op { end, poll }
    }
}

impl<X: AsyncEnd, R, F: FnMut(&mut X, &mut Context<'_>) -> Poll<R>> Future for Op<'_, X, F> {
    type Output = R;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        let this = self.get_mut();
        (this.poll)(this.end, cx)
    }
}

impl<X: AsyncEnd, F> Drop for Op<'_, X, F> {
    fn drop(&mut self) {
        self.end.waiting().cancel();
    }
}

/// A receiving endpoint that lends messages in place.
pub(crate) trait RefEnd: AsyncEnd {
    type Ref<'a>
    where
        Self: 'a;
    fn try_ref(&mut self) -> Result<Self::Ref<'_>, RecvError>;
    fn watch(&self) -> Watch;
}

/// The future of `recv_ref_async`: it resolves to a message lent in place, which borrows the
/// receiver for as long as the future did.
pub(crate) struct RecvRefFuture<'a, X: RefEnd> {
    /// `None` once it has completed.
    end: Option<&'a mut X>,
}

impl<'a, X: RefEnd> RecvRefFuture<'a, X> {
    pub(crate) fn new(end: &'a mut X) -> RecvRefFuture<'a, X> {
        // A lent message borrows the endpoint, so the poll that completes with one cannot
        // reset the endpoint's async state: the next operation starts by doing it (without
        // this, every receive after the first park parked at once, its re-queue count spent).
        // It also withdraws a registration the last operation completed with (a task woken by
        // something else found its message): until then it costs the publisher a wake.
        end.waiting().finish();
        RecvRefFuture { end: Some(end) }
    }
}

impl<'a, X: RefEnd> Future for RecvRefFuture<'a, X> {
    type Output = Result<X::Ref<'a>, RecvError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let end: &'a mut X = self
            .end
            .take()
            .expect("RecvRefFuture polled after completion");
        let end: *mut X = end;
        loop {
            // SAFETY: `end` came from the `&'a mut X` just taken out of `self`, which is the
            // only path to the receiver for `'a`. A lent message keeps the borrow for `'a`
            // and is returned, after which `end` is never used again (`self.end` stays
            // `None`). Every other outcome of `try_ref` holds no borrow (`RecvError` has no
            // lifetime), so the reborrow has ended when `end` is used again below: the
            // conditional return of a borrow that the current borrow checker rejects and
            // Polonius accepts.
            match unsafe { &mut *end }.try_ref() {
                Err(RecvError::Empty) => {}
                Ok(lent) => return Poll::Ready(Ok(lent)),
                Err(e) => {
                    // SAFETY: as above; the failed `try_ref` holds no borrow.
                    unsafe { &mut *end }.waiting().finish();
                    return Poll::Ready(Err(e));
                }
            }
            // SAFETY: as above: nothing borrows the receiver now.
            let x = unsafe { &mut *end };
            if poll_wait(x, cx, 0, |x, _| x.watch()).is_pending() {
                self.end = Some(x);
                return Poll::Pending;
            }
        }
    }
}

impl<X: RefEnd> Drop for RecvRefFuture<'_, X> {
    fn drop(&mut self) {
        if let Some(end) = &mut self.end {
            end.waiting().cancel();
        }
    }
}

// The endpoints.

impl<T> AsyncEnd for Receiver<T> {
    fn waiting(&mut self) -> &mut Waiting {
        &mut self.ep.waiting
    }
    fn strategy(&self) -> WaitStrategy {
        self.ep.options().wait
    }
}

impl<T> AsyncEnd for Sender<T> {
    fn waiting(&mut self) -> &mut Waiting {
        &mut self.ep.waiting
    }
    fn strategy(&self) -> WaitStrategy {
        self.ep.options().wait
    }
}

impl AsyncEnd for ByteReceiver {
    fn waiting(&mut self) -> &mut Waiting {
        &mut self.ep.waiting
    }
    fn strategy(&self) -> WaitStrategy {
        self.ep.options().wait
    }
}

impl AsyncEnd for ByteSender {
    fn waiting(&mut self) -> &mut Waiting {
        &mut self.ep.waiting
    }
    fn strategy(&self) -> WaitStrategy {
        self.ep.options().wait
    }
}

impl<T: Message> RefEnd for Receiver<T> {
    type Ref<'a>
        = RecvRef<'a, T>
    where
        T: 'a;
    fn try_ref(&mut self) -> Result<RecvRef<'_, T>, RecvError> {
        self.try_recv_ref()
    }
    fn watch(&self) -> Watch {
        self.ep.ring.watch()
    }
}

impl RefEnd for ByteReceiver {
    type Ref<'a> = ByteRef<'a>;
    fn try_ref(&mut self) -> Result<ByteRef<'_>, RecvError> {
        self.try_recv_ref()
    }
    fn watch(&self) -> Watch {
        self.ep.ring.watch()
    }
}

pub(crate) fn empty(e: &RecvError) -> bool {
    matches!(e, RecvError::Empty)
}

fn full<V>(e: &SendError<V>) -> bool {
    matches!(e, SendError::Full { .. })
}

impl<T: Message> Receiver<T> {
    /// Polls for the next value: the poll form of [`recv_async`](Receiver::recv_async), for
    /// hand-written futures. On `Pending`, the task of `cx` is woken when a message arrives or
    /// the channel is disconnected.
    ///
    /// # Errors
    /// As [`recv`](Receiver::recv).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        poll_op(
            self,
            cx,
            0,
            |rx, _| rx.ep.ring.watch(),
            Receiver::try_recv,
            empty,
        )
    }

    /// Receives the next value, waiting without blocking the thread as long as a sender is
    /// alive.
    ///
    /// # Cancel safety
    /// This method is cancel safe: if the future is dropped before it completes (in a
    /// `tokio::select!` whose other branch won, or by `tokio::time::timeout`), no message was
    /// taken, and the next receive gets it.
    ///
    /// # Errors
    /// As [`recv`](Receiver::recv).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use ringway_channel::{ChannelOptions, Receiver, Sender};
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// #   let name = format!("/ringway-doc-recv-async-{}", std::process::id());
    ///     let mut rx = Receiver::<u64>::create(&name, &ChannelOptions::new())?;
    ///     let mut tx = Sender::<u64>::open(&name, &ChannelOptions::new())?; // another process
    ///     let sender = tokio::spawn(async move { tx.send_async(7).await });
    ///     assert_eq!(rx.recv_async().await?, 7);
    ///     sender.await??;
    ///     // A timeout through the runtime: nothing is lost when it fires.
    ///     let late = tokio::time::timeout(Duration::from_millis(10), rx.recv_async()).await;
    ///     assert!(late.is_err() || late.unwrap().is_err());
    ///     Ok(())
    /// }
    /// ```
    pub fn recv_async(&mut self) -> impl Future<Output = Result<T, RecvError>> + Send + '_
    where
        T: Send,
    {
        Op::new(self, |rx: &mut Receiver<T>, cx: &mut Context<'_>| {
            rx.poll_recv(cx)
        })
    }

    /// Lends the next message in place, waiting without blocking the thread as long as a
    /// sender is alive; it is released when the [`RecvRef`] drops.
    ///
    /// # Cancel safety
    /// Cancel safe, as [`recv_async`](Receiver::recv_async): a message is taken only when the
    /// future completes with it.
    ///
    /// # Errors
    /// As [`recv`](Receiver::recv).
    pub fn recv_ref_async(
        &mut self,
    ) -> impl Future<Output = Result<RecvRef<'_, T>, RecvError>> + Send + '_
    where
        T: Send,
    {
        RecvRefFuture::new(self)
    }
}

impl<T: Message> Sender<T> {
    /// Polls to send the value in `slot`: the poll form of [`send_async`](Sender::send_async),
    /// for hand-written futures. The value is taken out of `slot` when it is sent (or comes
    /// back in the error); on `Pending` it stays there, and the task of `cx` is woken when
    /// there is room or no receiver is left. An empty `slot` is `Ready(Ok(()))`.
    ///
    /// # Errors
    /// As [`send`](Sender::send).
    pub fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        slot: &mut Option<T>,
    ) -> Poll<Result<(), SendError<T>>> {
        let len = core::mem::size_of::<T>();
        let attempt = |tx: &mut Sender<T>| {
            let Some(value) = slot.take() else {
                return Ok(());
            };
            match tx.try_send(value) {
                Err(SendError::Full { value, .. }) => {
                    *slot = Some(value);
                    Err(None)
                }
                other => other.map_err(Some),
            }
        };
        poll_op(
            self,
            cx,
            len,
            |tx, len| tx.ep.ring.watch(len),
            attempt,
            Option::is_none,
        )
        .map(|r| r.map_err(|e| e.expect("only a full ring would block")))
    }

    /// Sends `value`, waiting without blocking the thread for room as long as a receiver is
    /// alive.
    ///
    /// # Cancel safety
    /// A message is sent whole or not at all: if the future is dropped before it completes,
    /// the value was not sent (and is dropped with the future). To keep a value that could
    /// not be sent in time, use [`poll_send`](Sender::poll_send), which leaves it in your
    /// slot.
    ///
    /// # Errors
    /// As [`send`](Sender::send).
    pub fn send_async(
        &mut self,
        value: T,
    ) -> impl Future<Output = Result<(), SendError<T>>> + Send + '_
    where
        T: Send,
    {
        let mut slot = Some(value);
        Op::new(self, move |tx: &mut Sender<T>, cx: &mut Context<'_>| {
            tx.poll_send(cx, &mut slot)
        })
    }
}

impl ByteReceiver {
    /// Polls for the next message, received into `out` (replacing its contents): the poll
    /// form of [`recv_async`](ByteReceiver::recv_async). Returns its length.
    ///
    /// # Errors
    /// As [`recv`](ByteReceiver::recv).
    pub fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<u8>,
    ) -> Poll<Result<usize, RecvError>> {
        poll_op(
            self,
            cx,
            0,
            |rx, _| rx.ep.ring.watch(),
            |rx| rx.try_recv(out),
            empty,
        )
    }

    /// Receives the next message into `out` (replacing its contents), waiting without
    /// blocking the thread as long as a sender is alive. Returns its length.
    ///
    /// # Cancel safety
    /// Cancel safe: if the future is dropped before it completes, no message was taken (and
    /// `out` was not changed).
    ///
    /// # Errors
    /// As [`recv`](ByteReceiver::recv).
    pub fn recv_async<'a>(
        &'a mut self,
        out: &'a mut Vec<u8>,
    ) -> impl Future<Output = Result<usize, RecvError>> + Send + 'a {
        Op::new(self, move |rx: &mut ByteReceiver, cx: &mut Context<'_>| {
            rx.poll_recv(cx, out)
        })
    }

    /// Lends the next message in place, waiting without blocking the thread as long as a
    /// sender is alive; released when the [`ByteRef`] drops.
    ///
    /// # Cancel safety
    /// Cancel safe: a message is taken only when the future completes with it.
    ///
    /// # Errors
    /// As [`recv`](ByteReceiver::recv).
    pub fn recv_ref_async(
        &mut self,
    ) -> impl Future<Output = Result<ByteRef<'_>, RecvError>> + Send + '_ {
        RecvRefFuture::new(self)
    }
}

impl ByteSender {
    /// Polls to send `msg`: the poll form of [`send_async`](ByteSender::send_async).
    ///
    /// # Errors
    /// As [`send`](ByteSender::send).
    pub fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        msg: &[u8],
    ) -> Poll<Result<(), SendError<()>>> {
        poll_op(
            self,
            cx,
            msg.len(),
            |tx, len| tx.ep.ring.watch(len),
            |tx| tx.try_send(msg),
            full,
        )
    }

    /// Sends `msg`, waiting without blocking the thread for room as long as a receiver is
    /// alive.
    ///
    /// # Cancel safety
    /// A message is sent whole or not at all: if the future is dropped before it completes,
    /// nothing was sent.
    ///
    /// # Errors
    /// As [`send`](ByteSender::send).
    pub fn send_async<'a>(
        &'a mut self,
        msg: &'a [u8],
    ) -> impl Future<Output = Result<(), SendError<()>>> + Send + 'a {
        Op::new(self, move |tx: &mut ByteSender, cx: &mut Context<'_>| {
            tx.poll_send(cx, msg)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    use ringway_ring::select::Reactor;

    use crate::{ByteChannel, ChannelOptions};

    /// After a receive in place that parked, the next one re-queues its task on its first
    /// empty poll, as the default strategy says, instead of parking at once (the lent message
    /// keeps the completing poll from resetting the endpoint's state). No other unit test of
    /// this crate parks, so the process's reactor counts this test's parks only.
    #[test]
    fn a_receive_in_place_after_a_park_re_queues_first() {
        let ch = ByteChannel::anonymous(&ChannelOptions::new()).unwrap();
        let (mut tx, mut rx) = (ch.sender().unwrap(), ch.receiver().unwrap());
        let mut cx = Context::from_waker(Waker::noop());
        {
            let mut first = std::pin::pin!(rx.recv_ref_async());
            let mut polls = 0;
            while Reactor::global().parked() == 0 {
                assert!(first.as_mut().poll(&mut cx).is_pending());
                polls += 1;
                assert!(polls <= super::YIELDS + 1, "never parked");
            }
            tx.send(b"x").unwrap();
            let Poll::Ready(msg) = first.as_mut().poll(&mut cx) else {
                panic!("a message is there");
            };
            assert_eq!(msg.unwrap().len(), 1);
        }
        let mut second = std::pin::pin!(rx.recv_ref_async());
        assert!(second.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            Reactor::global().parked(),
            0,
            "the second receive parked on its first poll"
        );
    }
}
