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
//! A client that leaves or dies gives its session back within the liveness interval; a
//! server that leaves or dies is seen by its clients as [`CallError::Disconnected`], and
//! [`reconnect`](Client::reconnect) finds the next server bound to the name. Delivery is at
//! most once: a request answered is answered once, to the client that asked (see
//! `docs/guarantees.md`, *Services*). The design is in `docs/design.md`, *Services*.
//!
//! The examples are on [`Server`] and [`ByteServer`], and in `examples/kv.rs`.

mod client;
mod doorbell;
mod error;
mod info;
pub(crate) mod layout;
mod options;
mod segment;
mod server;
mod wire;

use std::marker::PhantomData;
use std::time::Duration;

use ringway_ring::Wait;

pub use error::{CallError, ServeError, ServiceError};
pub use info::{ServiceInfo, SessionInfo, inspect_service};
pub use options::ServiceOptions;
pub(crate) use segment::{is_service, judge};

use crate::message::MessageType;
use crate::options::Address;
use crate::shape::Message;
use client::ClientCore;
use segment::{Rings, Segment};
use server::ServerCore;

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
    let (seg, token) = Segment::create(&address, opts, &rings, max_request, max_reply)?;
    Ok(ServerCore::new(seg, token, rings, opts))
}

/// The server of a typed service: receives `Req`s from every connected client and replies
/// `Rep`s to the one that asked.
///
/// # Examples
///
/// ```
/// use ringway_channel::{Client, Server, ServiceOptions};
/// # let name = format!("/ringway-doc-service-{}", std::process::id());
/// let opts = ServiceOptions::new().sessions(4);
/// // Process A (here a thread): doubles numbers.
/// let mut server = Server::<u64, u64>::bind(&name, &opts)?;
/// let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
/// let done = stop.clone();
/// let thread = std::thread::spawn(move || {
///     while !done.load(std::sync::atomic::Ordering::Relaxed) {
///         if let Ok(req) = server.recv_timeout(std::time::Duration::from_millis(10)) {
///             let (n, to) = req.into_parts();
///             let _ = server.reply(to, 2 * n);
///         }
///     }
/// });
/// // Process B:
/// let mut client = Client::<u64, u64>::connect(&name, &opts)?;
/// assert_eq!(client.call(21)?, 42);
/// drop(client);
/// stop.store(true, std::sync::atomic::Ordering::Relaxed);
/// thread.join().unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `examples/kv.rs` is a complete key-value service with 8 client processes.
#[derive(Debug)]
pub struct Server<Req, Rep> {
    core: ServerCore,
    buf: Vec<u8>,
    _types: PhantomData<fn(Req) -> Rep>,
}

impl<Req: Message, Rep: Message> Server<Req, Rep> {
    /// Creates the service `address` (taking over a name whose server died) with
    /// [`sessions`](ServiceOptions::sessions) sessions.
    ///
    /// # Errors
    /// [`ServiceError::Channel`] with the channel error of a failed create (the name is in
    /// use by a live server, no room, bad options).
    pub fn bind(address: impl Into<Address>, opts: &ServiceOptions) -> Result<Self, ServiceError> {
        let request = MessageType::of::<Req>(None);
        let reply = MessageType::of::<Rep>(None);
        let core = bind_core(
            address.into(),
            opts,
            (&request, Some(core::mem::size_of::<Req>())),
            (&reply, Some(core::mem::size_of::<Rep>())),
        )?;
        Ok(Server {
            core,
            buf: Vec::new(),
            _types: PhantomData,
        })
    }

    /// Receives the next request from any client, waiting as long as it takes.
    ///
    /// # Errors
    /// [`ServeError::Interrupted`] if the options' interrupt is raised.
    pub fn recv(&mut self) -> Result<Request<Req>, ServeError> {
        self.recv_with(Wait::Forever)
    }

    /// Receives a request if one is there now.
    ///
    /// # Errors
    /// [`ServeError::Empty`].
    pub fn try_recv(&mut self) -> Result<Request<Req>, ServeError> {
        self.recv_with(Wait::Try)
    }

    /// Receives the next request, waiting up to `timeout`.
    ///
    /// # Errors
    /// [`ServeError::Timeout`], [`ServeError::Interrupted`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Request<Req>, ServeError> {
        self.recv_with(Wait::For(timeout))
    }

    fn recv_with(&mut self, wait: Wait) -> Result<Request<Req>, ServeError> {
        let wait = match wait {
            Wait::For(d) => std::time::Instant::now()
                .checked_add(d)
                .map_or(Wait::Forever, Wait::Until),
            other => other,
        };
        loop {
            let to = self.core.recv_with(&mut self.buf, wait)?;
            if self.buf.len() != core::mem::size_of::<Req>() {
                // Not a `Req`: a buggy or hostile client, whose session ends.
                self.core.reject(&to);
                continue;
            }
            // SAFETY: `buf` holds exactly size_of::<Req>() initialised bytes; read_unaligned
            // needs no alignment; `Req: Message` makes any bytes a valid `Req`.
            let value = unsafe { self.buf.as_ptr().cast::<Req>().read_unaligned() };
            return Ok(Request { value, to });
        }
    }

    /// Replies to the request `to` came with, waiting for room as long as its client is
    /// alive (a client that only `call`s always has room).
    ///
    /// # Errors
    /// [`ServeError::Gone`] if the client left, died or lost its session (the reply is
    /// dropped); [`ServeError::Interrupted`].
    pub fn reply(&mut self, to: ReplyTo, reply: Rep) -> Result<(), ServeError> {
        self.reply_with(to, reply, Wait::Forever)
    }

    /// Replies if there is room now.
    ///
    /// # Errors
    /// [`ServeError::Empty`] (no room), and as [`reply`](Server::reply).
    pub fn try_reply(&mut self, to: ReplyTo, reply: Rep) -> Result<(), ServeError> {
        self.reply_with(to, reply, Wait::Try)
    }

    /// Replies, waiting up to `timeout` for room.
    ///
    /// # Errors
    /// [`ServeError::Timeout`], and as [`reply`](Server::reply).
    pub fn reply_timeout(
        &mut self,
        to: ReplyTo,
        reply: Rep,
        timeout: Duration,
    ) -> Result<(), ServeError> {
        self.reply_with(to, reply, Wait::For(timeout))
    }

    fn reply_with(&mut self, to: ReplyTo, reply: Rep, wait: Wait) -> Result<(), ServeError> {
        let size = core::mem::size_of::<Rep>();
        self.core.reply_with(
            to,
            size,
            |grant| {
                let ptr = grant.as_mut_ptr();
                // SAFETY: the grant holds the 16-byte header and then size_of::<Rep>()
                // writable bytes; write_unaligned needs no alignment, and the bytes are
                // written through a raw pointer, never a reference.
                unsafe { ptr.add(wire::LEN).cast::<Rep>().write_unaligned(reply) };
            },
            wait,
        )
    }

    /// Answers every request with `handler` until the options' interrupt is raised (then
    /// `Ok`). A reply whose client has gone, or that finds no room within the open timeout
    /// (a client that does not read its replies), is dropped; the server goes on.
    ///
    /// # Errors
    /// Only what a server cannot go on from (none in this version).
    pub fn serve(&mut self, mut handler: impl FnMut(Req) -> Rep) -> Result<(), ServeError> {
        let patience = self.core.open_timeout();
        loop {
            let (value, to) = match self.recv() {
                Ok(request) => request.into_parts(),
                Err(ServeError::Interrupted { .. }) => return Ok(()),
                Err(e) => return Err(e),
            };
            match self.reply_with(to, handler(value), Wait::For(patience)) {
                Ok(()) | Err(ServeError::Gone { .. } | ServeError::Timeout { .. }) => {}
                Err(ServeError::Interrupted { .. }) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// The service, as errors name it (e.g. `POSIX shm "/kv"`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.core.seg.name
    }

    /// How many sessions the service has.
    #[must_use]
    pub fn sessions(&self) -> u32 {
        self.core.seg.geometry.sessions
    }

    /// How many sessions are granted to clients now.
    #[must_use]
    pub fn connected(&self) -> usize {
        self.core.connected()
    }
}

/// The server of a byte service: requests and replies are `&[u8]` of up to
/// [`max_request`](ServiceOptions::max_request) and [`max_reply`](ServiceOptions::max_reply)
/// bytes.
///
/// # Examples
/// ```
/// use ringway_channel::{ByteClient, ByteServer, ServiceOptions};
/// # let name = format!("/ringway-doc-byte-service-{}", std::process::id());
/// let opts = ServiceOptions::new().sessions(2).max_request(64).max_reply(64);
/// let mut server = ByteServer::bind(&name, &opts)?;
/// // The server grants sessions while it receives, so it runs in another thread (or
/// // process) than the client that connects.
/// let serving = std::thread::spawn(move || -> Result<(), ringway_channel::ServeError> {
///     let mut buf = Vec::new();
///     let to = server.recv(&mut buf)?;
///     assert_eq!(buf, b"ping");
///     server.reply(to, b"pong")
/// });
/// let mut client = ByteClient::connect(&name, &opts)?;
/// let ticket = client.send(b"ping")?;
/// let mut buf = Vec::new();
/// assert_eq!(client.recv(&mut buf)?, ticket);
/// assert_eq!(buf, b"pong");
/// serving.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ByteServer {
    core: ServerCore,
}

impl ByteServer {
    /// Creates the byte service `address`; see [`Server::bind`].
    ///
    /// # Errors
    /// As [`Server::bind`].
    pub fn bind(address: impl Into<Address>, opts: &ServiceOptions) -> Result<Self, ServiceError> {
        let bytes = MessageType::bytes();
        let core = bind_core(address.into(), opts, (&bytes, None), (&bytes, None))?;
        Ok(ByteServer { core })
    }

    /// Receives the next request from any client into `out` (replacing its contents).
    ///
    /// # Errors
    /// As [`Server::recv`].
    pub fn recv(&mut self, out: &mut Vec<u8>) -> Result<ReplyTo, ServeError> {
        self.core.recv_with(out, Wait::Forever)
    }

    /// Receives a request if one is there now.
    ///
    /// # Errors
    /// As [`Server::try_recv`].
    pub fn try_recv(&mut self, out: &mut Vec<u8>) -> Result<ReplyTo, ServeError> {
        self.core.recv_with(out, Wait::Try)
    }

    /// Receives the next request, waiting up to `timeout`.
    ///
    /// # Errors
    /// As [`Server::recv_timeout`].
    pub fn recv_timeout(
        &mut self,
        out: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<ReplyTo, ServeError> {
        self.core.recv_with(out, Wait::For(timeout))
    }

    /// Replies to the request `to` came with; see [`Server::reply`].
    ///
    /// # Errors
    /// [`ServeError::TooLarge`], and as [`Server::reply`].
    pub fn reply(&mut self, to: ReplyTo, reply: &[u8]) -> Result<(), ServeError> {
        self.reply_with(to, reply, Wait::Forever)
    }

    /// Replies if there is room now.
    ///
    /// # Errors
    /// As [`Server::try_reply`].
    pub fn try_reply(&mut self, to: ReplyTo, reply: &[u8]) -> Result<(), ServeError> {
        self.reply_with(to, reply, Wait::Try)
    }

    /// Replies, waiting up to `timeout` for room.
    ///
    /// # Errors
    /// As [`Server::reply_timeout`].
    pub fn reply_timeout(
        &mut self,
        to: ReplyTo,
        reply: &[u8],
        timeout: Duration,
    ) -> Result<(), ServeError> {
        self.reply_with(to, reply, Wait::For(timeout))
    }

    fn reply_with(&mut self, to: ReplyTo, reply: &[u8], wait: Wait) -> Result<(), ServeError> {
        self.core
            .reply_with(to, reply.len(), |grant| grant.write(wire::LEN, reply), wait)
    }

    /// Answers every request with `handler(request, reply)` until the options' interrupt is
    /// raised; see [`Server::serve`].
    ///
    /// # Errors
    /// As [`Server::serve`].
    pub fn serve(
        &mut self,
        mut handler: impl FnMut(&[u8], &mut Vec<u8>),
    ) -> Result<(), ServeError> {
        let patience = self.core.open_timeout();
        let (mut request, mut reply) = (Vec::new(), Vec::new());
        loop {
            let to = match self.recv(&mut request) {
                Ok(to) => to,
                Err(ServeError::Interrupted { .. }) => return Ok(()),
                Err(e) => return Err(e),
            };
            reply.clear();
            handler(&request, &mut reply);
            match self.reply_with(to, &reply, Wait::For(patience)) {
                Ok(()) | Err(ServeError::Gone { .. } | ServeError::Timeout { .. }) => {}
                Err(ServeError::Interrupted { .. }) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// The service, as errors name it.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.core.seg.name
    }

    /// How many sessions the service has.
    #[must_use]
    pub fn sessions(&self) -> u32 {
        self.core.seg.geometry.sessions
    }

    /// How many sessions are granted to clients now.
    #[must_use]
    pub fn connected(&self) -> usize {
        self.core.connected()
    }
}

/// A client of a typed service: sends `Req`s and receives the `Rep`s answering them.
///
/// # Examples
/// See [`Server`], and `examples/kv.rs`.
#[derive(Debug)]
pub struct Client<Req, Rep> {
    core: ClientCore,
    buf: Vec<u8>,
    _types: PhantomData<fn(Req) -> Rep>,
}

impl<Req: Message, Rep: Message> Client<Req, Rep> {
    /// Connects to the service `address`: waits up to the open timeout for a live server
    /// and a free session, claims it, and waits for the server to grant it.
    ///
    /// # Errors
    /// [`ServiceError::NoServer`], [`ServiceError::NoSession`], [`ServiceError::Interrupted`],
    /// [`ServiceError::Channel`] (e.g. a [`TypeMismatch`](crate::Error::TypeMismatch) naming
    /// both types), [`ServiceError::Incompatible`].
    pub fn connect(
        address: impl Into<Address>,
        opts: &ServiceOptions,
    ) -> Result<Self, ServiceError> {
        let core = ClientCore::connect(
            address.into(),
            opts,
            MessageType::of::<Req>(None),
            MessageType::of::<Rep>(None),
        )?;
        Ok(Client {
            core,
            buf: Vec::new(),
            _types: PhantomData,
        })
    }

    /// Gives the session back and connects again (to a restarted server, after
    /// [`CallError::Disconnected`]).
    ///
    /// # Errors
    /// As [`connect`](Client::connect).
    pub fn reconnect(&mut self) -> Result<(), ServiceError> {
        self.core.reconnect()
    }

    /// Sends `request` and waits for its reply as long as the server is alive.
    ///
    /// # Errors
    /// [`CallError::Disconnected`] (the server left or died; the request may or may not
    /// have been served), [`CallError::Interrupted`], [`CallError::Corrupted`].
    pub fn call(&mut self, request: Req) -> Result<Rep, CallError> {
        self.call_with(request, Wait::Forever)
    }

    /// Sends `request` and waits for its reply, both within `timeout`.
    ///
    /// # Errors
    /// [`CallError::Timeout`] (the request may still be served; its late reply is dropped
    /// by the next call), and as [`call`](Client::call).
    pub fn call_timeout(&mut self, request: Req, timeout: Duration) -> Result<Rep, CallError> {
        self.call_with(request, Wait::For(timeout))
    }

    fn call_with(&mut self, request: Req, wait: Wait) -> Result<Rep, CallError> {
        self.core.call_with(
            core::mem::size_of::<Req>(),
            write_value(request),
            &mut self.buf,
            wait,
        )?;
        self.value()
    }

    /// Sends `request` without waiting for the reply, waiting for room as long as the server
    /// is alive; [`recv`](Client::recv) brings the reply, with the same ticket. (Do not mix
    /// with `call`, which drops replies it did not ask for.)
    ///
    /// # Errors
    /// As [`call`](Client::call).
    pub fn send(&mut self, request: Req) -> Result<Ticket, CallError> {
        self.send_with(request, Wait::Forever)
    }

    /// Sends `request` if there is room now.
    ///
    /// # Errors
    /// [`CallError::Full`], and as [`send`](Client::send).
    pub fn try_send(&mut self, request: Req) -> Result<Ticket, CallError> {
        self.send_with(request, Wait::Try)
    }

    fn send_with(&mut self, request: Req, wait: Wait) -> Result<Ticket, CallError> {
        self.core
            .send_with(core::mem::size_of::<Req>(), write_value(request), wait)
            .map(Ticket)
    }

    /// Receives the next reply to a request sent with [`send`](Client::send).
    ///
    /// # Errors
    /// As [`call`](Client::call).
    pub fn recv(&mut self) -> Result<(Ticket, Rep), CallError> {
        self.recv_with(Wait::Forever)
    }

    /// Receives a reply if one is there now.
    ///
    /// # Errors
    /// [`CallError::Empty`], and as [`recv`](Client::recv).
    pub fn try_recv(&mut self) -> Result<(Ticket, Rep), CallError> {
        self.recv_with(Wait::Try)
    }

    /// Receives the next reply, waiting up to `timeout`.
    ///
    /// # Errors
    /// [`CallError::Timeout`], and as [`recv`](Client::recv).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<(Ticket, Rep), CallError> {
        self.recv_with(Wait::For(timeout))
    }

    fn recv_with(&mut self, wait: Wait) -> Result<(Ticket, Rep), CallError> {
        let id = self.core.recv_with(&mut self.buf, wait)?;
        Ok((Ticket(id), self.value()?))
    }

    /// The reply in `buf` as a `Rep`.
    fn value(&self) -> Result<Rep, CallError> {
        let size = core::mem::size_of::<Rep>();
        if self.buf.len() != size {
            return Err(CallError::Corrupted {
                service: self.core.name.clone(),
                corruption: ringway_ring::Corruption {
                    what: "a typed reply must be exactly size_of::<Rep>() bytes",
                    found: self.buf.len() as u64,
                    limit: size as u64,
                },
            });
        }
        // SAFETY: `buf` holds exactly size_of::<Rep>() initialised bytes; read_unaligned
        // needs no alignment; `Rep: Message` makes any bytes a valid `Rep`.
        Ok(unsafe { self.buf.as_ptr().cast::<Rep>().read_unaligned() })
    }

    /// The server's epoch: a new value after a reconnect means a new server.
    #[must_use]
    pub fn epoch(&self) -> Option<u64> {
        self.core.epoch()
    }

    /// The session (slot) this client holds, if connected.
    #[must_use]
    pub fn session(&self) -> Option<u32> {
        self.core.slot()
    }

    /// The service, as errors name it.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.core.name
    }
}

fn write_value<T: Message>(value: T) -> impl FnOnce(&mut ringway_ring::spsc::Grant<'_>) {
    move |grant| {
        let ptr = grant.as_mut_ptr();
        // SAFETY: the grant holds the 16-byte header and then size_of::<T>() writable bytes;
        // write_unaligned needs no alignment, and the write goes through a raw pointer.
        unsafe { ptr.add(wire::LEN).cast::<T>().write_unaligned(value) };
    }
}

/// A client of a byte service.
#[derive(Debug)]
pub struct ByteClient {
    core: ClientCore,
}

impl ByteClient {
    /// Connects to the byte service `address`; see [`Client::connect`].
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub fn connect(
        address: impl Into<Address>,
        opts: &ServiceOptions,
    ) -> Result<Self, ServiceError> {
        let bytes = MessageType::bytes();
        let core = ClientCore::connect(address.into(), opts, bytes.clone(), bytes)?;
        Ok(ByteClient { core })
    }

    /// See [`Client::reconnect`].
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub fn reconnect(&mut self) -> Result<(), ServiceError> {
        self.core.reconnect()
    }

    /// Sends `request` and receives its reply into `reply`; returns the reply's length.
    ///
    /// # Errors
    /// [`CallError::TooLarge`], and as [`Client::call`].
    pub fn call(&mut self, request: &[u8], reply: &mut Vec<u8>) -> Result<usize, CallError> {
        self.call_with(request, reply, Wait::Forever)
    }

    /// [`call`](ByteClient::call) within `timeout`.
    ///
    /// # Errors
    /// As [`Client::call_timeout`].
    pub fn call_timeout(
        &mut self,
        request: &[u8],
        reply: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<usize, CallError> {
        self.call_with(request, reply, Wait::For(timeout))
    }

    fn call_with(
        &mut self,
        request: &[u8],
        reply: &mut Vec<u8>,
        wait: Wait,
    ) -> Result<usize, CallError> {
        self.core
            .call_with(request.len(), |g| g.write(wire::LEN, request), reply, wait)?;
        Ok(reply.len())
    }

    /// See [`Client::send`].
    ///
    /// # Errors
    /// As [`Client::send`].
    pub fn send(&mut self, request: &[u8]) -> Result<Ticket, CallError> {
        self.core
            .send_with(
                request.len(),
                |g| g.write(wire::LEN, request),
                Wait::Forever,
            )
            .map(Ticket)
    }

    /// See [`Client::try_send`].
    ///
    /// # Errors
    /// As [`Client::try_send`].
    pub fn try_send(&mut self, request: &[u8]) -> Result<Ticket, CallError> {
        self.core
            .send_with(request.len(), |g| g.write(wire::LEN, request), Wait::Try)
            .map(Ticket)
    }

    /// Receives the next reply into `reply`; see [`Client::recv`].
    ///
    /// # Errors
    /// As [`Client::recv`].
    pub fn recv(&mut self, reply: &mut Vec<u8>) -> Result<Ticket, CallError> {
        self.core.recv_with(reply, Wait::Forever).map(Ticket)
    }

    /// See [`Client::try_recv`].
    ///
    /// # Errors
    /// As [`Client::try_recv`].
    pub fn try_recv(&mut self, reply: &mut Vec<u8>) -> Result<Ticket, CallError> {
        self.core.recv_with(reply, Wait::Try).map(Ticket)
    }

    /// See [`Client::recv_timeout`].
    ///
    /// # Errors
    /// As [`Client::recv_timeout`].
    pub fn recv_timeout(
        &mut self,
        reply: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<Ticket, CallError> {
        self.core.recv_with(reply, Wait::For(timeout)).map(Ticket)
    }

    /// The largest request the service takes, in bytes.
    #[must_use]
    pub fn max_request(&self) -> usize {
        self.core.max_request()
    }

    /// See [`Client::epoch`].
    #[must_use]
    pub fn epoch(&self) -> Option<u64> {
        self.core.epoch()
    }

    /// See [`Client::session`].
    #[must_use]
    pub fn session(&self) -> Option<u32> {
        self.core.slot()
    }

    /// The service, as errors name it.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.core.name
    }
}
