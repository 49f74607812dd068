//! Chosen calls for `host-privileges` and for combinations of rules, and the discrepancies found
//! between the documentation and an earlier compiler, each kept as a test.

use rstest::rstest;

use super::*;

/// The same answers under every preset: ordinary modes pass, setuid and setgid modes and device
/// nodes get EPERM, openat2 ENOSYS, i386 calls are killed.
#[rstest]
#[case::chmod_755(x("chmod", &[0, 0o755]), ALLOW)]
#[case::chmod_sticky(x("chmod", &[0, 0o1777]), ALLOW)]
#[case::chmod_4755(x("chmod", &[0, 0o4755]), EPERM)]
#[case::chmod_2755(x("chmod", &[0, 0o2755]), EPERM)]
#[case::chmod_6755(x("chmod", &[0, 0o6755]), EPERM)]
// umode_t: the kernel reads 16 bits, the filter 32; junk above either still finds the bit.
#[case::chmod_4755_high_junk(x("chmod", &[0, HIGH | 0o4755]), EPERM)]
#[case::chmod_755_high_junk(x("chmod", &[0, HIGH | 0x1_0000 | 0o755]), ALLOW)]
#[case::fchmod_4755(x("fchmod", &[3, 0o4755]), EPERM)]
#[case::fchmod_644(x("fchmod", &[3, 0o644]), ALLOW)]
#[case::fchmodat_2700(x("fchmodat", &[AT_FDCWD, 0, 0o2700]), EPERM)]
#[case::fchmodat_mode_is_arg_2(x("fchmodat", &[AT_FDCWD, 0o4755, 0o755]), ALLOW)]
#[case::fchmodat2_4755(x("fchmodat2", &[AT_FDCWD, 0, 0o4755, 0x100]), EPERM)]
#[case::open_creat_4755(x("open", &[0, O_CREAT | O_WRONLY, 0o4755]), EPERM)]
#[case::open_creat_644(x("open", &[0, O_CREAT | O_WRONLY, 0o644]), ALLOW)]
// Without O_CREAT or O_TMPFILE the kernel ignores the mode (Rust's std passes 0o666 anyway).
#[case::open_read_any_mode(x("open", &[0, 0, 0o4755]), ALLOW)]
#[case::open_tmpfile_4700(x("open", &[0, O_TMPFILE | O_WRONLY, 0o4700]), EPERM)]
#[case::openat_creat_4755(x("openat", &[AT_FDCWD, 0, O_CREAT | O_WRONLY, 0o4755]), EPERM)]
#[case::openat_creat_2755(x("openat", &[AT_FDCWD, 0, O_CREAT, 0o2755]), EPERM)]
#[case::openat_creat_flags_high_junk(x("openat", &[AT_FDCWD, 0, HIGH | O_CREAT, HIGH | 0o4755]), EPERM)]
#[case::openat_tmpfile_4700(x("openat", &[AT_FDCWD, 0, O_TMPFILE | O_WRONLY, 0o4700]), EPERM)]
#[case::openat_creat_644(x("openat", &[AT_FDCWD, 0, O_CREAT | O_WRONLY, 0o644]), ALLOW)]
#[case::openat_read_any_mode(x("openat", &[AT_FDCWD, 0, 0, 0o4755]), ALLOW)]
#[case::creat_4755(x("creat", &[0, 0o4755]), EPERM)]
#[case::creat_644(x("creat", &[0, 0o644]), ALLOW)]
#[case::mkdir_755(x("mkdir", &[0, 0o755]), ALLOW)]
#[case::mkdir_2775(x("mkdir", &[0, 0o2775]), EPERM)]
#[case::mkdirat_1777(x("mkdirat", &[AT_FDCWD, 0, 0o1777]), ALLOW)]
#[case::mkdirat_4755(x("mkdirat", &[AT_FDCWD, 0, 0o4755]), EPERM)]
#[case::mknod_fifo(x("mknod", &[0, S_IFIFO | 0o644, 0]), ALLOW)]
#[case::mknod_socket(x("mknod", &[0, S_IFSOCK | 0o644, 0]), ALLOW)]
#[case::mknod_regular(x("mknod", &[0, S_IFREG | 0o644, 0]), ALLOW)]
#[case::mknod_regular_setuid(x("mknod", &[0, S_IFREG | 0o4755, 0]), EPERM)]
#[case::mknod_char(x("mknod", &[0, S_IFCHR | 0o600, 0x103]), EPERM)]
#[case::mknod_block(x("mknod", &[0, S_IFBLK | 0o600, 0x800]), EPERM)]
#[case::mknodat_char(x("mknodat", &[AT_FDCWD, 0, S_IFCHR | 0o600, 0x103]), EPERM)]
#[case::mknodat_fifo(x("mknodat", &[AT_FDCWD, 0, S_IFIFO | 0o600, 0]), ALLOW)]
#[case::openat2(x("openat2", &[AT_FDCWD, 0, 0, 24]), ENOSYS)]
#[case::i386_chmod_setuid(i386_with(I386_CHMOD, &[0, 0o4755]), KILL)]
#[case::x32_chmod(x32("chmod"), KILL)]
fn host_privileges_deny(
    #[values("{}", "{preset: strict}", "{preset: log}", "{preset: none}")] yaml: &str,
    #[case] call: Data,
    #[case] want: Action,
) {
    expect(&compile_yaml(yaml), call, want);
}

/// io_uring opens files with modes in shared memory: `default` and `strict` deny it with their
/// default action; without an allowlist, host-privileges answers ENOSYS.
#[rstest]
#[case::default("{}", EPERM)]
#[case::strict("{preset: strict}", EPERM)]
#[case::log("{preset: log}", ENOSYS)]
#[case::none("{preset: none}", ENOSYS)]
fn host_privileges_and_io_uring(#[case] yaml: &str, #[case] want: Action) {
    expect(&compile_yaml(yaml), x("io_uring_setup", &[8, 0]), want);
}

#[rstest]
#[case::chmod_4755(x("chmod", &[0, 0o4755]), ALLOW)]
#[case::openat_creat_4755(x("openat", &[AT_FDCWD, 0, O_CREAT | O_WRONLY, 0o4755]), ALLOW)]
#[case::mknod_char(x("mknod", &[0, S_IFCHR | 0o600, 0x103]), ALLOW)]
#[case::openat2(x("openat2", &[AT_FDCWD, 0, 0, 24]), ALLOW)]
// The preset is still there: the architecture guard with it.
#[case::i386_chmod(i386_with(I386_CHMOD, &[0, 0o4755]), KILL)]
fn host_privileges_allow(#[case] call: Data, #[case] want: Action) {
    expect(&compile_yaml_with("{}", HostPrivileges::Allow), call, want);
}

/// A policy's own outright denial of a call keeps its own answer.
#[rstest]
#[case::openat2_eacces("{deny: [{syscall: openat2, action: errno(EACCES)}]}", x("openat2", &[]), EACCES)]
#[case::chmod_kill("{deny: [{syscall: chmod, action: kill}]}", x("chmod", &[0, 0o4755]), KILL)]
#[case::chmod_default("{deny: [chmod]}", x("chmod", &[0, 0o4755]), EPERM)]
#[case::chmod_allowed_outright_keeps_the_rule("{allow: [chmod]}", x("chmod", &[0, 0o4755]), EPERM)]
fn host_privileges_and_the_policys_rules(
    #[case] yaml: &str,
    #[case] call: Data,
    #[case] want: Action,
) {
    expect(&compile_yaml(yaml), call, want);
}

// ── chosen calls: rule combinations ──────────────────────────────────────────────────────────

const DENY_IOCTL_KILL: &str =
    "{deny: [{syscall: ioctl, args: [{arg: 1, width: 32, eq: TIOCSETD}], action: kill}]}";
const ALLOW_DENIED: &str =
    "{allow: [ptrace, clone3, {syscall: personality, args: [{arg: 0, width: 32, eq: 0x0040000}]}]}";
const UNIX_ONLY: &str = "{socket-families: [unix]}";
const KILL_BY_DEFAULT: &str = "{default-action: kill}";
const DENYLIST: &str = "{preset: none, deny: [ptrace, {syscall: kexec_load, action: kill}, {syscall: ioctl, args: [{arg: 1, width: 32, eq: TIOCSTI}], action: errno(EACCES)}]}";
const STACKED: &str = "{deny: [write, {syscall: getpid, action: kill}, {syscall: getppid, action: errno(EACCES)}, {syscall: kill, args: [{arg: 1, width: 32, eq: 9}], action: trap}, {syscall: clone3, action: kill}]}";
const REFERENCE: &str = "{allow: [ptrace, {syscall: personality, args: [{arg: 0, width: 32, eq: 0x0040000}]}], deny: [mknod, {syscall: clone, args: [{arg: 0, width: 64, mask: CLONE_NEWUSER, eq: CLONE_NEWUSER}], action: kill}, {syscall: socket, args: [{arg: 0, width: 32, eq: AF_NETLINK}], action: errno(EAFNOSUPPORT)}], socket-families: [unix, inet, inet6, netlink]}";
const STRICT_SOCKETS: &str = "{preset: strict, socket-families: [unix]}";
const ROUTE_ONLY: &str = "{socket-families: [netlink-route]}";
const STRICT_ROUTE: &str = "{preset: strict, socket-families: [NETLINK_ROUTE]}";

#[rstest]
#[case::kill_rule_tiocsetd(DENY_IOCTL_KILL, x("ioctl", &[0, TIOCSETD]), KILL)]
#[case::kill_rule_tiocsetd_high_junk(DENY_IOCTL_KILL, x("ioctl", &[0, HIGH | TIOCSETD]), KILL)]
#[case::kill_rule_leaves_tiocsti_eperm(DENY_IOCTL_KILL, x("ioctl", &[0, TIOCSTI]), EPERM)]
#[case::kill_rule_leaves_tcgets(DENY_IOCTL_KILL, x("ioctl", &[0, TCGETS]), ALLOW)]
#[case::allowed_ptrace(ALLOW_DENIED, x("ptrace", &[]), ALLOW)]
#[case::allowed_clone3(ALLOW_DENIED, x("clone3", &[]), ALLOW)]
#[case::allowed_personality(ALLOW_DENIED, x("personality", &[ADDR_NO_RANDOMIZE]), ALLOW)]
#[case::allowed_personality_keeps_others(ALLOW_DENIED, x("personality", &[READ_IMPLIES_EXEC]), EPERM)]
#[case::allowed_personality_keeps_the_preset(ALLOW_DENIED, x("personality", &[8]), ALLOW)]
#[case::allow_leaves_mount(ALLOW_DENIED, x("mount", &[]), EPERM)]
#[case::unix_only_unix(UNIX_ONLY, x("socket", &[AF_UNIX]), ALLOW)]
#[case::unix_only_inet(UNIX_ONLY, x("socket", &[AF_INET]), EPERM)]
#[case::unix_only_inet6(UNIX_ONLY, x("socket", &[AF_INET6]), EPERM)]
#[case::unix_only_high_junk(UNIX_ONLY, x("socket", &[HIGH | AF_UNIX]), ALLOW)]
#[case::unix_only_connect(UNIX_ONLY, x("connect", &[]), ALLOW)]
// A list of its own replaces the default set, netlink-route with the rest.
#[case::unix_only_netlink_route(UNIX_ONLY, x("socket", &[AF_NETLINK, 3, NETLINK_ROUTE]), EPERM)]
#[case::route_only_route(ROUTE_ONLY, x("socket", &[AF_NETLINK, 3, NETLINK_ROUTE]), ALLOW)]
#[case::route_only_audit(ROUTE_ONLY, x("socket", &[AF_NETLINK, 3, NETLINK_AUDIT]), EPERM)]
#[case::route_only_unix(ROUTE_ONLY, x("socket", &[AF_UNIX, 1]), EPERM)]
#[case::strict_route_route(STRICT_ROUTE, x("socket", &[AF_NETLINK, 3, NETLINK_ROUTE]), ALLOW)]
#[case::strict_route_sendmsg(STRICT_ROUTE, x("sendmsg", &[]), ALLOW)]
#[case::strict_route_unix(STRICT_ROUTE, x("socket", &[AF_UNIX, 1]), EPERM)]
#[case::no_sockets("{socket-families: []}", x("socket", &[AF_UNIX]), EPERM)]
#[case::kill_default_ptrace(KILL_BY_DEFAULT, x("ptrace", &[]), KILL)]
#[case::kill_default_unassigned(KILL_BY_DEFAULT, nr(400, &[]), KILL)]
#[case::kill_default_tiocsti(KILL_BY_DEFAULT, x("ioctl", &[0, TIOCSTI]), KILL)]
#[case::kill_default_newuser(KILL_BY_DEFAULT, x("clone", &[CLONE_NEWUSER]), KILL)]
#[case::kill_default_netlink(KILL_BY_DEFAULT, x("socket", &[AF_NETLINK, 3, NETLINK_AUDIT]), KILL)]
#[case::kill_default_netlink_route(KILL_BY_DEFAULT, x("socket", &[AF_NETLINK, 3, NETLINK_ROUTE]), ALLOW)]
#[case::kill_default_read(KILL_BY_DEFAULT, x("read", &[]), ALLOW)]
#[case::denylist_ptrace(DENYLIST, x("ptrace", &[]), EPERM)]
#[case::denylist_kexec(DENYLIST, x("kexec_load", &[]), KILL)]
#[case::denylist_tiocsti(DENYLIST, x("ioctl", &[0, HIGH | TIOCSTI]), EACCES)]
#[case::denylist_tcgets(DENYLIST, x("ioctl", &[0, TCGETS]), ALLOW)]
#[case::denylist_mount(DENYLIST, x("mount", &[]), ALLOW)]
#[case::denylist_unassigned(DENYLIST, nr(400, &[]), ALLOW)]
#[case::denylist_keeps_the_guard_x32(DENYLIST, x32("read"), KILL)]
#[case::denylist_keeps_the_guard_i386(DENYLIST, i386(3), KILL)]
#[case::stacked_write(STACKED, x("write", &[]), EPERM)]
#[case::stacked_getpid(STACKED, x("getpid", &[]), KILL)]
#[case::stacked_getppid(STACKED, x("getppid", &[]), EACCES)]
#[case::stacked_kill_9(STACKED, x("kill", &[1, 9]), TRAP)]
#[case::stacked_kill_15(STACKED, x("kill", &[1, 15]), ALLOW)]
#[case::stacked_clone3_kill_beats_enosys(STACKED, x("clone3", &[]), KILL)]
#[case::reference_ptrace(REFERENCE, x("ptrace", &[]), ALLOW)]
#[case::reference_mknod(REFERENCE, x("mknod", &[]), EPERM)]
#[case::reference_newuser(REFERENCE, x("clone", &[CLONE_NEWUSER]), KILL)]
#[case::reference_newuser_and_more(REFERENCE, x("clone", &[THREAD_FLAGS | CLONE_NEWUSER]), KILL)]
#[case::reference_newns(REFERENCE, x("clone", &[CLONE_NEWNS]), EPERM)]
#[case::reference_netlink(REFERENCE, x("socket", &[AF_NETLINK]), EAFNOSUPPORT)]
#[case::reference_packet(REFERENCE, x("socket", &[AF_PACKET]), EPERM)]
#[case::reference_inet(REFERENCE, x("socket", &[AF_INET]), ALLOW)]
#[case::reference_no_randomize(REFERENCE, x("personality", &[ADDR_NO_RANDOMIZE]), ALLOW)]
#[case::strict_sockets_unix(STRICT_SOCKETS, x("socket", &[AF_UNIX]), ALLOW)]
#[case::strict_sockets_inet(STRICT_SOCKETS, x("socket", &[AF_INET]), EPERM)]
// With `socket-families`, `strict` also allows the socket calls (connect, bind, ...), as
// docs/policy.md says.
#[case::strict_sockets_connect(STRICT_SOCKETS, x("connect", &[]), ALLOW)]
#[case::strict_sockets_shmget(STRICT_SOCKETS, x("shmget", &[]), EPERM)]
fn rule_combinations(#[case] yaml: &str, #[case] call: Data, #[case] want: Action) {
    expect(&compile_yaml(yaml), call, want);
}

// ── found discrepancies ──────────────────────────────────────────────────────────────────────

/// docs/policy.md: "`mask` — the argument is and-ed with the mask before the comparison", so
/// `{mask: 0xff, eq: 0x110}` can never hold. seccompiler masks the value too and compares
/// `(arg & 0xff) == 0x10`: this allow rule lets `ptrace(PTRACE_ATTACH = 0x10)` through although
/// the policy, read as documented, never allows ptrace.
/// kekkai refuses such a rule when compiling, naming the condition.
#[test]
fn a_masked_value_outside_its_mask_never_matches() {
    let spec: Seccomp = serde_yaml::from_str(
        "{allow: [{syscall: ptrace, args: [{arg: 0, width: 64, mask: 0xff, eq: 0x110}]}]}",
    )
    .unwrap();
    let mut diags = Diags::default();
    let plan = kekkai::plan::seccomp::compile(Some(&spec), HostPrivileges::Deny, &mut diags);
    assert!(plan.is_none() || !diags.is_empty());
    let errs = diags.into_pairs();
    assert!(
        errs.iter()
            .any(|(p, m)| p == "seccomp.allow[0].args[0].eq" && m.contains("outside the mask")),
        "{errs:?}"
    );
}

/// docs/policy.md: "`clone3`: fails with `ENOSYS` (the filter can't read its flags), so C
/// libraries fall back to `clone`" — glibc 2.34 and later try clone3 first for every
/// pthread_create and posix_spawn. The ENOSYS answer comes from its own filter, but the
/// allowlist filter doesn't list clone3 and so answers with the default action; with
/// `default-action: kill` (or kill-thread, trap) that answer is stricter than errno and the
/// kernel applies it: the first thread a program starts kills it instead of falling back.
#[rstest]
#[case::kill("{default-action: kill}")]
#[case::kill_thread("{default-action: kill-thread}")]
#[case::trap("{default-action: trap}")]
fn clone3_fails_with_enosys_whatever_the_default_action(#[case] yaml: &str) {
    expect(&compile_yaml(yaml), x("clone3", &[]), ENOSYS);
}
