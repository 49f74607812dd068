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
    /// Lower-only entries that may share one overlay of their common parent ([`share_lowers`]).
    /// A record written before this field shares nothing: an overlay per entry, as then.
    #[serde(default)]
    pub shared: Vec<SharedLower>,
}

/// Entries whose overlay is one directory `parent/name` each, of the same `parent` (a lower
/// layer): the launch may mount one overlay of `parent` and bind these names from it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SharedLower {
    /// The common parent: a lower layer's root (the host's `/`, or an image layer).
    pub parent: PathBuf,
    /// Indices into [`RootfsPlan::entries`], in order; at least two.
    pub members: Vec<usize>,
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
    // A layer whose own root is opaque (`./.wh..wh..opq`) hides every layer below it, all
    // of it: the overlay's root shows nothing of them, and every path passes through the root.
    // The hidden layers are not part of the root at all (nor of the identity's lookup).
    if userxattr {
        hide_below_opaque_root(&mut lowers);
    }
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
        shared: Vec::new(),
    }
}

/// Groups the entries that may share one lower-only overlay: an overlay of one directory
/// `P/name`, where `P` is one of the lower layers, grouped by `P` (two at least). Called after
/// [`prune_covered`], with the entries final.
///
/// Not for a writable root (every overlay has an upper). Not where the kernel would refuse the
/// shared overlay: in a user namespace every mount the sandbox's mount namespace copied from
/// the host is locked to its parent, and overlayfs refuses a lower layer with a locked mount
/// below it (`clone_private_mount`: EINVAL, "failed to clone lowerpath"), so `P` must have no
/// host mount below it there. The host's `/` always has (`/proc`, `/dev`, `/sys`): with a user
/// namespace (the default policy, root and rootless alike) only an image's layers share.
///
/// What the launch still checks, per member: that `name` is a directory on `P`'s own mount
/// with no link on the way (else the member keeps its own overlay), and that the overlay
/// needs no upper layer. Sharing shows exactly what an overlay per entry shows: below each
/// member the lower stack is the same (`P/name`, then the empty layer), and the markers of
/// `P`'s own root (its opaque flag, its whiteouts) only ever hide names of the empty layer
/// below it or names that are not members.
pub fn share_lowers(rootfs: &mut RootfsPlan, host: &[HostMount], userns: bool) {
    rootfs.shared = if rootfs.writable {
        Vec::new()
    } else {
        shareable(&rootfs.entries, &rootfs.lowers, host, userns)
    };
}

fn shareable(
    entries: &[RootEntry],
    lowers: &[PathBuf],
    host: &[HostMount],
    userns: bool,
) -> Vec<SharedLower> {
    let host = prepared(host);
    let mut groups: Vec<SharedLower> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let EntryKind::Overlay(dirs) = &e.kind else {
            continue;
        };
        let [dir] = dirs.as_slice() else { continue };
        let Some(parent) = dir.parent() else { continue };
        if dir.file_name() != Some(std::ffi::OsStr::new(&e.name))
            || !lowers.iter().any(|l| l == parent)
        {
            continue;
        }
        if userns && mounted_below(&Compared::new(parent), &host) {
            continue;
        }
        match groups.iter_mut().find(|g| g.parent == parent) {
            Some(g) => g.members.push(i),
            None => groups.push(SharedLower {
                parent: parent.to_path_buf(),
                members: vec![i],
            }),
        }
    }
    groups.retain(|g| g.members.len() >= 2);
    groups
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

/// Is `dir` an image layer's opaque directory (`user.overlay.opaque=y`, what an overlay
/// mounted with `userxattr` reads; the store sets it for `.wh..wh..opq`)? Not followed if
/// `dir` is a symbolic link.
pub fn opaque(dir: &Path) -> bool {
    xattr::get(dir, "user.overlay.opaque")
        .ok()
        .flatten()
        .is_some_and(|v| v == b"y")
}

/// Drops the layers below the first (from the top) whose own root is opaque.
fn hide_below_opaque_root(lowers: &mut Vec<PathBuf>) {
    if let Some(i) = lowers.iter().position(|l| opaque(l)) {
        lowers.truncate(i + 1);
    }
}

/// Merges the top level of the layers into entries, as overlayfs would show them: a whiteout
/// (a 0/0 character device) hides the name in lower layers, and so does an opaque directory
/// (`user.overlay.opaque=y`, read when `userxattr`) below itself: each top-level directory is
/// the root of its own overlay, where the markers of the layers' roots would not count.
fn root_entries(lowers: &[PathBuf], host: &[HostMount], userxattr: bool) -> Vec<RootEntry> {
    // Every directory is compared with every mount point: each prepared once.
    let host = prepared(host);
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
            if ft.is_dir() && userxattr && opaque(&path) {
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

/// The host's mount points, each prepared for many comparisons, with their types.
fn prepared(host: &[HostMount]) -> Vec<(Compared<'_>, &str)> {
    host.iter()
        .map(|m| (Compared::new(&m.point), m.fstype.as_str()))
        .collect()
}

/// Is a host mount point strictly below `dir`?
fn mounted_below(dir: &Compared<'_>, host: &[(Compared<'_>, &str)]) -> bool {
    host.iter()
        .any(|(point, _)| !point.same(dir) && point.within(dir))
}

fn host_mount_state(dir: &Path, host: &[(Compared<'_>, &str)]) -> MountState {
    let dir = Compared::new(dir);
    if host
        .iter()
        .any(|(point, fstype)| point.same(&dir) && PSEUDO_FS.contains(fstype))
    {
        return MountState::Pseudo;
    }
    if mounted_below(&dir, host) {
        return MountState::HasSubmounts;
    }
    MountState::Plain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlay(name: &str, dirs: &[&str]) -> RootEntry {
        RootEntry {
            name: name.into(),
            kind: EntryKind::Overlay(dirs.iter().map(PathBuf::from).collect()),
        }
    }

    fn mounts(points: &[&str]) -> Vec<HostMount> {
        points
            .iter()
            .map(|p| HostMount {
                point: p.into(),
                fstype: "ext4".into(),
            })
            .collect()
    }

    /// Which entries share an overlay of their parent: (entries, lowers, host mounts, user
    /// namespace) → groups as (parent, member indices).
    #[rstest::rstest]
    // The host root, no user namespace: every one-directory overlay of `/` shares.
    #[case::host_root(
        vec![overlay("etc", &["/etc"]), overlay("usr", &["/usr"]), overlay("var", &["/var"])],
        &["/"], &["/", "/proc", "/dev"], false, vec![("/", vec![0, 1, 2])]
    )]
    // With a user namespace the host root's mounts are locked: the kernel refuses `/`.
    #[case::host_root_userns(
        vec![overlay("etc", &["/etc"]), overlay("usr", &["/usr"])],
        &["/"], &["/", "/proc"], true, vec![]
    )]
    // ... unless nothing is mounted below it.
    #[case::userns_no_submounts(
        vec![overlay("etc", &["/etc"]), overlay("usr", &["/usr"])],
        &["/"], &["/"], true, vec![("/", vec![0, 1])]
    )]
    // A group of one is no group.
    #[case::alone(
        vec![overlay("etc", &["/etc"]), RootEntry { name: "bin".into(), kind: EntryKind::Symlink("usr/bin".into()) }],
        &["/"], &["/"], false, vec![]
    )]
    // Other kinds never share; the rest still do.
    #[case::other_kinds(
        vec![
            overlay("etc", &["/etc"]),
            RootEntry { name: "mnt".into(), kind: EntryKind::Bind("/mnt".into()) },
            RootEntry { name: "home".into(), kind: EntryKind::EmptyDir },
            RootEntry { name: "f".into(), kind: EntryKind::File("/f".into()) },
            overlay("usr", &["/usr"]),
        ],
        &["/"], &["/"], false, vec![("/", vec![0, 4])]
    )]
    // Two layers: an entry with both is a stack, not shared; one-layer entries group per layer.
    #[case::image_layers(
        vec![
            overlay("etc", &["/i/a/etc", "/i/b/etc"]),
            overlay("opt", &["/i/a/opt"]),
            overlay("srv", &["/i/a/srv"]),
            overlay("usr", &["/i/b/usr"]),
            overlay("var", &["/i/b/var"]),
            overlay("lib", &["/i/a/lib"]),
        ],
        &["/i/a", "/i/b"], &["/", "/proc"], true,
        vec![("/i/a", vec![1, 2, 5]), ("/i/b", vec![3, 4])]
    )]
    // A layer with a host mount below it in a user namespace: locked, not shared.
    #[case::layer_with_submount(
        vec![overlay("opt", &["/i/a/opt"]), overlay("srv", &["/i/a/srv"])],
        &["/i/a"], &["/", "/i/a/srv/x"], true, vec![]
    )]
    // A directory that is not directly in a lower layer (a lower of `/usr`, entries of it).
    #[case::not_a_layer_child(
        vec![overlay("bin", &["/usr/bin"]), overlay("lib", &["/usr/lib"])],
        &["/usr"], &["/"], false, vec![("/usr", vec![0, 1])]
    )]
    #[case::parent_not_a_layer(
        vec![overlay("bin", &["/x/bin"]), overlay("lib", &["/x/lib"])],
        &["/usr"], &["/"], false, vec![]
    )]
    fn sharing(
        #[case] entries: Vec<RootEntry>,
        #[case] lowers: &[&str],
        #[case] host: &[&str],
        #[case] userns: bool,
        #[case] want: Vec<(&str, Vec<usize>)>,
    ) {
        let lowers: Vec<PathBuf> = lowers.iter().map(PathBuf::from).collect();
        let got = shareable(&entries, &lowers, &mounts(host), userns);
        let want: Vec<SharedLower> = want
            .into_iter()
            .map(|(p, members)| SharedLower {
                parent: p.into(),
                members,
            })
            .collect();
        assert_eq!(got, want);
    }

    /// A root of the host's `/` with two one-directory overlays, not yet grouped.
    fn etc_and_usr(writable: bool) -> RootfsPlan {
        RootfsPlan {
            lowers: Keyed::new(vec!["/".into()], KeyPath::root()),
            writable,
            size: DEFAULT_ROOT_SIZE,
            entries: vec![overlay("etc", &["/etc"]), overlay("usr", &["/usr"])],
            image: None,
            userxattr: false,
            shared: Vec::new(),
        }
    }

    #[test]
    fn writable_root_shares_nothing() {
        let mut plan = etc_and_usr(true);
        share_lowers(&mut plan, &mounts(&["/"]), false);
        assert!(plan.shared.is_empty());
        plan.writable = false;
        share_lowers(&mut plan, &mounts(&["/"]), false);
        assert_eq!(plan.shared.len(), 1);
    }

    /// A plan recorded before `shared` existed (a running sandbox's record in the state
    /// directory) still reads, and shares nothing: an overlay per entry, as it was launched.
    #[test]
    fn a_record_without_shared_reads_as_sharing_nothing() {
        let mut plan = etc_and_usr(false);
        share_lowers(&mut plan, &mounts(&["/"]), false);
        let mut old = serde_json::to_value(&plan).expect("a plan serializes");
        old.as_object_mut().expect("an object").remove("shared");
        let read: RootfsPlan = serde_json::from_value(old).expect("an old record reads");
        assert!(read.shared.is_empty());
        assert_eq!(read.entries, plan.entries);
    }

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

    /// `./.wh..wh..opq` in an image layer (the store marks the layer's root opaque) hides
    /// everything of the layers below it, their top-level directories included.
    #[test]
    fn an_opaque_layer_root_hides_the_layers_below() {
        let top = std::env::temp_dir().join(format!("kekkai-opaque-root-{}", std::process::id()));
        let (a, b, c) = (top.join("a"), top.join("b"), top.join("c"));
        for d in [
            a.join("etc"),
            b.join("etc"),
            b.join("only-b"),
            c.join("only-c"),
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        xattr::set(&b, "user.overlay.opaque", b"y").unwrap();
        let mut lowers = vec![a.clone(), b.clone(), c.clone()];
        hide_below_opaque_root(&mut lowers);
        assert_eq!(lowers, [a.clone(), b.clone()]);
        let entries = root_entries(&lowers, &[], true);
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["etc", "only-b"]);
        // The top layer's own root opaque: only it.
        xattr::set(&a, "user.overlay.opaque", b"y").unwrap();
        let mut lowers = vec![a.clone(), b.clone(), c.clone()];
        hide_below_opaque_root(&mut lowers);
        assert_eq!(lowers, std::slice::from_ref(&a));
        std::fs::remove_dir_all(&top).unwrap();
    }

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
