//! The sandbox's side of a launch: the strict order, one line per step.
//!
//! Each step consumes the previous state and returns the next, so the irreversible steps can't
//! be reordered or skipped without the compiler noticing. `plan::steps::ORDER` describes the
//! same sequence for `explain`; a test runs a traced launch and compares the two, and the unit
//! tests below run every shipped policy's steps against a recording kernel (`sys::fake`).
//!
//! Every call to the kernel goes through [`Kernel`]: [`main`] runs the steps on the real one.

use std::convert::Infallible;
use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::stat::Mode;

use super::error::{StepError, Syscall};
use super::options::Options;
use super::report::{Enforced, LandlockReport};
use super::rootfs::{self, Staged};
use super::sync::{Channel, ToChild, ToParent};
use super::{caps, environment, exec, landlock, lockdown, terminal};
use crate::plan::Plan;
use crate::plan::steps::Step;
use crate::sys::{Kernel, Linux};

/// Runs the sandbox's steps; never returns.
/// `cgroup_tasks`: the `tasks` files of the cgroup v1 hierarchies to join (step 3).
pub fn main(
    plan: &Plan,
    command: &[OsString],
    chan: Channel,
    opts: &Options,
    cgroup_tasks: &[BorrowedFd<'_>],
) -> ! {
    // A panic must not unwind into the launcher's frames below this one: this process is a
    // copy of the launcher, and from step 11 on the descriptors those frames own are closed.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(&Linux, plan, command, &chan, opts, cgroup_tasks)
    }));
    let Ok(Err(err)) = result else {
        crate::sys::exit_now(crate::exit::LAUNCH)
    };
    // If the supervisor is gone there is nobody to tell; the exit status still says 125.
    let _ = chan.send(&ToParent::Failed(err));
    crate::sys::exit_now(crate::exit::LAUNCH)
}

/// `kekkai enter`'s process, once it has joined the sandbox's namespaces: the same steps as
/// the sandbox's first process from step 7 on, from the same plan, through the same code
/// (identity, bounding set, no_new_privs, Landlock, close fds, seccomp, exec); never returns.
pub fn joined_main(plan: &Plan, command: &[OsString], chan: Channel, opts: &Options) -> ! {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_joined(&Linux, plan, command, &chan, opts)
    }));
    let Ok(Err(err)) = result else {
        crate::sys::exit_now(crate::exit::LAUNCH)
    };
    let _ = chan.send(&ToParent::Failed(err));
    crate::sys::exit_now(crate::exit::LAUNCH)
}

/// Blocks until the supervisor sends `want`; exits quietly if the supervisor is gone.
fn wait_for(k: &dyn Kernel, chan: &Channel, want: &ToChild, step: Step) -> Result<(), StepError> {
    match chan.recv::<ToChild>() {
        Ok(Some(got)) if &got == want => Ok(()),
        Ok(Some(got)) => Err(StepError::sys(
            step,
            format!("read(channel): {got:?} while waiting for {want:?}"),
            nix::errno::Errno::EPROTO,
        )),
        // The supervisor died: there is nothing to do.
        Ok(None) => k.exit(crate::exit::LAUNCH),
        Err(e) => Err(StepError::sys(step, "read(channel)", e)),
    }
}

fn raw(fd: BorrowedFd<'_>) -> u32 {
    u32::try_from(crate::sys::raw(fd)).unwrap_or(0)
}

/// THE order. The "why" of each position is in `plan::steps::ORDER`.
fn run(
    k: &dyn Kernel,
    plan: &Plan,
    command: &[OsString],
    chan: &Channel,
    opts: &Options,
    cgroup_tasks: &[BorrowedFd<'_>],
) -> Result<Infallible, StepError> {
    let c = Child::start(k, plan, chan, opts, cgroup_tasks)?; // 3: id maps; cgroup v1 join
    let c = c.build_root()?; //                          4: private propagation, overlay root
    let c = c.mount_all()?; //                           5: the policy's mounts, in order
    let c = c.pivot_root()?; //                          6: no path back to the host tree
    let c = c.environment()?; //                         7: hostname, rlimits, cwd
    let c = c.drop_privileges()?; //                     8: after the mounts needed CAP_SYS_ADMIN
    let c = c.no_new_privs()?; //                        9: Landlock and seccomp require it
    let c = c.landlock()?; //                           10: rules resolve in the new root
    let c = c.close_fds()?; //                          11: no host fd reaches the program
    let c = c.seccomp()?; //                            12: after cgroup join and network; last
    Err(c.exec(command)) //                             13: execve, allowed by the filter
}

/// `enter`'s order: steps 2 to 6 are the sandbox's already (its namespaces were joined, its root
/// is the joined mount namespace's); from step 7 on, the same steps as [`run`].
fn run_joined(
    k: &dyn Kernel,
    plan: &Plan,
    command: &[OsString],
    chan: &Channel,
    opts: &Options,
) -> Result<Infallible, StepError> {
    let c = Child::joined(k, plan, chan, opts)?; //      2-6: the sandbox's, joined
    let c = c.environment()?; //                         7: rlimits, cwd
    let c = c.drop_privileges()?; //                     8: the sandbox's identity and bounding set
    let c = c.no_new_privs()?; //                        9
    let c = c.landlock()?; //                           10: the sandbox's rules, in its root
    let c = c.close_fds()?; //                          11: no host fd reaches the program
    let c = c.seccomp()?; //                            12: the sandbox's filters
    Err(c.exec(command)) //                             13
}

/// A state of the sandbox's first process.
pub struct Child<'a, S> {
    k: &'a dyn Kernel,
    plan: &'a Plan,
    chan: &'a Channel,
    opts: &'a Options,
    /// The program's stdio: the plan, and from step 7 the end of its terminal relay.
    tty: terminal::ProgramStdio,
    state: S,
}

/// The id maps are written.
pub struct Mapped;
/// The root is staged (and the caller's file mode creation mask, set aside until pivot_root).
pub struct RootBuilt(Staged, Mode);
/// The policy's mounts are in place.
pub struct Mounted(Staged, Mode);
/// The root is the sandbox's own (with notes on what was done otherwise than planned).
pub struct Pivoted(Vec<String>);
/// Host name, rlimits and cwd are set (with notes on what differs from the policy).
pub struct Configured(Vec<String>);
/// Capabilities and ids are final.
pub struct Unprivileged(Vec<String>);
/// no_new_privs is set.
pub struct NoNewPrivs(Vec<String>);
/// Landlock is enforced.
pub struct Landlocked(Vec<String>, LandlockReport);
/// Only stdio and the channel are open.
pub struct Closed(Vec<String>, LandlockReport);
/// seccomp is installed.
pub struct Locked;

impl<'a, S> Child<'a, S> {
    /// The next state, made from this one.
    fn then<T>(self, f: impl FnOnce(S) -> T) -> Child<'a, T> {
        Child {
            k: self.k,
            plan: self.plan,
            chan: self.chan,
            opts: self.opts,
            tty: self.tty,
            state: f(self.state),
        }
    }

    fn enter(&self, step: Step) {
        self.k.begin(step.name());
        self.opts.enter(step);
    }
}

impl<'a> Child<'a, Mapped> {
    /// Waits until the supervisor has written the id maps, then joins the cgroup v1
    /// hierarchies, so that all of its own setup is counted and limited there. Dies with the
    /// supervisor from here on.
    fn start(
        k: &'a dyn Kernel,
        plan: &'a Plan,
        chan: &'a Channel,
        opts: &'a Options,
        cgroup_tasks: &[BorrowedFd<'_>],
    ) -> Result<Self, StepError> {
        k.set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
            .step(Step::Clone, || "prctl(PR_SET_PDEATHSIG, SIGKILL)".into())?;
        // This process is a copy of the launcher and becomes PID 1: every process of the
        // sandbox could read the launcher's command line (policy path, bind sources,
        // --setenv values) in /proc/1/cmdline. Forget it and the caller's environment now,
        // while the host's /proc still shows this process as /proc/self.
        if !opts.keep_launcher_args {
            k.forget_launcher_args(b"kekkai").step(Step::Clone, || {
                "overwrite the launcher's argv and environ (/proc/self/stat arg_start..env_end)"
                    .into()
            })?;
        }
        wait_for(k, chan, &ToChild::Mapped, Step::IdMaps)?;
        for tasks in cgroup_tasks {
            k.join_cgroup_v1(*tasks)
                .step(Step::IdMaps, || "write(<cgroup v1>/tasks, \"0\")".into())?;
        }
        setup_as_root(k, plan)?;
        Ok(Child {
            k,
            plan,
            chan,
            opts,
            tty: terminal::ProgramStdio::new(&opts.stdio),
            state: Mapped,
        })
    }

    /// `enter`: this process has joined the running sandbox's namespaces (its root is the
    /// sandbox's). It dies with the supervisor from here on, and takes the identity the
    /// sandbox's first process had at this point.
    fn joined(
        k: &'a dyn Kernel,
        plan: &'a Plan,
        chan: &'a Channel,
        opts: &'a Options,
    ) -> Result<Child<'a, Pivoted>, StepError> {
        k.set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
            .step(Step::Clone, || "prctl(PR_SET_PDEATHSIG, SIGKILL)".into())?;
        if chan.peer_gone() {
            k.exit(crate::exit::LAUNCH);
        }
        setup_as_root(k, plan)?;
        Ok(Child {
            k,
            plan,
            chan,
            opts,
            tty: terminal::ProgramStdio::new(&opts.stdio),
            state: Pivoted(Vec::new()),
        })
    }

    fn build_root(self) -> Result<Child<'a, RootBuilt>, StepError> {
        self.enter(Step::Rootfs);
        // The sandbox's own directories (the skeleton, mount points, their parents) are made
        // 0755 whatever the caller's umask: under `umask 077` (systemd's `UMask=0077`) they
        // would be 0700 and root's, and the program's user could not look into `/sys` or reach
        // a mount below a directory made for it. The program gets the caller's back (step 6).
        let caller_umask = self.k.umask(Mode::from_bits_truncate(0o022));
        let staged = rootfs::build_root(self.k, self.plan)?;
        Ok(self.then(|_| RootBuilt(staged, caller_umask)))
    }
}

impl<'a> Child<'a, RootBuilt> {
    fn mount_all(self) -> Result<Child<'a, Mounted>, StepError> {
        self.enter(Step::Mounts);
        let mut this = self;
        rootfs::mount_all(this.k, this.plan, &mut this.state.0)?;
        Ok(this.then(|RootBuilt(staged, umask)| Mounted(staged, umask)))
    }
}

impl<'a> Child<'a, Mounted> {
    fn pivot_root(self) -> Result<Child<'a, Pivoted>, StepError> {
        self.enter(Step::PivotRoot);
        let Child {
            k,
            plan,
            chan,
            opts,
            tty,
            state,
        } = self;
        let Mounted(staged, caller_umask) = state;
        let notes = rootfs::pivot(k, staged)?;
        // Nothing more is made for the sandbox: the program inherits the caller's umask.
        k.umask(caller_umask);
        Ok(Child {
            k,
            plan,
            chan,
            opts,
            tty,
            state: Pivoted(notes),
        })
    }
}

impl<'a> Child<'a, Pivoted> {
    fn environment(self) -> Result<Child<'a, Configured>, StepError> {
        self.enter(Step::Environment);
        let mut this = self;
        let mut notes = std::mem::take(&mut this.state.0);
        notes.extend(environment::apply(this.k, this.plan)?);
        // The program's terminal lives in the sandbox's own devpts (or is a pipe); the
        // supervisor gets the other end and relays.
        if let Some((theirs, ours)) = terminal::open_carrier(&this.opts.stdio)? {
            this.chan
                .send_with_fd(&ToParent::RelayEnd, theirs.as_fd())
                .step(Step::Environment, || "sendmsg(channel, relay end)".into())?;
            this.tty.set_end(ours);
        }
        Ok(this.then(|_| Configured(notes)))
    }
}

impl<'a> Child<'a, Configured> {
    fn drop_privileges(self) -> Result<Child<'a, Unprivileged>, StepError> {
        self.enter(Step::DropPrivileges);
        caps::drop_privileges(self.k, self.plan)?;
        // Changing ids cleared the parent-death signal: set it again, then make sure the
        // supervisor did not die in between (its end of the channel would be closed).
        self.k
            .set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
            .step(Step::DropPrivileges, || {
                "prctl(PR_SET_PDEATHSIG, SIGKILL)".into()
            })?;
        if self.chan.peer_gone() {
            self.k.exit(crate::exit::LAUNCH);
        }
        // Nobody inside may read this process's memory or environment through /proc.
        self.k
            .set_dumpable(false)
            .step(Step::DropPrivileges, || "prctl(PR_SET_DUMPABLE, 0)".into())?;
        Ok(self.then(|Configured(notes)| Unprivileged(notes)))
    }
}

impl<'a> Child<'a, Unprivileged> {
    fn no_new_privs(self) -> Result<Child<'a, NoNewPrivs>, StepError> {
        self.enter(Step::NoNewPrivs);
        lockdown::no_new_privs(self.k)?;
        Ok(self.then(|Unprivileged(notes)| NoNewPrivs(notes)))
    }
}

impl<'a> Child<'a, NoNewPrivs> {
    fn landlock(self) -> Result<Child<'a, Landlocked>, StepError> {
        self.enter(Step::Landlock);
        let report = landlock::restrict(self.k, &self.plan.landlock)?;
        Ok(self.then(|NoNewPrivs(notes)| Landlocked(notes, report)))
    }
}

impl<'a> Child<'a, Landlocked> {
    #[allow(unsafe_code)]
    fn close_fds(self) -> Result<Child<'a, Closed>, StepError> {
        self.enter(Step::CloseFds);
        let mut keep = vec![raw(self.chan.fd())];
        keep.extend(self.tty.end().map(raw));
        // Socket activation's descriptors start at 3.
        keep.extend(3..3 + self.plan.systemd.listen_fds);
        // SAFETY: from here this process uses only stdio, the channel, the program's terminal
        // end and socket activation's descriptors, all in `keep` (the plan, options and
        // states own none; step 6 dropped the root's). Every other descriptor belongs to the
        // launcher's frames below `main`, which never returns to them (it ends in execve or
        // _exit; a panic stops in `main` too), or to no object at all.
        unsafe { lockdown::close_fds(self.k, &keep) }?;
        Ok(self.then(|Landlocked(notes, report)| Closed(notes, report)))
    }
}

impl<'a> Child<'a, Closed> {
    fn seccomp(self) -> Result<Child<'a, Locked>, StepError> {
        self.enter(Step::Seccomp);
        // The program must start inside its cgroups and with its network ready: the supervisor
        // says Go once it has joined us to the v1 hierarchies and pasta and the egress rules
        // are in place (it did that while we built the root).
        wait_for(self.k, self.chan, &ToChild::Go, Step::Seccomp)?;
        let installed = lockdown::seccomp(self.k, &self.plan.seccomp)?;
        if self.opts.observe {
            lockdown::observe(self.k, self.chan)?;
        }
        let chan = self.chan;
        let locked = self.then(|Closed(notes, landlock)| Enforced {
            landlock,
            notes,
            seccomp: installed,
            no_new_privs: true,
        });
        chan.send(&ToParent::Enforced(locked.state.clone()))
            .step(Step::Seccomp, || "write(channel, enforced)".into())?;
        Ok(locked.then(|_| Locked))
    }
}

impl Child<'_, Locked> {
    fn exec(self, command: &[OsString]) -> StepError {
        self.enter(Step::Exec);
        exec::spawn(self.k, self.plan, command, self.chan, self.tty)
    }
}

/// The whole order against a recording kernel: every shipped policy, compiled for a root and
/// an unprivileged caller, runs its steps on [`crate::sys::fake::Fake`], which records every
/// call and can fail any one of them. No system call reaches the kernel (the fake's
/// descriptors are copies of one `/dev/null`), so these run anywhere, without root.
///
/// The program runs as PID 1 here (`as_pid_1`): the reaper forks and forwards signals, which
/// is the supervisor's business and has its own tests; step 13 is then the program's execve.
/// Step 3's end, in `run` and in `enter` alike: root of the new user namespace for the setup,
/// when the plan sets up as root (the identity of the program comes at step 8).
fn setup_as_root(k: &dyn Kernel, plan: &Plan) -> Result<(), StepError> {
    if plan.userns.as_ref().is_some_and(|ns| ns.setup_as_root) {
        let root = nix::unistd::Uid::from_raw(0);
        let rootg = nix::unistd::Gid::from_raw(0);
        k.setresgid(rootg, rootg, rootg)
            .step(Step::IdMaps, || "setresgid(0, 0, 0)".into())?;
        k.setresuid(root, root, root)
            .step(Step::IdMaps, || "setresuid(0, 0, 0)".into())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

    use nix::errno::Errno;
    use nix::mount::MsFlags;
    use rstest::rstest;

    use super::*;
    use crate::caller::Caller;
    use crate::plan::MountKind;
    use crate::plan::steps::{ORDER, Side};
    use crate::policy::PolicySource;
    use crate::sys::fake::{Call, Ended, Fake, LAUNCHER_CWD};
    use crate::sys::kernel::Stat;

    const SHIPPED: [&str; 7] = [
        "default",
        "untrusted",
        "build",
        "service",
        "python",
        "node",
        "network-client",
    ];

    /// `name` compiled for a root or an unprivileged caller. `build` runs as the owner of the
    /// working directory and refuses a root-owned one: compile it in a fresh directory that
    /// belongs to nobody when the test runs as root (removed once compiled).
    fn plan_of(name: &'static str, root: bool) -> Plan {
        let mut caller = Caller {
            pwd: "/usr".into(),
            ..Caller::for_tests()
        };
        if root {
            caller = caller.as_root();
        }
        let dir = std::env::temp_dir().join(format!(
            "kekkai-child-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        if name == "build" && root {
            std::fs::create_dir_all(&dir).unwrap();
            if nix::unistd::geteuid().is_root() {
                let nobody = Some(nix::unistd::Uid::from_raw(65534));
                nix::unistd::chown(&dir, nobody, None).unwrap();
            }
            caller.pwd = dir.clone();
        }
        let loaded = crate::policy::load(&PolicySource::Shipped(name), &caller).unwrap();
        let plan = crate::plan::compile(&loaded, &caller);
        let _ = std::fs::remove_dir(&dir);
        let mut plan = plan.unwrap();
        plan.as_pid_1 = true;
        plan
    }

    /// A fake kernel whose `fstat` answers for the plan's bind sources what the plan saw.
    fn fake_for(plan: &Plan) -> Fake {
        let mut fake = Fake::new().unwrap();
        for m in &plan.mounts {
            if let MountKind::Bind {
                source,
                dev_ino,
                dir,
                ..
            } = &m.kind
            {
                let (dev, ino) = *dev_ino;
                fake = fake.with_stat(
                    source,
                    Stat {
                        dev,
                        ino,
                        dir: *dir,
                    },
                );
            }
        }
        fake
    }

    /// How a recorded run ended.
    #[derive(Debug)]
    enum End {
        /// A step failed.
        Failed(StepError),
        /// execve succeeded, or the process exited.
        Ended(Ended),
    }

    /// Runs the steps on `fake` with the supervisor's messages already sent; returns how they
    /// ended and what the sandbox told the supervisor.
    fn run_on(fake: &Fake, plan: &Plan) -> (End, Vec<ToParent>) {
        let (parent, child) = Channel::pair().unwrap();
        parent.send(&ToChild::Mapped).unwrap();
        parent.send(&ToChild::Go).unwrap();
        let command = [OsString::from("/bin/sh")];
        let opts = Options::default();
        // Stands for the `tasks` file of one cgroup v1 hierarchy.
        let tasks = std::fs::File::open("/dev/null").unwrap();
        let result = catch_unwind(AssertUnwindSafe(|| {
            run(fake, plan, &command, &child, &opts, &[tasks.as_fd()])
        }));
        let end = match result {
            Ok(Err(e)) => End::Failed(e),
            Ok(Ok(never)) => match never {},
            Err(payload) => match payload.downcast::<Ended>() {
                Ok(ended) => End::Ended(*ended),
                Err(other) => resume_unwind(other),
            },
        };
        drop(child);
        let mut sent = Vec::new();
        while let Ok(Some(m)) = parent.recv::<ToParent>() {
            sent.push(m);
        }
        (end, sent)
    }

    /// Each recorded call with the step it was made in ("" before the first step mark: the
    /// child's part of steps 2 and 3).
    fn by_step(log: &[Call]) -> Vec<(&'static str, Call)> {
        let mut step = "";
        let mut out = Vec::new();
        for c in log {
            match c {
                Call::Begin(s) => step = s,
                c => out.push((step, c.clone())),
            }
        }
        out
    }

    /// The steps a call may be made in.
    fn allowed(call: &Call) -> &'static [&'static str] {
        match call {
            Call::SetPdeathsig(_) => &["", "drop-privileges"],
            // Step 3, before any step of the child's own setup.
            Call::ForgetLauncherArgs | Call::JoinCgroupV1(_) => &[""],
            Call::Setresgid(_) | Call::Setresuid(_) => &["", "drop-privileges"],
            Call::Mount { .. }
            | Call::Open(..)
            | Call::Openat2(..)
            | Call::OpenTreeClone(..)
            | Call::MoveMount(..)
            | Call::Mkdirat(..)
            | Call::CreateFile(..)
            | Call::WriteFile(..)
            | Call::Symlinkat(..)
            | Call::Fstat(..)
            | Call::Dup(..) => &["rootfs", "mounts"],
            // A mount's target or overlay layer named `.` (rootfs::here); then the new root.
            Call::MountSetattr(..) | Call::Fchdir(_) => &["rootfs", "mounts", "pivot-root"],
            Call::PivotRoot(..) | Call::Umount2(..) | Call::CloseOwned(_) => &["pivot-root"],
            // 022 for what the launch makes; the caller's back at the end of pivot_root.
            Call::Umask(_) => &["rootfs", "pivot-root"],
            Call::Chdir(p) if p.as_os_str() == "/" => &["pivot-root", "environment"],
            Call::Sethostname(_)
            | Call::LoopbackUp
            | Call::Setrlimit(..)
            | Call::Getrlimit(_)
            | Call::Chdir(_) => &["environment"],
            Call::CapbsetRead(_)
            | Call::CapbsetDrop(_)
            | Call::SetKeepcaps(_)
            | Call::Setgroups(_)
            | Call::Capset(..)
            | Call::CapClear(_)
            | Call::CapRaise(..)
            | Call::Capget
            | Call::SetDumpable(_) => &["drop-privileges"],
            Call::SetNoNewPrivs | Call::GetNoNewPrivs => &["no-new-privs"],
            Call::LandlockAbi | Call::LandlockRestrict(_) => &["landlock"],
            Call::CloseRange(..) => &["close-fds"],
            Call::SeccompInstall(_) | Call::SeccompListen(_) => &["seccomp"],
            Call::Execve(..) => &["exec"],
            Call::Begin(_) | Call::Exit(_) => &[],
        }
    }

    /// Where the first call `which` accepts is, in `calls`.
    fn first(calls: &[(&str, Call)], which: impl Fn(&Call) -> bool) -> Option<usize> {
        calls.iter().position(|(_, c)| which(c))
    }

    fn last(calls: &[(&str, Call)], which: impl Fn(&Call) -> bool) -> Option<usize> {
        calls.iter().rposition(|(_, c)| which(c))
    }

    /// The child's steps, in `plan::steps::ORDER`'s order, and every kernel call in the step
    /// that needs it: propagation private before any other mount, pivot_root before the host
    /// name, the bounding set before the ids, then no_new_privs, Landlock, close_range,
    /// seccomp and execve, in that order, execve last.
    #[rstest]
    fn the_calls_follow_the_documented_order(
        #[values(
            "default",
            "untrusted",
            "build",
            "service",
            "python",
            "node",
            "network-client"
        )]
        name: &'static str,
        #[values(false, true)] root: bool,
    ) {
        let plan = plan_of(name, root);
        let fake = fake_for(&plan);
        let (end, sent) = run_on(&fake, &plan);
        assert!(
            matches!(&end, End::Ended(Ended::Exec(p)) if p.as_bytes() == b"/bin/sh"),
            "{end:?}"
        );
        let log = fake.log();
        let steps: Vec<&str> = log
            .iter()
            .filter_map(|c| match c {
                Call::Begin(s) => Some(*s),
                _ => None,
            })
            .collect();
        let documented: Vec<&str> = ORDER
            .iter()
            .filter(|i| i.side == Side::Child)
            .map(|i| i.step.name())
            .collect();
        assert_eq!(steps, documented);

        let calls = by_step(&log);
        let joins = calls
            .iter()
            .filter(|(_, c)| matches!(c, Call::JoinCgroupV1(_)))
            .count();
        assert_eq!(joins, 1);
        for (step, call) in &calls {
            assert!(
                allowed(call).contains(step),
                "{call:?} in step {step:?}, expected in {:?}",
                allowed(call)
            );
        }
        let is_mount = |c: &Call| {
            matches!(
                c,
                Call::Mount { .. } | Call::MoveMount(..) | Call::OpenTreeClone(..)
            )
        };
        let private = first(&calls, is_mount).unwrap();
        assert_eq!(
            calls[private].1,
            Call::Mount {
                source: None,
                target: "/".into(),
                fstype: None,
                flags: MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                data: None,
            }
        );
        let pivot = first(&calls, |c| matches!(c, Call::PivotRoot(..))).unwrap();
        assert!(last(&calls, is_mount).unwrap() < pivot);
        // Whatever the launch makes is made under 022; the program inherits the caller's mask.
        let masks: Vec<&Call> = calls
            .iter()
            .map(|(_, c)| c)
            .filter(|c| matches!(c, Call::Umask(_)))
            .collect();
        assert_eq!(
            masks,
            [
                &Call::Umask(0o022),
                &Call::Umask(crate::sys::fake::CALLER_UMASK)
            ]
        );
        let makes = |c: &Call| {
            matches!(
                c,
                Call::Mkdirat(..)
                    | Call::CreateFile(..)
                    | Call::WriteFile(..)
                    | Call::Symlinkat(..)
            )
        };
        let strict = first(&calls, |c| c == &Call::Umask(0o022)).unwrap();
        let back = last(&calls, |c| matches!(c, Call::Umask(_))).unwrap();
        assert!(strict < first(&calls, makes).unwrap());
        assert!(last(&calls, makes).unwrap() < back && pivot < back);
        let host_name = first(&calls, |c| matches!(c, Call::Sethostname(_)));
        assert_eq!(host_name.is_some(), plan.hostname.is_some());
        assert!(host_name.is_none_or(|h| pivot < h));
        let cwd = first(&calls, |c| c == &Call::Chdir(plan.cwd.value.clone())).unwrap();
        assert!(pivot < cwd);
        let drops = last(&calls, |c| matches!(c, Call::CapbsetDrop(_))).unwrap();
        let gid = last(&calls, |c| c == &Call::Setresgid(*plan.identity.gid)).unwrap();
        let uid = last(&calls, |c| c == &Call::Setresuid(*plan.identity.uid)).unwrap();
        assert!(drops < gid && gid < uid, "bounding set, gid, uid");
        let nnp = first(&calls, |c| c == &Call::SetNoNewPrivs).unwrap();
        let landlock = first(&calls, |c| matches!(c, Call::LandlockRestrict(_))).unwrap();
        let close = first(&calls, |c| matches!(c, Call::CloseRange(..))).unwrap();
        let seccomp = first(&calls, |c| matches!(c, Call::SeccompInstall(_))).unwrap();
        let exec = first(&calls, |c| matches!(c, Call::Execve(..))).unwrap();
        assert!(uid < nnp && nnp < landlock && landlock < close);
        assert!(close < seccomp && seccomp < exec);
        assert_eq!(exec, calls.len() - 1, "execve is the last call");
        let filters: Vec<Call> = plan
            .seccomp
            .filters
            .iter()
            .map(|f| Call::SeccompInstall(f.program.len()))
            .collect();
        let installed: Vec<Call> = calls
            .iter()
            .filter(|(_, c)| matches!(c, Call::SeccompInstall(_)))
            .map(|(_, c)| c.clone())
            .collect();
        assert_eq!(installed, filters);
        // What the supervisor heard: what was enforced, after all of it.
        let [ToParent::Enforced(enforced)] = sent.as_slice() else {
            panic!("{sent:?}");
        };
        assert!(enforced.no_new_privs);
        assert_eq!(enforced.seccomp.len(), plan.seccomp.filters.len());
    }

    /// A top-level overlay gets an upper layer only where a policy mount point inside it is
    /// missing from its top layer (the default policy's tmpfs at `/var/tmp`); without one it is
    /// mounted read-only at once and not sealed later.
    #[rstest]
    #[case::present(None, false)]
    #[case::missing(Some(Errno::ENOENT), true)]
    #[case::not_a_plain_directory(Some(Errno::ELOOP), true)]
    fn var_gets_an_upper_only_when_its_mount_point_is_missing(
        #[case] lookup: Option<Errno>,
        #[case] upper: bool,
    ) {
        let plan = plan_of("default", true);
        let mut fake = fake_for(&plan);
        if let Some(errno) = lookup {
            fake = fake.fail_first(
                |c| {
                    matches!(c, Call::Openat2(_, p, _, r)
                        if p.as_os_str() == "tmp" && r.contains(nix::fcntl::ResolveFlag::RESOLVE_BENEATH))
                },
                errno,
            );
        }
        let _ = run_on(&fake, &plan);
        let (flags, data) = fake
            .log()
            .into_iter()
            .find_map(|c| match c {
                Call::Mount {
                    fstype: Some(t),
                    target,
                    flags,
                    data,
                    ..
                } if t == "overlay" && target.ends_with("/var") => Some((flags, data)),
                _ => None,
            })
            .unwrap();
        let data = data.unwrap();
        assert_eq!(data.contains("upperdir="), upper, "{data}");
        assert_eq!(flags.contains(MsFlags::MS_RDONLY), !upper);
    }

    type Which = fn(&Call) -> bool;

    /// The check of `usr` on the host root's own mount.
    fn usr_check(c: &Call) -> bool {
        matches!(c, Call::Openat2(d, p, _, r)
            if d == "/" && p.as_os_str() == "usr" && r.contains(nix::fcntl::ResolveFlag::RESOLVE_NO_XDEV))
    }

    fn shared_mount(c: &Call) -> bool {
        matches!(c, Call::Mount { target, .. } if target == "/tmp/s0")
    }

    /// The lookup of `etc` on the shared overlay.
    fn etc_on_overlay(c: &Call) -> bool {
        matches!(c, Call::Openat2(d, p, ..) if d == "/tmp/s0" && p.as_os_str() == "etc")
    }

    /// The service policy as root (no user namespace): the top-level directories of `/` share
    /// one lower-only overlay of `/` on the staging tmpfs, each a bind of its directory from
    /// it. A member whose check fails keeps its own overlay (EXDEV: a host mount of its own;
    /// a directory gone from the shared overlay), and all of them do when the kernel refuses
    /// the shared one.
    #[rstest]
    #[case::shared(None, false, &[])]
    #[case::own_mount(Some((usr_check as Which, Errno::EXDEV)), false, &["usr"])]
    #[case::refused(Some((shared_mount as Which, Errno::EINVAL)), true, &[])]
    #[case::gone(Some((etc_on_overlay as Which, Errno::ENOENT)), false, &["etc"])]
    fn host_root_entries_share_one_overlay(
        #[case] fail: Option<(Which, Errno)>,
        #[case] all_own: bool,
        #[case] own: &[&str],
    ) {
        let plan = plan_of("service", true);
        let [group] = plan.rootfs.shared.as_slice() else {
            panic!("{:?}", plan.rootfs.shared);
        };
        assert_eq!(group.parent, std::path::Path::new("/"));
        let names: Vec<&str> = group
            .members
            .iter()
            .map(|&i| plan.rootfs.entries[i].name.as_str())
            .collect();
        assert!(
            names.contains(&"usr") && names.contains(&"etc"),
            "{names:?}"
        );
        let mut fake = fake_for(&plan);
        if let Some((which, errno)) = fail {
            fake = fake.fail_first(which, errno);
        }
        let (end, sent) = run_on(&fake, &plan);
        assert!(matches!(end, End::Ended(Ended::Exec(_))), "{end:?}");
        // A refused shared overlay is said (with -v), and nothing else is.
        let notes: Vec<&String> = sent
            .iter()
            .filter_map(|m| match m {
                ToParent::Enforced(e) => Some(&e.notes),
                _ => None,
            })
            .flatten()
            .collect();
        let key = plan.rootfs.lowers.key.to_string();
        let said = format!("{key}: the kernel refused one overlay of / for its ");
        if all_own {
            assert!(
                matches!(notes.as_slice(), [n] if n.starts_with(&said) && n.contains("EINVAL")),
                "{notes:?}"
            );
        } else {
            assert!(notes.is_empty(), "{notes:?}");
        }
        let log = fake.log();
        let overlays: Vec<(String, MsFlags, String)> = log
            .iter()
            .filter_map(|c| match c {
                Call::Mount {
                    fstype: Some(t),
                    target,
                    flags,
                    data: Some(d),
                    ..
                } if t == "overlay" => Some((target.clone(), *flags, d.clone())),
                _ => None,
            })
            .collect();
        let ro = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        // The shared overlay: `/` by its descriptor (`.` after fchdir), then the empty layer.
        let fchdir_root = log.iter().any(|c| c == &Call::Fchdir("/".into()));
        assert!(fchdir_root);
        assert!(overlays.contains(&("/tmp/s0".into(), ro, "lowerdir=.:/tmp/e".into())));
        for name in &names {
            let target = format!("/tmp/root/{name}");
            let bound = Call::MoveMount(format!("tree of /tmp/s0/{name}"), target.clone());
            let has_own = overlays.iter().any(|(t, f, _)| *t == target && *f == ro);
            let is_own = all_own || own.contains(name);
            assert_eq!(has_own, is_own, "{name}: {overlays:?}");
            assert_eq!(log.contains(&bound), !is_own, "{name}");
        }
    }

    /// The clone of a directory on the shared overlay.
    fn etc_clone(c: &Call) -> bool {
        matches!(c, Call::OpenTreeClone(d, false) if d == "/tmp/s0/etc")
    }

    /// The move of that clone onto the skeleton.
    fn etc_move(c: &Call) -> bool {
        matches!(c, Call::MoveMount(t, to) if t == "tree of /tmp/s0/etc" && to == "/tmp/root/etc")
    }

    /// A member of the shared overlay that can't be bound from it stops the launch, and the
    /// error names the call and the policy key of the layers, as a member's own overlay does.
    #[rstest]
    #[case::open_tree(etc_clone as Which, "open_tree(\"shared overlay/etc\", OPEN_TREE_CLONE)")]
    #[case::move_mount(etc_move as Which, "move_mount(tree, \"/tmp/root/etc\")")]
    fn a_shared_member_that_fails_names_its_key(#[case] which: Which, #[case] call: &str) {
        let plan = plan_of("service", true);
        let fake = fake_for(&plan).fail_first(which, Errno::EIO);
        let (end, _) = run_on(&fake, &plan);
        let End::Failed(e) = end else {
            panic!("{end:?}");
        };
        assert_eq!(e.step, Step::Rootfs);
        assert_eq!(e.call, call);
        assert_eq!(e.errno, Some(Errno::EIO as i32));
        assert_eq!(e.key, Some(plan.rootfs.lowers.key.to_string()));
    }

    /// The first call of each step fails: the launch stops there, and the error names that
    /// step and the errno. (Landlock's ABI query is skipped: an unanswered query means "no
    /// Landlock", which a best-effort policy runs without. execve's failure is the program's:
    /// it is reported as such, with exit status 126.)
    #[rstest]
    fn a_failing_call_stops_the_launch_at_its_step(
        #[values(
            "default",
            "untrusted",
            "build",
            "service",
            "python",
            "node",
            "network-client"
        )]
        name: &'static str,
        #[values(false, true)] root: bool,
    ) {
        let plan = plan_of(name, root);
        let recording = fake_for(&plan);
        let _ = run_on(&recording, &plan);
        let calls = by_step(&recording.log());
        let mut tried = Vec::new();
        for (n, (step, call)) in calls.iter().enumerate() {
            let first_of_step = n == 0 || calls[n - 1].0 != *step;
            if !first_of_step && tried.last() == Some(step) {
                continue;
            }
            // Not failed here: the Landlock ABI query (as before) and umask (which can't fail).
            if matches!(call, Call::LandlockAbi | Call::Umask(_)) {
                continue;
            }
            tried.push(*step);
            let fake = fake_for(&plan).fail_at(n, Errno::EIO);
            let (end, sent) = run_on(&fake, &plan);
            let want = match *step {
                "" => Step::Clone,
                s => Step::all().find(|x| x.name() == s).unwrap(),
            };
            if want == Step::Exec {
                assert!(matches!(end, End::Ended(Ended::Exit(126))), "{end:?}");
                assert!(
                    sent.contains(&ToParent::ExecFailed {
                        program: "/bin/sh".into(),
                        errno: Errno::EIO as i32,
                    }),
                    "{sent:?}"
                );
                continue;
            }
            let End::Failed(e) = end else {
                panic!("{call:?} failed, but the launch went on: {end:?}");
            };
            assert_eq!(e.step, want, "{call:?}: {e}");
            if want != Step::Landlock {
                assert_eq!(e.errno, Some(Errno::EIO as i32), "{call:?}: {e}");
            }
            // Nothing after the failed call was made.
            assert_eq!(fake.calls().len(), n + 1, "{call:?}");
        }
        let mut want: Vec<&str> = vec![""];
        want.extend(
            ORDER
                .iter()
                .filter(|i| i.side == Side::Child)
                .map(|i| i.step.name()),
        );
        assert_eq!(tried, want);
    }

    /// A failing call that the policy asked for names the policy key (or, for a mount, where
    /// the policy asked for it).
    #[rstest]
    #[case::host_name("default", false, |c: &Call| matches!(c, Call::Sethostname(_)), Step::Environment, |_: &Plan| Some("hostname".into()))]
    #[case::loopback("default", true, |c: &Call| c == &Call::LoopbackUp, Step::Environment, |_: &Plan| Some("network".into()))]
    #[case::rlimit("untrusted", false, |c: &Call| matches!(c, Call::Setrlimit(..)), Step::Environment, |_: &Plan| Some("rlimits.nofile".into()))]
    #[case::cwd("build", true, |c: &Call| matches!(c, Call::Chdir(p) if p.as_os_str() != "/"), Step::Environment, |_: &Plan| Some("cwd".into()))]
    #[case::overlay("default", false, |c: &Call| matches!(c, Call::Mount { fstype: Some(t), .. } if t == "overlay"), Step::Rootfs, |_: &Plan| Some("rootfs.lower".into()))]
    #[case::layer("service", true, |c: &Call| matches!(c, Call::Openat2(d, ..) if d == "."), Step::Rootfs, |_: &Plan| Some("rootfs.lower".into()))]
    #[case::proc("default", true, |c: &Call| matches!(c, Call::Mount { fstype: Some(t), .. } if t == "proc"), Step::Mounts, proc_origin)]
    #[case::gid("service", true, |c: &Call| matches!(c, Call::Setresgid(g) if *g != 0), Step::DropPrivileges, |_: &Plan| Some("identity.gid".into()))]
    #[case::uid("default", false, |c: &Call| matches!(c, Call::Setresuid(u) if *u != 0), Step::DropPrivileges, |_: &Plan| Some("identity.uid".into()))]
    #[case::kept_caps("service", true, |c: &Call| matches!(c, Call::Capset(..)), Step::DropPrivileges, |_: &Plan| Some("capabilities.keep".into()))]
    #[case::bounding_set("default", true, |c: &Call| matches!(c, Call::CapbsetDrop(_)), Step::DropPrivileges, |_: &Plan| None)]
    #[case::no_new_privs("default", false, |c: &Call| c == &Call::SetNoNewPrivs, Step::NoNewPrivs, |_: &Plan| None)]
    #[case::landlock("service", true, |c: &Call| matches!(c, Call::LandlockRestrict(_)), Step::Landlock, |_: &Plan| None)]
    #[case::close_fds("untrusted", true, |c: &Call| matches!(c, Call::CloseRange(..)), Step::CloseFds, |_: &Plan| None)]
    #[case::seccomp("build", false, |c: &Call| matches!(c, Call::SeccompInstall(_)), Step::Seccomp, |_: &Plan| None)]
    fn a_failing_call_names_the_policy_key(
        #[case] name: &'static str,
        #[case] root: bool,
        #[case] which: fn(&Call) -> bool,
        #[case] step: Step,
        #[case] key: fn(&Plan) -> Option<String>,
    ) {
        let plan = plan_of(name, root);
        let fake = fake_for(&plan).fail_first(which, Errno::EPERM);
        let (end, _) = run_on(&fake, &plan);
        let End::Failed(e) = end else {
            panic!("no failure: {end:?}");
        };
        assert_eq!(e.step, step, "{e}");
        assert_eq!(e.key, key(&plan), "{e}");
    }

    /// Where the policy asked for /proc.
    fn proc_origin(plan: &Plan) -> Option<String> {
        plan.mounts
            .iter()
            .find(|m| matches!(m.kind, MountKind::Proc))
            .map(|m| m.origin.clone())
    }

    /// Steps 4 to 6 name a mount's target or an overlay's top layer `.` after `fchdir` to its
    /// descriptor (`rootfs::here`) and leave the working directory there: so no other path of
    /// theirs may be relative to it. Every path given with `AT_FDCWD` is absolute, every `.`
    /// a mount reads follows an `fchdir`, and `pivot_root`'s `.` is the new root's.
    #[rstest]
    fn cwd_is_never_a_base(
        #[values(
            "default",
            "untrusted",
            "build",
            "service",
            "python",
            "node",
            "network-client"
        )]
        name: &'static str,
        #[values(false, true)] root: bool,
    ) {
        let plan = plan_of(name, root);
        let fake = fake_for(&plan);
        let _ = run_on(&fake, &plan);
        let mut cwd: Option<String> = None;
        let mut fchdirs = 0;
        for (step, call) in by_step(&fake.log()) {
            if !["rootfs", "mounts", "pivot-root"].contains(&step) {
                continue;
            }
            let relative = match &call {
                Call::Fchdir(dir) => {
                    cwd = Some(dir.clone());
                    fchdirs += 1;
                    None
                }
                Call::Open(p, _) | Call::Openat2(_, p, ..) if !p.is_absolute() => match &call {
                    Call::Openat2(dir, ..) if dir != "." => None,
                    _ => Some(p.clone()),
                },
                Call::CreateFile(d, p)
                | Call::WriteFile(d, p, _)
                | Call::Mkdirat(d, p)
                | Call::Symlinkat(_, d, p)
                    if d == "." && !p.is_absolute() =>
                {
                    Some(p.clone())
                }
                Call::Mount { target, data, .. } => {
                    assert!(!target.starts_with(LAUNCHER_CWD), "{call:?}");
                    if data.as_deref().is_some_and(|d| d.contains("lowerdir=.")) {
                        assert!(cwd.is_some(), "{call:?} before any fchdir");
                    }
                    None
                }
                Call::PivotRoot(..) => {
                    assert_eq!(cwd.as_deref(), Some("/tmp/root"), "{call:?}");
                    None
                }
                _ => None,
            };
            assert_eq!(
                relative, None,
                "{step}: {call:?} resolves against the working directory"
            );
        }
        assert!(fchdirs > 1, "{name}: only pivot_root's fchdir");
    }

    /// Where `fchdir` is refused (no search permission on a layer's directory, rootless), the
    /// mount names the same directory by its `/proc/self/fd/N` link instead, and the launch
    /// goes on: an overlay's top layer, and a fresh file system's target.
    #[rstest]
    #[case::overlay_layer("/etc", |c: &Call| matches!(c, Call::Mount { fstype: Some(t), target, .. } if t == "overlay" && target == "/tmp/root/etc"))]
    #[case::target("/tmp/root/proc", |c: &Call| matches!(c, Call::Mount { fstype: Some(t), .. } if t == "proc"))]
    fn a_refused_fchdir_falls_back_to_the_link(
        #[case] dir: &'static str,
        #[case] is_its_mount: fn(&Call) -> bool,
    ) {
        let plan = plan_of("default", false);
        let fake = fake_for(&plan).fail_first(
            move |c| matches!(c, Call::Fchdir(d) if d == dir),
            Errno::EACCES,
        );
        let (end, _) = run_on(&fake, &plan);
        assert!(matches!(end, End::Ended(Ended::Exec(_))), "{end:?}");
        let calls = fake.calls();
        let at = calls
            .iter()
            .position(|c| c == &Call::Fchdir(dir.into()))
            .unwrap_or_else(|| panic!("no fchdir to {dir}: {calls:?}"));
        let mount = calls[at..].iter().find(|c| is_its_mount(c)).unwrap();
        let Call::Mount { target, data, .. } = mount else {
            unreachable!()
        };
        // The fake reads a link as the path its descriptor was opened as, and `.` as the
        // working directory: the one before the refused fchdir, which is not `dir`.
        if dir == "/etc" {
            let data = data.as_deref().unwrap_or_default();
            assert!(data.starts_with("lowerdir=/proc/self/fd/"), "{data}");
        } else {
            assert_eq!(target, dir);
        }
    }

    /// The shipped policies this file tests are all there are.
    #[test]
    fn every_shipped_policy_is_run() {
        let mut names: Vec<&str> = crate::policy::shipped::names().collect();
        names.sort_unstable();
        let mut tested = SHIPPED.to_vec();
        tested.sort_unstable();
        assert_eq!(names, tested);
    }
}
