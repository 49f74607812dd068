//! Where an import reads its files: an OCI image layout directory, or a tar archive (an OCI
//! archive, a docker archive) read in place.
//!
//! Both are attacker-relevant: whoever made the archive or owns the directory chooses what is
//! in it. A layout directory is read below one descriptor with `RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS` (a link anywhere in a blob's path is refused, `ELOOP`), and only
//! regular files are opened (each one first as `O_PATH`, then reopened once `fstat` said what it
//! is). An archive is opened once; its regular members are indexed by path and read at their
//! offsets; its symbolic links (docker archives have some) are never followed.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::fstat;

use super::blob::Compression;
use super::budget::{self, Budgeted, MAX_HEADER_BYTES};
use super::{ImageError, Kind, describe};

/// A place an import reads from.
pub trait Source {
    /// A member (a path relative to the layout's root) and its size.
    fn open(&self, path: &str) -> Result<(Box<dyn Read + '_>, u64), ImageError>;
    /// Is there a regular file at `path`?
    fn has(&self, path: &str) -> bool;
    /// What it is, for messages and records: `oci-layout /path`.
    fn describe(&self) -> String;
}

/// Reads a whole member, refusing more than `max` bytes.
pub fn read_all(src: &dyn Source, path: &str, max: u64) -> Result<Vec<u8>, ImageError> {
    let (r, size) = src.open(path)?;
    if size > max {
        return Err(ImageError::new(
            Kind::TooLarge,
            format!("{path} in {}: {size} bytes (at most {max})", src.describe()),
        ));
    }
    let mut out = Vec::new();
    r.take(max + 1).read_to_end(&mut out).map_err(|e| {
        ImageError::new(
            Kind::Source,
            format!("reading {path} in {}: {}", src.describe(), describe(&e)),
        )
    })?;
    Ok(out)
}

fn source_err(what: impl std::fmt::Display, e: nix::errno::Errno) -> ImageError {
    ImageError::new(
        Kind::Source,
        format!("{what}: {}", super::describe_errno(e)),
    )
}

/// An OCI image layout directory.
pub struct LayoutDir {
    dir: OwnedFd,
    path: PathBuf,
}

impl LayoutDir {
    /// Opens the directory (following links in `path` itself, as a shell would).
    pub fn open(path: &Path) -> Result<LayoutDir, ImageError> {
        let dir = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| source_err(path.display(), e))?;
        Ok(LayoutDir {
            dir,
            path: path.to_path_buf(),
        })
    }

    fn open_regular(&self, rel: &str) -> Result<(File, u64), ImageError> {
        let shown = || format!("{rel} in {}", self.path.display());
        let o = crate::hostfs::open_beneath(self.dir.as_fd(), Path::new(rel), OFlag::O_PATH)
            .map_err(|e| source_err(shown(), e))?;
        let st = fstat(o.as_fd()).map_err(|e| source_err(shown(), e))?;
        if !crate::hostfs::is_regular(&st) {
            return Err(ImageError::new(
                Kind::Source,
                format!("{}: not a regular file", shown()),
            ));
        }
        // Reopened through the descriptor: the object fstat saw, nothing else.
        let f = File::open(crate::sys::fd_path(o.as_fd()))
            .map_err(|e| ImageError::new(Kind::Source, format!("{}: {}", shown(), describe(&e))))?;
        Ok((f, u64::try_from(st.st_size).unwrap_or(0)))
    }
}

impl Source for LayoutDir {
    fn open(&self, path: &str) -> Result<(Box<dyn Read + '_>, u64), ImageError> {
        let (f, size) = self.open_regular(path)?;
        Ok((Box::new(f), size))
    }

    fn has(&self, path: &str) -> bool {
        self.open_regular(path).is_ok()
    }

    fn describe(&self) -> String {
        format!("oci-layout {}", self.path.display())
    }
}

/// A tar archive read in place: its regular members by path.
pub struct TarArchive {
    file: File,
    path: PathBuf,
    members: HashMap<String, (u64, u64)>,
    links: Vec<String>,
    /// `oci-archive` or `docker-archive`, once known.
    pub kind: &'static str,
}

/// The largest number of members an archive may list.
const MAX_MEMBERS: usize = 100_000;

impl TarArchive {
    /// Opens and indexes an archive.
    pub fn open(path: &Path) -> Result<TarArchive, ImageError> {
        let io = |e: std::io::Error| {
            ImageError::new(
                Kind::Source,
                format!("{}: {}", path.display(), describe(&e)),
            )
        };
        // Looked at first (`O_PATH`): a fifo or a device at the path (someone else's symbolic
        // link in /tmp) is never opened to read, which would wait for a writer forever or act
        // on the device. The regular file fstat saw is then reopened through the descriptor.
        let o = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| source_err(path.display(), e))?;
        let st = fstat(o.as_fd()).map_err(|e| source_err(path.display(), e))?;
        if !crate::hostfs::is_regular(&st) {
            return Err(ImageError::new(
                Kind::Source,
                format!("{}: not a regular file or directory", path.display()),
            ));
        }
        let file = File::open(crate::sys::fd_path(o.as_fd())).map_err(io)?;
        let mut head = [0u8; 4];
        let n = file.read_at(&mut head, 0).map_err(io)?;
        let c = Compression::sniff(head.get(..n).unwrap_or_default());
        if c != Compression::None {
            return Err(ImageError::new(
                Kind::Unsupported,
                format!(
                    "{}: a {}-compressed archive; decompress it first (image archives are plain tar files)",
                    path.display(),
                    c.name()
                ),
            ));
        }
        let mut members = HashMap::new();
        let mut links = Vec::new();
        let reader = std::io::BufReader::new(file.try_clone().map_err(io)?);
        // Only headers are read here, and the tar crate holds an entry's long names and PAX
        // records in memory: at most MAX_HEADER_BYTES of them per member.
        let (reader, headers) = Budgeted::new(reader);
        let mut tar = tar::Archive::new(reader);
        let bad = |e: std::io::Error| match budget::exceeded(&e) {
            Some(limit) => ImageError::new(
                Kind::TooLarge,
                format!(
                    "{}: a member's headers (a GNU long name, a PAX extended header, a sparse map) are longer than {limit} bytes",
                    path.display()
                ),
            ),
            None => ImageError::new(
                Kind::Malformed,
                format!("{}: not a tar archive ({})", path.display(), describe(&e)),
            ),
        };
        // Seeking past each member's data: only the headers are read.
        let mut entries = tar.entries_with_seek().map_err(bad)?;
        loop {
            headers.open(MAX_HEADER_BYTES);
            let next = entries.next();
            headers.close();
            let Some(entry) = next else { break };
            let entry = entry.map_err(bad)?;
            if members.len() + links.len() > MAX_MEMBERS {
                return Err(ImageError::new(
                    Kind::TooManyEntries,
                    format!("{}: more than {MAX_MEMBERS} members", path.display()),
                ));
            }
            let raw = entry.path_bytes().into_owned();
            let parts = match super::unpack::components(&raw, "archive member") {
                Ok(p) => p,
                Err(e) => return Err(e.context(path.display())),
            };
            let name = parts
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    members.insert(name, (entry.raw_file_position(), entry.size()));
                }
                tar::EntryType::Symlink | tar::EntryType::Link => links.push(name),
                _ => {}
            }
        }
        Ok(TarArchive {
            file,
            path: path.to_path_buf(),
            members,
            links,
            kind: "archive",
        })
    }
}

/// A member of an archive, read at its offset.
struct Slice<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for Slice<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let Some(buf) = buf.get_mut(..want) else {
            return Ok(0);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.file.read_at(buf, self.pos)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the archive ends inside a member",
            ));
        }
        self.pos += crate::sys::abi::len64(n);
        Ok(n)
    }
}

impl Source for TarArchive {
    fn open(&self, path: &str) -> Result<(Box<dyn Read + '_>, u64), ImageError> {
        let key = path.trim_start_matches("./");
        match self.members.get(key) {
            Some(&(pos, size)) => Ok((
                Box::new(Slice {
                    file: &self.file,
                    pos,
                    end: pos + size,
                }),
                size,
            )),
            None if self.links.iter().any(|l| l == key) => Err(ImageError::new(
                Kind::Source,
                format!(
                    "{key} in {}: a link inside the archive (kekkai reads only regular members)",
                    self.path.display()
                ),
            )),
            None => Err(ImageError::new(
                Kind::Source,
                format!("{key}: not in {}", self.path.display()),
            )),
        }
    }

    fn has(&self, path: &str) -> bool {
        self.members.contains_key(path.trim_start_matches("./"))
    }

    fn describe(&self) -> String {
        format!("{} {}", self.kind, self.path.display())
    }
}

/// Blobs downloaded into a directory, by digest (`pull`).
pub struct BlobDir {
    /// The directory (a staging directory of the store).
    pub dir: OwnedFd,
    /// What they came from.
    pub what: String,
}

impl Source for BlobDir {
    fn open(&self, path: &str) -> Result<(Box<dyn Read + '_>, u64), ImageError> {
        let fd = crate::hostfs::open_beneath(self.dir.as_fd(), Path::new(path), OFlag::O_RDONLY)
            .map_err(|e| source_err(path, e))?;
        let st = fstat(fd.as_fd()).map_err(|e| source_err(path, e))?;
        Ok((
            Box::new(File::from(fd)),
            u64::try_from(st.st_size).unwrap_or(0),
        ))
    }

    fn has(&self, path: &str) -> bool {
        crate::hostfs::open_beneath(self.dir.as_fd(), Path::new(path), OFlag::O_PATH).is_ok()
    }

    fn describe(&self) -> String {
        self.what.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// What is not a regular file is refused at once: a fifo someone else made (opening it to
    /// read would wait for a writer forever), a directory, a character device.
    #[rstest]
    #[case::fifo("fifo")]
    #[case::directory("dir")]
    #[case::device("/dev/null")]
    fn only_a_regular_file_is_an_archive(#[case] what: &str) {
        let dir =
            std::env::temp_dir().join(format!("kekkai-archive-{}-{what}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = match what {
            "fifo" => {
                let p = dir.join("a.tar");
                nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
                p
            }
            "dir" => dir.clone(),
            other => PathBuf::from(other),
        };
        let got = TarArchive::open(&path).err().map(|e| e.kind);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(got, Some(Kind::Source));
    }
}
