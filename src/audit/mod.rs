//! `kekkai audit`: run a battery of escape probes inside a sandbox, and judge on the host
//! whether the sandbox stopped each one.
//!
//! The sandbox is one kekkai builds from a policy, another launcher's (`--wrap`), or whatever
//! runs the probe program by hand; the host side does not care which. It sets up fixtures the
//! probes try to reach (a loopback TCP listener, an abstract unix socket, a SysV shared-memory
//! segment, a secret in the launcher's environment, its own pid, a root-owned file, a
//! pseudo-terminal that plays the caller's), copies the probe program into a private directory
//! (so no writable host binary is ever exposed), and runs it with the context as an argument.
//! Inside, each probe runs in its own forked process so that a probe the sandbox kills (SIGSYS)
//! can't take the battery with it; each prints one JSON line. The host turns what each probe saw
//! into a verdict: blocked, escaped, not applicable (the policy grants it, there is nothing to
//! try, or kekkai can't judge it without knowing the policy), or error — a probe that did not
//! report is an error, never a pass. A protection the policy asks for and this host can't give
//! (a best-effort limit without a cgroup) is an escape, never "not applicable"; an escape the
//! policy lets through on purpose is named in its `audit.grants` and shown as granted.
//!
//! Where each part lives: [`host`] (the probe context from the plan, the fixtures, the copy of
//! the probe), [`harness`] (what a policy that does not let the battery start allows its harness,
//! and how the probes are judged anyway), [`program`] (which program runs the battery, and how it is linked), [`wrap`]
//! (another launcher's command line), [`terminal`] (the pseudo-terminal that plays the
//! caller's), [`battery`] (the inside, and the probe program's command line), [`inside`] (the
//! helpers the probes call), [`probes`] (the table), [`report`] (verdicts, the table and the
//! notes), [`format`](mod@format) (JUnit, SARIF, TAP), [`baseline`] (saved verdicts and
//! regressions), [`compare`] (the matrix of several sandboxes), [`portable`] (the probe's
//! loader and libraries in an image). This file holds what both sides share: the context passed
//! in, what a probe saw, the line it prints.

pub mod baseline;
pub mod battery;
pub mod compare;
pub mod format;
pub mod harness;
pub mod host;
pub mod inside;
pub mod portable;
pub mod probes;
pub mod program;
pub mod report;
pub mod terminal;
pub mod wrap;

use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::sys::stat::fstat;
use serde::{Deserialize, Serialize};

use crate::plan::expect::Expectation;

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
    /// The policy gives `network: user` (pasta, the egress rules).
    #[serde(default)]
    pub user_network: bool,
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
    /// Who built the sandbox: kekkai from a policy it compiled (it knows the policy), or
    /// another launcher (`audit --wrap`) or nobody known (the probe run by hand), whose
    /// policy kekkai can't know.
    #[serde(default)]
    pub built_by: Builder,
    /// The battery's own temporary directory, made inside at the start and removed at the end
    /// (filled in inside): the probes that write, write there.
    #[serde(default)]
    pub own_dir: Option<String>,
    /// The battery's pid inside (filled in inside): 1 when the sandbox runs it as its PID 1.
    #[serde(default)]
    pub battery_pid: i32,
}

/// Who built the sandbox the battery runs in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Builder {
    /// kekkai, from a policy it compiled: the context holds the policy's promises.
    #[default]
    Kekkai,
    /// Another launcher (`kekkai audit --wrap`): the host's fixtures are there, the policy is not.
    Wrapper,
    /// Unknown: the probe was run by hand, with no context from a host.
    Unknown,
}

impl Ctx {
    /// The context for a sandbox kekkai did not build: no policy known, and the strictest
    /// expectations (its own pid namespace and network, no capabilities kept).
    pub fn foreign(built_by: Builder) -> Ctx {
        Ctx {
            built_by,
            pid_namespace: true,
            ..Ctx::default()
        }
    }

    /// For a probe that needs to know the sandbox's policy (its Landlock rules, what it hides,
    /// the limits it promises): "not applicable" with the reason, when kekkai did not build
    /// the sandbox.
    pub fn unknown(&self, what: &str) -> Option<Seen> {
        (self.built_by != Builder::Kekkai).then(|| {
            Seen::NotApplicable(format!(
                "not judged: kekkai did not build this sandbox and does not know {what}"
            ))
        })
    }

    /// The directory the probes write in: the battery's own (`None` when no directory could
    /// be made, and then the probes that write are not applicable).
    pub fn writable_dir(&self) -> Result<&str, Seen> {
        self.own_dir
            .as_deref()
            .ok_or_else(|| Seen::NotApplicable("no writable directory for the probe".into()))
    }
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

/// One line from inside the sandbox: what the probe saw, and (for a reader of the probe's own
/// output) how the probe judges it; the host judges `seen` again, with the policy's grants.
#[derive(Debug, Serialize, Deserialize)]
pub struct Line {
    /// The probe's name.
    pub name: String,
    /// Its category.
    #[serde(default)]
    pub category: String,
    /// The layer expected to stop it.
    #[serde(default)]
    pub layer: String,
    /// The probe's own verdict (without the grants of a policy).
    #[serde(default)]
    pub verdict: Option<Verdict>,
    /// Why.
    #[serde(default)]
    pub detail: String,
    /// What it saw.
    pub seen: Seen,
}

/// Where the copy of the probe program appears inside a sandbox kekkai builds.
pub const PROBE_PATH: &str = "/.kekkai-audit-probe";

/// Where the root-owned secret fixture appears inside the sandbox (a read-only bind, which
/// gives Landlock a read rule for it: only the file's owner and mode stand in the way).
pub const SECRET_PATH: &str = "/.kekkai-audit-secret";

/// (filesystem, device) of a terminal descriptor: how the host side names the caller's terminal
/// ([`Ctx::caller_tty`]) and the probes recognise it.
pub fn identity(fd: BorrowedFd<'_>) -> Option<(u64, u64)> {
    let st = fstat(fd).ok()?;
    (st.st_mode & libc::S_IFMT == libc::S_IFCHR).then_some((st.st_dev, st.st_rdev))
}
