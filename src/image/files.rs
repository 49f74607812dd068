//! Small files of the store (names, records, configs), read and written through descriptors:
//! never through a link, never more than a cap.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, fstat};

use super::{ImageError, Kind, describe, store_err};

/// A name as a file name: bytes other than `a-z 0-9 . _ -` become `%XX`.
pub fn encode(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The name a file name stands for.
pub fn decode(file: &OsStr) -> Option<String> {
    let b = file.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b.get(i) == Some(&b'%') {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(*b.get(i)?);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Reads a regular file below `dir` (no link followed), at most `max` bytes.
pub fn read_file(dir: BorrowedFd<'_>, name: &OsStr, max: u64) -> Result<Vec<u8>, ImageError> {
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| store_err(format!("open {}", name.to_string_lossy()), e))?;
    let st = fstat(fd.as_fd()).map_err(|e| store_err("fstat", e))?;
    if !crate::hostfs::is_regular(&st) {
        return Err(ImageError::new(
            Kind::Store,
            format!("{} is not a regular file", name.to_string_lossy()),
        ));
    }
    let mut out = Vec::new();
    std::fs::File::from(fd)
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| ImageError::new(Kind::Store, describe(&e)))?;
    if crate::sys::abi::len64(out.len()) > max {
        return Err(ImageError::new(
            Kind::TooLarge,
            format!("{} is larger than {max} bytes", name.to_string_lossy()),
        ));
    }
    Ok(out)
}

/// Creates a new file `name` in `dir` (never through a link) holding `bytes`.
pub fn write_file(dir: BorrowedFd<'_>, name: &str, bytes: &[u8]) -> Result<(), ImageError> {
    let fd = openat(
        dir,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| store_err(format!("create {name}"), e))?;
    let mut f = std::fs::File::from(fd);
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| ImageError::new(Kind::Store, format!("writing {name}: {}", describe(&e))))
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("alpine:3.20", "alpine%3A3.20")]
    #[case(
        "127.0.0.1:5000/kekkai/test:1.0",
        "127.0.0.1%3A5000%2Fkekkai%2Ftest%3A1.0"
    )]
    #[case("Reg:1/x:y", "%52eg%3A1%2Fx%3Ay")]
    fn names_round_trip(#[case] name: &str, #[case] file: &str) {
        assert_eq!(encode(name), file);
        assert_eq!(decode(OsStr::new(file)).as_deref(), Some(name));
    }
}
