//! Errors of channels: setting one up ([`Error`]), sending ([`SendError`]) and receiving
//! ([`RecvError`]). Each says what happened, on which channel, and what to do; a send error
//! hands the value back.

use std::fmt;
use std::time::Duration;

use ringway_ring::{AttachError, Corruption, InitError};

use crate::message::MessageType;
use crate::options::Flavour;

/// Why a channel could not be created, opened or attached.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Creating, opening or mapping the shared memory failed (the region error says which
    /// object, why, and what to do).
    Region(ringway_region::Error),
    /// The options describe an impossible ring (a capacity or message size out of range).
    Config {
        /// The channel.
        channel: String,
        /// The ring's complaint.
        source: InitError,
    },
    /// A named channel did not appear (or was not initialised) within the open timeout.
    NotFound {
        /// The channel.
        channel: String,
        /// How long `open` waited.
        waited: Duration,
        /// The last error seen while waiting.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The shared memory is not a usable ring, or this side of it is taken.
    Attach {
        /// The channel.
        channel: String,
        /// What the ring found.
        source: AttachError,
    },
    /// The channel carries other messages than this endpoint's.
    TypeMismatch {
        /// The channel.
        channel: String,
        /// What this endpoint sends or receives.
        ours: Box<MessageType>,
        /// What the channel was created for.
        theirs: Box<MessageType>,
    },
    /// The channel is of the other flavour.
    FlavourMismatch {
        /// The channel.
        channel: String,
        /// The flavour asked for.
        ours: Flavour,
        /// The channel's flavour.
        theirs: Flavour,
    },
    /// A typed channel's message type does not fit a message slot (larger than the ring's
    /// largest message), or a clone was asked of an SPSC endpoint.
    Unsupported {
        /// The channel.
        channel: String,
        /// What cannot be done, and why.
        what: String,
    },
}

impl Error {
    pub(crate) fn attach(channel: &str, source: AttachError) -> Error {
        Error::Attach {
            channel: channel.to_owned(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Region(e) => e.fmt(f),
            Error::Config { channel, source } => write!(f, "channel {channel}: {source}"),
            Error::NotFound {
                channel,
                waited,
                source,
            } => write!(
                f,
                "open channel {channel}: not ready after waiting {waited:?} ({source}); \
                 is the creating process running, and did it use the same name?"
            ),
            Error::Attach { channel, source } => match source {
                AttachError::Busy { side, pid } => write!(
                    f,
                    "channel {channel}: its {} is already attached by process {pid}; an SPSC \
                     channel has one of each (use Flavour::Mpmc for more)",
                    side_name(*side)
                ),
                AttachError::Abandoned { side } => write!(
                    f,
                    "channel {channel}: its {} has already come and gone; an SPSC side \
                     attaches once, so create a new channel",
                    side_name(*side)
                ),
                other => write!(f, "channel {channel}: {other}"),
            },
            Error::TypeMismatch {
                channel,
                ours,
                theirs,
            } => write!(
                f,
                "channel {channel} carries {theirs}, but this endpoint is for {ours}: {}",
                ours.mismatch(theirs)
            ),
            Error::FlavourMismatch {
                channel,
                ours,
                theirs,
            } => write!(
                f,
                "channel {channel} is {theirs}, but this endpoint asked for {ours}; open it \
                 with ChannelOptions::flavour(Flavour::{theirs:?})"
            ),
            Error::Unsupported { channel, what } => write!(f, "channel {channel}: {what}"),
        }
    }
}

fn side_name(side: ringway_ring::Side) -> &'static str {
    match side {
        ringway_ring::Side::Producer => "sender",
        ringway_ring::Side::Consumer => "receiver",
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Region(e) => Some(e),
            Error::Config { source, .. } => Some(source),
            Error::NotFound { source, .. } => Some(source.as_ref()),
            Error::Attach { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<ringway_region::Error> for Error {
    fn from(e: ringway_region::Error) -> Error {
        Error::Region(e)
    }
}

/// Why a send did not happen; the value comes back in every case.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError<T> {
    /// No room now (`try_send`).
    Full(T),
    /// No room before the deadline (`send_timeout`).
    Timeout(T),
    /// No receiver is left: every receiver dropped or died.
    Disconnected(T),
    /// The message is larger than the channel carries (byte channels).
    TooLarge {
        /// The message.
        value: T,
        /// Its length.
        len: usize,
        /// The channel's largest message.
        max: usize,
    },
    /// The other side wrote values that break the ring's layout.
    Corrupted {
        /// The message.
        value: T,
        /// What was wrong.
        corruption: Corruption,
    },
}

impl<T> SendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendError::Full(v)
            | SendError::Timeout(v)
            | SendError::Disconnected(v)
            | SendError::TooLarge { value: v, .. }
            | SendError::Corrupted { value: v, .. } => v,
        }
    }

    /// The same error with the value mapped (for example dropped, with `|_| ()`).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> SendError<U> {
        match self {
            SendError::Full(v) => SendError::Full(f(v)),
            SendError::Timeout(v) => SendError::Timeout(f(v)),
            SendError::Disconnected(v) => SendError::Disconnected(f(v)),
            SendError::TooLarge { value, len, max } => SendError::TooLarge {
                value: f(value),
                len,
                max,
            },
            SendError::Corrupted { value, corruption } => SendError::Corrupted {
                value: f(value),
                corruption,
            },
        }
    }

    /// Whether the receiving side is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendError::Disconnected(_))
    }

    pub(crate) fn from_push(e: ringway_ring::PushError, value: T) -> SendError<T> {
        use ringway_ring::PushError as P;
        match e {
            P::Full => SendError::Full(value),
            P::Timeout => SendError::Timeout(value),
            P::TooLarge { len, max } => SendError::TooLarge { value, len, max },
            P::Corrupted(corruption) => SendError::Corrupted { value, corruption },
            // `Closed`, and any kind a later ring version adds: nobody to send to.
            _ => SendError::Disconnected(value),
        }
    }

    fn describe(&self) -> String {
        match self {
            SendError::Full(_) => "channel is full".into(),
            SendError::Timeout(_) => "timed out waiting for room".into(),
            SendError::Disconnected(_) => "no receiver left (it dropped its end or died)".into(),
            SendError::TooLarge { len, max, .. } => {
                format!("message of {len} bytes exceeds the channel's maximum of {max}")
            }
            SendError::Corrupted { corruption, .. } => corruption.to_string(),
        }
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The value may be large or not Debug; show only what happened.
        write!(f, "SendError({})", self.describe())
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "send: {}", self.describe())
    }
}

impl<T> std::error::Error for SendError<T> {}

/// Why a receive returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// Nothing now (`try_recv`).
    Empty,
    /// Nothing before the deadline (`recv_timeout`).
    Timeout,
    /// Every sender dropped or died, and everything they sent has been received.
    Disconnected,
    /// The other side wrote values that break the ring's layout, or a message of the wrong
    /// size for the type.
    Corrupted(Corruption),
}

impl RecvError {
    pub(crate) fn from_pop(e: ringway_ring::PopError) -> RecvError {
        use ringway_ring::PopError as P;
        match e {
            P::Empty => RecvError::Empty,
            P::Timeout => RecvError::Timeout,
            P::Corrupted(c) => RecvError::Corrupted(c),
            _ => RecvError::Disconnected,
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Empty => f.write_str("recv: channel is empty"),
            RecvError::Timeout => f.write_str("recv: timed out waiting for a message"),
            RecvError::Disconnected => {
                f.write_str("recv: no sender left (dropped or died) and every message was received")
            }
            RecvError::Corrupted(c) => write!(f, "recv: {c}"),
        }
    }
}

impl std::error::Error for RecvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecvError::Corrupted(c) => Some(c),
            _ => None,
        }
    }
}
