//! kekkai (結界, "protective barrier"): a policy-driven secure sandbox launcher for Linux.
//!
//! Data flows one way: YAML → [`policy::LoadedPolicy`] (merged, every value traceable to its
//! file, line and column) → [`plan::Plan`] (pure, complete, no syscalls) → launch. Everything a
//! policy can get wrong fails in [`plan::compile`], before any process exists.
//!
//! Each module names only the layers below its own (README, "Layout"; `tests/layers.rs`):
//! the ground ([`sys`], [`caller`], [`hostfs`], [`exit`], [`log`], [`man`]), then [`policy`]
//! and [`image`], then [`plan`] and [`schema`], then [`launch`] and [`export`], then
//! [`explain`], [`audit`], [`learn`] and [`error`]; the command line (the `kekkai` binary) is
//! on top.

pub mod audit;
pub mod caller;
pub mod error;
pub mod exit;
pub mod explain;
pub mod export;
pub mod hostfs;
pub mod image;
pub mod launch;
pub mod learn;
pub mod log;
pub mod man;
pub mod plan;
pub mod policy;
pub mod schema;
pub mod state;
pub mod sys;
