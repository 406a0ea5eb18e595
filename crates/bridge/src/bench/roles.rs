//! The processes of a bench run, each the `ringway-bridge` binary again (`bench-role`):
//! a sender and a receiver (one-way throughput), a pinger and an echo (round trips), over a
//! TCP stream, over Zenoh pub/sub, or over ringway channels with bridges between them.
//!
//! A receiver times from its first message to its last, so start-up (connecting, Zenoh's
//! subscriber declaration reaching the publisher) is not measured; it prints `ns=N`. A
//! pinger prints `p50=N` (nanoseconds per round trip).

use std::io::{BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ringway_bridge::{BridgeConfig, BridgeError};
use ringway_channel::{ByteReceiver, ByteSender, ChannelOptions};
use zenoh::Wait;
use zenoh::qos::CongestionControl;

/// What one role process does.
#[derive(Debug, clap::Args)]
pub(crate) struct RoleArgs {
    /// tcp-send, tcp-recv, tcp-ping, tcp-echo, zenoh-pub, zenoh-sub, zenoh-ping, zenoh-echo,
    /// ring-send, ring-recv, ring-ping, ring-echo.
    #[arg(long)]
    role: String,
    /// TCP address (`IP:PORT`) or Zenoh endpoint (`tcp/IP:PORT`).
    #[arg(long, default_value = "")]
    addr: String,
    /// Message size in bytes.
    #[arg(long)]
    size: usize,
    /// Messages (or round trips).
    #[arg(long)]
    count: u64,
    /// Channel to send on (ring roles).
    #[arg(long, default_value = "")]
    tx: String,
    /// Channel to receive on (ring roles).
    #[arg(long, default_value = "")]
    rx: String,
}

type Result<T> = std::result::Result<T, BridgeError>;

fn io(what: &str, e: std::io::Error) -> BridgeError {
    BridgeError::io(what.to_owned(), e)
}

pub(crate) fn role(a: &RoleArgs) -> Result<()> {
    let mut buf = vec![0u8; a.size];
    let report = match a.role.as_str() {
        "tcp-send" => {
            let s = connect(&a.addr)?;
            let mut w = BufWriter::with_capacity(1 << 16, s);
            for i in 0..a.count {
                buf[..8.min(a.size)].copy_from_slice(&i.to_le_bytes()[..8.min(a.size)]);
                w.write_all(&buf).map_err(|e| io("tcp send", e))?;
            }
            w.flush().map_err(|e| io("tcp flush", e))?;
            // Wait for the receiver's one-byte "done" so the socket is not torn down early.
            let mut s = w.into_inner().map_err(|e| io("tcp", e.into_error()))?;
            let _ = s.read_exact(&mut [0u8]);
            None
        }
        "tcp-recv" => {
            let mut s = accept(&a.addr)?;
            s.read_exact(&mut buf).map_err(|e| io("tcp recv", e))?;
            let start = Instant::now();
            for _ in 1..a.count {
                s.read_exact(&mut buf).map_err(|e| io("tcp recv", e))?;
            }
            let ns = start.elapsed();
            let _ = s.write_all(&[1]);
            Some(format!("ns={}", ns.as_nanos()))
        }
        "tcp-ping" => {
            let mut s = connect(&a.addr)?;
            let mut rtts = Vec::with_capacity(a.count as usize);
            for _ in 0..a.count {
                let t = Instant::now();
                s.write_all(&buf).map_err(|e| io("tcp ping", e))?;
                s.read_exact(&mut buf).map_err(|e| io("tcp pong", e))?;
                rtts.push(t.elapsed());
            }
            Some(format!("p50={}", median(&mut rtts).as_nanos()))
        }
        "tcp-echo" => {
            let mut s = accept(&a.addr)?;
            for _ in 0..a.count {
                s.read_exact(&mut buf).map_err(|e| io("tcp echo", e))?;
                s.write_all(&buf).map_err(|e| io("tcp echo", e))?;
            }
            None
        }
        "zenoh-pub" | "zenoh-sub" | "zenoh-ping" | "zenoh-echo" => zenoh_role(a, &buf)?,
        "ring-send" => {
            let mut tx = ByteSender::create(a.tx.as_str(), &ring_options(a.size)).map_err(chan)?;
            for i in 0..a.count {
                buf[..8.min(a.size)].copy_from_slice(&i.to_le_bytes()[..8.min(a.size)]);
                tx.send(&buf).map_err(|e| local(e.to_string()))?;
            }
            None
        }
        "ring-recv" => {
            let mut rx =
                ByteReceiver::create(a.rx.as_str(), &ring_options(a.size)).map_err(chan)?;
            let mut out = Vec::new();
            rx.recv(&mut out).map_err(|e| local(e.to_string()))?;
            let start = Instant::now();
            for _ in 1..a.count {
                rx.recv(&mut out).map_err(|e| local(e.to_string()))?;
            }
            Some(format!("ns={}", start.elapsed().as_nanos()))
        }
        "ring-ping" => {
            let mut tx = ByteSender::create(a.tx.as_str(), &ring_options(a.size)).map_err(chan)?;
            let mut rx =
                ByteReceiver::create(a.rx.as_str(), &ring_options(a.size)).map_err(chan)?;
            let mut out = Vec::new();
            let mut rtts = Vec::with_capacity(a.count as usize);
            for _ in 0..a.count {
                let t = Instant::now();
                tx.send(&buf).map_err(|e| local(e.to_string()))?;
                rx.recv(&mut out).map_err(|e| local(e.to_string()))?;
                rtts.push(t.elapsed());
            }
            Some(format!("p50={}", median(&mut rtts).as_nanos()))
        }
        "ring-echo" => {
            let mut rx =
                ByteReceiver::create(a.rx.as_str(), &ring_options(a.size)).map_err(chan)?;
            let mut tx = ByteSender::create(a.tx.as_str(), &ring_options(a.size)).map_err(chan)?;
            let mut out = Vec::new();
            for _ in 0..a.count {
                rx.recv(&mut out).map_err(|e| local(e.to_string()))?;
                tx.send(&out).map_err(|e| local(e.to_string()))?;
            }
            None
        }
        other => return Err(local(format!("unknown bench role {other:?}"))),
    };
    if let Some(line) = report {
        println!("{line}");
    }
    Ok(())
}

/// Ring geometry for `size`-byte messages: about 1 MiB of ring, at least 16 messages.
pub(crate) fn ring_options(size: usize) -> ChannelOptions {
    ChannelOptions::new()
        .max_message(size)
        .capacity(((1 << 20) / size.max(64)).max(16))
        .open_timeout(Duration::from_secs(30))
}

fn chan(e: ringway_channel::Error) -> BridgeError {
    local(e.to_string())
}

fn local(message: String) -> BridgeError {
    BridgeError::Local {
        route: "bench".into(),
        message,
    }
}

fn connect(addr: &str) -> Result<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => {
                s.set_nodelay(true).map_err(|e| io("nodelay", e))?;
                return Ok(s);
            }
            Err(e) if Instant::now() > deadline => {
                return Err(io(&format!("connect to {addr}"), e));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn accept(addr: &str) -> Result<TcpStream> {
    let l = TcpListener::bind(addr).map_err(|e| io(&format!("listen on {addr}"), e))?;
    println!("ready");
    let (s, _) = l.accept().map_err(|e| io("accept", e))?;
    s.set_nodelay(true).map_err(|e| io("nodelay", e))?;
    Ok(s)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Zenoh used directly, as an application would: reliable, congestion control block, the
/// same session configuration as the bridge (peer, explicit endpoints, no scouting).
fn zenoh_role(a: &RoleArgs, buf: &[u8]) -> Result<Option<String>> {
    let listens = matches!(a.role.as_str(), "zenoh-sub" | "zenoh-echo");
    let mut config = BridgeConfig::default();
    if listens {
        config.listen.push(a.addr.clone());
    } else {
        config.connect.push(a.addr.clone());
    }
    let session = ringway_bridge::session::open(&config)?;
    fn z(what: &'static str) -> impl Fn(zenoh::Error) -> BridgeError {
        move |e| BridgeError::zenoh(what, e)
    }
    let publisher = |key: &'static str| {
        session
            .declare_publisher(key)
            .congestion_control(CongestionControl::Block)
            .wait()
            .map_err(z("declare publisher"))
    };
    let subscriber = |key: &'static str| {
        session
            .declare_subscriber(key)
            .with(zenoh::handlers::FifoChannel::new(256))
            .wait()
            .map_err(z("declare subscriber"))
    };
    let wait_match = |p: &zenoh::pubsub::Publisher<'_>| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !p.matching_status().wait().is_ok_and(|m| m.matching()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let report = match a.role.as_str() {
        "zenoh-pub" => {
            let p = publisher("bench/data")?;
            wait_match(&p);
            for _ in 0..a.count {
                p.put(buf).wait().map_err(z("put"))?;
            }
            // Let the last batch leave before the session closes.
            std::thread::sleep(Duration::from_millis(500));
            None
        }
        "zenoh-sub" => {
            let s = subscriber("bench/data")?;
            s.recv().map_err(z("recv"))?;
            let start = Instant::now();
            for _ in 1..a.count {
                s.recv().map_err(z("recv"))?;
            }
            Some(format!("ns={}", start.elapsed().as_nanos()))
        }
        "zenoh-ping" => {
            let s = subscriber("bench/pong")?;
            let p = publisher("bench/ping")?;
            wait_match(&p);
            // The echo's publisher must see this subscriber too: one untimed round first.
            p.put(buf).wait().map_err(z("put"))?;
            s.recv().map_err(z("recv"))?;
            let mut rtts = Vec::with_capacity(a.count as usize);
            for _ in 0..a.count {
                let t = Instant::now();
                p.put(buf).wait().map_err(z("put"))?;
                s.recv().map_err(z("recv"))?;
                rtts.push(t.elapsed());
            }
            Some(format!("p50={}", median(&mut rtts).as_nanos()))
        }
        _ => {
            let s = subscriber("bench/ping")?;
            let p = publisher("bench/pong")?;
            let first = s.recv().map_err(z("recv"))?;
            wait_match(&p);
            p.put(first.payload().clone()).wait().map_err(z("put"))?;
            for _ in 0..a.count {
                let sample = s.recv().map_err(z("recv"))?;
                p.put(sample.payload().clone()).wait().map_err(z("put"))?;
            }
            std::thread::sleep(Duration::from_millis(200));
            None
        }
    };
    let _ = session.close().wait();
    Ok(report)
}
