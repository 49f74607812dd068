//! The layer store: a directory only its owner can enter, read and changed through descriptors.
//!
//! ```text
//! STORE/                     0700, owned by the caller (root: /var/lib/kekkai; others:
//!                            $XDG_DATA_HOME/kekkai or ~/.local/share/kekkai; $KEKKAI_STORE wins)
//!   layers/<hex>/            an unpacked layer, named by its diff_id (uncompressed sha256)
//!   images/<hex>/            an image, named by its config digest (the image id):
//!     config.json            the config blob as imported (its sha256 is the directory's name)
//!     image.json             the record: layers (bottom first, with sizes), manifest digest, source
//!   names/<encoded name>     `sha256:<id>`: one file per NAME:TAG, replaced atomically
//!   tmp/                     staging: layers and images are built here, then renamed into place
//! ```
//!
//! Everything appears by one `rename`: a layer directory is complete or absent. Two imports of
//! the same layer each unpack into their own staging directory; the second rename finds the
//! first one's layer (`RENAME_NOREPLACE`) and its copy is thrown away.
//!
//! Locks (`flock`, gone with the process that held them):
//! - the store directory itself: shared while an import or pull writes, or while a launch
//!   resolves a name and takes its image's lock; exclusive while `rm` or `prune` delete;
//! - each image directory: shared by every running sandbox of that image for as long as it
//!   runs ([`Lease`]); `rm` and `prune` take it exclusive without waiting, and refuse an image
//!   in use.
//!
//! The store's path must not be changeable by anyone else: every directory above it must belong
//! to root or the caller and be writable by nobody else (or be sticky, as /tmp is). Inside it,
//! nothing is followed: every name is opened relative to a directory descriptor with
//! `O_NOFOLLOW`.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag, RenameFlags, openat, renameat, renameat2};
use nix::sys::stat::{Mode, fchmod, fstat, mkdirat};
use serde::{Deserialize, Serialize};

use super::config::{self, MAX_JSON};
use super::digest::Digest;
use super::files::{decode, encode, read_file, write_file};
use super::reference::Reference;
use super::tree;
use super::{ImageError, Kind, describe, store_err};

/// The root store.
pub const ROOT_STORE: &str = "/var/lib/kekkai";
/// The environment variable that names another store.
pub const STORE_ENV: &str = "KEKKAI_STORE";

/// An open store.
#[derive(Debug)]
pub struct Store {
    dir: OwnedFd,
    path: PathBuf,
    privileged: bool,
}

/// One layer of an image's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The layer's diff_id.
    pub diff_id: String,
    /// Its uncompressed size in bytes (0 when unknown).
    pub size: u64,
}

/// What the store keeps about an image besides its config (`image.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image id: its config's digest.
    pub id: String,
    /// The manifest's digest, when the image came with one (docker archives have none).
    pub manifest: Option<String>,
    /// The layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// Where it came from (`oci-layout /path`, `docker-archive /path`, `registry REF`).
    pub source: String,
    /// When it was imported (seconds since the epoch).
    pub imported: u64,
}

/// An image as found in the store.
#[derive(Debug, Clone)]
pub struct Image {
    /// Its id.
    pub id: Digest,
    /// Its record.
    pub record: ImageRecord,
    /// Its config.
    pub config: config::Config,
    /// Its names.
    pub names: Vec<String>,
}

/// A shared lock on an image, held while a sandbox uses it.
#[derive(Clone)]
pub struct Lease(#[allow(dead_code)] Arc<Flock<OwnedFd>>);

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lease")
    }
}

impl Lease {
    /// A shared lock on `fd` (an image's directory), waiting while someone holds it exclusively.
    pub fn hold(fd: OwnedFd) -> Result<Lease, ImageError> {
        let mut fd = fd;
        loop {
            match Flock::lock(fd, FlockArg::LockShared) {
                Ok(l) => return Ok(Lease(Arc::new(l))),
                Err((f, Errno::EINTR)) => fd = f,
                Err((_, e)) => return Err(store_err("flock(image)", e)),
            }
        }
    }
}

impl PartialEq for Lease {
    fn eq(&self, _: &Lease) -> bool {
        true
    }
}

/// A held lock on the store.
pub struct StoreLock(#[allow(dead_code)] Flock<OwnedFd>);

/// A staging directory in `tmp/`, removed on drop unless it was renamed into place.
pub struct Staging<'a> {
    store: &'a Store,
    name: Option<OsString>,
    dir: OwnedFd,
}

impl Staging<'_> {
    /// The directory.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            if let Ok(tmp) = self.store.sub("tmp") {
                let _ = tree::remove_all(tmp.as_fd(), &name);
            }
        }
    }
}

/// Where the caller's store is: `$KEKKAI_STORE`, root's [`ROOT_STORE`], or
/// `$XDG_DATA_HOME/kekkai` (`~/.local/share/kekkai`).
pub fn default_path(euid: u32, env: &dyn Fn(&str) -> Option<String>, home: &Path) -> PathBuf {
    if let Some(p) = env(STORE_ENV).filter(|p| p.starts_with('/')) {
        return PathBuf::from(p);
    }
    if euid == 0 {
        return PathBuf::from(ROOT_STORE);
    }
    match env("XDG_DATA_HOME").filter(|p| p.starts_with('/')) {
        Some(p) => Path::new(&p).join("kekkai"),
        None => home.join(".local/share/kekkai"),
    }
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// Every directory above the store must belong to root or `euid` and be writable by nobody
/// else, unless it is sticky (/tmp): then its entries can't be renamed by others.
fn check_ancestors(path: &Path, euid: u32) -> Result<(), ImageError> {
    let mut here = PathBuf::from("/");
    let parts: Vec<_> = path.components().skip(1).collect();
    for (i, part) in parts.iter().enumerate() {
        let st = nix::sys::stat::lstat(&here).map_err(|e| store_err(here.display(), e))?;
        if st.st_uid != 0 && st.st_uid != euid {
            return Err(ImageError::new(
                Kind::Store,
                format!(
                    "the image store {} is below {}, which belongs to uid {}: whoever owns it could swap the store",
                    path.display(),
                    here.display(),
                    st.st_uid
                ),
            ));
        }
        if st.st_mode & 0o022 != 0 && st.st_mode & 0o1000 == 0 {
            return Err(ImageError::new(
                Kind::Store,
                format!(
                    "the image store {} is below {}, which others can write (mode {:o})",
                    path.display(),
                    here.display(),
                    st.st_mode & 0o7777
                ),
            ));
        }
        if i + 1 < parts.len() {
            here.push(part);
        }
    }
    Ok(())
}

impl Store {
    /// Opens the store at `path` for `euid`; `create` makes it (and its missing parents, 0700)
    /// where it does not exist. Refuses a store owned by someone else, writable by others, or
    /// below a directory someone else could change.
    pub fn open(path: &Path, euid: u32, create: bool) -> Result<Store, ImageError> {
        if !path.is_absolute() {
            return Err(ImageError::new(
                Kind::Store,
                format!(
                    "the image store `{}` is not an absolute path",
                    path.display()
                ),
            ));
        }
        if create && !path.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(|e| {
                    ImageError::new(
                        Kind::Store,
                        format!(
                            "creating the image store {}: {}",
                            path.display(),
                            describe(&e)
                        ),
                    )
                })?;
        }
        let canonical = match std::fs::canonicalize(path) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ImageError::new(
                    Kind::NotFound,
                    format!(
                        "there is no image store at {} yet (`kekkai image import` or `pull` makes it)",
                        path.display()
                    ),
                ));
            }
            Err(e) => {
                return Err(ImageError::new(
                    Kind::Store,
                    format!("the image store {}: {}", path.display(), describe(&e)),
                ));
            }
        };
        check_ancestors(&canonical, euid)?;
        let dir =
            openat(nix::fcntl::AT_FDCWD, &canonical, dir_flags(), Mode::empty()).map_err(|e| {
                store_err(
                    format!("opening the image store {}", canonical.display()),
                    e,
                )
            })?;
        let st = fstat(dir.as_fd()).map_err(|e| store_err("fstat(store)", e))?;
        if st.st_uid != euid {
            return Err(ImageError::new(
                Kind::Store,
                format!(
                    "the image store {} belongs to uid {}, not to you (uid {euid})",
                    canonical.display(),
                    st.st_uid
                ),
            ));
        }
        if st.st_mode & 0o077 != 0 {
            // Only its owner may enter it: the layers hold whatever the images hold.
            fchmod(dir.as_fd(), Mode::from_bits_truncate(0o700))
                .map_err(|e| store_err("chmod 0700 (store)", e))?;
        }
        let store = Store {
            dir,
            path: canonical,
            privileged: euid == 0,
        };
        for sub in ["layers", "images", "names", "tmp"] {
            match mkdirat(store.dir.as_fd(), sub, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                // A read-only look at a store someone else made read-only: fine until written.
                Err(Errno::EROFS | Errno::EACCES) if !create => {}
                Err(e) => return Err(store_err(format!("mkdir {sub}"), e)),
            }
        }
        Ok(store)
    }

    /// The store's canonical path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A root store: ownership, device nodes and setuid files are kept.
    pub fn privileged(&self) -> bool {
        self.privileged
    }

    /// The path of a layer's directory (it may not exist).
    pub fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.path.join("layers").join(diff_id.hex())
    }

    /// Is the layer in the store?
    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.sub("layers")
            .and_then(|l| tree::open_dir(l.as_fd(), OsStr::new(diff_id.hex())))
            .is_ok()
    }

    fn sub(&self, name: &str) -> nix::Result<OwnedFd> {
        tree::open_dir(self.dir.as_fd(), OsStr::new(name))
    }

    fn sub_err(&self, name: &str) -> Result<OwnedFd, ImageError> {
        self.sub(name)
            .map_err(|e| store_err(format!("{}/{name}", self.path.display()), e))
    }

    /// Locks the whole store, shared (imports, launches) or exclusive (removals), waiting for
    /// others (and saying so) if needed.
    pub fn lock(&self, exclusive: bool) -> Result<StoreLock, ImageError> {
        // A description of its own: flock locks belong to the open file description.
        let fd = openat(self.dir.as_fd(), ".", dir_flags(), Mode::empty())
            .map_err(|e| store_err("opening the store to lock it", e))?;
        let (now, wait) = if exclusive {
            (FlockArg::LockExclusiveNonblock, FlockArg::LockExclusive)
        } else {
            (FlockArg::LockSharedNonblock, FlockArg::LockShared)
        };
        let fd = match Flock::lock(fd, now) {
            Ok(l) => return Ok(StoreLock(l)),
            Err((fd, Errno::EWOULDBLOCK)) => {
                crate::log::notice(&format!(
                    "waiting for the image store {} (another kekkai is {})",
                    self.path.display(),
                    if exclusive {
                        "using it"
                    } else {
                        "removing images"
                    }
                ));
                fd
            }
            Err((_, e)) => return Err(store_err("flock(store)", e)),
        };
        let mut fd = fd;
        loop {
            match Flock::lock(fd, wait) {
                Ok(l) => return Ok(StoreLock(l)),
                Err((f, Errno::EINTR)) => fd = f,
                Err((_, e)) => return Err(store_err("flock(store)", e)),
            }
        }
    }

    /// A fresh staging directory.
    pub fn staging(&self) -> Result<Staging<'_>, ImageError> {
        let tmp = self.sub_err("tmp")?;
        for _ in 0..8 {
            let name = tree::random_name("stage-");
            match mkdirat(
                tmp.as_fd(),
                name.as_os_str(),
                Mode::from_bits_truncate(0o700),
            ) {
                Ok(()) => {
                    let dir = tree::open_dir(tmp.as_fd(), &name)
                        .map_err(|e| store_err("opening a staging directory", e))?;
                    return Ok(Staging {
                        store: self,
                        name: Some(name),
                        dir,
                    });
                }
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(store_err("mkdir tmp/stage-…", e)),
            }
        }
        Err(ImageError::new(
            Kind::Store,
            "could not make a staging directory",
        ))
    }

    /// Moves a staged layer (the staging directory itself) into place as `layers/<diff_id>`.
    /// Another import that got there first wins; the staged copy then goes.
    pub fn commit_layer(
        &self,
        mut staged: Staging<'_>,
        diff_id: &Digest,
    ) -> Result<(), ImageError> {
        let tmp = self.sub_err("tmp")?;
        let layers = self.sub_err("layers")?;
        let Some(name) = staged.name.clone() else {
            return Err(ImageError::new(
                Kind::Store,
                "the staging directory is gone",
            ));
        };
        // The layer's root directory: readable and searchable by the sandbox's ids.
        fchmod(staged.fd(), Mode::from_bits_truncate(0o755))
            .map_err(|e| store_err("chmod (layer)", e))?;
        match renameat2(
            tmp.as_fd(),
            name.as_os_str(),
            layers.as_fd(),
            diff_id.hex(),
            RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => {
                staged.name = None;
                Ok(())
            }
            // Someone else's identical copy is already there; ours goes on drop.
            Err(Errno::EEXIST | Errno::ENOTEMPTY) => Ok(()),
            Err(e) => Err(store_err(
                format!("rename into layers/{}", diff_id.hex()),
                e,
            )),
        }
    }

    /// Records an image (its config blob and record) under `images/<id>`; an image already
    /// there stays as it is.
    pub fn commit_image(&self, config: &[u8], record: &ImageRecord) -> Result<Digest, ImageError> {
        let id = Digest::of(config);
        let staged = self.staging()?;
        write_file(staged.fd(), "config.json", config)?;
        let json = serde_json::to_vec_pretty(record)
            .map_err(|e| ImageError::new(Kind::Store, format!("image.json: {e}")))?;
        write_file(staged.fd(), "image.json", &json)?;
        let tmp = self.sub_err("tmp")?;
        let images = self.sub_err("images")?;
        let Some(name) = staged.name.clone() else {
            return Err(ImageError::new(
                Kind::Store,
                "the staging directory is gone",
            ));
        };
        let mut staged = staged;
        match renameat2(
            tmp.as_fd(),
            name.as_os_str(),
            images.as_fd(),
            id.hex(),
            RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => staged.name = None,
            Err(Errno::EEXIST | Errno::ENOTEMPTY) => {}
            Err(e) => return Err(store_err(format!("rename into images/{}", id.hex()), e)),
        }
        Ok(id)
    }

    /// Gives `id` the name `name` (`NAME:TAG`, normalized), replacing what it named before.
    pub fn set_name(&self, name: &str, id: &Digest) -> Result<(), ImageError> {
        let tmp = self.sub_err("tmp")?;
        let names = self.sub_err("names")?;
        let staged = tree::random_name("name-");
        write_file(
            tmp.as_fd(),
            &staged.to_string_lossy(),
            format!("{id}\n").as_bytes(),
        )?;
        renameat(
            tmp.as_fd(),
            staged.as_os_str(),
            names.as_fd(),
            encode(name).as_str(),
        )
        .map_err(|e| store_err(format!("naming {name}"), e))
    }

    /// Every name and the id it names.
    pub fn names(&self) -> Result<Vec<(String, Digest)>, ImageError> {
        let names = self.sub_err("names")?;
        let mut out = Vec::new();
        for file in tree::names(names.as_fd()).map_err(|e| store_err("reading names/", e))? {
            let Some(name) = decode(&file) else { continue };
            let Ok(text) = read_file(names.as_fd(), &file, 256) else {
                continue;
            };
            if let Ok(id) = Digest::parse(String::from_utf8_lossy(&text).trim()) {
                out.push((name, id));
            }
        }
        out.sort();
        Ok(out)
    }

    fn ids(&self) -> Result<Vec<Digest>, ImageError> {
        let images = self.sub_err("images")?;
        Ok(tree::names(images.as_fd())
            .map_err(|e| store_err("reading images/", e))?
            .iter()
            .filter_map(|n| Digest::from_hex(&n.to_string_lossy()).ok())
            .collect())
    }

    /// The image a reference names.
    pub fn resolve(&self, r: &Reference) -> Result<Digest, ImageError> {
        match r {
            Reference::Name(name) => self
                .names()?
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, id)| id)
                .ok_or_else(|| {
                    ImageError::new(
                        Kind::NotFound,
                        format!(
                            "no image `{name}` in {} (`kekkai image ls` lists them; `kekkai image import` or `pull` adds one)",
                            self.path.display()
                        ),
                    )
                }),
            Reference::Id(prefix) => {
                let mut found: Vec<Digest> = Vec::new();
                for id in self.ids()? {
                    let manifest = self
                        .record(&id)
                        .ok()
                        .and_then(|r| r.manifest)
                        .unwrap_or_default();
                    if id.hex().starts_with(prefix.as_str())
                        || manifest.trim_start_matches("sha256:").starts_with(prefix.as_str())
                    {
                        found.push(id);
                    }
                }
                match found.as_slice() {
                    [one] => Ok(one.clone()),
                    [] => Err(ImageError::new(
                        Kind::NotFound,
                        format!("no image with id or manifest digest sha256:{prefix}…"),
                    )),
                    _ => Err(ImageError::new(
                        Kind::Ambiguous,
                        format!("sha256:{prefix} names {} images: give more digits", found.len()),
                    )),
                }
            }
        }
    }

    fn record(&self, id: &Digest) -> Result<ImageRecord, ImageError> {
        let dir = self.image_dir(id)?;
        let bytes = read_file(dir.as_fd(), OsStr::new("image.json"), MAX_JSON)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ImageError::new(Kind::Store, format!("images/{}/image.json: {e}", id.hex()))
        })
    }

    fn image_dir(&self, id: &Digest) -> Result<OwnedFd, ImageError> {
        let images = self.sub_err("images")?;
        tree::open_dir(images.as_fd(), OsStr::new(id.hex())).map_err(|e| match e {
            Errno::ENOENT => ImageError::new(Kind::NotFound, format!("no image {id}")),
            e => store_err(format!("images/{}", id.hex()), e),
        })
    }

    /// An image: its record, its config (verified against its id) and names.
    pub fn image(&self, id: &Digest) -> Result<Image, ImageError> {
        let record = self.record(id)?;
        let dir = self.image_dir(id)?;
        let bytes = read_file(dir.as_fd(), OsStr::new("config.json"), MAX_JSON)?;
        if &Digest::of(&bytes) != id {
            return Err(ImageError::new(
                Kind::DigestMismatch,
                format!("images/{}/config.json does not match its digest", id.hex()),
            ));
        }
        let config = config::parse(&bytes)?;
        let names = self
            .names()?
            .into_iter()
            .filter(|(_, i)| i == id)
            .map(|(n, _)| n)
            .collect();
        Ok(Image {
            id: id.clone(),
            record,
            config,
            names,
        })
    }

    /// Every image, with its names.
    pub fn list(&self) -> Result<Vec<Image>, ImageError> {
        let mut out = Vec::new();
        for id in self.ids()? {
            if let Ok(img) = self.image(&id) {
                out.push(img);
            }
        }
        out.sort_by(|a, b| a.names.cmp(&b.names).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// A shared lock on the image, for a sandbox that uses it. Taken under the store's shared
    /// lock, so that `rm` can't come between the lookup and the lease.
    pub fn lease(&self, id: &Digest) -> Result<Lease, ImageError> {
        Lease::hold(self.image_dir(id)?)
    }

    /// Is the image used by a running sandbox?
    pub fn in_use(&self, id: &Digest) -> bool {
        self.image_dir(id)
            .ok()
            .map(
                |fd| match Flock::lock(fd, FlockArg::LockExclusiveNonblock) {
                    Ok(_) => false,
                    Err((_, e)) => e == Errno::EWOULDBLOCK,
                },
            )
            .unwrap_or(false)
    }

    /// Removes an image and its names; refused while a sandbox uses it. Call with the store
    /// locked exclusively; layers no image uses any more go with [`Store::collect`].
    pub fn remove_image(&self, id: &Digest) -> Result<(), ImageError> {
        let dir = self.image_dir(id)?;
        let _held = match Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(ImageError::new(
                    Kind::InUse,
                    format!("image {} is used by a running sandbox", id.short()),
                ));
            }
            Err((_, e)) => return Err(store_err(format!("flock(images/{})", id.hex()), e)),
        };
        for (name, named) in self.names()? {
            if &named == id {
                self.remove_name(&name)?;
            }
        }
        self.discard("images", id.hex())
    }

    /// Removes a name (not the image).
    pub fn remove_name(&self, name: &str) -> Result<(), ImageError> {
        let names = self.sub_err("names")?;
        match nix::unistd::unlinkat(
            names.as_fd(),
            encode(name).as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(store_err(format!("removing the name {name}"), e)),
        }
    }

    /// Moves `sub/name` out of sight (into tmp/) in one rename, then removes it.
    fn discard(&self, sub: &str, name: &str) -> Result<(), ImageError> {
        let from = self.sub_err(sub)?;
        let tmp = self.sub_err("tmp")?;
        let gone = tree::random_name("gone-");
        match renameat(from.as_fd(), name, tmp.as_fd(), gone.as_os_str()) {
            Ok(()) => {}
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(store_err(format!("rename {sub}/{name}"), e)),
        }
        tree::remove_all(tmp.as_fd(), &gone)
            .map_err(|e| store_err(format!("removing {sub}/{name}"), e))
    }

    /// Removes layers no image uses and leftovers of interrupted imports; with `unnamed`, also
    /// images without a name that no sandbox uses. Call with the store locked exclusively.
    /// Returns what went: (images, layers, leftovers).
    pub fn collect(&self, unnamed: bool) -> Result<(Vec<Digest>, Vec<Digest>, usize), ImageError> {
        let mut images_gone = Vec::new();
        if unnamed {
            let named: Vec<Digest> = self.names()?.into_iter().map(|(_, id)| id).collect();
            for id in self.ids()? {
                if !named.contains(&id) && !self.in_use(&id) {
                    self.remove_image(&id)?;
                    images_gone.push(id);
                }
            }
        }
        let mut used: Vec<String> = Vec::new();
        let ids = self.ids()?;
        for id in &ids {
            match self.record(id) {
                Ok(r) => used.extend(r.layers.into_iter().map(|l| l.diff_id)),
                // A record kekkai can't read: keep every layer rather than guess.
                Err(_) => return Ok((images_gone, Vec::new(), 0)),
            }
        }
        let layers = self.sub_err("layers")?;
        let mut layers_gone = Vec::new();
        for name in tree::names(layers.as_fd()).map_err(|e| store_err("reading layers/", e))? {
            let hex = name.to_string_lossy().into_owned();
            let Ok(d) = Digest::from_hex(&hex) else {
                continue;
            };
            if !used.iter().any(|u| u == d.as_str()) {
                self.discard("layers", &hex)?;
                layers_gone.push(d);
            }
        }
        let tmp = self.sub_err("tmp")?;
        let mut leftovers = 0;
        for name in tree::names(tmp.as_fd()).map_err(|e| store_err("reading tmp/", e))? {
            tree::remove_all(tmp.as_fd(), &name).map_err(|e| store_err("removing tmp/…", e))?;
            leftovers += 1;
        }
        Ok((images_gone, layers_gone, leftovers))
    }

    /// A descriptor of a layer's directory (for reading its top level).
    pub fn open_layer(&self, diff_id: &Digest) -> Result<OwnedFd, ImageError> {
        let layers = self.sub_err("layers")?;
        tree::open_dir(layers.as_fd(), OsStr::new(diff_id.hex())).map_err(|e| match e {
            Errno::ENOENT => ImageError::new(
                Kind::NotFound,
                format!("layer {diff_id} is missing from the store (import the image again)"),
            ),
            e => store_err(format!("layers/{}", diff_id.hex()), e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_paths() {
        let env = |k: &str| match k {
            "XDG_DATA_HOME" => Some("/x/data".to_owned()),
            _ => None,
        };
        let none = |_: &str| None;
        let home = Path::new("/home/u");
        assert_eq!(default_path(0, &env, home), PathBuf::from(ROOT_STORE));
        assert_eq!(
            default_path(1000, &env, home),
            PathBuf::from("/x/data/kekkai")
        );
        assert_eq!(
            default_path(1000, &none, home),
            PathBuf::from("/home/u/.local/share/kekkai")
        );
        let custom = |k: &str| (k == STORE_ENV).then(|| "/s".to_owned());
        assert_eq!(default_path(0, &custom, home), PathBuf::from("/s"));
    }
}
