//! Images: OCI layers as the read-only lower layers of the sandbox's overlay root.
//!
//! An image is a list of layer directories plus the defaults of its config (`Env`,
//! `WorkingDir`, `User`, `Entrypoint`, `Cmd`). The plan resolves `rootfs.image` to those
//! directories ([`crate::plan::image`]); the launch mounts them like any other lower layer, with
//! the overlay option `userxattr` so that the layers' opaque directories (`user.overlay.opaque`)
//! count. Nothing in the launch knows where a layer came from.
//!
//! Getting layers into the store is a separate, offline step with its own rules, because an
//! archive is hostile input:
//!
//! - [`import`] reads an OCI image layout, an OCI archive or a docker archive (`skopeo copy`,
//!   `podman save`, `docker save`); [`pull`] fetches one from a registry (feature `pull`).
//! - Every blob is verified against its digest, and every layer's uncompressed stream against
//!   the config's `diff_id` ([`digest`], [`blob`]).
//! - [`unpack`] creates each file itself through descriptors below a fresh directory (never
//!   following a symbolic link), turns OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`) into overlayfs
//!   whiteouts (0/0 character devices) and opaque directories, and refuses what a layer has no
//!   business holding: absolute paths, `..`, links out of the layer, device nodes and setuid
//!   files in an unprivileged store, more bytes or entries than the caps.
//! - [`store`] keeps layers by `diff_id` and images by config digest under a directory only the
//!   caller can enter; a layer appears there by one atomic rename, or not at all. A running
//!   sandbox holds a shared lock on its image, which `image rm` and `image prune` respect.

pub mod archive;
pub mod blob;
pub mod budget;
pub mod config;
pub mod digest;
pub mod files;
pub mod import;
#[cfg(feature = "pull")]
pub mod pull;
pub mod reference;
pub mod store;
pub mod tree;
pub mod unpack;

use serde::Serialize;

/// Why an image operation failed, for people (the message) and for programs and tests (the
/// kind, a stable name printed by `--json`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ImageError {
    /// What kind of failure.
    pub kind: Kind,
    /// What happened, with the file, entry or digest concerned.
    pub message: String,
}

/// The kinds of [`ImageError`]. The names (`kebab-case`) are part of the command-line interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// An archive entry with an absolute path.
    AbsolutePath,
    /// An archive entry with `..` in its path.
    ParentDir,
    /// A symbolic link whose relative target climbs out of the layer, or an entry whose path
    /// goes through a symbolic link.
    LinkOutside,
    /// A hard link to something that is not an earlier file of the same layer.
    HardlinkOutside,
    /// A device node where the store can't hold one.
    Device,
    /// A setuid or setgid file in an unprivileged store.
    Setuid,
    /// More uncompressed bytes than the cap (a decompression bomb, or just too big).
    TooLarge,
    /// More entries than the cap, or a path nested deeper than the cap.
    TooManyEntries,
    /// An entry that no layer may hold (an unknown type, a 0/0 device, a malformed name).
    BadEntry,
    /// A blob or layer whose content does not match its digest.
    DigestMismatch,
    /// A blob whose size does not match its descriptor.
    SizeMismatch,
    /// A manifest, index or config that can't be read as one.
    Malformed,
    /// Something valid that kekkai does not read (a media type, an algorithm, a format).
    Unsupported,
    /// No image by that name or digest.
    NotFound,
    /// A digest prefix that names more than one image.
    Ambiguous,
    /// The image is used by a running sandbox.
    InUse,
    /// The store itself: its directory, its locks, its files.
    Store,
    /// Reading the archive or layout given.
    Source,
    /// Talking to a registry.
    Registry,
    /// A command-line value (a reference, a name).
    Usage,
}

impl Kind {
    /// The stable name (`absolute-path`, `digest-mismatch`, ...).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

impl ImageError {
    /// An error of `kind`.
    pub fn new(kind: Kind, message: impl Into<String>) -> ImageError {
        ImageError {
            kind,
            message: message.into(),
        }
    }

    /// The same error with `context: ` in front of the message.
    pub fn context(self, context: impl std::fmt::Display) -> ImageError {
        ImageError {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }
}

/// An I/O error as one short phrase: `no such file or directory (ENOENT)`.
pub fn describe(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let errno = nix::errno::Errno::from_raw(code);
            format!("{} ({errno:?})", errno.desc().to_lowercase())
        }
        None => e.to_string(),
    }
}

/// An errno as one short phrase.
pub fn describe_errno(e: nix::errno::Errno) -> String {
    format!("{} ({e:?})", e.desc().to_lowercase())
}

/// Shorthand: a store error from an errno, with what was being done.
pub(crate) fn store_err(what: impl std::fmt::Display, e: nix::errno::Errno) -> ImageError {
    ImageError::new(Kind::Store, format!("{what}: {}", describe_errno(e)))
}
