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
        Ok(text) => {
            // YAML allows no control characters but tab and line breaks; the parser would
            // only give a byte offset.
            let bad = text.char_indices().find(|(_, c)| {
                let c = *c as u32;
                (c < 0x20 && !matches!(c, 0x09 | 0x0A | 0x0D))
                    || c == 0x7F
                    || ((0x80..0xA0).contains(&c) && c != 0x85)
            });
            if let Some((at, c)) = bad {
                return Err(YamlError {
                    pos: Some(pos_of(text, at)),
                    path: String::new(),
                    message: format!(
                        "control character U+{:04X} is not allowed in YAML",
                        c as u32
                    ),
                });
            }
            Ok(text)
        }
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

/// The line and column (from 1, in characters) of byte offset `at`.
fn pos_of(text: &str, at: usize) -> Pos {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |l| l.chars().count()) + 1;
    Pos { line, column }
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
    let mut message = plain_types(message);
    if message.starts_with("found character that cannot start any token") {
        // Almost always a tab where YAML wants spaces.
        message = format!("{message} (a tab? YAML indents with spaces only)");
    }
    YamlError {
        pos,
        path,
        message: super::suggest::annotate_unknown(&message),
    }
}

/// serde names Rust types in its messages (`expected u64`, `expected struct Mount`); a policy
/// author thinks in YAML: whole numbers and mappings.
fn plain_types(message: &str) -> String {
    let mut out = message.replace(" as u128", "").replace(" as i128", "");
    let ints = [
        ("u8", "a whole number from 0 to 255"),
        ("u16", "a whole number from 0 to 65535"),
        ("u32", "a whole number from 0 to 4294967295"),
        ("u64", "a whole number, 0 or more"),
        ("usize", "a whole number, 0 or more"),
        ("i32", "a whole number"),
        ("i64", "a whole number"),
    ];
    for (int, plain) in ints {
        let from = format!("expected {int}");
        if let Some(i) = out.find(&from) {
            let end = i + from.len();
            if !out[end..].starts_with(|c: char| c.is_ascii_alphanumeric()) {
                out.replace_range(i..end, &format!("expected {plain}"));
            }
        }
    }
    // serde_yaml reads an integer too long for 64 bits as a float: say what the user wrote.
    if let Some(rest) = out.strip_prefix("invalid type: floating point `") {
        if let Some((num, tail)) = rest.split_once('`') {
            if let Some(digits) = num.strip_suffix(".0") {
                if digits.len() > 18 && digits.chars().all(|c| c.is_ascii_digit()) {
                    let expected = tail.trim_start_matches(", ");
                    out = format!("`{digits}` is out of range: {expected}");
                }
            }
        }
    }
    // A YAML value holds 64-bit integers at most: wider ones stop the parse itself.
    if let Some(rest) = out.strip_prefix("invalid type: integer `") {
        if let Some(num) = rest.strip_suffix("`, expected any YAML value") {
            out = format!("`{num}` does not fit in 64 bits");
        }
    }
    if let Some(i) = out.find("expected struct ") {
        let start = i + "expected struct ".len();
        let len = out[start..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(out.len() - start);
        out.replace_range(i..start + len, "expected a mapping of keys");
    }
    out
}

/// Removes every ` at line N column M` from a message (for errors about re-emitted text,
/// whose positions mean nothing to the user).
pub fn strip_marks(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(i) = rest.find(" at line ") {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let after = &tail[" at line ".len()..];
        let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let n = digits(after);
        let mark_end = after
            .get(n..)
            .and_then(|t| t.strip_prefix(" column "))
            .map(|t| {
                let m = digits(t);
                (m > 0).then(|| &t[m..])
            });
        match (n > 0, mark_end.flatten()) {
            (true, Some(t)) => rest = t,
            _ => {
                out.push_str(" at line ");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
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
    // The YAML scanner is quadratic in flow nesting: measure it on the text first.
    if let Some(at) = deep_flow(text) {
        let pos = pos_of(text, at);
        return Err(YamlError {
            path: enclosing_keys(text, pos),
            pos: Some(pos),
            message: format!("nesting is deeper than {MAX_DEPTH} levels"),
        });
    }
    let mut budget = MAX_NODES;
    let seed = Scan {
        depth: 0,
        budget: &mut budget,
    };
    match seed.deserialize(serde_yaml::Deserializer::from_str(text)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let mut err = convert_error(&e);
            // A syntax error carries no key path; name the keys the broken line sits under.
            let ours = [
                "duplicate key",
                "nesting is deeper",
                "the document expands",
                "YAML tags",
            ];
            if err.path.is_empty() && !ours.iter().any(|m| err.message.starts_with(m)) {
                // "while parsing a flow mapping at line 3 column 9": the construct that broke.
                if let Some(pos) = last_mark(&err.message).or(err.pos) {
                    err.path = enclosing_keys(text, pos);
                }
            }
            Err(err)
        }
    }
}

/// The last ` at line N column M` in a message.
fn last_mark(message: &str) -> Option<Pos> {
    let (_, tail) = message.rsplit_once(" at line ")?;
    let (line, column) = tail.split_once(" column ")?;
    let column: String = column.chars().take_while(char::is_ascii_digit).collect();
    Some(Pos {
        line: line.parse().ok()?,
        column: column.parse().ok()?,
    })
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
        // serde_yaml hands a tagged node (`!name value`) over as an enum. A policy has no use
        // for tags, and silently dropping one would read `!secret x` as plain `x`.
        self.take()?;
        let (tag, _variant) = data.variant::<String>()?;
        Err(de::Error::custom(format!(
            "YAML tags are not supported in a policy (found `!{tag}`)"
        )))
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
    #[case(
        "invalid type: integer `-1`, expected u64",
        "invalid type: integer `-1`, expected a whole number, 0 or more"
    )]
    #[case(
        "invalid value: integer `70000`, expected u16",
        "invalid value: integer `70000`, expected a whole number from 0 to 65535"
    )]
    #[case(
        "invalid type: integer `99` as u128, expected u32",
        "invalid type: integer `99`, expected a whole number from 0 to 4294967295"
    )]
    #[case(
        "invalid type: string \"/usr\", expected struct Mount",
        "invalid type: string \"/usr\", expected a mapping of keys"
    )]
    #[case(
        "invalid type: sequence, expected struct RawPolicy",
        "invalid type: sequence, expected a mapping of keys"
    )]
    #[case("expected u64x", "expected u64x")]
    #[case(
        "invalid type: integer `36893488147419103231`, expected any YAML value",
        "`36893488147419103231` does not fit in 64 bits"
    )]
    #[case(
        "invalid type: floating point `1000000000000000000000.0`, expected u64",
        "`1000000000000000000000` is out of range: expected a whole number, 0 or more"
    )]
    #[case(
        "invalid type: floating point `1.5`, expected u64",
        "invalid type: floating point `1.5`, expected a whole number, 0 or more"
    )]
    #[case("expected struct", "expected struct")]
    fn plain_types_speak_yaml(#[case] msg: &str, #[case] want: &str) {
        assert_eq!(plain_types(msg), want);
    }

    #[rstest]
    #[case("while parsing a flow mapping at line 3 column 9", Some((3, 9)))]
    #[case("a at line 1 column 2, b at line 30 column 4", Some((30, 4)))]
    #[case("no mark", None)]
    fn last_mark_reads_the_construct(#[case] msg: &str, #[case] want: Option<(usize, usize)>) {
        assert_eq!(
            last_mark(msg),
            want.map(|(line, column)| Pos { line, column })
        );
    }

    #[rstest]
    #[case(
        "invalid type: string \"1\", expected u32 at line 1 column 10",
        "invalid type: string \"1\", expected u32"
    )]
    #[case("a at line 3 column 4 and at line 5 column 6.", "a and.")]
    #[case("at line x column 1", "at line x column 1")]
    #[case("seen at line 2", "seen at line 2")]
    #[case("", "")]
    fn strip_marks_removes_positions(#[case] msg: &str, #[case] want: &str) {
        assert_eq!(strip_marks(msg), want);
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

    #[rstest]
    #[case(b"version: 1\nname: a\x00b\n", 2, 8, "U+0000")]
    #[case(b"a: \x1b[31m\n", 1, 4, "U+001B")]
    #[case("x: \u{9b}\n".as_bytes(), 1, 4, "U+009B")]
    fn check_bytes_places_control_characters(
        #[case] bytes: &[u8],
        #[case] line: usize,
        #[case] column: usize,
        #[case] code: &str,
    ) {
        let err = check_bytes(bytes).unwrap_err();
        assert_eq!(err.pos, Some(Pos { line, column }));
        assert!(err.message.contains(code), "{}", err.message);
    }

    #[test]
    fn check_bytes_keeps_tabs_line_breaks_and_nel() {
        assert!(check_bytes("a:\tb\r\nc: \u{85}é\n".as_bytes()).is_ok());
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
