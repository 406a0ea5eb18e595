//! The typed ends of a service: [`Server<Req, Rep>`] and [`Client<Req, Rep>`], thin
//! wrappers that turn `Req` and `Rep` values into the bytes the engines (`server.rs`,
//! `client.rs`) move.

use std::marker::PhantomData;
use std::time::Duration;

use ringway_ring::Wait;

use super::client::ClientCore;
use super::server::ServerCore;
use super::{
    CallError, MessageType, ReplyTo, Request, ServeError, ServiceError, ServiceOptions, Ticket,
    bind_core, join_core, wire, write_value,
};
use crate::options::Address;
use crate::shape::Message;

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
    /// Creates the service `address` (taking over a name whose workers all died) with
    /// [`sessions`](ServiceOptions::sessions) sessions; this process is its first worker
    /// (more [`join`](Server::join)).
    ///
    /// # Errors
    /// [`ServiceError::Channel`] with the channel error of a failed create (the name is in
    /// use by a live service, no room, bad options).
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

    /// Joins the live service `address` as one more worker process (up to 8 in all): it
    /// serves the sessions it grants, alongside the worker that bound the name and any
    /// others. Clients cannot tell workers apart; the clients of a worker that leaves or dies
    /// see [`CallError::Disconnected`] and [`reconnect`](Client::reconnect) to a live one.
    /// The service, and its name, last until the last worker leaves.
    ///
    /// `opts` must make the service's shape (the same sessions, in-flight requests and
    /// message sizes as the `bind`); its waiting, liveness interval and interrupt are this
    /// worker's own.
    ///
    /// # Errors
    /// [`ServiceError::NoServer`] (no live worker within the open timeout),
    /// [`ServiceError::TooManyWorkers`], [`ServiceError::Incompatible`] (other options),
    /// [`ServiceError::Channel`] with a [`TypeMismatch`](crate::Error::TypeMismatch), or
    /// `Unsupported` for a System V service (whose one worker is its server),
    /// [`ServiceError::Interrupted`].
    ///
    /// # Examples
    /// ```
    /// use ringway_channel::{Server, ServiceOptions};
    /// # let name = format!("/ringway-doc-join-{}", std::process::id());
    /// let opts = ServiceOptions::new().sessions(4);
    /// let first = Server::<u64, u64>::bind(&name, &opts)?;
    /// // In another process (here the same one): a second worker.
    /// let second = Server::<u64, u64>::join(&name, &opts)?;
    /// assert_ne!(first.worker(), second.worker());
    /// drop(first); // the service stays up while `second` serves
    /// drop(second); // the last worker removes the name
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(address: impl Into<Address>, opts: &ServiceOptions) -> Result<Self, ServiceError> {
        let request = MessageType::of::<Req>(None);
        let reply = MessageType::of::<Rep>(None);
        let core = join_core(
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

    /// This worker's entry in the service's worker table (`0` for the one that bound it).
    #[must_use]
    pub fn worker(&self) -> u32 {
        self.core.worker()
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

    /// How many sessions this worker serves now.
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

    /// The worker serving this client's session (see [`Server::worker`]), if connected.
    #[must_use]
    pub fn worker(&self) -> Option<u32> {
        self.core.worker()
    }

    /// The service, as errors name it.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.core.name
    }
}
