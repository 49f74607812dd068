//! The policy-language tests' callers and files: who the policy is compiled for, the host's
//! users and groups, the shipped policies.

use std::path::{Path, PathBuf};

use kekkai::caller::Caller;

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
