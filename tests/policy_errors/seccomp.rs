//! Invalid snippets for an unprivileged caller: seccomp, as-pid-1.

use rstest::rstest;

use super::invalid_snippet;

#[rstest]
// ── seccomp ──────────────────────────────────────────────────────────────────────────────────
#[case::seccomp_preset_typo(
    "version: 1\nseccomp: {preset: strictest}\n",
    "seccomp.preset",
    2,
    "(did you mean `strict`?)"
)]
#[case::seccomp_default_allow(
    "version: 1\nseccomp: {default-action: allow}\n",
    "seccomp.default-action",
    2,
    "would make the allowlist meaningless"
)]
#[case::seccomp_action_unknown(
    "version: 1\nseccomp: {default-action: explode}\n",
    "seccomp.default-action",
    2,
    "is not an action"
)]
#[case::seccomp_errno_name(
    "version: 1\nseccomp: {default-action: errno(EWHAT)}\n",
    "seccomp.default-action",
    2,
    "is not an errno name"
)]
#[case::seccomp_errno_zero(
    "version: 1\nseccomp: {default-action: errno(0)}\n",
    "seccomp.default-action",
    2,
    "out of range 1..4095"
)]
#[case::seccomp_unknown_syscall(
    "version: 1\nseccomp: {allow: [nosuchcall]}\n",
    "seccomp.allow[0]",
    2,
    "unknown syscall `nosuchcall`"
)]
#[case::seccomp_syscall_typo(
    "version: 1\nseccomp: {allow: [opne]}\n",
    "seccomp.allow[0]",
    2,
    "did you mean `open`?"
)]
#[case::seccomp_socketcall_is_not_x86_64(
    "version: 1\nseccomp: {deny: [socketcall]}\n",
    "seccomp.deny[0]",
    2,
    "(x86_64)"
)]
#[case::seccomp_rule_unknown_syscall(
    "version: 1\nseccomp:\n  deny:\n    - syscall: nosuch\n",
    "seccomp.deny[0].syscall",
    4,
    "unknown syscall `nosuch`"
)]
#[case::seccomp_allowed_and_denied(
    "version: 1\nseccomp:\n  allow: [ptrace]\n  deny: [ptrace]\n",
    "seccomp.deny[0]",
    4,
    "`ptrace` is both allowed (at seccomp.allow[0]) and denied"
)]
#[case::seccomp_rule_without_syscall(
    "version: 1\nseccomp: {deny: [{args: [{arg: 0, width: 32, eq: 1}]}]}\n",
    "seccomp.deny[0]",
    2,
    "a rule needs `syscall: NAME`"
)]
#[case::seccomp_rule_list(
    "version: 1\nseccomp: {deny: [[ptrace]]}\n",
    "seccomp.deny[0]",
    2,
    "expected a syscall name or a rule map"
)]
#[case::seccomp_rule_number(
    "version: 1\nseccomp: {allow: [5]}\n",
    "seccomp.allow[0]",
    2,
    "expected a syscall name or a rule map"
)]
#[case::seccomp_rule_unknown_key(
    "version: 1\nseccomp: {deny: [{syscall: ioctl, reason: x}]}\n",
    "seccomp.deny[0].reason",
    2,
    "unknown key `reason`"
)]
#[case::seccomp_deny_allows(
    "version: 1\nseccomp: {deny: [{syscall: read, action: allow}]}\n",
    "seccomp.deny[0].action",
    2,
    "a `deny` rule must deny"
)]
#[case::seccomp_allow_with_action(
    "version: 1\nseccomp: {allow: [{syscall: read, action: kill}]}\n",
    "seccomp.allow[0].action",
    2,
    "an `allow` rule can't have an action"
)]
#[case::seccomp_rule_bad_action(
    "version: 1\nseccomp: {deny: [{syscall: ioctl, action: explode}]}\n",
    "seccomp.deny[0].action",
    2,
    "is not an action"
)]
#[case::seccomp_args_empty(
    "version: 1\nseccomp: {deny: [{syscall: ioctl, args: []}]}\n",
    "seccomp.deny[0].args",
    2,
    "an empty `args` list"
)]
#[case::seccomp_arg_without_index(
    "version: 1\nseccomp: {deny: [{syscall: ioctl, args: [{width: 32, eq: 1}]}]}\n",
    "seccomp.deny[0].args[0]",
    2,
    "needs `arg: 0..5`"
)]
#[case::seccomp_arg_index(
    "version: 1\nseccomp: {deny: [{syscall: ioctl, args: [{arg: 7, width: 32, eq: 5}]}]}\n",
    "seccomp.deny[0].args[0].arg",
    2,
    "argument index 7 is out of range 0..5"
)]
#[case::seccomp_arg_without_width(
    "version: 1\nseccomp: {deny: [{syscall: ioctl, args: [{arg: 1, eq: TIOCSTI}]}]}\n",
    "seccomp.deny[0].args[0]",
    2,
    "explicit `width: 32` or `width: 64`"
)]
#[case::seccomp_arg_width_16(
    "version: 1\nseccomp: {deny: [{syscall: ioctl, args: [{arg: 1, width: 16, eq: 5}]}]}\n",
    "seccomp.deny[0].args[0].width",
    2,
    "use 32 or 64"
)]
#[case::seccomp_arg_width_block(
    "version: 1\nseccomp:\n  deny:\n    - syscall: ioctl\n      args:\n        - arg: 1\n          width: 32\n          eq: TIOCSTI\n        - arg: 2\n          width: 48\n          eq: 1\n",
    "seccomp.deny[0].args[1].width",
    10,
    "width 48"
)]
#[case::seccomp_arg_no_comparison(
    "version: 1\nseccomp: {deny: [{syscall: ioctl, args: [{arg: 1, width: 32}]}]}\n",
    "seccomp.deny[0].args[0]",
    2,
    "exactly one of eq, ne, lt, le, gt, ge"
)]
#[case::seccomp_arg_two_comparisons(
    "version: 1\nseccomp: {deny: [{syscall: ioctl, args: [{arg: 1, width: 32, eq: 1, ne: 2}]}]}\n",
    "seccomp.deny[0].args[0]",
    2,
    "exactly one of"
)]
#[case::seccomp_arg_unknown_constant(
    "version: 1\nseccomp: {deny: [{syscall: ioctl, args: [{arg: 1, width: 32, eq: TIOCFOO}]}]}\n",
    "seccomp.deny[0].args[0].eq",
    2,
    "`TIOCFOO` is not a number or a known constant"
)]
#[case::seccomp_arg_wider_than_32(
    "version: 1\nseccomp: {deny: [{syscall: ioctl, args: [{arg: 1, width: 32, eq: 0x100000000}]}]}\n",
    "seccomp.deny[0].args[0].eq",
    2,
    "does not fit in 32 bits"
)]
#[case::seccomp_mask_with_lt(
    "version: 1\nseccomp: {deny: [{syscall: ioctl, args: [{arg: 1, width: 32, lt: 5, mask: 3}]}]}\n",
    "seccomp.deny[0].args[0].mask",
    2,
    "`mask` works with `eq` only"
)]
#[case::seccomp_mask_unknown(
    "version: 1\nseccomp: {deny: [{syscall: clone, args: [{arg: 0, width: 64, eq: 0, mask: NOPE}]}]}\n",
    "seccomp.deny[0].args[0].mask",
    2,
    "`NOPE` is not a number or a known constant"
)]
#[case::seccomp_socket_family(
    "version: 1\nseccomp: {socket-families: [unix, netlnk]}\n",
    "seccomp.socket-families[1]",
    2,
    "unknown socket family `netlnk` (did you mean `netlink`?)"
)]
#[case::seccomp_socket_families_without_filter(
    "version: 1\nseccomp: {preset: none, socket-families: [unix]}\n",
    "seccomp.socket-families",
    2,
    "needs a preset that filters socket()"
)]
#[case::seccomp_key_typo(
    "version: 1\nseccomp: {dany: [ptrace]}\n",
    "seccomp.dany",
    2,
    "(did you mean `deny`?)"
)]
// ── as-pid-1 ─────────────────────────────────────────────────────────────────────────────────
#[case::as_pid_1_string("version: 1\nas-pid-1: yes\n", "as-pid-1", 2, "expected a boolean")]
#[case::as_pid_1_underscores(
    "version: 1\nas_pid_1: true\n",
    "as_pid_1",
    2,
    "unknown key `as_pid_1` (did you mean `as-pid-1`?)"
)]
fn invalid_snippets(
    #[case] text: &str,
    #[case] path: &str,
    #[case] line: usize,
    #[case] contains: &str,
) {
    invalid_snippet(text, path, line, contains);
}
