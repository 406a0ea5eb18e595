//! Carry ringway channels beyond one host: a bridge between local ringway channels and
//! [Zenoh](https://zenoh.io) key expressions. Programs keep talking to a ringway channel;
//! a bridge process on each host carries the messages over the network.
//!
//! ```text
//!  host A                                          host B
//!  producer -> /ticks -> bridge A ==== Zenoh ====> bridge B -> /ticks -> consumer
//!             (ring)     out route   (TCP, peer)   in route     (ring)
//! ```
//!
//! - [`BridgeConfig`]: the Zenoh session (peer or client, endpoints to listen on and
//!   connect to; no multicast scouting) and the [`Route`]s, from flags or from a small file
//!   ([`BridgeConfig::from_file`]).
//! - [`Bridge::start`]: one thread per route. An **out** route reads a local channel and
//!   publishes each message; an **in** route subscribes and sends each sample into a local
//!   channel. [`Bridge::start_with`] and [`MessageKind::of`] carry typed channels.
//! - [`Delivery::Reliable`] (the default): Zenoh reliable, congestion control *block*; a
//!   full channel on the far side stops the near bridge reading its ring, so the local sender
//!   sees a full channel, never a silent drop. [`Delivery::Lossy`]: congestion control
//!   *drop*, and the receiving bridge counts what was lost.
//! - Every sample carries a stamp in its attachment: the publishing route's stream, a
//!   sequence number, and the message type's [`Fingerprint`]. The receiving bridge reports a
//!   gap, refuses an old number (nothing is delivered twice or out of order) and refuses a
//!   sample of another type ([`BridgeError::TypeMismatch`]).
//! - [`StatusSnapshot`]: messages, bytes, gaps, drops, refusals, peers; printed every
//!   `status_interval`, written to `status_file`.
//!
//! `docs/beyond-one-host.md` gives the deployment, the semantics (what a crash loses, and
//! the bound) and the figures.
//!
//! # Example
//!
//! ```no_run
//! use ringway_bridge::{Bridge, BridgeConfig, Direction, Route};
//!
//! let mut config = BridgeConfig::default();
//! config.listen.push("tcp/10.0.0.1:7447".into());
//! config.routes.push(Route::parse(Direction::Out, "/ticks=ringway/ticks")?);
//! let bridge = Bridge::start(&config)?;
//! // ... until it is time to stop:
//! bridge.stop()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Safety model
//!
//! The far side is not trusted more than a local peer: a sample without a valid stamp is
//! refused, a typed sample must have the route's fingerprint and exactly one message's
//! length, and typed messages are written into the channel as bytes (any bytes are a valid
//! [`Message`](ringway_channel::Message)). The local channel keeps ringway's own checks.
//!
//! # Feature flags
//!
//! None. Zenoh is built with its TCP transport only.

mod bridge;
mod config;
mod error;
mod inbound;
mod local;
mod outbound;
pub mod session;
mod status;
mod wire;

pub use bridge::{Bridge, MessageKind};
pub use config::{BridgeConfig, Delivery, Direction, Route, SessionMode};
pub use error::BridgeError;
pub use status::{RouteSnapshot, RouteStatus, Status, StatusSnapshot};
pub use wire::Fingerprint;
