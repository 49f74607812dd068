//! The escape battery (`kekkai audit`) under every shipped policy, as root and rootless, with
//! each probe's exact expected verdict; weakened policies must show the escapes they let
//! through, and the unsandboxed control run must show the probes working.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;

use rstest::rstest;
use support::{Mode, Who, World, code, run_as, skip, stderr, stdout, unavailable};

/// probe name → verdict, from `kekkai audit --json`.
fn audit(w: &World, mode: Mode, args: &[&str]) -> (i32, BTreeMap<String, String>) {
    let mut all = vec!["audit", "--json"];
    all.extend_from_slice(args);
    let o = run_as(w, mode, &all);
    let out = stdout(&o);
    let json: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{}", stderr(&o)));
    let verdicts = json["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                format!(
                    "{} ({})",
                    p["verdict"].as_str().unwrap(),
                    p["detail"].as_str().unwrap()
                ),
            )
        })
        .collect();
    (code(&o), verdicts)
}

/// What each probe must say under each shipped policy. Everything not listed is blocked.
fn expected(policy: &str, who: Who, probe: &str) -> &'static str {
    let rootless = who == Who::Rootless;
    match probe {
        // Every writable mount in the shipped policies has a Landlock write rule.
        "fs.write-outside-rules" => "not-applicable",
        // The service shares the host network on purpose.
        "net.host-loopback-tcp" | "net.host-abstract-socket" | "net.interfaces"
            if policy == "service" =>
        {
            "not-applicable"
        }
        // Builds run as their caller: root stays root (without capabilities).
        "identity.setuid-0" if policy == "build" && !rootless => "not-applicable",
        // The build policy's 4G memory and 2G /tmp are more than the probes fill.
        "resources.memory" | "resources.tmpfs-fill" if policy == "build" => "not-applicable",
        // Without a delegated cgroup, best-effort limits are dropped (the service's are hard and
        // its rootless run gets a delegated cgroup).
        "resources.fork-bomb" | "resources.memory" if rootless && policy != "service" => {
            "not-applicable"
        }
        _ => "blocked",
    }
}

#[rstest]
fn every_shipped_policy_stops_every_escape(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values("default", "untrusted", "build", "service")] policy: &str,
) {
    if skip(unavailable(who)) {
        return;
    }
    let w = World::new("escape");
    let mode = match (who, policy) {
        (Who::Root, _) => Mode::Root,
        (Who::Rootless, "service") => Mode::Delegated,
        (Who::Rootless, _) => Mode::Plain,
    };
    let (status, verdicts) = audit(&w, mode, &["-p", policy]);
    assert!(verdicts.len() >= 80, "only {} probes ran", verdicts.len());
    let mut wrong = Vec::new();
    for (name, got) in &verdicts {
        let want = expected(policy, who, name);
        if !got.starts_with(&format!("{want} ")) {
            wrong.push(format!("{name}: want {want}, got {got}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{policy} as {who:?}:\n{}",
        wrong.join("\n")
    );
    assert_eq!(status, 0);
}

#[rstest]
fn a_policy_without_seccomp_lets_kernel_attack_surface_through(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    if skip(unavailable(who)) {
        return;
    }
    let w = World::new("weak-seccomp");
    w.dir.write(
        "weak.yaml",
        "version: 1\nextends: default\nseccomp: { preset: none }\n",
    );
    let (status, verdicts) = audit(&w, Mode::plain(who), &["-p", "./weak.yaml"]);
    assert_eq!(status, 1, "the audit must fail");
    for probe in [
        "kernel.keyctl",
        "kernel.io-uring-setup",
        "kernel.personality",
        "terminal.tiocsti",
        "terminal.tioclinux",
        "fs.open-tree",
        "seccomp.i386-int80",
        "seccomp.ioctl-upper-bits",
        "ns.clone3",
        "net.netlink-socket",
    ] {
        let got = &verdicts[probe];
        assert!(got.starts_with("escaped "), "{probe}: {got}");
    }
    // Layers other than seccomp still hold.
    for probe in [
        "fs.write-usr",
        "caps.effective",
        "net.host-loopback-tcp",
        "process.kill-host-pid",
    ] {
        assert!(
            verdicts[probe].starts_with("blocked "),
            "{probe}: {}",
            verdicts[probe]
        );
    }
}

/// The terminal probes run with a terminal of the audit's own as the controlling terminal, once
/// with stdin /dev/null and once (`.stdin-tty`) with that terminal on stdin and stderr.
/// `terminal: inherit` hands the program the caller's terminal: both show it; `none` and the
/// default `pty` keep it out.
#[rstest]
fn a_policy_that_inherits_the_terminal_lets_the_callers_terminal_through(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values("inherit", "none", "pty")] terminal: &str,
) {
    if skip(unavailable(who)) {
        return;
    }
    let w = World::new("weak-terminal");
    w.dir.write(
        "p.yaml",
        format!("version: 1\nextends: default\nterminal: {terminal}\n"),
    );
    let (status, verdicts) = audit(
        &w,
        Mode::plain(who),
        &["-p", "./p.yaml", "--only", "terminal"],
    );
    assert_eq!(verdicts.len(), 8, "{verdicts:?}");
    let escapes = [
        "terminal.dev-tty",
        "terminal.dev-tty.stdin-tty",
        "terminal.caller-fds.stdin-tty",
    ];
    for (name, got) in &verdicts {
        let want = if terminal == "inherit" && escapes.contains(&name.as_str()) {
            "escaped "
        } else {
            "blocked "
        };
        assert!(got.starts_with(want), "{terminal}: {name}: {got}");
    }
    assert_eq!(status, i32::from(terminal == "inherit"));
}

#[rstest]
fn a_policy_without_landlock_lets_reads_and_execs_outside_the_rules_through(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    if skip(unavailable(who)) {
        return;
    }
    let w = World::new("weak-landlock");
    w.dir.write(
        "weak.yaml",
        "version: 1\nextends: default\nlandlock: { enabled: false }\n",
    );
    // Which file the probe targets is decided from the policy with Landlock on.
    let (_, strong) = audit(&w, Mode::plain(who), &[]);
    let (status, verdicts) = audit(&w, Mode::plain(who), &["-p", "./weak.yaml"]);
    for probe in ["fs.read-outside-rules", "fs.exec-outside-rules"] {
        assert!(
            strong[probe].starts_with("blocked "),
            "{probe}: {}",
            strong[probe]
        );
        assert!(
            verdicts[probe].starts_with("escaped "),
            "{probe}: {}",
            verdicts[probe]
        );
    }
    assert_eq!(status, 1, "the audit must fail");
}

#[rstest]
fn the_policys_own_expectations_are_checked(#[values(Who::Root, Who::Rootless)] who: Who) {
    if skip(unavailable(who)) {
        return;
    }
    let w = World::new("expect");
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\naudit:\n  must-deny: [read:/etc/shadow, write:/usr, connect:127.0.0.1:22, exec:/tmp/x]\n  must-allow: [read:/usr/bin/sh, write:/tmp]\n",
    );
    let (status, verdicts) = audit(
        &w,
        Mode::plain(who),
        &["-p", "./p.yaml", "--only", "expect"],
    );
    assert_eq!(verdicts.len(), 6, "{verdicts:?}");
    for (name, got) in &verdicts {
        assert!(got.starts_with("blocked "), "{name}: {got}");
    }
    assert_eq!(status, 0);
    // An expectation the policy does not meet fails the audit.
    w.dir.write("bad.yaml", "version: 1\nextends: default\naudit:\n  must-allow: [write:/usr]\n  must-deny: [read:/etc/hostname]\n");
    let (status, verdicts) = audit(
        &w,
        Mode::plain(who),
        &["-p", "./bad.yaml", "--only", "expect"],
    );
    assert!(verdicts["must-allow:write:/usr"].starts_with("escaped "));
    assert!(verdicts["must-deny:read:/etc/hostname"].starts_with("escaped "));
    assert_eq!(status, 1);
}

#[test]
fn the_control_run_shows_the_probes_can_succeed() {
    if skip(unavailable(Who::Root)) {
        return;
    }
    let w = World::new("control");
    let (status, verdicts) = audit(&w, Mode::Root, &["--control"]);
    assert_eq!(status, 0, "no probe may be broken");
    for (name, got) in &verdicts {
        assert!(!got.starts_with("error "), "{name}: {got}");
    }
    // Unsandboxed, as root, these work: the probes are not broken.
    for probe in [
        "kernel.keyctl",
        "ns.unshare-user",
        "ns.unshare-mount",
        "proc.core-pattern",
        "caps.effective",
        "net.host-loopback-tcp",
        "net.host-abstract-socket",
        "leak.sysv-shm",
        "process.kill-host-pid",
        "dev.block-devices",
        "terminal.tiocsti",
        "terminal.dev-tty",
        "terminal.caller-fds.stdin-tty",
        "terminal.dev-tty.stdin-tty",
        "seccomp.i386-int80",
    ] {
        assert!(
            verdicts[probe].starts_with("escaped "),
            "{probe}: {}",
            verdicts[probe]
        );
    }
}

/// When the sandbox can't start, `audit` says why (the launcher's own error reaches stderr)
/// and exits 125 without a verdict.
#[test]
fn an_audit_whose_sandbox_fails_says_why() {
    if skip(support::unavailable(Who::Root)) {
        return;
    }
    let w = World::new("audit-fails");
    let o = w
        .command(Who::Root)
        .env("KEKKAI_FAULT", "rootfs:abort")
        .args(["audit", "--json"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("setup died"), "{err}");
    assert!(err.contains("no probe ran"), "{err}");
}
