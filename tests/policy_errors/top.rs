//! Invalid snippets for an unprivileged caller, the top of a policy: version, name, extends,
//! replace and remove, namespaces, identity, host-privileges, hostname, rootfs.

use rstest::rstest;

use super::invalid_snippet;

#[rstest]
// ── version ──────────────────────────────────────────────────────────────────────────────────
#[case::version_missing("name: x\n", "", 1, "version: required")]
#[case::version_2("version: 2\n", "version", 1, "unsupported version 2")]
#[case::version_string("version: \"1\"\n", "version", 1, "invalid type: string")]
#[case::version_negative("version: -1\n", "version", 1, "invalid type: integer `-1`")]
#[case::version_huge(
    "version: 99999999999999999999999\n",
    "version",
    1,
    "expected a whole number"
)]
#[case::version_twice("version: 1\nname: a\nversion: 1\n", "", 3, "duplicate key `version`")]
// ── name, description ────────────────────────────────────────────────────────────────────────
#[case::name_list(
    "version: 1\nname: [a]\n",
    "name",
    2,
    "invalid type: sequence, expected a string"
)]
#[case::description_map(
    "version: 1\ndescription: {a: 1}\n",
    "description",
    2,
    "invalid type: map"
)]
// ── extends, replace, remove ─────────────────────────────────────────────────────────────────
#[case::extends_unknown(
    "version: 1\nextends: nosuch\n",
    "extends",
    2,
    "no shipped policy is called `nosuch`"
)]
#[case::extends_typo(
    "version: 1\nextends: defualt\n",
    "extends",
    2,
    "(did you mean `default`?)"
)]
#[case::extends_list(
    "version: 1\nextends: [default]\n",
    "extends",
    2,
    "invalid type: sequence"
)]
#[case::extends_missing_file(
    "version: 1\nname: x\nextends: ./kekkai-no-such-policy.yaml\n",
    "extends",
    3,
    "no such file or directory (ENOENT)"
)]
#[case::replace_without_extends(
    "version: 1\nreplace: [mounts]\n",
    "replace",
    2,
    "only meaningful in a policy that `extends`"
)]
#[case::remove_without_extends(
    "version: 1\nremove: {mounts: [{hide: /home}]}\n",
    "remove",
    2,
    "only meaningful in a policy that `extends`"
)]
#[case::replace_unknown_key(
    "version: 1\nextends: default\nreplace: [limits, mountz]\n",
    "replace[1]",
    3,
    "`mountz` is not set by the policy this extends (did you mean `mounts`?)"
)]
#[case::replace_unset_nested(
    "version: 1\nextends: default\nreplace:\n  - limits.swap\n",
    "replace[0]",
    4,
    "`limits.swap` is not set by the policy this extends"
)]
#[case::replace_not_dotted(
    "version: 1\nextends: default\nreplace: ['limits..memory']\n",
    "replace[0]",
    3,
    "is not a dotted key path"
)]
#[case::replace_not_a_list(
    "version: 1\nextends: default\nreplace: mounts\n",
    "replace",
    3,
    "invalid type: string"
)]
#[case::remove_no_such_entry(
    "version: 1\nextends: default\nremove:\n  mounts:\n    - {hide: /home}\n    - {hide: /nope}\n",
    "remove.mounts[1]",
    6,
    "no inherited entry of `mounts` equals this one"
)]
#[case::remove_from_a_scalar(
    "version: 1\nextends: default\nremove: {hostname: [kekkai]}\n",
    "remove.hostname",
    3,
    "`hostname` is not a list set by the policy this extends"
)]
#[case::remove_not_dotted(
    "version: 1\nextends: default\nremove: {'.mounts': [x]}\n",
    "remove..mounts",
    3,
    "is not a dotted key path"
)]
// ── namespaces, network ──────────────────────────────────────────────────────────────────────
#[case::namespace_typo(
    "version: 1\nnamespaces: [user, nett]\n",
    "namespaces[1]",
    2,
    "unknown value `nett` (did you mean `net`?)"
)]
#[case::namespaces_without_mount(
    "version: 1\nnamespaces: [user, pid]\n",
    "namespaces",
    2,
    "the `mount` namespace is required"
)]
#[case::namespaces_scalar(
    "version: 1\nnamespaces: user\n",
    "namespaces",
    2,
    "expected a sequence"
)]
#[case::network_unknown(
    "version: 1\nnetwork: internet\n",
    "network",
    2,
    "unknown value `internet`; expected one of `none`, `host`, `user`"
)]
#[case::network_bool("version: 1\nnetwork: false\n", "network", 2, "unknown value `false`")]
#[case::network_unknown_key(
    "version: 1\nnetwork:\n  mode: user\n  bogus: 1\n",
    "network.bogus",
    4,
    "unknown key `bogus`"
)]
#[case::network_allow_host_bits(
    "version: 1\nnetwork:\n  allow: [\"10.0.0.1/8:443\"]\n",
    "network.allow[0]",
    3,
    "write `10.0.0.0/8`"
)]
#[case::network_allow_name(
    "version: 1\nnetwork:\n  allow: [\"example.com:443\"]\n",
    "network.allow[0]",
    3,
    "not an IPv4 or IPv6 address"
)]
#[case::network_port_name(
    "version: 1\nnetwork:\n  ports:\n    - { host: \"localhost:8080\" }\n",
    "network.ports[0].host",
    4,
    "not an IPv4 address"
)]
#[case::network_port_udp_renumbered(
    "version: 1\nnetwork:\n  ports: [{ host: 8053, sandbox: 53, proto: udp }]\n",
    "network.ports[0].sandbox",
    3,
    "own number only"
)]
#[case::network_dns_name(
    "version: 1\nnetwork:\n  dns: [resolver]\n",
    "network.dns[0]",
    3,
    "not an IPv4 or IPv6 address"
)]
#[case::network_loopback_proto(
    "version: 1\nnetwork:\n  host-loopback: [5432/sctp]\n",
    "network.host-loopback[0]",
    3,
    "not a protocol"
)]
#[case::network_user_key_under_none(
    "version: 1\nnetwork: { mode: none, allow: [dns] }\n",
    "network.allow",
    2,
    "only `network.mode: user` reads this"
)]
#[case::network_net_admin(
    "version: 1\nnetwork: user\ncapabilities: { keep: [net_admin] }\n",
    "capabilities.keep[0]",
    3,
    "could remove the egress rules"
)]
#[case::network_net_raw(
    "version: 1\nnetwork: user\ncapabilities:\n  keep: [net_bind_service, CAP_NET_RAW]\n",
    "capabilities.keep[1]",
    4,
    "CAP_NET_RAW with `network: user`: the program could write raw frames to pasta"
)]
// ── identity ─────────────────────────────────────────────────────────────────────────────────
#[case::identity_unknown_user(
    "version: 1\nidentity: {uid: nosuchuser}\n",
    "identity.uid",
    2,
    "no user named `nosuchuser`"
)]
#[case::identity_user_typo(
    "version: 1\nidentity: {uid: ww-data}\n",
    "identity.uid",
    2,
    "(did you mean `www-data`?)"
)]
#[case::identity_unknown_group(
    "version: 1\nidentity:\n  uid: 0\n  gid: nosuchgroup\n",
    "identity.gid",
    4,
    "no group named `nosuchgroup`"
)]
#[case::identity_uid_minus_one(
    "version: 1\nidentity: {uid: 4294967295}\n",
    "identity.uid",
    2,
    "is not a valid user id"
)]
#[case::identity_negative_uid(
    "version: 1\nidentity: {uid: -5}\n",
    "identity.uid",
    2,
    "`-5` is not a valid user id"
)]
#[case::identity_unknown_supplementary(
    "version: 1\nidentity: {groups: [0, nosuchgrp]}\n",
    "identity.groups[1]",
    2,
    "no group named `nosuchgrp`"
)]
#[case::identity_groups_rootless(
    "version: 1\nidentity: {groups: [0]}\n",
    "identity.groups",
    2,
    "need a root caller"
)]
#[case::identity_map_rootless(
    "version: 1\nidentity:\n  map: {outside: 100000, count: 10}\n",
    "identity.map",
    3,
    "mapping a range of ids needs a root caller"
)]
#[case::identity_unknown_key(
    "version: 1\nidentity: {user: bob}\n",
    "identity.user",
    2,
    "unknown key `user`"
)]
#[case::identity_owner_of_and_uid(
    "version: 1\nidentity: {owner-of: /usr, uid: 1}\n",
    "identity.owner-of",
    2,
    "leave out `uid` and `gid`"
)]
#[case::identity_owner_of_missing(
    "version: 1\nidentity:\n  owner-of: /kekkai-no-such-dir\n",
    "identity.owner-of",
    3,
    "/kekkai-no-such-dir: no such file or directory (ENOENT)"
)]
// ── host-privileges ──────────────────────────────────────────────────────────────────────────
#[case::host_privileges_typo(
    "version: 1\nhost-privileges: alow\n",
    "host-privileges",
    2,
    "(did you mean `allow`?)"
)]
#[case::host_privileges_bool(
    "version: 1\nhost-privileges: true\n",
    "host-privileges",
    2,
    "unknown value `true`"
)]
#[case::host_privileges_setfcap(
    "version: 1\ncapabilities: {keep: [setfcap]}\n",
    "capabilities.keep[0]",
    2,
    "`setfcap` gives files capabilities"
)]
#[case::host_privileges_mknod(
    "version: 1\ncapabilities:\n  keep: [net_raw, CAP_MKNOD]\n",
    "capabilities.keep[1]",
    3,
    "keep it only with `host-privileges: allow`"
)]
#[case::host_privileges_dac_read_search(
    "version: 1\ncapabilities: {keep: [dac_read_search]}\n",
    "capabilities.keep[0]",
    2,
    "reads files whatever their permissions"
)]
#[case::host_privileges_openat2(
    "version: 1\nseccomp:\n  allow: [openat2]\n",
    "seccomp.allow[0]",
    3,
    "`host-privileges: allow`"
)]
// ── hostname ─────────────────────────────────────────────────────────────────────────────────
#[case::hostname_chars(
    "version: 1\nhostname: \"bad host!\"\n",
    "hostname",
    2,
    "is not a host name"
)]
#[case::hostname_empty("version: 1\nhostname: ''\n", "hostname", 2, "is not a host name")]
#[case::hostname_too_long(
    "version: 1\nhostname: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
    "hostname",
    2,
    "1-64"
)]
#[case::hostname_without_uts(
    "version: 1\nnamespaces: [user, mount]\nhostname: box\n",
    "hostname",
    3,
    "needs the `uts` namespace"
)]
// ── rootfs ───────────────────────────────────────────────────────────────────────────────────
#[case::rootfs_relative_lower(
    "version: 1\nrootfs: {lower: [/, usr]}\n",
    "rootfs.lower[1]",
    2,
    "`usr` is not an absolute path"
)]
#[case::rootfs_no_layers(
    "version: 1\nrootfs: {lower: []}\n",
    "rootfs.lower",
    2,
    "needs at least one layer"
)]
#[case::rootfs_missing_lower(
    "version: 1\nrootfs:\n  lower:\n    - /kekkai-no-such-dir\n",
    "rootfs.lower[0]",
    4,
    "no such file or directory"
)]
#[case::rootfs_lower_is_a_file(
    "version: 1\nrootfs: {lower: [/etc/passwd]}\n",
    "rootfs.lower[0]",
    2,
    "is not a directory"
)]
#[case::rootfs_small(
    "version: 1\nrootfs: {writable: true, size: 10k}\n",
    "rootfs.size",
    2,
    "must be at least 1M"
)]
#[case::rootfs_unlimited(
    "version: 1\nrootfs: {size: unlimited}\n",
    "rootfs.size",
    2,
    "a tmpfs needs a finite size"
)]
#[case::rootfs_bad_size("version: 1\nrootfs: {size: big}\n", "rootfs.size", 2, "is not a size")]
#[case::rootfs_yes_is_not_a_bool(
    "version: 1\nrootfs: {writable: yes}\n",
    "rootfs.writable",
    2,
    "expected a boolean"
)]
#[case::rootfs_unknown_key(
    "version: 1\nrootfs: {upper: /x}\n",
    "rootfs.upper",
    2,
    "unknown key `upper`"
)]
fn invalid_snippets(
    #[case] text: &str,
    #[case] path: &str,
    #[case] line: usize,
    #[case] contains: &str,
) {
    invalid_snippet(text, path, line, contains);
}
