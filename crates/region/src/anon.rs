//! Anonymous shared memory, two routes to one result: `mmap(MAP_SHARED |
//! MAP_ANONYMOUS)`, and the BSD way, `mmap(MAP_SHARED)` of `/dev/zero`.
//!
//! Either way the memory has no name: it is shared with the children this
//! process `fork`s after creating it, and the kernel frees it when the last
//! mapping goes. It cannot be truncated, so it never causes `SIGBUS`.

use std::os::fd::AsFd;

use nix::fcntl::{OFlag, open as open_path};
use nix::sys::stat::Mode;

use crate::error::{Error, Op};
use crate::map::Mapping;
use crate::options::{HugePages, RegionOptions};
use crate::{Backing, Owner, Region};

/// Why `open` makes no sense for these backings.
pub(crate) const OPEN_HINT: &str = "an anonymous or /dev/zero mapping has no name to open: it is \
    shared with children forked after Region::create; to share with an unrelated process use a \
    memfd (fd inheritance or fdpass), POSIX shm, SysV or a file";

pub(crate) fn create_anonymous(backing: &Backing, opts: &RegionOptions) -> Result<Region, Error> {
    let size = opts.validate(Op::Create, backing)?;
    let fail = |call, errno| {
        let err = Error::os(Op::Create, backing, call, errno);
        if opts.huge() == HugePages::Explicit {
            err.huge_pages_context()
        } else {
            err
        }
    };
    let map = Mapping::map_anonymous(size as usize, opts).map_err(|e| fail("mmap", e))?;
    map.apply(opts, false).map_err(|(call, e)| fail(call, e))?;
    Ok(Region::new(
        map,
        backing.clone(),
        Owner::None,
        true,
        false,
        false,
    ))
}

pub(crate) fn create_dev_zero(backing: &Backing, opts: &RegionOptions) -> Result<Region, Error> {
    let size = opts.validate(Op::Create, backing)?;
    let fail = |call, errno| Error::os(Op::Create, backing, call, errno);
    let fd = open_path("/dev/zero", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| fail("open(\"/dev/zero\")", e))?;
    // mmap(2) of /dev/zero with MAP_SHARED gives fresh shared anonymous
    // memory (the kernel's shmem_zero_setup); the fd is not needed after, and
    // is closed on return: "closing the file descriptor does not unmap the
    // region".
    let map =
        Mapping::map_fd(fd.as_fd(), size as usize, false, opts).map_err(|e| fail("mmap", e))?;
    map.apply(opts, false).map_err(|(call, e)| fail(call, e))?;
    Ok(Region::new(
        map,
        backing.clone(),
        Owner::None,
        true,
        false,
        false,
    ))
}
