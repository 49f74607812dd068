//! Step 3 (`id-maps`, the supervisor's side) for of `network: user`: pasta attached to the sandbox's network
//! namespace, and the egress rules loaded into that namespace by `nft`.
//!
//! Both run as the caller, outside the sandbox, as children of the supervisor (never of the
//! sandbox): each gets PR_SET_PDEATHSIG(SIGKILL) before exec and checks that its parent is
//! still the supervisor, so a supervisor killed with SIGKILL takes pasta with it; the
//! supervisor itself kills and reaps pasta once the sandbox is gone ([`Running`]'s drop).
//! The sandbox's namespaces are handed over as descriptors the supervisor opened on its own
//! child (`/proc/PID/ns/*` of a pid that can't be reused while unreaped), never as paths pasta
//! would open itself.
//!
//! Ordering: after the id maps (pasta and nft join the sandbox's user namespace, where the
//! caller must already be mapped), before Go (the program starts only once pasta is ready and
//! the rules are in). The sandbox builds its root meanwhile. The rules live in the sandbox's
//! own network namespace, owned by its user namespace: the program, which keeps no
//! CAP_NET_ADMIN there (compile refuses it), can't change them, and they end with it.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::Pid;

use super::error::StepError;
use crate::plan::Plan;
use crate::plan::network::{
    FD_NETNS, FD_READY, FD_USERNS, HOST_SETS, Proto, Published, SourcePorts, UserNet,
};
use crate::plan::steps::Step;
use crate::sys::{HelperSetup, spawn_helper};

/// How long pasta may take to say it is ready (it takes tens of milliseconds; a loaded
/// machine, many times that).
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// What a root caller's pasta may keep in its bounding set: entering the sandbox's namespaces
/// (CAP_SYS_ADMIN), configuring its interface (CAP_NET_ADMIN), binding a published port below
/// 1024 (CAP_NET_BIND_SERVICE), `--runas 0` (CAP_SETUID, CAP_SETGID). pasta drops most of these
/// itself once it is set up; nothing else (no CAP_DAC_OVERRIDE, CAP_SYS_PTRACE, CAP_SYS_MODULE,
/// ...) reaches it.
const PASTA_BOUNDING: u64 = (1 << 6) | (1 << 7) | (1 << 10) | (1 << 12) | (1 << 21);

/// pasta, running; killed and reaped when dropped, once the sandbox's last TCP data has
/// reached it.
#[derive(Debug)]
pub struct Running {
    pasta: Child,
    /// What pasta said after it was ready: its stderr, read by the supervisor's loop.
    said: Said,
    /// The sandbox's TCP tables, to see whether its sockets have handed pasta everything.
    tcp: TcpTables,
    /// The host's address changes, to refuse the addresses it gains (`None` without rules).
    watch: Option<AddrWatch>,
}

impl Running {
    /// pasta's pid.
    pub fn pid(&self) -> u32 {
        self.pasta.id()
    }

    /// pasta's stderr while it is open: the supervisor polls it with its other sources.
    pub fn said_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.pasta.stderr.as_ref().map(AsFd::as_fd)
    }

    /// The socket that hears of the host's address changes, while the rules are kept up to
    /// date: the supervisor polls it with its other sources.
    pub fn addresses_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.watch.as_ref().map(|w| w.sock.as_fd())
    }

    /// The host's addresses changed: reads what the kernel said (only to empty the socket)
    /// and adds every address the host has now and the rules don't refuse yet to the host's
    /// sets. If that fails, pasta is stopped: the sandbox keeps loopback only rather than a way
    /// to the host.
    pub fn on_host_addresses(&mut self) {
        let Some(w) = self.watch.as_mut() else {
            return;
        };
        let mut buf = [0u8; 8192];
        loop {
            match nix::unistd::read(&w.sock, &mut buf) {
                // ENOBUFS: messages were lost; the addresses are read whole below anyway.
                Ok(n) if n > 0 => continue,
                Err(Errno::EINTR | Errno::ENOBUFS) => continue,
                _ => break,
            }
        }
        let new: Vec<IpAddr> = host_addresses()
            .into_iter()
            .filter(|a| !w.known.contains(a))
            .collect();
        if new.is_empty() {
            return;
        }
        match run_nft(
            &w.nft,
            &add_elements(&new),
            &w.net,
            w.user.as_ref(),
            w.parent,
        ) {
            Ok(()) => w.known.extend(new),
            Err(why) => {
                let shown: Vec<String> = new.iter().map(IpAddr::to_string).collect();
                crate::log::warn(&format!(
                    "the host gained {} and the egress rules could not refuse it ({why}): \
                     pasta is stopped, the sandbox has no network beyond loopback from now on",
                    shown.join(", ")
                ));
                self.watch = None;
                if let Err(e) = self.pasta.kill() {
                    crate::log::warn(&format!("kill pasta: {e}"));
                }
            }
        }
    }

    /// Reads what pasta wrote to its stderr (one read: a bounded amount of work per round of
    /// the supervisor's loop) and passes each line on as kekkai's warning, unless quiet. At
    /// its end the pipe is closed, and if pasta has exited that is said: the sandbox's
    /// network ended with it.
    pub fn read_said(&mut self) {
        let Some(pipe) = self.pasta.stderr.as_ref() else {
            return;
        };
        let quiet = self.said.quiet;
        let show = |line: &str| {
            if !quiet {
                crate::log::warn(&format!("pasta: {line}"));
            }
        };
        if self.said.read(pipe, show) {
            return;
        }
        self.pasta.stderr = None;
        if let Ok(Some(status)) = self.pasta.try_wait() {
            crate::log::warn(&format!(
                "pasta exited while the sandbox runs ({status}): the sandbox has no network \
                 beyond loopback from now on"
            ));
        }
    }
}

/// pasta's stderr after its readiness. With `--quiet` pasta writes only warnings and errors
/// there, but over a long-running service they add up: a pipe nobody reads fills at 64 KiB,
/// and pasta would then block in its next `write`, taking the sandbox's network with it.
/// The supervisor reads it as it comes and passes each line on.
#[derive(Debug, Default)]
struct Said {
    /// The start of a line whose end has not come yet.
    partial: Vec<u8>,
    /// `-q`: read, and said to nobody.
    quiet: bool,
}

/// The longest line passed on whole; a longer one is passed on in pieces of this size.
const SAID_LINE_MAX: usize = 4096;

impl Said {
    /// One read of `pipe` (non-blocking); each whole line goes to `show`. False at the end of
    /// the pipe (or a read error), with what was left of a line shown.
    fn read(&mut self, pipe: &impl AsFd, mut show: impl FnMut(&str)) -> bool {
        let mut buf = [0u8; 4096];
        let open = match nix::unistd::read(pipe, &mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.partial
                    .extend_from_slice(buf.get(..n).unwrap_or_default());
                true
            }
            Err(Errno::EAGAIN | Errno::EINTR) => true,
            Err(_) => false,
        };
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            show_line(&line, &mut show);
        }
        if self.partial.len() >= SAID_LINE_MAX || (!open && !self.partial.is_empty()) {
            let line = std::mem::take(&mut self.partial);
            show_line(&line, &mut show);
        }
        open
    }
}

/// One line of pasta's, without its end, unless it is empty or the noise pasta writes about
/// every line when no syslog daemon listens. pasta handles the sandbox's traffic, so what it
/// says may carry bytes the sandbox chose: control characters (a terminal's escape sequences)
/// are shown escaped, never passed to the caller's terminal.
fn show_line(line: &[u8], show: &mut impl FnMut(&str)) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end();
    if text.trim().is_empty() || text.starts_with("Failed to send") {
        return;
    }
    if text.chars().any(|c| c.is_control() && c != '\t') {
        let safe: String = text
            .chars()
            .map(|c| {
                if c.is_control() && c != '\t' {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
        show(&safe);
    } else {
        show(text);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A program that writes its last answer and exits at once leaves the data in its
        // socket, which the kernel goes on sending after the process is gone, to pasta.
        // Killing pasta first would lose it (and its FIN): the client would read nothing.
        if matches!(self.pasta.try_wait(), Ok(None)) {
            self.tcp.wait_sent(DRAIN_LIMIT);
        }
        // pasta never exits on its own when the sandbox is gone (it holds the namespace).
        let _ = self.pasta.kill();
        let _ = self.pasta.wait();
    }
}

/// How long the end of a sandbox waits for its sockets to hand pasta what they still hold (a
/// peer that reads nothing could keep them full for ever).
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// The sandbox's `/proc/PID/net/tcp` and `tcp6`, opened while a process of its network
/// namespace lives: an open table keeps reading that namespace after every process in it is
/// gone, which is when it is read.
#[derive(Debug, Default)]
struct TcpTables(Vec<std::fs::File>);

impl TcpTables {
    /// The tables of `pid`'s network namespace (those the kernel has: no `tcp6` without IPv6).
    fn open(pid: Pid) -> TcpTables {
        let open = |name: &str| std::fs::File::open(format!("/proc/{pid}/net/{name}")).ok();
        TcpTables(["tcp", "tcp6"].into_iter().filter_map(open).collect())
    }

    /// Waits, at most `limit`, until no socket of the namespace holds data or a FIN that its
    /// peer (pasta) has not acknowledged. At once when none does: a table read or two.
    fn wait_sent(&self, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        let mut pause = Duration::from_micros(200);
        while self
            .0
            .iter()
            .any(|t| read_table(t).is_some_and(|text| unsent(&text)))
        {
            if std::time::Instant::now() + pause > deadline {
                return;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

/// A TCP table read from its start.
fn read_table(mut table: &std::fs::File) -> Option<String> {
    use std::io::Seek;
    table.seek(std::io::SeekFrom::Start(0)).ok()?;
    let mut text = String::new();
    table.read_to_string(&mut text).ok()?;
    Some(text)
}

/// Does a socket in this TCP table (`/proc/net/tcp`'s format) still hold something its peer
/// has not acknowledged: bytes in its send queue, or its FIN (FIN_WAIT1, CLOSING, LAST_ACK)?
fn unsent(table: &str) -> bool {
    table.lines().skip(1).any(|line| {
        let mut f = line.split_whitespace();
        let (Some(state), Some(queues)) = (f.nth(3), f.next()) else {
            return false;
        };
        let tx = queues.split(':').next().unwrap_or("0");
        matches!(state, "04" | "0B" | "09")
            || (state != "0A" && u64::from_str_radix(tx, 16).is_ok_and(|n| n > 0))
    })
}

/// The sandbox's network namespace (and user namespace, where pasta joins it), for pasta and
/// the egress rules.
pub struct Namespaces<'p> {
    /// The plan's `network: user`, which they were opened for.
    plan: &'p UserNet,
    net: OwnedFd,
    user: Option<OwnedFd>,
    tcp: TcpTables,
}

/// Opens the sandbox's namespaces through `/proc/PID/ns` while its first process still waits
/// for `Mapped`: from then on it changes its credentials (the sandbox's user, not dumpable),
/// after which the kernel refuses the supervisor those links (EACCES), so opening them later
/// is a race a loaded machine can lose. `None` without `network: user`.
pub fn open_namespaces(plan: &Plan, pid: Pid) -> Result<Option<Namespaces<'_>>, StepError> {
    let Some(u) = &plan.user_net else {
        return Ok(None);
    };
    let step = Step::IdMaps;
    let key = &u.origin.pasta;
    let open_ns = |kind: &str| -> Result<OwnedFd, StepError> {
        let path = format!("/proc/{pid}/ns/{kind}");
        let fd = nix::fcntl::open(
            path.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| StepError::sys(step, format!("open({path:?})"), e).at(key))?;
        high(fd).map_err(|e| StepError::sys(step, "fcntl(F_DUPFD_CLOEXEC, 10)", e))
    };
    let net = open_ns("net")?;
    let user = if u.pasta.userns {
        Some(open_ns("user")?)
    } else {
        None
    };
    Ok(Some(Namespaces {
        plan: u,
        net,
        user,
        tcp: TcpTables::open(pid),
    }))
}

/// Starts pasta in the sandbox's namespaces (from [`open_namespaces`]) and loads the egress
/// rules (unless `skip_rules`: the debug-only weakening); returns once both are ready.
pub fn start(ns: Namespaces<'_>, skip_rules: bool, quiet: bool) -> Result<Running, StepError> {
    let Namespaces {
        plan: u,
        net: netns,
        user: userns,
        tcp,
    } = ns;
    let step = Step::IdMaps;
    let key = &u.origin.pasta;
    check_ports_free(u)?;
    let (ready_r, ready_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| StepError::sys(step, "pipe2(O_CLOEXEC)", e))?;
    let ready_w = high(ready_w).map_err(|e| StepError::sys(step, "fcntl(F_DUPFD_CLOEXEC)", e))?;
    let parent = i32::try_from(std::process::id()).unwrap_or(0);

    // pasta first: it takes the longest; nft runs while it starts.
    let mut fds = vec![
        (netns.as_raw_fd(), FD_NETNS),
        (ready_w.as_raw_fd(), FD_READY),
    ];
    if let Some(user) = &userns {
        fds.push((user.as_raw_fd(), FD_USERNS));
    }
    let mut cmd = Command::new(&u.pasta.program);
    cmd.args(&u.pasta.args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let pasta = spawn_helper(
        &mut cmd,
        HelperSetup {
            parent,
            fds,
            join: Vec::new(),
            ambient_net_admin: false,
            bounding: nix::unistd::geteuid().is_root().then_some(PASTA_BOUNDING),
        },
    )
    .map_err(|e| {
        StepError::sys(
            step,
            format!("spawn {}", u.pasta.program.display()),
            errno(&e),
        )
        .at(key)
    })?;
    drop(ready_w);
    let running = Running {
        pasta,
        said: Said {
            quiet,
            ..Said::default()
        },
        tcp,
        watch: None,
    };

    let mut running = running;
    if !skip_rules {
        let sock = address_socket().map_err(|e| {
            StepError::sys(step, "socket(NETLINK_ROUTE, the host's address changes)", e)
        })?;
        let known = load_rules(u, &netns, userns.as_ref(), parent)?;
        running.watch = Some(AddrWatch {
            sock,
            known,
            net: netns,
            user: userns,
            nft: u.nft.value.clone(),
            parent,
        });
    }
    wait_ready(running, ready_r, u)
}

/// The host addresses a published port is bound on: its own, or (none given) `0.0.0.0` and
/// `[::]`, as pasta binds it.
fn port_addrs(p: &Published) -> Vec<IpAddr> {
    match p.addr {
        Some(a) => vec![a],
        None => vec![
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        ],
    }
}

/// Binds a socket of `proto` on `addr`:`port` and closes it: `EADDRINUSE` when a host socket
/// holds that port already. UDP without SO_REUSEADDR, which pasta sets: two UDP sockets that
/// both set it share a port, and the one bound last gets its datagrams, so pasta would take a
/// host service's traffic (one bound with SO_REUSEADDR) without a word. TCP with it (a listener
/// conflicts either way; a closed connection's TIME_WAIT must not). `[::]` with IPV6_V6ONLY,
/// as pasta binds it beside 0.0.0.0. Nothing listens: the socket is never more than bound.
fn probe_port(addr: IpAddr, port: u16, proto: Proto) -> nix::Result<()> {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6, bind, setsockopt, socket,
        sockopt,
    };
    let (family, ty) = (
        if addr.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        },
        match proto {
            Proto::Tcp => SockType::Stream,
            Proto::Udp => SockType::Datagram,
        },
    );
    let fd = socket(family, ty, SockFlag::SOCK_CLOEXEC, None)?;
    if proto == Proto::Tcp {
        setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    match addr {
        IpAddr::V4(a) => bind(
            fd.as_raw_fd(),
            &SockaddrIn::from(std::net::SocketAddrV4::new(a, port)),
        ),
        IpAddr::V6(a) => {
            setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
            bind(
                fd.as_raw_fd(),
                &SockaddrIn6::from(std::net::SocketAddrV6::new(a, port, 0, 0)),
            )
        }
    }
}

/// Every published port is free on the host before pasta binds it, or the launch fails at the
/// port's key. pasta's own bind would not say so for UDP (SO_REUSEADDR: it shares the port
/// with a host socket that set it too, and takes its datagrams), nor for half of a port
/// published on every address (it goes on with the family it could bind). A host without IPv6
/// has no `[::]` to check (EAFNOSUPPORT). A socket bound between this check and pasta's bind
/// (a few milliseconds) is not seen.
fn check_ports_free(u: &UserNet) -> Result<(), StepError> {
    let step = Step::IdMaps;
    for (i, p) in u.ports.iter().enumerate() {
        let origin = u.origin.ports.get(i).unwrap_or(&u.origin.pasta);
        for addr in port_addrs(&p.value) {
            match probe_port(addr, p.host, p.proto) {
                Ok(()) => {}
                Err(Errno::EAFNOSUPPORT) if p.addr.is_none() => {}
                Err(e) => {
                    let shown = match addr {
                        IpAddr::V6(a) => format!("[{a}]:{}", p.host),
                        IpAddr::V4(a) => format!("{a}:{}", p.host),
                    };
                    let why = match (e, p.proto) {
                        (Errno::EADDRINUSE, Proto::Udp) => {
                            "a host socket holds it already, and pasta (SO_REUSEADDR) would \
                             share the port and take its datagrams"
                        }
                        (Errno::EADDRINUSE, Proto::Tcp) => "a host socket holds it already",
                        _ => "pasta could not bind it either",
                    };
                    return Err(StepError::sys(
                        step,
                        format!(
                            "bind({shown}, {}) for a published port: {why}",
                            p.proto.name()
                        ),
                        e,
                    )
                    .at(origin)
                    .hint("publish a port no host service uses"));
                }
            }
        }
    }
    Ok(())
}

/// Sets O_NONBLOCK on our end of a pipe (the other end, pasta's, keeps its own flags).
fn set_nonblocking(fd: &impl AsFd) -> nix::Result<()> {
    use nix::fcntl::{FcntlArg, fcntl};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}

/// A copy of `fd` at 10 or above (close-on-exec), so that placing descriptors at 3, 4 and 5
/// in a helper never overwrites one still to be placed.
fn high(fd: OwnedFd) -> nix::Result<OwnedFd> {
    crate::sys::dup_at_least(fd.as_fd(), 10)
}

fn errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
}

/// The host's own addresses, every interface's (the rules refuse them: a host service bound
/// to 0.0.0.0 would answer on any of them).
pub fn host_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            let Some(s) = a.address else { continue };
            if let Some(v4) = s.as_sockaddr_in() {
                out.push(IpAddr::V4(v4.ip()));
            } else if let Some(v6) = s.as_sockaddr_in6() {
                out.push(IpAddr::V6(v6.ip()));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The host's ephemeral port range (`net.ipv4.ip_local_port_range`), where the sandbox's UDP
/// gets its source ports ([`SourcePorts`]); never below 1024. Linux's default if it can't be
/// read.
fn ephemeral_ports() -> (u16, u16) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range");
    parse_port_range(text.as_deref().unwrap_or_default()).unwrap_or((32768, 60999))
}

/// `LOW HIGH` (the sysctl's text), raised to 1024 at least; `None` unless it makes a range.
fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    let mut nums = text.split_whitespace().map(str::parse::<u16>);
    let (Some(Ok(low)), Some(Ok(high)), None) = (nums.next(), nums.next(), nums.next()) else {
        return None;
    };
    let low = low.max(1024);
    (low <= high).then_some((low, high))
}

/// Runs `nft -f -` in the sandbox's user and network namespaces with the egress ruleset on
/// its stdin. nft keeps CAP_NET_ADMIN of the sandbox's user namespace across exec as an
/// ambient capability (the caller may be mapped to a uid other than 0 there), nothing else.
fn load_rules(
    u: &UserNet,
    netns: &OwnedFd,
    userns: Option<&OwnedFd>,
    parent: i32,
) -> Result<Vec<IpAddr>, StepError> {
    let step = Step::IdMaps;
    let key = &u.origin.egress;
    let ports = SourcePorts {
        range: ephemeral_ports(),
        loopback_udp: u
            .host_loopback
            .iter()
            .filter(|p| p.proto == Proto::Udp)
            .map(|p| p.port)
            .collect(),
    };
    let host = host_addresses();
    let rules = u.egress.nft(&host, &ports);
    let shown = format!("{} -f -", u.nft.value.display());
    match run_nft(&u.nft.value, &rules, netns, userns, parent) {
        Ok(()) => Ok(host),
        Err(NftError::Spawn(e)) => Err(StepError::sys(step, format!("spawn {shown}"), e).at(key)),
        Err(NftError::Wait(e)) => Err(StepError::sys(step, format!("wait {shown}"), e)),
        Err(NftError::Failed(why)) => Err(StepError::msg(
            step,
            format!("{shown} in the sandbox's network namespace failed ({why})"),
        )
        .at(key)
        .hint("the egress rules could not be loaded; kekkai does not run without them")),
    }
}

/// Why `nft` did not do its work.
#[derive(Debug)]
enum NftError {
    /// It could not be started.
    Spawn(Errno),
    /// It could not be waited for.
    Wait(Errno),
    /// It failed: its status, and what it said.
    Failed(String),
}

impl std::fmt::Display for NftError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NftError::Spawn(e) => write!(f, "spawn: {e}"),
            NftError::Wait(e) => write!(f, "wait: {e}"),
            NftError::Failed(why) => f.write_str(why),
        }
    }
}

/// Runs `nft -f -` in the sandbox's user and network namespaces with `script` on its stdin.
/// nft keeps CAP_NET_ADMIN of the sandbox's user namespace across exec as an ambient
/// capability (the caller may be mapped to a uid other than 0 there), nothing else.
fn run_nft(
    nft: &std::path::Path,
    script: &str,
    netns: &OwnedFd,
    userns: Option<&OwnedFd>,
    parent: i32,
) -> Result<(), NftError> {
    let mut join = Vec::new();
    if let Some(user) = userns {
        join.push((user.as_raw_fd(), libc::CLONE_NEWUSER));
    }
    join.push((netns.as_raw_fd(), libc::CLONE_NEWNET));
    let mut cmd = Command::new(nft);
    cmd.args(["-f", "-"])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = spawn_helper(
        &mut cmd,
        HelperSetup {
            parent,
            fds: Vec::new(),
            join,
            ambient_net_admin: userns.is_some(),
            bounding: None,
        },
    )
    .map_err(|e| NftError::Spawn(errno(&e)))?;
    // nft applies what it read as one transaction: a script cut short could still parse (fewer
    // rules), so a failed write fails the rules even when nft says it succeeded.
    let wrote = match child.stdin.take() {
        Some(mut stdin) => stdin.write_all(script.as_bytes()),
        None => Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
    };
    let out = child
        .wait_with_output()
        .map_err(|e| NftError::Wait(errno(&e)))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(NftError::Failed(format!("{}: {}", out.status, why.trim())));
    }
    wrote.map_err(|e| NftError::Failed(format!("writing the rules to nft's stdin: {e}")))
}

/// The host's addresses while the sandbox runs: a netlink socket that hears of every address
/// the host gains, and what the sandbox's rules already refuse. The rules are loaded with the
/// host's addresses of the moment; an address the host gains later (an interface that comes
/// up, a VPN, IPv6's temporary addresses, which are replaced every day) would otherwise be a
/// way to the host's services on `0.0.0.0` and `[::]` through pasta. The supervisor adds each
/// one to the host's sets ([`HOST_SETS`]) as the kernel reports it.
#[derive(Debug)]
struct AddrWatch {
    /// NETLINK_ROUTE, bound to the IPv4 and IPv6 address groups, non-blocking.
    sock: OwnedFd,
    /// The addresses the rules refuse.
    known: Vec<IpAddr>,
    net: OwnedFd,
    user: Option<OwnedFd>,
    nft: std::path::PathBuf,
    parent: i32,
}

/// A netlink socket that hears of the host's address changes; opened before the host's
/// addresses are read for the rules, so nothing between the two is missed.
fn address_socket() -> nix::Result<OwnedFd> {
    use nix::sys::socket::{
        AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, socket,
    };
    const RTMGRP_IPV4_IFADDR: u32 = 0x10;
    const RTMGRP_IPV6_IFADDR: u32 = 0x100;
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        SockProtocol::NetlinkRoute,
    )?;
    bind(
        fd.as_raw_fd(),
        &NetlinkAddr::new(0, RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR),
    )?;
    Ok(fd)
}

/// The nft script that adds `addrs` to the host's sets.
fn add_elements(addrs: &[IpAddr]) -> String {
    let mut out = String::new();
    for (v4, set) in [(true, HOST_SETS.0), (false, HOST_SETS.1)] {
        let elems: Vec<String> = addrs
            .iter()
            .filter(|a| a.is_ipv4() == v4)
            .map(IpAddr::to_string)
            .collect();
        if !elems.is_empty() {
            out.push_str(&format!(
                "add element inet kekkai {set} {{ {} }}\n",
                elems.join(", ")
            ));
        }
    }
    out
}

/// Waits until pasta writes its pid (it does so once the sandbox's interface, addresses and
/// routes are set), or exits, or the time is up.
fn wait_ready(mut running: Running, ready: OwnedFd, u: &UserNet) -> Result<Running, StepError> {
    let step = Step::IdMaps;
    let key = &u.origin.pasta;
    let deadline = std::time::Instant::now() + READY_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(StepError::msg(
                step,
                format!(
                    "pasta did not get ready within {} s",
                    READY_TIMEOUT.as_secs()
                ),
            )
            .at(key));
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(ready.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => break,
            Err(e) => return Err(StepError::sys(step, "poll(pasta's pid pipe)", e)),
        }
    }
    let mut buf = [0u8; 32];
    let n = loop {
        match nix::unistd::read(&ready, &mut buf) {
            Err(Errno::EINTR) => continue,
            other => break other.unwrap_or(0),
        }
    };
    if n > 0 {
        // From here on the supervisor's loop reads what pasta says (`Running::read_said`),
        // without ever waiting for it.
        if let Some(e) = running.pasta.stderr.as_ref() {
            set_nonblocking(e).map_err(|e| {
                StepError::sys(step, "fcntl(pasta's stderr, F_SETFL, O_NONBLOCK)", e).at(key)
            })?;
        }
        return Ok(running);
    }
    // End of file: pasta exited before it was ready. Its status and what it said.
    let status = running.pasta.wait();
    let mut said = String::new();
    if let Some(mut e) = running.pasta.stderr.take() {
        let _ = e.read_to_string(&mut said);
    }
    // Without a syslog daemon every error line is preceded by noise about it.
    let said: Vec<&str> = said
        .lines()
        .filter(|l| !l.starts_with("Failed to send") && !l.trim().is_empty())
        .collect();
    let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
    Err(StepError::msg(
        step,
        format!(
            "pasta exited before it was ready ({status}): {}",
            said.join("; ")
        ),
    )
    .at(key)
    .hint(
        "pasta needs a host with a default route (IPv4 or IPv6); a published port needs a \
         free host port",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// Reads `pipe` with `said` until its end; every line shown.
    fn drain(said: &mut Said, pipe: &OwnedFd) -> Vec<String> {
        let mut shown = Vec::new();
        while said.read(pipe, |l| shown.push(l.to_owned())) {}
        shown
    }

    #[rstest]
    #[case::lines(&[b"one\ntwo\n".as_slice()], &["one", "two"])]
    #[case::split_across_writes(&[b"fi".as_slice(), b"rst\nsec".as_slice(), b"ond\n".as_slice()], &["first", "second"])]
    #[case::last_line_without_end(&[b"a\nb".as_slice()], &["a", "b"])]
    #[case::syslog_noise_and_blanks(&[b"Failed to send message\n\n  \nreal warning\n".as_slice()], &["real warning"])]
    #[case::carriage_return(&[b"crlf\r\n".as_slice()], &["crlf"])]
    #[case::not_utf8(&[b"\xffbad\n".as_slice()], &["\u{fffd}bad"])]
    #[case::escape_sequences(&[b"a\x1b]0;title\x07b\tc\rd\n".as_slice()], &["a\\u{1b}]0;title\\u{7}b\tc\\rd"])]
    fn pastas_lines_are_passed_on_whole(#[case] writes: &[&[u8]], #[case] want: &[&str]) {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe");
        let mut said = Said::default();
        let mut shown = Vec::new();
        for chunk in writes {
            nix::unistd::write(&w, chunk).expect("write");
            assert!(said.read(&r, |l| shown.push(l.to_owned())));
        }
        drop(w);
        shown.extend(drain(&mut said, &r));
        assert_eq!(shown, want);
    }

    const HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    /// Which sockets still hold something for pasta, by the TCP table's state and send queue.
    #[rstest]
    #[case::empty("", false)]
    #[case::listening(
        "0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1",
        false
    )]
    #[case::established_idle(
        "1: 0100007F:1F40 0100007F:9C40 01 00000000:00000000 00:00000000 00000000 0 0 2 1",
        false
    )]
    #[case::established_unacked(
        "1: 0100007F:1F40 0100007F:9C40 01 0000000A:00000000 01:00000014 00000000 0 0 2 1",
        true
    )]
    #[case::fin_wait1(
        "2: 0100007F:1F40 0100007F:9C40 04 00000000:00000000 01:00000014 00000000 0 0 0 1",
        true
    )]
    #[case::last_ack(
        "2: 0100007F:1F40 0100007F:9C40 09 00000000:00000000 01:00000014 00000000 0 0 0 1",
        true
    )]
    #[case::closing(
        "2: 0100007F:1F40 0100007F:9C40 0B 00000000:00000000 01:00000014 00000000 0 0 0 1",
        true
    )]
    #[case::fin_wait2(
        "3: 0100007F:1F40 0100007F:9C40 05 00000000:00000000 00:00000000 00000000 0 0 0 1",
        false
    )]
    #[case::time_wait(
        "4: 0100007F:1F40 0100007F:9C40 06 00000000:00000000 03:00000F9E 00000000 0 0 0 3",
        false
    )]
    #[case::garbage("x y", false)]
    fn a_socket_holds_data_for_pasta(#[case] line: &str, #[case] want: bool) {
        assert_eq!(unsent(&format!("{HEADER}{line}\n")), want);
    }

    /// A host socket on 127.0.0.1 of the given protocol, with or without SO_REUSEADDR, bound
    /// to a port of the kernel's choice; (socket, port).
    fn holder(proto: Proto, reuse: bool, listen: bool) -> (OwnedFd, u16) {
        use nix::sys::socket::{
            AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, setsockopt, socket,
            sockopt,
        };
        let ty = match proto {
            Proto::Tcp => SockType::Stream,
            Proto::Udp => SockType::Datagram,
        };
        let fd = socket(AddressFamily::Inet, ty, SockFlag::SOCK_CLOEXEC, None).expect("socket");
        setsockopt(&fd, sockopt::ReuseAddr, &reuse).expect("SO_REUSEADDR");
        let lo = SockaddrIn::from(std::net::SocketAddrV4::new(
            std::net::Ipv4Addr::LOCALHOST,
            0,
        ));
        bind(fd.as_raw_fd(), &lo).expect("bind");
        if listen {
            nix::sys::socket::listen(&fd, nix::sys::socket::Backlog::new(1).expect("backlog"))
                .expect("listen");
        }
        let port = getsockname::<SockaddrIn>(fd.as_raw_fd())
            .expect("getsockname")
            .port();
        (fd, port)
    }

    /// A published port a host socket holds is found before pasta binds it: a UDP socket with
    /// SO_REUSEADDR (which pasta would share, taking its datagrams) as well as one without, a
    /// TCP listener; on the same address and through every address (0.0.0.0). A TCP socket
    /// bound with SO_REUSEADDR but not listening is no conflict (pasta would take the port
    /// before the holder listens, and the holder's listen fails: nothing is stolen).
    #[rstest]
    #[case::udp_reuseaddr(Proto::Udp, true, false, "127.0.0.1", Err(Errno::EADDRINUSE))]
    #[case::udp(Proto::Udp, false, false, "127.0.0.1", Err(Errno::EADDRINUSE))]
    #[case::udp_every_address(Proto::Udp, true, false, "0.0.0.0", Err(Errno::EADDRINUSE))]
    #[case::udp_other_address(Proto::Udp, true, false, "127.0.0.2", Ok(()))]
    #[case::tcp_listener(Proto::Tcp, true, true, "127.0.0.1", Err(Errno::EADDRINUSE))]
    #[case::tcp_every_address(Proto::Tcp, true, true, "0.0.0.0", Err(Errno::EADDRINUSE))]
    #[case::tcp_bound_reuseaddr(Proto::Tcp, true, false, "127.0.0.1", Ok(()))]
    fn a_port_a_host_socket_holds_is_found(
        #[case] proto: Proto,
        #[case] reuse: bool,
        #[case] listen: bool,
        #[case] published: &str,
        #[case] want: nix::Result<()>,
    ) {
        let (_held, port) = holder(proto, reuse, listen);
        let addr: IpAddr = published.parse().expect("address");
        assert_eq!(probe_port(addr, port, proto), want);
    }

    #[rstest]
    #[case::none(&[], "")]
    #[case::v4(&["198.51.100.7"], "add element inet kekkai host4 { 198.51.100.7 }\n")]
    #[case::both(
        &["2001:db8::7", "198.51.100.7", "198.51.100.8"],
        "add element inet kekkai host4 { 198.51.100.7, 198.51.100.8 }\n\
         add element inet kekkai host6 { 2001:db8::7 }\n"
    )]
    fn a_gained_address_is_added_to_its_family_s_set(#[case] addrs: &[&str], #[case] want: &str) {
        let addrs: Vec<IpAddr> = addrs.iter().map(|a| a.parse().expect("address")).collect();
        assert_eq!(add_elements(&addrs), want);
    }

    #[rstest]
    #[case::linux_default("32768\t60999\n", Some((32768, 60999)))]
    #[case::spaces(" 40000   50000 ", Some((40000, 50000)))]
    #[case::below_1024("500 60999", Some((1024, 60999)))]
    #[case::backwards("60999 32768", None)]
    #[case::all_below_1024("100 200", None)]
    #[case::one_number("32768", None)]
    #[case::three_numbers("1 2 3", None)]
    #[case::garbage("x y", None)]
    #[case::empty("", None)]
    fn the_ephemeral_range_is_read(#[case] text: &str, #[case] want: Option<(u16, u16)>) {
        assert_eq!(parse_port_range(text), want);
    }

    /// A free port passes, in both families of "every address" (where the host has IPv6).
    #[test]
    fn a_free_port_passes() {
        let (held, port) = holder(Proto::Udp, false, false);
        drop(held);
        let p = Published {
            addr: None,
            host: port,
            sandbox: port,
            proto: Proto::Udp,
        };
        for addr in port_addrs(&p) {
            let got = probe_port(addr, port, Proto::Udp);
            assert!(
                got.is_ok() || (addr.is_ipv6() && got == Err(Errno::EAFNOSUPPORT)),
                "{addr}: {got:?}"
            );
        }
    }

    /// A line longer than [`SAID_LINE_MAX`] is passed on in pieces, never held whole.
    #[test]
    fn a_line_without_end_is_passed_on_in_pieces() {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe");
        let mut said = Said::default();
        nix::unistd::write(&w, &[b'x'; SAID_LINE_MAX + 10]).expect("write");
        drop(w);
        let shown = drain(&mut said, &r);
        assert_eq!(
            shown.iter().map(String::len).collect::<Vec<_>>(),
            [SAID_LINE_MAX, 10]
        );
        assert!(said.partial.is_empty());
    }

    /// The reason for reading at all: a writer of more than a pipe holds (64 KiB) finishes,
    /// because the reader reads what it says as it comes, without ever blocking on an empty
    /// pipe (O_NONBLOCK, as after pasta's readiness).
    #[test]
    fn a_writer_of_more_than_a_pipe_holds_is_never_blocked() {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe");
        set_nonblocking(&r).expect("O_NONBLOCK");
        let lines = 10_000;
        let writer = std::thread::spawn(move || {
            for i in 0..lines {
                let line = format!("warning {i:05}: some condition pasta reports\n");
                nix::unistd::write(&w, line.as_bytes()).expect("write");
            }
        });
        let mut said = Said::default();
        let mut shown = Vec::new();
        loop {
            let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::NONE).expect("poll");
            if !said.read(&r, |l| shown.push(l.to_owned())) {
                break;
            }
        }
        writer.join().expect("writer");
        assert_eq!(shown.len(), lines);
        assert_eq!(
            shown.last().map(String::as_str),
            Some("warning 09999: some condition pasta reports")
        );
    }
}
