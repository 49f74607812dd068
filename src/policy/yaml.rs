//! Reading YAML safely and pointing at places in it.
//!
//! A policy file is read with hard bounds before the YAML parser sees it (size, UTF-8), then
//! walked once to reject what serde would silently accept or choke on (duplicate keys, deep
//! nesting, alias expansion beyond a node budget). [`locate`] finds the line and column of a
//! key path by walking the document again with the same parser, so every error can name its
//! place even when it is found long after parsing.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::path::{KeyPath, Seg};

/// Largest policy file accepted. Policies are small; this bounds parse time and memory.
pub const MAX_FILE_BYTES: usize = 256 * 1024;
/// Deepest nesting of mappings and sequences accepted.
pub const MAX_DEPTH: usize = 32;
/// Most nodes a document may expand to (aliases count each time they are used).
pub const MAX_NODES: usize = 50_000;

/// A line and column, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Something wrong at a place in a document, before it is tied to a file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// Where, if the parser knew.
    pub pos: Option<Pos>,
    /// The key path, as the parser printed it (empty at the root).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Checks the raw bytes of a file: size and UTF-8. Returns the text.
pub fn check_bytes(bytes: &[u8]) -> Result<&str, YamlError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(YamlError {
            pos: Some(Pos { line: 1, column: 1 }),
            path: String::new(),
            message: format!(
                "file is {} bytes; a policy may be at most {} bytes",
                bytes.len(),
                MAX_FILE_BYTES
            ),
        });
    }
    // A UTF-8 byte order mark is not part of the document.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) => {
            let good = bytes.get(..e.valid_up_to()).unwrap_or_default();
            let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
            let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(good.get(line_start..).unwrap_or_default())
                .chars()
                .count()
                + 1;
            Err(YamlError {
                pos: Some(Pos { line, column }),
                path: String::new(),
                message: "the file is not valid UTF-8".into(),
            })
        }
    }
}

/// Converts a serde_yaml error into place + path + message, adding a "did you mean" hint to
/// unknown keys and values.
pub fn convert_error(err: &serde_yaml::Error) -> YamlError {
    let pos = err.location().map(|l| Pos {
        line: l.line(),
        column: l.column(),
    });
    let mut text = err.to_string();
    if let Some(l) = err.location() {
        let mark = format!(" at line {} column {}", l.line(), l.column());
        text = text.replacen(&mark, "", 1);
    }
    let (path, message) = split_path(&text);
    let mut path = path.trim_start_matches('.').to_owned();
    // Name the unknown key itself, not only the mapping it sits in.
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((key, _)) = rest.split_once('`') {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
        }
    }
    YamlError {
        pos,
        path,
        message: super::suggest::annotate_unknown(message),
    }
}

/// Where the second document of a stream starts (`---` after content), for the error that
/// policies hold one document.
pub fn second_document(text: &str) -> Option<Pos> {
    let mut seen_content = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") || t == "..." {
            if seen_content {
                return Some(Pos {
                    line: i + 1,
                    column: 1,
                });
            }
        } else if !t.trim_start().is_empty()
            && !t.trim_start().starts_with('#')
            && !t.starts_with('%')
        {
            seen_content = true;
        }
    }
    None
}

/// serde_yaml prints `path: message`; the path is made of key characters, dots and indices.
fn split_path(text: &str) -> (&str, &str) {
    if let Some((head, tail)) = text.split_once(": ") {
        let looks_like_path = !head.is_empty()
            && head
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.[]".contains(c));
        if looks_like_path {
            return (head, tail);
        }
    }
    ("", text)
}

/// Walks a whole document once: duplicate keys, nesting depth and the node budget.
pub fn scan(text: &str) -> Result<(), YamlError> {
    let mut budget = MAX_NODES;
    let seed = Scan {
        depth: 0,
        budget: &mut budget,
    };
    match seed.deserialize(serde_yaml::Deserializer::from_str(text)) {
        Ok(()) => Ok(()),
        Err(e) => Err(convert_error(&e)),
    }
}

struct Scan<'b> {
    depth: usize,
    budget: &'b mut usize,
}

impl<'de> DeserializeSeed<'de> for Scan<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Scan<'_> {
    fn enter<E: de::Error>(&mut self) -> Result<(), E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format!(
                "nesting is deeper than {MAX_DEPTH} levels"
            )));
        }
        self.take()
    }

    fn take<E: de::Error>(&mut self) -> Result<(), E> {
        if *self.budget == 0 {
            return Err(E::custom(format!(
                "the document expands to more than {MAX_NODES} nodes (aliases count each time they are used)"
            )));
        }
        *self.budget -= 1;
        Ok(())
    }

    fn child(&mut self) -> Scan<'_> {
        Scan {
            depth: self.depth + 1,
            budget: self.budget,
        }
    }
}

/// A mapping key, checked against the keys seen before it in the same mapping.
struct Key<'s> {
    seen: &'s mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Key<'_> {
    fn check<E: de::Error>(self, key: String) -> Result<(), E> {
        if self.seen.contains(&key) {
            return Err(E::custom(format!("duplicate key `{key}`")));
        }
        self.seen.push(key);
        Ok(())
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a plain key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.check(v.to_owned())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.check(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.check(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.check(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.check(v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.check("~".into())
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom("a mapping can't be a key"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom("a sequence can't be a key"))
    }
}

impl<'de> Visitor<'de> for Scan<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.enter()?;
        let mut seen = Vec::new();
        while map.next_key_seed(Key { seen: &mut seen })?.is_some() {
            map.next_value_seed(self.child())?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.enter()?;
        while seq.next_element_seed(self.child())?.is_some() {}
        Ok(())
    }
    fn visit_enum<A: de::EnumAccess<'de>>(mut self, data: A) -> Result<(), A::Error> {
        self.take()?;
        let (IgnoredAny, variant) = data.variant::<IgnoredAny>()?;
        de::VariantAccess::newtype_variant_seed(variant, self.child())
    }
    fn visit_str<E: de::Error>(mut self, _: &str) -> Result<(), E> {
        self.take()
    }
    fn visit_bool<E: de::Error>(mut self, _: bool) -> Result<(), E> {
        self.take()
    }
    fn visit_i64<E: de::Error>(mut self, _: i64) -> Result<(), E> {
        self.take()
    }
    fn visit_u64<E: de::Error>(mut self, _: u64) -> Result<(), E> {
        self.take()
    }
    fn visit_i128<E: de::Error>(mut self, _: i128) -> Result<(), E> {
        self.take()
    }
    fn visit_u128<E: de::Error>(mut self, _: u128) -> Result<(), E> {
        self.take()
    }
    fn visit_f64<E: de::Error>(mut self, _: f64) -> Result<(), E> {
        self.take()
    }
    fn visit_unit<E: de::Error>(mut self) -> Result<(), E> {
        self.take()
    }
    fn visit_none<E: de::Error>(mut self) -> Result<(), E> {
        self.take()
    }
}

/// The marker error [`locate`] raises at its target; never shown to a user.
const HERE: &str = "\u{0}kekkai-locate";

/// Finds the line and column of the node at `path`, or of its nearest existing ancestor.
pub fn locate(text: &str, path: &KeyPath) -> Option<Pos> {
    let segs = path.segs();
    for len in (0..=segs.len()).rev() {
        let prefix = segs.get(..len)?;
        match (Locate { path: prefix }).deserialize(serde_yaml::Deserializer::from_str(text)) {
            Err(e) if e.to_string().contains(HERE) => {
                return e.location().map(|l| Pos {
                    line: l.line(),
                    column: l.column(),
                });
            }
            // Not found (Ok) or the document does not parse: try a shorter path.
            _ => {}
        }
    }
    None
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

    #[test]
    fn check_bytes_reports_bad_utf8_position() {
        let err = check_bytes(b"version: 1\nname: ab\xffc\n").unwrap_err();
        assert_eq!(err.pos, Some(Pos { line: 2, column: 9 }));
    }

    #[test]
    fn check_bytes_refuses_huge_files() {
        let big = vec![b'#'; MAX_FILE_BYTES + 1];
        assert!(check_bytes(&big).unwrap_err().message.contains("at most"));
    }

    #[rstest]
    #[case(
        "mounts[1].writable: invalid type",
        "mounts[1].writable",
        "invalid type"
    )]
    #[case(
        "unknown field `x`, expected `y`",
        "",
        "unknown field `x`, expected `y`"
    )]
    #[case("found character: that", "", "found character: that")]
    fn split_path_cases(#[case] text: &str, #[case] path: &str, #[case] msg: &str) {
        assert_eq!(split_path(text), (path, msg));
    }
}
