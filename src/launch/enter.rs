//! `kekkai enter`: a second process in a running sandbox, locked down exactly as the sandbox's
//! program is.
//!
//! The caller here plays the supervisor. Ordering:
//! 1. A first process is cloned into the sandbox's cgroup v2 (CLONE_INTO_CGROUP). Before it
//!    joins anything it makes itself non-dumpable and forgets the launcher's arguments and
//!    environment: once it is in the sandbox's namespaces, the sandbox's processes share its
//!    uid and could otherwise read its memory and descriptors through /proc (the class of
//!    runc's CVE-2016-9962).
//! 2. It joins every namespace the sandbox has, at once (`setns` on the sandbox's pidfd): the
//!    mount namespace puts it in the sandbox's root. A pid namespace takes effect for
//!    children only, so it clones the process that goes on (with CLONE_PARENT: that process is
//!    this supervisor's child, signalled, reaped and relayed as a sandbox's first process is)
//!    and exits.
//! 3. The supervisor joins that process to the sandbox's v1 cgroups, and says Go.
//! 4. That process runs the sandbox's own steps from 7 on, from the sandbox's plan, through the
//!    same code (`child::joined_main`): rlimits and cwd, identity and bounding set,
//!    no_new_privs, Landlock, closing descriptors, seccomp, exec. It is never more privileged
//!    than the sandbox's program: a Landlock domain of its own is nested in none of the
//!    sandbox's, so its scopes (signals, abstract sockets) keep it even from the sandbox's own
//!    processes.

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::Instant;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::error::{StepError, Syscall};
use super::parent::events::{Sandbox, Sources, Supervisor};
use super::parent::outcome;
use super::report::Outcome;
use super::sync::{Channel, ToChild, ToParent};
use super::terminal::Caller;
use super::{Options, child};
use crate::plan::steps::Step;
use crate::plan::{Namespace, Plan};

/// Where the sandbox is: its first process (a pidfd checked against the record) and its
/// cgroups (read from /proc/PID/cgroup of that process).
#[derive(Debug)]
pub struct Target<'a> {
    /// The sandbox's first process.
    pub pidfd: BorrowedFd<'a>,
    /// Its cgroup v2 directory, open and checked (`cgroup::v2::open_sandbox`), if it is in one
    /// of kekkai's.
    pub v2: Option<OwnedFd>,
    /// Its cgroup v1 directories.
    pub v1: Vec<PathBuf>,
}

fn clone_flag(ns: Namespace) -> CloneFlags {
    match ns {
        Namespace::User => CloneFlags::CLONE_NEWUSER,
        Namespace::Mount => CloneFlags::CLONE_NEWNS,
        Namespace::Pid => CloneFlags::CLONE_NEWPID,
        Namespace::Net => CloneFlags::CLONE_NEWNET,
        Namespace::Ipc => CloneFlags::CLONE_NEWIPC,
        Namespace::Uts => CloneFlags::CLONE_NEWUTS,
        Namespace::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        Namespace::Time => CloneFlags::from_bits_retain(0x80),
    }
}

/// Runs `command` in the sandbox `target`, under its plan; returns how it ended.
pub fn enter(
    plan: &Plan,
    target: &Target<'_>,
    command: &[OsString],
    opts: &Options,
) -> Result<Outcome, StepError> {
    // The entered program is this process's child and is not a reaper: it execs directly;
    // socket activation's descriptors and the timeout are the sandbox's, not its.
    let mut plan = plan.clone();
    plan.as_pid_1 = true;
    plan.systemd.listen_fds = 0;
    let plan = &plan;
    let caller = Caller::prepare(plan.terminal);
    let opts = &Options {
        stdio: caller.plan().clone(),
        watch: None,
        ..opts.clone()
    };
    let v2 = target.v2.as_ref();
    opts.enter(Step::Clone);
    // Without a pid namespace, what the entered program leaves behind is not the sandbox's
    // PID 1's to reap and end: it becomes ours, and is killed when the program has ended
    // (as `run` does with its own).
    let no_pid_ns = !plan.has(Namespace::Pid);
    if no_pid_ns {
        nix::sys::prctl::set_child_subreaper(true)
            .step(Step::Clone, || "prctl(PR_SET_CHILD_SUBREAPER, 1)".into())?;
    }
    let sources = Sources::open(None, std::time::Duration::ZERO)?;
    let (chan, child_chan) = Channel::pair().step(Step::Clone, || {
        "socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC)".into()
    })?;
    let (pid_r, pid_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .step(Step::Clone, || "pipe2(O_CLOEXEC)".into())?;
    let start = Instant::now();
    let joiner = match crate::sys::clone3(0, v2.map(|f| f.as_fd())) {
        Ok(None) => {
            drop((chan, sources, pid_r));
            join(plan, target.pidfd, command, child_chan, pid_w, opts)
        }
        Ok(Some(pid)) => pid,
        Err(e) => return Err(StepError::sys(Step::Clone, "clone3(CLONE_INTO_CGROUP)", e)),
    };
    drop((child_chan, pid_w));
    let mut bytes = [0u8; 4];
    let got = nix::unistd::read(&pid_r, &mut bytes);
    let _ = waitpid(joiner, None);
    let pid = match got {
        Ok(4) => Pid::from_raw(i32::from_ne_bytes(bytes)),
        _ => {
            // The joiner failed and said why (or died).
            return Err(match chan.recv::<ToParent>() {
                Ok(Some(ToParent::Failed(e))) => e,
                _ => StepError::msg(Step::Clone, "the process joining the sandbox died"),
            });
        }
    };
    opts.enter(Step::IdMaps);
    let ready = target
        .v1
        .iter()
        .try_for_each(|d| super::cgroup::v1::join(d, pid));
    if let Err(e) = ready {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        return Err(e);
    }
    if let Err(e) = chan.send(&ToChild::Go) {
        if e != Errno::EPIPE && e != Errno::ECONNRESET {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(StepError::sys(Step::IdMaps, "write(channel, go)", e));
        }
    }
    let sandbox = Sandbox {
        pid,
        chan,
        start,
        oom_events: None,
        watch: None,
        program_is_pid_1: plan.as_pid_1,
        // The sandbox's own supervisor reads its pasta.
        pasta: None,
    };
    let seen = Supervisor::new(sandbox, sources, &opts.stdio, None, None, false).run()?;
    if no_pid_ns {
        super::parent::kill_orphans();
    }
    super::parent::reap_orphans();
    drop(caller);
    Ok(outcome::decide(seen))
}

/// The joining process: non-dumpable, its arguments forgotten, into the sandbox's namespaces,
/// then the process that goes on is cloned to the supervisor; never returns.
fn join(
    plan: &Plan,
    pidfd: BorrowedFd<'_>,
    command: &[OsString],
    chan: Channel,
    pid_w: OwnedFd,
    opts: &Options,
) -> ! {
    let fail = |e: StepError| -> ! {
        let _ = chan.send(&ToParent::Failed(e));
        crate::sys::exit_now(crate::exit::LAUNCH)
    };
    let prepared = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .step(Step::Clone, || "prctl(PR_SET_PDEATHSIG, SIGKILL)".into())
        .and_then(|()| {
            nix::sys::prctl::set_dumpable(false)
                .step(Step::Clone, || "prctl(PR_SET_DUMPABLE, 0)".into())
        })
        .and_then(|()| {
            if opts.keep_launcher_args {
                return Ok(());
            }
            crate::sys::forget_launcher_args(b"kekkai").step(Step::Clone, || {
                "overwrite the launcher's argv and environ".into()
            })
        });
    if let Err(e) = prepared {
        fail(e)
    }
    let flags = plan
        .namespaces
        .iter()
        .fold(CloneFlags::empty(), |f, ns| f | clone_flag(*ns));
    if let Err(e) = nix::sched::setns(pidfd, flags) {
        let names: Vec<&str> = plan.namespaces.iter().map(|n| n.name()).collect();
        fail(
            StepError::sys(
                Step::Clone,
                format!(
                    "setns(pidfd, CLONE_NEW{{{}}})",
                    names.join(",").to_uppercase()
                ),
                e,
            )
            .key(&plan.namespaces.key),
        )
    }
    match crate::sys::clone3(crate::sys::CLONE_PARENT, None) {
        Ok(None) => {
            drop(pid_w);
            child::joined_main(plan, command, chan, opts)
        }
        Ok(Some(pid)) => {
            let _ = nix::unistd::write(&pid_w, &pid.as_raw().to_ne_bytes());
            crate::sys::exit_now(0)
        }
        Err(e) => fail(StepError::sys(Step::Clone, "clone3(CLONE_PARENT)", e)),
    }
}
