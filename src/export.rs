//! `kekkai export systemd`: a compiled plan as systemd hardening directives, ready for a drop-in.
//!
//! The output is a `[Service]` section that asks systemd to enforce as much of the policy as its
//! own directives can express, for running the program directly under systemd (not under
//! `kekkai run`: these directives would stop kekkai's own setup). Everything systemd can't
//! express (Landlock, the overlay root, seccomp argument filters, ...) is written as a `#`
//! comment in the place it belongs, so the file reads as a diff between the two.
//!
//! Everything is derived from the [`Plan`], so the text is deterministic for a given plan: paths
//! (`${PWD}`, `${HOME}`), ids and kept environment variables are the ones resolved for the caller
//! who ran the export, which the header says.
//!
//! Formats: byte amounts (`MemoryMax=`, `LimitFSIZE=`, tmpfs `size=`) are written in the largest
//! exact binary unit (`512M` is 512 × 1024², which is how systemd and tmpfs read the suffixes),
//! plain bytes when no unit divides them, `infinity` for no limit. Durations are whole seconds
//! (`RuntimeMaxSec=60`), else `ms`/`us`. `CPUQuota=` is a percentage of one CPU (1.5 CPUs →
//! `150%`). Syscall lists are sorted by name.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::plan::landlock::access;
use crate::plan::names;
use crate::plan::seccomp::presets as seccomp_presets;
use crate::plan::seccomp::{Action, Cond, Match, Op, SeccompPlan};
use crate::plan::{MountKind, Plan};
use crate::policy::model::{Compat, HostPrivileges, Namespace, Network, Preset, Scope};

/// Every directive [`systemd`] may write (all of them known to systemd 252 and later).
pub const DIRECTIVES: &[&str] = &[
    "User",
    "Group",
    "SupplementaryGroups",
    "WorkingDirectory",
    "RootDirectory",
    "ProtectSystem",
    "ProtectHome",
    "PrivateTmp",
    "TemporaryFileSystem",
    "BindPaths",
    "BindReadOnlyPaths",
    "InaccessiblePaths",
    "NoExecPaths",
    "ProtectProc",
    "ProcSubset",
    "PrivateDevices",
    "PrivateMounts",
    "PrivateNetwork",
    "PrivateIPC",
    "ProtectHostname",
    "PrivateUsers",
    "RestrictNamespaces",
    "Environment",
    "PassEnvironment",
    "UnsetEnvironment",
    "MemoryMax",
    "MemoryHigh",
    "MemorySwapMax",
    "TasksMax",
    "CPUQuota",
    "AllowedCPUs",
    "CPUWeight",
    "IOWeight",
    "LimitNOFILE",
    "LimitNPROC",
    "LimitCORE",
    "LimitFSIZE",
    "LimitAS",
    "LimitCPU",
    "LimitSTACK",
    "LimitMEMLOCK",
    "RuntimeMaxSec",
    "TimeoutStopSec",
    "CapabilityBoundingSet",
    "AmbientCapabilities",
    "NoNewPrivileges",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectControlGroups",
    "ProtectClock",
    "LockPersonality",
    "RestrictRealtime",
    "RestrictSUIDSGID",
    "SystemCallArchitectures",
    "SystemCallFilter",
    "SystemCallErrorNumber",
    "SystemCallLog",
    "RestrictAddressFamilies",
    "SocketBindAllow",
    "SocketBindDeny",
];

/// Variables of systemd's own protocols: systemd sets them for the unit itself.
const SYSTEMD_PROTOCOL_VARS: &[&str] = &[
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "LISTEN_PID",
    "NOTIFY_SOCKET",
    "WATCHDOG_PID",
    "WATCHDOG_USEC",
    "JOURNAL_STREAM",
    "INVOCATION_ID",
];

/// Login variables systemd adds for `User=`, which kekkai passes only when the policy does.
const LOGIN_VARS: &[&str] = &["HOME", "LOGNAME", "SHELL", "USER"];

/// Comment lines are wrapped at this width.
const WIDTH: usize = 96;

/// The systemd drop-in expressing `plan` as far as systemd can.
pub fn systemd(plan: &Plan) -> String {
    let mut o = Out::default();
    header(plan, &mut o);
    o.line("[Service]");
    identity(plan, &mut o);
    filesystem(plan, &mut o);
    namespaces(plan, &mut o);
    environment(plan, &mut o);
    resources(plan, &mut o);
    privileges(plan, &mut o);
    seccomp(plan, &mut o);
    landlock(plan, &mut o);
    kekkai_only(plan, &mut o);
    o.text
}

/// The text being built.
#[derive(Default)]
struct Out {
    text: String,
}

impl Out {
    fn line(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push('\n');
    }

    /// `Key=Value`.
    fn set(&mut self, key: &'static str, value: &str) {
        self.line(&format!("{key}={value}"));
    }

    /// A comment paragraph, wrapped.
    fn note(&mut self, text: &str) {
        self.wrapped("# ", "# ", text);
    }

    /// An indented list item, wrapped with a hanging indent.
    fn item(&mut self, text: &str) {
        self.wrapped("#   ", "#     ", text);
    }

    /// A `- ` bullet, wrapped with a hanging indent.
    fn bullet(&mut self, text: &str) {
        self.wrapped("# - ", "#   ", text);
    }

    fn wrapped(&mut self, first: &str, rest: &str, text: &str) {
        let clean = comment_safe(text);
        let mut line = first.to_owned();
        let mut empty = true;
        for word in clean.split_whitespace() {
            if !empty && line.len() + 1 + word.len() > WIDTH {
                self.line(&line);
                line = rest.to_owned();
                empty = true;
            }
            if !empty {
                line.push(' ');
            }
            line.push_str(word);
            empty = false;
        }
        if !empty {
            self.line(&line);
        }
    }

    /// One comment line, as is (for tables).
    fn note_line(&mut self, text: &str) {
        let clean = comment_safe(text);
        if clean.is_empty() {
            self.line("#");
        } else {
            self.line(&format!("# {clean}"));
        }
    }

    fn heading(&mut self, title: &str) {
        self.line("");
        self.line(&format!("# --- {title}"));
    }
}

/// Control characters can't appear in a comment line.
fn comment_safe(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\n' { '?' } else { c })
        .collect()
}

fn header(plan: &Plan, o: &mut Out) {
    o.note(&format!(
        "Generated by kekkai export systemd from the policy `{}` (hash {}).",
        plan.name, plan.policy_hash
    ));
    if let Some(d) = &plan.description {
        o.note(d);
    }
    if !plan.sources.is_empty() {
        o.note(&format!("Policy files: {}.", plan.sources.join(", ")));
    }
    o.note_line("");
    o.note(
        "These are the systemd directives that express the policy as far as systemd can. A \
         comment marks each part only kekkai can enforce.",
    );
    o.note(
        "Paths and ids were resolved for the user who ran `kekkai export` (${PWD}, ${HOME}, \
         ${UID} and the caller's variables are already expanded): review them before \
         installing. The caller's environment values are never written here.",
    );
    o.note_line("");
    o.note(
        "Install: `systemctl edit UNIT` and paste this, or save it as \
         /etc/systemd/system/UNIT.d/kekkai.conf; then `systemctl daemon-reload` and restart \
         UNIT.",
    );
    o.note(
        "Use it with ExecStart= running the program itself, instead of kekkai: under \
         `ExecStart=kekkai run ...` these directives would stop kekkai's own setup, which needs \
         namespaces, mounts and capabilities.",
    );
}

fn identity(plan: &Plan, o: &mut Out) {
    o.heading("identity");
    let id = &plan.identity;
    match &id.user {
        Some(name) => o.set("User", &escape_specifiers(name)),
        None => {
            if id.uid != 0 {
                o.note(&format!(
                    "uid {} has no user name in the root's passwd; systemd accepts the number.",
                    id.uid
                ));
            }
            o.set("User", &id.uid.to_string());
        }
    }
    o.set("Group", &id.gid.to_string());
    if !id.groups.is_empty() {
        let groups: Vec<String> = id.groups.iter().map(u32::to_string).collect();
        o.set("SupplementaryGroups", &groups.join(" "));
    }
    if id.uid == 65534 {
        o.note(
            "systemd warns about running as nobody; DynamicUser=yes gives the unit a fresh \
             unprivileged id instead.",
        );
    }
}

fn filesystem(plan: &Plan, o: &mut Out) {
    o.heading("filesystem");
    let lowers = &plan.rootfs.lowers;
    let host_root = lowers.len() == 1 && lowers.iter().all(|l| l == Path::new("/"));
    if !host_root {
        match lowers.as_slice() {
            [one] => match path_word(one, false) {
                Some(w) => o.set("RootDirectory", &w),
                None => o.note(&format!(
                    "The root is {}, a path systemd can't be given.",
                    one.display()
                )),
            },
            _ => {
                let list: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
                o.note(&format!(
                    "kekkai stacks the layers {} (top first) into the root; systemd has no \
                     overlay of several trees: kekkai only.",
                    list.join(", ")
                ));
            }
        }
    }
    o.set("ProtectSystem", "strict");
    if plan.rootfs.writable {
        o.note(&format!(
            "The policy's root is writable, with every write thrown away at exit (a {} tmpfs \
             layer). systemd has no throw-away layer over the host's tree, so the host stays \
             read-only here: add ReadWritePaths= or TemporaryFileSystem= for what the program \
             must write.",
            bytes(plan.rootfs.size)
        ));
    }
    o.note(
        "kekkai builds a fresh root: a read-only overlay per top-level directory, the host's \
         /proc, /sys and /dev replaced, and no way back to the host's tree after pivot_root. \
         systemd hardens the host's own tree in place: kekkai only.",
    );

    let is = |kind: fn(&MountKind) -> bool, target: &str| {
        plan.mounts
            .iter()
            .any(|m| kind(&m.kind) && m.target == Path::new(target))
    };
    let hide = |k: &MountKind| matches!(k, MountKind::Hide);
    let tmpfs = |k: &MountKind| matches!(k, MountKind::Tmpfs { .. });
    let covered = |path: &str| {
        plan.mounts.iter().any(|m| {
            matches!(m.kind, MountKind::Hide | MountKind::Tmpfs { .. })
                && Path::new(path).starts_with(&m.target)
        })
    };
    let protect_home = is(hide, "/home") && is(hide, "/root");
    if protect_home {
        o.set("ProtectHome", "tmpfs");
        if !covered("/run/user") {
            o.note("ProtectHome= also hides /run/user, which the policy leaves visible.");
        }
    }
    let mut proc = false;
    let mut dev = false;
    for m in &plan.mounts {
        let target = &m.target;
        if m.key.to_string().starts_with("env.") {
            o.note(&format!(
                "kekkai binds {} for the caller's systemd protocols ({}); under systemd the \
                 unit gets its own.",
                target.display(),
                m.key
            ));
            continue;
        }
        match &m.kind {
            MountKind::Hide => {
                if protect_home && (target == Path::new("/home") || target == Path::new("/root")) {
                    continue;
                }
                match path_word(target, false) {
                    Some(w) => o.set("InaccessiblePaths", &format!("-{w}")),
                    None => unexpressible(o, m.key.to_string(), target),
                }
                if target == Path::new("/run") {
                    o.note(
                        "/run holds systemd's notify socket: a Type=notify unit needs \
                         BindReadOnlyPaths=/run/systemd/notify as well.",
                    );
                }
            }
            MountKind::Tmpfs { size, mode, exec } if target == Path::new("/tmp") => {
                o.set("PrivateTmp", "yes");
                o.note(&format!(
                    "kekkai's /tmp is a {} tmpfs (mode {mode:04o}); PrivateTmp= has no size: \
                     TemporaryFileSystem=/tmp:size={},mode={mode:04o} would have one.",
                    bytes(*size),
                    bytes(*size)
                ));
                if !is(tmpfs, "/var/tmp") {
                    o.note("PrivateTmp= also gives the unit a private, writable /var/tmp.");
                }
                if !exec {
                    o.set("NoExecPaths", "/tmp");
                }
            }
            MountKind::Tmpfs { size, mode, exec } => {
                let word = path_word(target, false).filter(|_| {
                    // The path and the options are split at the first colon.
                    !target.as_os_str().as_encoded_bytes().contains(&b':')
                });
                match word {
                    Some(w) => {
                        let noexec = if *exec { "" } else { ",noexec" };
                        o.set(
                            "TemporaryFileSystem",
                            &format!("{w}:size={},mode={mode:04o}{noexec}", bytes(*size)),
                        );
                    }
                    None => unexpressible(o, m.key.to_string(), target),
                }
                if target == Path::new("/run") {
                    o.note(
                        "/run holds systemd's notify socket: a Type=notify unit needs \
                         BindReadOnlyPaths=/run/systemd/notify as well.",
                    );
                }
            }
            MountKind::Bind {
                source,
                writable,
                exec,
                ..
            } => {
                match (path_word(source, true), path_word(target, true)) {
                    (Some(s), Some(t)) => {
                        let key = if *writable {
                            "BindPaths"
                        } else {
                            "BindReadOnlyPaths"
                        };
                        o.set(key, &format!("{s}:{t}"));
                    }
                    _ => unexpressible(o, m.key.to_string(), target),
                }
                if !exec {
                    if let Some(t) = path_word(target, false) {
                        o.set("NoExecPaths", &t);
                    }
                }
                if source != target {
                    o.note(&format!(
                        "systemd creates the mount point {} on the host if it is missing.",
                        target.display()
                    ));
                }
            }
            MountKind::Proc => {
                if !proc {
                    o.set("ProtectProc", "invisible");
                    o.note(
                        "kekkai mounts a fresh /proc in its own PID namespace: only the \
                         sandbox's processes. ProtectProc=invisible hides other users' \
                         processes; newer systemd versions offer PrivatePIDs=yes for a PID \
                         namespace.",
                    );
                }
                proc = true;
            }
            MountKind::Dev => {
                if !dev {
                    o.set("PrivateDevices", "yes");
                }
                dev = true;
            }
            MountKind::Mqueue => o.note(&format!(
                "kekkai mounts a message-queue filesystem at {}; systemd mounts none \
                 (PrivateIPC= gives the namespace): kekkai only.",
                target.display()
            )),
        }
    }
    if !proc {
        o.set("ProtectProc", "invisible");
        o.set("ProcSubset", "pid");
        o.note("The policy mounts no /proc at all; systemd can only shrink the host's.");
    }
    if !dev {
        o.set("PrivateDevices", "yes");
        o.note(
            "The policy mounts no /dev at all; PrivateDevices= still gives null, zero, random \
             and the like.",
        );
    }
    o.set("PrivateMounts", "yes");
    order_note(plan, o);
    if plan.cwd != Path::new("/") {
        // WorkingDirectory= takes the rest of the line, without unescaping.
        let cwd = path_word(&plan.cwd, false).filter(|w| !w.contains('\\'));
        match cwd {
            Some(c) => o.set("WorkingDirectory", &c),
            None => o.note(&format!(
                "The working directory {} can't be written in a unit file.",
                plan.cwd.display()
            )),
        }
    }
}

/// kekkai mounts in policy order; systemd sorts by path, so a later mount over a deeper earlier
/// one ends up underneath instead of on top.
fn order_note(plan: &Plan, o: &mut Out) {
    let mounts: Vec<_> = plan
        .mounts
        .iter()
        .filter(|m| !m.key.to_string().starts_with("env."))
        .collect();
    for (i, earlier) in mounts.iter().enumerate() {
        for later in mounts.iter().skip(i + 1) {
            if earlier.target.starts_with(&later.target) {
                o.note(&format!(
                    "Order: {} ({}) covers {} ({}) in kekkai; systemd orders mounts by path and \
                     puts the deeper one on top.",
                    later.target.display(),
                    later.key,
                    earlier.target.display(),
                    earlier.key
                ));
            }
        }
    }
}

fn unexpressible(o: &mut Out, key: String, path: &Path) {
    o.note(&format!(
        "{key}: {} can't be written in a unit file (control characters, non-UTF-8 or a colon \
         where systemd splits): kekkai only.",
        path.display()
    ));
}

fn namespaces(plan: &Plan, o: &mut Out) {
    o.heading("namespaces");
    match plan.network {
        Network::None => o.set("PrivateNetwork", "yes"),
        Network::Host => o.note("network: host; the unit shares the host's network."),
    }
    if plan.has(Namespace::Ipc) {
        o.set("PrivateIPC", "yes");
    }
    if plan.has(Namespace::Uts) {
        o.set("ProtectHostname", "yes");
        if let Some(h) = &plan.hostname {
            o.note(&format!(
                "kekkai names the host `{h}`; systemd keeps the host's name in the unit's UTS \
                 namespace and can't set one: kekkai only."
            ));
        }
    }
    if plan.has(Namespace::User) {
        if plan.userns_added {
            o.note(
                "kekkai added a user namespace only because the caller is unprivileged; a \
                 system unit doesn't need one.",
            );
        } else {
            o.set("PrivateUsers", "yes");
            o.note(
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
        o.set("RestrictNamespaces", "yes");
        o.note("kekkai's seccomp filter denies new namespaces inside the sandbox.");
    } else {
        o.note(
            "This policy lets the program create namespaces (its seccomp filter allows clone \
             with namespace flags, unshare or setns), so RestrictNamespaces= is left out.",
        );
    }
}

fn environment(plan: &Plan, o: &mut Out) {
    o.heading("environment");
    o.note(
        "kekkai gives the program exactly these variables; systemd starts from its own \
         environment (PATH, LANG, and with User= also HOME, USER, LOGNAME, SHELL) and adds \
         them: it can't clear the rest. Kept variables pass from the service manager's \
         environment (PassEnvironment=), not from the exporting caller's.",
    );
    let env = &plan.env;
    if !env.clear {
        o.note(
            "env.clear is false: kekkai passes the caller's whole environment. A unit has no \
             caller; only the variables below are set.",
        );
    }
    let mut have: BTreeSet<&str> = BTreeSet::new();
    for (k, v) in &env.vars {
        if !env.from_policy.contains(k) {
            // A value from the caller's environment: never written into a file.
            continue;
        }
        let (Some(k), Some(v)) = (k.to_str(), v.to_str()) else {
            o.note(&format!(
                "{}: not UTF-8, can't be written in a unit file: kekkai only.",
                k.to_string_lossy()
            ));
            continue;
        };
        have.insert(k);
        if SYSTEMD_PROTOCOL_VARS.contains(&k) {
            o.note(&format!("{k}: systemd sets it for the unit itself."));
            continue;
        }
        match env_word(k, v) {
            Some(w) => o.set("Environment", &w),
            None => o.note(&format!(
                "{k}: systemd rejects this name or value (control characters): kekkai only."
            )),
        }
    }
    let pass: Vec<&str> = env
        .keep
        .iter()
        .map(String::as_str)
        .filter(|k| !SYSTEMD_PROTOCOL_VARS.contains(k) && !have.contains(k))
        .collect();
    if !pass.is_empty() {
        o.set("PassEnvironment", &pass.join(" "));
    }
    have.extend(pass);
    let unset: Vec<&str> = LOGIN_VARS
        .iter()
        .copied()
        .filter(|v| !have.contains(v))
        .collect();
    if !unset.is_empty() {
        o.set("UnsetEnvironment", &unset.join(" "));
    }
}

fn resources(plan: &Plan, o: &mut Out) {
    o.heading("resources");
    let l = &plan.limits;
    if let Some(v) = l.memory {
        o.set("MemoryMax", &bytes(v));
    }
    if let Some(v) = l.memory_high {
        o.set("MemoryHigh", &bytes(v));
    }
    if let Some(v) = l.swap {
        o.set("MemorySwapMax", &bytes(v));
    }
    if let Some(v) = l.pids {
        o.set("TasksMax", &v.to_string());
    }
    if let Some(m) = l.cpu_millis {
        o.set("CPUQuota", &cpu_quota(m));
    }
    if let Some(c) = &l.cpuset {
        o.set("AllowedCPUs", c);
    }
    if let Some(w) = l.cpu_weight {
        o.set("CPUWeight", &w.to_string());
    }
    if let Some(w) = l.io_weight {
        o.set("IOWeight", &w.to_string());
    }
    if l.any() && l.compat() == Compat::BestEffort {
        o.note(
            "The policy's limits are best-effort (dropped when no cgroup can be had); systemd \
             always applies them.",
        );
    }
    if let Some(p) = &l.parent {
        o.note(&format!(
            "kekkai places the sandbox below the cgroup {}; for a unit that is Slice=.",
            p.display()
        ));
    }
    for r in &plan.rlimits {
        let (key, value) = match r.name {
            "nofile" => ("LimitNOFILE", count(r.value)),
            "nproc" => ("LimitNPROC", count(r.value)),
            "core" => ("LimitCORE", bytes(r.value)),
            "fsize" => ("LimitFSIZE", bytes(r.value)),
            "as" => ("LimitAS", bytes(r.value)),
            "stack" => ("LimitSTACK", bytes(r.value)),
            "memlock" => ("LimitMEMLOCK", bytes(r.value)),
            "cpu" => ("LimitCPU", count(r.value)),
            other => {
                o.note(&format!("rlimit {other}: no systemd directive known here."));
                continue;
            }
        };
        o.set(key, &value);
    }
    if let Some(t) = plan.timeout {
        o.set("RuntimeMaxSec", &duration(t));
        o.set("TimeoutStopSec", &duration(plan.timeout_grace));
        o.note(
            "On timeout kekkai exits with 124; systemd stops the unit (SIGTERM, then SIGKILL \
             after TimeoutStopSec=) and marks it failed with result `timeout`.",
        );
    }
}

fn privileges(plan: &Plan, o: &mut Out) {
    o.heading("privileges");
    let caps: Vec<String> = plan
        .caps
        .names()
        .iter()
        .map(|n| format!("CAP_{}", n.to_ascii_uppercase()))
        .collect();
    o.set("CapabilityBoundingSet", &caps.join(" "));
    if !caps.is_empty() && plan.identity.uid != 0 {
        o.set("AmbientCapabilities", &caps.join(" "));
    }
    o.set("NoNewPrivileges", "yes");
    let keeps =
        |name: &str| names::capability(name).is_some_and(|n| plan.caps.keep & (1u64 << n) != 0);
    o.set("ProtectKernelTunables", "yes");
    if !keeps("sys_module") {
        o.set("ProtectKernelModules", "yes");
    }
    if !keeps("syslog") {
        o.set("ProtectKernelLogs", "yes");
    }
    o.set("ProtectControlGroups", "yes");
    if !keeps("sys_time") {
        o.set("ProtectClock", "yes");
    }
    let s = &plan.seccomp;
    let personality = names::syscall_number("personality").and_then(|n| s.allowed.get(&n));
    if denies(s.default_action) && !matches!(personality, Some(Match::Always)) {
        o.set("LockPersonality", "yes");
    }
    if !keeps("sys_nice") {
        o.set("RestrictRealtime", "yes");
    }
    if plan.host_privileges == HostPrivileges::Deny {
        o.set("RestrictSUIDSGID", "yes");
        o.note(
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

/// Does an action deny the call (so that an allowlist with it as default restricts)?
fn denies(action: Action) -> bool {
    !matches!(action, Action::Allow | Action::Log)
}

/// Is this denial one of the rules of `host-privileges: deny`? RestrictSUIDSGID= stands for
/// those (see `privileges`), so the seccomp section leaves them out.
fn privilege_rule(s: &SeccompPlan, action: Action, name: &str, m: &Match) -> bool {
    if s.host_privileges != HostPrivileges::Deny {
        return false;
    }
    let eperm = action == Action::Errno(libc::EPERM as u32) && matches!(m, Match::When(_));
    let enosys = action == Action::Errno(libc::ENOSYS as u32);
    (eperm
        && seccomp_presets::MODE_RULES
            .iter()
            .any(|r| r.syscall == name))
        || (enosys
            && seccomp_presets::MODE_UNREADABLE
                .iter()
                .any(|(n, _)| *n == name))
}

fn seccomp(plan: &Plan, o: &mut Out) {
    o.heading("seccomp");
    let s = &plan.seccomp;
    let name = |nr: &i64| names::syscall_name(*nr).map(str::to_owned);
    if s.filters.is_empty() {
        o.note("seccomp: preset none; kekkai installs no filter, and neither does this.");
        return;
    }
    o.set("SystemCallArchitectures", "native");
    o.note("kekkai kills the process on an i386 or x32 system call; systemd blocks them.");

    let enosys = Action::Errno(libc::ENOSYS as u32);
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
                o.note(&format!(
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
                o.note(&format!(
                    "kekkai answers {n} with {action}; systemd gives it the default below."
                ));
            }
        }
        if allowed.is_empty() {
            allowed.insert("exit_group".into());
        }
        let list: Vec<&str> = allowed.iter().map(String::as_str).collect();
        o.set("SystemCallFilter", &list.join(" "));
        o.note(
            "A systemd older than a name in this list warns at load and leaves the name out: \
             the program then can't use that call.",
        );
        match s.default_action {
            Action::Errno(n) => {
                let errno = i32::try_from(n)
                    .ok()
                    .and_then(names::errno_name)
                    .unwrap_or_else(|| n.to_string());
                o.set("SystemCallErrorNumber", &errno);
            }
            Action::KillProcess => {
                o.note("Other syscalls kill the process (systemd's default without an errno).")
            }
            other => o.note(&format!(
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
                    o.note(&format!(
                        "kekkai answers {n} with {other}; systemd kills the process."
                    ));
                    words.push(n.clone());
                }
            }
        }
        words.sort();
        if !words.is_empty() {
            o.set("SystemCallFilter", &format!("~{}", words.join(" ")));
        }
        if s.default_action == Action::Log && s.preset != Preset::None {
            let allowed: BTreeSet<String> = s.allowed.keys().filter_map(name).collect();
            let list: Vec<&str> = allowed.iter().map(String::as_str).collect();
            o.set("SystemCallLog", &format!("~{}", list.join(" ")));
            o.note(
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
            o.item(&format!("{n}: when {cond}; {by}."));
        }
    }
    for (action, rules) in &s.denied {
        for (nr, m) in rules {
            if let (Match::When(sets), Some(n)) = (m, name(nr)) {
                if privilege_rule(s, *action, &n, m) {
                    continue;
                }
                o.note(&format!(
                    "kekkai answers {n} with {action} when {}; an argument filter, kekkai only.",
                    when_text(sets)
                ));
            }
        }
    }
    for (n, why) in &s.reasons {
        o.note(&format!("Policy reason for {n}: {why}"));
    }

    match &s.socket_families {
        Some(fams) if deny_mode => {
            let mut list: Vec<String> = fams.iter().map(|f| family_name(*f)).collect();
            if s.netlink_route {
                list.push("AF_NETLINK".into());
                o.note("kekkai allows AF_NETLINK for NETLINK_ROUTE only; RestrictAddressFamilies= can't filter the protocol, so systemd allows every netlink protocol.");
            }
            if list.is_empty() {
                o.set("RestrictAddressFamilies", "none");
            } else {
                o.set("RestrictAddressFamilies", &list.join(" "));
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

fn landlock(plan: &Plan, o: &mut Out) {
    o.heading("Landlock (kekkai only)");
    let l = &plan.landlock;
    if !l.enabled {
        o.note("Landlock is off in this policy.");
        return;
    }
    o.note(&format!(
        "systemd has no Landlock directive. kekkai lets the program use files only as these \
         rules say (compat: {}; kernel ABI {} or later for all of it):",
        compat_name(l.compat),
        l.required_abi()
    ));
    for r in &l.rules {
        o.note_line(&format!(
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
    match &l.tcp_bind {
        Some(ports) => {
            o.note(&format!(
                "TCP bind: only to {}. SocketBindAllow=/SocketBindDeny= express it (with cgroup \
                 v2 and a systemd built with BPF; binding port 0 stays allowed there).",
                port_list(ports)
            ));
            let rules = port_ranges(ports);
            if rules.len() < 128 {
                for r in rules {
                    o.set("SocketBindAllow", &format!("tcp:{r}"));
                }
                o.set("SocketBindDeny", "tcp");
            } else {
                o.note("More port ranges than systemd's 128 assignments: kekkai only.");
            }
        }
        None => o.note("TCP bind: not restricted."),
    }
    match &l.tcp_connect {
        Some(ports) => o.note(&format!(
            "TCP connect: only to {}; systemd filters by address (IPAddressDeny=), not by port: \
             kekkai only.",
            port_list(ports)
        )),
        None => o.note("TCP connect: not restricted."),
    }
    for scope in &l.scopes {
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

fn compat_name(c: Compat) -> &'static str {
    match c {
        Compat::Hard => "hard",
        Compat::BestEffort => "best-effort",
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

fn kekkai_only(plan: &Plan, o: &mut Out) {
    o.heading("only kekkai enforces");
    o.bullet("The fresh read-only root and the mount order (see filesystem).");
    if plan.landlock.enabled {
        o.bullet("Landlock (see above).");
    }
    if !plan.seccomp.filters.is_empty() {
        o.bullet("seccomp argument filters and per-syscall answers (see seccomp).");
    }
    o.bullet(
        "Bind sources are checked at launch (device and inode, as planned); every inherited \
         descriptor but stdio and socket activation's is closed.",
    );
    if !plan.as_pid_1 && plan.has(Namespace::Pid) {
        o.bullet("A minimal reaper runs as PID 1 of the sandbox.");
    }
}

/// Bytes in the largest exact binary unit (`512M`), `infinity` for no limit.
fn bytes(n: u64) -> String {
    if n == u64::MAX {
        return "infinity".into();
    }
    for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
        if n >= 1 << shift && n % (1 << shift) == 0 {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

/// A count, `infinity` for no limit.
fn count(n: u64) -> String {
    if n == u64::MAX {
        "infinity".into()
    } else {
        n.to_string()
    }
}

/// Millicpus as a percentage of one CPU: 1500 → `150%`, 1555 → `155.5%`.
fn cpu_quota(millis: u64) -> String {
    match millis % 10 {
        0 => format!("{}%", millis / 10),
        tenth => format!("{}.{tenth}%", millis / 10),
    }
}

/// A systemd time span: `60`, `1500ms`, `250us`.
fn duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else if d.subsec_nanos() % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}us", d.as_micros().max(1))
    }
}

/// `%` starts a specifier in unit files.
fn escape_specifiers(s: &str) -> String {
    s.replace('%', "%%")
}

/// A path as one word of a unit file's path list (`bind`: colons escaped, as BindPaths= splits
/// source and target there). None when it can't be written safely: whitespace, quotes and
/// control characters would need quoting rules that differ between directives.
fn path_word(p: &Path, bind: bool) -> Option<String> {
    let s = p.to_str()?;
    if s.chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '"' || c == '\'')
    {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%%"),
            '\\' => out.push_str("\\\\"),
            ':' if bind => out.push_str("\\:"),
            c => out.push(c),
        }
    }
    Some(out)
}

/// `"NAME=value"` for Environment=, or None when systemd would reject it (names are letters,
/// digits and `_`, not starting with a digit; values have no control characters).
fn env_word(name: &str, value: &str) -> Option<String> {
    let name_ok = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.chars().next().is_some_and(|c| !c.is_ascii_digit());
    if !name_ok || value.chars().any(char::is_control) {
        return None;
    }
    let mut out = String::from("\"");
    for c in format!("{name}={value}").chars() {
        match c {
            '%' => out.push_str("%%"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.push('"');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caller::Caller;
    use crate::policy::PolicySource;
    use rstest::rstest;
    use std::path::PathBuf;

    fn caller(root: bool) -> Caller {
        let c = Caller {
            pwd: PathBuf::from("/usr"),
            ..Caller::for_tests()
        };
        if root { c.as_root() } else { c }
    }

    fn plan_of(name: &'static str, root: bool) -> Plan {
        let c = caller(root);
        if name == "build" && root {
            return build_as_root(c);
        }
        let loaded = crate::policy::load(&PolicySource::Shipped(name), &c).unwrap();
        crate::plan::compile(&loaded, &c).unwrap()
    }

    /// `build` runs a root caller's program as the owner of the current directory, and refuses
    /// a root-owned one: compile it in a directory that belongs to nobody (named per thread, so
    /// that two exports on one thread are the same; removed once compiled).
    fn build_as_root(c: Caller) -> Plan {
        let thread = format!("{:?}", std::thread::current().id());
        let tag: String = thread.chars().filter(char::is_ascii_digit).collect();
        let dir =
            std::env::temp_dir().join(format!("kekkai-export-build-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        if nix::unistd::geteuid().is_root() {
            let nobody = 65534;
            nix::unistd::chown(
                &dir,
                Some(nix::unistd::Uid::from_raw(nobody)),
                Some(nix::unistd::Gid::from_raw(nobody)),
            )
            .unwrap();
        }
        let c = Caller {
            pwd: dir.clone(),
            ..c
        };
        let loaded = crate::policy::load(&PolicySource::Shipped("build"), &c).unwrap();
        let plan = crate::plan::compile(&loaded, &c);
        let _ = std::fs::remove_dir(&dir);
        plan.unwrap()
    }

    fn export(name: &'static str, root: bool) -> String {
        systemd(&plan_of(name, root))
    }

    fn export_yaml(yaml: &str) -> String {
        let c = caller(true);
        let loaded = crate::policy::load_str("t.yaml", yaml, &c).unwrap();
        systemd(&crate::plan::compile(&loaded, &c).unwrap())
    }

    fn directive<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
        text.lines()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .collect()
    }

    fn shipped() -> Vec<&'static str> {
        crate::policy::shipped::names().collect()
    }

    #[rstest]
    #[case::service_root(
        "service",
        true,
        &[
            "User=www-data",
            "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
            "AmbientCapabilities=CAP_NET_BIND_SERVICE",
            "MemoryMax=512M",
            "TasksMax=128",
            "CPUQuota=100%",
            "LimitNOFILE=65536",
            "LimitCORE=0",
            "ProtectSystem=strict",
            "ProtectHome=tmpfs",
            "TemporaryFileSystem=/run:size=16M,mode=0755",
            "PrivateTmp=yes",
            "NoExecPaths=/tmp",
            "PrivateIPC=yes",
            "ProtectHostname=yes",
            "RestrictNamespaces=yes",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
            "SystemCallErrorNumber=EPERM",
            "SystemCallArchitectures=native",
            "SocketBindAllow=tcp:80",
            "SocketBindAllow=tcp:443",
            "SocketBindAllow=tcp:8080",
            "SocketBindDeny=tcp",
            "ProtectProc=invisible",
            "PrivateDevices=yes",
            "NoNewPrivileges=yes",
            "LockPersonality=yes",
        ],
        &["PrivateNetwork=", "PrivateUsers=", "RuntimeMaxSec=", "MemoryDenyWriteExecute=", "WorkingDirectory="],
    )]
    #[case::service_rootless(
        "service",
        false,
        &["User=www-data", "AmbientCapabilities=CAP_NET_BIND_SERVICE", "MemoryMax=512M"],
        &["PrivateNetwork=", "PrivateUsers="],
    )]
    #[case::default_root(
        "default",
        true,
        &[
            "User=nobody",
            "Group=65534",
            "PrivateNetwork=yes",
            "PrivateUsers=yes",
            "CapabilityBoundingSet=",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
            "ProtectHome=tmpfs",
            "InaccessiblePaths=-/run",
            "PrivateTmp=yes",
            "TemporaryFileSystem=/var/tmp:size=64M,mode=1777",
            "BindReadOnlyPaths=/usr:/usr",
            "WorkingDirectory=/usr",
            "MemoryMax=1G",
            "TasksMax=256",
            "LimitNOFILE=1024",
            "LimitCORE=0",
            "Environment=\"HOME=/tmp\"",
            "PassEnvironment=PATH LANG LANGUAGE LC_ALL LC_CTYPE TERM TZ COLORTERM NO_COLOR",
            "UnsetEnvironment=LOGNAME SHELL USER",
            "RestrictNamespaces=yes",
            "ProtectKernelTunables=yes",
            "ProtectKernelModules=yes",
            "ProtectKernelLogs=yes",
            "ProtectControlGroups=yes",
            "ProtectClock=yes",
            "RestrictRealtime=yes",
            "RestrictSUIDSGID=yes",
        ],
        &["AmbientCapabilities=", "RuntimeMaxSec=", "SocketBindAllow=", "NoExecPaths="],
    )]
    #[case::default_rootless(
        "default",
        false,
        &["User=nobody", "PrivateNetwork=yes", "PrivateUsers=yes", "CapabilityBoundingSet="],
        &["AmbientCapabilities="],
    )]
    #[case::untrusted_root(
        "untrusted",
        true,
        &[
            "RuntimeMaxSec=60",
            "TimeoutStopSec=2",
            "RestrictAddressFamilies=none",
            "MemoryMax=256M",
            "TasksMax=64",
            "CPUQuota=100%",
            "LimitNOFILE=256",
            "LimitFSIZE=64M",
            "BindReadOnlyPaths=/usr:/work",
            "WorkingDirectory=/work",
            "NoExecPaths=/tmp",
            "TemporaryFileSystem=/var/tmp:size=16M,mode=1777,noexec",
            "InaccessiblePaths=-/mnt",
            "InaccessiblePaths=-/media",
            "InaccessiblePaths=-/srv",
            "PrivateNetwork=yes",
        ],
        &["AmbientCapabilities="],
    )]
    #[case::untrusted_rootless(
        "untrusted",
        false,
        &["RuntimeMaxSec=60", "RestrictAddressFamilies=none"],
        &[],
    )]
    #[case::build_root(
        "build",
        true,
        &[
            "User=nobody",
            "Group=65534",
            "TemporaryFileSystem=/var/tmp:size=256M,mode=1777",
            "MemoryMax=4G",
            "TasksMax=1024",
            "LimitNOFILE=4096",
            "PrivateNetwork=yes",
            "InaccessiblePaths=-/run",
            "CapabilityBoundingSet=",
        ],
        &["AmbientCapabilities=", "BindReadOnlyPaths=/usr:/usr", "User=root"],
    )]
    #[case::build_rootless(
        "build",
        false,
        &["Group=1000", "BindPaths=/usr:/usr", "MemoryMax=4G"],
        &[],
    )]
    fn shipped_policies_export(
        #[case] name: &'static str,
        #[case] root: bool,
        #[case] present: &[&str],
        #[case] absent: &[&str],
    ) {
        let text = export(name, root);
        for want in present {
            assert!(
                text.lines().any(|l| l == *want),
                "{name}: missing `{want}` in\n{text}"
            );
        }
        for prefix in absent {
            assert!(
                !text.lines().any(|l| l.starts_with(prefix)),
                "{name}: unexpected `{prefix}` in\n{text}"
            );
        }
    }

    #[rstest]
    #[case("default", &["read", "write", "execve", "clone", "clone3", "ioctl", "socket", "personality"], &["ptrace", "mount", "bpf", "unshare", "setns", "init_module", "kexec_load"])]
    #[case("service", &["read", "bind", "accept4", "socket"], &["ptrace", "mount", "bpf"])]
    #[case("untrusted", &["read", "execve", "clone"], &["socket", "ptrace", "connect"])]
    #[case("build", &["read", "write", "clone"], &["ptrace", "mount"])]
    fn syscall_filters(#[case] name: &'static str, #[case] has: &[&str], #[case] lacks: &[&str]) {
        for root in [true, false] {
            let text = export(name, root);
            let filters = directive(&text, "SystemCallFilter");
            assert_eq!(filters.len(), 1, "{text}");
            let words: Vec<&str> = filters[0].split(' ').collect();
            let mut sorted = words.clone();
            sorted.sort_unstable();
            assert_eq!(words, sorted, "sorted by name");
            for w in has {
                assert!(words.contains(w), "{name}: {w} missing");
            }
            for w in lacks {
                assert!(!words.contains(w), "{name}: {w} present");
            }
            // The conditioned syscalls are named in a comment.
            assert!(text.contains("# kekkai allows these only with argument conditions"));
            assert!(text.contains("#   ioctl: when (u32)arg1 != 0x5412"));
        }
    }

    #[test]
    fn every_line_is_a_comment_the_section_or_a_known_directive() {
        for name in shipped() {
            for root in [true, false] {
                let text = export(name, root);
                let mut in_service = false;
                for line in text.lines() {
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    if line == "[Service]" {
                        assert!(!in_service, "one [Service] section");
                        in_service = true;
                        continue;
                    }
                    let (key, _) = line.split_once('=').unwrap_or_else(|| panic!("{line}"));
                    assert!(in_service, "{line} before [Service]");
                    assert!(DIRECTIVES.contains(&key), "{name}: unknown directive {key}");
                }
                assert!(in_service);
            }
        }
    }

    #[test]
    fn header_names_the_policy_and_how_to_install() {
        let plan = plan_of("default", false);
        let text = systemd(&plan);
        let head: String = text
            .lines()
            .take_while(|l| *l != "[Service]")
            .collect::<Vec<_>>()
            .join("\n");
        assert!(head.contains("Generated by kekkai export systemd"));
        assert!(head.contains("`default`"));
        assert!(head.contains(&plan.policy_hash));
        assert!(head.contains("systemctl edit UNIT"));
        assert!(head.contains("/etc/systemd/system/UNIT.d/kekkai.conf"));
        assert!(head.contains("resolved for the user who ran"));
        assert!(head.lines().all(|l| l.starts_with('#')));
    }

    #[test]
    fn lines_are_short_except_the_syscall_lists() {
        for name in shipped() {
            for root in [true, false] {
                for line in export(name, root).lines() {
                    if line.starts_with("SystemCallFilter=") || line.starts_with("SystemCallLog=") {
                        continue;
                    }
                    assert!(line.len() <= 4096, "{name}: {} chars", line.len());
                    if line.starts_with('#') && line.contains(' ') {
                        // Wrapped comments stay readable (tables may run a little over).
                        assert!(line.len() <= 200, "{line}");
                    }
                }
            }
        }
    }

    #[test]
    fn deterministic() {
        for name in shipped() {
            assert_eq!(export(name, false), export(name, false));
            assert_eq!(export(name, true), export(name, true));
        }
    }

    #[test]
    fn landlock_and_the_overlay_root_are_commented() {
        let text = export("default", false);
        assert!(text.contains("# --- Landlock (kekkai only)"));
        assert!(text.contains("systemd has no Landlock directive"));
        assert!(text.contains("RestrictFileSystems="));
        assert!(
            text.lines()
                .any(|l| l.starts_with("#   /usr ") && l.contains("read"))
        );
        assert!(text.contains("Scope signal"));
        assert!(text.contains("a read-only overlay per top-level directory"));
        assert!(text.contains("MemoryDenyWriteExecute= is not implied"));
        assert!(text.contains("kekkai names the host `kekkai`"));
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("MemoryDenyWriteExecute="))
        );
    }

    #[rstest]
    #[case::preset_none(
        "{version: 1, seccomp: {preset: none}, host-privileges: allow}",
        &[],
        &["SystemCallFilter=", "SystemCallArchitectures=", "RestrictAddressFamilies=", "RestrictNamespaces=", "LockPersonality=", "RestrictSUIDSGID="],
    )]
    // The privilege rules stay, with the architecture guard kekkai installs for them; systemd's
    // RestrictSUIDSGID= stands for them.
    #[case::preset_none_keeps_the_privilege_rules(
        "{version: 1, seccomp: {preset: none}}",
        &["SystemCallArchitectures=native", "RestrictSUIDSGID=yes"],
        &["SystemCallFilter=", "RestrictAddressFamilies=", "RestrictNamespaces=", "LockPersonality="],
    )]
    #[case::denylist(
        "{version: 1, seccomp: {preset: none, deny: [{syscall: ptrace, action: errno(EACCES)}, {syscall: mount, action: kill}]}}",
        &["SystemCallFilter=~mount ptrace:EACCES", "SystemCallArchitectures=native"],
        &["SystemCallErrorNumber="],
    )]
    #[case::log(
        "{version: 1, seccomp: {preset: log}}",
        &["SystemCallFilter=~clone3:ENOSYS"],
        &["SystemCallErrorNumber=", "RestrictAddressFamilies=", "RestrictNamespaces="],
    )]
    #[case::kill_default(
        "{version: 1, seccomp: {default-action: kill}}",
        &["RestrictNamespaces=yes"],
        &["SystemCallErrorNumber="],
    )]
    #[case::deny_removes_from_allow_list(
        "{version: 1, seccomp: {deny: [{syscall: mkdir, action: errno(EACCES)}]}}",
        &["SystemCallErrorNumber=EPERM"],
        &[],
    )]
    #[case::writable_root_stays_read_only(
        "{version: 1, rootfs: {writable: true}}",
        &["ProtectSystem=strict", "ProtectProc=invisible", "ProcSubset=pid", "PrivateDevices=yes"],
        &["WorkingDirectory="],
    )]
    #[case::limits(
        "{version: 1, limits: {memory: 1.5G, memory-high: 1000M, swap: 0, cpu: 1.555, cpuset: 0-1, cpu-weight: 50, io-weight: 200}, rlimits: {fsize: unlimited, cpu: 90s, nproc: 100, stack: 8M}, timeout: 1500ms, timeout-grace: 5s}",
        &["MemoryMax=1536M", "MemoryHigh=1000M", "MemorySwapMax=0", "CPUQuota=155.5%", "AllowedCPUs=0-1", "CPUWeight=50", "IOWeight=200", "LimitFSIZE=infinity", "LimitCPU=90", "LimitNPROC=100", "LimitSTACK=8M", "RuntimeMaxSec=1500ms", "TimeoutStopSec=5"],
        &[],
    )]
    #[case::env_escapes(
        "{version: 1, env: {set: {A: 'x y \"q\" 100% \\ end', HOME: /h, B: \"tab\\there\", C.D: x}}}",
        &[
            "Environment=\"A=x y \\\"q\\\" 100%% \\\\ end\"",
            "Environment=\"HOME=/h\"",
            "UnsetEnvironment=LOGNAME SHELL USER",
            "# B: systemd rejects this name or value (control characters): kekkai only.",
            "# C.D: systemd rejects this name or value (control characters): kekkai only.",
        ],
        &["Environment=\"B=", "Environment=\"C.D="],
    )]
    #[case::unwritable_paths(
        "{version: 1, mounts: [{tmpfs: '/a b', size: 1M}, {tmpfs: '/c:d', size: 1M}, {hide: '/e f'}]}",
        &["ProtectSystem=strict"],
        &["TemporaryFileSystem=", "InaccessiblePaths="],
    )]
    #[case::ports(
        "{version: 1, network: host, landlock: {tcp-bind: [8081, 80, 8080, 8082]}}",
        &["SocketBindAllow=tcp:80", "SocketBindAllow=tcp:8080-8082", "SocketBindDeny=tcp"],
        &["PrivateNetwork="],
    )]
    fn policies_export(#[case] yaml: &str, #[case] present: &[&str], #[case] absent: &[&str]) {
        let text = export_yaml(yaml);
        for want in present {
            assert!(
                text.lines().any(|l| l == *want),
                "missing `{want}` in\n{text}"
            );
        }
        for prefix in absent {
            assert!(
                !text.lines().any(|l| l.starts_with(prefix)),
                "unexpected `{prefix}` in\n{text}"
            );
        }
    }

    #[test]
    fn denied_syscalls_leave_the_allow_list() {
        let text =
            export_yaml("{version: 1, seccomp: {deny: [{syscall: mkdir, action: errno(EACCES)}]}}");
        let list = directive(&text, "SystemCallFilter")[0];
        assert!(!list.split(' ').any(|w| w == "mkdir"));
        assert!(list.split(' ').any(|w| w == "mkdirat"));
        assert!(text.contains("kekkai answers mkdir with errno(EACCES)"));
    }

    #[rstest]
    #[case("/a b", false, None)]
    #[case("/a\"b", false, None)]
    #[case("/a:b", true, Some("/a\\:b"))]
    #[case("/a:b", false, Some("/a:b"))]
    #[case("/50%", false, Some("/50%%"))]
    #[case("/a\\b", false, Some("/a\\\\b"))]
    #[case("/a\nb", false, None)]
    fn path_words(#[case] p: &str, #[case] bind: bool, #[case] want: Option<&str>) {
        assert_eq!(path_word(Path::new(p), bind).as_deref(), want);
    }

    #[rstest]
    #[case(0, "0")]
    #[case(4096, "4K")]
    #[case(512 << 20, "512M")]
    #[case(3 << 29, "1536M")]
    #[case(1 << 30, "1G")]
    #[case(1000, "1000")]
    #[case(u64::MAX, "infinity")]
    fn byte_amounts(#[case] n: u64, #[case] want: &str) {
        assert_eq!(bytes(n), want);
    }

    #[rstest]
    #[case(1000, "100%")]
    #[case(1500, "150%")]
    #[case(250, "25%")]
    #[case(1, "0.1%")]
    fn cpu_quotas(#[case] millis: u64, #[case] want: &str) {
        assert_eq!(cpu_quota(millis), want);
    }

    #[test]
    fn port_ranges_collapse() {
        assert_eq!(
            port_ranges(&[80, 443, 8080, 8081]),
            ["80", "443", "8080-8081"]
        );
        assert_eq!(port_ranges(&[65534, 65535]), ["65534-65535"]);
        assert!(port_ranges(&[]).is_empty());
    }

    /// Policies beyond the shipped ones that systemd's parser also checks.
    const EXTRA: &[&str] = &[
        "{version: 1, seccomp: {preset: none, deny: [{syscall: ptrace, action: errno(EACCES)}, {syscall: mount, action: kill}]}}",
        "{version: 1, seccomp: {preset: log}}",
        "{version: 1, seccomp: {default-action: kill}}",
        "{version: 1, rootfs: {writable: true}, mounts: [{tmpfs: '/a b', size: 1M}]}",
        "{version: 1, limits: {memory: 1.5G, memory-high: 1000M, swap: 0, cpu: 1.555, cpuset: 0-1, cpu-weight: 50, io-weight: 200}, rlimits: {fsize: unlimited, cpu: 90s, nproc: 100, stack: 8M, as: 4G, memlock: 64K}, timeout: 1500ms}",
        "{version: 1, env: {set: {A: 'x y \"q\" 100% \\ end', B: \"tab\\there\"}}}",
        "{version: 1, network: host, landlock: {tcp-bind: [8081, 80, 8080, 8082]}}",
    ];

    /// The syscalls the local systemd knows (`@known`), when it can say.
    fn systemd_known_syscalls() -> BTreeSet<String> {
        std::process::Command::new("systemd-analyze")
            .args(["syscall-filter", "@known"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('@'))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// systemd's own parser, when the machine has it: no warning may point at the drop-in,
    /// except for syscalls newer than that systemd (it ignores those, as the output says).
    #[test]
    fn systemd_analyze_accepts_the_output() {
        let Ok(version) = std::process::Command::new("systemd-analyze")
            .arg("--version")
            .output()
        else {
            // scripts/setup-test-env installs systemd: in CI a missing parser is a failure.
            assert!(
                std::env::var_os("CI").is_none_or(|v| v != "true"),
                "systemd-analyze not found (CI=true: a skip is a failure)"
            );
            eprintln!("systemd-analyze not found: skipped");
            return;
        };
        let major: u32 = String::from_utf8_lossy(&version.stdout)
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let known = systemd_known_syscalls();
        let mut texts: Vec<(String, String)> = Vec::new();
        for name in shipped() {
            for root in [true, false] {
                texts.push((format!("{name}-{root}"), export(name, root)));
            }
        }
        for (i, yaml) in EXTRA.iter().enumerate() {
            texts.push((format!("extra-{i}"), export_yaml(yaml)));
        }
        let dir = std::env::temp_dir().join(format!("kekkai-export-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut problems = Vec::new();
        for (label, drop_in) in &texts {
            let unit = dir.join(format!("kekkai-{label}.service"));
            let text = format!(
                "[Unit]\nDescription=kekkai export test\n[Service]\nExecStart=/bin/true\n{drop_in}"
            );
            std::fs::write(&unit, text).unwrap();
            let Ok(out) = std::process::Command::new("systemd-analyze")
                .args(["verify", "--man=no"])
                .arg(&unit)
                .output()
            else {
                continue;
            };
            let stderr = String::from_utf8_lossy(&out.stderr);
            let unit_name = unit.to_string_lossy().into_owned();
            for line in stderr.lines().filter(|l| l.contains(&unit_name)) {
                let newer_syscall = line
                    .split_once("Failed to parse system call, ignoring: ")
                    .is_some_and(|(_, name)| !known.is_empty() && !known.contains(name.trim()));
                // Directives newer than an old systemd are acceptable complaints too.
                // The output itself warns about running as nobody.
                let nobody = line.contains("Special user nobody configured");
                if newer_syscall || nobody || (major < 252 && line.contains("Unknown key")) {
                    continue;
                }
                problems.push(format!("{label}: {line}"));
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
