//! kekkai's own messages on stderr. Under systemd (JOURNAL_STREAM names stderr), each line gets a
//! syslog priority prefix (`<3>` error, `<4>` warning, `<5>` notice, `<6>` info) so the journal
//! records the level; otherwise messages read `kekkai: ...` as usual.

use std::io::Write;
use std::sync::OnceLock;

/// A message's priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed.
    Error = 3,
    /// Something is not as asked, but the run goes on.
    Warning = 4,
    /// Worth knowing (shown with -v).
    Notice = 5,
    /// Detail (shown with -v).
    Info = 6,
}

static JOURNAL: OnceLock<bool> = OnceLock::new();

/// Is stderr the journal stream systemd set up for this process?
pub fn journal() -> bool {
    *JOURNAL.get_or_init(|| {
        let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
            return false;
        };
        let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
            return false;
        };
        let Ok(meta) = nix::sys::stat::fstat(std::io::stderr()) else {
            return false;
        };
        dev.parse::<u64>().ok() == Some(meta.st_dev) && ino.parse::<u64>().ok() == Some(meta.st_ino)
    })
}

/// Does stderr end a line with `\r\n` itself? Not when it is a terminal without output
/// processing: the caller's terminal while a relayed pty has it in raw mode. A message then ends
/// its lines with `\r\n`, or the next line would start where this one ended.
fn raw_terminal() -> bool {
    use nix::sys::termios::{OutputFlags, tcgetattr};
    match tcgetattr(std::io::stderr()) {
        Ok(t) => !t
            .output_flags
            .contains(OutputFlags::OPOST | OutputFlags::ONLCR),
        Err(_) => false,
    }
}

/// Writes one message (possibly several lines), prefixed as the destination wants.
pub fn emit(level: Level, msg: &str) {
    let mut text = String::with_capacity(msg.len() + 8);
    let newline = if raw_terminal() { "\r\n" } else { "\n" };
    for line in msg.lines() {
        if journal() {
            text.push_str(&format!("<{}>", level as u8));
        }
        text.push_str(line);
        text.push_str(newline);
    }
    // One write, so that a line never interleaves with what the sandbox writes to the same
    // stderr at the same time.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// An error: `kekkai: MSG`.
pub fn error(msg: &str) {
    emit(Level::Error, &format!("kekkai: {msg}"));
}

/// A warning: `kekkai: MSG`.
pub fn warn(msg: &str) {
    emit(Level::Warning, &format!("kekkai: {msg}"));
}

/// A notice: `kekkai: MSG`.
pub fn notice(msg: &str) {
    emit(Level::Notice, &format!("kekkai: {msg}"));
}

/// `text` made safe to show on one line of a terminal or in a comment, when someone else chose
/// it (another user's record in root's `ps`, a path the sandboxed program named): printable
/// ASCII, letters and digits are kept; every other character (controls such as ESC, which
/// start terminal escape sequences, the line breaks YAML knows besides `\n`: `\r`, NEL U+0085,
/// LS U+2028, PS U+2029, and formatting characters such as bidi overrides) is written as its
/// `\u{...}` escape.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == ' ' || c.is_ascii_graphic() || (!c.is_ascii() && c.is_alphanumeric()) {
            out.push(c);
        } else {
            out.extend(c.escape_unicode());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::printable;

    /// What another user or the sandboxed program chose is shown, never interpreted: an escape
    /// sequence, a line break of any kind, a bidi override become `\u{...}`; letters of any
    /// script stay.
    #[rstest]
    #[case("sh -c sleep 1000", "sh -c sleep 1000")]
    #[case("\u{1b}]2;owned\u{7}\u{1b}[2J", "\\u{1b}]2;owned\\u{7}\\u{1b}[2J")]
    #[case("a\nb\rc\td", "a\\u{a}b\\u{d}c\\u{9}d")]
    #[case("x\u{85}\u{2028}\u{2029}", "x\\u{85}\\u{2028}\\u{2029}")]
    #[case("\u{202e}txt.exe", "\\u{202e}txt.exe")]
    #[case("\u{9b}31m", "\\u{9b}31m")]
    #[case("données/日本", "données/日本")]
    fn others_text_is_shown_not_interpreted(#[case] text: &str, #[case] want: &str) {
        assert_eq!(printable(text), want);
    }
}
