//! Host files kekkai reads or writes on the caller's behalf: opened once, checked with `fstat` on
//! the descriptor, then read or written through that same descriptor.
//!
//! A path names a file only until it is opened. Checking a path (`stat`) and opening it again
//! later lets anyone who can change a component in between (a rename, a symlink swapped in with
//! `renameat2(RENAME_EXCHANGE)`) choose what is read. So where a decision depends on the file —
//! whether a policy found by name may be trusted, whether a report may be written — the decision
//! is made on the open descriptor, and no symbolic link is followed in the part of the path the
//! decision rests on: [`open_beneath`] resolves below an opened directory with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (Linux 5.6), or, where the kernel or a
//! seccomp filter refuses openat2, one `openat(O_NOFOLLOW)` per component. Both refuse a symbolic
//! link with `ELOOP` and a way out of the directory with `EXDEV`.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};

/// How [`open_beneath_with`] resolves a path below a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolver {
    /// One `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`.
    Openat2,
    /// One `openat(O_NOFOLLOW)` per component (kernels before 5.6, or openat2 filtered).
    Walk,
}

/// Opens `rel` below the directory `dir` with `flags` (plus `O_CLOEXEC`), following no symbolic
/// link (`ELOOP`) and never leaving `dir` (`EXDEV` for `..`, an absolute path). `rel` empty or
/// `.` opens `dir` itself again.
pub fn open_beneath(dir: BorrowedFd<'_>, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    match open_beneath_with(Resolver::Openat2, dir, rel, flags) {
        // ENOSYS: before Linux 5.6. EPERM: a container's seccomp profile that predates openat2.
        Err(Errno::ENOSYS | Errno::EPERM) => open_beneath_with(Resolver::Walk, dir, rel, flags),
        other => other,
    }
}

/// [`open_beneath`] with a chosen resolver (the fallback is tested on kernels that have both).
pub fn open_beneath_with(
    how: Resolver,
    dir: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlag,
) -> nix::Result<OwnedFd> {
    let mut parts: Vec<&OsStr> = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(Errno::EXDEV);
            }
        }
    }
    let flags = flags | OFlag::O_CLOEXEC;
    match how {
        Resolver::Openat2 => {
            let resolve = ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS;
            let path = if parts.is_empty() {
                Path::new(".")
            } else {
                rel
            };
            openat2(dir, path, OpenHow::new().flags(flags).resolve(resolve))
        }
        Resolver::Walk => {
            let Some((last, leading)) = parts.split_last() else {
                return openat(dir, ".", flags, Mode::empty());
            };
            let mut held: Option<OwnedFd> = None;
            for part in leading {
                let here = held.as_ref().map_or(dir, |fd| fd.as_fd());
                let next = openat(
                    here,
                    *part,
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| link_as_eloop(e, here, part))?;
                held = Some(next);
            }
            let here = held.as_ref().map_or(dir, |fd| fd.as_fd());
            let fd = openat(here, *last, flags | OFlag::O_NOFOLLOW, Mode::empty())
                .map_err(|e| link_as_eloop(e, here, last))?;
            // O_PATH | O_NOFOLLOW opens a symbolic link itself instead of failing.
            if is_symlink(&fstat(&fd)?) {
                return Err(Errno::ELOOP);
            }
            Ok(fd)
        }
    }
}

/// `O_DIRECTORY | O_NOFOLLOW` on a symbolic link fails with `ENOTDIR`; say `ELOOP`, as openat2
/// does, when the name is a link.
fn link_as_eloop(e: Errno, dir: BorrowedFd<'_>, name: &OsStr) -> Errno {
    if e == Errno::ENOTDIR
        && fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok_and(|st| is_symlink(&st))
    {
        return Errno::ELOOP;
    }
    e
}

fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// Is it a symbolic link?
pub fn is_symlink(st: &FileStat) -> bool {
    file_type(st) == SFlag::S_IFLNK
}

/// Is it a regular file?
pub fn is_regular(st: &FileStat) -> bool {
    file_type(st) == SFlag::S_IFREG
}

/// Is it a directory?
pub fn is_dir(st: &FileStat) -> bool {
    file_type(st) == SFlag::S_IFDIR
}

/// Why `what` ("the file", "its directory") may not decide what a sandbox of user `me` gets:
/// owned by someone other than `me` or root, or writable by its group or by others. `None`
/// when it may.
pub fn untrusted(st: &FileStat, me: u32, what: &str) -> Option<String> {
    if st.st_uid != me && st.st_uid != 0 {
        return Some(format!(
            "{what} is owned by uid {}, not by you or root",
            st.st_uid
        ));
    }
    if st.st_mode & 0o022 != 0 {
        return Some(format!(
            "{what} is writable by {} (mode {:o})",
            if st.st_mode & 0o002 != 0 {
                "everyone"
            } else {
                "its group"
            },
            st.st_mode & 0o7777
        ));
    }
    None
}

/// Opens (creating it if missing) a file kekkai writes on the caller's behalf, such as
/// `--report FILE`: the last component is never followed if it is a symbolic link (`ELOOP`), and
/// an existing file must be a regular file with one link, owned by `me`. Nothing is truncated:
/// the caller truncates through the returned descriptor when it writes. The directory part is
/// resolved as given, as a shell's `>` would.
pub fn create_for_writing(path: &Path, me: u32) -> Result<std::fs::File, String> {
    let name = match path.file_name() {
        Some(n) if !path.as_os_str().as_encoded_bytes().ends_with(b"/") => n,
        _ => return Err("is a directory".into()),
    };
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = match parent {
        Some(p) => Some(
            nix::fcntl::open(
                p,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(describe)?,
        ),
        None => None,
    };
    let at = dir.as_ref().map_or(nix::fcntl::AT_FDCWD, |d| d.as_fd());
    // O_NONBLOCK: a FIFO planted under that name must not hold the write up (it is refused).
    let fd = openat(
        at,
        name,
        OFlag::O_WRONLY
            | OFlag::O_CREAT
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o666),
    )
    .map_err(|e| match e {
        Errno::ELOOP => format!(
            "is a symbolic link; kekkai does not follow one when it writes on your behalf ({})",
            describe(e)
        ),
        e => describe(e),
    })?;
    let st = fstat(&fd).map_err(describe)?;
    if !is_regular(&st) {
        return Err("not a regular file".into());
    }
    if st.st_nlink != 1 {
        return Err(format!(
            "has {} hard links; kekkai writes only into a file with one",
            st.st_nlink
        ));
    }
    if st.st_uid != me {
        return Err(format!("is owned by uid {}, not by you", st.st_uid));
    }
    Ok(std::fs::File::from(fd))
}

/// Reads `file` from where it is to its end, or to `limit` bytes, into a buffer of `capacity`
/// bytes to start with (doubled when full): a text that fits takes one `read` and the `read`
/// that returns 0. std's `read_to_end` asks `statx` and `lseek` for the size first (which a
/// kernel-made file such as mountinfo does not have), or starts from 32 bytes and doubles:
/// eight reads for a 2.5 KB mountinfo. Every read goes on to the end, so it also serves files
/// the kernel makes record by record, where a read stops at a page.
pub fn read_all(file: &std::fs::File, capacity: usize, limit: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = vec![0u8; capacity.clamp(1, limit.max(1))];
    let mut len = 0;
    loop {
        if len == buf.len() {
            if len >= limit {
                break;
            }
            buf.resize(len.saturating_mul(2).min(limit), 0);
        }
        let Some(spare) = buf.get_mut(len..) else {
            break;
        };
        match (&*file).read(spare) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// An errno as a short sentence with its name: "no such file or directory (ENOENT)".
pub fn describe(e: Errno) -> String {
    format!("{} ({e:?})", e.desc().to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use std::os::unix::fs::PermissionsExt;

    /// A fresh directory under the temp dir holding `a/b/f` (a file), `a/link-dir` → `b`,
    /// `a/b/link-file` → `f`, `dangling` → `nowhere`.
    fn tree(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "kekkai-hostfs-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink("b", dir.join("a/link-dir")).unwrap();
        std::os::unix::fs::symlink("f", dir.join("a/b/link-file")).unwrap();
        std::os::unix::fs::symlink("nowhere", dir.join("dangling")).unwrap();
        dir
    }

    /// Both resolvers give the same answer for every shape of path.
    #[rstest]
    #[case::file("a/b/f", OFlag::O_RDONLY, None)]
    #[case::dot_components("./a/./b/f", OFlag::O_RDONLY, None)]
    #[case::directory("a/b", OFlag::O_PATH | OFlag::O_DIRECTORY, None)]
    #[case::itself("", OFlag::O_PATH | OFlag::O_DIRECTORY, None)]
    #[case::symlinked_file("a/b/link-file", OFlag::O_RDONLY, Some(Errno::ELOOP))]
    #[case::symlinked_file_o_path("a/b/link-file", OFlag::O_PATH, Some(Errno::ELOOP))]
    #[case::symlinked_directory_on_the_way("a/link-dir/f", OFlag::O_RDONLY, Some(Errno::ELOOP))]
    #[case::symlinked_directory_last(
        "a/link-dir",
        OFlag::O_PATH | OFlag::O_DIRECTORY,
        Some(Errno::ELOOP)
    )]
    #[case::dangling_link("dangling", OFlag::O_RDONLY, Some(Errno::ELOOP))]
    #[case::parent("a/../a/b/f", OFlag::O_RDONLY, Some(Errno::EXDEV))]
    #[case::absolute("/etc/passwd", OFlag::O_RDONLY, Some(Errno::EXDEV))]
    #[case::missing("a/nope", OFlag::O_RDONLY, Some(Errno::ENOENT))]
    #[case::file_as_directory("a/b/f/g", OFlag::O_RDONLY, Some(Errno::ENOTDIR))]
    fn open_beneath_refuses_links_and_ways_out(
        #[case] rel: &str,
        #[case] flags: OFlag,
        #[case] want: Option<Errno>,
        #[values(Resolver::Openat2, Resolver::Walk)] how: Resolver,
    ) {
        let dir = tree(&format!("{how:?}"));
        let root = nix::fcntl::open(
            &dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let got = open_beneath_with(how, root.as_fd(), Path::new(rel), flags).map(drop);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(got.err(), want, "{how:?} {rel}");
    }

    /// (owner: None = the test's own uid, mode) → why it is not trusted.
    #[rstest]
    #[case::own_private(None, 0o644, None)]
    #[case::root_private(Some(0), 0o600, None)]
    #[case::group_writable(None, 0o664, Some("x is writable by its group (mode 664)"))]
    #[case::world_writable(None, 0o646, Some("x is writable by everyone (mode 646)"))]
    #[case::sticky_world_writable(None, 0o1777, Some("x is writable by everyone (mode 1777)"))]
    #[case::someone_elses(
        Some(12345),
        0o644,
        Some("x is owned by uid 12345, not by you or root")
    )]
    fn trust_is_owner_and_mode(
        #[case] owner: Option<u32>,
        #[case] mode: u32,
        #[case] want: Option<&str>,
    ) {
        let me = 1000;
        let root = nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
        let mut st = fstat(&root).unwrap();
        st.st_uid = owner.unwrap_or(me);
        st.st_mode = (st.st_mode & SFlag::S_IFMT.bits()) | mode;
        assert_eq!(untrusted(&st, me, "x").as_deref(), want);
    }

    /// (length of the file, starting capacity, limit) → the whole text, or its first `limit`
    /// bytes; and a kernel-made file read to its end.
    #[rstest]
    #[case::empty(0, 16, 1 << 20)]
    #[case::fits(100, 128, 1 << 20)]
    #[case::exactly(128, 128, 1 << 20)]
    #[case::doubles(5000, 16, 1 << 20)]
    #[case::zero_capacity(10, 0, 1 << 20)]
    #[case::limited(5000, 16, 100)]
    #[case::limit_is_the_size(5000, 16, 5000)]
    #[case::capacity_over_the_limit(5000, 8192, 300)]
    fn read_all_reads_to_the_end_or_the_limit(
        #[case] len: usize,
        #[case] capacity: usize,
        #[case] limit: usize,
    ) {
        let text: Vec<u8> = (0..len).map(|i| b"abcdefghij\n"[i % 11]).collect();
        let path = std::env::temp_dir().join(format!(
            "kekkai-hostfs-read-{}-{len}-{capacity}-{limit}",
            std::process::id()
        ));
        std::fs::write(&path, &text).unwrap();
        let got = read_all(&std::fs::File::open(&path).unwrap(), capacity, limit).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(got, text[..len.min(limit)]);
        let mountinfo = std::fs::File::open("/proc/self/mountinfo").unwrap();
        let got = String::from_utf8(read_all(&mountinfo, capacity, 1 << 20).unwrap()).unwrap();
        assert!(got.ends_with('\n') && got.contains(" - "), "{got}");
    }

    /// What `create_for_writing` refuses, and what it accepts.
    #[rstest]
    #[case::new_file("new", None)]
    #[case::own_file("own", None)]
    #[case::symlink_to_a_victim("link", Some("(ELOOP)"))]
    #[case::hard_link("hard", Some("has 2 hard links"))]
    #[case::fifo("fifo", Some("(ENXIO)"))]
    #[case::directory("dir", Some("(EISDIR)"))]
    #[case::trailing_slash("dir/", Some("is a directory"))]
    fn reports_are_written_only_into_plain_own_files(
        #[case] name: &str,
        #[case] want: Option<&str>,
    ) {
        let dir =
            std::env::temp_dir().join(format!("kekkai-hostfs-write-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("dir")).unwrap();
        std::fs::write(dir.join("victim"), "keep").unwrap();
        std::fs::write(dir.join("own"), "old").unwrap();
        std::os::unix::fs::symlink(dir.join("victim"), dir.join("link")).unwrap();
        std::fs::hard_link(dir.join("victim"), dir.join("hard")).unwrap();
        nix::unistd::mkfifo(&dir.join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let me = nix::unistd::geteuid().as_raw();
        let got = create_for_writing(&dir.join(name), me).map(drop);
        let victim = std::fs::read_to_string(dir.join("victim")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(victim, "keep");
        match want {
            None => assert_eq!(got, Ok(())),
            Some(w) => {
                let e = got.unwrap_err();
                assert!(e.contains(w), "{e}");
            }
        }
    }
}
