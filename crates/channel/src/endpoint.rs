//! [`Endpoint`]: the part every public endpoint shares, whatever it sends or receives.
//!
//! A public endpoint ([`Sender`](crate::Sender), [`ByteReceiver`](crate::ByteReceiver), ...)
//! is an `Endpoint` over one end of a ring ([`RingEnd`]: [`Tx`], [`Rx`], and any kind added
//! later) plus what its payload needs (a type, a length limit). Creating, opening, attaching,
//! cloning, and the questions about the peer and the channel are written here once; each
//! public type adds its own send or receive path, which takes one [`Wait`](ringway_ring::Wait)
//! and hands it down to the ring's single entry point for that operation.

use std::sync::Arc;

use ringway_ring::{AttachOptions, PeerState};

use crate::error::Error;
use crate::message::MessageType;
use crate::options::{Address, ChannelOptions, Flavour};
use crate::segment::{Membership, Shared};

/// One end of a ring, as the channel layer attaches and questions it.
pub(crate) trait RingEnd: Sized + std::fmt::Debug {
    /// What [`Endpoint::try_clone`] is refused as on a channel with one endpoint of a side.
    const CLONE: &'static str;

    /// Attaches this end to the ring in `shared`.
    fn attach(shared: &Shared, opts: &AttachOptions) -> Result<Self, Error>;

    /// Whether `shared` has room for another endpoint of this end ([`Endpoint::try_clone`]):
    /// only MPMC channels, unless an end says otherwise (a broadcast subscriber).
    fn may_clone(shared: &Shared) -> Result<(), Error> {
        shared.require_mpmc(Self::CLONE)
    }

    /// Whether the other side has gone (probes liveness).
    fn is_disconnected(&self) -> bool;

    /// Whether the other side has attached, is there, or has gone (probes liveness).
    fn peer_state(&self) -> PeerState;

    /// What the ring has in use: bytes (SPSC) or slots (MPMC).
    fn queued(&self) -> u64;

    /// The label the creator stored (read at attach time).
    fn label(&self) -> &str;
}

/// An attached end of a channel: the ring end, this endpoint's share of the segment, and the
/// channel's name for errors.
#[derive(Debug)]
pub(crate) struct Endpoint<E> {
    // Field order is drop order: withdraw a parked async operation, then leave the ring
    // (CLOSED, wake the peer) before the membership may remove the name.
    /// The state of this endpoint's async operations (a parked task, a buffered sink item).
    #[cfg(feature = "async")]
    pub(crate) waiting: crate::future::Waiting,
    pub(crate) ring: E,
    member: Membership,
    /// How errors name the channel, shared with every error that names it.
    pub(crate) name: Arc<str>,
}

impl<E: RingEnd> Endpoint<E> {
    /// Creates the channel `address` for `message` and attaches; a failure leaves nothing.
    pub(crate) fn create(
        address: Address,
        message: MessageType,
        opts: &ChannelOptions,
    ) -> Result<Endpoint<E>, Error> {
        let shared = Shared::create(address.backing(), message, opts)?;
        Endpoint::attach(&shared).inspect_err(|_| shared.abandon())
    }

    /// Opens the channel `address`, waiting up to the open timeout for its creator, checks
    /// that it carries `message`, and attaches.
    pub(crate) fn open(
        address: &Address,
        message: MessageType,
        opts: &ChannelOptions,
    ) -> Result<Endpoint<E>, Error> {
        let shared = Shared::open(address, message, opts)?;
        Endpoint::attach(&shared)
    }

    /// Attaches another endpoint of this end to `shared`.
    pub(crate) fn attach(shared: &Arc<Shared>) -> Result<Endpoint<E>, Error> {
        let ring = E::attach(shared, &shared.attach_options())?;
        Ok(Endpoint {
            #[cfg(feature = "async")]
            waiting: crate::future::Waiting::default(),
            ring,
            member: Membership::join(shared),
            name: Arc::from(shared.name.as_str()),
        })
    }

    /// Another endpoint of the same end (its own registration, so its own crash
    /// accounting); only where the ring has room for more than one.
    pub(crate) fn try_clone(&self) -> Result<Endpoint<E>, Error> {
        E::may_clone(self.shared())?;
        Endpoint::attach(self.shared())
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.member.shared
    }

    /// The options this endpoint was made with.
    pub(crate) fn options(&self) -> &ChannelOptions {
        &self.shared().opts
    }

    pub(crate) fn flavour(&self) -> Flavour {
        self.options().flavour
    }
}

/// The methods every public endpoint has, written once: `channel`, `flavour`,
/// `is_disconnected`, `peer_state`, `try_clone`, and the size getters. The type must have an
/// `ep: Endpoint<_>` field, a `size()` method (see [`crate::capacity::Size`]), and a
/// `with_endpoint(&self, Endpoint<_>) -> Self` method that makes a clone around a new one.
macro_rules! endpoint_methods {
    ($peer:literal) => {
        /// The channel, as errors name it (e.g. `POSIX shm "/ticks"`).
        #[must_use]
        pub fn channel(&self) -> &str {
            &self.ep.name
        }

        /// The channel's flavour.
        #[must_use]
        pub fn flavour(&self) -> $crate::Flavour {
            self.ep.flavour()
        }

        #[doc = concat!("Whether every ", $peer, " has dropped its end or died (probes liveness: not")]
        /// for a hot loop).
        #[must_use]
        pub fn is_disconnected(&self) -> bool {
            $crate::endpoint::RingEnd::is_disconnected(&self.ep.ring)
        }

        #[doc = concat!("Whether a ", $peer, " has attached yet, is attached and alive, or has gone")]
        /// (probes liveness: not for a hot loop). Useful to keep a process alive until its
        /// peer has connected.
        #[must_use]
        pub fn peer_state(&self) -> $crate::PeerState {
            $crate::endpoint::RingEnd::peer_state(&self.ep.ring)
        }

        /// Another endpoint like this one on the same MPMC channel (its own registration, so
        /// its own crash accounting).
        ///
        /// # Errors
        /// [`Error::Unsupported`](crate::Error::Unsupported) for an SPSC channel,
        /// [`Error::Attach`](crate::Error::Attach) if this side's table is full.
        pub fn try_clone(&self) -> Result<Self, $crate::Error> {
            self.ep.try_clone().map(|ep| self.with_endpoint(ep))
        }

        $crate::capacity::size_getters!();
    };
}
pub(crate) use endpoint_methods;
