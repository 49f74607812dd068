//! Invalid policies → the exact key path, line and message.
//!
//! Every section of the policy language has rows here. Each row is loaded with
//! `policy::load_str` and, if that succeeds, compiled with `plan::compile`; the row passes when
//! one of the diagnostics names exactly the expected key path and line and its message contains
//! the expected text. Paths are those of the file the user wrote: for a merged policy, the path
//! and line inside the file that wrote the offending value.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use kekkai::caller::Caller;
use kekkai::policy::{self, Diagnostic, Diagnostics, PolicySource};
use rstest::rstest;

use support::Scratch;

/// The name errors give the text loaded by `load_str`.
const FILE: &str = "policy.yaml";

/// Loads and compiles; the diagnostics of whichever step failed.
fn diagnostics(text: &str, caller: &Caller) -> Vec<Diagnostic> {
    let result = policy::load_str(FILE, text, caller)
        .and_then(|loaded| kekkai::plan::compile(&loaded, caller).map(|_| ()));
    match result {
        Ok(()) => panic!("the policy was accepted:\n{text}"),
        Err(Diagnostics(d)) => d,
    }
}

fn assert_reported(diags: &[Diagnostic], file: &str, path: &str, line: usize, contains: &str) {
    let hit = diags.iter().any(|d| {
        d.file.replace("/./", "/").ends_with(file)
            && d.path == path
            && d.pos.map(|p| p.line) == Some(line)
            && d.message.contains(contains)
    });
    assert!(
        hit,
        "wanted {file}:{line}: `{path}`: …{contains}…\ngot:\n{}",
        Diagnostics(diags.to_vec())
    );
    for d in diags {
        assert!(d.pos.is_some(), "a diagnostic without line and column: {d}");
        assert!(
            !d.message.is_empty(),
            "a diagnostic without a message: {d:?}"
        );
    }
}

/// A snippet fails for an unprivileged caller with a diagnostic at `path`, `line`, whose message
/// contains `contains`.
fn invalid_snippet(text: &str, path: &str, line: usize, contains: &str) {
    let diags = diagnostics(text, &support::rootless());
    assert_reported(&diags, FILE, path, line, contains);
}

/// The snippet tables, by section of the policy language.
#[path = "policy_errors/top.rs"]
mod top;

#[path = "policy_errors/mounts.rs"]
mod mounts;

#[path = "policy_errors/limits.rs"]
mod limits;

#[path = "policy_errors/seccomp.rs"]
mod seccomp;

#[path = "policy_errors/syntax.rs"]
mod syntax;

/// Known bugs: the tests say what should happen.
#[path = "policy_errors/known_bugs.rs"]
mod known_bugs;

/// Errors only a root caller can reach (ranges of ids in the user namespace).
#[rstest]
#[case::map_without_userns(
    "version: 1\nnamespaces: [mount, pid]\nidentity:\n  map: {outside: 100000, count: 10}\n",
    "identity.map",
    4,
    "a map needs the `user` namespace"
)]
#[case::map_incomplete(
    "version: 1\nidentity: {map: {outside: 100000}}\n",
    "identity.map",
    2,
    "needs `outside` and `count`"
)]
#[case::map_empty(
    "version: 1\nidentity: {map: {outside: 100000, count: 0}}\n",
    "identity.map.count",
    2,
    "must be non-empty"
)]
#[case::map_overflows(
    "version: 1\nidentity: {map: {inside: 0, outside: 4294967290, count: 100}}\n",
    "identity.map.count",
    2,
    "fit in 32-bit ids"
)]
#[case::map_misses_identity(
    "version: 1\nidentity:\n  uid: 5000\n  map: {outside: 100000, count: 10}\n",
    "identity.map",
    4,
    "does not cover the identity's ids"
)]
#[case::map_misses_root(
    "version: 1\nidentity: {uid: 2, gid: 2, map: {inside: 1, outside: 100000, count: 10}}\n",
    "identity.map.inside",
    2,
    "must include id 0 inside"
)]
#[case::map_misses_group(
    "version: 1\nidentity: {groups: [50], map: {outside: 100000, count: 10}}\n",
    "identity.map",
    2,
    "does not cover"
)]
// host-privileges: deny (the default) keeps a root caller's program off host root.
#[case::host_root(
    "version: 1\nidentity: {uid: 0, gid: 0}\n",
    "identity.uid",
    2,
    "uid 0 is host root"
)]
#[case::host_root_by_name(
    "version: 1\nidentity:\n  uid: root\n",
    "identity.uid",
    3,
    "host-privileges: allow"
)]
#[case::host_root_group(
    "version: 1\nidentity: {uid: 1000, gid: 0}\n",
    "identity.gid",
    2,
    "host gid 0"
)]
#[case::host_root_supplementary(
    "version: 1\nidentity: {uid: 1000, groups: [100, 0]}\n",
    "identity.groups[1]",
    2,
    "host group 0"
)]
#[case::host_root_through_a_map(
    "version: 1\nidentity: {uid: 0, gid: 0, map: {inside: 0, outside: 0, count: 10}}\n",
    "identity.map",
    2,
    "the map puts uid 0 at host uid 0"
)]
#[case::host_root_owns_the_directory(
    "version: 1\nidentity: {owner-of: /usr}\n",
    "identity.owner-of",
    2,
    "/usr is owned by root, so the program would run as host root"
)]
#[case::host_root_without_userns(
    "version: 1\nnamespaces: [mount, pid]\nidentity: {uid: 0}\n",
    "identity.uid",
    3,
    "uid 0 is host root"
)]
fn invalid_for_a_root_caller(
    #[case] text: &str,
    #[case] path: &str,
    #[case] line: usize,
    #[case] contains: &str,
) {
    let diags = diagnostics(text, &support::root());
    assert_reported(&diags, FILE, path, line, contains);
}

/// Policies spread over files: errors point into the file that wrote the offending value.
/// Each case writes its files into a fresh directory and loads the first one.
#[rstest]
#[case::not_utf8(&[("p.yaml", b"version: 1\nname: ab\xffc\n".as_slice())], "p.yaml", "", 2, "not valid UTF-8")]
#[case::not_utf8_in_parent(
    &[("p.yaml", b"version: 1\nextends: ./base.yaml\n".as_slice()), ("base.yaml", b"version: 1\n\n\nname: \xc3\x28\n".as_slice())],
    "base.yaml",
    "",
    4,
    "not valid UTF-8"
)]
#[case::cycle_of_two(
    &[("a.yaml", b"version: 1\nextends: ./b.yaml\n".as_slice()), ("b.yaml", b"version: 1\nname: b\nextends: ./a.yaml\n".as_slice())],
    "b.yaml",
    "extends",
    3,
    "`extends` cycle"
)]
#[case::cycle_of_one(&[("a.yaml", b"version: 1\nextends: ./a.yaml\n".as_slice())], "a.yaml", "extends", 2, "`extends` cycle")]
#[case::missing_parent(
    &[("a.yaml", b"version: 1\nname: a\nextends: ./gone.yaml\n".as_slice())],
    "a.yaml",
    "extends",
    3,
    "gone.yaml: no such file or directory (ENOENT)"
)]
#[case::parent_is_a_directory(
    &[("a.yaml", b"version: 1\nextends: ./sub.yaml\n".as_slice()), ("sub.yaml/x", b"".as_slice())],
    "a.yaml",
    "extends",
    2,
    "not a regular file"
)]
#[case::parent_syntax_error(
    &[("a.yaml", b"version: 1\nextends: ./base.yaml\n".as_slice()), ("base.yaml", b"version: 1\nlimits: {pids: [1]\n".as_slice())],
    "base.yaml",
    "limits",
    3,
    "did not find expected ','"
)]
#[case::parent_without_version(
    &[("a.yaml", b"version: 1\nextends: ./base.yaml\n".as_slice()), ("base.yaml", b"name: base\n".as_slice())],
    "base.yaml",
    "",
    1,
    "version: required"
)]
#[case::inherited_value_is_invalid(
    &[("a.yaml", b"version: 1\nextends: ./base.yaml\nname: child\n".as_slice()), ("base.yaml", b"version: 1\nname: base\nlimits:\n  memory: lots\n".as_slice())],
    "base.yaml",
    "limits.memory",
    4,
    "`lots` is not a size"
)]
#[case::appended_mount_keeps_its_own_index(
    &[("a.yaml", b"version: 1\nextends: ./base.yaml\nmounts:\n  - {hide: /srv}\n  - {tmpfs: /tmp, size: 1}\n".as_slice()), ("base.yaml", b"version: 1\nmounts:\n  - {hide: /home}\n  - {hide: /root}\n".as_slice())],
    "a.yaml",
    "mounts[1].size",
    5,
    "a tmpfs needs at least 4K"
)]
#[case::mount_appended_to_shipped_default(
    &[("a.yaml", b"version: 1\nextends: default\nmounts:\n  - tmpfs: /x\n  - bind: relative\n".as_slice())],
    "a.yaml",
    "mounts[1].bind",
    5,
    "is not an absolute path"
)]
#[case::child_overrides_with_bad_value(
    &[("a.yaml", b"version: 1\nextends: ./base.yaml\nlimits:\n  pids: 0\n".as_slice()), ("base.yaml", b"version: 1\nlimits: {memory: 1G, pids: 10}\n".as_slice())],
    "a.yaml",
    "limits.pids",
    4,
    "out of range"
)]
#[case::conflict_across_files(
    &[("a.yaml", b"version: 1\nextends: ./base.yaml\nseccomp:\n  deny: [ptrace]\n".as_slice()), ("base.yaml", b"version: 1\nseccomp: {allow: [ptrace]}\n".as_slice())],
    "a.yaml",
    "seccomp.deny[0]",
    4,
    "both allowed"
)]
#[case::grandparent_relative_to_parent(
    &[("a.yaml", b"version: 1\nextends: sub/b.yaml\n".as_slice()), ("sub/b.yaml", b"version: 1\nextends: ./c.yaml\n".as_slice()), ("sub/c.yaml", b"version: 1\n\nhostname: 'no good'\n".as_slice())],
    "sub/c.yaml",
    "hostname",
    3,
    "is not a host name"
)]
#[case::remove_in_the_middle_of_a_chain(
    &[("a.yaml", b"version: 1\nextends: ./b.yaml\n".as_slice()), ("b.yaml", b"version: 1\nextends: ./c.yaml\nremove:\n  landlock.tcp-bind: [81]\n".as_slice()), ("c.yaml", b"version: 1\nlandlock: {tcp-bind: [80]}\n".as_slice())],
    "b.yaml",
    "remove.landlock.tcp-bind[0]",
    4,
    "no inherited entry"
)]
fn invalid_files(
    #[case] files: &[(&str, &[u8])],
    #[case] file: &str,
    #[case] path: &str,
    #[case] line: usize,
    #[case] contains: &str,
) {
    let dir = Scratch::new("errors");
    for (name, bytes) in files {
        dir.write(name, bytes);
    }
    let entry = dir.path().join(files[0].0);
    let caller = support::rootless();
    let result = policy::load(&PolicySource::File(entry), &caller)
        .and_then(|loaded| kekkai::plan::compile(&loaded, &caller).map(|_| ()));
    let Err(Diagnostics(diags)) = result else {
        panic!("accepted: {files:?}");
    };
    assert_reported(&diags, file, path, line, contains);
}

#[test]
fn an_extends_chain_deeper_than_16_is_refused() {
    let dir = Scratch::new("deep");
    for i in 0..20 {
        dir.write(
            &format!("p{i}.yaml"),
            format!("version: 1\nextends: ./p{}.yaml\n", i + 1),
        );
    }
    dir.write("p20.yaml", "version: 1\n");
    let err = policy::load(
        &PolicySource::File(dir.path().join("p0.yaml")),
        &support::rootless(),
    )
    .unwrap_err();
    assert_reported(
        &err.0,
        ".yaml",
        "extends",
        2,
        "`extends` chain is deeper than 16",
    );
}

#[test]
fn a_file_above_the_size_limit_is_refused_at_its_start() {
    let dir = Scratch::new("big");
    let mut text = String::from("version: 1\n");
    while text.len() <= 1 << 20 {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    let path = dir.write("big.yaml", &text);
    let err = policy::load(&PolicySource::File(path), &support::rootless()).unwrap_err();
    let d = &err.0[0];
    assert!(d.message.contains("larger than"), "{err}");
}

#[test]
fn deep_nesting_is_refused_with_its_place() {
    let text = format!("version: 1\nx: {}1{}\n", "[".repeat(40), "]".repeat(40));
    let diags = diagnostics(&text, &support::rootless());
    let d = &diags[0];
    assert!(d.message.contains("nesting is deeper than"), "{d}");
    assert_eq!(d.pos.map(|p| p.line), Some(2), "{d}");
    // Measured on the text, before parsing: the place is the bracket one level too deep.
    assert_eq!(d.pos.map(|p| p.column), Some(36), "{d}");
    assert_eq!(d.path, "x", "{d}");
}

#[test]
fn an_alias_bomb_is_refused_before_it_expands() {
    let mut text = String::from("version: 1\na: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..9 {
        let prev = if i == 0 {
            "a".to_string()
        } else {
            format!("l{}", i - 1)
        };
        let refs = vec![format!("*{prev}"); 10].join(", ");
        text.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
    }
    let diags = diagnostics(&text, &support::rootless());
    let d = &diags[0];
    assert!(
        d.message.contains("aliases count each time they are used"),
        "{d}"
    );
    assert!(d.pos.is_some(), "{d}");
}

#[test]
fn every_error_is_reported_at_once() {
    let text = "version: 1\nhostname: 'a b'\nlimits: {pids: 0}\nseccomp: {allow: [nosuch]}\ncapabilities: {keep: [nope]}\n";
    let diags = diagnostics(text, &support::rootless());
    let paths: Vec<&str> = diags.iter().map(|d| d.path.as_str()).collect();
    for want in [
        "hostname",
        "limits.pids",
        "seccomp.allow[0]",
        "capabilities.keep[0]",
    ] {
        assert!(paths.contains(&want), "{want} missing from {paths:?}");
    }
}

#[test]
fn diagnostics_display_as_file_line_column_path_message() {
    let diags = diagnostics(
        "version: 1\nmounts:\n  - tmpfs: /tmp\n  - bind: usr\n",
        &support::rootless(),
    );
    assert_eq!(
        diags[0].to_string(),
        "policy.yaml:4:11: mounts[1].bind: `usr` is not an absolute path"
    );
}
