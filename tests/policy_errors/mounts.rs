//! Invalid snippets for an unprivileged caller: mounts, the working directory, the environment.

use rstest::rstest;

use super::invalid_snippet;

#[rstest]
// ── mounts ───────────────────────────────────────────────────────────────────────────────────
#[case::mount_without_kind(
    "version: 1\nmounts: [{}]\n",
    "mounts[0]",
    2,
    "a mount needs one of `bind`"
)]
#[case::mount_only_options(
    "version: 1\nmounts:\n  - tmpfs: /tmp\n  - writable: true\n",
    "mounts[1]",
    4,
    "a mount needs one of"
)]
#[case::mount_two_kinds(
    "version: 1\nmounts: [{bind: /usr, tmpfs: /tmp}]\n",
    "mounts[0].tmpfs",
    2,
    "exactly one kind"
)]
#[case::mount_to_on_tmpfs(
    "version: 1\nmounts: [{tmpfs: /tmp, to: /x}]\n",
    "mounts[0].to",
    2,
    "`to` does not apply to a `tmpfs` mount"
)]
#[case::mount_writable_on_tmpfs(
    "version: 1\nmounts: [{tmpfs: /tmp, writable: true}]\n",
    "mounts[0].writable",
    2,
    "`writable` does not apply"
)]
#[case::mount_optional_on_hide(
    "version: 1\nmounts: [{hide: /x, optional: true}]\n",
    "mounts[0].optional",
    2,
    "`optional` does not apply to a `hide` mount"
)]
#[case::mount_size_on_bind(
    "version: 1\nmounts: [{bind: /usr, size: 1M}]\n",
    "mounts[0].size",
    2,
    "`size` does not apply to a `bind` mount"
)]
#[case::mount_mode_on_bind(
    "version: 1\nmounts: [{bind: /usr, mode: '0755'}]\n",
    "mounts[0].mode",
    2,
    "`mode` does not apply"
)]
#[case::mount_exec_on_proc(
    "version: 1\nmounts: [{proc: /proc, exec: false}]\n",
    "mounts[0].exec",
    2,
    "`exec` does not apply to a `proc` mount"
)]
#[case::mount_exec_on_dev(
    "version: 1\nmounts: [{dev: /dev, exec: true}]\n",
    "mounts[0].exec",
    2,
    "`exec` does not apply to a `dev` mount"
)]
#[case::bind_relative(
    "version: 1\nmounts: [{bind: usr}]\n",
    "mounts[0].bind",
    2,
    "`usr` is not an absolute path"
)]
#[case::bind_dotdot(
    "version: 1\nmounts: [{bind: /usr/../etc}]\n",
    "mounts[0].bind",
    2,
    "contains `..`"
)]
#[case::bind_nul(
    "version: 1\nmounts: [{bind: \"/a\\0b\"}]\n",
    "mounts[0].bind",
    2,
    "NUL"
)]
#[case::bind_missing(
    "version: 1\nmounts: [{bind: /kekkai-no-such-dir}]\n",
    "mounts[0].bind",
    2,
    "add `optional: true`"
)]
#[case::bind_host_root(
    "version: 1\nmounts: [{bind: /, to: /host}]\n",
    "mounts[0].bind",
    2,
    "binding the host's `/`"
)]
#[case::bind_onto_root(
    "version: 1\nmounts: [{bind: /usr, to: /}]\n",
    "mounts[0].to",
    2,
    "can't mount over the root"
)]
#[case::bind_to_relative(
    "version: 1\nmounts: [{bind: /usr, to: usr}]\n",
    "mounts[0].to",
    2,
    "`usr` is not an absolute path"
)]
#[case::bind_device(
    "version: 1\nmounts: [{bind: /dev/null}]\n",
    "mounts[0].bind",
    2,
    "is a device node"
)]
#[case::bind_host_proc(
    "version: 1\nmounts: [{bind: /proc/self}]\n",
    "mounts[0].bind",
    2,
    "inside the host's /proc or /sys"
)]
#[case::bind_host_sys(
    "version: 1\nmounts: [{bind: /sys/kernel}]\n",
    "mounts[0].bind",
    2,
    "inside the host's /proc or /sys"
)]
#[case::bind_writable_string(
    "version: 1\nmounts: [{bind: /usr, writable: 'yes'}]\n",
    "mounts[0].writable",
    2,
    "expected a boolean"
)]
#[case::tmpfs_too_small(
    "version: 1\nmounts: [{tmpfs: /tmp, size: 1k}]\n",
    "mounts[0].size",
    2,
    "at least 4K"
)]
#[case::tmpfs_unlimited(
    "version: 1\nmounts: [{tmpfs: /tmp, size: unlimited}]\n",
    "mounts[0].size",
    2,
    "a tmpfs needs a finite size"
)]
#[case::tmpfs_unit(
    "version: 1\nmounts: [{tmpfs: /tmp, size: 12X}]\n",
    "mounts[0].size",
    2,
    "unknown unit `x`"
)]
#[case::tmpfs_mode_not_octal(
    "version: 1\nmounts: [{tmpfs: /tmp, mode: '999'}]\n",
    "mounts[0].mode",
    2,
    "is not an octal mode"
)]
#[case::tmpfs_mode_too_big(
    "version: 1\nmounts: [{tmpfs: /tmp, mode: '77777'}]\n",
    "mounts[0].mode",
    2,
    "larger than 7777"
)]
#[case::tmpfs_on_root(
    "version: 1\nmounts: [{tmpfs: /}]\n",
    "mounts[0].tmpfs",
    2,
    "can't mount over the root"
)]
#[case::hide_root(
    "version: 1\nmounts: [{hide: /}]\n",
    "mounts[0].hide",
    2,
    "can't mount over the root"
)]
#[case::proc_without_pid(
    "version: 1\nnamespaces: [user, mount]\nmounts: [{proc: /proc}]\n",
    "mounts[0].proc",
    3,
    "needs the `pid` namespace"
)]
#[case::mqueue_without_ipc(
    "version: 1\nnamespaces: [user, mount, pid]\nmounts: [{mqueue: /dev/mqueue}]\n",
    "mounts[0].mqueue",
    3,
    "needs the `ipc` namespace"
)]
#[case::dev_relative(
    "version: 1\nmounts: [{dev: dev}]\n",
    "mounts[0].dev",
    2,
    "is not an absolute path"
)]
#[case::mount_key_typo(
    "version: 1\nmounts: [{bind: /usr, writeable: true}]\n",
    "mounts[0].writeable",
    2,
    "unknown key `writeable` (did you mean `writable`?)"
)]
#[case::mounts_map(
    "version: 1\nmounts: {bind: /usr}\n",
    "mounts",
    2,
    "invalid type: map, expected a sequence"
)]
#[case::mount_scalar(
    "version: 1\nmounts: [/usr]\n",
    "mounts[0]",
    2,
    "expected a mapping of keys"
)]
#[case::mount_block_style(
    "version: 1\nmounts:\n  - hide: /home\n  - tmpfs: /tmp\n  - bind: relative/path\n    to: /x\n",
    "mounts[2].bind",
    5,
    "is not an absolute path"
)]
#[case::mount_block_unknown_key(
    "version: 1\nmounts:\n  - bind: /usr\n    to: /usr\n    writable: true\n    wat: 1\n",
    "mounts[0].wat",
    6,
    "unknown key `wat`"
)]
// ── cwd ──────────────────────────────────────────────────────────────────────────────────────
#[case::cwd_relative("version: 1\ncwd: work\n", "cwd", 2, "`work` is not an absolute path")]
#[case::cwd_dotdot("version: 1\ncwd: /a/../b\n", "cwd", 2, "contains `..`")]
#[case::cwd_list("version: 1\ncwd: [/]\n", "cwd", 2, "invalid type: sequence")]
// ── env ──────────────────────────────────────────────────────────────────────────────────────
#[case::env_keep_bad_name(
    "version: 1\nenv: {keep: [PATH, 'A=B']}\n",
    "env.keep[1]",
    2,
    "`A=B` is not a variable name"
)]
#[case::env_set_bad_name(
    "version: 1\nenv:\n  set:\n    'A=B': x\n",
    "env.set.A=B",
    4,
    "is not a variable name"
)]
#[case::env_set_nul(
    "version: 1\nenv: {set: {A: \"x\\0y\"}}\n",
    "env.set.A",
    2,
    "can't contain a NUL byte"
)]
#[case::env_set_list(
    "version: 1\nenv: {set: {A: [1]}}\n",
    "env.set.A",
    2,
    "invalid type: sequence"
)]
#[case::env_unset_empty(
    "version: 1\nenv: {unset: ['']}\n",
    "env.unset[0]",
    2,
    "is not a variable name"
)]
#[case::env_key_typo(
    "version: 1\nenv: {clean: true}\n",
    "env.clean",
    2,
    "unknown key `clean` (did you mean `clear`?)"
)]
fn invalid_snippets(
    #[case] text: &str,
    #[case] path: &str,
    #[case] line: usize,
    #[case] contains: &str,
) {
    invalid_snippet(text, path, line, contains);
}
