//! Privileges left on host paths (`host-privileges`): on every writable mount, each probe tries
//! to make a file that would carry a privilege outside the sandbox (setuid or setgid bits, a file
//! capability, a device node) under a temporary name of its own, which it removes; and root's
//! own secrets (a 0600 file of the host side's, /etc/shadow) are read.

use nix::errno::Errno;

use super::{DENIED, EPERM, Probe, nr, ptr, raw_syscall};
use crate::audit::{Ctx, Seen, inside};
use crate::sys::abi::address;

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
    match inside::isolated(&|| match f() {
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
    let seen = inside::isolated(&|| match open(mode) {
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
                address(cpath.as_ptr()),
                ptr(c"security.capability"),
                address(VALUE.as_ptr()),
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

probes! {
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
}
