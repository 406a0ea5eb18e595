//! `ringway-bridge`: carry ringway channels to other hosts over Zenoh (`run`), and measure
//! what that costs (`bench`). A binary of its own, not a `ringway` subcommand, so that the
//! `ringway` tool does not build Zenoh.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use clap::{Parser, Subcommand};
use nix::sys::signal::{SigSet, Signal};
use ringway_bridge::{Bridge, BridgeConfig, BridgeError};

mod bench;

/// Carry ringway channels to other hosts over Zenoh.
#[derive(Debug, Parser)]
#[command(name = "ringway-bridge", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a bridge until SIGINT or SIGTERM (or until a route fails).
    Run(RunArgs),
    /// Measure ringway + bridge + Zenoh against Zenoh alone and a TCP stream, on loopback and
    /// across two network namespaces (root).
    Bench(bench::BenchArgs),
    #[command(hide = true)]
    BenchRole(bench::RoleArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// A configuration file of `key = value` lines; flags add to it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Zenoh session mode: peer or client.
    #[arg(long)]
    mode: Option<String>,
    /// A Zenoh endpoint to listen on, e.g. tcp/10.0.0.1:7447 (repeat for more).
    #[arg(long, value_name = "ENDPOINT")]
    listen: Vec<String>,
    /// A Zenoh endpoint to connect to (retried until it answers; repeat for more).
    #[arg(long, value_name = "ENDPOINT")]
    connect: Vec<String>,
    /// CHANNEL=KEY[,lossy][,create][,capacity=N][,max_message=N]: publish a local channel.
    #[arg(long = "out", value_name = "ROUTE")]
    outs: Vec<String>,
    /// KEY=CHANNEL[,options]: deliver a key expression into a local channel.
    #[arg(long = "in", value_name = "ROUTE")]
    ins: Vec<String>,
    /// Print the status to stderr this often, e.g. 1s.
    #[arg(long, value_name = "DURATION")]
    status_interval: Option<String>,
    /// Keep the status in this file (replaced every 100 ms).
    #[arg(long, value_name = "PATH")]
    status_file: Option<PathBuf>,
    /// Zenoh's lease (default 10s): a silent peer is dropped after it, and a reliable route
    /// blocked this long on a full far side closes the session.
    #[arg(long, value_name = "DURATION")]
    lease: Option<String>,
}

impl RunArgs {
    fn config(&self) -> Result<BridgeConfig, BridgeError> {
        let mut config = match &self.config {
            Some(path) => BridgeConfig::from_file(path)?,
            None => BridgeConfig::default(),
        };
        let mut set = |key: &str, value: &str| {
            config.set(key, value).map_err(|m| BridgeError::Config {
                file: None,
                line: 0,
                message: format!("--{}: {m}", key.replace('_', "-")),
            })
        };
        if let Some(m) = &self.mode {
            set("mode", m)?;
        }
        for (key, values) in [
            ("listen", &self.listen),
            ("connect", &self.connect),
            ("out", &self.outs),
            ("in", &self.ins),
        ] {
            for v in values {
                set(key, v)?;
            }
        }
        if let Some(v) = &self.status_interval {
            set("status_interval", v)?;
        }
        if let Some(v) = &self.lease {
            set("lease", v)?;
        }
        if let Some(p) = &self.status_file {
            config.status_file = Some(p.clone());
        }
        if config.routes.is_empty() {
            return Err(BridgeError::Config {
                file: self.config.clone(),
                line: 0,
                message: "no routes: give --out CHANNEL=KEY or --in KEY=CHANNEL (or out = / in = \
                          lines in the file)"
                    .into(),
            });
        }
        Ok(config)
    }
}

fn run(args: &RunArgs) -> Result<(), BridgeError> {
    let config = args.config()?;
    // Block the stop signals in this thread before any other starts (they inherit the mask),
    // and take them with sigwait in one thread: no signal handler, no unsafe.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals
        .thread_block()
        .map_err(|e| BridgeError::io("block SIGINT and SIGTERM", e))?;
    let bridge = Bridge::start(&config)?;
    let stop = bridge.stop_flag();
    let signalled = std::sync::Arc::clone(&stop);
    std::thread::spawn(move || {
        if signals.wait().is_ok() {
            signalled.store(true, Relaxed);
        }
    });
    eprintln!(
        "ringway-bridge: running {} route(s), listening on {:?}, connecting to {:?}",
        config.routes.len(),
        config.listen,
        config.connect
    );
    while !stop.load(Relaxed) && !bridge.route_ended() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = bridge.status();
    let result = bridge.stop();
    eprintln!("ringway-bridge: stopped: {status}");
    result
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Run(args) => run(args),
        Command::Bench(args) => bench::main(args),
        Command::BenchRole(args) => bench::role(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringway-bridge: {e}");
            ExitCode::FAILURE
        }
    }
}
