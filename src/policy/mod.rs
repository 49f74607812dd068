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
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use crate::caller::Caller;
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
    /// A file.
    File(PathBuf),
}

impl PolicySource {
    /// Interprets `-p NAME`: anything that looks like a path (or names an existing file) is a
    /// file; otherwise a name, looked up in [`search_dirs`] and then among the shipped policies.
    ///
    /// A policy found by name in a directory must be trustworthy: the file and its directory
    /// owned by the caller or root and writable by nobody else. Otherwise it is passed over with
    /// a warning (running `-p untrusted` inside someone else's checkout must not pick up the
    /// checkout's `.kekkai/untrusted.yaml`).
    pub fn from_arg(arg: &str) -> PolicySource {
        let looks_like_path = arg.contains('/') || arg.ends_with(".yaml") || arg.ends_with(".yml");
        if looks_like_path {
            return PolicySource::File(PathBuf::from(arg));
        }
        let me = nix::unistd::geteuid().as_raw();
        for dir in search_dirs() {
            for ext in ["yaml", "yml"] {
                let p = dir.join(format!("{arg}.{ext}"));
                if !p.is_file() {
                    continue;
                }
                match trusted(&p, me) {
                    Ok(()) => return PolicySource::File(p),
                    Err(why) => {
                        crate::log::warn(&format!("-p {arg}: passing over {}: {why}", p.display()))
                    }
                }
            }
        }
        match shipped::find(arg) {
            Some(name) => PolicySource::Shipped(name),
            None => PolicySource::File(PathBuf::from(arg)),
        }
    }

    /// The name errors use for this source.
    pub fn display_name(&self) -> String {
        match self {
            PolicySource::Shipped(name) => format!("<shipped>/{name}.yaml"),
            PolicySource::File(p) => p.display().to_string(),
        }
    }
}

/// Whether a policy file found by name may be used by user `me`: it and its directory are owned
/// by `me` or root and not writable by group or others.
pub fn trusted(file: &Path, me: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    for (what, path) in [("the file", file), ("its directory", dir)] {
        let meta = std::fs::metadata(path).map_err(|e| describe_io(&e))?;
        if meta.uid() != me && meta.uid() != 0 {
            return Err(format!(
                "{what} is owned by uid {}, not by you or root",
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "{what} is writable by {} (mode {:o})",
                if meta.mode() & 0o002 != 0 {
                    "everyone"
                } else {
                    "its group"
                },
                meta.mode() & 0o7777
            ));
        }
    }
    Ok(())
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

/// Every policy `-p NAME` can find: (name, where, description), first match first.
pub fn available() -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    let describe = |text: &str| {
        serde_yaml::from_str::<RawPolicy>(text)
            .ok()
            .and_then(|p| p.description)
            .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    for dir in search_dirs() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        found.sort();
        for p in found {
            let (Some(stem), Some(ext)) = (p.file_stem(), p.extension()) else {
                continue;
            };
            if ext != "yaml" && ext != "yml" {
                continue;
            }
            let name = stem.to_string_lossy().into_owned();
            if out.iter().any(|(n, _, _)| *n == name) {
                continue;
            }
            if let Err(why) = trusted(&p, nix::unistd::geteuid().as_raw()) {
                // Listed so the user sees why `-p NAME` passes it over.
                out.push((
                    name,
                    format!("{} (passed over: {why})", p.display()),
                    String::new(),
                ));
                continue;
            }
            let desc = read_bounded(&p)
                .map(|b| describe(&String::from_utf8_lossy(&b)))
                .unwrap_or_default();
            out.push((name, p.display().to_string(), desc));
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
    let tree = loader.load(source, None)?;
    LoadedPolicy::finish(tree, loader.sources)
}

/// Loads a policy from text, as if read from a file called `name` (tests, fuzzing).
pub fn load_str(name: &str, text: &str, caller: &Caller) -> Result<LoadedPolicy, Diagnostics> {
    let mut loader = Loader::new(caller);
    let tree = loader.load_text(
        PolicySource::File(name.into()),
        name.into(),
        text.as_bytes(),
    )?;
    LoadedPolicy::finish(tree, loader.sources)
}

struct Loader<'c> {
    caller: &'c Caller,
    sources: Vec<SourceFile>,
    /// Identities of the files being loaded, outermost first (cycle detection).
    stack: Vec<String>,
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

    fn load(&mut self, source: &PolicySource, from: Option<Includer>) -> Result<Node, Diagnostics> {
        let name = source.display_name();
        let bytes = match source {
            PolicySource::Shipped(n) => shipped::text(n).unwrap_or_default().as_bytes().to_vec(),
            PolicySource::File(p) => match read_bounded(p) {
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
        self.load_text(source.clone(), name, &bytes)
    }

    fn load_text(
        &mut self,
        source: PolicySource,
        name: String,
        bytes: &[u8],
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
        vars::expand_tree(&mut value, &KeyPath::root(), self.caller, &["description"])
            .map_err(|(path, msg)| self.fail(file, &path, msg))?;
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
        let parent = self.resolve_extends(extends, &source, file, &extends_path)?;
        let own_id = identity(&source);
        if self.stack.len() >= MAX_EXTENDS {
            return Err(self.fail(
                file,
                &extends_path,
                format!("`extends` chain is deeper than {MAX_EXTENDS}"),
            ));
        }
        self.stack.push(own_id);
        let parent_id = identity(&parent);
        if self.stack.contains(&parent_id) {
            let mut cycle = self.stack.clone();
            cycle.push(parent_id);
            return Err(self.fail(
                file,
                &extends_path,
                format!("`extends` cycle: {}", cycle.join(" → ")),
            ));
        }
        let mut base = self.load(
            &parent,
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

    fn resolve_extends(
        &self,
        name: &str,
        from: &PolicySource,
        file: usize,
        at: &KeyPath,
    ) -> Result<PolicySource, Diagnostics> {
        let looks_like_path =
            name.contains('/') || name.ends_with(".yaml") || name.ends_with(".yml");
        if !looks_like_path {
            return match shipped::find(name) {
                Some(n) => Ok(PolicySource::Shipped(n)),
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
        match from {
            PolicySource::Shipped(_) => Err(self.fail(
                file,
                at,
                "a shipped policy can only extend shipped policies",
            )),
            PolicySource::File(p) => {
                let dir = p.parent().unwrap_or_else(|| Path::new("."));
                // `Path::components` drops the `.` segments: `dir/./x.yaml` reads as `dir/x.yaml`.
                Ok(PolicySource::File(dir.join(name).components().collect()))
            }
        }
    }
}

fn identity(source: &PolicySource) -> String {
    match source {
        PolicySource::Shipped(n) => format!("<shipped>/{n}.yaml"),
        PolicySource::File(p) => std::fs::canonicalize(p)
            .unwrap_or_else(|_| p.clone())
            .display()
            .to_string(),
    }
}

/// How [`read_bounded`]'s message for an oversized file starts.
const TOO_LARGE: &str = "file is larger than";

/// Reads a policy file: a regular file, at most [`yaml::MAX_FILE_BYTES`] bytes.
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| describe_io(&e))?;
    let meta = file.metadata().map_err(|e| describe_io(&e))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let mut bytes = Vec::new();
    let limit = u64::try_from(yaml::MAX_FILE_BYTES).unwrap_or(u64::MAX) + 1;
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| describe_io(&e))?;
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

    /// (directory mode, file mode, owner of the file: None = the test's own user) → trusted?
    #[rstest]
    #[case::own_private(0o755, 0o644, None, None)]
    #[case::group_writable_file(0o755, 0o664, None, Some("the file is writable by its group"))]
    #[case::world_writable_dir(0o777, 0o644, None, Some("its directory is writable by everyone"))]
    #[case::sticky_world_writable_dir(
        0o1777,
        0o644,
        None,
        Some("its directory is writable by everyone")
    )]
    #[case::someone_elses_file(0o755, 0o644, Some(12345), Some("owned by uid 12345"))]
    fn policies_found_by_name_must_be_trustworthy(
        #[case] dir_mode: u32,
        #[case] file_mode: u32,
        #[case] owner: Option<u32>,
        #[case] err: Option<&str>,
    ) {
        let me = nix::unistd::geteuid().as_raw();
        if owner.is_some() && me != 0 {
            // chown needs root; CI runs as root.
            assert!(
                std::env::var_os("CI").is_none_or(|v| v != "true"),
                "needs root in CI"
            );
            return;
        }
        let dir = std::env::temp_dir().join(format!(
            "kekkai-trust-{}-{dir_mode:o}-{file_mode:o}-{}",
            std::process::id(),
            owner.unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("p.yaml");
        std::fs::write(&file, "version: 1\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(file_mode)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(dir_mode)).unwrap();
        if let Some(uid) = owner {
            std::os::unix::fs::chown(&file, Some(uid), None).unwrap();
        }
        let got = trusted(&file, me);
        std::fs::remove_dir_all(&dir).unwrap();
        match err {
            None => assert_eq!(got, Ok(())),
            Some(want) => {
                let e = got.unwrap_err();
                assert!(e.contains(want), "{e}");
            }
        }
    }
}
