//! Command-line overrides with the flag names bubblewrap users know, turned into policy layers
//! merged on top of the policy (each flag is its own layer, so an error names the flag).

use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::LoadedPolicy;
use super::diag::{COMMAND_LINE, Diagnostic, Diagnostics};
use super::path::KeyPath;

/// One override, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Override {
    /// `--bind SRC:DST`: a writable bind.
    Bind(String),
    /// `--ro-bind SRC:DST`: a read-only bind.
    RoBind(String),
    /// `--tmpfs DST`.
    Tmpfs(String),
    /// `--setenv NAME=VALUE`.
    SetEnv(String),
    /// `--unsetenv NAME`.
    UnsetEnv(String),
    /// `--chdir DIR`.
    Chdir(String),
    /// `--hostname NAME`.
    Hostname(String),
    /// `--net none|host|user`.
    Net(String),
    /// `--image REF`: the root is the image's layers (the policy's `rootfs.lower` goes).
    Image(String),
    /// `--publish [ADDR:]HOSTPORT:PORT[/udp]`.
    Publish(String),
    /// `--pty` (pty) or `--no-pty` (inherit).
    Terminal(String),
}

impl Override {
    /// The flag as the user typed it, for error messages.
    pub fn flag(&self) -> String {
        match self {
            Override::Bind(v) => format!("--bind {v}"),
            Override::RoBind(v) => format!("--ro-bind {v}"),
            Override::Tmpfs(v) => format!("--tmpfs {v}"),
            Override::SetEnv(v) => format!("--setenv {v}"),
            Override::UnsetEnv(v) => format!("--unsetenv {v}"),
            Override::Chdir(v) => format!("--chdir {v}"),
            Override::Hostname(v) => format!("--hostname {v}"),
            Override::Net(v) => format!("--net {v}"),
            Override::Image(v) => format!("--image {v}"),
            Override::Publish(v) => format!("--publish {v}"),
            Override::Terminal(v) if v == "pty" => "--pty".into(),
            Override::Terminal(_) => "--no-pty".into(),
        }
    }

    /// The policy fragment this override stands for. Relative bind sources resolve against
    /// `cwd`.
    pub fn to_value(&self, cwd: &Path) -> Result<Value, String> {
        let map = |pairs: Vec<(&str, Value)>| {
            Value::Mapping(
                pairs
                    .into_iter()
                    .map(|(k, v)| (Value::String(k.into()), v))
                    .collect::<Mapping>(),
            )
        };
        let s = |v: &str| Value::String(v.to_owned());
        Ok(match self {
            Override::Bind(v) | Override::RoBind(v) => {
                let (src, dst) = split_bind(v);
                let src = if src.starts_with('/') {
                    src.to_owned()
                } else {
                    cwd.join(src).to_string_lossy().into_owned()
                };
                let mut m = vec![("bind", s(&src)), ("to", s(dst.unwrap_or(&src)))];
                if matches!(self, Override::Bind(_)) {
                    m.push(("writable", Value::Bool(true)));
                }
                map(vec![("mounts", Value::Sequence(vec![map(m)]))])
            }
            Override::Tmpfs(dst) => map(vec![(
                "mounts",
                Value::Sequence(vec![map(vec![("tmpfs", s(dst))])]),
            )]),
            Override::SetEnv(kv) => {
                let Some((k, v)) = kv.split_once('=') else {
                    return Err("expected NAME=VALUE".into());
                };
                map(vec![("env", map(vec![("set", map(vec![(k, s(v))]))]))])
            }
            Override::UnsetEnv(k) => map(vec![(
                "env",
                map(vec![("unset", Value::Sequence(vec![s(k)]))]),
            )]),
            Override::Chdir(d) => map(vec![("cwd", s(d))]),
            Override::Hostname(h) => map(vec![("hostname", s(h))]),
            Override::Terminal(t) => map(vec![("terminal", s(t))]),
            Override::Image(r) => map(vec![("rootfs", map(vec![("image", s(r))]))]),
            // The map form merges with the policy's map (`user` keeps its allowlist).
            Override::Net(n) => match n.as_str() {
                "none" | "host" | "user" => map(vec![("network", map(vec![("mode", s(n))]))]),
                _ => return Err("expected `none`, `host` or `user`".into()),
            },
            Override::Publish(spec) => {
                let (host, sandbox, proto) = split_publish(spec)?;
                let port = match sandbox.parse::<u16>() {
                    Ok(p) => Value::Number(p.into()),
                    Err(_) => s(sandbox),
                };
                let mut entry = vec![("host", s(host)), ("sandbox", port)];
                if let Some(p) = proto {
                    entry.push(("proto", s(p)));
                }
                map(vec![(
                    "network",
                    map(vec![("ports", Value::Sequence(vec![map(entry)]))]),
                )])
            }
        })
    }
}

/// Splits `SRC:DST` at the last `:/`; without one, the destination is the source.
pub fn split_bind(v: &str) -> (&str, Option<&str>) {
    match v.rfind(":/") {
        Some(i) if i > 0 => (v.get(..i).unwrap_or(v), v.get(i + 1..)),
        _ => (v, None),
    }
}

/// `[ADDR:]HOSTPORT:PORT[/udp]` → (`[ADDR:]HOSTPORT`, `PORT`, the protocol if given).
pub fn split_publish(spec: &str) -> Result<(&str, &str, Option<&str>), String> {
    let usage = || "expected [ADDR:]HOSTPORT:PORT[/udp]".to_owned();
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((rest, p @ ("tcp" | "udp"))) => (rest, Some(p)),
        Some(_) => return Err(usage()),
        None => (spec, None),
    };
    let (host, sandbox) = rest.rsplit_once(':').ok_or_else(usage)?;
    if host.is_empty() || sandbox.is_empty() || host.ends_with(':') {
        return Err(usage());
    }
    Ok((host, sandbox, proto))
}

/// Applies overrides, in order, on top of a loaded policy.
pub fn apply(
    loaded: &mut LoadedPolicy,
    overrides: &[Override],
    cwd: &Path,
) -> Result<(), Diagnostics> {
    for o in overrides {
        let flag = o.flag();
        let value = o.to_value(cwd).map_err(|msg| {
            Diagnostics::from(Diagnostic {
                file: COMMAND_LINE.into(),
                pos: None,
                path: flag.clone(),
                message: msg,
            })
        })?;
        if let Override::UnsetEnv(var) = o {
            // `--unsetenv` also takes back what the policy's `env.set` gives.
            loaded.drop_key(&KeyPath::root().key("env").key("set").key(var))?;
        }
        if let Override::Image(_) = o {
            // The image is the root: the policy's own layers (the host's `/`) go.
            loaded.drop_key(&KeyPath::root().key("rootfs").key("lower"))?;
        }
        if let Override::Net(mode) = o {
            // `--net none|host` stands alone: the policy's allowlist, ports and resolvers
            // belong to `user`.
            if mode != "user" {
                loaded.drop_key(&KeyPath::root().key("network"))?;
            }
        }
        loaded.overlay(&flag, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("/a:/b", ("/a", Some("/b")))]
    #[case("/a", ("/a", None))]
    #[case("/x:y/z:/d", ("/x:y/z", Some("/d")))]
    #[case("rel:/d", ("rel", Some("/d")))]
    fn splits(#[case] input: &str, #[case] want: (&str, Option<&str>)) {
        assert_eq!(split_bind(input), want);
    }

    #[rstest]
    #[case(Override::RoBind("/etc/hostname:/h".into()), "mounts: [{bind: /etc/hostname, to: /h}]")]
    #[case(Override::Bind("data:/data".into()), "mounts: [{bind: /cwd/data, to: /data, writable: true}]")]
    #[case(Override::Tmpfs("/scratch".into()), "mounts: [{tmpfs: /scratch}]")]
    #[case(Override::SetEnv("A=b=c".into()), "env: {set: {A: b=c}}")]
    #[case(Override::UnsetEnv("A".into()), "env: {unset: [A]}")]
    #[case(Override::Chdir("/tmp".into()), "cwd: /tmp")]
    #[case(Override::Hostname("box".into()), "hostname: box")]
    #[case(Override::Net("host".into()), "network: {mode: host}")]
    #[case(Override::Net("user".into()), "network: {mode: user}")]
    #[case(Override::Publish("8080:80".into()), "network: {ports: [{host: '8080', sandbox: 80}]}")]
    #[case(Override::Publish("127.0.0.1:8080:80/udp".into()), "network: {ports: [{host: '127.0.0.1:8080', sandbox: 80, proto: udp}]}")]
    #[case(Override::Publish("[::1]:8080:80".into()), "network: {ports: [{host: '[::1]:8080', sandbox: 80}]}")]
    fn values(#[case] o: Override, #[case] want: &str) {
        let want: Value = serde_yaml::from_str(want).unwrap();
        assert_eq!(o.to_value(Path::new("/cwd")).unwrap(), want);
    }

    #[rstest]
    #[case(Override::SetEnv("novalue".into()))]
    #[case(Override::Net("wifi".into()))]
    #[case(Override::Publish("8080".into()))]
    #[case(Override::Publish("8080:80/sctp".into()))]
    #[case(Override::Publish(":80".into()))]
    #[case(Override::Publish("8080:".into()))]
    fn rejects(#[case] o: Override) {
        assert!(o.to_value(Path::new("/")).is_err());
    }
}
