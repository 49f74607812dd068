//! What a launch could leave behind on the host: mounts, cgroups, temporary directories.
//!
//! A measurement sees the whole machine, so a test that takes one holds its
//! [`turn`](super::turn) for as long as it compares.

use std::path::{Path, PathBuf};

use super::cgroup_dirs;

/// Everything on the host that a launch could leave behind.
#[derive(Debug, PartialEq, Eq)]
pub struct Residue {
    /// The test process's mount table (the host's).
    pub mounts: Vec<u8>,
    /// kekkai's cgroups below the test's own, sorted (see [`kekkai_cgroups`]).
    pub cgroups: Vec<PathBuf>,
    /// The audit's temporary directories (`/tmp/kekkai-audit-*`), sorted.
    pub temp: Vec<PathBuf>,
}

impl Residue {
    /// The state now.
    pub fn now() -> Residue {
        let mut cgroups: Vec<PathBuf> = cgroup_dirs()
            .iter()
            .flat_map(|d| kekkai_cgroups(d))
            .collect();
        cgroups.sort();
        let mut temp: Vec<PathBuf> = std::fs::read_dir("/tmp")
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("kekkai-audit-"))
            })
            .collect();
        temp.sort();
        Residue {
            mounts: std::fs::read("/proc/self/mountinfo").unwrap(),
            cgroups,
            temp,
        }
    }

    /// The kekkai cgroups there are now and were not in this snapshot.
    pub fn new_cgroups(&self) -> Vec<PathBuf> {
        Residue::now()
            .cgroups
            .into_iter()
            .filter(|p| !self.cgroups.contains(p))
            .collect()
    }
}

/// kekkai cgroups below `dir`: every `kekkai-*` directory, and below the cgroups delegated to
/// the test user (`kekkai-test-delegated-*`) everything kekkai made there, recursively.
pub fn kekkai_cgroups(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(Result::ok) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("kekkai-") {
                    out.push(e.path());
                }
                if name.starts_with("kekkai-test-delegated") {
                    out.extend(kekkai_cgroups(&e.path()));
                }
            }
        }
    }
    out
}

/// Asserts that running `f` leaves no kekkai cgroup behind (call it during the test's turn).
pub fn no_residue<T>(f: impl FnOnce() -> T) -> T {
    let before = Residue::now();
    let r = f();
    let new = before.new_cgroups();
    assert!(new.is_empty(), "cgroups left behind: {new:?}");
    r
}
