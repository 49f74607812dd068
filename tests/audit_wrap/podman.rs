//! Podman for the tests: a busybox image and private state, cleaned up afterwards.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::support::{Scratch, Who, stderr, test_user};

/// A busybox root file system as a tar archive (no C library: only a static probe runs in it).
fn busybox_image(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for d in ["bin", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let tar = dir.join("busybox.tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["--owner=0", "--group=0", "--numeric-owner", "-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(ok.success());
    tar
}

/// Podman's own state for one test: storage, run and temporary directories below a scratch
/// directory, its containers' cgroups below this test's own (v2 path), and what it makes on the
/// host anyway (/var/lib/containers/cache, /run/containers, /run/runc) removed afterwards when
/// the test made it. Rootless, its pause process is killed by pid.
pub struct Podman {
    dir: Scratch,
    who: Who,
    made: Vec<&'static str>,
    cgroup: String,
}

const IMAGE: &str = "localhost/kekkai-busybox:test";

impl Podman {
    pub fn new(who: Who) -> Podman {
        let dir = Scratch::new("podman");
        for d in ["storage", "run", "tmp", "home", "data", "config"] {
            std::fs::create_dir(dir.join(d)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("run"), std::fs::Permissions::from_mode(0o700)).unwrap();
        if who == Who::Rootless {
            for d in ["storage", "run", "tmp", "home", "data", "config"] {
                dir.give_to_test_user(&dir.join(d));
            }
        }
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
            .unwrap_or_else(|| "/".into());
        let cgroup = format!(
            "{}/kekkai-podman-{}",
            own.trim_end_matches('/'),
            std::process::id()
        );
        let made = ["/var/lib/containers", "/run/containers", "/run/runc"]
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .collect();
        Podman {
            dir,
            who,
            made,
            cgroup,
        }
    }

    /// Podman's global options (root: private storage; rootless: a private home does it).
    fn global(&self) -> String {
        match self.who {
            Who::Root => format!(
                "podman --root {0}/storage --runroot {0}/run --tmpdir {0}/tmp --cgroup-manager cgroupfs --events-backend none --runtime runc",
                self.dir.path().display()
            ),
            Who::Rootless => "podman --events-backend none --runtime runc".into(),
        }
    }

    /// The environment podman runs with.
    pub fn env(&self) -> Vec<(String, String)> {
        let d = self.dir.path().display();
        let mut env = vec![("TMPDIR".to_owned(), format!("{d}/tmp"))];
        if self.who == Who::Rootless {
            env.extend([
                ("HOME".to_owned(), format!("{d}/home")),
                ("XDG_DATA_HOME".to_owned(), format!("{d}/data")),
                ("XDG_CONFIG_HOME".to_owned(), format!("{d}/config")),
                ("XDG_RUNTIME_DIR".to_owned(), format!("{d}/run")),
            ]);
        }
        env
    }

    /// `podman run` of the busybox image with the probe at /probe, as installed plus what this
    /// host needs (runc: crun refuses hybrid cgroups; no network: the default one rewrites the
    /// host's firewall; root: limits within this environment's hard limits).
    pub fn wrapper(&self) -> String {
        let limits = match self.who {
            Who::Root => format!(
                " --cgroup-parent {} --ulimit nofile=1024:1024 --ulimit nproc=1024:1024",
                self.cgroup
            ),
            Who::Rootless => String::new(),
        };
        format!(
            "{} run --rm --network none{limits} -v {{probe}}:/probe:ro {IMAGE} /probe",
            self.global()
        )
    }

    pub fn import(&self) {
        let tar = busybox_image(self.dir.path());
        let words: Vec<String> = self.global().split(' ').map(str::to_owned).collect();
        let mut c = Command::new(&words[0]);
        c.args(&words[1..])
            .args(["import", "-q"])
            .arg(&tar)
            .arg(IMAGE)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .envs(self.env())
            .current_dir(self.dir.path());
        if self.who == Who::Rootless {
            let (uid, gid) = test_user().unwrap();
            c.uid(uid).gid(gid);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "podman import: {}", stderr(&o));
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if self.who == Who::Rootless {
            let pid = std::fs::read_to_string(self.dir.join("run/libpod/tmp/pause.pid"))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok());
            if let Some(pid) = pid {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let base = hierarchy.path().join(self.cgroup.trim_start_matches('/'));
            let unified =
                Path::new("/sys/fs/cgroup/unified").join(self.cgroup.trim_start_matches('/'));
            for dir in [base, unified] {
                if let Ok(entries) = std::fs::read_dir(&dir) {
                    for e in entries.flatten().filter(|e| e.path().is_dir()) {
                        let _ = std::fs::remove_dir(e.path());
                    }
                    let _ = std::fs::remove_dir(&dir);
                }
            }
        }
        for p in &self.made {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}
