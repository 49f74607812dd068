//! The only module with `unsafe`: thin wrappers over system calls that nix doesn't cover
//! safely. Each wrapper returns `nix::Result` with the raw errno; every `unsafe` block states
//! the invariant that makes it sound.
//!
//! A safe function here is sound for every caller: what it needs, it checks itself (a fork
//! refuses in a process with more than one thread, clone3 takes only namespace flags). A
//! function whose soundness depends on what the caller knows is an `unsafe fn` with a
//! `# Safety` section: [`close_range`] (which descriptors nobody owns any more),
//! [`raw_syscall`] and [`int80`] (what the call does). [`kernel`] is the seam the sandbox's
//! steps make their calls through; `fake` records them for unit tests; [`landlock`] is
//! Landlock's calls through the landlock crate. [`spawn`] starts the program's process in the
//! reaper's memory (`CLONE_VM | CLONE_VFORK`, as posix_spawn does); [`inherited`] records the
//! caller's ignored signals before the Rust runtime changes one. [`abi`] holds the few
//! integer reinterpretations the kernel's interface needs (a negative argument as its 64-bit
//! register, the i386 entry's 32-bit return); a pointer becomes an integer, or an integer a
//! pointer, only in this module, next to the call that needs it.

#![allow(unsafe_code)]

pub mod abi;
#[cfg(test)]
pub mod fake;
pub mod inherited;
pub mod kernel;
pub mod landlock;
pub mod notif;
pub mod spawn;

pub use inherited::Disposition;
pub use kernel::{Kernel, Linux};

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// `struct clone_args` (linux/sched.h), version 2 (with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// CLONE_INTO_CGROUP (linux/sched.h).
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The CLONE_NEW* flags (linux/sched.h): the only flags [`clone3`] takes. NEWTIME (0x80),
/// NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
pub const NAMESPACE_FLAGS: u64 = 0x80 | 0x2_0000 | 0x7e00_0000;

/// Is this process known to have a single thread? A process copy made now (fork, clone3)
/// would then hold no lock that another thread took, so the copy may run any code.
///
/// glibc's `__libc_single_threaded` is true from start-up until the process first creates a
/// thread, and never becomes true again (not even when the thread ends), so `true` is a
/// certainty and `false` may be a process that once had a thread. Elsewhere `Threads:` in
/// `/proc/self/status` answers (`false` when it can't be read).
pub fn single_threaded() -> bool {
    #[cfg(target_env = "gnu")]
    {
        unsafe extern "C" {
            static __libc_single_threaded: libc::c_char;
        }
        // SAFETY: glibc (2.32 and later, which the build links against) defines this byte and
        // writes it only from true to false, in pthread_create before the new thread exists.
        // While it reads true there is no other thread that could be writing it; once false it
        // stays false. A volatile read of one initialised byte of a static.
        unsafe { std::ptr::read_volatile(&raw const __libc_single_threaded) != 0 }
    }
    #[cfg(not(target_env = "gnu"))]
    {
        std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .any(|l| l.strip_prefix("Threads:").is_some_and(|n| n.trim() == "1"))
        })
    }
}

/// CLONE_PARENT (linux/sched.h): the child's parent is the caller's parent (`enter`: the
/// process that joined the sandbox's namespaces hands its child to the supervisor).
pub const CLONE_PARENT: u64 = 0x8000;

/// Creates a child process with `clone3` and the given namespace flags, like `fork`: the
/// child continues from here with `Ok(None)`, the parent gets `Ok(Some(pid))`. With
/// `cgroup`, the child starts inside that cgroup v2 directory (CLONE_INTO_CGROUP).
///
/// Refuses flags other than [`NAMESPACE_FLAGS`] and [`CLONE_PARENT`] (`EINVAL`: CLONE_VM or CLONE_THREAD would
/// share this stack and memory) and a process with more than one thread (`EDEADLK`: the child
/// gets a copy of only the calling thread, and a lock another thread held would stay taken
/// in it forever).
pub fn clone3(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> nix::Result<Option<Pid>> {
    if flags & !(NAMESPACE_FLAGS | CLONE_PARENT) != 0 {
        return Err(Errno::EINVAL);
    }
    if !single_threaded() {
        return Err(Errno::EDEADLK);
    }
    // With CLONE_PARENT the child inherits the caller's own exit signal (clone3 wants 0 here).
    let exit_signal = if flags & CLONE_PARENT != 0 {
        0
    } else {
        u64::try_from(libc::SIGCHLD).map_err(|_| Errno::EINVAL)?
    };
    let mut args = CloneArgs {
        flags,
        exit_signal,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = u64::try_from(fd.as_raw_fd()).map_err(|_| Errno::EBADF)?;
    }
    // SAFETY: `args` is a valid, initialised clone_args of the size passed, alive for the
    // call. Its flags are namespace flags and CLONE_PARENT only (checked above), so without CLONE_VM the child
    // runs on a copy-on-write copy of this address space and returns here like fork(2) does;
    // no stack or TLS is shared. This process has one thread (checked above), so no lock can
    // be held by a thread that does not exist in the child.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &raw mut args,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(
            i32::try_from(pid).map_err(|_| Errno::EINVAL)?,
        ))),
    }
}

/// `fork`: the child continues from here with `Ok(None)`, the parent gets `Ok(Some(pid))`.
/// Refuses (`EDEADLK`) in a process with more than one thread, as [`clone3`] does.
pub fn fork() -> nix::Result<Option<Pid>> {
    if !single_threaded() {
        return Err(Errno::EDEADLK);
    }
    // SAFETY: this process has one thread (checked above), so no lock (malloc's, stdio's) can
    // be held by a thread that does not exist in the child, and the child may keep running
    // arbitrary Rust code, allocation included.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => Ok(None),
        nix::unistd::ForkResult::Parent { child } => Ok(Some(child)),
    }
}

/// `struct mount_attr` (linux/mount.h).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// MOUNT_ATTR_* bits (linux/mount.h).
pub mod mount_attr {
    /// Read-only.
    pub const RDONLY: u64 = 0x1;
    /// Ignore setuid and setgid bits.
    pub const NOSUID: u64 = 0x2;
    /// No device access.
    pub const NODEV: u64 = 0x4;
    /// No program execution.
    pub const NOEXEC: u64 = 0x8;
}

/// A flag of the C library (a non-negative `c_int`) as the `c_uint` a system call's flags
/// argument takes. A negative one would be a bug in the bindings: refused (`EINVAL`), never
/// sign-extended into every bit.
fn flag(bits: libc::c_int) -> nix::Result<libc::c_uint> {
    libc::c_uint::try_from(bits).map_err(|_| Errno::EINVAL)
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], {set, clr})`: changes only the
/// given attributes of the mount `fd` refers to (and of everything below it if `recursive`).
pub fn mount_setattr(fd: BorrowedFd<'_>, set: u64, clr: u64, recursive: bool) -> nix::Result<()> {
    let mut attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = flag(libc::AT_EMPTY_PATH)?;
    if recursive {
        flags |= 0x8000; // AT_RECURSIVE
    }
    let empty: &CStr = c"";
    // SAFETY: `empty` is a NUL-terminated string and `attr` a valid mount_attr of the size
    // passed; both outlive the call and the kernel only reads them. `fd` is a live descriptor
    // borrowed for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            empty.as_ptr(),
            flags,
            &raw mut attr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// `close_range(first, last, flags)`.
///
/// # Safety
///
/// Without `cloexec`, every descriptor in `[first, last]` is closed whoever owns it. The
/// caller must know that no object that owns one of them (an `OwnedFd`, a `File`, a socket)
/// is used or dropped afterwards: it would act on a closed number, or on whatever the number
/// is reused for. With `cloexec` nothing is closed before execve, and there is no obligation.
pub unsafe fn close_range(first: u32, last: u32, cloexec: bool) -> nix::Result<()> {
    let flags = if cloexec {
        libc::CLOSE_RANGE_CLOEXEC
    } else {
        0
    };
    // SAFETY: close_range reads no memory of ours; the descriptors it closes are given up by
    // the caller (this function's contract).
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) };
    Errno::result(ret).map(drop)
}

/// Closes every descriptor from 3 up that kekkai inherited across its execve, except
/// `keep` (the socket-activation descriptors `3..3+keep`): for a process that goes on in the
/// background (`run --detach`), so that it holds none of its caller's pipes, locks or sockets.
/// Inherited means without `FD_CLOEXEC`: every descriptor kekkai opens is close-on-exec, and
/// any that crossed the execve had the flag clear. The open numbers come from
/// `/proc/self/fd`; without it (no /proc, or one that can't be read) every number below
/// [`FD_SCAN_END`] is asked instead, so that an unreadable /proc never leaves the caller's
/// descriptors open. Returns how many it closed.
pub fn close_inherited(keep: u32) -> usize {
    match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => {
            let open = dir
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok());
            close_without_cloexec(open, keep)
        }
        Err(_) => close_without_cloexec(3..fd_scan_end(), keep),
    }
}

/// Where the scan of [`close_inherited`] without /proc stops at least: the kernel's default
/// `fs.nr_open` (2^20), the most descriptors a process may have unless it was raised.
pub const FD_SCAN_END: u32 = 1 << 20;

/// The scan's end: a descriptor's number is below the RLIMIT_NOFILE it was opened under, and
/// a process can raise its hard limit no further than `fs.nr_open`, so the larger of the hard
/// limit now and [`FD_SCAN_END`] (and no more than 2^24, a few seconds of `fcntl`s, for a
/// host whose limit was raised that far).
fn fd_scan_end() -> u32 {
    let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(0, |(_, hard)| hard);
    u32::try_from(hard)
        .unwrap_or(u32::MAX)
        .clamp(FD_SCAN_END, 1 << 24)
}

/// Closes each of `numbers` from 3 up that is open without `FD_CLOEXEC`, except `3..3+keep`;
/// a number not open answers `EBADF` and is skipped.
fn close_without_cloexec(numbers: impl Iterator<Item = u32>, keep: u32) -> usize {
    let listen = 3..3u32.saturating_add(keep);
    let mut closed = 0;
    for n in numbers {
        if n < 3 || listen.contains(&n) {
            continue;
        }
        let Ok(fd) = RawFd::try_from(n) else { continue };
        // SAFETY: F_GETFD reads no memory; a number that is not open (the listing's own
        // descriptor, closed by now, or a gap of the scan) answers EBADF and is skipped.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 || flags & libc::FD_CLOEXEC != 0 {
            continue;
        }
        // SAFETY: the descriptor was open across execve without FD_CLOEXEC, which no
        // descriptor kekkai opens is: no object of this process owns it, and nothing uses it.
        if unsafe { close_range(n, n, false) }.is_ok() {
            closed += 1;
        }
    }
    closed
}

/// Closes every descriptor of `fds`, one `close_range` per run of consecutive numbers rather
/// than one `close` each. All are closed even if one call fails; the first error is returned.
pub fn close_owned(fds: Vec<OwnedFd>) -> nix::Result<()> {
    let mut raw: Vec<u32> = fds
        .into_iter()
        .filter_map(|fd| u32::try_from(fd.into_raw_fd()).ok())
        .collect();
    raw.sort_unstable();
    let mut result = Ok(());
    let mut rest = raw.as_slice();
    while let Some((&first, _)) = rest.split_first() {
        let run = rest
            .iter()
            .zip(first..)
            .take_while(|(fd, want)| **fd == *want)
            .count();
        let last = rest[run - 1];
        rest = &rest[run..];
        // SAFETY: every number in first..=last came from an `OwnedFd` given to this function
        // and released with `into_raw_fd`: nothing else owns or uses it.
        let closed = unsafe { close_range(first, last, false) };
        if result.is_ok() {
            result = closed;
        }
    }
    result
}

/// Marks every descriptor from `first` up close-on-exec, so that what this process inherited
/// from its own caller does not reach the programs it starts (`kekkai audit` before it runs
/// another launcher: the battery's `launcher.leaked-fds` must see that launcher's leaks, not
/// the audit's caller's).
pub fn cloexec_from(first: u32) -> nix::Result<()> {
    // SAFETY: with CLOSE_RANGE_CLOEXEC nothing is closed (close_range's contract puts no
    // obligation on the caller); the flag takes effect at execve only.
    unsafe { close_range(first, u32::MAX, true) }
}

/// Installs a classic BPF seccomp filter on the calling thread. The kernel refuses (`EACCES`)
/// unless no_new_privs is set or the caller holds CAP_SYS_ADMIN.
pub fn seccomp_install(program: &[seccompiler::sock_filter]) -> nix::Result<()> {
    seccomp_set_mode_filter(program, 0).map(drop)
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, program)`: the one place a filter is handed to
/// the kernel ([`seccomp_install`], [`notif::seccomp_install_listener`]); returns the call's
/// result (a listener descriptor with `SECCOMP_FILTER_FLAG_NEW_LISTENER`, else 0).
pub(crate) fn seccomp_set_mode_filter(
    program: &[seccompiler::sock_filter],
    flags: libc::c_ulong,
) -> nix::Result<libc::c_long> {
    let len = u16::try_from(program.len()).map_err(|_| Errno::E2BIG)?;
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: `seccompiler::sock_filter` is `#[repr(C)]` with the same layout as the kernel's
    // `struct sock_filter` (u16, u8, u8, u32), `prog` points at `len` of them and the kernel
    // copies the program in (copy_from_user) before returning; neither is used afterwards.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &raw const prog,
        )
    };
    Errno::result(ret)
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Gives signal `signo` (any number, real-time ones too) a handler that does nothing, and
/// returns the disposition it replaced (a handler counts as the default: execve makes it so).
/// A PID 1 receives only signals it has a handler for, so the reaper needs one to see (and
/// forward) what the supervisor sends; the signals stay blocked and are taken from a signalfd.
pub fn set_noop_handler(signo: libc::c_int) -> nix::Result<Disposition> {
    set_handler(
        signo,
        ignore_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
    )
}

/// Sets signal `signo` to SIG_DFL or SIG_IGN (in the program's process before exec, and in
/// `main`).
pub fn set_disposition(signo: libc::c_int, to: Disposition) -> nix::Result<()> {
    let handler = match to {
        Disposition::Default => libc::SIG_DFL,
        Disposition::Ignore => libc::SIG_IGN,
    };
    set_handler(signo, handler).map(drop)
}

/// `sigaction(signo, {handler, SA_RESTART, empty mask}, &old)` by raw number: nix's
/// `sigaction` takes its `Signal` enum, which has no real-time signals. Returns what the old
/// action was: SIG_IGN or (for SIG_DFL and any handler) the default.
fn set_handler(signo: libc::c_int, handler: libc::sighandler_t) -> nix::Result<Disposition> {
    // SAFETY: `sigaction` is plain old data; all-zero is a valid value (an empty mask, no
    // flags, SIG_DFL), and every field that matters is set below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: sigemptyset writes only the mask of `action`, which lives on this frame.
    Errno::result(unsafe { libc::sigemptyset(&raw mut action.sa_mask) })?;
    // SAFETY: as above, a valid value for the kernel to overwrite.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: the handler is SIG_DFL, SIG_IGN or `ignore_signal`, an empty `extern "C"`
    // function that is trivially async-signal-safe; the kernel copies `action` in and writes
    // the old action into `old`, both on this frame.
    Errno::result(unsafe { libc::sigaction(signo, &raw const action, &raw mut old) })?;
    Ok(if old.sa_sigaction == libc::SIG_IGN {
        Disposition::Ignore
    } else {
        Disposition::Default
    })
}

/// The set of these raw signal numbers (real-time ones too, which nix's `SigSet::add` can't
/// name). Fails with EINVAL for a number glibc refuses (0, above 64, or its own 32 and 33).
pub fn signal_set(signals: &[libc::c_int]) -> nix::Result<nix::sys::signal::SigSet> {
    let mut raw = *nix::sys::signal::SigSet::empty().as_ref();
    for &signo in signals {
        // SAFETY: sigaddset writes only the set, an initialised `sigset_t` on this frame, and
        // checks the number itself.
        Errno::result(unsafe { libc::sigaddset(&raw mut raw, signo) })?;
    }
    // SAFETY: `raw` was initialised by `SigSet::empty` (sigemptyset) and changed only by
    // sigaddset.
    Ok(unsafe { nix::sys::signal::SigSet::from_sigset_t_unchecked(raw) })
}

/// Is raw signal `signo` in `set`? (nix's `SigSet::contains` takes its `Signal` enum.)
#[cfg(test)]
pub fn signal_set_has(set: &nix::sys::signal::SigSet, signo: libc::c_int) -> bool {
    // SAFETY: sigismember only reads the set, an initialised `sigset_t` nix owns.
    unsafe { libc::sigismember(set.as_ref(), signo) == 1 }
}

/// `kill(pid, signo)` by raw number (nix's `kill` takes its `Signal` enum, which has no
/// real-time signals).
pub fn send_signal(pid: Pid, signo: libc::c_int) -> nix::Result<()> {
    // SAFETY: kill takes two integers and reads or writes no memory of ours.
    Errno::result(unsafe { libc::kill(pid.as_raw(), signo) }).map(drop)
}

/// Brings the loopback interface up (SIOCGIFFLAGS / SIOCSIFFLAGS on a datagram socket).
pub fn loopback_up() -> nix::Result<()> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = libc::c_char::from_ne_bytes([*src]);
    }
    // SAFETY: `req` is a valid ifreq naming "lo", alive for the call; SIOCGIFFLAGS writes
    // only ifr_flags inside it.
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) })?;
    let up =
        libc::c_short::try_from(libc::IFF_UP | libc::IFF_RUNNING).map_err(|_| Errno::EINVAL)?;
    // SAFETY: ifr_ifru is a union; SIOCGIFFLAGS just initialised its ifru_flags member.
    unsafe {
        req.ifr_ifru.ifru_flags |= up;
    }
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) }).map(drop)
}

/// The raw fd number of a borrowed fd, for `/proc/self/fd/N` paths.
pub fn fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Returns the raw number; used where an fd must be kept out of a close_range.
pub fn raw(fd: BorrowedFd<'_>) -> RawFd {
    fd.as_raw_fd()
}

/// Is capability `cap` in the bounding set? `Err(EINVAL)` past the last capability the
/// running kernel knows.
pub fn capbset_read(cap: u32) -> nix::Result<bool> {
    // SAFETY: PR_CAPBSET_READ takes an integer and reads no memory of ours.
    let ret = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0) };
    Errno::result(ret).map(|r| r == 1)
}

/// Drops capability `cap` from the bounding set (needs CAP_SETPCAP).
pub fn capbset_drop(cap: u32) -> nix::Result<()> {
    // SAFETY: PR_CAPBSET_DROP takes an integer and reads no memory of ours.
    let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
    Errno::result(ret).map(drop)
}

/// This thread's effective, permitted and inheritable capability sets, as bit masks
/// (`capget`, version 3: one call reads all three).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    /// The effective set.
    pub effective: u64,
    /// The permitted set.
    pub permitted: u64,
    /// The inheritable set.
    pub inheritable: u64,
}

/// `capget(0)`: all three of this thread's sets in one call.
pub fn capget_all() -> nix::Result<CapSets> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two `__user_cap_data_struct` for version 3, the size of `data`;
    // `hdr` is a valid header.
    let ret = unsafe { libc::syscall(libc::SYS_capget, &raw mut hdr, data.as_mut_ptr()) };
    Errno::result(ret)?;
    let wide = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok(CapSets {
        effective: wide(data[0].effective, data[1].effective),
        permitted: wide(data[0].permitted, data[1].permitted),
        inheritable: wide(data[0].inheritable, data[1].inheritable),
    })
}

/// `capset(0, sets)`: all three of this thread's sets become `sets` in one call (the kernel
/// checks the whole change at once, as for three separate calls in a valid order).
pub fn capset_all(sets: CapSets) -> nix::Result<()> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let half = |v: u64, hi: bool| {
        let part = if hi { v >> 32 } else { v & 0xffff_ffff };
        u32::try_from(part).unwrap_or(u32::MAX)
    };
    let data = [false, true].map(|hi| CapData {
        effective: half(sets.effective, hi),
        permitted: half(sets.permitted, hi),
        inheritable: half(sets.inheritable, hi),
    });
    // SAFETY: capset reads two `__user_cap_data_struct` for version 3, the size of `data`;
    // `hdr` is a valid header.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &raw mut hdr, data.as_ptr()) };
    Errno::result(ret).map(drop)
}

/// The running kernel's Landlock ABI version (`landlock_create_ruleset(NULL, 0,
/// LANDLOCK_CREATE_RULESET_VERSION)`); `Err(ENOSYS/EOPNOTSUPP)` when unavailable.
pub fn landlock_abi() -> nix::Result<i32> {
    // SAFETY: with a NULL attribute pointer, size 0 and the VERSION flag the kernel reads no
    // memory and only returns a number.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    Errno::result(ret).map(|v| i32::try_from(v).unwrap_or(i32::MAX))
}

/// `_exit(code)`: ends the process at once, without running exit handlers or flushing stdio
/// buffers that a fork inherited.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit only terminates the calling process; it touches no Rust-managed state.
    unsafe { libc::_exit(code) }
}

/// `open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH [| AT_RECURSIVE])`:
/// a detached copy of the mount at `fd` (and, if `recursive`, of the mounts below it), taken
/// now — mounts made later anywhere else are not part of it.
pub fn open_tree_clone(fd: BorrowedFd<'_>, recursive: bool) -> nix::Result<std::os::fd::OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let mut flags = OPEN_TREE_CLONE | flag(libc::O_CLOEXEC)? | flag(libc::AT_EMPTY_PATH)?;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    let empty: &CStr = c"";
    // SAFETY: `empty` is NUL-terminated and outlives the call; `fd` is a live borrowed
    // descriptor. On success the kernel returns a new descriptor that nothing else owns.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), empty.as_ptr(), flags) };
    let raw = Errno::result(ret)?;
    let raw = RawFd::try_from(raw).map_err(|_| Errno::EBADF)?;
    // SAFETY: `raw` was just returned by open_tree and is owned by no one else.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) })
}

/// `move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)`:
/// attaches a detached tree onto the directory or file `target` refers to.
pub fn move_mount_to(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> nix::Result<()> {
    const F_EMPTY_PATH: libc::c_uint = 0x4;
    const T_EMPTY_PATH: libc::c_uint = 0x40;
    let empty: &CStr = c"";
    // SAFETY: both paths are the NUL-terminated empty string, alive for the call; both
    // descriptors are live borrows. The kernel reads only these arguments.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            target.as_raw_fd(),
            empty.as_ptr(),
            F_EMPTY_PATH | T_EMPTY_PATH,
        )
    };
    Errno::result(ret).map(drop)
}

/// `move_mount(tree, "", dir, name, MOVE_MOUNT_F_EMPTY_PATH)`: attaches a detached tree onto
/// the entry `name` of the directory `dir`, without a descriptor of its own for the mount
/// point. `name` must be one path component (no `/`, not `.` or `..`: `EINVAL` otherwise), so
/// the lookup can't leave `dir`; without `MOVE_MOUNT_T_SYMLINKS` and `MOVE_MOUNT_T_AUTOMOUNTS`
/// the kernel follows no symbolic link and triggers no automount at it.
pub fn move_mount_to_name(
    tree: BorrowedFd<'_>,
    dir: BorrowedFd<'_>,
    name: &std::path::Path,
) -> nix::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    const F_EMPTY_PATH: libc::c_uint = 0x4;
    let bytes = name.as_os_str().as_bytes();
    if bytes.is_empty() || bytes.contains(&b'/') || bytes == b"." || bytes == b".." {
        return Err(Errno::EINVAL);
    }
    let name = std::ffi::CString::new(bytes).map_err(|_| Errno::EINVAL)?;
    let empty: &CStr = c"";
    // SAFETY: both paths are NUL-terminated and alive for the call; both descriptors are live
    // borrows. The kernel reads only these arguments.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            F_EMPTY_PATH,
        )
    };
    Errno::result(ret).map(drop)
}

/// A raw system call with up to six integer arguments, for the escape probes: the point is to
/// call what the sandbox forbids, with arguments that do no harm when it is allowed.
///
/// # Safety
///
/// The call must not change anything Rust code in this process relies on: no memory of the
/// process mapped, unmapped, protected or written (an argument that is an address must point
/// at live data the kernel only reads, or be one the kernel rejects), no descriptor that an
/// object owns closed or replaced, no thread or process state (signal handlers, the stack,
/// TLS) changed under the code that runs next. Which calls and arguments qualify only the
/// caller knows: they are the probe's choice.
pub unsafe fn raw_syscall(nr: libc::c_long, args: [u64; 6]) -> nix::Result<i64> {
    // SAFETY: what the call does is harmless to this process (this function's contract); the
    // arguments are passed as integers and the kernel validates every one of them.
    let ret = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]) };
    Errno::result(ret)
}

/// A 32-bit (i386) system call through `int 0x80`, with integer arguments; returns the raw
/// result (a negative errno on failure).
///
/// # Safety
///
/// As for [`raw_syscall`]: the call (an i386 number, whose table differs from x86_64's) must
/// change nothing Rust code in this process relies on.
#[cfg(target_arch = "x86_64")]
pub unsafe fn int80(nr: u32, a: u32, b: u32, c: u32) -> i32 {
    let ret: i64;
    // SAFETY: `int 0x80` enters the kernel's i386 entry point; with the arguments in eax, ebx,
    // ecx and edx it returns in eax and clobbers nothing else the compiler relies on (r8-r11
    // are saved by the kernel on this path). What the call does is harmless to this process
    // (this function's contract).
    unsafe {
        // rbx is reserved by LLVM: swap the first argument in and out around the call.
        std::arch::asm!(
            "xchg {a}, rbx",
            "int 0x80",
            "xchg {a}, rbx",
            a = inout(reg) u64::from(a) => _,
            inlateout("rax") u64::from(nr) => ret,
            in("rcx") u64::from(b),
            in("rdx") u64::from(c),
            options(nostack)
        );
    }
    // The i386 entry returns a 32-bit value in eax.
    abi::low_int(ret)
}

/// `pidfd_open(pid, 0)`: a descriptor that becomes readable when the process exits.
pub fn pidfd_open(pid: Pid) -> nix::Result<std::os::fd::OwnedFd> {
    // SAFETY: pidfd_open takes two integers; on success it returns a new descriptor.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let raw = RawFd::try_from(Errno::result(ret)?).map_err(|_| Errno::EBADF)?;
    // SAFETY: `raw` was just returned by pidfd_open and is owned by no one else.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) })
}

/// The mount namespace of `pidfd`'s process, as a new descriptor (close-on-exec):
/// `ioctl(pidfd, PIDFD_GET_MNT_NAMESPACE)` (Linux 6.11). Holding it keeps the namespace, and
/// every mount in it, alive after its last process has exited.
pub fn pidfd_mount_ns(pidfd: BorrowedFd<'_>) -> nix::Result<std::os::fd::OwnedFd> {
    // SAFETY: the ioctl takes no argument; on success the kernel returns a new descriptor it
    // opened with O_CLOEXEC (`open_namespace`), owned by no one else.
    let ret = unsafe { libc::ioctl(pidfd.as_raw_fd(), libc::PIDFD_GET_MNT_NAMESPACE, 0) };
    let raw = Errno::result(ret)?;
    // SAFETY: `raw` was just returned by the ioctl and is owned by no one else.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) })
}

/// `struct io_uring_params` (linux/io_uring.h): 120 bytes the kernel fills in; only
/// `sq_entries`' neighbours matter here, and all are zero on entry.
#[repr(C)]
#[derive(Default)]
struct IoUringParams {
    words: [u32; 30],
}

/// IORING_REGISTER_FILES (linux/io_uring.h).
const IORING_REGISTER_FILES: libc::c_uint = 2;

/// Lets the kernel close `fd` for the last time in one of its own workers, not in this process:
/// the descriptor becomes a registered file of a fresh io_uring instance, and both are closed.
/// The ring's teardown (`io_ring_exit_work`) runs in a kernel worker and drops the file there,
/// and a file dropped by a kernel thread is released by another worker (`delayed_fput`), so
/// whatever the file's release frees (a mount namespace's mounts, with their RCU waits) is
/// freed after this process may have exited. On an error (no io_uring: kernel, sysctl
/// `kernel.io_uring_disabled`, a seccomp filter), `fd` is returned, still open, for a plain
/// close.
pub fn close_in_kernel_worker(
    fd: std::os::fd::OwnedFd,
) -> Result<(), (Errno, std::os::fd::OwnedFd)> {
    KernelCloser::prepare(fd).map(KernelCloser::close)
}

/// [`close_in_kernel_worker`] in two halves: the ring made and the descriptor registered in
/// it ([`KernelCloser::prepare`]) ahead of time, both closed ([`KernelCloser::close`]) when
/// the time comes — two `close` calls where the whole costs an `io_uring_setup` (its rings'
/// memory) and a registration more. Until then the descriptor stays open here too, and the
/// ring holds a second reference to its file.
#[derive(Debug)]
pub struct KernelCloser {
    // Dropped in this order (declaration order): ours, then the ring's.
    fd: std::os::fd::OwnedFd,
    ring: std::os::fd::OwnedFd,
}

impl KernelCloser {
    /// A fresh io_uring instance (close-on-exec: io_uring descriptors always are) with `fd`
    /// registered in it; on an error `fd` is returned, still open.
    pub fn prepare(
        fd: std::os::fd::OwnedFd,
    ) -> Result<KernelCloser, (Errno, std::os::fd::OwnedFd)> {
        let mut params = IoUringParams::default();
        // SAFETY: io_uring_setup reads and writes `params`, a zeroed `struct io_uring_params`
        // of the kernel's size (120 bytes), alive for the call; on success it returns a new
        // descriptor (close-on-exec: io_uring descriptors always are).
        let ret = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, &raw mut params) };
        let ring =
            match Errno::result(ret).and_then(|r| RawFd::try_from(r).map_err(|_| Errno::EBADF)) {
                // SAFETY: `raw` was just returned by io_uring_setup and is owned by no one else.
                Ok(raw) => unsafe {
                    <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw)
                },
                Err(e) => return Err((e, fd)),
            };
        let files: [RawFd; 1] = [fd.as_raw_fd()];
        // SAFETY: IORING_REGISTER_FILES reads `nr_args` (1) descriptors from `files`, alive for
        // the call; the kernel takes its own reference to each file and writes no memory of
        // ours.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                ring.as_raw_fd(),
                IORING_REGISTER_FILES,
                files.as_ptr(),
                1u32,
            )
        };
        if let Err(e) = Errno::result(ret) {
            return Err((e, fd));
        }
        Ok(KernelCloser { fd, ring })
    }

    /// Closes our descriptor, which leaves the ring's reference the only other one, then the
    /// ring: the file is dropped in the ring's teardown, in a kernel worker.
    pub fn close(self) {
        let KernelCloser { fd, ring } = self;
        drop(fd);
        drop(ring);
    }
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`: signals exactly the process the pidfd names (a
/// pid may have been reused; a pidfd can't be).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: Signal) -> nix::Result<()> {
    pidfd_send_signo(pidfd, sig as libc::c_int)
}

/// [`pidfd_send_signal`] by raw number: real-time signals too, which nix's `Signal` can't name.
pub fn pidfd_send_signo(pidfd: BorrowedFd<'_>, signo: libc::c_int) -> nix::Result<()> {
    // SAFETY: the call takes a descriptor, a signal number, a null siginfo pointer (the kernel
    // then fills in SI_USER itself and reads no memory of ours) and zero flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signo,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// `ioctl(fd, TIOCSCTTY, 0)`: makes the terminal `fd` the controlling terminal of this (session
/// leader) process.
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument and reads no memory of ours.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) }).map(drop)
}

/// `ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)`: the slave end of a pseudo-
/// terminal, opened without a path lookup.
pub fn pty_peer(master: BorrowedFd<'_>) -> nix::Result<std::os::fd::OwnedFd> {
    const TIOCGPTPEER: libc::c_ulong = 0x5441;
    // SAFETY: TIOCGPTPEER takes open flags as an integer and returns a new descriptor.
    let ret = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    let raw = Errno::result(ret)?;
    // SAFETY: `raw` was just returned by the kernel and is owned by no one else.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) })
}

/// A terminal's window size.
pub fn get_winsize(fd: BorrowedFd<'_>) -> nix::Result<libc::winsize> {
    // SAFETY: winsize is plain old data; all-zero is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into `ws`, which lives across the call.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) })?;
    Ok(ws)
}

/// Sets a terminal's window size (the kernel signals SIGWINCH to its foreground group).
pub fn set_winsize(fd: BorrowedFd<'_>, ws: &libc::winsize) -> nix::Result<()> {
    // SAFETY: TIOCSWINSZ reads one winsize from `ws`, which lives across the call.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws) }).map(drop)
}

/// Kekkai's own standard descriptor `n` (0, 1 or 2; larger values mean 2).
pub fn std_fd(n: usize) -> BorrowedFd<'static> {
    let raw: RawFd = match n {
        0 => 0,
        1 => 1,
        _ => 2,
    };
    // SAFETY: descriptors 0, 1 and 2 are open for the whole life of the process: the standard
    // library's start-up opens /dev/null on any of them that is closed, and kekkai only ever
    // replaces them with dup2, which never leaves them closed.
    unsafe { BorrowedFd::borrow_raw(raw) }
}

/// `ioctl(fd, TIOCGDEV)`: the device number of the terminal behind `fd` (for `/dev/tty`, the
/// controlling terminal it stands for).
pub fn tty_device(fd: BorrowedFd<'_>) -> nix::Result<u64> {
    const TIOCGDEV: libc::c_ulong = 0x8004_5432;
    let mut dev: libc::c_uint = 0;
    // SAFETY: TIOCGDEV writes one unsigned int into `dev`, which lives across the call.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), TIOCGDEV, &mut dev) })?;
    Ok(u64::from(dev))
}

/// Makes `cmd`'s process the leader of a new session whose controlling terminal is `tty`, as a
/// terminal emulator starts a shell (for tests and the audit, which play the caller's terminal).
pub fn in_new_session_with_tty(cmd: &mut std::process::Command, tty: std::os::fd::OwnedFd) {
    use std::os::unix::process::CommandExt;
    let raw = tty.as_raw_fd();
    // SAFETY: the closure runs in the forked child before exec and calls only setsid and ioctl,
    // which are async-signal-safe and allocate nothing. `raw` is open in the child: `tty` is
    // moved into the closure, which the Command keeps alive until it is dropped, after spawn.
    unsafe {
        cmd.pre_exec(move || {
            let _keep = &tty;
            if libc::setsid() < 0 || libc::ioctl(raw, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// `recvmsg(sock, buf, MSG_CMSG_CLOEXEC)` with room for one descriptor (SCM_RIGHTS): the
/// number of bytes read and the descriptor that came with them, owned. A peer that sends more
/// than one gets the others closed.
pub fn recv_with_fd(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
) -> nix::Result<(usize, Option<std::os::fd::OwnedFd>)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut cmsg_space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg_space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            for fd in raw {
                // SAFETY: the kernel installed `fd` in this process's table for this message
                // just now; no object knows its number yet, and it is adopted once, here.
                fds.push(unsafe {
                    <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
                });
            }
        }
    }
    // The first is kept; any others are closed as the iterator drops.
    Ok((msg.bytes, fds.into_iter().next()))
}

/// `shmget(key, size, flags)`: the id of a System V shared memory segment.
pub fn shmget(key: libc::key_t, size: usize, flags: libc::c_int) -> nix::Result<libc::c_int> {
    // SAFETY: shmget takes integers only and reads or writes no memory of ours.
    Errno::result(unsafe { libc::shmget(key, size, flags) })
}

/// `shmctl(id, IPC_RMID, NULL)`: removes a System V shared memory segment.
pub fn shm_remove(id: libc::c_int) -> nix::Result<()> {
    // SAFETY: IPC_RMID takes no buffer; the NULL pointer is never dereferenced.
    Errno::result(unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop)
}

/// How a child that `waitpid` reported ended, its signal as the raw number. nix's
/// `WaitStatus` holds a `Signal`, which has no real-time signals: its `waitpid` fails with
/// EINVAL for a child one of them killed (after reaping it), and the end would be lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEnd {
    /// exit(code).
    Exited(i32),
    /// Killed by this signal (any number, real-time ones too).
    Signaled(i32),
    /// Stopped or continued: not an end.
    Other,
}

/// `waitpid(pid, WNOHANG)`, or any child for `None`: the child and how it ended, or `None`
/// while no child has changed state.
pub fn wait_nohang(pid: Option<Pid>) -> nix::Result<Option<(Pid, ChildEnd)>> {
    let mut status: libc::c_int = 0;
    let target = pid.map_or(-1, Pid::as_raw);
    // SAFETY: waitpid writes only the status integer passed, which outlives the call.
    let got = Errno::result(unsafe { libc::waitpid(target, &mut status, libc::WNOHANG) })?;
    if got == 0 {
        return Ok(None);
    }
    let end = if libc::WIFEXITED(status) {
        ChildEnd::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        ChildEnd::Signaled(libc::WTERMSIG(status))
    } else {
        ChildEnd::Other
    };
    Ok(Some((Pid::from_raw(got), end)))
}

/// `waitpid(pid, &status, 0)`: waits for the child `pid` to end and reaps it, whatever ended
/// it (a raw status: nix's waitpid fails on a real-time signal's status).
pub fn wait_blocking(pid: Pid) -> nix::Result<()> {
    let mut status: libc::c_int = 0;
    // SAFETY: waitpid writes only the status integer passed, which outlives the call.
    Errno::result(unsafe { libc::waitpid(pid.as_raw(), &mut status, 0) }).map(drop)
}

/// Drops this process's page-table entries for the read-only file mappings of its executable
/// and libraries (code, constants, symbol and relocation tables) and returns free heap to the
/// kernel. The supervisor calls it once the program has run for a while: from then on it
/// sleeps in `poll` and its resident set holds only what it touches again. Best-effort by
/// nature: nothing depends on it, so failures are ignored.
///
/// The segments come from the loader's own list (`dl_iterate_phdr`: each loaded object's load
/// address and program headers), not from `/proc/self/maps`, whose text the kernel would have
/// to format and this process to parse.
pub fn release_code_pages() {
    // SAFETY: `drop_read_only` matches the callback type, reads only what glibc hands it and
    // keeps no pointer past its return; the data pointer is unused.
    unsafe { libc::dl_iterate_phdr(Some(drop_read_only), std::ptr::null_mut()) };
    // SAFETY: malloc_trim only hands free heap pages back to the kernel; allocations stay valid.
    unsafe { libc::malloc_trim(0) };
}

/// `Elf64_Dyn` (elf.h): one entry of an object's dynamic section.
#[repr(C)]
struct ElfDyn {
    tag: i64,
    val: u64,
}

/// DT_NULL, DT_TEXTREL, DT_FLAGS and DF_TEXTREL (elf.h).
const DT_NULL: i64 = 0;
const DT_TEXTREL: i64 = 22;
const DT_FLAGS: i64 = 30;
const DF_TEXTREL: u64 = 0x4;

/// `dl_iterate_phdr`'s callback, once per loaded object: `MADV_DONTNEED` on each of its
/// loadable segments that are never writable.
///
/// # Safety
/// Called by glibc's `dl_iterate_phdr` only, with the object's `dl_phdr_info`.
unsafe extern "C" fn drop_read_only(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    _data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: glibc calls this with a valid `dl_phdr_info` that lives for the call and holds
    // the loader lock meanwhile, so the object and its headers stay mapped.
    let info = unsafe { &*info };
    // The executable has the empty name and every library an absolute path; the vDSO
    // ("linux-vdso.so.1") is no file mapping and is left alone.
    let file = info.dlpi_name.is_null() || {
        // SAFETY: a non-null `dlpi_name` is a NUL-terminated string owned by the loader,
        // valid while the loader lock is held (during this call).
        let name = unsafe { CStr::from_ptr(info.dlpi_name) }.to_bytes();
        name.first().is_none_or(|b| *b == b'/')
    };
    if !file || info.dlpi_phdr.is_null() {
        return 0;
    }
    let Ok(base) = usize::try_from(info.dlpi_addr) else {
        return 0;
    };
    // SAFETY: `dlpi_phdr` points to `dlpi_phnum` program headers of the object, which stay
    // mapped (and unchanged) while the loader lock is held.
    let headers =
        unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
    // An object with text relocations had the loader write into its read-only segments:
    // those pages differ from the file and must stay.
    for h in headers.iter().filter(|h| h.p_type == libc::PT_DYNAMIC) {
        let Ok(vaddr) = usize::try_from(h.p_vaddr) else {
            return 0;
        };
        let mut entry = std::ptr::with_exposed_provenance::<ElfDyn>(base.wrapping_add(vaddr));
        loop {
            // SAFETY: PT_DYNAMIC locates the object's dynamic section, mapped with it, an
            // array of `Elf64_Dyn` that ends with DT_NULL; the walk stops there.
            let d = unsafe { entry.read() };
            if d.tag == DT_NULL {
                break;
            }
            if d.tag == DT_TEXTREL || (d.tag == DT_FLAGS && d.val & DF_TEXTREL != 0) {
                return 0;
            }
            // SAFETY: the entry read was not DT_NULL, so the next one is in the array.
            entry = unsafe { entry.add(1) };
        }
    }
    // The pages a loadable segment occupies (from its page down to its page up).
    let page = 4096usize;
    let pages = |h: &libc::Elf64_Phdr| {
        let start = base.wrapping_add(usize::try_from(h.p_vaddr).ok()?);
        let len = usize::try_from(h.p_memsz.max(h.p_filesz)).ok()?;
        let first = start & !(page - 1);
        let end = start.checked_add(len)?.checked_add(page - 1)? & !(page - 1);
        (first != 0 && first < end).then_some((first, end))
    };
    let writable: Vec<(usize, usize)> = headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W != 0)
        .filter_map(pages)
        .collect();
    for h in headers {
        if h.p_type != libc::PT_LOAD || h.p_flags & libc::PF_W != 0 {
            continue;
        }
        let Some((first, end)) = pages(h) else {
            continue;
        };
        // The loader maps each segment's pages with the segment's own protection; a page
        // shared with a writable segment (which linkers avoid) would hold written data.
        if writable.iter().any(|&(f, e)| f < end && first < e) {
            continue;
        }
        // SAFETY: [first, end) is the loader's private mapping of a loadable segment that is
        // never writable (no PF_W) and shares no page with a writable one, of a file-backed
        // object without text relocations (all checked above), so no page of it was ever
        // written: dropping its page-table entries changes no content, the next access
        // refaults the same bytes from the file. No memory is unmapped and no Rust object is
        // invalidated. madvise fails harmlessly (EINVAL, ENOMEM) on anything else.
        unsafe {
            libc::madvise(
                std::ptr::with_exposed_provenance_mut::<libc::c_void>(first),
                end - first,
                libc::MADV_DONTNEED,
            )
        };
    }
    0
}

/// Maps `len` bytes of private anonymous memory and writes one byte in every 4 KiB page, so
/// the kernel must back (and charge to the memory cgroup) all of it; then unmaps it. The work
/// is bounded by `len`, not by time: it ends when every page is backed, when `mmap` fails
/// (ENOMEM), or when the OOM killer ends the process at a memory limit. Transparent huge pages
/// are asked for (a hint, whatever the kernel does with it) so that a slow machine takes one
/// fault per 2 MiB instead of 512.
pub fn touch_anonymous(len: usize) -> nix::Result<()> {
    // SAFETY: a new private anonymous mapping at an address the kernel chooses: no existing
    // memory is affected, and the result is checked before it is used.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(Errno::last());
    }
    // SAFETY: [base, base+len) is the mapping made above; MADV_HUGEPAGE only changes how the
    // kernel backs it. Its result is a hint's: without huge pages the loop below still works.
    let _ = unsafe { libc::madvise(base, len, libc::MADV_HUGEPAGE) };
    let bytes = base.cast::<u8>();
    for offset in (0..len).step_by(4096) {
        // SAFETY: offset < len, so the byte is inside the readable and writable mapping made
        // above, which nothing else refers to; a volatile write can't be optimised away.
        unsafe { std::ptr::write_volatile(bytes.add(offset), 1) };
    }
    // SAFETY: unmaps exactly the mapping made above; no reference into it outlives this call.
    let ret = unsafe { libc::munmap(base, len) };
    Errno::result(ret).map(drop)
}

/// The strings the kernel copied onto this process's stack at `execve`: the command line
/// `[arg_start, arg_end)` and the environment `[env_start, env_end)`, from fields 48 to 51 of
/// a `/proc/PID/stat` text (proc(5)). `/proc/PID/cmdline` and `/proc/PID/environ` read exactly
/// these two ranges of the process's memory.
pub fn arg_env_area(stat: &str) -> Option<[usize; 4]> {
    // Field 2, the command name, may itself hold spaces and parentheses: count from the last
    // ") ", after which field 3 starts.
    let after = stat.rsplit_once(") ")?.1;
    let mut fields = after.split(' ').skip(48 - 3);
    let mut out = [0usize; 4];
    for slot in &mut out {
        *slot = fields.next()?.trim().parse().ok()?;
    }
    let [arg_start, arg_end, env_start, env_end] = out;
    (arg_start != 0 && arg_start <= arg_end && env_start <= env_end).then_some(out)
}

/// The argument and environment strings' ranges `[arg_start, arg_end, env_start, env_end]`,
/// as the kernel laid them out at execve, taken by [`capture_arg_env_area`] before `main`; all
/// zero if it did not run.
static ARG_ENV_AREA: [std::sync::atomic::AtomicUsize; 4] =
    [const { std::sync::atomic::AtomicUsize::new(0) }; 4];

/// The ranges [`capture_arg_env_area`] found, if it ran.
fn start_up_arg_env_area() -> Option<[usize; 4]> {
    let area = ARG_ENV_AREA
        .each_ref()
        .map(|a| a.load(std::sync::atomic::Ordering::Relaxed));
    let [arg_start, arg_end, env_start, env_end] = area;
    (arg_start != 0 && arg_start < arg_end && arg_end == env_start && env_start <= env_end)
        .then_some(area)
}

/// Run by glibc before `main` (an `.init_array` entry, as Rust's own `std::env::args` is
/// found on glibc), with the `argc`, `argv` and `envp` the process started with: records
/// where the kernel put the argument and environment strings, so that
/// [`forget_launcher_args`] needs no `/proc/self/stat`. The kernel writes them one after the
/// other (`argv[0]` … `argv[argc-1]`, then `envp[0]` …, each NUL-terminated) and points
/// `argv` and `envp` at them in that order. Only that layout is recorded: arrays something
/// changed before (a preloaded library that retitles the process) leave the ranges unset.
unsafe extern "C" fn capture_arg_env_area(
    argc: libc::c_int,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) {
    /// The first string of the first `n` of a NULL-terminated array, and one past the NUL of
    /// the last, if each string follows the one before it directly (the kernel's layout).
    ///
    /// # Safety
    /// `array` is null or holds at least `n` valid pointers to NUL-terminated strings, or a
    /// null pointer before them (where the walk stops).
    unsafe fn span(array: *const *const libc::c_char, n: usize) -> Option<(usize, usize)> {
        if array.is_null() {
            return None;
        }
        let mut range: Option<(usize, usize)> = None;
        for i in 0..n {
            // SAFETY: i < n, within the array, or the array ended (checked below) first.
            let p = unsafe { *array.add(i) };
            if p.is_null() {
                break;
            }
            let at = p.expose_provenance();
            // SAFETY: `p` is one of the array's strings, NUL-terminated.
            let len = unsafe { CStr::from_ptr(p) }.to_bytes_with_nul().len();
            range = match range {
                None => Some((at, at.checked_add(len)?)),
                Some((first, end)) if at == end => Some((first, end.checked_add(len)?)),
                Some(_) => return None,
            };
        }
        range
    }
    let Ok(argc) = usize::try_from(argc) else {
        return;
    };
    // SAFETY: glibc passes the process's own `argv` (argc pointers, then NULL) and `envp`
    // (NULL-terminated) as the kernel built them; they and their strings live in the initial
    // stack for the whole life of the process.
    let Some((arg_start, arg_end)) = (unsafe { span(argv, argc) }) else {
        return;
    };
    let mut envc = 0usize;
    // SAFETY: `envp` is NULL-terminated (see above); the walk stops at the NULL.
    while !envp.is_null() && !unsafe { *envp.add(envc) }.is_null() {
        envc += 1;
    }
    // SAFETY: as above; `envc` counts the pointers before the NULL.
    let env = unsafe { span(envp, envc) };
    let (env_start, env_end) = match env {
        Some(range) => range,
        // No environment: an empty range right after the arguments.
        None if envc == 0 => (arg_end, arg_end),
        None => return,
    };
    // The environment strings follow the arguments directly.
    if arg_start < arg_end && arg_end == env_start && env_start <= env_end {
        for (slot, v) in ARG_ENV_AREA
            .iter()
            .zip([arg_start, arg_end, env_start, env_end])
        {
            slot.store(v, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The `.init_array` entry that makes glibc call [`capture_arg_env_area`] before `main`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
// SAFETY: `.init_array` holds pointers to functions the C runtime calls once before `main`;
// glibc (dynamic and static) calls each with `(argc, argv, envp)`, the signature this entry
// has, and `capture_arg_env_area` only reads those arrays and stores into atomics: no Rust
// runtime state is needed before `main`.
#[unsafe(link_section = ".init_array")]
static CAPTURE_ARG_ENV_AREA: unsafe extern "C" fn(
    libc::c_int,
    *const *const libc::c_char,
    *const *const libc::c_char,
) = capture_arg_env_area;

/// Overwrites this process's command line and environment strings in memory, so that
/// `/proc/PID/cmdline` shows `shown` and `/proc/PID/environ` nothing. The sandbox's first
/// process is a copy of the launcher (clone without exec), and without this its command line
/// (policy path, bind sources, `--setenv` values) and the caller's environment stay in its
/// memory, the command line readable by every process of the sandbox as `/proc/1/cmdline`.
///
/// `shown` is written at the start of the (zeroed) command line, and the line's last byte is
/// made non-zero: the kernel takes a command line that does not end in NUL as one a process
/// retitled itself (setproctitle(3)) and shows it up to its first NUL, so `/proc/PID/cmdline`
/// reads `shown` and a NUL — not the old length in NULs. A command line too short for that is
/// only zeroed. The two ranges were taken at start-up, by an `.init_array` function; without
/// them (a C library that does not pass `argv` to initialisers, arrays a preloaded library
/// changed) they are read from `/proc/self/stat`. Two `memset`s; no system call changes the
/// process (`prctl(PR_SET_MM)` would need CAP_SYS_RESOURCE on the host).
///
/// Afterwards `std::env::args` and `std::env::var` read the overwritten strings (empty ones,
/// never freed memory). Refuses (`EDEADLK`) in a process with more than one thread, where
/// another thread could be reading them while they change.
pub fn forget_launcher_args(shown: &[u8]) -> nix::Result<()> {
    if !single_threaded() {
        return Err(Errno::EDEADLK);
    }
    let [arg_start, arg_end, env_start, env_end] = match start_up_arg_env_area() {
        Some(area) => area,
        None => {
            let stat = std::fs::read_to_string("/proc/self/stat")
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
            arg_env_area(&stat).ok_or(Errno::EINVAL)?
        }
    };
    let args = std::ptr::with_exposed_provenance_mut::<u8>(arg_start);
    let env = std::ptr::with_exposed_provenance_mut::<u8>(env_start);
    let (arg_len, env_len) = (arg_end - arg_start, env_end - env_start);
    // SAFETY: the two ranges are this process's own argument and environment strings, where
    // the kernel put them at execve (as it reports them in /proc/self/stat, or as they were
    // found at start-up before any code could move them; fork and clone keep the addresses in
    // the copy): they lie in the initial stack mapping, which is writable
    // and never unmapped while the process lives. No Rust reference points into them — std
    // keeps raw `argv` pointers and copies on every `args()`; libc's `environ` holds raw
    // pointers whose strings stay NUL-terminated (empty) after zeroing. This process has one
    // thread (checked above), so nothing reads them while they change. `shown` is written
    // only when it fits with its NUL and the final byte (`shown.len() + 2 <= arg_len`).
    unsafe {
        std::ptr::write_bytes(args, 0, arg_len);
        std::ptr::write_bytes(env, 0, env_len);
        if shown.len() + 2 <= arg_len && !shown.contains(&0) {
            std::ptr::copy_nonoverlapping(shown.as_ptr(), args, shown.len());
            args.add(arg_len - 1).write(b' ');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    /// Without /proc every number is asked: an inherited descriptor (no FD_CLOEXEC) is
    /// closed, a close-on-exec one of kekkai's own and a kept socket-activation number are
    /// left, and a number not open is skipped.
    #[rstest]
    #[case::inherited_is_closed(false, 0, false)]
    #[case::own_cloexec_stays(true, 0, true)]
    #[case::kept_listen_fd_stays(false, u32::MAX, true)]
    fn the_scan_closes_only_inherited_descriptors(
        #[case] cloexec: bool,
        #[case] keep: u32,
        #[case] open_after: bool,
    ) {
        let flags = if cloexec {
            nix::fcntl::OFlag::O_CLOEXEC
        } else {
            nix::fcntl::OFlag::empty()
        };
        let (r, w) = nix::unistd::pipe2(flags).unwrap();
        let n = u32::try_from(r.as_raw_fd()).unwrap();
        let keep = if keep == u32::MAX { n - 2 } else { keep };
        let closed = close_without_cloexec([n, n + 100_000].into_iter(), keep);
        assert_eq!(closed, usize::from(!open_after));
        // Asked through the write end, not the number: another test's thread may reuse a
        // closed number at once. With no read end left a write fails with EPIPE (Rust's
        // runtime ignores SIGPIPE).
        let written = nix::unistd::write(&w, b"x");
        if open_after {
            assert_eq!(written, Ok(1));
            drop(r);
        } else {
            assert_eq!(written, Err(Errno::EPIPE));
            // closed by the scan: the OwnedFd must not close the number again
            let _ = r.into_raw_fd();
        }
    }

    /// The reaper's handler install tells what it replaced: SIG_IGN, or the default for SIG_DFL
    /// and for a handler (execve resets one to the default). Each case has a real-time signal of
    /// its own (the cases run as threads of one process), set back to SIG_DFL after.
    #[rstest]
    #[case::ignored(1, Some(Disposition::Ignore), Disposition::Ignore)]
    #[case::default(2, Some(Disposition::Default), Disposition::Default)]
    #[case::a_handler(3, None, Disposition::Default)]
    fn the_noop_handler_returns_what_it_replaced(
        #[case] below_max: libc::c_int,
        #[case] before: Option<Disposition>,
        #[case] want: Disposition,
    ) {
        let signo = libc::SIGRTMAX() - below_max;
        match before {
            Some(d) => set_disposition(signo, d).unwrap(),
            None => {
                set_noop_handler(signo).unwrap();
            }
        }
        assert_eq!(
            inherited::ignored_now(signo).unwrap(),
            before == Some(Disposition::Ignore)
        );
        assert_eq!(set_noop_handler(signo).unwrap(), want);
        set_disposition(signo, Disposition::Default).unwrap();
        assert!(!inherited::ignored_now(signo).unwrap());
    }

    /// Every given descriptor is closed, runs and lone ones alike; one in a gap between them,
    /// not given, stays open.
    #[test]
    fn close_owned_closes_exactly_what_it_owns() {
        let open = || std::fs::File::open("/dev/null").map(OwnedFd::from).unwrap();
        let mut fds: Vec<OwnedFd> = (0..6).map(|_| open()).collect();
        let kept = fds.remove(3);
        let numbers: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        close_owned(fds).unwrap();
        // SAFETY: F_GETFD reads no memory and changes nothing; a closed number gives EBADF.
        let is_open = |fd: RawFd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
        assert!(is_open(kept.as_raw_fd()));
        // Tests run as threads: another may have opened a number of ours since. At most one.
        let still: Vec<RawFd> = numbers.into_iter().filter(|f| is_open(*f)).collect();
        assert!(still.len() <= 1, "{still:?}");
    }

    /// The raw status of a child a real-time signal killed (nix's waitpid: EINVAL), an exit
    /// code, and a termination signal.
    #[rstest::rstest]
    #[case("kill -s RTMIN $$", ChildEnd::Signaled(libc::SIGRTMIN()))]
    #[case("exit 7", ChildEnd::Exited(7))]
    #[case("kill -s TERM $$", ChildEnd::Signaled(libc::SIGTERM))]
    fn wait_nohang_decodes_the_raw_status(#[case] script: &str, #[case] want: ChildEnd) {
        let mut child = std::process::Command::new("sh")
            .args(["-c", script])
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
        let got = loop {
            match wait_nohang(Some(pid)).unwrap() {
                Some((p, end)) => break (p, end),
                None => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        };
        assert_eq!(got, (pid, want));
        // Reaped by wait_nohang: std finds no child left to wait for.
        assert_eq!(
            child.try_wait().map_err(|e| e.raw_os_error()).err(),
            Some(Some(libc::ECHILD))
        );
    }

    /// The kernel takes the file and releases it itself: the pipe's reader sees its end, so
    /// no descriptor of this process and no reference of the kernel's is left (a blocking
    /// read: no timing is assumed).
    #[test]
    fn close_in_kernel_worker_hands_the_file_over() {
        let (r, w) = nix::unistd::pipe().unwrap();
        assert_eq!(close_in_kernel_worker(w).map_err(|(e, _)| e), Ok(()));
        let mut buf = [0u8; 1];
        assert_eq!(nix::unistd::read(&r, &mut buf), Ok(0));
    }

    /// A file io_uring won't register (a ring itself) comes back, still open.
    #[test]
    fn close_in_kernel_worker_returns_what_the_kernel_refuses() {
        let mut params = IoUringParams::default();
        // SAFETY: as in close_in_kernel_worker: a zeroed params struct of the kernel's size.
        let ret = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, &raw mut params) };
        let raw = RawFd::try_from(Errno::result(ret).unwrap()).unwrap();
        // SAFETY: `raw` was just returned by io_uring_setup and is owned by no one else.
        let ring = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
        let (e, back) = close_in_kernel_worker(ring).unwrap_err();
        assert_eq!(e, Errno::EBADF);
        assert_eq!(back.as_raw_fd(), raw);
        assert!(nix::fcntl::fcntl(&back, nix::fcntl::FcntlArg::F_GETFD).is_ok());
    }

    /// PIDFD_GET_MNT_NAMESPACE names the process's mount namespace: the same inode as
    /// /proc/self/ns/mnt, close-on-exec.
    #[test]
    fn pidfd_mount_ns_is_the_process_namespace() {
        use std::os::fd::AsFd;
        let pidfd = pidfd_open(nix::unistd::getpid()).unwrap();
        let ns = pidfd_mount_ns(pidfd.as_fd()).unwrap();
        let want = nix::sys::stat::stat("/proc/self/ns/mnt").unwrap();
        let got = nix::sys::stat::fstat(ns.as_fd()).unwrap();
        assert_eq!((got.st_dev, got.st_ino), (want.st_dev, want.st_ino));
        let flags = nix::fcntl::fcntl(ns.as_fd(), nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
    }

    /// clone3 takes exactly the namespace flags.
    #[test]
    fn namespace_flags_are_the_clone_new_flags() {
        let want = [
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWNS,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWCGROUP,
            0x80, // CLONE_NEWTIME, which libc does not name
        ]
        .iter()
        .fold(0u64, |acc, f| acc | u64::try_from(*f).unwrap_or(u64::MAX));
        assert_eq!(NAMESPACE_FLAGS, want);
    }

    /// The test harness runs tests on threads of its own: a fork or clone3 here is refused
    /// before any process is made, and so is overwriting the harness's command line.
    #[rstest::rstest]
    #[case::fork(|| fork().map(drop))]
    #[case::clone3(|| clone3(0, None).map(drop))]
    #[case::forget_launcher_args(|| forget_launcher_args(b"x"))]
    fn refused_with_more_than_one_thread(#[case] call: fn() -> nix::Result<()>) {
        // Make sure this process has had a second thread, whatever the harness does.
        std::thread::spawn(|| ()).join().ok();
        assert!(!single_threaded());
        assert_eq!(call(), Err(Errno::EDEADLK));
    }

    /// Only namespace flags: CLONE_VM (0x100) would share this stack with the child.
    #[test]
    fn clone3_refuses_other_flags() {
        assert_eq!(clone3(0x100, None).map(drop), Err(Errno::EINVAL));
    }

    /// Fields 48 to 51 of /proc/PID/stat, whatever the command name holds.
    #[rstest::rstest]
    #[case::plain("1234 (kekkai) S", Some([100, 200, 200, 300]))]
    #[case::spaces_and_parens("1234 (a) (b c) S", Some([100, 200, 200, 300]))]
    #[case::kernel_thread_has_none("2 (kthreadd) S", None)]
    #[case::truncated("1234 (kekkai", None)]
    fn finds_the_argument_and_environment_area(
        #[case] head: &str,
        #[case] want: Option<[usize; 4]>,
    ) {
        // Fields 4 to 47 are not read; kernel threads report 0 for the four addresses.
        let filler = vec!["0"; 47 - 3].join(" ");
        let tail = match want {
            Some([a, b, c, d]) => format!("{a} {b} {c} {d} 0"),
            None => "0 0 0 0 0".into(),
        };
        let stat = format!("{head} {filler} {tail}\n");
        assert_eq!(arg_env_area(&stat), want);
    }
}

/// What a helper of the supervisor (pasta, nft) does between fork and exec, in this order:
/// die with the supervisor, join namespaces, keep one capability across exec, forbid gains.
#[derive(Debug, Clone, Default)]
pub struct HelperSetup {
    /// The supervisor's pid: the helper gets PR_SET_PDEATHSIG(SIGKILL) and exits at once if
    /// its parent is no longer this one (the supervisor died before the prctl).
    pub parent: i32,
    /// Descriptors to place at fixed numbers: (source, target). Every source must be above
    /// every target (the caller dups them high), so no dup2 overwrites a source still needed.
    pub fds: Vec<(RawFd, RawFd)>,
    /// Namespaces to join, in order: (descriptor, CLONE_NEW* type).
    pub join: Vec<(RawFd, libc::c_int)>,
    /// Keep CAP_NET_ADMIN across exec as an ambient capability (nft in a user namespace where
    /// the caller is not uid 0).
    pub ambient_net_admin: bool,
    /// Drop every capability but these (a bit mask) from the bounding set before exec (a root
    /// caller's pasta; needs CAP_SETPCAP, which an unprivileged caller has no use for).
    pub bounding: Option<u64>,
}

/// `struct __user_cap_header_struct` (linux/capability.h).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct` (linux/capability.h).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// _LINUX_CAPABILITY_VERSION_3.
const CAP_V3: u32 = 0x2008_0522;
/// CAP_NET_ADMIN.
const CAP_NET_ADMIN: u32 = 12;

/// The part of [`spawn_helper`] that runs in the forked child: system calls only (no
/// allocation, no locks), each failure returned as the raw errno.
fn helper_pre_exec(s: &HelperSetup) -> std::io::Result<()> {
    let check = |r: libc::c_long| {
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number; no memory is passed.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) }.into())?;
    // SAFETY: getppid has no arguments and can't fail.
    if unsafe { libc::getppid() } != s.parent {
        // SAFETY: _exit ends this forked copy without running the parent's destructors.
        unsafe { libc::_exit(125) };
    }
    for &(from, to) in &s.fds {
        // SAFETY: dup2 on descriptors the caller keeps open until spawn returns; `to` is a
        // fixed number below every source, so no source is closed by it.
        check(unsafe { libc::dup2(from, to) }.into())?;
    }
    for &(fd, kind) in &s.join {
        // SAFETY: setns on a namespace descriptor the caller keeps open; this forked copy has
        // one thread and its own fs_struct (fork), as joining a user namespace requires.
        check(unsafe { libc::setns(fd, kind) }.into())?;
    }
    if s.ambient_net_admin {
        let mut hdr = CapHeader {
            version: CAP_V3,
            pid: 0,
        };
        let mut data = [CapData::default(); 2];
        // SAFETY: capget writes two `__user_cap_data_struct` for version 3, the size of
        // `data`; `hdr` is a valid header.
        check(unsafe { libc::syscall(libc::SYS_capget, &raw mut hdr, data.as_mut_ptr()) })?;
        data[0].inheritable |= 1 << CAP_NET_ADMIN;
        // SAFETY: capset reads the same two structs capget filled.
        check(unsafe { libc::syscall(libc::SYS_capset, &raw mut hdr, data.as_ptr()) })?;
        check(
            // SAFETY: prctl(PR_CAP_AMBIENT_RAISE) takes a capability number; no memory is
            // passed.
            unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE,
                    CAP_NET_ADMIN,
                    0,
                    0,
                )
            }
            .into(),
        )?;
    }
    if let Some(keep) = s.bounding {
        for cap in 0..64u32 {
            if keep & (1 << cap) != 0 {
                continue;
            }
            // SAFETY: prctl(PR_CAPBSET_DROP) takes a capability number; no memory is passed.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
            if r < 0 {
                // EINVAL: past the last capability this kernel knows; the rest are gone too.
                if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
                    break;
                }
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes no memory.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }.into())?;
    Ok(())
}

/// Starts `cmd` as a helper of the supervisor (see [`HelperSetup`]). Refuses (`EDEADLK`) in a
/// process with more than one thread: the parent-death signal is tied to the forking thread,
/// and the child must be able to join a user namespace.
pub fn spawn_helper(
    cmd: &mut std::process::Command,
    setup: HelperSetup,
) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    if !single_threaded() {
        return Err(std::io::Error::from_raw_os_error(libc::EDEADLK));
    }
    // SAFETY: the closure runs in the forked child before exec and makes only system calls
    // (helper_pre_exec allocates nothing and takes no lock); the descriptors it names are
    // owned by the caller, which keeps them open until spawn returns.
    unsafe {
        cmd.pre_exec(move || helper_pre_exec(&setup));
    }
    cmd.spawn()
}

/// A close-on-exec copy of `fd` numbered `min` or above (`fcntl(F_DUPFD_CLOEXEC, min)`).
pub fn dup_at_least(fd: BorrowedFd<'_>, min: RawFd) -> nix::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let raw = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(min))?;
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) just returned `raw`: a new descriptor nobody else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) })
}
