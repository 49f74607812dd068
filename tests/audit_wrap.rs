//! `kekkai audit --wrap`: the battery run inside other launchers' sandboxes (bubblewrap,
//! firejail, Podman, as installed by scripts/setup-test-env), as root and rootless, each probe's
//! verdict held to the expectation recorded in `tests/audit_wrap/expected.tsv`; the report
//! formats held to their schemas; a baseline that catches a weakened wrapper and ignores an
//! unchanged one; and the probe, run where nothing blocks it, writing nowhere but in its own
//! temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::{Who, World, code, in_ci, need, skip, stderr, stdout};

#[path = "audit_wrap/podman.rs"]
mod podman;
#[path = "audit_wrap/watch.rs"]
mod watch;

use podman::Podman;
use watch::Watcher;

const BWRAP: &str = "bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev";
/// bubblewrap in a new session: the caller's terminal is no longer the controlling terminal.
const BWRAP_SESSION: &str =
    "bwrap --unshare-all --new-session --ro-bind / / --proc /proc --dev /dev";
const FIREJAIL: &str = "firejail --quiet --noprofile";

/// Why `program` can't be used, if it can't (outside CI the test skips; in CI it fails).
fn missing(program: &str) -> Option<String> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    (!found).then(|| format!("{program} is not installed (scripts/setup-test-env installs it)"))
}

/// `kekkai audit ARGS` as `who` in `w`, with `env` added: (exit code, output).
fn audit(w: &World, who: Who, env: &[(&str, &str)], args: &[&str]) -> (i32, Output) {
    let o = w
        .command(who)
        .envs(env.iter().copied())
        .arg("audit")
        .args(args)
        .output()
        .unwrap();
    (code(&o), o)
}

/// The verdicts of a `--compare --format json` matrix: label → probe → verdict.
fn matrix(o: &Output) -> BTreeMap<String, BTreeMap<String, String>> {
    let text = stdout(o);
    let m: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {text}\nstderr:\n{}", stderr(o)));
    let labels: Vec<String> = m["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap().to_owned())
        .collect();
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for row in m["probes"].as_array().unwrap() {
        for (label, cell) in labels.iter().zip(row["cells"].as_array().unwrap()) {
            out.entry(label.clone()).or_default().insert(
                row["name"].as_str().unwrap().to_owned(),
                cell["verdict"].as_str().unwrap_or("-").to_owned(),
            );
        }
    }
    out
}

/// The recorded expectation: column name (`bwrap:root`) → probe → verdict.
fn expected() -> BTreeMap<String, BTreeMap<String, String>> {
    let text = include_str!("audit_wrap/expected.tsv");
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .trim_start_matches('#')
        .split_whitespace()
        .collect();
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for line in lines.filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols.len(), header.len(), "expected.tsv: {line}");
        for (h, v) in header.iter().zip(&cols).skip(1) {
            out.entry((*h).to_owned())
                .or_default()
                .insert(cols[0].to_owned(), (*v).to_owned());
        }
    }
    out
}

/// Holds `got` (label → verdicts) to the expectation's columns `column(label)`.
fn assert_expected(
    got: &BTreeMap<String, BTreeMap<String, String>>,
    column: &dyn Fn(&str) -> String,
) {
    let want = expected();
    let mut wrong = Vec::new();
    for (label, verdicts) in got {
        let col = column(label);
        let Some(w) = want.get(&col) else {
            panic!("expected.tsv has no column {col}");
        };
        for (probe, v) in verdicts {
            let e = w.get(probe).map_or("(missing)", String::as_str);
            if e != v {
                wrong.push(format!("{col} {probe}: recorded {e}, got {v}"));
            }
        }
        for probe in w.keys().filter(|p| !verdicts.contains_key(*p)) {
            wrong.push(format!("{col} {probe}: recorded, not run"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// firejail (setuid root) makes /run/firejail and leaves three bind mounts there for later
/// runs. A test that made them removes them when it is done.
struct FirejailState {
    existed: bool,
}

impl FirejailState {
    fn note() -> FirejailState {
        FirejailState {
            existed: Path::new("/run/firejail").exists(),
        }
    }
}

impl Drop for FirejailState {
    fn drop(&mut self) {
        if self.existed {
            return;
        }
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with("/run/firejail"))
            .collect();
        mounts.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for m in mounts {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all("/run/firejail");
    }
}

/// bubblewrap (with and without a new session) and firejail, in one `--compare`, root and
/// rootless: every verdict as recorded. Among them the example: without
/// `--new-session` TIOCSTI reaches the caller's terminal (on this host, whose
/// dev.tty.legacy_tiocsti is 1; where it is 0 the probe says not applicable).
#[test]
#[ignore = "needs root: run by scripts/test"]
fn bubblewrap_and_firejail_verdicts_are_as_recorded() {
    need(Who::Rootless);
    if skip(missing("bwrap").or_else(|| missing("firejail"))) {
        return;
    }
    let legacy = std::fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti").unwrap_or_default();
    if skip(
        (legacy.trim() != "1")
            .then(|| "dev.tty.legacy_tiocsti is not 1 here: the recording is for 1".into()),
    ) {
        return;
    }
    let _firejail = FirejailState::note();
    let w = World::new("wrap-verdicts");
    for who in [Who::Root, Who::Rootless] {
        let (status, o) = audit(
            &w,
            who,
            &[],
            &[
                "--compare",
                "--format",
                "json",
                "--wrap",
                BWRAP,
                "--wrap",
                BWRAP_SESSION,
                "--wrap",
                FIREJAIL,
            ],
        );
        assert_eq!(status, 0, "{}", stderr(&o));
        let got = matrix(&o);
        assert_eq!(got.len(), 3, "{got:?}");
        let who_name = if who == Who::Root { "root" } else { "rootless" };
        assert_expected(&got, &|label| {
            let name = match label {
                "bwrap" => "bwrap",
                "bwrap#2" => "bwrap-new-session",
                other => other,
            };
            format!("{name}:{who_name}")
        });
        // The example, said outright.
        assert_eq!(got["bwrap"]["terminal.tiocsti-caller.stdin-tty"], "escaped");
        assert_eq!(
            got["bwrap#2"]["terminal.tiocsti-caller.stdin-tty"],
            "blocked"
        );
    }
}

/// The static probe (scripts/build-audit-probe; scripts/test builds it), if there is one.
fn static_probe() -> Option<PathBuf> {
    let p = std::env::var_os("KEKKAI_STATIC_PROBE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/kekkai-audit-probe.static")
        });
    p.is_file().then_some(p)
}

/// Podman with the static probe in an image without a C library, root and rootless: the
/// verdicts as recorded (Podman's default capabilities, its seccomp profile, its pids limit).
#[test]
#[ignore = "needs root: run by scripts/test"]
fn podman_verdicts_are_as_recorded() {
    need(Who::Rootless);
    if skip(missing("podman").or_else(|| missing("runc"))) {
        return;
    }
    let Some(probe) = static_probe() else {
        assert!(
            !in_ci(),
            "CI=true: no static probe (scripts/test builds it with scripts/build-audit-probe)"
        );
        eprintln!("skipped: no static probe: run scripts/build-audit-probe");
        return;
    };
    let w = World::new("wrap-podman");
    let probe = probe.display().to_string();
    for who in [Who::Root, Who::Rootless] {
        let podman = Podman::new(who);
        podman.import();
        let env: Vec<(String, String)> = podman.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (status, o) = audit(
            &w,
            who,
            &env,
            &[
                "--compare",
                "--format",
                "json",
                "--probe",
                &probe,
                "--wrap",
                &podman.wrapper(),
            ],
        );
        assert_eq!(status, 0, "{}\n{}", stdout(&o), stderr(&o));
        let got = matrix(&o);
        let who_name = if who == Who::Root { "root" } else { "rootless" };
        assert_expected(&got, &|_| format!("podman:{who_name}"));
    }
}

/// The "must show": JUnit from a bubblewrap audit validates against the JUnit schema
/// (xmllint), with one test case per probe; SARIF validates against the SARIF 2.1.0 schema, for
/// a wrapper and for a kekkai policy, and for several sandboxes at once; TAP has a test point
/// per probe.
#[test]
#[ignore = "needs root: run by scripts/test"]
fn the_report_formats_validate_against_their_schemas() {
    need(Who::Root);
    if skip(missing("bwrap").or_else(|| missing("xmllint"))) {
        return;
    }
    let w = World::new("wrap-formats");
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schemas");
    let (_, json) = audit(&w, Who::Root, &[], &["--wrap", BWRAP, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    let probes = report["probes"].as_array().unwrap().len();
    assert!(probes >= 140, "{probes}");

    // JUnit: the schema, then one <testcase> per probe.
    let (status, junit) = audit(&w, Who::Root, &[], &["--wrap", BWRAP, "--format", "junit"]);
    assert_eq!(
        status,
        1,
        "bubblewrap lets escapes through: {}",
        stderr(&junit)
    );
    let file = w.dir.write("junit.xml", stdout(&junit));
    let lint = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schemas.join("junit-10.xsd"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        lint.status.success(),
        "{}\n{}",
        stderr(&lint),
        stdout(&junit)
    );
    assert_eq!(stdout(&junit).matches("<testcase ").count(), probes);
    assert!(stdout(&junit).contains("<failure type=\"ESCAPE\""));

    // SARIF: a wrapper, a policy, and both at once.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(schemas.join("sarif-schema-2.1.0.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for args in [
        vec!["--wrap", BWRAP, "--format", "sarif"],
        vec!["-p", "default", "--format", "sarif", "--only", "kernel"],
        vec![
            "--compare",
            "default",
            "--wrap",
            BWRAP,
            "--format",
            "sarif",
            "--only",
            "fs",
        ],
    ] {
        let (_, o) = audit(&w, Who::Root, &[], &args);
        let log: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let errors: Vec<String> = validator.iter_errors(&log).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{args:?}: {errors:?}");
        assert_eq!(log["version"], "2.1.0");
    }
    // A SARIF log the schema must refuse: the check is real.
    let (_, o) = audit(
        &w,
        Who::Root,
        &[],
        &["-p", "default", "--format", "sarif", "--only", "ns"],
    );
    let mut log: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    log["runs"][0]["results"][0]["level"] = "critical".into();
    assert!(!validator.is_valid(&log));

    // TAP 13: the plan and one test point per probe.
    let (_, tap) = audit(&w, Who::Root, &[], &["--wrap", BWRAP, "--format", "tap"]);
    let text = stdout(&tap);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("TAP version 13"));
    assert_eq!(lines.next(), Some(format!("1..{probes}").as_str()));
    let points = text
        .lines()
        .filter(|l| l.starts_with("ok ") || l.starts_with("not ok "))
        .count();
    assert_eq!(points, probes);
}

/// A baseline saved from bubblewrap in a new session ignores an unchanged run and catches the
/// same wrapper weakened (no `--new-session`: TIOCSTI reaches the caller's terminal), as root
/// and rootless. It is never written through a symbolic link.
#[test]
#[ignore = "needs root: run by scripts/test"]
fn a_baseline_catches_a_weakened_wrapper_and_ignores_an_unchanged_one() {
    need(Who::Rootless);
    if skip(missing("bwrap")) {
        return;
    }
    let w = World::of_test_user("wrap-baseline");
    for who in [Who::Root, Who::Rootless] {
        let base = format!("base-{who:?}.json");
        let (_, o) = audit(
            &w,
            who,
            &[],
            &[
                "--wrap",
                BWRAP_SESSION,
                "--only",
                "terminal",
                "--save-baseline",
                &base,
            ],
        );
        assert!(w.dir.join(&base).is_file(), "{}", stderr(&o));
        let (status, o) = audit(
            &w,
            who,
            &[],
            &[
                "--wrap",
                BWRAP_SESSION,
                "--only",
                "terminal",
                "--baseline",
                &base,
            ],
        );
        assert_eq!(status, 0, "unchanged: {}", stderr(&o));
        assert!(stderr(&o).contains("0 regression(s)"), "{}", stderr(&o));
        let (status, o) = audit(
            &w,
            who,
            &[],
            &["--wrap", BWRAP, "--only", "terminal", "--baseline", &base],
        );
        assert_eq!(status, 1, "weakened: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("REGRESSION terminal.tiocsti-caller.stdin-tty: blocked -> ESCAPED"),
            "{err}"
        );
        assert!(
            err.contains("REGRESSION terminal.dev-tty: blocked -> ESCAPED"),
            "{err}"
        );
    }
    // The policy overrides are kekkai's own sandbox's, not a wrapper's.
    let (status, _) = audit(
        &w,
        Who::Root,
        &[],
        &["--wrap", BWRAP, "--ro-bind", "/usr:/x"],
    );
    assert_eq!(status, 2);
    // A symbolic link planted where the baseline goes is not followed.
    let target = w.dir.write("victim", "untouched");
    std::os::unix::fs::symlink(&target, w.dir.join("link.json")).unwrap();
    let (status, o) = audit(
        &w,
        Who::Root,
        &[],
        &[
            "--wrap",
            BWRAP,
            "--only",
            "launcher",
            "--save-baseline",
            "link.json",
        ],
    );
    assert_eq!(status, 2, "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
}

/// The probe where nothing blocks it (`--wrap env`: the battery runs as its caller, on the
/// host), run by an unprivileged user of its own (a fresh uid with a fresh HOME): it changes
/// nothing outside its own temporary directory. Such a user can write only in the world-
/// writable directories (/tmp, /var/tmp, /dev/shm, /run/lock on this host) and its HOME; the
/// test gives each a fresh tmpfs in a mount namespace of its own (nothing else changes), watches
/// every directory in them while the audit runs, and afterwards finds them as they were. What
/// may change: the audit's copy of the probe (`/tmp/kekkai-audit-PID-N`, made and removed by
/// kekkai) and the probe's own directory (`/tmp/kekkai-audit-probe.XXXXXX`).
#[test]
#[ignore = "needs root: run by scripts/test"]
fn the_probe_writes_nothing_outside_its_own_directory() {
    need(Who::Root);
    if skip(missing("unshare").or_else(|| missing("setpriv"))) {
        return;
    }
    let w = World::new("probe-writes");
    let uid = 3_900_000 + std::process::id() % 50_000;
    assert!(
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .unwrap()
            .is_none()
    );
    let places = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock"];
    let script = format!(
        "set -e; for d in {places}; do mount -t tmpfs -o mode=1777 kekkai-test \"$d\"; done; \
         mkdir -m 700 /tmp/home; chown {uid}:{uid} /tmp/home; echo ready; read go; \
         exec setpriv --reuid={uid} --regid={uid} --clear-groups env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp/home \
         ./kekkai audit --probe ./kekkai-audit-probe --wrap env --format json",
        places = places.join(" ")
    );
    let mut child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .current_dir(w.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    let root = PathBuf::from(format!("/proc/{}/root", child.id()));
    let mut watch = Watcher::new();
    for p in places.iter().chain(&["/tmp/home"]) {
        watch.add((*p).to_owned(), root.join(p.trim_start_matches('/')));
    }
    assert_eq!(watch.dirs.len(), places.len() + 1);
    use std::io::{Read, Write};
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        s
    });
    while child.try_wait().unwrap().is_none() {
        watch.drain();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    watch.drain();
    let report = reader.join().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}\n{err}"));
    let probes = report["probes"].as_array().unwrap();
    assert!(probes.len() >= 140, "{err}");
    // Nothing blocked the probes that write: they wrote, in the probe's own directory.
    let setuid = probes
        .iter()
        .find(|p| p["name"] == "privilege.setuid-chmod")
        .unwrap();
    assert_eq!(setuid["verdict"], "escaped", "{setuid}");
    assert!(
        setuid["detail"]
            .as_str()
            .unwrap()
            .contains("/tmp/kekkai-audit-probe."),
        "{setuid}"
    );
    let own = |p: &str| {
        let rest = p.strip_prefix("/tmp/").unwrap_or("");
        let first = rest.split(['/', ' ']).next().unwrap_or("");
        let copy = first.strip_prefix("kekkai-audit-").is_some_and(|t| {
            let mut parts = t.splitn(2, '-');
            parts
                .next()
                .is_some_and(|pid| pid.chars().all(|c| c.is_ascii_digit()))
                && parts
                    .next()
                    .is_some_and(|n| n.chars().all(|c| c.is_ascii_hexdigit()))
        });
        copy || first.starts_with("kekkai-audit-probe.")
    };
    assert!(
        watch
            .seen
            .iter()
            .any(|e| e.starts_with("/tmp/kekkai-audit-probe.")),
        "the watch saw nothing of the probe's own writes: {:?}",
        watch.seen
    );
    let outside: Vec<&String> = watch.seen.iter().filter(|e| !own(e)).collect();
    assert!(
        outside.is_empty(),
        "changed outside the probe's directory: {outside:?}"
    );
}

/// The probe program by hand, outside any sandbox (only the harmless `caps` probes): JSON lines,
/// each with its verdict; `--table` for people; exit 1 when something escaped; 2 for bad usage.
#[test]
fn the_probe_program_runs_by_hand() {
    let probe = env!("CARGO_BIN_EXE_kekkai-audit-probe");
    let o = Command::new(probe)
        .args(["--only", "caps"])
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{}", stdout(&o));
    for l in &lines {
        assert!(l["name"].as_str().unwrap().starts_with("caps."), "{l}");
        assert!(
            ["blocked", "escaped", "not-applicable"].contains(&l["verdict"].as_str().unwrap()),
            "{l}"
        );
    }
    // Unsandboxed, the bounding set is full: an escape, and the exit status says so.
    assert!(
        lines
            .iter()
            .any(|l| l["name"] == "caps.bounding" && l["verdict"] == "escaped")
    );
    assert_eq!(code(&o), 1);
    let o = Command::new(probe)
        .args(["--only", "caps", "--table"])
        .output()
        .unwrap();
    assert!(stdout(&o).starts_with("PROBE "), "{}", stdout(&o));
    assert!(stdout(&o).contains("5 probes: "), "{}", stdout(&o));
    let o = Command::new(probe).arg("--bogus").output().unwrap();
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("usage: kekkai-audit-probe"));
}

/// Without kekkai-audit-probe beside it, kekkai runs the battery itself (`kekkai __probe`).
#[test]
#[ignore = "needs root: run by scripts/test"]
fn without_the_probe_program_kekkai_runs_the_battery_itself() {
    need(Who::Root);
    let w = World::new("no-probe-program");
    std::fs::remove_file(w.audit_probe()).unwrap();
    let (status, o) = audit(&w, Who::Root, &[], &["--only", "kernel", "--json"]);
    assert_eq!(status, 0, "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let probes = report["probes"].as_array().unwrap();
    assert!(probes.len() >= 20);
    assert!(probes.iter().all(|p| p["verdict"] == "blocked"), "{report}");
}
