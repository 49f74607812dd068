//! Content digests (`sha256:<64 hex digits>`), and readers that hash what passes through them.
//!
//! Only sha256 is accepted: it is what every registry and image builder writes, and an
//! algorithm kekkai can't verify must not be taken on trust.

use std::cell::RefCell;
use std::io::Read;
use std::rc::Rc;

use sha2::{Digest as _, Sha256};

use super::{ImageError, Kind};

/// A verified-format sha256 digest, kept as `sha256:<hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<64 lowercase hex digits>`.
    pub fn parse(text: &str) -> Result<Digest, ImageError> {
        let Some((algo, hex)) = text.split_once(':') else {
            return Err(ImageError::new(
                Kind::Malformed,
                format!("`{text}` is not a digest (sha256:<64 hex digits>)"),
            ));
        };
        if algo != "sha256" {
            return Err(ImageError::new(
                Kind::Unsupported,
                format!("digest `{text}`: kekkai verifies sha256 digests only"),
            ));
        }
        if !is_hex64(hex) {
            return Err(ImageError::new(
                Kind::Malformed,
                format!("`{text}` is not a digest (sha256:<64 lowercase hex digits>)"),
            ));
        }
        Ok(Digest(text.to_owned()))
    }

    /// From 64 lowercase hex digits.
    pub fn from_hex(hex: &str) -> Result<Digest, ImageError> {
        Digest::parse(&format!("sha256:{hex}"))
    }

    /// The hex part (a file name in the store).
    pub fn hex(&self) -> &str {
        self.0.get(7..).unwrap_or_default()
    }

    /// The first 12 hex digits, as `docker images` shows an id.
    pub fn short(&self) -> &str {
        self.hex().get(..12).unwrap_or_default()
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex(&Sha256::digest(bytes))))
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// 64 lowercase hex digits?
pub fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// What a [`Hashing`] reader has seen so far.
#[derive(Debug, Default)]
pub struct Tally {
    hasher: Sha256,
    /// Bytes read.
    pub bytes: u64,
}

impl Tally {
    /// The digest of everything read.
    pub fn digest(&self) -> Digest {
        Digest(format!("sha256:{}", hex(&self.hasher.clone().finalize())))
    }
}

/// A reader that hashes and counts what passes through it, and fails once more than `limit`
/// bytes have come (`Some(limit)`), with an [`Exceeded`] error.
pub struct Hashing<R> {
    inner: R,
    tally: Rc<RefCell<Tally>>,
    limit: Option<u64>,
}

/// The payload of the I/O error a [`Hashing`] reader returns past its limit.
#[derive(Debug)]
pub struct Exceeded(pub u64);

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} bytes", self.0)
    }
}

impl std::error::Error for Exceeded {}

impl<R: Read> Hashing<R> {
    /// Wraps `inner`; the returned tally is updated as the reader is read.
    pub fn new(inner: R, limit: Option<u64>) -> (Hashing<R>, Rc<RefCell<Tally>>) {
        let tally = Rc::new(RefCell::new(Tally::default()));
        (
            Hashing {
                inner,
                tally: Rc::clone(&tally),
                limit,
            },
            tally,
        )
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut t = self.tally.borrow_mut();
        t.bytes = t.bytes.saturating_add(crate::sys::abi::len64(n));
        if let Some(limit) = self.limit {
            if t.bytes > limit {
                return Err(std::io::Error::other(Exceeded(limit)));
            }
        }
        if let Some(seen) = buf.get(..n) {
            t.hasher.update(seen);
        }
        Ok(n)
    }
}

/// The limit an I/O error reports, if a [`Hashing`] reader's limit caused it.
pub fn exceeded(e: &std::io::Error) -> Option<u64> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Exceeded>())
        .map(|x| x.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        None
    )]
    #[case("sha512:abcd", Some(Kind::Unsupported))]
    #[case(
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        Some(Kind::Malformed)
    )]
    #[case("sha256:abc", Some(Kind::Malformed))]
    #[case("e3b0c44298fc", Some(Kind::Malformed))]
    fn parses(#[case] text: &str, #[case] err: Option<Kind>) {
        assert_eq!(Digest::parse(text).err().map(|e| e.kind), err);
    }

    #[test]
    fn hashes_what_passes_and_stops_at_the_limit() {
        let (mut r, tally) = Hashing::new(&b""[..], None);
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        assert_eq!(tally.borrow().digest(), Digest::of(b""));
        assert_eq!(
            Digest::of(b"").hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let (mut r, _) = Hashing::new(&[0u8; 100][..], Some(10));
        let e = std::io::copy(&mut r, &mut std::io::sink()).unwrap_err();
        assert_eq!(exceeded(&e), Some(10));
    }
}
