//! Terminals and pipes: a pty session driven through a pseudo-terminal pair the test holds
//! (playing the caller's terminal), and a large stream through a pipe. Every wait has a
//! watchdog that kills only the kekkai process the test started (its sandbox dies with it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::termios::{Termios, tcgetattr};
use rstest::rstest;
use support::{Who, World, code_of, need, report_in};

/// The test's terminal: the master it reads and types into, and the slave kekkai gets.
struct Term {
    master: OwnedFd,
    slave: OwnedFd,
    seen: Vec<u8>,
}

/// How kekkai's standard descriptors are connected in a run.
#[derive(Clone, Copy)]
enum Io {
    /// The test's terminal.
    Tty,
    /// An empty pipe (stdin) or a pipe the test reads (stdout, stderr).
    Pipe,
    /// /dev/null.
    Null,
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
            seen: Vec::new(),
        }
    }

    fn spawn(&self, w: &World, who: Who, args: &[&str]) -> Child {
        self.spawn_with(w, who, args, [Io::Tty, Io::Tty, Io::Tty], false)
    }

    /// kekkai with each standard descriptor connected as asked; with `ctty`, in a new session
    /// whose controlling terminal is this one (as a terminal emulator starts a shell).
    fn spawn_with(&self, w: &World, who: Who, args: &[&str], io: [Io; 3], ctty: bool) -> Child {
        let connect = |io: Io| match io {
            Io::Tty => Stdio::from(self.slave.try_clone().unwrap()),
            Io::Pipe => Stdio::piped(),
            Io::Null => Stdio::null(),
        };
        let mut cmd = w.command(who);
        cmd.args(args)
            .stdin(connect(io[0]))
            .stdout(connect(io[1]))
            .stderr(connect(io[2]));
        if ctty {
            kekkai::sys::in_new_session_with_tty(&mut cmd, self.slave.try_clone().unwrap());
        }
        let mut child = cmd.spawn().unwrap();
        // An empty stdin pipe: end of input at once.
        drop(child.stdin.take());
        child
    }

    fn type_in(&self, bytes: &[u8]) {
        nix::unistd::write(&self.master, bytes).unwrap();
    }

    /// The caller's terminal modes.
    fn modes(&self) -> Termios {
        tcgetattr(&self.slave).unwrap()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Reads what the terminal shows, waiting at most `wait`; returns whether anything came.
    fn read_some(&mut self, wait: Duration) -> bool {
        let mut fds = [nix::poll::PollFd::new(
            self.master.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        let n = nix::poll::poll(&mut fds, nix::poll::PollTimeout::try_from(ms).unwrap()).unwrap();
        if n == 0 {
            return false;
        }
        let mut buf = [0u8; 65536];
        match nix::unistd::read(&self.master, &mut buf) {
            Ok(k) => {
                self.seen.extend_from_slice(&buf[..k]);
                k > 0
            }
            Err(e) => panic!("read(master): {e}; so far:\n{}", self.text()),
        }
    }

    /// Reads the terminal's output until `needle` shows up (at most [`support::HANG`]).
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + support::HANG;
        while !self.text().contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero() && self.read_some(left),
                "timed out waiting for {needle:?}; the terminal showed:\n{}",
                self.text()
            );
        }
    }

    /// Reads the terminal while `child` runs, then what is left; the watchdog ends a child that
    /// hangs. Returns the exit code and whether the watchdog had to fire.
    fn read_until_exit(&mut self, child: &mut Child) -> (i32, bool) {
        let dog = Watchdog::new(child, Duration::from_secs(120));
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            self.read_some(Duration::from_millis(50));
        };
        while self.read_some(Duration::ZERO) {}
        (code_of(status), dog.finish())
    }
}

/// Kills the process a test started, and the processes it started (a sandbox dies with its
/// supervisor), if it is still running after `limit`, so a hang fails the test instead of
/// stalling the suite.
struct Watchdog {
    done: Arc<AtomicBool>,
    fired: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn new(child: &Child, limit: Duration) -> Watchdog {
        let child_id = child.id();
        let done = Arc::new(AtomicBool::new(false));
        let fired = Arc::new(AtomicBool::new(false));
        let (d, f) = (done.clone(), fired.clone());
        let thread = std::thread::spawn(move || {
            let until = Instant::now() + limit;
            while !d.load(Ordering::SeqCst) {
                if Instant::now() >= until {
                    f.store(true, Ordering::SeqCst);
                    // What the child started (kekkai under `script`), then the child.
                    let mut pids = support::descendants(child_id);
                    pids.reverse();
                    for p in pids.into_iter().chain([child_id]) {
                        let p = support::pid(p);
                        let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Watchdog {
            done,
            fired,
            thread: Some(thread),
        }
    }

    /// Stops watching; did it have to kill?
    fn finish(mut self) -> bool {
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
    }
}

fn wait(child: &mut Child) -> i32 {
    let dog = Watchdog::new(child, Duration::from_secs(120));
    let code = code_of(child.wait().unwrap());
    assert!(!dog.finish(), "kekkai hung; the watchdog killed it");
    code
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_program_gets_its_own_terminal(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
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
    assert!(t.text().contains("IS-A-TTY"), "{}", t.text());
    // The sandbox's own devpts: the program never holds the caller's terminal.
    assert!(t.text().contains("/dev/pts/0"), "{}", t.text());
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_resize_reaches_the_program(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
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
    nix::sys::signal::kill(support::pid(child.id()), nix::sys::signal::Signal::SIGWINCH).unwrap();
    t.wait_for("40 120");
    assert_eq!(wait(&mut child), 0);
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn ctrl_c_interrupts_the_program(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
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
#[ignore = "needs root: run by scripts/test"]
fn terminal_injection_stays_inside(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
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
#[ignore = "needs root: run by scripts/test"]
fn the_terminal_can_be_inherited_or_withheld(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
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
#[ignore = "needs root: run by scripts/test"]
fn a_gigabyte_streams_through_a_pipe_intact(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
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
            for (j, b) in (0u32..).zip(block.iter_mut()) {
                *b = j.wrapping_mul(31).wrapping_add(i).to_le_bytes()[0];
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
        total += u64::try_from(n).unwrap();
    }
    let sent = writer.join().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(total, 1 << 30);
    assert_eq!(h, sent, "the stream changed on its way through");
}

// ── what reaches the caller's terminal, byte for byte ────────────────────────────────────────

/// An end-of-input already typed (what `script -qec CMD /dev/null </dev/null` sends) reaches the
/// program as its terminal's end-of-input: `cat` ends at once, and nothing (no NUL byte, no echo)
/// reaches the terminal.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_pending_end_of_input_ends_the_program_and_shows_nothing(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values("cat", "tty")] program: &str,
) {
    need(who);
    let w = World::new("eof");
    let mut t = Term::new();
    t.type_in(b"\x04");
    // -q: only the program's bytes are compared (an unprivileged run would also say which
    // limits it runs without; see kekkais_own_lines_end_right_on_a_raw_terminal).
    let mut child = t.spawn(&w, who, &["-q", "run", "--", program]);
    let (code, hung) = t.read_until_exit(&mut child);
    assert!(!hung, "kekkai hung; the terminal showed {:?}", t.text());
    assert_eq!(code, 0);
    let want: &[u8] = if program == "tty" {
        b"/dev/pts/0\r\n"
    } else {
        b""
    };
    assert_eq!(t.seen, want, "{:?}", t.text());
}

/// kekkai's own lines reach the caller's terminal while the relay has it in raw mode (what an
/// unprivileged run without a delegated cgroup runs without, said just before the program
/// starts): each ends with `\r\n`, so the program's output that follows starts its own line.
#[test]
#[ignore = "needs root: run by scripts/test"]
fn kekkais_own_lines_end_right_on_a_raw_terminal() {
    need(Who::Rootless);
    let w = World::new("raw-lines");
    let mut t = Term::new();
    let mut child = t.spawn(&w, Who::Rootless, &["run", "--", "echo", "program"]);
    let (code, hung) = t.read_until_exit(&mut child);
    assert!(!hung, "kekkai hung; the terminal showed {:?}", t.text());
    assert_eq!(code, 0);
    let text = t.text();
    assert!(text.starts_with("kekkai: best-effort: "), "{text:?}");
    assert!(text.ends_with("\r\nprogram\r\n"), "{text:?}");
    assert_eq!(
        text.matches('\n').count(),
        text.matches("\r\n").count(),
        "{text:?}"
    );
}

/// Text typed before kekkai started was echoed by the caller's terminal; the program reads it
/// and it is not echoed a second time (as under bubblewrap).
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn typeahead_is_read_once_and_echoed_once(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("typeahead");
    let mut t = Term::new();
    t.type_in(b"early\n");
    let mut child = t.spawn(
        &w,
        who,
        &["-q", "run", "--", "sh", "-c", "read x; echo \"got:$x\""],
    );
    let (code, hung) = t.read_until_exit(&mut child);
    assert!(!hung, "kekkai hung; the terminal showed {:?}", t.text());
    assert_eq!(code, 0);
    assert_eq!(t.text(), "early\r\ngot:early\r\n");
}

/// With stdin a pipe and the output on the caller's terminal (`echo x | kekkai run -- prog` in a
/// terminal), the output is relayed through the sandbox's own pseudo-terminal: the bytes arrive
/// exactly as they would without kekkai, and the program holds no descriptor of the caller's
/// terminal and has no way to change its modes. Under `terminal: inherit` it does (and the same
/// check sees the change).
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_callers_terminal_modes_survive_the_program(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values("pty", "inherit")] terminal: &str,
) {
    need(who);
    let w = World::new("modes");
    w.dir.write(
        "p.yaml",
        format!("version: 1\nextends: default\nterminal: {terminal}\n"),
    );
    let mut t = Term::new();
    let before = t.modes();
    let mut child = t.spawn_with(
        &w,
        who,
        &[
            "-q",
            "run",
            "-p",
            "./p.yaml",
            "--",
            "sh",
            "-c",
            "stty -echo -icanon <&1; stty -echo -icanon </dev/tty; printf 'a\\nb\\n'",
        ],
        [Io::Pipe, Io::Tty, Io::Tty],
        true,
    );
    let (code, hung) = t.read_until_exit(&mut child);
    assert!(!hung, "kekkai hung; the terminal showed {:?}", t.text());
    assert_eq!(code, 0, "{}", t.text());
    assert_eq!(t.text(), "a\r\nb\r\n");
    if terminal == "pty" {
        assert_eq!(t.modes(), before, "the caller's terminal modes changed");
    } else {
        assert_ne!(
            t.modes(),
            before,
            "inherit: the program holds the caller's terminal"
        );
    }
}

/// Without a relayed pseudo-terminal (no terminal on stdin, stdout or stderr), the program has
/// no controlling terminal: the caller's is not `/dev/tty` (ENXIO), unless inherited.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn dev_tty_is_not_the_callers_terminal(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values(("pty", "errno ENXIO"), ("none", "errno ENXIO"), ("inherit", "ok"))] case: (
        &str,
        &str,
    ),
) {
    need(who);
    let (terminal, want) = case;
    let w = World::new("devtty");
    w.dir.write(
        "p.yaml",
        format!("version: 1\nextends: default\nterminal: {terminal}\n"),
    );
    let t = Term::new();
    let probe = w.probe();
    let mut child = t.spawn_with(
        &w,
        who,
        &["run", "-p", "./p.yaml", "--", &probe, "read", "/dev/tty"],
        [Io::Null, Io::Pipe, Io::Pipe],
        true,
    );
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(wait(&mut child), 0);
    assert!(out.starts_with(want), "{terminal}: {out}");
}

/// `terminal: none` gives the program no terminal at all: stdin from /dev/null, the output
/// through a pipe the supervisor copies to the caller's terminal.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn terminal_none_relays_output_through_a_pipe(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("none-pipe");
    w.dir
        .write("p.yaml", "version: 1\nextends: default\nterminal: none\n");
    let mut t = Term::new();
    let before = t.modes();
    let mut child = t.spawn_with(
        &w,
        who,
        &[
            "-q",
            "run",
            "-p",
            "./p.yaml",
            "--",
            "sh",
            "-c",
            "test -t 0 || test -t 1 || test -t 2 || echo NO-TERMINAL; stty -echo <&1 2>/dev/null; readlink /proc/self/fd/0",
        ],
        [Io::Tty, Io::Tty, Io::Tty],
        true,
    );
    let (code, hung) = t.read_until_exit(&mut child);
    assert!(!hung, "kekkai hung; the terminal showed {:?}", t.text());
    assert_eq!(code, 0);
    assert_eq!(t.text(), "NO-TERMINAL\r\n/dev/null\r\n");
    assert_eq!(t.modes(), before);
}

// ── the timeout under load ───────────────────────────────────────────────────────────────────

/// Runs `script` (which ignores SIGTERM) under a 1 s timeout with a 1 s grace while `load`
/// keeps the supervisor busy; the run must end by the timeout: 124, the program killed by
/// SIGKILL. (The watchdog only keeps a regression from stalling the suite.)
fn times_out_under_load(who: Who, script: &str, io: [Io; 3], load: impl Fn(&mut Term, &Child)) {
    let w = World::new("busy");
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\ntimeout: 1s\ntimeout-grace: 1s\n",
    );
    let mut t = Term::new();
    let mut child = t.spawn_with(
        &w,
        who,
        &[
            "run", "-p", "./p.yaml", "--report", "-", "--", "sh", "-c", script,
        ],
        io,
        false,
    );
    let mut err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });
    let dog = Watchdog::new(&child, Duration::from_secs(120));
    while child.try_wait().unwrap().is_none() {
        load(&mut t, &child);
    }
    assert!(
        !dog.finish(),
        "the timeout did not fire; the watchdog killed kekkai"
    );
    let code = code_of(child.wait().unwrap());
    let err = stderr.join().unwrap();
    assert_eq!(code, 124, "{err}");
    let report = report_in(&err);
    assert!(report.ended.timed_out, "{err}");
    assert_eq!(report.ended.signal, Some(9), "{err}");
}

/// A program that floods its terminal keeps the relay busy every round.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_timeout_fires_while_the_program_floods_its_terminal(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    times_out_under_load(
        who,
        "trap '' TERM; yes",
        [Io::Tty, Io::Tty, Io::Pipe],
        |t, _| {
            t.read_some(Duration::from_millis(10));
            t.seen.clear();
        },
    );
}

/// A storm of SIGWINCH (each one a resize of the program's terminal) keeps the supervisor's
/// signal descriptor ready every round.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_timeout_fires_during_a_sigwinch_storm(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let rows = std::cell::Cell::new(24u16);
    times_out_under_load(
        who,
        "trap '' TERM; trap 'stty size >/dev/null' WINCH; while :; do sleep 1; done",
        [Io::Tty, Io::Tty, Io::Pipe],
        |t, child| {
            let pid = support::pid(child.id());
            for _ in 0..1000 {
                // A new size each time, so each signal resizes the program's terminal too.
                rows.set(if rows.get() == 24 { 25 } else { 24 });
                let ws = libc::winsize {
                    ws_row: rows.get(),
                    ws_col: 80,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                kekkai::sys::set_winsize(t.slave.as_fd(), &ws).unwrap();
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGWINCH);
            }
            t.read_some(Duration::ZERO);
            t.seen.clear();
        },
    );
}

/// The reproduction, with util-linux `script` as the caller's terminal: its stdin is
/// /dev/null, so it sends an end-of-input at once; `cat` must end, and only the program's own
/// output may appear (no NUL byte, no echo).
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn under_script_with_no_input_the_program_ends_and_shows_only_its_output(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values(("cat", ""), ("sh -c tty", "/dev/pts/0\r\n"))] case: (&str, &str),
) {
    need(who);
    let (program, want) = case;
    let w = World::new("script");
    let mut cmd = std::process::Command::new("script");
    cmd.current_dir(w.dir.path())
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", w.dir.path())
        .args([
            "-qec",
            &format!("{} -q run -- {program}", w.kekkai().display()),
            "/dev/null",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if who == Who::Rootless {
        use std::os::unix::process::CommandExt;
        let (uid, gid) = support::test_user().unwrap();
        cmd.uid(uid).gid(gid);
    }
    let mut child = cmd.spawn().unwrap();
    let dog = Watchdog::new(&child, Duration::from_secs(120));
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let code = code_of(child.wait().unwrap());
    assert!(!dog.finish(), "kekkai hung under script; it showed {out:?}");
    assert_eq!(code, 0);
    assert_eq!(String::from_utf8_lossy(&out), want);
}
