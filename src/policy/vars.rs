//! Variables in policy strings: `${PWD}`, `${HOME}`, `${UID}`, `${GID}`, `${env:NAME}` and
//! `${env:NAME:-default}`. `$$` is a literal `$`. An unknown variable, or an environment
//! variable that is unset and has no default, is an error. Values are inserted literally: a
//! value that itself contains `${...}` is not expanded again, so expansion always ends.

use serde_yaml::Value;

use super::path::KeyPath;
use crate::caller::Caller;

/// Expands the variables in one string.
pub fn expand(s: &str, caller: &Caller) -> Result<String, String> {
    expand_noting(s, caller, &mut false)
}

/// [`expand`], setting `used_pwd` when `${PWD}` was expanded.
fn expand_noting(s: &str, caller: &Caller, used_pwd: &mut bool) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(rest.get(..i).unwrap_or_default());
        let after = rest.get(i + 1..).unwrap_or_default();
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                return Err(format!("unterminated `${{` in {s:?}"));
            };
            let name = body.get(..end).unwrap_or_default();
            if name.contains("${") {
                return Err(format!(
                    "`${{{name}}}…`: a variable inside another (as a default) is not supported; \
                     write the default literally"
                ));
            }
            *used_pwd |= name == "PWD";
            out.push_str(&lookup(name, caller)?);
            rest = body.get(end + 1..).unwrap_or_default();
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup(name: &str, caller: &Caller) -> Result<String, String> {
    match name {
        "PWD" => Ok(caller.pwd.to_string_lossy().into_owned()),
        "HOME" => Ok(caller.home.to_string_lossy().into_owned()),
        "UID" => Ok(caller.uid.to_string()),
        "GID" => Ok(caller.gid.to_string()),
        _ => {
            let Some(spec) = name.strip_prefix("env:") else {
                return Err(format!(
                    "unknown variable `${{{name}}}`; known: ${{PWD}}, ${{HOME}}, ${{UID}}, ${{GID}}, ${{env:NAME}}"
                ));
            };
            let (var, default) = match spec.split_once(":-") {
                Some((v, d)) => (v, Some(d)),
                None => (spec, None),
            };
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`${{{name}}}`: `{var}` is not an environment variable name"
                ));
            }
            match (caller.env_var(var), default) {
                (Some(v), _) => Ok(v.to_owned()),
                (None, Some(d)) => Ok(d.to_owned()),
                (None, None) => Err(format!(
                    "`${{{name}}}`: environment variable {var} is not set (give a default with `${{env:{var}:-...}}`)"
                )),
            }
        }
    }
}

/// Expands variables in every string of a document, except under the keys in `skip`
/// (prose such as `description`). Mapping keys are never expanded. The paths of the values
/// that used `${PWD}` are added to `pwd`: where kekkai is started decides them.
pub fn expand_tree(
    value: &mut Value,
    path: &KeyPath,
    caller: &Caller,
    skip: &[&str],
    pwd: &mut Vec<KeyPath>,
) -> Result<(), (KeyPath, String)> {
    let top = At::Top(path);
    expand_at(value, &top, caller, skip, pwd)
}

/// Where the walk of [`expand_tree`] is: a chain of steps on the stack, turned into a
/// [`KeyPath`] only for a value that holds a `$` (most hold none).
enum At<'a> {
    Top(&'a KeyPath),
    Key(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl At<'_> {
    fn is_root(&self) -> bool {
        matches!(self, At::Top(p) if p.is_root())
    }

    fn path(&self) -> KeyPath {
        match self {
            At::Top(p) => (*p).clone(),
            At::Key(up, k) => up.path().key(k),
            At::Index(up, i) => up.path().index(*i),
        }
    }
}

fn expand_at(
    value: &mut Value,
    at: &At<'_>,
    caller: &Caller,
    skip: &[&str],
    pwd: &mut Vec<KeyPath>,
) -> Result<(), (KeyPath, String)> {
    match value {
        Value::String(s) if s.contains('$') => {
            let mut used_pwd = false;
            *s = expand_noting(s, caller, &mut used_pwd).map_err(|m| (at.path(), m))?;
            if used_pwd {
                pwd.push(at.path());
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_at(item, &At::Index(at, i), caller, skip, pwd)?;
            }
        }
        Value::Mapping(map) => {
            let root = at.is_root();
            for (k, v) in map.iter_mut() {
                let key = k.as_str().unwrap_or_default();
                if root && skip.contains(&key) {
                    continue;
                }
                expand_at(v, &At::Key(at, key), caller, skip, pwd)?;
            }
        }
        Value::Tagged(t) => expand_at(&mut t.value, at, caller, skip, pwd)?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn caller() -> Caller {
        let mut c = Caller::for_tests();
        c.env.push(("LANG".into(), "C.UTF-8".into()));
        c.env.push(("TRICKY".into(), "${HOME}".into()));
        c
    }

    #[rstest]
    #[case("${PWD}/data", "/work/project/data")]
    #[case("${HOME}", "/home/alice")]
    #[case("uid=${UID} gid=${GID}", "uid=1000 gid=1000")]
    #[case("${env:LANG}", "C.UTF-8")]
    #[case("${env:NOPE:-fallback}", "fallback")]
    #[case("${env:LANG:-fallback}", "C.UTF-8")]
    #[case("$$HOME", "$HOME")]
    #[case("a$b", "a$b")]
    #[case("cost: 5$", "cost: 5$")]
    // A value is inserted literally, never expanded again.
    #[case("${env:TRICKY}", "${HOME}")]
    fn expands(#[case] input: &str, #[case] want: &str) {
        assert_eq!(expand(input, &caller()).unwrap(), want);
    }

    #[rstest]
    #[case("${FOO}", "unknown variable `${FOO}`")]
    #[case("${env:NOPE}", "environment variable NOPE is not set")]
    #[case("${env:}", "is not an environment variable name")]
    #[case("${env:A-B}", "is not an environment variable name")]
    #[case("${PWD", "unterminated")]
    #[case("${env:A:-${env:B}}", "a variable inside another")]
    fn rejects(#[case] input: &str, #[case] contains: &str) {
        let err = expand(input, &caller()).unwrap_err();
        assert!(err.contains(contains), "{err}");
    }

    #[test]
    fn tree_reports_the_path_and_skips_prose() {
        let mut v: Value =
            serde_yaml::from_str("description: costs ${X}\nmounts:\n  - bind: ${NOPE}\n").unwrap();
        let (path, msg) = expand_tree(
            &mut v,
            &KeyPath::root(),
            &caller(),
            &["description"],
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(path.to_string(), "mounts[0].bind");
        assert!(msg.contains("NOPE"));
    }

    #[test]
    fn tree_notes_the_values_that_use_the_working_directory() {
        let mut v: Value = serde_yaml::from_str(
            "cwd: ${PWD}\nmounts:\n  - bind: ${HOME}/x\n  - { bind: \"${PWD}/data\", to: /data }\n  - bind: $${PWD}\n",
        )
        .unwrap();
        let mut pwd = Vec::new();
        expand_tree(&mut v, &KeyPath::root(), &caller(), &[], &mut pwd).unwrap();
        let shown: Vec<String> = pwd.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown, ["cwd", "mounts[1].bind"]);
    }
}
