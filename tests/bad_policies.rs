//! The malformed-policy corpus: every file under `tests/bad_policies/` is a policy a user could
//! write by mistake (or an attacker on purpose), and kekkai must reject each one the same way:
//!
//! - `kekkai check FILE` exits 1; every error line reads `FILE:LINE:COL: ...`; the expected
//!   diagnostic (file, position, key path, message) from `tests/bad_policies/EXPECTED` is among
//!   them;
//! - `kekkai run -p FILE -- true` exits 125 with the same first line, and no launch step after
//!   `plan` starts (no sandbox);
//! - neither panics, each ends within [`LIMIT`] (it is killed after that), and no process run by
//!   this test grows beyond [`MAX_RSS_KIB`].
//!
//! Each file starts with a header comment `# tests: what; expect: PATH` (PATH is the key path of
//! the error, `(root)` for one about the whole document, `(parent) PATH` when the error lies in
//! the policy the file extends); the empty file is the exception. `EXPECTED` has one row per
//! file; rows marked `BUG:` are known bugs, reported but not failed here, and failed by the
//! test `known_bugs` (so a mark lives only on a branch that fixes the bug).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::{Scratch, Who, need};

const BIN: &str = env!("CARGO_BIN_EXE_kekkai");
/// Longest a single `check` or `run` of a bad policy may take before it is killed: a watchdog
/// for hangs (a billion laughs that never ends), far above what a slow or busy machine needs.
const LIMIT: Duration = Duration::from_secs(120);
/// Largest resident set any kekkai process started by this test may reach.
const MAX_RSS_KIB: i64 = 200 * 1024;
/// The policy size limit (`MAX_FILE_BYTES` in src/policy/yaml.rs).
const MAX_FILE_BYTES: usize = 262_144;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_policies")
}

fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// One row of `EXPECTED`.
#[derive(Debug, Clone)]
struct Row {
    /// The corpus file the error is reported in (`.` in the table: the file itself).
    at: String,
    line: usize,
    col: Option<usize>,
    /// Key path prefix; `None` for errors about the whole document.
    path: Option<String>,
    message: String,
    bug: Option<String>,
}

fn table() -> BTreeMap<String, Row> {
    let text = std::fs::read_to_string(corpus_dir().join("EXPECTED")).unwrap();
    let mut rows = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.splitn(6, " | ").map(str::trim).collect();
        let [file, at, pos, path, message, rest @ ..] = cols.as_slice() else {
            panic!(
                "EXPECTED:{}: want `FILE | AT | LINE:COL | PATH | MESSAGE`",
                n + 1
            );
        };
        let (l, c) = match pos.split_once(':') {
            Some((l, c)) => (l, Some(c.parse().unwrap())),
            None => (*pos, None),
        };
        let bug = rest.first().map(|b| {
            b.strip_prefix("BUG:")
                .unwrap_or_else(|| panic!("EXPECTED:{}: the 6th column starts with BUG:", n + 1))
                .trim()
                .to_owned()
        });
        let row = Row {
            at: if *at == "." {
                (*file).to_owned()
            } else {
                (*at).to_owned()
            },
            line: l.parse().unwrap(),
            col: c,
            path: (*path != "-").then(|| (*path).to_owned()),
            message: (*message).to_owned(),
            bug,
        };
        assert!(
            rows.insert((*file).to_owned(), row).is_none(),
            "EXPECTED:{}: a second row for {file}",
            n + 1
        );
    }
    rows
}

/// How one kekkai process ended.
struct Outcome {
    /// Exit code; `None` when killed by a signal or by the deadline.
    code: Option<i32>,
    /// Why there is no exit code.
    died: Option<String>,
    stderr: String,
    elapsed: Duration,
}

impl Outcome {
    fn describe(&self) -> String {
        match (self.code, &self.died) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(d)) => d.clone(),
            (None, None) => "no exit status".into(),
        }
    }
}

/// Runs kekkai in `cwd` with a clean environment, kills it after [`LIMIT`].
fn kekkai(args: &[&OsStr], cwd: &Path, trace_steps: bool) -> Outcome {
    let out = Scratch::new("bad-policies-out");
    let stderr_path = out.join("stderr");
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", "/nonexistent")
        .env("LANG", "C.UTF-8")
        // An environment variable whose value names the other one: values are inserted
        // literally, so these can't loop (112, 113).
        .env("KEKKAI_BADPOL_LOOP_A", "${env:KEKKAI_BADPOL_LOOP_B}")
        .env("KEKKAI_BADPOL_LOOP_B", "${env:KEKKAI_BADPOL_LOOP_A}")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr_path).unwrap());
    if trace_steps {
        cmd.env("KEKKAI_TRACE_STEPS", "1");
    }
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let (status, died) = loop {
        if let Some(status) = child.try_wait().unwrap() {
            let died = status.signal().map(|s| format!("killed by signal {s}"));
            break (status.code(), died);
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break (None, Some(format!("still running after {LIMIT:?}: killed")));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&std::fs::read(&stderr_path).unwrap()).into_owned();
    Outcome {
        code: status,
        died,
        stderr,
        elapsed,
    }
}

/// `FILE:LINE:COL: REST` → its parts.
fn split_position(line: &str) -> Option<(&str, usize, usize, &str)> {
    for (i, _) in line.match_indices(':') {
        let after = line.get(i + 1..)?;
        let Some((l, tail)) = after.split_once(':') else {
            continue;
        };
        let Some((c, rest)) = tail.split_once(": ") else {
            continue;
        };
        if let (Ok(l), Ok(c)) = (l.parse(), c.parse()) {
            return Some((line.get(..i)?, l, c, rest));
        }
    }
    None
}

/// `a/./b/../c` → `a/c`, without touching the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn has_panic(stderr: &str) -> Option<&'static str> {
    ["panicked", "RUST_BACKTRACE", "stack backtrace"]
        .into_iter()
        .find(|bad| stderr.contains(bad))
}

/// What went wrong for one file: broken invariants (never acceptable) and mismatches with the
/// file's row (acceptable for a known bug).
#[derive(Default)]
struct Verdict {
    invariant: Vec<String>,
    expectation: Vec<String>,
    slowest: Duration,
}

fn verdict(file: &Path, row: &Row) -> Verdict {
    let mut v = Verdict::default();
    let cwd = Scratch::new("bad-policies-cwd");
    let shown = file.as_os_str();

    // kekkai check FILE
    let check = kekkai(&[OsStr::new("check"), shown], cwd.path(), false);
    v.slowest = check.elapsed;
    if let Some(bad) = has_panic(&check.stderr) {
        v.invariant
            .push(format!("check: `{bad}` in stderr:\n{}", check.stderr));
    }
    if check.code != Some(1) {
        v.invariant.push(format!(
            "check: {}, want exit 1:\n{}",
            check.describe(),
            check.stderr
        ));
        return v;
    }
    let lines: Vec<&str> = check.stderr.lines().collect();
    let Some((summary, diags)) = lines.split_last() else {
        v.invariant.push("check: nothing on stderr".into());
        return v;
    };
    if *summary != "kekkai: 1 of 1 policy is invalid" {
        v.invariant
            .push(format!("check: last line is not the summary: {summary}"));
    }
    if diags.is_empty() {
        v.invariant.push("check: no diagnostic".into());
        return v;
    }
    for d in diags {
        if split_position(d).is_none() {
            v.expectation
                .push(format!("check: a diagnostic without FILE:LINE:COL: {d}"));
        }
    }
    let want_file = corpus_dir().join(&row.at);
    let hit = diags.iter().any(|d| {
        let Some((f, l, c, rest)) = split_position(d) else {
            return false;
        };
        let path_ok = row.path.as_ref().is_none_or(|p| {
            rest.strip_prefix(p.as_str())
                .is_some_and(|after| after.starts_with([':', '.', '[']))
        });
        lexical(Path::new(f)) == want_file
            && l == row.line
            && row.col.is_none_or(|want| want == c)
            && path_ok
            && rest.contains(&row.message)
    });
    if !hit {
        v.expectation.push(format!(
            "check: no line `{}:{}{}: {}…{}…`; got:\n{}",
            want_file.display(),
            row.line,
            row.col.map(|c| format!(":{c}")).unwrap_or_default(),
            row.path
                .as_deref()
                .map(|p| format!("{p}: "))
                .unwrap_or_default(),
            row.message,
            diags.join("\n")
        ));
    }

    // kekkai run -p FILE -- true
    let run = kekkai(
        &[
            OsStr::new("run"),
            OsStr::new("-p"),
            shown,
            OsStr::new("--"),
            OsStr::new("true"),
        ],
        cwd.path(),
        true,
    );
    v.slowest = v.slowest.max(run.elapsed);
    if let Some(bad) = has_panic(&run.stderr) {
        v.invariant
            .push(format!("run: `{bad}` in stderr:\n{}", run.stderr));
    }
    if run.code != Some(125) {
        v.invariant.push(format!(
            "run: {}, want exit 125:\n{}",
            run.describe(),
            run.stderr
        ));
    }
    // Debug builds print each launch step as it starts: nothing may start after `plan`.
    for step in run
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("kekkai-step: "))
    {
        if step.split_whitespace().next() != Some("plan") {
            v.invariant.push(format!(
                "run: launch step `{step}` started:\n{}",
                run.stderr
            ));
        }
    }
    let run_first = run
        .stderr
        .lines()
        .find(|l| !l.starts_with("kekkai-step: "))
        .unwrap_or_default();
    if run_first != diags[0] {
        v.invariant.push(format!(
            "run: first line differs from check's\n  run:   {run_first}\n  check: {}",
            diags[0]
        ));
    }
    v
}

/// The header comment: (`(parent)` given, the key path or `None` for `(root)`).
fn header(bytes: &[u8]) -> Option<(bool, Option<String>)> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = bytes.split(|&b| b == b'\n').next()?;
    let first = std::str::from_utf8(first).ok()?.strip_prefix("# tests:")?;
    let (_, spec) = first.split_once("expect:")?;
    let mut words = spec.split_whitespace();
    let mut word = words.next()?;
    let parent = word == "(parent)";
    if parent {
        word = words.next()?;
    }
    Some((parent, (word != "(root)").then(|| word.to_owned())))
}

fn max_rss_kib() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .unwrap()
        .max_rss()
}

/// The table's diagnostics are a root caller's (an unprivileged one is refused an id map before
/// the map's own errors): a root-only test.
#[test]
#[ignore = "needs root: run by scripts/test"]
fn every_malformed_policy_is_rejected_with_file_position_and_key_path() {
    need(Who::Root);
    let started = Instant::now();
    let files = corpus();
    let rows = table();
    assert!(
        files.len() >= 250,
        "the corpus shrank to {} files",
        files.len()
    );

    let mut problems = Vec::new();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for name in rows.keys() {
        if !names.contains(name) {
            problems.push(format!(
                "EXPECTED has a row for {name}, which does not exist"
            ));
        }
    }
    for (file, name) in files.iter().zip(&names) {
        let Some(row) = rows.get(name) else {
            problems.push(format!("{name}: no row in tests/bad_policies/EXPECTED"));
            continue;
        };
        let bytes = std::fs::read(file).unwrap();
        if bytes.is_empty() {
            continue;
        }
        match header(&bytes) {
            None => problems.push(format!(
                "{name}: the first line is not `# tests: WHAT; expect: PATH`"
            )),
            Some((parent, path)) => {
                if parent != (row.at != *name) {
                    problems.push(format!(
                        "{name}: the header and EXPECTED disagree on whether the error is in a parent"
                    ));
                }
                if let (Some(h), Some(p)) = (path, &row.path) {
                    if !p.starts_with(&h) && !h.starts_with(p.as_str()) {
                        problems.push(format!("{name}: the header expects `{h}`, EXPECTED `{p}`"));
                    }
                }
            }
        }
    }

    // Check and run every file, a few at a time.
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(String, Verdict)>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let (Some(file), Some(name)) = (files.get(i), names.get(i)) else {
                        break;
                    };
                    let Some(row) = rows.get(name) else { continue };
                    let v = verdict(file, row);
                    results.lock().unwrap().push((name.clone(), v));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by(|a, b| a.0.cmp(&b.0));

    let mut known = Vec::new();
    for (name, v) in &results {
        for p in &v.invariant {
            problems.push(format!("{name}: {p}"));
        }
        match &rows[name].bug {
            None => {
                for p in &v.expectation {
                    problems.push(format!("{name}: {p}"));
                }
            }
            Some(bug) if v.expectation.is_empty() => problems.push(format!(
                "{name}: marked as a known bug ({bug}) but behaves as expected now: remove the BUG mark in EXPECTED"
            )),
            Some(bug) => known.push(format!("{name}: {bug}\n  {}", v.expectation.join("\n  "))),
        }
    }
    if !known.is_empty() {
        eprintln!(
            "{} known bug(s) (EXPECTED rows marked BUG; `known_bugs` fails on them):\n{}",
            known.len(),
            known.join("\n")
        );
    }
    let mut by_time: Vec<(&String, Duration)> =
        results.iter().map(|(n, v)| (n, v.slowest)).collect();
    by_time.sort_by_key(|b| std::cmp::Reverse(b.1));
    eprintln!(
        "{} files in {:?}; slowest: {}",
        results.len(),
        started.elapsed(),
        by_time
            .iter()
            .take(3)
            .map(|(n, t)| format!("{n} {t:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let rss = max_rss_kib();
    if rss >= MAX_RSS_KIB {
        problems.push(format!(
            "a kekkai process reached {rss} KiB resident, more than {MAX_RSS_KIB} KiB"
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The files that try to exhaust memory, one at a time, each followed by a look at the
/// largest resident set of any child so far (getrusage only keeps the maximum).
#[test]
fn peak_memory_is_bounded_for_bombs_and_deep_nesting() {
    let cwd = Scratch::new("bad-policies-mem");
    for name in [
        "021-yaml-alias-bomb-sequences.yaml",
        "022-yaml-alias-bomb-mappings.yaml",
        "023-yaml-deep-nesting-flow-40.yaml",
        "024-yaml-deep-nesting-block-40.yaml",
        "025-yaml-deep-nesting-10000.yaml",
        "078-extends-parent-alias-bomb.yaml",
        "295-seccomp-too-many-instructions.yaml",
    ] {
        let file = corpus_dir().join(name);
        let out = kekkai(&[OsStr::new("check"), file.as_os_str()], cwd.path(), false);
        assert_eq!(
            out.code,
            Some(1),
            "{name}: {}\n{}",
            out.describe(),
            out.stderr
        );
        let rss = max_rss_kib();
        assert!(
            rss < MAX_RSS_KIB,
            "{name}: a kekkai process reached {rss} KiB resident"
        );
    }
}

/// Writes a 50 MiB policy (a valid first line, then comments) into a fresh temp dir.
fn huge_policy(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("huge.yaml");
    let mut f = std::io::BufWriter::new(File::create(&path).unwrap());
    f.write_all(b"# tests: a 50 MiB policy; expect: (root)\nversion: 1\n")
        .unwrap();
    let line = format!("# {}\n", "x".repeat(1021));
    for _ in 0..50 * 1024 {
        f.write_all(line.as_bytes()).unwrap();
    }
    f.flush().unwrap();
    path
}

#[test]
fn a_50_mib_policy_is_refused_quickly_in_bounded_memory() {
    let dir = Scratch::new("bad-policies-huge");
    let file = huge_policy(dir.path());
    assert!(std::fs::metadata(&file).unwrap().len() >= 50 << 20);
    let want = format!("file is larger than {MAX_FILE_BYTES} bytes");

    let check = kekkai(&[OsStr::new("check"), file.as_os_str()], dir.path(), false);
    assert_eq!(
        check.code,
        Some(1),
        "check: {}\n{}",
        check.describe(),
        check.stderr
    );
    assert!(has_panic(&check.stderr).is_none(), "{}", check.stderr);
    let first = check.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&*file.to_string_lossy()) && first.contains(&want),
        "check: {first}"
    );

    let run = kekkai(
        &[
            OsStr::new("run"),
            OsStr::new("-p"),
            file.as_os_str(),
            OsStr::new("--"),
            OsStr::new("true"),
        ],
        dir.path(),
        true,
    );
    assert_eq!(
        run.code,
        Some(125),
        "run: {}\n{}",
        run.describe(),
        run.stderr
    );
    assert!(has_panic(&run.stderr).is_none(), "{}", run.stderr);
    assert!(run.stderr.contains(&want), "run: {}", run.stderr);
    for step in run
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("kekkai-step: "))
    {
        assert!(step.starts_with("plan"), "run: step `{step}` started");
    }

    let rss = max_rss_kib();
    assert!(
        rss < MAX_RSS_KIB,
        "a kekkai process reached {rss} KiB resident"
    );
    // Like every other error, it has a place: the start of the file.
    assert!(
        first.starts_with(&format!("{}:1:1: ", file.display())),
        "check: {first}"
    );
}

/// Deep flow nesting at the size limit: the YAML scanner is quadratic in the nesting depth of
/// flow collections, so the depth is measured on the text before any parse.
#[test]
fn deep_flow_nesting_at_the_size_limit_fails_fast() {
    let dir = Scratch::new("bad-policies-deep");
    let deep = dir.join("deep.yaml");
    let depth = (MAX_FILE_BYTES - 100) / 2;
    std::fs::write(
        &deep,
        format!(
            "version: 1\nmounts: {}{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        ),
    )
    .unwrap();
    let out = kekkai(&[OsStr::new("check"), deep.as_os_str()], dir.path(), false);
    assert_eq!(out.code, Some(1), "{}\n{}", out.describe(), out.stderr);
    let want = format!(
        "{}:2:41: mounts: nesting is deeper than 32 levels",
        deep.display()
    );
    assert!(out.stderr.starts_with(&want), "{}", out.stderr);
}

#[test]
fn several_errors_in_one_file_are_all_reported() {
    let cwd = Scratch::new("bad-policies-several");
    let file = corpus_dir().join("315-several-compile-errors.yaml");
    let out = kekkai(&[OsStr::new("check"), file.as_os_str()], cwd.path(), false);
    assert_eq!(out.code, Some(1), "{}\n{}", out.describe(), out.stderr);
    for (line, path) in [
        (4, "hostname:"),
        (5, "limits.pids:"),
        (6, "capabilities.keep[0]:"),
        (8, "seccomp.allow[0]:"),
    ] {
        let hit = out.stderr.lines().any(|d| {
            split_position(d).is_some_and(|(_, l, _, rest)| l == line && rest.starts_with(path))
        });
        assert!(hit, "line {line} `{path}` missing:\n{}", out.stderr);
    }
}

/// Every known bug, stated as the behaviour it should have. Fails until they are fixed: a row
/// may carry a BUG mark only on a branch that fixes it.
#[test]
fn known_bugs() {
    let mut failing = Vec::new();
    let rows = table();
    for (name, row) in rows.iter().filter(|(_, r)| r.bug.is_some()) {
        let v = verdict(&corpus_dir().join(name), row);
        if !v.expectation.is_empty() || !v.invariant.is_empty() {
            failing.push(format!(
                "{name}: {}\n  {}",
                row.bug.as_deref().unwrap_or_default(),
                v.invariant
                    .iter()
                    .chain(&v.expectation)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ));
        }
    }

    assert!(
        failing.is_empty(),
        "{} known bug(s):\n{}",
        failing.len(),
        failing.join("\n")
    );
}
