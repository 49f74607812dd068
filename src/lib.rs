//! kekkai (結界, "protective barrier"): a policy-driven secure sandbox launcher for Linux.
//!
//! Data flows one way: YAML → [`policy::LoadedPolicy`] (merged, every value traceable to its
//! file, line and column) → [`plan::Plan`] (pure, complete, no syscalls) → launch. Everything a
//! policy can get wrong fails in [`plan::compile`], before any process exists.

pub mod audit;
pub mod caller;
pub mod error;
pub mod exit;
pub mod explain;
pub mod export;
pub mod hostfs;
pub mod launch;
pub mod log;
pub mod man;
pub mod plan;
pub mod policy;
pub mod schema;
pub mod state;
pub mod sys;
