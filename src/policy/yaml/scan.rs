//! The one walk over a document before serde reads it: flow nesting measured on the text
//! (the YAML scanner is quadratic in it), then duplicate keys, nesting depth, the node budget
//! (aliases count each time they are used) and tags; and, for a syntax error, which keys the
//! broken line sits under.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_yaml::{Mapping, Value};
use std::collections::HashMap;

use super::Positions;
use super::locate::{HERE, marked};
use crate::policy::path::Seg;

use super::errors::last_mark;
use super::{Kind, MAX_DEPTH, MAX_NODES, Pos, YamlError, convert_error, pos_of};

/// Where flow collections (`[`, `{`) nest deeper than [`MAX_DEPTH`], judged from the text: a
/// bracket counts where a collection may start (after `:`, `-`, `,`, another bracket or at
/// the start of a line), never inside quotes or comments.
fn deep_flow(text: &str) -> Option<usize> {
    // `last`: the character just before; `lead`: the last non-blank one on this line, or a
    // line break at its start.
    let (mut last, mut lead) = ('\n', '\n');
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut escaped = false;
    let may_start = |lead: char| lead == '\n' || "[{,:-?".contains(lead);
    for (i, c) in text.char_indices() {
        if comment {
            comment = c != '\n';
        } else if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if q == '"' && c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
        } else {
            match c {
                '#' if last.is_whitespace() => comment = true,
                '"' | '\'' if may_start(lead) => quote = Some(c),
                '[' | '{' if may_start(lead) => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Some(i);
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if c == '\n' {
            lead = '\n';
        } else if !(c == ' ' || c == '\t') && quote.is_none() && !comment {
            lead = c;
        }
        last = c;
    }
    None
}

/// What [`scan`] read besides its checks.
#[derive(Debug)]
pub struct Scanned {
    /// The document as `serde_yaml::from_str::<Value>` reads it, or `None` where the walk
    /// can't tell that it reads the same (a number beyond 64 bits, keys equal only as values):
    /// then the caller parses the text again for the parser's own value or error.
    pub value: Option<Value>,
    /// The places of the document's nodes, as [`Positions::of`] finds them (`None` where it
    /// would find none).
    pub positions: Option<Positions>,
    /// The document is a shipped policy's, written down when kekkai was built: it has no null
    /// and reads as a policy of version 1 (checked by `prebuilt`'s tests), so a typed read of
    /// it as written tells nothing (its variables still have to be expanded and read).
    pub shipped: bool,
}

/// Walks a whole document once: duplicate keys, nesting depth and the node budget; on the
/// way, builds the document and places its nodes.
pub fn scan(text: &str) -> Result<Scanned, YamlError> {
    // A shipped policy was walked when kekkai was built.
    match super::prebuilt::lookup(text) {
        Some(scanned) => Ok(scanned),
        None => walk(text),
    }
}

/// [`scan`], always walking the text.
pub(super) fn walk(text: &str) -> Result<Scanned, YamlError> {
    // The YAML scanner is quadratic in flow nesting: measure it on the text first.
    if let Some(at) = deep_flow(text) {
        let pos = pos_of(text, at);
        return Err(YamlError {
            path: enclosing_keys(text, pos),
            pos: Some(pos),
            message: format!("nesting is deeper than {MAX_DEPTH} levels"),
            kind: Kind::Scan,
        });
    }
    let mut budget = MAX_NODES;
    let ours = Cell::new(false);
    let odd = Cell::new(false);
    let mut places = Places {
        nodes: HashMap::new(),
        ok: true,
        raised: None,
    };
    let seed = Scan {
        depth: 0,
        budget: &mut budget,
        ours: &ours,
        odd: &odd,
        path: Some(Vec::new()),
        places: &mut places,
    };
    match seed.deserialize(serde_yaml::Deserializer::from_str(text)) {
        Ok(value) => Ok(Scanned {
            value: (!odd.get()).then_some(value),
            positions: places.ok.then(|| Positions::from_nodes(places.nodes)),
            shipped: false,
        }),
        Err(e) => {
            let mut err = convert_error(&e);
            if ours.get() {
                err.kind = Kind::Scan;
            }
            // A syntax error carries no key path; name the keys the broken line sits under.
            if err.path.is_empty() && err.kind != Kind::Scan {
                // "while parsing a flow mapping at line 3 column 9": the construct that broke.
                if let Some(pos) = last_mark(&err.message).or(err.pos) {
                    err.path = enclosing_keys(text, pos);
                }
            }
            Err(err)
        }
    }
}

/// The block-style keys (and sequence indices) that enclose `pos`, read from indentation
/// alone: what a reader would say the place is "under". Used only to label syntax errors,
/// where no parse tree exists; flow collections name their key, not their inside.
pub fn enclosing_keys(text: &str, pos: Pos) -> String {
    let line = pos.line;
    struct Entry {
        indent: usize,
        seg: String,
        item: Option<usize>,
    }
    let mut stack: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if i + 1 > line {
            break;
        }
        let at_error = i + 1 == line;
        // On the broken line itself only what comes before the error counts.
        let full_indent = raw.len() - raw.trim_start_matches([' ', '\t']).len();
        let raw = if at_error {
            let cut = raw
                .char_indices()
                .nth(pos.column.saturating_sub(1))
                .map_or(raw.len(), |(b, _)| b);
            raw.get(..cut).unwrap_or(raw)
        } else {
            raw
        };
        let body = raw.trim_start_matches([' ', '\t']);
        if body.is_empty() || body.starts_with('#') || body.starts_with("---") {
            if at_error {
                // Nothing before the error: the line is under what is less indented.
                let indent = full_indent;
                while stack.last().is_some_and(|top| top.indent >= indent) {
                    stack.pop();
                }
            }
            continue;
        }
        let mut indent = raw.len() - body.len();
        let mut rest = body;
        while let Some(after) =
            rest.strip_prefix("- ")
                .or(if rest == "-" { Some("") } else { None })
        {
            let mut next = 0;
            while let Some(top) = stack.last() {
                if top.indent > indent {
                    stack.pop();
                } else if top.indent == indent && top.item.is_some() {
                    next = top.item.map_or(0, |n| n + 1);
                    stack.pop();
                    break;
                } else {
                    break;
                }
            }
            stack.push(Entry {
                indent,
                seg: format!("[{next}]"),
                item: Some(next),
            });
            let skipped = rest.len() - after.len();
            let after_trim = after.trim_start_matches(' ');
            indent += skipped + (after.len() - after_trim.len());
            rest = after_trim;
        }
        let key = match rest.split_once(':') {
            Some((k, v)) if v.is_empty() || v.starts_with([' ', '\t']) => k.trim(),
            _ => {
                if at_error {
                    while stack.last().is_some_and(|top| top.indent >= indent) {
                        stack.pop();
                    }
                }
                continue;
            }
        };
        let key = key.trim_matches(['"', '\'']);
        if key.is_empty() || key.starts_with(['{', '[', '&', '*', '!', '?']) {
            continue;
        }
        while stack.last().is_some_and(|top| top.indent >= indent) {
            stack.pop();
        }
        stack.push(Entry {
            indent,
            seg: key.to_owned(),
            item: None,
        });
    }
    let mut out = String::new();
    for e in &stack {
        if e.item.is_none() && !out.is_empty() {
            out.push('.');
        }
        out.push_str(&e.seg);
    }
    out
}

struct Scan<'b> {
    depth: usize,
    budget: &'b mut usize,
    /// Set when the error the walk stops with is one of this walk's own checks.
    ours: &'b Cell<bool>,
    /// Set when the value built may differ from the parser's own `Value`.
    odd: &'b Cell<bool>,
    /// Where this node is, as `locate` walks (`None` below a key that is not a string, where
    /// it does not go).
    path: Option<Vec<Seg>>,
    places: &'b mut Places,
}

/// The places found so far, as [`Positions::of`] finds them: a scalar raises the marker
/// error, so the parser attaches its place, and hands its value over beside the error.
struct Places {
    nodes: HashMap<Vec<Seg>, Option<Option<Pos>>>,
    /// False where the walk met what [`Positions::of`] does not place.
    ok: bool,
    /// The value of the scalar that raised the marker error now on its way to its parent.
    raised: Option<Value>,
}

impl Places {
    /// A scalar at `path` raised the marker error whose message is `msg`.
    fn record(&mut self, path: Vec<Seg>, msg: &str) {
        match marked(msg) {
            Some(pos) => {
                self.nodes.entry(path).or_insert(Some(Some(pos)));
            }
            None => self.ok = false,
        }
    }

    /// What a child at `path` returned: its value, also where it raised the marker error.
    fn settle<E: de::Error>(
        &mut self,
        path: Option<Vec<Seg>>,
        res: Result<Value, E>,
    ) -> Result<Value, E> {
        match (res, path) {
            (Ok(v), _) => Ok(v),
            (Err(e), Some(path)) => match self.raised.take() {
                Some(value) => {
                    self.record(path, &e.to_string());
                    Ok(value)
                }
                None => Err(e),
            },
            (Err(e), None) => Err(e),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Scan<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl Scan<'_> {
    fn enter<E: de::Error>(&mut self) -> Result<(), E> {
        if self.depth >= MAX_DEPTH {
            self.ours.set(true);
            return Err(E::custom(format!(
                "nesting is deeper than {MAX_DEPTH} levels"
            )));
        }
        self.take()
    }

    fn take<E: de::Error>(&mut self) -> Result<(), E> {
        if *self.budget == 0 {
            self.ours.set(true);
            return Err(E::custom(format!(
                "the document expands to more than {MAX_NODES} nodes (aliases count each time they are used)"
            )));
        }
        *self.budget -= 1;
        Ok(())
    }

    fn child(&mut self, path: Option<Vec<Seg>>) -> Scan<'_> {
        Scan {
            depth: self.depth + 1,
            budget: self.budget,
            ours: self.ours,
            odd: self.odd,
            path,
            places: self.places,
        }
    }

    /// The path of a child at `seg`, where `locate` can reach it.
    fn below(&self, seg: impl FnOnce() -> Option<Seg>) -> Option<Vec<Seg>> {
        let mut path = self.path.clone()?;
        path.push(seg()?);
        Some(path)
    }

    /// Records a mapping or sequence (placed on demand) where no node was recorded before.
    fn collection(&mut self) {
        if let Some(path) = &self.path {
            if !self.places.nodes.contains_key(path) {
                self.places.nodes.insert(path.clone(), None);
            }
        }
    }

    fn scalar<E: de::Error>(mut self, value: Value) -> Result<Value, E> {
        self.take()?;
        match &self.path {
            None => return Ok(value),
            // A scalar document: raising here would skip the parser's checks after the root
            // (a syntax error further on, a second document). Placed by its own walk.
            Some(path) if path.is_empty() => {
                self.places.ok = false;
                return Ok(value);
            }
            Some(_) => {}
        }
        // Raised for the place; the parent takes the value back (see `Places::settle`).
        self.places.raised = Some(value);
        Err(E::custom(HERE))
    }
}

/// A mapping key, checked against the keys seen before it in the same mapping.
struct Key<'s> {
    seen: &'s mut Vec<String>,
    ours: &'s Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl Key<'_> {
    /// `key` as the duplicate check spells it, and `value` as the parser's `Value` reads it.
    fn check<E: de::Error>(self, key: String, value: Value) -> Result<Value, E> {
        if self.seen.contains(&key) {
            self.ours.set(true);
            return Err(E::custom(format!("duplicate key `{key}`")));
        }
        self.seen.push(key);
        Ok(value)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a plain key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.check(v.to_owned(), Value::String(v.to_owned()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.check(v.to_string(), Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.check(v.to_string(), Value::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.check(v.to_string(), Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.check(v.to_string(), Value::Number(v.into()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.check("~".into(), Value::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Value, A::Error> {
        Err(de::Error::custom("a mapping can't be a key"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Value, A::Error> {
        Err(de::Error::custom("a sequence can't be a key"))
    }
}

impl<'de> Visitor<'de> for Scan<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        self.enter()?;
        self.collection();
        let mut seen = Vec::new();
        let mut mapping = Mapping::new();
        while let Some(key) = map.next_key_seed(Key {
            seen: &mut seen,
            ours: self.ours,
        })? {
            // Only a string key is a step of a path, as `locate` reads keys.
            let path = self.below(|| key.as_str().map(|k| Seg::Key(k.to_owned())));
            let res = map.next_value_seed(self.child(path.clone()));
            let value = self.places.settle(path, res)?;
            // Keys the check spells differently may still be equal values (`0.0`, `-0.0`):
            // the parser's `Value` refuses those; leave it to the parser.
            if mapping.insert(key, value).is_some() {
                self.odd.set(true);
            }
        }
        Ok(Value::Mapping(mapping))
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        self.enter()?;
        self.collection();
        let mut items = Vec::new();
        loop {
            let path = self.below(|| Some(Seg::Index(items.len())));
            let res = seq.next_element_seed(self.child(path.clone()));
            let item = match res {
                Ok(None) => break,
                Ok(Some(item)) => Ok(item),
                Err(e) => Err(e),
            };
            items.push(self.places.settle(path, item)?);
        }
        Ok(Value::Sequence(items))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(mut self, data: A) -> Result<Value, A::Error> {
        // serde_yaml hands a tagged node (`!name value`) over as an enum. A policy has no use
        // for tags, and silently dropping one would read `!secret x` as plain `x`.
        self.take()?;
        let (tag, _variant) = data.variant::<String>()?;
        self.ours.set(true);
        Err(de::Error::custom(format!(
            "YAML tags are not supported in a policy (found `!{tag}`)"
        )))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.scalar(Value::String(v.to_owned()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.scalar(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.scalar(Value::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.scalar(Value::Number(v.into()))
    }
    // The parser's `Value` holds no number beyond 64 bits (it refuses one).
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Value, E> {
        self.odd.set(true);
        self.scalar(Value::Null)
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Value, E> {
        self.odd.set(true);
        self.scalar(Value::Null)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.scalar(Value::Number(v.into()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.scalar(Value::Null)
    }
    fn visit_none<E: de::Error>(mut self) -> Result<Value, E> {
        // An empty document: `Positions::of` places nothing in it.
        self.places.ok = false;
        self.take()?;
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("version: 1\nmounts:\n\t- x\n", 3, 1, "mounts")]
    #[case("limits:\n  memory: 1G\n    pids: 3\n", 3, 9, "limits.memory")]
    #[case(
        "mounts:\n- bind: /a\n  to: /b\n- tmpfs: /t\n  size: [\n",
        5,
        9,
        "mounts[1].size"
    )]
    #[case("mounts:\n  - a\n  - b\nlimits: {\nx\n", 4, 9, "limits")]
    #[case("mounts:\n  - a\nlimits:\n", 3, 1, "")]
    #[case("# c\n\nhostname: \"abc\n\n", 5, 1, "hostname")]
    #[case("a:\n  - - b: 1\n      c: [\n", 3, 10, "a[0][0].c")]
    #[case("a:\n  - x\n  - y\n  - z: [\n", 4, 8, "a[2].z")]
    #[case("é: [\n", 1, 4, "é")]
    #[case("version: 1\n? [a]\n: 1\n", 2, 3, "")]
    fn enclosing_keys_label_syntax_errors(
        #[case] doc: &str,
        #[case] line: usize,
        #[case] column: usize,
        #[case] want: &str,
    ) {
        assert_eq!(enclosing_keys(doc, Pos { line, column }), want);
    }

    #[rstest]
    #[case("hostname: !host box\n", "hostname")]
    #[case("mounts:\n  - !bind /a\n", "mounts[0]")]
    fn scan_rejects_tags(#[case] doc: &str, #[case] path: &str) {
        let err = scan(doc).unwrap_err();
        assert_eq!(err.path, path);
        assert!(
            err.message.starts_with("YAML tags are not supported"),
            "{err:?}"
        );
    }

    #[rstest]
    #[case("a: 1\nb: 2\na: 3\n", 3, "duplicate key `a`")]
    #[case("a:\n  b: {x: 1, x: 2}\n", 2, "duplicate key `x`")]
    #[case("a: [\n", 2, "")]
    #[case("a:\n\tb: 1\n", 2, "cannot start any token")]
    fn scan_rejects(#[case] doc: &str, #[case] line: usize, #[case] contains: &str) {
        let err = scan(doc).unwrap_err();
        assert_eq!(err.pos.map(|p| p.line), Some(line), "{err:?}");
        assert!(err.message.contains(contains), "{err:?}");
    }

    /// The walk's own checks are told from the parser's errors by kind, not by message.
    #[rstest]
    #[case::duplicate("a: 1\na: 2\n", Kind::Scan)]
    #[case::tag("a: !x b\n", Kind::Scan)]
    #[case::deep_flow(&"[".repeat(40), Kind::Scan)]
    #[case::deep_block(&(0..40).map(|i| format!("{}k:\n", "  ".repeat(i))).collect::<String>(), Kind::Scan)]
    #[case::syntax("a: [\n", Kind::Other)]
    #[case::mapping_key("? {a: 1}\n: 2\n", Kind::Other)]
    fn scan_errors_have_a_kind(#[case] doc: &str, #[case] kind: Kind) {
        assert_eq!(scan(doc).unwrap_err().kind, kind);
    }

    /// The document the walk builds is the parser's own `Value`, or none where it can't tell.
    #[rstest]
    #[case(include_str!("../../../policies/default.yaml"), true)]
    #[case(include_str!("../../../policies/service.yaml"), true)]
    #[case(include_str!("../../../policies/build.yaml"), true)]
    #[case(
        "a: &x {b: [1, -2, 1.5, .nan, .inf, {c: ~}], e: \"q\", f: true}\ng: *x\n",
        true
    )]
    #[case(
        "1: a\ntrue: b\n~: c\n\"2\": e\n1.5: f\n0x10: g\nk:\nl: ''\nm: |\n  x\n",
        true
    )]
    #[case("- a\n- - b\n  - c: [d, {e: f}]\n-\n- 007\n", true)]
    #[case("just a scalar\n", true)]
    #[case("", true)]
    #[case("# only a comment\n", true)]
    #[case("big: 18446744073709551616\n", false)]
    #[case("small: -9223372036854775809\n", false)]
    #[case("0.0: a\n-0.0: b\n", false)]
    fn scan_builds_the_parsers_value(#[case] doc: &str, #[case] vouched: bool) {
        let got = scan(doc).unwrap().value;
        assert_eq!(got.is_some(), vouched, "{doc:?}");
        if let Some(v) = got {
            let want: Value = serde_yaml::from_str(doc).unwrap();
            // NaN is not equal to itself: compare the documents as YAML writes them.
            assert_eq!(
                serde_yaml::to_string(&v).unwrap(),
                serde_yaml::to_string(&want).unwrap(),
                "{doc:?}"
            );
        }
    }

    /// The scan places a policy's nodes (so that no walk of their own is made later).
    #[test]
    fn scan_places_a_policys_nodes() {
        let doc = include_str!("../../../policies/default.yaml");
        assert_eq!(scan(doc).unwrap().positions, Positions::of(doc));
        assert!(scan(doc).unwrap().positions.is_some());
    }

    #[test]
    fn scan_rejects_deep_nesting() {
        let doc = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        let err = scan(&doc).unwrap_err();
        assert!(err.message.contains("nesting"), "{err:?}");
    }

    #[test]
    fn scan_rejects_alias_bombs() {
        let mut doc = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            doc.push_str(&format!(
                "l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        let err = scan(&doc).unwrap_err();
        assert!(
            err.message.contains("nodes") || err.message.contains("repetition limit"),
            "{err:?}"
        );
    }

    #[rstest]
    #[case(&"[".repeat(40), Some(32))]
    #[case(&format!("a: {}", "[".repeat(33)), Some(35))]
    #[case(&"[".repeat(32), None)]
    #[case(&"- echo [\n".repeat(100), None)]
    #[case(&format!("a: '{}'\n", "[".repeat(50)), None)]
    #[case(&format!("a: \"\\\"{}\"\n", "{".repeat(50)), None)]
    #[case(&format!("# {}\nb: 1\n", "[".repeat(50)), None)]
    #[case(&format!("a: [{}]\n", "[], ".repeat(100)), None)]
    fn deep_flow_is_measured_on_the_text(#[case] text: &str, #[case] at: Option<usize>) {
        assert_eq!(deep_flow(text), at);
    }
}
