//! Diagnostics: every error a user can cause in a policy, placed at the file, line, column and
//! key path that caused it (`p.yaml:3:5: mounts[0].bind: …`), or at the flag as typed for a
//! command-line override (`command line: --bind /data: …`).
//!
//! A [`SourceFile`] is one text that went into a merged policy; [`diag_in`] turns (source,
//! key path, message) into a [`Diagnostic`] by finding the key path in that text.

use std::fmt;
use std::sync::OnceLock;

use super::path::KeyPath;
use super::yaml::{self, Pos};

/// A loaded source text (or a synthetic one, such as the command line).
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// How errors name it.
    pub name: String,
    /// Its text, when it has one to point into.
    pub text: Option<String>,
    /// Paths (in this file) of the values written with `${PWD}`.
    pub pwd_paths: Vec<KeyPath>,
    /// For a command-line override: the flag as the user typed it (`--ro-bind /data`), which
    /// is what errors about anything it set name, in place of a key path.
    pub flag: Option<String>,
    /// The places of `text`'s nodes, walked once when first asked for (a plan places every
    /// mount, and one walk per place cost more than loading the policy).
    pub(super) positions: OnceLock<Option<yaml::Positions>>,
}

impl SourceFile {
    /// Where `path` is written in this file's text (`None` without a text).
    fn locate(&self, path: &KeyPath) -> Option<Pos> {
        let text = self.text.as_deref()?;
        // A document without a single node still has a start.
        let pos = match self.positions.get_or_init(|| yaml::Positions::of(text)) {
            Some(positions) => positions.locate(text, path),
            None => yaml::locate(text, path),
        };
        Some(pos.unwrap_or(Pos { line: 1, column: 1 }))
    }
}

/// One error a user can act on: where, which key, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// File name as given (or `<shipped>/NAME.yaml`, `command line`, `environment`).
    pub file: String,
    /// Line and column, when known.
    pub pos: Option<Pos>,
    /// Key path inside that file (empty for the document root).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    /// Where, without what: `FILE:LINE:COL: KEY.PATH` (`command line: --bind /data` for a
    /// flag).
    pub fn place(&self) -> String {
        use fmt::Write;
        // A plan places every mount with this: one string, written once.
        let mut out = String::with_capacity(self.file.len() + self.path.len() + 16);
        out.push_str(&self.file);
        if let Some(pos) = self.pos {
            let _ = write!(out, ":{pos}");
        }
        if !self.path.is_empty() {
            out.push_str(": ");
            out.push_str(&self.path);
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place(), self.message)
    }
}

/// All errors found in a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

/// How errors name the command line's overrides.
pub const COMMAND_LINE: &str = "command line";

/// A diagnostic about `path` in source number `file` of `sources`: placed at the flag for a
/// command-line override, else at the line and column where `path` is written.
pub(super) fn diag_in(
    sources: &[SourceFile],
    file: usize,
    path: &KeyPath,
    message: impl Into<String>,
) -> Diagnostic {
    let source = sources.get(file);
    if let Some(flag) = source.and_then(|s| s.flag.as_ref()) {
        // A flag stands for one value: it is the key path the user knows.
        return Diagnostic {
            file: COMMAND_LINE.into(),
            pos: None,
            path: flag.clone(),
            message: message.into(),
        };
    }
    Diagnostic {
        file: source.map_or_else(|| "<policy>".into(), |s| s.name.clone()),
        pos: source.and_then(|s| s.locate(path)),
        path: path.to_string(),
        message: message.into(),
    }
}

/// An I/O error as a short sentence with the errno name: "no such file (ENOENT)".
pub fn describe_io(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let errno = nix::errno::Errno::from_raw(code);
            format!("{} ({errno:?})", errno.desc().to_lowercase())
        }
        None => e.to_string(),
    }
}
