//! The read-only data area of a subscriber's mapping.
//!
//! A broadcast reader never writes the ring's data area (only its own registration entry
//! and the header's wait words), so a subscriber's process maps the data area read-only
//! (`mprotect(PROT_READ)`): a bug elsewhere in that process (a stray pointer, a misused
//! `unsafe`) faults at once instead of corrupting the messages every other subscriber
//! reads. That protection belongs to a mapping, and a mapping belongs to a [`Shared`]: every
//! endpoint made from one `Shared` (a [`BroadcastChannel`](crate::BroadcastChannel), or
//! `try_clone`) uses the same addresses. So the decision is made per `Shared`, under its
//! lock:
//!
//! - a subscriber protects the data area unless a publisher has ever attached through the
//!   same `Shared` in this process (it would fault on its next message);
//! - a publisher attaching through a `Shared` whose data area a subscriber protected makes it
//!   writable again first, and from then on no subscriber of that `Shared` protects it.
//!
//! Endpoints made by `create` or `open` each map the segment on their own, so a publisher and
//! a subscriber in one process made that way do not affect each other. A child made by
//! `fork` inherits both the mapping's protection and this state (they are copied together),
//! so a child that takes the publisher of an inherited channel unprotects its own copy.
//!
//! Protection is best effort: where `mprotect` refuses (huge pages whose size does not
//! divide the data offset) the subscriber works unprotected;
//! [`Subscriber::is_data_protected`](crate::Subscriber::is_data_protected) says which.

use ringway_ring::broadcast::Reader;

use crate::error::Error;
use crate::segment::Shared;

/// What this process did to its view of one segment's data area.
#[derive(Debug, Default)]
pub(crate) struct DataGuard {
    /// A publisher attached through this mapping: it must stay writable.
    writer: bool,
    /// The data area is mapped read-only here.
    protected: bool,
    /// The byte range protected (offset, length), from the geometry the protecting reader
    /// attached with (checked against the mapping by its attach).
    range: (usize, usize),
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, DataGuard> {
    // The state is two flags updated together; a panic elsewhere cannot leave them torn.
    shared
        .data_guard
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A subscriber attached through `shared`: protect the data area unless a publisher may
/// write through the same mapping. Returns whether it is protected.
pub(super) fn reader_joins(shared: &Shared, reader: &Reader) -> bool {
    let mut guard = lock(shared);
    if guard.writer || guard.protected {
        return guard.protected;
    }
    // SAFETY: `shared.memory` is over `shared.region`, a mapping of this process's own. The
    // only code that writes the data area through it is a broadcast writer, and writers attach
    // through `writer_joins`, which takes this lock and makes the area writable again before
    // the writer exists; the region writes nothing there itself (its SIGBUS guard maps new
    // pages over lost ones instead of writing). The rest of the last page is the region's
    // tail padding, which nothing uses.
    guard.protected = unsafe { reader.protect_data() }.is_ok();
    let geo = reader.geometry();
    guard.range = (
        geo.data_offset as usize,
        (geo.total_len - geo.data_offset) as usize,
    );
    guard.protected
}

/// A publisher is about to attach through `shared`: make the data area writable if a
/// subscriber protected it, and keep it so.
pub(super) fn writer_joins(shared: &Shared) -> Result<(), Error> {
    let mut guard = lock(shared);
    guard.writer = true;
    if !guard.protected {
        return Ok(());
    }
    // The range `Reader::protect_data` protected: its geometry's data area, which its attach
    // checked lies inside the memory, that is inside the region's mapping.
    let (offset, len) = guard.range;
    // SAFETY: the range lies inside this process's mapping of the region (see above), which
    // lives as long as `shared`; mprotect changes only this process's view, and making pages
    // writable again breaks nothing that relied on them being read-only (only the guard did).
    let rc = unsafe {
        libc::mprotect(
            shared.region.as_ptr().add(offset).cast(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
        )
    };
    if rc != 0 {
        return Err(Error::Unsupported {
            channel: shared.name.clone(),
            what: format!(
                "attach a publisher: a subscriber in this process made the data area \
                 read-only and making it writable again failed: {}",
                std::io::Error::last_os_error()
            ),
        });
    }
    guard.protected = false;
    Ok(())
}

/// Whether the data area is read-only in this process's view of `shared`.
pub(super) fn is_protected(shared: &Shared) -> bool {
    lock(shared).protected
}
