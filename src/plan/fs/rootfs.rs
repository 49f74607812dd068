//! The root: a private tmpfs skeleton with one entry per top-level name of the lower layers
//! (overlays of directories, recreated symlinks, read-only file binds, recursive binds of
//! directories with host mounts below them, empty mount points for host pseudo-filesystems),
//! and the writable layer's size. Built in the staging directory before the mounts.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::super::keyed::Keyed;
use super::super::units::{Amount, Compared, parse_size};
use super::{HostMount, MountKind, MountPlan, normalize_abs};
use crate::plan::diags::Diags;
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
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RootfsPlan {
    /// Lower layers, top first (`rootfs.lower`).
    pub lowers: Keyed<Vec<PathBuf>>,
    /// Writes go to a throw-away tmpfs layer.
    pub writable: bool,
    /// Size of that layer (and of the skeleton).
    pub size: u64,
    /// One entry per top-level name.
    pub entries: Vec<RootEntry>,
    /// The layers are an image's (`rootfs.image`): set when the policy names one.
    pub image: Option<crate::plan::image::ImagePlan>,
    /// Mount the overlays with `userxattr`: the layers mark opaque directories with
    /// `user.overlay.opaque` (an image store's format, root and rootless alike).
    pub userxattr: bool,
}

/// One top-level name of the new root.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RootEntry {
    /// The name, such as `usr`.
    pub name: String,
    /// How it is made.
    pub kind: EntryKind,
}

/// How a top-level entry of the root is made.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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
pub fn plan_rootfs(
    spec: Option<&Rootfs>,
    image: Option<crate::plan::image::ImagePlan>,
    host: &[HostMount],
    diags: &mut Diags,
) -> RootfsPlan {
    let here = KeyPath::root().key("rootfs");
    let lower_texts: Vec<String> = match (&image, spec.and_then(|r| r.image.as_ref())) {
        // Named an image: its layers, or (it did not resolve, which is said) none.
        (_, Some(_)) => Vec::new(),
        _ => spec
            .and_then(|r| r.lower.clone())
            .unwrap_or_else(|| vec!["/".into()]),
    };
    if lower_texts.is_empty() && image.is_none() && spec.is_none_or(|r| r.image.is_none()) {
        diags.push(here.key("lower"), "needs at least one layer");
    }
    let mut lowers: Vec<PathBuf> = image
        .iter()
        .flat_map(|i| i.layers.iter().map(|l| l.path.clone()))
        .collect();
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
    let userxattr = image.is_some();
    let entries = root_entries(&lowers, host, userxattr);
    let lowers_key = if image.is_some() {
        here.key("image")
    } else {
        here.key("lower")
    };
    RootfsPlan {
        lowers: Keyed::new(lowers, lowers_key),
        writable: spec.and_then(|r| r.writable).unwrap_or(false),
        size,
        entries,
        image,
        userxattr,
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

/// Merges the top level of the layers into entries, as overlayfs would show them: a whiteout
/// (a 0/0 character device) hides the name in lower layers, and so does an opaque directory
/// (`user.overlay.opaque=y`, read when `userxattr`) below itself: each top-level directory is
/// the root of its own overlay, where the markers of the layers' roots would not count.
fn root_entries(lowers: &[PathBuf], host: &[HostMount], userxattr: bool) -> Vec<RootEntry> {
    // Every directory is compared with every mount point: each prepared once.
    let host: Vec<(Compared<'_>, &str)> = host
        .iter()
        .map(|m| (Compared::new(&m.point), m.fstype.as_str()))
        .collect();
    let mut entries: Vec<RootEntry> = Vec::new();
    // Names a higher layer made opaque (a file or symlink hides lower directories).
    let mut settled: Vec<String> = Vec::new();
    for layer in lowers {
        let Ok(dir) = std::fs::read_dir(layer) else {
            continue;
        };
        // Each name copied out once (a sort by `file_name()` copies it at every comparison).
        let mut names: Vec<_> = dir
            .filter_map(Result::ok)
            .map(|e| (e.file_name(), e))
            .collect();
        names.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (name, e) in names {
            let name = name
                .into_string()
                .unwrap_or_else(|n| n.to_string_lossy().into_owned());
            let path = layer.join(&name);
            // The type as the directory listing gives it (lstat where the file system does
            // not say): only a character device needs its own lstat, for its device number.
            let Ok(ft) = e.file_type() else {
                continue;
            };
            if settled.contains(&name) {
                continue;
            }
            if ft.is_char_device()
                && std::fs::symlink_metadata(&path).is_ok_and(|meta| meta.rdev() == 0)
            {
                // A whiteout: nothing of this name below.
                settled.push(name.clone());
                continue;
            }
            if ft.is_dir()
                && userxattr
                && xattr::get(&path, "user.overlay.opaque")
                    .ok()
                    .flatten()
                    .is_some_and(|v| v == b"y")
            {
                // Opaque: this layer's directory and those above it, nothing below.
                settled.push(name.clone());
                match entries.iter_mut().find(|x| x.name == name) {
                    Some(RootEntry {
                        kind: EntryKind::Overlay(dirs),
                        ..
                    }) => dirs.push(path),
                    Some(_) => {}
                    None => entries.push(RootEntry {
                        name,
                        kind: EntryKind::Overlay(vec![path]),
                    }),
                }
                continue;
            }
            let existing = entries.iter_mut().find(|x| x.name == name);
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
                        match host_mount_state(&path, &host) {
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

fn host_mount_state(dir: &Path, host: &[(Compared<'_>, &str)]) -> MountState {
    let dir = Compared::new(dir);
    if host
        .iter()
        .any(|(point, fstype)| point.same(&dir) && PSEUDO_FS.contains(fstype))
    {
        return MountState::Pseudo;
    }
    if host
        .iter()
        .any(|(point, _)| !point.same(&dir) && point.within(&dir))
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
        let entries = root_entries(&[PathBuf::from("/")], &host, false);
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
        let entries = root_entries(&[a.clone(), b.clone()], &[], false);
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
