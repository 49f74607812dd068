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
pub use mounts::{
    DEFAULT_TMPFS_SIZE, DEV_SHM_BYTES, MountKind, MountPlan, image_host_files, plan_mounts,
};
pub use protect::{Guard, SECRETS, homes, protect};
pub use rootfs::{
    DEFAULT_ROOT_SIZE, EntryKind, RootEntry, RootfsPlan, SharedLower, opaque, plan_rootfs,
    prune_covered, share_lowers,
};

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
    parse_mountinfo(&read_mountinfo())
}

/// The text of `/proc/self/mountinfo`, empty if it can't be read (or is not UTF-8). A line is
/// about 120 bytes: 8 KiB holds the table of most hosts, read in one go.
fn read_mountinfo() -> String {
    std::fs::File::open("/proc/self/mountinfo")
        .and_then(|f| crate::hostfs::read_all(&f, 8192, usize::MAX))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

/// The caller's mount table as the plan read it, kept next to the plan for its launch
/// ([`super::Plan::host`]): the root is planned from it, the launch finds the cgroup
/// hierarchies in it, and the teardown decides from it whether the sandbox's mounts may outlive
/// kekkai's exit. Generating `/proc/self/mountinfo` costs the kernel a line per mount, so a
/// launch reads it once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostTable {
    /// The text of `/proc/self/mountinfo` (empty if it could not be read).
    pub mountinfo: String,
    /// Every mount: its point and type.
    pub mounts: Vec<HostMount>,
}

impl HostTable {
    /// Reads `/proc/self/mountinfo` (empty if it can't be read, as before).
    pub fn read() -> HostTable {
        let mountinfo = read_mountinfo();
        HostTable {
            mounts: parse_mountinfo(&mountinfo),
            mountinfo,
        }
    }
}

/// Parses mountinfo lines: field 5 is the mount point, the first field after ` - ` the type.
pub fn parse_mountinfo(text: &str) -> Vec<HostMount> {
    let mut mounts = Vec::with_capacity(text.len() / 100 + 1);
    mounts.extend(text.lines().filter_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let point = left.split(' ').nth(4)?;
        let fstype = right.split(' ').next()?;
        Some(HostMount {
            point: PathBuf::from(OsStr::from_bytes(&unescape_mountinfo(point))),
            fstype: fstype.to_owned(),
        })
    }));
    mounts
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
    fn the_table_keeps_its_text_and_its_mounts() {
        let t = HostTable::read();
        assert!(t.mountinfo.contains(" - "), "{}", t.mountinfo);
        assert_eq!(t.mounts, parse_mountinfo(&t.mountinfo));
        assert!(
            t.mounts
                .iter()
                .any(|m| m.point == std::path::Path::new("/"))
        );
    }
}
