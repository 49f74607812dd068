//! `kekkai learn`, as root and as an unprivileged user: a Python program that reads a data
//! directory, writes a result file, uses sqlite and a loopback socket is learned; the learned
//! policy runs it; variants that write elsewhere, exec another binary or make a syscall not
//! seen are denied with the errno they see; two runs merge; a probe learned under BASE gets
//! exactly what it gets under BASE; a service is learned with `--duration` and exported.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::os::unix::fs::PermissionsExt;

use rstest::rstest;
use support::{Mode, Who, World, assert_code, code, need, stdout};

/// The program: reads `data/*.txt`, stores them in `out/app.db` (sqlite), echoes through a
/// TCP socket on 127.0.0.1:5555, writes `out/result.txt`; then, by its argument, steps
/// outside. A denial prints `denied: ERRNO` and exits 3.
const APP: &str = r#"
import os, sys, socket, sqlite3, threading, errno

mode = sys.argv[1] if len(sys.argv) > 1 else "normal"
rows = []
for name in sorted(os.listdir("data")):
    if name.endswith(".txt"):
        with open(os.path.join("data", name)) as f:
            rows.append((name, f.read().strip()))
db = sqlite3.connect("out/app.db")
db.execute("create table if not exists t (name text, body text)")
db.executemany("insert into t values (?, ?)", rows)
db.commit()
db.close()
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("127.0.0.1", 5555))
srv.listen(1)
def serve():
    c, _ = srv.accept()
    c.sendall(c.recv(100).upper())
    c.close()
t = threading.Thread(target=serve)
t.start()
cl = socket.create_connection(("127.0.0.1", 5555))
cl.sendall(b"ping")
reply = cl.recv(100)
cl.close()
t.join()
with open("out/result.txt", "w") as f:
    f.write(f"{len(rows)} {reply.decode()}\n")
try:
    if mode == "write-elsewhere":
        open("/tmp/elsewhere.txt", "w").write("x")
    elif mode == "exec":
        os.execv("data/tool", ["tool"])
    elif mode == "syscall":
        os.getpriority(os.PRIO_PROCESS, 0)
    elif mode == "also-tmp":
        open("/tmp/extra.txt", "w").write("x")
except OSError as e:
    print(f"denied: {errno.errorcode[e.errno]}")
    sys.exit(3)
print("ok")
"#;

/// BASE: the default policy with `out` writable.
const BASE: &str = r#"version: 1
extends: default
mounts:
  - { bind: "${PWD}/out", to: "${PWD}/out", writable: true }
"#;

/// A world with the program, its data, a writable `out` and a second executable in `data`.
fn app_world(tag: &str) -> World {
    let w = World::of_test_user(tag);
    w.dir.write("app.py", APP);
    w.dir.write("data/a.txt", "alpha");
    w.dir.write("data/b.txt", "beta");
    w.dir.write("base.yaml", BASE);
    std::fs::copy("/usr/bin/true", w.dir.join("data/tool")).unwrap();
    std::fs::set_permissions(w.dir.join("data/tool"), PermissionsExt::from_mode(0o755)).unwrap();
    let out = w.dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    // The program runs as nobody (root caller) or as the test user mapped to nobody.
    std::fs::set_permissions(&out, PermissionsExt::from_mode(0o777)).unwrap();
    w
}

fn learn(w: &World, who: Who, args: &[&str]) -> std::process::Output {
    let mut all = vec!["learn"];
    all.extend_from_slice(args);
    w.run(who, &all)
}

fn run_app(w: &World, who: Who, policy: &str, mode: &str) -> std::process::Output {
    w.run(
        who,
        ["run", "-q", "-p", policy, "--", "python3", "app.py", mode],
    )
}

/// The issue's "must show": learned, it runs (exit 0, the result written); each variant that
/// steps outside what the run did is denied with the errno the program sees, though BASE
/// allows it.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_learned_policy_runs_the_program_and_denies_the_rest(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    let w = app_world("learn-app");
    let o = learn(
        &w,
        who,
        &["-p", "base.yaml", "-o", "p.yaml", "--", "python3", "app.py"],
    );
    assert_code(&o, 0);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("proof: under the learned policy"), "{err}");
    let text = std::fs::read_to_string(w.dir.join("p.yaml")).unwrap();
    assert!(text.contains("preset: empty"), "{text}");
    assert!(text.contains("from-mounts: false"), "{text}");
    assert!(text.contains("- 5555"), "{text}");
    assert_code(&w.run(who, ["check", "p.yaml"]), 0);

    // The issue's "kekkai audit -p OUT.yaml runs clean": no escape, no error, and what the
    // audit allowed its own harness is said in the notes. Unprivileged in a delegated cgroup:
    // without one, the best-effort limits BASE gives are dropped, which the audit rightly
    // counts as escapes (as for BASE itself).
    let mode = match who {
        Who::Root => Mode::Root,
        Who::Rootless => Mode::Delegated,
    };
    let o = support::run_as(&w, mode, &["audit", "-p", "p.yaml", "--json"]);
    let audit: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (
            audit["summary"]["escaped"].as_u64(),
            audit["summary"]["errors"].as_u64()
        ),
        (Some(0), Some(0)),
        "{audit:#}"
    );
    assert_code(&o, 0);
    let notes = audit["notes"].to_string();
    assert!(notes.contains("the audit allowed its harness"), "{notes}");
    assert!(notes.contains("/.kekkai-audit-probe"), "{notes}");

    std::fs::remove_file(w.dir.join("out/result.txt")).unwrap();
    let o = run_app(&w, who, "p.yaml", "normal");
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "ok");
    let result = std::fs::read_to_string(w.dir.join("out/result.txt")).unwrap();
    assert_eq!(result, "2 PING\n");

    for (mode, errno) in [
        ("write-elsewhere", "EACCES"), // Landlock: /tmp is not a learned tree
        ("exec", "EACCES"),            // Landlock: data/ is not an execute tree
        ("syscall", "EPERM"),          // seccomp: getpriority was never seen
    ] {
        let o = run_app(&w, who, "base.yaml", mode);
        assert_code(&o, 0);
        let o = run_app(&w, who, "p.yaml", mode);
        assert_eq!(
            (code(&o), stdout(&o).trim().to_string()),
            (3, format!("denied: {errno}")),
            "{mode}"
        );
    }
}

/// Two runs fold into one policy that allows both; either alone does not allow the other.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn merging_two_runs_allows_both(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = app_world("learn-merge");
    let o = learn(
        &w,
        who,
        &[
            "-p",
            "base.yaml",
            "-o",
            "one.yaml",
            "--",
            "python3",
            "app.py",
        ],
    );
    assert_code(&o, 0);
    let o = run_app(&w, who, "one.yaml", "also-tmp");
    assert_eq!((code(&o), stdout(&o).trim()), (3, "denied: EACCES"));
    // BASE comes from what one.yaml extends.
    let o = learn(
        &w,
        who,
        &[
            "--merge",
            "one.yaml",
            "-o",
            "both.yaml",
            "--",
            "python3",
            "app.py",
            "also-tmp",
        ],
    );
    assert_code(&o, 0);
    let text = std::fs::read_to_string(w.dir.join("both.yaml")).unwrap();
    assert!(text.contains("python3 app.py also-tmp"), "{text}");
    assert!(text.contains("#   python3 app.py  (ended"), "{text}");
    for mode in ["normal", "also-tmp"] {
        let o = run_app(&w, who, "both.yaml", mode);
        assert_code(&o, 0);
        assert_eq!(stdout(&o).trim(), "ok", "{mode}");
    }
    // /tmp became a write tree (the tmpfs as a whole); executing from data/ did not.
    let o = run_app(&w, who, "both.yaml", "exec");
    assert_eq!((code(&o), stdout(&o).trim()), (3, "denied: EACCES"));
}

/// A probe that tries what BASE denies gets, while it is learned, exactly the answers it gets
/// under BASE (the learning run enforces BASE), and nothing it tried lands in the policy.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_probe_being_learned_escapes_nothing_base_denies(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::of_test_user("learn-probe");
    let p = w.probe();
    let script = format!(
        "{p} syscall unshare CLONE_NEWUSER; {p} syscall mount 0 0 0 0; {p} create /usr/x; \
         {p} tiocsti; {p} syscall ptrace 0 1; {p} read /home; {p} chmod {dir} 4755",
        dir = w.dir.path().display()
    );
    let under_base = w.run(who, ["run", "-q", "--", "sh", "-c", &script]);
    assert_code(&under_base, 0);
    let learning = w.run(
        who,
        [
            "learn",
            "-q",
            "--no-proof",
            "-o",
            "probe.yaml",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    assert_code(&learning, 0);
    assert_eq!(stdout(&learning), stdout(&under_base));
    assert!(
        stdout(&under_base).contains("errno"),
        "{}",
        stdout(&under_base)
    );
    let text = std::fs::read_to_string(w.dir.join("probe.yaml")).unwrap();
    for denied in ["unshare", "mount", "ptrace"] {
        assert!(
            !text
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("- {denied} "))),
            "{denied} in:\n{text}"
        );
    }
}

/// A program that keeps running is stopped after `--duration`; the policy has no timeout, its
/// proof ends the same way, and `kekkai export systemd` takes it.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_service_is_learned_for_a_duration_and_exports(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::of_test_user("learn-service");
    let service = "import socket, time\n\
                   s = socket.socket(); s.bind(('127.0.0.1', 8080)); s.listen(1)\n\
                   print('listening', flush=True)\n\
                   while True: time.sleep(0.05)\n";
    w.dir.write("svc.py", service);
    let o = learn(
        &w,
        who,
        &[
            "--duration",
            "1s",
            "-o",
            "svc.yaml",
            "--",
            "python3",
            "svc.py",
        ],
    );
    assert_code(&o, 0);
    let text = std::fs::read_to_string(w.dir.join("svc.yaml")).unwrap();
    assert!(!text.contains("\ntimeout:"), "{text}");
    assert!(text.contains("tcp-bind:\n    - 8080"), "{text}");
    let o = w.run(who, ["export", "systemd", "-p", "svc.yaml"]);
    assert_code(&o, 0);
    assert!(stdout(&o).contains("SystemCallFilter="), "{}", stdout(&o));
}

/// The program names the files the learned policy's comments quote: a file it creates named
/// `/var/tmp/x<U+2028>  enabled: false<U+2028>  #` (libyaml ends a comment at LS) once put
/// `landlock.enabled: false` into the learned policy, which then let a program read what
/// neither the run nor BASE allowed. The comment now shows the name escaped, the policy has no
/// such key, and a file the run never read (in the working directory, below /tmp on the host)
/// stays unreadable (cat: EACCES, exit 1).
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_file_name_cannot_write_keys_into_the_learned_policy(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    let w = World::of_test_user("learn-inject");
    w.dir.write("secret.txt", "not learned\n");
    let script = "touch \"/var/tmp/x$(printf '\\342\\200\\250')  enabled: false$(printf '\\342\\200\\250')  #\"; cat /etc/hostname";
    let o = learn(
        &w,
        who,
        &[
            "-q",
            "--no-proof",
            "-o",
            "inj.yaml",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    assert_code(&o, 0);
    let text = std::fs::read_to_string(w.dir.join("inj.yaml")).unwrap();
    assert!(
        text.contains("/var/tmp/x\\u{2028}  enabled: false"),
        "{text}"
    );
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert!(doc["landlock"].get("enabled").is_none(), "{text}");
    let o = w.run(
        who,
        ["run", "-q", "-p", "inj.yaml", "--", "cat", "secret.txt"],
    );
    assert_code(&o, 1);
    assert_eq!(stdout(&o), "");
    assert!(
        support::stderr(&o).contains("Permission denied"),
        "{}",
        support::stderr(&o)
    );
}

/// The proof runs under the text `learn` wrote, not under whatever the -o path holds by then:
/// someone who may rename in its directory (the user whose checkout root learns in) swapped
/// in a policy of their own (`hostname: pwned`, `host-privileges: allow`) as soon as the
/// file was written, and the proof launched the program under it (16 of 25 tries). Here the
/// swap follows the first change of the file every time, ten times over, and the proof still
/// sees the learned policy's host name.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_proof_runs_what_was_learned_not_what_the_path_holds(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    need(who);
    let w = World::of_test_user("learn-swap");
    let evil = "version: 1\nextends: default\nhostname: pwned\nhost-privileges: allow\n";
    for _ in 0..10 {
        let _ = std::fs::remove_file(w.dir.join("p.yaml"));
        w.dir.write("evil.tmp", evil);
        let watch = Inotify::init(InitFlags::empty()).unwrap();
        watch
            .add_watch(w.dir.path(), AddWatchFlags::IN_MODIFY)
            .unwrap();
        let dir = w.dir.path().to_owned();
        let swapper = std::thread::spawn(move || {
            loop {
                let events = watch.read_events().unwrap();
                if events
                    .iter()
                    .any(|e| e.name.as_deref() == Some(std::ffi::OsStr::new("p.yaml")))
                {
                    std::fs::rename(dir.join("evil.tmp"), dir.join("p.yaml")).unwrap();
                    return;
                }
            }
        });
        let o = learn(&w, who, &["-q", "-o", "p.yaml", "--", "hostname"]);
        swapper.join().unwrap();
        assert_code(&o, 0);
        assert_eq!(
            stdout(&o),
            "kekkai\nkekkai\n",
            "the proof ran under the swapped policy"
        );
    }
}
