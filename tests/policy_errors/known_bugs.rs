//! Known bugs: the tests say what should happen.

use kekkai::policy::{self, Diagnostics};
use rstest::rstest;

use super::{FILE, assert_reported, diagnostics};
use crate::support;

/// A number or boolean where the language wants text passes the first typed parse (YAML reads
/// `5` as a plain scalar) but fails the second one, after variable expansion, which reports the
/// document root at 1:1 instead of the key. `env: { set: { DEBUG: 1 } }` is the common case.
/// Either accepting the value as text or naming the key would be right.
#[rstest]
#[case::env_set_number("version: 1\nenv:\n  set: {DEBUG: 1}\n", "env.set.DEBUG", 3)]
#[case::env_set_bool("version: 1\nenv:\n  set: {VERBOSE: true}\n", "env.set.VERBOSE", 3)]
#[case::name_number("version: 1\nname: 5\n", "name", 2)]
#[case::hostname_number("version: 1\nhostname: 123\n", "hostname", 2)]
fn numbers_where_text_is_expected(#[case] text: &str, #[case] path: &str, #[case] line: usize) {
    let caller = support::rootless();
    let result = policy::load_str(FILE, text, &caller)
        .and_then(|loaded| kekkai::plan::compile(&loaded, &caller).map(|_| ()));
    if let Err(Diagnostics(diags)) = result {
        for d in &diags {
            assert_eq!(
                (d.path.as_str(), d.pos.map(|p| p.line)),
                (path, Some(line)),
                "{d}"
            );
        }
    }
}

/// A document without a single node has no position for "version: required"; `check` prints
/// `policy.yaml: version: required…` without a line and column.
#[rstest]
#[case::empty("")]
#[case::only_a_comment("# nothing here\n")]
fn an_empty_document_is_reported_at_its_start(#[case] text: &str) {
    let diags = diagnostics(text, &support::rootless());
    assert_reported(&diags, FILE, "", 1, "version: required");
}

#[test]
fn a_second_document_is_reported_where_it_starts() {
    let diags = diagnostics("version: 1\n---\nversion: 1\n", &support::rootless());
    assert_reported(&diags, FILE, "", 2, "more than one document");
}

/// Editors on some systems start UTF-8 files with a byte order mark; YAML allows one at the
/// start of a stream. kekkai reads it as "more than one document", without a position.
#[test]
fn a_byte_order_mark_is_accepted() {
    let caller = support::rootless();
    let loaded = policy::load_str(FILE, "\u{feff}version: 1\nname: bom\n", &caller).unwrap();
    assert_eq!(loaded.policy.name.as_deref(), Some("bom"));
}

/// Paths into a top-level sequence come out without a leading dot (`[0]`, as `KeyPath` writes
/// an index at the root).
#[test]
fn paths_into_a_top_level_list_have_no_leading_dot() {
    let diags = diagnostics("- [{a: 1, a: 2}]\n", &support::rootless());
    assert_eq!(diags[0].path, "[0][0]", "{}", diags[0]);
}

/// The launch's last step is `execve`, after the filter is installed (DESIGN: "execve must be
/// allowed by the filter"), and everything that can fail because of the policy should fail in
/// `compile`. A policy that denies `execve` outright can never start a program, yet compiles.
/// (Denying it only for some arguments stays legitimate.)
#[rstest]
#[case::by_name("version: 1\nseccomp: {deny: [execve]}\n", "seccomp.deny[0]", 2)]
#[case::with_an_action(
    "version: 1\nseccomp:\n  deny:\n    - {syscall: execve, action: kill}\n",
    "seccomp.deny[0]",
    4
)]
#[case::as_a_denylist(
    "version: 1\nseccomp: {preset: none, deny: [execve]}\n",
    "seccomp.deny[0]",
    2
)]
fn denying_execve_is_refused(#[case] text: &str, #[case] path: &str, #[case] line: usize) {
    let diags = diagnostics(text, &support::rootless());
    assert_reported(&diags, FILE, path, line, "execve");
}
