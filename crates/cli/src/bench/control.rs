//! How the parent and the peers of one measurement coordinate, whatever the transport under
//! test. Each peer inherits three descriptors for it (`--control READY,GO,PAGE`):
//!
//! - a **start gate**, so both peers start their clocks together. Without it a peer that is
//!   still starting (exec, a busy CPU) would eat into the other's window. Each peer builds its
//!   side of the link, writes one byte to the *ready* pipe and blocks reading one byte from the
//!   *go* pipe; the parent, once every peer is ready, writes one byte per peer to *go*. Pipes,
//!   not spinning: a waiting peer must not take the CPU the other needs to start.
//! - a **stop flag**, word 0 of a shared [`SharedPage`], which the throughput receiver sets when
//!   its measured window closes; the sender checks it between batches of messages (a load of a
//!   line nobody writes until then: no coherence traffic) and stops. So the window always lies
//!   inside the sending period, however late either peer was scheduled, and no clock of the
//!   sender decides anything.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;

use super::shm::{self, SharedPage};
use super::transport::PeerError;

/// The parent's side of one measurement's controls.
#[derive(Debug)]
pub(crate) struct Control {
    /// Where ready bytes arrive; `None` once all arrived or every peer closed it.
    ready_rx: Option<io::PipeReader>,
    /// Where the go bytes are written; `None` once written.
    go_tx: Option<io::PipeWriter>,
    /// The peers' ends `[ready, go, page]`, held until the peers are spawned.
    peer_ends: Option<[OwnedFd; 3]>,
    expected: usize,
    arrived: usize,
}

impl Control {
    /// Controls for `expected` peers.
    ///
    /// # Errors
    /// Creating the pipes or the shared page.
    pub(crate) fn new(expected: usize) -> io::Result<Self> {
        let (ready_rx, ready_tx) = io::pipe()?;
        let (go_rx, go_tx) = io::pipe()?;
        let page = shm::create(c"ringway-bench-control")?;
        Ok(Control {
            ready_rx: Some(ready_rx),
            go_tx: Some(go_tx),
            peer_ends: Some([ready_tx.into(), go_rx.into(), page]),
            expected,
            arrived: 0,
        })
    }

    /// The descriptors each peer inherits, `[ready, go, page]` (empty once
    /// [`Control::close_peer_ends`] ran).
    pub(crate) fn peer_fds(&self) -> Vec<BorrowedFd<'_>> {
        self.peer_ends.iter().flatten().map(AsFd::as_fd).collect()
    }

    /// Closes the parent's copies of the peers' ends once every peer is spawned, so that the
    /// ready pipe reports end of file when all peers are gone.
    pub(crate) fn close_peer_ends(&mut self) {
        self.peer_ends = None;
    }

    /// The descriptor to poll while peers are still getting ready.
    pub(crate) fn pending(&self) -> Option<BorrowedFd<'_>> {
        self.ready_rx.as_ref().map(AsFd::as_fd)
    }

    /// Reads the ready bytes that arrived; once every peer is ready, opens the gate. Errors are
    /// not returned: a peer that is gone is seen, and reported, by the supervisor.
    pub(crate) fn on_readable(&mut self) {
        let Some(rx) = &mut self.ready_rx else {
            return;
        };
        let mut buf = [0u8; 16];
        match rx.read(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Ok(0) | Err(_) => {
                self.ready_rx = None;
                return;
            }
            Ok(n) => self.arrived += n,
        }
        if self.arrived >= self.expected {
            self.ready_rx = None;
            if let Some(mut go) = self.go_tx.take() {
                // A few bytes: one atomic pipe write. It fails only when every peer is gone.
                let _ = go.write_all(&vec![b'g'; self.expected]);
            }
        }
    }
}

/// A peer's side of the controls.
#[derive(Debug)]
pub(crate) struct PeerControl {
    ready: File,
    go: File,
    page: SharedPage,
}

impl PeerControl {
    /// The controls of a peer that inherited `[ready, go, page]`.
    ///
    /// # Errors
    /// Mapping the shared page.
    pub(crate) fn new([ready, go, page]: [OwnedFd; 3]) -> io::Result<Self> {
        Ok(PeerControl {
            ready: ready.into(),
            go: go.into(),
            page: SharedPage::map(&page)?,
        })
    }

    /// Says this side is ready and waits until every side is. Call it once, after the link is
    /// built and right before the timed part starts.
    ///
    /// # Errors
    /// When the parent closed the gate without opening it (it gave up on the measurement).
    pub(crate) fn wait_start(&mut self) -> Result<(), PeerError> {
        self.ready
            .write_all(b"r")
            .map_err(|e| PeerError::io("signal ready on the start gate", e))?;
        let mut byte = [0u8; 1];
        self.go
            .read_exact(&mut byte)
            .map_err(|e| PeerError::io("wait for the start gate", e))
    }

    /// Whether the receiver has asked the sender to stop.
    pub(crate) fn stop_requested(&self) -> bool {
        // SYNC(stop): Relaxed both ends: a bare signal, it publishes no data.
        self.page.word(0).load(Ordering::Relaxed) != 0
    }

    /// Asks the sender to stop (the receiver's window is over).
    pub(crate) fn request_stop(&self) {
        // SYNC(stop): Relaxed both ends: a bare signal, it publishes no data.
        self.page.word(0).store(1, Ordering::Relaxed);
    }
}
