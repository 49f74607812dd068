//! The egress rules of `network: user`: what the sandbox may send out through pasta, as typed
//! rules with their key paths, and the nftables ruleset that enforces them inside the
//! sandbox's own network namespace.
//!
//! Two shapes. Without `network.allow` the egress is open, except what is never the sandbox's
//! business: the host's own addresses (a host service bound to 0.0.0.0 would be reachable
//! through any of them that pasta did not copy into the sandbox), link-local (the cloud
//! metadata address 169.254.169.254 among them), multicast and the reserved ranges. With
//! `network.allow`, only what it lists is reachable; the special ranges (private, link-local,
//! the host's own addresses, ...) only through an entry that lies inside them. Refused traffic
//! is rejected with ICMP "administratively prohibited", so the program learns at once:
//! `EHOSTUNREACH` for TCP over IPv4, `EACCES` for TCP over IPv6, `EPERM` for UDP.
//!
//! UDP leaves from a random port of the host's ephemeral range ([`SourcePorts`]: source NAT in
//! the same table), since pasta binds the host's port of each datagram's source port.
//!
//! The ruleset is nft's text, built here only from parsed values (addresses, prefixes, port
//! numbers, two protocol words): no text from the policy reaches it, and `explain` shows what
//! `nft` reads.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Proto;
use crate::plan::Keyed;
use crate::policy::KeyPath;

/// pasta's DNS forwarder inside the sandbox: UDP to this address's port 53 goes to the host's
/// first resolver. A link-local address on no host interface.
pub const DNS_FORWARDER: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// An address and a prefix length, host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IpNet {
    /// The network address.
    pub addr: IpAddr,
    /// The prefix length (0..=32 for IPv4, 0..=128 for IPv6).
    pub prefix: u8,
}

impl IpNet {
    /// `ADDR` (a host) or `ADDR/PREFIX`; host bits must be zero.
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let (a, p) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{a}` is not an IPv4 or IPv6 address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("`/{p}`: the prefix length is 0 to {max}")),
            },
        };
        let net = IpNet { addr, prefix };
        let masked = net.masked();
        if masked.addr != addr {
            return Err(format!(
                "`{text}` has host bits set: write `{masked}` for the network, or the address alone"
            ));
        }
        Ok(net)
    }

    /// A single address.
    pub fn host(addr: IpAddr) -> IpNet {
        IpNet {
            addr,
            prefix: if addr.is_ipv4() { 32 } else { 128 },
        }
    }

    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> IpNet {
        IpNet {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    const fn v6(segs: [u16; 8], prefix: u8) -> IpNet {
        IpNet {
            addr: IpAddr::V6(Ipv6Addr::new(
                segs[0], segs[1], segs[2], segs[3], segs[4], segs[5], segs[6], segs[7],
            )),
            prefix,
        }
    }

    /// With the host bits cleared.
    fn masked(self) -> IpNet {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        IpNet {
            addr,
            prefix: self.prefix,
        }
    }

    /// Does this network hold all of `other`?
    pub fn contains(&self, other: &IpNet) -> bool {
        self.addr.is_ipv4() == other.addr.is_ipv4()
            && other.prefix >= self.prefix
            && IpNet {
                addr: other.addr,
                prefix: self.prefix,
            }
            .masked()
            .addr
                == self.addr
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Where an allow entry leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Target {
    /// Every address, IPv4 and IPv6 (`any`).
    Any,
    /// One network.
    Net(IpNet),
}

impl Target {
    /// The networks it stands for.
    fn nets(&self) -> Vec<IpNet> {
        match self {
            Target::Any => vec![IpNet::v4(0, 0, 0, 0, 0), IpNet::v6([0; 8], 0)],
            Target::Net(n) => vec![*n],
        }
    }
}

/// One entry of `network.allow`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Allow {
    /// The resolvers of `network.dns`, port 53.
    Dns,
    /// Destinations.
    Dest {
        /// Where.
        target: Target,
        /// First and last port.
        ports: (u16, u16),
        /// Which protocols.
        protos: Vec<Proto>,
    },
}

impl Allow {
    /// Parses `dns`, `any[:PORTS]`, `ADDR[/PREFIX][:PORTS]`, `[V6ADDR[/PREFIX]][:PORTS]` (a
    /// bare IPv6 network needs no brackets when no port follows), each with an optional
    /// `/tcp` or `/udp`. Without ports: every port, TCP and UDP; with ports: TCP unless `/udp`.
    pub fn parse(text: &str) -> Result<Allow, String> {
        let usage = "write `dns`, `any:PORT`, `ADDR[/PREFIX][:PORT[-PORT]][/udp]` or \
                     `[IPV6[/PREFIX]]:PORT`";
        if text == "dns" {
            return Ok(Allow::Dns);
        }
        let (rest, proto) = match text.rsplit_once('/') {
            Some((rest, "tcp")) => (rest, Some(Proto::Tcp)),
            Some((rest, "udp")) => (rest, Some(Proto::Udp)),
            _ => (text, None),
        };
        let (net, ports) = if let Some(inner) = rest.strip_prefix('[') {
            let (net, after) = inner
                .split_once(']')
                .ok_or_else(|| format!("`{text}`: `[` without `]`; {usage}"))?;
            match after {
                "" => (net, None),
                _ => match after.strip_prefix(':') {
                    Some(p) => (net, Some(p)),
                    None => return Err(format!("`{text}`: {usage}")),
                },
            }
        } else if rest.matches(':').count() > 1 {
            (rest, None)
        } else {
            match rest.split_once(':') {
                Some((n, p)) => (n, Some(p)),
                None => (rest, None),
            }
        };
        let target = if net == "any" {
            Target::Any
        } else {
            Target::Net(IpNet::parse(net).map_err(|e| format!("{e}; {usage}"))?)
        };
        let ports = match ports {
            None => None,
            Some(p) => Some(parse_ports(p)?),
        };
        let protos = match (proto, ports) {
            (Some(p), _) => vec![p],
            (None, Some(_)) => vec![Proto::Tcp],
            (None, None) => vec![Proto::Tcp, Proto::Udp],
        };
        Ok(Allow::Dest {
            target,
            ports: ports.unwrap_or((0, u16::MAX)),
            protos,
        })
    }
}

impl fmt::Display for Allow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Allow::Dns => f.write_str("dns"),
            Allow::Dest {
                target,
                ports,
                protos,
            } => {
                match target {
                    Target::Any => f.write_str("any")?,
                    Target::Net(n) => write!(f, "{n}")?,
                }
                let names: Vec<&str> = protos.iter().map(|p| p.name()).collect();
                write!(f, " {}", names.join("+"))?;
                match ports {
                    (0, u16::MAX) => f.write_str(" every port"),
                    (a, b) if a == b => write!(f, " port {a}"),
                    (a, b) => write!(f, " ports {a}-{b}"),
                }
            }
        }
    }
}

/// `N` or `N-M`, 1 to 65535.
fn parse_ports(text: &str) -> Result<(u16, u16), String> {
    let port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{p}` is not a port (1-65535)")),
    };
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if a > b {
                return Err(format!("`{text}`: the range is backwards"));
            }
            Ok((a, b))
        }
        None => port(text).map(|p| (p, p)),
    }
}

/// A range a sandbox reaches only through an allow entry inside it (with an allowlist), and
/// why.
pub struct Special {
    /// The range.
    pub net: IpNet,
    /// What it is.
    pub what: &'static str,
    /// Refused even without an allowlist.
    pub always: bool,
}

/// The special ranges (IANA's special-purpose registries, the parts that matter here).
pub const SPECIAL: &[Special] = &[
    Special {
        net: IpNet::v4(0, 0, 0, 0, 8),
        what: "\"this network\"",
        always: true,
    },
    Special {
        net: IpNet::v4(10, 0, 0, 0, 8),
        what: "private",
        always: false,
    },
    Special {
        net: IpNet::v4(100, 64, 0, 0, 10),
        what: "carrier-grade NAT",
        always: false,
    },
    Special {
        net: IpNet::v4(127, 0, 0, 0, 8),
        what: "loopback",
        always: false,
    },
    Special {
        net: IpNet::v4(169, 254, 0, 0, 16),
        what: "link-local (the cloud metadata address 169.254.169.254)",
        always: true,
    },
    Special {
        net: IpNet::v4(172, 16, 0, 0, 12),
        what: "private",
        always: false,
    },
    Special {
        net: IpNet::v4(192, 0, 0, 0, 24),
        what: "IETF protocol assignments",
        always: false,
    },
    Special {
        net: IpNet::v4(192, 168, 0, 0, 16),
        what: "private",
        always: false,
    },
    Special {
        net: IpNet::v4(198, 18, 0, 0, 15),
        what: "benchmarking",
        always: false,
    },
    Special {
        net: IpNet::v4(224, 0, 0, 0, 4),
        what: "multicast",
        always: true,
    },
    Special {
        net: IpNet::v4(240, 0, 0, 0, 4),
        what: "reserved and broadcast",
        always: true,
    },
    Special {
        net: IpNet::v6([0; 8], 127),
        what: "unspecified and loopback",
        always: false,
    },
    Special {
        net: IpNet::v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96),
        what: "NAT64 (IPv4 behind it)",
        always: false,
    },
    Special {
        net: IpNet::v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        what: "local NAT64",
        always: false,
    },
    Special {
        net: IpNet::v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        what: "discard",
        always: false,
    },
    Special {
        net: IpNet::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        what: "unique local (private)",
        always: false,
    },
    Special {
        net: IpNet::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        what: "link-local",
        always: true,
    },
    Special {
        net: IpNet::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
        what: "multicast",
        always: true,
    },
];

/// The egress rules.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Egress {
    /// `network.allow`'s entries; `None`: no allowlist (open egress but for what
    /// [`SPECIAL`] marks `always` and the host's own addresses).
    pub allow: Option<Keyed<Vec<Keyed<Allow>>>>,
    /// The resolvers port 53 may reach when DNS is allowed (the forwarder: UDP only).
    pub resolvers: Vec<IpAddr>,
    /// The resolvers are pasta's forwarder (UDP only in Debian's pasta).
    pub forwarder: bool,
    /// DNS is allowed (open egress, or `dns` in the allowlist).
    pub dns: bool,
}

/// The sets of the host's own addresses in the sandbox's table (`inet kekkai`), IPv4 and IPv6:
/// where the supervisor adds an address the host gains while the sandbox runs.
pub const HOST_SETS: (&str, &str) = ("host4", "host6");

/// nft's `reject` for everything refused: ICMP "administratively prohibited".
const REJECT: &str = "reject with icmpx admin-prohibited";

/// The source ports of the sandbox's UDP, as pasta sees them. pasta (Debian's, 2023-03) sends a
/// datagram from a host socket bound to the sandbox's own source port on every address of the
/// host (`0.0.0.0`, `[::]`; 127.0.0.1 through `network.host-loopback`), with SO_REUSEADDR, and
/// passes the sandbox whatever that socket receives: a program that sends from the port a host
/// service listens on (one bound with SO_REUSEADDR, which then loses its datagrams to the
/// socket bound last; or one not started yet) would receive what the host's programs send to
/// that service, over its loopback too. The sandbox's UDP is therefore given a random source
/// port of the host's ephemeral range (the ports the host's kernel hands its own clients, where
/// no service listens) by source NAT in the sandbox's namespace, before pasta sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePorts {
    /// The host's ephemeral range (`net.ipv4.ip_local_port_range`, read at launch).
    pub range: (u16, u16),
    /// The UDP ports of `network.host-loopback`: pasta's sockets on the sandbox's loopback,
    /// whose datagrams pasta sends from the host's 127.0.0.1 (or ::1) and the same source port.
    pub loopback_udp: Vec<u16>,
}

impl Egress {
    /// Every port named by a TCP allow entry, with 53 when DNS over TCP is allowed; `None`
    /// when an entry allows every TCP port (or a range wider than `max`), or without an
    /// allowlist.
    pub fn tcp_ports(&self, max: usize) -> Option<Vec<u16>> {
        let allow = self.allow.as_ref()?;
        let mut out: Vec<u16> = Vec::new();
        for a in allow.iter() {
            match &a.value {
                Allow::Dns => {
                    if !self.forwarder && !self.resolvers.is_empty() {
                        out.push(53);
                    }
                }
                Allow::Dest { ports, protos, .. } => {
                    if !protos.contains(&Proto::Tcp) {
                        continue;
                    }
                    let n = usize::from(ports.1 - ports.0) + 1;
                    if *ports == (0, u16::MAX) || out.len() + n > max {
                        return None;
                    }
                    out.extend(ports.0..=ports.1);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Some(out)
    }

    /// What `explain` and the run report say, a line each.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let dns = match (self.dns, self.forwarder, self.resolvers.is_empty()) {
            (false, _, _) | (_, _, true) => None,
            (true, true, false) => Some(format!(
                "udp {DNS_FORWARDER} port 53 (pasta's forwarder to the host's resolver)"
            )),
            (true, false, false) => {
                let r: Vec<String> = self.resolvers.iter().map(|a| a.to_string()).collect();
                Some(format!("tcp+udp {} port 53", r.join(" ")))
            }
        };
        let always: Vec<String> = SPECIAL
            .iter()
            .filter(|s| s.always)
            .map(|s| format!("{} {}", s.net, s.what))
            .collect();
        match &self.allow {
            None => {
                out.push("open: every destination but those refused below".into());
                if let Some(d) = dns {
                    out.push(format!("allowed: DNS, {d}"));
                }
                out.push(
                    "refused: the host's own addresses (at launch, and those it gains later), \
                     except through `network.host-loopback`"
                        .into(),
                );
                out.push(format!("refused: {}", always.join(", ")));
            }
            Some(list) => {
                for a in list.iter() {
                    match (&a.value, &dns) {
                        (Allow::Dns, Some(d)) => out.push(format!("{}: DNS, {d}", a.key)),
                        (Allow::Dns, None) => {
                            out.push(format!("{}: DNS (no resolver: network.dns is none)", a.key))
                        }
                        (v, _) => out.push(format!("{}: {v}", a.key)),
                    }
                }
                let special: Vec<String> = SPECIAL
                    .iter()
                    .map(|s| format!("{} {}", s.net, s.what))
                    .collect();
                out.push(
                    "refused unless an entry names them: the host's own addresses (at launch, \
                     and those it gains later)"
                        .into(),
                );
                out.push(format!(
                    "refused unless an entry lies inside: {}",
                    special.join(", ")
                ));
                out.push("refused: everything else".into());
            }
        }
        out.push(
            "UDP leaves from a random port of the host's ephemeral range (source NAT): pasta \
             never binds a host port the program chose"
                .into(),
        );
        out.push(
            "refused traffic gets ICMP admin-prohibited: TCP fails with EHOSTUNREACH (IPv4) or \
             EACCES (IPv6), UDP with EPERM; a TCP port outside the allowlist is refused first \
             by Landlock (EACCES) where the kernel has ABI 4"
                .into(),
        );
        out
    }

    /// The nftables ruleset (`nft -f -`) for a host whose own addresses are `host`, UDP's
    /// source ports rewritten as `ports` says. Loaded in the sandbox's network namespace before
    /// the program starts.
    pub fn nft(&self, host: &[IpAddr], ports: &SourcePorts) -> String {
        let mut r = Ruleset::default();
        let (low, high) = ports.range;
        r.nat.push(format!(
            "oif != \"lo\" meta l4proto udp masquerade to :{low}-{high} random"
        ));
        if !ports.loopback_udp.is_empty() {
            // On the loopback, the address given: masquerade finds no IPv4 address there (host
            // scope) and drops the datagram.
            let list: Vec<String> = ports.loopback_udp.iter().map(u16::to_string).collect();
            let list = list.join(", ");
            for (fam, daddr, to) in [("ip", "127.0.0.1", "127.0.0.1"), ("ip6", "::1", "[::1]")] {
                r.nat.push(format!(
                    "oif \"lo\" {fam} daddr {daddr} udp dport {{ {list} }} snat {fam} to \
                     {to}:{low}-{high} random"
                ));
            }
        }
        r.line("oif \"lo\" accept");
        r.line("ct state established,related accept");
        // IPv6 needs neighbour discovery to reach pasta's side of the link.
        r.line("icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit } accept");
        if self.dns {
            for a in &self.resolvers {
                let family = family(a);
                if self.forwarder {
                    r.line(&format!("{family} daddr {a} udp dport 53 accept"));
                } else {
                    r.line(&format!(
                        "{family} daddr {a} meta l4proto {{ tcp, udp }} th dport 53 accept"
                    ));
                }
            }
        }
        let host_nets: Vec<IpNet> = host.iter().map(|a| IpNet::host(*a)).collect();
        match &self.allow {
            None => {
                let refused: Vec<IpNet> =
                    SPECIAL.iter().filter(|s| s.always).map(|s| s.net).collect();
                r.refuse("host", &host_nets);
                r.refuse("refused", &refused);
                r.line("accept");
            }
            Some(list) => {
                let special: Vec<IpNet> = SPECIAL.iter().map(|s| s.net).collect();
                // The host's own addresses first: only an entry naming one of them (or a part
                // of one) opens it, never a wider range around it (`172.16.0.0/12` does not
                // open the host's 172.17.0.1). Then an entry inside a special range opens that
                // part of it; the other entries come after the refusals.
                let (mut host_entries, mut inside, mut outside) =
                    (Vec::new(), Vec::new(), Vec::new());
                for a in list.iter() {
                    let Allow::Dest {
                        target,
                        ports,
                        protos,
                    } = &a.value
                    else {
                        continue;
                    };
                    for net in target.nets() {
                        let rule = accept(&net, protos, *ports);
                        if host_nets.iter().any(|h| h.contains(&net)) {
                            host_entries.push(rule);
                        } else if special.iter().any(|r| r.contains(&net)) {
                            inside.push(rule);
                        } else {
                            outside.push(rule);
                        }
                    }
                }
                for rule in host_entries {
                    r.line(&rule);
                }
                r.refuse("host", &host_nets);
                for rule in inside {
                    r.line(&rule);
                }
                r.refuse("refused", &special);
                for rule in outside {
                    r.line(&rule);
                }
                r.line(REJECT);
            }
        }
        r.text()
    }
}

/// `ip` or `ip6`.
fn family(a: &IpAddr) -> &'static str {
    if a.is_ipv4() { "ip" } else { "ip6" }
}

/// The rule that accepts one network's protocols and ports.
fn accept(net: &IpNet, protos: &[Proto], ports: (u16, u16)) -> String {
    let protos: Vec<&str> = protos.iter().map(|p| p.name()).collect();
    let protos = match protos.as_slice() {
        [one] => (*one).to_owned(),
        many => format!("{{ {} }}", many.join(", ")),
    };
    let ports = match ports {
        (0, u16::MAX) => String::new(),
        (a, b) if a == b => format!(" th dport {a}"),
        (a, b) => format!(" th dport {a}-{b}"),
    };
    format!(
        "{} daddr {net} meta l4proto {protos}{ports} accept",
        family(&net.addr)
    )
}

/// A ruleset being written: sets, the output chain's rules in order, and the source NAT
/// chain's.
#[derive(Default)]
struct Ruleset {
    sets: Vec<String>,
    rules: Vec<String>,
    nat: Vec<String>,
}

impl Ruleset {
    fn line(&mut self, rule: &str) {
        self.rules.push(rule.to_owned());
    }

    /// `NAME4` and `NAME6`, address sets (intervals; overlaps merge), and the rules that
    /// reject what goes to them.
    fn refuse(&mut self, name: &str, nets: &[IpNet]) {
        for (v4, suffix, ty, fam) in [
            (true, "4", "ipv4_addr", "ip"),
            (false, "6", "ipv6_addr", "ip6"),
        ] {
            let elems: Vec<String> = nets
                .iter()
                .filter(|n| n.addr.is_ipv4() == v4)
                .map(|n| n.to_string())
                .collect();
            // The host's sets exist even empty: the supervisor adds the addresses the host
            // gains while the sandbox runs ([`HOST_SETS`]).
            if elems.is_empty() && name != "host" {
                continue;
            }
            let elements = if elems.is_empty() {
                String::new()
            } else {
                format!(" elements = {{ {} }}", elems.join(", "))
            };
            self.sets.push(format!(
                "  set {name}{suffix} {{ type {ty}; flags interval; auto-merge;{elements} }}"
            ));
            self.rules
                .push(format!("{fam} daddr @{name}{suffix} {REJECT}"));
        }
    }

    fn text(self) -> String {
        let mut out = String::from("table inet kekkai {\n");
        for s in &self.sets {
            out.push_str(s);
            out.push('\n');
        }
        out.push_str("  chain output {\n    type filter hook output priority 0; policy drop;\n");
        for r in &self.rules {
            out.push_str("    ");
            out.push_str(r);
            out.push('\n');
        }
        out.push_str("  }\n");
        if !self.nat.is_empty() {
            out.push_str(
                "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy \
                 accept;\n",
            );
            for r in &self.nat {
                out.push_str("    ");
                out.push_str(r);
                out.push('\n');
            }
            out.push_str("  }\n");
        }
        out.push_str("}\n");
        out
    }
}

/// The egress plan's key for `explain` (the allowlist's, or the mode's).
pub fn key(e: &Egress, mode: &KeyPath) -> KeyPath {
    e.allow
        .as_ref()
        .map_or_else(|| mode.clone(), |a| a.key.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("dns", "dns")]
    #[case("any:443", "any tcp port 443")]
    #[case("198.51.100.0/24:443", "198.51.100.0/24 tcp port 443")]
    #[case("198.51.100.7", "198.51.100.7/32 tcp+udp every port")]
    #[case("203.0.113.7:53/udp", "203.0.113.7/32 udp port 53")]
    #[case("10.0.0.0/8:8000-8080", "10.0.0.0/8 tcp ports 8000-8080")]
    #[case("[2001:db8::/32]:443", "2001:db8::/32 tcp port 443")]
    #[case("2001:db8::/32", "2001:db8::/32 tcp+udp every port")]
    #[case("[2001:db8::1]:53/udp", "2001:db8::1/128 udp port 53")]
    #[case("10.0.0.0/8/udp", "10.0.0.0/8 udp every port")]
    fn allow_entries_parse(#[case] text: &str, #[case] shown: &str) {
        assert_eq!(Allow::parse(text).unwrap().to_string(), shown);
    }

    #[rstest]
    #[case("198.51.100.1/24:443", "host bits set: write `198.51.100.0/24`")]
    #[case("example.com:443", "not an IPv4 or IPv6 address")]
    #[case("10.0.0.0/33", "prefix length is 0 to 32")]
    #[case("10.0.0.1:0", "not a port")]
    #[case("10.0.0.1:70000", "not a port")]
    #[case("10.0.0.1:90-80", "backwards")]
    #[case("[2001:db8::1:443", "without `]`")]
    #[case("[2001:db8::1]443", "write `dns`")]
    #[case("DNS", "not an IPv4 or IPv6 address")]
    fn bad_allow_entries_say_why(#[case] text: &str, #[case] why: &str) {
        let e = Allow::parse(text).unwrap_err();
        assert!(e.contains(why), "{e}");
    }

    #[rstest]
    #[case("10.0.0.0/8", "10.1.2.0/24", true)]
    #[case("10.0.0.0/8", "10.0.0.0/8", true)]
    #[case("10.0.0.0/8", "0.0.0.0/0", false)]
    #[case("10.0.0.0/8", "11.0.0.0/8", false)]
    #[case("fc00::/7", "fd6b:6b6b::/64", true)]
    #[case("fc00::/7", "10.0.0.0/8", false)]
    fn containment(#[case] outer: &str, #[case] inner: &str, #[case] want: bool) {
        let (o, i) = (IpNet::parse(outer).unwrap(), IpNet::parse(inner).unwrap());
        assert_eq!(o.contains(&i), want);
    }

    fn egress(allow: Option<&[&str]>) -> Egress {
        Egress {
            allow: allow.map(|a| {
                Keyed::new(
                    a.iter()
                        .enumerate()
                        .map(|(i, t)| {
                            Keyed::new(
                                Allow::parse(t).unwrap(),
                                KeyPath::root().key("network").key("allow").index(i),
                            )
                        })
                        .collect(),
                    KeyPath::root().key("network").key("allow"),
                )
            }),
            resolvers: vec![IpAddr::V4(DNS_FORWARDER)],
            forwarder: true,
            dns: true,
        }
    }

    fn ports() -> SourcePorts {
        SourcePorts {
            range: (32768, 60999),
            loopback_udp: Vec::new(),
        }
    }

    /// Every UDP datagram leaving through pasta gets a random port of the host's ephemeral
    /// range (so pasta never binds a port the program chose on the host), and so does UDP to
    /// pasta's `host-loopback` sockets on the sandbox's loopback; the rest of the loopback
    /// (the program talking to itself) and TCP (pasta connects from a port of its own) keep
    /// theirs.
    #[rstest]
    #[case::no_loopback_ports(
        (32768, 60999),
        &[],
        &["oif != \"lo\" meta l4proto udp masquerade to :32768-60999 random"]
    )]
    #[case::loopback_ports(
        (40000, 50000),
        &[53, 5353],
        &[
            "oif != \"lo\" meta l4proto udp masquerade to :40000-50000 random",
            "oif \"lo\" ip daddr 127.0.0.1 udp dport { 53, 5353 } snat ip to \
             127.0.0.1:40000-50000 random",
            "oif \"lo\" ip6 daddr ::1 udp dport { 53, 5353 } snat ip6 to [::1]:40000-50000 random",
        ]
    )]
    fn udp_leaves_from_a_random_ephemeral_port(
        #[case] range: (u16, u16),
        #[case] loopback_udp: &[u16],
        #[case] want: &[&str],
    ) {
        let ports = SourcePorts {
            range,
            loopback_udp: loopback_udp.to_vec(),
        };
        for allow in [None, Some(&["any:443"][..])] {
            let text = egress(allow).nft(&[], &ports);
            let chain = text
                .split("chain postrouting {")
                .nth(1)
                .expect("a postrouting chain");
            let rules: Vec<&str> = chain
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('}') && !l.starts_with("type "))
                .collect();
            assert_eq!(rules, want, "{text}");
            assert!(
                chain.contains("type nat hook postrouting priority srcnat; policy accept;"),
                "{text}"
            );
        }
    }

    /// Without an allowlist: the host's addresses, link-local and multicast are refused, the
    /// forwarder's UDP port 53 is let through before them, and the rest is accepted.
    #[test]
    fn open_egress_refuses_the_host_and_link_local() {
        let host: Vec<IpAddr> = vec!["198.18.7.1".parse().unwrap(), "fd00::2".parse().unwrap()];
        let text = egress(None).nft(&host, &ports());
        let rules: Vec<&str> = text.lines().map(str::trim).collect();
        let at = |r: &str| rules.iter().position(|l| *l == r).unwrap();
        let dns = at("ip daddr 169.254.1.1 udp dport 53 accept");
        let refused = at("ip daddr @refused4 reject with icmpx admin-prohibited");
        assert!(dns < refused);
        assert!(at("accept") > refused);
        assert!(at("ip daddr @host4 reject with icmpx admin-prohibited") < at("accept"));
        assert!(text.contains("198.18.7.1/32"), "{text}");
        assert!(text.contains("169.254.0.0/16"), "{text}");
        assert!(text.contains("fd00::2/128"), "{text}");
        assert!(
            !text.contains("10.0.0.0/8"),
            "private ranges stay open: {text}"
        );
    }

    /// With an allowlist: entries inside a refused range come first, the refusals, the other
    /// entries, then everything else is rejected.
    #[test]
    fn an_allowlist_opens_inside_special_ranges_only_when_listed() {
        let host: Vec<IpAddr> = vec!["198.18.7.1".parse().unwrap()];
        let text = egress(Some(&["198.18.7.0/24:8080", "any:443", "dns"])).nft(&host, &ports());
        let rules: Vec<&str> = text.lines().map(str::trim).collect();
        let at = |r: &str| rules.iter().position(|l| *l == r).unwrap();
        let inside = at("ip daddr 198.18.7.0/24 meta l4proto tcp th dport 8080 accept");
        let refused = at("ip daddr @refused4 reject with icmpx admin-prohibited");
        let allow = at("ip daddr 0.0.0.0/0 meta l4proto tcp th dport 443 accept");
        let allow6 = at("ip6 daddr ::/0 meta l4proto tcp th dport 443 accept");
        let last = at("reject with icmpx admin-prohibited");
        assert!(
            inside < refused && refused < allow && allow < last,
            "{text}"
        );
        assert!(allow6 < last, "{text}");
        assert!(
            text.contains("ip daddr 169.254.1.1 udp dport 53 accept"),
            "{text}"
        );
    }

    /// A private range in the allowlist does not open the host's own address inside it; an
    /// entry naming that address does.
    #[test]
    fn a_wide_entry_never_opens_the_host_s_own_address() {
        let host: Vec<IpAddr> = vec!["172.17.0.1".parse().unwrap()];
        let text = egress(Some(&["172.16.0.0/12:443"])).nft(&host, &ports());
        let rules: Vec<&str> = text.lines().map(str::trim).collect();
        let at = |r: &str| rules.iter().position(|l| *l == r).unwrap();
        let host_refused = at("ip daddr @host4 reject with icmpx admin-prohibited");
        assert!(host_refused < at("ip daddr 172.16.0.0/12 meta l4proto tcp th dport 443 accept"));
        let text = egress(Some(&["172.17.0.1:5432"])).nft(&host, &ports());
        let rules: Vec<&str> = text.lines().map(str::trim).collect();
        let at = |r: &str| rules.iter().position(|l| *l == r).unwrap();
        assert!(
            at("ip daddr 172.17.0.1/32 meta l4proto tcp th dport 5432 accept")
                < at("ip daddr @host4 reject with icmpx admin-prohibited")
        );
    }

    /// The host's sets exist even without an address in a family (or at all), so that the
    /// supervisor can add what the host gains while the sandbox runs; the other sets only
    /// with elements.
    #[rstest]
    #[case::open(None)]
    #[case::allowlist(Some(&["any:443"][..]))]
    fn the_host_sets_exist_even_empty(#[case] allow: Option<&[&str]>) {
        let text = egress(allow).nft(&[], &ports());
        for set in [HOST_SETS.0, HOST_SETS.1] {
            assert!(
                text.contains(&format!(
                    "set {set} {{ type ipv{}_addr; flags interval; auto-merge; }}",
                    if set == HOST_SETS.0 { 4 } else { 6 }
                )),
                "{text}"
            );
            assert!(
                text.contains(&format!(
                    "ip{} daddr @{set} reject",
                    if set == HOST_SETS.0 { "" } else { "6" }
                )),
                "{text}"
            );
        }
    }

    #[test]
    fn no_dns_without_dns_in_the_allowlist() {
        let mut e = egress(Some(&["any:443"]));
        e.dns = false;
        assert!(!e.nft(&[], &ports()).contains("dport 53"));
    }

    #[rstest]
    #[case(None, None)]
    #[case(Some(&["any:443", "10.0.0.1:8000-8002"][..]), Some(vec![443, 8000, 8001, 8002]))]
    #[case(Some(&["any:443", "10.0.0.1"][..]), None)]
    #[case(Some(&["any:53/udp", "any:443"][..]), Some(vec![443]))]
    #[case(Some(&["any:1-1000"][..]), None)]
    fn landlock_gets_the_tcp_ports_of_an_allowlist(
        #[case] allow: Option<&[&str]>,
        #[case] want: Option<Vec<u16>>,
    ) {
        assert_eq!(egress(allow).tcp_ports(64), want);
    }
}
