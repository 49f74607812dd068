//! Namespaces: what kekkai unshares at clone (launch step 2) as PrivateNetwork=, PrivateIPC=,
//! ProtectHostname=, PrivateUsers= and, from the seccomp filter, RestrictNamespaces=.

use super::directive::{Directive, Unit, Value};
use super::seccomp::denies;
use crate::plan::seccomp::Match;
use crate::plan::{MountKind, Namespace, Network, Plan, names};

pub(super) fn write(plan: &Plan, o: &mut Unit) {
    o.heading("namespaces");
    match *plan.network {
        Network::None => o.set(Directive::PrivateNetwork, Value::Yes),
        Network::Host => o.note("network: host; the unit shares the host's network."),
        Network::User => o.set_why(
            Directive::PrivateNetwork,
            Value::Yes,
            "network: user (pasta, the egress rules, published ports) has no unit directive: \
             the unit gets no network at all. kekkai only.",
        ),
    }
    if plan.has(Namespace::Ipc) {
        o.set(Directive::PrivateIPC, Value::Yes);
    }
    if plan.has(Namespace::Uts) {
        match &plan.hostname {
            Some(h) => o.set_why(
                Directive::ProtectHostname,
                Value::Yes,
                format!(
                    "kekkai names the host `{h}`; systemd keeps the host's name in the unit's UTS \
                     namespace and can't set one: kekkai only."
                ),
            ),
            None => o.set(Directive::ProtectHostname, Value::Yes),
        }
    }
    if plan.has(Namespace::User) {
        if plan.userns_added {
            o.note(
                "kekkai added a user namespace only because the caller is unprivileged; a \
                 system unit doesn't need one.",
            );
        } else {
            o.set_why(
                Directive::PrivateUsers,
                Value::Yes,
                "PrivateUsers=yes maps root and the unit's user to themselves and every other id \
                 to nobody (kekkai maps only what the policy names); capabilities then count \
                 only inside the unit's user namespace, not for host resources.",
            );
        }
    }
    if plan.has(Namespace::Pid) && !plan.mounts.iter().any(|m| m.kind == MountKind::Proc) {
        o.note(
            "kekkai gives the program a PID namespace; newer systemd versions offer \
             PrivatePIDs=yes.",
        );
    }
    if plan.has(Namespace::Cgroup) {
        o.note(
            "kekkai gives the program a cgroup namespace; ProtectControlGroups=yes below makes \
             the hierarchy read-only (kekkai shows no /sys at all).",
        );
    }
    if plan.has(Namespace::Time) {
        o.note("kekkai gives the program a time namespace; systemd has none: kekkai only.");
    }
    let s = &plan.seccomp;
    let deny_mode = denies(s.default_action);
    let nr = |n: &str| names::syscall_number(n);
    let entry = |n: &str| nr(n).and_then(|nr| s.allowed.get(&nr));
    let restricted = deny_mode
        && !matches!(entry("clone"), Some(Match::Always))
        && entry("unshare").is_none()
        && entry("setns").is_none();
    if restricted {
        o.set_why(
            Directive::RestrictNamespaces,
            Value::Yes,
            "kekkai's seccomp filter denies new namespaces inside the sandbox.",
        );
    } else {
        o.note(
            "This policy lets the program create namespaces (its seccomp filter allows clone \
             with namespace flags, unshare or setns), so RestrictNamespaces= is left out.",
        );
    }
}
