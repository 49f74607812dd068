//! Resource probes: each limit the policy sets is pushed past (processes, memory, a tmpfs's size,
//! descriptors); a limit the host can't give is reported as a hole, and not tried.

use nix::errno::Errno;

use super::{EPERM, Probe};
use crate::audit::{Seen, inside};

probes! {
    // A limit the policy asks for and the host can't give is a hole, not "not applicable";
    // it is not tried, which would be a fork bomb or a memory grab on the host itself.
    "resources.fork-bomb", "cgroup pids", &[Errno::EAGAIN], false, |c| match &c.dropped_pids {
        Some(why) => Seen::Done(format!("nothing limits processes: the policy's pids limit is not enforced on this host ({why}); not tried")),
        None => inside::fork_until_limit(c.pids_limit),
    };
    "resources.memory", "cgroup memory", &[Errno::ENOMEM], false, |c| match &c.dropped_memory {
        Some(why) => Seen::Done(format!("nothing limits memory: the policy's memory limit is not enforced on this host ({why}); not tried")),
        None => inside::allocate_past_limit(c.memory_limit),
    };
    "resources.dropped-limits", "cgroup", &[], false, |c| {
        if c.limits.is_empty() {
            Seen::NotApplicable("the policy sets no cgroup limit".into())
        } else if c.dropped_limits.is_empty() {
            Seen::Blocked(format!("every limit holds: {}", c.limits.join(", ")))
        } else {
            Seen::Done(format!("not enforced on this host: {}", c.dropped_limits.join("; ")))
        }
    };
    "resources.tmpfs-fill", "tmpfs size", &[Errno::ENOSPC, Errno::EDQUOT, Errno::EFBIG], false, |c| inside::fill_tmpfs(&c.scratch, c.scratch_size);
    "resources.fd-exhaustion", "rlimit", &[Errno::EMFILE], true, |c| inside::open_until_limit(c.nofile_limit);
    "resources.rlimit-raise", "rlimit", EPERM, true, |_| {
        match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
            Ok((_, hard)) if hard != u64::MAX => Seen::from(nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard + 1, hard + 1).map(|()| 0)),
            Ok(_) => Seen::Done("RLIMIT_NOFILE is unlimited".into()),
            Err(e) => Seen::Errno(e),
        }
    };
}
