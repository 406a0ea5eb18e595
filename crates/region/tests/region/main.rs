//! Integration tests of ringway-region (being written).
fn main() {}
