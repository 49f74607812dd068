//! What `kekkai audit -p POLICY` lets its own harness do beyond the policy, and how the probes
//! are judged anyway as the program gets the policy.
//!
//! The battery is a program of its own: it must start (the C library's and Rust's start-up),
//! fork a process per probe, talk to it through a pipe and wait for it. A policy that allows
//! only what one program does (`kekkai learn`'s: seccomp `preset: empty`, Landlock
//! `from-mounts: false`) does not allow that, so `kekkai __run-plan --audit-harness` (what the audit
//! starts; the flag is hidden) widens the compiled plan by exactly what is missing of
//! [`HARNESS`] and of the probe's own files, nothing else, and the audit's report lists it
//! ("the audit allowed its harness: …"). For a policy that allows it all already (every shipped
//! one), nothing changes.
//!
//! - **Landlock**: read and execute on the probe's copy, [`PROBE_PATH`] — a file rule, so that no
//!   other file gains a right. A dynamically linked probe starts through a copy of its loader and
//!   libraries bound at [`LIB_PATH`] (the image path of [`super::portable`]): that directory
//!   holds nothing but those copies, and gets read and execute.
//! - **seccomp**: the calls of [`HARNESS`], each with the argument values the harness uses where
//!   they are constant (the fork's clone flags, the pipe's flags, the watchdog's alarm), each
//!   added only when the policy's own filter stack (run by [`interp`]) denies it.
//! - **timeout**: at least [`MIN_TIMEOUT`]: the battery is not the program whose run time a
//!   learned timeout measured.
//!
//! A probe must never pass or fail because of that widening. Two cases:
//!
//! - Calls the file probes make too (`openat`, `read`, `execve`: nearly every probe opens or
//!   executes something) are in [`REQUIRED`]: never added. If the policy denies one, the audit
//!   refuses to run rather than judge the file probes under a filter the program does not get.
//!   Every program that starts needs them, so a working policy allows them.
//! - A probe whose attempt is a call the harness may add ([`PROBE_TARGETS`]: the fork bomb's
//!   fork, the memory probe's mmap, the tmpfs probe's write) is judged against the policy's own
//!   filter stack with the BPF interpreter, on the exact call the probe makes: when the policy's
//!   filter denies it, the verdict is the policy's answer, whatever the widened filter let the
//!   probe do. The interpreter is the same one the seccomp tests prove the compiled programs
//!   with (it follows the kernel's, action cache aside), and the plan holds the programs the
//!   sandbox installs.
//!
//! Why not install the policy's exact filter in each probe's process before its attempt: the
//! probe must still report (write to the pipe, allocate, exit), and several attempts need
//! helpers of their own (a fork to execute a file, a pipe to hear whether the exec worked);
//! under the exact filter those would fail, and a probe whose helper is denied would read as
//! blocked although the program could make the call itself — a false pass. The interpreter
//! judges the one call that matters and nothing else.

use std::path::Path;

use super::PROBE_PATH;
use super::portable::LIB_PATH;
use super::report::{AuditReport, Summary, Verdict};
use crate::plan::landlock::{PathRule, access, allows};
use crate::plan::seccomp::{Cond, Match, Op, interp};
use crate::plan::{Plan, names};

/// One call of the harness, with the argument values it always uses (`(argument, value,
/// width)`: an `int` argument is compared on its low 32 bits, whose upper half the caller
/// need not clear; several entries of one syscall are alternatives).
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// The syscall's name.
    pub syscall: &'static str,
    /// Arguments whose values are constant.
    pub args: &'static [(u8, u64, u8)],
    /// Who makes it.
    pub why: &'static str,
}

const fn call(syscall: &'static str, why: &'static str) -> Call {
    Call {
        syscall,
        args: &[],
        why,
    }
}

/// `CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID | SIGCHLD`: glibc's fork.
pub const FORK_FLAGS: u64 = 0x0120_0011;

/// Everything the battery's harness calls (as the static probe does, and a dynamic one through
/// its copied loader: `strace -f kekkai-audit-probe --context …` shows them). The audit adds an
/// entry only where the policy's own filter denies it.
pub const HARNESS: &[Call] = &[
    // The C library's start-up (static-pie glibc, or the copied loader and libc).
    call("brk", "the C library's heap"),
    Call {
        syscall: "arch_prctl",
        args: &[(0, 0x1002, 32)], // ARCH_SET_FS (an int): the thread pointer
        why: "the C library's thread-local storage",
    },
    call("set_tid_address", "the C library's start-up"),
    call(
        "set_robust_list",
        "the C library's start-up, and fork's child",
    ),
    call("rseq", "the C library's start-up (restartable sequences)"),
    Call {
        syscall: "prlimit64",
        args: &[(0, 0, 32), (2, 0, 64)], // this process (a pid_t), no new limit (NULL)
        why: "the C library and Rust read the stack limit",
    },
    call("readlink", "the C library's start-up (/proc/self/exe)"),
    call(
        "mprotect",
        "the loader and the C library (RELRO, guard pages)",
    ),
    call("mmap", "the loader, the allocator and the signal stack"),
    call("munmap", "the allocator and the signal stack"),
    call("newfstatat", "the loader and Rust (fstat of an open file)"),
    call(
        "close",
        "closing the files and the pipe ends the harness opened",
    ),
    // Rust's runtime.
    call(
        "poll",
        "Rust's start-up checks that descriptors 0-2 are open",
    ),
    call(
        "rt_sigaction",
        "Rust's start-up (SIGPIPE, stack-overflow handlers)",
    ),
    call("sigaltstack", "Rust's stack-overflow handler"),
    call("sched_getaffinity", "Rust's start-up"),
    call("gettid", "Rust's start-up"),
    Call {
        syscall: "getrandom",
        args: &[(2, 1, 32)], // GRND_NONBLOCK (an unsigned int)
        why: "Rust's hash map keys",
    },
    // The battery: its descriptors, its own directory, its pid.
    Call {
        syscall: "fcntl",
        args: &[(1, 2, 32)], // F_SETFD (an int)
        why: "the battery lists its descriptors (/proc/self/fd)",
    },
    Call {
        syscall: "fcntl",
        args: &[(1, 3, 32)], // F_GETFL (an int)
        why: "the battery lists its descriptors (/proc/self/fd)",
    },
    call(
        "getdents64",
        "the battery lists its descriptors and its own directory",
    ),
    call("lseek", "the battery lists its descriptors"),
    call("getpid", "the battery's own pid"),
    call("mkdir", "the battery's own temporary directory"),
    call("statx", "removing the battery's own temporary directory"),
    Call {
        syscall: "unlinkat",
        args: &[(2, 0x200, 32)], // AT_REMOVEDIR (an int)
        why: "removing the battery's own temporary directory",
    },
    // Each probe in a process of its own.
    Call {
        syscall: "pipe2",
        args: &[(1, 0x80000, 32)], // O_CLOEXEC (an int)
        why: "the pipe a probe reports through",
    },
    Call {
        syscall: "clone",
        args: &[(0, FORK_FLAGS, 64)], // an unsigned long, as `kekkai learn` writes it
        why: "the fork of each probe's process",
    },
    Call {
        syscall: "alarm",
        args: &[(0, super::inside::HANG_WATCHDOG_SECS as u64, 32)], // an unsigned int
        why: "each probe's hang watchdog",
    },
    call("write", "a probe's report, the battery's JSON lines"),
    call("wait4", "waiting for each probe's process"),
    Call {
        syscall: "kill",
        args: &[(1, 9, 32)], // SIGKILL (process.kill-host-pid sends signal 0)
        why: "the probes' helpers stop what they started (the fork bomb's children, an exec that worked)",
    },
    Call {
        syscall: "ioctl",
        args: &[(1, 0x8004_5432, 32)], // TIOCGDEV
        why: "the terminal probes tell which terminal /dev/tty is",
    },
    call(
        "exit_group",
        "the end of each probe's process and of the battery",
    ),
    // kekkai's own exec step for the second run, whose stdin is the audit's terminal.
    Call {
        syscall: "dup2",
        args: &[(1, 0, 32)],
        why: "kekkai puts the audit's terminal on the program's stdin (the terminal probes' run)",
    },
    Call {
        syscall: "dup2",
        args: &[(1, 1, 32)],
        why: "kekkai puts the audit's terminal on the program's stdout (the terminal probes' run)",
    },
    Call {
        syscall: "dup2",
        args: &[(1, 2, 32)],
        why: "kekkai puts the audit's terminal on the program's stderr (the terminal probes' run)",
    },
    Call {
        syscall: "ioctl",
        args: &[(1, 0x540E, 32), (2, 0, 64)], // TIOCSCTTY (32 bits, as the presets compare requests), 0: no steal
        why: "kekkai makes the audit's terminal the controlling one (the terminal probes' run)",
    },
];

/// Calls the harness needs that the probes attempt too: never added (see the module doc). A
/// policy that denies one can't be audited faithfully, and the audit says so.
pub const REQUIRED: &[Call] = &[
    call(
        "execve",
        "starting the probe; the file probes execute files",
    ),
    call(
        "openat",
        "the loader and the battery open files; the file probes open files",
    ),
    call(
        "read",
        "the loader, the pipe of each probe; the file probes read files",
    ),
];

/// The probes whose attempt is one call the harness may add, with that call's arguments
/// (pointers as 0: no filter can look at what they point to). These are judged against the
/// policy's own filter ([`rejudge`]).
pub const PROBE_TARGETS: &[(&str, &str, [u64; 6])] = &[
    // fork until the pids limit
    ("resources.fork-bomb", "clone", [FORK_FLAGS, 0, 0, 0, 0, 0]),
    // mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
    (
        "resources.memory",
        "mmap",
        [0, 1 << 20, 3, 0x22, u64::MAX, 0],
    ),
    // write(fd, block, 1 MiB) until the tmpfs is full
    ("resources.tmpfs-fill", "write", [3, 0, 1 << 20, 0, 0, 0]),
];

/// AUDIT_ARCH_X86_64.
const ARCH: u32 = 0xC000_003E;

/// The shortest timeout the battery runs under (the `untrusted` policy's): a policy's shorter
/// one is raised to it. The timeout is no layer a probe tests, and the battery takes longer
/// than a learned program's run; each probe keeps its own hang watchdog.
pub const MIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// What the harness was allowed beyond the policy, as the run applied it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Widening {
    /// Landlock rules added, shown (`read+execute on /.kekkai-audit-probe (a file)`).
    pub landlock: Vec<String>,
    /// Syscalls added, shown with their argument conditions (`clone(arg0 == 0x1200011)`).
    pub syscalls: Vec<String>,
    /// The names of the syscalls added (for [`rejudge`]).
    pub syscall_names: Vec<String>,
    /// The policy's timeout, raised to [`MIN_TIMEOUT`] (shown), if it was shorter.
    #[serde(default)]
    pub timeout: Option<String>,
}

impl Widening {
    /// Nothing was added.
    pub fn is_empty(&self) -> bool {
        self.landlock.is_empty() && self.syscalls.is_empty() && self.timeout.is_none()
    }

    /// The report's note.
    pub fn note(&self) -> String {
        let mut parts = Vec::new();
        if !self.landlock.is_empty() {
            parts.push(format!("Landlock {}", self.landlock.join(", ")));
        }
        if !self.syscalls.is_empty() {
            parts.push(format!("syscalls {}", self.syscalls.join(", ")));
        }
        if let Some(t) = &self.timeout {
            parts.push(format!(
                "a timeout of {}s instead of {t}",
                MIN_TIMEOUT.as_secs()
            ));
        }
        format!(
            "the audit allowed its harness what the policy does not: {} (only the battery's own start-up, forks, pipes and waits; the probes whose attempt is one of these calls are judged against the policy's own filter)",
            parts.join("; ")
        )
    }
}

/// The argument words of a call of the harness (what is not constant: 0).
fn words(c: &Call) -> [u64; 6] {
    let mut a = [0u64; 6];
    for (i, v, _) in c.args {
        if let Some(w) = a.get_mut(usize::from(*i)) {
            *w = *v;
        }
    }
    a
}

/// Does the plan's filter stack allow `nr` with `args`? (`Err`: a program the interpreter can't
/// run, which compile never makes.)
fn allowed(plan: &Plan, nr: i64, args: [u64; 6]) -> Result<bool, String> {
    let ret = answer(plan, nr, args)?;
    Ok(interp::action_of(ret) >= interp::action_of(libc::SECCOMP_RET_LOG))
}

/// The plan's filter stack's answer to `nr` with `args`, as the kernel computes it.
fn answer(plan: &Plan, nr: i64, args: [u64; 6]) -> Result<u32, String> {
    let data = interp::SeccompData {
        nr: i32::try_from(nr).map_err(|_| format!("syscall number {nr}"))?,
        arch: ARCH,
        instruction_pointer: 0,
        args,
    };
    interp::exec_stack(&plan.seccomp.filters, &data.bytes()).map_err(|e| format!("{e:?}"))
}

fn shown(c: &Call) -> String {
    if c.args.is_empty() {
        return c.syscall.to_owned();
    }
    let conds: Vec<String> = c
        .args
        .iter()
        .map(|(i, v, _)| format!("arg{i} == {v:#x}"))
        .collect();
    format!("{}({})", c.syscall, conds.join(", "))
}

/// Widens `plan` by what of the harness it does not allow already (see the module doc), and
/// returns what was added. Fails, naming the call, when the policy denies a call of
/// [`REQUIRED`], or when its own deny rules still deny a call after the widening.
pub fn widen(plan: &mut Plan) -> Result<Widening, String> {
    let mut w = Widening::default();
    if let Some(t) = plan.timeout.filter(|t| *t < MIN_TIMEOUT) {
        w.timeout = Some(format!("{}s", t.as_secs_f64()));
        plan.timeout = Some(MIN_TIMEOUT);
    }
    if plan.landlock.enabled {
        let mut file = |path: &str, rights: u64, what: &str, w: &mut Widening| {
            if !allows(&plan.landlock, Path::new(path), rights) {
                plan.landlock.rules.push(PathRule {
                    path: path.into(),
                    access: rights,
                    from: format!("kekkai audit's harness ({what})"),
                });
                w.landlock
                    .push(format!("{} on {path} ({what})", access::summary(rights)));
            }
        };
        file(
            PROBE_PATH,
            access::READ_FILE | access::EXECUTE,
            "the probe's copy, a file",
            &mut w,
        );
        if plan.mounts.iter().any(|m| m.target == Path::new(LIB_PATH)) {
            file(
                LIB_PATH,
                access::READ | access::EXECUTE,
                "the probe's copied loader and libraries",
                &mut w,
            );
        }
    }
    if plan.seccomp.filters.is_empty() {
        return Ok(w);
    }
    for c in REQUIRED {
        let nr = names::syscall_number(c.syscall).unwrap_or(-1);
        if !allowed(plan, nr, words(c))? {
            return Err(format!(
                "the policy denies `{}`, which the probe battery needs ({}): the audit would have to allow it, and then judge the probes that make it under a filter the program does not get",
                c.syscall, c.why
            ));
        }
    }
    for c in HARNESS {
        let nr = names::syscall_number(c.syscall).unwrap_or(-1);
        if allowed(plan, nr, words(c))? {
            continue;
        }
        let when = if c.args.is_empty() {
            Match::Always
        } else {
            Match::When(vec![
                c.args
                    .iter()
                    .map(|(i, v, width)| Cond {
                        arg: *i,
                        width32: *width == 32,
                        op: Op::Eq,
                        value: *v,
                    })
                    .collect(),
            ])
        };
        plan.seccomp.allow_also(nr, when)?;
        if !allowed(plan, nr, words(c))? {
            return Err(format!(
                "the policy's deny rules deny `{}`, which the probe battery needs ({})",
                shown(c),
                c.why
            ));
        }
        w.syscalls.push(shown(c));
        if !w.syscall_names.iter().any(|n| n == c.syscall) {
            w.syscall_names.push(c.syscall.to_owned());
        }
    }
    Ok(w)
}

/// Judges the probes of [`PROBE_TARGETS`] whose call the harness added against the policy's
/// own filter stack (`plan`: compiled without the widening): when it denies the call, the
/// verdict is blocked with its answer, whatever the probe saw under the widened filter.
pub fn rejudge(report: &mut AuditReport, plan: &Plan, added: &[String]) {
    for (probe, syscall, args) in PROBE_TARGETS {
        if !added.iter().any(|a| a == syscall) {
            continue;
        }
        let Some(p) = report.probes.iter_mut().find(|p| p.name == *probe) else {
            continue;
        };
        let nr = names::syscall_number(syscall).unwrap_or(-1);
        let detail = match answer(plan, nr, *args) {
            Ok(ret) if interp::action_of(ret) >= interp::action_of(libc::SECCOMP_RET_LOG) => {
                continue;
            }
            Ok(ret) => describe(ret),
            Err(e) => {
                p.verdict = Verdict::Error;
                p.detail = format!("could not run the policy's filter on {syscall}: {e}");
                continue;
            }
        };
        p.verdict = Verdict::Blocked;
        p.layer = "seccomp".into();
        p.detail = format!(
            "the policy's own filter answers {syscall} with {detail} (judged by the BPF interpreter: the audit allowed the call for its harness)"
        );
    }
    let mut s = Summary::default();
    for p in &report.probes {
        s.add(p.verdict);
    }
    report.summary = s;
}

/// A filter's answer, as a person reads it.
fn describe(ret: u32) -> String {
    let data = ret & libc::SECCOMP_RET_DATA;
    match ret & libc::SECCOMP_RET_ACTION_FULL {
        libc::SECCOMP_RET_ERRNO => names::errno_name(i32::try_from(data).unwrap_or(0))
            .map_or_else(|| format!("errno {data}"), |n| n.to_string()),
        libc::SECCOMP_RET_TRAP => "SIGSYS (trap)".into(),
        libc::SECCOMP_RET_KILL_THREAD => "SIGSYS (kill the thread)".into(),
        libc::SECCOMP_RET_KILL_PROCESS => "SIGSYS (kill the process)".into(),
        other => format!("action {other:#x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::report::{AuditReport, ProbeReport, Sandbox};
    use crate::caller::Caller;
    use rstest::rstest;

    /// A caller in a directory that exists (the default policy binds it).
    fn caller() -> Caller {
        Caller {
            pwd: "/usr".into(),
            ..Caller::for_tests()
        }
    }

    fn plan(yaml: &str) -> Plan {
        let c = caller();
        let loaded = crate::policy::load_str("t.yaml", yaml, &c).unwrap();
        crate::plan::compile(&loaded, &c).unwrap()
    }

    /// A policy as `kekkai learn` writes them, for a program that did not fork.
    const LEARNED: &str = "version: 1\nextends: default\nseccomp:\n  preset: empty\n  allow: [execve, openat, read, write, close, mmap, exit_group, brk]\nlandlock:\n  from-mounts: false\n  read: [/usr, /etc]\n  execute: [/usr]\ntimeout: 10s\n";

    #[test]
    fn every_shipped_policy_gets_nothing() {
        let c = caller();
        for name in ["default", "untrusted", "service"] {
            let loaded =
                crate::policy::load(&crate::policy::PolicySource::Shipped(name), &c).unwrap();
            let mut p = crate::plan::compile(&loaded, &c).unwrap();
            // The audit's bind of the probe's copy, as `kekkai audit` adds it.
            p.landlock.rules.push(PathRule {
                path: PROBE_PATH.into(),
                access: access::READ | access::EXECUTE,
                from: "--ro-bind".into(),
            });
            let w = widen(&mut p).unwrap();
            assert!(w.is_empty(), "{name}: {w:?}");
        }
    }

    #[test]
    fn a_learned_policy_gets_exactly_the_missing_calls() {
        let mut p = plan(LEARNED);
        let before = p.clone();
        let w = widen(&mut p).unwrap();
        assert_eq!(
            w.landlock,
            ["read_file+execute on /.kekkai-audit-probe (the probe's copy, a file)"]
        );
        assert!(
            w.syscalls.contains(&"clone(arg0 == 0x1200011)".to_owned()),
            "{w:?}"
        );
        assert!(
            w.syscalls.contains(&"pipe2(arg1 == 0x80000)".to_owned()),
            "{w:?}"
        );
        // What the policy allows is not added.
        for given in ["write", "mmap", "brk", "exit_group"] {
            assert!(
                !w.syscall_names.iter().any(|n| n == given),
                "{given}: {w:?}"
            );
        }
        assert_eq!(w.timeout.as_deref(), Some("10s"));
        assert_eq!(p.timeout, Some(MIN_TIMEOUT));
        // Every call of the harness passes now, with its own arguments only.
        for c in HARNESS {
            let nr = names::syscall_number(c.syscall).unwrap();
            assert!(allowed(&p, nr, words(c)).unwrap(), "{}", c.syscall);
        }
        let clone = names::syscall_number("clone").unwrap();
        let newuser = FORK_FLAGS | 0x1000_0000;
        assert!(!allowed(&p, clone, [newuser, 0, 0, 0, 0, 0]).unwrap());
        let kill = names::syscall_number("kill").unwrap();
        assert!(
            !allowed(&p, kill, [1, 0, 0, 0, 0, 0]).unwrap(),
            "signal 0 stays denied"
        );
        // The original plan still denies them.
        assert!(!allowed(&before, clone, [FORK_FLAGS, 0, 0, 0, 0, 0]).unwrap());
    }

    #[rstest]
    #[case::required_denied(
        "version: 1\nextends: default\nseccomp:\n  preset: empty\n  allow: [execve, read]\n",
        "`openat`"
    )]
    #[case::deny_rule_wins(
        "version: 1\nextends: default\nseccomp:\n  deny: [{ syscall: pipe2, action: errno(EACCES) }]\n",
        "`pipe2(arg1 == 0x80000)`"
    )]
    fn refuses_what_it_cannot_widen_faithfully(#[case] yaml: &str, #[case] named: &str) {
        let e = widen(&mut plan(yaml)).unwrap_err();
        assert!(e.contains(named), "{e}");
    }

    fn report(names: &[(&str, Verdict)]) -> AuditReport {
        let mut r = AuditReport::new(Sandbox::standalone(), false);
        for (n, v) in names {
            r.probes.push(ProbeReport {
                name: (*n).into(),
                category: "resources".into(),
                layer: "cgroup pids".into(),
                verdict: *v,
                detail: String::new(),
            });
        }
        r
    }

    #[test]
    fn a_probe_of_an_added_call_is_judged_by_the_policys_own_filter() {
        let p = plan(LEARNED);
        // Under the widened filter the fork bomb forked; the policy itself allows no fork.
        let mut r = report(&[
            ("resources.fork-bomb", Verdict::Escaped),
            ("resources.memory", Verdict::Escaped),
        ]);
        rejudge(&mut r, &p, &["clone".into()]);
        assert_eq!(r.probes[0].verdict, Verdict::Blocked);
        assert!(
            r.probes[0].detail.contains("EPERM"),
            "{}",
            r.probes[0].detail
        );
        // mmap was not added: the observation stands.
        assert_eq!(r.probes[1].verdict, Verdict::Escaped);
        assert_eq!((r.summary.blocked, r.summary.escaped), (1, 1));
    }

    #[test]
    fn a_call_the_policy_allows_keeps_the_observation() {
        let p = plan("version: 1\nextends: default\n");
        let mut r = report(&[("resources.fork-bomb", Verdict::Escaped)]);
        rejudge(&mut r, &p, &["clone".into()]);
        assert_eq!(r.probes[0].verdict, Verdict::Escaped);
    }

    #[test]
    fn every_target_is_a_probe() {
        for (name, syscall, _) in PROBE_TARGETS {
            assert!(crate::plan::expect::PROBES.contains(name), "{name}");
            assert!(HARNESS.iter().any(|c| c.syscall == *syscall), "{syscall}");
        }
    }
}
