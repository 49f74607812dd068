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
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::cgroup::{self, CgroupStats, Cgroups, Controller, Hierarchies, Version};
use super::error::{StepError, Syscall};
use super::exec::{Ended, handled_set, sent_by_process};
use super::notify::NotifyRelay;
use super::report::Enforced;
use super::sync::{Channel, ToChild, ToParent};
use super::terminal::Relay;
use super::{Options, child};
use crate::plan::Plan;
use crate::plan::steps::Step;

/// How a launch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// How the program (or, failing that, the sandbox) ended.
    pub ended: Ended,
    /// The exit code kekkai should exit with.
    pub exit_code: i32,
    /// The policy's timeout fired.
    pub timed_out: bool,
    /// A setup step failed (exit code 125).
    pub setup_error: Option<StepError>,
    /// execve failed: (program, errno).
    pub exec_error: Option<(String, i32)>,
    /// What the sandbox reported as enforced.
    pub enforced: Option<Enforced>,
    /// Wall-clock time from clone to the end.
    pub wall: Duration,
    /// CPU time of the sandbox, user and system, in milliseconds.
    pub user_ms: u64,
    /// System CPU time in milliseconds.
    pub sys_ms: u64,
    /// Largest resident set of any sandbox process, in bytes.
    pub max_rss: u64,
    /// Limits and what they saw.
    pub cgroup: CgroupOutcome,
}

/// The cgroup side of a run, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupOutcome {
    /// Where each controller was placed.
    pub placed: Vec<(Controller, Version)>,
    /// Limits a best-effort policy asked for and the host could not enforce.
    pub dropped: Vec<String>,
    /// What the cgroups recorded.
    pub stats: CgroupStats,
    /// Cleanup problems (a cgroup that could not be removed).
    pub leftovers: Vec<String>,
}

/// The rest of step 1 (the cgroup), steps 2 and 3, then supervision until the sandbox is gone
/// and its cgroup removed.
pub fn run(plan: &Plan, command: &[OsString], opts: &Options) -> Result<Outcome, StepError> {
    // A relayed pseudo-terminal only when there is a terminal to relay.
    let opts = &Options {
        pty: plan.terminal == crate::policy::model::Terminal::Pty
            && nix::unistd::isatty(std::io::stdin()).unwrap_or(false),
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
    let (chan, child_chan) = Channel::pair().step(Step::Clone, || {
        "socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC)".into()
    })?;
    let flags = plan.clone_flags();
    let start = Instant::now();
    let pid = match crate::sys::clone3(flags, cgroups.and_then(|c| c.clone_target())) {
        Ok(None) => {
            drop(chan);
            drop(sfd);
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
    supervise(plan, pid, &chan, &sfd, start, announce, notify)
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
    /// The program's pseudo-terminal, relayed.
    relay: Option<Relay>,
    /// The cgroup limits dropped, to be said with Landlock's drops once the sandbox reports
    /// (None: -q, or said already).
    announce: Option<Vec<String>>,
    outcome: Outcome,
    reported: Option<Ended>,
    child_status: Option<Ended>,
}

fn supervise(
    plan: &Plan,
    pid: Pid,
    chan: &Channel,
    sfd: &SignalFd,
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
    let mut deadline = plan.timeout.map(|t| start + t);
    let mut terminating = false;
    let mut chan_open = true;
    // One blocking poll per event: signals, the channel, and the terminal relay if there is one.
    while st.child_status.is_none() {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32 + 1)
                    .unwrap_or(PollTimeout::MAX)
            }
        };
        let stdin = std::io::stdin();
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let chan_at = chan_open.then(|| {
            fds.push(PollFd::new(chan.fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let notify_at = notify.map(|n| {
            fds.push(PollFd::new(n.fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let (mut master_at, mut stdin_at) = (None, None);
        if let Some(r) = st.relay.as_ref().filter(|r| r.master_open) {
            let mut ev = PollFlags::POLLIN;
            if r.has_pending() {
                ev |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(r.master_fd(), ev));
            master_at = Some(fds.len() - 1);
            if r.stdin_open && !r.has_pending() {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
                stdin_at = Some(fds.len() - 1);
            }
        }
        let ready = match poll(&mut fds, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                return Err(StepError::sys(
                    Step::Exec,
                    "poll(channel, signalfd, terminal)",
                    e,
                ));
            }
        };
        let fired = |at: Option<usize>| {
            at.and_then(|i| fds.get(i))
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (chan_ready, master_ready, stdin_ready) =
            (fired(chan_at), fired(master_at), fired(stdin_at));
        let sig_ready = fired(Some(0));
        let notify_ready = fired(notify_at);
        drop(fds);
        if let Some(n) = notify.filter(|_| notify_ready) {
            n.relay();
        }
        if chan_ready {
            chan_open = read_message(chan, &mut st);
        }
        if let Some(r) = st.relay.as_mut() {
            if master_ready {
                r.flush();
                r.to_stdout();
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
                } else if sent_by_process(info.ssi_code) {
                    if let Ok(sig) = Signal::try_from(signo) {
                        // Forward to PID 1, which passes it on to the program.
                        let _ = kill(pid, sig);
                    }
                }
            }
        }
        if ready == 0 {
            if let Some(d) = deadline {
                if Instant::now() >= d {
                    if terminating {
                        // Grace is over: killing PID 1 ends every process of the namespace.
                        let _ = kill(pid, Signal::SIGKILL);
                        deadline = None;
                    } else {
                        st.outcome.timed_out = true;
                        terminating = true;
                        let _ = kill(pid, Signal::SIGTERM);
                        deadline = Some(Instant::now() + plan.timeout_grace);
                    }
                }
            }
        }
    }
    // The program's last output, then the caller's terminal back as it was.
    if let Some(mut r) = st.relay.take() {
        r.to_stdout();
    }
    // The program's last notifications (STOPPING=1).
    if let Some(n) = notify {
        n.relay();
    }
    // The sandbox is gone: read what it said last.
    while chan_open && !super::peer_gone_and_empty(chan) {
        chan_open = read_message(chan, &mut st);
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
    st.outcome.exit_code = if st.outcome.setup_error.is_some() {
        crate::error::exit::LAUNCH
    } else if st.outcome.timed_out {
        crate::error::exit::TIMEOUT
    } else if let Some((_, errno)) = &st.outcome.exec_error {
        if *errno == libc::ENOENT {
            crate::error::exit::NOT_FOUND
        } else {
            crate::error::exit::NOT_EXECUTABLE
        }
    } else {
        ended.exit_code()
    };
    Ok(st.outcome)
}

/// Handles one message; returns whether the channel is still open.
fn read_message(chan: &Channel, st: &mut State) -> bool {
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
        Ok(Some((ToParent::PtyMaster, Some(master)))) => st.relay = Some(Relay::new(master)),
        Ok(Some((ToParent::PtyMaster, None))) => {}
        Ok(Some((ToParent::ProgramExited { status }, _))) => {
            st.reported = Some(if status & 0x7f == 0 {
                Ended::Exited((status >> 8) & 0xff)
            } else {
                Ended::Signaled(status & 0x7f)
            });
        }
        Ok(None) => return false,
        Err(Errno::EAGAIN) => {}
        Err(_) => return false,
    }
    true
}

fn reap(pid: Pid, st: &mut State) -> Result<(), StepError> {
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => st.child_status = Some(Ended::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                st.child_status = Some(Ended::Signaled(sig as i32))
            }
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => {}
            Err(e) => return Err(StepError::sys(Step::Exec, format!("waitpid({pid})"), e)),
        }
        return Ok(());
    }
}
