//! `network`: none, host, or user-mode networking through `pasta`, planned.
//!
//! `network: user` gives the sandbox its own network namespace and connects it to the outside
//! through `pasta` (Debian package `passt`), which the supervisor starts as the caller, outside
//! the sandbox, attached to the sandbox's namespaces: pasta answers the sandbox's packets with
//! ordinary sockets of the host's, so outbound TCP and UDP go through the host's stack. The
//! host side is mapped to nothing: `--tcp-ns none --udp-ns none` (the host's loopback ports
//! are not spliced into the sandbox's loopback, unless `network.host-loopback` names them),
//! `--no-map-gw` (the gateway address is the real gateway, not the host), `--tcp-ports none
//! --udp-ports none` unless `network.ports` publishes some. DNS goes to the host's resolver through pasta's
//! forwarder, or to the resolvers the policy lists; the sandbox's `/etc/resolv.conf` and
//! `/etc/hosts` are files of the plan, bound over the root's (`mounts`, last). The egress
//! rules (`egress.rs`) are loaded into the sandbox's namespace by `nft` before the program
//! starts.
//!
//! Ordering in the launch: pasta and nft start right after the id maps are written (they need
//! the namespaces and the maps), run while the sandbox builds its root, and the program starts
//! only once pasta is ready and the rules are loaded (the supervisor's go-ahead, before
//! seccomp). pasta ends with the sandbox.

mod egress;

use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

pub use egress::{
    Allow, DNS_FORWARDER, Egress, HOST_SETS, IpNet, SPECIAL, SourcePorts, Special, Target,
    key as egress_key,
};

use super::fs::{MountKind, MountPlan};
use super::keyed::Keyed;
use super::vocab::{Compat, Namespace, Network};
use super::{Diags, suggest};
use crate::caller::Caller;
use crate::policy::KeyPath;
use crate::policy::model;

/// Where pasta finds the sandbox's network namespace (a descriptor the launch passes).
pub const FD_NETNS: i32 = 3;
/// Where pasta finds the sandbox's user namespace.
pub const FD_USERNS: i32 = 4;
/// Where pasta writes its pid once it is ready (the write end of a pipe).
pub const FD_READY: i32 = 5;

/// Where kekkai looks for `pasta` and `nft`: the system's directories only, never the caller's
/// PATH (pasta runs as the caller, outside the sandbox; for a root caller, as root).
pub const TOOL_DIRS: [&str; 6] = [
    "/usr/bin",
    "/usr/sbin",
    "/bin",
    "/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
];

/// Most TCP ports an allowlist may name for Landlock to get them as connect rules.
pub const LANDLOCK_MAX_PORTS: usize = 64;

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// The policy's (and nft's) word for it.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl From<model::Proto> for Proto {
    fn from(p: model::Proto) -> Self {
        match p {
            model::Proto::Tcp => Proto::Tcp,
            model::Proto::Udp => Proto::Udp,
        }
    }
}

/// The resolvers the sandbox uses.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Resolvers {
    /// The host's, through pasta's forwarder at [`DNS_FORWARDER`].
    Host,
    /// None.
    None,
    /// These.
    Servers(Vec<IpAddr>),
}

/// A port published from the host into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Published {
    /// The host address it is bound on (`None`: every address, written `0.0.0.0` or `[::]`;
    /// without an address in the policy, 127.0.0.1).
    pub addr: Option<IpAddr>,
    /// The host's port.
    pub host: u16,
    /// The sandbox's port.
    pub sandbox: u16,
    /// The protocol.
    pub proto: Proto,
}

impl std::fmt::Display for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self.proto.name();
        match self.addr {
            None => write!(f, "host *:{} → sandbox {} ({p})", self.host, self.sandbox),
            Some(IpAddr::V6(a)) => {
                write!(
                    f,
                    "host [{a}]:{} → sandbox {} ({p})",
                    self.host, self.sandbox
                )
            }
            Some(a) => write!(f, "host {a}:{} → sandbox {} ({p})", self.host, self.sandbox),
        }
    }
}

/// A port of the host's loopback the sandbox may reach at its own loopback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostPort {
    /// The port (the same number on both sides).
    pub port: u16,
    /// The protocol.
    pub proto: Proto,
}

/// How pasta is started.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pasta {
    /// The program (canonical path, owned by root and writable by nobody else).
    pub program: PathBuf,
    /// Its arguments (after argv\[0\]), with the descriptors [`FD_NETNS`], [`FD_USERNS`] and
    /// [`FD_READY`] named as `/proc/self/fd/N`.
    pub args: Vec<String>,
    /// Whether pasta joins the sandbox's user namespace (`--userns`); without one (a root
    /// caller whose policy has no user namespace) it keeps CAP_SYS_ADMIN in the host's.
    pub userns: bool,
}

/// `network: user`, planned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserNet {
    /// pasta (`network.mode`).
    pub pasta: Keyed<Pasta>,
    /// nft, which loads the egress rules (`network.mode`).
    pub nft: Keyed<PathBuf>,
    /// The egress rules.
    pub egress: Egress,
    /// The resolvers (`network.dns`).
    pub dns: Keyed<Resolvers>,
    /// Published ports (`network.ports[i]`).
    pub ports: Vec<Keyed<Published>>,
    /// The host's loopback ports the sandbox may reach (`network.host-loopback[i]`).
    pub host_loopback: Vec<Keyed<HostPort>>,
    /// Where the policy (file, line, column, key path; or the flag) asks for pasta, and for
    /// the egress rules: what a launch error names (filled in by compile).
    pub origin: Origins,
}

/// Where the parts of `network: user` come from, as a launch error names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Origins {
    /// `network.mode` (or the first published port when pasta failed with ports to bind).
    pub pasta: String,
    /// `network.allow`, or `network.mode` without an allowlist.
    pub egress: String,
    /// Each published port's (`network.ports[i]`, or `--publish`), in the order of
    /// [`UserNet::ports`].
    #[serde(default)]
    pub ports: Vec<String>,
}

/// What compile needs from the network section.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The mode that runs (`none` when a best-effort `user` can't).
    pub mode: Network,
    /// `user`'s details.
    pub user: Option<UserNet>,
    /// What a best-effort `user` ran without, and why.
    pub dropped: Vec<String>,
    /// The files bound over the root's `/etc/resolv.conf` and `/etc/hosts`.
    pub files: Vec<MountPlan>,
}

/// Finds a tool in [`TOOL_DIRS`]: a regular, executable file that root owns and nobody else
/// may write (pasta and nft run as the caller, outside the sandbox).
pub fn find_tool(name: &str, package: &str) -> Result<PathBuf, String> {
    for dir in TOOL_DIRS {
        let path = Path::new(dir).join(name);
        let Ok(real) = std::fs::canonicalize(&path) else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(&real) else {
            continue;
        };
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            continue;
        }
        if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
            return Err(format!(
                "{} is not owned by root or is writable by others: kekkai runs it as the caller, \
                 outside the sandbox, and refuses it",
                real.display()
            ));
        }
        // The name as found, not the link's target: `pasta` is a link to `passt`, which picks
        // its mode by the name it was started as.
        return Ok(path);
    }
    Err(format!(
        "`{name}` is not installed (Debian package `{package}`; looked in {})",
        TOOL_DIRS.join(", ")
    ))
}

/// The host: what planning reads from it (a seam for the unit tests).
pub struct Host<'a> {
    /// Finds a tool (`name`, `package`).
    pub tool: &'a dyn Fn(&str, &str) -> Result<PathBuf, String>,
    /// The host's /etc/resolv.conf.
    pub resolv_conf: String,
    /// The lowest port an unprivileged process may bind.
    pub unprivileged_port_start: u16,
    /// Whether the caller may open the tun device, where pasta makes the sandbox's interface
    /// (pasta runs as the caller), and if not, why ([`tun_access`]).
    pub tun: Result<(), String>,
}

impl Host<'static> {
    /// This host, as planning `mode` needs it: only `user` reads the host's resolv.conf and
    /// port floor (every other mode returns before it looks).
    pub fn for_mode(mode: Network) -> Host<'static> {
        if mode == Network::User {
            return Host::this();
        }
        Host {
            tool: &find_tool,
            resolv_conf: String::new(),
            unprivileged_port_start: 1024,
            tun: Ok(()),
        }
    }

    /// This host.
    pub fn this() -> Host<'static> {
        Host {
            tool: &find_tool,
            resolv_conf: std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            unprivileged_port_start: std::fs::read_to_string(
                "/proc/sys/net/ipv4/ip_unprivileged_port_start",
            )
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(1024),
            tun: tun_access(Path::new(TUN)),
        }
    }
}

/// The tun device pasta opens, from the sandbox's network namespace, as the caller.
const TUN: &str = "/dev/net/tun";

/// Whether the caller (kekkai's real uid and gid, which pasta runs as) may open the tun device
/// at `path` for reading and writing. A diagnosis only, so that a refusal names the device
/// instead of pasta's "Failed to open tun socket in namespace": pasta opens the device itself
/// and fails closed either way. udev's default rule makes the node 0666 on every distribution;
/// without udev (a container, an init that is not systemd) devtmpfs leaves it 0600, root's.
pub fn tun_access(path: &Path) -> Result<(), String> {
    use nix::unistd::{AccessFlags, access};
    match access(path, AccessFlags::R_OK | AccessFlags::W_OK) {
        Ok(()) => Ok(()),
        Err(Errno::ENOENT) => Err(format!(
            "there is no {} (the `tun` module's device), where pasta makes the sandbox's \
             interface",
            path.display()
        )),
        Err(e) => {
            let how = std::fs::metadata(path).map_or_else(
                |_| String::new(),
                |m| format!(" (mode {:04o}, owner uid {})", m.mode() & 0o7777, m.uid()),
            );
            Err(format!(
                "{}{how} is not readable and writable by uid {} ({}), and pasta, run as the \
                 caller, makes the sandbox's interface there; udev's default rule makes it \
                 0666 (as root: `chmod 0666 {}`)",
                path.display(),
                nix::unistd::getuid(),
                e.desc(),
                path.display()
            ))
        }
    }
}

/// Plans `network` for `mode` (already decided from the key and the namespaces).
pub fn plan(
    spec: Option<&model::Network>,
    mode: Network,
    namespaces: &[Namespace],
    caller: &Caller,
    hostname: Option<&str>,
    host: &Host<'_>,
    d: &mut Diags,
) -> Planned {
    let here = KeyPath::root().key("network");
    let none = Planned {
        mode,
        user: None,
        dropped: Vec::new(),
        files: Vec::new(),
    };
    let default = model::Network::default();
    let spec = spec.unwrap_or(&default);
    if mode != Network::User {
        // The keys that only `user` reads.
        let given = [
            ("allow", spec.allow.is_some()),
            ("ports", spec.ports.is_some()),
            ("dns", spec.dns.is_some()),
            ("host-loopback", spec.host_loopback.is_some()),
            ("compat", spec.compat.is_some()),
        ];
        for (key, _) in given.iter().filter(|(_, g)| *g) {
            d.push(
                here.key(key),
                format!(
                    "only `network.mode: user` reads this (the mode is `{}`; --net user \
                     sets it)",
                    mode.name()
                ),
            );
        }
        return none;
    }
    let mode_key = here.key("mode");
    let compat = spec.compat.map_or(Compat::Hard, Compat::from);
    let dns = plan_dns(spec.dns.as_ref(), &here.key("dns"), d);
    let allow = plan_allow(spec.allow.as_deref(), &here.key("allow"), &dns, d);
    let ports = plan_ports(
        spec.ports.as_deref().unwrap_or_default(),
        &here.key("ports"),
        caller,
        host,
        d,
    );
    let host_loopback = plan_host_loopback(
        spec.host_loopback.as_deref().unwrap_or_default(),
        &here.key("host-loopback"),
        d,
    );
    // The tools and the tun device. A best-effort policy runs without the network rather than
    // without the rules.
    let tools = (host.tool)("pasta", "passt")
        .and_then(|p| (host.tool)("nft", "nftables").map(|n| (p, n)))
        .map_err(|why| (why, "install it, or "))
        .and_then(|t| host.tun.clone().map(|()| t).map_err(|why| (why, "or ")));
    let (pasta_path, nft_path) = match tools {
        Ok(t) => t,
        Err((why, fix)) => {
            if compat == Compat::BestEffort {
                return Planned {
                    mode: Network::None,
                    dropped: vec![format!(
                        "{mode_key}: user: {why}; the sandbox has loopback only"
                    )],
                    ..none
                };
            }
            d.push(
                mode_key,
                format!("{why}; {fix}set `network.compat: best-effort` to run with loopback only"),
            );
            return none;
        }
    };
    let userns = namespaces.contains(&Namespace::User);
    let pasta = Pasta {
        args: pasta_args(caller.is_root(), userns, &ports, &host_loopback, &dns),
        program: pasta_path,
        userns,
    };
    let (resolvers, forwarder) = match &dns.value {
        Resolvers::Host => (vec![IpAddr::V4(DNS_FORWARDER)], true),
        Resolvers::None => (Vec::new(), false),
        Resolvers::Servers(s) => (s.clone(), false),
    };
    let egress = Egress {
        dns: allow
            .as_ref()
            .is_none_or(|a| a.iter().any(|e| e.value == Allow::Dns)),
        allow,
        resolvers,
        forwarder,
    };
    let files = files(&dns, host, hostname, &here);
    Planned {
        mode,
        user: Some(UserNet {
            pasta: Keyed::new(pasta, mode_key.clone()),
            nft: Keyed::new(nft_path, mode_key),
            egress,
            dns,
            ports,
            host_loopback,
            origin: Origins::default(),
        }),
        dropped: Vec::new(),
        files,
    }
}

/// pasta's arguments: the sandbox's namespaces as inherited descriptors, readiness on a pipe,
/// and nothing of the host mapped but what the policy publishes or opens.
fn pasta_args(
    root: bool,
    userns: bool,
    ports: &[Keyed<Published>],
    host_loopback: &[Keyed<HostPort>],
    dns: &Keyed<Resolvers>,
) -> Vec<String> {
    let mut a: Vec<String> = [
        "--foreground",
        "--quiet",
        "--config-net",
        "--netns",
        &format!("/proc/self/fd/{FD_NETNS}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if userns {
        a.push("--userns".into());
        a.push(format!("/proc/self/fd/{FD_USERNS}"));
    }
    if root {
        // Otherwise pasta changes to nobody, who can't enter a root-owned namespace.
        a.push("--runas".into());
        a.push("0".into());
    }
    a.push("--pid".into());
    a.push(format!("/proc/self/fd/{FD_READY}"));
    // The gateway address is the real gateway, not the host; no DHCP, DHCPv6 or router
    // advertisements (the addresses and routes are set by pasta directly).
    for flag in ["--no-map-gw", "--no-dhcp", "--no-dhcpv6", "--no-ra"] {
        a.push(flag.into());
    }
    for (flag, proto) in [("--tcp-ports", Proto::Tcp), ("--udp-ports", Proto::Udp)] {
        let specs: Vec<String> = ports
            .iter()
            .filter(|p| p.proto == proto)
            .map(|p| match p.addr {
                None => format!("{}:{}", p.host, p.sandbox),
                Some(addr) => format!("{addr}/{}:{}", p.host, p.sandbox),
            })
            .collect();
        if specs.is_empty() {
            a.push(flag.into());
            a.push("none".into());
        }
        for s in specs {
            a.push(flag.into());
            a.push(s);
        }
    }
    for (flag, proto) in [("--tcp-ns", Proto::Tcp), ("--udp-ns", Proto::Udp)] {
        let list: Vec<String> = host_loopback
            .iter()
            .filter(|p| p.proto == proto)
            .map(|p| p.port.to_string())
            .collect();
        a.push(flag.into());
        a.push(if list.is_empty() {
            "none".into()
        } else {
            list.join(",")
        });
    }
    if dns.value == Resolvers::Host {
        a.push("--dns-forward".into());
        a.push(DNS_FORWARDER.to_string());
    }
    a
}

fn plan_dns(spec: Option<&model::Dns>, key: &KeyPath, d: &mut Diags) -> Keyed<Resolvers> {
    let r = match spec {
        None | Some(model::Dns::Word(model::DnsWord::Host)) => Resolvers::Host,
        Some(model::Dns::Word(model::DnsWord::None)) => Resolvers::None,
        Some(model::Dns::Servers(list)) => {
            let mut out = Vec::new();
            for (i, s) in list.iter().enumerate() {
                match s.parse::<IpAddr>() {
                    Ok(a) => out.push(a),
                    Err(_) => d.push(
                        key.index(i),
                        format!("`{s}` is not an IPv4 or IPv6 address"),
                    ),
                }
            }
            if list.is_empty() {
                d.push(
                    key.clone(),
                    "an empty list: write `none` for no resolver, `host` for the host's",
                );
            }
            Resolvers::Servers(out)
        }
    };
    Keyed::new(r, key.clone())
}

fn plan_allow(
    spec: Option<&[String]>,
    key: &KeyPath,
    dns: &Keyed<Resolvers>,
    d: &mut Diags,
) -> Option<Keyed<Vec<Keyed<Allow>>>> {
    let list = spec?;
    let mut out = Vec::new();
    for (i, text) in list.iter().enumerate() {
        match Allow::parse(text.trim()) {
            Ok(Allow::Dns) if dns.value == Resolvers::None => d.push(
                key.index(i),
                "`dns`, but `network.dns` is `none`: there is no resolver to allow",
            ),
            Ok(a) => out.push(Keyed::new(a, key.index(i))),
            Err(e) => d.push(key.index(i), e),
        }
    }
    Some(Keyed::new(out, key.clone()))
}

/// `[ADDR:]PORT`, `[V6ADDR]:PORT`.
fn parse_host_port(text: &str) -> Result<(Option<IpAddr>, u16), String> {
    let port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{p}` is not a port (1-65535)")),
    };
    if let Some(inner) = text.strip_prefix('[') {
        let (a, p) = inner
            .split_once("]:")
            .ok_or_else(|| format!("`{text}`: write [IPV6]:PORT"))?;
        let addr = a
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("`{a}` is not an IPv6 address"))?;
        return Ok((Some(IpAddr::V6(addr)), port(p)?));
    }
    match text.rsplit_once(':') {
        None => Ok((None, port(text)?)),
        Some((a, p)) => {
            let addr = a.parse::<std::net::Ipv4Addr>().map_err(|_| {
                format!("`{a}` is not an IPv4 address (write an IPv6 one as [ADDR]:PORT)")
            })?;
            Ok((Some(IpAddr::V4(addr)), port(p)?))
        }
    }
}

fn plan_ports(
    spec: &[model::PublishedPort],
    key: &KeyPath,
    caller: &Caller,
    host: &Host<'_>,
    d: &mut Diags,
) -> Vec<Keyed<Published>> {
    let mut out: Vec<Keyed<Published>> = Vec::new();
    for (i, p) in spec.iter().enumerate() {
        let at = key.index(i);
        let Some(text) = &p.host else {
            d.push(at.key("host"), "required: the host's [ADDR:]PORT");
            continue;
        };
        let (addr, host_port) = match parse_host_port(text.0.trim()) {
            Ok(v) => v,
            Err(e) => {
                d.push(at.key("host"), e);
                continue;
            }
        };
        // Only where asked: the host's loopback unless an address is given; 0.0.0.0 or [::]
        // for every address.
        let addr = match addr {
            None => Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            Some(a) if a.is_unspecified() => None,
            a => a,
        };
        let sandbox = p.sandbox.unwrap_or(host_port);
        if sandbox == 0 {
            d.push(at.key("sandbox"), "`0` is not a port (1-65535)");
            continue;
        }
        let proto = p.proto.map_or(Proto::Tcp, Proto::from);
        if proto == Proto::Udp && sandbox != host_port {
            // Debian's pasta (2023-03) drops the replies of UDP forwarded to another port.
            d.push(
                at.key("sandbox"),
                format!(
                    "a UDP port is published under its own number only (host {host_port}, \
                     sandbox {sandbox}): pasta drops the replies otherwise"
                ),
            );
            continue;
        }
        if !caller.is_root() && host_port < host.unprivileged_port_start {
            d.push(
                at.key("host"),
                format!(
                    "port {host_port} is below {} (net.ipv4.ip_unprivileged_port_start): only \
                     root may bind it on the host",
                    host.unprivileged_port_start
                ),
            );
            continue;
        }
        let clash = out.iter().any(|o| {
            o.proto == proto
                && o.host == host_port
                && (o.addr.is_none() || addr.is_none() || o.addr == addr)
        });
        if clash {
            d.push(
                at.key("host"),
                format!("port {host_port} ({}) is published twice", proto.name()),
            );
            continue;
        }
        out.push(Keyed::new(
            Published {
                addr,
                host: host_port,
                sandbox,
                proto,
            },
            at,
        ));
    }
    out
}

fn plan_host_loopback(
    spec: &[model::PortSpec],
    key: &KeyPath,
    d: &mut Diags,
) -> Vec<Keyed<HostPort>> {
    let mut out: Vec<Keyed<HostPort>> = Vec::new();
    for (i, p) in spec.iter().enumerate() {
        let text = p.0.trim();
        let (port, proto) = match text.rsplit_once('/') {
            Some((port, "udp")) => (port, Proto::Udp),
            Some((port, "tcp")) => (port, Proto::Tcp),
            Some((_, other)) => {
                let mut msg = format!("`{other}` is not a protocol (tcp, udp)");
                if let Some(best) = suggest(other, ["tcp", "udp"]) {
                    msg.push_str(&format!(" (did you mean `{best}`?)"));
                }
                d.push(key.index(i), msg);
                continue;
            }
            None => (text, Proto::Tcp),
        };
        match port.parse::<u16>() {
            Ok(n) if n > 0 => {
                let hp = HostPort { port: n, proto };
                if !out.iter().any(|o| o.value == hp) {
                    out.push(Keyed::new(hp, key.index(i)));
                }
            }
            _ => d.push(key.index(i), format!("`{port}` is not a port (1-65535)")),
        }
    }
    out
}

/// `/etc/resolv.conf` (the resolvers, and the host's `search`, `domain` and `options` lines)
/// and `/etc/hosts` (localhost, and the host name).
fn files(
    dns: &Keyed<Resolvers>,
    host: &Host<'_>,
    hostname: Option<&str>,
    here: &KeyPath,
) -> Vec<MountPlan> {
    let mut resolv = String::from("# kekkai: network.dns\n");
    match &dns.value {
        Resolvers::Host => resolv.push_str(&format!("nameserver {DNS_FORWARDER}\n")),
        Resolvers::None => {}
        Resolvers::Servers(s) => {
            for a in s {
                resolv.push_str(&format!("nameserver {a}\n"));
            }
        }
    }
    if dns.value != Resolvers::None {
        for line in host.resolv_conf.lines() {
            let word = line.split_whitespace().next().unwrap_or_default();
            let printable = line.chars().all(|c| c == '\t' || (' '..='~').contains(&c));
            if matches!(word, "search" | "domain" | "options") && printable {
                resolv.push_str(line);
                resolv.push('\n');
            }
        }
    }
    let mut hosts =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some(h) = hostname {
        hosts.push_str(&format!("127.0.1.1\t{h}\n"));
    }
    let file = |target: &str, contents: String, key: KeyPath| MountPlan {
        origin: String::new(),
        target: PathBuf::from(target),
        kind: MountKind::File { contents },
        protocol: false,
        key,
    };
    vec![
        file("/etc/resolv.conf", resolv, dns.key.clone()),
        file("/etc/hosts", hosts, here.key("mode")),
    ]
}

#[cfg(test)]
mod tests;
