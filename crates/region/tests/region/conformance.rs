//! The conformance suite: written once, instantiated for every [`Fixture`].

use std::path::Path;
use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use ringway_region::{Backing, ErrorKind, HugePages, Region, RegionOptions, SysvKey};
use ringway_testkit::LeakScope;

use crate::fixtures::{Fixture, Huge};
use crate::{PARENT_SEED, PEER_SEED, TIMEOUT, check, fill, unique_size};

/// The tests of the suite for fixture `F`, named `conformance::<fixture>::<test>`.
pub(crate) fn suite<F: Fixture>() -> Vec<Trial> {
    crate::trials(
        &format!("conformance::{}", F::NAME),
        &[
            ("roundtrip_with_second_process", roundtrip::<F>),
            ("geometry", geometry::<F>),
            ("reopen_shares_the_bytes", reopen::<F>),
            ("open_refuses_too_small", too_small::<F>),
            ("unlink_early_then_drop", unlink_early::<F>),
            ("persist", persist::<F>),
            ("exclusive_create", exclusive::<F>),
            ("prefault_lock_transparent_huge_pages", options::<F>),
            ("explicit_huge_pages", explicit_huge::<F>),
            ("read_only_create_refused", read_only_create::<F>),
        ],
    )
}

/// Creates a region of fixture `F`, watched by `scope`.
fn create<F: Fixture>(
    scope: &LeakScope,
    backing: &Backing,
    opts: RegionOptions,
) -> Result<Region, ringway_region::Error> {
    let region = Region::create(backing, &F::base(opts))?;
    if let Some(shmid) = region.sysv_id() {
        scope.track_shmid(shmid);
    }
    Ok(region)
}

/// What identifies the object after the region is gone.
struct Probe {
    backing: Backing,
    shmid: Option<i32>,
    ptr: usize,
    len: usize,
}

impl Probe {
    fn of(region: &Region) -> Probe {
        Probe {
            backing: region.backing().clone(),
            shmid: region.sysv_id(),
            ptr: region.as_ptr() as usize,
            len: region.len(),
        }
    }

    /// Whether the object can still be found by its name (for nameless
    /// backings: whether this process still maps it).
    fn name_exists(&self) -> bool {
        match &self.backing {
            Backing::Posix { name } => Path::new("/dev/shm")
                .join(&name[1..])
                .symlink_metadata()
                .is_ok(),
            Backing::SysV {
                key: SysvKey::Key(key),
            } => {
                // SAFETY: a lookup only: size 0, no IPC_CREAT.
                unsafe { libc::shmget(*key, 0, 0) != -1 }
            }
            Backing::SysV { .. } => self
                .sysv_stat()
                .is_some_and(|ds| ds.shm_perm.mode & 0o1000 == 0),
            Backing::File { path } => path.symlink_metadata().is_ok(),
            _ => self.mapped(),
        }
    }

    fn removed_at_attach(&self) -> bool {
        self.shmid.is_some()
            && self
                .sysv_stat()
                .is_some_and(|ds| ds.shm_perm.mode & 0o1000 != 0)
    }

    fn sysv_stat(&self) -> Option<libc::shmid_ds> {
        let mut ds = std::mem::MaybeUninit::<libc::shmid_ds>::zeroed();
        // SAFETY: `ds` is a writable shmid_ds for IPC_STAT to fill.
        let ret = unsafe { libc::shmctl(self.shmid?, libc::IPC_STAT, ds.as_mut_ptr()) };
        // SAFETY: filled by a successful IPC_STAT; plain integers otherwise zero.
        (ret == 0).then(|| unsafe { ds.assume_init() })
    }

    /// Whether this process still has the mapping (by address and length,
    /// or, for a memfd, by its unique label).
    fn mapped(&self) -> bool {
        let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
        let end = self.ptr + self.len.next_multiple_of(4096);
        let range = format!("{:x}-{:x} ", self.ptr, end);
        let label = match &self.backing {
            Backing::Memfd { name } => Some(format!("/memfd:{name} ")),
            _ => None,
        };
        maps.lines().any(|line| {
            line.starts_with(&range) || label.as_ref().is_some_and(|l| line.contains(l.trim_end()))
        })
    }

    /// Asserts that the object is gone for good: no name, no segment, no
    /// mapping, no fd.
    fn assert_gone(&self) {
        assert!(
            !self.name_exists(),
            "{} still exists after drop",
            self.backing
        );
        assert!(!self.mapped(), "{} still mapped after drop", self.backing);
        if self.shmid.is_some() {
            // fork(2) children inherit SysV attachments ("After a fork(2), the
            // child inherits the attached shared memory segments"), so a child
            // another test forks meanwhile may hold the segment for a moment:
            // it goes with that child's exit, the last detach.
            let deadline = Instant::now() + TIMEOUT;
            while self.sysv_stat().is_some() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert!(
                self.sysv_stat().is_none(),
                "{} segment still in the SysV table",
                self.backing
            );
        }
        if let Backing::Memfd { name } = &self.backing {
            let link = format!("/memfd:{name} (deleted)");
            let open = std::fs::read_dir("/proc/self/fd")
                .expect("/proc/self/fd")
                .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .any(|target| target.to_string_lossy() == link);
            assert!(!open, "{} still open after drop", self.backing);
        }
    }
}

/// Create, write, let a second process check and answer, check the answer,
/// drop, and the object is gone.
fn roundtrip<F: Fixture>() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let size = unique_size();
    let region = create::<F>(&scope, &F::backing(&scope), RegionOptions::new().size(size))?;
    fill(&region, PARENT_SEED);
    F::run_peer(&region);
    check(&region, PEER_SEED)?;
    let probe = Probe::of(&region);
    drop(region);
    probe.assert_gone();
    Ok(())
}

fn geometry<F: Fixture>() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let size = unique_size();
    let backing = F::backing(&scope);
    let region = create::<F>(&scope, &backing, RegionOptions::new().size(size))?;
    assert_eq!(region.len(), size);
    assert!(!region.is_empty());
    assert_eq!(region.as_ptr() as usize % 4096, 0, "page-aligned");
    assert!(region.is_creator());
    assert!(!region.is_read_only());
    assert!(
        region.is_guarded(),
        "cannot shrink, or watched by the SIGBUS guard"
    );
    assert_eq!(region.backing(), &backing);
    assert_eq!(region.fd().is_some(), F::HAS_FD);
    assert_eq!(
        region.sysv_id().is_some(),
        matches!(backing, Backing::SysV { .. })
    );
    assert_zeroed(&region);
    assert!(format!("{region:?}").contains("Region"));
    Ok(())
}

/// A second mapping of the same object (as a peer makes it) sees the same
/// bytes, read-only too, and does not remove the object when dropped.
fn reopen<F: Fixture>() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let size = unique_size();
    let region = create::<F>(&scope, &F::backing(&scope), RegionOptions::new().size(size))?;
    let opened = match F::reopen(&region, &RegionOptions::new()) {
        Err(e) if !F::NAMED && !F::HAS_FD => {
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
            assert!(
                e.to_string().contains("fork"),
                "the error says how to share instead: {e}"
            );
            return Ok(());
        }
        other => other?,
    };
    assert_eq!(opened.len(), size);
    assert!(!opened.is_creator());
    assert_ne!(opened.as_ptr(), region.as_ptr());
    fill(&region, PARENT_SEED);
    check(&opened, PARENT_SEED)?;
    fill(&opened, PEER_SEED);
    check(&region, PEER_SEED)?;

    let read_only = F::reopen(&region, &RegionOptions::new().read_only(true))?;
    assert!(read_only.is_read_only());
    check(&read_only, PEER_SEED)?;

    let probe = Probe::of(&region);
    drop(opened);
    drop(read_only);
    assert!(
        probe.name_exists() || probe.removed_at_attach(),
        "an opener's drop does not remove the object"
    );
    drop(region);
    probe.assert_gone();
    Ok(())
}

fn too_small<F: Fixture>() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let size = unique_size();
    let region = create::<F>(&scope, &F::backing(&scope), RegionOptions::new().size(size))?;
    match F::reopen(&region, &RegionOptions::new().size(size + 1)) {
        Err(e) if !F::NAMED && !F::HAS_FD => assert_eq!(e.kind(), ErrorKind::Unsupported),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::TooSmall, "{e}");
            assert!(
                e.to_string().contains(&size.to_string()),
                "the error gives the real size: {e}"
            );
        }
        Ok(_) => return Err("opened a region smaller than the minimum".into()),
    }
    // The exact size is fine.
    if F::NAMED || F::HAS_FD {
        assert_eq!(
            F::reopen(&region, &RegionOptions::new().size(size))?.len(),
            size
        );
    }
    Ok(())
}

/// `unlink` removes the name at once, is idempotent, keeps the mapping
/// usable, and the drop afterwards neither fails nor removes twice.
fn unlink_early<F: Fixture>() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let region = create::<F>(
        &scope,
        &F::backing(&scope),
        RegionOptions::new().size(unique_size()),
    )?;
    let probe = Probe::of(&region);
    region.unlink()?;
    region.unlink()?;
    if F::NAMED {
        assert!(!probe.name_exists(), "unlink removed the name");
        if let Backing::Posix { .. } | Backing::File { .. } = region.backing() {
            let again = Region::open(region.backing(), &RegionOptions::new());
            assert_eq!(again.unwrap_err().kind(), ErrorKind::NotFound);
        }
    }
    fill(&region, PARENT_SEED);
    check(&region, PARENT_SEED)?;
    drop(region);
    probe.assert_gone();
    Ok(())
}

/// `persist(true)` and `set_persist(true)` keep a name after the creator
/// drops; backings without a name refuse the option.
fn persist<F: Fixture>() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let backing = F::backing(&scope);
    let size = unique_size();
    let made = create::<F>(
        &scope,
        &backing,
        RegionOptions::new().size(size).persist(true),
    );
    if !F::NAMED {
        assert_eq!(made.unwrap_err().kind(), ErrorKind::Unsupported);
        return Ok(());
    }
    let region = made?;
    fill(&region, PARENT_SEED);
    let probe = Probe::of(&region);
    let opener = F::reopen(&region, &RegionOptions::new())?;
    drop(region);
    assert!(
        probe.name_exists() || probe.removed_at_attach(),
        "persisted"
    );
    check(&opener, PARENT_SEED)?;
    // An opener can remove it (as `ringway rm` would).
    opener.unlink()?;
    drop(opener);
    probe.assert_gone();

    // The same, decided after create.
    let mut region = create::<F>(&scope, &F::backing(&scope), RegionOptions::new().size(size))?;
    region.set_persist(true);
    let probe = Probe::of(&region);
    let backing = region.backing().clone();
    drop(region);
    if probe.removed_at_attach() || probe.shmid.is_some() && probe.sysv_stat().is_none() {
        // remove_after_attach: the segment went with its last detach anyway.
        assert!(!probe.name_exists());
    } else {
        assert!(probe.name_exists(), "set_persist(true) kept the name");
        Region::remove(&backing)?;
    }
    probe.assert_gone();
    Ok(())
}

fn exclusive<F: Fixture>() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let backing = F::backing(&scope);
    let size = unique_size();
    let first = create::<F>(&scope, &backing, RegionOptions::new().size(size))?;
    fill(&first, PARENT_SEED);
    let second = create::<F>(&scope, &backing, RegionOptions::new().size(size));
    if F::EXCLUSIVE {
        let err = second.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
        assert!(
            err.to_string().contains("crashed run"),
            "the error has a hint: {err}"
        );
        // The failed create removed nothing of the first.
        check(&first, PARENT_SEED)?;
        let probe = Probe::of(&first);
        assert!(probe.name_exists());
    } else {
        // Nameless backings (and a removed SysV key) give a new object.
        let second = second?;
        assert_ne!(second.as_ptr(), first.as_ptr());
        assert_zeroed(&second);
    }
    Ok(())
}

fn options<F: Fixture>() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let opts = RegionOptions::new()
        .size(unique_size())
        .prefault(true)
        .lock(true)
        .huge_pages(HugePages::Transparent);
    let region = create::<F>(&scope, &F::backing(&scope), opts)?;
    fill(&region, PARENT_SEED);
    check(&region, PARENT_SEED)?;
    if F::NAMED || F::HAS_FD {
        let opts = RegionOptions::new()
            .prefault(true)
            .lock(true)
            .huge_pages(HugePages::Transparent);
        let opened = F::reopen(&region, &opts)?;
        check(&opened, PARENT_SEED)?;
        let ro = F::reopen(&region, &opts.read_only(true))?;
        check(&ro, PARENT_SEED)?;
    }
    let probe = Probe::of(&region);
    drop(region);
    probe.assert_gone();
    // Without reserving pages, where that is the default.
    if F::HAS_FD {
        let region = create::<F>(
            &scope,
            &F::backing(&scope),
            RegionOptions::new().size(unique_size()).reserve(false),
        )?;
        fill(&region, PEER_SEED);
        check(&region, PEER_SEED)?;
    }
    Ok(())
}

/// Explicit huge pages work, or fail cleanly with HugePagesUnavailable when
/// the pool is empty, or are refused by backings that cannot have them;
/// either way nothing is left behind (the scope checks).
fn explicit_huge<F: Fixture>() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let backing = F::backing(&scope);
    let size = 2 << 20;
    let result = create::<F>(
        &scope,
        &backing,
        RegionOptions::new()
            .size(size)
            .huge_pages(HugePages::Explicit),
    );
    match (F::HUGE, result) {
        (Huge::Refused, Err(e)) => {
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
            assert!(e.to_string().contains("huge"), "{e}");
        }
        (Huge::Pool, Err(e)) => {
            assert_eq!(e.kind(), ErrorKind::HugePagesUnavailable, "{e}");
            assert!(
                e.to_string().contains("nr_hugepages"),
                "the error says how to reserve some: {e}"
            );
        }
        (Huge::Pool, Ok(region)) => {
            fill(&region, PARENT_SEED);
            check(&region, PARENT_SEED)?;
        }
        (Huge::Refused, Ok(_)) => return Err("explicit huge pages should be refused".into()),
    }
    if let Backing::Posix { .. } | Backing::File { .. } = &backing {
        let probe = Probe {
            backing,
            shmid: None,
            ptr: 0,
            len: 0,
        };
        assert!(
            !probe.name_exists(),
            "a failed create leaves nothing behind"
        );
    }
    // A size that is not a multiple of the huge page size is refused early.
    let odd = create::<F>(
        &scope,
        &F::backing(&scope),
        RegionOptions::new()
            .size(4096)
            .huge_pages(HugePages::Explicit),
    );
    let kind = odd.unwrap_err().kind();
    assert!(
        matches!(kind, ErrorKind::InvalidSize | ErrorKind::Unsupported),
        "{kind:?}"
    );
    Ok(())
}

fn read_only_create<F: Fixture>() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let backing = F::backing(&scope);
    let err = create::<F>(
        &scope,
        &backing,
        RegionOptions::new().size(4096).read_only(true),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    if F::NAMED {
        let probe = Probe {
            backing,
            shmid: None,
            ptr: 0,
            len: 0,
        };
        assert!(!probe.name_exists(), "a refused create left its object");
    }
    Ok(())
}

/// New memory reads as zeros.
fn assert_zeroed(region: &Region) {
    let mut head = [0xffu8; 64];
    // SAFETY: the region is at least 64 bytes; copied out through a raw pointer.
    unsafe { std::ptr::copy_nonoverlapping(region.as_ptr(), head.as_mut_ptr(), head.len()) };
    assert_eq!(head, [0u8; 64], "{:?} starts zeroed", region.backing());
}
