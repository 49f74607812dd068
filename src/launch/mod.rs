//! Executing a plan. The supervisor (`parent/`) creates the sandbox and waits for it; the
//! sandbox's first process runs the ordered steps (`child.rs`, a line per step, the order that
//! `plan::steps::ORDER` explains) and starts the program (`exec.rs`); one module per mechanism
//! (`cgroup/`, `rootfs`, `environment`, `caps`, `landlock`, `lockdown`, `terminal`, `notify`,
//! `network`).
//! Nothing here decides policy; it carries out the plan.
//!
//! Imports go one way: `error.rs` (a failed step), `options.rs` (what a launch is asked beyond
//! the plan: tracing, debug faults, the program's stdio) and `report.rs` (what a run did, as
//! data) at the bottom, the channel (`sync.rs`) on them, the program's start (`exec.rs`) on
//! the channel, the sandbox's steps (`child.rs`) and the supervisor (`parent/`) on top; this
//! file only declares and re-exports. Exit codes come from `crate::exit`, never from the
//! command line's error type.

pub mod caps;
pub mod cgroup;
pub mod child;
pub mod enter;
pub mod environment;
pub mod error;
pub mod exec;
pub mod landlock;
pub mod lockdown;
pub mod network;
pub mod notify;
pub mod observe;
pub mod options;
pub mod parent;
pub mod report;
pub mod rootfs;
pub mod sync;
pub mod terminal;

pub use error::StepError;
pub use options::{Fault, Options, Watch};
pub use parent::run;
pub use report::{Ended, Outcome};
