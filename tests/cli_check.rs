//! The built `kekkai` binary: `check`, `explain --json` and `schema`, as a user runs them.
//!
//! `check` exits 0 for valid policies and 1 for invalid ones, printing `file:line:col: key.path:
//! message` and never a panic or a backtrace; a wrong command line exits 2. `explain --json`
//! lists the 13 launch steps in order. `schema` is a JSON Schema that accepts every shipped
//! policy and rejects unknown keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod support;

use std::path::Path;
use std::process::{Command, Output};

use rstest::rstest;
use serde_json::Value;

use common::TempDir;
use support::Who;

const BIN: &str = env!("CARGO_BIN_EXE_kekkai");

/// Runs kekkai in `dir` with a small, fixed environment (no RUST_BACKTRACE, so a panic would
/// show its hint).
fn kekkai(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir)
        .env("LANG", "C.UTF-8")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_no_panic(out: &Output) {
    let err = stderr(out);
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(!err.contains(bad), "`{bad}` in stderr:\n{err}");
    }
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// ── check ────────────────────────────────────────────────────────────────────────────────────

#[test]
fn check_accepts_every_shipped_policy_file() {
    // `build` runs as the owner of the current directory: not root's.
    let dir = TempDir::not_roots("cli-files");
    let files: Vec<String> = common::shipped_policy_files()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let args: Vec<&str> = std::iter::once("check")
        .chain(files.iter().map(String::as_str))
        .collect();
    let out = kekkai(dir.path(), &args);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", stderr(&out));
    for f in &files {
        assert!(
            stdout(&out).contains(&format!("ok: {f} (")),
            "{f} not reported ok:\n{}",
            stdout(&out)
        );
    }
}

#[test]
fn check_accepts_shipped_policies_by_name() {
    let dir = TempDir::not_roots("cli-names");
    let out = kekkai(
        dir.path(),
        &["check", "default", "untrusted", "build", "service"],
    );
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 4, "{}", stdout(&out));
}

/// Malformed files: (name, contents, line, column, key path, message fragment).
#[rstest]
#[case::not_utf8("bad-utf8.yaml", b"version: 1\nname: ab\xffc\n".as_slice(), 2, 9, "", "not valid UTF-8")]
#[case::tab("tab.yaml", b"version: 1\nlimits:\n\tpids: 3\n".as_slice(), 3, 1, "", "cannot start any token")]
#[case::duplicate_key("dup.yaml", b"version: 1\nname: a\nname: b\n".as_slice(), 3, 1, "", "duplicate key `name`")]
#[case::unknown_top_key("typo.yaml", b"version: 1\nmountz: []\n".as_slice(), 2, 1, "", "(did you mean `mounts`?)")]
#[case::unknown_nested_key(
    "nested.yaml",
    b"version: 1\nmounts:\n  - bind: /usr\n    writeable: true\n".as_slice(),
    4,
    5,
    "mounts[0]",
    "(did you mean `writable`?)"
)]
#[case::wrong_type("type.yaml", b"version: 1\nnamespaces: user\n".as_slice(), 2, 13, "namespaces", "expected a sequence")]
#[case::missing_version("nover.yaml", b"name: x\n".as_slice(), 1, 1, "", "version: required")]
#[case::bad_size("size.yaml", b"version: 1\nlimits:\n  memory: lots\n".as_slice(), 3, 11, "limits.memory", "is not a size")]
#[case::mount_in_a_list(
    "mounts.yaml",
    b"version: 1\nmounts:\n  - hide: /home\n  - tmpfs: /tmp\n  - bind: relative\n".as_slice(),
    5,
    11,
    "mounts[2].bind",
    "is not an absolute path"
)]
#[case::unknown_syscall(
    "sys.yaml",
    b"version: 1\nseccomp:\n  deny:\n    - {syscall: ptrcae, action: kill}\n".as_slice(),
    4,
    17,
    "seccomp.deny[0].syscall",
    "did you mean `ptrace`?"
)]
#[case::arg_width(
    "width.yaml",
    b"version: 1\nseccomp:\n  deny:\n    - syscall: ioctl\n      args: [{arg: 1, eq: TIOCSTI}]\n".as_slice(),
    5,
    14,
    "seccomp.deny[0].args[0]",
    "explicit `width"
)]
#[case::extends_unknown("ext.yaml", b"version: 1\nextends: defalt\n".as_slice(), 2, 10, "extends", "did you mean `default`?")]
#[case::huge_number("huge.yaml", b"version: 1\nlimits: {pids: 99999999999999999999999}\n".as_slice(), 2, 16, "limits.pids", "expected a whole number")]
#[case::top_level_list("list.yaml", b"- version: 1\n".as_slice(), 1, 1, "", "invalid type: sequence")]
#[case::unclosed_flow("flow.yaml", b"version: 1\nmounts: [\n".as_slice(), 3, 1, "", "did not find expected node content")]
#[case::deep_nesting("deep.yaml", format!("version: 1\nx: {}{}\n", "[".repeat(64), "]".repeat(64)).into_bytes().leak(), 2, 36, "x", "nesting is deeper")]
fn check_rejects_malformed_policies(
    #[case] name: &str,
    #[case] contents: &[u8],
    #[case] line: usize,
    #[case] column: usize,
    #[case] path: &str,
    #[case] contains: &str,
) {
    let dir = TempDir::new("cli-bad");
    dir.write(name, contents);
    let out = kekkai(dir.path(), &["check", name]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    let err = stderr(&out);
    let place = if path.is_empty() {
        format!("{name}:{line}:{column}: ")
    } else {
        format!("{name}:{line}:{column}: {path}")
    };
    let hit = err
        .lines()
        .any(|l| l.starts_with(&place) && l.contains(contains));
    assert!(
        hit,
        "wanted a line starting with `{place}` containing `{contains}`:\n{err}"
    );
    if !path.is_empty() && !path.ends_with(']') {
        // The key path is followed by a colon (a path ending in an index is cut above so
        // deeper indices still match).
        assert!(err.contains(&format!("{place}: ")), "{err}");
    }
}

/// Independent errors in different keys (and in different entries of one list) are all
/// reported in one pass, serde's first one first, each with its place and key path.
#[test]
fn check_reports_every_type_error_in_one_pass() {
    let dir = TempDir::new("cli-multi");
    dir.write(
        "multi.yaml",
        "version: 1\nnamespaces: user\nhostnme: x\nlimits: {memory: [1], pids: many}\nmounts:\n  - {bind: /a, writeable: true}\n  - {tmpfs: /t}\n  - {tmpfs: /u, size: [1]}\n",
    );
    let out = kekkai(dir.path(), &["check", "multi.yaml"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // `FILE:LINE:COL: KEY.PATH` of each error line.
    let places: Vec<String> = err
        .lines()
        .filter(|l| !l.starts_with("kekkai:"))
        .map(|l| l.splitn(3, ": ").take(2).collect::<Vec<_>>().join(": "))
        .collect();
    assert_eq!(
        places,
        [
            "multi.yaml:2:13: namespaces",
            "multi.yaml:3:1: hostnme",
            "multi.yaml:4:18: limits.memory",
            "multi.yaml:4:29: limits.pids",
            "multi.yaml:6:16: mounts[0].writeable",
            "multi.yaml:8:23: mounts[2].size",
        ],
        "{err}"
    );
}

#[test]
fn check_reports_errors_in_the_file_that_wrote_them() {
    let dir = TempDir::new("cli-parent");
    dir.write("base.yaml", "version: 1\nname: base\nlimits:\n  pids: 0\n");
    dir.write("child.yaml", "version: 1\nextends: ./base.yaml\n");
    let out = kekkai(dir.path(), &["check", "child.yaml"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("base.yaml:4:9: limits.pids: 0 is out of range"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_goes_on_after_a_bad_file_and_fails_at_the_end() {
    let dir = TempDir::new("cli-mixed");
    dir.write("good.yaml", "version: 1\nname: good\n");
    dir.write("bad.yaml", "version: 1\nhostname: 'not ok'\n");
    let out = kekkai(
        dir.path(),
        &["check", "bad.yaml", "good.yaml", "missing.yaml"],
    );
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("ok: good.yaml (good)"),
        "{}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("bad.yaml:2:11: hostname: "), "{err}");
    assert!(
        err.contains("missing.yaml: no such file or directory (ENOENT)"),
        "{err}"
    );
    assert!(err.contains("2 of 3 policies are invalid"), "{err}");
}

#[rstest]
#[case::check_without_files(&["check"])]
#[case::unknown_command(&["frobnicate"])]
#[case::unknown_flag(&["check", "--frob", "x.yaml"])]
#[case::run_without_a_command(&["run"])]
#[case::no_command(&[])]
fn usage_errors_exit_2(#[case] args: &[&str]) {
    let dir = TempDir::new("cli-usage");
    let out = kekkai(dir.path(), args);
    assert_no_panic(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
}

// ── options before the command ───────────────────────────────────────────────────────────

/// Runs `kekkai ARGS` with the launch steps traced, so a test can see that none started.
fn kekkai_traced(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir)
        .env("LANG", "C.UTF-8")
        .env("KEKKAI_TRACE_STEPS", "1")
        .output()
        .unwrap()
}

/// An option-looking word before the command never becomes the program: each of these is a
/// usage error (exit 2) before any launch step, and the message names the option and says
/// what to type instead (kekkai's spelling of a bubblewrap or podman option, clap's nearest
/// option for a typo, `--` for a program whose name starts with `-`).
#[rstest]
#[case::bwrap_die_with_parent(&["run", "--die-with-parent", "--", "true"], "`--die-with-parent`", "PR_SET_PDEATHSIG")]
#[case::bwrap_new_session(&["run", "--new-session", "true"], "`--new-session`", "--pty")]
#[case::bwrap_unshare_net(&["run", "--unshare-net", "true"], "`--unshare-net`", "--net none")]
#[case::bwrap_unshare_all(&["run", "--unshare-all", "true"], "`--unshare-all`", "namespaces:")]
#[case::bwrap_unshare_pid(&["run", "--unshare-pid", "true"], "`--unshare-pid`", "namespaces:")]
#[case::bwrap_share_net(&["run", "--share-net", "true"], "`--share-net`", "--net host")]
#[case::bwrap_dev_bind(&["run", "--dev-bind", "/dev", "/dev", "true"], "`--dev-bind`", "{ dev: /dev }")]
#[case::bwrap_ro_bind_try(&["run", "--ro-bind-try", "/x", "/x", "true"], "`--ro-bind-try`", "optional: true")]
#[case::bwrap_clearenv(&["run", "--clearenv", "true"], "`--clearenv`", "clear: true")]
#[case::bwrap_uid(&["run", "--uid", "0", "true"], "`--uid`", "identity:")]
#[case::bwrap_cap_add(&["run", "--cap-add", "ALL", "true"], "`--cap-add`", "capabilities:")]
#[case::bwrap_proc(&["run", "--proc", "/proc", "true"], "`--proc`", "{ proc: /proc }")]
#[case::bwrap_with_value(&["run", "--seccomp=3", "true"], "`--seccomp`", "seccomp:")]
#[case::bwrap_symlink(&["run", "--symlink", "a", "b", "true"], "`--symlink`", "policy file")]
#[case::podman_env(&["run", "-e", "A=b", "true"], "`-e`", "--setenv NAME=VALUE")]
#[case::podman_volume(&["run", "--volume", "/a:/b", "true"], "`--volume`", "--bind SRC:DST")]
#[case::bwrap_two_word_setenv(&["run", "--setenv", "FOO", "1", "true"], "'FOO'", "--setenv FOO=VALUE")]
#[case::bwrap_two_word_ro_bind(&["run", "--ro-bind", "/data", "/usr/bin/env", "FOO=1", "true"], "`--ro-bind /data /usr/bin/env`", "`--ro-bind /data:/usr/bin/env`")]
#[case::bwrap_two_word_bind_equals(&["run", "--pty", "--bind=/data", "/usr/bin/env"], "`--bind /data /usr/bin/env`", "put `--` before the command")]
#[case::typo(&["run", "--ro-bnd", "/a:/b", "true"], "'--ro-bnd'", "'--ro-bind'")]
#[case::unknown(&["run", "--frobnicate", "true"], "'--frobnicate'", "'-- --frobnicate'")]
#[case::unknown_short(&["run", "-x", "true"], "'-x'", "'-- -x'")]
#[case::unknown_after_other_options(&["run", "-p", "default", "--bind", "/a:/b", "--frob", "true"], "'--frob'", "'-- --frob'")]
#[case::bad_net(&["run", "--net", "wifi", "true"], "'wifi'", "`none` or `host`")]
#[case::empty_setenv_name(&["run", "--setenv", "=x", "true"], "'=x'", "a name before `=`")]
#[case::explain_too(&["explain", "--unshare-net"], "`--unshare-net`", "--net none")]
#[case::audit_too(&["audit", "--die-with-parent"], "`--die-with-parent`", "PR_SET_PDEATHSIG")]
fn unknown_options_are_usage_errors(
    #[case] args: &[&str],
    #[case] names: &str,
    #[case] suggests: &str,
) {
    let dir = TempDir::new("cli-unknown");
    let out = kekkai_traced(dir.path(), args);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        !err.contains("kekkai-step:"),
        "a launch step started:\n{err}"
    );
    assert!(err.contains(names), "`{names}` not named:\n{err}");
    assert!(err.contains(suggests), "`{suggests}` not suggested:\n{err}");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
}

/// Where the command starts is unambiguous, so these are not usage errors: the words after
/// `--`, the first word that is not an option (and everything after it, options or not), and a
/// bind without a destination before a program that is not an absolute path. `explain` reads
/// the same options without a command; a valid command line is shown by the launch steps it
/// starts (the sandbox itself is `run_without_double_dash_runs_the_command`'s business).
#[rstest]
#[case::double_dash(&["run", "--ro-bind", "/data", "--", "/usr/bin/env"])]
#[case::kekkai_spelling(&["run", "--ro-bind", "/data:/usr/bin/env", "/usr/bin/env"])]
#[case::relative_program(&["run", "--ro-bind", "/data", "env"])]
#[case::program_options(&["run", "env", "--die-with-parent", "-x"])]
#[case::dash_program(&["run", "--", "-x"])]
fn the_command_starts_where_the_user_meant(#[case] args: &[&str]) {
    let dir = TempDir::new("cli-command");
    let out = kekkai_traced(dir.path(), args);
    assert_no_panic(&out);
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(2), "stderr:\n{err}");
    assert!(err.contains("kekkai-step: plan"), "{err}");
}

/// `kekkai run PROGRAM ARGS...` needs no `--` (as bubblewrap and podman): the first word that
/// is not an option is the program, and the words after it are its own, options or not.
#[rstest]
#[case::root(Who::Root)]
#[case::rootless(Who::Rootless)]
fn run_without_double_dash_runs_the_command(#[case] who: Who) {
    if support::skip(support::unavailable(who)) {
        return;
    }
    let w = support::World::new("cli-nodash");
    let out = w.run(
        who,
        [
            "run",
            "--setenv",
            "GREETING=hi",
            "sh",
            "-c",
            "echo \"$GREETING $0 $1\"",
            "--die-with-parent",
            "-x",
        ],
    );
    support::assert_code(&out, 0);
    assert_eq!(support::stdout(&out), "hi --die-with-parent -x\n");
}

/// A mount is named the same way before the launch (compile errors) and at it (a failed
/// step): a flag as the user typed it, a policy's mount by its file, line and key path in that
/// file; never by its index in the merged list (`mounts[8]`).
#[rstest]
fn a_mount_is_named_as_written_before_and_at_launch(#[values(Who::Root, Who::Rootless)] who: Who) {
    if support::skip(support::unavailable(who)) {
        return;
    }
    let w = support::World::new("cli-origin");
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\nmounts:\n  - { tmpfs: /etc/hostname }\n",
    );
    let cases: [(&[&str], &str); 3] = [
        (
            &["run", "--ro-bind", "/nonexistent", "--", "true"],
            "command line: --ro-bind /nonexistent: /nonexistent: no such file or directory",
        ),
        (
            &["run", "--tmpfs", "/etc/hostname", "--", "true"],
            "; policy key: --tmpfs /etc/hostname",
        ),
        (
            &["run", "-p", "./p.yaml", "--", "true"],
            "; policy key: ./p.yaml:4:14: mounts[0].tmpfs",
        ),
    ];
    for (args, want) in cases {
        let out = w.run(who, args);
        support::assert_code(&out, 125);
        let err = support::stderr(&out);
        assert!(err.contains(want), "{args:?}: wanted `{want}`:\n{err}");
        assert!(!err.contains("mounts[8]"), "{args:?}:\n{err}");
    }
}

// ── explain ──────────────────────────────────────────────────────────────────────────────────

const STEPS: [&str; 13] = [
    "plan",
    "clone",
    "id-maps",
    "rootfs",
    "mounts",
    "pivot-root",
    "environment",
    "drop-privileges",
    "no-new-privs",
    "landlock",
    "close-fds",
    "seccomp",
    "exec",
];

fn explain_json(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["explain", "--json"];
    all.extend_from_slice(args);
    let out = kekkai(dir, &all);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[rstest]
#[case::embedded_default(&[])]
#[case::untrusted(&["-p", "untrusted"])]
#[case::service(&["-p", "service"])]
fn explain_json_lists_the_13_steps_in_order(#[case] args: &[&str]) {
    let dir = TempDir::new("cli-explain");
    let json = explain_json(dir.path(), args);
    let steps = json["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, STEPS);
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s["number"].as_u64(), Some(i as u64 + 1));
        let side = if i < 3 { "parent" } else { "child" };
        assert_eq!(s["side"].as_str(), Some(side), "step {}", names[i]);
        assert!(!s["why"].as_str().unwrap().is_empty());
        assert!(s["details"].is_array());
    }
}

#[test]
fn explain_json_shows_the_merged_policy() {
    let dir = TempDir::new("cli-merged");
    let json = explain_json(dir.path(), &["-p", "untrusted"]);
    assert_eq!(json["policy"]["name"], "untrusted");
    assert_eq!(
        json["policy"]["sources"],
        serde_json::json!(["<shipped>/untrusted.yaml", "<shipped>/default.yaml"])
    );
    // From default, not overridden by untrusted.
    assert_eq!(json["merged"]["hostname"], "kekkai");
    // From untrusted, with the variable expanded.
    let pwd = dir.path().display().to_string();
    let work = json["merged"]["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["to"] == "/work")
        .unwrap();
    assert_eq!(work["bind"].as_str(), Some(pwd.as_str()));
    assert_eq!(json["merged"]["seccomp"]["preset"], "strict");
}

#[test]
fn explain_of_an_invalid_policy_exits_1() {
    let dir = TempDir::new("cli-explain-bad");
    dir.write("bad.yaml", "version: 1\nrlimits: {nofile: 1}\n");
    let out = kekkai(dir.path(), &["explain", "-p", "bad.yaml"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("bad.yaml:2:19: rlimits.nofile: at least 3"),
        "{}",
        stderr(&out)
    );
}

// ── schema ───────────────────────────────────────────────────────────────────────────────────

fn schema() -> Value {
    let dir = TempDir::new("cli-schema");
    let out = kekkai(dir.path(), &["schema"]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn yaml_to_json(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap()
}

#[test]
fn schema_is_a_valid_json_schema() {
    let schema = schema();
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("not a valid JSON Schema: {e}");
    }
    jsonschema::validator_for(&schema).unwrap();
    assert_eq!(schema["required"], serde_json::json!(["version"]));
}

/// `host-privileges` and `identity.owner-of` are in the schema, documented, with their values.
#[test]
fn schema_knows_host_privileges() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    for text in [
        "{version: 1, host-privileges: deny}",
        "{version: 1, host-privileges: allow, identity: {owner-of: /srv/project}}",
    ] {
        assert!(validator.is_valid(&yaml_to_json(text)), "{text}");
    }
    let schema = schema();
    let doc = schema["properties"]["host-privileges"]["description"]
        .as_str()
        .unwrap();
    assert!(
        doc.starts_with("`deny` (default): nothing the program does"),
        "{doc}"
    );
    let values = schema["$defs"]["HostPrivileges"]["oneOf"].to_string();
    assert!(values.contains(r#""const":"deny""#) && values.contains(r#""const":"allow""#));
}

#[test]
fn schema_accepts_every_shipped_policy() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    for file in common::shipped_policy_files() {
        let json = yaml_to_json(&std::fs::read_to_string(&file).unwrap());
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{}:\n{}",
            file.display(),
            errors.join("\n")
        );
    }
}

/// Changes to the default policy the schema must reject, as (JSON pointer of the parent, key,
/// value).
#[rstest]
#[case::unknown_top_key("", "mountz", serde_json::json!([]))]
#[case::unknown_mount_key("/mounts/0", "writeable", serde_json::json!(true))]
#[case::unknown_limit("/limits", "memroy", serde_json::json!("1G"))]
#[case::unknown_rule_key("/seccomp", "dany", serde_json::json!(["ptrace"]))]
#[case::wrong_version("", "version", serde_json::json!(2))]
#[case::unknown_namespace("", "namespaces", serde_json::json!(["user", "nett"]))]
#[case::host_privileges_value("", "host-privileges", serde_json::json!("yes"))]
#[case::host_privileges_bool("", "host-privileges", serde_json::json!(true))]
#[case::identity_owner_of_number("/identity", "owner-of", serde_json::json!(5))]
#[case::network_value("", "network", serde_json::json!("internet"))]
#[case::bool_as_string("/rootfs", "writable", serde_json::json!("yes"))]
#[case::bad_size("/limits", "memory", serde_json::json!("lots"))]
#[case::bad_duration("", "timeout", serde_json::json!("5x"))]
fn schema_rejects(#[case] at: &str, #[case] key: &str, #[case] value: Value) {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let text = std::fs::read_to_string(manifest_dir().join("policies/default.yaml")).unwrap();
    let mut json = yaml_to_json(&text);
    assert!(validator.is_valid(&json));
    json.pointer_mut(at)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .insert(key.into(), value);
    assert!(!validator.is_valid(&json), "accepted {key} at {at:?}");
}

#[test]
fn schema_requires_a_version() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    assert!(!validator.is_valid(&yaml_to_json("name: x\n")));
    assert!(validator.is_valid(&yaml_to_json("version: 1\nname: x\n")));
}

/// The same rule for files with no node to point at: every message has a line and column.
#[rstest]
#[case::empty("empty.yaml", b"".as_slice(), "empty.yaml:1:1: ")]
#[case::only_a_comment("comment.yaml", b"# nothing\n".as_slice(), "comment.yaml:1:1: ")]
#[case::two_documents("two.yaml", b"version: 1\n---\nversion: 1\n".as_slice(), "two.yaml:2:")]
fn check_places_document_level_errors(
    #[case] name: &str,
    #[case] contents: &[u8],
    #[case] place: &str,
) {
    let dir = TempDir::new("cli-doc");
    dir.write(name, contents);
    let out = kekkai(dir.path(), &["check", name]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).lines().any(|l| l.starts_with(place)),
        "{}",
        stderr(&out)
    );
}

// ── export ───────────────────────────────────────────────────────────────────────────────────

#[rstest]
#[case("default")]
#[case("untrusted")]
#[case("build")]
#[case("service")]
fn export_systemd_writes_only_known_directives(#[case] name: &str) {
    let dir = TempDir::not_roots("export");
    let out = kekkai(dir.path(), &["export", "systemd", "-p", name]);
    assert_no_panic(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("# Generated by kekkai export systemd"),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| *l == "[Service]").count(),
        1,
        "{text}"
    );
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') || line == "[Service]" {
            continue;
        }
        let (key, _) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not a directive: {line}"));
        assert!(
            kekkai::export::DIRECTIVES.contains(&key),
            "unknown directive {key}"
        );
    }
}

/// A kept variable's value is the caller's business: it never lands in a unit file.
#[test]
fn export_never_writes_the_callers_environment() {
    let dir = TempDir::new("export-env");
    dir.write(
        "p.yaml",
        "version: 1\nenv:\n  keep: [API_TOKEN]\n  set: { MODE: prod }\n",
    );
    dir.write("open.yaml", "version: 1\nenv: { clear: false }\n");
    for file in ["p.yaml", "open.yaml"] {
        let out = Command::new(BIN)
            .args(["export", "systemd", "-p", file])
            .current_dir(dir.path())
            .env("API_TOKEN", "hunter2-secret")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(!text.contains("hunter2-secret"), "{file} leaked:\n{text}");
        if file == "p.yaml" {
            assert!(
                text.lines().any(|l| l == "PassEnvironment=API_TOKEN"),
                "{text}"
            );
            assert!(
                text.lines().any(|l| l == "Environment=\"MODE=prod\""),
                "{text}"
            );
        }
    }
}

#[test]
fn export_rejects_an_invalid_policy_like_check() {
    let dir = TempDir::new("export-bad");
    dir.write("bad.yaml", "version: 1\nhostnme: x\n");
    let out = kekkai(dir.path(), &["export", "systemd", "-p", "bad.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("bad.yaml:2:1: hostnme:"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

// ── manual pages ─────────────────────────────────────────────────────────────────────────────

/// Every command with a page of its own.
const COMMANDS: [&str; 10] = [
    "run",
    "check",
    "explain",
    "schema",
    "export",
    "cleanup",
    "policies",
    "completions",
    "man",
    "audit",
];

/// The long options `kekkai SUB --help` lists.
fn long_options(sub: Option<&str>) -> Vec<String> {
    let args: Vec<&str> = sub.into_iter().chain(["--help"]).collect();
    let out = kekkai(manifest_dir(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split([',', ' ']).find(|w| w.starts_with("--")))
        .map(|w| w.trim_end_matches(['.', ',']).to_owned())
        .collect()
}

/// A page as a reader sees it (groff, warnings on); `None` without groff outside CI.
fn render(page: &Path) -> Option<String> {
    let out = match Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-rLL=200n"])
        .arg(page)
        .env("LANG", "C.UTF-8")
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            support::skip(Some(format!(
                "groff: {e} (scripts/setup-test-env installs it)"
            )));
            return None;
        }
    };
    assert!(out.status.success(), "groff failed on {}", page.display());
    assert!(
        out.stderr.is_empty(),
        "groff warns about {}:\n{}",
        page.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    // Plain text: no overstrike, no hyphenation across lines.
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let plain: String = text
        .split('\u{8}')
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part
            } else {
                part.get(1..).unwrap_or("")
            }
        })
        .collect();
    Some(
        plain
            .replace("\u{2010}\n", "")
            .replace(['\u{2010}', '\u{2212}'], "-"),
    )
}

/// `kekkai man --out DIR` writes kekkai.1 and a page per command; each renders without a
/// warning and names every option of its command, its exit statuses, and the environment and
/// files it reads; `kekkai man COMMAND` prints the same page.
#[test]
fn man_pages_cover_every_command() {
    let dir = TempDir::new("man");
    let out = kekkai(dir.path(), &["man", "--out", "."]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut want: Vec<String> = std::iter::once("kekkai.1".to_owned())
        .chain(COMMANDS.iter().map(|c| format!("kekkai-{c}.1")))
        .collect();
    want.sort();
    let mut got: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(stdout(&out).lines().count(), want.len(), "{}", stdout(&out));

    let statuses: &[(&str, &[&str])] = &[
        ("kekkai", &["124", "125", "126", "127", "128+N"]),
        ("kekkai-run", &["124", "125", "126", "127", "128+N", "2"]),
        ("kekkai-check", &["0", "1", "2"]),
        ("kekkai-explain", &["0", "1", "2"]),
        ("kekkai-export", &["0", "1", "2"]),
        ("kekkai-audit", &["0", "1", "125", "2"]),
        ("kekkai-man", &["0", "1", "2"]),
    ];
    for name in
        std::iter::once("kekkai".to_owned()).chain(COMMANDS.iter().map(|c| format!("kekkai-{c}")))
    {
        let file = dir.path().join(format!("{name}.1"));
        let roff = std::fs::read_to_string(&file).unwrap();
        let sub = name.strip_prefix("kekkai-");
        if let Some(sub) = sub {
            let printed = kekkai(dir.path(), &["man", sub]);
            assert_eq!(printed.status.code(), Some(0), "{}", stderr(&printed));
            assert_eq!(
                stdout(&printed),
                roff,
                "`kekkai man {sub}` differs from {name}.1"
            );
        }
        let Some(text) = render(&file) else {
            return;
        };
        let upper = name.to_ascii_uppercase();
        assert!(text.starts_with(&format!("{upper}(1)")), "{name}:\n{text}");
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "SEE ALSO"] {
            assert!(
                text.contains(&format!("\n{section}\n")),
                "{name}: no {section}:\n{text}"
            );
        }
        for opt in long_options(sub) {
            assert!(
                text.contains(&opt),
                "{name} does not mention {opt}:\n{text}"
            );
        }
        if let Some((_, codes)) = statuses.iter().find(|(n, _)| *n == name) {
            let section = text.split("\nEXIT STATUS\n").nth(1).unwrap();
            let section = section.split("\nENVIRONMENT\n").next().unwrap();
            for code in *codes {
                assert!(
                    section
                        .lines()
                        .any(|l| l.trim_start().starts_with(&format!("{code} "))
                            || l.trim() == *code),
                    "{name}: exit status {code} missing:\n{section}"
                );
            }
        }
        if matches!(sub, None | Some("run")) {
            for thing in [
                "NOTIFY_SOCKET",
                "LISTEN_FDS",
                "XDG_CONFIG_HOME",
                "/etc/kekkai/policies",
            ] {
                assert!(text.contains(thing), "{name} does not mention {thing}");
            }
            assert!(
                text.contains("kekkai-audit(1)"),
                "{name}: no SEE ALSO to the others"
            );
        }
    }
}

#[test]
fn man_of_an_unknown_command_is_a_usage_error() {
    let dir = TempDir::new("man-unknown");
    let out = kekkai(dir.path(), &["man", "frobnicate"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("run, check"), "{}", stderr(&out));
    let out = kekkai(dir.path(), &["man", "--out", "missing-dir"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

/// A name planted in the output directory is replaced, never written through.
#[test]
fn man_out_replaces_planted_links() {
    let dir = TempDir::new("man-links");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "keep me\n").unwrap();
    std::fs::create_dir(dir.path().join("man1")).unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("man1/kekkai-run.1")).unwrap();
    std::fs::hard_link(&victim, dir.path().join("man1/kekkai-audit.1")).unwrap();
    let out = kekkai(dir.path(), &["man", "--out", "man1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me\n");
    for page in ["kekkai-run.1", "kekkai-audit.1"] {
        let meta = std::fs::symlink_metadata(dir.path().join("man1").join(page)).unwrap();
        assert!(meta.file_type().is_file(), "{page}");
        let text = std::fs::read_to_string(dir.path().join("man1").join(page)).unwrap();
        assert!(text.contains("\n.TH KEKKAI-"), "{page}");
    }
}

// ── finding policies by name ─────────────────────────────────────────────────────────────────

/// `./.kekkai/NAME.yaml` is used only when the caller could have written it alone.
#[test]
fn a_policy_found_by_name_must_be_trustworthy() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("lookup");
    let own = dir.path().join(".kekkai");
    std::fs::create_dir(&own).unwrap();
    std::fs::write(own.join("mine.yaml"), "version: 1\nname: mine\n").unwrap();
    std::fs::write(own.join("untrusted.yaml"), "version: 1\nname: planted\n").unwrap();
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        own.join("untrusted.yaml"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();

    let out = kekkai(dir.path(), &["explain", "-p", "mine", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("\"mine\""), "{}", stdout(&out));

    // The planted, world-writable file is passed over for the shipped policy.
    let out = kekkai(dir.path(), &["explain", "-p", "untrusted", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("planted"), "{}", stdout(&out));
    assert!(
        stderr(&out)
            .contains("passing over .kekkai/untrusted.yaml: the file is writable by everyone"),
        "{}",
        stderr(&out)
    );
    let out = kekkai(dir.path(), &["policies"]);
    assert!(stdout(&out).contains("passed over"), "{}", stdout(&out));

    // A bare word is a name even when a file of that name exists.
    std::fs::write(dir.path().join("default"), "version: 1\nname: file\n").unwrap();
    let out = kekkai(dir.path(), &["explain", "-p", "default", "--json"]);
    assert!(!stdout(&out).contains("\"file\""), "{}", stdout(&out));
    let out = kekkai(dir.path(), &["explain", "-p", "./default", "--json"]);
    assert!(stdout(&out).contains("\"file\""), "{}", stdout(&out));
}
