//! Process and identity probes: ptrace and process_vm_* on processes outside, host pids,
//! capabilities left in the sets, no_new_privs, uid 0 and setuid binaries.

use nix::errno::Errno;

use super::{DENIED, EPERM, Probe, call, nr, pid_1_is_self, ptr, raw_syscall, status_field};
use crate::audit::Seen;
use crate::sys::abi::{address, register};

probes! {
    // PTRACE_SEIZE attaches without stopping the target; when the probe exits, the target is
    // simply let go.
    "process.ptrace-pid-1", "seccomp", DENIED, true, |c| pid_1_is_self(c).unwrap_or_else(|| call("ptrace", [0x4206 /* PTRACE_SEIZE */, 1, 0, 0, 0, 0]));
    "process.ptrace-parent", "seccomp", DENIED, true, |_| call("ptrace", [0x4206, register(nix::unistd::getppid().as_raw().into()), 0, 0, 0, 0]);
    "process.ptrace-traceme", "seccomp", EPERM, true, |_| call("ptrace", [0 /* PTRACE_TRACEME */, 0, 0, 0, 0, 0]);
    "process.vm-readv", "seccomp", DENIED, true, |_| call("process_vm_readv", [1, 0, 0, 0, 0, 0]);
    "process.vm-writev", "seccomp", DENIED, true, |_| call("process_vm_writev", [1, 0, 0, 0, 0, 0]);
    "process.pidfd-getfd", "seccomp", DENIED, true, |_| call("pidfd_getfd", [u64::MAX, 0, 0, 0, 0, 0]);
    "process.kill-host-pid", "pid namespace", &[Errno::ESRCH, Errno::EPERM], true, |c| match c.host_pid {
        Some(p) => Seen::from(nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).map(|()| 0)),
        None => Seen::NotApplicable("no host pid given".into()),
    };
    "process.host-pids-visible", "pid namespace", &[], true, |c| {
        let n = std::fs::read_dir("/proc").map(|d| d.filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().chars().all(|ch| ch.is_ascii_digit())).count()).unwrap_or(0);
        if c.pid_namespace && n > 64 { Seen::Done(format!("{n} processes visible")) } else if !c.pid_namespace { Seen::NotApplicable("the policy shares the host's pid namespace".into()) } else { Seen::Blocked(format!("{n} processes visible")) }
    };
    "process.kcmp", "seccomp", EPERM, true, |_| call("kcmp", [1, 1, 0, 0, 0, 0]);

    // ── capabilities and identity ───────────────────────────────────────────────────────────
    "caps.effective", "capabilities", &[], true, |c| match status_field("CapEff:") {
        Some(v) => {
            let have = u64::from_str_radix(&v, 16).unwrap_or(u64::MAX);
            if have & !c.kept_caps == 0 { Seen::Blocked(format!("CapEff {v}")) } else { Seen::Done(format!("CapEff {v}")) }
        }
        None => Seen::Errno(Errno::ENOENT),
    };
    "caps.bounding", "capabilities", &[], true, |c| match status_field("CapBnd:") {
        Some(v) => {
            let have = u64::from_str_radix(&v, 16).unwrap_or(u64::MAX);
            if have & !c.kept_caps == 0 { Seen::Blocked(format!("CapBnd {v}")) } else { Seen::Done(format!("CapBnd {v}")) }
        }
        None => Seen::Errno(Errno::ENOENT),
    };
    "caps.ambient-raise", "capabilities", EPERM, true, |_| call("prctl", [47 /* PR_CAP_AMBIENT */, 2 /* RAISE */, 21 /* CAP_SYS_ADMIN */, 0, 0, 0]);
    "caps.no-new-privs", "no_new_privs", &[], true, |_| match status_field("NoNewPrivs:") {
        Some(v) if v == "1" => Seen::Blocked("NoNewPrivs 1".into()),
        Some(v) => Seen::Done(format!("NoNewPrivs {v}")),
        None => Seen::Errno(Errno::ENOENT),
    };
    "caps.file-capability-xattr", "capabilities", &[Errno::EPERM, Errno::EACCES, Errno::EROFS, Errno::ENOENT, Errno::EINVAL], false, |c| {
        let dir = match c.writable_dir() { Ok(d) => d, Err(na) => return na };
        let path = format!("{dir}/.kekkai-audit-xattr");
        let _ = std::fs::write(&path, b"");
        // A v2 file capability granting nothing: harmless even when allowed.
        static VALUE: [u8; 20] = [0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let cpath = std::ffi::CString::new(path.clone()).unwrap_or_default();
        let r = raw_syscall(nr("setxattr"), [address(cpath.as_ptr()), ptr(c"security.capability"), address(VALUE.as_ptr()), 20, 0, 0]);
        let _ = std::fs::remove_file(&path);
        Seen::from(r)
    };
    // EINVAL: uid 0 is not even mapped in this user namespace.
    "identity.setuid-0", "capabilities", &[Errno::EPERM, Errno::EINVAL], true, |_| {
        if nix::unistd::getuid().is_root() { return Seen::NotApplicable("already uid 0 inside".into()) }
        Seen::from(nix::unistd::setuid(nix::unistd::Uid::from_raw(0)).map(|()| 0))
    };
    "identity.setgroups", "capabilities", EPERM, true, |_| Seen::from(nix::unistd::setgroups(&[nix::unistd::Gid::from_raw(0)]).map(|()| 0));
    "identity.setuid-binaries", "no_new_privs", &[], true, |_| {
        let nnp = status_field("NoNewPrivs:").as_deref() == Some("1");
        let nosuid = nix::sys::statvfs::statvfs("/usr/bin").map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_NOSUID)).unwrap_or(true);
        if nnp || nosuid { Seen::Blocked(format!("no_new_privs {nnp}, /usr/bin nosuid {nosuid}")) } else { Seen::Done("setuid binaries would gain privileges".into()) }
    };
}
