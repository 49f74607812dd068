//! Landlock and seccomp.

use super::*;

// ── Landlock ─────────────────────────────────────────────────────────────────────────────────

fn rules(plan: &Plan) -> Vec<(String, u64)> {
    plan.landlock
        .rules
        .iter()
        .map(|r| (r.path.display().to_string(), r.access))
        .collect()
}

fn rule_list(want: &[(&str, u64)]) -> Vec<(String, u64)> {
    want.iter().map(|(p, a)| (p.to_string(), *a)).collect()
}

#[rstest]
#[case::root_only("", &[("/", READ | EXECUTE)])]
#[case::writable_root("rootfs: {writable: true}", &[("/", READ | EXECUTE | WRITE)])]
#[case::mounts_imply_rules(
    "mounts: [{hide: /home}, {tmpfs: /tmp}, {tmpfs: /x, exec: false}, {bind: /usr, to: /u}, {bind: /usr, to: /w, writable: true, exec: false}, {proc: /proc}, {dev: /dev}, {mqueue: /dev/mqueue}]",
    &[
        ("/", READ | EXECUTE),
        ("/tmp", READ | WRITE | EXECUTE),
        ("/x", READ | WRITE),
        ("/u", READ | EXECUTE),
        ("/w", READ | WRITE),
        ("/proc", READ | WRITE_FILE),
        ("/dev", DEVICE),
        ("/dev/shm", READ | WRITE),
        ("/dev/mqueue", READ | WRITE),
    ]
)]
#[case::lists(
    "landlock: {read: [/usr], write: [/var/tmp/], execute: [/opt]}",
    &[("/", READ_DIR), ("/usr", READ), ("/var/tmp", READ | WRITE), ("/opt", EXECUTE | READ_FILE)]
)]
fn landlock_rules(#[case] body: &str, #[case] want: &[(&str, u64)]) {
    let plan = compile(body);
    assert_eq!(rules(&plan), rule_list(want));
}

#[test]
fn landlock_ports_scopes_and_compat() {
    let plan = compile(
        "landlock: {tcp-bind: [8080, 80, 80], tcp-connect: [443], scope: [signal, abstract-unix, signal], compat: best-effort}",
    );
    let l = &plan.landlock;
    assert!(l.enabled);
    assert_eq!(l.compat, keyed(Compat::BestEffort, "landlock.compat"));
    assert_eq!(l.tcp_bind, Some(keyed(vec![80, 8080], "landlock.tcp-bind")));
    assert_eq!(
        l.tcp_connect,
        Some(keyed(vec![443], "landlock.tcp-connect"))
    );
    assert_eq!(
        l.scopes,
        keyed(vec![Scope::AbstractUnix, Scope::Signal], "landlock.scope")
    );
    assert_eq!(l.required_abi(), 6);
}

#[rstest]
#[case::defaults("", true, Compat::Hard, None, None, 1)]
#[case::ports("landlock: {tcp-connect: []}", true, Compat::Hard, None, Some(vec![]), 4)]
#[case::disabled("landlock: {enabled: false}", false, Compat::Hard, None, None, 1)]
fn landlock_switches(
    #[case] body: &str,
    #[case] enabled: bool,
    #[case] compat: Compat,
    #[case] bind: Option<Vec<u16>>,
    #[case] connect: Option<Vec<u16>>,
    #[case] abi: u32,
) {
    let l = compile(body).landlock;
    assert_eq!(
        (
            l.enabled,
            *l.compat,
            value(&l.tcp_bind),
            value(&l.tcp_connect),
            l.required_abi()
        ),
        (enabled, compat, bind, connect, abi)
    );
}

// ── seccomp ──────────────────────────────────────────────────────────────────────────────────

fn nr(name: &str) -> i64 {
    kekkai::plan::names::syscall_number(name).unwrap()
}

/// What the filter stack does with a syscall: `allow`, `allow-if` (argument conditions) or
/// `default ACTION` from the allowlist, then each deny filter that lists it (`ACTION` or
/// `ACTION if`).
fn verdict(plan: &Plan, name: &str) -> String {
    let s = &plan.seccomp;
    let n = nr(name);
    let mut parts = vec![match s.allowed.get(&n) {
        Some(Match::Always) => "allow".to_string(),
        Some(Match::When(_)) => "allow-if".to_string(),
        None => format!("default {}", s.default_action),
    }];
    for (action, rules) in &s.denied {
        match rules.get(&n) {
            Some(Match::Always) => parts.push(action.to_string()),
            Some(Match::When(_)) => parts.push(format!("{action} if")),
            None => {}
        }
    }
    parts.join(", ")
}

#[rstest]
#[case::default_allows_read("", "read", "allow")]
#[case::default_allows_execve("", "execve", "allow")]
#[case::default_denies_ptrace("", "ptrace", "default errno(EPERM)")]
#[case::default_denies_mount("", "mount", "default errno(EPERM)")]
#[case::default_denies_io_uring("", "io_uring_setup", "default errno(EPERM)")]
#[case::default_denies_bpf("", "bpf", "default errno(EPERM)")]
// clone3 is allowed by the allowlist so that the ENOSYS filter decides, whatever the default.
#[case::default_clone3_enosys("", "clone3", "allow, errno(ENOSYS)")]
#[case::default_conditions_ioctl("", "ioctl", "allow-if")]
#[case::default_conditions_clone("", "clone", "allow-if")]
#[case::default_conditions_socket("", "socket", "allow-if")]
#[case::default_conditions_personality("", "personality", "allow-if")]
#[case::strict_allows_read("seccomp: {preset: strict}", "read", "allow")]
#[case::strict_denies_connect("seccomp: {preset: strict}", "connect", "default errno(EPERM)")]
#[case::strict_denies_socket("seccomp: {preset: strict}", "socket", "default errno(EPERM)")]
#[case::log("seccomp: {preset: log}", "ptrace", "default log")]
#[case::none_allows_all("seccomp: {preset: none}", "ptrace", "default allow")]
#[case::none_as_a_denylist(
    "seccomp: {preset: none, deny: [ptrace]}",
    "ptrace",
    "default allow, errno(EPERM)"
)]
#[case::kill_by_default("seccomp: {default-action: kill}", "ptrace", "default kill")]
#[case::errno_by_number(
    "seccomp: {default-action: errno(38)}",
    "ptrace",
    "default errno(ENOSYS)"
)]
#[case::allow_by_name("seccomp: {allow: [ptrace]}", "ptrace", "allow")]
#[case::allow_lifts_enosys("seccomp: {allow: [clone3]}", "clone3", "allow")]
#[case::allow_with_args(
    "seccomp: {allow: [{syscall: ptrace, args: [{arg: 0, width: 64, eq: 0}]}]}",
    "ptrace",
    "allow-if"
)]
#[case::deny_removes_from_allowlist("seccomp: {deny: [write]}", "write", "default errno(EPERM)")]
#[case::deny_with_own_action(
    "seccomp: {deny: [{syscall: getpid, action: kill}]}",
    "getpid",
    "allow, kill"
)]
#[case::deny_with_args(
    "seccomp: {deny: [{syscall: ioctl, args: [{arg: 1, width: 32, eq: TIOCSETD}], action: errno(EPERM)}]}",
    "ioctl",
    "allow-if, errno(EPERM) if"
)]
#[case::deny_with_args_and_trap(
    "seccomp: {deny: [{syscall: kill, args: [{arg: 1, width: 32, eq: 9}], action: trap}]}",
    "kill",
    "allow, trap if"
)]
fn seccomp_verdicts(#[case] body: &str, #[case] syscall: &str, #[case] want: &str) {
    assert_eq!(verdict(&compile(body), syscall), want);
}

#[test]
fn the_design_notes_deny_rule_compiles_to_a_32_bit_comparison() {
    let plan = compile(
        "seccomp:\n  preset: default\n  default-action: errno(EPERM)\n  deny:\n    - { syscall: ioctl, args: [{ arg: 1, width: 32, eq: TIOCSTI }], action: errno(EPERM), why: CVE-2017-5226 }",
    );
    let s = &plan.seccomp;
    assert_eq!(s.preset, Preset::Default);
    assert_eq!(
        s.denied[&Action::Errno(1)][&nr("ioctl")],
        Match::When(vec![vec![Cond::u32(1, Op::Eq, 0x5412)]])
    );
    assert_eq!(
        s.reasons,
        vec![("ioctl".to_string(), "CVE-2017-5226".to_string())]
    );
}

#[rstest]
#[case::default("", Some(vec![1, 2, 10]), true)]
#[case::chosen("seccomp: {socket-families: [unix, AF_NETLINK, local]}", Some(vec![1, 16, 1]), false)]
#[case::chosen_route("seccomp: {socket-families: [unix, netlink-route]}", Some(vec![1]), true)]
#[case::strict_none("seccomp: {preset: strict}", Some(vec![]), false)]
#[case::no_filter("seccomp: {preset: none}", None, false)]
fn socket_families(#[case] body: &str, #[case] want: Option<Vec<u64>>, #[case] route: bool) {
    let plan = compile(body);
    assert_eq!(plan.seccomp.socket_families, want);
    assert_eq!(plan.seccomp.netlink_route, route);
    if let Some(families) = want.filter(|f| !f.is_empty()) {
        let mut sets: Vec<Vec<Cond>> = families
            .iter()
            .map(|f| vec![Cond::u32(0, Op::Eq, *f)])
            .collect();
        if route {
            // socket(AF_NETLINK, *, NETLINK_ROUTE), the protocol compared as 32 bits.
            sets.push(vec![Cond::u32(0, Op::Eq, 16), Cond::u32(2, Op::Eq, 0)]);
        }
        assert_eq!(plan.seccomp.allowed[&nr("socket")], Match::When(sets));
    }
}

/// One program answers for the whole stack of rules; its name lists what it holds, in the
/// order the kernel would have installed them as separate filters.
#[rstest]
#[case::default("", &["allowlist", "deny → errno(EPERM)", "deny → errno(ENOSYS)"])]
#[case::default_host_privileges_allowed("host-privileges: allow", &["allowlist", "deny → errno(ENOSYS)"])]
// The privilege rules stay without a preset, and bring the architecture checks.
#[case::none("seccomp: {preset: none}", &["deny → errno(EPERM)", "deny → errno(ENOSYS)"])]
#[case::none_host_privileges_allowed("seccomp: {preset: none}\nhost-privileges: allow", &[])]
#[case::none_with_rules("seccomp: {preset: none, deny: [ptrace]}", &["deny → errno(EPERM)", "deny → errno(ENOSYS)"])]
#[case::deny_actions_in_order(
    "seccomp: {allow: [clone3], deny: [{syscall: getpid, action: kill}, {syscall: getppid, action: errno(EACCES)}]}",
    &["allowlist", "deny → kill", "deny → errno(EPERM)", "deny → errno(EACCES)", "deny → errno(ENOSYS)"]
)]
fn filter_program(#[case] body: &str, #[case] want: &[&str]) {
    let plan = compile(body);
    let filters = &plan.seccomp.filters;
    if want.is_empty() {
        assert!(filters.is_empty(), "{:?}", filters.first().map(|f| &f.name));
        return;
    }
    assert_eq!(filters.len(), 1);
    let parts: Vec<&str> = filters[0].name.split("; ").collect();
    assert_eq!(parts.len(), want.len() + 1, "{parts:?}");
    for (part, prefix) in parts.iter().zip(want) {
        assert!(part.starts_with(prefix), "{parts:?}");
    }
    assert_eq!(parts.last(), Some(&"i386 and x32 calls kill the process"));
    for f in &plan.seccomp.filters {
        assert!(
            f.program.len() <= kekkai::plan::seccomp::MAX_INSTRUCTIONS,
            "{}",
            f.name
        );
    }
}
