//! Finding a policy: what `-p NAME` names (a file by path, a file found by name in a search
//! directory, or a shipped policy), and whether a file found by name may be trusted.
//!
//! A policy found by name is opened once, below the opened search directory, without following
//! a symbolic link ([`hostfs::open_beneath`]: `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`),
//! and its owner and mode, and its directory's, are checked on those descriptors: nothing can be
//! swapped between the check and the read, which is from the same descriptor (`pread`).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat};

use super::diag::{Diagnostic, describe_io};
use super::model::RawPolicy;
use super::{shipped, yaml};
use crate::hostfs;

/// Does `-p` (or `extends`) name a file by path rather than a policy by name? A `/` anywhere,
/// or a `.yaml`/`.yml` ending.
pub(super) fn looks_like_path(name: &str) -> bool {
    name.contains('/') || name.ends_with(".yaml") || name.ends_with(".yml")
}

/// Where a policy is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// A policy shipped inside the binary, by name.
    Shipped(&'static str),
    /// A file named by its path (on the command line, or by `extends` in such a file). It is
    /// opened as named, symbolic links included: the caller chose this file, and no trust
    /// decision rests on the path. It is still opened once and read from that descriptor.
    File(PathBuf),
    /// A file `-p NAME` found in a search directory: already opened, below that directory, and
    /// checked.
    Found(Found),
}

/// A policy file found by name (or reached by `extends` from one): opened once, with no symbolic
/// link followed below `root`, and its owner and mode (and its directory's) checked on the
/// descriptors. Read from `file`, never by path.
#[derive(Debug, Clone)]
pub struct Found {
    /// The directory the lookup started from (a search directory, or `/` for an absolute
    /// `extends`), open.
    pub(super) root: Arc<OwnedFd>,
    /// How `root` is shown: `.kekkai`, `/etc/kekkai/policies`, `/`.
    pub(super) root_shown: PathBuf,
    /// The file below `root`: no `.`, `..` or leading `/`.
    pub(super) rel: PathBuf,
    /// The file, open for reading (read with `pread`, so the same source can be loaded twice).
    pub(super) file: Arc<std::fs::File>,
}

impl PartialEq for Found {
    fn eq(&self, other: &Self) -> bool {
        self.root_shown == other.root_shown && self.rel == other.rel
    }
}

impl Eq for Found {}

impl Found {
    /// The file as errors and `explain` name it: `.kekkai/untrusted.yaml`.
    pub fn shown(&self) -> PathBuf {
        self.root_shown.join(&self.rel)
    }

    /// A path by which another process reaches this same file while this process lives: through
    /// `/proc/PID/fd/N` of the directory it was found in, so that no lookup is repeated (`kekkai
    /// audit` passes it to the `kekkai run` it starts).
    pub fn reopen_path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            crate::sys::raw(self.root.as_fd())
        ))
        .join(&self.rel)
    }
}

/// Why a symbolic link is refused where kekkai decides whether to trust a policy.
pub(super) const NO_LINKS: &str =
    "kekkai follows no symbolic link where it decides whether to trust a policy";

impl PolicySource {
    /// Interprets `-p NAME`: anything that looks like a path is a file; otherwise a name, looked
    /// up in [`search_dirs`] and then among the shipped policies.
    ///
    /// A policy found by name in a directory must be trustworthy: the file and its directory
    /// owned by the caller or root and writable by nobody else, and neither of them a symbolic
    /// link. Otherwise it is passed over with a warning (running `-p untrusted` inside someone
    /// else's checkout must not pick up the checkout's `.kekkai/untrusted.yaml`). The file is
    /// opened once, below the opened search directory, and the checks are made on those
    /// descriptors: nothing can be swapped between the check and the read. An error reading a
    /// trustworthy file is an error, not a reason to fall back to a shipped policy.
    pub fn from_arg(arg: &str) -> Result<PolicySource, Diagnostic> {
        if looks_like_path(arg) {
            return Ok(PolicySource::File(PathBuf::from(arg)));
        }
        let me = nix::unistd::geteuid().as_raw();
        let pass_over = |what: &Path, why: &str| {
            crate::log::warn(&format!("-p {arg}: passing over {}: {why}", what.display()))
        };
        for dir in search_dirs() {
            let (fd, dir_why) = match open_search_dir(&dir, me) {
                SearchDir::Missing => continue,
                SearchDir::Link => {
                    pass_over(
                        &dir,
                        &format!("the directory is a symbolic link; {NO_LINKS}"),
                    );
                    continue;
                }
                SearchDir::Open { fd, untrusted } => (fd, untrusted),
            };
            for ext in ["yaml", "yml"] {
                let rel = PathBuf::from(format!("{arg}.{ext}"));
                let shown = dir.join(&rel);
                if let Some(why) = &dir_why {
                    // Nothing in a directory others can write is opened; say why it is skipped.
                    if fstatat(&*fd, rel.as_path(), AtFlags::AT_SYMLINK_NOFOLLOW).is_ok() {
                        pass_over(&shown, why);
                    }
                    continue;
                }
                match open_trusted(&fd, &dir, &rel, me) {
                    Ok(Verdict::Found(found)) => return Ok(PolicySource::Found(found)),
                    Ok(Verdict::Missing) => {}
                    Ok(Verdict::Refused(why)) => pass_over(&shown, &why),
                    Err(msg) => {
                        return Err(Diagnostic {
                            file: shown.display().to_string(),
                            pos: None,
                            path: String::new(),
                            message: msg,
                        });
                    }
                }
            }
        }
        Ok(match shipped::find(arg) {
            Some(name) => PolicySource::Shipped(name),
            None => PolicySource::File(PathBuf::from(arg)),
        })
    }

    /// The name errors use for this source.
    pub fn display_name(&self) -> String {
        match self {
            PolicySource::Shipped(name) => format!("<shipped>/{name}.yaml"),
            PolicySource::File(p) => p.display().to_string(),
            PolicySource::Found(f) => f.shown().display().to_string(),
        }
    }
}

/// A search directory, as [`open_search_dir`] found it.
enum SearchDir {
    /// Absent (or not a directory, or not searchable by the caller): nothing to find there.
    Missing,
    /// A symbolic link: refused.
    Link,
    /// Opened; `untrusted` says why its files may not be used, if they may not.
    Open {
        fd: Arc<OwnedFd>,
        untrusted: Option<String>,
    },
}

/// Opens a search directory: the path leading to it is the caller's own (the working directory,
/// `$XDG_CONFIG_HOME` or `$HOME`, `/etc`) and is resolved as usual; the directory itself must
/// not be a symbolic link, and its owner and mode are read from the descriptor.
fn open_search_dir(dir: &Path, me: u32) -> SearchDir {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let (Some(parent), Some(last)) = (dir.parent(), dir.file_name()) else {
        return SearchDir::Missing;
    };
    let parent_fd = if parent.as_os_str().is_empty() {
        None
    } else {
        match nix::fcntl::open(parent, flags, nix::sys::stat::Mode::empty()) {
            Ok(fd) => Some(fd),
            Err(_) => return SearchDir::Missing,
        }
    };
    let at = parent_fd
        .as_ref()
        .map_or(nix::fcntl::AT_FDCWD, |fd| fd.as_fd());
    let fd = match hostfs::open_beneath(at, Path::new(last), flags) {
        Ok(fd) => fd,
        Err(Errno::ELOOP) => return SearchDir::Link,
        Err(_) => return SearchDir::Missing,
    };
    let untrusted = match fstat(&fd) {
        Ok(st) => hostfs::untrusted(&st, me, "its directory"),
        Err(e) => Some(hostfs::describe(e)),
    };
    SearchDir::Open {
        fd: Arc::new(fd),
        untrusted,
    }
}

/// What [`open_trusted`] found.
pub(super) enum Verdict {
    /// Opened and trustworthy.
    Found(Found),
    /// No such file.
    Missing,
    /// There, but not to be used: why.
    Refused(String),
}

/// Opens `rel` below `root` the way a policy found by name is opened: no symbolic link below
/// `root`, the file's directory and then the file checked on their descriptors (owned by `me`
/// or root, writable by nobody else), the file regular. A file in an untrusted directory is not
/// opened at all. `Err` is an I/O error on what would otherwise be used.
pub(super) fn open_trusted(
    root: &Arc<OwnedFd>,
    root_shown: &Path,
    rel: &Path,
    me: u32,
) -> Result<Verdict, String> {
    let (Some(dir_rel), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Ok(Verdict::Refused("not a regular file".into()));
    };
    let dir = match hostfs::open_beneath(root.as_fd(), dir_rel, OFlag::O_PATH | OFlag::O_DIRECTORY)
    {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(Verdict::Missing),
        Err(Errno::ELOOP) => {
            return Ok(Verdict::Refused(format!(
                "a directory on the way is a symbolic link; {NO_LINKS}"
            )));
        }
        Err(e) => return Err(hostfs::describe(e)),
    };
    let st = fstat(&dir).map_err(hostfs::describe)?;
    if let Some(why) = hostfs::untrusted(&st, me, "its directory") {
        return Ok(match fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => Verdict::Missing,
            _ => Verdict::Refused(why),
        });
    }
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
    let file = match hostfs::open_beneath(
        dir.as_fd(),
        Path::new(name),
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(Verdict::Missing),
        Err(Errno::ELOOP) => {
            return Ok(Verdict::Refused(format!(
                "the file is a symbolic link; {NO_LINKS}"
            )));
        }
        Err(e) => return Err(hostfs::describe(e)),
    };
    let st = fstat(&file).map_err(hostfs::describe)?;
    if !hostfs::is_regular(&st) {
        return Ok(Verdict::Refused("not a regular file".into()));
    }
    if let Some(why) = hostfs::untrusted(&st, me, "the file") {
        return Ok(Verdict::Refused(why));
    }
    Ok(Verdict::Found(Found {
        root: Arc::clone(root),
        root_shown: root_shown.to_path_buf(),
        rel: rel.to_path_buf(),
        file: Arc::new(std::fs::File::from(file)),
    }))
}

/// Where `-p NAME` looks, in order: `./.kekkai/`, `$XDG_CONFIG_HOME/kekkai/policies` (or
/// `~/.config/kekkai/policies`), `/etc/kekkai/policies`; then the shipped policies.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(".kekkai")];
    match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => dirs.push(PathBuf::from(x).join("kekkai/policies")),
        None => {
            if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
                dirs.push(PathBuf::from(home).join(".config/kekkai/policies"));
            }
        }
    }
    dirs.push(PathBuf::from("/etc/kekkai/policies"));
    dirs
}

/// Every policy `-p NAME` can find: (name, where, description), first match first. Files it
/// passes over are listed with the reason, as is a search directory it refuses.
pub fn available() -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    let describe = |text: &str| {
        serde_yaml::from_str::<RawPolicy>(text)
            .ok()
            .and_then(|p| p.description)
            .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    let me = nix::unistd::geteuid().as_raw();
    for dir in search_dirs() {
        let (fd, dir_why) = match open_search_dir(&dir, me) {
            SearchDir::Missing => continue,
            SearchDir::Link => {
                out.push((
                    "*".into(),
                    format!(
                        "{}/ (passed over: the directory is a symbolic link; {NO_LINKS})",
                        dir.display()
                    ),
                    String::new(),
                ));
                continue;
            }
            SearchDir::Open { fd, untrusted } => (fd, untrusted),
        };
        let Ok(listing) = hostfs::open_beneath(
            fd.as_fd(),
            Path::new("."),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        ) else {
            continue;
        };
        let Ok(mut listing) = nix::dir::Dir::from_fd(listing) else {
            continue;
        };
        let mut found: Vec<String> = listing
            .iter()
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().ok().map(str::to_owned))
            .collect();
        found.sort();
        for file in found {
            let rel = Path::new(&file);
            let (Some(stem), Some(ext)) = (rel.file_stem(), rel.extension()) else {
                continue;
            };
            if ext != "yaml" && ext != "yml" {
                continue;
            }
            let name = stem.to_string_lossy().into_owned();
            if out.iter().any(|(n, _, _)| *n == name) {
                continue;
            }
            let shown = dir.join(rel);
            let verdict = match &dir_why {
                Some(why) => Ok(Verdict::Refused(why.clone())),
                None => open_trusted(&fd, &dir, rel, me),
            };
            match verdict {
                Ok(Verdict::Found(f)) => {
                    let desc = read_bounded(&f.file)
                        .map(|b| describe(&String::from_utf8_lossy(&b)))
                        .unwrap_or_default();
                    out.push((name, shown.display().to_string(), desc));
                }
                Ok(Verdict::Missing) => {}
                // Listed so the user sees why `-p NAME` passes it over.
                Ok(Verdict::Refused(why)) | Err(why) => out.push((
                    name,
                    format!("{} (passed over: {why})", shown.display()),
                    String::new(),
                )),
            }
        }
    }
    for name in shipped::names() {
        if !out.iter().any(|(n, _, _)| n == name) {
            out.push((
                name.to_owned(),
                "(shipped)".into(),
                describe(shipped::text(name).unwrap_or_default()),
            ));
        }
    }
    out
}

/// Why [`read_bounded`] read no policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ReadError {
    /// Larger than [`yaml::MAX_FILE_BYTES`]: the file has a start to point at.
    TooLarge,
    /// Not a file, or not readable: as the system says it.
    Unreadable(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::TooLarge => write!(
                f,
                "file is larger than {} bytes, the most a policy may be",
                yaml::MAX_FILE_BYTES
            ),
            ReadError::Unreadable(why) => f.write_str(why),
        }
    }
}

/// Reads an opened policy file: a regular file, at most [`yaml::MAX_FILE_BYTES`] bytes, from
/// its start (`pread`: the descriptor's offset is not used, so a source can be read twice).
pub(super) fn read_bounded(file: &std::fs::File) -> Result<Vec<u8>, ReadError> {
    use std::os::unix::fs::FileExt;
    let st = fstat(file).map_err(|e| ReadError::Unreadable(hostfs::describe(e)))?;
    if !hostfs::is_regular(&st) {
        return Err(ReadError::Unreadable("not a regular file".into()));
    }
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    while bytes.len() <= yaml::MAX_FILE_BYTES {
        let offset = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        match file.read_at(&mut chunk, offset) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Unreadable(describe_io(&e))),
        }
    }
    if bytes.len() > yaml::MAX_FILE_BYTES {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}

/// A search directory for tests, shared with the loader's tests of `extends`.
#[cfg(test)]
pub(super) mod testing {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A fresh search directory `<tmp>/…/policies` holding `p.yaml`, removed on drop.
    pub struct Search(pub PathBuf);

    impl Search {
        pub fn new(tag: &str) -> Search {
            let top = std::env::temp_dir().join(format!(
                "kekkai-lookup-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&top);
            std::fs::create_dir_all(top.join("policies")).unwrap();
            std::fs::create_dir_all(top.join("elsewhere")).unwrap();
            std::fs::write(top.join("policies/p.yaml"), "version: 1\nname: p\n").unwrap();
            Search(top)
        }

        pub fn dir(&self) -> PathBuf {
            self.0.join("policies")
        }

        pub fn chmod(&self, rel: &str, mode: u32) {
            std::fs::set_permissions(self.0.join(rel), std::fs::Permissions::from_mode(mode))
                .unwrap();
        }

        /// `-p p` in this directory: the policy found, or why not.
        pub fn lookup(&self, name: &str) -> Result<Found, String> {
            let me = nix::unistd::geteuid().as_raw();
            let dir = self.dir();
            match open_search_dir(&dir, me) {
                SearchDir::Missing => Err("missing directory".into()),
                SearchDir::Link => Err("the directory is a symbolic link".into()),
                SearchDir::Open {
                    untrusted: Some(why),
                    ..
                } => Err(why),
                SearchDir::Open {
                    fd,
                    untrusted: None,
                } => match open_trusted(&fd, &dir, Path::new(name), me) {
                    Ok(Verdict::Found(f)) => Ok(f),
                    Ok(Verdict::Missing) => Err("missing file".into()),
                    Ok(Verdict::Refused(why)) | Err(why) => Err(why),
                },
            }
        }
    }

    impl Drop for Search {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    pub fn needs_root() -> bool {
        if nix::unistd::geteuid().is_root() {
            return false;
        }
        // chown needs root; CI runs as root.
        assert!(
            std::env::var_os("CI").is_none_or(|v| v != "true"),
            "needs root in CI"
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Search, needs_root};
    use rstest::rstest;

    /// How the search directory is prepared → the reason `-p p` passes `p.yaml` over.
    #[rstest]
    #[case::own_private("own", None)]
    #[case::group_writable_file("group-writable-file", Some("the file is writable by its group"))]
    #[case::world_writable_dir("world-writable-dir", Some("its directory is writable by everyone"))]
    #[case::sticky_world_writable_dir("sticky-dir", Some("its directory is writable by everyone"))]
    #[case::someone_elses_file("other-owner", Some("the file is owned by uid 12345"))]
    #[case::someone_elses_dir("other-owner-dir", Some("its directory is owned by uid 12345"))]
    #[case::symlinked_file("file-link", Some("the file is a symbolic link"))]
    #[case::symlinked_dir("dir-link", Some("the directory is a symbolic link"))]
    #[case::fifo("fifo", Some("not a regular file"))]
    #[case::directory("directory", Some("not a regular file"))]
    fn policies_found_by_name_must_be_trustworthy(#[case] how: &str, #[case] err: Option<&str>) {
        if how.starts_with("other-owner") && needs_root() {
            return;
        }
        let s = Search::new(how);
        match how {
            "group-writable-file" => s.chmod("policies/p.yaml", 0o664),
            "world-writable-dir" => s.chmod("policies", 0o777),
            "sticky-dir" => s.chmod("policies", 0o1777),
            "other-owner" => {
                std::os::unix::fs::chown(s.dir().join("p.yaml"), Some(12345), None).unwrap()
            }
            "other-owner-dir" => std::os::unix::fs::chown(s.dir(), Some(12345), None).unwrap(),
            "file-link" => {
                std::fs::rename(s.dir().join("p.yaml"), s.0.join("elsewhere/p.yaml")).unwrap();
                std::os::unix::fs::symlink("../elsewhere/p.yaml", s.dir().join("p.yaml")).unwrap();
            }
            "dir-link" => {
                std::fs::remove_dir(s.0.join("elsewhere")).unwrap();
                std::fs::rename(s.dir(), s.0.join("elsewhere")).unwrap();
                std::os::unix::fs::symlink("elsewhere", s.dir()).unwrap();
            }
            "fifo" => {
                std::fs::remove_file(s.dir().join("p.yaml")).unwrap();
                nix::unistd::mkfifo(
                    &s.dir().join("p.yaml"),
                    nix::sys::stat::Mode::from_bits_truncate(0o644),
                )
                .unwrap();
            }
            "directory" => {
                std::fs::remove_file(s.dir().join("p.yaml")).unwrap();
                std::fs::create_dir(s.dir().join("p.yaml")).unwrap();
            }
            _ => {}
        }
        let got = s.lookup("p.yaml");
        match err {
            None => {
                let f = got.unwrap();
                assert_eq!(f.shown(), s.dir().join("p.yaml"));
            }
            Some(want) => {
                let e = got.unwrap_err();
                assert!(e.contains(want), "{e}");
            }
        }
    }
}
