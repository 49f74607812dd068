//! A test's world: kekkai and the probe in a scratch directory every user can enter, and the
//! ways to run kekkai there as root, as the test user, and in a delegated cgroup.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use super::lock::{Share, share};
use super::{Delegated, Mode, Scratch, Who, code, launched, test_user, verdicts};

/// The environment every run of kekkai starts from (plus `HOME`, the world's directory).
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A test's world: a scratch directory holding kekkai, the test probe (`kekkai-probe`) and the
/// audit's probe program (`kekkai-audit-probe`), used as the working
/// directory of every run. The binaries are hard-linked (or copied) there because the checkout
/// may sit where the unprivileged test user can't enter. While it lives it holds a share of the
/// machine (see [`turn`](super::turn)).
pub struct World {
    /// The scratch directory (also the working directory).
    pub dir: Scratch,
    _share: Share,
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
        let share = share();
        let dir = Scratch::new(tag);
        place(env!("CARGO_BIN_EXE_kekkai"), dir.path());
        place(env!("CARGO_BIN_EXE_kekkai-probe"), dir.path());
        // Beside kekkai, where `kekkai audit` looks for it (as `cargo install` puts it).
        place(env!("CARGO_BIN_EXE_kekkai-audit-probe"), dir.path());
        World { dir, _share: share }
    }

    /// A new world whose directory belongs to the unprivileged test user. `build` runs a root
    /// caller's program as the owner of the working directory and refuses a root-owned one (it
    /// would be host root); a rootless caller's program may write there too.
    pub fn of_test_user(tag: &str) -> World {
        let w = World::new(tag);
        w.dir.give_to_test_user(w.dir.path());
        w
    }

    /// The audit's probe program.
    pub fn audit_probe(&self) -> PathBuf {
        self.dir.join("kekkai-audit-probe")
    }

    /// A private runtime directory for `who`'s sandboxes (`XDG_RUNTIME_DIR`: an unprivileged
    /// caller's state directory goes below it), in this world, mode 0700, owned by `who`.
    pub fn runtime_dir(&self, who: Who) -> PathBuf {
        let dir = self.dir.join("run");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        if who == Who::Rootless {
            let (uid, gid) = test_user().unwrap();
            nix::unistd::chown(&dir, Some(uid.into()), Some(gid.into())).unwrap();
        }
        dir
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

    /// `program`, run by `who` in this world's directory with a small environment.
    fn as_who(&self, program: impl AsRef<OsStr>, who: Who) -> Command {
        let mut c = Command::new(program);
        c.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", PATH)
            .env("LANG", "C.UTF-8")
            .env("HOME", self.dir.path());
        if who == Who::Rootless {
            let (uid, gid) = test_user().expect("test user");
            c.uid(uid).gid(gid);
        }
        c
    }

    /// A `kekkai` command run by `who`, in this world's directory, with a small environment.
    pub fn command(&self, who: Who) -> Command {
        self.as_who(self.kekkai(), who)
    }

    /// A `kekkai` command as [`World::command`], from a caller that ignores `signals` (by
    /// name: `HUP`, `PIPE`, `CHLD`; SIG_IGN, as `nohup` or `trap ''` leave them): perl (Debian's
    /// perl-base is essential) sets them and execs kekkai, which inherits them.
    pub fn command_ignoring(&self, who: Who, signals: &[&str]) -> Command {
        let mut c = self.as_who("perl", who);
        c.arg("-e")
            .arg("$SIG{$_} = 'IGNORE' for split ' ', shift; exec { $ARGV[0] } @ARGV or die \"exec: $!\"")
            .arg(signals.join(" "))
            .arg(self.kekkai());
        c
    }

    /// A `kekkai` command as [`World::command`], from a caller whose file mode creation mask
    /// is `mask` (as systemd's `UMask=` or a shell's `umask` leave it).
    pub fn command_with_umask(&self, who: Who, mask: u32) -> Command {
        let mut c = self.as_who("sh", who);
        c.arg("-c")
            .arg("umask \"$0\" && exec \"$@\"")
            .arg(format!("{mask:03o}"))
            .arg(self.kekkai());
        c
    }

    /// A `kekkai` command as [`World::command`], from a caller that leaves descriptor 7 open
    /// (not close-on-exec) for writing on `path` (a FIFO, say), as a shell's `exec 7>PATH`
    /// does.
    pub fn command_holding(&self, who: Who, path: &Path) -> Command {
        let mut c = self.as_who("sh", who);
        c.arg("-c")
            .arg("exec 7>\"$0\" && exec \"$@\"")
            .arg(path)
            .arg(self.kekkai());
        c
    }

    /// Runs `kekkai ARGS...` and waits.
    pub fn run<I, S>(&self, who: Who, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        output(self.command(who).args(args))
    }

    /// Starts `kekkai ARGS` as `who` (with `env` added), placed by `enter` before its first
    /// instruction: a shell waits until it has been moved, then becomes kekkai. stdin, stdout
    /// and stderr are pipes; stdin stays open for the program.
    pub fn spawn_placed(
        &self,
        who: Who,
        env: &[(&str, &str)],
        args: &[&str],
        enter: impl FnOnce(u32),
    ) -> Child {
        let mut shell = self.as_who("sh", who);
        shell
            .args(["-c", "read go; exec \"$0\" \"$@\""])
            .arg(self.kekkai())
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = shell.spawn().unwrap();
        // The shell becomes kekkai: the same process.
        launched(child.id());
        enter(child.id());
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        child
    }
}

/// Runs `c` (a `kekkai` command, or one that execs kekkai) as [`Command::output`] does,
/// registering the supervisor as one this test [`launched`].
pub fn output(c: &mut Command) -> Output {
    let child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    launched(child.id());
    child.wait_with_output().unwrap()
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
        return output(c.args(args));
    }
    let deleg = Delegated::new();
    let mut child = w.spawn_placed(Who::Rootless, env, args, |pid| deleg.enter(pid));
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    drop(deleg);
    out
}

/// `kekkai audit --json ARGS` in `mode` → (exit code, probe name → "verdict (detail)").
pub fn audit(w: &World, mode: Mode, args: &[&str]) -> (i32, BTreeMap<String, String>) {
    let mut all = vec!["audit", "--json"];
    all.extend_from_slice(args);
    let o = run_as(w, mode, &all);
    let verdicts = verdicts(&o)
        .into_iter()
        .map(|(name, (verdict, detail))| (name, format!("{verdict} ({detail})")))
        .collect();
    (code(&o), verdicts)
}
