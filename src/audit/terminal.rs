//! The caller's terminal, played by the host side of an audit.
//!
//! The host opens a pseudo-terminal of its own (never the user's real one) and makes it the
//! controlling terminal of the launch, as a terminal emulator does for a shell. The battery runs
//! once with stdin `/dev/null` and stdout and stderr pipes (only the controlling terminal can
//! leak: `echo x | kekkai run -- prog 2>log` typed in a terminal), and its terminal probes run
//! again with that terminal on stdin and stderr (reported with the suffix
//! [`super::report::STDIN_TTY`]). The probes (`probes/terminal.rs`) look for it by device
//! identity ([`super::identity`]), which the host passes in the context.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{Command, Output, Stdio};

use super::{Ctx, identity};

/// The host side: a pseudo-terminal that plays the caller's terminal for one run.
pub struct CallerTty {
    master: OwnedFd,
    slave: OwnedFd,
}

impl CallerTty {
    /// Opens one and records its identity in the probe context.
    pub fn open(ctx: &mut Ctx) -> std::io::Result<CallerTty> {
        let pty = nix::pty::openpty(None, None).map_err(std::io::Error::from)?;
        // openpty(3) opens both without close-on-exec: neither may reach the sandbox as an
        // extra descriptor (a launcher that passes descriptors on would show them).
        for fd in [&pty.master, &pty.slave] {
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .map_err(std::io::Error::from)?;
        }
        ctx.caller_tty = identity(pty.slave.as_fd());
        Ok(CallerTty {
            master: pty.master,
            slave: pty.slave,
        })
    }

    /// Runs `cmd` in a new session with this terminal as its controlling terminal; stdout is
    /// captured. With `stdin_tty` the terminal is also stdin and stderr, else stdin is /dev/null
    /// and stderr a pipe. What reached stderr (or the terminal) is returned as stderr.
    pub fn run(self, mut cmd: Command, stdin_tty: bool) -> std::io::Result<Output> {
        let CallerTty { master, slave } = self;
        let on_tty = || slave.try_clone().map(Stdio::from);
        if stdin_tty {
            cmd.stdin(on_tty()?).stderr(on_tty()?);
        } else {
            cmd.stdin(Stdio::null()).stderr(Stdio::piped());
        }
        cmd.stdout(Stdio::piped());
        crate::sys::in_new_session_with_tty(&mut cmd, slave.try_clone()?);
        let mut child = cmd.spawn()?;
        drop(cmd);
        let collect = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_end(&mut bytes);
                }
                bytes
            })
        };
        let stdout = collect(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let stderr = collect(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        // The terminal must be read while the run writes to it, or the writer blocks.
        let mut shown = Vec::new();
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            read_some(master.as_fd(), &mut shown, 50);
        };
        drop(slave);
        while read_some(master.as_fd(), &mut shown, 0) {}
        let mut err = stderr.join().unwrap_or_default();
        // The program's own terminal turned its newlines into \r\n.
        err.extend(shown.into_iter().filter(|b| *b != b'\r'));
        Ok(Output {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: err,
        })
    }
}

/// Reads what the terminal shows, waiting at most `wait_ms`; false when nothing came.
fn read_some(master: BorrowedFd<'_>, into: &mut Vec<u8>, wait_ms: u16) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(master, PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::from(wait_ms)) {
        Ok(n) if n > 0 => {}
        _ => return false,
    }
    let mut buf = [0u8; 4096];
    match nix::unistd::read(master, &mut buf) {
        Ok(n) if n > 0 => {
            into.extend_from_slice(buf.get(..n).unwrap_or_default());
            true
        }
        // EIO: nobody holds the terminal any more.
        Ok(_) | Err(_) => false,
    }
}
