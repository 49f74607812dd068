//! `extends`: merging a policy onto the one it builds on, remembering where every value came from.
//!
//! Rules: mappings merge key by key; lists append (the parent's entries first); scalars
//! replace; a `null` or empty value in the child changes nothing (so a commented-out block
//! can't silently drop inherited limits). To drop inherited values, a child says so:
//! `replace: [mounts]` removes the inherited key before the child's own value applies, and
//! `remove: { mounts: [{ hide: /home }] }` removes single inherited list entries equal to the
//! given ones.

#[cfg(any(test, debug_assertions))]
use std::collections::HashMap;

use serde_yaml::Value;

use super::path::{KeyPath, Seg};

/// Where a value came from: a source file (index into the loader's list) and its path there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Index of the source file.
    pub file: usize,
    /// Path inside that file.
    pub path: KeyPath,
}

/// A document as the loader holds it: one file's as it was read, or several files' merged.
#[derive(Debug, Clone)]
pub enum Document {
    /// One file's document (file number `file`): every node is written there, at the path it
    /// has. Made into [`Node`]s only when something is merged onto it (`extends`, the command
    /// line).
    One {
        /// The document.
        value: Value,
        /// The file that wrote it.
        file: usize,
    },
    /// Several files merged, node by node with origins.
    Merged(Node),
}

impl Document {
    /// The document as nodes, to merge onto or into.
    pub fn into_node(self) -> Node {
        match self {
            Document::One { value, file } => Node::from_value(value, file),
            Document::Merged(node) => node,
        }
    }

    /// The document as a plain value.
    pub fn to_value(&self) -> Value {
        match self {
            Document::One { value, .. } => value.clone(),
            Document::Merged(node) => node.to_value(),
        }
    }

    /// [`Node::origin`]: how many segments of `path` lead to the deepest node on it, and where
    /// that node was written. In one file's document, at the same path.
    pub fn origin(&self, path: &[Seg]) -> (usize, Origin) {
        let (value, file) = match self {
            Document::Merged(node) => return node.origin(path),
            Document::One { value, file } => (value, *file),
        };
        let mut here = value;
        let mut found = 0;
        for seg in path {
            // The steps `Node::from_value` would make: a mapping's keys as text, a list's
            // indices; nothing below anything else.
            let next = match (here, seg) {
                (Value::Mapping(map), Seg::Key(k)) => map
                    .iter()
                    .find(|(key, _)| match key {
                        Value::String(s) => s == k,
                        other => key_text(other) == *k,
                    })
                    .map(|(_, v)| v),
                (Value::Sequence(items), Seg::Index(i)) => items.get(*i),
                _ => None,
            };
            let Some(next) = next else {
                break;
            };
            here = next;
            found += 1;
        }
        let written = path.get(..found).unwrap_or_default().to_vec();
        (
            found,
            Origin {
                file,
                path: KeyPath::from(written),
            },
        )
    }
}

/// A YAML value with its origin, node by node.
///
/// A node keeps the file it was written in and, for a list item, its index in that file's
/// list; its path there follows from the tree ([`Node::origin`]): above a node from file F,
/// mappings are merged key by key (the same keys in every file) and list items are never
/// merged (an item and everything below it come from one file), so the path a node had in F
/// is the keys and the items' own indices on the way down to it. Nothing is allocated per node
/// for it.
#[derive(Debug, Clone)]
pub struct Node {
    /// The source file it was written in (index into the loader's list).
    pub file: usize,
    /// For a list item, its index in the list of the file that wrote it (0 elsewhere).
    index: usize,
    /// What it holds.
    pub kind: Kind,
}

/// The shape of a [`Node`].
#[derive(Debug, Clone)]
pub enum Kind {
    /// A mapping, in document order.
    Map(Vec<(String, Node)>),
    /// A sequence.
    Seq(Vec<Node>),
    /// Anything else.
    Leaf(Value),
}

impl Node {
    /// Wraps a parsed document of file `file`.
    pub fn from_value(value: Value, file: usize) -> Node {
        Node::item(value, file, 0)
    }

    fn item(value: Value, file: usize, index: usize) -> Node {
        let kind = match value {
            Value::Mapping(map) => Kind::Map(
                map.into_iter()
                    .map(|(k, v)| (key_string(k), Node::item(v, file, 0)))
                    .collect(),
            ),
            Value::Sequence(items) => Kind::Seq(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| Node::item(v, file, i))
                    .collect(),
            ),
            other => Kind::Leaf(other),
        };
        Node { file, index, kind }
    }

    /// Back to a plain value.
    pub fn to_value(&self) -> Value {
        match &self.kind {
            Kind::Map(entries) => Value::Mapping(
                entries
                    .iter()
                    .map(|(k, v)| (Value::String(k.clone()), v.to_value()))
                    .collect(),
            ),
            Kind::Seq(items) => Value::Sequence(items.iter().map(Node::to_value).collect()),
            Kind::Leaf(v) => v.clone(),
        }
    }

    /// The deepest node on `path` below this one (the tree's root): how many segments of
    /// `path` lead to it, and where it was written.
    pub fn origin(&self, path: &[Seg]) -> (usize, Origin) {
        let mut node = self;
        let mut written = Vec::with_capacity(path.len());
        for seg in path {
            let next = match (&node.kind, seg) {
                (Kind::Map(entries), Seg::Key(k)) => entries
                    .iter()
                    .find(|(key, _)| key == k)
                    .map(|(key, child)| (Seg::Key(key.clone()), child)),
                (Kind::Seq(items), Seg::Index(i)) => {
                    items.get(*i).map(|child| (Seg::Index(child.index), child))
                }
                _ => None,
            };
            let Some((step, child)) = next else {
                break;
            };
            written.push(step);
            node = child;
        }
        (
            written.len(),
            Origin {
                file: node.file,
                path: KeyPath::from(written),
            },
        )
    }

    /// Records, for every node, the path it has in this tree (`here`, the root's) and where it
    /// came from.
    #[cfg(any(test, debug_assertions))]
    pub fn record(&self, here: &KeyPath, out: &mut HashMap<KeyPath, Origin>) {
        self.record_written(here, here, out);
    }

    #[cfg(any(test, debug_assertions))]
    fn record_written(
        &self,
        here: &KeyPath,
        written: &KeyPath,
        out: &mut HashMap<KeyPath, Origin>,
    ) {
        out.insert(
            here.clone(),
            Origin {
                file: self.file,
                path: written.clone(),
            },
        );
        match &self.kind {
            Kind::Map(entries) => {
                for (k, v) in entries {
                    v.record_written(&here.key(k), &written.key(k), out);
                }
            }
            Kind::Seq(items) => {
                for (i, v) in items.iter().enumerate() {
                    v.record_written(&here.index(i), &written.index(v.index), out);
                }
            }
            Kind::Leaf(_) => {}
        }
    }

    /// Does this node say nothing (null, or an empty mapping or list)?
    fn is_empty(&self) -> bool {
        match &self.kind {
            Kind::Leaf(Value::Null) => true,
            Kind::Map(m) => m.is_empty(),
            Kind::Seq(s) => s.is_empty(),
            Kind::Leaf(_) => false,
        }
    }

    /// The node at a path below this one.
    pub fn get_mut(&mut self, path: &[Seg]) -> Option<&mut Node> {
        let Some((first, rest)) = path.split_first() else {
            return Some(self);
        };
        match (&mut self.kind, first) {
            (Kind::Map(entries), Seg::Key(k)) => entries
                .iter_mut()
                .find(|(key, _)| key == k)
                .and_then(|(_, v)| v.get_mut(rest)),
            (Kind::Seq(items), Seg::Index(i)) => items.get_mut(*i).and_then(|v| v.get_mut(rest)),
            _ => None,
        }
    }

    /// Removes a map key from this node. Returns whether it was there.
    fn remove_key(&mut self, key: &str) -> bool {
        if let Kind::Map(entries) = &mut self.kind {
            let before = entries.len();
            entries.retain(|(k, _)| k != key);
            return entries.len() != before;
        }
        false
    }

    /// Removes the key at a dotted path (`replace:`). Returns whether it was there.
    pub fn remove_path(&mut self, path: &KeyPath) -> bool {
        let segs = path.segs();
        let Some((Seg::Key(last), parent)) = segs.split_last() else {
            return false;
        };
        self.get_mut(parent).is_some_and(|p| p.remove_key(last))
    }

    /// The keys present at a path, for "did you mean".
    pub fn keys_at(&mut self, path: &[Seg]) -> Vec<String> {
        match self.get_mut(path).map(|n| &n.kind) {
            Some(Kind::Map(entries)) => entries.iter().map(|(k, _)| k.clone()).collect(),
            _ => Vec::new(),
        }
    }
}

/// A mapping's key as a step of a key path (a string key is taken, not copied).
fn key_string(key: Value) -> String {
    match key {
        Value::String(s) => s,
        other => key_text(&other),
    }
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "~".into(),
        other => format!("{other:?}"),
    }
}

/// Merges `child` onto `base`.
pub fn merge(base: &mut Node, child: Node) {
    if child.is_empty() {
        return;
    }
    match (&mut base.kind, child.kind) {
        (Kind::Map(entries), Kind::Map(child_entries)) => {
            for (k, v) in child_entries {
                match entries.iter_mut().find(|(key, _)| *key == k) {
                    Some((_, existing)) => merge(existing, v),
                    None => entries.push((k, v)),
                }
            }
        }
        (Kind::Seq(items), Kind::Seq(child_items)) => items.extend(child_items),
        (_, kind) => {
            *base = Node {
                file: child.file,
                index: child.index,
                kind,
            };
        }
    }
}

/// Removes the entries of the list at `path` that equal one of `values`.
/// Returns the indices (into `values`) that matched nothing.
pub fn remove_entries(base: &mut Node, path: &KeyPath, values: &[Value]) -> Option<Vec<usize>> {
    let node = base.get_mut(path.segs())?;
    let Kind::Seq(items) = &mut node.kind else {
        return None;
    };
    let mut unmatched = Vec::new();
    for (i, want) in values.iter().enumerate() {
        let before = items.len();
        items.retain(|item| !same(&item.to_value(), want));
        if items.len() == before {
            unmatched.push(i);
        }
    }
    Some(unmatched)
}

/// Value equality that treats `8080` and `"8080"` alike, as the typed layer does.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::String(y)) | (Value::String(y), Value::Number(x)) => {
            x.to_string() == *y
        }
        (Value::Mapping(x), Value::Mapping(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Sequence(x), Value::Sequence(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn node(yaml: &str, file: usize) -> Node {
        Node::from_value(serde_yaml::from_str(yaml).unwrap(), file)
    }

    fn merged(base: &str, child: &str) -> Value {
        let mut b = node(base, 0);
        merge(&mut b, node(child, 1));
        b.to_value()
    }

    #[rstest]
    #[case("a: 1", "b: 2", "{a: 1, b: 2}")]
    #[case("a: 1", "a: 2", "{a: 2}")]
    #[case("l: [1, 2]", "l: [3]", "{l: [1, 2, 3]}")]
    #[case("m: {x: 1, y: 2}", "m: {y: 3}", "{m: {x: 1, y: 3}}")]
    #[case("m: {x: 1}", "m: ~", "{m: {x: 1}}")]
    #[case("m: {x: 1}", "m: {}", "{m: {x: 1}}")]
    #[case("l: [1]", "l: []", "{l: [1]}")]
    #[case("a: [1]", "a: x", "{a: x}")]
    #[case(
        "a: {deep: {er: [1]}}",
        "a: {deep: {er: [2], est: 3}}",
        "{a: {deep: {er: [1, 2], est: 3}}}"
    )]
    fn merge_rules(#[case] base: &str, #[case] child: &str, #[case] want: &str) {
        let want: Value = serde_yaml::from_str(want).unwrap();
        assert_eq!(merged(base, child), want);
    }

    #[test]
    fn origins_follow_values_through_a_merge() {
        let mut b = node("mounts: [{hide: /home}]\nlimits: {pids: 1}\n", 0);
        merge(
            &mut b,
            node("mounts: [{tmpfs: /tmp}]\nlimits: {pids: 2}\n", 1),
        );
        let mut map = HashMap::new();
        b.record(&KeyPath::root(), &mut map);
        let at = |p: KeyPath| map.get(&p).cloned().unwrap();
        let m1 = KeyPath::root().key("mounts").index(1);
        assert_eq!(at(m1.key("tmpfs")).file, 1);
        assert_eq!(at(m1.clone()).path, KeyPath::root().key("mounts").index(0));
        assert_eq!(at(KeyPath::root().key("mounts").index(0)).file, 0);
        assert_eq!(at(KeyPath::root().key("limits").key("pids")).file, 1);
    }

    #[rstest]
    #[case("mounts", true, "{limits: {pids: 1}}")]
    #[case("limits.pids", true, "{mounts: [a], limits: {}}")]
    #[case("limits.memory", false, "{mounts: [a], limits: {pids: 1}}")]
    #[case("nope.deeper", false, "{mounts: [a], limits: {pids: 1}}")]
    fn replace_drops_keys(#[case] path: &str, #[case] found: bool, #[case] want: &str) {
        let mut b = node("mounts: [a]\nlimits: {pids: 1}\n", 0);
        assert_eq!(b.remove_path(&KeyPath::parse_dotted(path).unwrap()), found);
        assert_eq!(b.to_value(), serde_yaml::from_str::<Value>(want).unwrap());
    }

    #[test]
    fn remove_drops_equal_entries_and_reports_misses() {
        let mut b = node(
            "mounts: [{hide: /home}, {tmpfs: /tmp, size: 64M}]\nports: [80, 443]\n",
            0,
        );
        let vals: Vec<Value> = serde_yaml::from_str("[{hide: /home}, {hide: /nope}]").unwrap();
        let path = KeyPath::root().key("mounts");
        assert_eq!(remove_entries(&mut b, &path, &vals), Some(vec![1]));
        let ports: Vec<Value> = serde_yaml::from_str("['443']").unwrap();
        let path = KeyPath::root().key("ports");
        assert_eq!(remove_entries(&mut b, &path, &ports), Some(vec![]));
        let want: Value =
            serde_yaml::from_str("{mounts: [{tmpfs: /tmp, size: 64M}], ports: [80]}").unwrap();
        assert_eq!(b.to_value(), want);
        let path = KeyPath::root().key("nope");
        assert_eq!(remove_entries(&mut b, &path, &ports), None);
    }
}
