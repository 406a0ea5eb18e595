//! Errors of channels: setting one up ([`Error`]), sending ([`SendError`]) and receiving
//! ([`RecvError`]). Each says what happened, on which channel, and what to do; a send error
//! hands the value back.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ringway_ring::{AttachError, Corruption, InitError};

use crate::message::MessageType;
use crate::options::Flavour;

/// Why a channel could not be created, opened or attached.
///
/// `{:?}` prints the same text as `{}` (so `fn main() -> Result<(), Box<dyn Error>>` shows the
/// message, not a struct); `{:#?}` prints the variant and its fields.
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
    /// `create` found the name taken by a channel that is in use (or that it could not judge
    /// abandoned); a channel whose processes are all dead is taken over instead (see
    /// [`ChannelOptions::takeover`](crate::ChannelOptions::takeover)).
    AlreadyExists {
        /// The channel.
        channel: String,
        /// Who holds it, and since when.
        holder: String,
        /// The region's error.
        source: Box<ringway_region::Error>,
    },
    /// `open` was waiting for the channel's creator when the channel's
    /// [`Interrupt`](crate::Interrupt) was raised; nothing was opened.
    Interrupted {
        /// The channel.
        channel: String,
    },
    /// A typed channel's message type does not fit a message slot (larger than the ring's
    /// largest message), or a clone was asked of an SPSC endpoint.
    Unsupported {
        /// The channel.
        channel: String,
        /// What cannot be done, and why.
        what: String,
    },
    /// An option asks for something meaningless (a capacity of zero messages, a largest
    /// message of zero bytes, `max_message` on a typed channel) or a ring too large to build.
    /// Checked before anything is created.
    InvalidOptions {
        /// The channel.
        channel: String,
        /// The option, e.g. `ChannelOptions::capacity`.
        option: &'static str,
        /// What is wrong with its value, and what to use instead.
        reason: String,
    },
    /// The ring does not fit where its memory would live (the free space of `/dev/shm` or of
    /// the file's filesystem, or the System V limits). Checked before anything is created.
    NoSpace {
        /// The channel.
        channel: String,
        /// Bytes the channel needs.
        requested: u64,
        /// Bytes available there now.
        available: u64,
        /// Where, e.g. `/dev/shm` (and its size), or `kernel.shmmax`.
        place: String,
        /// How to get more room there, e.g. `docker run --shm-size`.
        grow: &'static str,
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
            // The region's text offers RegionOptions::allow_unsealed, which a channel does not
            // have: what a channel user can do is take memfds made by Channel::memfd.
            Error::Region(ringway_region::Error::Unsealed { what, seals }) => write!(
                f,
                "take channel {what} from fd: not sealed (seals {seals:#x}): without \
                 F_SEAL_SHRINK and F_SEAL_GROW a peer could truncate it under both sides; \
                 send the fd of a channel made with Channel::memfd, which seals it"
            ),
            Error::Region(e) => e.fmt(f),
            Error::Config { channel, source } => write!(f, "channel {channel}: {source}"),
            Error::NotFound {
                channel,
                waited,
                source,
            } => {
                write!(
                    f,
                    "open channel {channel}: not ready after waiting {} (",
                    Rounded(*waited)
                )?;
                match source.downcast_ref::<AttachError>() {
                    // The ring's own text prints the wait unrounded; it is said above.
                    Some(AttachError::NotInitialized { .. }) => f.write_str(
                        "it exists, but its creator did not finish initialising it: did it \
                         crash during create?",
                    )?,
                    _ => write!(f, "{source}")?,
                }
                f.write_str(
                    "); is the creating process running, and did it use the same name? \
                     (ChannelOptions::open_timeout sets how long to wait)",
                )
            }
            Error::Attach { channel, source } => match source {
                AttachError::Busy { side, pid } => write!(
                    f,
                    "channel {channel}: its {} is already attached by process {pid}; an SPSC \
                     channel has one of each (use Flavour::Mpmc for more)",
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
            Error::InvalidOptions {
                channel,
                option,
                reason,
            } => write!(f, "create channel {channel}: {option}: {reason}"),
            Error::NoSpace {
                channel,
                requested,
                available,
                place,
                grow,
            } => write!(
                f,
                "create channel {channel}: its ring needs {} but {place} has {} available: \
                 ask for fewer or smaller messages (ChannelOptions::capacity, \
                 ChannelOptions::max_message), or {grow}",
                Bytes(*requested),
                Bytes(*available),
            ),
            Error::AlreadyExists {
                channel, holder, ..
            } => write!(
                f,
                "create {channel}: the name is taken: {holder}. Once every process using it has \
                 died, create takes it over; to remove it from code anyway, call \
                 Address::remove (processes that have it mapped keep their mapping)"
            ),
            Error::Interrupted { channel } => write!(
                f,
                "channel {channel}: interrupted while waiting for its creator (the channel's Interrupt was raised)"
            ),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            // What `main` returning `Err` prints: the message, not the struct.
            return fmt::Display::fmt(self, f);
        }
        match self {
            Error::Region(e) => f.debug_tuple("Region").field(e).finish(),
            Error::Config { channel, source } => f
                .debug_struct("Config")
                .field("channel", channel)
                .field("source", source)
                .finish(),
            Error::NotFound {
                channel,
                waited,
                source,
            } => f
                .debug_struct("NotFound")
                .field("channel", channel)
                .field("waited", waited)
                .field("source", source)
                .finish(),
            Error::Attach { channel, source } => f
                .debug_struct("Attach")
                .field("channel", channel)
                .field("source", source)
                .finish(),
            Error::TypeMismatch {
                channel,
                ours,
                theirs,
            } => f
                .debug_struct("TypeMismatch")
                .field("channel", channel)
                .field("ours", ours)
                .field("theirs", theirs)
                .finish(),
            Error::FlavourMismatch {
                channel,
                ours,
                theirs,
            } => f
                .debug_struct("FlavourMismatch")
                .field("channel", channel)
                .field("ours", ours)
                .field("theirs", theirs)
                .finish(),
            Error::Unsupported { channel, what } => f
                .debug_struct("Unsupported")
                .field("channel", channel)
                .field("what", what)
                .finish(),
            Error::InvalidOptions {
                channel,
                option,
                reason,
            } => f
                .debug_struct("InvalidOptions")
                .field("channel", channel)
                .field("option", option)
                .field("reason", reason)
                .finish(),
            Error::NoSpace {
                channel,
                requested,
                available,
                place,
                grow,
            } => f
                .debug_struct("NoSpace")
                .field("channel", channel)
                .field("requested", requested)
                .field("available", available)
                .field("place", place)
                .field("grow", grow)
                .finish(),
            Error::AlreadyExists {
                channel,
                holder,
                source,
            } => f
                .debug_struct("AlreadyExists")
                .field("channel", channel)
                .field("holder", holder)
                .field("source", source)
                .finish(),
            Error::Interrupted { channel } => f
                .debug_struct("Interrupted")
                .field("channel", channel)
                .finish(),
        }
    }
}

/// A byte count for people: `2147483648 bytes (2 GiB)`.
pub(crate) struct Bytes(pub(crate) u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
        let n = self.0;
        write!(f, "{n} bytes")?;
        if n >= 1024 {
            let mut value = n as f64 / 1024.0;
            let mut unit = 0;
            while value >= 1024.0 && unit + 1 < UNITS.len() {
                value /= 1024.0;
                unit += 1;
            }
            let rounded = (value * 10.0).round() / 10.0;
            if rounded.fract() == 0.0 {
                write!(f, " ({rounded:.0} {})", UNITS[unit])?;
            } else {
                write!(f, " ({rounded:.1} {})", UNITS[unit])?;
            }
        }
        Ok(())
    }
}

/// A duration for people, rounded: `10 s`, `1.5 s`, `250 ms`, `80 µs`.
pub(crate) struct Rounded(pub(crate) Duration);

impl fmt::Display for Rounded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d >= Duration::from_millis(9950) {
            write!(f, "{} s", (d.as_millis() + 500) / 1000)
        } else if d >= Duration::from_secs(1) {
            let tenths = (d.as_millis() + 50) / 100;
            if tenths % 10 == 0 {
                write!(f, "{} s", tenths / 10)
            } else {
                write!(f, "{}.{} s", tenths / 10, tenths % 10)
            }
        } else if d >= Duration::from_millis(1) {
            write!(f, "{} ms", (d.as_micros() + 500) / 1000)
        } else {
            write!(f, "{} µs", d.as_micros())
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
        Error::Region(channel_hint(e))
    }
}

/// A region error with its hint said in a channel user's terms: what a channel user can
/// change is a [`ChannelOptions`](crate::ChannelOptions) setting, not a `RegionOptions` one,
/// and a channel cannot be opened read-only.
fn channel_hint(e: ringway_region::Error) -> ringway_region::Error {
    use ringway_region::{ErrorKind, Op};
    match e {
        ringway_region::Error::Os {
            op,
            what,
            call,
            kind,
            hint,
            source,
        } => {
            let hint = match (kind, op) {
                (ErrorKind::PermissionDenied, Op::Open) => Some(
                    "created by another user, with mode 0600? the creator can widen it with \
                     ChannelOptions::mode (e.g. 0o660 for a group), and both users need read \
                     and write permission"
                        .to_owned(),
                ),
                (ErrorKind::PermissionDenied, Op::Create) => {
                    Some("no permission to create it here: pick a place you can write".to_owned())
                }
                (ErrorKind::NoSpace, Op::Create) => hint.map(|hint| {
                    format!(
                        "{hint}; or ask for fewer or smaller messages \
                         (ChannelOptions::capacity, ChannelOptions::max_message)"
                    )
                }),
                _ => hint,
            };
            ringway_region::Error::Os {
                op,
                what,
                call,
                kind,
                hint,
                source,
            }
        }
        other => other,
    }
}

/// Why a send did not happen; the value comes back in every case, and the error names the
/// channel.
///
/// `{}` and `{:?}` print the same text, e.g. `send on channel POSIX shm "/ticks": no receiver
/// left (it dropped its end or died)`; the value is not printed (it may be large, or not
/// `Debug`).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError<T> {
    /// No room now (`try_send`).
    Full {
        /// The message.
        value: T,
        /// The channel, as [`Sender::channel`](crate::Sender::channel) names it.
        channel: Arc<str>,
    },
    /// No room before the deadline (`send_timeout`).
    Timeout {
        /// The message.
        value: T,
        /// The channel.
        channel: Arc<str>,
    },
    /// The channel's [`Interrupt`](crate::Interrupt) was raised while the send waited for
    /// room (`send`, `send_timeout`): nothing was sent.
    Interrupted {
        /// The message.
        value: T,
        /// The channel.
        channel: Arc<str>,
    },
    /// No receiver is left: every receiver dropped or died.
    Disconnected {
        /// The message.
        value: T,
        /// The channel.
        channel: Arc<str>,
    },
    /// The message is larger than the channel carries (byte channels).
    TooLarge {
        /// The message.
        value: T,
        /// The channel.
        channel: Arc<str>,
        /// Its length.
        len: usize,
        /// The channel's largest message.
        max: usize,
    },
    /// The other side wrote values that break the ring's layout.
    Corrupted {
        /// The message.
        value: T,
        /// The channel.
        channel: Arc<str>,
        /// What was wrong.
        corruption: Corruption,
    },
}

impl<T> SendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendError::Full { value, .. }
            | SendError::Timeout { value, .. }
            | SendError::Interrupted { value, .. }
            | SendError::Disconnected { value, .. }
            | SendError::TooLarge { value, .. }
            | SendError::Corrupted { value, .. } => value,
        }
    }

    /// The channel the send was on, e.g. `POSIX shm "/ticks"`.
    pub fn channel(&self) -> &str {
        match self {
            SendError::Full { channel, .. }
            | SendError::Timeout { channel, .. }
            | SendError::Interrupted { channel, .. }
            | SendError::Disconnected { channel, .. }
            | SendError::TooLarge { channel, .. }
            | SendError::Corrupted { channel, .. } => channel,
        }
    }

    /// The same error with the value mapped (for example dropped, with `|_| ()`).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> SendError<U> {
        match self {
            SendError::Full { value, channel } => SendError::Full {
                value: f(value),
                channel,
            },
            SendError::Timeout { value, channel } => SendError::Timeout {
                value: f(value),
                channel,
            },
            SendError::Interrupted { value, channel } => SendError::Interrupted {
                value: f(value),
                channel,
            },
            SendError::Disconnected { value, channel } => SendError::Disconnected {
                value: f(value),
                channel,
            },
            SendError::TooLarge {
                value,
                channel,
                len,
                max,
            } => SendError::TooLarge {
                value: f(value),
                channel,
                len,
                max,
            },
            SendError::Corrupted {
                value,
                channel,
                corruption,
            } => SendError::Corrupted {
                value: f(value),
                channel,
                corruption,
            },
        }
    }

    /// Whether there was no room now (`try_send`).
    pub fn is_full(&self) -> bool {
        matches!(self, SendError::Full { .. })
    }

    /// Whether the deadline passed without room (`send_timeout`).
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendError::Timeout { .. })
    }

    /// Whether the receiving side is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendError::Disconnected { .. })
    }

    pub(crate) fn from_push(
        e: ringway_ring::PushError,
        value: T,
        channel: &Arc<str>,
    ) -> SendError<T> {
        use ringway_ring::PushError as P;
        let channel = channel.clone();
        match e {
            P::Full => SendError::Full { value, channel },
            P::Timeout => SendError::Timeout { value, channel },
            P::Interrupted => SendError::Interrupted { value, channel },
            P::TooLarge { len, max } => SendError::TooLarge {
                value,
                channel,
                len,
                max,
            },
            P::Corrupted(corruption) => SendError::Corrupted {
                value,
                channel,
                corruption,
            },
            // `Closed`, and any kind a later ring version adds: nobody to send to.
            _ => SendError::Disconnected { value, channel },
        }
    }

    fn describe(&self) -> String {
        match self {
            SendError::Full { .. } => "channel is full".into(),
            SendError::Timeout { .. } => "timed out waiting for room".into(),
            SendError::Interrupted { .. } => {
                "interrupted while waiting for room (nothing sent)".into()
            }
            SendError::Disconnected { .. } => {
                "no receiver left (it dropped its end or died)".into()
            }
            SendError::TooLarge { len, max, .. } => format!(
                "message of {len} bytes exceeds the channel's maximum of {max} (the creator \
                 sets it with ChannelOptions::max_message)"
            ),
            SendError::Corrupted { corruption, .. } => corruption.to_string(),
        }
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The value may be large or not Debug; show only what happened, as Display does.
        fmt::Display::fmt(self, f)
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "send on channel {}: {}", self.channel(), self.describe())
    }
}

impl<T> std::error::Error for SendError<T> {}

/// Why a receive returned no message.
///
/// `{:?}` prints the same text as `{}`; `{:#?}` prints the variant.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// Nothing now (`try_recv`).
    Empty,
    /// Nothing before the deadline (`recv_timeout`).
    Timeout,
    /// The channel's [`Interrupt`](crate::Interrupt) was raised while the receive waited
    /// (`recv`, `recv_timeout`): nothing was received.
    Interrupted,
    /// Every sender dropped or died, and everything they sent has been received.
    Disconnected,
    /// Broadcast subscribers only: the publisher overwrote this many messages before this
    /// subscriber received them (a channel with [`Policy::Overwrite`](crate::Policy)). The
    /// subscriber now stands at the oldest message still in the channel, which the next call
    /// returns; nothing torn is ever delivered.
    Lagged(u64),
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
            P::Interrupted => RecvError::Interrupted,
            P::Corrupted(c) => RecvError::Corrupted(c),
            P::Lagged(n) => RecvError::Lagged(n),
            _ => RecvError::Disconnected,
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Empty => f.write_str("recv: channel is empty"),
            RecvError::Timeout => f.write_str("recv: timed out waiting for a message"),
            RecvError::Interrupted => {
                f.write_str("recv: interrupted while waiting for a message (nothing received)")
            }
            RecvError::Disconnected => {
                f.write_str("recv: no sender left (dropped or died) and every message was received")
            }
            RecvError::Lagged(n) => write!(
                f,
                "recv: this subscriber fell behind and the publisher overwrote {n} messages it \
                 had not received (the next recv returns the oldest one left)"
            ),
            RecvError::Corrupted(c) => write!(f, "recv: {c}"),
        }
    }
}

impl fmt::Debug for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            return fmt::Display::fmt(self, f);
        }
        match self {
            RecvError::Empty => f.write_str("Empty"),
            RecvError::Timeout => f.write_str("Timeout"),
            RecvError::Interrupted => f.write_str("Interrupted"),
            RecvError::Disconnected => f.write_str("Disconnected"),
            RecvError::Lagged(n) => f.debug_tuple("Lagged").field(n).finish(),
            RecvError::Corrupted(c) => f.debug_tuple("Corrupted").field(c).finish(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_rounded() {
        let cases = [
            (Duration::new(10, 128_884), "10 s"),
            (Duration::from_millis(59_960), "60 s"),
            (Duration::from_millis(1_500), "1.5 s"),
            (Duration::from_millis(2_004), "2 s"),
            (Duration::from_micros(50_312), "50 ms"),
            (Duration::from_micros(80), "80 µs"),
        ];
        for (duration, text) in cases {
            assert_eq!(Rounded(duration).to_string(), text, "{duration:?}");
        }
    }

    #[test]
    fn sizes_print_in_bytes_and_units() {
        assert_eq!(Bytes(100).to_string(), "100 bytes");
        assert_eq!(
            Bytes((2 << 30) + 4096).to_string(),
            "2147487744 bytes (2 GiB)"
        );
        assert_eq!(Bytes(3 << 19).to_string(), "1572864 bytes (1.5 MiB)");
    }

    fn os_error(
        op: ringway_region::Op,
        kind: ringway_region::ErrorKind,
        hint: &str,
    ) -> ringway_region::Error {
        ringway_region::Error::Os {
            op,
            what: "POSIX shm \"/ticks\"".to_owned(),
            call: "shm_open",
            kind,
            hint: Some(hint.to_owned()),
            source: std::io::Error::from_raw_os_error(13),
        }
    }

    #[test]
    fn region_hints_are_said_in_channel_terms() {
        use ringway_region::{ErrorKind, Op};
        let denied = Error::from(os_error(
            Op::Open,
            ErrorKind::PermissionDenied,
            "created by another user, with mode 0600? the creator can widen it with \
             RegionOptions::mode, or open it read-only",
        ))
        .to_string();
        assert!(denied.contains("ChannelOptions::mode"), "{denied}");
        assert!(!denied.contains("RegionOptions"), "{denied}");
        assert!(!denied.contains("read-only"), "{denied}");
        let full = Error::from(os_error(
            Op::Create,
            ErrorKind::NoSpace,
            "/dev/shm has only 64 MiB available",
        ))
        .to_string();
        assert!(full.contains("ChannelOptions::capacity"), "{full}");
        let unsealed = Error::from(ringway_region::Error::Unsealed {
            what: "memfd \"jobs\"".to_owned(),
            seals: 0,
        })
        .to_string();
        assert!(unsealed.contains("Channel::memfd"), "{unsealed}");
        assert!(!unsealed.contains("RegionOptions"), "{unsealed}");
    }

    #[test]
    fn debug_is_the_message_and_alternate_debug_the_fields() {
        let err = Error::Unsupported {
            channel: "memfd \"jobs\"".to_owned(),
            what: "cannot clone".to_owned(),
        };
        assert_eq!(format!("{err:?}"), "channel memfd \"jobs\": cannot clone");
        assert!(format!("{err:#?}").starts_with("Unsupported {"));
        let sent: SendError<u64> = SendError::Full {
            value: 7,
            channel: Arc::from("POSIX shm \"/ticks\""),
        };
        assert_eq!(
            format!("{sent:?}"),
            "send on channel POSIX shm \"/ticks\": channel is full"
        );
        assert_eq!(
            format!("{:?}", RecvError::Timeout),
            RecvError::Timeout.to_string()
        );
        assert_eq!(format!("{:#?}", RecvError::Timeout), "Timeout");
    }
}
