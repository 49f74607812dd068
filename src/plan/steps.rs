//! The strict order of a launch, as data: what `explain` prints, what errors name, and what the
//! launcher's child follows. `launch::child` runs them in exactly this order; a test holds the
//! two together.

use serde::{Deserialize, Serialize};

/// A launch step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Compile the plan and open the cgroup.
    Plan,
    /// clone3 with the namespace flags.
    Clone,
    /// uid/gid maps and cgroup v1 placement.
    IdMaps,
    /// Private propagation and the overlay root in a staging tmpfs.
    Rootfs,
    /// The policy's mounts.
    Mounts,
    /// pivot_root, detach the old root, read-only remount.
    PivotRoot,
    /// Hostname, rlimits, working directory.
    Environment,
    /// Capabilities and ids.
    DropPrivileges,
    /// PR_SET_NO_NEW_PRIVS.
    NoNewPrivs,
    /// Landlock restrict_self.
    Landlock,
    /// Close inherited file descriptors.
    CloseFds,
    /// Install the seccomp filters.
    Seccomp,
    /// Execute the program.
    Exec,
}

/// Which process runs a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// The supervisor, outside the sandbox.
    Parent,
    /// The sandbox's first process.
    Child,
}

/// A step's fixed description.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StepInfo {
    /// The step.
    pub step: Step,
    /// 1-based position.
    pub number: u8,
    /// Which side runs it.
    pub side: Side,
    /// What it does.
    pub what: &'static str,
    /// Why it sits where it does.
    pub why: &'static str,
}

/// The order. One line per step; the "why" is the reason the order is forced.
pub const ORDER: [StepInfo; 13] = [
    StepInfo {
        step: Step::Plan,
        number: 1,
        side: Side::Parent,
        what: "compile the policy into a plan; open the cgroup",
        why: "everything is validated before any side effect",
    },
    StepInfo {
        step: Step::Clone,
        number: 2,
        side: Side::Parent,
        what: "clone3 with the namespace flags (CLONE_INTO_CGROUP on cgroup v2)",
        why: "the program never runs outside its namespaces and limits",
    },
    StepInfo {
        step: Step::IdMaps,
        number: 3,
        side: Side::Parent,
        what: "write uid_map/gid_map (setgroups denied when rootless); the child then joins \
               its cgroup v1 hierarchies itself; for `network: user` start pasta and load the \
               egress rules into the sandbox's network namespace while the child goes on to \
               step 11",
        why: "only a process outside the new user namespace may write its maps; pasta and nft \
              join the namespaces once the maps exist",
    },
    StepInfo {
        step: Step::Rootfs,
        number: 4,
        side: Side::Child,
        what: "make mount propagation private; build the overlay root in a private staging tmpfs",
        why: "the host must never see the sandbox's mounts",
    },
    StepInfo {
        step: Step::Mounts,
        number: 5,
        side: Side::Child,
        what: "mounts in policy order: bind, tmpfs, hide, proc, dev, mqueue",
        why: "they go on top of the root, before it is sealed",
    },
    StepInfo {
        step: Step::PivotRoot,
        number: 6,
        side: Side::Child,
        what: "pivot_root; detach the old root; remount read-only",
        why: "after this no path leads back to the host tree",
    },
    StepInfo {
        step: Step::Environment,
        number: 7,
        side: Side::Child,
        what: "hostname, loopback, rlimits, working directory",
        why: "still privileged inside the namespaces",
    },
    StepInfo {
        step: Step::DropPrivileges,
        number: 8,
        side: Side::Child,
        what: "bounding set, then setgroups/setresgid/setresuid, then ambient keep-list",
        why: "the mounts above needed CAP_SYS_ADMIN; the bounding set needs CAP_SETPCAP",
    },
    StepInfo {
        step: Step::NoNewPrivs,
        number: 9,
        side: Side::Child,
        what: "PR_SET_NO_NEW_PRIVS",
        why: "unprivileged Landlock and seccomp require it; no setuid gains after this",
    },
    StepInfo {
        step: Step::Landlock,
        number: 10,
        side: Side::Child,
        what: "Landlock restrict_self",
        why: "its rules resolve paths in the new root",
    },
    StepInfo {
        step: Step::CloseFds,
        number: 11,
        side: Side::Child,
        what: "close every fd but stdio and the ones passed on purpose",
        why: "no host fd survives into the program (CVE-2024-21626 class)",
    },
    StepInfo {
        step: Step::Seccomp,
        number: 12,
        side: Side::Child,
        what: "wait for the parent's go-ahead (network ready); install the seccomp filter",
        why: "last: it would filter the launcher's own setup",
    },
    StepInfo {
        step: Step::Exec,
        number: 13,
        side: Side::Child,
        what: "execve the program (PID 2 under the reaper, or PID 1)",
        why: "execve must be allowed by the filter",
    },
];

impl Step {
    /// This step's description.
    pub fn info(self) -> StepInfo {
        ORDER
            .iter()
            .copied()
            .find(|i| i.step == self)
            .unwrap_or(ORDER[0])
    }

    /// The name used in errors and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Step::Plan => "plan",
            Step::Clone => "clone",
            Step::IdMaps => "id-maps",
            Step::Rootfs => "rootfs",
            Step::Mounts => "mounts",
            Step::PivotRoot => "pivot-root",
            Step::Environment => "environment",
            Step::DropPrivileges => "drop-privileges",
            Step::NoNewPrivs => "no-new-privs",
            Step::Landlock => "landlock",
            Step::CloseFds => "close-fds",
            Step::Seccomp => "seccomp",
            Step::Exec => "exec",
        }
    }

    /// Every step, in order.
    pub fn all() -> impl Iterator<Item = Step> {
        ORDER.iter().map(|i| i.step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_the_order() {
        for (i, info) in ORDER.iter().enumerate() {
            assert_eq!(usize::from(info.number), i + 1);
            assert_eq!(info.step.info().number, info.number);
        }
    }

    #[test]
    fn the_forced_pairs_hold() {
        let pos = |s: Step| s.info().number;
        assert!(pos(Step::Mounts) < pos(Step::DropPrivileges));
        assert!(pos(Step::PivotRoot) < pos(Step::Landlock));
        assert!(pos(Step::NoNewPrivs) < pos(Step::Landlock));
        assert!(pos(Step::NoNewPrivs) < pos(Step::Seccomp));
        assert!(pos(Step::CloseFds) < pos(Step::Seccomp));
        assert_eq!(Step::all().last(), Some(Step::Exec));
        assert_eq!(Step::all().nth(ORDER.len() - 2), Some(Step::Seccomp));
    }
}
