//! A channel in an anonymous shared mapping, shared with a child created by `fork`.
//!
//! `cargo run -p ringway-channel --example fork`: the parent creates the channel, forks, the
//! child takes the sender and streams ticks, the parent takes the receiver and sums them.

use ringway_channel::{Channel, ChannelOptions, RecvError};

#[derive(Clone, Copy, Debug, ringway_channel::Message)]
#[repr(C)]
struct Tick {
    price: f64,
    qty: u32,
    venue: u32,
}

const TICKS: u32 = 50_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Created before fork, so the child inherits the mapping. Each side takes its end after
    // the fork, so each end is registered under its own pid and a crash of either is seen.
    let channel = Channel::<Tick>::anonymous(&ChannelOptions::new().capacity(1024))?;

    // SAFETY: this program has a single thread here, so the child is a complete copy; it
    // uses the channel and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    if pid == 0 {
        let code = match child(&channel) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("child: {e}");
                1
            }
        };
        // SAFETY: leave the forked child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }

    let mut rx = channel.receiver()?;
    let (mut count, mut volume) = (0u32, 0u64);
    loop {
        match rx.recv() {
            Ok(tick) => {
                count += 1;
                volume += u64::from(tick.qty);
            }
            Err(RecvError::Disconnected) => break,
            Err(e) => return Err(e.into()),
        }
    }
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid out-pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    println!(
        "parent (pid {}): received {count} ticks from child {pid}, total quantity {volume}, \
         then saw the child's sender leave",
        std::process::id()
    );
    assert_eq!(count, TICKS);
    Ok(())
}

fn child(channel: &Channel<Tick>) -> Result<(), Box<dyn std::error::Error>> {
    let mut tx = channel.sender()?;
    for i in 0..TICKS {
        tx.send(Tick {
            price: 100.0 + f64::from(i % 100) / 100.0,
            qty: i % 7 + 1,
            venue: i % 3,
        })?;
    }
    println!("child (pid {}): sent {TICKS} ticks", std::process::id());
    Ok(())
}
