//! `shm-flag`: the physical floor of a cross-process round trip.
//!
//! Two processes share one page of a memfd (created by the parent with `memfd_create` +
//! `ftruncate`, inherited by both peers, each mapping it `MAP_SHARED`; see [`shm`]) and
//! ping-pong a single `u64` counter at its start, alone on its cache line: A stores an odd value with a bare
//! Release store, B spins on Acquire loads until it sees it and stores the next even value,
//! which A spins for. A round trip is two cache-line transfers between the cores and nothing
//! else: no payload, no syscall, no queue. Nothing of ringway's own code is used.
//!
//! Ping-pong only. The message size does not apply (the counter is the whole message): the
//! bench still measures it once per requested size, independently, so every size has a floor
//! row to compare with; the rows differ only by noise.

use std::hint;
use std::io;
use std::sync::atomic::Ordering;
use std::thread;

use super::control::PeerControl;
use super::peer::PeerReport;
use super::shm::{self, SharedMap};
use super::transport::{
    Endpoint, Geometry, PeerError, PeerSpec, Prepared, Role, SetupError, Transport, Workload,
};
use super::workload::{self, Link};

/// The shared cache-line ping-pong.
#[derive(Debug)]
pub(crate) struct ShmFlag;

/// The value A stores when it is done; B's `recv` then reports end of stream.
const CLOSED: u64 = u64::MAX;

impl Transport for ShmFlag {
    fn name(&self) -> &'static str {
        "shm-flag"
    }

    fn supports(&self, workload: Workload) -> bool {
        workload == Workload::Pingpong
    }

    fn geometry(&self, _: &PeerSpec) -> Geometry {
        Geometry::default()
    }

    fn prepare(&self, _: &PeerSpec) -> Result<Prepared, SetupError> {
        let fd = shm::create(c"ringway-bench-shm-flag")
            .map_err(|e| SetupError::io("create the flag's memfd", e))?;
        let dup = fd
            .try_clone()
            .map_err(|e| SetupError::io("dup the memfd", e))?;
        let end = |fd| Endpoint {
            fds: vec![fd],
            name: None,
        };
        Ok(Prepared::pair(end(fd), end(dup)))
    }

    fn run_peer(
        &self,
        role: Role,
        spec: &PeerSpec,
        endpoint: Endpoint,
        ctl: PeerControl,
    ) -> Result<PeerReport, PeerError> {
        let [fd] = endpoint.take_fds()?;
        let map = SharedMap::map(&fd).map_err(|e| PeerError::io("map the flag's memfd", e))?;
        let link = FlagLink {
            map,
            role,
            round: 0,
        };
        workload::drive(role, spec, link, ctl)
    }
}

/// One side of the flag ping-pong. In round `round`, A stores `2*round + 1` and waits for
/// `2*round + 2`; B waits for `2*round + 1` and stores `2*round + 2`.
#[derive(Debug)]
struct FlagLink {
    map: SharedMap,
    role: Role,
    /// Completed rounds (of this side's half).
    round: u64,
}

impl FlagLink {
    /// Spins until the flag holds `want` (`Ok(true)`) or `CLOSED` (`Ok(false)`); the only other
    /// value it may hold meanwhile is `own`, the last value this side stored.
    fn wait(&self, want: u64, own: u64) -> io::Result<bool> {
        let flag = self.map.word(0);
        let mut spins = 0u32;
        loop {
            // SYNC(flag): Acquire pairs with the other side's Release store in `send`.
            let v = flag.load(Ordering::Acquire);
            if v == want {
                return Ok(true);
            }
            if v == CLOSED {
                return Ok(false);
            }
            if v != own {
                let why = format!("the flag holds {v}, expected {own} or {want}");
                return Err(io::Error::new(io::ErrorKind::InvalidData, why));
            }
            if spins < shm::SPINS_BEFORE_YIELD {
                spins += 1;
                hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
    }
}

impl Link for FlagLink {
    const CARRIES_PAYLOAD: bool = false;

    fn send(&mut self, _: &[u8]) -> io::Result<()> {
        let value = match self.role {
            Role::A => 2 * self.round + 1,
            Role::B => {
                self.round += 1;
                2 * self.round
            }
        };
        // SYNC(flag): Release pairs with the other side's Acquire load in `wait`.
        self.map.word(0).store(value, Ordering::Release);
        Ok(())
    }

    fn recv(&mut self, _: &mut [u8]) -> io::Result<bool> {
        let r = self.round;
        match self.role {
            Role::A => {
                let arrived = self.wait(2 * r + 2, 2 * r + 1)?;
                self.round += 1;
                Ok(arrived)
            }
            Role::B => self.wait(2 * r + 1, 2 * r),
        }
    }
}

impl Drop for FlagLink {
    fn drop(&mut self) {
        if self.role == Role::A {
            // SYNC(flag): Release pairs with B's Acquire load in `wait`, which then ends.
            self.map.word(0).store(CLOSED, Ordering::Release);
        }
    }
}
