//! Resource probes: each limit the policy sets is pushed past (processes, memory, a tmpfs's size,
//! descriptors); a limit the host can't give is reported as a hole, and not tried.

use nix::errno::Errno;

use super::{EPERM, Probe};
use crate::audit::{Builder, Ctx, Seen, inside};

/// The smallest limit `v2` (a cgroup2 file, `pids.max`) or `v1` (a v1 controller and its file)
/// visible inside on this process's cgroup or one above it, as /proc/self/cgroup names them
/// under /sys/fs/cgroup (where a cgroup namespace or a container's bind shows the sandbox's own
/// cgroup at the top, its files are there). `max` and the v1 "no limit" (2^63 rounded down to a
/// page) are no limit.
pub fn visible_limit(v2: &str, v1: (&str, &str)) -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut places: Vec<(String, &str)> = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            places.push(("/sys/fs/cgroup".into(), path));
            places.push(("/sys/fs/cgroup/unified".into(), path));
        } else if controllers.split(',').any(|c| c == v1.0) {
            places.push((format!("/sys/fs/cgroup/{controllers}"), path));
            places.push((format!("/sys/fs/cgroup/{}", v1.0), path));
        }
    }
    let mut smallest: Option<u64> = None;
    for (mount, path) in places {
        let file = if mount.ends_with("cgroup") || mount.ends_with("unified") {
            v2
        } else {
            v1.1
        };
        let mut dir = std::path::PathBuf::from(path.trim_start_matches('/'));
        loop {
            let at = std::path::Path::new(&mount).join(&dir).join(file);
            let limit = std::fs::read_to_string(at)
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
                .filter(|n| *n < 1 << 62);
            if let Some(n) = limit {
                smallest = Some(smallest.map_or(n, |s| s.min(n)));
            }
            if !dir.pop() {
                break;
            }
        }
    }
    smallest
}

/// Processes: the policy's pids limit, or in a sandbox kekkai did not build, one visible inside.
fn fork_bomb(c: &Ctx) -> Seen {
    if let Some(why) = &c.dropped_pids {
        return Seen::Done(format!(
            "nothing limits processes: the policy's pids limit is not enforced on this host ({why}); not tried"
        ));
    }
    if c.built_by == Builder::Kekkai {
        return inside::fork_until_limit(c.pids_limit);
    }
    match visible_limit("pids.max", ("pids", "pids.max")) {
        Some(n) => inside::fork_until_limit(Some(n)),
        None => Seen::Done("nothing limits processes: no pids limit is visible inside (cgroup pids.max); not tried".into()),
    }
}

/// Memory: the policy's limit, or in a sandbox kekkai did not build, one visible inside.
fn memory(c: &Ctx) -> Seen {
    if let Some(why) = &c.dropped_memory {
        return Seen::Done(format!(
            "nothing limits memory: the policy's memory limit is not enforced on this host ({why}); not tried"
        ));
    }
    if c.built_by == Builder::Kekkai {
        return inside::allocate_past_limit(c.memory_limit);
    }
    match visible_limit("memory.max", ("memory", "memory.limit_in_bytes")) {
        Some(n) => inside::allocate_past_limit(Some(n)),
        None => Seen::Done("nothing limits memory: no memory limit is visible inside (cgroup memory.max); not tried".into()),
    }
}

probes! {
    // A limit the policy asks for and the host can't give is a hole, not "not applicable";
    // it is not tried, which would be a fork bomb or a memory grab on the host itself.
    "resources.fork-bomb", "cgroup pids", &[Errno::EAGAIN], false, fork_bomb;
    "resources.memory", "cgroup memory", &[Errno::ENOMEM], false, memory;
    "resources.dropped-limits", "cgroup", &[], false, |c| {
        if let Some(unknown) = c.unknown("the limits it promises") {
            unknown
        } else if c.limits.is_empty() {
            Seen::NotApplicable("the policy sets no cgroup limit".into())
        } else if c.dropped_limits.is_empty() {
            Seen::Blocked(format!("every limit holds: {}", c.limits.join(", ")))
        } else {
            Seen::Done(format!("not enforced on this host: {}", c.dropped_limits.join("; ")))
        }
    };
    // Under another launcher the temporary directory may be the host's own: filling it could
    // fill the host's.
    "resources.tmpfs-fill", "tmpfs size", &[Errno::ENOSPC, Errno::EDQUOT, Errno::EFBIG], false, |c| {
        c.unknown("whether its temporary directory is its own").unwrap_or_else(|| match c.writable_dir() {
            Ok(dir) => inside::fill_tmpfs(dir, c.scratch_size),
            Err(na) => na,
        })
    };
    "resources.fd-exhaustion", "rlimit", &[Errno::EMFILE], true, |c| inside::open_until_limit(c.nofile_limit);
    "resources.rlimit-raise", "rlimit", EPERM, true, |_| {
        match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
            Ok((_, hard)) if hard != u64::MAX => Seen::from(nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard + 1, hard + 1).map(|()| 0)),
            Ok(_) => Seen::Done("RLIMIT_NOFILE is unlimited".into()),
            Err(e) => Seen::Errno(e),
        }
    };
}
