//! Scratch directories: fresh, private to one test, removed with everything in them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::test_user;

/// A number unique within this test process.
pub fn unique() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A fresh directory (mode 0755) under /tmp, removed (with everything in it) on drop.
///
/// /tmp and not `$TMPDIR`: the unprivileged test user must be able to enter it (launch tests
/// run from it), and a private `$TMPDIR` would not let it. The path is canonical, so paths
/// compared with what kekkai resolves match.
pub struct Scratch(PathBuf);

impl Scratch {
    /// Creates `/tmp/kekkai-it-<tag>-<pid>-<n>`.
    pub fn new(tag: &str) -> Scratch {
        let dir = PathBuf::from(format!(
            "/tmp/kekkai-it-{tag}-{}-{}",
            std::process::id(),
            unique()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Scratch(std::fs::canonicalize(&dir).unwrap())
    }

    /// A fresh directory that doesn't belong to root (given to nobody when the tests run as
    /// root): the shipped `build` runs a root caller's program as the owner of the current
    /// directory, and refuses one that root owns.
    pub fn not_roots(tag: &str) -> Scratch {
        let dir = Scratch::new(tag);
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

    /// A path below it.
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.0.join(p)
    }

    /// Writes `name` (which may contain `/`; missing directories are made) below it, readable
    /// by everyone, and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    /// Makes a path owned by the unprivileged test user (for writable binds).
    pub fn give_to_test_user(&self, p: &Path) {
        if let Some((uid, gid)) = test_user() {
            nix::unistd::chown(
                p,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .unwrap();
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
