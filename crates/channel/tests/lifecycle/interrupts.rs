//! Blocked calls woken by an `Interrupt`, from a thread and from a signal handler.

use std::time::{Duration, Instant};

use libtest_mimic::Failed;
use ringway_channel::{Receiver, RecvError, SendError, Sender};
use ringway_testkit::{LeakScope, spawn_role};

use super::common::{Msg, TIMEOUT};
use super::{env, opts, report_host_pid};

/// A blocked `recv` woken from another thread returns `Interrupted`; nothing is lost (what is
/// sent afterwards is received once the flag is cleared), and the flag is sticky until then.
pub(crate) fn interrupt_a_blocked_recv_from_a_thread() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("int-recv");
    let stop = ringway_channel::Interrupt::new();
    let o = opts().interrupt(stop.clone());
    let mut tx = Sender::<Msg>::create(&name, &o)?;
    let mut rx = Receiver::<Msg>::open(&name, &o)?;
    tx.send(Msg::new(0, 0))?;
    assert_eq!(rx.recv(), Ok(Msg::new(0, 0)));
    let waker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            stop.interrupt();
        })
    };
    assert_eq!(rx.recv(), Err(RecvError::Interrupted));
    waker.join().unwrap();
    // Sticky: a call that would wait returns at once; one that need not wait completes, and
    // non-blocking ones are not affected.
    assert_eq!(rx.recv_timeout(TIMEOUT), Err(RecvError::Interrupted));
    assert_eq!(rx.try_recv(), Err(RecvError::Empty));
    tx.send_timeout(Msg::new(0, 1), TIMEOUT)?;
    assert_eq!(
        rx.recv(),
        Ok(Msg::new(0, 1)),
        "a message that is there is received"
    );
    assert_eq!(rx.recv(), Err(RecvError::Interrupted));
    stop.clear();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        tx.send(Msg::new(0, 2)).map(|()| tx)
    });
    assert_eq!(rx.recv(), Ok(Msg::new(0, 2)), "cleared: recv waits again");
    drop(sender.join().unwrap()?);
    Ok(())
}

/// A send blocked on a full ring, interrupted, hands its value back and sends nothing; the
/// receiver then gets exactly what was sent before.
pub(crate) fn interrupt_a_send_on_a_full_ring() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("int-send");
    let stop = ringway_channel::Interrupt::new();
    let o = opts().capacity(4).interrupt(stop.clone());
    let mut tx = Sender::<Msg>::create(&name, &o)?;
    let mut rx = Receiver::<Msg>::open(&name, &o)?;
    let mut sent = 0;
    while tx.try_send(Msg::new(1, sent)).is_ok() {
        sent += 1;
    }
    let waker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            stop.interrupt();
        })
    };
    match tx.send(Msg::new(1, sent)) {
        Err(SendError::Interrupted { value, .. }) => assert_eq!(value, Msg::new(1, sent)),
        other => return Err(format!("expected Interrupted, got {other:?}").into()),
    }
    waker.join().unwrap();
    for seq in 0..sent {
        assert_eq!(rx.try_recv(), Ok(Msg::new(1, seq)));
    }
    assert_eq!(rx.try_recv(), Err(RecvError::Empty), "nothing half-sent");
    Ok(())
}

/// `open` waiting for a creator that never comes is interrupted too.
pub(crate) fn interrupt_an_open_waiting_for_its_creator() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("int-open");
    let stop = ringway_channel::Interrupt::new();
    let waker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            stop.interrupt();
        })
    };
    let started = Instant::now();
    let result = Receiver::<Msg>::open(&name, &opts().open_timeout(TIMEOUT).interrupt(stop));
    waker.join().unwrap();
    assert!(
        matches!(result, Err(ringway_channel::Error::Interrupted { .. })),
        "{result:?}"
    );
    assert!(started.elapsed() < TIMEOUT / 2);
    Ok(())
}

/// The flag raised from a signal handler. Role `sigint-recv` creates `ADDR`, installs a SIGINT
/// handler that raises the channel's interrupt (an atomic store and a futex wake: nothing
/// else), says it is ready, and blocks in `recv`; on `Interrupted` it drops the receiver and
/// exits 0. The test sends SIGINT and checks the exit code and that the name is gone.
static SIGNAL_STOP: std::sync::OnceLock<ringway_channel::Interrupt> = std::sync::OnceLock::new();

extern "C" fn on_sigint(_: libc::c_int) {
    if let Some(stop) = SIGNAL_STOP.get() {
        stop.interrupt();
    }
}

pub(crate) fn role_sigint_recv() -> i32 {
    let stop = SIGNAL_STOP
        .get_or_init(ringway_channel::Interrupt::new)
        .clone();
    // SAFETY: `on_sigint` only reads a OnceLock that is already initialised (an atomic load)
    // and calls `Interrupt::interrupt` (an atomic store and a futex system call): it is
    // async-signal-safe. The sigaction struct is fully initialised before use.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()) != 0 {
            return 2;
        }
    }
    let mut rx = Receiver::<Msg>::create(env("ADDR").as_str(), &opts().interrupt(stop)).unwrap();
    report_host_pid();
    let code = match rx.recv() {
        Err(RecvError::Interrupted) => 0,
        other => {
            eprintln!("sigint-recv: {other:?}");
            1
        }
    };
    drop(rx);
    code
}

pub(crate) fn sigint_ends_a_blocked_recv_cleanly() -> Result<(), Failed> {
    let scope = LeakScope::new();
    let name = scope.posix_name("sigint");
    let pidfile = scope.temp_path("sigint-pid");
    let pidfile_str = pidfile.to_str().unwrap().to_owned();
    let child = spawn_role("sigint-recv", &[("ADDR", &name), ("PIDFILE", &pidfile_str)]);
    let pid = super::pid_from(&pidfile);
    std::thread::sleep(Duration::from_millis(50)); // let it block in recv
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let code = child.expect_exit(TIMEOUT);
    assert_eq!(code, 0, "the child did not end cleanly on SIGINT");
    assert!(
        !std::path::Path::new("/dev/shm").join(&name[1..]).exists(),
        "the name was left in /dev/shm"
    );
    Ok(())
}
