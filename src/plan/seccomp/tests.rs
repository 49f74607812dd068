//! Unit tests of `compile` as a whole: the section → the plan's rules and its stack of filters.
use rstest::rstest;

use super::presets;
use super::*;
use crate::plan::Diags;
use crate::policy::model::Seccomp;

pub(super) fn compile_yaml(yaml: &str) -> Result<SeccompPlan, Vec<(String, String)>> {
    compile_yaml_with(yaml, HostPrivileges::Deny)
}

pub(super) fn compile_yaml_with(
    yaml: &str,
    host: HostPrivileges,
) -> Result<SeccompPlan, Vec<(String, String)>> {
    let spec: Seccomp = serde_yaml::from_str(yaml).unwrap();
    let mut diags = Diags::default();
    let plan = compile(Some(&spec), host, &mut diags);
    if diags.is_empty() {
        Ok(plan.unwrap())
    } else {
        Err(diags.into_pairs())
    }
}

pub(super) fn nr(name: &str) -> i64 {
    names::syscall_number(name).unwrap()
}

#[rstest]
#[case("{}", "read", true)]
#[case("{}", "io_uring_setup", false)]
#[case("{}", "ptrace", false)]
#[case("{}", "mount", false)]
#[case("{preset: strict}", "read", true)]
#[case("{preset: strict}", "connect", false)]
#[case("{preset: strict}", "socket", false)]
#[case("{preset: strict}", "bind", false)]
#[case("{preset: strict}", "socketpair", true)]
#[case("{preset: strict}", "sendmsg", true)]
#[case("{preset: strict}", "recvfrom", true)]
#[case("{allow: [ptrace]}", "ptrace", true)]
#[case("{deny: [write]}", "write", false)]
#[case("{preset: empty}", "read", false)]
#[case("{preset: empty}", "socket", false)]
#[case("{preset: empty, allow: [read]}", "read", true)]
#[case("{preset: empty, allow: [read]}", "write", false)]
fn allowlist(#[case] yaml: &str, #[case] name: &str, #[case] allowed: bool) {
    let plan = compile_yaml(yaml).unwrap();
    assert_eq!(plan.allowed.contains_key(&nr(name)), allowed, "{name}");
}

#[test]
fn default_program_guards_allowlist_privileges_and_enosys() {
    let plan = compile_yaml("{}").unwrap();
    assert_eq!(plan.filters.len(), 1);
    let name = &plan.filters[0].name;
    assert!(
        name.starts_with("allowlist (296 syscalls, anything else: errno(EPERM))"),
        "{name}"
    );
    assert!(name.contains("deny → errno(EPERM)"), "{name}");
    assert!(
        name.ends_with("i386 and x32 calls kill the process"),
        "{name}"
    );
    assert_eq!(
        plan.denied.keys().copied().collect::<Vec<_>>(),
        vec![Action::Errno(1), Action::Errno(38)]
    );
    assert!(plan.instructions() < MAX_INSTRUCTIONS);
}

/// `host-privileges: deny`: every mode rule, whatever the preset; `allow` leaves them out.
#[rstest]
#[case::default("{}")]
#[case::strict("{preset: strict}")]
#[case::log("{preset: log}")]
#[case::none("{preset: none}")]
#[case::kill("{default-action: kill}")]
fn the_privilege_rules_hold_whatever_the_preset(#[case] yaml: &str) {
    let plan = compile_yaml(yaml).unwrap();
    let eperm = &plan.denied[&Action::errno(libc::EPERM)];
    for rule in presets::MODE_RULES {
        let Some(Match::When(sets)) = eperm.get(&nr(rule.syscall)) else {
            panic!("{yaml}: no mode rule for {}", rule.syscall);
        };
        let per_mode = if rule.devices { 4 } else { 2 };
        let factor = if rule.create_flags_arg.is_some() {
            2
        } else {
            1
        };
        assert_eq!(sets.len(), per_mode * factor, "{}", rule.syscall);
        for set in sets {
            assert!(set.iter().all(|c| c.width32), "{}: {set:?}", rule.syscall);
            assert!(set.iter().any(|c| c.arg == rule.mode_arg));
        }
    }
    let enosys = &plan.denied[&Action::errno(libc::ENOSYS)];
    assert_eq!(enosys.get(&nr("openat2")), Some(&Match::Always));
    // io_uring: denied outright by the allowlists, by this rule where there is none.
    let io_uring = enosys.get(&nr("io_uring_setup"));
    if plan.allowed.contains_key(&nr("io_uring_setup"))
        || matches!(plan.default_action, Action::Log | Action::Allow)
    {
        assert_eq!(io_uring, Some(&Match::Always), "{yaml}");
    } else {
        assert_eq!(io_uring, None, "{yaml}");
    }
    assert_eq!(plan.host_privileges, HostPrivileges::Deny);
    assert_eq!(plan.filters.len(), 1);
    assert!(
        plan.filters[0]
            .name
            .ends_with("i386 and x32 calls kill the process")
    );

    let open = compile_yaml_with(yaml, HostPrivileges::Allow).unwrap();
    for rule in presets::MODE_RULES {
        assert!(
            open.denied
                .values()
                .all(|d| !d.contains_key(&nr(rule.syscall))),
            "{yaml}: {} still denied",
            rule.syscall
        );
    }
    assert!(
        open.denied
            .values()
            .all(|d| !d.contains_key(&nr("openat2")))
    );
}

#[test]
fn open_and_openat_count_the_mode_only_when_creating() {
    let plan = compile_yaml("{}").unwrap();
    let Match::When(sets) = &plan.denied[&Action::Errno(1)][&nr("openat")] else {
        panic!("openat");
    };
    let flags: Vec<(u8, Op, u64)> = sets
        .iter()
        .map(|set| (set[0].arg, set[0].op, set[0].value))
        .collect();
    assert!(flags.contains(&(2, Op::MaskedEq(0o100), 0o100)), "O_CREAT");
    assert!(
        flags.contains(&(2, Op::MaskedEq(0o20_000_000), 0o20_000_000)),
        "O_TMPFILE"
    );
    assert!(sets.iter().all(|set| set[1].arg == 3));
}

/// A call the policy already denies outright keeps the policy's answer.
#[rstest]
#[case::openat2_eacces("{deny: [{syscall: openat2, action: errno(EACCES)}]}", "openat2")]
#[case::chmod_kill("{deny: [{syscall: chmod, action: kill}]}", "chmod")]
#[case::chmod_default_action("{deny: [chmod]}", "chmod")]
fn a_policys_outright_denial_wins(#[case] yaml: &str, #[case] call: &str) {
    let plan = compile_yaml(yaml).unwrap();
    for (action, rules) in &plan.denied {
        if let Some(m) = rules.get(&nr(call)) {
            assert_eq!(*m, Match::Always, "{action}");
            assert_ne!(*action, Action::errno(libc::ENOSYS));
        }
    }
}

/// Runs a classic BPF program on x86_64 seccomp data the way the kernel does. With `args`
/// None it is the kernel's action-cache emulation (kernel/seccomp.c,
/// `seccomp_is_const_allow`): only `nr` and `arch` are known, and reading anything else,

#[test]
fn none_without_rules_installs_nothing_once_host_privileges_are_allowed() {
    let open = compile_yaml_with("{preset: none}", HostPrivileges::Allow).unwrap();
    assert!(open.filters.is_empty());
    // The privilege rules, in a program that kills i386 calls so they can't pass around them.
    let plan = compile_yaml("{preset: none}").unwrap();
    assert_eq!(plan.filters.len(), 1);
    assert!(
        plan.filters[0]
            .name
            .ends_with("i386 and x32 calls kill the process")
    );
}

#[test]
fn none_with_deny_rules_is_a_denylist() {
    let plan = compile_yaml_with("{preset: none, deny: [ptrace]}", HostPrivileges::Allow).unwrap();
    assert_eq!(plan.filters.len(), 1);
    assert!(plan.denied[&Action::Errno(1)].contains_key(&nr("ptrace")));
}

#[test]
fn allowing_clone3_lifts_enosys() {
    let plan = compile_yaml("{allow: [clone3]}").unwrap();
    assert!(plan.denied.values().all(|d| !d.contains_key(&nr("clone3"))));
    assert_eq!(plan.allowed[&nr("clone3")], Match::Always);
}

#[test]
fn a_deny_rule_with_args_and_an_action_gets_its_own_filter() {
    let plan = compile_yaml(
        "{deny: [{syscall: ioctl, args: [{arg: 1, width: 32, eq: TIOCSETD}], action: kill, why: test}]}",
    )
    .unwrap();
    let kill = &plan.denied[&Action::KillProcess];
    assert_eq!(
        kill[&nr("ioctl")],
        Match::When(vec![vec![Cond::u32(1, Op::Eq, 0x5423)]])
    );
    assert_eq!(plan.reasons, vec![("ioctl".into(), "test".into())]);
}

#[test]
fn socket_families_replace_the_default_set() {
    let plan = compile_yaml("{socket-families: [unix]}").unwrap();
    assert_eq!(
        plan.allowed[&nr("socket")],
        Match::When(vec![vec![Cond::u32(0, Op::Eq, 1)]])
    );
}

#[rstest]
#[case("{allow: [nosuchcall]}", "seccomp.allow[0]", "unknown syscall")]
#[case("{allow: [opne]}", "seccomp.allow[0]", "did you mean `open`")]
#[case("{allow: [ptrace], deny: [ptrace]}", "seccomp.deny[0]", "both allowed")]
#[case("{default-action: allow}", "seccomp.default-action", "meaningless")]
#[case(
    "{default-action: errno(EWHAT)}",
    "seccomp.default-action",
    "errno name"
)]
#[case("{default-action: explode}", "seccomp.default-action", "not an action")]
#[case(
    "{deny: [{syscall: ioctl, args: [{arg: 1, eq: 5}]}]}",
    "seccomp.deny[0].args[0]",
    "explicit `width"
)]
#[case(
    "{deny: [{syscall: ioctl, args: [{arg: 7, width: 32, eq: 5}]}]}",
    "seccomp.deny[0].args[0].arg",
    "out of range"
)]
#[case(
    "{deny: [{syscall: ioctl, args: [{arg: 1, width: 16, eq: 5}]}]}",
    "seccomp.deny[0].args[0].width",
    "32 or 64"
)]
#[case(
    "{deny: [{syscall: ioctl, args: [{arg: 1, width: 32}]}]}",
    "seccomp.deny[0].args[0]",
    "exactly one"
)]
#[case(
    "{deny: [{syscall: ioctl, args: [{arg: 1, width: 32, eq: 1, ne: 2}]}]}",
    "seccomp.deny[0].args[0]",
    "exactly one"
)]
#[case(
    "{deny: [{syscall: ioctl, args: [{arg: 1, width: 32, eq: TIOCFOO}]}]}",
    "seccomp.deny[0].args[0].eq",
    "known constant"
)]
#[case(
    "{deny: [{syscall: ioctl, args: [{arg: 1, width: 32, eq: 0x100000000}]}]}",
    "seccomp.deny[0].args[0].eq",
    "32 bits"
)]
#[case(
    "{deny: [{syscall: ioctl, args: [{arg: 1, width: 32, lt: 5, mask: 3}]}]}",
    "seccomp.deny[0].args[0].mask",
    "`eq` only"
)]
#[case(
    "{deny: [{syscall: ioctl, args: []}]}",
    "seccomp.deny[0].args",
    "empty"
)]
#[case(
    "{deny: [{args: [{arg: 0, width: 32, eq: 1}]}]}",
    "seccomp.deny[0]",
    "needs `syscall"
)]
#[case(
    "{deny: [{syscall: read, action: allow}]}",
    "seccomp.deny[0].action",
    "must deny"
)]
#[case(
    "{deny: [{syscall: read, action: log}]}",
    "seccomp.deny[0].action",
    "must deny"
)]
#[case("{deny: [execve]}", "seccomp.deny[0]", "must stay allowed")]
#[case("{preset: none, allow: [read]}", "seccomp.allow", "already allowed")]
#[case(
    "{allow: [{syscall: read, action: kill}]}",
    "seccomp.allow[0].action",
    "can't have an action"
)]
#[case(
    "{socket-families: [unix, nope]}",
    "seccomp.socket-families[1]",
    "unknown socket family"
)]
#[case(
    "{preset: none, socket-families: [unix]}",
    "seccomp.socket-families",
    "needs a preset"
)]
#[case(
    "{allow: [read, openat2]}",
    "seccomp.allow[1]",
    "host-privileges: allow"
)]
#[case("{allow: [io_uring_setup]}", "seccomp.allow[0]", "fails with ENOSYS")]
fn rejects(#[case] yaml: &str, #[case] path: &str, #[case] contains: &str) {
    let errs = compile_yaml(yaml).unwrap_err();
    assert!(
        errs.iter().any(|(p, m)| p == path && m.contains(contains)),
        "{errs:?}"
    );
}

#[rstest]
#[case("errno(EPERM)", Action::Errno(1))]
#[case("errno(38)", Action::Errno(38))]
#[case("kill", Action::KillProcess)]
#[case("kill-thread", Action::KillThread)]
#[case("trap", Action::Trap)]
#[case("log", Action::Log)]
fn actions(#[case] text: &str, #[case] want: Action) {
    assert_eq!(Action::parse(text), Ok(want));
    assert_eq!(Action::parse(&want.to_string()), Ok(want));
}

/// A filter over the kernel's limit is refused by name and size, whichever generator found it
/// too large.
#[test]
fn a_filter_over_the_limit_is_named() {
    let rules: Vec<String> = (0..1500)
        .map(|i| format!("{{syscall: prctl, args: [{{arg: 1, width: 64, eq: {i}}}]}}"))
        .collect();
    let yaml = format!("{{preset: none, deny: [{}]}}", rules.join(", "));
    let errs = compile_yaml(&yaml).unwrap_err();
    let (path, msg) = &errs[0];
    assert_eq!(path, "seccomp");
    assert!(
        msg.starts_with("the filter \"deny → ")
            && msg.contains(
                " BPF instructions; the kernel's limit is 4096: use fewer argument rules"
            ),
        "{msg}"
    );
}

/// `empty`: only the rules, clone3 still answers ENOSYS, and kekkai may install its other
/// filters after the allowlist; socket() only for the families or rules given.
#[test]
fn empty_allows_only_its_rules_and_what_kekkai_needs() {
    let p = compile_yaml(
        "{preset: empty, allow: [{ syscall: socket, args: [{ arg: 0, width: 32, eq: AF_UNIX }] }]}",
    )
    .unwrap();
    let enosys = Action::Errno(libc::ENOSYS as u32);
    assert!(
        p.denied
            .get(&enosys)
            .is_some_and(|m| m.contains_key(&nr("clone3")))
    );
    assert!(matches!(
        p.allowed.get(&nr("seccomp")),
        Some(Match::When(_))
    ));
    assert!(matches!(p.allowed.get(&nr("socket")), Some(Match::When(w)) if w.len() == 1));
    let mut names: Vec<i64> = p.allowed.keys().copied().collect();
    names.sort_unstable();
    let mut want = vec![nr("clone3"), nr("seccomp"), nr("socket")];
    want.sort_unstable();
    assert_eq!(names, want);
}

/// `strict`'s socketpair: unix stream and seqpacket pairs only (a datagram pair's sendto
/// reaches named sockets); a non-empty `socket-families` gives back the whole socket group.
#[rstest]
#[case::strict("{preset: strict}", Some(2))]
#[case::strict_with_families("{preset: strict, socket-families: [unix]}", None)]
#[case::default("{}", None)]
fn socketpair_under_strict_is_unix_stream_and_seqpacket(
    #[case] yaml: &str,
    #[case] condition_sets: Option<usize>,
) {
    let plan = compile_yaml(yaml).unwrap();
    match (plan.allowed.get(&nr("socketpair")), condition_sets) {
        (Some(Match::Always), None) => {}
        (Some(Match::When(sets)), Some(n)) => {
            assert_eq!(sets.len(), n);
            for set in sets {
                assert!(set.iter().all(|c| c.width32), "{set:?}");
                assert!(set.contains(&Cond::u32(0, Op::Eq, 1)), "{set:?}");
            }
        }
        other => panic!("{yaml}: {other:?}"),
    }
}
