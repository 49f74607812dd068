//! The supervisor's event loop: one blocking `poll` per round over the signalfd, the timeout's
//! timerfd, the channel, the program's terminal relay, the sd_notify relay and pasta's stderr,
//! and one handler per source. No threads, no polling loops, no sleeping.
//!
//! Ordering: the forwarded signals and SIGCHLD are blocked and the signalfd and timer opened
//! before clone ([`Sources::open`]), so no SIGCHLD is lost and a launcher short of descriptors
//! fails before any sandbox process exists. The timer is armed when supervision starts, counting
//! from the clone. A round does a bounded amount of work per ready descriptor, so the timer is
//! looked at every round whatever else keeps the supervisor busy. The loop ends when the
//! sandbox's first process is reaped; then the relays are drained and the channel read to its
//! end, so the last output, the last notifications and the last message all arrive.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use nix::unistd::Pid;

use super::outcome::Observed;
use crate::launch::error::{StepError, Syscall};
use crate::launch::exec::{handled_set, sent_by_process};
use crate::launch::network::Running;
use crate::launch::notify::NotifyRelay;
use crate::launch::observe::Observer;
use crate::launch::report::{self, Ended};
use crate::launch::sync::{Channel, ToParent};
use crate::launch::terminal::{Relay, StdioPlan};
use crate::plan::steps::Step;

/// The supervisor's own event sources, made before clone: the signalfd (the forwarded signals
/// and SIGCHLD, blocked) and the policy's timeout. The sandbox's first process drops them.
pub struct Sources {
    signals: SignalFd,
    deadline: Option<Deadline>,
}

impl Sources {
    /// Blocks the handled signals and opens their signalfd, then the timer (not yet armed).
    pub fn open(timeout: Option<Duration>, grace: Duration) -> Result<Sources, StepError> {
        let set = handled_set().step(Step::Clone, || "sigaddset(forwarded signals)".into())?;
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).step(Step::Clone, || {
            "sigprocmask(SIG_BLOCK, forwarded signals)".into()
        })?;
        let signals = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .step(Step::Clone, || "signalfd(forwarded signals)".into())?;
        let deadline = Deadline::new(timeout, grace)?;
        Ok(Sources { signals, deadline })
    }
}

/// The policy's timeout as a timer in the supervisor's poll set: it fires at `timeout` after
/// the clone, then again `grace` after the SIGTERM, however busy the other descriptors are.
struct Deadline {
    timer: TimerFd,
    timeout: Duration,
    grace: Duration,
    /// The SIGTERM was sent; the next expiry sends SIGKILL.
    terminating: bool,
    armed: bool,
}

impl Deadline {
    /// The timer, not yet armed (before clone: a launcher short of descriptors fails before
    /// any sandbox process exists).
    fn new(timeout: Option<Duration>, grace: Duration) -> Result<Option<Self>, StepError> {
        let Some(timeout) = timeout else {
            return Ok(None);
        };
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_CLOEXEC | TimerFlags::TFD_NONBLOCK,
        )
        .step(Step::Clone, || "timerfd_create(CLOCK_MONOTONIC)".into())?;
        Ok(Some(Deadline {
            timer,
            timeout,
            grace,
            terminating: false,
            armed: false,
        }))
    }

    /// Fires once, `after` from now (at once if that is zero: a zero timer would be disarmed).
    fn arm(&mut self, after: Duration) -> Result<(), StepError> {
        self.armed = true;
        let after = after.max(Duration::from_nanos(1));
        let secs = libc::time_t::try_from(after.as_secs()).unwrap_or(libc::time_t::MAX);
        let spec = TimeSpec::new(secs, libc::c_long::from(after.subsec_nanos()));
        self.timer
            .set(Expiration::OneShot(spec), TimerSetTimeFlags::empty())
            .step(Step::Exec, || format!("timerfd_settime({after:?})"))
    }

    /// The timer fired: SIGTERM and the grace period, or, after the grace, SIGKILL. Returns
    /// false for a wake-up without an expiry.
    fn expired(&mut self, pid: Pid) -> Result<bool, StepError> {
        // Reading clears the expiry (the descriptor is non-blocking: a spurious wake-up reads
        // EAGAIN and changes nothing).
        let mut count = [0u8; 8];
        if nix::unistd::read(&self.timer, &mut count).is_err() {
            return Ok(false);
        }
        if self.terminating {
            // Grace is over: killing PID 1 ends every process of the namespace.
            let _ = kill(pid, Signal::SIGKILL);
            self.armed = false;
        } else {
            self.terminating = true;
            let _ = kill(pid, Signal::SIGTERM);
            self.arm(self.grace)?;
        }
        Ok(true)
    }
}

/// The sandbox once it runs: its first process, the supervisor's end of the channel, when it
/// was cloned, and the OOM events that end it (`limits.oom: sandbox` on cgroup v1).
pub struct Sandbox<'a> {
    /// The sandbox's first process (PID 1 of its pid namespace, if it has one).
    pub pid: Pid,
    /// The supervisor's end of the channel.
    pub chan: Channel,
    /// When clone3 was called: the timeout and the wall time count from here.
    pub start: Instant,
    /// Signalled at an OOM kill in the sandbox's v1 memory cgroup: the whole sandbox ends.
    pub oom_events: Option<std::os::fd::BorrowedFd<'a>>,
    /// Told when the program starts.
    pub watch: Option<&'a dyn crate::launch::Watch>,
    /// The program is the sandbox's PID 1 (`as-pid-1`): no reaper says `Execed`; the
    /// channel's end of file after `Enforced` does.
    pub program_is_pid_1: bool,
    /// `network: user`: pasta, whose stderr the loop reads.
    pub pasta: Option<&'a mut Running>,
}

/// Which sources a round of `poll` found ready.
#[derive(Debug, Default)]
struct Ready {
    signals: bool,
    timer: bool,
    channel: bool,
    relay_end: bool,
    stdin: bool,
    notify: bool,
    observer: bool,
    pasta: bool,
    addresses: bool,
    oom: bool,
}

/// The supervisor's state and descriptors while the sandbox runs.
pub struct Supervisor<'a> {
    pid: Pid,
    chan: Channel,
    /// The sandbox's end is still open (or unread messages are left).
    chan_open: bool,
    sources: Sources,
    start: Instant,
    /// The program's stdin, stdout and stderr, as decided before clone.
    stdio: &'a StdioPlan,
    /// The program's terminal, relayed (once the sandbox has sent its end).
    relay: Option<Relay>,
    /// sd_notify messages from inside, relayed to the caller's NOTIFY_SOCKET.
    notify: Option<&'a NotifyRelay>,
    /// Told when the program starts.
    watch: Option<&'a dyn crate::launch::Watch>,
    /// See [`Sandbox::program_is_pid_1`].
    program_is_pid_1: bool,
    /// The watch was told the program started.
    told_started: bool,
    /// `limits.oom: sandbox` on cgroup v1: an OOM kill ends the whole sandbox.
    oom_events: Option<std::os::fd::BorrowedFd<'a>>,
    /// The cgroup limits dropped, to be said with Landlock's drops once the sandbox reports
    /// (None: -q, or said already).
    announce: Option<Vec<String>>,
    /// `kekkai learn`: the listener is welcome (else a descriptor sent with it is dropped).
    observe: bool,
    /// `kekkai learn`: the observer, once the sandbox has sent its listener.
    observer: Option<Observer>,
    /// `network: user`: pasta, whose warnings are read as they come.
    pasta: Option<&'a mut Running>,
    seen: Observed,
    /// When to drop the supervisor's code pages ([`crate::sys::release_code_pages`]): set when
    /// the program starts, done once it has run [`TRIM_AFTER`].
    trim_at: Option<Instant>,
}

/// How long the program runs before the supervisor trims its resident set. A program that
/// ends sooner (most short commands) leaves no time in which the smaller set would matter,
/// and the trim would cost more than it saves: the supervisor would refault its code on the
/// way out.
const TRIM_AFTER: Duration = Duration::from_millis(100);

impl<'a> Supervisor<'a> {
    /// Supervision of a running sandbox.
    pub fn new(
        sandbox: Sandbox<'a>,
        sources: Sources,
        stdio: &'a StdioPlan,
        notify: Option<&'a NotifyRelay>,
        announce: Option<Vec<String>>,
        observe: bool,
    ) -> Supervisor<'a> {
        Supervisor {
            pid: sandbox.pid,
            chan: sandbox.chan,
            chan_open: true,
            sources,
            start: sandbox.start,
            oom_events: sandbox.oom_events,
            watch: sandbox.watch,
            program_is_pid_1: sandbox.program_is_pid_1,
            told_started: false,
            stdio,
            relay: None,
            notify,
            announce,
            observe,
            observer: None,
            pasta: sandbox.pasta,
            seen: Observed::default(),
            trim_at: None,
        }
    }

    /// Waits until the sandbox's first process is gone and everything it said is read.
    pub fn run(mut self) -> Result<Observed, StepError> {
        let start = self.start;
        if let Some(d) = self.sources.deadline.as_mut() {
            d.arm(d.timeout.saturating_sub(start.elapsed()))?;
        }
        while self.seen.sandbox.is_none() {
            self.trim_if_due();
            let Some(ready) = self.wait()? else {
                continue;
            };
            if ready.observer {
                self.on_observer();
            }
            if ready.notify {
                self.on_notify();
            }
            if ready.addresses {
                if let Some(p) = self.pasta.as_deref_mut() {
                    p.on_host_addresses();
                }
            }
            if ready.pasta {
                if let Some(p) = self.pasta.as_deref_mut() {
                    p.read_said();
                }
            }
            if ready.timer {
                self.on_timer()?;
            }
            if ready.oom {
                self.on_oom();
            }
            if ready.channel {
                self.on_channel();
            }
            self.on_relay(ready.relay_end, ready.stdin);
            if ready.signals {
                self.on_signals()?;
            }
        }
        Ok(self.finish())
    }

    /// The program has run [`TRIM_AFTER`]: the supervisor only waits from here on, and drops
    /// what the launch made resident.
    fn trim_if_due(&mut self) {
        if self.trim_at.is_some_and(|at| Instant::now() >= at) {
            self.trim_at = None;
            crate::sys::release_code_pages();
        }
    }

    /// One blocking poll over every open source, until the trim is due at the latest; `None`
    /// when a signal interrupted it or the trim's time came.
    fn wait(&self) -> Result<Option<Ready>, StepError> {
        let mut fds = vec![PollFd::new(self.sources.signals.as_fd(), PollFlags::POLLIN)];
        let mut add = |fd, events| {
            fds.push(PollFd::new(fd, events));
            Some(fds.len() - 1)
        };
        let (mut timer_at, mut chan_at, mut notify_at, mut oom_at) = (None, None, None, None);
        if let Some(fd) = self.oom_events {
            oom_at = add(fd, PollFlags::POLLIN);
        }
        if let Some(d) = self.sources.deadline.as_ref().filter(|d| d.armed) {
            timer_at = add(d.timer.as_fd(), PollFlags::POLLIN);
        }
        if self.chan_open {
            chan_at = add(self.chan.fd(), PollFlags::POLLIN);
        }
        if let Some(n) = self.notify {
            notify_at = add(n.fd(), PollFlags::POLLIN);
        }
        let mut observer_at = None;
        if let Some(o) = self.observer.as_ref().filter(|o| !o.closed) {
            observer_at = add(o.fd(), PollFlags::POLLIN);
        }
        let mut pasta_at = None;
        if let Some(fd) = self.pasta.as_deref().and_then(Running::said_fd) {
            pasta_at = add(fd, PollFlags::POLLIN);
        }
        let mut addresses_at = None;
        if let Some(fd) = self.pasta.as_deref().and_then(Running::addresses_fd) {
            addresses_at = add(fd, PollFlags::POLLIN);
        }
        let (mut end_at, mut stdin_at) = (None, None);
        if let Some(r) = self.relay.as_ref().filter(|r| r.end_open) {
            end_at = add(r.end_fd(), r.end_events());
            if r.wants_stdin() {
                stdin_at = add(r.stdin(), PollFlags::POLLIN);
            }
        }
        let timeout = match self.trim_at {
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                // Rounded up to whole milliseconds, so the round after it finds the trim due.
                let ms = left.as_micros().div_ceil(1000);
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        match poll(&mut fds, timeout) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(None),
            Err(e) => {
                return Err(StepError::sys(
                    Step::Exec,
                    "poll(signalfd, timerfd, channel, terminal, notify, pasta)",
                    e,
                ));
            }
        }
        let fired = |at: Option<usize>| {
            at.and_then(|i| fds.get(i))
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        Ok(Some(Ready {
            signals: fired(Some(0)),
            timer: fired(timer_at),
            channel: fired(chan_at),
            relay_end: fired(end_at),
            stdin: fired(stdin_at),
            notify: fired(notify_at),
            observer: fired(observer_at),
            pasta: fired(pasta_at),
            addresses: fired(addresses_at),
            oom: fired(oom_at),
        }))
    }

    /// `kekkai learn`: one call shown to the observer, recorded and let go on; a hang-up
    /// (every process of the sandbox gone) closes it.
    fn on_observer(&mut self) {
        if let Some(o) = self.observer.as_mut() {
            let mut fds = [PollFd::new(o.fd(), PollFlags::POLLIN)];
            let ready = poll(&mut fds, PollTimeout::ZERO)
                .ok()
                .and_then(|_| fds[0].revents());
            match ready {
                Some(r) if r.contains(PollFlags::POLLIN) => o.handle(),
                Some(r) if !r.is_empty() => o.closed = true,
                _ => {}
            }
        }
    }

    /// sd_notify: passes on what arrived.
    fn on_notify(&self) {
        if let Some(n) = self.notify {
            n.relay();
        }
    }

    /// The timeout (SIGTERM), or the end of its grace (SIGKILL).
    fn on_timer(&mut self) -> Result<(), StepError> {
        if let Some(d) = self.sources.deadline.as_mut() {
            if d.expired(self.pid)? {
                self.seen.timed_out = true;
            }
        }
        Ok(())
    }

    /// An OOM kill in the v1 memory cgroup (`limits.oom: sandbox`): killing the first process
    /// ends the sandbox (PID 1 of its namespace; without one, the teardown's cgroup kill takes
    /// the rest).
    fn on_oom(&mut self) {
        let mut count = [0u8; 8];
        if let Some(fd) = self.oom_events {
            if nix::unistd::read(fd, &mut count).is_ok() {
                let _ = kill(self.pid, Signal::SIGKILL);
            }
        }
    }

    /// One message from the sandbox.
    fn on_channel(&mut self) {
        self.chan_open = self.read_message();
    }

    /// The program's terminal: its output to the caller, the caller's keystrokes to it.
    fn on_relay(&mut self, end_ready: bool, stdin_ready: bool) {
        if let Some(r) = self.relay.as_mut() {
            if end_ready {
                r.flush();
                r.to_caller();
            }
            if stdin_ready {
                r.from_stdin();
            }
        }
    }

    /// SIGCHLD reaps; SIGWINCH resizes the relayed terminal; the rest is forwarded.
    fn on_signals(&mut self) -> Result<(), StepError> {
        while let Ok(Some(info)) = self.sources.signals.read_signal() {
            let signo = i32::try_from(info.ssi_signo).unwrap_or(0);
            if signo == libc::SIGCHLD {
                self.reap()?;
            } else if signo == libc::SIGWINCH && self.relay.is_some() {
                // The caller's terminal changed size: the program's follows.
                if let Some(r) = &self.relay {
                    r.resize();
                }
            } else if (sent_by_process(info.ssi_code) || self.stdio.new_session)
                && !crate::sys::inherited::ignored_now(signo).unwrap_or(false)
            {
                // A program in a session of its own did not get what the caller's terminal
                // sent (Ctrl-C, a hangup): forward those too. A signal the caller ignored is
                // not (blocked, it still reaches the signalfd): the program ignores it as
                // well, and the supervisor, whose disposition is still the caller's, drops it
                // as the kernel would have.
                // Forward to PID 1, which passes it on to the program; by number, so real-time
                // signals too. ESRCH: PID 1 is already gone, and the next SIGCHLD tells.
                match crate::sys::send_signal(self.pid, signo) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(e) => crate::log::warn(&format!(
                        "could not forward signal {signo} to the sandbox: {}",
                        e.desc()
                    )),
                }
            }
        }
        Ok(())
    }

    /// Reaps the sandbox's first process if it is gone (orphans are reaped after the run).
    fn reap(&mut self) -> Result<(), StepError> {
        loop {
            match crate::sys::wait_nohang(Some(self.pid)) {
                Ok(None) | Err(Errno::ECHILD) => {}
                Ok(Some((_, end))) => match Ended::of_end(end) {
                    Some(ended) => self.seen.sandbox = Some(ended),
                    None => continue,
                },
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    return Err(StepError::sys(
                        Step::Exec,
                        format!("waitpid({})", self.pid),
                        e,
                    ));
                }
            }
            return Ok(());
        }
    }

    /// Handles one message; returns whether the channel is still open.
    fn read_message(&mut self) -> bool {
        match self.chan.recv_with_fd::<ToParent>() {
            Ok(Some((ToParent::Failed(e), _))) => self.seen.setup_error = Some(e),
            Ok(Some((ToParent::Enforced(e), _))) => {
                if let Some(cgroup) = self.announce.take() {
                    let dropped = report::dropped(&cgroup, Some(&e.landlock));
                    if !dropped.is_empty() {
                        crate::log::warn(&report::dropped_line(&cgroup, Some(&e.landlock)));
                    }
                }
                self.seen.enforced = Some(e);
                // The program starts now; the supervisor trims its resident set once it has
                // run for a while.
                self.trim_at = Some(Instant::now() + TRIM_AFTER);
            }
            Ok(Some((ToParent::ExecFailed { program, errno }, _))) => {
                self.seen.exec_error = Some((program, errno))
            }
            Ok(Some((ToParent::RelayEnd, Some(end)))) => {
                self.relay = Some(Relay::new(end, self.stdio))
            }
            Ok(Some((ToParent::RelayEnd, None))) => {}
            Ok(Some((ToParent::Execed, _))) => self.execed(),
            Ok(Some((ToParent::ProgramExited(ended), _))) => self.seen.program = Some(ended),
            Ok(Some((ToParent::Listener, Some(fd)))) if self.observe => {
                self.observer = Some(Observer::new(fd, pid_u32(self.pid)))
            }
            Ok(Some((ToParent::Listener, _))) => {}
            Ok(None) => {
                if self.program_is_pid_1 {
                    self.execed();
                }
                return false;
            }
            Err(Errno::EAGAIN) => {}
            Err(_) => return false,
        }
        true
    }

    /// The program's execve succeeded (unless the sandbox said otherwise first): the watch
    /// is told it started (`run --detach` returns only then, so an exec failure is its exit
    /// status, as in the foreground).
    fn execed(&mut self) {
        let failed = self.seen.exec_error.is_some() || self.seen.setup_error.is_some();
        if self.told_started || failed || self.seen.enforced.is_none() {
            return;
        }
        self.told_started = true;
        if let Some(w) = self.watch {
            w.started();
        }
    }

    /// The sandbox is gone: its last output, its last notifications, its last messages.
    fn finish(mut self) -> Observed {
        // The program's last output.
        if let Some(mut r) = self.relay.take() {
            r.drain();
        }
        // The program's last notifications (STOPPING=1).
        self.on_notify();
        // What the sandbox said last.
        while self.chan_open && !self.chan.drained() {
            self.chan_open = self.read_message();
        }
        self.seen.wall = self.start.elapsed();
        self.seen.observations = self.observer.take().map(Observer::into_observations);
        self.seen
    }
}

fn pid_u32(pid: Pid) -> u32 {
    u32::try_from(pid.as_raw()).unwrap_or(0)
}
