//! seccomp rules: the policy's `seccomp` section and `host-privileges` → which syscalls are
//! allowed, which are denied with which answer, and under which argument conditions.
//!
//! The preset's lists come first (with the argument-conditioned entries for ioctl, clone,
//! personality, clone3 and socket), then the policy's `allow` and `deny` rules, then, unless
//! `host-privileges: allow`, the rules that keep privileges in (after the policy's own, so an
//! `allow` can't lift them). Every error names its key path. Last, [`compile`] hands the rules
//! to `bpf` for the programs; nothing else here knows BPF.
//!
//! Ordering: all of it happens at plan time, before any process exists; the launch installs the
//! filters last, after PR_SET_NO_NEW_PRIVS (see the parent module).

use std::collections::BTreeMap;

use super::presets::{self, Group};
use super::{Action, Cond, HostPrivileges, Match, Op, Preset, SeccompPlan, bpf};
use crate::plan::diags::{Diags, suggest};
use crate::plan::names;
use crate::policy::KeyPath;
use crate::policy::model::{ArgCondition, ArgValue, Seccomp, SyscallRule};

/// Compiles the `seccomp` section, with the rules that keep privileges in unless `host` is
/// `allow`.
pub fn compile(
    spec: Option<&Seccomp>,
    host: HostPrivileges,
    diags: &mut Diags,
) -> Option<SeccompPlan> {
    // The default preset alone was compiled when kekkai was built.
    if let Some(plan) = super::prebuilt::lookup(spec, host) {
        return Some(plan);
    }
    build(spec, host, diags)
}

/// [`compile`], always compiling.
pub(super) fn build(
    spec: Option<&Seccomp>,
    host: HostPrivileges,
    diags: &mut Diags,
) -> Option<SeccompPlan> {
    let here = KeyPath::root().key("seccomp");
    let default = Seccomp::default();
    let spec = spec.unwrap_or(&default);
    let preset = spec.preset.map_or(Preset::Default, Preset::from);
    let mut default_action = match (preset, spec.default_action.as_deref()) {
        (Preset::Log, None) => Action::Log,
        (_, None) => Action::errno(libc::EPERM),
        (_, Some(text)) => match Action::parse(text) {
            Ok(Action::Allow) => {
                diags.push(
                    here.key("default-action"),
                    "`allow` as the default action would make the allowlist meaningless; for a denylist use `preset: none` with `deny` rules",
                );
                Action::errno(libc::EPERM)
            }
            Ok(a) => a,
            Err(e) => {
                diags.push(here.key("default-action"), e);
                Action::errno(libc::EPERM)
            }
        },
    };
    // What `deny` rules without their own action get: the default action, unless that one
    // does not deny (`log`).
    let deny_action = match default_action {
        Action::Log | Action::Allow => Action::errno(libc::EPERM),
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
        if preset == Preset::Strict {
            insert_strict_socketpair(&mut allowed);
        }
    }
    if preset == Preset::Empty {
        // Nothing is allowed but the `allow` rules; clone3 still answers ENOSYS, so that libc
        // falls back to clone (whose flags an `allow` rule can check) instead of failing.
        insert_clone3(&mut allowed, &mut denied);
        // kekkai installs the filters after the allowlist with seccomp() itself.
        if let Some(nr) = names::syscall_number("seccomp") {
            allowed.insert(
                nr,
                Match::When(vec![vec![Cond::u32(
                    0,
                    Op::Eq,
                    u64::from(libc::SECCOMP_SET_MODE_FILTER),
                )]]),
            );
        }
    }
    // Presets whose socket() is conditioned on the family.
    let families_filtered = conditioned || preset == Preset::Empty;

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
                        if let Some(best) = suggest(name, all) {
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
        None if matches!(preset, Preset::Strict | Preset::Empty) => Some(Vec::new()),
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
    if let (Some(fams), true) = (&socket_families, families_filtered) {
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
        socket_families: if families_filtered {
            socket_families
        } else {
            None
        },
        netlink_route: conditioned && netlink_route,
        reasons,
        host_privileges: host,
        filters: Vec::new(),
        spawn_clone: false,
    };
    match bpf::build_filters(&plan) {
        Ok(filters) => plan.set_filters(filters),
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
    insert_clone3(allowed, denied);
}

/// clone3's flags live in memory the filter can't read: answer ENOSYS so libc falls back to
/// clone, whose flags it can.
fn insert_clone3(
    allowed: &mut BTreeMap<i64, Match>,
    denied: &mut BTreeMap<Action, BTreeMap<i64, Match>>,
) {
    if let Some(n) = names::syscall_number("clone3") {
        denied
            .entry(Action::errno(libc::ENOSYS))
            .or_default()
            .insert(n, Match::Always);
        // Listed in the allowlist too, so that a stricter default action (kill, trap) can't
        // outrank the ENOSYS that makes libc fall back to clone.
        allowed.insert(n, Match::Always);
    }
}

/// AF_UNIX, and the socket types (the low four bits of socketpair's argument 1, below
/// SOCK_NONBLOCK and SOCK_CLOEXEC) `strict` lets socketpair create.
const AF_UNIX: u64 = 1;
const SOCK_TYPE_MASK: u64 = 0xf;
const SOCK_STREAM: u64 = 1;
const SOCK_SEQPACKET: u64 = 5;

/// `strict`'s socketpair: a connected pair of unix stream or seqpacket sockets, which is how
/// asyncio's and libuv's event loops wake themselves, how the JVM's NIO closes descriptors
/// (FileDispatcherImpl) and how runtimes talk to their own children and workers. A pair
/// reaches nothing outside the program: it has no name, the other end is the program's own,
/// and a stream or seqpacket socket ignores or refuses an address given to sendto or sendmsg.
/// A datagram pair is left out because it does not: unix_dgram_sendmsg sends to the address
/// it is given, a named socket of the host included. socket(), connect() and bind() stay out,
/// so the program can't reach the named sockets of the tree it sees.
fn insert_strict_socketpair(allowed: &mut BTreeMap<i64, Match>) {
    if let Some(n) = names::syscall_number("socketpair") {
        let pair = |ty| {
            vec![
                Cond::u32(0, Op::Eq, AF_UNIX),
                Cond::u32(1, Op::MaskedEq(SOCK_TYPE_MASK), ty),
            ]
        };
        allowed.insert(
            n,
            Match::When(vec![pair(SOCK_STREAM), pair(SOCK_SEQPACKET)]),
        );
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

/// `host-privileges: deny` in seccomp (data in `presets::MODE_RULES` and
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
        let rules = denied.entry(Action::errno(libc::EPERM)).or_default();
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
                    .entry(Action::errno(libc::ENOSYS))
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
        if let Some(best) = suggest(name, names::syscall_names()) {
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
    let ops: Vec<(&str, Op, &Option<ArgValue>)> = vec![
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
