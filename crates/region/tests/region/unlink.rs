//! `Region::unlink` and the creator's drop remove a name only while it still belongs to the
//! region's own object: a stranger who took the name over keeps it.

use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;

use libtest_mimic::{Failed, Trial};
use nix::sys::mman::shm_unlink;
use ringway_region::{Backing, ErrorKind, Region, RegionOptions};
use ringway_testkit::LeakScope;

use crate::errors::{as_nobody, dev_shm, raw_posix};

const PAGE: usize = 4096;

pub(crate) fn trials() -> Vec<Trial> {
    crate::trials(
        "unlink",
        &[
            (
                "a_posix_name_taken_over_by_a_stranger_is_left_alone",
                posix_taken_over,
            ),
            (
                "a_file_path_taken_over_by_a_stranger_is_left_alone",
                file_taken_over,
            ),
            (
                "own_object_without_read_permission_is_still_unlinked",
                own_unreadable_object,
            ),
        ],
    )
}

/// The (device, inode) of the directory entry at `path`, not following a symbolic link.
fn identity(path: &Path) -> Result<(u64, u64), Failed> {
    let meta = fs::symlink_metadata(path)
        .map_err(|e| format!("{}: {e} (the stranger's object is gone)", path.display()))?;
    Ok((meta.dev(), meta.ino()))
}

/// `unlink()` on every region in `regions` must refuse with `Replaced` and leave `path` as it
/// is; so must dropping them (the first is the creator).
fn expect_left_alone(regions: Vec<Region>, path: &Path) -> Result<(), Failed> {
    let theirs = identity(path)?;
    for region in &regions {
        let err = region
            .unlink()
            .expect_err("unlink() succeeded on a name that is not ours any more");
        assert_eq!(err.kind(), ErrorKind::Replaced, "{err}");
        assert!(
            err.to_string().contains(&region.backing().to_string()),
            "the error names the object: {err}"
        );
        assert_eq!(
            identity(path)?,
            theirs,
            "unlink() left the stranger's object"
        );
    }
    assert!(regions[0].is_creator());
    drop(regions);
    assert_eq!(identity(path)?, theirs, "drop left the stranger's object");
    Ok(())
}

/// A stranger removes our POSIX object and creates its own under the same name (or puts a
/// symbolic link there): neither the creator nor an opener removes it, by `unlink()` or by
/// drop. A name merely removed is `NotFound`, as before.
fn posix_taken_over() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let opts = RegionOptions::new().size(PAGE);

    let name = scope.posix_name("taken");
    let backing = Backing::posix(&name);
    let ours = Region::create(&backing, &opts)?;
    let opener = Region::open(&backing, &RegionOptions::new())?;
    shm_unlink(name.as_str())?;
    let _stranger = raw_posix(&name, 2 * PAGE as i64);
    expect_left_alone(vec![ours, opener], &dev_shm(&name))?;
    shm_unlink(name.as_str())?;

    let name = scope.posix_name("symlinked");
    let ours = Region::create(&Backing::posix(&name), &opts)?;
    shm_unlink(name.as_str())?;
    symlink("/dev/null", dev_shm(&name))?;
    expect_left_alone(vec![ours], &dev_shm(&name))?;
    fs::remove_file(dev_shm(&name))?;

    let name = scope.posix_name("removed");
    let ours = Region::create(&Backing::posix(&name), &opts)?;
    shm_unlink(name.as_str())?;
    let err = ours.unlink().expect_err("unlink() of a removed name");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    Ok(())
}

/// The same for a file: a stranger's file at our path stays, whether the creator or an opener
/// unlinks or drops.
fn file_taken_over() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let path = scope.temp_path("taken");
    let backing = Backing::file(&path);
    let ours = Region::create(&backing, &RegionOptions::new().size(PAGE))?;
    let opener = Region::open(&backing, &RegionOptions::new())?;
    fs::remove_file(&path)?;
    fs::write(&path, b"a stranger's file")?;
    expect_left_alone(vec![ours, opener], &path)?;
    fs::remove_file(&path)?;
    Ok(())
}

/// A creator that made its object unreadable even to itself (mode 0, shared only by fd) can
/// still prove it is its own and remove the name. Runs as nobody, whom the mode binds (root's
/// CAP_DAC_OVERRIDE would ignore it).
fn own_unreadable_object() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("mode0");
    let code = as_nobody(|| {
        let opts = RegionOptions::new().size(PAGE).mode(0);
        let region = match Region::create(&Backing::posix(&name), &opts) {
            Ok(region) => region,
            Err(e) => {
                eprintln!("child: {e}");
                return 3;
            }
        };
        if let Err(e) = region.unlink() {
            eprintln!("child: {e}");
            return 4;
        }
        0
    });
    assert_eq!(code, 0, "nobody unlinks its own mode-0 object");
    assert!(
        fs::symlink_metadata(dev_shm(&name)).is_err(),
        "the name is gone"
    );
    Ok(())
}
