//! The SIGBUS guard, seen from the processes it protects.
//!
//! A signal disposition belongs to the whole process, so every victim is a child: a
//! re-executed role, a fresh process whose SIGBUS action is the one the role sets up before it
//! maps its first region. The test and the victim talk over a socket pair: the victim says it
//! is ready (one byte), the test acts on it (sends a signal), then tells it to go on (one byte).
//! Victims map memfds (no name anywhere) and turn core dumps off, so a victim that dies leaves
//! nothing behind.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use libtest_mimic::{Failed, Trial};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, ftruncate};
use ringway_region::{Region, RegionOptions};
use ringway_testkit::harness::Role;
use ringway_testkit::{Child, RoleCommand};

use crate::TIMEOUT;

pub(crate) const PAGE: usize = 4096;

/// The byte every page of a victim's memfd starts with.
const FILL: u8 = 0x5a;

pub(crate) fn trials() -> Vec<Trial> {
    crate::trials(
        "sigbus",
        &[
            (
                "foreign_fault_without_handler_dies_of_sigbus",
                foreign_fault_dies,
            ),
            (
                "foreign_fault_reaches_the_previous_siginfo_handler",
                foreign_fault_reaches_handler,
            ),
            (
                "user_sigbus_reaches_the_previous_siginfo_handler_as_si_user",
                user_sigbus_reaches_handler,
            ),
            (
                "hardware_memory_error_in_a_guarded_mapping_reaches_the_previous_handler",
                hardware_error_reaches_handler,
            ),
            (
                "user_sigbus_kills_a_process_without_a_handler",
                user_sigbus_kills,
            ),
            (
                "user_sigbus_stays_ignored_and_the_guard_stays",
                user_sigbus_ignored,
            ),
            (
                "foreign_fault_with_sigbus_ignored_still_dies",
                foreign_fault_ignored_dies,
            ),
            (
                "previous_handler_with_sa_resethand_runs_once",
                resethand_runs_once,
            ),
            (
                "hardware_memory_error_without_a_handler_kills",
                hardware_error_kills,
            ),
            ("errno_survives_a_handled_truncation_fault", errno_survives),
            (
                "read_only_replacement_page_reads_zeros_and_refuses_writes",
                read_only_replacement,
            ),
            (
                "more_than_256_simultaneous_mappings_are_all_guarded",
                many_mappings,
            ),
            (
                "a_previous_handler_that_takes_sigbus_over_unguards_every_region",
                takeover_is_reported,
            ),
        ],
    )
}

pub(crate) const ROLES: &[Role<'static>] = &[
    ("sigbus-foreign-fault", role_foreign_fault),
    ("sigbus-kill", role_kill),
    ("sigbus-hardware-error", role_hardware_error),
    ("sigbus-resethand", role_resethand),
    ("sigbus-errno", role_errno),
    ("sigbus-read-only", role_read_only),
    ("sigbus-many", role_many),
    ("sigbus-takeover", role_takeover),
];

// ---------------------------------------------------------------------------------------------
// The test's side.

/// A victim process and the test's end of its socket.
struct Victim {
    role: &'static str,
    child: Child,
    link: UnixStream,
}

impl Victim {
    fn spawn(role: &'static str, env: &[(&str, &str)]) -> Result<Victim, Failed> {
        let (ours, theirs) = UnixStream::pair()?;
        let mut command = RoleCommand::new(role)
            .env("LINK", theirs.as_raw_fd().to_string())
            .inherit_fd(theirs.as_fd());
        for (key, value) in env {
            command = command.env(key, *value);
        }
        let child = command.spawn()?;
        drop(theirs);
        ours.set_read_timeout(Some(TIMEOUT))?;
        Ok(Victim {
            role,
            child,
            link: ours,
        })
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.pid() as i32)
    }

    fn failure(&mut self, what: String) -> Failed {
        let (out, err) = self.child.output();
        format!("role {}: {what}; stdout:\n{out}\nstderr:\n{err}", self.role).into()
    }

    /// Waits for the victim's "ready" byte.
    fn ready(&mut self) -> Result<(), Failed> {
        let mut byte = [0u8; 1];
        match self.link.read(&mut byte) {
            Ok(1) => Ok(()),
            other => Err(self.failure(format!("no ready byte: {other:?}"))),
        }
    }

    /// Sends `signal` to the victim, then tells it to go on: the signal is pending before the
    /// byte is written, so the victim has handled it (or died of it) when it reads the byte.
    fn signal_then_go(&mut self, signal: Signal) -> Result<(), Failed> {
        kill(self.pid(), signal)?;
        // A victim that died of the signal has closed its end: that is for `end` to report.
        let _ = self.link.write_all(b"g");
        Ok(())
    }

    /// Waits for the victim to die of `signal`.
    fn expect_death(mut self, signal: i32) -> Result<(), Failed> {
        let status = self.child.wait_timeout(TIMEOUT)?;
        if status.signal() == Some(signal) {
            Ok(())
        } else {
            Err(self.failure(format!("expected death by signal {signal}, got {status}")))
        }
    }

    /// Waits for the victim to exit with code 0.
    fn expect_success(mut self) -> Result<(), Failed> {
        let status = self.child.wait_timeout(TIMEOUT)?;
        if status.success() {
            Ok(())
        } else {
            Err(self.failure(format!("expected exit code 0, got {status}")))
        }
    }
}

/// A fault in a mapping ringway does not know (a memfd the victim truncated under its own plain
/// `mmap`), in a process that set no SIGBUS handler of its own before ringway (std's, or the
/// plain default): the process dies of SIGBUS, as it would without ringway.
fn foreign_fault_dies() -> Result<(), Failed> {
    for handler in ["none", "default"] {
        Victim::spawn("sigbus-foreign-fault", &[("HANDLER", handler)])?
            .expect_death(libc::SIGBUS)?;
    }
    Ok(())
}

/// The same fault where the program installed an `SA_SIGINFO` handler before ringway: that
/// handler gets it, with the kernel's `si_code` and address, and ringway counts nothing.
fn foreign_fault_reaches_handler() -> Result<(), Failed> {
    Victim::spawn("sigbus-foreign-fault", &[("HANDLER", "siginfo")])?.expect_success()
}

/// `kill -BUS` from another process, to a victim whose own `SA_SIGINFO` handler was there before
/// ringway's: the handler receives it as sent (`SI_USER`, our pid), once, and the guard still
/// replaces truncated pages afterwards.
fn user_sigbus_reaches_handler() -> Result<(), Failed> {
    let mut victim = Victim::spawn("sigbus-kill", &[("HANDLER", "siginfo")])?;
    victim.ready()?;
    victim.signal_then_go(Signal::SIGBUS)?;
    victim.expect_success()
}

/// A hardware memory error (`BUS_MCEERR_AR`) at an address inside a guarded mapping, in a victim
/// with its own `SA_SIGINFO` handler: the handler gets it, and the page is not silently replaced
/// by zeros (its bytes are still there, no truncation is counted).
fn hardware_error_reaches_handler() -> Result<(), Failed> {
    Victim::spawn(
        "sigbus-hardware-error",
        &[("HANDLER", "siginfo"), ("CODE", "AR")],
    )?
    .expect_success()
}

/// `kill -BUS` from another process to a victim with a guarded mapping and no SIGBUS action of
/// its own (std's handler, or the plain default): it dies of SIGBUS; the guard does not
/// swallow it.
fn user_sigbus_kills() -> Result<(), Failed> {
    for handler in ["none", "default"] {
        let mut victim = Victim::spawn("sigbus-kill", &[("HANDLER", handler)])?;
        victim.ready()?;
        victim.signal_then_go(Signal::SIGBUS)?;
        victim.expect_death(libc::SIGBUS)?;
    }
    Ok(())
}

/// `kill -BUS` to a victim that ignores SIGBUS: ignored, and the guard is still in place
/// afterwards (a truncated page reads zeros).
fn user_sigbus_ignored() -> Result<(), Failed> {
    let mut victim = Victim::spawn("sigbus-kill", &[("HANDLER", "ignore")])?;
    victim.ready()?;
    victim.signal_then_go(Signal::SIGBUS)?;
    victim.expect_success()
}

/// A fault outside ringway's mappings in a victim that ignores SIGBUS: the kernel does not let
/// a process ignore its own access faults (it resets the action and kills), and neither does
/// the guard.
fn foreign_fault_ignored_dies() -> Result<(), Failed> {
    Victim::spawn("sigbus-foreign-fault", &[("HANDLER", "ignore")])?.expect_death(libc::SIGBUS)
}

/// A plain (not `SA_SIGINFO`) handler installed with `SA_RESETHAND` before ringway: the first
/// SIGBUS runs it, the second kills, as without ringway (the kernel resets a one-shot action
/// to the default when it delivers the signal).
fn resethand_runs_once() -> Result<(), Failed> {
    let mut victim = Victim::spawn("sigbus-resethand", &[])?;
    victim.ready()?;
    victim.signal_then_go(Signal::SIGBUS)?;
    victim.ready()?;
    victim.signal_then_go(Signal::SIGBUS)?;
    victim.expect_death(libc::SIGBUS)
}

/// A hardware memory error inside a guarded mapping, in a victim without a SIGBUS action of
/// its own: the process dies of SIGBUS, for an error that needs action (`AR`) and one that
/// does not (`AO`, whose default action also kills), instead of reading zeros.
fn hardware_error_kills() -> Result<(), Failed> {
    for handler in ["none", "default"] {
        for code in ["AR", "AO"] {
            Victim::spawn(
                "sigbus-hardware-error",
                &[("HANDLER", handler), ("CODE", code)],
            )?
            .expect_death(libc::SIGBUS)?;
        }
    }
    Ok(())
}

/// The interrupted code's `errno` is the same after the guard handled a truncation fault.
fn errno_survives() -> Result<(), Failed> {
    Victim::spawn("sigbus-errno", &[])?.expect_success()
}

/// A read-only region's truncated page is replaced by a read-only zero page: it reads zeros,
/// and a write to it faults (SIGSEGV) as a write anywhere in a read-only mapping does.
fn read_only_replacement() -> Result<(), Failed> {
    Victim::spawn("sigbus-read-only", &[])?.expect_death(libc::SIGSEGV)
}

/// More mappings than the first table chunk holds, all guarded at once: every one of them reads
/// zeros on a truncated page, the 300th as the first.
fn many_mappings() -> Result<(), Failed> {
    Victim::spawn("sigbus-many", &[("COUNT", "300")])?.expect_success()
}

/// A handler installed before ringway that, when ringway calls it, installs another SIGBUS
/// action: the guard no longer runs, and `is_guarded` says so.
fn takeover_is_reported() -> Result<(), Failed> {
    let mut victim = Victim::spawn("sigbus-takeover", &[])?;
    victim.ready()?;
    victim.signal_then_go(Signal::SIGBUS)?;
    victim.expect_success()
}

// ---------------------------------------------------------------------------------------------
// The victims' side.

/// Runs a victim's body: exit code 0, or 1 with the reason on stderr.
pub(crate) fn outcome(body: impl FnOnce() -> Result<(), String>) -> i32 {
    // A victim that dies of a signal must not leave a core file in the working directory.
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads the struct it is given, a live local.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
    match body() {
        Ok(()) => 0,
        Err(reason) => {
            eprintln!("victim: {reason}");
            1
        }
    }
}

/// The victim's end of the socket.
fn link() -> UnixStream {
    let fd: i32 = std::env::var("LINK")
        .expect("LINK")
        .parse()
        .expect("LINK is an fd");
    // SAFETY: the test passed this fd across exec for this role alone.
    unsafe { UnixStream::from_raw_fd(fd) }
}

fn say_ready(link: &mut UnixStream) -> Result<(), String> {
    link.write_all(b"r").map_err(|e| format!("link: {e}"))
}

fn wait_go(link: &mut UnixStream) -> Result<(), String> {
    let mut byte = [0u8; 1];
    loop {
        match link.read(&mut byte) {
            Ok(1) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return Err(format!("link: {other:?}")),
        }
    }
}

/// An unsealed memfd of `pages` pages, every byte [`FILL`], mapped as a region with `opts`
/// (plus `allow_unsealed`): a mapping a peer can truncate, so the guard watches it. Returns the
/// memfd too, to truncate it with.
pub(crate) fn truncatable(pages: usize, opts: RegionOptions) -> Result<(OwnedFd, Region), String> {
    let fd = memfd_create("ringway-sigbus-victim", MFdFlags::MFD_CLOEXEC)
        .map_err(|e| format!("memfd_create: {e}"))?;
    let bytes = vec![FILL; pages * PAGE];
    nix::sys::uio::pwrite(&fd, &bytes, 0).map_err(|e| format!("pwrite: {e}"))?;
    let dup = fd.try_clone().map_err(|e| format!("dup: {e}"))?;
    let region = Region::from_fd(dup, &opts.allow_unsealed(true)).map_err(|e| e.to_string())?;
    if !region.is_guarded() {
        return Err("a truncatable region is not guarded".to_owned());
    }
    Ok((fd, region))
}

/// Reads the byte at `offset` of `region` (volatile: the access itself is what is tested).
pub(crate) fn read_at(region: &Region, offset: usize) -> u8 {
    assert!(offset < region.len());
    // SAFETY: `offset` is inside the live mapping; a truncated page either faults into the
    // guard, which maps a zero page, or kills the process, which is what the tests observe.
    unsafe { region.as_ptr().add(offset).read_volatile() }
}

/// Truncates the memfd behind `region` to one page and checks that its second page now reads
/// zeros, counted as one truncation fault: the guard is in place.
fn guard_replaces(fd: &OwnedFd, region: &Region) -> Result<(), String> {
    ftruncate(fd, PAGE as i64).map_err(|e| format!("ftruncate: {e}"))?;
    let before = region.truncation_faults();
    let byte = read_at(region, PAGE + 7);
    if byte != 0 {
        return Err(format!("a truncated page reads {byte:#x}, not zero"));
    }
    match region.truncation_faults() - before {
        1 => Ok(()),
        n => Err(format!(
            "{n} truncation faults counted for one truncated page"
        )),
    }
}

/// What the victim's own SIGBUS handler saw: how many calls, and the last `si_code`,
/// `si_pid` (for signals sent by a process) and `si_addr` (for faults).
static SEEN: AtomicUsize = AtomicUsize::new(0);
static CODE: AtomicI32 = AtomicI32::new(i32::MIN);
static SENDER: AtomicI32 = AtomicI32::new(0);
static ADDR: AtomicUsize = AtomicUsize::new(0);

/// The victim's own `SA_SIGINFO` handler: records what it got, and for an access fault maps a
/// private zero page over the faulting page, so that the access succeeds when it runs again
/// (what a program that maps files it does not trust does).
extern "C" fn record(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel (or ringway, passing on what the kernel gave it) hands an
    // SA_SIGINFO handler a valid siginfo.
    let info = unsafe { &*info };
    CODE.store(info.si_code, Ordering::Relaxed);
    if info.si_code <= 0 {
        // SAFETY: si_code <= 0: sent by a process, so the union holds the sender's pid.
        SENDER.store(unsafe { info.si_pid() }, Ordering::Relaxed);
    } else {
        // SAFETY: si_code > 0 for SIGBUS: a fault, so the union holds the address.
        let addr = unsafe { info.si_addr() }.addr();
        ADDR.store(addr, Ordering::Relaxed);
        if info.si_code == libc::BUS_ADRERR {
            // SAFETY: the page is part of a mapping this victim made and only reads through
            // raw pointers; MAP_FIXED replaces just that page. mmap is async-signal-safe.
            unsafe {
                libc::mmap(
                    (addr & !(PAGE - 1)) as *mut libc::c_void,
                    PAGE,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
        }
    }
    SEEN.fetch_add(1, Ordering::Relaxed);
}

/// A plain handler: counts.
extern "C" fn count(_: libc::c_int) {
    SEEN.fetch_add(1, Ordering::Relaxed);
}

/// Sets the victim's own SIGBUS action, as named by `HANDLER` in the environment: `none`
/// (leave it: in a Rust program that is std's stack overflow handler, which resets the action
/// to the default and returns), `default` (`SIG_DFL`, what a C program starts with), `siginfo`
/// ([`record`]) or `ignore`.
fn set_own_action() -> Result<(), String> {
    let handler = std::env::var("HANDLER").map_err(|_| "HANDLER not set".to_owned())?;
    let (action, flags) = match handler.as_str() {
        "none" => return Ok(()),
        "default" => (libc::SIG_DFL, 0),
        "siginfo" => (record as *const () as usize, libc::SA_SIGINFO),
        "ignore" => (libc::SIG_IGN, 0),
        other => return Err(format!("unknown HANDLER {other:?}")),
    };
    set_action(action, flags)
}

fn set_action(action: libc::sighandler_t, flags: libc::c_int) -> Result<(), String> {
    // SAFETY: a zeroed sigaction is valid (empty mask, no flags); the fields are set below.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = action;
    act.sa_flags = flags;
    // SAFETY: `act` is a live sigaction; the handler, if any, has the signature its flags
    // announce and only touches atomics and mmap.
    if unsafe { libc::sigaction(libc::SIGBUS, &act, std::ptr::null_mut()) } != 0 {
        return Err(format!("sigaction: {}", io::Error::last_os_error()));
    }
    Ok(())
}

/// `HANDLER=none|default|siginfo|ignore`: maps a truncatable region (so ringway's guard is installed), then
/// faults on a memfd it truncated under its own plain `mmap`.
fn role_foreign_fault() -> i32 {
    outcome(|| {
        set_own_action()?;
        let (_fd, region) = truncatable(2, RegionOptions::new())?;
        let own = memfd_create("ringway-sigbus-own", MFdFlags::MFD_CLOEXEC)
            .map_err(|e| format!("memfd_create: {e}"))?;
        ftruncate(&own, 2 * PAGE as i64).map_err(|e| format!("ftruncate: {e}"))?;
        // SAFETY: a fresh shared mapping of the memfd, at an address the kernel chooses.
        let own_map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * PAGE,
                libc::PROT_READ,
                libc::MAP_SHARED,
                own.as_raw_fd(),
                0,
            )
        };
        if own_map == libc::MAP_FAILED {
            return Err(format!("mmap: {}", io::Error::last_os_error()));
        }
        ftruncate(&own, PAGE as i64).map_err(|e| format!("ftruncate: {e}"))?;
        let target = own_map.addr() + PAGE + 9;
        // SAFETY: inside the mapping made above; the page is truncated, so this faults: the
        // process dies, or the victim's handler maps a zero page there.
        let byte = unsafe { (target as *const u8).read_volatile() };
        if byte != 0 {
            return Err(format!("read {byte:#x} after the handler"));
        }
        let (seen, code, addr) = (
            SEEN.load(Ordering::Relaxed),
            CODE.load(Ordering::Relaxed),
            ADDR.load(Ordering::Relaxed),
        );
        if (seen, code, addr) != (1, libc::BUS_ADRERR, target) {
            return Err(format!(
                "own handler saw {seen} calls, last si_code {code} at {addr:#x}; expected 1, \
                 BUS_ADRERR at {target:#x}"
            ));
        }
        if region.truncation_faults() != 0 {
            return Err("ringway counted a fault outside its mapping".to_owned());
        }
        Ok(())
    })
}

/// `HANDLER=none|default|siginfo|ignore`: maps a truncatable region, says ready, and waits while the
/// test sends it SIGBUS. With `none` it must not survive; with `siginfo` its handler must have
/// seen exactly that signal; and then the guard must still replace a truncated page.
fn role_kill() -> i32 {
    outcome(|| {
        set_own_action()?;
        let (fd, region) = truncatable(2, RegionOptions::new())?;
        let mut link = link();
        say_ready(&mut link)?;
        wait_go(&mut link)?;
        let handler = std::env::var("HANDLER").unwrap_or_default();
        if handler == "none" || handler == "default" {
            // Report survival at once: a later fault must not pass for death by this signal.
            return Err("survived a SIGBUS sent by another process".to_owned());
        }
        if handler == "siginfo" {
            let (seen, code, sender) = (
                SEEN.load(Ordering::Relaxed),
                CODE.load(Ordering::Relaxed),
                SENDER.load(Ordering::Relaxed),
            );
            let parent = nix::unistd::getppid().as_raw();
            if (seen, code, sender) != (1, libc::SI_USER, parent) {
                return Err(format!(
                    "own handler saw {seen} calls, last si_code {code} from pid {sender}; \
                     expected 1, SI_USER from {parent}"
                ));
            }
        }
        guard_replaces(&fd, &region)
    })
}

/// The head of the kernel's siginfo for a memory fault (`struct siginfo`, `_sigfault`): what
/// the kernel fills in for SIGBUS, laid out as the kernel lays it out (`repr(C)` puts `addr`
/// at the union's offset, 16 on 64-bit targets).
#[repr(C)]
struct FaultHead {
    signo: libc::c_int,
    errno: libc::c_int,
    code: libc::c_int,
    addr: *mut libc::c_void,
    addr_lsb: libc::c_short,
}

/// Sends this thread the SIGBUS the kernel sends for a hardware memory error (`code`:
/// `BUS_MCEERR_AR`, action required, or `BUS_MCEERR_AO`, action optional) at `addr`, with the
/// same siginfo. Real poisoning needs `MADV_HWPOISON`, which ruins a page of the machine's
/// memory; a thread may send itself any siginfo with `rt_tgsigqueueinfo` (rt_sigqueueinfo(2):
/// positive codes are refused only "when sending a signal to a process other than itself").
fn forge_memory_error(code: libc::c_int, addr: usize) -> Result<(), String> {
    // SAFETY: a zeroed siginfo is a valid value (plain integers and padding).
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    const _: () = assert!(size_of::<FaultHead>() <= size_of::<libc::siginfo_t>());
    let head = (&raw mut info).cast::<FaultHead>();
    // SAFETY: `head` points into the live `info`, which is larger and at least as aligned (a
    // siginfo holds pointers); only plain fields are written.
    unsafe {
        (*head).signo = libc::SIGBUS;
        (*head).code = code;
        (*head).addr = addr as *mut libc::c_void;
        (*head).addr_lsb = 12;
    }
    // SAFETY: reads the union as libc lays it out, to check that `FaultHead` agrees.
    if unsafe { info.si_addr() }.addr() != addr {
        return Err("FaultHead does not match libc's siginfo layout".to_owned());
    }
    // SAFETY: the arguments are this process, this thread, a valid signal and a live
    // siginfo, which the kernel copies.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_rt_tgsigqueueinfo,
            libc::getpid(),
            libc::gettid(),
            libc::SIGBUS,
            &raw const info,
        )
    };
    if sent != 0 {
        return Err(format!("rt_tgsigqueueinfo: {}", io::Error::last_os_error()));
    }
    Ok(())
}

/// `HANDLER=none|default|siginfo`, `CODE=AR|AO`: a guarded region gets a hardware memory error on its
/// second page. Must die (`none`), or survive with its handler having seen exactly that error
/// and the page untouched (`siginfo`).
fn role_hardware_error() -> i32 {
    outcome(|| {
        set_own_action()?;
        let code = match std::env::var("CODE").as_deref() {
            Ok("AR") => libc::BUS_MCEERR_AR,
            Ok("AO") => libc::BUS_MCEERR_AO,
            other => return Err(format!("CODE: {other:?}")),
        };
        let (_fd, region) = truncatable(2, RegionOptions::new())?;
        let target = region.as_ptr().addr() + PAGE + 3;
        forge_memory_error(code, target)?;
        // Delivered before the system call returned; still alive, so a handler took it.
        let (seen, got, addr) = (
            SEEN.load(Ordering::Relaxed),
            CODE.load(Ordering::Relaxed),
            ADDR.load(Ordering::Relaxed),
        );
        if (seen, got, addr) != (1, code, target) {
            return Err(format!(
                "own handler saw {seen} calls, last si_code {got} at {addr:#x}; expected 1, \
                 {code} at {target:#x}"
            ));
        }
        let byte = read_at(&region, PAGE + 3);
        if byte != FILL || region.truncation_faults() != 0 {
            return Err(format!(
                "the page was replaced: reads {byte:#x}, {} truncation faults",
                region.truncation_faults()
            ));
        }
        Ok(())
    })
}

/// A plain one-shot handler ([`count`] with `SA_RESETHAND`), then a guarded region; the test
/// sends SIGBUS twice. Survives the first with one call counted, must die of the second.
fn role_resethand() -> i32 {
    outcome(|| {
        set_action(count as *const () as usize, libc::SA_RESETHAND)?;
        let (_fd, _region) = truncatable(1, RegionOptions::new())?;
        let mut link = link();
        say_ready(&mut link)?;
        wait_go(&mut link)?;
        let seen = SEEN.load(Ordering::Relaxed);
        if seen != 1 {
            return Err(format!(
                "the one-shot handler ran {seen} times for one SIGBUS"
            ));
        }
        say_ready(&mut link)?;
        wait_go(&mut link)?;
        Err(format!(
            "survived a second SIGBUS after a one-shot handler ({} calls)",
            SEEN.load(Ordering::Relaxed)
        ))
    })
}

/// Sets `errno`, touches a truncated page of a guarded region, and checks `errno` again.
fn role_errno() -> i32 {
    outcome(|| {
        let (fd, region) = truncatable(2, RegionOptions::new())?;
        ftruncate(&fd, PAGE as i64).map_err(|e| format!("ftruncate: {e}"))?;
        const SENTINEL: libc::c_int = libc::EXDEV;
        // SAFETY: __errno_location returns this thread's errno, valid for the thread's life.
        let errno = unsafe { libc::__errno_location() };
        // SAFETY: as above; a plain write of this thread's errno.
        unsafe { errno.write_volatile(SENTINEL) };
        let byte = read_at(&region, PAGE + 1);
        // SAFETY: as above; read right after the faulting access, before any other call.
        let after = unsafe { errno.read_volatile() };
        if after != SENTINEL {
            return Err(format!("errno was {SENTINEL}, is {after} after the fault"));
        }
        if (byte, region.truncation_faults()) != (0, 1) {
            return Err(format!(
                "the truncated page reads {byte:#x}, {} faults counted",
                region.truncation_faults()
            ));
        }
        Ok(())
    })
}

/// A read-only region loses its second page; reading it gives zeros, then the victim writes to
/// it, which must kill it with SIGSEGV.
fn role_read_only() -> i32 {
    outcome(|| {
        let (fd, region) = truncatable(2, RegionOptions::new().read_only(true))?;
        if !region.is_read_only() {
            return Err("the region is not read-only".to_owned());
        }
        guard_replaces(&fd, &region)?;
        // SAFETY: inside the mapping. It is read-only, so this write is meant to fault: a
        // writable replacement page would take it and let the victim go on.
        unsafe { region.as_ptr().add(PAGE + 5).write_volatile(1) };
        Err("wrote to the replacement page of a read-only region".to_owned())
    })
}

/// `COUNT` regions over one unsealed memfd of two pages, all live at once; then the memfd loses
/// its second page and every region reads it, last region first.
fn role_many() -> i32 {
    outcome(|| {
        let count: usize = std::env::var("COUNT")
            .map_err(|_| "COUNT not set".to_owned())?
            .parse()
            .map_err(|_| "COUNT is not a number".to_owned())?;
        let (fd, first) = truncatable(2, RegionOptions::new())?;
        let mut regions = vec![first];
        for _ in 1..count {
            let dup = fd.try_clone().map_err(|e| format!("dup: {e}"))?;
            let opts = RegionOptions::new().allow_unsealed(true);
            let region = Region::from_fd(dup, &opts).map_err(|e| e.to_string())?;
            if !region.is_guarded() {
                return Err(format!(
                    "region {} of {count} is not guarded",
                    regions.len() + 1
                ));
            }
            regions.push(region);
        }
        ftruncate(&fd, PAGE as i64).map_err(|e| format!("ftruncate: {e}"))?;
        for (i, region) in regions.iter().enumerate().rev() {
            let byte = read_at(region, PAGE + i % PAGE);
            if (byte, region.truncation_faults()) != (0, 1) {
                return Err(format!(
                    "region {} of {count}: the truncated page reads {byte:#x}, {} faults",
                    i + 1,
                    region.truncation_faults()
                ));
            }
        }
        Ok(())
    })
}

/// A handler that takes SIGBUS over the first time it runs: it counts, then makes [`count`]
/// the action.
extern "C" fn take_over(_: libc::c_int) {
    SEEN.fetch_add(1, Ordering::Relaxed);
    // SAFETY: a zeroed sigaction is valid; sigaction is async-signal-safe and reads the live
    // local; `count` takes the signal number only, as installed without SA_SIGINFO.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = count as *const () as usize;
        libc::sigaction(libc::SIGBUS, &act, std::ptr::null_mut());
    }
}

/// [`take_over`] before a guarded region; the test sends SIGBUS. Afterwards the region must
/// report that it is no longer guarded.
fn role_takeover() -> i32 {
    outcome(|| {
        set_action(take_over as *const () as usize, 0)?;
        let (_fd, region) = truncatable(1, RegionOptions::new())?;
        let mut link = link();
        say_ready(&mut link)?;
        wait_go(&mut link)?;
        if SEEN.load(Ordering::Relaxed) != 1 {
            return Err("the previous handler did not run".to_owned());
        }
        if region.is_guarded() {
            return Err("is_guarded() after the SIGBUS action was replaced".to_owned());
        }
        Ok(())
    })
}
