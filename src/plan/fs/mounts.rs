//! The policy's mounts, in order, each resolved against the host at plan time: a bind's source
//! canonical with its device and inode (the launch refuses a different object), a tmpfs's size
//! and mode, and the namespaces a `proc` or `mqueue` mount needs. Applied after the root is
//! built, before pivot_root.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::super::image::{self, ImagePlan};
use super::super::units::{Amount, parse_mode, parse_size};
use super::super::vocab::{Namespace, Network};
use super::{RootfsPlan, normalize_abs};
use crate::plan::diags::Diags;
use crate::policy::KeyPath;
use crate::policy::model::Mount;

/// Default size of a tmpfs mount.
pub const DEFAULT_TMPFS_SIZE: u64 = 64 << 20;

/// The size of the private tmpfs a `dev` mount gets at `shm` (the launch mounts it; `kekkai
/// export systemd` gives the unit's `/dev/shm` the same).
pub const DEV_SHM_BYTES: u64 = 64 << 20;

/// A mount from the policy, resolved.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MountPlan {
    /// The policy key that asked for it, in the merged policy (`mounts[2]`).
    pub key: KeyPath,
    /// Where the user asked for it, for launch errors: the flag as typed (`--bind /data`), or
    /// `FILE:LINE:COL: mounts[0].bind` in the file that wrote it (filled in by
    /// [`crate::plan::compile`]).
    pub origin: String,
    /// Where it goes inside the sandbox.
    pub target: PathBuf,
    /// What it is.
    pub kind: MountKind,
    /// Added for a systemd protocol the caller speaks (the sd_notify socket), not asked for by
    /// the policy.
    pub protocol: bool,
}

/// The kinds of mount.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum MountKind {
    /// Bind a host path.
    Bind {
        /// Canonical host path.
        source: PathBuf,
        /// Device and inode seen at plan time; the launch refuses a different object.
        dev_ino: (u64, u64),
        /// A directory (else a file or other node).
        dir: bool,
        /// Writes allowed.
        writable: bool,
        /// Executing files allowed.
        exec: bool,
    },
    /// A fresh tmpfs.
    Tmpfs {
        /// Size in bytes.
        size: u64,
        /// Mode of its root.
        mode: u32,
        /// Executing files allowed.
        exec: bool,
    },
    /// An empty read-only tmpfs over a directory, /dev/null over anything else.
    Hide,
    /// A fresh procfs.
    Proc,
    /// A minimal /dev.
    Dev,
    /// An mqueue filesystem.
    Mqueue,
    /// A read-only file the plan writes (`network: user`'s `/etc/resolv.conf` and
    /// `/etc/hosts`), bound over what the root has there.
    File {
        /// What it holds.
        contents: String,
    },
}

impl MountKind {
    /// The policy key that names this kind of mount (`bind`, `tmpfs`, ...), which is also its
    /// name in `explain` and in errors.
    pub fn name(&self) -> &'static str {
        match self {
            MountKind::Bind { .. } => "bind",
            MountKind::Tmpfs { .. } => "tmpfs",
            MountKind::Hide => "hide",
            MountKind::Proc => "proc",
            MountKind::Dev => "dev",
            MountKind::Mqueue => "mqueue",
            MountKind::File { .. } => "file",
        }
    }

    fn with_target(self, target: PathBuf, key: KeyPath) -> MountPlan {
        MountPlan {
            key,
            origin: String::new(),
            target,
            kind: self,
            protocol: false,
        }
    }
}

/// Plans the mount list.
pub fn plan_mounts(
    mounts: &[Mount],
    namespaces: &[Namespace],
    rootfs: &RootfsPlan,
    diags: &mut Diags,
) -> Vec<MountPlan> {
    let mut out = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let at = KeyPath::root().key("mounts").index(i);
        if let Some(p) = plan_mount(m, &at, namespaces, rootfs, diags) {
            out.push(p);
        }
    }
    out
}

fn plan_mount(
    m: &Mount,
    at: &KeyPath,
    namespaces: &[Namespace],
    rootfs: &RootfsPlan,
    diags: &mut Diags,
) -> Option<MountPlan> {
    let kinds: Vec<(&str, &String)> = [
        ("bind", &m.bind),
        ("tmpfs", &m.tmpfs),
        ("hide", &m.hide),
        ("proc", &m.proc),
        ("dev", &m.dev),
        ("mqueue", &m.mqueue),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
    .collect();
    let (kind, value) = match kinds.as_slice() {
        [one] => *one,
        [] => {
            diags.push(
                at.clone(),
                "a mount needs one of `bind`, `tmpfs`, `hide`, `proc`, `dev`, `mqueue`",
            );
            return None;
        }
        [_, (second, _), ..] => {
            diags.push(
                at.key(second),
                "a mount has exactly one kind; split this entry in two",
            );
            return None;
        }
    };
    // Options valid only for some kinds.
    let only = |opt: &str, set: bool, allowed: &[&str], diags: &mut Diags| {
        if set && !allowed.contains(&kind) {
            diags.push(
                at.key(opt),
                format!("`{opt}` does not apply to a `{kind}` mount"),
            );
        }
    };
    only("to", m.to.is_some(), &["bind"], diags);
    only("writable", m.writable.is_some(), &["bind"], diags);
    only("optional", m.optional.is_some(), &["bind"], diags);
    only("size", m.size.is_some(), &["tmpfs"], diags);
    only("mode", m.mode.is_some(), &["tmpfs"], diags);
    only("exec", m.exec.is_some(), &["bind", "tmpfs"], diags);

    let value_at = at.key(kind);
    let path = match normalize_abs(value) {
        Ok(p) => p,
        Err(e) => {
            diags.push(value_at, e);
            return None;
        }
    };
    let need_ns = |ns: Namespace, why: &str, diags: &mut Diags| {
        if !namespaces.contains(&ns) {
            diags.push(
                value_at.clone(),
                format!(
                    "a `{kind}` mount needs the `{}` namespace: {why}",
                    ns.name()
                ),
            );
        }
    };
    let target_ok = |t: &Path, at: &KeyPath, diags: &mut Diags| {
        if t == Path::new("/") {
            diags.push(
                at.clone(),
                "can't mount over the root; use `rootfs` for that",
            );
            false
        } else {
            true
        }
    };
    let exec = m.exec.unwrap_or(true);
    let kind = match kind {
        "bind" => {
            let target = match &m.to {
                Some(t) => match normalize_abs(t) {
                    Ok(p) => p,
                    Err(e) => {
                        diags.push(at.key("to"), e);
                        return None;
                    }
                },
                None => path.clone(),
            };
            let writable = m.writable.unwrap_or(false);
            if path == Path::new("/") {
                if !writable
                    && target == Path::new("/")
                    && rootfs.lowers.iter().any(|l| l == Path::new("/"))
                {
                    // `${PWD}` is `/`: already visible read-only through the root.
                    return None;
                }
                diags.push(
                    value_at,
                    "binding the host's `/` would expose /proc, /sys, /dev and every socket; use `rootfs: { lower: [/] }`",
                );
                return None;
            }
            let at_to = if m.to.is_some() {
                at.key("to")
            } else {
                value_at.clone()
            };
            if !target_ok(&target, &at_to, diags) {
                return None;
            }
            let source = match std::fs::canonicalize(&path) {
                Ok(p) => p,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && m.optional == Some(true) => {
                    return None;
                }
                Err(e) => {
                    diags.push(
                        value_at,
                        format!(
                            "{}: {} (add `optional: true` to skip a missing source)",
                            path.display(),
                            crate::policy::describe_io(&e)
                        ),
                    );
                    return None;
                }
            };
            if source == Path::new("/") {
                diags.push(value_at, format!("{} resolves to `/`", path.display()));
                return None;
            }
            let meta = match std::fs::metadata(&source) {
                Ok(m) => m,
                Err(e) => {
                    diags.push(
                        value_at,
                        format!("{}: {}", source.display(), crate::policy::describe_io(&e)),
                    );
                    return None;
                }
            };
            let ft = meta.file_type();
            if ft.is_block_device() || ft.is_char_device() {
                diags.push(
                    value_at,
                    format!(
                        "{} is a device node; devices come only from a `dev` mount",
                        source.display()
                    ),
                );
                return None;
            }
            if source.starts_with("/proc") || source.starts_with("/sys") {
                diags.push(
                    value_at,
                    format!("{} is inside the host's /proc or /sys; binding it would leak the host kernel's view", source.display()),
                );
                return None;
            }
            MountKind::Bind {
                dev_ino: (meta.dev(), meta.ino()),
                dir: meta.is_dir(),
                source,
                writable,
                exec,
            }
            .with_target(target, at.clone())
        }
        "tmpfs" => {
            if !target_ok(&path, &value_at, diags) {
                return None;
            }
            let size = match &m.size {
                None => DEFAULT_TMPFS_SIZE,
                Some(s) => match parse_size(&s.0) {
                    Ok(Amount::Finite(n)) if n >= 4096 => n,
                    Ok(Amount::Finite(_)) => {
                        diags.push(at.key("size"), "a tmpfs needs at least 4K");
                        return None;
                    }
                    Ok(Amount::Unlimited) => {
                        diags.push(at.key("size"), "a tmpfs needs a finite size");
                        return None;
                    }
                    Err(e) => {
                        diags.push(at.key("size"), e);
                        return None;
                    }
                },
            };
            let mode = match &m.mode {
                None => 0o1777,
                Some(s) => match parse_mode(&s.0) {
                    Ok(v) => v,
                    Err(e) => {
                        diags.push(at.key("mode"), e);
                        return None;
                    }
                },
            };
            MountKind::Tmpfs { size, mode, exec }.with_target(path, at.clone())
        }
        "hide" => {
            if !target_ok(&path, &value_at, diags) {
                return None;
            }
            MountKind::Hide.with_target(path, at.clone())
        }
        "proc" => {
            need_ns(
                Namespace::Pid,
                "a procfs without it shows every host process",
                diags,
            );
            if !target_ok(&path, &value_at, diags) {
                return None;
            }
            MountKind::Proc.with_target(path, at.clone())
        }
        "dev" => {
            if !target_ok(&path, &value_at, diags) {
                return None;
            }
            MountKind::Dev.with_target(path, at.clone())
        }
        _ => {
            need_ns(
                Namespace::Ipc,
                "message queues live in the ipc namespace",
                diags,
            );
            if !target_ok(&path, &value_at, diags) {
                return None;
            }
            MountKind::Mqueue.with_target(path, at.clone())
        }
    };
    Some(kind)
}
/// With a network, the host's resolver configuration and hosts file over an image's: bound
/// read-only, first of the mounts, so that the policy's own come after them.
pub fn image_host_files(img: Option<&ImagePlan>, network: Network) -> Vec<MountPlan> {
    // `network: user` writes its own resolv.conf and hosts (the network plan's files).
    if img.is_none() || network != Network::Host {
        return Vec::new();
    }
    let mut out = Vec::new();
    for file in ["/etc/resolv.conf", "/etc/hosts"] {
        let Ok(source) = std::fs::canonicalize(file) else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(&source) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        out.push(MountPlan {
            key: image::key(),
            origin: format!("{file} from the host (rootfs.image with a network)"),
            target: PathBuf::from(file),
            kind: MountKind::Bind {
                source,
                dev_ino: (meta.dev(), meta.ino()),
                dir: false,
                writable: false,
                exec: false,
            },
            protocol: false,
        });
    }
    out
}
