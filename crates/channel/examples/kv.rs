//! A small key-value service: one server process, eight client processes, each with its own
//! session (a request ring and a reply ring) handed out by the rendezvous segment under the
//! service's name.
//!
//! ```text
//! cargo run -p ringway-channel --example kv                # the demo: a server and 8 clients
//! cargo run -p ringway-channel --example kv -- demo --workers 3   # 3 worker processes
//! cargo run -p ringway-channel --example kv -- server      # a server; Ctrl-C stops it
//! cargo run -p ringway-channel --example kv -- worker      # one more worker of a running server
//! cargo run -p ringway-channel --example kv -- client 3    # client 3: puts, gets, deletes
//! ```
//!
//! What it shows:
//! - `Server::bind` and `Client::connect` by name, typed requests and replies;
//! - one server thread serving every client (`serve` with a closure), sleeping on the
//!   service's doorbell when all are idle;
//! - each reply reaches the client that asked, and only it: every client checks every
//!   answer against what it put;
//! - a client that finds the server gone (`Disconnected`) reconnects to the next one;
//! - Ctrl-C raises an `Interrupt` that ends `serve`; dropping the server removes the name;
//! - `--workers N`: the server process binds, N - 1 worker processes `join`, and each
//!   serves the sessions it granted; the name goes with the last worker. Each worker holds
//!   its own map, which is right here only because a client keeps its session (and so its
//!   worker) for its whole run and touches only its own keys: a real service with workers
//!   shares its state (in shared memory, or a store behind the workers) or keeps it per
//!   client.

use std::collections::BTreeMap;
use std::process::{Command, ExitCode};
use std::sync::OnceLock;
use std::time::Duration;

use ringway_channel::{CallError, Client, Interrupt, Message, Server, ServiceOptions};

const NAME: &str = "/ringway-example-kv";
const CLIENTS: u64 = 8;
const KEYS: u64 = 500;

const GET: u32 = 1;
const PUT: u32 = 2;
const DELETE: u32 = 3;

/// A request: an operation on a key.
#[derive(Clone, Copy, Debug, Message)]
#[repr(C)]
struct Op {
    op: u32,
    _pad: u32,
    key: u64,
    value: u64,
}

/// The answer: whether the key was there, and its value (before a put or delete).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Message)]
#[repr(C)]
struct Answer {
    found: u32,
    _pad: u32,
    value: u64,
}

fn options() -> ServiceOptions {
    ServiceOptions::new()
        .sessions(CLIENTS as u32)
        .in_flight(4)
        .liveness_interval(Duration::from_millis(20))
}

static STOP: OnceLock<Interrupt> = OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    // Async-signal-safe: an atomic load and `Interrupt::interrupt` (a store and a futex wake).
    if let Some(stop) = STOP.get() {
        stop.interrupt();
    }
}

fn install_signal_handlers() -> Interrupt {
    let stop = STOP.get_or_init(Interrupt::new).clone();
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_signal` is async-signal-safe (see above); the sigaction struct is fully
        // initialised (zeroed, then the handler and an empty mask).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
    stop
}

/// Serves until interrupted (as the binder, or as one more worker with `join`); returns how
/// many operations it answered.
fn serve(stop: Interrupt, join: bool) -> Result<u64, Box<dyn std::error::Error>> {
    let opts = options().interrupt(stop);
    let mut server = if join {
        Server::<Op, Answer>::join(NAME, &opts)?
    } else {
        Server::<Op, Answer>::bind(NAME, &opts)?
    };
    if join {
        // The demo waits for this line before it starts the clients.
        println!("worker {} joined", server.worker());
    }
    let mut store = BTreeMap::<u64, u64>::new();
    let mut answered = 0u64;
    server.serve(|op| {
        answered += 1;
        let before = match op.op {
            PUT => store.insert(op.key, op.value),
            DELETE => store.remove(&op.key),
            _ => store.get(&op.key).copied(),
        };
        Answer {
            found: u32::from(before.is_some()),
            _pad: 0,
            value: before.unwrap_or(0),
        }
    })?;
    Ok(answered)
}

fn call(
    client: &mut Client<Op, Answer>,
    op: u32,
    key: u64,
    value: u64,
) -> Result<Answer, Box<dyn std::error::Error>> {
    let request = Op {
        op,
        _pad: 0,
        key,
        value,
    };
    loop {
        match client.call_timeout(request, Duration::from_secs(10)) {
            Ok(answer) => return Ok(answer),
            // The server restarted: reconnect and ask again (the old one may have done it).
            Err(CallError::Disconnected { .. }) => client.reconnect()?,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Client `id`: puts its keys, reads each back, deletes them, and checks every answer.
fn client(id: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut client = Client::<Op, Answer>::connect(NAME, &options())?;
    let key = |k: u64| (id << 32) | k;
    let value = |k: u64| k * 1000 + id;
    for k in 0..KEYS {
        call(&mut client, PUT, key(k), value(k))?;
    }
    for k in 0..KEYS {
        let got = call(&mut client, GET, key(k), 0)?;
        if got.found != 1 || got.value != value(k) {
            return Err(format!("client {id}: key {k}: got {got:?}, put {}", value(k)).into());
        }
    }
    for k in 0..KEYS {
        let got = call(&mut client, DELETE, key(k), 0)?;
        if got.value != value(k) {
            return Err(format!("client {id}: delete {k}: got {got:?}").into());
        }
    }
    Ok(())
}

fn demo(workers: u32) -> Result<(), Box<dyn std::error::Error>> {
    let stop = install_signal_handlers();
    let server_stop = stop.clone();
    let server = std::thread::spawn(move || serve(server_stop, false).map_err(|e| e.to_string()));
    let exe = std::env::current_exe()?;
    let mut joined = Vec::new();
    for _ in 1..workers.max(1) {
        let mut child = Command::new(&exe)
            .arg("worker")
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().expect("piped")),
            &mut line,
        )?;
        print!("{line}");
        joined.push(child);
    }
    let children: Vec<_> = (0..CLIENTS)
        .map(|id| Command::new(&exe).args(["client", &id.to_string()]).spawn())
        .collect::<Result<_, _>>()?;
    let mut failed = 0;
    for mut child in children {
        if !child.wait()?.success() {
            failed += 1;
        }
    }
    for mut worker in joined {
        // SIGTERM: the worker's Ctrl-C handling ends its `serve`.
        let pid = i32::try_from(worker.id())?;
        // SAFETY: kill has no memory-safety preconditions; the pid is our unreaped child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let mut out = String::new();
        std::io::Read::read_to_string(worker.stdout.as_mut().expect("piped"), &mut out)?;
        print!("{out}");
        if !worker.wait()?.success() {
            failed += 1;
        }
    }
    stop.interrupt(); // what Ctrl-C does
    let answered = server.join().expect("server thread")?;
    println!(
        "{CLIENTS} client processes, {failed} failed; {answered} operations answered by the \
         binding process, each to \
         the client that asked; {NAME} removed: {}",
        !std::path::Path::new("/dev/shm").join(&NAME[1..]).exists()
    );
    if failed > 0 {
        return Err(format!("{failed} clients failed").into());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None | Some("demo") => {
            let workers = match args.get(1..3) {
                Some([flag, n]) if flag == "--workers" => n.parse().unwrap_or(1),
                _ => 1,
            };
            demo(workers)
        }
        Some("server") => {
            let stop = install_signal_handlers();
            println!("serving {NAME}; Ctrl-C to stop");
            serve(stop, false).map(|n| println!("{n} operations answered"))
        }
        Some("worker") => {
            let stop = install_signal_handlers();
            serve(stop, true).map(|n| println!("a worker answered {n} operations"))
        }
        Some("client") => {
            let id = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            client(id)
        }
        Some(other) => Err(format!(
            "unknown mode {other:?}: demo [--workers N], server, worker or client"
        )
        .into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kv: {e}");
            ExitCode::FAILURE
        }
    }
}
