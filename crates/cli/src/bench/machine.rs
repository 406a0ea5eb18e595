//! Machine facts printed above the results, and the CPU pinning policy.
//!
//! By default, when at least two CPUs are allowed, side A and side B are pinned to two distinct
//! CPUs of the allowed set (preferring two separate physical cores over two SMT siblings), so a
//! measurement does not depend on where the scheduler happens to put the processes. The
//! orchestrating parent is not pinned: it sleeps in `poll` while the peers run.

use std::fmt;
use std::fs;
use std::io;

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// What the results were measured on.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    /// CPUs online.
    pub(crate) online: usize,
    /// CPUs this process may run on.
    pub(crate) allowed: Vec<usize>,
    /// CPU model name from `/proc/cpuinfo`.
    pub(crate) model: String,
    /// Kernel: `uname` system name, release and machine.
    pub(crate) kernel: String,
    /// The 1-minute load average before the bench started: other work on the machine.
    pub(crate) load: Option<f64>,
}

/// A load average above this means other work competes for the CPUs: figures will be noisy.
const BUSY_LOAD: f64 = 0.5;

impl Machine {
    /// Reads the facts of the running machine; a fact that cannot be read says so.
    pub(crate) fn detect() -> Self {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, m)| m.trim())
            })
            .unwrap_or("unknown CPU model")
            .to_owned();
        let online = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        let kernel = nix::sys::utsname::uname().map_or_else(
            |e| format!("unknown kernel ({e})"),
            |u| {
                format!(
                    "{} {} {}",
                    u.sysname().to_string_lossy(),
                    u.release().to_string_lossy(),
                    u.machine().to_string_lossy()
                )
            },
        );
        let allowed = allowed_cpus().unwrap_or_default();
        let load = fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next()?.parse().ok());
        Machine {
            online: online.max(allowed.len()),
            allowed,
            model,
            kernel,
            load,
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "machine: {} CPUs online, {} allowed; {}; {}",
            self.online,
            self.allowed.len(),
            self.model,
            self.kernel
        )?;
        match self.load {
            Some(load) if load > BUSY_LOAD => write!(
                f,
                "\nWARNING: load average {load:.2} before starting: other work is running, \
                 expect noisy figures (especially tails)"
            ),
            _ => Ok(()),
        }
    }
}

/// Where the two sides of a measurement run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pinning {
    /// Side A's CPU (also the CPU of one-process transports), or `None` when not pinned.
    pub(crate) a: Option<usize>,
    /// Side B's CPU, or `None` when not pinned.
    pub(crate) b: Option<usize>,
    /// The policy in words, e.g. why the sides are not pinned.
    pub(crate) note: String,
}

impl fmt::Display for Pinning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.a, self.b) {
            (Some(a), Some(b)) if a == b => {
                write!(f, "pinning: both sides on CPU {a} ({})", self.note)
            }
            (Some(a), Some(b)) => write!(
                f,
                "pinning: side A on CPU {a}, side B on CPU {b} ({})",
                self.note
            ),
            _ => write!(f, "pinning: not pinned ({})", self.note),
        }
    }
}

/// Chooses the CPUs of sides A and B from `allowed`, unless `enabled` is false.
/// `same_core(x, y)` says whether two CPUs are SMT siblings of one physical core.
pub(crate) fn plan_pinning(
    allowed: &[usize],
    enabled: bool,
    same_core: impl Fn(usize, usize) -> bool,
) -> Pinning {
    let unpinned = |note: &str| Pinning {
        a: None,
        b: None,
        note: note.to_owned(),
    };
    if !enabled {
        return unpinned("--no-pin: the scheduler places both sides");
    }
    let [a, rest @ ..] = allowed else {
        return unpinned("the allowed CPU set could not be read");
    };
    if rest.is_empty() {
        return unpinned("only one CPU allowed: both sides share it");
    }
    match rest.iter().find(|&&b| !same_core(*a, b)) {
        Some(&b) => Pinning {
            a: Some(*a),
            b: Some(b),
            note: "two separate physical cores; --no-pin to disable".into(),
        },
        None => Pinning {
            a: Some(*a),
            b: Some(rest[0]),
            note: "SMT siblings of one core: no two separate cores allowed; --no-pin to disable"
                .into(),
        },
    }
}

/// Both sides on the first CPU of `allowed` (`--same-cpu`); not pinned if it is unknown.
pub(crate) fn one_cpu(allowed: &[usize]) -> Pinning {
    match allowed.first() {
        Some(&cpu) => Pinning {
            a: Some(cpu),
            b: Some(cpu),
            note: "--same-cpu: both sides share one CPU".into(),
        },
        None => Pinning {
            a: None,
            b: None,
            note: "--same-cpu, but the allowed CPU set could not be read".into(),
        },
    }
}

/// Whether two CPUs are SMT siblings, from sysfs topology (`false` when unknown).
pub(crate) fn smt_siblings(x: usize, y: usize) -> bool {
    let core = |cpu: usize| -> Option<(String, String)> {
        let dir = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
        let read = |f: &str| {
            fs::read_to_string(format!("{dir}/{f}"))
                .ok()
                .map(|s| s.trim().to_owned())
        };
        Some((read("physical_package_id")?, read("core_id")?))
    };
    matches!((core(x), core(y)), (Some(p), Some(q)) if p == q)
}

/// The CPUs the calling thread may run on, in increasing order.
pub(crate) fn allowed_cpus() -> io::Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0))?;
    Ok((0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect())
}

/// Pins the calling process (a single-threaded peer) to `cpu`.
pub(crate) fn pin_to(cpu: usize) -> io::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    sched_setaffinity(Pid::from_raw(0), &set)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_two_separate_cores_when_there_are_some() {
        let p = plan_pinning(&[0, 1, 2, 3], true, |x, y| x / 2 == y / 2);
        assert_eq!((p.a, p.b), (Some(0), Some(2)));
    }

    #[test]
    fn falls_back_to_siblings_then_to_not_pinning() {
        let p = plan_pinning(&[4, 5], true, |_, _| true);
        assert_eq!((p.a, p.b), (Some(4), Some(5)));
        assert!(p.note.contains("SMT"));
        assert_eq!(plan_pinning(&[3], true, |_, _| false).a, None);
        assert_eq!(plan_pinning(&[0, 1], false, |_, _| false).b, None);
    }

    #[test]
    fn same_cpu_pins_both_sides_to_the_first_allowed() {
        let p = one_cpu(&[2, 3]);
        assert_eq!((p.a, p.b), (Some(2), Some(2)));
        assert!(p.to_string().contains("both sides on CPU 2"));
        assert_eq!(one_cpu(&[]).a, None);
    }

    #[test]
    fn this_machine_has_facts() {
        let m = Machine::detect();
        assert!(!m.allowed.is_empty());
        assert!(m.to_string().contains("CPUs online"));
    }
}
