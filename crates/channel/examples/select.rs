//! One thread waiting on many channels at once: a monitor that receives from three sensor
//! processes, each on its own channel, with a `Select`, and does housekeeping whenever it has
//! been idle for 100 ms.
//!
//! `cargo run --release -p ringway-channel --example select` creates three channels and
//! re-runs this program once per sensor. Each sensor sends 50 readings at its own pace, then
//! exits. The monitor wakes within microseconds of a reading on any channel and uses no CPU
//! while all are quiet (it sleeps in one `futex_waitv` on all three rings), sees each arm
//! close when its sensor leaves, and stops when all have.

use std::process::{Child, Command};
use std::time::Duration;

use ringway_channel::{ChannelOptions, Receiver, RecvError, Select, SelectError, Sender};

#[derive(Clone, Copy, Debug, ringway_channel::Message)]
#[repr(C)]
struct Reading {
    sensor: u32,
    seq: u32,
    value: f64,
}

const READINGS: u32 = 50;

fn sensor(id: u32, name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut tx = Sender::<Reading>::open(name, &ChannelOptions::new())?;
    let pace = Duration::from_millis(2 + 5 * u64::from(id));
    for seq in 0..READINGS {
        std::thread::sleep(pace);
        tx.send(Reading {
            sensor: id,
            seq,
            value: f64::from(seq) * f64::from(id + 1),
        })?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "sensor" {
        return sensor(args[2].parse()?, &args[3]);
    }
    let base = format!("/ringway-example-select-{}", std::process::id());
    let names: Vec<String> = (0..3).map(|i| format!("{base}-{i}")).collect();
    let mut receivers = names
        .iter()
        .map(|n| Receiver::<Reading>::create(n.as_str(), &ChannelOptions::new()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut sensors: Vec<Child> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            Command::new(std::env::current_exe()?)
                .args(["sensor", &i.to_string(), n])
                .spawn()
        })
        .collect::<Result<_, _>>()?;

    let mut sel = Select::new();
    // The select holds owned handles, not borrows: the receivers stay ours to use.
    let arms: Vec<usize> = receivers.iter().map(|rx| sel.recv(rx)).collect();
    let mut counts = [0u32; 3];
    let mut open = 3;
    let mut idle_ticks = 0;
    while open > 0 {
        let ready = match sel.select_timeout(Duration::from_millis(100)) {
            Ok(ready) => ready,
            Err(SelectError::Timeout) => {
                idle_ticks += 1; // housekeeping would go here
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let k = arms.iter().position(|&a| a == ready.index()).unwrap_or(0);
        match receivers[k].try_recv() {
            Ok(r) => {
                assert_eq!(
                    (r.sensor, r.seq),
                    (k as u32, counts[k]),
                    "in order per sensor"
                );
                counts[k] += 1;
            }
            Err(RecvError::Empty) => {} // readiness is a hint
            Err(RecvError::Disconnected) => {
                println!("monitor: sensor {k} left after {} readings", counts[k]);
                sel.remove(ready.index());
                open -= 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    for child in &mut sensors {
        child.wait()?;
    }
    println!("monitor: {counts:?} readings from the three sensors, {idle_ticks} idle ticks");
    Ok(())
}
