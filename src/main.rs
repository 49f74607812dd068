//! The `kekkai` command line: run, check, explain, schema. One error reporter, documented exit
//! codes (see `kekkai::error::exit`).

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use kekkai::caller::Caller;
use kekkai::cli_overrides::Override;
use kekkai::error::{Error, exit};
use kekkai::log;
use kekkai::plan::{self, Plan};
use kekkai::policy::{self, LoadedPolicy, PolicySource};

/// A policy-driven secure sandbox launcher for Linux.
///
/// One YAML policy covers namespaces, cgroup limits, capabilities, seccomp and Landlock,
/// applied in a strict, documented order after pivot_root onto a read-only overlay root.
#[derive(Parser)]
#[command(name = "kekkai", version, propagate_version = true)]
struct Cli {
    /// Say more: notes on what was done differently from the policy (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Say nothing but errors (not even what a best-effort policy runs without).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
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
    /// Remove cgroups left behind by sandboxes whose supervisor was killed.
    Cleanup,
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
    /// Run escape probes inside a sandbox built from the policy; exit 1 if any escape works.
    ///
    /// Each probe tries one thing a sandboxed program should not be able to do (write the root,
    /// mount, ptrace, io_uring, reach the host's network, read the supervisor's environment...)
    /// in a way that is harmless when allowed, and is judged blocked, escaped, not applicable
    /// (the policy grants it) or error. The policy's own `audit:` expectations are checked too.
    Audit(AuditArgs),
    /// (internal) The probe battery, run inside the sandbox by `audit`.
    #[command(name = "__probe", hide = true)]
    Probe {
        /// `battery`.
        what: String,
        /// The probe context (JSON).
        ctx: String,
        /// Only this category.
        only: Option<String>,
    },
}

#[derive(clap::Args)]
struct AuditArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Only the probes of this category (fs, proc, sys, dev, process, caps, identity, kernel,
    /// ns, seccomp, net, terminal, resources, leak, launcher, expect).
    #[arg(long, value_name = "CATEGORY")]
    only: Option<String>,
    /// Run the probes that are safe to run unsandboxed, without a sandbox, to show each can
    /// succeed (a broken probe must never look like a pass).
    #[arg(long)]
    control: bool,
}

/// Where the policy comes from, and command-line overrides on top of it.
#[derive(clap::Args)]
struct PolicyArgs {
    /// Policy file, or the name of a shipped policy (default, untrusted, build, service).
    #[arg(short = 'p', long = "policy", value_name = "FILE|NAME")]
    policy: Option<String>,
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
    #[arg(long = "setenv", value_name = "NAME=VALUE", value_parser = kekkai::cli_overrides::setenv_value)]
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
    /// Network: `none` (own namespace, loopback only) or `host`.
    #[arg(long = "net", value_name = "none|host", value_parser = kekkai::cli_overrides::net_value)]
    net: Option<String>,
    /// Give the program its own pseudo-terminal in place of each terminal among stdin, stdout
    /// and stderr, in a new session (the default).
    #[arg(long = "pty", overrides_with = "no_pty")]
    pty: bool,
    /// Let the program use the caller's terminal directly, in the caller's session.
    #[arg(long = "no-pty")]
    no_pty: bool,
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// Write a JSON record of what was enforced and how the run ended to FILE (`-`: stderr).
    #[arg(long, value_name = "FILE")]
    report: Option<String>,
    /// The program and its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Policy files to check.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
}

#[derive(clap::Args)]
struct ExplainArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ExportArgs {
    /// What to export to.
    #[arg(value_enum)]
    format: ExportFormat,
    #[command(flatten)]
    policy: PolicyArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    /// A systemd unit drop-in (`[Service]` section).
    Systemd,
}

fn main() -> ExitCode {
    // The Rust runtime ignores SIGPIPE, and that disposition would pass on to every program
    // kekkai starts (`kekkai run -- yes | head -1` would never end). Restore the default:
    // writing to a closed pipe ends the writer, as Unix tools expect.
    if let Err(e) = kekkai::sys::set_default_handler(nix::sys::signal::Signal::SIGPIPE) {
        log::error(&format!("sigaction(SIGPIPE, SIG_DFL): {e}"));
        return ExitCode::from(u8::try_from(exit::LAUNCH).unwrap_or(1));
    }
    let argv: Vec<OsString> = std::env::args_os().collect();
    let matches = parse(&argv);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let sub = matches.subcommand().map(|(_, m)| m);
    let verbosity = if cli.quiet {
        -1
    } else {
        i8::try_from(cli.verbose).unwrap_or(i8::MAX)
    };
    let code = match cli.cmd {
        Cmd::Run(args) => report(run(&args, sub, verbosity), exit::LAUNCH),
        Cmd::Check(args) => check(&args),
        Cmd::Explain(args) => report(explain(&args, sub), exit::INVALID),
        Cmd::Export(args) => report(export(&args, sub), exit::INVALID),
        Cmd::Schema => {
            println!("{:#}", kekkai::schema::policy_schema());
            0
        }
        Cmd::Cleanup => cleanup(),
        Cmd::Policies => {
            for (name, place, desc) in kekkai::policy::available() {
                println!("{name:<16} {place}");
                if !desc.is_empty() {
                    println!("{:<16} {desc}", "");
                }
            }
            0
        }
        Cmd::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "kekkai", &mut out);
            use std::io::Write;
            match std::io::stdout().write_all(&out) {
                Ok(()) => 0,
                Err(e) => report(Err(Error::io("writing the completions", e)), 1),
            }
        }
        Cmd::Man { command, out } => report(man(command.as_deref(), out.as_deref()), 1),
        Cmd::Audit(args) => report(audit(&args, sub), exit::LAUNCH),
        Cmd::Probe { what, ctx, only } => match what.as_str() {
            "battery" => kekkai::audit::battery::battery(&ctx, only.as_deref()),
            _ => exit::USAGE,
        },
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Parses the command line; a usage error exits 2. Beyond clap's checks: an unknown option that
/// users of bubblewrap (or podman) type is answered with kekkai's spelling, and bubblewrap's
/// two-word bind (`--ro-bind SRC DST`) directly before the command is refused, since kekkai
/// would read DST as the program to run.
fn parse(argv: &[OsString]) -> ArgMatches {
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
                    if let Some(hint) = kekkai::cli_overrides::foreign_option(word) {
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
                kekkai::cli_overrides::bind_without_destination(before, None).or_else(|| {
                    two_before.and_then(|flag| {
                        kekkai::cli_overrides::bind_without_destination(flag, Some(before))
                    })
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
    }
    matches
}

/// The one error reporter: prints the error and returns the exit code for it.
fn report(result: Result<i32, Error>, failure: i32) -> i32 {
    match result {
        Ok(code) => code,
        Err(Error::Policy(diags)) => {
            for d in &diags.0 {
                log::emit(log::Level::Error, &d.to_string());
            }
            log::error(&format!(
                "the policy is invalid ({} error{})",
                diags.0.len(),
                if diags.0.len() == 1 { "" } else { "s" }
            ));
            failure
        }
        Err(Error::Usage(msg)) => {
            log::error(&msg);
            exit::USAGE
        }
        Err(e) => {
            log::error(&e.to_string());
            failure
        }
    }
}

fn caller() -> Result<Caller, Error> {
    Caller::current().map_err(|e| Error::io("reading the working directory", e))
}

/// The overrides in the order they were given on the command line.
fn overrides(args: &PolicyArgs, m: Option<&ArgMatches>) -> Vec<Override> {
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
    add("net", args.net.as_slice(), Override::Net);
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
fn policy_source(args: &PolicyArgs) -> Result<PolicySource, Error> {
    match &args.policy {
        Some(p) => Ok(PolicySource::from_arg(p).map_err(policy::Diagnostics::from)?),
        None => Ok(PolicySource::Shipped("default")),
    }
}

/// Loads the policy, applies the overrides and compiles the plan.
fn load_and_compile(
    source: &PolicySource,
    args: &PolicyArgs,
    m: Option<&ArgMatches>,
    caller: &Caller,
) -> Result<(LoadedPolicy, Plan), Error> {
    let mut loaded = policy::load(source, caller)?;
    kekkai::cli_overrides::apply(&mut loaded, &overrides(args, m), &caller.pwd)?;
    let plan = plan::compile(&loaded, caller)?;
    Ok((loaded, plan))
}

fn run(args: &RunArgs, m: Option<&ArgMatches>, verbosity: i8) -> Result<i32, Error> {
    let caller = caller()?;
    let mut opts = kekkai::launch::Options::from_env();
    opts.quiet = verbosity < 0;
    opts.enter(kekkai::plan::steps::Step::Plan);
    let source = policy_source(&args.policy)?;
    let (_loaded, plan) = load_and_compile(&source, &args.policy, m, &caller)?;
    // Opened before the program starts: it may write where the report goes (a writable working
    // directory) and must not choose, with a symbolic link planted there, what kekkai writes.
    let report_file = match args.report.as_deref() {
        None | Some("-") => None,
        Some(dest) => Some(
            kekkai::hostfs::create_for_writing(std::path::Path::new(dest), caller.euid)
                .map_err(|why| Error::Host(format!("--report {dest}: {why}")))?,
        ),
    };
    if verbosity >= 0 && !plan.protected.is_empty() {
        log::warn(&format!(
            "the policy's hiding holds over {}",
            plan.protected.join("; ")
        ));
    }
    let outcome = kekkai::launch::run(&plan, &args.command, &opts)?;
    if let Some(dest) = &args.report {
        let report = kekkai::launch::report::RunReport::new(&plan, &outcome);
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        match report_file {
            None => eprintln!("{text}"),
            Some(mut file) => {
                use std::io::Write;
                let written = file
                    .set_len(0)
                    .and_then(|()| file.write_all(format!("{text}\n").as_bytes()));
                if let Err(e) = written {
                    log::error(&format!(
                        "--report {dest}: {}",
                        kekkai::policy::describe_io(&e)
                    ));
                }
            }
        }
    }
    if let Some(e) = &outcome.setup_error {
        return Err(Error::Launch(e.clone()));
    }
    if let Some((program, errno)) = &outcome.exec_error {
        if verbosity >= 0 {
            let e = nix::errno::Errno::from_raw(*errno);
            log::error(&format!("{program}: {} ({e:?})", e.desc().to_lowercase()));
        }
    }
    // What a best-effort policy ran without was said as the program started (unless -q);
    // the notes on what was done differently, without weakening anything, need -v.
    if verbosity >= 1 {
        if let Some(enforced) = &outcome.enforced {
            for note in &enforced.notes {
                log::notice(&format!("note: {note}"));
            }
        }
    }
    if verbosity >= 0 {
        for l in &outcome.cgroup.leftovers {
            log::warn(&format!("cleanup: {l} (kekkai cleanup removes it later)"));
        }
    }
    // A limit that ended the run is said plainly.
    let stats = &outcome.cgroup.stats;
    if verbosity < 0 {
        return Ok(outcome.exit_code);
    }
    if stats.oom_kills > 0 {
        let limit = plan
            .limits
            .memory
            .map(kekkai::explain::size)
            .unwrap_or_else(|| "?".into());
        log::error(&format!("killed: out of memory (limit {limit})"));
    }
    if stats.pids_limit_hits > 0 {
        log::warn(&format!(
            "{} fork/clone call(s) failed at the pids limit ({})",
            stats.pids_limit_hits,
            plan.limits.pids.unwrap_or_default()
        ));
    }
    if outcome.timed_out {
        log::error(&format!(
            "timed out after {:?}",
            plan.timeout.unwrap_or_default()
        ));
    }
    Ok(outcome.exit_code)
}

fn audit(args: &AuditArgs, m: Option<&ArgMatches>) -> Result<i32, Error> {
    use kekkai::audit;
    use kekkai::launch::cgroup;
    let caller = caller()?;
    let source = policy_source(&args.policy)?;
    let (_loaded, plan) = load_and_compile(&source, &args.policy, m, &caller)?;
    // Where the run will put each cgroup controller. On cgroup v2 the `kekkai run` this audit
    // starts would find the audit beside it in a cgroup that must hold no processes: step aside
    // first, as that run would (best effort: the run reports its own failure).
    let layout = cgroup::detect(&plan.limits, &cgroup::Hierarchies::read());
    let _ = cgroup::make_room(&layout);
    let mut ctx = audit::host::context(&plan, &layout);
    ctx.expectations = plan.audit.clone();
    ctx.control = args.control;
    let fixtures = audit::host::fixtures(&mut ctx);
    let secret = ctx.secret.clone().unwrap_or_default();
    let exe =
        std::env::current_exe().map_err(|e| Error::io("finding kekkai's own executable", e))?;
    let copy = if args.control {
        None
    } else {
        Some(
            audit::host::ProbeCopy::new()
                .map_err(|e| Error::io("copying kekkai for the probe", e))?,
        )
    };
    let command = |ctx: &audit::Ctx, only: Option<&str>, report: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new(&exe);
        match &copy {
            None => {
                cmd.arg("__probe")
                    .arg("battery")
                    .arg(serde_json::to_string(ctx).unwrap_or_default());
                cmd.args(only);
            }
            Some(copy) => {
                // Quiet: what the run has to say about itself comes back through its report
                // and goes into the table; its errors (the sandbox did not start) are still
                // printed.
                cmd.args(["-q", "run"]);
                if let Some(path) = report {
                    cmd.arg("--report").arg(path);
                }
                match (&source, &args.policy.policy) {
                    // The sandbox runs the file judged here, not the result of a second lookup.
                    (PolicySource::Found(found), _) => {
                        cmd.arg("-p").arg(found.reopen_path());
                    }
                    (_, Some(p)) => {
                        cmd.args(["-p", p]);
                    }
                    (_, None) => {}
                }
                for o in overrides(&args.policy, m) {
                    let flag = o.flag();
                    match flag.split_once(' ') {
                        Some((name, value)) => cmd.args([name, value]),
                        None => cmd.arg(&flag),
                    };
                }
                cmd.arg("--ro-bind").arg(format!(
                    "{}:{}",
                    copy.path().display(),
                    audit::PROBE_PATH
                ));
                if let Some(secret) = fixtures.secret_file() {
                    cmd.arg("--ro-bind").arg(format!(
                        "{}:{}",
                        secret.display(),
                        audit::SECRET_PATH
                    ));
                }
                cmd.arg("--").args(audit::host::battery_command(ctx, only));
            }
        }
        cmd.env("KEKKAI_AUDIT_SECRET", &secret);
        cmd
    };
    // The battery runs with a terminal of the audit's own as the controlling terminal: once
    // with stdin /dev/null, and its terminal probes once more with that terminal on stdin.
    // stdout carries the verdicts; stderr is the user's only when the sandbox did not start,
    // else it belongs to the report.
    let run = |ctx: &mut audit::Ctx,
               only: Option<&str>,
               stdin_tty: bool,
               report: Option<&std::path::Path>| {
        let tty = audit::terminal::CallerTty::open(ctx)
            .map_err(|e| Error::io("opening a terminal for the audit", e))?;
        tty.run(command(ctx, only, report), stdin_tty)
            .map_err(|e| Error::io("starting the sandbox", e))
    };
    let run_report = copy.as_ref().map(|c| c.run_report());
    let out = run(&mut ctx, args.only.as_deref(), false, run_report.as_deref())?;
    let status = out.status.code().unwrap_or(128);
    if status == exit::LAUNCH && out.stdout.is_empty() {
        use std::io::Write;
        let _ = std::io::stderr().write_all(&out.stderr);
        log::error("audit: the sandbox did not start (see above); no probe ran");
        return Ok(exit::LAUNCH);
    }
    let run_json = run_report
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let tty_run = if args
        .only
        .as_deref()
        .is_none_or(|c| c == audit::probes::TERMINAL)
    {
        let o = run(&mut ctx, Some(audit::probes::TERMINAL), true, None)?;
        let status = o.status.code().unwrap_or(128);
        if status == exit::LAUNCH && o.stdout.is_empty() {
            // Its probes are errors in the table; why the sandbox did not start is said here.
            use std::io::Write;
            let _ = std::io::stderr().write_all(&o.stderr);
            log::error("audit: the sandbox with a terminal on stdin did not start (see above)");
        }
        Some((status, o.stdout))
    } else {
        None
    };
    let mut report = audit::report::judge(
        &plan.name,
        &plan.policy_hash,
        args.control,
        &String::from_utf8_lossy(&out.stdout),
        args.only.as_deref(),
        &ctx,
    );
    report.notes = audit::report::run_notes(&plan, run_json.as_ref(), &out.stderr);
    if let Some((_, out)) = &tty_run {
        audit::report::add_stdin_tty_run(&mut report, &String::from_utf8_lossy(out), args.control);
    }
    let status = match tty_run {
        Some((s, _)) if status == 0 => s,
        _ => status,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", report.table());
    }
    if status != 0 {
        log::error(&format!("the probe battery ended with status {status}"));
        return Ok(1);
    }
    if args.control {
        // A control run shows what the probes can do; it passes when they all ran.
        return Ok(if report.summary.errors == 0 { 0 } else { 1 });
    }
    Ok(if report.passed() { 0 } else { 1 })
}

fn man(command: Option<&str>, out: Option<&std::path::Path>) -> Result<i32, Error> {
    use kekkai::man;
    use std::io::Write;
    let cli = Cli::command();
    let known = man::subcommands(&cli);
    if let Some(c) = command.filter(|c| !known.iter().any(|k| k == c)) {
        return Err(Error::Usage(format!(
            "man: no page for `{c}`; pages: {}",
            known.join(", ")
        )));
    }
    let pages: Vec<man::Page> = match command {
        Some(c) => man::page(&cli, Some(c)).into_iter().collect(),
        None if out.is_some() => man::pages(&cli),
        None => man::page(&cli, None).into_iter().collect(),
    };
    match out {
        Some(dir) => {
            let written = man::write_all(&pages, dir).map_err(|e| {
                Error::io(format!("writing the manual pages to {}", dir.display()), e)
            })?;
            for p in written {
                println!("{}", p.display());
            }
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            for p in &pages {
                stdout
                    .write_all(&p.roff)
                    .map_err(|e| Error::io("writing the manual page", e))?;
            }
        }
    }
    Ok(0)
}

fn cleanup() -> i32 {
    let h = kekkai::launch::cgroup::Hierarchies::read();
    let mut dirs: Vec<std::path::PathBuf> = h.own_v2().into_iter().collect();
    for (ctrls, _) in &h.v1_mounts {
        if let Some(first) = ctrls.first() {
            if let Some((_, own)) = h.own_v1(first) {
                dirs.push(own);
            }
        }
    }
    let mut n = 0;
    for d in dirs {
        for removed in kekkai::launch::cgroup::remove_stale(&d) {
            println!("removed {}", removed.display());
            n += 1;
        }
    }
    if n == 0 {
        println!("nothing to clean up");
    }
    0
}

fn explain(args: &ExplainArgs, m: Option<&ArgMatches>) -> Result<i32, Error> {
    let caller = caller()?;
    let source = policy_source(&args.policy)?;
    let (loaded, plan) = load_and_compile(&source, &args.policy, m, &caller)?;
    if args.json {
        println!("{:#}", kekkai::explain::json(&loaded, &plan));
    } else {
        print!("{}", kekkai::explain::human(&loaded, &plan));
    }
    Ok(0)
}

fn export(args: &ExportArgs, m: Option<&ArgMatches>) -> Result<i32, Error> {
    let caller = caller()?;
    let source = policy_source(&args.policy)?;
    let (_, plan) = load_and_compile(&source, &args.policy, m, &caller)?;
    match args.format {
        ExportFormat::Systemd => print!("{}", kekkai::export::systemd(&plan)),
    }
    Ok(0)
}

fn check(args: &CheckArgs) -> i32 {
    let caller = match caller() {
        Ok(c) => c,
        Err(e) => return report(Err(e), exit::INVALID),
    };
    let mut failed = 0;
    for file in &args.files {
        let result = PolicySource::from_arg(file)
            .map_err(policy::Diagnostics::from)
            .and_then(|source| policy::load(&source, &caller))
            .and_then(|loaded| plan::compile(&loaded, &caller).map(|p| (loaded, p)));
        match result {
            Ok((_, plan)) => println!("ok: {} ({})", file, plan.name),
            Err(diags) => {
                failed += 1;
                for d in &diags.0 {
                    eprintln!("{d}");
                }
            }
        }
    }
    if failed > 0 {
        eprintln!(
            "kekkai: {failed} of {} polic{} invalid",
            args.files.len(),
            if args.files.len() == 1 {
                "y is"
            } else {
                "ies are"
            }
        );
        exit::INVALID
    } else {
        0
    }
}
