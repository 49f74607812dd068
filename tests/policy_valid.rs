//! Valid policies → the plan fragments they compile to.
//!
//! Sections: namespaces and clone flags, the root filesystem and mounts, identity and id maps
//! (root and rootless callers), environment, limits, rlimits, timeouts, capabilities, Landlock
//! and seccomp; then variables, and `extends` with `replace` / `remove` across files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kekkai::caller::Caller;
use kekkai::plan::landlock::access::{
    DEVICE, EXECUTE, READ, READ_DIR, READ_FILE, WRITE, WRITE_FILE,
};
use kekkai::plan::seccomp::{Action, Cond, Match, Op};
use kekkai::plan::{
    self, Compat, EntryKind, Keyed, LimitsPlan, MountKind, Namespace, Network, Plan, Preset, Scope,
};
use kekkai::policy::{self, KeyPath, LoadedPolicy, PolicySource};
use rstest::rstest;

use Namespace::{Cgroup, Ipc, Mount, Net, Pid, Time, User, Uts};
use support::Scratch;

/// Loads `body` after `version: 1` and compiles it for `caller`.
fn compile_as(body: &str, caller: &Caller) -> Plan {
    let text = format!("version: 1\n{body}\n");
    let loaded = policy::load_str("policy.yaml", &text, caller)
        .unwrap_or_else(|e| panic!("load failed:\n{e}\n---\n{text}"));
    plan::compile(&loaded, caller).unwrap_or_else(|e| panic!("compile failed:\n{e}\n---\n{text}"))
}

fn compile(body: &str) -> Plan {
    compile_as(body, &support::rootless())
}

fn load_file(path: &Path, caller: &Caller) -> LoadedPolicy {
    policy::load(&PolicySource::File(path.to_path_buf()), caller)
        .unwrap_or_else(|e| panic!("load of {} failed:\n{e}", path.display()))
}

fn compile_file(path: &Path, caller: &Caller) -> Plan {
    let loaded = load_file(path, caller);
    plan::compile(&loaded, caller)
        .unwrap_or_else(|e| panic!("compile of {} failed:\n{e}", path.display()))
}

/// A bind mount's plan: the source canonical, with its device and inode.
fn bind(source: &str, dir: bool, writable: bool, exec: bool) -> MountKind {
    let source = std::fs::canonicalize(source).unwrap();
    let meta = std::fs::metadata(&source).unwrap();
    MountKind::Bind {
        dev_ino: (meta.dev(), meta.ino()),
        dir,
        source,
        writable,
        exec,
    }
}

/// A tmpfs mount's plan.
fn tmpfs(size: u64, mode: u32, exec: bool) -> MountKind {
    MountKind::Tmpfs { size, mode, exec }
}

/// A planned value with the key path the plan carries for it (`limits.memory`).
fn keyed<T>(value: T, key: &str) -> Keyed<T> {
    Keyed::new(value, KeyPath::parse_shown(key).unwrap())
}

/// A cgroup limit as the plan carries it: `limits.KEY`.
fn limit<T>(key: &str, value: T) -> Option<Keyed<T>> {
    Some(keyed(value, &format!("limits.{key}")))
}

/// A planned value without its key.
fn value<T: Clone>(v: &Option<Keyed<T>>) -> Option<T> {
    v.as_ref().map(|v| v.value.clone())
}

/// The program's PATH when the policy sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[path = "policy_valid/namespaces.rs"]
mod namespaces;

#[path = "policy_valid/identity.rs"]
mod identity;

#[path = "policy_valid/lockdown.rs"]
mod lockdown;

#[path = "policy_valid/extends.rs"]
mod extends;

#[path = "policy_valid/shipped.rs"]
mod shipped;
