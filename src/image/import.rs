//! `kekkai image import`: an OCI image layout, an OCI archive or a docker archive into the store.
//!
//! The chain of trust runs from what the user chose (a manifest, by the index's entry or a
//! docker archive's `manifest.json`) through digests: the manifest's bytes against the index's
//! digest, the config's and each layer blob's against the manifest's, each layer's uncompressed
//! stream against the config's `diff_ids`. A docker archive has no manifest digests: its layers
//! are checked against the config's `diff_ids`, and its config against the digest in its name.
//! Every layer is unpacked into a staging directory and verified before any of them is renamed
//! into place, and the image is named last: a refused archive leaves nothing in the store.

use oci_spec::image::{ImageIndex, ImageManifest, MediaType};
use serde::{Deserialize, Serialize};

use super::archive::{self, Source};
use super::config::{self, MAX_JSON};
use super::digest::Digest;
use super::files::now;
use super::reference;
use super::store::{ImageRecord, LayerRecord, Store};
use super::unpack::{self, Rules};
use super::{ImageError, Kind};

/// The most layers an image may have (the kernel allows 500 lower layers; a mount's options
/// are limited to a page).
pub const MAX_LAYERS: usize = 128;
/// Default cap on an image's uncompressed size.
pub const DEFAULT_MAX_SIZE: u64 = 16 << 30;
/// Default cap on an image's number of archive entries.
pub const DEFAULT_MAX_ENTRIES: u64 = 1_000_000;

/// What an import may do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Name the image this (`NAME[:TAG]`) instead of the names the archive gives.
    pub name: Option<String>,
    /// Which image of a layout or archive holding several (its ref name or tag).
    pub select: Option<String>,
    /// Drop setuid/setgid bits in an unprivileged store instead of refusing.
    pub strip_setid: bool,
    /// Cap on uncompressed bytes.
    pub max_size: u64,
    /// Cap on entries.
    pub max_entries: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            name: None,
            select: None,
            strip_setid: false,
            max_size: DEFAULT_MAX_SIZE,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    /// The image id.
    pub id: String,
    /// The names it got.
    pub names: Vec<String>,
    /// Its layers, bottom first: diff_id and whether this import unpacked it (else the store
    /// had it).
    pub layers: Vec<(String, bool)>,
    /// Uncompressed bytes unpacked.
    pub bytes: u64,
    /// Files whose setuid/setgid bits were dropped.
    pub stripped: u64,
}

/// The layers of an image to import, bottom first, and how to find each blob.
pub struct Plan {
    /// The config blob.
    pub config: Vec<u8>,
    /// The manifest's digest, when there is one.
    pub manifest: Option<Digest>,
    /// Per layer: the blob's path in the source, its digest and size when a manifest gives
    /// them.
    pub layers: Vec<(String, Option<(Digest, u64)>)>,
    /// Names the source gives the image.
    pub names: Vec<String>,
}

/// Imports `path` (a directory: an OCI layout; a file: an OCI or docker archive).
pub fn import(
    store: &Store,
    path: &std::path::Path,
    opts: &Options,
) -> Result<Imported, ImageError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        ImageError::new(
            Kind::Source,
            format!("{}: {}", path.display(), super::describe(&e)),
        )
    })?;
    if meta.is_dir() {
        let src = archive::LayoutDir::open(path)?;
        let plan = oci_plan(&src, opts.select.as_deref())?;
        return commit(store, &src, plan, opts);
    }
    let mut src = archive::TarArchive::open(path)?;
    if src.has("index.json") {
        src.kind = "oci-archive";
        let plan = oci_plan(&src, opts.select.as_deref())?;
        commit(store, &src, plan, opts)
    } else if src.has("manifest.json") {
        src.kind = "docker-archive";
        let plan = docker_plan(&src, opts.select.as_deref())?;
        commit(store, &src, plan, opts)
    } else {
        Err(ImageError::new(
            Kind::Unsupported,
            format!(
                "{}: neither an OCI archive (index.json) nor a docker archive (manifest.json)",
                path.display()
            ),
        ))
    }
}

/// Reads a blob by descriptor: size and digest must match.
fn blob(src: &dyn Source, digest: &Digest, size: u64) -> Result<Vec<u8>, ImageError> {
    if size > MAX_JSON {
        return Err(ImageError::new(
            Kind::TooLarge,
            format!("{digest}: {size} bytes (at most {MAX_JSON})"),
        ));
    }
    let bytes = archive::read_all(src, &blob_path(digest), MAX_JSON)?;
    if crate::sys::abi::len64(bytes.len()) != size {
        return Err(ImageError::new(
            Kind::SizeMismatch,
            format!(
                "blob {digest}: {} bytes, its descriptor says {size}",
                bytes.len()
            ),
        ));
    }
    if &Digest::of(&bytes) != digest {
        return Err(ImageError::new(
            Kind::DigestMismatch,
            format!("blob {digest}: its content does not match its digest"),
        ));
    }
    Ok(bytes)
}

/// Where a blob lives in a layout.
pub fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// The running machine's OCI architecture name.
pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A candidate manifest of an index: its descriptor's digest and size, and its ref name.
struct Candidate {
    digest: Digest,
    size: u64,
    ref_name: Option<String>,
}

fn walk_index(
    src: &dyn Source,
    index: &ImageIndex,
    inherited: Option<&str>,
    depth: usize,
    out: &mut Vec<Candidate>,
) -> Result<(), ImageError> {
    if depth > 4 {
        return Err(ImageError::new(Kind::Malformed, "indexes nested too deep"));
    }
    for d in index.manifests() {
        if let Some(p) = d.platform() {
            if p.os().to_string() != "linux" || p.architecture().to_string() != arch() {
                continue;
            }
        }
        let digest = Digest::parse(d.digest().as_ref())?;
        let ref_name = d
            .annotations()
            .as_ref()
            .and_then(|a| a.get(REF_NAME).cloned())
            .or_else(|| inherited.map(str::to_owned));
        match d.media_type() {
            MediaType::ImageIndex => {
                let bytes = blob(src, &digest, d.size())?;
                let nested: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| {
                    ImageError::new(Kind::Malformed, format!("index {digest}: {e}"))
                })?;
                walk_index(src, &nested, ref_name.as_deref(), depth + 1, out)?;
            }
            MediaType::ImageManifest => out.push(Candidate {
                digest,
                size: d.size(),
                ref_name,
            }),
            MediaType::Other(t) if t == DOCKER_MANIFEST => out.push(Candidate {
                digest,
                size: d.size(),
                ref_name,
            }),
            MediaType::Other(t) if t == DOCKER_LIST => {
                let bytes = blob(src, &digest, d.size())?;
                let nested: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| {
                    ImageError::new(Kind::Malformed, format!("index {digest}: {e}"))
                })?;
                walk_index(src, &nested, ref_name.as_deref(), depth + 1, out)?;
            }
            _ => {}
        }
    }
    Ok(())
}

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// A ref name as the image's name: a full reference as it is; a bare tag has no name.
fn name_of(ref_name: &str) -> Option<String> {
    if ref_name.contains('/') || ref_name.contains(':') {
        reference::normalize(ref_name).ok()
    } else {
        None
    }
}

/// Does a ref name (or one of a docker archive's tags) match what `--ref` asked for?
fn selected(want: &str, have: &str) -> bool {
    have == want
        || reference::split_tag(have).1 == Some(want)
        || reference::normalize(have).ok() == reference::normalize(want).ok()
}

/// The plan for an OCI layout or archive.
pub fn oci_plan(src: &dyn Source, select: Option<&str>) -> Result<Plan, ImageError> {
    let index_bytes = archive::read_all(src, "index.json", MAX_JSON)?;
    let index: ImageIndex = serde_json::from_slice(&index_bytes).map_err(|e| {
        ImageError::new(
            Kind::Malformed,
            format!("index.json in {}: {e}", src.describe()),
        )
    })?;
    let mut all = Vec::new();
    walk_index(src, &index, None, 0, &mut all)?;
    let chosen: Vec<&Candidate> = all
        .iter()
        .filter(|c| {
            select.is_none_or(|want| c.ref_name.as_deref().is_some_and(|r| selected(want, r)))
        })
        .collect();
    let c = match chosen.as_slice() {
        [one] => *one,
        [] => {
            return Err(ImageError::new(
                Kind::NotFound,
                match select {
                    Some(want) => format!(
                        "no image `{want}` for linux/{} in {}",
                        arch(),
                        src.describe()
                    ),
                    None => format!("no image for linux/{} in {}", arch(), src.describe()),
                },
            ));
        }
        many => {
            let refs: Vec<String> = many
                .iter()
                .map(|c| c.ref_name.clone().unwrap_or_else(|| c.digest.to_string()))
                .collect();
            return Err(choose_one_of(&src.describe(), refs.len(), &refs));
        }
    };
    let manifest_bytes = blob(src, &c.digest, c.size)?;
    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| ImageError::new(Kind::Malformed, format!("manifest {}: {e}", c.digest)))?;
    from_manifest(
        src,
        &manifest,
        Some(c.digest.clone()),
        c.ref_name.as_deref(),
    )
}

/// The plan for an image manifest whose blobs `src` holds.
pub fn from_manifest(
    src: &dyn Source,
    manifest: &ImageManifest,
    digest: Option<Digest>,
    ref_name: Option<&str>,
) -> Result<Plan, ImageError> {
    let cfg = manifest.config();
    match cfg.media_type() {
        MediaType::ImageConfig => {}
        MediaType::Other(t) if t == DOCKER_CONFIG => {}
        other => {
            return Err(ImageError::new(
                Kind::Unsupported,
                format!("the manifest's config is a `{other}`, not an image config (an artifact?)"),
            ));
        }
    }
    let config_digest = Digest::parse(cfg.digest().as_ref())?;
    let config = blob(src, &config_digest, cfg.size())?;
    let mut layers = Vec::new();
    for d in manifest.layers() {
        let media = d.media_type().to_string();
        let ok = matches!(
            d.media_type(),
            MediaType::ImageLayer
                | MediaType::ImageLayerGzip
                | MediaType::ImageLayerZstd
                | MediaType::ImageLayerNonDistributable
                | MediaType::ImageLayerNonDistributableGzip
                | MediaType::ImageLayerNonDistributableZstd
        ) || media == "application/vnd.docker.image.rootfs.diff.tar.gzip"
            || media == "application/vnd.docker.image.rootfs.diff.tar";
        if !ok {
            return Err(ImageError::new(
                Kind::Unsupported,
                format!(
                    "layer {}: media type `{media}` (kekkai reads tar, tar+gzip and tar+zstd layers)",
                    d.digest()
                ),
            ));
        }
        let digest = Digest::parse(d.digest().as_ref())?;
        layers.push((blob_path(&digest), Some((digest, d.size()))));
    }
    Ok(Plan {
        config,
        manifest: digest,
        layers,
        names: ref_name.and_then(name_of).into_iter().collect(),
    })
}

/// One image of a docker archive's `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// The plan for a docker archive.
pub fn docker_plan(src: &dyn Source, select: Option<&str>) -> Result<Plan, ImageError> {
    let bytes = archive::read_all(src, "manifest.json", MAX_JSON)?;
    let entries: Vec<DockerEntry> = serde_json::from_slice(&bytes).map_err(|e| {
        ImageError::new(
            Kind::Malformed,
            format!("manifest.json in {}: {e}", src.describe()),
        )
    })?;
    let chosen: Vec<&DockerEntry> = entries
        .iter()
        .filter(|e| {
            select.is_none_or(|want| e.repo_tags.iter().flatten().any(|t| selected(want, t)))
        })
        .collect();
    let e = match chosen.as_slice() {
        [one] => *one,
        [] => {
            return Err(ImageError::new(
                Kind::NotFound,
                format!("no image {} in {}", select.unwrap_or(""), src.describe()),
            ));
        }
        many => {
            let tags: Vec<String> = many
                .iter()
                .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
                .collect();
            return Err(choose_one_of(&src.describe(), many.len(), &tags));
        }
    };
    let config = archive::read_all(src, &e.config, MAX_JSON)?;
    // The config is named by its digest (`<hex>.json`, or `blobs/sha256/<hex>` since Docker 25).
    let stem = e
        .config
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .trim_end_matches(".json");
    if super::digest::is_hex64(stem) && Digest::of(&config).hex() != stem {
        return Err(ImageError::new(
            Kind::DigestMismatch,
            format!("{}: its content does not match its name", e.config),
        ));
    }
    Ok(Plan {
        config,
        manifest: None,
        layers: e.layers.iter().map(|l| (l.clone(), None)).collect(),
        names: e
            .repo_tags
            .iter()
            .flatten()
            .filter_map(|t| reference::normalize(t).ok())
            .collect(),
    })
}

/// Unpacks the plan's layers that the store lacks, records the image and names it.
pub fn commit(
    store: &Store,
    src: &dyn Source,
    plan: Plan,
    opts: &Options,
) -> Result<Imported, ImageError> {
    let cfg = config::parse(&plan.config)?;
    let expected = format!("linux/{}", arch());
    if cfg.platform != expected {
        return Err(ImageError::new(
            Kind::Unsupported,
            format!(
                "the image is for {}, this machine runs {expected}",
                cfg.platform
            ),
        ));
    }
    if cfg.diff_ids.len() != plan.layers.len() {
        return Err(ImageError::new(
            Kind::Malformed,
            format!(
                "the config lists {} layers, the manifest {}",
                cfg.diff_ids.len(),
                plan.layers.len()
            ),
        ));
    }
    if plan.layers.len() > MAX_LAYERS {
        return Err(ImageError::new(
            Kind::Unsupported,
            format!(
                "{} layers (kekkai takes at most {MAX_LAYERS})",
                plan.layers.len()
            ),
        ));
    }
    let names: Vec<String> = match &opts.name {
        Some(n) => vec![reference::normalize(n)?],
        None => plan.names.clone(),
    };
    let _lock = store.lock(false)?;
    let known_sizes = known_layer_sizes(store);
    let mut rules = Rules {
        privileged: store.privileged(),
        strip_setid: opts.strip_setid,
        max_bytes: opts.max_size,
        max_entries: opts.max_entries,
    };
    let mut out = Imported {
        id: String::new(),
        names: names.clone(),
        layers: Vec::new(),
        bytes: 0,
        stripped: 0,
    };
    let mut records = Vec::new();
    // Every layer is unpacked and verified before any goes into place: a refused image leaves
    // nothing in the store.
    let mut staged_layers = Vec::new();
    for (i, ((path, desc), diff_id)) in plan.layers.iter().zip(&cfg.diff_ids).enumerate() {
        let at = |e: ImageError| e.context(format!("layer {} ({diff_id})", i + 1));
        let known = store.has_layer(diff_id)
            || staged_layers
                .iter()
                .any(|(_, d): &(_, Digest)| d == diff_id);
        if known {
            out.layers.push((diff_id.to_string(), false));
            records.push(LayerRecord {
                diff_id: diff_id.to_string(),
                size: known_sizes
                    .iter()
                    .find(|(d, _)| d == diff_id.as_str())
                    .map_or(0, |(_, s)| *s),
            });
            continue;
        }
        let (reader, size) = src.open(path).map_err(at)?;
        if let Some((_, want)) = desc {
            if *want != size {
                return Err(at(ImageError::new(
                    Kind::SizeMismatch,
                    format!("the blob has {size} bytes, its descriptor says {want}"),
                )));
            }
        }
        let staged = store.staging()?;
        let got = unpack::unpack(reader, Some(size), staged.fd(), &rules).map_err(at)?;
        if let Some((digest, _)) = desc {
            if &got.blob != digest {
                return Err(at(ImageError::new(
                    Kind::DigestMismatch,
                    format!(
                        "the blob's content is {}, its descriptor says {digest}",
                        got.blob
                    ),
                )));
            }
        }
        if &got.diff_id != diff_id {
            return Err(at(ImageError::new(
                Kind::DigestMismatch,
                format!(
                    "the uncompressed layer is {}, the config says {diff_id}",
                    got.diff_id
                ),
            )));
        }
        staged_layers.push((staged, diff_id.clone()));
        rules.max_bytes = rules.max_bytes.saturating_sub(got.bytes);
        rules.max_entries = rules.max_entries.saturating_sub(got.entries);
        out.bytes += got.bytes;
        out.stripped += got.stripped;
        out.layers.push((diff_id.to_string(), true));
        records.push(LayerRecord {
            diff_id: diff_id.to_string(),
            size: got.bytes,
        });
    }
    for (staged, diff_id) in staged_layers {
        store.commit_layer(staged, &diff_id)?;
    }
    let record = ImageRecord {
        id: Digest::of(&plan.config).to_string(),
        manifest: plan.manifest.as_ref().map(|d| d.to_string()),
        layers: records,
        source: src.describe(),
        imported: now(),
    };
    let id = store.commit_image(&plan.config, &record)?;
    for n in &names {
        store.set_name(n, &id)?;
    }
    out.id = id.to_string();
    Ok(out)
}

/// Sizes of the layers the store's images know.
fn known_layer_sizes(store: &Store) -> Vec<(String, u64)> {
    store
        .list()
        .unwrap_or_default()
        .into_iter()
        .flat_map(|i| i.record.layers)
        .filter(|l| l.size > 0)
        .map(|l| (l.diff_id, l.size))
        .collect()
}

/// An archive that holds several images and no `--ref` to pick one: names them.
fn choose_one_of(source: &str, count: usize, names: &[String]) -> ImageError {
    ImageError::new(
        Kind::Usage,
        format!(
            "{source} holds {count} images ({}): choose one with --ref",
            names.join(", ")
        ),
    )
}
