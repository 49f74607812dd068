//! Who runs kekkai, and whether this machine lets a test run at all.
//!
//! The launch tests run as root and drive the unprivileged test user from there. They are
//! `#[ignore = "needs root: run by scripts/test"]`: a plain `cargo test` lists them as ignored,
//! and `scripts/test` (CI's entry point, run as root) includes them. One that is run anyway
//! without root fails at [`need`], never passes.

/// Who runs kekkai.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The test process's own identity, which must be root.
    Root,
    /// The unprivileged test user.
    Rootless,
}

/// How the run is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As root.
    Root,
    /// Unprivileged, inside a cgroup delegated to the test user.
    Delegated,
    /// Unprivileged, no delegation: hard limits refuse, best-effort drops them.
    Plain,
}

impl Mode {
    /// Root as root, anyone else as a plain unprivileged run.
    pub fn plain(who: Who) -> Mode {
        if who == Who::Root {
            Mode::Root
        } else {
            Mode::Plain
        }
    }

    /// Who runs kekkai in this mode.
    pub fn who(self) -> Who {
        if self == Mode::Root {
            Who::Root
        } else {
            Who::Rootless
        }
    }
}

/// Is this a CI run (where skipping is failing)?
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips the calling test (returns true) when `missing` is Some, or fails it in CI. For what a
/// root run may lack outside CI (a tool, a kernel to boot); never for root itself ([`need`]).
pub fn skip(missing: Option<String>) -> bool {
    match missing {
        None => false,
        Some(why) if in_ci() => panic!("CI=true: this test can't be skipped, but {why}"),
        Some(why) => {
            eprintln!("skipped: {why}");
            true
        }
    }
}

/// The unprivileged test user's (uid, gid).
pub fn test_user() -> Option<(u32, u32)> {
    let name = std::env::var("KEKKAI_TEST_USER").unwrap_or_else(|_| "kekkai-test".into());
    let user = nix::unistd::User::from_name(&name).ok().flatten()?;
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

/// Why `who` can't run here, if it can't.
pub fn unavailable(who: Who) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("the launch tests run as root (they also drive the unprivileged user)".into());
    }
    if who == Who::Rootless && test_user().is_none() {
        return Some("no unprivileged test user: run scripts/setup-test-env".into());
    }
    None
}

/// The first line of a root-only test (one marked `#[ignore = "needs root: run by
/// scripts/test"]`): fails it, loudly, where `who` can't run — such a test only runs when asked
/// for (`--include-ignored`), and then it must not pass without having run.
pub fn need(who: Who) {
    if let Some(why) = unavailable(who) {
        panic!("this test can't run here: {why}; run it as root by scripts/test");
    }
}
