//! Manual pages: `kekkai(1)` and one page per subcommand (`kekkai-run(1)`, `kekkai-audit(1)`,
//! ...), generated from the same clap definitions that parse the command line, with the
//! sections clap does not know about: EXIT STATUS, ENVIRONMENT, FILES and SEE ALSO.

use std::io::Write;
use std::path::{Path, PathBuf};

use roff::{Roff, bold, italic, roman};

/// One rendered page.
#[derive(Debug, Clone)]
pub struct Page {
    /// The page's name: `kekkai` or `kekkai-SUBCOMMAND`.
    pub name: String,
    /// The roff source.
    pub roff: Vec<u8>,
}

impl Page {
    /// Its file name in a man1 directory (`kekkai-run.1`).
    pub fn file_name(&self) -> String {
        format!("{}.1", self.name)
    }
}

/// The subcommands that get a page of their own: every one that is not hidden.
pub fn subcommands(cli: &clap::Command) -> Vec<String> {
    cli.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .map(|s| s.get_name().to_owned())
        .collect()
}

/// The page for `sub` (`None`: the main page), or `None` for a subcommand without one.
pub fn page(cli: &clap::Command, sub: Option<&str>) -> Option<Page> {
    let mut cli = cli.clone().disable_help_subcommand(true);
    cli.build();
    let cmd = match sub {
        None => cli.clone(),
        Some(name) => cli
            .get_subcommands()
            .find(|s| s.get_name() == name && !s.is_hide_set())?
            .clone(),
    };
    let name = match sub {
        None => "kekkai".to_owned(),
        Some(s) => format!("kekkai-{s}"),
    };
    let man = clap_mangen::Man::new(cmd.clone())
        .title(name.to_ascii_uppercase())
        .manual("kekkai manual")
        .source(format!("kekkai {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    let mut render = || -> std::io::Result<()> {
        man.render_title(&mut out)?;
        man.render_name_section(&mut out)?;
        man.render_synopsis_section(&mut out)?;
        man.render_description_section(&mut out)?;
        if cmd.get_arguments().any(|a| !a.is_hide_set()) {
            man.render_options_section(&mut out)?;
        }
        if sub.is_none() {
            out.extend_from_slice(subcommand_list(&cli).as_bytes());
        }
        out.extend_from_slice(sections(sub, &cli).as_bytes());
        man.render_version_section(&mut out)
    };
    // Rendering into a Vec cannot fail; a page is still only returned whole.
    render().ok()?;
    Some(Page { name, roff: out })
}

/// Every page: the main one, then one per subcommand.
pub fn pages(cli: &clap::Command) -> Vec<Page> {
    std::iter::once(None)
        .chain(subcommands(cli).iter().map(|s| Some(s.as_str())))
        .filter_map(|s| page(cli, s))
        .collect()
}

/// Writes `pages` into `dir` (which must exist), each through a new file renamed into place,
/// so a name planted in the directory (a symbolic or hard link) is replaced, never written
/// through. Returns the paths written.
pub fn write_all(pages: &[Page], dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut written = Vec::new();
    for p in pages {
        let dest = dir.join(p.file_name());
        let tmp = dir.join(format!(".{}.{}.tmp", p.file_name(), std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        let done = f
            .write_all(&p.roff)
            .and_then(|()| f.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &dest));
        if let Err(e) = done {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        written.push(dest);
    }
    Ok(written)
}

/// The main page's list of subcommands, each pointing at its own page.
fn subcommand_list(cli: &clap::Command) -> String {
    let mut r = Roff::new();
    r.control("SH", ["COMMANDS"]);
    for sub in cli
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        r.control("TP", []);
        r.text([
            bold(format!("kekkai {}", sub.get_name())),
            roman(" ("),
            bold(format!("kekkai-{}", sub.get_name())),
            roman("(1))"),
        ]);
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        r.text([roman(about)]);
    }
    r.to_roff()
}

/// An exit status and what it means.
type Status = (&'static str, &'static str);

const USAGE: Status = (
    "2",
    "The command line is wrong: an unknown option (one that bubblewrap users type is answered \
     with kekkai's spelling), a missing or malformed value.",
);

/// The exit statuses of `sub` (`None`: the main page, which lists `run`'s).
fn exit_statuses(sub: Option<&str>) -> Vec<Status> {
    let policy_invalid = (
        "1",
        "A policy is invalid; every error is printed as FILE:LINE:COLUMN: KEY.PATH: MESSAGE.",
    );
    match sub {
        None | Some("run") => vec![
            (
                "N",
                "The program's own exit status. A program that itself exits with 124 to 127 \
                 looks like the cases below; --report FILE tells them apart.",
            ),
            (
                "124",
                "The policy's timeout fired: the program got SIGTERM, then SIGKILL after the \
                 grace time.",
            ),
            (
                "125",
                "kekkai failed before the program started: the policy is invalid, or a launch \
                 step failed (the message names the step, the system call and its arguments, \
                 the errno and the policy key that asked for it).",
            ),
            ("126", "The program was found but could not be executed."),
            ("127", "The program was not found."),
            (
                "128+N",
                "The program was killed by signal N (137: SIGKILL, for example by the memory \
                 limit).",
            ),
            USAGE,
        ],
        Some("check") => vec![("0", "Every policy named is valid."), policy_invalid, USAGE],
        Some("explain") | Some("export") => vec![
            (
                "0",
                "The policy is valid; its description is on standard output.",
            ),
            policy_invalid,
            USAGE,
        ],
        Some("audit") => vec![
            (
                "0",
                "Every probe was blocked or not applicable, and the policy's own audit \
                 expectations hold (with --control: every probe ran).",
            ),
            (
                "1",
                "A probe escaped, an expectation failed, or the probe battery itself failed.",
            ),
            (
                "125",
                "The policy is invalid or the sandbox could not be started; no probe ran.",
            ),
            USAGE,
        ],
        Some("learn") => vec![
            (
                "0",
                "The policy was learned and written, and under it the program ended as in the \
                 learning run (or --no-proof).",
            ),
            (
                "1",
                "The policy was written, but under it the program ended differently (the \
                 message says how each run ended).",
            ),
            (
                "125",
                "Nothing was learned: BASE is invalid, the sandbox could not be started, or the \
                 program could not be executed.",
            ),
            USAGE,
        ],
        Some("cleanup") => vec![("0", "Always: what was removed is listed.")],
        Some("image") => vec![
            (
                "0",
                "Done: the image is imported, pulled, listed, shown or removed.",
            ),
            (
                "1",
                "Refused or failed: a hostile or corrupted archive (nothing of it is kept), an \
                 unknown image, an image in use by a running sandbox, the store or the \
                 registry failed. With --json the reason's kind is printed.",
            ),
            USAGE,
        ],
        Some("enter") => vec![
            (
                "N",
                "The command's own exit status (128+N: killed by signal N).",
            ),
            (
                "125",
                "The command did not start: no running sandbox of that name is the caller's, \
                 the state directory is refused, or joining or a lockdown step failed.",
            ),
            ("126", "The command was found but could not be executed."),
            ("127", "The command was not found."),
            USAGE,
        ],
        Some("ps" | "stop" | "kill" | "wait" | "logs" | "stats" | "rm") => {
            let mut v = vec![
                (
                    "0",
                    "Done (wait: the sandbox exited 0; its status is printed and is the exit \
                     status).",
                ),
                (
                    "1",
                    "No sandbox of that name in the caller's state directory.",
                ),
                USAGE,
                ("3", "stop, kill, stats NAME: the sandbox is not running."),
                (
                    "4",
                    "rm: the sandbox is still running (rm -f stops it first).",
                ),
                (
                    "5",
                    "The state directory or an entry in it is refused: XDG_RUNTIME_DIR unset, \
                     a directory not owned by the caller or open to others, a symbolic link.",
                ),
            ];
            if sub == Some("wait") {
                v.push(("N", "The sandbox's exit status, as run would have exited."));
            }
            v
        }
        Some(_) => vec![
            ("0", "Success."),
            ("1", "Writing the output failed."),
            USAGE,
        ],
    }
}

/// An environment variable and what kekkai does with it.
type Var = (&'static str, &'static str);

const POLICY_VARS: [Var; 2] = [
    (
        "HOME, XDG_CONFIG_HOME",
        "Where -p NAME looks for the caller's policies ($XDG_CONFIG_HOME/kekkai/policies, else \
         ~/.config/kekkai/policies); ${HOME} in a policy.",
    ),
    (
        "any NAME",
        "${env:NAME} in a policy reads the caller's variable (an unset one is an error); \
         env.keep passes named variables into the sandbox. The rest of the caller's environment \
         is not passed unless the policy says env: { clear: false }.",
    ),
];

const SYSTEMD_VARS: [Var; 4] = [
    (
        "NOTIFY_SOCKET",
        "sd_notify: a socket path is bound into the sandbox at /run/kekkai/notify and \
         NOTIFY_SOCKET points there; an abstract socket (@NAME), which a network namespace \
         would hide, is relayed by the supervisor through that same path.",
    ),
    (
        "LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES",
        "Socket activation: when LISTEN_PID is kekkai's pid, descriptors 3 to 3+LISTEN_FDS-1 \
         pass on to the program, with LISTEN_FDS and LISTEN_FDNAMES.",
    ),
    (
        "WATCHDOG_USEC, WATCHDOG_PID",
        "The systemd watchdog: WATCHDOG_USEC passes on and WATCHDOG_PID names the program.",
    ),
    (
        "JOURNAL_STREAM",
        "When standard error is the journal, kekkai's own messages carry syslog priority \
         prefixes (<3> error, <4> warning, <5> notice).",
    ),
];

const TRACE_VAR: Var = (
    "KEKKAI_TRACE_STEPS",
    "1: print each launch step's name to standard error as it starts; time: with the \
     microseconds since kekkai started.",
);

const STORE_VAR: Var = (
    "KEKKAI_STORE, XDG_DATA_HOME",
    "The image store (rootfs.image, --image, kekkai image): $KEKKAI_STORE if set, else \
     /var/lib/kekkai for root and $XDG_DATA_HOME/kekkai (~/.local/share/kekkai) for others.",
);

const RUNTIME_VAR: Var = (
    "XDG_RUNTIME_DIR",
    "An unprivileged caller's named and detached sandboxes are kept in \
     $XDG_RUNTIME_DIR/kekkai; unset, or not a directory of the caller's with mode 0700, it is \
     refused. Root's are in /run/kekkai.",
);

fn environment(sub: Option<&str>) -> Vec<Var> {
    let mut v: Vec<Var> = Vec::new();
    if matches!(
        sub,
        None | Some(
            "run" | "ps" | "enter" | "stop" | "kill" | "wait" | "logs" | "stats" | "rm" | "cleanup"
        )
    ) {
        v.push(RUNTIME_VAR);
    }
    match sub {
        None | Some("run") => {
            v.extend(POLICY_VARS);
            v.extend(SYSTEMD_VARS);
            v.push(TRACE_VAR);
            v.push(STORE_VAR);
        }
        Some("audit" | "learn") => {
            v.extend(POLICY_VARS);
            v.push(TRACE_VAR);
            v.push(STORE_VAR);
        }
        Some("image") => {
            v.push(STORE_VAR);
            v.push((
                "KEKKAI_REGISTRY_PASSWORD",
                "The password for pull --user USER (never on the command line).",
            ));
        }
        Some("explain" | "export") => {
            v.extend(POLICY_VARS);
            v.push(STORE_VAR);
        }
        Some("check" | "policies") => v.extend(POLICY_VARS),
        Some(_) => {}
    }
    v
}

/// A file or directory and what kekkai does with it.
type File = (&'static str, &'static str);

const POLICY_FILES: [File; 4] = [
    (
        "./.kekkai/NAME.yaml",
        "The first place -p NAME looks: a project's own policies.",
    ),
    (
        "~/.config/kekkai/policies/NAME.yaml",
        "The caller's policies ($XDG_CONFIG_HOME/kekkai/policies when that is set).",
    ),
    (
        "/etc/kekkai/policies/NAME.yaml",
        "The system's policies. A file found by name in any of these directories is used only \
         when it and its directory are owned by the caller or root and writable by nobody \
         else; otherwise it is passed over with a warning.",
    ),
    (
        "(shipped)",
        "default, untrusted, build, service, python, node and network-client are built into \
         kekkai and found last; kekkai policies lists what -p NAME finds, and where.",
    ),
];

const CGROUP_FILE: File = (
    "/sys/fs/cgroup/.../kekkai-*",
    "Each sandbox's cgroup, created below kekkai's own cgroup and removed when the sandbox \
     ends; kekkai cleanup removes those a killed supervisor left behind.",
);

const STORE_FILES: [File; 2] = [
    (
        "/var/lib/kekkai",
        "root's image store (mode 0700): layers/ (unpacked layers by diff_id), images/ (configs \
         and records by image id), names/, tmp/ (staging).",
    ),
    (
        "~/.local/share/kekkai",
        "An unprivileged caller's image store ($XDG_DATA_HOME/kekkai when that is set).",
    ),
];

const STATE_FILE: File = (
    "/run/kekkai/NAME, $XDG_RUNTIME_DIR/kekkai/NAME",
    "A named or detached sandbox's state (root's, then an unprivileged user's; mode 0700, \
     owned by the caller, refused otherwise): state.json (its record), plan.json (what enter \
     applies), log and log.1 (a detached sandbox's output, rotated at 1 MiB).",
);

fn files(sub: Option<&str>) -> Vec<File> {
    let mut v: Vec<File> = Vec::new();
    match sub {
        None | Some("run") => {
            v.extend(POLICY_FILES);
            v.push(CGROUP_FILE);
            v.extend(STORE_FILES);
            v.push(STATE_FILE);
        }
        Some("audit" | "learn") => {
            v.extend(POLICY_FILES);
            v.push(CGROUP_FILE);
            v.extend(STORE_FILES);
        }
        Some("image") => v.extend(STORE_FILES),
        Some("ps" | "enter" | "stop" | "kill" | "wait" | "logs" | "stats" | "rm") => {
            v.push(STATE_FILE)
        }
        Some("check" | "explain" | "export" | "policies") => v.extend(POLICY_FILES),
        Some("cleanup") => {
            v.push(CGROUP_FILE);
            v.push(STATE_FILE);
        }
        Some(_) => {}
    }
    v
}

/// EXIT STATUS, ENVIRONMENT, FILES and SEE ALSO for `sub`.
fn sections(sub: Option<&str>, cli: &clap::Command) -> String {
    let mut r = Roff::new();
    let list = |r: &mut Roff, title: &str, items: &[(&str, &str)]| {
        if items.is_empty() {
            return;
        }
        r.control("SH", [title]);
        for (term, text) in items {
            r.control("TP", []);
            r.text([bold(*term)]);
            r.text([roman(*text)]);
        }
    };
    if sub.is_none() {
        r.control("SH", ["EXIT STATUS"]);
        r.text([
            roman("Those of "),
            bold("kekkai run"),
            roman(", below; each command's page lists its own."),
        ]);
        for (term, text) in exit_statuses(sub) {
            r.control("TP", []);
            r.text([bold(term)]);
            r.text([roman(text)]);
        }
    } else {
        list(&mut r, "EXIT STATUS", &exit_statuses(sub));
    }
    list(&mut r, "ENVIRONMENT", &environment(sub));
    list(&mut r, "FILES", &files(sub));
    if matches!(sub, None | Some("run")) {
        r.control("SH", ["EXAMPLES"]);
        for (cmd, what) in [
            (
                "kekkai run -- sh -c 'id; touch /x'",
                "A shell in the embedded default policy: nobody, no network, the host's tree \
                 read-only.",
            ),
            (
                "kekkai run -p untrusted --ro-bind ./data:/data python3 x.py",
                "A stricter shipped policy, with one more directory bound read-only.",
            ),
            (
                "kekkai run --ro-bind /data -- /usr/bin/env",
                "A bind without a destination directly before an absolute program path needs \
                 -- (bubblewrap's --ro-bind SRC DST would read the program as the \
                 destination).",
            ),
        ] {
            r.control("TP", []);
            r.text([bold(cmd)]);
            r.text([roman(what)]);
        }
    }
    r.control("SH", ["SEE ALSO"]);
    let mut refs: Vec<String> = std::iter::once("kekkai".to_owned())
        .chain(subcommands(cli).iter().map(|s| format!("kekkai-{s}")))
        .filter(|n| sub.map_or(n != "kekkai", |s| *n != format!("kekkai-{s}")))
        .map(|n| format!("{n}(1)"))
        .collect();
    refs.extend(
        [
            "bwrap(1)",
            "systemd.exec(5)",
            "namespaces(7)",
            "cgroups(7)",
            "capabilities(7)",
            "landlock(7)",
            "seccomp(2)",
        ]
        .map(String::from),
    );
    r.text([roman(refs.join(", "))]);
    r.text([
        roman("The policy language: "),
        italic("docs/policy.md"),
        roman(" in kekkai's source; "),
        bold("kekkai schema"),
        roman(" prints its JSON Schema."),
    ]);
    r.to_roff()
}
