//! "Did you mean" for unknown keys, values and names.

/// Edit distance between two strings: insertions, deletions, substitutions and swaps of
/// neighbouring characters each count one (optimal string alignment).
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    let at = |i: usize, j: usize| i * w + j;
    for i in 0..=a.len() {
        if let Some(c) = d.get_mut(at(i, 0)) {
            *c = i;
        }
    }
    for j in 0..=b.len() {
        if let Some(c) = d.get_mut(at(0, j)) {
            *c = j;
        }
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let get = |i, j| d.get(at(i, j)).copied().unwrap_or(usize::MAX / 2);
            let cost = usize::from(a.get(i - 1) != b.get(j - 1));
            let mut v = (get(i - 1, j) + 1)
                .min(get(i, j - 1) + 1)
                .min(get(i - 1, j - 1) + cost);
            if i > 1 && j > 1 && a.get(i - 1) == b.get(j - 2) && a.get(i - 2) == b.get(j - 1) {
                v = v.min(get(i - 2, j - 2) + 1);
            }
            if let Some(c) = d.get_mut(at(i, j)) {
                *c = v;
            }
        }
    }
    d.get(at(a.len(), b.len())).copied().unwrap_or(0)
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
pub fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (distance(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Adds a suggestion to serde's "unknown field `x`, expected one of `a`, `b`" and
/// "unknown variant `x`, expected ..." messages, and words them for policy authors.
pub fn annotate_unknown(message: &str) -> String {
    let kind = if message.starts_with("unknown field") {
        "key"
    } else if message.starts_with("unknown variant") {
        "value"
    } else {
        return message.to_owned();
    };
    let words: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let Some((word, expected)) = words.split_first() else {
        return message.to_owned();
    };
    let mut out = format!("unknown {kind} `{word}`");
    if let Some(best) = closest(word, expected.iter().copied()) {
        out.push_str(&format!(" (did you mean `{best}`?)"));
    }
    if let Some((_, rest)) = message.split_once(", ") {
        out.push_str("; ");
        out.push_str(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("", "", 0)]
    #[case("kitten", "sitting", 3)]
    #[case("mount", "mounts", 1)]
    #[case("abc", "", 3)]
    #[case("opne", "open", 1)]
    fn distances(#[case] a: &str, #[case] b: &str, #[case] d: usize) {
        assert_eq!(distance(a, b), d);
    }

    #[rstest]
    #[case("tox", &["bind", "to", "writable"], Some("to"))]
    #[case("mountz", &["mounts", "limits"], Some("mounts"))]
    #[case("zzzzzz", &["mounts", "limits"], None)]
    #[case("NET", &["net", "ipc"], Some("net"))]
    fn closest_cases(#[case] w: &str, #[case] c: &[&str], #[case] want: Option<&str>) {
        assert_eq!(closest(w, c.iter().copied()), want);
    }

    #[rstest]
    #[case(
        "unknown field `mountz`, expected one of `version`, `mounts`",
        "unknown key `mountz` (did you mean `mounts`?); expected one of `version`, `mounts`"
    )]
    #[case(
        "unknown variant `nett`, expected `net` or `ipc`",
        "unknown value `nett` (did you mean `net`?); expected `net` or `ipc`"
    )]
    #[case("invalid type: string", "invalid type: string")]
    fn annotate(#[case] input: &str, #[case] want: &str) {
        assert_eq!(annotate_unknown(input), want);
    }
}
