//! What a run did, as data: how the program ended ([`Ended`]), what the sandbox enforced (it
//! says so over the channel just before exec), how the launch ended as the supervisor saw it
//! ([`Outcome`]), and the JSON record `--report` writes from those. Plain types and the
//! functions that format them: the channel (`sync.rs`) carries them, the supervisor (`parent/`)
//! fills them in; this file takes from neither.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::cgroup::{CgroupStats, Version};
use super::error::StepError;
use crate::plan::Controller;
use crate::plan::Plan;

/// How the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ended {
    /// exit(code).
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

impl Ended {
    /// How a process ended, from [`crate::sys::wait_nohang`] (real-time signals too); `None`
    /// for a stop or continue.
    pub fn of_end(end: crate::sys::ChildEnd) -> Option<Ended> {
        match end {
            crate::sys::ChildEnd::Exited(code) => Some(Ended::Exited(code)),
            crate::sys::ChildEnd::Signaled(sig) => Some(Ended::Signaled(sig)),
            crate::sys::ChildEnd::Other => None,
        }
    }

    /// The shell convention: the code, or 128 + the signal.
    pub fn exit_code(self) -> i32 {
        match self {
            Ended::Exited(c) => c,
            Ended::Signaled(s) => 128 + s,
        }
    }
}

/// How a launch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// How the program (or, failing that, the sandbox) ended.
    pub ended: Ended,
    /// The exit code kekkai should exit with.
    pub exit_code: i32,
    /// The policy's timeout fired.
    pub timed_out: bool,
    /// A setup step failed (exit code 125).
    pub setup_error: Option<StepError>,
    /// execve failed: (program, errno).
    pub exec_error: Option<(String, i32)>,
    /// What the sandbox reported as enforced.
    pub enforced: Option<Enforced>,
    /// Wall-clock time from clone to the end.
    pub wall: Duration,
    /// CPU time of the sandbox, user and system, in milliseconds.
    pub user_ms: u64,
    /// System CPU time in milliseconds.
    pub sys_ms: u64,
    /// Largest resident set of any sandbox process, in bytes.
    pub max_rss: u64,
    /// Limits and what they saw.
    pub cgroup: CgroupOutcome,
    /// `kekkai learn`: what the observer saw.
    pub observations: Option<super::observe::Observations>,
    /// What the supervisor did differently, without weakening anything (said with `-v`).
    pub notes: Vec<String>,
    /// The sandbox's mounts were left to the kernel to free after kekkai's exit
    /// (`launch/parent/teardown.rs`).
    pub mounts_freed_after_exit: bool,
}

/// The cgroup side of a run, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupOutcome {
    /// Where each controller was placed.
    pub placed: Vec<(Controller, Version)>,
    /// Limits a best-effort policy asked for and the host could not enforce.
    pub dropped: Vec<String>,
    /// What the cgroups recorded.
    pub stats: CgroupStats,
    /// Cleanup problems (a cgroup that could not be removed).
    pub leftovers: Vec<String>,
}

/// Landlock's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockReport {
    /// The kernel's Landlock ABI (0: unavailable).
    pub abi: i32,
    /// `fully-enforced`, `partially-enforced`, `not-enforced` or `disabled`.
    pub status: String,
    /// What a best-effort policy asked for and the kernel could not enforce.
    pub dropped: Vec<String>,
    /// Rule paths that do not exist in the sandbox (they grant nothing).
    pub absent_paths: Vec<String>,
}

/// What was enforced, layer by layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enforced {
    /// Landlock.
    pub landlock: LandlockReport,
    /// seccomp filters installed (name, instructions).
    pub seccomp: Vec<(String, usize)>,
    /// no_new_privs is set.
    pub no_new_privs: bool,
    /// Things done differently from the policy without weakening the sandbox.
    pub notes: Vec<String>,
}

/// The JSON record `--report` writes: what was asked, what was enforced, how the run ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// The policy.
    pub policy: PolicyInfo,
    /// What was enforced.
    pub enforced: EnforcedReport,
    /// How the run ended.
    pub ended: EndReport,
    /// Time spent.
    pub time: TimeReport,
    /// Peak memory of the sandbox in bytes (cgroup peak where available, else the largest RSS).
    pub peak_memory_bytes: u64,
    /// What `kekkai audit`'s harness was allowed beyond the policy (`__run-plan --audit-harness`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// (The audit's `Widening`, as JSON: launch sits below audit and does not name its types.)
    pub audit_harness: Option<serde_json::Value>,
}

/// Which policy ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyInfo {
    /// Its name.
    pub name: String,
    /// Stable hash of the merged policy.
    pub hash: String,
    /// The files (and command-line layers) merged.
    pub sources: Vec<String>,
}

/// One cgroup controller's placement and limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CgroupLimit {
    /// The controller.
    pub controller: Controller,
    /// The cgroup version that carries it.
    pub version: Version,
    /// The limit, as the policy's values (e.g. `memory 512M`).
    pub limit: String,
}

/// What was enforced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnforcedReport {
    /// Namespaces created.
    pub namespaces: Vec<String>,
    /// cgroup controllers in place.
    pub cgroup: Vec<CgroupLimit>,
    /// Limits a best-effort policy could not have.
    pub cgroup_dropped: Vec<String>,
    /// Everything a best-effort policy asked for and this host could not enforce: the
    /// limits above and Landlock's `dropped`, in one list (empty: all of it holds).
    pub dropped: Vec<String>,
    /// rlimits set (name, value; `unlimited` for none).
    pub rlimits: Vec<(String, String)>,
    /// Landlock's outcome.
    pub landlock: Option<LandlockReport>,
    /// seccomp filters installed (name, instructions).
    pub seccomp: Vec<(String, usize)>,
    /// Capabilities kept.
    pub capabilities: Vec<String>,
    /// no_new_privs was set.
    pub no_new_privs: bool,
    /// Things done differently from the policy without weakening the sandbox.
    pub notes: Vec<String>,
    /// `network: user`: what pasta and the egress rules enforced (None for `none` and `host`).
    #[serde(default)]
    pub network: Option<NetworkReport>,
}

/// `network: user`, as enforced: pasta was ready and the rules loaded before the program
/// started (the launch fails otherwise).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkReport {
    /// pasta's command line.
    pub pasta: String,
    /// Published ports.
    pub ports: Vec<String>,
    /// The egress rules, a line each (as `explain` shows them).
    pub egress: Vec<String>,
}

/// How the run ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndReport {
    /// kekkai's exit code.
    pub exit_code: i32,
    /// The program's own exit status, if it exited.
    pub exited: Option<i32>,
    /// The signal that killed the program, if one did.
    pub signal: Option<i32>,
    /// The policy's timeout fired.
    pub timed_out: bool,
    /// The OOM killer killed a sandbox process.
    pub oom_killed: bool,
    /// Forks failed at the pids limit.
    pub pids_limit_hit: bool,
    /// A setup step failed (exit 125).
    pub setup_error: Option<String>,
    /// The program could not be executed: (program, errno name).
    pub exec_error: Option<(String, String)>,
    /// The sandbox's mounts were left to the kernel to free after kekkai's exit (no process,
    /// no cgroup left: only the mount namespace, freed a few milliseconds later).
    #[serde(default)]
    pub mounts_freed_after_exit: bool,
}

/// Time spent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimeReport {
    /// Wall clock, in milliseconds.
    pub wall_ms: u64,
    /// User CPU time, in milliseconds.
    pub user_ms: u64,
    /// System CPU time, in milliseconds.
    pub sys_ms: u64,
}

impl RunReport {
    /// Assembles the report of a run.
    pub fn new(plan: &Plan, outcome: &Outcome) -> RunReport {
        let enforced = outcome.enforced.clone().unwrap_or_default();
        let parts = plan.limits.parts();
        let cgroup = outcome
            .cgroup
            .placed
            .iter()
            .map(|(c, v)| CgroupLimit {
                controller: *c,
                version: *v,
                limit: parts
                    .iter()
                    .filter(|(controller, _)| controller == c)
                    .map(|(_, text)| text.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
            .collect();
        let (exited, signal) = match outcome.ended {
            Ended::Exited(c) => (Some(c), None),
            Ended::Signaled(s) => (None, Some(s)),
        };
        let stats = &outcome.cgroup.stats;
        RunReport {
            policy: PolicyInfo {
                name: plan.name.clone(),
                hash: plan.policy_hash.get().to_owned(),
                sources: plan.sources.clone(),
            },
            enforced: EnforcedReport {
                namespaces: plan
                    .namespaces
                    .iter()
                    .map(|n| n.name().to_owned())
                    .collect(),
                cgroup,
                cgroup_dropped: outcome.cgroup.dropped.clone(),
                dropped: dropped(
                    &outcome.cgroup.dropped,
                    outcome.enforced.as_ref().map(|e| &e.landlock),
                )
                .into_iter()
                .chain(plan.network_dropped.iter().cloned())
                .collect(),
                rlimits: plan
                    .rlimits
                    .iter()
                    .map(|r| {
                        (
                            r.limit.name().to_owned(),
                            if r.value == u64::MAX {
                                "unlimited".into()
                            } else {
                                r.value.to_string()
                            },
                        )
                    })
                    .collect(),
                landlock: outcome.enforced.as_ref().map(|e| e.landlock.clone()),
                seccomp: enforced.seccomp.clone(),
                capabilities: plan.caps.names(),
                no_new_privs: enforced.no_new_privs,
                notes: enforced.notes.clone(),
                network: plan.user_net.as_ref().map(|u| NetworkReport {
                    pasta: format!("{} {}", u.pasta.program.display(), u.pasta.args.join(" ")),
                    ports: u.ports.iter().map(|p| p.value.to_string()).collect(),
                    egress: u.egress.lines(),
                }),
            },
            ended: EndReport {
                exit_code: outcome.exit_code,
                exited,
                signal,
                timed_out: outcome.timed_out,
                oom_killed: stats.oom_kills > 0,
                pids_limit_hit: stats.pids_limit_hits > 0,
                setup_error: outcome.setup_error.as_ref().map(|e| e.to_string()),
                exec_error: outcome
                    .exec_error
                    .as_ref()
                    .map(|(p, e)| (p.clone(), format!("{:?}", nix::errno::Errno::from_raw(*e)))),
                mounts_freed_after_exit: outcome.mounts_freed_after_exit,
            },
            time: TimeReport {
                wall_ms: u64::try_from(outcome.wall.as_millis()).unwrap_or(u64::MAX),
                user_ms: outcome.user_ms,
                sys_ms: outcome.sys_ms,
            },
            peak_memory_bytes: stats.peak_memory.unwrap_or(outcome.max_rss),
            audit_harness: None,
        }
    }
}

/// What a best-effort policy asked for and the host could not enforce: the cgroup limits
/// dropped, then Landlock's drops.
pub fn dropped(cgroup: &[String], landlock: Option<&LandlockReport>) -> Vec<String> {
    cgroup
        .iter()
        .chain(landlock.into_iter().flat_map(|l| l.dropped.iter()))
        .cloned()
        .collect()
}

/// The one line `kekkai run` says about [`dropped`] on stderr (unless -q), with how to get
/// the cgroup limits back when some were dropped.
pub fn dropped_line(cgroup: &[String], landlock: Option<&LandlockReport>) -> String {
    let mut line = format!(
        "best-effort: running without what this host can't enforce: {}",
        dropped(cgroup, landlock).join("; ")
    );
    if !cgroup.is_empty() {
        let user = if nix::unistd::geteuid().is_root() {
            ""
        } else {
            " --user"
        };
        line.push_str(&format!(
            " (a delegated cgroup gives the limits: systemd-run{user} --scope -p Delegate=yes kekkai run ...)"
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::ChildEnd;

    #[rstest::rstest]
    #[case::exited(ChildEnd::Exited(3), Some(Ended::Exited(3)))]
    #[case::killed(ChildEnd::Signaled(9), Some(Ended::Signaled(9)))]
    #[case::dumped_core(ChildEnd::Signaled(11), Some(Ended::Signaled(11)))]
    #[case::realtime_signal(ChildEnd::Signaled(34), Some(Ended::Signaled(34)))]
    #[case::stopped_or_continued(ChildEnd::Other, None)]
    fn a_child_end_is_an_end_or_not(#[case] end: ChildEnd, #[case] want: Option<Ended>) {
        assert_eq!(Ended::of_end(end), want);
    }

    #[rstest::rstest]
    #[case::exited(Ended::Exited(3), 3)]
    #[case::exited_zero(Ended::Exited(0), 0)]
    #[case::killed(Ended::Signaled(9), 137)]
    #[case::terminated(Ended::Signaled(15), 143)]
    fn an_end_is_an_exit_code_as_a_shell_gives_it(#[case] ended: Ended, #[case] want: i32) {
        assert_eq!(ended.exit_code(), want);
    }

    #[rstest::rstest]
    #[case::nothing(&[], &[], &[])]
    #[case::limits_then_landlock(
        &["limits.memory: no delegated cgroup"],
        &["landlock.scope needs ABI 6, the kernel has 2"],
        &["limits.memory: no delegated cgroup", "landlock.scope needs ABI 6, the kernel has 2"],
    )]
    fn drops_are_listed_together(
        #[case] cgroup: &[&str],
        #[case] landlock: &[&str],
        #[case] want: &[&str],
    ) {
        let cgroup: Vec<String> = cgroup.iter().map(|s| s.to_string()).collect();
        let ll = LandlockReport {
            dropped: landlock.iter().map(|s| s.to_string()).collect(),
            ..LandlockReport::default()
        };
        assert_eq!(dropped(&cgroup, Some(&ll)), want);
        let line = dropped_line(&cgroup, Some(&ll));
        assert_eq!(line.lines().count(), 1, "{line}");
        assert_eq!(line.contains("Delegate=yes"), !cgroup.is_empty(), "{line}");
    }
}
