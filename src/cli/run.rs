//! `kekkai run`: load and compile the policy, open the `--report` file before the program
//! starts, launch, and say how the run ended (limits that fired, the timeout, what was left to
//! clean up); the program's exit status passes through.

use clap::ArgMatches;

use kekkai::error::Error;
use kekkai::log;

use super::RunArgs;

/// The command line's program, else the image's Entrypoint and Cmd. A command given replaces
/// both (`kekkai run --image IMG -- sh` runs sh, whatever the image's entry point).
fn command(
    given: &[std::ffi::OsString],
    plan: &kekkai::plan::Plan,
) -> Result<Vec<std::ffi::OsString>, Error> {
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
    let mut opts = kekkai::launch::Options::from_env();
    opts.quiet = verbosity < 0;
    opts.enter(kekkai::plan::steps::Step::Plan);
    let source = super::policy_source(&args.policy)?;
    let (_loaded, mut plan) = super::load_and_compile(&source, &args.policy, m, &caller)?;
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
    let command = command(&args.command, &plan)?;
    let outcome = kekkai::launch::run(&plan, &command, &opts)?;
    if let Some(dest) = &args.report {
        let mut report = kekkai::launch::report::RunReport::new(&plan, &outcome);
        report.audit_harness = harness;
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
