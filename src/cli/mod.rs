//! The command line's definitions: [`Cli`], its commands and their arguments, from which clap
//! parses, `--help`, the manual pages (`kekkai man`) and the completions are all derived; the
//! checks clap can't make ([`parse`], [`flags`]); the plain `run` line read without clap
//! ([`fast`]); and what the commands that take a policy share:
//! where `-p` points, the overrides in the order typed, load and compile. One file per command.

pub(crate) mod audit;
pub(crate) mod check;
pub(crate) mod cleanup;
pub(crate) mod completions;
mod detach;
pub(crate) mod engine;
pub(crate) mod explain;
pub(crate) mod export;
pub(crate) mod fast;
mod flags;
mod handoff;
pub(crate) mod image;
pub(crate) mod learn;
pub(crate) mod man;
pub(crate) mod policies;
pub(crate) mod run;
pub(crate) mod schema;

use std::ffi::OsString;

use clap::{ArgMatches, CommandFactory, Parser, Subcommand};

use kekkai::caller::Caller;
use kekkai::error::Error;
use kekkai::plan::{self, Plan};
use kekkai::policy::overrides::{self, Override};
use kekkai::policy::{self, LoadedPolicy, PolicySource};

/// A policy-driven secure sandbox launcher for Linux.
///
/// One YAML policy covers namespaces, cgroup limits, capabilities, seccomp and Landlock,
/// applied in a strict, documented order after pivot_root onto a read-only overlay root.
#[derive(Parser)]
#[command(name = "kekkai", version, propagate_version = true)]
pub(crate) struct Cli {
    /// Say more: notes on what was done differently from the policy (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Say nothing but errors (not even what a best-effort policy runs without).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Run a program in a sandbox (the embedded default policy unless -p is given).
    ///
    /// The first word that is not an option starts the command, and every word after it
    /// belongs to the program (`kekkai run ls -l`); `--` before the command is needed only when
    /// the program's name starts with `-`, and after a bind without a destination
    /// (`--ro-bind /data -- /usr/bin/env`, which bubblewrap's two-word `--ro-bind SRC DST`
    /// would otherwise be mistaken for). An unknown option before the command is a usage error.
    ///
    /// The program's exit status passes through; killed by signal N gives 128+N; 124 the
    /// policy's timeout fired; 125 kekkai failed before the program started; 126 the program
    /// can't be executed; 127 it was not found; 2 the command line is wrong.
    #[command(override_usage = "kekkai run [OPTIONS] [--] COMMAND [ARGS]...")]
    Run(RunArgs),
    /// Check policy files: exit 0 when all are valid, 1 otherwise.
    Check(CheckArgs),
    /// Show the merged policy and the numbered launch steps it compiles to.
    Explain(ExplainArgs),
    /// Print the JSON Schema of the policy language (for editors).
    Schema,
    /// Translate a policy for another enforcer: `systemd` prints a `[Service]` drop-in with
    /// the hardening directives systemd can express, and comments for the rest.
    Export(ExportArgs),
    /// Learn a policy: run the program once under BASE, watching every system call, path and
    /// port it uses, and write the smallest policy that lets it do that (`extends: BASE`);
    /// then run it again under that policy to prove it works.
    ///
    /// The learning run enforces all of BASE: kekkai watches through a seccomp listener
    /// added on top of BASE's filters, so the program can do nothing it could not do under
    /// BASE, and the learned policy never allows more than BASE. Each rule of the output names
    /// the first call that needed it. `--merge OLD.yaml` folds an earlier learned policy in
    /// (several inputs, a test suite); `--duration` stops a service after a while (or stop it
    /// with Ctrl-C or SIGTERM). The rules are in docs/learn.md.
    #[command(
        override_usage = "kekkai learn [-p BASE] [-o OUT.yaml] [--merge OLD.yaml] [--duration D] [--] COMMAND [ARGS]..."
    )]
    Learn(LearnArgs),
    /// Remove what sandboxes whose supervisor was killed left behind: their cgroups, and
    /// their entries in the state directory.
    Cleanup,
    /// List the named and detached sandboxes: name, pid, policy, status, uptime, memory,
    /// processes and command (running ones; -a: all).
    Ps(PsArgs),
    /// Run a command in a running sandbox (a shell by default), locked down exactly as the
    /// sandbox's program: its namespaces, its cgroup, its identity, bounding set,
    /// no_new_privs, Landlock rules and seccomp filters, in the same order.
    ///
    /// Only the caller's own sandboxes can be entered (root's are in /run/kekkai, a user's in
    /// $XDG_RUNTIME_DIR/kekkai). The exit status is the command's, as for `run`.
    #[command(override_usage = "kekkai enter [OPTIONS] NAME [--] [COMMAND [ARGS]...]")]
    Enter(EnterArgs),
    /// Stop a sandbox: SIGTERM to its program, then, after the grace time, SIGKILL to every
    /// process of it. Its exit status is recorded.
    Stop(StopArgs),
    /// Send a signal to a sandbox's program (SIGKILL ends the whole sandbox).
    Kill(KillArgs),
    /// Wait until a sandbox ends; print its exit status and exit with it.
    Wait(NameArg),
    /// Print what a detached sandbox's program wrote (stdout and stderr).
    Logs(LogsArgs),
    /// Show what sandboxes use: memory (current and peak), processes, CPU time.
    Stats(StatsArgs),
    /// Remove the record of sandboxes that have ended (-f: stop running ones first).
    Rm(RmArgs),
    /// List the policies `-p NAME` finds, and where (./.kekkai/, ~/.config/kekkai/policies,
    /// /etc/kekkai/policies, then the shipped ones).
    Policies,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print a manual page (roff), or write them all for installation.
    ///
    /// `kekkai man` is kekkai(1); `kekkai man run` is kekkai-run(1), and so on for every
    /// command. `--out DIR` writes kekkai.1 and every kekkai-COMMAND.1 into DIR (for example
    /// /usr/local/share/man/man1) instead. The pages are generated from the same definitions
    /// that read the command line, with the exit statuses, environment and files of each.
    Man {
        /// The command whose page to print (run, check, explain, audit, ...).
        #[arg(value_name = "COMMAND")]
        command: Option<String>,
        /// Write the pages into this directory (it must exist) instead of printing one.
        #[arg(long, value_name = "DIR")]
        out: Option<std::path::PathBuf>,
    },
    /// Run escape probes inside a sandbox (built from the policy, or another launcher's with
    /// --wrap); exit 1 if any escape works.
    ///
    /// Each probe tries one thing a sandboxed program should not be able to do (write the root,
    /// mount, ptrace, io_uring, reach the host's network, read the supervisor's environment...)
    /// in a way that is harmless when allowed, and is judged blocked, escaped, not applicable
    /// (the policy grants it, or kekkai can't judge it without the policy) or error. The
    /// policy's own `audit:` expectations are checked too. See docs/auditing.md.
    Audit(AuditArgs),
    /// Images: import an OCI layout or archive, pull from a registry, list, inspect, remove.
    ///
    /// An image's layers become the sandbox's read-only root (`--image REF`, or `rootfs: {
    /// image: REF }` in a policy); its config's Env, WorkingDir, User, Entrypoint and Cmd are
    /// defaults that the policy and the command line override. Layers are verified against
    /// their digests and unpacked once into the caller's store (root: /var/lib/kekkai; others:
    /// $XDG_DATA_HOME/kekkai; $KEKKAI_STORE names another), refusing hostile archives.
    Image(ImageArgs),
    /// (internal) Run the plan handed over by the kekkai that started this one (`audit`).
    #[command(name = "__run-plan", hide = true)]
    RunPlan(RunPlanArgs),
    /// (internal) The probe battery, run inside the sandbox by `audit` when no
    /// `kekkai-audit-probe` is installed beside kekkai: the same program, the same arguments.
    #[command(name = "__probe", hide = true)]
    Probe {
        /// The probe's arguments (`--context JSON`, `--only CATEGORY`, `--table`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(clap::Args)]
pub(crate) struct ImageArgs {
    /// Print JSON (on failure: `{"error": {"kind": KIND, "message": ...}}`, exit status 1).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) cmd: ImageCmd,
}

#[derive(Subcommand)]
pub(crate) enum ImageCmd {
    /// Import an OCI image layout (a directory), an OCI archive or a docker archive (`skopeo
    /// copy`, `podman save`, `docker save`).
    Import {
        /// The layout directory or archive file.
        path: std::path::PathBuf,
        /// Name the image NAME[:TAG] (instead of the names the archive gives).
        #[arg(long, value_name = "NAME[:TAG]")]
        name: Option<String>,
        #[command(flatten)]
        opts: ImportOpts,
    },
    /// Pull an image from a registry (OCI distribution API, token authentication).
    #[cfg(feature = "pull")]
    Pull {
        /// The image: [REGISTRY/]NAME[:TAG|@DIGEST] (docker.io when no registry is named).
        #[arg(value_name = "REF")]
        reference: String,
        /// Name the image NAME[:TAG] (instead of REF).
        #[arg(long, value_name = "NAME[:TAG]")]
        name: Option<String>,
        /// Plain HTTP: only for a registry on a loopback address (127.0.0.0/8, ::1, localhost).
        #[arg(long)]
        insecure: bool,
        /// Log in to the registry's token service as USER (the password is read from
        /// KEKKAI_REGISTRY_PASSWORD).
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        #[command(flatten)]
        opts: ImportOpts,
    },
    /// List the images in the store.
    Ls,
    /// Show an image's id, names, layers (and where they are unpacked) and config defaults.
    Inspect {
        /// NAME[:TAG], or an id (sha256:..., at least 12 hex digits).
        #[arg(value_name = "REF")]
        reference: String,
    },
    /// Remove images and the layers no other image uses: a name of an image that has others
    /// goes alone; an id, or an image's last name, removes the image (refused while a running
    /// sandbox uses it).
    Rm {
        /// NAME[:TAG] or id.
        #[arg(value_name = "REF", required = true)]
        references: Vec<String>,
    },
    /// Remove unnamed images no sandbox uses, layers no image uses, and leftovers of
    /// interrupted imports.
    Prune,
}

/// How an import treats what it unpacks.
#[derive(clap::Args)]
pub(crate) struct ImportOpts {
    /// Which image of a layout or archive that holds several (its tag or reference).
    #[arg(long = "ref", value_name = "REF")]
    pub(crate) select: Option<String>,
    /// In an unprivileged store: drop setuid and setgid bits instead of refusing the image.
    #[arg(long)]
    pub(crate) strip_setuid: bool,
    /// Refuse an image larger than this uncompressed (default 16G): decompression bombs.
    #[arg(long, value_name = "SIZE")]
    pub(crate) max_size: Option<String>,
    /// Refuse an image with more archive entries than this (default 1000000).
    #[arg(long, value_name = "N")]
    pub(crate) max_entries: Option<u64>,
}

#[derive(clap::Args)]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// Run the battery in another launcher's sandbox: its command line (split as a shell
    /// splits words, never run through one), `{probe}` standing for the probe's path, else the
    /// probe's path appended as the command. E.g. `--wrap 'bwrap --unshare-all --ro-bind / /
    /// --proc /proc --dev /dev'`. Repeat it with --compare.
    #[arg(long, value_name = "COMMAND")]
    wrap: Vec<String>,
    /// The probe program to run inside (default: kekkai-audit-probe beside kekkai, else kekkai
    /// itself). A static one (scripts/build-audit-probe) runs in any image.
    #[arg(long, value_name = "FILE")]
    probe: Option<std::path::PathBuf>,
    /// Output: table, json, junit (one test case per probe), sarif (2.1.0) or tap (13).
    #[arg(long, value_enum, default_value = "table")]
    format: FormatArg,
    /// The same as --format json.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Only the probes of this category (fs, proc, sys, dev, process, caps, identity, kernel,
    /// ns, seccomp, net, terminal, resources, leak, launcher, expect).
    #[arg(long, value_name = "CATEGORY")]
    only: Option<String>,
    /// Run the probes that are safe to run unsandboxed, without a sandbox, to show each can
    /// succeed (a broken probe must never look like a pass).
    #[arg(long, conflicts_with_all = ["wrap", "compare"])]
    control: bool,
    /// Save the verdicts to FILE, for a later --baseline (a symbolic link is not followed).
    #[arg(long, value_name = "FILE")]
    save_baseline: Option<std::path::PathBuf>,
    /// Compare with a saved baseline: exit 1 only when a probe that was blocked escapes now (or
    /// a probe that was judged no longer reports); print the difference on stderr.
    #[arg(long, value_name = "FILE")]
    baseline: Option<std::path::PathBuf>,
    /// Audit several sandboxes and print one matrix (probes x sandboxes): the POLICY names or
    /// files given here, -p's, and every --wrap.
    #[arg(long, value_name = "POLICY", num_args = 0..)]
    compare: Option<Vec<String>>,
}

/// `audit --format`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum FormatArg {
    Table,
    Json,
    Junit,
    Sarif,
    Tap,
}

/// Where the policy comes from, and command-line overrides on top of it.
#[derive(Clone, clap::Args)]
pub(crate) struct PolicyArgs {
    /// Policy file, or the name of a shipped policy (default, untrusted, build, service,
    /// python, node, network-client).
    #[arg(short = 'p', long = "policy", value_name = "FILE|NAME")]
    pub(crate) policy: Option<String>,
    /// Bind SRC (host) to DST (sandbox), writable. DST defaults to SRC.
    #[arg(long = "bind", value_name = "SRC:DST")]
    bind: Vec<String>,
    /// Bind SRC (host) to DST (sandbox), read-only.
    #[arg(long = "ro-bind", value_name = "SRC:DST")]
    ro_bind: Vec<String>,
    /// Mount a fresh tmpfs at DST.
    #[arg(long = "tmpfs", value_name = "DST")]
    tmpfs: Vec<String>,
    /// Set an environment variable in the sandbox.
    #[arg(long = "setenv", value_name = "NAME=VALUE", value_parser = flags::setenv_value)]
    setenv: Vec<String>,
    /// Remove an environment variable.
    #[arg(long = "unsetenv", value_name = "NAME")]
    unsetenv: Vec<String>,
    /// Working directory inside the sandbox.
    #[arg(long = "chdir", value_name = "DIR")]
    chdir: Option<String>,
    /// Host name inside the sandbox.
    #[arg(long = "hostname", value_name = "NAME")]
    hostname: Option<String>,
    /// The root is this image's layers (NAME[:TAG] or sha256:...), as `rootfs: { image: REF }`
    /// would say, in place of the policy's `rootfs.lower`.
    #[arg(long = "image", value_name = "REF")]
    image: Option<String>,
    /// Network: `none` (own namespace, loopback only), `host`, or `user` (own namespace,
    /// user-mode networking through pasta: outbound TCP and UDP, nothing of the host's).
    #[arg(long = "net", value_name = "none|host|user", value_parser = flags::net_value)]
    net: Option<String>,
    /// Publish a port of the sandbox on the host (with --net user): a connection to the host's
    /// HOSTPORT (on ADDR, default 127.0.0.1; 0.0.0.0 for every address) reaches the sandbox's PORT.
    #[arg(long = "publish", value_name = "[ADDR:]HOSTPORT:PORT[/udp]", value_parser = flags::publish_value)]
    publish: Vec<String>,
    /// Give the program its own pseudo-terminal in place of each terminal among stdin, stdout
    /// and stderr, in a new session (the default).
    #[arg(long = "pty", overrides_with = "no_pty")]
    pty: bool,
    /// Let the program use the caller's terminal directly, in the caller's session.
    #[arg(long = "no-pty")]
    no_pty: bool,
}

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// Write a JSON record of what was enforced and how the run ended to FILE (`-`: stderr).
    #[arg(long, value_name = "FILE")]
    report: Option<String>,
    /// Name the sandbox, so that `ps`, `enter`, `stop`, `wait`, `logs` and `stats` find it
    /// (letters, digits, `_`, `.`, `-`; unique among the caller's sandboxes).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Run in the background: the supervisor leaves the caller's session, the program's output
    /// goes to its log (`kekkai logs`), and the name is printed once the program has started;
    /// one that could not start exits as in the foreground (127 not found, 126 not
    /// executable, 125 a setup failure).
    #[arg(short, long)]
    detach: bool,
    /// The program and its arguments (with an image: the default is its Entrypoint and Cmd).
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

#[derive(clap::Args)]
pub(crate) struct LearnArgs {
    /// The policy to learn under, which the learned one extends (default: default).
    #[arg(short = 'p', long = "policy", value_name = "FILE|NAME")]
    policy: Option<String>,
    /// Write the learned policy here (default: standard output).
    #[arg(short = 'o', long = "output", value_name = "OUT.yaml")]
    output: Option<std::path::PathBuf>,
    /// Fold in a policy learned earlier: the result allows what either allows. Without -p,
    /// BASE is what OLD extends.
    #[arg(long, value_name = "OLD.yaml")]
    merge: Option<std::path::PathBuf>,
    /// Stop the program after this long (SIGTERM, then SIGKILL), for services that keep
    /// running; no timeout is learned then.
    #[arg(long, value_name = "DURATION")]
    duration: Option<String>,
    /// Don't run the program again under the learned policy.
    #[arg(long)]
    no_proof: bool,
    /// The program and its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

#[derive(clap::Args)]
pub(crate) struct PsArgs {
    /// Also the sandboxes that have ended.
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args)]
pub(crate) struct EnterArgs {
    /// The sandbox.
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
    /// Give the command its own pseudo-terminal (the default when stdin, stdout or stderr is one).
    #[arg(long = "pty", overrides_with = "no_pty")]
    pub(crate) pty: bool,
    /// Let the command use the caller's terminal directly.
    #[arg(long = "no-pty")]
    pub(crate) no_pty: bool,
    /// The command and its arguments (default: /bin/sh).
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub(crate) command: Vec<OsString>,
}

#[derive(clap::Args)]
pub(crate) struct StopArgs {
    /// The sandbox.
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
    /// How long the program has to end after SIGTERM.
    #[arg(short, long, value_name = "DURATION", default_value = "10s")]
    pub(crate) time: String,
}

#[derive(clap::Args)]
pub(crate) struct KillArgs {
    /// The sandbox.
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
    /// The signal: a name (TERM, SIGTERM), a real-time one as kill(1) names it (RTMIN+3,
    /// RTMAX-1) or a number.
    #[arg(value_name = "SIGNAL", default_value = "KILL")]
    pub(crate) signal: String,
}

#[derive(clap::Args)]
pub(crate) struct NameArg {
    /// The sandbox.
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
}

#[derive(clap::Args)]
pub(crate) struct LogsArgs {
    /// The sandbox.
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
    /// Keep printing what is written, until the sandbox ends.
    #[arg(short, long)]
    pub(crate) follow: bool,
}

#[derive(clap::Args)]
pub(crate) struct StatsArgs {
    /// The sandbox (default: every running one).
    #[arg(value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Refresh every second.
    #[arg(long)]
    pub(crate) watch: bool,
}

#[derive(clap::Args)]
pub(crate) struct RmArgs {
    /// The sandboxes.
    #[arg(required = true, value_name = "NAME")]
    pub(crate) names: Vec<String>,
    /// Stop a running sandbox (SIGKILL) first.
    #[arg(short, long)]
    pub(crate) force: bool,
}

#[derive(clap::Args)]
pub(crate) struct RunPlanArgs {
    /// The descriptor holding the plan (a sealed memfd).
    #[arg(long, value_name = "FD")]
    plan_fd: i32,
    /// `kekkai audit`'s own: allow the probe battery's harness what the policy lacks of it
    /// (kekkai::audit::harness), and record it in the report.
    #[arg(long)]
    audit_harness: bool,
    /// As for `run`.
    #[arg(long, value_name = "FILE")]
    report: Option<String>,
    /// The program and its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

#[derive(clap::Args)]
pub(crate) struct CheckArgs {
    /// Policy files to check.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
}

#[derive(clap::Args)]
pub(crate) struct ExplainArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub(crate) struct ExportArgs {
    /// What to export to.
    #[arg(value_enum)]
    format: ExportFormat,
    #[command(flatten)]
    policy: PolicyArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    /// A systemd unit drop-in (`[Service]` section).
    Systemd,
}

/// Parses the command line; a usage error exits 2. Beyond clap's checks: an unknown option that
/// users of bubblewrap (or podman) type is answered with kekkai's spelling, and bubblewrap's
/// two-word bind (`--ro-bind SRC DST`) directly before the command is refused, since kekkai
/// would read DST as the program to run, and so is podman's `-v SRC:DST` (kekkai's `-v` is
/// --verbose, and the volume would be the program).
pub(crate) fn parse(argv: &[OsString]) -> ArgMatches {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let mut cli = Cli::command();
    // The subcommand, for the usage line of our own errors.
    let sub_name = argv
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default()
        .to_owned();
    let result = cli.try_get_matches_from_mut(argv);
    let fail = |cli: &mut clap::Command, msg: String| -> ! {
        let e = match cli.find_subcommand_mut(&sub_name) {
            Some(sub) => sub.error(ErrorKind::ArgumentConflict, msg),
            None => cli.error(ErrorKind::ArgumentConflict, msg),
        };
        e.exit()
    };
    let matches = match result {
        Ok(m) => m,
        Err(e) => {
            if e.kind() == ErrorKind::UnknownArgument {
                if let Some(ContextValue::String(word)) = e.get(ContextKind::InvalidArg) {
                    if let Some(hint) = flags::foreign_option(word) {
                        fail(&mut cli, format!("unknown option `{word}`: {hint}"));
                    }
                }
            }
            e.exit()
        }
    };
    if let Some(("run", sub)) = matches.subcommand() {
        let n = sub.get_raw("command").map_or(0, |v| v.len());
        // The command is the tail of argv; look at the words just before it.
        let at = argv.len().saturating_sub(n);
        let word = |i: usize| i.checked_sub(1).and_then(|i| argv.get(i)?.to_str());
        let (before, two_before) = (word(at), word(at.saturating_sub(1)));
        let found = match (two_before, before) {
            (_, Some("--") | None) => None,
            (two_before, Some(before)) => {
                flags::bind_without_destination(before, None).or_else(|| {
                    two_before.and_then(|flag| flags::bind_without_destination(flag, Some(before)))
                })
            }
        };
        let program = argv
            .get(at)
            .map(|p| p.to_string_lossy())
            .unwrap_or_default();
        // Only an absolute path reads as a destination; `--ro-bind /data python3` is clear.
        if let Some((flag, src)) = found.filter(|_| program.starts_with('/')) {
            fail(
                &mut cli,
                format!(
                    "`{flag} {src} {program}` reads as bubblewrap's `{flag} SRC DST`: kekkai \
                     spells that `{flag} {src}:{program}`; to bind {src} at the same place and \
                     run `{program}`, put `--` before the command"
                ),
            );
        }
        // podman's and docker's `-v SRC:DST`: kekkai's -v is --verbose, and the volume would
        // be the program.
        if before == Some("-v") && flags::looks_like_a_volume(&program) {
            fail(
                &mut cli,
                format!(
                    "`-v {program}` reads as podman's volume: kekkai's -v is --verbose, and \
                     spells a bind `--bind SRC:DST` (or `--ro-bind SRC:DST`); to run \
                     `{program}`, put `--` before the command"
                ),
            );
        }
    }
    matches
}

/// Who runs kekkai, and from where.
pub(crate) fn caller() -> Result<Caller, Error> {
    Caller::current().map_err(|e| Error::io("reading the working directory", e))
}

/// The overrides in the order they were given on the command line.
pub(crate) fn overrides(args: &PolicyArgs, m: Option<&ArgMatches>) -> Vec<Override> {
    let mut out: Vec<(usize, Override)> = Vec::new();
    let mut add = |id: &str, values: &[String], make: fn(String) -> Override| {
        let idx: Vec<usize> = m
            .and_then(|m| m.indices_of(id))
            .map(|i| i.collect())
            .unwrap_or_default();
        for (n, v) in values.iter().enumerate() {
            out.push((idx.get(n).copied().unwrap_or(usize::MAX), make(v.clone())));
        }
    };
    add("bind", &args.bind, Override::Bind);
    add("ro_bind", &args.ro_bind, Override::RoBind);
    add("tmpfs", &args.tmpfs, Override::Tmpfs);
    add("setenv", &args.setenv, Override::SetEnv);
    add("unsetenv", &args.unsetenv, Override::UnsetEnv);
    add("chdir", args.chdir.as_slice(), Override::Chdir);
    add("hostname", args.hostname.as_slice(), Override::Hostname);
    add("image", args.image.as_slice(), Override::Image);
    add("net", args.net.as_slice(), Override::Net);
    add("publish", &args.publish, Override::Publish);
    if args.pty {
        add("pty", &["pty".to_string()], Override::Terminal);
    }
    if args.no_pty {
        add("no_pty", &["inherit".to_string()], Override::Terminal);
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, o)| o).collect()
}

/// Where `-p` points: found (and, for a name, opened) once.
pub(crate) fn policy_source(args: &PolicyArgs) -> Result<PolicySource, Error> {
    match &args.policy {
        Some(p) => Ok(PolicySource::from_arg(p).map_err(policy::Diagnostics::from)?),
        None => Ok(PolicySource::Shipped("default")),
    }
}

/// Loads the policy, applies the overrides and compiles the plan.
pub(crate) fn load_and_compile(
    source: &PolicySource,
    args: &PolicyArgs,
    m: Option<&ArgMatches>,
    caller: &Caller,
) -> Result<(LoadedPolicy, Plan), Error> {
    let mut loaded = policy::load(source, caller)?;
    overrides::apply(&mut loaded, &overrides(args, m), &caller.pwd)?;
    let plan = plan::compile(&loaded, caller)?;
    Ok((loaded, plan))
}
