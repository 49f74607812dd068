//! kekkai's exit codes, as coreutils `timeout`/`env` and `docker run` use them (DESIGN.md's
//! table). A leaf: the launcher (which exits with some of them from inside the sandbox) and the
//! command line's one reporter both take them from here.

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

/// The engine's verbs (`enter` aside, which exits as `run` does): no sandbox of that name.
pub const NO_SUCH_SANDBOX: i32 = 1;
/// `stop`, `kill`, `stats NAME`: the sandbox is not running.
pub const NOT_RUNNING: i32 = 3;
/// `rm` without `-f`: the sandbox is still running.
pub const SANDBOX_RUNNING: i32 = 4;
/// The state directory (or an entry in it) is refused: not the caller's, open to others, a
/// symbolic link, `XDG_RUNTIME_DIR` unset.
pub const STATE_REFUSED: i32 = 5;
