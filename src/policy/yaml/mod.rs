//! Reading YAML safely and pointing at places in it.
//!
//! A policy file is read with hard bounds before the YAML parser sees it (size, UTF-8), then
//! walked once to reject what serde would silently accept or choke on (duplicate keys, deep
//! nesting, alias expansion beyond a node budget). [`locate`] finds the line and column of a
//! key path by walking the document again with the same parser, so every error can name its
//! place even when it is found long after parsing.

//!
//! Files: `scan.rs` (the one walk before parsing, and the keys a syntax error sits under),
//! `errors.rs` (serde_yaml's messages in a policy author's words), `locate.rs` (key path →
//! line and column).

mod errors;
mod locate;
pub(crate) mod prebuilt;
mod scan;

use std::fmt;

pub use errors::{convert_error, strip_marks};
pub use locate::{Positions, locate};
pub use scan::{Scanned, enclosing_keys, scan};

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
    /// Which kind of error, where the reader treats kinds differently.
    pub kind: Kind,
}

/// The kinds of [`YamlError`] that are placed differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A key the policy language doesn't have: pointed at the key itself, not at its value.
    UnknownKey,
    /// One of [`scan`]'s own checks (nesting, node budget, duplicate keys, tags), which knows
    /// its place.
    Scan,
    /// Anything else the parser or serde found.
    Other,
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
            kind: Kind::Other,
        });
    }
    // A UTF-8 byte order mark is not part of the document.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            // YAML allows no control characters but tab and line breaks; the parser would
            // only give a byte offset.
            let bad = text.char_indices().find(|(_, c)| {
                let c = u32::from(*c);
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
                        u32::from(c)
                    ),
                    kind: Kind::Other,
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
                kind: Kind::Other,
            })
        }
    }
}

/// The line and column (from 1, in characters) of byte offset `at`.
pub(super) fn pos_of(text: &str, at: usize) -> Pos {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |l| l.chars().count()) + 1;
    Pos { line, column }
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

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn check_bytes_reports_bad_utf8_position() {
        let err = check_bytes(b"version: 1\nname: ab\xffc\n").unwrap_err();
        assert_eq!(err.pos, Some(Pos { line: 2, column: 9 }));
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
}
