//! The supervisor: the rest of step 1 (the cgroup), step 2 (clone3) and step 3 (id maps,
//! Mapped, Go), then supervision until the sandbox is gone (`events.rs`), how the run
//! ended (`outcome.rs`), and the cleanup.
//!
//! Ordering: the cgroup exists before clone (cgroup v2 places the child with CLONE_INTO_CGROUP);
//! the supervisor becomes a subreaper and opens its signalfd and timer before clone, so no
//! sandbox process can outlive the run or end unseen; the id maps are written before the child
//! may set itself up (`Mapped`; the child then joins its cgroup v1 hierarchies through `tasks`
//! descriptors opened here before clone), and `Go` follows.
//! Once the sandbox is gone, what is left in its cgroup is killed and reaped before the cgroup
//! is read and removed; then the sandbox's mounts, which the supervisor holds from clone on,
//! are left to the kernel to free after kekkai's exit (`teardown.rs`).

pub(crate) mod events;
pub(crate) mod outcome;
pub mod teardown;

use std::ffi::OsString;
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::time::TimeValLike;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use self::events::{Sandbox, Sources, Supervisor};
use super::cgroup::{self, Cgroups, Hierarchies};
use super::child;
use super::error::{StepError, Syscall};
use super::notify::NotifyRelay;
use super::options::Options;
use super::report::{CgroupOutcome, Outcome};
use super::sync::{Channel, ToChild};
use super::terminal::Caller;
use crate::plan::Plan;
use crate::plan::steps::Step;
use crate::plan::vocab::Namespace;

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
        let h = Hierarchies::for_plan(plan);
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
    let mut mount_ns = None;
    let result = launch(
        plan,
        command,
        opts,
        cgroups.as_ref(),
        &cg_out.dropped,
        notify.as_ref(),
        &mut mount_ns,
    );
    // Without a pid namespace, the first process's end ends nothing else: what it left (a
    // daemon it started, `sh -c 'sleep 777 &'`) is ours, the subreaper's, and is killed here.
    let no_pid_ns = !plan.has(Namespace::Pid);
    if let Some(cg) = cgroups {
        // Whatever is left (a timeout, no pid namespace): kill, reap, read, remove.
        cg.kill_all();
        if no_pid_ns {
            kill_orphans();
        }
        reap_orphans();
        cg_out.stats = cg.stats();
        cg_out.leftovers = cg.remove();
    } else {
        if no_pid_ns {
            kill_orphans();
        }
        reap_orphans();
    }
    // The sandbox is gone, its cgroups too: its mounts are freed by the kernel from here.
    let released = mount_ns.map(teardown::Hold::release);
    let mut outcome = result?;
    match released {
        Some(teardown::Released::ToKernel) => outcome.mounts_freed_after_exit = true,
        Some(teardown::Released::Refused(note)) => outcome.notes.push(note),
        Some(teardown::Released::Here) | None => {}
    }
    outcome.cgroup = cg_out;
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN);
    if let Ok(u) = usage {
        let ms = |t: nix::sys::time::TimeVal| u64::try_from(t.num_milliseconds()).unwrap_or(0);
        outcome.user_ms = ms(u.user_time());
        outcome.sys_ms = ms(u.system_time());
        outcome.max_rss = u64::try_from(u.max_rss()).unwrap_or(0) * 1024;
    }
    Ok(outcome)
}

/// Kills and reaps every process left below this one once the sandbox's first process is
/// gone: without a pid namespace (whose end takes every process of it along) and without a
/// cgroup (`cgroup.kill`), nothing else ends them, and a daemon the program started outlived
/// the run, the supervisor and `kekkai stop`, still holding a detached sandbox's log pipe.
/// This process is a subreaper, so every descendant becomes its child once its parent dies:
/// each round SIGKILLs the children there are now (unreaped children: their pids can't have
/// been reused) and reaps them, and their own children come up for the next round. A process
/// with SIGKILL pending can't fork (the kernel aborts the fork), so each round ends a whole
/// level of the tree; the rounds stop when no child is left.
pub(crate) fn kill_orphans() {
    loop {
        let kids = children();
        if kids.is_empty() {
            return;
        }
        for &pid in &kids {
            let _ = kill(pid, Signal::SIGKILL);
        }
        for &pid in &kids {
            // Raw statuses, as in reap_orphans; EINTR: again; ECHILD: already reaped.
            while matches!(crate::sys::wait_blocking(pid), Err(Errno::EINTR)) {}
        }
    }
}

/// This process's children, from every thread's `/proc/self/task/TID/children` (an orphan is
/// given to one thread of its reaper).
fn children() -> Vec<Pid> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut kids: Vec<Pid> = tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
                .map(Pid::from_raw)
                .collect::<Vec<_>>()
        })
        .collect();
    kids.sort();
    kids.dedup();
    kids
}

/// Reaps every child left (orphans of the sandbox reparented to us).
pub(crate) fn reap_orphans() {
    // Raw statuses: nix's waitpid stops at an orphan a real-time signal killed (EINVAL).
    while let Ok(Some(_)) = crate::sys::wait_nohang(None) {}
}

/// Steps 2 and 3, then supervision until the sandbox is gone.
fn launch(
    plan: &Plan,
    command: &[OsString],
    opts: &Options,
    cgroups: Option<&Cgroups>,
    cgroup_dropped: &[String],
    notify: Option<&NotifyRelay>,
    mount_ns: &mut Option<teardown::Hold>,
) -> Result<Outcome, StepError> {
    opts.enter(Step::Clone);
    let sources = Sources::open(plan.timeout, plan.timeout_grace)?;
    let (chan, child_chan) = Channel::pair().step(Step::Clone, || {
        "socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC)".into()
    })?;
    let flags = plan.clone_flags();
    let start = Instant::now();
    let pid = match crate::sys::clone3(flags, cgroups.and_then(|c| c.clone_target())) {
        Ok(None) => {
            drop(chan);
            drop(sources);
            let tasks = cgroups.map(Cgroups::v1_tasks).unwrap_or_default();
            child::main(plan, command, child_chan, opts, &tasks)
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
            return Err(err.key(&plan.namespaces.key));
        }
    };
    drop(child_chan);
    // The supervisor holds the sandbox's mounts from here (`teardown.rs`).
    *mount_ns = teardown::Hold::take(plan, pid);
    opts.enter(Step::IdMaps);
    // The child joins its cgroup v1 hierarchies itself once it has its id maps (see
    // `Cgroups::v1_tasks`).
    let ready = write_maps(plan, pid)
        // `network: user`: the namespaces pasta joins, taken while the child still waits.
        .and_then(|()| super::network::open_namespaces(plan, pid))
        .and_then(|ns| {
            chan.send(&ToChild::Mapped)
                .step(Step::IdMaps, || "write(channel, mapped)".into())?;
            Ok(ns)
        })
        .and_then(|ns| {
            // pasta and the egress rules, while the child builds its root. pasta is killed
            // and reaped when `net` drops, once the sandbox is gone.
            ns.map(|ns| super::network::start(ns, opts.skip_egress_rules, opts.quiet))
                .transpose()
        });
    let mut net = match ready {
        Ok(net) => net,
        Err(e) => {
            // The child dies with us; make sure it is gone before reporting.
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(e);
        }
    };
    // A child that failed its setup meanwhile has reported why and exited: the event loop
    // reads that, so a closed channel here is not the error to report.
    if let Err(e) = chan.send(&ToChild::Go) {
        if e != Errno::EPIPE && e != Errno::ECONNRESET {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            return Err(StepError::sys(Step::IdMaps, "write(channel, go)", e));
        }
    }
    // Whether the sandbox's mounts may outlive kekkai's exit, and the stale cgroups, while
    // the sandbox sets up.
    *mount_ns = mount_ns.take().map(|hold| hold.decide(plan));
    if let Some(cg) = cgroups {
        cg.remove_stale();
    }
    // What a best-effort policy runs without is said when the sandbox reports what it
    // enforced, just before the program starts (unless -q).
    // A best-effort `network: user` that runs with loopback only is said the same way.
    let announce = (!opts.quiet).then(|| {
        cgroup_dropped
            .iter()
            .chain(&plan.network_dropped)
            .cloned()
            .collect()
    });
    if let Some(w) = &opts.watch {
        w.cloned(pid);
    }
    let sandbox = Sandbox {
        pid,
        chan,
        start,
        oom_events: cgroups.and_then(|c| c.oom_events()),
        watch: opts.watch.as_deref(),
        program_is_pid_1: plan.as_pid_1,
        pasta: net.as_mut(),
    };
    let seen = Supervisor::new(
        sandbox,
        sources,
        &opts.stdio,
        notify,
        announce,
        opts.observe,
    )
    .run()?;
    Ok(outcome::decide(seen))
}

/// Step 3: the child's uid and gid maps (and `setgroups deny`), written from outside.
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
            .key(&ns.key)
        })
    };
    if ns.deny_setgroups {
        write("setgroups", "deny")?;
    }
    write("uid_map", &ns.uid_map)?;
    write("gid_map", &ns.gid_map)?;
    Ok(())
}
