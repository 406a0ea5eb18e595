//! Messages that are not plain data, serialized with postcard over a byte channel (feature
//! `serde`).

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bytes::{ByteReceiver, ByteSender};
use crate::error::{RecvError, SendError};

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
        }
    }
}

impl std::error::Error for SerdeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SerdeError::Encode(e) | SerdeError::Decode(e) => Some(e),
            SerdeError::Send(e) => Some(e),
            SerdeError::Recv(e) => Some(e),
        }
    }
}

impl ByteSender {
    /// Serializes `value` with postcard and sends it as one message, waiting for room as long
    /// as a receiver is alive.
    ///
    /// # Errors
    /// [`SerdeError::Encode`], or [`SerdeError::Send`] as [`send`](ByteSender::send).
    ///
    /// # Examples
    /// ```
    /// use ringway_channel::{ByteReceiver, ByteSender, ChannelOptions};
    /// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    /// struct Order { id: u64, symbol: String, qty: i32 }
    /// # let name = format!("/ringway-doc-serde-{}", std::process::id());
    /// let mut tx = ByteSender::create(&name, &ChannelOptions::new())?;
    /// let mut rx = ByteReceiver::open(&name, &ChannelOptions::new())?;
    /// let order = Order { id: 7, symbol: "ACME".into(), qty: -3 };
    /// tx.send_serialized(&order)?;
    /// assert_eq!(rx.recv_deserialized::<Order>()?, order);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_serialized<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), SerdeError> {
        let bytes = postcard::to_allocvec(value).map_err(SerdeError::Encode)?;
        self.send(&bytes)
            .map_err(|e| SerdeError::Send(e.map(|_| ())))
    }
}

impl ByteReceiver {
    /// Receives one message and deserializes it with postcard, waiting as long as a sender is
    /// alive.
    ///
    /// # Errors
    /// [`SerdeError::Recv`] as [`recv`](ByteReceiver::recv), or [`SerdeError::Decode`] if the
    /// message does not decode as `V` (the message is consumed either way).
    pub fn recv_deserialized<V: DeserializeOwned>(&mut self) -> Result<V, SerdeError> {
        let mut bytes = Vec::new();
        self.recv(&mut bytes).map_err(SerdeError::Recv)?;
        postcard::from_bytes(&bytes).map_err(SerdeError::Decode)
    }
}
