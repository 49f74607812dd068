//! Who the program runs as, and the uid/gid maps of the user namespace.
//!
//! An unprivileged caller always gets a user namespace, with its own uid and gid mapped to the
//! policy's identity (one id each; setgroups is denied, as the kernel requires for an
//! unprivileged map writer). A root caller may skip the user namespace, and then the program
//! simply switches to the identity; with one, root may map ranges. Names resolve through the
//! `etc/passwd` and `etc/group` of the root's top layer that has them.
//!
//! Ordering in the launch: only the parent may write the maps (step 3); the child switches ids
//! after the mounts, together with dropping capabilities (step 8).

use std::path::PathBuf;

use super::Diags;
use crate::caller::Caller;
use crate::policy::KeyPath;
use crate::policy::model::{Id, Identity};

/// The ids the program runs with, inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityPlan {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// The user name, when known.
    pub user: Option<String>,
}

/// The user namespace's maps, as written to /proc/PID/{uid,gid}_map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserNsPlan {
    /// uid_map contents.
    pub uid_map: String,
    /// gid_map contents.
    pub gid_map: String,
    /// Write "deny" to setgroups first (required for unprivileged writers).
    pub deny_setgroups: bool,
    /// The setup process becomes uid/gid 0 inside after the maps are written.
    pub setup_as_root: bool,
}

/// A passwd or group entry: name, id, primary group (passwd only).
#[derive(Debug, Clone, PartialEq, Eq)]
struct DbEntry {
    name: String,
    id: u32,
    gid: Option<u32>,
}

fn read_db(layers: &[PathBuf], file: &str) -> Vec<DbEntry> {
    for layer in layers {
        let path = layer.join("etc").join(file);
        if let Ok(text) = std::fs::read_to_string(&path) {
            return parse_db(&text, file == "passwd");
        }
    }
    Vec::new()
}

fn parse_db(text: &str, passwd: bool) -> Vec<DbEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?.to_owned();
            let _password = f.next()?;
            let id = f.next()?.parse().ok()?;
            let gid = if passwd { f.next()?.parse().ok() } else { None };
            Some(DbEntry { name, id, gid })
        })
        .collect()
}

fn resolve<'a>(
    id: &Id,
    db: &'a [DbEntry],
    what: &str,
) -> Result<(u32, Option<&'a DbEntry>), String> {
    let t = id.0.trim();
    if let Ok(n) = t.parse::<u32>() {
        if n == u32::MAX {
            return Err(format!("{n} is not a valid {what} id"));
        }
        return Ok((n, db.iter().find(|e| e.id == n)));
    }
    // Something numeric that is not an id (-1, 1.5, 99999999999): no account has such a name
    // (they start with a letter or `_`), so don't look it up.
    if t.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+' || c == '.') {
        return Err(format!(
            "`{t}` is not a valid {what} id (a whole number from 0 to 4294967294)"
        ));
    }
    match db.iter().find(|e| e.name == t) {
        Some(e) => Ok((e.id, Some(e))),
        None => {
            let mut msg = format!(
                "no {what} named `{t}` in the root's etc/{}",
                if what == "user" { "passwd" } else { "group" }
            );
            if let Some(best) = super::suggest(t, db.iter().map(|e| e.name.as_str())) {
                msg.push_str(&format!(" (did you mean `{best}`?)"));
            }
            Err(msg)
        }
    }
}

/// Plans the identity and, when there is a user namespace, its maps.
pub fn plan(
    spec: Option<&Identity>,
    caller: &Caller,
    userns: bool,
    layers: &[PathBuf],
    diags: &mut Diags,
) -> (IdentityPlan, Option<UserNsPlan>) {
    let here = KeyPath::root().key("identity");
    let default = Identity::default();
    let spec = spec.unwrap_or(&default);
    let passwd = read_db(layers, "passwd");
    let group = read_db(layers, "group");
    let rootless = !caller.is_root();

    let (default_uid, default_gid) = if rootless {
        (caller.uid, caller.gid)
    } else {
        (0, 0)
    };
    let mut user = None;
    let mut user_gid = None;
    let uid = match &spec.uid {
        None => default_uid,
        Some(id) => match resolve(id, &passwd, "user") {
            Ok((n, entry)) => {
                user = entry.map(|e| e.name.clone());
                user_gid = entry.and_then(|e| e.gid);
                n
            }
            Err(e) => {
                diags.push(here.key("uid"), e);
                default_uid
            }
        },
    };
    let gid = match &spec.gid {
        None => user_gid.unwrap_or(default_gid),
        Some(id) => match resolve(id, &group, "group") {
            Ok((n, _)) => n,
            Err(e) => {
                diags.push(here.key("gid"), e);
                default_gid
            }
        },
    };
    let mut groups = Vec::new();
    for (i, g) in spec.groups.iter().flatten().enumerate() {
        match resolve(g, &group, "group") {
            Ok((n, _)) => groups.push(n),
            Err(e) => diags.push(here.key("groups").index(i), e),
        }
    }
    if rootless && !groups.is_empty() {
        diags.push(
            here.key("groups"),
            "supplementary groups need a root caller (an unprivileged user namespace has setgroups denied)",
        );
    }
    if rootless && spec.map.is_some() {
        diags.push(
            here.key("map"),
            "mapping a range of ids needs a root caller; an unprivileged caller maps only its own id",
        );
    }
    if !userns && spec.map.is_some() {
        diags.push(here.key("map"), "a map needs the `user` namespace");
    }
    let identity = IdentityPlan {
        uid,
        gid,
        groups,
        user,
    };
    if !userns {
        return (identity, None);
    }
    let ns = if rootless {
        UserNsPlan {
            uid_map: format!("{uid} {} 1\n", caller.euid),
            gid_map: format!("{gid} {} 1\n", caller.egid),
            deny_setgroups: true,
            setup_as_root: false,
        }
    } else if let Some(map) = &spec.map {
        let (inside, outside, count) = (map.inside.unwrap_or(0), map.outside, map.count);
        let (Some(outside), Some(count)) = (outside, count) else {
            diags.push(
                here.key("map"),
                "a map needs `outside` and `count` (and optionally `inside`, default 0)",
            );
            return (identity, None);
        };
        let end = u64::from(inside) + u64::from(count);
        let oend = u64::from(outside) + u64::from(count);
        if count == 0 || end > u64::from(u32::MAX) || oend > u64::from(u32::MAX) {
            diags.push(
                here.key("map").key("count"),
                "the range must be non-empty and fit in 32-bit ids",
            );
        }
        let covers = |id: u32| u64::from(id) >= u64::from(inside) && u64::from(id) < end;
        if !covers(uid) || !covers(gid) || identity.groups.iter().any(|g| !covers(*g)) {
            diags.push(
                here.key("map"),
                format!("the map {inside}..{end} does not cover the identity's ids"),
            );
        }
        if !covers(0) {
            diags.push(
                here.key("map").key("inside"),
                "the map must include id 0 inside (the setup runs as root inside)",
            );
        }
        let line = format!("{inside} {outside} {count}\n");
        UserNsPlan {
            uid_map: line.clone(),
            gid_map: line,
            deny_setgroups: false,
            setup_as_root: true,
        }
    } else {
        // Root caller, no range: the identity and root map to themselves.
        let lines = |ids: &[u32]| {
            let mut ids = ids.to_vec();
            ids.sort_unstable();
            ids.dedup();
            ids.iter()
                .map(|i| format!("{i} {i} 1\n"))
                .collect::<String>()
        };
        let mut gids = vec![0, gid];
        gids.extend(&identity.groups);
        UserNsPlan {
            uid_map: lines(&[0, uid]),
            gid_map: lines(&gids),
            deny_setgroups: false,
            setup_as_root: true,
        }
    };
    (identity, Some(ns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn root_caller() -> Caller {
        Caller::for_tests().as_root()
    }

    type Planned = (IdentityPlan, Option<UserNsPlan>);

    fn run(yaml: &str, caller: &Caller, userns: bool) -> Result<Planned, Vec<(String, String)>> {
        let spec: Identity = serde_yaml::from_str(yaml).unwrap();
        let mut diags = Diags::default();
        let out = plan(
            Some(&spec),
            caller,
            userns,
            &[PathBuf::from("/")],
            &mut diags,
        );
        if diags.is_empty() {
            Ok(out)
        } else {
            Err(diags.into_pairs())
        }
    }

    #[test]
    fn rootless_maps_the_caller_to_the_identity() {
        let (id, ns) = run("{uid: 0, gid: 0}", &Caller::for_tests(), true).unwrap();
        assert_eq!((id.uid, id.gid), (0, 0));
        let ns = ns.unwrap();
        assert_eq!(ns.uid_map, "0 1000 1\n");
        assert_eq!(ns.gid_map, "0 1000 1\n");
        assert!(ns.deny_setgroups);
    }

    #[test]
    fn rootless_default_identity_is_the_caller() {
        let (id, _) = run("{}", &Caller::for_tests(), true).unwrap();
        assert_eq!((id.uid, id.gid), (1000, 1000));
    }

    #[test]
    fn root_names_resolve_through_passwd() {
        let (id, ns) = run("{uid: root}", &root_caller(), false).unwrap();
        assert_eq!((id.uid, id.gid, id.user.as_deref()), (0, 0, Some("root")));
        assert!(ns.is_none());
    }

    #[test]
    fn root_with_userns_maps_identity_and_root() {
        let (_, ns) = run("{uid: 65534, gid: 65534}", &root_caller(), true).unwrap();
        let ns = ns.unwrap();
        assert_eq!(ns.uid_map, "0 0 1\n65534 65534 1\n");
        assert!(ns.setup_as_root && !ns.deny_setgroups);
    }

    #[test]
    fn root_may_map_a_range() {
        let (_, ns) = run(
            "{uid: 1000, map: {inside: 0, outside: 100000, count: 65536}}",
            &root_caller(),
            true,
        )
        .unwrap();
        assert_eq!(ns.unwrap().uid_map, "0 100000 65536\n");
    }

    #[rstest]
    #[case("{uid: -1}", false, true, "identity.uid", "is not a valid user id")]
    #[case("{gid: 1.5}", false, true, "identity.gid", "is not a valid group id")]
    #[case(
        "{uid: 4294967296}",
        false,
        true,
        "identity.uid",
        "is not a valid user id"
    )]
    #[case(
        "{uid: no-such-user-here}",
        false,
        true,
        "identity.uid",
        "no user named"
    )]
    #[case(
        "{gid: no-such-group-here}",
        false,
        true,
        "identity.gid",
        "no group named"
    )]
    #[case("{uid: 4294967295}", false, true, "identity.uid", "not a valid")]
    #[case("{groups: [0]}", true, true, "identity.groups", "root caller")]
    #[case(
        "{map: {outside: 1, count: 2}}",
        true,
        true,
        "identity.map",
        "root caller"
    )]
    #[case(
        "{map: {outside: 100000, count: 10}}",
        false,
        false,
        "identity.map",
        "needs the `user` namespace"
    )]
    #[case(
        "{uid: 5000, map: {outside: 100000, count: 10}}",
        false,
        true,
        "identity.map",
        "does not cover"
    )]
    #[case(
        "{map: {inside: 1, outside: 100000, count: 10}, uid: 2, gid: 2}",
        false,
        true,
        "identity.map.inside",
        "id 0"
    )]
    #[case(
        "{map: {outside: 100000}}",
        false,
        true,
        "identity.map",
        "needs `outside` and `count`"
    )]
    fn rejects(
        #[case] yaml: &str,
        #[case] rootless: bool,
        #[case] userns: bool,
        #[case] path: &str,
        #[case] contains: &str,
    ) {
        let caller = if rootless {
            Caller::for_tests()
        } else {
            root_caller()
        };
        let errs = run(yaml, &caller, userns).unwrap_err();
        assert!(
            errs.iter().any(|(p, m)| p == path && m.contains(contains)),
            "{errs:?}"
        );
    }
}
