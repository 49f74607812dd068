//! The command line's words that clap's definitions can't check alone: the overrides' value
//! parsers, a bind without a destination just before the command (bubblewrap's two-word
//! `--ro-bind SRC DST`), and the options bubblewrap and podman users type, answered with
//! kekkai's spelling.

use kekkai::policy::overrides::split_bind;

/// `--setenv`'s value parser: `NAME=VALUE` with a non-empty name. bubblewrap's two-word form
/// (`--setenv NAME VALUE`) arrives here as a bare `NAME` and is refused with kekkai's spelling.
pub(crate) fn setenv_value(v: &str) -> Result<String, String> {
    match v.split_once('=') {
        Some((name, _)) if !name.is_empty() => Ok(v.to_owned()),
        Some(_) => Err("expected NAME=VALUE with a name before `=`".into()),
        None => Err(format!(
            "expected NAME=VALUE (bubblewrap's `--setenv {v} VALUE` is `--setenv {v}=VALUE` here)"
        )),
    }
}

/// `--net`'s value parser.
pub(crate) fn net_value(v: &str) -> Result<String, String> {
    match v {
        "none" | "host" | "user" => Ok(v.to_owned()),
        _ => Err("expected `none`, `host` or `user`".into()),
    }
}

/// `--publish`'s value parser: `[ADDR:]HOSTPORT:PORT[/udp]`.
pub(crate) fn publish_value(v: &str) -> Result<String, String> {
    kekkai::policy::overrides::split_publish(v).map(|_| v.to_owned())
}

/// A `--bind`/`--ro-bind` value without a destination (`SRC`, not `SRC:DST`), with its flag;
/// `None` for any other option. `flag` is the word before `value` on the command line, or the
/// word itself for the `--flag=VALUE` form (then `value` is `None`).
pub(crate) fn bind_without_destination(
    flag: &str,
    value: Option<&str>,
) -> Option<(String, String)> {
    let (name, value) = match (flag.split_once('='), value) {
        (Some((name, v)), _) => (name, v),
        (None, Some(v)) => (flag, v),
        (None, None) => return None,
    };
    if !matches!(name, "--bind" | "--ro-bind") || split_bind(value).1.is_some() {
        return None;
    }
    Some((name.to_owned(), value.to_owned()))
}

/// What to say about an option kekkai does not have, when it is one that users of bubblewrap
/// (or podman) type: kekkai's spelling of the same thing, or where it lives in a policy.
/// `word` is the option as typed, with or without `=VALUE`.
pub(crate) fn foreign_option(word: &str) -> Option<&'static str> {
    let name = word.split_once('=').map_or(word, |(n, _)| n);
    Some(match name {
        "--bind-try" | "--ro-bind-try" => {
            "a bind whose source may be missing is a policy mount with `optional: true` \
             (`mounts: [{ bind: SRC, to: DST, optional: true }]`); on the command line kekkai \
             has --bind SRC:DST and --ro-bind SRC:DST"
        }
        "--dev-bind" | "--dev-bind-try" => {
            "kekkai binds no host devices: a policy's `{ dev: /dev }` mount gives the minimal \
             /dev (null, zero, full, random, urandom, tty, a private devpts and shm); other \
             files are --bind SRC:DST or --ro-bind SRC:DST"
        }
        "--die-with-parent" => {
            "the sandbox always dies with kekkai (PR_SET_PDEATHSIG, and the sandbox's cgroup); \
             kekkai has no option to die with its own parent: leave the option out"
        }
        "--new-session" => {
            "kekkai always starts the program in a session of its own, with its own \
             pseudo-terminal (--pty, the default when stdin is a terminal) or none \
             (`terminal: none` in a policy), and the seccomp presets deny TIOCSTI; leave the \
             option out (--no-pty shares the caller's terminal)"
        }
        "--unshare-all"
        | "--unshare-user"
        | "--unshare-user-try"
        | "--unshare-ipc"
        | "--unshare-pid"
        | "--unshare-uts"
        | "--unshare-cgroup"
        | "--unshare-cgroup-try" => {
            "kekkai's namespaces come from the policy (`namespaces: [user, mount, pid, net, \
             ipc, uts, cgroup]`, all of them in the default policy); for the network: --net none"
        }
        "--unshare-net" => "kekkai spells it --net none (the default policy's choice)",
        "--share-net" | "--network" => {
            "kekkai spells it --net host (or --net none, or --net user for user-mode networking \
             through pasta)"
        }
        "--clearenv" => {
            "the policy's `env: { clear: true }` clears the environment (the default policy \
             does); --unsetenv NAME removes one variable"
        }
        "--env" | "-e" => "kekkai spells it --setenv NAME=VALUE",
        "--volume" | "--mount" => "kekkai spells it --bind SRC:DST or --ro-bind SRC:DST",
        "--workdir" | "-w" => "kekkai spells it --chdir DIR",
        "--uid" | "--gid" | "--user" | "-u" => {
            "the program's identity is the policy's `identity: { uid: N, gid: N }` (or a user \
             name)"
        }
        "--cap-add" | "--cap-drop" => {
            "the capabilities the program keeps are the policy's `capabilities: { keep: [...] }`"
        }
        "--proc" => {
            "a fresh /proc is a policy mount `{ proc: /proc }` (the default policy has one)"
        }
        "--dev" => {
            "the minimal /dev is a policy mount `{ dev: /dev }` (the default policy has one)"
        }
        "--mqueue" => {
            "a POSIX message queue filesystem is a policy mount `{ mqueue: /dev/mqueue }`"
        }
        "--tmpfs-size" | "--size" => {
            "a tmpfs's size is the policy mount's `size:` (`{ tmpfs: DST, size: 64M }`)"
        }
        "--seccomp" | "--add-seccomp-fd" => {
            "the seccomp filter is the policy's `seccomp:` section, compiled by kekkai"
        }
        "--as-pid-1" => "the policy's `as-pid-1: true`",
        "--symlink"
        | "--dir"
        | "--file"
        | "--bind-data"
        | "--ro-bind-data"
        | "--remount-ro"
        | "--perms"
        | "--chmod"
        | "--overlay"
        | "--overlay-src"
        | "--tmp-overlay"
        | "--ro-overlay"
        | "--userns"
        | "--userns2"
        | "--pidns"
        | "--disable-userns"
        | "--assert-userns-disabled"
        | "--info-fd"
        | "--json-status-fd"
        | "--block-fd"
        | "--userns-block-fd"
        | "--sync-fd"
        | "--lock-file"
        | "--exec-label"
        | "--file-label"
        | "--args"
        | "--argv0"
        | "--level-prefix" => {
            "that is a bubblewrap option kekkai does not have: kekkai describes the sandbox in a \
             policy file (-p FILE; see docs/policy.md and `kekkai man run`)"
        }
        _ => return None,
    })
}

/// Does the program read like podman's or docker's volume, `SRC:DST[:OPTS]` with a path on
/// each side? After `-v`, the caller most likely meant a bind, and kekkai would take `-v`
/// for --verbose and the volume for the program.
pub(crate) fn looks_like_a_volume(program: &str) -> bool {
    let mut parts = program.split(':');
    let path = |p: Option<&str>| p.is_some_and(|p| p.starts_with('/') || p.starts_with('.'));
    path(parts.next()) && path(parts.next())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("/src:/dst", true)]
    #[case("./data:/data:ro", true)]
    #[case("/src:/dst:z", true)]
    #[case("/usr/bin/prog", false)]
    #[case("prog:thing", false)]
    #[case("/a:b", false)]
    #[case("", false)]
    fn a_volume_typed_as_a_program(#[case] program: &str, #[case] want: bool) {
        assert_eq!(looks_like_a_volume(program), want);
    }

    #[rstest]
    #[case("--ro-bind", Some("/data"), Some(("--ro-bind", "/data")))]
    #[case("--bind", Some("rel"), Some(("--bind", "rel")))]
    #[case("--bind=/data", None, Some(("--bind", "/data")))]
    #[case("--ro-bind", Some("/data:/x"), None)]
    #[case("--ro-bind=/a:/b", None, None)]
    #[case("--tmpfs", Some("/data"), None)]
    #[case("--chdir", Some("/data"), None)]
    #[case("--bind", None, None)]
    fn binds_without_a_destination(
        #[case] flag: &str,
        #[case] value: Option<&str>,
        #[case] want: Option<(&str, &str)>,
    ) {
        let got = bind_without_destination(flag, value);
        assert_eq!(got.as_ref().map(|(f, v)| (f.as_str(), v.as_str())), want);
    }

    #[rstest]
    #[case("--die-with-parent", true)]
    #[case("--unshare-all", true)]
    #[case("--uid=0", true)]
    #[case("-e", true)]
    #[case("--frobnicate", false)]
    #[case("--bind", false)]
    #[case("--ro-bind", false)]
    #[case("--tmpfs", false)]
    #[case("--setenv", false)]
    #[case("--unsetenv", false)]
    #[case("--chdir", false)]
    #[case("--hostname", false)]
    fn foreign_options(#[case] word: &str, #[case] known: bool) {
        assert_eq!(foreign_option(word).is_some(), known);
    }

    #[rstest]
    #[case("A=b", true)]
    #[case("A=", true)]
    #[case("A=b=c", true)]
    #[case("A", false)]
    #[case("=b", false)]
    fn setenv_values(#[case] v: &str, #[case] ok: bool) {
        assert_eq!(setenv_value(v).is_ok(), ok);
    }
}
