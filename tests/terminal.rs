//! Terminals and pipes: a pty session driven through a pseudo-terminal pair the test holds,
//! and a large stream through a pipe.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Stdio};
use std::time::Instant;

use rstest::rstest;
use support::{Who, World, skip, unavailable};

/// The test's terminal: the master it reads and types into, and the slave kekkai gets.
struct Term {
    master: OwnedFd,
    slave: OwnedFd,
    seen: String,
}

impl Term {
    fn new() -> Term {
        let pty = nix::pty::openpty(None, None).unwrap();
        let ws = libc::winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        kekkai::sys::set_winsize(pty.slave.as_fd(), &ws).unwrap();
        Term {
            master: pty.master,
            slave: pty.slave,
            seen: String::new(),
        }
    }

    fn spawn(&self, w: &World, who: Who, args: &[&str]) -> Child {
        let io = || Stdio::from(self.slave.try_clone().unwrap());
        w.command(who)
            .args(args)
            .stdin(io())
            .stdout(io())
            .stderr(io())
            .spawn()
            .unwrap()
    }

    fn type_in(&self, bytes: &[u8]) {
        nix::unistd::write(&self.master, bytes).unwrap();
    }

    /// Reads the terminal's output until `needle` shows up (at most [`support::HANG`]).
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + support::HANG;
        while !self.seen.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut fds = [nix::poll::PollFd::new(
                self.master.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let n = nix::poll::poll(
                &mut fds,
                nix::poll::PollTimeout::try_from(left.as_millis() as i32).unwrap(),
            )
            .unwrap();
            assert!(
                n > 0,
                "timed out waiting for {needle:?}; the terminal showed:\n{}",
                self.seen
            );
            let mut buf = [0u8; 4096];
            match nix::unistd::read(&self.master, &mut buf) {
                Ok(k) => self.seen.push_str(&String::from_utf8_lossy(&buf[..k])),
                Err(e) => panic!("read(master): {e}; so far:\n{}", self.seen),
            }
        }
    }
}

fn wait(child: &mut Child) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    let s = child.wait().unwrap();
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

#[rstest]
fn the_program_gets_its_own_terminal(#[values(Who::Root, Who::Rootless)] who: Who) {
    if skip(unavailable(who)) {
        return;
    }
    let w = World::new("pty");
    let mut t = Term::new();
    let mut child = t.spawn(
        &w,
        who,
        &[
            "run",
            "--",
            "sh",
            "-c",
            "test -t 0 && test -t 1 && echo IS-A-TTY; tty; stty size",
        ],
    );
    t.wait_for("24 80");
    assert_eq!(wait(&mut child), 0);
    assert!(t.seen.contains("IS-A-TTY"), "{}", t.seen);
    // The sandbox's own devpts: the program never holds the caller's terminal.
    assert!(t.seen.contains("/dev/pts/0"), "{}", t.seen);
}

#[rstest]
fn a_resize_reaches_the_program(#[values(Who::Root, Who::Rootless)] who: Who) {
    if skip(unavailable(who)) {
        return;
    }
    let w = World::new("resize");
    let mut t = Term::new();
    let mut child = t.spawn(
        &w,
        who,
        &[
            "run",
            "--",
            "sh",
            "-c",
            "trap 'stty size; exit 0' WINCH; echo READY; while :; do sleep 1 & wait; done",
        ],
    );
    t.wait_for("READY");
    let ws = libc::winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    kekkai::sys::set_winsize(t.slave.as_fd(), &ws).unwrap();
    // A terminal emulator's resize signals the foreground group; here kekkai is told directly.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGWINCH,
    )
    .unwrap();
    t.wait_for("40 120");
    assert_eq!(wait(&mut child), 0);
}

#[rstest]
fn ctrl_c_interrupts_the_program(#[values(Who::Root, Who::Rootless)] who: Who) {
    if skip(unavailable(who)) {
        return;
    }
    let w = World::new("ctrlc");
    let mut t = Term::new();
    let mut child = t.spawn(
        &w,
        who,
        &["run", "--", "sh", "-c", "echo READY; exec sleep 100"],
    );
    t.wait_for("READY");
    t.type_in(b"\x03");
    assert_eq!(
        wait(&mut child),
        128 + 2,
        "SIGINT from the program's own terminal"
    );
}

#[rstest]
fn terminal_injection_stays_inside(#[values(Who::Root, Who::Rootless)] who: Who) {
    if skip(unavailable(who)) {
        return;
    }
    let w = World::new("tiocsti");
    // Allow ioctl without conditions: the pseudo-terminal alone must keep the caller safe.
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\nseccomp: { allow: [ioctl] }\n",
    );
    let mut t = Term::new();
    let probe = w.probe();
    let mut child = t.spawn(&w, who, &["run", "-p", "./p.yaml", "--", &probe, "tiocsti"]);
    t.wait_for("ok 0");
    assert_eq!(wait(&mut child), 0);
    // Nothing arrived in the input of the caller's terminal.
    nix::fcntl::fcntl(
        &t.slave,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(
        nix::unistd::read(&t.slave, &mut buf),
        Err(nix::errno::Errno::EAGAIN)
    );
}

#[rstest]
fn the_terminal_can_be_inherited_or_withheld(#[values(Who::Root, Who::Rootless)] who: Who) {
    if skip(unavailable(who)) {
        return;
    }
    let w = World::new("noptty");
    let mut t = Term::new();
    let mut child = t.spawn(
        &w,
        who,
        &[
            "run",
            "--no-pty",
            "--",
            "sh",
            "-c",
            "test -t 0 && echo SHARED-TTY",
        ],
    );
    t.wait_for("SHARED-TTY");
    assert_eq!(wait(&mut child), 0);
    w.dir.write(
        "none.yaml",
        "version: 1\nextends: default\nterminal: none\n",
    );
    let mut child = t.spawn(
        &w,
        who,
        &[
            "run",
            "-p",
            "./none.yaml",
            "--",
            "sh",
            "-c",
            "test -t 0 || echo NO-TTY-IN",
        ],
    );
    t.wait_for("NO-TTY-IN");
    assert_eq!(wait(&mut child), 0);
}

#[rstest]
fn a_gigabyte_streams_through_a_pipe_intact(#[values(Who::Root, Who::Rootless)] who: Who) {
    if skip(unavailable(who)) {
        return;
    }
    let w = World::new("gigabyte");
    let mut child = w
        .command(who)
        .args(["run", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // FNV-1a over the stream on both sides; 1 GiB of a pattern that changes every byte.
    let hash = |h: &mut u64, data: &[u8]| {
        for b in data {
            *h = (*h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    let writer = std::thread::spawn(move || {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        let mut block = vec![0u8; 1 << 20];
        for i in 0..1024u32 {
            for (j, b) in block.iter_mut().enumerate() {
                *b = (j as u32).wrapping_mul(31).wrapping_add(i) as u8;
            }
            hash(&mut h, &block);
            stdin.write_all(&block).unwrap();
        }
        h
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = stdout.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hash(&mut h, &buf[..n]);
        total += n as u64;
    }
    let sent = writer.join().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(total, 1 << 30);
    assert_eq!(h, sent, "the stream changed on its way through");
}
