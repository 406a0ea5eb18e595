use ringway_channel::{ChannelOptions, Receiver, Sender};

#[derive(Debug, ringway_channel::Message)]
#[repr(C)]
struct Tick { price: f64, qty: u32, venue: u32 }

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Process A creates the channel and sends:
    let mut tx = Sender::<Tick>::create("/ticks", &ChannelOptions::new())?;
    tx.send(Tick { price: 101.25, qty: 300, venue: 7 })?;

    // Process B (started before or after A: open waits for the creator), with the same
    // struct declared in its own source:
    let mut rx = Receiver::<Tick>::open("/ticks", &ChannelOptions::new())?;
    let tick = rx.recv()?;
    println!("{tick:?}");
    Ok(())
}
