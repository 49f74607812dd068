//! The host side of the boundary (issue 13): what kekkai reads and writes outside the sandbox
//! on the caller's behalf, what a sandboxed program can leave or reach on the host, and whether
//! a policy's promises hold on this host. Real launches as root and as the unprivileged test
//! user; each part keeps its cases in its own module.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

/// Policy files are read through one descriptor; `--report` and layer entries never follow a
/// planted link (finding 1).
#[path = "host_side/lookup.rs"]
mod lookup;

/// No privilege leaves the sandbox: setuid/setgid/device files, host root, root secrets
/// (finding 2).
#[path = "host_side/privileges.rs"]
mod privileges;

/// A promise is kept or refused, `service`'s network, no launcher data inside (findings 3, 4
/// and 6).
#[path = "host_side/promises.rs"]
mod promises;
