//! Filesystem, mount, /proc, /sys and /dev probes: writes to the read-only root, mount calls, the
//! new mount API, open-by-handle, Landlock's rules across mounts, kernel files in /proc and /sys,
//! device nodes.

use nix::errno::Errno;

use super::{
    DENIED, EPERM, NO_FILE, Probe, WRITE_DENIED, call, could_create, not_a_mount_point, nr,
    open_mode, open_read, open_write, pid_1_is_self, ptr, raw_syscall, read_text, writable_root,
};
use crate::audit::{Ctx, Seen, inside};
use crate::sys::abi::address;

/// Reads a file a policy should hide: empty (`/dev/null` over it) is blocked, contents escaped.
fn read_hidden(path: &str, what: &str) -> Seen {
    match std::fs::read(path) {
        Ok(b) if b.is_empty() => Seen::Blocked(format!("{path} reads as empty (hidden)")),
        Ok(b) => Seen::Done(format!("{what} is readable ({path}, {} bytes)", b.len())),
        Err(e) => Seen::Errno(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
    }
}

/// Renames a file of the battery's own from a writable mount into /etc (Landlock's REFER right).
fn rename_across(c: &Ctx) -> Seen {
    if let Some(unknown) = c.unknown("its Landlock rules") {
        return unknown;
    }
    let Some(p) = &c.landlock_write_target else {
        return Seen::NotApplicable("no writable mount to rename from".into());
    };
    let from = format!("{p}/.kekkai-audit-rename");
    if let Err(e) = std::fs::write(&from, b"") {
        return Seen::Errno(errno_of(&e));
    }
    let r = std::fs::rename(&from, "/etc/.kekkai-audit-rename");
    let _ = std::fs::remove_file(&from);
    match r {
        Ok(()) => {
            let _ = std::fs::remove_file("/etc/.kekkai-audit-rename");
            Seen::Done("renamed into /etc".into())
        }
        Err(e) => Seen::Errno(errno_of(&e)),
    }
}

/// Links a host file into a writable mount (Landlock's REFER right).
fn hardlink_across(c: &Ctx) -> Seen {
    if let Some(unknown) = c.unknown("its Landlock rules") {
        return unknown;
    }
    let Some(p) = &c.landlock_write_target else {
        return Seen::NotApplicable("no writable mount to link into".into());
    };
    match std::fs::hard_link("/etc/hostname", format!("{p}/.kekkai-audit-link")) {
        Ok(()) => {
            let _ = std::fs::remove_file(format!("{p}/.kekkai-audit-link"));
            Seen::Done("linked /etc/hostname into a writable directory".into())
        }
        Err(e) => Seen::Errno(errno_of(&e)),
    }
}

fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
}

probes! {
    // Could a file be made there? Asked with an unnamed file (see `could_create`): nothing is
    // ever left in these directories, whatever the sandbox allows.
    "fs.write-root", "read-only root", WRITE_DENIED, true, |c| writable_root(c).unwrap_or_else(|| could_create("/"));
    "fs.write-usr", "read-only root", WRITE_DENIED, true, |c| writable_root(c).unwrap_or_else(|| could_create("/usr"));
    "fs.write-etc", "read-only root", WRITE_DENIED, true, |c| writable_root(c).unwrap_or_else(|| could_create("/etc"));
    "fs.write-outside-rules", "landlock", WRITE_DENIED, false, |c| match &c.landlock_write_denied {
        Some(p) => could_create(p),
        None => c.unknown("its Landlock rules").unwrap_or_else(|| Seen::NotApplicable("every writable mount has a Landlock write rule".into())),
    };
    // A remount of a directory that is no mount point (the battery's own, or /proc/self/fd):
    // the capability check comes first (EPERM), then the kernel finds nothing to remount
    // (EINVAL) and changes nothing.
    "fs.remount-root", "capabilities", EPERM, true, |c| {
        let target = not_a_mount_point(c);
        Seen::from(raw_syscall(nr("mount"), [0, address(target.as_ptr()), 0, 0x20 /* MS_REMOUNT */ | 0x1 /* MS_RDONLY */ | 0x1000 /* MS_BIND */, 0, 0]))
    };
    "fs.mount-new", "capabilities", EPERM, true, |_| call("mount", [ptr(c"none"), ptr(c"/"), ptr(c"kekkai-no-such-fs"), 0, 0, 0]);
    // The capability check comes before the source is looked up (ENOENT when allowed).
    "fs.bind-mount", "capabilities", EPERM, true, |_| call("mount", [ptr(c"/kekkai-no-such-dir"), ptr(c"/"), 0, 0x1000 /* MS_BIND */, 0, 0]);
    // Not a mount point: EINVAL when the capability check lets it through.
    "fs.umount", "capabilities", EPERM, true, |c| {
        let target = not_a_mount_point(c);
        Seen::from(raw_syscall(nr("umount2"), [address(target.as_ptr()), 0, 0, 0, 0, 0]))
    };
    "fs.umount-to-reveal", "capabilities", EPERM, false, |c| {
        if let Some(unknown) = c.unknown("which paths it hides") { return unknown }
        let target = std::ffi::CString::new(c.hidden_path.clone().unwrap_or_else(|| "/proc".into())).unwrap_or_default();
        Seen::from(raw_syscall(nr("umount2"), [address(target.as_ptr()), 0x2 /* MNT_DETACH */, 0, 0, 0, 0]))
    };
    "fs.fsopen", "seccomp", EPERM, true, |_| call("fsopen", [ptr(c"kekkai-no-such-fs"), 0, 0, 0, 0, 0]);
    "fs.fsmount", "seccomp", EPERM, true, |_| call("fsmount", [u64::MAX, 0, 0, 0, 0, 0]);
    "fs.fspick", "seccomp", EPERM, true, |_| call("fspick", [u64::MAX, 0, 0xffff, 0, 0, 0]);
    "fs.fsconfig", "seccomp", EPERM, true, |_| call("fsconfig", [u64::MAX, 0, 0, 0, 0, 0]);
    "fs.open-tree", "seccomp", EPERM, true, |_| call("open_tree", [u64::MAX, ptr(c"/"), 0xffff_ffff, 0, 0, 0]);
    "fs.move-mount", "seccomp", EPERM, true, |_| call("move_mount", [u64::MAX, 0, u64::MAX, 0, 0xffff_ffff, 0]);
    "fs.mount-setattr", "seccomp", EPERM, true, |_| call("mount_setattr", [u64::MAX, 0, 0, 0, 0, 0]);
    "fs.chroot", "capabilities", EPERM, true, |_| call("chroot", [ptr(c"/"), 0, 0, 0, 0, 0]);
    "fs.pivot-root", "capabilities", EPERM, true, |_| call("pivot_root", [ptr(c"/kekkai-no-such-dir"), ptr(c"/kekkai-no-such-dir"), 0, 0, 0, 0]);
    "fs.open-by-handle", "seccomp", EPERM, true, |_| call("open_by_handle_at", [u64::MAX, 0, 0, 0, 0, 0]);
    "fs.name-to-handle", "seccomp", EPERM, true, |_| call("name_to_handle_at", [u64::MAX, 0, 0, 0, 0xffff_ffff, 0]);
    "fs.magic-link-reopen", "launcher", DENIED, true, |c| {
        // Reopening the reaper's (the launcher's) own files for writing through /proc.
        pid_1_is_self(c).unwrap_or_else(|| open_write("/proc/1/cwd/.kekkai-audit"))
    };
    "fs.rename-across", "landlock", &[Errno::EXDEV, Errno::EACCES, Errno::EPERM, Errno::EROFS, Errno::ENOENT], false, rename_across;
    "fs.hardlink-across", "landlock", &[Errno::EXDEV, Errno::EACCES, Errno::EPERM, Errno::EROFS, Errno::ENOENT], false, hardlink_across;
    "fs.read-outside-rules", "landlock", DENIED, true, |c| match &c.landlock_read_target {
        Some(p) => open_read(p),
        None => c.unknown("its Landlock rules").unwrap_or_else(|| Seen::NotApplicable("no file visible outside the Landlock read rules".into())),
    };
    "fs.exec-outside-rules", "landlock", &[Errno::EACCES, Errno::EPERM], true, |c| match &c.landlock_exec_target {
        Some(p) => inside::try_exec(p),
        None => c.unknown("its Landlock rules").unwrap_or_else(|| Seen::NotApplicable("no executable visible outside the Landlock execute rules".into())),
    };

    // ── /proc and /sys ──────────────────────────────────────────────────────────────────────
    "proc.core-pattern", "read-only proc", WRITE_DENIED, true, |_| open_write("/proc/sys/kernel/core_pattern");
    "proc.sysrq-trigger", "read-only proc", WRITE_DENIED, true, |_| open_write("/proc/sysrq-trigger");
    "proc.sys-vm", "read-only proc", WRITE_DENIED, true, |_| open_write("/proc/sys/vm/drop_caches");
    "proc.kcore", "capabilities", NO_FILE, true, |_| {
        use std::os::unix::fs::FileTypeExt;
        match std::fs::metadata("/proc/kcore") {
            // Hidden behind /dev/null (the fresh /proc masks it): opening that reveals nothing.
            Ok(m) if m.file_type().is_char_device() => Seen::Blocked("masked by /dev/null".into()),
            _ => open_read("/proc/kcore"),
        }
    };
    "proc.kallsyms-pointers", "capabilities", &[], true, |_| match read_text("/proc/kallsyms") {
        Ok(t) => {
            let leaked = t.lines().take(50).any(|l| l.split(' ').next().is_some_and(|a| a.chars().any(|c| c != '0')));
            if leaked { Seen::Done("kernel addresses readable".into()) } else { Seen::Blocked("addresses are zeroed".into()) }
        }
        Err(e) => Seen::Blocked(format!("{e:?}")),
    };
    // The kernel's boot parameters (tokens, root device, ...) and build configuration: the
    // shipped policies hide both.
    "proc.kernel-cmdline", "hide mounts", NO_FILE, true, |_| read_hidden("/proc/cmdline", "the kernel command line");
    "proc.kernel-config", "hide mounts", NO_FILE, true, |_| read_hidden("/proc/config.gz", "the kernel's build configuration");
    "proc.self-mem-of-pid-1", "launcher", DENIED, true, |c| pid_1_is_self(c).unwrap_or_else(|| open_mode("/proc/1/mem", nix::fcntl::OFlag::O_RDWR));
    // A map is written once; a second write (here: all ids to root) must fail.
    "proc.uid-map-rewrite", "user namespace", &[Errno::EPERM, Errno::EACCES, Errno::EINVAL, Errno::EROFS], true, |_| {
        match std::fs::OpenOptions::new().write(true).open("/proc/self/uid_map") {
            Ok(mut f) => {
                use std::io::Write as _;
                match f.write_all(b"0 0 4294967295\n") {
                    Ok(()) => Seen::Done("rewrote /proc/self/uid_map".into()),
                    Err(e) => Seen::Errno(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
                }
            }
            Err(e) => Seen::Errno(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
        }
    };
    "sys.uevent-helper", "mount namespace", NO_FILE, true, |_| open_write("/sys/kernel/uevent_helper");
    "sys.cgroup-release-agent", "mount namespace", NO_FILE, true, |_| open_write("/sys/fs/cgroup/memory/release_agent");
    "sys.cgroup-procs", "mount namespace", NO_FILE, true, |_| open_write("/sys/fs/cgroup/cgroup.procs");
    "sys.visible", "mount namespace", &[], true, |_| match std::fs::read_dir("/sys/kernel") {
        Ok(_) => Seen::Done("/sys/kernel is visible".into()),
        Err(e) => Seen::Blocked(format!("{:?}", Errno::from_raw(e.raw_os_error().unwrap_or(0)))),
    };

    // ── devices ─────────────────────────────────────────────────────────────────────────────
    "dev.mknod", "capabilities", &[Errno::EPERM, Errno::EROFS, Errno::EACCES], false, |c| {
        let dir = match c.writable_dir() { Ok(d) => d, Err(na) => return na };
        let path = format!("{dir}/.kekkai-audit-node");
        let dev = nix::sys::stat::makedev(1, 3);
        match nix::sys::stat::mknod(path.as_str(), nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::from_bits_truncate(0o600), dev) {
            Ok(()) => {
                let _ = nix::unistd::unlink(path.as_str());
                Seen::Done("created a device node".into())
            }
            Err(e) => Seen::Errno(e),
        }
    };
    "dev.mem", "minimal /dev", NO_FILE, true, |_| open_read("/dev/mem");
    "dev.kmem", "minimal /dev", NO_FILE, true, |_| open_read("/dev/kmem");
    "dev.port", "minimal /dev", NO_FILE, true, |_| open_read("/dev/port");
    "dev.kmsg", "minimal /dev", NO_FILE, true, |_| open_read("/dev/kmsg");
    "dev.kvm", "minimal /dev", NO_FILE, true, |_| open_read("/dev/kvm");
    "dev.block-devices", "minimal /dev", &[], true, |_| {
        use std::os::unix::fs::FileTypeExt;
        let found: Vec<String> = std::fs::read_dir("/dev")
            .map(|d| d.filter_map(Result::ok).filter(|e| e.file_type().is_ok_and(|t| t.is_block_device())).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        if found.is_empty() { Seen::Blocked("no block device in /dev".into()) } else { Seen::Done(format!("block devices: {}", found.join(" "))) }
    };
}
