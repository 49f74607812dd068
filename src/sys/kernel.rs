//! The seam between the sandbox's ordered steps and the kernel.
//!
//! Every call the sandbox's first process makes from the moment it is cloned until execve
//! goes through [`Kernel`]: the mounts and the new root, host name and rlimits, ids and
//! capabilities, the prctls, Landlock, closing descriptors, seccomp and execve itself. So the
//! whole order can run against a recording fake (`sys::fake`, in unit tests) on any machine,
//! without root, and any one call can be made to fail. [`Linux`] is the real kernel: each
//! method is the one system call it names (Landlock's is the crate's few), with nothing
//! decided here. The shape is youki's `Syscall` trait's.

use std::ffi::{CStr, CString};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use caps::errors::CapsError;
use caps::{CapSet, Capability};
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::mount::{MntFlags, MsFlags};
use nix::sys::resource::Resource;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

use super::CapSets;
use super::landlock::{LandlockError, LandlockRuleset, LandlockStatus};

/// What `fstat` tells the steps about a descriptor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// It is a directory.
    pub dir: bool,
}

/// The calls the sandbox's first process makes, in the terms of the system calls.
pub trait Kernel {
    /// Marks the start of a launch step (its name in `plan::steps`). Nothing for the kernel;
    /// a recording shows the calls step by step.
    fn begin(&self, _step: &'static str) {}

    // ── the root filesystem (steps 4 to 6) ──────────────────────────────────────────────────
    /// `mount(source, target, fstype, flags, data)`.
    fn mount(
        &self,
        source: Option<&str>,
        target: &str,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()>;
    /// `umount2(target, flags)`.
    fn umount2(&self, target: &str, flags: MntFlags) -> nix::Result<()>;
    /// `pivot_root(new_root, put_old)`.
    fn pivot_root(&self, new_root: &str, put_old: &str) -> nix::Result<()>;
    /// `chdir(path)`.
    fn chdir(&self, path: &Path) -> nix::Result<()>;
    /// `fchdir(dir)`.
    fn fchdir(&self, dir: BorrowedFd<'_>) -> nix::Result<()>;
    /// `open(path, flags)` (no mode: nothing is created).
    fn open(&self, path: &Path, flags: OFlag) -> nix::Result<OwnedFd>;
    /// `openat2(dir, path, {flags, resolve})`.
    fn openat2(
        &self,
        dir: BorrowedFd<'_>,
        path: &Path,
        flags: OFlag,
        resolve: ResolveFlag,
    ) -> nix::Result<OwnedFd>;
    /// `openat(dir, name, O_CREAT|O_EXCL|O_WRONLY|O_CLOEXEC, mode)`: a new empty file, and a
    /// descriptor of it (O_EXCL: never of a file or link that was there before).
    fn create_file(&self, dir: BorrowedFd<'_>, name: &Path, mode: Mode) -> nix::Result<OwnedFd>;
    /// `openat(dir, name, O_CREAT|O_EXCL|O_WRONLY)`, then `write` of all of `contents`.
    fn write_file(
        &self,
        dir: BorrowedFd<'_>,
        name: &Path,
        mode: Mode,
        contents: &[u8],
    ) -> nix::Result<()>;
    /// `mkdirat(dir, name, mode)`.
    fn mkdirat(&self, dir: BorrowedFd<'_>, name: &Path, mode: Mode) -> nix::Result<()>;
    /// `symlinkat(target, dir, name)`.
    fn symlinkat(&self, target: &Path, dir: BorrowedFd<'_>, name: &Path) -> nix::Result<()>;
    /// `fstat(fd)`.
    fn fstat(&self, fd: BorrowedFd<'_>) -> nix::Result<Stat>;
    /// `fcntl(fd, F_DUPFD_CLOEXEC, 3)`.
    fn dup(&self, fd: BorrowedFd<'_>) -> nix::Result<OwnedFd>;
    /// [`super::open_tree_clone`].
    fn open_tree_clone(&self, fd: BorrowedFd<'_>, recursive: bool) -> nix::Result<OwnedFd>;
    /// [`super::move_mount_to`].
    fn move_mount(&self, tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> nix::Result<()>;
    /// [`super::move_mount_to_name`].
    fn move_mount_to_name(
        &self,
        tree: BorrowedFd<'_>,
        dir: BorrowedFd<'_>,
        name: &Path,
    ) -> nix::Result<()>;
    /// [`super::mount_setattr`].
    fn mount_setattr(
        &self,
        fd: BorrowedFd<'_>,
        set: u64,
        clr: u64,
        recursive: bool,
    ) -> nix::Result<()>;

    // ── the environment (step 7) ─────────────────────────────────────────────────────────────
    /// `sethostname(name)`.
    fn sethostname(&self, name: &str) -> nix::Result<()>;
    /// [`super::loopback_up`].
    fn loopback_up(&self) -> nix::Result<()>;
    /// `setrlimit(resource, {soft, hard})`.
    fn setrlimit(&self, resource: Resource, soft: u64, hard: u64) -> nix::Result<()>;
    /// `getrlimit(resource)`: (soft, hard).
    fn getrlimit(&self, resource: Resource) -> nix::Result<(u64, u64)>;

    // ── ids and capabilities (steps 3 and 8) ────────────────────────────────────────────────
    /// `setgroups(groups)`.
    fn setgroups(&self, groups: &[Gid]) -> nix::Result<()>;
    /// `setresgid(r, e, s)`.
    fn setresgid(&self, r: Gid, e: Gid, s: Gid) -> nix::Result<()>;
    /// `setresuid(r, e, s)`.
    fn setresuid(&self, r: Uid, e: Uid, s: Uid) -> nix::Result<()>;
    /// `prctl(PR_CAPBSET_READ, cap)`; `EINVAL` past the kernel's last capability.
    fn capbset_read(&self, cap: u32) -> nix::Result<bool>;
    /// `prctl(PR_CAPBSET_DROP, cap)`.
    fn capbset_drop(&self, cap: u32) -> nix::Result<()>;
    /// `prctl(PR_SET_KEEPCAPS, on)`.
    fn set_keepcaps(&self, on: bool) -> nix::Result<()>;
    /// `capset`: effective, permitted and inheritable become `sets`, in one call.
    fn capset(&self, sets: CapSets) -> nix::Result<()>;
    /// Empties a set (the ambient one: `prctl(PR_CAP_AMBIENT_CLEAR_ALL)`).
    fn cap_clear(&self, set: CapSet) -> Result<(), CapsError>;
    /// Raises one capability in a set (the ambient one: `prctl(PR_CAP_AMBIENT_RAISE)`).
    fn cap_raise(&self, set: CapSet, cap: Capability) -> Result<(), CapsError>;
    /// `capget`: effective, permitted and inheritable, in one call.
    fn capget(&self) -> nix::Result<CapSets>;

    // ── the process ─────────────────────────────────────────────────────────────────────────
    /// `prctl(PR_SET_PDEATHSIG, sig)`.
    fn set_pdeathsig(&self, sig: Signal) -> nix::Result<()>;
    /// `write(tasks, "0")`: moves the calling thread into the cgroup v1 whose `tasks` file
    /// `tasks` is (opened by the supervisor, whose credentials the kernel checks).
    fn join_cgroup_v1(&self, tasks: BorrowedFd<'_>) -> nix::Result<()>;
    /// `prctl(PR_SET_DUMPABLE, on)`.
    fn set_dumpable(&self, on: bool) -> nix::Result<()>;
    /// [`super::forget_launcher_args`].
    fn forget_launcher_args(&self, shown: &[u8]) -> nix::Result<()>;
    /// `umask(mask)`: sets the file mode creation mask, returns the one before.
    fn umask(&self, mask: Mode) -> Mode;

    // ── the lockdown (steps 9 to 12) ────────────────────────────────────────────────────────
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
    fn set_no_new_privs(&self) -> nix::Result<()>;
    /// `prctl(PR_GET_NO_NEW_PRIVS)`.
    fn get_no_new_privs(&self) -> nix::Result<bool>;
    /// [`super::landlock_abi`].
    fn landlock_abi(&self) -> nix::Result<i32>;
    /// [`super::landlock::restrict`]: create, add the rules, restrict this thread.
    fn landlock_restrict(&self, ruleset: &LandlockRuleset)
    -> Result<LandlockStatus, LandlockError>;
    /// `close_range(first, last, 0)`.
    ///
    /// # Safety
    ///
    /// As for [`super::close_range`]: no object that owns a descriptor in `[first, last]` may
    /// be used or dropped afterwards.
    unsafe fn close_range(&self, first: u32, last: u32) -> nix::Result<()>;
    /// [`super::close_owned`]: closes `fds`, a `close_range` per run of consecutive numbers.
    fn close_owned(&self, fds: Vec<OwnedFd>) -> nix::Result<()>;
    /// [`super::seccomp_install`].
    fn seccomp_install(&self, program: &[seccompiler::sock_filter]) -> nix::Result<()>;
    /// [`super::notif::seccomp_install_listener`] (`kekkai learn`'s observer).
    fn seccomp_install_listener(
        &self,
        program: &[seccompiler::sock_filter],
    ) -> nix::Result<OwnedFd>;

    // ── the program (step 13) ───────────────────────────────────────────────────────────────
    /// `execve(path, argv, envp)`: returns only on failure, with the errno.
    fn execve(&self, path: &CStr, argv: &[CString], envp: &[CString]) -> Errno;
    /// [`super::exit_now`].
    fn exit(&self, code: i32) -> !;
}

/// The running kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Linux;

impl Kernel for Linux {
    fn mount(
        &self,
        source: Option<&str>,
        target: &str,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()> {
        nix::mount::mount(source, target, fstype, flags, data)
    }

    fn umount2(&self, target: &str, flags: MntFlags) -> nix::Result<()> {
        nix::mount::umount2(target, flags)
    }

    fn pivot_root(&self, new_root: &str, put_old: &str) -> nix::Result<()> {
        nix::unistd::pivot_root(new_root, put_old)
    }

    fn chdir(&self, path: &Path) -> nix::Result<()> {
        nix::unistd::chdir(path)
    }

    fn fchdir(&self, dir: BorrowedFd<'_>) -> nix::Result<()> {
        nix::unistd::fchdir(dir)
    }

    fn open(&self, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        nix::fcntl::open(path, flags, Mode::empty())
    }

    fn openat2(
        &self,
        dir: BorrowedFd<'_>,
        path: &Path,
        flags: OFlag,
        resolve: ResolveFlag,
    ) -> nix::Result<OwnedFd> {
        nix::fcntl::openat2(dir, path, OpenHow::new().flags(flags).resolve(resolve))
    }

    fn create_file(&self, dir: BorrowedFd<'_>, name: &Path, mode: Mode) -> nix::Result<OwnedFd> {
        nix::fcntl::openat(
            dir,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            mode,
        )
    }

    fn write_file(
        &self,
        dir: BorrowedFd<'_>,
        name: &Path,
        mode: Mode,
        contents: &[u8],
    ) -> nix::Result<()> {
        let fd = nix::fcntl::openat(
            dir,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            mode,
        )?;
        let mut rest = contents;
        while !rest.is_empty() {
            match nix::unistd::write(&fd, rest) {
                Ok(0) => return Err(nix::errno::Errno::EIO),
                Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn mkdirat(&self, dir: BorrowedFd<'_>, name: &Path, mode: Mode) -> nix::Result<()> {
        nix::sys::stat::mkdirat(dir, name, mode)
    }

    fn symlinkat(&self, target: &Path, dir: BorrowedFd<'_>, name: &Path) -> nix::Result<()> {
        nix::unistd::symlinkat(target, dir, name)
    }

    fn fstat(&self, fd: BorrowedFd<'_>) -> nix::Result<Stat> {
        let st = nix::sys::stat::fstat(fd)?;
        let kind =
            nix::sys::stat::SFlag::from_bits_truncate(st.st_mode) & nix::sys::stat::SFlag::S_IFMT;
        Ok(Stat {
            dev: st.st_dev,
            ino: st.st_ino,
            dir: kind == nix::sys::stat::SFlag::S_IFDIR,
        })
    }

    fn dup(&self, fd: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
        fd.try_clone_to_owned()
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
    }

    fn open_tree_clone(&self, fd: BorrowedFd<'_>, recursive: bool) -> nix::Result<OwnedFd> {
        super::open_tree_clone(fd, recursive)
    }

    fn move_mount(&self, tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> nix::Result<()> {
        super::move_mount_to(tree, target)
    }

    fn move_mount_to_name(
        &self,
        tree: BorrowedFd<'_>,
        dir: BorrowedFd<'_>,
        name: &Path,
    ) -> nix::Result<()> {
        super::move_mount_to_name(tree, dir, name)
    }

    fn mount_setattr(
        &self,
        fd: BorrowedFd<'_>,
        set: u64,
        clr: u64,
        recursive: bool,
    ) -> nix::Result<()> {
        super::mount_setattr(fd, set, clr, recursive)
    }

    fn sethostname(&self, name: &str) -> nix::Result<()> {
        nix::unistd::sethostname(name)
    }

    fn loopback_up(&self) -> nix::Result<()> {
        super::loopback_up()
    }

    fn setrlimit(&self, resource: Resource, soft: u64, hard: u64) -> nix::Result<()> {
        nix::sys::resource::setrlimit(resource, soft, hard)
    }

    fn getrlimit(&self, resource: Resource) -> nix::Result<(u64, u64)> {
        nix::sys::resource::getrlimit(resource)
    }

    fn setgroups(&self, groups: &[Gid]) -> nix::Result<()> {
        nix::unistd::setgroups(groups)
    }

    fn setresgid(&self, r: Gid, e: Gid, s: Gid) -> nix::Result<()> {
        nix::unistd::setresgid(r, e, s)
    }

    fn setresuid(&self, r: Uid, e: Uid, s: Uid) -> nix::Result<()> {
        nix::unistd::setresuid(r, e, s)
    }

    fn capbset_read(&self, cap: u32) -> nix::Result<bool> {
        super::capbset_read(cap)
    }

    fn capbset_drop(&self, cap: u32) -> nix::Result<()> {
        super::capbset_drop(cap)
    }

    fn set_keepcaps(&self, on: bool) -> nix::Result<()> {
        nix::sys::prctl::set_keepcaps(on)
    }

    fn capset(&self, sets: CapSets) -> nix::Result<()> {
        super::capset_all(sets)
    }

    fn cap_clear(&self, set: CapSet) -> Result<(), CapsError> {
        caps::clear(None, set)
    }

    fn cap_raise(&self, set: CapSet, cap: Capability) -> Result<(), CapsError> {
        caps::raise(None, set, cap)
    }

    fn capget(&self) -> nix::Result<CapSets> {
        super::capget_all()
    }

    fn set_pdeathsig(&self, sig: Signal) -> nix::Result<()> {
        nix::sys::prctl::set_pdeathsig(sig)
    }

    fn join_cgroup_v1(&self, tasks: BorrowedFd<'_>) -> nix::Result<()> {
        match nix::unistd::write(tasks, b"0")? {
            1 => Ok(()),
            _ => Err(Errno::EIO),
        }
    }

    fn set_dumpable(&self, on: bool) -> nix::Result<()> {
        nix::sys::prctl::set_dumpable(on)
    }

    fn forget_launcher_args(&self, shown: &[u8]) -> nix::Result<()> {
        super::forget_launcher_args(shown)
    }

    fn umask(&self, mask: Mode) -> Mode {
        nix::sys::stat::umask(mask)
    }

    fn set_no_new_privs(&self) -> nix::Result<()> {
        nix::sys::prctl::set_no_new_privs()
    }

    fn get_no_new_privs(&self) -> nix::Result<bool> {
        nix::sys::prctl::get_no_new_privs()
    }

    fn landlock_abi(&self) -> nix::Result<i32> {
        super::landlock_abi()
    }

    fn landlock_restrict(
        &self,
        ruleset: &LandlockRuleset,
    ) -> Result<LandlockStatus, LandlockError> {
        super::landlock::restrict(ruleset)
    }

    fn close_owned(&self, fds: Vec<OwnedFd>) -> nix::Result<()> {
        super::close_owned(fds)
    }

    unsafe fn close_range(&self, first: u32, last: u32) -> nix::Result<()> {
        // SAFETY: the descriptors in the range are given up by the caller (this method's
        // contract, the same as close_range's).
        unsafe { super::close_range(first, last, false) }
    }

    fn seccomp_install(&self, program: &[seccompiler::sock_filter]) -> nix::Result<()> {
        super::seccomp_install(program)
    }

    fn seccomp_install_listener(
        &self,
        program: &[seccompiler::sock_filter],
    ) -> nix::Result<OwnedFd> {
        super::notif::seccomp_install_listener(program)
    }

    fn execve(&self, path: &CStr, argv: &[CString], envp: &[CString]) -> Errno {
        match nix::unistd::execve(path, argv, envp) {
            Err(e) => e,
            Ok(never) => match never {},
        }
    }

    fn exit(&self, code: i32) -> ! {
        super::exit_now(code)
    }
}
