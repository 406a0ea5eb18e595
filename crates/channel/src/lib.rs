//! Typed and byte channels between processes, over lock-free rings in shared memory: no
//! system call on the fast path, zero-copy when you want it, blocking and timed calls, and
//! the other side's disconnect or crash reported instead of a hang.
//!
//! Send a struct from one process to another:
//!
//! ```
//! use ringway_channel::{ChannelOptions, Receiver, Sender};
//!
//! #[derive(ringway_channel::Message)]
//! #[repr(C)]
//! struct Tick { price: f64, qty: u32, venue: u32 }
//!
//! # let name = format!("/ringway-doc-lib-{}", std::process::id());
//! // Process A:
//! let mut tx = Sender::<Tick>::create(&name, &ChannelOptions::new())?;
//! // Process B (started before or after A: open waits for the creator):
//! let mut rx = Receiver::<Tick>::open(&name, &ChannelOptions::new())?;
//!
//! tx.send(Tick { price: 101.25, qty: 300, venue: 7 })?;
//! assert_eq!(rx.recv()?.qty, 300);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - [`Sender`] / [`Receiver`]: fixed-size plain data (`T:` [`Message`](trait@Message), so every
//!   bit pattern the other process writes is a valid `T`), with in-place [`Loan`] and
//!   [`RecvRef`]. `#[derive(Message)]` checks that at compile time and identifies the type by
//!   its layout, so separately built programs that declare it alike share a channel; a
//!   [`bytemuck::Pod`] type without the derive is identified by its name (the same program on
//!   both sides, or the same [`ChannelOptions::type_name`]).
//! - [`ByteSender`] / [`ByteReceiver`]: variable-size `&[u8]` messages, with in-place
//!   [`ByteLoan`] and [`ByteRef`]; with the `serde` feature, `send_serialized` and
//!   `recv_deserialized` (postcard) on channels opened for one serialized type.
//! - Endpoints **by name** ([`Address`]: POSIX shm, System V key, file): `create` in one
//!   process, `open` in another, in either order. **By inheritance** or **fd passing**:
//!   [`Channel`] (anonymous or `/dev/zero` across `fork`, a sealed memfd across `exec` or over a
//!   Unix socket); each process takes its end after the split.
//! - **Broadcast**: [`Publisher`] / [`Subscriber`] (typed) and [`BytePublisher`] /
//!   [`ByteSubscriber`]: one publisher, up to [`ChannelOptions::max_readers`] subscriber
//!   processes (32 by default), each receiving every message; the publisher waits for the
//!   slowest live subscriber or overwrites ([`Policy`]), and a lapped subscriber gets
//!   [`RecvError::Lagged`] with the number it missed; late subscribers can start with the
//!   newest [`history`](ChannelOptions::history) messages. Zero-copy reads
//!   ([`BroadcastRef`], [`BroadcastByteRef`]) are checked for overwrites after the copy, and
//!   a subscriber's process maps the messages read-only. By name, or by inheritance and fd
//!   passing through [`BroadcastChannel`].
//! - **Services**: [`Server`] / [`Client`] (typed) and [`ByteServer`] / [`ByteClient`]:
//!   request and response between processes, each client with a session of its own handed
//!   out under the service's name, many clients served from one server thread, client and
//!   server deaths and restarts handled ([`ServiceOptions`], [`ServiceError`], [`CallError`],
//!   [`ServeError`]).
//! - [`ChannelOptions`]: capacity, [`Flavour`] (SPSC by default, or MPMC for many sender and
//!   receiver processes), [`WaitStrategy`] per endpoint (busy-spin, spin-then-park, park),
//!   open timeout, crash-detection interval, permissions and paging.
//! - **Batches**: [`Sender::send_batch`] / [`ByteSender::send_batch`] publish many messages
//!   with one store and one wake check, [`Receiver::recv_batch`] /
//!   [`ByteReceiver::recv_batch`] (into a reusable [`ByteBatch`]) take every message that is
//!   ready in one call.
//! - [`Select`]: wait for the first of many receivers and senders, across processes, in one
//!   sleep (`futex_waitv`); it holds owned readiness handles, so the endpoints stay usable.
//! - Async (feature `tokio`, or `async`: the same, runtime-agnostic): `recv_async`,
//!   `recv_ref_async`, `send_async`, `poll_recv`/`poll_send`, `futures::Stream` for receivers and
//!   `futures::Sink` for senders, and the receiving calls and `Stream` for broadcast
//!   subscribers; no system call while the peer keeps up, a parked task woken by a per-process
//!   waker thread (`futex_waitv` over every parked ring).
//! - Errors: [`Error`] (setting up), [`SendError`] (hands the value back), [`RecvError`].
//!
//! Each call waits the way its name says: `send`/`recv` block (while the other side is alive),
//! `try_send`/`try_recv` never block, `send_timeout`/`recv_timeout` block up to a deadline.
//! Dropping an endpoint closes its side and wakes the other, which drains what was sent and
//! then gets `Disconnected`; a process that dies (even by `kill -9`) is detected the same way
//! within the liveness interval (50 ms by default), by blocking and polling calls alike. A
//! named channel's name is removed when its last endpoint in any process drops.
//!
//! # Safety model
//!
//! The process on the other side of a channel is not trusted: it may be buggy, crashed
//! mid-write, or hostile, and it can write any byte of the shared memory at any time.
//!
//! - **It cannot** make this process crash, panic, or read or write out of bounds through the
//!   safe API, nor make a call with a deadline (`*_timeout`, `try_*`) outlast it. Every
//!   index and length read from shared memory is checked against the geometry this process
//!   recorded when it attached; a violation is [`RecvError::Corrupted`] / [`SendError::Corrupted`]. A typed
//!   message must be exactly `size_of::<T>()` bytes, and `T: Pod` means any bytes are a
//!   valid `T`. Values are copied out of shared memory (`recv`, [`RecvRef::get`]); references
//!   into it exist only behind `unsafe` methods ([`RecvRef::as_ref`],
//!   [`ByteRef::as_slice`], [`Loan::as_mut`]) whose contract is to trust the peer.
//! - **It can** garble, drop or withhold its own messages, send a type-correct lie, fill the
//!   channel, or stall it. It can fake a live registration (pid 1 with init's start time), so
//!   a call without a deadline (`send`, `recv`) may wait for ever on a hostile peer: with
//!   peers you do not trust, use `send_timeout`/`recv_timeout`.
//! - **Undefined behaviour**: payloads are copied with plain memory copies while a hostile
//!   peer could write the same bytes; every byte pattern is valid, but the Rust memory model
//!   does not yet define such a race with another process (see `docs/guarantees.md`,
//!   *Undefined behaviour*, for exactly what is and is not promised).
//! - **Opening** checks the message type (size, alignment, and the layout's fingerprint for a
//!   derived type, the name's for another) and flavour recorded by the creator, so two
//!   programs that disagree get [`Error::TypeMismatch`] naming both types (and the first
//!   field that differs), not garbage.
//! - **Permissions**: named channels are created `0600` (only the same user can open them)
//!   and exclusively (a name someone else created first is an error, never adopted).
//! - **Truncation**: a peer that can truncate a POSIX shm object or a file under the mapping
//!   does not kill this process (the region maps private zeros over lost pages), but the data
//!   is lost for both sides: a message that touched a lost page is never delivered or sent as
//!   `Ok`, and both ends report `Corrupted` within the liveness interval. A sealed memfd
//!   ([`Channel::memfd`]) rules truncation out.
//!
//! # Feature flags
//!
//! (docs.rs builds these docs with every feature; so does CI.)
//!
//! - `tokio` (or `async`, the same thing): the async calls, `Stream` and `Sink` (see
//!   `docs/design.md`, *Async*). Copy this into a tokio program:
//!
//! ```
//! use ringway_channel::{ChannelOptions, Receiver, RecvError, Sender};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! #   let name = format!("/ringway-doc-tokio-{}", std::process::id());
//! #   let name = name.as_str();
//!     // Process A (`name` is a POSIX shm name such as "/prices"):
//!     let mut tx = Sender::<u64>::create(name, &ChannelOptions::new())?;
//!     // Process B, here a task (either process may be blocking instead):
//!     let mut rx = Receiver::<u64>::open(name, &ChannelOptions::new())?;
//!     let consumer = tokio::spawn(async move {
//!         let mut sum = 0;
//!         loop {
//!             tokio::select! {
//!                 got = rx.recv_async() => match got {
//!                     Ok(price) => sum += price,
//!                     Err(RecvError::Disconnected) => return sum, // every sender left
//!                     Err(e) => panic!("{e}"),
//!                 },
//!                 // Cancel safe: a message is never lost to the other branch.
//!                 _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
//!             }
//!         }
//!     });
//!     for price in 1..=100 {
//!         tx.send_async(price).await?;
//!     }
//!     drop(tx);
//!     assert_eq!(consumer.await?, 5050);
//!     Ok(())
//! }
//! ```
#![cfg_attr(
    feature = "serde",
    doc = "- `serde`: [`ChannelOptions::serialized`], [`ByteSender::send_serialized`] and \
           [`ByteReceiver::recv_deserialized`] (with `try_` and `_timeout` variants), with \
           postcard, for messages that are not plain data; the serialized type is recorded \
           and checked like a typed channel's."
)]
#![cfg_attr(
    not(feature = "serde"),
    doc = "- `serde`: `ChannelOptions::serialized`, `ByteSender::send_serialized` and \
           `ByteReceiver::recv_deserialized` (with `try_` and `_timeout` variants), with \
           postcard, for messages that are not plain data; the serialized type is recorded \
           and checked like a typed channel's. (Not enabled in this build of the docs.)"
)]

mod batch;
mod broadcast;
mod bytes;
mod capacity;
mod channel;
mod endpoint;
mod error;
#[cfg(feature = "async")]
mod future;
mod liveness;
mod message;
mod options;
mod raw;
mod receiver;
mod segment;
mod select;
mod sender;
#[cfg(feature = "serde")]
mod serde;
mod service;
mod shape;
mod signature;
#[cfg(feature = "async")]
mod stream;
mod takeover;

pub use batch::ByteBatch;
pub use broadcast::{
    BroadcastByteRef, BroadcastChannel, BroadcastRef, BytePublisher, ByteSubscriber, Publisher,
    Subscriber,
};
/// bytemuck, whose [`Pod`] types are [`Message`](trait@Message)s by name. Its derives need
/// `bytemuck` as a dependency of your own; `#[derive(Message)]` needs nothing else.
pub use bytemuck::{self, Pod, Zeroable};
pub use bytes::{ByteIter, ByteLoan, ByteReceiver, ByteRef, ByteSender};
pub use channel::{ByteChannel, Bytes, Channel, Payload};
pub use error::{Error, RecvError, SendError};
pub use message::MessageType;
pub use options::{Address, ChannelOptions, Flavour};
pub use receiver::{IntoIter, Iter, Receiver, RecvRef, TryIter};
/// Derives [`Message`](trait@Message): see the trait for what it checks and the options.
pub use ringway_derive::Message;
pub use ringway_region::{Backing, HugePages};
pub use ringway_ring::{Corruption, Interrupt, PeerState, Policy, WaitStrategy};
pub use select::{FALLBACK_SLICE, Select, SelectError, SelectRecv, SelectSend, Selected, Watch};
pub use sender::{Loan, Sender};
#[cfg(feature = "serde")]
pub use serde::SerdeError;
pub use service::{
    ByteClient, ByteServer, CallError, Client, ReplyTo, Request, ServeError, Server, ServiceError,
    ServiceInfo, ServiceOptions, SessionInfo, Ticket, WorkerInfo, inspect_service,
};

/// How the endpoints of a channel over `region` judge each other alive or dead, for tools
/// that inspect a segment without attaching (`ringway ls`, `stat`, `clean`): locks held by
/// every endpoint on the segment's fd, read through it (see `docs/layout.md`, *Liveness*), so
/// a party in another pid namespace is judged like the endpoints judge it; the pid alone for
/// System V segments.
#[must_use]
pub fn party_liveness(
    region: &ringway_region::Region,
) -> std::sync::Arc<dyn ringway_ring::Liveness> {
    liveness::for_fd(region.fd()).unwrap_or_else(|_| std::sync::Arc::new(ringway_ring::PidLiveness))
}

pub use shape::{Message, MessageField};

/// What `#[derive(Message)]` expands to names; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::shape::{Field, Prim, Shape};
}
