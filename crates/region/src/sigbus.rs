//! Surviving a peer that truncates the object under our mapping.
//!
//! A process that can open a POSIX shm object or a file can `ftruncate` it. Every other
//! process that has it mapped then gets `SIGBUS` when it touches a page past the new end
//! (mmap(2): "Use of a mapped region can result in these signals: SIGBUS: attempted access to a
//! page of the buffer that lies beyond the end of the mapped file"). A sealed memfd cannot be
//! truncated; for the other fd-backed mappings, this module turns the fault into something
//! the ring layer already survives: garbage.
//!
//! Each fd-backed mapping is registered in a fixed, lock-free table. A `SIGBUS` handler
//! (installed once, chaining to whatever handler was there before) looks the faulting address
//! up; if it lies in a registered mapping, it maps a private zero-filled page over the faulting
//! page with `MAP_FIXED` and returns, so the faulting instruction runs again and reads zeros
//! (writes go to the private page, which nobody else sees). The ring then sees an empty or
//! corrupted ring (its header check reports it), never a crash. Faults elsewhere go to the
//! previous handler, or kill the process as they would have.
//!
//! The handler only reads atomics and calls `mmap` (a raw system call with no user-space
//! state), so it is safe to run at any point of the interrupted code. The table holds
//! [`SLOTS`] mappings; mappings beyond that are not guarded.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// How many mappings can be guarded at once.
pub(crate) const SLOTS: usize = 256;

struct Slot {
    start: AtomicUsize,
    len: AtomicUsize,
    granule: AtomicUsize,
    faults: AtomicU64,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            granule: AtomicUsize::new(0),
            faults: AtomicU64::new(0),
        }
    }
}

static TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];

/// The handler that was installed before ours, to chain to.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// A mapping's entry in the table; removes it when dropped.
#[derive(Debug)]
pub(crate) struct Guard {
    slot: usize,
}

impl Guard {
    /// Registers `start .. start + len` (page-aligned, pages of `granule` bytes). Returns
    /// `None` if the table is full or the handler could not be installed: the mapping then
    /// works as before, unguarded.
    pub(crate) fn register(start: *mut u8, len: usize, granule: usize) -> Option<Guard> {
        if !install() {
            return None;
        }
        let addr = start.addr();
        for (slot, entry) in TABLE.iter().enumerate() {
            if entry
                .start
                .compare_exchange(0, addr, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                entry.granule.store(granule, Ordering::Relaxed);
                entry.faults.store(0, Ordering::Relaxed);
                // SYNC(guard): Release pairs with the handler's Acquire load of `len`: a
                // handler that sees the length sees the granule too.
                entry.len.store(len, Ordering::Release);
                return Some(Guard { slot });
            }
        }
        None
    }

    /// How many truncated pages the handler has replaced in this mapping.
    pub(crate) fn faults(&self) -> u64 {
        TABLE[self.slot].faults.load(Ordering::Relaxed)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let entry = &TABLE[self.slot];
        entry.len.store(0, Ordering::Release);
        entry.start.store(0, Ordering::Release);
    }
}

/// Installs the handler once; `false` if `sigaction` failed.
///
/// The action in place is read first and stored where the handler finds it, and only then is
/// ours installed: a fault that reaches our handler always finds the previous action to chain
/// to. (Installing and reading the old action in one `sigaction` call would leave a window,
/// between the call and the store, in which the handler chains to nothing.)
fn install() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        // SAFETY: a zeroed sigaction is a valid value (no handler, empty mask, no flags),
        // which sigaction overwrites.
        let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only reads the current one (sigaction(2): "If act is
        // non-NULL, the new action for signal signum is installed from act"); `previous` is a
        // live sigaction to write it to.
        if unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) } != 0 {
            return false;
        }
        // SYNC(previous): stored before our handler can run; the handler reads it with
        // `OnceLock::get`, whose Acquire load pairs with this initialisation.
        let _ = PREVIOUS.set(previous);
        // SAFETY: as above, a zeroed sigaction is valid; the fields are filled in below.
        let mut ours: libc::sigaction = unsafe { std::mem::zeroed() };
        ours.sa_sigaction = handler as *const () as usize;
        ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        // SAFETY: sigemptyset writes the mask it is given, a field of a live value.
        unsafe { libc::sigemptyset(&mut ours.sa_mask) };
        // SAFETY: `ours` is a live sigaction; `handler` has the signature SA_SIGINFO requires
        // and is async-signal-safe (see the module docs).
        unsafe { libc::sigaction(libc::SIGBUS, &ours, std::ptr::null_mut()) == 0 }
    })
}

extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
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
        chain(signal, info, context);
        return;
    }
    // SAFETY: for BUS_ADRERR the union holds si_addr, the faulting address.
    let addr = unsafe { (*info).si_addr() }.addr();
    for entry in &TABLE {
        let start = entry.start.load(Ordering::Acquire);
        // SYNC(guard): pairs with the Release store of `len` in `register`.
        let len = entry.len.load(Ordering::Acquire);
        if start == 0 || addr < start || addr - start >= len {
            continue;
        }
        let granule = entry.granule.load(Ordering::Relaxed).max(4096);
        let page = addr & !(granule - 1);
        // SAFETY: `page .. page + granule` lies inside a mapping this process owns (it is
        // registered until the mapping is unmapped, and a registered range is only accessed
        // through raw pointers). MAP_FIXED replaces exactly those pages with private
        // zero-filled memory of the same protection; mmap is a plain system call, safe to make
        // from a signal handler.
        let mapped = unsafe {
            libc::mmap(
                page as *mut libc::c_void,
                granule,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if mapped != libc::MAP_FAILED {
            entry.faults.fetch_add(1, Ordering::Relaxed);
            return;
        }
        break;
    }
    chain(signal, info, context);
}

/// Hands a fault that is not ours to the handler installed before, or restores the default
/// action so that the faulting instruction, run again, terminates the process as it would
/// have without us.
fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let previous = PREVIOUS.get();
    match previous.map(|p| p.sa_sigaction) {
        Some(action) if action != libc::SIG_DFL && action != libc::SIG_IGN => {
            let flags = previous.map_or(0, |p| p.sa_flags);
            if flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous handler was installed with SA_SIGINFO, so it has this
                // signature; we pass on exactly what the kernel gave us.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(action) };
                f(signal, info, context);
            } else {
                // SAFETY: without SA_SIGINFO the previous handler takes the signal number only.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(action) };
                f(signal);
            }
        }
        _ => {
            // SAFETY: a zeroed sigaction with SIG_DFL (0) restores the default action; the
            // fault repeats when the handler returns and the default action ends the process.
            unsafe {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &default, std::ptr::null_mut());
            }
        }
    }
}
