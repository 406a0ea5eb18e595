//! `ringway ls`, `stat`, `rm` and `clean` against real segments: channels made with
//! `ringway-channel` in this process (alive) and in a child killed with SIGKILL (dead), plus a
//! POSIX object that is not ringway's. Every name comes from a `LeakScope`, which fails the
//! test if anything is left in `/dev/shm`, the System V table or the temporary directory.
//!
//! `clean` is run for real only with `--prefix` (this test's own names), so it cannot remove
//! another process's segments on a shared machine; its unfiltered form runs with `--dry-run`.
//! What another user sees is tested by running `ringway` as `nobody` (when the test runs as
//! root; otherwise those tests only say they were skipped).

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use ringway_channel::{Address, ByteReceiver, ByteSender, ChannelOptions, Flavour};
use ringway_region::{Backing, Region, RegionOptions};
use ringway_testkit::{LeakScope, harness, spawn_role};

mod common;
use common::{Run, ringway};

const LIMIT: Duration = Duration::from_secs(30);

fn run(args: &[&str]) -> Run {
    ringway(args, LIMIT)
}

/// Runs `ringway args...` and requires success.
fn ok(args: &[&str]) -> String {
    let r = run(args);
    assert!(
        r.status.success(),
        "ringway {args:?} failed ({}):\n{}\n{}",
        r.status,
        r.stdout,
        r.stderr
    );
    r.stdout
}

/// Runs `ringway args...` and requires failure with exit code 1; returns stderr.
fn fails(args: &[&str]) -> String {
    let r = run(args);
    assert_eq!(
        r.status.code(),
        Some(1),
        "ringway {args:?} should fail:\n{}\n{}",
        r.stdout,
        r.stderr
    );
    r.stderr
}

/// The `ls` line of `name`, if it lists it.
fn ls_line(ls: &str, name: &str) -> Option<String> {
    ls.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(str::to_owned)
}

fn posix_exists(name: &str) -> bool {
    std::path::Path::new("/dev/shm").join(&name[1..]).exists()
}

fn me() -> String {
    std::process::id().to_string()
}

fn ls_and_stat_show_a_live_spsc_channel() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("live");
    // 500 messages of 100 bytes (records of up to 168 bytes, the payload starting on a
    // line) make a 128 KiB ring.
    let opts = ChannelOptions::new().capacity(500).max_message(100);
    let mut tx = ByteSender::create(&name, &opts)?;
    let rx = ByteReceiver::open(&name, &opts)?;
    for _ in 0..3 {
        tx.send(&[7u8; 100])?;
    }

    let ls = ok(&["ls"]);
    let line = ls_line(&ls, &name).ok_or_else(|| format!("ls does not list {name}:\n{ls}"))?;
    assert!(ls.starts_with("NAME"), "{ls}");
    for part in ["posix", "SPSC", "128 KiB", "bytes"] {
        assert!(line.contains(part), "{part:?} missing from {line:?}");
    }
    // Owner, mode and age columns.
    for column in ["OWNER", "MODE", "AGE"] {
        assert!(ls.lines().next().unwrap_or("").contains(column), "{ls}");
    }
    let owner = whoami();
    let words: Vec<&str> = line.split_whitespace().collect();
    let mode = words
        .iter()
        .position(|w| *w == "0600")
        .ok_or_else(|| format!("mode 0600: {line}"))?;
    assert_eq!(words[mode - 1], owner, "owner before mode: {line}");
    assert!(
        words[mode + 1].parse::<u64>().is_ok() && words[mode + 2] == "s",
        "an age in seconds after the mode: {line}"
    );
    // The same, for scripts.
    let json: serde_json::Value = serde_json::from_str(&ok(&["ls", "--json"]))?;
    let entry = json
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == name.as_str()))
        .ok_or_else(|| format!("ls --json lacks {name}: {json}"))?;
    assert_eq!(entry["owner"], owner.as_str(), "{entry}");
    assert_eq!(entry["mode"], "0600", "{entry}");
    assert_eq!(entry["kind"], "SPSC", "{entry}");
    assert_eq!(entry["capacity"], 131072, "{entry}");
    assert_eq!(entry["type"], "bytes, max_message 100", "{entry}");
    assert!(entry["age_s"].as_u64().is_some_and(|a| a < 3600), "{entry}");
    assert_eq!(entry["producers"][0]["pid"], std::process::id(), "{entry}");
    assert_eq!(entry["producers"][0]["alive"], true, "{entry}");
    // Producer and consumer: this process, alive.
    assert_eq!(
        line.matches(&format!("{} alive", me())).count(),
        2,
        "{line}"
    );

    let stat = ok(&["stat", &name]);
    for expected in [
        format!("segment        POSIX shm \"{name}\""),
        "valid          yes".to_owned(),
        "magic          0x00594157474e4952".to_owned(),
        format!("version        {}", ringway_ring::layout::VERSION),
        "kind           1 (SPSC byte ring)".to_owned(),
        "init           0x21594452 (ready)".to_owned(),
        "capacity       131072 data bytes (128 KiB)".to_owned(),
        "max_message    65528 bytes".to_owned(),
        "label          bytes".to_owned(),
        format!("creator        pid {} (alive)", me()),
        "users          2".to_owned(),
        // Three records of 100 bytes, each payload on a line: a gap of 64 bytes after the
        // first header (at 0), of 24 after the next two (at 168 and 296), published by the
        // producer.
        "tail           424".to_owned(),
    ] {
        assert!(stat.contains(&expected), "{expected:?} missing:\n{stat}");
    }
    let producer = stat
        .lines()
        .skip_while(|l| *l != "producers")
        .nth(1)
        .unwrap_or_default();
    assert!(
        producer.contains(&format!("pid {}", me())) && producer.contains("alive"),
        "{stat}"
    );
    drop((tx, rx));
    assert!(!posix_exists(&name), "the channel removes its name");
    Ok(())
}

fn ls_and_stat_show_mpmc_on_system_v() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let key = scope.sysv_key();
    let opts = ChannelOptions::new()
        .flavour(Flavour::Mpmc)
        .capacity(16)
        .max_message(64);
    let tx = ByteSender::create(Address::sysv(key), &opts)?;
    let shown = format!("sysv:{:#010x}", key as u32);

    let ls = ok(&["ls"]);
    let line = ls_line(&ls, &shown).ok_or_else(|| format!("ls does not list {shown}:\n{ls}"))?;
    for part in ["sysv", "MPMC", "16 x 64 B", "0 msgs", "bytes"] {
        assert!(line.contains(part), "{part:?} missing from {line:?}");
    }
    assert!(line.contains(&format!("{} alive", me())), "{line}");
    assert_eq!(
        line.split_whitespace().last(),
        Some("-"),
        "no consumer: {line}"
    );

    let by_name = ok(&["stat", &shown]);
    let by_flag = ok(&["stat", "--sysv", &key.to_string()]);
    assert!(
        by_name.contains("kind           2 (MPMC slot ring)"),
        "{by_name}"
    );
    assert!(by_name.contains("slot_size      64"), "{by_name}");
    assert!(
        by_name.contains("consumers      none registered"),
        "{by_name}"
    );
    // The same header, read twice (only the SysV naming differs).
    assert_eq!(
        by_name.lines().skip(1).collect::<Vec<_>>(),
        by_flag.lines().skip(1).collect::<Vec<_>>()
    );

    // rm by key refuses a segment in use; --force does IPC_RMID, and the segment stays,
    // keyless, while this process has it attached.
    let err = fails(&["rm", &shown]);
    assert!(
        err.contains("is in use") && err.contains("--force"),
        "{err}"
    );
    let out = ok(&["rm", "--force", &shown]);
    assert!(out.contains(&format!("removed {shown}")), "{out}");
    assert!(out.contains("is in use"), "{out}");
    let err = fails(&["stat", &shown]);
    assert!(err.contains("no such segment SysV shm key"), "{err}");
    let ls = ok(&["ls"]);
    assert!(ls_line(&ls, &shown).is_none(), "{ls}");
    assert!(
        ls.lines().any(|l| l.starts_with("shmid:")
            && l.contains("sysv (removed)")
            && l.contains(&format!("{} alive", me()))),
        "the removed segment is listed by its id while attached:\n{ls}"
    );
    drop(tx);
    Ok(())
}

fn stat_reads_a_file_backed_channel() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let path = scope.temp_path("ring");
    // 3 messages of 1000 bytes (records of up to 1064 bytes) make an 8 KiB ring.
    let opts = ChannelOptions::new().capacity(3).max_message(1000);
    let tx = ByteSender::create(Address::file(&path), &opts)?;
    let stat = ok(&["stat", &format!("file:{}", path.display())]);
    assert!(
        stat.contains(&format!("segment        file {path:?}")),
        "{stat}"
    );
    assert!(stat.contains("capacity       8192 data bytes"), "{stat}");
    drop(tx);
    Ok(())
}

/// Role: create a channel named by `NAME`, say so, and wait to be killed.
fn hold() -> i32 {
    let name = std::env::var("NAME").expect("NAME is set");
    let tx = ByteSender::create(&name, &ChannelOptions::new()).expect("create the channel");
    println!("ready");
    // Killed long before this; the bound only keeps a stray child from living forever.
    std::thread::sleep(Duration::from_secs(60));
    drop(tx);
    0
}

/// A channel named `name` whose only process was killed: returns that process's pid.
fn dead_segment(name: &str) -> Result<u32, Failed> {
    let mut child = spawn_role("hold", &[("NAME", name)]);
    let deadline = Instant::now() + LIMIT;
    while !child.output().0.contains("ready") {
        if Instant::now() > deadline {
            let (out, err) = child.output();
            return Err(format!("the holder did not get ready:\n{out}\n{err}").into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = child.pid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid)?),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    let status = child.wait_timeout(LIMIT)?;
    assert!(!status.success(), "killed: {status}");
    Ok(pid)
}

fn clean_removes_exactly_the_dead_segment() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let dead = scope.posix_name("dead");
    let live = scope.posix_name("live");
    let pid = dead_segment(&dead)?;
    let _tx = ByteSender::create(&live, &ChannelOptions::new())?;

    let ls = ok(&["ls"]);
    let line = ls_line(&ls, &dead).ok_or_else(|| format!("ls lacks {dead}:\n{ls}"))?;
    assert!(line.contains(&format!("{pid} dead")), "{line}");
    let stat = ok(&["stat", &dead]);
    assert!(
        stat.contains(&format!("creator        pid {pid} (dead)")),
        "{stat}"
    );

    let dry = ok(&["clean", "--dry-run"]);
    assert!(
        dry.lines()
            .any(|l| l.starts_with(&format!("would remove {dead} (SPSC, creator {pid} dead"))),
        "{dry}"
    );
    assert!(!dry.contains(&live), "a live segment is kept:\n{dry}");
    assert!(
        posix_exists(&dead) && posix_exists(&live),
        "dry run removes nothing"
    );

    let cleaned = ok(&["clean", "--prefix", scope.prefix()]);
    assert!(
        cleaned.contains(&format!("removed {dead} (SPSC")),
        "{cleaned}"
    );
    assert!(
        cleaned.contains("1 segment(s) removed, 1 in use kept"),
        "{cleaned}"
    );
    assert!(!posix_exists(&dead), "the dead segment is gone");
    assert!(posix_exists(&live), "the live one stays");
    assert!(ls_line(&ok(&["ls"]), &dead).is_none());
    Ok(())
}

fn rm_refuses_a_segment_in_use_unless_forced() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("rm");
    let mut tx = ByteSender::create(&name, &ChannelOptions::new())?;
    let mut rx = ByteReceiver::open(&name, &ChannelOptions::new())?;
    let err = fails(&["rm", &name]);
    assert!(
        err.contains(&format!("{name} is in use (creator {} alive", me()))
            && err.contains("--force"),
        "{err}"
    );
    assert!(posix_exists(&name), "refused: still there");
    let out = ok(&["rm", "--force", &name]);
    assert!(out.contains(&format!("removed {name}")), "{out}");
    assert!(
        out.contains(&format!("note: {name} is in use (creator {} alive", me())),
        "{out}"
    );
    assert!(!posix_exists(&name));
    // The endpoints keep their mapping and work; only the name is gone.
    tx.send(b"still here")?;
    let mut got = Vec::new();
    rx.recv(&mut got)?;
    assert_eq!(got, b"still here");
    let err = fails(&["stat", &name]);
    assert!(err.contains("no such segment"), "{err}");
    drop((tx, rx));
    Ok(())
}

fn unknown_names_and_foreign_objects_are_refused() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let missing = scope.posix_name("missing");
    for cmd in ["stat", "rm"] {
        let err = fails(&[cmd, &missing]);
        assert!(
            err.contains(&format!(
                "no such segment POSIX shm \"{missing}\": ringway ls lists them"
            )),
            "{err}"
        );
    }
    let err = fails(&["stat", "--sysv", "0x7eadbeef"]);
    assert!(
        err.contains("no such segment SysV shm key 0x7eadbeef"),
        "{err}"
    );

    let foreign = scope.posix_name("foreign");
    let region = Region::create(
        &Backing::posix(&foreign),
        &RegionOptions::new().size(4096).persist(true),
    )?;
    let magic = *b"NOTARING";
    // SAFETY: the mapping is 4096 writable bytes, private to this test process (the name is
    // unique to it), and no reference to it exists.
    unsafe { std::ptr::copy_nonoverlapping(magic.as_ptr(), region.as_ptr(), magic.len()) };
    let expected = format!(
        "POSIX shm \"{foreign}\" is not a ringway segment (magic {:#018x}",
        u64::from_ne_bytes(magic)
    );
    let err = fails(&["stat", &foreign]);
    assert!(err.contains(&expected), "{err}");
    let err = fails(&["rm", &foreign]);
    assert!(err.contains(&expected) && err.contains("--force"), "{err}");
    assert!(posix_exists(&foreign), "rm refused");
    assert!(ls_line(&ok(&["ls"]), &foreign).is_none(), "ls skips it");
    let out = ok(&["rm", "--force", &foreign]);
    assert!(out.contains(&format!("removed {foreign}")), "{out}");
    assert!(!posix_exists(&foreign));
    drop(region);
    Ok(())
}

/// The user running this test, as `ls` names owners.
fn whoami() -> String {
    let uid = nix::unistd::geteuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

/// `nobody`, to look at this user's segments as another user would.
const NOBODY: u32 = 65534;

/// Runs `ringway args...` as `nobody`.
fn as_nobody(args: &[&str]) -> Result<Run, Failed> {
    let out = Command::new(env!("CARGO_BIN_EXE_ringway"))
        .args(args)
        .current_dir("/")
        .uid(NOBODY)
        .gid(NOBODY)
        .output()?;
    Ok(Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Another user's `ls` says in one line how many segments it could not read, not one line
/// each.
fn ls_counts_unreadable_segments_in_one_line() -> Result<(), Failed> {
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: needs root to run ringway as another user");
        return Ok(());
    }
    let scope = LeakScope::new();
    let names: Vec<String> = (0..3)
        .map(|i| scope.posix_name(&format!("mine{i}")))
        .collect();
    let _txs = names
        .iter()
        .map(|n| ByteSender::create(n, &ChannelOptions::new()))
        .collect::<Result<Vec<_>, _>>()?;
    let r = as_nobody(&["ls"])?;
    assert!(
        r.status.success(),
        "{}
{}",
        r.stdout,
        r.stderr
    );
    let notes: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("could not be read"))
        .collect();
    assert_eq!(notes.len(), 1, "{}", r.stderr);
    let count: usize = notes[0]
        .trim_start_matches("note: ")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("a count first: {}", notes[0]))?;
    assert!(count >= 3, "{}", notes[0]);
    for name in &names {
        assert!(
            !r.stderr.contains(name.as_str()),
            "one line, not one per segment: {}",
            r.stderr
        );
        assert!(!r.stdout.contains(name.as_str()), "{}", r.stdout);
    }
    Ok(())
}

/// `clean` without `--prefix` leaves other users' segments alone unless `--all-users`.
fn clean_leaves_other_users_segments_alone() -> Result<(), Failed> {
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: needs root to give a segment to another user");
        return Ok(());
    }
    let scope = LeakScope::new();
    let theirs = scope.posix_name("theirs");
    dead_segment(&theirs)?;
    std::os::unix::fs::chown(
        std::path::Path::new("/dev/shm").join(&theirs[1..]),
        Some(NOBODY),
        Some(NOBODY),
    )?;
    let dry = ok(&["clean", "--dry-run"]);
    assert!(
        !dry.contains(&theirs),
        "another user's: not looked at:
{dry}"
    );
    assert!(
        dry.contains("other users' segment(s) not looked at"),
        "{dry}"
    );
    let all = ok(&["clean", "--dry-run", "--all-users"]);
    assert!(all.contains(&format!("would remove {theirs}")), "{all}");
    assert!(posix_exists(&theirs), "dry runs remove nothing");
    let cleaned = ok(&["clean", "--prefix", scope.prefix()]);
    assert!(cleaned.contains(&format!("removed {theirs}")), "{cleaned}");
    Ok(())
}

fn bad_names_are_usage_errors() -> Result<(), Failed> {
    for (args, says) in [
        (&["stat", "/a/b"][..], "one leading '/'"),
        (&["rm", "sysv:0"][..], "IPC_PRIVATE"),
        (&["stat"][..], "required"),
        (&["stat", "/x", "--sysv", "5"][..], "cannot be used with"),
    ] {
        let r = run(args);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
    Ok(())
}

/// A service with two workers (one bound, one joined, both in this process): `ls` has a
/// line for it, `ls --json` a row with `kind: "service"` and both workers alive, and `stat`
/// shows the worker table.
fn ls_and_stat_show_a_service_and_its_workers() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("svc");
    let opts = ringway_channel::ServiceOptions::new().sessions(3);
    let first = ringway_channel::ByteServer::bind(name.as_str(), &opts)?;
    let second = ringway_channel::ByteServer::join(name.as_str(), &opts)?;
    let ls = ok(&["ls"]);
    let line = ls
        .lines()
        .find(|l| l.starts_with(name.as_str()))
        .ok_or_else(|| format!("ls does not list {name}:\n{ls}"))?;
    for part in [
        "service",
        "3 sessions",
        &format!("worker pid {0}, {0} alive", me()),
    ] {
        assert!(line.contains(part), "{part:?} missing from {line:?}");
    }
    let json: serde_json::Value = serde_json::from_str(&ok(&["ls", "--json"]))?;
    let entry = json
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == name.as_str()))
        .ok_or_else(|| format!("ls --json lacks {name}: {json}"))?;
    assert_eq!(entry["kind"], "service", "{entry}");
    assert_eq!(entry["sessions"], 3, "{entry}");
    assert_eq!(entry["alive"], true, "{entry}");
    assert_eq!(entry["mode"], "0600", "{entry}");
    assert_eq!(entry["max_request"], 4096, "{entry}");
    let workers = entry["workers"].as_array().expect("a workers array");
    assert_eq!(workers.len(), 2, "{entry}");
    for (index, w) in workers.iter().enumerate() {
        assert_eq!(w["index"], index, "{entry}");
        assert_eq!(w["pid"], std::process::id(), "{entry}");
        assert_eq!(w["alive"], true, "{entry}");
    }
    let stat = ok(&["stat", &name]);
    for expected in [
        format!("worker 0       pid {} (alive)", me()),
        format!("worker 1       pid {} (alive)", me()),
        "session 2      free".to_owned(),
    ] {
        assert!(stat.contains(&expected), "{expected:?} missing:\n{stat}");
    }
    drop(first);
    assert!(posix_exists(&name), "a worker remains: the name stays");
    drop(second);
    assert!(!posix_exists(&name), "the last worker removed the name");
    Ok(())
}

/// A broadcast channel made by `ringway-channel`: `ls` shows it as `BCAST` with its
/// publisher and subscribers, `stat` names the kind, the policy and the history.
fn ls_and_stat_show_a_broadcast_channel() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("bcast");
    let opts = ChannelOptions::new()
        .capacity(64)
        .policy(ringway_channel::Policy::Overwrite)
        .history(8);
    let mut tx = ringway_channel::Publisher::<u64>::create(&name, &opts)?;
    let _a = ringway_channel::Subscriber::<u64>::open(&name, &opts)?;
    let _b = ringway_channel::Subscriber::<u64>::open(&name, &opts)?;
    tx.send(1)?;
    let ls = ok(&["ls"]);
    let line = ls_line(&ls, &name).ok_or_else(|| format!("ls does not list {name}:\n{ls}"))?;
    assert!(
        line.contains("BCAST") && line.contains("64 x 8 B"),
        "{line}"
    );
    assert_eq!(
        line.matches(&format!("{} alive", me())).count(),
        3,
        "{line}"
    );
    let stat = ok(&["stat", &name]);
    for expected in [
        "kind           3 (broadcast slot ring)",
        "history        8 msgs",
        "overwrite",
    ] {
        assert!(
            stat.contains(expected),
            "{expected:?} missing from:\n{stat}"
        );
    }
    Ok(())
}

fn main() {
    harness::main(
        vec![
            Trial::test(
                "ls_and_stat_show_a_service_and_its_workers",
                ls_and_stat_show_a_service_and_its_workers,
            ),
            Trial::test(
                "ls_and_stat_show_a_broadcast_channel",
                ls_and_stat_show_a_broadcast_channel,
            ),
            Trial::test(
                "ls_and_stat_show_a_live_spsc_channel",
                ls_and_stat_show_a_live_spsc_channel,
            ),
            Trial::test(
                "ls_and_stat_show_mpmc_on_system_v",
                ls_and_stat_show_mpmc_on_system_v,
            ),
            Trial::test(
                "stat_reads_a_file_backed_channel",
                stat_reads_a_file_backed_channel,
            ),
            Trial::test(
                "clean_removes_exactly_the_dead_segment",
                clean_removes_exactly_the_dead_segment,
            ),
            Trial::test(
                "rm_refuses_a_segment_in_use_unless_forced",
                rm_refuses_a_segment_in_use_unless_forced,
            ),
            Trial::test(
                "ls_counts_unreadable_segments_in_one_line",
                ls_counts_unreadable_segments_in_one_line,
            ),
            Trial::test(
                "clean_leaves_other_users_segments_alone",
                clean_leaves_other_users_segments_alone,
            ),
            Trial::test(
                "unknown_names_and_foreign_objects_are_refused",
                unknown_names_and_foreign_objects_are_refused,
            ),
            Trial::test("bad_names_are_usage_errors", bad_names_are_usage_errors),
        ],
        &[("hold", hold)],
    )
}
