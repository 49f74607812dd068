//! Faults: the supervisor killed at every launch step, setup crashes, the program crashing, the
//! supervisor short of descriptors, the output pipe closed early. After each, nothing may be
//! left: no process, no mount in the host's table, no cgroup (after `kekkai cleanup`, which is
//! what a killed supervisor's cgroup waits for), no temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use kekkai::plan::steps::Step;
use rstest::rstest;
use support::{
    Residue, Who, World, all_gone, assert_code, code, descendants, launched, need, output, stderr,
    test_user, turn,
};

/// kill -9 of the supervisor while it (or its sandbox) is stopped at each launch step in turn.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn killing_the_supervisor_at_any_step_leaves_nothing(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let _turn = turn();
    for step in Step::all() {
        kill_at(who, step.name());
    }
}

/// kill -9 of the supervisor stopped at `step`; then `kekkai cleanup` leaves nothing behind.
fn kill_at(who: Who, step: &str) {
    let w = World::new("kill-at-step");
    // Limits, so a cgroup exists from step 1 on (the default policy's limits are best-effort:
    // unprivileged, there is none).
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\nlimits: { memory: 256M, pids: 64 }\n",
    );
    let before = Residue::now();
    let mut child = w
        .command(who)
        .env("KEKKAI_TRACE_STEPS", "1")
        .env("KEKKAI_FAULT", format!("{step}:stop"))
        .args(["run", "-p", "./p.yaml", "--", "sleep", "1000"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    launched(child.id());
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let want = format!("kekkai-step: {step}");
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("kekkai ended before step {step}"))
            .unwrap();
        if line == want {
            break;
        }
    }
    let inside = descendants(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        all_gone(&inside),
        "a sandbox process outlived its supervisor (stopped at {step})"
    );
    let o = w.run(who, ["cleanup"]);
    assert_code(&o, 0);
    before.assert_nothing_left(&format!("after killing the supervisor at {step}"));
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_crash_in_setup_is_a_launch_failure(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values("rootfs", "mounts", "environment", "landlock", "seccomp")] step: &str,
) {
    need(who);
    let _turn = turn();
    let w = World::new("abort");
    let before = Residue::now();
    let o = output(
        w.command(who)
            .env("KEKKAI_FAULT", format!("{step}:abort"))
            .args(["run", "--", "true"]),
    );
    assert_code(&o, 125);
    assert!(stderr(&o).contains("setup died"), "{}", stderr(&o));
    before.assert_nothing_left("after the run");
}

#[rstest]
#[case::segfault(&["sh", "-c", "kill -SEGV $$"], 128 + 11)]
#[case::abort(&["sh", "-c", "kill -ABRT $$"], 128 + 6)]
#[ignore = "needs root: run by scripts/test"]
fn a_crashing_program_passes_its_signal_on(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[case] cmd: &[&str],
    #[case] want: i32,
) {
    need(who);
    let _turn = turn();
    let w = World::new("crash");
    let before = Residue::now();
    let mut args = vec!["run", "--"];
    args.extend_from_slice(cmd);
    let o = w.run(who, &args);
    assert_code(&o, want);
    before.assert_nothing_left("after the run");
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_supervisor_short_of_descriptors_fails_cleanly(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let _turn = turn();
    let w = World::new("nofds");
    let before = Residue::now();
    let script = format!("ulimit -n 8; exec {} run -- true", w.kekkai().display());
    let mut c = std::process::Command::new("sh");
    c.args(["-c", &script])
        .current_dir(w.dir.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin");
    if who == Who::Rootless {
        use std::os::unix::process::CommandExt;
        let (uid, gid) = test_user().unwrap();
        c.uid(uid).gid(gid);
    }
    // The shell execs kekkai: its pid is the supervisor's.
    let o = output(&mut c);
    assert_code(&o, 125);
    let e = stderr(&o);
    assert!(
        e.contains("EMFILE") && e.starts_with("kekkai: step "),
        "{e}"
    );
    assert!(!e.contains("panicked"), "{e}");
    before.assert_nothing_left("after the run");
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn an_early_closed_output_pipe_ends_the_program_with_sigpipe(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values(false, true)] caller_ignores: bool,
) {
    need(who);
    let _turn = turn();
    let w = World::new("sigpipe");
    // A caller that ignores SIGPIPE (systemd's `IgnoreSIGPIPE=yes`) passes that on: `yes` then
    // sees EPIPE and exits 1, as it would without kekkai.
    let ignored: &[&str] = if caller_ignores { &["PIPE"] } else { &[] };
    let mut child = w
        .command_ignoring(who, ignored)
        .args(["run", "--", "yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "y\n");
    drop(out);
    let o = child.wait_with_output().unwrap();
    let want = if caller_ignores { 1 } else { 128 + 13 };
    assert_eq!(code(&o), want, "{}", stderr(&o));
}
