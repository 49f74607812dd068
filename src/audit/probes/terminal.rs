//! Terminal probes: the caller's terminal (a pseudo-terminal of the host side's, passed in by
//! device identity) must not be on a standard descriptor nor be `/dev/tty`; TIOCSTI and
//! TIOCLINUX must be denied. Holding the caller's terminal is an escape whatever else is
//! blocked: the program could read the caller's keystrokes, write over their screen and change
//! the terminal's modes for good.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;

use super::{EPERM, Probe, call};
use crate::audit::{Ctx, Seen, identity};
use crate::sys::abi::{address, register};

fn major_minor(dev: u64) -> (u64, u64) {
    (u64::from(libc::major(dev)), u64::from(libc::minor(dev)))
}

/// The probe `terminal.caller-fds`: is stdin, stdout or stderr the caller's terminal? If so,
/// its modes are set to what they are (harmless, and proof that `stty -echo` would work).
pub fn caller_fds(c: &Ctx) -> Seen {
    let Some(caller) = c.caller_tty else {
        return Seen::NotApplicable("no caller terminal".into());
    };
    // A background process changing a terminal's modes gets SIGTTOU unless it blocks it.
    let mut ttou = nix::sys::signal::SigSet::empty();
    ttou.add(nix::sys::signal::Signal::SIGTTOU);
    let _ = ttou.thread_block();
    let mut found = Vec::new();
    for fd in 0..3 {
        let f = crate::sys::std_fd(fd);
        if identity(f) != Some(caller) {
            continue;
        }
        let modes = nix::sys::termios::tcgetattr(f)
            .and_then(|t| nix::sys::termios::tcsetattr(f, nix::sys::termios::SetArg::TCSANOW, &t));
        found.push(match modes {
            Ok(()) => format!("fd {fd} (its modes can be changed)"),
            Err(e) => format!("fd {fd} (TCSETS: {e:?})"),
        });
    }
    if found.is_empty() {
        Seen::Blocked("no standard descriptor is the caller's terminal".into())
    } else {
        Seen::Done(format!("the caller's terminal is {}", found.join(", ")))
    }
}

/// `/dev/tty`, when it opens a terminal from outside the sandbox: the descriptor, and whose
/// terminal it is. Otherwise what the probe `terminal.dev-tty` saw: the errno (no controlling
/// terminal: ENXIO), or "blocked" when it is the sandbox's own pseudo-terminal (on a standard
/// descriptor, from the sandbox's devpts, and not the caller's).
fn dev_tty_outside(c: &Ctx) -> Result<(OwnedFd, &'static str, (u64, u64)), Seen> {
    use nix::fcntl::OFlag;
    let tty = nix::fcntl::open(
        "/dev/tty",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(Seen::Errno)?;
    let dev = match crate::sys::tty_device(tty.as_fd()) {
        Ok(d) => major_minor(d),
        Err(e) => return Err(Seen::Broken(format!("ioctl(/dev/tty, TIOCGDEV): {e:?}"))),
    };
    let devpts = nix::sys::stat::stat("/dev/pts").ok().map(|s| s.st_dev);
    let own = (0..3).any(|fd| {
        identity(crate::sys::std_fd(fd)).is_some_and(|id| {
            Some(id) != c.caller_tty && Some(id.0) == devpts && major_minor(id.1) == dev
        })
    });
    if own {
        return Err(Seen::Blocked(
            "/dev/tty is the sandbox's own pseudo-terminal".into(),
        ));
    }
    let whose = if c.caller_tty.map(|(_, r)| major_minor(r)) == Some(dev) {
        "the caller's terminal"
    } else {
        "a terminal from outside the sandbox"
    };
    Ok((tty, whose, dev))
}

/// The probe `terminal.dev-tty`: does `/dev/tty` open a terminal from outside the sandbox? The
/// controlling terminal may be the sandbox's own pseudo-terminal, or nothing (ENXIO).
pub fn dev_tty(c: &Ctx) -> Seen {
    match dev_tty_outside(c) {
        Ok((_, whose, dev)) => Seen::Done(format!("/dev/tty opens {whose} ({}:{})", dev.0, dev.1)),
        Err(seen) => seen,
    }
}

/// The probe `terminal.tiocsti-caller`: TIOCSTI (push a byte into a terminal's input, as if
/// typed) on the caller's terminal, reached as `/dev/tty` (any terminal from outside the
/// sandbox) or on a standard descriptor. The byte
/// is a newline, pushed into the input of the host side's own pseudo-terminal, which nobody
/// reads; without a caller's terminal in the context (a run by hand) the probe is not tried.
/// The kernel allows it on the caller's own controlling terminal, or to CAP_SYS_ADMIN; a host
/// whose `dev.tty.legacy_tiocsti` is 0 refuses it to everyone else with EIO, whatever the
/// sandbox does: not applicable there.
pub fn tiocsti_caller(c: &Ctx) -> Seen {
    let Some(caller) = c.caller_tty else {
        return Seen::NotApplicable("no caller terminal".into());
    };
    let tty = dev_tty_outside(c).ok();
    let fd = match &tty {
        Some((fd, _, _)) => fd.as_raw_fd(),
        None => {
            match (0..3u8).find(|n| identity(crate::sys::std_fd(usize::from(*n))) == Some(caller)) {
                Some(n) => i32::from(n),
                None => {
                    return Seen::Blocked(
                    "the caller's terminal is out of reach (neither /dev/tty nor a standard descriptor)"
                        .into(),
                );
                }
            }
        }
    };
    static BYTE: u8 = b'\n';
    match call("ioctl", [register(fd.into()), 0x5412, address(&raw const BYTE), 0, 0, 0]) {
        Seen::Done(_) => Seen::Done("TIOCSTI pushed a byte into the caller's terminal".into()),
        Seen::Errno(Errno::EIO) => Seen::NotApplicable(
            "this host's dev.tty.legacy_tiocsti is 0: TIOCSTI is refused to every program without CAP_SYS_ADMIN".into(),
        ),
        other => other,
    }
}

probes! {
    "terminal.tiocsti", "seccomp", EPERM, true, |_| {
        static BYTE: u8 = b'\n';
        call("ioctl", [u64::MAX, 0x5412, address(&raw const BYTE), 0, 0, 0])
    };
    "terminal.tioclinux", "seccomp", EPERM, true, |_| call("ioctl", [u64::MAX, 0x541C, 0, 0, 0, 0]);
    // EPERM: not the caller's controlling terminal (a new session) and no CAP_SYS_ADMIN, or a
    // seccomp filter.
    "terminal.tiocsti-caller", "session/seccomp", EPERM, true, tiocsti_caller;
    "terminal.caller-fds", "launcher", &[], true, caller_fds;
    "terminal.dev-tty", "launcher", &[Errno::ENXIO, Errno::ENOENT, Errno::EACCES, Errno::EPERM], true, dev_tty;
}
