//! `host-privileges`: nothing the program does leaves a privilege on the host.
//!
//! What a sandboxed program writes to a writable mount outlives it, and `nosuid` only applies
//! inside the sandbox: a setuid file it leaves in a bound directory runs with its owner's ids for
//! anyone on the host. And the program's ids on the host decide what the host's permission
//! checks let it read. So, unless a policy says `host-privileges: allow`:
//!
//! - the program never runs with host uid 0, host gid 0 or host group 0 (checked here, on the
//!   ids the identity has *on the host*, through the user namespace's maps): root-owned 0600 and
//!   0640 files such as `/etc/shadow` stay unreadable, and nothing it makes belongs to root;
//! - it keeps no capability that reaches past those ids to host files or ids (checked here):
//!   CAP_SETFCAP (file capabilities), CAP_MKNOD (device nodes), CAP_FSETID, CAP_CHOWN,
//!   CAP_FOWNER, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_SETUID, CAP_SETGID;
//! - seccomp refuses a mode with the setuid or setgid bit and a device node, whatever the preset
//!   (`seccomp/rules.rs`, data in `seccomp::presets::MODE_RULES`).
//!
//! Ordering: all of it is decided while compiling; the launch applies the ids in step 8 and the
//! filters in step 12, like any other identity and seccomp rule.

use super::Diags;
use super::identity::IdentityPlan;
use super::names;
use crate::policy::KeyPath;
use crate::policy::model::Identity;

/// Capabilities that reach host files or ids beyond the program's own, and what each does.
pub const HOST_CAPABILITIES: &[(&str, &str)] = &[
    ("chown", "gives files to any user, root included"),
    (
        "dac_override",
        "reads and writes files whatever their permissions",
    ),
    ("dac_read_search", "reads files whatever their permissions"),
    (
        "fowner",
        "changes the mode and times of files it does not own",
    ),
    (
        "fsetid",
        "keeps the setuid and setgid bits of files it writes to",
    ),
    ("setuid", "switches to any mapped user id, root included"),
    ("setgid", "switches to any mapped group id, root included"),
    ("setfcap", "gives files capabilities"),
    ("mknod", "makes device nodes"),
];

/// What follows every refusal: the ways out.
const WAYS_OUT: &str = "or say `host-privileges: allow` if the program must have it";

/// Checks the identity's host ids and the kept capabilities against the rule (only called for
/// `host-privileges: deny`).
pub fn check(spec: Option<&Identity>, identity: &IdentityPlan, keep: &[String], diags: &mut Diags) {
    let here = KeyPath::root().key("identity");
    let host = &identity.host;
    if let Some(path) = &identity.owner_of {
        if host.uid == 0 || host.gid == 0 {
            let what = if host.uid == 0 {
                "owned by"
            } else {
                "its owner's group is"
            };
            diags.push(
                here.key("owner-of"),
                format!(
                    "{} is {what} root, so the program would run as host root; run kekkai from \
                     a directory that belongs to the user the program should run as (or chown \
                     it to one), give `identity: {{ uid: NAME }}` instead, {WAYS_OUT}",
                    path.display()
                ),
            );
        }
    } else {
        let given = |key: &str| {
            spec.is_some_and(|s| match key {
                "uid" => s.uid.is_some(),
                "gid" => s.gid.is_some(),
                _ => s.map.is_some(),
            })
        };
        let mapped = given("map");
        if host.uid == 0 {
            let (key, how) = if mapped {
                (
                    "map",
                    format!("the map puts uid {} at host uid 0", identity.uid),
                )
            } else {
                ("uid", "uid 0 is host root here".to_owned())
            };
            diags.push(
                here.key(key),
                format!(
                    "{how}: the program could read root's files and leave root-owned files on \
                     writable mounts; run it as another user (`owner-of: \"${{PWD}}\"` runs it \
                     as the directory's owner, a range `map` keeps root inside off host root), \
                     {WAYS_OUT}"
                ),
            );
        }
        if host.gid == 0 && host.uid != 0 {
            let key = if mapped {
                "map"
            } else if given("gid") {
                "gid"
            } else {
                "uid"
            };
            diags.push(
                here.key(key),
                format!(
                    "the program's group would be host gid 0 (root), which reads root's \
                     group-readable files; give another `gid`, {WAYS_OUT}"
                ),
            );
        }
    }
    for (i, g) in host.groups.iter().enumerate() {
        if *g == 0 {
            diags.push(
                here.key("groups").index(i),
                format!(
                    "host group 0 (root) reads root's group-readable files; leave it out, \
                     {WAYS_OUT}"
                ),
            );
        }
    }
    for (i, name) in keep.iter().enumerate() {
        let Some(n) = names::capability(name) else {
            continue;
        };
        let canonical = names::capability_name(n);
        if let Some((_, what)) = HOST_CAPABILITIES.iter().find(|(c, _)| *c == canonical) {
            diags.push(
                KeyPath::root().key("capabilities").key("keep").index(i),
                format!(
                    "`{canonical}` {what}, which leaves the sandbox through the host's files; \
                     keep it only with `host-privileges: allow`"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::identity::HostIds;
    use crate::plan::keyed::Keyed;
    use rstest::rstest;

    fn identity(uid: u32, gid: u32, groups: &[u32]) -> IdentityPlan {
        let key = KeyPath::root().key("identity");
        IdentityPlan {
            uid: Keyed::new(uid, key.key("uid")),
            gid: Keyed::new(gid, key.key("gid")),
            groups: Keyed::new(groups.to_vec(), key.key("groups")),
            user: None,
            owner_of: None,
            host: HostIds {
                uid,
                gid,
                groups: groups.to_vec(),
            },
        }
    }

    fn errors(spec: &str, id: &IdentityPlan, keep: &[&str]) -> Vec<(String, String)> {
        let spec: Identity = serde_yaml::from_str(spec).unwrap();
        let keep: Vec<String> = keep.iter().map(|s| (*s).to_owned()).collect();
        let mut d = Diags::default();
        check(Some(&spec), id, &keep, &mut d);
        d.into_pairs()
    }

    #[rstest]
    #[case::nobody("{}", identity(65534, 65534, &[]), &[], &[])]
    #[case::a_user("{uid: 1000}", identity(1000, 1000, &[100]), &["net_bind_service"], &[])]
    #[case::root("{uid: 0, gid: 0}", identity(0, 0, &[]), &[], &["identity.uid"])]
    #[case::root_group("{uid: 1000, gid: 0}", identity(1000, 0, &[]), &[], &["identity.gid"])]
    #[case::root_primary_group("{uid: 1000}", identity(1000, 0, &[]), &[], &["identity.uid"])]
    #[case::root_supplementary("{uid: 1000}", identity(1000, 1000, &[4, 0]), &[], &["identity.groups[1]"])]
    #[case::setfcap("{}", identity(65534, 65534, &[]), &["net_raw", "CAP_SETFCAP"], &["capabilities.keep[1]"])]
    #[case::mknod("{}", identity(65534, 65534, &[]), &["mknod"], &["capabilities.keep[0]"])]
    #[case::dac("{}", identity(65534, 65534, &[]), &["dac_read_search", "dac_override"], &["capabilities.keep[0]", "capabilities.keep[1]"])]
    #[case::ids("{}", identity(65534, 65534, &[]), &["setuid", "setgid", "chown", "fowner", "fsetid"], &["capabilities.keep[0]", "capabilities.keep[1]", "capabilities.keep[2]", "capabilities.keep[3]", "capabilities.keep[4]"])]
    fn the_rule(
        #[case] spec: &str,
        #[case] id: IdentityPlan,
        #[case] keep: &[&str],
        #[case] want: &[&str],
    ) {
        let got: Vec<String> = errors(spec, &id, keep)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_map_onto_host_root_is_named() {
        let mut id = identity(0, 0, &[]);
        id.host = HostIds {
            uid: 0,
            gid: 0,
            groups: vec![],
        };
        let errs = errors("{uid: 0, map: {outside: 0, count: 10}}", &id, &[]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, "identity.map");
        assert!(errs[0].1.contains("host-privileges: allow"), "{errs:?}");
    }

    #[test]
    fn owner_of_a_root_directory_says_what_to_do() {
        let mut id = identity(0, 0, &[]);
        id.owner_of = Some("/root/project".into());
        let errs = errors("{owner-of: /root/project}", &id, &[]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, "identity.owner-of");
        let msg = &errs[0].1;
        assert!(msg.starts_with("/root/project is owned by root"), "{msg}");
        assert!(msg.contains("host-privileges: allow"), "{msg}");
    }
}
