//! Information leak probes: the caller's secret in the environment or through /proc/1, kernel
//! addresses, the kernel log, the host's mounts, the host's SysV shared memory.

use nix::errno::Errno;

use super::{DENIED, EPERM, Probe, call, read_text};
use crate::audit::{PROBE_PATH, Seen};
use crate::sys::abi::register;

probes! {
    "leak.environment", "launcher", &[], true, |c| match &c.secret {
        Some(s) if std::env::vars().any(|(_, v)| v.contains(s.as_str())) => Seen::Done("the caller's secret is in the environment".into()),
        Some(_) => Seen::Blocked("not in the environment".into()),
        None => Seen::NotApplicable("no secret given".into()),
    };
    "leak.pid-1-environ", "launcher", DENIED, true, |c| match (&c.secret, std::fs::read("/proc/1/environ")) {
        _ if c.battery_pid == 1 => Seen::NotApplicable("the battery is PID 1: /proc/1 is its own".into()),
        (Some(s), Ok(bytes)) if bytes.windows(s.len()).any(|w| w == s.as_bytes()) => Seen::Done("the supervisor's environment is readable through /proc/1/environ".into()),
        (_, Ok(_)) => Seen::Blocked("readable but without the secret".into()),
        (_, Err(e)) => Seen::Errno(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
    };
    // The reaper (PID 1) is a copy of the launcher: its command line would name the policy,
    // the bind sources and --setenv values. The audit's own launch carries the secret and
    // the probe's bind in its command line, so either showing there is the leak.
    "leak.pid-1-cmdline", "launcher", DENIED, true, |c| {
        if c.as_pid_1 { return Seen::NotApplicable("the program is PID 1 (as-pid-1): /proc/1/cmdline is its own".into()) }
        match std::fs::read("/proc/1/cmdline") {
            Ok(bytes) => {
                let has = |needle: &[u8]| !needle.is_empty() && bytes.windows(needle.len()).any(|w| w == needle);
                let secret = c.secret.as_deref().unwrap_or("").as_bytes();
                let shown = String::from_utf8_lossy(&bytes).replace('\0', " ");
                if has(secret) || has(PROBE_PATH.as_bytes()) {
                    Seen::Done(format!("the launcher's command line is readable through /proc/1/cmdline: {}", shown.chars().take(120).collect::<String>()))
                } else {
                    Seen::Blocked(format!("/proc/1/cmdline shows {:?}", shown.trim_end()))
                }
            }
            Err(e) => Seen::Errno(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
        }
    };
    "leak.kernel-modules", "capabilities", &[], true, |_| match read_text("/proc/modules") {
        Ok(t) if t.lines().any(|l| l.split(' ').nth(5).is_some_and(|a| a.trim_start_matches("0x").chars().any(|ch| ch != '0'))) => Seen::Done("module addresses readable".into()),
        Ok(_) => Seen::Blocked("addresses are zeroed".into()),
        Err(e) => Seen::Blocked(format!("{e:?}")),
    };
    "leak.dmesg", "seccomp", EPERM, true, |_| call("syslog", [3 /* READ_ALL */, 0, 0, 0, 0, 0]);
    "leak.host-mounts", "mount namespace", &[], true, |_| {
        let t = read_text("/proc/self/mountinfo").unwrap_or_default();
        if t.lines().any(|l| l.split(' ').nth(4).is_some_and(|p| p.starts_with("/tmp/root") || p.starts_with("/oldroot"))) { Seen::Done("the staging area or old root is visible".into()) } else { Seen::Blocked("only the sandbox's own mounts".into()) }
    };
    "leak.sysv-shm", "ipc namespace", &[Errno::ENOENT, Errno::EPERM, Errno::EACCES], true, |c| match c.shm_key {
        Some(key) => call("shmget", [register(key.into()), 0, 0, 0, 0, 0]),
        None => Seen::NotApplicable("no host segment".into()),
    };
}
