//! The worker table: the processes serving one service's sessions, each registered in an
//! entry of the header (see [`layout::WorkerEntry`]) and holding two liveness locks.
//!
//! - `bind` registers worker 0 before `init` publishes the segment; `join` takes a free
//!   entry, or the entry of a worker that died, by CAS, holding the entry's lock byte
//!   (`WORKER_BYTE + w`) from before the CAS, so whoever sees the entry sees it held.
//! - Every worker also holds a *read* lock on `CREATOR_BYTE`, which many can hold at once.
//!   The service is alive while any registered worker is ([`service_alive`]); a takeover
//!   judges it stale only when every one is dead or the last one left.
//! - A worker that leaves drops its sessions, gives its entry back, lets go of its locks, and
//!   then tries a *write* lock on `CREATOR_BYTE`: the kernel grants it only if no other
//!   worker holds its read lock there, so "am I the last?" and "may a joiner still come in?"
//!   are one atomic question. The last one marks the service closed and removes the name
//!   while it holds that lock; a joiner takes its read lock first and checks the closed flag
//!   after, so it either keeps the last one from closing or sees the flag. Only backings with
//!   an fd have these locks: System V services have one worker.

use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::fence;

use ringway_ring::{Party, ProcessId};

use super::layout::{self, Header, MAX_WORKERS, WorkerEntry, worker_word};
use super::segment::{Judge, Segment};
use crate::liveness::CREATOR_BYTE;

/// This process's place in the worker table, held while it serves.
#[derive(Debug)]
pub(crate) struct Worker {
    /// The entry, `0 .. MAX_WORKERS`; also the owner written into the `ctl` of its sessions.
    pub(crate) index: u32,
    /// The read lock on `WORKER_BYTE + index` (`None` for System V).
    entry_lock: Option<OwnedFd>,
    /// The read lock on `CREATOR_BYTE` (`None` for System V).
    held: Option<OwnedFd>,
}

/// Why a join did not register.
#[derive(Debug)]
pub(crate) enum JoinFailure {
    /// Every entry is held by a live worker.
    Full,
    /// The service is closing (its last worker is leaving) or every worker is dead: open the
    /// name again, or bind it.
    Gone(&'static str),
    /// Worker processes need liveness locks (an fd): System V has none.
    Unsupported(String),
}

fn entry(h: &Header, w: u32) -> &WorkerEntry {
    &h.workers[w as usize]
}

/// Whether worker entry `w` holds a live worker (joining or active).
pub(crate) fn worker_alive(judge: &Judge, h: &Header, w: u32) -> bool {
    if w >= MAX_WORKERS {
        return false;
    }
    let e = entry(h, w);
    // SYNC(worker): Acquire pairs with the Release store of `ACTIVE` (join, bind) and of
    // `FREE` (leave): an adopter that sees the entry free also sees every write the worker
    // made to its slots before leaving.
    let word = e.word.load(Acquire);
    let (state, pid) = (word >> 56, word as u32);
    let byte = layout::WORKER_BYTE + w;
    match state {
        layout::WORKER_ACTIVE => {
            let party = Party {
                index: w,
                pid,
                start_time: e.start.load(Relaxed),
                pidns: e.pidns.load(Relaxed),
            };
            judge.alive(&party, byte)
        }
        // Its identity may not be written yet: the lock says (it is taken before the CAS).
        layout::WORKER_JOINING => match judge {
            Judge::Locks(locks) => locks.locked(byte),
            Judge::Pids => ringway_ring::is_alive(pid, 0),
        },
        _ => false,
    }
}

/// The entries holding live workers, as a bit mask.
pub(crate) fn live_workers(judge: &Judge, h: &Header) -> u32 {
    (0..MAX_WORKERS)
        .filter(|&w| worker_alive(judge, h, w))
        .fold(0, |mask, w| mask | 1 << w)
}

/// Whether some worker holds its read lock on `CREATOR_BYTE` (`None`: System V, no locks).
/// The kernel's answer: a process writing the header cannot fake or hide it.
fn held(judge: &Judge) -> Option<bool> {
    match judge {
        Judge::Locks(locks) => Some(locks.locked(CREATOR_BYTE)),
        Judge::Pids => None,
    }
}

/// Whether the service is up: not closed by its last worker, and a worker alive by the
/// table or holding its lock.
pub(crate) fn service_alive(judge: &Judge, h: &Header) -> bool {
    // SYNC(close): Acquire pairs with the Release `fetch_or` in `Segment::close`.
    h.flags.load(Acquire) & layout::FLAG_CLOSED == 0
        && (live_workers(judge, h) != 0 || held(judge) == Some(true))
}

/// Whether the service may be removed or taken over: no worker alive by the table, and none
/// holding its lock. The closed flag is not consulted: a scribbled flag or table alone never
/// lets a client or a `bind` remove a service some worker still holds (a worker that really
/// left has let go of its lock).
pub(crate) fn abandoned(judge: &Judge, h: &Header) -> bool {
    live_workers(judge, h) == 0 && held(judge) != Some(true)
}

/// The pids of the live workers, for messages.
pub(crate) fn live_pids(judge: &Judge, h: &Header) -> Vec<u32> {
    (0..MAX_WORKERS)
        .filter(|&w| worker_alive(judge, h, w))
        .map(|w| entry(h, w).word.load(Relaxed) as u32)
        .collect()
}

impl Worker {
    /// Registers this process as worker 0 of a segment it is creating (before `init`).
    pub(crate) fn first(seg: &Segment) -> Result<Worker, String> {
        let held = seg.judge.token(CREATOR_BYTE)?;
        let entry_lock = seg.judge.token(layout::WORKER_BYTE)?;
        let me = ProcessId::current();
        let e = entry(seg.header(), 0);
        e.start.store(me.start_time, Relaxed);
        e.pidns.store(ringway_ring::pid_namespace(), Relaxed);
        // Published with everything else by the Release store of `init`.
        e.word
            .store(worker_word(layout::WORKER_ACTIVE, me.pid), Relaxed);
        Ok(Worker {
            index: 0,
            entry_lock,
            held,
        })
    }

    /// Registers this process as one more worker of a live service.
    pub(crate) fn join(seg: &Segment) -> Result<Worker, JoinFailure> {
        let Judge::Locks(locks) = &seg.judge else {
            return Err(JoinFailure::Unsupported(
                "worker processes need a service with liveness locks (POSIX shm or a file); \
                 a System V service has one worker"
                    .to_owned(),
            ));
        };
        // Fails while the last worker holds its write lock there: it is closing.
        let held = locks
            .lock(CREATOR_BYTE)
            .map_err(|_| JoinFailure::Gone("its last worker is leaving"))?;
        let h = seg.header();
        let me = ProcessId::current();
        for w in 0..MAX_WORKERS {
            let e = entry(h, w);
            let word = e.word.load(Acquire);
            if word >> 56 != layout::WORKER_FREE && worker_alive(&seg.judge, h, w) {
                continue;
            }
            // The lock before the CAS: whoever sees the entry taken sees it held.
            let Ok(entry_lock) = locks.lock(layout::WORKER_BYTE + w) else {
                continue;
            };
            let joining = worker_word(layout::WORKER_JOINING, me.pid);
            if e.word
                .compare_exchange(word, joining, Relaxed, Relaxed)
                .is_err()
            {
                continue; // another joiner took it
            }
            e.start.store(me.start_time, Relaxed);
            e.pidns.store(ringway_ring::pid_namespace(), Relaxed);
            e.grants.store(0, Relaxed);
            // SYNC(worker): Release publishes the identity above; pairs with the Acquire in
            // `worker_alive`.
            e.word
                .store(worker_word(layout::WORKER_ACTIVE, me.pid), Release);
            let worker = Worker {
                index: w,
                entry_lock: Some(entry_lock),
                held: Some(held),
            };
            // SYNC(close): the read lock above was taken before this load; a last worker
            // that got its write lock first has stored the flag before releasing it.
            fence(SeqCst);
            if h.flags.load(Acquire) & layout::FLAG_CLOSED != 0 {
                worker.deregister(seg);
                return Err(JoinFailure::Gone("its last worker left"));
            }
            let others = live_workers(&seg.judge, h) & !(1 << w);
            if others == 0 {
                // Every other worker is dead: the service is stale (the next `bind` takes it
                // over), not ours to revive.
                worker.deregister(seg);
                return Err(JoinFailure::Gone("every worker died"));
            }
            return Ok(worker);
        }
        Err(JoinFailure::Full)
    }

    /// Gives the entry back and lets go of the locks.
    fn deregister(self, seg: &Segment) {
        // SYNC(worker): Release publishes every write this worker made to its slots; pairs
        // with the Acquire in `worker_alive` of a worker that adopts them.
        entry(seg.header(), self.index)
            .word
            .store(worker_word(layout::WORKER_FREE, 0), Release);
        drop(self.entry_lock);
        drop(self.held);
    }

    /// Leaves the service (after dropping every session's ends): gives the entry back, and if
    /// no other worker holds the service, closes it and removes its name.
    pub(crate) fn leave(self, seg: &Segment) {
        let single = self.held.is_none();
        self.deregister(seg);
        fence(SeqCst);
        let fd = seg.region.fd();
        match (single, fd) {
            (false, Some(fd)) => {
                // A process of ours forking (another thread spawning a child) holds a copy of
                // our lock fds until its exec closes them (O_CLOEXEC): retry a while before
                // concluding another worker holds the byte.
                let deadline = std::time::Instant::now() + std::time::Duration::from_millis(100);
                loop {
                    match crate::liveness::try_lock_exclusive(fd, CREATOR_BYTE) {
                        // No read lock left on the byte: no other worker, and none can join
                        // before the flag is set (a joiner's read lock would fail meanwhile).
                        Ok(Some(_last)) => return seg.close_and_remove(),
                        Ok(None) if std::time::Instant::now() < deadline => {
                            std::thread::sleep(std::time::Duration::from_millis(1));
                        }
                        // Held all along (another worker), or the kernel cannot be asked:
                        // judge the table (a joiner in the middle of joining is there as
                        // JOINING once it took the entry).
                        Ok(None) | Err(_) => {
                            if live_workers(&seg.judge, seg.header()) == 0 {
                                seg.close_and_remove();
                            }
                            return;
                        }
                    }
                }
            }
            // System V: one worker, so this one was the last.
            _ => seg.close_and_remove(),
        }
    }
}
