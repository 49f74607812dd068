//! Policies shipped inside the binary. `default` is used when `run` is given no policy.

/// Name and text of every shipped policy, and the text's fingerprint (worked out when kekkai is
/// built).
const SHIPPED: &[(&str, &str, u64)] = &[
    shipped("default", include_str!("../../policies/default.yaml")),
    shipped("untrusted", include_str!("../../policies/untrusted.yaml")),
    shipped("build", include_str!("../../policies/build.yaml")),
    shipped("service", include_str!("../../policies/service.yaml")),
    shipped("python", include_str!("../../policies/python.yaml")),
    shipped("node", include_str!("../../policies/node.yaml")),
    shipped(
        "network-client",
        include_str!("../../policies/network-client.yaml"),
    ),
];

const fn shipped(name: &'static str, text: &'static str) -> (&'static str, &'static str, u64) {
    (name, text, fingerprint(text))
}

/// FNV-1a 64 of a text: what tells the scan written down for a shipped policy
/// (`yaml::prebuilt`) from one of an edited text.
pub const fn fingerprint(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        // Widening a byte; `u64::from` is not callable in a `const fn`.
        #[allow(clippy::cast_lossless)]
        let b = bytes[i] as u64;
        h = (h ^ b).wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

/// The shipped policy's canonical name, if there is one called `name`.
pub fn find(name: &str) -> Option<&'static str> {
    SHIPPED.iter().find(|(n, ..)| *n == name).map(|(n, ..)| *n)
}

/// The text of a shipped policy.
pub fn text(name: &str) -> Option<&'static str> {
    SHIPPED
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, t, _)| *t)
}

/// The shipped policy whose text is exactly `bytes`: its name, text and fingerprint.
fn with_bytes(bytes: &[u8]) -> Option<&'static (&'static str, &'static str, u64)> {
    SHIPPED.iter().find(|(_, t, _)| t.as_bytes() == bytes)
}

/// The shipped policy whose text is exactly `text`: its name and its text's fingerprint.
pub fn with_text(text: &str) -> Option<(&'static str, u64)> {
    with_bytes(text.as_bytes()).map(|(n, _, f)| (*n, *f))
}

/// The shipped policy's text that is exactly `bytes`, if there is one.
pub fn text_of(bytes: &[u8]) -> Option<&'static str> {
    with_bytes(bytes).map(|(_, t, _)| *t)
}

/// The names of all shipped policies.
pub fn names() -> impl Iterator<Item = &'static str> {
    SHIPPED.iter().map(|(n, ..)| *n)
}

#[cfg(test)]
mod tests {
    /// The fingerprint worked out when kekkai is built is the one of the text.
    #[test]
    fn fingerprints_are_the_texts() {
        let fnv = |t: &str| {
            t.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            })
        };
        for name in super::names() {
            let text = super::text(name).unwrap();
            assert_eq!(super::with_text(text).unwrap(), (name, fnv(text)), "{name}");
        }
        assert_eq!(super::fingerprint(""), 0xcbf2_9ce4_8422_2325);
        // The loader takes a shipped text as it is: what the checks of every file would give.
        for name in super::names() {
            let text = super::text(name).unwrap();
            assert_eq!(super::text_of(text.as_bytes()), Some(text), "{name}");
            assert_eq!(
                crate::policy::yaml::check_bytes(text.as_bytes()),
                Ok(text),
                "{name}"
            );
        }
        assert_eq!(super::text_of(b"version: 1\n"), None);
        assert_eq!(super::with_text("version: 1\n"), None);
    }
}
