//! `rootfs.image`: an image of the caller's store as the root's read-only layers, and its
//! config's defaults under the policy's own values.
//!
//! The image resolves here, once: its layer directories become the root's lower layers (top
//! first), and the plan holds a shared lock on the image for as long as it lives, so `kekkai
//! image rm` refuses an image a sandbox is using. From then on the launch sees only
//! directories (mounted with the overlay option `userxattr`, which reads the layers' opaque
//! markers).
//!
//! What the config gives is a default, below the policy and the command line:
//! - `Env`: over the caller's kept variables and the default PATH, under `env.set`/`--setenv`;
//!   `env.unset`/`--unsetenv` removes an image variable too;
//! - `WorkingDir`: when the policy sets no `cwd` (the shipped `default` sets `${PWD}`);
//! - `User`: when the policy sets no `identity` (the shipped `default` runs as nobody);
//! - `Entrypoint` and `Cmd`: the command, when the command line gives none.
//!
//! With a network (`network: host`), the host's /etc/resolv.conf and /etc/hosts are bound
//! read-only over the image's. Landlock's `read` list narrows what of the host's tree a
//! program reads; an image's tree holds nothing of the host's, so its root is readable and
//! executable throughout.

use std::path::PathBuf;

use super::diags::Diags;
use super::units::normalize_abs;
use crate::caller::Caller;
use crate::image::config::Defaults;
use crate::image::digest::Digest;
use crate::image::reference::Reference;
use crate::image::store::{self, Lease, Store};
use crate::policy::KeyPath;
use crate::policy::model::{Env, Id, Identity, Rootfs};

/// The image a plan's root is made of.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImagePlan {
    /// The reference as the policy or `--image` wrote it.
    pub reference: String,
    /// The image id (its config's digest).
    pub id: String,
    /// Its names in the store.
    pub names: Vec<String>,
    /// Its manifest's digest, when it came with one.
    pub manifest: Option<String>,
    /// Its layers, top first.
    pub layers: Vec<LayerPlan>,
    /// Its config's defaults.
    pub defaults: Defaults,
    /// The store it is in.
    pub store: PathBuf,
    /// The shared lock that keeps it in the store while the plan lives; a plan read back from
    /// its record (a handed-over plan, `enter`'s) holds none: the process that handed it on,
    /// or the sandbox's own supervisor, holds it.
    #[serde(skip)]
    pub lease: Option<Lease>,
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerPlan {
    /// Its diff_id.
    pub diff_id: String,
    /// Its directory in the store.
    pub path: PathBuf,
}

/// `rootfs.image`, the key every error and mount of an image names.
pub fn key() -> KeyPath {
    KeyPath::root().key("rootfs").key("image")
}

/// Resolves `rootfs.image` in the caller's store.
pub fn plan(spec: Option<&Rootfs>, caller: &Caller, d: &mut Diags) -> Option<ImagePlan> {
    let text = spec.and_then(|r| r.image.as_deref())?;
    if spec.is_some_and(|r| r.lower.is_some()) {
        d.push(
            key(),
            "`rootfs.image` and `rootfs.lower` both give the root's layers: drop `lower` (in a \
             policy that extends another, `replace: [rootfs.lower]`; `--image` does that itself)",
        );
        return None;
    }
    match resolve(text, caller) {
        Ok(p) => Some(p),
        Err(e) => {
            d.push(key(), format!("`{text}`: {}", e.message));
            None
        }
    }
}

fn resolve(text: &str, caller: &Caller) -> Result<ImagePlan, crate::image::ImageError> {
    let reference = Reference::parse(text)?;
    let env = |k: &str| caller.env_var(k).map(str::to_owned);
    let store = Store::open(
        &store::default_path(caller.euid, &env, &caller.home),
        caller.euid,
        false,
    )?;
    // The lookup and the lease under the store's shared lock: no `rm` comes in between.
    let lock = store.lock(false)?;
    let id = store.resolve(&reference)?;
    let lease = store.lease(&id)?;
    drop(lock);
    let image = store.image(&id)?;
    let mut layers = Vec::new();
    for l in image.record.layers.iter().rev() {
        let diff_id = Digest::parse(&l.diff_id)?;
        // Present, as a directory the store made (no link followed).
        store.open_layer(&diff_id)?;
        layers.push(LayerPlan {
            diff_id: l.diff_id.clone(),
            path: store.layer_path(&diff_id),
        });
    }
    Ok(ImagePlan {
        reference: text.to_owned(),
        id: id.to_string(),
        names: image.names,
        manifest: image.record.manifest,
        layers,
        defaults: image.config.defaults,
        store: store.path().to_path_buf(),
        lease: Some(lease),
    })
}

/// The image's `User` as a policy identity (`uid`, `uid:gid`, `name`, `name:group`), for a
/// policy that sets none.
pub fn identity(img: &ImagePlan) -> Option<Identity> {
    let user = img.defaults.user.as_deref()?;
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    Some(Identity {
        uid: Some(Id(u.to_owned())),
        gid: g.map(|g| Id(g.to_owned())),
        ..Identity::default()
    })
}

/// The working directory the image asks for, for a policy that sets none.
pub fn cwd(img: &ImagePlan, d: &mut Diags) -> Option<PathBuf> {
    let w = img.defaults.working_dir.as_deref()?;
    match normalize_abs(w) {
        Ok(p) => Some(p),
        Err(e) => {
            d.push(key(), format!("the image's WorkingDir: {e}"));
            None
        }
    }
}

/// The variables of the image's `Env` that stand: those the policy's `env.set` and `env.unset`
/// do not name. They go over the caller's kept variables and the default PATH
/// ([`super::EnvPlan::put`]).
pub fn env_defaults<'a>(img: &'a ImagePlan, spec: Option<&Env>) -> Vec<(&'a str, &'a str)> {
    let set = spec.and_then(|e| e.set.as_ref());
    let unset = spec.and_then(|e| e.unset.as_ref());
    img.defaults
        .env
        .iter()
        .filter(|(k, _)| {
            !(set.is_some_and(|s| s.contains_key(k))
                || unset.is_some_and(|u| u.iter().any(|n| n == k)))
        })
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(defaults: Defaults) -> ImagePlan {
        // A lease on a directory of our own (nothing else locks it).
        let dir = std::fs::File::open(std::env::temp_dir()).unwrap();
        let lease = Lease::hold(std::os::fd::OwnedFd::from(dir)).unwrap();
        ImagePlan {
            reference: "x".into(),
            id: String::new(),
            names: Vec::new(),
            manifest: None,
            layers: Vec::new(),
            defaults,
            store: PathBuf::new(),
            lease: Some(lease),
        }
    }

    #[test]
    fn env_defaults_sit_under_the_policy() {
        let image = img(Defaults {
            env: vec![
                ("PATH".into(), "/bin".into()),
                ("A".into(), "image".into()),
                ("B".into(), "image".into()),
                ("C".into(), "image".into()),
            ],
            ..Defaults::default()
        });
        let spec = Env {
            set: Some(
                [("A".to_owned(), "policy".to_owned())]
                    .into_iter()
                    .collect(),
            ),
            unset: Some(vec!["B".into()]),
            ..Env::default()
        };
        assert_eq!(
            env_defaults(&image, Some(&spec)),
            [("PATH", "/bin"), ("C", "image")]
        );
        assert_eq!(env_defaults(&image, None).len(), 4);
    }

    #[test]
    fn user_becomes_an_identity() {
        let with = |u: &str| {
            identity(&img(Defaults {
                user: Some(u.into()),
                ..Defaults::default()
            }))
            .map(|i| (i.uid.map(|x| x.0), i.gid.map(|x| x.0)))
        };
        assert_eq!(
            with("1000:1000"),
            Some((Some("1000".into()), Some("1000".into())))
        );
        assert_eq!(with("nginx"), Some((Some("nginx".into()), None)));
        assert_eq!(identity(&img(Defaults::default())), None);
    }
}
