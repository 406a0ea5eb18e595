//! The MPMC producer sweep: `ringway-mpmc-p1`, `-p2`, `-p4` (throughput only).
//!
//! One MPMC byte channel ([`Flavour::Mpmc`], the `ringway-mpmc` row's ring: S-byte slots,
//! the SPSC ring's payload space) written by N producer processes and read by one consumer
//! process. Side A is the producers: A itself and N - 1 children it forks before it creates
//! the channel; side B is the consumer. Producer `p` sends S-byte messages whose first 8 bytes
//! are `p << 56 | n`, `n` counting from 0 for each producer, until B raises the stop flag.
//! B checks every message: a producer it does not know, or a number that is not that
//! producer's next one (a message lost, duplicated or reordered within one producer: the
//! ring keeps each producer's order), is an integrity failure. B measures the **aggregate**
//! messages per second of all producers over its window, as in every throughput row; A
//! reports the sum of what the producers sent, which the parent compares with what B received
//! (so a lost tail is caught too).
//!
//! Every side waits spin-then-park ([`WaitStrategy::SpinThenPark`]), as in the fan-out rows:
//! N + 1 busy-spinning processes on a small machine would measure the scheduler. So `-p1` is
//! the sweep's one-producer point; `ringway-mpmc` (both ends spinning) is the row to compare
//! with `ringway-spsc`. A's children are unpinned (A and B keep their CPUs); they tell A over
//! a pipe once they are attached, A passes the start gate only then and lets them start over
//! a second pipe, and each reports how many messages it sent when it is told to stop.
//! Names and cleanup are the other ringway rows' (`RemoveNames`).

use std::io::{self, BufRead, Read, Write};
use std::os::fd::OwnedFd;

use ringway_channel::{ByteReceiver, ByteSender, ChannelOptions, Flavour, SendError, WaitStrategy};

use super::buf::PageBuf;
use super::control::PeerControl;
use super::peer::PeerReport;
use super::ringway::{self, TIMEOUT_SLACK, fresh_base, io_err, mpmc_slots};
use super::transport::{
    Endpoint, Geometry, PeerError, PeerSpec, Prepared, Role, SetupError, Transport, Workload,
};
use super::workload::{Receiving, clock_stride, number, recv_err, send_err};

/// One producer process, one consumer process.
pub(crate) static MPMC_P1: Producers = Producers {
    name: "ringway-mpmc-p1",
    producers: 1,
};
/// Two producer processes, one consumer process.
pub(crate) static MPMC_P2: Producers = Producers {
    name: "ringway-mpmc-p2",
    producers: 2,
};
/// Four producer processes, one consumer process.
pub(crate) static MPMC_P4: Producers = Producers {
    name: "ringway-mpmc-p4",
    producers: 4,
};

/// An MPMC channel written by `producers` processes and read by one.
#[derive(Debug)]
pub(crate) struct Producers {
    name: &'static str,
    producers: usize,
}

/// Bits of a message number that count one producer's messages; the producer's index is
/// above them.
const ID_SHIFT: u32 = 56;

/// The number producer `id` puts in its `n`-th message.
fn tag(id: u64, n: u64) -> u64 {
    (id << ID_SHIFT) | n
}

/// The producer index and count of a message number.
fn untag(number: u64) -> (u64, u64) {
    (number >> ID_SHIFT, number & ((1 << ID_SHIFT) - 1))
}

fn options(size: usize) -> ChannelOptions {
    ChannelOptions::new()
        .flavour(Flavour::Mpmc)
        .wait_strategy(WaitStrategy::SpinThenPark)
        .max_message(size)
        .capacity(mpmc_slots(size))
}

fn send_error<V>(size: usize, e: SendError<V>) -> PeerError {
    send_err(size, io::Error::other(e.to_string()))
}

impl Transport for Producers {
    fn name(&self) -> &'static str {
        self.name
    }

    fn supports(&self, workload: Workload) -> bool {
        workload == Workload::Throughput
    }

    fn geometry(&self, spec: &PeerSpec) -> Geometry {
        // The `ringway-mpmc` row's ring: S-byte slots, one message each.
        let slots = mpmc_slots(spec.size) as u64;
        Geometry {
            capacity_bytes: Some(slots.saturating_mul(spec.size as u64)),
            slots: Some(slots),
            batch: Some(1),
        }
    }

    fn prepare(&self, spec: &PeerSpec) -> Result<Prepared, SetupError> {
        if spec.size > u32::MAX as usize / 2 {
            return Err(SetupError::Unavailable(format!(
                "a {}-byte message is larger than a ring carries",
                spec.size
            )));
        }
        let name = format!("{}-mp", fresh_base());
        Ok(ringway::named_pair(&name, vec![name.clone()]))
    }

    fn run_peer(
        &self,
        role: Role,
        spec: &PeerSpec,
        endpoint: Endpoint,
        ctl: PeerControl,
    ) -> Result<PeerReport, PeerError> {
        let name = ringway::endpoint_name(endpoint, "find the channel name")?;
        let opts = options(spec.size).open_timeout(spec.warmup + spec.measure + TIMEOUT_SLACK);
        match role {
            Role::A => self.produce(&name, &opts, spec, ctl),
            Role::B => self.consume(&name, &opts, spec, ctl),
        }
    }
}

impl Producers {
    /// Side A: forks the other producers, creates the channel, waits for them to attach,
    /// passes the start gate, lets them go, produces, and adds up what everyone sent.
    fn produce(
        &self,
        name: &str,
        opts: &ChannelOptions,
        spec: &PeerSpec,
        mut ctl: PeerControl,
    ) -> Result<PeerReport, PeerError> {
        let (report_rx, report_tx) = nix::unistd::pipe().map_err(|e| io_err("pipe", e))?;
        let (go_rx, go_tx) = nix::unistd::pipe().map_err(|e| io_err("pipe", e))?;
        let mut children = Vec::new();
        // Fork before this process attaches anything (a child must not inherit an endpoint
        // it would close when it exits).
        for id in 1..self.producers {
            // SAFETY: a peer process is single-threaded (it runs one workload and no other
            // thread), so the child may run ordinary code after the fork.
            match unsafe { nix::unistd::fork() }.map_err(|e| io_err("fork a producer", e))? {
                nix::unistd::ForkResult::Child => {
                    drop(report_rx);
                    drop(go_tx);
                    let code = child_producer(name, opts, spec, &ctl, id as u64, go_rx, report_tx);
                    std::process::exit(code);
                }
                nix::unistd::ForkResult::Parent { child } => children.push(child),
            }
        }
        drop(report_tx);
        drop(go_rx);
        let mut tx = ByteSender::create(name, opts)
            .map_err(|e| io_err("create the channel to send on", e))?;
        let mut lines = io::BufReader::new(std::fs::File::from(report_rx)).lines();
        for _ in 1..self.producers {
            match lines.next() {
                Some(Ok(line)) if line == "attached" => {}
                other => return Err(io_err("wait for the producers", format!("{other:?}"))),
            }
        }
        ctl.wait_start()?;
        let mut go = std::fs::File::from(go_tx);
        go.write_all(&vec![b'g'; self.producers - 1])
            .map_err(|e| PeerError::io("start the producers", e))?;
        let mut sent = send_tagged(&mut tx, spec, &ctl, 0)?;
        drop(tx);
        for line in lines {
            let line = line.map_err(|e| PeerError::io("read a producer's report", e))?;
            let theirs: u64 = line
                .parse()
                .map_err(|_| io_err("read a producer's report", &line))?;
            sent += theirs;
        }
        for child in children {
            match nix::sys::wait::waitpid(child, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => {}
                other => return Err(io_err("a producer failed", format!("{other:?}"))),
            }
        }
        Ok(PeerReport {
            messages: sent,
            measurement: None,
        })
    }

    /// Side B: the consumer, checking every producer's order and measuring the aggregate
    /// rate.
    fn consume(
        &self,
        name: &str,
        opts: &ChannelOptions,
        spec: &PeerSpec,
        mut ctl: PeerControl,
    ) -> Result<PeerReport, PeerError> {
        let mut rx = ByteReceiver::open(name, opts)
            .map_err(|e| io_err("open the channel to receive from", e))?;
        ctl.wait_start()?;
        let size = spec.size;
        let mut buf = PageBuf::new(size, 0);
        let stride = clock_stride(size);
        let mut receiving = Receiving::new(spec);
        let mut next = vec![0u64; self.producers];
        let mut ended = false;
        while !ended {
            for _ in 0..stride {
                if !recv_into(&mut rx, &mut buf).map_err(|e| recv_err(size, e))? {
                    ended = true;
                    break;
                }
                check(&mut next, number(&buf))?;
                // `Receiving` counts the messages (its window and stop flag are the other
                // rows'); the order check is per producer, above.
                receiving.expected += 1;
            }
            receiving.after_stride(spec, &ctl, ended)?;
        }
        Ok(receiving.report())
    }
}

/// Checks that `number` is its producer's next message, and counts it.
fn check(next: &mut [u64], number: u64) -> Result<(), PeerError> {
    let (id, n) = untag(number);
    let Some(want) = usize::try_from(id).ok().and_then(|i| next.get_mut(i)) else {
        return Err(PeerError::Integrity(format!(
            "a message from producer {id}, of {}",
            next.len()
        )));
    };
    if n != *want {
        return Err(PeerError::Integrity(format!(
            "expected message {want} of producer {id}, received {n}: lost or reordered"
        )));
    }
    *want += 1;
    Ok(())
}

/// Sends messages tagged with producer `id` until the stop flag is raised; returns how many.
fn send_tagged(
    tx: &mut ByteSender,
    spec: &PeerSpec,
    ctl: &PeerControl,
    id: u64,
) -> Result<u64, PeerError> {
    let size = spec.size;
    let mut buf = PageBuf::new(size, 0x5A);
    let stride = clock_stride(size);
    let mut sent = 0u64;
    while !ctl.stop_requested() {
        for _ in 0..stride {
            buf[..8].copy_from_slice(&tag(id, sent).to_le_bytes());
            tx.send(&buf).map_err(|e| send_error(size, e))?;
            sent += 1;
        }
    }
    Ok(sent)
}

/// A forked producer: unpins itself, attaches, says so, waits for the go, sends until told to
/// stop, and reports how many it sent. Returns the exit code.
fn child_producer(
    name: &str,
    opts: &ChannelOptions,
    spec: &PeerSpec,
    ctl: &PeerControl,
    id: u64,
    go: OwnedFd,
    out: OwnedFd,
) -> i32 {
    // Unpin: this process inherited side A's CPU, which A itself uses.
    let mut all = nix::sched::CpuSet::new();
    for cpu in 0..nix::sched::CpuSet::count() {
        let _ = all.set(cpu);
    }
    let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &all);
    let mut out = std::fs::File::from(out);
    let mut tx = match ByteSender::open(name, opts) {
        Ok(tx) => tx,
        Err(e) => {
            eprintln!("producer {id}: open {name}: {e}");
            return 1;
        }
    };
    // One `write` per line: the producers share the pipe, and a write of at most PIPE_BUF
    // bytes to a pipe is atomic (see fanout.rs).
    if out.write_all(b"attached\n").is_err() {
        return 1;
    }
    let mut byte = [0u8; 1];
    if std::fs::File::from(go).read_exact(&mut byte).is_err() {
        return 1; // A gave up before the start
    }
    let sent = match send_tagged(&mut tx, spec, ctl, id) {
        Ok(sent) => sent,
        Err(e) => {
            eprintln!("producer {id}: {e}");
            return 1;
        }
    };
    drop(tx);
    match out.write_all(format!("{sent}\n").as_bytes()) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// Receives one message into `buf`, checking its length; `Ok(false)` once every producer left
/// and everything was read.
fn recv_into(rx: &mut ByteReceiver, buf: &mut [u8]) -> io::Result<bool> {
    let msg = match ringway::received(rx.recv_ref())? {
        Some(msg) => msg,
        None => return Ok(false),
    };
    ringway::expect_len(msg.len(), buf.len())?;
    msg.copy_to(buf);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_keep_producers_apart() {
        assert_eq!(untag(tag(0, 7)), (0, 7));
        assert_eq!(untag(tag(3, (1 << ID_SHIFT) - 1)), (3, (1 << ID_SHIFT) - 1));
        assert_eq!(tag(0, 5), 5, "producer 0 numbers like the other rows");
    }

    #[test]
    fn the_check_is_per_producer() {
        let mut next = vec![0; 2];
        check(&mut next, tag(1, 0)).unwrap();
        check(&mut next, tag(0, 0)).unwrap();
        check(&mut next, tag(1, 1)).unwrap();
        assert!(
            check(&mut next, tag(0, 2)).is_err(),
            "producer 0's message 1 was lost"
        );
        assert!(
            check(&mut next, tag(2, 0)).is_err(),
            "there is no producer 2"
        );
        assert_eq!(next, [1, 2]);
    }
}
