//! A consumer program whose `Req` has drifted from the producer's: `qty` is an `i32` (the
//! same size, another kind).
//!
//! Usage: `interop-consumer-changed NAME`. Opens the channel `NAME` and receives one request;
//! exit code 2 (with the error on stderr) if the open is refused, 0 if it was not.

use std::process::ExitCode;
use std::time::Duration;

use ringway_channel::{ChannelOptions, Receiver};

mod messages {
    pub(crate) mod v2 {
        /// The producer's `Req` with `qty: i32` instead of `u32`.
        #[derive(Clone, Copy, ringway_channel::Message)]
        #[repr(C)]
        pub(crate) struct Req {
            pub(crate) id: u64,
            pub(crate) price: f64,
            pub(crate) qty: i32,
            pub(crate) venue: u32,
        }
    }
}

fn main() -> ExitCode {
    let Some(name) = std::env::args().nth(1) else {
        eprintln!("usage: interop-consumer-changed NAME");
        return ExitCode::from(64);
    };
    let opts = ChannelOptions::new().open_timeout(Duration::from_secs(30));
    match Receiver::<messages::v2::Req>::open(name.as_str(), &opts) {
        Ok(mut rx) => {
            let req = rx.recv_timeout(Duration::from_secs(30));
            eprintln!(
                "opened, and received qty {:?}",
                req.map(|r| (r.id, r.price, r.qty, r.venue))
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("open: {e}");
            ExitCode::from(2)
        }
    }
}
