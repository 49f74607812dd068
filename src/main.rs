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
    /// Say more: what a best-effort layer dropped, notes on rlimits (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Say nothing but errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a program in a sandbox (the embedded default policy unless -p is given).
    ///
    /// The program's exit status passes through; killed by signal N gives 128+N; 124 the
    /// policy's timeout fired; 125 kekkai failed before the program started; 126 the program
    /// can't be executed; 127 it was not found.
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
    /// Print the manual page (roff), generated from the command-line definitions.
    Man,
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
    #[arg(long = "setenv", value_name = "NAME=VALUE")]
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
    #[arg(long = "net", value_name = "none|host")]
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
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "COMMAND"
    )]
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
    let matches = Cli::command().get_matches();
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
        Cmd::Man => match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
            Ok(()) => 0,
            Err(e) => report(Err(Error::io("writing the manual page", e)), 1),
        },
        Cmd::Audit(args) => report(audit(&args, sub), exit::LAUNCH),
        Cmd::Probe { what, ctx, only } => match what.as_str() {
            "battery" => kekkai::audit::battery(&ctx, only.as_deref()),
            _ => exit::USAGE,
        },
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
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

/// Loads the policy, applies the overrides and compiles the plan.
fn load_and_compile(
    args: &PolicyArgs,
    m: Option<&ArgMatches>,
    caller: &Caller,
) -> Result<(LoadedPolicy, Plan), Error> {
    let source = match &args.policy {
        Some(p) => PolicySource::from_arg(p),
        None => PolicySource::Shipped("default"),
    };
    let mut loaded = policy::load(&source, caller)?;
    kekkai::cli_overrides::apply(&mut loaded, &overrides(args, m), &caller.pwd)?;
    let plan = plan::compile(&loaded, caller)?;
    Ok((loaded, plan))
}

fn run(args: &RunArgs, m: Option<&ArgMatches>, verbosity: i8) -> Result<i32, Error> {
    let caller = caller()?;
    let mut opts = kekkai::launch::Options::from_env();
    opts.quiet = verbosity < 1;
    opts.enter(kekkai::plan::steps::Step::Plan);
    let (_loaded, plan) = load_and_compile(&args.policy, m, &caller)?;
    let outcome = kekkai::launch::run(&plan, &args.command, &opts)?;
    if let Some(dest) = &args.report {
        let report = kekkai::launch::report::RunReport::new(&plan, &outcome);
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        if dest == "-" {
            eprintln!("{text}");
        } else if let Err(e) = std::fs::write(dest, format!("{text}\n")) {
            log::error(&format!(
                "--report {dest}: {}",
                kekkai::policy::describe_io(&e)
            ));
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
    if !opts.quiet {
        let cg = &outcome.cgroup;
        if !cg.dropped.is_empty() {
            log::notice(&format!(
                "cgroup limits (best-effort) dropped: {}",
                cg.dropped.join("; ")
            ));
        }
        if let Some(enforced) = &outcome.enforced {
            if !enforced.landlock.dropped.is_empty() {
                log::notice(&format!(
                    "landlock (best-effort) dropped: {}",
                    enforced.landlock.dropped.join("; ")
                ));
            }
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
    let caller = caller()?;
    let (_loaded, plan) = load_and_compile(&args.policy, m, &caller)?;
    let mut ctx = audit::context(&plan);
    ctx.expectations = plan.audit.clone();
    ctx.control = args.control;
    let _fixtures = audit::fixtures(&mut ctx);
    let secret = ctx.secret.clone().unwrap_or_default();
    let exe =
        std::env::current_exe().map_err(|e| Error::io("finding kekkai's own executable", e))?;
    let copy = if args.control {
        None
    } else {
        Some(audit::ProbeCopy::new().map_err(|e| Error::io("copying kekkai for the probe", e))?)
    };
    let command = |ctx: &audit::Ctx, only: Option<&str>| {
        let mut cmd = std::process::Command::new(&exe);
        match &copy {
            None => {
                cmd.arg("__probe")
                    .arg("battery")
                    .arg(serde_json::to_string(ctx).unwrap_or_default());
                cmd.args(only);
            }
            Some(copy) => {
                cmd.arg("run");
                if let Some(p) = &args.policy.policy {
                    cmd.args(["-p", p]);
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
                cmd.arg("--").args(audit::battery_command(ctx, only));
            }
        }
        cmd.env("KEKKAI_AUDIT_SECRET", &secret);
        cmd
    };
    // The battery runs with a terminal of the audit's own as the controlling terminal: once
    // with stdin /dev/null, and its terminal probes once more with that terminal on stdin.
    // stdout carries the verdicts; stderr, the user's: why a sandbox did not start.
    let run = |ctx: &mut audit::Ctx, only: Option<&str>, stdin_tty: bool| {
        let tty = audit::terminal::CallerTty::open(ctx)
            .map_err(|e| Error::io("opening a terminal for the audit", e))?;
        let out = tty
            .run(command(ctx, only), stdin_tty)
            .map_err(|e| Error::io("starting the sandbox", e))?;
        use std::io::Write;
        let _ = std::io::stderr().write_all(&out.stderr);
        Ok::<_, Error>((out.status.code().unwrap_or(128), out.stdout))
    };
    let (status, stdout) = run(&mut ctx, args.only.as_deref(), false)?;
    if status == exit::LAUNCH && stdout.is_empty() {
        log::error("audit: the sandbox did not start (see above); no probe ran");
        return Ok(exit::LAUNCH);
    }
    let tty_run = if args.only.as_deref().is_none_or(|c| c == "terminal") {
        Some(run(&mut ctx, Some("terminal"), true)?)
    } else {
        None
    };
    let mut report = audit::judge(
        &plan.name,
        &plan.policy_hash,
        args.control,
        &String::from_utf8_lossy(&stdout),
        args.only.as_deref(),
        &ctx,
    );
    if let Some((_, out)) = &tty_run {
        audit::terminal::add_stdin_tty_run(
            &mut report,
            &String::from_utf8_lossy(out),
            args.control,
        );
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
    let (loaded, plan) = load_and_compile(&args.policy, m, &caller)?;
    if args.json {
        println!("{:#}", kekkai::explain::json(&loaded, &plan));
    } else {
        print!("{}", kekkai::explain::human(&loaded, &plan));
    }
    Ok(0)
}

fn export(args: &ExportArgs, m: Option<&ArgMatches>) -> Result<i32, Error> {
    let caller = caller()?;
    let (_, plan) = load_and_compile(&args.policy, m, &caller)?;
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
        let source = PolicySource::from_arg(file);
        let result = policy::load(&source, &caller)
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
