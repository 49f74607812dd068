//! A failed launch step: which step, which call with which arguments, the errno, and the
//! policy key that asked for it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::plan::steps::Step;
use crate::policy::KeyPath;

/// A launch step that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    /// The step.
    pub step: Step,
    /// The call and its arguments: `mount("proc", "/proc", "proc", MS_NOSUID, NULL)`.
    pub call: String,
    /// The errno, if a system call failed.
    pub errno: Option<i32>,
    /// The policy key that asked for what failed.
    pub key: Option<String>,
    /// What the user can do about it.
    pub hint: Option<String>,
}

impl StepError {
    /// A failed system call.
    pub fn sys(step: Step, call: impl Into<String>, errno: nix::errno::Errno) -> Self {
        StepError {
            step,
            call: call.into(),
            errno: Some(errno as i32),
            key: None,
            hint: None,
        }
    }

    /// A failure that is not a single system call.
    pub fn msg(step: Step, what: impl Into<String>) -> Self {
        StepError {
            step,
            call: what.into(),
            errno: None,
            key: None,
            hint: None,
        }
    }

    /// Names the policy key behind the failure.
    #[must_use]
    pub fn key(mut self, key: &KeyPath) -> Self {
        self.key = Some(key.to_string());
        self
    }

    /// Names where the user asked for what failed, already placed (a mount's
    /// [`crate::plan::MountPlan::origin`]: `--bind /data`, or `FILE:LINE:COL: mounts[0].bind`).
    #[must_use]
    pub fn at(mut self, origin: &str) -> Self {
        self.key = Some(origin.to_owned());
        self
    }

    /// Adds advice.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.step.info();
        write!(
            f,
            "step {} ({}): {}",
            info.number,
            self.step.name(),
            self.call
        )?;
        if let Some(e) = self.errno {
            let errno = nix::errno::Errno::from_raw(e);
            write!(f, " => {errno:?} ({})", errno.desc())?;
        }
        if let Some(k) = &self.key {
            write!(f, "; policy key: {k}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StepError {}

/// Attaches the step and the call to a nix result.
pub trait Syscall<T> {
    /// On error, a [`StepError`] for `step` naming `call` (built lazily).
    fn step(self, step: Step, call: impl FnOnce() -> String) -> Result<T, StepError>;
}

impl<T> Syscall<T> for nix::Result<T> {
    fn step(self, step: Step, call: impl FnOnce() -> String) -> Result<T, StepError> {
        self.map_err(|e| StepError::sys(step, call(), e))
    }
}
