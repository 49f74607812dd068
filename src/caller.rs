//! Facts about whoever invoked kekkai, captured once: ids, working directory, home, environment.
//!
//! The plan is a function of the policy and these facts, so `explain` shows exactly what `run`
//! would do for the same caller.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The invoking process.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Real user id.
    pub uid: u32,
    /// Real group id.
    pub gid: u32,
    /// Effective user id; 0 means the launcher runs as root.
    pub euid: u32,
    /// Effective group id.
    pub egid: u32,
    /// Working directory.
    pub pwd: PathBuf,
    /// Home directory (`$HOME`, else the user database, else `/`).
    pub home: PathBuf,
    /// The environment, as received (also non-UTF-8 entries).
    pub env: Vec<(OsString, OsString)>,
}

impl Caller {
    /// Reads the facts of the current process.
    pub fn current() -> std::io::Result<Caller> {
        let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        let uid = nix::unistd::getuid().as_raw();
        let pwd = std::env::current_dir()?;
        let home = env
            .iter()
            .find(|(k, v)| k == "HOME" && !v.is_empty())
            .map(|(_, v)| PathBuf::from(v))
            .or_else(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.dir)
            })
            .unwrap_or_else(|| PathBuf::from("/"));
        Ok(Caller {
            uid,
            gid: nix::unistd::getgid().as_raw(),
            euid: nix::unistd::geteuid().as_raw(),
            egid: nix::unistd::getegid().as_raw(),
            pwd,
            home,
            env,
        })
    }

    /// Is the launcher running as root (and so may skip the user namespace)?
    pub fn is_root(&self) -> bool {
        self.euid == 0
    }

    /// An environment variable, if set and valid UTF-8.
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k.as_bytes() == name.as_bytes())
            .and_then(|(_, v)| v.to_str())
    }

    /// A fixed, unprivileged caller for unit tests.
    #[doc(hidden)]
    pub fn for_tests() -> Caller {
        Caller {
            uid: 1000,
            gid: 1000,
            euid: 1000,
            egid: 1000,
            pwd: PathBuf::from("/work/project"),
            home: PathBuf::from("/home/alice"),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        }
    }

    /// The same caller with every id 0, for tests of what root may do.
    #[doc(hidden)]
    pub fn as_root(self) -> Caller {
        Caller {
            uid: 0,
            gid: 0,
            euid: 0,
            egid: 0,
            ..self
        }
    }
}
