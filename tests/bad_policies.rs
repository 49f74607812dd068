//! The malformed-policy corpus: every file under `tests/bad_policies/` is a policy a user could
//! write by mistake (or an attacker on purpose) and `kekkai check` must reject it the same way
//! each time: exit status 1, first line `file:line:column: key.path: message`, no panic.
//!
//! Each file starts with a header comment `# tests: what; expect: PATH` where PATH is the key
//! path the first error names, `(root)` for an error about the document as a whole, or
//! `(parent) PATH` when the error lies in the policy the file extends (another corpus file).
//! A file without a header (the empty file) expects `(root)`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kekkai");
const DIR: &str = "tests/bad_policies";

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// What a file's header promises: (the error is in a parent file, the key path or "").
fn expectation(bytes: &[u8]) -> (bool, String) {
    let text = String::from_utf8_lossy(bytes);
    let Some(first) = text.lines().next().filter(|l| l.starts_with("# tests:")) else {
        return (false, String::new());
    };
    let spec = first.split_once("expect:").map_or("", |(_, s)| s.trim());
    let mut words = spec.split_whitespace();
    let mut word = words.next().unwrap_or("(root)");
    let parent = word == "(parent)";
    if parent {
        word = words.next().unwrap_or("(root)");
    }
    let path = if word == "(root)" { "" } else { word };
    (parent, path.to_owned())
}

/// Checks one file; returns what is wrong with kekkai's answer.
fn verdict(file: &Path) -> Result<(), String> {
    let bytes = std::fs::read(file).unwrap();
    let (parent, want_path) = expectation(&bytes);
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let rel = format!("{DIR}/{name}");
    let out = Command::new(BIN)
        .args(["check", &rel])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent")
        .env("LANG", "C.UTF-8")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        if stderr.contains(bad) {
            return Err(format!("`{bad}` in stderr:\n{stderr}"));
        }
    }
    if out.status.code() != Some(1) {
        return Err(format!("exit status {:?}, want 1\n{stderr}", out.status));
    }
    let first = stderr.lines().next().unwrap_or_default();
    // `FILE:LINE:COL: REST`
    let mut parts = first.splitn(4, ':');
    let (Some(shown), Some(line), Some(col), Some(rest)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("first line is not `file:line:col: ...`: {first}"));
    };
    if line.parse::<u32>().map_or(true, |n| n == 0) || col.parse::<u32>().map_or(true, |n| n == 0) {
        return Err(format!("no line and column: {first}"));
    }
    let shown_is_this = shown == rel;
    if parent == shown_is_this || !shown.starts_with(DIR) {
        return Err(format!(
            "names {shown}, want {}: {first}",
            if parent { "the parent" } else { &rel }
        ));
    }
    let rest = rest.trim_start();
    if !want_path.is_empty() {
        let ok = rest
            .strip_prefix(&want_path)
            .is_some_and(|after| after.starts_with(':') || after.starts_with(['.', '[']));
        if !ok {
            return Err(format!("key path is not `{want_path}`: {first}"));
        }
    }
    if rest.trim().is_empty() {
        return Err(format!("no message: {first}"));
    }
    Ok(())
}

#[test]
fn every_malformed_policy_is_rejected_with_file_position_and_key_path() {
    let files = corpus();
    assert!(
        files.len() >= 250,
        "the corpus shrank to {} files",
        files.len()
    );
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| verdict(f).err().map(|e| format!("{}: {e}", f.display())))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} files:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn several_errors_in_one_file_are_all_reported() {
    let out = Command::new(BIN)
        .args(["check", &format!("{DIR}/315-several-compile-errors.yaml")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for path in [
        "hostname:",
        "limits.pids:",
        "capabilities.keep[0]:",
        "seccomp.allow[0]:",
    ] {
        assert!(stderr.contains(path), "{path} missing:\n{stderr}");
    }
}
