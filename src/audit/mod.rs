//! `kekkai audit`: run a battery of escape probes inside a sandbox built from a policy, and
//! fail if any escape works.
//!
//! The host side sets up fixtures the probes try to reach (a loopback TCP listener, an abstract
//! unix socket, a SysV shared-memory segment, a secret in the supervisor's environment, its own
//! pid), copies kekkai itself into a private directory that the sandbox sees read-only (so no
//! writable host binary is ever exposed), and runs `kekkai run -p POLICY -- <copy> __probe
//! battery CTX`. Inside, each probe runs in its own forked process so that a probe the sandbox
//! kills (SIGSYS) can't take the battery with it; each prints one JSON line. The host turns
//! what each probe saw into a verdict: blocked, escaped, not applicable (the policy grants it,
//! or there is nothing to try), or error — a probe that did not report is an error, never a
//! pass. A protection the policy asks for and this host can't give (a best-effort limit
//! without a cgroup) is an escape, never "not applicable"; an escape the policy lets through
//! on purpose is named in its `audit.grants` and shown as granted.

pub mod probes;
pub mod terminal;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::plan::fs::MountKind;
use crate::plan::landlock::{access, allows};
use crate::policy::model::{Network, Scope};

/// Everything a probe may need to know, passed into the sandbox as JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ctx {
    /// Running unsandboxed (`--control`).
    pub control: bool,
    /// A directory the probes may write in.
    pub scratch: String,
    /// Its size limit, when it is a tmpfs of known size.
    pub scratch_size: Option<u64>,
    /// A host pid (the audit's own).
    pub host_pid: Option<i32>,
    /// A TCP listener on the host's 127.0.0.1.
    pub tcp_port: Option<u16>,
    /// An abstract unix socket listening on the host.
    pub abstract_name: Option<String>,
    /// A SysV shared-memory key on the host.
    pub shm_key: Option<i32>,
    /// A secret in the supervisor's environment.
    pub secret: Option<String>,
    /// The policy shares the host network.
    pub host_network: bool,
    /// Landlock's abstract-unix scope is on.
    pub abstract_scope: bool,
    /// The sandbox has its own pid namespace.
    pub pid_namespace: bool,
    /// Capabilities the policy keeps (bit mask).
    pub kept_caps: u64,
    /// pids.max, if set.
    pub pids_limit: Option<u64>,
    /// memory.max, if set.
    pub memory_limit: Option<u64>,
    /// Why a best-effort pids limit is not enforced on this host.
    pub dropped_pids: Option<String>,
    /// Why a best-effort memory limit is not enforced on this host.
    pub dropped_memory: Option<String>,
    /// RLIMIT_NOFILE, if set.
    pub nofile_limit: Option<u64>,
    /// A file visible in the sandbox that Landlock's read rules do not cover.
    pub landlock_read_target: Option<String>,
    /// An executable visible in the sandbox that Landlock's execute rules do not cover.
    pub landlock_exec_target: Option<String>,
    /// A writable mount (for renames and links across rules).
    pub landlock_write_target: Option<String>,
    /// A writable mount that Landlock's write rules don't cover.
    pub landlock_write_denied: Option<String>,
    /// The policy makes the root writable.
    pub root_writable: bool,
    /// A path hidden by the policy (for "umount to reveal").
    pub hidden_path: Option<String>,
    /// The policy's own expectations.
    pub expectations: Vec<Expectation>,
    /// Every writable mount (tmpfs or writable bind) no later mount covers, inside the
    /// sandbox: where the privilege probes try to leave setuid files and the like.
    #[serde(default)]
    pub writable_mounts: Vec<String>,
    /// A root-owned 0600 file (a host fixture; only an audit run as root can make one).
    #[serde(default)]
    pub root_secret: Option<String>,
    /// `/etc/shadow`, when the host has one that is root's and not readable by everyone.
    #[serde(default)]
    pub shadow: Option<String>,
    /// The terminal that plays the caller's: (filesystem, device) of its slave.
    #[serde(default)]
    pub caller_tty: Option<(u64, u64)>,
    /// Descriptors open when the battery started (filled in inside).
    #[serde(default)]
    pub initial_fds: Vec<String>,
    // The policy's promises on this host, and what of the launcher must not reach inside.
    /// Every cgroup limit the policy sets, as `explain` shows it (`memory 1G`).
    #[serde(default)]
    pub limits: Vec<String>,
    /// The limits this host can't give (a best-effort policy runs without them), with why.
    #[serde(default)]
    pub dropped_limits: Vec<String>,
    /// The program is PID 1 (`as-pid-1`): /proc/1/cmdline is its own.
    #[serde(default)]
    pub as_pid_1: bool,
    /// Probes whose escape the policy grants (`audit.grants`).
    #[serde(default)]
    pub grants: Vec<String>,
}

/// What a probe saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Seen {
    /// The attempt succeeded.
    Done(String),
    /// The kernel answered with this errno.
    Errno(#[serde(with = "errno_serde")] Errno),
    /// The attempt was stopped (a check that is not an errno).
    Blocked(String),
    /// The probe does not apply to this policy.
    NotApplicable(String),
    /// The probe's process was killed by this signal.
    Signal(i32),
    /// The probe could not run.
    Broken(String),
}

impl<T: std::fmt::Display> From<nix::Result<T>> for Seen {
    fn from(r: nix::Result<T>) -> Seen {
        match r {
            Ok(v) => Seen::Done(format!("returned {v}")),
            Err(e) => Seen::Errno(e),
        }
    }
}

/// Errnos travel as their numbers.
mod errno_serde {
    use nix::errno::Errno;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(e: &Errno, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(*e as i32)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Errno, D::Error> {
        i32::deserialize(d).map(Errno::from_raw)
    }
}

/// A probe's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The sandbox stopped it.
    Blocked,
    /// It worked.
    Escaped,
    /// The policy grants it (or there is nothing to try).
    NotApplicable,
    /// The probe did not report properly.
    Error,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeReport {
    /// Probe name.
    pub name: String,
    /// Category.
    pub category: String,
    /// The layer expected to stop it.
    pub layer: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The errno, signal or observation behind it.
    pub detail: String,
}

/// The policy's own expectation: `read:/etc/shadow`, `write:/usr`, `exec:/tmp/x`,
/// `connect:127.0.0.1:22`, `bind:8080`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectation {
    /// `must-deny` or `must-allow`.
    pub deny: bool,
    /// The action.
    pub action: String,
    /// Its target.
    pub target: String,
}

impl Expectation {
    /// Parses `ACTION:TARGET`.
    pub fn parse(text: &str, deny: bool) -> Result<Expectation, String> {
        let Some((action, target)) = text.split_once(':') else {
            return Err(format!(
                "`{text}`: write ACTION:TARGET, e.g. read:/etc/shadow"
            ));
        };
        match action {
            "read" | "write" | "exec" => {
                if !target.starts_with('/') {
                    return Err(format!("`{text}`: the path must be absolute"));
                }
            }
            "connect" => {
                let port = target
                    .rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok());
                if port.is_none() {
                    return Err(format!("`{text}`: write connect:HOST:PORT"));
                }
            }
            "bind" => {
                if target.parse::<u16>().is_err() {
                    return Err(format!("`{text}`: write bind:PORT"));
                }
            }
            _ => {
                return Err(format!(
                    "`{action}` is not one of read, write, exec, connect, bind"
                ));
            }
        }
        Ok(Expectation {
            deny,
            action: action.to_owned(),
            target: target.to_owned(),
        })
    }

    /// The report name.
    pub fn name(&self) -> String {
        format!(
            "{}:{}:{}",
            if self.deny { "must-deny" } else { "must-allow" },
            self.action,
            self.target
        )
    }

    fn attempt(&self) -> Seen {
        match self.action.as_str() {
            "read" => match std::fs::File::open(&self.target) {
                Ok(_) => Seen::Done("opened for reading".into()),
                Err(e) => Seen::Errno(errno_of(&e)),
            },
            "write" => {
                let p = Path::new(&self.target);
                if p.is_dir() {
                    let f = p.join(".kekkai-audit-probe");
                    match std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&f)
                    {
                        Ok(_) => {
                            let _ = std::fs::remove_file(&f);
                            Seen::Done("created a file in it".into())
                        }
                        Err(e) => Seen::Errno(errno_of(&e)),
                    }
                } else {
                    match std::fs::OpenOptions::new().write(true).open(p) {
                        Ok(_) => Seen::Done("opened for writing".into()),
                        Err(e) => Seen::Errno(errno_of(&e)),
                    }
                }
            }
            "exec" => try_exec(&self.target),
            "connect" => match std::net::TcpStream::connect(self.target.as_str()) {
                Ok(_) => Seen::Done("connected".into()),
                Err(e) => Seen::Errno(errno_of(&e)),
            },
            "bind" => match std::net::TcpListener::bind((
                "0.0.0.0",
                self.target.parse::<u16>().unwrap_or(0),
            )) {
                Ok(_) => Seen::Done("bound".into()),
                Err(e) => Seen::Errno(errno_of(&e)),
            },
            _ => Seen::Broken(format!("unknown action {}", self.action)),
        }
    }
}

fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
}

/// Executes `path` in a child; the child is killed as soon as the exec has succeeded.
pub fn try_exec(path: &str) -> Seen {
    let Ok(cpath) = std::ffi::CString::new(path) else {
        return Seen::Broken("path with a NUL byte".into());
    };
    let Ok((rd, wr)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        return Seen::Broken("pipe".into());
    };
    match crate::sys::fork() {
        Ok(None) => {
            drop(rd);
            let argv = [cpath.clone()];
            let envp: [std::ffi::CString; 0] = [];
            let e = match nix::unistd::execve(&cpath, &argv, &envp) {
                Err(e) => e,
                Ok(never) => match never {},
            };
            let _ = nix::unistd::write(&wr, &(e as i32).to_ne_bytes());
            crate::sys::exit_now(127)
        }
        Ok(Some(pid)) => {
            drop(wr);
            let mut buf = [0u8; 4];
            let n = nix::unistd::read(&rd, &mut buf).unwrap_or(0);
            if n == 4 {
                let _ = nix::sys::wait::waitpid(pid, None);
                Seen::Errno(Errno::from_raw(i32::from_ne_bytes(buf)))
            } else {
                // The pipe closed on exec: it ran. Stop it at once.
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(pid, None);
                Seen::Done(format!("executed {path}"))
            }
        }
        Err(e) => Seen::Broken(format!("fork: {e:?}")),
    }
}

/// Forks until fork fails (children wait to be killed). Stops at 4096.
pub fn fork_until_limit(limit: Option<u64>) -> Seen {
    let mut kids = Vec::new();
    let result = loop {
        if kids.len() >= 4096 {
            break Seen::Done(format!(
                "forked {} processes (pids limit {limit:?})",
                kids.len()
            ));
        }
        match crate::sys::fork() {
            Ok(None) => loop {
                nix::unistd::pause();
            },
            Ok(Some(pid)) => kids.push(pid),
            Err(e) => break Seen::Errno(e),
        }
    };
    for k in &kids {
        let _ = nix::sys::signal::kill(*k, nix::sys::signal::Signal::SIGKILL);
    }
    for k in &kids {
        let _ = nix::sys::wait::waitpid(*k, None);
    }
    result
}

/// Touches memory up to 64 MiB past the limit (at most 1 GiB + 64 MiB). The work is a fixed
/// number of bytes, never a race with a clock: it ends with the OOM killer's SIGKILL or ENOMEM
/// (the limit holds), or with every byte touched (it does not).
pub fn allocate_past_limit(limit: Option<u64>) -> Seen {
    let Some(limit) = limit else {
        return Seen::NotApplicable("no memory limit in the policy".into());
    };
    if limit > 1 << 30 {
        return Seen::NotApplicable(format!(
            "the {} MiB limit is more than the probe fills (1 GiB)",
            limit >> 20
        ));
    }
    let target = limit.saturating_add(64 << 20);
    let Ok(len) = usize::try_from(target) else {
        return Seen::Broken(format!("{target} bytes do not fit in an address"));
    };
    match crate::sys::touch_anonymous(len) {
        Ok(()) => Seen::Done(format!(
            "touched {} MiB, {} MiB past a {} MiB limit",
            target >> 20,
            (target - limit) >> 20,
            limit >> 20
        )),
        Err(e) => Seen::Errno(e),
    }
}

/// Asks the kernel, over a NETLINK_ROUTE socket, to change a network device (RTM_SETLINK for
/// an interface index that does not exist). Opening the socket and reading the namespace's
/// interfaces is allowed where the policy allows sockets; a change needs CAP_NET_ADMIN, which
/// rtnetlink checks before it looks the device up: EPERM means the sandbox stopped it, ENODEV
/// that the change got through (and harmlessly found no device).
pub fn netlink_change() -> Seen {
    use nix::sys::socket::{AddressFamily, SockFlag, SockProtocol, SockType, socket};
    let fd = match socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    ) {
        Ok(fd) => fd,
        Err(e) => return Seen::Errno(e),
    };
    const RTM_SETLINK: u16 = 19;
    const NLM_F_REQUEST_ACK: u16 = 0x1 | 0x4;
    const NLMSG_ERROR: u16 = 2;
    // struct nlmsghdr, then struct ifinfomsg { family, pad, type, index, flags, change }.
    let mut msg = Vec::with_capacity(32);
    msg.extend_from_slice(&32u32.to_ne_bytes());
    msg.extend_from_slice(&RTM_SETLINK.to_ne_bytes());
    msg.extend_from_slice(&NLM_F_REQUEST_ACK.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&[0, 0, 0, 0]);
    msg.extend_from_slice(&i32::MAX.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    // Unconnected, a netlink socket sends to the kernel.
    if let Err(e) = nix::unistd::write(&fd, &msg) {
        return Seen::Errno(e);
    }
    let mut buf = [0u8; 4096];
    let n = match nix::unistd::read(&fd, &mut buf) {
        Ok(n) => n,
        Err(e) => return Seen::Errno(e),
    };
    let field = |at: usize| -> Option<[u8; 4]> { buf.get(at..at + 4)?.try_into().ok() };
    let kind = buf
        .get(4..6)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map(u16::from_ne_bytes);
    match (n >= 20, kind, field(16).map(i32::from_ne_bytes)) {
        (true, Some(NLMSG_ERROR), Some(0)) => Seen::Done("RTM_SETLINK was accepted".into()),
        (true, Some(NLMSG_ERROR), Some(err)) => Seen::Errno(Errno::from_raw(-err)),
        _ => Seen::Broken(format!("unexpected netlink answer ({n} bytes)")),
    }
}

/// Writes into `dir` until the filesystem is full, at most its size plus 1 MiB.
pub fn fill_tmpfs(dir: &str, size: Option<u64>) -> Seen {
    let Some(size) = size else {
        return Seen::NotApplicable("no tmpfs of known size to fill".into());
    };
    if size > 256 << 20 {
        return Seen::NotApplicable(format!(
            "the {} MiB tmpfs is more than the probe fills (256 MiB)",
            size >> 20
        ));
    }
    let path = format!("{dir}/.kekkai-audit-fill");
    let r = (|| -> std::io::Result<u64> {
        let mut f = std::fs::File::create(&path)?;
        let block = vec![0u8; 1 << 20];
        let mut written = 0u64;
        while written <= size + (1 << 20) {
            f.write_all(&block)?;
            written += 1 << 20;
        }
        Ok(written)
    })();
    let _ = std::fs::remove_file(&path);
    match r {
        Ok(n) => Seen::Done(format!(
            "wrote {} MiB into a {} MiB tmpfs",
            n >> 20,
            size >> 20
        )),
        Err(e) => Seen::Errno(errno_of(&e)),
    }
}

/// Opens /dev/null until that fails, at most 1,048,576 times.
pub fn open_until_limit(limit: Option<u64>) -> Seen {
    let mut fds = Vec::new();
    loop {
        if fds.len() >= 1 << 20 {
            return Seen::Done(format!(
                "opened {} descriptors (limit {limit:?})",
                fds.len()
            ));
        }
        match std::fs::File::open("/dev/null") {
            Ok(f) => fds.push(f),
            Err(e) => return Seen::Errno(errno_of(&e)),
        }
    }
}

/// Judges what a probe saw.
pub fn verdict(p: &probes::Probe, seen: &Seen) -> (Verdict, String) {
    match seen {
        Seen::Errno(e) if p.blocked_by.contains(e) => (Verdict::Blocked, format!("{e:?}")),
        Seen::Errno(e) => (
            Verdict::Escaped,
            format!("{e:?} (the call got past the sandbox's checks)"),
        ),
        Seen::Done(d) => (Verdict::Escaped, d.clone()),
        Seen::Blocked(d) => (Verdict::Blocked, d.clone()),
        Seen::NotApplicable(d) => (Verdict::NotApplicable, d.clone()),
        // Killed by seccomp, by the OOM killer (or cgroup), or by a resource limit.
        Seen::Signal(s)
            if [libc::SIGSYS, libc::SIGKILL, libc::SIGXFSZ, libc::SIGXCPU].contains(s) =>
        {
            (Verdict::Blocked, format!("killed by {}", signal_name(*s)))
        }
        Seen::Signal(s) => (Verdict::Error, format!("killed by {}", signal_name(*s))),
        Seen::Broken(d) => (Verdict::Error, d.clone()),
    }
}

/// An escape the policy grants (`audit.grants`) is shown as such, and does not fail the audit.
fn granted(
    ctx: &Ctx,
    control: bool,
    name: &str,
    verdict: Verdict,
    detail: String,
) -> (Verdict, String) {
    if verdict == Verdict::Escaped && !control && ctx.grants.iter().any(|g| g == name) {
        (
            Verdict::NotApplicable,
            format!("granted by the policy (audit.grants): {detail}"),
        )
    } else {
        (verdict, detail)
    }
}

fn expectation_verdict(e: &Expectation, seen: &Seen) -> (Verdict, String) {
    let worked = matches!(seen, Seen::Done(_));
    let detail = match seen {
        Seen::Errno(x) => format!("{x:?}"),
        Seen::Done(d) | Seen::Blocked(d) | Seen::NotApplicable(d) | Seen::Broken(d) => d.clone(),
        Seen::Signal(s) => format!("killed by {}", signal_name(*s)),
    };
    if matches!(seen, Seen::Broken(_)) {
        return (Verdict::Error, detail);
    }
    match (e.deny, worked) {
        (true, false) | (false, true) => (Verdict::Blocked, detail),
        _ => (Verdict::Escaped, detail),
    }
}

fn signal_name(s: i32) -> String {
    nix::sys::signal::Signal::try_from(s)
        .map_or_else(|_| format!("signal {s}"), |sig| sig.to_string())
}

/// One line from inside the sandbox.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    name: String,
    seen: Seen,
}

/// How long a probe may go without a result before it is taken for hung. A watchdog for hangs
/// only, never a measure of speed: every probe's work is bounded (bytes, processes,
/// descriptors), and the slowest of them takes seconds even under software emulation.
pub const HANG_WATCHDOG_SECS: u32 = 600;

/// Runs one attempt in a forked process, so a probe that is killed can't take the battery
/// with it.
fn isolated(f: &dyn Fn() -> Seen) -> Seen {
    let Ok((rd, wr)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        return Seen::Broken("pipe".into());
    };
    match crate::sys::fork() {
        Ok(None) => {
            drop(rd);
            // A probe that hangs is an error, not a pass.
            nix::unistd::alarm::set(HANG_WATCHDOG_SECS);
            let seen = f();
            let bytes = serde_json::to_vec(&seen).unwrap_or_default();
            let _ = nix::unistd::write(&wr, &bytes);
            crate::sys::exit_now(0)
        }
        Ok(Some(pid)) => {
            drop(wr);
            let mut out = Vec::new();
            let mut file = std::fs::File::from(rd);
            let _ = file.read_to_end(&mut out);
            let status = nix::sys::wait::waitpid(pid, None);
            match (serde_json::from_slice::<Seen>(&out), status) {
                (Ok(seen), _) => seen,
                (Err(_), Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _))) => {
                    if sig == nix::sys::signal::Signal::SIGALRM {
                        Seen::Broken(format!("hung: no result after {HANG_WATCHDOG_SECS} s"))
                    } else {
                        Seen::Signal(sig as i32)
                    }
                }
                (Err(_), other) => Seen::Broken(format!("no result ({other:?})")),
            }
        }
        Err(e) => Seen::Broken(format!("fork: {e:?}")),
    }
}

/// The inside of an audit: `kekkai __probe battery CTX [CATEGORY]`. Prints one JSON line per
/// probe.
pub fn battery(ctx_json: &str, only: Option<&str>) -> i32 {
    let mut ctx: Ctx = match serde_json::from_str(ctx_json) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kekkai-probe: bad context: {e}");
            return 2;
        }
    };
    ctx.initial_fds = open_fds();
    let mut out = std::io::stdout().lock();
    for p in probes::all() {
        if only.is_some_and(|c| c != p.category) || (ctx.control && !p.control_safe) {
            continue;
        }
        let seen = isolated(&|| (p.run)(&ctx));
        let line = Line {
            name: p.name.to_owned(),
            seen,
        };
        let _ = writeln!(out, "{}", serde_json::to_string(&line).unwrap_or_default());
    }
    if only.is_none_or(|c| c == "expect") {
        for e in &ctx.expectations {
            let seen = isolated(&|| e.attempt());
            let line = Line {
                name: e.name(),
                seen,
            };
            let _ = writeln!(out, "{}", serde_json::to_string(&line).unwrap_or_default());
        }
    }
    0
}

/// This process's open descriptors, not counting the one used to list them.
fn open_fds() -> Vec<String> {
    let Ok(mut dir) = nix::dir::Dir::open(
        "/proc/self/fd",
        nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    ) else {
        return Vec::new();
    };
    let own = dir.as_raw_fd().to_string();
    let mut fds: Vec<String> = dir
        .iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "." && n != ".." && *n != own)
        .collect();
    fds.sort();
    fds
}

/// The whole audit's result.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// The policy's name.
    pub policy: String,
    /// Its hash.
    pub hash: String,
    /// Run unsandboxed (`--control`).
    pub control: bool,
    /// Per probe.
    pub probes: Vec<ProbeReport>,
    /// What the sandbox's run said about itself (limits that fired, layers a best-effort
    /// policy dropped, anything the battery wrote to stderr): context for the verdicts, kept
    /// here rather than on the launcher's stderr.
    pub notes: Vec<String>,
    /// Counts.
    pub summary: Summary,
}

/// Counts by verdict.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Blocked.
    pub blocked: usize,
    /// Escaped.
    pub escaped: usize,
    /// Not applicable.
    pub not_applicable: usize,
    /// Errors.
    pub errors: usize,
}

impl AuditReport {
    /// Did everything hold (no escape, no broken probe)?
    pub fn passed(&self) -> bool {
        self.summary.escaped == 0 && self.summary.errors == 0
    }

    /// The human table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<32} {:<11} {:<15} {:<22} {}\n",
            "PROBE", "CATEGORY", "VERDICT", "LAYER", "DETAIL"
        );
        for p in &self.probes {
            let v = match p.verdict {
                Verdict::Blocked => "blocked",
                Verdict::Escaped => "ESCAPED",
                Verdict::NotApplicable => "n/a",
                Verdict::Error => "ERROR",
            };
            s.push_str(&format!(
                "{:<32} {:<11} {:<15} {:<22} {}\n",
                p.name, p.category, v, p.layer, p.detail
            ));
        }
        for n in &self.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        let m = &self.summary;
        s.push_str(&format!(
            "{} probes{}: {} blocked, {} escaped, {} not applicable, {} errors\n",
            self.probes.len(),
            if self.control {
                " (control run, unsandboxed)"
            } else {
                ""
            },
            m.blocked,
            m.escaped,
            m.not_applicable,
            m.errors
        ));
        s
    }
}

/// Turns the battery's output into the report.
pub fn judge(
    plan_name: &str,
    hash: &str,
    control: bool,
    output: &str,
    only: Option<&str>,
    ctx: &Ctx,
) -> AuditReport {
    let lines: Vec<Line> = output
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut report = AuditReport {
        policy: plan_name.to_owned(),
        hash: hash.to_owned(),
        control,
        probes: Vec::new(),
        notes: Vec::new(),
        summary: Summary::default(),
    };
    let seen_of = |name: &str| {
        lines
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.seen.clone())
    };
    for p in probes::all() {
        if only.is_some_and(|c| c != p.category) || (control && !p.control_safe) {
            continue;
        }
        let (verdict, detail) = match seen_of(p.name) {
            Some(seen) => verdict(&p, &seen),
            None => (Verdict::Error, "the probe did not report".into()),
        };
        let (verdict, detail) = granted(ctx, control, p.name, verdict, detail);
        report.probes.push(ProbeReport {
            name: p.name.into(),
            category: p.category.into(),
            layer: p.layer.into(),
            verdict,
            detail,
        });
    }
    if only.is_none_or(|c| c == "expect") {
        for e in &ctx.expectations {
            let (verdict, detail) = match seen_of(&e.name()) {
                Some(seen) => expectation_verdict(e, &seen),
                None => (Verdict::Error, "the probe did not report".into()),
            };
            report.probes.push(ProbeReport {
                name: e.name(),
                category: "expect".into(),
                layer: "policy".into(),
                verdict,
                detail,
            });
        }
    }
    for p in &report.probes {
        match p.verdict {
            Verdict::Blocked => report.summary.blocked += 1,
            Verdict::Escaped => report.summary.escaped += 1,
            Verdict::NotApplicable => report.summary.not_applicable += 1,
            Verdict::Error => report.summary.errors += 1,
        }
    }
    report
}

/// The notes for the report from the sandbox's run: its `--report` record (`None` for a
/// control run) and what it wrote to stderr. A limit firing is the expected result of a
/// resource probe, and is said as such.
pub fn run_notes(plan: &Plan, run: Option<&serde_json::Value>, stderr: &[u8]) -> Vec<String> {
    let mut notes: Vec<String> = plan
        .protected
        .iter()
        .map(|p| format!("the policy's hiding holds over {p}"))
        .collect();
    if let Some(r) = run {
        let flag = |k: &str| r["ended"][k].as_bool().unwrap_or(false);
        let list = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let dropped = list(&r["enforced"]["cgroup_dropped"]);
        if !dropped.is_empty() {
            notes.push(format!(
                "cgroup limits (best-effort) dropped: {}",
                dropped.join("; ")
            ));
        }
        let dropped = list(&r["enforced"]["landlock"]["dropped"]);
        if !dropped.is_empty() {
            notes.push(format!(
                "landlock (best-effort) dropped: {}",
                dropped.join("; ")
            ));
        }
        if flag("oom_killed") {
            let limit = plan
                .limits
                .memory
                .map_or_else(|| "?".into(), crate::explain::size);
            notes.push(format!(
                "the memory limit ({limit}) OOM-killed a process in the sandbox, as resources.memory expects"
            ));
        }
        if flag("pids_limit_hit") {
            notes.push(format!(
                "fork failed at the pids limit ({}), as resources.fork-bomb expects",
                plan.limits.pids.unwrap_or_default()
            ));
        }
        if let Some([program, errno]) = r["ended"]["exec_error"].as_array().map(Vec::as_slice) {
            notes.push(format!(
                "the battery could not be executed: {} ({})",
                program.as_str().unwrap_or_default(),
                errno.as_str().unwrap_or_default()
            ));
        }
        if flag("timed_out") {
            notes.push(format!(
                "the policy's timeout ({:?}) ended the battery; probes that had not reported are errors",
                plan.timeout.unwrap_or_default()
            ));
        }
    }
    for line in String::from_utf8_lossy(stderr).lines() {
        let line = line.trim();
        if !line.is_empty() {
            notes.push(format!("stderr: {line}"));
        }
    }
    notes
}

/// The probe context for a plan (the plan-derived part; fixtures are added by the caller).
pub fn context(plan: &Plan) -> Ctx {
    // Writable mounts that no later mount covers.
    let writable: Vec<(&Path, Option<u64>)> = plan
        .mounts
        .iter()
        .enumerate()
        .filter(|(i, m)| {
            !plan
                .mounts
                .iter()
                .skip(i + 1)
                .any(|later| m.target.starts_with(&later.target))
        })
        .filter_map(|(_, m)| match &m.kind {
            MountKind::Tmpfs { size, .. } => Some((m.target.as_path(), Some(*size))),
            MountKind::Bind { writable: true, .. } => Some((m.target.as_path(), None)),
            _ => None,
        })
        .collect();
    let scratch = writable
        .iter()
        .find(|(p, _)| *p == Path::new("/tmp"))
        .or_else(|| writable.first())
        .copied();
    let ll = &plan.landlock;
    let hidden: Vec<&Path> = plan
        .mounts
        .iter()
        .filter(|m| matches!(m.kind, MountKind::Hide))
        .map(|m| m.target.as_path())
        .collect();
    let visible = |p: &Path| {
        !hidden.iter().any(|h| p.starts_with(h))
            && !plan.mounts.iter().any(|m| p.starts_with(&m.target))
    };
    // What the run will drop from a best-effort policy's limits, decided as the run will.
    let layout =
        crate::launch::cgroup::detect(&plan.limits, &crate::launch::cgroup::Hierarchies::read());
    // On cgroup v2 the `kekkai run` this audit starts would find the audit beside it in a
    // cgroup that must hold no processes: step aside first, as that run would (best effort:
    // the run reports its own failure).
    let _ = crate::launch::cgroup::make_room(&layout);
    let dropped = |c: crate::launch::cgroup::Controller| {
        layout
            .choices
            .iter()
            .find(|(x, r)| *x == c && r.is_err())
            .and_then(|(_, r)| r.clone().err())
    };
    // Targets come from the rules even when Landlock is off, so that a policy that turns it
    // off shows what gets through.
    let (read_target, exec_target) = landlock_targets(plan, &visible);
    Ctx {
        control: false,
        scratch: scratch.map_or_else(|| "/tmp".into(), |(p, _)| p.display().to_string()),
        scratch_size: scratch.and_then(|(_, s)| s),
        host_network: plan.network == Network::Host,
        abstract_scope: ll.enabled && ll.scopes.contains(&Scope::AbstractUnix),
        pid_namespace: plan.has(crate::policy::model::Namespace::Pid),
        kept_caps: plan.caps.keep,
        pids_limit: plan.limits.pids,
        dropped_pids: dropped(crate::launch::cgroup::Controller::Pids),
        dropped_memory: dropped(crate::launch::cgroup::Controller::Memory),
        memory_limit: plan.limits.memory,
        nofile_limit: plan
            .rlimits
            .iter()
            .find(|r| r.name == "nofile")
            .map(|r| r.value),
        landlock_read_target: read_target,
        landlock_exec_target: exec_target,
        landlock_write_target: scratch.map(|(p, _)| p.display().to_string()),
        landlock_write_denied: writable
            .iter()
            .find(|(p, _)| ll.enabled && !allows(ll, p, access::WRITE_FILE | access::MAKE_REG))
            .map(|(p, _)| p.display().to_string()),
        root_writable: plan.rootfs.writable,
        hidden_path: hidden.first().map(|p| p.display().to_string()),
        writable_mounts: writable
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect(),
        limits: plan.limits.parts().into_iter().map(|(_, t)| t).collect(),
        dropped_limits: layout.missing(),
        as_pid_1: plan.as_pid_1,
        grants: plan.audit_grants.clone(),
        ..Ctx::default()
    }
}

/// A file the mount table shows but Landlock's read rules don't cover, and an executable that
/// Landlock's execute rules don't cover (only when the root is the host's own tree).
fn landlock_targets(
    plan: &Plan,
    visible: &dyn Fn(&Path) -> bool,
) -> (Option<String>, Option<String>) {
    use std::os::unix::fs::PermissionsExt;
    let ll = &plan.landlock;
    let mut read: Option<String> = None;
    let mut exec: Option<String> = None;
    if plan.rootfs.lowers.iter().all(|l| l != Path::new("/")) {
        return (None, None);
    }
    let mut dirs = vec![PathBuf::from("/")];
    let mut seen = 0;
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(Result::ok).take(200) {
            seen += 1;
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                if d.components().count() < 4
                    && !p.starts_with("/proc")
                    && !p.starts_with("/sys")
                    && !p.starts_with("/dev")
                {
                    dirs.insert(0, p);
                }
                continue;
            }
            if !meta.is_file() || !visible(&p) {
                continue;
            }
            if read.is_none() && !allows(ll, &p, access::READ_FILE) {
                read = Some(p.display().to_string());
            }
            let executable = meta.permissions().mode() & 0o111 != 0;
            if exec.is_none()
                && executable
                && allows(ll, &p, access::READ_FILE)
                && !allows(ll, &p, access::EXECUTE)
            {
                exec = Some(p.display().to_string());
            }
        }
        if (read.is_some() && exec.is_some()) || seen > 20_000 {
            break;
        }
    }
    (read, exec)
}

/// Host fixtures, kept alive while the sandbox runs.
pub struct Fixtures {
    _tcp: Option<std::net::TcpListener>,
    _abstract: Option<std::os::unix::net::UnixListener>,
    shm_id: Option<i32>,
    secret_dir: Option<PathBuf>,
}

/// Where the root-owned secret fixture appears inside the sandbox (a read-only bind, which
/// gives Landlock a read rule for it: only the file's owner and mode stand in the way).
pub const SECRET_PATH: &str = "/.kekkai-audit-secret";

impl Fixtures {
    /// The root-owned 0600 file on the host, to bind at [`SECRET_PATH`].
    pub fn secret_file(&self) -> Option<PathBuf> {
        self.secret_dir.as_ref().map(|d| d.join("secret"))
    }
}

/// A root-owned 0600 file of random bytes in a fresh 0700 directory (the audit runs as root).
fn make_secret() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = std::env::temp_dir().join(format!(
        "kekkai-audit-secret-{}-{:x}",
        std::process::id(),
        random_u64()
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    let made = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join("secret"))
        .and_then(|mut f| f.write_all(format!("{:016x}\n", random_u64()).as_bytes()));
    if let Err(e) = made {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    Ok(dir)
}

impl Drop for Fixtures {
    fn drop(&mut self) {
        if let Some(dir) = &self.secret_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(id) = self.shm_id {
            let _ = crate::sys::shm_remove(id);
        }
    }
}

/// Sets up the host side and fills the fixture part of the context.
pub fn fixtures(ctx: &mut Ctx) -> Fixtures {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").ok();
    ctx.tcp_port = tcp
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.port());
    let name = format!("kekkai-audit-{}-{}", std::process::id(), random_u64());
    let abstract_sock = {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|a| std::os::unix::net::UnixListener::bind_addr(&a))
            .ok()
    };
    if abstract_sock.is_some() {
        ctx.abstract_name = Some(name);
    }
    let key = (random_u64() & 0x3fff_ffff) as i32 | 1;
    // IPC_CREAT | IPC_EXCL | 0600
    let shm_id = crate::sys::shmget(key, 4096, 0o1000 | 0o2000 | 0o600).ok();
    if shm_id.is_some() {
        ctx.shm_key = Some(key);
    }
    ctx.host_pid = i32::try_from(std::process::id()).ok();
    ctx.secret = Some(format!("kekkai-audit-secret-{:016x}", random_u64()));
    // Root's secrets: a 0600 file only root can make, and the host's own /etc/shadow.
    let secret_dir = if nix::unistd::geteuid().is_root() {
        make_secret().ok()
    } else {
        None
    };
    ctx.root_secret = secret_dir.as_ref().map(|d| {
        if ctx.control {
            d.join("secret").display().to_string()
        } else {
            SECRET_PATH.to_owned()
        }
    });
    ctx.shadow = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/etc/shadow")
            .ok()
            .filter(|m| m.is_file() && m.uid() == 0 && m.mode() & 0o004 == 0)
            .map(|_| "/etc/shadow".to_owned())
    };
    Fixtures {
        _tcp: tcp,
        _abstract: abstract_sock,
        shm_id,
        secret_dir,
    }
}

/// A random number (from the standard library's randomly keyed hasher).
fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::process::id())
}

/// Where the copy of kekkai appears inside the sandbox.
pub const PROBE_PATH: &str = "/.kekkai-audit-probe";

/// A private, world-readable copy of this executable (so the sandbox never sees a writable host
/// binary), removed on drop.
pub struct ProbeCopy {
    dir: PathBuf,
}

impl ProbeCopy {
    /// Copies /proc/self/exe into a new directory of the temp dir. The directory is created
    /// with mode 0755 (never wider, whatever the umask) and the copy with `O_EXCL` through one
    /// descriptor: nobody else can put a name there first, so a link planted in the shared temp
    /// dir can't turn the copy into a write to another file.
    pub fn new() -> std::io::Result<ProbeCopy> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let dir = std::env::temp_dir().join(format!(
            "kekkai-audit-{}-{:x}",
            std::process::id(),
            random_u64()
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let copy = ProbeCopy { dir };
        let mut exe = std::fs::File::open("/proc/self/exe")?;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .custom_flags(libc::O_NOFOLLOW)
            .open(copy.path())?;
        std::io::copy(&mut exe, &mut out)?;
        out.set_permissions(std::fs::Permissions::from_mode(0o555))?;
        // Searchable by everyone only once the copy is complete (the sandbox may run as nobody).
        std::fs::set_permissions(&copy.dir, std::fs::Permissions::from_mode(0o755))?;
        Ok(copy)
    }

    /// The copy's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join("kekkai")
    }

    /// Where the sandbox's run writes its `--report` (beside the copy, which the sandbox sees
    /// alone; the directory is this process's own, writable by nobody else).
    pub fn run_report(&self) -> PathBuf {
        self.dir.join("run-report.json")
    }
}

impl Drop for ProbeCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The battery's command line inside the sandbox.
pub fn battery_command(ctx: &Ctx, only: Option<&str>) -> Vec<OsString> {
    let mut cmd: Vec<OsString> = vec![
        PROBE_PATH.into(),
        "__probe".into(),
        "battery".into(),
        serde_json::to_string(ctx).unwrap_or_default().into(),
    ];
    if let Some(c) = only {
        cmd.push(c.into());
    }
    cmd
}
