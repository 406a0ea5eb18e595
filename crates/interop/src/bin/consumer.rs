//! A consumer program, declaring the producer's message types again in a module of its own.
//!
//! Usage: `interop-consumer derive|pod NAME COUNT [TYPE_NAME]`. Opens the channel `NAME`,
//! receives `COUNT` requests and checks each, then expects the channel to end. Prints the
//! type's `core::any::type_name` first; exit code 2 (with the error on stderr) if the open
//! is refused, 1 on any other failure.

use std::process::ExitCode;
use std::time::Duration;

use ringway_channel::{ChannelOptions, Message, Receiver, RecvError};

mod protocol {
    /// The producer's `Req`, declared alike: the same fields, types and order.
    #[derive(Clone, Copy, ringway_channel::Message)]
    #[repr(C)]
    pub(crate) struct Req {
        pub(crate) id: u64,
        pub(crate) price: f64,
        pub(crate) qty: u32,
        pub(crate) venue: u32,
    }

    /// The producer's `PodReq`, declared alike, without the derive.
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    pub(crate) struct PodReq {
        pub(crate) id: u64,
        pub(crate) price: f64,
        pub(crate) qty: u32,
        pub(crate) venue: u32,
    }
}

const TIMEOUT: Duration = Duration::from_secs(30);

fn run<T: Message + Copy>(
    name: &str,
    count: u64,
    opts: &ChannelOptions,
    fields: impl Fn(&T) -> (u64, f64, u32, u32),
) -> ExitCode {
    println!("{}", core::any::type_name::<T>());
    let mut rx = match Receiver::<T>::open(name, opts) {
        Ok(rx) => rx,
        Err(e) => {
            eprintln!("open: {e}");
            return ExitCode::from(2);
        }
    };
    for i in 0..count {
        match rx.recv_timeout(TIMEOUT) {
            Ok(req) if fields(&req) == (i, i as f64 * 0.5, 3 * i as u32, 7) => {}
            Ok(req) => {
                eprintln!("request {i} arrived as {:?}", fields(&req));
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("request {i}: {e}");
                return ExitCode::from(1);
            }
        }
    }
    match rx.recv_timeout(TIMEOUT) {
        Err(RecvError::Disconnected) => {
            println!("received {count}");
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("after {count} requests: {:?}", other.map(|r| fields(&r)));
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, name, count, rest @ ..] = args.as_slice() else {
        eprintln!("usage: interop-consumer derive|pod NAME COUNT [TYPE_NAME]");
        return ExitCode::from(64);
    };
    let count: u64 = count.parse().expect("COUNT is a number");
    let mut opts = ChannelOptions::new().open_timeout(TIMEOUT);
    if let Some(type_name) = rest.first() {
        opts = opts.type_name(type_name.as_str());
    }
    match kind.as_str() {
        "derive" => run(name, count, &opts, |r: &protocol::Req| {
            (r.id, r.price, r.qty, r.venue)
        }),
        "pod" => run(name, count, &opts, |r: &protocol::PodReq| {
            (r.id, r.price, r.qty, r.venue)
        }),
        _ => ExitCode::from(64),
    }
}
