//! seccomp: the policy's syscall rules, compiled to classic BPF at plan time.
//!
//! seccomp makes the kernel run a BPF program on every system call the sandboxed program makes;
//! the program sees the call's number, architecture and arguments (never memory they point to)
//! and answers allow, log, an errno, trap or kill. The kernel runs every installed filter and
//! takes the strictest answer; among equal answers (two different errnos) the most recently
//! installed filter wins. The policy's rules are such a stack: an architecture guard (i386 and
//! x32 calls kill the process), the main allowlist (default action for anything unlisted), then
//! the rules of each distinct deny action (for example `clone3` → ENOSYS), last so their errno
//! is the one seen. kekkai compiles the stack into one program that answers what the stack
//! would (`bpf`), so the kernel installs, JIT-compiles and runs one filter instead of four.
//!
//! Unless the policy says `host-privileges: allow`, the stack also holds the rules that keep
//! privileges in whatever the preset: a mode argument with the setuid or setgid bit, or a
//! device type for mknod, gets EPERM, and `openat2` and `io_uring_setup`, whose modes the
//! filter can't see, get ENOSYS. Their program always kills i386 and x32 calls: an i386 `chmod`
//! (`int 0x80`, nr 15) would otherwise be a way around them.
//!
//! Ordering in the launch: seccomp is installed last, after PR_SET_NO_NEW_PRIVS (required to
//! install a filter without CAP_SYS_ADMIN) and after every other setup step, because the filter
//! would otherwise apply to the launcher's own setup calls. `execve` must stay allowed.
//!
//! This module is the model the rest of kekkai reads ([`SeccompPlan`] and its parts); the work
//! is in its children:
//!
//! - [`rules`]: the policy's `seccomp` section (and `host-privileges`) → allowed and denied
//!   syscalls with their argument conditions;
//! - [`presets`]: the presets' syscall lists, as data with reasons;
//! - `bpf`: the rules → one BPF program for the whole stack (x86_64 only; elsewhere a plan-time
//!   refusal);
//! - `interp`: a classic-BPF interpreter and the kernel's action-cache emulation, for tests;
//! - [`observe`]: `kekkai learn`'s observer, a filter that shows every call to the supervisor.

#[doc(hidden)]
pub mod interp;
pub mod observe;
pub mod presets;
pub mod rules;

mod bpf;
mod prebuilt;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use seccompiler::sock_filter;

use super::names;

pub use super::vocab::{HostPrivileges, Preset};
pub use rules::{compile, is_netlink_route};

/// The most instructions one classic BPF program may have (BPF_MAXINSNS).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// What a filter answers for a syscall.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Action {
    /// Kill the whole process (SIGSYS).
    KillProcess,
    /// Kill the calling thread.
    KillThread,
    /// Send SIGSYS to the caller.
    Trap,
    /// Fail with this errno.
    Errno(u32),
    /// Allow, and log.
    Log,
    /// Allow.
    Allow,
}

impl Action {
    /// Fail with `errno`, one of libc's errno constants. They are positive, so the absolute
    /// value is the number itself: exact, and usable in a `const`.
    pub const fn errno(errno: libc::c_int) -> Action {
        Action::Errno(errno.unsigned_abs())
    }

    /// Parses `errno(EPERM)`, `errno(38)`, `kill`, `kill-process`, `kill-thread`, `trap`, `log`,
    /// `allow`.
    pub fn parse(text: &str) -> Result<Action, String> {
        let t = text.trim();
        if let Some(inner) = t.strip_prefix("errno(").and_then(|r| r.strip_suffix(')')) {
            let inner = inner.trim();
            let n = match inner.parse::<u32>() {
                Ok(n) => n,
                Err(_) => names::errno_number(inner)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| format!("`{inner}` is not an errno name such as EPERM"))?,
            };
            if n == 0 || n > 4095 {
                return Err(format!("errno {n} is out of range 1..4095"));
            }
            return Ok(Action::Errno(n));
        }
        match t {
            "kill" | "kill-process" => Ok(Action::KillProcess),
            "kill-thread" => Ok(Action::KillThread),
            "trap" => Ok(Action::Trap),
            "log" => Ok(Action::Log),
            "allow" => Ok(Action::Allow),
            _ => Err(format!(
                "`{t}` is not an action; use errno(NAME), kill, kill-thread, trap, log or allow"
            )),
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::KillProcess => f.write_str("kill"),
            Action::KillThread => f.write_str("kill-thread"),
            Action::Trap => f.write_str("trap"),
            Action::Errno(n) => match names::errno_name(i32::try_from(*n).unwrap_or(0)) {
                Some(name) => write!(f, "errno({name})"),
                None => write!(f, "errno({n})"),
            },
            Action::Log => f.write_str("log"),
            Action::Allow => f.write_str("allow"),
        }
    }
}

/// A comparison of one syscall argument.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cond {
    /// Argument index, 0..5.
    pub arg: u8,
    /// Compare only the low 32 bits.
    pub width32: bool,
    /// The comparison.
    pub op: Op,
    /// The value compared with.
    pub value: u64,
}

impl Cond {
    /// A comparison of the low 32 bits of argument `arg` (flags, ioctl requests, ints).
    pub fn u32(arg: u8, op: Op, value: u64) -> Cond {
        Cond {
            arg,
            width32: true,
            op,
            value,
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Op {
    /// ==
    Eq,
    /// !=
    Ne,
    /// <
    Lt,
    /// <=
    Le,
    /// >
    Gt,
    /// >=
    Ge,
    /// (arg & mask) == value
    MaskedEq(u64),
}

/// When a rule matches: always, or when one of the condition sets holds (each set is an AND).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Match {
    /// Any arguments.
    Always,
    /// When any of these all-of condition lists holds.
    When(Vec<Vec<Cond>>),
}

impl Match {
    fn or(&mut self, other: Match) {
        match (&mut *self, other) {
            (Match::Always, _) => {}
            (_, Match::Always) => *self = Match::Always,
            (Match::When(a), Match::When(b)) => a.extend(b),
        }
    }
}

/// One BPF program of the stack.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Filter {
    /// What it is for.
    pub name: String,
    /// The program.
    #[serde(with = "serial::program")]
    pub program: Vec<sock_filter>,
}

/// The compiled seccomp layer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SeccompPlan {
    /// The preset the rules build on.
    pub preset: Preset,
    /// What unlisted syscalls get.
    pub default_action: Action,
    /// Allowed syscalls and when.
    pub allowed: BTreeMap<i64, Match>,
    /// Denied syscalls, by action, and when.
    #[serde(with = "serial::denied")]
    pub denied: BTreeMap<Action, BTreeMap<i64, Match>>,
    /// Socket families `socket()` may create (None: any).
    pub socket_families: Option<Vec<u64>>,
    /// `socket(AF_NETLINK, *, NETLINK_ROUTE)` is allowed too (`netlink-route` in the list): a
    /// program reads its namespace's interfaces, addresses and routes; changing them needs
    /// CAP_NET_ADMIN.
    pub netlink_route: bool,
    /// The reasons the policy gave, by syscall name.
    pub reasons: Vec<(String, String)>,
    /// `deny`: the rules that keep privileges in are part of `denied`.
    pub host_privileges: HostPrivileges,
    /// Filters in installation order: one program for the whole stack, none for preset `none`
    /// without rules.
    pub filters: Vec<Filter>,
    /// The filters allow the reaper's `clone(CLONE_VM | CLONE_VFORK | SIGCHLD)` of the
    /// program's process ([`allows_spawn_clone`], worked out with the filters, so no launch
    /// runs the interpreter); where they don't, the reaper forks. A record without it (one
    /// kekkai would not read back anyway) says `false`: fork.
    #[serde(default)]
    pub spawn_clone: bool,
}

impl SeccompPlan {
    /// Total instructions across filters.
    pub fn instructions(&self) -> usize {
        self.filters.iter().map(|f| f.program.len()).sum()
    }

    /// Installs `filters` as the plan's, with what they answer for the reaper's clone.
    fn set_filters(&mut self, filters: Vec<Filter>) {
        self.spawn_clone = allows_spawn_clone(&filters);
        self.filters = filters;
    }
}

/// Whether a stack of filters (in installation order) allows the clone with which the reaper
/// starts the program's process (`sys::spawn`: `CLONE_VM | CLONE_VFORK | SIGCHLD`), run
/// through the BPF interpreter as the kernel would run them. A filter that refuses it with an
/// errno would only make the reaper fork, but one that kills or traps it would end PID 1:
/// anything but allow or log, and any architecture but x86_64 (the filters' own), is `false`.
pub fn allows_spawn_clone(filters: &[Filter]) -> bool {
    use interp::{SeccompData, action_of, exec_stack};
    /// AUDIT_ARCH_X86_64, the architecture the filters are built for.
    const ARCH: u32 = 0xC000_003E;
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    let (Ok(nr), Ok(flags)) = (
        i32::try_from(libc::SYS_clone),
        u64::try_from(crate::sys::spawn::CLONE_FLAGS),
    ) else {
        return false;
    };
    let data = SeccompData {
        nr,
        arch: ARCH,
        instruction_pointer: 0,
        args: [flags, 0, 0, 0, 0, 0],
    };
    exec_stack(filters, &data.bytes())
        .is_ok_and(|ret| action_of(ret) >= action_of(libc::SECCOMP_RET_LOG))
}

/// How the parts of a seccomp plan that JSON has no shape for are written down (the plan is
/// serialised for `kekkai ps`'s records, `enter` and the audit's inner run): a BPF program as
/// `[code, jt, jf, k]` quadruples, the denied rules as a list of (action, rules) pairs, since an
/// action with an errno can't be a JSON object's key.
mod serial {
    use std::collections::BTreeMap;

    use seccompiler::sock_filter;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{Action, Match};

    pub mod program {
        use super::*;

        pub fn serialize<S: Serializer>(p: &[sock_filter], s: S) -> Result<S::Ok, S::Error> {
            let quads: Vec<(u16, u8, u8, u32)> =
                p.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect();
            quads.serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<sock_filter>, D::Error> {
            let quads = Vec::<(u16, u8, u8, u32)>::deserialize(d)?;
            Ok(quads
                .into_iter()
                .map(|(code, jt, jf, k)| sock_filter { code, jt, jf, k })
                .collect())
        }
    }

    pub mod denied {
        use super::*;

        type Denied = BTreeMap<Action, BTreeMap<i64, Match>>;

        pub fn serialize<S: Serializer>(d: &Denied, s: S) -> Result<S::Ok, S::Error> {
            let pairs: Vec<(&Action, &BTreeMap<i64, Match>)> = d.iter().collect();
            pairs.serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Denied, D::Error> {
            let pairs = Vec::<(Action, BTreeMap<i64, Match>)>::deserialize(d)?;
            Ok(pairs.into_iter().collect())
        }
    }
}

impl SeccompPlan {
    /// Allows `nr` when `when` holds, besides what the rules allow, and compiles the programs
    /// again. Only `kekkai audit`'s harness ([`crate::audit::harness`]) widens a plan, and says
    /// so in its report.
    pub fn allow_also(&mut self, nr: i64, when: Match) -> Result<(), String> {
        match self.allowed.get_mut(&nr) {
            Some(m) => m.or(when),
            None => {
                self.allowed.insert(nr, when);
            }
        }
        let filters = bpf::build_filters(self)?;
        self.set_filters(filters);
        Ok(())
    }
}
