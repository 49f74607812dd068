//! The program's terminal.
//!
//! With `terminal: pty` (the default) and a terminal on stdin, the sandbox's first process opens
//! a pseudo-terminal in the sandbox's own devpts (step 7, after pivot_root), keeps the slave end
//! for the program and hands the master to the supervisor over the channel. The program becomes
//! a session leader with that slave as its controlling terminal; the supervisor puts the caller's
//! terminal in raw mode and relays bytes both ways, and window sizes. So job control, Ctrl-C,
//! Ctrl-Z and resizing work inside, and the program never holds the caller's terminal: there is
//! nothing to inject keystrokes into (TIOCSTI) even without the seccomp rule.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

use super::error::{StepError, Syscall};
use crate::plan::steps::Step;

/// Opens a pseudo-terminal in the sandbox's devpts: (master, slave).
pub fn open_in_sandbox() -> Result<(OwnedFd, OwnedFd), StepError> {
    let step = Step::Environment;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .step(step, || "posix_openpt(O_RDWR|O_NOCTTY)".into())
        .map_err(|e| e.hint("`terminal: pty` needs a `dev` mount (a private devpts)"))?;
    nix::pty::grantpt(&master).step(step, || "grantpt(master)".into())?;
    nix::pty::unlockpt(&master).step(step, || "unlockpt(master)".into())?;
    let slave =
        crate::sys::pty_peer(master.as_fd()).step(step, || "ioctl(master, TIOCGPTPEER)".into())?;
    Ok((OwnedFd::from(master), slave))
}

/// In the program's process: a new session whose controlling terminal is `slave`, on stdio.
pub fn attach(slave: &OwnedFd) -> Result<(), StepError> {
    let step = Step::Exec;
    nix::unistd::setsid().step(step, || "setsid()".into())?;
    crate::sys::set_controlling_tty(slave.as_fd())
        .step(step, || "ioctl(slave, TIOCSCTTY, 0)".into())?;
    nix::unistd::dup2_stdin(slave).step(step, || "dup2(slave, 0)".into())?;
    nix::unistd::dup2_stdout(slave).step(step, || "dup2(slave, 1)".into())?;
    nix::unistd::dup2_stderr(slave).step(step, || "dup2(slave, 2)".into())?;
    Ok(())
}

/// In the program's process, for `terminal: none`: a new session without a terminal, and stdin
/// from /dev/null if it was one.
pub fn detach() -> Result<(), StepError> {
    let step = Step::Exec;
    nix::unistd::setsid().step(step, || "setsid()".into())?;
    if nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        let null = nix::fcntl::open(
            "/dev/null",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .step(step, || "open(\"/dev/null\")".into())?;
        nix::unistd::dup2_stdin(&null).step(step, || "dup2(/dev/null, 0)".into())?;
    }
    Ok(())
}

/// The supervisor's side: the caller's terminal in raw mode, bytes relayed both ways.
pub struct Relay {
    /// The pseudo-terminal's master (non-blocking).
    pub master: OwnedFd,
    /// The caller's terminal settings, restored on drop.
    saved: Option<Termios>,
    /// Input read from stdin, not yet written to the master.
    pending: Vec<u8>,
    /// stdin still has data to give.
    pub stdin_open: bool,
    /// The program's side is still open.
    pub master_open: bool,
}

impl Relay {
    /// Starts relaying: raw mode on the caller's terminal, its size on the pty.
    pub fn new(master: OwnedFd) -> Relay {
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            // The program's own terminal does the echoing and line editing.
            let _ = tcsetattr(&stdin, SetArg::TCSANOW, &raw);
        }
        let _ = nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
        let relay = Relay {
            master,
            saved,
            pending: Vec::new(),
            stdin_open: true,
            master_open: true,
        };
        relay.resize();
        relay
    }

    /// Copies the caller's window size to the pty (the kernel then signals SIGWINCH inside).
    pub fn resize(&self) {
        if let Ok(ws) = crate::sys::get_winsize(std::io::stdin().as_fd()) {
            let _ = crate::sys::set_winsize(self.master.as_fd(), &ws);
        }
    }

    /// Wants to write to the master?
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// stdin is readable: take what is there.
    pub fn from_stdin(&mut self) {
        let mut buf = [0u8; 4096];
        match nix::unistd::read(std::io::stdin(), &mut buf) {
            Ok(0) => self.stdin_open = false,
            Ok(n) => {
                self.pending
                    .extend_from_slice(buf.get(..n).unwrap_or_default());
                self.flush();
            }
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(_) => self.stdin_open = false,
        }
    }

    /// Writes what it can of the pending input to the master.
    pub fn flush(&mut self) {
        while !self.pending.is_empty() {
            match nix::unistd::write(&self.master, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(Errno::EAGAIN | Errno::EINTR) => return,
                Err(_) => {
                    self.pending.clear();
                    self.master_open = false;
                    return;
                }
            }
        }
    }

    /// The master is readable: copy its output to stdout. Returns false when it is done.
    pub fn to_stdout(&mut self) -> bool {
        use std::io::Write;
        let mut buf = [0u8; 16384];
        loop {
            match nix::unistd::read(&self.master, &mut buf) {
                Ok(0) => {
                    self.master_open = false;
                    return false;
                }
                Ok(n) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(buf.get(..n).unwrap_or_default());
                    let _ = out.flush();
                }
                Err(Errno::EAGAIN) => return true,
                Err(Errno::EINTR) => {}
                // EIO: every slave descriptor is closed.
                Err(_) => {
                    self.master_open = false;
                    return false;
                }
            }
        }
    }

    /// The master's descriptor.
    pub fn master_fd(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }

    /// Is `fd` the master?
    pub fn is_master(&self, fd: i32) -> bool {
        self.master.as_raw_fd() == fd
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, t);
        }
    }
}
