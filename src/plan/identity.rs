//! Who the program runs as, and the uid/gid maps of the user namespace.
//!
//! An unprivileged caller always gets a user namespace, with its own uid and gid mapped to the
//! policy's identity (one id each; setgroups is denied, as the kernel requires for an
//! unprivileged map writer). A root caller may skip the user namespace, and then the program
//! simply switches to the identity; with one, root may map ranges. Names resolve through the
//! `etc/passwd` and `etc/group` of the root's top layer that has them.
//!
//! Without an identity, a root caller's program runs as nobody (65534), never as root; `owner-of`
//! runs it as the owner of a host path instead. The ids the program has *on the host* are worked
//! out here too ([`HostIds`]): `host-privileges` (in `privileges.rs`) is a rule about those.
//!
//! Ordering in the launch: only the parent may write the maps (step 3); the child switches ids
//! after the mounts, together with dropping capabilities (step 8).

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use super::diags::Diags;
use super::keyed::Keyed;
use crate::caller::Caller;
use crate::policy::KeyPath;
use crate::policy::model::{Id, Identity};

/// The ids the program runs with, inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdentityPlan {
    /// User id (`identity.uid`).
    pub uid: Keyed<u32>,
    /// Group id (`identity.gid`).
    pub gid: Keyed<u32>,
    /// Supplementary groups (`identity.groups`).
    pub groups: Keyed<Vec<u32>>,
    /// The user name, when known.
    pub user: Option<String>,
    /// The host path whose owner this is (`identity.owner-of`).
    pub owner_of: Option<PathBuf>,
    /// The same ids as the host sees them (through the user namespace's maps).
    pub host: HostIds,
}

/// The program's ids on the host: what its files belong to, and what the host's permission
/// checks see.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct HostIds {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

/// nobody and nogroup: a root caller's program without an identity.
pub const NOBODY: u32 = 65534;

/// The user namespace's maps, as written to /proc/PID/{uid,gid}_map.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserNsPlan {
    /// uid_map contents.
    pub uid_map: String,
    /// gid_map contents.
    pub gid_map: String,
    /// Write "deny" to setgroups first (required for unprivileged writers).
    pub deny_setgroups: bool,
    /// The setup process becomes uid/gid 0 inside after the maps are written.
    pub setup_as_root: bool,
    /// The policy key whose ids the maps map (`identity`).
    pub key: KeyPath,
}

/// A passwd or group entry: name, id, primary group (passwd only).
#[derive(Debug, Clone, PartialEq, Eq)]
struct DbEntry<'t> {
    name: &'t str,
    id: u32,
    gid: Option<u32>,
}

/// The text of `etc/passwd` and of `etc/group` in the top layer that has each, read without
/// following a symbolic link below the layer (an image's `etc/passwd -> /etc/shadow` must not
/// read the host's file). Each layer's directory is opened once, when first needed; each file
/// is read through the descriptor that opened it, sized by its `fstat`. With `userxattr` (an
/// image's layers) an opaque `etc` ends the search as the overlay would: nothing of the
/// layers below it shows.
fn read_dbs(layers: &[PathBuf], userxattr: bool) -> (String, String) {
    let dirs: Vec<std::cell::OnceCell<Option<std::fs::File>>> =
        layers.iter().map(|_| std::cell::OnceCell::new()).collect();
    let read = |file: &str| -> String {
        let rel = std::path::Path::new("etc").join(file);
        for (layer, dir) in layers.iter().zip(&dirs) {
            let Some(dir) = dir.get_or_init(|| std::fs::File::open(layer).ok()) else {
                continue;
            };
            // An image's layer is hostile: its `etc/passwd` may be a device node (a root store
            // keeps them) whose mere opening by root would act on the host's device. There the
            // name is only looked at (`O_PATH`) and opened for reading once `fstat` said it
            // is a regular file.
            let flags = if userxattr {
                nix::fcntl::OFlag::O_PATH
            } else {
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK
            };
            let fd = match crate::hostfs::open_beneath(std::os::fd::AsFd::as_fd(dir), &rel, flags) {
                Ok(fd) => fd,
                Err(nix::errno::Errno::ENOENT) if userxattr && opaque_etc(dir) => {
                    return String::new();
                }
                Err(nix::errno::Errno::ENOENT) => continue,
                // A link, a whiteout: this layer decides, and gives nothing.
                Err(_) => return String::new(),
            };
            let Ok(st) = nix::sys::stat::fstat(&fd) else {
                return String::new();
            };
            let size = usize::try_from(st.st_size).unwrap_or(0);
            let file = if userxattr {
                if !crate::hostfs::is_regular(&st) {
                    // A device, a fifo, a directory: this layer decides, and gives nothing.
                    return String::new();
                }
                // Reopened through the descriptor: the file fstat saw, nothing else.
                match std::fs::File::open(crate::sys::fd_path(std::os::fd::AsFd::as_fd(&fd))) {
                    Ok(f) => f,
                    Err(_) => return String::new(),
                }
            } else {
                std::fs::File::from(fd)
            };
            // At most 16 MiB of it, as ever.
            return crate::hostfs::read_all(&file, size.saturating_add(1), 16 << 20)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
        }
        String::new()
    };
    (read("passwd"), read("group"))
}

/// Is the layer's `etc` (looked up below the layer's open directory, no link followed) an
/// opaque directory? Read from the descriptor that lookup gave, not by a path again.
fn opaque_etc(layer: &std::fs::File) -> bool {
    use xattr::FileExt;
    crate::hostfs::open_beneath(
        std::os::fd::AsFd::as_fd(layer),
        std::path::Path::new("etc"),
        nix::fcntl::OFlag::O_RDONLY
            | nix::fcntl::OFlag::O_DIRECTORY
            | nix::fcntl::OFlag::O_NONBLOCK,
    )
    .ok()
    .map(std::fs::File::from)
    .and_then(|etc| etc.get_xattr("user.overlay.opaque").ok().flatten())
    .is_some_and(|v| v == b"y")
}

fn parse_db(text: &str, passwd: bool) -> Vec<DbEntry<'_>> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let _password = f.next()?;
            let id = f.next()?.parse().ok()?;
            let gid = if passwd { f.next()?.parse().ok() } else { None };
            Some(DbEntry { name, id, gid })
        })
        .collect()
}

fn resolve<'a, 't>(
    id: &Id,
    db: &'a [DbEntry<'t>],
    what: &str,
) -> Result<(u32, Option<&'a DbEntry<'t>>), String> {
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
            if let Some(best) = super::diags::suggest(t, db.iter().map(|e| e.name)) {
                msg.push_str(&format!(" (did you mean `{best}`?)"));
            }
            Err(msg)
        }
    }
}

/// `owner-of`: the path, its owner and its group, from one `stat` (the compile reads the host, as
/// it does for bind sources; the launch acts on the ids, never on the path again).
fn owner_of(
    text: &str,
    spec: &Identity,
    here: &KeyPath,
    diags: &mut Diags,
) -> Option<(PathBuf, u32, u32)> {
    let at = here.key("owner-of");
    if spec.uid.is_some() || spec.gid.is_some() {
        diags.push(
            at.clone(),
            "`owner-of` gives both the user and the group: leave out `uid` and `gid`, or \
             `owner-of` (a policy that extends another may need `replace: [identity]`)",
        );
    }
    let path = match super::fs::normalize_abs(text) {
        Ok(p) => p,
        Err(e) => {
            diags.push(at, e);
            return None;
        }
    };
    match std::fs::metadata(&path) {
        Ok(meta) => Some((path, meta.uid(), meta.gid())),
        Err(e) => {
            diags.push(
                at,
                format!("{}: {}", path.display(), crate::policy::describe_io(&e)),
            );
            None
        }
    }
}

/// Plans the identity and, when there is a user namespace, its maps.
pub fn plan(
    spec: Option<&Identity>,
    caller: &Caller,
    userns: bool,
    (layers, userxattr): (&[PathBuf], bool),
    diags: &mut Diags,
) -> (IdentityPlan, Option<UserNsPlan>) {
    let here = KeyPath::root().key("identity");
    let default = Identity::default();
    let spec = spec.unwrap_or(&default);
    let (passwd, group) = read_dbs(layers, userxattr);
    let (passwd, group) = (parse_db(&passwd, true), parse_db(&group, false));
    let rootless = !caller.is_root();

    // Never root by default: a root caller's program is nobody unless the policy says who.
    let (default_uid, default_gid) = if rootless {
        (caller.uid, caller.gid)
    } else {
        (NOBODY, NOBODY)
    };
    let mut user = None;
    let mut user_gid = None;
    let owner = spec
        .owner_of
        .as_deref()
        .and_then(|text| owner_of(text, spec, &here, diags));
    let uid = match (&spec.uid, &owner) {
        // An unprivileged caller's files are its own whoever owns the path.
        (_, Some(_)) if rootless => caller.uid,
        (_, Some((_, owner_uid, owner_gid))) => {
            let entry = passwd.iter().find(|e| e.id == *owner_uid);
            user = entry.map(|e| e.name.to_owned());
            user_gid = Some(entry.and_then(|e| e.gid).unwrap_or(*owner_gid));
            *owner_uid
        }
        (None, None) if rootless => default_uid,
        (None, None) => {
            user = passwd
                .iter()
                .find(|e| e.id == NOBODY)
                .map(|e| e.name.to_owned());
            NOBODY
        }
        (Some(id), None) => match resolve(id, &passwd, "user") {
            Ok((n, entry)) => {
                user = entry.map(|e| e.name.to_owned());
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
        _ if owner.is_some() && rootless => caller.gid,
        _ if owner.is_some() => user_gid.unwrap_or(default_gid),
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
    let mut identity = IdentityPlan {
        host: HostIds {
            uid,
            gid,
            groups: groups.clone(),
        },
        uid: Keyed::new(uid, here.key("uid")),
        gid: Keyed::new(gid, here.key("gid")),
        groups: Keyed::new(groups, here.key("groups")),
        user,
        // An unprivileged caller is itself, whoever owns the path.
        owner_of: owner.filter(|_| !rootless).map(|(path, _, _)| path),
    };
    if rootless {
        // One id each way: whatever the identity, the host sees the caller.
        identity.host = HostIds {
            uid: caller.euid,
            gid: caller.egid,
            groups: Vec::new(),
        };
    }
    if !userns {
        return (identity, None);
    }
    let ns = if rootless {
        UserNsPlan {
            uid_map: format!("{uid} {} 1\n", caller.euid),
            gid_map: format!("{gid} {} 1\n", caller.egid),
            deny_setgroups: true,
            setup_as_root: false,
            key: here.clone(),
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
        let to_host = |id: u32| {
            u32::try_from(u64::from(outside) + u64::from(id).saturating_sub(u64::from(inside)))
                .unwrap_or(u32::MAX)
        };
        identity.host = HostIds {
            uid: to_host(uid),
            gid: to_host(gid),
            groups: identity.groups.iter().map(|g| to_host(*g)).collect(),
        };
        let line = format!("{inside} {outside} {count}\n");
        UserNsPlan {
            uid_map: line.clone(),
            gid_map: line,
            deny_setgroups: false,
            setup_as_root: true,
            key: here.clone(),
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
        gids.extend(identity.groups.iter());
        UserNsPlan {
            uid_map: lines(&[0, uid]),
            gid_map: lines(&gids),
            deny_setgroups: false,
            setup_as_root: true,
            key: here.clone(),
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
            (&[PathBuf::from("/")], false),
            &mut diags,
        );
        if diags.is_empty() {
            Ok(out)
        } else {
            Err(diags.into_pairs())
        }
    }

    /// An image layer's opaque `etc` hides the `etc/passwd` of the layers below it, as the
    /// overlay would; without `userxattr` (host layers) the marker means nothing.
    #[rstest]
    #[case::image_layers(true, "")]
    #[case::host_layers(false, "lower:x:5:5::/:/bin/sh\n")]
    fn an_opaque_etc_ends_the_search(#[case] userxattr: bool, #[case] want: &str) {
        let top = std::env::temp_dir().join(format!(
            "kekkai-opaque-etc-{}-{userxattr}",
            std::process::id()
        ));
        let (upper, lower) = (top.join("upper"), top.join("lower"));
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/passwd"), "lower:x:5:5::/:/bin/sh\n").unwrap();
        xattr::set(upper.join("etc"), "user.overlay.opaque", b"y").unwrap();
        let (passwd, _) = read_dbs(&[upper, lower], userxattr);
        std::fs::remove_dir_all(&top).unwrap();
        assert_eq!(passwd, want);
    }

    /// An image layer's `etc/passwd` that is not a regular file is never opened for reading:
    /// a device node there (a root store keeps them) would be the host's device, here
    /// `/dev/zero`, read as 16 MiB of text. The layer decides, and gives nothing.
    #[rstest]
    #[case::fifo(nix::sys::stat::SFlag::S_IFIFO, 0)]
    #[ignore = "needs root: run by scripts/test"] // mknod of a device
    #[case::char_device(nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::makedev(1, 5))]
    fn an_image_layers_passwd_must_be_a_regular_file(
        #[case] kind: nix::sys::stat::SFlag,
        #[case] dev: u64,
    ) {
        let top = std::env::temp_dir().join(format!(
            "kekkai-passwd-kind-{}-{}",
            std::process::id(),
            kind.bits()
        ));
        let (upper, lower) = (top.join("upper"), top.join("lower"));
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/passwd"), "lower:x:5:5::/:/bin/sh\n").unwrap();
        nix::sys::stat::mknod(
            &upper.join("etc/passwd"),
            kind,
            nix::sys::stat::Mode::from_bits_truncate(0o644),
            dev,
        )
        .unwrap();
        let (passwd, _) = read_dbs(&[upper, lower], true);
        std::fs::remove_dir_all(&top).unwrap();
        assert_eq!(passwd.len(), 0);
    }

    #[test]
    fn rootless_maps_the_caller_to_the_identity() {
        let (id, ns) = run("{uid: 0, gid: 0}", &Caller::for_tests(), true).unwrap();
        assert_eq!((*id.uid, *id.gid), (0, 0));
        let ns = ns.unwrap();
        assert_eq!(ns.uid_map, "0 1000 1\n");
        assert_eq!(ns.gid_map, "0 1000 1\n");
        assert!(ns.deny_setgroups);
    }

    #[test]
    fn rootless_default_identity_is_the_caller() {
        let (id, _) = run("{}", &Caller::for_tests(), true).unwrap();
        assert_eq!((*id.uid, *id.gid), (1000, 1000));
    }

    #[test]
    fn root_names_resolve_through_passwd() {
        let (id, ns) = run("{uid: root}", &root_caller(), false).unwrap();
        assert_eq!((*id.uid, *id.gid, id.user.as_deref()), (0, 0, Some("root")));
        assert!(ns.is_none());
    }

    #[test]
    fn root_without_an_identity_is_nobody_never_root() {
        let (id, ns) = run("{}", &root_caller(), true).unwrap();
        assert_eq!((*id.uid, *id.gid), (NOBODY, NOBODY));
        assert_eq!((id.host.uid, id.host.gid), (NOBODY, NOBODY));
        assert_eq!(ns.unwrap().uid_map, "0 0 1\n65534 65534 1\n");
    }

    /// The ids the host sees, by caller and maps.
    #[rstest]
    #[case::rootless_as_root_inside("{uid: 0, gid: 0}", false, true, (1000, 1000))]
    #[case::root_same_ids("{uid: 1000, gid: 100}", true, true, (1000, 100))]
    #[case::root_without_userns("{uid: 33, gid: 33}", true, false, (33, 33))]
    #[case::root_range(
        "{uid: 0, gid: 1, map: {inside: 0, outside: 100000, count: 65536}}",
        true,
        true,
        (100000, 100001)
    )]
    #[case::root_range_onto_root(
        "{uid: 0, gid: 0, map: {inside: 0, outside: 0, count: 10}}",
        true,
        true,
        (0, 0)
    )]
    fn host_ids(
        #[case] yaml: &str,
        #[case] as_root: bool,
        #[case] userns: bool,
        #[case] want: (u32, u32),
    ) {
        let caller = if as_root {
            root_caller()
        } else {
            Caller::for_tests()
        };
        let (id, _) = run(yaml, &caller, userns).unwrap();
        assert_eq!((id.host.uid, id.host.gid), want);
    }

    /// A directory owned by someone other than root (the test may run as root or not).
    fn owned_dir(uid: u32, gid: u32) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "kekkai-identity-{}-{uid}-{gid}",
            std::process::id()
        ));
        let _ = std::fs::create_dir(&dir);
        if nix::unistd::geteuid().is_root() {
            nix::unistd::chown(
                &dir,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .unwrap();
        }
        dir
    }

    #[test]
    fn owner_of_runs_a_root_callers_program_as_the_owner() {
        use std::os::unix::fs::MetadataExt;
        let dir = owned_dir(4242, 4343);
        let meta = std::fs::metadata(&dir).unwrap();
        let yaml = format!("{{owner-of: {}}}", dir.display());
        let (id, ns) = run(&yaml, &root_caller(), true).unwrap();
        let _ = std::fs::remove_dir(&dir);
        // No passwd entry for the owner: the directory's group.
        assert_eq!((*id.uid, *id.gid), (meta.uid(), meta.gid()));
        assert_eq!(id.owner_of.as_deref(), Some(dir.as_path()));
        assert_eq!(id.host.uid, meta.uid());
        assert!(
            ns.unwrap()
                .uid_map
                .contains(&format!("{0} {0} 1", meta.uid()))
        );
    }

    #[test]
    fn owner_of_takes_the_owners_primary_group_from_passwd() {
        // /usr/bin is root's: uid 0, and root's primary group.
        let (id, _) = run("{owner-of: /usr/bin}", &root_caller(), true).unwrap();
        assert_eq!((*id.uid, *id.gid, id.user.as_deref()), (0, 0, Some("root")));
    }

    #[test]
    fn owner_of_is_the_caller_itself_for_an_unprivileged_caller() {
        let (id, ns) = run("{owner-of: /usr/bin}", &Caller::for_tests(), true).unwrap();
        assert_eq!((*id.uid, *id.gid, id.owner_of), (1000, 1000, None));
        assert_eq!(ns.unwrap().uid_map, "1000 1000 1\n");
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
    #[case(
        "{owner-of: /usr, uid: 1000}",
        false,
        true,
        "identity.owner-of",
        "leave out `uid` and `gid`"
    )]
    #[case(
        "{owner-of: relative/dir}",
        false,
        true,
        "identity.owner-of",
        "not an absolute path"
    )]
    #[case(
        "{owner-of: /kekkai-no-such-dir}",
        false,
        true,
        "identity.owner-of",
        "no such file or directory (ENOENT)"
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
