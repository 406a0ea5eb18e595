//! Message sizes in and out (`4K`, `64KiB`, `1M`), and the human formats of the table.

/// The smallest message: throughput messages start with a `u64` sequence number.
pub(crate) const MIN_SIZE: usize = 8;
/// The largest message the bench accepts (each side holds a couple of buffers of it).
pub(crate) const MAX_SIZE: usize = 256 << 20;

/// Parses a message size: a whole number of bytes with an optional binary suffix, any case:
/// `B`; `K`, `Ki`, `KiB` (1024); `M`, `Mi`, `MiB`; `G`, `Gi`, `GiB`. `KB`/`MB`/`GB` are refused
/// as ambiguous (1000 or 1024?).
///
/// # Errors
/// A message naming the problem, for clap to show.
pub(crate) fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits);
    let number: usize = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size: expected e.g. 64, 4K, 64KiB, 1M"))?;
    let unit: usize = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "ki" | "kib" => 1 << 10,
        "m" | "mi" | "mib" => 1 << 20,
        "g" | "gi" | "gib" => 1 << 30,
        s @ ("kb" | "mb" | "gb") => {
            return Err(format!(
                "{text:?}: {s:?} is ambiguous; write K/KiB (1024) or M/MiB, or the number of bytes"
            ));
        }
        s => {
            return Err(format!(
                "{text:?}: unknown unit {s:?} (use B, K, KiB, M, MiB, G, GiB)"
            ));
        }
    };
    let size = number
        .checked_mul(unit)
        .filter(|&s| s <= MAX_SIZE)
        .ok_or_else(|| {
            format!(
                "{text:?} is larger than the largest message the bench sends ({})",
                format_size(MAX_SIZE)
            )
        })?;
    if size < MIN_SIZE {
        return Err(format!(
            "{text:?} is smaller than {MIN_SIZE} bytes (a throughput message carries a u64 sequence number)"
        ));
    }
    Ok(size)
}

/// The highest offered rate `--rates` accepts, messages per second.
pub(crate) const MAX_RATE: u64 = 1_000_000_000;

/// Parses an offered rate in messages per second: a whole number with an optional decimal
/// suffix, any case: `k` (10^3), `M` (10^6), `G` (10^9); an optional `/s`.
///
/// # Errors
/// A message naming the problem, for clap to show.
pub(crate) fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a rate: expected e.g. 100k, 1M, 250000"))?;
    let unit: u64 = match suffix.trim().to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => 1_000,
        "m" => 1_000_000,
        "g" => 1_000_000_000,
        s => return Err(format!("{text:?}: unknown unit {s:?} (use k, M or G)")),
    };
    match number.checked_mul(unit) {
        Some(0) => Err(format!(
            "{text:?}: a rate must be at least 1 message per second"
        )),
        Some(r) if r <= MAX_RATE => Ok(r),
        _ => Err(format!("{text:?} is above {MAX_RATE} messages per second")),
    }
}

/// `64 B`, `4 KiB`, `1.5 KiB`, `1 MiB`.
pub(crate) fn format_size(bytes: usize) -> String {
    const UNITS: [(usize, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if bytes >= unit {
            return format!("{} {name}", trim_float(bytes as f64 / unit as f64));
        }
    }
    format!("{bytes} B")
}

fn trim_float(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Three significant digits: `850`, `12.3`, `1.23`.
fn sig3(x: f64) -> String {
    match x {
        x if x >= 100.0 => format!("{x:.0}"),
        x if x >= 10.0 => format!("{x:.1}"),
        x => format!("{x:.2}"),
    }
}

/// Scales `x` by the first unit it reaches (units from largest to smallest, then `base`).
fn scaled(x: f64, units: &[(f64, &str)], base: &str) -> String {
    for &(unit, name) in units {
        if x >= unit {
            return format!("{} {name}", sig3(x / unit));
        }
    }
    format!("{} {base}", sig3(x))
}

/// A duration in nanoseconds, in the unit that fits: `850 ns`, `12.3 µs`, `1.23 ms`.
pub(crate) fn format_ns(ns: u64) -> String {
    if ns < 1000 {
        return format!("{ns} ns");
    }
    scaled(ns as f64, &[(1e9, "s"), (1e6, "ms"), (1e3, "µs")], "ns")
}

/// Messages per second: `950 /s`, `1.23 M/s`.
pub(crate) fn format_rate(per_sec: f64) -> String {
    scaled(per_sec, &[(1e9, "G/s"), (1e6, "M/s"), (1e3, "k/s")], "/s")
}

/// Bytes per second in decimal units: `512 MB/s`, `1.23 GB/s`.
pub(crate) fn format_bandwidth(bytes_per_sec: f64) -> String {
    scaled(
        bytes_per_sec,
        &[(1e9, "GB/s"), (1e6, "MB/s"), (1e3, "kB/s")],
        "B/s",
    )
}

/// A ratio: `12.3x`, `0.45x`.
pub(crate) fn format_ratio(r: f64) -> String {
    format!("{}x", sig3(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_suffixed_sizes() {
        let ok = |s| parse_size(s).unwrap();
        assert_eq!(ok("64"), 64);
        assert_eq!(ok("64B"), 64);
        assert_eq!(ok("4K"), 4096);
        assert_eq!(ok("4k"), 4096);
        assert_eq!(ok("64KiB"), 65536);
        assert_eq!(ok("64 KiB"), 65536);
        assert_eq!(ok("1M"), 1 << 20);
        assert_eq!(ok("1MiB"), 1 << 20);
        assert_eq!(ok("2mi"), 2 << 20);
        assert_eq!(ok(" 4096 "), 4096);
    }

    #[test]
    fn refuses_bad_sizes_with_a_reason() {
        assert!(parse_size("").unwrap_err().contains("not a size"));
        assert!(parse_size("K").unwrap_err().contains("not a size"));
        assert!(parse_size("4KB").unwrap_err().contains("ambiguous"));
        assert!(parse_size("4X").unwrap_err().contains("unknown unit"));
        assert!(parse_size("4").unwrap_err().contains("smaller than 8"));
        assert!(parse_size("1G").unwrap_err().contains("larger"));
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("-4").is_err());
    }

    #[test]
    fn parses_rates() {
        assert_eq!(parse_rate("100k"), Ok(100_000));
        assert_eq!(parse_rate("1M"), Ok(1_000_000));
        assert_eq!(parse_rate("250000"), Ok(250_000));
        assert_eq!(parse_rate("2m/s"), Ok(2_000_000));
        assert!(parse_rate("0").unwrap_err().contains("at least 1"));
        assert!(parse_rate("2G").unwrap_err().contains("above"));
        assert!(parse_rate("1x").unwrap_err().contains("unknown unit"));
        assert!(parse_rate("fast").unwrap_err().contains("not a rate"));
    }

    #[test]
    fn formats_sizes_durations_and_rates() {
        assert_eq!(format_size(64), "64 B");
        assert_eq!(format_size(4096), "4 KiB");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(1 << 20), "1 MiB");
        assert_eq!(format_ns(850), "850 ns");
        assert_eq!(format_ns(12_345), "12.3 µs");
        assert_eq!(format_ns(1_234_567), "1.23 ms");
        assert_eq!(format_rate(1_234_567.0), "1.23 M/s");
        assert_eq!(format_rate(950.0), "950 /s");
        assert_eq!(format_bandwidth(2.5e9), "2.50 GB/s");
        assert_eq!(format_ratio(12.34), "12.3x");
        assert_eq!(format_ratio(0.456), "0.46x");
    }
}
