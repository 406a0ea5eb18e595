//! How a channel is built and how its endpoints wait: [`ChannelOptions`], [`Flavour`], and
//! [`Address`], the name of a channel other processes open.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ringway_region::{Backing, HugePages, RegionOptions};
use ringway_ring::{AttachOptions, WaitStrategy};

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
/// Sizes: for a typed channel `capacity` counts messages; for a byte channel it counts bytes
/// of ring (SPSC) or slots (MPMC), and `max_message` bounds a message. Rings are sized up to
/// a power of two.
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
    /// Byte channels: `core::any::type_name` of the type whose serialized values the channel
    /// carries (feature `serde`, `ChannelOptions::serialized`).
    pub(crate) serialized: Option<&'static str>,
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
            serialized: None,
        }
    }
}

/// Default capacity of a typed channel, in messages.
pub(crate) const DEFAULT_TYPED_CAPACITY: usize = 1024;
/// Default ring size of an SPSC byte channel, in bytes.
pub(crate) const DEFAULT_BYTE_CAPACITY: usize = 1 << 20;
/// Default number of slots of an MPMC byte channel.
pub(crate) const DEFAULT_MPMC_SLOTS: usize = 1024;
/// Default largest message of an MPMC byte channel, in bytes.
pub(crate) const DEFAULT_MPMC_MESSAGE: usize = 4096;

impl ChannelOptions {
    /// The defaults: SPSC, 1024 messages (typed) or a 1 MiB ring (bytes), spin-then-park
    /// waiting, a 10 s open timeout, crash detection within 50 ms of waiting.
    #[must_use]
    pub fn new() -> ChannelOptions {
        ChannelOptions::default()
    }

    /// Typed channels: messages in flight. Byte channels: ring bytes (SPSC) or slots (MPMC).
    /// Rounded up to a power of two.
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> ChannelOptions {
        self.capacity = Some(capacity);
        self
    }

    /// Byte channels: the largest message. An SPSC ring is grown to carry it (to at least
    /// twice its size); an MPMC ring uses it as its slot size (default 4096).
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
        AttachOptions::new()
            .wait_strategy(self.wait)
            .init_timeout(init_timeout)
            .liveness_interval(self.liveness_interval)
    }
}
