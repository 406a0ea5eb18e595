//! Errors of services: binding or connecting ([`ServiceError`]), a client's calls
//! ([`CallError`]) and a server's receives and replies ([`ServeError`]). Each names the
//! service and says what to change.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ringway_ring::{Corruption, PopError, PushError};

use crate::error::{Error, Rounded};

/// Why a server could not bind or a client could not connect.
///
/// `{:?}` prints the same text as `{}`; `{:#?}` prints the variant and its fields.
#[non_exhaustive]
pub enum ServiceError {
    /// Creating, opening or checking the shared memory failed, or its rings carry other
    /// messages than this end's (the channel error says which, and what to do).
    Channel(Error),
    /// The object under the service's name is not a service this version can serve or use.
    Incompatible {
        /// The service, e.g. `POSIX shm "/kv"`.
        service: String,
        /// What was found.
        what: String,
    },
    /// No live server within the open timeout: none bound the name, or it died or left and
    /// no new one bound it yet.
    NoServer {
        /// The service.
        service: String,
        /// How long `connect` waited.
        waited: Duration,
        /// What `connect` found last.
        last: String,
    },
    /// Every session was in use by a live client for the whole open timeout.
    NoSession {
        /// The service.
        service: String,
        /// How many sessions the server made.
        sessions: u32,
        /// How long `connect` waited.
        waited: Duration,
    },
    /// `connect` (or `join`) was waiting when the [`Interrupt`](crate::Interrupt) of its
    /// options was raised; nothing was claimed.
    Interrupted {
        /// The service.
        service: String,
    },
    /// `join` found every entry of the worker table held by a live worker.
    TooManyWorkers {
        /// The service.
        service: String,
        /// The most workers a service has.
        max: u32,
    },
}

impl From<Error> for ServiceError {
    fn from(e: Error) -> ServiceError {
        ServiceError::Channel(e)
    }
}

impl From<ringway_region::Error> for ServiceError {
    fn from(e: ringway_region::Error) -> ServiceError {
        ServiceError::Channel(e.into())
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::Channel(e) => e.fmt(f),
            ServiceError::Incompatible { service, what } => write!(
                f,
                "service {service}: {what}; is it a ringway service of the same version, and \
                 did both sides use the same name?"
            ),
            ServiceError::NoServer {
                service,
                waited,
                last,
            } => write!(
                f,
                "connect to service {service}: no live server after waiting {} ({last}); is \
                 the server running with this name? (ServiceOptions::open_timeout sets how \
                 long to wait)",
                Rounded(*waited)
            ),
            ServiceError::NoSession {
                service,
                sessions,
                waited,
            } => write!(
                f,
                "connect to service {service}: all {sessions} sessions stayed in use by live \
                 clients for {}; the server makes more with ServiceOptions::sessions, or \
                 wait longer (ServiceOptions::open_timeout)",
                Rounded(*waited)
            ),
            ServiceError::Interrupted { service } => write!(
                f,
                "connect to service {service}: interrupted while waiting (the Interrupt of \
                 its options was raised); nothing was claimed"
            ),
            ServiceError::TooManyWorkers { service, max } => write!(
                f,
                "join service {service}: it has {max} live workers, the most a service has; \
                 run another service (name) for more, or serve more clients per worker"
            ),
        }
    }
}

impl fmt::Debug for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            return fmt::Display::fmt(self, f);
        }
        match self {
            ServiceError::Channel(e) => f.debug_tuple("Channel").field(e).finish(),
            ServiceError::Incompatible { service, what } => f
                .debug_struct("Incompatible")
                .field("service", service)
                .field("what", what)
                .finish(),
            ServiceError::NoServer {
                service,
                waited,
                last,
            } => f
                .debug_struct("NoServer")
                .field("service", service)
                .field("waited", waited)
                .field("last", last)
                .finish(),
            ServiceError::NoSession {
                service,
                sessions,
                waited,
            } => f
                .debug_struct("NoSession")
                .field("service", service)
                .field("sessions", sessions)
                .field("waited", waited)
                .finish(),
            ServiceError::TooManyWorkers { service, max } => f
                .debug_struct("TooManyWorkers")
                .field("service", service)
                .field("max", max)
                .finish(),
            ServiceError::Interrupted { service } => f
                .debug_struct("Interrupted")
                .field("service", service)
                .finish(),
        }
    }
}

impl std::error::Error for ServiceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServiceError::Channel(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a client's call (or its send or receive half) did not complete.
///
/// `{:?}` prints the same text as `{}`; `{:#?}` prints the variant.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// No room for the request now (`try_send`).
    Full {
        /// The service.
        service: Arc<str>,
    },
    /// No reply yet (`try_recv`).
    Empty {
        /// The service.
        service: Arc<str>,
    },
    /// No reply (or no room for the request) before the deadline. A request that was sent
    /// may still be served; its late reply is dropped by the next `call`.
    Timeout {
        /// The service.
        service: Arc<str>,
    },
    /// The [`Interrupt`](crate::Interrupt) of the client's options was raised while it
    /// waited. As for `Timeout`, a request already sent may still be served.
    Interrupted {
        /// The service.
        service: Arc<str>,
    },
    /// The server left or died (or freed this session): a request that was sent may or may
    /// not have been served, and no reply will come. `reconnect` to go on.
    Disconnected {
        /// The service.
        service: Arc<str>,
    },
    /// The request is larger than the service carries.
    TooLarge {
        /// The service.
        service: Arc<str>,
        /// Its length.
        len: usize,
        /// The largest request.
        max: usize,
    },
    /// The server (or another process with the mapping) wrote values that break the rings'
    /// layout or the reply protocol; this session is unusable, `reconnect` to go on.
    Corrupted {
        /// The service.
        service: Arc<str>,
        /// What was wrong.
        corruption: Corruption,
    },
}

impl CallError {
    /// The service the call was on.
    pub fn service(&self) -> &str {
        match self {
            CallError::Full { service }
            | CallError::Empty { service }
            | CallError::Timeout { service }
            | CallError::Interrupted { service }
            | CallError::Disconnected { service }
            | CallError::TooLarge { service, .. }
            | CallError::Corrupted { service, .. } => service,
        }
    }

    /// Whether the server is gone (or the session unusable): `reconnect` to go on.
    pub fn is_disconnected(&self) -> bool {
        matches!(
            self,
            CallError::Disconnected { .. } | CallError::Corrupted { .. }
        )
    }

    /// Whether the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, CallError::Timeout { .. })
    }

    pub(crate) fn from_push(e: PushError, service: &Arc<str>) -> CallError {
        let service = service.clone();
        match e {
            PushError::Full => CallError::Full { service },
            PushError::Timeout => CallError::Timeout { service },
            PushError::Interrupted => CallError::Interrupted { service },
            PushError::TooLarge { len, max } => CallError::TooLarge { service, len, max },
            PushError::Corrupted(corruption) => CallError::Corrupted {
                service,
                corruption,
            },
            _ => CallError::Disconnected { service },
        }
    }

    pub(crate) fn from_pop(e: PopError, service: &Arc<str>) -> CallError {
        let service = service.clone();
        match e {
            PopError::Empty => CallError::Empty { service },
            PopError::Timeout => CallError::Timeout { service },
            PopError::Interrupted => CallError::Interrupted { service },
            PopError::Corrupted(corruption) => CallError::Corrupted {
                service,
                corruption,
            },
            _ => CallError::Disconnected { service },
        }
    }

    fn describe(&self) -> String {
        match self {
            CallError::Full { .. } => "no room for the request now".into(),
            CallError::Empty { .. } => "no reply yet".into(),
            CallError::Timeout { .. } => "timed out".into(),
            CallError::Interrupted { .. } => "interrupted while waiting".into(),
            CallError::Disconnected { .. } => {
                "the server left or died; a request in flight may or may not have been \
                 served (reconnect to go on)"
                    .into()
            }
            CallError::TooLarge { len, max, .. } => format!(
                "request of {len} bytes exceeds the service's maximum of {max} (the server \
                 sets it with ServiceOptions::max_request)"
            ),
            CallError::Corrupted { corruption, .. } => {
                format!("{corruption} (reconnect to go on)")
            }
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call on service {}: {}", self.service(), self.describe())
    }
}

impl fmt::Debug for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            return fmt::Display::fmt(self, f);
        }
        let name = match self {
            CallError::Full { .. } => "Full",
            CallError::Empty { .. } => "Empty",
            CallError::Timeout { .. } => "Timeout",
            CallError::Interrupted { .. } => "Interrupted",
            CallError::Disconnected { .. } => "Disconnected",
            CallError::TooLarge { .. } => "TooLarge",
            CallError::Corrupted { .. } => "Corrupted",
        };
        f.write_str(name)
    }
}

impl std::error::Error for CallError {}

/// Why a server's receive or reply did not complete. A server never fails because of a
/// client: a client that leaves, dies or scribbles its rings loses its session, and the
/// server goes on with the others.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServeError {
    /// No request now (`try_recv`), or no room for the reply now (`try_reply`).
    Empty {
        /// The service.
        service: Arc<str>,
    },
    /// Nothing before the deadline.
    Timeout {
        /// The service.
        service: Arc<str>,
    },
    /// The [`Interrupt`](crate::Interrupt) of the server's options was raised while it
    /// waited: the way to stop a server blocked in `recv` or `serve`.
    Interrupted {
        /// The service.
        service: Arc<str>,
    },
    /// `reply`: the client that asked left, died, or lost its session; the reply is dropped.
    Gone {
        /// The service.
        service: Arc<str>,
    },
    /// `reply`: the reply is larger than the service carries.
    TooLarge {
        /// The service.
        service: Arc<str>,
        /// Its length.
        len: usize,
        /// The largest reply.
        max: usize,
    },
}

impl ServeError {
    /// The service.
    pub fn service(&self) -> &str {
        match self {
            ServeError::Empty { service }
            | ServeError::Timeout { service }
            | ServeError::Interrupted { service }
            | ServeError::Gone { service }
            | ServeError::TooLarge { service, .. } => service,
        }
    }

    fn describe(&self) -> String {
        match self {
            ServeError::Empty { .. } => "nothing to do now".into(),
            ServeError::Timeout { .. } => "timed out".into(),
            ServeError::Interrupted { .. } => "interrupted while waiting".into(),
            ServeError::Gone { .. } => {
                "the client that asked left or died; the reply was dropped".into()
            }
            ServeError::TooLarge { len, max, .. } => format!(
                "reply of {len} bytes exceeds the service's maximum of {max} (set it with \
                 ServiceOptions::max_reply)"
            ),
        }
    }
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "serve {}: {}", self.service(), self.describe())
    }
}

impl fmt::Debug for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            return fmt::Display::fmt(self, f);
        }
        let name = match self {
            ServeError::Empty { .. } => "Empty",
            ServeError::Timeout { .. } => "Timeout",
            ServeError::Interrupted { .. } => "Interrupted",
            ServeError::Gone { .. } => "Gone",
            ServeError::TooLarge { .. } => "TooLarge",
        };
        f.write_str(name)
    }
}

impl std::error::Error for ServeError {}
