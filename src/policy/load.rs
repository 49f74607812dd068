//! The loader: one policy file and everything it `extends`, merged into one document whose
//! every node remembers the file and key path it came from.
//!
//! Per file: bounded read → UTF-8 → structural scan (duplicate keys, depth, alias budget) →
//! typed parse (unknown keys are errors, each one reported) → `version` → variables →
//! `extends` (recursively, relative to the file's directory as opened; cycles and chains
//! deeper than 16 are errors) → `replace` / `remove` against what it extends → merge. Nothing
//! here touches the system beyond opening and reading files.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::fstat;
use serde::Deserialize;
use serde_yaml::Value;

use super::diag::{Diagnostic, Diagnostics, SourceFile, diag_in};
use super::discovery::{
    Found, PolicySource, ReadError, Verdict, looks_like_path, open_trusted, read_bounded,
};
use super::merge::{Document, Node, merge, remove_entries};
use super::model::RawPolicy;
use super::path::{self, KeyPath};
use super::yaml::{self, Pos};
use super::{each, shipped, suggest, vars};
use crate::caller::Caller;
use crate::hostfs;

/// Reads a parsed document into the typed model the same way the text was read. Directly from
/// the `Value` when that works (the common case, and a fifth of the cost); else through YAML
/// text, so that `name: 5` or `DEBUG: 1` stay acceptable as strings, as they were in the file
/// (a `Value` holding the number 5 is stricter than the text `5`). Where both succeed they
/// agree: the text keeps every scalar's type.
pub(super) fn typed(value: &Value) -> Result<RawPolicy, serde_yaml::Error> {
    // Read in place: the document is not copied for a read that may fail.
    if let Ok(p) = RawPolicy::deserialize(value) {
        return Ok(p);
    }
    serde_yaml::from_str(&serde_yaml::to_string(value)?)
}

/// Is there a null anywhere in `v` (a key or a value)?
pub(super) fn has_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Sequence(items) => items.iter().any(has_null),
        Value::Mapping(m) => m.iter().any(|(k, v)| has_null(k) || has_null(v)),
        Value::Tagged(t) => has_null(&t.value),
        Value::Bool(_) | Value::Number(_) | Value::String(_) => false,
    }
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

/// `network: MODE` is `network: { mode: MODE }`: in the map form, what a file or the command
/// line adds merges key by key with what it extends (`--net user` keeps an inherited
/// allowlist, a published port keeps the mode), where a scalar would replace the whole map.
pub(super) fn network_as_map(map: &mut serde_yaml::Mapping) {
    if let Some(v) = map.get_mut("network") {
        if let Value::String(mode) = v {
            let mut m = serde_yaml::Mapping::new();
            m.insert(Value::String("mode".into()), Value::String(mode.clone()));
            *v = Value::Mapping(m);
        }
    }
}

/// Deepest chain of `extends`.
const MAX_EXTENDS: usize = 16;

/// Keys that belong to one file and are not merged.
const PER_FILE_KEYS: [&str; 4] = ["version", "extends", "replace", "remove"];

/// Reads a policy and everything it extends: the merged document and the files read, the
/// policy first.
pub(super) fn from_source(source: &PolicySource, caller: &Caller) -> Result<Loaded, Diagnostics> {
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
    Ok(Loaded {
        tree,
        sources: loader.sources,
        whole: loader.whole,
    })
}

/// [`from_source`] for a text, as if read from a file called `name`.
pub(super) fn from_text(name: &str, text: &str, caller: &Caller) -> Result<Loaded, Diagnostics> {
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
    Ok(Loaded {
        tree,
        sources: loader.sources,
        whole: loader.whole,
    })
}

/// What the loader read: the merged document, the files read (the policy first), and, for a
/// policy that extends nothing, the policy as its file's typed read gave it (see
/// [`Loaded::policy`]).
pub(super) struct Loaded {
    pub tree: Document,
    pub sources: Vec<SourceFile>,
    whole: Option<RawPolicy>,
}

impl Loaded {
    /// The merged policy as the typed read of the merged document gives it, when a single file
    /// was read: that file's own typed read, less the keys that belong to one file (`version`
    /// is 1, as checked; `extends`, `replace` and `remove` it has none of). The merged
    /// document is that file's document less those keys, with `network: MODE` as `{ mode:
    /// MODE }`, which reads the same: reading it again would give the same policy for a
    /// third time. `None` when files were merged.
    pub fn policy(&mut self) -> Option<RawPolicy> {
        let mut p = self.whole.take()?;
        p.version = Some(1);
        p.extends = None;
        p.replace = None;
        p.remove = None;
        Some(p)
    }
}

/// What a file's relative `extends` resolve against.
#[derive(Clone)]
enum Anchor {
    /// A shipped policy extends only shipped policies.
    Shipped,
    /// A file named by path: its directory, as opened when the file was (`None` for text given
    /// with `load_str`: the directory by path), and how that directory is shown.
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
    /// The typed read of the policy, when it extends nothing.
    whole: Option<RawPolicy>,
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
            whole: None,
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
            .filter(|e| !known.iter().any(|k| related(k, &e.path)))
            .map(|e| {
                let (path, unknown) = (e.path, e.kind == yaml::Kind::UnknownKey);
                let mut d = diag_in(&self.sources, file, &path, e.message);
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

    fn load(&mut self, opened: Opened, from: Option<Includer>) -> Result<Document, Diagnostics> {
        let name = opened.name.clone();
        let bytes = match &opened.file {
            None => shipped::text(opened.shipped)
                .unwrap_or_default()
                .as_bytes()
                .to_vec(),
            Some(f) => match read_bounded(f) {
                Ok(b) => b,
                Err(e) => {
                    return Err(match from {
                        Some(inc) => self.fail(inc.file, &inc.path, format!("{name}: {e}")),
                        None => Diagnostics::from(Diagnostic {
                            file: name,
                            // A file too large to read has a start to point at; a missing one
                            // does not.
                            pos: (e == ReadError::TooLarge).then_some(Pos { line: 1, column: 1 }),
                            path: String::new(),
                            message: e.to_string(),
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
    ) -> Result<Document, Diagnostics> {
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
            positions: Default::default(),
        });
        // A shipped policy's text passes the checks (`shipped`'s test): not again, character by
        // character, at every launch.
        let text = match shipped::text_of(bytes) {
            Some(text) => text,
            None => yaml::check_bytes(bytes).map_err(|e| yaml_fail(&self.sources, e))?,
        };
        if let Some(s) = self.sources.get_mut(file) {
            s.text = Some(text.to_owned());
        }
        let scanned = yaml::scan(text).map_err(|e| yaml_fail(&self.sources, e))?;
        // The scan placed the nodes on its way: no walk of its own when a place is asked for.
        if let (Some(s), Some(positions)) = (self.sources.get_mut(file), scanned.positions) {
            let _ = s.positions.set(Some(positions));
        }
        // The policy as the text reads it. Read from the scan's document where that works: a
        // `Value` is stricter than the text (the number 5 is not the string `5`), so where it
        // reads, the text reads the same; where it does not, the text is read, for its own
        // result or errors. Not with a null anywhere: a `Value`'s null reads as an empty
        // mapping or list, where the text's `~` is an error. A shipped policy's document was
        // read so when kekkai was built (version 1, no null): not again.
        let first: Option<RawPolicy> = if scanned.shipped {
            None
        } else {
            let from_value = scanned
                .value
                .as_ref()
                .filter(|v| !has_null(v))
                .and_then(|v| RawPolicy::deserialize(v).ok());
            let text_read = match from_value {
                Some(p) => Ok(p),
                None => serde_yaml::from_str(text),
            };
            match text_read {
                Ok(p) => Some(p),
                Err(e) => {
                    // serde's first error as it is, then every other one it did not get to.
                    let mut diags = yaml_fail(&self.sources, yaml::convert_error(&e));
                    let more = self.other_type_errors(file, text, &diags);
                    diags.0.extend(more);
                    return Err(diags);
                }
            }
        };
        match first.as_ref().map_or(Some(1), |f| f.version) {
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
        // The scan's walk built the document already, unless it can't vouch for it.
        let mut value: Value = match scanned.value {
            Some(v) => v,
            None => serde_yaml::from_str(text)
                .map_err(|e| yaml_fail(&self.sources, yaml::convert_error(&e)))?,
        };
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
        // (A document read as it is, as a shipped one was, has nothing respelled.)
        if let Some((path, msg)) = first.and_then(|f| lossy_scalar(&f, &expanded)) {
            return Err(self.fail(file, &path, msg));
        }
        if let Value::Mapping(map) = &mut value {
            for key in PER_FILE_KEYS {
                map.remove(key);
            }
            network_as_map(map);
        }
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
            if self.stack.is_empty() {
                // The policy itself: it is the whole policy.
                self.whole = Some(expanded);
            }
            return Ok(Document::One { value, file });
        };
        let node = Node::from_value(value, file);
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
        let mut base = self
            .load(
                parent,
                Some(Includer {
                    file,
                    path: extends_path,
                }),
            )?
            .into_node();
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
        Ok(Document::Merged(base))
    }

    /// Finds and opens the policy an `extends` names, relative to the file that says it.
    fn resolve_extends(
        &self,
        name: &str,
        anchor: &Anchor,
        file: usize,
        at: &KeyPath,
    ) -> Result<Opened, Diagnostics> {
        if !looks_like_path(name) {
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

#[cfg(test)]
mod tests {
    use super::super::discovery::testing::Search;
    use super::super::{PolicySource, load};
    use crate::caller::Caller;
    use rstest::rstest;
    use std::os::unix::fs::PermissionsExt;

    /// Where the scan's document reads as a policy (no null in it), the text reads the same;
    /// elsewhere the text is read itself.
    #[rstest]
    #[case(super::super::shipped::text("default").unwrap())]
    #[case(super::super::shipped::text("service").unwrap())]
    #[case(super::super::shipped::text("build").unwrap())]
    #[case("version: 1\nname: 5\n")]
    #[case("version: 1\nname: 1.10\nhostname: '7'\n")]
    #[case("version: 1\nenv: {set: {1: x, B: 2}}\n")]
    #[case("version: 1\nlimits: {pids: 0x10, memory: 1G}\nrlimits: {nofile: 1_024}\n")]
    #[case("version: 1\nmounts: [{tmpfs: /t, size: 1M}, {hide: /x}]\n")]
    #[case("version: 1\nnetwork: user\nnamespaces: [user, net]\n")]
    fn the_scans_document_reads_as_the_text(#[case] text: &str) {
        use super::super::yaml;
        use serde::Deserialize;
        let value = yaml::scan(text).unwrap().value.unwrap();
        let from_text: Result<super::RawPolicy, _> = serde_yaml::from_str(text);
        if let (false, Ok(p)) = (
            super::has_null(&value),
            super::RawPolicy::deserialize(&value),
        ) {
            assert_eq!(
                format!("{p:?}"),
                format!("{:?}", from_text.unwrap()),
                "{text}"
            );
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
