//! How a channel is built and how its endpoints wait: [`ChannelOptions`], [`Flavour`], and
//! [`Address`], the name of a channel other processes open.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ringway_region::{Backing, HugePages, RegionOptions};
use ringway_ring::{AttachOptions, Policy, WaitStrategy};

/// The ring under a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Flavour {
    /// One sender, one receiver (the default): variable-size contiguous records, the fastest.
    #[default]
    Spsc,
    /// Many sender and receiver processes: fixed-size slots; each message goes to exactly one
    /// receiver.
    Mpmc,
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavour::Spsc => "SPSC",
            Flavour::Mpmc => "MPMC",
        })
    }
}

/// The name of a channel that separate processes open: a POSIX shm name, a System V key, or
/// a file path.
///
/// A `&str` or `String` converts to a POSIX shm name (one leading `/`, no other).
///
/// # Examples
/// ```
/// use ringway_channel::Address;
/// assert_eq!(Address::from("/ticks").to_string(), "POSIX shm \"/ticks\"");
/// assert_eq!(Address::sysv(0x5157).to_string(), "SysV shm key 0x00005157");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address(pub(crate) Backing);

impl Address {
    /// A POSIX shared memory object, `/name`.
    #[must_use]
    pub fn posix(name: impl Into<String>) -> Address {
        Address(Backing::posix(name))
    }

    /// A System V segment by key.
    #[must_use]
    pub fn sysv(key: i32) -> Address {
        Address(Backing::sysv(key))
    }

    /// A System V segment by the key `ftok(path, id)` derives.
    #[must_use]
    pub fn ftok(path: impl Into<PathBuf>, id: u8) -> Address {
        Address(Backing::ftok(path, id))
    }

    /// A POSIX shared memory name nobody can guess: `prefix` (e.g. `/ticks`), a dash and 128
    /// random bits. Create with it and hand the name to the peer (argument, environment,
    /// socket): no other process can squat it first.
    ///
    /// # Errors
    /// [`ringway_region::Error`] if `prefix` is not a valid POSIX name start or `getrandom`
    /// fails.
    pub fn unique_posix(prefix: &str) -> Result<Address, ringway_region::Error> {
        Backing::posix_random(prefix).map(Address)
    }

    /// A file on any filesystem (tmpfs, hugetlbfs, disk).
    #[must_use]
    pub fn file(path: impl Into<PathBuf>) -> Address {
        Address(Backing::file(path))
    }

    /// The backing this address names.
    #[must_use]
    pub fn backing(&self) -> &Backing {
        &self.0
    }
}

impl From<&str> for Address {
    fn from(name: &str) -> Address {
        Address::posix(name)
    }
}

impl From<String> for Address {
    fn from(name: String) -> Address {
        Address::posix(name)
    }
}

impl From<&String> for Address {
    fn from(name: &String) -> Address {
        Address::posix(name.as_str())
    }
}

impl From<Backing> for Address {
    fn from(backing: Backing) -> Address {
        Address(backing)
    }
}

impl From<&Address> for Address {
    fn from(address: &Address) -> Address {
        address.clone()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How to build a channel and how its endpoints behave.
///
/// Sizes, one rule for every flavour and kind: **[`capacity`](ChannelOptions::capacity) is a
/// number of messages** of up to [`max_message`](ChannelOptions::max_message) bytes (a typed
/// channel's messages are `size_of::<T>()` bytes). Rings come in powers of two, so a channel
/// may hold more than asked for; every endpoint's `capacity()`, `capacity_bytes()` and
/// `max_message()` report what was made. Creating a channel checks that its segment fits the
/// free space of `/dev/shm` (or the file's filesystem, or the System V limits) and refuses it
/// with [`Error::NoSpace`](crate::Error::NoSpace) otherwise.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use ringway_channel::{ChannelOptions, Flavour, WaitStrategy};
/// let opts = ChannelOptions::new()
///     .capacity(4096)
///     .flavour(Flavour::Mpmc)
///     .wait_strategy(WaitStrategy::Spin)
///     .open_timeout(Duration::from_secs(2));
/// assert_eq!(opts.flavour_kind(), Flavour::Mpmc);
/// ```
#[derive(Debug, Clone)]
pub struct ChannelOptions {
    pub(crate) capacity: Option<usize>,
    pub(crate) max_message: Option<usize>,
    pub(crate) flavour: Flavour,
    pub(crate) max_producers: u32,
    pub(crate) max_consumers: u32,
    pub(crate) wait: WaitStrategy,
    pub(crate) open_timeout: Duration,
    pub(crate) liveness_interval: Duration,
    pub(crate) mode: Option<u32>,
    pub(crate) prefault: bool,
    pub(crate) lock: bool,
    pub(crate) huge_pages: HugePages,
    pub(crate) type_name: Option<String>,
    pub(crate) interrupt: Option<crate::Interrupt>,
    pub(crate) takeover: bool,
    /// Byte channels: `core::any::type_name` of the type whose serialized values the channel
    /// carries (feature `serde`, `ChannelOptions::serialized`).
    pub(crate) serialized: Option<&'static str>,
    /// Broadcast channels: readers that may be attached at once.
    pub(crate) max_readers: u32,
    /// Broadcast channels: what the publisher does when the slowest subscriber is a ring behind.
    pub(crate) policy: Policy,
    /// Broadcast channels: messages a late subscriber starts with.
    pub(crate) history: u32,
    /// Set by publishers and subscribers (and [`BroadcastChannel`](crate::BroadcastChannel)),
    /// never by the user: the channel is a broadcast ring. The endpoint type decides the kind
    /// of ring, so a sender can never be handed broadcast options by mistake.
    pub(crate) broadcast: bool,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            capacity: None,
            max_message: None,
            flavour: Flavour::Spsc,
            max_producers: 32,
            max_consumers: 32,
            wait: WaitStrategy::SpinThenPark,
            open_timeout: Duration::from_secs(10),
            liveness_interval: Duration::from_millis(50),
            mode: None,
            prefault: false,
            lock: false,
            huge_pages: HugePages::None,
            type_name: None,
            interrupt: None,
            takeover: true,
            serialized: None,
            max_readers: 32,
            policy: Policy::Block,
            history: 0,
            broadcast: false,
        }
    }
}

impl ChannelOptions {
    /// The defaults: SPSC; 1024 messages, or as many as fit 4 MiB of ring if fewer (at least
    /// one); byte messages of up to 4096 bytes; spin-then-park waiting, a 10 s open timeout,
    /// crash detection within 50 ms of waiting.
    #[must_use]
    pub fn new() -> ChannelOptions {
        ChannelOptions::default()
    }

    /// How many messages the channel holds (sent and not yet received), for every flavour and
    /// kind: messages of [`max_message`](ChannelOptions::max_message) bytes for a byte channel
    /// (smaller ones take less room in an SPSC ring, so more of them fit), of
    /// `size_of::<T>()` bytes for a typed one. Rounded up to what the ring can make (MPMC:
    /// a power of two, at least 2); the endpoints' `capacity()` says what was made.
    ///
    /// Default: 1024, or as many as fit 4 MiB of ring if fewer (at least one). Zero is
    /// refused ([`Error::InvalidOptions`](crate::Error::InvalidOptions)).
    ///
    /// # Examples
    /// ```
    /// use ringway_channel::{ChannelOptions, Flavour, Sender};
    /// # let name = format!("/ringway-doc-capacity-{}", std::process::id());
    /// for flavour in [Flavour::Spsc, Flavour::Mpmc] {
    ///     let opts = ChannelOptions::new().capacity(1000).flavour(flavour);
    ///     let tx = Sender::<[u64; 3]>::create(&name, &opts)?;
    ///     assert_eq!(tx.capacity(), 1024, "{flavour}: messages, rounded up");
    ///     // The mapping: header, registration table and ring (an MPMC slot is a whole
    ///     // cache line, 64 bytes for 24 of payload).
    ///     assert!(tx.capacity_bytes() < 80 * 1024, "{flavour}: 1024 messages of 24 bytes");
    /// }
    /// # Ok::<(), ringway_channel::Error>(())
    /// ```
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> ChannelOptions {
        self.capacity = Some(capacity);
        self
    }

    /// Byte channels: the largest message, in bytes (default 4096, at least 1); a larger send
    /// is [`SendError::TooLarge`](crate::SendError::TooLarge). Typed channels carry
    /// `size_of::<T>()` bytes: any other value is refused.
    #[must_use]
    pub fn max_message(mut self, bytes: usize) -> ChannelOptions {
        self.max_message = Some(bytes);
        self
    }

    /// SPSC (default) or MPMC.
    #[must_use]
    pub fn flavour(mut self, flavour: Flavour) -> ChannelOptions {
        self.flavour = flavour;
        self
    }

    /// The flavour these options build.
    #[must_use]
    pub fn flavour_kind(&self) -> Flavour {
        self.flavour
    }

    /// MPMC: how many senders and how many receivers may be attached at once (1 ..= 256 each,
    /// default 32).
    #[must_use]
    pub fn max_endpoints(mut self, senders: u32, receivers: u32) -> ChannelOptions {
        self.max_producers = senders;
        self.max_consumers = receivers;
        self
    }

    /// Broadcast channels ([`Publisher`](crate::Publisher), [`Subscriber`](crate::Subscriber)
    /// and their byte forms): how many subscribers may be attached at once (1 ..= 256, default
    /// 32). Ignored by senders and receivers; set by the creator.
    #[must_use]
    pub fn max_readers(mut self, n: u32) -> ChannelOptions {
        self.max_readers = n;
        self
    }

    /// Broadcast channels: what the publisher does when the slowest live subscriber is a whole
    /// channel behind: wait for it ([`Policy::Block`], the default; a subscriber that dies
    /// stops holding it back within the liveness interval) or overwrite the oldest message
    /// ([`Policy::Overwrite`]; the lapped subscriber gets
    /// [`RecvError::Lagged`](crate::RecvError::Lagged)). Ignored by senders and receivers;
    /// set by the creator.
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> ChannelOptions {
        self.policy = policy;
        self
    }

    /// Broadcast channels: a subscriber that attaches late starts with the newest `k`
    /// messages still in the channel (default 0: with the next message published). The
    /// channel holds at least `k + 1` messages whatever [`capacity`](ChannelOptions::capacity)
    /// says. Ignored by senders and receivers; set by the creator.
    #[must_use]
    pub fn history(mut self, k: u32) -> ChannelOptions {
        self.history = k;
        self
    }

    /// These options for a broadcast endpoint (see the `broadcast` field).
    pub(crate) fn for_broadcast(&self) -> ChannelOptions {
        ChannelOptions {
            broadcast: true,
            ..self.clone()
        }
    }

    /// How this process's endpoints wait: busy-spin, spin-then-park (default), or park.
    #[must_use]
    pub fn wait_strategy(mut self, strategy: WaitStrategy) -> ChannelOptions {
        self.wait = strategy;
        self
    }

    /// How long `open` waits for the creator to create and initialise the channel.
    #[must_use]
    pub fn open_timeout(mut self, timeout: Duration) -> ChannelOptions {
        self.open_timeout = timeout;
        self
    }

    /// Named channels: whether `create` may take over a name whose channel was left behind
    /// by processes that all died (killed, or ended without dropping their endpoints): it
    /// removes that channel and creates the new one, atomically against other processes
    /// doing the same (exactly one of them creates). A channel with any live party, or
    /// something that is not a ringway channel, is never touched. On by default.
    #[must_use]
    pub fn takeover(mut self, yes: bool) -> ChannelOptions {
        self.takeover = yes;
        self
    }

    /// Lets `interrupt` wake this channel's blocking calls: once it is raised, `send`,
    /// `recv`, their `_timeout` forms, loans and `open` return `Interrupted` as soon as they
    /// would have to wait (for room, a message, or the creator), with nothing sent, received or
    /// left half-done, until [`Interrupt::clear`](crate::Interrupt::clear); calls that need not
    /// wait complete, and `try_` calls are not affected. Raising it is async-signal-safe, which
    /// makes it the way to shut down a process blocked in `recv` on Ctrl-C or `SIGTERM`:
    ///
    /// ```no_run
    /// use ringway_channel::{ChannelOptions, Interrupt, Receiver, RecvError};
    ///
    /// let stop = Interrupt::new();
    /// let on_signal = stop.clone();
    /// // With the signal-hook crate: its handler may only do async-signal-safe work, and
    /// // `Interrupt::interrupt` is an atomic store and a futex wake.
    /// // unsafe { signal_hook::low_level::register(signal_hook::consts::SIGINT, move || on_signal.interrupt()) }?;
    /// # drop(on_signal);
    /// let mut rx = Receiver::<u64>::create("/jobs", &ChannelOptions::new().interrupt(stop))?;
    /// loop {
    ///     match rx.recv() {
    ///         Ok(job) => println!("job {job}"),
    ///         Err(RecvError::Interrupted) => break, // Ctrl-C: leave cleanly
    ///         Err(e) => return Err(e.into()),
    ///     }
    /// }
    /// drop(rx); // removes "/jobs" from /dev/shm
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn interrupt(mut self, interrupt: crate::Interrupt) -> ChannelOptions {
        self.interrupt = Some(interrupt);
        self
    }

    /// How often a waiting call checks that the other side is still alive: the bound on how
    /// long a crashed peer goes unnoticed (default 50 ms, at least 1 ms).
    #[must_use]
    pub fn liveness_interval(mut self, interval: Duration) -> ChannelOptions {
        self.liveness_interval = interval;
        self
    }

    /// Named channels: the permission bits of the shared memory the creator makes (default
    /// `0o600`: only the same user can open it). Widen it only as far as needed, e.g. `0o660`
    /// for a group.
    #[must_use]
    pub fn mode(mut self, mode: u32) -> ChannelOptions {
        self.mode = Some(mode);
        self
    }

    /// Touch every page when mapping (`MAP_POPULATE`), so the first messages do not pay for
    /// page faults.
    #[must_use]
    pub fn prefault(mut self, yes: bool) -> ChannelOptions {
        self.prefault = yes;
        self
    }

    /// Lock the mapping in memory (`mlock`), so it is never paged out.
    #[must_use]
    pub fn lock(mut self, yes: bool) -> ChannelOptions {
        self.lock = yes;
        self
    }

    /// Huge pages for the ring (explicit ones need a reserved pool and a backing that
    /// supports them; transparent ones are a hint that works everywhere).
    #[must_use]
    pub fn huge_pages(mut self, huge: HugePages) -> ChannelOptions {
        self.huge_pages = huge;
        self
    }

    /// Region options for creating `len` bytes; `named` channels keep their name until their
    /// last endpoint leaves, so the region must not remove it on its own.
    pub(crate) fn create_region(&self, len: usize, named: bool) -> RegionOptions {
        let mut region = RegionOptions::new()
            .size(len)
            .prefault(self.prefault)
            .lock(self.lock)
            .huge_pages(self.huge_pages);
        if let Some(mode) = self.mode {
            region = region.mode(mode);
        }
        if named {
            region = region.persist(true);
        }
        region
    }

    /// Region options for opening what another process created.
    pub(crate) fn open_region(&self) -> RegionOptions {
        RegionOptions::new()
            .size(ringway_ring::layout::HEADER_LEN)
            .prefault(self.prefault)
            .lock(self.lock)
            .huge_pages(match self.huge_pages {
                // The creator chose the pages; an opener can only add the hint.
                HugePages::Transparent => HugePages::Transparent,
                _ => HugePages::None,
            })
    }

    /// The name that identifies the message type in the channel's fingerprint (typed
    /// channels). A type without `#[derive(Message)]` is identified by
    /// `core::any::type_name::<T>()`, module path included: the same program on both sides,
    /// or set this to the same name on both. A derived type is identified by its layout
    /// (this name, when set, is compared too).
    #[must_use]
    pub fn type_name(mut self, name: impl Into<String>) -> ChannelOptions {
        self.type_name = Some(name.into());
        self
    }

    pub(crate) fn attach_options(&self, init_timeout: Duration) -> AttachOptions {
        let opts = AttachOptions::new()
            .wait_strategy(self.wait)
            .init_timeout(init_timeout)
            .liveness_interval(self.liveness_interval);
        match &self.interrupt {
            Some(interrupt) => opts.interrupt(interrupt.clone()),
            None => opts,
        }
    }
}
