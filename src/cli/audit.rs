//! `kekkai audit`: the escape probes, run in a sandbox and judged on the host.
//!
//! The sandbox is one kekkai builds from a policy (`-p`), another launcher's (`--wrap
//! 'LAUNCHER ARGS…'`), or none (`--control`); `--compare` audits several and prints one matrix.
//! For each, in order: the probe context (from the compiled plan, for a policy; for a wrapper
//! only what the host knows) and the host's fixtures; a private copy of the probe program
//! (`kekkai-audit-probe` beside kekkai, `--probe FILE`, or kekkai itself); then the battery,
//! once with stdin `/dev/null` and once (its terminal probes only) with a terminal of the
//! audit's own on stdin; the outputs judged into one report. What follows does not care which
//! launcher ran the battery: the report formats, the baseline, the matrix.
//!
//! A policy's sandbox runs the plan judged here: the loaded policy with the probe copy (and
//! root's secret, and an image root's loader) bound in, compiled for a caller whose environment
//! holds the audit's secret as the inner launcher's does, and handed to `kekkai -q __run-plan
//! --plan-fd N` in a sealed memfd (`handoff.rs`): the policy and its `extends` are read once,
//! here, never looked up a second time.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use clap::ArgMatches;

use kekkai::audit::baseline;
use kekkai::audit::compare::Matrix;
use kekkai::audit::format::{self, Format, Meta};
use kekkai::audit::harness::{self, Widening};
use kekkai::audit::host::{self, ProbeCopy};
use kekkai::audit::program::ProbeProgram;
use kekkai::audit::report::{self, AuditReport, Sandbox, SandboxKind};
use kekkai::audit::terminal::CallerTty;
use kekkai::audit::wrap::Wrapper;
use kekkai::audit::{Builder, Ctx, PROBE_PATH, SECRET_PATH, probes};
use kekkai::caller::Caller;
use kekkai::error::Error;
use kekkai::exit;
use kekkai::launch::cgroup;
use kekkai::log;
use kekkai::plan::{self, Plan};
use kekkai::policy::overrides::{self, Override};

use super::handoff::Handoff;
use super::{AuditArgs, FormatArg, PolicyArgs};

/// What one audit is about.
enum Target {
    /// A sandbox kekkai builds from these policy arguments.
    Policy(Box<PolicyArgs>),
    /// Another launcher's command line.
    Wrap(Wrapper),
    /// No sandbox.
    Control,
}

/// The sandboxes the command line names, in its order.
fn targets(args: &AuditArgs, m: Option<&ArgMatches>) -> Result<Vec<Target>, Error> {
    let mut wraps = Vec::new();
    for w in &args.wrap {
        wraps.push(Target::Wrap(Wrapper::parse(w).map_err(Error::Usage)?));
    }
    let Some(compared) = &args.compare else {
        return match (wraps.len(), args.policy.policy.is_some(), args.control) {
            (0, _, true) => Ok(vec![Target::Control]),
            (0, _, false) => Ok(vec![Target::Policy(Box::new(args.policy.clone()))]),
            (1, false, _) if super::overrides(&args.policy, m).is_empty() => Ok(wraps),
            (1, false, _) => Err(Error::Usage(
                "--bind, --tmpfs, --setenv and the other policy overrides change kekkai's own sandbox, not a --wrap".into(),
            )),
            _ => Err(Error::Usage(
                "audit one sandbox (-p POLICY or one --wrap), or several with --compare".into(),
            )),
        };
    };
    let mut out: Vec<Target> = args
        .policy
        .policy
        .iter()
        .chain(compared)
        .map(|p| {
            Target::Policy(Box::new(PolicyArgs {
                policy: Some(p.clone()),
                ..args.policy.clone()
            }))
        })
        .collect();
    out.extend(wraps);
    if out.is_empty() {
        out.push(Target::Policy(Box::new(args.policy.clone())));
    }
    Ok(out)
}

pub(crate) fn audit(args: &AuditArgs, m: Option<&ArgMatches>) -> Result<i32, Error> {
    // What the audit's own caller left open is not the sandbox's to judge.
    kekkai::sys::cloexec_from(3)
        .map_err(|e| Error::io("marking descriptors close-on-exec", e.into()))?;
    let caller = super::caller()?;
    let targets = targets(args, m)?;
    let several = args.compare.is_some();
    let exe =
        std::env::current_exe().map_err(|e| Error::io("finding kekkai's own executable", e))?;
    let program = ProbeProgram::find(args.probe.as_deref(), &exe)
        .map_err(|e| Error::io("finding the probe program", e))?;
    let format = match (args.json, args.format) {
        (true, _) | (_, FormatArg::Json) => Format::Json,
        (_, FormatArg::Table) => Format::Table,
        (_, FormatArg::Junit) => Format::Junit,
        (_, FormatArg::Sarif) => Format::Sarif,
        (_, FormatArg::Tap) => Format::Tap,
    };
    // Read before anything runs: a bad baseline file is a usage error, not a failed audit.
    let base = match &args.baseline {
        Some(p) => Some(
            baseline::load(p)
                .map_err(|e| Error::Usage(format!("--baseline {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let meta = Meta::now();
    let mut reports: Vec<AuditReport> = Vec::new();
    let mut all_started = true;
    let mut all_ran = true;
    for target in &targets {
        let audit = One {
            args,
            m,
            caller: &caller,
            program: &program,
        };
        let Some((mut report, status)) = audit.run(target)? else {
            if !several {
                return Ok(exit::LAUNCH);
            }
            all_started = false;
            continue;
        };
        report.sandbox.label = unique(&reports, &report.sandbox.label);
        all_ran &= status == 0;
        reports.push(report);
    }
    print!("{}", render(format, several, &reports, &meta));
    if let Some(path) = &args.save_baseline {
        baseline::save(path, caller.euid, &baseline::of(&reports, caller.euid))
            .map_err(|e| Error::Usage(format!("--save-baseline {}: {e}", path.display())))?;
    }
    if let (Some(base), Some(path)) = (&base, &args.baseline) {
        let changes = baseline::diff(base, &reports)
            .map_err(|e| Error::Usage(format!("--baseline {}: {e}", path.display())))?;
        eprint!("{}", baseline::render(&changes, path, several));
        return Ok(if !all_started {
            exit::LAUNCH
        } else {
            i32::from(baseline::fails(&changes))
        });
    }
    if several {
        // The matrix is the result; only a sandbox that did not start fails it.
        return Ok(if all_started { 0 } else { exit::LAUNCH });
    }
    let Some(report) = reports.first() else {
        return Ok(exit::LAUNCH);
    };
    if !all_ran && !matches!(targets.first(), Some(Target::Wrap(_))) {
        return Ok(1);
    }
    if report.control {
        // A control run shows what the probes can do; it passes when they all ran.
        return Ok(i32::from(report.summary.errors != 0));
    }
    Ok(i32::from(!report.passed()))
}

/// `label`, or `label#N` when an earlier report has it.
fn unique(reports: &[AuditReport], label: &str) -> String {
    let taken = |l: &str| reports.iter().any(|r| r.sandbox.label == l);
    if !taken(label) {
        return label.to_owned();
    }
    (2..)
        .map(|n| format!("{label}#{n}"))
        .find(|l| !taken(l))
        .unwrap_or_default()
}

/// The reports in `format` (several: the matrix for the table and JSON).
fn render(format: Format, several: bool, reports: &[AuditReport], meta: &Meta) -> String {
    let json = |v: serde_json::Value| serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
    match (format, several) {
        (Format::Table, false) => reports.iter().map(AuditReport::table).collect(),
        (Format::Table, true) => Matrix::of(reports).table(),
        (Format::Json, false) => reports
            .iter()
            .map(|r| json(serde_json::to_value(r).unwrap_or_default()))
            .collect(),
        (Format::Json, true) => json(serde_json::to_value(Matrix::of(reports)).unwrap_or_default()),
        (Format::Junit, _) => format::junit(reports, meta),
        (Format::Sarif, _) => json(format::sarif(reports, meta)),
        (Format::Tap, _) => format::tap(reports),
    }
}

/// One audit.
struct One<'a> {
    args: &'a AuditArgs,
    m: Option<&'a ArgMatches>,
    caller: &'a Caller,
    program: &'a ProbeProgram,
}

impl One<'_> {
    /// Audits `target`: its report and the battery's exit status, or `None` when the sandbox
    /// did not start (said on stderr).
    fn run(&self, target: &Target) -> Result<Option<(AuditReport, i32)>, Error> {
        let control = matches!(target, Target::Control);
        let mut plan = None;
        let mut loaded = None;
        let (mut ctx, sandbox) = match target {
            Target::Policy(_) | Target::Control => {
                let policy = match target {
                    Target::Policy(p) => p,
                    _ => &self.args.policy,
                };
                let src = super::policy_source(policy)?;
                let (l, p) = super::load_and_compile(&src, policy, self.m, self.caller)?;
                // Where the run will put each cgroup controller. On cgroup v2 the `kekkai run`
                // this audit starts would find the audit beside it in a cgroup that must hold
                // no processes: step aside first, as that run would (best effort: the run
                // reports its own failure).
                let layout = cgroup::detect(&p.limits, &cgroup::Hierarchies::read());
                let _ = cgroup::make_room(&layout);
                let mut ctx = host::context(&p, &layout);
                ctx.expectations = p.audit.clone();
                ctx.control = control;
                let sandbox = Sandbox {
                    label: p.name.clone(),
                    kind: if control {
                        SandboxKind::Control
                    } else {
                        SandboxKind::Policy
                    },
                    description: match &policy.policy {
                        Some(given) if *given != p.name => {
                            format!("kekkai policy {} ({given})", p.name)
                        }
                        _ => format!("kekkai policy {}", p.name),
                    },
                };
                plan = Some(p);
                loaded = Some(l);
                (ctx, sandbox)
            }
            Target::Wrap(w) => (
                Ctx::foreign(Builder::Wrapper),
                Sandbox {
                    label: w.label(),
                    kind: SandboxKind::Wrap,
                    description: w.shown(),
                },
            ),
        };
        let fixtures = host::fixtures(&mut ctx);
        let copy = if control {
            None
        } else {
            Some(
                ProbeCopy::new(&self.program.path)
                    .map_err(|e| Error::io("copying the probe program", e))?,
            )
        };
        // An image's root has no C library of the host's kind: a dynamically linked probe
        // brings its own loader and libraries (the ones kekkai itself has mapped).
        let image = plan.as_ref().is_some_and(|p| p.rootfs.image.is_some());
        // Nor can the host's loader start under a policy whose Landlock does not let it be
        // executed (`kekkai learn`'s `from-mounts: false`): the same copies then, which the
        // harness's one Landlock rule for them covers (audit::harness).
        let loader_denied = match (&plan, &self.program.interpreter) {
            (Some(p), Some(interp)) => {
                p.landlock.enabled
                    && !kekkai::plan::landlock::allows(
                        &p.landlock,
                        Path::new(interp),
                        kekkai::plan::landlock::access::EXECUTE,
                    )
            }
            _ => false,
        };
        let loader = match &copy {
            Some(c) if (image || loader_denied) && self.program.interpreter.is_some() => Some(
                kekkai::audit::portable::copy_libraries(&c.path().with_file_name("lib"))
                    .map_err(|e| Error::io("copying the probe's libraries", e))?,
            ),
            _ => None,
        };
        let secret = ctx.secret.clone().unwrap_or_default();
        // The plan the sandbox runs: the policy judged here, with the copy (root's secret, an
        // image's loader) bound in, for a caller whose environment holds the secret.
        let run_plan = match (&loaded, &copy) {
            (Some(loaded), Some(copy)) => {
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
                if loader.is_some() {
                    binds.push(Override::RoBind(format!(
                        "{}:{}",
                        copy.path().with_file_name("lib").display(),
                        kekkai::audit::portable::LIB_PATH
                    )));
                }
                let mut inner = loaded.clone();
                overrides::apply(&mut inner, &binds, &self.caller.pwd)?;
                let mut launcher = self.caller.clone();
                launcher
                    .env
                    .push(("KEKKAI_AUDIT_SECRET".into(), secret.clone().into()));
                let mut compiled = plan::compile(&inner, &launcher)?;
                // `limits.oom: sandbox` would end the whole battery at the memory probe's OOM
                // kill (each probe runs in a child of its own to survive that): the battery runs
                // with `process`. What an OOM kill ends is availability, not confinement: no
                // verdict depends on it.
                compiled.limits.oom.value = plan::Oom::Process;
                Some(compiled)
            }
            _ => None,
        };
        let launcher = Launcher {
            loader: loader.as_deref(),
            target,
            plan: run_plan.as_ref(),
            program: self.program,
            copy: copy.as_ref(),
            secret,
        };
        let only = self.args.only.as_deref();
        let started = Instant::now();
        let run_report = match (&plan, &copy) {
            (Some(_), Some(c)) => Some(c.run_report()),
            _ => None,
        };
        let out = launcher.run(&mut ctx, only, false, run_report.as_deref())?;
        let status = out.status.code().unwrap_or(128);
        let any_line = String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| serde_json::from_str::<kekkai::audit::Line>(l).is_ok());
        if !any_line && (status == exit::LAUNCH || matches!(target, Target::Wrap(_)) && status != 0)
        {
            use std::io::Write;
            let _ = std::io::stderr().write_all(&out.stderr);
            log::error(&format!(
                "audit of {}: the sandbox did not start (see above); no probe ran",
                sandbox.description
            ));
            return Ok(None);
        }
        let tty_run = if only.is_none_or(|c| c == probes::TERMINAL) {
            let o = launcher.run(&mut ctx, Some(probes::TERMINAL), true, None)?;
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
        let mut report = AuditReport::new(sandbox, control);
        if let Some(p) = &plan {
            report.policy = Some(p.name.clone());
            report.hash = Some(p.policy_hash.get().to_owned());
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut report = report::judge(report, &stdout, only, &ctx);
        report.notes = match &plan {
            Some(p) => {
                let run_json = run_report
                    .and_then(|r| std::fs::read(r).ok())
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
                let mut notes = report::run_notes(p, run_json.as_ref(), &out.stderr);
                // What the run allowed the battery's harness beyond the policy: said, and the
                // probes whose attempt it covers judged against the policy's own filter.
                let widening = run_json
                    .as_ref()
                    .and_then(|r| r.get("audit_harness"))
                    .and_then(|w| serde_json::from_value::<Widening>(w.clone()).ok());
                if let Some(w) = widening.filter(|w| !w.is_empty()) {
                    harness::rejudge(&mut report, p, &w.syscall_names);
                    notes.insert(0, w.note());
                }
                notes
            }
            None => {
                let mut notes = vec![self.program.linkage()];
                notes.extend(report::stray_lines(&stdout));
                notes.extend(report::run_notes_of_stderr(&out.stderr));
                if status != 0 {
                    notes.push(format!("the wrapper ended with status {status}"));
                }
                notes
            }
        };
        if let Some((_, o)) = &tty_run {
            report::add_stdin_tty_run(&mut report, &String::from_utf8_lossy(o), control);
        }
        report.elapsed = Some(started.elapsed());
        let status = match (&tty_run, target) {
            // A wrapper's own status is a note; the verdicts say what happened.
            (_, Target::Wrap(_)) => 0,
            (Some((s, _)), _) if status == 0 => *s,
            _ => status,
        };
        if status != 0 {
            log::error(&format!("the probe battery ended with status {status}"));
        }
        Ok(Some((report, status)))
    }
}

/// How the battery is started: in a sandbox kekkai builds (`kekkai -q __run-plan` with the
/// judged plan handed over), through a wrapper's command line, or, for a control run, directly.
struct Launcher<'a> {
    target: &'a Target,
    /// The plan a policy's sandbox runs.
    plan: Option<&'a Plan>,
    program: &'a ProbeProgram,
    /// The copy of the probe program; `None` for a control run.
    copy: Option<&'a ProbeCopy>,
    /// The secret put into the launcher's environment.
    secret: String,
    /// The copied dynamic loader (an image's root), through which the probe starts.
    loader: Option<&'a str>,
}

impl Launcher<'_> {
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
        let out = tty.run(self.command(ctx, only, report, handoff.as_ref()), stdin_tty);
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
        let args = self.program.args(ctx, only);
        let mut cmd = match (self.target, self.copy, handoff) {
            (Target::Wrap(w), Some(copy), _) => {
                let words = w.command(&copy.path(), args);
                let mut cmd = Command::new(words.first().cloned().unwrap_or_default());
                cmd.args(words.get(1..).unwrap_or_default());
                cmd
            }
            (Target::Policy(_), Some(_), Some(handoff)) => {
                let mut cmd = Command::new(std::env::current_exe().unwrap_or_default());
                // Quiet: what the run has to say about itself comes back through its report
                // and goes into the table; its errors (the sandbox did not start) are still
                // printed.
                cmd.args(["-q", "__run-plan", "--audit-harness", "--plan-fd"])
                    .arg(handoff.number().to_string());
                if let Some(path) = report {
                    cmd.arg("--report").arg(path);
                }
                let mut probe: Vec<OsString> = vec![PROBE_PATH.into()];
                probe.extend(args);
                if let Some(loader) = self.loader {
                    probe = kekkai::audit::portable::through_loader(loader, probe);
                }
                cmd.arg("--").args(probe);
                cmd
            }
            _ => {
                let mut cmd = Command::new(&self.program.path);
                cmd.args(args);
                cmd
            }
        };
        cmd.env("KEKKAI_AUDIT_SECRET", &self.secret);
        cmd
    }
}
