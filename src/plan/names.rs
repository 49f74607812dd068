//! Symbolic names a policy may use: syscalls (x86_64), errno values, socket families, ioctl
//! requests, clone flags and capabilities.

use std::str::FromStr;

/// The x86_64 number of a syscall name.
pub fn syscall_number(name: &str) -> Option<i64> {
    syscalls::x86_64::Sysno::from_str(name)
        .ok()
        .map(|s| i64::from(s.id()))
}

/// All x86_64 syscall names (for suggestions and the BPF test interpreter).
pub fn syscall_names() -> impl Iterator<Item = &'static str> {
    syscalls::x86_64::Sysno::iter().map(|s| s.name())
}

/// The name of an x86_64 syscall number.
pub fn syscall_name(nr: i64) -> Option<&'static str> {
    usize::try_from(nr)
        .ok()
        .and_then(syscalls::x86_64::Sysno::new)
        .map(|s| s.name())
}

/// The number of an errno name (`EPERM`, `eperm`).
pub fn errno_number(name: &str) -> Option<i32> {
    let want = name.to_ascii_uppercase();
    (1..4096).find(|&n| errno_name(n).is_some_and(|e| e == want))
}

/// The name of an errno value.
pub fn errno_name(n: i32) -> Option<String> {
    let e = nix::errno::Errno::from_raw(n);
    (e != nix::errno::Errno::UnknownErrno).then(|| format!("{e:?}"))
}

/// Socket families: names as policies write them, and their numbers.
pub const SOCKET_FAMILIES: &[(&str, u64)] = &[
    ("unix", 1),
    ("inet", 2),
    ("ax25", 3),
    ("ipx", 4),
    ("appletalk", 5),
    ("netrom", 6),
    ("bridge", 7),
    ("atmpvc", 8),
    ("x25", 9),
    ("inet6", 10),
    ("rose", 11),
    ("decnet", 12),
    ("netbeui", 13),
    ("security", 14),
    ("key", 15),
    ("netlink", 16),
    ("packet", 17),
    ("ash", 18),
    ("econet", 19),
    ("atmsvc", 20),
    ("rds", 21),
    ("sna", 22),
    ("irda", 23),
    ("pppox", 24),
    ("wanpipe", 25),
    ("llc", 26),
    ("ib", 27),
    ("mpls", 28),
    ("can", 29),
    ("tipc", 30),
    ("bluetooth", 31),
    ("iucv", 32),
    ("rxrpc", 33),
    ("isdn", 34),
    ("phonet", 35),
    ("ieee802154", 36),
    ("caif", 37),
    ("alg", 38),
    ("nfc", 39),
    ("vsock", 40),
    ("kcm", 41),
    ("qipcrtr", 42),
    ("smc", 43),
    ("xdp", 44),
    ("mctp", 45),
];

/// The number of a socket family (`inet6`, `AF_INET6`, `af_inet6`; `local` is `unix`).
pub fn socket_family(name: &str) -> Option<u64> {
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_prefix("af_").unwrap_or(&lower);
    let bare = if bare == "local" { "unix" } else { bare };
    SOCKET_FAMILIES
        .iter()
        .find(|(n, _)| *n == bare)
        .map(|(_, v)| *v)
}

/// Other constants usable as syscall argument values.
pub const CONSTANTS: &[(&str, u64)] = &[
    // Terminal ioctls (asm-generic/ioctls.h).
    ("TCGETS", 0x5401),
    ("TCSETS", 0x5402),
    ("TIOCSCTTY", 0x540E),
    ("TIOCSTI", 0x5412),
    ("TIOCGWINSZ", 0x5413),
    ("TIOCSWINSZ", 0x5414),
    ("FIONREAD", 0x541B),
    ("TIOCLINUX", 0x541C),
    ("TIOCCONS", 0x541D),
    ("FIONBIO", 0x5421),
    ("TIOCNOTTY", 0x5422),
    ("TIOCSETD", 0x5423),
    ("FIONCLEX", 0x5450),
    ("FIOCLEX", 0x5451),
    // Namespace flags of clone/unshare (linux/sched.h).
    ("CLONE_NEWTIME", 0x0000_0080),
    ("CLONE_NEWNS", 0x0002_0000),
    ("CLONE_NEWCGROUP", 0x0200_0000),
    ("CLONE_NEWUTS", 0x0400_0000),
    ("CLONE_NEWIPC", 0x0800_0000),
    ("CLONE_NEWUSER", 0x1000_0000),
    ("CLONE_NEWPID", 0x2000_0000),
    ("CLONE_NEWNET", 0x4000_0000),
    // Every namespace flag clone() accepts (CLONE_NEWTIME is only valid for clone3/unshare).
    ("CLONE_NS_FLAGS", 0x7E02_0000),
    // personality(2) values.
    ("PER_LINUX", 0x0),
    ("UNAME26", 0x0002_0000),
    ("PER_LINUX32", 0x8),
    ("PERSONALITY_QUERY", 0xFFFF_FFFF),
];

/// The value of a syscall argument written in a policy: a number (decimal, 0x hex, 0o octal)
/// or a symbolic constant (socket families as `AF_*`).
pub fn arg_value(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok();
    }
    if let Some(oct) = t.strip_prefix("0o") {
        return u64::from_str_radix(oct, 8).ok();
    }
    if let Ok(n) = t.parse::<u64>() {
        return Some(n);
    }
    if let Ok(n) = t.parse::<i64>() {
        return Some(crate::sys::abi::register(n));
    }
    let upper = t.to_ascii_uppercase();
    if let Some((_, v)) = CONSTANTS.iter().find(|(n, _)| *n == upper) {
        return Some(*v);
    }
    if upper.starts_with("AF_") {
        return socket_family(t);
    }
    None
}

/// The number of a capability name: `net_bind_service`, `CAP_NET_BIND_SERVICE`.
pub fn capability(name: &str) -> Option<u8> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    caps::Capability::from_str(&full).ok().map(|c| c.index())
}

/// The policy-style name of a capability number, `net_bind_service` (or `cap_N` if unknown).
pub fn capability_name(n: u8) -> String {
    caps::all()
        .into_iter()
        .find(|c| c.index() == n)
        .map(|c| {
            c.to_string()
                .trim_start_matches("CAP_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|| format!("cap_{n}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("read", Some(0))]
    #[case("ioctl", Some(16))]
    #[case("clone3", Some(435))]
    #[case("io_uring_setup", Some(425))]
    #[case("socketcall", None)]
    #[case("nope", None)]
    fn syscalls(#[case] name: &str, #[case] nr: Option<i64>) {
        assert_eq!(syscall_number(name), nr);
    }

    #[rstest]
    #[case("EPERM", Some(1))]
    #[case("enosys", Some(38))]
    #[case("EACCES", Some(13))]
    #[case("EWHATEVER", None)]
    fn errnos(#[case] name: &str, #[case] n: Option<i32>) {
        assert_eq!(errno_number(name), n);
    }

    #[rstest]
    #[case("unix", Some(1))]
    #[case("AF_INET6", Some(10))]
    #[case("local", Some(1))]
    #[case("netlink", Some(16))]
    #[case("af_packet", Some(17))]
    #[case("nonsense", None)]
    fn families(#[case] name: &str, #[case] n: Option<u64>) {
        assert_eq!(socket_family(name), n);
    }

    #[rstest]
    #[case("TIOCSTI", Some(0x5412))]
    #[case("tiocsti", Some(0x5412))]
    #[case("0x10", Some(16))]
    #[case("0o17", Some(15))]
    #[case("42", Some(42))]
    #[case("-1", Some(u64::MAX))]
    #[case("AF_NETLINK", Some(16))]
    #[case("CLONE_NEWUSER", Some(0x1000_0000))]
    #[case("bogus", None)]
    fn arg_values(#[case] text: &str, #[case] v: Option<u64>) {
        assert_eq!(arg_value(text), v);
    }

    #[rstest]
    #[case("net_bind_service", Some(10))]
    #[case("CAP_NET_BIND_SERVICE", Some(10))]
    #[case("sys_admin", Some(21))]
    #[case("checkpoint_restore", Some(40))]
    #[case("cap_nope", None)]
    fn capabilities(#[case] name: &str, #[case] n: Option<u8>) {
        assert_eq!(capability(name), n);
    }

    #[test]
    fn capability_names_round_trip() {
        assert_eq!(capability_name(10), "net_bind_service");
        assert_eq!(capability(&capability_name(21)), Some(21));
    }
}
