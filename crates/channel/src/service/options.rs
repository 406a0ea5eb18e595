//! [`ServiceOptions`]: how a service is built (by its server) and how its ends wait.

use std::time::Duration;

use ringway_ring::WaitStrategy;

use crate::options::ChannelOptions;

/// Sessions a server makes when the options do not say.
pub(crate) const DEFAULT_SESSIONS: u32 = 16;
/// Requests a session holds in flight when the options do not say.
pub(crate) const DEFAULT_IN_FLIGHT: usize = 16;
/// A byte service's largest request and reply when the options do not say.
pub(crate) const DEFAULT_BYTES: usize = 4096;

/// How to build a service and how its server and clients behave.
///
/// The server's options decide the shape (sessions, messages in flight, largest request and
/// reply); a client's options decide only how it waits (timeouts, liveness interval,
/// interrupt, wait strategy).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ringway_channel::ServiceOptions;
/// let opts = ServiceOptions::new()
///     .sessions(8)
///     .in_flight(4)
///     .max_request(256)
///     .liveness_interval(Duration::from_millis(20));
/// assert_eq!(opts.session_count(), 8);
/// ```
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// The per-ring knobs (liveness, waiting, interrupt, permissions, takeover, paging).
    pub(crate) channel: ChannelOptions,
    pub(crate) sessions: u32,
    pub(crate) in_flight: usize,
    pub(crate) max_request: usize,
    pub(crate) max_reply: usize,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            channel: ChannelOptions::new(),
            sessions: DEFAULT_SESSIONS,
            in_flight: DEFAULT_IN_FLIGHT,
            max_request: DEFAULT_BYTES,
            max_reply: DEFAULT_BYTES,
        }
    }
}

impl ServiceOptions {
    /// The defaults: 16 sessions, 16 requests in flight per session, byte requests and
    /// replies of up to 4096 bytes, and [`ChannelOptions::new`]'s waiting (a 10 s open
    /// timeout, crash detection within 50 ms).
    #[must_use]
    pub fn new() -> ServiceOptions {
        ServiceOptions::default()
    }

    /// Server: how many clients can be connected at once (1 ..= 1024, default 16). A client
    /// that finds every session in use waits up to its open timeout for one to free.
    #[must_use]
    pub fn sessions(mut self, sessions: u32) -> ServiceOptions {
        self.sessions = sessions;
        self
    }

    /// The number of sessions these options ask for.
    #[must_use]
    pub fn session_count(&self) -> u32 {
        self.sessions
    }

    /// Server: how many requests (and replies) one session's rings hold at once (default
    /// 16). A client that only uses `call` has one in flight.
    #[must_use]
    pub fn in_flight(mut self, requests: usize) -> ServiceOptions {
        self.in_flight = requests;
        self
    }

    /// Server of a byte service: the largest request in bytes (default 4096). Typed
    /// services carry `size_of::<Req>()`.
    #[must_use]
    pub fn max_request(mut self, bytes: usize) -> ServiceOptions {
        self.max_request = bytes;
        self
    }

    /// Server of a byte service: the largest reply in bytes (default 4096). Typed services
    /// carry `size_of::<Rep>()`.
    #[must_use]
    pub fn max_reply(mut self, bytes: usize) -> ServiceOptions {
        self.max_reply = bytes;
        self
    }

    /// How long `connect` waits for a live server and a free session, and how long a
    /// `reconnect` waits for a restarted server (default 10 s).
    #[must_use]
    pub fn open_timeout(mut self, timeout: Duration) -> ServiceOptions {
        self.channel = self.channel.open_timeout(timeout);
        self
    }

    /// How often a waiting end checks that the other side is alive: the bound on how long a
    /// dead client keeps its session, and a dead server goes unnoticed by a waiting call
    /// (default 50 ms).
    #[must_use]
    pub fn liveness_interval(mut self, interval: Duration) -> ServiceOptions {
        self.channel = self.channel.liveness_interval(interval);
        self
    }

    /// How this process's end waits (see [`WaitStrategy`]).
    #[must_use]
    pub fn wait_strategy(mut self, strategy: WaitStrategy) -> ServiceOptions {
        self.channel = self.channel.wait_strategy(strategy);
        self
    }

    /// Lets `interrupt` end this end's blocking calls with `Interrupted` (see
    /// [`ChannelOptions::interrupt`]): the way to stop a server blocked in `recv` or `serve`.
    #[must_use]
    pub fn interrupt(mut self, interrupt: crate::Interrupt) -> ServiceOptions {
        self.channel = self.channel.interrupt(interrupt);
        self
    }

    /// Server: the permission bits of the segment (default `0o600`).
    #[must_use]
    pub fn mode(mut self, mode: u32) -> ServiceOptions {
        self.channel = self.channel.mode(mode);
        self
    }

    /// Server: whether `bind` takes over a name left by a server that died (default on); see
    /// [`ChannelOptions::takeover`].
    #[must_use]
    pub fn takeover(mut self, yes: bool) -> ServiceOptions {
        self.channel = self.channel.takeover(yes);
        self
    }

    /// The interval the ends check liveness at.
    pub(crate) fn interval(&self) -> Duration {
        self.channel.liveness_interval.max(Duration::from_millis(1))
    }
}
