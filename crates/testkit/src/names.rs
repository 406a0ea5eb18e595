//! Names no other test uses: per process (the pid) and per call (a counter).

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// One counter for every name this process hands out, so a name made by
/// [`unique_posix_name`] never starts with the prefix of a
/// [`LeakScope`](crate::LeakScope).
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// What this process handed out, for the final check of
/// [`harness::main`](crate::harness::main).
pub(crate) static HANDED_OUT: Mutex<HandedOut> = Mutex::new(HandedOut {
    keys: Vec::new(),
    paths: Vec::new(),
});

#[derive(Debug)]
pub(crate) struct HandedOut {
    pub(crate) keys: Vec<i32>,
    pub(crate) paths: Vec<PathBuf>,
}

/// The top byte of every key [`unique_sysv_key`] makes (`'R'`), so leak
/// checks and people reading `ipcs -m` can tell test segments apart.
pub const SYSV_KEY_TAG: i32 = 0x52;

pub(crate) fn next() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// The prefix of every POSIX name this process hands out:
/// `/ringway-test-<pid>-`.
pub fn process_posix_prefix() -> String {
    format!("/ringway-test-{}-", std::process::id())
}

fn check_tag(tag: &str) {
    assert!(
        !tag.contains('/') && !tag.contains('\0') && tag.len() <= 64,
        "testkit: a name tag has no '/' or NUL and at most 64 bytes: {tag:?}"
    );
}

/// A POSIX shm name no one else uses: `/ringway-test-<pid>-<counter>-<tag>`.
///
/// # Panics
///
/// If `tag` contains `/` or NUL, or is longer than 64 bytes.
pub fn unique_posix_name(tag: &str) -> String {
    check_tag(tag);
    format!("{}{}-{tag}", process_posix_prefix(), next())
}

/// A SysV key no segment uses now: the top byte is [`SYSV_KEY_TAG`], then 12
/// bits of the pid and 12 bits of a counter; keys taken by an existing
/// segment are skipped.
pub fn unique_sysv_key() -> i32 {
    let pid = std::process::id() as i32 & 0xfff;
    loop {
        let n = next() as i32 & 0xfff;
        let key = (SYSV_KEY_TAG << 24) | (pid << 12) | n;
        // SAFETY: shmget with size 0 and no IPC_CREAT only looks the key up.
        let taken = unsafe { libc::shmget(key, 0, 0) } != -1
            || std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT);
        if !taken {
            HANDED_OUT
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .keys
                .push(key);
            return key;
        }
    }
}

/// A path in the temporary directory that does not exist yet:
/// `$TMPDIR/ringway-test-<pid>-<counter>-<tag>`.
///
/// # Panics
///
/// As [`unique_posix_name`].
pub fn unique_temp_path(tag: &str) -> PathBuf {
    check_tag(tag);
    let path = std::env::temp_dir().join(format!(
        "ringway-test-{}-{}-{tag}",
        std::process::id(),
        next()
    ));
    HANDED_OUT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .paths
        .push(path.clone());
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_recognisable() {
        let a = unique_posix_name("x");
        let b = unique_posix_name("x");
        assert_ne!(a, b);
        assert!(a.starts_with(&process_posix_prefix()));
        let key = unique_sysv_key();
        assert_eq!(key >> 24, SYSV_KEY_TAG);
        assert_ne!(key, unique_sysv_key());
        assert_ne!(unique_temp_path("t"), unique_temp_path("t"));
    }

    #[test]
    #[should_panic(expected = "no '/'")]
    fn tags_with_a_slash_are_refused() {
        unique_posix_name("a/b");
    }
}
