//! Capabilities, no_new_privs, Landlock and seccomp, seen from inside real sandboxes, as root
//! and as an unprivileged user. Denials are asserted as exact errnos or signals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use rstest::rstest;
use support::{Who, World, assert_code, code, need, skip, stdout};

fn probe_with(w: &World, who: Who, policy: &[&str], op: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = vec!["run".into()];
    args.extend(policy.iter().map(|s| s.to_string()));
    args.push("--".into());
    args.push(w.probe());
    args.extend(op.iter().map(|s| s.to_string()));
    w.run(who, &args)
}

fn probe(w: &World, who: Who, policy: &[&str], op: &[&str]) -> String {
    let o = probe_with(w, who, policy, op);
    assert_code(&o, 0);
    stdout(&o).trim().to_owned()
}

fn status(w: &World, who: Who, policy: &[&str]) -> Vec<(String, String)> {
    probe(w, who, policy, &["status"])
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn field<'a>(st: &'a [(String, String)], name: &str) -> &'a str {
    st.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn the_default_policy_leaves_no_capability_and_sets_nnp_and_seccomp(
    #[values(Who::Root, Who::Rootless)] who: Who,
) {
    need(who);
    let w = World::new("status");
    let st = status(&w, who, &[]);
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(field(&st, set), "0000000000000000", "{set}");
    }
    assert_eq!(field(&st, "NoNewPrivs"), "1");
    assert_eq!(field(&st, "Seccomp"), "2");
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn a_kept_capability_works_for_a_non_root_identity(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("keepcap");
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\ncapabilities: { keep: [net_bind_service] }\n",
    );
    let st = status(&w, who, &["-p", "./p.yaml"]);
    // CAP_NET_BIND_SERVICE is bit 10.
    for set in ["CapPrm", "CapEff", "CapBnd", "CapAmb", "CapInh"] {
        assert_eq!(field(&st, set), "0000000000000400", "{set}");
    }
    assert_eq!(
        probe(&w, who, &["-p", "./p.yaml"], &["tcp-bind", "80"]),
        "ok 80"
    );
    // Without it, nobody can't bind a privileged port.
    assert_eq!(probe(&w, who, &[], &["tcp-bind", "80"]), "errno EACCES");
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn landlock_denies_reading_outside_its_rules(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("landlock");
    // A layer over the host root adds /srv/kekkai-secret; the default policy's Landlock read
    // list does not include /srv.
    w.dir.write("layer/srv/kekkai-secret", "secret");
    // Lists append, so replace the inherited `lower` to put the layer on top of the host root.
    w.dir.write(
        "p.yaml",
        format!(
            "version: 1\nextends: default\nreplace: [rootfs.lower]\nrootfs: {{ lower: [{}, /] }}\n",
            w.dir.join("layer").display()
        ),
    );
    assert_eq!(
        probe(
            &w,
            who,
            &["-p", "./p.yaml"],
            &["read", "/srv/kekkai-secret"]
        ),
        "errno EACCES"
    );
    // The same file is readable with Landlock off: the mount table alone would allow it.
    w.dir.write(
        "off.yaml",
        "version: 1\nextends: ./p.yaml\nlandlock: { enabled: false }\n",
    );
    assert!(
        probe(
            &w,
            who,
            &["-p", "./off.yaml"],
            &["read", "/srv/kekkai-secret"]
        )
        .starts_with("ok")
    );
    // Listing is allowed everywhere; file contents only under the read list.
    assert_eq!(
        probe(&w, who, &["-p", "./p.yaml"], &["readdir", "/srv"]),
        "ok 3"
    );
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn landlock_limits_tcp_ports(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("ports");
    w.dir.write(
        "p.yaml",
        "version: 1\nextends: default\nlandlock: { tcp-bind: [8080] }\n",
    );
    assert_eq!(
        probe(&w, who, &["-p", "./p.yaml"], &["tcp-bind", "8080"]),
        "ok 8080"
    );
    assert_eq!(
        probe(&w, who, &["-p", "./p.yaml"], &["tcp-bind", "8081"]),
        "errno EACCES"
    );
}

#[rstest]
#[case::new_user_namespace(&["syscall", "unshare", "CLONE_NEWUSER"], "errno EPERM")]
#[case::new_mount_namespace(&["syscall", "unshare", "CLONE_NEWNS"], "errno EPERM")]
#[case::clone_with_namespace(&["syscall", "clone", "CLONE_NEWNET"], "errno EPERM")]
#[case::clone3(&["syscall", "clone3", "0", "0"], "errno ENOSYS")]
#[case::tiocsti(&["tiocsti"], "errno EPERM")]
#[case::tiocsti_high_bits(&["tiocsti", "1"], "errno EPERM")]
#[case::tiocsti_all_high_bits(&["tiocsti", "0xffffffff"], "errno EPERM")]
#[case::io_uring(&["syscall", "io_uring_setup", "1", "0"], "errno EPERM")]
#[case::bpf(&["syscall", "bpf", "0", "0", "0"], "errno EPERM")]
#[case::userfaultfd(&["syscall", "userfaultfd", "0"], "errno EPERM")]
#[case::keyctl(&["syscall", "keyctl", "0"], "errno EPERM")]
#[case::reboot_bad_magic(&["syscall", "reboot", "0", "0", "0"], "errno EPERM")]
#[case::mount(&["syscall", "mount", "0", "0", "0", "0", "0"], "errno EPERM")]
#[case::ptrace(&["syscall", "ptrace", "16", "1"], "errno EPERM")]
#[case::netlink_audit_socket(&["socket", "AF_NETLINK", "3", "9"], "errno EPERM")]
#[case::packet_socket(&["socket", "AF_PACKET", "3"], "errno EPERM")]
#[case::vsock(&["socket", "AF_VSOCK", "1"], "errno EPERM")]
#[case::personality(&["syscall", "personality", "0x0040000"], "errno EPERM")]
#[ignore = "needs root: run by scripts/test"]
fn seccomp_denies(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[case] op: &[&str],
    #[case] want: &str,
) {
    need(who);
    let w = World::new("seccomp");
    assert_eq!(probe(&w, who, &[], op), want);
}

#[rstest]
#[case::i386(&["int80", "20"])]
#[case::x32(&["x32", "getpid"])]
#[ignore = "needs root: run by scripts/test"]
fn foreign_abis_are_killed(#[values(Who::Root, Who::Rootless)] who: Who, #[case] op: &[&str]) {
    need(who);
    let w = World::new("abi");
    let o = probe_with(&w, who, &[], op);
    assert_eq!(code(&o), 128 + libc::SIGSYS, "killed by SIGSYS");
    assert_eq!(stdout(&o), "", "the call must not return");
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn allowed_socket_families_work(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("sock");
    for fam in ["AF_UNIX", "AF_INET", "AF_INET6"] {
        assert!(
            probe(&w, who, &[], &["socket", fam, "1"]).starts_with("ok"),
            "{fam}"
        );
    }
}

/// NETLINK_ROUTE is how programs list network interfaces (Python's `socket.if_nameindex()`,
/// `ip addr`, Node's `os.networkInterfaces()`): it works, and shows the sandbox's own network
/// namespace; other netlink protocols stay denied.
#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn netlink_route_lists_the_sandboxs_own_interfaces(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[values("default", "build")] policy: &str,
) {
    need(who);
    // `build` runs a root caller's program as the directory's owner; root's is refused.
    let w = World::of_test_user("netlink");
    let o = w.run(
        who,
        [
            "run",
            "-p",
            policy,
            "--",
            "python3",
            "-c",
            "import socket; print(socket.if_nameindex())",
        ],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "[(1, 'lo')]\n");
    assert!(probe(&w, who, &[], &["socket", "AF_NETLINK", "3", "0"]).starts_with("ok"));
    assert_eq!(
        probe(&w, who, &[], &["socket", "AF_NETLINK", "3", "4"]),
        "errno EPERM"
    );
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn no_inherited_descriptor_reaches_the_program(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    let w = World::new("fds");
    let cmd = format!(
        "exec 7</etc/hostname 9</etc/hostname; exec {} run -- {} fds",
        w.kekkai().display(),
        w.probe()
    );
    let o = std::process::Command::new("sh")
        .args(["-c", &cmd])
        .current_dir(w.dir.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .uid_for(who)
        .output()
        .unwrap();
    assert_code(&o, 0);
    // 0, 1, 2 and the directory the probe reads /proc/self/fd with.
    assert_eq!(stdout(&o).trim(), "0 1 2 3");
}

trait UidFor {
    fn uid_for(&mut self, who: Who) -> &mut Self;
}

impl UidFor for std::process::Command {
    fn uid_for(&mut self, who: Who) -> &mut Self {
        use std::os::unix::process::CommandExt;
        if who == Who::Rootless {
            let (uid, gid) = support::test_user().unwrap();
            self.uid(uid).gid(gid);
        }
        self
    }
}

#[rstest]
#[case::shell_and_coreutils(
    "ls / | sort | head -3 | wc -l; echo abc | tr a-c x-z; seq 3 | paste -sd+ | bc 2>/dev/null || true"
)]
#[case::python("python3 -c 'import json, os; print(json.dumps({\"pid\": os.getpid()}))'")]
#[case::gcc(
    "printf '#include <stdio.h>\\nint main(void){puts(\"compiled\");return 0;}\\n' > /tmp/t.c && gcc -o /tmp/t /tmp/t.c && /tmp/t"
)]
#[ignore = "needs root: run by scripts/test"]
fn ordinary_work_runs_under_the_default_policy(
    #[values(Who::Root, Who::Rootless)] who: Who,
    #[case] script: &str,
) {
    need(who);
    for tool in ["python3", "gcc"] {
        if script.contains(tool)
            && skip(
                which(tool).is_none().then(|| {
                    format!("{tool} is not installed (scripts/setup-test-env installs it)")
                }),
            )
        {
            return;
        }
    }
    let w = World::new("work");
    let o = w.run(who, ["run", "--", "sh", "-c", script]);
    assert_code(&o, 0);
    if script.contains("gcc") {
        assert_eq!(stdout(&o), "compiled\n");
    }
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    ["/usr/local/bin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| std::path::Path::new(d).join(tool))
        .find(|p| p.exists())
}

#[rstest]
#[ignore = "needs root: run by scripts/test"]
fn git_commits_in_a_writable_bind(#[values(Who::Root, Who::Rootless)] who: Who) {
    need(who);
    if skip(
        which("git")
            .is_none()
            .then(|| "git is not installed".to_string()),
    ) {
        return;
    }
    let w = World::new("git");
    let repo = w.dir.join("repo");
    std::fs::create_dir(&repo).unwrap();
    // The program runs as nobody: as root that is the host's 65534; rootless, the test user's
    // own uid maps to it. Give the repository to whoever that is, as git insists.
    let (uid, gid) = match who {
        Who::Root => (65534, 65534),
        Who::Rootless => support::test_user().unwrap(),
    };
    nix::unistd::chown(
        &repo,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .unwrap();
    let script = "cd /repo && git init -q && echo hi > f && git add f && git -c user.name=t -c user.email=t@t commit -qm first && git log --oneline | wc -l";
    let o = w.run(
        who,
        [
            "run",
            "--bind",
            &format!("{}:/repo", repo.display()),
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "1\n");
    assert!(repo.join(".git/HEAD").exists());
}
