//! The sandbox's mounts, freed by the kernel after kekkai has exited.
//!
//! When the last process of a mount namespace exits, its exit frees every mount of the
//! namespace, in that process's own exit (`cleanup_mnt` task work) and before it leaves its
//! cgroups. Freeing an overlay waits for an expedited RCU grace period (`ovl_free_fs` →
//! `kern_unmount_array` → `synchronize_rcu_expedited`), and the default root has one overlay
//! per visible top-level directory: most of the time between the sandbox's last exit and
//! kekkai's (docs/performance.md, item 10). The supervisor has to wait for that exit: a cgroup
//! v1 directory can't be removed while a task is in it.
//!
//! So the supervisor holds the sandbox's mount namespace itself ([`Hold::take`]), from just
//! after clone. The sandbox's last exit then only drops a reference; the supervisor reaps,
//! kills and reaps what is left, reads and removes the cgroups as before, and at the end hands
//! its reference to the kernel ([`Hold::release`]): as a registered file of an io_uring
//! instance (made and registered while the sandbox sets itself up, [`Hold::decide`]), and both
//! closed. The ring's teardown drops the file in a kernel worker
//! (`io_ring_exit_work`), a file a kernel thread drops is released by another
//! (`delayed_fput`), and the mounts by a third (`delayed_mntput`): a few milliseconds after
//! kekkai's exit, with no process left. bubblewrap's teardown, which runs after its launcher
//! has exited, and a network namespace's (`cleanup_net`, always in a kernel worker) are of the
//! same kind.
//!
//! Only where nothing the caller may do next depends on the mounts being gone
//! ([`may_defer`]): every host file system the sandbox's mounts keep is the host's root or
//! lives in memory. A disk bound in that the caller unmounts right after the run would still
//! be in use (its `umount` returns while the sandbox's mount keeps the file system, its
//! unwritten data and its device): there the supervisor closes its reference itself, and pays
//! today's wait. The same where the kernel refuses io_uring (a sysctl, a seccomp filter, an
//! old kernel), said with `-v`.
//!
//! Ordering: taken right after clone3, before the child is told to go on (it is then still in
//! the namespace clone made it; it never changes it). The descriptor is close-on-exec, opened
//! by the supervisor only, and never sent anywhere. Released after the sandbox's cgroups are
//! removed and every process of it reaped.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::unistd::Pid;

use crate::plan::Plan;
use crate::plan::fs::{EntryKind, HostMount, MountKind};
use crate::plan::units::Compared;
use crate::plan::vocab::Namespace;

/// File system types whose superblock, kept alive a moment longer, holds no device and no
/// unwritten data: the caller can't tell whether the sandbox still has it.
const IN_MEMORY: [&str; 18] = [
    "tmpfs",
    "ramfs",
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "mqueue",
    "cgroup",
    "cgroup2",
    "bpf",
    "tracefs",
    "debugfs",
    "securityfs",
    "configfs",
    "pstore",
    "hugetlbfs",
    "binfmt_misc",
    "fusectl",
];

/// CAP_SYS_ADMIN (linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;

/// The supervisor's reference to the sandbox's mount namespace, and whether the kernel may
/// free the mounts after kekkai's exit.
#[derive(Debug)]
pub struct Hold {
    held: Held,
    defer: bool,
}

/// How the supervisor holds the reference.
#[derive(Debug)]
enum Held {
    /// A descriptor of the namespace.
    Fd(OwnedFd),
    /// The descriptor registered in its io_uring instance, made when the mounts may be freed
    /// after exit ([`Hold::decide`]), while the sandbox sets itself up: at the end only the
    /// two descriptors are closed.
    Ring(crate::sys::KernelCloser),
}

impl Hold {
    /// The mount namespace of `pid`, the sandbox's first process just cloned (with
    /// CLONE_NEWNS, unreaped, still dumpable: it becomes non-dumpable only once told to go
    /// on): `PIDFD_GET_MNT_NAMESPACE` on a pidfd (Linux 6.11), else `/proc/PID/ns/mnt` (the
    /// pid is our unreaped child, so the path names it). `None` leaves the teardown where it
    /// was, in the sandbox's last exit.
    pub fn take(plan: &Plan, pid: Pid) -> Option<Hold> {
        if !plan.has(Namespace::Mount) {
            return None;
        }
        let by_pidfd =
            crate::sys::pidfd_open(pid).and_then(|pidfd| crate::sys::pidfd_mount_ns(pidfd.as_fd()));
        let ns = match by_pidfd {
            Ok(fd) => fd,
            Err(_) => {
                use nix::fcntl::{OFlag, open};
                use nix::sys::stat::Mode;
                let path = format!("/proc/{pid}/ns/mnt");
                open(
                    path.as_str(),
                    OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .ok()?
            }
        };
        Some(Hold {
            held: Held::Fd(ns),
            defer: false,
        })
    }

    /// Decides from the plan and the host's mount table it was made from (read now for a
    /// plan read back from its record) whether the mounts may outlive kekkai's exit
    /// ([`may_defer`]); done while the sandbox sets itself up. If they may, the reference is
    /// registered in its io_uring instance now, off the path from the program's exit to
    /// kekkai's (an `io_uring_setup` and a registration, ≈ 40 µs: docs/performance.md, item
    /// 23); if the kernel refuses, [`Hold::release`] tries again as before.
    pub fn decide(self, plan: &Plan) -> Hold {
        let defer = match &plan.host {
            Some(table) => may_defer(plan, &table.mounts),
            None => may_defer(plan, &crate::plan::fs::host_mounts()),
        };
        let held = match self.held {
            Held::Fd(ns) if defer => match crate::sys::KernelCloser::prepare(ns) {
                Ok(ring) => Held::Ring(ring),
                Err((_, ns)) => Held::Fd(ns),
            },
            held => held,
        };
        Hold { held, defer }
    }

    /// Drops the reference once the sandbox is gone: handed to a kernel worker if the plan
    /// allows, else closed here (the mounts are then freed before this returns, as the
    /// sandbox's last exit would have freed them).
    pub fn release(self) -> Released {
        let ns = match self.held {
            Held::Ring(ring) => {
                ring.close();
                return Released::ToKernel;
            }
            Held::Fd(ns) => ns,
        };
        if !self.defer {
            drop(ns);
            return Released::Here;
        }
        match crate::sys::close_in_kernel_worker(ns) {
            Ok(()) => Released::ToKernel,
            Err((e, ns)) => {
                drop(ns);
                Released::Refused(format!(
                    "the sandbox's mounts were freed before kekkai's exit (io_uring: {})",
                    e.desc()
                ))
            }
        }
    }
}

/// How the supervisor let go of the sandbox's mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    /// Handed to a kernel worker: freed after kekkai's exit.
    ToKernel,
    /// Closed by the supervisor, as the plan wants: freed before kekkai's exit.
    Here,
    /// The kernel refused the hand-over (why, for `-v`); closed by the supervisor.
    Refused(String),
}

/// May the sandbox's mounts outlive kekkai's exit for a moment? Only if every host file system
/// they keep is the host's root (which nobody unmounts) or in memory (tmpfs, proc, ...), going by
/// the host's mount table `host`; and a sandbox without a user namespace but with
/// CAP_SYS_ADMIN, which may mount any disk inside, never.
pub fn may_defer(plan: &Plan, host: &[HostMount]) -> bool {
    if !plan.has(Namespace::User) && plan.caps.keep & (1 << CAP_SYS_ADMIN) != 0 {
        return false;
    }
    host_sources(plan)
        .iter()
        .all(|(path, recursive)| kept(path, *recursive, host).is_some_and(|m| m.iter().all(safe)))
}

/// A host mount whose file system may be freed after kekkai's exit.
fn safe(m: &&HostMount) -> bool {
    m.point == Path::new("/") || IN_MEMORY.contains(&m.fstype.as_str())
}

/// Every host path the sandbox's mounts take, and whether with the mounts below it.
fn host_sources(plan: &Plan) -> Vec<(PathBuf, bool)> {
    let mut out: Vec<(PathBuf, bool)> = plan
        .rootfs
        .lowers
        .iter()
        .map(|l| (l.clone(), false))
        .collect();
    for e in &plan.rootfs.entries {
        match &e.kind {
            EntryKind::Overlay(dirs) => out.extend(dirs.iter().map(|d| (d.clone(), false))),
            EntryKind::Bind(dir) => out.push((dir.clone(), true)),
            EntryKind::File(file) => out.push((file.clone(), false)),
            EntryKind::Symlink(_) | EntryKind::EmptyDir => {}
        }
    }
    for m in &plan.mounts {
        match &m.kind {
            MountKind::Bind { source, .. } => out.push((source.clone(), true)),
            // The device nodes bound in from the host's /dev.
            MountKind::Dev => out.push((PathBuf::from("/dev/null"), false)),
            MountKind::Tmpfs { .. }
            | MountKind::Hide
            | MountKind::Proc
            | MountKind::Mqueue
            | MountKind::File { .. } => {}
        }
    }
    out
}

/// The host mounts a mount of `path` keeps: those at the deepest mount point that holds it
/// (stacked ones too), and with `recursive` every mount below it. `None` if no mount holds it
/// (an unreadable mount table).
fn kept<'a>(path: &Path, recursive: bool, host: &'a [HostMount]) -> Option<Vec<&'a HostMount>> {
    let path = Compared::new(path);
    let points: Vec<Compared<'_>> = host.iter().map(|m| Compared::new(&m.point)).collect();
    let deepest = host
        .iter()
        .zip(&points)
        .filter(|(_, point)| path.within(point))
        .map(|(m, _)| m.point.components().count())
        .max()?;
    Some(
        host.iter()
            .zip(&points)
            .filter(|(m, point)| {
                (path.within(point) && m.point.components().count() == deepest)
                    || (recursive && point.within(&path))
            })
            .map(|(m, _)| m)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn table(rows: &[(&str, &str)]) -> Vec<HostMount> {
        rows.iter()
            .map(|(point, fstype)| HostMount {
                point: PathBuf::from(point),
                fstype: (*fstype).to_owned(),
            })
            .collect()
    }

    const HOST: [(&str, &str); 6] = [
        ("/", "ext4"),
        ("/proc", "proc"),
        ("/tmp", "tmpfs"),
        ("/mnt/usb", "vfat"),
        ("/mnt/usb/ram", "tmpfs"),
        ("/srv/ram", "tmpfs"),
    ];

    #[rstest]
    #[case::on_the_root("/usr/bin", false, true)]
    #[case::the_root_itself("/", false, true)]
    #[case::in_memory("/tmp/work", true, true)]
    #[case::a_disk("/mnt/usb/data", false, false)]
    #[case::a_disk_at_its_mount_point("/mnt/usb", false, false)]
    #[case::in_memory_on_a_disk("/mnt/usb/ram/x", false, true)]
    #[case::a_disk_below("/mnt", true, false)]
    #[case::a_disk_below_not_taken("/mnt", false, true)]
    #[case::memory_below("/srv", true, true)]
    #[case::everything("/", true, false)]
    #[case::a_name_that_only_starts_alike("/mnt/usbx", false, true)]
    fn kept_mounts(#[case] path: &str, #[case] recursive: bool, #[case] deferrable: bool) {
        let host = table(&HOST);
        let m = kept(Path::new(path), recursive, &host).unwrap();
        assert_eq!(m.iter().all(safe), deferrable, "{path} {m:?}");
    }

    /// However the reference is held when the sandbox is gone — registered in its ring while
    /// the sandbox set up, kept because the kernel refused the ring then (released through a
    /// ring made at the end), or kept because the mounts must go before exit — release lets
    /// go of it: the pipe's write end here, whose last close the read end sees as its end.
    #[rstest]
    #[case::ring_made_ahead(true, true, Released::ToKernel)]
    #[case::ring_made_at_the_end(false, true, Released::ToKernel)]
    #[case::closed_here(false, false, Released::Here)]
    fn release_lets_go_of_the_reference(
        #[case] ahead: bool,
        #[case] defer: bool,
        #[case] want: Released,
    ) {
        use std::io::Read;
        let (r, w) = nix::unistd::pipe().unwrap();
        let held = if ahead {
            Held::Ring(crate::sys::KernelCloser::prepare(w).unwrap())
        } else {
            Held::Fd(w)
        };
        let hold = Hold { held, defer };
        assert_eq!(hold.release(), want);
        // A kernel worker drops the ring's reference a moment later: a minute is a hang.
        let mut fds = [nix::poll::PollFd::new(
            r.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(60_000u16)).unwrap();
        assert_eq!(ready, 1, "the write end is still open somewhere");
        let mut end = [0u8; 1];
        assert_eq!(std::fs::File::from(r).read(&mut end).unwrap(), 0);
    }

    /// A shipped policy, compiled for an unprivileged caller in /usr.
    fn shipped(name: &'static str) -> Plan {
        let caller = crate::caller::Caller {
            pwd: "/usr".into(),
            ..crate::caller::Caller::for_tests()
        };
        let loaded =
            crate::policy::load(&crate::policy::PolicySource::Shipped(name), &caller).unwrap();
        crate::plan::compile(&loaded, &caller).unwrap()
    }

    /// The default policy's mounts are freed after exit on a host whose directories are all on
    /// the root file system; not when one it shows (its working directory, /usr) or one below
    /// what it binds recursively is a disk of its own.
    #[rstest]
    #[case::one_root(&[("/", "ext4"), ("/proc", "proc"), ("/dev", "devtmpfs")], true)]
    #[case::usr_on_a_disk(&[("/", "ext4"), ("/usr", "xfs")], false)]
    #[case::usr_in_memory(&[("/", "ext4"), ("/usr", "tmpfs")], true)]
    #[case::no_table(&[], false)]
    fn default_policy(#[case] host: &[(&str, &str)], #[case] deferrable: bool) {
        let plan = shipped("default");
        assert_eq!(may_defer(&plan, &table(host)), deferrable);
    }

    /// Without a user namespace, a sandbox that keeps CAP_SYS_ADMIN may mount a disk itself:
    /// never deferred; with one, its capabilities reach no disk.
    #[rstest]
    #[case::userns_and_admin(true, true, true)]
    #[case::no_userns_no_admin(false, false, true)]
    #[case::no_userns_but_admin(false, true, false)]
    fn mounting_inside(#[case] userns: bool, #[case] admin: bool, #[case] deferrable: bool) {
        let mut plan = shipped("default");
        if !userns {
            plan.namespaces.value.retain(|n| *n != Namespace::User);
        }
        if admin {
            plan.caps.keep |= 1 << CAP_SYS_ADMIN;
        }
        assert_eq!(may_defer(&plan, &table(&[("/", "ext4")])), deferrable);
    }

    #[test]
    fn no_mount_table_no_deferral() {
        assert_eq!(kept(Path::new("/usr"), false, &[]), None);
    }

    #[test]
    fn stacked_mounts_all_count() {
        let host = table(&[("/", "ext4"), ("/data", "tmpfs"), ("/data", "xfs")]);
        let m = kept(Path::new("/data/x"), false, &host).unwrap();
        assert!(!m.iter().all(safe), "{m:?}");
    }
}
