//! The shared memory under a channel: creating or opening it, checking what it carries, and
//! attaching endpoints to its ring.
//!
//! A [`Shared`] is the region (mapped), the ring memory over it, and what this process
//! expects of it. Endpoints hold it through an `Arc`, with a [`Membership`] that counts them
//! in the ring header's `users` field: a named channel's name is removed when the last
//! endpoint, in any process, leaves, so nothing is left in `/dev/shm` after a clean run. A
//! process that crashes cannot give its count back; the survivor that leaves last removes
//! the name when no registered process is alive, and `ringway clean` removes segments whose
//! processes all died.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ringway_region::{Backing, ErrorKind, Region};
use ringway_ring::{
    AttachOptions, Geometry, RingConfig, RingKind, RingMemory, mpmc, spsc, wait_initialized,
};

use crate::error::Error;
use crate::liveness;
use crate::message::MessageType;
use crate::options::{Address, ChannelOptions, Flavour};
use crate::takeover;

/// A region holding an initialised ring, and what this process expects of it.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) region: Arc<Region>,
    pub(crate) memory: RingMemory,
    pub(crate) geometry: Geometry,
    /// How errors name the channel: `POSIX shm "/ticks"`, `memfd "jobs"`, ...
    pub(crate) name: String,
    /// Named channels remove their name with their last endpoint.
    named: bool,
    pub(crate) opts: ChannelOptions,
    /// The creator of a named channel counts one user before `init`, so an opener that comes
    /// and goes before the creator attaches cannot remove the name; the creator's first
    /// endpoint takes that count instead of adding one.
    precounted: AtomicBool,
    /// How the endpoints (and `anyone_alive`) tell live parties from dead ones.
    pub(crate) liveness: Arc<dyn ringway_ring::Liveness>,
    /// The creator's lock on [`liveness::CREATOR_BYTE`], held while this process has the
    /// channel it created open, so a stale-name takeover never replaces it.
    _creator_token: Option<ringway_ring::Token>,
    /// Broadcast: whether this process's view of the data area is read-only (see
    /// `broadcast::guard`).
    pub(crate) data_guard: std::sync::Mutex<crate::broadcast::DataGuard>,
}

/// Creates the region, taking over a stale name (see `takeover`) when that is allowed.
pub(crate) fn create_or_take_over(
    backing: &Backing,
    name: &str,
    opts: &ChannelOptions,
    len: usize,
    named: bool,
) -> Result<Region, Error> {
    let region_opts = opts.create_region(len, named);
    let mut attempts = 0;
    loop {
        match Region::create(backing, &region_opts) {
            Ok(region) => return Ok(region),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && named => {
                attempts += 1;
                let verdict = takeover::judge(backing);
                match verdict {
                    takeover::Verdict::Stale(stale) if opts.takeover && attempts <= 3 => {
                        let takeover::Claim::Locked(_lock) = takeover::claim(&stale) else {
                            return Err(takeover::taken(
                                name,
                                "another process is taking it over".to_owned(),
                                e,
                            ));
                        };
                        // Under the lock: still stale (nobody attached meanwhile)?
                        match takeover::judge_region(stale) {
                            takeover::Verdict::Stale(stale) => {
                                takeover::remove(&stale);
                                match Region::create(backing, &region_opts) {
                                    Ok(region) => return Ok(region),
                                    Err(again) if again.kind() == ErrorKind::AlreadyExists => {}
                                    Err(other) => return Err(other.into()),
                                }
                            }
                            takeover::Verdict::Held(holder) => {
                                return Err(takeover::taken(name, holder, e));
                            }
                            takeover::Verdict::Gone | takeover::Verdict::Foreign => {}
                        }
                    }
                    takeover::Verdict::Stale(_) => {
                        return Err(takeover::taken(
                            name,
                            "every process that used it is dead, but takeover is off \
                             (ChannelOptions::takeover)"
                                .to_owned(),
                            e,
                        ));
                    }
                    takeover::Verdict::Gone if attempts <= 3 => {}
                    takeover::Verdict::Held(holder) => {
                        return Err(takeover::taken(name, holder, e));
                    }
                    takeover::Verdict::Gone | takeover::Verdict::Foreign => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The liveness of a region's parties: locks on its fd, on a companion memfd for anonymous
/// and `/dev/zero` memory, the pid alone for System V.
pub(crate) fn region_liveness(
    region: &Region,
    name: &str,
) -> Result<Arc<dyn ringway_ring::Liveness>, Error> {
    let failed = |what: String| Error::Unsupported {
        channel: name.to_owned(),
        what,
    };
    match (region.fd(), region.backing()) {
        (None, Backing::Anonymous | Backing::DevZero) => {
            let companion = liveness::companion().map_err(failed)?;
            Ok(Arc::new(liveness::LockLiveness::new(Arc::new(companion))))
        }
        (fd, _) => liveness::for_fd(fd).map_err(failed),
    }
}

/// The ring configuration for messages of `message` with these options (the rules are in
/// [`crate::capacity`]).
fn ring_config(
    message: &MessageType,
    opts: &ChannelOptions,
    name: &str,
) -> Result<RingConfig, Error> {
    let plan = crate::capacity::plan(message.size, opts, name)?;
    let label = plan.label(message.label());
    Ok(plan.config.fingerprint(message.fingerprint).label(&label))
}

/// The flavour of a sender/receiver channel; `None` for a broadcast ring, which these
/// endpoints cannot use.
fn flavour_of(kind: RingKind) -> Option<Flavour> {
    match kind {
        RingKind::Spsc => Some(Flavour::Spsc),
        RingKind::Mpmc => Some(Flavour::Mpmc),
        RingKind::Broadcast => None,
    }
}

fn not_point_to_point(name: &str) -> Error {
    Error::Unsupported {
        channel: name.to_owned(),
        what: "it is a broadcast channel, which senders and receivers cannot attach to (open \
               it with Publisher or Subscriber)"
            .to_owned(),
    }
}

fn not_broadcast(name: &str, flavour: Flavour) -> Error {
    Error::Unsupported {
        channel: name.to_owned(),
        what: format!(
            "it is an {flavour} channel, which publishers and subscribers cannot attach to \
             (open it with Sender or Receiver)"
        ),
    }
}

/// Checks that a ring of `kind` is what endpoints made with `opts` attach to: a broadcast
/// ring for publishers and subscribers, a point-to-point ring of the options' flavour for
/// senders and receivers.
fn expect_kind(kind: RingKind, opts: &ChannelOptions, name: &str) -> Result<(), Error> {
    match (opts.broadcast, flavour_of(kind)) {
        (true, None) => Ok(()),
        (true, Some(flavour)) => Err(not_broadcast(name, flavour)),
        (false, None) => Err(not_point_to_point(name)),
        (false, Some(flavour)) if flavour != opts.flavour => Err(Error::FlavourMismatch {
            channel: name.to_owned(),
            ours: opts.flavour,
            theirs: flavour,
        }),
        (false, Some(_)) => Ok(()),
    }
}

impl Shared {
    /// The error of a sender or receiver attaching to a broadcast ring.
    pub(crate) fn not_point_to_point(&self) -> Error {
        not_point_to_point(&self.name)
    }

    /// The error of a publisher or subscriber attaching to a point-to-point ring.
    pub(crate) fn not_broadcast(&self) -> Error {
        let flavour = flavour_of(self.geometry.kind).unwrap_or_default();
        not_broadcast(&self.name, flavour)
    }
}

impl Shared {
    /// Creates the shared memory of `backing` and initialises a ring for `message` in it.
    pub(crate) fn create(
        backing: &Backing,
        message: MessageType,
        opts: &ChannelOptions,
    ) -> Result<Arc<Shared>, Error> {
        let name = backing.to_string();
        let named = matches!(
            backing,
            Backing::Posix { .. } | Backing::SysV { .. } | Backing::File { .. }
        );
        let config = ring_config(&message, opts, &name)?.users(u32::from(named));
        let len = config.required_len().map_err(|source| Error::Config {
            channel: name.clone(),
            source,
        })?;
        crate::capacity::check_room(backing, len, &name)?;
        let region = Arc::new(create_or_take_over(backing, &name, opts, len, named)?);
        // The creator's lock is taken before `init` publishes the ring: whoever sees the ring
        // initialised (a process judging the name for a takeover) also sees it held.
        let built = (|| {
            let liveness = region_liveness(&region, &name)?;
            // The same lock every endpoint takes on its entry's byte, on the creator's byte
            // (none for System V, whose liveness has no token).
            let token = if named {
                liveness
                    .token(liveness::CREATOR_BYTE)
                    .map_err(|what| Error::Unsupported {
                        channel: name.clone(),
                        what,
                    })?
            } else {
                None
            };
            let memory = ring_memory(&region, &name)?;
            let geometry =
                ringway_ring::init(&memory, &config).map_err(|source| Error::Config {
                    channel: name.clone(),
                    source,
                })?;
            Ok((memory, geometry, liveness, token))
        })();
        let (memory, geometry, liveness, token) = match built {
            Ok(built) => built,
            Err(e) => {
                // Nothing may be left behind by a failed create. The region was created with
                // `persist` (named channels manage their own removal), so remove it here.
                let _ = region.unlink();
                return Err(e);
            }
        };
        Ok(Arc::new(Shared {
            region,
            memory,
            geometry,
            name,
            named,
            opts: opts.clone(),
            precounted: AtomicBool::new(named),
            liveness,
            _creator_token: token,
            data_guard: Default::default(),
        }))
    }

    /// Opens a named channel, waiting up to the open timeout for its creator.
    pub(crate) fn open(
        address: &Address,
        message: MessageType,
        opts: &ChannelOptions,
    ) -> Result<Arc<Shared>, Error> {
        let name = address.to_string();
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        let region = loop {
            match Region::open(address.backing(), &opts.open_region()) {
                Ok(region) => break region,
                // Not created yet, or created but not yet sized: wait for the creator.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::NotFound | ErrorKind::Empty | ErrorKind::TooSmall
                    ) =>
                {
                    let waited = start.elapsed();
                    if waited >= opts.open_timeout {
                        return Err(Error::NotFound {
                            channel: name,
                            waited,
                            source: Box::new(e),
                        });
                    }
                    let nap = pause.min(opts.open_timeout - waited);
                    match &opts.interrupt {
                        Some(interrupt) if interrupt.sleep(nap) => {
                            return Err(Error::Interrupted { channel: name });
                        }
                        Some(_) => {}
                        None => std::thread::sleep(nap),
                    }
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let remaining = opts.open_timeout.saturating_sub(start.elapsed());
        Shared::adopt(region, message, opts, name, true, remaining)
    }

    /// Takes a memfd received from another process (by fd passing or inheritance).
    pub(crate) fn from_region(
        region: Region,
        message: MessageType,
        opts: &ChannelOptions,
    ) -> Result<Arc<Shared>, Error> {
        let name = region.backing().to_string();
        Shared::adopt(region, message, opts, name, false, opts.open_timeout)
    }

    /// Checks that an opened region holds an initialised ring for `message` of our flavour.
    fn adopt(
        region: Region,
        message: MessageType,
        opts: &ChannelOptions,
        name: String,
        named: bool,
        timeout: Duration,
    ) -> Result<Arc<Shared>, Error> {
        let region = Arc::new(region);
        let memory = ring_memory(&region, &name)?;
        let (geometry, identity) = match wait_initialized(&memory, timeout) {
            Ok(found) => found,
            Err(source @ ringway_ring::AttachError::NotInitialized { waited }) => {
                return Err(Error::NotFound {
                    channel: name,
                    waited,
                    source: Box::new(source),
                });
            }
            Err(source) => return Err(Error::attach(&name, source)),
        };
        // The kind first: a sender given a broadcast name learns that, not that a broadcast
        // byte channel's label differs from its type's.
        expect_kind(geometry.kind, opts, &name)?;
        let theirs = MessageType::recorded(identity.fingerprint, &identity.label);
        if !message.matches(&theirs) {
            return Err(Error::TypeMismatch {
                channel: name,
                ours: Box::new(message),
                theirs: Box::new(theirs),
            });
        }
        let liveness = region_liveness(&region, &name)?;
        Ok(Arc::new(Shared {
            region,
            memory,
            geometry,
            name,
            named,
            opts: opts.clone(),
            precounted: AtomicBool::new(false),
            liveness,
            _creator_token: None,
            data_guard: Default::default(),
        }))
    }

    pub(crate) fn attach_options(&self) -> AttachOptions {
        // The ring is initialised already (create or `adopt` waited for it).
        self.opts
            .attach_options(Duration::from_secs(1))
            .liveness(self.liveness.clone())
    }

    /// Removes the name of a channel this process just created, after a failure to attach
    /// its first endpoint: a failed create leaves nothing behind.
    pub(crate) fn abandon(&self) {
        if self.named {
            let _ = self.region.unlink();
        }
    }

    /// Fails unless the channel is MPMC (only MPMC channels have more than one endpoint of a
    /// side).
    pub(crate) fn require_mpmc(&self, what: &str) -> Result<(), Error> {
        match self.geometry.kind {
            RingKind::Mpmc => Ok(()),
            RingKind::Broadcast => Err(not_point_to_point(&self.name)),
            RingKind::Spsc => Err(Error::Unsupported {
                channel: self.name.clone(),
                what: format!(
                    "cannot {what}: an SPSC channel has one sender and one receiver (use Flavour::Mpmc)"
                ),
            }),
        }
    }
}

fn ring_memory(region: &Arc<Region>, name: &str) -> Result<RingMemory, Error> {
    ring_memory_at(region, 0, region.len(), name)
}

/// A ring's memory over `len` bytes of `region` from `offset` (a service segment holds many
/// rings), with the same truncation check as a whole-region ring.
///
/// # Panics
/// If the range is not inside the mapping (callers compute it from a checked geometry).
pub(crate) fn ring_memory_at(
    region: &Arc<Region>,
    offset: usize,
    len: usize,
    name: &str,
) -> Result<RingMemory, Error> {
    assert!(
        offset
            .checked_add(len)
            .is_some_and(|end| end <= region.len()),
        "ring range {offset}+{len} outside a mapping of {} bytes",
        region.len()
    );
    let keep: ringway_ring::KeepAlive = region.clone();
    // SAFETY: the range lies inside the region's mapping (asserted above), which is valid for
    // reads and writes until the region drops, and `keep` (an Arc of it) is held by the ring
    // memory and every endpoint attached to it. The region never hands out references to its
    // bytes, and rings in one mapping occupy disjoint ranges.
    let memory = unsafe { RingMemory::from_raw(region.as_ptr().add(offset), len, Some(keep)) }
        .map_err(|e| Error::attach(name, e))?;
    // A peer can truncate a POSIX object or a file under the mapping; the region's SIGBUS
    // guard then gives this process private zero pages. The ring reads the guard's fault
    // counter after every copy and runs `check_intact` on its slow path, so both sides report
    // `Corrupted` instead of diverging silently.
    let checked = region.clone();
    Ok(memory.with_truncation_check(
        region.fault_counter(),
        Arc::new(move || match checked.check_intact() {
            Err(ringway_region::Error::Truncated {
                mapped,
                size,
                faults,
                ..
            }) => Some(ringway_ring::Truncated {
                // `None`: the object itself is gone (a removed SysV segment).
                size: size.unwrap_or(0),
                mapped,
                faults,
            }),
            // Other failures (an fstat that failed) say nothing about truncation.
            _ => None,
        }),
    ))
}

/// One endpoint's share of a channel: counted in the header's `users`, and, for a named
/// channel, removing the name when the count reaches zero.
#[derive(Debug)]
pub(crate) struct Membership {
    pub(crate) shared: Arc<Shared>,
}

impl Membership {
    pub(crate) fn join(shared: &Arc<Shared>) -> Membership {
        if shared.named && !shared.precounted.swap(false, Ordering::AcqRel) {
            shared.memory.add_user();
        }
        Membership {
            shared: shared.clone(),
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let shared = &self.shared;
        if !shared.named {
            return;
        }
        // Remove the name with the last endpoint: the last to leave cleanly brings the count
        // to zero; a survivor of crashed peers (whose counts were never given back) sees that
        // nobody registered is alive any more. Processes that still have the memory mapped
        // keep it. Nothing useful can be done with an error here (someone else removed the
        // name first).
        if shared.memory.remove_user() == 0 || !shared.anyone_alive() {
            let _ = shared.region.unlink();
        }
    }
}

impl Shared {
    /// Whether any registered endpoint (other than ones that closed) is alive, by `/proc`.
    fn anyone_alive(&self) -> bool {
        match ringway_ring::inspect_with(&self.memory, &*self.liveness) {
            Ok(info) => info
                .producers
                .iter()
                .chain(&info.consumers)
                .any(|party| party.alive),
            // A header that no longer reads as a ring has nobody to serve.
            Err(_) => false,
        }
    }
}

/// The producing end of either ring.
#[derive(Debug)]
pub(crate) enum Tx {
    Spsc(spsc::Producer),
    Mpmc(mpmc::Producer),
}

/// The consuming end of either ring.
#[derive(Debug)]
pub(crate) enum Rx {
    Spsc(spsc::Consumer),
    Mpmc(mpmc::Consumer),
}
