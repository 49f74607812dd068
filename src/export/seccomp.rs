//! seccomp: kekkai's filter stack (installed last, launch step 12, after no_new_privs) as
//! SystemCallArchitectures=, SystemCallFilter= (an allow list, or a deny list for `preset:
//! none` and `log`), SystemCallErrorNumber=, SystemCallLog= and RestrictAddressFamilies=.
//! systemd's filter can't look at arguments: kekkai's argument conditions become comments.
//! Syscall lists are sorted by name.

use std::collections::BTreeSet;

use super::directive::{Directive, Unit, Value};
use crate::plan::seccomp::{Action, Cond, Match, Op, SeccompPlan, presets};
use crate::plan::{HostPrivileges, Plan, Preset, names};

/// Does an action deny the call (so that an allowlist with it as default restricts)?
pub(super) fn denies(action: Action) -> bool {
    !matches!(action, Action::Allow | Action::Log)
}

/// Is this denial one of the rules of `host-privileges: deny`? RestrictSUIDSGID= stands for
/// those (see `privileges`), so the seccomp section leaves them out.
fn privilege_rule(s: &SeccompPlan, action: Action, name: &str, m: &Match) -> bool {
    if s.host_privileges != HostPrivileges::Deny {
        return false;
    }
    let eperm = action == Action::errno(libc::EPERM) && matches!(m, Match::When(_));
    let enosys = action == Action::errno(libc::ENOSYS);
    (eperm && presets::MODE_RULES.iter().any(|r| r.syscall == name))
        || (enosys && presets::MODE_UNREADABLE.iter().any(|(n, _)| *n == name))
}

pub(super) fn write(plan: &Plan, o: &mut Unit) {
    o.heading("seccomp");
    let s = &plan.seccomp;
    let name = |nr: &i64| names::syscall_name(*nr).map(str::to_owned);
    if s.filters.is_empty() {
        o.note("seccomp: preset none; kekkai installs no filter, and neither does this.");
        return;
    }
    o.set_why(
        Directive::SystemCallArchitectures,
        Value::Word("native"),
        "kekkai kills the process on an i386 or x32 system call; systemd blocks them.",
    );

    let enosys = Action::errno(libc::ENOSYS);
    // Syscalls every call of which is denied, by action.
    let denied_always: Vec<(Action, String)> = s
        .denied
        .iter()
        .flat_map(|(a, rules)| {
            rules
                .iter()
                .filter(|(_, m)| **m == Match::Always)
                .filter_map(move |(nr, m)| name(nr).map(|n| (*a, n, m)))
        })
        .filter(|(a, n, m)| !privilege_rule(s, *a, n, m))
        .map(|(a, n, _)| (a, n))
        .collect();
    let deny_mode = denies(s.default_action);
    if deny_mode {
        let mut allowed: BTreeSet<String> = s.allowed.keys().filter_map(name).collect();
        for (action, n) in &denied_always {
            if *action == enosys && allowed.contains(n) {
                o.note(format!(
                    "kekkai answers {n} with ENOSYS so that libc falls back to an older call; \
                     systemd's allow list can't give one syscall its own errno (a missing one \
                     would get EPERM and break that fallback), so {n} stays allowed here."
                ));
                if n == "clone3" {
                    o.note(
                        "clone3 keeps its flags in memory a filter can't read: whether \
                         RestrictNamespaces= also answers it with ENOSYS depends on the systemd \
                         version; kekkai's answer is certain.",
                    );
                }
                continue;
            }
            allowed.remove(n);
            if *action != s.default_action {
                o.note(format!(
                    "kekkai answers {n} with {action}; systemd gives it the default below."
                ));
            }
        }
        if allowed.is_empty() {
            allowed.insert("exit_group".into());
        }
        o.set_why(
            Directive::SystemCallFilter,
            Value::Words(allowed.into_iter().collect()),
            "A systemd older than a name in this list warns at load and leaves the name out: \
             the program then can't use that call.",
        );
        match s.default_action {
            Action::Errno(n) => {
                let errno = i32::try_from(n)
                    .ok()
                    .and_then(names::errno_name)
                    .unwrap_or_else(|| n.to_string());
                o.set(Directive::SystemCallErrorNumber, Value::Text(errno));
            }
            Action::KillProcess => {
                o.note("Other syscalls kill the process (systemd's default without an errno).")
            }
            other => o.note(format!(
                "kekkai answers other syscalls with {other}; systemd kills the process."
            )),
        }
    } else {
        // Everything runs unless denied: a deny list, and with `log` a log of the rest.
        let mut words = Vec::new();
        for (action, n) in &denied_always {
            match action {
                Action::Errno(e) => {
                    let errno = i32::try_from(*e)
                        .ok()
                        .and_then(names::errno_name)
                        .unwrap_or_else(|| e.to_string());
                    words.push(format!("{n}:{errno}"));
                }
                Action::KillProcess => words.push(n.clone()),
                other => {
                    o.note(format!(
                        "kekkai answers {n} with {other}; systemd kills the process."
                    ));
                    words.push(n.clone());
                }
            }
        }
        words.sort();
        if !words.is_empty() {
            o.set(
                Directive::SystemCallFilter,
                Value::Text(format!("~{}", words.join(" "))),
            );
        }
        if s.default_action == Action::Log && s.preset != Preset::None {
            let allowed: BTreeSet<String> = s.allowed.keys().filter_map(name).collect();
            let list: Vec<&str> = allowed.iter().map(String::as_str).collect();
            o.set_why(
                Directive::SystemCallLog,
                Value::Text(format!("~{}", list.join(" "))),
                "preset log: every syscall the allow list lacks runs and is logged; SystemCallLog= \
                 does the same (to the journal, not the audit log).",
            );
        }
    }

    // Argument conditions: what systemd's filter can't look at.
    let mut conditioned: Vec<(String, String, &'static str)> = Vec::new();
    for (nr, m) in &s.allowed {
        if let (Match::When(sets), Some(n)) = (m, name(nr)) {
            let covered_by = match n.as_str() {
                "clone" => "RestrictNamespaces= covers the namespace flags",
                "socket" => "RestrictAddressFamilies= covers the families",
                "personality" => "LockPersonality= covers it",
                "ioctl" => {
                    "nothing covers it (kernels since 6.2 can refuse TIOCSTI for everyone: \
                     dev.tty.legacy_tiocsti=0)"
                }
                _ => "nothing covers it",
            };
            conditioned.push((n, when_text(sets), covered_by));
        }
    }
    if !conditioned.is_empty() {
        o.note(
            "kekkai allows these only with argument conditions, which SystemCallFilter= can't \
             express; systemd allows them with any arguments:",
        );
        for (n, cond, by) in &conditioned {
            o.item(format!("{n}: when {cond}; {by}."));
        }
    }
    for (action, rules) in &s.denied {
        for (nr, m) in rules {
            if let (Match::When(sets), Some(n)) = (m, name(nr)) {
                if privilege_rule(s, *action, &n, m) {
                    continue;
                }
                o.note(format!(
                    "kekkai answers {n} with {action} when {}; an argument filter, kekkai only.",
                    when_text(sets)
                ));
            }
        }
    }
    for (n, why) in &s.reasons {
        o.note(format!("Policy reason for {n}: {why}"));
    }

    match &s.socket_families {
        Some(fams) if deny_mode => {
            let mut list: Vec<String> = fams.iter().map(|f| family_name(*f)).collect();
            if s.netlink_route {
                list.push("AF_NETLINK".into());
                o.note("kekkai allows AF_NETLINK for NETLINK_ROUTE only; RestrictAddressFamilies= can't filter the protocol, so systemd allows every netlink protocol.");
            }
            if list.is_empty() {
                o.set(Directive::RestrictAddressFamilies, Value::Word("none"));
            } else {
                o.set(Directive::RestrictAddressFamilies, Value::Words(list));
            }
        }
        Some(_) => o.note("preset log: socket families outside the list are logged, not denied."),
        None => {}
    }
}

/// `AF_INET6` for 10.
fn family_name(f: u64) -> String {
    names::SOCKET_FAMILIES
        .iter()
        .find(|(_, n)| *n == f)
        .map(|(name, _)| format!("AF_{}", name.to_ascii_uppercase()))
        .unwrap_or_else(|| f.to_string())
}

/// `(u32)arg1 != 0x5412 and (u32)arg1 != 0x541c or ...`
fn when_text(sets: &[Vec<Cond>]) -> String {
    sets.iter()
        .map(|conds| {
            conds
                .iter()
                .map(cond_text)
                .collect::<Vec<_>>()
                .join(" and ")
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

fn cond_text(c: &Cond) -> String {
    let arg = if c.width32 {
        format!("(u32)arg{}", c.arg)
    } else {
        format!("arg{}", c.arg)
    };
    let v = c.value;
    match c.op {
        Op::Eq => format!("{arg} == {v:#x}"),
        Op::Ne => format!("{arg} != {v:#x}"),
        Op::Lt => format!("{arg} < {v:#x}"),
        Op::Le => format!("{arg} <= {v:#x}"),
        Op::Gt => format!("{arg} > {v:#x}"),
        Op::Ge => format!("{arg} >= {v:#x}"),
        Op::MaskedEq(mask) => format!("{arg} & {mask:#x} == {v:#x}"),
    }
}
