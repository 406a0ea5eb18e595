//! Truncation by a peer, as the region reports it: [`Region::is_guarded`],
//! [`Region::truncation_faults`], [`Region::fault_counter`] and [`Region::check_intact`], which
//! checks that the object still backs the whole mapping.
//!
//! The `SIGBUS` guard keeps a process alive when a peer truncates the object under its
//! mapping, but the two sides then diverge silently: this process reads and writes private
//! zero pages, the peers the object. The ring layer reads the guard's counter after every copy
//! ([`Region::fault_counter`]); this check catches the rest, every few milliseconds: a
//! truncation that this process has not touched yet (its size), and one that was undone by
//! growing the object back (the pages this process touched meanwhile are still private).

use std::sync::atomic::AtomicU64;

use nix::errno::Errno;
use nix::sys::stat::fstat;

use crate::error::{Error, Op};
use crate::{Owner, Region, sysv};

impl Region {
    /// How many pages of this mapping a peer truncated away and this process then touched.
    ///
    /// For fd-backed regions (POSIX shm, file, an unsealed memfd) a `SIGBUS` guard replaces a
    /// truncated page with a private zero page when it is touched, so the access reads zeros
    /// instead of killing the process; this counts those replacements. A non-zero count means
    /// the object was truncated under us: its contents can no longer be trusted. A sealed
    /// memfd cannot be truncated; SysV and anonymous memory have no file to truncate. Always
    /// 0 when the region [`is_guarded`](Region::is_guarded) only because it cannot shrink.
    pub fn truncation_faults(&self) -> u64 {
        self.map.truncation_faults()
    }

    /// Whether a peer that truncates the object can no longer kill this process through this
    /// mapping.
    ///
    /// `true` when the object cannot shrink (SysV, anonymous, `/dev/zero`, a memfd sealed with
    /// `F_SEAL_SHRINK`), and when the `SIGBUS` guard watches the mapping (POSIX shm, files, an
    /// unsealed memfd; see [`truncation_faults`](Region::truncation_faults)). `false` when the
    /// object can shrink but the guard could not be set up: `sigaction` failed, or there was
    /// no memory to grow its table. It also turns `false` for every region once the guard is
    /// no longer the `SIGBUS` action because a `SIGBUS` that was not a truncation killed the
    /// process (it is then dying) or a handler installed before ringway replaced the action
    /// when ringway called it. A program that installs its own `SIGBUS` action after creating
    /// regions replaces the guard without this method knowing.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringway_region::{Backing, Region, RegionOptions};
    ///
    /// let region = Region::create(&Backing::Anonymous, &RegionOptions::new().size(4096))?;
    /// assert!(region.is_guarded(), "anonymous memory cannot be truncated");
    /// # Ok::<(), ringway_region::Error>(())
    /// ```
    pub fn is_guarded(&self) -> bool {
        self.map.is_guarded()
    }

    /// The counter that [`truncation_faults`](Region::truncation_faults) reads, for a layer
    /// that checks it on its fast path; `None` when the `SIGBUS` guard does not watch this
    /// mapping, because the object cannot shrink (SysV, anonymous, `/dev/zero`, a memfd
    /// sealed with `F_SEAL_SHRINK`) or because the guard could not be set up
    /// ([`is_guarded`](Region::is_guarded) is then `false`).
    ///
    /// The guard's handler increments it (a plain `fetch_add`) on the faulting thread before
    /// the faulting access runs again. So a thread that has just copied into or out of the
    /// mapping sees the faults of its own copy with a `Relaxed` load after a
    /// [`compiler_fence`](std::sync::atomic::compiler_fence), which keeps the compiler from
    /// moving the load before the copy. Faults taken by other threads show up later.
    ///
    /// The reference is `'static`, because the guard's table is never freed, but it counts
    /// for this mapping only while this region lives. Once the region is dropped, its entry
    /// may be reused by a later mapping, which resets the counter to zero and counts its own
    /// faults in it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{Ordering, compiler_fence};
    /// use ringway_region::{Backing, Region, RegionOptions};
    ///
    /// let name = format!("/ringway-doc-faults-{}", std::process::id());
    /// let region = Region::create(&Backing::posix(&name), &RegionOptions::new().size(4096))?;
    /// let faults = region.fault_counter().expect("a POSIX object can be truncated");
    /// let mut copy = [0u8; 64];
    /// // SAFETY: the mapping is live and at least 64 bytes long.
    /// unsafe { std::ptr::copy_nonoverlapping(region.as_ptr(), copy.as_mut_ptr(), 64) };
    /// compiler_fence(Ordering::SeqCst);
    /// assert_eq!(faults.load(Ordering::Relaxed), 0, "the copy read the shared bytes");
    ///
    /// let anonymous = Region::create(&Backing::Anonymous, &RegionOptions::new().size(4096))?;
    /// assert!(anonymous.fault_counter().is_none(), "nothing can truncate it");
    /// # Ok::<(), ringway_region::Error>(())
    /// ```
    pub fn fault_counter(&self) -> Option<&'static AtomicU64> {
        self.map.fault_counter()
    }

    /// Checks that the object still backs the whole mapping. This is the slow path next to
    /// [`fault_counter`](Region::fault_counter): one system call, for every few milliseconds
    /// rather than every access.
    ///
    /// - POSIX shm, files and memfds: `fstat`; the object must be at least as long as the
    ///   mapping;
    /// - SysV: `IPC_STAT`; the segment must still exist and be at least as long (it cannot
    ///   shrink, but it is checked anyway);
    /// - anonymous and `/dev/zero` memory: always `Ok`.
    ///
    /// In every case no truncated page may have been touched
    /// ([`truncation_faults`](Region::truncation_faults) must be 0). An object that was
    /// truncated and then grown back has the right size again, but this process holds private
    /// zero pages in place of the pages it touched meanwhile, and its peers do not see them.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Truncated`](crate::ErrorKind::Truncated), naming the object, the mapped length, its size now and the
    /// faults; the OS error if `fstat` or `IPC_STAT` fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringway_region::{Backing, ErrorKind, Region, RegionOptions};
    ///
    /// let name = format!("/ringway-doc-intact-{}", std::process::id());
    /// let region = Region::create(&Backing::posix(&name), &RegionOptions::new().size(8192))?;
    /// region.check_intact()?;
    ///
    /// // A peer truncates the object (here through our own fd):
    /// nix::unistd::ftruncate(region.fd().unwrap(), 4096).unwrap();
    /// let err = region.check_intact().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Truncated);
    /// assert!(err.to_string().contains("8192 bytes are mapped but the object has 4096"));
    /// # Ok::<(), ringway_region::Error>(())
    /// ```
    pub fn check_intact(&self) -> Result<(), Error> {
        check(self)
    }
}

/// [`Region::check_intact`].
fn check(region: &Region) -> Result<(), Error> {
    let backing = &region.backing;
    let size = match &region.owner {
        // POSIX shm, memfd, file: the file's size.
        Owner::Fd(fd) => {
            let st = fstat(fd).map_err(|e| Error::os(Op::Check, backing, "fstat", e))?;
            Some(u64::try_from(st.st_size).unwrap_or(0))
        }
        // A SysV segment cannot be resized, but a removed one goes with its last detach; we are
        // attached, so it should still be there: check anyway.
        Owner::SysV(shmid) => match sysv::ipc_stat(*shmid) {
            Ok(ds) => Some(ds.shm_segsz as u64),
            // shmctl(2): "EIDRM shmid points to a removed identifier"; "EINVAL shmid is not a
            // valid identifier".
            Err(Errno::EIDRM | Errno::EINVAL) => None,
            Err(e) => return Err(Error::os(Op::Check, backing, "shmctl(IPC_STAT)", e)),
        },
        // Anonymous and /dev/zero memory has no object anyone else could resize.
        Owner::None => return Ok(()),
    };
    let mapped = region.len() as u64;
    let faults = region.truncation_faults();
    if faults == 0 && size.is_some_and(|size| size >= mapped) {
        return Ok(());
    }
    Err(Error::Truncated {
        what: backing.to_string(),
        mapped,
        size,
        faults,
    })
}
