//! The documents agree with the code about truncation: since the `SIGBUS` guard, a peer that
//! truncates a POSIX object, a file or an unsealed memfd costs the others their data, not their
//! life. A sentence that still says it kills (without "would", as in "without the guard it
//! would") fails this test, wherever it is: README, `docs/`, doc comments, error texts.

use std::path::{Path, PathBuf};

use libtest_mimic::{Failed, Trial};

use super::TestFn;

/// Words that make a sentence about death by `SIGBUS` a hypothetical, a negation, or about
/// something other than a truncation.
const HEDGES: &[&str] = &["would", "not kill", "does not", "guard", "not a truncation"];
const DEATH: &[&str] = &["die of", "dies of", "crash", "kill"];

/// Prose of a file: all of a Markdown file; the comments and string literals of a Rust file.
fn prose(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    if path.extension().is_some_and(|e| e == "md") {
        return text;
    }
    text.lines()
        .map(str::trim)
        .filter(|line| line.starts_with("//") || line.starts_with('"') || line.ends_with('\\'))
        .map(|line| line.trim_start_matches('/').trim_start_matches('!'))
        .map(|line| line.trim_end_matches('\\'))
        .collect::<Vec<_>>()
        .join(" ")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "md" || e == "rs") {
            out.push(path);
        }
    }
}

/// Sentences that say a truncation kills, in so many words.
fn deadly_claims(text: &str) -> Vec<String> {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    flat.split(". ")
        .filter(|s| {
            let lower = s.to_lowercase();
            lower.contains("sigbus")
                && lower.contains("truncat")
                && DEATH.iter().any(|w| lower.contains(w))
                && !HEDGES.iter().any(|w| lower.contains(w))
        })
        .map(str::to_owned)
        .collect()
}

fn no_document_says_truncation_kills() -> Result<(), Failed> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut paths = Vec::new();
    for dir in ["docs", "crates", "benches", "fuzz"] {
        files(&root.join(dir), &mut paths);
    }
    paths.push(root.join("README.md"));
    let mut found = Vec::new();
    for path in &paths {
        // This file quotes the claims it looks for.
        if path.ends_with("tests/region/docs.rs") {
            continue;
        }
        for claim in deadly_claims(&prose(path)) {
            found.push(format!("{}: {claim}", path.display()));
        }
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "these say a truncation kills, which the SIGBUS guard prevents:\n{}",
            found.join("\n")
        )
        .into())
    }
}

fn the_check_catches_what_it_looks_for() -> Result<(), Failed> {
    // The sentences this test was written for (region docs and the Unsealed error text).
    for stale in [
        "A peer could then truncate the object and make this process die of `SIGBUS` on its \
         next access.",
        "without F_SEAL_SHRINK and F_SEAL_GROW a peer could truncate it and crash this process \
         with SIGBUS; create it with Region::create",
        "so no peer can truncate it and kill the others with `SIGBUS`.",
    ] {
        assert_eq!(deadly_claims(stale).len(), 1, "{stale}");
    }
    for fine in [
        "a peer that truncates one would make every other mapper die of `SIGBUS`",
        "Truncating a POSIX shm object does not kill the mapper (a `SIGBUS` ...)",
    ] {
        assert!(deadly_claims(fine).is_empty(), "{fine}");
    }
    Ok(())
}

pub(crate) fn trials() -> Vec<Trial> {
    const TESTS: &[(&str, TestFn)] = &[
        (
            "no_document_says_truncation_kills",
            no_document_says_truncation_kills,
        ),
        (
            "the_check_catches_what_it_looks_for",
            the_check_catches_what_it_looks_for,
        ),
    ];
    super::trials("docs", TESTS)
}
