//! Steps 4–6: the root filesystem, the policy's mounts, pivot_root.
//!
//! Mount propagation is made private first, so nothing here is ever seen by the host. Every
//! host object the sandbox needs is taken before anything is covered: overlay layers as O_PATH
//! descriptors (named `.` after `fchdir` to the top one, or `/proc/self/fd/N`, in the overlay
//! options, so no path from the policy ever appears inside a mount option string and `,` `:` or
//! `=` in a path can't inject options),
//! bind sources as detached mount trees (`open_tree(OPEN_TREE_CLONE)`, made read-only before
//! they are attached with `move_mount`, so a recursive bind can't pick up the staging area).
//! A private tmpfs over `/tmp` stages the overlays' upper and work directories; the new root is a
//! tmpfs skeleton at `/tmp/root`. Mount targets are resolved with RESOLVE_IN_ROOT against the new
//! root, so a symlink can never lead a mount outside it. After pivot_root the old root is detached,
//! and the layers that must not change are made read-only with mount_setattr (which changes only
//! the attributes named, so flags the kernel locked on host mounts are kept). An overlay of lower
//! layers only is mounted read-only at once: nothing is ever written through it.
//!
//! Top-level entries whose overlay would be one directory `P/name` of the same layer `P`, with
//! no upper layer, share one overlay (a superblock to build and, at teardown, to free, with its
//! RCU grace period): a lower-only overlay of `P` itself is mounted read-only on the staging
//! tmpfs, and each entry is a detached clone of its directory there (`open_tree`, which keeps
//! the overlay's ro,nosuid,nodev) moved onto the skeleton. Only the directories are attached,
//! never the overlay's root, and the staging mount goes with the old root. The plan groups them
//! (`plan::fs::share_lowers`): not the host's `/` in a user namespace, where its mounts are
//! locked and overlayfs refuses it as a layer, so in practice the host root of a policy without
//! one, and an image's layers. At launch each name must resolve from `P`'s descriptor as a
//! directory on `P`'s own mount (`RESOLVE_NO_XDEV`: an overlay of `P` shows what is under a
//! mount point, not the mount); one that does not, or a group the kernel refuses, gets an
//! overlay of its own as before (a refusal is a note, shown with `-v`).

use std::borrow::Cow;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, OFlag, ResolveFlag};
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::Mode;

use super::error::{StepError, Syscall};
use crate::plan::steps::Step;
use crate::plan::{EntryKind, MountKind, MountPlan, Plan};
use crate::policy::KeyPath;
use crate::sys::{Kernel, fd_path, mount_attr};

/// Where the staging tmpfs goes, inside the sandbox's private mount namespace.
const STAGING: &str = "/tmp";
/// The new root, inside the staging area.
const NEW_ROOT: &str = "/tmp/root";
/// Device nodes a `dev` mount passes through from the host.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The root being built.
pub struct Staged {
    /// O_PATH descriptor of the new root's skeleton.
    root: OwnedFd,
    /// Mounts to make read-only at the end.
    seal: Vec<OwnedFd>,
    /// Host objects, opened before anything was covered.
    host: HostFds,
    /// Descriptors done with, closed with the others at pivot_root: the shared overlays'
    /// staging directories and the detached trees bound from them.
    spent: Vec<OwnedFd>,
    /// What was done otherwise than planned without weakening anything (shown with `-v`).
    notes: Vec<String>,
}

/// Host objects, taken before anything is covered.
struct HostFds {
    /// Per root entry (same order as the plan's entries): the overlay's lower directories
    /// (O_PATH), or the detached read-only tree of a bound directory or file.
    entries: Vec<Vec<OwnedFd>>,
    /// Detached, already-restricted trees of the policy's binds (same order as the plan's
    /// mounts; None for other kinds).
    binds: Vec<Option<OwnedFd>>,
    /// The host's device nodes (O_PATH), by name.
    devices: Vec<(&'static str, OwnedFd)>,
    /// The parents of the entries that may share one overlay, with the members that passed.
    shared: Vec<Shared>,
}

/// A parent layer of the plan's [`crate::plan::SharedLower`], opened, and the members whose
/// directory resolved from it on its own mount (their descriptors are their `entries`).
struct Shared {
    /// Which of the plan's groups.
    group: usize,
    /// O_PATH descriptor of the parent (the host's `/`, or an image layer's root).
    parent: OwnedFd,
    /// Indices into the plan's entries.
    members: Vec<usize>,
}

/// A detached copy of the mount tree at `fd`, with `set` applied to every mount in it.
fn detached_tree(
    k: &dyn Kernel,
    fd: BorrowedFd<'_>,
    recursive: bool,
    set: u64,
    step: Step,
    shown: &str,
) -> Result<OwnedFd, StepError> {
    let tree = k.open_tree_clone(fd, recursive).step(step, || {
        format!(
            "open_tree({shown:?}, OPEN_TREE_CLONE{})",
            if recursive { "|AT_RECURSIVE" } else { "" }
        )
    })?;
    k.mount_setattr(tree.as_fd(), set, 0, recursive)
        .step(step, || {
            format!(
                "mount_setattr({shown:?}, {set:#x}{})",
                if recursive { ", AT_RECURSIVE" } else { "" }
            )
        })?;
    Ok(tree)
}

/// Attaches a detached tree at `target` (an O_PATH descriptor of the mount point).
fn attach(
    k: &dyn Kernel,
    tree: &OwnedFd,
    target: BorrowedFd<'_>,
    step: Step,
    shown: &str,
) -> Result<(), StepError> {
    k.move_mount(tree.as_fd(), target)
        .step(step, || format!("move_mount(tree, {shown:?})"))
}

const RO: u64 = mount_attr::RDONLY | mount_attr::NOSUID | mount_attr::NODEV;

fn cstr(s: &str) -> String {
    format!("{s:?}")
}

/// How `mount(2)` names the directory `dir` (a descriptor opened and checked earlier): `.` once
/// `fchdir` made it the working directory, which the kernel resolves to exactly that directory
/// (no component, no link, no /proc), or else its `/proc/self/fd/N` link, which names the same
/// object. The link is the fallback because `fchdir` needs search permission on the directory
/// (a 0700 directory of an owner unmapped in a rootless setup's user namespace denies it) and a
/// directory, where the link needs neither; it works wherever the link did, and a failure of
/// the mount is the mount's, as before. `.` spares procfs the lookup (self, pid, fd, N) and,
/// above all, the dentries it leaves under `/proc/<pid>/fd/`, which the kernel evicts when the
/// process is reaped: on the supervisor's `wait4`, between the program's exit and kekkai's
/// (docs/performance.md, item 24).
///
/// The working directory stays there. Nothing in steps 4 and 5 resolves a relative path
/// against it (every path is absolute or under a descriptor: `cwd_is_never_a_base` in the
/// child's tests), and step 6 begins with `fchdir` to the new root.
fn here(k: &dyn Kernel, dir: BorrowedFd<'_>) -> Cow<'static, str> {
    match k.fchdir(dir) {
        Ok(()) => Cow::Borrowed("."),
        Err(_) => Cow::Owned(fd_path(dir)),
    }
}

/// Mounts a fresh `fstype` at `at` (a path, or [`here`] for a descriptor of the target); the step
/// error shows the call with `shown`, the target as the sandbox will see it.
fn mount_fs(
    k: &dyn Kernel,
    fstype: &str,
    at: &str,
    shown: &str,
    flags: MsFlags,
    data: Option<&str>,
    step: Step,
) -> Result<(), StepError> {
    k.mount(Some(fstype), at, Some(fstype), flags, data)
        .step(step, || {
            let names: Vec<&str> = flags.iter_names().map(|(n, _)| n).collect();
            format!(
                "mount({fstype:?}, {shown:?}, {fstype:?}, {}, {})",
                names.join("|"),
                data.map_or_else(|| "NULL".to_owned(), cstr)
            )
        })
}

fn open_path(k: &dyn Kernel, path: &Path, dir: bool) -> nix::Result<OwnedFd> {
    let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    if dir {
        flags |= OFlag::O_DIRECTORY;
    }
    k.open(path, flags)
}

/// Opens a host object of a lower layer that the plan found (at a canonical path, so with no
/// symbolic link in it): a link that appeared since is refused (`ELOOP`). Whoever owns a layer
/// could otherwise swap one of its entries for a link to any host directory between the plan
/// and the mount, and the sandbox would show that directory.
fn open_layer_entry(
    k: &dyn Kernel,
    path: &Path,
    dir: bool,
    key: &KeyPath,
) -> Result<OwnedFd, StepError> {
    let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    if dir {
        flags |= OFlag::O_DIRECTORY;
    }
    let resolve = ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS;
    k.openat2(AT_FDCWD, path, flags, resolve)
        .step(Step::Rootfs, || {
            format!("openat2(AT_FDCWD, {path:?}, O_PATH, RESOLVE_NO_SYMLINKS)")
        })
        .map_err(|e| {
            e.key(key)
                .hint("the layer changed since the policy was checked")
        })
}

/// Step 4: private propagation, the staging tmpfs, the skeleton and its overlays.
pub fn build_root(k: &dyn Kernel, plan: &Plan) -> Result<Staged, StepError> {
    let step = Step::Rootfs;
    k.mount(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)
        .step(step, || {
            "mount(NULL, \"/\", NULL, MS_REC|MS_PRIVATE, NULL)".into()
        })?;
    let host = open_host(k, plan)?;

    let size = plan.rootfs.size;
    let staging_opts = tmpfs_opts(size, 0o700);
    mount_fs(
        k,
        "tmpfs",
        STAGING,
        STAGING,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&staging_opts),
        step,
    )
    .map_err(|e| {
        e.hint("kekkai stages the new root on a private tmpfs over /tmp, which must be a directory")
    })?;
    // Which overlays get an upper layer decides which staging directories are made.
    let uppers: Vec<bool> = plan
        .rootfs
        .entries
        .iter()
        .zip(&host.entries)
        .map(|(e, lowers)| match &e.kind {
            EntryKind::Overlay(_) => needs_upper(k, plan, &e.name, lowers.first()),
            _ => false,
        })
        .collect();
    let overlays = plan.rootfs.entries.iter().zip(&uppers);
    let (any_upper, any_lower_only) = overlays.fold((false, false), |(u, l), (e, up)| {
        let overlay = matches!(e.kind, EntryKind::Overlay(_));
        (u || (overlay && *up), l || (overlay && !*up))
    });
    let mut staging_dirs = vec![NEW_ROOT];
    if any_upper {
        staging_dirs.extend(["/tmp/u", "/tmp/w"]);
    }
    if any_lower_only {
        staging_dirs.push(EMPTY_LOWER);
    }
    for d in staging_dirs {
        k.mkdirat(AT_FDCWD, Path::new(d), Mode::from_bits_truncate(0o755))
            .step(step, || format!("mkdir({}, 0755)", cstr(d)))?;
    }
    let root_opts = tmpfs_opts(size, 0o755);
    mount_fs(
        k,
        "tmpfs",
        NEW_ROOT,
        NEW_ROOT,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&root_opts),
        step,
    )?;
    let root = open_path(k, Path::new(NEW_ROOT), true)
        .step(step, || format!("open({}, O_PATH)", cstr(NEW_ROOT)))?;
    let mut seal = Vec::new();
    if !plan.rootfs.writable {
        seal.push(k.dup(root.as_fd()).step(step, || "dup(root)".into())?);
    }
    let mut notes = Vec::new();
    let (ovls, from) = mount_shared(k, plan, &host.shared, &uppers, &mut notes)?;
    let mut spent = Vec::new();

    let entries = plan.rootfs.entries.iter().zip(&host.entries).zip(&uppers);
    for (i, ((entry, lowers), &upper)) in entries.enumerate() {
        let target = format!("{NEW_ROOT}/{}", entry.name);
        let name = entry.name.as_str();
        match &entry.kind {
            EntryKind::Overlay(dirs) => {
                k.mkdirat(
                    root.as_fd(),
                    Path::new(name),
                    Mode::from_bits_truncate(0o755),
                )
                .step(step, || format!("mkdir({})", cstr(&target)))?;
                // A member of a shared overlay: a bind of its directory from there.
                if let Some(ovl) = from.get(i).copied().flatten().and_then(|g| ovls.get(g)) {
                    let key = &plan.rootfs.lowers.key;
                    let attached = bind_shared(k, ovl.as_fd(), root.as_fd(), name, &target)
                        .map_err(|e| e.key(key))?;
                    if let Some(fds) = attached {
                        spent.extend(fds);
                        continue;
                    }
                }
                // The top layer is named by [`here`] (`.`), any below it by their links.
                let lower: Vec<Cow<'static, str>> = lowers
                    .iter()
                    .enumerate()
                    .map(|(j, fd)| {
                        if j == 0 {
                            here(k, fd.as_fd())
                        } else {
                            Cow::Owned(fd_path(fd.as_fd()))
                        }
                    })
                    .collect();
                // An image store marks opaque directories in the user.overlay.* namespace.
                let xattrs = if plan.rootfs.userxattr {
                    ",userxattr"
                } else {
                    ""
                };
                // An upper layer (on the staging tmpfs) only where something must be written:
                // a writable root, or a policy mount point inside this entry that the top layer
                // lacks. Elsewhere the overlay is lower layers only: read-only by construction,
                // and the kernel makes no work directory (overlayfs wants two lower layers
                // without an upper: the second is empty). Such a mount is made read-only at
                // once (MS_RDONLY) instead of sealed after pivot_root: nothing is ever written
                // through it, so the descriptor and the later mount_setattr are not needed.
                let opts = if upper {
                    let (upper, work) = (format!("/tmp/u/{i}"), format!("/tmp/w/{i}"));
                    for d in [&upper, &work] {
                        k.mkdirat(AT_FDCWD, Path::new(d), Mode::from_bits_truncate(0o755))
                            .step(step, || format!("mkdir({})", cstr(d)))?;
                    }
                    format!(
                        "lowerdir={},upperdir={upper},workdir={work}{xattrs}",
                        lower.join(":")
                    )
                } else {
                    format!("lowerdir={}:{EMPTY_LOWER}{xattrs}", lower.join(":"))
                };
                let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
                if !upper {
                    flags |= MsFlags::MS_RDONLY;
                }
                k.mount(
                    Some("overlay"),
                    target.as_str(),
                    Some("overlay"),
                    flags,
                    Some(opts.as_str()),
                )
                .step(step, || {
                    let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
                    let names: Vec<&str> = flags.iter_names().map(|(n, _)| n).collect();
                    format!(
                        "mount(\"overlay\", {}, \"overlay\", {}, {}) [lower: {}]",
                        cstr(&target),
                        names.join("|"),
                        cstr(&opts),
                        shown.join(":")
                    )
                })
                .map_err(|e| e.key(&plan.rootfs.lowers.key))?;
                if upper && !plan.rootfs.writable {
                    seal.push(
                        open_path(k, Path::new(&target), true)
                            .step(step, || format!("open({}, O_PATH)", cstr(&target)))?,
                    );
                }
            }
            EntryKind::Bind(src) | EntryKind::File(src) => {
                let Some(tree) = lowers.first() else {
                    return Err(StepError::msg(
                        step,
                        format!("no mount tree for {}", src.display()),
                    ));
                };
                // The mount point is attached to through what made it: the created file's
                // descriptor, or the directory's name in the root (one component, no link
                // followed), so there is nothing to open again by path.
                if matches!(entry.kind, EntryKind::Bind(_)) {
                    k.mkdirat(
                        root.as_fd(),
                        Path::new(name),
                        Mode::from_bits_truncate(0o755),
                    )
                    .step(step, || format!("mkdir({})", cstr(&target)))?;
                    k.move_mount_to_name(tree.as_fd(), root.as_fd(), Path::new(name))
                        .step(step, || format!("move_mount(tree, {})", cstr(&target)))?;
                } else {
                    let at = create_file(k, root.as_fd(), Path::new(name))
                        .step(step, || format!("create({})", cstr(&target)))?;
                    attach(k, tree, at.as_fd(), step, &target)?;
                }
            }
            EntryKind::Symlink(to) => {
                k.symlinkat(to.as_path(), root.as_fd(), Path::new(name))
                    .step(step, || format!("symlink({:?}, {})", to, cstr(&target)))?;
            }
            EntryKind::EmptyDir => {
                k.mkdirat(
                    root.as_fd(),
                    Path::new(name),
                    Mode::from_bits_truncate(0o755),
                )
                .step(step, || format!("mkdir({})", cstr(&target)))?;
            }
        }
    }
    spent.extend(ovls);
    Ok(Staged {
        root,
        seal,
        host,
        spent,
        notes,
    })
}

/// An empty directory on the staging tmpfs: the bottom layer of every overlay without an upper.
const EMPTY_LOWER: &str = "/tmp/e";

/// Does the overlay of the top-level entry `name` need an upper layer: is the root writable, or
/// may a policy mount's mount point below the entry have to be created? It need not when the
/// overlay's top layer (`top`, an O_PATH descriptor) already holds the whole path as a
/// directory, with no symbolic link or mount crossed on the way: the top layer's entries are
/// always visible in the overlay (a whiteout is a device or a file, never a directory), so
/// `target_in_root` finds the mount point and creates nothing (`/var/tmp` on most hosts).
/// Hiding creates nothing either: what does not exist is not hidden. Anything else (a missing
/// or linked path, a failed lookup) keeps the upper, as before.
fn needs_upper(k: &dyn Kernel, plan: &Plan, name: &str, top: Option<&OwnedFd>) -> bool {
    let entry = Path::new("/").join(name);
    plan.rootfs.writable
        || plan.mounts.iter().any(|m| {
            let Ok(rest) = m.target.strip_prefix(&entry) else {
                return false;
            };
            if rest.as_os_str().is_empty() || matches!(m.kind, MountKind::Hide) {
                return false;
            }
            let Some(top) = top else { return true };
            let found = dir_on_same_mount(k, top.as_fd(), rest);
            found.is_err()
        })
}

/// `rel` below `dir` as an O_PATH descriptor, if it is a directory reached with no link
/// followed and no mount crossed on the way (`RESOLVE_NO_XDEV`): what a layer's own file
/// system holds, as an overlay of that layer shows it.
fn dir_on_same_mount(k: &dyn Kernel, dir: BorrowedFd<'_>, rel: &Path) -> nix::Result<OwnedFd> {
    k.openat2(
        dir,
        rel,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        ResolveFlag::RESOLVE_BENEATH
            | ResolveFlag::RESOLVE_NO_SYMLINKS
            | ResolveFlag::RESOLVE_NO_MAGICLINKS
            | ResolveFlag::RESOLVE_NO_XDEV,
    )
}

/// Opens, before anything is covered, every host object the sandbox will need.
fn open_host(k: &dyn Kernel, plan: &Plan) -> Result<HostFds, StepError> {
    let step = Step::Rootfs;
    let key = &plan.rootfs.lowers.key;
    let (shared, mut checked) = open_shared(k, plan)?;
    let mut entries = Vec::new();
    for (i, e) in plan.rootfs.entries.iter().enumerate() {
        let fds = match &e.kind {
            EntryKind::Overlay(dirs) => match checked.get_mut(i).and_then(Option::take) {
                Some(fd) => vec![fd],
                None => dirs
                    .iter()
                    .map(|d| open_layer_entry(k, d, true, key))
                    .collect::<Result<Vec<_>, _>>()?,
            },
            EntryKind::Bind(p) => {
                let fd = open_layer_entry(k, p, true, key)?;
                vec![detached_tree(
                    k,
                    fd.as_fd(),
                    true,
                    RO,
                    step,
                    &p.display().to_string(),
                )?]
            }
            EntryKind::File(p) => {
                let fd = open_layer_entry(k, p, false, key)?;
                vec![detached_tree(
                    k,
                    fd.as_fd(),
                    false,
                    RO | mount_attr::NOEXEC,
                    step,
                    &p.display().to_string(),
                )?]
            }
            EntryKind::Symlink(_) | EntryKind::EmptyDir => Vec::new(),
        };
        entries.push(fds);
    }
    let mut binds = Vec::new();
    let mut need_devices = false;
    for m in &plan.mounts {
        match &m.kind {
            MountKind::Bind {
                source,
                dev_ino,
                dir,
                writable,
                exec,
            } => {
                // The plan resolved every symlink; refuse one that appeared since, and any
                // object other than the one the plan saw.
                let fd = k
                    .openat2(
                        AT_FDCWD,
                        source.as_path(),
                        OFlag::O_PATH | OFlag::O_CLOEXEC,
                        ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS,
                    )
                    .step(Step::Mounts, || {
                        format!("openat2(AT_FDCWD, {source:?}, O_PATH, RESOLVE_NO_SYMLINKS)")
                    })
                    .map_err(|e| {
                        e.at(&m.origin)
                            .hint("the bind source changed since the policy was checked")
                    })?;
                let st = k
                    .fstat(fd.as_fd())
                    .step(Step::Mounts, || format!("fstat({source:?})"))?;
                if (st.dev, st.ino) != *dev_ino {
                    return Err(StepError::msg(Step::Mounts, format!("bind source {} is not the object the plan resolved (device/inode changed)", source.display()))
                        .at(&m.origin));
                }
                let mut set = mount_attr::NOSUID | mount_attr::NODEV;
                if !writable {
                    set |= mount_attr::RDONLY;
                }
                if !exec {
                    set |= mount_attr::NOEXEC;
                }
                let tree = detached_tree(
                    k,
                    fd.as_fd(),
                    *dir,
                    set,
                    Step::Mounts,
                    &source.display().to_string(),
                )
                .map_err(|e| e.at(&m.origin))?;
                binds.push(Some(tree));
            }
            MountKind::Dev | MountKind::Hide | MountKind::Proc => {
                need_devices = true;
                binds.push(None);
            }
            _ => binds.push(None),
        }
    }
    let mut devices = Vec::new();
    if need_devices {
        for name in DEVICES {
            let path = format!("/dev/{name}");
            match open_path(k, Path::new(&path), false) {
                Ok(fd) => devices.push((name, fd)),
                // A host without /dev/tty (or the like) gives the sandbox none either.
                Err(Errno::ENOENT | Errno::ENXIO) => {}
                Err(e) => {
                    return Err(StepError::sys(
                        Step::Mounts,
                        format!("open({path:?}, O_PATH)"),
                        e,
                    ));
                }
            }
        }
    }
    Ok(HostFds {
        entries,
        binds,
        devices,
        shared,
    })
}

/// Opens the parents of the entries that may share an overlay ([`crate::plan::SharedLower`]),
/// and below each the members' directories, by name from the parent's descriptor: a
/// directory, no link on the way, and on the parent's own mount (`RESOLVE_NO_XDEV`), since an
/// overlay of the parent shows the parent's file system, not what is mounted on it. A member
/// that fails (EXDEV: a host mount of its own, such as a /boot partition; anything else) keeps
/// an overlay of its own, opened as before (which reports a layer that changed). Returns the
/// groups of two or more, and per entry the descriptor of its checked directory (its only lower
/// layer).
fn open_shared(
    k: &dyn Kernel,
    plan: &Plan,
) -> Result<(Vec<Shared>, Vec<Option<OwnedFd>>), StepError> {
    let entries = &plan.rootfs.entries;
    let mut checked: Vec<Option<OwnedFd>> = entries.iter().map(|_| None).collect();
    let mut shared = Vec::new();
    for (n, g) in plan.rootfs.shared.iter().enumerate() {
        let parent = open_layer_entry(k, &g.parent, true, &plan.rootfs.lowers.key)?;
        let mut members = Vec::new();
        for &i in &g.members {
            let Some(e) = entries.get(i) else { continue };
            // The plan's promise, kept here too: one lower directory, the parent's `name`.
            let one = matches!(&e.kind, EntryKind::Overlay(d) if *d == [g.parent.join(&e.name)]);
            if !one || checked[i].is_some() {
                continue;
            }
            let found = dir_on_same_mount(k, parent.as_fd(), Path::new(&e.name));
            if let Ok(fd) = found {
                checked[i] = Some(fd);
                members.push(i);
            }
        }
        if members.len() >= 2 {
            shared.push(Shared {
                group: n,
                parent,
                members,
            });
        }
    }
    Ok((shared, checked))
}

/// The staging directory of the `g`th shared overlay.
fn shared_dir(g: usize) -> String {
    format!("{STAGING}/s{g}")
}

/// Mounts each shared overlay ([`open_shared`]) of lower layers only on a staging directory,
/// where it goes with the old root at pivot_root. Returns their O_PATH descriptors and, per
/// entry, which of them its directory is bound from. A group whose members now need an upper layer
/// (fewer than two left) or whose overlay the kernel refuses keeps an overlay per member; a
/// refusal is said in `notes` (the members are as read-only either way).
fn mount_shared(
    k: &dyn Kernel,
    plan: &Plan,
    shared: &[Shared],
    uppers: &[bool],
    notes: &mut Vec<String>,
) -> Result<(Vec<OwnedFd>, Vec<Option<usize>>), StepError> {
    let step = Step::Rootfs;
    let mut ovls = Vec::new();
    let mut from = vec![None; plan.rootfs.entries.len()];
    for (g, group) in shared.iter().enumerate() {
        let members: Vec<usize> = group
            .members
            .iter()
            .copied()
            .filter(|&i| uppers.get(i) == Some(&false))
            .collect();
        if members.len() < 2 {
            continue;
        }
        let dir = shared_dir(g);
        k.mkdirat(AT_FDCWD, Path::new(&dir), Mode::from_bits_truncate(0o755))
            .step(step, || format!("mkdir({})", cstr(&dir)))?;
        let xattrs = if plan.rootfs.userxattr {
            ",userxattr"
        } else {
            ""
        };
        let opts = format!(
            "lowerdir={}:{EMPTY_LOWER}{xattrs}",
            here(k, group.parent.as_fd())
        );
        let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        let mounted = k.mount(
            Some("overlay"),
            dir.as_str(),
            Some("overlay"),
            flags,
            Some(opts.as_str()),
        );
        // The plan leaves out what the kernel is known to refuse; anything it still refuses
        // (a mount below an image layer in a user namespace) costs this one call.
        if let Err(e) = mounted {
            let layer = plan
                .rootfs
                .shared
                .get(group.group)
                .map_or_else(|| "?".into(), |s| s.parent.display().to_string());
            notes.push(format!(
                "{}: the kernel refused one overlay of {layer} for its {} directories \
                 (mount(\"overlay\", {}, ...) => {e:?}: {}); each has a read-only overlay of its own",
                plan.rootfs.lowers.key,
                members.len(),
                cstr(&dir),
                e.desc()
            ));
            continue;
        }
        let ovl = open_path(k, Path::new(&dir), true)
            .step(step, || format!("open({}, O_PATH)", cstr(&dir)))?;
        for i in members {
            from[i] = Some(ovls.len());
        }
        ovls.push(ovl);
    }
    Ok((ovls, from))
}

/// Attaches the entry `name` as a bind of the same name from a shared overlay (`ovl`): a
/// detached clone of the directory, which keeps the overlay's flags (read-only, nosuid,
/// nodev), moved onto the entry's mount point. The directory is looked up on the overlay as on
/// its layer: a directory, no link, no mount crossed; if it is not there (the layer changed
/// since it was checked), `None`, and the entry gets an overlay of its own. Returns the
/// descriptors done with (the directory and the tree).
fn bind_shared(
    k: &dyn Kernel,
    ovl: BorrowedFd<'_>,
    root: BorrowedFd<'_>,
    name: &str,
    target: &str,
) -> Result<Option<[OwnedFd; 2]>, StepError> {
    let step = Step::Rootfs;
    let Ok(dir) = dir_on_same_mount(k, ovl, Path::new(name)) else {
        return Ok(None);
    };
    let tree = k.open_tree_clone(dir.as_fd(), false).step(step, || {
        format!(
            "open_tree({}, OPEN_TREE_CLONE)",
            cstr(&format!("shared overlay/{name}"))
        )
    })?;
    k.move_mount_to_name(tree.as_fd(), root, Path::new(name))
        .step(step, || format!("move_mount(tree, {})", cstr(target)))?;
    Ok(Some([dir, tree]))
}

fn create_file(k: &dyn Kernel, dir: BorrowedFd<'_>, name: &Path) -> nix::Result<OwnedFd> {
    k.create_file(dir, name, Mode::from_bits_truncate(0o644))
}

/// Binds a host device node (O_PATH `src`) onto `target` with the given attributes.
fn bind_node(
    k: &dyn Kernel,
    src: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    set: u64,
    step: Step,
    shown: &str,
) -> Result<(), StepError> {
    let tree = detached_tree(k, src, false, set, step, shown)?;
    attach(k, &tree, target, step, shown)
}

/// Opens (creating what is missing) a mount target inside the new root. Every lookup is
/// confined to the root: `..` and symlinks resolve as if the root were `/`.
fn target_in_root(
    k: &dyn Kernel,
    root: BorrowedFd<'_>,
    target: &Path,
    file: bool,
) -> nix::Result<OwnedFd> {
    let parts: Vec<&std::ffi::OsStr> = target
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p),
            _ => None,
        })
        .collect();
    let open = |path: &Path, flags: OFlag| {
        k.openat2(
            root,
            path,
            flags | OFlag::O_PATH | OFlag::O_CLOEXEC,
            ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        )
    };
    if parts.is_empty() {
        return open(Path::new("."), OFlag::O_DIRECTORY);
    }
    // Usually the target is there already (a top-level directory of the root, a directory of
    // a layer): one confined lookup of the whole path. The walk below, a lookup per
    // component, is only for what is missing; it resolves the same way.
    match open(
        &parts.iter().collect::<std::path::PathBuf>(),
        OFlag::empty(),
    ) {
        Err(Errno::ENOENT) => {}
        found => return found,
    }
    let mut prefix = std::path::PathBuf::new();
    let count = parts.len();
    // Each component's descriptor is the next one's parent (a directory, or mkdirat and the
    // file's creation fail with ENOTDIR as an O_DIRECTORY open of it would); the first's is
    // the root itself.
    let mut parent: Option<OwnedFd> = None;
    // Below a component this walk created, nothing exists: no lookup is tried there. Nor is
    // the last component looked up when every one before it was found: the whole path's
    // lookup above just failed with ENOENT. Something that appeared since makes the creation
    // fail with EEXIST, as a dangling link there always did.
    let mut missing = false;
    for (i, part) in parts.iter().enumerate() {
        prefix.push(part);
        let last = i + 1 == count;
        let dir = parent.as_ref().map_or(root, AsFd::as_fd);
        if !missing && !last {
            match open(prefix.as_path(), OFlag::empty()) {
                Ok(fd) => {
                    parent = Some(fd);
                    continue;
                }
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        missing = true;
        if last && file {
            // O_PATH can't create; make the file in its confined parent, and mount onto the
            // descriptor that made it.
            return create_file(k, dir, Path::new(part));
        }
        k.mkdirat(dir, Path::new(part), Mode::from_bits_truncate(0o755))?;
        let fd = open(prefix.as_path(), OFlag::empty())?;
        if last {
            return Ok(fd);
        }
        parent = Some(fd);
    }
    match parent {
        Some(fd) => Ok(fd),
        None => open(Path::new("."), OFlag::O_DIRECTORY),
    }
}

/// Step 5: the policy's mounts, in order, on top of the root.
pub fn mount_all(k: &dyn Kernel, plan: &Plan, staged: &mut Staged) -> Result<(), StepError> {
    let binds = std::mem::take(&mut staged.host.binds);
    let mut on = Onto {
        root: staged.root.as_fd(),
        devices: &staged.host.devices,
        seal: &mut staged.seal,
    };
    for (m, src) in plan.mounts.iter().zip(binds.iter()) {
        mount_one(k, m, src.as_ref(), &mut on)
            .map_err(|e| if e.key.is_none() { e.at(&m.origin) } else { e })?;
    }
    Ok(())
}

/// What the policy's mounts go onto: the new root, the host's device nodes, and the mounts to
/// seal read-only after pivot_root (the parts of [`Staged`] step 5 uses, borrowed at once).
struct Onto<'a> {
    root: BorrowedFd<'a>,
    devices: &'a [(&'static str, OwnedFd)],
    seal: &'a mut Vec<OwnedFd>,
}

impl Onto<'_> {
    fn null(&self) -> Option<BorrowedFd<'_>> {
        self.devices
            .iter()
            .find(|(n, _)| *n == "null")
            .map(|(_, fd)| fd.as_fd())
    }
}

fn mount_one(
    k: &dyn Kernel,
    m: &MountPlan,
    src: Option<&OwnedFd>,
    on: &mut Onto<'_>,
) -> Result<(), StepError> {
    let step = Step::Mounts;
    let t = m.target.display().to_string();
    let rel = m
        .target
        .strip_prefix("/")
        .unwrap_or(&m.target)
        .to_path_buf();
    let root = on.root;
    let is_file_bind = matches!(
        m.kind,
        MountKind::Bind { dir: false, .. } | MountKind::File { .. }
    );
    if matches!(m.kind, MountKind::Hide) {
        // Hiding what does not exist hides nothing.
        let fd = match k.openat2(
            root,
            rel.as_path(),
            OFlag::O_PATH | OFlag::O_CLOEXEC,
            ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => {
                return Err(StepError::sys(
                    step,
                    format!("openat2(root, {t:?}, RESOLVE_IN_ROOT)"),
                    e,
                ));
            }
        };
        let st = k.fstat(fd.as_fd()).step(step, || format!("fstat({t:?})"))?;
        if st.dir {
            let at = here(k, fd.as_fd());
            mount_fs(
                k,
                "tmpfs",
                &at,
                &t,
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some(&tmpfs_opts(64 << 10, 0o755)),
                step,
            )?;
            on.seal.push(reopen(k, root, &rel, step, &t)?);
        } else {
            let Some(null) = on.null() else {
                return Err(StepError::msg(
                    step,
                    "the host has no /dev/null to hide a file with",
                ));
            };
            // Not nodev: reading the hidden file reads /dev/null, i.e. nothing.
            bind_node(
                k,
                null,
                fd.as_fd(),
                mount_attr::RDONLY | mount_attr::NOSUID | mount_attr::NOEXEC,
                step,
                &t,
            )?;
        }
        return Ok(());
    }
    let target = target_in_root(k, root, &m.target, is_file_bind).step(step, || {
        format!("create mount point {t:?} in the new root (RESOLVE_IN_ROOT)")
    })?;
    match &m.kind {
        MountKind::Bind { source, .. } => {
            let Some(tree) = src else {
                return Err(StepError::msg(
                    step,
                    format!("no mount tree for {}", source.display()),
                ));
            };
            attach(k, tree, target.as_fd(), step, &t)?;
        }
        MountKind::Tmpfs { size, mode, exec } => {
            let opts = tmpfs_opts(*size, *mode);
            let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
            if !exec {
                flags |= MsFlags::MS_NOEXEC;
            }
            mount_fs(
                k,
                "tmpfs",
                &here(k, target.as_fd()),
                &t,
                flags,
                Some(&opts),
                step,
            )?;
        }
        MountKind::Proc => {
            mount_fs(k, "proc", &here(k, target.as_fd()), &t, MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, None, step)
                .map_err(|e| e.hint("a fresh procfs needs the pid namespace and, without root, a host /proc with nothing mounted over parts of it"))?;
            harden_proc(k, on, &rel, &t)?;
        }
        MountKind::Mqueue => {
            mount_fs(
                k,
                "mqueue",
                &here(k, target.as_fd()),
                &t,
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                None,
                step,
            )?;
        }
        MountKind::Dev => mount_dev(k, on, &here(k, target.as_fd()), &rel, &t)?,
        MountKind::File { contents } => {
            // Written on the staging tmpfs (this namespace's own), then bound read-only over
            // the target: nothing of the host's is written, and the program can't change it.
            let name = format!("{STAGING}/file{}", rel.to_string_lossy().replace('/', "_"));
            k.write_file(
                AT_FDCWD,
                Path::new(&name),
                Mode::from_bits_truncate(0o644),
                contents.as_bytes(),
            )
            .step(step, || format!("write({name:?}) for {t:?}"))?;
            let file = open_path(k, Path::new(&name), false)
                .step(step, || format!("open({name:?}, O_PATH)"))?;
            bind_node(
                k,
                file.as_fd(),
                target.as_fd(),
                RO | mount_attr::NOEXEC,
                step,
                &t,
            )?;
        }
        MountKind::Hide => {}
    }
    Ok(())
}

/// Opens what is now at `rel` in the new root, crossing the mounts made so far (the
/// target's descriptor, as `.` or as its `/proc/self/fd/N` link, still names the directory
/// underneath them).
fn reopen(
    k: &dyn Kernel,
    root: BorrowedFd<'_>,
    rel: &Path,
    step: Step,
    shown: &str,
) -> Result<OwnedFd, StepError> {
    k.openat2(
        root,
        rel,
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
    )
    .step(step, || {
        format!("openat2(root, {shown:?}, O_PATH, RESOLVE_IN_ROOT)")
    })
}

/// Bytes of a tmpfs's `size` per inode it may hold: a tmpfs's inodes (with their dentries,
/// about 1 KiB of kernel memory each) don't count against its `size`, and the kernel's default
/// `nr_inodes` is half the host's pages, so a 256M `/tmp` took 3 million empty files (3 GB of
/// unreclaimable slab on a 24 GB host) with `df` showing 0 bytes used. One inode per 4 KiB of
/// `size` bounds their memory to about a quarter of the size.
const TMPFS_BYTES_PER_INODE: u64 = 4 << 10;
/// The fewest inodes a tmpfs gets (a 4K or 64K one still holds a skeleton or /dev).
const TMPFS_MIN_INODES: u64 = 1024;

/// The mount options of every tmpfs kekkai makes: its size, its mode, and an inode count that
/// follows from the size (`TMPFS_BYTES_PER_INODE`), never the kernel's default.
fn tmpfs_opts(size: u64, mode: u32) -> String {
    let inodes = (size / TMPFS_BYTES_PER_INODE).max(TMPFS_MIN_INODES);
    format!("size={size},nr_inodes={inodes},mode={mode:o}")
}

/// Parts of a fresh procfs that still reach the host kernel: read-only (the sysctls, among them
/// core_pattern, whose owner is the host's root), or hidden (as Docker does).
const PROC_READ_ONLY: [&str; 5] = ["sys", "sysrq-trigger", "irq", "bus", "fs"];
const PROC_HIDDEN_FILES: [&str; 6] = [
    "kcore",
    "keys",
    "timer_list",
    "sched_debug",
    "latency_stats",
    "kallsyms",
];
const PROC_HIDDEN_DIRS: [&str; 2] = ["acpi", "scsi"];

fn harden_proc(k: &dyn Kernel, on: &Onto<'_>, rel: &Path, shown: &str) -> Result<(), StepError> {
    let step = Step::Mounts;
    let root = on.root;
    let find = |name: &str| {
        k.openat2(
            root,
            rel.join(name).as_path(),
            OFlag::O_PATH | OFlag::O_CLOEXEC,
            ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS,
        )
        .ok()
    };
    for name in PROC_READ_ONLY {
        let Some(fd) = find(name) else { continue };
        let path = format!("{shown}/{name}");
        // Recursive whether a directory or a file: nothing is mounted below it in a procfs
        // mounted a moment ago, so the copy is the one mount either way (no fstat to tell).
        let tree = detached_tree(k, fd.as_fd(), true, RO | mount_attr::NOEXEC, step, &path)?;
        attach(k, &tree, fd.as_fd(), step, &path)?;
    }
    for name in PROC_HIDDEN_FILES {
        let Some(fd) = find(name) else { continue };
        let Some(null) = on.null() else {
            continue;
        };
        bind_node(
            k,
            null,
            fd.as_fd(),
            mount_attr::RDONLY | mount_attr::NOSUID | mount_attr::NOEXEC,
            step,
            &format!("{shown}/{name}"),
        )?;
    }
    for name in PROC_HIDDEN_DIRS {
        let Some(fd) = find(name) else { continue };
        let at = here(k, fd.as_fd());
        mount_fs(
            k,
            "tmpfs",
            &at,
            &format!("{shown}/{name}"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY,
            Some(&tmpfs_opts(4 << 10, 0o555)),
            step,
        )?;
    }
    Ok(())
}

/// A minimal /dev: a small tmpfs with the host's null, zero, full, random, urandom and tty
/// bound in, a private devpts instance, shm, and the fd links. Nothing else.
fn mount_dev(
    k: &dyn Kernel,
    on: &mut Onto<'_>,
    at: &str,
    rel: &Path,
    shown: &str,
) -> Result<(), StepError> {
    let step = Step::Mounts;
    let root = on.root;
    mount_fs(
        k,
        "tmpfs",
        at,
        shown,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(&tmpfs_opts(64 << 10, 0o755)),
        step,
    )?;
    let dev = reopen(k, root, rel, step, shown)?;
    // Each node is bound onto a file made for it in this fresh tmpfs, through the descriptor
    // that made it; the nodes' copies keep the host mount's flags until the one recursive
    // mount_setattr below adds nosuid and noexec to all of them (the tmpfs has both already).
    // Nothing runs in between, and devpts and shm (which keeps exec) come after it.
    for (name, src) in on.devices {
        let node = format!("{shown}/{name}");
        let target = create_file(k, dev.as_fd(), Path::new(name))
            .step(step, || format!("create({node:?})"))?;
        let tree = k
            .open_tree_clone(src.as_fd(), false)
            .step(step, || format!("open_tree({node:?}, OPEN_TREE_CLONE)"))?;
        attach(k, &tree, target.as_fd(), step, &node)?;
    }
    if !on.devices.is_empty() {
        let set = mount_attr::NOSUID | mount_attr::NOEXEC;
        k.mount_setattr(dev.as_fd(), set, 0, true).step(step, || {
            format!("mount_setattr({shown:?}, {set:#x}, AT_RECURSIVE)")
        })?;
    }
    for sub in ["pts", "shm"] {
        k.mkdirat(dev.as_fd(), Path::new(sub), Mode::from_bits_truncate(0o755))
            .step(step, || format!("mkdir(\"{shown}/{sub}\")"))?;
    }
    let pts_fd = reopen(k, root, &rel.join("pts"), step, shown)?;
    let pts = here(k, pts_fd.as_fd());
    mount_fs(
        k,
        "devpts",
        &pts,
        &format!("{shown}/pts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
        step,
    )?;
    let shm_fd = reopen(k, root, &rel.join("shm"), step, shown)?;
    let shm = here(k, shm_fd.as_fd());
    mount_fs(
        k,
        "tmpfs",
        &shm,
        &format!("{shown}/shm"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&tmpfs_opts(crate::plan::fs::DEV_SHM_BYTES, 0o1777)),
        step,
    )?;
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        k.symlinkat(Path::new(to), dev.as_fd(), Path::new(link))
            .step(step, || format!("symlink({to:?}, \"{shown}/{link}\")"))?;
    }
    on.seal.push(dev);
    Ok(())
}

/// Step 6: pivot_root into the new root, detach the old one, seal what must not change. Returns
/// the notes of steps 4 and 5 (what was done otherwise than planned without weakening anything).
pub fn pivot(k: &dyn Kernel, staged: Staged) -> Result<Vec<String>, StepError> {
    let step = Step::PivotRoot;
    k.fchdir(staged.root.as_fd())
        .step(step, || format!("fchdir({})", cstr(NEW_ROOT)))?;
    // pivot_root(".", ".") stacks the old root on top of the new one; detaching "." then
    // removes it (and the staging tmpfs with it) from this namespace entirely.
    k.pivot_root(".", ".").step(step, || {
        format!("pivot_root({}, {})", cstr(NEW_ROOT), cstr(NEW_ROOT))
    })?;
    k.umount2(".", MntFlags::MNT_DETACH)
        .step(step, || "umount2(old root, MNT_DETACH)".into())?;
    k.chdir(Path::new("/"))
        .step(step, || "chdir(\"/\")".into())?;
    for fd in &staged.seal {
        k.mount_setattr(fd.as_fd(), mount_attr::RDONLY, 0, false)
            .step(step, || "mount_setattr(layer, MOUNT_ATTR_RDONLY)".into())?;
    }
    // The staging descriptors (the skeleton, the seals, the host's objects) are done with: a
    // close_range per run of numbers instead of a close each (they are mostly consecutive).
    let Staged {
        root,
        seal,
        host,
        spent,
        notes,
    } = staged;
    let HostFds {
        entries,
        binds,
        devices,
        shared,
    } = host;
    let mut fds = vec![root];
    fds.extend(seal);
    fds.extend(spent);
    fds.extend(shared.into_iter().map(|s| s.parent));
    fds.extend(entries.into_iter().flatten());
    fds.extend(binds.into_iter().flatten());
    fds.extend(devices.into_iter().map(|(_, fd)| fd));
    k.close_owned(fds)
        .step(step, || "close_range(the staging descriptors)".into())?;
    Ok(notes)
}

#[cfg(test)]
mod tmpfs_tests {
    use rstest::rstest;

    use super::tmpfs_opts;

    #[rstest]
    #[case::policy_tmp(256 << 20, 0o1777, "size=268435456,nr_inodes=65536,mode=1777")]
    #[case::dev(64 << 10, 0o755, "size=65536,nr_inodes=1024,mode=755")]
    #[case::proc_mask(4 << 10, 0o555, "size=4096,nr_inodes=1024,mode=555")]
    #[case::shm(64 << 20, 0o1777, "size=67108864,nr_inodes=16384,mode=1777")]
    #[case::staging(1 << 30, 0o700, "size=1073741824,nr_inodes=262144,mode=700")]
    fn every_tmpfs_has_its_inodes_bounded(
        #[case] size: u64,
        #[case] mode: u32,
        #[case] want: &str,
    ) {
        assert_eq!(tmpfs_opts(size, mode), want);
    }
}
