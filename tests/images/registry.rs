//! `kekkai image pull` from a registry this test starts on 127.0.0.1 (Debian's
//! `docker-registry`, port 0, filled by skopeo), anonymous and behind token authentication (a
//! token server here, its tokens signed with the `openssl` command).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rstest::rstest;

use super::build;
use super::support::{Who, World, assert_code, need, stdout};
use super::{image, k, refused, store, tools};

/// A registry on 127.0.0.1, stopped (by its pid) on drop.
struct Registry {
    child: Child,
    port: u16,
}

impl Registry {
    /// Starts one with its data in `dir`, and `auth` (YAML) as its auth section.
    fn start(dir: &Path, auth: &str) -> Registry {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n{auth}",
            data.display()
        );
        let log = dir.join("registry.log");
        let mut child = Command::new("docker-registry")
            .args(["serve", "/dev/stdin"])
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("registry.err")).unwrap())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(config.as_bytes())
            .unwrap();
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default()
                + &std::fs::read_to_string(dir.join("registry.err")).unwrap_or_default();
            if let Some(at) = text.find("listening on 127.0.0.1:") {
                let rest = &text[at + "listening on 127.0.0.1:".len()..];
                let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                return Registry {
                    child,
                    port: port.parse().unwrap(),
                };
            }
            if start.elapsed() > Duration::from_secs(20) || child.try_wait().unwrap().is_some() {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the registry did not start:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn b64(bytes: &[u8], url: bool) -> String {
    let table: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..=chunk.len() {
            out.push(char::from(
                table[usize::try_from((n >> (18 - 6 * i)) & 63).unwrap()],
            ));
        }
        if !url {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A token server: any client gets pull and push on the repositories it asks for, in an RS256
/// token signed by `key.pem` (whose certificate the registry trusts). Stopped on drop.
struct TokenServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenServer {
    fn start(dir: &Path) -> TokenServer {
        let key = dir.join("key.pem");
        let cert = dir.join("cert.pem");
        let ok = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .args([
                "-days",
                "2",
                "-subj",
                "/CN=kekkai-test-token",
                "-addext",
                "keyUsage=digitalSignature",
            ])
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .unwrap()
            .stdout;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        let mut line = String::new();
                        BufReader::new(s.try_clone().unwrap())
                            .read_line(&mut line)
                            .unwrap();
                        let token = sign(&key, &der, &line);
                        let body = format!(
                            "{{\"token\":\"{token}\",\"access_token\":\"{token}\",\"expires_in\":600}}"
                        );
                        let _ = write!(
                            s,
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        TokenServer {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A token for the request line `GET /token?service=…&scope=repository:NAME:ACTIONS… HTTP/1.1`.
fn sign(key: &Path, cert_der: &[u8], request: &str) -> String {
    let query = request
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.split_once('?'))
        .map(|(_, q)| q.to_owned())
        .unwrap_or_default();
    let mut access = Vec::new();
    for pair in query.split('&') {
        if let Some(scope) = pair.strip_prefix("scope=") {
            let scope = unescape(scope);
            let parts: Vec<&str> = scope.split(':').collect();
            if parts.len() >= 3 && parts[0] == "repository" {
                access.push(serde_json::json!({
                    "type": "repository", "name": parts[1], "actions": ["pull", "push"],
                }));
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({ "typ": "JWT", "alg": "RS256", "x5c": [b64(cert_der, false)] });
    let claims = serde_json::json!({
        "iss": "kekkai-test-issuer", "sub": "tester", "aud": "kekkai-test-registry",
        "exp": now + 600, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", super::support::unique()),
        "access": access,
    });
    let signing = format!(
        "{}.{}",
        b64(header.to_string().as_bytes(), true),
        b64(claims.to_string().as_bytes(), true)
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(signing.as_bytes())
        .unwrap();
    let mut sig = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut sig).unwrap();
    assert!(child.wait().unwrap().success());
    format!("{signing}.{}", b64(&sig, true))
}

/// Pushes the standard image to `repo` on the registry at `port` (skopeo, as the test user).
fn push(w: &World, layout: &Path, port: u16, repo: &str, creds: bool) {
    let home: PathBuf = w.dir.join(format!("skopeo-{}", super::support::unique()));
    let src = format!("oci:{}:1.0", layout.display());
    let dst = format!("docker://127.0.0.1:{port}/{repo}");
    let mut args = vec!["copy", "-q", "--dest-tls-verify=false"];
    if creds {
        args.extend(["--dest-creds", "tester:x"]);
    }
    args.extend([src.as_str(), dst.as_str()]);
    build::skopeo(&home, &args);
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn pull_from_a_local_registry(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    if tools() {
        return;
    }
    let w = World::new("img-pull");
    let st = store(&w, who, "store");
    let (layout, written) = super::standard_layout(&w, "layout");
    let reg_dir = w.dir.join("registry");
    let registry = Registry::start(&reg_dir, "");
    push(&w, &layout, registry.port, "kekkai/test:1.0", false);
    let reference = format!("127.0.0.1:{}/kekkai/test:1.0", registry.port);
    // Plain HTTP needs --insecure; --insecure needs a loopback registry.
    assert_eq!(refused(&w, who, &st, &["pull", &reference]), "registry");
    assert_eq!(
        refused(
            &w,
            who,
            &st,
            &["pull", "--insecure", "192.0.2.1:5000/kekkai/test:1.0"]
        ),
        "usage"
    );
    let (code, v) = image(&w, who, &st, &["pull", "--insecure", &reference]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["id"], written.id.as_str());
    assert_eq!(v["names"][0], reference.as_str());
    let o = k(
        &w,
        who,
        &st,
        &[
            "run",
            "--image",
            &reference,
            "--",
            "sh",
            "-c",
            super::run::LOOK,
        ],
    );
    assert_code(&o, 0);
    super::run::looks_right(&stdout(&o));
    // A second pull has nothing to unpack.
    let (code, v) = image(&w, who, &st, &["pull", "--insecure", &reference]);
    assert_eq!(code, 0, "{v}");
    assert!(
        v["layers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l[1] == false)
    );
    // A Docker schema 2 manifest (gzip layers only) into another store: the same image.
    let gz = w.dir.join("layout-gz");
    build::layout(&gz, &build::standard(false), "1.0");
    let home = w.dir.join("skopeo-v2s2");
    let dst = format!("docker://127.0.0.1:{}/kekkai/v2s2:1.0", registry.port);
    build::skopeo(
        &home,
        &[
            "copy",
            "-q",
            "--format",
            "v2s2",
            "--dest-tls-verify=false",
            &format!("oci:{}:1.0", gz.display()),
            &dst,
        ],
    );
    let st2 = store(&w, who, "store2");
    let v2s2 = format!("127.0.0.1:{}/kekkai/v2s2:1.0", registry.port);
    let (code, v) = image(&w, who, &st2, &["pull", "--insecure", &v2s2]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["id"], written.id.as_str());
    // A tag the registry does not have.
    let missing = format!("127.0.0.1:{}/kekkai/test:nope", registry.port);
    assert_eq!(
        refused(&w, who, &st, &["pull", "--insecure", &missing]),
        "not-found"
    );
    drop(registry);
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn pull_with_token_authentication(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    if tools() {
        return;
    }
    let w = World::new("img-token");
    let st = store(&w, who, "store");
    let (layout, written) = super::standard_layout(&w, "layout");
    let dir = w.dir.join("registry");
    std::fs::create_dir_all(&dir).unwrap();
    let tokens = TokenServer::start(&dir);
    let auth = format!(
        "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: kekkai-test-registry\n    issuer: kekkai-test-issuer\n    rootcertbundle: {}\n",
        tokens.port,
        dir.join("cert.pem").display()
    );
    let registry = Registry::start(&dir, &auth);
    // Without a token, the registry says no (and where to get one).
    let mut s = std::net::TcpStream::connect(("127.0.0.1", registry.port)).unwrap();
    write!(
        s,
        "GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    push(&w, &layout, registry.port, "kekkai/private:1.0", true);
    let reference = format!("127.0.0.1:{}/kekkai/private:1.0", registry.port);
    let (code, v) = image(&w, who, &st, &["pull", "--insecure", &reference]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["id"], written.id.as_str());
    let o = k(
        &w,
        who,
        &st,
        &["run", "--image", &reference, "--", "cat", "/srv/hello"],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "layer3\n");
    drop(registry);
    drop(tokens);
}

/// How much a hostile answer sends: far more than any cap of kekkai's (4 MiB manifests, 1 MiB
/// tokens and error bodies), chunked, with no Content-Length.
const HOSTILE: usize = 64 << 20;

/// A hostile registry on 127.0.0.1: `/v2/` answers (with a bearer challenge naming its own
/// `/token` when `what` is "token"), and the answer `what` names (the manifest, the token, or
/// the manifest's 404 error body) is `HOSTILE` bytes, chunked. `sent` counts that body's bytes
/// written before the client closed; `whole` says whether all of it went.
struct Hostile {
    port: u16,
    sent: Arc<std::sync::atomic::AtomicUsize>,
    whole: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Hostile {
    fn start(what: &'static str) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let whole = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (sent2, whole2, stop2) = (Arc::clone(&sent), Arc::clone(&whole), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let Ok((mut s, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                s.set_nonblocking(false).unwrap();
                s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut reader = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                let huge = |s: &mut std::net::TcpStream, status: &str| {
                    let _ = write!(
                        s,
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\n{{\r\n"
                    );
                    let chunk = vec![b' '; 1 << 20];
                    let mut n = 0;
                    while n < HOSTILE {
                        if write!(s, "{:x}\r\n", chunk.len()).is_err()
                            || s.write_all(&chunk).is_err()
                            || s.write_all(b"\r\n").is_err()
                        {
                            sent2.store(n, Ordering::Relaxed);
                            return;
                        }
                        n += chunk.len();
                    }
                    sent2.store(n, Ordering::Relaxed);
                    whole2.store(
                        s.write_all(b"1\r\n}\r\n0\r\n\r\n").is_ok(),
                        Ordering::Relaxed,
                    );
                };
                if path == "/v2/" {
                    if what == "token" {
                        let _ = write!(
                            s,
                            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"hostile\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                    } else {
                        let _ = write!(
                            s,
                            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                    }
                } else if (path.starts_with("/token") && what == "token")
                    || (path.contains("/manifests/") && what == "manifest")
                {
                    huge(&mut s, "200 OK");
                } else if path.contains("/manifests/") && what == "error" {
                    huge(&mut s, "404 Not Found");
                } else {
                    let _ = write!(
                        s,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                }
            }
        });
        Hostile {
            port,
            sent,
            whole,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A registry (or its token service) answering 64 MiB, chunked: the pull refuses at its cap
/// and closes the connection, having read a few MiB at most (the server never gets to send
/// the whole body).
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn pull_refuses_a_hostile_answer_before_reading_it(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values(("manifest", "too-large"), ("token", "too-large"), ("error", "not-found"))] case: (
        &'static str,
        &'static str,
    ),
) {
    need(who);
    let (what, kind) = case;
    let w = World::new("img-hostile-reg");
    let st = store(&w, who, "store");
    let server = Hostile::start(what);
    let reference = format!("127.0.0.1:{}/kekkai/hostile:1.0", server.port);
    let (code, v) = image(&w, who, &st, &["pull", "--insecure", &reference]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["error"]["kind"], kind, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("127.0.0.1:{}", server.port)),
        "{message}"
    );
    if kind == "too-large" {
        assert!(
            message.contains("1048576 bytes") || message.contains("4194304 bytes"),
            "{message}"
        );
    }
    // The server's last write fails once kekkai has closed; give it that moment.
    let start = Instant::now();
    while server.sent.load(Ordering::Relaxed) == 0 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = server.sent.load(Ordering::Relaxed);
    assert!(
        !server.whole.load(Ordering::Relaxed),
        "{what}: all {sent} bytes were read"
    );
    assert!(sent < HOSTILE, "{what}: {sent} bytes sent");
    drop(server);
}
