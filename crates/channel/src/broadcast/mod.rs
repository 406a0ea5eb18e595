//! Broadcast channels: one publisher, many subscribers, and every subscriber receives every
//! message ([`Publisher`]/[`Subscriber`] for a [`Message`](crate::Message) type,
//! [`BytePublisher`]/[`ByteSubscriber`] for bytes, [`BroadcastChannel`] to share one by
//! inheritance or fd passing).
//!
//! The ring is `ringway_ring::broadcast`; this module is what the channel layer adds: the
//! [`RingEnd`] impls that let [`Endpoint`](crate::endpoint::Endpoint) create, open and
//! attach its two ends (so naming, membership, takeover, liveness and cleanup are the ones
//! every other channel has), the message-type and length checks, and the read-only mapping of
//! the data area in subscriber processes (`guard`).
//!
//! The kind of ring is decided by the endpoint type, never by an option: publishers and
//! subscribers build their [`ChannelOptions`](crate::ChannelOptions) with
//! `for_broadcast`, so a broadcast channel is made only by them, they attach only to
//! broadcast rings, and senders and receivers refuse broadcast rings (`Shared::adopt` and the
//! [`RingEnd`] impls check it both ways, with an error that names the endpoint to use).

mod bytes;
mod channel;
#[cfg(feature = "async")]
mod future;
mod guard;
mod typed;

pub use bytes::{BroadcastByteRef, BytePublisher, ByteSubscriber};
pub use channel::BroadcastChannel;
pub(crate) use guard::DataGuard;
pub use typed::{BroadcastRef, Publisher, Subscriber};

use ringway_ring::broadcast::{Reader, Writer};
use ringway_ring::{AttachOptions, PeerState, RingKind};

use crate::endpoint::RingEnd;
use crate::error::Error;
use crate::segment::Shared;

/// Refuses a point-to-point ring for a broadcast end.
fn require_broadcast(shared: &Shared) -> Result<(), Error> {
    match shared.geometry.kind {
        RingKind::Broadcast => Ok(()),
        _ => Err(shared.not_broadcast()),
    }
}

impl RingEnd for Writer {
    const CLONE: &'static str = "clone a publisher";

    fn attach(shared: &Shared, opts: &AttachOptions) -> Result<Writer, Error> {
        require_broadcast(shared)?;
        // Before the writer can write anything: this process's view of the data area must be
        // writable again if a subscriber protected it through the same mapping.
        guard::writer_joins(shared)?;
        Writer::attach(&shared.memory, opts).map_err(|e| Error::attach(&shared.name, e))
    }

    fn may_clone(shared: &Shared) -> Result<(), Error> {
        Err(Error::Unsupported {
            channel: shared.name.clone(),
            what: "cannot clone a publisher: a broadcast channel has one publisher at a time"
                .to_owned(),
        })
    }

    fn is_disconnected(&self) -> bool {
        self.peer_state().is_disconnected()
    }

    fn peer_state(&self) -> PeerState {
        Writer::peer_state(self)
    }

    /// The writer does not track its readers' cursors on its fast path: nothing it can count
    /// cheaply is "queued" (a subscriber reports its own backlog).
    fn queued(&self) -> u64 {
        0
    }

    fn label(&self) -> &str {
        &self.identity().label
    }
}

impl RingEnd for Reader {
    const CLONE: &'static str = "clone a subscriber";

    fn attach(shared: &Shared, opts: &AttachOptions) -> Result<Reader, Error> {
        require_broadcast(shared)?;
        let reader =
            Reader::attach(&shared.memory, opts).map_err(|e| Error::attach(&shared.name, e))?;
        guard::reader_joins(shared, &reader);
        Ok(reader)
    }

    /// Every subscriber is its own reader: any broadcast channel has room for more, up to
    /// its `max_readers`.
    fn may_clone(shared: &Shared) -> Result<(), Error> {
        require_broadcast(shared)
    }

    fn is_disconnected(&self) -> bool {
        Reader::is_disconnected(self)
    }

    fn peer_state(&self) -> PeerState {
        Reader::peer_state(self)
    }

    fn queued(&self) -> u64 {
        self.pending()
    }

    fn label(&self) -> &str {
        &self.identity().label
    }
}

/// The methods both ends of every broadcast channel have: `channel`, `is_disconnected`,
/// `peer_state`, `policy`, `history`, and the size getters that mean the same on both sides.
/// The type must have an `ep: Endpoint<_>` field and a `size()` method.
macro_rules! broadcast_methods {
    ($peer:literal) => {
        /// The channel, as errors name it (e.g. `POSIX shm "/ticks"`).
        #[must_use]
        pub fn channel(&self) -> &str {
            &self.ep.name
        }

        #[doc = concat!("Whether every ", $peer, " has dropped its end or died (probes liveness: not")]
        /// for a hot loop).
        #[must_use]
        pub fn is_disconnected(&self) -> bool {
            $crate::endpoint::RingEnd::is_disconnected(&self.ep.ring)
        }

        #[doc = concat!("Whether a ", $peer, " has attached yet, is attached and alive, or has gone")]
        /// (probes liveness: not for a hot loop).
        #[must_use]
        pub fn peer_state(&self) -> $crate::PeerState {
            $crate::endpoint::RingEnd::peer_state(&self.ep.ring)
        }

        /// What the publisher does when the slowest subscriber is a whole channel behind
        /// (set by the creator).
        #[must_use]
        pub fn policy(&self) -> $crate::Policy {
            self.ep.shared().geometry.policy
        }

        /// How many of the newest messages a subscriber that attaches late starts with (set
        /// by the creator).
        #[must_use]
        pub fn history(&self) -> u32 {
            self.ep.shared().geometry.history
        }

        /// How many messages the channel holds: what
        /// [`ChannelOptions::capacity`](crate::ChannelOptions::capacity) asked for, rounded up
        /// to a power of two (and above the history).
        #[must_use]
        pub fn capacity(&self) -> usize {
            self.size().capacity
        }

        /// Bytes of shared memory the channel takes (what it costs in `/dev/shm`).
        #[must_use]
        pub fn capacity_bytes(&self) -> usize {
            self.ep.shared().region.len()
        }

        /// The largest message, in bytes (`size_of::<T>()` for a typed channel).
        #[must_use]
        pub fn max_message(&self) -> usize {
            self.size().max_message
        }
    };
}
pub(crate) use broadcast_methods;
