//! cgroup limits: memory, pids, CPU quota and weight, cpuset, IO weight.
//!
//! A cgroup groups processes so the kernel can limit and account them together. cgroup v2 (one
//! unified hierarchy) is the primary path; on hybrid hosts, where controllers still live on v1
//! hierarchies, each controller goes where it is available — the choice is made per controller
//! before anything runs, and `explain` and the run report show it.
//!
//! Placement: the sandbox's cgroup is created below the launcher's own cgroup (or below
//! `limits.parent`), never anywhere else. On v2 the sandbox is created directly inside it
//! (clone3 with CLONE_INTO_CGROUP), so it never runs outside its limits; when controllers must be
//! enabled in a cgroup that holds processes, the launcher first moves itself into a leaf (the
//! "no internal processes" rule systemd's `Delegate=yes` expects). On v1 the child joins each
//! cgroup itself (step 3, as soon as its id maps are written) through `tasks` files the
//! supervisor opened, before any step of its own setup.
//!
//! Ordering: opened in step 1, before clone; joined in steps 2 and 3; killed, read and removed
//! when the sandbox has ended. The cgroups dead supervisors left are removed while the sandbox
//! sets itself up (after `Go`), off the path to the program's start.
//!
//! Files: `v2.rs` and `v1.rs`, one per version; `files.rs`, what both share (a leaf). The
//! controllers and the policy keys a refusal names come from the plan ([`Controller`]).

mod files;
pub mod v1;
pub mod v2;

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::StepError;
use crate::plan::steps::Step;
use crate::plan::{Compat, Controller, LimitsPlan};
use crate::policy::KeyPath;
use files::kill_listed;
pub use files::{CgroupStats, KILL_WAIT};

/// Which cgroup version carries a controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Version {
    /// The unified hierarchy.
    V2,
    /// A v1 hierarchy.
    V1,
}

/// The cgroup hierarchies this process sees.
#[derive(Debug, Clone, Default)]
pub struct Hierarchies {
    /// Where cgroup2 is mounted.
    pub v2_mount: Option<PathBuf>,
    /// v1 mounts: (controllers of the hierarchy, mount point).
    pub v1_mounts: Vec<(Vec<String>, PathBuf)>,
    /// This process's cgroup per hierarchy: ("" for v2 or the v1 controller list, path).
    pub own: Vec<(String, PathBuf)>,
}

impl Hierarchies {
    /// Reads /proc/self/mountinfo and /proc/self/cgroup.
    pub fn read() -> Hierarchies {
        let mountinfo =
            files::read_small(Path::new("/proc/self/mountinfo"), 16384).unwrap_or_default();
        let cgroup = files::read_whole(Path::new("/proc/self/cgroup"), 1024).unwrap_or_default();
        Hierarchies::parse(&mountinfo, &cgroup)
    }

    /// For a launch: the mount table the plan was made from (read now for a plan read back
    /// from its record), and /proc/self/cgroup.
    pub fn for_plan(plan: &crate::plan::Plan) -> Hierarchies {
        let Some(host) = &plan.host else {
            return Hierarchies::read();
        };
        let cgroup = files::read_whole(Path::new("/proc/self/cgroup"), 1024).unwrap_or_default();
        Hierarchies::parse(&host.mountinfo, &cgroup)
    }

    /// Parses the two files.
    pub fn parse(mountinfo: &str, cgroup: &str) -> Hierarchies {
        let mut h = Hierarchies::default();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mut r = right.split(' ');
            let (Some(fstype), Some(_src), Some(opts)) = (r.next(), r.next(), r.next()) else {
                continue;
            };
            let Some(point) = left.split(' ').nth(4) else {
                continue;
            };
            match fstype {
                "cgroup2" if h.v2_mount.is_none() => h.v2_mount = Some(PathBuf::from(point)),
                "cgroup" => {
                    let ctrls: Vec<String> = opts
                        .split(',')
                        .filter(|o| {
                            !o.starts_with("name=")
                                && !matches!(
                                    *o,
                                    "rw" | "ro"
                                        | "relatime"
                                        | "nosuid"
                                        | "nodev"
                                        | "noexec"
                                        | "clone_children"
                                        | "xattr"
                                )
                        })
                        .map(String::from)
                        .collect();
                    if !ctrls.is_empty() {
                        h.v1_mounts.push((ctrls, PathBuf::from(point)));
                    }
                }
                _ => {}
            }
        }
        for line in cgroup.lines() {
            let mut f = line.splitn(3, ':');
            let (Some(_id), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            h.own.push((ctrls.to_owned(), PathBuf::from(path)));
        }
        h
    }

    /// This process's v2 cgroup directory.
    pub fn own_v2(&self) -> Option<PathBuf> {
        let mount = self.v2_mount.as_ref()?;
        let (_, path) = self.own.iter().find(|(c, _)| c.is_empty())?;
        Some(join_cgroup(mount, path))
    }

    /// Where this process's sandboxes go on v2: its own cgroup, or, when that is a leaf a
    /// kekkai launcher moved into (this process was started by one, as `kekkai audit` starts
    /// `kekkai run`), the cgroup that launcher was started in.
    pub fn sandbox_parent_v2(&self) -> Option<PathBuf> {
        let own = self.own_v2()?;
        let in_leaf = own
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("kekkai-launcher-"));
        match own.parent() {
            Some(p) if in_leaf => Some(p.to_path_buf()),
            _ => Some(own),
        }
    }

    /// The v1 hierarchy carrying `controller`: (mount point, this process's cgroup directory).
    pub fn own_v1(&self, controller: &str) -> Option<(PathBuf, PathBuf)> {
        let (_, mount) = self
            .v1_mounts
            .iter()
            .find(|(c, _)| c.iter().any(|x| x == controller))?;
        let (_, path) = self
            .own
            .iter()
            .find(|(c, _)| c.split(',').any(|x| x == controller))?;
        Some((mount.clone(), join_cgroup(mount, path)))
    }
}

/// `mount` + a cgroup path such as `/user.slice/x`.
pub fn join_cgroup(mount: &Path, path: &Path) -> PathBuf {
    mount.join(path.strip_prefix("/").unwrap_or(path))
}

/// Where each controller will be, decided before anything is created.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Layout {
    /// The v2 cgroup directory the sandbox's cgroup goes below (also used without controllers,
    /// for placement and cgroup.kill).
    pub v2_parent: Option<PathBuf>,
    /// The launcher must move into a leaf before enabling controllers there.
    pub v2_leaf_move: bool,
    /// Controllers to enable in the v2 parent's subtree_control.
    pub v2_enable: Vec<Controller>,
    /// The controllers the v2 parent offers (its `cgroup.controllers`): only these can have
    /// files in the sandbox's v2 cgroup.
    #[serde(skip)]
    pub v2_available: Vec<String>,
    /// Controllers on v1: (controller, parent directory).
    pub v1: Vec<(Controller, PathBuf)>,
    /// Per controller: where it goes, or why it can't be enforced.
    pub choices: Vec<(Controller, Result<Version, String>)>,
    /// The plan's key for the limits as a whole, for a refusal that concerns them all.
    #[serde(skip)]
    pub key: KeyPath,
}

impl Layout {
    /// What can't be enforced, as sentences.
    pub fn missing(&self) -> Vec<String> {
        self.choices
            .iter()
            .filter_map(|(c, r)| r.as_ref().err().map(|why| format!("{}: {why}", c.key())))
            .collect()
    }
}

fn writable(dir: &Path) -> bool {
    nix::unistd::access(
        dir,
        nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
    )
    .is_ok()
}

/// Decides where each needed controller goes. Reads /proc and /sys; creates nothing.
pub fn detect(limits: &LimitsPlan, h: &Hierarchies) -> Layout {
    let mut layout = Layout {
        key: limits.key.clone(),
        ..Layout::default()
    };
    // v2 parent: the configured one, else our own cgroup.
    let v2_parent = match (&limits.parent, &h.v2_mount) {
        (Some(p), Some(mount)) => Some(join_cgroup(mount, p)),
        (None, Some(_)) => h.sandbox_parent_v2(),
        _ => None,
    };
    if let Some(p) = &v2_parent {
        if p.is_dir() && writable(p) {
            layout.v2_parent = Some(p.clone());
        }
    }
    let available_v2: Vec<String> = layout
        .v2_parent
        .as_ref()
        .and_then(|p| files::read_whole(&p.join("cgroup.controllers"), 256).ok())
        .map(|t| t.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    layout.v2_available.clone_from(&available_v2);
    // Controllers must be enabled in the parent's subtree_control, which cgroup v2 refuses while
    // the parent holds processes ("no internal processes"; the root cgroup is exempt). The
    // launcher can move itself out of the way, but no other process: those are not kekkai's.
    let mut v2_missing: Vec<&str> = limits
        .controllers()
        .iter()
        .map(|c| c.v2_name())
        .filter(|n| available_v2.iter().any(|a| a == n))
        .collect();
    let v2_busy = match &layout.v2_parent {
        Some(p) if h.v2_mount.as_deref() != Some(p.as_path()) => {
            let enabled = v2::subtree_control(p);
            v2_missing.retain(|n| !enabled.iter().any(|e| e == n));
            let others = v2::other_processes(p, std::process::id());
            (!v2_missing.is_empty() && !others.is_empty()).then(|| {
                let shown: Vec<String> = others.iter().take(5).map(|p| p.to_string()).collect();
                format!(
                    "the cgroup v2 controllers can't be enabled in {}: it also holds other processes (pids {}{}), and cgroup v2 enables controllers only in cgroups without processes",
                    p.display(),
                    shown.join(", "),
                    if others.len() > shown.len() { ", ..." } else { "" }
                )
            })
        }
        _ => {
            v2_missing.clear();
            None
        }
    };
    for c in limits.controllers() {
        let on_v2 = available_v2.iter().any(|a| a == c.v2_name());
        let choice = if on_v2 && v2_busy.is_none() {
            layout.v2_enable.push(c);
            Ok(Version::V2)
        } else {
            match h.own_v1(c.v1_name()) {
                Some((mount, own)) => {
                    let parent = match &limits.parent {
                        Some(p) => join_cgroup(&mount, p),
                        None => own,
                    };
                    if !parent.is_dir() {
                        Err(format!(
                            "the v1 {} cgroup {} does not exist",
                            c.v1_name(),
                            parent.display()
                        ))
                    } else if !writable(&parent) {
                        Err(format!(
                            "no delegated cgroup: {} (v1 {}) is not writable by uid {}",
                            parent.display(),
                            c.v1_name(),
                            nix::unistd::geteuid()
                        ))
                    } else if c == Controller::Io && !v1::has_io_weight(&parent) {
                        Err(
                            "the v1 blkio controller here has no weight file (BFQ is not in use)"
                                .into(),
                        )
                    } else {
                        layout.v1.push((c, parent));
                        Ok(Version::V1)
                    }
                }
                None => Err(match &layout.v2_parent {
                    Some(_) if on_v2 => v2_busy.clone().unwrap_or_default(),
                    Some(p) => format!(
                        "the {} controller is neither enabled for {} (cgroup v2) nor mounted as cgroup v1",
                        c.v2_name(),
                        p.display()
                    ),
                    None if v2_parent.is_some() => format!(
                        "no delegated cgroup: {} is not writable by uid {}",
                        v2_parent.as_deref().unwrap_or(Path::new("?")).display(),
                        nix::unistd::geteuid()
                    ),
                    None => format!("no cgroup hierarchy offers the {} controller", c.v2_name()),
                }),
            }
        };
        layout.choices.push((c, choice));
    }
    // memory.high has no v1 equivalent.
    if limits.memory_high.is_some() {
        if let Some((_, Ok(Version::V1))) = layout
            .choices
            .iter()
            .find(|(c, _)| *c == Controller::Memory)
        {
            layout.choices.push((
                Controller::Memory,
                Err("memory-high has no cgroup v1 equivalent".into()),
            ));
        }
    }
    // Only this launcher is in the parent (checked above): it moves itself into a leaf first.
    layout.v2_leaf_move = !layout.v2_enable.is_empty()
        && !v2_missing.is_empty()
        && layout.v2_parent.as_deref().is_some_and(v2::holds_processes);
    layout
}

/// Moves the launcher into a leaf and enables the controllers in the v2 parent, when the
/// layout asks for it: what [`Cgroups::create`] does first. `kekkai audit` calls it before it
/// starts `kekkai run`, which, started in that leaf, then finds the controllers enabled.
pub fn make_room(layout: &Layout) -> Result<(), StepError> {
    if let (true, Some(parent)) = (layout.v2_leaf_move, &layout.v2_parent) {
        v2::move_into_leaf(parent, &name())?;
        v2::enable(parent, &layout.v2_enable, &layout.key)?;
    }
    Ok(())
}

/// Refuses (hard) or lists what is dropped (best-effort) when a limit can't be enforced.
pub fn check_compat(limits: &LimitsPlan, layout: &Layout) -> Result<Vec<String>, StepError> {
    let missing = layout.missing();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    match limits.compat() {
        Compat::BestEffort => Ok(missing),
        Compat::Hard => Err(StepError::msg(
            Step::Plan,
            format!("cgroup limits can't be enforced: {}", missing.join("; ")),
        )
        .key(&limits.compat.key)
        .hint(delegation_hint(nix::unistd::geteuid().is_root()))),
    }
}

/// How to get a cgroup kekkai may create the sandbox's in: the first thing a refused caller
/// reads.
fn delegation_hint(root: bool) -> String {
    let user = if root { "" } else { " --user" };
    format!(
        "run kekkai in a cgroup delegated to it: `systemd-run{user} --scope -p Delegate=yes kekkai run ...`; or name one with `limits.parent`; or, to run without these limits, use a policy that says `limits.compat: best-effort`"
    )
}

/// A sandbox's cgroups, created and limited.
#[derive(Debug)]
pub struct Cgroups {
    /// The v2 cgroup and its directory descriptor (for CLONE_INTO_CGROUP).
    v2: Option<(PathBuf, OwnedFd)>,
    /// The controllers the v2 cgroup may have files of (its parent's `cgroup.controllers`).
    v2_available: Vec<String>,
    /// v1 cgroups by controller.
    v1: Vec<(Controller, PathBuf)>,
    /// A v1 freezer cgroup for teardown, when there is one.
    freezer: Option<PathBuf>,
    /// The `tasks` file of each v1 cgroup (the freezer's too), open for writing: the child
    /// joins them itself (see [`Cgroups::v1_tasks`]).
    tasks: Vec<OwnedFd>,
    /// `limits.oom: sandbox` on a v1 memory cgroup: signalled at each OOM event.
    oom_events: Option<OwnedFd>,
    /// Where each controller went, for the report.
    pub placed: Vec<(Controller, Version, PathBuf)>,
    /// Where stale cgroups may be ([`stale_dirs`]), looked through by
    /// [`Cgroups::remove_stale`] once the sandbox sets itself up.
    stale: Vec<PathBuf>,
}

/// The sandbox's cgroup name: unique, and naming its supervisor so that a later launch can
/// tell a stale one (whose supervisor is gone) from a live one.
pub fn name() -> String {
    let pid = std::process::id();
    format!("kekkai-{pid}-{}", start_time(pid).unwrap_or(0))
}

/// A process's start time in clock ticks after boot (field 22 of /proc/PID/stat).
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = files::read_whole(Path::new(&format!("/proc/{pid}/stat")), 1024).ok()?;
    let after = stat.rsplit_once(") ")?.1;
    after.split(' ').nth(19)?.parse().ok()
}

/// Is the supervisor a `kekkai-PID-START` cgroup names still alive?
fn owner_alive(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("kekkai-") else {
        return true;
    };
    let rest = rest.strip_prefix("launcher-").unwrap_or(rest);
    let mut parts = rest.splitn(2, '-');
    let (Some(pid), Some(start)) = (parts.next(), parts.next()) else {
        return true;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return true;
    };
    start_time(pid) == Some(start)
}

/// Removes empty cgroups left by supervisors that died (kill -9) below `dir`. Returns what it
/// removed.
pub fn remove_stale(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return removed;
    };
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("kekkai-") && !owner_alive(&name) {
            // rmdir fails on a cgroup that still has processes or children: nothing is lost.
            if std::fs::remove_dir(e.path()).is_ok() {
                removed.push(e.path());
            }
        }
    }
    removed
}

/// Every directory stale cgroups may be in.
pub fn stale_dirs(layout: &Layout) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = layout.v2_parent.iter().cloned().collect();
    dirs.extend(layout.v1.iter().map(|(_, p)| p.clone()));
    dirs.sort();
    dirs.dedup();
    dirs
}

impl Cgroups {
    /// Step 1: creates the sandbox's cgroups and writes the limits. On failure, removes what
    /// it created.
    ///
    /// The cgroups dead supervisors left (their names can't be this one's) are removed
    /// later, by [`Cgroups::remove_stale`], off the launch's critical path; here only when
    /// the launch goes no further.
    pub fn create(
        limits: &LimitsPlan,
        layout: &Layout,
        h: &Hierarchies,
    ) -> Result<Option<Cgroups>, StepError> {
        let name = name();
        let mut cg = Cgroups {
            v2: None,
            v2_available: layout.v2_available.clone(),
            v1: Vec::new(),
            freezer: None,
            tasks: Vec::new(),
            oom_events: None,
            placed: Vec::new(),
            stale: stale_dirs(layout),
        };
        if let Err(e) = cg.populate(&name, limits, layout, h) {
            let _ = cg.remove();
            cg.remove_stale();
            return Err(e);
        }
        if cg.v2.is_none() && cg.v1.is_empty() {
            cg.remove_stale();
            return Ok(None);
        }
        Ok(Some(cg))
    }

    /// Removes the cgroups left by supervisors that died ([`remove_stale`]) beside the
    /// sandbox's. The supervisor does it while the sandbox sets itself up (on the other CPU,
    /// when there is one), not before clone: about 0.08 ms of directory reads a launch
    /// (docs/performance.md, item 16).
    pub fn remove_stale(&self) {
        for dir in &self.stale {
            remove_stale(dir);
        }
    }

    fn populate(
        &mut self,
        name: &str,
        limits: &LimitsPlan,
        layout: &Layout,
        h: &Hierarchies,
    ) -> Result<(), StepError> {
        if let Some(parent) = &layout.v2_parent {
            if layout.v2_leaf_move {
                v2::move_into_leaf(parent, name)?;
            }
            v2::enable(parent, &layout.v2_enable, &layout.key)?;
            let (dir, fd) = v2::create(parent, name, limits, &layout.v2_enable)?;
            for c in &layout.v2_enable {
                self.placed.push((*c, Version::V2, dir.clone()));
            }
            self.v2 = Some((dir, fd));
        }
        for (c, parent) in &layout.v1 {
            let dir = v1::create(parent, name, *c, limits)?;
            self.placed.push((*c, Version::V1, dir.clone()));
            if *c == Controller::Memory
                && limits.memory.is_some()
                && *limits.oom == crate::plan::Oom::Sandbox
            {
                self.oom_events = Some(v1::oom_events(&dir, &limits.oom.key)?);
            }
            self.v1.push((*c, dir));
        }
        // Without a v2 cgroup, freeze-and-kill on v1 needs the freezer hierarchy.
        if self.v2.is_none() && !self.v1.is_empty() {
            if let Some((_, own)) = h.own_v1("freezer") {
                if writable(&own) {
                    self.freezer = v1::create_freezer(&own, name).ok();
                }
            }
        }
        for dir in self.v1.iter().map(|(_, d)| d).chain(self.freezer.iter()) {
            self.tasks.push(v1::open_tasks(dir)?);
        }
        Ok(())
    }

    /// The v2 cgroup directory for CLONE_INTO_CGROUP.
    pub fn clone_target(&self) -> Option<BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.v2.as_ref().map(|(_, fd)| fd.as_fd())
    }

    /// Step 3: the `tasks` files of the v1 cgroups, which the child writes "0" to (v2
    /// placement happened at clone). Moving one thread by writing "0" doesn't take the
    /// threadgroup lock that writing a pid takes, whose RCU grace period cost milliseconds a
    /// launch; the child is a single thread, and the descriptors are opened by the supervisor,
    /// whose credentials the kernel checks.
    pub fn v1_tasks(&self) -> Vec<BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.tasks.iter().map(|fd| fd.as_fd()).collect()
    }

    /// What the supervisor polls to end the whole sandbox at an OOM kill (`limits.oom:
    /// sandbox` on cgroup v1; cgroup v2's `memory.oom.group` needs no help).
    pub fn oom_events(&self) -> Option<BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.oom_events.as_ref().map(|fd| fd.as_fd())
    }

    /// Kills whatever is still in the cgroups (the sandbox has ended or timed out) and waits
    /// (at most [`KILL_WAIT`]) until it has gone, so that the cgroups can be removed.
    pub fn kill_all(&self) {
        if let Some((dir, _)) = &self.v2 {
            v2::kill(dir);
        } else if let Some(f) = &self.freezer {
            v1::freeze_and_kill(f);
            v1::wait_empty(f, KILL_WAIT);
        } else if let Some((_, d)) = self.v1.first() {
            kill_listed(d);
            v1::wait_empty(d, KILL_WAIT);
        }
    }

    /// What the cgroups recorded.
    pub fn stats(&self) -> CgroupStats {
        let mut s = CgroupStats::default();
        if let Some((dir, _)) = &self.v2 {
            v2::stats(dir, &self.v2_available, &mut s);
        }
        for (c, dir) in &self.v1 {
            v1::stats(*c, dir, &mut s);
        }
        s
    }

    /// Removes the cgroups (they must be empty).
    pub fn remove(&self) -> Vec<String> {
        let mut failed = Vec::new();
        let dirs = self
            .v1
            .iter()
            .map(|(_, d)| d.clone())
            .chain(self.freezer.clone())
            .chain(self.v2.as_ref().map(|(d, _)| d.clone()));
        for d in dirs {
            if let Err(e) = std::fs::remove_dir(&d) {
                failed.push(format!(
                    "rmdir {}: {}",
                    d.display(),
                    crate::policy::describe_io(&e)
                ));
            }
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Keyed;

    const MOUNTINFO: &str = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
        40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n\
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
    const CGROUP: &str = "9:name=systemd:/\n4:memory:/process_api/x\n1:cpu:/\n0::/user.slice\n";

    #[test]
    fn parses_hybrid_hierarchies() {
        let h = Hierarchies::parse(MOUNTINFO, CGROUP);
        assert_eq!(h.v2_mount, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(
            h.own_v2(),
            Some(PathBuf::from("/sys/fs/cgroup/unified/user.slice"))
        );
        assert_eq!(
            h.own_v1("memory"),
            Some((
                PathBuf::from("/sys/fs/cgroup/memory"),
                PathBuf::from("/sys/fs/cgroup/memory/process_api/x")
            ))
        );
        assert_eq!(h.own_v1("pids"), None);
        assert_eq!(h.v1_mounts.len(), 2, "name=systemd carries no controller");
    }

    /// A fake cgroup2 tree in a temporary directory: the process's cgroup `own` holds `procs`
    /// (`me` is this process), with `subtree` enabled for its children.
    struct Fake(PathBuf);

    impl Fake {
        fn new(own: &str, procs: &[&str], subtree: &str) -> (Fake, Hierarchies) {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let root =
                std::env::temp_dir().join(format!("kekkai-fake-cg-{}-{n}", std::process::id()));
            let dir = join_cgroup(&root, Path::new(own));
            std::fs::create_dir_all(&dir).unwrap();
            let me = std::process::id().to_string();
            let procs: Vec<&str> = procs
                .iter()
                .map(|p| if *p == "me" { me.as_str() } else { p })
                .collect();
            std::fs::write(
                dir.join("cgroup.controllers"),
                "cpuset cpu io memory pids\n",
            )
            .unwrap();
            std::fs::write(dir.join("cgroup.procs"), procs.join("\n")).unwrap();
            std::fs::write(dir.join("cgroup.subtree_control"), subtree).unwrap();
            let h = Hierarchies {
                v2_mount: Some(root.clone()),
                v1_mounts: Vec::new(),
                own: vec![(String::new(), PathBuf::from(own))],
            };
            (Fake(root), h)
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Where the sandbox goes on v2, and whether the launcher must step into a leaf first.
    #[rstest::rstest]
    #[case::alone("/s", &["me"], "", "/s", Some(true))]
    #[case::empty("/s", &[], "", "/s", Some(false))]
    #[case::already_enabled("/s", &[], "memory pids", "/s", Some(false))]
    #[case::others_beside_us("/s", &["me", "1"], "", "/s", None)]
    #[case::others_only("/s", &["1", "2"], "", "/s", None)]
    #[case::root_is_exempt("/", &["me", "1"], "", "/", Some(false))]
    #[case::started_by_a_launcher("/s/kekkai-launcher-1-2", &["me"], "", "/s", Some(false))]
    fn v2_placement(
        #[case] own: &str,
        #[case] procs: &[&str],
        #[case] subtree: &str,
        #[case] parent: &str,
        #[case] leaf_move: Option<bool>,
    ) {
        let (fake, h) = Fake::new(own, procs, subtree);
        if own.contains("kekkai-launcher-") {
            // The launcher's leaf holds the launcher; its parent has the controllers on.
            let p = join_cgroup(&fake.0, Path::new(parent));
            std::fs::write(p.join("cgroup.controllers"), "memory pids").unwrap();
            std::fs::write(p.join("cgroup.procs"), "").unwrap();
            std::fs::write(p.join("cgroup.subtree_control"), "memory pids").unwrap();
        }
        let l = LimitsPlan {
            memory: Some(Keyed::new(64 << 20, KeyPath::root())),
            pids: Some(Keyed::new(32, KeyPath::root())),
            ..Default::default()
        };
        let layout = detect(&l, &h);
        assert_eq!(
            layout.v2_parent,
            Some(join_cgroup(&fake.0, Path::new(parent)))
        );
        match leaf_move {
            Some(m) => {
                assert_eq!(layout.v2_leaf_move, m);
                assert_eq!(layout.v2_enable, [Controller::Memory, Controller::Pids]);
                assert!(layout.missing().is_empty(), "{:?}", layout.missing());
            }
            None => {
                assert!(!layout.v2_leaf_move);
                assert!(layout.v2_enable.is_empty());
                let missing = layout.missing();
                assert_eq!(missing.len(), 2, "{missing:?}");
                assert!(
                    missing[0].starts_with(
                        "limits.memory: the cgroup v2 controllers can't be enabled in "
                    ) && missing[0].contains("it also holds other processes (pids 1"),
                    "{missing:?}"
                );
            }
        }
    }

    #[test]
    fn cgroup_names_carry_their_owner() {
        let n = name();
        assert!(n.starts_with(&format!("kekkai-{}-", std::process::id())));
        assert!(owner_alive(&n));
        assert!(!owner_alive("kekkai-1-1"), "pid 1 did not start at tick 1");
        assert!(!owner_alive("kekkai-999999999-5"));
        assert!(owner_alive("not-ours"));
    }
}
