//! Variables, and `extends` with `replace` / `remove` across files.

use super::*;

// ── variables ────────────────────────────────────────────────────────────────────────────────

fn var_caller() -> Caller {
    let mut c = support::rootless();
    c.env = vec![
        ("PATH".into(), "/usr/bin:/bin".into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("TRICKY".into(), "${HOME}".into()),
    ];
    c
}

#[rstest]
#[case::pwd("${PWD}/data", "/work/project/data")]
#[case::home("${HOME}", "/home/alice")]
#[case::ids("u${UID}g${GID}", "u1000g1000")]
#[case::env("${env:LANG}", "C.UTF-8")]
#[case::env_default_unused("${env:LANG:-C}", "C.UTF-8")]
#[case::env_default("${env:KEKKAI_UNSET:-fallback}", "fallback")]
#[case::env_empty_default("x${env:KEKKAI_UNSET:-}y", "xy")]
#[case::dollar_dollar("$${HOME}", "${HOME}")]
#[case::lone_dollar("costs 5$ or $b", "costs 5$ or $b")]
#[case::values_are_not_expanded_again("${env:TRICKY}", "${HOME}")]
fn variables(#[case] value: &str, #[case] want: &str) {
    let plan = compile_as(&format!("env: {{set: {{V: '{value}'}}}}"), &var_caller());
    let got = plan
        .env
        .vars
        .iter()
        .find(|(k, _)| k == "V")
        .map(|(_, v)| v.to_string_lossy().into_owned());
    assert_eq!(got.as_deref(), Some(want));
}

#[test]
fn variables_work_in_every_kind_of_value() {
    let plan = compile_as(
        "cwd: ${PWD}\nmounts:\n  - tmpfs: ${HOME}/scratch\n    size: \"${env:SIZE:-2M}\"\nlimits: {pids: 5, memory: \"${env:MEM:-256M}\"}\nlandlock: {read: [\"${HOME}\"]}\n",
        &var_caller(),
    );
    assert_eq!(*plan.cwd, PathBuf::from("/work/project"));
    assert_eq!(plan.mounts[0].target, PathBuf::from("/home/alice/scratch"));
    assert_eq!(plan.mounts[0].kind, tmpfs(2 << 20, 0o1777, true));
    assert_eq!(value(&plan.limits.memory), Some(256 << 20));
    assert!(
        plan.landlock
            .rules
            .iter()
            .any(|r| r.path == Path::new("/home/alice") && r.access == READ)
    );
}

#[test]
fn variables_follow_the_caller() {
    let root = support::with_pwd(support::root(), Path::new("/srv"));
    let plan = compile_as("cwd: ${PWD}\nenv: {set: {WHO: '${UID}:${GID}'}}", &root);
    assert_eq!(*plan.cwd, PathBuf::from("/srv"));
    assert!(plan.env.vars.contains(&("WHO".into(), "0:0".into())));
}

#[test]
fn the_description_is_prose_and_is_not_expanded() {
    let plan = compile("description: costs ${X} and $$5");
    assert_eq!(plan.description.as_deref(), Some("costs ${X} and $$5"));
}

// ── extends, replace, remove ─────────────────────────────────────────────────────────────────

const BASE: &str = "version: 1
name: base
hostname: base
mounts:
  - { hide: /home }
  - { tmpfs: /tmp }
limits: { memory: 1G, pids: 10 }
landlock: { read: [/usr], tcp-bind: [80, 8080] }
env: { set: { A: a, B: b } }
";

/// Writes `base.yaml` (BASE) and `child.yaml` (`version: 1`, `extends: ./base.yaml`, `body`)
/// and compiles the child.
fn child_of_base(body: &str) -> Plan {
    let dir = Scratch::new("extends");
    dir.write("base.yaml", BASE);
    let child = dir.write(
        "child.yaml",
        format!("version: 1\nextends: ./base.yaml\n{body}\n"),
    );
    compile_file(&child, &support::rootless())
}

fn mount_list(plan: &Plan) -> Vec<String> {
    plan.mounts
        .iter()
        .map(|m| format!("{} {}", m.kind.name(), m.target.display()))
        .collect()
}

#[rstest]
#[case::nothing_changes("", &["hide /home", "tmpfs /tmp"])]
#[case::lists_append("mounts: [{hide: /srv}]", &["hide /home", "tmpfs /tmp", "hide /srv"])]
#[case::empty_list_changes_nothing("mounts: []", &["hide /home", "tmpfs /tmp"])]
#[case::null_changes_nothing("mounts:", &["hide /home", "tmpfs /tmp"])]
#[case::replace_drops_the_parents_list("replace: [mounts]\nmounts: [{hide: /srv}]", &["hide /srv"])]
#[case::replace_without_a_new_value("replace: [mounts]", &[])]
#[case::remove_one_entry("remove: {mounts: [{hide: /home}]}", &["tmpfs /tmp"])]
#[case::remove_then_append("remove: {mounts: [{tmpfs: /tmp}]}\nmounts: [{tmpfs: /tmp, size: 1M}]", &["hide /home", "tmpfs /tmp"])]
fn extends_mounts(#[case] body: &str, #[case] want: &[&str]) {
    assert_eq!(mount_list(&child_of_base(body)), want);
}

#[test]
fn maps_merge_key_by_key_and_scalars_replace() {
    let plan = child_of_base(
        "name: child\nhostname: child\nlimits: {pids: 20, cpu: 1}\nenv: {set: {B: bee, C: c}}",
    );
    assert_eq!(plan.name, "child");
    assert_eq!(plan.hostname.as_ref().map(|h| h.as_str()), Some("child"));
    assert_eq!(
        plan.limits,
        LimitsPlan {
            memory: limit("memory", 1 << 30),
            pids: limit("pids", 20),
            cpu_millis: limit("cpu", 1000),
            ..Default::default()
        }
    );
    let set: Vec<(&str, &str)> = plan
        .env
        .vars
        .iter()
        .map(|(k, v)| (k.to_str().unwrap(), v.to_str().unwrap()))
        .collect();
    assert_eq!(
        set,
        [("A", "a"), ("B", "bee"), ("C", "c"), ("PATH", DEFAULT_PATH)]
    );
}

#[test]
fn an_empty_map_or_null_keeps_inherited_limits() {
    assert_eq!(
        value(&child_of_base("limits: {}").limits.memory),
        Some(1 << 30)
    );
    assert_eq!(value(&child_of_base("limits: ~").limits.pids), Some(10));
}

#[test]
fn replace_a_nested_key() {
    let plan = child_of_base("replace: [limits.memory, landlock.read]\nlandlock: {read: [/opt]}");
    assert_eq!(
        plan.limits,
        LimitsPlan {
            pids: limit("pids", 10),
            ..Default::default()
        }
    );
    let read: Vec<String> = plan
        .landlock
        .rules
        .iter()
        .filter(|r| r.from.starts_with("landlock.read"))
        .map(|r| r.path.display().to_string())
        .collect();
    assert_eq!(read, ["/opt"]);
}

#[test]
fn remove_matches_numbers_written_as_text() {
    let plan = child_of_base("remove: {landlock.tcp-bind: ['8080']}");
    assert_eq!(value(&plan.landlock.tcp_bind), Some(vec![80]));
}

#[test]
fn per_file_keys_are_not_merged() {
    let dir = Scratch::new("perfile");
    dir.write("base.yaml", BASE);
    let child = dir.write(
        "child.yaml",
        "version: 1\nextends: ./base.yaml\nreplace: [hostname]\n",
    );
    let loaded = load_file(&child, &support::rootless());
    assert_eq!(loaded.policy.version, Some(1));
    assert_eq!(loaded.policy.extends, None);
    assert_eq!(loaded.policy.replace, None);
    assert_eq!(loaded.policy.remove, None);
    assert_eq!(loaded.policy.hostname, None);
    // A name describes its own file: it is not inherited.
    assert_eq!(loaded.policy.name, None);
}

#[test]
fn a_chain_resolves_each_path_from_its_own_file() {
    let dir = Scratch::new("chain");
    let top = dir.write(
        "top.yaml",
        "version: 1\nname: top\nextends: sub/middle.yaml\nmounts: [{hide: /c}]\n",
    );
    dir.write(
        "sub/middle.yaml",
        "version: 1\nname: middle\nextends: ../base/bottom.yaml\nmounts: [{hide: /b}]\n",
    );
    dir.write(
        "base/bottom.yaml",
        "version: 1\nname: bottom\nhostname: bottom\nmounts: [{hide: /a}]\n",
    );
    let plan = compile_file(&top, &support::rootless());
    assert_eq!(plan.name, "top");
    assert_eq!(plan.hostname.as_ref().map(|h| h.as_str()), Some("bottom"));
    assert_eq!(mount_list(&plan), ["hide /a", "hide /b", "hide /c"]);
    let sources: Vec<String> = plan
        .sources
        .iter()
        .map(|s| {
            Path::new(s)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(sources, ["top.yaml", "middle.yaml", "bottom.yaml"]);
}

#[test]
fn a_file_may_extend_a_shipped_policy() {
    let dir = Scratch::new("shipped-child");
    let child = dir.write("mine.yaml", "version: 1\nname: mine\nextends: default\nmounts: [{tmpfs: /data}]\nlimits: {memory: 2G}\n");
    let caller = support::with_pwd(support::rootless(), dir.path());
    let plan = compile_file(&child, &caller);
    assert_eq!(
        plan.sources,
        vec![
            child.display().to_string(),
            "<shipped>/default.yaml".to_string()
        ]
    );
    assert_eq!(plan.name, "mine");
    assert_eq!(plan.mounts.len(), 11);
    assert_eq!(plan.mounts[10].target, PathBuf::from("/data"));
    assert_eq!(plan.mounts[10].key.to_string(), "mounts[10]");
    assert_eq!(value(&plan.limits.memory), Some(2 << 30));
    assert_eq!(value(&plan.limits.pids), Some(256));
}

#[test]
fn variables_in_a_parent_expand_for_the_same_caller() {
    let dir = Scratch::new("vars");
    dir.write(
        "base.yaml",
        "version: 1\ncwd: ${HOME}\nenv: {set: {WHO: '${UID}'}}\n",
    );
    let child = dir.write("child.yaml", "version: 1\nextends: ./base.yaml\n");
    let plan = compile_file(&child, &support::rootless());
    assert_eq!(*plan.cwd, PathBuf::from("/home/alice"));
    assert!(plan.env.vars.contains(&("WHO".into(), "1000".into())));
}
