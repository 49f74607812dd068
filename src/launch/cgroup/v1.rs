//! cgroup v1: one hierarchy per controller (hybrid hosts).

use std::path::{Path, PathBuf};

use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;

use super::files::{CgroupStats, PERIOD_US, field, kill_listed, listed, read_whole, write_file};
use crate::launch::error::{StepError, Syscall};
use crate::plan::steps::Step;
use crate::plan::{Controller, LimitsPlan};

/// Does this blkio hierarchy have a weight file?
pub fn has_io_weight(dir: &Path) -> bool {
    dir.join("blkio.bfq.weight").exists() || dir.join("blkio.weight").exists()
}

fn mkdir(dir: &Path) -> Result<(), StepError> {
    std::fs::create_dir(dir).map_err(|e| {
        StepError::sys(
            Step::Plan,
            format!("mkdir({dir:?})"),
            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        )
    })
}

/// Creates `parent/name` in the controller's hierarchy and writes its limits.
pub fn create(
    parent: &Path,
    name: &str,
    c: Controller,
    l: &LimitsPlan,
) -> Result<PathBuf, StepError> {
    let dir = parent.join(name);
    mkdir(&dir)?;
    let r = (|| -> Result<(), StepError> {
        match c {
            Controller::Memory => {
                if let Some(memory) = &l.memory {
                    let m = **memory;
                    let v = if m == u64::MAX {
                        "-1".to_string()
                    } else {
                        m.to_string()
                    };
                    write_file(&dir, "memory.limit_in_bytes", &v, Some(&memory.key))?;
                    if let Some(swap) = &l.swap {
                        let total = if m == u64::MAX || **swap == u64::MAX {
                            "-1".to_string()
                        } else {
                            m.saturating_add(**swap).to_string()
                        };
                        write_file(&dir, "memory.memsw.limit_in_bytes", &total, Some(&swap.key))
                            .map_err(|e| {
                                e.hint("swap accounting is off on this kernel (swapaccount=1)")
                            })?;
                    }
                }
            }
            Controller::Pids => {
                if let Some(v) = &l.pids {
                    write_file(&dir, "pids.max", &v.to_string(), Some(&v.key))?;
                }
            }
            Controller::Cpu => {
                if let Some(m) = &l.cpu_millis {
                    write_file(
                        &dir,
                        "cpu.cfs_period_us",
                        &PERIOD_US.to_string(),
                        Some(&m.key),
                    )?;
                    write_file(
                        &dir,
                        "cpu.cfs_quota_us",
                        &(**m * PERIOD_US / 1000).to_string(),
                        Some(&m.key),
                    )?;
                }
                if let Some(w) = &l.cpu_weight {
                    // cgroup v2's weight 100 is v1's 1024 shares.
                    write_file(
                        &dir,
                        "cpu.shares",
                        &(**w * 1024 / 100).max(2).to_string(),
                        Some(&w.key),
                    )?;
                }
            }
            Controller::Cpuset => {
                if let Some(cpus) = &l.cpuset {
                    // A v1 cpuset needs its memory nodes too: inherit the parent's.
                    let mems =
                        std::fs::read_to_string(parent.join("cpuset.mems")).unwrap_or_default();
                    write_file(&dir, "cpuset.mems", mems.trim(), Some(&cpus.key))?;
                    write_file(&dir, "cpuset.cpus", cpus, Some(&cpus.key))?;
                }
            }
            Controller::Io => {
                if let Some(w) = &l.io_weight {
                    let file = if dir.join("blkio.bfq.weight").exists() {
                        "blkio.bfq.weight"
                    } else {
                        "blkio.weight"
                    };
                    write_file(&dir, file, &w.clamp(1, 1000).to_string(), Some(&w.key))?;
                }
            }
        }
        Ok(())
    })();
    match r {
        Ok(()) => Ok(dir),
        Err(e) => {
            let _ = std::fs::remove_dir(&dir);
            Err(e)
        }
    }
}

/// `limits.oom: sandbox` on cgroup v1, which has no `memory.oom.group`: an eventfd the kernel
/// signals at each OOM event of the memory cgroup (`cgroup.event_control`, registered on
/// `memory.oom_control`); the supervisor polls it and ends the whole sandbox.
pub fn oom_events(
    dir: &Path,
    key: &crate::policy::KeyPath,
) -> Result<std::os::fd::OwnedFd, StepError> {
    use std::os::fd::AsRawFd;
    let efd = nix::sys::eventfd::EventFd::from_flags(
        nix::sys::eventfd::EfdFlags::EFD_CLOEXEC | nix::sys::eventfd::EfdFlags::EFD_NONBLOCK,
    )
    .step(Step::Plan, || "eventfd(EFD_CLOEXEC|EFD_NONBLOCK)".into())?;
    let control = std::fs::File::open(dir.join("memory.oom_control")).map_err(|e| {
        StepError::sys(
            Step::Plan,
            format!("open({:?})", dir.join("memory.oom_control")),
            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        )
        .key(key)
    })?;
    let line = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
    write_file(dir, "cgroup.event_control", &line, Some(key))?;
    Ok(std::os::fd::OwnedFd::from(efd))
}

/// A freezer cgroup for teardown.
pub fn create_freezer(parent: &Path, name: &str) -> Result<PathBuf, StepError> {
    let dir = parent.join(name);
    mkdir(&dir)?;
    Ok(dir)
}

/// The cgroup's `tasks` file, open for writing (close-on-exec): writing "0" to it moves the
/// writing thread in.
pub fn open_tasks(dir: &Path) -> Result<OwnedFd, StepError> {
    let path = dir.join("tasks");
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(&path)
        .map(OwnedFd::from)
        .map_err(|e| {
            StepError::sys(
                Step::Plan,
                format!("open({path:?}, O_WRONLY)"),
                nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            )
        })
}

/// Moves `pid` into the cgroup (`kekkai enter`'s joiner; a launch's child joins by itself,
/// see `Cgroups::v1_tasks`).
pub fn join(dir: &Path, pid: nix::unistd::Pid) -> Result<(), StepError> {
    write_file(dir, "cgroup.procs", &pid.to_string(), None)
}

/// Freezes the cgroup (so nothing can fork away), kills everything in it, thaws it.
pub fn freeze_and_kill(dir: &Path) {
    let _ = std::fs::write(dir.join("freezer.state"), "FROZEN");
    kill_listed(dir);
    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
}

/// Waits until no process is listed in the cgroup (v1 has no notification for it: it looks
/// again every few milliseconds), at most `limit`. True when it is empty.
pub fn wait_empty(dir: &Path, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if listed(dir).is_empty() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Reads what this controller recorded.
pub fn stats(c: Controller, dir: &Path, s: &mut CgroupStats) {
    match c {
        Controller::Memory => {
            if let Ok(t) = read_whole(&dir.join("memory.oom_control"), 256) {
                s.oom_kills += field(&t, "oom_kill ").unwrap_or(0);
            }
            if let Ok(t) = read_whole(&dir.join("memory.max_usage_in_bytes"), 64) {
                s.peak_memory = t.trim().parse().ok().or(s.peak_memory);
            }
        }
        Controller::Pids => {
            if let Ok(t) = read_whole(&dir.join("pids.events"), 64) {
                s.pids_limit_hits += field(&t, "max ").unwrap_or(0);
            }
        }
        _ => {}
    }
}
