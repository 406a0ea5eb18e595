//! A producer program. It declares its message types in `mod wire`; the consumers declare
//! theirs in modules of their own, in crates of their own.
//!
//! Usage: `interop-producer derive|pod NAME COUNT [TYPE_NAME]`. Creates the channel `NAME`,
//! sends `COUNT` requests, and waits until a receiver has attached (then leaves: the receiver
//! drains what was sent) or its stdin is closed (then gives up, exit code 4). Prints the
//! type's `core::any::type_name` first.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ringway_channel::{ChannelOptions, Message, PeerState, Sender};

mod wire {
    /// A request, identified by its layout.
    #[derive(Clone, Copy, ringway_channel::Message)]
    #[repr(C)]
    pub(crate) struct Req {
        pub(crate) id: u64,
        pub(crate) price: f64,
        pub(crate) qty: u32,
        pub(crate) venue: u32,
    }

    /// The same layout without the derive: identified by its name, module path included.
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    pub(crate) struct PodReq {
        pub(crate) id: u64,
        pub(crate) price: f64,
        pub(crate) qty: u32,
        pub(crate) venue: u32,
    }
}

fn run<T: Message + Copy>(
    name: &str,
    count: u64,
    opts: &ChannelOptions,
    make: impl Fn(u64) -> T,
) -> ExitCode {
    println!("{}", core::any::type_name::<T>());
    let mut tx = match Sender::<T>::create(name, opts) {
        Ok(tx) => tx,
        Err(e) => {
            eprintln!("create: {e}");
            return ExitCode::from(2);
        }
    };
    for i in 0..count {
        if let Err(e) = tx.send(make(i)) {
            eprintln!("send: {e}");
            return ExitCode::from(1);
        }
    }
    // Keep the channel (and its name) until a receiver has attached, or until told to give
    // up by the test closing stdin.
    let closed = Arc::new(AtomicBool::new(false));
    let flag = closed.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        flag.store(true, Ordering::Release);
    });
    while tx.peer_state() == PeerState::Waiting {
        if closed.load(Ordering::Acquire) {
            eprintln!("no receiver attached");
            return ExitCode::from(4);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, name, count, rest @ ..] = args.as_slice() else {
        eprintln!("usage: interop-producer derive|pod NAME COUNT [TYPE_NAME]");
        return ExitCode::from(64);
    };
    let count: u64 = count.parse().expect("COUNT is a number");
    let mut opts = ChannelOptions::new().capacity(1024);
    if let Some(type_name) = rest.first() {
        opts = opts.type_name(type_name.as_str());
    }
    match kind.as_str() {
        "derive" => run(name, count, &opts, |i| wire::Req {
            id: i,
            price: i as f64 * 0.5,
            qty: 3 * i as u32,
            venue: 7,
        }),
        "pod" => run(name, count, &opts, |i| wire::PodReq {
            id: i,
            price: i as f64 * 0.5,
            qty: 3 * i as u32,
            venue: 7,
        }),
        _ => ExitCode::from(64),
    }
}
