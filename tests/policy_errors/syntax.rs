//! Invalid snippets for an unprivileged caller: unknown keys at the top, variables, YAML itself.

use rstest::rstest;

use super::invalid_snippet;

#[rstest]
// ── unknown keys at the top ──────────────────────────────────────────────────────────────────
#[case::top_key_typo(
    "version: 1\nmountz: []\n",
    "mountz",
    2,
    "unknown key `mountz` (did you mean `mounts`?)"
)]
#[case::top_key_typo_seccomp(
    "version: 1\nname: x\nseccmp: {}\n",
    "seccmp",
    3,
    "(did you mean `seccomp`?)"
)]
#[case::top_key_number("version: 1\n1: x\n", "1", 2, "unknown key `1`")]
#[case::top_merge_key("version: 1\n<<: {name: x}\n", "<<", 2, "unknown key `<<`")]
// ── variables ────────────────────────────────────────────────────────────────────────────────
#[case::var_unknown("version: 1\ncwd: ${NOPE}\n", "cwd", 2, "unknown variable `${NOPE}`")]
#[case::var_env_unset(
    "version: 1\nmounts:\n  - bind: \"${env:KEKKAI_NOT_SET}\"\n",
    "mounts[0].bind",
    3,
    "environment variable KEKKAI_NOT_SET is not set"
)]
#[case::var_env_bad_name(
    "version: 1\nhostname: \"${env:A-B}\"\n",
    "hostname",
    2,
    "is not an environment variable name"
)]
#[case::var_unterminated(
    "version: 1\nhostname: \"${PWD\"\n",
    "hostname",
    2,
    "unterminated `${`"
)]
#[case::var_in_size(
    "version: 1\nlimits: {memory: \"${UID}\"}\n",
    "limits.memory",
    2,
    "must be at least"
)]
// ── YAML itself ──────────────────────────────────────────────────────────────────────────────
#[case::env_set_float_respelled(
    "version: 1\nenv: {set: {V: 1.10}}\n",
    "env.set.V",
    2,
    "YAML reads `1.10` as `1.1`: quote it"
)]
#[case::env_set_hex_respelled(
    "version: 1\nenv: {set: {V: 0x10}}\n",
    "env.set.V",
    2,
    "YAML reads `0x10` as `16`"
)]
#[case::env_set_null_respelled(
    "version: 1\nenv: {set: {V: ~}}\n",
    "env.set.V",
    2,
    "YAML reads `~` as `null`"
)]
#[case::hostname_respelled(
    "version: 1\nhostname: 1e3\n",
    "hostname",
    2,
    "YAML reads `1e3` as `1000.0`"
)]
#[case::yaml_tab_indent(
    "version: 1\nlimits:\n\tpids: 3\n",
    "limits",
    3,
    "cannot start any token"
)]
#[case::yaml_duplicate_key("version: 1\nname: a\nname: b\n", "", 3, "duplicate key `name`")]
#[case::yaml_nested_duplicate_key(
    "version: 1\nlimits:\n  pids: 1\n  pids: 2\n",
    "limits",
    4,
    "duplicate key `pids`"
)]
#[case::yaml_unclosed_flow(
    "version: 1\nmounts: [\n",
    "mounts",
    3,
    "did not find expected node content"
)]
#[case::yaml_unclosed_quote(
    "version: 1\nname: \"abc\n",
    "name",
    3,
    "found unexpected end of stream"
)]
#[case::yaml_sequence_key("version: 1\n? [a]\n: 1\n", "", 2, "a sequence can't be a key")]
#[case::yaml_tag(
    "version: 1\nmounts: [!bind /usr]\n",
    "mounts[0]",
    2,
    "YAML tags are not supported in a policy (found `!bind`)"
)]
// The value an alias stands for is reported where it is written (the anchor).
#[case::yaml_alias_to_wrong_section(
    "version: 1\nlimits: &x {pids: 1}\nrlimits: *x\n",
    "rlimits.pids",
    2,
    "unknown key `pids`"
)]
#[case::yaml_top_level_list(
    "- version: 1\n- name: x\n",
    "",
    1,
    "invalid type: sequence, expected a mapping of keys"
)]
#[case::yaml_top_level_scalar("hello\n", "", 1, "invalid type: string")]
#[case::yaml_top_level_null("~\n", "", 1, "invalid type: unit value")]
#[case::yaml_crlf(
    "version: 1\r\nname: x\r\nlimits: {pids: 0}\r\n",
    "limits.pids",
    3,
    "out of range"
)]
fn invalid_snippets(
    #[case] text: &str,
    #[case] path: &str,
    #[case] line: usize,
    #[case] contains: &str,
) {
    invalid_snippet(text, path, line, contains);
}
