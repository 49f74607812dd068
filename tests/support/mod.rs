//! What the integration tests share: scratch directories, callers for the policy tests, and
//! real sandboxes run as root and as an unprivileged user.
//!
//! - [`Scratch`]: a fresh directory under /tmp, removed on drop.
//! - [`World`]: kekkai and the probe in a scratch directory every user can enter; [`run_as`]
//!   runs kekkai there as root, as the test user, or as the test user in a [`Delegated`] cgroup.
//! - [`Who`], [`Mode`], [`need`]: the launch tests run as root and drive the unprivileged test
//!   user (`KEKKAI_TEST_USER`, default `kekkai-test`, created by `scripts/setup-test-env`). They
//!   are marked `#[ignore = "needs root: run by scripts/test"]`, so a run without root lists
//!   them as ignored; `scripts/test` runs them. Something else a root run may lack (a tool, a
//!   kernel to boot) skips the test outside CI, and fails it with `CI=true` ([`skip`]).
//! - [`turn`]: the lock that keeps measurements of machine-wide state (residue, cgroups) apart
//!   from every other test's sandboxes, across test binaries and checkouts; [`Residue`].
//! - [`report`]: the typed run report (`--report`).
//! - [`on_a_free_port`]: a server on a port of the host's loopback that no one else takes.
//!
//! Each test binary uses part of this.
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod cgroups;
mod lock;
mod output;
mod policy;
mod ports;
mod procs;
mod residue;
mod scratch;
mod who;
mod world;

pub use cgroups::{Delegated, cgroup_dirs, chown};
pub use lock::{Turn, free_for, turn};
pub use output::{
    MountLine, assert_code, code, code_of, parse_report, report, report_in, stderr, stdout,
    top_level_overlays, verdicts,
};
pub use policy::{group_id, passwd_ids, root, rootless, shipped_policy_files, with_pwd};
pub use ports::{free_port, in_use, on_a_free_port};
pub use procs::{HANG, PidFds, all_gone, descendants, pid};
pub use residue::{Residue, kekkai_cgroups, launched, no_residue};
pub use scratch::{Scratch, unique};
pub use who::{Mode, Who, in_ci, need, skip, test_user, unavailable};
pub use world::{World, audit, output, run_as, run_as_with};
