//! Hostile archives: each refused with its kind and nothing left in the store (root store and
//! unprivileged store); what only a root store may hold; corrupted blobs; two imports of the
//! same layers at once.

use rstest::rstest;

use super::build::{self, Comp, Tar};
use super::support::{Who, World, need};
use super::{contents, image, import_ok, refused, store, tools};

/// A one-layer hostile image.
fn hostile(case: &str) -> (Vec<u8>, Comp) {
    let mut t = Tar::new();
    t.dir("etc/", 0o755);
    let c = match case {
        "absolute" => {
            t.file("/etc/evil", 0o644, b"x");
            Comp::Gzip
        }
        "dotdot" => {
            t.file("etc/../../evil", 0o644, b"x");
            Comp::Gzip
        }
        "symlink-out" => {
            t.symlink("etc/x", "../../../etc/shadow");
            Comp::Gzip
        }
        "through-symlink" => {
            t.symlink("lnk", "/etc").file("lnk/evil", 0o644, b"x");
            Comp::Gzip
        }
        "hardlink-absolute" => {
            t.hardlink("etc/x", "/etc/shadow");
            Comp::Gzip
        }
        "hardlink-up" => {
            t.hardlink("etc/x", "../etc/shadow");
            Comp::Gzip
        }
        "hardlink-missing" => {
            t.hardlink("etc/x", "etc/not-in-this-layer");
            Comp::Gzip
        }
        "hardlink-dir" => {
            t.hardlink("x", "etc");
            Comp::Gzip
        }
        "device" => {
            t.device("etc/null", 1, 3);
            Comp::Gzip
        }
        "whiteout-device" => {
            t.device("etc/x", 0, 0);
            Comp::Gzip
        }
        "setuid" => {
            t.file("etc/su", 0o4755, b"#!/bin/sh\n");
            Comp::Gzip
        }
        "bomb" => {
            // 16 MiB of zeros: a few KiB compressed, over the 1M cap given below.
            t.file("etc/zeros", 0o644, &vec![0u8; 16 << 20]);
            Comp::Zstd
        }
        "setuid-contiguous" => {
            t.contiguous("etc/su", 0o4755, b"#!/bin/sh\n");
            Comp::Gzip
        }
        "sparse-bomb" => {
            // 1 KiB of tar, 64 MiB of file: over the 1M cap given below.
            t.sparse("etc/zeros", 64 << 20);
            Comp::Gzip
        }
        "long-name" => {
            // 2 MiB of name, which the tar parser would hold in memory whole.
            t.long_name(2 << 20);
            Comp::Gzip
        }
        "pax-header" => {
            t.pax(2 << 20);
            Comp::Zstd
        }
        "entries" => {
            for i in 0..200 {
                t.file(&format!("etc/f{i}"), 0o644, b"");
            }
            Comp::Gzip
        }
        other => panic!("no case {other}"),
    };
    (t.bytes(), c)
}

#[rstest]
#[case::absolute("absolute", &[], Some("absolute-path"), Some("absolute-path"))]
#[case::dotdot("dotdot", &[], Some("parent-dir"), Some("parent-dir"))]
#[case::symlink_out("symlink-out", &[], Some("link-outside"), Some("link-outside"))]
#[case::through_symlink("through-symlink", &[], Some("link-outside"), Some("link-outside"))]
#[case::hardlink_absolute("hardlink-absolute", &[], Some("hardlink-outside"), Some("hardlink-outside"))]
#[case::hardlink_up("hardlink-up", &[], Some("hardlink-outside"), Some("hardlink-outside"))]
#[case::hardlink_missing("hardlink-missing", &[], Some("hardlink-outside"), Some("hardlink-outside"))]
#[case::hardlink_dir("hardlink-dir", &[], Some("hardlink-outside"), Some("hardlink-outside"))]
#[case::whiteout_device("whiteout-device", &[], Some("bad-entry"), Some("bad-entry"))]
// A root store keeps device nodes and setuid bits (every overlay is nosuid,nodev): only an
// unprivileged store refuses them.
#[case::device("device", &[], None, Some("device"))]
#[case::setuid("setuid", &[], None, Some("setuid"))]
#[case::setuid_contiguous("setuid-contiguous", &[], None, Some("setuid"))]
#[case::bomb("bomb", &["--max-size", "1M"], Some("too-large"), Some("too-large"))]
#[case::sparse_bomb("sparse-bomb", &["--max-size", "1M"], Some("too-large"), Some("too-large"))]
#[case::long_name("long-name", &[], Some("too-large"), Some("too-large"))]
#[case::pax_header("pax-header", &[], Some("too-large"), Some("too-large"))]
#[case::entries("entries", &["--max-entries", "100"], Some("too-many-entries"), Some("too-many-entries"))]
#[ignore = "needs root: run by scripts/test"]
fn hostile_archives_are_refused_and_leave_nothing(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[case] case: &str,
    #[case] flags: &[&str],
    #[case] as_root: Option<&str>,
    #[case] rootless: Option<&str>,
) {
    need(who);
    let w = World::new("img-hostile");
    let st = store(&w, who, "store");
    let dir = w.dir.join("layout");
    let (tar, c) = hostile(case);
    build::layout(&dir, &build::single(tar, c), "1.0");
    let mut args = vec!["import", dir.to_str().unwrap()];
    args.extend_from_slice(flags);
    let want = if who == Who::Root { as_root } else { rootless };
    match want {
        Some(kind) => {
            assert_eq!(refused(&w, who, &st, &args), kind);
            assert_eq!(
                contents(&st),
                Vec::<String>::new(),
                "the store keeps nothing"
            );
        }
        None => {
            let (code, v) = image(&w, who, &st, &args);
            assert_eq!(code, 0, "{v}");
        }
    }
}

/// An archive file (read in place, its members indexed) whose member has a 2 MiB GNU long
/// name: refused before the name is held in memory.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn an_archive_member_with_huge_headers_is_refused(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("img-headers");
    let st = store(&w, who, "store");
    let archive = w.dir.join("a.tar");
    let mut t = Tar::new();
    t.file("manifest.json", 0o644, b"[]").long_name(2 << 20);
    std::fs::write(&archive, t.bytes()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        refused(&w, who, &st, &["import", archive.to_str().unwrap()]),
        "too-large"
    );
    assert_eq!(contents(&st), Vec::<String>::new());
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn an_unprivileged_store_can_drop_setuid_bits_when_asked() {
    need(Who::Rootless);
    let w = World::new("img-strip");
    let st = store(&w, Who::Rootless, "store");
    let dir = w.dir.join("layout");
    let (tar, c) = hostile("setuid");
    build::layout(&dir, &build::single(tar, c), "1.0");
    let (code, v) = image(
        &w,
        Who::Rootless,
        &st,
        &[
            "import",
            "--strip-setuid",
            "--name",
            "s:1",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["stripped"], 1);
    let (_, v) = image(&w, Who::Rootless, &st, &["inspect", "s:1"]);
    let layer = std::path::PathBuf::from(v["layers"][0]["path"].as_str().unwrap());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(layer.join("etc/su"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
}

#[rstest]
#[case::flipped_byte("flip", "digest-mismatch")]
#[case::truncated("truncate", "size-mismatch")]
#[case::wrong_diff_id("diff-id", "digest-mismatch")]
#[ignore = "needs root: run by scripts/test"]
fn a_corrupted_blob_is_refused(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[case] how: &str,
    #[case] kind: &str,
) {
    need(who);
    let w = World::new("img-corrupt");
    let st = store(&w, who, "store");
    let dir = w.dir.join("layout");
    let mut t = Tar::new();
    t.dir("etc/", 0o755)
        .file("etc/motd", 0o644, b"hello, world\n");
    let tar = t.bytes();
    // Uncompressed, so that a flipped byte of a file's content still reads as a tar.
    let written = build::layout(&dir, &build::single(tar.clone(), Comp::None), "1.0");
    let blob = &written.blobs[0];
    let mut bytes = std::fs::read(blob).unwrap();
    match how {
        "flip" => {
            let at = bytes.windows(5).position(|x| x == b"hello").unwrap();
            bytes[at] = b'j';
            std::fs::write(blob, &bytes).unwrap();
        }
        "truncate" => {
            bytes.pop();
            std::fs::write(blob, &bytes).unwrap();
        }
        _ => {
            // A layer whose blob matches its descriptor, but not the config's diff_id: build
            // the image with another layer's diff_id in its config.
            let mut other = Tar::new();
            other
                .dir("etc/", 0o755)
                .file("etc/motd", 0o644, b"jello, world\n");
            let img = build::Image {
                layers: vec![(other.bytes(), Comp::Gzip)],
                config: serde_json::json!({}),
            };
            std::fs::remove_dir_all(&dir).unwrap();
            build::layout(&dir, &img, "1.0");
            // Swap the config's diff_id for the first tar's.
            let index: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
            let md = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
            let blobs = dir.join("blobs/sha256");
            let mut manifest: serde_json::Value =
                serde_json::from_slice(&std::fs::read(blobs.join(build::hex(&md))).unwrap())
                    .unwrap();
            let cd = manifest["config"]["digest"].as_str().unwrap().to_owned();
            let mut config: serde_json::Value =
                serde_json::from_slice(&std::fs::read(blobs.join(build::hex(&cd))).unwrap())
                    .unwrap();
            config["rootfs"]["diff_ids"][0] = build::sha256(&tar).into();
            let config = serde_json::to_vec(&config).unwrap();
            let cd = build::sha256(&config);
            std::fs::write(blobs.join(build::hex(&cd)), &config).unwrap();
            manifest["config"]["digest"] = cd.into();
            manifest["config"]["size"] = config.len().into();
            let manifest = serde_json::to_vec(&manifest).unwrap();
            let md = build::sha256(&manifest);
            std::fs::write(blobs.join(build::hex(&md)), &manifest).unwrap();
            let mut index = index;
            index["manifests"][0]["digest"] = md.into();
            index["manifests"][0]["size"] = manifest.len().into();
            std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
            std::process::Command::new("chmod")
                .args(["-R", "a+rX"])
                .arg(&dir)
                .status()
                .unwrap();
        }
    }
    assert_eq!(
        refused(&w, who, &st, &["import", dir.to_str().unwrap()]),
        kind
    );
    assert_eq!(contents(&st), Vec::<String>::new());
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn imports_of_the_same_layers_at_once_are_safe(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    if tools() {
        return;
    }
    let w = World::new("img-race");
    let st = store(&w, who, "store");
    let (layout, written) = super::standard_layout(&w, "layout");
    let layout = layout.to_str().unwrap().to_owned();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (w, st, layout) = (&w, &st, &layout);
                s.spawn(move || import_ok(w, who, st, &["--name", &format!("r:{i}"), layout]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.iter().all(|id| *id == written.id), "{ids:?}");
    let c = contents(&st);
    let count = |sub: &str| c.iter().filter(|x| x.starts_with(sub)).count();
    assert_eq!(
        (
            count("layers/"),
            count("images/"),
            count("names/"),
            count("tmp/")
        ),
        (3, 1, 4, 0),
        "{c:?}"
    );
    // And the image they made runs.
    let o = super::k(
        &w,
        who,
        &st,
        &["run", "--image", "r:0", "--", "cat", "/srv/hello"],
    );
    super::support::assert_code(&o, 0);
    assert_eq!(super::support::stdout(&o), "layer3\n");
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_store_someone_else_could_change_is_refused(#[values(Who::Root, Who::Rootless)] who: Who) {
    use std::os::unix::fs::PermissionsExt;
    need(who);
    let w = World::new("img-trust");
    let dir = w.dir.join("layout");
    let mut t = Tar::new();
    t.dir("etc/", 0o755).file("etc/motd", 0o644, b"hi\n");
    build::layout(&dir, &build::single(t.bytes(), Comp::Gzip), "1.0");
    let layout = dir.to_str().unwrap();
    // A store that belongs to someone else.
    let theirs = w.dir.join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
    if who == Who::Root {
        super::support::chown(&theirs, super::support::test_user().unwrap());
    }
    assert_eq!(refused(&w, who, &theirs, &["import", layout]), "store");
    // A store below a directory everyone may write (and rename in), not sticky.
    let open = w.dir.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let below = open.join("store");
    std::fs::create_dir(&below).unwrap();
    std::fs::set_permissions(&below, std::fs::Permissions::from_mode(0o700)).unwrap();
    if who == Who::Rootless {
        super::support::chown(&below, super::support::test_user().unwrap());
    }
    assert_eq!(refused(&w, who, &below, &["import", layout]), "store");
    // The same below a sticky directory (as /tmp is) is fine; a group-readable store is made
    // 0700.
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::set_permissions(&below, std::fs::Permissions::from_mode(0o750)).unwrap();
    let (code, v) = image(&w, who, &below, &["import", layout]);
    assert_eq!(code, 0, "{v}");
    let mode = std::fs::metadata(&below).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}
