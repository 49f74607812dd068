//! Landlock's system calls, through the landlock crate: create a ruleset that handles every
//! filesystem right of the given ABI (and TCP bind/connect, scopes when asked), add the rules,
//! restrict this thread, and return what the kernel answered. What to ask for (and whether a
//! missing feature is fatal) is decided before, in `launch::landlock`, from the plan.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath,
    Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};

/// LANDLOCK_SCOPE_* bits (linux/landlock.h).
pub mod scope {
    /// Abstract unix sockets made outside the sandbox can't be connected to.
    pub const ABSTRACT_UNIX_SOCKET: u64 = 1;
    /// Processes outside the sandbox can't be signalled.
    pub const SIGNAL: u64 = 2;
}

/// A ruleset to enforce, in the kernel's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LandlockRuleset {
    /// The running kernel's ABI: every filesystem right it knows is handled.
    pub abi: i32,
    /// TCP bind is handled (only `bind_ports` may be bound).
    pub tcp_bind: bool,
    /// TCP connect is handled (only `connect_ports` may be connected to).
    pub tcp_connect: bool,
    /// [`scope`] bits.
    pub scopes: u64,
    /// Path rules: the path and the LANDLOCK_ACCESS_FS_* rights asked for it (reduced to
    /// what the ABI handles, and to a file's rights when the path is not a directory).
    pub paths: Vec<(PathBuf, u64)>,
    /// Ports that may be bound.
    pub bind_ports: Vec<u16>,
    /// Ports that may be connected to.
    pub connect_ports: Vec<u16>,
}

/// What `landlock_restrict_self` reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    /// Everything asked for is enforced.
    Full,
    /// Some of it.
    Partial,
    /// None of it.
    None,
}

/// The outcome of [`restrict`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandlockStatus {
    /// How much of the ruleset the kernel enforces.
    pub enforcement: Enforcement,
    /// no_new_privs is set.
    pub no_new_privs: bool,
    /// Rule paths that could not be opened (they grant nothing), in rule order.
    pub absent: Vec<PathBuf>,
}

/// A Landlock call that failed, with the crate's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LandlockError {
    /// Building or creating the ruleset.
    Ruleset(String),
    /// Adding a path rule: the path, the rights asked (as in the ruleset), the message.
    Path(PathBuf, u64, String),
    /// Adding a port rule.
    Port(u16, String),
    /// `landlock_restrict_self`.
    Restrict(String),
}

/// Creates the ruleset, adds the rules and restricts the calling thread.
pub fn restrict(rs: &LandlockRuleset) -> Result<LandlockStatus, LandlockError> {
    let ruleset_err = |e: &dyn std::fmt::Display| LandlockError::Ruleset(e.to_string());
    let abi = ABI::from(rs.abi);
    let fs_handled: BitFlags<AccessFs> = AccessFs::from_all(abi);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(fs_handled)
        .map_err(|e| ruleset_err(&e))?;
    if rs.tcp_bind {
        ruleset = ruleset
            .handle_access(AccessNet::BindTcp)
            .map_err(|e| ruleset_err(&e))?;
    }
    if rs.tcp_connect {
        ruleset = ruleset
            .handle_access(AccessNet::ConnectTcp)
            .map_err(|e| ruleset_err(&e))?;
    }
    if rs.scopes != 0 {
        let scopes = BitFlags::<Scope>::from_bits_truncate(rs.scopes);
        ruleset = ruleset.scope(scopes).map_err(|e| ruleset_err(&e))?;
    }
    let mut created = ruleset.create().map_err(|e| ruleset_err(&e))?;
    let file_rights = AccessFs::from_file(abi);
    let mut absent = Vec::new();
    // A path named by several rules gets one rule with the union of their rights: what the
    // kernel grants for two rules on one object anyway, for one open and one add_rule.
    let mut paths: Vec<(&PathBuf, u64)> = Vec::with_capacity(rs.paths.len());
    for (path, access) in &rs.paths {
        match paths.iter_mut().find(|(p, _)| *p == path) {
            Some((_, a)) => *a |= *access,
            None => paths.push((path, *access)),
        }
    }
    for (path, access) in paths {
        let Some((fd, is_dir)) = open_rule_path(path) else {
            absent.push(path.clone());
            continue;
        };
        // A rule on a file takes only the file rights.
        let mut rights = BitFlags::<AccessFs>::from_bits_truncate(access) & fs_handled;
        if !is_dir {
            rights &= file_rights;
        }
        if rights.is_empty() {
            continue;
        }
        created = created
            .add_rule(PathBeneath::new(fd, rights))
            .map_err(|e| LandlockError::Path(path.clone(), access, e.to_string()))?;
    }
    for (ports, right) in [
        (&rs.bind_ports, AccessNet::BindTcp),
        (&rs.connect_ports, AccessNet::ConnectTcp),
    ] {
        for port in ports {
            created = created
                .add_rule(NetPort::new(*port, right))
                .map_err(|e| LandlockError::Port(*port, e.to_string()))?;
        }
    }
    let status = created
        .restrict_self()
        .map_err(|e| LandlockError::Restrict(e.to_string()))?;
    Ok(LandlockStatus {
        enforcement: match status.ruleset {
            RulesetStatus::FullyEnforced => Enforcement::Full,
            RulesetStatus::PartiallyEnforced => Enforcement::Partial,
            RulesetStatus::NotEnforced => Enforcement::None,
        },
        no_new_privs: status.no_new_privs,
        absent,
    })
}

/// Opens a rule's path (O_PATH, as the crate's `PathFd` does) and tells whether the descriptor
/// is a directory: an O_DIRECTORY open first, which succeeds only on one (every rule path of the
/// shipped policies), so no `fstat` is needed for it; where the path is not a directory
/// (ENOTDIR), it is opened again without, and the descriptor is taken as a file, whatever it
/// names by then (a file's rights are a subset of a directory's: a directory that appeared
/// since gets less, never more). `None`: it can't be opened (it grants nothing).
fn open_rule_path(path: &std::path::Path) -> Option<(OwnedFd, bool)> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    let flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    match open(path, flags | OFlag::O_DIRECTORY, Mode::empty()) {
        Ok(fd) => Some((fd, true)),
        Err(nix::errno::Errno::ENOTDIR) => {
            open(path, flags, Mode::empty()).ok().map(|fd| (fd, false))
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rule path's descriptor and whether it is a directory: a directory, a file, a link to
    /// each, a missing path and a path through a file.
    #[test]
    fn rule_paths_open_with_their_type() {
        let dir = std::env::temp_dir().join(format!("kekkai-ll-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, b"").unwrap();
        let _ = std::fs::remove_file(dir.join("to-dir"));
        let _ = std::fs::remove_file(dir.join("to-file"));
        std::os::unix::fs::symlink(&dir, dir.join("to-dir")).unwrap();
        std::os::unix::fs::symlink(&file, dir.join("to-file")).unwrap();
        let kind = |p: &std::path::Path| open_rule_path(p).map(|(_, is_dir)| is_dir);
        assert_eq!(kind(&dir), Some(true));
        assert_eq!(kind(&file), Some(false));
        assert_eq!(kind(&dir.join("to-dir")), Some(true));
        assert_eq!(kind(&dir.join("to-file")), Some(false));
        assert_eq!(kind(&dir.join("missing")), None);
        assert_eq!(kind(&file.join("below")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The scope bits are the kernel's, as the landlock crate spells them.
    #[test]
    fn scope_bits_are_the_kernels() {
        assert_eq!(
            BitFlags::from(Scope::AbstractUnixSocket).bits(),
            scope::ABSTRACT_UNIX_SOCKET
        );
        assert_eq!(BitFlags::from(Scope::Signal).bits(), scope::SIGNAL);
    }
}
