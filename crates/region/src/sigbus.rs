//! Surviving a peer that truncates the object under our mapping.
//!
//! A process that can open a POSIX shm object or a file can `ftruncate` it. Every other
//! process that has it mapped then gets `SIGBUS` when it touches a page past the new end
//! (mmap(2): "Use of a mapped region can result in these signals: SIGBUS: attempted access to a
//! page of the buffer that lies beyond the end of the mapped file"). A sealed memfd cannot be
//! truncated; for the other fd-backed mappings, this module turns the fault into something
//! the ring layer already survives: garbage, and a count of it.
//!
//! Every mapping of an object that can shrink is registered in a [table] that grows as needed.
//! A `SIGBUS` handler, installed once, looks at what the kernel reports. If it is an access
//! fault past the end of a file (`si_code == BUS_ADRERR`) at an address inside a registered
//! mapping, it maps a private zero-filled page over the faulting page with `MAP_FIXED`, with
//! the mapping's protection, counts it in the mapping's entry, and returns: the faulting
//! instruction runs again and reads zeros (writes go to the private page, which nobody else
//! sees; a read-only mapping gets a read-only page, so a write faults as anywhere else in it).
//! Every other `SIGBUS` (a fault elsewhere, a hardware memory error, a signal sent by a
//! process) gets what it would have got without us ([`chain`]).
//!
//! The handler reads atomics and makes system calls (`mmap`, `sigaction`, `pthread_sigmask`,
//! `rt_tgsigqueueinfo`), all async-signal-safe; it allocates nothing and takes no lock, and it
//! leaves `errno` as it found it.
//!
//! [table]: table

mod table;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nix::errno::Errno;

use table::{Entry, Slot};

/// The handler that was installed before ours, to chain to.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Set once a previous handler installed with `SA_RESETHAND` has been called: the kernel would
/// have reset the action to the default then, so later signals take the default.
static PREVIOUS_SPENT: AtomicBool = AtomicBool::new(false);

/// Set when our handler stops being the SIGBUS action: [`die`] reset it to the default, or a
/// previous handler we called replaced it. The guard no longer runs.
static DISARMED: AtomicBool = AtomicBool::new(false);

/// A mapping's entry in the table; frees it when dropped.
#[derive(Debug)]
pub(crate) struct Guard {
    slot: &'static Slot,
}

impl Guard {
    /// Registers `start .. start + len` (page-aligned, pages of `granule` bytes, mapped with
    /// protection `prot`), installing the handler first if this is the first mapping.
    ///
    /// # Errors
    ///
    /// The errno of `sigaction` if the handler could not be installed, `ENOMEM` if the table
    /// had to grow and could not: the mapping is then not guarded.
    pub(crate) fn register(
        start: *mut u8,
        len: usize,
        granule: usize,
        prot: libc::c_int,
    ) -> Result<Guard, Errno> {
        install()?;
        let slot = table::insert(Entry {
            start: start.addr(),
            len,
            granule,
            prot,
        })?;
        Ok(Guard { slot })
    }

    /// The counter of truncated pages the handler has replaced in this mapping. It lives as
    /// long as the process; after this guard is dropped it counts for whichever mapping is
    /// registered in the same entry next (and is reset to zero then).
    pub(crate) fn faults(&self) -> &'static AtomicU64 {
        self.slot.faults()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        table::remove(self.slot);
    }
}

/// Whether the handler is still the SIGBUS action, as far as we know: it was not reset by
/// [`die`] or replaced by a handler we chained to. (A `sigaction` call elsewhere in the
/// program that replaces ours cannot be seen.)
pub(crate) fn is_armed() -> bool {
    !DISARMED.load(Ordering::Relaxed)
}

/// Installs the handler once; the errno of `sigaction` if that failed.
///
/// The action in place is read first and stored where the handler finds it, and only then is
/// ours installed: a fault that reaches our handler always finds the previous action to chain
/// to. (Installing and reading the old action in one `sigaction` call would leave a window,
/// between the call and the store, in which the handler chains to nothing.)
fn install() -> Result<(), Errno> {
    static INSTALLED: OnceLock<Result<(), Errno>> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        // SAFETY: a zeroed sigaction is a valid value (no handler, empty mask, no flags),
        // which sigaction overwrites.
        let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only reads the current one (sigaction(2): "If act is
        // non-NULL, the new action for signal signum is installed from act"); `previous` is a
        // live sigaction to write it to.
        if unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) } != 0 {
            return Err(Errno::last());
        }
        // SYNC(previous): stored before our handler can run; the handler reads it with
        // `OnceLock::get`, whose Acquire load pairs with this initialisation.
        let _ = PREVIOUS.set(previous);
        // SAFETY: as above, a zeroed sigaction is valid; the fields are filled in below.
        let mut ours: libc::sigaction = unsafe { std::mem::zeroed() };
        ours.sa_sigaction = handler as *const () as usize;
        ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        // A system call our handler interrupts is restarted or fails with EINTR as the
        // previous handler chose; an ignored signal would not have interrupted it at all, so
        // restart it then. (Calls that are never restarted, such as select(2) or epoll_wait(2),
        // still fail with EINTR when a SIGBUS sent by another process is ignored through us.)
        if previous.sa_sigaction == libc::SIG_IGN || previous.sa_flags & libc::SA_RESTART != 0 {
            ours.sa_flags |= libc::SA_RESTART;
        }
        // SAFETY: sigemptyset writes the mask it is given, a field of a live value.
        unsafe { libc::sigemptyset(&mut ours.sa_mask) };
        // SAFETY: `ours` is a live sigaction; `handler` has the signature SA_SIGINFO requires
        // and is async-signal-safe (see the module docs).
        if unsafe { libc::sigaction(libc::SIGBUS, &ours, std::ptr::null_mut()) } != 0 {
            return Err(Errno::last());
        }
        Ok(())
    })
}

extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // The interrupted code may be between a failed call and its read of errno: whatever the
    // handler does, errno is as it found it when it returns, and as the interrupted code left
    // it when a previous handler runs.
    // SAFETY: __errno_location returns this thread's errno, valid for the thread's lifetime;
    // reading and writing it is what the interrupted code does too.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: as above.
    let saved = unsafe { errno.read() };
    if !replace_truncated_page(info) {
        // SAFETY: as above.
        unsafe { errno.write(saved) };
        chain(signal, info, context);
    }
    // SAFETY: as above.
    unsafe { errno.write(saved) };
}

/// If `info` reports an access to a truncated page of a guarded mapping, maps a private zero
/// page over it and returns `true`: the access then runs again and succeeds.
fn replace_truncated_page(info: *mut libc::siginfo_t) -> bool {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    // Ours is only the kernel's report of an access to a page no longer backed by the file,
    // BUS_ADRERR (the kernel's do_sigbus for VM_FAULT_SIGBUS: "force_sig_fault(SIGBUS,
    // BUS_ADRERR, address)"). Anything else goes on as if we were not here:
    // - si_code <= 0 (SI_USER, SI_QUEUE, SI_TKILL): sent by a process with kill, sigqueue or
    //   tgkill; the union then holds the sender's pid and uid, not an address;
    // - BUS_MCEERR_AR, BUS_MCEERR_AO: a hardware memory error, which zeros must not hide;
    // - BUS_ADRALN, BUS_OBJERR: not a truncation.
    // (Only a process signalling itself can forge a positive si_code: rt_sigqueueinfo(2).)
    if code != libc::BUS_ADRERR {
        return false;
    }
    // SAFETY: for BUS_ADRERR the union holds si_addr, the faulting address.
    let addr = unsafe { (*info).si_addr() }.addr();
    let Some((slot, entry)) = table::find(addr) else {
        return false;
    };
    let granule = entry.granule.max(4096);
    let page = addr & !(granule - 1);
    // SAFETY: `page .. page + granule` lies inside a mapping this process owns (it is
    // registered until just before it is unmapped, and a registered range is only accessed
    // through raw pointers). MAP_FIXED replaces exactly those pages with private zero-filled
    // memory with the mapping's own protection (a read-only region's page stays read-only);
    // mmap is a plain system call, safe to make from a signal handler.
    let mapped = unsafe {
        libc::mmap(
            page as *mut libc::c_void,
            granule,
            entry.prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    if mapped == libc::MAP_FAILED {
        return false;
    }
    slot.faults().fetch_add(1, Ordering::Relaxed);
    true
}

/// Does with a SIGBUS that is not ours what would have happened without us, by the action that
/// was in place when ours was installed:
///
/// - a handler: called with the original arguments (three for `SA_SIGINFO`, one otherwise),
///   with its `sa_mask` (and the signal itself, unless `SA_NODEFER`) blocked while it runs, as
///   the kernel would; with `SA_RESETHAND` only the first time, the default afterwards;
/// - `SIG_IGN`: a signal sent by a process (`si_code <= 0`) or an asynchronous memory error
///   report (`BUS_MCEERR_AO`) is ignored; a fault the kernel forced on the faulting thread kills
///   (the kernel too resets an ignored action to the default for those: `force_sig_info`);
/// - `SIG_DFL`: the process dies of this SIGBUS ([`die`]).
fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    let forced = code > 0 && code != libc::BUS_MCEERR_AO;
    // SYNC(previous): pairs with the store in `install`, done before our handler was installed,
    // so it is always there; the default stands in for it only to avoid a panic path.
    let Some(previous) = PREVIOUS.get() else {
        return die(signal, info);
    };
    match previous.sa_sigaction {
        libc::SIG_IGN if !forced => {}
        libc::SIG_DFL | libc::SIG_IGN => die(signal, info),
        _ if previous.sa_flags & libc::SA_RESETHAND != 0
            && PREVIOUS_SPENT.swap(true, Ordering::Relaxed) =>
        {
            die(signal, info)
        }
        action => {
            call_previous(previous, action, signal, info, context);
            after_previous(signal, info);
        }
    }
}

/// What a previous handler may have done to the action while it ran.
///
/// Rust's standard library installs a SIGBUS handler in every Rust program that did not set
/// one itself (to report stack overflows), so in a Rust program that is the previous handler.
/// For a fault outside the stack's guard page it resets SIGBUS to the default and returns,
/// expecting the faulting access to run again and kill the process. We take a handler that
/// resets the action to the default as asking for the default action and carry it out at once
/// ([`die`]): a fault ends the process as it would have, and a SIGBUS sent by another process
/// kills too (std alone would have swallowed the first one, which is not what its reset means),
/// instead of leaving the process alive with the guard silently removed. A handler that
/// installed some other action has taken SIGBUS over: the guard no longer runs, and
/// [`is_armed`] says so.
fn after_previous(signal: libc::c_int, info: *mut libc::siginfo_t) {
    // SAFETY: a zeroed sigaction is a valid value, overwritten by sigaction.
    let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current one into the live local; sigaction is
    // async-signal-safe.
    if unsafe { libc::sigaction(signal, std::ptr::null(), &mut now) } != 0 {
        return;
    }
    if now.sa_sigaction == handler as *const () as usize {
        return;
    }
    DISARMED.store(true, Ordering::Relaxed);
    if now.sa_sigaction == libc::SIG_DFL {
        die(signal, info);
    }
}

/// Calls the previous handler as the kernel would have.
fn call_previous(
    previous: &libc::sigaction,
    action: libc::sighandler_t,
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    let mut mask = previous.sa_mask;
    if previous.sa_flags & libc::SA_NODEFER == 0 {
        // SAFETY: sigaddset writes the live local mask.
        unsafe { libc::sigaddset(&mut mask, signal) };
    }
    // SAFETY: a zeroed sigset_t is a valid (empty) set, overwritten by pthread_sigmask.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: both sets are live locals; pthread_sigmask is async-signal-safe
    // (signal-safety(7)).
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &mask, &mut old) };
    if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it has this
        // signature; it gets exactly what the kernel gave us.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(action) };
        f(signal, info, context);
    } else {
        // SAFETY: without SA_SIGINFO the previous handler takes the signal number only.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(action) };
        f(signal);
    }
    // SAFETY: restores the mask saved above, a live local.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
}

/// Ends the process with this SIGBUS, the way the default action would have: resets the
/// action to the default, unblocks the signal in this thread and sends this thread the same
/// siginfo again (`rt_tgsigqueueinfo`), which the kernel delivers as the call returns, so the
/// process dies of SIGBUS with the original `si_code` and address in its core dump; plain
/// `tgkill` if that fails. The guard is gone from then on, process-wide, but the process is
/// already dying: a fault on another thread in between dies of SIGBUS too, as it would have.
///
/// Returns only if the signal could not be delivered; a forced fault then runs the faulting
/// access again, which faults again, now under the default action.
fn die(signal: libc::c_int, info: *mut libc::siginfo_t) {
    DISARMED.store(true, Ordering::Relaxed);
    // SAFETY: a zeroed sigaction is SIG_DFL (0) with an empty mask and no flags; installing it
    // and manipulating this thread's mask are async-signal-safe system calls on live locals.
    // rt_tgsigqueueinfo gets this process, this thread and the siginfo the kernel gave us
    // (a thread may queue any siginfo to itself: rt_sigqueueinfo(2)).
    unsafe {
        let default: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, &default, std::ptr::null_mut());
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        let (pid, tid) = (libc::getpid(), libc::gettid());
        if libc::syscall(libc::SYS_rt_tgsigqueueinfo, pid, tid, signal, info) != 0 {
            libc::syscall(libc::SYS_tgkill, pid, tid, signal);
        }
    }
}
