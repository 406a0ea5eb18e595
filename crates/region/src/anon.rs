//! Anonymous shared memory, two routes to one result: `mmap(MAP_SHARED |
//! MAP_ANONYMOUS)`, and the BSD way, `mmap(MAP_SHARED)` of `/dev/zero`.
//!
//! Either way the memory has no name: it is shared with the children this
//! process `fork`s after creating it, and the kernel frees it when the last
//! mapping goes. It cannot be truncated, so it never causes `SIGBUS`.

use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open as open_path};
use nix::sys::stat::Mode;

use crate::error::{Error, Op};
use crate::map::Mapping;
use crate::options::RegionOptions;
use crate::{Backing, Owner, Region};

/// Why `open` makes no sense for these backings.
pub(crate) const OPEN_HINT: &str = "an anonymous or /dev/zero mapping has no name to open: it is \
    shared with children forked after Region::create; to share with an unrelated process use a \
    memfd (fd inheritance or fdpass), POSIX shm, SysV or a file";

pub(crate) fn create_anonymous(backing: &Backing, opts: &RegionOptions) -> Result<Region, Error> {
    let size = opts.validate(Op::Create, backing)?;
    finish(backing, opts, Mapping::map_anonymous(size as usize, opts))
}

pub(crate) fn create_dev_zero(backing: &Backing, opts: &RegionOptions) -> Result<Region, Error> {
    let size = opts.validate(Op::Create, backing)?;
    let fd = open_path("/dev/zero", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::os_create(backing, "open(\"/dev/zero\")", e, opts))?;
    // mmap(2) of /dev/zero with MAP_SHARED gives fresh shared anonymous
    // memory (the kernel's shmem_zero_setup); the fd is not needed after, and
    // is closed on return: "closing the file descriptor does not unmap the
    // region".
    finish(
        backing,
        opts,
        Mapping::map_fd(fd.as_fd(), size as usize, false, opts),
    )
}

/// The post-map options, and the region.
fn finish(
    backing: &Backing,
    opts: &RegionOptions,
    map: Result<Mapping, Errno>,
) -> Result<Region, Error> {
    let map = map.map_err(|e| Error::os_create(backing, "mmap", e, opts))?;
    map.apply(opts, false)
        .map_err(|(call, e)| Error::os_create(backing, call, e, opts))?;
    Ok(Region::created(map, backing, Owner::None, opts))
}
