//! Running real sandboxes from tests, as root and as an unprivileged user.
//!
//! The binaries are hard-linked (or copied) into a fresh world-readable directory, because the
//! checkout may sit where the unprivileged test user can't enter. The unprivileged user is
//! created by `scripts/setup-test-env` (`KEKKAI_TEST_USER`, default `kekkai-test`). A test
//! that can't run here skips — except with `CI=true`, where a skip is a failure.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use kekkai::launch::cgroup::Hierarchies;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How long a test waits for something that must happen (output, an exit) before it fails: a
/// watchdog for hangs only, never a measure of speed, so far above what a slow machine needs.
pub const HANG: std::time::Duration = std::time::Duration::from_secs(120);

/// Who runs kekkai.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The test process's own identity, which must be root.
    Root,
    /// The unprivileged test user.
    Rootless,
}

/// Is this a CI run (where skipping is failing)?
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips the calling test (returns true) when `missing` is Some, or fails it in CI.
pub fn skip(missing: Option<String>) -> bool {
    match missing {
        None => false,
        Some(why) if in_ci() => panic!("CI=true: this test can't be skipped, but {why}"),
        Some(why) => {
            eprintln!("skipped: {why}");
            true
        }
    }
}

/// The unprivileged test user's (uid, gid).
pub fn test_user() -> Option<(u32, u32)> {
    let name = std::env::var("KEKKAI_TEST_USER").unwrap_or_else(|_| "kekkai-test".into());
    let user = nix::unistd::User::from_name(&name).ok().flatten()?;
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

/// Why `who` can't run here, if it can't.
pub fn unavailable(who: Who) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("the launch tests run as root (they also drive the unprivileged user)".into());
    }
    if who == Who::Rootless && test_user().is_none() {
        return Some("no unprivileged test user: run scripts/setup-test-env".into());
    }
    None
}

/// A number unique within this test process.
pub fn unique() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A fresh directory (mode 0755) under /tmp, removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    /// Creates it.
    pub fn new(tag: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(format!("/tmp/kekkai-it-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Scratch(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path below it.
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.0.join(p)
    }

    /// Writes a file (readable by everyone) below it.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    /// Makes a path owned by the unprivileged test user (for writable binds).
    pub fn give_to_test_user(&self, p: &Path) {
        if let Some((uid, gid)) = test_user() {
            nix::unistd::chown(
                p,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .unwrap();
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test's world: a scratch directory holding kekkai and the probe, used as the working
/// directory of every run.
pub struct World {
    /// The scratch directory (also the working directory).
    pub dir: Scratch,
}

fn place(bin: &str, dir: &Path) -> PathBuf {
    let src = PathBuf::from(bin);
    let name = src.file_name().unwrap();
    let dst = dir.join(name);
    if std::fs::hard_link(&src, &dst).is_err() {
        std::fs::copy(&src, &dst).unwrap();
    }
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
    dst
}

impl World {
    /// A new world with fresh copies of the binaries.
    pub fn new(tag: &str) -> World {
        let dir = Scratch::new(tag);
        place(env!("CARGO_BIN_EXE_kekkai"), dir.path());
        place(env!("CARGO_BIN_EXE_kekkai-probe"), dir.path());
        World { dir }
    }

    /// A new world whose directory belongs to the unprivileged test user. `build` runs a root
    /// caller's program as the owner of the working directory and refuses a root-owned one (it
    /// would be host root); a rootless caller's program may write there too.
    pub fn of_test_user(tag: &str) -> World {
        let w = World::new(tag);
        w.dir.give_to_test_user(w.dir.path());
        w
    }

    /// kekkai's path.
    pub fn kekkai(&self) -> PathBuf {
        self.dir.join("kekkai")
    }

    /// The probe's path (inside the sandbox it is at the same path: the default policy binds
    /// the working directory read-only onto itself).
    pub fn probe(&self) -> String {
        self.dir.join("kekkai-probe").display().to_string()
    }

    /// A `kekkai` command run by `who`, in this world's directory, with a small environment.
    pub fn command(&self, who: Who) -> Command {
        let mut c = Command::new(self.kekkai());
        c.current_dir(self.dir.path())
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C.UTF-8")
            .env("HOME", self.dir.path());
        if who == Who::Rootless {
            let (uid, gid) = test_user().expect("test user");
            c.uid(uid).gid(gid);
        }
        c
    }

    /// Runs `kekkai ARGS...` and waits.
    pub fn run<I, S>(&self, who: Who, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(who).args(args).output().unwrap()
    }
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The exit code, or 128+signal as a shell reports it.
pub fn code(o: &Output) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    o.status
        .code()
        .unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0))
}

/// Asserts a run ended with `want`, showing its output otherwise.
pub fn assert_code(o: &Output, want: i32) {
    assert_eq!(
        code(o),
        want,
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// How the run is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As root.
    Root,
    /// Unprivileged, inside a cgroup delegated to the test user.
    Delegated,
    /// Unprivileged, no delegation: hard limits refuse, best-effort drops them.
    Plain,
}

impl Mode {
    /// Root as root, anyone else as a plain unprivileged run.
    pub fn plain(who: Who) -> Mode {
        if who == Who::Root {
            Mode::Root
        } else {
            Mode::Plain
        }
    }

    pub fn who(self) -> Who {
        if self == Mode::Root {
            Who::Root
        } else {
            Who::Rootless
        }
    }
}

/// The directories kekkai may create cgroups in, for this test process.
pub fn cgroup_dirs() -> Vec<PathBuf> {
    let h = Hierarchies::read();
    let mut dirs: Vec<PathBuf> = h.own_v2().into_iter().collect();
    for c in ["memory", "pids", "cpu", "cpuset", "freezer", "blkio"] {
        if let Some((_, d)) = h.own_v1(c) {
            dirs.push(d);
        }
    }
    dirs
}

/// A cgroup delegated to the test user in every hierarchy, removed on drop.
pub struct Delegated {
    dirs: Vec<PathBuf>,
}

impl Delegated {
    pub fn new() -> Delegated {
        let (uid, gid) = test_user().unwrap();
        let own = |p: &Path| {
            nix::unistd::chown(
                p,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .unwrap();
        };
        let name = format!("kekkai-test-delegated-{}-{}", std::process::id(), unique());
        let mut dirs = Vec::new();
        for parent in cgroup_dirs() {
            let dir = parent.join(&name);
            std::fs::create_dir(&dir).unwrap();
            // A v1 cpuset starts empty; give it the parent's CPUs and memory nodes.
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if dir.join(f).exists() {
                    let v = std::fs::read_to_string(parent.join(f)).unwrap();
                    std::fs::write(dir.join(f), v.trim()).unwrap();
                }
            }
            own(&dir);
            for f in [
                "cgroup.procs",
                "tasks",
                "cgroup.subtree_control",
                "cgroup.threads",
            ] {
                if dir.join(f).exists() {
                    own(&dir.join(f));
                }
            }
            dirs.push(dir);
        }
        Delegated { dirs }
    }

    pub fn enter(&self, pid: u32) {
        for d in &self.dirs {
            std::fs::write(d.join("cgroup.procs"), pid.to_string()).unwrap();
        }
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Runs `kekkai ARGS` in `mode`, placing it in a delegated cgroup when asked.
pub fn run_as(w: &World, mode: Mode, args: &[&str]) -> Output {
    run_as_with(w, mode, &[], args)
}

/// [`run_as`], with these variables added to kekkai's environment.
pub fn run_as_with(w: &World, mode: Mode, env: &[(&str, &str)], args: &[&str]) -> Output {
    if mode != Mode::Delegated {
        let mut c = w.command(mode.who());
        c.envs(env.iter().copied());
        return c.args(args).output().unwrap();
    }
    let deleg = Delegated::new();
    // The shell waits until it has been moved into the delegated cgroup, then becomes kekkai.
    let kekkai = w.kekkai().display().to_string();
    let mut shell = std::process::Command::new("sh");
    shell
        .args(["-c", "read go; exec \"$0\" \"$@\"", &kekkai])
        .args(args);
    let (uid, gid) = test_user().unwrap();
    use std::os::unix::process::CommandExt;
    shell
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("HOME", w.dir.path())
        .envs(env.iter().copied())
        .current_dir(w.dir.path())
        .uid(uid)
        .gid(gid)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = shell.spawn().unwrap();
    deleg.enter(child.id());
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    drop(deleg);
    out
}

/// The processes below `pid`: its children, and theirs.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let text =
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        for c in text
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
        {
            out.push(c);
            todo.push(c);
        }
    }
    out
}

/// Waits (without sleeping; at most [`HANG`]) until every pid has exited.
pub fn all_gone(pids: &[u32]) -> bool {
    use std::os::fd::AsFd;
    let fds: Vec<_> = pids
        .iter()
        .filter_map(|p| kekkai::sys::pidfd_open(nix::unistd::Pid::from_raw(*p as i32)).ok())
        .collect();
    let deadline = std::time::Instant::now() + HANG;
    fds.iter().all(|fd| {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut p = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        nix::poll::poll(
            &mut p,
            nix::poll::PollTimeout::try_from(left.as_millis() as i32).unwrap(),
        )
        .unwrap()
            == 1
    })
}

/// The tests of one file take turns where they measure machine-wide state (residue, cgroups):
/// another test's live sandbox would look like something left behind. Every test of such a file
/// that starts a sandbox with a cgroup takes its turn. An in-process lock is enough: the tests
/// of one file are threads of one process, and `cargo test` runs one test binary at a time
/// (two test runs on one machine at once would still see each other's sandboxes).
pub fn turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// The JSON run report kekkai wrote to stderr (`--report -`).
pub fn report(o: &Output) -> serde_json::Value {
    report_in(&stderr(o))
}

/// The JSON run report in a captured stderr.
pub fn report_in(err: &str) -> serde_json::Value {
    let start = err
        .find("{\n")
        .unwrap_or_else(|| panic!("no report in:\n{err}"));
    let end = err.rfind('}').unwrap();
    serde_json::from_str(&err[start..=end]).unwrap()
}
