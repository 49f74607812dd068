//! Snapshots of `kekkai explain` for the embedded default policy and for `network-client` (the
//! shipped policy with `network: user`: pasta, the resolver files and the egress rules).
//!
//! The output depends on the machine and the caller, so the test fixes what it can and
//! normalises the rest before comparing with `tests/snapshots/explain-NAME.txt`:
//!
//! - kekkai runs in a fresh temporary directory with a fixed environment (PATH, LANG, TERM);
//!   that directory is written `${PWD}` in the snapshot;
//! - the policy hash (it covers the expanded `${PWD}`) becomes `<hash>`;
//! - the id maps and the identity (they follow the caller's uid and gid) become `<caller>`,
//!   and the rootless-only `setgroups: deny` line is dropped;
//! - the root's top-level entries (they list the host's `/`) are dropped, and the overlay list
//!   becomes `<host>`;
//! - pasta's `--runas 0` (a root caller's) is dropped, and the count of lines in the
//!   sandbox's `/etc/resolv.conf` (the host's `search` and `options` lines are kept) `<host>`.
//!
//! Everything else — the merged policy, the 13 steps with their order, sides, reasons and the
//! details of this plan — must match line for line.
//!
//! After an intended change to `explain` or to those policies, regenerate the snapshots and
//! review the diff:
//!
//! ```sh
//! KEKKAI_UPDATE_SNAPSHOTS=1 cargo test --test explain_snapshot
//! git diff tests/snapshots/
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::Scratch;

const BIN: &str = env!("CARGO_BIN_EXE_kekkai");

fn snapshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/snapshots/explain-{name}.txt"))
}

/// Runs `kekkai explain` (plus `args`) in a fresh directory and normalises the output.
fn explain(args: &[&str]) -> String {
    let dir = Scratch::new("snapshot");
    let out = Command::new(BIN)
        .arg("explain")
        .args(args)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("TERM", "dumb")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.is_empty(), "stderr:\n{stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    normalise(&text, dir.path())
}

fn normalise(text: &str, pwd: &Path) -> String {
    let text = text.replace(&pwd.display().to_string(), "${PWD}");
    let mut out = String::new();
    let mut step = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        // "  4. [child] rootfs: ..." starts a step.
        if let Some((number, rest)) = trimmed.split_once(". [") {
            if number.chars().all(|c| c.is_ascii_digit()) {
                step = rest
                    .split_once("] ")
                    .map(|(_, r)| r)
                    .unwrap_or_default()
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
        }
        let indent = &line[..line.len() - trimmed.len()];
        let replaced = match (step.as_str(), trimmed) {
            ("plan", t) if t.starts_with("- policy ") && t.contains(", hash ") => {
                let head = t.rsplit_once(", hash ").map(|(h, _)| h).unwrap_or(t);
                Some(format!("{head}, hash <hash>"))
            }
            ("id-maps", t) if t.starts_with("- uid_map: ") => Some("- uid_map: <caller>".into()),
            ("id-maps", t) if t.starts_with("- gid_map: ") => Some("- gid_map: <caller>".into()),
            ("id-maps", t) if t.starts_with("- setgroups: ") => continue,
            ("id-maps", t) if t.starts_with("- pasta: ") => {
                let mut words: Vec<&str> = Vec::new();
                let mut it = t.split(' ');
                while let Some(word) = it.next() {
                    match word {
                        "--runas" => drop(it.next()),
                        _ => words.push(word),
                    }
                }
                Some(words.join(" "))
            }
            ("mounts", t) if t.starts_with("- network.dns: file /etc/resolv.conf (") => Some(
                "- network.dns: file /etc/resolv.conf (read-only, <host> lines written by kekkai)"
                    .into(),
            ),
            ("drop-privileges", t) if t.starts_with("- identity: ") => {
                Some("- identity: <caller>".into())
            }
            ("rootfs", t) if t.starts_with("- overlays: ") => Some("- overlays: <host>".into()),
            ("plan", t) if t.starts_with("- cgroup placement: ") => continue,
            ("landlock", t) if t.contains(", this kernel has ") => {
                let head = t
                    .rsplit_once(", this kernel has ")
                    .map(|(h, _)| h)
                    .unwrap_or(t);
                Some(format!("{head}, this kernel has <kernel>"))
            }
            ("rootfs", t) if t.starts_with("- /") => continue,
            _ => None,
        };
        match replaced {
            Some(r) => out.push_str(&format!("{indent}{r}\n")),
            None => out.push_str(&format!("{line}\n")),
        }
    }
    out
}

#[test]
fn explain_of_the_default_policy_matches_the_snapshot() {
    matches_the_snapshot("default", &explain(&[]));
}

#[test]
fn explain_of_the_network_client_policy_matches_the_snapshot() {
    matches_the_snapshot("network-client", &explain(&["-p", "network-client"]));
}

/// `actual` is `tests/snapshots/explain-NAME.txt` (or becomes it, with KEKKAI_UPDATE_SNAPSHOTS=1).
fn matches_the_snapshot(name: &str, actual: &str) {
    let path = snapshot_path(name);
    if std::env::var_os("KEKKAI_UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with KEKKAI_UPDATE_SNAPSHOTS=1 cargo test --test explain_snapshot",
            path.display()
        )
    });
    if actual != expected {
        let mut report = String::new();
        let (a, e): (Vec<&str>, Vec<&str>) = (actual.lines().collect(), expected.lines().collect());
        for i in 0..a.len().max(e.len()) {
            let (got, want) = (a.get(i).copied(), e.get(i).copied());
            if got != want {
                report.push_str(&format!(
                    "line {}:\n  snapshot: {want:?}\n  actual:   {got:?}\n",
                    i + 1
                ));
            }
        }
        panic!(
            "`kekkai explain` differs from {}:\n{report}\nIf the change is intended: KEKKAI_UPDATE_SNAPSHOTS=1 cargo test --test explain_snapshot\n\nactual output:\n{actual}",
            path.display()
        );
    }
}

#[test]
fn explain_without_a_policy_is_explain_of_the_shipped_default() {
    assert_eq!(explain(&[]), explain(&["-p", "default"]));
}

#[test]
fn the_snapshot_shows_the_13_steps_in_order() {
    let text = std::fs::read_to_string(snapshot_path("default")).unwrap();
    let steps: Vec<String> = text
        .split_once("\nlaunch steps:\n")
        .unwrap()
        .1
        .lines()
        .filter_map(|l| {
            let (n, rest) = l.trim_start().split_once(". [")?;
            let name = rest.split_once("] ")?.1.split(':').next()?;
            Some(format!("{n} {name}"))
        })
        .collect();
    assert_eq!(
        steps,
        [
            "1 plan",
            "2 clone",
            "3 id-maps",
            "4 rootfs",
            "5 mounts",
            "6 pivot-root",
            "7 environment",
            "8 drop-privileges",
            "9 no-new-privs",
            "10 landlock",
            "11 close-fds",
            "12 seccomp",
            "13 exec",
        ]
    );
}

#[test]
fn normalising_hides_only_what_depends_on_the_host() {
    let sample = "launch steps:
  1. [parent] plan: x
       - policy default (<shipped>/default.yaml), hash 0123456789abcdef
  3. [parent] id-maps: x
       - uid_map: 1000 1000 1
       - gid_map: 1000 1000 1
       - setgroups: deny
       - pasta: /usr/bin/pasta --quiet --runas 0 --pid /proc/self/fd/5
  4. [child] rootfs: x
       - root: read-only over / (skeleton tmpfs 256M)
       - overlays: /etc /usr
       - /bin -> usr/bin
  5. [child] mounts: x
       - mounts[5]: bind /tmp/x → /tmp/x (read-only)
       - /tmp/x stays
       - network.dns: file /etc/resolv.conf (read-only, 4 lines written by kekkai)
  8. [child] drop-privileges: x
       - identity: uid 1000 gid 1000 groups []
";
    let want = "launch steps:
  1. [parent] plan: x
       - policy default (<shipped>/default.yaml), hash <hash>
  3. [parent] id-maps: x
       - uid_map: <caller>
       - gid_map: <caller>
       - pasta: /usr/bin/pasta --quiet --pid /proc/self/fd/5
  4. [child] rootfs: x
       - root: read-only over / (skeleton tmpfs 256M)
       - overlays: <host>
  5. [child] mounts: x
       - mounts[5]: bind ${PWD} → ${PWD} (read-only)
       - ${PWD} stays
       - network.dns: file /etc/resolv.conf (read-only, <host> lines written by kekkai)
  8. [child] drop-privileges: x
       - identity: <caller>
";
    assert_eq!(normalise(sample, Path::new("/tmp/x")), want);
}
