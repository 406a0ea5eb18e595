//! Channels the way services run: peers in other pid namespaces (as containers sharing
//! `/dev/shm` are), peers that come back after their predecessor died, and blocked calls that
//! are interrupted. The tests run as root (creating a pid namespace needs it).

#[path = "../common/mod.rs"]
mod common;
mod interrupts;
mod lifetimes;
mod namespaces;
mod takeover;

use std::time::Duration;

use libtest_mimic::Trial;
use ringway_channel::ChannelOptions;

const INTERVAL: Duration = Duration::from_millis(20);

fn opts() -> ChannelOptions {
    ChannelOptions::new()
        .capacity(64)
        .open_timeout(Duration::from_secs(30))
        .liveness_interval(INTERVAL)
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("child: {key} not set"))
}

/// Writes this process's pid as the host sees it (the first field of `/proc/self/stat`: a
/// child in a new pid namespace without its own `/proc` reads the host's) to `PIDFILE`.
fn report_host_pid() {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let pid = stat.split_ascii_whitespace().next().unwrap();
    let path = env("PIDFILE");
    std::fs::write(format!("{path}.tmp"), pid).unwrap();
    std::fs::rename(format!("{path}.tmp"), path).unwrap();
}

fn kill9(pid: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Waits for a child to write its pid to `pidfile` (see `report_host_pid`), then removes the
/// file and returns the pid.
fn pid_from(pidfile: &std::path::Path) -> i32 {
    let start = std::time::Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(pidfile) {
            let _ = std::fs::remove_file(pidfile);
            return text.trim().parse().unwrap();
        }
        assert!(
            start.elapsed() < common::TIMEOUT,
            "the child never got ready"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn main() {
    let tests = vec![
        Trial::test(
            "a_sender_in_another_pid_namespace_is_judged_right",
            namespaces::a_sender_in_another_pid_namespace_is_judged_right,
        ),
        Trial::test(
            "a_sender_in_another_user_and_pid_namespace_is_judged_right",
            namespaces::a_sender_in_another_user_and_pid_namespace_is_judged_right,
        ),
        Trial::test(
            "a_receiver_in_another_pid_namespace_is_judged_right",
            namespaces::a_receiver_in_another_pid_namespace_is_judged_right,
        ),
        Trial::test(
            "a_tool_sees_a_party_in_another_namespace_alive_until_it_dies",
            namespaces::a_tool_sees_a_party_in_another_namespace_alive_until_it_dies,
        ),
        Trial::test(
            "interrupt_a_blocked_recv_from_a_thread",
            interrupts::interrupt_a_blocked_recv_from_a_thread,
        ),
        Trial::test(
            "interrupt_a_send_on_a_full_ring",
            interrupts::interrupt_a_send_on_a_full_ring,
        ),
        Trial::test(
            "interrupt_an_open_waiting_for_its_creator",
            interrupts::interrupt_an_open_waiting_for_its_creator,
        ),
        Trial::test(
            "sigint_ends_a_blocked_recv_cleanly",
            interrupts::sigint_ends_a_blocked_recv_cleanly,
        ),
        Trial::test(
            "a_name_left_by_a_killed_creator_is_taken_over",
            takeover::a_name_left_by_a_killed_creator_is_taken_over,
        ),
        Trial::test(
            "racing_takeovers_have_exactly_one_winner",
            takeover::racing_takeovers_have_exactly_one_winner,
        ),
        Trial::test(
            "a_service_lives_through_a_hundred_client_lifetimes",
            lifetimes::a_service_lives_through_a_hundred_client_lifetimes,
        ),
        Trial::test(
            "a_thousand_sender_lifetimes_on_one_spsc_channel",
            lifetimes::a_thousand_sender_lifetimes_on_one_spsc_channel,
        ),
        Trial::test(
            "a_thousand_receiver_lifetimes_on_one_spsc_channel",
            lifetimes::a_thousand_receiver_lifetimes_on_one_spsc_channel,
        ),
    ];
    let mut roles = common::ROLES.to_vec();
    roles.extend_from_slice(&[
        ("ns-relay", namespaces::role_ns_relay as fn() -> i32),
        ("ns-send", namespaces::role_ns_send),
        ("ns-recv", namespaces::role_ns_recv),
        ("ns-hold", namespaces::role_ns_hold),
        ("sigint-recv", interrupts::role_sigint_recv),
        ("hold", takeover::role_hold),
        ("client", lifetimes::role_client),
        ("spsc-send", lifetimes::role_spsc_send),
        ("spsc-recv", lifetimes::role_spsc_recv),
    ]);
    ringway_testkit::harness::main(tests, &roles);
}
