//! Request-response services: [`Server::bind`] a name, [`Client::connect`] to it from any
//! number of processes, and every client gets a session of its own (a request ring and a
//! reply ring) from a rendezvous segment under the service's name.
//!
//! - [`Server`] / [`Client`]: typed requests and replies (`Req`, `Rep`:
//!   [`Message`](trait@crate::Message)); [`ByteServer`] / [`ByteClient`]: `&[u8]`.
//! - A client [`call`](Client::call)s (send, then wait for the reply, within one deadline),
//!   or [`send`](Client::send)s several requests and [`recv`](Client::recv)s the replies.
//! - The server [`recv`](Server::recv)s the next request from any session (one thread serves
//!   every client, sleeping on one doorbell when all are idle) and
//!   [`reply`](Server::reply)s through the [`ReplyTo`] that came with it, which routes the
//!   reply to the client that asked; or [`serve`](Server::serve)s with a closure.
//! - [`ServiceOptions`]: sessions, requests in flight, message sizes, timeouts, interrupt.
//! - Errors: [`ServiceError`] (bind, connect), [`CallError`], [`ServeError`].
//!
//! - Worker processes: the first [`bind`](Server::bind)s the name, up to
//!   seven more [`join`](Server::join) it; each serves the sessions it granted, clients do
//!   not know which one serves them. The service lives while any worker does.
//!
//! A client that leaves or dies gives its session back within the liveness interval; a
//! worker that leaves or dies is seen by the clients it served as
//! [`CallError::Disconnected`], and [`reconnect`](Client::reconnect) gets a session from a
//! live worker (or, once every worker is gone, from the next server bound to the name).
//! Delivery is at most once: a request answered is answered once, to the client that asked
//! (see `docs/guarantees.md`, *Services*). The design is in `docs/design.md`, *Services*.
//!
//! The examples are on [`Server`] and [`ByteServer`], and in `examples/kv.rs`.

mod bytes;
mod client;
mod doorbell;
mod error;
mod info;
pub(crate) mod layout;
mod options;
mod segment;
mod server;
mod typed;
mod wire;
mod workers;

use std::time::{Duration, Instant};

pub use bytes::{ByteClient, ByteServer};
pub use error::{CallError, ServeError, ServiceError};
pub use info::{ServiceInfo, SessionInfo, WorkerInfo, inspect_service};
pub use options::ServiceOptions;
pub(crate) use segment::{is_service, judge};
pub use typed::{Client, Server};

use crate::error::Error;
use crate::message::MessageType;
use crate::options::Address;
use crate::shape::Message;
use segment::{OpenFailure, Rings, Segment};
use server::ServerCore;
use workers::{JoinFailure, Worker};

/// Where a reply goes: the session and the request it answers. It comes with each request
/// and is used up by the reply, so a request is answered at most once. A reply through a
/// `ReplyTo` whose client has gone is dropped ([`ServeError::Gone`]).
#[derive(Debug, PartialEq, Eq)]
pub struct ReplyTo {
    slot: u32,
    generation: u32,
    id: u64,
}

impl ReplyTo {
    /// The session (slot) the request came from.
    #[must_use]
    pub fn session(&self) -> u32 {
        self.slot
    }

    /// The request's id within its session (0, 1, 2, ... from each connect).
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// A received request and where its reply goes.
#[derive(Debug)]
pub struct Request<T> {
    value: T,
    to: ReplyTo,
}

impl<T> Request<T> {
    /// The request.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// The request and where its reply goes, for [`Server::reply`].
    pub fn into_parts(self) -> (T, ReplyTo) {
        (self.value, self.to)
    }
}

/// A request sent with [`Client::send`]; the reply to it comes back with the same ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(u64);

impl Ticket {
    /// The request's id within its session.
    #[must_use]
    pub fn id(self) -> u64 {
        self.0
    }
}

/// The rings of every session for these messages: `size` is `Some(size_of::<T>())` for a
/// typed side, `None` for bytes (then `max` bytes).
fn rings(
    request: (&MessageType, Option<usize>),
    reply: (&MessageType, Option<usize>),
    opts: &ServiceOptions,
    name: &str,
) -> Result<(Rings, usize, usize), ServiceError> {
    let one = |(message, size): (&MessageType, Option<usize>), max: usize| {
        let base = opts.channel.clone().capacity(opts.in_flight);
        let plan = match size {
            Some(size) => crate::capacity::plan(Some((wire::LEN + size) as u64), &base, name)?,
            None => crate::capacity::plan(None, &base.max_message(wire::LEN + max), name)?,
        };
        let label = plan.label(message.label());
        let config = plan.config.fingerprint(message.fingerprint).label(&label);
        Ok::<_, ServiceError>((config, size.unwrap_or(max)))
    };
    let (request, max_request) = one(request, opts.max_request)?;
    let (reply, max_reply) = one(reply, opts.max_reply)?;
    Ok((Rings { request, reply }, max_request, max_reply))
}

fn bind_core(
    address: Address,
    opts: &ServiceOptions,
    request: (&MessageType, Option<usize>),
    reply: (&MessageType, Option<usize>),
) -> Result<ServerCore, ServiceError> {
    let (rings, max_request, max_reply) = rings(request, reply, opts, &address.to_string())?;
    let (seg, worker) = Segment::create(&address, opts, &rings, max_request, max_reply)?;
    Ok(ServerCore::new(seg, worker, rings, opts))
}

/// Joins the live service `address` as one more worker process: opens it (waiting up to the
/// open timeout for a live worker), checks that these options and types make the segment's
/// shape and the rings' message types, and registers in the worker table.
fn join_core(
    address: Address,
    opts: &ServiceOptions,
    request: (&MessageType, Option<usize>),
    reply: (&MessageType, Option<usize>),
) -> Result<ServerCore, ServiceError> {
    let name = address.to_string();
    let (rings, max_request, max_reply) = rings(request, reply, opts, &name)?;
    let start = Instant::now();
    let deadline = start + opts.channel.open_timeout;
    let mut last = "nothing under this name";
    let mut pause = Duration::from_micros(200);
    loop {
        let seg = match Segment::open(&address, opts, deadline) {
            Ok(seg) => seg,
            Err(OpenFailure::Timeout) => break,
            Err(OpenFailure::Interrupted) => {
                return Err(ServiceError::Interrupted { service: name });
            }
            Err(OpenFailure::Error(e)) => return Err(e),
        };
        check_shape(
            &seg,
            &rings,
            (max_request, max_reply),
            (request.0, reply.0),
            opts,
        )?;
        match Worker::join(&seg) {
            Ok(worker) => return Ok(ServerCore::new(seg, worker, rings, opts)),
            Err(JoinFailure::Full) => {
                return Err(ServiceError::TooManyWorkers {
                    service: name,
                    max: layout::MAX_WORKERS,
                });
            }
            Err(JoinFailure::Unsupported(what)) => {
                return Err(Error::Unsupported {
                    channel: name,
                    what,
                }
                .into());
            }
            Err(JoinFailure::Gone(why)) => last = why,
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let nap = pause.min(left);
        pause = (pause * 2).min(Duration::from_millis(20));
        match &opts.channel.interrupt {
            Some(stop) if stop.sleep(nap) => {
                return Err(ServiceError::Interrupted { service: name });
            }
            Some(_) => {}
            None => std::thread::sleep(nap),
        }
    }
    Err(ServiceError::NoServer {
        service: name,
        waited: start.elapsed(),
        last: last.to_owned(),
    })
}

/// Whether a joining worker's options and types make the segment it found: the same
/// geometry and message limits (so the rings it re-makes when it frees a slot are the ones
/// clients expect), and the message types recorded in the rings.
fn check_shape(
    seg: &Segment,
    rings: &Rings,
    (max_request, max_reply): (usize, usize),
    (request, reply): (&MessageType, &MessageType),
    opts: &ServiceOptions,
) -> Result<(), ServiceError> {
    let config_error = |source| Error::Config {
        channel: seg.name.to_string(),
        source,
    };
    let ours = layout::Geometry::new(
        opts.sessions,
        rings.request.required_len().map_err(config_error)? as u64,
        rings.reply.required_len().map_err(config_error)? as u64,
    );
    if ours != Some(seg.geometry) || (max_request, max_reply) != (seg.max_request, seg.max_reply) {
        let g = &seg.geometry;
        return Err(ServiceError::Incompatible {
            service: seg.name.to_string(),
            what: format!(
                "it has {} sessions, rings of {} and {} bytes and messages of up to {} and {}                  bytes, which these options do not make ({ours:?}, messages of up to                  {max_request} and {max_reply} bytes); a worker joins with the                  ServiceOptions the service was bound with",
                g.sessions, g.request_len, g.reply_len, seg.max_request, seg.max_reply
            ),
        });
    }
    // The types, as the rings of the first slot that reads as one record them (a client may
    // have scribbled its own slot).
    for slot in 0..seg.geometry.sessions {
        let recorded = [false, true].map(|reply| {
            let memory = seg.ring_memory(slot, reply).ok()?;
            ringway_ring::inspect_with(&memory, &*seg.ring_liveness(slot, reply)).ok()
        });
        let [Some(req), Some(rep)] = recorded else {
            continue;
        };
        for (ours, info) in [(request, req), (reply, rep)] {
            let theirs = MessageType::recorded(info.fingerprint, &info.label);
            if !ours.matches(&theirs) {
                return Err(Error::TypeMismatch {
                    channel: seg.name.to_string(),
                    ours: Box::new(ours.clone()),
                    theirs: Box::new(theirs),
                }
                .into());
            }
        }
        return Ok(());
    }
    Err(ServiceError::Incompatible {
        service: seg.name.to_string(),
        what: "none of its rings reads as a ring".to_owned(),
    })
}

fn write_value<T: Message>(value: T) -> impl FnOnce(&mut ringway_ring::spsc::Grant<'_>) {
    move |grant| {
        let ptr = grant.as_mut_ptr();
        // SAFETY: the grant holds the 16-byte header and then size_of::<T>() writable bytes;
        // write_unaligned needs no alignment, and the write goes through a raw pointer.
        unsafe { ptr.add(wire::LEN).cast::<T>().write_unaligned(value) };
    }
}
