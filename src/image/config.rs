//! What an image's config says the program should get by default: `Env`, `WorkingDir`,
//! `User`, `Entrypoint`, `Cmd`. The policy and the command line override each of them (see
//! [`crate::plan::image`]); kekkai reads nothing else of a config but the layers' `diff_ids`.

use oci_spec::image::ImageConfiguration;
use serde::Serialize;

use super::digest::Digest;
use super::{ImageError, Kind};

/// The largest config or manifest kekkai reads (real ones are a few KiB).
pub const MAX_JSON: u64 = 4 << 20;

/// The defaults of an image's config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Defaults {
    /// `Env`, as `NAME=VALUE` split at the first `=`.
    pub env: Vec<(String, String)>,
    /// `WorkingDir`.
    pub working_dir: Option<String>,
    /// `User`: `uid`, `uid:gid`, `name`, `name:group`.
    pub user: Option<String>,
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
}

impl Defaults {
    /// The command an image runs when the command line gives none: Entrypoint then Cmd.
    pub fn command(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }
}

/// A parsed config: its layers and its defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// The layers' diff_ids, bottom first (as the config lists them).
    pub diff_ids: Vec<Digest>,
    /// The defaults.
    pub defaults: Defaults,
    /// `os/architecture`.
    pub platform: String,
}

/// Parses a config blob.
pub fn parse(bytes: &[u8]) -> Result<Config, ImageError> {
    let config: ImageConfiguration = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::new(Kind::Malformed, format!("the image config: {e}")))?;
    if config.rootfs().typ() != "layers" {
        return Err(ImageError::new(
            Kind::Malformed,
            format!(
                "the image config: rootfs type `{}` (expected `layers`)",
                config.rootfs().typ()
            ),
        ));
    }
    let diff_ids = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| Digest::parse(d).map_err(|e| e.context("the image config's diff_ids")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut defaults = Defaults::default();
    if let Some(c) = config.config() {
        for var in c.env().iter().flatten() {
            let (k, v) = var.split_once('=').unwrap_or((var.as_str(), ""));
            if k.is_empty() || var.contains('\0') {
                return Err(ImageError::new(
                    Kind::Malformed,
                    format!("the image config: `{var}` is not NAME=VALUE"),
                ));
            }
            defaults.env.retain(|(name, _)| name != k);
            defaults.env.push((k.to_owned(), v.to_owned()));
        }
        defaults.working_dir = c.working_dir().clone().filter(|w| !w.is_empty());
        defaults.user = c.user().clone().filter(|u| !u.is_empty());
        defaults.entrypoint = c.entrypoint().clone().unwrap_or_default();
        defaults.cmd = c.cmd().clone().unwrap_or_default();
        if defaults
            .entrypoint
            .iter()
            .chain(&defaults.cmd)
            .any(|a| a.contains('\0'))
        {
            return Err(ImageError::new(
                Kind::Malformed,
                "the image config: a NUL byte in Entrypoint or Cmd",
            ));
        }
    }
    Ok(Config {
        diff_ids,
        defaults,
        platform: format!("{}/{}", config.os(), config.architecture()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_defaults_and_layers() {
        let json = br#"{"architecture":"amd64","os":"linux",
            "config":{"Env":["PATH=/bin","A=1=2","A=3"],"Entrypoint":["/bin/sh","-c"],"Cmd":["echo hi"],"WorkingDir":"/srv","User":"1000:1000"},
            "rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}}"#;
        let c = parse(json).unwrap();
        assert_eq!(c.diff_ids.len(), 1);
        assert_eq!(c.platform, "linux/amd64");
        assert_eq!(
            c.defaults.env,
            vec![("PATH".into(), "/bin".into()), ("A".into(), "3".into())]
        );
        assert_eq!(c.defaults.command(), vec!["/bin/sh", "-c", "echo hi"]);
        assert_eq!(c.defaults.working_dir.as_deref(), Some("/srv"));
        assert_eq!(c.defaults.user.as_deref(), Some("1000:1000"));
    }

    #[test]
    fn refuses_what_is_not_a_config() {
        assert_eq!(parse(b"{}").unwrap_err().kind, Kind::Malformed);
        let bad = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["md5:x"]}}"#;
        assert_eq!(parse(bad).unwrap_err().kind, Kind::Unsupported);
    }
}
