//! Sandboxes from images: the three import formats, whiteouts and opaque directories inside,
//! the config's defaults and what overrides them, explain, `rm` of an image in use, audit.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use rstest::rstest;

use super::build;
use super::support::{Mode, Who, World, assert_code, code, need, run_as_with, stderr, stdout};
use super::{image, import_ok, k, refused, standard_layout, store, tools};

/// What a sandbox of the standard image shows: /etc, /opt/opaque, /top, /srv/hello, and the
/// top level.
pub const LOOK: &str = "ls /etc | tr '\\n' ' '; echo; ls /opt/opaque | tr '\\n' ' '; echo; \
     ls /top | tr '\\n' ' '; echo; cat /srv/hello; ls / | tr '\\n' ' '; echo";

/// Checks [`LOOK`]'s output: the whiteouts and opaque directories of layer 2 applied, the zstd
/// layer 3 on top.
pub fn looks_right(out: &str) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    // etc/deleteme is gone (a whiteout), etc/added came with layer 2.
    assert_eq!(lines[0].trim(), "added group hostname passwd", "{out}");
    // opt/opaque and the top-level top are opaque in layer 2: only what layer 2 has.
    assert_eq!(lines[1].trim(), "new", "{out}");
    assert_eq!(lines[2].trim(), "new", "{out}");
    assert_eq!(lines[3], "layer3", "{out}");
    // The top-level gone was whited out.
    let top: Vec<&str> = lines[4].split_whitespace().collect();
    assert!(!top.contains(&"gone"), "{out}");
    for name in ["bin", "etc", "opt", "srv", "top", "tmp"] {
        assert!(top.contains(&name), "{name} missing: {out}");
    }
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn three_formats_run_with_their_whiteouts(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    if tools() {
        return;
    }
    let w = World::new("img-formats");
    let st = store(&w, who, "store");
    let (layout, written) = standard_layout(&w, "layout");
    let layout = layout.display().to_string();
    // An OCI image layout.
    let id = import_ok(&w, who, &st, &["--name", "kt/layout:1", &layout]);
    assert_eq!(id, written.id);
    // The same image as an OCI archive: nothing new to unpack.
    let oa = w.dir.join("img.oci.tar");
    build::oci_archive(std::path::Path::new(&layout), &oa);
    let (code_, v) = image(
        &w,
        who,
        &st,
        &["import", "--name", "kt/oa:1", oa.to_str().unwrap()],
    );
    assert_eq!(code_, 0, "{v}");
    assert_eq!(v["id"], id.as_str());
    assert!(
        v["layers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l[1] == false),
        "{v}"
    );
    // A docker archive, written by skopeo (gzip only: docker archives can't hold zstd).
    let gz = w.dir.join("layout-gz");
    let gz_written = build::layout(&gz, &build::standard(false), "1.0");
    let home = w.dir.join("skopeo");
    let da = home.join("img.docker.tar");
    build::skopeo(
        &home,
        &[
            "copy",
            "-q",
            &format!("oci:{}:1.0", gz.display()),
            &format!("docker-archive:{}:kekkai/test:1.0", da.display()),
        ],
    );
    let (code_, v) = image(&w, who, &st, &["import", da.to_str().unwrap()]);
    assert_eq!(code_, 0, "{v}");
    assert_eq!(v["id"], gz_written.id.as_str());
    assert_eq!(v["names"][0], "kekkai/test:1.0");
    for name in ["kt/layout:1", "kt/oa:1", "kekkai/test:1.0"] {
        let o = k(
            &w,
            who,
            &st,
            &["run", "--image", name, "--", "sh", "-c", LOOK],
        );
        assert_code(&o, 0);
        looks_right(&stdout(&o));
    }
    // Listed with their names.
    let (_, v) = image(&w, who, &st, &["ls"]);
    let names: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["names"].as_array().unwrap().clone())
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    for name in ["kt/layout:1", "kt/oa:1", "kekkai/test:1.0"] {
        assert!(names.iter().any(|n| n == name), "{names:?}");
    }
    // The three are one image (the same config: layers are named by their uncompressed
    // digests). Removing a name of an image that has others only untags it; the last name
    // takes the image and its layers.
    let (c, v) = image(&w, who, &st, &["rm", "kt/oa:1", "kt/layout:1"]);
    assert_eq!(c, 0, "{v}");
    assert_eq!(v["untagged"].as_array().unwrap().len(), 2, "{v}");
    assert!(v["removed"].as_array().unwrap().is_empty(), "{v}");
    let (c, v) = image(&w, who, &st, &["rm", "kekkai/test:1.0"]);
    assert_eq!(c, 0, "{v}");
    assert_eq!(v["removed"][0], id.as_str());
    assert_eq!(super::contents(&st), Vec::<String>::new());
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn config_defaults_sit_under_the_policy_and_the_command_line(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    if tools() {
        return;
    }
    let w = World::new("img-defaults");
    let st = store(&w, who, "store");
    let (layout, _) = standard_layout(&w, "layout");
    import_ok(&w, who, &st, &["--name", "kt:1", layout.to_str().unwrap()]);
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--image", "kt:1"];
        all.extend_from_slice(args);
        let o = k(&w, who, &st, &all);
        assert_code(&o, 0);
        stdout(&o)
    };
    // No command: Entrypoint + Cmd, with the image's Env.
    assert_eq!(run(&[]).trim(), "hello from from-image");
    // A command replaces Entrypoint and Cmd both (`/bin/sh -c echo direct` would print "").
    assert_eq!(run(&["--", "echo", "direct"]).trim(), "direct");
    // The shipped default sets cwd (${PWD}) and identity (nobody): they win over WorkingDir
    // and User; the image's Env is there.
    let out = run(&["--", "sh", "-c", "echo $GREETING; echo $PATH; pwd; id -u"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "from-image",
            "/bin",
            w.dir.path().to_str().unwrap(),
            "65534"
        ]
    );
    // The command line overrides the image.
    let out = run(&[
        "--setenv",
        "GREETING=cli",
        "--chdir",
        "/opt",
        "--",
        "sh",
        "-c",
        "echo $GREETING; pwd",
    ]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["cli", "/opt"]);
    let out = run(&[
        "--unsetenv",
        "GREETING",
        "--",
        "sh",
        "-c",
        "echo x${GREETING}x",
    ]);
    assert_eq!(out.trim(), "xx");
    // A policy that sets neither cwd nor identity gets WorkingDir and User.
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\nreplace: [cwd, identity]\n",
    );
    let out = run(&["-p", "./p.yaml", "--", "sh", "-c", "pwd; id -u; id -g"]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["/srv", "1000", "1000"]);
    // An image without Entrypoint or Cmd needs a command: a usage error.
    let mut bare = build::standard(true);
    bare.config = serde_json::json!({ "Env": ["PATH=/bin"] });
    let bare_dir = w.dir.join("bare");
    build::layout(&bare_dir, &bare, "1.0");
    import_ok(
        &w,
        who,
        &st,
        &["--name", "bare:1", bare_dir.to_str().unwrap()],
    );
    let o = k(&w, who, &st, &["run", "--image", "bare:1"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn explain_names_the_layers_and_a_network_brings_the_hosts_resolver(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    if tools() {
        return;
    }
    let w = World::new("img-explain");
    let st = store(&w, who, "store");
    let (layout, written) = standard_layout(&w, "layout");
    import_ok(&w, who, &st, &["--name", "kt:1", layout.to_str().unwrap()]);
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(build::hex(&written.id))).unwrap(),
    )
    .unwrap();
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    let o = k(&w, who, &st, &["explain", "--image", "kt:1"]);
    assert_code(&o, 0);
    let text = stdout(&o);
    for d in &diff_ids {
        assert!(text.contains(d.as_str()), "{d} not in:\n{text}");
    }
    let o = k(&w, who, &st, &["explain", "--json", "--image", "kt:1"]);
    assert_code(&o, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let shown: Vec<&str> = v["image"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["diff_id"].as_str().unwrap())
        .collect();
    let top_first: Vec<&str> = diff_ids.iter().rev().map(String::as_str).collect();
    assert_eq!(shown, top_first);
    assert_eq!(v["image"]["id"], written.id.as_str());
    // No such image: the policy (here, --image) is invalid.
    // (errors about an override name the flag)
    let o = k(&w, who, &st, &["explain", "--image", "nope:1"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("--image nope:1"), "{}", stderr(&o));
    // A policy with both image and lower.
    w.dir.write(
        "both.yaml",
        "version: 1\nrootfs: { image: \"kt:1\", lower: [/] }\n",
    );
    let o = k(&w, who, &st, &["explain", "-p", "./both.yaml"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("rootfs.image"), "{}", stderr(&o));
    // The image is the root of a policy that names it, with a network: the host's resolver
    // configuration and hosts file are bound over the image's.
    w.dir.write(
        "net.yaml",
        "version: 1\nextends: default\nreplace: [rootfs.lower]\nrootfs: { image: \"kt:1\" }\nnetwork: host\n",
    );
    let o = k(
        &w,
        who,
        &st,
        &["run", "-p", "./net.yaml", "--", "cat", "/etc/hosts"],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), std::fs::read_to_string("/etc/hosts").unwrap());
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn an_image_in_use_is_not_removed(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    if tools() {
        return;
    }
    let w = World::new("img-inuse");
    let st = store(&w, who, "store");
    let (layout, _) = standard_layout(&w, "layout");
    import_ok(&w, who, &st, &["--name", "kt:1", layout.to_str().unwrap()]);
    let mut child = w
        .command(who)
        .env("KEKKAI_STORE", &st)
        .args([
            "run",
            "--no-pty",
            "--image",
            "kt:1",
            "--",
            "sh",
            "-c",
            "echo ready; read x; echo done",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    assert_eq!(refused(&w, who, &st, &["rm", "kt:1"]), "in-use");
    let (_, v) = image(&w, who, &st, &["inspect", "kt:1"]);
    assert_eq!(v["in_use"], true);
    // prune leaves it too (it has a name, and it is in use).
    let (c, _) = image(&w, who, &st, &["prune"]);
    assert_eq!(c, 0);
    assert!(!super::contents(&st).is_empty());
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    drop(child.stdin.take());
    assert_eq!(lines.next().unwrap().unwrap(), "done");
    assert!(child.wait().unwrap().success());
    let (c, v) = image(&w, who, &st, &["rm", "kt:1"]);
    assert_eq!(c, 0, "{v}");
    assert_eq!(v["layers_removed"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(super::contents(&st), Vec::<String>::new());
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn audit_of_an_image_finds_no_escape(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    if tools() {
        return;
    }
    let w = World::new("img-audit");
    let st = store(&w, who, "store");
    let (layout, _) = standard_layout(&w, "layout");
    import_ok(&w, who, &st, &["--name", "kt:1", layout.to_str().unwrap()]);
    // Rootless in a delegated cgroup, as the escape suite runs: the limits are enforced.
    let mode = match who {
        Who::Root => Mode::Root,
        Who::Rootless => Mode::Delegated,
    };
    let o = run_as_with(
        &w,
        mode,
        &[("KEKKAI_STORE", st.to_str().unwrap())],
        &["audit", "--json", "--image", "kt:1"],
    );
    let verdicts = super::support::verdicts(&o);
    let escaped: Vec<&String> = verdicts
        .iter()
        .filter(|(_, (v, _))| v == "escaped")
        .map(|(n, _)| n)
        .collect();
    assert!(escaped.is_empty(), "escapes: {escaped:?}");
    let errors: Vec<String> = verdicts
        .iter()
        .filter(|(_, (v, _))| v == "error")
        .map(|(n, (_, d))| format!("{n}: {d}"))
        .collect();
    assert!(errors.is_empty(), "probe errors: {errors:?}");
    assert!(verdicts.len() > 100, "the battery ran: {}", verdicts.len());
    assert_code(&o, 0);
}

/// An image whose layers hold top-level directories of their own, beside whiteouts and opaque
/// directories: layer 1 has `bin`, `etc`, `usr`, `var`, `gone` and `top`; layer 2 whites out
/// `gone`, makes `top` opaque, adds `dir2` (with an opaque `sub` and a whiteout) and `more`,
/// and a file `etc/added`. The directories that only one layer has and that need no upper
/// layer share one overlay of that layer (in a user namespace too: nothing is mounted below a
/// layer), each a bind of its directory; the listing is exactly what overlays of their own show (a writable root gives
/// every directory an overlay with an upper layer of its own, so nothing shares there).
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn one_layers_directories_share_an_overlay_and_show_the_same(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    if tools() {
        return;
    }
    let w = World::new("img-shared");
    let st = store(&w, who, "store");
    let mut l1 = build::Tar::new();
    l1.dir("./", 0o755)
        .dir("bin/", 0o755)
        .file("bin/busybox", 0o755, &build::busybox());
    for a in build::APPLETS {
        l1.symlink(&format!("bin/{a}"), "busybox");
    }
    l1.dir("etc/", 0o755)
        .file("etc/passwd", 0o644, b"root:x:0:0:root:/:/bin/sh\n")
        .dir("usr/", 0o755)
        .file("usr/a", 0o644, b"a\n")
        .dir("var/", 0o755)
        .file("var/b", 0o644, b"b\n")
        .dir("gone/", 0o755)
        .file("gone/x", 0o644, b"x\n")
        .dir("top/", 0o755)
        .file("top/old", 0o644, b"old\n")
        .dir("tmp/", 0o1777);
    let mut l2 = build::Tar::new();
    l2.dir("etc/", 0o755)
        .file("etc/added", 0o644, b"added\n")
        .file(".wh.gone", 0o644, b"")
        .dir("top/", 0o755)
        .file("top/.wh..wh..opq", 0o644, b"")
        .file("top/new", 0o644, b"new\n")
        .dir("dir2/", 0o755)
        .dir("dir2/sub/", 0o755)
        .file("dir2/sub/.wh..wh..opq", 0o644, b"")
        .file("dir2/sub/s", 0o644, b"s\n")
        .file("dir2/.wh.nothing", 0o644, b"")
        .file("dir2/d", 0o644, b"d\n")
        .dir("more/", 0o755)
        .file("more/m", 0o644, b"m\n");
    let img = build::Image {
        layers: vec![
            (l1.bytes(), build::Comp::Gzip),
            (l2.bytes(), build::Comp::Gzip),
        ],
        config: serde_json::json!({ "Env": ["PATH=/bin"], "Cmd": ["/bin/sh"] }),
    };
    let layout = w.dir.join("layout");
    build::layout(&layout, &img, "1.0");
    import_ok(
        &w,
        who,
        &st,
        &["--name", "kt/shared:1", layout.to_str().unwrap()],
    );
    w.dir.write(
        "writable.yaml",
        "version: 1\nextends: default\nrootfs: { writable: true }\n",
    );
    let look = "ls -a / /bin/.. /dir2 /dir2/sub /etc /more /top /usr /var | tr '\\n' ' '; echo; \
                cat /proc/self/mountinfo";
    let run = |policy: &[&str]| {
        let mut args = vec!["run"];
        args.extend_from_slice(policy);
        args.extend(["--image", "kt/shared:1", "--", "sh", "-c", look]);
        let o = k(&w, who, &st, &args);
        assert_code(&o, 0);
        stdout(&o)
    };
    let shared = run(&[]);
    let own = run(&["-p", "./writable.yaml"]);
    let listing = |out: &str| out.lines().next().unwrap().to_owned();
    assert_eq!(listing(&shared), listing(&own));
    let l = listing(&shared);
    for want in [
        "/dir2: . .. d sub ",
        "/dir2/sub: . .. s ",
        "/etc: . .. added passwd ",
        "/more: . .. m ",
        "/top: . .. new ",
        "/usr: . .. a ",
        "/var: . .. b ",
    ] {
        assert!(l.contains(want), "{want:?} in {l}");
    }
    let root_listing = l.split("/bin/..:").next().unwrap();
    assert!(!root_listing.contains(" gone "), "{l}");
    // Who shares: layer 1's bin and usr; layer 2's dir2, more and top. etc has both layers
    // (a stack of two), var needs an upper layer (the policy's /var/tmp is missing from it),
    // tmp is the policy's tmpfs: each of those has its own.
    let tops = super::support::top_level_overlays(&shared);
    let at = |p: &str| tops.iter().find(|m| m.point == p).unwrap().clone();
    let (usr, var, bin) = (at("/usr"), at("/var"), at("/bin"));
    let (dir2, more, top, etc) = (at("/dir2"), at("/more"), at("/top"), at("/etc"));
    assert_eq!((usr.root.as_str(), top.root.as_str()), ("/usr", "/top"));
    assert_eq!(usr.dev, bin.dev, "{shared}");
    assert_eq!(var.root, "/");
    assert_ne!(var.dev, usr.dev);
    assert!(dir2.dev == more.dev && more.dev == top.dev, "{shared}");
    assert_ne!(usr.dev, top.dev);
    assert_eq!(etc.root, "/");
    for m in [&usr, &top, &etc] {
        for opt in ["ro", "nosuid", "nodev"] {
            assert!(m.opts.iter().any(|o| o == opt), "{m:?}");
        }
    }
    let tops = super::support::top_level_overlays(&own);
    assert!(tops.iter().all(|m| m.root == "/"), "{own}");
}

/// A layer whose own root is opaque (`./.wh..wh..opq`, as `docker export`-style squashes and
/// some builders write) hides every layer below it: nothing of layer 1 shows, not its
/// top-level directories and not its `/etc/passwd` (the identity's lookup stops there too).
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn an_opaque_layer_root_hides_every_layer_below(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    if tools() {
        return;
    }
    let w = World::new("img-opaque-root");
    let st = store(&w, who, "store");
    let mut l1 = build::Tar::new();
    l1.dir("./", 0o755)
        .dir("old/", 0o755)
        .file("old/secret", 0o644, b"deleted by layer 2\n")
        .dir("etc/", 0o755)
        .file("etc/passwd", 0o644, b"old:x:7:7::/:/bin/sh\n")
        .file("etc/old", 0o644, b"old\n")
        .dir("bin/", 0o755)
        .file("bin/old-tool", 0o755, b"#!/bin/sh\n");
    let mut l2 = build::Tar::new();
    l2.dir("./", 0o755)
        .file(".wh..wh..opq", 0o644, b"")
        .dir("bin/", 0o755)
        .file("bin/busybox", 0o755, &build::busybox());
    for a in build::APPLETS {
        l2.symlink(&format!("bin/{a}"), "busybox");
    }
    l2.dir("etc/", 0o755)
        .file("etc/new", 0o644, b"new\n")
        .dir("new/", 0o755)
        .dir("tmp/", 0o1777);
    let img = build::Image {
        layers: vec![
            (l1.bytes(), build::Comp::Gzip),
            (l2.bytes(), build::Comp::Gzip),
        ],
        config: serde_json::json!({ "Env": ["PATH=/bin"], "Cmd": ["/bin/sh"] }),
    };
    let layout = w.dir.join("layout");
    build::layout(&layout, &img, "1.0");
    import_ok(
        &w,
        who,
        &st,
        &["--name", "kt/opq:1", layout.to_str().unwrap()],
    );
    let look = "ls / /etc /bin | tr '\\n' ' '; echo";
    let o = k(
        &w,
        who,
        &st,
        &["run", "--image", "kt/opq:1", "--", "sh", "-c", look],
    );
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.contains(" new "), "{out}");
    assert!(out.contains("/etc: new "), "{out}");
    for gone in ["old", "passwd", "old-tool"] {
        assert!(
            !out.split_whitespace().any(|w| w == gone),
            "{gone} shows: {out}"
        );
    }
    // A user of layer 1's passwd is unknown: a policy naming it is invalid.
    w.dir.write(
        "old-user.yaml",
        "version: 1\nextends: default\nidentity: { uid: old }\n",
    );
    let o = k(
        &w,
        who,
        &st,
        &[
            "run",
            "-p",
            "./old-user.yaml",
            "--image",
            "kt/opq:1",
            "--",
            "true",
        ],
    );
    assert_code(&o, 125);
    assert!(stderr(&o).contains("identity.uid"), "{}", stderr(&o));
}
