//! `Region::check_intact` and `Region::fault_counter`: how a layer above notices that a peer
//! truncated the object under a mapping the SIGBUS guard kept alive.
//!
//! Touching a truncated page needs the guard's handler, so those tests run in a re-executed
//! role, as in `sigbus`. The role truncates the object itself, through a second fd: the kernel
//! treats every process's mapping of the object alike, whoever truncates it.

use std::fs;
use std::os::fd::OwnedFd;
use std::ptr;
use std::sync::atomic::Ordering;

use libtest_mimic::{Failed, Trial};
use nix::fcntl::OFlag;
use nix::sys::mman::shm_open;
use nix::sys::stat::Mode;
use nix::unistd::ftruncate;
use ringway_region::{Backing, ErrorKind, Region, RegionOptions};
use ringway_testkit::harness::Role;
use ringway_testkit::{LeakScope, spawn_role};

use crate::TIMEOUT;
use crate::sigbus::{PAGE, outcome, read_at, truncatable};

pub(crate) fn trials() -> Vec<Trial> {
    crate::trials(
        "integrity",
        &[
            ("untouched_regions_are_intact", untouched_regions_are_intact),
            (
                "truncation_is_reported_also_after_regrowth",
                truncation_then_regrowth,
            ),
            (
                "fault_counter_is_per_mapping_and_reset_on_reuse",
                counter_per_mapping,
            ),
        ],
    )
}

pub(crate) const ROLES: &[Role<'static>] = &[
    ("intact-truncate", role_truncate),
    ("intact-counter", role_counter),
];

/// Every backing, freshly created (or opened) and not truncated, is intact; the fault counter
/// exists exactly where a peer could truncate the object, and starts at zero.
fn untouched_regions_are_intact() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let opts = RegionOptions::new().size(3 * PAGE);
    let posix = Region::create(&Backing::posix(scope.posix_name("intact")), &opts)?;
    let posix_opened = Region::open(posix.backing(), &RegionOptions::new())?;
    let file = Region::create(&Backing::file(scope.temp_path("intact")), &opts)?;
    let sealed = Region::create(&Backing::memfd("ringway-intact"), &opts)?;
    let (_fd, unsealed) = truncatable(3, RegionOptions::new())?;
    let sysv = Region::create(&Backing::sysv(scope.sysv_key()), &opts)?;
    let removed = Region::create(
        &Backing::sysv(scope.sysv_key()),
        &opts.clone().remove_after_attach(true),
    )?;
    let anonymous = Region::create(&Backing::Anonymous, &opts)?;
    let dev_zero = Region::create(&Backing::DevZero, &opts)?;
    let cases = [
        (&posix, true),
        (&posix_opened, true),
        (&file, true),
        (&sealed, false),
        (&unsealed, true),
        (&sysv, false),
        (&removed, false),
        (&anonymous, false),
        (&dev_zero, false),
    ];
    for (region, truncatable) in cases {
        let name = region.backing();
        region
            .check_intact()
            .map_err(|e| format!("{name}: not intact: {e}"))?;
        assert!(region.is_guarded(), "{name}: guarded");
        match region.fault_counter() {
            Some(counter) => {
                assert!(truncatable, "{name}: a counter, but it cannot be truncated");
                assert_eq!(counter.load(Ordering::Relaxed), 0, "{name}");
            }
            None => assert!(!truncatable, "{name}: no counter, but it can be truncated"),
        }
    }
    Ok(())
}

/// A POSIX object, a file and an unsealed memfd are truncated under a live mapping: reported
/// by size before any page is touched, counted once a lost page is touched, and still reported
/// after the object is grown back to its old size.
fn truncation_then_regrowth() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("regrow");
    let path = scope.temp_path("regrow");
    let path = path.to_str().expect("utf-8 temp path");
    for (kind, var, value) in [
        ("posix", "NAME", name.as_str()),
        ("file", "PATH", path),
        ("memfd", "NONE", ""),
    ] {
        spawn_role("intact-truncate", &[("KIND", kind), (var, value)]).expect_success(TIMEOUT);
    }
    Ok(())
}

/// The counter belongs to one mapping: a fault in one region does not show in another's, and
/// a later mapping that gets the same table entry starts from zero.
fn counter_per_mapping() -> Result<(), Failed> {
    spawn_role("intact-counter", &[]).expect_success(TIMEOUT);
    Ok(())
}

/// `Err` unless `result` is a `Truncated` error whose message contains every piece of `needles`.
fn expect_truncated(
    result: Result<(), ringway_region::Error>,
    needles: &[&str],
) -> Result<(), String> {
    let err = match result {
        Ok(()) => return Err("check_intact() is Ok after a truncation".to_owned()),
        Err(err) => err,
    };
    if err.kind() != ErrorKind::Truncated {
        return Err(format!("wrong kind {:?}: {err}", err.kind()));
    }
    let text = err.to_string();
    match needles.iter().find(|needle| !text.contains(*needle)) {
        Some(missing) => Err(format!("{missing:?} missing from: {text}")),
        None => Ok(()),
    }
}

/// `KIND=posix` (`NAME`), `file` (`PATH`) or `memfd`: a four-page region, truncated to one page
/// through a second fd, touched, then grown back to four pages.
fn role_truncate() -> i32 {
    outcome(|| {
        let kind = std::env::var("KIND").map_err(|_| "KIND not set".to_owned())?;
        let env = |key: &str| std::env::var(key).map_err(|_| format!("{key} not set"));
        let opts = RegionOptions::new().size(4 * PAGE);
        let (region, fd): (Region, OwnedFd) = match kind.as_str() {
            "posix" => {
                let name = env("NAME")?;
                let region =
                    Region::create(&Backing::posix(&name), &opts).map_err(|e| e.to_string())?;
                let fd = shm_open(name.as_str(), OFlag::O_RDWR, Mode::empty())
                    .map_err(|e| format!("shm_open: {e}"))?;
                (region, fd)
            }
            "file" => {
                let path = env("PATH")?;
                let region =
                    Region::create(&Backing::file(&path), &opts).map_err(|e| e.to_string())?;
                let file = fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| format!("open: {e}"))?;
                (region, file.into())
            }
            "memfd" => {
                let (fd, region) = truncatable(4, RegionOptions::new())?;
                (region, fd)
            }
            other => return Err(format!("unknown KIND {other:?}")),
        };
        let what = region.backing().to_string();
        let counter = region
            .fault_counter()
            .ok_or_else(|| format!("{what}: no fault counter"))?;
        region
            .check_intact()
            .map_err(|e| format!("not intact before the truncation: {e}"))?;

        ftruncate(&fd, PAGE as i64).map_err(|e| format!("ftruncate: {e}"))?;
        expect_truncated(
            region.check_intact(),
            &[
                &what,
                "16384 bytes are mapped",
                "has 4096 bytes now",
                "memfd",
            ],
        )?;

        let byte = read_at(&region, 2 * PAGE + 1);
        let counted = counter.load(Ordering::Relaxed);
        if (byte, counted, region.truncation_faults()) != (0, 1, 1) {
            return Err(format!(
                "after touching a lost page: reads {byte:#x}, counter {counted}, \
                 truncation_faults {}",
                region.truncation_faults()
            ));
        }

        ftruncate(&fd, 4 * PAGE as i64).map_err(|e| format!("ftruncate: {e}"))?;
        expect_truncated(
            region.check_intact(),
            &[
                &what,
                "has 16384 bytes again",
                "but 1 truncated page of the mapping was touched",
            ],
        )?;
        Ok(())
    })
}

/// Two guarded regions; only the first one's object is truncated and touched. Then the first
/// is dropped and a third made: in this fresh process the first free table entry is the first
/// region's, so the third gets its counter, reset.
fn role_counter() -> i32 {
    outcome(|| {
        let (fd_a, a) = truncatable(2, RegionOptions::new())?;
        let (_fd_b, b) = truncatable(2, RegionOptions::new())?;
        let counter_a = a.fault_counter().ok_or("no counter for a")?;
        let counter_b = b.fault_counter().ok_or("no counter for b")?;
        if ptr::eq(counter_a, counter_b) {
            return Err("two live regions share a counter".to_owned());
        }
        ftruncate(&fd_a, PAGE as i64).map_err(|e| format!("ftruncate: {e}"))?;
        let byte = read_at(&a, PAGE);
        let counts = (
            counter_a.load(Ordering::Relaxed),
            counter_b.load(Ordering::Relaxed),
        );
        if (byte, counts) != (0, (1, 0)) {
            return Err(format!(
                "reads {byte:#x}; counters (a, b) = {counts:?}, want (1, 0)"
            ));
        }
        drop(a);
        let (_fd_c, c) = truncatable(2, RegionOptions::new())?;
        let counter_c = c.fault_counter().ok_or("no counter for c")?;
        if !ptr::eq(counter_c, counter_a) {
            return Err("the freed entry was not reused: this test cannot check the reset".into());
        }
        match counter_c.load(Ordering::Relaxed) {
            0 => Ok(()),
            n => Err(format!("a reused entry's counter starts at {n}")),
        }
    })
}
