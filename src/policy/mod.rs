//! Loading a policy: YAML file(s) → one merged [`RawPolicy`] that remembers, for every value,
//! the file, line and column it was written at.
//!
//! Order: bounded read → UTF-8 → structural scan (duplicate keys, depth, alias budget) → typed
//! parse (unknown keys are errors) → variables → `extends` (recursively, cycles are errors) →
//! `replace` / `remove` → merge. Nothing here touches the system beyond reading files.

pub mod each;
pub mod merge;
pub mod model;
pub mod path;
pub mod shipped;
pub mod suggest;
pub mod vars;
pub mod yaml;

use std::collections::HashMap;
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat};

use serde_yaml::Value;

use crate::caller::Caller;
use crate::hostfs;
pub use merge::Origin;
use merge::{Node, merge, remove_entries};
pub use model::RawPolicy;
pub use path::KeyPath;
use yaml::Pos;

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
    root: Arc<OwnedFd>,
    /// How `root` is shown: `.kekkai`, `/etc/kekkai/policies`, `/`.
    root_shown: PathBuf,
    /// The file below `root`: no `.`, `..` or leading `/`.
    rel: PathBuf,
    /// The file, open for reading (read with `pread`, so the same source can be loaded twice).
    file: Arc<std::fs::File>,
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
const NO_LINKS: &str = "kekkai follows no symbolic link where it decides whether to trust a policy";

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
        let looks_like_path = arg.contains('/') || arg.ends_with(".yaml") || arg.ends_with(".yml");
        if looks_like_path {
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
enum Verdict {
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
fn open_trusted(
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
        let mut out = self.file.clone();
        if let Some(pos) = self.pos {
            out.push_str(&format!(":{pos}"));
        }
        if !self.path.is_empty() {
            out.push_str(&format!(": {}", self.path));
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

/// A merged policy and the map back to its sources.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    /// The merged policy.
    pub policy: RawPolicy,
    /// Every file read, the policy itself first, then what it extends.
    pub sources: Vec<SourceFile>,
    /// The merged document, node by node with origins.
    tree: Node,
    /// Merged path → where it was written.
    origins: HashMap<KeyPath, Origin>,
}

impl LoadedPolicy {
    /// A diagnostic about the merged policy's `path`, placed in the file that wrote it.
    pub fn diag(&self, path: &KeyPath, message: impl Into<String>) -> Diagnostic {
        let mut probe = path.clone();
        let origin = loop {
            if let Some(o) = self.origins.get(&probe) {
                // Keep the part of the path below the recorded node (e.g. a key that is absent).
                let rest = path.segs().get(probe.segs().len()..).unwrap_or_default();
                break Origin {
                    file: o.file,
                    path: o.path.join(rest),
                };
            }
            if probe.is_root() {
                break Origin {
                    file: 0,
                    path: path.clone(),
                };
            }
            probe = probe.parent();
        };
        diag_in(&self.sources, origin.file, &origin.path, message)
    }

    /// Was the merged policy's value at `path` written with `${PWD}` (so that where kekkai is
    /// started decides it)?
    pub fn uses_pwd(&self, path: &KeyPath) -> bool {
        self.origins.get(path).is_some_and(|o| {
            self.sources
                .get(o.file)
                .is_some_and(|s| s.pwd_paths.contains(&o.path))
        })
    }

    /// Where the user wrote the merged policy's `path`, for messages outside a [`Diagnostic`]
    /// (a launch step's error): the flag as typed for a command-line override (`--ro-bind
    /// /data`), else `FILE:LINE:COL: KEY.PATH` in the file that wrote it.
    pub fn place(&self, path: &KeyPath) -> String {
        let d = self.diag(path, "");
        if d.file == COMMAND_LINE {
            d.path
        } else {
            d.place()
        }
    }

    /// The names of the files merged, the policy first.
    pub fn chain(&self) -> Vec<&str> {
        self.sources.iter().map(|s| s.name.as_str()).collect()
    }

    /// Removes a key from the merged policy (a command-line override that drops what the
    /// policy set). Returns whether it was there.
    pub fn drop_key(&mut self, path: &KeyPath) -> Result<bool, Diagnostics> {
        let mut tree = self.tree.clone();
        if !tree.remove_path(path) {
            return Ok(false);
        }
        *self = LoadedPolicy::finish(tree, std::mem::take(&mut self.sources))?;
        Ok(true)
    }

    /// A name for the policy when it gives none: its file's stem.
    pub fn default_name(&self) -> String {
        let first = self
            .sources
            .first()
            .map(|s| s.name.as_str())
            .unwrap_or("policy");
        let base = first.rsplit('/').next().unwrap_or(first);
        base.trim_end_matches(".yaml")
            .trim_end_matches(".yml")
            .to_owned()
    }

    /// Adds a command-line override (`flag` as the user typed it) and merges `overlay` from it
    /// on top, with the same rules as `extends`. `overlay` must be valid policy YAML. Errors
    /// about what it set name the flag.
    pub fn overlay(&mut self, flag: &str, overlay: Value) -> Result<(), Diagnostics> {
        let file = self.sources.len();
        self.sources.push(SourceFile {
            name: format!("{COMMAND_LINE} ({flag})"),
            text: None,
            pwd_paths: Vec::new(),
            flag: Some(flag.to_owned()),
        });
        let mut tree = self.tree.clone();
        merge(&mut tree, Node::from_value(overlay, file, KeyPath::root()));
        *self = LoadedPolicy::finish(tree, std::mem::take(&mut self.sources))?;
        Ok(())
    }

    fn finish(tree: Node, sources: Vec<SourceFile>) -> Result<LoadedPolicy, Diagnostics> {
        let mut origins = HashMap::new();
        tree.record(&KeyPath::root(), &mut origins);
        let mut policy: RawPolicy = typed(&tree.to_value()).map_err(|e| {
            let last = sources.len().saturating_sub(1);
            Diagnostics::from(diag_in(&sources, last, &KeyPath::root(), e.to_string()))
        })?;
        // Each file's own `version` was checked when it was read.
        policy.version = Some(1);
        Ok(LoadedPolicy {
            policy,
            sources,
            tree,
            origins,
        })
    }
}

/// How errors name the command line's overrides.
pub const COMMAND_LINE: &str = "command line";

fn diag_in(
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
        // A document without a single node still has a start.
        pos: source
            .and_then(|s| s.text.as_deref())
            .map(|t| yaml::locate(t, path).unwrap_or(Pos { line: 1, column: 1 })),
        path: path.to_string(),
        message: message.into(),
    }
}

/// Reads a parsed document into the typed model the same way the text was read. Directly from
/// the `Value` when that works (the common case, and a fifth of the cost); else through YAML
/// text, so that `name: 5` or `DEBUG: 1` stay acceptable as strings, as they were in the file
/// (a `Value` holding the number 5 is stricter than the text `5`). Where both succeed they
/// agree: the text keeps every scalar's type.
fn typed(value: &Value) -> Result<RawPolicy, serde_yaml::Error> {
    if let Ok(p) = serde_yaml::from_value(value.clone()) {
        return Ok(p);
    }
    serde_yaml::from_str(&serde_yaml::to_string(value)?)
}

/// A string key whose unquoted value YAML reads as a number, boolean or null comes out of the
/// parsed document respelled (`1.10` → `1.1`, `0x10` → `16`, `~` → `null`). Compares the
/// strings as written (`first`, read from the text) with what the document gives (`expanded`)
/// where no variable explains a difference, and asks for quotes instead of changing a value.
fn lossy_scalar(first: &RawPolicy, expanded: &RawPolicy) -> Option<(KeyPath, String)> {
    let root = KeyPath::root();
    let mut pairs: Vec<(KeyPath, &str, &str)> = Vec::new();
    for (key, a, b) in [
        ("name", &first.name, &expanded.name),
        ("hostname", &first.hostname, &expanded.hostname),
        ("cwd", &first.cwd, &expanded.cwd),
    ] {
        if let (Some(a), Some(b)) = (a, b) {
            pairs.push((root.key(key), a.as_str(), b.as_str()));
        }
    }
    let sets = (
        first.env.as_ref().and_then(|e| e.set.as_ref()),
        expanded.env.as_ref().and_then(|e| e.set.as_ref()),
    );
    if let (Some(a), Some(b)) = sets {
        for (k, v) in a {
            if let Some(w) = b.get(k) {
                pairs.push((root.key("env").key("set").key(k), v.as_str(), w.as_str()));
            }
        }
    }
    pairs
        .into_iter()
        .find(|(_, written, read)| written != read && !written.contains('$'))
        .map(|(path, written, read)| {
            (
                path,
                format!(
                    "YAML reads `{written}` as `{read}`: quote it (\"{written}\") to keep it as written"
                ),
            )
        })
}

/// Deepest chain of `extends`.
const MAX_EXTENDS: usize = 16;

/// Keys that belong to one file and are not merged.
const PER_FILE_KEYS: [&str; 4] = ["version", "extends", "replace", "remove"];

/// Loads a policy and everything it extends.
pub fn load(source: &PolicySource, caller: &Caller) -> Result<LoadedPolicy, Diagnostics> {
    let mut loader = Loader::new(caller);
    let opened = match source {
        PolicySource::Shipped(n) => Opened::shipped(n),
        PolicySource::File(p) => Opened::named(None, p, p.clone()).map_err(|msg| Diagnostic {
            file: p.display().to_string(),
            pos: None,
            path: String::new(),
            message: msg,
        })?,
        PolicySource::Found(f) => Opened::found(f),
    };
    let tree = loader.load(opened, None)?;
    LoadedPolicy::finish(tree, loader.sources)
}

/// Loads a policy from text, as if read from a file called `name` (tests, fuzzing).
pub fn load_str(name: &str, text: &str, caller: &Caller) -> Result<LoadedPolicy, Diagnostics> {
    let mut loader = Loader::new(caller);
    let anchor = Anchor::Dir {
        fd: None,
        shown: Path::new(name)
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .to_path_buf(),
    };
    let key = (FileKey::Name(name.to_owned()), name.to_owned());
    let tree = loader.load_text(name.into(), text.as_bytes(), anchor, key)?;
    LoadedPolicy::finish(tree, loader.sources)
}

/// What a file's relative `extends` resolve against.
#[derive(Clone)]
enum Anchor {
    /// A shipped policy extends only shipped policies.
    Shipped,
    /// A file named by path: its directory, as opened when the file was (`None` for text given
    /// with [`load_str`]: the directory by path), and how that directory is shown.
    Dir {
        fd: Option<Arc<OwnedFd>>,
        shown: PathBuf,
    },
    /// A file found by name: relative paths stay below `root`, from `dir` (relative to `root`).
    Beneath {
        root: Arc<OwnedFd>,
        root_shown: PathBuf,
        dir: PathBuf,
    },
}

/// Tells files apart for cycle detection: by device and inode of the descriptor read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileKey {
    Shipped(&'static str),
    Inode(u64, u64),
    Name(String),
}

/// A policy about to be loaded: how errors name it, the text's origin (an open file, read once,
/// or a shipped text), what its `extends` resolve against, and its identity with the name a
/// cycle shows.
struct Opened {
    name: String,
    file: Option<Arc<std::fs::File>>,
    shipped: &'static str,
    anchor: Anchor,
    key: (FileKey, String),
}

impl Opened {
    fn shipped(name: &'static str) -> Opened {
        let shown = PolicySource::Shipped(name).display_name();
        Opened {
            name: shown.clone(),
            file: None,
            shipped: name,
            anchor: Anchor::Shipped,
            key: (FileKey::Shipped(name), shown),
        }
    }

    fn found(f: &Found) -> Opened {
        let shown = f.shown();
        Opened {
            name: shown.display().to_string(),
            file: Some(Arc::clone(&f.file)),
            shipped: "",
            anchor: Anchor::Beneath {
                root: Arc::clone(&f.root),
                root_shown: f.root_shown.clone(),
                dir: f
                    .rel
                    .parent()
                    .unwrap_or_else(|| Path::new(""))
                    .to_path_buf(),
            },
            key: file_key(&f.file, &shown),
        }
    }

    /// Opens a file named by path, relative to `at` (the working directory when `None`):
    /// symbolic links are followed, as for any path the caller names. The directory it is in
    /// is opened first and the file below it, so that its relative `extends` resolve in the
    /// directory the file was read from.
    fn named(at: Option<&Arc<OwnedFd>>, path: &Path, shown: PathBuf) -> Result<Opened, String> {
        let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused when read.
        let read = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let at_fd = at.map_or(nix::fcntl::AT_FDCWD, |a| a.as_fd());
        let no_mode = nix::sys::stat::Mode::empty();
        let slash = path.as_os_str().as_encoded_bytes().ends_with(b"/");
        let (dir, file) = match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) if !slash => {
                let parent = if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                };
                let dir = nix::fcntl::openat(at_fd, parent, dir_flags, no_mode)
                    .map_err(hostfs::describe)?;
                let file =
                    nix::fcntl::openat(&dir, name, read, no_mode).map_err(hostfs::describe)?;
                (Some(Arc::new(dir)), file)
            }
            // `/`, `.`, `x/..`, `dir/`: whatever it is, reading it says what is wrong.
            _ => (
                None,
                nix::fcntl::openat(at_fd, path, read, no_mode).map_err(hostfs::describe)?,
            ),
        };
        let file = Arc::new(std::fs::File::from(file));
        Ok(Opened {
            name: shown.display().to_string(),
            key: file_key(&file, &shown),
            file: Some(file),
            shipped: "",
            anchor: Anchor::Dir {
                fd: dir,
                shown: shown
                    .parent()
                    .unwrap_or_else(|| Path::new("."))
                    .to_path_buf(),
            },
        })
    }
}

/// A file's identity (device, inode) and the name a cycle shows: its canonical path.
fn file_key(file: &std::fs::File, shown: &Path) -> (FileKey, String) {
    let key = match fstat(file) {
        Ok(st) => FileKey::Inode(st.st_dev, st.st_ino),
        Err(_) => FileKey::Name(shown.display().to_string()),
    };
    let canonical = std::fs::read_link(crate::sys::fd_path(file.as_fd()))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| shown.display().to_string());
    (key, canonical)
}

/// `path` without `.` and `..` components, if it does not climb above its start.
fn below(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

struct Loader<'c> {
    caller: &'c Caller,
    sources: Vec<SourceFile>,
    /// The files being loaded, outermost first, with the names a cycle shows.
    stack: Vec<(FileKey, String)>,
}

/// Where an `extends` was written, for errors about the file it names.
struct Includer {
    file: usize,
    path: KeyPath,
}

impl<'c> Loader<'c> {
    fn new(caller: &'c Caller) -> Self {
        Loader {
            caller,
            sources: Vec::new(),
            stack: Vec::new(),
        }
    }

    fn fail(&self, file: usize, path: &KeyPath, msg: impl Into<String>) -> Diagnostics {
        Diagnostics::from(diag_in(&self.sources, file, path, msg))
    }

    /// The type errors of `text` (file number `file`) besides those in `found`: independent
    /// errors in other keys, each placed by its key path (see [`each`]).
    fn other_type_errors(&self, file: usize, text: &str, found: &Diagnostics) -> Vec<Diagnostic> {
        let Ok(doc) = serde_yaml::from_str::<Value>(text) else {
            return Vec::new();
        };
        let known: Vec<KeyPath> = found
            .0
            .iter()
            .filter_map(|d| KeyPath::parse_shown(&d.path))
            .collect();
        // The same error seen from its parent or from inside is not another one.
        let related = |a: &KeyPath, b: &KeyPath| {
            a.segs().starts_with(b.segs()) || b.segs().starts_with(a.segs())
        };
        each::type_errors(&doc)
            .into_iter()
            .filter(|(path, _)| !known.iter().any(|k| related(k, path)))
            .map(|(path, msg)| {
                let unknown = msg.starts_with("unknown key");
                let mut d = diag_in(&self.sources, file, &path, msg);
                // An unknown key is pointed at itself, as serde's own error does, not at its
                // value: the key is the last thing before the value on its line.
                if let (true, Some(pos), Some(path::Seg::Key(key))) =
                    (unknown, d.pos, path.segs().last())
                {
                    let line = text.lines().nth(pos.line.saturating_sub(1)).unwrap_or("");
                    let before: String = line.chars().take(pos.column.saturating_sub(1)).collect();
                    if let Some(at) = before.rfind(key.as_str()) {
                        d.pos = Some(yaml::Pos {
                            line: pos.line,
                            column: before.get(..at).map_or(0, |b| b.chars().count()) + 1,
                        });
                    }
                }
                d
            })
            .collect()
    }

    fn load(&mut self, opened: Opened, from: Option<Includer>) -> Result<Node, Diagnostics> {
        let name = opened.name.clone();
        let bytes = match &opened.file {
            None => shipped::text(opened.shipped)
                .unwrap_or_default()
                .as_bytes()
                .to_vec(),
            Some(f) => match read_bounded(f) {
                Ok(b) => b,
                Err(msg) => {
                    return Err(match from {
                        Some(inc) => self.fail(inc.file, &inc.path, format!("{name}: {msg}")),
                        None => Diagnostics::from(Diagnostic {
                            file: name,
                            // A file too large to read has a start to point at; a missing one
                            // does not.
                            pos: msg
                                .starts_with(TOO_LARGE)
                                .then_some(Pos { line: 1, column: 1 }),
                            path: String::new(),
                            message: msg,
                        }),
                    });
                }
            },
        };
        self.load_text(name, &bytes, opened.anchor, opened.key)
    }

    fn load_text(
        &mut self,
        name: String,
        bytes: &[u8],
        anchor: Anchor,
        own_key: (FileKey, String),
    ) -> Result<Node, Diagnostics> {
        let file = self.sources.len();
        let yaml_fail = |sources: &[SourceFile], e: yaml::YamlError| {
            let source = sources.get(file);
            // Errors about the stream as a whole carry no mark: place them where it goes wrong.
            let pos = e.pos.or_else(|| {
                let text = source.and_then(|s| s.text.as_deref())?;
                Some(yaml::second_document(text).unwrap_or(Pos { line: 1, column: 1 }))
            });
            Diagnostics::from(Diagnostic {
                file: source.map_or_else(String::new, |s| s.name.clone()),
                pos,
                path: e.path,
                message: e.message,
            })
        };
        self.sources.push(SourceFile {
            name: name.clone(),
            text: None,
            pwd_paths: Vec::new(),
            flag: None,
        });
        let text = yaml::check_bytes(bytes).map_err(|e| yaml_fail(&self.sources, e))?;
        if let Some(s) = self.sources.get_mut(file) {
            s.text = Some(text.to_owned());
        }
        yaml::scan(text).map_err(|e| yaml_fail(&self.sources, e))?;
        let first: RawPolicy = match serde_yaml::from_str(text) {
            Ok(p) => p,
            Err(e) => {
                // serde's first error as it is, then every other one it did not get to.
                let mut diags = yaml_fail(&self.sources, yaml::convert_error(&e));
                let more = self.other_type_errors(file, text, &diags);
                diags.0.extend(more);
                return Err(diags);
            }
        };
        match first.version {
            Some(1) => {}
            Some(v) => {
                return Err(self.fail(
                    file,
                    &KeyPath::root().key("version"),
                    format!("unsupported version {v}; this kekkai reads version 1"),
                ));
            }
            None => {
                return Err(self.fail(
                    file,
                    &KeyPath::root(),
                    "version: required; start the policy with `version: 1`",
                ));
            }
        }
        let mut value: Value = serde_yaml::from_str(text)
            .map_err(|e| yaml_fail(&self.sources, yaml::convert_error(&e)))?;
        if value.is_null() {
            value = Value::Mapping(Default::default());
        }
        let mut pwd_paths = Vec::new();
        vars::expand_tree(
            &mut value,
            &KeyPath::root(),
            self.caller,
            &["description"],
            &mut pwd_paths,
        )
        .map_err(|(path, msg)| self.fail(file, &path, msg))?;
        if let Some(s) = self.sources.get_mut(file) {
            s.pwd_paths = pwd_paths;
        }
        let expanded: RawPolicy = typed(&value).map_err(|e| {
            // Positions in this error are in the re-emitted text: keep only path and message.
            let e = yaml::convert_error(&e);
            let path = KeyPath::parse_shown(&e.path).unwrap_or_else(KeyPath::root);
            self.fail(file, &path, yaml::strip_marks(&e.message))
        })?;
        if let Some((path, msg)) = lossy_scalar(&first, &expanded) {
            return Err(self.fail(file, &path, msg));
        }
        if let Value::Mapping(map) = &mut value {
            for key in PER_FILE_KEYS {
                map.remove(key);
            }
        }
        let node = Node::from_value(value, file, KeyPath::root());

        let Some(extends) = expanded.extends.as_deref() else {
            if expanded.replace.is_some() || expanded.remove.is_some() {
                let key = if expanded.replace.is_some() {
                    "replace"
                } else {
                    "remove"
                };
                return Err(self.fail(
                    file,
                    &KeyPath::root().key(key),
                    "only meaningful in a policy that `extends` another",
                ));
            }
            return Ok(node);
        };
        let extends_path = KeyPath::root().key("extends");
        if self.stack.len() >= MAX_EXTENDS {
            return Err(self.fail(
                file,
                &extends_path,
                format!("`extends` chain is deeper than {MAX_EXTENDS}"),
            ));
        }
        let parent = self.resolve_extends(extends, &anchor, file, &extends_path)?;
        self.stack.push(own_key);
        if self.stack.iter().any(|(k, _)| *k == parent.key.0) {
            let mut cycle: Vec<&str> = self.stack.iter().map(|(_, n)| n.as_str()).collect();
            cycle.push(&parent.key.1);
            return Err(self.fail(
                file,
                &extends_path,
                format!("`extends` cycle: {}", cycle.join(" → ")),
            ));
        }
        let mut base = self.load(
            parent,
            Some(Includer {
                file,
                path: extends_path,
            }),
        )?;
        self.stack.pop();

        for (i, entry) in expanded.replace.iter().flatten().enumerate() {
            let here = KeyPath::root().key("replace").index(i);
            let Some(p) = KeyPath::parse_dotted(entry) else {
                return Err(self.fail(file, &here, format!("`{entry}` is not a dotted key path")));
            };
            if !base.remove_path(&p) {
                let mut msg = format!("`{entry}` is not set by the policy this extends");
                let keys = base.keys_at(p.parent().segs());
                let last = p.segs().last().map(|s| match s {
                    path::Seg::Key(k) => k.as_str(),
                    path::Seg::Index(_) => "",
                });
                if let Some(best) =
                    last.and_then(|l| suggest::closest(l, keys.iter().map(String::as_str)))
                {
                    msg.push_str(&format!(" (did you mean `{best}`?)"));
                }
                return Err(self.fail(file, &here, msg));
            }
        }
        for (key, values) in expanded.remove.iter().flatten() {
            let here = KeyPath::root().key("remove").key(key);
            let Some(p) = KeyPath::parse_dotted(key) else {
                return Err(self.fail(file, &here, format!("`{key}` is not a dotted key path")));
            };
            match remove_entries(&mut base, &p, values) {
                None => {
                    return Err(self.fail(
                        file,
                        &here,
                        format!("`{key}` is not a list set by the policy this extends"),
                    ));
                }
                Some(unmatched) => {
                    if let Some(i) = unmatched.first() {
                        return Err(self.fail(
                            file,
                            &here.index(*i),
                            format!("no inherited entry of `{key}` equals this one"),
                        ));
                    }
                }
            }
        }
        // A policy's name and description describe that file; they are not inherited.
        for key in ["name", "description"] {
            base.remove_path(&KeyPath::root().key(key));
        }
        merge(&mut base, node);
        Ok(base)
    }

    /// Finds and opens the policy an `extends` names, relative to the file that says it.
    fn resolve_extends(
        &self,
        name: &str,
        anchor: &Anchor,
        file: usize,
        at: &KeyPath,
    ) -> Result<Opened, Diagnostics> {
        let looks_like_path =
            name.contains('/') || name.ends_with(".yaml") || name.ends_with(".yml");
        if !looks_like_path {
            return match shipped::find(name) {
                Some(n) => Ok(Opened::shipped(n)),
                None => {
                    let mut msg = format!("no shipped policy is called `{name}`");
                    if let Some(best) = suggest::closest(name, shipped::names()) {
                        msg.push_str(&format!(" (did you mean `{best}`?)"));
                    }
                    msg.push_str(&format!(
                        "; shipped: {}; a file needs a path such as ./{name}.yaml",
                        shipped::names().collect::<Vec<_>>().join(", ")
                    ));
                    Err(self.fail(file, at, msg))
                }
            };
        }
        match anchor {
            Anchor::Shipped => Err(self.fail(
                file,
                at,
                "a shipped policy can only extend shipped policies",
            )),
            Anchor::Dir { fd, shown } => {
                // `Path::components` drops the `.` segments: `dir/./x.yaml` reads as `dir/x.yaml`.
                let target: PathBuf = shown.join(name).components().collect();
                let opened = match fd {
                    Some(fd) => Opened::named(Some(fd), Path::new(name), target.clone()),
                    None => Opened::named(None, &target, target.clone()),
                };
                opened.map_err(|msg| self.fail(file, at, format!("{}: {msg}", target.display())))
            }
            Anchor::Beneath {
                root,
                root_shown,
                dir,
            } => {
                let (root, root_shown, rel) = if Path::new(name).is_absolute() {
                    let slash = nix::fcntl::open(
                        "/",
                        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                        nix::sys::stat::Mode::empty(),
                    )
                    .map_err(|e| self.fail(file, at, format!("/: {}", hostfs::describe(e))))?;
                    (Arc::new(slash), PathBuf::from("/"), below(Path::new(name)))
                } else {
                    (Arc::clone(root), root_shown.clone(), below(&dir.join(name)))
                };
                let Some(rel) = rel else {
                    return Err(self.fail(
                        file,
                        at,
                        format!(
                            "`{name}` leads out of {}, where this policy was found by name; such a policy may extend shipped policies, files below that directory and absolute paths",
                            root_shown.display()
                        ),
                    ));
                };
                let target = root_shown.join(&rel);
                let me = nix::unistd::geteuid().as_raw();
                let why = match open_trusted(&root, &root_shown, &rel, me) {
                    Ok(Verdict::Found(f)) => return Ok(Opened::found(&f)),
                    Ok(Verdict::Missing) => hostfs::describe(Errno::ENOENT),
                    Ok(Verdict::Refused(why)) => why,
                    Err(msg) => msg,
                };
                Err(self.fail(file, at, format!("{}: {why}", target.display())))
            }
        }
    }
}

/// How [`read_bounded`]'s message for an oversized file starts.
const TOO_LARGE: &str = "file is larger than";

/// Reads an opened policy file: a regular file, at most [`yaml::MAX_FILE_BYTES`] bytes, from
/// its start (`pread`: the descriptor's offset is not used, so a source can be read twice).
fn read_bounded(file: &std::fs::File) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::FileExt;
    let st = fstat(file).map_err(hostfs::describe)?;
    if !hostfs::is_regular(&st) {
        return Err("not a regular file".into());
    }
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    while bytes.len() <= yaml::MAX_FILE_BYTES {
        let offset = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        match file.read_at(&mut chunk, offset) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(describe_io(&e)),
        }
    }
    if bytes.len() > yaml::MAX_FILE_BYTES {
        return Err(format!(
            "{TOO_LARGE} {} bytes, the most a policy may be",
            yaml::MAX_FILE_BYTES
        ));
    }
    Ok(bytes)
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

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use std::os::unix::fs::PermissionsExt;

    /// A fresh search directory `<tmp>/…/policies` holding `p.yaml`, removed on drop.
    struct Search(PathBuf);

    impl Search {
        fn new(tag: &str) -> Search {
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

        fn dir(&self) -> PathBuf {
            self.0.join("policies")
        }

        fn chmod(&self, rel: &str, mode: u32) {
            std::fs::set_permissions(self.0.join(rel), std::fs::Permissions::from_mode(mode))
                .unwrap();
        }

        /// `-p p` in this directory: the policy found, or why not.
        fn lookup(&self, name: &str) -> Result<Found, String> {
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

    fn needs_root() -> bool {
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

    /// A policy found by name read twice gives the same text (pread from its start), and the
    /// file is never read by path again: renaming another file in after the lookup changes
    /// nothing.
    #[test]
    fn a_found_policy_is_read_from_the_descriptor_of_the_lookup() {
        let s = Search::new("descriptor");
        let found = s.lookup("p.yaml").unwrap();
        std::fs::write(s.0.join("elsewhere/q.yaml"), "version: 1\nname: swapped\n").unwrap();
        std::fs::rename(s.0.join("elsewhere/q.yaml"), s.dir().join("p.yaml")).unwrap();
        let source = PolicySource::Found(found);
        let caller = Caller::for_tests();
        for _ in 0..2 {
            let loaded = load(&source, &caller).unwrap();
            assert_eq!(loaded.policy.name.as_deref(), Some("p"));
        }
    }

    /// `extends` in a policy found by name: (files below the search directory, the `extends`
    /// value) → loaded, or the error's message.
    #[rstest]
    #[case::sibling(&[("base.yaml", "version: 1\nhostname: b\n")], "./base.yaml", None)]
    #[case::subdirectory(&[("lib/base.yaml", "version: 1\nhostname: b\n")], "lib/base.yaml", None)]
    #[case::up_and_down(
        &[("lib/base.yaml", "version: 1\nhostname: b\n")],
        "lib/../lib/base.yaml",
        None
    )]
    #[case::out_of_the_directory(&[], "../elsewhere/base.yaml", Some("leads out of"))]
    #[case::missing(&[], "./nope.yaml", Some("nope.yaml: no such file or directory (ENOENT)"))]
    #[case::symlinked_file(&[("@base.yaml", "../elsewhere/base.yaml")], "./base.yaml", Some("the file is a symbolic link"))]
    #[case::symlinked_directory(&[("@lib", "../elsewhere")], "lib/base.yaml", Some("a directory on the way is a symbolic link"))]
    #[case::group_writable(&[("%base.yaml", "version: 1\n")], "./base.yaml", Some("the file is writable by its group"))]
    #[case::absolute_trusted(&[], "/TOP/elsewhere/base.yaml", None)]
    #[case::absolute_through_a_link(&[], "/TOP/link/base.yaml", Some("a directory on the way is a symbolic link"))]
    fn extends_from_a_policy_found_by_name(
        #[case] files: &[(&str, &str)],
        #[case] extends: &str,
        #[case] err: Option<&str>,
    ) {
        let s = Search::new("extends");
        std::fs::write(s.0.join("elsewhere/base.yaml"), "version: 1\nhostname: b\n").unwrap();
        std::os::unix::fs::symlink("elsewhere", s.0.join("link")).unwrap();
        for (name, text) in files {
            if let Some(link) = name.strip_prefix('@') {
                std::os::unix::fs::symlink(text, s.dir().join(link)).unwrap();
                continue;
            }
            let (name, mode) = match name.strip_prefix('%') {
                Some(n) => (n, 0o664),
                None => (*name, 0o644),
            };
            let path = s.dir().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        // An absolute `extends` is opened from `/` without following a link: start from the
        // canonical path of the temp dir.
        let top = std::fs::canonicalize(&s.0).unwrap();
        let extends = extends.replace("/TOP", &top.display().to_string());
        std::fs::write(
            s.dir().join("p.yaml"),
            format!("version: 1\nextends: {extends}\n"),
        )
        .unwrap();
        let found = s.lookup("p.yaml").unwrap();
        let got = load(&PolicySource::Found(found), &Caller::for_tests());
        match err {
            None => {
                let loaded = got.unwrap();
                assert_eq!(loaded.policy.hostname.as_deref(), Some("b"));
            }
            Some(want) => {
                let e = got.unwrap_err().to_string();
                assert!(e.contains(want), "{e}");
                assert!(e.contains("p.yaml:2:10: extends:"), "{e}");
            }
        }
    }
}
