//! Privileges: the capability bounding and ambient sets (launch step 8), no_new_privs (step 9)
//! and what follows from the kept capabilities and the seccomp filter: the Protect*= family,
//! LockPersonality=, RestrictRealtime=, and RestrictSUIDSGID= for `host-privileges: deny`.

use super::directive::{Directive, Unit, Value};
use super::seccomp::denies;
use crate::plan::seccomp::Match;
use crate::plan::{HostPrivileges, Plan, names};

pub(super) fn write(plan: &Plan, o: &mut Unit) {
    o.heading("privileges");
    let caps: Vec<String> = plan
        .caps
        .names()
        .iter()
        .map(|n| format!("CAP_{}", n.to_ascii_uppercase()))
        .collect();
    o.set(Directive::CapabilityBoundingSet, Value::Words(caps.clone()));
    if !caps.is_empty() && *plan.identity.uid != 0 {
        o.set(Directive::AmbientCapabilities, Value::Words(caps));
    }
    o.set(Directive::NoNewPrivileges, Value::Yes);
    let keeps =
        |name: &str| names::capability(name).is_some_and(|n| plan.caps.keep & (1u64 << n) != 0);
    o.set(Directive::ProtectKernelTunables, Value::Yes);
    if !keeps("sys_module") {
        o.set(Directive::ProtectKernelModules, Value::Yes);
    }
    if !keeps("syslog") {
        o.set(Directive::ProtectKernelLogs, Value::Yes);
    }
    o.set(Directive::ProtectControlGroups, Value::Yes);
    if !keeps("sys_time") {
        o.set(Directive::ProtectClock, Value::Yes);
    }
    let s = &plan.seccomp;
    let personality = names::syscall_number("personality").and_then(|n| s.allowed.get(&n));
    if denies(s.default_action) && !matches!(personality, Some(Match::Always)) {
        o.set(Directive::LockPersonality, Value::Yes);
    }
    if !keeps("sys_nice") {
        o.set(Directive::RestrictRealtime, Value::Yes);
    }
    if plan.host_privileges == HostPrivileges::Deny {
        o.set_why(
            Directive::RestrictSUIDSGID,
            Value::Yes,
            "host-privileges: deny. RestrictSUIDSGID= is systemd's form of kekkai's mode filter \
             (no setuid or setgid modes; openat2 fails); systemd does not refuse device nodes \
             by mode, PrivateDevices= and the empty bounding set keep them out.",
        );
    } else {
        o.note("host-privileges: allow: RestrictSUIDSGID= is left out.");
    }
    o.note(
        "MemoryDenyWriteExecute= is not implied by kekkai and left out: it breaks JIT \
         compilers (JavaScript, Java, LuaJIT, PCRE2's JIT).",
    );
}
