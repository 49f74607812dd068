//! What names an image: `NAME[:TAG]`, `NAME@sha256:…`, or an id (`sha256:…`, or a prefix of at
//! least 12 hex digits of it).
//!
//! Names are kept in their familiar form, as `docker images` shows them: `docker.io/library/`
//! and `docker.io/` are dropped, and a name without a tag means `:latest`.

use super::digest::Digest;
use super::{ImageError, Kind};

/// A reference to an image in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `NAME:TAG`, normalized.
    Name(String),
    /// A config digest (the image id) or manifest digest, whole or as a prefix of the hex.
    Id(String),
}

/// The shortest id prefix accepted.
pub const MIN_PREFIX: usize = 12;

impl Reference {
    /// Parses what a user typed or a policy wrote.
    pub fn parse(text: &str) -> Result<Reference, ImageError> {
        let t = text.trim();
        if let Some(hex) = t.strip_prefix("sha256:") {
            if hex.len() >= MIN_PREFIX
                && hex.len() <= 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Ok(Reference::Id(hex.to_owned()));
            }
            return Err(ImageError::new(
                Kind::Usage,
                format!(
                    "`{t}` is not an image id: sha256: and {MIN_PREFIX} to 64 lowercase hex digits"
                ),
            ));
        }
        if let Some((_, digest)) = t.split_once('@') {
            let d = Digest::parse(digest).map_err(|e| ImageError::new(Kind::Usage, e.message))?;
            return Ok(Reference::Id(d.hex().to_owned()));
        }
        Ok(Reference::Name(normalize(t)?))
    }

    /// As written back to the user.
    pub fn shown(&self) -> String {
        match self {
            Reference::Name(n) => n.clone(),
            Reference::Id(hex) => format!("sha256:{hex}"),
        }
    }
}

/// `NAME[:TAG]` in its familiar form with a tag: `alpine` → `alpine:latest`,
/// `docker.io/library/alpine:3.20` → `alpine:3.20`, `127.0.0.1:5000/x/y` → `127.0.0.1:5000/x/y:latest`.
pub fn normalize(text: &str) -> Result<String, ImageError> {
    let bad = |why: &str| {
        ImageError::new(
            Kind::Usage,
            format!(
                "`{text}` is not an image name ({why}); names look like `alpine:3.20` or `registry:5000/team/app:1.0`"
            ),
        )
    };
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    let (name, tag) = split_tag(text);
    let tag = tag.unwrap_or("latest");
    if tag.is_empty()
        || tag.len() > 128
        || tag.starts_with(['.', '-'])
        || !tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(bad(
            "a tag is 1 to 128 of A-Z a-z 0-9 _ . - and starts with a letter, digit or _",
        ));
    }
    let mut name = name;
    for prefix in ["docker.io/", "index.docker.io/", "registry-1.docker.io/"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            name = rest.strip_prefix("library/").unwrap_or(rest);
            break;
        }
    }
    if name.is_empty() || name.len() > 255 {
        return Err(bad("the name is empty or too long"));
    }
    for (i, part) in name.split('/').enumerate() {
        // The first part may be a registry host with a port.
        let host_ok = i == 0
            && name.contains('/')
            && (part.contains(['.', ':']) || part == "localhost")
            && !part.starts_with(['.', '-', ':'])
            && !part.contains("..")
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
        let path_ok = !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && !part.starts_with(['.', '_', '-'])
            && !part.ends_with(['.', '_', '-']);
        if !host_ok && !path_ok {
            return Err(bad("each part is lowercase letters, digits and . _ -"));
        }
    }
    Ok(format!("{name}:{tag}"))
}

/// Splits `NAME:TAG` at the last `:` after the last `/` (a registry's port is not a tag).
pub fn split_tag(text: &str) -> (&str, Option<&str>) {
    let slash = text.rfind('/').map_or(0, |i| i + 1);
    match text.get(slash..).and_then(|last| last.rfind(':')) {
        Some(i) => (
            text.get(..slash + i).unwrap_or(text),
            text.get(slash + i + 1..),
        ),
        None => (text, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("alpine", Ok("alpine:latest"))]
    #[case("alpine:3.20", Ok("alpine:3.20"))]
    #[case("docker.io/library/alpine:3.20", Ok("alpine:3.20"))]
    #[case("docker.io/kekkai/test:1.0", Ok("kekkai/test:1.0"))]
    #[case("127.0.0.1:5000/kekkai/test", Ok("127.0.0.1:5000/kekkai/test:latest"))]
    #[case("127.0.0.1:5000/kekkai/test:1.0", Ok("127.0.0.1:5000/kekkai/test:1.0"))]
    #[case("Alpine", Err(()))]
    #[case("alpine:", Err(()))]
    #[case("alp ine", Err(()))]
    #[case("../x", Err(()))]
    #[case("", Err(()))]
    fn normalizes(#[case] text: &str, #[case] want: Result<&str, ()>) {
        assert_eq!(normalize(text).map_err(|_| ()), want.map(str::to_owned));
    }

    #[rstest]
    #[case("sha256:0123456789ab", Ok(Reference::Id("0123456789ab".into())))]
    #[case("sha256:0123", Err(()))]
    #[case("busybox", Ok(Reference::Name("busybox:latest".into())))]
    #[case(
        "x@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        Ok(Reference::Id("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into()))
    )]
    fn parses(#[case] text: &str, #[case] want: Result<Reference, ()>) {
        assert_eq!(Reference::parse(text).map_err(|_| ()), want);
    }
}
