//! Valid policies → the plan fragments they compile to.
//!
//! Sections: namespaces and clone flags, the root filesystem and mounts, identity and id maps
//! (root and rootless callers), environment, limits, rlimits, timeouts, capabilities, Landlock
//! and seccomp; then variables, and `extends` with `replace` / `remove` across files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kekkai::caller::Caller;
use kekkai::plan::landlock::access::{
    DEVICE, EXECUTE, READ, READ_DIR, READ_FILE, WRITE, WRITE_FILE,
};
use kekkai::plan::seccomp::{Action, Cond, Match, Op};
use kekkai::plan::{self, EntryKind, LimitsPlan, MountKind, Plan};
use kekkai::policy::model::{Compat, Namespace, Network, Preset, Scope};
use kekkai::policy::{self, LoadedPolicy, PolicySource};
use rstest::rstest;

use common::TempDir;

/// Loads `body` after `version: 1` and compiles it for `caller`.
fn compile_as(body: &str, caller: &Caller) -> Plan {
    let text = format!("version: 1\n{body}\n");
    let loaded = policy::load_str("policy.yaml", &text, caller)
        .unwrap_or_else(|e| panic!("load failed:\n{e}\n---\n{text}"));
    plan::compile(&loaded, caller).unwrap_or_else(|e| panic!("compile failed:\n{e}\n---\n{text}"))
}

fn compile(body: &str) -> Plan {
    compile_as(body, &common::rootless())
}

fn load_file(path: &Path, caller: &Caller) -> LoadedPolicy {
    policy::load(&PolicySource::File(path.to_path_buf()), caller)
        .unwrap_or_else(|e| panic!("load of {} failed:\n{e}", path.display()))
}

fn compile_file(path: &Path, caller: &Caller) -> Plan {
    let loaded = load_file(path, caller);
    plan::compile(&loaded, caller)
        .unwrap_or_else(|e| panic!("compile of {} failed:\n{e}", path.display()))
}

// ── namespaces, network, clone flags ─────────────────────────────────────────────────────────

use Namespace::{Cgroup, Ipc, Mount, Net, Pid, Time, User, Uts};

#[rstest]
#[case::default_rootless("", false, &[User, Mount, Pid, Net, Ipc, Uts, Cgroup], false, Network::None)]
#[case::default_root("", true, &[User, Mount, Pid, Net, Ipc, Uts, Cgroup], false, Network::None)]
#[case::rootless_gets_a_user_namespace("namespaces: [mount]", false, &[User, Mount], true, Network::Host)]
#[case::root_may_skip_it("namespaces: [mount]", true, &[Mount], false, Network::Host)]
#[case::net_namespace_means_no_network("namespaces: [mount, net]", true, &[Mount, Net], false, Network::None)]
#[case::network_host_wins("namespaces: [mount, net]\nnetwork: host", true, &[Mount], false, Network::Host)]
#[case::network_none_adds_net("namespaces: [mount]\nnetwork: none", true, &[Mount, Net], false, Network::None)]
#[case::time_and_order("namespaces: [time, pid, mount]", true, &[Mount, Pid, Time], false, Network::Host)]
#[case::duplicates_collapse("namespaces: [mount, pid, mount, pid]", true, &[Mount, Pid], false, Network::Host)]
fn namespaces(
    #[case] body: &str,
    #[case] as_root: bool,
    #[case] want: &[Namespace],
    #[case] userns_added: bool,
    #[case] network: Network,
) {
    let caller = if as_root {
        common::root()
    } else {
        common::rootless()
    };
    let plan = compile_as(body, &caller);
    assert_eq!(plan.namespaces, want);
    assert_eq!(plan.userns_added, userns_added);
    assert_eq!(plan.network, network);
    let flag = |ns: &Namespace| -> u64 {
        let f = match ns {
            User => libc::CLONE_NEWUSER,
            Mount => libc::CLONE_NEWNS,
            Pid => libc::CLONE_NEWPID,
            Net => libc::CLONE_NEWNET,
            Ipc => libc::CLONE_NEWIPC,
            Uts => libc::CLONE_NEWUTS,
            Cgroup => libc::CLONE_NEWCGROUP,
            Time => 0x80,
        };
        u64::try_from(f).unwrap()
    };
    assert_eq!(
        plan.clone_flags(),
        want.iter().map(flag).fold(0, |a, b| a | b)
    );
}

#[rstest]
#[case::hostname("hostname: box-1.example", Some("box-1.example"))]
#[case::none("", None)]
fn hostnames(#[case] body: &str, #[case] want: Option<&str>) {
    assert_eq!(compile(body).hostname.as_deref(), want);
}

#[rstest]
#[case::default("", "/")]
#[case::plain("cwd: /srv/app", "/srv/app")]
#[case::normalised("cwd: /usr//lib/./x/", "/usr/lib/x")]
fn working_directory(#[case] body: &str, #[case] want: &str) {
    assert_eq!(compile(body).cwd, PathBuf::from(want));
}

#[rstest]
// Without a name, a policy is called after its file.
#[case::default("", "policy", None, false)]
#[case::named(
    "name: mine\ndescription: for tests\nas-pid-1: true",
    "mine",
    Some("for tests"),
    true
)]
fn name_description_pid_1(
    #[case] body: &str,
    #[case] name: &str,
    #[case] description: Option<&str>,
    #[case] pid_1: bool,
) {
    let plan = compile(body);
    assert_eq!(plan.name, name);
    assert_eq!(plan.description.as_deref(), description);
    assert_eq!(plan.as_pid_1, pid_1);
}

// ── root filesystem ──────────────────────────────────────────────────────────────────────────

#[test]
fn the_default_root_is_the_host_root_read_only() {
    let plan = compile("");
    assert_eq!(plan.rootfs.lowers, vec![PathBuf::from("/")]);
    assert!(!plan.rootfs.writable);
    assert_eq!(plan.rootfs.size, 256 << 20);
    let kind = |n: &str| {
        plan.rootfs
            .entries
            .iter()
            .find(|e| e.name == n)
            .map(|e| e.kind.clone())
    };
    assert_eq!(
        kind("usr"),
        Some(EntryKind::Overlay(vec![PathBuf::from("/usr")]))
    );
    // Host pseudo file systems are never passed through.
    assert_eq!(kind("proc"), Some(EntryKind::EmptyDir));
    assert_eq!(kind("sys"), Some(EntryKind::EmptyDir));
}

#[test]
fn a_writable_root_over_chosen_layers() {
    let plan = compile("rootfs: {lower: [/usr/, /etc], writable: true, size: 512M}");
    assert_eq!(
        plan.rootfs.lowers,
        vec![PathBuf::from("/usr"), PathBuf::from("/etc")]
    );
    assert!(plan.rootfs.writable);
    assert_eq!(plan.rootfs.size, 512 << 20);
    let kind = |n: &str| {
        plan.rootfs
            .entries
            .iter()
            .find(|e| e.name == n)
            .map(|e| e.kind.clone())
    };
    assert_eq!(
        kind("bin"),
        Some(EntryKind::Overlay(vec![PathBuf::from("/usr/bin")]))
    );
    assert_eq!(
        kind("passwd"),
        Some(EntryKind::File(PathBuf::from("/etc/passwd")))
    );
}

// ── mounts ───────────────────────────────────────────────────────────────────────────────────

fn bind(source: &str, dir: bool, writable: bool, exec: bool) -> MountKind {
    let source = std::fs::canonicalize(source).unwrap();
    let meta = std::fs::metadata(&source).unwrap();
    MountKind::Bind {
        dev_ino: (meta.dev(), meta.ino()),
        dir,
        source,
        writable,
        exec,
    }
}

fn tmpfs(size: u64, mode: u32, exec: bool) -> MountKind {
    MountKind::Tmpfs { size, mode, exec }
}

#[rstest]
#[case::bind_read_only("{bind: /usr}", "/usr", bind("/usr", true, false, true))]
#[case::bind_elsewhere_writable_noexec(
    "{bind: /usr, to: /opt/usr, writable: true, exec: false}",
    "/opt/usr",
    bind("/usr", true, true, false)
)]
#[case::bind_a_file(
    "{bind: /etc/passwd, to: /etc/users}",
    "/etc/users",
    bind("/etc/passwd", false, false, true)
)]
#[case::bind_source_is_canonical(
    "{bind: /usr//lib/./}",
    "/usr/lib",
    bind("/usr/lib", true, false, true)
)]
#[case::tmpfs_defaults("{tmpfs: /tmp}", "/tmp", tmpfs(64 << 20, 0o1777, true))]
#[case::tmpfs_options("{tmpfs: /scratch/, size: 1.5G, mode: '0700', exec: false}", "/scratch", tmpfs(3 << 29, 0o700, false))]
#[case::tmpfs_mode_as_a_number(
    "{tmpfs: /t, size: 4096, mode: 755}",
    "/t",
    tmpfs(4096, 0o755, true)
)]
#[case::hide("{hide: /home}", "/home", MountKind::Hide)]
#[case::proc("{proc: /proc}", "/proc", MountKind::Proc)]
#[case::dev("{dev: /dev}", "/dev", MountKind::Dev)]
#[case::mqueue("{mqueue: /dev/mqueue}", "/dev/mqueue", MountKind::Mqueue)]
fn one_mount(#[case] mount: &str, #[case] target: &str, #[case] kind: MountKind) {
    let plan = compile(&format!("mounts: [{mount}]"));
    assert_eq!(plan.mounts.len(), 1, "{:?}", plan.mounts);
    let m = &plan.mounts[0];
    assert_eq!(m.key.to_string(), "mounts[0]");
    assert_eq!(m.target, PathBuf::from(target));
    assert_eq!(m.kind, kind);
}

#[test]
fn a_symlinked_bind_source_resolves_to_its_target() {
    let plan = compile("mounts: [{bind: /bin, to: /b}]");
    assert_eq!(
        plan.mounts[0].kind,
        bind(
            &std::fs::canonicalize("/bin").unwrap().display().to_string(),
            true,
            false,
            true
        )
    );
}

#[rstest]
#[case::optional_missing_source("mounts: [{bind: /kekkai-no-such-dir, optional: true}]")]
// `${PWD}` may be `/`: the root is already visible read-only.
#[case::host_root_onto_itself("mounts: [{bind: /, to: /}]")]
fn mounts_that_plan_to_nothing(#[case] body: &str) {
    assert!(compile(body).mounts.is_empty());
}

#[test]
fn mounts_keep_their_order_and_keys() {
    let plan = compile(
        "mounts:\n  - hide: /home\n  - tmpfs: /tmp\n  - bind: /kekkai-no-such-dir\n    optional: true\n  - bind: /usr\n  - proc: /proc\n  - dev: /dev\n",
    );
    let got: Vec<(String, String, &str)> = plan
        .mounts
        .iter()
        .map(|m| {
            (
                m.key.to_string(),
                m.target.display().to_string(),
                m.kind.name(),
            )
        })
        .collect();
    let want = [
        ("mounts[0]", "/home", "hide"),
        ("mounts[1]", "/tmp", "tmpfs"),
        ("mounts[3]", "/usr", "bind"),
        ("mounts[4]", "/proc", "proc"),
        ("mounts[5]", "/dev", "dev"),
    ];
    let want: Vec<(String, String, &str)> = want
        .iter()
        .map(|(k, t, n)| (k.to_string(), t.to_string(), *n))
        .collect();
    assert_eq!(got, want);
}

// ── identity and id maps ─────────────────────────────────────────────────────────────────────

/// (uid_map, gid_map, setgroups denied)
type Maps = Option<(String, String, bool)>;

fn maps(uid_map: &str, gid_map: &str, deny: bool) -> Maps {
    Some((uid_map.into(), gid_map.into(), deny))
}

#[rstest]
#[case::rootless_default(false, "", (1000, 1000), None, maps("1000 1000 1\n", "1000 1000 1\n", true))]
#[case::rootless_as_root_inside(false, "identity: {uid: 0, gid: 0}", (0, 0), Some("root"), maps("0 1000 1\n", "0 1000 1\n", true))]
#[case::rootless_as_nobody(false, "identity: {uid: nobody}", (65534, 65534), Some("nobody"), maps("65534 1000 1\n", "65534 1000 1\n", true))]
#[case::rootless_uid_from_variable(false, "identity: {uid: '${UID}', gid: '${GID}'}", (1000, 1000), None, maps("1000 1000 1\n", "1000 1000 1\n", true))]
// Never host root by default: nobody.
#[case::root_default(true, "", (65534, 65534), Some("nobody"), maps("0 0 1\n65534 65534 1\n", "0 0 1\n65534 65534 1\n", false))]
#[case::root_as_root_when_allowed(true, "host-privileges: allow\nidentity: {uid: 0, gid: 0}", (0, 0), Some("root"), maps("0 0 1\n", "0 0 1\n", false))]
#[case::root_maps_root_inside_off_host_root(
    true,
    "identity: {uid: 0, gid: 0, map: {inside: 0, outside: 200000, count: 65536}}",
    (0, 0),
    Some("root"),
    maps("0 200000 65536\n", "0 200000 65536\n", false)
)]
#[case::root_without_userns(true, "namespaces: [mount, pid]\nidentity: {uid: nobody}", (65534, 65534), Some("nobody"), None)]
#[case::root_maps_identity_and_root(true, "identity: {uid: 1000, gid: 1000}", (1000, 1000), None, maps("0 0 1\n1000 1000 1\n", "0 0 1\n1000 1000 1\n", false))]
#[case::root_maps_a_range(
    true,
    "identity: {uid: 1000, gid: 1000, map: {inside: 0, outside: 100000, count: 65536}}",
    (1000, 1000),
    None,
    maps("0 100000 65536\n", "0 100000 65536\n", false)
)]
fn identity(
    #[case] as_root: bool,
    #[case] body: &str,
    #[case] ids: (u32, u32),
    #[case] user: Option<&str>,
    #[case] want_maps: Maps,
) {
    let caller = if as_root {
        common::root()
    } else {
        common::rootless()
    };
    let plan = compile_as(body, &caller);
    assert_eq!((plan.identity.uid, plan.identity.gid), ids);
    // A numeric id names a user only when /etc/passwd has one with that id.
    if let Some(user) = user {
        assert_eq!(plan.identity.user.as_deref(), Some(user));
    }
    let got = plan
        .userns
        .as_ref()
        .map(|ns| (ns.uid_map.clone(), ns.gid_map.clone(), ns.deny_setgroups));
    assert_eq!(got, want_maps);
    if let Some(ns) = &plan.userns {
        // The setup runs as root inside exactly when the caller is root.
        assert_eq!(ns.setup_as_root, as_root);
    }
}

#[test]
fn a_service_user_with_supplementary_groups() {
    let (uid, gid) = common::passwd_ids("www-data");
    let users = common::group_id("users");
    let plan = compile_as(
        "identity: {uid: www-data, groups: [users, www-data]}",
        &common::root(),
    );
    assert_eq!((plan.identity.uid, plan.identity.gid), (uid, gid));
    assert_eq!(plan.identity.user.as_deref(), Some("www-data"));
    assert_eq!(plan.identity.groups, vec![users, gid]);
    let ns = plan.userns.unwrap();
    assert_eq!(ns.uid_map, format!("0 0 1\n{uid} {uid} 1\n"));
    let mut gids = [0, gid, users];
    gids.sort_unstable();
    let lines: String = gids.iter().map(|g| format!("{g} {g} 1\n")).collect();
    assert_eq!(ns.gid_map, lines);
}

/// `owner-of: ${PWD}` (the shipped `build`): a root caller's program runs as whoever owns the
/// directory, with that user's primary group; an unprivileged caller's as itself.
#[test]
fn build_runs_as_the_owner_of_the_current_directory() {
    let dir = TempDir::not_roots("owner");
    let owner = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(dir.path()).unwrap().uid()
    };
    let root = common::with_pwd(common::root(), dir.path());
    let loaded = policy::load(&PolicySource::Shipped("build"), &root).unwrap();
    let plan = plan::compile(&loaded, &root).unwrap();
    assert_eq!(plan.identity.uid, owner);
    assert_eq!(plan.identity.owner_of.as_deref(), Some(dir.path()));
    assert_ne!(plan.identity.host.uid, 0);
    let rootless = common::with_pwd(common::rootless(), dir.path());
    let loaded = policy::load(&PolicySource::Shipped("build"), &rootless).unwrap();
    let plan = plan::compile(&loaded, &rootless).unwrap();
    assert_eq!((plan.identity.uid, plan.identity.gid), (1000, 1000));
}

/// With `host-privileges: allow` the rule's refusals become choices of the policy.
#[test]
fn host_privileges_allow_lifts_every_refusal() {
    let plan = compile_as(
        "host-privileges: allow\nidentity: {uid: 0, gid: 0, groups: [0]}\ncapabilities: {keep: [dac_read_search, setfcap]}\nseccomp: {allow: [openat2]}",
        &common::root(),
    );
    assert_eq!(plan.identity.host.uid, 0);
    assert_eq!(
        plan.host_privileges,
        kekkai::policy::model::HostPrivileges::Allow
    );
    let openat2 = kekkai::plan::names::syscall_number("openat2").unwrap();
    assert!(
        plan.seccomp
            .denied
            .values()
            .all(|d| !d.contains_key(&openat2))
    );
}

// ── environment ──────────────────────────────────────────────────────────────────────────────

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn env_caller() -> Caller {
    let mut c = common::rootless();
    c.env = vec![
        ("PATH".into(), "/usr/bin:/bin".into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("SECRET".into(), "hunter2".into()),
    ];
    c
}

#[rstest]
#[case::nothing_by_default("", &[("PATH", DEFAULT_PATH)])]
#[case::keep_what_exists("env: {keep: [PATH, LANG, NOT_THERE]}", &[("PATH", "/usr/bin:/bin"), ("LANG", "C.UTF-8")])]
#[case::set_overrides_keep("env: {keep: [LANG], set: {LANG: C, HOME: /tmp}}", &[("HOME", "/tmp"), ("LANG", "C"), ("PATH", DEFAULT_PATH)])]
#[case::no_clear_passes_all("env: {clear: false}", &[("PATH", "/usr/bin:/bin"), ("LANG", "C.UTF-8"), ("SECRET", "hunter2")])]
#[case::no_clear_with_unset("env: {clear: false, unset: [SECRET]}", &[("PATH", "/usr/bin:/bin"), ("LANG", "C.UTF-8")])]
#[case::set_wins_over_unset("env: {set: {A: x}, unset: [A]}", &[("A", "x"), ("PATH", DEFAULT_PATH)])]
fn environment(#[case] body: &str, #[case] want: &[(&str, &str)]) {
    let plan = compile_as(body, &env_caller());
    let want: Vec<(OsString, OsString)> = want.iter().map(|(k, v)| (k.into(), v.into())).collect();
    assert_eq!(plan.env.vars, want);
}

// ── limits, rlimits, timeouts ────────────────────────────────────────────────────────────────

#[rstest]
#[case::none("", LimitsPlan::default())]
#[case::memory("limits: {memory: 512M}", LimitsPlan { memory: Some(512 << 20), ..Default::default() })]
#[case::memory_fraction("limits: {memory: 1.5G}", LimitsPlan { memory: Some(3 << 29), ..Default::default() })]
#[case::memory_unlimited("limits: {memory: unlimited, pids: 1}", LimitsPlan { memory: Some(u64::MAX), pids: Some(1), ..Default::default() })]
#[case::memory_family(
    "limits: {memory: 1G, memory-high: 768M, swap: 0}",
    LimitsPlan { memory: Some(1 << 30), memory_high: Some(768 << 20), swap: Some(0), ..Default::default() }
)]
#[case::cpu(
    "limits: {cpu: 0.25, cpuset: '0-1,3', cpu-weight: 1, io-weight: 10000}",
    LimitsPlan { cpu_millis: Some(250), cpuset: Some("0-1,3".into()), cpu_weight: Some(1), io_weight: Some(10000), ..Default::default() }
)]
#[case::pids_maximum("limits: {pids: 4194304}", LimitsPlan { pids: Some(4_194_304), ..Default::default() })]
#[case::compat_and_parent(
    "limits: {compat: best-effort, parent: /kekkai.slice//x/}",
    LimitsPlan { compat: Some(Compat::BestEffort), parent: Some(PathBuf::from("/kekkai.slice/x")), ..Default::default() }
)]
fn limits(#[case] body: &str, #[case] want: LimitsPlan) {
    let plan = compile(body);
    assert_eq!(plan.limits, want);
}

#[test]
fn limits_are_hard_unless_the_policy_says_otherwise() {
    assert_eq!(compile("limits: {pids: 5}").limits.compat(), Compat::Hard);
    assert!(compile("limits: {pids: 5}").limits.any());
    assert!(!compile("limits: {compat: hard}").limits.any());
}

#[rstest]
#[case::nofile("rlimits: {nofile: 1024}", &[("nofile", libc::RLIMIT_NOFILE, 1024)])]
#[case::nofile_minimum("rlimits: {nofile: 3}", &[("nofile", libc::RLIMIT_NOFILE, 3)])]
#[case::no_core("rlimits: {core: 0}", &[("core", libc::RLIMIT_CORE, 0)])]
#[case::sizes("rlimits: {stack: 8M, as: 4G}", &[("as", libc::RLIMIT_AS, 4 << 30), ("stack", libc::RLIMIT_STACK, 8 << 20)])]
#[case::unlimited("rlimits: {fsize: unlimited}", &[("fsize", libc::RLIMIT_FSIZE, u64::MAX)])]
#[case::counts("rlimits: {nproc: 100, memlock: 64k}", &[("nproc", libc::RLIMIT_NPROC, 100), ("memlock", libc::RLIMIT_MEMLOCK, 65536)])]
#[case::cpu_duration("rlimits: {cpu: 1m}", &[("cpu", libc::RLIMIT_CPU, 60)])]
#[case::cpu_seconds("rlimits: {cpu: 90}", &[("cpu", libc::RLIMIT_CPU, 90)])]
#[case::none("", &[])]
fn rlimits(#[case] body: &str, #[case] want: &[(&str, u32, u64)]) {
    let plan = compile(body);
    let got: Vec<(&str, u32, u64)> = plan
        .rlimits
        .iter()
        .map(|r| (r.name, r.resource, r.value))
        .collect();
    assert_eq!(got, want);
}

#[rstest]
#[case::none("", None, Duration::from_secs(2))]
#[case::seconds("timeout: 30s", Some(Duration::from_secs(30)), Duration::from_secs(2))]
#[case::bare_number(
    "timeout: 1.5",
    Some(Duration::from_millis(1500)),
    Duration::from_secs(2)
)]
#[case::compound_and_grace(
    "timeout: 1h30m\ntimeout-grace: 250ms",
    Some(Duration::from_secs(5400)),
    Duration::from_millis(250)
)]
fn timeouts(#[case] body: &str, #[case] timeout: Option<Duration>, #[case] grace: Duration) {
    let plan = compile(body);
    assert_eq!((plan.timeout, plan.timeout_grace), (timeout, grace));
}

// ── capabilities ─────────────────────────────────────────────────────────────────────────────

#[rstest]
#[case::none("", 0, &[])]
#[case::empty("capabilities: {keep: []}", 0, &[])]
#[case::spellings(
    "capabilities: {keep: [net_bind_service, CAP_SYS_ADMIN, Net_Raw]}",
    (1 << 10) | (1 << 21) | (1 << 13),
    &["net_bind_service", "net_raw", "sys_admin"]
)]
// Capabilities that reach host files need the opt-out.
#[case::host_file_capabilities(
    "host-privileges: allow\ncapabilities: {keep: [chown, setfcap, mknod]}",
    1 | (1 << 27) | (1 << 31),
    &["chown", "mknod", "setfcap"]
)]
fn capabilities(#[case] body: &str, #[case] bits: u64, #[case] names: &[&str]) {
    let plan = compile(body);
    assert_eq!(plan.caps.keep, bits);
    assert_eq!(plan.caps.names(), names);
}

// ── Landlock ─────────────────────────────────────────────────────────────────────────────────

fn rules(plan: &Plan) -> Vec<(String, u64)> {
    plan.landlock
        .rules
        .iter()
        .map(|r| (r.path.display().to_string(), r.access))
        .collect()
}

fn rule_list(want: &[(&str, u64)]) -> Vec<(String, u64)> {
    want.iter().map(|(p, a)| (p.to_string(), *a)).collect()
}

#[rstest]
#[case::root_only("", &[("/", READ | EXECUTE)])]
#[case::writable_root("rootfs: {writable: true}", &[("/", READ | EXECUTE | WRITE)])]
#[case::mounts_imply_rules(
    "mounts: [{hide: /home}, {tmpfs: /tmp}, {tmpfs: /x, exec: false}, {bind: /usr, to: /u}, {bind: /usr, to: /w, writable: true, exec: false}, {proc: /proc}, {dev: /dev}, {mqueue: /dev/mqueue}]",
    &[
        ("/", READ | EXECUTE),
        ("/tmp", READ | WRITE | EXECUTE),
        ("/x", READ | WRITE),
        ("/u", READ | EXECUTE),
        ("/w", READ | WRITE),
        ("/proc", READ | WRITE_FILE),
        ("/dev", DEVICE),
        ("/dev/shm", READ | WRITE),
        ("/dev/mqueue", READ | WRITE),
    ]
)]
#[case::lists(
    "landlock: {read: [/usr], write: [/var/tmp/], execute: [/opt]}",
    &[("/", READ_DIR), ("/usr", READ), ("/var/tmp", READ | WRITE), ("/opt", EXECUTE | READ_FILE)]
)]
fn landlock_rules(#[case] body: &str, #[case] want: &[(&str, u64)]) {
    let plan = compile(body);
    assert_eq!(rules(&plan), rule_list(want));
}

#[test]
fn landlock_ports_scopes_and_compat() {
    let plan = compile(
        "landlock: {tcp-bind: [8080, 80, 80], tcp-connect: [443], scope: [signal, abstract-unix, signal], compat: best-effort}",
    );
    let l = &plan.landlock;
    assert!(l.enabled);
    assert_eq!(l.compat, Compat::BestEffort);
    assert_eq!(l.tcp_bind, Some(vec![80, 8080]));
    assert_eq!(l.tcp_connect, Some(vec![443]));
    assert_eq!(l.scopes, vec![Scope::AbstractUnix, Scope::Signal]);
    assert_eq!(l.required_abi(), 6);
}

#[rstest]
#[case::defaults("", true, Compat::Hard, None, None, 1)]
#[case::ports("landlock: {tcp-connect: []}", true, Compat::Hard, None, Some(vec![]), 4)]
#[case::disabled("landlock: {enabled: false}", false, Compat::Hard, None, None, 1)]
fn landlock_switches(
    #[case] body: &str,
    #[case] enabled: bool,
    #[case] compat: Compat,
    #[case] bind: Option<Vec<u16>>,
    #[case] connect: Option<Vec<u16>>,
    #[case] abi: u32,
) {
    let l = compile(body).landlock;
    assert_eq!(
        (
            l.enabled,
            l.compat,
            l.tcp_bind.clone(),
            l.tcp_connect.clone(),
            l.required_abi()
        ),
        (enabled, compat, bind, connect, abi)
    );
}

// ── seccomp ──────────────────────────────────────────────────────────────────────────────────

fn nr(name: &str) -> i64 {
    kekkai::plan::names::syscall_number(name).unwrap()
}

/// What the filter stack does with a syscall: `allow`, `allow-if` (argument conditions) or
/// `default ACTION` from the allowlist, then each deny filter that lists it (`ACTION` or
/// `ACTION if`).
fn verdict(plan: &Plan, name: &str) -> String {
    let s = &plan.seccomp;
    let n = nr(name);
    let mut parts = vec![match s.allowed.get(&n) {
        Some(Match::Always) => "allow".to_string(),
        Some(Match::When(_)) => "allow-if".to_string(),
        None => format!("default {}", s.default_action),
    }];
    for (action, rules) in &s.denied {
        match rules.get(&n) {
            Some(Match::Always) => parts.push(action.to_string()),
            Some(Match::When(_)) => parts.push(format!("{action} if")),
            None => {}
        }
    }
    parts.join(", ")
}

#[rstest]
#[case::default_allows_read("", "read", "allow")]
#[case::default_allows_execve("", "execve", "allow")]
#[case::default_denies_ptrace("", "ptrace", "default errno(EPERM)")]
#[case::default_denies_mount("", "mount", "default errno(EPERM)")]
#[case::default_denies_io_uring("", "io_uring_setup", "default errno(EPERM)")]
#[case::default_denies_bpf("", "bpf", "default errno(EPERM)")]
// clone3 is allowed by the allowlist so that the ENOSYS filter decides, whatever the default.
#[case::default_clone3_enosys("", "clone3", "allow, errno(ENOSYS)")]
#[case::default_conditions_ioctl("", "ioctl", "allow-if")]
#[case::default_conditions_clone("", "clone", "allow-if")]
#[case::default_conditions_socket("", "socket", "allow-if")]
#[case::default_conditions_personality("", "personality", "allow-if")]
#[case::strict_allows_read("seccomp: {preset: strict}", "read", "allow")]
#[case::strict_denies_connect("seccomp: {preset: strict}", "connect", "default errno(EPERM)")]
#[case::strict_denies_socket("seccomp: {preset: strict}", "socket", "default errno(EPERM)")]
#[case::log("seccomp: {preset: log}", "ptrace", "default log")]
#[case::none_allows_all("seccomp: {preset: none}", "ptrace", "default allow")]
#[case::none_as_a_denylist(
    "seccomp: {preset: none, deny: [ptrace]}",
    "ptrace",
    "default allow, errno(EPERM)"
)]
#[case::kill_by_default("seccomp: {default-action: kill}", "ptrace", "default kill")]
#[case::errno_by_number(
    "seccomp: {default-action: errno(38)}",
    "ptrace",
    "default errno(ENOSYS)"
)]
#[case::allow_by_name("seccomp: {allow: [ptrace]}", "ptrace", "allow")]
#[case::allow_lifts_enosys("seccomp: {allow: [clone3]}", "clone3", "allow")]
#[case::allow_with_args(
    "seccomp: {allow: [{syscall: ptrace, args: [{arg: 0, width: 64, eq: 0}]}]}",
    "ptrace",
    "allow-if"
)]
#[case::deny_removes_from_allowlist("seccomp: {deny: [write]}", "write", "default errno(EPERM)")]
#[case::deny_with_own_action(
    "seccomp: {deny: [{syscall: getpid, action: kill}]}",
    "getpid",
    "allow, kill"
)]
#[case::deny_with_args(
    "seccomp: {deny: [{syscall: ioctl, args: [{arg: 1, width: 32, eq: TIOCSETD}], action: errno(EPERM)}]}",
    "ioctl",
    "allow-if, errno(EPERM) if"
)]
#[case::deny_with_args_and_trap(
    "seccomp: {deny: [{syscall: kill, args: [{arg: 1, width: 32, eq: 9}], action: trap}]}",
    "kill",
    "allow, trap if"
)]
fn seccomp_verdicts(#[case] body: &str, #[case] syscall: &str, #[case] want: &str) {
    assert_eq!(verdict(&compile(body), syscall), want);
}

#[test]
fn the_design_notes_deny_rule_compiles_to_a_32_bit_comparison() {
    let plan = compile(
        "seccomp:\n  preset: default\n  default-action: errno(EPERM)\n  deny:\n    - { syscall: ioctl, args: [{ arg: 1, width: 32, eq: TIOCSTI }], action: errno(EPERM), why: CVE-2017-5226 }",
    );
    let s = &plan.seccomp;
    assert_eq!(s.preset, Preset::Default);
    assert_eq!(
        s.denied[&Action::Errno(1)][&nr("ioctl")],
        Match::When(vec![vec![Cond::u32(1, Op::Eq, 0x5412)]])
    );
    assert_eq!(
        s.reasons,
        vec![("ioctl".to_string(), "CVE-2017-5226".to_string())]
    );
}

#[rstest]
#[case::default("", Some(vec![1, 2, 10]), true)]
#[case::chosen("seccomp: {socket-families: [unix, AF_NETLINK, local]}", Some(vec![1, 16, 1]), false)]
#[case::chosen_route("seccomp: {socket-families: [unix, netlink-route]}", Some(vec![1]), true)]
#[case::strict_none("seccomp: {preset: strict}", Some(vec![]), false)]
#[case::no_filter("seccomp: {preset: none}", None, false)]
fn socket_families(#[case] body: &str, #[case] want: Option<Vec<u64>>, #[case] route: bool) {
    let plan = compile(body);
    assert_eq!(plan.seccomp.socket_families, want);
    assert_eq!(plan.seccomp.netlink_route, route);
    if let Some(families) = want.filter(|f| !f.is_empty()) {
        let mut sets: Vec<Vec<Cond>> = families
            .iter()
            .map(|f| vec![Cond::u32(0, Op::Eq, *f)])
            .collect();
        if route {
            // socket(AF_NETLINK, *, NETLINK_ROUTE), the protocol compared as 32 bits.
            sets.push(vec![Cond::u32(0, Op::Eq, 16), Cond::u32(2, Op::Eq, 0)]);
        }
        assert_eq!(plan.seccomp.allowed[&nr("socket")], Match::When(sets));
    }
}

#[rstest]
#[case::default("", &["architecture guard", "allowlist", "deny → errno(EPERM)", "deny → errno(ENOSYS)"])]
#[case::default_host_privileges_allowed("host-privileges: allow", &["architecture guard", "allowlist", "deny → errno(ENOSYS)"])]
// The privilege rules stay without a preset, and bring the architecture guard.
#[case::none("seccomp: {preset: none}", &["architecture guard", "deny → errno(EPERM)", "deny → errno(ENOSYS)"])]
#[case::none_host_privileges_allowed("seccomp: {preset: none}\nhost-privileges: allow", &[])]
#[case::none_with_rules("seccomp: {preset: none, deny: [ptrace]}", &["architecture guard", "deny → errno(EPERM)", "deny → errno(ENOSYS)"])]
#[case::deny_actions_stack_last(
    "seccomp: {allow: [clone3], deny: [{syscall: getpid, action: kill}, {syscall: getppid, action: errno(EACCES)}]}",
    &["architecture guard", "allowlist", "deny → kill", "deny → errno(EPERM)", "deny → errno(EACCES)", "deny → errno(ENOSYS)"]
)]
fn filter_stack(#[case] body: &str, #[case] want: &[&str]) {
    let plan = compile(body);
    let names: Vec<&str> = plan
        .seccomp
        .filters
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(names.len(), want.len(), "{names:?}");
    for (name, prefix) in names.iter().zip(want) {
        assert!(name.starts_with(prefix), "{names:?}");
    }
    for f in &plan.seccomp.filters {
        assert!(
            f.program.len() <= kekkai::plan::seccomp::MAX_INSTRUCTIONS,
            "{}",
            f.name
        );
    }
}

// ── variables ────────────────────────────────────────────────────────────────────────────────

fn var_caller() -> Caller {
    let mut c = common::rootless();
    c.env = vec![
        ("PATH".into(), "/usr/bin:/bin".into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("TRICKY".into(), "${HOME}".into()),
    ];
    c
}

#[rstest]
#[case::pwd("${PWD}/data", "/work/project/data")]
#[case::home("${HOME}", "/home/alice")]
#[case::ids("u${UID}g${GID}", "u1000g1000")]
#[case::env("${env:LANG}", "C.UTF-8")]
#[case::env_default_unused("${env:LANG:-C}", "C.UTF-8")]
#[case::env_default("${env:KEKKAI_UNSET:-fallback}", "fallback")]
#[case::env_empty_default("x${env:KEKKAI_UNSET:-}y", "xy")]
#[case::dollar_dollar("$${HOME}", "${HOME}")]
#[case::lone_dollar("costs 5$ or $b", "costs 5$ or $b")]
#[case::values_are_not_expanded_again("${env:TRICKY}", "${HOME}")]
fn variables(#[case] value: &str, #[case] want: &str) {
    let plan = compile_as(&format!("env: {{set: {{V: '{value}'}}}}"), &var_caller());
    let got = plan
        .env
        .vars
        .iter()
        .find(|(k, _)| k == "V")
        .map(|(_, v)| v.to_string_lossy().into_owned());
    assert_eq!(got.as_deref(), Some(want));
}

#[test]
fn variables_work_in_every_kind_of_value() {
    let plan = compile_as(
        "cwd: ${PWD}\nmounts:\n  - tmpfs: ${HOME}/scratch\n    size: \"${env:SIZE:-2M}\"\nlimits: {pids: 5, memory: \"${env:MEM:-256M}\"}\nlandlock: {read: [\"${HOME}\"]}\n",
        &var_caller(),
    );
    assert_eq!(plan.cwd, PathBuf::from("/work/project"));
    assert_eq!(plan.mounts[0].target, PathBuf::from("/home/alice/scratch"));
    assert_eq!(plan.mounts[0].kind, tmpfs(2 << 20, 0o1777, true));
    assert_eq!(plan.limits.memory, Some(256 << 20));
    assert!(
        plan.landlock
            .rules
            .iter()
            .any(|r| r.path == Path::new("/home/alice") && r.access == READ)
    );
}

#[test]
fn variables_follow_the_caller() {
    let root = common::with_pwd(common::root(), Path::new("/srv"));
    let plan = compile_as("cwd: ${PWD}\nenv: {set: {WHO: '${UID}:${GID}'}}", &root);
    assert_eq!(plan.cwd, PathBuf::from("/srv"));
    assert!(plan.env.vars.contains(&("WHO".into(), "0:0".into())));
}

#[test]
fn the_description_is_prose_and_is_not_expanded() {
    let plan = compile("description: costs ${X} and $$5");
    assert_eq!(plan.description.as_deref(), Some("costs ${X} and $$5"));
}

// ── shipped policies ─────────────────────────────────────────────────────────────────────────

#[rstest]
fn every_shipped_policy_compiles(
    #[values("default", "untrusted", "build", "service")] name: &'static str,
    #[values(false, true)] as_root: bool,
) {
    // `build` refuses a root caller in a directory root owns.
    let dir = TempDir::not_roots("shipped");
    let caller = common::with_pwd(
        if as_root {
            common::root()
        } else {
            common::rootless()
        },
        dir.path(),
    );
    let loaded = policy::load(&PolicySource::Shipped(name), &caller).unwrap();
    let plan = plan::compile(&loaded, &caller).unwrap_or_else(|e| panic!("{name}:\n{e}"));
    assert_eq!(plan.name, name);
}

#[test]
fn the_default_policy_plan() {
    let dir = TempDir::new("default");
    let caller = common::with_pwd(common::rootless(), dir.path());
    let loaded = policy::load(&PolicySource::Shipped("default"), &caller).unwrap();
    let plan = plan::compile(&loaded, &caller).unwrap();
    assert_eq!(plan.sources, vec!["<shipped>/default.yaml"]);
    assert_eq!(
        plan.namespaces,
        vec![User, Mount, Pid, Net, Ipc, Uts, Cgroup]
    );
    assert_eq!(plan.network, Network::None);
    assert_eq!(plan.hostname.as_deref(), Some("kekkai"));
    assert_eq!(plan.cwd, dir.path());
    let targets: Vec<String> = plan
        .mounts
        .iter()
        .map(|m| format!("{} {}", m.kind.name(), m.target.display()))
        .collect();
    let pwd = dir.path().display();
    assert_eq!(
        targets,
        [
            "hide /home".to_string(),
            "hide /root".into(),
            "hide /run".into(),
            "tmpfs /tmp".into(),
            "tmpfs /var/tmp".into(),
            format!("bind {pwd}"),
            "proc /proc".into(),
            "hide /proc/cmdline".into(),
            "hide /proc/config.gz".into(),
            "dev /dev".into(),
        ]
    );
    assert_eq!(plan.limits.memory, Some(1 << 30));
    assert_eq!(plan.limits.compat(), Compat::BestEffort);
    assert_eq!(plan.caps.keep, 0);
    assert_eq!(
        plan.landlock.scopes,
        vec![Scope::AbstractUnix, Scope::Signal]
    );
    assert_eq!(plan.seccomp.preset, Preset::Default);
}

#[test]
fn untrusted_replaces_the_default_mounts() {
    let dir = TempDir::new("untrusted");
    let caller = common::with_pwd(common::rootless(), dir.path());
    let loaded = policy::load(&PolicySource::Shipped("untrusted"), &caller).unwrap();
    let plan = plan::compile(&loaded, &caller).unwrap();
    assert_eq!(
        plan.sources,
        vec!["<shipped>/untrusted.yaml", "<shipped>/default.yaml"]
    );
    assert_eq!(plan.mounts.len(), 13);
    let work = plan
        .mounts
        .iter()
        .find(|m| m.target == Path::new("/work"))
        .unwrap();
    assert!(
        matches!(&work.kind, MountKind::Bind { source, writable: false, .. } if source == dir.path())
    );
    assert_eq!(plan.cwd, PathBuf::from("/work"));
    assert_eq!(plan.seccomp.preset, Preset::Strict);
    assert_eq!(plan.landlock.compat, Compat::Hard);
    assert_eq!(plan.timeout, Some(Duration::from_secs(60)));
    // Inherited from default: untrusted says nothing about these.
    assert_eq!(plan.hostname.as_deref(), Some("kekkai"));
    assert_eq!(
        plan.landlock.scopes,
        vec![Scope::AbstractUnix, Scope::Signal]
    );
    // Everything hard: the limits refuse to run rather than be dropped.
    assert_eq!(plan.limits.compat(), Compat::Hard);
}

/// The service shares the host network, so Landlock's scopes are what keep the host's
/// abstract sockets and processes out; it grants the audit's loopback probe on purpose.
#[test]
fn service_scopes_landlock_and_grants_loopback() {
    let dir = TempDir::new("service");
    let caller = common::with_pwd(common::root(), dir.path());
    let loaded = policy::load(&PolicySource::Shipped("service"), &caller).unwrap();
    let plan = plan::compile(&loaded, &caller).unwrap();
    assert_eq!(plan.network, Network::Host);
    assert_eq!(plan.landlock.compat, Compat::Hard);
    assert_eq!(
        plan.landlock.scopes,
        vec![Scope::AbstractUnix, Scope::Signal]
    );
    assert_eq!(plan.audit_grants, ["net.host-loopback-tcp"]);
    assert_eq!(plan.limits.compat(), Compat::Hard);
}

/// `${PWD}` is tracked through loading, `extends` and merging: the working directory bound as
/// `${PWD}` keeps the hiding before it (the hidden tree is hidden again over it, and the home's
/// secrets stay hidden); the same directory bound by name is the policy's choice, and only its
/// secrets stay hidden.
#[rstest]
#[case::pwd("\"${PWD}\"", true)]
#[case::named("NAMED", false)]
fn the_working_directory_keeps_the_hiding(#[case] bind: &str, #[case] from_pwd: bool) {
    let dir = TempDir::new("pwd-hiding");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join(".ssh")).unwrap();
    let caller = Caller {
        home: tree.clone(),
        ..common::with_pwd(common::rootless(), &tree)
    };
    let bind = bind.replace("NAMED", &tree.display().to_string());
    dir.write(
        "parent.yaml",
        format!(
            "version: 1\nmounts:\n  - {{ hide: {} }}\n  - {{ bind: {bind} }}\n",
            dir.path().display()
        ),
    );
    let child = dir.write("child.yaml", "version: 1\nextends: parent.yaml\n");
    let plan = compile_file(&child, &caller);
    let shown: Vec<(String, String, &str)> = plan
        .mounts
        .iter()
        .map(|m| {
            (
                m.key.to_string(),
                m.target.display().to_string(),
                m.kind.name(),
            )
        })
        .collect();
    let (d, t) = (dir.path().display(), tree.display());
    // Either way the home's secrets stay hidden; as `${PWD}`, the caller's own home is shown
    // although it is inside the hidden tree.
    let want = vec![
        ("mounts[0]".to_string(), d.to_string(), "hide"),
        ("mounts[1]".to_string(), t.to_string(), "bind"),
        ("mounts[1]".to_string(), format!("{t}/.ssh"), "hide"),
    ];
    assert_eq!(shown, want);
    assert_eq!(plan.protected.len(), 1, "{:?}", plan.protected);
    assert_eq!(
        plan.protected[0].starts_with("the working directory (mounts[1])"),
        from_pwd,
        "{:?}",
        plan.protected
    );
    // Outside the caller's home, the working directory inside a hidden tree stays hidden.
    let stranger = Caller {
        home: PathBuf::from("/nonexistent"),
        ..caller
    };
    let plan = compile_file(&child, &stranger);
    let last = plan.mounts.last().unwrap();
    assert_eq!(
        (last.target.as_path(), last.kind.name()),
        (tree.as_path(), if from_pwd { "hide" } else { "bind" })
    );
}

// ── extends, replace, remove ─────────────────────────────────────────────────────────────────

const BASE: &str = "version: 1
name: base
hostname: base
mounts:
  - { hide: /home }
  - { tmpfs: /tmp }
limits: { memory: 1G, pids: 10 }
landlock: { read: [/usr], tcp-bind: [80, 8080] }
env: { set: { A: a, B: b } }
";

/// Writes `base.yaml` (BASE) and `child.yaml` (`version: 1`, `extends: ./base.yaml`, `body`)
/// and compiles the child.
fn child_of_base(body: &str) -> Plan {
    let dir = TempDir::new("extends");
    dir.write("base.yaml", BASE);
    let child = dir.write(
        "child.yaml",
        format!("version: 1\nextends: ./base.yaml\n{body}\n"),
    );
    compile_file(&child, &common::rootless())
}

fn mount_list(plan: &Plan) -> Vec<String> {
    plan.mounts
        .iter()
        .map(|m| format!("{} {}", m.kind.name(), m.target.display()))
        .collect()
}

#[rstest]
#[case::nothing_changes("", &["hide /home", "tmpfs /tmp"])]
#[case::lists_append("mounts: [{hide: /srv}]", &["hide /home", "tmpfs /tmp", "hide /srv"])]
#[case::empty_list_changes_nothing("mounts: []", &["hide /home", "tmpfs /tmp"])]
#[case::null_changes_nothing("mounts:", &["hide /home", "tmpfs /tmp"])]
#[case::replace_drops_the_parents_list("replace: [mounts]\nmounts: [{hide: /srv}]", &["hide /srv"])]
#[case::replace_without_a_new_value("replace: [mounts]", &[])]
#[case::remove_one_entry("remove: {mounts: [{hide: /home}]}", &["tmpfs /tmp"])]
#[case::remove_then_append("remove: {mounts: [{tmpfs: /tmp}]}\nmounts: [{tmpfs: /tmp, size: 1M}]", &["hide /home", "tmpfs /tmp"])]
fn extends_mounts(#[case] body: &str, #[case] want: &[&str]) {
    assert_eq!(mount_list(&child_of_base(body)), want);
}

#[test]
fn maps_merge_key_by_key_and_scalars_replace() {
    let plan = child_of_base(
        "name: child\nhostname: child\nlimits: {pids: 20, cpu: 1}\nenv: {set: {B: bee, C: c}}",
    );
    assert_eq!(plan.name, "child");
    assert_eq!(plan.hostname.as_deref(), Some("child"));
    assert_eq!(
        plan.limits,
        LimitsPlan {
            memory: Some(1 << 30),
            pids: Some(20),
            cpu_millis: Some(1000),
            ..Default::default()
        }
    );
    let set: Vec<(&str, &str)> = plan
        .env
        .vars
        .iter()
        .map(|(k, v)| (k.to_str().unwrap(), v.to_str().unwrap()))
        .collect();
    assert_eq!(
        set,
        [("A", "a"), ("B", "bee"), ("C", "c"), ("PATH", DEFAULT_PATH)]
    );
}

#[test]
fn an_empty_map_or_null_keeps_inherited_limits() {
    assert_eq!(child_of_base("limits: {}").limits.memory, Some(1 << 30));
    assert_eq!(child_of_base("limits: ~").limits.pids, Some(10));
}

#[test]
fn replace_a_nested_key() {
    let plan = child_of_base("replace: [limits.memory, landlock.read]\nlandlock: {read: [/opt]}");
    assert_eq!(
        plan.limits,
        LimitsPlan {
            pids: Some(10),
            ..Default::default()
        }
    );
    let read: Vec<String> = plan
        .landlock
        .rules
        .iter()
        .filter(|r| r.from.starts_with("landlock.read"))
        .map(|r| r.path.display().to_string())
        .collect();
    assert_eq!(read, ["/opt"]);
}

#[test]
fn remove_matches_numbers_written_as_text() {
    let plan = child_of_base("remove: {landlock.tcp-bind: ['8080']}");
    assert_eq!(plan.landlock.tcp_bind, Some(vec![80]));
}

#[test]
fn per_file_keys_are_not_merged() {
    let dir = TempDir::new("perfile");
    dir.write("base.yaml", BASE);
    let child = dir.write(
        "child.yaml",
        "version: 1\nextends: ./base.yaml\nreplace: [hostname]\n",
    );
    let loaded = load_file(&child, &common::rootless());
    assert_eq!(loaded.policy.version, Some(1));
    assert_eq!(loaded.policy.extends, None);
    assert_eq!(loaded.policy.replace, None);
    assert_eq!(loaded.policy.remove, None);
    assert_eq!(loaded.policy.hostname, None);
    // A name describes its own file: it is not inherited.
    assert_eq!(loaded.policy.name, None);
}

#[test]
fn a_chain_resolves_each_path_from_its_own_file() {
    let dir = TempDir::new("chain");
    let top = dir.write(
        "top.yaml",
        "version: 1\nname: top\nextends: sub/middle.yaml\nmounts: [{hide: /c}]\n",
    );
    dir.write(
        "sub/middle.yaml",
        "version: 1\nname: middle\nextends: ../base/bottom.yaml\nmounts: [{hide: /b}]\n",
    );
    dir.write(
        "base/bottom.yaml",
        "version: 1\nname: bottom\nhostname: bottom\nmounts: [{hide: /a}]\n",
    );
    let plan = compile_file(&top, &common::rootless());
    assert_eq!(plan.name, "top");
    assert_eq!(plan.hostname.as_deref(), Some("bottom"));
    assert_eq!(mount_list(&plan), ["hide /a", "hide /b", "hide /c"]);
    let sources: Vec<String> = plan
        .sources
        .iter()
        .map(|s| {
            Path::new(s)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(sources, ["top.yaml", "middle.yaml", "bottom.yaml"]);
}

#[test]
fn a_file_may_extend_a_shipped_policy() {
    let dir = TempDir::new("shipped-child");
    let child = dir.write("mine.yaml", "version: 1\nname: mine\nextends: default\nmounts: [{tmpfs: /data}]\nlimits: {memory: 2G}\n");
    let caller = common::with_pwd(common::rootless(), dir.path());
    let plan = compile_file(&child, &caller);
    assert_eq!(
        plan.sources,
        vec![
            child.display().to_string(),
            "<shipped>/default.yaml".to_string()
        ]
    );
    assert_eq!(plan.name, "mine");
    assert_eq!(plan.mounts.len(), 11);
    assert_eq!(plan.mounts[10].target, PathBuf::from("/data"));
    assert_eq!(plan.mounts[10].key.to_string(), "mounts[10]");
    assert_eq!(plan.limits.memory, Some(2 << 30));
    assert_eq!(plan.limits.pids, Some(256));
}

#[test]
fn variables_in_a_parent_expand_for_the_same_caller() {
    let dir = TempDir::new("vars");
    dir.write(
        "base.yaml",
        "version: 1\ncwd: ${HOME}\nenv: {set: {WHO: '${UID}'}}\n",
    );
    let child = dir.write("child.yaml", "version: 1\nextends: ./base.yaml\n");
    let plan = compile_file(&child, &common::rootless());
    assert_eq!(plan.cwd, PathBuf::from("/home/alice"));
    assert!(plan.env.vars.contains(&("WHO".into(), "1000".into())));
}
