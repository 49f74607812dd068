//! The compiled seccomp filters, run without a kernel.
//!
//! kekkai's classic-BPF interpreter (`kekkai::plan::seccomp::interp`, the one the unit tests
//! use too) runs every compiled program of a plan over every x86_64 syscall number (assigned or
//! not), through the x32 ABI and through i386, with chosen arguments, and combines the verdicts
//! of the stack the way the kernel does. An independent model computes what the policy means
//! from the plan's symbolic parts (`allowed`, `denied`, `default_action` and their argument
//! conditions) plus the architecture rules; the two must agree everywhere. Tables of chosen
//! calls then pin both to the verdicts the issue expects for the presets and for rule
//! combinations, every shipped policy is checked against its own model, and the compiled
//! programs themselves are pinned instruction for instruction.
//!
//! - `sweep`: the sweep of every number and argument vector, and every policy against its model;
//! - `presets`: chosen calls under `default`, `strict`, `log` and `none`;
//! - `rules`: chosen calls for `host-privileges` and for rule combinations, found discrepancies;
//! - `pinned`: the compiled programs' fingerprints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "seccomp_bpf/pinned.rs"]
mod pinned;
#[path = "seccomp_bpf/presets.rs"]
mod presets;
#[path = "seccomp_bpf/rules.rs"]
mod rules;
#[path = "seccomp_bpf/sweep.rs"]
mod sweep;

use kekkai::plan::Diags;
use kekkai::plan::names;
use kekkai::plan::seccomp::interp::{self, SeccompData};
use kekkai::plan::seccomp::{self, Action, Cond, Filter, MAX_INSTRUCTIONS, Match, Op, SeccompPlan};
use kekkai::plan::{HostPrivileges, Preset};
use kekkai::policy::model::Seccomp;

// ── struct seccomp_data ──────────────────────────────────────────────────────────────────────

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// `struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }`.
#[derive(Debug, Clone, Copy)]
struct Data {
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

impl Data {
    fn x86_64(nr: i32, args: [u64; 6]) -> Data {
        Data {
            nr,
            arch: AUDIT_ARCH_X86_64,
            ip: 0x7f12_3456_789a,
            args,
        }
    }

    fn with_arch(self, arch: u32) -> Data {
        Data { arch, ..self }
    }

    /// The bytes the kernel hands the filter.
    fn bytes(&self) -> [u8; 64] {
        SeccompData {
            nr: self.nr,
            arch: self.arch,
            instruction_pointer: self.ip,
            args: self.args,
        }
        .bytes()
    }
}

impl std::fmt::Display for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = if self.arch == AUDIT_ARCH_X86_64 {
            names::syscall_name(i64::from(self.nr)).unwrap_or("?")
        } else {
            "-"
        };
        write!(
            f,
            "arch {:#x} nr {:#x} ({name}) args {:#x?}",
            self.arch, self.nr, self.args
        )
    }
}

// ── the stack, run by the interpreter ────────────────────────────────────────────────────────

/// A stack whose programs have been checked once (as the kernel's loader would, and stricter:
/// nothing the interpreter doesn't implement).
struct Stack<'a>(&'a [Filter]);

impl<'a> Stack<'a> {
    fn new(filters: &'a [Filter]) -> Stack<'a> {
        for f in filters {
            interp::check(&f.program).unwrap_or_else(|e| panic!("filter \"{}\": {e}", f.name));
        }
        Stack(filters)
    }

    /// The kernel's rule for a stack: every filter runs; the verdict with the lowest action
    /// value wins; among equal ones, the most recently installed filter's. No filter allows.
    fn run(&self, d: &Data) -> u32 {
        interp::exec_stack(self.0, &d.bytes()).unwrap_or_else(|e| panic!("{d}: {e}"))
    }
}

const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

/// A return value as the plan's vocabulary; panics on anything kekkai never asks for.
fn decode(ret: u32) -> Action {
    match ret & 0xffff_0000 {
        RET_KILL_PROCESS => Action::KillProcess,
        RET_KILL_THREAD => Action::KillThread,
        RET_TRAP => Action::Trap,
        RET_ERRNO => Action::Errno(ret & 0xffff),
        RET_LOG => Action::Log,
        RET_ALLOW => Action::Allow,
        _ => panic!("unexpected return value {ret:#x}"),
    }
}

fn encode(a: Action) -> u32 {
    match a {
        Action::KillProcess => RET_KILL_PROCESS,
        Action::KillThread => RET_KILL_THREAD,
        Action::Trap => RET_TRAP,
        Action::Errno(n) => RET_ERRNO | n,
        Action::Log => RET_LOG,
        Action::Allow => RET_ALLOW,
    }
}

// ── the model: what the policy means ─────────────────────────────────────────────────────────

/// One condition, as documented: unsigned comparisons of the low 32 bits or all 64;
/// `mask` and-s the argument before comparing it with the value.
fn holds(c: &Cond, args: &[u64; 6]) -> bool {
    let low = |v: u64| v & 0xffff_ffff;
    let (arg, value) = if c.width32 {
        (low(args[usize::from(c.arg)]), low(c.value))
    } else {
        (args[usize::from(c.arg)], c.value)
    };
    match c.op {
        Op::Eq => arg == value,
        Op::Ne => arg != value,
        Op::Lt => arg < value,
        Op::Le => arg <= value,
        Op::Gt => arg > value,
        Op::Ge => arg >= value,
        Op::MaskedEq(mask) => arg & mask == value,
    }
}

fn matches(m: &Match, args: &[u64; 6]) -> bool {
    match m {
        Match::Always => true,
        Match::When(sets) => sets.iter().any(|all| all.iter().all(|c| holds(c, args))),
    }
}

/// How strict an answer is: kill-process, kill-thread, trap, errno, log, allow.
fn severity(a: Action) -> u8 {
    match a {
        Action::KillProcess => 0,
        Action::KillThread => 1,
        Action::Trap => 2,
        Action::Errno(_) => 3,
        Action::Log => 4,
        Action::Allow => 5,
    }
}

/// What the policy says about one call.
fn model(plan: &SeccompPlan, d: &Data) -> Action {
    // `none` without deny rules: no filter, everything passes (also i386 and x32).
    if plan.preset == Preset::None && plan.denied.is_empty() {
        return Action::Allow;
    }
    // Only the native ABI: i386 (and any other architecture) and x32 calls kill. x32 numbers
    // carry bit 30; no x86_64 syscall number comes near it, so everything from there up is
    // treated the same (that includes "negative" numbers).
    if d.arch != AUDIT_ARCH_X86_64 || d.nr as u32 >= X32_SYSCALL_BIT {
        return Action::KillProcess;
    }
    let nr = i64::from(d.nr);
    let mut verdict = if plan.preset == Preset::None
        || plan.allowed.get(&nr).is_some_and(|m| matches(m, &d.args))
    {
        Action::Allow
    } else {
        plan.default_action
    };
    // Deny rules: the strictest answer applies; at equal strictness (two errnos) the deny rule
    // beats the allowlist, and a later deny filter an earlier one.
    for (action, rules) in &plan.denied {
        if rules.get(&nr).is_some_and(|m| matches(m, &d.args))
            && severity(*action) <= severity(verdict)
        {
            verdict = *action;
        }
    }
    verdict
}

// ── helpers ──────────────────────────────────────────────────────────────────────────────────

/// A seccomp section as the language compiles it by default (`host-privileges: deny`).
fn compile_yaml(yaml: &str) -> SeccompPlan {
    compile_yaml_with(yaml, HostPrivileges::Deny)
}

fn compile_yaml_with(yaml: &str, host: HostPrivileges) -> SeccompPlan {
    let spec: Seccomp =
        serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: not a seccomp section: {e}"));
    let mut diags = Diags::default();
    let plan = seccomp::compile(Some(&spec), host, &mut diags);
    assert!(diags.is_empty(), "{yaml}: {:?}", diags.into_pairs());
    plan.unwrap()
}

fn pad(args: &[u64]) -> [u64; 6] {
    let mut out = [0; 6];
    out[..args.len()].copy_from_slice(args);
    out
}

/// An x86_64 call by name.
fn x(name: &str, args: &[u64]) -> Data {
    let nr = names::syscall_number(name).unwrap_or_else(|| panic!("no syscall {name}"));
    Data::x86_64(i32::try_from(nr).unwrap(), pad(args))
}

/// An x86_64 call by number.
fn nr(n: i32, args: &[u64]) -> Data {
    Data::x86_64(n, pad(args))
}

/// The same syscall through the x32 ABI.
fn x32(name: &str) -> Data {
    let d = x(name, &[]);
    Data {
        nr: (d.nr as u32 | X32_SYSCALL_BIT) as i32,
        ..d
    }
}

/// An i386 call (`int 0x80`), by i386 number.
fn i386(n: i32) -> Data {
    Data::x86_64(n, [0; 6]).with_arch(AUDIT_ARCH_I386)
}

/// Asserts that both the filters and the model give `want`.
fn expect(plan: &SeccompPlan, call: Data, want: Action) {
    let got = Stack::new(&plan.filters).run(&call);
    assert_eq!(
        (decode(got), got),
        (want, encode(want)),
        "BPF verdict for {call}"
    );
    assert_eq!(model(plan, &call), want, "model verdict for {call}");
}

/// Each filter fits the kernel's limits and passes the static checks.
fn check_sizes(label: &str, plan: &SeccompPlan) {
    let mut path = 0;
    for f in &plan.filters {
        assert!(
            f.program.len() <= MAX_INSTRUCTIONS && f.program.len() <= interp::MAX_INSNS,
            "{label}: filter \"{}\" has {} instructions",
            f.name,
            f.program.len()
        );
        interp::check(&f.program).unwrap_or_else(|e| panic!("{label}: \"{}\": {e}", f.name));
        path += f.program.len() + 4;
    }
    assert!(
        path <= interp::MAX_INSNS_PER_PATH,
        "{label}: {path} per path"
    );
}

const ZERO: [u64; 6] = [0; 6];
const ONES: u64 = u64::MAX;
const HIGH: u64 = 0xffff_ffff_0000_0000;

// ── names of calls and arguments ──────────────────────────────────────────────────────────────────

const ALLOW: Action = Action::Allow;
const LOG: Action = Action::Log;
const KILL: Action = Action::KillProcess;
const TRAP: Action = Action::Trap;
const EPERM: Action = Action::Errno(libc::EPERM as u32);
const EACCES: Action = Action::Errno(libc::EACCES as u32);
const ENOSYS: Action = Action::Errno(libc::ENOSYS as u32);
const EAFNOSUPPORT: Action = Action::Errno(libc::EAFNOSUPPORT as u32);

const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541C;
const TCGETS: u64 = 0x5401;
const TIOCSETD: u64 = 0x5423;
const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_THREAD: u64 = 0x1_0000;
const CLONE_SYSVSEM: u64 = 0x4_0000;
const CLONE_SETTLS: u64 = 0x8_0000;
const CLONE_PARENT_SETTID: u64 = 0x10_0000;
const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
const CLONE_CHILD_SETTID: u64 = 0x100_0000;
/// What glibc's pthread_create passes.
const THREAD_FLAGS: u64 = CLONE_VM
    | CLONE_FS
    | CLONE_FILES
    | CLONE_SIGHAND
    | CLONE_THREAD
    | CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID;
/// What fork() passes through clone.
const FORK_FLAGS: u64 = CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | libc::SIGCHLD as u64;
const CLONE_NEWNS: u64 = 0x2_0000;
const CLONE_NEWCGROUP: u64 = 0x200_0000;
const CLONE_NEWUTS: u64 = 0x400_0000;
const CLONE_NEWIPC: u64 = 0x800_0000;
const CLONE_NEWUSER: u64 = 0x1000_0000;
const CLONE_NEWPID: u64 = 0x2000_0000;
const CLONE_NEWNET: u64 = 0x4000_0000;
const AF_UNIX: u64 = 1;
const AF_INET: u64 = 2;
const AF_INET6: u64 = 10;
const AF_NETLINK: u64 = 16;
const NETLINK_ROUTE: u64 = 0;
const NETLINK_SOCK_DIAG: u64 = 4;
const NETLINK_AUDIT: u64 = 9;
const NETLINK_NETFILTER: u64 = 12;
const NETLINK_KOBJECT_UEVENT: u64 = 15;
const SOCK_CLOEXEC: u64 = 0o2000000;
const AF_PACKET: u64 = 17;
const AF_VSOCK: u64 = 40;
const ADDR_NO_RANDOMIZE: u64 = 0x0040000;
const READ_IMPLIES_EXEC: u64 = 0x0400000;

const AT_FDCWD: u64 = -100i64 as u64;
const O_WRONLY: u64 = 0o1;
const O_CREAT: u64 = 0o100;
const O_DIRECTORY: u64 = 0o200000;
const O_TMPFILE: u64 = 0o20000000 | O_DIRECTORY;
const S_IFIFO: u64 = 0o010000;
const S_IFCHR: u64 = 0o020000;
const S_IFBLK: u64 = 0o060000;
const S_IFREG: u64 = 0o100000;
const S_IFSOCK: u64 = 0o140000;
/// i386 `chmod` (`int 0x80`): 15.
const I386_CHMOD: i32 = 15;

/// An i386 call with arguments.
fn i386_with(n: i32, args: &[u64]) -> Data {
    Data::x86_64(n, pad(args)).with_arch(AUDIT_ARCH_I386)
}
