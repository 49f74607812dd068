//! Replays every file of `fuzz/corpus/{policy,seccomp,overrides}/` through the same code the
//! fuzz targets run (`fuzz/harness.rs`), so each seed and every crash reproducer saved there
//! is a regression test of the ordinary `cargo test` run. No fuzzer or nightly is needed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

#[path = "../fuzz/harness.rs"]
mod harness;

fn replay(target: &str) {
    let dir = harness::corpus_dir(Path::new(env!("CARGO_MANIFEST_DIR")), target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} has no corpus files", dir.display());
    let mut failed = Vec::new();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        if catch_unwind(AssertUnwindSafe(|| harness::run(target, &data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} `{target}` corpus files panicked (the message of each is printed above):\n  {}",
        failed.len(),
        files.len(),
        failed.join("\n  ")
    );
}

#[test]
fn policy_corpus() {
    replay("policy");
}

#[test]
fn seccomp_corpus() {
    replay("seccomp");
}

#[test]
fn overrides_corpus() {
    replay("overrides");
}

#[test]
fn every_target_is_replayed() {
    for target in harness::TARGETS {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/fuzz_targets")
            .join(format!("{target}.rs"));
        assert!(src.is_file(), "no fuzz target {}", src.display());
    }
}
