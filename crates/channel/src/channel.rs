//! [`Channel`]: a channel not yet attached to, for sharing by `fork`, by fd inheritance across
//! `exec`, or by passing its fd over a Unix socket. Each process takes one end after the
//! split, so each end registers under its own pid (and a crash of either is detected).

use std::marker::PhantomData;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;

use ringway_region::{Backing, Region};

use crate::bytes::{ByteReceiver, ByteSender};
use crate::error::Error;
use crate::message::MessageType;
use crate::options::ChannelOptions;
use crate::receiver::Receiver;
use crate::segment::Shared;
use crate::sender::Sender;
use crate::shape::Message;

/// What a [`Channel`] carries: a [`Message`] type `T` (its ends are [`Sender<T>`] and
/// [`Receiver<T>`]) or [`Bytes`] (its ends are [`ByteSender`] and [`ByteReceiver`]).
///
/// Sealed: implemented for every [`Message`] type and for [`Bytes`].
pub trait Payload: sealed::Sealed {
    #[doc(hidden)]
    fn message(opts: &ChannelOptions) -> MessageType;
}

mod sealed {
    pub trait Sealed {}
    impl<T: crate::Message> Sealed for T {}
    impl Sealed for super::Bytes {}
}

/// The [`Payload`] of byte channels: `Channel<Bytes>`, also named [`ByteChannel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes;

impl<T: Message> Payload for T {
    fn message(opts: &ChannelOptions) -> MessageType {
        MessageType::of::<T>(opts.type_name.as_deref())
    }
}

impl Payload for Bytes {
    fn message(opts: &ChannelOptions) -> MessageType {
        MessageType::for_bytes(opts)
    }
}

/// A byte channel not yet attached to.
pub type ByteChannel = Channel<Bytes>;

/// A channel in memory shared by inheritance or fd passing, before either end is taken.
///
/// Create it, share it (fork, exec with the fd inherited, or send the fd), then call
/// [`sender`](Channel::sender) in one process and [`receiver`](Channel::receiver) in the
/// other.
///
/// # Examples
///
/// A channel across `fork` (see `examples/fork.rs` for a complete program):
///
/// ```no_run
/// use ringway_channel::{Channel, ChannelOptions};
/// let channel = Channel::<u64>::anonymous(&ChannelOptions::new())?;
/// // SAFETY: (in a real program) no other threads run at this point.
/// match unsafe { libc::fork() } {
///     0 => {
///         let mut tx = channel.sender()?;
///         tx.send(42)?;
///         std::process::exit(0);
///     }
///     _child => {
///         let mut rx = channel.receiver()?;
///         assert_eq!(rx.recv()?, 42);
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Channel<P: Payload> {
    pub(crate) shared: Arc<Shared>,
    _payload: PhantomData<fn(P)>,
}

impl<P: Payload> Channel<P> {
    fn create(backing: &Backing, opts: &ChannelOptions) -> Result<Channel<P>, Error> {
        let shared = Shared::create(backing, P::message(opts), opts)?;
        Ok(Channel {
            shared,
            _payload: PhantomData,
        })
    }

    /// A channel in an anonymous shared mapping (`MAP_SHARED | MAP_ANONYMOUS`), for children
    /// created by `fork` after this call.
    ///
    /// # Errors
    /// [`Error::Region`], [`Error::Config`].
    pub fn anonymous(opts: &ChannelOptions) -> Result<Channel<P>, Error> {
        Channel::create(&Backing::Anonymous, opts)
    }

    /// A channel in a shared mapping of `/dev/zero`, for children created by `fork` after
    /// this call (the BSD way to the same result as [`anonymous`](Channel::anonymous)).
    ///
    /// # Errors
    /// [`Error::Region`], [`Error::Config`].
    pub fn dev_zero(opts: &ChannelOptions) -> Result<Channel<P>, Error> {
        Channel::create(&Backing::DevZero, opts)
    }

    /// A channel in a sealed memfd (its size cannot be changed by anyone, so no peer can make
    /// the others fault), shared by fork, by exec (see
    /// [`set_inheritable`](Channel::set_inheritable)) or by [`send_fd`](Channel::send_fd).
    /// `label` names it in `/proc/<pid>/fd` and in errors.
    ///
    /// # Errors
    /// [`Error::Region`], [`Error::Config`].
    pub fn memfd(label: &str, opts: &ChannelOptions) -> Result<Channel<P>, Error> {
        Channel::create(&Backing::memfd(label), opts)
    }

    /// Takes a channel's memfd received from another process, checking its seals, its size,
    /// the ring in it, the message type and the flavour.
    ///
    /// # Errors
    /// [`Error::Region`] (for example an unsealed fd), [`Error::Attach`],
    /// [`Error::TypeMismatch`], [`Error::FlavourMismatch`].
    pub fn from_fd(fd: OwnedFd, opts: &ChannelOptions) -> Result<Channel<P>, Error> {
        Channel::from_region(Region::from_fd(fd, &opts.open_region())?, opts)
    }

    fn from_region(region: Region, opts: &ChannelOptions) -> Result<Channel<P>, Error> {
        let shared = Shared::from_region(region, P::message(opts), opts)?;
        Ok(Channel {
            shared,
            _payload: PhantomData,
        })
    }

    /// Takes a channel's memfd inherited across `exec` by its number.
    ///
    /// # Errors
    /// As [`from_fd`](Channel::from_fd), and [`Error::Region`] if `fd` is not open.
    ///
    /// # Safety
    /// `fd` must be an open file descriptor that nothing else in this process owns or will
    /// close: the channel takes ownership of it.
    pub unsafe fn from_raw_fd(fd: RawFd, opts: &ChannelOptions) -> Result<Channel<P>, Error> {
        // SAFETY: forwarded from the caller: `fd` is open and owned by nobody else.
        let region = unsafe { Region::from_inherited_fd(fd, &opts.open_region()) }?;
        Channel::from_region(region, opts)
    }

    /// Receives a channel's memfd sent with [`send_fd`](Channel::send_fd) over the Unix
    /// socket `socket`, and takes it as [`from_fd`](Channel::from_fd) does.
    ///
    /// # Errors
    /// [`Error::Region`] if no fd arrives (the message says what came instead), and as
    /// [`from_fd`](Channel::from_fd).
    pub fn recv_fd(socket: BorrowedFd<'_>, opts: &ChannelOptions) -> Result<Channel<P>, Error> {
        let mut tag = [0u8; 8];
        let (fd, _) = ringway_region::fdpass::recv_fd(socket, &mut tag)?;
        Channel::from_fd(fd, opts)
    }

    /// Sends this channel's memfd over the Unix socket `socket` (`SCM_RIGHTS`), for the
    /// process at the other end to take with [`recv_fd`](Channel::recv_fd).
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a channel without an fd (anonymous, `/dev/zero`),
    /// [`Error::Region`] if sending fails.
    pub fn send_fd(&self, socket: BorrowedFd<'_>) -> Result<(), Error> {
        ringway_region::fdpass::send_fd(socket, self.require_fd()?, b"ringway")?;
        Ok(())
    }

    /// The memfd, for handing to a child; `None` for anonymous and `/dev/zero` channels.
    #[must_use]
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.shared.region.fd()
    }

    fn require_fd(&self) -> Result<BorrowedFd<'_>, Error> {
        self.fd().ok_or_else(|| Error::Unsupported {
            channel: self.shared.name.clone(),
            what: "this channel has no fd: anonymous and /dev/zero channels are shared by fork"
                .to_owned(),
        })
    }

    /// Lets the memfd survive `exec` (clears `FD_CLOEXEC`), so a child started now inherits
    /// it under the number [`fd`](Channel::fd) shows; the child calls
    /// [`from_raw_fd`](Channel::from_raw_fd).
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a channel without an fd, [`Error::Region`] if `fcntl` fails.
    pub fn set_inheritable(&self, yes: bool) -> Result<(), Error> {
        self.require_fd()?;
        self.shared.region.set_inheritable(yes)?;
        Ok(())
    }

    /// How errors name this channel.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.shared.name
    }
}

impl<T: Message> Channel<T> {
    /// Attaches as the sender (in the process that will send).
    ///
    /// # Errors
    /// [`Error::Attach`] if the sender side is taken (SPSC) or full (MPMC).
    pub fn sender(&self) -> Result<Sender<T>, Error> {
        Sender::attach(&self.shared)
    }

    /// Attaches as the receiver (in the process that will receive).
    ///
    /// # Errors
    /// [`Error::Attach`] if the receiver side is taken (SPSC) or full (MPMC).
    pub fn receiver(&self) -> Result<Receiver<T>, Error> {
        Receiver::attach(&self.shared)
    }
}

impl Channel<Bytes> {
    /// Attaches as the sender (in the process that will send).
    ///
    /// # Errors
    /// [`Error::Attach`] if the sender side is taken (SPSC) or full (MPMC).
    pub fn sender(&self) -> Result<ByteSender, Error> {
        ByteSender::attach(&self.shared)
    }

    /// Attaches as the receiver (in the process that will receive).
    ///
    /// # Errors
    /// [`Error::Attach`] if the receiver side is taken (SPSC) or full (MPMC).
    pub fn receiver(&self) -> Result<ByteReceiver, Error> {
        ByteReceiver::attach(&self.shared)
    }
}
