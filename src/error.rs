//! The error type of the binary, and how each kind maps to an exit code.

use crate::policy::Diagnostics;

/// Exit codes, as coreutils `timeout`/`env` and `docker run` use them.
pub mod exit {
    /// `check`/`explain`: the policy is invalid.
    pub const INVALID: i32 = 1;
    /// Usage error (clap exits with this too).
    pub const USAGE: i32 = 2;
    /// The policy's timeout fired.
    pub const TIMEOUT: i32 = 124;
    /// kekkai failed before the program started.
    pub const LAUNCH: i32 = 125;
    /// The program was found but could not be executed.
    pub const NOT_EXECUTABLE: i32 = 126;
    /// The program was not found.
    pub const NOT_FOUND: i32 = 127;
}

/// Everything that can go wrong in kekkai itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy (or a command-line override) is invalid.
    #[error("{0}")]
    Policy(#[from] Diagnostics),
    /// A launch step failed.
    #[error("{0}")]
    Launch(#[from] crate::launch::StepError),
    /// The command line is wrong in a way clap can't see.
    #[error("{0}")]
    Usage(String),
    /// A host file kekkai would read or write on the caller's behalf is refused.
    #[error("{0}")]
    Host(String),
    /// Reading or writing something outside the sandbox failed.
    #[error("{what}: {}", crate::policy::describe_io(.source))]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl Error {
    /// Shorthand for an I/O error with context.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}
