//! Launcher hygiene probes: what kekkai itself could leave the program: descriptors, a working
//! directory outside the root, its own executable to overwrite.

use nix::errno::Errno;

use super::{Probe, open_write, pid_1_is_self};
use crate::audit::Seen;

probes! {
    "launcher.leaked-fds", "launcher", &[], true, |c| {
        // What the program had when it started (the battery looked before opening anything).
        let extra: Vec<&String> = c.initial_fds.iter().filter(|f| !matches!(f.as_str(), "0" | "1" | "2")).collect();
        if extra.is_empty() { Seen::Blocked("only stdio".into()) } else { Seen::Done(format!("inherited descriptors: {extra:?}")) }
    };
    "launcher.cwd-outside-root", "launcher", &[], true, |_| match std::fs::read_link("/proc/self/cwd") {
        Ok(p) if p.to_string_lossy().starts_with("(unreachable)") => Seen::Done(format!("cwd outside the root: {}", p.display())),
        Ok(p) => Seen::Blocked(format!("cwd {}", p.display())),
        Err(e) => Seen::Errno(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
    };
    "launcher.self-exe-overwrite", "launcher", &[Errno::ETXTBSY, Errno::EACCES, Errno::EROFS, Errno::EPERM], true, |_| open_write("/proc/self/exe");
    "launcher.pid-1-exe-overwrite", "launcher", &[Errno::ETXTBSY, Errno::EACCES, Errno::EROFS, Errno::EPERM, Errno::ENOENT], true, |c| pid_1_is_self(c).unwrap_or_else(|| open_write("/proc/1/exe"));
}
