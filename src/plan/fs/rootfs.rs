//! The root: a private tmpfs skeleton with one entry per top-level name of the lower layers
//! (overlays of directories, recreated symlinks, read-only file binds, recursive binds of
//! directories with host mounts below them, empty mount points for host pseudo-filesystems),
//! and the writable layer's size. Built in the staging directory before the mounts.

use std::path::{Path, PathBuf};

use super::super::Diags;
use super::super::keyed::Keyed;
use super::super::units::{Amount, parse_size};
use super::{HostMount, MountKind, MountPlan, normalize_abs};
use crate::policy::KeyPath;
use crate::policy::model::Rootfs;

/// Default size of the writable layer over the root.
pub const DEFAULT_ROOT_SIZE: u64 = 256 << 20;

/// File systems that are windows into the host kernel, never passed through from the host.
const PSEUDO_FS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "mqueue",
    "bpf",
    "configfs",
    "fusectl",
    "pstore",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "efivarfs",
    "rpc_pipefs",
    "nsfs",
];

/// The planned root filesystem.
#[derive(Debug, Clone, PartialEq)]
pub struct RootfsPlan {
    /// Lower layers, top first (`rootfs.lower`).
    pub lowers: Keyed<Vec<PathBuf>>,
    /// Writes go to a throw-away tmpfs layer.
    pub writable: bool,
    /// Size of that layer (and of the skeleton).
    pub size: u64,
    /// One entry per top-level name.
    pub entries: Vec<RootEntry>,
}

/// One top-level name of the new root.
#[derive(Debug, Clone, PartialEq)]
pub struct RootEntry {
    /// The name, such as `usr`.
    pub name: String,
    /// How it is made.
    pub kind: EntryKind,
}

/// How a top-level entry of the root is made.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryKind {
    /// An overlay of these directories, top first.
    Overlay(Vec<PathBuf>),
    /// A recursive read-only bind of this host directory (it has host mounts below it).
    Bind(PathBuf),
    /// A symlink with this target.
    Symlink(PathBuf),
    /// A read-only bind of this file.
    File(PathBuf),
    /// An empty directory (a host pseudo filesystem's mount point).
    EmptyDir,
}

/// Plans the root filesystem.
pub fn plan_rootfs(spec: Option<&Rootfs>, host: &[HostMount], diags: &mut Diags) -> RootfsPlan {
    let here = KeyPath::root().key("rootfs");
    let lower_texts: Vec<String> = spec
        .and_then(|r| r.lower.clone())
        .unwrap_or_else(|| vec!["/".into()]);
    if lower_texts.is_empty() {
        diags.push(here.key("lower"), "needs at least one layer");
    }
    let mut lowers = Vec::new();
    for (i, text) in lower_texts.iter().enumerate() {
        let at = here.key("lower").index(i);
        // Canonical: the launch opens each layer's entries refusing any symbolic link, so that
        // one swapped in after this point can't show another host directory.
        match normalize_abs(text) {
            Ok(p) => match std::fs::canonicalize(&p)
                .and_then(|c| std::fs::metadata(&c).map(|m| (c, m)))
            {
                Ok((c, m)) if m.is_dir() => lowers.push(c),
                Ok(_) => diags.push(at, format!("{} is not a directory", p.display())),
                Err(e) => diags.push(
                    at,
                    format!("{}: {}", p.display(), crate::policy::describe_io(&e)),
                ),
            },
            Err(e) => diags.push(at, e),
        }
    }
    let size = match spec.and_then(|r| r.size.as_ref()) {
        None => DEFAULT_ROOT_SIZE,
        Some(s) => match parse_size(&s.0) {
            Ok(Amount::Finite(n)) if n >= 1 << 20 => n,
            Ok(Amount::Finite(_)) => {
                diags.push(here.key("size"), "must be at least 1M");
                DEFAULT_ROOT_SIZE
            }
            Ok(Amount::Unlimited) => {
                diags.push(here.key("size"), "a tmpfs needs a finite size");
                DEFAULT_ROOT_SIZE
            }
            Err(e) => {
                diags.push(here.key("size"), e);
                DEFAULT_ROOT_SIZE
            }
        },
    };
    let entries = root_entries(&lowers, host);
    RootfsPlan {
        lowers: Keyed::new(lowers, here.key("lower")),
        writable: spec.and_then(|r| r.writable).unwrap_or(false),
        size,
        entries,
    }
}

/// Turns top-level entries that a policy mount covers entirely (`/home` under a `hide` or a
/// tmpfs) into empty mount points: building an overlay nobody can see costs a mount at launch
/// and an unmount at teardown.
pub fn prune_covered(rootfs: &mut RootfsPlan, mounts: &[MountPlan]) {
    for entry in &mut rootfs.entries {
        if !matches!(entry.kind, EntryKind::Overlay(_) | EntryKind::Bind(_)) {
            continue;
        }
        let path = Path::new("/").join(&entry.name);
        let covered = mounts.iter().any(|m| {
            m.target == path
                && match &m.kind {
                    MountKind::Bind { dir, .. } => *dir,
                    MountKind::File { .. } => false,
                    MountKind::Tmpfs { .. }
                    | MountKind::Hide
                    | MountKind::Proc
                    | MountKind::Dev
                    | MountKind::Mqueue => true,
                }
        });
        if covered {
            entry.kind = EntryKind::EmptyDir;
        }
    }
}

/// Merges the top level of the layers into entries, as overlayfs would show them.
fn root_entries(lowers: &[PathBuf], host: &[HostMount]) -> Vec<RootEntry> {
    let mut entries: Vec<RootEntry> = Vec::new();
    // Names a higher layer made opaque (a file or symlink hides lower directories).
    let mut settled: Vec<String> = Vec::new();
    for layer in lowers {
        let Ok(dir) = std::fs::read_dir(layer) else {
            continue;
        };
        let mut names: Vec<_> = dir.filter_map(Result::ok).collect();
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = layer.join(&name);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if settled.contains(&name) {
                continue;
            }
            let existing = entries.iter_mut().find(|x| x.name == name);
            let ft = meta.file_type();
            match existing {
                Some(RootEntry {
                    kind: EntryKind::Overlay(dirs),
                    ..
                }) if ft.is_dir() => dirs.push(path),
                Some(_) => {}
                None => {
                    let kind = if ft.is_symlink() {
                        settled.push(name.clone());
                        match std::fs::read_link(&path) {
                            Ok(t) => EntryKind::Symlink(t),
                            Err(_) => continue,
                        }
                    } else if ft.is_dir() {
                        match host_mount_state(&path, host) {
                            MountState::Pseudo => {
                                settled.push(name.clone());
                                EntryKind::EmptyDir
                            }
                            MountState::HasSubmounts => {
                                settled.push(name.clone());
                                EntryKind::Bind(path)
                            }
                            MountState::Plain => EntryKind::Overlay(vec![path]),
                        }
                    } else if ft.is_file() {
                        settled.push(name.clone());
                        EntryKind::File(path)
                    } else {
                        // Sockets, FIFOs and device nodes at the top level are not passed on.
                        continue;
                    };
                    entries.push(RootEntry { name, kind });
                }
            }
        }
    }
    entries
}

enum MountState {
    Pseudo,
    HasSubmounts,
    Plain,
}

fn host_mount_state(dir: &Path, host: &[HostMount]) -> MountState {
    if host
        .iter()
        .any(|m| m.point == dir && PSEUDO_FS.contains(&m.fstype.as_str()))
    {
        return MountState::Pseudo;
    }
    if host
        .iter()
        .any(|m| m.point != dir && m.point.starts_with(dir))
    {
        return MountState::HasSubmounts;
    }
    MountState::Plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_root_entries() {
        let host = vec![
            HostMount {
                point: "/".into(),
                fstype: "ext4".into(),
            },
            HostMount {
                point: "/proc".into(),
                fstype: "proc".into(),
            },
            HostMount {
                point: "/dev".into(),
                fstype: "devtmpfs".into(),
            },
            HostMount {
                point: "/sys".into(),
                fstype: "sysfs".into(),
            },
            HostMount {
                point: "/mnt/x".into(),
                fstype: "tmpfs".into(),
            },
        ];
        let entries = root_entries(&[PathBuf::from("/")], &host);
        let kind = |n: &str| entries.iter().find(|e| e.name == n).map(|e| e.kind.clone());
        assert_eq!(kind("proc"), Some(EntryKind::EmptyDir));
        assert_eq!(kind("dev"), Some(EntryKind::EmptyDir));
        assert_eq!(kind("usr"), Some(EntryKind::Overlay(vec!["/usr".into()])));
        if std::path::Path::new("/mnt").is_dir() {
            assert_eq!(kind("mnt"), Some(EntryKind::Bind("/mnt".into())));
        }
        if std::fs::symlink_metadata("/bin").is_ok_and(|m| m.file_type().is_symlink()) {
            assert!(matches!(kind("bin"), Some(EntryKind::Symlink(_))));
        }
    }

    /// A host tree for [`protect`]: `T/home/{alice,bob}` (alice with `.ssh/` and `.netrc`, a
    /// `project/`), `T/run/x`, `T/scratch/x`; the policy hides `T/home` and `T/run` and mounts a
    /// tmpfs at `T/scratch`; alice is the caller.

    #[test]
    fn layers_merge_like_overlayfs() {
        let top = std::env::temp_dir().join(format!("kekkai-layers-{}", std::process::id()));
        let (a, b) = (top.join("a"), top.join("b"));
        for d in [
            a.join("etc"),
            a.join("only-a"),
            b.join("etc"),
            b.join("only-b"),
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(a.join("only-b-shadow"), "").unwrap();
        std::fs::create_dir_all(b.join("only-b-shadow")).unwrap();
        let entries = root_entries(&[a.clone(), b.clone()], &[]);
        let kind = |n: &str| entries.iter().find(|e| e.name == n).map(|e| e.kind.clone());
        assert_eq!(
            kind("etc"),
            Some(EntryKind::Overlay(vec![a.join("etc"), b.join("etc")]))
        );
        assert_eq!(
            kind("only-a"),
            Some(EntryKind::Overlay(vec![a.join("only-a")]))
        );
        assert_eq!(
            kind("only-b"),
            Some(EntryKind::Overlay(vec![b.join("only-b")]))
        );
        assert_eq!(
            kind("only-b-shadow"),
            Some(EntryKind::File(a.join("only-b-shadow")))
        );
        std::fs::remove_dir_all(&top).unwrap();
    }
}
