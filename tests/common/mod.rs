//! Helpers shared by the policy-language integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use kekkai::caller::Caller;

/// A fresh directory under the system temp dir, removed (with everything in it) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `kekkai-<tag>-<pid>-<n>` in the temp dir; `n` makes it unique in this process.
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("kekkai-{tag}-{}-{n}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        // Canonical, so paths compared with what kekkai resolves match (the temp dir may be a
        // symlink).
        TempDir(std::fs::canonicalize(&dir).unwrap())
    }

    /// A fresh directory that doesn't belong to root (given to nobody when the tests run as
    /// root): the shipped `build` runs a root caller's program as the owner of the current
    /// directory, and refuses one that root owns.
    pub fn not_roots(tag: &str) -> TempDir {
        let dir = TempDir::new(tag);
        if nix::unistd::geteuid().is_root() {
            let nobody = 65534;
            nix::unistd::chown(
                dir.path(),
                Some(nix::unistd::Uid::from_raw(nobody)),
                Some(nix::unistd::Gid::from_raw(nobody)),
            )
            .unwrap();
        }
        dir
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` (which may contain `/`) below the directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The unprivileged caller of the unit tests (uid 1000, pwd /work/project, home /home/alice).
pub fn rootless() -> Caller {
    Caller::for_tests()
}

/// The same caller, as root.
pub fn root() -> Caller {
    Caller::for_tests().as_root()
}

/// A caller whose working directory exists (the shipped policies bind `${PWD}`).
pub fn with_pwd(caller: Caller, pwd: &Path) -> Caller {
    Caller {
        pwd: pwd.to_path_buf(),
        ..caller
    }
}

/// The ids of a user in the host's /etc/passwd: (uid, primary gid).
pub fn passwd_ids(name: &str) -> (u32, u32) {
    let text = std::fs::read_to_string("/etc/passwd").unwrap();
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.first() == Some(&name) && f.len() > 3 {
            return (f[2].parse().unwrap(), f[3].parse().unwrap());
        }
    }
    panic!("no user {name} in /etc/passwd");
}

/// The id of a group in the host's /etc/group.
pub fn group_id(name: &str) -> u32 {
    let text = std::fs::read_to_string("/etc/group").unwrap();
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.first() == Some(&name) && f.len() > 2 {
            return f[2].parse().unwrap();
        }
    }
    panic!("no group {name} in /etc/group");
}

/// The shipped policy files, `policies/*.yaml`, sorted.
pub fn shipped_policy_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no policies in {}", dir.display());
    files
}
