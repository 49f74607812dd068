//! The program's terminal: the caller's terminal is never the program's unless the policy says
//! `terminal: inherit`.
//!
//! A process reaches a terminal two ways: through a descriptor (its stdin, stdout, stderr) and
//! through its controlling terminal (`/dev/tty`). Either is enough to read the caller's
//! keystrokes, write over their screen, or change the terminal's modes for good (`stty -echo`
//! outlives the program); seccomp can't tell a terminal descriptor from any other. So the
//! supervisor decides, before clone, what each of the program's standard descriptors becomes
//! (`plan`): with `terminal: pty` each one that is a terminal becomes the slave of a new
//! pseudo-terminal in the sandbox's own devpts (opened in step 7, after pivot_root), the others
//! pass through as they are (pipes and files keep their bytes exactly); with `terminal: none` a
//! terminal stdin becomes /dev/null and a terminal stdout or stderr a pipe; in both the program
//! runs in a new session (`setsid`), whose controlling terminal is the sandbox's pseudo-terminal
//! or none at all (`/dev/tty` fails with ENXIO). The supervisor holds the other end (the
//! pseudo-terminal's master, or the pipe's read end) and relays: output to the caller's
//! terminal, and, when stdin is a terminal, the caller's keystrokes back in raw mode, so the
//! program's own line discipline does the echoing, line editing, Ctrl-C and Ctrl-Z. This is
//! what `script(1)` and `ssh -t` do (the pseudo-terminal starts with the caller's modes and
//! window size); bubblewrap's `--new-session` and firejail stop at `setsid`, which still leaves
//! the terminal descriptors themselves in the program's hands.
//!
//! Input typed before the caller's terminal went raw was already echoed and split into lines by
//! the caller's terminal. The supervisor reads it first (in canonical mode, where a pending
//! end-of-input reads as 0 bytes) and the sandbox writes it into the new pseudo-terminal with
//! echo off before the program starts, reproducing each end-of-input as the terminal's VEOF
//! character; switching to raw mode with it still queued would turn an end-of-input into a NUL
//! byte and echo the text a second time.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{
    LocalFlags, OutputFlags, SetArg, SpecialCharacterIndices, Termios, cfmakeraw, tcgetattr,
    tcsetattr,
};

use super::error::{StepError, Syscall};
use crate::plan::Terminal;
use crate::plan::steps::Step;

/// What one of the program's standard descriptors becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Slot {
    /// Kekkai's own descriptor, unchanged (it is not a terminal, or the policy inherits).
    #[default]
    Pass,
    /// The slave of the sandbox's pseudo-terminal.
    Pty,
    /// /dev/null (a terminal stdin under `terminal: none`).
    Null,
    /// The write end of a pipe the supervisor copies to the caller's terminal.
    Pipe,
}

/// The program's stdin, stdout and stderr, and whether it gets a session of its own.
pub fn plan(mode: Terminal, is_tty: [bool; 3]) -> ([Slot; 3], bool) {
    let each = |f: &dyn Fn(usize, bool) -> Slot| [0, 1, 2].map(|i| f(i, is_tty[i]));
    match mode {
        Terminal::Inherit => ([Slot::Pass; 3], false),
        Terminal::Pty => (
            each(&|_, tty| if tty { Slot::Pty } else { Slot::Pass }),
            true,
        ),
        Terminal::None => (
            each(&|i, tty| match (i, tty) {
                (_, false) => Slot::Pass,
                (0, true) => Slot::Null,
                (_, true) => Slot::Pipe,
            }),
            true,
        ),
    }
}

/// Something typed before the program started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typed {
    /// Bytes, as read.
    Bytes(Vec<u8>),
    /// An end-of-input (or the push of a partial line): the terminal's VEOF character.
    Eof,
}

/// What the supervisor decided before clone, and what the sandbox needs of it in step 7.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StdioPlan {
    /// stdin, stdout, stderr.
    pub slots: [Slot; 3],
    /// The program runs in a new session (everything but `terminal: inherit`).
    pub new_session: bool,
    /// The pseudo-terminal's initial modes: the caller's.
    pub modes: Option<Termios>,
    /// The pseudo-terminal's initial window size (rows, columns, x and y pixels).
    pub winsize: Option<[u16; 4]>,
    /// Input typed before the caller's terminal went raw.
    pub typeahead: Vec<Typed>,
}

/// How the supervisor's end reaches the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// A pseudo-terminal.
    Pty,
    /// A pipe (output only).
    Pipe,
}

impl StdioPlan {
    /// What carries the relayed slots, if any.
    pub fn carrier(&self) -> Option<Carrier> {
        if self.slots.contains(&Slot::Pty) {
            Some(Carrier::Pty)
        } else if self.slots.contains(&Slot::Pipe) {
            Some(Carrier::Pipe)
        } else {
            None
        }
    }

    /// Are the caller's keystrokes relayed (stdin is the pseudo-terminal)?
    pub fn input(&self) -> bool {
        self.slots[0] == Slot::Pty
    }

    /// The caller's descriptor that output is relayed to: stdout or stderr if relayed, else the
    /// terminal on stdin (for the echo of what is typed).
    fn output_fd(&self) -> Option<usize> {
        [1, 2, 0]
            .into_iter()
            .find(|i| self.slots[*i] != Slot::Pass && self.slots[*i] != Slot::Null)
    }
}

/// Kekkai's own descriptor `n` (0, 1 or 2).
fn std_fd(n: usize) -> BorrowedFd<'static> {
    crate::sys::std_fd(n.min(2))
}

/// Is `fd` readable right now (and not hung up)?
fn readable_now(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(n) if n > 0 => fds[0].revents().is_some_and(|r| {
            r.contains(PollFlags::POLLIN) && !r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)
        }),
        _ => false,
    }
}

/// At most this much typeahead is carried into the sandbox.
const TYPEAHEAD_MAX: usize = 64 * 1024;

/// The caller's side, prepared before clone: which of kekkai's descriptors are terminals, the
/// typeahead, and raw mode on a relayed stdin. Puts the caller's terminal back when dropped.
pub struct Caller {
    plan: StdioPlan,
    /// stdin's modes before raw mode, restored on drop.
    saved: Option<Termios>,
}

impl Caller {
    /// Decides the program's stdio for `mode` from kekkai's own descriptors; with a relayed
    /// stdin, takes the typeahead and puts the caller's terminal in raw mode.
    pub fn prepare(mode: Terminal) -> Caller {
        let is_tty = [0, 1, 2].map(|i| nix::unistd::isatty(std_fd(i)).unwrap_or(false));
        let (slots, new_session) = plan(mode, is_tty);
        let mut plan = StdioPlan {
            slots,
            new_session,
            ..StdioPlan::default()
        };
        let mut saved = None;
        if plan.carrier() == Some(Carrier::Pty) {
            let tty = if plan.input() {
                0
            } else {
                plan.output_fd().unwrap_or(1)
            };
            plan.winsize = crate::sys::get_winsize(std_fd(tty))
                .ok()
                .map(|w| [w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel]);
            let modes = tcgetattr(std_fd(tty)).ok();
            if plan.input() {
                if let Some(t) = &modes {
                    plan.typeahead = take_typeahead(t);
                }
                saved = modes.clone();
            }
            plan.modes = modes.map(|mut t| {
                if !plan.input() {
                    // Output only: the caller's terminal keeps its own modes and does the output
                    // processing (\n → \r\n) once, so the program's bytes reach it unchanged.
                    t.output_flags.remove(OutputFlags::OPOST);
                }
                t
            });
        }
        Caller { plan, saved }
    }

    /// The plan for the sandbox.
    pub fn plan(&self) -> &StdioPlan {
        &self.plan
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tcsetattr(std_fd(0), SetArg::TCSANOW, t);
        }
    }
}

/// Reads what was typed ahead on the caller's terminal (stdin), then puts it in raw mode.
///
/// In canonical mode a read returns one line, or the text before an end-of-input character (it
/// was pushed), or nothing (an end-of-input at the start of a line): each becomes the same in
/// the sandbox's terminal. After raw mode, the rest of a partial line is read as bytes.
fn take_typeahead(modes: &Termios) -> Vec<Typed> {
    let stdin = std_fd(0);
    let canonical = modes.local_flags.contains(LocalFlags::ICANON);
    let cc = &modes.control_chars;
    let line_ends = [
        b'\n',
        cc[SpecialCharacterIndices::VEOL as usize],
        cc[SpecialCharacterIndices::VEOL2 as usize],
    ];
    let ends_line = |b: &[u8]| b.last().is_some_and(|c| *c != 0 && line_ends.contains(c));
    let mut typed = Vec::new();
    let mut total = 0usize;
    let mut buf = [0u8; 4096];
    let mut read_all = |typed: &mut Vec<Typed>, canonical: bool| {
        while total < TYPEAHEAD_MAX && readable_now(stdin) {
            match nix::unistd::read(stdin, &mut buf) {
                Ok(0) if canonical => {
                    typed.push(Typed::Eof);
                    total += 1;
                }
                Ok(0) => break,
                Ok(n) => {
                    let got = buf.get(..n).unwrap_or_default();
                    typed.push(Typed::Bytes(got.to_vec()));
                    if canonical && !ends_line(got) {
                        typed.push(Typed::Eof);
                    }
                    total += n;
                }
                Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
    };
    read_all(&mut typed, canonical);
    let mut raw = modes.clone();
    cfmakeraw(&mut raw);
    // From here the program's own terminal does the echoing and line editing.
    let _ = tcsetattr(stdin, SetArg::TCSANOW, &raw);
    read_all(&mut typed, false);
    typed
}

/// Step 7: opens what carries the program's terminal slots, as (the supervisor's end, the
/// program's end): a pseudo-terminal in the sandbox's devpts with the caller's modes, window
/// size and typeahead, or a pipe.
pub fn open_carrier(stdio: &StdioPlan) -> Result<Option<(OwnedFd, OwnedFd)>, StepError> {
    match stdio.carrier() {
        None => Ok(None),
        Some(Carrier::Pipe) => {
            let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
                .step(Step::Environment, || "pipe2(O_CLOEXEC)".into())?;
            Ok(Some((rd, wr)))
        }
        Some(Carrier::Pty) => {
            let (master, slave) = open_in_sandbox()?;
            let step = Step::Environment;
            if let Some(t) = &stdio.modes {
                tcsetattr(&slave, SetArg::TCSANOW, t)
                    .step(step, || "tcsetattr(slave, the caller's modes)".into())?;
            }
            if let Some([r, c, x, y]) = stdio.winsize {
                let ws = libc::winsize {
                    ws_row: r,
                    ws_col: c,
                    ws_xpixel: x,
                    ws_ypixel: y,
                };
                crate::sys::set_winsize(slave.as_fd(), &ws)
                    .step(step, || "ioctl(slave, TIOCSWINSZ)".into())?;
            }
            if !stdio.typeahead.is_empty() {
                preload(&master, &slave, &stdio.typeahead)?;
            }
            Ok(Some((master, slave)))
        }
    }
}

/// Opens a pseudo-terminal in the sandbox's devpts: (master, slave).
fn open_in_sandbox() -> Result<(OwnedFd, OwnedFd), StepError> {
    let step = Step::Environment;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .step(step, || "posix_openpt(O_RDWR|O_NOCTTY)".into())
        .map_err(|e| {
            e.hint("`terminal: pty` needs a `dev` mount (a private devpts); `terminal: none` relays output through a pipe instead")
        })?;
    nix::pty::grantpt(&master).step(step, || "grantpt(master)".into())?;
    nix::pty::unlockpt(&master).step(step, || "unlockpt(master)".into())?;
    let slave =
        crate::sys::pty_peer(master.as_fd()).step(step, || "ioctl(master, TIOCGPTPEER)".into())?;
    Ok((OwnedFd::from(master), slave))
}

/// Writes the typeahead into the pseudo-terminal as input, without echoing it again (the
/// caller's terminal did). The line discipline processes input asynchronously; a zero-timeout
/// poll on the slave waits for that processing (n_tty flushes its pending input work when
/// polled), so echo is turned back on only after the typeahead went through with it off.
fn preload(master: &OwnedFd, slave: &OwnedFd, typed: &[Typed]) -> Result<(), StepError> {
    let step = Step::Environment;
    let modes = tcgetattr(slave).step(step, || "tcgetattr(slave)".into())?;
    let eof = modes.control_chars[SpecialCharacterIndices::VEOF as usize];
    let mut quiet = modes.clone();
    quiet
        .local_flags
        .remove(LocalFlags::ECHO | LocalFlags::ECHONL);
    tcsetattr(slave, SetArg::TCSANOW, &quiet).step(step, || "tcsetattr(slave, -echo)".into())?;
    for t in typed {
        let bytes: &[u8] = match t {
            Typed::Bytes(b) => b,
            // A disabled VEOF (0) can't be typed: the end-of-input is dropped, as it would be.
            Typed::Eof if eof == 0 => continue,
            Typed::Eof => std::slice::from_ref(&eof),
        };
        write_all(master.as_fd(), bytes).step(step, || "write(master, typeahead)".into())?;
    }
    let mut fds = [PollFd::new(slave.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::ZERO).step(step, || "poll(slave)".into())?;
    tcsetattr(slave, SetArg::TCSANOW, &modes).step(step, || "tcsetattr(slave, echo)".into())?;
    Ok(())
}

/// Writes all of `bytes`, waiting for room if `fd` happens to be non-blocking.
fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                poll(&mut fds, PollTimeout::NONE)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The program's end of its terminal, from step 7 to the program's process.
#[derive(Debug, Default)]
pub struct ProgramStdio {
    slots: [Slot; 3],
    new_session: bool,
    /// The pseudo-terminal's slave or the pipe's write end.
    end: Option<OwnedFd>,
}

impl ProgramStdio {
    /// Before step 7: the plan, no descriptor yet.
    pub fn new(stdio: &StdioPlan) -> ProgramStdio {
        ProgramStdio {
            slots: stdio.slots,
            new_session: stdio.new_session,
            end: None,
        }
    }

    /// Step 7 opened the program's end.
    pub fn set_end(&mut self, end: OwnedFd) {
        self.end = Some(end);
    }

    /// The descriptor to keep open through step 11.
    pub fn end(&self) -> Option<BorrowedFd<'_>> {
        self.end.as_ref().map(|e| e.as_fd())
    }

    /// In the program's process: a new session (unless inherited), the pseudo-terminal as its
    /// controlling terminal, and each slot on its descriptor.
    pub fn attach(&self) -> Result<(), StepError> {
        let step = Step::Exec;
        if self.new_session {
            nix::unistd::setsid().step(step, || "setsid()".into())?;
        }
        if let Some(end) = &self.end {
            if self.slots.contains(&Slot::Pty) {
                crate::sys::set_controlling_tty(end.as_fd())
                    .step(step, || "ioctl(slave, TIOCSCTTY, 0)".into())?;
            }
        }
        for (target, slot) in self.slots.iter().enumerate() {
            match slot {
                Slot::Pass => {}
                Slot::Pty | Slot::Pipe => {
                    let Some(end) = &self.end else {
                        return Err(StepError::msg(step, "the terminal's descriptor is missing"));
                    };
                    dup_onto(end.as_fd(), target)
                        .step(step, || format!("dup2({slot:?}, {target})"))?;
                }
                Slot::Null => {
                    let null = nix::fcntl::open(
                        "/dev/null",
                        OFlag::O_RDWR | OFlag::O_CLOEXEC,
                        nix::sys::stat::Mode::empty(),
                    )
                    .step(step, || "open(\"/dev/null\")".into())?;
                    dup_onto(null.as_fd(), target)
                        .step(step, || format!("dup2(/dev/null, {target})"))?;
                }
            }
        }
        Ok(())
    }
}

impl ProgramStdio {
    /// Whether a slot is `/dev/null`, which [`ProgramStdio::raw`] needs opened.
    pub fn needs_null(&self) -> bool {
        self.slots.contains(&Slot::Null)
    }

    /// What [`ProgramStdio::attach`] does, as descriptor numbers for a program's process that
    /// makes only raw system calls (`sys::spawn`): `null` is `/dev/null`, opened by the caller
    /// when [`ProgramStdio::needs_null`].
    pub fn raw(&self, null: Option<BorrowedFd<'_>>) -> Result<crate::sys::spawn::Stdio, StepError> {
        let step = Step::Exec;
        let end = self.end.as_ref().map(|e| crate::sys::raw(e.as_fd()));
        let mut raw = crate::sys::spawn::Stdio {
            new_session: self.new_session,
            controlling: end.filter(|_| self.slots.contains(&Slot::Pty)),
            slots: [None; 3],
        };
        for (to, slot) in raw.slots.iter_mut().zip(self.slots) {
            *to =
                match slot {
                    Slot::Pass => None,
                    Slot::Pty | Slot::Pipe => Some(end.ok_or_else(|| {
                        StepError::msg(step, "the terminal's descriptor is missing")
                    })?),
                    Slot::Null => Some(
                        null.map(crate::sys::raw)
                            .ok_or_else(|| StepError::msg(step, "/dev/null is not open"))?,
                    ),
                };
        }
        Ok(raw)
    }
}

fn dup_onto(from: BorrowedFd<'_>, to: usize) -> nix::Result<()> {
    match to {
        0 => nix::unistd::dup2_stdin(from),
        1 => nix::unistd::dup2_stdout(from),
        _ => nix::unistd::dup2_stderr(from),
    }
}

/// The supervisor's side of the relay.
pub struct Relay {
    /// The pseudo-terminal's master or the pipe's read end (non-blocking).
    end: OwnedFd,
    carrier: Carrier,
    /// Kekkai's descriptor that output goes to.
    out: usize,
    /// Kekkai's terminal descriptor that window sizes come from.
    tty: usize,
    /// Input read from stdin, not yet written to the master.
    pending: Vec<u8>,
    /// stdin is relayed and still open.
    pub stdin_open: bool,
    /// The program's side is still open.
    pub end_open: bool,
}

/// At most this much output is copied per event, so that one busy stream can't hold up the
/// supervisor's other duties (the timeout).
const CHUNK: usize = 16 * 1024;

impl Relay {
    /// Starts relaying what the sandbox sent for `stdio`.
    pub fn new(end: OwnedFd, stdio: &StdioPlan) -> Relay {
        let _ = nix::fcntl::fcntl(&end, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
        let out = stdio.output_fd().unwrap_or(1);
        Relay {
            end,
            carrier: stdio.carrier().unwrap_or(Carrier::Pipe),
            out,
            tty: if stdio.input() { 0 } else { out },
            pending: Vec::new(),
            stdin_open: stdio.input(),
            end_open: true,
        }
    }

    /// Copies the caller's window size to the pty (the kernel then signals SIGWINCH inside).
    pub fn resize(&self) {
        if self.carrier != Carrier::Pty {
            return;
        }
        if let Ok(ws) = crate::sys::get_winsize(std_fd(self.tty)) {
            let _ = crate::sys::set_winsize(self.end.as_fd(), &ws);
        }
    }

    /// The events to wait for on the program's end.
    pub fn end_events(&self) -> PollFlags {
        let mut ev = PollFlags::POLLIN;
        if !self.pending.is_empty() {
            ev |= PollFlags::POLLOUT;
        }
        ev
    }

    /// Wait for stdin (only when what was read before is written)?
    pub fn wants_stdin(&self) -> bool {
        self.stdin_open && self.end_open && self.pending.is_empty()
    }

    /// The caller's stdin.
    pub fn stdin(&self) -> BorrowedFd<'static> {
        std_fd(0)
    }

    /// stdin is readable: take one chunk of what is there. A terminal in raw mode reads 0 bytes
    /// or fails only when it hung up: the program then gets an end-of-input.
    pub fn from_stdin(&mut self) {
        let mut buf = [0u8; 4096];
        match nix::unistd::read(std_fd(0), &mut buf) {
            Ok(n) if n > 0 => {
                self.pending
                    .extend_from_slice(buf.get(..n).unwrap_or_default());
                self.flush();
            }
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Ok(_) | Err(_) => {
                self.stdin_open = false;
                self.end_of_input();
            }
        }
    }

    /// The caller's terminal is gone: the program's terminal reads an end-of-input if it is in
    /// canonical mode (a raw-mode program has no such thing).
    fn end_of_input(&mut self) {
        if let Ok(t) = tcgetattr(&self.end) {
            let eof = t.control_chars[SpecialCharacterIndices::VEOF as usize];
            if t.local_flags.contains(LocalFlags::ICANON) && eof != 0 {
                self.pending.push(eof);
                self.flush();
            }
        }
    }

    /// Writes what it can of the pending input to the master.
    pub fn flush(&mut self) {
        while !self.pending.is_empty() {
            match nix::unistd::write(&self.end, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => {}
                Err(_) => {
                    self.pending.clear();
                    self.end_open = false;
                    return;
                }
            }
        }
    }

    /// The program's end is readable: copy one chunk to the caller.
    pub fn to_caller(&mut self) {
        let mut buf = [0u8; CHUNK];
        match nix::unistd::read(&self.end, &mut buf) {
            Ok(0) => self.end_open = false,
            Ok(n) => {
                // A caller that went away loses the output; the program is not held up.
                let _ = write_all(std_fd(self.out), buf.get(..n).unwrap_or_default());
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            // EIO: every slave descriptor is closed.
            Err(_) => self.end_open = false,
        }
    }

    /// After the program ended: everything still buffered, to the caller.
    pub fn drain(&mut self) {
        while self.end_open {
            let mut fds = [PollFd::new(self.end.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::ZERO) {
                Ok(n) if n > 0 => self.to_caller(),
                Err(Errno::EINTR) => {}
                _ => return,
            }
        }
    }

    /// The program's end.
    pub fn end_fd(&self) -> BorrowedFd<'_> {
        self.end.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Slot::{Null, Pass, Pipe, Pty};
    use rstest::rstest;

    #[rstest]
    #[case::pty_all(Terminal::Pty, [true, true, true], [Pty, Pty, Pty], true)]
    #[case::pty_piped_in(Terminal::Pty, [false, true, true], [Pass, Pty, Pty], true)]
    #[case::pty_redirected_out(Terminal::Pty, [true, false, true], [Pty, Pass, Pty], true)]
    #[case::pty_no_terminal(Terminal::Pty, [false, false, false], [Pass, Pass, Pass], true)]
    #[case::inherit(Terminal::Inherit, [true, true, true], [Pass, Pass, Pass], false)]
    #[case::inherit_piped(Terminal::Inherit, [false, true, false], [Pass, Pass, Pass], false)]
    #[case::none_all(Terminal::None, [true, true, true], [Null, Pipe, Pipe], true)]
    #[case::none_piped_in(Terminal::None, [false, true, false], [Pass, Pipe, Pass], true)]
    #[case::none_no_terminal(Terminal::None, [false, false, false], [Pass, Pass, Pass], true)]
    fn each_terminal_descriptor_is_replaced(
        #[case] mode: Terminal,
        #[case] tty: [bool; 3],
        #[case] slots: [Slot; 3],
        #[case] session: bool,
    ) {
        assert_eq!(plan(mode, tty), (slots, session));
    }

    #[rstest]
    #[case::all([Pty, Pty, Pty], Some(Carrier::Pty), true, Some(1))]
    #[case::stderr_only([Pass, Pass, Pty], Some(Carrier::Pty), false, Some(2))]
    #[case::stdin_only([Pty, Pass, Pass], Some(Carrier::Pty), true, Some(0))]
    #[case::pipes([Null, Pipe, Pipe], Some(Carrier::Pipe), false, Some(1))]
    #[case::nothing([Null, Pass, Pass], None, false, None)]
    fn the_relay_follows_the_slots(
        #[case] slots: [Slot; 3],
        #[case] carrier: Option<Carrier>,
        #[case] input: bool,
        #[case] out: Option<usize>,
    ) {
        let p = StdioPlan {
            slots,
            ..StdioPlan::default()
        };
        assert_eq!(p.carrier(), carrier);
        assert_eq!(p.input(), input);
        assert_eq!(p.output_fd(), out);
    }
}
