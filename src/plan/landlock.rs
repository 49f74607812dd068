//! Landlock: unprivileged access control on paths, TCP ports and IPC scopes.
//!
//! The ruleset "handles" a set of access rights; for those, only what a rule grants is allowed,
//! for the rest nothing changes. kekkai handles every right the running kernel's ABI knows, and
//! derives rules from the mount table (read-only root and binds: read and execute; writable
//! binds and tmpfs: read, write and execute unless `exec: false`; devices: read, write and
//! ioctl), then adds the policy's `read`, `write` and `execute` lists. When the policy lists
//! `read`, the root itself only grants listing directories: file contents are readable only
//! where a rule says so.
//!
//! Ordering in the launch: after pivot_root (rules open paths in the new root) and after
//! no_new_privs (which an unprivileged `landlock_restrict_self` requires); before seccomp.

use std::path::{Path, PathBuf};

use super::diags::Diags;
use super::fs::{MountKind, MountPlan, normalize_abs};
use super::keyed::Keyed;
use super::vocab::{Compat, Scope};
use crate::policy::KeyPath;
use crate::policy::model::Landlock;

/// Filesystem access rights, with the kernel's bit values (LANDLOCK_ACCESS_FS_*).
pub mod access {
    /// Execute a file.
    pub const EXECUTE: u64 = 1 << 0;
    /// Open a file for writing.
    pub const WRITE_FILE: u64 = 1 << 1;
    /// Open a file for reading.
    pub const READ_FILE: u64 = 1 << 2;
    /// List a directory.
    pub const READ_DIR: u64 = 1 << 3;
    /// Remove an empty directory.
    pub const REMOVE_DIR: u64 = 1 << 4;
    /// Remove a file.
    pub const REMOVE_FILE: u64 = 1 << 5;
    /// Create a character device.
    pub const MAKE_CHAR: u64 = 1 << 6;
    /// Create a directory.
    pub const MAKE_DIR: u64 = 1 << 7;
    /// Create a regular file.
    pub const MAKE_REG: u64 = 1 << 8;
    /// Create a unix socket.
    pub const MAKE_SOCK: u64 = 1 << 9;
    /// Create a FIFO.
    pub const MAKE_FIFO: u64 = 1 << 10;
    /// Create a block device.
    pub const MAKE_BLOCK: u64 = 1 << 11;
    /// Create a symlink.
    pub const MAKE_SYM: u64 = 1 << 12;
    /// Link or rename across directories (ABI 2).
    pub const REFER: u64 = 1 << 13;
    /// Truncate a file (ABI 3).
    pub const TRUNCATE: u64 = 1 << 14;
    /// ioctl on a device (ABI 5).
    pub const IOCTL_DEV: u64 = 1 << 15;

    /// Reading files and listing directories.
    pub const READ: u64 = READ_FILE | READ_DIR;
    /// Everything that changes a tree (never device creation).
    pub const WRITE: u64 = WRITE_FILE
        | REMOVE_DIR
        | REMOVE_FILE
        | MAKE_DIR
        | MAKE_REG
        | MAKE_SOCK
        | MAKE_FIFO
        | MAKE_SYM
        | REFER
        | TRUNCATE;
    /// Using device nodes.
    pub const DEVICE: u64 = READ | WRITE_FILE | IOCTL_DEV;

    /// Names, for explain.
    pub const NAMES: &[(u64, &str)] = &[
        (EXECUTE, "execute"),
        (WRITE_FILE, "write_file"),
        (READ_FILE, "read_file"),
        (READ_DIR, "read_dir"),
        (REMOVE_DIR, "remove_dir"),
        (REMOVE_FILE, "remove_file"),
        (MAKE_CHAR, "make_char"),
        (MAKE_DIR, "make_dir"),
        (MAKE_REG, "make_reg"),
        (MAKE_SOCK, "make_sock"),
        (MAKE_FIFO, "make_fifo"),
        (MAKE_BLOCK, "make_block"),
        (MAKE_SYM, "make_sym"),
        (REFER, "refer"),
        (TRUNCATE, "truncate"),
        (IOCTL_DEV, "ioctl_dev"),
    ];

    /// A short human summary: `read`, `read+write+execute`, ...
    pub fn summary(bits: u64) -> String {
        let mut parts = Vec::new();
        if bits & READ == READ {
            parts.push("read");
        } else if bits & READ_DIR != 0 {
            parts.push("list");
        } else if bits & READ_FILE != 0 {
            parts.push("read_file");
        }
        if bits & WRITE == WRITE {
            parts.push("write");
        } else if bits & WRITE_FILE != 0 {
            parts.push("write_file");
        }
        if bits & EXECUTE != 0 {
            parts.push("execute");
        }
        if bits & IOCTL_DEV != 0 {
            parts.push("ioctl");
        }
        parts.join("+")
    }
}

/// One path rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PathRule {
    /// Path inside the sandbox.
    pub path: PathBuf,
    /// Access bits granted.
    pub access: u64,
    /// Why (the mount or policy key it comes from).
    pub from: String,
}

/// The Landlock layer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LandlockPlan {
    /// Off only when the policy says `enabled: false`.
    pub enabled: bool,
    /// Hard: refuse when the kernel can't enforce what is asked (`landlock.compat`).
    pub compat: Keyed<Compat>,
    /// Path rules.
    pub rules: Vec<PathRule>,
    /// TCP ports that may be bound (None: TCP bind not restricted; `landlock.tcp-bind`).
    pub tcp_bind: Option<Keyed<Vec<u16>>>,
    /// TCP ports that may be connected to (None: not restricted; `landlock.tcp-connect`).
    pub tcp_connect: Option<Keyed<Vec<u16>>>,
    /// `tcp_connect` comes from `network.allow`, not the policy's Landlock section: a second
    /// layer under the egress rules, enforced where the kernel has it and never a reason to
    /// refuse.
    pub tcp_connect_implied: bool,
    /// IPC scopes (`landlock.scope`).
    pub scopes: Keyed<Vec<Scope>>,
}

impl LandlockPlan {
    /// The lowest Landlock ABI that enforces everything asked for.
    pub fn required_abi(&self) -> u32 {
        if !self.scopes.is_empty() {
            6
        } else if self.tcp_bind.is_some()
            || (self.tcp_connect.is_some() && !self.tcp_connect_implied)
        {
            4
        } else {
            1
        }
    }
}

/// Plans the Landlock layer from the section and the mounts.
pub fn plan(
    spec: Option<&Landlock>,
    root_writable: bool,
    mounts: &[MountPlan],
    diags: &mut Diags,
) -> LandlockPlan {
    use access::*;
    let here = KeyPath::root().key("landlock");
    let default = Landlock::default();
    let spec = spec.unwrap_or(&default);
    let mut rules = Vec::new();
    let root_access = match (&spec.read, root_writable) {
        (None, false) => READ | EXECUTE,
        (None, true) => READ | EXECUTE | WRITE,
        (Some(_), false) => READ_DIR,
        (Some(_), true) => READ_DIR | WRITE,
    };
    rules.push(PathRule {
        path: PathBuf::from("/"),
        access: root_access,
        from: if spec.read.is_some() {
            "root (directories only: landlock.read lists the readable trees)".into()
        } else {
            "root".into()
        },
    });
    // `from-mounts: false` (what `kekkai learn` writes): the data mounts grant nothing by
    // themselves; the kernel's interfaces (proc, dev, mqueue) keep their rules.
    let from_mounts = spec.from_mounts.unwrap_or(true);
    for m in mounts {
        if !from_mounts && matches!(m.kind, MountKind::Bind { .. } | MountKind::Tmpfs { .. }) {
            continue;
        }
        let (access, what) = match &m.kind {
            MountKind::Bind {
                writable: false,
                exec,
                ..
            } => (READ | if *exec { EXECUTE } else { 0 }, "read-only bind"),
            MountKind::Bind {
                writable: true,
                exec,
                ..
            } => (
                READ | WRITE | if *exec { EXECUTE } else { 0 },
                "writable bind",
            ),
            MountKind::Tmpfs { exec, .. } => {
                (READ | WRITE | if *exec { EXECUTE } else { 0 }, "tmpfs")
            }
            MountKind::Proc => (READ | WRITE_FILE, "proc"),
            MountKind::Dev => (DEVICE, "dev"),
            MountKind::Mqueue => (READ | WRITE, "mqueue"),
            MountKind::File { .. } => (READ_FILE, "file"),
            MountKind::Hide => continue,
        };
        rules.push(PathRule {
            path: m.target.clone(),
            access,
            from: format!("{} ({what})", m.key),
        });
        if matches!(m.kind, MountKind::Dev) {
            rules.push(PathRule {
                path: m.target.join("shm"),
                access: READ | WRITE,
                from: format!("{} (dev: shm)", m.key),
            });
        }
    }
    let lists: [(&str, &Option<Vec<String>>, u64); 3] = [
        ("read", &spec.read, READ),
        ("write", &spec.write, READ | WRITE),
        ("execute", &spec.execute, EXECUTE | READ_FILE),
    ];
    for (key, list, access) in lists {
        for (i, text) in list.iter().flatten().enumerate() {
            match normalize_abs(text) {
                Ok(path) => rules.push(PathRule {
                    path,
                    access,
                    from: format!("landlock.{key}[{i}]"),
                }),
                Err(e) => diags.push(here.key(key).index(i), e),
            }
        }
    }
    let ports = |key: &str, list: &Option<Vec<u16>>, diags: &mut Diags| {
        list.as_ref().map(|l| {
            if let Some(i) = l.iter().position(|p| *p == 0) {
                diags.push(here.key(key).index(i), "port 0 is not a port");
            }
            let mut v = l.clone();
            v.sort_unstable();
            v.dedup();
            Keyed::new(v, here.key(key))
        })
    };
    let tcp_bind = ports("tcp-bind", &spec.tcp_bind, diags);
    let tcp_connect = ports("tcp-connect", &spec.tcp_connect, diags);
    let mut scopes: Vec<Scope> = spec
        .scope
        .iter()
        .flatten()
        .map(|s| Scope::from(*s))
        .collect();
    scopes.sort();
    scopes.dedup();
    LandlockPlan {
        enabled: spec.enabled.unwrap_or(true),
        compat: Keyed::new(
            spec.compat.map_or(Compat::Hard, Compat::from),
            here.key("compat"),
        ),
        rules,
        tcp_bind,
        tcp_connect,
        tcp_connect_implied: false,
        scopes: Keyed::new(scopes, here.key("scope")),
    }
}

/// Is `path` covered by a rule granting all of `want`?
pub fn allows(plan: &LandlockPlan, path: &Path, want: u64) -> bool {
    let granted = plan
        .rules
        .iter()
        .filter(|r| path.starts_with(&r.path))
        .fold(0, |acc, r| acc | r.access);
    granted & want == want
}

/// An image root is the image's own tree: readable and executable throughout, whatever
/// `landlock.read` narrows on the host's tree.
pub fn widen_image_root(landlock: &mut LandlockPlan) {
    for rule in &mut landlock.rules {
        if rule.path == Path::new("/") {
            rule.access |= access::READ | access::EXECUTE;
            rule.from = "root (an image: readable and executable throughout)".into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::access::*;
    use super::*;

    fn tmpfs(target: &str, exec: bool) -> MountPlan {
        MountPlan {
            key: KeyPath::root().key("mounts").index(0),
            origin: String::new(),
            target: target.into(),
            kind: MountKind::Tmpfs {
                size: 1 << 20,
                mode: 0o1777,
                exec,
            },
            protocol: false,
        }
    }

    fn run(yaml: &str, mounts: &[MountPlan]) -> LandlockPlan {
        let spec: Landlock = serde_yaml::from_str(yaml).unwrap();
        let mut d = Diags::default();
        let p = plan(Some(&spec), false, mounts, &mut d);
        assert!(d.is_empty(), "{:?}", d.into_pairs());
        p
    }

    #[test]
    fn without_read_list_the_root_is_readable_and_executable() {
        let p = run("{}", &[]);
        assert!(allows(&p, Path::new("/etc/passwd"), READ | EXECUTE));
        assert!(!allows(&p, Path::new("/etc/passwd"), WRITE_FILE));
    }

    #[test]
    fn a_read_list_limits_file_contents() {
        let p = run("{read: [/usr, /etc]}", &[tmpfs("/tmp", true)]);
        assert!(allows(&p, Path::new("/usr/bin/sh"), READ));
        assert!(allows(&p, Path::new("/srv"), READ_DIR));
        assert!(!allows(&p, Path::new("/srv/secret"), READ_FILE));
        assert!(allows(&p, Path::new("/tmp/x"), READ | WRITE | EXECUTE));
    }

    /// `from-mounts: false`: a tmpfs grants nothing until a list names it.
    #[test]
    fn without_rules_from_mounts_only_the_lists_grant() {
        let p = run("{read: [/usr], from-mounts: false}", &[tmpfs("/tmp", true)]);
        assert!(!allows(&p, Path::new("/tmp/x"), READ_FILE));
        assert!(!allows(&p, Path::new("/tmp/x"), WRITE_FILE));
        let p = run(
            "{read: [/usr], write: [/tmp/out], from-mounts: false}",
            &[tmpfs("/tmp", true)],
        );
        assert!(allows(&p, Path::new("/tmp/out/x"), READ | WRITE));
        assert!(!allows(&p, Path::new("/tmp/y"), WRITE_FILE));
    }

    #[test]
    fn noexec_mounts_get_no_execute_right() {
        let p = run("{read: [/usr]}", &[tmpfs("/tmp", false)]);
        assert!(!allows(&p, Path::new("/tmp/x"), EXECUTE));
        assert!(allows(&p, Path::new("/tmp/x"), WRITE_FILE));
    }

    #[test]
    fn required_abi_follows_what_is_asked() {
        assert_eq!(run("{}", &[]).required_abi(), 1);
        assert_eq!(run("{tcp-connect: [443]}", &[]).required_abi(), 4);
        assert_eq!(run("{scope: [signal]}", &[]).required_abi(), 6);
    }

    #[test]
    fn rejects_bad_paths_and_ports() {
        let spec: Landlock = serde_yaml::from_str("{read: [usr], tcp-bind: [0]}").unwrap();
        let mut d = Diags::default();
        plan(Some(&spec), false, &[], &mut d);
        let errs = d.into_pairs();
        assert_eq!(errs[0].0, "landlock.read[0]");
        assert_eq!(errs[1].0, "landlock.tcp-bind[0]");
    }
}
