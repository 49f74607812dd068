//! What a launch could leave behind on the host: mounts, cgroups, temporary directories.
//!
//! A measurement sees the whole machine, where other launches may run meanwhile (another test's,
//! another checkout's, one started by hand): the [`turn`](super::turn) keeps this suite's own
//! tests apart, but not launches that don't take it. So what a test compares is only what it can
//! attribute to itself: a snapshot is taken before the test's launches ([`Residue::now`]), and
//! [`Residue::left`] is what appeared since and is the test's own —
//!
//! - a cgroup named after one of the supervisors this test thread started (`kekkai-PID-START`,
//!   `kekkai-launcher-PID-START`: PID is the `kekkai` process, see [`launched`]), anything in a
//!   cgroup this test process delegated (`kekkai-test-delegated-PID-N`), and such a delegated
//!   cgroup itself;
//! - a temporary directory of the audit (`/tmp/kekkai-audit-PID-N`) of one of those supervisors;
//! - a mount, unless it is in a directory of another test process (a scratch directory
//!   `kekkai-it-TAG-PID-N` of another PID) or a network namespace bound by `ip netns` (the
//!   network tests' test hosts; kekkai binds none).
//!
//! Every launch a test makes through [`World`](super::World) or [`run_as`](super::run_as) is
//! registered; a test that spawns `kekkai` itself registers it with [`launched`].

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use super::cgroup_dirs;

thread_local! {
    /// The supervisors (`kekkai` processes) this test thread started.
    static LAUNCHED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// Registers `pid`, a `kekkai` process this test started itself (a `Child`'s id), as one whose
/// residue is the test's.
pub fn launched(pid: u32) {
    LAUNCHED.with(|l| l.borrow_mut().push(pid));
}

/// The supervisors this test thread started.
fn supervisors() -> Vec<u32> {
    LAUNCHED.with(|l| l.borrow().clone())
}

/// Everything on the host that a launch could leave behind.
#[derive(Debug, PartialEq, Eq)]
pub struct Residue {
    /// The test process's mount table (the host's), a line per mount.
    pub mounts: Vec<String>,
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
            mounts: std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect(),
            cgroups,
            temp,
        }
    }

    /// What is there now, was not in this snapshot, and is this test's (see the module's
    /// documentation): empty when the test's launches left nothing.
    pub fn left(&self) -> Residue {
        let now = Residue::now();
        let ours = supervisors();
        let me = std::process::id();
        Residue {
            mounts: now
                .mounts
                .into_iter()
                .filter(|m| !self.mounts.contains(m) && !foreign_mount(m, me))
                .collect(),
            cgroups: now
                .cgroups
                .into_iter()
                .filter(|p| !self.cgroups.contains(p) && cgroup_is_ours(p, &ours, me))
                .collect(),
            temp: now
                .temp
                .into_iter()
                .filter(|p| !self.temp.contains(p) && named_for(p, "kekkai-audit-", &ours))
                .collect(),
        }
    }

    /// Nothing at all.
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty() && self.cgroups.is_empty() && self.temp.is_empty()
    }

    /// Asserts that this test's launches left nothing since this snapshot (`what`: after what).
    pub fn assert_nothing_left(&self, what: &str) {
        let left = self.left();
        assert!(left.is_empty(), "residue {what}: {left:#?}");
    }

    /// The test's kekkai cgroups there are now and were not in this snapshot.
    pub fn new_cgroups(&self) -> Vec<PathBuf> {
        self.left().cgroups
    }
}

/// The number after `prefix` in `p`'s file name (`prefix` PID `-` ...), if it is one of `pids`.
fn named_for(p: &Path, prefix: &str, pids: &[u32]) -> bool {
    p.file_name()
        .and_then(|n| {
            n.to_string_lossy()
                .strip_prefix(prefix)?
                .split('-')
                .next()?
                .parse::<u32>()
                .ok()
        })
        .is_some_and(|pid| pids.contains(&pid))
}

/// A cgroup of this test's: named after one of its supervisors, or this process's delegated
/// cgroup or anything in one.
fn cgroup_is_ours(p: &Path, supervisors: &[u32], me: u32) -> bool {
    let delegated = format!("kekkai-test-delegated-{me}-");
    p.ancestors().any(|a| {
        a.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(&delegated))
    }) || named_for(p, "kekkai-", supervisors)
        || named_for(p, "kekkai-launcher-", supervisors)
}

/// A mount made by something other than this test: in another test process's scratch
/// directory (`kekkai-it-TAG-PID-N`, see [`Scratch`](super::Scratch)), or a network namespace
/// bound by `ip netns`.
fn foreign_mount(line: &str, me: u32) -> bool {
    let Some(point) = line.split(' ').nth(4) else {
        return false;
    };
    if point.starts_with("/run/netns/") {
        return true;
    }
    point.split('/').any(|c| {
        let Some(rest) = c.strip_prefix("kekkai-it-") else {
            return false;
        };
        // TAG may hold dashes: PID and N are the last two parts.
        let mut back = rest.rsplit('-');
        let (Some(n), Some(pid)) = (back.next(), back.next()) else {
            return false;
        };
        n.parse::<u64>().is_ok() && pid.parse::<u32>().is_ok_and(|pid| pid != me)
    })
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

/// Asserts that running `f` leaves nothing of its launches behind (see [`Residue::left`]).
pub fn no_residue<T>(f: impl FnOnce() -> T) -> T {
    let before = Residue::now();
    let r = f();
    before.assert_nothing_left("after the run");
    r
}
