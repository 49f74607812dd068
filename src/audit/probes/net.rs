//! Network probes: the host's loopback listener and abstract socket (the fixtures of the host
//! side), raw and packet sockets, netlink changes, address families a sandbox never needs.

use nix::errno::Errno;

use super::{DENIED, NET_DENIED, Probe, call, read_text};
use crate::audit::{Seen, inside};

probes! {
    // Tried under `network: host` too: there only Landlock (tcp-connect rules, the
    // abstract-unix scope) stands in the way, and a policy that lets them through on purpose
    // says so with `audit.grants`.
    "net.host-loopback-tcp", "net namespace/landlock", NET_DENIED, true, |c| match c.tcp_port {
        Some(port) => match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(_) if c.host_network => Seen::Done(format!("connected to the host's 127.0.0.1:{port} (the policy shares the host network; no Landlock tcp-connect rule stops it)")),
            Ok(_) => Seen::Done(format!("connected to the host's 127.0.0.1:{port}")),
            Err(e) => Seen::Errno(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
        },
        None => Seen::NotApplicable("no host listener".into()),
    };
    "net.host-abstract-socket", "net namespace/landlock", NET_DENIED, true, |c| match &c.abstract_name {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes());
            match addr.and_then(|a| std::os::unix::net::UnixStream::connect_addr(&a)) {
                Ok(_) if c.host_network && !c.abstract_scope => Seen::Done(format!("connected to the host's @{name} (the policy shares the host network without Landlock's abstract-unix scope)")),
                Ok(_) if c.host_network => Seen::Done(format!("connected to the host's @{name} (the kernel did not enforce Landlock's abstract-unix scope)")),
                Ok(_) => Seen::Done(format!("connected to the host's @{name}")),
                Err(e) => Seen::Errno(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
            }
        }
        None => Seen::NotApplicable("no host socket".into()),
    };
    "net.raw-socket", "capabilities", DENIED, true, |_| call("socket", [2, 3 /* SOCK_RAW */, 1 /* ICMP */, 0, 0, 0]);
    "net.packet-socket", "seccomp", DENIED, true, |_| call("socket", [17, 3, 0, 0, 0, 0]);
    // Reading the sandbox's own interfaces over NETLINK_ROUTE is allowed; changing them is not.
    "net.netlink-changes", "capabilities", DENIED, true, |_| inside::netlink_change();
    "net.vsock", "seccomp", DENIED, true, |_| call("socket", [40, 1, 0, 0, 0, 0]);
    "net.alg-socket", "seccomp", DENIED, true, |_| call("socket", [38, 5, 0, 0, 0, 0]);
    "net.bluetooth", "seccomp", &[Errno::EPERM, Errno::EACCES, Errno::EAFNOSUPPORT], true, |_| call("socket", [31, 1, 0, 0, 0, 0]);
    "net.xdp", "seccomp", &[Errno::EPERM, Errno::EACCES, Errno::EAFNOSUPPORT], true, |_| call("socket", [44, 3, 0, 0, 0, 0]);
    // 0.0.0.0/8 is refused by every set of egress rules. On the host, a connect to 0.0.0.1
    // reaches the host itself (never the wire), so without the rules pasta would hand the
    // sandbox the host's listener: EHOSTUNREACH is the rules (Landlock's tcp-connect rules
    // may stop it first: EACCES), ENETUNREACH a sandbox without a route out (`none`), EPERM
    // a seccomp filter that allows no IP socket at all.
    "net.egress-rules", "nftables/net namespace", &[Errno::EHOSTUNREACH, Errno::ENETUNREACH, Errno::EACCES, Errno::EPERM], true, |c| {
        if c.host_network { return Seen::NotApplicable("the policy shares the host network".into()) }
        let Some(port) = c.tcp_port else { return Seen::NotApplicable("no host listener".into()) };
        let addr = std::net::SocketAddr::from(([0, 0, 0, 1], port));
        match std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(10)) {
            Ok(_) => Seen::Done(format!("connected to 0.0.0.1:{port}, the host itself (no egress rule refused it)")),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Seen::Done("the connection to 0.0.0.1 timed out: no egress rule refused it".into()),
            Err(e) => Seen::Errno(Errno::from_raw(e.raw_os_error().unwrap_or(0))),
        }
    };
    "net.interfaces", "net namespace", &[], true, |c| {
        if c.host_network { return Seen::NotApplicable("the policy shares the host network".into()) }
        if c.user_network { return Seen::NotApplicable("network: user: lo and pasta's interface, by design".into()) }
        let names: Vec<String> = read_text("/proc/net/dev").unwrap_or_default().lines().skip(2).filter_map(|l| l.split(':').next()).map(|n| n.trim().to_owned()).collect();
        if names.iter().all(|n| n == "lo") { Seen::Blocked("only lo".into()) } else { Seen::Done(format!("interfaces: {}", names.join(" "))) }
    };
}
