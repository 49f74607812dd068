//! What the sandbox actually enforced, as it reports it to the supervisor before exec.

use serde::{Deserialize, Serialize};

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
