//! `ringway rm NAME` and `ringway clean`: removing segments by name.
//!
//! Removing a name (`shm_unlink`, `IPC_RMID`, `unlink`) never pulls memory from under a
//! process: whoever has the segment mapped keeps it until it unmaps; only new opens fail.
//!
//! - `rm` removes one segment after checking it carries ringway's magic (a ring being created
//!   or a damaged one counts) and that no process uses it (a live registered producer or
//!   consumer, or a live creator: removing the name would leave them running while every new
//!   open fails); anything else is refused unless `--force`.
//! - `clean` removes every ringway segment nobody can be using any more: no registered
//!   producer or consumer is alive and the creator's pid is dead too. Without `--prefix` it
//!   looks only at the invoking user's segments, unless `--all-users`. Segments whose header
//!   is not a valid ring are left alone (they may be being created) and listed; `rm` removes
//!   them.

use std::process::ExitCode;

use ringway_region::{Backing, ErrorKind, Region};
use ringway_ring::RingInfo;

use super::describe::{kind, parties};
use super::probe::{self, Found, in_use};
use super::{CleanArgs, Looked, RmArgs, finish, look, target};

/// Entry point of `ringway rm`.
pub(crate) fn run_rm(args: &RmArgs) -> ExitCode {
    finish("rm", rm(args))
}

fn rm(args: &RmArgs) -> Result<(), String> {
    let backing = args.target.backing();
    let looked = match look(&backing) {
        Ok(looked) => Some(looked),
        // Could not open it to check (e.g. permission): --force removes it unchecked.
        Err(why) if args.force => {
            eprintln!("ringway rm: {why}; removing it anyway (--force)");
            None
        }
        Err(why) => {
            return Err(format!(
                "{why}\n(cannot check it is a ringway segment; --force removes it unchecked)"
            ));
        }
    };
    match looked {
        Some(Looked::Foreign(why)) if !args.force => {
            return Err(format!(
                "{why}; refusing to remove it (--force removes it anyway)"
            ));
        }
        Some(Looked::Ringway(p)) => {
            if let Found::Service(service) = &p.found
                && matches!(&**service, Ok(info) if info.server_alive)
                && !args.force
            {
                return Err(format!(
                    "{} is a service whose server is alive: removing its name would leave it \
                     running while every new connect fails; stop the server first, or remove \
                     it anyway with --force",
                    target::display(&backing)
                ));
            }
            if let Found::Ring(ring) = &p.found
                && in_use(&ring.info)
            {
                let users = users(&ring.info);
                let name = target::display(&backing);
                if !args.force {
                    return Err(format!(
                        "{name} is in use ({users}): removing its name would leave them running \
                         while every new open fails; stop them first, or remove it anyway with \
                         --force"
                    ));
                }
                println!(
                    "note: {name} is in use ({users}); they keep their mapping, new opens fail \
                     (--force)"
                );
            }
        }
        _ => {}
    }
    Region::remove(&backing).map_err(|e| match e.kind() {
        ErrorKind::NotFound => format!("no such segment {backing}: ringway ls lists them"),
        _ => e.to_string(),
    })?;
    println!("removed {}", target::display(&backing));
    Ok(())
}

/// Entry point of `ringway clean`.
pub(crate) fn run_clean(args: &CleanArgs) -> ExitCode {
    finish("clean", clean(args))
}

fn clean(args: &CleanArgs) -> Result<(), String> {
    let segments = Region::list().map_err(|e| e.to_string())?;
    let me = nix::unistd::geteuid().as_raw();
    let (mut removed, mut kept, mut failed, mut others) = (0usize, 0usize, 0usize, 0usize);
    for seg in segments {
        // A segment removed already (SysV, waiting for its last detach) has no name to remove.
        if seg.is_removed() {
            continue;
        }
        // Without a prefix that names them, other users' segments are theirs to clean.
        if args.prefix.is_none() && !args.all_users && seg.uid != me {
            others += 1;
            continue;
        }
        let backing = seg.backing;
        if let Some(prefix) = &args.prefix {
            match &backing {
                Backing::Posix { name } if name.starts_with(prefix.as_str()) => {}
                _ => continue,
            }
        }
        let name = target::display(&backing);
        let Ok(p) = probe::probe(&backing) else {
            continue; // gone meanwhile, empty, or not ours to open: not ours to clean
        };
        let info = match p.found {
            Found::Ring(ring) => ring.info,
            Found::Service(service) => {
                // A service is abandoned once its server is dead or left (its clients
                // reconnect to the next server's segment).
                match *service {
                    Ok(info) if !info.server_alive => {
                        if args.dry_run {
                            println!("would remove {name} (a service whose server died)");
                            removed += 1;
                        } else if Region::remove(&backing).is_ok() {
                            println!("removed {name} (a service whose server died)");
                            removed += 1;
                        }
                    }
                    Ok(_) => kept += 1,
                    Err(why) => println!("skipped {name}: {why}; ringway rm {name} removes it"),
                }
                continue;
            }
            Found::Broken { error, .. } => {
                println!(
                    "skipped {name}: not a valid ring ({error}); ringway rm {name} removes it"
                );
                continue;
            }
            Found::Foreign { .. } => continue,
        };
        if in_use(&info) {
            kept += 1;
            continue;
        }
        let why = dead(&info);
        if args.dry_run {
            println!("would remove {name} ({why})");
            removed += 1;
            continue;
        }
        match Region::remove(&backing) {
            Ok(()) => {
                println!("removed {name} ({why})");
                removed += 1;
            }
            // Someone else removed it meanwhile: the same outcome.
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                eprintln!("ringway clean: {e}");
                failed += 1;
            }
        }
    }
    let verb = if args.dry_run {
        "would be removed"
    } else {
        "removed"
    };
    println!("{removed} segment(s) {verb}, {kept} in use kept");
    if others > 0 {
        println!(
            "{others} other users' segment(s) not looked at (--all-users includes them, or \
             --prefix names them)"
        );
    }
    if failed > 0 {
        return Err(format!("{failed} segment(s) could not be removed"));
    }
    Ok(())
}

/// Who uses a ring: `creator 12 alive, producers 12 alive; consumers 40 alive`.
fn users(info: &RingInfo) -> String {
    let creator = if info.creator_alive {
        format!("creator {} alive, ", info.creator_pid)
    } else {
        String::new()
    };
    format!(
        "{creator}producers {}; consumers {}",
        parties(&info.producers, usize::MAX),
        parties(&info.consumers, usize::MAX)
    )
}

/// Why a segment counts as abandoned: `SPSC, creator 12 dead, producers 12 dead, consumers -`.
fn dead(info: &RingInfo) -> String {
    format!(
        "{}, creator {} dead, producers {}, consumers {}",
        kind(info),
        info.creator_pid,
        parties(&info.producers, usize::MAX),
        parties(&info.consumers, usize::MAX)
    )
}
