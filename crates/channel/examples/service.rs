//! A service that lives through its clients: one long-running server receives requests from
//! client processes that connect, crash (`kill -9`) and reconnect, over one named MPMC
//! channel, and shuts down cleanly on Ctrl-C or `SIGTERM`, leaving nothing in `/dev/shm`.
//!
//! ```text
//! cargo run -p ringway-channel --example service                 # a demo: server and 12 clients, 4 killed
//! cargo run -p ringway-channel --example service -- server       # a server; Ctrl-C stops it
//! cargo run -p ringway-channel --example service -- client 7 500 # client 7 sends 500 requests
//! ```
//!
//! What it shows:
//! - `create` takes over the name a crashed server left behind (`ChannelOptions::takeover`,
//!   on by default), so a restarted server starts without cleaning up first;
//! - a client that is killed loses only what it had not committed: every request whose
//!   `send` returned `Ok` reaches the server exactly once, in order per client; a request
//!   being written when the client died is skipped (counted by `Receiver::lost`);
//! - while no client is connected, `recv` says `Disconnected`; the server keeps serving and
//!   the next client that opens the channel is received from at once;
//! - a signal handler raises an [`Interrupt`], which wakes the blocked `recv` with
//!   `Interrupted`; the server drops its receiver, which removes the name.

use std::collections::BTreeMap;
use std::process::{Command, ExitCode};
use std::sync::OnceLock;
use std::time::Duration;

use ringway_channel::{ChannelOptions, Flavour, Interrupt, Receiver, RecvError, Sender, bytemuck};

const NAME: &str = "/ringway-example-service";

/// One request: who sent it and its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Request {
    client: u64,
    seq: u64,
}

fn options() -> ChannelOptions {
    ChannelOptions::new()
        .flavour(Flavour::Mpmc)
        .capacity(256)
        .max_endpoints(16, 1)
        .type_name("ringway-example-service::Request")
        .liveness_interval(Duration::from_millis(20))
}

/// The server's interrupt, reachable from the signal handler.
static STOP: OnceLock<Interrupt> = OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    // Async-signal-safe: an atomic load (the OnceLock is set before the handler is installed)
    // and `Interrupt::interrupt`, an atomic store and a futex wake.
    if let Some(stop) = STOP.get() {
        stop.interrupt();
    }
}

fn install_signal_handlers() {
    STOP.get_or_init(Interrupt::new);
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
}

/// Serves until interrupted; returns how many requests each client got through.
fn serve(stop: Interrupt) -> Result<BTreeMap<u64, u64>, Box<dyn std::error::Error>> {
    let mut rx = Receiver::<Request>::create(NAME, &options().interrupt(stop.clone()))?;
    let mut next: BTreeMap<u64, u64> = BTreeMap::new();
    loop {
        match rx.recv() {
            Ok(req) => {
                let expected = next.entry(req.client).or_insert(0);
                if req.seq != *expected {
                    return Err(format!(
                        "client {}: request {} after {} (lost or duplicated)",
                        req.client, req.seq, expected
                    )
                    .into());
                }
                *expected += 1;
            }
            // No client connected now: wait a little for the next one (interruptibly).
            Err(RecvError::Disconnected) => {
                if stop.sleep(Duration::from_millis(5)) {
                    break;
                }
            }
            Err(RecvError::Interrupted) => break,
            Err(e) => return Err(e.into()),
        }
    }
    eprintln!(
        "server: interrupted; {} slots skipped from clients killed mid-send",
        rx.lost()
    );
    Ok(next)
}

fn client(id: u64, count: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut tx = Sender::<Request>::open(NAME, &options().open_timeout(Duration::from_secs(10)))?;
    for seq in 0..count {
        tx.send_timeout(Request { client: id, seq }, Duration::from_secs(10))?;
    }
    Ok(())
}

fn demo() -> Result<(), Box<dyn std::error::Error>> {
    install_signal_handlers();
    let stop = STOP.get().expect("installed").clone();
    let server_stop = stop.clone();
    let server = std::thread::spawn(move || serve(server_stop).map_err(|e| e.to_string()));
    let exe = std::env::current_exe()?;
    let mut killed = 0;
    for id in 0..12u64 {
        let mut child = Command::new(&exe)
            .args(["client", &id.to_string(), "20000"])
            .spawn()?;
        if id % 3 == 1 {
            // Killed mid-stream: whatever it committed is delivered; the rest is not.
            std::thread::sleep(Duration::from_millis(5));
            child.kill()?;
            killed += 1;
        }
        child.wait()?;
    }
    // What a Ctrl-C would do.
    stop.interrupt();
    let got = server.join().expect("server thread")?;
    for (client, n) in &got {
        println!("client {client}: {n} requests received, in order, none twice");
    }
    println!(
        "{} clients, {killed} killed mid-stream; the server never restarted; {NAME} removed: {}",
        got.len(),
        !std::path::Path::new("/dev/shm").join(&NAME[1..]).exists()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None | Some("demo") => demo(),
        Some("server") => {
            install_signal_handlers();
            let stop = STOP.get().expect("installed").clone();
            println!("serving on {NAME}; Ctrl-C to stop");
            serve(stop).map(|got| {
                for (client, n) in got {
                    println!("client {client}: {n} requests");
                }
            })
        }
        Some("client") => {
            let id = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            let count = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
            client(id, count)
        }
        Some(other) => Err(format!("unknown mode {other:?}: demo, server or client").into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("service: {e}");
            ExitCode::FAILURE
        }
    }
}
