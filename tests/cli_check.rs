//! The built `kekkai` binary: `check`, `explain --json`, `schema`, `export` and `man`, as a user
//! runs them.
//!
//! `check` exits 0 for valid policies and 1 for invalid ones, printing `file:line:col: key.path:
//! message` and never a panic or a backtrace; a wrong command line exits 2. `explain --json`
//! lists the 13 launch steps in order. `schema` is a JSON Schema that accepts every shipped
//! policy and rejects unknown keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use kekkai::plan::steps::ORDER;
use rstest::rstest;
use serde_json::Value;

use support::{Scratch, Who, stderr, stdout};

const BIN: &str = env!("CARGO_BIN_EXE_kekkai");

/// Runs kekkai in `dir` with a small, fixed environment (no RUST_BACKTRACE, so a panic would
/// show its hint).
fn kekkai(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir)
        .env("LANG", "C.UTF-8")
        .output()
        .unwrap()
}

fn assert_no_panic(out: &Output) {
    let err = stderr(out);
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(!err.contains(bad), "`{bad}` in stderr:\n{err}");
    }
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[path = "cli_check/check.rs"]
mod check;

#[path = "cli_check/explain.rs"]
mod explain;

#[path = "cli_check/export.rs"]
mod export;

// ── finding policies by name ─────────────────────────────────────────────────────────────────

/// `./.kekkai/NAME.yaml` is used only when the caller could have written it alone.
#[test]
fn a_policy_found_by_name_must_be_trustworthy() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Scratch::new("lookup");
    let own = dir.path().join(".kekkai");
    std::fs::create_dir(&own).unwrap();
    std::fs::write(own.join("mine.yaml"), "version: 1\nname: mine\n").unwrap();
    std::fs::write(own.join("untrusted.yaml"), "version: 1\nname: planted\n").unwrap();
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        own.join("untrusted.yaml"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();

    let out = kekkai(dir.path(), &["explain", "-p", "mine", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("\"mine\""), "{}", stdout(&out));

    // The planted, world-writable file is passed over for the shipped policy.
    let out = kekkai(dir.path(), &["explain", "-p", "untrusted", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("planted"), "{}", stdout(&out));
    assert!(
        stderr(&out)
            .contains("passing over .kekkai/untrusted.yaml: the file is writable by everyone"),
        "{}",
        stderr(&out)
    );
    let out = kekkai(dir.path(), &["policies"]);
    assert!(stdout(&out).contains("passed over"), "{}", stdout(&out));

    // A bare word is a name even when a file of that name exists.
    std::fs::write(dir.path().join("default"), "version: 1\nname: file\n").unwrap();
    let out = kekkai(dir.path(), &["explain", "-p", "default", "--json"]);
    assert!(!stdout(&out).contains("\"file\""), "{}", stdout(&out));
    let out = kekkai(dir.path(), &["explain", "-p", "./default", "--json"]);
    assert!(stdout(&out).contains("\"file\""), "{}", stdout(&out));
}
