//! The shipped policies.

use super::*;

// ── shipped policies ─────────────────────────────────────────────────────────────────────────

#[rstest]
fn every_shipped_policy_compiles(
    #[values(
        "default",
        "untrusted",
        "build",
        "service",
        "python",
        "node",
        "network-client"
    )]
    name: &'static str,
    #[values(false, true)] as_root: bool,
) {
    // `build` refuses a root caller in a directory root owns.
    let dir = Scratch::not_roots("shipped");
    let caller = support::with_pwd(
        if as_root {
            support::root()
        } else {
            support::rootless()
        },
        dir.path(),
    );
    let loaded = policy::load(&PolicySource::Shipped(name), &caller).unwrap();
    let plan = plan::compile(&loaded, &caller).unwrap_or_else(|e| panic!("{name}:\n{e}"));
    assert_eq!(plan.name, name);
}

#[test]
fn the_default_policy_plan() {
    let dir = Scratch::new("default");
    let caller = support::with_pwd(support::rootless(), dir.path());
    let loaded = policy::load(&PolicySource::Shipped("default"), &caller).unwrap();
    let plan = plan::compile(&loaded, &caller).unwrap();
    assert_eq!(plan.sources, vec!["<shipped>/default.yaml"]);
    assert_eq!(
        *plan.namespaces,
        vec![User, Mount, Pid, Net, Ipc, Uts, Cgroup]
    );
    assert_eq!(*plan.network, Network::None);
    assert_eq!(plan.hostname.as_ref().map(|h| h.as_str()), Some("kekkai"));
    assert_eq!(*plan.cwd, dir.path());
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
    assert_eq!(value(&plan.limits.memory), Some(1 << 30));
    assert_eq!(plan.limits.compat(), Compat::BestEffort);
    assert_eq!(plan.caps.keep, 0);
    assert_eq!(
        *plan.landlock.scopes,
        vec![Scope::AbstractUnix, Scope::Signal]
    );
    assert_eq!(plan.seccomp.preset, Preset::Default);
}

#[test]
fn untrusted_replaces_the_default_mounts() {
    let dir = Scratch::new("untrusted");
    let caller = support::with_pwd(support::rootless(), dir.path());
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
    assert_eq!(*plan.cwd, PathBuf::from("/work"));
    assert_eq!(plan.seccomp.preset, Preset::Strict);
    assert_eq!(*plan.landlock.compat, Compat::Hard);
    assert_eq!(plan.timeout, Some(Duration::from_secs(60)));
    // Inherited from default: untrusted says nothing about these.
    assert_eq!(plan.hostname.as_ref().map(|h| h.as_str()), Some("kekkai"));
    assert_eq!(
        *plan.landlock.scopes,
        vec![Scope::AbstractUnix, Scope::Signal]
    );
    // Everything hard: the limits refuse to run rather than be dropped.
    assert_eq!(plan.limits.compat(), Compat::Hard);
}

/// The service shares the host network, so Landlock's scopes are what keep the host's
/// abstract sockets and processes out; it grants the audit's loopback probe on purpose.
#[test]
fn service_scopes_landlock_and_grants_loopback() {
    let dir = Scratch::new("service");
    let caller = support::with_pwd(support::root(), dir.path());
    let loaded = policy::load(&PolicySource::Shipped("service"), &caller).unwrap();
    let plan = plan::compile(&loaded, &caller).unwrap();
    assert_eq!(*plan.network, Network::Host);
    assert_eq!(*plan.landlock.compat, Compat::Hard);
    assert_eq!(
        *plan.landlock.scopes,
        vec![Scope::AbstractUnix, Scope::Signal]
    );
    assert_eq!(plan.audit_grants, ["net.host-loopback-tcp"]);
    assert_eq!(plan.limits.compat(), Compat::Hard);
}

/// The network client is the default with `network: user`: an allowlist of every public
/// address and port (the special ranges and the host's own addresses refused), DNS through
/// pasta's forwarder to the host's resolver, nothing published, none of the host's loopback,
/// no Landlock connect rules (every port is allowed), the default's identity and seccomp
/// (which lets it create IPv4, IPv6 and netlink-route sockets).
#[test]
fn network_client_reaches_public_addresses_through_pasta() {
    use kekkai::plan::network::{Allow, Proto, Resolvers, Target};
    let dir = Scratch::new("network-client");
    let caller = support::with_pwd(support::root(), dir.path());
    let loaded = policy::load(&PolicySource::Shipped("network-client"), &caller).unwrap();
    let plan = plan::compile(&loaded, &caller).unwrap();
    assert_eq!(
        plan.sources,
        vec!["<shipped>/network-client.yaml", "<shipped>/default.yaml"]
    );
    assert_eq!(*plan.network, Network::User);
    assert!(plan.namespaces.contains(&Net) && plan.namespaces.contains(&User));
    let user = plan.user_net.as_ref().unwrap();
    let allow: Vec<Allow> = user
        .egress
        .allow
        .as_ref()
        .unwrap()
        .iter()
        .map(|a| a.value.clone())
        .collect();
    assert_eq!(
        allow,
        [
            Allow::Dns,
            Allow::Dest {
                target: Target::Any,
                ports: (0, u16::MAX),
                protos: vec![Proto::Tcp, Proto::Udp],
            },
        ]
    );
    assert!(user.egress.dns && user.egress.forwarder);
    assert_eq!(*user.dns, Resolvers::Host);
    assert!(user.ports.is_empty() && user.host_loopback.is_empty());
    assert!(
        user.pasta.userns,
        "pasta holds capabilities in the sandbox's namespace only"
    );
    assert_eq!(plan.landlock.tcp_connect, None);
    assert_eq!(*plan.identity.uid, 65534);
    assert_eq!(plan.caps.keep, 0);
    assert_eq!(plan.seccomp.preset, Preset::Default);
    assert!(plan.seccomp.netlink_route);
    let families = plan.seccomp.socket_families.as_ref().unwrap();
    for family in [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6] {
        let family = u64::try_from(family).unwrap();
        assert!(families.contains(&family), "{family}: {families:?}");
    }
    assert!(plan.audit_grants.is_empty());
}

/// `${PWD}` is tracked through loading, `extends` and merging: the working directory bound as
/// `${PWD}` keeps the hiding before it (the hidden tree is hidden again over it, and the home's
/// secrets stay hidden); the same directory bound by name is the policy's choice, and only its
/// secrets stay hidden.
#[rstest]
#[case::pwd("\"${PWD}\"", true)]
#[case::named("NAMED", false)]
fn the_working_directory_keeps_the_hiding(#[case] bind: &str, #[case] from_pwd: bool) {
    let dir = Scratch::new("pwd-hiding");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join(".ssh")).unwrap();
    let caller = Caller {
        home: tree.clone(),
        ..support::with_pwd(support::rootless(), &tree)
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

/// The rstest `#[values(...)]` lists meant to name every shipped policy (rstest needs literals
/// there, so they can't call `policy::shipped::names()`) name all of them: a list of five or
/// more shipped names, in any test or unit test of the crate, must be the whole set. A new
/// shipped policy that one of them forgets fails here, naming the file and line.
#[test]
fn every_list_of_the_shipped_policies_is_complete() {
    let all: std::collections::BTreeSet<&str> = policy::shipped::names().collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut dirs = vec![root.join("tests"), root.join("src")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let mut lists = 0;
    let mut wrong = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (at, _) in text.match_indices("#[values(") {
            let rest = &text[at + "#[values(".len()..];
            let Some(end) = rest.find(")]") else { continue };
            let names: std::collections::BTreeSet<&str> = rest[..end]
                .split(',')
                .filter_map(|s| s.trim().strip_prefix('"')?.strip_suffix('"'))
                .collect();
            if names.len() < 5 || !names.is_subset(&all) {
                continue;
            }
            lists += 1;
            if names != all {
                let line = text[..at].matches('\n').count() + 1;
                let missing: Vec<_> = all.difference(&names).collect();
                wrong.push(format!("{}:{line}: misses {missing:?}", f.display()));
            }
        }
    }
    assert!(
        lists >= 8,
        "only {lists} lists of the shipped policies found"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
