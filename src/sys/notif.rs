//! seccomp user notification (`SECCOMP_RET_USER_NOTIF`): the listener side, for `kekkai
//! learn`.
//!
//! A filter installed with `SECCOMP_FILTER_FLAG_NEW_LISTENER` hands back a descriptor; a
//! syscall the filter answers `USER_NOTIF` blocks until a process holding that descriptor
//! reads the notification (`SECCOMP_IOCTL_NOTIF_RECV`: the caller's tid, the syscall number,
//! architecture, instruction pointer and six arguments) and answers it
//! (`SECCOMP_IOCTL_NOTIF_SEND`). kekkai only ever answers `SECCOMP_USER_NOTIF_FLAG_CONTINUE`:
//! the call goes on as if the filter had said allow, and the other filters of the stack have
//! already had their say (a stricter answer, such as an errno, never reaches the listener).
//! Needs Linux 5.5 (CONTINUE); rootless, like any filter, once no_new_privs is set.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// One notification: who called what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notif {
    /// The kernel's cookie, to answer with.
    pub id: u64,
    /// The calling thread, in the listener's pid namespace (0: not visible there).
    pub pid: u32,
    /// The syscall number.
    pub nr: i32,
    /// AUDIT_ARCH_*.
    pub arch: u32,
    /// The six arguments.
    pub args: [u64; 6],
}

/// Installs `program` as a seccomp filter of the calling thread and returns its listener.
/// Like [`super::seccomp_install`], it needs no_new_privs (or CAP_SYS_ADMIN); only one filter
/// of a thread's stack may have a listener (EBUSY).
pub fn seccomp_install_listener(program: &[seccompiler::sock_filter]) -> nix::Result<OwnedFd> {
    let fd = super::seccomp_set_mode_filter(program, libc::SECCOMP_FILTER_FLAG_NEW_LISTENER)?;
    let fd = i32::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: with NEW_LISTENER the kernel returns a new descriptor (close-on-exec) that
    // nothing else in this process knows yet; it is adopted once, here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads one notification (blocks until one is pending; poll the listener first). ENOENT:
/// the caller was gone (killed) before it could be read.
pub fn recv(listener: BorrowedFd<'_>) -> nix::Result<Notif> {
    // SAFETY: seccomp_notif is plain old data (integers and an array of integers); all zeroes
    // is a valid value, and the kernel requires the buffer zeroed.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: SECCOMP_IOCTL_NOTIF_RECV writes one `struct seccomp_notif` through the pointer,
    // which points at one, alive and exclusively borrowed for the call.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &raw mut n,
        )
    };
    Errno::result(ret)?;
    Ok(Notif {
        id: n.id,
        pid: n.pid,
        nr: n.data.nr,
        arch: n.data.arch,
        args: n.data.args,
    })
}

/// Answers notification `id`: the call goes on (SECCOMP_USER_NOTIF_FLAG_CONTINUE). ENOENT: the
/// caller is gone (a signal ended the wait), which is not an error to the listener.
pub fn continue_call(listener: BorrowedFd<'_>, id: u64) -> nix::Result<()> {
    let mut resp = libc::seccomp_notif_resp {
        id,
        val: 0,
        error: 0,
        flags: u32::try_from(libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE).map_err(|_| Errno::EINVAL)?,
    };
    // SAFETY: SECCOMP_IOCTL_NOTIF_SEND reads one `struct seccomp_notif_resp` through the
    // pointer, which points at one, alive for the call.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &raw mut resp,
        )
    };
    Errno::result(ret).map(drop)
}
