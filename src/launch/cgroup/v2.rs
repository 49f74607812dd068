//! cgroup v2: the unified hierarchy.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

use super::{CgroupStats, Controller, write_file};
use crate::launch::error::{StepError, Syscall};
use crate::plan::LimitsPlan;
use crate::plan::steps::Step;
use crate::policy::KeyPath;

/// The CPU period kekkai uses for quotas, in microseconds.
pub const PERIOD_US: u64 = 100_000;

/// Does this cgroup have processes of its own?
pub fn holds_processes(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|t| !t.trim().is_empty())
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
pub fn enable(parent: &Path, controllers: &[Controller]) -> Result<(), StepError> {
    if controllers.is_empty() {
        return Ok(());
    }
    let line: Vec<String> = controllers
        .iter()
        .map(|c| format!("+{}", c.v2_name()))
        .collect();
    write_file(
        parent,
        "cgroup.subtree_control",
        &line.join(" "),
        Some(&KeyPath::root().key("limits")),
    )
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
    let key = |k: &str| KeyPath::root().key("limits").key(k);
    let max = |v: u64| {
        if v == u64::MAX {
            "max".to_string()
        } else {
            v.to_string()
        }
    };
    let result = (|| {
        if has(Controller::Memory) {
            if let Some(v) = l.memory {
                write_file(&dir, "memory.max", &max(v), Some(&key("memory")))?;
            }
            if let Some(v) = l.memory_high {
                write_file(&dir, "memory.high", &max(v), Some(&key("memory-high")))?;
            }
            if let Some(v) = l.swap {
                write_file(&dir, "memory.swap.max", &max(v), Some(&key("swap")))?;
            }
            // The whole sandbox is one unit: on OOM, kill it all rather than one process.
            let _ = write_file(&dir, "memory.oom.group", "1", None);
        }
        if has(Controller::Pids) {
            if let Some(v) = l.pids {
                write_file(&dir, "pids.max", &v.to_string(), Some(&key("pids")))?;
            }
        }
        if has(Controller::Cpu) {
            if let Some(m) = l.cpu_millis {
                write_file(
                    &dir,
                    "cpu.max",
                    &format!("{} {PERIOD_US}", m * PERIOD_US / 1000),
                    Some(&key("cpu")),
                )?;
            }
            if let Some(w) = l.cpu_weight {
                write_file(&dir, "cpu.weight", &w.to_string(), Some(&key("cpu-weight")))?;
            }
        }
        if has(Controller::Cpuset) {
            if let Some(c) = &l.cpuset {
                write_file(&dir, "cpuset.cpus", c, Some(&key("cpuset")))?;
            }
        }
        if has(Controller::Io) {
            if let Some(w) = l.io_weight {
                write_file(
                    &dir,
                    "io.weight",
                    &format!("default {w}"),
                    Some(&key("io-weight")),
                )?;
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
/// each listed process.
pub fn kill(dir: &Path) {
    if std::fs::write(dir.join("cgroup.kill"), "1").is_err() {
        super::v1::kill_listed(dir);
    }
}

fn field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
}

/// Reads memory.events, pids.events and memory.peak.
pub fn stats(dir: &Path, s: &mut CgroupStats) {
    if let Ok(t) = std::fs::read_to_string(dir.join("memory.events")) {
        s.oom_kills += field(&t, "oom_kill ").unwrap_or(0);
    }
    if let Ok(t) = std::fs::read_to_string(dir.join("pids.events")) {
        s.pids_limit_hits += field(&t, "max ").unwrap_or(0);
    }
    if let Ok(t) = std::fs::read_to_string(dir.join("memory.peak")) {
        s.peak_memory = t.trim().parse().ok().or(s.peak_memory);
    }
}
