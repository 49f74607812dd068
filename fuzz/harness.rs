//! The code paths the fuzz targets drive, shared by the targets in `fuzz/fuzz_targets/` and by
//! the corpus replay test `tests/fuzz_corpus.rs` (both include this file with `#[path]`), so a
//! reproducer saved in `fuzz/corpus/<target>/` replays exactly what the fuzzer ran.
//!
//! Each function takes arbitrary bytes and must return: an `Err` is fine, a panic, an abort, a
//! hang or an out-of-memory is a finding. Beyond "no panic", a few cheap invariants are
//! asserted (an error always says something; a compiled seccomp filter is one the kernel would
//! load), because a violation of those would surface only later, at launch.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kekkai::caller::Caller;
use kekkai::plan::seccomp::{Filter, interp};
use kekkai::plan::{self, Plan};
use kekkai::policy::overrides::{self, Override};
use kekkai::policy::{self, Diagnostics, LoadedPolicy, PolicySource, model::Seccomp, yaml};

/// The name the fuzzed text is loaded as. Its directory does not exist, so a relative
/// `extends` fails the same way wherever the fuzzer or the test runs.
pub const POLICY_NAME: &str = "/nonexistent-kekkai-fuzz/policy.yaml";

/// A fixed, unprivileged caller: the plan must not depend on who runs the fuzzer. Its working
/// directory exists on every Linux host, so the shipped policies (which bind `${PWD}`) compile
/// and inputs built on them reach the end of `compile` and `explain`.
pub fn caller() -> &'static Caller {
    static CALLER: OnceLock<Caller> = OnceLock::new();
    CALLER.get_or_init(|| Caller {
        pwd: PathBuf::from("/usr"),
        ..Caller::for_tests()
    })
}

/// `policy`: bytes → UTF-8 and size check → load (scan, parse, variables, extends, merge) →
/// compile → explain (human and JSON), the path `kekkai check` / `explain` / `run` take.
pub fn policy(data: &[u8]) {
    let Ok(text) = yaml::check_bytes(data) else {
        return;
    };
    let caller = caller();
    match policy::load_str(POLICY_NAME, text, caller) {
        Ok(loaded) => compile_and_explain(&loaded, caller),
        Err(d) => check_diagnostics(&d),
    }
}

/// `seccomp`: bytes → the same structural scan the loader runs → a YAML `seccomp:` section →
/// `plan::seccomp::compile`, with no other section in the way.
pub fn seccomp(data: &[u8]) {
    let Ok(text) = yaml::check_bytes(data) else {
        return;
    };
    if yaml::scan(text).is_err() {
        return;
    }
    let Ok(spec) = serde_yaml::from_str::<Option<Seccomp>>(text) else {
        return;
    };
    let mut diags = plan::Diags::default();
    // With the rules of `host-privileges: deny`, the language's default.
    let host = plan::HostPrivileges::Deny;
    match plan::seccomp::compile(spec.as_ref(), host, &mut diags) {
        Some(p) => check_filters(&p.filters),
        None => assert!(
            !diags.is_empty(),
            "seccomp::compile returned no plan and no diagnostic"
        ),
    }
    for (path, message) in diags.into_pairs() {
        assert!(!message.is_empty(), "empty seccomp diagnostic at {path}");
    }
}

/// `overrides`: bytes → lines `TAG VALUE` (TAG is a flag name without `--`: `bind`,
/// `ro-bind`, `tmpfs`, `setenv`, `unsetenv`, `chdir`, `hostname`, `net`; lines with another tag
/// are skipped) → [`Override`]s → `overrides::apply` (each `to_value`, overlaid on the
/// shipped default policy) → compile → explain, the path `kekkai run -- …` flags take.
pub fn overrides(data: &[u8]) {
    let list = parse_overrides(data);
    let caller = caller();
    let Some(base) = default_policy() else {
        return;
    };
    let mut loaded = base.clone();
    match overrides::apply(&mut loaded, &list, &caller.pwd) {
        Ok(()) => compile_and_explain(&loaded, caller),
        Err(d) => check_diagnostics(&d),
    }
}

/// Splits the input into overrides; see [`overrides`].
pub fn parse_overrides(data: &[u8]) -> Vec<Override> {
    data.split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = String::from_utf8_lossy(line);
            let (tag, value) = line.split_once(' ').unwrap_or((&line, ""));
            let make: fn(String) -> Override = match tag {
                "bind" => Override::Bind,
                "ro-bind" => Override::RoBind,
                "tmpfs" => Override::Tmpfs,
                "setenv" => Override::SetEnv,
                "unsetenv" => Override::UnsetEnv,
                "chdir" => Override::Chdir,
                "hostname" => Override::Hostname,
                "net" => Override::Net,
                _ => return None,
            };
            Some(make(value.to_owned()))
        })
        .collect()
}

/// The shipped default policy, loaded once. `None` only if it fails to load, which the
/// shipped-policy tests report; the fuzzer then has nothing to overlay on.
fn default_policy() -> Option<&'static LoadedPolicy> {
    static DEFAULT: OnceLock<Option<LoadedPolicy>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| policy::load(&PolicySource::Shipped("default"), caller()).ok())
        .as_ref()
}

fn compile_and_explain(loaded: &LoadedPolicy, caller: &Caller) {
    match plan::compile(loaded, caller) {
        Ok(plan) => {
            check_plan(&plan);
            let _ = kekkai::explain::human(loaded, &plan);
            let _ = kekkai::explain::json(loaded, &plan);
        }
        Err(d) => check_diagnostics(&d),
    }
}

fn check_diagnostics(d: &Diagnostics) {
    assert!(!d.0.is_empty(), "an error without a diagnostic");
    for one in &d.0 {
        assert!(
            !one.message.is_empty(),
            "a diagnostic without a message: {one:?}"
        );
    }
}

fn check_plan(plan: &Plan) {
    check_filters(&plan.seccomp.filters);
}

/// What the kernel checks before it installs a classic BPF seccomp filter (the parts a compiler
/// bug could break: size, every jump lands inside the program, it ends in a return, loads from
/// `seccomp_data` are aligned and in bounds), and stricter: every instruction is one kekkai's
/// BPF interpreter implements (`plan::seccomp::interp`, the one the tests run filters with).
fn check_filters(filters: &[Filter]) {
    for f in filters {
        if let Err(e) = interp::check(&f.program) {
            panic!("filter {:?}: {e}", f.name);
        }
    }
}

/// Exercises a file through the harness function of `target`; for the replay test.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "policy" => policy(data),
        "seccomp" => seccomp(data),
        "overrides" => overrides(data),
        _ => {}
    }
}

/// The targets, as named in `fuzz/Cargo.toml` and `fuzz/corpus/`.
pub const TARGETS: [&str; 3] = ["policy", "seccomp", "overrides"];

/// The corpus directory of `target` in the repository at `root`.
pub fn corpus_dir(root: &Path, target: &str) -> PathBuf {
    root.join("fuzz").join("corpus").join(target)
}
