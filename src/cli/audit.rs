//! `kekkai audit`: the escape probes, run in a sandbox built from the policy, judged on the
//! host; and `kekkai __probe battery`, the inside of it.
//!
//! In order: load and compile the policy; step aside in the cgroup tree as the run will (on
//! cgroup v2 a sandbox's cgroup can't be made beside the audit in a cgroup that holds
//! processes); the probe context from the plan and the host's fixtures; a private copy of
//! kekkai; then `kekkai -q run --report FILE -p POLICY [overrides] --ro-bind COPY … -- COPY
//! __probe battery CTX`, once with stdin `/dev/null` and once (its terminal probes only) with
//! the audit's own terminal on stdin; the two outputs judged into one report.

use std::path::Path;
use std::process::{Command, Output};

use clap::ArgMatches;

use kekkai::audit::host::{self, Fixtures, ProbeCopy};
use kekkai::audit::terminal::CallerTty;
use kekkai::audit::{Ctx, PROBE_PATH, SECRET_PATH, battery, probes, report};
use kekkai::error::Error;
use kekkai::exit;
use kekkai::launch::cgroup;
use kekkai::log;
use kekkai::policy::PolicySource;

use super::AuditArgs;

/// `kekkai __probe WHAT CTX [CATEGORY]`: the battery, inside the sandbox.
pub(crate) fn probe(what: &str, ctx: &str, only: Option<&str>) -> Result<i32, Error> {
    Ok(match what {
        "battery" => battery::battery(ctx, only),
        _ => exit::USAGE,
    })
}

pub(crate) fn audit(args: &AuditArgs, m: Option<&ArgMatches>) -> Result<i32, Error> {
    let caller = super::caller()?;
    let source = super::policy_source(&args.policy)?;
    let (_loaded, plan) = super::load_and_compile(&source, &args.policy, m, &caller)?;
    // Where the run will put each cgroup controller. On cgroup v2 the `kekkai run` this audit
    // starts would find the audit beside it in a cgroup that must hold no processes: step aside
    // first, as that run would (best effort: the run reports its own failure).
    let layout = cgroup::detect(&plan.limits, &cgroup::Hierarchies::read());
    let _ = cgroup::make_room(&layout);
    let mut ctx = host::context(&plan, &layout);
    ctx.expectations = plan.audit.clone();
    ctx.control = args.control;
    let fixtures = host::fixtures(&mut ctx);
    let exe =
        std::env::current_exe().map_err(|e| Error::io("finding kekkai's own executable", e))?;
    let copy = if args.control {
        None
    } else {
        Some(ProbeCopy::new().map_err(|e| Error::io("copying kekkai for the probe", e))?)
    };
    // An image's root has no C library of the host's kind: the copy brings its own.
    let loader = match (&copy, &plan.rootfs.image) {
        (Some(c), Some(_)) => Some(
            kekkai::audit::portable::copy_libraries(&c.path().with_file_name("lib"))
                .map_err(|e| Error::io("copying kekkai's libraries for the probe", e))?,
        ),
        _ => None,
    };
    let battery = Battery {
        loader: loader.as_deref(),
        args,
        m,
        source: &source,
        exe: &exe,
        copy: copy.as_ref(),
        fixtures: &fixtures,
        secret: ctx.secret.clone().unwrap_or_default(),
    };
    let run_report = copy.as_ref().map(ProbeCopy::run_report);
    let out = battery.run(&mut ctx, args.only.as_deref(), false, run_report.as_deref())?;
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
    let tty_run = if args.only.as_deref().is_none_or(|c| c == probes::TERMINAL) {
        let o = battery.run(&mut ctx, Some(probes::TERMINAL), true, None)?;
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
    let mut report = report::judge(
        &plan.name,
        &plan.policy_hash,
        args.control,
        &String::from_utf8_lossy(&out.stdout),
        args.only.as_deref(),
        &ctx,
    );
    report.notes = report::run_notes(&plan, run_json.as_ref(), &out.stderr);
    if let Some((_, out)) = &tty_run {
        report::add_stdin_tty_run(&mut report, &String::from_utf8_lossy(out), args.control);
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

/// How the battery is started: in a sandbox (`kekkai -q run` with the policy, the overrides and
/// the binds of the copy and the secret), or, for a control run, directly.
struct Battery<'a> {
    args: &'a AuditArgs,
    m: Option<&'a ArgMatches>,
    source: &'a PolicySource,
    exe: &'a Path,
    /// The copy of kekkai the sandbox runs; `None` for a control run.
    copy: Option<&'a ProbeCopy>,
    fixtures: &'a Fixtures,
    /// The secret put into the launcher's environment.
    secret: String,
    /// The copied dynamic loader (an image root), through which the probe starts.
    loader: Option<&'a str>,
}

impl Battery<'_> {
    /// Runs the battery (only `only`'s probes, if given) with a terminal of the audit's own as the
    /// controlling terminal: with `stdin_tty` also on stdin and stderr, else stdin `/dev/null`.
    /// stdout carries the verdicts; stderr is the user's only when the sandbox did not start,
    /// else it belongs to the report (`report`: where the run writes its `--report`).
    fn run(
        &self,
        ctx: &mut Ctx,
        only: Option<&str>,
        stdin_tty: bool,
        report: Option<&Path>,
    ) -> Result<Output, Error> {
        let tty =
            CallerTty::open(ctx).map_err(|e| Error::io("opening a terminal for the audit", e))?;
        tty.run(self.command(ctx, only, report), stdin_tty)
            .map_err(|e| Error::io("starting the sandbox", e))
    }

    /// The command line that starts the battery.
    fn command(&self, ctx: &Ctx, only: Option<&str>, report: Option<&Path>) -> Command {
        let mut cmd = Command::new(self.exe);
        match self.copy {
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
                match (self.source, &self.args.policy.policy) {
                    // The sandbox runs the file judged here, not the result of a second lookup.
                    (PolicySource::Found(found), _) => {
                        cmd.arg("-p").arg(found.reopen_path());
                    }
                    (_, Some(p)) => {
                        cmd.args(["-p", p]);
                    }
                    (_, None) => {}
                }
                for o in super::overrides(&self.args.policy, self.m) {
                    let flag = o.flag();
                    match flag.split_once(' ') {
                        Some((name, value)) => cmd.args([name, value]),
                        None => cmd.arg(&flag),
                    };
                }
                cmd.arg("--ro-bind")
                    .arg(format!("{}:{PROBE_PATH}", copy.path().display()));
                if let Some(secret) = self.fixtures.secret_file() {
                    cmd.arg("--ro-bind")
                        .arg(format!("{}:{SECRET_PATH}", secret.display()));
                }
                let probe = host::battery_command(ctx, only);
                match self.loader {
                    Some(loader) => {
                        cmd.arg("--ro-bind").arg(format!(
                            "{}:{}",
                            copy.path().with_file_name("lib").display(),
                            kekkai::audit::portable::LIB_PATH
                        ));
                        cmd.arg("--")
                            .args(kekkai::audit::portable::through_loader(loader, probe));
                    }
                    None => {
                        cmd.arg("--").args(probe);
                    }
                }
            }
        }
        cmd.env("KEKKAI_AUDIT_SECRET", &self.secret);
        cmd
    }
}
