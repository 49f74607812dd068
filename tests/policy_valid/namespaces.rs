//! Namespaces and clone flags, the root filesystem, mounts.

use super::*;

// ── namespaces, network, clone flags ─────────────────────────────────────────────────────────

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
        support::root()
    } else {
        support::rootless()
    };
    let plan = compile_as(body, &caller);
    assert_eq!(*plan.namespaces, want);
    assert_eq!(plan.userns_added, userns_added);
    assert_eq!(*plan.network, network);
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
    assert_eq!(compile(body).hostname.as_ref().map(|h| h.as_str()), want);
}

#[rstest]
#[case::default("", "/")]
#[case::plain("cwd: /srv/app", "/srv/app")]
#[case::normalised("cwd: /usr//lib/./x/", "/usr/lib/x")]
fn working_directory(#[case] body: &str, #[case] want: &str) {
    assert_eq!(*compile(body).cwd, PathBuf::from(want));
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
    assert_eq!(*plan.rootfs.lowers, vec![PathBuf::from("/")]);
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
        *plan.rootfs.lowers,
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

/// What launch and export act on carries the policy key its errors name: they never spell one.
#[test]
fn plan_items_carry_their_keys() {
    let plan = compile(
        "hostname: box\ncwd: /tmp\nnetwork: none\ncapabilities: {keep: []}\nrlimits: {nofile: 64}\nlandlock: {tcp-bind: [80], tcp-connect: [443], scope: [signal]}\n",
    );
    let ns = plan.userns.as_ref().unwrap();
    let keys = [
        plan.namespaces.key.to_string(),
        plan.hostname.as_ref().unwrap().key.to_string(),
        plan.network.key.to_string(),
        plan.cwd.key.to_string(),
        plan.identity.uid.key.to_string(),
        plan.identity.gid.key.to_string(),
        plan.identity.groups.key.to_string(),
        ns.key.to_string(),
        plan.caps.key.to_string(),
        plan.rootfs.lowers.key.to_string(),
        plan.rlimits[0].key.to_string(),
        plan.limits.key.to_string(),
        plan.limits.compat.key.to_string(),
        plan.landlock.compat.key.to_string(),
        plan.landlock.tcp_bind.as_ref().unwrap().key.to_string(),
        plan.landlock.tcp_connect.as_ref().unwrap().key.to_string(),
        plan.landlock.scopes.key.to_string(),
    ];
    assert_eq!(
        keys,
        [
            "namespaces",
            "hostname",
            "network",
            "cwd",
            "identity.uid",
            "identity.gid",
            "identity.groups",
            "identity",
            "capabilities.keep",
            "rootfs.lower",
            "rlimits.nofile",
            "limits",
            "limits.compat",
            "landlock.compat",
            "landlock.tcp-bind",
            "landlock.tcp-connect",
            "landlock.scope",
        ]
    );
}
