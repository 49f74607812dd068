//! `kekkai run --detach`: the supervisor goes to the background and outlives the caller's
//! shell.
//!
//! The caller forks; the copy leaves the caller's session (`setsid`: no terminal, no hangup
//! from it) and forks again: the second copy is the supervisor, with stdin `/dev/null` and
//! stdout and stderr a pipe; the first copy stays behind as the log writer, copying that pipe
//! into the sandbox's `log` in the state directory and rotating it to `log.1` at
//! [`state::LOG_MAX`] bytes, so a chatty program can't fill the runtime directory. (With
//! `JOURNAL_STREAM` set, the output stays where it is: the journal.) The caller waits until the
//! program has started (its execve succeeded: the supervisor writes a byte on a pipe), prints
//! the name and exits 0. If the run ends before that, the supervisor writes its exit status
//! instead (127 not found, 126 not executable, 125 a setup failure, as in the foreground, and
//! as `podman run -d` does), the caller prints the log and exits with it; the state entry
//! records the end. A supervisor that died without a word closes the pipe: 125.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

use nix::fcntl::OFlag;

use kekkai::error::Error;
use kekkai::launch::Watch;
use kekkai::state;

use super::run::{READY_ENDED, READY_STARTED, Registration};

fn dev_null() -> Result<OwnedFd, Error> {
    nix::fcntl::open(
        "/dev/null",
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::io("open(/dev/null)", e.into()))
}

fn io(what: &str) -> impl Fn(nix::errno::Errno) -> Error + '_ {
    move |e| Error::io(what, e.into())
}

/// Runs `go` (the launch) in a detached supervisor; returns in the caller once the program has
/// started (0, the name printed) or failed (an error, the log printed).
pub(crate) fn detach(
    reg: Registration,
    listen_fds: u32,
    go: impl FnOnce(&Registration, Rc<dyn Watch>) -> Result<i32, Error>,
) -> Result<i32, Error> {
    let reg = Rc::new(reg);
    let name = reg.name();
    let (ready_r, ready_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io("pipe2"))?;
    let null = dev_null()?;
    let Some(background_pid) = kekkai::sys::fork().map_err(io("fork"))? else {
        drop(ready_r);
        // The background copy: never returns.
        let code = background(&reg, ready_w, &null, listen_fds, go);
        kekkai::sys::exit_now(code)
    };
    drop(ready_w);
    let said = read_ready(&ready_r);
    if said.first() == Some(&READY_STARTED) {
        println!("{name}");
        return Ok(0);
    }
    // The run ended before the program started: what the supervisor said is in the log, all
    // of it once the log writer (or, with the journal, the supervisor) is gone. Nothing of
    // the sandbox is left to hold the log's pipe open: its program never ran.
    if let Err(e) = nix::sys::wait::waitpid(background_pid, None) {
        kekkai::log::warn(&format!("waitpid({background_pid}): {}", e.desc()));
    }
    if let Some(entry) = reg.entry() {
        let mut err = std::io::stderr().lock();
        for mut f in entry.log_files() {
            let mut text = Vec::new();
            let _ = f.read_to_end(&mut text);
            let _ = err.write_all(&text);
        }
    }
    let hint = format!("the sandbox {name} did not start (kekkai logs {name}; kekkai rm {name})");
    match said.as_slice() {
        // As in the foreground: 127 not found, 126 not executable, 125 a setup failure.
        [READY_ENDED, code] => {
            kekkai::log::error(&hint);
            Ok(i32::from(*code))
        }
        // The supervisor died before it could say.
        _ => Err(Error::Host(hint)),
    }
}

/// What the supervisor wrote on the ready pipe: [`READY_STARTED`], or [`READY_ENDED`] and the
/// exit status, or nothing (end of file).
fn read_ready(ready: &OwnedFd) -> Vec<u8> {
    let mut said = Vec::new();
    let mut buf = [0u8; 2];
    while said.len() < 2 && said.first() != Some(&READY_STARTED) {
        match nix::unistd::read(ready, &mut buf[..2 - said.len()]) {
            Ok(0) => break,
            Ok(n) => said.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    said
}

fn background(
    reg: &Rc<Registration>,
    ready_w: OwnedFd,
    null: &OwnedFd,
    listen_fds: u32,
    go: impl FnOnce(&Registration, Rc<dyn Watch>) -> Result<i32, Error>,
) -> i32 {
    if nix::unistd::setsid().is_err() {
        return kekkai::exit::LAUNCH;
    }
    // What the caller's caller left open (a pipe it reads to its end, a lock, a socket) is
    // not the background's to hold for the sandbox's lifetime; the program never gets them
    // either way. Socket activation's descriptors stay: they are the program's.
    kekkai::sys::close_inherited(listen_fds);
    let _ = nix::unistd::dup2_stdin(null.as_fd());
    let to_journal = std::env::var_os("JOURNAL_STREAM").is_some_and(|v| !v.is_empty());
    let Some(entry) = reg.entry() else {
        return kekkai::exit::LAUNCH;
    };
    if to_journal {
        return supervise(reg, ready_w, go);
    }
    let Ok(log) = entry.create_log() else {
        return kekkai::exit::LAUNCH;
    };
    let Ok((log_r, log_w)) = nix::unistd::pipe2(OFlag::O_CLOEXEC) else {
        return kekkai::exit::LAUNCH;
    };
    match kekkai::sys::fork() {
        Ok(None) => {
            drop((log_r, log));
            if nix::unistd::dup2_stdout(log_w.as_fd()).is_err()
                || nix::unistd::dup2_stderr(log_w.as_fd()).is_err()
            {
                return kekkai::exit::LAUNCH;
            }
            drop(log_w);
            supervise(reg, ready_w, go)
        }
        Ok(Some(supervisor)) => {
            drop((log_w, ready_w));
            let _ = nix::unistd::dup2_stdout(null.as_fd());
            let _ = nix::unistd::dup2_stderr(null.as_fd());
            write_log(reg, log_r, log);
            let _ = nix::sys::wait::waitpid(supervisor, None);
            0
        }
        Err(_) => kekkai::exit::LAUNCH,
    }
}

/// The supervisor: records itself, runs the launch.
fn supervise(
    reg: &Rc<Registration>,
    ready_w: OwnedFd,
    go: impl FnOnce(&Registration, Rc<dyn Watch>) -> Result<i32, Error>,
) -> i32 {
    reg.supervised_here();
    *reg.ready.borrow_mut() = Some(ready_w);
    let watch: Rc<dyn Watch> = reg.clone();
    match go(reg, watch) {
        Ok(code) => code,
        Err(e) => {
            kekkai::log::error(&e.to_string());
            kekkai::exit::LAUNCH
        }
    }
}

/// Copies the supervisor's and the program's output into the log until every writer is gone,
/// rotating at [`state::LOG_MAX`].
fn write_log(reg: &Registration, from: OwnedFd, mut log: std::fs::File) {
    let mut from = std::fs::File::from(from);
    let mut buf = [0u8; 16384];
    let mut size = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if size + n as u64 > state::LOG_MAX {
            match reg.entry().map(|e| e.rotate_log()) {
                Some(Ok(next)) => {
                    log = next;
                    size = 0;
                }
                // Can't rotate: drop the output rather than grow without bound.
                _ => continue,
            }
        }
        if log.write_all(&buf[..n]).is_ok() {
            size += n as u64;
        }
    }
}
