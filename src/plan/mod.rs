//! Policy → Plan: everything the launcher will do, decided before any process exists.
//!
//! Compilation is pure apart from reading the filesystem (to resolve paths, users and the host
//! mount table). Every error it finds names the policy key that caused it, and all of them are
//! reported at once. The plan holds absolute paths, syscall numbers, compiled BPF, Landlock
//! access sets, cgroup values and the ordered launch steps.
//!
//! The plan is the closed vocabulary between the policy and the layers above it (launch,
//! export, audit, explain), which never read the policy model: the choices a policy makes are
//! the plan's own enums (`vocab.rs`), each item launch or export acts on carries the policy key
//! its errors name (`keyed.rs`, [`MountPlan::origin`]), and the names a policy may give
//! `kekkai audit` are listed here (`expect.rs`).
//!
//! Files: this one holds [`compile`] and the [`Plan`]; one module per mechanism (`fs/`,
//! `image.rs`, `identity.rs`, `privileges.rs`, `limits.rs`, `landlock.rs`, `seccomp/`), and the
//! leaves they share: `diags.rs` (the errors), `vocab.rs`, `keyed.rs`, `units.rs` (quantities),
//! `names.rs` (symbolic syscalls, errnos, flags), `steps.rs` (the launch order), `expect.rs`.

pub mod diags;
pub mod expect;
pub mod fs;
pub mod identity;
pub mod image;
pub mod keyed;
pub mod landlock;
pub mod limits;
pub mod names;
pub mod network;
pub mod privileges;
pub mod seccomp;
pub mod steps;
pub mod units;
pub mod vocab;

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::caller::Caller;
use crate::policy::{Diagnostics, KeyPath, LoadedPolicy, RawPolicy};

use self::diags::suggest;

pub use diags::{Diags, PlanError};
pub use fs::{EntryKind, MountKind, MountPlan, RootEntry, RootfsPlan, SharedLower};
pub use identity::{HostIds, IdentityPlan, UserNsPlan};
pub use keyed::Keyed;
pub use landlock::LandlockPlan;
pub use limits::{Controller, LimitsPlan, Rlimit, RlimitPlan};
pub use seccomp::SeccompPlan;
pub use vocab::{Compat, HostPrivileges, Namespace, Network, Oom, Preset, Scope, Terminal};

/// The environment the program gets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EnvPlan {
    /// Variables, in order.
    pub vars: Vec<(OsString, OsString)>,
    /// Names whose value the policy gives (`env.set`, and the default `PATH`), as opposed to
    /// values taken from the caller.
    pub from_policy: Vec<OsString>,
    /// Names `env.keep` asks for, present in the caller's environment or not.
    pub keep: Vec<String>,
    /// Whether the rest of the caller's environment is dropped (`env.clear`).
    pub clear: bool,
}

impl EnvPlan {
    /// Sets `name` to `value` as the policy's own: over the caller's value and the default, no
    /// longer one the caller's environment gives.
    pub fn put(&mut self, name: &str, value: &str) {
        self.vars.retain(|(n, _)| n != name);
        self.vars.push((name.into(), value.into()));
        self.keep.retain(|n| n != name);
        if !self.from_policy.iter().any(|n| n == name) {
            self.from_policy.push(name.into());
        }
    }
}

/// Capabilities the program keeps.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CapsPlan {
    /// Bit N set: capability N stays in the bounding set (and effective/permitted/ambient).
    pub keep: u64,
    /// Its policy key (`capabilities.keep`).
    pub key: KeyPath,
}

impl CapsPlan {
    /// The kept capabilities' names.
    pub fn names(&self) -> Vec<String> {
        (0..64u8)
            .filter(|n| self.keep & (1 << n) != 0)
            .map(names::capability_name)
            .collect()
    }
}

/// Everything a launch does.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// The policy's name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// The files merged, the policy first.
    pub sources: Vec<String>,
    /// A stable hash of the merged policy (FNV-1a 64 of its canonical YAML).
    pub policy_hash: PolicyHash,
    /// Namespaces created, in a fixed order.
    pub namespaces: Keyed<Vec<Namespace>>,
    /// The user namespace was added because the caller is unprivileged.
    pub userns_added: bool,
    /// Identity of the program.
    pub identity: IdentityPlan,
    /// User namespace maps.
    pub userns: Option<UserNsPlan>,
    /// Host name.
    pub hostname: Option<Keyed<String>>,
    /// Root filesystem.
    pub rootfs: RootfsPlan,
    /// Mounts, in order.
    pub mounts: Vec<MountPlan>,
    /// What was added to the mounts so that no bind undoes the policy's hiding (one line per
    /// bind; `run` says it on stderr, `explain` under the mounts).
    pub protected: Vec<String>,
    /// Working directory inside.
    pub cwd: Keyed<PathBuf>,
    /// Environment.
    pub env: EnvPlan,
    /// cgroup limits.
    pub limits: LimitsPlan,
    /// rlimits.
    pub rlimits: Vec<RlimitPlan>,
    /// Wall-clock timeout.
    pub timeout: Option<Duration>,
    /// Grace between SIGTERM and SIGKILL on timeout.
    pub timeout_grace: Duration,
    /// Capabilities.
    pub caps: CapsPlan,
    /// Landlock.
    pub landlock: LandlockPlan,
    /// seccomp.
    pub seccomp: SeccompPlan,
    /// Network: the mode that runs (`network.mode`, or `network` for the scalar).
    pub network: Keyed<Network>,
    /// `network: user`: pasta, the egress rules, published ports, resolvers.
    pub user_net: Option<network::UserNet>,
    /// What a best-effort `network: user` runs without (pasta or nft missing), and why.
    pub network_dropped: Vec<String>,
    /// The program is PID 1 (no reaper).
    pub as_pid_1: bool,
    /// The policy's expectations for `kekkai audit`.
    pub audit: Vec<expect::Expectation>,
    /// The escape probes the policy grants (`audit.grants`), by name.
    pub audit_grants: Vec<String>,
    /// The program's terminal (pty only takes effect when stdin is a terminal).
    pub terminal: Terminal,
    /// What systemd handed the caller that passes on to the program.
    pub systemd: SystemdPlan,
    /// `deny`: the program holds and leaves no privilege on the host (`privileges.rs`).
    pub host_privileges: HostPrivileges,
    /// The host's mount table the plan was made from, kept for its launch (the cgroups'
    /// mount points, the teardown's decision), which then reads none. Not part of the plan's
    /// content: a plan read back from its record has none, and its launch reads the table.
    #[serde(skip)]
    pub host: Option<fs::HostTable>,
}

/// The systemd protocols kekkai passes through (from the caller's environment).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SystemdPlan {
    /// Socket activation: this many descriptors from 3 (LISTEN_FDS, for this process).
    pub listen_fds: u32,
    /// sd_notify: where the program's messages go (NOTIFY_SOCKET points at
    /// [`NOTIFY_INSIDE`]).
    pub notify: Option<Notify>,
    /// The watchdog is on (WATCHDOG_USEC): WATCHDOG_PID is set to the program's pid.
    pub watchdog: bool,
}

/// The caller's sd_notify socket, and how the program reaches it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Notify {
    /// A socket path: bound into the sandbox at [`NOTIFY_INSIDE`].
    Bind(PathBuf),
    /// An abstract socket (`@NAME`; held without the `@`), which the sandbox's network
    /// namespace would hide: the supervisor binds a socket of its own at [`NOTIFY_INSIDE`] and
    /// sends each message on from outside.
    Relay(String),
}

/// Where the sd_notify socket appears inside the sandbox.
pub const NOTIFY_INSIDE: &str = "/run/kekkai/notify";

impl Plan {
    /// The clone flags for the namespaces.
    pub fn clone_flags(&self) -> u64 {
        self.namespaces
            .iter()
            .fold(0, |acc, ns| acc | ns.clone_flag())
    }

    /// Is there a user namespace?
    pub fn has(&self, ns: Namespace) -> bool {
        self.namespaces.contains(&ns)
    }
}

/// The plan as a record: what `kekkai run --name` keeps in the sandbox's state directory for
/// `enter`, and what `kekkai audit` hands its inner run. JSON, with the kekkai version that
/// wrote it: a plan is read back only by the same version (the vocabulary may change between
/// versions, and a plan must never be half understood).
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    kekkai: String,
    plan: Plan,
}

/// Why a recorded plan can't be read back.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Written by another version of kekkai.
    #[error("the plan was recorded by kekkai {0}; this is kekkai {VERSION}")]
    Version(String),
    /// Not a plan (or a plan with a path that is not UTF-8, which can't be recorded).
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

/// This kekkai's version, as plan records carry it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

impl Plan {
    /// The plan as a record (JSON). Fails only for a path that is not UTF-8.
    pub fn to_record(&self) -> Result<Vec<u8>, RecordError> {
        let record = Record {
            kekkai: VERSION.to_owned(),
            plan: self.clone(),
        };
        Ok(serde_json::to_vec(&record)?)
    }

    /// A plan from its record, written by this version of kekkai.
    pub fn from_record(bytes: &[u8]) -> Result<Plan, RecordError> {
        #[derive(serde::Deserialize)]
        struct Version {
            kekkai: String,
        }
        let v: Version = serde_json::from_slice(bytes)?;
        if v.kekkai != VERSION {
            return Err(RecordError::Version(v.kekkai));
        }
        let record: Record = serde_json::from_slice(bytes)?;
        Ok(record.plan)
    }
}

/// Namespaces a policy gets when it says nothing: all but time.
pub const DEFAULT_NAMESPACES: [Namespace; 7] = [
    Namespace::User,
    Namespace::Mount,
    Namespace::Pid,
    Namespace::Net,
    Namespace::Ipc,
    Namespace::Uts,
    Namespace::Cgroup,
];

/// Compiles a loaded policy for a caller.
pub fn compile(loaded: &LoadedPolicy, caller: &Caller) -> Result<Plan, Diagnostics> {
    let p = &loaded.policy;
    let mut d = Diags::default();

    // Namespaces.
    let namespaces_key = KeyPath::root().key("namespaces");
    let mut namespaces: Vec<Namespace> = match &p.namespaces {
        Some(list) => list.iter().map(|ns| Namespace::from(*ns)).collect(),
        None => DEFAULT_NAMESPACES.to_vec(),
    };
    namespaces.sort();
    namespaces.dedup();
    if !namespaces.contains(&Namespace::Mount) {
        d.push(
            namespaces_key.clone(),
            "the `mount` namespace is required: kekkai always builds the sandbox its own root",
        );
    }
    let mut userns_added = false;
    if !caller.is_root() && !namespaces.contains(&Namespace::User) {
        namespaces.push(Namespace::User);
        namespaces.sort();
        userns_added = true;
    }
    // `network` decides the net namespace; without it, the namespace list does. The map form
    // means `user` unless it says otherwise.
    let network = match &p.network {
        Some(n) => n.mode.map_or(Network::User, Network::from),
        None if namespaces.contains(&Namespace::Net) => Network::None,
        None => Network::Host,
    };
    namespaces.retain(|ns| *ns != Namespace::Net);
    if network != Network::Host {
        namespaces.push(Namespace::Net);
        namespaces.sort();
    }
    let hostname = p
        .hostname
        .clone()
        .map(|h| Keyed::new(h, KeyPath::root().key("hostname")));
    if let Some(Keyed { value: h, key: at }) = &hostname {
        let at = at.clone();
        if !namespaces.contains(&Namespace::Uts) {
            d.push(at, "setting a host name needs the `uts` namespace");
        } else if h.is_empty()
            || h.len() > 64
            || !h
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            d.push(
                at,
                format!("`{h}` is not a host name (1-64 of a-z, A-Z, 0-9, `-`, `.`)"),
            );
        }
    }

    if p.as_pid_1 == Some(true) && !namespaces.contains(&Namespace::Pid) {
        d.push(
            KeyPath::root().key("as-pid-1"),
            "needs the `pid` namespace: without it there is no PID 1 to be",
        );
    }

    // Filesystem.
    let host = fs::HostTable::read();
    let image = image::plan(p.rootfs.as_ref(), caller, &mut d);
    let mut rootfs = fs::plan_rootfs(p.rootfs.as_ref(), image, &host.mounts, &mut d);
    // An image's /etc/resolv.conf and /etc/hosts come from the host when there is a network;
    // first, so that the policy's own mounts come after them.
    let mut mounts = fs::image_host_files(rootfs.image.as_ref(), network);
    mounts.extend(fs::plan_mounts(
        p.mounts.as_deref().unwrap_or_default(),
        &namespaces,
        &rootfs,
        &mut d,
    ));
    // Where kekkai is started never undoes the policy's hiding.
    let from_pwd = |key: &KeyPath| loaded.uses_pwd(key);
    let (mounts, protected) = fs::protect(
        mounts,
        &fs::Guard {
            from_pwd: &from_pwd,
            home: std::fs::canonicalize(&caller.home)
                .ok()
                .filter(|h| h != std::path::Path::new("/")),
            homes: fs::homes(&caller.home),
        },
    );
    fs::prune_covered(&mut rootfs, &mounts);
    fs::share_lowers(
        &mut rootfs,
        &host.mounts,
        namespaces.contains(&Namespace::User),
    );
    let cwd_key = KeyPath::root().key("cwd");
    let cwd = match &p.cwd {
        Some(c) => match fs::normalize_abs(c) {
            Ok(p) => p,
            Err(e) => {
                d.push(cwd_key.clone(), e);
                PathBuf::from("/")
            }
        },
        None => rootfs
            .image
            .as_ref()
            .and_then(|i| image::cwd(i, &mut d))
            .unwrap_or_else(|| PathBuf::from("/")),
    };
    let cwd = Keyed::new(cwd, cwd_key);

    // Identity (an image's User when the policy names none).
    let userns = namespaces.contains(&Namespace::User);
    let image_identity = rootfs.image.as_ref().and_then(image::identity);
    let identity_spec = p.identity.as_ref().or(image_identity.as_ref());
    let (identity, userns_plan) = identity::plan(
        identity_spec,
        caller,
        userns,
        (&rootfs.lowers, rootfs.userxattr),
        &mut d,
    );

    // Environment, and what systemd passes on.
    let mut env = plan_env(p.env.as_ref(), caller, &mut d);
    if let Some(img) = &rootfs.image {
        for (name, value) in image::env_defaults(img, p.env.as_ref()) {
            env.put(name, value);
        }
    }
    let systemd = plan_systemd(caller, &mut env, &mut d);
    let mut mounts = mounts;
    if let Some(notify) = &systemd.notify {
        let key = KeyPath::root().key("env").key("NOTIFY_SOCKET");
        let target = PathBuf::from(NOTIFY_INSIDE);
        match notify {
            Notify::Bind(sock) => match std::fs::metadata(sock) {
                Ok(meta) => {
                    use std::os::unix::fs::MetadataExt;
                    mounts.push(MountPlan {
                        key,
                        origin: format!("environment: NOTIFY_SOCKET={}", sock.display()),
                        target,
                        kind: MountKind::Bind {
                            source: sock.clone(),
                            dev_ino: (meta.dev(), meta.ino()),
                            dir: false,
                            writable: false,
                            exec: false,
                        },
                        protocol: true,
                    });
                }
                Err(e) => d.push_env(
                    "NOTIFY_SOCKET",
                    format!(
                        "{}: {} (systemd's sd_notify socket: kekkai binds it into the sandbox)",
                        sock.display(),
                        crate::policy::describe_io(&e)
                    ),
                ),
            },
            // The launch binds the supervisor's relay socket here.
            Notify::Relay(name) => mounts.push(MountPlan {
                key,
                origin: format!("environment: NOTIFY_SOCKET=@{name}"),
                target,
                kind: MountKind::Bind {
                    source: PathBuf::from(format!("(relay of @{name})")),
                    dev_ino: (0, 0),
                    dir: false,
                    writable: false,
                    exec: false,
                },
                protocol: true,
            }),
        }
    }
    // Launch errors name a mount as the user wrote it.
    for m in mounts.iter_mut().filter(|m| !m.protocol) {
        m.origin = loaded.place(&m.key.key(m.kind.name()));
    }
    // The network, and the files it writes over the root's (after every other mount).
    let net = network::plan(
        p.network.as_ref(),
        network,
        &namespaces,
        caller,
        hostname.as_deref().map(String::as_str),
        &network::Host::for_mode(network),
        &mut d,
    );
    let mut net = net;
    if let Some(u) = net.user.as_mut() {
        u.origin = network::Origins {
            pasta: loaded.place(
                &u.ports
                    .first()
                    .map_or(u.pasta.key.clone(), |p| p.key.clone()),
            ),
            egress: loaded.place(&network::egress_key(&u.egress, &u.pasta.key)),
            ports: u.ports.iter().map(|p| loaded.place(&p.key)).collect(),
        };
    }
    for mut f in std::mem::take(&mut net.files) {
        f.origin = loaded.place(&f.key);
        mounts.push(f);
    }

    // Limits.
    let limits = limits::plan_limits(p.limits.as_ref(), &mut d);
    let rlimits = limits::plan_rlimits(p.rlimits.as_ref(), &mut d);
    let (timeout, timeout_grace) =
        limits::plan_timeout(p.timeout.as_ref(), p.timeout_grace.as_ref(), &mut d);

    // Capabilities.
    let caps_key = KeyPath::root().key("capabilities").key("keep");
    let mut caps = CapsPlan {
        keep: 0,
        key: caps_key.clone(),
    };
    for (i, name) in p
        .capabilities
        .as_ref()
        .and_then(|c| c.keep.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        match names::capability(name) {
            Some(n) => caps.keep |= 1 << n,
            None => {
                let mut msg = format!("unknown capability `{name}`");
                let all: Vec<String> = caps::all()
                    .iter()
                    .map(|c| c.to_string().to_ascii_lowercase())
                    .collect();
                let bare: Vec<&str> = all.iter().map(|s| s.trim_start_matches("cap_")).collect();
                let lower = name.to_ascii_lowercase();
                if let Some(best) = suggest(lower.trim_start_matches("cap_"), bare.iter().copied())
                {
                    msg.push_str(&format!(" (did you mean `{best}`?)"));
                }
                d.push(caps_key.index(i), msg);
            }
        }
    }

    // Audit expectations.
    let mut audit = Vec::new();
    if let Some(a) = &p.audit {
        for (key, list, deny) in [
            ("must-deny", &a.must_deny, true),
            ("must-allow", &a.must_allow, false),
        ] {
            for (i, text) in list.iter().flatten().enumerate() {
                match expect::Expectation::parse(text, deny) {
                    Ok(e) => audit.push(e),
                    Err(msg) => d.push(KeyPath::root().key("audit").key(key).index(i), msg),
                }
            }
        }
    }
    let audit_grants = plan_grants(p.audit.as_ref(), &mut d);

    // No privilege leaves the sandbox, unless the policy says otherwise: the ids and
    // capabilities here, the mode filters in seccomp.
    let host_privileges = p
        .host_privileges
        .map_or(HostPrivileges::Deny, HostPrivileges::from);
    if host_privileges == HostPrivileges::Deny {
        let keep = p.capabilities.as_ref().and_then(|c| c.keep.as_deref());
        privileges::check(identity_spec, &identity, keep.unwrap_or_default(), &mut d);
    }

    // Landlock and seccomp.
    let mut landlock = landlock::plan(p.landlock.as_ref(), rootfs.writable, &mounts, &mut d);
    if rootfs.image.is_some() {
        landlock::widen_image_root(&mut landlock);
    }
    if let Some(u) = &net.user {
        let keep = p.capabilities.as_ref().and_then(|c| c.keep.as_deref());
        check_user_network(u, keep.unwrap_or_default(), &caps, &landlock, &mut d);
        // The allowlist's TCP ports become Landlock's connect rules too, where the policy sets
        // none of its own and the kernel has them.
        if landlock.enabled && landlock.tcp_connect.is_none() {
            if let (Some(ports), Some(allow)) = (
                u.egress.tcp_ports(network::LANDLOCK_MAX_PORTS),
                &u.egress.allow,
            ) {
                let mut ports = ports;
                ports.extend(
                    u.host_loopback
                        .iter()
                        .filter(|h| h.proto == network::Proto::Tcp)
                        .map(|h| h.port),
                );
                ports.sort_unstable();
                ports.dedup();
                landlock.tcp_connect = Some(Keyed::new(ports, allow.key.clone()));
                landlock.tcp_connect_implied = true;
            }
        }
    }
    let seccomp = seccomp::compile(p.seccomp.as_ref(), host_privileges, &mut d);

    if !d.is_empty() {
        return Err(d.into_diagnostics(loaded));
    }
    let Some(seccomp) = seccomp else {
        return Err(Diagnostics(vec![
            loaded.diag(&KeyPath::root().key("seccomp"), "could not be compiled"),
        ]));
    };
    Ok(Plan {
        name: p.name.clone().unwrap_or_else(|| loaded.default_name()),
        description: p.description.clone(),
        sources: loaded.chain().iter().map(|s| s.to_string()).collect(),
        policy_hash: PolicyHash::of(&loaded.policy),
        namespaces: Keyed::new(namespaces, namespaces_key),
        userns_added,
        identity,
        userns: userns_plan,
        hostname,
        rootfs,
        mounts,
        protected,
        cwd,
        env,
        limits,
        rlimits,
        timeout,
        timeout_grace,
        caps,
        landlock,
        seccomp,
        network: Keyed::new(
            net.mode,
            match &p.network {
                // The scalar form (`network: none`) is the map `{ mode: none }` once loaded;
                // the key the user wrote is `network`.
                Some(n) if n.mode.is_some() && n.only_mode().is_none() => {
                    KeyPath::root().key("network").key("mode")
                }
                _ => KeyPath::root().key("network"),
            },
        ),
        user_net: net.user,
        network_dropped: net.dropped,
        as_pid_1: p.as_pid_1.unwrap_or(false),
        audit,
        audit_grants,
        terminal: p.terminal.map_or(Terminal::Pty, Terminal::from),
        systemd,
        host_privileges,
        host: Some(host),
    })
}

/// What `network: user` can't be combined with: CAP_NET_ADMIN (the program could flush the
/// egress rules) and CAP_NET_RAW (a packet socket writes frames to pasta's interface below the
/// rules' output hook: pasta then connects wherever the frame says, the host's loopback and own
/// addresses among them), a published port Landlock would not let the program bind.
fn check_user_network(
    u: &network::UserNet,
    keep: &[String],
    caps: &CapsPlan,
    landlock: &LandlockPlan,
    d: &mut Diags,
) {
    const CAP_NET_ADMIN: u8 = 12;
    const CAP_NET_RAW: u8 = 13;
    for (i, name) in keep.iter().enumerate() {
        let why = match names::capability(name) {
            Some(CAP_NET_ADMIN) => "the program could remove the egress rules",
            Some(CAP_NET_RAW) => {
                "the program could write raw frames to pasta below the egress rules (a packet \
                 socket), and reach the host's loopback and its own addresses through it"
            }
            _ => continue,
        };
        d.push(
            caps.key.index(i),
            format!("{name} with `network: user`: {why}"),
        );
    }
    if let Some(bind) = landlock.tcp_bind.as_ref().filter(|_| landlock.enabled) {
        for p in u.ports.iter().filter(|p| p.proto == network::Proto::Tcp) {
            if !bind.contains(&p.sandbox) {
                d.push(
                    p.key.key("sandbox"),
                    format!(
                        "port {} is published, but {} does not let the program bind it",
                        p.sandbox, bind.key
                    ),
                );
            }
        }
    }
}

/// `audit.grants`: names of escape probes, each checked against [`expect::PROBES`].
fn plan_grants(audit: Option<&crate::policy::model::Audit>, d: &mut Diags) -> Vec<String> {
    let mut out = Vec::new();
    let list = audit.and_then(|a| a.grants.as_ref());
    for (i, name) in list.into_iter().flatten().enumerate() {
        if expect::PROBES.contains(&name.as_str()) {
            if !out.contains(name) {
                out.push(name.clone());
            }
            continue;
        }
        let mut msg = format!("no escape probe is called `{name}`");
        if let Some(best) = suggest(name, expect::PROBES.iter().copied()) {
            msg.push_str(&format!(" (did you mean `{best}`?)"));
        }
        msg.push_str("; `kekkai audit --json` lists them");
        d.push(KeyPath::root().key("audit").key("grants").index(i), msg);
    }
    out
}

/// PATH for a program whose environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn valid_env_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('=') && !name.contains('\0')
}

fn plan_env(spec: Option<&crate::policy::model::Env>, caller: &Caller, d: &mut Diags) -> EnvPlan {
    let here = KeyPath::root().key("env");
    let default = crate::policy::model::Env::default();
    let spec = spec.unwrap_or(&default);
    let mut vars: Vec<(OsString, OsString)> = Vec::new();
    let mut from_policy: Vec<OsString> = Vec::new();
    let mut keep: Vec<String> = Vec::new();
    let clear = spec.clear.unwrap_or(true);
    if clear {
        for (i, name) in spec.keep.iter().flatten().enumerate() {
            if !valid_env_name(name) {
                d.push(
                    here.key("keep").index(i),
                    format!("`{name}` is not a variable name"),
                );
                continue;
            }
            keep.push(name.clone());
            if let Some((k, v)) = caller
                .env
                .iter()
                .rev()
                .find(|(k, _)| k.as_bytes() == name.as_bytes())
            {
                vars.push((k.clone(), v.clone()));
            }
        }
    } else {
        // Without `clear`, everything is kept and `keep` (perhaps inherited) says nothing.
        vars = caller.env.clone();
    }
    for (i, name) in spec.unset.iter().flatten().enumerate() {
        if !valid_env_name(name) {
            d.push(
                here.key("unset").index(i),
                format!("`{name}` is not a variable name"),
            );
        }
        vars.retain(|(k, _)| k.as_bytes() != name.as_bytes());
        keep.retain(|k| k != name);
    }
    for (name, value) in spec.set.iter().flatten() {
        if !valid_env_name(name) {
            d.push(
                here.key("set").key(name),
                format!("`{name}` is not a variable name"),
            );
            continue;
        }
        if value.contains('\0') {
            d.push(
                here.key("set").key(name),
                "a value can't contain a NUL byte",
            );
            continue;
        }
        vars.retain(|(k, _)| k.as_bytes() != name.as_bytes());
        keep.retain(|k| k != name);
        vars.push((name.into(), value.into()));
        from_policy.push(name.into());
    }
    if !vars.iter().any(|(k, _)| k == "PATH") {
        vars.push(("PATH".into(), DEFAULT_PATH.into()));
        from_policy.push("PATH".into());
    }
    EnvPlan {
        vars,
        from_policy,
        keep,
        clear,
    }
}

/// Socket activation and sd_notify from the caller's environment: the variables are passed on
/// (rewritten for inside) whatever the policy's `env` says, since they are protocol, not data.
fn plan_systemd(caller: &Caller, env: &mut EnvPlan, d: &mut Diags) -> SystemdPlan {
    let mut s = SystemdPlan::default();
    let set = |env: &mut EnvPlan, k: &str, v: &str| {
        env.vars.retain(|(name, _)| name != k);
        env.vars.push((k.into(), v.into()));
    };
    let remove = |env: &mut EnvPlan, k: &str| env.vars.retain(|(name, _)| name != k);
    for k in [
        "LISTEN_PID",
        "LISTEN_FDS",
        "LISTEN_FDNAMES",
        "NOTIFY_SOCKET",
        "WATCHDOG_PID",
        "WATCHDOG_USEC",
    ] {
        remove(env, k);
    }
    let ours = caller
        .env_var("LISTEN_PID")
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    if let (true, Some(n)) = (
        ours,
        caller
            .env_var("LISTEN_FDS")
            .and_then(|n| n.parse::<u32>().ok()),
    ) {
        if n > 0 && n < 4096 {
            s.listen_fds = n;
            set(env, "LISTEN_FDS", &n.to_string());
            if let Some(names) = caller.env_var("LISTEN_FDNAMES") {
                set(env, "LISTEN_FDNAMES", names);
            }
        }
    }
    match caller.env_var("NOTIFY_SOCKET") {
        None => {}
        Some(p) if p.starts_with('/') => s.notify = Some(Notify::Bind(PathBuf::from(p))),
        Some(p) if p.len() > 1 && p.len() < 108 && p.starts_with('@') => {
            s.notify = Some(Notify::Relay(p.get(1..).unwrap_or_default().to_owned()))
        }
        // Silence would leave a Type=notify unit waiting for its start timeout.
        Some(p) => d.push_env(
            "NOTIFY_SOCKET",
            format!(
                "`{p}`: kekkai passes on a socket path (/PATH) or an abstract socket (@NAME) \
                 only; unset NOTIFY_SOCKET to run without sd_notify"
            ),
        ),
    }
    if s.notify.is_some() {
        set(env, "NOTIFY_SOCKET", NOTIFY_INSIDE);
    }
    if let Some(usec) = caller.env_var("WATCHDOG_USEC") {
        let for_us = caller
            .env_var("WATCHDOG_PID")
            .is_none_or(|p| p.parse::<u32>().ok() == Some(std::process::id()));
        if for_us {
            s.watchdog = true;
            set(env, "WATCHDOG_USEC", usec);
        }
    }
    s
}

/// A stable hash of the merged policy (FNV-1a 64 of its canonical YAML), worked out when it is
/// first shown or recorded: writing the policy as YAML is a good share of compiling the plan,
/// and a plain `run` never shows it.
#[derive(Clone)]
pub struct PolicyHash {
    value: std::sync::OnceLock<String>,
    /// The policy to hash (none for a hash read back from a record).
    policy: Option<std::sync::Arc<RawPolicy>>,
}

impl PolicyHash {
    fn of(policy: &RawPolicy) -> PolicyHash {
        PolicyHash {
            value: std::sync::OnceLock::new(),
            policy: Some(std::sync::Arc::new(policy.clone())),
        }
    }

    /// The hash, 16 hexadecimal digits.
    pub fn get(&self) -> &str {
        self.value
            .get_or_init(|| policy_hash(self.policy.as_deref()))
    }
}

impl std::fmt::Display for PolicyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.get())
    }
}

impl std::fmt::Debug for PolicyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.get(), f)
    }
}

impl serde::Serialize for PolicyHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.get())
    }
}

impl<'de> serde::Deserialize<'de> for PolicyHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PolicyHash, D::Error> {
        let value = <String as serde::Deserialize>::deserialize(d)?;
        Ok(PolicyHash {
            value: std::sync::OnceLock::from(value),
            policy: None,
        })
    }
}

/// FNV-1a of the merged policy as YAML writes it, hashed as it is written (no text is kept).
fn policy_hash(policy: Option<&RawPolicy>) -> String {
    const START: u64 = 0xcbf2_9ce4_8422_2325;
    struct Fnv(u64);
    impl std::io::Write for Fnv {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            for b in buf {
                self.0 ^= u64::from(*b);
                self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut h = Fnv(START);
    // A policy that YAML can't write hashes as the empty text.
    let h = match policy.map(|p| serde_yaml::to_writer(&mut h, p)) {
        Some(Ok(())) => h.0,
        Some(Err(_)) | None => START,
    };
    format!("{h:016x}")
}

#[cfg(test)]
mod record_tests {
    use super::*;
    use crate::policy::PolicySource;

    /// Every shipped policy's plan, for a root and an unprivileged caller, reads back from its
    /// record as it was written: the record is faithful (nothing dropped, nothing defaulted).
    #[rstest::rstest]
    fn a_plan_reads_back_from_its_record(
        #[values("default", "untrusted", "service")] name: &'static str,
        #[values(false, true)] root: bool,
    ) {
        let mut caller = Caller {
            pwd: "/usr".into(),
            ..Caller::for_tests()
        };
        if root {
            caller = caller.as_root();
        }
        let loaded = crate::policy::load(&PolicySource::Shipped(name), &caller).unwrap();
        let mut plan = compile(&loaded, &caller).unwrap();
        let record = plan.to_record().unwrap();
        let back = Plan::from_record(&record).unwrap();
        assert_eq!(back.to_record().unwrap(), record);
        // Left out on purpose: the host's mount table, which the launch of a plan read back
        // reads again.
        assert!(plan.host.is_some());
        assert_eq!(back.host, None);
        plan.host = None;
        assert_eq!(format!("{back:?}"), format!("{plan:?}"));
    }

    #[test]
    fn a_record_of_another_version_is_refused() {
        let caller = Caller {
            pwd: "/usr".into(),
            ..Caller::for_tests()
        };
        let loaded = crate::policy::load(&PolicySource::Shipped("default"), &caller).unwrap();
        let plan = compile(&loaded, &caller).unwrap();
        let text = String::from_utf8(plan.to_record().unwrap()).unwrap();
        let other = text.replacen(
            &format!("\"kekkai\":\"{VERSION}\""),
            "\"kekkai\":\"0.0.0-other\"",
            1,
        );
        assert!(matches!(
            Plan::from_record(other.as_bytes()),
            Err(RecordError::Version(v)) if v == "0.0.0-other"
        ));
        assert!(matches!(
            Plan::from_record(b"{}"),
            Err(RecordError::Json(_))
        ));
    }
}
