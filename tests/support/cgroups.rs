//! The test process's cgroups, and cgroups delegated to the unprivileged test user.

use std::path::{Path, PathBuf};

use kekkai::launch::cgroup::Hierarchies;

use super::{test_user, unique};

/// The directories kekkai may create cgroups in, for this test process (its own cgroup in each
/// hierarchy).
pub fn cgroup_dirs() -> Vec<PathBuf> {
    let h = Hierarchies::read();
    let mut dirs: Vec<PathBuf> = h.own_v2().into_iter().collect();
    for c in ["memory", "pids", "cpu", "cpuset", "freezer", "blkio"] {
        if let Some((_, d)) = h.own_v1(c) {
            dirs.push(d);
        }
    }
    dirs
}

/// Gives a path to `(uid, gid)`.
pub fn chown(p: &Path, (uid, gid): (u32, u32)) {
    nix::unistd::chown(
        p,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .unwrap();
}

/// A cgroup delegated to the test user in every hierarchy (`kekkai-test-delegated-*` below the
/// test's own), removed on drop.
pub struct Delegated {
    dirs: Vec<PathBuf>,
}

impl Delegated {
    /// Creates it.
    pub fn new() -> Delegated {
        let user = test_user().unwrap();
        let name = format!("kekkai-test-delegated-{}-{}", std::process::id(), unique());
        let mut dirs = Vec::new();
        for parent in cgroup_dirs() {
            let dir = parent.join(&name);
            std::fs::create_dir(&dir).unwrap();
            // A v1 cpuset starts empty; give it the parent's CPUs and memory nodes.
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if dir.join(f).exists() {
                    let v = std::fs::read_to_string(parent.join(f)).unwrap();
                    std::fs::write(dir.join(f), v.trim()).unwrap();
                }
            }
            chown(&dir, user);
            for f in [
                "cgroup.procs",
                "tasks",
                "cgroup.subtree_control",
                "cgroup.threads",
            ] {
                if dir.join(f).exists() {
                    chown(&dir.join(f), user);
                }
            }
            dirs.push(dir);
        }
        Delegated { dirs }
    }

    /// Moves a process into it.
    pub fn enter(&self, pid: u32) {
        for d in &self.dirs {
            std::fs::write(d.join("cgroup.procs"), pid.to_string()).unwrap();
        }
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}
