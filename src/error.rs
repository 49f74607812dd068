//! The error type of the binary. Which exit code each kind gives is the command line's
//! reporter's choice (the codes are in [`crate::exit`]).

use crate::policy::Diagnostics;

/// Everything that can go wrong in kekkai itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy (or a command-line override) is invalid.
    #[error("{0}")]
    Policy(#[from] Diagnostics),
    /// A launch step failed.
    #[error("{0}")]
    Launch(#[from] crate::launch::StepError),
    /// The state directory, or a sandbox in it (`ps`, `enter`, `stop`...).
    #[error("{0}")]
    State(#[from] crate::state::StateError),
    /// The command line is wrong in a way clap can't see.
    #[error("{0}")]
    Usage(String),
    /// A host file kekkai would read or write on the caller's behalf is refused.
    #[error("{0}")]
    Host(String),
    /// An image operation failed (import, pull, the store).
    #[error("{0}")]
    Image(#[from] crate::image::ImageError),
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
