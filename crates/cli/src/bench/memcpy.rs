//! `memcpy`: the bandwidth floor, in one process.
//!
//! One thread copies the message size from one buffer to another, back to back, for the
//! measured window: what any transport that copies a message once on each side is bounded by.
//! Both buffers stay in the caches for the sizes they fit in, as a ring's slots would.
//! Throughput only; it runs as a single peer process (side A), pinned like side A of the others.
//! Both buffers start on a page boundary (see [`buf`](super::buf) for why that matters).

use std::hint::black_box;
use std::io;
use std::time::Instant;

use super::buf::PageBuf;
use super::control::PeerControl;
use super::peer::PeerReport;
use super::stats::{Measurement, RateSummary};
use super::transport::{
    Endpoint, Geometry, PeerError, PeerSpec, Prepared, Role, SetupError, Transport, Workload,
};
use super::workload::clock_stride;

/// Single-thread `memcpy` of the message size.
#[derive(Debug)]
pub(crate) struct Memcpy;

impl Transport for Memcpy {
    fn name(&self) -> &'static str {
        "memcpy"
    }

    fn supports(&self, workload: Workload) -> bool {
        workload == Workload::Throughput
    }

    fn geometry(&self, _: &PeerSpec) -> Geometry {
        Geometry::default()
    }

    fn prepare(&self, _: &PeerSpec) -> Result<Prepared, SetupError> {
        Ok(Prepared {
            a: Endpoint::default(),
            b: None,
            guard: None,
        })
    }

    fn run_peer(
        &self,
        role: Role,
        spec: &PeerSpec,
        _: Endpoint,
        mut ctl: PeerControl,
    ) -> Result<PeerReport, PeerError> {
        if role != Role::A || spec.workload != Workload::Throughput {
            let why = "memcpy runs only as side A of a throughput measurement";
            return Err(PeerError::io(
                "run memcpy",
                io::Error::new(io::ErrorKind::InvalidInput, why),
            ));
        }
        let src = PageBuf::new(spec.size, 0x5A);
        let mut dst = PageBuf::new(spec.size, 0);
        let stride = clock_stride(spec.size);
        ctl.wait_start()?;
        // Copies until `until`; returns when it stopped and how many copies it made.
        let mut copy_for = |until: Instant| {
            let mut copies = 0u64;
            loop {
                for _ in 0..stride {
                    dst.copy_from_slice(black_box(&*src));
                    black_box(&mut *dst);
                }
                copies += stride;
                let now = Instant::now();
                if now >= until {
                    return (now, copies);
                }
            }
        };
        let (since, warmup_copies) = copy_for(Instant::now() + spec.warmup);
        ctl.open_window(warmup_copies);
        let (until, copies) = copy_for(since + spec.measure);
        ctl.close_window(warmup_copies + copies);
        let rate = RateSummary::new(copies, until - since, spec.size);
        Ok(PeerReport {
            messages: warmup_copies + copies,
            measurement: Some(Measurement::Rate(rate)),
        })
    }
}
