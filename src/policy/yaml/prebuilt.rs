//! The shipped policies, already scanned: what [`scan`](super::scan) gives for each one's text,
//! written down at build time so that `kekkai run` with the embedded default does not walk the
//! YAML (a third of the policy's cost before the clone). Used only for a text byte-identical to
//! a shipped one whose fingerprint is the one recorded here; everything that depends on the host
//! (variables, paths, users) is still worked out at run time from the document given here, and
//! the positions keep error messages placed exactly as the walk would (`default.yaml:27:13`).
//!
//! `prebuilt_data.rs` is generated from `policies/*.yaml` by this module's test; after changing
//! a shipped policy, regenerate it with `KEKKAI_UPDATE_SNAPSHOTS=1 cargo test --lib yaml::prebuilt`.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_yaml::{Mapping, Number, Value};

use super::{Pos, Positions, Scanned};
use crate::policy::path::Seg;
use crate::policy::shipped;

/// A YAML document as constant data (every kind of node a scan gives, whether or not a shipped
/// policy has one now).
#[derive(Debug)]
#[allow(dead_code)]
pub(super) enum V {
    Null,
    Bool(bool),
    /// A non-negative integer.
    U(u64),
    /// A negative integer.
    I(i64),
    Str(&'static str),
    Seq(&'static [V]),
    Map(&'static [(V, V)]),
}

/// A key path's segment as constant data.
#[derive(Debug)]
pub(super) enum S {
    K(&'static str),
    I(usize),
}

/// A node's place as [`Positions`] records it.
#[derive(Debug)]
#[allow(dead_code)]
pub(super) enum P {
    /// A scalar at this line and column.
    At(usize, usize),
    /// A mapping or sequence (placed when asked).
    Collection,
    /// Recorded without a place.
    Unplaced,
}

/// One shipped policy's scan.
pub(super) struct Prebuilt {
    /// The shipped policy's name.
    pub name: &'static str,
    /// FNV-1a 64 of the text it was generated from.
    pub fingerprint: u64,
    /// The document.
    pub value: V,
    /// Every node's place.
    pub positions: &'static [(&'static [S], P)],
}

#[rustfmt::skip]
mod data {
    use super::{P, Prebuilt, S, V};
    include!("prebuilt_data.rs");
}

/// A shipped policy's places, sorted by path as `Vec<Seg>` sorts.
pub(super) type Table = &'static [(&'static [S], P)];

/// The scan of `text` if it is exactly a shipped policy's text, and that text is the one the
/// data was generated from (its fingerprint, worked out when kekkai was built, is the one
/// recorded).
pub(super) fn lookup(text: &str) -> Option<Scanned> {
    let (name, fingerprint) = shipped::with_text(text)?;
    let p = data::PREBUILT
        .iter()
        .find(|p| p.name == name && p.fingerprint == fingerprint)?;
    Some(Scanned {
        value: Some(value(&p.value)),
        positions: Some(Positions::prebuilt(p.positions)),
        shipped: true,
    })
}

/// The place `table` records for `path`: `None` when the document has no such node, else as
/// [`Positions`] records it.
pub(super) fn place(table: Table, path: &[Seg]) -> Option<Option<Option<Pos>>> {
    let i = table.binary_search_by(|(p, _)| cmp_path(p, path)).ok()?;
    table.get(i).map(|(_, place)| place.get())
}

/// Every place of `table`, as a walk records them.
pub(super) fn places(table: Table) -> HashMap<Vec<Seg>, Option<Option<Pos>>> {
    table
        .iter()
        .map(|(path, place)| {
            let path = path
                .iter()
                .map(|s| match s {
                    S::K(k) => Seg::Key((*k).to_owned()),
                    S::I(i) => Seg::Index(*i),
                })
                .collect();
            (path, place.get())
        })
        .collect()
}

/// A written-down path against a key path, in the order of `Vec<Seg>` (keys before indices,
/// keys by their text, a prefix first).
fn cmp_path(a: &[S], b: &[Seg]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (S::K(k), Seg::Key(l)) => (*k).cmp(l.as_str()),
            (S::K(_), Seg::Index(_)) => Ordering::Less,
            (S::I(_), Seg::Key(_)) => Ordering::Greater,
            (S::I(i), Seg::Index(j)) => i.cmp(j),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

impl P {
    fn get(&self) -> Option<Option<Pos>> {
        match self {
            P::At(line, column) => Some(Some(Pos {
                line: *line,
                column: *column,
            })),
            P::Collection => Some(None),
            P::Unplaced => None,
        }
    }
}

fn value(v: &V) -> Value {
    match v {
        V::Null => Value::Null,
        V::Bool(b) => Value::Bool(*b),
        V::U(n) => Value::Number(Number::from(*n)),
        V::I(n) => Value::Number(Number::from(*n)),
        V::Str(s) => Value::String((*s).to_owned()),
        V::Seq(items) => Value::Sequence(items.iter().map(value).collect()),
        V::Map(entries) => {
            let mut m = Mapping::with_capacity(entries.len());
            for (k, v) in *entries {
                m.insert(value(k), value(v));
            }
            Value::Mapping(m)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fmt::Write;

    use super::*;

    fn emit_value(v: &Value, out: &mut String) {
        match v {
            Value::Null => out.push_str("V::Null"),
            Value::Bool(b) => {
                let _ = write!(out, "V::Bool({b})");
            }
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => {
                    let _ = write!(out, "V::U({u})");
                }
                (None, Some(i)) => {
                    let _ = write!(out, "V::I({i})");
                }
                _ => panic!("a shipped policy holds a fractional number: add it to V"),
            },
            Value::String(s) => {
                let _ = write!(out, "V::Str({s:?})");
            }
            Value::Sequence(items) => {
                out.push_str("V::Seq(&[");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    emit_value(item, out);
                }
                out.push_str("])");
            }
            Value::Mapping(m) => {
                out.push_str("V::Map(&[");
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push('(');
                    emit_value(k, out);
                    out.push_str(", ");
                    emit_value(v, out);
                    out.push(')');
                }
                out.push_str("])");
            }
            Value::Tagged(_) => panic!("a shipped policy holds a tag: add it to V"),
        }
    }

    /// What `prebuilt_data.rs` should hold for the shipped policies as they are now.
    fn generate() -> String {
        let mut out = String::from(
            "// Generated by `KEKKAI_UPDATE_SNAPSHOTS=1 cargo test --lib yaml::prebuilt` from the shipped\n\
             // policies (src/policy/shipped.rs): do not edit.\n\n\
             pub(super) const PREBUILT: &[Prebuilt] = &[\n",
        );
        for name in shipped::names() {
            let text = shipped::text(name).expect("a shipped policy");
            let scanned = super::super::scan::walk(text).expect("a shipped policy scans");
            let value = scanned.value.expect("a shipped policy's document");
            let positions = scanned.positions.expect("a shipped policy's positions");
            let _ = writeln!(out, "    Prebuilt {{");
            let _ = writeln!(out, "        name: {name:?},");
            let _ = writeln!(
                out,
                "        fingerprint: {:#018x},",
                shipped::fingerprint(text)
            );
            out.push_str("        value: ");
            emit_value(&value, &mut out);
            out.push_str(",\n        positions: &[\n");
            let mut nodes: Vec<_> = positions.nodes().iter().collect();
            nodes.sort_by(|a, b| a.0.cmp(b.0));
            for (path, place) in nodes {
                out.push_str("            (&[");
                for (i, s) in path.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    match s {
                        Seg::Key(k) => {
                            let _ = write!(out, "S::K({k:?})");
                        }
                        Seg::Index(n) => {
                            let _ = write!(out, "S::I({n})");
                        }
                    }
                }
                out.push_str("], ");
                match place {
                    Some(Some(p)) => {
                        let _ = write!(out, "P::At({}, {})", p.line, p.column);
                    }
                    Some(None) => out.push_str("P::Collection"),
                    None => out.push_str("P::Unplaced"),
                }
                out.push_str("),\n");
            }
            out.push_str("        ],\n    },\n");
        }
        out.push_str("];\n");
        out
    }

    /// Fails unless the generated file `file` (relative to the crate) holds `want`; with
    /// `KEKKAI_UPDATE_SNAPSHOTS=1` (the house's switch for pinned outputs) writes it first.
    /// `test` names the test that regenerates it. Shared with `plan::seccomp::prebuilt`.
    pub(crate) fn assert_generated(file: &str, want: &str, test: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        if std::env::var_os("KEKKAI_UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
            std::fs::write(&path, want).expect("writing the generated file");
        }
        let have = std::fs::read_to_string(&path).expect("reading the generated file");
        assert!(
            have == want,
            "{file} is stale: KEKKAI_UPDATE_SNAPSHOTS=1 cargo test --lib {test}"
        );
    }

    #[test]
    fn data_is_current() {
        assert_generated(
            "src/policy/yaml/prebuilt_data.rs",
            &generate(),
            "yaml::prebuilt",
        );
    }

    /// The written-down places are found by a binary search: each table is in the order the
    /// search compares in, and every path (every node, a missing key and index below each)
    /// finds what the walk's map finds.
    #[test]
    fn prebuilt_places_are_found_as_the_walks() {
        use crate::policy::path::KeyPath;
        for p in data::PREBUILT {
            let places = places(p.positions);
            let mut paths: Vec<&Vec<Seg>> = places.keys().collect();
            paths.sort();
            for (i, (written, _)) in p.positions.iter().enumerate() {
                assert_eq!(cmp_path(written, paths[i]), Ordering::Equal, "{}", p.name);
                if let Some((next, _)) = p.positions.get(i + 1) {
                    assert_eq!(cmp_path(next, paths[i]), Ordering::Greater, "{}", p.name);
                }
            }
            let text = shipped::text(p.name).expect("a shipped policy");
            let walked = super::super::scan::walk(text)
                .expect("scans")
                .positions
                .expect("places");
            let prebuilt = Positions::prebuilt(p.positions);
            let mut probes: Vec<KeyPath> =
                vec![KeyPath::root().key("nope"), KeyPath::root().index(3)];
            for segs in walked.nodes().keys() {
                let path = KeyPath::from(segs.clone());
                assert_eq!(place(p.positions, segs), walked.nodes().get(segs).copied());
                probes.push(path.key("missing"));
                probes.push(path.key("a"));
                probes.push(path.index(0));
                probes.push(path.index(99));
                probes.push(path);
            }
            for path in probes {
                assert_eq!(
                    prebuilt.locate(text, &path),
                    walked.locate(text, &path),
                    "{} at {path}",
                    p.name
                );
            }
        }
    }

    /// What the loader skips for a shipped policy holds: its document has no null and reads
    /// as a policy of version 1, as its text does.
    #[test]
    fn shipped_documents_read_as_version_1_policies() {
        use serde::Deserialize;
        for name in shipped::names() {
            let text = shipped::text(name).expect("a shipped policy");
            let scanned = lookup(text).expect("prebuilt");
            assert!(scanned.shipped, "{name}");
            let value = scanned.value.expect("a document");
            assert!(!crate::policy::load::has_null(&value), "{name}");
            let typed = crate::policy::RawPolicy::deserialize(&value).expect("a policy");
            assert_eq!(typed.version, Some(1), "{name}");
            let from_text: crate::policy::RawPolicy = serde_yaml::from_str(text).expect("a policy");
            assert_eq!(typed, from_text, "{name}");
        }
        assert!(!super::super::scan("version: 1\n").expect("scans").shipped);
    }

    #[test]
    fn lookup_gives_what_the_walk_gives() {
        for name in shipped::names() {
            let text = shipped::text(name).expect("a shipped policy");
            let walked = super::super::scan::walk(text).expect("scans");
            let looked_up = lookup(text).expect("prebuilt");
            assert_eq!(looked_up.value, walked.value, "{name}");
            // Same document, same order of keys.
            assert_eq!(
                serde_yaml::to_string(&looked_up.value).ok(),
                serde_yaml::to_string(&walked.value).ok(),
                "{name}"
            );
            assert_eq!(looked_up.positions, walked.positions, "{name}");
            // A copy of the text elsewhere in memory is the same text.
            let copy = String::from(text);
            assert!(lookup(copy.as_str()).is_some(), "{name}");
        }
        // Anything else is walked.
        let text = shipped::text("default").expect("default");
        assert!(lookup(&text.replace("kekkai", "kekkaj")).is_none());
        assert!(lookup(&format!("{text}\n")).is_none());
        assert!(lookup("version: 1\n").is_none());
    }
}
