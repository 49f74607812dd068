//! One layer tarball into one fresh directory of the store, with the rules for hostile input.
//!
//! The `tar` crate only parses (PAX headers, GNU long names and sparse files); every file is
//! created here, relative to an open directory of the layer, each path component opened with
//! `O_NOFOLLOW`, so nothing in the archive can make kekkai write outside the layer or follow a
//! link it planted. What is refused ([`Kind`] names the reason):
//!
//! - an absolute path (`absolute-path`), `..` in a path (`parent-dir`), a path through a symbolic
//!   link of the layer, or a relative symlink target that climbs above the layer's root
//!   (`link-outside`; absolute targets are fine: they resolve inside the sandbox's root);
//! - a hard link to anything but an earlier non-directory of the same layer (`hardlink-outside`);
//! - device nodes in an unprivileged store (`device`), a 0/0 character device anywhere
//!   (overlayfs would read it as a whiteout: layers mark deletions with `.wh.` names), setuid or
//!   setgid files in an unprivileged store unless the caller asked to drop the bits (`setuid`);
//! - more uncompressed bytes, more entries or deeper paths than the caps (`too-large`,
//!   `too-many-entries`), unknown entry types (`bad-entry`).
//!
//! OCI whiteouts become overlayfs whiteouts: `.wh.NAME` a 0/0 character device `NAME` (which an
//! unprivileged user may create since Linux 5.8), `.wh..wh..opq` the xattr
//! `user.overlay.opaque=y` on its directory (read by overlays mounted with `userxattr`). A
//! whiteout hides only lower layers: an entry of the same name in the same layer wins. No
//! extended attribute of the archive is restored, so no layer can smuggle in overlayfs
//! metadata (`*.overlay.redirect`, `*.overlay.whiteout`) or file capabilities.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{BufReader, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{
    Mode, SFlag, UtimensatFlags, fchmod, fchmodat, futimens, makedev, mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchown, fchownat, linkat, symlinkat};

use super::blob::{Compression, decoder};
use super::budget::{self, Budgeted, MAX_HEADER_BYTES};
use super::digest::{Digest, Hashing, exceeded};
use super::tree::{self, MAX_DEPTH};
use super::{ImageError, Kind, describe, describe_errno};

/// The xattr that marks an opaque directory, for overlays mounted with `userxattr`.
pub const OPAQUE_XATTR: &str = "user.overlay.opaque";

/// What a layer may hold, and how much.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The store belongs to root: ownership is kept, device nodes and setuid files allowed.
    pub privileged: bool,
    /// Drop setuid/setgid bits instead of refusing (unprivileged store only).
    pub strip_setid: bool,
    /// Uncompressed bytes left for this image.
    pub max_bytes: u64,
    /// Entries left for this image.
    pub max_entries: u64,
}

/// What unpacking a layer found.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// The digest of the blob as read (compressed).
    pub blob: Digest,
    /// Its size.
    pub blob_size: u64,
    /// The digest of the uncompressed tar (the layer's diff_id).
    pub diff_id: Digest,
    /// Uncompressed bytes, the holes of sparse files included.
    pub bytes: u64,
    /// Archive entries.
    pub entries: u64,
    /// Files whose setuid/setgid bits were dropped.
    pub stripped: u64,
}

/// Unpacks the layer blob `raw` (of `expected_size` bytes, if known) into the empty directory
/// `dest`. The digests are computed on the way; the caller compares them with what the
/// manifest and config promise and throws `dest` away on any error.
pub fn unpack(
    raw: impl Read,
    expected_size: Option<u64>,
    dest: BorrowedFd<'_>,
    rules: &Rules,
) -> Result<Unpacked, ImageError> {
    let (hashed_raw, raw_tally) = Hashing::new(raw, expected_size);
    let mut buffered = BufReader::with_capacity(64 << 10, hashed_raw);
    let head = std::io::BufRead::fill_buf(&mut buffered)
        .map_err(|e| read_error(&e, "reading the layer blob"))?;
    let compression = Compression::sniff(head);
    let (tar_stream, tar_tally) =
        Hashing::new(decoder(compression, buffered), Some(rules.max_bytes));
    // The tar crate holds an entry's long names and PAX records in memory: bounded here.
    let (tar_stream, headers) = Budgeted::new(tar_stream);
    let mut archive = tar::Archive::new(tar_stream);
    let mut u = Unpacker {
        root: dest,
        rules,
        entries: 0,
        stripped: 0,
        sparse: 0,
        dirs: Vec::new(),
        parents: HashMap::new(),
    };
    let mut entries = archive
        .entries()
        .map_err(|e| read_error(&e, "reading the layer's tar stream"))?;
    loop {
        headers.open(MAX_HEADER_BYTES);
        let next = entries.next();
        headers.close();
        let Some(entry) = next else { break };
        let mut entry = entry.map_err(|e| read_error(&e, "reading the layer's tar stream"))?;
        u.entries += 1;
        if u.entries > rules.max_entries {
            return Err(ImageError::new(
                Kind::TooManyEntries,
                format!("more than {} entries", rules.max_entries),
            ));
        }
        if entry.header().entry_type() == tar::EntryType::GNUSparse {
            // A sparse entry's holes come out of the tar crate as zeros that no byte of the
            // stream paid for: a 2 KiB layer could write terabytes. Its full size counts.
            u.sparse = u.sparse.saturating_add(entry.size());
            let total = tar_tally.borrow().bytes.saturating_add(u.sparse);
            if total > rules.max_bytes {
                return Err(ImageError::new(
                    Kind::TooLarge,
                    format!(
                        "entry `{}`: a sparse file of {} bytes takes the layer over {} bytes (the size cap: a sparse bomb, or --max-size too small)",
                        String::from_utf8_lossy(&entry.path_bytes()),
                        entry.size(),
                        rules.max_bytes
                    ),
                ));
            }
        }
        u.entry(&mut entry)?;
        // What the entry left unread (a directory's or a link's data, a whiteout's content)
        // is read here, as data under the size cap, not by the next `next()` under the
        // headers' budget.
        std::io::copy(&mut entry, &mut std::io::sink()).map_err(|e| {
            read_error(
                &e,
                &format!("entry `{}`", String::from_utf8_lossy(&entry.path_bytes())),
            )
        })?;
    }
    // The diff_id covers the whole stream, padding after the end-of-archive blocks included;
    // the blob digest covers every byte of the blob.
    let mut rest = archive.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink())
        .map_err(|e| read_error(&e, "reading the end of the layer"))?;
    drop(rest);
    u.finish()?;
    let raw_t = raw_tally.borrow();
    let tar_t = tar_tally.borrow();
    if let Some(size) = expected_size {
        if raw_t.bytes != size {
            return Err(ImageError::new(
                Kind::SizeMismatch,
                format!(
                    "the blob has {} bytes, its descriptor says {size}",
                    raw_t.bytes
                ),
            ));
        }
    }
    Ok(Unpacked {
        blob: raw_t.digest(),
        blob_size: raw_t.bytes,
        diff_id: tar_t.digest(),
        bytes: tar_t.bytes.saturating_add(u.sparse),
        entries: u.entries,
        stripped: u.stripped,
    })
}

/// An I/O error while reading the stream: a cap, or a broken or truncated blob.
fn read_error(e: &std::io::Error, what: &str) -> ImageError {
    if let Some(limit) = exceeded(e) {
        return ImageError::new(
            Kind::TooLarge,
            format!(
                "{what}: more than {limit} bytes (the size cap: a decompression bomb, or --max-size too small)"
            ),
        );
    }
    if let Some(limit) = budget::exceeded(e) {
        return ImageError::new(
            Kind::TooLarge,
            format!(
                "{what}: an entry's headers (a GNU long name, a PAX extended header, a sparse map) are longer than {limit} bytes"
            ),
        );
    }
    // The tar crate wraps the reader's errors in its own: look for the cap inside.
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<std::io::Error>()) {
        if exceeded(inner).is_some() {
            return read_error(inner, what);
        }
    }
    ImageError::new(Kind::Malformed, format!("{what}: {}", describe(e)))
}

struct Unpacker<'a> {
    root: BorrowedFd<'a>,
    rules: &'a Rules,
    entries: u64,
    stripped: u64,
    /// The sizes of the sparse files so far (their holes included).
    sparse: u64,
    /// Directories to give their final mode, owner and time at the end (a `0555` directory
    /// must stay writable until its entries are in).
    dirs: Vec<(Vec<OsString>, u32, u32, u32, u64)>,
    /// Open parent directories by path, so that each entry does not walk from the root.
    parents: HashMap<Vec<OsString>, OwnedFd>,
}

/// The components of an entry's path, or why it is refused. Empty means the layer's root.
pub fn components(raw: &[u8], what: &str) -> Result<Vec<OsString>, ImageError> {
    let shown = String::from_utf8_lossy(raw);
    if raw.starts_with(b"/") {
        return Err(ImageError::new(
            Kind::AbsolutePath,
            format!("{what} `{shown}`: an absolute path"),
        ));
    }
    if raw.len() > 4096 {
        return Err(ImageError::new(
            Kind::BadEntry,
            format!(
                "{what} `{}…`: a path longer than 4096 bytes",
                shown.get(..64).unwrap_or("")
            ),
        ));
    }
    let mut out = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                return Err(ImageError::new(
                    Kind::ParentDir,
                    format!("{what} `{shown}`: `..` in a path"),
                ));
            }
            p if p.len() > 255 => {
                return Err(ImageError::new(
                    Kind::BadEntry,
                    format!("{what} `{shown}`: a name longer than 255 bytes"),
                ));
            }
            p => out.push(OsStr::from_bytes(p).to_owned()),
        }
    }
    if out.len() > MAX_DEPTH {
        return Err(ImageError::new(
            Kind::TooManyEntries,
            format!("{what} `{shown}`: nested deeper than {MAX_DEPTH} directories"),
        ));
    }
    Ok(out)
}

/// Does a relative symlink target, read from the directory `depth` levels below the layer's
/// root, stay inside it?
pub fn target_stays_inside(depth: usize, target: &[u8]) -> bool {
    if target.starts_with(b"/") {
        return true;
    }
    let mut level = depth;
    for part in target.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => match level.checked_sub(1) {
                Some(l) => level = l,
                None => return false,
            },
            _ => level += 1,
        }
    }
    true
}

fn shown(path: &[OsString]) -> String {
    let parts: Vec<String> = path
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ImageError> {
        let header = entry.header();
        let kind = header.entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            return Ok(());
        }
        let path = components(&entry.path_bytes(), "entry")?;
        let header = entry.header();
        let bad = |what: &str| {
            ImageError::new(Kind::BadEntry, format!("entry `{}`: {what}", shown(&path)))
        };
        let mode = header.mode().map_err(|_| bad("an unreadable mode"))?;
        // Ownership counts in a root store only (elsewhere every file is the caller's).
        let (uid, gid) = if self.rules.privileged {
            (
                header
                    .uid()
                    .ok()
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| bad("an unreadable uid"))?,
                header
                    .gid()
                    .ok()
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| bad("an unreadable gid"))?,
            )
        } else {
            (0, 0)
        };
        let mtime = header.mtime().unwrap_or(0);
        let Some((name, parent)) = path.split_last() else {
            // The layer's own root (`./`): only a directory can be that.
            return if kind.is_dir() {
                Ok(())
            } else {
                Err(bad("the layer's root must be a directory"))
            };
        };
        let name_bytes = name.as_bytes();
        // Whiteouts.
        if name_bytes == b".wh..wh..opq" {
            let dir = self.parent(parent)?;
            let file = std::fs::File::from(dir);
            return xattr::FileExt::set_xattr(&file, OPAQUE_XATTR, b"y").map_err(|e| {
                ImageError::new(
                    Kind::Store,
                    format!(
                        "entry `{}`: setting {OPAQUE_XATTR}: {} (the store's filesystem must support user xattrs)",
                        shown(&path),
                        describe(&e)
                    ),
                )
            });
        }
        if name_bytes.starts_with(b".wh..wh.") {
            // aufs metadata (`.wh..wh.plnk`, `.wh..wh.aufs`): not part of the tree.
            return Ok(());
        }
        if let Some(hidden) = name_bytes.strip_prefix(b".wh.") {
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(bad("a whiteout of nothing"));
            }
            let dir = self.parent(parent)?;
            let hidden = OsStr::from_bytes(hidden);
            return match tree::lstat(dir.as_fd(), hidden) {
                // Something of that name came earlier in this layer: it stays.
                Ok(_) => Ok(()),
                Err(Errno::ENOENT) => mknodat(
                    dir.as_fd(),
                    hidden,
                    SFlag::S_IFCHR,
                    Mode::empty(),
                    makedev(0, 0),
                )
                .map_err(|e| self.fail(&path, "mknod (whiteout)", e)),
                Err(e) => Err(self.fail(&path, "lstat", e)),
            };
        }
        let mut perm = mode & 0o7777;
        // Every entry type that becomes a regular file: `is_file()` is `Regular` only, and a
        // contiguous (`7`) or GNU sparse (`S`) entry is a file all the same.
        let regular = matches!(
            kind,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse
        );
        if perm & 0o6000 != 0 && regular && !self.rules.privileged {
            if !self.rules.strip_setid {
                return Err(ImageError::new(
                    Kind::Setuid,
                    format!(
                        "entry `{}`: a setuid or setgid file (mode {perm:04o}): an unprivileged store can't hold one; import as root, or with --strip-setuid to drop the bits",
                        shown(&path)
                    ),
                ));
            }
            perm &= !0o6000;
            self.stripped += 1;
        }
        let dir = self.parent(parent)?;
        let dir = dir.as_fd();
        match kind {
            tar::EntryType::Directory => {
                match tree::lstat(dir, name) {
                    Ok(st) if tree::is_dir(&st) => {}
                    Ok(_) => {
                        self.parents.clear();
                        tree::remove_all(dir, name).map_err(|e| self.fail(&path, "unlink", e))?;
                        self.mkdir(dir, name, &path)?;
                    }
                    Err(Errno::ENOENT) => self.mkdir(dir, name, &path)?,
                    Err(e) => return Err(self.fail(&path, "lstat", e)),
                }
                self.dirs.push((path.clone(), perm, uid, gid, mtime));
                Ok(())
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let fd = self.create(dir, name, &path, |d, n| {
                    openat(
                        d,
                        n,
                        OFlag::O_WRONLY
                            | OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(0o600),
                    )
                })?;
                let mut file = std::fs::File::from(fd);
                std::io::copy(entry, &mut file)
                    .map_err(|e| read_error(&e, &format!("entry `{}`", shown(&path))))?;
                self.own(file.as_fd(), uid, gid, &path)?;
                fchmod(file.as_fd(), Mode::from_bits_truncate(perm))
                    .map_err(|e| self.fail(&path, "fchmod", e))?;
                let t = time(mtime);
                futimens(file.as_fd(), &t, &t).map_err(|e| self.fail(&path, "futimens", e))
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                if target.is_empty() || target.contains(&0) {
                    return Err(bad("a symbolic link without a target"));
                }
                if !target_stays_inside(parent.len(), &target) {
                    return Err(ImageError::new(
                        Kind::LinkOutside,
                        format!(
                            "entry `{}`: a symbolic link to `{}`, above the layer's root",
                            shown(&path),
                            String::from_utf8_lossy(&target)
                        ),
                    ));
                }
                let target = OsStr::from_bytes(&target);
                self.create(dir, name, &path, |d, n| symlinkat(target, d, n))?;
                self.own_at(dir, name, uid, gid, &path)?;
                let t = time(mtime);
                utimensat(
                    dir,
                    name.as_os_str(),
                    &t,
                    &t,
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(|e| self.fail(&path, "utimensat", e))
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let tpath = components(&target, &format!("hard link `{}` to", shown(&path)))
                    .map_err(|e| ImageError::new(Kind::HardlinkOutside, e.message))?;
                let outside = || {
                    ImageError::new(
                        Kind::HardlinkOutside,
                        format!(
                            "entry `{}`: a hard link to `{}`, which is not an earlier file of this layer",
                            shown(&path),
                            String::from_utf8_lossy(&target)
                        ),
                    )
                };
                let Some((tname, tparent)) = tpath.split_last() else {
                    return Err(outside());
                };
                let tdir = self.existing_dir(tparent).ok_or_else(outside)?;
                match tree::lstat(tdir.as_fd(), tname) {
                    Ok(st) => {
                        let fmt = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
                        if fmt == SFlag::S_IFDIR || (fmt == SFlag::S_IFCHR && st.st_rdev == 0) {
                            return Err(outside());
                        }
                    }
                    Err(_) => return Err(outside()),
                }
                if tpath == path {
                    return Ok(());
                }
                self.create(dir, name, &path, |d, n| {
                    linkat(tdir.as_fd(), tname.as_os_str(), d, n, AtFlags::empty())
                })?;
                Ok(())
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let fmt = match kind {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                if fmt == SFlag::S_IFCHR && major == 0 && minor == 0 {
                    return Err(bad(
                        "a 0/0 character device, which overlayfs would read as a whiteout (layers mark deletions with .wh. names)",
                    ));
                }
                if fmt != SFlag::S_IFIFO && !self.rules.privileged {
                    return Err(ImageError::new(
                        Kind::Device,
                        format!(
                            "entry `{}`: a device node ({major}:{minor}): an unprivileged store can't hold one",
                            shown(&path)
                        ),
                    ));
                }
                let dev = makedev(u64::from(major), u64::from(minor));
                self.create(dir, name, &path, |d, n| {
                    mknodat(d, n, fmt, Mode::from_bits_truncate(0o600), dev)
                })?;
                self.own_at(dir, name, uid, gid, &path)?;
                fchmodat(
                    dir,
                    name.as_os_str(),
                    Mode::from_bits_truncate(perm),
                    nix::sys::stat::FchmodatFlags::NoFollowSymlink,
                )
                .map_err(|e| self.fail(&path, "fchmodat", e))
            }
            other => Err(bad(&format!("an entry of type {other:?}"))),
        }
    }

    /// An error of the store while unpacking `path`.
    fn fail(&self, path: &[OsString], call: &str, e: Errno) -> ImageError {
        if e == Errno::ELOOP || e == Errno::ENOTDIR {
            return ImageError::new(
                Kind::LinkOutside,
                format!(
                    "entry `{}`: its path goes through a symbolic link or a file of the layer ({call}: {})",
                    shown(path),
                    describe_errno(e)
                ),
            );
        }
        ImageError::new(
            Kind::Store,
            format!("entry `{}`: {call}: {}", shown(path), describe_errno(e)),
        )
    }

    /// Creates `name` in `dir` with `make`; an earlier entry of that name (a duplicate, a
    /// whiteout of this layer, a directory) is replaced, as tar does.
    fn create<T>(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        path: &[OsString],
        make: impl Fn(BorrowedFd<'_>, &OsStr) -> nix::Result<T>,
    ) -> Result<T, ImageError> {
        match make(dir, name) {
            Err(Errno::EEXIST) => {
                // What goes may be a directory some cached descriptor stands for.
                self.parents.clear();
                tree::remove_all(dir, name).map_err(|e| self.fail(path, "unlink", e))?;
                make(dir, name).map_err(|e| self.fail(path, "create", e))
            }
            other => other.map_err(|e| self.fail(path, "create", e)),
        }
    }

    fn mkdir(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        path: &[OsString],
    ) -> Result<(), ImageError> {
        nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(0o700))
            .map_err(|e| self.fail(path, "mkdir", e))
    }

    fn own(
        &self,
        fd: BorrowedFd<'_>,
        uid: u32,
        gid: u32,
        path: &[OsString],
    ) -> Result<(), ImageError> {
        if !self.rules.privileged {
            return Ok(());
        }
        fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .map_err(|e| self.fail(path, "fchown", e))
    }

    fn own_at(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        uid: u32,
        gid: u32,
        path: &[OsString],
    ) -> Result<(), ImageError> {
        if !self.rules.privileged {
            return Ok(());
        }
        fchownat(
            dir,
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.fail(path, "fchownat", e))
    }

    /// The directory `parent` of the layer, made (0700 for now) where missing.
    fn parent(&mut self, parent: &[OsString]) -> Result<OwnedFd, ImageError> {
        let dup = |fd: &OwnedFd| {
            fd.try_clone()
                .map_err(|e| ImageError::new(Kind::Store, format!("dup: {}", describe(&e))))
        };
        if let Some(fd) = self.parents.get(parent) {
            return dup(fd);
        }
        let mut fd =
            tree::open_dir(self.root, OsStr::new(".")).map_err(|e| self.fail(parent, "open", e))?;
        for (i, part) in parent.iter().enumerate() {
            let here = parent.get(..=i).unwrap_or(parent);
            fd = match tree::open_dir(fd.as_fd(), part) {
                Ok(next) => next,
                Err(Errno::ENOENT) => {
                    // A directory the archive does not list: 0755, as other unpackers make
                    // it (an upper layer's 0700 would hide the lower layers' contents).
                    self.mkdir(fd.as_fd(), part, here)?;
                    let made =
                        tree::open_dir(fd.as_fd(), part).map_err(|e| self.fail(here, "open", e))?;
                    fchmod(made.as_fd(), Mode::from_bits_truncate(0o755))
                        .map_err(|e| self.fail(here, "fchmod", e))?;
                    made
                }
                Err(e) => return Err(self.fail(here, "open", e)),
            };
        }
        if self.parents.len() > 64 {
            self.parents.clear();
        }
        self.parents.insert(parent.to_vec(), dup(&fd)?);
        Ok(fd)
    }

    /// An existing directory of the layer (for a hard link's target), or None.
    fn existing_dir(&self, parent: &[OsString]) -> Option<OwnedFd> {
        let mut fd = tree::open_dir(self.root, OsStr::new(".")).ok()?;
        for part in parent {
            fd = tree::open_dir(fd.as_fd(), part).ok()?;
        }
        Some(fd)
    }

    /// Gives directories their final mode, owner and time, deepest first.
    fn finish(&mut self) -> Result<(), ImageError> {
        self.parents.clear();
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.0.len()));
        for (path, perm, uid, gid, mtime) in dirs {
            let Some(fd) = self.existing_dir(&path) else {
                // Replaced by a later entry of another type.
                continue;
            };
            self.own(fd.as_fd(), uid, gid, &path)?;
            fchmod(fd.as_fd(), Mode::from_bits_truncate(perm))
                .map_err(|e| self.fail(&path, "fchmod", e))?;
            let t = time(mtime);
            futimens(fd.as_fd(), &t, &t).map_err(|e| self.fail(&path, "futimens", e))?;
        }
        Ok(())
    }
}

fn time(mtime: u64) -> TimeSpec {
    TimeSpec::new(i64::try_from(mtime).unwrap_or(0), 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(b"./etc/passwd", Ok(vec!["etc", "passwd"]))]
    #[case(b"etc//x/", Ok(vec!["etc", "x"]))]
    #[case(b"./", Ok(vec![]))]
    #[case(b"/etc/passwd", Err(Kind::AbsolutePath))]
    #[case(b"a/../../etc", Err(Kind::ParentDir))]
    #[case(b"..", Err(Kind::ParentDir))]
    fn paths(#[case] raw: &[u8], #[case] want: Result<Vec<&str>, Kind>) {
        let got = components(raw, "entry").map_err(|e| e.kind);
        let want = want.map(|v| v.into_iter().map(OsString::from).collect::<Vec<_>>());
        assert_eq!(got, want);
    }

    /// A tar from (name, type, mode, data or link target).
    fn tar(entries: &[(&str, tar::EntryType, u32, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, mode, data) in entries {
            let data = data.as_bytes();
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(*kind);
            h.set_mode(*mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            let body: &[u8] = if kind.is_symlink() || kind.is_hard_link() {
                h.set_link_name_literal(data).unwrap();
                &[]
            } else {
                data
            };
            h.set_size(crate::sys::abi::len64(body.len()));
            h.set_cksum();
            b.append(&h, body).unwrap();
        }
        b.into_inner().unwrap()
    }

    struct Dir(std::path::PathBuf);

    impl Dir {
        fn new() -> Dir {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("kekkai-unpack-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn run(bytes: &[u8]) -> (Dir, Result<Unpacked, ImageError>) {
        let d = Dir::new();
        let fd = std::fs::File::open(&d.0).unwrap();
        let rules = Rules {
            privileged: false,
            strip_setid: false,
            max_bytes: 1 << 20,
            max_entries: 100,
        };
        let r = unpack(bytes, None, fd.as_fd(), &rules);
        (d, r)
    }

    use tar::EntryType as T;

    #[rstest]
    #[case::absolute(&[("/etc/x", T::Regular, 0o644, "x")], Kind::AbsolutePath)]
    #[case::dotdot(&[("a/../../x", T::Regular, 0o644, "x")], Kind::ParentDir)]
    #[case::symlink_up(&[("a/b", T::Symlink, 0o777, "../../x")], Kind::LinkOutside)]
    #[case::through_symlink(&[("l", T::Symlink, 0o777, "/etc"), ("l/passwd", T::Regular, 0o644, "x")], Kind::LinkOutside)]
    #[case::through_file(&[("f", T::Regular, 0o644, ""), ("f/x", T::Regular, 0o644, "x")], Kind::LinkOutside)]
    #[case::hardlink_absolute(&[("x", T::Link, 0o644, "/etc/passwd")], Kind::HardlinkOutside)]
    #[case::hardlink_missing(&[("x", T::Link, 0o644, "nothing")], Kind::HardlinkOutside)]
    #[case::whiteout_device(&[("null", T::Char, 0o666, "")], Kind::BadEntry)]
    #[case::setuid(&[("su", T::Regular, 0o4755, "")], Kind::Setuid)]
    #[case::setuid_contiguous(&[("su", T::Continuous, 0o4755, "")], Kind::Setuid)]
    #[case::setgid_contiguous(&[("sg", T::Continuous, 0o2755, "")], Kind::Setuid)]
    fn refuses(#[case] entries: &[(&str, tar::EntryType, u32, &str)], #[case] kind: Kind) {
        let (_d, r) = run(&tar(entries));
        assert_eq!(r.err().map(|e| e.kind), Some(kind));
    }

    #[test]
    fn a_bomb_stops_at_the_cap() {
        let zeros = "\0".repeat(2 << 20);
        let big = tar(&[("big", T::Regular, 0o644, zeros.as_str())]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &big).unwrap();
        let (_d, r) = run(&gz.finish().unwrap());
        assert_eq!(r.err().map(|e| e.kind), Some(Kind::TooLarge));
    }

    /// A GNU sparse entry `name` of `real` bytes: `data` at its end, a hole before it.
    fn sparse(name: &str, mode: u32, real: u64, data: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(T::GNUSparse);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_size(crate::sys::abi::len64(data.len()));
        let gnu = h.as_gnu_mut().unwrap();
        gnu.sparse[0].set_offset(real - crate::sys::abi::len64(data.len()));
        gnu.sparse[0].set_length(crate::sys::abi::len64(data.len()));
        gnu.set_real_size(real);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, data).unwrap();
        b.into_inner().unwrap()
    }

    #[rstest]
    // 2 KiB of tar, 100 MiB of file: over the 1 MiB cap, however small the stream.
    #[case::hole_over_the_cap(sparse("big", 0o644, 100 << 20, &[1u8; 512]), Some(Kind::TooLarge))]
    // Past anything an octal field holds (base-256): refused before a byte is written.
    #[case::huge(sparse("big", 0o644, 1 << 50, &[1u8; 512]), Some(Kind::TooLarge))]
    #[case::small(sparse("small", 0o644, 64 << 10, &[1u8; 512]), None)]
    #[case::setuid(sparse("su", 0o4755, 4096, &[1u8; 512]), Some(Kind::Setuid))]
    fn sparse_files_count_their_holes(#[case] bytes: Vec<u8>, #[case] want: Option<Kind>) {
        let (d, r) = run(&bytes);
        match want {
            Some(kind) => assert_eq!(r.err().map(|e| e.kind), Some(kind)),
            None => {
                let u = r.unwrap();
                assert_eq!(u.bytes, (64 << 10) + 2048, "its holes counted");
                let data = std::fs::read(d.0.join("small")).unwrap();
                assert_eq!(data.len(), 64 << 10);
                assert!(data[..(64 << 10) - 512].iter().all(|b| *b == 0));
                assert!(data[(64 << 10) - 512..].iter().all(|b| *b == 1));
            }
        }
    }

    /// An extension entry (`kind`: a GNU long name, a PAX header) of `len` bytes, then a file.
    fn extension(kind: tar::EntryType, len: usize) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(crate::sys::abi::len64(len));
        h.set_cksum();
        let mut body = vec![b'a'; len];
        if kind == T::XHeader {
            // One record, `N comment=aaa…\n`, exactly `len` bytes long.
            let digits = len.to_string();
            let head = format!("{digits} comment=");
            body[..head.len()].copy_from_slice(head.as_bytes());
            body[len - 1] = b'\n';
        }
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, &body[..]).unwrap();
        let mut f = tar::Header::new_gnu();
        f.as_old_mut().name[..1].copy_from_slice(b"f");
        f.set_mode(0o644);
        f.set_size(0);
        f.set_cksum();
        b.append(&f, &[][..]).unwrap();
        b.into_inner().unwrap()
    }

    #[rstest]
    // Read, and judged by the rules for names (one component of 4000 bytes).
    #[case::long_name_fits(T::GNULongName, 4000, Some(Kind::BadEntry))]
    #[case::long_name_too_long(T::GNULongName, (1 << 20) + 1, Some(Kind::TooLarge))]
    #[case::pax_fits(T::XHeader, 100_000, None)]
    #[case::pax_too_long(T::XHeader, 2_000_000, Some(Kind::TooLarge))]
    fn an_entrys_headers_are_bounded(
        #[case] kind: tar::EntryType,
        #[case] len: usize,
        #[case] want: Option<Kind>,
    ) {
        let d = Dir::new();
        let fd = std::fs::File::open(&d.0).unwrap();
        let rules = Rules {
            privileged: false,
            strip_setid: false,
            max_bytes: 16 << 20,
            max_entries: 100,
        };
        let r = unpack(&extension(kind, len)[..], None, fd.as_fd(), &rules);
        assert_eq!(r.err().map(|e| e.kind), want);
    }

    /// No extended attribute of the archive is restored, in a root store either: no file
    /// capability, no overlayfs metadata (`redirect`, `whiteout`, `opaque`) a layer could use
    /// to reach outside itself.
    #[test]
    #[ignore = "needs root: run by scripts/test"]
    fn pax_xattrs_are_not_restored() {
        // a root store's rules, and security.* xattrs, need root
        let records: &[(&str, &[u8])] = &[
            (
                "SCHILY.xattr.security.capability",
                b"\x01\x00\x00\x02\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00",
            ),
            ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
            ("SCHILY.xattr.user.overlay.whiteout", b"y"),
            ("SCHILY.xattr.user.overlay.opaque", b"y"),
        ];
        let mut pax = Vec::new();
        for (k, v) in records {
            let body = [b" ", k.as_bytes(), b"=", v, b"\n"].concat();
            let mut n = body.len() + 1;
            while n.to_string().len() + body.len() != n {
                n = n.to_string().len() + body.len();
            }
            pax.extend_from_slice(n.to_string().as_bytes());
            pax.extend_from_slice(&body);
        }
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_path("PaxHeaders/f").unwrap();
        h.set_entry_type(T::XHeader);
        h.set_size(crate::sys::abi::len64(pax.len()));
        h.set_cksum();
        b.append(&h, &pax[..]).unwrap();
        let mut f = tar::Header::new_ustar();
        f.set_path("f").unwrap();
        f.set_mode(0o755);
        f.set_uid(0);
        f.set_gid(0);
        f.set_mtime(0);
        f.set_size(2);
        f.set_cksum();
        b.append(&f, &b"x\n"[..]).unwrap();
        let d = Dir::new();
        let fd = std::fs::File::open(&d.0).unwrap();
        let rules = Rules {
            privileged: true,
            strip_setid: false,
            max_bytes: 1 << 20,
            max_entries: 100,
        };
        unpack(&b.into_inner().unwrap()[..], None, fd.as_fd(), &rules).unwrap();
        let names: Vec<_> = xattr::list(d.0.join("f")).unwrap().collect();
        assert_eq!(names, Vec::<std::ffi::OsString>::new());
    }

    #[test]
    fn whiteouts_opaque_dirs_and_implicit_parents() {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let (d, r) = run(&tar(&[
            ("a/b/file", T::Regular, 0o640, "x"),
            ("a/.wh.gone", T::Regular, 0o644, ""),
            ("a/.wh.file2", T::Regular, 0o644, ""),
            ("a/file2", T::Regular, 0o644, "kept"),
            ("a/b/.wh..wh..opq", T::Regular, 0o644, ""),
            ("ro/", T::Directory, 0o555, ""),
            ("ro/inside", T::Regular, 0o644, "y"),
            ("h", T::Link, 0o644, "a/b/file"),
        ]));
        let u = r.unwrap();
        assert_eq!(u.entries, 8);
        let meta = |p: &str| std::fs::symlink_metadata(d.0.join(p)).unwrap();
        assert_eq!(meta("a").mode() & 0o7777, 0o755, "an implicit parent");
        assert_eq!(meta("a/b/file").mode() & 0o7777, 0o640);
        let gone = meta("a/gone");
        assert!(
            gone.file_type().is_char_device() && gone.rdev() == 0,
            "a whiteout"
        );
        assert_eq!(std::fs::read(d.0.join("a/file2")).unwrap(), b"kept");
        assert_eq!(
            xattr::get(d.0.join("a/b"), OPAQUE_XATTR)
                .unwrap()
                .as_deref(),
            Some(&b"y"[..])
        );
        assert_eq!(
            meta("ro").mode() & 0o7777,
            0o555,
            "its mode, once its entries are in"
        );
        assert_eq!(meta("h").ino(), meta("a/b/file").ino());
        assert!(!d.0.join("a/.wh.gone").exists());
        let fd = std::fs::File::open(&d.0).unwrap();
        tree::remove_all(fd.as_fd(), OsStr::new("ro")).unwrap();
    }

    #[rstest]
    #[case(0, b"/etc/shadow", true)]
    #[case(0, b"usr/bin", true)]
    #[case(0, b"../x", false)]
    #[case(2, b"../../x", true)]
    #[case(2, b"../../../x", false)]
    #[case(1, b"a/../../x", true)]
    #[case(1, b"a/../../../x", false)]
    fn symlink_targets(#[case] depth: usize, #[case] target: &[u8], #[case] inside: bool) {
        assert_eq!(target_stays_inside(depth, target), inside);
    }
}
