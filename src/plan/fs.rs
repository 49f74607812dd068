//! The root filesystem and the mount list, resolved against the host at plan time.
//!
//! The root is a private tmpfs "skeleton" holding one entry per top-level name of the lower
//! layers: directories become read-only overlays of the same directory in every layer that has
//! it (top first), symlinks are recreated, host pseudo-filesystems (/proc, /sys, /dev) become
//! empty mount points, and a directory with host mounts below it is bind-mounted recursively
//! (overlayfs can't take a lower directory with locked submounts inside a user namespace). The
//! same shape serves root and unprivileged callers, host directories and unpacked images.
//!
//! Ordering in the launch: everything here is built in a staging directory after mount
//! propagation is made private, and before `pivot_root`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use super::Diags;
use super::units::{Amount, parse_mode, parse_size};
use crate::policy::KeyPath;
use crate::policy::model::{Mount, Namespace, Rootfs};

/// Default size of the writable layer over the root.
pub const DEFAULT_ROOT_SIZE: u64 = 256 << 20;
/// Default size of a tmpfs mount.
pub const DEFAULT_TMPFS_SIZE: u64 = 64 << 20;

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
    /// Lower layers, top first.
    pub lowers: Vec<PathBuf>,
    /// Writes go to a throw-away tmpfs layer.
    pub writable: bool,
    /// Size of that layer (and of the skeleton).
    pub size: u64,
    /// One entry per top-level name.
    pub entries: Vec<RootEntry>,
    /// The layers are an image's (`rootfs.image`): set when the policy names one.
    pub image: Option<super::image::ImagePlan>,
    /// Mount the overlays with `userxattr`: the layers mark opaque directories with
    /// `user.overlay.opaque` (an image store's format, root and rootless alike).
    pub userxattr: bool,
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

/// A mount from the policy, resolved.
#[derive(Debug, Clone, PartialEq)]
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
}

/// The kinds of mount.
#[derive(Debug, Clone, PartialEq)]
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
}

impl MountKind {
    /// Short name for explain.
    pub fn name(&self) -> &'static str {
        match self {
            MountKind::Bind { .. } => "bind",
            MountKind::Tmpfs { .. } => "tmpfs",
            MountKind::Hide => "hide",
            MountKind::Proc => "proc",
            MountKind::Dev => "dev",
            MountKind::Mqueue => "mqueue",
        }
    }
}

/// Checks and normalizes an absolute path: no `..`, no NUL; `.` and repeated `/` collapse.
pub fn normalize_abs(text: &str) -> Result<PathBuf, String> {
    if text.contains('\0') {
        return Err("a path can't contain a NUL byte".into());
    }
    if !text.starts_with('/') {
        return Err(format!("`{text}` is not an absolute path"));
    }
    let mut out = PathBuf::from("/");
    for c in Path::new(text).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                return Err(format!("`{text}` contains `..`; write the path without it"));
            }
            Component::Prefix(_) => return Err(format!("`{text}` is not a Linux path")),
        }
    }
    Ok(out)
}

/// A host mount point and its file system type.
#[derive(Debug, Clone, PartialEq)]
pub struct HostMount {
    /// Where it is mounted.
    pub point: PathBuf,
    /// Its file system type.
    pub fstype: String,
}

/// Reads the caller's mount table (`/proc/self/mountinfo`).
pub fn host_mounts() -> Vec<HostMount> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| parse_mountinfo(&t))
        .unwrap_or_default()
}

/// Parses mountinfo lines: field 5 is the mount point, the first field after ` - ` the type.
pub fn parse_mountinfo(text: &str) -> Vec<HostMount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let fstype = right.split(' ').next()?;
            Some(HostMount {
                point: PathBuf::from(OsStr::from_bytes(&unescape_mountinfo(point))),
                fstype: fstype.to_owned(),
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b.get(i) == Some(&b'\\') {
            if let Some(oct) = b.get(i + 1..i + 4) {
                if let Ok(v) = u8::from_str_radix(std::str::from_utf8(oct).unwrap_or("x"), 8) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b.get(i).copied().unwrap_or_default());
        i += 1;
    }
    out
}

/// Plans the root filesystem; `image` (resolved from `rootfs.image`) gives the layers instead
/// of `rootfs.lower`.
pub fn plan_rootfs(
    spec: Option<&Rootfs>,
    image: Option<super::image::ImagePlan>,
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
    RootfsPlan {
        lowers,
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
            let ft = meta.file_type();
            if ft.is_char_device() && meta.rdev() == 0 {
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

/// Well-known secrets, relative to a home directory: keys, credentials, password stores,
/// browser profiles and shell histories. Inside a bound directory they stay hidden (an empty
/// directory, or /dev/null for a file) unless a bind names one of them (or a directory inside
/// one) itself. Firejail's default profile hides the same kind of files.
pub const SECRETS: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".password-store",
    ".local/share/keyrings",
    ".pki",
    ".netrc",
    ".git-credentials",
    ".config/gh",
    ".config/hub",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".kube",
    ".docker",
    ".terraform.d",
    ".vault-token",
    ".npmrc",
    ".pypirc",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".gem/credentials",
    ".mozilla",
    ".thunderbird",
    ".config/chromium",
    ".config/google-chrome",
    ".bash_history",
    ".zsh_history",
    ".python_history",
    ".psql_history",
    ".mysql_history",
];

/// The home directories whose secrets stay hidden: the caller's, root's and every directory in
/// /home, as the host resolves them.
pub fn homes(caller_home: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = [caller_home.to_path_buf(), PathBuf::from("/root")]
        .into_iter()
        .chain(
            std::fs::read_dir("/home")
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .map(|e| e.path()),
        )
        .filter_map(|h| std::fs::canonicalize(h).ok())
        .filter(|h| h != Path::new("/"))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What keeps the policy's hiding in force over its binds (see [`protect`]).
pub struct Guard<'a> {
    /// Was this bind's source (`mounts[N].bind`) written `${PWD}`?
    pub from_pwd: &'a dyn Fn(&KeyPath) -> bool,
    /// The caller's home directory, canonical; `None` when it is `/`.
    pub home: Option<PathBuf>,
    /// Home directories whose well-known secrets stay hidden ([`homes`]).
    pub homes: Vec<PathBuf>,
}

/// A bind never undoes the policy's hiding (docs/policy.md, "What a bind can't undo"):
///
/// - inside any bound directory, the well-known [`SECRETS`] of every home stay hidden, unless
///   the bind names the secret itself;
/// - the working directory (a bind written `${PWD}`) shows no tree an earlier `hide` or
///   `tmpfs` mount covers: such a tree inside it (or equal to it) is hidden or made private
///   again over the bind; a working directory inside a hidden tree stays hidden itself, unless
///   it is in the caller's own home; one that is a secret stays hidden.
///
/// Returns the mounts with what it added after each bind, and one note per bind it changed.
pub fn protect(mounts: Vec<MountPlan>, guard: &Guard<'_>) -> (Vec<MountPlan>, Vec<String>) {
    let mut out: Vec<MountPlan> = Vec::with_capacity(mounts.len());
    let mut notes = Vec::new();
    for m in mounts {
        let MountKind::Bind { source, dir, .. } = &m.kind else {
            out.push(m);
            continue;
        };
        let (source, dir, target, key) = (source.clone(), *dir, m.target.clone(), m.key.clone());
        let from_pwd = (guard.from_pwd)(&key.key("bind"));
        let in_home = guard.home.as_ref().is_some_and(|h| source.starts_with(h));
        let (inside, holder) = secrets_near(&source, &guard.homes);
        let mut added: Vec<MountPlan> = Vec::new();
        let mut said: Vec<String> = Vec::new();
        let mut all_hidden = false;
        if from_pwd {
            if let Some(secret) = &holder {
                said.push(format!("{} is a well-known secret", secret.display()));
                all_hidden = true;
            }
            for p in out
                .iter()
                .filter(|p| matches!(p.kind, MountKind::Hide | MountKind::Tmpfs { .. }))
            {
                let hidden = matches!(p.kind, MountKind::Hide);
                let tree = std::fs::canonicalize(&p.target).unwrap_or_else(|_| p.target.clone());
                // The one exception: the caller's own home, when a hidden tree is what holds it
                // (`hide: /home`, or `hide: /root` for root).
                let own_home =
                    hidden && in_home && guard.home.as_ref().is_some_and(|h| h.starts_with(&tree));
                if own_home {
                    continue;
                }
                if let Ok(rel) = tree.strip_prefix(&source) {
                    // The working directory holds the tree (or is it): cover that part again.
                    added.push(MountPlan {
                        key: p.key.clone(),
                        origin: String::new(),
                        target: under(&target, rel),
                        kind: p.kind.clone(),
                    });
                    said.push(format!(
                        "{} stays {} ({})",
                        tree.display(),
                        if hidden { "hidden" } else { "private" },
                        p.key
                    ));
                } else if hidden && source.starts_with(&tree) {
                    said.push(format!(
                        "it is inside {}, which {} hides, and outside your home",
                        tree.display(),
                        p.key
                    ));
                    all_hidden = true;
                }
            }
        }
        if all_hidden {
            added.retain(|a| a.target != target && !a.target.starts_with(&target));
            added.push(MountPlan {
                key: key.clone(),
                origin: String::new(),
                target: target.clone(),
                kind: MountKind::Hide,
            });
            said.insert(0, format!("{} stays hidden", source.display()));
            said.push("bind it explicitly to show it".into());
        } else if dir {
            // Secrets not already under a tree hidden again above.
            let mut names = Vec::new();
            for secret in &inside {
                let Ok(rel) = secret.strip_prefix(&source) else {
                    continue;
                };
                let at = under(&target, rel);
                if added
                    .iter()
                    .any(|a| matches!(a.kind, MountKind::Hide) && at.starts_with(&a.target))
                {
                    continue;
                }
                names.push(rel.display().to_string());
                added.push(MountPlan {
                    key: key.clone(),
                    origin: String::new(),
                    target: at,
                    kind: MountKind::Hide,
                });
            }
            if !names.is_empty() {
                said.push(format!(
                    "secrets stay hidden: {} (bind one by name to give it)",
                    names.join(" ")
                ));
            }
        }
        if !said.is_empty() {
            let what = if from_pwd {
                format!("the working directory ({key})")
            } else {
                format!("{key} (bind {})", source.display())
            };
            notes.push(format!("{what}: {}", said.join("; ")));
        }
        out.push(m);
        out.extend(added);
    }
    (out, notes)
}

/// `target` joined with `rel`, without a trailing `/` for an empty `rel`.
fn under(target: &Path, rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        target.to_path_buf()
    } else {
        target.join(rel)
    }
}

/// The well-known secrets of `homes` strictly inside `source` (canonical, sorted), and the one
/// `source` is (or lies inside), if any.
fn secrets_near(source: &Path, homes: &[PathBuf]) -> (Vec<PathBuf>, Option<PathBuf>) {
    let mut inside = Vec::new();
    let mut holder = None;
    for home in homes
        .iter()
        .filter(|h| h.starts_with(source) || source.starts_with(h))
    {
        for rel in SECRETS {
            let Ok(secret) = std::fs::canonicalize(home.join(rel)) else {
                continue;
            };
            if secret != source && secret.starts_with(source) {
                inside.push(secret);
            } else if source.starts_with(&secret) {
                holder = Some(secret);
            }
        }
    }
    inside.sort();
    inside.dedup();
    (inside, holder)
}

impl MountKind {
    /// The policy key that names this kind of mount (`bind`, `tmpfs`, ...).
    pub fn key(&self) -> &'static str {
        match self {
            MountKind::Bind { .. } => "bind",
            MountKind::Tmpfs { .. } => "tmpfs",
            MountKind::Hide => "hide",
            MountKind::Proc => "proc",
            MountKind::Dev => "dev",
            MountKind::Mqueue => "mqueue",
        }
    }

    fn with_target(self, target: PathBuf, key: KeyPath) -> MountPlan {
        MountPlan {
            key,
            origin: String::new(),
            target,
            kind: self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("/", Ok("/"))]
    #[case("/usr//lib/./x/", Ok("/usr/lib/x"))]
    #[case("usr", Err("not an absolute path"))]
    #[case("/a/../b", Err("contains `..`"))]
    #[case("/a\0b", Err("NUL"))]
    fn normalize(#[case] input: &str, #[case] want: Result<&str, &str>) {
        match (normalize_abs(input), want) {
            (Ok(p), Ok(w)) => assert_eq!(p, PathBuf::from(w)),
            (Err(e), Err(w)) => assert!(e.contains(w), "{e}"),
            (got, want) => panic!("{got:?} vs {want:?}"),
        }
    }

    #[test]
    fn mountinfo_parses_points_types_and_escapes() {
        let text = "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
                    28 27 0:25 / /mnt/with\\040space ro - tmpfs x ro\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].point, PathBuf::from("/proc"));
        assert_eq!(m[0].fstype, "proc");
        assert_eq!(m[1].point, PathBuf::from("/mnt/with space"));
        assert_eq!(m[2].fstype, "cgroup2");
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

    /// A host tree for [`protect`]: `T/home/{alice,bob}` (alice with `.ssh/` and `.netrc`, a
    /// `project/`), `T/run/x`, `T/scratch/x`; the policy hides `T/home` and `T/run` and mounts a
    /// tmpfs at `T/scratch`; alice is the caller.
    struct Host {
        top: PathBuf,
    }

    impl Host {
        fn new() -> Host {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let top =
                std::env::temp_dir().join(format!("kekkai-protect-{}-{n}", std::process::id()));
            for d in [
                "home/alice/.ssh",
                "home/alice/project",
                "home/bob",
                "run/x",
                "scratch/x",
            ] {
                std::fs::create_dir_all(top.join(d)).unwrap();
            }
            std::fs::write(top.join("home/alice/.netrc"), "machine x password y\n").unwrap();
            Host {
                top: std::fs::canonicalize(&top).unwrap(),
            }
        }

        fn p(&self, rel: &str) -> PathBuf {
            under(&self.top, Path::new(rel))
        }

        fn mount(&self, i: usize, kind: MountKind, target: &str) -> MountPlan {
            MountPlan {
                key: KeyPath::root().key("mounts").index(i),
                origin: String::new(),
                target: if target.starts_with('/') {
                    PathBuf::from(target)
                } else {
                    self.p(target)
                },
                kind,
            }
        }

        /// The policy's own mounts, then a bind of `source` to `target` (relative paths are
        /// below the top), written `${PWD}` or not.
        fn protect(
            &self,
            source: &str,
            target: &str,
            pwd: bool,
        ) -> (Vec<(String, String)>, Vec<String>) {
            let source = self.p(source);
            let meta = std::fs::metadata(&source).unwrap();
            let bind = MountKind::Bind {
                source,
                dev_ino: (meta.dev(), meta.ino()),
                dir: true,
                writable: false,
                exec: true,
            };
            let tmpfs = MountKind::Tmpfs {
                size: 1 << 20,
                mode: 0o1777,
                exec: true,
            };
            let mounts = vec![
                self.mount(0, MountKind::Hide, "home"),
                self.mount(1, MountKind::Hide, "run"),
                self.mount(2, tmpfs, "scratch"),
                self.mount(3, bind, target),
            ];
            let from_pwd = |k: &KeyPath| pwd && k.to_string() == "mounts[3].bind";
            let guard = Guard {
                from_pwd: &from_pwd,
                home: Some(self.p("home/alice")),
                homes: vec![self.p("home/alice"), self.p("home/bob")],
            };
            let (out, notes) = protect(mounts, &guard);
            let added = out
                .iter()
                .skip(4)
                .map(|m| {
                    let t = m.target.strip_prefix(&self.top).map_or_else(
                        |_| m.target.display().to_string(),
                        |r| r.display().to_string(),
                    );
                    (format!("{} {}", m.key, m.kind.name()), t)
                })
                .collect();
            (added, notes)
        }
    }

    impl Drop for Host {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.top);
        }
    }

    #[rstest]
    // cd ~: the home is shown, its secrets are not.
    #[case::pwd_home("home/alice", "home/alice", true, &[("mounts[3] hide", "home/alice/.netrc"), ("mounts[3] hide", "home/alice/.ssh")])]
    // The same for a bind a policy or a flag writes: only the secrets.
    #[case::explicit_home("home/alice", "/h", false, &[("mounts[3] hide", "/h/.netrc"), ("mounts[3] hide", "/h/.ssh")])]
    // A bind that names the secret gives it.
    #[case::explicit_secret("home/alice/.ssh", "/keys", false, &[])]
    // cd ~/.ssh: the working directory is a secret, and stays hidden.
    #[case::pwd_secret("home/alice/.ssh", "home/alice/.ssh", true, &[("mounts[3] hide", "home/alice/.ssh")])]
    // cd ~/project: nothing to keep.
    #[case::pwd_project("home/alice/project", "/work", true, &[])]
    // Another user's home, inside the hidden /home: stays hidden.
    #[case::pwd_other_home("home/bob", "home/bob", true, &[("mounts[3] hide", "home/bob")])]
    // cd /run: the hidden tree is hidden again over the bind.
    #[case::pwd_hidden_tree("run", "run", true, &[("mounts[1] hide", "run")])]
    // cd /run/x: inside a hidden tree, so hidden.
    #[case::pwd_inside_hidden("run/x", "run/x", true, &[("mounts[3] hide", "run/x")])]
    // cd /tmp (the private tmpfs): private again, bound elsewhere too.
    #[case::pwd_private_tree("scratch", "scratch", true, &[("mounts[2] tmpfs", "scratch")])]
    #[case::pwd_private_tree_elsewhere("scratch", "/work", true, &[("mounts[2] tmpfs", "/work")])]
    // cd /tmp/x: the user's directory in the private tree is shown.
    #[case::pwd_inside_private("scratch/x", "scratch/x", true, &[])]
    // cd to a directory holding all three trees: each is covered again where it shows.
    #[case::pwd_holding_all("", "/work", true, &[("mounts[0] hide", "/work/home"), ("mounts[1] hide", "/work/run"), ("mounts[2] tmpfs", "/work/scratch")])]
    // An explicit bind of a hidden tree is the policy's choice (as in bubblewrap: later wins).
    #[case::explicit_hidden_tree("run", "run", false, &[])]
    fn protect_keeps_the_hiding(
        #[case] source: &str,
        #[case] target: &str,
        #[case] pwd: bool,
        #[case] want: &[(&str, &str)],
    ) {
        let host = Host::new();
        let (added, notes) = host.protect(source, target, pwd);
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, t)| (k.to_string(), t.to_string()))
            .collect();
        assert_eq!(added, want, "{notes:?}");
        assert_eq!(notes.len(), usize::from(!want.is_empty()), "{notes:?}");
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
