//! Whether spinning can help a waiter: only while its peer may be running on another CPU.
//!
//! A waiter that spins for a peer that shares its only CPU burns the time slice the peer
//! needs to produce what the waiter waits for: on one CPU the default strategy's round trip
//! was dozens of times a pipe's. An endpoint therefore asks, on its slow path (once per
//! liveness interval), whether every peer is confined to the one CPU it is confined to itself
//! (or the machine has a single online CPU), and its waits then yield and park at once
//! instead of spinning.
//!
//! The answer is a performance hint, never a correctness input: every value read from shared
//! memory (a peer's pid) only chooses between two correct ways of waiting, and whatever cannot
//! be known (a peer in another pid namespace, an affinity that cannot be read) counts as "the
//! peer may run elsewhere", which keeps today's spinning.

/// The CPUs `pid` may run on (`0`: the calling thread), or `None` if they cannot be read
/// (no such process, more CPUs than a `cpu_set_t` holds, Miri).
#[cfg(not(ringway_loom))]
fn affinity(pid: libc::pid_t) -> Option<libc::cpu_set_t> {
    if cfg!(miri) {
        return None;
    }
    // SAFETY: a `cpu_set_t` is an array of integers; all zeros is the empty set.
    let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
    // SAFETY: `set` is a live, writable `cpu_set_t` of the size passed; the kernel writes at
    // most that many bytes into it and reads nothing else of ours. Any pid is valid input
    // (an unknown one fails with ESRCH).
    let rc =
        unsafe { libc::sched_getaffinity(pid, core::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    (rc == 0).then_some(set)
}

/// The CPUs of `set`.
#[cfg(not(ringway_loom))]
fn cpus(set: &libc::cpu_set_t) -> impl Iterator<Item = usize> + '_ {
    // SAFETY: CPU_ISSET reads one bit of `set`, a valid `cpu_set_t`, at an index below
    // CPU_SETSIZE, its size in bits.
    (0..libc::CPU_SETSIZE as usize).filter(move |&cpu| unsafe { libc::CPU_ISSET(cpu, set) })
}

/// The only CPU of `set`, or `None` if it holds none or several.
#[cfg(not(ringway_loom))]
fn only_cpu(set: &libc::cpu_set_t) -> Option<usize> {
    let mut all = cpus(set);
    match (all.next(), all.next()) {
        (Some(cpu), None) => Some(cpu),
        _ => None,
    }
}

/// Whether the machine has one online CPU.
#[cfg(not(ringway_loom))]
fn one_cpu_online() -> bool {
    if cfg!(miri) {
        return false;
    }
    // SAFETY: sysconf only reads its argument, a valid name.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) == 1 }
}

/// Whether spinning is futile: one CPU online, or the calling thread confined to one CPU and
/// every peer (`Some(pid)` in this pid namespace; `None`: a peer whose pid means nothing
/// here) confined to that same CPU. With no peer at all it is `false` (nothing to judge by;
/// spinning for a peer that has not attached costs nothing it could use).
#[cfg(not(ringway_loom))]
pub(crate) fn spin_futile(peers: impl IntoIterator<Item = Option<u32>>) -> bool {
    if one_cpu_online() {
        return true;
    }
    let Some(cpu) = affinity(0).as_ref().and_then(only_cpu) else {
        return false;
    };
    let mut any = false;
    for peer in peers {
        // pid 0 would name the caller itself, and a pid beyond `pid_t` names no process.
        let Some(pid) = peer
            .and_then(|p| libc::pid_t::try_from(p).ok())
            .filter(|&p| p > 0)
        else {
            return false;
        };
        if affinity(pid).as_ref().and_then(only_cpu) != Some(cpu) {
            return false;
        }
        any = true;
    }
    any
}

/// Under loom there are no CPUs to ask about: the models wait as they always did.
#[cfg(ringway_loom)]
pub(crate) fn spin_futile(_peers: impl IntoIterator<Item = Option<u32>>) -> bool {
    false
}

#[cfg(all(test, not(ringway_loom), not(miri)))]
mod tests {
    use super::*;

    /// Runs `f` on a new thread confined to `cpu`.
    fn on_cpu<T: Send + 'static>(cpu: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::spawn(move || {
            // SAFETY: as in `affinity`.
            let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
            // SAFETY: sets one bit of `set`, at an index below CPU_SETSIZE.
            unsafe { libc::CPU_SET(cpu, &mut set) };
            // SAFETY: `set` is a valid `cpu_set_t` of the size passed; pid 0 is this thread.
            let rc = unsafe {
                libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set)
            };
            assert_eq!(rc, 0, "sched_setaffinity");
            f()
        })
        .join()
        .unwrap()
    }

    fn first_allowed_cpu() -> usize {
        cpus(&affinity(0).unwrap()).next().unwrap()
    }

    #[test]
    fn a_thread_pinned_with_its_peer_on_one_cpu_does_not_spin() {
        let cpu = first_allowed_cpu();
        // The peer: a child process confined to the same CPU (a process, since affinity is
        // read by pid and a pid names a process's main thread).
        let mut child = std::process::Command::new("taskset")
            .args(["-c", &cpu.to_string(), "sleep", "30"])
            .spawn();
        let Ok(child) = child.as_mut() else {
            eprintln!("no taskset here: skipped");
            return;
        };
        let pid = child.id();
        // `taskset` pins itself, then execs `sleep`: wait until the pin is visible.
        let mut pinned = false;
        for _ in 0..1000 {
            if affinity(pid as libc::pid_t).as_ref().and_then(only_cpu) == Some(cpu) {
                pinned = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let same = on_cpu(cpu, move || spin_futile([Some(pid)]));
        let unknown = on_cpu(cpu, || spin_futile([None]));
        let nobody = on_cpu(cpu, || spin_futile([]));
        let free = spin_futile([Some(pid)]);
        let _ = child.kill();
        let _ = child.wait();
        assert!(pinned, "taskset did not pin its child");
        assert!(same, "both on CPU {cpu}: spinning is futile");
        if !one_cpu_online() {
            assert!(
                !unknown,
                "a peer whose pid means nothing here may run elsewhere"
            );
            assert!(!nobody, "no peer: keep spinning");
            let own = affinity(0).unwrap();
            assert_eq!(
                free,
                only_cpu(&own).is_some(),
                "an unpinned caller spins unless it is confined to one CPU"
            );
        }
    }

    #[test]
    fn a_peer_that_does_not_exist_or_is_pid_zero_is_unknown() {
        if one_cpu_online() {
            return;
        }
        let cpu = first_allowed_cpu();
        assert!(!on_cpu(cpu, || spin_futile([Some(0)])));
        assert!(!on_cpu(cpu, || spin_futile([Some(u32::MAX)])));
    }
}
