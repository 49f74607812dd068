//! `kekkai learn`: from what one or more runs of a program were seen doing, the smallest policy
//! that lets it do that and nothing else, as YAML that `extends` the policy it was learned
//! under (BASE), each rule with a comment naming the first call that needed it.
//!
//! The observations come from `launch::observe` (a seccomp listener; see there and
//! `plan::seccomp::observe` for why seccomp user notification and not ptrace or fanotify). The
//! learning run enforced all of BASE, so nothing here can be more than BASE allows: a syscall
//! BASE denies never reached the observer, and a path or port BASE's Landlock refuses is left
//! out (and listed in [`Learned::refused`]). This module is pure: observations and BASE's plan
//! in, rules and text out.
//!
//! The rules (docs/learn.md says the same to users):
//!
//! - **seccomp**: `preset: empty` (only what is listed) with one `allow` entry per syscall
//!   seen. socket, ioctl, clone and personality are allowed only with the argument values
//!   seen (family and netlink protocol, request, flags, persona), as long as there are at most
//!   [`crate::launch::observe::MAX_VALUES`]; past that, with the default preset's own conditions. `exit`,
//!   `exit_group`, `rt_sigreturn` and `restart_syscall` are always allowed: the kernel and libc
//!   make them at moments a run may not show; so are `setsid`, `dup2` and `ioctl(TIOCSCTTY)`,
//!   which kekkai's own last step makes when the program's stdio is a terminal.
//! - **Landlock trees**, collapsed to directories: a file read, written or executed gives its
//!   directory, a directory listed gives itself, an entry created or removed gives the
//!   directory it is in. Below a system tree (`/usr`, `/bin`, `/sbin`, `/lib*`, `/etc`, `/opt`)
//!   reading and executing give the whole tree. Below a tmpfs mount (empty when Landlock is
//!   set up) everything gives the mount point. A directory the run made itself gives its
//!   parent. Paths below `/proc` and `/dev` are dropped (those mounts keep their own rules).
//!   Then a tree inside another of the same list is dropped, and so is a read tree inside a
//!   write tree. If BASE's Landlock does not grant a whole collapsed tree, its uncollapsed
//!   directory is used instead; if not even that, the path is refused.
//!   `landlock.from-mounts: false`, so the mounts grant only what is listed.
//! - **TCP ports**: `tcp-connect` and `tcp-bind` list the ports connected to and bound; none
//!   seen gives an empty list (no TCP at all). A bind to port 0 (any free port) can't be
//!   written as a Landlock rule: `tcp-bind` is then left unrestricted.
//! - **Limits**: `memory` twice the peak (rounded up to 16M, at least 32M), `pids` twice the
//!   threads and processes seen (at least 16), `timeout` four times the run's wall time (whole
//!   seconds, at least 10s) unless the program was stopped by `--duration` or a signal.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::launch::observe::{First, Observations, Use, recorded_args};
use crate::plan::landlock::{self, access};
use crate::plan::{MountKind, Plan};

/// Syscalls always allowed (see the module doc).
pub const ALWAYS: [&str; 4] = ["exit", "exit_group", "rt_sigreturn", "restart_syscall"];

/// Syscalls kekkai's own last step makes when the program's stdio is a terminal (setsid,
/// dup2 onto 0-2; the ioctl is allowed for TIOCSCTTY only), whatever a run showed.
pub const TERMINAL_ATTACH: [&str; 2] = ["setsid", "dup2"];

/// `ioctl`'s request that makes a terminal the controlling one.
const TIOCSCTTY: u64 = 0x540E;

/// System trees: read and execute below them collapse to the top directory.
pub const SYSTEM_TREES: [&str; 9] = [
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt",
];

/// One argument condition of a learned rule: (index, 32 bits?, equal to).
pub type Cond = (u8, bool, u64);

/// One alternative of an allowed syscall: any arguments, or these conditions (all hold).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Alt {
    /// Any arguments.
    Any,
    /// Equal to the values seen.
    When(Vec<Cond>),
    /// Written out as given: the preset's own conditions (`ne`, `mask`), in YAML flow text.
    Raw(String),
}

/// What a policy allows, with why: the part `kekkai learn` writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Syscall name → alternatives, each with its comment.
    pub syscalls: BTreeMap<String, BTreeMap<Alt, String>>,
    /// Landlock trees.
    pub read: BTreeMap<PathBuf, String>,
    /// Writable trees.
    pub write: BTreeMap<PathBuf, String>,
    /// Executable trees.
    pub execute: BTreeMap<PathBuf, String>,
    /// TCP connect ports (None: not restricted).
    pub connect: Option<BTreeMap<u16, String>>,
    /// TCP bind ports (None: not restricted).
    pub bind: Option<BTreeMap<u16, String>>,
    /// cgroup memory limit and why.
    pub memory: Option<(u64, String)>,
    /// cgroup pids limit and why.
    pub pids: Option<(u64, String)>,
    /// Wall-clock timeout and why.
    pub timeout: Option<(Duration, String)>,
}

/// How the learning run went, beyond what the observer saw.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    /// Wall time.
    pub wall: Duration,
    /// Peak memory (the cgroup's, or the largest resident set).
    pub peak_memory: u64,
    /// Stopped by `--duration` or a signal (a service): no timeout is learned.
    pub stopped: bool,
}

/// What learning produced.
#[derive(Debug, Clone, Default)]
pub struct Learned {
    /// The rules.
    pub rules: Rules,
    /// Needed but refused by BASE's Landlock (path or port, and the first call): the program
    /// did not get them in the learning run either.
    pub refused: Vec<String>,
}

fn why(f: &First) -> String {
    f.to_string()
}

/// The rules for what `obs` saw, within what `base` allows.
pub fn learn(obs: &Observations, base: &Plan, facts: &RunFacts) -> Learned {
    let mut out = Learned::default();
    let r = &mut out.rules;
    // seccomp.
    for (nr, seen) in &obs.syscalls {
        let Some(name) = crate::plan::names::syscall_name(*nr) else {
            continue;
        };
        let alts = r.syscalls.entry(name.to_string()).or_default();
        let widths = recorded_args(*nr);
        if widths.is_empty() || seen.values.is_empty() {
            alts.insert(Alt::Any, why(&seen.first));
            continue;
        }
        if seen.overflow {
            if let Some(raw) = preset_condition(name) {
                alts.insert(Alt::Raw(raw), format!("{} (many values)", why(&seen.first)));
                continue;
            }
        }
        for (tuple, first) in &seen.values {
            let conds: Vec<Cond> = tuple
                .iter()
                .map(|(i, v)| {
                    let w32 = widths.iter().find(|(a, _)| a == i).is_none_or(|(_, w)| *w);
                    (*i, w32, *v)
                })
                .collect();
            alts.insert(Alt::When(conds), why(first));
        }
    }
    for name in ALWAYS {
        r.syscalls
            .entry(name.to_string())
            .or_default()
            .entry(Alt::Any)
            .or_insert_with(|| {
                "always: the kernel and libc make it at unforeseeable moments".into()
            });
    }
    // kekkai's own step 13 when stdio is a terminal (a run learned without one never shows
    // them): a new session, the pseudo-terminal as the controlling terminal, dup2 onto 0-2.
    for name in TERMINAL_ATTACH {
        r.syscalls
            .entry(name.to_string())
            .or_default()
            .entry(Alt::Any)
            .or_insert_with(|| "kekkai: step 13 attaches the program's terminal".into());
    }
    let ioctl = r.syscalls.entry("ioctl".to_string()).or_default();
    if !ioctl.contains_key(&Alt::Any) {
        ioctl
            .entry(Alt::When(vec![(1, true, TIOCSCTTY)]))
            .or_insert_with(|| {
                "kekkai: step 13 makes the pseudo-terminal the controlling one".into()
            });
    }
    // Landlock trees.
    // Every mount point, in mount order, and whether it is a tmpfs: the last one above a path
    // is what the path is on.
    let mounts: Vec<(&Path, bool)> = base
        .mounts
        .iter()
        .map(|m| {
            (
                m.target.as_path(),
                matches!(m.kind, MountKind::Tmpfs { .. }),
            )
        })
        .collect();
    let made: BTreeSet<&Path> = obs
        .paths
        .keys()
        .filter(|(_, u)| *u == Use::Create)
        .map(|(p, _)| p.as_path())
        .collect();
    for ((path, usage), first) in &obs.paths {
        if path.starts_with("/proc") || path.starts_with("/dev") {
            continue;
        }
        let (list, want) = match usage {
            Use::Read => (&mut r.read, access::READ_FILE),
            Use::Write | Use::Create => (&mut r.write, access::READ | access::WRITE),
            Use::Execute => (&mut r.execute, access::EXECUTE | access::READ_FILE),
        };
        let dir = match usage {
            Use::Read if is_dir_listing(obs, path) => path.clone(),
            _ => path
                .parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf),
        };
        let mut dir = dir;
        while made.contains(dir.as_path()) && dir.parent().is_some() {
            dir = dir.parent().map(Path::to_path_buf).unwrap_or_default();
        }
        let collapsed = collapse(&dir, *usage, &mounts);
        let chosen = [collapsed, dir.clone()]
            .into_iter()
            .find(|d| !base.landlock.enabled || landlock::allows(&base.landlock, d, want));
        match chosen {
            Some(d) => {
                list.entry(d).or_insert_with(|| why(first));
            }
            None => out.refused.push(format!(
                "{} ({}) refused by the base policy's Landlock; first: {}",
                path.display(),
                use_name(*usage),
                why(first)
            )),
        }
    }
    prune(&mut r.read);
    prune(&mut r.write);
    prune(&mut r.execute);
    let write = r.write.clone();
    r.read
        .retain(|p, _| !write.keys().any(|w| p.starts_with(w)));
    // TCP ports.
    let ports = |seen: &BTreeMap<u16, First>,
                 allowed: Option<&Vec<u16>>,
                 what: &str,
                 refused: &mut Vec<String>| {
        if seen.contains_key(&0) {
            return None;
        }
        let mut m = BTreeMap::new();
        for (port, first) in seen {
            if allowed.is_none_or(|a| a.contains(port)) {
                m.insert(*port, why(first));
            } else {
                refused.push(format!(
                    "{what} port {port} refused by the base policy; first: {}",
                    why(first)
                ));
            }
        }
        Some(m)
    };
    let base_connect = base.landlock.tcp_connect.as_ref().map(|k| &k.value);
    let base_bind = base.landlock.tcp_bind.as_ref().map(|k| &k.value);
    r.connect = ports(&obs.connect, base_connect, "connect", &mut out.refused);
    r.bind = ports(&obs.bind, base_bind, "bind", &mut out.refused);
    // Limits.
    const MIB16: u64 = 16 << 20;
    if facts.peak_memory > 0 {
        let m = (facts.peak_memory.saturating_mul(2)).div_ceil(MIB16) * MIB16;
        r.memory = Some((
            m.max(32 << 20),
            format!(
                "peak {} × 2",
                crate::plan::units::format_size(facts.peak_memory.div_ceil(1 << 20) << 20)
            ),
        ));
    }
    let threads = crate::sys::abi::len64(obs.threads.len());
    r.pids = Some((
        (threads * 2).max(16),
        format!("{threads} processes and threads seen × 2"),
    ));
    if !facts.stopped {
        // Four times the run, in whole seconds rounded up, at least ten.
        let four = facts.wall.saturating_mul(4);
        let secs = (four.as_secs() + u64::from(four.subsec_nanos() > 0)).max(10);
        r.timeout = Some((
            Duration::from_secs(secs),
            format!("the run took {:.1}s × 4", facts.wall.as_secs_f64()),
        ));
    }
    out
}

/// The default preset's own condition for a syscall seen with too many values to list.
fn preset_condition(name: &str) -> Option<String> {
    match name {
        "ioctl" => Some(
            "[{ arg: 1, width: 32, ne: TIOCSTI }, { arg: 1, width: 32, ne: TIOCLINUX }]".into(),
        ),
        "clone" => Some("[{ arg: 0, width: 64, mask: CLONE_NS_FLAGS, eq: 0 }]".into()),
        _ => None,
    }
}

fn use_name(u: Use) -> &'static str {
    match u {
        Use::Read => "read",
        Use::Write => "write",
        Use::Create => "create",
        Use::Execute => "execute",
    }
}

/// Was `path` listed as a directory (opened, and something below it was seen too)?
fn is_dir_listing(obs: &Observations, path: &Path) -> bool {
    obs.paths
        .keys()
        .any(|(p, _)| p != path && p.starts_with(path))
        && obs.paths.contains_key(&(path.to_path_buf(), Use::Read))
}

/// The documented collapse of a directory for a use, given the mount points in mount order
/// (and whether each is a tmpfs).
fn collapse(dir: &Path, usage: Use, mounts: &[(&Path, bool)]) -> PathBuf {
    let on = mounts.iter().rev().find(|(t, _)| dir.starts_with(t));
    if let Some((t, true)) = on {
        return t.to_path_buf();
    }
    if matches!(usage, Use::Read | Use::Execute) {
        if let Some(t) = SYSTEM_TREES.iter().find(|t| dir.starts_with(t)) {
            return PathBuf::from(t);
        }
    }
    dir.to_path_buf()
}

/// Drops every tree that another of the list contains.
fn prune(list: &mut BTreeMap<PathBuf, String>) {
    let keys: Vec<PathBuf> = list.keys().cloned().collect();
    list.retain(|p, _| !keys.iter().any(|k| k != p && p.starts_with(k)));
}

/// Folds `other` (an earlier run, or another) into `into`: every rule of either, the larger
/// limit; a rule in both keeps `into`'s comment.
pub fn merge(into: &mut Rules, other: Rules) {
    for (name, alts) in other.syscalls {
        let mine = into.syscalls.entry(name).or_default();
        for (alt, why) in alts {
            mine.entry(alt).or_insert(why);
        }
    }
    // An unconditional alternative makes the conditioned ones redundant.
    for alts in into.syscalls.values_mut() {
        if alts.contains_key(&Alt::Any) {
            alts.retain(|a, _| *a == Alt::Any);
        }
    }
    for (mine, theirs) in [
        (&mut into.read, other.read),
        (&mut into.write, other.write),
        (&mut into.execute, other.execute),
    ] {
        for (p, why) in theirs {
            mine.entry(p).or_insert(why);
        }
        prune(mine);
    }
    let write = into.write.clone();
    into.read
        .retain(|p, _| !write.keys().any(|w| p.starts_with(w)));
    for (mine, theirs) in [
        (&mut into.connect, other.connect),
        (&mut into.bind, other.bind),
    ] {
        *mine = match (mine.take(), theirs) {
            (Some(mut a), Some(b)) => {
                for (p, why) in b {
                    a.entry(p).or_insert(why);
                }
                Some(a)
            }
            _ => None,
        };
    }
    let larger = |a: Option<(u64, String)>, b: Option<(u64, String)>| match (a, b) {
        (Some(a), Some(b)) => Some(if b.0 > a.0 { b } else { a }),
        (a, b) => a.or(b),
    };
    into.memory = larger(into.memory.take(), other.memory);
    into.pids = larger(into.pids.take(), other.pids);
    into.timeout = match (into.timeout.take(), other.timeout) {
        (Some(a), Some(b)) => Some(if b.0 > a.0 { b } else { a }),
        // One run was a service: no timeout.
        _ => None,
    };
}

/// Reads the rules back from a policy `kekkai learn` wrote (for `--merge`): the keys it
/// writes, whatever their comments. Returns the rules and the `extends` it names.
pub fn read_back(text: &str, what: &str) -> Result<(Rules, Option<String>), String> {
    use serde_yaml::Value;
    let doc: Value = serde_yaml::from_str(text).map_err(|e| format!("{what}: {e}"))?;
    let get = |v: &Value, path: &[&str]| -> Option<Value> {
        let mut cur = v.clone();
        for k in path {
            cur = cur.get(*k)?.clone();
        }
        Some(cur)
    };
    let earlier = format!("learned earlier ({what})");
    let mut r = Rules::default();
    for entry in get(&doc, &["seccomp", "allow"])
        .and_then(|v| v.as_sequence().cloned())
        .unwrap_or_default()
    {
        if let Some(name) = entry.as_str() {
            r.syscalls
                .entry(name.to_string())
                .or_default()
                .insert(Alt::Any, earlier.clone());
            continue;
        }
        let Some(name) = entry.get("syscall").and_then(Value::as_str) else {
            return Err(format!("{what}: seccomp.allow: an entry without `syscall`"));
        };
        let args = entry
            .get("args")
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default();
        let mut conds = Vec::new();
        let mut raw = false;
        for a in &args {
            let arg = a
                .get("arg")
                .and_then(Value::as_u64)
                .and_then(|n| u8::try_from(n).ok());
            let width = a.get("width").and_then(Value::as_u64);
            let eq = a.get("eq").and_then(value_u64);
            match (
                arg,
                width,
                eq,
                a.get("mask").is_some() || a.get("ne").is_some(),
            ) {
                (Some(i), Some(w), Some(v), false) => conds.push((i, w == 32, v)),
                _ => raw = true,
            }
        }
        let alt = if raw {
            let text = serde_yaml::to_string(&Value::Sequence(args)).unwrap_or_default();
            Alt::Raw(flow(&text))
        } else if conds.is_empty() {
            Alt::Any
        } else {
            Alt::When(conds)
        };
        r.syscalls
            .entry(name.to_string())
            .or_default()
            .insert(alt, earlier.clone());
    }
    for (key, list) in [
        ("read", &mut r.read),
        ("write", &mut r.write),
        ("execute", &mut r.execute),
    ] {
        for p in get(&doc, &["landlock", key])
            .and_then(|v| v.as_sequence().cloned())
            .unwrap_or_default()
        {
            if let Some(p) = p.as_str() {
                list.insert(PathBuf::from(p), earlier.clone());
            }
        }
    }
    for (key, slot) in [("tcp-connect", &mut r.connect), ("tcp-bind", &mut r.bind)] {
        *slot = get(&doc, &["landlock", key])
            .and_then(|v| v.as_sequence().cloned())
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_u64)
                    .filter_map(|p| u16::try_from(p).ok())
                    .map(|p| (p, earlier.clone()))
                    .collect()
            });
    }
    if let Some(m) = get(&doc, &["limits", "memory"]) {
        let text = m
            .as_str()
            .map(str::to_string)
            .or_else(|| m.as_u64().map(|n| n.to_string()));
        if let Some(Ok(crate::plan::units::Amount::Finite(n))) =
            text.map(|t| crate::plan::units::parse_size(&t))
        {
            r.memory = Some((n, earlier.clone()));
        }
    }
    if let Some(n) = get(&doc, &["limits", "pids"]).and_then(|v| v.as_u64()) {
        r.pids = Some((n, earlier.clone()));
    }
    if let Some(t) = get(&doc, &["timeout"]).and_then(|v| v.as_str().map(str::to_string)) {
        if let Ok(d) = crate::plan::units::parse_duration(&t) {
            r.timeout = Some((d, earlier.clone()));
        }
    }
    let extends = get(&doc, &["extends"]).and_then(|v| v.as_str().map(str::to_string));
    Ok((r, extends))
}

fn value_u64(v: &serde_yaml::Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        let s = v.as_str()?;
        match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => s.parse().ok(),
        }
    })
}

/// Block YAML of a short sequence of maps, as one flow line.
fn flow(block: &str) -> String {
    let v: serde_yaml::Value = serde_yaml::from_str(block).unwrap_or(serde_yaml::Value::Null);
    let items: Vec<String> = v
        .as_sequence()
        .map(|s| {
            s.iter()
                .map(|m| {
                    let fields: Vec<String> = m
                        .as_mapping()
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| {
                                    let k = k.as_str().unwrap_or_default();
                                    let v = match v {
                                        serde_yaml::Value::String(s) => s.clone(),
                                        serde_yaml::Value::Number(n) => n.to_string(),
                                        _ => String::new(),
                                    };
                                    format!("{k}: {v}")
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    format!("{{ {} }}", fields.join(", "))
                })
                .collect()
        })
        .unwrap_or_default();
    format!("[{}]", items.join(", "))
}

/// What the policy file says about where it came from.
#[derive(Debug, Clone, Default)]
pub struct Header {
    /// The commands learned (one per run folded in).
    pub commands: Vec<String>,
    /// `extends:` as written.
    pub extends: String,
    /// Keys BASE sets that this policy's lists replace (`replace:`).
    pub replace: Vec<String>,
    /// BASE's default action allows (`log`): write `default-action: errno(EPERM)`.
    pub deny_by_default: bool,
}

/// Which of the keys learn writes as lists BASE sets (they are then replaced, not appended
/// to).
pub fn replaced_keys(base: &crate::policy::model::RawPolicy) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(l) = &base.landlock {
        for (k, set) in [
            ("landlock.read", l.read.is_some()),
            ("landlock.write", l.write.is_some()),
            ("landlock.execute", l.execute.is_some()),
            ("landlock.tcp-connect", l.tcp_connect.is_some()),
            ("landlock.tcp-bind", l.tcp_bind.is_some()),
        ] {
            if set {
                out.push(k.to_string());
            }
        }
    }
    if let Some(s) = &base.seccomp {
        if s.allow.is_some() {
            out.push("seccomp.allow".into());
        }
        if s.socket_families.is_some() {
            out.push("seccomp.socket-families".into());
        }
    }
    out
}

/// The policy text.
pub fn render(rules: &Rules, h: &Header) -> String {
    let mut y = String::new();
    let line = |y: &mut String, text: &str| {
        y.push_str(text);
        y.push('\n');
    };
    line(&mut y, "# Learned by `kekkai learn` from:");
    for c in &h.commands {
        line(&mut y, &format!("#   {}", one_line(c)));
    }
    line(
        &mut y,
        "# Each rule names the first call that needed it. Check it with `kekkai check`, see it with",
    );
    line(
        &mut y,
        "# `kekkai explain -p FILE`, and prove it with `kekkai audit -p FILE`.",
    );
    line(&mut y, "version: 1");
    line(&mut y, &format!("extends: {}", quote(&h.extends)));
    if !h.replace.is_empty() {
        line(&mut y, &format!("replace: [{}]", h.replace.join(", ")));
    }
    line(&mut y, "");
    line(&mut y, "seccomp:");
    line(&mut y, "  preset: empty");
    if h.deny_by_default {
        line(&mut y, "  default-action: errno(EPERM)");
    }
    line(&mut y, "  allow:");
    for (name, alts) in &rules.syscalls {
        for (alt, why) in alts {
            let entry = match alt {
                Alt::Any => name.clone(),
                Alt::When(conds) => {
                    let c: Vec<String> = conds
                        .iter()
                        .map(|(i, w32, v)| {
                            format!(
                                "{{ arg: {i}, width: {}, eq: {v:#x} }}",
                                if *w32 { 32 } else { 64 }
                            )
                        })
                        .collect();
                    format!("{{ syscall: {name}, args: [{}] }}", c.join(", "))
                }
                Alt::Raw(args) => format!("{{ syscall: {name}, args: {args} }}"),
            };
            line(&mut y, &format!("    - {entry:<40} # {}", one_line(why)));
        }
    }
    line(&mut y, "");
    line(&mut y, "landlock:");
    line(
        &mut y,
        "  from-mounts: false             # the mounts grant only what is listed here",
    );
    for (key, list) in [
        ("read", &rules.read),
        ("write", &rules.write),
        ("execute", &rules.execute),
    ] {
        if list.is_empty() {
            line(&mut y, &format!("  {key}: []"));
            continue;
        }
        line(&mut y, &format!("  {key}:"));
        for (p, why) in list {
            let p = quote(&p.to_string_lossy());
            line(&mut y, &format!("    - {p:<28} # {}", one_line(why)));
        }
    }
    for (key, ports) in [("tcp-connect", &rules.connect), ("tcp-bind", &rules.bind)] {
        match ports {
            None => line(
                &mut y,
                &format!("  # {key}: not restricted (a bind to any free port, port 0, was seen)"),
            ),
            Some(p) if p.is_empty() => {
                line(&mut y, &format!("  {key}: []                # none seen"))
            }
            Some(p) => {
                line(&mut y, &format!("  {key}:"));
                for (port, why) in p {
                    line(&mut y, &format!("    - {port:<28} # {}", one_line(why)));
                }
            }
        }
    }
    if rules.memory.is_some() || rules.pids.is_some() {
        line(&mut y, "");
        line(&mut y, "limits:");
        if let Some((m, why)) = &rules.memory {
            let m = crate::plan::units::format_size(*m);
            line(&mut y, &format!("  memory: {m:<22} # {}", one_line(why)));
        }
        if let Some((n, why)) = &rules.pids {
            line(&mut y, &format!("  pids: {n:<24} # {}", one_line(why)));
        }
    }
    if let Some((t, why)) = &rules.timeout {
        line(&mut y, "");
        line(
            &mut y,
            &format!("timeout: {}s{:<17} # {}", t.as_secs(), "", one_line(why)),
        );
    }
    y
}

/// [`render`], refused when its comments change what the policy says: the text is rendered
/// again with every comment empty and both are parsed; they must be the same document. The
/// comments quote what the program chose (paths, process names), so this is the check that
/// no quoting slip in [`crate::log::printable`] can hand the program a key of its own.
pub fn render_checked(rules: &Rules, h: &Header) -> Result<String, String> {
    let text = render(rules, h);
    let mut bare = rules.clone();
    for alts in bare.syscalls.values_mut() {
        alts.values_mut().for_each(String::clear);
    }
    for list in [&mut bare.read, &mut bare.write, &mut bare.execute] {
        list.values_mut().for_each(String::clear);
    }
    for ports in [&mut bare.connect, &mut bare.bind].into_iter().flatten() {
        ports.values_mut().for_each(String::clear);
    }
    for why in [&mut bare.memory, &mut bare.pids]
        .into_iter()
        .flatten()
        .map(|(_, w)| w)
        .chain(bare.timeout.as_mut().map(|(_, w)| w))
    {
        why.clear();
    }
    let bare_header = Header {
        commands: Vec::new(),
        ..h.clone()
    };
    let parse = |t: &str| serde_yaml::from_str::<serde_yaml::Value>(t).map_err(|e| e.to_string());
    let (said, meant) = (parse(&text), parse(&render(&bare, &bare_header)));
    match (said, meant) {
        (Ok(a), Ok(b)) if a == b => Ok(text),
        (Err(e), _) | (_, Err(e)) => Err(format!("the learned policy does not parse: {e}")),
        _ => Err(
            "the learned policy's comments (paths and names the program chose) change what it \
             says: nothing was written"
                .into(),
        ),
    }
}

/// A comment's text, on one line whatever it quotes ([`crate::log::printable`]). The paths and
/// process names in the comments are the program's choice, and a YAML comment ends at more
/// than `\n`: libyaml (which yaml_serde ports) also ends it at `\r`, NEL (U+0085), LS (U+2028)
/// and PS (U+2029), so a file named `x<U+2028>  enabled: false` once wrote that key into the
/// learned policy.
fn one_line(s: &str) -> String {
    crate::log::printable(s)
}

/// A YAML scalar for a path or name: plain when that reads back the same, else double-quoted.
fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+@".contains(c))
        && !s.starts_with(['-', '@'])
        && s.parse::<f64>().is_err()
        && !matches!(
            s,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("/usr/lib/python3/x", Use::Read, "/usr")]
    #[case("/etc/ssl", Use::Read, "/etc")]
    #[case("/usr/local/out", Use::Write, "/usr/local/out")]
    #[case("/tmp/a/b", Use::Write, "/tmp")]
    #[case("/tmp/a/b", Use::Read, "/tmp")]
    #[case("/srv/data", Use::Read, "/srv/data")]
    #[case("/tmp/w/out/x", Use::Write, "/tmp/w/out/x")]
    #[case("/tmp/w/data", Use::Read, "/tmp/w/data")]
    fn collapses(#[case] dir: &str, #[case] usage: Use, #[case] want: &str) {
        // A tmpfs at /tmp, then a bind of /tmp/w on it.
        let mounts = [(Path::new("/tmp"), true), (Path::new("/tmp/w"), false)];
        assert_eq!(
            collapse(Path::new(dir), usage, &mounts),
            PathBuf::from(want)
        );
    }

    /// A path or process name the program chose, quoted in a comment, stays in the comment
    /// whatever line break it holds (libyaml ends a comment at each of these): the learned
    /// policy never gets the key that follows it (here `landlock.enabled: false`, which turned
    /// Landlock off), and the comment still says which character it was.
    #[rstest]
    #[case::line_feed("\n", "\\u{a}")]
    #[case::carriage_return("\r", "\\u{d}")]
    #[case::next_line("\u{85}", "\\u{85}")]
    #[case::line_separator("\u{2028}", "\\u{2028}")]
    #[case::paragraph_separator("\u{2029}", "\\u{2029}")]
    #[case::vertical_tab("\u{b}", "\\u{b}")]
    #[case::bidi_override("\u{202e}", "\\u{202e}")]
    fn a_comment_can_not_end_early(#[case] sep: &str, #[case] shown: &str) {
        let mut r = Rules::default();
        let why = format!("touch: openat /tmp/x{sep}  enabled: false{sep}  #");
        r.write.insert("/tmp".into(), why.clone());
        r.read.insert("/usr".into(), why.clone());
        r.syscalls
            .entry("openat".into())
            .or_default()
            .insert(Alt::Any, why);
        let h = Header {
            commands: vec![format!("sh -c x{sep}host-privileges: allow{sep}")],
            extends: "default".into(),
            ..Header::default()
        };
        let text = render_checked(&r, &h).unwrap();
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert!(doc.get("host-privileges").is_none(), "{text}");
        let landlock = doc.get("landlock").unwrap();
        assert!(landlock.get("enabled").is_none(), "{text}");
        assert!(
            text.contains(&format!("/tmp/x{shown}  enabled: false")),
            "{text}"
        );
        let (back, _) = read_back(&text, "p.yaml").unwrap();
        assert_eq!(back.write.keys().collect::<Vec<_>>(), [Path::new("/tmp")]);
    }

    /// Letters and digits of any script stay as they are; nothing else printable is lost.
    #[rstest]
    #[case("python3: openat /srv/données/é", "python3: openat /srv/données/é")]
    #[case("sh: execve /usr/bin/日本", "sh: execve /usr/bin/日本")]
    #[case("a\tb", "a\\u{9}b")]
    #[case("esc \u{1b}[2J", "esc \\u{1b}[2J")]
    fn comments_keep_what_reads_safely(#[case] why: &str, #[case] want: &str) {
        assert_eq!(one_line(why), want);
    }

    #[test]
    fn prunes_nested_trees() {
        let mut l: BTreeMap<PathBuf, String> = ["/a", "/a/b", "/ab", "/c/d"]
            .iter()
            .map(|p| (PathBuf::from(p), String::new()))
            .collect();
        prune(&mut l);
        let got: Vec<&str> = l.keys().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(got, ["/a", "/ab", "/c/d"]);
    }

    /// Rendered rules read back to the same rules; merging adds and keeps the larger limit.
    #[test]
    fn renders_reads_back_and_merges() {
        let mut r = Rules::default();
        r.syscalls
            .entry("read".into())
            .or_default()
            .insert(Alt::Any, "x".into());
        r.syscalls
            .entry("socket".into())
            .or_default()
            .insert(Alt::When(vec![(0, true, 1)]), "x".into());
        r.syscalls
            .entry("ioctl".into())
            .or_default()
            .insert(Alt::Raw(preset_condition("ioctl").unwrap()), "x".into());
        r.read.insert("/data".into(), "x".into());
        r.write.insert("/out dir".into(), "x".into());
        r.connect = Some([(8080, "x".to_string())].into());
        r.bind = None;
        r.memory = Some((64 << 20, "x".into()));
        r.pids = Some((16, "x".into()));
        r.timeout = Some((Duration::from_secs(10), "x".into()));
        let text = render(
            &r,
            &Header {
                commands: vec!["python3 app.py".into()],
                extends: "default".into(),
                ..Header::default()
            },
        );
        let (back, extends) = read_back(&text, "p.yaml").unwrap();
        assert_eq!(extends.as_deref(), Some("default"));
        let names = |r: &Rules| {
            r.syscalls
                .iter()
                .map(|(n, a)| (n.clone(), a.keys().cloned().collect::<Vec<_>>()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&back), names(&r));
        assert_eq!(
            back.read.keys().collect::<Vec<_>>(),
            r.read.keys().collect::<Vec<_>>()
        );
        assert_eq!(
            back.write.keys().collect::<Vec<_>>(),
            r.write.keys().collect::<Vec<_>>()
        );
        assert_eq!(back.connect.as_ref().map(|c| c.len()), Some(1));
        assert_eq!(back.bind, None);
        assert_eq!(back.memory.as_ref().map(|m| m.0), Some(64 << 20));
        let mut other = Rules::default();
        other.read.insert("/data2".into(), "y".into());
        other.connect = Some([(9090, "y".to_string())].into());
        other.memory = Some((128 << 20, "y".into()));
        other.timeout = Some((Duration::from_secs(30), "y".into()));
        let mut merged = back;
        merge(&mut merged, other);
        assert_eq!(merged.read.len(), 2);
        assert_eq!(merged.connect.map(|c| c.len()), Some(2));
        assert_eq!(merged.memory.map(|m| m.0), Some(128 << 20));
        assert_eq!(merged.timeout.map(|t| t.0), Some(Duration::from_secs(30)));
    }
}
