//! Hostile bind sources: symlinks, a source swapped between the plan and the mount, FIFOs,
//! sockets, /proc, names with newlines, commas, colons and `=`, directories the caller can't
//! read. Each gives a clear error or a correct mount — never a mount on the host.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use rstest::rstest;
use support::{Who, World, assert_code, need, stderr, stdout};

fn host_mounts() -> Vec<u8> {
    std::fs::read("/proc/self/mountinfo").unwrap()
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_symlinked_source_mounts_what_it_points_to(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("symsrc");
    w.dir.write("real/file", "real");
    std::os::unix::fs::symlink(w.dir.join("real"), w.dir.join("link")).unwrap();
    let before = host_mounts();
    let o = w.run(
        who,
        [
            "run",
            "--ro-bind",
            &format!("{}:/data", w.dir.join("link").display()),
            "--",
            "cat",
            "/data/file",
        ],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "real");
    assert_eq!(host_mounts(), before);
}

/// Starts kekkai stopped at step 4 (before any source is opened), runs `swap`, lets it go on.
fn swapped_during_launch(w: &World, who: Who, swap: impl FnOnce()) -> std::process::Output {
    let fifo = w.dir.join("gate");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut child = w
        .command(who)
        .env("KEKKAI_TRACE_STEPS", "1")
        .env("KEKKAI_FAULT", format!("rootfs:wait:{}", fifo.display()))
        .args([
            "run",
            "--ro-bind",
            &format!("{}:/data", w.dir.join("data").display()),
            "--",
            "cat",
            "/data/file",
        ])
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
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let mut o = child.wait_with_output().unwrap();
    o.stderr = rest.into_bytes();
    o
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_source_swapped_for_a_symlink_after_the_plan_is_refused(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    let w = World::new("swap-link");
    w.dir.write("data/file", "original");
    let before = host_mounts();
    let o = swapped_during_launch(&w, who, || {
        std::fs::rename(w.dir.join("data"), w.dir.join("data.old")).unwrap();
        std::os::unix::fs::symlink("/etc", w.dir.join("data")).unwrap();
    });
    assert_code(&o, 125);
    let e = stderr(&o);
    assert!(
        e.contains("RESOLVE_NO_SYMLINKS") && e.contains("ELOOP") && e.contains("changed since"),
        "{e}"
    );
    assert_eq!(host_mounts(), before);
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_source_swapped_for_another_directory_is_refused(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("swap-dir");
    w.dir.write("data/file", "original");
    w.dir.write("other/file", "impostor");
    let o = swapped_during_launch(&w, who, || {
        std::fs::rename(w.dir.join("data"), w.dir.join("data.old")).unwrap();
        std::fs::rename(w.dir.join("other"), w.dir.join("data")).unwrap();
    });
    assert_code(&o, 125);
    assert!(
        stderr(&o).contains("device/inode changed"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "", "the impostor must not be shown");
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn fifos_and_sockets_are_bound_as_they_are(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("special");
    let fifo = w.dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let sock = w.dir.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let before = host_mounts();
    let o = w.run(
        who,
        [
            "run",
            "--ro-bind",
            &format!("{}:/f", fifo.display()),
            "--ro-bind",
            &format!("{}:/s", sock.display()),
            "--",
            "sh",
            "-c",
            "test -p /f && test -S /s && echo special",
        ],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "special\n");
    assert_eq!(host_mounts(), before);
}

#[rstest]
#[case("/proc/self/environ")]
#[case("/proc/1/root")]
#[case("/sys/kernel")]
#[ignore = "needs root: run by scripts/test"]
fn host_proc_and_sys_are_refused(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[case] source: &str,
) {
    need(who);
    let w = World::new("procsrc");
    let o = w.run(
        who,
        ["run", "--ro-bind", &format!("{source}:/x"), "--", "true"],
    );
    assert_code(&o, 125);
    let e = stderr(&o);
    // Refused when the plan is compiled, naming the flag as typed.
    assert!(
        e.starts_with(&format!("command line: --ro-bind {source}:/x: ")),
        "{e}"
    );
}

#[rstest]
#[case("new\nline")]
#[case("comma,lowerdir=/etc")]
#[case("colon:upperdir=x")]
#[case("equals=sign")]
#[case("back\\slash")]
#[ignore = "needs root: run by scripts/test"]
fn odd_names_are_mounted_correctly(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[case] name: &str,
) {
    need(who);
    let w = World::new("oddname");
    w.dir.write(&format!("{name}/file"), "odd");
    let before = host_mounts();
    let src = w.dir.join(name).display().to_string();
    let o = w.run(
        who,
        [
            "run",
            "--ro-bind",
            &format!("{src}:/odd"),
            "--",
            "cat",
            "/odd/file",
        ],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "odd");
    assert_eq!(host_mounts(), before);
}

#[test]
#[ignore = "needs root: run by scripts/test"]
fn unreadable_sources_give_a_clear_error_or_a_correct_mount() {
    need(Who::Rootless);
    let w = World::new("unreadable");
    let locked = w.dir.join("locked");
    w.dir.write("locked/inner/file", "secret");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
    // A directory the caller can't enter: below it nothing can even be named.
    let o = w.run(
        Who::Rootless,
        [
            "run",
            "--ro-bind",
            &format!("{}:/x", locked.join("inner").display()),
            "--",
            "true",
        ],
    );
    assert_code(&o, 125);
    assert!(stderr(&o).contains("EACCES"), "{}", stderr(&o));
    // The directory itself can be bound, and stays unreadable inside.
    let probe = w.probe();
    let o = w.run(
        Who::Rootless,
        [
            "run",
            "--ro-bind",
            &format!("{}:/x", locked.display()),
            "--",
            &probe,
            "readdir",
            "/x",
        ],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "errno EACCES\n");
}
