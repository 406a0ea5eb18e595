//! `ringway`: the command-line tool that ships with the ringway IPC library.
//!
//! - `ringway bench` measures message round trips and one-way throughput between two real
//!   processes over ringway's channels, pipes, Unix sockets, TCP loopback and two reference
//!   floors (a bare shared cache line and `memcpy`), and prints a table with ratios against
//!   `pipe`; see [`mod@bench`].
//! - `ringway ls`, `ringway stat NAME`, `ringway rm NAME`, `ringway clean`: list, decode and
//!   remove ringway's shared memory segments; see [`inspect`].
//! - `ringway __bench-peer` (hidden) is the same binary playing one side of a measurement; the
//!   bench re-executes itself with it and never expects a person to type it.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod inspect;

/// Cross-process messaging over lock-free ring buffers in shared memory.
#[derive(Debug, Parser)]
#[command(name = "ringway", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure round-trip latency, throughput, CPU per message, idle CPU and latency at fixed rates of IPC transports between two processes.
    #[command(after_long_help = bench::HELP)]
    Bench(bench::BenchArgs),
    /// List every ringway segment (POSIX shm and System V): size, kind, fill, owner, mode, age,
    /// processes.
    Ls(inspect::LsArgs),
    /// Show one segment's header, decoded and validated, and its registered processes.
    Stat(inspect::StatArgs),
    /// Remove one segment by name (refusing one in use, or not ringway's, unless --force).
    Rm(inspect::RmArgs),
    /// Remove your segments whose registered processes and creator have all died.
    Clean(inspect::CleanArgs),
    /// One side of a bench measurement, in a process of its own (started by `bench`).
    #[command(name = "__bench-peer", hide = true)]
    BenchPeer(bench::peer::PeerArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Bench(args) => bench::run(&args),
        Command::Ls(args) => inspect::ls::run(&args),
        Command::Stat(args) => inspect::stat::run(&args),
        Command::Rm(args) => inspect::remove::run_rm(&args),
        Command::Clean(args) => inspect::remove::run_clean(&args),
        Command::BenchPeer(args) => bench::peer::main(&args),
    }
}
