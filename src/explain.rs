//! `kekkai explain`: the merged policy and the numbered launch steps, each with what this plan
//! does in it and why the step sits where it does.

use serde_json::{Value, json};

use crate::plan::landlock::access;
use crate::plan::seccomp::presets as seccomp_presets;
use crate::plan::steps::{ORDER, Step};
use crate::plan::{Compat, EntryKind, HostPrivileges, MountKind, Network, Plan};
use crate::policy::LoadedPolicy;

/// What this plan does in one step, as lines.
pub fn details(plan: &Plan, step: Step) -> Vec<String> {
    let mut out = Vec::new();
    match step {
        Step::Plan => {
            out.push(format!(
                "policy {} ({}), hash {}",
                plan.name,
                plan.sources.join(" ← "),
                plan.policy_hash
            ));
            let l = &plan.limits;
            if l.any() {
                let parts: Vec<String> = l.parts().into_iter().map(|(_, t)| t).collect();
                out.push(format!(
                    "cgroup limits: {} ({})",
                    parts.join(", "),
                    l.compat().name()
                ));
                if let Some(p) = &l.parent {
                    out.push(format!("cgroup parent: {}", p.display()));
                }
                if l.memory.is_some() && *l.oom == crate::plan::Oom::Sandbox {
                    out.push(
                        "out of memory: an OOM kill ends the whole sandbox (memory.oom.group, \
                         or the supervisor on cgroup v1)"
                            .into(),
                    );
                }
                // Where each controller would go on this host, for this caller.
                let layout =
                    crate::launch::cgroup::detect(l, &crate::launch::cgroup::Hierarchies::read());
                for (c, choice) in &layout.choices {
                    out.push(match choice {
                        Ok(v) => format!(
                            "cgroup placement: {} on cgroup {}",
                            c.v2_name(),
                            match v {
                                crate::launch::cgroup::Version::V2 => "v2",
                                crate::launch::cgroup::Version::V1 => "v1",
                            }
                        ),
                        Err(why) => format!(
                            "cgroup placement: {} {}: {why}",
                            c.v2_name(),
                            if l.compat() == Compat::Hard {
                                "REFUSED (hard)"
                            } else {
                                "dropped (best-effort)"
                            }
                        ),
                    });
                }
            } else {
                out.push("cgroup limits: none".into());
            }
        }
        Step::Clone => {
            let names: Vec<&str> = plan.namespaces.iter().map(|n| n.name()).collect();
            out.push(format!("namespaces: {}", names.join(" ")));
            if plan.userns_added {
                out.push("user namespace added: the caller is unprivileged".into());
            }
            out.push(format!(
                "network: {}",
                match *plan.network {
                    Network::None => "none (loopback only)",
                    Network::Host => "host",
                    Network::User => "user (own namespace, user-mode networking through pasta)",
                }
            ));
            out.extend(
                plan.network_dropped
                    .iter()
                    .map(|d| format!("dropped (best-effort): {d}")),
            );
        }
        Step::IdMaps => {
            match &plan.userns {
                Some(ns) => {
                    out.push(format!(
                        "uid_map: {}",
                        ns.uid_map.trim_end().replace('\n', "; ")
                    ));
                    out.push(format!(
                        "gid_map: {}",
                        ns.gid_map.trim_end().replace('\n', "; ")
                    ));
                    if ns.deny_setgroups {
                        out.push("setgroups: deny".into());
                    }
                }
                None => out.push("no user namespace: ids switch directly in step 8".into()),
            }
            network_details(plan, &mut out);
        }
        Step::Rootfs => {
            let lowers: Vec<String> = plan
                .rootfs
                .lowers
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            out.push(format!(
                "root: {} over {} (skeleton tmpfs {})",
                if plan.rootfs.writable {
                    "writable throw-away layer"
                } else {
                    "read-only"
                },
                if plan.rootfs.image.is_some() {
                    "the image's layers".to_owned()
                } else {
                    lowers.join(", ")
                },
                size(plan.rootfs.size)
            ));
            if let Some(img) = &plan.rootfs.image {
                out.extend(image_lines(img));
            }
            let mut overlays = Vec::new();
            for e in &plan.rootfs.entries {
                match &e.kind {
                    EntryKind::Overlay(_) => overlays.push(format!("/{}", e.name)),
                    EntryKind::Bind(p) => out.push(format!(
                        "/{}: recursive read-only bind of {} (host mounts below it)",
                        e.name,
                        p.display()
                    )),
                    EntryKind::Symlink(t) => out.push(format!("/{} -> {}", e.name, t.display())),
                    EntryKind::File(p) => {
                        out.push(format!("/{}: read-only bind of {}", e.name, p.display()))
                    }
                    EntryKind::EmptyDir => out.push(format!("/{}: empty mount point", e.name)),
                }
            }
            if !overlays.is_empty() {
                let at = 1 + plan.rootfs.image.as_ref().map_or(0, |i| 1 + i.layers.len());
                let mut lines = vec![format!("overlays: {}", overlays.join(" "))];
                for g in &plan.rootfs.shared {
                    let names: Vec<String> = g
                        .members
                        .iter()
                        .filter_map(|&i| plan.rootfs.entries.get(i))
                        .map(|e| format!("/{}", e.name))
                        .collect();
                    lines.push(format!(
                        "one overlay of {} for {}, each a bind of its directory (one that is a mount of its own, or needs an upper layer, keeps its own)",
                        g.parent.display(),
                        names.join(" ")
                    ));
                }
                let at = at.min(out.len());
                out.splice(at..at, lines);
            }
        }
        Step::Mounts => {
            if plan.mounts.is_empty() {
                out.push("none".into());
            }
            for m in &plan.mounts {
                let t = m.target.display();
                out.push(match &m.kind {
                    MountKind::Bind {
                        source,
                        writable,
                        exec,
                        ..
                    } => format!(
                        "{}: bind {} → {t} ({}{})",
                        m.key,
                        source.display(),
                        if *writable { "writable" } else { "read-only" },
                        if *exec { "" } else { ", noexec" }
                    ),
                    MountKind::Tmpfs {
                        size: s,
                        mode,
                        exec,
                    } => format!(
                        "{}: tmpfs {t} (size {}, mode {mode:04o}{})",
                        m.key,
                        size(*s),
                        if *exec { "" } else { ", noexec" }
                    ),
                    MountKind::Hide => format!("{}: hide {t}", m.key),
                    MountKind::Proc => format!("{}: proc {t}", m.key),
                    MountKind::Dev => format!(
                        "{}: dev {t} (null zero full random urandom tty, pts, shm)",
                        m.key
                    ),
                    MountKind::Mqueue => format!("{}: mqueue {t}", m.key),
                    MountKind::File { contents } => format!(
                        "{}: file {t} (read-only, {} lines written by kekkai)",
                        m.key,
                        contents.lines().count()
                    ),
                });
            }
            for p in &plan.protected {
                out.push(format!("the policy's hiding holds over {p}"));
            }
        }
        Step::PivotRoot => out.push(if plan.rootfs.writable {
            "new root stays writable; writes vanish at exit".into()
        } else {
            "new root remounted read-only".into()
        }),
        Step::Environment => {
            if let Some(h) = &plan.hostname {
                out.push(format!("hostname: {h}"));
            }
            for r in &plan.rlimits {
                out.push(format!(
                    "rlimit {}: {}",
                    r.limit.name(),
                    if r.value == u64::MAX {
                        "unlimited".into()
                    } else {
                        r.value.to_string()
                    }
                ));
            }
            out.push(format!("cwd: {}", plan.cwd.display()));
            let names: Vec<String> = plan
                .env
                .vars
                .iter()
                .map(|(k, _)| k.to_string_lossy().into_owned())
                .collect();
            out.push(format!("environment: {}", names.join(" ")));
        }
        Step::DropPrivileges => {
            let id = &plan.identity;
            out.push(format!(
                "identity: uid {}{} gid {} groups [{}]{}",
                id.uid,
                id.user
                    .as_deref()
                    .map(|u| format!(" ({u})"))
                    .unwrap_or_default(),
                id.gid,
                id.groups
                    .iter()
                    .map(|g| g.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                id.owner_of
                    .as_deref()
                    .map(|p| format!(", the owner of {}", p.display()))
                    .unwrap_or_default()
            ));
            out.push(match plan.host_privileges {
                HostPrivileges::Deny => "host-privileges: deny (never host uid, gid or group 0; \
                                         no capability that reaches host files or ids)"
                    .into(),
                HostPrivileges::Allow => "host-privileges: allow (host root and any capability \
                                          are the policy's choice)"
                    .into(),
            });
            let keep = plan.caps.names();
            out.push(if keep.is_empty() {
                "capabilities: none (bounding, effective, permitted, inheritable and ambient sets empty)".into()
            } else {
                format!("capabilities kept: {}", keep.join(" "))
            });
        }
        Step::NoNewPrivs => out.push("always".into()),
        Step::Landlock => {
            let l = &plan.landlock;
            if !l.enabled {
                out.push("disabled by the policy (landlock.enabled: false)".into());
            } else {
                let kernel = match crate::sys::landlock_abi() {
                    Ok(abi) => format!("this kernel has ABI {abi}"),
                    Err(e) => format!("this kernel has no Landlock ({e:?})"),
                };
                out.push(format!(
                    "compat: {}; the policy needs ABI {}, {kernel}",
                    l.compat.name(),
                    l.required_abi()
                ));
                for r in &l.rules {
                    out.push(format!(
                        "{} {} [{}]",
                        r.path.display(),
                        access::summary(r.access),
                        r.from
                    ));
                }
                let ports = |p: Option<&Vec<u16>>| match p {
                    None => "not restricted".to_string(),
                    Some(v) if v.is_empty() => "none".to_string(),
                    Some(v) => v
                        .iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                };
                out.push(format!(
                    "tcp bind: {}; tcp connect: {}{}",
                    ports(l.tcp_bind.as_deref()),
                    ports(l.tcp_connect.as_deref()),
                    if l.tcp_connect_implied {
                        " (from network.allow, where the kernel has Landlock ABI 4)"
                    } else {
                        ""
                    }
                ));
                if !l.scopes.is_empty() {
                    let s: Vec<&str> = l.scopes.iter().map(|s| s.name()).collect();
                    out.push(format!("scopes: {}", s.join(" ")));
                }
            }
        }
        Step::CloseFds => out.push("keep 0 1 2".into()),
        Step::Seccomp => {
            let s = &plan.seccomp;
            let preset = format!("{:?}", s.preset).to_lowercase();
            out.push(format!(
                "preset: {preset}; default action: {}",
                s.default_action
            ));
            if let Some(f) = &s.socket_families {
                let mut names: Vec<&str> = f
                    .iter()
                    .filter_map(|n| {
                        crate::plan::names::SOCKET_FAMILIES
                            .iter()
                            .find(|(_, v)| v == n)
                            .map(|(k, _)| *k)
                    })
                    .collect();
                if s.netlink_route {
                    names.push(seccomp_presets::NETLINK_ROUTE_NAME);
                }
                out.push(format!(
                    "socket families: {}",
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(" ")
                    }
                ));
            }
            for f in &s.filters {
                out.push(format!(
                    "filter: {} — {} instructions",
                    f.name,
                    f.program.len()
                ));
            }
            if s.host_privileges == HostPrivileges::Deny {
                let names = |f: &dyn Fn(&seccomp_presets::ModeRule) -> bool| {
                    seccomp_presets::MODE_RULES
                        .iter()
                        .filter(|r| f(r))
                        .map(|r| r.syscall)
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                out.push(format!(
                    "host-privileges: deny: a mode with the setuid or setgid bit → errno(EPERM) \
                     in {}, and in {} when creating (O_CREAT, O_TMPFILE); a character or block \
                     device → errno(EPERM) in {}; {} → errno(ENOSYS) unless denied already (the \
                     filter can't read their modes)",
                    names(&|r| r.create_flags_arg.is_none()),
                    names(&|r| r.create_flags_arg.is_some()),
                    names(&|r| r.devices),
                    seccomp_presets::MODE_UNREADABLE
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
            }
            for (name, why) in &s.reasons {
                out.push(format!("rule {name}: {why}"));
            }
            if s.filters.is_empty() {
                out.push("no filter installed".into());
            }
        }
        Step::Exec => {
            out.push(if plan.as_pid_1 {
                "the program is PID 1".into()
            } else {
                "the program is PID 2 under kekkai's reaper (PID 1)".into()
            });
            if !plan.as_pid_1 && !plan.seccomp.spawn_clone {
                out.push(
                    "the reaper forks the program's process: the seccomp filter does not allow \
                     the clone(CLONE_VM | CLONE_VFORK) it would start it with"
                        .into(),
                );
            }
            if let Some(t) = plan.timeout {
                out.push(format!(
                    "timeout: {:?}, then SIGKILL after {:?}",
                    t, plan.timeout_grace
                ));
            }
        }
    }
    out
}

/// A byte count in the largest exact unit (the plan's one size formatter).
pub use crate::plan::units::format_size as size;

/// The human-readable explanation.
/// Step 3, `network: user`: pasta, published ports, resolvers, the egress rules.
fn network_details(plan: &Plan, out: &mut Vec<String>) {
    let Some(u) = &plan.user_net else {
        return;
    };
    out.push(format!(
        "pasta: {} {} ({})",
        u.pasta.program.display(),
        u.pasta.args.join(" "),
        if u.pasta.userns {
            "joins the sandbox's user namespace: its capabilities hold there only"
        } else {
            "no user namespace: pasta keeps CAP_SYS_ADMIN and CAP_NET_BIND_SERVICE in the \
             host's user namespace (give the policy `namespaces: [user, ...]` to avoid it)"
        }
    ));
    out.push(format!(
        "host loopback: {}",
        if u.host_loopback.is_empty() {
            "unreachable (pasta --tcp-ns none --udp-ns none --no-map-gw)".to_owned()
        } else {
            let p: Vec<String> = u
                .host_loopback
                .iter()
                .map(|h| format!("{}/{}", h.port, h.proto.name()))
                .collect();
            format!("only {} ({})", p.join(", "), u.host_loopback[0].key)
        }
    ));
    for p in &u.ports {
        out.push(format!("{}: publish {}", p.key, p.value));
    }
    out.push(format!(
        "{}: {}",
        u.dns.key,
        match &u.dns.value {
            crate::plan::network::Resolvers::Host => format!(
                "the host's resolver through pasta's forwarder {}",
                crate::plan::network::DNS_FORWARDER
            ),
            crate::plan::network::Resolvers::None => "no resolver".into(),
            crate::plan::network::Resolvers::Servers(s) => {
                let s: Vec<String> = s.iter().map(|a| a.to_string()).collect();
                s.join(" ")
            }
        }
    ));
    out.push(format!(
        "egress rules ({}, nftables table `inet kekkai` loaded by {} in the sandbox's network \
         namespace before the program starts; the program holds no CAP_NET_ADMIN to change them):",
        crate::plan::network::egress_key(&u.egress, &u.pasta.key),
        u.nft.display()
    ));
    out.extend(u.egress.lines().into_iter().map(|l| format!("  {l}")));
}

pub fn human(loaded: &LoadedPolicy, plan: &Plan) -> String {
    let mut out = String::new();
    out.push_str(&format!("policy: {}\n", plan.name));
    if let Some(d) = &plan.description {
        out.push_str(&format!("  {}\n", d.trim()));
    }
    out.push_str(&format!("sources: {}\n\n", plan.sources.join(" ← ")));
    out.push_str("merged policy:\n");
    let yaml = serde_yaml::to_string(&loaded.policy).unwrap_or_default();
    for line in yaml.lines() {
        out.push_str(&format!("  {line}\n"));
    }
    out.push_str("\nlaunch steps:\n");
    for info in ORDER.iter() {
        let side = match info.side {
            crate::plan::steps::Side::Parent => "parent",
            crate::plan::steps::Side::Child => "child",
        };
        out.push_str(&format!(
            "{:>3}. [{side}] {}: {}\n",
            info.number,
            info.step.name(),
            info.what
        ));
        out.push_str(&format!("       why here: {}\n", info.why));
        for d in details(plan, info.step) {
            out.push_str(&format!("       - {d}\n"));
        }
    }
    out
}

/// The JSON explanation.
pub fn json(loaded: &LoadedPolicy, plan: &Plan) -> Value {
    let steps: Vec<Value> = ORDER
        .iter()
        .map(|info| {
            json!({
                "number": info.number,
                "name": info.step.name(),
                "side": info.side,
                "what": info.what,
                "why": info.why,
                "details": details(plan, info.step),
            })
        })
        .collect();
    json!({
        "policy": {
            "name": plan.name,
            "description": plan.description,
            "sources": plan.sources,
            "hash": plan.policy_hash.get(),
        },
        "merged": serde_json::to_value(&loaded.policy).unwrap_or(Value::Null),
        "image": plan.rootfs.image.as_ref().map(|i| json!({
            "reference": i.reference,
            "id": i.id,
            "names": i.names,
            "manifest": i.manifest,
            "store": i.store,
            "layers": i.layers.iter().map(|l| json!({ "diff_id": l.diff_id, "path": l.path })).collect::<Vec<_>>(),
            "defaults": i.defaults,
        })),
        "steps": steps,
    })
}

/// An image root: what it is, and its layers top first (digests, where they are unpacked).
fn image_lines(img: &crate::plan::image::ImagePlan) -> Vec<String> {
    let mut out = vec![format!(
        "image: {} = {}{}, {} layer{} (top first, overlays with userxattr):",
        img.reference,
        img.id,
        if img.names.is_empty() {
            String::new()
        } else {
            format!(" ({})", img.names.join(", "))
        },
        img.layers.len(),
        if img.layers.len() == 1 { "" } else { "s" }
    )];
    for (i, l) in img.layers.iter().enumerate() {
        out.push(format!(
            "  layer {}: {} at {}",
            img.layers.len() - i,
            l.diff_id,
            l.path.display()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// Step 13 says when the reaper forks the program's process (the filters refuse its clone),
    /// and nothing more when it does not.
    #[rstest]
    #[case::clone(true, false)]
    #[case::fork(false, true)]
    fn the_exec_step_tells_a_fork(#[case] spawn_clone: bool, #[case] told: bool) {
        use crate::caller::Caller;
        use crate::policy::PolicySource;
        let caller = Caller {
            pwd: "/usr".into(),
            ..Caller::for_tests()
        };
        let loaded = crate::policy::load(&PolicySource::Shipped("default"), &caller).unwrap();
        let mut plan = crate::plan::compile(&loaded, &caller).unwrap();
        plan.seccomp.spawn_clone = spawn_clone;
        let lines = details(&plan, Step::Exec);
        let forks = lines.iter().any(|l| l.starts_with("the reaper forks"));
        assert_eq!(forks, told, "{lines:?}");
    }

    #[rstest]
    #[case(0, "0")]
    #[case(1023, "1023")]
    #[case(1024, "1K")]
    #[case(512 << 20, "512M")]
    #[case((1 << 30) + 1, "1073741825")]
    #[case(3 << 40, "3T")]
    fn sizes(#[case] n: u64, #[case] want: &str) {
        assert_eq!(size(n), want);
    }
}
