//! Faults: the supervisor killed at every launch step, setup crashes, the program crashing, the
//! supervisor short of descriptors, the output pipe closed early. After each, nothing may be
//! left: no process, no mount in the host's table, no cgroup (after `kekkai cleanup`, which is
//! what a killed supervisor's cgroup waits for), no temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;

use rstest::rstest;
use support::{
    Who, World, all_gone, assert_code, cgroup_dirs, code, descendants, skip, stderr, turn,
    unavailable,
};

/// Everything on the host that a launch could leave behind.
#[derive(Debug, PartialEq, Eq)]
struct Residue {
    mounts: Vec<u8>,
    cgroups: Vec<PathBuf>,
    temp: Vec<PathBuf>,
}

fn residue() -> Residue {
    let mut cgroups: Vec<PathBuf> = cgroup_dirs()
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(d)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .map(|e| e.path())
        })
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().starts_with("kekkai-")
                    && !n.to_string_lossy().starts_with("kekkai-test-")
            })
        })
        .collect();
    cgroups.sort();
    let mut temp: Vec<PathBuf> = std::fs::read_dir("/tmp")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("kekkai-audit-"))
        })
        .collect();
    temp.sort();
    Residue {
        mounts: std::fs::read("/proc/self/mountinfo").unwrap(),
        cgroups,
        temp,
    }
}

/// kill -9 of the supervisor while it (or its sandbox) is stopped at `step`.
#[rstest]
fn killing_the_supervisor_at_any_step_leaves_nothing(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values(
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
        "exec"
    )]
    step: &str,
) {
    if skip(unavailable(who)) {
        return;
    }
    let _turn = turn();
    let w = World::new("kill-at-step");
    // Limits, so a cgroup exists from step 1 on (the default policy's limits are best-effort:
    // unprivileged, there is none).
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\nlimits: { memory: 256M, pids: 64 }\n",
    );
    let before = residue();
    let mut child = w
        .command(who)
        .env("KEKKAI_TRACE_STEPS", "1")
        .env("KEKKAI_FAULT", format!("{step}:stop"))
        .args(["run", "-p", "./p.yaml", "--", "sleep", "1000"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
    assert_eq!(
        residue(),
        before,
        "residue after killing the supervisor at {step}"
    );
}

#[rstest]
fn a_crash_in_setup_is_a_launch_failure(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values("rootfs", "mounts", "environment", "landlock", "seccomp")] step: &str,
) {
    if skip(unavailable(who)) {
        return;
    }
    let _turn = turn();
    let w = World::new("abort");
    let before = residue();
    let o = w
        .command(who)
        .env("KEKKAI_FAULT", format!("{step}:abort"))
        .args(["run", "--", "true"])
        .output()
        .unwrap();
    assert_code(&o, 125);
    assert!(stderr(&o).contains("setup died"), "{}", stderr(&o));
    assert_eq!(residue(), before);
}

#[rstest]
#[case::segfault(&["sh", "-c", "kill -SEGV $$"], 128 + 11)]
#[case::abort(&["sh", "-c", "kill -ABRT $$"], 128 + 6)]
fn a_crashing_program_passes_its_signal_on(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[case] cmd: &[&str],
    #[case] want: i32,
) {
    if skip(unavailable(who)) {
        return;
    }
    let _turn = turn();
    let w = World::new("crash");
    let before = residue();
    let mut args = vec!["run", "--"];
    args.extend_from_slice(cmd);
    let o = w.run(who, &args);
    assert_code(&o, want);
    assert_eq!(residue(), before);
}

#[rstest]
fn a_supervisor_short_of_descriptors_fails_cleanly(#[values(Who::Root, Who::Rootless)] who: Who) {
    if skip(unavailable(who)) {
        return;
    }
    let _turn = turn();
    let w = World::new("nofds");
    let before = residue();
    let script = format!("ulimit -n 8; exec {} run -- true", w.kekkai().display());
    let mut c = std::process::Command::new("sh");
    c.args(["-c", &script])
        .current_dir(w.dir.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin");
    if who == Who::Rootless {
        use std::os::unix::process::CommandExt;
        let (uid, gid) = support::test_user().unwrap();
        c.uid(uid).gid(gid);
    }
    let o = c.output().unwrap();
    assert_code(&o, 125);
    let e = stderr(&o);
    assert!(
        e.contains("EMFILE") && e.starts_with("kekkai: step "),
        "{e}"
    );
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(residue(), before);
}

#[rstest]
fn an_early_closed_output_pipe_ends_the_program_with_sigpipe(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    if skip(unavailable(who)) {
        return;
    }
    let _turn = turn();
    let w = World::new("sigpipe");
    let mut child = w
        .command(who)
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
    assert_eq!(code(&o), 128 + 13, "{}", stderr(&o));
}
