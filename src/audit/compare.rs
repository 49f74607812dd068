//! `kekkai audit --compare`: the audits of several sandboxes as one matrix, probes × sandboxes,
//! each cell blocked, ESCAPE, n/a or ERROR (`-` where a sandbox did not run the probe: a
//! policy's own expectations), as a table and as JSON.

use serde::Serialize;

use super::report::{AuditReport, Sandbox, Summary, Verdict};

/// One cell.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The verdict.
    pub verdict: Verdict,
    /// Why.
    pub detail: String,
}

/// One probe's row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The probe.
    pub name: String,
    /// Its category.
    pub category: String,
    /// Per sandbox, in the order of [`Matrix::sandboxes`]; `None`: not run there.
    pub cells: Vec<Option<Cell>>,
}

/// The matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    /// The columns.
    pub sandboxes: Vec<Sandbox>,
    /// Per sandbox, the counts.
    pub summaries: Vec<Summary>,
    /// Per sandbox, its notes.
    pub notes: Vec<Vec<String>>,
    /// The rows, in report order.
    pub probes: Vec<Row>,
}

impl Matrix {
    /// The matrix of `reports`.
    pub fn of(reports: &[AuditReport]) -> Matrix {
        let mut rows: Vec<Row> = Vec::new();
        for (i, r) in reports.iter().enumerate() {
            for p in &r.probes {
                let at = match rows.iter().position(|row| row.name == p.name) {
                    Some(at) => at,
                    None => {
                        rows.push(Row {
                            name: p.name.clone(),
                            category: p.category.clone(),
                            cells: vec![None; reports.len()],
                        });
                        rows.len() - 1
                    }
                };
                if let Some(cell) = rows.get_mut(at).and_then(|row| row.cells.get_mut(i)) {
                    *cell = Some(Cell {
                        verdict: p.verdict,
                        detail: p.detail.clone(),
                    });
                }
            }
        }
        Matrix {
            sandboxes: reports.iter().map(|r| r.sandbox.clone()).collect(),
            summaries: reports.iter().map(|r| r.summary.clone()).collect(),
            notes: reports.iter().map(|r| r.notes.clone()).collect(),
            probes: rows,
        }
    }

    /// The table a reviewer reads: a column per sandbox (its label), a legend below.
    pub fn table(&self) -> String {
        let first = self
            .probes
            .iter()
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let widths: Vec<usize> = self
            .sandboxes
            .iter()
            .map(|s| s.label.chars().count().max(7))
            .collect();
        let mut s = format!("{:<first$}", "PROBE");
        for (sb, w) in self.sandboxes.iter().zip(&widths) {
            s.push_str(&format!("  {:<w$}", sb.label));
        }
        s.push('\n');
        for row in &self.probes {
            s.push_str(&format!("{:<first$}", row.name));
            for (cell, w) in row.cells.iter().zip(&widths) {
                let v = match cell.as_ref().map(|c| c.verdict) {
                    None => "-",
                    Some(Verdict::Blocked) => "blocked",
                    Some(Verdict::Escaped) => "ESCAPE",
                    Some(Verdict::NotApplicable) => "n/a",
                    Some(Verdict::Error) => "ERROR",
                };
                s.push_str(&format!("  {v:<w$}"));
            }
            s.push('\n');
        }
        s.push_str(&format!("{:<first$}", "escapes"));
        for (m, w) in self.summaries.iter().zip(&widths) {
            s.push_str(&format!("  {:<w$}", m.escaped));
        }
        s.push('\n');
        s.push('\n');
        for sb in &self.sandboxes {
            s.push_str(&format!("{}: {}\n", sb.label, sb.description));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::report::{ProbeReport, SandboxKind};

    fn report(label: &str, probes: &[(&str, Verdict)]) -> AuditReport {
        let mut r = AuditReport::new(
            Sandbox {
                label: label.into(),
                kind: SandboxKind::Policy,
                description: format!("the {label} sandbox"),
            },
            false,
        );
        for (name, v) in probes {
            r.probes.push(ProbeReport {
                name: (*name).into(),
                category: "c".into(),
                layer: "l".into(),
                verdict: *v,
                detail: String::new(),
            });
            r.summary.add(*v);
        }
        r
    }

    #[test]
    fn one_row_per_probe_one_column_per_sandbox() {
        let m = Matrix::of(&[
            report(
                "default",
                &[
                    ("a.x", Verdict::Blocked),
                    ("must-deny:read:/x", Verdict::Blocked),
                ],
            ),
            report("bwrap", &[("a.x", Verdict::Escaped)]),
        ]);
        assert_eq!(
            m.table(),
            "PROBE              default  bwrap  \n\
             a.x                blocked  ESCAPE \n\
             must-deny:read:/x  blocked  -      \n\
             escapes            0        1      \n\
             \n\
             default: the default sandbox\n\
             bwrap: the bwrap sandbox\n"
        );
        let j = serde_json::to_value(&m).unwrap();
        assert_eq!(j["probes"][0]["cells"][1]["verdict"], "escaped");
        assert!(j["probes"][1]["cells"][1].is_null());
    }
}
