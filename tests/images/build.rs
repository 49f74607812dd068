//! Test images, made here: tar layers with whatever entries a test wants (hostile ones too),
//! OCI image layouts, OCI archives (GNU tar of a layout), docker archives (skopeo, a real
//! producer, run as the test user so that nothing of it lands in root's /var/lib/containers).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use sha2::Digest as _;

/// How a layer is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

pub fn sha256(bytes: &[u8]) -> String {
    let d = sha2::Sha256::digest(bytes);
    let mut s = String::from("sha256:");
    for b in d.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

pub fn hex(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

/// A tar layer, entry by entry. Names are written as given (absolute paths and `..` too).
pub struct Tar(tar::Builder<Vec<u8>>);

impl Default for Tar {
    fn default() -> Self {
        Tar::new()
    }
}

impl Tar {
    pub fn new() -> Tar {
        Tar(tar::Builder::new(Vec::new()))
    }

    fn header(name: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        let bytes = name.as_bytes();
        assert!(bytes.len() < 100, "test entry names stay short");
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(size);
        h
    }

    fn put(&mut self, mut h: tar::Header, data: &[u8]) -> &mut Tar {
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> &mut Tar {
        self.put(Tar::header(name, tar::EntryType::Directory, mode, 0), &[])
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Tar {
        self.put(
            Tar::header(
                name,
                tar::EntryType::Regular,
                mode,
                u64::try_from(data.len()).unwrap(),
            ),
            data,
        )
    }

    fn link(&mut self, kind: tar::EntryType, name: &str, target: &str) -> &mut Tar {
        let mut h = Tar::header(name, kind, 0o777, 0);
        h.set_link_name_literal(target.as_bytes()).unwrap();
        self.put(h, &[])
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.link(tar::EntryType::Symlink, name, target)
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.link(tar::EntryType::Link, name, target)
    }

    pub fn device(&mut self, name: &str, major: u32, minor: u32) -> &mut Tar {
        let mut h = Tar::header(name, tar::EntryType::Char, 0o666, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.put(h, &[])
    }

    /// A file of another entry type that is a regular file all the same (contiguous: `7`).
    pub fn contiguous(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Tar {
        let h = Tar::header(
            name,
            tar::EntryType::Continuous,
            mode,
            u64::try_from(data.len()).unwrap(),
        );
        self.put(h, data)
    }

    /// A GNU sparse file of `real` bytes: 512 bytes of data at its end, a hole before.
    pub fn sparse(&mut self, name: &str, real: u64) -> &mut Tar {
        let mut h = Tar::header(name, tar::EntryType::GNUSparse, 0o644, 512);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.sparse[0].set_offset(real - 512);
        gnu.sparse[0].set_length(512);
        gnu.set_real_size(real);
        self.put(h, &[1u8; 512])
    }

    /// A GNU long name of `len` bytes for a file after it.
    pub fn long_name(&mut self, len: usize) -> &mut Tar {
        let name = vec![b'a'; len];
        let h = Tar::header(
            "././@LongLink",
            tar::EntryType::GNULongName,
            0o644,
            u64::try_from(len).unwrap(),
        );
        self.put(h, &name)
            .put(Tar::header("f", tar::EntryType::Regular, 0o644, 0), &[])
    }

    /// A PAX extended header of about `len` bytes (one `comment` record) for a file after it.
    pub fn pax(&mut self, len: usize) -> &mut Tar {
        let body = format!("comment={}\n", "a".repeat(len));
        // The record's length counts its own digits.
        let mut n = body.len() + 2;
        while n != body.len() + 1 + n.to_string().len() {
            n = body.len() + 1 + n.to_string().len();
        }
        let record = format!("{n} {body}");
        let h = Tar::header(
            "pax",
            tar::EntryType::XHeader,
            0o644,
            u64::try_from(record.len()).unwrap(),
        );
        self.put(h, record.as_bytes())
            .put(Tar::header("f", tar::EntryType::Regular, 0o644, 0), &[])
    }

    pub fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

pub fn compress(tar: &[u8], c: Comp) -> Vec<u8> {
    match c {
        Comp::None => tar.to_vec(),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        Comp::Zstd => {
            ruzstd::encoding::compress_to_vec(tar, ruzstd::encoding::CompressionLevel::Fastest)
        }
    }
}

/// An image: its layers (bottom first) and its config's `config` section.
pub struct Image {
    pub layers: Vec<(Vec<u8>, Comp)>,
    pub config: Value,
}

/// What a layout holds.
pub struct Written {
    /// The image id (config digest).
    pub id: String,
    pub manifest: String,
    /// Layer blob paths, bottom first.
    pub blobs: Vec<PathBuf>,
}

fn write_blob(dir: &Path, bytes: &[u8]) -> (String, PathBuf) {
    let d = sha256(bytes);
    let path = dir.join("blobs/sha256").join(hex(&d));
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    (d, path)
}

/// Writes `img` as an OCI image layout in `dir` with the ref name `tag`.
pub fn layout(dir: &Path, img: &Image, tag: &str) -> Written {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut blobs = Vec::new();
    for (tar, c) in &img.layers {
        diff_ids.push(sha256(tar));
        let blob = compress(tar, *c);
        let (d, path) = write_blob(dir, &blob);
        blobs.push(path);
        let media = match c {
            Comp::None => "application/vnd.oci.image.layer.v1.tar",
            Comp::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Comp::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        };
        descs.push(json!({ "mediaType": media, "digest": d, "size": blob.len() }));
    }
    let config = json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": img.config,
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let config = serde_json::to_vec(&config).unwrap();
    let (cd, _) = write_blob(dir, &config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len() },
        "layers": descs,
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let (md, _) = write_blob(dir, &manifest);
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md, "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": tag },
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(dir)
        .status()
        .unwrap();
    Written {
        id: cd,
        manifest: md,
        blobs,
    }
}

/// An OCI archive: the layout, tarred.
pub fn oci_archive(layout: &Path, out: &Path) {
    let ok = Command::new("tar")
        .arg("-C")
        .arg(layout)
        .arg("-cf")
        .arg(out)
        .arg(".")
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// The static busybox userland the tests' images are made of.
pub fn busybox() -> Vec<u8> {
    std::fs::read("/bin/busybox")
        .expect("/bin/busybox (Debian busybox-static, scripts/setup-test-env)")
}

/// Why the image tests can't run here, if they can't.
pub fn missing_tools() -> Option<String> {
    let static_busybox = Command::new("sh")
        .args(["-c", "file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || ldd /bin/busybox 2>&1 | grep -q 'not a dynamic'"])
        .status()
        .is_ok_and(|s| s.success());
    if !static_busybox {
        return Some(
            "no static /bin/busybox (Debian busybox-static): run scripts/setup-test-env".into(),
        );
    }
    None
}

pub const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "id", "test", "pwd", "env", "sleep", "stat", "mkdir", "touch", "rm",
    "head", "tr", "hostname", "readlink", "true", "false", "wc",
];

/// The standard test image: a busybox userland in three layers. Layer 2 deletes
/// `/etc/deleteme` and the top-level `/gone` (whiteouts), makes `/opt/opaque` and the top-level
/// `/top` opaque and adds files; layer 3 (zstd, unless `zstd` is false: docker archives can't
/// hold zstd layers) adds `/srv/hello`.
pub fn standard(zstd: bool) -> Image {
    let mut l1 = Tar::new();
    l1.dir("./", 0o755)
        .dir("bin/", 0o755)
        .file("bin/busybox", 0o755, &busybox());
    for a in APPLETS {
        l1.symlink(&format!("bin/{a}"), "busybox");
    }
    l1.dir("etc/", 0o755)
        .file("etc/hostname", 0o644, b"base\n")
        .file("etc/deleteme", 0o644, b"to be deleted\n")
        .file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/:/bin/sh\nkuser:x:1000:1000::/srv:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n",
        )
        .file("etc/group", 0o644, b"root:x:0:\nkuser:x:1000:\nnogroup:x:65534:\n")
        .dir("opt/", 0o755)
        .dir("opt/keep/", 0o755)
        .file("opt/keep/a", 0o644, b"a\n")
        .dir("opt/opaque/", 0o755)
        .file("opt/opaque/old1", 0o644, b"old1\n")
        .file("opt/opaque/old2", 0o644, b"old2\n")
        .dir("gone/", 0o755)
        .file("gone/x", 0o644, b"x\n")
        .dir("top/", 0o755)
        .file("top/old", 0o644, b"old\n")
        .dir("tmp/", 0o1777);
    let mut l2 = Tar::new();
    l2.dir("etc/", 0o755)
        .file("etc/.wh.deleteme", 0o644, b"")
        .file("etc/added", 0o644, b"added\n")
        .dir("opt/", 0o755)
        .dir("opt/opaque/", 0o755)
        .file("opt/opaque/.wh..wh..opq", 0o644, b"")
        .file("opt/opaque/new", 0o644, b"new\n")
        .file(".wh.gone", 0o644, b"")
        .dir("top/", 0o755)
        .file("top/.wh..wh..opq", 0o644, b"")
        .file("top/new", 0o644, b"new\n");
    let mut l3 = Tar::new();
    l3.dir("srv/", 0o755).file("srv/hello", 0o644, b"layer3\n");
    Image {
        layers: vec![
            (l1.bytes(), Comp::Gzip),
            (l2.bytes(), Comp::Gzip),
            (l3.bytes(), if zstd { Comp::Zstd } else { Comp::Gzip }),
        ],
        config: json!({
            "Env": ["PATH=/bin", "GREETING=from-image"],
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["echo hello from $GREETING"],
            "WorkingDir": "/srv",
            "User": "1000:1000",
        }),
    }
}

/// A one-layer image around `tar`.
pub fn single(tar: Vec<u8>, c: Comp) -> Image {
    Image {
        layers: vec![(tar, c)],
        config: json!({ "Cmd": ["/bin/sh"] }),
    }
}

/// Runs skopeo as the unprivileged test user, with a home of its own in `home` (its blob-info
/// cache goes there, not into root's /var/lib/containers).
pub fn skopeo(home: &Path, args: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let (uid, gid) = crate::support::test_user().expect("test user");
    std::fs::create_dir_all(home).unwrap();
    crate::support::chown(home, (uid, gid));
    let out = Command::new("skopeo")
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("xdg"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_RUNTIME_DIR", home)
        .env("TMPDIR", home)
        .current_dir(home)
        .uid(uid)
        .gid(gid)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
