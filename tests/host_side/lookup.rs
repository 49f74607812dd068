//! The host side of the boundary: what kekkai reads and writes outside the sandbox on the
//! caller's behalf, attacked by a user who owns the working directory (issue 13).
//!
//! Each part of the issue keeps its cases in its own section below.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{Who, World, assert_code, need, parse_report, stderr, stdout, test_user};
use rstest::rstest;

// ── Policy files are read through one descriptor (finding 1) ─────────────────────────────────

/// A uid that belongs to nobody on the test machine: "someone else".
const STRANGER: u32 = 54321;

/// The (uid, gid) `who` runs as.
fn ids(who: Who) -> (u32, u32) {
    match who {
        Who::Root => (0, 0),
        Who::Rootless => test_user().unwrap(),
    }
}

/// Gives `path` (not following a link) to `uid`/`gid`.
fn give(path: &Path, (uid, gid): (u32, u32)) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
}

/// Writes `text` to `path` with `mode`, owned by `owner`, creating missing directories (mode
/// 0755, owned by `owner` too).
fn put(path: &Path, text: &str, mode: u32, owner: (u32, u32)) {
    let parent = path.parent().unwrap();
    if !parent.exists() {
        std::fs::create_dir_all(parent).unwrap();
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
        give(parent, owner);
    }
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    give(path, owner);
}

/// A directory of `owner`'s (mode 0755) below the world, used as the working directory.
fn home_of(w: &World, name: &str, owner: (u32, u32)) -> PathBuf {
    let dir = w.dir.join(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    give(&dir, owner);
    dir
}

/// The unprivileged user's swapper: in its working directory, exchanges the names given as
/// arguments with `renameat2(RENAME_EXCHANGE)` as fast as it can; prints `ready` after the first
/// exchange and, once its stdin closes, how many it made.
const SWAPPER: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2])
AT_FDCWD, RENAME_EXCHANGE = -100, 2
os.set_blocking(0, False)
n = 0
while True:
    if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
        print("renameat2:", os.strerror(ctypes.get_errno()), flush=True)
        sys.exit(1)
    n += 1
    if n == 1:
        print("ready", flush=True)
    if n % 64 == 0:
        try:
            if os.read(0, 1) == b"":
                break
        except BlockingIOError:
            pass
print(n, flush=True)
"#;

/// What the attacker's working directory holds for root's `-p untrusted`.
#[derive(Debug, Clone, Copy)]
enum Bait {
    /// `.kekkai` is a symbolic link to a root-owned directory with a root-owned
    /// `untrusted.yaml` (the reproduction in the issue).
    Symlink,
    /// `.kekkai` is a real root-owned directory (root's own checkout policy) that the
    /// attacker, who owns the working directory, can still exchange with their own.
    RootDirectory,
}

/// An unprivileged user who owns root's working directory swaps `.kekkai` with a directory of
/// their own in a loop, against 1000 lookups of `-p untrusted` by root: root never loads the
/// attacker's policy. Each `kekkai check untrusted untrusted ...` makes one complete lookup and
/// read per argument, as `run`, `explain` and `audit` do.
#[rstest]
#[case::symlink(Bait::Symlink)]
#[case::root_directory(Bait::RootDirectory)]
#[ignore = "needs root: run by scripts/test"]
fn root_never_loads_a_policy_swapped_in_during_the_lookup(#[case] bait: Bait) {
    need(Who::Rootless);
    let w = World::new("lookup-race");
    let attacker = test_user().unwrap();
    let cwd = home_of(&w, "attacker", attacker);
    put(
        &cwd.join("decoy/untrusted.yaml"),
        "version: 1\nname: attacker\n",
        0o644,
        attacker,
    );
    let root_policy = "version: 1\nname: root-policy\n";
    match bait {
        Bait::Symlink => {
            put(
                &w.dir.join("root-policies/untrusted.yaml"),
                root_policy,
                0o644,
                (0, 0),
            );
            std::os::unix::fs::symlink(w.dir.join("root-policies"), cwd.join(".kekkai")).unwrap();
            give(&cwd.join(".kekkai"), attacker);
        }
        Bait::RootDirectory => {
            put(
                &cwd.join(".kekkai/untrusted.yaml"),
                root_policy,
                0o644,
                (0, 0),
            );
        }
    }

    let mut swapper = Command::new("python3");
    swapper
        .args(["-c", SWAPPER, ".kekkai", "decoy"])
        .current_dir(&cwd)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .uid(attacker.0)
        .gid(attacker.1)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut swapper = swapper.spawn().unwrap();
    let mut said = BufReader::new(swapper.stdout.take().unwrap());
    let mut line = String::new();
    said.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n", "the swapper did not start");

    const BATCHES: usize = 20;
    const PER_BATCH: usize = 50;
    let mut loaded: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..BATCHES {
        let o = w
            .command(Who::Root)
            .current_dir(&cwd)
            .arg("check")
            .args(std::iter::repeat_n("untrusted", PER_BATCH))
            .output()
            .unwrap();
        assert_code(&o, 0);
        for l in stdout(&o).lines() {
            let name = l
                .strip_prefix("ok: untrusted (")
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or_else(|| panic!("unexpected line `{l}`"));
            *loaded.entry(name.to_owned()).or_default() += 1;
        }
    }

    drop(swapper.stdin.take());
    let mut rest = String::new();
    said.read_to_string(&mut rest).unwrap();
    let status = swapper.wait().unwrap();
    assert!(status.success(), "the swapper failed: {rest}");
    let swaps: u64 = rest.trim().parse().unwrap();
    eprintln!("{bait:?}: {swaps} exchanges during the lookups; loaded {loaded:?}");

    assert_eq!(loaded.values().sum::<usize>(), BATCHES * PER_BATCH);
    assert_eq!(loaded.get("attacker"), None, "loaded {loaded:?}");
    let allowed: &[&str] = match bait {
        // A symbolic link is never followed: always the shipped policy.
        Bait::Symlink => &["untrusted"],
        // Root's own directory when it was there at the lookup, else the shipped policy.
        Bait::RootDirectory => &["untrusted", "root-policy"],
    };
    assert!(
        loaded.keys().all(|k| allowed.contains(&k.as_str())),
        "loaded {loaded:?}"
    );
}

/// How a `.kekkai/untrusted.yaml` that the caller would otherwise use is spoiled → the policy
/// `kekkai explain -p untrusted` loads (`planted` is the file, `untrusted` the shipped policy).
#[rstest]
#[case::trustworthy("trustworthy", "planted")]
#[case::symlinked_search_dir("dir-link", "untrusted")]
#[case::symlinked_policy_file("file-link", "untrusted")]
#[case::someone_elses_file("stranger-file", "untrusted")]
#[case::someone_elses_dir("stranger-dir", "untrusted")]
#[case::group_writable_file("group-file", "untrusted")]
#[case::world_writable_dir("world-dir", "untrusted")]
#[ignore = "needs root: run by scripts/test"]
fn an_untrustworthy_policy_found_by_name_is_passed_over(
    #[case] how: &str,
    #[case] want: &str,
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    let w = World::new("lookup-trust");
    let me = ids(who);
    let cwd = home_of(&w, "work", me);
    let planted = "version: 1\nname: planted\n";
    let file = cwd.join(".kekkai/untrusted.yaml");
    put(&file, planted, 0o644, me);
    match how {
        "dir-link" => {
            std::fs::rename(cwd.join(".kekkai"), cwd.join("real")).unwrap();
            std::os::unix::fs::symlink("real", cwd.join(".kekkai")).unwrap();
            give(&cwd.join(".kekkai"), me);
        }
        "file-link" => {
            put(&cwd.join("real/untrusted.yaml"), planted, 0o644, me);
            std::fs::remove_file(&file).unwrap();
            std::os::unix::fs::symlink("../real/untrusted.yaml", &file).unwrap();
            give(&file, me);
        }
        "stranger-file" => give(&file, (STRANGER, STRANGER)),
        "stranger-dir" => give(&cwd.join(".kekkai"), (STRANGER, STRANGER)),
        "group-file" => {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).unwrap()
        }
        "world-dir" => {
            std::fs::set_permissions(cwd.join(".kekkai"), std::fs::Permissions::from_mode(0o777))
                .unwrap()
        }
        _ => {}
    }
    let o = w
        .command(who)
        .current_dir(&cwd)
        .args(["explain", "-p", "untrusted", "--json"])
        .output()
        .unwrap();
    assert_code(&o, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(json["policy"]["name"], want, "{}", stderr(&o));
    if want == "untrusted" {
        assert!(
            stderr(&o).contains("passing over .kekkai"),
            "{}",
            stderr(&o)
        );
    }
}

/// `extends` in a policy found by name stays below the directory it was found in and follows no
/// symbolic link: (the `extends` value) → the host name it loads, or refused at `extends`.
#[rstest]
#[case::below("./lib/base.yaml", Some("inside"))]
#[case::out_of_the_directory("../base.yaml", None)]
#[case::out_and_back_in("../.kekkai/lib/base.yaml", None)]
#[case::through_a_symlinked_directory("./outlink/base.yaml", None)]
#[case::a_symlinked_file("./baselink.yaml", None)]
#[ignore = "needs root: run by scripts/test"]
fn extends_from_a_policy_found_by_name_stays_in_its_directory(
    #[case] extends: &str,
    #[case] want: Option<&str>,
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    let w = World::new("lookup-extends");
    let me = ids(who);
    let cwd = home_of(&w, "work", me);
    // Owned by the caller, so only the place decides.
    put(
        &cwd.join("base.yaml"),
        "version: 1\nhostname: outside\n",
        0o644,
        me,
    );
    put(
        &cwd.join(".kekkai/lib/base.yaml"),
        "version: 1\nhostname: inside\n",
        0o644,
        me,
    );
    std::os::unix::fs::symlink("..", cwd.join(".kekkai/outlink")).unwrap();
    give(&cwd.join(".kekkai/outlink"), me);
    std::os::unix::fs::symlink("../base.yaml", cwd.join(".kekkai/baselink.yaml")).unwrap();
    give(&cwd.join(".kekkai/baselink.yaml"), me);
    put(
        &cwd.join(".kekkai/mine.yaml"),
        &format!("version: 1\nextends: {extends}\n"),
        0o644,
        me,
    );
    let o = w
        .command(who)
        .current_dir(&cwd)
        .args(["explain", "-p", "mine", "--json"])
        .output()
        .unwrap();
    match want {
        Some(host) => {
            assert_code(&o, 0);
            let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
            assert_eq!(json["merged"]["hostname"], host);
        }
        None => {
            assert_code(&o, 1);
            assert!(
                stderr(&o).starts_with(".kekkai/mine.yaml:2:10: extends: "),
                "{}",
                stderr(&o)
            );
        }
    }
}

/// The file the report would land in, prepared by someone who can write its directory → the
/// errno kekkai names, if any. kekkai refuses before the program starts (125), and the file the
/// name leads to is untouched.
#[rstest]
#[case::planted_symlink("link", Some("(ELOOP)"))]
#[case::hard_link("hard", None)]
#[case::someone_elses_file("stranger", None)]
#[case::fifo("fifo", Some("(ENXIO)"))]
#[ignore = "needs root: run by scripts/test"]
fn a_report_is_never_written_through_a_planted_name(
    #[case] how: &str,
    #[case] errno: Option<&str>,
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    let w = World::new("report-planted");
    let me = ids(who);
    let cwd = home_of(&w, "work", me);
    // A file the caller may write, somewhere else: what a planted name would clobber.
    let victim = w.dir.join("victim");
    put(&victim, "keep\n", 0o666, me);
    let report = cwd.join("report.json");
    match how {
        "link" => {
            std::os::unix::fs::symlink(&victim, &report).unwrap();
            give(&report, me);
        }
        "hard" => std::fs::hard_link(&victim, &report).unwrap(),
        "stranger" => put(&report, "theirs\n", 0o666, (STRANGER, STRANGER)),
        "fifo" => {
            nix::unistd::mkfifo(&report, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
            std::fs::set_permissions(&report, std::fs::Permissions::from_mode(0o666)).unwrap();
            give(&report, me);
        }
        _ => unreachable!(),
    }
    let o = w
        .command(who)
        .current_dir(&cwd)
        .args(["run", "--report", "report.json", "--", "echo", "ran"])
        .output()
        .unwrap();
    assert_code(&o, 125);
    assert_eq!(stdout(&o), "", "the program must not start");
    if let Some(errno) = errno {
        assert!(stderr(&o).contains(errno), "{}", stderr(&o));
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
    if how == "stranger" {
        assert_eq!(std::fs::read_to_string(&report).unwrap(), "theirs\n");
    }
}

/// The report goes into a new file, or replaces the whole content of the caller's own file.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_report_goes_into_a_new_or_own_file(
    #[values(false, true)] existing: bool,
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    let w = World::new("report-own");
    let me = ids(who);
    let cwd = home_of(&w, "work", me);
    let report = cwd.join("report.json");
    if existing {
        put(&report, &"x".repeat(1 << 16), 0o644, me);
    }
    let o = w
        .command(who)
        .current_dir(&cwd)
        .args(["run", "--report", "report.json", "--", "true"])
        .output()
        .unwrap();
    assert_code(&o, 0);
    let text = std::fs::read_to_string(&report).unwrap();
    assert_eq!(parse_report(&text).ended.exit_code, 0, "{text}");
}

/// The program writes where the report goes (`build` makes the working directory writable) and
/// swaps the report's name for a link to another file while it runs: kekkai opened the report
/// before the program started and writes through that descriptor, so the link leads nowhere.
/// The directory is the test user's (`build` runs a root caller's program as the directory's
/// owner, and refuses a root-owned one); the victim is the caller's.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_program_can_not_redirect_the_report(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("report-swap");
    let me = ids(who);
    let cwd = home_of(&w, "work", ids(Who::Rootless));
    // Writable by whichever id the program gets.
    std::fs::set_permissions(&cwd, std::fs::Permissions::from_mode(0o777)).unwrap();
    let victim = w.dir.join("victim");
    put(&victim, "keep\n", 0o666, me);
    let script = format!(
        "rm -f report.json && ln -s {} report.json",
        victim.display()
    );
    let o = w
        .command(who)
        .current_dir(&cwd)
        .args(["run", "-p", "build", "--report", "report.json", "--"])
        .args(["sh", "-c", &script])
        .output()
        .unwrap();
    assert_code(&o, 0);
    let link = std::fs::symlink_metadata(cwd.join("report.json")).unwrap();
    assert!(link.file_type().is_symlink(), "the program did not swap");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
}

/// Starts `kekkai ARGS` stopped at step 4, before it opens anything of the host's for the new
/// root, runs `swap`, and lets it go on.
fn swapped_before_the_root_is_built(
    w: &World,
    who: Who,
    args: &[&str],
    swap: impl FnOnce(),
) -> std::process::Output {
    use std::io::Write;
    let fifo = w.dir.join("gate");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut child = w
        .command(who)
        .env("KEKKAI_TRACE_STEPS", "1")
        .env("KEKKAI_FAULT", format!("rootfs:wait:{}", fifo.display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while line.trim() != "kekkai-step: rootfs" {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "kekkai ended before step 4"
        );
    }
    swap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .unwrap()
        .write_all(b"x")
        .unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let mut o = child.wait_with_output().unwrap();
    o.stderr = rest.into_bytes();
    o
}

/// Whoever owns a lower layer swaps one of its directories for a link to a host directory
/// between the plan and the mount: the launch refuses the link (ELOOP) instead of showing the
/// host directory inside.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_lower_layer_entry_swapped_for_a_link_is_refused(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("layer-swap");
    let me = ids(who);
    let layer = home_of(&w, "layer", me);
    put(&layer.join("zzz/s"), "harmless\n", 0o644, me);
    put(&w.dir.join("secret/s"), "host secret\n", 0o644, (0, 0));
    let policy = w.dir.join("p.yaml");
    put(
        &policy,
        &format!(
            "version: 1\nextends: default\nreplace: [rootfs.lower]\nrootfs: {{ lower: [{}, /] }}\nlandlock: {{ read: [/zzz] }}\n",
            layer.display()
        ),
        0o644,
        (0, 0),
    );
    let p = policy.display().to_string();
    let args = ["run", "-p", &p, "--", "cat", "/zzz/s"];
    let o = w.run(who, args);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "harmless\n");
    let o = swapped_before_the_root_is_built(&w, who, &args, || {
        std::fs::rename(layer.join("zzz"), layer.join("zzz.old")).unwrap();
        std::os::unix::fs::symlink(w.dir.join("secret"), layer.join("zzz")).unwrap();
    });
    assert_code(&o, 125);
    assert!(stderr(&o).contains("ELOOP"), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
}
