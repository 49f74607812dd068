//! `network` planned: pasta's arguments, published ports, the files, what a mode refuses.

use std::net::IpAddr;
use std::path::PathBuf;

use rstest::rstest;

use super::*;
use crate::plan::Diags;

fn tool(name: &str, _package: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(format!("/usr/bin/{name}")))
}

fn no_tool(name: &str, package: &str) -> Result<PathBuf, String> {
    Err(format!(
        "`{name}` is not installed (Debian package `{package}`)"
    ))
}

fn host(t: &'static dyn Fn(&str, &str) -> Result<PathBuf, String>) -> Host<'static> {
    Host {
        tool: t,
        resolv_conf: "nameserver 10.0.0.53\nsearch example.org\noptions ndots:2\n".into(),
        unprivileged_port_start: 1024,
        tun: Ok(()),
    }
}

fn spec(yaml: &str) -> model::Network {
    serde_yaml::from_str(yaml).unwrap()
}

/// Plans `yaml` as `user` for a root or unprivileged caller (with a user namespace).
fn planned(yaml: &str, root: bool, h: &Host<'_>) -> (Planned, Vec<(String, String)>) {
    let mut caller = Caller::for_tests();
    if root {
        caller = caller.as_root();
    }
    let mut d = Diags::default();
    let s = spec(yaml);
    let mode = s.mode.map_or(Network::User, Network::from);
    let p = plan(
        Some(&s),
        mode,
        &[Namespace::User, Namespace::Net],
        &caller,
        Some("box"),
        h,
        &mut d,
    );
    (p, d.into_pairs())
}

fn args(yaml: &str, root: bool) -> Vec<String> {
    let (p, errs) = planned(yaml, root, &host(&tool));
    assert!(errs.is_empty(), "{errs:?}");
    p.user.unwrap().pasta.value.args
}

/// Nothing of the host is mapped into the sandbox unless the policy says so.
#[test]
fn pasta_maps_nothing_of_the_host_by_default() {
    let a = args("mode: user", false).join(" ");
    for want in [
        "--netns /proc/self/fd/3 --userns /proc/self/fd/4",
        "--pid /proc/self/fd/5",
        "--no-map-gw",
        "--tcp-ports none --udp-ports none",
        "--tcp-ns none --udp-ns none",
        "--dns-forward 169.254.1.1",
    ] {
        assert!(a.contains(want), "{want}: {a}");
    }
    assert!(!a.contains("--runas"), "{a}");
    assert!(args("mode: user", true).join(" ").contains("--runas 0"));
}

#[rstest]
#[case(
    "{ports: [{host: '127.0.0.1:8080', sandbox: 80}]}",
    "--tcp-ports 127.0.0.1/8080:80 --udp-ports none"
)]
#[case(
    "{ports: [{host: 8080}]}",
    "--tcp-ports 127.0.0.1/8080:8080 --udp-ports none"
)]
#[case(
    "{ports: [{host: '0.0.0.0:8080'}]}",
    "--tcp-ports 8080:8080 --udp-ports none"
)]
#[case(
    "{ports: [{host: '[::1]:8080', sandbox: 80}]}",
    "--tcp-ports ::1/8080:80"
)]
#[case(
    "{ports: [{host: '127.0.0.1:5353', proto: udp}]}",
    "--tcp-ports none --udp-ports 127.0.0.1/5353:5353"
)]
#[case("{host-loopback: [5432, 53/udp]}", "--tcp-ns 5432 --udp-ns 53")]
#[case("{dns: [198.18.0.2]}", "--tcp-ns none --udp-ns none")]
fn pasta_gets_the_policy_s_ports(#[case] yaml: &str, #[case] want: &str) {
    let a = args(yaml, false).join(" ");
    assert!(a.contains(want), "{want}: {a}");
}

#[rstest]
#[case("{ports: [{sandbox: 80}]}", "network.ports[0].host", "required")]
#[case(
    "{ports: [{host: 'localhost:80'}]}",
    "network.ports[0].host",
    "not an IPv4 address"
)]
#[case("{ports: [{host: 80}]}", "network.ports[0].host", "below 1024")]
#[case(
    "{ports: [{host: 8080, sandbox: 0}]}",
    "network.ports[0].sandbox",
    "not a port"
)]
#[case(
    "{ports: [{host: 8053, sandbox: 53, proto: udp}]}",
    "network.ports[0].sandbox",
    "own number only"
)]
#[case(
    "{ports: [{host: 8080}, {host: '127.0.0.1:8080'}]}",
    "network.ports[1].host",
    "published twice"
)]
#[case(
    "{host-loopback: [5432/sctp]}",
    "network.host-loopback[0]",
    "not a protocol"
)]
#[case("{host-loopback: [0]}", "network.host-loopback[0]", "not a port")]
#[case(
    "{dns: [resolver.example]}",
    "network.dns[0]",
    "not an IPv4 or IPv6 address"
)]
#[case("{dns: []}", "network.dns", "an empty list")]
#[case(
    "{dns: none, allow: [dns]}",
    "network.allow[0]",
    "no resolver to allow"
)]
#[case("{allow: ['10.0.0.1/8:443']}", "network.allow[0]", "host bits set")]
fn bad_network_keys_say_where(#[case] yaml: &str, #[case] key: &str, #[case] why: &str) {
    let (_, errs) = planned(yaml, false, &host(&tool));
    assert!(
        errs.iter().any(|(k, m)| k == key && m.contains(why)),
        "{key}: {why}: {errs:?}"
    );
}

/// Root may publish a port below 1024.
#[test]
fn root_may_publish_a_low_port() {
    let (_, errs) = planned("{ports: [{host: 80}]}", true, &host(&tool));
    assert!(errs.is_empty(), "{errs:?}");
}

/// The keys only `user` reads are errors under another mode.
#[rstest]
#[case("{mode: none, allow: [dns]}", "network.allow")]
#[case("{mode: host, ports: [{host: 8080}]}", "network.ports")]
#[case("{mode: none, compat: best-effort}", "network.compat")]
fn user_only_keys_under_another_mode(#[case] yaml: &str, #[case] key: &str) {
    let (p, errs) = planned(yaml, false, &host(&tool));
    assert!(p.user.is_none());
    assert!(errs.iter().any(|(k, _)| k == key), "{errs:?}");
}

/// A missing pasta: an error at `network.mode` naming the package, or under best-effort, no
/// network and a line saying why.
#[test]
fn missing_pasta_fails_closed_unless_best_effort() {
    let (_, errs) = planned("{mode: user}", false, &host(&no_tool));
    assert!(
        errs.iter()
            .any(|(k, m)| k == "network.mode" && m.contains("`passt`")),
        "{errs:?}"
    );
    let (p, errs) = planned("{mode: user, compat: best-effort}", false, &host(&no_tool));
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(p.mode, Network::None);
    assert!(p.user.is_none() && p.files.is_empty());
    assert!(p.dropped[0].contains("loopback only"), "{:?}", p.dropped);
}

/// A tun device the caller can't open: an error at `network.mode` that names the device
/// (not pasta's "Failed to open tun socket"), or under best-effort, loopback only.
#[test]
fn a_tun_device_the_caller_cannot_open_fails_closed_unless_best_effort() {
    let refused = || Host {
        tun: Err("/dev/net/tun (mode 0600, owner uid 0) is not readable and writable".into()),
        ..host(&tool)
    };
    let (_, errs) = planned("{mode: user}", false, &refused());
    assert!(
        errs.iter().any(|(k, m)| k == "network.mode"
            && m.starts_with("/dev/net/tun (mode 0600")
            && m.ends_with("; or set `network.compat: best-effort` to run with loopback only")),
        "{errs:?}"
    );
    let (p, errs) = planned("{mode: user, compat: best-effort}", false, &refused());
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(p.mode, Network::None);
    assert!(p.dropped[0].contains("/dev/net/tun"), "{:?}", p.dropped);
}

/// The probe itself: a device that is not there is said as such; one the caller may open
/// (this test's own file) passes.
#[rstest]
#[case::absent(false, Some("there is no"))]
#[case::openable(true, None)]
fn tun_access_names_what_is_wrong(#[case] exists: bool, #[case] want: Option<&str>) {
    let dir = std::env::temp_dir().join(format!("kekkai-tun-{}-{exists}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tun");
    if exists {
        std::fs::write(&path, b"").unwrap();
    }
    let got = tun_access(&path);
    std::fs::remove_dir_all(&dir).unwrap();
    match want {
        None => assert_eq!(got, Ok(())),
        Some(w) => assert!(got.as_ref().is_err_and(|m| m.starts_with(w)), "{got:?}"),
    }
}

/// resolv.conf points at the forwarder (or the policy's resolvers) and keeps the host's
/// search and options lines; hosts names the host name.
#[test]
fn resolv_conf_and_hosts() {
    let (p, _) = planned("{mode: user}", false, &host(&tool));
    let text = |target: &str| match &p
        .files
        .iter()
        .find(|f| f.target.as_path() == std::path::Path::new(target))
    {
        Some(MountPlan {
            kind: MountKind::File { contents },
            ..
        }) => contents.clone(),
        other => panic!("{target}: {other:?}"),
    };
    let resolv = text("/etc/resolv.conf");
    assert!(resolv.contains("nameserver 169.254.1.1\n"), "{resolv}");
    assert!(!resolv.contains("10.0.0.53"), "{resolv}");
    assert!(resolv.contains("search example.org\n") && resolv.contains("options ndots:2\n"));
    assert!(text("/etc/hosts").contains("127.0.1.1\tbox\n"));
    let (p, _) = planned("{dns: [198.18.0.2, 'fd6b:6b6b::2']}", false, &host(&tool));
    let u = p.user.unwrap();
    assert_eq!(
        u.egress.resolvers,
        vec![
            "198.18.0.2".parse::<IpAddr>().unwrap(),
            "fd6b:6b6b::2".parse().unwrap()
        ]
    );
    assert!(!u.egress.forwarder);
    assert!(!u.pasta.args.contains(&"--dns-forward".to_string()));
}

/// `dns` in the allowlist, or no allowlist, lets DNS through; an allowlist without it does not.
#[rstest]
#[case("{mode: user}", true)]
#[case("{allow: [dns, 'any:443']}", true)]
#[case("{allow: ['any:443']}", false)]
fn dns_is_allowed_when_asked(#[case] yaml: &str, #[case] want: bool) {
    let (p, _) = planned(yaml, false, &host(&tool));
    assert_eq!(p.user.unwrap().egress.dns, want);
}
