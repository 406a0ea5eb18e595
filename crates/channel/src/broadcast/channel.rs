//! [`BroadcastChannel`]: a broadcast channel not yet attached to, for sharing by `fork`, by fd
//! inheritance across `exec`, or by passing its fd over a Unix socket.

use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

use crate::channel::{Bytes, Channel, Payload};
use crate::error::Error;
use crate::options::ChannelOptions;
use crate::shape::Message;

use super::{BytePublisher, ByteSubscriber, Publisher, Subscriber};

/// A broadcast channel in memory shared by inheritance or fd passing, before any end is
/// taken: the broadcast form of [`Channel`], with the same ways to share it. Create it, share
/// it, then call [`publisher`](BroadcastChannel::publisher) in one process and
/// [`subscriber`](BroadcastChannel::subscriber) in as many as the channel's
/// [`max_readers`](ChannelOptions::max_readers).
///
/// A subscriber maps the data area read-only in its process; a publisher taken from the same
/// `BroadcastChannel` in the same process makes it writable again (see
/// [`Subscriber::is_data_protected`]), so take the publisher in the process that publishes.
///
/// # Examples
/// ```no_run
/// use ringway_channel::{BroadcastChannel, ChannelOptions};
/// let channel = BroadcastChannel::<u64>::anonymous(&ChannelOptions::new())?;
/// for _ in 0..4 {
///     // SAFETY: (in a real program) no other threads run at this point.
///     if unsafe { libc::fork() } == 0 {
///         let mut rx = channel.subscriber()?;
///         assert_eq!(rx.recv()?, 42);
///         std::process::exit(0);
///     }
/// }
/// let mut tx = channel.publisher()?;
/// // (wait until tx.subscribers() == 4, then)
/// tx.send(42)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct BroadcastChannel<P: Payload> {
    inner: Channel<P>,
}

impl<P: Payload> BroadcastChannel<P> {
    fn wrap(made: Result<Channel<P>, Error>) -> Result<BroadcastChannel<P>, Error> {
        made.map(|inner| BroadcastChannel { inner })
    }

    /// A broadcast channel in an anonymous shared mapping, for children created by `fork`
    /// after this call.
    ///
    /// # Errors
    /// [`Error::Region`], [`Error::Config`], [`Error::InvalidOptions`].
    pub fn anonymous(opts: &ChannelOptions) -> Result<BroadcastChannel<P>, Error> {
        Self::wrap(Channel::anonymous(&opts.for_broadcast()))
    }

    /// A broadcast channel in a shared mapping of `/dev/zero`, for children created by `fork`.
    ///
    /// # Errors
    /// As [`anonymous`](BroadcastChannel::anonymous).
    pub fn dev_zero(opts: &ChannelOptions) -> Result<BroadcastChannel<P>, Error> {
        Self::wrap(Channel::dev_zero(&opts.for_broadcast()))
    }

    /// A broadcast channel in a sealed memfd, shared by fork, exec or fd passing (see
    /// [`Channel::memfd`]).
    ///
    /// # Errors
    /// As [`anonymous`](BroadcastChannel::anonymous).
    pub fn memfd(label: &str, opts: &ChannelOptions) -> Result<BroadcastChannel<P>, Error> {
        Self::wrap(Channel::memfd(label, &opts.for_broadcast()))
    }

    /// Takes a broadcast channel's memfd received from another process.
    ///
    /// # Errors
    /// As [`Channel::from_fd`], and [`Error::Unsupported`] for a sender/receiver channel's fd.
    pub fn from_fd(fd: OwnedFd, opts: &ChannelOptions) -> Result<BroadcastChannel<P>, Error> {
        Self::wrap(Channel::from_fd(fd, &opts.for_broadcast()))
    }

    /// Takes a broadcast channel's memfd inherited across `exec` by its number.
    ///
    /// # Errors
    /// As [`from_fd`](BroadcastChannel::from_fd).
    ///
    /// # Safety
    /// As [`Channel::from_raw_fd`]: `fd` must be open and owned by nothing else.
    pub unsafe fn from_raw_fd(
        fd: RawFd,
        opts: &ChannelOptions,
    ) -> Result<BroadcastChannel<P>, Error> {
        // SAFETY: forwarded from the caller.
        Self::wrap(unsafe { Channel::from_raw_fd(fd, &opts.for_broadcast()) })
    }

    /// Receives a broadcast channel's memfd sent with
    /// [`send_fd`](BroadcastChannel::send_fd) over the Unix socket `socket`.
    ///
    /// # Errors
    /// As [`Channel::recv_fd`].
    pub fn recv_fd(
        socket: BorrowedFd<'_>,
        opts: &ChannelOptions,
    ) -> Result<BroadcastChannel<P>, Error> {
        Self::wrap(Channel::recv_fd(socket, &opts.for_broadcast()))
    }

    /// Sends this channel's memfd over the Unix socket `socket`.
    ///
    /// # Errors
    /// As [`Channel::send_fd`].
    pub fn send_fd(&self, socket: BorrowedFd<'_>) -> Result<(), Error> {
        self.inner.send_fd(socket)
    }

    /// The memfd, for handing to a child; `None` for anonymous and `/dev/zero` channels.
    #[must_use]
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.inner.fd()
    }

    /// Lets the memfd survive `exec` (see [`Channel::set_inheritable`]).
    ///
    /// # Errors
    /// As [`Channel::set_inheritable`].
    pub fn set_inheritable(&self, yes: bool) -> Result<(), Error> {
        self.inner.set_inheritable(yes)
    }

    /// How errors name this channel.
    #[must_use]
    pub fn name(&self) -> &str {
        self.inner.name()
    }
}

impl<T: Message> BroadcastChannel<T> {
    /// Attaches as the publisher (in the process that will publish).
    ///
    /// # Errors
    /// [`Error::Attach`] if a live publisher holds the channel.
    pub fn publisher(&self) -> Result<Publisher<T>, Error> {
        Publisher::attach(&self.inner.shared)
    }

    /// Attaches as a subscriber (in a process that will receive).
    ///
    /// # Errors
    /// [`Error::Attach`] if `max_readers` subscribers are attached.
    pub fn subscriber(&self) -> Result<Subscriber<T>, Error> {
        Subscriber::attach(&self.inner.shared)
    }
}

impl BroadcastChannel<Bytes> {
    /// Attaches as the publisher (in the process that will publish).
    ///
    /// # Errors
    /// [`Error::Attach`] if a live publisher holds the channel.
    pub fn publisher(&self) -> Result<BytePublisher, Error> {
        BytePublisher::attach(&self.inner.shared)
    }

    /// Attaches as a subscriber (in a process that will receive).
    ///
    /// # Errors
    /// [`Error::Attach`] if `max_readers` subscribers are attached.
    pub fn subscriber(&self) -> Result<ByteSubscriber, Error> {
        ByteSubscriber::attach(&self.inner.shared)
    }
}
