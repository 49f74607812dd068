//! A suite no one here wrote: CPython's own regression tests (Debian's libpython3.X-testsuite,
//! installed by scripts/setup-test-env) run inside the python, default, build and untrusted
//! policies. On the host, as root, every test of the subset (tests/cpython/subset.txt) passes;
//! inside, the same must hold but for the differences tests/cpython/expected.txt lists with
//! their reasons (what the kernel imposes on any sandbox, and what `untrusted` denies by
//! design). Root only: the compatibility matrix (tests/compat.rs) covers rootless runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use rstest::rstest;
use support::{Mode, Who, World, code, need, run_as, stderr, stdout};

const SUBSET: &str = include_str!("cpython/subset.txt");
const EXPECTED: &str = include_str!("cpython/expected.txt");

/// The modules of the subset.
fn subset() -> Vec<&'static str> {
    SUBSET
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// expected.txt's entries for `policy`: (`ignore` or `skip`, the pattern or module).
fn expected(policy: &str) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    for line in EXPECTED.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (entry, why) = line.split_once(" -- ").expect("every entry says why");
        assert!(!why.trim().is_empty(), "{line}");
        let words: Vec<&str> = entry.split_whitespace().collect();
        let [policies, kind, what] = words[..] else {
            panic!("expected.txt: POLICIES ignore|skip NAME -- why: {line}")
        };
        assert!(kind == "ignore" || kind == "skip", "{line}");
        if policies.split(',').any(|p| p == policy) {
            out.push((kind, what));
        }
    }
    out
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn cpythons_regression_subset_passes_but_for_the_listed_differences(
    #[values("python", "default", "build", "untrusted")] policy: &str,
) {
    need(Who::Root);
    let missing = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import test.support, test.test_os"])
        .status()
        .map_or(true, |s| !s.success());
    if support::skip(missing.then(|| {
        "CPython's test suite is not installed (scripts/setup-test-env installs it)".to_owned()
    })) {
        return;
    }
    // `build` runs as the owner of the current directory, and refuses one root owns.
    let w = World::of_test_user("cpython");
    // `untrusted` as it ships but for its one-minute timeout, which the suite outlasts.
    let file;
    let policy_arg = if policy == "untrusted" {
        file = w.dir.write(
            "untrusted-long.yaml",
            "version: 1\nname: untrusted-long\nextends: untrusted\ntimeout: 10m\n",
        );
        file.display().to_string()
    } else {
        policy.to_owned()
    };
    let entries = expected(policy);
    let mut args: Vec<String> = ["run", "-q", "-p", &policy_arg, "--", "/usr/bin/python3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["-m", "test", "-j2", "--timeout", "300"].map(String::from));
    for (kind, what) in &entries {
        if *kind == "ignore" {
            args.extend(["-i".to_owned(), what.to_string()]);
        }
    }
    for module in subset() {
        if !entries.contains(&("skip", module)) {
            args.push(module.to_owned());
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run_as(&w, Mode::Root, &args);
    assert_eq!(
        code(&o),
        0,
        "{policy}: CPython's regression subset failed beyond tests/cpython/expected.txt:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
}
