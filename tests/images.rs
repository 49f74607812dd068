//! Images: `kekkai image import|pull|ls|inspect|rm|prune` and `run --image`, as root (a root
//! store: /var/lib/kekkai's rules) and as the unprivileged test user (its own store), with
//! images the tests make themselves (a static busybox userland in layers with whiteouts and
//! opaque directories; hostile archives) and a registry on 127.0.0.1.
//!
//! Every run uses a store of its own (`KEKKAI_STORE` in a scratch directory). Refusals are
//! asserted by their stable kind (`image --json` prints `{"error": {"kind": …}}`), never by
//! message text.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

#[path = "images/build.rs"]
mod build;
#[path = "images/hostile.rs"]
mod hostile;
#[path = "images/registry.rs"]
mod registry;
#[path = "images/run.rs"]
mod run;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use support::{Who, World, stdout, test_user};

/// A store of its own for `who`, inside the world's directory (owned by `who`, mode 0700).
pub fn store(w: &World, who: Who, name: &str) -> PathBuf {
    let dir = w.dir.join(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    if who == Who::Rootless {
        support::chown(&dir, test_user().unwrap());
    }
    dir
}

/// `kekkai ARGS` as `who`, with `store` as its image store.
pub fn k(w: &World, who: Who, store: &Path, args: &[&str]) -> Output {
    w.command(who)
        .env("KEKKAI_STORE", store)
        .args(args)
        .output()
        .unwrap()
}

/// `kekkai image --json ARGS`: (exit code, the JSON printed).
pub fn image(w: &World, who: Who, store: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["image", "--json"];
    all.extend_from_slice(args);
    let o = k(w, who, store, &all);
    let v = serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| {
        panic!(
            "image {args:?}: not JSON ({e}):\n{}\n{}",
            stdout(&o),
            support::stderr(&o)
        )
    });
    (support::code(&o), v)
}

/// Imports and expects success; returns the image id.
pub fn import_ok(w: &World, who: Who, store: &Path, args: &[&str]) -> String {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    let (code, v) = image(w, who, store, &all);
    assert_eq!(code, 0, "import {args:?}: {v}");
    v["id"].as_str().unwrap().to_owned()
}

/// The kind of an image command's refusal.
pub fn refused(w: &World, who: Who, store: &Path, args: &[&str]) -> String {
    let (code, v) = image(w, who, store, args);
    assert_eq!(code, 1, "{args:?} should have been refused: {v}");
    v["error"]["kind"].as_str().unwrap().to_owned()
}

/// Everything the store holds: its layers, images, names and staging leftovers.
pub fn contents(store: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["layers", "images", "names", "tmp"] {
        if let Ok(rd) = std::fs::read_dir(store.join(sub)) {
            for e in rd.flatten() {
                out.push(format!("{sub}/{}", e.file_name().to_string_lossy()));
            }
        }
    }
    out.sort();
    out
}

/// Writes the standard image (zstd top layer) as a layout in `<world>/<name>`.
pub fn standard_layout(w: &World, name: &str) -> (PathBuf, build::Written) {
    let dir = w.dir.join(name);
    let written = build::layout(&dir, &build::standard(true), "1.0");
    (dir, written)
}

/// Fails (or skips outside CI) when the tools the image tests need are missing.
pub fn tools() -> bool {
    support::skip(build::missing_tools())
}
