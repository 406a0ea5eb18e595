//! Passing an fd to another process over a Unix socket (`SCM_RIGHTS`), the
//! way to share a memfd with a process that was not started by the creator.
//!
//! unix(7): "SCM_RIGHTS: Send or receive a set of open file descriptors from
//! another process." The receiver gets a new fd referring to the same open
//! file. [`recv_fd`] receives with `MSG_CMSG_CLOEXEC`, so the fd does not leak
//! into children the receiver spawns, closes any extra fds a peer sent, and
//! refuses a message whose control data was truncated (the kernel then drops
//! the fds that did not fit, so what arrived cannot be trusted to be whole).
//!
//! # Examples
//!
//! ```
//! use std::os::fd::AsFd;
//! use std::os::unix::net::UnixStream;
//! use ringway_region::{fdpass, Backing, Region, RegionOptions};
//!
//! let (a, b) = UnixStream::pair()?;
//! let region = Region::create(&Backing::memfd("doc-fdpass"), &RegionOptions::new().size(4096))?;
//! fdpass::send_fd(a.as_fd(), region.fd().unwrap(), b"hello")?;
//!
//! let mut buf = [0u8; 16];
//! let (fd, n) = fdpass::recv_fd(b.as_fd(), &mut buf)?;
//! assert_eq!(&buf[..n], b"hello");
//! let peer = Region::from_fd(fd, &RegionOptions::new().size(4096))?;
//! assert_eq!(peer.len(), 4096);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::IoSlice;
use std::mem::{MaybeUninit, size_of};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{ControlMessage, MsgFlags, send, sendmsg};

use crate::error::{Error, Op};

/// At most this many fds are accepted in one message; one is used, the others
/// are closed. More than that makes the control data truncated.
const MAX_FDS: usize = 8;

/// Room for one `SCM_RIGHTS` message of `MAX_FDS` fds, as `u64`s for the
/// alignment `cmsghdr` needs.
// SAFETY: CMSG_SPACE is pure arithmetic on its argument (cmsg(3): "CMSG_SPACE()
// returns the number of bytes an ancillary element with payload of the passed
// data length occupies"); it is only `unsafe` because it is a C macro binding.
const CMSG_WORDS: usize = unsafe { libc::CMSG_SPACE((size_of::<libc::c_int>() * MAX_FDS) as u32) }
    as usize
    / size_of::<u64>()
    + 1;

fn socket_name(sock: BorrowedFd<'_>) -> String {
    format!("Unix socket fd {}", sock.as_raw_fd())
}

/// Sends `fd` and the bytes `data` (at least one byte: a stream socket cannot
/// carry control data alone) over the Unix socket `sock`.
///
/// `MSG_NOSIGNAL` is used, so a closed peer is an `EPIPE` error rather than a
/// `SIGPIPE`. If the kernel takes only part of `data`, the rest is sent
/// without control data (the fd travels with the first byte).
///
/// # Errors
///
/// [`ErrorKind::FdPass`](crate::ErrorKind::FdPass) for empty `data`, and the
/// OS error of `sendmsg` otherwise (e.g. `EPIPE`, `ENOTSOCK`).
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>, data: &[u8]) -> Result<(), Error> {
    if data.is_empty() {
        return Err(Error::FdPass {
            op: Op::SendFd,
            what: socket_name(sock),
            reason: "at least one byte of data must travel with the fd",
        });
    }
    let fail = |call, e| Error::os_on(Op::SendFd, socket_name(sock), call, e, None);
    let fds = [fd.as_raw_fd()];
    let cmsgs = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(data)];
    let mut sent = loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Err(Errno::EINTR) => continue,
            other => break other.map_err(|e| fail("sendmsg", e))?,
        }
    };
    while sent < data.len() {
        match send(sock.as_raw_fd(), &data[sent..], MsgFlags::MSG_NOSIGNAL) {
            Err(Errno::EINTR) => continue,
            other => sent += other.map_err(|e| fail("send", e))?,
        }
    }
    Ok(())
}

/// Receives one fd and up to `buf.len()` bytes of data from the Unix socket
/// `sock`; returns the fd (with `FD_CLOEXEC` set) and the number of bytes.
///
/// Extra fds in the same message are closed.
///
/// # Errors
///
/// [`ErrorKind::FdPass`](crate::ErrorKind::FdPass) when the message carried
/// no fd (or the peer closed the socket), when its control data was
/// truncated (`MSG_CTRUNC`: more fds than this side accepts), or when the data
/// did not fit in `buf` on a datagram socket (`MSG_TRUNC`); any fds that
/// arrived are closed. The OS error of `recvmsg` otherwise.
pub fn recv_fd(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Result<(OwnedFd, usize), Error> {
    let refuse = |reason| {
        Err(Error::FdPass {
            op: Op::RecvFd,
            what: socket_name(sock),
            reason,
        })
    };
    let mut control = [0u64; CMSG_WORDS];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is a plain C struct for which all-zero is a valid value
    // (no name, no iov, no control).
    let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; CMSG_WORDS]>();
    let n = loop {
        // SAFETY: `msg` points at `iov` (which points at `buf`) and at
        // `control`, all alive and writable for the call, with their true
        // lengths; the kernel writes at most those lengths.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        match Errno::last() {
            Errno::EINTR => continue,
            e => {
                return Err(Error::os_on(
                    Op::RecvFd,
                    socket_name(sock),
                    "recvmsg",
                    e,
                    None,
                ));
            }
        }
    };
    let fds = take_fds(&msg);
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        drop(fds);
        return refuse(
            "control data truncated (the peer sent more fds than accepted); closed them",
        );
    }
    if msg.msg_flags & libc::MSG_TRUNC != 0 {
        drop(fds);
        return refuse("the message was longer than the buffer; closed its fds");
    }
    let mut fds = fds.into_iter();
    match fds.next() {
        // Extra fds are closed when `fds` drops.
        Some(fd) => Ok((fd, n)),
        None if n == 0 => refuse("the peer closed the socket before sending an fd"),
        None => refuse("the message carried no fd"),
    }
}

/// Takes ownership of every fd in the `SCM_RIGHTS` messages of `msg`.
fn take_fds(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    // SAFETY: `msg` was filled by a successful recvmsg, so msg_control and
    // msg_controllen describe the control buffer the kernel wrote; the CMSG_*
    // macros walk it without leaving it (cmsg(3): "CMSG_NXTHDR() returns the
    // next cmsghdr after the passed cmsghdr. It returns NULL when there isn't
    // enough space left in the buffer").
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !cmsg.is_null() {
        // SAFETY: non-null headers returned by CMSG_FIRSTHDR/NXTHDR lie within
        // the control buffer, which is 8-byte aligned.
        let header = unsafe { &*cmsg };
        if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN is arithmetic only.
            let payload = header
                .cmsg_len
                .saturating_sub(unsafe { libc::CMSG_LEN(0) } as usize);
            // SAFETY: CMSG_DATA points just past this header, inside the buffer.
            let data = unsafe { libc::CMSG_DATA(cmsg) }.cast::<libc::c_int>();
            for i in 0..payload / size_of::<libc::c_int>() {
                // SAFETY: `i` indexes one of the `payload` bytes the kernel
                // wrote after the header; read_unaligned because CMSG_DATA
                // need not be aligned for c_int in general.
                let raw = unsafe { data.add(i).read_unaligned() };
                // SAFETY: SCM_RIGHTS installed `raw` as a new fd in this
                // process (unix(7): "the file descriptors ... are installed in
                // the receiving process"), owned by nobody yet.
                fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR; `cmsg` is a header of this buffer.
        cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
    }
    fds
}
