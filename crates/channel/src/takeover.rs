//! Creating a named channel over the remains of one whose processes all died.
//!
//! A process killed with `SIGKILL`, or that left through `std::process::exit` or an unhandled
//! Ctrl-C, never removes its channel's name. When a service restarts, its `create` finds the
//! name taken. If the channel there is a ringway ring and every party ever registered in it
//! (and its creator) is dead or gone, `create` removes it and creates the new one:
//!
//! 1. open the object as it is and judge it with the same liveness the endpoints use (locks,
//!    or pids in this pid namespace): any live party, or a creator still holding it, or an
//!    object that is not an initialised ringway ring, and the name is left alone;
//! 2. take an exclusive lock on a byte of the *old* object (`F_OFD_SETLK`, without waiting)
//!    and judge it again under the lock (someone may have attached to it meanwhile); a
//!    process that does not get the lock is racing another taker, and stops there;
//! 3. still under the lock, remove the name, but only if it still names the object judged
//!    (same device and inode; a System V segment by its shmid), so a channel someone else
//!    created in the meantime is never removed, and create exclusively (`O_EXCL`,
//!    `IPC_EXCL`). The lock makes "check the name, remove it, create" one step among takers:
//!    without it, a taker could check the name while it still named the old object, another
//!    could remove and re-create it, and the first would then remove the second's new channel
//!    by name (seen in about one race in a hundred). Of several processes racing through
//!    these steps for one stale name exactly one creates; the others get
//!    [`Error::AlreadyExists`]. System V segments have no fd to lock, and need none: they are
//!    removed by shmid, which a new segment never shares.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringway_region::{Backing, ErrorKind, Region, RegionOptions};
use ringway_ring::RingMemory;

use crate::error::Error;

/// What step 1 found.
pub(crate) enum Verdict {
    /// Every party and the creator are dead: the name may be taken over.
    Stale(Region),
    /// A ringway channel in use: a description of who holds it, and since when.
    Held(String),
    /// Gone meanwhile (someone else took it over or removed it): try creating again.
    Gone,
    /// Not an initialised ringway channel of this version, or it could not be inspected: not
    /// ours to judge, so the name is left alone and the create fails as it did.
    Foreign,
}

/// Judges the object that `backing` names now.
pub(crate) fn judge(backing: &Backing) -> Verdict {
    let region = match Region::open(backing, &RegionOptions::new().read_only(true)) {
        Ok(region) => region,
        // Gone meanwhile (someone else took it over, or removed it): try creating again.
        Err(e) if e.kind() == ErrorKind::NotFound => return Verdict::Gone,
        Err(_) => return Verdict::Foreign,
    };
    judge_region(region)
}

/// Judges an opened object (again, under the taker's lock).
pub(crate) fn judge_region(region: Region) -> Verdict {
    // A service's rendezvous segment is judged by its server, not by a ring's parties.
    if crate::service::is_service(&region) {
        return crate::service::judge(region);
    }
    let keep: ringway_ring::KeepAlive = std::sync::Arc::new(());
    // SAFETY: the mapping is valid for `len` bytes while `region` lives, which outlives
    // `memory` (dropped at the end of this function, before `region` is returned or dropped);
    // the memory is mapped read-only and only given to `inspect_with`, which only loads.
    let memory = match unsafe { RingMemory::from_raw(region.as_ptr(), region.len(), Some(keep)) } {
        Ok(memory) => memory,
        Err(_) => return Verdict::Foreign,
    };
    let liveness = crate::party_liveness(&region);
    let info = match ringway_ring::inspect_with(&memory, &*liveness) {
        Ok(info) => info,
        // A creator between its create and its `init`: in use. (One that crashed right there
        // leaves an object nobody can judge; `ringway rm` removes it.)
        Err(ringway_ring::AttachError::NotInitialized { .. }) => {
            return Verdict::Held("being created (not initialised yet)".to_owned());
        }
        Err(ringway_ring::AttachError::BadMagic { found: 0 }) => {
            return Verdict::Held("being created (not initialised yet)".to_owned());
        }
        Err(_) => return Verdict::Foreign,
    };
    drop(memory);
    let live: Vec<String> = info
        .producers
        .iter()
        .map(|p| ("sender", p))
        .chain(info.consumers.iter().map(|p| ("receiver", p)))
        .filter(|(_, p)| p.alive)
        .map(|(side, p)| format!("a {side}, pid {}", p.pid))
        .collect();
    let age = SystemTime::now()
        .duration_since(UNIX_EPOCH + Duration::from_nanos(info.created_ns))
        .map(|d| format!("created {} s ago", d.as_secs()))
        .unwrap_or_else(|_| "created just now".to_owned());
    if live.is_empty() && !info.creator_alive {
        return Verdict::Stale(region);
    }
    let mut holders = live;
    if info.creator_alive {
        holders.push(format!("its creator, pid {}", info.creator_pid));
    }
    Verdict::Held(format!("in use by {} ({age})", holders.join(", ")))
}

/// Step 2: the exclusive lock of a taker on the old object, or `None` if another taker
/// holds it (or the object cannot be locked: then it is not ours to take over). Objects
/// without an fd (System V) need no lock.
pub(crate) enum Claim {
    Locked(Option<std::os::fd::OwnedFd>),
    Busy,
}

pub(crate) fn claim(region: &Region) -> Claim {
    match region.fd() {
        None => Claim::Locked(None),
        Some(fd) => match crate::liveness::try_lock_exclusive(fd, crate::liveness::TAKEOVER_BYTE) {
            Ok(Some(lock)) => Claim::Locked(Some(lock)),
            Ok(None) | Err(_) => Claim::Busy,
        },
    }
}

/// Step 3: removes the name of the stale object `region` if it still names it.
pub(crate) fn remove(region: &Region) {
    // `unlink` checks identity (POSIX, file) or works by shmid (System V): a name that now
    // names another object is left alone (`Replaced`), and one already gone is fine.
    let _ = region.unlink();
}

/// The error for a name that stays taken.
pub(crate) fn taken(name: &str, holder: String, source: ringway_region::Error) -> Error {
    Error::AlreadyExists {
        channel: name.to_owned(),
        holder,
        source: Box::new(source),
    }
}
