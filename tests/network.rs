//! `network: user`: real pasta, real nft, as root and as the unprivileged test user.
//!
//! Only this machine is ever a target. Each test builds its own test host: a network namespace
//! with a veth pair (198.18.N.1 on the host's side, 198.18.N.2 and .3 on the test host's,
//! N different for each test) and `network/host.py` serving there; the sandbox reaches it
//! through pasta. The host's own listeners are on 127.0.0.1 and on 0.0.0.0 (so also on
//! 198.18.N.1), and an abstract unix socket. `network/client.py` runs inside and prints, per
//! attempt, the server's first line or the errno the program saw.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use rstest::rstest;
use support::{
    HANG, Who, World, all_gone, code, descendants, need, on_a_free_port, skip, stderr, stdout,
};

const HOST_PY: &str = include_str!("network/host.py");
const CLIENT_PY: &str = include_str!("network/client.py");

/// pasta and nft, or why this test can't run.
fn tools_missing() -> Option<String> {
    for (tool, package) in [("/usr/bin/pasta", "passt"), ("/usr/sbin/nft", "nftables")] {
        if !std::path::Path::new(tool).exists() {
            return Some(format!(
                "{tool} is missing (Debian `{package}`: scripts/setup-test-env)"
            ));
        }
    }
    None
}

/// A test host: a network namespace joined to this one by a veth pair, with servers in it.
struct TestHost {
    ns: String,
    link: String,
    /// 198.18.N.
    net: String,
    server: Child,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().unwrap();
    assert!(o.status.success(), "ip {args:?}: {}", stderr(&o));
}

impl TestHost {
    /// A test host serving TCP on .2 and .3 at `ports`, and DNS at .2 answering `name` with .2.
    fn new(w: &World, ports: &[u16], name: &str) -> TestHost {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let net = format!("198.18.{}", 100 + (std::process::id() + n * 7) % 150);
        TestHost::on(w, &net, ports, name)
    }

    /// The same on the /24 `net` (its first three numbers).
    fn on(w: &World, net: &str, ports: &[u16], name: &str) -> TestHost {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = (std::process::id() + n) % 10000;
        let ns = format!("kk-net-{id}");
        let link = format!("kkn{id}");
        let net = net.to_owned();
        ip(&["netns", "add", &ns]);
        ip(&[
            "link", "add", &link, "type", "veth", "peer", "name", "kkpeer", "netns", &ns,
        ]);
        ip(&["addr", "add", &format!("{net}.1/24"), "dev", &link]);
        ip(&["link", "set", &link, "up"]);
        for a in [2, 3] {
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{net}.{a}/24"),
                "dev",
                "kkpeer",
            ]);
        }
        ip(&["-n", &ns, "link", "set", "kkpeer", "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        let script = w.dir.write("host.py", HOST_PY);
        let mut args: Vec<String> = vec![
            "netns".into(),
            "exec".into(),
            ns.clone(),
            "python3".into(),
            script.display().to_string(),
            format!("dns={net}.2"),
            format!("name={name}"),
        ];
        for p in ports {
            for a in [2, 3] {
                args.push(format!("tcp={net}.{a}:{p}"));
            }
        }
        let mut server = Command::new("ip")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert_eq!(first.trim(), "ready", "the test host did not start");
        TestHost {
            ns,
            link,
            net,
            server,
        }
    }

    fn addr(&self, host: u8) -> String {
        format!("{}.{host}", self.net)
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        drop(self.server.stdin.take());
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = Command::new("ip")
            .args(["link", "del", &self.link])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// A world with the client script, and a policy file `p.yaml` of `extra` lines.
fn world(tag: &str, extra: &str) -> World {
    let w = World::new(tag);
    w.dir.write("client.py", CLIENT_PY);
    w.dir
        .write("p.yaml", format!("version: 1\nextends: default\n{extra}\n"));
    w
}

/// `kekkai run -q ARGS -- python3 client.py ATTEMPTS` as `who`; the lines it printed.
fn attempt(w: &World, who: Who, args: &[&str], attempts: &[String]) -> Vec<String> {
    let mut all = vec!["run", "-q"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--", "python3", "client.py"]);
    all.extend(attempts.iter().map(String::as_str));
    let o: Output = w.run(who, &all);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    stdout(&o).lines().map(str::to_owned).collect()
}

/// Listeners of the host's own, each on a port of its own, kept open for the test: on
/// 127.0.0.1, on ::1, and on every address (0.0.0.0).
struct HostListeners {
    lo: (TcpListener, u16),
    lo6: (TcpListener, u16),
    any: (TcpListener, u16),
}

impl HostListeners {
    fn new() -> HostListeners {
        let bind = |addr: &str| {
            let l = TcpListener::bind(addr).unwrap();
            let port = l.local_addr().unwrap().port();
            (l, port)
        };
        HostListeners {
            lo: bind("127.0.0.1:0"),
            lo6: bind("[::1]:0"),
            any: bind("0.0.0.0:0"),
        }
    }
}

/// The sandbox reaches the test host through pasta, and nothing of the host's: not its
/// loopback (IPv4 and IPv6), not its abstract sockets, not its own addresses.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn user_network_reaches_the_test_host_and_nothing_of_the_host(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    if skip(tools_missing()) {
        return;
    }
    let w = world("net-reach", "network: user");
    let host = TestHost::new(&w, &[8081], "unused.test");
    let l = HostListeners::new();
    let (lo_port, lo6_port, any_port) = (l.lo.1, l.lo6.1, l.any.1);
    // Root and rootless cases run at once in this process: a name of each case's own.
    let name = format!("kekkai-net-test-{}-{who:?}", std::process::id());
    let _abstract =
        UnixListener::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
    let got = attempt(
        &w,
        who,
        &["-p", "./p.yaml"],
        &[
            format!("tcp:{}:8081", host.addr(2)),
            format!("tcp:127.0.0.1:{lo_port}"),
            format!("tcp:[::1]:{lo6_port}"),
            format!("abstract:{name}"),
            format!("tcp:{}:{any_port}", host.addr(1)),
        ],
    );
    assert_eq!(
        got,
        [
            "ok hello-8081",
            "errno ECONNREFUSED",
            "errno ECONNREFUSED",
            "errno ECONNREFUSED",
            "errno EHOSTUNREACH",
        ],
        "as {who:?}"
    );
}

/// The shipped `network-client`: a test host on a public address (a documentation range, on a
/// veth of this machine: never routed anywhere) is reached, by python and by curl; a test host
/// in a special range (198.18.0.0/15, like the private ranges) is refused until a policy that
/// extends it names that host; the host's loopback and its own addresses never. Names resolve
/// through the resolver a policy names (the shipped one's, the host's, is never asked here:
/// its forwarder would send the query off this machine).
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_network_client_policy_reaches_public_addresses_only(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    if skip(tools_missing()) {
        return;
    }
    let w = world("net-client", "");
    // RFC 5737's documentation ranges stand for the internet; one for each case, since both
    // run at once in this process.
    let public = match who {
        Who::Root => "198.51.100",
        Who::Rootless => "203.0.113",
    };
    let host = TestHost::on(&w, public, &[8081], "host.kekkai.test");
    let private = TestHost::new(&w, &[8081], "unused.test");
    let l = HostListeners::new();
    let (lo_port, lo6_port, any_port) = (l.lo.1, l.lo6.1, l.any.1);
    let got = attempt(
        &w,
        who,
        &["-p", "network-client"],
        &[
            format!("tcp:{}:8081", host.addr(2)),
            format!("tcp:{}:8081", private.addr(2)),
            format!("tcp:127.0.0.1:{lo_port}"),
            format!("tcp:[::1]:{lo6_port}"),
            format!("tcp:{}:{any_port}", host.addr(1)),
            format!("tcp:{}:{any_port}", private.addr(1)),
        ],
    );
    assert_eq!(
        got,
        [
            "ok hello-8081",
            "errno EHOSTUNREACH",
            "errno ECONNREFUSED",
            "errno ECONNREFUSED",
            "errno EHOSTUNREACH",
            "errno EHOSTUNREACH",
        ],
        "as {who:?}"
    );
    // curl, as a user would run it (telnet://: the test host's servers speak no HTTP), and the
    // resolver the sandbox is given: pasta's forwarder to the host's.
    let telnet = format!("telnet://{}:8081", host.addr(2));
    let o = w.run(
        who,
        [
            "run",
            "-q",
            "-p",
            "network-client",
            "--",
            "curl",
            "-sS",
            &telnet,
        ],
    );
    assert_eq!(code(&o), 0, "as {who:?}: {}", stderr(&o));
    assert_eq!(stdout(&o), "hello-8081\n", "as {who:?}");
    let o = w.run(
        who,
        [
            "run",
            "-q",
            "-p",
            "network-client",
            "--",
            "cat",
            "/etc/resolv.conf",
        ],
    );
    assert_eq!(code(&o), 0, "as {who:?}: {}", stderr(&o));
    assert!(
        stdout(&o).lines().any(|l| l == "nameserver 169.254.1.1"),
        "as {who:?}: {}",
        stdout(&o)
    );
    // A policy that extends it names a resolver of its own and the private test host (the
    // allowlist is appended to the shipped one's): the name resolves, for python and for curl,
    // and the private host is reached; the host's own address stays refused.
    w.dir.write(
        "p.yaml",
        format!(
            "version: 1\nextends: network-client\nnetwork:\n  dns: [{}]\n  allow: \
             [\"{}.0/24:8081\"]\n",
            host.addr(2),
            private.net
        ),
    );
    let got = attempt(
        &w,
        who,
        &["-p", "./p.yaml"],
        &[
            "resolve:host.kekkai.test:8081".to_string(),
            format!("tcp:{}:8081", private.addr(2)),
            format!("tcp:{}:{any_port}", private.addr(1)),
        ],
    );
    assert_eq!(
        got,
        [
            format!("{} ok hello-8081", host.addr(2)),
            "ok hello-8081".to_string(),
            "errno EHOSTUNREACH".to_string(),
        ],
        "as {who:?}"
    );
    let o = w.run(
        who,
        [
            "run",
            "-q",
            "-p",
            "./p.yaml",
            "--",
            "curl",
            "-sS",
            "telnet://host.kekkai.test:8081",
        ],
    );
    assert_eq!(code(&o), 0, "as {who:?}: {}", stderr(&o));
    assert_eq!(stdout(&o), "hello-8081\n", "as {who:?}");
}

/// An allowlist admits the port it names and refuses another port of the same host (Landlock,
/// EACCES) and the same port of another address (the nft rules, EHOSTUNREACH).
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn an_allowlist_admits_one_port_and_refuses_the_rest(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    if skip(tools_missing()) {
        return;
    }
    let w = world("net-allow", "");
    let host = TestHost::new(&w, &[8081, 8082], "unused.test");
    w.dir.write(
        "p.yaml",
        format!(
            "version: 1\nextends: default\nnetwork:\n  mode: user\n  allow: [\"{}:8081\"]\n",
            host.addr(2)
        ),
    );
    let got = attempt(
        &w,
        who,
        &["-p", "./p.yaml"],
        &[
            format!("tcp:{}:8081", host.addr(2)),
            format!("tcp:{}:8082", host.addr(2)),
            format!("tcp:{}:8081", host.addr(3)),
        ],
    );
    assert_eq!(
        got,
        ["ok hello-8081", "errno EACCES", "errno EHOSTUNREACH"],
        "as {who:?}"
    );
    // Without Landlock's second layer, the rules alone refuse the other port.
    w.dir.write(
        "p.yaml",
        format!(
            "version: 1\nextends: default\nlandlock: {{ enabled: false }}\nnetwork:\n  mode: \
             user\n  allow: [\"{}:8081\"]\n",
            host.addr(2)
        ),
    );
    let got = attempt(
        &w,
        who,
        &["-p", "./p.yaml"],
        &[format!("tcp:{}:8082", host.addr(2))],
    );
    assert_eq!(got, ["errno EHOSTUNREACH"], "as {who:?}");
}

/// `network.dns` names the test host's resolver; a name it serves resolves and is reached.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn dns_resolves_a_name_the_test_host_serves(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    if skip(tools_missing()) {
        return;
    }
    let w = world("net-dns", "");
    let host = TestHost::new(&w, &[8081], "host.kekkai.test");
    w.dir.write(
        "p.yaml",
        format!(
            "version: 1\nextends: default\nnetwork:\n  mode: user\n  dns: [{}]\n  allow: \
             [dns, \"{}:8081\"]\n",
            host.addr(2),
            host.addr(2)
        ),
    );
    let got = attempt(
        &w,
        who,
        &["-p", "./p.yaml"],
        &["resolve:host.kekkai.test:8081".to_string()],
    );
    assert_eq!(
        got,
        [format!("{} ok hello-8081", host.addr(2))],
        "as {who:?}"
    );
}

/// Starts `python3 serve.py` (the world's, listening on the sandbox's 8000 and saying
/// `listening`) as `who`, published on a free port of the host's 127.0.0.1; returns kekkai's
/// process once the server listens, and the port. The port was free when picked; pasta can't
/// bind it if something took it meanwhile, and then another is tried.
fn serve_published(w: &World, who: Who) -> (Child, u16) {
    on_a_free_port(|port| {
        let publish = format!("127.0.0.1:{port}:8000");
        let mut child = w
            .command(who)
            .args(["run", "-q", "--net", "user", "--publish", &publish, "--"])
            .args(["python3", "serve.py"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut first)
            .unwrap();
        if first.trim() == "listening" {
            return Ok(child);
        }
        let o = child.wait_with_output().unwrap();
        Err(format!(
            "as {who:?}: exit {}: {first}{}",
            code(&o),
            stderr(&o)
        ))
    })
}

/// `--publish 127.0.0.1:PORT:8000`: a server inside answers on the host's loopback.
///
/// The server ends only once the test has read its answer and closed the connection; a server
/// that exits right after its last write is
/// [`a_servers_last_answer_arrives_after_it_exits`]'s case.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_published_port_reaches_a_server_inside(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    if skip(tools_missing()) {
        return;
    }
    let w = world("net-publish", "");
    w.dir.write(
        "serve.py",
        "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 8000))\ns.listen(1)\n\
         print('listening', flush=True)\nc, _ = s.accept()\nc.sendall(b'inside\\n')\n\
         c.shutdown(socket.SHUT_WR)\nwhile c.recv(64):\n    pass\n",
    );
    let (mut child, port) = serve_published(&w, who);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(HANG)).unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    drop(s);
    assert_eq!(got, "inside\n", "as {who:?}");
    let status = child.wait().unwrap();
    assert!(status.success(), "as {who:?}");
}

/// A server behind a published port that writes its answer and exits at once: the answer
/// still arrives whole, with its end. The data is in the sandbox's socket when its last
/// process is gone, and the kernel goes on sending it to pasta; the supervisor lets it
/// before it stops pasta. (Killing pasta at once lost the answer in about one launch in
/// four under load.) Five launches each, with an answer larger than a socket buffer.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_servers_last_answer_arrives_after_it_exits(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    if skip(tools_missing()) {
        return;
    }
    let w = world("net-last-answer", "");
    w.dir.write(
        "serve.py",
        "import socket, sys\ns = socket.socket()\ns.bind(('127.0.0.1', 8000))\ns.listen(1)\n\
         print('listening', flush=True)\nc, _ = s.accept()\n\
         c.sendall(b'x' * (1 << 19) + b'end\\n')\nsys.exit(0)\n",
    );
    for round in 0..5 {
        let (mut child, port) = serve_published(&w, who);
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(HANG)).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "as {who:?}, round {round}");
        assert_eq!(got.len(), (1 << 19) + 4, "as {who:?}, round {round}");
        assert!(got.ends_with(b"end\n"), "as {who:?}, round {round}");
    }
}

/// A server whose port someone took between the pick and the server's bind starts on another
/// port ([`on_a_free_port`]).
#[test]
fn a_port_taken_before_the_server_binds_it_is_tried_again() {
    let mut thief: Option<(TcpListener, u16)> = None;
    let ((), port) = on_a_free_port(|port| {
        if thief.is_none() {
            thief = Some((TcpListener::bind(("127.0.0.1", port)).unwrap(), port));
            return Err("taken".into());
        }
        Ok(())
    });
    assert_ne!(Some(port), thief.map(|(_, p)| p));
}

/// kill -9 of the supervisor while the program runs: pasta dies with it (its parent-death
/// signal), and so does every process of the sandbox; with them the sandbox's network
/// namespace and its rules.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn killing_the_supervisor_leaves_no_pasta(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    if skip(tools_missing()) {
        return;
    }
    let w = world("net-kill", "");
    let mut child = w
        .command(who)
        .args([
            "run",
            "-q",
            "--net",
            "user",
            "--",
            "sh",
            "-c",
            "echo up; exec sleep 1000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim(), "up");
    let inside = descendants(child.id());
    let pasta: Vec<u32> = inside
        .iter()
        .copied()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim().starts_with("pas"))
        })
        .collect();
    assert!(
        !pasta.is_empty(),
        "no pasta below the supervisor: {inside:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(all_gone(&inside), "left behind: {inside:?}");
}

/// `kekkai audit` of a `network: user` policy passes (the host's loopback and abstract socket
/// unreachable, 0.0.0.1 refused by the rules, without sending anything off this machine); with
/// the rules left out (a debug build's weakening) the egress probe escapes.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_audit_of_a_user_network_policy_passes(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    if skip(tools_missing()) {
        return;
    }
    let w = world(
        "net-audit",
        "network:\n  mode: user\n  allow: [dns, \"any:443\"]",
    );
    let mode = support::Mode::plain(who);
    let (rc, verdicts) = support::audit(&w, mode, &["-p", "./p.yaml", "--only", "net"]);
    assert_eq!(rc, 0, "as {who:?}: {verdicts:?}");
    for (probe, errno) in [
        ("net.host-loopback-tcp", "EACCES"),
        ("net.host-abstract-socket", "ECONNREFUSED"),
        ("net.egress-rules", "EACCES"),
    ] {
        assert_eq!(verdicts[probe], format!("blocked ({errno})"), "as {who:?}");
    }
    let (rc, verdicts) = support::audit(&w, mode, &["--net", "user", "--only", "net"]);
    assert_eq!(rc, 0, "as {who:?}: {verdicts:?}");
    assert_eq!(
        verdicts["net.egress-rules"], "blocked (EHOSTUNREACH)",
        "as {who:?}"
    );
    assert_eq!(
        verdicts["net.host-loopback-tcp"], "blocked (ECONNREFUSED)",
        "as {who:?}"
    );
    let o = w
        .command(who)
        .env("KEKKAI_WEAKEN", "egress")
        .args(["audit", "--json", "--net", "user", "--only", "net"])
        .output()
        .unwrap();
    let verdicts = support::verdicts(&o);
    assert_eq!(code(&o), 1, "as {who:?}: {verdicts:?}");
    assert_eq!(verdicts["net.egress-rules"].0, "escaped", "as {who:?}");
}

/// A root caller whose policy has no user namespace: pasta joins only the network namespace
/// (with a bounding set cut down to what it needs), and the sandbox still reaches the test host
/// and not the host's loopback or own addresses.
#[test]
#[ignore = "needs root: run by scripts/test"]
fn root_without_a_user_namespace() {
    need(Who::Root);
    if skip(tools_missing()) {
        return;
    }
    let w = world("net-nouserns", "");
    let host = TestHost::new(&w, &[8081], "unused.test");
    w.dir.write(
        "p.yaml",
        "version: 1\nnamespaces: [mount, pid, net, ipc, uts]\nnetwork: user\n",
    );
    let lo = TcpListener::bind("127.0.0.1:0").unwrap();
    let lo_port = lo.local_addr().unwrap().port();
    let any = TcpListener::bind("0.0.0.0:0").unwrap();
    let any_port = any.local_addr().unwrap().port();
    let client = format!("{}:/client.py", w.dir.join("client.py").display());
    let o = w.run(
        Who::Root,
        [
            "run",
            "-q",
            "-p",
            "./p.yaml",
            "--ro-bind",
            &client,
            "--",
            "python3",
            "/client.py",
            &format!("tcp:{}:8081", host.addr(2)),
            &format!("tcp:127.0.0.1:{lo_port}"),
            &format!("tcp:{}:{any_port}", host.addr(1)),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o).lines().collect::<Vec<_>>(),
        ["ok hello-8081", "errno ECONNREFUSED", "errno EHOSTUNREACH"]
    );
}

/// pasta that can't start (its published port is taken) fails the launch (exit 125, nothing
/// runs) and the error names where the policy asks for that port.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_taken_published_port_fails_the_launch_at_its_key(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    if skip(tools_missing()) {
        return;
    }
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let w = world(
        "net-taken",
        &format!("network:\n  mode: user\n  ports: [{{ host: {port} }}]"),
    );
    let o = w.run(who, ["run", "-p", "./p.yaml", "--", "sh", "-c", "echo ran"]);
    assert_eq!(code(&o), 125, "as {who:?}: {}", stderr(&o));
    assert_eq!(stdout(&o), "", "as {who:?}");
    assert!(
        stderr(&o).contains("p.yaml:5:11: network.ports[0]"),
        "as {who:?}: {}",
        stderr(&o)
    );
}

/// A host service's UDP socket on `addr`, bound with SO_REUSEADDR (as many UDP daemons do) to
/// a port of the kernel's choice; (socket, port).
fn udp_service(addr: &str) -> (std::net::UdpSocket, u16) {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, setsockopt, socket,
        sockopt,
    };
    use std::os::fd::AsRawFd;
    let fd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    setsockopt(&fd, sockopt::ReuseAddr, &true).unwrap();
    let at = SockaddrIn::from(std::net::SocketAddrV4::new(addr.parse().unwrap(), 0));
    bind(fd.as_raw_fd(), &at).unwrap();
    let port = getsockname::<SockaddrIn>(fd.as_raw_fd()).unwrap().port();
    let s = std::net::UdpSocket::from(fd);
    s.set_read_timeout(Some(HANG)).unwrap();
    (s, port)
}

/// A published UDP port a host service holds with SO_REUSEADDR: pasta, which sets it too,
/// would share the port and take the service's datagrams (the socket bound last gets them;
/// shown before the fix: the sandbox read a datagram sent to the host's service). The launch
/// fails instead (exit 125, nothing runs), naming the port's key and EADDRINUSE. The service
/// here is root's; the rootless case is another user taking it.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_udp_port_a_host_service_shares_fails_the_launch(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    if skip(tools_missing()) {
        return;
    }
    let (_service, port) = udp_service("127.0.0.1");
    let w = world(
        "net-shared-udp",
        &format!("network:\n  mode: user\n  ports: [{{ host: {port}, proto: udp }}]"),
    );
    let o = w.run(who, ["run", "-p", "./p.yaml", "--", "sh", "-c", "echo ran"]);
    assert_eq!(code(&o), 125, "as {who:?}: {}", stderr(&o));
    assert_eq!(stdout(&o), "", "as {who:?}");
    let err = stderr(&o);
    assert!(
        err.contains("p.yaml:5:11: network.ports[0]") && err.contains("EADDRINUSE"),
        "as {who:?}: {err}"
    );
}

/// A program that sends UDP from the port a host service listens on (bound with SO_REUSEADDR,
/// on every address or on the loopback): pasta sends each datagram from a host socket bound to
/// the datagram's source port, with SO_REUSEADDR, and passes the sandbox what that socket
/// receives, so the program took the service's datagrams, those sent to the host's 127.0.0.1
/// among them (shown before the fix: the sandbox read them, the services nothing). The egress
/// rules now give the sandbox's UDP a random port of the host's ephemeral range, to the outside
/// and to a `host-loopback` port alike: the services keep their traffic, the answers still
/// arrive.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_udp_source_port_never_becomes_the_host_s(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    if skip(tools_missing()) {
        return;
    }
    let w = world("net-udp-sport", "");
    let host = TestHost::new(&w, &[], "host.kekkai.test");
    let (any, any_port) = udp_service("0.0.0.0");
    let (lo, lo_port) = udp_service("127.0.0.1");
    let (echo, echo_port) = udp_service("127.0.0.1");
    w.dir.write(
        "p.yaml",
        format!(
            "version: 1\nextends: default\nnetwork:\n  mode: user\n  dns: [{}]\n  \
             host-loopback: [\"{echo_port}/udp\"]\n",
            host.addr(2)
        ),
    );
    w.dir.write(
        "send.py",
        format!(
            "import socket, select\n\
             q = b'\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00' + \
             b'\\x04host\\x06kekkai\\x04test\\x00\\x00\\x01\\x00\\x01'\n\
             a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             a.bind(('0.0.0.0', {any_port}))\n\
             a.settimeout(30)\n\
             a.sendto(q, ('{dns}', 53))\n\
             print('answered' if a.recv(512)[:2] == q[:2] else 'wrong answer', flush=True)\n\
             b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             b.bind(('127.0.0.1', {lo_port}))\n\
             b.sendto(b'to-the-host', ('127.0.0.1', {echo_port}))\n\
             print('sent', flush=True)\n\
             got = []\n\
             while True:\n\
             \x20   r, _, _ = select.select([a, b], [], [], 3)\n\
             \x20   if not r:\n\
             \x20       break\n\
             \x20   for s in r:\n\
             \x20       got.append(s.recv(512).decode(errors='replace'))\n\
             print('got ' + ' '.join(got) if got else 'nothing', flush=True)\n",
            dns = host.addr(2)
        ),
    );
    let mut child = w
        .command(who)
        .args(["run", "-q", "-p", "./p.yaml", "--", "python3", "send.py"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        lines.push(line.trim().to_owned());
    }
    let mut buf = [0u8; 64];
    // A host client's datagrams reach the services, not the sandbox.
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for (service, port) in [(&any, any_port), (&lo, lo_port)] {
        client
            .send_to(b"for-the-service", ("127.0.0.1", port))
            .unwrap();
        let n = service.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"for-the-service", "as {who:?}, port {port}");
    }
    // The sandbox's datagram reached the host-loopback port, from a port of the host's
    // ephemeral range, not the program's.
    let (n, from) = echo.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"to-the-host", "as {who:?}");
    let range: Vec<u16> = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_ne!(from.port(), lo_port, "as {who:?}");
    assert!(
        (range[0]..=range[1]).contains(&from.port()),
        "as {who:?}: {from}, not in {range:?}"
    );
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    lines.extend(rest.lines().map(str::to_owned));
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "as {who:?}: {}", stderr(&o));
    assert_eq!(lines, ["answered", "sent", "nothing"], "as {who:?}");
}

/// An address the host gains while the sandbox runs (an interface that comes up, a VPN, IPv6's
/// temporary addresses, replaced every day) is refused like those it had at launch: the
/// supervisor hears of it from the kernel and adds it to the rules' host set. Before, the rules
/// knew only the launch's addresses, and a host service on 0.0.0.0 answered the sandbox at the
/// new one (shown: `ok hello-h-any4` from a service of a host in a network namespace). The test
/// waits until the sandbox's table lists the address, then lets the program try it.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn an_address_the_host_gains_later_is_refused(#[values(Who::Root, Who::Rootless)] who: Who) {
    use std::io::Write;
    need(who);
    if skip(tools_missing()) {
        return;
    }
    let w = world("net-new-addr", "network: user");
    let host = TestHost::new(&w, &[8081], "unused.test");
    let l = HostListeners::new();
    let new = host.addr(4);
    let script = format!(
        "echo up; read go; python3 client.py tcp:{new}:{} tcp:{}:8081",
        l.any.1,
        host.addr(2)
    );
    let mut child = w
        .command(who)
        .args(["run", "-q", "-p", "./p.yaml", "--", "sh", "-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first.trim(), "up", "as {who:?}");
    // The new address, on the host's side of the test host's link (gone with the link).
    ip(&["addr", "add", &format!("{new}/32"), "dev", &host.link]);
    let sh = descendants(child.id())
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sh")
        })
        .expect("the sandbox's shell");
    let listed = || {
        let o = Command::new("nsenter")
            .args([
                "-t",
                &sh.to_string(),
                "-n",
                "nft",
                "list",
                "set",
                "inet",
                "kekkai",
            ])
            .arg("host4")
            .output()
            .unwrap();
        stdout(&o).contains(&new)
    };
    let since = std::time::Instant::now();
    while !listed() {
        assert!(since.elapsed() < HANG, "as {who:?}: {new} never refused");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "as {who:?}: {}", stderr(&o));
    assert_eq!(
        rest.lines().collect::<Vec<_>>(),
        ["errno EHOSTUNREACH", "ok hello-8081"],
        "as {who:?}"
    );
}
