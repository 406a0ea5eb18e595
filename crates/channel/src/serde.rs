//! Messages that are not plain data, serialized with postcard over a byte channel (feature
//! `serde`), with the serialized type recorded and checked like a typed channel's.
//!
//! Postcard's encoding carries no type information: the bytes of one type decode as another
//! without complaint, into garbage. So the type is declared on the channel
//! ([`ChannelOptions::serialized`]), recorded in the header by the creator, and checked by
//! every opener ([`Error::TypeMismatch`](crate::Error::TypeMismatch) at open, as for typed
//! channels); each `send_serialized`/`recv_deserialized` then checks its own type against
//! the declared one ([`SerdeError::WrongType`]) before touching the channel.
//!
//! The type is identified by its name without module paths (`Order`, `Vec<Order>`), the way
//! serde names types, so separately built programs that declare `Order` agree, or by
//! [`ChannelOptions::type_name`] when set. The name is checked, not the fields: two
//! different types of the same name are not told apart.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bytes::{ByteReceiver, ByteSender};
use crate::error::{RecvError, SendError};
use crate::options::ChannelOptions;
use ringway_ring::Wait;

/// Why a serialized send or receive failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SerdeError {
    /// The value could not be serialized.
    Encode(postcard::Error),
    /// The received bytes are not a valid encoding of the expected type.
    Decode(postcard::Error),
    /// The send failed (the serialized bytes are dropped).
    Send(SendError<()>),
    /// The receive failed.
    Recv(RecvError),
    /// The value's type is not the one the channel carries; nothing was sent or received.
    WrongType {
        /// The channel.
        channel: String,
        /// The type the endpoint was opened for with [`ChannelOptions::serialized`] (its
        /// `core::any::type_name`); `None` for a plain byte channel.
        expected: Option<&'static str>,
        /// The type of this call.
        found: &'static str,
    },
}

impl fmt::Display for SerdeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SerdeError::Encode(e) => write!(f, "send_serialized: cannot encode the value: {e}"),
            SerdeError::Decode(e) => write!(
                f,
                "recv_deserialized: the message is not a valid encoding of the expected type \
                 (do both sides use the same type definition?): {e}"
            ),
            SerdeError::Send(e) => e.fmt(f),
            SerdeError::Recv(e) => e.fmt(f),
            SerdeError::WrongType {
                channel,
                expected: Some(expected),
                found,
            } => write!(
                f,
                "channel {channel} carries serialized `{expected}` values (it was opened with \
                 ChannelOptions::serialized::<{expected}>()), not `{found}`: nothing was sent \
                 or received"
            ),
            SerdeError::WrongType {
                channel,
                expected: None,
                found,
            } => write!(
                f,
                "channel {channel} is a plain byte channel, with no serialized type to check \
                 `{found}` against: create and open it with \
                 ChannelOptions::serialized::<{found}>() on both sides"
            ),
        }
    }
}

impl std::error::Error for SerdeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SerdeError::Encode(e) | SerdeError::Decode(e) => Some(e),
            SerdeError::Send(e) => Some(e),
            SerdeError::Recv(e) => Some(e),
            SerdeError::WrongType { .. } => None,
        }
    }
}

impl ChannelOptions {
    /// Byte channels (feature `serde`): the channel carries values of `V` serialized with
    /// postcard. The creator records `V` in the header and an opener must name the same
    /// type (or it gets [`Error::TypeMismatch`](crate::Error::TypeMismatch)); the endpoints'
    /// `send_serialized`/`recv_deserialized` accept only `V`.
    ///
    /// `V` is recorded by its name without module paths (`Order`, `Vec<Order>`), so that
    /// programs that each declare `Order` agree, or by [`type_name`](ChannelOptions::type_name)
    /// when that is set.
    ///
    /// # Examples
    /// ```
    /// use ringway_channel::{ByteReceiver, ByteSender, ChannelOptions, Error};
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Order { id: u64, symbol: String }
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Quote { bid: f64, ask: f64 }
    /// # let name = format!("/ringway-doc-serialized-{}", std::process::id());
    /// let tx = ByteSender::create(&name, &ChannelOptions::new().serialized::<Order>())?;
    /// let err = ByteReceiver::open(&name, &ChannelOptions::new().serialized::<Quote>());
    /// assert!(matches!(err, Err(Error::TypeMismatch { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn serialized<V: ?Sized>(mut self) -> ChannelOptions {
        self.serialized = Some(core::any::type_name::<V>());
        self
    }
}

/// Checks the type of a call against the one the endpoint was opened for.
fn check_type<V: ?Sized>(opts: &ChannelOptions, channel: &str) -> Result<(), SerdeError> {
    let found = core::any::type_name::<V>();
    match opts.serialized {
        Some(expected) if expected == found => Ok(()),
        expected => Err(SerdeError::WrongType {
            channel: channel.to_owned(),
            expected,
            found,
        }),
    }
}

impl ByteSender {
    /// Serializes `value` with postcard and sends it as one message, waiting for room as long
    /// as a receiver is alive (feature `serde`). The channel must have been made with
    /// [`ChannelOptions::serialized::<V>()`](ChannelOptions::serialized).
    ///
    /// # Errors
    /// [`SerdeError::WrongType`] if `V` is not the channel's type (nothing is sent),
    /// [`SerdeError::Encode`], or [`SerdeError::Send`] as [`send`](ByteSender::send).
    ///
    /// # Examples
    /// ```
    /// use ringway_channel::{ByteReceiver, ByteSender, ChannelOptions, SerdeError};
    /// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    /// struct Order { id: u64, symbol: String, qty: i32 }
    /// # let name = format!("/ringway-doc-serde-{}", std::process::id());
    /// let opts = ChannelOptions::new().serialized::<Order>();
    /// let mut tx = ByteSender::create(&name, &opts)?;
    /// let mut rx = ByteReceiver::open(&name, &opts)?;
    /// let order = Order { id: 7, symbol: "ACME".into(), qty: -3 };
    /// tx.send_serialized(&order)?;
    /// // Another type is refused before it reaches the channel, either way.
    /// assert!(matches!(tx.send_serialized(&"ACME"), Err(SerdeError::WrongType { .. })));
    /// assert!(matches!(rx.recv_deserialized::<String>(), Err(SerdeError::WrongType { .. })));
    /// assert_eq!(rx.recv_deserialized::<Order>()?, order);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_serialized<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), SerdeError> {
        self.send_serialized_with(value, Wait::Forever)
    }

    /// Like [`send_serialized`](ByteSender::send_serialized), if there is room now (feature
    /// `serde`).
    ///
    /// # Errors
    /// [`SerdeError::Send`] with [`SendError::Full`], and as
    /// [`send_serialized`](ByteSender::send_serialized).
    pub fn try_send_serialized<V: Serialize + ?Sized>(
        &mut self,
        value: &V,
    ) -> Result<(), SerdeError> {
        self.send_serialized_with(value, Wait::Try)
    }

    /// Like [`send_serialized`](ByteSender::send_serialized), waiting up to `timeout` for room
    /// (feature `serde`).
    ///
    /// # Errors
    /// [`SerdeError::Send`] with [`SendError::Timeout`], and as
    /// [`send_serialized`](ByteSender::send_serialized).
    pub fn send_serialized_timeout<V: Serialize + ?Sized>(
        &mut self,
        value: &V,
        timeout: Duration,
    ) -> Result<(), SerdeError> {
        self.send_serialized_with(value, Wait::For(timeout))
    }

    fn send_serialized_with<V: Serialize + ?Sized>(
        &mut self,
        value: &V,
        wait: Wait,
    ) -> Result<(), SerdeError> {
        check_type::<V>(self.options(), self.channel())?;
        let bytes = postcard::to_allocvec(value).map_err(SerdeError::Encode)?;
        self.send_with(&bytes, wait)
            .map_err(|e| SerdeError::Send(e.map(|_| ())))
    }
}

impl ByteReceiver {
    /// Receives one message and deserializes it with postcard, waiting as long as a sender is
    /// alive (feature `serde`). The channel must have been opened with
    /// [`ChannelOptions::serialized::<V>()`](ChannelOptions::serialized).
    ///
    /// # Errors
    /// [`SerdeError::WrongType`] if `V` is not the channel's type (nothing is received),
    /// [`SerdeError::Recv`] as [`recv`](ByteReceiver::recv), or [`SerdeError::Decode`] if the
    /// message does not decode as `V` (a sender that lies about its type; the message is
    /// consumed).
    pub fn recv_deserialized<V: DeserializeOwned>(&mut self) -> Result<V, SerdeError> {
        self.recv_deserialized_with(Wait::Forever)
    }

    /// Like [`recv_deserialized`](ByteReceiver::recv_deserialized), if a message is there now
    /// (feature `serde`).
    ///
    /// # Errors
    /// [`SerdeError::Recv`] with [`RecvError::Empty`], and as
    /// [`recv_deserialized`](ByteReceiver::recv_deserialized).
    pub fn try_recv_deserialized<V: DeserializeOwned>(&mut self) -> Result<V, SerdeError> {
        self.recv_deserialized_with(Wait::Try)
    }

    /// Like [`recv_deserialized`](ByteReceiver::recv_deserialized), waiting up to `timeout`
    /// (feature `serde`).
    ///
    /// # Errors
    /// [`SerdeError::Recv`] with [`RecvError::Timeout`], and as
    /// [`recv_deserialized`](ByteReceiver::recv_deserialized).
    pub fn recv_deserialized_timeout<V: DeserializeOwned>(
        &mut self,
        timeout: Duration,
    ) -> Result<V, SerdeError> {
        self.recv_deserialized_with(Wait::For(timeout))
    }

    fn recv_deserialized_with<V: DeserializeOwned>(&mut self, wait: Wait) -> Result<V, SerdeError> {
        check_type::<V>(self.options(), self.channel())?;
        let mut bytes = Vec::new();
        self.recv_with(&mut bytes, wait).map_err(SerdeError::Recv)?;
        postcard::from_bytes(&bytes).map_err(SerdeError::Decode)
    }
}
