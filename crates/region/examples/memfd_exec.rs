//! Two processes share a sealed memfd across `exec`.
//!
//! The parent creates the region, writes a greeting, makes the fd
//! inheritable and runs this program again; the child maps the inherited fd
//! with `Region::from_inherited_fd` (which checks the seals and the size),
//! reads the greeting and writes an answer that the parent prints.
//!
//! ```sh
//! cargo run -p ringway-region --example memfd_exec
//! ```

use std::error::Error;
use std::os::fd::AsRawFd;
use std::process::Command;

use ringway_region::{Backing, Region, RegionOptions};

const FD_VAR: &str = "RINGWAY_EXAMPLE_FD";
const SIZE: usize = 4096;
/// Where the child writes its answer.
const ANSWER_AT: usize = SIZE / 2;

/// Copies `text` into the region at `offset`, NUL-terminated.
fn put(region: &Region, offset: usize, text: &str) {
    assert!(offset + text.len() < region.len());
    // SAFETY: the range lies inside the mapping (checked above); raw copies
    // only, no reference into memory the other process writes.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), region.as_ptr().add(offset), text.len());
        region.as_ptr().add(offset + text.len()).write(0);
    }
}

/// Reads a NUL-terminated string from the region at `offset`.
fn get(region: &Region, offset: usize) -> String {
    let mut bytes = Vec::new();
    for i in offset..region.len() {
        // SAFETY: `i` is inside the mapping; one byte read through a raw pointer.
        let byte = unsafe { region.as_ptr().add(i).read_volatile() };
        if byte == 0 {
            break;
        }
        bytes.push(byte);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn child(fd: i32) -> Result<(), Box<dyn Error>> {
    // SAFETY: the parent kept this fd open across exec for us, and nothing
    // else in this process knows it.
    let region = unsafe { Region::from_inherited_fd(fd, &RegionOptions::new().size(SIZE)) }?;
    let greeting = get(&region, 0);
    put(
        &region,
        ANSWER_AT,
        &format!("child {} read {greeting:?}", std::process::id()),
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    if let Ok(fd) = std::env::var(FD_VAR) {
        return child(fd.parse()?);
    }
    let region = Region::create(
        &Backing::memfd("memfd-exec-example"),
        &RegionOptions::new().size(SIZE),
    )?;
    put(&region, 0, "hello from the parent");
    let fd = region.fd().expect("a memfd has an fd").as_raw_fd();
    region.set_inheritable(true)?;
    let status = Command::new(std::env::current_exe()?)
        .env(FD_VAR, fd.to_string())
        .status();
    region.set_inheritable(false)?;
    if !status?.success() {
        return Err("the child failed".into());
    }
    println!("{}", get(&region, ANSWER_AT));
    Ok(())
}
