//! Every type error of a document in one pass.
//!
//! serde stops at the first error. To report the others, the document is checked against the
//! model piece by piece: each top-level key alone (`{limits: ...}`), then, inside one that
//! fails, each of its keys or list elements alone, down to [`MAX_DEPTH`]. An error is
//! attributed to a piece only when it lies at or below that piece's own path; an error about
//! the piece's parent (a required sibling that is missing when the piece stands alone) is not
//! the piece's, and the parent's whole error is reported instead. The model's fields are all
//! optional and its types plain structs, so a piece alone fails exactly where it fails in the
//! document.

use serde_yaml::{Mapping, Value};

use super::model::RawPolicy;
use super::path::{KeyPath, Seg};
use super::yaml;

/// How deep pieces are split (`mounts[2].size` is depth 3).
const MAX_DEPTH: usize = 4;
/// At most this many errors are reported.
pub const MAX_ERRORS: usize = 32;
/// At most this many pieces are checked (each check reads a small document).
const MAX_CHECKS: usize = 512;

/// One type error: where, which kind, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeError {
    /// Its key path in the real document.
    pub path: KeyPath,
    /// Which kind (an unknown key is placed at the key).
    pub kind: yaml::Kind,
    /// What is wrong.
    pub message: String,
}

/// The type errors in `doc` (a parsed policy), by key path, in document order.
pub fn type_errors(doc: &Value) -> Vec<TypeError> {
    let Value::Mapping(_) = doc else {
        return Vec::new();
    };
    let mut walk = Walk {
        checks: 0,
        out: Vec::new(),
    };
    walk.isolate(&[], doc);
    walk.out
}

struct Walk {
    checks: usize,
    out: Vec<TypeError>,
}

impl Walk {
    /// `value` at `path` fails: find the errors inside it, or report its own.
    fn isolate(&mut self, path: &[Seg], value: &Value) {
        if self.out.len() >= MAX_ERRORS {
            return;
        }
        let whole = match self.check(path, value) {
            Some(e) => e,
            None => return,
        };
        if path.len() < MAX_DEPTH {
            let before = self.out.len();
            let children: Vec<(Seg, &Value)> = match value {
                Value::Mapping(m) => m
                    .iter()
                    .filter_map(|(k, v)| Some((Seg::Key(k.as_str()?.to_owned()), v)))
                    .collect(),
                Value::Sequence(s) => s
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (Seg::Index(i), v))
                    .collect(),
                _ => Vec::new(),
            };
            for (seg, child) in children {
                let mut at = path.to_vec();
                at.push(seg);
                match self.check(&at, child) {
                    Some(e) if e.path.segs().starts_with(&at) => self.isolate(&at, child),
                    _ => {}
                }
            }
            if self.out.len() > before {
                return;
            }
        }
        self.out.push(whole);
    }

    /// Checks `value` placed at `path` in an otherwise empty document; the error, with its
    /// path in the real document.
    fn check(&mut self, path: &[Seg], value: &Value) -> Option<TypeError> {
        if self.checks >= MAX_CHECKS {
            return None;
        }
        self.checks += 1;
        let doc = wrap(path, value.clone());
        let text = serde_yaml::to_string(&doc).ok()?;
        let err = serde_yaml::from_str::<RawPolicy>(&text).err()?;
        let e = yaml::convert_error(&err);
        let shown = KeyPath::parse_shown(&e.path).unwrap_or_else(KeyPath::root);
        Some(TypeError {
            path: unwrap_path(path, &shown),
            kind: e.kind,
            message: yaml::strip_marks(&e.message),
        })
    }
}

/// `value` at `path` in a document that holds nothing else (every index is 0).
fn wrap(path: &[Seg], value: Value) -> Value {
    path.iter().rev().fold(value, |inner, seg| match seg {
        Seg::Key(k) => {
            let mut m = Mapping::new();
            m.insert(Value::String(k.clone()), inner);
            Value::Mapping(m)
        }
        Seg::Index(_) => Value::Sequence(vec![inner]),
    })
}

/// A path in a [`wrap`]ped document → the same place in the real one.
fn unwrap_path(real: &[Seg], shown: &KeyPath) -> KeyPath {
    let segs = shown.segs();
    let same_shape = segs.len() >= real.len()
        && real.iter().zip(segs).all(|(r, s)| match (r, s) {
            (Seg::Key(a), Seg::Key(b)) => a == b,
            (Seg::Index(_), Seg::Index(0)) => true,
            _ => false,
        });
    if !same_shape {
        return shown.clone();
    }
    let mut out = real.to_vec();
    out.extend_from_slice(segs.get(real.len()..).unwrap_or_default());
    KeyPath::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn paths(yaml: &str) -> Vec<String> {
        let doc: Value = serde_yaml::from_str(yaml).unwrap();
        type_errors(&doc)
            .into_iter()
            .map(|e| e.path.to_string())
            .collect()
    }

    #[rstest]
    #[case::valid("version: 1\nname: x\n", &[])]
    #[case::one("version: 1\nnamespaces: user\n", &["namespaces"])]
    #[case::two_keys(
        "version: 1\nnamespaces: user\nhostnme: x\nlimits: {memory: [1]}\n",
        &["namespaces", "hostnme", "limits.memory"]
    )]
    #[case::list_elements(
        "version: 1\nmounts:\n  - {bind: /a, writeable: true}\n  - {tmpfs: /t}\n  - {tmpfs: /u, size: [1]}\n",
        &["mounts[0].writeable", "mounts[2].size"]
    )]
    #[case::two_in_one_map("version: 1\nlimits: {memory: [1], pids: many}\n", &["limits.memory", "limits.pids"])]
    #[case::missing_sibling_is_not_an_error(
        "version: 1\nseccomp:\n  deny:\n    - {syscall: ptrace, args: 5}\n",
        &["seccomp.deny[0].args"]
    )]
    #[case::scalar_for_a_map("version: 1\nlimits: 5\nrlimits: 6\n", &["limits", "rlimits"])]
    fn finds_every_error(#[case] yaml: &str, #[case] want: &[&str]) {
        assert_eq!(paths(yaml), want);
    }

    #[test]
    fn stops_at_the_limit() {
        let mut yaml = String::from("version: 1\nmounts:\n");
        for _ in 0..200 {
            yaml.push_str("  - {tmpfs: /t, size: [1]}\n");
        }
        assert_eq!(paths(&yaml).len(), MAX_ERRORS);
    }
}
