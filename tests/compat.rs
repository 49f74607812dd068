//! The compatibility matrix: real runtimes (CPython, Node.js, the JVM, Go static and dynamic,
//! the usual command-line tools) under every shipped policy, as root and as an unprivileged
//! user. The expected outcome of every cell is in tests/compat/matrix.yaml, with the reason for
//! each denial; docs/compat.md is rendered from that file (`scripts/compat-doc`), and
//! [`the_compat_doc_is_the_matrix`] checks that the two agree.
//!
//! Each runtime's program prints one line per feature (`NAME ok`, `NAME EPERM`, `NAME exit
//! 126`, ...). The programs are bound read-only at /compat (`--ro-bind`), the same path under
//! every policy. The runtimes are Debian packages that scripts/setup-test-env installs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use rstest::rstest;
use serde::Deserialize;
use support::{Mode, Who, World, code, need, run_as, stderr, stdout};

const MATRIX: &str = include_str!("compat/matrix.yaml");
const DOC: &str = "docs/compat.md";

/// tests/compat/matrix.yaml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Matrix {
    policies: Vec<String>,
    runtimes: Vec<Runtime>,
    denied: Vec<Denied>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Runtime {
    id: String,
    name: String,
    run: Vec<String>,
    features: Vec<String>,
}

/// Cells that don't work by design: `runtime/feature` under these policies (as root and
/// rootless, unless `who` narrows it), with the outcome and why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Denied {
    cells: Vec<String>,
    policies: Vec<String>,
    #[serde(default)]
    who: Option<Vec<String>>,
    outcome: String,
    why: String,
}

fn matrix() -> Matrix {
    let m: Matrix = serde_yaml::from_str(MATRIX).unwrap();
    // Every denial names cells and policies that exist.
    for d in &m.denied {
        for cell in &d.cells {
            let (rt, feature) = cell.split_once('/').expect("cells are runtime/feature");
            let r = m.runtimes.iter().find(|r| r.id == rt);
            assert!(
                r.is_some_and(|r| r.features.iter().any(|f| f == feature)),
                "matrix.yaml: no cell {cell}"
            );
        }
        for p in &d.policies {
            assert!(m.policies.contains(p), "matrix.yaml: no policy {p}");
        }
        for w in d.who.iter().flatten() {
            assert!(w == "root" || w == "rootless", "matrix.yaml: who {w}");
        }
        assert!(!d.why.trim().is_empty());
    }
    m
}

fn who_name(who: Who) -> &'static str {
    match who {
        Who::Root => "root",
        Who::Rootless => "rootless",
    }
}

impl Matrix {
    /// The expected outcome of a cell, and the denial that explains it.
    fn expected(&self, rt: &str, feature: &str, policy: &str, who: Who) -> (&str, Option<usize>) {
        let cell = format!("{rt}/{feature}");
        for (i, d) in self.denied.iter().enumerate() {
            let who_ok = d
                .who
                .as_ref()
                .is_none_or(|w| w.iter().any(|w| w == who_name(who)));
            if who_ok && d.cells.contains(&cell) && d.policies.iter().any(|p| p == policy) {
                return (&d.outcome, Some(i));
            }
        }
        ("ok", None)
    }
}

/// The Go program, built once per test process, static and dynamic.
fn go_binaries() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compat-go");
        std::fs::create_dir_all(&out).unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/compat.go");
        let build = |name: &str, cgo: &str, extra: &[&str]| {
            let bin = out.join(name);
            let o = Command::new("go")
                .arg("build")
                .args(extra)
                .arg("-o")
                .arg(&bin)
                .arg(&src)
                .env("CGO_ENABLED", cgo)
                .env("GOCACHE", out.join("cache"))
                .env("GOPATH", out.join("gopath"))
                .env("GOFLAGS", "-mod=mod")
                .env("GO111MODULE", "off")
                .output()
                .expect("go build");
            assert!(o.status.success(), "go build {name}: {}", stderr(&o));
            bin
        };
        let st = build("go-static", "0", &[]);
        let dy = build("go-dynamic", "1", &["-ldflags=-linkmode=external"]);
        (st, dy)
    })
}

/// What this machine lacks to run the matrix (the runtimes are scripts/setup-test-env's).
fn missing_runtimes() -> Option<String> {
    let missing: Vec<&str> = [
        "/usr/bin/python3",
        "node",
        "java",
        "go",
        "perl",
        "gcc",
        "make",
    ]
    .into_iter()
    .chain(["git", "sqlite3", "tar", "gzip"])
    .filter(|c| {
        !Command::new("sh")
            .args(["-c", "command -v \"$1\" >/dev/null", "sh", c])
            .status()
            .is_ok_and(|s| s.success())
    })
    .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "missing runtimes: {} (scripts/setup-test-env installs them)",
            missing.join(" ")
        )
    })
}

/// The programs, in a directory of the world every user can read.
fn place_programs(w: &World) -> PathBuf {
    let dir = w.dir.join("compat");
    std::fs::create_dir_all(&dir).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat");
    for f in ["compat.py", "compat.js", "Compat.java", "tools.sh"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let (st, dy) = go_binaries();
    for (bin, name) in [(st, "go-static"), (dy, "go-dynamic")] {
        std::fs::copy(bin, dir.join(name)).unwrap();
        std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Runs one runtime's program and returns feature → outcome.
fn run_runtime(
    w: &World,
    mode: Mode,
    policy: &str,
    programs: &Path,
    rt: &Runtime,
) -> (BTreeMap<String, String>, String) {
    let bind = format!("{}:/compat", programs.display());
    let mut args = vec!["run", "-q", "-p", policy, "--ro-bind", &bind, "--"];
    args.extend(rt.run.iter().map(String::as_str));
    let o = run_as(w, mode, &args);
    let mut seen = BTreeMap::new();
    for line in stdout(&o).lines() {
        if let Some((name, outcome)) = line.split_once(' ') {
            if rt.features.iter().any(|f| f == name) {
                seen.insert(name.to_owned(), outcome.trim().to_owned());
            }
        }
    }
    let exit = code(&o);
    for f in &rt.features {
        seen.entry(f.clone())
            .or_insert_with(|| format!("missing (the run ended with {exit})"));
    }
    (seen, format!("exit {exit}; stderr:\n{}", stderr(&o)))
}

/// Every runtime under one policy, as `who`: each feature's outcome is the matrix's.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_matrix_holds(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values(
        "default",
        "untrusted",
        "build",
        "service",
        "python",
        "node",
        "network-client"
    )]
    policy: &str,
) {
    need(who);
    if support::skip(missing_runtimes()) {
        return;
    }
    let m = matrix();
    assert!(
        m.policies.iter().any(|p| p == policy),
        "{policy} is not in matrix.yaml"
    );
    // `build` runs as the owner of the current directory and refuses one root owns; the hard
    // limits of `untrusted` and `service` need a delegated cgroup when unprivileged.
    let w = World::of_test_user("compat");
    let programs = place_programs(&w);
    let mode = match (who, policy) {
        (Who::Root, _) => Mode::Root,
        (Who::Rootless, "service" | "untrusted") => Mode::Delegated,
        (Who::Rootless, _) => Mode::Plain,
    };
    let mut wrong = String::new();
    for rt in &m.runtimes {
        let (seen, detail) = run_runtime(&w, mode, policy, &programs, rt);
        let mut bad = false;
        for f in &rt.features {
            let (want, _) = m.expected(&rt.id, f, policy, who);
            let got = &seen[f];
            if got != want {
                bad = true;
                writeln!(wrong, "{}/{f}: expected {want}, got {got}", rt.id).unwrap();
            }
        }
        if bad {
            writeln!(wrong, "  ({} {detail})", rt.id).unwrap();
        }
    }
    assert!(
        wrong.is_empty(),
        "{policy}, {}: cells differ from tests/compat/matrix.yaml:\n{wrong}",
        who_name(who)
    );
}

/// docs/compat.md, rendered from the matrix.
fn render(m: &Matrix) -> String {
    let mut s = String::new();
    s.push_str(
        "# Compatibility: real programs under the shipped policies\n\n\
         <!-- Generated from tests/compat/matrix.yaml by scripts/compat-doc; do not edit. -->\n\n\
         What the programs people wrap most do under each shipped policy, as root and as an\n\
         unprivileged user. `tests/compat.rs` runs every cell (in CI, as root and rootless) and\n\
         fails when one differs from `tests/compat/matrix.yaml`, which this page is rendered\n\
         from. The programs are in `tests/compat/`.\n\n\
         ✓ works, as root and rootless. Anything else is the errno (or exit status) the program\n\
         sees, with a note that says why the policy denies it by design.\n\n",
    );
    let mut notes: Vec<usize> = Vec::new();
    for rt in &m.runtimes {
        writeln!(s, "## {}\n", rt.name).unwrap();
        writeln!(s, "`{}`\n", rt.run.join(" ")).unwrap();
        write!(s, "| feature |").unwrap();
        for p in &m.policies {
            write!(s, " `{p}` |").unwrap();
        }
        s.push_str("\n|---|");
        for _ in &m.policies {
            s.push_str("---|");
        }
        s.push('\n');
        for f in &rt.features {
            write!(s, "| {f} |").unwrap();
            for p in &m.policies {
                let cell = |who| m.expected(&rt.id, f, p, who);
                let (root, ri) = cell(Who::Root);
                let (rootless, li) = cell(Who::Rootless);
                let mut mark = |outcome: &str, i: Option<usize>| match i {
                    None => "✓".to_owned(),
                    Some(i) => {
                        if !notes.contains(&i) {
                            notes.push(i);
                        }
                        let n = notes.iter().position(|x| *x == i).unwrap() + 1;
                        format!("{outcome} [{n}]")
                    }
                };
                let text = if (root, ri) == (rootless, li) {
                    mark(root, ri)
                } else {
                    format!("root: {}, rootless: {}", mark(root, ri), mark(rootless, li))
                };
                write!(s, " {text} |").unwrap();
            }
            s.push('\n');
        }
        s.push('\n');
    }
    s.push_str(
        "## CPython's own regression tests\n\n\
         A suite no one here wrote: `tests/cpython.rs` runs the subset of CPython's regression\n\
         tests listed in `tests/cpython/subset.txt` under `python`, `default`, `build` and\n\
         `untrusted` (as root, in CI). Every test of the subset passes on the host; inside, the\n\
         same holds but for the differences `tests/cpython/expected.txt` lists with their\n\
         reasons: ids the sandbox does not map (any sandbox), and under `untrusted` sockets,\n\
         owner changes and executing from `/tmp` (by design).\n\n",
    );
    if !notes.is_empty() {
        s.push_str("## Why\n\n");
        for (n, i) in notes.iter().enumerate() {
            let why = m.denied[*i]
                .why
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            writeln!(s, "{}. {why}", n + 1).unwrap();
        }
    }
    s
}

/// docs/compat.md is the matrix, rendered. `scripts/compat-doc` (this test with
/// `KEKKAI_UPDATE_SNAPSHOTS=1`) writes it.
#[test]
fn the_compat_doc_is_the_matrix() {
    let want = render(&matrix());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC);
    if std::env::var_os("KEKKAI_UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{DOC} is not tests/compat/matrix.yaml rendered: run scripts/compat-doc"
    );
}
