//! kekkai under systemd: each example unit's ExecStart run the way systemd would (its
//! environment, its descriptors), sd_notify, socket activation, journald prefixes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{ChildStderr, Stdio};

use rstest::rstest;
use support::{Mode, Who, World, assert_code, need, skip, stderr, stdout};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/systemd")
}

/// Splits an ExecStart= command line with systemd's quoting (double and single quotes,
/// backslash escapes inside double quotes are kept for the program to see).
fn split_exec(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_arg = false;
    for c in line.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                in_arg = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if in_arg {
                    args.push(std::mem::take(&mut cur));
                    in_arg = false;
                }
            }
            (_, c) => {
                cur.push(c);
                in_arg = true;
            }
        }
    }
    if in_arg {
        args.push(cur);
    }
    args
}

/// Where the example policies' host directories (`/srv/batch/...`) are, in a world.
fn srv(w: &World) -> PathBuf {
    w.dir.join("srv")
}

/// An example policy's text, its host directories moved into the world.
fn example_policy(w: &World, name: &str) -> String {
    let text = std::fs::read_to_string(examples().join(name)).unwrap();
    text.replace("/srv/", &format!("{}/", srv(w).display()))
}

/// The unit's ExecStart, with kekkai and the policy pointing at this checkout's copies. The
/// policy is copied into the world, where the unprivileged user can read it.
fn exec_start(w: &World, unit: &str) -> Vec<String> {
    let text = std::fs::read_to_string(examples().join(unit)).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    split_exec(line)
        .into_iter()
        .map(|a| {
            if a == INSTALLED {
                w.kekkai().display().to_string()
            } else if let Some(name) = a.strip_prefix("/etc/kekkai/policies/") {
                w.dir
                    .write(name, example_policy(w, name))
                    .display()
                    .to_string()
            } else {
                a
            }
        })
        .collect()
}

/// Where the README installs kekkai, and the example units run it from.
const INSTALLED: &str = "/usr/local/bin/kekkai";

/// The example units run the installed kekkai, and those whose policy has hard cgroup limits
/// (all of them) get their cgroup delegated.
#[test]
fn every_unit_runs_the_installed_kekkai_in_a_delegated_cgroup() {
    let mut units = 0;
    for e in std::fs::read_dir(examples()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|e| e != "service") {
            continue;
        }
        units += 1;
        let text = std::fs::read_to_string(&p).unwrap();
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap();
        assert!(
            exec.starts_with(&format!("{INSTALLED} run ")),
            "{}: {exec}",
            p.display()
        );
        assert!(
            text.lines().any(|l| l == "Delegate=yes"),
            "{}: no Delegate=yes",
            p.display()
        );
    }
    assert_eq!(units, 4);
}

#[test]
fn exec_lines_split_like_systemd() {
    assert_eq!(
        split_exec("/a -p x -- sh -c \"echo 'hi there'\""),
        ["/a", "-p", "x", "--", "sh", "-c", "echo 'hi there'"]
    );
    assert_eq!(split_exec("  a   'b c'  "), ["a", "b c"]);
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_notify_service_becomes_ready_and_stops_on_sigterm(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    let w = World::new("notify");
    let sock_path = w.dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    std::fs::set_permissions(&sock_path, std::fs::Permissions::from_mode(0o777)).unwrap();
    sock.set_read_timeout(Some(support::HANG)).unwrap();
    let (child, deleg) = start_notify_demo(&w, who, sock_path.as_os_str(), w.dir.path());
    let mut buf = [0u8; 256];
    let mut msgs = Vec::new();
    for _ in 0..2 {
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no notification: {e}"));
        msgs.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(msgs, ["READY=1", "STATUS=serving"]);
    // systemctl stop: SIGTERM to the main process, forwarded to the program.
    nix::sys::signal::kill(support::pid(child.id()), nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    drop(deleg);
    assert_eq!(
        out.status.code(),
        Some(128 + 15),
        "python dies of the forwarded SIGTERM: {}",
        stderr(&out)
    );
}

/// Runs the notify demo's ExecStart as `who` with `NOTIFY_SOCKET` set, the way systemd would:
/// unprivileged in a delegated cgroup (the service policy's limits are hard).
fn start_notify_demo(
    w: &World,
    who: Who,
    notify_socket: &std::ffi::OsStr,
    runtime_dir: &Path,
) -> (std::process::Child, Option<support::Delegated>) {
    let cmd = exec_start(w, "kekkai-notify-demo.service");
    let deleg = (who == Who::Rootless).then(support::Delegated::new);
    let child = match &deleg {
        None => w
            .command(who)
            .args(&cmd[1..])
            .env("NOTIFY_SOCKET", notify_socket)
            .env("XDG_RUNTIME_DIR", runtime_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        Some(d) => {
            let mut sh = std::process::Command::new("sh");
            let (uid, gid) = support::test_user().unwrap();
            use std::os::unix::process::CommandExt;
            sh.args(["-c", "read go; exec \"$0\" \"$@\""])
                .arg(w.kekkai())
                .args(&cmd[1..]);
            sh.env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("NOTIFY_SOCKET", notify_socket)
                .env("XDG_RUNTIME_DIR", runtime_dir)
                .current_dir(w.dir.path());
            sh.uid(uid)
                .gid(gid)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = sh.spawn().unwrap();
            d.enter(child.id());
            child.stdin.take().unwrap().write_all(b"go\n").unwrap();
            child
        }
    };
    (child, deleg)
}

/// An abstract NOTIFY_SOCKET (`@NAME`, which the sandbox's network namespace hides) is
/// relayed by the supervisor: systemd sees the program's READY=1 and STATUS= from kekkai's
/// own pid (the unit's main process), and no relay socket is left behind.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn an_abstract_notify_socket_is_relayed(#[values(Who::Root, Who::Rootless)] who: Who) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr;
    need(who);
    let w = World::new("notify-abstract");
    let name = format!(
        "kekkai-test-notify-{}-{}",
        std::process::id(),
        support::unique()
    );
    let sock = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
    sock.set_read_timeout(Some(support::HANG)).unwrap();
    // The sender's pid, as systemd reads it (SO_PASSCRED).
    nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::PassCred, &true).unwrap();
    // The relay's directory goes into XDG_RUNTIME_DIR: this one, to see that it is removed.
    let runtime = w.dir.join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    if who == Who::Rootless {
        w.dir.give_to_test_user(&runtime);
    }
    let (child, deleg) =
        start_notify_demo(&w, who, std::ffi::OsStr::new(&format!("@{name}")), &runtime);
    let mut msgs = Vec::new();
    for _ in 0..2 {
        let mut buf = [0u8; 256];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
        let msg = nix::sys::socket::recvmsg::<()>(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            &mut iov,
            Some(&mut cmsg),
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap_or_else(|e| panic!("no notification: {e}"));
        let pid = msg.cmsgs().unwrap().find_map(|c| match c {
            nix::sys::socket::ControlMessageOwned::ScmCredentials(c) => Some(c.pid()),
            _ => None,
        });
        let n = msg.bytes;
        msgs.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        assert_eq!(
            pid,
            Some(support::pid(child.id()).as_raw()),
            "not sent by kekkai itself"
        );
    }
    assert_eq!(msgs, ["READY=1", "STATUS=serving"]);
    nix::sys::signal::kill(support::pid(child.id()), nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    drop(deleg);
    assert_eq!(out.status.code(), Some(128 + 15), "{}", stderr(&out));
    let left: Vec<_> = std::fs::read_dir(&runtime).unwrap().collect();
    assert!(left.is_empty(), "the relay left {left:?}");
}

/// A relay directory a SIGKILLed supervisor left behind is removed by the next relay of the
/// same user, and nothing else is: not one whose supervisor lives, nor one whose socket someone
/// still receives on, nor one holding something other than a socket, nor what a symbolic link
/// of a matching name points to.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_stale_notify_relay_directory_is_removed_and_nothing_else(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    let w = World::new("notify-stale");
    let runtime = w.dir.join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    // A pid that is gone (reaped); start time 0 never matches a live process anyway.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let me = std::process::id();
    let my_start = std::fs::read_to_string(format!("/proc/{me}/stat")).unwrap();
    let my_start = my_start
        .rsplit_once(") ")
        .unwrap()
        .1
        .split(' ')
        .nth(19)
        .unwrap()
        .to_owned();
    let plant = |name: &str| -> PathBuf {
        let d = runtime.join(name);
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        d
    };
    // A socket no one receives on, as a killed supervisor leaves it.
    let dead_socket = |dir: &Path| drop(UnixDatagram::bind(dir.join("notify")).unwrap());
    let stale = plant(&format!("kekkai-notify-{dead}-0-aaaaaa"));
    dead_socket(&stale);
    let alive = plant(&format!("kekkai-notify-{me}-{my_start}-bbbbbb"));
    dead_socket(&alive);
    let listened = plant(&format!("kekkai-notify-{dead}-0-cccccc"));
    let _receiver = UnixDatagram::bind(listened.join("notify")).unwrap();
    let not_socket = plant(&format!("kekkai-notify-{dead}-0-dddddd"));
    std::fs::write(not_socket.join("notify"), "x").unwrap();
    let victim = plant("victim");
    dead_socket(&victim);
    let link = runtime.join(format!("kekkai-notify-{dead}-0-eeeeee"));
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    if who == Who::Rootless {
        for p in [&runtime, &stale, &alive, &listened, &not_socket, &victim] {
            w.dir.give_to_test_user(p);
        }
        for d in [&stale, &alive, &listened, &victim] {
            w.dir.give_to_test_user(&d.join("notify"));
        }
        w.dir.give_to_test_user(&not_socket.join("notify"));
    }
    let name = format!("kekkai-test-stale-{me}-{}", support::unique());
    let o = w
        .command(who)
        .env("NOTIFY_SOCKET", format!("@{name}"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .args(["run", "--", "true"])
        .output()
        .unwrap();
    assert_code(&o, 0);
    let mut left: Vec<String> = std::fs::read_dir(&runtime)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut want = vec![
        format!("kekkai-notify-{me}-{my_start}-bbbbbb"),
        format!("kekkai-notify-{dead}-0-cccccc"),
        format!("kekkai-notify-{dead}-0-dddddd"),
        format!("kekkai-notify-{dead}-0-eeeeee"),
        "victim".to_owned(),
    ];
    want.sort();
    assert_eq!(left, want, "{}", stderr(&o));
    assert!(victim.join("notify").exists(), "followed the link");
    assert!(alive.join("notify").exists());
}

/// A NOTIFY_SOCKET kekkai can't pass on is an error about the environment (not about the
/// policy, which is fine), before any sandbox exists: silence would leave a Type=notify unit
/// waiting for its start timeout.
#[rstest]
#[case::missing_path(
    "/nonexistent/notify",
    "environment: NOTIFY_SOCKET: /nonexistent/notify: no such file or directory"
)]
#[case::other_family("vsock:2:1234", "environment: NOTIFY_SOCKET: `vsock:2:1234`:")]
fn a_notify_socket_that_cannot_be_passed_on_is_an_environment_error(
    #[case] value: &str,
    #[case] want: &str,
) {
    let w = World::new("notify-missing");
    let cmd = exec_start(&w, "kekkai-notify-demo.service");
    let o = w
        .command(Who::Root)
        .args(&cmd[1..])
        .env("NOTIFY_SOCKET", value)
        .env("KEKKAI_TRACE_STEPS", "1")
        .output()
        .unwrap();
    assert_code(&o, 125);
    let err = stderr(&o);
    assert!(err.lines().any(|l| l.starts_with(want)), "{err}");
    assert!(!err.contains("service.yaml"), "{err}");
    assert!(!err.contains("kekkai-step: clone"), "{err}");
}

/// Starts `c`, a `systemd-socket-activate -l 127.0.0.1:PORT ...` on a free port (`c(port)`):
/// once it says it listens, the running launcher, its port, and the rest of what it says on
/// stderr (until it exits). It binds the port before it says so: a connection made from then on
/// waits for the program in the socket's backlog. A port someone else took meanwhile is tried
/// again with another.
fn activate_on_a_free_port(
    c: impl Fn(u16) -> std::process::Command,
) -> (std::process::Child, u16, BufReader<ChildStderr>) {
    let ((child, rest), port) = support::on_a_free_port(|port| {
        let mut child = c(port)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        err.read_line(&mut first).unwrap();
        if first.starts_with(&format!("Listening on 127.0.0.1:{port} ")) {
            return Ok((child, err));
        }
        let mut rest = String::new();
        err.read_to_string(&mut rest).unwrap();
        let status = child.wait().unwrap();
        Err(format!("{status}: {first}{rest}"))
    });
    (child, port, rest)
}

/// Sends an HTTP/1.0 request to the host's loopback `port`, where a launcher listens, and
/// returns the whole answer.
fn fetch(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(support::HANG)).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The launcher's end: its status and the rest of what it said on stderr.
fn finish(
    mut child: std::process::Child,
    mut rest: BufReader<ChildStderr>,
) -> (std::process::ExitStatus, String) {
    let mut err = String::new();
    rest.read_to_string(&mut err).unwrap();
    (child.wait().unwrap(), err)
}

#[test]
#[ignore = "needs root: run by scripts/test"]
fn a_socket_activated_service_serves_over_the_passed_socket() {
    need(Who::Root);
    let activate = Path::new("/usr/bin/systemd-socket-activate");
    if skip((!activate.exists()).then(|| {
        "systemd-socket-activate is missing (scripts/setup-test-env installs systemd)".into()
    })) {
        return;
    }
    let w = World::new("socket");
    let cmd = exec_start(&w, "kekkai-socket-demo.service");
    let (child, port, rest) = activate_on_a_free_port(|port| {
        let mut c = std::process::Command::new(activate);
        c.arg("-l")
            .arg(format!("127.0.0.1:{port}"))
            .args(&cmd)
            .current_dir(w.dir.path());
        c
    });
    let reply = fetch(port);
    let (status, err) = finish(child, rest);
    assert!(reply.contains("hello from the sandbox"), "{reply}\n{err}");
    assert_eq!(status.code(), Some(0), "{err}");
}

/// A program that accepts one connection on the socket systemd passed (fd 3) and answers
/// with its pid and the LISTEN_* variables it was given.
const SERVE_LISTEN_VARS: &str = "import os, socket\n\
    s = socket.socket(fileno=3)\n\
    c, _ = s.accept()\n\
    c.recv(4096)\n\
    c.sendall(('pid=%d listen_pid=%s fds=%s names=%s' % (os.getpid(), os.environ['LISTEN_PID'], os.environ['LISTEN_FDS'], os.environ.get('LISTEN_FDNAMES'))).encode())\n";

/// `systemd-socket-activate -l 127.0.0.1:PORT --fdname=web kekkai run RUN... -p ./p.yaml --
/// python3 -c SERVE_LISTEN_VARS` in `w` (whose p.yaml has the host's network), run by `who`
/// with only PATH and `env` set (systemd-socket-activate passes on `env`'s names too), once
/// it listens: the running activator, its port and the rest of its stderr.
fn activate_listen_vars(
    w: &World,
    who: Who,
    run: &[&str],
    env: &[(&str, &Path)],
) -> (std::process::Child, u16, BufReader<ChildStderr>) {
    w.dir
        .write("p.yaml", "version: 1\nextends: default\nnetwork: host\n");
    let kekkai = w.kekkai().display().to_string();
    activate_on_a_free_port(|port| {
        let mut c = std::process::Command::new(ACTIVATE);
        c.arg("-l")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--fdname=web")
            .args(env.iter().map(|(k, _)| format!("--setenv={k}")))
            .arg(&kekkai)
            .arg("run")
            .args(run)
            .args(["-p", "./p.yaml", "--", "python3", "-c", SERVE_LISTEN_VARS]);
        c.current_dir(w.dir.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(env.iter().copied());
        if who == Who::Rootless {
            use std::os::unix::process::CommandExt;
            let (uid, gid) = support::test_user().unwrap();
            c.uid(uid).gid(gid);
        }
        c
    })
}

/// systemd's socket activator.
const ACTIVATE: &str = "/usr/bin/systemd-socket-activate";

/// Whether the test must skip for want of systemd-socket-activate (a failure with CI=true).
fn no_activator() -> bool {
    skip((!Path::new(ACTIVATE).exists()).then(|| "systemd-socket-activate is missing".into()))
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn listen_pid_and_fds_are_renumbered_for_the_program(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    if no_activator() {
        return;
    }
    let w = World::new("listenpid");
    let (child, port, rest) = activate_listen_vars(&w, who, &[], &[]);
    let reply = fetch(port);
    let (status, err) = finish(child, rest);
    assert_eq!(reply, "pid=2 listen_pid=2 fds=1 names=web", "{err}");
    assert_eq!(status.code(), Some(0), "{err}");
}

/// `run -d` under socket activation: the listening socket systemd passed survives the
/// detached copy's closing of inherited descriptors (it keeps `3..3+LISTEN_FDS`, computed
/// from the caller's LISTEN_PID before the fork), and the program serves over it after the
/// caller has returned.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_detached_sandbox_keeps_the_socket_systemd_passed(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    if no_activator() {
        return;
    }
    let w = World::new("detachsock");
    let xdg = w.runtime_dir(who);
    let name = format!("t{}-detachsock-{}", std::process::id(), support::unique());
    let (child, port, rest) = activate_listen_vars(
        &w,
        who,
        &["-d", "--name", &name],
        &[("XDG_RUNTIME_DIR", &xdg)],
    );
    // systemd-socket-activate starts the launcher at the first connection; the launcher
    // returns once the sandbox runs, and the detached program answers.
    let reply = fetch(port);
    let (status, err) = finish(child, rest);
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(reply, "pid=2 listen_pid=2 fds=1 names=web", "{err}");
    let engine = |args: &[&str]| {
        let mut c = w.command(who);
        c.env("XDG_RUNTIME_DIR", &xdg).args(args);
        c.output().unwrap()
    };
    assert_code(&engine(&["wait", &name]), 0);
    assert_code(&engine(&["rm", &name]), 0);
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn under_the_journal_messages_carry_priorities(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    use std::os::unix::fs::MetadataExt;
    let w = World::new("journal");
    let log = w.dir.join("journal.log");
    let file = std::fs::File::create(&log).unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
    let meta = file.metadata().unwrap();
    let o = w
        .command(who)
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .args(["run", "--", "no-such-program"])
        .stderr(Stdio::from(file))
        .output()
        .unwrap();
    assert_code(&o, 127);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines()
            .any(|l| l == "<3>kekkai: no-such-program: no such file or directory (ENOENT)"),
        "{text}"
    );
    // Unprivileged, the default policy runs without its limits: a warning, said as one.
    let warned = text
        .lines()
        .any(|l| l.starts_with("<4>kekkai: best-effort: "));
    assert_eq!(warned, who == Who::Rootless, "{text}");
    // Not the journal: plain messages.
    let o = w.run(who, ["run", "--", "no-such-program"]);
    assert!(
        stderr(&o)
            .lines()
            .any(|l| l.starts_with("kekkai: no-such-program")),
        "{}",
        stderr(&o)
    );
}

/// The batch unit's input and output directories, in the world: the input holds one file, the
/// output is writable by the job (nobody as root; the test user's own when rootless) or not.
fn batch_dirs(w: &World, mode: Mode, output: Option<bool>) {
    use std::os::unix::fs::PermissionsExt;
    let base = srv(w).join("batch");
    std::fs::create_dir_all(base.join("in")).unwrap();
    std::fs::write(base.join("in/item-1"), "").unwrap();
    for d in [srv(w), base.clone(), base.join("in")] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let Some(writable) = output else {
        return;
    };
    let out = base.join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
    if writable {
        match mode {
            Mode::Root => nix::unistd::chown(
                &out,
                Some(nix::unistd::Uid::from_raw(65534)),
                Some(nix::unistd::Gid::from_raw(65534)),
            )
            .unwrap(),
            _ => w.dir.give_to_test_user(&out),
        }
    }
}

/// Runs the batch unit's ExecStart; the unit's hard limits need a delegated cgroup rootless.
fn run_batch(w: &World, mode: Mode) -> std::process::Output {
    let cmd = exec_start(w, "kekkai-batch.service");
    support::run_as(
        w,
        mode,
        &cmd[1..].iter().map(String::as_str).collect::<Vec<_>>(),
    )
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_batch_unit_runs_to_completion(#[values(Mode::Root, Mode::Delegated)] mode: Mode) {
    need(mode.who());
    let w = World::new("batch");
    batch_dirs(&w, mode, Some(true));
    let o = run_batch(&w, mode);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "batch done\n");
    let listing = std::fs::read_to_string(srv(&w).join("batch/out/listing.txt")).unwrap();
    assert_eq!(listing, "item-1\n");
}

/// A job whose output has nowhere to go fails, and never says "batch done": a missing output
/// directory before the sandbox starts (125), one the job can't write with the shell's status.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_batch_unit_fails_without_a_writable_output(
    #[values(Mode::Root, Mode::Delegated)] mode: Mode,
    #[values(None, Some(false))] output: Option<bool>,
) {
    need(mode.who());
    let w = World::new("batch-fail");
    batch_dirs(&w, mode, output);
    let o = run_batch(&w, mode);
    match output {
        None => {
            assert_code(&o, 125);
            assert!(stderr(&o).contains("mounts[1].bind: "), "{}", stderr(&o));
        }
        // dash: a redirection that fails is status 2.
        _ => assert_code(&o, 2),
    }
    assert_eq!(stdout(&o), "");
}

#[test]
fn every_example_policy_is_valid() {
    let w = World::new("examples-check");
    // `check` needs the directories to exist; who may write the output is the launch's concern.
    batch_dirs(&w, Mode::Root, Some(false));
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            w.dir.write(&name, example_policy(&w, &name))
        })
        .collect();
    files.sort();
    assert!(files.len() >= 3);
    let o = w.run(
        Who::Root,
        std::iter::once("check".to_string()).chain(files.iter().map(|p| p.display().to_string())),
    );
    assert_code(&o, 0);
}
