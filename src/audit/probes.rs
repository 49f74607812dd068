//! The escape probes. Each tries one thing a sandboxed program should not be able to do, in a
//! way that does no harm if it is allowed: system calls get arguments that make a permitted call
//! fail on validation (EBADF, EFAULT, EINVAL, ENODEV) after the permission checks, files are
//! opened but never written, and nothing is sent to a device. A probe returns what the kernel
//! answered; the verdict is made from that and the errnos that mean "blocked".

use std::ffi::CStr;

use nix::errno::Errno;

use super::{Ctx, Seen};
use raw::{int80, raw_syscall};

/// The probes' raw system calls: the one place outside `sys` that calls what `sys` marks
/// unsafe, because only the probes know what their calls do.
#[allow(unsafe_code)]
mod raw {
    /// [`crate::sys::raw_syscall`] for the probes in this file.
    pub fn raw_syscall(nr: i64, args: [u64; 6]) -> nix::Result<i64> {
        // SAFETY: every probe in this file picks arguments that make a call the sandbox lets
        // through do nothing to this process's memory, descriptors or threads (the rule at the
        // top of the file): descriptors are invalid (u64::MAX), addresses are NULL or point at
        // `'static` or live strings and bytes the kernel only reads, requests and flags are
        // ones the kernel rejects after its permission checks, and what a call may create (a
        // namespace, a descriptor, a process that exits at once) is never touched by Rust
        // code. Each probe runs in a forked process of its own that reports and exits.
        unsafe { crate::sys::raw_syscall(nr, args) }
    }

    /// [`crate::sys::int80`] for the probes in this file.
    pub fn int80(nr: u32, a: u32, b: u32, c: u32) -> i64 {
        // SAFETY: as for `raw_syscall` above; the one probe that uses it asks for getpid.
        unsafe { crate::sys::int80(nr, a, b, c) }
    }
}

/// One probe.
pub struct Probe {
    /// Unique name, `category.what`.
    pub name: &'static str,
    /// Its category (the part before the dot).
    pub category: &'static str,
    /// The layer expected to stop it.
    pub layer: &'static str,
    /// Errnos that mean the attempt was stopped.
    pub blocked_by: &'static [Errno],
    /// May it run outside a sandbox (`--control`) without changing the machine?
    pub control_safe: bool,
    /// The attempt.
    pub run: fn(&Ctx) -> Seen,
}

const EPERM: &[Errno] = &[Errno::EPERM];
const DENIED: &[Errno] = &[Errno::EPERM, Errno::EACCES];
const NO_FILE: &[Errno] = &[Errno::ENOENT, Errno::EPERM, Errno::EACCES, Errno::EROFS];
const WRITE_DENIED: &[Errno] = &[Errno::EROFS, Errno::EACCES, Errno::EPERM, Errno::ENOENT];
const NET_DENIED: &[Errno] = &[
    Errno::ECONNREFUSED,
    Errno::ENETUNREACH,
    Errno::EACCES,
    Errno::EPERM,
    Errno::ENOENT,
];

fn nr(name: &str) -> i64 {
    crate::plan::names::syscall_number(name).unwrap_or(-1)
}

fn call(name: &str, args: [u64; 6]) -> Seen {
    Seen::from(raw_syscall(nr(name), args))
}

fn ptr(s: &'static CStr) -> u64 {
    s.as_ptr() as u64
}

/// A raw syscall that, if allowed, may leave a child process behind: the child exits at once.
fn call_forking(name: &str, args: [u64; 6]) -> Seen {
    match raw_syscall(nr(name), args) {
        Ok(0) => crate::sys::exit_now(0),
        Ok(pid) => {
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
            Seen::Done(format!("created process {pid}"))
        }
        Err(e) => Seen::Errno(e),
    }
}

fn open_mode(path: &str, flags: nix::fcntl::OFlag) -> Seen {
    match nix::fcntl::open(
        path,
        flags | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(_) => Seen::Done(format!("opened {path}")),
        Err(e) => Seen::Errno(e),
    }
}

fn open_write(path: &str) -> Seen {
    open_mode(path, nix::fcntl::OFlag::O_WRONLY)
}

fn open_read(path: &str) -> Seen {
    open_mode(path, nix::fcntl::OFlag::O_RDONLY)
}

/// Creates a file and removes it again.
fn create(path: &str) -> Seen {
    use nix::fcntl::OFlag;
    match nix::fcntl::open(
        path,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    ) {
        Ok(_) => {
            let _ = nix::unistd::unlink(path);
            Seen::Done(format!("created {path}"))
        }
        Err(e) => Seen::Errno(e),
    }
}

/// Writing to a root the policy made writable is not an escape.
fn writable_root(c: &Ctx) -> Option<Seen> {
    c.root_writable
        .then(|| Seen::NotApplicable("the policy makes the root writable".into()))
}

fn read_text(path: &str) -> Result<String, Errno> {
    std::fs::read_to_string(path).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
}

fn status_field(name: &str) -> Option<String> {
    read_text("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
}

// ── privileges left on host paths (issue 13: `host-privileges`) ──────────────────────────────

/// What one writable mount let a privilege probe do.
enum Outcome {
    /// The mount takes no new files at all (so nothing can be left there): the errno.
    NoFiles(Errno),
    /// The privileged step was refused: the errno, or the signal that killed it.
    Refused(Seen),
    /// The call worked but the kernel dropped the bit.
    Dropped(String),
    /// A privileged file was made (and removed again): what and where.
    Made(String),
}

/// Runs `attempt` on every writable mount (each with a temporary name of this probe's own,
/// removed afterwards) and sums up: one privileged file made anywhere is an escape.
fn on_writable_mounts(c: &Ctx, attempt: &dyn Fn(&str) -> Outcome) -> Seen {
    if c.writable_mounts.is_empty() {
        return Seen::NotApplicable("no writable mount".into());
    }
    let outcomes: Vec<(String, Outcome)> = c
        .writable_mounts
        .iter()
        .map(|dir| (dir.clone(), attempt(dir)))
        .collect();
    let mut refused = None;
    let mut dropped = None;
    let mut no_files = Vec::new();
    for (dir, outcome) in outcomes {
        match outcome {
            Outcome::Made(what) => return Seen::Done(format!("{what} on {dir}")),
            Outcome::Refused(seen) => {
                refused.get_or_insert(seen);
            }
            Outcome::Dropped(why) => {
                dropped.get_or_insert(format!("{why} on {dir}"));
            }
            Outcome::NoFiles(e) => no_files.push(format!("{dir}: {e:?}")),
        }
    }
    match (refused, dropped) {
        (Some(seen), _) => seen,
        (None, Some(why)) => Seen::Blocked(why),
        (None, None) => Seen::NotApplicable(format!(
            "no writable mount takes new files ({})",
            no_files.join(", ")
        )),
    }
}

/// This probe's own name in `dir`.
fn temp_name(dir: &str, what: &str) -> String {
    format!("{dir}/.kekkai-audit-{what}-{}", std::process::id())
}

/// Creates an ordinary file (0600), or says why the mount takes none.
fn plain_file(path: &str) -> Result<(), Errno> {
    use nix::fcntl::OFlag;
    nix::fcntl::open(
        path,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .map(drop)
}

/// The privileged step runs in a child of its own: a policy that kills on it (SIGSYS) must not
/// keep the file from being removed.
fn privileged_step(f: &dyn Fn() -> Result<(), Errno>) -> Option<Seen> {
    match super::isolated(&|| match f() {
        Ok(()) => Seen::Done(String::new()),
        Err(e) => Seen::Errno(e),
    }) {
        Seen::Done(_) => None,
        other => Some(other),
    }
}

/// Does `path` carry `bit` now?
fn has_bit(path: &str, bit: u32) -> bool {
    nix::sys::stat::lstat(path).is_ok_and(|st| st.st_mode & bit != 0)
}

/// chmod(2) an ordinary file of this probe's own to `mode`.
fn chmod_to(dir: &str, mode: u32, bit: u32, what: &str) -> Outcome {
    let path = temp_name(dir, what);
    if let Err(e) = plain_file(&path) {
        return Outcome::NoFiles(e);
    }
    let step = privileged_step(&|| {
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            path.as_str(),
            nix::sys::stat::Mode::from_bits_truncate(mode),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
    });
    let kept = has_bit(&path, bit);
    let _ = nix::unistd::unlink(path.as_str());
    match (step, kept) {
        (_, true) => Outcome::Made(format!("made a {what} file (mode {mode:o})")),
        (Some(seen), false) => Outcome::Refused(seen),
        (None, false) => Outcome::Dropped("chmod worked but the kernel dropped the bit".into()),
    }
}

/// open(2) with O_CREAT and `mode`.
fn create_with(dir: &str, mode: u32, bit: u32, what: &str) -> Outcome {
    use nix::fcntl::OFlag;
    let probe = temp_name(dir, &format!("{what}-plain"));
    if let Err(e) = plain_file(&probe) {
        return Outcome::NoFiles(e);
    }
    let _ = nix::unistd::unlink(probe.as_str());
    let path = temp_name(dir, what);
    let step = privileged_step(&|| {
        nix::fcntl::open(
            path.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::from_bits_truncate(mode),
        )
        .map(drop)
    });
    let kept = has_bit(&path, bit);
    let _ = nix::unistd::unlink(path.as_str());
    match (step, kept) {
        (_, true) => Outcome::Made(format!("created a {what} file (mode {mode:o})")),
        (Some(seen), false) => Outcome::Refused(seen),
        (None, false) => Outcome::Dropped("the file was made without the bit".into()),
    }
}

/// open(2) with O_TMPFILE and a setuid mode: an unnamed file, gone when it is closed.
fn tmpfile_with(dir: &str, mode: u32) -> Outcome {
    use nix::fcntl::OFlag;
    let open = |mode: u32| {
        nix::fcntl::open(
            dir,
            OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::from_bits_truncate(mode),
        )
    };
    if let Err(e) = open(0o600) {
        return Outcome::NoFiles(e);
    }
    let seen = super::isolated(&|| match open(mode) {
        Ok(fd) => match nix::sys::stat::fstat(&fd) {
            Ok(st) if st.st_mode & 0o4000 != 0 => Seen::Done("kept".into()),
            Ok(_) => Seen::Blocked("the kernel dropped the bit".into()),
            Err(e) => Seen::Errno(e),
        },
        Err(e) => Seen::Errno(e),
    });
    match seen {
        Seen::Done(_) => Outcome::Made(format!(
            "made an unnamed setuid file with O_TMPFILE (mode {mode:o}; linkat could name it)"
        )),
        Seen::Blocked(why) => Outcome::Dropped(why),
        other => Outcome::Refused(other),
    }
}

/// openat2(2) with O_CREAT and a setuid mode: the mode is in memory seccomp can't read.
fn openat2_with(dir: &str, mode: u32) -> Outcome {
    use nix::fcntl::{OFlag, OpenHow};
    let probe = temp_name(dir, "openat2-plain");
    if let Err(e) = plain_file(&probe) {
        return Outcome::NoFiles(e);
    }
    let _ = nix::unistd::unlink(probe.as_str());
    let path = temp_name(dir, "openat2");
    let step = privileged_step(&|| {
        let how = OpenHow::new()
            .flags(OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC)
            .mode(nix::sys::stat::Mode::from_bits_truncate(mode));
        nix::fcntl::openat2(nix::fcntl::AT_FDCWD, path.as_str(), how).map(drop)
    });
    let kept = has_bit(&path, 0o4000);
    let _ = nix::unistd::unlink(path.as_str());
    match (step, kept) {
        (_, true) => Outcome::Made(format!(
            "created a setuid file with openat2 (mode {mode:o})"
        )),
        (Some(seen), false) => Outcome::Refused(seen),
        (None, false) => Outcome::Dropped("openat2 made the file without the bit".into()),
    }
}

/// setxattr(2) `security.capability` on a file of this probe's own: a v2 file capability that
/// grants nothing, harmless even where it is allowed.
fn file_capability(dir: &str) -> Outcome {
    let path = temp_name(dir, "fcap");
    if let Err(e) = plain_file(&path) {
        return Outcome::NoFiles(e);
    }
    static VALUE: [u8; 20] = [0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let cpath = std::ffi::CString::new(path.clone()).unwrap_or_default();
    let step = privileged_step(&|| {
        raw_syscall(
            nr("setxattr"),
            [
                cpath.as_ptr() as u64,
                ptr(c"security.capability"),
                VALUE.as_ptr() as u64,
                20,
                0,
                0,
            ],
        )
        .map(drop)
    });
    let _ = nix::unistd::unlink(path.as_str());
    match step {
        None => Outcome::Made("gave a file a capability (security.capability)".into()),
        Some(seen) => Outcome::Refused(seen),
    }
}

/// mknod(2) of /dev/null's numbers (1:3), mode 0600.
fn device_node(dir: &str) -> Outcome {
    let probe = temp_name(dir, "node-plain");
    if let Err(e) = plain_file(&probe) {
        return Outcome::NoFiles(e);
    }
    let _ = nix::unistd::unlink(probe.as_str());
    let path = temp_name(dir, "node");
    let step = privileged_step(&|| {
        nix::sys::stat::mknod(
            path.as_str(),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(1, 3),
        )
    });
    let _ = nix::unistd::unlink(path.as_str());
    match step {
        None => Outcome::Made("made a character device (1:3)".into()),
        Some(seen) => Outcome::Refused(seen),
    }
}

/// Reads one byte of a file only root may read. A file hidden behind /dev/null is blocked.
fn read_root_secret(path: Option<&str>, missing: &str) -> Seen {
    use std::io::Read as _;
    let Some(path) = path else {
        return Seen::NotApplicable(missing.into());
    };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return Seen::Errno(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
    };
    match file.metadata() {
        Ok(m) if !m.is_file() => return Seen::Blocked(format!("{path} is not the host's file")),
        Err(e) => return Seen::Errno(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
        Ok(_) => {}
    }
    let mut byte = [0u8; 1];
    match file.read(&mut byte) {
        Ok(n) => Seen::Done(format!(
            "read {path} ({n} byte of it), which only root may read"
        )),
        Err(e) => Seen::Errno(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
    }
}

/// Reads a file a policy should hide: empty (`/dev/null` over it) is blocked, contents escaped.
fn read_hidden(path: &str, what: &str) -> Seen {
    match std::fs::read(path) {
        Ok(b) if b.is_empty() => Seen::Blocked(format!("{path} reads as empty (hidden)")),
        Ok(b) => Seen::Done(format!("{what} is readable ({path}, {} bytes)", b.len())),
        Err(e) => Seen::Errno(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
    }
}

macro_rules! probes {
    ($($name:literal, $layer:literal, $blocked:expr, $safe:literal, $run:expr;)*) => {
        /// Every probe, in report order.
        pub fn all() -> Vec<Probe> {
            vec![$(Probe {
                name: $name,
                category: match $name.split_once('.') { Some((c, _)) => c, None => $name },
                layer: $layer,
                blocked_by: $blocked,
                control_safe: $safe,
                run: $run,
            }),*]
        }
    };
}

// Constants used below.
const CLONE_NEWNS: u64 = 0x0002_0000;
const CLONE_NEWCGROUP: u64 = 0x0200_0000;
const CLONE_NEWUTS: u64 = 0x0400_0000;
const CLONE_NEWIPC: u64 = 0x0800_0000;
const CLONE_NEWUSER: u64 = 0x1000_0000;
const CLONE_NEWPID: u64 = 0x2000_0000;
const CLONE_NEWNET: u64 = 0x4000_0000;
const CLONE_NEWTIME: u64 = 0x80;
const SIGCHLD: u64 = 17;

probes! {
    // ── filesystem and mounts ───────────────────────────────────────────────────────────────
    "fs.write-root", "read-only root", WRITE_DENIED, false, |c| writable_root(c).unwrap_or_else(|| create("/.kekkai-audit-write"));
    "fs.write-usr", "read-only root", WRITE_DENIED, false, |c| writable_root(c).unwrap_or_else(|| create("/usr/.kekkai-audit-write"));
    "fs.write-etc", "read-only root", WRITE_DENIED, false, |c| writable_root(c).unwrap_or_else(|| create("/etc/.kekkai-audit-write"));
    "fs.write-outside-rules", "landlock", WRITE_DENIED, false, |c| match &c.landlock_write_denied {
        Some(p) => create(&format!("{p}/.kekkai-audit-write")),
        None => Seen::NotApplicable("every writable mount has a Landlock write rule".into()),
    };
    // Remounting the read-only root read-only again changes nothing if it is allowed.
    "fs.remount-root", "capabilities", EPERM, false, |_| call("mount", [0, ptr(c"/"), 0, 0x20 /* MS_REMOUNT */ | 0x1 /* MS_RDONLY */ | 0x1000 /* MS_BIND */, 0, 0]);
    "fs.mount-new", "capabilities", EPERM, true, |_| call("mount", [ptr(c"none"), ptr(c"/"), ptr(c"kekkai-no-such-fs"), 0, 0, 0]);
    // The capability check comes before the source is looked up (ENOENT when allowed).
    "fs.bind-mount", "capabilities", EPERM, true, |_| call("mount", [ptr(c"/kekkai-no-such-dir"), ptr(c"/"), 0, 0x1000 /* MS_BIND */, 0, 0]);
    // /usr/bin is not a mount point: EINVAL when the capability check lets it through.
    "fs.umount", "capabilities", EPERM, true, |_| call("umount2", [ptr(c"/usr/bin"), 0, 0, 0, 0, 0]);
    "fs.umount-to-reveal", "capabilities", EPERM, false, |c| {
        let target = std::ffi::CString::new(c.hidden_path.clone().unwrap_or_else(|| "/proc".into())).unwrap_or_default();
        Seen::from(raw_syscall(nr("umount2"), [target.as_ptr() as u64, 0x2 /* MNT_DETACH */, 0, 0, 0, 0]))
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
    "fs.magic-link-reopen", "launcher", DENIED, true, |_| {
        // Reopening the reaper's (the launcher's) own files for writing through /proc.
        open_write("/proc/1/cwd/.kekkai-audit")
    };
    "fs.rename-across", "landlock", &[Errno::EXDEV, Errno::EACCES, Errno::EPERM, Errno::EROFS, Errno::ENOENT], false, |c| match &c.landlock_write_target {
        Some(p) => {
            let from = format!("{p}/.kekkai-audit-rename");
            match std::fs::write(&from, b"") {
                Ok(()) => {
                    let r = std::fs::rename(&from, "/etc/.kekkai-audit-rename");
                    let _ = std::fs::remove_file(&from);
                    match r {
                        Ok(()) => {
                            let _ = std::fs::remove_file("/etc/.kekkai-audit-rename");
                            Seen::Done("renamed into /etc".into())
                        }
                        Err(e) => Seen::Errno(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
                    }
                }
                Err(e) => Seen::Errno(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
            }
        }
        None => Seen::NotApplicable("no writable mount to rename from".into()),
    };
    "fs.hardlink-across", "landlock", &[Errno::EXDEV, Errno::EACCES, Errno::EPERM, Errno::EROFS, Errno::ENOENT], false, |c| match &c.landlock_write_target {
        Some(p) => match std::fs::hard_link("/etc/hostname", format!("{p}/.kekkai-audit-link")) {
            Ok(()) => {
                let _ = std::fs::remove_file(format!("{p}/.kekkai-audit-link"));
                Seen::Done("linked /etc/hostname into a writable directory".into())
            }
            Err(e) => Seen::Errno(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
        },
        None => Seen::NotApplicable("no writable mount to link into".into()),
    };
    "fs.read-outside-rules", "landlock", DENIED, true, |c| match &c.landlock_read_target {
        Some(p) => open_read(p),
        None => Seen::NotApplicable("no file visible outside the Landlock read rules".into()),
    };
    "fs.exec-outside-rules", "landlock", &[Errno::EACCES, Errno::EPERM], true, |c| match &c.landlock_exec_target {
        Some(p) => super::try_exec(p),
        None => Seen::NotApplicable("no executable visible outside the Landlock execute rules".into()),
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
    "proc.self-mem-of-pid-1", "launcher", DENIED, true, |_| open_mode("/proc/1/mem", nix::fcntl::OFlag::O_RDWR);
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
        let path = format!("{}/.kekkai-audit-node", c.scratch);
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

    // ── processes ───────────────────────────────────────────────────────────────────────────
    // PTRACE_SEIZE attaches without stopping the target; when the probe exits, the target is
    // simply let go.
    "process.ptrace-pid-1", "seccomp", DENIED, true, |_| call("ptrace", [0x4206 /* PTRACE_SEIZE */, 1, 0, 0, 0, 0]);
    "process.ptrace-parent", "seccomp", DENIED, true, |_| call("ptrace", [0x4206, nix::unistd::getppid().as_raw() as u64, 0, 0, 0, 0]);
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
        let path = format!("{}/.kekkai-audit-xattr", c.scratch);
        let _ = std::fs::write(&path, b"");
        // A v2 file capability granting nothing: harmless even when allowed.
        static VALUE: [u8; 20] = [0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let cpath = std::ffi::CString::new(path.clone()).unwrap_or_default();
        let r = raw_syscall(nr("setxattr"), [cpath.as_ptr() as u64, ptr(c"security.capability"), VALUE.as_ptr() as u64, 20, 0, 0]);
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

    // ── kernel attack surface ───────────────────────────────────────────────────────────────
    "kernel.keyctl", "seccomp", EPERM, true, |_| call("keyctl", [0xffff, 0, 0, 0, 0, 0]);
    "kernel.add-key", "seccomp", EPERM, true, |_| call("add_key", [0, 0, 0, 0, 0, 0]);
    "kernel.request-key", "seccomp", EPERM, true, |_| call("request_key", [0, 0, 0, 0, 0, 0]);
    "kernel.bpf", "seccomp", EPERM, true, |_| call("bpf", [0xffff, 0, 0, 0, 0, 0]);
    "kernel.perf-event-open", "seccomp", EPERM, true, |_| call("perf_event_open", [0, 0, u64::MAX, u64::MAX, 0, 0]);
    "kernel.userfaultfd", "seccomp", EPERM, true, |_| call("userfaultfd", [0xffff_ffff, 0, 0, 0, 0, 0]);
    "kernel.io-uring-setup", "seccomp", EPERM, true, |_| call("io_uring_setup", [0, 0, 0, 0, 0, 0]);
    "kernel.io-uring-enter", "seccomp", EPERM, true, |_| call("io_uring_enter", [u64::MAX, 0, 0, 0, 0, 0]);
    "kernel.kexec-load", "seccomp", EPERM, true, |_| call("kexec_load", [0, 0xffff, 0, 0, 0, 0]);
    "kernel.kexec-file-load", "seccomp", EPERM, true, |_| call("kexec_file_load", [u64::MAX, u64::MAX, 0, 0, 0xffff, 0]);
    "kernel.init-module", "seccomp", EPERM, true, |_| call("init_module", [0, 0, 0, 0, 0, 0]);
    "kernel.finit-module", "seccomp", EPERM, true, |_| call("finit_module", [u64::MAX, 0, 0, 0, 0, 0]);
    "kernel.delete-module", "seccomp", EPERM, true, |_| call("delete_module", [ptr(c"kekkai-no-such-module"), 0, 0, 0, 0, 0]);
    "kernel.reboot", "seccomp", EPERM, true, |_| call("reboot", [0, 0, 0, 0, 0, 0]);
    "kernel.swapon", "seccomp", EPERM, true, |_| call("swapon", [ptr(c"/kekkai-no-such-file"), 0, 0, 0, 0, 0]);
    "kernel.acct", "seccomp", EPERM, true, |_| call("acct", [ptr(c"/kekkai-no-such-file"), 0, 0, 0, 0, 0]);
    "kernel.settimeofday", "seccomp", EPERM, true, |_| call("settimeofday", [0, 0, 0, 0, 0, 0]);
    "kernel.clock-settime", "seccomp", EPERM, true, |_| call("clock_settime", [u64::MAX, 0, 0, 0, 0, 0]);
    "kernel.adjtimex", "seccomp", EPERM, true, |_| call("adjtimex", [0, 0, 0, 0, 0, 0]);
    "kernel.syslog", "seccomp", EPERM, true, |_| call("syslog", [10 /* SIZE_BUFFER */, 0, 0, 0, 0, 0]);
    "kernel.ioperm", "seccomp", EPERM, true, |_| call("ioperm", [0, 0, 0, 0, 0, 0]);
    "kernel.iopl", "seccomp", EPERM, true, |_| call("iopl", [0, 0, 0, 0, 0, 0]);
    "kernel.personality", "seccomp", EPERM, true, |_| call("personality", [0x0040000 /* ADDR_NO_RANDOMIZE */, 0, 0, 0, 0, 0]);
    "kernel.modify-ldt", "seccomp", EPERM, true, |_| call("modify_ldt", [0, 0, 0, 0, 0, 0]);
    "kernel.quotactl", "seccomp", EPERM, true, |_| call("quotactl", [0, 0, 0, 0, 0, 0]);
    "kernel.sethostname", "seccomp", EPERM, true, |_| call("sethostname", [0, 1000, 0, 0, 0, 0]);

    // ── namespaces ──────────────────────────────────────────────────────────────────────────
    "ns.unshare-user", "seccomp", EPERM, true, |_| call("unshare", [CLONE_NEWUSER, 0, 0, 0, 0, 0]);
    "ns.unshare-mount", "seccomp", EPERM, true, |_| call("unshare", [CLONE_NEWNS, 0, 0, 0, 0, 0]);
    "ns.unshare-net", "seccomp", EPERM, true, |_| call("unshare", [CLONE_NEWNET, 0, 0, 0, 0, 0]);
    "ns.unshare-pid", "seccomp", EPERM, true, |_| call("unshare", [CLONE_NEWPID, 0, 0, 0, 0, 0]);
    "ns.unshare-ipc", "seccomp", EPERM, true, |_| call("unshare", [CLONE_NEWIPC, 0, 0, 0, 0, 0]);
    "ns.unshare-uts", "seccomp", EPERM, true, |_| call("unshare", [CLONE_NEWUTS, 0, 0, 0, 0, 0]);
    "ns.unshare-cgroup", "seccomp", EPERM, true, |_| call("unshare", [CLONE_NEWCGROUP, 0, 0, 0, 0, 0]);
    "ns.unshare-time", "seccomp", EPERM, true, |_| call("unshare", [CLONE_NEWTIME, 0, 0, 0, 0, 0]);
    "ns.setns", "seccomp", EPERM, true, |_| call("setns", [u64::MAX, 0, 0, 0, 0, 0]);
    "ns.clone-newuser", "seccomp", EPERM, true, |_| call_forking("clone", [CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0, 0]);
    "ns.clone-newns", "seccomp", EPERM, true, |_| call_forking("clone", [CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0, 0]);
    "ns.clone3", "seccomp", &[Errno::ENOSYS, Errno::EPERM], true, |_| call("clone3", [0, 0, 0, 0, 0, 0]);

    // ── seccomp bypasses ────────────────────────────────────────────────────────────────────
    "seccomp.i386-int80", "seccomp", &[], true, |_| {
        let r = int80(20 /* getpid */, 0, 0, 0);
        if r < 0 { Seen::Errno(Errno::from_raw(-r as i32)) } else { Seen::Done(format!("getpid via int 0x80 returned {r}")) }
    };
    "seccomp.x32-bit", "seccomp", &[Errno::ENOSYS], true, |_| Seen::from(raw_syscall(nr("getpid") | 0x4000_0000, [0; 6]));
    "seccomp.ioctl-upper-bits", "seccomp", &[Errno::EPERM], true, |_| {
        static BYTE: u8 = b'\n';
        call("ioctl", [u64::MAX /* no such fd: EBADF if let through */, 0xdead_beef_0000_5412, &BYTE as *const u8 as u64, 0, 0, 0])
    };

    // ── network ─────────────────────────────────────────────────────────────────────────────
    // Tried under `network: host` too: there only Landlock (tcp-connect rules, the
    // abstract-unix scope) stands in the way, and a policy that lets them through on purpose
    // says so with `audit.grants`.
    "net.host-loopback-tcp", "net namespace/landlock", NET_DENIED, true, |c| match c.tcp_port {
        Some(port) => match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(_) if c.host_network => Seen::Done(format!("connected to the host's 127.0.0.1:{port} (the policy shares the host network; no Landlock tcp-connect rule stops it)")),
            Ok(_) => Seen::Done(format!("connected to the host's 127.0.0.1:{port}")),
            Err(e) => Seen::Errno(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
        },
        None => Seen::NotApplicable("no host listener".into()),
    };
    "net.host-abstract-socket", "net namespace/landlock", NET_DENIED, true, |c| match &c.abstract_name {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes());
            match addr.and_then(|a| std::os::unix::net::UnixStream::connect_addr(&a)) {
                Ok(_) if c.host_network && !c.abstract_scope => Seen::Done(format!("connected to the host's @{name} (the policy shares the host network without Landlock's abstract-unix scope)")),
                Ok(_) if c.host_network => Seen::Done(format!("connected to the host's @{name} (the kernel did not enforce Landlock's abstract-unix scope)")),
                Ok(_) => Seen::Done(format!("connected to the host's @{name}")),
                Err(e) => Seen::Errno(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
            }
        }
        None => Seen::NotApplicable("no host socket".into()),
    };
    "net.raw-socket", "capabilities", DENIED, true, |_| call("socket", [2, 3 /* SOCK_RAW */, 1 /* ICMP */, 0, 0, 0]);
    "net.packet-socket", "seccomp", DENIED, true, |_| call("socket", [17, 3, 0, 0, 0, 0]);
    // Reading the sandbox's own interfaces over NETLINK_ROUTE is allowed; changing them is not.
    "net.netlink-changes", "capabilities", DENIED, true, |_| super::netlink_change();
    "net.vsock", "seccomp", DENIED, true, |_| call("socket", [40, 1, 0, 0, 0, 0]);
    "net.alg-socket", "seccomp", DENIED, true, |_| call("socket", [38, 5, 0, 0, 0, 0]);
    "net.bluetooth", "seccomp", &[Errno::EPERM, Errno::EACCES, Errno::EAFNOSUPPORT], true, |_| call("socket", [31, 1, 0, 0, 0, 0]);
    "net.xdp", "seccomp", &[Errno::EPERM, Errno::EACCES, Errno::EAFNOSUPPORT], true, |_| call("socket", [44, 3, 0, 0, 0, 0]);
    "net.interfaces", "net namespace", &[], true, |c| {
        if c.host_network { return Seen::NotApplicable("the policy shares the host network".into()) }
        let names: Vec<String> = read_text("/proc/net/dev").unwrap_or_default().lines().skip(2).filter_map(|l| l.split(':').next()).map(|n| n.trim().to_owned()).collect();
        if names.iter().all(|n| n == "lo") { Seen::Blocked("only lo".into()) } else { Seen::Done(format!("interfaces: {}", names.join(" "))) }
    };

    // ── terminal ────────────────────────────────────────────────────────────────────────────
    "terminal.tiocsti", "seccomp", EPERM, true, |_| {
        static BYTE: u8 = b'\n';
        call("ioctl", [u64::MAX, 0x5412, &BYTE as *const u8 as u64, 0, 0, 0])
    };
    "terminal.tioclinux", "seccomp", EPERM, true, |_| call("ioctl", [u64::MAX, 0x541C, 0, 0, 0, 0]);
    "terminal.caller-fds", "launcher", &[], true, super::terminal::caller_fds;
    "terminal.dev-tty", "launcher", &[Errno::ENXIO, Errno::ENOENT, Errno::EACCES, Errno::EPERM], true, super::terminal::dev_tty;

    // ── resources ───────────────────────────────────────────────────────────────────────────
    // A limit the policy asks for and the host can't give is a hole, not "not applicable";
    // it is not tried, which would be a fork bomb or a memory grab on the host itself.
    "resources.fork-bomb", "cgroup pids", &[Errno::EAGAIN], false, |c| match &c.dropped_pids {
        Some(why) => Seen::Done(format!("nothing limits processes: the policy's pids limit is not enforced on this host ({why}); not tried")),
        None => super::fork_until_limit(c.pids_limit),
    };
    "resources.memory", "cgroup memory", &[Errno::ENOMEM], false, |c| match &c.dropped_memory {
        Some(why) => Seen::Done(format!("nothing limits memory: the policy's memory limit is not enforced on this host ({why}); not tried")),
        None => super::allocate_past_limit(c.memory_limit),
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
    "resources.tmpfs-fill", "tmpfs size", &[Errno::ENOSPC, Errno::EDQUOT, Errno::EFBIG], false, |c| super::fill_tmpfs(&c.scratch, c.scratch_size);
    "resources.fd-exhaustion", "rlimit", &[Errno::EMFILE], true, |c| super::open_until_limit(c.nofile_limit);
    "resources.rlimit-raise", "rlimit", EPERM, true, |_| {
        match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
            Ok((_, hard)) if hard != u64::MAX => Seen::from(nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard + 1, hard + 1).map(|()| 0)),
            Ok(_) => Seen::Done("RLIMIT_NOFILE is unlimited".into()),
            Err(e) => Seen::Errno(e),
        }
    };

    // ── information leaks ───────────────────────────────────────────────────────────────────
    "leak.environment", "launcher", &[], true, |c| match &c.secret {
        Some(s) if std::env::vars().any(|(_, v)| v.contains(s.as_str())) => Seen::Done("the caller's secret is in the environment".into()),
        Some(_) => Seen::Blocked("not in the environment".into()),
        None => Seen::NotApplicable("no secret given".into()),
    };
    "leak.pid-1-environ", "launcher", DENIED, true, |c| match (&c.secret, std::fs::read("/proc/1/environ")) {
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
                if has(secret) || has(super::PROBE_PATH.as_bytes()) {
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
        Some(key) => call("shmget", [key as u64, 0, 0, 0, 0, 0]),
        None => Seen::NotApplicable("no host segment".into()),
    };

    // ── privileges left on host paths (`host-privileges`) ───────────────────────────────────
    // Each tries every writable mount, under a temporary name of its own that it removes; a
    // policy that kills on the call only kills a child of the probe.
    "privilege.setuid-chmod", "host-privileges", EPERM, false, |c| on_writable_mounts(c, &|d| chmod_to(d, 0o4700, 0o4000, "setuid"));
    "privilege.setgid-chmod", "host-privileges", EPERM, false, |c| on_writable_mounts(c, &|d| chmod_to(d, 0o2700, 0o2000, "setgid"));
    "privilege.setuid-create", "host-privileges", EPERM, false, |c| on_writable_mounts(c, &|d| create_with(d, 0o4700, 0o4000, "setuid"));
    "privilege.setgid-create", "host-privileges", EPERM, false, |c| on_writable_mounts(c, &|d| create_with(d, 0o2700, 0o2000, "setgid"));
    "privilege.setuid-tmpfile", "host-privileges", EPERM, false, |c| on_writable_mounts(c, &|d| tmpfile_with(d, 0o4700));
    "privilege.openat2-create", "host-privileges", &[Errno::ENOSYS, Errno::EPERM], false, |c| on_writable_mounts(c, &|d| openat2_with(d, 0o4700));
    "privilege.file-capability", "host-privileges", &[Errno::EPERM, Errno::EOPNOTSUPP], false, |c| on_writable_mounts(c, &file_capability);
    // EACCES: Landlock never grants making device nodes either.
    "privilege.device-node", "host-privileges", DENIED, false, |c| on_writable_mounts(c, &device_node);
    "leak.root-secret-file", "identity", &[Errno::EACCES, Errno::EPERM, Errno::ENOENT], true, |c| read_root_secret(c.root_secret.as_deref(), "only an audit run as root can make a root-owned file");
    "leak.etc-shadow", "identity", &[Errno::EACCES, Errno::EPERM, Errno::ENOENT], true, |c| read_root_secret(c.shadow.as_deref(), "the host has no /etc/shadow that only root may read");

    // ── launcher hygiene ────────────────────────────────────────────────────────────────────
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
    "launcher.pid-1-exe-overwrite", "launcher", &[Errno::ETXTBSY, Errno::EACCES, Errno::EROFS, Errno::EPERM, Errno::ENOENT], true, |_| open_write("/proc/1/exe");
}
