//! Directory trees in the store, handled through descriptors: every name is looked up relative
//! to an open directory with `O_NOFOLLOW`, so a symbolic link in a layer (they are everywhere,
//! and many are absolute) is never followed on the host.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FchmodatFlags, FileStat, Mode, SFlag, fchmodat, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

/// Deepest nesting the store creates or removes (the unpacker refuses deeper entries).
pub const MAX_DEPTH: usize = 256;

/// Opens the directory `name` in `dir`, never following a link.
pub fn open_dir(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// `lstat` of `name` in `dir`.
pub fn lstat(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<FileStat> {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// Is this a directory?
pub fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

/// The names in a directory (without `.` and `..`), sorted.
pub fn names(dir: BorrowedFd<'_>) -> nix::Result<Vec<OsString>> {
    let fd = openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = nix::dir::Dir::from_fd(fd)?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e?;
        let name = e.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(OsStr::from_bytes(name).to_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// Removes `name` in `dir` and everything below it. Directories an unprivileged owner can't
/// enter or change (a layer's `0555` directories) are made `0700` first.
pub fn remove_all(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<()> {
    remove_at(dir, name, 0)
}

fn remove_at(dir: BorrowedFd<'_>, name: &OsStr, depth: usize) -> nix::Result<()> {
    let st = match lstat(dir, name) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if !is_dir(&st) {
        return match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
            Err(Errno::ENOENT) => Ok(()),
            other => other,
        };
    }
    if depth > MAX_DEPTH {
        return Err(Errno::ELOOP);
    }
    // Writable and searchable by its owner, whatever the layer said.
    if st.st_mode & 0o700 != 0o700 {
        fchmodat(
            dir,
            name,
            Mode::from_bits_truncate(0o700),
            FchmodatFlags::NoFollowSymlink,
        )
        .or_else(|e| {
            if e == Errno::EOPNOTSUPP {
                Ok(())
            } else {
                Err(e)
            }
        })?;
    }
    let sub = open_dir(dir, name)?;
    for child in names(sub.as_fd())? {
        remove_at(sub.as_fd(), &child, depth + 1)?;
    }
    drop(sub);
    match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
        Err(Errno::ENOENT) => Ok(()),
        other => other,
    }
}

/// A random name (`prefix` + 16 hex digits), for staging directories.
pub fn random_name(prefix: &str) -> OsString {
    let mut buf = [0u8; 8];
    let got = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf));
    if got.is_err() {
        // Unique enough within the store: the pid and the time.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        buf = (u64::from(std::process::id())
            ^ u64::try_from(t & u128::from(u64::MAX)).unwrap_or(0))
        .to_le_bytes();
    }
    OsString::from(format!("{prefix}{}", super::digest::hex(&buf)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_a_tree_with_closed_directories_and_links() {
        use std::os::unix::fs::PermissionsExt;
        let top = std::env::temp_dir().join(format!("kekkai-tree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&top);
        std::fs::create_dir_all(top.join("t/a/b")).unwrap();
        std::fs::write(top.join("t/a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", top.join("t/a/etc")).unwrap();
        std::fs::set_permissions(top.join("t/a"), std::fs::Permissions::from_mode(0o555)).unwrap();
        let fd = std::fs::File::open(&top).unwrap();
        remove_all(fd.as_fd(), OsStr::new("t")).unwrap();
        assert!(!top.join("t").exists());
        assert!(std::path::Path::new("/etc/passwd").exists());
        remove_all(fd.as_fd(), OsStr::new("t")).unwrap();
        std::fs::remove_dir(&top).unwrap();
    }
}
