//! Runs the real `ringway bench` with tiny windows and checks its outputs: the JSON Lines
//! shape, the SVG, the table. Never asserts a speed (the machine is shared); every run has a
//! deadline.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

mod common;
use common::ringway_in as ringway;

const FIELDS: [&str; 10] = [
    "transport",
    "workload",
    "msg_size",
    "p50_ns",
    "p99_ns",
    "p999_ns",
    "max_ns",
    "msgs_per_sec",
    "bytes_per_sec",
    "trials",
];
const TRANSPORTS: [&str; 23] = [
    "ringway-spsc",
    "ringway-spsc-blocking",
    "ringway-spsc-park",
    "ringway-spsc-loan",
    "ringway-async",
    "ringway-async-park",
    "ringway-mpmc",
    "ringway-select-1",
    "ringway-select-16",
    "ringway-spsc-batch8",
    "ringway-spsc-batch32",
    "ringway-spsc-batch256",
    "ringway-fanout1",
    "ringway-fanout2",
    "ringway-fanout4",
    "pipe",
    "unix-stream",
    "unix-seqpacket",
    "tcp",
    "tokio-unix",
    "shm-flag",
    "ringway-vs-floor",
    "memcpy",
];
/// The fields `ringway-vs-floor` rows carry besides [`FIELDS`].
const FLOOR_FIELDS: [&str; 2] = ["floor_p50_ns", "vs_floor"];

/// A fresh directory for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Parses a JSON Lines file and checks every row has exactly the documented fields, with
/// values of the right kinds and plausible (never speed-dependent) relations.
fn rows(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).expect("the JSON file was written");
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    for row in &rows {
        let obj = row.as_object().expect("each line is an object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut expected = FIELDS.to_vec();
        if row["transport"] == "ringway-vs-floor" {
            expected.extend(FLOOR_FIELDS);
            let (p50, floor) = (row["p50_ns"].as_f64(), row["floor_p50_ns"].as_f64());
            let ratio = row["vs_floor"].as_f64().expect("vs_floor is a number");
            assert!(
                (ratio - p50.unwrap() / floor.unwrap()).abs() < 1e-9,
                "vs_floor = p50 / floor p50: {row}"
            );
        }
        expected.sort_unstable();
        assert_eq!(keys, expected, "{row}");
        assert!(
            TRANSPORTS.contains(&row["transport"].as_str().unwrap()),
            "{row}"
        );
        assert!(row["msg_size"].as_u64().unwrap() >= 8, "{row}");
        assert!(row["trials"].as_u64().unwrap() >= 1, "{row}");
        let latency = ["p50_ns", "p99_ns", "p999_ns", "max_ns"];
        let rate = ["msgs_per_sec", "bytes_per_sec"];
        match row["workload"].as_str().unwrap() {
            "pingpong" => {
                let l: Vec<u64> = latency
                    .iter()
                    .map(|f| row[f].as_u64().expect("latency is an integer"))
                    .collect();
                assert!(
                    l[0] > 0 && l.windows(2).all(|w| w[0] <= w[1]),
                    "percentiles must be ordered: {row}"
                );
                assert!(rate.iter().all(|f| row[f].is_null()), "{row}");
            }
            "throughput" => {
                let msgs = row["msgs_per_sec"].as_f64().unwrap();
                let bytes = row["bytes_per_sec"].as_f64().unwrap();
                assert!(msgs > 0.0, "{row}");
                let size = row["msg_size"].as_f64().unwrap();
                assert!(
                    (bytes - msgs * size).abs() <= bytes * 1e-9,
                    "bytes/s = msgs/s * size: {row}"
                );
                assert!(latency.iter().all(|f| row[f].is_null()), "{row}");
            }
            other => panic!("unknown workload {other}: {row}"),
        }
    }
    rows
}

/// The bench's channel names in /dev/shm.
fn bench_segments() -> Vec<String> {
    fs::read_dir("/dev/shm")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|name| name.starts_with("ringway-bench-"))
                .collect()
        })
        .unwrap_or_default()
}

fn has(rows: &[Value], transport: &str, workload: &str, size: u64) -> bool {
    rows.iter()
        .any(|r| r["transport"] == transport && r["workload"] == workload && r["msg_size"] == size)
}

#[test]
fn tiny_run_writes_json_lines_a_table_and_an_svg() {
    let dir = scratch("tiny");
    let args = [
        "bench",
        "--sizes",
        "64",
        "--trials",
        "3",
        "--transports",
        "pipe,unix-stream",
        "--measure-ms",
        "20",
        "--json",
        "out.jsonl",
        "--plot",
        "out.svg",
    ];
    let run = ringway(&dir, &args, Duration::from_secs(120));
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);

    let rows = rows(&dir.join("out.jsonl"));
    assert_eq!(
        rows.len(),
        4,
        "2 transports x 2 workloads x 1 size: {rows:?}"
    );
    for t in ["pipe", "unix-stream"] {
        for w in ["pingpong", "throughput"] {
            assert!(has(&rows, t, w, 64), "missing {t} {w}");
        }
    }
    assert!(rows.iter().all(|r| r["trials"] == 3));
    // stderr is a file here, not a terminal: one progress line per measurement, instead of a
    // silent run (12 = 2 transports x 2 workloads x 1 size x 3 trials).
    let progress: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(progress.len(), 12, "{}", run.stderr);
    assert!(
        progress[0].starts_with("[1/12] trial 1/3: pipe pingpong 64 B"),
        "{progress:?}"
    );

    for fact in ["machine:", "pinning:", "ROUND-TRIP", "vs pipe", "3 trials"] {
        assert!(
            run.stdout.contains(fact),
            "stdout lacks {fact:?}:\n{}",
            run.stdout
        );
    }
    let svg = fs::read_to_string(dir.join("out.svg")).expect("the SVG was written");
    assert!(
        svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
        "not an SVG document"
    );
    assert_eq!(
        svg.matches("<text").count(),
        svg.matches("</text>").count(),
        "unbalanced text elements"
    );
    assert!(
        svg.contains("unix-stream") && svg.contains("<circle"),
        "no series drawn"
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn every_transport_produces_its_rows() {
    let dir = scratch("all");
    let args = [
        "bench",
        "--sizes",
        "64,64K",
        "--trials",
        "1",
        "--measure-ms",
        "10",
        "--json",
        "all.jsonl",
    ];
    let before = bench_segments();
    let run = ringway(&dir, &args, Duration::from_secs(180));
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    let left: Vec<String> = bench_segments()
        .into_iter()
        .filter(|name| !before.contains(name))
        .collect();
    assert!(
        left.is_empty(),
        "the ringway rows left {left:?} in /dev/shm"
    );
    let rows = rows(&dir.join("all.jsonl"));
    for size in [64, 65536] {
        // Every message transport runs both workloads; the floors are checked below.
        for t in TRANSPORTS.iter().filter(|t| {
            !["shm-flag", "memcpy", "ringway-vs-floor"].contains(t)
                && !t.contains("-batch")
                && !t.contains("-fanout")
        }) {
            assert!(
                has(&rows, t, "pingpong", size) && has(&rows, t, "throughput", size),
                "missing {t} {size}"
            );
        }
        assert!(
            has(&rows, "shm-flag", "pingpong", size) && !has(&rows, "shm-flag", "throughput", size)
        );
        assert!(
            has(&rows, "memcpy", "throughput", size) && !has(&rows, "memcpy", "pingpong", size)
        );
        assert!(
            has(&rows, "ringway-vs-floor", "pingpong", size)
                && !has(&rows, "ringway-vs-floor", "throughput", size)
        );
    }
    // The batch rows are throughput rows of small messages (64 KiB is unavailable to them).
    for t in TRANSPORTS.iter().filter(|t| t.contains("-batch")) {
        assert!(has(&rows, t, "throughput", 64), "missing {t} 64");
        assert!(!has(&rows, t, "pingpong", 64) && !has(&rows, t, "throughput", 65536));
    }
    // The fan-out rows are throughput rows, of every size.
    for t in TRANSPORTS.iter().filter(|t| t.contains("-fanout")) {
        for size in [64, 65536] {
            assert!(has(&rows, t, "throughput", size), "missing {t} {size}");
            assert!(!has(&rows, t, "pingpong", size));
        }
    }
    assert_eq!(
        rows.len(),
        71,
        "16 ping-pong and 15 throughput rows per size, 3 batch rows and 3 fan-out rows per size"
    );
    // The table names the busy-spinning rows, and prints no ratio for the no-payload floor.
    assert!(
        run.stdout.contains("ringway-spsc (busy-spin)"),
        "{}",
        run.stdout
    );
    for line in run.stdout.lines().filter(|l| l.starts_with("shm-flag ")) {
        assert!(line.trim_end().ends_with(" -"), "{line}");
    }
    assert!(!run.stdout.contains("0.00x"), "{}", run.stdout);
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn bad_arguments_are_refused_with_a_reason() {
    let dir = scratch("args");
    let run = ringway(&dir, &["bench", "--sizes", "4KB"], Duration::from_secs(30));
    assert!(!run.status.success());
    assert!(run.stderr.contains("ambiguous"), "{}", run.stderr);
    let run = ringway(
        &dir,
        &["bench", "--transports", "carrier-pigeon"],
        Duration::from_secs(30),
    );
    assert!(!run.status.success());
    assert!(
        run.stderr.contains("possible values: ringway-spsc"),
        "{}",
        run.stderr
    );
    let _ = fs::remove_dir_all(dir);
}
