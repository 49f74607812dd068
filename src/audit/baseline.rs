//! Baselines: the verdicts of an audit saved (`--save-baseline FILE`) and later compared with a
//! new audit of the same sandbox (`--baseline FILE`), so that CI fails on a regression and not
//! on the holes a sandbox is known to have.
//!
//! A regression is a probe the baseline saw blocked that escapes now. A probe that did not
//! report properly, where the baseline had it judged, fails too: a battery that no longer runs
//! would otherwise hide every regression. Everything else is reported and does not fail:
//! improvements (an escape now blocked), probes no longer judged, new probes, probes gone.
//!
//! The file is JSON, one entry per sandbox label (one for an audit, several for `--compare`),
//! with what the host was (kernel, `dev.tty.legacy_tiocsti`, who ran it), which a verdict may
//! depend on. It is written without following a symbolic link, into a regular file of the
//! caller's own ([`crate::hostfs::create_for_writing`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::report::{AuditReport, Verdict};

/// The file's format version.
pub const VERSION: u32 = 1;

/// A saved audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// The format version ([`VERSION`]).
    #[serde(rename = "kekkai-audit-baseline")]
    pub version: u32,
    /// What the host was when it was saved.
    pub host: HostFacts,
    /// Per sandbox (by label).
    pub sandboxes: BTreeMap<String, Entry>,
}

/// What of the host a verdict may depend on.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFacts {
    /// The kernel's release.
    pub kernel: String,
    /// `dev.tty.legacy_tiocsti` (TIOCSTI for everyone, or only CAP_SYS_ADMIN).
    pub legacy_tiocsti: Option<String>,
    /// The uid that ran the audit (root and rootless runs differ).
    pub uid: u32,
}

impl HostFacts {
    /// This host, for the caller `uid`.
    pub fn here(uid: u32) -> HostFacts {
        HostFacts {
            kernel: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            legacy_tiocsti: std::fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti")
                .ok()
                .map(|s| s.trim().to_owned()),
            uid,
        }
    }
}

/// One sandbox's verdicts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// What the sandbox was.
    pub description: String,
    /// Probe name → verdict.
    pub probes: BTreeMap<String, Verdict>,
}

/// The baseline of `reports`, made on this host by `uid`.
pub fn of(reports: &[AuditReport], uid: u32) -> Baseline {
    Baseline {
        version: VERSION,
        host: HostFacts::here(uid),
        sandboxes: reports
            .iter()
            .map(|r| {
                (
                    r.sandbox.label.clone(),
                    Entry {
                        description: r.sandbox.description.clone(),
                        probes: r
                            .probes
                            .iter()
                            .map(|p| (p.name.clone(), p.verdict))
                            .collect(),
                    },
                )
            })
            .collect(),
    }
}

/// Writes `baseline` to `path` for the caller `me` (no symbolic link followed; an existing file
/// must be a regular file of the caller's own, with one link), replacing what it held.
pub fn save(path: &Path, me: u32, baseline: &Baseline) -> Result<(), String> {
    let mut file = crate::hostfs::create_for_writing(path, me)?;
    let text = serde_json::to_string_pretty(baseline).map_err(|e| e.to_string())? + "\n";
    file.set_len(0).map_err(|e| e.to_string())?;
    file.write_all(text.as_bytes()).map_err(|e| e.to_string())
}

/// Reads a baseline.
pub fn load(path: &Path) -> Result<Baseline, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let b: Baseline =
        serde_json::from_str(&text).map_err(|e| format!("not a kekkai audit baseline: {e}"))?;
    if b.version != VERSION {
        return Err(format!(
            "baseline format {} (this kekkai reads {VERSION})",
            b.version
        ));
    }
    Ok(b)
}

/// How a probe's verdict changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Blocked before, escapes now: fails.
    Regression,
    /// Judged before, did not report properly now: fails.
    Broken,
    /// Escaped (or failed to report) before, blocked now.
    Improved,
    /// Any other change (blocked ↔ not applicable, escaped → not applicable, ...).
    Changed,
    /// Not in the baseline.
    New,
    /// In the baseline, not run now.
    Gone,
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What kind.
    pub kind: Kind,
    /// The sandbox's label.
    pub sandbox: String,
    /// The probe.
    pub probe: String,
    /// Before.
    pub before: Option<Verdict>,
    /// Now.
    pub after: Option<Verdict>,
    /// The probe's detail now.
    pub detail: String,
}

/// How one verdict's change is classed.
pub fn classify(before: Option<Verdict>, after: Option<Verdict>) -> Option<Kind> {
    use Verdict::{Blocked, Error, Escaped};
    Some(match (before, after) {
        (b, a) if b == a => return None,
        (None, _) => Kind::New,
        (_, None) => Kind::Gone,
        (Some(Blocked), Some(Escaped)) => Kind::Regression,
        (Some(_), Some(Error)) => Kind::Broken,
        (Some(Escaped | Error), Some(Blocked)) => Kind::Improved,
        _ => Kind::Changed,
    })
}

/// The differences between `baseline` and `reports`. Each report is matched by its sandbox's
/// label; a baseline of one sandbox matches an audit of one sandbox whatever its label.
pub fn diff(baseline: &Baseline, reports: &[AuditReport]) -> Result<Vec<Change>, String> {
    let mut out = Vec::new();
    for r in reports {
        let entry = match baseline.sandboxes.get(&r.sandbox.label) {
            Some(e) => e,
            None if baseline.sandboxes.len() == 1 && reports.len() == 1 => baseline
                .sandboxes
                .values()
                .next()
                .ok_or("an empty baseline")?,
            None => {
                return Err(format!(
                    "the baseline has no sandbox `{}` (it has: {})",
                    r.sandbox.label,
                    baseline
                        .sandboxes
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        };
        for p in &r.probes {
            let before = entry.probes.get(&p.name).copied();
            if let Some(kind) = classify(before, Some(p.verdict)) {
                out.push(Change {
                    kind,
                    sandbox: r.sandbox.label.clone(),
                    probe: p.name.clone(),
                    before,
                    after: Some(p.verdict),
                    detail: p.detail.clone(),
                });
            }
        }
        for (name, before) in &entry.probes {
            if !r.probes.iter().any(|p| &p.name == name) {
                out.push(Change {
                    kind: Kind::Gone,
                    sandbox: r.sandbox.label.clone(),
                    probe: name.clone(),
                    before: Some(*before),
                    after: None,
                    detail: String::new(),
                });
            }
        }
    }
    out.sort_by(|a, b| (a.kind, &a.sandbox, &a.probe).cmp(&(b.kind, &b.sandbox, &b.probe)));
    Ok(out)
}

/// Does the difference fail the audit?
pub fn fails(changes: &[Change]) -> bool {
    changes
        .iter()
        .any(|c| matches!(c.kind, Kind::Regression | Kind::Broken))
}

fn shown(v: Option<Verdict>) -> &'static str {
    match v {
        None => "-",
        Some(Verdict::Blocked) => "blocked",
        Some(Verdict::Escaped) => "ESCAPED",
        Some(Verdict::NotApplicable) => "n/a",
        Some(Verdict::Error) => "ERROR",
    }
}

/// The difference for people: a summary line, then one line per change.
pub fn render(changes: &[Change], file: &Path, several: bool) -> String {
    let count = |k: Kind| changes.iter().filter(|c| c.kind == k).count();
    let mut s = format!(
        "baseline {}: {} regression(s), {} broken, {} improved, {} changed, {} new, {} gone\n",
        file.display(),
        count(Kind::Regression),
        count(Kind::Broken),
        count(Kind::Improved),
        count(Kind::Changed),
        count(Kind::New),
        count(Kind::Gone),
    );
    for c in changes {
        let tag = match c.kind {
            Kind::Regression => "REGRESSION",
            Kind::Broken => "BROKEN",
            Kind::Improved => "improved",
            Kind::Changed => "changed",
            Kind::New => "new",
            Kind::Gone => "gone",
        };
        let name = if several {
            format!("[{}] {}", c.sandbox, c.probe)
        } else {
            c.probe.clone()
        };
        s.push_str(&format!(
            "  {tag:<10} {name}: {} -> {}{}\n",
            shown(c.before),
            shown(c.after),
            if c.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", c.detail)
            }
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::report::{ProbeReport, Sandbox, SandboxKind};
    use Verdict::{Blocked, Error, Escaped, NotApplicable};
    use rstest::rstest;

    #[rstest]
    #[case(Some(Blocked), Some(Blocked), None)]
    #[case(Some(Blocked), Some(Escaped), Some(Kind::Regression))]
    #[case(Some(Blocked), Some(Error), Some(Kind::Broken))]
    #[case(Some(NotApplicable), Some(Error), Some(Kind::Broken))]
    #[case(Some(Error), Some(Error), None)]
    #[case(Some(Escaped), Some(Blocked), Some(Kind::Improved))]
    #[case(Some(Error), Some(Blocked), Some(Kind::Improved))]
    #[case(Some(Escaped), Some(Escaped), None)]
    #[case(Some(NotApplicable), Some(Escaped), Some(Kind::Changed))]
    #[case(Some(Blocked), Some(NotApplicable), Some(Kind::Changed))]
    #[case(None, Some(Escaped), Some(Kind::New))]
    #[case(Some(Blocked), None, Some(Kind::Gone))]
    fn classes(
        #[case] before: Option<Verdict>,
        #[case] after: Option<Verdict>,
        #[case] want: Option<Kind>,
    ) {
        assert_eq!(classify(before, after), want);
    }

    fn report(label: &str, probes: &[(&str, Verdict)]) -> AuditReport {
        let mut r = AuditReport::new(
            Sandbox {
                label: label.into(),
                kind: SandboxKind::Wrap,
                description: label.into(),
            },
            false,
        );
        for (name, v) in probes {
            r.probes.push(ProbeReport {
                name: (*name).into(),
                category: "c".into(),
                layer: "l".into(),
                verdict: *v,
                detail: "d".into(),
            });
        }
        r
    }

    #[test]
    fn an_unchanged_audit_passes_and_a_weakened_one_fails() {
        let strong = report("bwrap", &[("a", Blocked), ("b", Escaped), ("c", Blocked)]);
        let b = of(std::slice::from_ref(&strong), 0);
        assert_eq!(diff(&b, &[strong]).unwrap(), vec![]);
        // Another label, but one sandbox each: still compared.
        let weak = report("bwrap2", &[("a", Escaped), ("b", Blocked), ("d", Escaped)]);
        let d = diff(&b, &[weak]).unwrap();
        let kinds: Vec<(Kind, &str)> = d.iter().map(|c| (c.kind, c.probe.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (Kind::Regression, "a"),
                (Kind::Improved, "b"),
                (Kind::New, "d"),
                (Kind::Gone, "c")
            ]
        );
        assert!(fails(&d));
        assert!(render(&d, Path::new("f"), false).contains("REGRESSION a: blocked -> ESCAPED (d)"));
    }

    #[test]
    fn several_sandboxes_match_by_label() {
        let b = of(
            &[
                report("x", &[("a", Blocked)]),
                report("y", &[("a", Blocked)]),
            ],
            0,
        );
        assert!(diff(&b, &[report("z", &[("a", Blocked)])]).is_err());
        let d = diff(
            &b,
            &[
                report("y", &[("a", Escaped)]),
                report("x", &[("a", Blocked)]),
            ],
        )
        .unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].sandbox, "y");
    }

    #[test]
    fn round_trips_and_refuses_other_files() {
        let b = of(
            &[report("x", &[("a", Blocked), ("b", NotApplicable)])],
            1001,
        );
        let text = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<Baseline>(&text).unwrap(), b);
        assert!(serde_json::from_str::<Baseline>("{\"probes\": []}").is_err());
    }
}
