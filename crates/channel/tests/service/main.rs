//! Request-response services across real processes: clients and servers killed with SIGKILL
//! at random, a dead client's session given back, a server restart, more clients than
//! sessions, and a client scribbling over its own rings; worker processes sharing a service
//! (`workers.rs`).

mod workers;

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};
use ringway_channel::{
    ByteClient, ByteServer, CallError, Client, Server, ServiceError, ServiceOptions,
};
use ringway_testkit::{LeakScope, harness, spawn_role};

const TIMEOUT: Duration = Duration::from_secs(60);
const INTERVAL: Duration = Duration::from_millis(20);
/// How long a dead party may go unnoticed here: the interval plus a loaded 2-core machine.
const DETECTION_BOUND: Duration = Duration::from_secs(10);

/// A request: who asks, its number, and an operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ringway_channel::Message)]
#[repr(C)]
struct Ask {
    client: u64,
    seq: u64,
    x: u64,
}

/// The reply: the request's identity echoed and the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ringway_channel::Message)]
#[repr(C)]
struct Answer {
    client: u64,
    seq: u64,
    y: u64,
}

fn f(ask: &Ask) -> u64 {
    ask.x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ask.client.rotate_left(17) ^ ask.seq
}

fn opts() -> ServiceOptions {
    ServiceOptions::new()
        .sessions(4)
        .in_flight(4)
        .liveness_interval(INTERVAL)
        .open_timeout(Duration::from_secs(30))
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("child: {key} not set"))
}

fn append(path: &str) -> std::fs::File {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .unwrap()
}

/// Fixed 16-byte records `(client, seq)`, appended with one `write` each.
fn record(file: &mut std::fs::File, client: u64, seq: u64) {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&client.to_le_bytes());
    bytes[8..].copy_from_slice(&seq.to_le_bytes());
    file.write_all(&bytes).unwrap();
}

fn records(path: &std::path::Path) -> Vec<(u64, u64)> {
    let mut bytes = Vec::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        file.read_to_end(&mut bytes).unwrap();
    }
    bytes
        .chunks_exact(16)
        .map(|r| {
            (
                u64::from_le_bytes(r[..8].try_into().unwrap()),
                u64::from_le_bytes(r[8..].try_into().unwrap()),
            )
        })
        .collect()
}

/// Role `server`: serves `ADDR`, appending `(client, seq)` to `SERVED` before each reply.
fn role_server() -> i32 {
    let mut served = append(&env("SERVED"));
    let mut server = match Server::<Ask, Answer>::bind(env("ADDR").as_str(), &opts()) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("server: {e}");
            return 1;
        }
    };
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

/// Role `client`: client `ID` makes `COUNT` calls (never retrying one), appending each
/// answered `(client, seq)` to `ANSWERED` after checking the answer; reconnects whenever the
/// server goes.
fn role_client() -> i32 {
    let id: u64 = env("ID").parse().unwrap();
    let count: u64 = env("COUNT").parse().unwrap();
    let mut answered = append(&env("ANSWERED"));
    let address = env("ADDR");
    let mut client = match Client::<Ask, Answer>::connect(address.as_str(), &opts()) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("client {id}: {e}");
            return 1;
        }
    };
    for seq in 0..count {
        let ask = Ask {
            client: id,
            seq,
            x: seq * 7 + id,
        };
        match client.call_timeout(ask, TIMEOUT) {
            Ok(answer) => {
                let expected = Answer {
                    client: id,
                    seq,
                    y: f(&ask),
                };
                if answer != expected {
                    eprintln!("client {id}: {answer:?} for {ask:?}, expected {expected:?}");
                    return 3;
                }
                record(&mut answered, id, seq);
            }
            Err(e) if e.is_disconnected() => {
                if let Err(e) = client.reconnect() {
                    eprintln!("client {id}: reconnect: {e}");
                    return 4;
                }
            }
            Err(e) => {
                eprintln!("client {id}: {e}");
                return 2;
            }
        }
    }
    0
}

/// Role `hold`: connects to `ADDR`, prints `connected`, and waits to be killed.
fn role_hold() -> i32 {
    let client = Client::<Ask, Answer>::connect(env("ADDR").as_str(), &opts());
    match client {
        Ok(_client) => {
            println!("connected");
            std::thread::sleep(TIMEOUT);
            0
        }
        Err(e) => {
            eprintln!("hold: {e}");
            1
        }
    }
}

/// Waits until `child` printed `word` on a line (it writes its stdout to a captured file).
fn wait_for(child: &mut ringway_testkit::Child, word: &str) {
    let start = Instant::now();
    while !child.output().0.lines().any(|l| l == word) {
        assert!(
            start.elapsed() < TIMEOUT,
            "child never said {word:?}: {:?}",
            child.output()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Binds and drops a server on `name`, taking over what killed processes left, so nothing
/// stays in `/dev/shm`.
fn clean(name: &str) {
    drop(ByteServer::bind(name, &opts()).expect("a name whose server died is taken over"));
}

/// The test: 6 clients and a server, killed with SIGKILL at random and restarted.
/// Every answered request was answered correctly (the client checks) and exactly once: it was
/// served once (no `(client, seq)` is served twice, across all server lifetimes), and every
/// answer a client recorded was served.
fn kill9_at_random_every_answer_is_served_exactly_once() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("svc-chaos");
    let served = scope.temp_path("served");
    let answered = scope.temp_path("answered");
    let (served_s, answered_s) = (
        served.to_str().unwrap().to_owned(),
        answered.to_str().unwrap().to_owned(),
    );
    let spawn_server = || {
        let mut s = spawn_role("server", &[("ADDR", &name), ("SERVED", &served_s)]);
        wait_for(&mut s, "ready");
        s
    };
    let mut next_id = 0u64;
    let mut spawn_client = |count: u64| {
        next_id += 1;
        let id = next_id.to_string();
        let count = count.to_string();
        let env = [
            ("ADDR", name.as_str()),
            ("ANSWERED", answered_s.as_str()),
            ("ID", id.as_str()),
            ("COUNT", count.as_str()),
        ];
        spawn_role("client", &env)
    };
    let mut server = spawn_server();
    let mut clients: Vec<_> = (0..6).map(|_| spawn_client(100_000)).collect();
    // A small deterministic generator: the same chaos on every run.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut rand = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let (mut client_kills, mut server_kills) = (0, 0);
    for _ in 0..24 {
        std::thread::sleep(Duration::from_millis(40 + rand(60)));
        if rand(4) == 0 {
            drop(server); // SIGKILL, reaped
            server_kills += 1;
            server = spawn_server();
        } else {
            let victim = rand(clients.len() as u64) as usize;
            clients[victim] = spawn_client(100_000); // the old one: SIGKILL, reaped
            client_kills += 1;
        }
    }
    // The last clients finish a short run against the last server.
    clients.clear();
    let finishing: Vec<_> = (0..3).map(|_| spawn_client(300)).collect();
    for client in finishing {
        client.expect_success(TIMEOUT);
    }
    drop(server);
    clean(&name);
    let served = records(&served);
    let answered = records(&answered);
    let mut seen = std::collections::BTreeSet::new();
    for s in &served {
        assert!(seen.insert(*s), "{s:?} was served twice");
    }
    for a in &answered {
        assert!(seen.contains(a), "{a:?} was answered but never served");
    }
    let unique: std::collections::BTreeSet<_> = answered.iter().collect();
    assert_eq!(unique.len(), answered.len(), "an answer was recorded twice");
    assert!(answered.len() >= 900, "only {} answers", answered.len());
    std::fs::remove_file(&served_s)?;
    std::fs::remove_file(&answered_s)?;
    println!(
        "{client_kills} client and {server_kills} server kills: {} served, {} answered",
        served.len(),
        answered.len()
    );
    Ok(())
}

/// A client killed with SIGKILL gives its session back: with one session, the next client
/// connects once the server has noticed.
fn a_dead_client_frees_its_session() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("svc-free");
    let stop = ringway_channel::Interrupt::new();
    let mut server =
        Server::<Ask, Answer>::bind(&name, &opts().sessions(1).interrupt(stop.clone()))?;
    let serving = std::thread::spawn(move || {
        server.serve(|ask| Answer {
            client: ask.client,
            seq: ask.seq,
            y: f(&ask),
        })
    });
    let mut holder = spawn_role("hold", &[("ADDR", &name)]);
    wait_for(&mut holder, "connected");
    let busy =
        Client::<Ask, Answer>::connect(&name, &opts().open_timeout(Duration::from_millis(100)));
    match busy {
        Err(ServiceError::NoSession { sessions: 1, .. }) => {}
        other => panic!("expected NoSession while the only session is held, got {other:?}"),
    }
    drop(holder); // SIGKILL
    let killed = Instant::now();
    let mut client = Client::<Ask, Answer>::connect(&name, &opts())?;
    let freed = killed.elapsed();
    assert!(
        freed < DETECTION_BOUND,
        "the session came back after {freed:?}"
    );
    let ask = Ask {
        client: 1,
        seq: 0,
        x: 5,
    };
    assert_eq!(client.call(ask)?.y, f(&ask));
    drop(client);
    stop.interrupt();
    serving.join().unwrap()?;
    println!("session freed {} ms after the kill", freed.as_millis());
    Ok(())
}

/// More clients than sessions: the extra one waits up to its open timeout, then gets an
/// error that says so and what to change; once a session is free it connects.
fn more_clients_than_sessions_get_a_clear_error() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("svc-full");
    let stop = ringway_channel::Interrupt::new();
    let mut server = ByteServer::bind(&name, &opts().sessions(2).interrupt(stop.clone()))?;
    let serving = std::thread::spawn(move || server.serve(|req, rep| rep.extend_from_slice(req)));
    let a = ByteClient::connect(&name, &opts())?;
    let mut b = ByteClient::connect(&name, &opts())?;
    let err = ByteClient::connect(&name, &opts().open_timeout(Duration::from_millis(150)))
        .expect_err("a third client of a two-session service");
    let text = err.to_string();
    assert!(
        matches!(err, ServiceError::NoSession { sessions: 2, .. }),
        "{err:#?}"
    );
    assert!(text.contains("ServiceOptions::sessions"), "{text}");
    drop(a);
    let mut c = ByteClient::connect(&name, &opts())?;
    let mut out = Vec::new();
    assert_eq!(c.call(b"c", &mut out)?, 1);
    assert_eq!(b.call(b"bb", &mut out)?, 2);
    assert_eq!(out, b"bb");
    drop((b, c));
    stop.interrupt();
    serving.join().unwrap()?;
    Ok(())
}

/// A server killed with SIGKILL: a client's call says `Disconnected`; after a new server
/// binds the name (taking it over), `reconnect` reaches it and calls are answered again.
fn a_restarted_server_is_disconnected_then_reconnected() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("svc-restart");
    let served = scope.temp_path("served");
    let served = served.to_str().unwrap();
    let mut server = spawn_role("server", &[("ADDR", &name), ("SERVED", served)]);
    wait_for(&mut server, "ready");
    let mut client = Client::<Ask, Answer>::connect(&name, &opts())?;
    let ask = Ask {
        client: 9,
        seq: 0,
        x: 1,
    };
    assert_eq!(client.call(ask)?.y, f(&ask));
    let epoch = client.epoch();
    drop(server); // SIGKILL
    let killed = Instant::now();
    let ask = Ask {
        client: 9,
        seq: 1,
        x: 2,
    };
    match client.call_timeout(ask, DETECTION_BOUND) {
        Err(CallError::Disconnected { .. }) => {}
        other => panic!("expected Disconnected after the server died, got {other:?}"),
    }
    println!(
        "server death seen after {} ms",
        killed.elapsed().as_millis()
    );
    let mut server = spawn_role("server", &[("ADDR", &name), ("SERVED", served)]);
    wait_for(&mut server, "ready");
    client.reconnect()?;
    assert_ne!(client.epoch(), epoch, "a new server, a new epoch");
    let ask = Ask {
        client: 9,
        seq: 2,
        x: 3,
    };
    assert_eq!(client.call(ask)?.y, f(&ask));
    drop(client);
    drop(server);
    clean(&name);
    let _ = std::fs::remove_file(served);
    Ok(())
}

/// A client that scribbles random values over its own session (its rings and its slot's
/// claim word) while another client calls: the server neither panics nor stops serving the
/// other client, and serves a new client in the scribbled slot once the scribbler is gone.
fn a_hostile_client_cannot_crash_the_server() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("svc-hostile");
    let stop = ringway_channel::Interrupt::new();
    let mut server = ByteServer::bind(&name, &opts().sessions(2).interrupt(stop.clone()))?;
    let serving = std::thread::spawn(move || server.serve(|req, rep| rep.extend_from_slice(req)));
    let mut good = ByteClient::connect(&name, &opts())?;
    let hostile = ByteClient::connect(&name, &opts())?;
    let slot = hostile.session().unwrap();
    let info = {
        let region = ringway_region::Region::open(
            &ringway_region::Backing::posix(name.as_str()),
            &ringway_region::RegionOptions::new(),
        )?;
        let info = ringway_channel::inspect_service(&region).unwrap()?;
        (region, info)
    };
    let (region, info) = info;
    let stride = 128 + (info.ring_bytes.0 + info.ring_bytes.1) as usize;
    let start = 512 + slot as usize * stride;
    let words = stride / 8;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut out = Vec::new();
    for round in 0..2000u64 {
        for _ in 0..16 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let word = (state >> 7) as usize % words;
            let value = match state % 4 {
                0 => 0,
                1 => u64::MAX,
                2 => state,
                _ => state & 0xFFFF,
            };
            // SAFETY: the word lies inside the mapping (the scribbled slot's bytes), 8-aligned,
            // and is written as an atomic: this test plays a hostile process.
            let target = unsafe {
                &*region
                    .as_ptr()
                    .add(start + word * 8)
                    .cast::<std::sync::atomic::AtomicU64>()
            };
            target.store(value, std::sync::atomic::Ordering::Relaxed);
        }
        let msg = round.to_le_bytes();
        assert_eq!(good.call_timeout(&msg, &mut out, TIMEOUT)?, 8);
        assert_eq!(out, msg);
    }
    drop(hostile);
    drop(region);
    // The scribbled slot comes back, with fresh rings: fill both sessions and call on each.
    let mut again = ByteClient::connect(&name, &opts())?;
    assert_eq!(again.call(b"fresh", &mut out)?, 5);
    assert_eq!(good.call(b"still", &mut out)?, 5);
    drop((good, again));
    stop.interrupt();
    serving.join().unwrap()?;
    Ok(())
}

fn main() {
    let mut tests = vec![
        Trial::test(
            "kill9_at_random_every_answer_is_served_exactly_once",
            kill9_at_random_every_answer_is_served_exactly_once,
        ),
        Trial::test(
            "a_dead_client_frees_its_session",
            a_dead_client_frees_its_session,
        ),
        Trial::test(
            "more_clients_than_sessions_get_a_clear_error",
            more_clients_than_sessions_get_a_clear_error,
        ),
        Trial::test(
            "a_restarted_server_is_disconnected_then_reconnected",
            a_restarted_server_is_disconnected_then_reconnected,
        ),
        Trial::test(
            "a_hostile_client_cannot_crash_the_server",
            a_hostile_client_cannot_crash_the_server,
        ),
    ];
    tests.extend(workers::tests());
    harness::main(
        tests,
        &[
            ("server", role_server as fn() -> i32),
            ("client", role_client),
            ("hold", role_hold),
            ("worker", workers::role_worker),
        ],
    );
}
