//! Where a key path is in a document: the same parser walks to the node and raises a marker
//! error there, so the position is the parser's own.
//!
//! A marker error ends the walk that raised it, so [`locate`] parses the document once per
//! lookup. [`Positions`] is one walk that places every scalar at once: a scalar is a single
//! parser event, so the walk can take the marker error a scalar raises and go on. A mapping or
//! sequence is placed by [`locate`] when asked for; policies' errors are almost all about
//! scalars.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{Pos, prebuilt};
use crate::policy::path::{KeyPath, Seg};

/// The marker error [`locate`] raises at its target; never shown to a user.
pub(super) const HERE: &str = "\u{0}kekkai-locate";

/// Finds the line and column of the node at `path`, or of its nearest existing ancestor.
pub fn locate(text: &str, path: &KeyPath) -> Option<Pos> {
    let segs = path.segs();
    for len in (0..=segs.len()).rev() {
        if let Found::Here(pos) = locate_exactly(text, segs.get(..len)?) {
            return pos;
        }
    }
    None
}

/// What one walk to a node found.
enum Found {
    /// The node, with the place the parser gave it (if any).
    Here(Option<Pos>),
    /// No node there, or the document does not parse.
    Not,
}

/// The node at exactly `path`: one parse of `text`.
fn locate_exactly(text: &str, path: &[Seg]) -> Found {
    match (Locate { path }).deserialize(serde_yaml::Deserializer::from_str(text)) {
        Err(e) if e.to_string().contains(HERE) => Found::Here(place(&e)),
        // Not found (Ok) or the document does not parse: try a shorter path.
        _ => Found::Not,
    }
}

fn place(e: &serde_yaml::Error) -> Option<Pos> {
    e.location().map(|l| Pos {
        line: l.line(),
        column: l.column(),
    })
}

/// The place in a marker error's message, where a walk holds the error only as a generic
/// [`de::Error`]: what `serde_yaml::Error::location` gives, as its `Display` prints it
/// (`… at line L column C`, nothing for line 1 column 1). `None` for any other shape.
pub(super) fn marked(msg: &str) -> Option<Pos> {
    if msg.ends_with(HERE) {
        return Some(Pos { line: 1, column: 1 });
    }
    let (head, at) = msg.rsplit_once(" at line ")?;
    if !head.ends_with(HERE) {
        return None;
    }
    let (line, column) = at.split_once(" column ")?;
    let number = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    Some(Pos {
        line: number(line)?,
        column: number(column)?,
    })
}

/// Every node of one document that [`locate`] can reach, found in one walk: a scalar with its
/// place, a mapping or sequence without (placed by [`locate`] when asked). Where a path occurs
/// twice, the first in document order counts, as for [`locate`].
#[derive(Debug, Clone, Default)]
pub struct Positions {
    /// The nodes a walk found (empty for a shipped policy's).
    nodes: HashMap<Vec<Seg>, Option<Option<Pos>>>,
    /// A shipped policy's nodes, written down when kekkai was built: looked up where they
    /// are, not copied into `nodes`.
    prebuilt: Option<prebuilt::Table>,
}

/// The same places, however they are held.
impl PartialEq for Positions {
    fn eq(&self, other: &Self) -> bool {
        self.all() == other.all()
    }
}

impl Eq for Positions {}

impl Positions {
    /// Walks `text` once. `None` when the walk meets anything it does not expect (a parse
    /// error, a tag, an empty document): then every lookup walks the text as [`locate`] does.
    pub fn of(text: &str) -> Option<Positions> {
        let mut nodes = HashMap::new();
        let raised = Cell::new(false);
        let root = Node {
            path: &[],
            nodes: &mut nodes,
            raised: &raised,
        };
        match root.deserialize(serde_yaml::Deserializer::from_str(text)) {
            Ok(()) => {}
            // The root itself is a scalar.
            Err(e) if raised.get() => {
                nodes.insert(Vec::new(), Some(place(&e)));
            }
            Err(_) => return None,
        }
        Some(Positions {
            nodes,
            prebuilt: None,
        })
    }

    /// Positions from the nodes a walk of the same kind found (see `scan`).
    pub(super) fn from_nodes(nodes: HashMap<Vec<Seg>, Option<Option<Pos>>>) -> Positions {
        Positions {
            nodes,
            prebuilt: None,
        }
    }

    /// A shipped policy's positions, as written down when kekkai was built (`prebuilt.rs`).
    pub(super) fn prebuilt(table: prebuilt::Table) -> Positions {
        Positions {
            nodes: HashMap::new(),
            prebuilt: Some(table),
        }
    }

    /// The place recorded for exactly `path`: `None` when the document has no such node.
    fn get(&self, path: &[Seg]) -> Option<Option<Option<Pos>>> {
        match self.prebuilt {
            Some(table) => prebuilt::place(table, path),
            None => self.nodes.get(path).copied(),
        }
    }

    /// Every place, however held.
    fn all(&self) -> std::borrow::Cow<'_, HashMap<Vec<Seg>, Option<Option<Pos>>>> {
        match self.prebuilt {
            Some(table) => std::borrow::Cow::Owned(prebuilt::places(table)),
            None => std::borrow::Cow::Borrowed(&self.nodes),
        }
    }

    /// The nodes a walk found, for writing them down (`prebuilt.rs`).
    #[cfg(test)]
    pub(super) fn nodes(&self) -> &HashMap<Vec<Seg>, Option<Option<Pos>>> {
        &self.nodes
    }

    /// What [`locate`] gives for `path` in `text`, the document these positions are of.
    pub fn locate(&self, text: &str, path: &KeyPath) -> Option<Pos> {
        let segs = path.segs();
        for len in (0..=segs.len()).rev() {
            let prefix = segs.get(..len)?;
            match self.get(prefix) {
                // Not in the document: a shorter path.
                None => {}
                Some(Some(pos)) => return pos,
                Some(None) => {
                    if let Found::Here(pos) = locate_exactly(text, prefix) {
                        return pos;
                    }
                }
            }
        }
        None
    }
}

/// One node of the walk of [`Positions::of`], at `path`.
struct Node<'w> {
    path: &'w [Seg],
    nodes: &'w mut HashMap<Vec<Seg>, Option<Option<Pos>>>,
    /// Set when a scalar raises the marker error, so its parent records its place.
    raised: &'w Cell<bool>,
}

impl Node<'_> {
    /// Records a mapping or sequence (placed on demand) where no node was recorded before.
    fn collection(&mut self) {
        if !self.nodes.contains_key(self.path) {
            self.nodes.insert(self.path.to_vec(), None);
        }
    }

    /// The child at `path` returned `res`: a marker error is a scalar to record, any other
    /// error ends the walk.
    fn child<E: de::Error>(&mut self, path: Vec<Seg>, res: Result<(), E>) -> Result<(), E> {
        match res {
            Ok(()) => Ok(()),
            Err(e) if self.raised.get() => {
                self.raised.set(false);
                let pos = marked(&e.to_string()).ok_or(e)?;
                self.nodes.entry(path).or_insert(Some(Some(pos)));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn scalar<E: de::Error>(&self) -> Result<(), E> {
        self.raised.set(true);
        Err(E::custom(HERE))
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.collection();
        // Keys are read as `locate` reads them: only a string key is a step of a path.
        while let Some(key) = map.next_key::<serde_yaml::Value>()? {
            let Some(key) = key.as_str() else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let mut path = self.path.to_vec();
            path.push(Seg::Key(key.to_owned()));
            let res = map.next_value_seed(Node {
                path: &path,
                nodes: self.nodes,
                raised: self.raised,
            });
            self.child(path, res)?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.collection();
        for i in 0.. {
            let mut path = self.path.to_vec();
            path.push(Seg::Index(i));
            let res = seq.next_element_seed(Node {
                path: &path,
                nodes: self.nodes,
                raised: self.raised,
            });
            match res {
                Ok(Some(())) => {}
                Ok(None) => break,
                Err(e) => self.child(path, Err(e))?,
            }
        }
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.scalar()
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.scalar()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }
    // A tag (an enum to serde) or an empty document: not expected; the walk fails and every
    // lookup walks the text itself.
}

struct Locate<'p> {
    path: &'p [Seg],
}

impl<'de> DeserializeSeed<'de> for Locate<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.path.is_empty() {
            d.deserialize_any(Here)
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Seg::Key(want), rest)) = self.path.split_first() else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        };
        while let Some(key) = map.next_key::<serde_yaml::Value>()? {
            if key.as_str() == Some(want.as_str()) {
                map.next_value_seed(Locate { path: rest })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Seg::Index(want), rest)) = self.path.split_first() else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        };
        let mut i = 0;
        loop {
            let more = if i == *want {
                seq.next_element_seed(Locate { path: rest })?.is_some()
            } else {
                seq.next_element::<IgnoredAny>()?.is_some()
            };
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Raises the marker error from inside the target node, so the parser attaches its position.
struct Here;

impl<'de> Visitor<'de> for Here {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(HERE))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(HERE))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(HERE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const DOC: &str = "version: 1\nmounts:\n  - { bind: /a, to: /b }\n  - bind: /c\n    to:   /d\nlimits: {pids: 3}\n";

    #[rstest]
    #[case(KeyPath::root().key("mounts").index(1).key("to"), 5, 11)]
    #[case(KeyPath::root().key("mounts").index(0).key("to"), 3, 21)]
    #[case(KeyPath::root().key("limits").key("pids"), 6, 16)]
    #[case(KeyPath::root().key("version"), 1, 10)]
    // Missing keys fall back to the nearest ancestor that exists.
    #[case(KeyPath::root().key("limits").key("memory"), 6, 9)]
    #[case(KeyPath::root().key("mounts").index(7), 3, 3)]
    fn locate_finds_nodes(#[case] path: KeyPath, #[case] line: usize, #[case] column: usize) {
        assert_eq!(locate(DOC, &path), Some(Pos { line, column }));
        let positions = Positions::of(DOC).unwrap();
        assert_eq!(positions.locate(DOC, &path), Some(Pos { line, column }));
    }

    /// The one walk places every path exactly as a walk per path does: every node, a missing
    /// key and index below each, in documents of every shape a policy may have (and some it
    /// may not: duplicate keys, aliases, non-string keys, a scalar root).
    #[rstest]
    #[case(DOC, true)]
    #[case(include_str!("../../../policies/default.yaml"), true)]
    #[case(include_str!("../../../policies/service.yaml"), true)]
    #[case(include_str!("../../../policies/build.yaml"), true)]
    #[case(include_str!("../../../policies/untrusted.yaml"), true)]
    #[case("a: &x {b: [1, 2, {c: d}], e: \"q\"}\nf: *x\ng: *x\n", true)]
    #[case(
        "a:\nb: ~\nc: ''\nd: |\n  text\n  more\ne: >-\n  folded\nf: [ ]\ng: {}\n",
        true
    )]
    #[case("a: 1\na: {b: 2}\nc: {d: 1}\nc: 3\nx: [{y: 1}]\nx: [2]\n", true)]
    #[case("1: a\ntrue: b\n~: c\n[k]: d\n\"2\": e\n{m: 1}: f\n", true)]
    #[case(
        "- a\n- - b\n  - c: [d, {e: f}]\n-\n- 18446744073709551616\n- 1.5\n",
        true
    )]
    #[case("just a scalar\n", true)]
    #[case("  \"quoted root\"\n", true)]
    #[case("é: {ü: 'ß', k: \"\\u00e9\"}\n", true)]
    #[case("é: 1\n\tx: 1\n", false)]
    #[case("a: !tag b\n", false)]
    #[case("a: [\n", false)]
    #[case("", false)]
    #[case("# only a comment\n", false)]
    fn positions_agree_with_locate(#[case] doc: &str, #[case] walked: bool) {
        // The scan's walk places the same nodes, where it passes the document and places any
        // (a scalar document is left to this walk).
        if let Ok(super::super::Scanned {
            positions: Some(p), ..
        }) = super::super::scan(doc)
        {
            assert_eq!(Some(p), Positions::of(doc), "{doc:?}");
        }
        let Some(positions) = Positions::of(doc) else {
            // Walked per lookup instead: nothing to compare.
            assert!(!walked, "{doc:?}");
            return;
        };
        assert!(walked, "{doc:?}");
        let mut paths: Vec<KeyPath> = vec![KeyPath::root().key("nope"), KeyPath::root().index(9)];
        for segs in positions.nodes.keys() {
            let mut p = KeyPath::root();
            for s in segs {
                p = match s {
                    Seg::Key(k) => p.key(k),
                    Seg::Index(i) => p.index(*i),
                };
            }
            paths.push(p.key("missing"));
            paths.push(p.index(5));
            paths.push(p);
        }
        for p in paths {
            assert_eq!(positions.locate(doc, &p), locate(doc, &p), "{doc:?} at {p}");
        }
    }

    #[rstest]
    #[case("a: 1", Some(Pos { line: 1, column: 1 }))]
    #[case("x: \u{0}kekkai-locate", Some(Pos { line: 1, column: 1 }))]
    #[case("a: \u{0}kekkai-locate at line 3 column 14", Some(Pos { line: 3, column: 14 }))]
    #[case("a: \u{0}kekkai-locate at line 3 column x", None)]
    #[case("something else at line 3 column 4", None)]
    fn marked_reads_the_place(#[case] msg: &str, #[case] want: Option<Pos>) {
        let want = if msg.contains(HERE) { want } else { None };
        assert_eq!(marked(msg), want);
    }
}
