//! What no bind undoes: the well-known secrets of every home stay hidden inside a bound
//! directory, and the working directory shows no tree the policy hid or made private. Adds
//! mounts after each bind, before the root is built.

use std::path::{Path, PathBuf};

use super::{MountKind, MountPlan};
use crate::policy::KeyPath;

/// Well-known secrets, relative to a home directory: keys, credentials, password stores,
/// browser profiles and shell histories. Inside a bound directory they stay hidden (an empty
/// directory, or /dev/null for a file) unless a bind names one of them (or a directory inside
/// one) itself. Firejail's default profile hides the same kind of files.
pub const SECRETS: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".password-store",
    ".local/share/keyrings",
    ".pki",
    ".netrc",
    ".git-credentials",
    ".config/gh",
    ".config/hub",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".kube",
    ".docker",
    ".terraform.d",
    ".vault-token",
    ".npmrc",
    ".pypirc",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".gem/credentials",
    ".mozilla",
    ".thunderbird",
    ".config/chromium",
    ".config/google-chrome",
    ".bash_history",
    ".zsh_history",
    ".python_history",
    ".psql_history",
    ".mysql_history",
];

/// The home directories whose secrets stay hidden: the caller's, root's and every directory in
/// /home, as the host resolves them.
pub fn homes(caller_home: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = [caller_home.to_path_buf(), PathBuf::from("/root")]
        .into_iter()
        .chain(
            std::fs::read_dir("/home")
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .map(|e| e.path()),
        )
        .filter_map(|h| std::fs::canonicalize(h).ok())
        .filter(|h| h != Path::new("/"))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What keeps the policy's hiding in force over its binds (see [`protect`]).
pub struct Guard<'a> {
    /// Was this bind's source (`mounts[N].bind`) written `${PWD}`?
    pub from_pwd: &'a dyn Fn(&KeyPath) -> bool,
    /// The caller's home directory, canonical; `None` when it is `/`.
    pub home: Option<PathBuf>,
    /// Home directories whose well-known secrets stay hidden ([`homes`]).
    pub homes: Vec<PathBuf>,
}

/// A bind never undoes the policy's hiding (docs/policy.md, "What a bind can't undo"):
///
/// - inside any bound directory, the well-known [`SECRETS`] of every home stay hidden, unless
///   the bind names the secret itself;
/// - the working directory (a bind written `${PWD}`) shows no tree an earlier `hide` or
///   `tmpfs` mount covers: such a tree inside it (or equal to it) is hidden or made private
///   again over the bind; a working directory inside a hidden tree stays hidden itself, unless
///   it is in the caller's own home; one that is a secret stays hidden.
///
/// Returns the mounts with what it added after each bind, and one note per bind it changed.
pub fn protect(mounts: Vec<MountPlan>, guard: &Guard<'_>) -> (Vec<MountPlan>, Vec<String>) {
    let mut out: Vec<MountPlan> = Vec::with_capacity(mounts.len());
    let mut notes = Vec::new();
    for m in mounts {
        let MountKind::Bind { source, dir, .. } = &m.kind else {
            out.push(m);
            continue;
        };
        let (source, dir, target, key) = (source.clone(), *dir, m.target.clone(), m.key.clone());
        let from_pwd = (guard.from_pwd)(&key.key("bind"));
        let in_home = guard.home.as_ref().is_some_and(|h| source.starts_with(h));
        let (inside, holder) = secrets_near(&source, &guard.homes);
        let mut added: Vec<MountPlan> = Vec::new();
        let mut said: Vec<String> = Vec::new();
        let mut all_hidden = false;
        if from_pwd {
            if let Some(secret) = &holder {
                said.push(format!("{} is a well-known secret", secret.display()));
                all_hidden = true;
            }
            for p in out
                .iter()
                .filter(|p| matches!(p.kind, MountKind::Hide | MountKind::Tmpfs { .. }))
            {
                let hidden = matches!(p.kind, MountKind::Hide);
                let tree = std::fs::canonicalize(&p.target).unwrap_or_else(|_| p.target.clone());
                // The one exception: the caller's own home, when a hidden tree is what holds it
                // (`hide: /home`, or `hide: /root` for root).
                let own_home =
                    hidden && in_home && guard.home.as_ref().is_some_and(|h| h.starts_with(&tree));
                if own_home {
                    continue;
                }
                if let Ok(rel) = tree.strip_prefix(&source) {
                    // The working directory holds the tree (or is it): cover that part again.
                    added.push(MountPlan {
                        key: p.key.clone(),
                        origin: String::new(),
                        target: under(&target, rel),
                        kind: p.kind.clone(),
                        protocol: false,
                    });
                    said.push(format!(
                        "{} stays {} ({})",
                        tree.display(),
                        if hidden { "hidden" } else { "private" },
                        p.key
                    ));
                } else if hidden && source.starts_with(&tree) {
                    said.push(format!(
                        "it is inside {}, which {} hides, and outside your home",
                        tree.display(),
                        p.key
                    ));
                    all_hidden = true;
                }
            }
        }
        if all_hidden {
            added.retain(|a| a.target != target && !a.target.starts_with(&target));
            added.push(MountPlan {
                key: key.clone(),
                origin: String::new(),
                target: target.clone(),
                kind: MountKind::Hide,
                protocol: false,
            });
            said.insert(0, format!("{} stays hidden", source.display()));
            said.push("bind it explicitly to show it".into());
        } else if dir {
            // Secrets not already under a tree hidden again above.
            let mut names = Vec::new();
            for secret in &inside {
                let Ok(rel) = secret.strip_prefix(&source) else {
                    continue;
                };
                let at = under(&target, rel);
                if added
                    .iter()
                    .any(|a| matches!(a.kind, MountKind::Hide) && at.starts_with(&a.target))
                {
                    continue;
                }
                names.push(rel.display().to_string());
                added.push(MountPlan {
                    key: key.clone(),
                    origin: String::new(),
                    target: at,
                    kind: MountKind::Hide,
                    protocol: false,
                });
            }
            if !names.is_empty() {
                said.push(format!(
                    "secrets stay hidden: {} (bind one by name to give it)",
                    names.join(" ")
                ));
            }
        }
        if !said.is_empty() {
            let what = if from_pwd {
                format!("the working directory ({key})")
            } else {
                format!("{key} (bind {})", source.display())
            };
            notes.push(format!("{what}: {}", said.join("; ")));
        }
        out.push(m);
        out.extend(added);
    }
    (out, notes)
}

/// `target` joined with `rel`, without a trailing `/` for an empty `rel`.
fn under(target: &Path, rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        target.to_path_buf()
    } else {
        target.join(rel)
    }
}

/// The well-known secrets of `homes` strictly inside `source` (canonical, sorted), and the one
/// `source` is (or lies inside), if any.
fn secrets_near(source: &Path, homes: &[PathBuf]) -> (Vec<PathBuf>, Option<PathBuf>) {
    let mut inside = Vec::new();
    let mut holder = None;
    for home in homes
        .iter()
        .filter(|h| h.starts_with(source) || source.starts_with(h))
    {
        for rel in SECRETS {
            let Ok(secret) = std::fs::canonicalize(home.join(rel)) else {
                continue;
            };
            if secret != source && secret.starts_with(source) {
                inside.push(secret);
            } else if source.starts_with(&secret) {
                holder = Some(secret);
            }
        }
    }
    inside.sort();
    inside.dedup();
    (inside, holder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use std::os::unix::fs::MetadataExt;

    struct Host {
        top: PathBuf,
    }

    impl Host {
        fn new() -> Host {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let top =
                std::env::temp_dir().join(format!("kekkai-protect-{}-{n}", std::process::id()));
            for d in [
                "home/alice/.ssh",
                "home/alice/project",
                "home/bob",
                "run/x",
                "scratch/x",
            ] {
                std::fs::create_dir_all(top.join(d)).unwrap();
            }
            std::fs::write(top.join("home/alice/.netrc"), "machine x password y\n").unwrap();
            Host {
                top: std::fs::canonicalize(&top).unwrap(),
            }
        }

        fn p(&self, rel: &str) -> PathBuf {
            under(&self.top, Path::new(rel))
        }

        fn mount(&self, i: usize, kind: MountKind, target: &str) -> MountPlan {
            MountPlan {
                key: KeyPath::root().key("mounts").index(i),
                origin: String::new(),
                target: if target.starts_with('/') {
                    PathBuf::from(target)
                } else {
                    self.p(target)
                },
                kind,
                protocol: false,
            }
        }

        /// The policy's own mounts, then a bind of `source` to `target` (relative paths are
        /// below the top), written `${PWD}` or not.
        fn protect(
            &self,
            source: &str,
            target: &str,
            pwd: bool,
        ) -> (Vec<(String, String)>, Vec<String>) {
            let source = self.p(source);
            let meta = std::fs::metadata(&source).unwrap();
            let bind = MountKind::Bind {
                source,
                dev_ino: (meta.dev(), meta.ino()),
                dir: true,
                writable: false,
                exec: true,
            };
            let tmpfs = MountKind::Tmpfs {
                size: 1 << 20,
                mode: 0o1777,
                exec: true,
            };
            let mounts = vec![
                self.mount(0, MountKind::Hide, "home"),
                self.mount(1, MountKind::Hide, "run"),
                self.mount(2, tmpfs, "scratch"),
                self.mount(3, bind, target),
            ];
            let from_pwd = |k: &KeyPath| pwd && k.to_string() == "mounts[3].bind";
            let guard = Guard {
                from_pwd: &from_pwd,
                home: Some(self.p("home/alice")),
                homes: vec![self.p("home/alice"), self.p("home/bob")],
            };
            let (out, notes) = protect(mounts, &guard);
            let added = out
                .iter()
                .skip(4)
                .map(|m| {
                    let t = m.target.strip_prefix(&self.top).map_or_else(
                        |_| m.target.display().to_string(),
                        |r| r.display().to_string(),
                    );
                    (format!("{} {}", m.key, m.kind.name()), t)
                })
                .collect();
            (added, notes)
        }
    }

    impl Drop for Host {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.top);
        }
    }

    #[rstest]
    // cd ~: the home is shown, its secrets are not.
    #[case::pwd_home("home/alice", "home/alice", true, &[("mounts[3] hide", "home/alice/.netrc"), ("mounts[3] hide", "home/alice/.ssh")])]
    // The same for a bind a policy or a flag writes: only the secrets.
    #[case::explicit_home("home/alice", "/h", false, &[("mounts[3] hide", "/h/.netrc"), ("mounts[3] hide", "/h/.ssh")])]
    // A bind that names the secret gives it.
    #[case::explicit_secret("home/alice/.ssh", "/keys", false, &[])]
    // cd ~/.ssh: the working directory is a secret, and stays hidden.
    #[case::pwd_secret("home/alice/.ssh", "home/alice/.ssh", true, &[("mounts[3] hide", "home/alice/.ssh")])]
    // cd ~/project: nothing to keep.
    #[case::pwd_project("home/alice/project", "/work", true, &[])]
    // Another user's home, inside the hidden /home: stays hidden.
    #[case::pwd_other_home("home/bob", "home/bob", true, &[("mounts[3] hide", "home/bob")])]
    // cd /run: the hidden tree is hidden again over the bind.
    #[case::pwd_hidden_tree("run", "run", true, &[("mounts[1] hide", "run")])]
    // cd /run/x: inside a hidden tree, so hidden.
    #[case::pwd_inside_hidden("run/x", "run/x", true, &[("mounts[3] hide", "run/x")])]
    // cd /tmp (the private tmpfs): private again, bound elsewhere too.
    #[case::pwd_private_tree("scratch", "scratch", true, &[("mounts[2] tmpfs", "scratch")])]
    #[case::pwd_private_tree_elsewhere("scratch", "/work", true, &[("mounts[2] tmpfs", "/work")])]
    // cd /tmp/x: the user's directory in the private tree is shown.
    #[case::pwd_inside_private("scratch/x", "scratch/x", true, &[])]
    // cd to a directory holding all three trees: each is covered again where it shows.
    #[case::pwd_holding_all("", "/work", true, &[("mounts[0] hide", "/work/home"), ("mounts[1] hide", "/work/run"), ("mounts[2] tmpfs", "/work/scratch")])]
    // An explicit bind of a hidden tree is the policy's choice (as in bubblewrap: later wins).
    #[case::explicit_hidden_tree("run", "run", false, &[])]
    fn protect_keeps_the_hiding(
        #[case] source: &str,
        #[case] target: &str,
        #[case] pwd: bool,
        #[case] want: &[(&str, &str)],
    ) {
        let host = Host::new();
        let (added, notes) = host.protect(source, target, pwd);
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, t)| (k.to_string(), t.to_string()))
            .collect();
        assert_eq!(added, want, "{notes:?}");
        assert_eq!(notes.len(), usize::from(!want.is_empty()), "{notes:?}");
    }
}
