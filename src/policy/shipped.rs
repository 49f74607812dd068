//! Policies shipped inside the binary. `default` is used when `run` is given no policy.

/// Name and text of every shipped policy.
const SHIPPED: &[(&str, &str)] = &[
    ("default", include_str!("../../policies/default.yaml")),
    ("untrusted", include_str!("../../policies/untrusted.yaml")),
    ("build", include_str!("../../policies/build.yaml")),
    ("service", include_str!("../../policies/service.yaml")),
    ("python", include_str!("../../policies/python.yaml")),
    ("node", include_str!("../../policies/node.yaml")),
];

/// The shipped policy's canonical name, if there is one called `name`.
pub fn find(name: &str) -> Option<&'static str> {
    SHIPPED.iter().find(|(n, _)| *n == name).map(|(n, _)| *n)
}

/// The text of a shipped policy.
pub fn text(name: &str) -> Option<&'static str> {
    SHIPPED.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The names of all shipped policies.
pub fn names() -> impl Iterator<Item = &'static str> {
    SHIPPED.iter().map(|(n, _)| *n)
}
