//! The `kekkai` command line: parse, dispatch to the command (one file each under `cli/`), and
//! the one error reporter. Exit codes are documented in [`kekkai::exit`].

mod cli;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::FromArgMatches;

use kekkai::error::Error;
use kekkai::exit;
use kekkai::log;

use cli::{Cli, Cmd};

fn main() -> ExitCode {
    // The Rust runtime ignores SIGPIPE, and that disposition would pass on to every program
    // kekkai starts (`kekkai run -- yes | head -1` would never end): SIGPIPE goes back to what
    // the caller had, recorded before the runtime changed it (`kekkai::sys::inherited`), and
    // an ignored SIGCHLD to the default (kekkai waits for its children; the program still gets
    // the caller's).
    if let Err((signo, e)) = kekkai::sys::inherited::restore_in_main() {
        log::error(&format!("sigaction({signo}): {e}"));
        return ExitCode::from(u8::try_from(exit::LAUNCH).unwrap_or(1));
    }
    let argv: Vec<OsString> = std::env::args_os().collect();
    // The plain `kekkai run [-p NAME] [--] COMMAND...` without building clap's definitions of
    // every command (cli::fast); any other line is clap's.
    let (cli, matches) = match cli::fast::plain_run(&argv) {
        Some(cli) => (cli, None),
        None => {
            let matches = cli::parse(&argv);
            match Cli::from_arg_matches(&matches) {
                Ok(c) => (c, Some(matches)),
                Err(e) => e.exit(),
            }
        }
    };
    let sub = matches
        .as_ref()
        .and_then(|m| m.subcommand())
        .map(|(_, m)| m);
    let verbosity = if cli.quiet {
        -1
    } else {
        i8::try_from(cli.verbose).unwrap_or(i8::MAX)
    };
    // Each command with the exit code its failures get.
    let code = match cli.cmd {
        Cmd::Run(args) => report(cli::run::run(&args, sub, verbosity), exit::LAUNCH),
        Cmd::RunPlan(args) => report(cli::run::run_plan(&args, verbosity), exit::LAUNCH),
        Cmd::Check(args) => report(cli::check::check(&args), exit::INVALID),
        Cmd::Explain(args) => report(cli::explain::explain(&args, sub), exit::INVALID),
        Cmd::Export(args) => report(cli::export::export(&args, sub), exit::INVALID),
        Cmd::Schema => report(cli::schema::schema(), 1),
        Cmd::Learn(args) => report(cli::learn::learn(&args, verbosity), exit::LAUNCH),
        Cmd::Cleanup => report(cli::cleanup::cleanup(), 1),
        Cmd::Ps(args) => report(cli::engine::ps(&args), 1),
        Cmd::Enter(args) => report(cli::engine::enter(&args, verbosity), exit::LAUNCH),
        Cmd::Stop(args) => report(cli::engine::stop(&args), 1),
        Cmd::Kill(args) => report(cli::engine::kill(&args), 1),
        Cmd::Wait(args) => report(cli::engine::wait(&args.name), 1),
        Cmd::Logs(args) => report(cli::engine::logs(&args), 1),
        Cmd::Stats(args) => report(cli::engine::stats(&args), 1),
        Cmd::Rm(args) => report(cli::engine::rm(&args), 1),
        Cmd::Policies => report(cli::policies::policies(), 1),
        Cmd::Completions { shell } => report(cli::completions::completions(shell), 1),
        Cmd::Man { command, out } => report(cli::man::man(command.as_deref(), out.as_deref()), 1),
        Cmd::Image(args) => report(cli::image::image(&args), 1),
        Cmd::Audit(args) => report(cli::audit::audit(&args, sub), exit::LAUNCH),
        Cmd::Probe { args } => kekkai::audit::battery::main(args),
    };
    // The command line's parse is left for the exit to free, as `run` leaves its plan
    // (`cli::run::left_to_exit`): after a launch the heap is write-protected copy-on-write, and
    // freeing would fault page by page. `exit` still flushes stdout.
    std::process::exit(i32::from(u8::try_from(code).unwrap_or(1)))
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
        Err(Error::State(e)) => {
            log::error(&e.to_string());
            // `run` and `enter` fail before the program starts: 125, whatever the reason.
            if failure == exit::LAUNCH {
                return failure;
            }
            match e {
                kekkai::state::StateError::NoSuch(_) => exit::NO_SUCH_SANDBOX,
                kekkai::state::StateError::BadName(..) => exit::USAGE,
                kekkai::state::StateError::InUse(_) => exit::SANDBOX_RUNNING,
                kekkai::state::StateError::Refused(_) => exit::STATE_REFUSED,
            }
        }
        Err(e) => {
            log::error(&e.to_string());
            failure
        }
    }
}
