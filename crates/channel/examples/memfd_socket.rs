//! A channel in a sealed memfd, handed to an unrelated process over a Unix socket.
//!
//! `cargo run -p ringway-channel --example memfd_socket`: the server listens on a Unix socket,
//! starts a client (this program again), and sends it the channel's memfd with `SCM_RIGHTS`.
//! Nothing is named in `/dev/shm`: the memory lives as long as an fd or mapping of it does,
//! and its seals forbid anyone to shrink it under the other.

use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};

use ringway_channel::{ByteChannel, ChannelOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "client" {
        let socket = UnixStream::connect(&args[2])?;
        let channel = ByteChannel::recv_fd(socket.as_fd(), &ChannelOptions::new())?;
        let mut tx = channel.sender()?;
        for word in ["a", "memfd", "crossed", "a", "unix", "socket"] {
            tx.send(word.as_bytes())?;
        }
        println!(
            "client (pid {}): received {}, sent 6 messages",
            std::process::id(),
            channel.name()
        );
        return Ok(());
    }

    let path = std::env::temp_dir().join(format!("ringway-example-{}.sock", std::process::id()));
    let listener = UnixListener::bind(&path)?;
    let channel = ByteChannel::memfd("example", &ChannelOptions::new().capacity(16))?;
    let mut client = std::process::Command::new(std::env::current_exe()?)
        .args(["client", path.to_str().ok_or("temp path is not UTF-8")?])
        .spawn()?;
    let (socket, _) = listener.accept()?;
    channel.send_fd(socket.as_fd())?;
    println!(
        "server (pid {}): sent {} to client {}",
        std::process::id(),
        channel.name(),
        client.id()
    );
    let _ = std::fs::remove_file(&path);

    let mut rx = channel.receiver()?;
    let words: Vec<String> = rx
        .iter()
        .map(|m| String::from_utf8_lossy(&m).into_owned())
        .collect();
    client.wait()?;
    println!(
        "server: received {:?}, then the client left",
        words.join(" ")
    );
    Ok(())
}
