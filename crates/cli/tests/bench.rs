//! Runs the real `ringway bench` with tiny windows and checks its outputs: the JSON Lines
//! shape, the SVG, the table. Never asserts a speed (the machine is shared); every run has a
//! deadline. The CPU figures are checked for presence and plausibility only (above zero, at
//! most a couple of CPUs' worth).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

mod common;
use common::ringway_in as ringway;

const FIELDS: [&str; 19] = [
    "transport",
    "workload",
    "msg_size",
    "p50_ns",
    "p99_ns",
    "p999_ns",
    "max_ns",
    "msgs_per_sec",
    "bytes_per_sec",
    "rate_per_sec",
    "kept_up",
    "cpu_a_ns_per_msg",
    "cpu_b_ns_per_msg",
    "cpu_a_pct",
    "cpu_b_pct",
    "capacity_bytes",
    "slots",
    "batch",
    "trials",
];
/// The rows of the idle workload (at the smallest size only).
const IDLE: [&str; 11] = [
    "ringway-spsc",
    "ringway-spsc-blocking",
    "ringway-spsc-park",
    "ringway-async",
    "ringway-async-park",
    "ringway-mpmc",
    "ringway-select-1",
    "ringway-select-16",
    "pipe",
    "unix-stream",
    "tokio-unix",
];
/// The rows of the fixed-rate workload: the default wait strategy, and the kernel's two.
const RATE: [&str; 4] = [
    "ringway-spsc-blocking",
    "ringway-async",
    "pipe",
    "unix-stream",
];
/// Transports that run in one process: no side B.
const ONE_PROCESS: [&str; 1] = ["memcpy"];
const TRANSPORTS: [&str; 27] = [
    "ringway-spsc",
    "ringway-spsc-blocking",
    "ringway-spsc-park",
    "ringway-spsc-loan",
    "ringway-async",
    "ringway-async-park",
    "ringway-mpmc",
    "ringway-mpmc-p1",
    "ringway-mpmc-p2",
    "ringway-mpmc-p4",
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
    "shm-ring",
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

/// How sure a run's CPU figures are to be there.
#[derive(Clone, Copy, PartialEq)]
enum Cpu {
    /// Both sides' (the run's windows hold many messages).
    Both,
    /// The measuring side's; the other side's may be missing: with windows of a few
    /// milliseconds on a loaded machine, a side blocked in a send for a whole window never
    /// sees it open.
    Measuring,
}

/// Parses a JSON Lines file and checks every row has exactly the documented fields, with
/// values of the right kinds and plausible (never speed-dependent) relations.
fn rows(path: &Path, cpu: Cpu) -> Vec<Value> {
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
        let ordered = |row: &Value| {
            let l: Vec<u64> = latency
                .iter()
                .map(|f| row[f].as_u64().expect("latency is an integer"))
                .collect();
            assert!(
                l[0] > 0 && l.windows(2).all(|w| w[0] <= w[1]),
                "percentiles must be ordered: {row}"
            );
        };
        let moved = |row: &Value| {
            let msgs = row["msgs_per_sec"].as_f64().unwrap();
            let bytes = row["bytes_per_sec"].as_f64().unwrap();
            assert!(msgs > 0.0, "{row}");
            let size = row["msg_size"].as_f64().unwrap();
            assert!(
                (bytes - msgs * size).abs() <= bytes * 1e-9,
                "bytes/s = msgs/s * size: {row}"
            );
        };
        let one_process = ONE_PROCESS.contains(&row["transport"].as_str().unwrap());
        let workload = row["workload"].as_str().unwrap();
        match workload {
            "pingpong" => {
                ordered(row);
                assert!(rate.iter().all(|f| row[f].is_null()), "{row}");
            }
            "throughput" => {
                moved(row);
                assert!(latency.iter().all(|f| row[f].is_null()), "{row}");
            }
            "idle" => {
                assert!(latency.iter().all(|f| row[f].is_null()), "{row}");
                assert!(rate.iter().all(|f| row[f].is_null()), "{row}");
            }
            "rate" => {
                assert!(row["rate_per_sec"].as_u64().unwrap() > 0, "{row}");
                assert!(row["kept_up"].is_boolean(), "{row}");
                // The achieved rate and the latencies, unless nothing arrived in the window,
                // which a window of a few milliseconds on a loaded machine can see (B
                // descheduled throughout): then no CPU window of B's. No latencies when the
                // sender sent none of the messages due in the window (it fell behind).
                let nothing = row["msgs_per_sec"].as_f64().unwrap() == 0.0;
                if cpu == Cpu::Both || !nothing {
                    moved(row);
                }
                if row["p50_ns"].is_null() {
                    assert_eq!(row["kept_up"], false, "{row}");
                } else {
                    ordered(row);
                }
                if cpu == Cpu::Measuring && nothing {
                    assert!(row["cpu_b_pct"].is_null(), "{row}");
                    continue;
                }
            }
            other => panic!("unknown workload {other}: {row}"),
        }
        if workload != "rate" {
            assert!(
                row["rate_per_sec"].is_null() && row["kept_up"].is_null(),
                "{row}"
            );
        }
        // `ringway-vs-floor` alternates two kinds of round trip in one window: a CPU figure
        // per message would mix them, so it has none.
        let vs_floor = row["transport"] == "ringway-vs-floor";
        if vs_floor {
            for field in [
                "cpu_a_ns_per_msg",
                "cpu_b_ns_per_msg",
                "cpu_a_pct",
                "cpu_b_pct",
            ] {
                assert!(row[field].is_null(), "{field}: {row}");
            }
        }
        // Each side's CPU over its window: present, above zero per message (an idle row moves
        // one message: a share of a CPU only), at most a couple of CPUs (all threads count).
        let measuring = if workload == "pingpong" || one_process {
            "a"
        } else {
            "b"
        };
        for side in ["a", "b"].into_iter().filter(|_| !vs_floor) {
            let (per_msg, pct) = (
                &row[format!("cpu_{side}_ns_per_msg").as_str()],
                &row[format!("cpu_{side}_pct").as_str()],
            );
            if side == "b" && one_process {
                assert!(per_msg.is_null() && pct.is_null(), "{row}");
                continue;
            }
            if cpu == Cpu::Measuring && side != measuring && pct.is_null() {
                assert!(per_msg.is_null(), "{row}");
                continue;
            }
            let pct = pct
                .as_f64()
                .unwrap_or_else(|| panic!("cpu_{side}_pct: {row}"));
            assert!((0.0..=200.0).contains(&pct), "cpu_{side}_pct: {row}");
            if workload == "idle" {
                assert!(per_msg.is_null(), "{row}");
            } else {
                let ns = per_msg
                    .as_f64()
                    .unwrap_or_else(|| panic!("cpu_{side}_ns_per_msg: {row}"));
                assert!(ns > 0.0 && pct > 0.0, "cpu_{side}: {row}");
            }
        }
        // The buffer and the batch: known for the ringway rows and pipe.
        let transport = row["transport"].as_str().unwrap();
        let size = row["msg_size"].as_u64().unwrap();
        if transport.starts_with("ringway-") || ["pipe", "shm-ring"].contains(&transport) {
            let capacity = row["capacity_bytes"].as_u64().expect("capacity_bytes");
            assert!(capacity >= size.min(65536), "{row}");
            assert!(row["batch"].as_u64().unwrap() >= 1, "{row}");
        }
        if transport.starts_with("ringway-mpmc") || transport.contains("-fanout") {
            assert!(row["slots"].as_u64().unwrap() >= 4, "{row}");
        }
        if transport == "shm-ring" {
            // As many line-aligned slots as the ringway-spsc ring's bytes hold, at least 2.
            assert!(row["slots"].as_u64().unwrap() >= 2, "{row}");
        }
        if ["shm-flag", "memcpy"].contains(&transport) {
            assert!(
                row["batch"].is_null() && row["capacity_bytes"].is_null(),
                "{row}"
            );
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

    let rows = rows(&dir.join("out.jsonl"), Cpu::Both);
    assert_eq!(
        rows.len(),
        10,
        "2 transports x (ping-pong, throughput, idle, 2 rates) x 1 size: {rows:?}"
    );
    for t in ["pipe", "unix-stream"] {
        for w in ["pingpong", "throughput", "idle", "rate"] {
            assert!(has(&rows, t, w, 64), "missing {t} {w}");
        }
        for rate in [100_000, 1_000_000] {
            assert!(
                rows.iter()
                    .any(|r| r["transport"] == t && r["rate_per_sec"] == rate),
                "missing {t} at {rate}/s"
            );
        }
    }
    assert!(rows.iter().all(|r| r["trials"] == 3));
    // stderr is a file here, not a terminal: one progress line per measurement, instead of a
    // silent run (30 = 2 transports x 5 rows x 1 size x 3 trials).
    let progress: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(progress.len(), 30, "{}", run.stderr);
    assert!(
        progress[0].starts_with("[1/30] trial 1/3: pipe pingpong 64 B"),
        "{progress:?}"
    );

    for fact in [
        "machine:",
        "pinning:",
        "ROUND-TRIP",
        "vs pipe",
        "3 trials",
        "cpu A/rt",
        "cpu B/msg",
        "IDLE",
        "FIXED RATE",
        "100 k/s",
    ] {
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
    let rows = rows(&dir.join("all.jsonl"), Cpu::Measuring);
    for size in [64, 65536] {
        // Every message transport runs both workloads; the floors are checked below.
        for t in TRANSPORTS.iter().filter(|t| {
            !["shm-flag", "memcpy", "ringway-vs-floor"].contains(t)
                && !t.contains("-batch")
                && !t.contains("-fanout")
                && !t.contains("-mpmc-p")
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
    // The producer sweep's rows are throughput rows, of every size.
    for t in TRANSPORTS.iter().filter(|t| t.contains("-mpmc-p")) {
        for size in [64, 65536] {
            assert!(has(&rows, t, "throughput", size), "missing {t} {size}");
            assert!(!has(&rows, t, "pingpong", size));
        }
    }
    // The idle rows, at the smallest size only; the fixed-rate rows, at every size and rate.
    for t in IDLE {
        assert!(has(&rows, t, "idle", 64), "missing {t} idle");
        assert!(!has(&rows, t, "idle", 65536));
    }
    for size in [64, 65536] {
        for t in RATE {
            for rate in [100_000, 1_000_000] {
                assert!(
                    rows.iter().any(|r| r["transport"] == t
                        && r["workload"] == "rate"
                        && r["msg_size"] == size
                        && r["rate_per_sec"] == rate),
                    "missing {t} {size} at {rate}/s"
                );
            }
        }
    }
    assert_eq!(
        rows.iter().filter(|r| r["workload"] == "rate").count(),
        RATE.len() * 2 * 2
    );
    assert_eq!(
        rows.len(),
        81 + IDLE.len() + RATE.len() * 2 * 2,
        "17 ping-pong and 16 throughput rows per size, 3 batch rows, 3 fan-out rows and 3 \
         producer-sweep rows per size, the idle rows, the fixed-rate rows per size and rate"
    );
    // The table names the busy-spinning rows, and prints no ratio for the no-payload floor.
    assert!(
        run.stdout.contains("ringway-spsc (busy-spin)"),
        "{}",
        run.stdout
    );
    for line in run.stdout.lines().filter(|l| l.starts_with("shm-flag ")) {
        // ... trials, vs pipe, then the two CPU cells (a number and a unit each).
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[cells.len() - 5], "-", "{line}");
    }
    assert!(!run.stdout.contains("0.00x"), "{}", run.stdout);
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn sizes_from_8_bytes_to_16_mib_carry_their_ring_sizes() {
    let dir = scratch("sizes");
    let args = [
        "bench",
        "--sizes",
        "8,16M",
        "--workloads",
        "pingpong,throughput",
        "--transports",
        "ringway-spsc-blocking,ringway-mpmc,pipe",
        "--trials",
        "1",
        "--measure-ms",
        "50",
        "--json",
        "sizes.jsonl",
    ];
    let run = ringway(&dir, &args, Duration::from_secs(120));
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    // A 16 MiB message can take longer than a window: the follower's CPU may be missing.
    let rows = rows(&dir.join("sizes.jsonl"), Cpu::Measuring);
    assert_eq!(rows.len(), 12, "3 transports x 2 workloads x 2 sizes");
    let get = |t: &str, size: u64, field: &str| {
        rows.iter()
            .find(|r| r["transport"] == t && r["workload"] == "throughput" && r["msg_size"] == size)
            .unwrap_or_else(|| panic!("missing {t} {size}"))[field]
            .clone()
    };
    // An SPSC ring holds four messages, at least 64 KiB; an MPMC ring as many S-byte slots.
    assert_eq!(get("ringway-spsc-blocking", 8, "capacity_bytes"), 65536);
    assert_eq!(
        get("ringway-spsc-blocking", 16 << 20, "capacity_bytes"),
        64u64 << 20
    );
    assert_eq!(get("ringway-spsc-blocking", 8, "slots"), Value::Null);
    assert_eq!(get("ringway-mpmc", 8, "slots"), 8192);
    assert_eq!(get("ringway-mpmc", 16 << 20, "slots"), 4);
    assert_eq!(get("ringway-mpmc", 16 << 20, "capacity_bytes"), 64u64 << 20);
    assert_eq!(get("ringway-mpmc", 8, "batch"), 1);
    // The kernel's pipe buffer, whatever the message size.
    let pipe = get("pipe", 8, "capacity_bytes").as_u64().unwrap();
    assert_eq!(get("pipe", 16 << 20, "capacity_bytes"), pipe);
    assert!(run.stdout.contains("16 MiB"), "{}", run.stdout);
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn idle_and_rate_rows_report_cpu_and_the_achieved_rate() {
    let dir = scratch("idle-rate");
    let args = [
        "bench",
        "--sizes",
        "64",
        "--workloads",
        "idle,rate",
        "--rates",
        "10k,20k",
        "--transports",
        "ringway-spsc,ringway-spsc-blocking,pipe",
        "--trials",
        "1",
        "--measure-ms",
        "50",
        "--json",
        "ir.jsonl",
    ];
    let run = ringway(&dir, &args, Duration::from_secs(120));
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    let rows = rows(&dir.join("ir.jsonl"), Cpu::Both);
    // Idle: every row; a fixed rate: the default wait strategy and pipe, not the spinning row.
    for t in ["ringway-spsc", "ringway-spsc-blocking", "pipe"] {
        assert!(has(&rows, t, "idle", 64), "missing {t} idle");
    }
    assert!(!has(&rows, "ringway-spsc", "rate", 64));
    let rated: Vec<(&str, u64)> = rows
        .iter()
        .filter(|r| r["workload"] == "rate")
        .map(|r| {
            (
                r["transport"].as_str().unwrap(),
                r["rate_per_sec"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rated,
        [
            ("ringway-spsc-blocking", 10_000),
            ("pipe", 10_000),
            ("ringway-spsc-blocking", 20_000),
            ("pipe", 20_000)
        ]
    );
    assert_eq!(rows.len(), 7);
    for fact in [
        "IDLE",
        "cpu B",
        "FIXED RATE",
        "offered",
        "achieved",
        "10.0 k/s",
    ] {
        assert!(
            run.stdout.contains(fact),
            "stdout lacks {fact:?}:\n{}",
            run.stdout
        );
    }
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
    let run = ringway(&dir, &["bench", "--rates", "0"], Duration::from_secs(30));
    assert!(!run.status.success());
    assert!(run.stderr.contains("at least 1"), "{}", run.stderr);
    let _ = fs::remove_dir_all(dir);
}
