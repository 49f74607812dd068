//! A planned value with the policy key that asked for it.
//!
//! The plan is the only layer that knows the policy's keys: launch and export act on plan
//! items, and when the kernel refuses one, the error names the item's key (`identity.uid`,
//! `limits.memory`) as the plan carried it, never a key spelled again by the launch.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::policy::KeyPath;

/// A value of the plan and its key path in the merged policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyed<T> {
    /// The value.
    pub value: T,
    /// The key that asked for it (`hostname`, `rlimits.nofile`).
    pub key: KeyPath,
}

impl<T> Keyed<T> {
    /// `value`, asked for at `key`.
    pub fn new(value: T, key: KeyPath) -> Self {
        Keyed { value, key }
    }
}

/// Reads go to the value; the key is read where an error is made.
impl<T> Deref for Keyed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Display> fmt::Display for Keyed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}
