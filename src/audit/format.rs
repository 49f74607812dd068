//! The report formats of `kekkai audit --format`: the table (people), JSON (the report as it
//! is), JUnit XML (one test case per probe, for CI dashboards), SARIF 2.1.0 (code-scanning
//! views) and TAP 13 (shell-based CI). Each takes one report or several (`--compare`: one
//! JUnit test suite, one SARIF run per sandbox; TAP numbers them all in one plan).
//!
//! JUnit's XML is written by hand: every text and attribute goes through [`xml_escape`], which
//! escapes the five markup characters and drops what XML 1.0 can't carry at all (control
//! characters other than tab, line feed and carriage return; U+FFFE, U+FFFF), so that a probe's
//! detail, which may quote anything a sandbox said, can't break the document.

use std::fmt::Write as _;

use serde_json::json;

use super::report::{AuditReport, Verdict};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The table (and, for several sandboxes, the matrix).
    Table,
    /// JSON: the report (for several sandboxes, the matrix).
    Json,
    /// JUnit XML.
    Junit,
    /// SARIF 2.1.0.
    Sarif,
    /// TAP 13.
    Tap,
}

/// What the formats say besides the reports: when, where, which kekkai.
#[derive(Debug, Clone)]
pub struct Meta {
    /// kekkai's version.
    pub version: String,
    /// The host's name.
    pub hostname: String,
    /// When the audit started, `YYYY-MM-DDTHH:MM:SS` (UTC).
    pub timestamp: String,
}

impl Meta {
    /// This host, now.
    pub fn now() -> Meta {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Meta {
            version: env!("CARGO_PKG_VERSION").into(),
            hostname: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            timestamp: utc_timestamp(secs),
        }
    }
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SS` (UTC; the civil-from-days algorithm of
/// H. Hinnant's date library).
pub fn utc_timestamp(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `text` made safe for XML 1.0 character data and (double-quoted) attribute values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Kept as references, so that attribute values keep them too.
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            // Not allowed anywhere in XML 1.0, not even as a reference.
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn word(v: Verdict) -> &'static str {
    match v {
        Verdict::Blocked => "blocked",
        Verdict::Escaped => "escaped",
        Verdict::NotApplicable => "not applicable",
        Verdict::Error => "error",
    }
}

fn secs(r: &AuditReport) -> f64 {
    r.elapsed.map_or(0.0, |d| d.as_secs_f64())
}

/// JUnit XML: a test suite per sandbox, a test case per probe. An escape is a `failure`, a
/// probe that did not report properly an `error`, one that does not apply `skipped`; a blocked
/// probe passes, with its detail as the case's output.
pub fn junit(reports: &[AuditReport], meta: &Meta) -> String {
    let x = xml_escape;
    let total = |f: &dyn Fn(&AuditReport) -> usize| reports.iter().map(f).sum::<usize>();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"kekkai audit\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\">",
        total(&|r| r.probes.len()),
        total(&|r| r.summary.escaped),
        total(&|r| r.summary.errors),
        reports.iter().map(secs).sum::<f64>()
    );
    for r in reports {
        let _ = writeln!(
            s,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\" timestamp=\"{}\" hostname=\"{}\">",
            x(&r.sandbox.label),
            r.probes.len(),
            r.summary.escaped,
            r.summary.errors,
            r.summary.not_applicable,
            secs(r),
            x(&meta.timestamp),
            x(&meta.hostname)
        );
        s.push_str("    <properties>\n");
        let mut props = vec![
            ("kekkai.version", meta.version.clone()),
            ("kekkai.sandbox", r.sandbox.description.clone()),
        ];
        props.extend(r.policy.clone().map(|p| ("kekkai.policy", p)));
        props.extend(r.hash.clone().map(|h| ("kekkai.policy-hash", h)));
        for (name, value) in props {
            let _ = writeln!(
                s,
                "      <property name=\"{}\" value=\"{}\"/>",
                x(name),
                x(&value)
            );
        }
        s.push_str("    </properties>\n");
        for p in &r.probes {
            let open = format!(
                "    <testcase classname=\"kekkai.audit.{}\" name=\"{}\">",
                x(&p.category),
                x(&p.name)
            );
            let body = match p.verdict {
                Verdict::Escaped => format!(
                    "<failure type=\"ESCAPE\" message=\"{}\">layer: {}&#10;{}</failure>",
                    x(&p.detail),
                    x(&p.layer),
                    x(&p.detail)
                ),
                Verdict::Error => format!(
                    "<error type=\"ERROR\" message=\"{}\">{}</error>",
                    x(&p.detail),
                    x(&p.detail)
                ),
                Verdict::NotApplicable => {
                    format!("<skipped message=\"n/a: {}\"/>", x(&p.detail))
                }
                Verdict::Blocked => format!(
                    "<system-out>blocked by {}: {}</system-out>",
                    x(&p.layer),
                    x(&p.detail)
                ),
            };
            let _ = writeln!(s, "{open}{body}</testcase>");
        }
        if !r.notes.is_empty() {
            let _ = writeln!(s, "    <system-out>{}</system-out>", x(&r.notes.join("\n")));
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}

/// SARIF 2.1.0: a run per sandbox; a rule per probe; a result per probe with `kind` pass,
/// fail, notApplicable or open (the probe did not report properly), `level` error for an
/// escape and none otherwise (SARIF allows a level only on failures). A probe has no source
/// file: its location is logical (the sandbox, and the probe in it).
pub fn sarif(reports: &[AuditReport], meta: &Meta) -> serde_json::Value {
    let runs: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| {
            let rules: Vec<serde_json::Value> = r
                .probes
                .iter()
                .map(|p| {
                    json!({
                        "id": p.name,
                        "shortDescription": { "text": format!("{}: an escape the {} layer should stop", p.name, p.layer) },
                        "properties": { "category": p.category, "layer": p.layer },
                    })
                })
                .collect();
            let results: Vec<serde_json::Value> = r
                .probes
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let (kind, level) = match p.verdict {
                        Verdict::Blocked => ("pass", "none"),
                        Verdict::Escaped => ("fail", "error"),
                        Verdict::NotApplicable => ("notApplicable", "none"),
                        Verdict::Error => ("open", "none"),
                    };
                    json!({
                        "ruleId": p.name,
                        "ruleIndex": i,
                        "kind": kind,
                        "level": level,
                        "message": { "text": format!("{} ({}): {}", word(p.verdict), p.layer, p.detail) },
                        "locations": [{
                            "logicalLocations": [{
                                "name": p.name,
                                "fullyQualifiedName": format!("{}/{}", r.sandbox.label, p.name),
                                "kind": "resource",
                            }],
                        }],
                        "properties": { "verdict": p.verdict, "category": p.category },
                    })
                })
                .collect();
            json!({
                "tool": { "driver": {
                    "name": "kekkai audit",
                    "version": meta.version,
                    "rules": rules,
                }},
                "automationDetails": { "id": format!("kekkai-audit/{}/", r.sandbox.label) },
                "invocations": [{
                    "executionSuccessful": r.summary.errors == 0,
                    "startTimeUtc": format!("{}Z", meta.timestamp),
                    "machine": meta.hostname,
                    "toolExecutionNotifications": r.notes.iter().map(|n| json!({ "level": "note", "message": { "text": n } })).collect::<Vec<_>>(),
                }],
                "results": results,
                "properties": {
                    "sandbox": r.sandbox,
                    "policy": r.policy,
                    "policyHash": r.hash,
                    "summary": r.summary,
                },
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": runs,
    })
}

/// One line of TAP text: no line breaks, and no `#` (it would start a directive).
fn tap_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            '#' => '_',
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// TAP 13: one test point per probe (`[label] name` when there are several sandboxes), `ok`
/// when blocked, `ok … # SKIP` when not applicable, `not ok` with a YAML block for an escape
/// or a probe that did not report properly.
pub fn tap(reports: &[AuditReport]) -> String {
    let total: usize = reports.iter().map(|r| r.probes.len()).sum();
    let mut s = format!("TAP version 13\n1..{total}\n");
    let several = reports.len() > 1;
    let mut n = 0;
    for r in reports {
        let _ = writeln!(s, "# {}", tap_text(&r.sandbox.description));
        for p in &r.probes {
            n += 1;
            let name = if several {
                tap_text(&format!("[{}] {}", r.sandbox.label, p.name))
            } else {
                tap_text(&p.name)
            };
            match p.verdict {
                Verdict::Blocked => {
                    let _ = writeln!(s, "ok {n} - {name}");
                }
                Verdict::NotApplicable => {
                    let _ = writeln!(s, "ok {n} - {name} # SKIP n/a: {}", tap_text(&p.detail));
                }
                Verdict::Escaped | Verdict::Error => {
                    let q = |t: &str| serde_json::to_string(t).unwrap_or_default();
                    let _ = writeln!(s, "not ok {n} - {name}");
                    let _ = writeln!(
                        s,
                        "  ---\n  message: {}\n  severity: {}\n  data:\n    category: {}\n    layer: {}\n  ...",
                        q(&p.detail),
                        if p.verdict == Verdict::Escaped {
                            "fail"
                        } else {
                            "error"
                        },
                        q(&p.category),
                        q(&p.layer)
                    );
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::report::{ProbeReport, Sandbox, SandboxKind};
    use rstest::rstest;

    #[rstest]
    #[case::markup("<a href=\"x\">&'", "&lt;a href=&quot;x&quot;&gt;&amp;&apos;")]
    #[case::breaks("a\nb\tc\r", "a&#10;b&#9;c&#13;")]
    #[case::forbidden(
        "nul\u{0} esc\u{1b} bell\u{7} \u{fffe}",
        "nul\u{fffd} esc\u{fffd} bell\u{fffd} \u{fffd}"
    )]
    #[case::cdata_end("]]>", "]]&gt;")]
    #[case::unicode("結界 ✓", "結界 ✓")]
    fn xml_escapes(#[case] text: &str, #[case] want: &str) {
        assert_eq!(xml_escape(text), want);
    }

    #[rstest]
    #[case(0, "1970-01-01T00:00:00")]
    #[case(951_782_400, "2000-02-29T00:00:00")]
    #[case(1_796_547_723, "2026-12-06T09:02:03")]
    fn timestamps(#[case] secs: u64, #[case] want: &str) {
        assert_eq!(utc_timestamp(secs), want);
    }

    /// A report whose every field carries what could break a format.
    pub fn hostile() -> AuditReport {
        let evil = "</failure><x a=\"1\">&amp; ]]> \u{0}\u{1b}[31m\n# SKIP not ok 7 - x\n  ---";
        let mut r = AuditReport::new(
            Sandbox {
                label: "b<w>r\"a'p".into(),
                kind: SandboxKind::Wrap,
                description: format!("bwrap {evil}"),
            },
            false,
        );
        for (i, v) in [
            Verdict::Blocked,
            Verdict::Escaped,
            Verdict::NotApplicable,
            Verdict::Error,
        ]
        .into_iter()
        .enumerate()
        {
            r.probes.push(ProbeReport {
                name: format!("cat.probe-{i}{evil}"),
                category: format!("cat{evil}"),
                layer: format!("layer{evil}"),
                verdict: v,
                detail: format!("detail{evil}"),
            });
            r.summary.add(v);
        }
        r.notes.push(format!("note{evil}"));
        r
    }

    #[test]
    fn hostile_details_stay_inside_tap_lines() {
        let t = tap(&[hostile()]);
        let points: Vec<&str> = t
            .lines()
            .filter(|l| l.starts_with("ok ") || l.starts_with("not ok "))
            .collect();
        assert_eq!(points.len(), 4, "{t}");
        assert!(points[0].starts_with("ok 1 - "), "{t}");
        assert!(points[1].starts_with("not ok 2 - "), "{t}");
        assert!(
            points[2].starts_with("ok 3 - ") && points[2].contains(" # SKIP n/a: "),
            "{t}"
        );
        assert_eq!(points[2].matches('#').count(), 1, "{t}");
        assert!(points[3].starts_with("not ok 4 - "), "{t}");
        assert!(!t.contains('\u{0}') && !t.contains('\u{1b}'));
    }

    #[test]
    fn hostile_details_stay_inside_xml_text() {
        let x = junit(
            &[hostile()],
            &Meta {
                version: "0".into(),
                hostname: "h<".into(),
                timestamp: "t".into(),
            },
        );
        // No markup from a detail: the only elements are the ones the writer makes.
        let tags: Vec<&str> = x
            .split('<')
            .skip(1)
            .map(|t| t.split([' ', '>', '/']).next().unwrap_or(""))
            .collect();
        for t in &tags {
            assert!(
                [
                    "?xml",
                    "testsuites",
                    "testsuite",
                    "properties",
                    "property",
                    "testcase",
                    "failure",
                    "error",
                    "skipped",
                    "system-out",
                    ""
                ]
                .contains(t),
                "unexpected tag {t:?} in\n{x}"
            );
        }
        assert_eq!(x.matches("<testcase ").count(), 4);
        assert!(!x.contains('\u{0}') && !x.contains('\u{1b}'));
    }
}
