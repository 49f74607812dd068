//! serde_yaml's errors in a policy author's words: the place and key path split from the
//! message, Rust type names replaced by YAML's, positions of re-emitted text removed, and a
//! "did you mean" added to unknown keys and values.

use super::{Kind, Pos, YamlError};

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
    let mut kind = Kind::Other;
    if let Some(rest) = message.strip_prefix("unknown field `") {
        kind = Kind::UnknownKey;
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
        message: crate::policy::suggest::annotate_unknown(&message),
        kind,
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

/// The last ` at line N column M` in a message.
pub(super) fn last_mark(message: &str) -> Option<Pos> {
    let (_, tail) = message.rsplit_once(" at line ")?;
    let (line, column) = tail.split_once(" column ")?;
    let column: String = column.chars().take_while(char::is_ascii_digit).collect();
    Some(Pos {
        line: line.parse().ok()?,
        column: column.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// An unknown key is told by its kind (the loader points at the key itself).
    #[rstest]
    #[case::unknown_key("{mountz: 1}", Kind::UnknownKey)]
    #[case::unknown_value("{network: nowhere}", Kind::Other)]
    #[case::wrong_type("{hostname: [1]}", Kind::Other)]
    fn converted_errors_have_a_kind(#[case] doc: &str, #[case] kind: Kind) {
        let err = serde_yaml::from_str::<crate::policy::model::RawPolicy>(doc).unwrap_err();
        assert_eq!(convert_error(&err).kind, kind);
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
