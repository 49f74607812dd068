//! The audit's result: each probe's verdict (blocked, escaped, not applicable, error) from what
//! it saw and the errnos that mean "blocked"; the policy's grants and expectations; the table
//! and the JSON; and the notes from the sandbox's own run.

use serde::{Deserialize, Serialize};

use super::{Ctx, Line, Seen, probes};
use crate::plan::Plan;
use crate::plan::expect::Expectation;
use crate::plan::units::format_size;

/// The suffix of the probes run with a terminal on stdin.
pub const STDIN_TTY: &str = ".stdin-tty";

pub use super::Verdict;

/// One line of the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeReport {
    /// Probe name.
    pub name: String,
    /// Category.
    pub category: String,
    /// The layer expected to stop it.
    pub layer: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The errno, signal or observation behind it.
    pub detail: String,
}

/// Judges what a probe saw.
pub fn verdict(p: &probes::Probe, seen: &Seen) -> (Verdict, String) {
    match seen {
        Seen::Errno(e) if p.blocked_by.contains(e) => (Verdict::Blocked, format!("{e:?}")),
        Seen::Errno(e) => (
            Verdict::Escaped,
            format!("{e:?} (the call got past the sandbox's checks)"),
        ),
        Seen::Done(d) => (Verdict::Escaped, d.clone()),
        Seen::Blocked(d) => (Verdict::Blocked, d.clone()),
        Seen::NotApplicable(d) => (Verdict::NotApplicable, d.clone()),
        // Killed by seccomp, by the OOM killer (or cgroup), or by a resource limit.
        Seen::Signal(s)
            if [libc::SIGSYS, libc::SIGKILL, libc::SIGXFSZ, libc::SIGXCPU].contains(s) =>
        {
            (Verdict::Blocked, format!("killed by {}", signal_name(*s)))
        }
        Seen::Signal(s) => (Verdict::Error, format!("killed by {}", signal_name(*s))),
        Seen::Broken(d) => (Verdict::Error, d.clone()),
    }
}

/// An escape the policy grants (`audit.grants`) is shown as such, and does not fail the audit.
fn granted(
    ctx: &Ctx,
    control: bool,
    name: &str,
    verdict: Verdict,
    detail: String,
) -> (Verdict, String) {
    if verdict == Verdict::Escaped && !control && ctx.grants.iter().any(|g| g == name) {
        (
            Verdict::NotApplicable,
            format!("granted by the policy (audit.grants): {detail}"),
        )
    } else {
        (verdict, detail)
    }
}

/// Judges what the attempt of one of the policy's expectations saw.
pub fn expectation_verdict(e: &Expectation, seen: &Seen) -> (Verdict, String) {
    let worked = matches!(seen, Seen::Done(_));
    let detail = match seen {
        Seen::Errno(x) => format!("{x:?}"),
        Seen::Done(d) | Seen::Blocked(d) | Seen::NotApplicable(d) | Seen::Broken(d) => d.clone(),
        Seen::Signal(s) => format!("killed by {}", signal_name(*s)),
    };
    if matches!(seen, Seen::Broken(_)) {
        return (Verdict::Error, detail);
    }
    match (e.deny, worked) {
        (true, false) | (false, true) => (Verdict::Blocked, detail),
        _ => (Verdict::Escaped, detail),
    }
}

fn signal_name(s: i32) -> String {
    nix::sys::signal::Signal::try_from(s)
        .map_or_else(|_| format!("signal {s}"), |sig| sig.to_string())
}

/// What ran the battery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxKind {
    /// A sandbox kekkai built from a policy.
    Policy,
    /// Another launcher's command line (`--wrap`).
    Wrap,
    /// No sandbox (`--control`).
    Control,
    /// The probe run by hand, in whatever runs it.
    Standalone,
}

/// The sandbox an audit is about: a report's header, a column of `--compare`'s matrix, an entry
/// of a baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    /// A short name, unique within one `--compare` (the policy's name, the wrapper's program).
    pub label: String,
    /// What kind.
    pub kind: SandboxKind,
    /// What it is in full: the policy's name and file, the wrapper's command line.
    pub description: String,
}

impl Sandbox {
    /// The probe run by hand.
    pub fn standalone() -> Sandbox {
        Sandbox {
            label: "standalone".into(),
            kind: SandboxKind::Standalone,
            description: "the probe, run by hand".into(),
        }
    }
}

/// The whole audit's result.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// The sandbox audited.
    pub sandbox: Sandbox,
    /// The policy's name (for a sandbox kekkai built).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Its hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Run unsandboxed (`--control`).
    pub control: bool,
    /// Per probe.
    pub probes: Vec<ProbeReport>,
    /// What the sandbox's run said about itself (limits that fired, layers a best-effort
    /// policy dropped, anything the battery wrote to stderr): context for the verdicts, kept
    /// here rather than on the launcher's stderr.
    pub notes: Vec<String>,
    /// Counts.
    pub summary: Summary,
    /// How long the battery took (for JUnit's `time`).
    #[serde(skip)]
    pub elapsed: Option<std::time::Duration>,
}

/// Counts by verdict.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Blocked.
    pub blocked: usize,
    /// Escaped.
    pub escaped: usize,
    /// Not applicable.
    pub not_applicable: usize,
    /// Errors.
    pub errors: usize,
}

impl Summary {
    /// Counts one verdict.
    pub fn add(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Blocked => self.blocked += 1,
            Verdict::Escaped => self.escaped += 1,
            Verdict::NotApplicable => self.not_applicable += 1,
            Verdict::Error => self.errors += 1,
        }
    }
}

impl AuditReport {
    /// An empty report about `sandbox`.
    pub fn new(sandbox: Sandbox, control: bool) -> AuditReport {
        AuditReport {
            sandbox,
            policy: None,
            hash: None,
            control,
            probes: Vec::new(),
            notes: Vec::new(),
            summary: Summary::default(),
            elapsed: None,
        }
    }

    /// Did everything hold (no escape, no broken probe)?
    pub fn passed(&self) -> bool {
        self.summary.escaped == 0 && self.summary.errors == 0
    }

    /// The human table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<32} {:<11} {:<15} {:<22} {}\n",
            "PROBE", "CATEGORY", "VERDICT", "LAYER", "DETAIL"
        );
        for p in &self.probes {
            let v = match p.verdict {
                Verdict::Blocked => "blocked",
                Verdict::Escaped => "ESCAPED",
                Verdict::NotApplicable => "n/a",
                Verdict::Error => "ERROR",
            };
            s.push_str(&format!(
                "{:<32} {:<11} {:<15} {:<22} {}\n",
                p.name, p.category, v, p.layer, p.detail
            ));
        }
        for n in &self.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        let m = &self.summary;
        s.push_str(&format!(
            "{} probes{}: {} blocked, {} escaped, {} not applicable, {} errors\n",
            self.probes.len(),
            if self.control {
                " (control run, unsandboxed)"
            } else {
                ""
            },
            m.blocked,
            m.escaped,
            m.not_applicable,
            m.errors
        ));
        s
    }
}

/// Judges the battery's output into `report` (made by [`AuditReport::new`]): one verdict per
/// probe the battery should have run (one that did not report is an error), in report order.
pub fn judge(mut report: AuditReport, output: &str, only: Option<&str>, ctx: &Ctx) -> AuditReport {
    let control = report.control;
    let lines: Vec<Line> = output
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let seen_of = |name: &str| {
        lines
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.seen.clone())
    };
    for p in probes::all() {
        if only.is_some_and(|c| c != p.category) || (control && !p.control_safe) {
            continue;
        }
        let (verdict, detail) = match seen_of(p.name) {
            Some(seen) => verdict(&p, &seen),
            None => (Verdict::Error, "the probe did not report".into()),
        };
        let (verdict, detail) = granted(ctx, control, p.name, verdict, detail);
        report.probes.push(ProbeReport {
            name: p.name.into(),
            category: p.category.into(),
            layer: p.layer.into(),
            verdict,
            detail,
        });
    }
    if only.is_none_or(|c| c == "expect") {
        for e in &ctx.expectations {
            let (verdict, detail) = match seen_of(&e.name()) {
                Some(seen) => expectation_verdict(e, &seen),
                None => (Verdict::Error, "the probe did not report".into()),
            };
            report.probes.push(ProbeReport {
                name: e.name(),
                category: "expect".into(),
                layer: "policy".into(),
                verdict,
                detail,
            });
        }
    }
    for p in &report.probes {
        report.summary.add(p.verdict);
    }
    report
}

/// The notes for the report from the sandbox's run: its `--report` record (`None` for a
/// control run) and what it wrote to stderr. A limit firing is the expected result of a
/// resource probe, and is said as such.
pub fn run_notes(plan: &Plan, run: Option<&serde_json::Value>, stderr: &[u8]) -> Vec<String> {
    let mut notes: Vec<String> = plan
        .protected
        .iter()
        .map(|p| format!("the policy's hiding holds over {p}"))
        .collect();
    if let Some(r) = run {
        let flag = |k: &str| r["ended"][k].as_bool().unwrap_or(false);
        let list = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let dropped = list(&r["enforced"]["cgroup_dropped"]);
        if !dropped.is_empty() {
            notes.push(format!(
                "cgroup limits (best-effort) dropped: {}",
                dropped.join("; ")
            ));
        }
        let dropped = list(&r["enforced"]["landlock"]["dropped"]);
        if !dropped.is_empty() {
            notes.push(format!(
                "landlock (best-effort) dropped: {}",
                dropped.join("; ")
            ));
        }
        if flag("oom_killed") {
            let limit = plan
                .limits
                .memory
                .as_deref()
                .map_or_else(|| "?".into(), |m| format_size(*m));
            notes.push(format!(
                "the memory limit ({limit}) OOM-killed a process in the sandbox, as resources.memory expects"
            ));
        }
        if flag("pids_limit_hit") {
            notes.push(format!(
                "fork failed at the pids limit ({}), as resources.fork-bomb expects",
                plan.limits.pids.as_deref().copied().unwrap_or_default()
            ));
        }
        if let Some([program, errno]) = r["ended"]["exec_error"].as_array().map(Vec::as_slice) {
            notes.push(format!(
                "the battery could not be executed: {} ({})",
                program.as_str().unwrap_or_default(),
                errno.as_str().unwrap_or_default()
            ));
        }
        if flag("timed_out") {
            // The harness may have raised a short timeout (audit::harness::MIN_TIMEOUT).
            let timeout = if r["audit_harness"]["timeout"].is_string() {
                super::harness::MIN_TIMEOUT
            } else {
                plan.timeout.unwrap_or_default()
            };
            notes.push(format!(
                "the policy's timeout ({timeout:?}) ended the battery; probes that had not reported are errors"
            ));
        }
    }
    notes.extend(run_notes_of_stderr(stderr));
    notes
}

/// What the sandbox wrote to stderr, a note per line.
pub fn run_notes_of_stderr(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("stderr: {l}"))
        .collect()
}

/// What reached stdout besides the probes' lines (a wrapper's own messages), a note per line.
pub fn stray_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && serde_json::from_str::<Line>(l).is_err())
        .map(|l| format!("stdout: {l}"))
        .collect()
}

/// Adds the verdicts of the run with a terminal on stdin (its [`probes::TERMINAL`] probes, named
/// with [`STDIN_TTY`]) to `report`.
pub fn add_stdin_tty_run(report: &mut AuditReport, output: &str, control: bool) {
    // Right after the other terminal probes.
    let mut at = report
        .probes
        .iter()
        .rposition(|p| p.category == probes::TERMINAL)
        .map_or(report.probes.len(), |i| i + 1);
    let lines: Vec<Line> = output
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    for p in probes::all() {
        if p.category != probes::TERMINAL || (control && !p.control_safe) {
            continue;
        }
        let (verdict, detail) = match lines.iter().find(|l| l.name == p.name) {
            Some(l) => verdict(&p, &l.seen),
            None => (Verdict::Error, "the probe did not report".into()),
        };
        report.summary.add(verdict);
        report.probes.insert(
            at,
            ProbeReport {
                name: format!("{}{STDIN_TTY}", p.name),
                category: p.category.into(),
                layer: p.layer.into(),
                verdict,
                detail,
            },
        );
        at += 1;
    }
}
