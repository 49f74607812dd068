//! Key paths into a policy document: `mounts[2].bind`, `limits.memory`.
//!
//! Every error a user can cause carries one; the loader turns it into a file, line and column.

use std::fmt;

/// One step into a YAML document.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(untagged)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A path from the document root to a node.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct KeyPath(Vec<Seg>);

impl KeyPath {
    /// The document root.
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }

    /// This path extended by a mapping key.
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        KeyPath(segs)
    }

    /// This path extended by a sequence index.
    #[must_use]
    pub fn index(&self, i: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(i));
        KeyPath(segs)
    }

    /// The segments.
    pub fn segs(&self) -> &[Seg] {
        &self.0
    }

    /// Is this the root?
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path without its last segment (the root stays the root).
    #[must_use]
    pub fn parent(&self) -> Self {
        let mut segs = self.0.clone();
        segs.pop();
        KeyPath(segs)
    }

    /// This path followed by another.
    #[must_use]
    pub fn join(&self, rest: &[Seg]) -> Self {
        let mut segs = self.0.clone();
        segs.extend_from_slice(rest);
        KeyPath(segs)
    }

    /// Parses a dotted key path as written in `replace:` and `remove:` (`limits.memory`,
    /// `mounts`); indices are not allowed there. Returns `None` for an empty segment.
    pub fn parse_dotted(s: &str) -> Option<Self> {
        let mut segs = Vec::new();
        for part in s.split('.') {
            if part.is_empty() {
                return None;
            }
            segs.push(Seg::Key(part.to_owned()));
        }
        Some(KeyPath(segs))
    }
}

impl KeyPath {
    /// Parses a path as [`KeyPath`]'s `Display` prints it (`mounts[2].bind`); `""` is the root.
    /// Returns `None` for anything else.
    pub fn parse_shown(s: &str) -> Option<Self> {
        let mut segs = Vec::new();
        for part in s.split('.').filter(|p| !p.is_empty() || s.is_empty()) {
            if part.is_empty() {
                continue;
            }
            let (key, mut rest) = match part.find('[') {
                Some(i) => part.split_at(i),
                None => (part, ""),
            };
            if !key.is_empty() {
                segs.push(Seg::Key(key.to_owned()));
            }
            while let Some(r) = rest.strip_prefix('[') {
                let (n, after) = r.split_once(']')?;
                segs.push(Seg::Index(n.parse().ok()?));
                rest = after;
            }
            if !rest.is_empty() {
                return None;
            }
        }
        Some(KeyPath(segs))
    }
}

impl From<Vec<Seg>> for KeyPath {
    fn from(segs: Vec<Seg>) -> Self {
        KeyPath(segs)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(KeyPath::root(), "")]
    #[case(KeyPath::root().key("mounts").index(2).key("bind"), "mounts[2].bind")]
    #[case(KeyPath::root().key("limits").key("memory"), "limits.memory")]
    #[case(KeyPath::root().index(0), "[0]")]
    fn display(#[case] path: KeyPath, #[case] want: &str) {
        assert_eq!(path.to_string(), want);
    }

    #[rstest]
    #[case("limits.memory", Some("limits.memory"))]
    #[case("mounts", Some("mounts"))]
    #[case("a..b", None)]
    #[case("", None)]
    fn parse_dotted(#[case] input: &str, #[case] want: Option<&str>) {
        assert_eq!(
            KeyPath::parse_dotted(input)
                .map(|p| p.to_string())
                .as_deref(),
            want
        );
    }
}
