//! The bridge's errors: each says what was tried, on which channel, key expression or
//! endpoint, and what to change.

use std::fmt;
use std::path::PathBuf;

use crate::Fingerprint;

/// Why a bridge could not start, or why one of its routes stopped.
///
/// `{:?}` prints the same text as `{}`, so a `main` returning it shows the message.
#[non_exhaustive]
pub enum BridgeError {
    /// Opening the local ringway channel of a route failed.
    Channel {
        /// The route, e.g. `out /ticks -> ringway/ticks`.
        route: String,
        /// The channel's own error (it names the channel and what to do).
        source: ringway_channel::Error,
    },
    /// A Zenoh call failed: opening the session, declaring a publisher or subscriber, a put.
    Zenoh {
        /// What was tried, on what, e.g. `listen on tcp/10.0.0.1:7447`.
        what: String,
        /// Zenoh's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The configuration (flags or file) is wrong.
    Config {
        /// The file, when it came from one.
        file: Option<PathBuf>,
        /// The line in the file (1-based), 0 for a flag.
        line: usize,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// A sample on an inbound route carries another message type than the route's channel:
    /// it was refused, and the route stopped rather than deliver garbage.
    TypeMismatch {
        /// The route.
        route: String,
        /// What the local channel carries.
        ours: Fingerprint,
        /// What the publishing bridge said the sample is.
        theirs: Fingerprint,
    },
    /// A typed sample whose payload is not one message long.
    BadPayload {
        /// The route.
        route: String,
        /// The payload's length.
        len: usize,
        /// The message size.
        expected: usize,
    },
    /// An operating-system call of the bridge's own failed (a thread, a signal mask, a file).
    Io {
        /// What was tried, on what.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The local channel broke under the route (corrupted, or its peer closed it for good).
    Local {
        /// The route.
        route: String,
        /// What the channel reported.
        message: String,
    },
}

impl BridgeError {
    /// A [`BridgeError::Zenoh`]: `what` was tried, and Zenoh said `source`.
    pub fn zenoh(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> BridgeError {
        BridgeError::Zenoh {
            what: what.into(),
            source: source.into(),
        }
    }

    /// A [`BridgeError::Io`]: `what` was tried, and the OS said `source`.
    pub fn io(what: impl Into<String>, source: impl Into<std::io::Error>) -> BridgeError {
        BridgeError::Io {
            what: what.into(),
            source: source.into(),
        }
    }

    pub(crate) fn config(
        file: Option<&PathBuf>,
        line: usize,
        message: impl Into<String>,
    ) -> BridgeError {
        BridgeError::Config {
            file: file.cloned(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BridgeError::Channel { route, source } => write!(f, "route {route}: {source}"),
            BridgeError::Zenoh { what, source } => write!(f, "zenoh: {what}: {source}"),
            BridgeError::Config {
                file: Some(file),
                line,
                message,
            } => write!(f, "{}:{line}: {message}", file.display()),
            BridgeError::Config {
                file: None,
                message,
                ..
            } => write!(f, "bridge configuration: {message}"),
            BridgeError::TypeMismatch {
                route,
                ours,
                theirs,
            } => write!(
                f,
                "route {route}: refused a sample of {theirs}: the local channel carries {ours}; \
                 run the publishing side with the same message type (or route it to another \
                 key expression)"
            ),
            BridgeError::BadPayload {
                route,
                len,
                expected,
            } => write!(
                f,
                "route {route}: refused a sample of {len} bytes: the channel's messages are \
                 {expected} bytes (is the publisher a ringway bridge of the same type?)"
            ),
            BridgeError::Local { route, message } => write!(f, "route {route}: {message}"),
            BridgeError::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl fmt::Debug for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            match self {
                BridgeError::Channel { route, source } => f
                    .debug_struct("Channel")
                    .field("route", route)
                    .field("source", source)
                    .finish(),
                other => write!(f, "{other}"),
            }
        } else {
            fmt::Display::fmt(self, f)
        }
    }
}

impl std::error::Error for BridgeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BridgeError::Channel { source, .. } => Some(source),
            BridgeError::Zenoh { source, .. } => Some(source.as_ref()),
            BridgeError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
