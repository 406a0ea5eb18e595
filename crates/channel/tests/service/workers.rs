//! Worker processes sharing one service: the first binds, the others join; each serves the
//! sessions it granted. Every request answered exactly once with 3 workers and 8 clients; a
//! worker killed with SIGKILL (its clients see `Disconnected` and reconnect to a live worker,
//! the others' clients see nothing); every worker killed, then a new bind takes the name over;
//! the last worker to leave removes the name; joins that do not fit are refused clearly.

use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use ringway_channel::{
    ByteServer, CallError, Client, Interrupt, Server, ServiceError, ServiceOptions,
};
use ringway_testkit::{Child, LeakScope, spawn_role};

use super::{
    Answer, Ask, DETECTION_BOUND, TIMEOUT, append, env, f, opts, record, records, wait_for,
};

pub(super) fn tests() -> Vec<Trial> {
    vec![
        Trial::test(
            "workers_three_workers_eight_clients_every_request_answered_once",
            three_workers_eight_clients_every_request_answered_once,
        ),
        Trial::test(
            "workers_a_killed_worker_s_clients_reconnect_to_a_live_one",
            a_killed_worker_s_clients_reconnect_to_a_live_one,
        ),
        Trial::test(
            "workers_all_killed_then_a_new_bind_takes_over",
            all_killed_then_a_new_bind_takes_over,
        ),
        Trial::test(
            "workers_joins_that_do_not_fit_are_refused",
            joins_that_do_not_fit_are_refused,
        ),
        Trial::test(
            "workers_a_hostile_client_scribbling_header_and_claim_words",
            a_hostile_client_scribbling_header_and_claim_words,
        ),
    ]
}

fn worker_opts(sessions: u32) -> ServiceOptions {
    opts().sessions(sessions)
}

/// Role `worker`: binds (`MODE=bind`) or joins `ADDR` with `SESSIONS` sessions, prints
/// `worker N` (its entry) and `ready`, and serves, appending `(client, seq)` to `SERVED`
/// before each reply, until the file `STOP` exists.
pub(super) fn role_worker() -> i32 {
    let stop = Interrupt::new();
    let stop_path = env("STOP");
    let raise = stop.clone();
    std::thread::spawn(move || {
        while !std::path::Path::new(&stop_path).exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
        raise.interrupt();
    });
    let sessions: u32 = env("SESSIONS").parse().unwrap();
    let o = worker_opts(sessions).interrupt(stop);
    let address = env("ADDR");
    let server = if env("MODE") == "bind" {
        Server::<Ask, Answer>::bind(address.as_str(), &o)
    } else {
        Server::<Ask, Answer>::join(address.as_str(), &o)
    };
    let mut server = match server {
        Ok(server) => server,
        Err(e) => {
            eprintln!("worker: {e}");
            return 1;
        }
    };
    let mut served = append(&env("SERVED"));
    println!("worker {}", server.worker());
    println!("ready");
    let result = server.serve(|ask| {
        record(&mut served, ask.client, ask.seq);
        Answer {
            client: ask.client,
            seq: ask.seq,
            y: f(&ask),
        }
    });
    i32::from(result.is_err())
}

/// A worker process and its entry in the worker table.
struct Worker {
    child: Child,
    index: u32,
}

struct Service {
    name: String,
    served: String,
    stop: String,
    sessions: u32,
}

impl Service {
    fn new(scope: &LeakScope, tag: &str, sessions: u32) -> Service {
        let path = |what: &str| {
            scope
                .temp_path(&format!("{tag}-{what}"))
                .to_str()
                .unwrap()
                .to_owned()
        };
        Service {
            name: scope.posix_name(tag),
            served: path("served"),
            stop: path("stop"),
            sessions,
        }
    }

    fn spawn(&self, mode: &str) -> Worker {
        let sessions = self.sessions.to_string();
        let env = [
            ("ADDR", self.name.as_str()),
            ("SERVED", self.served.as_str()),
            ("STOP", self.stop.as_str()),
            ("SESSIONS", sessions.as_str()),
            ("MODE", mode),
        ];
        let mut child = spawn_role("worker", &env);
        wait_for(&mut child, "ready");
        let out = child.output().0;
        let index = out
            .lines()
            .find_map(|l| l.strip_prefix("worker "))
            .and_then(|n| n.parse().ok())
            .expect("a worker says its entry");
        Worker { child, index }
    }

    fn client(&self) -> Client<Ask, Answer> {
        Client::connect(self.name.as_str(), &opts()).expect("connect")
    }

    fn remove_files(&self) {
        let _ = std::fs::remove_file(&self.served);
        let _ = std::fs::remove_file(&self.stop);
    }
}

fn call(client: &mut Client<Ask, Answer>, id: u64, seq: u64) -> Result<(), CallError> {
    let ask = Ask {
        client: id,
        seq,
        x: seq ^ id,
    };
    let answer = client.call_timeout(ask, TIMEOUT)?;
    assert_eq!(
        answer,
        Answer {
            client: id,
            seq,
            y: f(&ask)
        }
    );
    Ok(())
}

fn signal(worker: &Worker, sig: i32) {
    let pid = i32::try_from(worker.child.pid()).unwrap();
    // SAFETY: kill has no memory-safety preconditions; the pid is a child this test spawned
    // and has not reaped (the `Child` reaps it on drop).
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

/// Stops a worker and waits until the kernel says it is stopped (a signal is delivered
/// asynchronously: it may still run a moment on another core).
fn pause(worker: &Worker) {
    signal(worker, libc::SIGSTOP);
    let stat = format!("/proc/{}/stat", worker.child.pid());
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&stat).unwrap_or_default();
        // The state follows the command name, which is in parentheses.
        let state = text
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        if state == Some('T') {
            return;
        }
        assert!(start.elapsed() < TIMEOUT, "worker never stopped: {text}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn shm_exists(name: &str) -> bool {
    std::path::Path::new(&format!("/dev/shm{name}")).exists()
}

/// The test: one bound worker and two joined ones, 8 client processes making 300
/// calls each. Every request is answered, correctly (each client checks), and served exactly
/// once by one of the workers; the workers then leave and the last one removes the name.
fn three_workers_eight_clients_every_request_answered_once() -> Result<(), Failed> {
    const CLIENTS: u64 = 8;
    const COUNT: u64 = 300;
    let scope = LeakScope::new();
    let service = Service::new(&scope, "svc-workers", 8);
    let answered = scope.temp_path("workers-answered");
    let answered_s = answered.to_str().unwrap().to_owned();
    let workers: Vec<Worker> = ["bind", "join", "join"]
        .iter()
        .map(|mode| service.spawn(mode))
        .collect();
    let mut indices: Vec<u32> = workers.iter().map(|w| w.index).collect();
    indices.sort_unstable();
    indices.dedup();
    assert_eq!(indices.len(), 3, "three entries in the worker table");
    let clients: Vec<Child> = (1..=CLIENTS)
        .map(|id| {
            let (id, count) = (id.to_string(), COUNT.to_string());
            let env = [
                ("ADDR", service.name.as_str()),
                ("ANSWERED", answered_s.as_str()),
                ("ID", id.as_str()),
                ("COUNT", count.as_str()),
            ];
            spawn_role("client", &env)
        })
        .collect();
    for client in clients {
        client.expect_success(TIMEOUT);
    }
    let region = ringway_region::Region::open(
        &ringway_region::Backing::posix(service.name.as_str()),
        &ringway_region::RegionOptions::new().read_only(true),
    )?;
    let info = ringway_channel::inspect_service(&region).unwrap()?;
    drop(region);
    let grants: Vec<(u32, u64)> = info.workers.iter().map(|w| (w.index, w.grants)).collect();
    assert_eq!(grants.len(), 3, "{info:?}");
    println!("sessions granted per worker (entry, grants): {grants:?}");
    // Every worker leaves through its interrupt; the last one removes the name.
    std::fs::write(&service.stop, b"")?;
    for worker in workers {
        worker.child.expect_success(TIMEOUT);
    }
    assert!(
        !shm_exists(&service.name),
        "the last worker removes the name"
    );
    let served = records(std::path::Path::new(&service.served));
    let answered = records(&answered);
    let mut seen = std::collections::BTreeSet::new();
    for s in &served {
        assert!(seen.insert(*s), "{s:?} was served twice");
    }
    let mut unique = std::collections::BTreeSet::new();
    for a in &answered {
        assert!(seen.contains(a), "{a:?} was answered but never served");
        assert!(unique.insert(*a), "{a:?} was answered twice");
    }
    for id in 1..=CLIENTS {
        for seq in 0..COUNT {
            assert!(
                unique.contains(&(id, seq)),
                "({id}, {seq}) was never answered"
            );
        }
    }
    assert_eq!(served.len(), answered.len());
    service.remove_files();
    std::fs::remove_file(&answered_s)?;
    Ok(())
}

/// Three workers; two clients pinned to each (the other workers are stopped with SIGSTOP
/// while they connect, so the one left running grants them). The middle worker is killed
/// with SIGKILL: its clients see `Disconnected`, reconnect, and are served by a live worker
/// once their old sessions (which a live worker adopts) are free again; the other clients'
/// calls never fail.
fn a_killed_worker_s_clients_reconnect_to_a_live_one() -> Result<(), Failed> {
    let scope = LeakScope::new();
    // As many sessions as clients: a reconnect needs a slot of the dead worker back.
    let service = Service::new(&scope, "svc-worker-kill", 6);
    let mut clients = Vec::new();
    let mut workers: Vec<Worker> = Vec::new();
    for mode in ["bind", "join", "join"] {
        let worker = service.spawn(mode);
        for other in &workers {
            pause(other);
        }
        for _ in 0..2 {
            let client = service.client();
            assert_eq!(client.worker(), Some(worker.index), "only it was running");
            clients.push(client);
        }
        for other in &workers {
            signal(other, libc::SIGCONT);
        }
        workers.push(worker);
    }
    let mut seq = 0;
    for (id, client) in clients.iter_mut().enumerate() {
        call(client, id as u64, seq)?;
    }
    let victim = workers.remove(1);
    let dead = victim.index;
    drop(victim); // SIGKILL, reaped
    let killed = Instant::now();
    let mut reconnected = 0;
    while reconnected < 2 {
        assert!(
            killed.elapsed() < TIMEOUT,
            "the dead worker's clients never got through"
        );
        seq += 1;
        for (id, client) in clients.iter_mut().enumerate() {
            let theirs = client.worker() == Some(dead);
            match call(client, id as u64, seq) {
                Ok(()) => assert!(!theirs, "a dead worker answered"),
                Err(CallError::Disconnected { .. }) if theirs => {
                    client.reconnect()?;
                    let now = client.worker();
                    assert!(now.is_some() && now != Some(dead), "reconnected to {now:?}");
                    call(client, id as u64, seq)?;
                    reconnected += 1;
                }
                Err(e) => panic!("client {id} (worker {:?}): {e}", client.worker()),
            }
        }
    }
    println!(
        "the dead worker's clients were served again {} ms after the kill",
        killed.elapsed().as_millis()
    );
    for round in 0..20 {
        for (id, client) in clients.iter_mut().enumerate() {
            call(client, id as u64, 1000 + round)?;
        }
    }
    drop(clients);
    std::fs::write(&service.stop, b"")?;
    for worker in workers {
        worker.child.expect_success(TIMEOUT);
    }
    assert!(
        !shm_exists(&service.name),
        "the last worker removes the name"
    );
    service.remove_files();
    Ok(())
}

/// Every worker killed with SIGKILL: while one lives, the name is held (a bind is refused);
/// once all are dead a client sees `Disconnected`, a new bind takes the name over, and the
/// client reconnects to it. Nothing is left in `/dev/shm`.
fn all_killed_then_a_new_bind_takes_over() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let service = Service::new(&scope, "svc-workers-all", 4);
    let mut workers: Vec<Worker> = ["bind", "join", "join"]
        .iter()
        .map(|mode| service.spawn(mode))
        .collect();
    let mut client = service.client();
    call(&mut client, 1, 0)?;
    let epoch = client.epoch();
    // The binder dies first: the joined workers still hold the service.
    drop(workers.remove(0));
    let stop = Interrupt::new();
    let o = worker_opts(4).interrupt(stop.clone());
    match Server::<Ask, Answer>::bind(service.name.as_str(), &o) {
        Err(ServiceError::Channel(ringway_channel::Error::AlreadyExists { .. })) => {}
        other => panic!("a bind while two workers live: {other:?}"),
    }
    let mut seq = 1;
    // The client is served throughout (by a live worker, after a reconnect if it was the
    // binder's).
    loop {
        match call(&mut client, 1, seq) {
            Ok(()) => break,
            Err(CallError::Disconnected { .. }) => client.reconnect()?,
            Err(e) => panic!("{e}"),
        }
        seq += 1;
    }
    drop(workers); // SIGKILL the other two
    let killed = Instant::now();
    loop {
        seq += 1;
        match call(&mut client, 1, seq) {
            Ok(()) => {
                assert!(
                    killed.elapsed() < DETECTION_BOUND,
                    "served after every worker died"
                );
            }
            Err(CallError::Disconnected { .. }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let mut server = Server::<Ask, Answer>::bind(service.name.as_str(), &o)?;
    let serving = std::thread::spawn(move || {
        server.serve(|ask| Answer {
            client: ask.client,
            seq: ask.seq,
            y: f(&ask),
        })
    });
    client.reconnect()?;
    assert_ne!(client.epoch(), epoch, "a new service, a new epoch");
    call(&mut client, 1, seq + 1)?;
    drop(client);
    stop.interrupt();
    serving.join().unwrap()?;
    assert!(!shm_exists(&service.name));
    service.remove_files();
    Ok(())
}

/// A join with other options or types is refused, naming the cause; the table holds 8
/// workers and a ninth is refused; a worker leaving makes room; only the last one to leave
/// removes the name.
fn joins_that_do_not_fit_are_refused() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("svc-join-fit");
    let o = opts().sessions(2).max_request(64).max_reply(64);
    let first = ByteServer::bind(name.as_str(), &o)?;
    let err = ByteServer::join(name.as_str(), &o.clone().sessions(3)).unwrap_err();
    assert!(matches!(err, ServiceError::Incompatible { .. }), "{err:#?}");
    assert!(err.to_string().contains("bound with"), "{err}");
    let err = Server::<Ask, Answer>::join(name.as_str(), &o).unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::Channel(ringway_channel::Error::TypeMismatch { .. })
                | ServiceError::Incompatible { .. }
        ),
        "{err:#?}"
    );
    let mut more: Vec<ByteServer> = (0..7)
        .map(|_| ByteServer::join(name.as_str(), &o))
        .collect::<Result<_, _>>()?;
    let err = ByteServer::join(name.as_str(), &o).unwrap_err();
    assert!(
        matches!(err, ServiceError::TooManyWorkers { max: 8, .. }),
        "{err:#?}"
    );
    drop(more.pop());
    more.push(ByteServer::join(name.as_str(), &o)?);
    drop(first);
    assert!(shm_exists(&name), "workers remain: the name stays");
    drop(more);
    assert!(!shm_exists(&name), "the last worker removed the name");
    Ok(())
}

/// Two workers (threads here) and a client calling, while a hostile process writes random
/// values into the words every client can reach besides its own rings: the header's flags,
/// doorbell and sleepers count, the worker table, and every slot's `ctl` and `granted` word.
/// Neither worker panics or hangs (both stop within a bound when interrupted), every call
/// returns within its timeout, the name is never removed while the workers hold it, and once
/// the scribbling stops (the flags and the worker table put back) a new client is served
/// again. A process that can write the segment can forge any reply (guarantees.md,
/// *Isolation*), so answers garbled meanwhile are counted, not failed.
fn a_hostile_client_scribbling_header_and_claim_words() -> Result<(), Failed> {
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
    let scope = LeakScope::new();
    let name = scope.posix_name("svc-scribble");
    let stop = Interrupt::new();
    let o = opts().sessions(4).max_request(64).max_reply(64);
    let mut workers = Vec::new();
    for join in [false, true] {
        let wo = o.clone().interrupt(stop.clone());
        let mut server = if join {
            ByteServer::join(name.as_str(), &wo)?
        } else {
            ByteServer::bind(name.as_str(), &wo)?
        };
        workers.push(std::thread::spawn(move || {
            server.serve(|req, rep| rep.extend_from_slice(req))
        }));
    }
    let region = ringway_region::Region::open(
        &ringway_region::Backing::posix(name.as_str()),
        &ringway_region::RegionOptions::new(),
    )?;
    let info = ringway_channel::inspect_service(&region).unwrap()?;
    let stride = 128 + (info.ring_bytes.0 + info.ring_bytes.1) as usize;
    let word64 = |offset: usize| {
        // SAFETY: every offset used lies inside the mapping (the header, or a slot header of
        // a geometry inspect_service checked), 8-aligned, and is only accessed as an atomic:
        // this test plays a hostile process.
        unsafe { &*region.as_ptr().add(offset).cast::<AtomicU64>() }
    };
    let word32 = |offset: usize| {
        // SAFETY: as for `word64`, 4-aligned.
        unsafe { &*region.as_ptr().add(offset).cast::<AtomicU32>() }
    };
    let table: Vec<u64> = (0..32).map(|i| word64(256 + 8 * i).load(Relaxed)).collect();
    let quick = opts().open_timeout(Duration::from_millis(50));
    let mut client = ringway_channel::ByteClient::connect(name.as_str(), &o)?;
    let mut state = 0x0123_4567_89AB_CDEFu64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut answered, mut failed, mut garbled) = (0u32, 0u32, 0u32);
    let mut out = Vec::new();
    for round in 0..800u64 {
        for _ in 0..4 {
            let r = next();
            let value = match r % 4 {
                0 => 0,
                1 => u64::MAX,
                2 => r.rotate_left(29),
                _ => r & 0x0F00_00FF_0000_FFFF,
            };
            let slot = (r >> 8) as usize % 4;
            match (r >> 4) % 7 {
                0 => word32(20).store(value as u32, Relaxed),  // flags
                1 => word32(128).store(value as u32, Relaxed), // bell
                2 => word32(132).store(value as u32, Relaxed), // sleepers
                3 | 4 => word64(256 + 8 * ((r >> 12) as usize % 32)).store(value, Relaxed),
                5 => word64(512 + slot * stride).store(value, Relaxed), // ctl
                _ => word32(512 + slot * stride + 24).store(value as u32, Relaxed), // granted
            }
        }
        let msg = round.to_le_bytes();
        let started = Instant::now();
        match client.call_timeout(&msg, &mut out, Duration::from_secs(5)) {
            Ok(_) if out == msg => answered += 1,
            Ok(_) => garbled += 1,
            Err(_) => {
                failed += 1;
                if let Ok(again) = ringway_channel::ByteClient::connect(name.as_str(), &quick) {
                    client = again;
                }
            }
        }
        assert!(started.elapsed() < TIMEOUT, "a call hung");
        assert!(shm_exists(&name), "the name of a held service was removed");
    }
    // Put back what a hostile process can make every client refuse to use.
    word32(20).store(0, Relaxed);
    for (i, value) in table.iter().enumerate() {
        word64(256 + 8 * i).store(*value, Relaxed);
    }
    drop(client);
    let mut fresh = ringway_channel::ByteClient::connect(name.as_str(), &o)?;
    assert_eq!(fresh.call(b"after", &mut out)?, 5);
    drop(fresh);
    drop(region);
    println!(
        "during the scribbling: {answered} calls answered, {failed} failed, {garbled} garbled"
    );
    stop.interrupt();
    let start = Instant::now();
    for worker in workers {
        while !worker.is_finished() {
            assert!(
                start.elapsed() < TIMEOUT,
                "a worker hung after the interrupt"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        worker.join().expect("a worker panicked")?;
    }
    assert!(!shm_exists(&name), "the last worker removes the name");
    Ok(())
}
