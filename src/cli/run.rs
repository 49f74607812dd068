//! `kekkai run`: load and compile the policy, open the `--report` file before the program
//! starts, launch, and say how the run ended (limits that fired, the timeout, what was left to
//! clean up); the program's exit status passes through. `kekkai __run-plan` is the same for a
//! plan handed over by the kekkai that started it (`handoff.rs`).

use std::cell::RefCell;
use std::ffi::OsString;
use std::fs::File;

use clap::ArgMatches;

use kekkai::error::Error;
use kekkai::launch::Options;
use kekkai::log;
use kekkai::plan::Plan;
use kekkai::state::{self, Entry, Record, StateDir};

use super::{RunArgs, RunPlanArgs};

/// The command line's program, else the image's Entrypoint and Cmd. A command given replaces
/// both (`kekkai run --image IMG -- sh` runs sh, whatever the image's entry point).
fn command(given: &[OsString], plan: &Plan) -> Result<Vec<OsString>, Error> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let from_image = plan
        .rootfs
        .image
        .as_ref()
        .map(|i| i.defaults.command())
        .unwrap_or_default();
    if from_image.is_empty() {
        return Err(Error::Usage(match &plan.rootfs.image {
            Some(i) => format!(
                "the image {} names no command (no Entrypoint or Cmd): give one after the options",
                i.reference
            ),
            None => {
                "no command: give the program to run (kekkai run [OPTIONS] [--] COMMAND [ARGS]...)"
                    .into()
            }
        }));
    }
    Ok(from_image.into_iter().map(Into::into).collect())
}

pub(crate) fn run(args: &RunArgs, m: Option<&ArgMatches>, verbosity: i8) -> Result<i32, Error> {
    let caller = super::caller()?;
    let mut opts = options(verbosity);
    opts.enter(kekkai::plan::steps::Step::Plan);
    let source = super::policy_source(&args.policy)?;
    let (_loaded, plan) = super::load_and_compile(&source, &args.policy, m, &caller)?;
    let command = command(&args.command, &plan)?;
    let report_file = open_report(args.report.as_deref(), caller.euid)?;
    if args.name.is_none() && !args.detach {
        let code = launch(
            &plan,
            &command,
            args.report.as_deref(),
            report_file,
            &opts,
            verbosity,
        );
        left_to_exit((_loaded, plan));
        return code;
    }
    // A named or detached sandbox: claimed in the state directory before anything starts.
    let policy = args
        .policy
        .policy
        .clone()
        .unwrap_or_else(|| "default".into());
    let reg = Registration::claim(&plan, &policy, &command, args.name.as_deref(), args.detach)?;
    if args.detach {
        return super::detach::detach(reg, plan.systemd.listen_fds, |reg, opts_watch| {
            opts.watch = Some(opts_watch);
            let code = launch(
                &plan,
                &command,
                args.report.as_deref(),
                report_file,
                &opts,
                verbosity,
            );
            reg.finish(code.as_ref().map_or(kekkai::exit::LAUNCH, |c| *c));
            code
        });
    }
    let reg = std::rc::Rc::new(reg);
    opts.watch = Some(reg.clone());
    let code = launch(
        &plan,
        &command,
        args.report.as_deref(),
        report_file,
        &opts,
        verbosity,
    );
    reg.finish(code.as_ref().map_or(kekkai::exit::LAUNCH, |c| *c));
    left_to_exit((_loaded, plan));
    code
}

/// The policy and the plan of a run that is over, left for the process's exit to free instead
/// of their destructors. Since the clone, the supervisor's heap pages are shared copy-on-write
/// with the sandbox's first process, which has exited by now but left them write-protected:
/// freeing the plan writes allocator headers into about 30 of them, each write a page fault,
/// ≈ 0.1 ms between the sandbox's end and kekkai's (docs/performance.md, finding 13). They hold
/// memory and descriptors only (no destructor with an effect outside this process: the
/// terminal, the relays and pasta are dropped in `launch::run`), and `main` returns at once.
fn left_to_exit(ended: (kekkai::policy::LoadedPolicy, Plan)) {
    std::mem::forget(ended);
}

/// `--detach`'s ready pipe: the program has started (its execve succeeded).
pub(crate) const READY_STARTED: u8 = b'1';
/// `--detach`'s ready pipe: the run ended before the program started; the exit status follows
/// (one byte).
pub(crate) const READY_ENDED: u8 = b'x';

/// A named sandbox's entry in the state directory, kept up to date by its supervisor: the
/// process ids once cloned, `started` when the program starts, the exit status at the end (a
/// sandbox run in the foreground is removed then: its caller has the status).
#[derive(Debug)]
pub(crate) struct Registration {
    dir: StateDir,
    entry: Option<Entry>,
    record: RefCell<Record>,
    /// `--detach`: told when the program has started ([`READY_STARTED`]), or how the run
    /// ended if it never did ([`READY_ENDED`] and the exit status).
    pub(crate) ready: RefCell<Option<std::os::fd::OwnedFd>>,
}

impl Registration {
    fn claim(
        plan: &Plan,
        policy: &str,
        command: &[OsString],
        name: Option<&str>,
        detached: bool,
    ) -> Result<Registration, Error> {
        let dir = super::engine::state_dir()?;
        let name = name.map_or_else(state::generated_name, str::to_owned);
        let entry = dir.create(&name)?;
        let me = nix::unistd::getpid().as_raw();
        let record = Record {
            kekkai: kekkai::plan::VERSION.into(),
            name,
            owner: dir.owner,
            policy: policy.to_owned(),
            command: command
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect(),
            detached,
            created: state::now(),
            supervisor: state::Proc::of(me),
            sandbox: None,
            started: false,
            ended: None,
        };
        let written = entry
            .write_plan(plan)
            .and_then(|()| entry.write_record(&record));
        if let Err(e) = written {
            let _ = dir.remove(entry);
            return Err(e.into());
        }
        Ok(Registration {
            dir,
            entry: Some(entry),
            record: RefCell::new(record),
            ready: RefCell::new(None),
        })
    }

    /// The sandbox's name.
    pub(crate) fn name(&self) -> String {
        self.record.borrow().name.clone()
    }

    /// The entry.
    pub(crate) fn entry(&self) -> Option<&Entry> {
        self.entry.as_ref()
    }

    /// This process is now the supervisor (after `--detach`'s fork).
    pub(crate) fn supervised_here(&self) {
        self.update(|r| r.supervisor = state::Proc::of(nix::unistd::getpid().as_raw()));
    }

    fn update(&self, f: impl FnOnce(&mut Record)) {
        let mut r = self.record.borrow_mut();
        f(&mut r);
        if let Some(e) = &self.entry {
            if let Err(err) = e.write_record(&r) {
                log::warn(&format!("the state of {}: {err}", r.name));
            }
        }
    }

    /// The run is over: a detached sandbox's end is recorded; a foreground one's entry goes.
    pub(crate) fn finish(&self, exit_code: i32) {
        if let Some(fd) = self.ready.borrow_mut().take() {
            // The program never started (exec failed, setup failed): the caller of
            // `run --detach` exits with this status. Should the write fail, the caller reads
            // end of file and says the sandbox did not start (125).
            let code = u8::try_from(exit_code).unwrap_or(255);
            if let Err(e) = nix::unistd::write(&fd, &[READY_ENDED, code]) {
                log::warn(&format!(
                    "telling the caller how the run ended: {}",
                    e.desc()
                ));
            }
        }
        if self.record.borrow().detached {
            self.update(|r| {
                r.ended = Some(state::End {
                    exit_code,
                    at: state::now(),
                })
            });
        } else if let Some(e) = self.entry.as_ref() {
            if let Ok(again) = self.dir.entry(&e.name) {
                let _ = self.dir.remove(again);
            }
        }
    }
}

impl kekkai::launch::Watch for Registration {
    fn cloned(&self, pid: nix::unistd::Pid) {
        self.update(|r| r.sandbox = state::Proc::of(pid.as_raw()));
    }

    fn started(&self) {
        self.update(|r| r.started = true);
        if let Some(fd) = self.ready.borrow_mut().take() {
            if let Err(e) = nix::unistd::write(&fd, &[READY_STARTED]) {
                log::warn(&format!(
                    "telling the caller the program started: {}",
                    e.desc()
                ));
            }
        }
    }
}

/// `kekkai __run-plan --plan-fd N`: runs the plan the parent kekkai handed over.
pub(crate) fn run_plan(args: &RunPlanArgs, verbosity: i8) -> Result<i32, Error> {
    let opts = options(verbosity);
    opts.enter(kekkai::plan::steps::Step::Plan);
    let mut plan = super::handoff::receive(args.plan_fd)?;
    // The audit's battery under a policy that does not let it start: exactly what is missing
    // of its harness, recorded in the report the audit reads (never without the flag).
    let harness = if args.audit_harness {
        Some(
            kekkai::audit::harness::widen(&mut plan)
                .map_err(|e| Error::Host(format!("audit: {e}")))?,
        )
    } else {
        None
    };
    let report_file = open_report(args.report.as_deref(), nix::unistd::geteuid().as_raw())?;
    launch_reporting(
        &plan,
        &args.command,
        args.report.as_deref(),
        report_file,
        &opts,
        verbosity,
        harness,
    )
}

fn options(verbosity: i8) -> Options {
    let mut opts = Options::from_env();
    opts.quiet = verbosity < 0;
    opts
}

/// Opens the `--report` file before the program starts: it may write where the report goes (a
/// writable working directory) and must not choose, with a symbolic link planted there, what
/// kekkai writes.
fn open_report(dest: Option<&str>, euid: u32) -> Result<Option<File>, Error> {
    match dest {
        None | Some("-") => Ok(None),
        Some(dest) => Ok(Some(
            kekkai::hostfs::create_for_writing(std::path::Path::new(dest), euid)
                .map_err(|why| Error::Host(format!("--report {dest}: {why}")))?,
        )),
    }
}

/// Launches the plan and says how the run ended.
fn launch(
    plan: &Plan,
    command: &[OsString],
    report: Option<&str>,
    report_file: Option<File>,
    opts: &Options,
    verbosity: i8,
) -> Result<i32, Error> {
    launch_reporting(plan, command, report, report_file, opts, verbosity, None)
}

/// [`launch`], with what the audit's harness added to the plan put into the report.
fn launch_reporting(
    plan: &Plan,
    command: &[OsString],
    report: Option<&str>,
    report_file: Option<File>,
    opts: &Options,
    verbosity: i8,
    harness: Option<kekkai::audit::harness::Widening>,
) -> Result<i32, Error> {
    if verbosity >= 0 && !plan.protected.is_empty() {
        log::warn(&format!(
            "the policy's hiding holds over {}",
            plan.protected.join("; ")
        ));
    }
    let outcome = kekkai::launch::run(plan, command, opts)?;
    if let Some(dest) = report {
        let mut report = kekkai::launch::report::RunReport::new(plan, &outcome);
        report.audit_harness = harness.and_then(|w| serde_json::to_value(w).ok());
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
        let sandbox = outcome.enforced.iter().flat_map(|e| &e.notes);
        for note in sandbox.chain(&outcome.notes) {
            log::notice(&format!("note: {note}"));
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
            .as_deref()
            .map(|m| kekkai::plan::units::format_size(*m))
            .unwrap_or_else(|| "?".into());
        log::error(&format!("killed: out of memory (limit {limit})"));
    }
    if stats.pids_limit_hits > 0 {
        log::warn(&format!(
            "{} fork/clone call(s) failed at the pids limit ({})",
            stats.pids_limit_hits,
            plan.limits.pids.as_deref().copied().unwrap_or_default()
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
