//! What a run left: its output, its exit code, its run report.

use std::collections::BTreeMap;
use std::process::Output;

use kekkai::launch::report::RunReport;

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The exit code, or 128+signal as a shell reports it.
pub fn code(o: &Output) -> i32 {
    code_of(o.status)
}

/// An exit status as a shell reports it: the code, or 128+signal.
pub fn code_of(s: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

/// Asserts a run ended with `want`, showing its output otherwise.
pub fn assert_code(o: &Output, want: i32) {
    assert_eq!(
        code(o),
        want,
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// The run report kekkai wrote to stderr (`--report -`).
pub fn report(o: &Output) -> RunReport {
    report_in(&stderr(o))
}

/// The run report in a captured stderr (between kekkai's other lines).
pub fn report_in(err: &str) -> RunReport {
    let start = err
        .find("{\n")
        .unwrap_or_else(|| panic!("no report in:\n{err}"));
    let end = err.rfind('}').unwrap();
    parse_report(&err[start..=end])
}

/// A run report's text (`--report FILE`).
pub fn parse_report(text: &str) -> RunReport {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not a run report: {e}:\n{text}"))
}

/// The verdicts `kekkai audit --json` printed: probe name → (verdict, detail).
pub fn verdicts(o: &Output) -> BTreeMap<String, (String, String)> {
    let out = stdout(o);
    let json: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{}", stderr(o)));
    json["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                (
                    p["verdict"].as_str().unwrap().to_owned(),
                    p["detail"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

/// One line of a `/proc/self/mountinfo`, the fields the root tests look at.
#[derive(Debug, Clone, PartialEq)]
pub struct MountLine {
    /// The superblock, `major:minor`.
    pub dev: String,
    /// The directory of that file system the mount shows (`/` for its root).
    pub root: String,
    /// Where it is mounted.
    pub point: String,
    /// The mount's own options (`ro,nosuid,nodev,relatime`).
    pub opts: Vec<String>,
    /// The file system type.
    pub fstype: String,
}

/// The overlays mounted at top-level names (`/usr`), from a mountinfo text.
pub fn top_level_overlays(mountinfo: &str) -> Vec<MountLine> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let dash = f.iter().position(|x| *x == "-")?;
            let m = MountLine {
                dev: f.get(2)?.to_string(),
                root: f.get(3)?.to_string(),
                point: f.get(4)?.to_string(),
                opts: f.get(5)?.split(',').map(str::to_owned).collect(),
                fstype: f.get(dash + 1)?.to_string(),
            };
            let top = m.point.len() > 1 && m.point.matches('/').count() == 1;
            (top && m.fstype == "overlay").then_some(m)
        })
        .collect()
}
