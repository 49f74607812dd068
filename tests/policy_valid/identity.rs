//! Identity and id maps (root and rootless callers), the environment, limits, rlimits,
//! timeouts, capabilities.

use super::*;

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
        support::root()
    } else {
        support::rootless()
    };
    let plan = compile_as(body, &caller);
    assert_eq!((*plan.identity.uid, *plan.identity.gid), ids);
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
    let (uid, gid) = support::passwd_ids("www-data");
    let users = support::group_id("users");
    let plan = compile_as(
        "identity: {uid: www-data, groups: [users, www-data]}",
        &support::root(),
    );
    assert_eq!((*plan.identity.uid, *plan.identity.gid), (uid, gid));
    assert_eq!(plan.identity.user.as_deref(), Some("www-data"));
    assert_eq!(*plan.identity.groups, vec![users, gid]);
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
    let dir = Scratch::not_roots("owner");
    let owner = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(dir.path()).unwrap().uid()
    };
    let root = support::with_pwd(support::root(), dir.path());
    let loaded = policy::load(&PolicySource::Shipped("build"), &root).unwrap();
    let plan = plan::compile(&loaded, &root).unwrap();
    assert_eq!(*plan.identity.uid, owner);
    assert_eq!(plan.identity.owner_of.as_deref(), Some(dir.path()));
    assert_ne!(plan.identity.host.uid, 0);
    let rootless = support::with_pwd(support::rootless(), dir.path());
    let loaded = policy::load(&PolicySource::Shipped("build"), &rootless).unwrap();
    let plan = plan::compile(&loaded, &rootless).unwrap();
    assert_eq!((*plan.identity.uid, *plan.identity.gid), (1000, 1000));
}

/// With `host-privileges: allow` the rule's refusals become choices of the policy.
#[test]
fn host_privileges_allow_lifts_every_refusal() {
    let plan = compile_as(
        "host-privileges: allow\nidentity: {uid: 0, gid: 0, groups: [0]}\ncapabilities: {keep: [dac_read_search, setfcap]}\nseccomp: {allow: [openat2]}",
        &support::root(),
    );
    assert_eq!(plan.identity.host.uid, 0);
    assert_eq!(plan.host_privileges, kekkai::plan::HostPrivileges::Allow);
    let openat2 = kekkai::plan::names::syscall_number("openat2").unwrap();
    assert!(
        plan.seccomp
            .denied
            .values()
            .all(|d| !d.contains_key(&openat2))
    );
}

// ── environment ──────────────────────────────────────────────────────────────────────────────

fn env_caller() -> Caller {
    let mut c = support::rootless();
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
#[case::memory("limits: {memory: 512M}", LimitsPlan { memory: limit("memory", 512 << 20), ..Default::default() })]
#[case::memory_fraction("limits: {memory: 1.5G}", LimitsPlan { memory: limit("memory", 3 << 29), ..Default::default() })]
#[case::memory_unlimited("limits: {memory: unlimited, pids: 1}", LimitsPlan { memory: limit("memory", u64::MAX), pids: limit("pids", 1), ..Default::default() })]
#[case::memory_family(
    "limits: {memory: 1G, memory-high: 768M, swap: 0}",
    LimitsPlan { memory: limit("memory", 1 << 30), memory_high: limit("memory-high", 768 << 20), swap: limit("swap", 0), ..Default::default() }
)]
#[case::cpu(
    "limits: {cpu: 0.25, cpuset: '0-1,3', cpu-weight: 1, io-weight: 10000}",
    LimitsPlan { cpu_millis: limit("cpu", 250), cpuset: limit("cpuset", "0-1,3".to_string()), cpu_weight: limit("cpu-weight", 1), io_weight: limit("io-weight", 10000), ..Default::default() }
)]
#[case::pids_maximum("limits: {pids: 4194304}", LimitsPlan { pids: limit("pids", 4_194_304), ..Default::default() })]
#[case::compat_and_parent(
    "limits: {compat: best-effort, parent: /kekkai.slice//x/}",
    LimitsPlan { compat: keyed(Compat::BestEffort, "limits.compat"), parent: Some(PathBuf::from("/kekkai.slice/x")), ..Default::default() }
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
        .map(|r| (r.limit.name(), r.limit.resource(), r.value))
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
