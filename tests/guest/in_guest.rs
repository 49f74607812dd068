//! The tests that run inside the test kernel (`scripts/test-kernel`), driven by the host's
//! `guest_kernel_suite`. Each is ignored on the host, and fails there if run anyway.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use kekkai::launch::cgroup::{Hierarchies, Version};
use kekkai::launch::report::RunReport;
use kekkai::plan::Controller;
use rstest::rstest;

use crate::support::{
    Who, World, assert_code, code, descendants, need, report, report_in, stderr, stdout, test_user,
    unique,
};

// ── guest helpers ───────────────────────────────────────────────────────────────────────────

/// Is this the test kernel?
pub fn in_guest() -> bool {
    std::env::var_os("KEKKAI_IN_TEST_KERNEL").is_some()
}

/// The first line of each test here: fails it outside the guest (where it would show nothing
/// of the test kernel) or without the test user.
fn inside() {
    assert!(
        in_guest(),
        "this test runs inside the test kernel (scripts/test-kernel), started by the host's \
         guest_kernel_suite; on the host, skip it (`--skip in_guest::`)"
    );
    need(Who::Rootless);
}

/// A cgroup of the test's own, next to the test's cgroup (whose parent has every controller
/// enabled, as systemd sets it up); delegated to the test user for rootless runs. Drop kills
/// whatever is left in it and removes it with everything below.
struct Cg {
    dir: PathBuf,
    others: Vec<Child>,
}

impl Cg {
    fn new(who: Who) -> Cg {
        let own = Hierarchies::read().own_v2().unwrap();
        let dir =
            own.parent()
                .unwrap()
                .join(format!("guest-test-{}-{}", std::process::id(), unique()));
        std::fs::create_dir(&dir).unwrap();
        if who == Who::Rootless {
            let (uid, gid) = test_user().unwrap();
            for p in [
                dir.clone(),
                dir.join("cgroup.procs"),
                dir.join("cgroup.subtree_control"),
                dir.join("cgroup.threads"),
            ] {
                nix::unistd::chown(
                    &p,
                    Some(nix::unistd::Uid::from_raw(uid)),
                    Some(nix::unistd::Gid::from_raw(gid)),
                )
                .unwrap();
            }
        }
        Cg {
            dir,
            others: Vec::new(),
        }
    }

    fn enter(&self, pid: u32) {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).unwrap();
    }

    /// Puts another process (a `sleep`, run by `who`) into the cgroup.
    fn add_other(&mut self, who: Who) -> u32 {
        let mut c = Command::new("sleep");
        c.arg("1000");
        if who == Who::Rootless {
            let (uid, gid) = test_user().unwrap();
            c.uid(uid).gid(gid);
        }
        let child = c.spawn().unwrap();
        let pid = child.id();
        self.enter(pid);
        self.others.push(child);
        pid
    }

    /// Starts `kekkai ARGS` as `who`, inside this cgroup from its first instruction. stdin,
    /// stdout and stderr are pipes.
    fn spawn(&self, w: &World, who: Who, args: &[&str]) -> Child {
        w.spawn_placed(who, &[], args, |pid| self.enter(pid))
    }

    /// Runs `kekkai ARGS` in this cgroup and waits.
    fn run(&self, w: &World, who: Who, args: &[&str]) -> Output {
        let mut child = self.spawn(w, who, args);
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    /// Every cgroup below this one, deepest first.
    fn below(&self) -> Vec<PathBuf> {
        fn walk(d: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(d).unwrap().filter_map(Result::ok) {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), out);
                    out.push(e.path());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.dir, &mut out);
        out
    }

    /// The sandbox cgroups (not the launcher's leaf) below this one.
    fn sandboxes(&self) -> Vec<PathBuf> {
        self.below()
            .into_iter()
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                n.starts_with("kekkai-") && !n.starts_with("kekkai-launcher-")
            })
            .collect()
    }

    /// Asserts that kekkai left nothing running and no sandbox cgroup: at most its own empty
    /// leaf (which it can't remove while it lives in it; the next launch does).
    fn assert_clean(&self) {
        assert_eq!(
            self.sandboxes(),
            Vec::<PathBuf>::new(),
            "sandbox cgroups left"
        );
        for d in self.below() {
            let procs = read(&d, "cgroup.procs");
            assert!(
                procs.trim().is_empty(),
                "{} still holds {procs}",
                d.display()
            );
        }
    }

    fn subtree_control(&self) -> String {
        read(&self.dir, "cgroup.subtree_control")
    }
}

impl Drop for Cg {
    fn drop(&mut self) {
        for c in &mut self.others {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        for d in self.below() {
            let _ = std::fs::remove_dir(&d);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
}

/// The controllers the report says are enforced, with their cgroup version.
fn placed(r: &RunReport) -> Vec<(Controller, Version)> {
    r.enforced
        .cgroup
        .iter()
        .map(|c| (c.controller, c.version))
        .collect()
}

/// Memory and pids, both on cgroup v2.
fn both_v2() -> Vec<(Controller, Version)> {
    vec![
        (Controller::Memory, Version::V2),
        (Controller::Pids, Version::V2),
    ]
}

fn policy(w: &World, text: &str) -> String {
    let name = format!("p{}.yaml", unique());
    w.dir.write(&name, format!("version: 1\n{text}"));
    format!("./{name}")
}

// ── the kernel itself ───────────────────────────────────────────────────────────────────────

#[test]
#[ignore = "runs inside the test kernel: guest_kernel_suite runs it there"]
fn the_guest_has_pure_cgroup2_and_landlock_abi_2() {
    inside();
    let h = Hierarchies::read();
    assert!(h.v1_mounts.is_empty(), "v1 hierarchies: {:?}", h.v1_mounts);
    assert_eq!(h.v2_mount.as_deref(), Some(Path::new("/sys/fs/cgroup")));
    let own = h.own_v2().unwrap();
    let ctrls = read(own.parent().unwrap(), "cgroup.subtree_control");
    for c in ["cpu", "memory", "pids"] {
        assert!(ctrls.split_whitespace().any(|x| x == c), "{ctrls}");
    }
    assert_eq!(kekkai::sys::landlock_abi(), Ok(2));
}

// ── cgroup v2 limits ────────────────────────────────────────────────────────────────────────

const ALLOCATE_256M: &str = "python3 -c 'x = bytearray(256 << 20); print(len(x))'";

#[rstest]
#[ignore = "runs inside the test kernel: guest_kernel_suite runs it there"]
fn a_memory_limit_ends_the_run_with_an_oom_kill(#[values(Who::Root, Who::Rootless)] who: Who) {
    inside();
    let w = World::new("g-oom");
    let cg = Cg::new(who);
    let p = policy(
        &w,
        "extends: default\nlimits: { memory: 64M, swap: 0, compat: hard }\n",
    );
    let o = cg.run(
        &w,
        who,
        &[
            "run",
            "-p",
            &p,
            "--report",
            "-",
            "--",
            "sh",
            "-c",
            ALLOCATE_256M,
        ],
    );
    assert_code(&o, 137);
    assert!(
        stderr(&o).contains("killed: out of memory (limit 64M)"),
        "{}",
        stderr(&o)
    );
    let r = report(&o);
    assert!(r.ended.oom_killed);
    // The OOM killer ends python; the shell reports it.
    assert_eq!(r.ended.exited, Some(137));
    assert_eq!(r.ended.exit_code, 137);
    // The default policy's pids limit comes along.
    assert_eq!(placed(&r), both_v2());
    cg.assert_clean();
}

#[rstest]
#[ignore = "runs inside the test kernel: guest_kernel_suite runs it there"]
fn a_pids_limit_makes_fork_fail_with_eagain(#[values(Who::Root, Who::Rootless)] who: Who) {
    inside();
    let w = World::new("g-pids");
    let cg = Cg::new(who);
    let p = policy(&w, "extends: default\nlimits: { pids: 16, compat: hard }\n");
    let script = "import os, errno, time\nn = 0\nwhile True:\n    try:\n        pid = os.fork()\n    except OSError as e:\n        print(n, errno.errorcode[e.errno]); break\n    if pid == 0:\n        time.sleep(30); os._exit(0)\n    n += 1\n";
    w.dir.write("fork.py", script);
    let py = w.dir.join("fork.py").display().to_string();
    let o = cg.run(
        &w,
        who,
        &["run", "-p", &p, "--report", "-", "--", "python3", &py],
    );
    assert_code(&o, 0);
    // 16 tasks: the reaper, python, and the 14 children it could fork.
    assert_eq!(stdout(&o), "14 EAGAIN\n");
    let r = report(&o);
    assert!(r.ended.pids_limit_hit);
    assert_eq!(placed(&r), both_v2());
    cg.assert_clean();
}

fn cgroup_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The leaf move, the limits written, and CLONE_INTO_CGROUP: the program's cgroup namespace
/// is rooted at the sandbox's cgroup, which it can only be if the child was created in it
/// (a child moved in later would see `/../kekkai-...`).
#[rstest]
#[ignore = "runs inside the test kernel: guest_kernel_suite runs it there"]
fn the_program_starts_in_its_limited_cgroup_below_a_launcher_leaf(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    inside();
    let w = World::new("g-place");
    let cg = Cg::new(who);
    assert_eq!(cg.subtree_control().trim(), "");
    let p = policy(
        &w,
        "extends: default\nlimits: { memory: 96M, pids: 40, cpu: 0.5, cpu-weight: 50, compat: hard }\n",
    );
    let mut child = cg.spawn(
        &w,
        who,
        &[
            "run",
            "-p",
            &p,
            "--report",
            "-",
            "--",
            "sh",
            "-c",
            "cat /proc/self/cgroup; echo ready; read x",
        ],
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let inside = lines.next().unwrap().unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    assert_eq!(inside, "0::/", "the cgroup namespace is rooted elsewhere");
    let launcher = child.id();
    // kekkai moved itself into a leaf, so that the controllers could be enabled.
    let leaf = cgroup_of(launcher);
    assert!(
        leaf.contains(&format!("/kekkai-launcher-{launcher}-")),
        "{leaf}"
    );
    let ctrls = cg.subtree_control();
    for c in ["cpu", "memory", "pids"] {
        assert!(ctrls.split_whitespace().any(|x| x == c), "{ctrls}");
    }
    let sandboxes = cg.sandboxes();
    assert_eq!(sandboxes.len(), 1, "{sandboxes:?}");
    let sb = &sandboxes[0];
    assert_eq!(read(sb, "memory.max").trim(), (96u64 << 20).to_string());
    assert_eq!(read(sb, "memory.oom.group").trim(), "0");
    assert_eq!(read(sb, "pids.max").trim(), "40");
    assert_eq!(read(sb, "cpu.max").trim(), "50000 100000");
    assert_eq!(read(sb, "cpu.weight").trim(), "50");
    // Every process of the sandbox is in it; none is in the launcher's leaf.
    let procs = descendants(launcher);
    assert!(procs.len() >= 2, "{procs:?}");
    let rel = sb.strip_prefix("/sys/fs/cgroup").unwrap();
    for pid in &procs {
        assert_eq!(
            cgroup_of(*pid),
            format!("0::/{}", rel.display()),
            "pid {pid}"
        );
    }
    assert_eq!(
        read(sb, "cgroup.procs").split_whitespace().count(),
        procs.len()
    );
    child.stdin.as_mut().unwrap().write_all(b"done\n").unwrap();
    drop(child.stdin.take());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{err}");
    let r = report_in(&err);
    let mut got = placed(&r);
    got.sort_by_key(|(c, _)| *c);
    assert_eq!(
        got,
        [
            (Controller::Memory, Version::V2),
            (Controller::Pids, Version::V2),
            (Controller::Cpu, Version::V2),
        ]
    );
    assert_eq!(r.enforced.cgroup_dropped, Vec::<String>::new());
    cg.assert_clean();
}

/// cgroup v2 won't enable controllers in a cgroup that holds processes, and kekkai moves only
/// itself: with another process beside it, best-effort runs without the limits and says why,
/// hard refuses before anything runs. The other process stays where it was.
#[rstest]
#[ignore = "runs inside the test kernel: guest_kernel_suite runs it there"]
fn other_processes_in_the_cgroup_drop_or_refuse_the_limits(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values("best-effort", "hard")] compat: &str,
) {
    inside();
    let w = World::new("g-busy");
    let mut cg = Cg::new(who);
    let other = cg.add_other(who);
    let p = policy(
        &w,
        &format!("extends: default\nlimits: {{ memory: 64M, pids: 32, compat: {compat} }}\n"),
    );
    let o = cg.run(
        &w,
        who,
        &["run", "-p", &p, "--report", "-", "--", "echo", "ran"],
    );
    let why = "it also holds other processes";
    if compat == "hard" {
        assert_code(&o, 125);
        let e = stderr(&o);
        assert!(
            e.contains("step 1 (plan)")
                && e.contains("policy key: limits.compat")
                && e.contains(why),
            "{e}"
        );
        assert_eq!(stdout(&o), "");
    } else {
        assert_code(&o, 0);
        assert_eq!(stdout(&o), "ran\n");
        let r = report(&o);
        assert_eq!(placed(&r), []);
        let dropped = &r.enforced.cgroup_dropped;
        assert_eq!(dropped.len(), 2, "{dropped:?}");
        assert!(dropped.iter().all(|d| d.contains(why)), "{dropped:?}");
    }
    assert_eq!(cg.subtree_control().trim(), "", "controllers were enabled");
    assert_eq!(read(&cg.dir, "cgroup.procs").trim(), other.to_string());
    assert_eq!(cg.below(), Vec::<PathBuf>::new());
}

/// Without a pid namespace a daemon can leave the program's process tree; the supervisor's
/// cgroup.kill still ends it, and the sandbox's cgroup goes.
#[rstest]
#[ignore = "runs inside the test kernel: guest_kernel_suite runs it there"]
fn teardown_kills_a_daemon_with_cgroup_kill(#[values(Who::Root, Who::Rootless)] who: Who) {
    inside();
    let w = World::new("g-kill");
    let cg = Cg::new(who);
    let p = policy(
        &w,
        "extends: default\nreplace: [namespaces, mounts]\nnamespaces: [user, mount, net, ipc, uts]\n\
         mounts:\n  - { tmpfs: /tmp }\n  - { bind: \"${PWD}\", to: \"${PWD}\" }\n  - { dev: /dev }\n\
         limits: { pids: 64, compat: hard }\ntimeout: 60s\n",
    );
    let mut child = cg.spawn(
        &w,
        who,
        &[
            "run",
            "-p",
            &p,
            "--",
            "sh",
            "-c",
            "setsid -f sh -c 'trap \"\" TERM HUP; echo $$; exec sleep 1000'; read x; true",
        ],
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let Some(Ok(line)) = lines.next() else {
        let o = child.wait_with_output().unwrap();
        panic!("no daemon pid; status {:?}:\n{}", o.status, stderr(&o));
    };
    let daemon: u32 = line.trim().parse().unwrap();
    let sandboxes = cg.sandboxes();
    assert_eq!(sandboxes.len(), 1, "{sandboxes:?}");
    assert!(
        read(&sandboxes[0], "cgroup.procs")
            .split_whitespace()
            .any(|p| p == daemon.to_string()),
        "the daemon is not in the sandbox's cgroup"
    );
    let pidfd = kekkai::sys::pidfd_open(nix::unistd::Pid::from_raw(daemon as i32)).unwrap();
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // The daemon is gone (its pidfd is readable once it has exited).
    let mut fds = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&pidfd),
        nix::poll::PollFlags::POLLIN,
    )];
    assert_eq!(
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16)).unwrap(),
        1,
        "the daemon outlived the run"
    );
    cg.assert_clean();
}

#[rstest]
#[ignore = "runs inside the test kernel: guest_kernel_suite runs it there"]
fn a_timeout_leaves_no_process_and_no_cgroup(#[values(Who::Root, Who::Rootless)] who: Who) {
    inside();
    let w = World::new("g-timeout");
    let cg = Cg::new(who);
    let p = policy(
        &w,
        "extends: default\ntimeout: 2s\ntimeout-grace: 1s\nlimits: { memory: 64M, compat: hard }\n",
    );
    let mut child = cg.spawn(
        &w,
        who,
        &[
            "run",
            "-p",
            &p,
            "--",
            "sh",
            "-c",
            "trap '' TERM; sleep 1000 & echo ready; wait; wait",
        ],
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let inside = descendants(child.id());
    let o = child.wait_with_output().unwrap();
    assert_code(&o, 124);
    for pid in inside {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists() || cgroup_of(pid).is_empty(),
            "pid {pid} outlived the timeout"
        );
    }
    cg.assert_clean();
}

// ── Landlock ABI 2 ──────────────────────────────────────────────────────────────────────────

#[rstest]
#[case::tcp_bind("tcp-bind: [8080]", "landlock.tcp-bind needs ABI 4, the kernel has 2")]
#[case::tcp_connect(
    "tcp-connect: [443]",
    "landlock.tcp-connect needs ABI 4, the kernel has 2"
)]
#[case::scope("scope: [signal]", "landlock.scope needs ABI 6, the kernel has 2")]
#[ignore = "runs inside the test kernel: guest_kernel_suite runs it there"]
fn hard_landlock_refuses_what_abi_2_lacks(
    #[case] rule: &str,
    #[case] missing: &str,
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    inside();
    let w = World::new("g-llhard");
    let p = policy(
        &w,
        &format!("name: hard\nlandlock: {{ compat: hard, {rule} }}\n"),
    );
    let o = w.run(who, ["run", "-p", &p, "--", "echo", "ran"]);
    assert_code(&o, 125);
    let e = stderr(&o);
    assert!(
        e.contains("step 10 (landlock)")
            && e.contains(&format!("the kernel can't enforce: {missing};"))
            && e.contains("policy key: landlock.compat"),
        "{e}"
    );
    assert_eq!(stdout(&o), "", "the program ran");
}

#[rstest]
#[ignore = "runs inside the test kernel: guest_kernel_suite runs it there"]
fn best_effort_landlock_runs_and_reports_what_was_dropped(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    inside();
    let w = World::new("g-llbest");
    // The default policy is best-effort and asks for scopes; add the TCP rules.
    let p = policy(
        &w,
        "extends: default\nlandlock: { tcp-bind: [8080], tcp-connect: [443] }\n",
    );
    let o = w.run(who, ["run", "-p", &p, "--report", "-", "--", "echo", "ran"]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "ran\n");
    let ll = report(&o).enforced.landlock.unwrap();
    assert_eq!(ll.abi, 2);
    assert_eq!(ll.status, "fully-enforced");
    assert_eq!(
        ll.dropped,
        [
            "landlock.tcp-bind needs ABI 4, the kernel has 2",
            "landlock.tcp-connect needs ABI 4, the kernel has 2",
            "landlock.scope needs ABI 6, the kernel has 2"
        ]
    );
}

/// What ABI 2 has still holds: reading or executing outside the rules is EACCES, and the same
/// run with Landlock off succeeds (so Landlock, not permissions or mounts, is what refused).
#[rstest]
#[ignore = "runs inside the test kernel: guest_kernel_suite runs it there"]
fn abi_2_still_enforces_the_file_rules(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values(true, false)] landlock: bool,
) {
    inside();
    let w = World::new("g-llfs");
    // Outside the default policy's read and execute lists, visible in the read-only root.
    let srv = PathBuf::from(format!(
        "/srv/kekkai-guest-{}-{}",
        std::process::id(),
        unique()
    ));
    std::fs::create_dir_all(&srv).unwrap();
    std::fs::write(srv.join("secret"), "secret\n").unwrap();
    std::fs::copy("/bin/true", srv.join("true")).unwrap();
    let p = policy(
        &w,
        &format!("extends: default\nlandlock: {{ enabled: {landlock} }}\n"),
    );
    let script = format!(
        "import errno, os, subprocess\n\
         def errname(f):\n    try:\n        f(); return 'ok'\n    except OSError as e:\n        return errno.errorcode[e.errno]\n\
         print(errname(lambda: open('{0}/secret').read()))\n\
         print(errname(lambda: subprocess.run(['{0}/true'], check=True)))\n\
         print(errname(lambda: open('/usr/kekkai-guest-new', 'w')))\n",
        srv.display()
    );
    let o = w.run(who, ["run", "-p", &p, "--", "python3", "-c", &script]);
    std::fs::remove_dir_all(&srv).unwrap();
    assert_code(&o, 0);
    // Writing outside the writable mounts: the read-only root refuses first, either way.
    if landlock {
        assert_eq!(stdout(&o), "EACCES\nEACCES\nEROFS\n");
    } else {
        assert_eq!(stdout(&o), "ok\nok\nEROFS\n");
    }
}

// ── the escape probes ───────────────────────────────────────────────────────────────────────

/// `kekkai audit` under the default policy on this kernel, as root and as the test user: run
/// alone in a cgroup of its own, the limits hold, the fork bomb and the memory probe are
/// blocked and nothing escapes; run from the test's own cgroup, which holds the test itself,
/// the limits are dropped (best-effort) and the audit fails for exactly those limits — a
/// protection the policy asks for and the host can't give is a failure, never "not
/// applicable". Both with the default's own 1G: the memory probe touches a fixed number of
/// bytes and ends with the OOM kill however slow the emulation is (no probe's verdict depends
/// on time).
#[rstest]
#[ignore = "runs inside the test kernel: guest_kernel_suite runs it there"]
fn audit_finds_no_escape(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values(false, true)] own_cgroup: bool,
) {
    inside();
    let w = World::new("g-audit");
    let cg = Cg::new(who);
    let o = if own_cgroup {
        cg.run(&w, who, &["audit", "--json"])
    } else {
        w.run(who, ["audit", "--json"])
    };
    let json: serde_json::Value = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
    let probes = json["probes"].as_array().unwrap();
    let failed: Vec<&serde_json::Value> = probes
        .iter()
        .filter(|p| p["verdict"] != "blocked" && p["verdict"] != "not-applicable")
        .collect();
    let not_blocked: Vec<&str> = failed.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(probes.len() > 100, "{} probes", probes.len());
    let dropped = [
        "resources.fork-bomb",
        "resources.memory",
        "resources.dropped-limits",
    ];
    if own_cgroup {
        assert!(not_blocked.is_empty(), "{failed:#?}\n{}", stderr(&o));
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    } else {
        assert_eq!(not_blocked, dropped, "{failed:#?}\n{}", stderr(&o));
        for name in dropped {
            let p = probes.iter().find(|p| p["name"] == name).unwrap();
            assert_eq!(p["verdict"], "escaped", "{p}");
        }
        assert_eq!(code(&o), 1, "{}", stderr(&o));
    }
    cg.assert_clean();
}
