//! cgroup limits, rlimits, the timeout and teardown, as root and as an unprivileged user (with
//! and without a delegated cgroup). Every test checks that no cgroup it caused is left behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::Stdio;

use kekkai::plan::Controller;
use nix::fcntl::FlockArg;
use rstest::rstest;
use support::{
    Mode, Residue, Who, World, all_gone, assert_code, cgroup_dirs, code, descendants, launched,
    need, no_residue, report, run_as, stderr, stdout, turn,
};

/// While a world lives, no other test (another file description on the lock, as another
/// process has) can have its turn; while a turn lasts, no other test can have a world.
#[test]
fn worlds_and_turns_exclude_each_other() {
    let w = World::new("share");
    assert!(!support::free_for(FlockArg::LockExclusive));
    drop(w);
    let turn = turn();
    assert!(!support::free_for(FlockArg::LockShared));
    // A world made during the turn shares it (it would wait for itself otherwise).
    let w = World::new("in-turn");
    drop((w, turn));
}

const ALLOCATE_256M: &str = "python3 -c 'x = bytearray(256 << 20); print(len(x))'";

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_memory_limit_ends_the_run_with_an_oom_kill(#[values(Mode::Root, Mode::Delegated)] mode: Mode) {
    need(mode.who());
    let _turn = turn();
    let w = World::new("oom");
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\nlimits: { memory: 64M, swap: 0, compat: hard }\n",
    );
    let o = no_residue(|| {
        run_as(
            &w,
            mode,
            &[
                "run",
                "-p",
                "./p.yaml",
                "--report",
                "-",
                "--",
                "sh",
                "-c",
                ALLOCATE_256M,
            ],
        )
    });
    assert_code(&o, 137);
    assert!(
        stderr(&o).contains("killed: out of memory (limit 64M)"),
        "{}",
        stderr(&o)
    );
    let r = report(&o);
    assert!(r.ended.oom_killed);
    assert_eq!(r.ended.exit_code, 137);
    assert!(
        r.enforced
            .cgroup
            .iter()
            .any(|c| c.controller == Controller::Memory)
    );
}

/// `limits.oom`: `process` lets the shell that started the allocation go on after the OOM kill;
/// `sandbox` ends every process of the sandbox with it (cgroup v2 `memory.oom.group`, or on
/// cgroup v1 the supervisor at the OOM event).
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn limits_oom_says_what_an_oom_kill_ends(
    #[values(Mode::Root, Mode::Delegated)] mode: Mode,
    #[values("process", "sandbox")] oom: &str,
) {
    need(mode.who());
    let _turn = turn();
    let w = World::new("oom-group");
    w.dir.write(
        "p.yaml",
        format!(
            "version: 1\nextends: default\nlimits: {{ memory: 64M, swap: 0, oom: {oom}, compat: hard }}\n"
        ),
    );
    // With `sandbox`, what follows the OOM kill waits (`sleep 1000`) so that the test asks
    // whether the sandbox is ended, not how fast: on cgroup v1 the supervisor ends it when it
    // is told of the OOM event, and the shell may run on until then (an `echo` right after
    // the allocation raced it: fc65, a loaded machine).
    let after = if oom == "sandbox" { "sleep 1000; " } else { "" };
    let script = format!("sleep 1000 & {ALLOCATE_256M}; {after}echo survived");
    let o = no_residue(|| {
        run_as(
            &w,
            mode,
            &["run", "-p", "./p.yaml", "--", "sh", "-c", &script],
        )
    });
    if oom == "process" {
        assert_code(&o, 0);
        assert_eq!(stdout(&o), "survived\n");
    } else {
        assert_code(&o, 137);
        assert_eq!(stdout(&o), "");
    }
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_pids_limit_stops_a_fork_loop(#[values(Mode::Root, Mode::Delegated)] mode: Mode) {
    need(mode.who());
    let _turn = turn();
    let w = World::new("pids");
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\nlimits: { pids: 32, compat: hard }\n",
    );
    let script = "import os, errno, time\nn = 0\nwhile True:\n    try:\n        pid = os.fork()\n    except OSError as e:\n        print(n, errno.errorcode[e.errno]); break\n    if pid == 0:\n        time.sleep(30); os._exit(0)\n    n += 1\n";
    w.dir.write("fork.py", script);
    let py = w.dir.join("fork.py").display().to_string();
    let o = no_residue(|| {
        run_as(
            &w,
            mode,
            &[
                "run", "-p", "./p.yaml", "--report", "-", "--", "python3", &py,
            ],
        )
    });
    assert_code(&o, 0);
    let out = stdout(&o);
    let (n, err) = out.trim().split_once(' ').unwrap();
    assert_eq!(err, "EAGAIN");
    // 32 tasks: the reaper, python, and the children it could fork.
    assert_eq!(n.parse::<u32>().unwrap(), 30, "{out}");
    assert!(report(&o).ended.pids_limit_hit);
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn hard_limits_refuse_to_run_without_a_delegated_cgroup() {
    need(Who::Rootless);
    let _turn = turn();
    let w = World::new("hard");
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\nlimits: { memory: 64M, compat: hard }\n",
    );
    let o = no_residue(|| run_as(&w, Mode::Plain, &["run", "-p", "./p.yaml", "--", "true"]));
    assert_code(&o, 125);
    let e = stderr(&o);
    assert!(
        e.contains("step 1 (plan)")
            && e.contains("policy key: limits.compat")
            && e.contains("Delegate=yes"),
        "{e}"
    );
}

/// `untrusted` is everything `hard`: an unprivileged caller without a delegated cgroup is
/// refused before anything runs, and told how to get one.
#[test]
#[ignore = "needs root: run by scripts/test"]
fn untrusted_refuses_to_run_without_a_delegated_cgroup() {
    need(Who::Rootless);
    let _turn = turn();
    let w = World::new("untrusted-plain");
    let o = no_residue(|| {
        run_as(
            &w,
            Mode::Plain,
            &["run", "-p", "untrusted", "--", "sh", "-c", "echo ran"],
        )
    });
    assert_code(&o, 125);
    assert_eq!(stdout(&o), "", "the program ran");
    let e = stderr(&o);
    assert!(
        e.contains("step 1 (plan): cgroup limits can't be enforced: limits.memory: ")
            && e.contains("policy key: limits.compat")
            && e.contains("`systemd-run --user --scope -p Delegate=yes kekkai run ...`"),
        "{e}"
    );
}

/// In a delegated cgroup, `untrusted` runs with every limit it asks for.
#[test]
#[ignore = "needs root: run by scripts/test"]
fn untrusted_runs_with_its_limits_in_a_delegated_cgroup() {
    need(Who::Rootless);
    let _turn = turn();
    let w = World::new("untrusted-deleg");
    let o = no_residue(|| {
        run_as(
            &w,
            Mode::Delegated,
            &["run", "-p", "untrusted", "--report", "-", "--", "true"],
        )
    });
    assert_code(&o, 0);
    let r = report(&o);
    let mut limits: Vec<&str> = r.enforced.cgroup.iter().map(|c| c.limit.as_str()).collect();
    limits.sort();
    assert_eq!(limits, ["cpu 1", "memory 256M", "pids 64"]);
    assert_eq!(r.enforced.dropped, Vec::<String>::new());
    assert!(!stderr(&o).contains("best-effort"), "{}", stderr(&o));
}

/// What a best-effort policy runs without is said without -v, in one line; -q silences it.
#[rstest]
#[case::said(&[], true)]
#[case::verbose(&["-v"], true)]
#[case::quiet(&["-q"], false)]
#[ignore = "needs root: run by scripts/test"]
fn a_best_effort_drop_is_always_said_in_one_line(#[case] flags: &[&str], #[case] said: bool) {
    need(Who::Rootless);
    let _turn = turn();
    let w = World::new("said");
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\nlimits: { memory: 64M, pids: 32, compat: best-effort }\n",
    );
    let mut args = flags.to_vec();
    args.extend(["run", "-p", "./p.yaml", "--", "sh", "-c", "echo ran"]);
    let o = no_residue(|| run_as(&w, Mode::Plain, &args));
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "ran\n");
    let e = stderr(&o);
    let lines: Vec<&str> = e
        .lines()
        .filter(|l| l.starts_with("kekkai: best-effort: "))
        .collect();
    if said {
        assert_eq!(lines.len(), 1, "{e}");
        assert!(
            lines[0].contains("limits.memory: ") && lines[0].contains("; limits.pids: "),
            "{e}"
        );
    } else {
        assert!(lines.is_empty(), "{e}");
    }
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn best_effort_limits_run_and_report_what_was_dropped() {
    need(Who::Rootless);
    let _turn = turn();
    let w = World::new("besteffort");
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\nlimits: { memory: 64M, compat: best-effort }\n",
    );
    let o = no_residue(|| {
        run_as(
            &w,
            Mode::Plain,
            &["run", "-p", "./p.yaml", "--report", "-", "--", "true"],
        )
    });
    assert_code(&o, 0);
    let r = report(&o);
    assert!(r.enforced.cgroup.is_empty());
    let dropped = &r.enforced.cgroup_dropped;
    assert!(
        dropped.iter().any(|d| d.starts_with("limits.memory")),
        "{dropped:?}"
    );
    // The one list of everything dropped has them too.
    assert_eq!(r.enforced.dropped, r.enforced.cgroup_dropped);
    // The rlimits still hold.
    assert!(r.enforced.rlimits.iter().any(|(name, _)| name == "nofile"));
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_cpu_quota_holds_a_busy_loop_near_its_share(#[values(Mode::Root, Mode::Delegated)] mode: Mode) {
    need(mode.who());
    let _turn = turn();
    let w = World::new("cpu");
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\nlimits: { cpu: 0.25, compat: hard }\n",
    );
    let busy = "import time\nend = time.monotonic() + 2\nwhile time.monotonic() < end: pass\n";
    w.dir.write("busy.py", busy);
    let py = w.dir.join("busy.py").display().to_string();
    let o = no_residue(|| {
        run_as(
            &w,
            mode,
            &[
                "run", "-p", "./p.yaml", "--report", "-", "--", "python3", &py,
            ],
        )
    });
    assert_code(&o, 0);
    let r = report(&o);
    let cpu = r.time.user_ms + r.time.sys_ms;
    let wall = r.time.wall_ms;
    let share = cpu as f64 / wall as f64;
    // A quarter of a CPU, with loose bounds: the point is "throttled", not the exact figure.
    assert!(
        (0.1..0.45).contains(&share),
        "cpu {cpu} ms over {wall} ms wall = {share:.2}"
    );
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_tmpfs_size_limit_holds(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let _turn = turn();
    let w = World::new("tmpfs");
    let o = w.run(
        who,
        ["run", "--tmpfs", "/scratch", "--", "python3", "-c", "import errno\ntry:\n    open('/scratch/f','wb').write(b'x' * (65 << 20))\n    print('ok')\nexcept OSError as e:\n    print(errno.errorcode[e.errno])"],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "ENOSPC", "the default tmpfs size is 64M");
}

/// Empty files don't count against a tmpfs's `size`: with the kernel's default `nr_inodes`
/// (half the host's pages) a 256M `/tmp` took a million empty files, a GB of kernel memory no
/// rlimit bounds (rootless without a delegated cgroup), with `df` saying 0 bytes used. Every
/// tmpfs kekkai makes holds one inode per 4 KiB of its size (at least 1024), and the next
/// file is ENOSPC.
const COUNT_INODES: &str = "import errno, os
print(' '.join(str(os.statvfs(p).f_files) for p in ['/tmp', '/var/tmp', '/dev/shm', '/dev', '/scratch']))
n = 0
try:
    while n < 20000:
        open('/scratch/%d' % n, 'w').close()
        n += 1
    print('ok', n)
except OSError as e:
    print(errno.errorcode[e.errno], n)";

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_tmpfs_holds_no_more_inodes_than_its_size_allows(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let _turn = turn();
    let w = World::new("tmpfs-inodes");
    let o = w.run(
        who,
        [
            "run",
            "--tmpfs",
            "/scratch",
            "--",
            "python3",
            "-c",
            COUNT_INODES,
        ],
    );
    assert_code(&o, 0);
    let out = stdout(&o);
    let mut lines = out.lines();
    // /tmp 256M, /var/tmp 64M, /dev/shm 64M, /dev 64K, --tmpfs's default 64M.
    assert_eq!(lines.next(), Some("65536 16384 16384 1024 16384"));
    // The root directory is an inode of its own.
    assert_eq!(lines.next(), Some("ENOSPC 16383"));
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn rlimits_are_seen_inside(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let _turn = turn();
    let w = World::new("rlimit");
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\nrlimits: { nofile: 200, core: 0, fsize: 1M }\n",
    );
    let script = "import resource as r\nfor x in (r.RLIMIT_NOFILE, r.RLIMIT_CORE, r.RLIMIT_FSIZE): print(*r.getrlimit(x))";
    let o = w.run(
        who,
        ["run", "-p", "./p.yaml", "--", "python3", "-c", script],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "200 200\n0 0\n1048576 1048576\n");
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_timeout_is_124_and_leaves_no_process(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let _turn = turn();
    let w = World::new("timeout");
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\ntimeout: 1s\ntimeout-grace: 1s\n",
    );
    // The shell ignores SIGTERM, so the grace period has to end with SIGKILL.
    let before = Residue::now();
    let mut child = w
        .command(who)
        .args([
            "run",
            "-p",
            "./p.yaml",
            "--",
            "sh",
            "-c",
            "trap '' TERM; sleep 1000 & echo ready; wait; wait",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    launched(child.id());
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let inside = descendants(child.id());
    let o = child.wait_with_output().unwrap();
    before.assert_nothing_left("after the timeout");
    assert_code(&o, 124);
    assert!(stderr(&o).contains("timed out"));
    assert!(all_gone(&inside), "a sandbox process outlived the timeout");
}

/// Without a pid namespace nothing ends a process the program left behind but the teardown's
/// cgroup kill: the sandbox's cgroup is still populated when the program's end is reported,
/// so the kill is not skipped (the teardown reads `cgroup.events` first), and the orphan is
/// gone and the cgroups removed before kekkai exits with the program's status.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn an_orphan_without_a_pid_namespace_is_killed_with_the_cgroup(
    #[values(Mode::Root, Mode::Delegated)] mode: Mode,
) {
    need(mode.who());
    let _turn = turn();
    let w = World::new("orphan");
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\nreplace: [namespaces, mounts]\nnamespaces: [user, mount, ipc, uts]\nmounts:\n  - { tmpfs: /tmp }\n  - { dev: /dev }\ncwd: /\nlimits: { pids: 64, compat: hard }\n",
    );
    let o = no_residue(|| {
        run_as(
            &w,
            mode,
            &[
                "run",
                "-p",
                "./p.yaml",
                "--",
                "sh",
                "-c",
                "sleep 1000 </dev/null >/dev/null 2>&1 & echo $!; exit 3",
            ],
        )
    });
    assert_code(&o, 3);
    let orphan: u32 = stdout(&o).trim().parse().unwrap();
    assert!(all_gone(&[orphan]), "the orphan outlived the run");
}

/// A timeout far beyond what a millisecond `int` holds (`30d`) is a plain timeout: the program
/// that ends first ends the run (the supervisor's arithmetic saturates instead of overflowing).
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_long_timeout_lets_the_program_finish(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    // Its sandbox's cgroup would be something left behind to a test measuring at the same time.
    let _turn = turn();
    let w = World::new("long-timeout");
    w.dir
        .write("p.yaml", "version: 1\nextends: default\ntimeout: 30d\n");
    let o = w.run(who, ["run", "-p", "./p.yaml", "--", "sh", "-c", "exit 7"]);
    assert_code(&o, 7);
}

#[test]
#[ignore = "needs root: run by scripts/test"]
fn a_killed_supervisor_leaves_nothing_and_its_cgroup_goes_with_the_next_run() {
    need(Who::Root);
    let _turn = turn();
    let w = World::new("stale");
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\nlimits: { memory: 128M, pids: 64, compat: hard }\n",
    );
    let before = Residue::now();
    let mut child = w
        .command(Who::Root)
        .args([
            "run",
            "-p",
            "./p.yaml",
            "--",
            "sh",
            "-c",
            "echo ready; sleep 1000",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    launched(child.id());
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let inside = descendants(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        all_gone(&inside),
        "a sandbox process outlived its supervisor"
    );
    let stale = before.new_cgroups();
    assert!(
        !stale.is_empty(),
        "the killed run's cgroup should still be there"
    );
    let o = w.run(Who::Root, ["run", "-p", "./p.yaml", "--", "true"]);
    assert_code(&o, 0);
    for p in &stale {
        assert!(
            !p.exists(),
            "the next launch did not remove {}",
            p.display()
        );
    }
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn cleanup_removes_stale_cgroups() {
    need(Who::Root);
    let _turn = turn();
    let w = World::new("cleanup");
    // A cgroup named after a supervisor that can't exist.
    let dirs: Vec<PathBuf> = cgroup_dirs()
        .iter()
        .map(|d| d.join("kekkai-999999999-1"))
        .collect();
    for d in &dirs {
        std::fs::create_dir(d).unwrap();
    }
    let o = w.run(Who::Root, ["cleanup"]);
    assert_code(&o, 0);
    for d in &dirs {
        assert!(!d.exists(), "{} is still there", d.display());
    }
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn fifty_concurrent_sandboxes_keep_their_own_limits(#[values(Mode::Root, Mode::Plain)] mode: Mode) {
    need(mode.who());
    let _turn = turn();
    let w = World::new("fifty");
    let mut children = Vec::new();
    no_residue(|| {
        for i in 0..50u32 {
            let mem = 32 + i; // MiB, all different
            let policy = format!("p{i}.yaml");
            w.dir.write(
                &policy,
                format!(
                    "version: 1\nextends: default\nlimits: {{ memory: {mem}M, pids: {} }}\n",
                    16 + i
                ),
            );
            let child = w
                .command(mode.who())
                .args([
                    "run",
                    "-p",
                    &format!("./{policy}"),
                    "--report",
                    "-",
                    "--",
                    "sh",
                    "-c",
                    "head -c 1000000 /dev/zero | wc -c",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            launched(child.id());
            children.push((mem, child));
        }
        for (mem, child) in children {
            let o = child.wait_with_output().unwrap();
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            assert_eq!(stdout(&o), "1000000\n");
            let r = report(&o);
            if mode == Mode::Root {
                let mut cgroup = r.enforced.cgroup.iter();
                let memory = cgroup.find(|c| c.controller == Controller::Memory);
                assert_eq!(memory.unwrap().limit, format!("memory {mem}M"));
            }
        }
    });
}

/// A measurement counts what the test's own launches left, never another launch's cgroup made
/// meanwhile (one that doesn't take the turn: started by hand, by another checkout's tests):
/// the same live cgroups are residue once the launch is the test's.
#[test]
#[ignore = "needs root: run by scripts/test"]
fn a_measurement_counts_only_the_tests_own_launches() {
    need(Who::Root);
    let _turn = turn();
    let w = World::new("attribution");
    let before = Residue::now();
    // The default policy's limits: as root, a cgroup per controller.
    let mut other = w
        .command(Who::Root)
        .args(["run", "--", "sh", "-c", "echo up; read x"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(other.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "up\n");
    assert!(before.left().is_empty(), "{:?}", before.left());
    launched(other.id());
    let ours = before.new_cgroups();
    assert!(!ours.is_empty(), "the launch's cgroups are not seen");
    let pid = other.id();
    assert!(
        ours.iter()
            .all(|p| p.to_string_lossy().contains(&format!("-{pid}-"))),
        "{ours:?}"
    );
    other.stdin.take().unwrap().write_all(b"done\n").unwrap();
    assert!(other.wait().unwrap().success());
    before.assert_nothing_left("after the run");
}
