//! The processes a test started, and whether they are gone.

use std::os::fd::{AsFd, OwnedFd};

/// How long a test waits for something that must happen (output, an exit) before it fails: a
/// watchdog for hangs only, never a measure of speed, so far above what a slow machine needs.
pub const HANG: std::time::Duration = std::time::Duration::from_secs(120);

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

/// `id` (a `Child::id`, a line of `cgroup.procs`) as the `pid_t` nix takes. A pid is below
/// `pid_max`, at most 2^22 on Linux, so it always fits an `int`.
pub fn pid(id: u32) -> nix::unistd::Pid {
    nix::unistd::Pid::from_raw(i32::try_from(id).expect("a pid is below pid_max (2^22)"))
}

/// Processes held by pidfds, opened while they are known to be alive (so a pid reused later
/// can't stand in for one of them). Those already gone when opened are left out.
pub struct PidFds(Vec<OwnedFd>);

impl PidFds {
    /// Opens a pidfd for each of `pids` that still runs.
    pub fn open(pids: &[u32]) -> PidFds {
        PidFds(
            pids.iter()
                .filter_map(|p| kekkai::sys::pidfd_open(pid(*p)).ok())
                .collect(),
        )
    }

    /// Waits (without sleeping; at most [`HANG`]) until every one has exited: a pidfd becomes
    /// readable when its process is gone (the wait only catches a hang).
    pub fn all_gone(&self) -> bool {
        let deadline = std::time::Instant::now() + HANG;
        self.0.iter().all(|fd| {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let mut p = [nix::poll::PollFd::new(
                fd.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            nix::poll::poll(&mut p, nix::poll::PollTimeout::try_from(left).unwrap()).unwrap() == 1
        })
    }
}

/// Waits (without sleeping; at most [`HANG`]) until every pid has exited.
pub fn all_gone(pids: &[u32]) -> bool {
    PidFds::open(pids).all_gone()
}
