//! What compile found wrong: each error at the policy key that caused it (or the caller's
//! environment variable), all of them collected in one pass and placed in the files that wrote
//! them only at the end. A leaf of the plan: every planner records into [`Diags`].

use crate::policy::{Diagnostic, Diagnostics, KeyPath, LoadedPolicy};

/// An error found while compiling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The policy's: at a key path of the merged policy, placed in the file that wrote it
    /// when reported.
    Policy {
        /// Where.
        key: KeyPath,
        /// What is wrong.
        message: String,
    },
    /// The caller's environment's, not the policy's (`NOTIFY_SOCKET`): named by the variable.
    Environment {
        /// The variable.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// The errors compile found, in the order found.
#[derive(Debug, Default)]
pub struct Diags(Vec<PlanError>);

impl Diags {
    /// Records an error at a key path.
    pub fn push(&mut self, key: KeyPath, message: impl Into<String>) {
        self.0.push(PlanError::Policy {
            key,
            message: message.into(),
        });
    }

    /// Records an error about the caller's environment variable `name`.
    pub fn push_env(&mut self, name: &str, message: impl Into<String>) {
        self.0.push(PlanError::Environment {
            name: name.into(),
            message: message.into(),
        });
    }

    /// No errors?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The policy's errors as (path, message) strings, for tests.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
            .into_iter()
            .filter_map(|e| match e {
                PlanError::Policy { key, message } => Some((key.to_string(), message)),
                PlanError::Environment { .. } => None,
            })
            .collect()
    }

    /// The errors as diagnostics: the policy's first, each placed in the file that wrote its
    /// key, then the environment's.
    pub(crate) fn into_diagnostics(self, loaded: &LoadedPolicy) -> Diagnostics {
        let (policy, env): (Vec<PlanError>, Vec<PlanError>) = self
            .0
            .into_iter()
            .partition(|e| matches!(e, PlanError::Policy { .. }));
        Diagnostics(
            policy
                .into_iter()
                .chain(env)
                .map(|e| match e {
                    PlanError::Policy { key, message } => loaded.diag(&key, message),
                    PlanError::Environment { name, message } => Diagnostic {
                        file: "environment".into(),
                        pos: None,
                        path: name,
                        message,
                    },
                })
                .collect(),
        )
    }
}

/// "Did you mean" for compile errors.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    crate::policy::suggest::closest(word, candidates)
}
