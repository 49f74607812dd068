//! cgroup v2: the unified hierarchy.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

use super::files::{CgroupStats, KILL_WAIT, PERIOD_US, field, kill_listed, read_whole, write_file};
use crate::launch::error::{StepError, Syscall};
use crate::plan::steps::Step;
use crate::plan::{Controller, LimitsPlan};
use crate::policy::KeyPath;

/// Does this cgroup have processes of its own?
pub fn holds_processes(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|t| !t.trim().is_empty())
}

/// The controllers enabled for `dir`'s children.
pub fn subtree_control(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("cgroup.subtree_control"))
        .map(|t| t.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// The processes in `dir` other than `me`.
pub fn other_processes(dir: &Path, me: u32) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|p| *p != me)
        .collect()
}

/// Moves the launcher into a leaf below `parent`, so controllers can be enabled in `parent`.
pub fn move_into_leaf(parent: &Path, name: &str) -> Result<(), StepError> {
    let leaf = parent.join(name.replacen("kekkai-", "kekkai-launcher-", 1));
    match std::fs::create_dir(&leaf) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(StepError::sys(
                Step::Plan,
                format!("mkdir({leaf:?})"),
                nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            ));
        }
    }
    write_file(&leaf, "cgroup.procs", &std::process::id().to_string(), None)
}

/// Enables controllers for `parent`'s children.
pub fn enable(parent: &Path, controllers: &[Controller], key: &KeyPath) -> Result<(), StepError> {
    if controllers.is_empty() {
        return Ok(());
    }
    let line: Vec<String> = controllers
        .iter()
        .map(|c| format!("+{}", c.v2_name()))
        .collect();
    write_file(parent, "cgroup.subtree_control", &line.join(" "), Some(key))
        .map_err(|e| e.hint("the cgroup must be delegated to kekkai (systemd: Delegate=yes)"))
}

/// Creates the sandbox's cgroup and writes the limits its controllers carry.
pub fn create(
    parent: &Path,
    name: &str,
    l: &LimitsPlan,
    controllers: &[Controller],
) -> Result<(PathBuf, OwnedFd), StepError> {
    let dir = parent.join(name);
    std::fs::create_dir(&dir).map_err(|e| {
        StepError::sys(
            Step::Plan,
            format!("mkdir({dir:?})"),
            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        )
    })?;
    let has = |c: Controller| controllers.contains(&c);
    let max = |v: u64| {
        if v == u64::MAX {
            "max".to_string()
        } else {
            v.to_string()
        }
    };
    let result = (|| {
        if has(Controller::Memory) {
            if let Some(v) = &l.memory {
                write_file(&dir, "memory.max", &max(**v), Some(&v.key))?;
            }
            if let Some(v) = &l.memory_high {
                write_file(&dir, "memory.high", &max(**v), Some(&v.key))?;
            }
            if let Some(v) = &l.swap {
                write_file(&dir, "memory.swap.max", &max(**v), Some(&v.key))?;
            }
            // `limits.oom`: `sandbox` kills every process of the cgroup together at an OOM
            // kill; `process` (0) lets the OOM killer end the one it chose, as on cgroup v1,
            // and a program that forks (`kekkai audit`'s battery) sees its child killed and
            // goes on. The end of the sandbox still takes everything with it (cgroup.kill).
            if l.memory.is_some() && *l.oom == crate::plan::Oom::Sandbox {
                write_file(&dir, "memory.oom.group", "1", Some(&l.oom.key))?;
            }
        }
        if has(Controller::Pids) {
            if let Some(v) = &l.pids {
                write_file(&dir, "pids.max", &v.to_string(), Some(&v.key))?;
            }
        }
        if has(Controller::Cpu) {
            if let Some(m) = &l.cpu_millis {
                write_file(
                    &dir,
                    "cpu.max",
                    &format!("{} {PERIOD_US}", **m * PERIOD_US / 1000),
                    Some(&m.key),
                )?;
            }
            if let Some(w) = &l.cpu_weight {
                write_file(&dir, "cpu.weight", &w.to_string(), Some(&w.key))?;
            }
        }
        if has(Controller::Cpuset) {
            if let Some(c) = &l.cpuset {
                write_file(&dir, "cpuset.cpus", c, Some(&c.key))?;
            }
        }
        if has(Controller::Io) {
            if let Some(w) = &l.io_weight {
                write_file(&dir, "io.weight", &format!("default {w}"), Some(&w.key))?;
            }
        }
        open(
            &dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .step(Step::Plan, || format!("open({dir:?}, O_PATH)"))
    })();
    match result {
        Ok(fd) => Ok((dir, fd)),
        Err(e) => {
            // Nothing is in it yet: don't leave it behind.
            let _ = std::fs::remove_dir(&dir);
            Err(e)
        }
    }
}

/// Kills every process in the cgroup (cgroup.kill, Linux 5.14+), falling back to SIGKILL for
/// each listed process, and waits until they are gone: SIGKILL is delivered asynchronously,
/// and the cgroup can't be removed while a process is still on its way out.
///
/// cgroup.events is read first: a cgroup that already says `populated 0` (every process in
/// it has exited: the usual end, a sandbox with a pid namespace) has nothing to kill, and
/// the kill is not written. Anything else — the file can't be opened or read, or it says
/// anything but `populated 0` — kills. The kill never covered a process put in afterwards
/// either (a write to cgroup.procs, a clone into the cgroup): those, as before, make the
/// removal fail and are reported as left over.
pub fn kill(dir: &Path) -> bool {
    let events = std::fs::File::open(dir.join("cgroup.events")).ok();
    let mut buf = [0u8; 256];
    if let Some(f) = &events {
        if unpopulated(f, &mut buf) == Some(true) {
            return true;
        }
    }
    if std::fs::write(dir.join("cgroup.kill"), "1").is_err() {
        kill_listed(dir);
    }
    match &events {
        Some(f) => wait_unpopulated(f, &mut buf, KILL_WAIT),
        None => wait_empty(dir, KILL_WAIT),
    }
}

/// Opens a running sandbox's cgroup directory `dir` (as `kekkai stop`, `rm -f` and `enter`
/// found it in /proc/PID/cgroup) once, and checks the descriptor: no symbolic link anywhere on
/// the way (`openat2(RESOLVE_NO_SYMLINKS)`, else `ELOOP`), on cgroupfs v2 (`fstatfs`, else
/// `EXDEV`), and named `name`, the `kekkai-PID-START` of the sandbox's record (else `EPERM`):
/// what is written below it then goes to that cgroup, whatever its path comes to name later.
pub fn open_sandbox(dir: &Path, name: &str) -> nix::Result<OwnedFd> {
    if dir.file_name().and_then(|n| n.to_str()) != Some(name) || !name.starts_with("kekkai-") {
        return Err(nix::errno::Errno::EPERM);
    }
    let rel = dir
        .strip_prefix("/")
        .map_err(|_| nix::errno::Errno::EXDEV)?;
    let root = open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let fd = crate::hostfs::open_beneath(
        std::os::fd::AsFd::as_fd(&root),
        rel,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
    )?;
    let fs = nix::sys::statfs::fstatfs(&fd)?;
    if fs.filesystem_type() != nix::sys::statfs::CGROUP2_SUPER_MAGIC {
        return Err(nix::errno::Errno::EXDEV);
    }
    Ok(fd)
}

/// Writes `cgroup.kill` of the cgroup whose directory is open as `dir` ([`open_sandbox`]):
/// `openat` below the descriptor, never a path.
pub fn kill_at(dir: std::os::fd::BorrowedFd<'_>) -> nix::Result<()> {
    let fd = nix::fcntl::openat(
        dir,
        "cgroup.kill",
        OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let n = nix::unistd::write(&fd, b"1")?;
    if n == 1 {
        Ok(())
    } else {
        Err(nix::errno::Errno::EIO)
    }
}

/// Whether an open cgroup.events says `populated 0`; `None` when it can't be read. Each read
/// also arms the next POLLPRI notification.
fn unpopulated(events: &std::fs::File, buf: &mut [u8]) -> Option<bool> {
    use std::os::unix::fs::FileExt;
    let n = events.read_at(buf, 0).ok()?;
    let text = buf.get(..n)?;
    Some(text.split(|&b| b == b'\n').any(|l| l == b"populated 0"))
}

/// Waits until the cgroup holds no process (`populated 0` in cgroup.events, which the kernel
/// signals with POLLPRI when it changes), at most `limit`. True when it is empty.
pub fn wait_empty(dir: &Path, limit: std::time::Duration) -> bool {
    let Ok(events) = std::fs::File::open(dir.join("cgroup.events")) else {
        return false;
    };
    wait_unpopulated(&events, &mut [0u8; 256], limit)
}

/// [`wait_empty`] on cgroup.events, already open.
fn wait_unpopulated(events: &std::fs::File, buf: &mut [u8], limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        match unpopulated(events, buf) {
            None => return false,
            Some(true) => return true,
            Some(false) => {}
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        let mut fds = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(events),
            nix::poll::PollFlags::POLLPRI,
        )];
        if let Err(e) = nix::poll::poll(
            &mut fds,
            nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX),
        ) {
            if e != nix::errno::Errno::EINTR {
                return false;
            }
        }
    }
}

/// Reads memory.events, pids.events and memory.peak.
pub fn stats(dir: &Path, available: &[String], s: &mut CgroupStats) {
    // A controller's files exist only where the parent offers it (on a hybrid host often
    // none): the others are not looked for.
    let has = |c: &str| available.iter().any(|a| a == c);
    if has("memory") {
        if let Ok(t) = read_whole(&dir.join("memory.events"), 256) {
            s.oom_kills += field(&t, "oom_kill ").unwrap_or(0);
        }
    }
    if has("pids") {
        if let Ok(t) = read_whole(&dir.join("pids.events"), 64) {
            s.pids_limit_hits += field(&t, "max ").unwrap_or(0);
        }
    }
    if has("memory") {
        if let Ok(t) = read_whole(&dir.join("memory.peak"), 64) {
            s.peak_memory = t.trim().parse().ok().or(s.peak_memory);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;
    use rstest::rstest;

    /// Only a line that is exactly `populated 0` says the cgroup is empty; anything else
    /// (populated, a text without the key, a look-alike) leaves it to the kill.
    #[rstest]
    #[case::empty("populated 0\nfrozen 0\n", Some(true))]
    #[case::empty_last_line("frozen 0\npopulated 0", Some(true))]
    #[case::populated("populated 1\nfrozen 0\n", Some(false))]
    #[case::no_key("frozen 0\n", Some(false))]
    #[case::nothing("", Some(false))]
    #[case::look_alike("populated 01\n", Some(false))]
    #[case::prefixed("xpopulated 0\n", Some(false))]
    fn cgroup_events_decide_the_kill(#[case] text: &str, #[case] want: Option<bool>) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("kekkai-cgroup-events-{}-{n}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        let got = unpopulated(&std::fs::File::open(&p).unwrap(), &mut [0u8; 256]);
        let _ = std::fs::remove_file(&p);
        assert_eq!(got, want);
    }

    /// A sandbox's cgroup directory is opened only if its name is the record's `kekkai-*`
    /// (`EPERM`), no link is on the way (`ELOOP`) and it is on cgroupfs v2 (`EXDEV`).
    #[rstest]
    #[case::other_name("kekkai-1-2", "kekkai-1-3", Errno::EPERM)]
    #[case::not_kekkais("user.slice", "user.slice", Errno::EPERM)]
    #[case::through_a_link("link/kekkai-1-2", "kekkai-1-2", Errno::ELOOP)]
    #[case::not_cgroupfs("real/kekkai-1-2", "kekkai-1-2", Errno::EXDEV)]
    #[case::missing("real/kekkai-9-9", "kekkai-9-9", Errno::ENOENT)]
    fn only_the_records_cgroup_on_cgroupfs_is_opened(
        #[case] rel: &str,
        #[case] name: &str,
        #[case] want: Errno,
    ) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let top = std::env::temp_dir().join(format!("kekkai-cg-open-{}-{n}", std::process::id()));
        std::fs::create_dir_all(top.join("real/kekkai-1-2")).unwrap();
        std::os::unix::fs::symlink(top.join("real"), top.join("link")).unwrap();
        let got = open_sandbox(&top.join(rel), name).map(drop);
        let _ = std::fs::remove_dir_all(&top);
        assert_eq!(got, Err(want));
    }

    /// A descriptor that can't be read (opened for writing only) is a doubt: no answer.
    #[test]
    fn an_unreadable_cgroup_events_is_no_answer() {
        let p = std::env::temp_dir().join(format!("kekkai-cgroup-events-w-{}", std::process::id()));
        let f = std::fs::File::create(&p).unwrap();
        let got = unpopulated(&f, &mut [0u8; 256]);
        let _ = std::fs::remove_file(&p);
        assert_eq!(got, None);
    }
}
