//! `kekkai image pull`: an image from a registry speaking the OCI distribution API, through
//! `oci-client` (token authentication included), into the store.
//!
//! The manifest and config are fetched raw and verified here (the manifest against the digest
//! the registry names, and against the reference's digest when the reference has one); each
//! layer blob the store lacks is written to a staging directory of the store through a writer
//! that refuses a byte more than its descriptor's size, then imported like a layout
//! ([`super::import::commit`]: digests and diff_ids verified again while unpacking). Plain
//! HTTP only for a loopback registry, and only when asked (`--insecure`). The tokio runtime
//! (one thread) exists only while a pull runs.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use oci_spec::image::{ImageIndex, ImageManifest};

use super::archive::BlobDir;
use super::config::{self, MAX_JSON};
use super::digest::Digest;
use super::import::{self, Imported, Options};
use super::store::Store;
use super::{ImageError, Kind, describe};
use crate::sys::abi::len64;

/// What a pull may do beyond an import.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Plain HTTP (the registry must be on a loopback address).
    pub insecure: bool,
    /// Basic credentials (user, password) for the registry's token service.
    pub credentials: Option<(String, String)>,
}

const ACCEPT: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Is `registry` (`host[:port]`) a loopback address?
pub fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        match registry.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => registry,
        }
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn registry_err(what: &str, e: OciDistributionError) -> ImageError {
    let kind = match &e {
        OciDistributionError::DigestError(_) => Kind::DigestMismatch,
        OciDistributionError::IoError(io) if super::digest::exceeded(io).is_some() => {
            Kind::SizeMismatch
        }
        OciDistributionError::ImageManifestNotFoundError(_) => Kind::NotFound,
        OciDistributionError::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|x| {
                matches!(
                    x.code,
                    OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown
                )
            }) =>
        {
            Kind::NotFound
        }
        _ => Kind::Registry,
    };
    ImageError::new(kind, format!("{what}: {e}"))
}

/// A file written synchronously behind tokio's `AsyncWrite` (the runtime has one thread and
/// nothing else to do), refusing more than `limit` bytes.
struct CappedFile {
    file: std::fs::File,
    written: u64,
    limit: u64,
}

impl tokio::io::AsyncWrite for CappedFile {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let after = self.written.saturating_add(len64(buf.len()));
        if after > self.limit {
            return Poll::Ready(Err(std::io::Error::other(super::digest::Exceeded(
                self.limit,
            ))));
        }
        let r = self.file.write(buf);
        if let Ok(n) = r {
            self.written = self.written.saturating_add(len64(n));
        }
        Poll::Ready(r)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Pulls `reference` into the store.
pub fn pull(
    store: &Store,
    reference: &str,
    opts: &Options,
    pull: &PullOptions,
) -> Result<Imported, ImageError> {
    let r: Reference = reference.parse().map_err(|e| {
        ImageError::new(
            Kind::Usage,
            format!("`{reference}` is not an image reference: {e}"),
        )
    })?;
    let registry = r.resolve_registry().to_owned();
    let protocol = if pull.insecure {
        if !is_loopback(&registry) {
            return Err(ImageError::new(
                Kind::Usage,
                format!(
                    "--insecure (plain HTTP) is only for a registry on a loopback address, not {registry}"
                ),
            ));
        }
        ClientProtocol::HttpsExcept(vec![registry.clone()])
    } else {
        ClientProtocol::Https
    };
    install_crypto();
    let client = Client::new(ClientConfig {
        protocol,
        // kekkai picks the platform itself, below.
        platform_resolver: None,
        connect_timeout: Some(std::time::Duration::from_secs(30)),
        read_timeout: Some(std::time::Duration::from_secs(300)),
        ..Default::default()
    });
    let auth = match &pull.credentials {
        Some((u, p)) => RegistryAuth::Basic(u.clone(), p.clone()),
        None => RegistryAuth::Anonymous,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            ImageError::new(
                Kind::Registry,
                format!("starting the runtime: {}", describe(&e)),
            )
        })?;

    // The manifest (through an index, if the reference names one).
    let (bytes, digest) = rt
        .block_on(client.pull_manifest_raw(&r, &auth, ACCEPT))
        .map_err(|e| registry_err(&format!("the manifest of {reference}"), e))?;
    let mut bytes = bytes.to_vec();
    let mut digest = checked(&bytes, &digest, r.digest())?;
    if is_index(&bytes)? {
        let index: ImageIndex = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::new(Kind::Malformed, format!("index {digest}: {e}")))?;
        let Some(entry) = index.manifests().iter().find(|m| {
            m.platform().as_ref().is_some_and(|p| {
                p.os().to_string() == "linux" && p.architecture().to_string() == import::arch()
            })
        }) else {
            return Err(ImageError::new(
                Kind::NotFound,
                format!("{reference} has no image for linux/{}", import::arch()),
            ));
        };
        let want = entry.digest().to_string();
        let by_digest = r.clone_with_digest(want.clone());
        let (b, d) = rt
            .block_on(client.pull_manifest_raw(&by_digest, &auth, ACCEPT))
            .map_err(|e| registry_err(&format!("manifest {want}"), e))?;
        bytes = b.to_vec();
        digest = checked(&bytes, &d, Some(&want))?;
    }
    let manifest: ImageManifest = serde_json::from_slice(&bytes)
        .map_err(|e| ImageError::new(Kind::Malformed, format!("manifest {digest}: {e}")))?;

    // The blobs: held in a staging directory of the store, which no `prune` removes meanwhile.
    let _lock = store.lock(false)?;
    let staged = store.staging()?;
    let dir = staged
        .fd()
        .try_clone_to_owned()
        .map_err(|e| ImageError::new(Kind::Store, format!("dup: {}", describe(&e))))?;
    for d in ["blobs", "blobs/sha256"] {
        nix::sys::stat::mkdirat(&dir, d, nix::sys::stat::Mode::from_bits_truncate(0o700))
            .map_err(|e| super::store_err(format!("mkdir {d}"), e))?;
    }
    let fetch = |digest: &Digest, size: u64| -> Result<(), ImageError> {
        let fd = nix::fcntl::openat(
            &dir,
            import::blob_path(digest).as_str(),
            nix::fcntl::OFlag::O_WRONLY
                | nix::fcntl::OFlag::O_CREAT
                | nix::fcntl::OFlag::O_EXCL
                | nix::fcntl::OFlag::O_NOFOLLOW
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| super::store_err("creating a blob file", e))?;
        let out = CappedFile {
            file: std::fs::File::from(fd),
            written: 0,
            limit: size,
        };
        rt.block_on(client.pull_blob(&r, digest.as_str(), out))
            .map_err(|e| registry_err(&format!("blob {digest}"), e))
    };
    let cfg = manifest.config();
    let cfg_digest = Digest::parse(cfg.digest().as_ref())?;
    if cfg.size() > MAX_JSON {
        return Err(ImageError::new(
            Kind::TooLarge,
            format!(
                "config {cfg_digest}: {} bytes (at most {MAX_JSON})",
                cfg.size()
            ),
        ));
    }
    fetch(&cfg_digest, cfg.size())?;
    let src = BlobDir {
        dir: dir
            .try_clone()
            .map_err(|e| ImageError::new(Kind::Store, format!("dup: {}", describe(&e))))?,
        what: format!("registry {reference}"),
    };
    let config_bytes = super::archive::read_all(&src, &import::blob_path(&cfg_digest), MAX_JSON)?;
    let parsed = config::parse(&config_bytes)?;
    let wanted: Vec<_> = manifest
        .layers()
        .iter()
        .zip(&parsed.diff_ids)
        .filter(|(_, diff_id)| !store.has_layer(diff_id))
        .map(|(layer, _)| layer)
        .collect();
    let sizes: Vec<u64> = wanted.iter().map(|l| l.size()).collect();
    fits(manifest.layers().len(), &sizes, opts.max_size)?;
    for layer in wanted {
        let d = Digest::parse(layer.digest().as_ref())?;
        fetch(&d, layer.size())?;
    }
    let mut plan = import::from_manifest(&src, &manifest, Some(digest), None)?;
    plan.names = super::reference::normalize(reference).into_iter().collect();
    let imported = import::commit(store, &src, plan, opts)?;
    drop(staged);
    Ok(imported)
}

/// The blobs a manifest lists must fit the import's caps before a byte of them is written to
/// the store's disk: at most [`import::MAX_LAYERS`] layers, and blobs that add up to no more
/// than `--max-size` (a compressed layer is smaller than what it unpacks to). The sizes are the
/// registry's word, and the download stops at each one ([`CappedFile`]): without this check a
/// registry could declare any size, or any number of layers, and fill the disk.
fn fits(layers: usize, to_fetch: &[u64], max_size: u64) -> Result<(), ImageError> {
    if layers > import::MAX_LAYERS {
        return Err(ImageError::new(
            Kind::Unsupported,
            format!(
                "the manifest lists {layers} layers (kekkai takes at most {})",
                import::MAX_LAYERS
            ),
        ));
    }
    let total = to_fetch.iter().fold(0u64, |sum, s| sum.saturating_add(*s));
    if total > max_size {
        return Err(ImageError::new(
            Kind::TooLarge,
            format!(
                "the layers to download add up to {total} bytes, more than the size cap ({max_size} bytes, --max-size)"
            ),
        ));
    }
    Ok(())
}

/// The manifest's bytes match the digest the registry gave and, if any, the one asked for.
fn checked(bytes: &[u8], header: &str, asked: Option<&str>) -> Result<Digest, ImageError> {
    if len64(bytes.len()) > MAX_JSON {
        return Err(ImageError::new(
            Kind::TooLarge,
            format!("a manifest of {} bytes (at most {MAX_JSON})", bytes.len()),
        ));
    }
    let got = Digest::of(bytes);
    for want in [Some(header), asked].into_iter().flatten() {
        if want.starts_with("sha256:") && want != got.as_str() {
            return Err(ImageError::new(
                Kind::DigestMismatch,
                format!("the manifest is {got}, the registry said {want}"),
            ));
        }
    }
    Ok(got)
}

fn is_index(bytes: &[u8]) -> Result<bool, ImageError> {
    let v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::new(Kind::Malformed, format!("the manifest: {e}")))?;
    let media = v.get("mediaType").and_then(|m| m.as_str()).unwrap_or("");
    Ok(media.ends_with("index.v1+json")
        || media.ends_with("manifest.list.v2+json")
        || (media.is_empty() && v.get("manifests").is_some()))
}

/// rustls needs a process-wide crypto provider: ring (no C build, unlike aws-lc).
fn install_crypto() {
    // `ring::default_provider` is marked deprecated for lacking post-quantum key exchange; ring
    // is what keeps this build free of C toolchains. A second install (already done) is fine.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let _ = provider.install_default();
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::fits(3, 1 << 20, None)]
    #[case::one_layer_too_big(1, (1 << 30) + 1, Some(Kind::TooLarge))]
    #[case::together_too_big(4, 300 << 20, Some(Kind::TooLarge))]
    #[case::sizes_overflow(2, u64::MAX, Some(Kind::TooLarge))]
    #[case::too_many_layers(129, 1, Some(Kind::Unsupported))]
    fn the_layers_must_fit_the_caps_before_they_come(
        #[case] layers: usize,
        #[case] size: u64,
        #[case] want: Option<Kind>,
    ) {
        let sizes = vec![size; layers];
        assert_eq!(fits(layers, &sizes, 1 << 30).err().map(|e| e.kind), want);
    }

    #[rstest]
    #[case("127.0.0.1:5000", true)]
    #[case("127.3.4.5", true)]
    #[case("localhost:80", true)]
    #[case("[::1]:5000", true)]
    #[case("registry.example:5000", false)]
    #[case("10.0.0.1:5000", false)]
    #[case("[fd00::1]:5000", false)]
    fn loopback(#[case] registry: &str, #[case] want: bool) {
        assert_eq!(is_loopback(registry), want);
    }
}
