//! Landlock: the access rights per path and the TCP ports kekkai grants (restrict_self, launch
//! step 10, after no_new_privs and in the new root). systemd has no Landlock directive: the
//! rules become a table in comments; TCP bind, where it can, becomes SocketBindAllow= and
//! SocketBindDeny=.

use super::directive::{Directive, Unit, Value};
use crate::plan::landlock::access;
use crate::plan::{Plan, Scope};

pub(super) fn write(plan: &Plan, o: &mut Unit) {
    o.heading("Landlock (kekkai only)");
    let l = &plan.landlock;
    if !l.enabled {
        o.note("Landlock is off in this policy.");
        return;
    }
    o.note(format!(
        "systemd has no Landlock directive. kekkai lets the program use files only as these \
         rules say (compat: {}; kernel ABI {} or later for all of it):",
        l.compat.name(),
        l.required_abi()
    ));
    for r in &l.rules {
        o.verbatim(format!(
            "  {:<22} {:<22} {}",
            r.path.display(),
            access::summary(r.access),
            r.from
        ));
    }
    o.note(
        "ProtectSystem=, InaccessiblePaths= and RestrictFileSystems= approximate only part of \
         this: they work on whole mounts, not on access rights per path.",
    );
    match l.tcp_bind.as_deref() {
        Some(ports) => {
            o.note(format!(
                "TCP bind: only to {}. SocketBindAllow=/SocketBindDeny= express it (with cgroup \
                 v2 and a systemd built with BPF; binding port 0 stays allowed there).",
                port_list(ports)
            ));
            let rules = port_ranges(ports);
            if rules.len() < 128 {
                for r in rules {
                    o.set(Directive::SocketBindAllow, Value::Text(format!("tcp:{r}")));
                }
                o.set(Directive::SocketBindDeny, Value::Word("tcp"));
            } else {
                o.note("More port ranges than systemd's 128 assignments: kekkai only.");
            }
        }
        None => o.note("TCP bind: not restricted."),
    }
    match l.tcp_connect.as_deref() {
        Some(ports) => o.note(format!(
            "TCP connect: only to {}; systemd filters by address (IPAddressDeny=), not by port: \
             kekkai only.",
            port_list(ports)
        )),
        None => o.note("TCP connect: not restricted."),
    }
    for scope in l.scopes.iter() {
        match scope {
            Scope::AbstractUnix => o.note(
                "Scope abstract-unix: no connecting to abstract unix sockets outside the sandbox \
                 (PrivateNetwork=yes gives the unit its own abstract namespace, otherwise kekkai \
                 only).",
            ),
            Scope::Signal => {
                o.note("Scope signal: no signals to processes outside the sandbox: kekkai only.")
            }
        }
    }
}

fn port_list(ports: &[u16]) -> String {
    if ports.is_empty() {
        "no port".into()
    } else {
        let list: Vec<String> = ports.iter().map(u16::to_string).collect();
        format!("port {}", list.join(", "))
    }
}

/// Sorted, deduplicated ports as `80`, `8080-8081`.
fn port_ranges(ports: &[u16]) -> Vec<String> {
    let mut out = Vec::new();
    let mut iter = ports.iter().copied();
    let Some(mut start) = iter.next() else {
        return out;
    };
    let mut end = start;
    let flush = |a: u16, b: u16, out: &mut Vec<String>| {
        out.push(if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        })
    };
    for p in iter {
        if end.checked_add(1) == Some(p) {
            end = p;
        } else {
            flush(start, end, &mut out);
            start = p;
            end = p;
        }
    }
    flush(start, end, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_collapse() {
        assert_eq!(
            port_ranges(&[80, 443, 8080, 8081]),
            ["80", "443", "8080-8081"]
        );
        assert_eq!(port_ranges(&[65534, 65535]), ["65534-65535"]);
        assert!(port_ranges(&[]).is_empty());
    }
}
