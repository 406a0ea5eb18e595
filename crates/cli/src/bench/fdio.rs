//! The kernel transports: anonymous pipes, Unix stream and seqpacket sockets, TCP loopback.
//!
//! The parent creates connected descriptors and each peer inherits its own: a socket for the
//! socket transports (`[socket]`, both directions), and for pipes `[rx, tx]` in a ping-pong (one
//! pipe each way) or just `[tx]` (side A) / `[rx]` (side B) for throughput. Buffer sizes are
//! the kernel's defaults, what an application gets without tuning, except for seqpacket, whose
//! send buffer bounds the largest message and is raised to fit the message size (see
//! [`seqpacket_pair`]).
//!
//! Byte streams (pipe, unix-stream, tcp) keep reading and writing until a whole message has
//! moved; a seqpacket message moves in one call and its length is checked exactly.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType, sockopt};

use super::control::PeerControl;
use super::peer::PeerReport;
use super::transport::{
    Endpoint, Geometry, PeerError, PeerSpec, Prepared, Role, SetupError, Transport, Workload,
};
use super::workload::{self, Link, missing};

/// Two anonymous pipes (ping-pong) or one (throughput), default capacity (64 KiB).
pub(crate) static PIPE: FdTransport = FdTransport {
    name: "pipe",
    kind: Kind::Pipe,
};
/// `socketpair(AF_UNIX, SOCK_STREAM)`.
pub(crate) static UNIX_STREAM: FdTransport = FdTransport {
    name: "unix-stream",
    kind: Kind::UnixStream,
};
/// `socketpair(AF_UNIX, SOCK_SEQPACKET)`, buffers raised so one message fits.
pub(crate) static UNIX_SEQPACKET: FdTransport = FdTransport {
    name: "unix-seqpacket",
    kind: Kind::UnixSeqpacket,
};
/// A TCP connection over 127.0.0.1 with `TCP_NODELAY` on both ends.
pub(crate) static TCP: FdTransport = FdTransport {
    name: "tcp",
    kind: Kind::Tcp,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pipe,
    UnixStream,
    UnixSeqpacket,
    Tcp,
}

/// A transport over kernel file descriptors.
#[derive(Debug)]
pub(crate) struct FdTransport {
    name: &'static str,
    kind: Kind,
}

impl Transport for FdTransport {
    fn name(&self) -> &'static str {
        self.name
    }

    fn supports(&self, workload: Workload) -> bool {
        match workload {
            Workload::Pingpong | Workload::Throughput => true,
            // The kernel's counterparts of the idle and fixed-rate rows.
            Workload::Idle | Workload::Rate => matches!(self.kind, Kind::Pipe | Kind::UnixStream),
        }
    }

    fn geometry(&self, spec: &PeerSpec) -> Geometry {
        let capacity_bytes = match self.kind {
            Kind::Pipe => pipe_capacity(),
            Kind::UnixStream => unix_stream_sndbuf(),
            // Raised per size (see `seqpacket_pair`): what it was raised to.
            Kind::UnixSeqpacket => seqpacket_pair(spec.size).ok().and_then(|p| {
                let fd = p.a.fds.first()?;
                socket::getsockopt(fd, sockopt::SndBuf)
                    .ok()
                    .map(|b| b as u64)
            }),
            // Autotuned by the kernel as the connection runs: no one figure.
            Kind::Tcp => None,
        };
        Geometry {
            capacity_bytes,
            slots: None,
            batch: Some(1),
        }
    }

    fn prepare(&self, spec: &PeerSpec) -> Result<Prepared, SetupError> {
        match self.kind {
            Kind::Pipe => pipes(spec.workload),
            Kind::UnixStream => {
                let (a, b) = UnixStream::pair()
                    .map_err(|e| SetupError::io("socketpair(AF_UNIX, SOCK_STREAM)", e))?;
                Ok(sockets(a.into(), b.into()))
            }
            Kind::UnixSeqpacket => seqpacket_pair(spec.size),
            Kind::Tcp => tcp_pair(),
        }
    }

    fn run_peer(
        &self,
        role: Role,
        spec: &PeerSpec,
        endpoint: Endpoint,
        ctl: PeerControl,
    ) -> Result<PeerReport, PeerError> {
        let link = FdLink::new(self.kind, role, spec.workload, endpoint)?;
        workload::drive(role, spec, link, ctl)
    }
}

/// A pipe's capacity (`F_GETPIPE_SZ` of a fresh pipe: the kernel default, 64 KiB unless
/// changed), once per process.
fn pipe_capacity() -> Option<u64> {
    static CAPACITY: OnceLock<Option<u64>> = OnceLock::new();
    *CAPACITY.get_or_init(|| {
        let (r, _w) = io::pipe().ok()?;
        // SAFETY: F_GETPIPE_SZ only reads the pipe's size; `r` is an open pipe descriptor.
        let n = unsafe { libc::fcntl(r.as_raw_fd(), libc::F_GETPIPE_SZ) };
        u64::try_from(n).ok()
    })
}

/// The send buffer of a fresh `AF_UNIX` stream socket (`SO_SNDBUF`, which bounds the bytes in
/// flight of a Unix stream), once per process.
pub(crate) fn unix_stream_sndbuf() -> Option<u64> {
    static SNDBUF: OnceLock<Option<u64>> = OnceLock::new();
    *SNDBUF.get_or_init(|| {
        let (a, _b) = UnixStream::pair().ok()?;
        socket::getsockopt(&a, sockopt::SndBuf)
            .ok()
            .map(|b| b as u64)
    })
}

fn sockets(a: OwnedFd, b: OwnedFd) -> Prepared {
    let end = |fd| Endpoint {
        fds: vec![fd],
        name: None,
    };
    Prepared::pair(end(a), end(b))
}

fn pipes(workload: Workload) -> Result<Prepared, SetupError> {
    let pipe = || -> Result<(OwnedFd, OwnedFd), SetupError> {
        let (r, w) = io::pipe().map_err(|e| SetupError::io("pipe2(O_CLOEXEC)", e))?;
        Ok((r.into(), w.into()))
    };
    let end = |fds| Endpoint { fds, name: None };
    let (a_to_b_rx, a_to_b_tx) = pipe()?;
    Ok(match workload {
        Workload::Throughput | Workload::Idle | Workload::Rate => {
            Prepared::pair(end(vec![a_to_b_tx]), end(vec![a_to_b_rx]))
        }
        Workload::Pingpong => {
            let (b_to_a_rx, b_to_a_tx) = pipe()?;
            Prepared::pair(
                end(vec![b_to_a_rx, a_to_b_tx]),
                end(vec![a_to_b_rx, b_to_a_tx]),
            )
        }
    })
}

fn tcp_pair() -> Result<Prepared, SetupError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| SetupError::io("listen on 127.0.0.1:0", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| SetupError::io("getsockname on the listener", e))?;
    let a =
        TcpStream::connect(addr).map_err(|e| SetupError::io(format!("connect to {addr}"), e))?;
    let (b, _) = listener
        .accept()
        .map_err(|e| SetupError::io(format!("accept on {addr}"), e))?;
    for s in [&a, &b] {
        s.set_nodelay(true)
            .map_err(|e| SetupError::io("set TCP_NODELAY", e))?;
    }
    Ok(sockets(a.into(), b.into()))
}

/// A seqpacket pair whose buffers hold a few `size`-byte messages, proven to carry one in each
/// direction before any peer starts.
///
/// An `AF_UNIX` seqpacket message must fit in the sender's `SO_SNDBUF` (less 32 bytes), and
/// the default (208 KiB, capped by `net.core.wmem_max` for `SO_SNDBUF`) is too small for 1 MiB:
/// the buffers are raised with `SO_SNDBUF`/`SO_RCVBUF`, then `SO_SNDBUFFORCE`/`SO_RCVBUFFORCE`
/// (which need `CAP_NET_ADMIN`) when the cap stood in the way. If a message still cannot be sent
/// in one piece, the measurement is unavailable, with the kernel's reason.
fn seqpacket_pair(size: usize) -> Result<Prepared, SetupError> {
    let (a, b) = socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| SetupError::io("socketpair(AF_UNIX, SOCK_SEQPACKET)", e))?;
    let want = size.saturating_mul(4).saturating_add(64 * 1024);
    for fd in [&a, &b] {
        raise(fd, sockopt::SndBuf, sockopt::SndBufForce, want);
        raise(fd, sockopt::RcvBuf, sockopt::RcvBufForce, want);
    }
    let msg = vec![0u8; size];
    let mut back = vec![0u8; size];
    for (tx, rx) in [(&a, &b), (&b, &a)] {
        let sent = socket::send(tx.as_raw_fd(), &msg, MsgFlags::MSG_DONTWAIT);
        let sndbuf = socket::getsockopt(tx, sockopt::SndBuf).unwrap_or(0);
        match sent {
            Ok(n) if n == size => {}
            Ok(n) => {
                return Err(SetupError::Unavailable(format!(
                    "seqpacket sent {n} of {size} bytes"
                )));
            }
            Err(e @ (Errno::EMSGSIZE | Errno::ENOBUFS | Errno::EAGAIN | Errno::ENOMEM)) => {
                return Err(SetupError::Unavailable(format!(
                    "a {size}-byte message does not fit in one seqpacket ({e}; SO_SNDBUF is \
                     {sndbuf} bytes; raise net.core.wmem_max, or run as root for SO_SNDBUFFORCE)"
                )));
            }
            Err(e) => return Err(SetupError::io("trial send on the seqpacket pair", e)),
        }
        match socket::recv(
            rx.as_raw_fd(),
            &mut back,
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC,
        ) {
            Ok(n) if n == size => {}
            Ok(n) => {
                return Err(SetupError::Unavailable(format!(
                    "seqpacket delivered {n} of {size} bytes"
                )));
            }
            Err(e) => return Err(SetupError::io("trial receive on the seqpacket pair", e)),
        }
    }
    Ok(sockets(a, b))
}

/// Raises a socket buffer to at least `want` bytes (never lowers it): the plain option first,
/// the privileged `*FORCE` one if the plain one was capped. Failures leave the buffer as it is;
/// the trial send decides whether that is enough.
fn raise<O, F>(fd: &OwnedFd, opt: O, force: F, want: usize)
where
    O: socket::GetSockOpt<Val = usize> + socket::SetSockOpt<Val = usize> + Copy,
    F: socket::SetSockOpt<Val = usize>,
{
    let now = || socket::getsockopt(fd, opt).unwrap_or(0);
    if now() >= want {
        return;
    }
    let _ = socket::setsockopt(fd, opt, &want);
    if now() < want {
        let _ = socket::setsockopt(fd, force, &want);
    }
}

/// One side of a descriptor transport.
#[derive(Debug)]
struct FdLink {
    rx: Option<File>,
    tx: Option<File>,
    /// Seqpacket: one message per call, length checked; otherwise a byte stream.
    packets: bool,
}

impl FdLink {
    fn new(kind: Kind, role: Role, workload: Workload, end: Endpoint) -> Result<Self, PeerError> {
        let (rx, tx) = match (kind, workload, role) {
            (Kind::Pipe, Workload::Pingpong, _) => {
                let [rx, tx] = end.take_fds()?;
                (Some(rx), Some(tx))
            }
            (Kind::Pipe, _, Role::A) => {
                let [tx] = end.take_fds()?;
                (None, Some(tx))
            }
            (Kind::Pipe, _, Role::B) => {
                let [rx] = end.take_fds()?;
                (Some(rx), None)
            }
            (Kind::UnixStream | Kind::UnixSeqpacket | Kind::Tcp, ..) => {
                let [socket] = end.take_fds()?;
                let dup = socket
                    .try_clone()
                    .map_err(|e| PeerError::io("dup the socket", e))?;
                (Some(socket), Some(dup))
            }
        };
        Ok(FdLink {
            rx: rx.map(File::from),
            tx: tx.map(File::from),
            packets: kind == Kind::UnixSeqpacket,
        })
    }
}

impl Link for FdLink {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let tx = self.tx.as_mut().ok_or_else(|| missing("send descriptor"))?;
        if !self.packets {
            return tx.write_all(msg);
        }
        loop {
            match tx.write(msg) {
                Ok(n) if n == msg.len() => return Ok(()),
                Ok(n) => {
                    return Err(io::Error::other(format!(
                        "seqpacket sent {n} of {} bytes",
                        msg.len()
                    )));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        let rx = self
            .rx
            .as_mut()
            .ok_or_else(|| missing("receive descriptor"))?;
        if self.packets {
            return recv_packet(rx, buf);
        }
        let mut filled = 0;
        while filled < buf.len() {
            match rx.read(&mut buf[filled..]) {
                Ok(0) if filled == 0 => return Ok(false),
                Ok(0) => {
                    let why = format!("end of stream after {filled} of {} bytes", buf.len());
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, why));
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

/// Receives one seqpacket message, which must be exactly `buf.len()` bytes (`MSG_TRUNC` makes the
/// kernel return the real length of a longer one); a zero-length read is the peer closing.
fn recv_packet(rx: &File, buf: &mut [u8]) -> io::Result<bool> {
    loop {
        match socket::recv(rx.as_fd().as_raw_fd(), buf, MsgFlags::MSG_TRUNC) {
            Ok(0) => return Ok(false),
            Ok(n) if n == buf.len() => return Ok(true),
            Ok(n) => {
                let why = format!(
                    "a {n}-byte seqpacket message where {} bytes were expected",
                    buf.len()
                );
                return Err(io::Error::new(io::ErrorKind::InvalidData, why));
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
