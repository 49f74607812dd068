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
//!
//! Files: `rootfs.rs` (the layers and the skeleton's entries), `mounts.rs` (the policy's mounts,
//! resolved), `protect.rs` (what no bind undoes); here, paths and the host's mount table.

mod mounts;
mod protect;
mod rootfs;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

pub use super::units::normalize_abs;
pub use mounts::{DEFAULT_TMPFS_SIZE, MountKind, MountPlan, image_host_files, plan_mounts};
pub use protect::{Guard, SECRETS, homes, protect};
pub use rootfs::{DEFAULT_ROOT_SIZE, EntryKind, RootEntry, RootfsPlan, plan_rootfs, prune_covered};

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

/// The caller's mount table as the plan read it, kept next to the plan for its launch
/// ([`super::Plan::host`]): the root is planned from it, the launch places the sandbox's
/// cgroups by its cgroup mounts, and the teardown decides from it whether the sandbox's mounts
/// may outlive kekkai's exit. Generating `/proc/self/mountinfo` costs the kernel a line per
/// mount, so a launch reads it once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostTable {
    /// Every mount: its point and type.
    pub mounts: Vec<HostMount>,
    /// Where the cgroup hierarchies are mounted.
    pub cgroups: CgroupMounts,
}

impl HostTable {
    /// Reads `/proc/self/mountinfo` (empty if it can't be read, as before).
    pub fn read() -> HostTable {
        HostTable::parse(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
    }

    /// Parses a mountinfo text.
    pub fn parse(mountinfo: &str) -> HostTable {
        HostTable {
            mounts: parse_mountinfo(mountinfo),
            cgroups: CgroupMounts::parse(mountinfo),
        }
    }
}

/// Where the cgroup hierarchies are mounted (mount points as mountinfo writes them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupMounts {
    /// Where cgroup2 is mounted (the first one).
    pub v2: Option<PathBuf>,
    /// v1 mounts: (controllers of the hierarchy, mount point). A v1 hierarchy without a
    /// controller (`name=systemd`) is left out.
    pub v1: Vec<(Vec<String>, PathBuf)>,
}

impl CgroupMounts {
    /// The `cgroup` and `cgroup2` lines of a mountinfo text.
    pub fn parse(mountinfo: &str) -> CgroupMounts {
        let mut m = CgroupMounts::default();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mut r = right.split(' ');
            let (Some(fstype), Some(_src), Some(opts)) = (r.next(), r.next(), r.next()) else {
                continue;
            };
            let Some(point) = left.split(' ').nth(4) else {
                continue;
            };
            match fstype {
                "cgroup2" if m.v2.is_none() => m.v2 = Some(PathBuf::from(point)),
                "cgroup" => {
                    let ctrls: Vec<String> = opts
                        .split(',')
                        .filter(|o| {
                            !o.starts_with("name=")
                                && !matches!(
                                    *o,
                                    "rw" | "ro"
                                        | "relatime"
                                        | "nosuid"
                                        | "nodev"
                                        | "noexec"
                                        | "clone_children"
                                        | "xattr"
                                )
                        })
                        .map(String::from)
                        .collect();
                    if !ctrls.is_empty() {
                        m.v1.push((ctrls, PathBuf::from(point)));
                    }
                }
                _ => {}
            }
        }
        m
    }
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
    fn one_table_serves_the_root_and_the_cgroups() {
        let text = "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
                    35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                    40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw shared:9 - cgroup2 cgroup2 rw\n";
        let t = HostTable::parse(text);
        assert_eq!(t.mounts, parse_mountinfo(text));
        assert_eq!(t.cgroups.v2, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(
            t.cgroups.v1,
            vec![(
                vec!["memory".to_owned()],
                PathBuf::from("/sys/fs/cgroup/memory")
            )]
        );
    }
}
