//! The local end of a route: a ringway channel the bridge reads (out) or writes (in), as
//! bytes, whatever its message type.

use std::time::Duration;

use ringway_channel::{
    ByteBatch, ByteReceiver, ByteSender, Message, Receiver, RecvError, SendError, Sender,
};

/// The most messages taken from a ring at once: what an outbound bridge holds between its
/// ring and Zenoh, and so part of what a crash of it can lose.
pub(crate) const BATCH: usize = 256;

/// A channel an outbound route reads.
pub(crate) trait Source: Send {
    /// Waits up to `timeout` for a message, then hands every ready one (at most [`BATCH`])
    /// to `each`, in order. Returns how many.
    fn take(&mut self, timeout: Duration, each: &mut dyn FnMut(&[u8])) -> Result<usize, RecvError>;
}

/// What a [`Sink`] did with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Put {
    /// In the channel.
    Sent,
    /// No room now (or no room before the timeout).
    Full,
    /// No receiver attached to the channel.
    NoReceiver,
}

/// A channel an inbound route writes.
pub(crate) trait Sink: Send {
    /// Sends `msg`, waiting up to `timeout` for room (`Duration::ZERO`: not at all).
    fn put(&mut self, msg: &[u8], timeout: Duration) -> Result<Put, String>;
}

impl Source for (ByteReceiver, ByteBatch) {
    fn take(&mut self, timeout: Duration, each: &mut dyn FnMut(&[u8])) -> Result<usize, RecvError> {
        let (rx, batch) = self;
        batch.clear();
        let n = rx.recv_batch_timeout(batch, BATCH, timeout)?;
        for msg in batch.iter() {
            each(msg);
        }
        Ok(n)
    }
}

impl<T: Message + Send> Source for (Receiver<T>, Vec<T>) {
    fn take(&mut self, timeout: Duration, each: &mut dyn FnMut(&[u8])) -> Result<usize, RecvError> {
        let (rx, values) = self;
        values.clear();
        let n = rx.recv_batch_timeout(values, BATCH, timeout)?;
        for value in values.iter() {
            // SAFETY: `value` is a live, initialised `T`, and the slice covers exactly its
            // `size_of::<T>()` bytes for as long as it is borrowed. Every byte of a `T` is
            // initialised: `Message` is implemented only through `#[derive(Message)]`, which
            // refuses a struct with padding at compile time, and for `bytemuck::Pod` types,
            // which have none (the trait's `# Safety` contract).
            let bytes = unsafe {
                std::slice::from_raw_parts(std::ptr::from_ref(value).cast::<u8>(), size_of::<T>())
            };
            each(bytes);
        }
        Ok(n)
    }
}

fn put_result<T>(r: Result<(), SendError<T>>) -> Result<Put, String> {
    match r {
        Ok(()) => Ok(Put::Sent),
        Err(SendError::Full { .. } | SendError::Timeout { .. }) => Ok(Put::Full),
        Err(SendError::Disconnected { .. }) => Ok(Put::NoReceiver),
        Err(e) => Err(e.to_string()),
    }
}

impl Sink for ByteSender {
    fn put(&mut self, msg: &[u8], timeout: Duration) -> Result<Put, String> {
        put_result(if timeout.is_zero() {
            self.try_send(msg)
        } else {
            self.send_timeout(msg, timeout)
        })
    }
}

impl<T: Message + Send> Sink for Sender<T> {
    /// Writes the message in place through a loan (no `T` is ever made from untrusted bytes
    /// here: the length was checked by the caller, and the receiver copies it out as a `T`,
    /// which `Message` allows for any bytes). A full channel is polled every millisecond up
    /// to `timeout`: typed channels have no timed loan.
    fn put(&mut self, msg: &[u8], timeout: Duration) -> Result<Put, String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match self.try_loan() {
                Ok(mut loan) => {
                    loan.write_bytes(0, msg);
                    loan.commit();
                    return Ok(Put::Sent);
                }
                Err(SendError::Full { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return put_result(Err(e)),
            }
        }
    }
}
