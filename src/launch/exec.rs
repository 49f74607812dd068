//! Step 13: the program, and PID 1's minimal reaper.
//!
//! Unless the policy makes the program PID 1, the sandbox's first process stays behind as a
//! reaper: it starts the program's process (PID 2) with `clone(CLONE_VM | CLONE_VFORK)`, as
//! `posix_spawn` does (`sys::spawn`: no copy of the reaper's address space to make and throw
//! away at execve; a fork only if the policy's seccomp filter refuses that clone), forwards to
//! it the signals the supervisor sends, reaps every orphan, and reports the program's end over
//! the channel. A PID 1 only receives signals it has a handler for, so the forwarded ones get
//! an empty handler and stay blocked; they are taken from a signalfd. Signals the terminal
//! sends (si_code SI_KERNEL) already reached the program, which shares the foreground process
//! group, and are not forwarded twice. The program's process sets each handled signal back to
//! what the caller had before its execve — SIG_IGN where the caller ignored it (`nohup`, a
//! background job, systemd's SIGPIPE), SIG_DFL elsewhere: installing a handler returns the
//! disposition it replaces, and SIGCHLD's comes from `sys::inherited`.
//!
//! Ordering: the reaper's signal handlers and signalfd exist before the program's process, so
//! no end of the program goes unseen; it reports the program's end on the channel before it
//! exits, so the supervisor, which reads the channel to its end after reaping PID 1, always
//! has it.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::error::{StepError, Syscall};
use super::report::Ended;
use super::sync::{Channel, ToParent};
use super::terminal::ProgramStdio;
use crate::plan::Plan;
use crate::plan::steps::Step;
use crate::sys::{Disposition, Kernel};

/// Signals the supervisor and the reaper forward to the program by name: the ones a user, a
/// shell or a service manager sends to stop, reload or poke a program. Every real-time signal
/// is forwarded too ([`forwarded`]). Not forwarded, as in tini: SIGKILL and SIGSTOP (nobody
/// can catch them), SIGCHLD (the supervisor's own), the job-control signals SIGTSTP, SIGTTIN,
/// SIGTTOU and SIGCONT (the terminal's business), and the ones the kernel raises at a thread
/// for what it did itself (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS, SIGABRT) or for
/// the launcher's own output and limits (SIGPIPE, SIGXFSZ, SIGXCPU).
const FORWARDED_NAMED: [libc::c_int; 14] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGALRM,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGURG,
    libc::SIGIO,
    libc::SIGPWR,
    libc::SIGSTKFLT,
];

/// Every signal forwarded to the program, as raw numbers: `FORWARDED_NAMED` and glibc's
/// real-time signals, SIGRTMIN..=SIGRTMAX (what `kill -s RTMIN+3` means; 32 and 33 are
/// glibc's own and no program of it can use them). nix's `Signal` can name none of the
/// real-time ones, so signals are kept as numbers from the signalfd to `kill`.
pub fn forwarded() -> impl Iterator<Item = libc::c_int> {
    FORWARDED_NAMED
        .into_iter()
        .chain(libc::SIGRTMIN()..=libc::SIGRTMAX())
}

/// The forwarded signals and SIGCHLD.
pub fn handled() -> Vec<libc::c_int> {
    forwarded().chain([libc::SIGCHLD]).collect()
}

/// The set of the handled signals, for the signalfd and the signal mask.
pub fn handled_set() -> nix::Result<SigSet> {
    crate::sys::signal_set(&handled())
}

/// Nothing blocked: the program starts with an empty signal mask, as it would from a shell.
fn unblock_all() -> Result<(), StepError> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .step(Step::Exec, || "sigprocmask(SIG_SETMASK, {})".into())
}

/// Was this signal sent by a process (kill, sigqueue, tgkill) rather than the kernel/terminal?
pub fn sent_by_process(code: i32) -> bool {
    code == libc::SI_USER || code == libc::SI_QUEUE || code == libc::SI_TKILL
}

/// Step 13: runs the program, as PID 1 or under the reaper. Returns only on failure.
pub fn spawn(
    k: &dyn Kernel,
    plan: &Plan,
    command: &[OsString],
    chan: &Channel,
    tty: ProgramStdio,
) -> StepError {
    if plan.as_pid_1 {
        // The supervisor's blocked signals came along through clone; a program that is PID 1
        // handles its own, and must get what the supervisor forwards. Its dispositions are the
        // supervisor's, which are the caller's but for SIGCHLD (`main` undid an ignored one).
        let ready = crate::sys::inherited::restore_sigchld()
            .step(Step::Exec, || "sigaction(SIGCHLD, SIG_IGN)".into())
            .and_then(|()| unblock_all())
            .and_then(|()| tty.attach());
        if let Err(e) = ready {
            return e;
        }
        return exec_program(k, plan, command, chan);
    }
    if let Err(e) = reaper(k, plan, command, chan, tty) {
        return e;
    }
    StepError::msg(Step::Exec, "the reaper returned")
}

fn reaper(
    k: &dyn Kernel,
    plan: &Plan,
    command: &[OsString],
    chan: &Channel,
    tty: ProgramStdio,
) -> Result<(), StepError> {
    let step = Step::Exec;
    let handled = handled();
    // What the program's process sets each handled signal back to before its execve: what the
    // caller had. The handler's install returns the disposition it replaced, which is the
    // caller's for every signal but SIGCHLD, whose caller's disposition was recorded before
    // `main` made it the default (`sys::inherited`).
    let mut resets = Vec::with_capacity(handled.len());
    for &s in &handled {
        let replaced =
            crate::sys::set_noop_handler(s).step(step, || format!("sigaction({s}, noop)"))?;
        resets.push((s, crate::sys::inherited::recorded(s).unwrap_or(replaced)));
    }
    let set = handled_set().step(step, || "sigaddset(forwarded signals)".into())?;
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC)
        .step(step, || "signalfd(forwarded signals)".into())?;
    let program = match spawn_shared(plan, command, chan, &tty, &resets)? {
        Some(program) => {
            // Only the program holds its terminal: when it exits, the supervisor sees the end.
            drop(tty);
            program
        }
        // No process was made (a policy's seccomp filter may refuse the clone): fork.
        None => fork_program(k, plan, command, chan, tty, &resets)?,
    };
    chan.send(&ToParent::Execed)
        .step(step, || "write(channel, execed)".into())?;
    // PID 1's loop: no polling, no sleeping — one blocking read per event.
    loop {
        let info = match sfd.read_signal() {
            Ok(Some(i)) => i,
            Ok(None) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(StepError::sys(step, "read(signalfd)", e)),
        };
        let signo = i32::try_from(info.ssi_signo).unwrap_or(0);
        if signo == libc::SIGCHLD {
            loop {
                // Raw statuses: a program a real-time signal killed ends as 128 + its number.
                match crate::sys::wait_nohang(None) {
                    Ok(None) | Err(Errno::ECHILD) => break,
                    Ok(Some((pid, end))) if pid == program => {
                        if let Some(ended) = Ended::of_end(end) {
                            finish(chan, ended);
                        }
                    }
                    // An orphan: reap on.
                    Ok(_) => continue,
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(StepError::sys(step, "waitpid(-1, WNOHANG)", e)),
                }
            }
        } else if sent_by_process(info.ssi_code) && is_supervisor(info.ssi_pid) {
            match crate::sys::send_signal(program, signo) {
                // ESRCH: the program is already gone; the next SIGCHLD tells.
                Ok(()) | Err(Errno::ESRCH) => {}
                // A seccomp rule of the policy may deny the reaper's kill (a `deny` of
                // real-time signals): the program then can't be sent it by anyone inside, as
                // the policy asked, and PID 1 has no one to tell but the program's own stderr.
                Err(_) => {}
            }
        }
    }
}

/// Starts the program's process with `clone(CLONE_VM | CLONE_VFORK)` on a stack of its own,
/// as `posix_spawn` does ([`crate::sys::spawn`]): no copy of the reaper's address space to
/// make, fault in and throw away at execve. Returns once the program runs (or its process
/// has ended, after telling the supervisor why, as [`exec_program`] does: `ExecFailed`, or
/// `Failed` for a call before execve). `None`: no process was made — the stack couldn't be
/// mapped or the clone was refused (by a policy's seccomp filter, say) — and the caller forks.
fn spawn_shared(
    plan: &Plan,
    command: &[OsString],
    chan: &Channel,
    tty: &ProgramStdio,
    resets: &[(libc::c_int, Disposition)],
) -> Result<Option<nix::unistd::Pid>, StepError> {
    use crate::sys::spawn::{Codes, Image, Spawned};
    let step = Step::Exec;
    // Decided first, by the plan (its filters, installed by now, were run through the BPF
    // interpreter when it was compiled): where the fork follows, nothing below would be used.
    if !plan.seccomp.spawn_clone {
        return Ok(None);
    }
    let Prepared {
        program,
        argv,
        env,
        candidates,
    } = prepare(plan, command)?;
    let null = if tty.needs_null() {
        Some(
            nix::fcntl::open(
                "/dev/null",
                nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .step(step, || "open(\"/dev/null\")".into())?,
        )
    } else {
        None
    };
    let stdio = tty.raw(null.as_ref().map(std::os::fd::AsFd::as_fd))?;
    let codes = Codes {
        not_found: crate::exit::NOT_FOUND,
        not_executable: crate::exit::NOT_EXECUTABLE,
        setup: crate::exit::LAUNCH,
    };
    let mut image = Image::new(
        candidates,
        argv,
        env,
        &pid_vars(plan),
        resets.to_vec(),
        stdio,
        codes,
    )
    .map_err(|_| StepError::msg(step, NUL_BYTE))?;
    let spawned = match image.spawn() {
        Ok(s) => s,
        Err(_) => return Ok(None),
    };
    match spawned {
        Spawned::Running(pid) => Ok(Some(pid)),
        Spawned::ExecFailed(pid, errno) => {
            // The process exited with 127 or 126: its end is reported as the program's.
            let _ = chan.send(&ToParent::ExecFailed {
                program: program.to_string_lossy().into_owned(),
                errno: errno as i32,
            });
            Ok(Some(pid))
        }
        Spawned::Failed(pid, call, errno) => {
            // As the forked process would have (`main`'s `Failed`); it exited with 125.
            let _ = chan.send(&ToParent::Failed(StepError::sys(
                step,
                call.describe(),
                errno,
            )));
            Ok(Some(pid))
        }
    }
}

/// The fallback: forks the program's process and returns, in the reaper, once its execve
/// succeeded or it ended; in the forked process, returns only the error of a step before
/// execve (an exec failure has been told and exits there).
fn fork_program(
    k: &dyn Kernel,
    plan: &Plan,
    command: &[OsString],
    chan: &Channel,
    tty: ProgramStdio,
    resets: &[(libc::c_int, Disposition)],
) -> Result<nix::unistd::Pid, StepError> {
    let step = Step::Exec;
    // Closes when the program's execve succeeds (or its process ends): the reaper then says
    // `Execed`; a failure was said on the channel before (`ExecFailed`, `Failed`).
    let (exec_r, exec_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .step(step, || "pipe2(O_CLOEXEC)".into())?;
    let Some(program) = crate::sys::fork().step(step, || "fork()".into())? else {
        drop(exec_r);
        let e = run_program(k, plan, command, chan, tty, resets);
        // Left open until this process exits, which is after its error is on the channel
        // (exec_program sent ExecFailed; the caller sends Failed): the reaper must not say
        // Execed before it.
        std::mem::forget(exec_w);
        return Err(e);
    };
    // Only the program holds its terminal: when it exits, the supervisor sees the end.
    drop((tty, exec_w));
    // Signals and the program's end wait in the signalfd meanwhile.
    loop {
        match nix::unistd::read(&exec_r, &mut [0u8; 1]) {
            Ok(0) => break,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(StepError::sys(step, "read(exec pipe)", e)),
        }
    }
    Ok(program)
}

/// The program's process, forked by the reaper: the caller's dispositions, nothing blocked,
/// dies with the reaper, then exec. Returns only on failure.
fn run_program(
    k: &dyn Kernel,
    plan: &Plan,
    command: &[OsString],
    chan: &Channel,
    tty: ProgramStdio,
    resets: &[(libc::c_int, Disposition)],
) -> StepError {
    let step = Step::Exec;
    for &(s, to) in resets {
        if let Err(e) = crate::sys::set_disposition(s, to) {
            let to = match to {
                Disposition::Default => "SIG_DFL",
                Disposition::Ignore => "SIG_IGN",
            };
            return StepError::sys(step, format!("sigaction({s}, {to})"), e);
        }
    }
    let ready = unblock_all()
        .and_then(|()| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                .step(step, || "prctl(PR_SET_PDEATHSIG, SIGKILL)".into())
        })
        .and_then(|()| tty.attach());
    if let Err(e) = ready {
        return e;
    }
    // Its slots are in place; the descriptors they came from close before exec.
    drop(tty);
    exec_program(k, plan, command, chan)
}

/// Signals from outside the sandbox's pid namespace carry pid 0; without a pid namespace the
/// supervisor is the reaper's parent.
fn is_supervisor(pid: u32) -> bool {
    pid == 0 || i32::try_from(pid).ok() == Some(nix::unistd::getppid().as_raw())
}

/// Reports the program's end and exits PID 1 (which ends the pid namespace).
fn finish(chan: &Channel, ended: Ended) -> ! {
    // If the supervisor is gone there is no one left to tell; exit regardless.
    let _ = chan.send(&ToParent::ProgramExited(ended));
    crate::sys::exit_now(0)
}

/// What a NUL byte inside an argument or variable makes of the launch.
const NUL_BYTE: &str = "an argument or environment entry contains a NUL byte";

/// The program's command line, environment (without the pid variables) and the paths to try.
struct Prepared<'a> {
    program: &'a OsString,
    argv: Vec<Vec<u8>>,
    /// `NAME=VALUE`.
    env: Vec<Vec<u8>>,
    /// The program itself if it names a path, else each of the sandbox's PATH entries with it.
    candidates: Vec<Vec<u8>>,
}

fn prepare<'a>(plan: &Plan, command: &'a [OsString]) -> Result<Prepared<'a>, StepError> {
    let Some(program) = command.first() else {
        return Err(StepError::msg(Step::Exec, "no program given"));
    };
    let argv = command.iter().map(|a| a.as_bytes().to_vec()).collect();
    let env = plan
        .env
        .vars
        .iter()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            kv
        })
        .collect();
    let candidates: Vec<Vec<u8>> = if program.as_bytes().contains(&b'/') {
        vec![program.as_bytes().to_vec()]
    } else {
        let path = plan
            .env
            .vars
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_bytes().to_vec())
            .unwrap_or_else(|| crate::plan::DEFAULT_PATH.as_bytes().to_vec());
        path.split(|b| *b == b':')
            .map(|dir| {
                let dir = if dir.is_empty() { b"." as &[u8] } else { dir };
                let mut p = dir.to_vec();
                p.push(b'/');
                p.extend_from_slice(program.as_bytes());
                p
            })
            .collect()
    };
    Ok(Prepared {
        program,
        argv,
        env,
        candidates,
    })
}

/// systemd's LISTEN_PID and WATCHDOG_PID name the program, as it sees itself.
fn pid_vars(plan: &Plan) -> Vec<&'static str> {
    let mut vars = Vec::new();
    if plan.systemd.listen_fds > 0 {
        vars.push("LISTEN_PID");
    }
    if plan.systemd.watchdog {
        vars.push("WATCHDOG_PID");
    }
    vars
}

/// execve the program, searching the sandbox's PATH. Returns only on failure, after telling
/// the supervisor.
fn exec_program(k: &dyn Kernel, plan: &Plan, command: &[OsString], chan: &Channel) -> StepError {
    let step = Step::Exec;
    let Prepared {
        program,
        argv,
        mut env,
        candidates,
    } = match prepare(plan, command) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let me = nix::unistd::getpid().to_string();
    for name in pid_vars(plan) {
        env.push(format!("{name}={me}").into_bytes());
    }
    let argv: Result<Vec<CString>, _> = argv.into_iter().map(CString::new).collect();
    let envp: Result<Vec<CString>, _> = env.into_iter().map(CString::new).collect();
    let (Ok(argv), Ok(envp)) = (argv, envp) else {
        return StepError::msg(step, NUL_BYTE);
    };
    let mut decisive = Errno::ENOENT;
    for c in candidates {
        let Ok(path) = CString::new(c) else { continue };
        let e = k.execve(&path, &argv, &envp);
        // As a shell does: a candidate that exists but can't run beats one that does not exist.
        match e {
            Errno::ENOENT | Errno::ENOTDIR => {}
            Errno::EACCES => decisive = Errno::EACCES,
            other => {
                decisive = other;
                break;
            }
        }
    }
    let _ = chan.send(&ToParent::ExecFailed {
        program: program.to_string_lossy().into_owned(),
        errno: decisive as i32,
    });
    let code = if decisive == Errno::ENOENT {
        crate::exit::NOT_FOUND
    } else {
        crate::exit::NOT_EXECUTABLE
    };
    k.exit(code)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    /// What a user or service manager sends is forwarded, real-time signals included; what
    /// can't be caught, what the supervisor needs itself and what the kernel raises at the
    /// launcher for its own doing is not.
    #[rstest]
    #[case::term(libc::SIGTERM, true)]
    #[case::hup(libc::SIGHUP, true)]
    #[case::usr2(libc::SIGUSR2, true)]
    #[case::alrm(libc::SIGALRM, true)]
    #[case::stkflt(libc::SIGSTKFLT, true)]
    #[case::rtmin(libc::SIGRTMIN(), true)]
    #[case::rtmin_3(libc::SIGRTMIN() + 3, true)]
    #[case::rtmax(libc::SIGRTMAX(), true)]
    #[case::glibc_own(32, false)]
    #[case::kill(libc::SIGKILL, false)]
    #[case::stop(libc::SIGSTOP, false)]
    #[case::chld(libc::SIGCHLD, false)]
    #[case::tstp(libc::SIGTSTP, false)]
    #[case::cont(libc::SIGCONT, false)]
    #[case::pipe(libc::SIGPIPE, false)]
    #[case::segv(libc::SIGSEGV, false)]
    fn forwarded_signals(#[case] signo: i32, #[case] want: bool) {
        assert_eq!(forwarded().any(|s| s == signo), want, "signal {signo}");
    }

    /// The compiled plan of a policy, shipped or written here, for a rootless caller.
    fn plan_of(shipped: Option<&'static str>, yaml: &str) -> Plan {
        use crate::caller::Caller;
        use crate::policy::PolicySource;
        let caller = Caller {
            pwd: "/usr".into(),
            ..Caller::for_tests()
        };
        let dir = std::env::temp_dir().join(format!(
            "kekkai-exec-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let source = match shipped {
            Some(name) => PolicySource::Shipped(name),
            None => {
                std::fs::create_dir_all(&dir).unwrap();
                let file = dir.join("p.yaml");
                std::fs::write(&file, yaml).unwrap();
                PolicySource::File(file)
            }
        };
        let loaded = crate::policy::load(&source, &caller).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        crate::plan::compile(&loaded, &caller).unwrap()
    }

    /// The reaper's clone (CLONE_VM | CLONE_VFORK) is tried only where the policy's filters
    /// allow it: every shipped policy does; one that denies it, with an errno or by killing,
    /// or allows only a fork's flags, gets the fork.
    #[rstest]
    #[case::default(Some("default"), "", true)]
    #[case::untrusted(Some("untrusted"), "", true)]
    #[case::service(Some("service"), "", true)]
    #[case::python(Some("python"), "", true)]
    #[case::node(Some("node"), "", true)]
    #[case::build(Some("build"), "", true)]
    #[case::log(None, "version: 1\nextends: default\nseccomp: { preset: log }\n", true)]
    #[case::errno(
        None,
        "version: 1\nextends: default\nseccomp:\n  deny: [{ syscall: clone, args: [{ arg: 0, width: 64, mask: 0x4000, eq: 0x4000 }], action: errno(EPERM) }]\n",
        false
    )]
    #[case::kill(
        None,
        "version: 1\nextends: default\nseccomp:\n  deny: [{ syscall: clone, args: [{ arg: 0, width: 64, mask: 0x100, eq: 0x100 }], action: kill }]\n",
        false
    )]
    #[case::fork_only(
        None,
        "version: 1\nextends: default\nseccomp:\n  preset: empty\n  default-action: kill\n  allow: [execve, { syscall: clone, args: [{ arg: 0, width: 64, eq: 0x1200011 }] }]\n",
        false
    )]
    #[case::vfork_only(
        None,
        "version: 1\nextends: default\nseccomp:\n  preset: empty\n  default-action: kill\n  allow: [execve, { syscall: clone, args: [{ arg: 0, width: 64, eq: 0x4111 }] }]\n",
        true
    )]
    fn the_clone_is_tried_only_where_the_filters_allow_it(
        #[case] shipped: Option<&'static str>,
        #[case] yaml: &str,
        #[case] want: bool,
    ) {
        let plan = plan_of(shipped, yaml);
        assert_eq!(plan.seccomp.spawn_clone, want);
        // What the plan says is what its filters answer.
        assert_eq!(
            crate::plan::seccomp::allows_spawn_clone(&plan.seccomp.filters),
            want
        );
    }

    /// A record that lacks the clone's answer (a kekkai before it was recorded) forks.
    #[test]
    fn a_record_without_the_clones_answer_forks() {
        let plan = plan_of(Some("default"), "");
        assert!(plan.seccomp.spawn_clone);
        let mut record: serde_json::Value =
            serde_json::from_slice(&plan.to_record().unwrap()).unwrap();
        let removed = record["plan"]["seccomp"]
            .as_object_mut()
            .and_then(|s| s.remove("spawn_clone"));
        assert_eq!(removed, Some(serde_json::Value::Bool(true)));
        let back = Plan::from_record(&serde_json::to_vec(&record).unwrap()).unwrap();
        assert!(!back.seccomp.spawn_clone);
    }

    /// The handled set holds real-time signals, which nix's `SigSet::add` can't name.
    #[test]
    fn the_handled_set_holds_real_time_signals() {
        let set = handled_set().unwrap();
        for signo in [libc::SIGRTMIN() + 3, libc::SIGRTMAX(), libc::SIGCHLD] {
            assert!(crate::sys::signal_set_has(&set, signo), "signal {signo}");
        }
        assert!(!crate::sys::signal_set_has(&set, libc::SIGKILL));
    }
}
