//! `kekkai audit`: the escape probes, run in a sandbox built from the policy, judged on the
//! host; and `kekkai __probe battery`, the inside of it.
//!
//! In order: load and compile the policy; step aside in the cgroup tree as the run will (on
//! cgroup v2 a sandbox's cgroup can't be made beside the audit in a cgroup that holds
//! processes); the probe context from the plan and the host's fixtures; a private copy of
//! kekkai; the plan the sandbox runs: the same loaded policy with the copy (and root's secret)
//! bound in, compiled for a caller whose environment holds the audit's secret, as the inner
//! launcher's does; then `kekkai -q __run-plan --plan-fd N --report FILE -- COPY __probe battery
//! CTX` with that plan handed over (`handoff.rs`: the policy and its `extends` are read once,
//! here), once with stdin `/dev/null` and once (its terminal probes only) with the audit's own
//! terminal on stdin; the two outputs judged into one report.

use std::path::Path;
use std::process::{Command, Output};

use clap::ArgMatches;

use kekkai::audit::host::{self, ProbeCopy};
use kekkai::audit::terminal::CallerTty;
use kekkai::audit::{Ctx, PROBE_PATH, SECRET_PATH, battery, probes, report};
use kekkai::error::Error;
use kekkai::exit;
use kekkai::launch::cgroup;
use kekkai::log;
use kekkai::plan::{self, Plan};
use kekkai::policy::overrides::{self, Override};

use super::AuditArgs;
use super::handoff::Handoff;

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
    let (loaded, plan) = super::load_and_compile(&source, &args.policy, m, &caller)?;
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
    let secret = ctx.secret.clone().unwrap_or_default();
    // The plan the sandbox runs: the policy judged here, with the copy and root's secret bound
    // in, for a caller whose environment holds the secret (the inner launcher's does).
    let run_plan = match &copy {
        None => None,
        Some(copy) => {
            let mut binds = vec![Override::RoBind(format!(
                "{}:{PROBE_PATH}",
                copy.path().display()
            ))];
            if let Some(file) = fixtures.secret_file() {
                binds.push(Override::RoBind(format!(
                    "{}:{SECRET_PATH}",
                    file.display()
                )));
            }
            let mut inner = loaded.clone();
            overrides::apply(&mut inner, &binds, &caller.pwd)?;
            let mut launcher = caller.clone();
            launcher
                .env
                .push(("KEKKAI_AUDIT_SECRET".into(), secret.clone().into()));
            let mut compiled = plan::compile(&inner, &launcher)?;
            // `limits.oom: sandbox` would end the whole battery at the memory probe's OOM kill
            // (each probe runs in a child of its own to survive that): the battery runs with
            // `process`. What an OOM kill ends is availability, not confinement: no verdict
            // depends on it.
            compiled.limits.oom.value = plan::Oom::Process;
            Some(compiled)
        }
    };
    let battery = Battery {
        exe: &exe,
        plan: run_plan.as_ref(),
        secret,
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

/// How the battery is started: in a sandbox (`kekkai -q __run-plan` with the plan handed over),
/// or, for a control run, directly.
struct Battery<'a> {
    exe: &'a Path,
    /// The plan the sandbox runs; `None` for a control run.
    plan: Option<&'a Plan>,
    /// The secret put into the launcher's environment.
    secret: String,
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
        // Inherited by the command spawned next, and closed here once it has started.
        let handoff = self.plan.map(Handoff::new).transpose()?;
        let cmd = self.command(ctx, only, report, handoff.as_ref());
        let out = tty.run(cmd, stdin_tty);
        drop(handoff);
        out.map_err(|e| Error::io("starting the sandbox", e))
    }

    /// The command line that starts the battery.
    fn command(
        &self,
        ctx: &Ctx,
        only: Option<&str>,
        report: Option<&Path>,
        handoff: Option<&Handoff>,
    ) -> Command {
        let mut cmd = Command::new(self.exe);
        match handoff {
            None => {
                cmd.arg("__probe")
                    .arg("battery")
                    .arg(serde_json::to_string(ctx).unwrap_or_default());
                cmd.args(only);
            }
            Some(handoff) => {
                // Quiet: what the run has to say about itself comes back through its report
                // and goes into the table; its errors (the sandbox did not start) are still
                // printed.
                cmd.args(["-q", "__run-plan", "--plan-fd"])
                    .arg(handoff.number().to_string());
                if let Some(path) = report {
                    cmd.arg("--report").arg(path);
                }
                cmd.arg("--").args(host::battery_command(ctx, only));
            }
        }
        cmd.env("KEKKAI_AUDIT_SECRET", &self.secret);
        cmd
    }
}
