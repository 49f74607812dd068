//! The supervisor: creates the sandbox (steps 2 and 3), then waits for it in one blocking
//! `poll` over the channel and a signalfd — forwarding signals, enforcing the timeout, and
//! collecting how the program ended, and relaying sd_notify to an abstract socket. No threads,
//! no polling loops, no sleeping.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::cgroup::{self, Cgroups, Hierarchies};
use super::error::{StepError, Syscall};
use super::exec::{handled_set, sent_by_process};
use super::notify::NotifyRelay;
use super::report::{CgroupOutcome, Ended, Outcome};
use super::sync::{Channel, ToChild, ToParent};
use super::terminal::{Caller, Relay};
use super::{Options, child};
use crate::plan::Plan;
use crate::plan::steps::Step;

/// The rest of step 1 (the cgroup), steps 2 and 3, then supervision until the sandbox is gone
/// and its cgroup removed.
pub fn run(plan: &Plan, command: &[OsString], opts: &Options) -> Result<Outcome, StepError> {
    // What each of the program's stdin, stdout and stderr becomes; a relayed stdin goes raw
    // here, and back when `caller` is dropped, however the run ends.
    let caller = Caller::prepare(plan.terminal);
    let opts = &Options {
        stdio: caller.plan().clone(),
        ..opts.clone()
    };
    let mut cg_out = CgroupOutcome::default();
    let cgroups = if plan.limits.any() {
        let h = Hierarchies::read();
        let layout = cgroup::detect(&plan.limits, &h);
        cg_out.dropped = cgroup::check_compat(&plan.limits, &layout)?;
        Cgroups::create(&plan.limits, &layout, &h)?
    } else {
        None
    };
    if let Some(cg) = &cgroups {
        cg_out.placed = cg.placed.iter().map(|(c, v, _)| (*c, *v)).collect();
    }
    // No sandbox process may outlive the run: orphans of a sandbox without a pid namespace
    // become ours, so they can be reaped.
    nix::sys::prctl::set_child_subreaper(true)
        .step(Step::Clone, || "prctl(PR_SET_CHILD_SUBREAPER, 1)".into())?;
    // An abstract NOTIFY_SOCKET is relayed through a socket the child binds in (step 5).
    let notify = NotifyRelay::for_plan(plan)?;
    let relayed;
    let plan = match &notify {
        Some(n) => {
            relayed = n.bind_into(plan);
            &relayed
        }
        None => plan,
    };
    let result = launch(
        plan,
        command,
        opts,
        cgroups.as_ref(),
        &cg_out.dropped,
        notify.as_ref(),
    );
    if let Some(cg) = cgroups {
        // Whatever is left (a timeout, no pid namespace): kill, reap, read, remove.
        cg.kill_all();
        reap_orphans();
        cg_out.stats = cg.stats();
        cg_out.leftovers = cg.remove();
    } else {
        reap_orphans();
    }
    let mut outcome = result?;
    outcome.cgroup = cg_out;
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN);
    if let Ok(u) = usage {
        let ms =
            |t: nix::sys::time::TimeVal| (t.tv_sec() as u64) * 1000 + (t.tv_usec() as u64) / 1000;
        outcome.user_ms = ms(u.user_time());
        outcome.sys_ms = ms(u.system_time());
        outcome.max_rss = u64::try_from(u.max_rss()).unwrap_or(0) * 1024;
    }
    Ok(outcome)
}

/// Reaps every child left (orphans of the sandbox reparented to us).
fn reap_orphans() {
    while let Ok(status) = waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Steps 2 and 3, then supervision until the sandbox is gone.
fn launch(
    plan: &Plan,
    command: &[OsString],
    opts: &Options,
    cgroups: Option<&Cgroups>,
    cgroup_dropped: &[String],
    notify: Option<&NotifyRelay>,
) -> Result<Outcome, StepError> {
    opts.enter(Step::Clone);
    let set = handled_set();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).step(Step::Clone, || {
        "sigprocmask(SIG_BLOCK, forwarded signals)".into()
    })?;
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .step(Step::Clone, || "signalfd(forwarded signals)".into())?;
    let deadline = Deadline::new(plan.timeout, plan.timeout_grace)?;
    let (chan, child_chan) = Channel::pair().step(Step::Clone, || {
        "socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC)".into()
    })?;
    let flags = plan.clone_flags();
    let start = Instant::now();
    let pid = match crate::sys::clone3(flags, cgroups.and_then(|c| c.clone_target())) {
        Ok(None) => {
            drop(chan);
            drop(sfd);
            drop(deadline);
            child::main(plan, command, child_chan, opts)
        }
        Ok(Some(pid)) => pid,
        Err(e) => {
            let names: Vec<&str> = plan.namespaces.iter().map(|n| n.name()).collect();
            let mut err = StepError::sys(
                Step::Clone,
                format!("clone3(CLONE_NEW{{{}}})", names.join(",").to_uppercase()),
                e,
            );
            if e == Errno::EPERM || e == Errno::ENOSPC {
                err = err.hint("unprivileged user namespaces may be disabled (kernel.unprivileged_userns_clone, user.max_user_namespaces, or an AppArmor restriction)");
            }
            return Err(err.key(&crate::policy::KeyPath::root().key("namespaces")));
        }
    };
    drop(child_chan);
    opts.enter(Step::IdMaps);
    // Joining a cgroup v1 hierarchy waits for an RCU grace period (milliseconds): the child
    // builds its root meanwhile and waits for Go only before it installs seccomp.
    let ready = write_maps(plan, pid)
        .and_then(|()| {
            chan.send(&ToChild::Mapped)
                .step(Step::IdMaps, || "write(channel, mapped)".into())
        })
        .and_then(|()| cgroups.map_or(Ok(()), |c| c.join(pid)));
    if let Err(e) = ready {
        // The child dies with us; make sure it is gone before reporting.
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        return Err(e);
    }
    // A child that failed its setup meanwhile has reported why and exited: supervise() reads
    // that, so a closed channel here is not the error to report.
    if let Err(e) = chan.send(&ToChild::Go) {
        if e != Errno::EPIPE && e != Errno::ECONNRESET {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(StepError::sys(Step::IdMaps, "write(channel, go)", e));
        }
    }
    // What a best-effort policy runs without is said when the sandbox reports what it
    // enforced, just before the program starts (unless -q).
    let announce = (!opts.quiet).then(|| cgroup_dropped.to_vec());
    supervise(
        plan, opts, pid, &chan, &sfd, deadline, start, announce, notify,
    )
}

fn write_maps(plan: &Plan, pid: Pid) -> Result<(), StepError> {
    let Some(ns) = &plan.userns else {
        return Ok(());
    };
    let step = Step::IdMaps;
    let write = |file: &str, text: &str| {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text).map_err(|e| {
            StepError::sys(
                step,
                format!("write({path:?}, {:?})", text.trim_end()),
                Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            )
            .key(&crate::policy::KeyPath::root().key("identity"))
        })
    };
    if ns.deny_setgroups {
        write("setgroups", "deny")?;
    }
    write("uid_map", &ns.uid_map)?;
    write("gid_map", &ns.gid_map)?;
    Ok(())
}

struct State {
    /// The program's terminal, relayed.
    relay: Option<Relay>,
    /// The cgroup limits dropped, to be said with Landlock's drops once the sandbox reports
    /// (None: -q, or said already).
    announce: Option<Vec<String>>,
    outcome: Outcome,
    reported: Option<Ended>,
    child_status: Option<Ended>,
}

/// The policy's timeout as a timer in the supervisor's poll set: it fires at `timeout` after
/// the clone, then again `grace` after the SIGTERM, however busy the other descriptors are.
struct Deadline {
    timer: TimerFd,
    grace: Duration,
    /// The SIGTERM was sent; the next expiry sends SIGKILL.
    terminating: bool,
    armed: bool,
}

impl Deadline {
    /// The timer, not yet armed (before clone: a launcher short of descriptors fails before
    /// any sandbox process exists).
    fn new(timeout: Option<Duration>, grace: Duration) -> Result<Option<Self>, StepError> {
        if timeout.is_none() {
            return Ok(None);
        }
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_CLOEXEC | TimerFlags::TFD_NONBLOCK,
        )
        .step(Step::Clone, || "timerfd_create(CLOCK_MONOTONIC)".into())?;
        Ok(Some(Deadline {
            timer,
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

// Nine inputs until the supervisor becomes an event loop with its own state (issue 14).
#[allow(clippy::too_many_arguments)]
fn supervise(
    plan: &Plan,
    opts: &Options,
    pid: Pid,
    chan: &Channel,
    sfd: &SignalFd,
    mut deadline: Option<Deadline>,
    start: Instant,
    announce: Option<Vec<String>>,
    notify: Option<&NotifyRelay>,
) -> Result<Outcome, StepError> {
    let mut st = State {
        announce,
        outcome: Outcome {
            ended: Ended::Exited(0),
            exit_code: 0,
            timed_out: false,
            setup_error: None,
            exec_error: None,
            enforced: None,
            wall: Duration::ZERO,
            user_ms: 0,
            sys_ms: 0,
            max_rss: 0,
            cgroup: CgroupOutcome::default(),
        },
        reported: None,
        child_status: None,
        relay: None,
    };
    if let (Some(d), Some(t)) = (deadline.as_mut(), plan.timeout) {
        d.arm(t.saturating_sub(start.elapsed()))?;
    }
    let mut chan_open = true;
    // One blocking poll per round, and a bounded amount of work per ready descriptor, so the
    // timer is looked at every round whatever else keeps the supervisor busy.
    while st.child_status.is_none() {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let timer_at = deadline.as_ref().filter(|d| d.armed).map(|d| {
            fds.push(PollFd::new(d.timer.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let chan_at = chan_open.then(|| {
            fds.push(PollFd::new(chan.fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let notify_at = notify.map(|n| {
            fds.push(PollFd::new(n.fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let (mut end_at, mut stdin_at) = (None, None);
        if let Some(r) = st.relay.as_ref().filter(|r| r.end_open) {
            fds.push(PollFd::new(r.end_fd(), r.end_events()));
            end_at = Some(fds.len() - 1);
            if r.wants_stdin() {
                fds.push(PollFd::new(r.stdin(), PollFlags::POLLIN));
                stdin_at = Some(fds.len() - 1);
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => {
                return Err(StepError::sys(
                    Step::Exec,
                    "poll(signalfd, timerfd, channel, terminal, notify)",
                    e,
                ));
            }
        }
        let fired = |at: Option<usize>| {
            at.and_then(|i| fds.get(i))
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (timer_ready, chan_ready, end_ready, stdin_ready) = (
            fired(timer_at),
            fired(chan_at),
            fired(end_at),
            fired(stdin_at),
        );
        let sig_ready = fired(Some(0));
        let notify_ready = fired(notify_at);
        drop(fds);
        if let Some(n) = notify.filter(|_| notify_ready) {
            n.relay();
        }
        if timer_ready {
            if let Some(d) = deadline.as_mut() {
                if d.expired(pid)? {
                    st.outcome.timed_out = true;
                }
            }
        }
        if chan_ready {
            chan_open = read_message(chan, opts, &mut st);
        }
        if let Some(r) = st.relay.as_mut() {
            if end_ready {
                r.flush();
                r.to_caller();
            }
            if stdin_ready {
                r.from_stdin();
            }
        }
        if sig_ready {
            while let Ok(Some(info)) = sfd.read_signal() {
                let signo = i32::try_from(info.ssi_signo).unwrap_or(0);
                if signo == libc::SIGCHLD {
                    reap(pid, &mut st)?;
                } else if signo == libc::SIGWINCH && st.relay.is_some() {
                    // The caller's terminal changed size: the program's follows.
                    if let Some(r) = &st.relay {
                        r.resize();
                    }
                } else if sent_by_process(info.ssi_code) || opts.stdio.new_session {
                    // A program in a session of its own did not get what the caller's terminal
                    // sent (Ctrl-C, a hangup): forward those too.
                    if let Ok(sig) = Signal::try_from(signo) {
                        // Forward to PID 1, which passes it on to the program.
                        let _ = kill(pid, sig);
                    }
                }
            }
        }
    }
    // The program's last output.
    if let Some(mut r) = st.relay.take() {
        r.drain();
    }
    // The program's last notifications (STOPPING=1).
    if let Some(n) = notify {
        n.relay();
    }
    // The sandbox is gone: read what it said last.
    while chan_open && !chan.drained() {
        chan_open = read_message(chan, opts, &mut st);
    }
    // PID 1 died before the program started and said nothing: its setup crashed.
    if st.outcome.enforced.is_none()
        && st.outcome.setup_error.is_none()
        && st.reported.is_none()
        && st.outcome.exec_error.is_none()
    {
        if let Some(Ended::Signaled(sig)) = st.child_status {
            let name =
                Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.to_string());
            st.outcome.setup_error = Some(StepError::msg(
                Step::Exec,
                format!("the sandbox's setup died before the program started (killed by {name})"),
            ));
        }
    }
    st.outcome.wall = start.elapsed();
    let ended = st.reported.or(st.child_status).unwrap_or(Ended::Exited(0));
    st.outcome.ended = ended;
    st.outcome.exit_code = exit_code(
        st.outcome.setup_error.is_some(),
        st.outcome.timed_out,
        st.outcome.exec_error.as_ref().map(|(_, errno)| *errno),
        ended,
    );
    Ok(st.outcome)
}

/// The exit status for how a run ended (DESIGN.md's table): 125 when the setup failed, 124 when
/// the policy's timeout fired, 127 or 126 when the program could not be executed, else the
/// program's own status (128 + N for signal N).
pub fn exit_code(
    setup_failed: bool,
    timed_out: bool,
    exec_errno: Option<i32>,
    ended: Ended,
) -> i32 {
    use crate::exit;
    match (setup_failed, timed_out, exec_errno) {
        (true, _, _) => exit::LAUNCH,
        (false, true, _) => exit::TIMEOUT,
        (false, false, Some(libc::ENOENT)) => exit::NOT_FOUND,
        (false, false, Some(_)) => exit::NOT_EXECUTABLE,
        (false, false, None) => ended.exit_code(),
    }
}

/// Handles one message; returns whether the channel is still open.
fn read_message(chan: &Channel, opts: &Options, st: &mut State) -> bool {
    match chan.recv_with_fd::<ToParent>() {
        Ok(Some((ToParent::Failed(e), _))) => st.outcome.setup_error = Some(e),
        Ok(Some((ToParent::Enforced(e), _))) => {
            if let Some(cgroup) = st.announce.take() {
                let dropped = super::report::dropped(&cgroup, Some(&e.landlock));
                if !dropped.is_empty() {
                    crate::log::warn(&super::report::dropped_line(&dropped));
                }
            }
            st.outcome.enforced = Some(e);
            // The program starts now; the supervisor only waits from here on.
            crate::sys::release_code_pages();
        }
        Ok(Some((ToParent::ExecFailed { program, errno }, _))) => {
            st.outcome.exec_error = Some((program, errno))
        }
        Ok(Some((ToParent::RelayEnd, Some(end)))) => st.relay = Some(Relay::new(end, &opts.stdio)),
        Ok(Some((ToParent::RelayEnd, None))) => {}
        Ok(Some((ToParent::ProgramExited(ended), _))) => st.reported = Some(ended),
        Ok(None) => return false,
        Err(Errno::EAGAIN) => {}
        Err(_) => return false,
    }
    true
}

fn reap(pid: Pid, st: &mut State) -> Result<(), StepError> {
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => {}
            Ok(status) => match Ended::of(status) {
                Some(ended) => st.child_status = Some(ended),
                None => continue,
            },
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(StepError::sys(Step::Exec, format!("waitpid({pid})"), e)),
        }
        return Ok(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::exited(false, false, None, Ended::Exited(3), 3)]
    #[case::signaled(false, false, None, Ended::Signaled(9), 137)]
    #[case::timed_out_killed(false, true, None, Ended::Signaled(9), 124)]
    #[case::timed_out_but_exited(false, true, None, Ended::Exited(0), 124)]
    #[case::setup_failed(true, false, None, Ended::Exited(125), 125)]
    #[case::setup_failed_beats_timeout(true, true, None, Ended::Signaled(9), 125)]
    #[case::not_found(false, false, Some(libc::ENOENT), Ended::Exited(127), 127)]
    #[case::not_executable(false, false, Some(libc::EACCES), Ended::Exited(126), 126)]
    #[case::timeout_beats_exec_error(false, true, Some(libc::ENOENT), Ended::Exited(127), 124)]
    fn how_a_run_ended_decides_the_exit_code(
        #[case] setup_failed: bool,
        #[case] timed_out: bool,
        #[case] exec_errno: Option<i32>,
        #[case] ended: Ended,
        #[case] want: i32,
    ) {
        assert_eq!(exit_code(setup_failed, timed_out, exec_errno, ended), want);
    }
}
