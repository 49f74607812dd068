//! `kekkai image pull`: an image from a registry speaking the OCI distribution API (token
//! authentication included), into the store. Every answer of the registry and of its token
//! service is read under a byte cap (`bounded`): manifests [`MAX_JSON`], tokens and error
//! bodies [`MAX_SMALL`], blobs their descriptor's size, refused at the cap (or at once when
//! a Content-Length says more), never read whole first. (oci-client reads manifests, tokens
//! and error bodies whole: only its reference parser is used.)
//!
//! The manifest and config are fetched raw and verified here (the manifest against the digest
//! the registry names, and against the reference's digest when the reference has one); each
//! layer blob the store lacks is written to a staging directory of the store through a writer
//! that refuses a byte more than its descriptor's size, then imported like a layout
//! ([`super::import::commit`]: digests and diff_ids verified again while unpacking). Plain
//! HTTP only for a loopback registry, and only when asked (`--insecure`). The tokio runtime
//! (one thread) exists only while a pull runs.

use std::io::Write;

use oci_client::Reference;
use oci_spec::image::{ImageIndex, ImageManifest};
use sha2::{Digest as _, Sha256};

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

/// The most of a token service's answer, or of an error answer, that is read.
pub const MAX_SMALL: u64 = 1 << 20;

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

fn net(url: &str) -> impl Fn(reqwest::Error) -> ImageError + '_ {
    move |e| {
        let mut text = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            text.push_str(&format!(": {s}"));
            src = s.source();
        }
        ImageError::new(Kind::Registry, format!("{url}: {text}"))
    }
}

/// Reads `res`'s body, refusing (before reading, if it says so in its Content-Length, else as
/// soon as it is exceeded) more than `limit` bytes: a registry's answer is never read whole
/// first. Dropping the response closes the connection.
async fn bounded(
    mut res: reqwest::Response,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>, ImageError> {
    let url = res.url().to_string();
    let too_large = |n: &str| {
        ImageError::new(
            Kind::TooLarge,
            format!("{what} ({url}): {n} than {limit} bytes, the most kekkai reads of it"),
        )
    };
    if let Some(n) = res.content_length()
        && n > limit
    {
        return Err(too_large(&format!("{n} bytes (Content-Length), more")));
    }
    let mut out = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(net(&url))? {
        if len64(out.len()).saturating_add(len64(chunk.len())) > limit {
            return Err(too_large("more"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The error for an answer other than 200, with (at most [`MAX_SMALL`] bytes of) its body: the
/// registry's error codes and messages, escaped.
async fn refused(res: reqwest::Response, what: &str) -> ImageError {
    let url = res.url().to_string();
    let status = res.status();
    let body = bounded(res, MAX_SMALL, what).await.unwrap_or_default();
    let mut codes = Vec::new();
    let mut detail = String::new();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
        && let Some(errors) = v.get("errors").and_then(|e| e.as_array())
    {
        for e in errors.iter().take(4) {
            let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
            codes.push(code.to_owned());
            detail.push_str(&format!("; {code}: {msg}"));
        }
    } else if !body.is_empty() {
        detail = format!(
            "; {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        );
    }
    let detail: String = detail.escape_debug().take(600).collect();
    let kind = if status == reqwest::StatusCode::NOT_FOUND
        || codes.iter().any(|c| {
            matches!(
                c.as_str(),
                "MANIFEST_UNKNOWN" | "NAME_UNKNOWN" | "BLOB_UNKNOWN"
            )
        }) {
        Kind::NotFound
    } else {
        Kind::Registry
    };
    ImageError::new(kind, format!("{what} ({url}): HTTP {status}{detail}"))
}

/// A registry's repository, spoken to through reqwest with every answer read under a cap.
struct Registry {
    http: reqwest::Client,
    /// `scheme://host[:port]/v2/repository`.
    base: String,
    /// `?ns=…` or nothing.
    ns: String,
    repository: String,
    insecure: bool,
    /// The Authorization header, once logged in.
    auth: Option<reqwest::header::HeaderValue>,
    /// The credentials, for a registry that asks for basic authentication.
    basic: Option<(String, String)>,
}

impl Registry {
    fn new(r: &Reference, insecure: bool) -> Result<Registry, ImageError> {
        let registry = r.resolve_registry();
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(30))
            .read_timeout(std::time::Duration::from_secs(300))
            .https_only(!insecure)
            .user_agent(concat!("kekkai/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(net(registry))?;
        Ok(Registry {
            http,
            base: format!(
                "{}://{registry}/v2/{}",
                if insecure { "http" } else { "https" },
                r.repository()
            ),
            ns: r
                .namespace()
                .map(|ns| format!("?ns={ns}"))
                .unwrap_or_default(),
            repository: r.repository().to_owned(),
            insecure,
            auth: None,
            basic: None,
        })
    }

    fn get(&self, url: &str) -> reqwest::RequestBuilder {
        let req = self.http.get(url);
        match (&self.auth, &self.basic) {
            (Some(a), _) => req.header(reqwest::header::AUTHORIZATION, a.clone()),
            (None, Some((u, p))) => req.basic_auth(u, Some(p)),
            (None, None) => req,
        }
    }

    /// Asks `/v2/` how to authenticate and, for a bearer challenge, gets a pull token from the
    /// token service it names (with the credentials, if any): the token answer read under
    /// [`MAX_SMALL`]. A basic challenge takes the credentials as they are.
    async fn login(&mut self, creds: Option<&(String, String)>) -> Result<(), ImageError> {
        let root = match self.base.find("/v2/") {
            Some(at) => format!("{}/v2/", &self.base[..at]),
            None => return Err(ImageError::new(Kind::Registry, "no /v2/ in the URL")),
        };
        let res = self.http.get(&root).send().await.map_err(net(&root))?;
        let Some(header) = res.headers().get(reqwest::header::WWW_AUTHENTICATE) else {
            return Ok(());
        };
        let header = header.to_str().unwrap_or_default().to_owned();
        drop(res);
        let mut bearer = None;
        for c in http_auth::parser::ChallengeParser::new(&header).flatten() {
            if c.scheme.eq_ignore_ascii_case("Bearer") {
                let param = |name: &str| {
                    c.params
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.to_unescaped())
                };
                if let Some(realm) = param("realm") {
                    bearer = Some((realm, param("service")));
                    break;
                }
            }
        }
        let Some((realm, service)) = bearer else {
            self.basic = creds.cloned();
            return Ok(());
        };
        let url = reqwest::Url::parse(&realm).map_err(|e| {
            ImageError::new(
                Kind::Registry,
                format!("the token service {realm:?} named by {root}: {e}"),
            )
        })?;
        let plain_ok = self.insecure && url.host_str().is_some_and(is_loopback);
        if url.scheme() != "https" && !(url.scheme() == "http" && plain_ok) {
            return Err(ImageError::new(
                Kind::Registry,
                format!(
                    "the token service {realm:?} named by {root}: only https (plain HTTP only on a loopback address with --insecure)"
                ),
            ));
        }
        let scope = format!("repository:{}:pull", self.repository);
        let mut query = vec![("scope", scope.as_str())];
        if let Some(s) = &service {
            query.push(("service", s.as_str()));
        }
        let mut req = self.http.get(url).query(&query);
        if let Some((u, p)) = creds {
            req = req.basic_auth(u, Some(p));
        }
        let res = req.send().await.map_err(net(&realm))?;
        if res.status() != reqwest::StatusCode::OK {
            return Err(refused(res, "the token service").await);
        }
        let body = bounded(res, MAX_SMALL, "the token service's answer").await?;
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: Token = serde_json::from_slice(&body).map_err(|e| {
            ImageError::new(
                Kind::Registry,
                format!("the token service's answer ({realm}): {e}"),
            )
        })?;
        let Some(token) = t.token.or(t.access_token) else {
            return Err(ImageError::new(
                Kind::Registry,
                format!("the token service's answer ({realm}) has no token"),
            ));
        };
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| {
                ImageError::new(
                    Kind::Registry,
                    format!("the token service's answer ({realm}): not a header value"),
                )
            })?;
        value.set_sensitive(true);
        self.auth = Some(value);
        Ok(())
    }

    /// The manifest `tag_or_digest` names, and the digest the registry gave for it: at most
    /// [`MAX_JSON`] bytes read.
    async fn manifest(&self, tag_or_digest: &str) -> Result<(Vec<u8>, String), ImageError> {
        let url = format!("{}/manifests/{tag_or_digest}{}", self.base, self.ns);
        let res = self
            .get(&url)
            .header(reqwest::header::ACCEPT, ACCEPT.join(", "))
            .send()
            .await
            .map_err(net(&url))?;
        if res.status() != reqwest::StatusCode::OK {
            return Err(refused(res, "the manifest").await);
        }
        let header = res
            .headers()
            .get("docker-content-digest")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = bounded(res, MAX_JSON, "the manifest").await?;
        Ok((bytes, header))
    }

    /// Blob `digest` into `out`: no more than `size` bytes, and their digest must be `digest`.
    async fn blob(
        &self,
        digest: &Digest,
        size: u64,
        out: &mut std::fs::File,
    ) -> Result<(), ImageError> {
        let url = format!("{}/blobs/{digest}{}", self.base, self.ns);
        let mut res = self.get(&url).send().await.map_err(net(&url))?;
        if res.status() != reqwest::StatusCode::OK {
            return Err(refused(res, &format!("blob {digest}")).await);
        }
        let over = |n: &str| {
            ImageError::new(
                Kind::SizeMismatch,
                format!("blob {digest} ({url}): {n} than its descriptor's {size} bytes"),
            )
        };
        if let Some(n) = res.content_length()
            && n > size
        {
            return Err(over(&format!("{n} bytes (Content-Length), more")));
        }
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        while let Some(chunk) = res.chunk().await.map_err(net(&url))? {
            written = written.saturating_add(len64(chunk.len()));
            if written > size {
                return Err(over("more"));
            }
            hasher.update(&chunk);
            out.write_all(&chunk).map_err(|e| {
                ImageError::new(
                    Kind::Store,
                    format!("writing blob {digest}: {}", describe(&e)),
                )
            })?;
        }
        let got = format!("sha256:{}", super::digest::hex(&hasher.finalize()));
        if got != digest.as_str() {
            return Err(ImageError::new(
                Kind::DigestMismatch,
                format!("blob {digest} ({url}): {written} bytes whose digest is {got}"),
            ));
        }
        Ok(())
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
    if pull.insecure && !is_loopback(&registry) {
        return Err(ImageError::new(
            Kind::Usage,
            format!(
                "--insecure (plain HTTP) is only for a registry on a loopback address, not {registry}"
            ),
        ));
    }
    install_crypto();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            ImageError::new(
                Kind::Registry,
                format!("starting the runtime: {}", describe(&e)),
            )
        })?;
    let mut client = Registry::new(&r, pull.insecure)?;
    rt.block_on(client.login(pull.credentials.as_ref()))?;
    let named =
        |e: ImageError, what: &str| ImageError::new(e.kind, format!("{what}: {}", e.message));

    // The manifest (through an index, if the reference names one).
    let first = r.digest().or(r.tag()).unwrap_or("latest");
    let (mut bytes, header) = rt
        .block_on(client.manifest(first))
        .map_err(|e| named(e, &format!("the manifest of {reference}")))?;
    let mut digest = checked(&bytes, &header, r.digest())?;
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
        let want = Digest::parse(entry.digest().as_ref())?;
        let (b, d) = rt
            .block_on(client.manifest(want.as_str()))
            .map_err(|e| named(e, &format!("manifest {want}")))?;
        bytes = b;
        digest = checked(&bytes, &d, Some(want.as_str()))?;
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
        let mut out = std::fs::File::from(fd);
        rt.block_on(client.blob(digest, size, &mut out))
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
/// registry's word, and the download stops at each one ([`Registry::blob`]): without this check a
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
