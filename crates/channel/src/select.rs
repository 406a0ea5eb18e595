//! [`Select`]: wait for the first of many channels, across processes, without spinning a core.
//!
//! In the style of `crossbeam_channel::Select`: add receivers (a message is waiting) and
//! senders (there is room), then [`select`](Select::select), [`try_select`](Select::try_select),
//! [`select_timeout`](Select::select_timeout) or [`select_deadline`](Select::select_deadline);
//! the index of a ready operation comes back, and the caller performs it on its endpoint
//! (`try_recv`, `try_send`), which it still owns.
//!
//! A `Select` borrows no endpoint. The endpoints' calls take `&mut self`, so a select that
//! held `&rx` would forbid `rx.try_recv()` while it lives; instead, adding an endpoint takes
//! an owned readiness handle from it ([`Watch`], from the ring) that judges readiness from
//! shared memory alone. So one `Select` is built once and reused across many selects, with
//! the endpoints used freely in between. The price is crossbeam's `ready()` semantics rather
//! than its `select()`: a ready arm is a strong hint, not a reservation. The operation may
//! still find nothing when another receiver of an MPMC channel took the message first (or
//! another sender the room); use the `try_` call and select again.
//!
//! Blocked, a select sleeps on every arm's ring at once (`futex_waitv`, Linux 5.16 or later)
//! and wakes within microseconds of a message or of room on any arm; idle, it uses no CPU
//! after a brief spin (per the endpoints' [`WaitStrategy`](crate::WaitStrategy)). An arm
//! whose other side left reports [`Selected::is_closed`] at once; one whose other side died
//! within the liveness interval, like the endpoint's own calls. A raised
//! [`Interrupt`](crate::Interrupt) of any arm's channel ends a select with
//! [`SelectError::Interrupted`]. Scans start after the arm last returned, so a busy arm does
//! not starve the others. On kernels without `futex_waitv` a select sleeps in slices of at
//! most [`FALLBACK_SLICE`] (see `docs/design.md`, *Select*).
//!
//! # Examples
//! ```
//! use std::time::Duration;
//! use ringway_channel::{Channel, ChannelOptions, Select};
//!
//! let prices = Channel::<u64>::anonymous(&ChannelOptions::new())?; // shared across fork
//! let orders = Channel::<u32>::anonymous(&ChannelOptions::new())?;
//! let (mut price_tx, mut price_rx) = (prices.sender()?, prices.receiver()?);
//! let (mut order_tx, mut order_rx) = (orders.sender()?, orders.receiver()?);
//!
//! let mut sel = Select::new();
//! let p = sel.recv(&price_rx);
//! let o = sel.recv(&order_rx);
//! order_tx.send(7)?;
//! price_tx.send(100)?;
//! let mut got = Vec::new();
//! while got.len() < 2 {
//!     let ready = sel.select_timeout(Duration::from_secs(5))?;
//!     match ready.index() {
//!         i if i == p => got.push(price_rx.try_recv()? as i64),
//!         i if i == o => got.push(-i64::from(order_rx.try_recv()?)),
//!         _ => unreachable!(),
//!     }
//! }
//! got.sort();
//! assert_eq!(got, [-7, 100]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::{Duration, Instant};

pub use ringway_ring::select::{FALLBACK_SLICE, SelectError, Selected, Watch};

use crate::segment::{Rx, Tx};
use crate::{ByteReceiver, ByteSender, Message, Receiver, Sender, WaitStrategy};

/// A receiving endpoint a [`Select`] can wait on: ready when a message is waiting or the
/// channel is disconnected. Implemented by [`Receiver`], [`ByteReceiver`], and the broadcast
/// [`Subscriber`](crate::Subscriber) and [`ByteSubscriber`](crate::ByteSubscriber) (ready
/// also when lapped: the receive reports `Lagged`).
pub trait SelectRecv {
    /// An owned readiness handle of this endpoint.
    fn watch(&self) -> Watch;
}

/// A sending endpoint a [`Select`] can wait on: ready when there is room for a message or
/// the channel is disconnected. Implemented by [`Sender`] and [`ByteSender`].
pub trait SelectSend {
    /// An owned readiness handle of this endpoint.
    fn watch(&self) -> Watch;
}

impl Rx {
    pub(crate) fn watch(&self) -> Watch {
        match self {
            Rx::Spsc(c) => c.watch(),
            Rx::Mpmc(c) => c.watch(),
        }
    }
}

impl Tx {
    pub(crate) fn watch(&self, len: usize) -> Watch {
        match self {
            Tx::Spsc(p) => p.watch(len),
            Tx::Mpmc(p) => p.watch(),
        }
    }
}

impl<T: Message> SelectRecv for Receiver<T> {
    fn watch(&self) -> Watch {
        self.ep.ring.watch()
    }
}

impl SelectRecv for ByteReceiver {
    fn watch(&self) -> Watch {
        self.ep.ring.watch()
    }
}

impl<T: Message> SelectSend for Sender<T> {
    /// Ready when one `T` fits.
    fn watch(&self) -> Watch {
        self.ep.ring.watch(core::mem::size_of::<T>())
    }
}

impl SelectSend for ByteSender {
    /// Ready when a message of the channel's largest size fits (any message does); see
    /// [`Select::send_bytes`] to wait for room for a given length.
    fn watch(&self) -> Watch {
        self.ep.ring.watch(self.max_message())
    }
}

/// A set of channel operations to wait on (see the module docs).
///
/// # Examples
/// ```
/// use ringway_channel::{ByteChannel, ChannelOptions, Select, SelectError};
/// let ch = ByteChannel::anonymous(&ChannelOptions::new().capacity(1024))?;
/// let (mut tx, mut rx) = (ch.sender()?, ch.receiver()?);
/// let mut sel = Select::new();
/// let r = sel.recv(&rx);
/// assert_eq!(sel.try_select(), Err(SelectError::Empty));
/// tx.send(b"ping")?;
/// assert_eq!(sel.try_select()?.index(), r);
/// let mut buf = Vec::new();
/// rx.try_recv(&mut buf)?;
/// drop(tx);
/// assert!(sel.select()?.is_closed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct Select {
    inner: ringway_ring::select::Select,
}

impl Select {
    /// An empty set.
    #[must_use]
    pub fn new() -> Select {
        Select::default()
    }

    /// Adds a receive operation on `rx`; returns its index.
    pub fn recv(&mut self, rx: &impl SelectRecv) -> usize {
        self.inner.add(rx.watch())
    }

    /// Adds a send operation on `tx` (ready when a message fits); returns its index.
    pub fn send(&mut self, tx: &impl SelectSend) -> usize {
        self.inner.add(tx.watch())
    }

    /// Adds a send operation on a byte channel, ready when a message of `len` bytes fits;
    /// returns its index.
    pub fn send_bytes(&mut self, tx: &ByteSender, len: usize) -> usize {
        self.inner.add(tx.ep.ring.watch(len))
    }

    /// Adds any [`Watch`]; returns its index.
    pub fn add(&mut self, watch: Watch) -> usize {
        self.inner.add(watch)
    }

    /// Removes operation `index`; the others keep their indices.
    ///
    /// # Panics
    /// If there is no operation at `index`.
    pub fn remove(&mut self, index: usize) {
        drop(self.inner.remove(index));
    }

    /// The number of operations.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// How to wait (default: the first operation's channel's strategy).
    pub fn wait_strategy(&mut self, strategy: WaitStrategy) -> &mut Select {
        self.inner.wait_strategy(strategy);
        self
    }

    /// Sleeps as on a kernel without `futex_waitv` (slices of [`FALLBACK_SLICE`]): for
    /// tests of that path, and to measure it.
    pub fn force_fallback(&mut self, on: bool) -> &mut Select {
        self.inner.force_fallback(on);
        self
    }

    /// A ready operation, without waiting.
    ///
    /// # Errors
    /// [`SelectError::Empty`] if none is ready.
    pub fn try_select(&mut self) -> Result<Selected, SelectError> {
        self.inner.try_select()
    }

    /// Waits for a ready operation (with none added: for ever).
    ///
    /// # Errors
    /// [`SelectError::Interrupted`].
    pub fn select(&mut self) -> Result<Selected, SelectError> {
        self.inner.select()
    }

    /// Waits up to `timeout` for a ready operation.
    ///
    /// # Errors
    /// [`SelectError::Timeout`], [`SelectError::Interrupted`].
    pub fn select_timeout(&mut self, timeout: Duration) -> Result<Selected, SelectError> {
        self.inner.select_timeout(timeout)
    }

    /// Waits until `deadline` for a ready operation.
    ///
    /// # Errors
    /// [`SelectError::Timeout`], [`SelectError::Interrupted`].
    pub fn select_deadline(&mut self, deadline: Instant) -> Result<Selected, SelectError> {
        self.inner.select_deadline(deadline)
    }
}
