//! `kekkai run`: real sandboxes, as root and as an unprivileged user. Negative results are
//! asserted as exact errnos (reported by `kekkai-probe`) or signals, never as message text.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use rstest::rstest;
use support::{
    Mode, PidFds, Who, World, assert_code, code, descendants, need, run_as, stderr, stdout,
    top_level_overlays, unique,
};

fn probe(w: &World, who: Who, policy: &[&str], op: &[&str]) -> String {
    let mut args: Vec<String> = vec!["run".into()];
    args.extend(policy.iter().map(|s| s.to_string()));
    args.push("--".into());
    args.push(w.probe());
    args.extend(op.iter().map(|s| s.to_string()));
    let o = w.run(who, &args);
    assert_code(&o, 0);
    stdout(&o).trim().to_owned()
}

fn sh(w: &World, who: Who, script: &str) -> std::process::Output {
    w.run(who, ["run", "--", "sh", "-c", script])
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn pid_1_is_the_reaper_and_only_sandbox_pids_are_visible(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    let w = World::new("pids");
    let o = sh(
        &w,
        who,
        "tr '\\0' ' ' < /proc/1/cmdline; echo; echo $$; ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '",
    );
    assert_code(&o, 0);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    // PID 1 is the reaper, a copy of the launcher that forgot the launcher's command line.
    assert_eq!(lines[0], "kekkai ", "{out}");
    assert_eq!(lines[1], "2", "the program is PID 2");
    let pids: Vec<u32> = lines[2]
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(
        pids.iter().all(|p| *p < 20),
        "only the sandbox's own pids: {pids:?}"
    );
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_hostname_is_the_policys(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("host");
    let o = w.run(who, ["run", "--", "hostname"]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "kekkai");
    let o = w.run(who, ["run", "--hostname", "other", "--", "hostname"]);
    assert_eq!(stdout(&o).trim(), "other");
}

#[rstest]
#[case("/x")]
#[case("/usr/kekkai-test")]
#[case("/etc/kekkai-test")]
#[ignore = "needs root: run by scripts/test"]
fn the_root_is_read_only(#[values(Who::Root, Who::Rootless)] who: Who, #[case] path: &str) {
    need(who);
    let w = World::new("rofs");
    assert_eq!(probe(&w, who, &[], &["create", path]), "errno EROFS");
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_writable_root_forgets_its_changes(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("wroot");
    // Root inside writes /etc on the throw-away root; for a root caller that is host root,
    // which the policy must allow.
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\nrootfs: { writable: true }\nidentity: { uid: 0, gid: 0 }\nhost-privileges: allow\n",
    );
    let marker = "/etc/kekkai-writable-root-marker";
    let o = w.run(
        who,
        [
            "run",
            "-p",
            "./p.yaml",
            "--",
            "sh",
            "-c",
            &format!("echo hi > {marker} && cat {marker}"),
        ],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "hi");
    assert!(
        !std::path::Path::new(marker).exists(),
        "the write reached the host"
    );
    assert_eq!(
        probe(&w, who, &["-p", "./p.yaml"], &["read", marker]),
        "errno ENOENT"
    );
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn binds_are_read_only_unless_writable(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("binds");
    let data = w.dir.join("data");
    std::fs::create_dir(&data).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    let ro = format!("{}:/data", data.display());
    assert_eq!(
        probe(&w, who, &["--ro-bind", &ro], &["create", "/data/x"]),
        "errno EROFS"
    );
    assert!(probe(&w, who, &["--bind", &ro], &["create", "/data/x"]).starts_with("ok"));
    assert!(
        data.join("x").exists(),
        "a writable bind writes through to the host"
    );
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_host_file_shows_through_a_read_only_bind(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("hostname");
    let o = w.run(
        who,
        ["run", "--ro-bind", "/etc/hostname:/h", "--", "cat", "/h"],
    );
    assert_code(&o, 0);
    assert_eq!(
        stdout(&o),
        std::fs::read_to_string("/etc/hostname").unwrap()
    );
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn hide_hides_directories_and_files(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("hide");
    let secret_dir = w.dir.join("secrets");
    w.dir.write("secrets/key", "s3cret");
    let file = w.dir.write("token", "t0ken");
    w.dir.write(
        "p.yaml",
        format!(
            "version: 1\nextends: default\nmounts:\n  - {{ hide: {} }}\n  - {{ hide: {} }}\n",
            secret_dir.display(),
            file.display()
        ),
    );
    let o = w.run(
        who,
        [
            "run",
            "-p",
            "./p.yaml",
            "--",
            "sh",
            "-c",
            &format!("ls -A {}; cat {}", secret_dir.display(), file.display()),
        ],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "", "hidden content leaked");
    let key = format!("{}/key", secret_dir.display());
    assert_eq!(
        probe(&w, who, &["-p", "./p.yaml"], &["read", &key]),
        "errno ENOENT"
    );
    assert_eq!(
        probe(&w, who, &["-p", "./p.yaml"], &["create", &key]),
        "errno EROFS"
    );
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn proc_is_fresh(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("proc");
    let o = sh(&w, who, "ls /proc | grep -cE '^[0-9]+$'");
    assert_code(&o, 0);
    let n: u32 = stdout(&o).trim().parse().unwrap();
    assert!(n <= 5, "{n} processes visible");
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn dev_holds_only_the_minimal_nodes(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("dev");
    let o = w.run(who, ["run", "--", "ls", "-A", "/dev"]);
    assert_code(&o, 0);
    let mut names: Vec<String> = stdout(&o).split_whitespace().map(String::from).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout",
            "tty", "urandom", "zero"
        ]
    );
    for node in ["/dev/kvm", "/dev/mem", "/dev/kmsg", "/dev/vda", "/dev/sda"] {
        assert_eq!(
            probe(&w, who, &[], &["read", node]),
            "errno ENOENT",
            "{node}"
        );
    }
    let o = sh(
        &w,
        who,
        "echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c",
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "4\n4\n");
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_old_root_is_gone_and_the_host_mount_table_is_untouched(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    let w = World::new("mounts");
    let before = std::fs::read("/proc/self/mountinfo").unwrap();
    let o = w.run(who, ["run", "--", "cat", "/proc/self/mountinfo"]);
    assert_code(&o, 0);
    let after = std::fs::read("/proc/self/mountinfo").unwrap();
    assert_eq!(before, after, "the host's mount table changed");
    let inside = stdout(&o);
    let root_line = inside
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap();
    assert!(
        root_line.contains(" - tmpfs "),
        "the root is kekkai's skeleton: {root_line}"
    );
    for line in inside.lines() {
        let point = line.split(' ').nth(4).unwrap();
        assert!(
            !point.starts_with("/tmp/root") && !point.starts_with("/tmp/u/"),
            "staging visible: {line}"
        );
        let host_root =
            line.split(' ').nth(3) == Some("/") && point == "/" && !line.contains(" - tmpfs ");
        assert!(!host_root, "the host's root is mounted: {line}");
    }
}

#[rstest]
#[case(&["true"], 0)]
#[case(&["sh", "-c", "exit 42"], 42)]
#[case(&["sh", "-c", "kill -9 $$"], 128 + 9)]
#[case(&["sh", "-c", "kill -s RTMIN $$"], 128 + 34)]
#[case(&["./not-executable"], 126)]
#[case(&["no-such-program-anywhere"], 127)]
#[case(&["./no-such-file"], 127)]
#[ignore = "needs root: run by scripts/test"]
fn exit_codes_pass_through(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[case] cmd: &[&str],
    #[case] want: i32,
) {
    need(who);
    let w = World::new("exit");
    w.dir.write("not-executable", "#!/bin/sh\necho no\n");
    let mut args = vec!["run", "--"];
    args.extend_from_slice(cmd);
    let o = w.run(who, &args);
    assert_code(&o, want);
}

/// A policy whose seccomp filter refuses the reaper's `clone(CLONE_VM | CLONE_VFORK)`: the
/// program's process is forked instead.
const NO_VFORK: &str = "seccomp:\n  deny:\n    - { syscall: clone, args: [{ arg: 0, width: 64, mask: 0x4000, eq: 0x4000 }], action: errno(EPERM), why: no vfork }\n";

/// [`NO_VFORK`], with the clone killing the caller: the reaper must not try it.
const NO_VFORK_KILL: &str = "seccomp:\n  deny:\n    - { syscall: clone, args: [{ arg: 0, width: 64, mask: 0x4000, eq: 0x4000 }], action: kill, why: no vfork }\n";

/// The program's PATH search, as a shell does it, whether the reaper starts the program's
/// process with `clone(CLONE_VM | CLONE_VFORK)` or (the clone refused) forks it: an
/// executable found later on PATH runs; without one, a file that can't be run (or a
/// directory) makes 126 rather than 127; the environment reaches the program.
#[rstest]
#[case::a_later_executable_runs("a:b", 7)]
#[case::a_directory_is_passed_over("d:b", 7)]
#[case::not_executable_beats_not_found("none:a", 126)]
#[case::a_directory_beats_not_found("d:none", 126)]
#[case::not_found("none:x", 127)]
#[ignore = "needs root: run by scripts/test"]
fn the_path_search_and_its_failures(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values("", NO_VFORK, NO_VFORK_KILL)] policy: &str,
    #[case] path: &str,
    #[case] want: i32,
) {
    use std::os::unix::fs::PermissionsExt;
    need(who);
    let w = World::new("pathsearch");
    w.dir
        .write("p.yaml", format!("version: 1\nextends: default\n{policy}"));
    w.dir.write("a/prog", "#!/bin/sh\nexit 3\n");
    let b = w.dir.write(
        "b/prog",
        "#!/bin/sh\ntest \"$MARK\" = here && exit 7; exit 9\n",
    );
    std::fs::set_permissions(b, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(w.dir.join("d/prog")).unwrap();
    let dirs: Vec<String> = path
        .split(':')
        .map(|d| w.dir.join(d).display().to_string())
        .collect();
    let o = w.run(
        who,
        [
            "run",
            "-p",
            "./p.yaml",
            "--setenv",
            &format!("PATH={}", dirs.join(":")),
            "--setenv",
            "MARK=here",
            "--",
            "prog",
        ],
    );
    assert_code(&o, want);
}

/// With the reaper's vfork refused by the policy (with an errno, or by killing the caller), the
/// forked program's exit status and its signals still pass through.
#[rstest]
#[case(&["sh", "-c", "exit 42"], 42)]
#[case(&["sh", "-c", "kill -9 $$"], 128 + 9)]
#[case(&["./not-executable"], 126)]
#[ignore = "needs root: run by scripts/test"]
fn the_program_is_forked_when_the_policy_refuses_vfork(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values(NO_VFORK, NO_VFORK_KILL)] policy: &str,
    #[case] cmd: &[&str],
    #[case] want: i32,
) {
    need(who);
    let w = World::new("novfork");
    w.dir
        .write("p.yaml", format!("version: 1\nextends: default\n{policy}"));
    w.dir.write("not-executable", "#!/bin/sh\necho no\n");
    let mut args = vec!["run", "-p", "./p.yaml", "--"];
    args.extend_from_slice(cmd);
    assert_code(&w.run(who, &args), want);
}

/// The sandbox's own directories are 0755 whatever the caller's umask: under systemd's
/// `UMask=0077` the skeleton's `/sys` and the directories made on the way to a policy mount
/// would be 0700 and root's, closed to the program's user (`ls /sys`: EACCES). The program
/// still gets the caller's umask, as a plain exec would give it.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_strict_umask_closes_none_of_the_sandboxs_directories_and_reaches_the_program(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    let w = World::new("umask");
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\nmounts:\n  - { tmpfs: /opt/made/for/it }\n",
    );
    let o = w
        .command_with_umask(who, 0o077)
        .args(["run", "-p", "./p.yaml", "--", "sh", "-c"])
        .arg("stat -c '%a %n' /sys /opt/made /opt/made/for /opt/made/for/it && ls -A /sys && umask")
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert_eq!(
        stdout(&o),
        "755 /sys\n755 /opt/made\n755 /opt/made/for\n1777 /opt/made/for/it\n0077\n"
    );
}

/// The program starts with the dispositions a plain exec by the caller would give it: what the
/// caller ignored (`nohup`'s SIGHUP, a background job's SIGINT, systemd's SIGPIPE, SIGCHLD) is
/// ignored, everything else is at its default, though the reaper handles most of them and the
/// Rust runtime ignores SIGPIPE: under the reaper (its process cloned in the reaper's memory,
/// or forked where the policy refuses that clone) and as PID 1. `SigIgn` in
/// /proc/self/status has bit N-1 for signal N.
#[rstest]
#[case::none(&[], 0x0)]
#[case::nohup_and_more(&["HUP", "INT", "PIPE", "USR1"], 0x1203)]
#[case::background_job(&["INT", "QUIT"], 0x6)]
#[case::sigchld(&["CHLD"], 0x1_0000)]
#[case::real_time(&["RTMIN", "RTMAX"], (1 << (libc::SIGRTMIN() - 1)) | (1 << (libc::SIGRTMAX() - 1)))]
#[ignore = "needs root: run by scripts/test"]
fn the_program_inherits_the_callers_ignored_signals(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values("", NO_VFORK, "as-pid-1: true\n")] policy: &str,
    #[case] ignored: &[&str],
    #[case] want: u64,
) {
    need(who);
    let w = World::new("sigign");
    w.dir
        .write("p.yaml", format!("version: 1\nextends: default\n{policy}"));
    let o = w
        .command_ignoring(who, ignored)
        .args([
            "run",
            "-p",
            "./p.yaml",
            "--",
            "grep",
            "^SigIgn:",
            "/proc/self/status",
        ])
        .output()
        .unwrap();
    assert_code(&o, 0);
    let out = stdout(&o);
    let mask = out.trim().trim_start_matches("SigIgn:").trim();
    // glibc's own signals 32 and 33, which no program of it can use and which glibc's
    // posix_spawn leaves ignored in this test's children, are not compared.
    let glibcs = (1u64 << 31) | (1 << 32);
    assert_eq!(
        u64::from_str_radix(mask, 16).unwrap() & !glibcs,
        want,
        "{ignored:?}: {out}"
    );
}

/// A caller that ignores SIGCHLD (its children are reaped at once, without a SIGCHLD) still
/// gets the program's exit status and its signal: the supervisor waits with SIGCHLD at its
/// default, the program still starts with it ignored (above).
#[rstest]
#[case(&["sh", "-c", "exit 42"], 42)]
#[case(&["sh", "-c", "kill -9 $$"], 128 + 9)]
#[case(&["./not-there"], 127)]
#[ignore = "needs root: run by scripts/test"]
fn a_caller_ignoring_sigchld_gets_the_exit_status(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values("", NO_VFORK)] policy: &str,
    #[case] cmd: &[&str],
    #[case] want: i32,
) {
    need(who);
    let w = World::new("sigchld");
    w.dir
        .write("p.yaml", format!("version: 1\nextends: default\n{policy}"));
    let mut args = vec!["run", "-p", "./p.yaml", "--"];
    args.extend_from_slice(cmd);
    let o = w
        .command_ignoring(who, &["CHLD"])
        .args(&args)
        .output()
        .unwrap();
    assert_code(&o, want);
}

/// [`a_caller_ignoring_sigchld_gets_the_exit_status`] for a program that is PID 1 (which a
/// SIGKILL from inside its own namespace does not end).
#[rstest]
#[case(&["sh", "-c", "exit 42"], 42)]
#[case(&["./not-there"], 127)]
#[ignore = "needs root: run by scripts/test"]
fn a_caller_ignoring_sigchld_gets_the_exit_status_of_pid_1(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[case] cmd: &[&str],
    #[case] want: i32,
) {
    need(who);
    let w = World::new("sigchld1");
    w.dir
        .write("p.yaml", "version: 1\nextends: default\nas-pid-1: true\n");
    let mut args = vec!["run", "-p", "./p.yaml", "--"];
    args.extend_from_slice(cmd);
    let o = w
        .command_ignoring(who, &["CHLD"])
        .args(&args)
        .output()
        .unwrap();
    assert_code(&o, want);
}

/// A signal the caller ignored is not forwarded: kekkai ignores it, as the program would have
/// under a plain exec (here the program catches it anyway, which it may). SIGUSR1 sent first
/// is dropped; SIGTERM sent after it (not ignored) arrives: the program exits with SIGTERM's
/// code, not SIGUSR1's. Under the reaper and as PID 1.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_signal_the_caller_ignored_is_not_forwarded(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values("", "as-pid-1: true\n")] policy: &str,
) {
    need(who);
    let w = World::new("signotfwd");
    w.dir
        .write("p.yaml", format!("version: 1\nextends: default\n{policy}"));
    let script = "$| = 1; $SIG{USR1} = sub { exit 9 }; $SIG{TERM} = sub { exit 5 }; print \"ready\\n\"; sleep 1 while 1";
    let mut child = spawn_until_ready(
        w.command_ignoring(who, &["USR1"])
            .args(["run", "-p", "./p.yaml", "--", "perl", "-e", script]),
    );
    let pid = support::pid(child.id());
    for signal in [
        nix::sys::signal::Signal::SIGUSR1,
        nix::sys::signal::Signal::SIGTERM,
    ] {
        nix::sys::signal::kill(pid, signal).unwrap();
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(5));
}

/// A call of the program's process before its execve fails (the policy denies `setsid`, which
/// step 13 makes for the program's new session): the launch is a setup failure (125) naming
/// the call and its errno, whether the process was cloned in the reaper's memory (the failure
/// passed back through it) or forked; the process itself exited 125.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_failure_before_execve_is_a_setup_failure(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values(false, true)] fork: bool,
) {
    need(who);
    let w = World::new("preexec");
    let no_vfork = if fork {
        "    - { syscall: clone, args: [{ arg: 0, width: 64, mask: 0x4000, eq: 0x4000 }], action: errno(EPERM) }\n"
    } else {
        ""
    };
    w.dir.write(
        "p.yaml",
        format!(
            "version: 1\nextends: default\nseccomp:\n  deny:\n    - {{ syscall: setsid, action: errno(EPERM) }}\n{no_vfork}"
        ),
    );
    let o = w.run(
        who,
        ["run", "--report", "-", "-p", "./p.yaml", "--", "true"],
    );
    assert_code(&o, 125);
    let ended = support::report(&o).ended;
    assert_eq!(ended.exited, Some(125));
    assert_eq!(ended.exec_error, None);
    let err = ended.setup_error.unwrap_or_default();
    assert!(
        err.starts_with("step 13 (exec): setsid() => EPERM"),
        "{err}"
    );
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_setup_failure_is_125_and_names_the_step_and_key(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("fail");
    let o = w.run(who, ["run", "--chdir", "/does/not/exist", "--", "true"]);
    assert_code(&o, 125);
    let err = stderr(&o);
    assert!(
        err.contains("step 7 (environment): chdir(\"/does/not/exist\") => ENOENT")
            && err.contains("policy key: cwd"),
        "{err}"
    );
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_environment_is_what_the_policy_says(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("env");
    let o = w
        .command(who)
        .env("KEKKAI_TEST_SECRET", "leak")
        .env("TERM", "xterm")
        .args(["run", "--setenv", "EXTRA=1", "--", "env"])
        .output()
        .unwrap();
    assert_code(&o, 0);
    let mut names: Vec<String> = stdout(&o)
        .lines()
        .map(|l| l.split('=').next().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["EXTRA", "HOME", "LANG", "PATH", "TERM"]);
    assert!(stdout(&o).contains("HOME=/tmp\n"));
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_network_is_loopback_only(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("net");
    let o = sh(
        &w,
        who,
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "lo\n");
    assert!(probe(&w, who, &[], &["tcp-loopback"]).starts_with("ok "));
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn signals_reach_the_program(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("sig");
    for (sig, code_want) in [
        (nix::sys::signal::Signal::SIGTERM, 7),
        (nix::sys::signal::Signal::SIGUSR1, 8),
    ] {
        let script = "trap 'exit 7' TERM; trap 'exit 8' USR1; echo ready; sleep 100 & wait";
        let mut child = spawn_until_ready(w.command(who).args(["run", "--", "sh", "-c", script]));
        let pid = support::pid(child.id());
        nix::sys::signal::kill(pid, sig).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code_want), "{sig}");
    }
}

/// Starts `cmd` with its stdout piped and returns once the program has printed its first
/// line, which must be `ready` (the program's traps are set: a condition, not a duration).
fn spawn_until_ready(cmd: &mut std::process::Command) -> std::process::Child {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    child
}

/// `kill -s RTMIN+3 <kekkai>` reaches the program as that very signal, under the reaper and
/// when the program is PID 1: a trap exits with a code of its own, an untrapped real-time
/// signal kills it (128+N). Sent with `kill(1)` as a user would; nix's `Signal` has none.
#[rstest]
#[case::trapped("", "trap 'exit 9' {n}; echo ready; sleep 100 & wait", 9)]
#[case::killed("", "echo ready; exec sleep 100", 128 + libc::SIGRTMIN() + 3)]
#[case::trapped_as_pid_1(
    "as-pid-1: true\n",
    "trap 'exit 9' {n}; echo ready; sleep 100 & wait",
    9
)]
#[ignore = "needs root: run by scripts/test"]
fn real_time_signals_reach_the_program(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[case] policy: &str,
    #[case] script: &str,
    #[case] want: i32,
) {
    need(who);
    let w = World::new("rtsig");
    w.dir
        .write("p.yaml", format!("version: 1\nextends: default\n{policy}"));
    let n = libc::SIGRTMIN() + 3;
    let script = script.replace("{n}", &n.to_string());
    let mut child = spawn_until_ready(
        w.command(who)
            .args(["run", "-p", "./p.yaml", "--", "sh", "-c", &script]),
    );
    let sent = std::process::Command::new("kill")
        .args(["-s", "RTMIN+3", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(want), "signal {n}");
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn killing_the_supervisor_leaves_no_sandbox_process(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("kill9");
    let mut child = w
        .command(who)
        .args([
            "run",
            "--",
            "sh",
            "-c",
            "sleep 1000 & sleep 1000 & echo ready; wait",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    let inside = descendants(child.id());
    assert!(inside.len() >= 4, "reaper, sh and two sleeps: {inside:?}");
    let pidfds = PidFds::open(&inside);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        pidfds.all_gone(),
        "a sandbox process outlived its supervisor"
    );
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn every_shipped_policy_runs_a_shell(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values(
        "default",
        "untrusted",
        "build",
        "service",
        "python",
        "node",
        "network-client"
    )]
    policy: &str,
) {
    need(who);
    // `build` runs as the owner of the current directory, and refuses one root owns.
    let w = World::of_test_user("shipped");
    // The untrusted and service policies' limits are hard: unprivileged, they need a
    // delegated cgroup (and refuse to run without one, which tests/limits.rs checks).
    let mode = match (who, policy) {
        (Who::Root, _) => Mode::Root,
        (Who::Rootless, "service" | "untrusted") => Mode::Delegated,
        (Who::Rootless, _) => Mode::Plain,
    };
    let o = run_as(&w, mode, &["run", "-p", policy, "--", "sh", "-c", "true"]);
    assert_code(&o, 0);
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_readme_command_shows_the_sandbox(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("readme");
    let o = sh(&w, who, "id; hostname; cat /proc/1/cmdline; ls /; touch /x");
    // touch fails on the read-only root: its status is the script's.
    assert_eq!(code(&o), 1);
    let out = stdout(&o);
    assert!(out.starts_with("uid=65534(nobody)"), "{out}");
    assert!(out.contains("kekkai\n"));
    assert!(out.contains("usr\n"));
    assert!(stderr(&o).contains("/x"));
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_launch_follows_the_documented_order(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("order");
    let o = w
        .command(who)
        .env("KEKKAI_TRACE_STEPS", "1")
        .args(["run", "--", "true"])
        .output()
        .unwrap();
    assert_code(&o, 0);
    let traced: Vec<String> = stderr(&o)
        .lines()
        .filter_map(|l| l.strip_prefix("kekkai-step: ").map(String::from))
        .collect();
    let documented: Vec<String> = kekkai::plan::steps::Step::all()
        .map(|s| s.name().to_owned())
        .collect();
    assert_eq!(traced, documented);
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_program_can_be_pid_1(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("pid1");
    w.dir
        .write("p.yaml", "version: 1\nextends: default\nas-pid-1: true\n");
    let o = w.run(
        who,
        ["run", "-p", "./p.yaml", "--", "sh", "-c", "echo $$; exit 3"],
    );
    assert_code(&o, 3);
    assert_eq!(stdout(&o), "1\n");
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn stdio_passes_through_unchanged(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    use std::io::Write;
    let w = World::new("stdio");
    let input: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
    let mut child = w
        .command(who)
        // -q: an unprivileged run would say which best-effort limits it runs without.
        .args(["-q", "run", "--", "sh", "-c", "cat; echo err >&2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert_code(&o, 0);
    assert!(o.stdout == input, "binary data changed on the way through");
    assert_eq!(stderr(&o), "err\n");
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn odd_path_names_are_not_mount_options(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("odd");
    let odd = w.dir.write("a,b=c:d\\e/f", "odd");
    let dir = odd.parent().unwrap().display().to_string();
    let o = w.run(
        who,
        [
            "run",
            "--ro-bind",
            &format!("{dir}:/odd"),
            "--",
            "cat",
            "/odd/f",
        ],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "odd");
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_symlink_can_not_lead_a_mount_out_of_the_root(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("symlink");
    let data = w.dir.join("data");
    std::fs::create_dir(&data).unwrap();
    // Inside the sandbox, /data/up points at "/" — which must mean the sandbox's own root.
    std::os::unix::fs::symlink("/", data.join("up")).unwrap();
    let before = std::fs::read("/proc/self/mountinfo").unwrap();
    let o = w.run(
        who,
        [
            "run",
            "--ro-bind",
            &format!("{}:/data", data.display()),
            "--tmpfs",
            "/data/up/var/tmp/planted",
            "--",
            "sh",
            "-c",
            "grep -c planted /proc/self/mountinfo",
        ],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "1\n");
    assert_eq!(before, std::fs::read("/proc/self/mountinfo").unwrap());
    assert!(
        !std::path::Path::new("/var/tmp/planted").exists(),
        "the mount point was created on the host"
    );
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_host_network_can_be_shared(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("nethost");
    let host = std::fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .count();
    let o = w.run(who, ["run", "--net", "host", "--", "cat", "/proc/net/dev"]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o).lines().count(), host);
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn mqueue_mounts_work(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("mqueue");
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\nmounts: [{ mqueue: /dev/mqueue }]\n",
    );
    let o = w.run(
        who,
        [
            "run",
            "-p",
            "./p.yaml",
            "--",
            "sh",
            "-c",
            "grep -c ' /dev/mqueue .* mqueue ' /proc/self/mountinfo",
        ],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "1\n");
}

// ── the working directory never undoes the policy's hiding ───────────────────────────────────

/// From a home directory the working directory is shown, its well-known secrets are not: `.ssh`
/// is an empty directory and `.netrc` reads as empty, under `default` (bound in place) and
/// `untrusted` (bound at /work) alike. The run says so in one line on stderr; `-q` silences it.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn secrets_in_the_working_directory_stay_hidden(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values("default", "untrusted")] policy: &str,
) {
    need(who);
    // The world's directory is the caller's HOME and working directory.
    let w = World::new("secrets");
    w.dir.write(".ssh/id_ed25519", "PRIVATE KEY\n");
    w.dir
        .write(".netrc", "machine example.org password hunter2\n");
    w.dir.write("visible", "shown\n");
    let inside = match policy {
        "untrusted" => "/work".to_owned(),
        _ => w.dir.path().display().to_string(),
    };
    let key = format!("{inside}/.ssh/id_ed25519");
    let probe = format!("{inside}/kekkai-probe");
    // Unprivileged, in a delegated cgroup: `untrusted`'s limits are hard, and the default's
    // would otherwise be dropped with a line of their own.
    let mode = match who {
        Who::Root => Mode::Root,
        Who::Rootless => Mode::Delegated,
    };
    let o = run_as(&w, mode, &["run", "-p", policy, "--", &probe, "read", &key]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "errno ENOENT");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("secrets stay hidden: .netrc .ssh"), "{err}");
    let o = run_as(
        &w,
        mode,
        &[
            "-q",
            "run",
            "-p",
            policy,
            "--",
            "sh",
            "-c",
            "cat .netrc visible; ls -A .ssh",
        ],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "shown\n");
    assert_eq!(stderr(&o), "");
}

/// A directory the test makes under /run (the default hides /run), removed on drop.
struct RunDir(std::path::PathBuf);

impl RunDir {
    fn new() -> RunDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::path::PathBuf::from(format!(
            "/run/kekkai-it-{}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("state"), "host state\n").unwrap();
        std::fs::set_permissions(dir.join("state"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        RunDir(dir)
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// From a tree the policy hides (/run), or from inside one outside the caller's home, the
/// working directory stays hidden: the program starts in an empty directory and the host's
/// files there can't be reached.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_hidden_working_directory_stays_hidden(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("run-cwd");
    let run = RunDir::new();
    // The probe lives in the world's directory, bound explicitly (the working directory isn't).
    let world = w.dir.path().display().to_string();
    let o = w
        .command(who)
        .current_dir(&run.0)
        .args([
            "run",
            "--ro-bind",
            &world,
            "--",
            &w.probe(),
            "read",
            "state",
        ])
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "errno ENOENT");
    let o = w
        .command(who)
        .current_dir("/run")
        .args(["-q", "run", "--", "sh", "-c", "pwd; ls -A"])
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "/run\n");
}

/// From /tmp or /var, the default's private /tmp and /var/tmp stay private and writable, and
/// nothing reaches the host's — also under `build`, which binds the working directory writable.
/// Root's `build` is refused there before anything runs: both directories are root's, and
/// `build` runs a root caller's program as the working directory's owner, never as host root.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_private_tmp_stays_private_whatever_the_working_directory(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values("default", "build")] policy: &str,
    #[values("/tmp", "/var")] cwd: &str,
) {
    need(who);
    let w = World::new("tmp-cwd");
    let marker = format!("kekkai-it-marker-{}-{}", std::process::id(), unique());
    let script = format!(
        "f=$(mktemp) && echo x > \"$f\" && touch /tmp/{marker} /var/tmp/{marker} && echo ok"
    );
    let o = w
        .command(who)
        .current_dir(cwd)
        .args(["run", "-p", policy, "--", "sh", "-c", &script])
        .output()
        .unwrap();
    if who == Who::Root && policy == "build" {
        assert_code(&o, 125);
        assert!(
            stderr(&o).contains(": identity.owner-of: "),
            "{}",
            stderr(&o)
        );
        assert_eq!(stdout(&o), "");
    } else {
        assert_code(&o, 0);
        assert_eq!(stdout(&o), "ok\n");
    }
    for dir in ["/tmp", "/var/tmp"] {
        let host = std::path::Path::new(dir).join(&marker);
        let leaked = host.exists();
        let _ = std::fs::remove_file(&host);
        assert!(!leaked, "{} was written on the host", host.display());
    }
}

/// Where every host file system the sandbox keeps is the root's or in memory, its mounts are
/// left to the kernel to free after kekkai's exit (`launch/parent/teardown.rs`): the report
/// says so, and the host sees nothing left, no mount, no cgroup, no process.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_kernel_frees_the_mounts_after_exit_and_nothing_is_left(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    let _turn = support::turn();
    let w = World::new("teardown");
    let caller = match who {
        Who::Root => support::root(),
        Who::Rootless => support::rootless(),
    };
    let caller = support::with_pwd(caller, w.dir.path());
    let loaded =
        kekkai::policy::load(&kekkai::policy::PolicySource::Shipped("default"), &caller).unwrap();
    let plan = kekkai::plan::compile(&loaded, &caller).unwrap();
    let host = kekkai::plan::fs::host_mounts();
    if support::skip(
        (!kekkai::launch::parent::teardown::may_defer(&plan, &host))
            .then(|| "a directory the default policy shows is on a disk of its own".into()),
    ) {
        return;
    }
    let before = support::Residue::now();
    let o = w.run(who, ["run", "--report", "-", "--", "true"]);
    assert_code(&o, 0);
    assert!(support::report(&o).ended.mounts_freed_after_exit);
    before.assert_nothing_left("after the run");
}

/// A bind of a file system that is neither the root's nor in memory (an overlay here, as a
/// disk would be) is freed before kekkai exits: right after the run, the caller unmounts it and
/// mounts its upper layer again with `index=on`, which overlayfs refuses (EBUSY) while any
/// mount of the old one is left anywhere.
///
/// "Anywhere" includes the sandboxes of other tests running at the same time: one started as
/// root while the overlay is mounted copies it with the host's mount table and lets it go only
/// with its own mounts, which kekkai leaves to the kernel after its exit. So the overlay and
/// this test's sandbox live in a mount namespace of the test's own (its thread's, made private
/// first, so nothing propagates to the host's), which no other sandbox copies.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_disk_bound_in_is_released_before_exit(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let isolated = std::thread::spawn(move || disk_bound_in_is_released(who)).join();
    if let Err(panic) = isolated {
        std::panic::resume_unwind(panic);
    }
}

fn disk_bound_in_is_released(who: Who) {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).unwrap();
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .unwrap();
    let w = World::new("teardown-disk");
    let (lower, upper, work, disk) = (
        w.dir.join("lower"),
        w.dir.join("upper"),
        w.dir.join("work"),
        w.dir.join("disk"),
    );
    for d in [&lower, &upper, &work, &disk] {
        std::fs::create_dir(d).unwrap();
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},index=on",
        lower.display(),
        upper.display(),
        work.display()
    );
    let mount = || {
        nix::mount::mount(
            Some("overlay"),
            &disk,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(opts.as_str()),
        )
    };
    mount().unwrap();
    let bind = format!("{}:/data", disk.display());
    let o = w.run(
        who,
        [
            "run",
            "--ro-bind",
            &bind,
            "--report",
            "-",
            "--",
            "ls",
            "/data",
        ],
    );
    let unmounted = nix::mount::umount(&disk);
    assert_code(&o, 0);
    assert!(!support::report(&o).ended.mounts_freed_after_exit);
    assert_eq!(unmounted, Ok(()));
    assert_eq!(mount(), Ok(()), "the sandbox still holds the overlay");
    nix::mount::umount(&disk).unwrap();
}

/// A policy like the default, without a user namespace of its own (an unprivileged caller
/// still gets one), over `lower`, running as `uid`; `extra` is added at the end.
fn no_userns_policy(lower: &str, uid: u32, extra: &str) -> String {
    format!(
        "version: 1\nnamespaces: [mount, pid, ipc, uts, cgroup]\nidentity: {{ uid: {uid}, gid: {uid} }}\n\
         rootfs: {{ lower: [{lower}] }}\nmounts:\n  - {{ hide: /home }}\n  - {{ hide: /root }}\n  - {{ hide: /run }}\n\
         \x20 - {{ tmpfs: /tmp }}\n  - {{ bind: \"${{PWD}}\", to: \"${{PWD}}\" }}\n  - {{ proc: /proc }}\n  - {{ dev: /dev }}\n\
         cwd: \"${{PWD}}\"\n{extra}"
    )
}

/// Every top-level directory of the root is an overlay mounted read-only, nosuid, nodev, and
/// `..` of one is the root. Without a user namespace (root, a policy without one) the
/// one-directory entries of the host's `/` are binds of one shared overlay of `/` (the mount's
/// root field names the directory), and the shared overlay's own root is mounted nowhere; with
/// one (the default policy; any unprivileged caller), the kernel refuses an overlay of `/`
/// (its mounts are locked) and each has its own, as before.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn top_level_directories_are_read_only_nosuid_nodev(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values(false, true)] own_userns: bool,
) {
    need(who);
    let w = World::new("toplevel");
    let mut args = vec!["run".to_owned()];
    if !own_userns {
        w.dir.write("p.yaml", no_userns_policy("/", 65534, ""));
        args.extend(["-p".into(), "./p.yaml".into()]);
    }
    args.extend(
        [
            "--",
            "sh",
            "-c",
            "stat -c %d:%i /usr/.. / /etc/..; cat /proc/self/mountinfo",
        ]
        .map(String::from),
    );
    let o = w.run(who, &args);
    assert_code(&o, 0);
    let out = stdout(&o);
    let ids: Vec<&str> = out.lines().take(3).collect();
    assert_eq!(ids[0], ids[1], "/usr/.. is the root: {out}");
    assert_eq!(ids[2], ids[1], "/etc/.. is the root: {out}");
    let tops = top_level_overlays(&out);
    assert!(tops.iter().any(|m| m.point == "/usr"), "{out}");
    for m in &tops {
        for opt in ["ro", "nosuid", "nodev"] {
            assert!(m.opts.iter().any(|o| o == opt), "{m:?} lacks {opt}");
        }
    }
    let usr = tops.iter().find(|m| m.point == "/usr").unwrap();
    let etc = tops.iter().find(|m| m.point == "/etc").unwrap();
    let shared = who == Who::Root && !own_userns;
    if shared {
        assert_eq!(usr.dev, etc.dev, "one overlay: {out}");
        assert_eq!((usr.root.as_str(), etc.root.as_str()), ("/usr", "/etc"));
        // Only its directories are mounted, never its root.
        let whole = out
            .lines()
            .filter(|l| l.split(' ').nth(2) == Some(usr.dev.as_str()))
            .any(|l| l.split(' ').nth(3) == Some("/"));
        assert!(!whole, "the shared overlay's root is mounted: {out}");
    } else {
        assert!(tops.iter().all(|m| m.root == "/"), "{out}");
        assert_ne!(usr.dev, etc.dev);
    }
}

/// Remounting a top-level directory read-write fails as it did with an overlay per directory:
/// even holding CAP_SYS_ADMIN (no seccomp filter, no Landlock), the file system remount fails
/// with EROFS (an overlay of lower layers only is read-only for good), and a remount of the
/// mount alone succeeds but leaves every write failing with EROFS; under the default policy
/// the remount is refused (EPERM).
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn remounting_a_top_level_directory_read_write_fails(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("remount");
    w.dir.write(
        "p.yaml",
        no_userns_policy(
            "/",
            0,
            "host-privileges: allow\ncapabilities: { keep: [sys_admin] }\n\
             seccomp: { preset: none }\nlandlock: { enabled: false }\n",
        ),
    );
    let p = ["-p", "./p.yaml"];
    assert_eq!(probe(&w, who, &p, &["remount", "/usr"]), "errno EROFS");
    assert_eq!(probe(&w, who, &p, &["remount", "/etc"]), "errno EROFS");
    let o = w.run(
        who,
        [
            "run",
            "-p",
            "./p.yaml",
            "--",
            "sh",
            "-c",
            &format!(
                "{0} remount-bind /usr; {0} create /usr/kekkai-remount",
                w.probe()
            ),
        ],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "ok 0\nerrno EROFS\n");
    assert_eq!(probe(&w, who, &[], &["remount", "/usr"]), "errno EPERM");
}

/// A top-level directory that is a mount of its own keeps an overlay of its own, which shows
/// that mount's files (an overlay of its parent would show the directory underneath). The
/// mount is made in a mount namespace the test creates for kekkai (gone with it): a tmpfs
/// over `T/c` of a temporary layer `T` holding `a`, `b` and `c`.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_top_level_directory_on_a_mount_of_its_own_keeps_its_own_overlay(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    let w = World::new("ownmount");
    let t = w.dir.join("t");
    w.dir.write("t/a/x", "x");
    w.dir.write("t/b/y", "y");
    w.dir.write("t/c/under", "under");
    w.dir.write(
        "p.yaml",
        no_userns_policy(&format!("{}, /", t.display()), 65534, ""),
    );
    let (uid, gid) = match who {
        Who::Root => (0, 0),
        Who::Rootless => support::test_user().unwrap(),
    };
    let o = std::process::Command::new("unshare")
        .current_dir(w.dir.path())
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", w.dir.path())
        .env("T", &t)
        .args(["-m", "--propagation", "private", "--", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o mode=0755 kekkai-test \"$T/c\" && echo z > \"$T/c/z\" && \
             exec setpriv --reuid={uid} --regid={gid} --clear-groups -- \"$0\" \"$@\""
        ))
        .arg(w.kekkai())
        .args(["run", "-p", "./p.yaml", "--", "sh", "-c"])
        .arg("ls /a /b /c; cat /proc/self/mountinfo")
        .output()
        .unwrap();
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(
        out.starts_with("/a:\nx\n\n/b:\ny\n\n/c:\nz\n"),
        "the mount's files: {out}"
    );
    let tops = top_level_overlays(&out);
    let at = |p: &str| tops.iter().find(|m| m.point == p).unwrap().clone();
    let (a, b, c) = (at("/a"), at("/b"), at("/c"));
    assert_eq!(c.root, "/", "{out}");
    assert_ne!(c.dev, a.dev);
    if who == Who::Root {
        // `a` and `b` share an overlay of T; `c` failed its check (EXDEV).
        assert_eq!((a.dev.as_str(), a.root.as_str()), (b.dev.as_str(), "/a"));
        assert_eq!(b.root, "/b");
    } else {
        // In a user namespace the plan shares nothing with a mount below it.
        assert_eq!((a.root.as_str(), b.root.as_str()), ("/", "/"));
        assert_ne!(a.dev, b.dev);
    }
}
