//! The escape probes. Each tries one thing a sandboxed program should not be able to do, in a
//! way that does no harm if it is allowed: system calls get arguments that make a permitted call
//! fail on validation (EBADF, EFAULT, EINVAL, ENODEV) after the permission checks, files are
//! opened but never written, and nothing is sent to a device. A probe returns what the kernel
//! answered; the verdict is made from that and the errnos that mean "blocked".
//!
//! One file per group of categories, each a table (`probes!`); [`all`] puts them together in
//! report order. The helpers here make the attempts the tables share: a raw system call, an
//! open, a file created and removed again.

use std::ffi::CStr;

use nix::errno::Errno;

use super::{Ctx, Seen};
use crate::sys::abi::address;
// The probes' raw system calls, for every table below: their arguments make a call the sandbox
// lets through do nothing to this process (see the top of this file).
pub(crate) use raw::{int80, raw_syscall};

/// The probes' raw system calls: the one place outside `sys` that calls what `sys` marks
/// unsafe, because only the probes know what their calls do.
#[allow(unsafe_code)]
mod raw {
    /// [`crate::sys::raw_syscall`] for the probes.
    pub fn raw_syscall(nr: i64, args: [u64; 6]) -> nix::Result<i64> {
        // SAFETY: every probe picks arguments that make a call the sandbox lets through do
        // nothing to this process's memory, descriptors or threads (the rule in the module
        // doc): descriptors are invalid (u64::MAX) or, for TIOCSTI, the caller's terminal,
        // which only reads one `'static` byte; addresses are NULL or point at `'static`
        // or live strings and bytes the kernel only reads, requests and flags are ones the
        // kernel rejects after its permission checks, and what a call may create (a
        // namespace, a descriptor, a process that exits at once) is never touched by Rust
        // code. Each probe runs in a forked process of its own that reports and exits.
        unsafe { crate::sys::raw_syscall(nr, args) }
    }

    /// [`crate::sys::int80`] for the probes.
    pub fn int80(nr: u32, a: u32, b: u32, c: u32) -> i32 {
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
    address(s.as_ptr())
}

/// A raw syscall that, if allowed, may leave a child process behind: the child exits at once.
fn call_forking(name: &str, args: [u64; 6]) -> Seen {
    match raw_syscall(nr(name), args) {
        Ok(0) => crate::sys::exit_now(0),
        Ok(pid) => {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            }
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

/// Could a file be made in `dir`? Asked without leaving anything anyone could see: an unnamed
/// file (`O_TMPFILE`: it never has a name in the directory, does not change the directory, and
/// is gone when closed), which goes through the same checks as a named one (read-only mount,
/// modes, capabilities, Landlock, seccomp). Where the filesystem has no unnamed files, access(2)
/// with the effective ids answers for the mount and the modes (not for Landlock or seccomp,
/// which the detail says).
fn could_create(dir: &str) -> Seen {
    use nix::fcntl::OFlag;
    use nix::unistd::AccessFlags;
    match nix::fcntl::open(
        dir,
        OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    ) {
        Ok(_) => Seen::Done(format!(
            "could create a file in {dir} (an unnamed one, gone when closed)"
        )),
        Err(Errno::EOPNOTSUPP | Errno::EISDIR) => {
            match nix::unistd::faccessat(
                nix::fcntl::AT_FDCWD,
                dir,
                AccessFlags::W_OK,
                nix::fcntl::AtFlags::AT_EACCESS,
            ) {
                Ok(()) => Seen::Done(format!(
                    "{dir} is writable (access(2); the filesystem has no unnamed files, so Landlock and seccomp were not asked)"
                )),
                Err(e) => Seen::Errno(e),
            }
        }
        Err(e) => Seen::Errno(e),
    }
}

/// A probe of PID 1 (the launcher or its reaper) has nothing to try when PID 1 is the battery
/// itself (a sandbox that runs the program as PID 1).
fn pid_1_is_self(c: &Ctx) -> Option<Seen> {
    (c.battery_pid == 1)
        .then(|| Seen::NotApplicable("the battery is PID 1: /proc/1 is its own".into()))
}

/// A directory that exists and is no mount point: the battery's own, or /proc/self/fd. A mount
/// call on it passes the lookup and the capability check, then finds nothing to act on.
fn not_a_mount_point(c: &Ctx) -> std::ffi::CString {
    std::ffi::CString::new(c.own_dir.clone().unwrap_or_else(|| "/proc/self/fd".into()))
        .unwrap_or_default()
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

/// A table of probes: `NAME, LAYER, BLOCKED_BY, CONTROL_SAFE, ATTEMPT;` per row, the category
/// being the part of the name before the dot. Defines the file's `table()`.
macro_rules! probes {
    ($($name:literal, $layer:literal, $blocked:expr, $safe:literal, $run:expr;)*) => {
        /// This file's probes, in report order.
        pub(super) fn table() -> Vec<Probe> {
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

mod fs;
mod kernel;
mod launcher;
mod leak;
mod net;
mod privilege;
mod process;
mod resources;
mod terminal;

/// The category whose probes run a second time, with the caller's terminal on stdin.
pub const TERMINAL: &str = "terminal";

/// Every probe, in report order.
pub fn all() -> Vec<Probe> {
    [
        fs::table(),
        process::table(),
        kernel::table(),
        net::table(),
        terminal::table(),
        resources::table(),
        leak::table(),
        privilege::table(),
        launcher::table(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
mod tests {
    /// The probe tables hold exactly the names the plan lets `audit.grants` use, in report
    /// order: a probe added here is added to `plan::expect::PROBES` too.
    #[test]
    fn the_tables_are_the_plans_list() {
        let names: Vec<&str> = super::all().iter().map(|p| p.name).collect();
        assert_eq!(names, crate::plan::expect::PROBES);
    }
}
