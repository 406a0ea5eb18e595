//! The service's rendezvous segment: created by the server's `bind` (taking over a name its
//! dead predecessor left), opened by clients, judged by `takeover` and the tools.
//!
//! One segment per service, made with the channel segment machinery: exclusive create with
//! takeover of a stale name, `0600`, room checked first, removed by the server when it
//! leaves (or by a client that finds the server dead, or by the next `bind` after a
//! `kill -9` of everything). Liveness is the channels' (open-file-description locks on the
//! segment's fd, pids in the same pid namespace, pids alone for System V), each party on a
//! byte of its own (see [`layout::CLAIM_BYTE`]). The workers serving it are in the header's
//! worker table (`workers.rs`): the service is alive while any of them is.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ringway_region::{Backing, ErrorKind, Region};
use ringway_ring::{Liveness, Party, PidLiveness, ProcessId, RingConfig, RingMemory, Token};

use super::doorbell::Bell;
use super::error::ServiceError;
use super::layout::{self, Ctl, Geometry, Header, Phase, SlotHeader};
use super::options::ServiceOptions;
use super::workers::{self, Worker};
use crate::error::Error;
use crate::liveness::{CREATOR_BYTE, LockLiveness};
use crate::options::Address;
use crate::takeover::Verdict;

/// How the parties of a service segment are judged alive.
#[derive(Debug, Clone)]
pub(crate) enum Judge {
    /// Locks on the segment's fd (POSIX shm, files), pids where they can be judged.
    Locks(Arc<LockLiveness>),
    /// Pids alone (System V: no fd).
    Pids,
}

impl Judge {
    pub(crate) fn for_region(region: &Region) -> Result<Judge, String> {
        match region.fd() {
            Some(fd) => {
                let file = fd
                    .try_clone_to_owned()
                    .map_err(|e| format!("dup of the segment fd: {e}"))?;
                Ok(Judge::Locks(Arc::new(LockLiveness::new(Arc::new(file)))))
            }
            None => Ok(Judge::Pids),
        }
    }

    /// Whether `party`, whose lock is on `byte`, is alive.
    pub(crate) fn alive(&self, party: &Party, byte: u32) -> bool {
        match self {
            Judge::Locks(locks) => locks.verdict(party, byte),
            Judge::Pids => PidLiveness.alive(party),
        }
    }

    /// Whether the client that claimed a slot, holding its lock on `byte`, still holds the
    /// claim: it takes the lock before its claim and keeps it until it leaves, so a released
    /// lock means gone even while its process lives on (System V: its pid alone).
    pub(crate) fn claimant_alive(&self, party: &Party, byte: u32) -> bool {
        match self {
            Judge::Locks(locks) => locks.locked(byte) && locks.verdict(party, byte),
            Judge::Pids => PidLiveness.alive(party),
        }
    }

    /// This process's lock on `byte` (`None` for System V).
    pub(crate) fn token(&self, byte: u32) -> Result<Option<OwnedFd>, String> {
        match self {
            Judge::Locks(locks) => locks.lock(byte).map(Some),
            Judge::Pids => Ok(None),
        }
    }
}

/// The liveness of one ring of the segment: the segment's judge, on the ring's own bytes.
#[derive(Debug)]
struct RingLiveness {
    judge: Judge,
    base: u32,
}

impl Liveness for RingLiveness {
    fn alive(&self, party: &Party) -> bool {
        self.judge
            .alive(party, self.base.saturating_add(party.index))
    }

    fn token(&self, index: u32) -> Result<Option<Token>, String> {
        Ok(self
            .judge
            .token(self.base.saturating_add(index))?
            .map(|fd| Box::new(fd) as Token))
    }

    fn creator_alive(&self, party: &Party) -> bool {
        self.judge.alive(party, CREATOR_BYTE)
    }
}

/// A mapped, initialised service segment and what this process read and checked of it.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) region: Arc<Region>,
    pub(crate) geometry: Geometry,
    /// How errors name the service: `POSIX shm "/kv"`.
    pub(crate) name: Arc<str>,
    pub(crate) judge: Judge,
    pub(crate) epoch: u64,
    /// The largest request and reply payloads.
    pub(crate) max_request: usize,
    pub(crate) max_reply: usize,
}

/// The two ring configurations of every slot.
#[derive(Debug, Clone)]
pub(crate) struct Rings {
    pub(crate) request: RingConfig,
    pub(crate) reply: RingConfig,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Segment {
    /// The header. Every field is an atomic, so a reference to it is a reference to atomics
    /// only, which other processes may write at any time.
    pub(crate) fn header(&self) -> &Header {
        header_of(&self.region)
    }

    /// Slot `slot`'s header (`slot < sessions`).
    pub(crate) fn slot(&self, slot: u32) -> &SlotHeader {
        assert!(slot < self.geometry.sessions, "slot {slot} out of range");
        let offset = self.geometry.slot_offset(slot) as usize;
        // SAFETY: the geometry was checked against the mapping's length (`Geometry::check`,
        // or built by this process for a mapping of `total_len`), so the slot header lies
        // inside the mapping, 128-byte aligned (page-aligned base, offsets multiples of 128);
        // it is made of atomics only, and the mapping lives as long as `self.region`.
        unsafe { &*self.region.as_ptr().add(offset).cast::<SlotHeader>() }
    }

    /// The memory of slot `slot`'s request (`reply == false`) or reply ring.
    pub(crate) fn ring_memory(&self, slot: u32, reply: bool) -> Result<RingMemory, Error> {
        let (offset, len) = if reply {
            (self.geometry.reply_offset(slot), self.geometry.reply_len)
        } else {
            (
                self.geometry.request_offset(slot),
                self.geometry.request_len,
            )
        };
        crate::segment::ring_memory_at(&self.region, offset as usize, len as usize, &self.name)
    }

    /// The liveness the endpoints of one of slot `slot`'s rings use.
    pub(crate) fn ring_liveness(&self, slot: u32, reply: bool) -> Arc<dyn Liveness> {
        Arc::new(RingLiveness {
            judge: self.judge.clone(),
            base: layout::ring_lock_base(slot, reply),
        })
    }

    /// The doorbell the server sleeps on.
    pub(crate) fn bell(&self) -> Bell<'_> {
        let header = self.header();
        Bell {
            seq: &header.bell,
            sleepers: &header.sleepers,
        }
    }

    /// Whether the service is still there: not closed by its last worker, and a worker
    /// alive by its lock or pid.
    pub(crate) fn service_alive(&self) -> bool {
        workers::service_alive(&self.judge, self.header())
    }

    /// Whether the service may be removed (see [`workers::abandoned`]).
    pub(crate) fn abandoned(&self) -> bool {
        workers::abandoned(&self.judge, self.header())
    }

    /// Worker entry `w`'s grants counter (monitoring).
    pub(crate) fn worker_grants(&self, w: u32) -> &std::sync::atomic::AtomicU64 {
        &self.header().workers[w as usize % layout::MAX_WORKERS as usize].grants
    }

    /// Reads slot `slot`'s `ctl` word once; `None` for a value no version writes.
    pub(crate) fn ctl(&self, slot: u32) -> Option<Ctl> {
        // SYNC(claim): Acquire pairs with the Release of every ctl CAS (either side), so the
        // identity a client wrote before CLAIMED, and the server's ring set-up before
        // GRANTED, are seen by whoever sees the phase.
        Ctl::decode(self.slot(slot).ctl.load(Acquire))
    }

    /// Reads slot `slot`'s `ctl` word once, undecoded (see [`ctl`](Segment::ctl)).
    pub(crate) fn raw_ctl(&self, slot: u32) -> u64 {
        // SYNC(claim): as in `ctl`.
        self.slot(slot).ctl.load(Acquire)
    }

    /// Moves slot `slot` from `from` to `to`; `false` if it held something else.
    pub(crate) fn swap_ctl(&self, slot: u32, from: Ctl, to: Ctl) -> bool {
        self.swap_raw(slot, from.encode(), to.encode())
    }

    /// [`swap_ctl`](Segment::swap_ctl) from a word as read (which may not decode).
    pub(crate) fn swap_raw(&self, slot: u32, from: u64, to: u64) -> bool {
        // SYNC(claim): Release publishes what the caller wrote before (see `ctl`).
        self.slot(slot)
            .ctl
            .compare_exchange(from, to, Release, Relaxed)
            .is_ok()
    }

    /// Creates the segment for the server's `bind`, taking over a stale name; a failure
    /// leaves nothing. Returns the segment and the binder's place in the worker table
    /// (entry 0).
    pub(crate) fn create(
        address: &Address,
        opts: &ServiceOptions,
        rings: &Rings,
        max_request: usize,
        max_reply: usize,
    ) -> Result<(Segment, Worker), ServiceError> {
        let backing = address.backing();
        let name = backing.to_string();
        if !matches!(
            backing,
            Backing::Posix { .. } | Backing::SysV { .. } | Backing::File { .. }
        ) {
            return Err(ServiceError::Incompatible {
                service: name,
                what: "a service needs a name other processes can open: POSIX shm, System V \
                       or a file"
                    .to_owned(),
            });
        }
        let invalid = |option: &'static str, reason: String| {
            ServiceError::Channel(Error::InvalidOptions {
                channel: name.clone(),
                option,
                reason,
            })
        };
        if opts.sessions == 0 || opts.sessions > layout::MAX_SESSIONS {
            return Err(invalid(
                "ServiceOptions::sessions",
                format!(
                    "{} sessions: use 1 ..= {}",
                    opts.sessions,
                    layout::MAX_SESSIONS
                ),
            ));
        }
        let config_error = |source| Error::Config {
            channel: name.clone(),
            source,
        };
        let request_len = rings.request.required_len().map_err(config_error)?;
        let reply_len = rings.reply.required_len().map_err(config_error)?;
        let geometry = Geometry::new(opts.sessions, request_len as u64, reply_len as u64)
            .and_then(|g| Some((g, usize::try_from(g.total_len()?).ok()?)));
        let Some((geometry, len)) = geometry else {
            return Err(invalid(
                "ServiceOptions::sessions",
                "the segment would be larger than memory can address; ask for fewer \
                 sessions or smaller rings"
                    .to_owned(),
            ));
        };
        crate::capacity::check_room(backing, len, &name)?;
        let region = Arc::new(crate::segment::create_or_take_over(
            backing,
            &name,
            &opts.channel,
            len,
            true,
        )?);
        let built = Segment::initialise(&region, &name, geometry, rings, max_request, max_reply);
        if built.is_err() {
            // Created with `persist` (the server manages the name), so remove it here.
            let _ = region.unlink();
        }
        built
    }

    fn initialise(
        region: &Arc<Region>,
        name: &str,
        geometry: Geometry,
        rings: &Rings,
        max_request: usize,
        max_reply: usize,
    ) -> Result<(Segment, Worker), ServiceError> {
        let unsupported = |what: String| Error::Unsupported {
            channel: name.to_owned(),
            what,
        };
        let judge = Judge::for_region(region).map_err(unsupported)?;
        let me = ProcessId::current();
        let created = now_ns();
        let segment = Segment {
            region: region.clone(),
            geometry,
            name: Arc::from(name),
            judge,
            epoch: created ^ (u64::from(me.pid) << 32) ^ me.start_time.rotate_left(17),
            max_request,
            max_reply,
        };
        // The binder's locks and worker entry are taken before `init` publishes the
        // segment: whoever sees it initialised (a process judging the name) sees it held.
        let worker = Worker::first(&segment).map_err(unsupported)?;
        let h = segment.header();
        h.magic.store(layout::MAGIC, Relaxed);
        h.version.store(layout::VERSION, Relaxed);
        h.sessions.store(geometry.sessions, Relaxed);
        h.slot_stride.store(geometry.slot_stride, Relaxed);
        h.request_len.store(geometry.request_len, Relaxed);
        h.reply_len.store(geometry.reply_len, Relaxed);
        h.epoch.store(segment.epoch, Relaxed);
        h.created_ns.store(created, Relaxed);
        h.server_pid.store(me.pid, Relaxed);
        h.server_start.store(me.start_time, Relaxed);
        h.server_pidns.store(ringway_ring::pid_namespace(), Relaxed);
        h.max_request.store(max_request as u64, Relaxed);
        h.max_reply.store(max_reply as u64, Relaxed);
        for slot in 0..geometry.sessions {
            segment
                .slot(slot)
                .ctl
                .store(Ctl::new(Phase::Free, 0, 0).encode(), Relaxed);
            segment.init_rings(slot, rings)?;
        }
        // SYNC(service-init): Release publishes everything above; pairs with the Acquire in
        // `wait_initialised` (clients) and `judge` (takers, tools).
        h.init.store(layout::INIT_READY, Release);
        Ok((segment, worker))
    }

    /// (Re-)initialises slot `slot`'s two rings: fresh indices, fresh registration tables,
    /// no records. Only while nobody is attached to them.
    pub(crate) fn init_rings(&self, slot: u32, rings: &Rings) -> Result<(), Error> {
        for (reply, config) in [(false, &rings.request), (true, &rings.reply)] {
            let memory = self.ring_memory(slot, reply)?;
            let init_offset = core::mem::offset_of!(ringway_ring::layout::Identity, init);
            // SAFETY: the ring memory is at least a ring header long (`from_raw` checked),
            // and the identity block starts at offset 0 (layout.md), so `init` is a live,
            // aligned u32 of the mapping, accessed as an atomic only.
            let init = unsafe {
                &*memory
                    .as_ptr()
                    .add(init_offset)
                    .cast::<std::sync::atomic::AtomicU32>()
            };
            // `init` refuses a ring that says it is initialised; nobody is attached (the
            // caller's promise), so clearing the word first makes it build a fresh one.
            init.store(0, Release);
            ringway_ring::init(&memory, config).map_err(|source| Error::Config {
                channel: self.name.to_string(),
                source,
            })?;
        }
        Ok(())
    }

    /// Opens the service `address` for a client, waiting until `deadline` for it to exist and
    /// be initialised. `Ok(None)`: not there (yet) by the deadline.
    pub(crate) fn open(
        address: &Address,
        opts: &ServiceOptions,
        deadline: Instant,
    ) -> Result<Segment, OpenFailure> {
        let name = address.to_string();
        let mut pause = Duration::from_micros(200);
        let nap = |pause: &mut Duration| -> Result<(), OpenFailure> {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(OpenFailure::Timeout);
            }
            let nap = (*pause).min(left);
            *pause = (*pause * 2).min(Duration::from_millis(20));
            match &opts.channel.interrupt {
                Some(stop) if stop.sleep(nap) => Err(OpenFailure::Interrupted),
                Some(_) => Ok(()),
                None => {
                    std::thread::sleep(nap);
                    Ok(())
                }
            }
        };
        let region = loop {
            match Region::open(address.backing(), &opts.channel.open_region()) {
                Ok(region) => break Arc::new(region),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::NotFound | ErrorKind::Empty | ErrorKind::TooSmall
                    ) =>
                {
                    nap(&mut pause)?;
                }
                Err(e) => return Err(OpenFailure::Error(e.into())),
            }
        };
        let incompatible = |what: String| {
            OpenFailure::Error(ServiceError::Incompatible {
                service: name.clone(),
                what,
            })
        };
        if region.len() < layout::SLOTS_OFFSET as usize {
            return Err(incompatible(format!(
                "{} bytes is too small for a service header",
                region.len()
            )));
        }
        let h = header_of(&region);
        loop {
            // SYNC(service-init): pairs with the Release store in `initialise`.
            if h.init.load(Acquire) == layout::INIT_READY {
                break;
            }
            let magic = h.magic.load(Relaxed);
            if magic != 0 && magic != layout::MAGIC {
                return Err(incompatible(format!(
                    "not a ringway service (magic {magic:#018x}{})",
                    if ringway_ring::layout::MAGIC == magic {
                        ": a channel's ring"
                    } else {
                        ""
                    }
                )));
            }
            nap(&mut pause)?;
        }
        let magic = h.magic.load(Relaxed);
        let version = h.version.load(Relaxed);
        if magic != layout::MAGIC || version != layout::VERSION {
            return Err(incompatible(format!(
                "magic {magic:#018x}, layout version {version} (this build speaks version {})",
                layout::VERSION
            )));
        }
        let geometry = Geometry {
            sessions: h.sessions.load(Relaxed),
            request_len: h.request_len.load(Relaxed),
            reply_len: h.reply_len.load(Relaxed),
            slot_stride: h.slot_stride.load(Relaxed),
        };
        geometry
            .check(region.len() as u64)
            .map_err(|what| incompatible(format!("bad geometry: {what}")))?;
        let judge = Judge::for_region(&region).map_err(|what| {
            OpenFailure::Error(
                Error::Unsupported {
                    channel: name.clone(),
                    what,
                }
                .into(),
            )
        })?;
        let max = |word: &std::sync::atomic::AtomicU64| {
            usize::try_from(word.load(Relaxed)).unwrap_or(usize::MAX)
        };
        Ok(Segment {
            geometry,
            name: Arc::from(name.as_str()),
            judge,
            epoch: h.epoch.load(Relaxed),
            max_request: max(&h.max_request),
            max_reply: max(&h.max_reply),
            region,
        })
    }

    /// Marks the service closed (its last worker left), wakes everyone who waits on the
    /// segment, and removes the name if it still names this segment.
    pub(crate) fn close_and_remove(&self) {
        self.close();
        let _ = self.region.unlink();
    }

    /// Marks the service left (clients see `Disconnected` and stop waiting for grants) and
    /// wakes everyone who waits on the segment.
    pub(crate) fn close(&self) {
        let h = self.header();
        h.flags.fetch_or(layout::FLAG_CLOSED, Release);
        super::doorbell::wake(&h.bell);
        for slot in 0..self.geometry.sessions {
            let granted = &self.slot(slot).granted;
            granted.fetch_add(1, Release);
            super::doorbell::wake(granted);
        }
    }
}

/// Why `Segment::open` returned without a segment.
#[derive(Debug)]
pub(crate) enum OpenFailure {
    Timeout,
    Interrupted,
    Error(ServiceError),
}

pub(crate) fn header_of(region: &Region) -> &Header {
    assert!(region.len() >= layout::SLOTS_OFFSET as usize);
    // SAFETY: the mapping is page-aligned and at least a header long (asserted), lives as
    // long as `region`, and the header is made of atomics only (other processes may write
    // them at any time; a read-only mapping is only loaded from).
    unsafe { &*region.as_ptr().cast::<Header>() }
}

fn server_party(h: &Header) -> Party {
    Party {
        index: u32::MAX,
        pid: h.server_pid.load(Relaxed),
        start_time: h.server_start.load(Relaxed),
        pidns: h.server_pidns.load(Relaxed),
    }
}

/// Whether `region` holds a service segment (its magic; initialised or not).
pub(crate) fn is_service(region: &Region) -> bool {
    region.len() >= layout::SLOTS_OFFSET as usize
        && header_of(region).magic.load(Relaxed) == layout::MAGIC
}

/// Takeover's verdict on a service segment: stale once every worker is dead or the last one
/// left, whatever its clients (they see `Disconnected` and reconnect to the new segment).
pub(crate) fn judge(region: Region) -> Verdict {
    let h = header_of(&region);
    // SYNC(service-init): an Acquire fence after a Relaxed load (the mapping may be
    // read-only); pairs with the Release store in `initialise`.
    let init = h.init.load(Relaxed);
    std::sync::atomic::fence(Acquire);
    if init != layout::INIT_READY {
        return Verdict::Held("being created (not initialised yet)".to_owned());
    }
    let Ok(judge) = Judge::for_region(&region) else {
        return Verdict::Foreign;
    };
    let stale = if h.version.load(Relaxed) == layout::VERSION_1 {
        !judge_service(&judge, h)
    } else {
        workers::abandoned(&judge, h)
    };
    if stale {
        return Verdict::Stale(region);
    }
    let age = SystemTime::now()
        .duration_since(UNIX_EPOCH + Duration::from_nanos(h.created_ns.load(Relaxed)))
        .map(|d| format!("bound {} s ago", d.as_secs()))
        .unwrap_or_else(|_| "bound just now".to_owned());
    let pids = if h.version.load(Relaxed) == layout::VERSION_1 {
        vec![server_party(h).pid]
    } else {
        workers::live_pids(&judge, h)
    };
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    Verdict::Held(format!(
        "a service whose workers are alive (pid {}, {age})",
        pids.join(", ")
    ))
}

/// Whether the service with header `h` is alive: a worker of its table (version 2), or its
/// one server (version 1, as that version judged it), alive and not closed.
pub(crate) fn judge_service(judge: &Judge, h: &Header) -> bool {
    if h.version.load(Relaxed) == layout::VERSION_1 {
        return h.flags.load(Relaxed) & layout::FLAG_CLOSED == 0
            && judge.alive(&server_party(h), CREATOR_BYTE);
    }
    workers::service_alive(judge, h)
}
