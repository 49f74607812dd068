//! The plan's own words for the choices a policy makes: which namespaces, which network, how
//! strictly a layer is enforced, which Landlock scopes and seccomp preset, whether privileges
//! may reach the host, how the program meets a terminal.
//!
//! The policy model (`policy::model`) has an enum for each of these too, but those are the
//! YAML language: serde spellings, JSON Schema text, every field optional so that `extends` can
//! merge them. These are what the launch acts on, with nothing of the file format in them;
//! `compile` maps one to the other ([`From`] below) and the layers above the plan (launch,
//! export, audit, explain) name only these. A test checks that each pair has the same members
//! and the same names.

use crate::policy::model;

/// A Linux namespace type, in the order the plan sorts them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Namespace {
    /// User namespace: ids and capabilities of its own.
    User,
    /// Mount namespace: a mount table of its own.
    Mount,
    /// PID namespace: the sandbox sees only its own processes.
    Pid,
    /// Network namespace: interfaces, routes and sockets of its own.
    Net,
    /// IPC namespace: System V IPC and POSIX message queues of its own.
    Ipc,
    /// UTS namespace: host name of its own.
    Uts,
    /// cgroup namespace: the sandbox's cgroup appears as the root.
    Cgroup,
    /// Time namespace: monotonic and boot clocks of its own.
    Time,
}

impl Namespace {
    /// The name `explain`, the run report and errors show (the policy's word for it).
    pub fn name(self) -> &'static str {
        match self {
            Namespace::User => "user",
            Namespace::Mount => "mount",
            Namespace::Pid => "pid",
            Namespace::Net => "net",
            Namespace::Ipc => "ipc",
            Namespace::Uts => "uts",
            Namespace::Cgroup => "cgroup",
            Namespace::Time => "time",
        }
    }

    /// Its CLONE_NEW* flag.
    pub fn clone_flag(self) -> u64 {
        let flag = match self {
            Namespace::User => libc::CLONE_NEWUSER,
            Namespace::Mount => libc::CLONE_NEWNS,
            Namespace::Pid => libc::CLONE_NEWPID,
            Namespace::Net => libc::CLONE_NEWNET,
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Uts => libc::CLONE_NEWUTS,
            Namespace::Cgroup => libc::CLONE_NEWCGROUP,
            Namespace::Time => 0x80, // CLONE_NEWTIME
        };
        u64::try_from(flag).unwrap_or(0)
    }
}

impl From<model::Namespace> for Namespace {
    fn from(ns: model::Namespace) -> Self {
        match ns {
            model::Namespace::User => Namespace::User,
            model::Namespace::Mount => Namespace::Mount,
            model::Namespace::Pid => Namespace::Pid,
            model::Namespace::Net => Namespace::Net,
            model::Namespace::Ipc => Namespace::Ipc,
            model::Namespace::Uts => Namespace::Uts,
            model::Namespace::Cgroup => Namespace::Cgroup,
            model::Namespace::Time => Namespace::Time,
        }
    }
}

/// The program's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Network {
    /// A network namespace of its own, loopback up, nothing else.
    None,
    /// The host's network namespace.
    Host,
    /// A network namespace of its own, connected to the outside through pasta.
    User,
}

impl Network {
    /// The policy's word for it.
    pub fn name(self) -> &'static str {
        match self {
            Network::None => "none",
            Network::Host => "host",
            Network::User => "user",
        }
    }
}

impl From<model::NetworkMode> for Network {
    fn from(n: model::NetworkMode) -> Self {
        match n {
            model::NetworkMode::None => Network::None,
            model::NetworkMode::Host => Network::Host,
            model::NetworkMode::User => Network::User,
        }
    }
}

/// What happens when the kernel or the host can't enforce a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Compat {
    /// Refuse to run unless everything asked for is enforced.
    Hard,
    /// Enforce what can be, and report what was dropped.
    BestEffort,
}

impl Compat {
    /// The policy's word for it.
    pub fn name(self) -> &'static str {
        match self {
            Compat::Hard => "hard",
            Compat::BestEffort => "best-effort",
        }
    }
}

impl From<model::Compat> for Compat {
    fn from(c: model::Compat) -> Self {
        match c {
            model::Compat::Hard => Compat::Hard,
            model::Compat::BestEffort => Compat::BestEffort,
        }
    }
}

/// What an out-of-memory kill ends (`limits.oom`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Oom {
    /// Every process of the sandbox, together.
    Sandbox,
    /// The one process the OOM killer chose.
    #[default]
    Process,
}

impl Oom {
    /// The policy's word for it.
    pub fn name(self) -> &'static str {
        match self {
            Oom::Sandbox => "sandbox",
            Oom::Process => "process",
        }
    }
}

impl From<model::Oom> for Oom {
    fn from(o: model::Oom) -> Self {
        match o {
            model::Oom::Sandbox => Oom::Sandbox,
            model::Oom::Process => Oom::Process,
        }
    }
}

/// An IPC scope Landlock confines to the sandbox (ABI 6).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Scope {
    /// No connecting to abstract unix sockets created outside the sandbox.
    AbstractUnix,
    /// No signals to processes outside the sandbox.
    Signal,
}

impl Scope {
    /// The policy's word for it.
    pub fn name(self) -> &'static str {
        match self {
            Scope::AbstractUnix => "abstract-unix",
            Scope::Signal => "signal",
        }
    }
}

impl From<model::Scope> for Scope {
    fn from(s: model::Scope) -> Self {
        match s {
            model::Scope::AbstractUnix => Scope::AbstractUnix,
            model::Scope::Signal => Scope::Signal,
        }
    }
}

/// The seccomp allowlist a filter starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Preset {
    /// What ordinary programs use; everything else is denied.
    Default,
    /// A smaller list for programs that only compute and do file I/O.
    Strict,
    /// Everything allowed, what `default` would deny logged.
    Log,
    /// No allowlist.
    None,
    /// An allowlist of exactly the policy's `allow` rules.
    Empty,
}

impl From<model::Preset> for Preset {
    fn from(p: model::Preset) -> Self {
        match p {
            model::Preset::Default => Preset::Default,
            model::Preset::Strict => Preset::Strict,
            model::Preset::Log => Preset::Log,
            model::Preset::None => Preset::None,
            model::Preset::Empty => Preset::Empty,
        }
    }
}

/// Whether the program may hold or leave privileges on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HostPrivileges {
    /// Never host root; no capability that reaches host files or ids; no setuid, setgid or
    /// device files.
    Deny,
    /// Host root and privileged files are the policy's choice.
    Allow,
}

impl From<model::HostPrivileges> for HostPrivileges {
    fn from(h: model::HostPrivileges) -> Self {
        match h {
            model::HostPrivileges::Deny => HostPrivileges::Deny,
            model::HostPrivileges::Allow => HostPrivileges::Allow,
        }
    }
}

/// How the program meets the caller's terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Terminal {
    /// A new pseudo-terminal, relayed by the supervisor, in place of each terminal descriptor.
    Pty,
    /// The caller's terminal and session, shared.
    Inherit,
    /// No terminal: stdin from /dev/null, stdout and stderr through a pipe, when they are
    /// terminals.
    None,
}

impl From<model::Terminal> for Terminal {
    fn from(t: model::Terminal) -> Self {
        match t {
            model::Terminal::Pty => Terminal::Pty,
            model::Terminal::Inherit => Terminal::Inherit,
            model::Terminal::None => Terminal::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy's spelling of a model value (its serde name).
    fn spelled<T: serde::Serialize>(v: T) -> String {
        serde_yaml::to_string(&v)
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    #[test]
    fn the_plans_words_are_the_policys() {
        for ns in model::Namespace::ALL {
            assert_eq!(Namespace::from(ns).name(), ns.name());
            assert_eq!(Namespace::from(ns).name(), spelled(ns));
        }
        // The plan sorts namespaces as the model did.
        let sorted: Vec<Namespace> = model::Namespace::ALL.map(Namespace::from).to_vec();
        let mut resorted = sorted.clone();
        resorted.sort();
        assert_eq!(sorted, resorted);
        for c in [model::Compat::Hard, model::Compat::BestEffort] {
            assert_eq!(Compat::from(c).name(), spelled(c));
        }
        for o in [model::Oom::Sandbox, model::Oom::Process] {
            assert_eq!(Oom::from(o).name(), spelled(o));
        }
        for s in [model::Scope::AbstractUnix, model::Scope::Signal] {
            assert_eq!(Scope::from(s).name(), spelled(s));
        }
        for p in [
            model::Preset::Default,
            model::Preset::Strict,
            model::Preset::Log,
            model::Preset::None,
            model::Preset::Empty,
        ] {
            // explain shows a preset by its Debug name, lowercased.
            assert_eq!(format!("{:?}", Preset::from(p)).to_lowercase(), spelled(p));
        }
        for n in [
            model::NetworkMode::None,
            model::NetworkMode::Host,
            model::NetworkMode::User,
        ] {
            assert_eq!(format!("{:?}", Network::from(n)).to_lowercase(), spelled(n));
            assert_eq!(Network::from(n).name(), spelled(n));
        }
        for h in [model::HostPrivileges::Deny, model::HostPrivileges::Allow] {
            assert_eq!(
                format!("{:?}", HostPrivileges::from(h)).to_lowercase(),
                spelled(h)
            );
        }
        for t in [
            model::Terminal::Pty,
            model::Terminal::Inherit,
            model::Terminal::None,
        ] {
            assert_eq!(
                format!("{:?}", Terminal::from(t)).to_lowercase(),
                spelled(t)
            );
        }
    }
}
