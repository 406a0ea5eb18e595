//! The byte ends of a service: [`ByteServer`] and [`ByteClient`], moving `&[u8]` requests
//! and replies of up to the service's maximum sizes.

use std::time::Duration;

use ringway_ring::Wait;

use super::client::ClientCore;
use super::server::ServerCore;
use super::{
    CallError, MessageType, ReplyTo, ServeError, ServiceError, ServiceOptions, Ticket, bind_core,
    join_core, wire,
};
use crate::options::Address;

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
    /// Creates the byte service `address`; see [`Server::bind`](crate::Server::bind).
    ///
    /// # Errors
    /// As [`Server::bind`](crate::Server::bind).
    pub fn bind(address: impl Into<Address>, opts: &ServiceOptions) -> Result<Self, ServiceError> {
        let bytes = MessageType::bytes();
        let core = bind_core(address.into(), opts, (&bytes, None), (&bytes, None))?;
        Ok(ByteServer { core })
    }

    /// Joins the live byte service `address` as one more worker; see [`Server::join`](crate::Server::join).
    ///
    /// # Errors
    /// As [`Server::join`](crate::Server::join).
    pub fn join(address: impl Into<Address>, opts: &ServiceOptions) -> Result<Self, ServiceError> {
        let bytes = MessageType::bytes();
        let core = join_core(address.into(), opts, (&bytes, None), (&bytes, None))?;
        Ok(ByteServer { core })
    }

    /// This worker's entry in the worker table; see [`Server::worker`](crate::Server::worker).
    #[must_use]
    pub fn worker(&self) -> u32 {
        self.core.worker()
    }

    /// Receives the next request from any client into `out` (replacing its contents).
    ///
    /// # Errors
    /// As [`Server::recv`](crate::Server::recv).
    pub fn recv(&mut self, out: &mut Vec<u8>) -> Result<ReplyTo, ServeError> {
        self.core.recv_with(out, Wait::Forever)
    }

    /// Receives a request if one is there now.
    ///
    /// # Errors
    /// As [`Server::try_recv`](crate::Server::try_recv).
    pub fn try_recv(&mut self, out: &mut Vec<u8>) -> Result<ReplyTo, ServeError> {
        self.core.recv_with(out, Wait::Try)
    }

    /// Receives the next request, waiting up to `timeout`.
    ///
    /// # Errors
    /// As [`Server::recv_timeout`](crate::Server::recv_timeout).
    pub fn recv_timeout(
        &mut self,
        out: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<ReplyTo, ServeError> {
        self.core.recv_with(out, Wait::For(timeout))
    }

    /// Replies to the request `to` came with; see [`Server::reply`](crate::Server::reply).
    ///
    /// # Errors
    /// [`ServeError::TooLarge`], and as [`Server::reply`](crate::Server::reply).
    pub fn reply(&mut self, to: ReplyTo, reply: &[u8]) -> Result<(), ServeError> {
        self.reply_with(to, reply, Wait::Forever)
    }

    /// Replies if there is room now.
    ///
    /// # Errors
    /// As [`Server::try_reply`](crate::Server::try_reply).
    pub fn try_reply(&mut self, to: ReplyTo, reply: &[u8]) -> Result<(), ServeError> {
        self.reply_with(to, reply, Wait::Try)
    }

    /// Replies, waiting up to `timeout` for room.
    ///
    /// # Errors
    /// As [`Server::reply_timeout`](crate::Server::reply_timeout).
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
    /// raised; see [`Server::serve`](crate::Server::serve).
    ///
    /// # Errors
    /// As [`Server::serve`](crate::Server::serve).
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

    /// How many sessions this worker serves now.
    #[must_use]
    pub fn connected(&self) -> usize {
        self.core.connected()
    }
}

/// A client of a byte service.
#[derive(Debug)]
pub struct ByteClient {
    core: ClientCore,
}

impl ByteClient {
    /// Connects to the byte service `address`; see [`Client::connect`](crate::Client::connect).
    ///
    /// # Errors
    /// As [`Client::connect`](crate::Client::connect).
    pub fn connect(
        address: impl Into<Address>,
        opts: &ServiceOptions,
    ) -> Result<Self, ServiceError> {
        let bytes = MessageType::bytes();
        let core = ClientCore::connect(address.into(), opts, bytes.clone(), bytes)?;
        Ok(ByteClient { core })
    }

    /// See [`Client::reconnect`](crate::Client::reconnect).
    ///
    /// # Errors
    /// As [`Client::connect`](crate::Client::connect).
    pub fn reconnect(&mut self) -> Result<(), ServiceError> {
        self.core.reconnect()
    }

    /// Sends `request` and receives its reply into `reply`; returns the reply's length.
    ///
    /// # Errors
    /// [`CallError::TooLarge`], and as [`Client::call`](crate::Client::call).
    pub fn call(&mut self, request: &[u8], reply: &mut Vec<u8>) -> Result<usize, CallError> {
        self.call_with(request, reply, Wait::Forever)
    }

    /// [`call`](ByteClient::call) within `timeout`.
    ///
    /// # Errors
    /// As [`Client::call_timeout`](crate::Client::call_timeout).
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

    /// See [`Client::send`](crate::Client::send).
    ///
    /// # Errors
    /// As [`Client::send`](crate::Client::send).
    pub fn send(&mut self, request: &[u8]) -> Result<Ticket, CallError> {
        self.core
            .send_with(
                request.len(),
                |g| g.write(wire::LEN, request),
                Wait::Forever,
            )
            .map(Ticket)
    }

    /// See [`Client::try_send`](crate::Client::try_send).
    ///
    /// # Errors
    /// As [`Client::try_send`](crate::Client::try_send).
    pub fn try_send(&mut self, request: &[u8]) -> Result<Ticket, CallError> {
        self.core
            .send_with(request.len(), |g| g.write(wire::LEN, request), Wait::Try)
            .map(Ticket)
    }

    /// Receives the next reply into `reply`; see [`Client::recv`](crate::Client::recv).
    ///
    /// # Errors
    /// As [`Client::recv`](crate::Client::recv).
    pub fn recv(&mut self, reply: &mut Vec<u8>) -> Result<Ticket, CallError> {
        self.core.recv_with(reply, Wait::Forever).map(Ticket)
    }

    /// See [`Client::try_recv`](crate::Client::try_recv).
    ///
    /// # Errors
    /// As [`Client::try_recv`](crate::Client::try_recv).
    pub fn try_recv(&mut self, reply: &mut Vec<u8>) -> Result<Ticket, CallError> {
        self.core.recv_with(reply, Wait::Try).map(Ticket)
    }

    /// See [`Client::recv_timeout`](crate::Client::recv_timeout).
    ///
    /// # Errors
    /// As [`Client::recv_timeout`](crate::Client::recv_timeout).
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

    /// See [`Client::epoch`](crate::Client::epoch).
    #[must_use]
    pub fn epoch(&self) -> Option<u64> {
        self.core.epoch()
    }

    /// See [`Client::session`](crate::Client::session).
    #[must_use]
    pub fn session(&self) -> Option<u32> {
        self.core.slot()
    }

    /// See [`Client::worker`](crate::Client::worker).
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
