//! The environment: the variables kekkai gives the program (set at launch step 13, execve) as
//! Environment=, PassEnvironment= and UnsetEnvironment=. Values from the exporting caller's
//! environment are never written.

use std::collections::BTreeSet;

use super::directive::{Directive, Unit, Value, env_word};
use crate::plan::Plan;

/// Variables of systemd's own protocols: systemd sets them for the unit itself.
const SYSTEMD_PROTOCOL_VARS: &[&str] = &[
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "LISTEN_PID",
    "NOTIFY_SOCKET",
    "WATCHDOG_PID",
    "WATCHDOG_USEC",
    "JOURNAL_STREAM",
    "INVOCATION_ID",
];

/// Login variables systemd adds for `User=`, which kekkai passes only when the policy does.
const LOGIN_VARS: &[&str] = &["HOME", "LOGNAME", "SHELL", "USER"];

pub(super) fn write(plan: &Plan, o: &mut Unit) {
    o.heading("environment");
    o.note(
        "kekkai gives the program exactly these variables; systemd starts from its own \
         environment (PATH, LANG, and with User= also HOME, USER, LOGNAME, SHELL) and adds \
         them: it can't clear the rest. Kept variables pass from the service manager's \
         environment (PassEnvironment=), not from the exporting caller's.",
    );
    let env = &plan.env;
    if !env.clear {
        o.note(
            "env.clear is false: kekkai passes the caller's whole environment. A unit has no \
             caller; only the variables below are set.",
        );
    }
    let mut have: BTreeSet<&str> = BTreeSet::new();
    for (k, v) in &env.vars {
        if !env.from_policy.contains(k) {
            // A value from the caller's environment: never written into a file.
            continue;
        }
        let (Some(k), Some(v)) = (k.to_str(), v.to_str()) else {
            o.note(format!(
                "{}: not UTF-8, can't be written in a unit file: kekkai only.",
                k.to_string_lossy()
            ));
            continue;
        };
        have.insert(k);
        if SYSTEMD_PROTOCOL_VARS.contains(&k) {
            o.note(format!("{k}: systemd sets it for the unit itself."));
            continue;
        }
        match env_word(k, v) {
            Some(w) => o.set(Directive::Environment, Value::Text(w)),
            None => o.note(format!(
                "{k}: systemd rejects this name or value (control characters): kekkai only."
            )),
        }
    }
    let pass: Vec<&str> = env
        .keep
        .iter()
        .map(String::as_str)
        .filter(|k| !SYSTEMD_PROTOCOL_VARS.contains(k) && !have.contains(k))
        .collect();
    if !pass.is_empty() {
        let words = pass.iter().map(|k| (*k).to_owned()).collect();
        o.set(Directive::PassEnvironment, Value::Words(words));
    }
    have.extend(pass);
    let unset: Vec<String> = LOGIN_VARS
        .iter()
        .filter(|v| !have.contains(*v))
        .map(|v| (*v).to_owned())
        .collect();
    if !unset.is_empty() {
        o.set(Directive::UnsetEnvironment, Value::Words(unset));
    }
}
