//! The policy language v1 as serde types: what a YAML file may say, nothing more.
//!
//! Every struct denies unknown keys. Every field is optional at this level so that a file that
//! `extends` another may say only what it changes; what is required is checked when the merged
//! policy is compiled into a plan. Scalars whose meaning needs parsing (sizes, durations, CPU
//! amounts, ids) are kept as text here and parsed by the plan compiler, so that a `${VAR}`
//! may stand in for them and every parse error can name its key path.
//!
//! The same types generate the JSON Schema (`kekkai schema`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// A whole policy file (or the merged result of a file and what it extends).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "kekkai policy v1")]
pub struct RawPolicy {
    /// Version of the policy language. Must be 1.
    #[schemars(range(min = 1, max = 1))]
    pub version: Option<u32>,
    /// A short name, shown by `explain` and in run reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What this policy is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A shipped policy's name, or a path relative to this file, to build on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    /// Inherited keys (dotted paths such as `mounts` or `limits.memory`) that are dropped
    /// before this file's values apply: a list or map named here is replaced, not merged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace: Option<Vec<String>>,
    /// Inherited list entries to drop, by key path and value: `{ mounts: [{ hide: /home }] }`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<BTreeMap<String, Vec<serde_json::Value>>>")]
    pub remove: Option<BTreeMap<String, Vec<serde_yaml::Value>>>,
    /// Namespaces the sandbox gets of its own; the rest are shared with the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<Namespace>>,
    /// The user and groups the program runs as, inside the sandbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// Host name inside the sandbox (needs the `uts` namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The root filesystem: read-only layers, optionally with a throw-away writable layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<Rootfs>,
    /// Mounts applied in this order on top of the root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
    /// Working directory of the program, inside the sandbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The program's environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Env>,
    /// cgroup limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// Resource limits (setrlimit) set before exec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rlimits: Option<Rlimits>,
    /// Wall-clock limit (`30s`, `2m`, `1h`): SIGTERM, then SIGKILL after `timeout-grace`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Time between the timeout's SIGTERM and SIGKILL (default `2s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_grace: Option<Duration>,
    /// Capabilities kept in the bounding set; all others are dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    /// Landlock filesystem, network and scope rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landlock: Option<Landlock>,
    /// The seccomp filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<Seccomp>,
    /// `none`: own network namespace with only loopback; `host`: share the host's network;
    /// `user`: own network namespace, connected to the outside through `pasta` (user-mode
    /// networking), with an egress allowlist, published ports and DNS (the map form).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_network"
    )]
    #[schemars(with = "Option<NetworkSchema>")]
    pub network: Option<Network>,
    /// Run the program as PID 1 of the sandbox instead of under kekkai's minimal reaper.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_pid_1: Option<bool>,
    /// Whether the caller's terminal is ever the program's: `pty` (default: each of stdin,
    /// stdout and stderr that is a terminal becomes a new pseudo-terminal the supervisor relays;
    /// a new session), `inherit` (the caller's terminal and session), `none` (no terminal: stdin
    /// from /dev/null, output through a pipe; a new session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminal: Option<Terminal>,
    /// What `kekkai audit` must find denied and allowed inside this sandbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<Audit>,
    /// `deny` (default): nothing the program does leaves a privilege on the host — it never
    /// runs with host uid, gid or group 0, keeps no capability that reaches host files or ids,
    /// and can't make setuid or setgid files or device nodes. `allow` lifts all of that.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_privileges: Option<HostPrivileges>,
}

/// Whether the program may hold or leave privileges on the host (`host-privileges`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HostPrivileges {
    /// Never host root; no capability that reaches host files or ids; no setuid, setgid or
    /// device files.
    Deny,
    /// The policy takes responsibility: host root and privileged files are allowed.
    Allow,
}

/// How the program meets a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Terminal {
    /// A new pseudo-terminal, relayed by the supervisor, in place of each terminal descriptor.
    Pty,
    /// The caller's terminal and session, shared.
    Inherit,
    /// No terminal: stdin from /dev/null, stdout and stderr through a pipe, when they are
    /// terminals.
    None,
}

/// A policy's own expectations, checked by `kekkai audit`: `read:/etc/shadow`, `write:/usr`,
/// `exec:/tmp/x`, `connect:127.0.0.1:22`, `bind:8080`; and the probes it grants.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Audit {
    /// Attempts that must fail inside the sandbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub must_deny: Option<Vec<String>>,
    /// Attempts that must work inside the sandbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub must_allow: Option<Vec<String>>,
    /// Escape probes this policy lets through on purpose (`net.host-loopback-tcp` for a
    /// service that shares the host's network): `kekkai audit` still runs them and reports
    /// one that gets through as granted by the policy, not as an escape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grants: Option<Vec<String>>,
}

/// A Linux namespace type.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Namespace {
    /// User namespace: ids and capabilities of its own.
    User,
    /// Mount namespace: a mount table of its own.
    Mount,
    /// PID namespace: the sandbox sees only its own processes.
    Pid,
    /// Network namespace: interfaces, routes and sockets of its own.
    Net,
    /// IPC namespace: System V IPC and POSIX message queues of its own.
    Ipc,
    /// UTS namespace: host name of its own.
    Uts,
    /// cgroup namespace: the sandbox's cgroup appears as the root.
    Cgroup,
    /// Time namespace: monotonic and boot clocks of its own.
    Time,
}

impl Namespace {
    /// All namespace types, in the order `explain` prints them.
    pub const ALL: [Namespace; 8] = [
        Namespace::User,
        Namespace::Mount,
        Namespace::Pid,
        Namespace::Net,
        Namespace::Ipc,
        Namespace::Uts,
        Namespace::Cgroup,
        Namespace::Time,
    ];

    /// The name used in policies.
    pub fn name(self) -> &'static str {
        match self {
            Namespace::User => "user",
            Namespace::Mount => "mount",
            Namespace::Pid => "pid",
            Namespace::Net => "net",
            Namespace::Ipc => "ipc",
            Namespace::Uts => "uts",
            Namespace::Cgroup => "cgroup",
            Namespace::Time => "time",
        }
    }
}

/// Who the program runs as.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Identity {
    /// User id or name (a name resolves through the host's user database).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Id>,
    /// Group id or name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<Id>,
    /// Supplementary groups (ids or names); root callers only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Id>>,
    /// For a root caller with a user namespace: map a range of host ids into the sandbox,
    /// `{ inside: 0, outside: 100000, count: 65536 }`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map: Option<IdMapSpec>,
    /// Run as the owner of this host path (`"${PWD}"`: whoever owns the project directory),
    /// with that user's primary group; an unprivileged caller runs as itself. Instead of
    /// `uid` and `gid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_of: Option<String>,
}

/// A uid/gid range mapping for a root caller's user namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IdMapSpec {
    /// First id inside the sandbox.
    pub inside: Option<u32>,
    /// First id on the host.
    pub outside: Option<u32>,
    /// How many ids.
    pub count: Option<u32>,
}

/// The root filesystem.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rootfs {
    /// Read-only layers, top first: host directories or unpacked image trees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lower: Option<Vec<String>>,
    /// An image of the caller's store (`NAME[:TAG]` or `sha256:…`, see `kekkai image`): its
    /// layers are the read-only layers, in place of `lower`; its config's Env, WorkingDir,
    /// User, Entrypoint and Cmd are defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `true`: an ephemeral tmpfs layer on top takes writes, thrown away at exit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writable: Option<bool>,
    /// Size of that writable layer (default `256M`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
}

/// One mount. Exactly one of `bind`, `tmpfs`, `hide`, `proc`, `dev`, `mqueue` says which kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Mount {
    /// Bind a host path (the source) into the sandbox at `to` (default: the same path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// Where a bind appears inside the sandbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Allow writes through a bind (default: read-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writable: Option<bool>,
    /// A bind whose source does not exist is skipped instead of being an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
    /// `false`: files here can't be executed (the mount is noexec; Landlock grants no execute
    /// right for it, though a broader rule such as the root's may still grant one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<bool>,
    /// A fresh tmpfs at this path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<String>,
    /// Size of a tmpfs (default `64M`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
    /// Octal mode of a tmpfs's root (default `1777`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Hide a path: an empty read-only tmpfs over a directory, /dev/null over a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hide: Option<String>,
    /// A fresh procfs for the sandbox's pid namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proc: Option<String>,
    /// A minimal /dev: null zero full random urandom tty, devpts with ptmx, shm, fd links.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// A POSIX message queue filesystem (needs the `ipc` namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqueue: Option<String>,
}

/// The program's environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Env {
    /// Start from an empty environment (default `true`) and keep only `keep`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clear: Option<bool>,
    /// Variables passed through from the caller when `clear` is true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep: Option<Vec<String>>,
    /// Variables set, overriding any kept value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set: Option<BTreeMap<String, String>>,
    /// Variables removed (useful with `clear: false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unset: Option<Vec<String>>,
}

/// `hard` refuses to run when the kernel can't enforce a layer; `best-effort` runs and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Compat {
    /// Refuse to run unless everything asked for is enforced.
    Hard,
    /// Enforce what the kernel can, and report what was dropped.
    BestEffort,
}

/// What an out-of-memory kill ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Oom {
    /// The whole sandbox: every process of it is killed together (cgroup v2
    /// `memory.oom.group`; on cgroup v1 the supervisor ends the sandbox at the kill).
    Sandbox,
    /// One process: the OOM killer's choice, as a host without cgroups does.
    Process,
}

/// cgroup limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    /// Memory limit (`512M`): the OOM killer ends the sandbox beyond it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Size>,
    /// Memory above which the kernel throttles and reclaims (cgroup v2 `memory.high`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_high: Option<Size>,
    /// Swap allowed in addition to `memory` (`0` forbids swapping).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap: Option<Size>,
    /// Maximum number of processes and threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// CPUs worth of time (`1.5` = one and a half CPUs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    /// CPUs the sandbox may run on (`0-1`, `0,2`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset: Option<String>,
    /// Relative CPU weight, 1..10000 (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_weight: Option<u64>,
    /// Relative IO weight, 1..10000 (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_weight: Option<u64>,
    /// What an out-of-memory kill at `memory` ends: `process` (default) or the whole `sandbox`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom: Option<Oom>,
    /// `hard` (default): refuse to run when the limits can't be enforced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compat: Option<Compat>,
    /// The cgroup below which the sandbox's cgroup is created (default: the launcher's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// Resource limits, each setting both the soft and the hard limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rlimits {
    /// Open files (RLIMIT_NOFILE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nofile: Option<Size>,
    /// Processes of the user (RLIMIT_NPROC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nproc: Option<Size>,
    /// Core file size (RLIMIT_CORE); `0` disables core dumps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core: Option<Size>,
    /// Largest file the program may write (RLIMIT_FSIZE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fsize: Option<Size>,
    /// Address space (RLIMIT_AS).
    #[serde(rename = "as", skip_serializing_if = "Option::is_none")]
    pub address_space: Option<Size>,
    /// CPU time (RLIMIT_CPU), a duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Duration>,
    /// Stack size (RLIMIT_STACK).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<Size>,
    /// Locked memory (RLIMIT_MEMLOCK).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memlock: Option<Size>,
}

/// Capabilities.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Capabilities {
    /// Capabilities kept (`net_bind_service` or `CAP_NET_BIND_SERVICE`); all others leave the
    /// bounding set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep: Option<Vec<String>>,
}

/// Landlock.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Landlock {
    /// `false` turns Landlock off (for debugging; `kekkai audit` will show what gets through).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `hard` (default) refuses to run when the kernel can't enforce every rule asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compat: Option<Compat>,
    /// Trees whose files may be read. Without this list the whole root is readable; with it,
    /// the root only grants listing directories and file contents are readable only here (and
    /// under the mounts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<Vec<String>>,
    /// Extra paths writable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write: Option<Vec<String>>,
    /// `false`: bind and tmpfs mounts grant nothing by themselves, only `read`, `write` and
    /// `execute` do (proc, dev and mqueue keep their rules). Default `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_mounts: Option<bool>,
    /// Extra paths whose files may be executed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execute: Option<Vec<String>>,
    /// TCP ports the program may bind (Landlock ABI 4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_bind: Option<Vec<u16>>,
    /// TCP ports the program may connect to (Landlock ABI 4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_connect: Option<Vec<u16>>,
    /// IPC scopes confined to the sandbox (Landlock ABI 6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Vec<Scope>>,
}

/// A Landlock scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// No connecting to abstract unix sockets created outside the sandbox.
    AbstractUnix,
    /// No signals to processes outside the sandbox.
    Signal,
}

/// seccomp.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Seccomp {
    /// `default`, `strict`, `log`, `none` or `empty`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// What a syscall outside the allowlist gets: `errno(EPERM)`, `kill`, `trap`, `log`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_action: Option<String>,
    /// Syscalls added to the allowlist, by name or as a rule with argument conditions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<SyscallRule>>,
    /// Syscalls denied, by name or as a rule with argument conditions and an action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny: Option<Vec<SyscallRule>>,
    /// Socket families `socket()` may create (default: unix, inet, inet6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_families: Option<Vec<String>>,
}

/// A seccomp preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// An allowlist of what ordinary programs use; everything else is denied.
    Default,
    /// A smaller allowlist for programs that only compute and do file I/O.
    Strict,
    /// Allow everything but log what `default` would deny (for learning a program).
    Log,
    /// No filter at all.
    None,
    /// An empty allowlist: only what `allow` lists (what `kekkai learn` writes).
    Empty,
}

/// Which network the sandbox gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkMode {
    /// Own network namespace, loopback up, nothing else.
    None,
    /// Share the host's network namespace.
    Host,
    /// Own network namespace, connected to the outside through `pasta` (user-mode networking).
    User,
}

/// `network`: a mode (`none`, `host`, `user`), or a map whose `mode` defaults to `user`. The
/// loader turns the scalar form into `{ mode: ... }` before merging, so that `extends` and the
/// command line merge the map key by key; a map that says only `mode` is written back as the
/// scalar.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Network {
    /// `none`, `host` or `user` (the map's default: `user`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<NetworkMode>,
    /// The egress allowlist (`user` only): `dns`, `any:443`, `198.51.100.0/24:443`,
    /// `[2001:db8::/32]:8000-8080`, `203.0.113.7:53/udp`. Without it, every destination but
    /// the host's own addresses, link-local and multicast is reachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    /// Ports published from the host into the sandbox (`user` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<PublishedPort>>,
    /// The resolvers the sandbox uses (`user` only): `host` (default: the host's own, through
    /// pasta's forwarder), `none`, or a list of addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// Ports of the host's loopback the sandbox may reach at its own 127.0.0.1 and ::1
    /// (`user` only): `5432`, `"53/udp"`. Nothing of the host's loopback is reachable otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_loopback: Option<Vec<PortSpec>>,
    /// `hard` (default): refuse to run when `pasta` or `nft` is missing; `best-effort`: run
    /// with loopback only, and say so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compat: Option<Compat>,
}

impl Network {
    /// Just a mode.
    pub fn mode(mode: NetworkMode) -> Self {
        Network {
            mode: Some(mode),
            ..Network::default()
        }
    }

    /// Only `mode` is set (the map is written as the scalar).
    pub fn only_mode(&self) -> Option<NetworkMode> {
        let Network {
            mode,
            allow: None,
            ports: None,
            dns: None,
            host_loopback: None,
            compat: None,
        } = self
        else {
            return None;
        };
        *mode
    }
}

impl Serialize for Network {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if let Some(mode) = self.only_mode() {
            return mode.serialize(s);
        }
        let mut m = s.serialize_map(None)?;
        if let Some(v) = &self.mode {
            m.serialize_entry("mode", v)?;
        }
        if let Some(v) = &self.allow {
            m.serialize_entry("allow", v)?;
        }
        if let Some(v) = &self.ports {
            m.serialize_entry("ports", v)?;
        }
        if let Some(v) = &self.dns {
            m.serialize_entry("dns", v)?;
        }
        if let Some(v) = &self.host_loopback {
            m.serialize_entry("host-loopback", v)?;
        }
        if let Some(v) = &self.compat {
            m.serialize_entry("compat", v)?;
        }
        m.end()
    }
}

/// Reads `network: user` as `{ mode: user }`.
pub fn deserialize_network<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Network>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Network>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("`none`, `host`, `user`, or a map `{ mode: user, allow: [...], ... }`")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(V)
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            // `network: false` reads as a word, like `none` would.
            Err(E::unknown_variant(
                if v { "true" } else { "false" },
                &["none", "host", "user"],
            ))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            NetworkMode::deserialize(de::value::StrDeserializer::<E>::new(v))
                .map(|m| Some(Network::mode(m)))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Network::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    d.deserialize_option(V)
}

/// A port published from the host into the sandbox.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PublishedPort {
    /// `[ADDR:]PORT` on the host (`8080`, `127.0.0.1:8080`, `[::1]:8080`); without an address,
    /// 127.0.0.1 (`0.0.0.0:8080` or `[::]:8080` for every address).
    pub host: Option<PortText>,
    /// The port inside the sandbox (default: the host's port).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<u16>,
    /// `tcp` (default) or `udp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<Proto>,
}

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// `network.dns`: `host`, `none`, or a list of resolver addresses.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[schemars(untagged)]
pub enum Dns {
    /// `host` or `none`.
    Word(DnsWord),
    /// Resolver addresses.
    Servers(Vec<String>),
}

/// `network.dns` as a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DnsWord {
    /// The host's resolvers, through pasta's forwarder.
    Host,
    /// No resolver.
    None,
}

impl Serialize for Dns {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Dns::Word(w) => w.serialize(s),
            Dns::Servers(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Dns {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Dns;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`host`, `none`, or a list of resolver addresses")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dns, E> {
                DnsWord::deserialize(de::value::StrDeserializer::<E>::new(v)).map(Dns::Word)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Dns, A::Error> {
                Vec::<String>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(Dns::Servers)
            }
        }
        d.deserialize_any(V)
    }
}

/// A syscall name, or a rule with argument conditions.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum SyscallRule {
    /// Just the name: the syscall with any arguments.
    Name(String),
    /// A rule.
    Rule(SyscallRuleSpec),
}

/// A syscall rule with argument conditions (all must hold) and an action.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SyscallRuleSpec {
    /// The syscall's x86_64 name.
    pub syscall: Option<String>,
    /// Argument conditions; the rule applies when all hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<ArgCondition>>,
    /// For `deny`: what the call gets (default: the filter's default action).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Why this rule exists (shown by `explain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// One argument condition. Exactly one comparison (`eq`, `ne`, `lt`, `le`, `gt`, `ge`) is given;
/// with `mask`, the argument is and-ed with the mask before comparing with `eq`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ArgCondition {
    /// Argument index, 0..5.
    pub arg: Option<u8>,
    /// Compared width in bits, 32 or 64. ioctl requests and flags are 32-bit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u8>,
    /// Equal to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eq: Option<ArgValue>,
    /// Not equal to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ne: Option<ArgValue>,
    /// Less than.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lt: Option<ArgValue>,
    /// Less than or equal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub le: Option<ArgValue>,
    /// Greater than.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gt: Option<ArgValue>,
    /// Greater than or equal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ge: Option<ArgValue>,
    /// Mask applied before `eq`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<ArgValue>,
}

impl<'de> Deserialize<'de> for SyscallRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SyscallRule;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a syscall name or a rule map `{ syscall: NAME, args: [...] }`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SyscallRule, E> {
                Ok(SyscallRule::Name(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SyscallRule, A::Error> {
                SyscallRuleSpec::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(SyscallRule::Rule)
            }
        }
        d.deserialize_any(V)
    }
}

/// Declares a newtype over text that also accepts a YAML number, with its own JSON Schema.
macro_rules! text_scalar {
    ($(#[$doc:meta])* $name:ident, $expecting:literal, $schema:tt) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(pub String);

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                // Plain integers go back out as numbers, the rest as written.
                match self.0.parse::<u64>() {
                    Ok(n) if n.to_string() == self.0 => s.serialize_u64(n),
                    _ => s.serialize_str(&self.0),
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(TextVisitor($expecting)).map($name)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }
    };
}

struct TextVisitor(&'static str);

impl Visitor<'_> for TextVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    // Numbers wider than 64 bits reach the place that knows the range, as text.
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

text_scalar!(
    /// A size in bytes: `512M`, `1G`, `64k`, `4096`, or `unlimited` where that makes sense.
    Size,
    "a size such as 512M, 1G or 4096",
    {
        "description": "A size: a number of bytes, or a number with a K, M, G or T suffix (powers of 1024), or `unlimited`.",
        "anyOf": [
            { "type": "integer", "minimum": 0 },
            { "type": "string", "pattern": "^(\\s*[0-9]+(\\.[0-9]+)?\\s*([KkMmGgTt](i?[Bb])?|[Bb])?\\s*|unlimited|max|infinity|.*\\$\\{.*)$" }
        ]
    }
);

text_scalar!(
    /// A duration: `30s`, `2m`, `1h30m`, `250ms`, or a number of seconds.
    Duration,
    "a duration such as 30s, 2m or 1h",
    {
        "description": "A duration: seconds as a number, or a number with ms, s, m or h (`1h30m`).",
        "anyOf": [
            { "type": "number", "minimum": 0 },
            { "type": "string", "pattern": "^(([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+|[0-9]+(\\.[0-9]+)?|.*\\$\\{.*)$" }
        ]
    }
);

text_scalar!(
    /// CPUs worth of time: `1.5`, `0.25`, `2`.
    Cpu,
    "a number of CPUs such as 1.5",
    {
        "description": "CPUs worth of time: 1.5 is one and a half CPUs.",
        "anyOf": [ { "type": "number", "exclusiveMinimum": 0 }, { "type": "string" } ]
    }
);

text_scalar!(
    /// A user or group: a number or a name.
    Id,
    "a numeric id or a name",
    {
        "description": "A numeric id, or a name resolved through the host's user database.",
        "anyOf": [ { "type": "integer", "minimum": 0 }, { "type": "string" } ]
    }
);

text_scalar!(
    /// An octal file mode: `"1777"`, `"0755"` (quote it, or YAML reads it as decimal).
    Mode,
    "an octal mode such as \"0755\"",
    {
        "description": "Octal file mode, as a string: \"1777\", \"0755\".",
        "anyOf": [ { "type": "string", "pattern": "^((0o|0)?[0-7]{3,4}|.*\\$\\{.*)$" }, { "type": "integer" } ]
    }
);

text_scalar!(
    /// `[ADDR:]PORT`: `8080`, `127.0.0.1:8080`, `[::1]:8080`.
    PortText,
    "a port, or ADDR:PORT",
    {
        "description": "A port (8080), or an address and a port: 127.0.0.1:8080, [::1]:8080.",
        "anyOf": [ { "type": "integer", "minimum": 1, "maximum": 65535 }, { "type": "string" } ]
    }
);

text_scalar!(
    /// `PORT[/udp]`: `5432`, `"53/udp"`.
    PortSpec,
    "a port, or PORT/udp",
    {
        "description": "A port (5432), TCP; `PORT/udp` for UDP.",
        "anyOf": [ { "type": "integer", "minimum": 1, "maximum": 65535 }, { "type": "string", "pattern": "^([0-9]+(/(tcp|udp))?|.*\\$\\{.*)$" } ]
    }
);

text_scalar!(
    /// A syscall argument value: a number or a symbolic name (`TIOCSTI`, `AF_NETLINK`, `CLONE_NEWUSER`).
    ArgValue,
    "a number or a symbolic constant such as TIOCSTI",
    {
        "description": "A number (decimal or 0x hex) or a symbolic constant: TIOCSTI, AF_NETLINK, CLONE_NEWUSER, ...",
        "anyOf": [ { "type": "integer" }, { "type": "string" } ]
    }
);

/// The JSON Schema of `network`: a mode, or the map.
#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum NetworkSchema {
    /// `none`, `host` or `user`.
    Mode(NetworkMode),
    /// The map.
    Map(Network),
}
