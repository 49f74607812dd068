//! seccomp: the policy's syscall rules compiled to classic BPF at plan time.
//!
//! The kernel runs every installed filter on every syscall and takes the strictest verdict;
//! among equal verdicts (two different errnos) the most recently installed filter wins. So
//! the plan is a stack: an architecture guard (i386 and x32 calls kill the process), the main
//! allowlist (default action for anything unlisted), then one filter per distinct deny action
//! (for example `clone3` → ENOSYS), installed last so their errno is the one seen.
//!
//! Unless the policy says `host-privileges: allow`, the stack also holds the rules that keep
//! privileges in whatever the preset (`insert_privilege_rules`): a mode argument with the
//! setuid or setgid bit, or a device type for mknod, gets EPERM, and `openat2` and
//! `io_uring_setup`, whose modes the filter can't see, get ENOSYS. Their filter always comes with the architecture guard: an i386
//! `chmod` (`int 0x80`, nr 15) would otherwise be a way around them.
//!
//! Ordering in the launch: seccomp is installed last, after no_new_privs (required to install a
//! filter without CAP_SYS_ADMIN) and after every other setup step, because the filter would
//! otherwise apply to the launcher's own setup calls. `execve` must be allowed.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

use super::Diags;
use super::names;
use super::seccomp_presets::{self as presets, Group};
use crate::policy::KeyPath;
use crate::policy::model::{ArgCondition, HostPrivileges, Preset, Seccomp, SyscallRule};

/// The most instructions one classic BPF program may have (BPF_MAXINSNS).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// What a filter answers for a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

    fn to_seccompiler(self) -> SeccompAction {
        match self {
            Action::KillProcess => SeccompAction::KillProcess,
            Action::KillThread => SeccompAction::KillThread,
            Action::Trap => SeccompAction::Trap,
            Action::Errno(n) => SeccompAction::Errno(n),
            Action::Log => SeccompAction::Log,
            Action::Allow => SeccompAction::Allow,
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone)]
pub struct Filter {
    /// What it is for.
    pub name: String,
    /// The program.
    pub program: Vec<sock_filter>,
}

/// The compiled seccomp layer.
#[derive(Debug, Clone)]
pub struct SeccompPlan {
    /// The preset the rules build on.
    pub preset: Preset,
    /// What unlisted syscalls get.
    pub default_action: Action,
    /// Allowed syscalls and when.
    pub allowed: BTreeMap<i64, Match>,
    /// Denied syscalls, by action, and when.
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
    /// Filters in installation order (empty for preset `none` without rules).
    pub filters: Vec<Filter>,
}

impl SeccompPlan {
    /// Total instructions across filters.
    pub fn instructions(&self) -> usize {
        self.filters.iter().map(|f| f.program.len()).sum()
    }
}

/// Compiles the `seccomp` section, with the rules that keep privileges in unless `host` is
/// `allow`.
pub fn compile(
    spec: Option<&Seccomp>,
    host: HostPrivileges,
    diags: &mut Diags,
) -> Option<SeccompPlan> {
    let here = KeyPath::root().key("seccomp");
    let default = Seccomp::default();
    let spec = spec.unwrap_or(&default);
    let preset = spec.preset.unwrap_or(Preset::Default);
    let mut default_action = match (preset, spec.default_action.as_deref()) {
        (Preset::Log, None) => Action::Log,
        (_, None) => Action::Errno(libc::EPERM as u32),
        (_, Some(text)) => match Action::parse(text) {
            Ok(Action::Allow) => {
                diags.push(
                    here.key("default-action"),
                    "`allow` as the default action would make the allowlist meaningless; for a denylist use `preset: none` with `deny` rules",
                );
                Action::Errno(libc::EPERM as u32)
            }
            Ok(a) => a,
            Err(e) => {
                diags.push(here.key("default-action"), e);
                Action::Errno(libc::EPERM as u32)
            }
        },
    };
    // What `deny` rules without their own action get: the default action, unless that one
    // does not deny (`log`).
    let deny_action = match default_action {
        Action::Log | Action::Allow => Action::Errno(libc::EPERM as u32),
        other => other,
    };
    if preset == Preset::None {
        default_action = Action::Allow;
    }

    let mut allowed: BTreeMap<i64, Match> = BTreeMap::new();
    let mut denied: BTreeMap<Action, BTreeMap<i64, Match>> = BTreeMap::new();
    let add_groups = |groups: &[Group], allowed: &mut BTreeMap<i64, Match>| {
        for g in groups {
            for name in g.syscalls {
                if let Some(nr) = names::syscall_number(name) {
                    allowed.insert(nr, Match::Always);
                }
            }
        }
    };
    let conditioned = matches!(preset, Preset::Default | Preset::Strict | Preset::Log);
    if conditioned {
        add_groups(presets::BASE, &mut allowed);
        if preset != Preset::Strict {
            add_groups(presets::DEFAULT_ONLY, &mut allowed);
        }
        insert_conditioned(&mut allowed, &mut denied);
    }

    // Socket families.
    let families_path = here.key("socket-families");
    let mut netlink_route = false;
    let socket_families = match &spec.socket_families {
        Some(list) => {
            let mut out = Vec::new();
            for (i, name) in list.iter().enumerate() {
                if is_netlink_route(name) {
                    netlink_route = true;
                    continue;
                }
                match names::socket_family(name) {
                    Some(f) => out.push(f),
                    None => {
                        let mut msg = format!("unknown socket family `{name}`");
                        let all = names::SOCKET_FAMILIES.iter().map(|(n, _)| *n);
                        if let Some(best) = super::suggest(name, all) {
                            msg.push_str(&format!(" (did you mean `{best}`?)"));
                        }
                        diags.push(families_path.index(i), msg);
                    }
                }
            }
            if preset == Preset::None {
                diags.push(
                    families_path.clone(),
                    "`socket-families` needs a preset that filters socket(); `none` has no filter",
                );
            }
            Some(out)
        }
        None if preset == Preset::Strict => Some(Vec::new()),
        None if conditioned => {
            netlink_route = presets::DEFAULT_FAMILIES
                .iter()
                .any(|n| is_netlink_route(n));
            Some(
                presets::DEFAULT_FAMILIES
                    .iter()
                    .filter_map(|n| names::socket_family(n))
                    .collect(),
            )
        }
        None => None,
    };
    // The whole family makes the protocol rule redundant.
    netlink_route &= socket_families
        .as_ref()
        .is_some_and(|f| !f.contains(&NETLINK_FAMILY));
    if preset == Preset::Strict
        && (netlink_route || socket_families.as_ref().is_some_and(|f| !f.is_empty()))
    {
        // Asking strict for socket families means the program uses sockets: allow the calls.
        if let Some(g) = presets::DEFAULT_ONLY.first() {
            add_groups(std::slice::from_ref(g), &mut allowed);
        }
    }
    if let (Some(fams), true) = (&socket_families, conditioned) {
        if let Some(nr) = names::syscall_number("socket") {
            let mut sets: Vec<Vec<Cond>> = fams
                .iter()
                .map(|f| vec![Cond::u32(0, Op::Eq, *f)])
                .collect();
            if netlink_route {
                // The protocol (argument 2) is an int: compared as 32 bits, like the family.
                sets.push(vec![
                    Cond::u32(0, Op::Eq, NETLINK_FAMILY),
                    Cond::u32(2, Op::Eq, NETLINK_ROUTE),
                ]);
            }
            if sets.is_empty() {
                allowed.remove(&nr);
            } else {
                allowed.insert(nr, Match::When(sets));
            }
        }
    }

    // The policy's own rules.
    let mut reasons = Vec::new();
    let mut explicit_allow: BTreeMap<i64, KeyPath> = BTreeMap::new();
    if preset == Preset::None && spec.allow.as_ref().is_some_and(|a| !a.is_empty()) {
        diags.push(
            here.key("allow"),
            "with `preset: none` every syscall is already allowed; `allow` rules need a preset",
        );
    }
    for (i, rule) in spec.allow.iter().flatten().enumerate() {
        let at = here.key("allow").index(i);
        let Some(r) = parse_rule(rule, &at, diags) else {
            continue;
        };
        if r.action.is_some() {
            diags.push(at.key("action"), "an `allow` rule can't have an action");
            continue;
        }
        if host == HostPrivileges::Deny
            && presets::MODE_UNREADABLE.iter().any(|(n, _)| *n == r.name)
        {
            diags.push(
                at.clone(),
                format!(
                    "`{}` keeps its mode in memory seccomp can't read, so it fails with ENOSYS \
                     while `host-privileges` is `deny` (programs fall back to openat); to allow \
                     it, allow host privileges too (`host-privileges: allow`)",
                    r.name
                ),
            );
            continue;
        }
        if r.name == "clone3" && r.matcher != Match::Always {
            diags.push(
                at.clone(),
                "clone3's flags are in memory a seccomp filter can't read: allow it without `args`, or not at all",
            );
            continue;
        }
        if r.matcher == Match::Always {
            explicit_allow.insert(r.nr, at.clone());
            // An explicit allow lifts the preset's own denial (e.g. clone3 → ENOSYS).
            for rules in denied.values_mut() {
                rules.remove(&r.nr);
            }
        }
        if let Some(why) = r.why {
            reasons.push((r.name.clone(), why));
        }
        match allowed.get_mut(&r.nr) {
            Some(m) => m.or(r.matcher),
            None => {
                allowed.insert(r.nr, r.matcher);
            }
        }
    }
    for (i, rule) in spec.deny.iter().flatten().enumerate() {
        let at = here.key("deny").index(i);
        let Some(r) = parse_rule(rule, &at, diags) else {
            continue;
        };
        if r.name == "execve" && r.matcher == Match::Always {
            diags.push(
                at.clone(),
                "`execve` must stay allowed: the program itself is started with it",
            );
            continue;
        }
        if let (Match::Always, Some(allow_at)) = (&r.matcher, explicit_allow.get(&r.nr)) {
            diags.push(
                at.clone(),
                format!("`{}` is both allowed (at {allow_at}) and denied", r.name),
            );
            continue;
        }
        if let Some(why) = r.why {
            reasons.push((r.name.clone(), why));
        }
        let action = r.action.unwrap_or(deny_action);
        if action == Action::Allow || action == Action::Log {
            diags.push(
                at.key("action"),
                "a `deny` rule must deny: errno(NAME), kill, kill-thread or trap (for logging use `preset: log`)",
            );
            continue;
        }
        if r.matcher == Match::Always {
            // An explicit denial overrides whatever other answer the preset gave this call.
            for (other, rules) in denied.iter_mut() {
                if *other != action {
                    rules.remove(&r.nr);
                }
            }
        }
        if action == default_action && r.matcher == Match::Always && preset != Preset::None {
            // Plain removal from the allowlist: the default action applies.
            allowed.remove(&r.nr);
            continue;
        }
        let rules = denied.entry(action).or_default();
        match rules.get_mut(&r.nr) {
            Some(m) => m.or(r.matcher),
            None => {
                rules.insert(r.nr, r.matcher);
            }
        }
    }
    if host == HostPrivileges::Deny {
        insert_privilege_rules(preset, default_action, &allowed, &mut denied);
    }
    denied.retain(|_, rules| !rules.is_empty());

    let mut plan = SeccompPlan {
        preset,
        default_action,
        allowed,
        denied,
        socket_families: if conditioned { socket_families } else { None },
        netlink_route: conditioned && netlink_route,
        reasons,
        host_privileges: host,
        filters: Vec::new(),
    };
    match build_filters(&plan) {
        Ok(filters) => plan.filters = filters,
        Err(e) => {
            diags.push(here, e);
            return None;
        }
    }
    Some(plan)
}

/// AF_NETLINK.
const NETLINK_FAMILY: u64 = 16;
/// NETLINK_ROUTE, the protocol (socket's argument 2) of rtnetlink.
const NETLINK_ROUTE: u64 = 0;

/// `netlink-route` (or `NETLINK_ROUTE`) in `socket-families`: netlink for routing only.
pub fn is_netlink_route(name: &str) -> bool {
    name.eq_ignore_ascii_case(presets::NETLINK_ROUTE_NAME)
        || name.eq_ignore_ascii_case("NETLINK_ROUTE")
}

/// The argument-conditioned entries of the presets.
fn insert_conditioned(
    allowed: &mut BTreeMap<i64, Match>,
    denied: &mut BTreeMap<Action, BTreeMap<i64, Match>>,
) {
    let nr = |n: &str| names::syscall_number(n);
    // ioctl: everything but terminal injection (TIOCSTI, CVE-2017-5226) and TIOCLINUX, compared
    // as 32 bits so junk in the upper half can't slip past (CVE-2019-10063).
    if let Some(n) = nr("ioctl") {
        allowed.insert(
            n,
            Match::When(vec![vec![
                Cond::u32(1, Op::Ne, 0x5412),
                Cond::u32(1, Op::Ne, 0x541C),
            ]]),
        );
    }
    // clone: threads and processes, but no namespace flags.
    if let Some(n) = nr("clone") {
        allowed.insert(
            n,
            Match::When(vec![vec![Cond {
                arg: 0,
                width32: false,
                op: Op::MaskedEq(0x7E02_0000),
                value: 0,
            }]]),
        );
    }
    // personality: only the harmless values.
    if let Some(n) = nr("personality") {
        allowed.insert(
            n,
            Match::When(
                presets::PERSONALITIES
                    .iter()
                    .map(|v| vec![Cond::u32(0, Op::Eq, *v)])
                    .collect(),
            ),
        );
    }
    // clone3's flags live in memory the filter can't read: answer ENOSYS so libc falls back to
    // clone, whose flags it can.
    if let Some(n) = nr("clone3") {
        denied
            .entry(Action::Errno(libc::ENOSYS as u32))
            .or_default()
            .insert(n, Match::Always);
        // Listed in the allowlist too, so that a stricter default action (kill, trap) can't
        // outrank the ENOSYS that makes libc fall back to clone.
        allowed.insert(n, Match::Always);
    }
}

/// The mode bits and file types the privilege rules refuse (`<sys/stat.h>`).
const S_ISUID: u64 = 0o4000;
const S_ISGID: u64 = 0o2000;
const S_IFMT: u64 = 0o170000;
const S_IFCHR: u64 = 0o020000;
const S_IFBLK: u64 = 0o060000;
/// The open flags under which the mode counts: O_CREAT, and O_TMPFILE's own bit (O_TMPFILE is
/// `__O_TMPFILE | O_DIRECTORY`; the kernel refuses `__O_TMPFILE` without `O_DIRECTORY`).
const O_CREAT: u64 = 0o100;
const O_TMPFILE_BIT: u64 = 0o20_000_000;

/// `host-privileges: deny` in seccomp (data in `seccomp_presets::MODE_RULES` and
/// `MODE_UNREADABLE`). A mode is compared as 32 bits (the kernel reads a 16-bit `umode_t` and
/// an `int` of flags, so junk above can't hide a bit), each bit in its own condition set since a
/// masked comparison tests for all of a mask's bits. The rules go after the policy's own, so an
/// `allow` can't lift them; a call the policy already denies outright keeps the policy's answer.
fn insert_privilege_rules(
    preset: Preset,
    default_action: Action,
    allowed: &BTreeMap<i64, Match>,
    denied: &mut BTreeMap<Action, BTreeMap<i64, Match>>,
) {
    let outright = |nr: i64, denied: &BTreeMap<Action, BTreeMap<i64, Match>>| {
        denied
            .values()
            .any(|rules| rules.get(&nr) == Some(&Match::Always))
            || (preset != Preset::None
                && !allowed.contains_key(&nr)
                && !matches!(default_action, Action::Allow | Action::Log))
    };
    let masked = |arg: u8, mask: u64, value: u64| Cond::u32(arg, Op::MaskedEq(mask), value);
    for rule in presets::MODE_RULES {
        let Some(nr) = names::syscall_number(rule.syscall) else {
            continue;
        };
        if outright(nr, denied) {
            continue;
        }
        let mut modes = vec![
            masked(rule.mode_arg, S_ISUID, S_ISUID),
            masked(rule.mode_arg, S_ISGID, S_ISGID),
        ];
        if rule.devices {
            modes.push(masked(rule.mode_arg, S_IFMT, S_IFCHR));
            modes.push(masked(rule.mode_arg, S_IFMT, S_IFBLK));
        }
        let sets: Vec<Vec<Cond>> = match rule.create_flags_arg {
            None => modes.into_iter().map(|m| vec![m]).collect(),
            Some(flags) => [O_CREAT, O_TMPFILE_BIT]
                .iter()
                .flat_map(|bit| {
                    modes
                        .iter()
                        .map(move |m| vec![masked(flags, *bit, *bit), m.clone()])
                })
                .collect(),
        };
        let rules = denied.entry(Action::Errno(libc::EPERM as u32)).or_default();
        match rules.get_mut(&nr) {
            Some(m) => m.or(Match::When(sets)),
            None => {
                rules.insert(nr, Match::When(sets));
            }
        }
    }
    for (name, _) in presets::MODE_UNREADABLE {
        if let Some(nr) = names::syscall_number(name) {
            if !outright(nr, denied) {
                denied
                    .entry(Action::Errno(libc::ENOSYS as u32))
                    .or_default()
                    .insert(nr, Match::Always);
            }
        }
    }
}

struct ParsedRule {
    name: String,
    nr: i64,
    matcher: Match,
    action: Option<Action>,
    why: Option<String>,
}

fn parse_rule(rule: &SyscallRule, at: &KeyPath, diags: &mut Diags) -> Option<ParsedRule> {
    let (name, name_at, spec) = match rule {
        SyscallRule::Name(n) => (n.as_str(), at.clone(), None),
        SyscallRule::Rule(r) => match r.syscall.as_deref() {
            Some(n) => (n, at.key("syscall"), Some(r)),
            None => {
                diags.push(at.clone(), "a rule needs `syscall: NAME`");
                return None;
            }
        },
    };
    let Some(nr) = names::syscall_number(name) else {
        let mut msg = format!("unknown syscall `{name}` (x86_64)");
        if let Some(best) = super::suggest(name, names::syscall_names()) {
            msg.push_str(&format!("; did you mean `{best}`?"));
        }
        diags.push(name_at, msg);
        return None;
    };
    let mut matcher = Match::Always;
    let mut action = None;
    let mut why = None;
    if let Some(spec) = spec {
        if let Some(args) = &spec.args {
            if args.is_empty() {
                diags.push(
                    at.key("args"),
                    "an empty `args` list; leave it out to match any arguments",
                );
                return None;
            }
            let mut conds = Vec::new();
            for (j, a) in args.iter().enumerate() {
                conds.push(parse_cond(a, &at.key("args").index(j), diags)?);
            }
            matcher = Match::When(vec![conds]);
        }
        if let Some(text) = &spec.action {
            match Action::parse(text) {
                Ok(a) => action = Some(a),
                Err(e) => {
                    diags.push(at.key("action"), e);
                    return None;
                }
            }
        }
        why = spec.why.clone();
    }
    Some(ParsedRule {
        name: name.to_owned(),
        nr,
        matcher,
        action,
        why,
    })
}

fn parse_cond(a: &ArgCondition, at: &KeyPath, diags: &mut Diags) -> Option<Cond> {
    let Some(arg) = a.arg else {
        diags.push(at.clone(), "a condition needs `arg: 0..5`");
        return None;
    };
    if arg > 5 {
        diags.push(
            at.key("arg"),
            format!("argument index {arg} is out of range 0..5"),
        );
        return None;
    }
    let width32 = match a.width {
        Some(32) => true,
        Some(64) => false,
        Some(w) => {
            diags.push(at.key("width"), format!("width {w}: use 32 or 64"));
            return None;
        }
        None => {
            diags.push(
                at.clone(),
                "a condition needs an explicit `width: 32` or `width: 64` (ioctl requests, flags and int arguments are 32-bit)",
            );
            return None;
        }
    };
    let ops: Vec<(&str, Op, &Option<crate::policy::model::ArgValue>)> = vec![
        ("eq", Op::Eq, &a.eq),
        ("ne", Op::Ne, &a.ne),
        ("lt", Op::Lt, &a.lt),
        ("le", Op::Le, &a.le),
        ("gt", Op::Gt, &a.gt),
        ("ge", Op::Ge, &a.ge),
    ];
    let given: Vec<_> = ops.iter().filter(|(_, _, v)| v.is_some()).collect();
    let [(key, op, Some(text))] = given.as_slice() else {
        diags.push(
            at.clone(),
            "a condition needs exactly one of eq, ne, lt, le, gt, ge",
        );
        return None;
    };
    let value = value_of(&text.0, &at.key(key), width32, diags)?;
    let op = match &a.mask {
        None => *op,
        Some(mask) if *op == Op::Eq => {
            let mask = value_of(&mask.0, &at.key("mask"), width32, diags)?;
            if value & !mask != 0 {
                diags.push(
                    at.key("eq"),
                    format!("{value:#x} has bits outside the mask {mask:#x}; the condition could never hold"),
                );
                return None;
            }
            Op::MaskedEq(mask)
        }
        Some(_) => {
            diags.push(at.key("mask"), "`mask` works with `eq` only");
            return None;
        }
    };
    Some(Cond {
        arg,
        width32,
        op,
        value,
    })
}

fn value_of(text: &str, at: &KeyPath, width32: bool, diags: &mut Diags) -> Option<u64> {
    let Some(v) = names::arg_value(text) else {
        let t = text.trim();
        if t.len() > 1
            && t.trim_start_matches('-')
                .chars()
                .all(|c| c.is_ascii_digit())
        {
            diags.push(at.clone(), format!("{t} does not fit in 64 bits"));
            return None;
        }
        diags.push(
            at.clone(),
            format!("`{text}` is not a number or a known constant (TIOCSTI, AF_NETLINK, CLONE_NEWUSER, ...)"),
        );
        return None;
    };
    if width32 && v > u64::from(u32::MAX) {
        // Negative numbers are written as 64-bit two's complement; keep their low half.
        if text.trim().starts_with('-') {
            return Some(v & 0xFFFF_FFFF);
        }
        diags.push(at.clone(), format!("{text} does not fit in 32 bits"));
        return None;
    }
    Some(v)
}

fn to_rules(m: &Match) -> Result<Vec<SeccompRule>, String> {
    match m {
        Match::Always => Ok(Vec::new()),
        Match::When(sets) => sets
            .iter()
            .map(|conds| {
                let cs = conds
                    .iter()
                    .map(|c| {
                        let op = match c.op {
                            Op::Eq => SeccompCmpOp::Eq,
                            Op::Ne => SeccompCmpOp::Ne,
                            Op::Lt => SeccompCmpOp::Lt,
                            Op::Le => SeccompCmpOp::Le,
                            Op::Gt => SeccompCmpOp::Gt,
                            Op::Ge => SeccompCmpOp::Ge,
                            Op::MaskedEq(mask) => SeccompCmpOp::MaskedEq(mask),
                        };
                        let len = if c.width32 {
                            SeccompCmpArgLen::Dword
                        } else {
                            SeccompCmpArgLen::Qword
                        };
                        SeccompCondition::new(c.arg, len, op, c.value).map_err(|e| e.to_string())
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                SeccompRule::new(cs).map_err(|e| e.to_string())
            })
            .collect(),
    }
}

/// One filter's program. Syscalls allowed (or denied) whatever their arguments are found by
/// a binary search over runs of consecutive numbers, which keeps the program short: the kernel
/// checks every syscall number against the whole program when it builds its action cache at
/// install time, and JIT-compiles it, so a 1500-instruction list costs half a millisecond per
/// launch where ~150 instructions cost a tenth of that. Syscalls with argument conditions
/// jump to a block that seccompiler generates for them alone.
fn program(
    rules: &BTreeMap<i64, Match>,
    mismatch: Action,
    matched: Action,
) -> Result<Vec<sock_filter>, String> {
    let conditional: BTreeMap<i64, Match> = rules
        .iter()
        .filter(|(_, m)| **m != Match::Always)
        .map(|(nr, m)| (*nr, m.clone()))
        .collect();
    let mut leaves: Vec<(u32, Leaf)> = Vec::new();
    let mut next: u32 = 0;
    for (nr, m) in rules {
        let nr = u32::try_from(*nr).map_err(|_| format!("syscall number {nr} out of range"))?;
        if nr > next {
            push_leaf(&mut leaves, next, Leaf::Mismatch);
        }
        let leaf = if *m == Match::Always {
            Leaf::Matched
        } else {
            Leaf::Conditional
        };
        push_leaf(&mut leaves, nr, leaf);
        next = nr.saturating_add(1);
    }
    push_leaf(&mut leaves, next, Leaf::Mismatch);

    let on_match = u32::from(matched.to_seccompiler());
    let on_mismatch = u32::from(mismatch.to_seccompiler());
    let (tree, jumps) = search_tree(&leaves, on_match, on_mismatch);
    let mut prog = vec![
        bpf(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARCH),
        bpf(BPF_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        bpf(BPF_RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        bpf(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_NR),
    ];
    let base = prog.len();
    prog.extend(tree);
    if !conditional.is_empty() {
        let block = seccompiler_program(&conditional, mismatch, matched)?;
        let start = prog.len();
        for j in jumps {
            let at = base + j;
            let offset = u32::try_from(start - at - 1).map_err(|e| e.to_string())?;
            if let Some(ins) = prog.get_mut(at) {
                ins.k = offset;
            }
        }
        prog.extend(block);
    }
    // A handful of rules: seccompiler's flat list can be the shorter one.
    if rules.len() <= 32 {
        let flat = seccompiler_program(rules, mismatch, matched)?;
        if flat.len() < prog.len() {
            return Ok(flat);
        }
    }
    Ok(prog)
}

/// What a run of syscall numbers gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaf {
    Matched,
    Mismatch,
    /// Decided by the arguments, in the seccompiler block.
    Conditional,
}

/// Starts a run at `start` unless the previous run has the same leaf.
fn push_leaf(leaves: &mut Vec<(u32, Leaf)>, start: u32, leaf: Leaf) {
    match leaves.last_mut() {
        Some((_, last)) if *last == leaf => {}
        Some((s, last)) if *s == start => *last = leaf,
        _ => leaves.push((start, leaf)),
    }
}

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_JA: u16 = 0x05;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;

fn bpf(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// A binary search over runs (the accumulator holds the syscall number). Returns the code and
/// the positions of the jumps to the conditional block, whose offsets the caller fills in.
/// BPF jumps only forward: each node tests `nr >= first of the right half` and falls through
/// to the left half; a right half more than 255 instructions away is reached through `JA`.
fn search_tree(
    leaves: &[(u32, Leaf)],
    on_match: u32,
    on_mismatch: u32,
) -> (Vec<sock_filter>, Vec<usize>) {
    match leaves {
        [] => (vec![bpf(BPF_RET_K, 0, 0, on_mismatch)], Vec::new()),
        [(_, leaf)] => match leaf {
            Leaf::Matched => (vec![bpf(BPF_RET_K, 0, 0, on_match)], Vec::new()),
            Leaf::Mismatch => (vec![bpf(BPF_RET_K, 0, 0, on_mismatch)], Vec::new()),
            Leaf::Conditional => (vec![bpf(BPF_JA, 0, 0, 0)], vec![0]),
        },
        _ => {
            let mid = leaves.len() / 2;
            let pivot = leaves.get(mid).map_or(0, |(start, _)| *start);
            let (left, left_jumps) =
                search_tree(leaves.get(..mid).unwrap_or_default(), on_match, on_mismatch);
            let (right, right_jumps) =
                search_tree(leaves.get(mid..).unwrap_or_default(), on_match, on_mismatch);
            let mut code = Vec::with_capacity(left.len() + right.len() + 2);
            match u8::try_from(left.len()) {
                Ok(skip) => code.push(bpf(BPF_JGE_K, skip, 0, pivot)),
                Err(_) => {
                    code.push(bpf(BPF_JGE_K, 0, 1, pivot));
                    code.push(bpf(
                        BPF_JA,
                        0,
                        0,
                        u32::try_from(left.len()).unwrap_or(u32::MAX),
                    ));
                }
            }
            let left_at = code.len();
            code.extend(left);
            let right_at = code.len();
            code.extend(right);
            let jumps = left_jumps
                .into_iter()
                .map(|j| j + left_at)
                .chain(right_jumps.into_iter().map(|j| j + right_at))
                .collect();
            (code, jumps)
        }
    }
}

/// seccompiler's program for rules with argument conditions.
fn seccompiler_program(
    rules: &BTreeMap<i64, Match>,
    mismatch: Action,
    matched: Action,
) -> Result<Vec<sock_filter>, String> {
    let mut map = BTreeMap::new();
    for (nr, m) in rules {
        map.insert(*nr, to_rules(m)?);
    }
    let filter = SeccompFilter::new(
        map,
        mismatch.to_seccompiler(),
        matched.to_seccompiler(),
        TargetArch::x86_64,
    )
    .map_err(|e| e.to_string())?;
    let prog: BpfProgram = filter.try_into().map_err(|e| match e {
        // The caller names the filter; here only the size is known.
        seccompiler::BackendError::FilterTooLarge(len) => format!("{TOO_LARGE}{len}"),
        other => other.to_string(),
    })?;
    Ok(prog)
}

/// Marks [`seccompiler_program`]'s error for a program over the kernel's limit.
const TOO_LARGE: &str = "too large: ";

fn build_filters(plan: &SeccompPlan) -> Result<Vec<Filter>, String> {
    let too_large = |name: &str, len: &str| {
        format!(
            "the filter \"{name}\" has {len} BPF instructions; the kernel's limit is \
             {MAX_INSTRUCTIONS}: use fewer argument rules"
        )
    };
    let build = |name: &str, rules, mismatch, matched| {
        program(rules, mismatch, matched).map_err(|e| match e.strip_prefix(TOO_LARGE) {
            Some(len) => too_large(name, len),
            None => e,
        })
    };
    let mut filters = Vec::new();
    if plan.preset == Preset::None && plan.denied.is_empty() {
        return Ok(filters);
    }
    filters.push(Filter {
        name: "architecture guard: i386 and x32 calls kill the process".into(),
        program: arch_guard(),
    });
    if plan.preset != Preset::None {
        let name = format!(
            "allowlist ({} syscalls); anything else: {}",
            plan.allowed.len(),
            plan.default_action
        );
        let program = build(&name, &plan.allowed, plan.default_action, Action::Allow)?;
        filters.push(Filter { name, program });
    }
    for (action, rules) in &plan.denied {
        let name = format!("deny → {action} ({} syscalls)", rules.len());
        let program = build(&name, rules, Action::Allow, *action)?;
        filters.push(Filter { name, program });
    }
    for f in &filters {
        if f.program.len() > MAX_INSTRUCTIONS {
            return Err(too_large(&f.name, &f.program.len().to_string()));
        }
    }
    Ok(filters)
}

/// The x32 ABI shares x86_64's audit architecture and marks its syscall numbers with bit 30;
/// seccompiler checks only the architecture, so this filter rejects the bit (and, like every
/// seccompiler filter, kills on a foreign architecture such as i386's `int 0x80`).
fn arch_guard() -> Vec<sock_filter> {
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    vec![
        bpf(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARCH),
        bpf(BPF_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        bpf(BPF_RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        bpf(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_NR),
        bpf(BPF_JGE_K, 0, 1, X32_SYSCALL_BIT),
        bpf(BPF_RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        bpf(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn compile_yaml(yaml: &str) -> Result<SeccompPlan, Vec<(String, String)>> {
        compile_yaml_with(yaml, HostPrivileges::Deny)
    }

    fn compile_yaml_with(
        yaml: &str,
        host: HostPrivileges,
    ) -> Result<SeccompPlan, Vec<(String, String)>> {
        let spec: Seccomp = serde_yaml::from_str(yaml).unwrap();
        let mut diags = Diags::default();
        let plan = compile(Some(&spec), host, &mut diags);
        if diags.is_empty() {
            Ok(plan.unwrap())
        } else {
            Err(diags.into_pairs())
        }
    }

    fn nr(name: &str) -> i64 {
        names::syscall_number(name).unwrap()
    }

    #[test]
    fn every_preset_name_is_an_x86_64_syscall() {
        for g in presets::BASE
            .iter()
            .chain(presets::DEFAULT_ONLY)
            .chain(presets::DENIED)
        {
            for name in g.syscalls {
                assert!(names::syscall_number(name).is_some(), "{name} ({})", g.why);
            }
        }
    }

    #[test]
    fn no_syscall_is_both_in_an_allow_group_and_the_denied_list() {
        for d in presets::DENIED.iter().flat_map(|g| g.syscalls) {
            for g in presets::BASE.iter().chain(presets::DEFAULT_ONLY) {
                assert!(!g.syscalls.contains(d), "{d} is allowed by \"{}\"", g.why);
            }
        }
    }

    #[rstest]
    #[case("{}", "read", true)]
    #[case("{}", "io_uring_setup", false)]
    #[case("{}", "ptrace", false)]
    #[case("{}", "mount", false)]
    #[case("{preset: strict}", "read", true)]
    #[case("{preset: strict}", "connect", false)]
    #[case("{allow: [ptrace]}", "ptrace", true)]
    #[case("{deny: [write]}", "write", false)]
    fn allowlist(#[case] yaml: &str, #[case] name: &str, #[case] allowed: bool) {
        let plan = compile_yaml(yaml).unwrap();
        assert_eq!(plan.allowed.contains_key(&nr(name)), allowed, "{name}");
    }

    #[test]
    fn default_stacks_guard_allowlist_privileges_and_enosys() {
        let plan = compile_yaml("{}").unwrap();
        assert_eq!(plan.filters.len(), 4);
        assert!(plan.filters[0].name.starts_with("architecture guard"));
        assert_eq!(
            plan.denied.keys().copied().collect::<Vec<_>>(),
            vec![Action::Errno(1), Action::Errno(38)]
        );
        assert!(plan.instructions() < MAX_INSTRUCTIONS);
    }

    /// `host-privileges: deny`: every mode rule, whatever the preset; `allow` leaves them out.
    #[rstest]
    #[case::default("{}")]
    #[case::strict("{preset: strict}")]
    #[case::log("{preset: log}")]
    #[case::none("{preset: none}")]
    #[case::kill("{default-action: kill}")]
    fn the_privilege_rules_hold_whatever_the_preset(#[case] yaml: &str) {
        let plan = compile_yaml(yaml).unwrap();
        let eperm = &plan.denied[&Action::Errno(libc::EPERM as u32)];
        for rule in presets::MODE_RULES {
            let Some(Match::When(sets)) = eperm.get(&nr(rule.syscall)) else {
                panic!("{yaml}: no mode rule for {}", rule.syscall);
            };
            let per_mode = if rule.devices { 4 } else { 2 };
            let factor = if rule.create_flags_arg.is_some() {
                2
            } else {
                1
            };
            assert_eq!(sets.len(), per_mode * factor, "{}", rule.syscall);
            for set in sets {
                assert!(set.iter().all(|c| c.width32), "{}: {set:?}", rule.syscall);
                assert!(set.iter().any(|c| c.arg == rule.mode_arg));
            }
        }
        let enosys = &plan.denied[&Action::Errno(libc::ENOSYS as u32)];
        assert_eq!(enosys.get(&nr("openat2")), Some(&Match::Always));
        // io_uring: denied outright by the allowlists, by this rule where there is none.
        let io_uring = enosys.get(&nr("io_uring_setup"));
        if plan.allowed.contains_key(&nr("io_uring_setup"))
            || matches!(plan.default_action, Action::Log | Action::Allow)
        {
            assert_eq!(io_uring, Some(&Match::Always), "{yaml}");
        } else {
            assert_eq!(io_uring, None, "{yaml}");
        }
        assert_eq!(plan.host_privileges, HostPrivileges::Deny);
        assert!(plan.filters[0].name.starts_with("architecture guard"));

        let open = compile_yaml_with(yaml, HostPrivileges::Allow).unwrap();
        for rule in presets::MODE_RULES {
            assert!(
                open.denied
                    .values()
                    .all(|d| !d.contains_key(&nr(rule.syscall))),
                "{yaml}: {} still denied",
                rule.syscall
            );
        }
        assert!(
            open.denied
                .values()
                .all(|d| !d.contains_key(&nr("openat2")))
        );
    }

    #[test]
    fn open_and_openat_count_the_mode_only_when_creating() {
        let plan = compile_yaml("{}").unwrap();
        let Match::When(sets) = &plan.denied[&Action::Errno(1)][&nr("openat")] else {
            panic!("openat");
        };
        let flags: Vec<(u8, Op, u64)> = sets
            .iter()
            .map(|set| (set[0].arg, set[0].op, set[0].value))
            .collect();
        assert!(flags.contains(&(2, Op::MaskedEq(0o100), 0o100)), "O_CREAT");
        assert!(
            flags.contains(&(2, Op::MaskedEq(0o20_000_000), 0o20_000_000)),
            "O_TMPFILE"
        );
        assert!(sets.iter().all(|set| set[1].arg == 3));
    }

    /// A call the policy already denies outright keeps the policy's answer.
    #[rstest]
    #[case::openat2_eacces("{deny: [{syscall: openat2, action: errno(EACCES)}]}", "openat2")]
    #[case::chmod_kill("{deny: [{syscall: chmod, action: kill}]}", "chmod")]
    #[case::chmod_default_action("{deny: [chmod]}", "chmod")]
    fn a_policys_outright_denial_wins(#[case] yaml: &str, #[case] call: &str) {
        let plan = compile_yaml(yaml).unwrap();
        for (action, rules) in &plan.denied {
            if let Some(m) = rules.get(&nr(call)) {
                assert_eq!(*m, Match::Always, "{action}");
                assert_ne!(*action, Action::Errno(libc::ENOSYS as u32));
            }
        }
    }

    /// Runs a classic BPF program on x86_64 seccomp data the way the kernel does. With `args`
    /// None it is the kernel's action-cache emulation (kernel/seccomp.c,
    /// `seccomp_is_const_allow`): only `nr` and `arch` are known, and reading anything else,
    /// or an instruction the emulation doesn't know, gives None.
    fn eval(prog: &[sock_filter], nr: u32, args: Option<[u64; 6]>) -> Option<u32> {
        let word = |off: u32| -> Option<u32> {
            match (off, args) {
                (0, _) => Some(nr),
                (4, _) => Some(0xC000_003E),
                (8 | 12, Some(_)) => Some(0),
                (o, Some(a)) if (16..64).contains(&o) => {
                    let v = a[((o - 16) / 8) as usize];
                    Some(if (o - 16) % 8 == 0 {
                        v as u32
                    } else {
                        (v >> 32) as u32
                    })
                }
                _ => None,
            }
        };
        let (mut acc, mut pc) = (0u32, 0usize);
        while let Some(ins) = prog.get(pc) {
            match ins.code {
                0x20 => acc = word(ins.k)?,
                0x06 => return Some(ins.k),
                0x05 => pc += ins.k as usize,
                0x15 | 0x35 | 0x25 | 0x45 => {
                    let hit = match ins.code {
                        0x15 => acc == ins.k,
                        0x35 => acc >= ins.k,
                        0x25 => acc > ins.k,
                        _ => acc & ins.k != 0,
                    };
                    pc += usize::from(if hit { ins.jt } else { ins.jf });
                }
                0x54 => acc &= ins.k,
                _ => return None,
            }
            pc += 1;
        }
        None
    }

    /// The program's answer for (nr, args).
    fn run_bpf(prog: &[sock_filter], nr: u32, args: [u64; 6]) -> u32 {
        eval(prog, nr, Some(args)).expect("a program that ends in a return")
    }

    /// Whether the kernel caches `nr` as allowed without running the program; None when its
    /// emulation can't decide.
    fn kernel_const_allow(prog: &[sock_filter], nr: u32) -> Option<bool> {
        eval(prog, nr, None).map(|k| k == libc::SECCOMP_RET_ALLOW)
    }

    /// The compact program answers exactly what seccompiler's program for the same rules
    /// answers, for every syscall number and a spread of arguments.
    #[rstest]
    #[case::default("{}")]
    #[case::strict("{preset: strict}")]
    #[case::families("{socket-families: [unix]}")]
    #[case::rules(
        "{allow: [{syscall: personality, args: [{arg: 0, width: 32, eq: 0}]}, {syscall: prctl, args: [{arg: 0, width: 64, le: 4}]}], deny: [{syscall: kill, args: [{arg: 1, width: 32, eq: 9}], action: kill}, ptrace]}"
    )]
    #[case::none_denylist(
        "{preset: none, deny: [ptrace, {syscall: ioctl, args: [{arg: 1, width: 32, eq: 0x5412}]}]}"
    )]
    fn compact_programs_match_seccompiler(#[case] yaml: &str) {
        let plan = compile_yaml(yaml).unwrap();
        let mut stacks: Vec<(&BTreeMap<i64, Match>, Action, Action)> = Vec::new();
        if plan.preset != Preset::None {
            stacks.push((&plan.allowed, plan.default_action, Action::Allow));
        }
        for (action, rules) in &plan.denied {
            stacks.push((rules, Action::Allow, *action));
        }
        assert!(!stacks.is_empty());
        let argsets: [[u64; 6]; 6] = [
            [0; 6],
            [1, 9, 0x5412, 0, 0, 0],
            [4, 0x5412, 2, 3, 4, 5],
            [5, 0x541C, 0, 0, 0, 0],
            [u64::MAX, 1 << 33, 10, 0x7e020000, 0, 0],
            [0x1_0000_0000, 0x2000_0000, 1, 1, 1, 1],
        ];
        for (rules, mismatch, matched) in stacks {
            let ours = program(rules, mismatch, matched).unwrap();
            let theirs = seccompiler_program(rules, mismatch, matched).unwrap();
            assert!(
                ours.len() <= theirs.len(),
                "{} > {}",
                ours.len(),
                theirs.len()
            );
            if rules.len() > 100 {
                assert!(
                    ours.len() * 4 < theirs.len(),
                    "{} vs {}",
                    ours.len(),
                    theirs.len()
                );
            }
            for nr in (0..600).chain([0x4000_0000, 0x4000_0001, u32::MAX]) {
                for args in argsets {
                    assert_eq!(
                        run_bpf(&ours, nr, args),
                        run_bpf(&theirs, nr, args),
                        "nr {nr} args {args:x?}"
                    );
                }
            }
        }
    }

    /// Runs far apart: the right half of a node more than 255 instructions away.
    #[test]
    fn long_jumps_are_reached_through_ja() {
        let mut rules = BTreeMap::new();
        for nr in (0..1200).step_by(2) {
            rules.insert(nr, Match::Always);
        }
        let prog = program(&rules, Action::Errno(1), Action::Allow).unwrap();
        assert!(prog.iter().any(|i| i.code == BPF_JA));
        let allow = libc::SECCOMP_RET_ALLOW;
        for nr in 0..1300u32 {
            let want = if nr < 1200 && nr % 2 == 0 {
                allow
            } else {
                libc::SECCOMP_RET_ERRNO | 1
            };
            assert_eq!(run_bpf(&prog, nr, [0; 6]), want, "nr {nr}");
        }
    }

    /// Every syscall the default preset allows without conditions is allowed by every filter
    /// in a way the kernel can cache, so a busy `read`/`write` loop never runs the BPF.
    #[rstest]
    #[case::default("{}")]
    #[case::strict("{preset: strict}")]
    fn unconditional_allows_hit_the_kernels_action_cache(#[case] yaml: &str) {
        let plan = compile_yaml(yaml).unwrap();
        let mut checked = 0;
        for (nr, m) in &plan.allowed {
            // Denied later in the stack (clone3 → ENOSYS) is not an allow.
            if *m != Match::Always || plan.denied.values().any(|d| d.contains_key(nr)) {
                continue;
            }
            let nr = u32::try_from(*nr).unwrap();
            for f in &plan.filters {
                assert_eq!(
                    kernel_const_allow(&f.program, nr),
                    Some(true),
                    "syscall {nr} in filter {}",
                    f.name
                );
            }
            checked += 1;
        }
        assert!(checked > 50, "only {checked} unconditional syscalls");
    }

    #[test]
    fn none_without_rules_installs_nothing_once_host_privileges_are_allowed() {
        let open = compile_yaml_with("{preset: none}", HostPrivileges::Allow).unwrap();
        assert!(open.filters.is_empty());
        // The privilege rules, with the architecture guard that keeps i386 calls from passing.
        let plan = compile_yaml("{preset: none}").unwrap();
        assert_eq!(plan.filters.len(), 3);
        assert!(plan.filters[0].name.starts_with("architecture guard"));
    }

    #[test]
    fn none_with_deny_rules_is_a_denylist() {
        let plan =
            compile_yaml_with("{preset: none, deny: [ptrace]}", HostPrivileges::Allow).unwrap();
        assert_eq!(plan.filters.len(), 2);
        assert!(plan.denied[&Action::Errno(1)].contains_key(&nr("ptrace")));
    }

    #[test]
    fn allowing_clone3_lifts_enosys() {
        let plan = compile_yaml("{allow: [clone3]}").unwrap();
        assert!(plan.denied.values().all(|d| !d.contains_key(&nr("clone3"))));
        assert_eq!(plan.allowed[&nr("clone3")], Match::Always);
    }

    #[test]
    fn a_deny_rule_with_args_and_an_action_gets_its_own_filter() {
        let plan = compile_yaml(
            "{deny: [{syscall: ioctl, args: [{arg: 1, width: 32, eq: TIOCSETD}], action: kill, why: test}]}",
        )
        .unwrap();
        let kill = &plan.denied[&Action::KillProcess];
        assert_eq!(
            kill[&nr("ioctl")],
            Match::When(vec![vec![Cond::u32(1, Op::Eq, 0x5423)]])
        );
        assert_eq!(plan.reasons, vec![("ioctl".into(), "test".into())]);
    }

    #[test]
    fn socket_families_replace_the_default_set() {
        let plan = compile_yaml("{socket-families: [unix]}").unwrap();
        assert_eq!(
            plan.allowed[&nr("socket")],
            Match::When(vec![vec![Cond::u32(0, Op::Eq, 1)]])
        );
    }

    #[rstest]
    #[case("{allow: [nosuchcall]}", "seccomp.allow[0]", "unknown syscall")]
    #[case("{allow: [opne]}", "seccomp.allow[0]", "did you mean `open`")]
    #[case("{allow: [ptrace], deny: [ptrace]}", "seccomp.deny[0]", "both allowed")]
    #[case("{default-action: allow}", "seccomp.default-action", "meaningless")]
    #[case(
        "{default-action: errno(EWHAT)}",
        "seccomp.default-action",
        "errno name"
    )]
    #[case("{default-action: explode}", "seccomp.default-action", "not an action")]
    #[case(
        "{deny: [{syscall: ioctl, args: [{arg: 1, eq: 5}]}]}",
        "seccomp.deny[0].args[0]",
        "explicit `width"
    )]
    #[case(
        "{deny: [{syscall: ioctl, args: [{arg: 7, width: 32, eq: 5}]}]}",
        "seccomp.deny[0].args[0].arg",
        "out of range"
    )]
    #[case(
        "{deny: [{syscall: ioctl, args: [{arg: 1, width: 16, eq: 5}]}]}",
        "seccomp.deny[0].args[0].width",
        "32 or 64"
    )]
    #[case(
        "{deny: [{syscall: ioctl, args: [{arg: 1, width: 32}]}]}",
        "seccomp.deny[0].args[0]",
        "exactly one"
    )]
    #[case(
        "{deny: [{syscall: ioctl, args: [{arg: 1, width: 32, eq: 1, ne: 2}]}]}",
        "seccomp.deny[0].args[0]",
        "exactly one"
    )]
    #[case(
        "{deny: [{syscall: ioctl, args: [{arg: 1, width: 32, eq: TIOCFOO}]}]}",
        "seccomp.deny[0].args[0].eq",
        "known constant"
    )]
    #[case(
        "{deny: [{syscall: ioctl, args: [{arg: 1, width: 32, eq: 0x100000000}]}]}",
        "seccomp.deny[0].args[0].eq",
        "32 bits"
    )]
    #[case(
        "{deny: [{syscall: ioctl, args: [{arg: 1, width: 32, lt: 5, mask: 3}]}]}",
        "seccomp.deny[0].args[0].mask",
        "`eq` only"
    )]
    #[case(
        "{deny: [{syscall: ioctl, args: []}]}",
        "seccomp.deny[0].args",
        "empty"
    )]
    #[case(
        "{deny: [{args: [{arg: 0, width: 32, eq: 1}]}]}",
        "seccomp.deny[0]",
        "needs `syscall"
    )]
    #[case(
        "{deny: [{syscall: read, action: allow}]}",
        "seccomp.deny[0].action",
        "must deny"
    )]
    #[case(
        "{deny: [{syscall: read, action: log}]}",
        "seccomp.deny[0].action",
        "must deny"
    )]
    #[case("{deny: [execve]}", "seccomp.deny[0]", "must stay allowed")]
    #[case("{preset: none, allow: [read]}", "seccomp.allow", "already allowed")]
    #[case(
        "{allow: [{syscall: read, action: kill}]}",
        "seccomp.allow[0].action",
        "can't have an action"
    )]
    #[case(
        "{socket-families: [unix, nope]}",
        "seccomp.socket-families[1]",
        "unknown socket family"
    )]
    #[case(
        "{preset: none, socket-families: [unix]}",
        "seccomp.socket-families",
        "needs a preset"
    )]
    #[case(
        "{allow: [read, openat2]}",
        "seccomp.allow[1]",
        "host-privileges: allow"
    )]
    #[case("{allow: [io_uring_setup]}", "seccomp.allow[0]", "fails with ENOSYS")]
    fn rejects(#[case] yaml: &str, #[case] path: &str, #[case] contains: &str) {
        let errs = compile_yaml(yaml).unwrap_err();
        assert!(
            errs.iter().any(|(p, m)| p == path && m.contains(contains)),
            "{errs:?}"
        );
    }

    #[rstest]
    #[case("errno(EPERM)", Action::Errno(1))]
    #[case("errno(38)", Action::Errno(38))]
    #[case("kill", Action::KillProcess)]
    #[case("kill-thread", Action::KillThread)]
    #[case("trap", Action::Trap)]
    #[case("log", Action::Log)]
    fn actions(#[case] text: &str, #[case] want: Action) {
        assert_eq!(Action::parse(text), Ok(want));
        assert_eq!(Action::parse(&want.to_string()), Ok(want));
    }
}
