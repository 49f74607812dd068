//! The caller's terminal, from both sides.
//!
//! The host side plays the caller: it opens a pseudo-terminal of its own (never the user's
//! real one) and makes it the controlling terminal of the launch, as a terminal emulator does
//! for a shell. The battery runs once with stdin `/dev/null` and stdout and stderr pipes (only
//! the controlling terminal can leak: `echo x | kekkai run -- prog 2>log` typed in a terminal),
//! and its `terminal` probes run again with that terminal on stdin and stderr (reported with
//! the suffix `.stdin-tty`). Inside, the probes look for the caller's terminal by device
//! identity (the pseudo-terminal's filesystem and device number, which the host passes in):
//! on a standard descriptor, or as `/dev/tty`. Holding it is an escape whatever else is
//! blocked: the program could read the caller's keystrokes, write over their screen and change
//! the terminal's modes for good.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{Command, Output, Stdio};

use nix::sys::stat::fstat;

use super::{AuditReport, Ctx, ProbeReport, Seen, Verdict};

/// The suffix of the probes run with a terminal on stdin.
pub const STDIN_TTY: &str = ".stdin-tty";

/// (filesystem, device) of a terminal descriptor.
fn identity(fd: BorrowedFd<'_>) -> Option<(u64, u64)> {
    let st = fstat(fd).ok()?;
    (st.st_mode & libc::S_IFMT == libc::S_IFCHR).then_some((st.st_dev, st.st_rdev))
}

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

/// The probe `terminal.dev-tty`: does `/dev/tty` open a terminal from outside the sandbox? The
/// controlling terminal may be the sandbox's own pseudo-terminal (on a standard descriptor,
/// from the sandbox's devpts, and not the caller's), or nothing (ENXIO).
pub fn dev_tty(c: &Ctx) -> Seen {
    use nix::fcntl::OFlag;
    let tty = match nix::fcntl::open(
        "/dev/tty",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => return Seen::Errno(e),
    };
    let dev = match crate::sys::tty_device(tty.as_fd()) {
        Ok(d) => major_minor(d),
        Err(e) => return Seen::Broken(format!("ioctl(/dev/tty, TIOCGDEV): {e:?}")),
    };
    let devpts = nix::sys::stat::stat("/dev/pts").ok().map(|s| s.st_dev);
    let own = (0..3).any(|fd| {
        identity(crate::sys::std_fd(fd)).is_some_and(|id| {
            Some(id) != c.caller_tty && Some(id.0) == devpts && major_minor(id.1) == dev
        })
    });
    if own {
        return Seen::Blocked("/dev/tty is the sandbox's own pseudo-terminal".into());
    }
    let whose = if c.caller_tty.map(|(_, r)| major_minor(r)) == Some(dev) {
        "the caller's terminal"
    } else {
        "a terminal from outside the sandbox"
    };
    Seen::Done(format!("/dev/tty opens {whose} ({}:{})", dev.0, dev.1))
}

/// The host side: a pseudo-terminal that plays the caller's terminal for one run.
pub struct CallerTty {
    master: OwnedFd,
    slave: OwnedFd,
}

impl CallerTty {
    /// Opens one and records its identity in the probe context.
    pub fn open(ctx: &mut Ctx) -> std::io::Result<CallerTty> {
        let pty = nix::pty::openpty(None, None).map_err(std::io::Error::from)?;
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

/// Adds the verdicts of the run with a terminal on stdin (its `terminal` probes, named with
/// [`STDIN_TTY`]) to `report`.
pub fn add_stdin_tty_run(report: &mut AuditReport, output: &str, control: bool) {
    // Right after the other terminal probes.
    let mut at = report
        .probes
        .iter()
        .rposition(|p| p.category == "terminal")
        .map_or(report.probes.len(), |i| i + 1);
    let lines: Vec<super::Line> = output
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    for p in super::probes::all() {
        if p.category != "terminal" || (control && !p.control_safe) {
            continue;
        }
        let (verdict, detail) = match lines.iter().find(|l| l.name == p.name) {
            Some(l) => super::verdict(&p, &l.seen),
            None => (Verdict::Error, "the probe did not report".into()),
        };
        match verdict {
            Verdict::Blocked => report.summary.blocked += 1,
            Verdict::Escaped => report.summary.escaped += 1,
            Verdict::NotApplicable => report.summary.not_applicable += 1,
            Verdict::Error => report.summary.errors += 1,
        }
        report.probes.insert(
            at,
            ProbeReport {
                name: format!("{}{STDIN_TTY}", p.name),
                category: p.category.into(),
                layer: p.layer.into(),
                verdict,
                detail,
            },
        );
        at += 1;
    }
}
