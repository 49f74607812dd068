//! Policies: YAML file(s) → one merged [`LoadedPolicy`] that remembers, for every value, the
//! file, line and column it was written at.
//!
//! `discovery` finds what `-p` names (and decides whether a file found by name may be
//! trusted), `load` reads it and everything it extends into one document (`merge.rs`, with
//! [`vars`] expanded), `diag` places each error at its file, line, column and key path
//! ([`path`]); [`overrides`] are the command line's layers on top. [`model`] is the language,
//! read with unknown keys refused, [`each`] finds every type error of a document in one pass,
//! [`yaml`] reads the text within bounds and locates key paths in it, [`suggest`] says "did you
//! mean", [`shipped`] holds the policies built in. Nothing here touches the system beyond
//! reading files.

mod diag;
mod discovery;
pub mod each;
mod load;
pub mod merge;
pub mod model;
pub mod overrides;
pub mod path;
pub mod shipped;
pub mod suggest;
pub mod vars;
pub mod yaml;

use serde_yaml::Value;

use crate::caller::Caller;
use diag::diag_in;
pub use diag::{COMMAND_LINE, Diagnostic, Diagnostics, SourceFile, describe_io};
pub use discovery::{Found, PolicySource, available, search_dirs};
pub use merge::Origin;
use merge::{Document, Node, merge};
pub use model::RawPolicy;
pub use path::KeyPath;

/// Loads a policy and everything it extends.
pub fn load(source: &PolicySource, caller: &Caller) -> Result<LoadedPolicy, Diagnostics> {
    LoadedPolicy::read(load::from_source(source, caller)?)
}

/// Loads a policy from text, as if read from a file called `name` (tests, fuzzing).
pub fn load_str(name: &str, text: &str, caller: &Caller) -> Result<LoadedPolicy, Diagnostics> {
    LoadedPolicy::read(load::from_text(name, text, caller)?)
}

/// A merged policy and the map back to its sources.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    /// The merged policy.
    pub policy: RawPolicy,
    /// Every file read, the policy itself first, then what it extends.
    pub sources: Vec<SourceFile>,
    /// The merged document, node by node with origins (one file's as it was read).
    tree: Document,
}

impl LoadedPolicy {
    /// A diagnostic about the merged policy's `path`, placed in the file that wrote it.
    pub fn diag(&self, path: &KeyPath, message: impl Into<String>) -> Diagnostic {
        let origin = self.origin(path);
        diag_in(&self.sources, origin.file, &origin.path, message)
    }

    /// Where the merged policy's `path` was written: the file and path of the deepest node on
    /// it, followed by the part of `path` below that node (e.g. a key that is absent).
    fn origin(&self, path: &KeyPath) -> Origin {
        let (found, mut origin) = self.tree.origin(path.segs());
        if let Some(rest) = path.segs().get(found..).filter(|r| !r.is_empty()) {
            origin.path = origin.path.join(rest);
        }
        origin
    }

    /// Was the merged policy's value at `path` written with `${PWD}` (so that where kekkai is
    /// started decides it)?
    pub fn uses_pwd(&self, path: &KeyPath) -> bool {
        let (found, o) = self.tree.origin(path.segs());
        found == path.segs().len()
            && self
                .sources
                .get(o.file)
                .is_some_and(|s| s.pwd_paths.contains(&o.path))
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
        let mut tree = self.tree.clone().into_node();
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
            positions: Default::default(),
        });
        let mut tree = self.tree.clone().into_node();
        merge(&mut tree, Node::from_value(overlay, file));
        *self = LoadedPolicy::finish(tree, std::mem::take(&mut self.sources))?;
        Ok(())
    }

    /// The loaded policy, typed: one file's was typed when it was read.
    fn read(mut loaded: load::Loaded) -> Result<LoadedPolicy, Diagnostics> {
        let policy = loaded.policy();
        let (Some(policy), Document::One { .. }) = (policy, &loaded.tree) else {
            return LoadedPolicy::finish(loaded.tree.into_node(), loaded.sources);
        };
        // Debug builds (every test) check that the merged document reads the same, and that
        // one file's document places every node as its nodes would.
        #[cfg(debug_assertions)]
        {
            let node = loaded.tree.clone().into_node();
            let full = LoadedPolicy::finish(node.clone(), loaded.sources.clone());
            debug_assert_eq!(full.ok().map(|f| f.policy).as_ref(), Some(&policy));
            let mut origins = std::collections::HashMap::new();
            node.record(&KeyPath::root(), &mut origins);
            for path in origins.keys() {
                let probes = [path.clone(), path.key("absent"), path.index(7)];
                for p in probes {
                    let (a, b) = (loaded.tree.origin(p.segs()), node.origin(p.segs()));
                    debug_assert_eq!(a, b, "{p}");
                }
            }
        }
        Ok(LoadedPolicy {
            policy,
            sources: loaded.sources,
            tree: loaded.tree,
        })
    }

    fn finish(tree: Node, sources: Vec<SourceFile>) -> Result<LoadedPolicy, Diagnostics> {
        let mut policy: RawPolicy = load::typed(&tree.to_value()).map_err(|e| {
            let last = sources.len().saturating_sub(1);
            Diagnostics::from(diag_in(&sources, last, &KeyPath::root(), e.to_string()))
        })?;
        // Each file's own `version` was checked when it was read.
        policy.version = Some(1);
        Ok(LoadedPolicy {
            policy,
            sources,
            tree: Document::Merged(tree),
        })
    }
}
