//! How a launch ended, decided from what the supervisor saw: a pure function, no descriptors,
//! no system calls. The event loop (`events.rs`) collects an [`Observed`] until the
//! sandbox's first process is gone and the channel is read to its end; [`decide`] turns it into
//! the [`Outcome`] and kekkai's exit code (DESIGN.md's table).

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::exit;
use crate::launch::error::StepError;
use crate::launch::observe::Observations;
use crate::launch::report::{CgroupOutcome, Ended, Enforced, Outcome};
use crate::plan::steps::Step;

/// What the supervisor saw of a run, each as it arrived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The policy's timeout fired (the sandbox was sent SIGTERM).
    pub timed_out: bool,
    /// The sandbox reported a failed setup step.
    pub setup_error: Option<StepError>,
    /// The sandbox reported that execve failed: (program, errno).
    pub exec_error: Option<(String, i32)>,
    /// The sandbox reported what it enforced (the program starts next).
    pub enforced: Option<Enforced>,
    /// The reaper reported how the program ended.
    pub program: Option<Ended>,
    /// How the sandbox's first process ended (`waitpid`); the run is over once it is known.
    pub sandbox: Option<Ended>,
    /// From clone to the end.
    pub wall: Duration,
    /// `kekkai learn`: what the observer saw.
    pub observations: Option<Observations>,
}

/// The outcome of a run: the program's end as the reaper reported it, else the sandbox's;
/// the exit code by [`exit_code`]. A sandbox that died by a signal before saying anything (no
/// report, no error, nothing enforced) crashed in its setup: that is a setup error. The
/// rusage and cgroup fields are left for the caller, which reads them after the cleanup.
pub fn decide(seen: Observed) -> Outcome {
    let mut setup_error = seen.setup_error;
    let said_nothing = seen.enforced.is_none()
        && setup_error.is_none()
        && seen.program.is_none()
        && seen.exec_error.is_none();
    if let (true, Some(Ended::Signaled(sig))) = (said_nothing, seen.sandbox) {
        let name =
            Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.to_string());
        setup_error = Some(StepError::msg(
            Step::Exec,
            format!("the sandbox's setup died before the program started (killed by {name})"),
        ));
    }
    let ended = seen.program.or(seen.sandbox).unwrap_or(Ended::Exited(0));
    let exit_code = exit_code(
        setup_error.is_some(),
        seen.timed_out,
        seen.exec_error.as_ref().map(|(_, errno)| *errno),
        ended,
    );
    Outcome {
        ended,
        exit_code,
        timed_out: seen.timed_out,
        setup_error,
        exec_error: seen.exec_error,
        enforced: seen.enforced,
        wall: seen.wall,
        user_ms: 0,
        sys_ms: 0,
        max_rss: 0,
        cgroup: CgroupOutcome::default(),
        observations: seen.observations,
        notes: Vec::new(),
        mounts_freed_after_exit: false,
    }
}

/// The exit status for how a run ended (DESIGN.md's table): 125 when the setup failed, 124 when
/// the policy's timeout fired, 127 or 126 when the program could not be executed, else the
/// program's own status (128 + N for signal N).
fn exit_code(setup_failed: bool, timed_out: bool, exec_errno: Option<i32>, ended: Ended) -> i32 {
    match (setup_failed, timed_out, exec_errno) {
        (true, _, _) => exit::LAUNCH,
        (false, true, _) => exit::TIMEOUT,
        (false, false, Some(libc::ENOENT)) => exit::NOT_FOUND,
        (false, false, Some(_)) => exit::NOT_EXECUTABLE,
        (false, false, None) => ended.exit_code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// What a sandbox says in the common cases.
    #[derive(Clone, Copy)]
    enum Said {
        /// Nothing at all.
        Nothing,
        /// `Failed` (a setup step).
        Failed,
        /// `Enforced`, and nothing after it (the program is PID 1, or the reaper died).
        Enforced,
        /// `Enforced`, then `ExecFailed` with this errno.
        NoExec(i32),
        /// `Enforced`, then the reaper's `ProgramExited`.
        Program(Ended),
    }

    fn observed(said: Said, timed_out: bool, sandbox: Ended) -> Observed {
        let mut seen = Observed {
            timed_out,
            sandbox: Some(sandbox),
            ..Observed::default()
        };
        match said {
            Said::Nothing => {}
            Said::Failed => {
                seen.setup_error = Some(StepError::sys(
                    Step::Mounts,
                    "mount(...)",
                    nix::errno::Errno::EPERM,
                ))
            }
            Said::Enforced => seen.enforced = Some(Enforced::default()),
            Said::NoExec(errno) => {
                seen.enforced = Some(Enforced::default());
                seen.exec_error = Some(("prog".into(), errno));
            }
            Said::Program(ended) => {
                seen.enforced = Some(Enforced::default());
                seen.program = Some(ended);
            }
        }
        seen
    }

    use Ended::{Exited, Signaled};
    use libc::{EACCES, ENOENT, ENOEXEC};

    #[rstest]
    #[case::exited(Said::Program(Exited(3)), false, Exited(0), 3, Exited(3), false)]
    #[case::exited_zero(Said::Program(Exited(0)), false, Exited(0), 0, Exited(0), false)]
    #[case::killed_by_signal(Said::Program(Signaled(9)), false, Exited(0), 137, Signaled(9), false)]
    #[case::pid_1_exited(Said::Enforced, false, Exited(4), 4, Exited(4), false)]
    #[case::pid_1_killed(Said::Enforced, false, Signaled(15), 143, Signaled(15), false)]
    #[case::timeout_killed(Said::Enforced, true, Signaled(9), 124, Signaled(9), false)]
    #[case::timeout_but_exited(Said::Program(Exited(0)), true, Exited(0), 124, Exited(0), false)]
    #[case::setup_error(Said::Failed, false, Exited(125), 125, Exited(125), true)]
    #[case::setup_error_beats_timeout(Said::Failed, true, Signaled(9), 125, Signaled(9), true)]
    #[case::not_found(Said::NoExec(ENOENT), false, Exited(127), 127, Exited(127), false)]
    #[case::not_permitted(Said::NoExec(EACCES), false, Exited(126), 126, Exited(126), false)]
    #[case::not_a_binary(Said::NoExec(ENOEXEC), false, Exited(126), 126, Exited(126), false)]
    #[case::timeout_beats_no_exec(Said::NoExec(ENOENT), true, Exited(127), 124, Exited(127), false)]
    #[case::no_exec_then_killed(Said::NoExec(EACCES), false, Signaled(9), 126, Signaled(9), false)]
    #[case::setup_died_by_signal(Said::Nothing, false, Signaled(6), 125, Signaled(6), true)]
    #[case::setup_died_in_a_timeout(Said::Nothing, true, Signaled(9), 125, Signaled(9), true)]
    #[case::setup_exited_silently(Said::Nothing, false, Exited(125), 125, Exited(125), false)]
    fn how_a_run_ended_decides_the_outcome(
        #[case] said: Said,
        #[case] timed_out: bool,
        #[case] sandbox: Ended,
        #[case] want_code: i32,
        #[case] want_ended: Ended,
        #[case] want_setup_error: bool,
    ) {
        let seen = observed(said, timed_out, sandbox);
        let exec_error = seen.exec_error.clone();
        let enforced = seen.enforced.clone();
        let out = decide(seen);
        assert_eq!(out.exit_code, want_code);
        assert_eq!(out.ended, want_ended);
        assert_eq!(out.timed_out, timed_out);
        assert_eq!(out.setup_error.is_some(), want_setup_error);
        assert_eq!(out.exec_error, exec_error);
        assert_eq!(out.enforced, enforced);
    }

    #[rstest]
    #[case::abort(libc::SIGABRT, "killed by SIGABRT")]
    #[case::segv(libc::SIGSEGV, "killed by SIGSEGV")]
    #[case::realtime(35, "killed by signal 35")]
    fn a_setup_that_dies_silently_is_named_by_its_signal(#[case] sig: i32, #[case] want: &str) {
        let out = decide(observed(Said::Nothing, false, Signaled(sig)));
        let err = out.setup_error.map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(want), "{err}");
        assert!(
            err.contains("setup died before the program started"),
            "{err}"
        );
    }

    /// The setup error the sandbox sent is kept as it was, not replaced by the signal.
    #[test]
    fn a_reported_setup_error_is_kept() {
        let seen = observed(Said::Failed, false, Signaled(9));
        let sent = seen.setup_error.clone();
        assert_eq!(decide(seen).setup_error, sent);
    }

    #[test]
    fn the_wall_time_is_passed_on() {
        let seen = Observed {
            wall: Duration::from_millis(1234),
            ..observed(Said::Program(Exited(0)), false, Exited(0))
        };
        assert_eq!(decide(seen).wall, Duration::from_millis(1234));
    }
}
