//! The probe in a root that has no C library of the host's kind (an image: busybox, Alpine's
//! musl): the copy of kekkai takes its own dynamic loader and shared libraries along, and the
//! battery starts through that loader (`LOADER --library-path DIR PROBE …`).
//!
//! The libraries are the ones this very process has mapped (`/proc/self/maps`), so they are
//! exactly what the copy links against; they are copied beside the copy, into a directory the
//! sandbox sees read-only at [`LIB_PATH`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where the sandbox sees the libraries.
pub const LIB_PATH: &str = "/.kekkai-audit-lib";

/// The shared objects this process has mapped (the loader among them).
fn mapped_libraries() -> std::io::Result<Vec<PathBuf>> {
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut out: Vec<PathBuf> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.starts_with('/') && p.contains(".so"))
        .map(PathBuf::from)
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Copies the loader and libraries into `dir` (created, mode 0755; files 0555); returns the
/// loader's file name.
pub fn copy_libraries(dir: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    std::fs::DirBuilder::new().mode(0o755).create(dir)?;
    let mut loader = None;
    for lib in mapped_libraries()? {
        let Some(name) = lib.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if name.starts_with("ld-") {
            loader = Some(name.clone());
        }
        let mut src = std::fs::File::open(&lib)?;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dir.join(&name))?;
        std::io::copy(&mut src, &mut out)?;
        out.set_permissions(std::fs::Permissions::from_mode(0o555))?;
    }
    loader.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "kekkai has no dynamic loader mapped (a static build needs none)",
        )
    })
}

/// `cmd` (the probe and its arguments) started through the copied loader.
pub fn through_loader(loader: &str, cmd: Vec<OsString>) -> Vec<OsString> {
    let mut out: Vec<OsString> = vec![
        format!("{LIB_PATH}/{loader}").into(),
        "--library-path".into(),
        LIB_PATH.into(),
    ];
    out.extend(cmd);
    out
}
