//! The second kernel: Debian's Linux 6.1 booted under QEMU by `scripts/test-kernel`, with pure
//! cgroup2 and Landlock ABI 2 — the cgroup v2 limits (kekkai's primary path) and the Landlock
//! degradation rules, which the development host (hybrid cgroups, Landlock ABI 7) can't show.
//!
//! `guest_kernel_suite` runs on the host (as root, so it is ignored without `scripts/test`): it
//! boots the guest and runs this same test binary in it with `--ignored in_guest::`, the tests
//! of [`in_guest`]. Those are ignored on the host, and fail if run there anyway (`scripts/test`
//! runs the host's ignored tests with `--skip in_guest::`); in the guest they run as root and as
//! the unprivileged test user. Each one creates its own cgroup below the parent of the test's
//! cgroup, runs kekkai alone in it (or with other processes, where that is the point), and
//! removes everything it created.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use support::{Who, assert_code, need, skip, stderr, stdout};

/// The tests that run inside the test kernel.
#[path = "guest/in_guest.rs"]
mod in_guest;

/// Boots the test kernel and runs the tests of [`in_guest`] in it.
#[test]
#[ignore = "needs root: run by scripts/test"]
fn guest_kernel_suite() {
    assert!(
        !in_guest::in_guest(),
        "the host's suite runs in the guest: its filter must be `in_guest::`"
    );
    need(Who::Rootless);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-kernel");
    let prep = Command::new(&script).arg("--prepare").output().unwrap();
    if !prep.status.success()
        && skip(Some(format!(
            "the test kernel can't be prepared here (no qemu, or no kernel package to fetch):\n{}",
            stderr(&prep)
        )))
    {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let start = std::time::Instant::now();
    let o = Command::new(&script)
        // A guard against a hung guest, not a measure: QEMU's emulation takes minutes here,
        // and more on a slower or busier host.
        .args(["--timeout", "2400", "--"])
        .arg(&exe)
        .args(["--ignored", "--test-threads=1", "in_guest::"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    println!("{}", stdout(&o));
    eprintln!("{}", stderr(&o));
    eprintln!("guest suite: {:.1}s", start.elapsed().as_secs_f64());
    assert_code(&o, 0);
    let out = stdout(&o);
    let passed: usize = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("test result: ok. ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no test result in the guest's output:\n{out}"));
    assert!(passed >= 20, "only {passed} guest tests ran:\n{out}");
}
