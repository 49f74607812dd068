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

use super::error::{StepError, Syscall};
use super::report::{Enforced, LandlockReport};
use super::rootfs::{self, Staged};
use super::sync::{Channel, ToChild, ToParent};
use super::{Options, caps, environment, exec, landlock, lockdown, terminal};
use crate::plan::Plan;
use crate::plan::steps::Step;
use crate::sys::{Kernel, Linux};

/// Runs the sandbox's steps; never returns.
pub fn main(plan: &Plan, command: &[OsString], chan: Channel, opts: &Options) -> ! {
    // A panic must not unwind into the launcher's frames below this one: this process is a
    // copy of the launcher, and from step 11 on the descriptors those frames own are closed.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(&Linux, plan, command, &chan, opts)
    }));
    let Ok(Err(err)) = result else {
        crate::sys::exit_now(crate::error::exit::LAUNCH)
    };
    // If the supervisor is gone there is nobody to tell; the exit status still says 125.
    let _ = chan.send(&ToParent::Failed(err));
    crate::sys::exit_now(crate::error::exit::LAUNCH)
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
        Ok(None) => k.exit(crate::error::exit::LAUNCH),
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
) -> Result<Infallible, StepError> {
    let c = Child::start(k, plan, chan, opts)?; //       3: the parent wrote our id maps
    let c = c.build_root()?; //                          4: private propagation, overlay root
    let c = c.mount_all()?; //                           5: the policy's mounts, in order
    let c = c.pivot_root()?; //                          6: no path back to the host tree
    let c = c.environment()?; //                         7: hostname, rlimits, cwd
    let c = c.drop_privileges()?; //                     8: after the mounts needed CAP_SYS_ADMIN
    let c = c.no_new_privs()?; //                        9: Landlock and seccomp require it
    let c = c.landlock()?; //                           10: rules resolve in the new root
    let c = c.close_fds()?; //                          11: no host fd reaches the program
    let c = c.seccomp()?; //                            12: after the cgroup join; last
    Err(c.exec(command)) //                             13: execve, allowed by the filter
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
/// The root is staged.
pub struct RootBuilt(Staged);
/// The policy's mounts are in place.
pub struct Mounted(Staged);
/// The root is the sandbox's own.
pub struct Pivoted;
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
    /// Waits until the supervisor has written the id maps. Dies with the supervisor from here
    /// on.
    fn start(
        k: &'a dyn Kernel,
        plan: &'a Plan,
        chan: &'a Channel,
        opts: &'a Options,
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
        if let Some(ns) = &plan.userns {
            if ns.setup_as_root {
                let root = nix::unistd::Uid::from_raw(0);
                let rootg = nix::unistd::Gid::from_raw(0);
                k.setresgid(rootg, rootg, rootg)
                    .step(Step::IdMaps, || "setresgid(0, 0, 0)".into())?;
                k.setresuid(root, root, root)
                    .step(Step::IdMaps, || "setresuid(0, 0, 0)".into())?;
            }
        }
        Ok(Child {
            k,
            plan,
            chan,
            opts,
            tty: terminal::ProgramStdio::new(&opts.stdio),
            state: Mapped,
        })
    }

    fn build_root(self) -> Result<Child<'a, RootBuilt>, StepError> {
        self.enter(Step::Rootfs);
        let staged = rootfs::build_root(self.k, self.plan)?;
        Ok(self.then(|_| RootBuilt(staged)))
    }
}

impl<'a> Child<'a, RootBuilt> {
    fn mount_all(self) -> Result<Child<'a, Mounted>, StepError> {
        self.enter(Step::Mounts);
        let mut this = self;
        rootfs::mount_all(this.k, this.plan, &mut this.state.0)?;
        Ok(this.then(|RootBuilt(staged)| Mounted(staged)))
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
        rootfs::pivot(k, state.0)?;
        Ok(Child {
            k,
            plan,
            chan,
            opts,
            tty,
            state: Pivoted,
        })
    }
}

impl<'a> Child<'a, Pivoted> {
    fn environment(self) -> Result<Child<'a, Configured>, StepError> {
        self.enter(Step::Environment);
        let notes = environment::apply(self.k, self.plan)?;
        let mut this = self;
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
        if super::peer_gone(self.chan) {
            self.k.exit(crate::error::exit::LAUNCH);
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
        // The program must start inside its cgroups: the supervisor says Go once it has joined
        // us to the v1 hierarchies (it did that while we built the root).
        wait_for(self.k, self.chan, &ToChild::Go, Step::Seccomp)?;
        let installed = lockdown::seccomp(self.k, &self.plan.seccomp)?;
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
