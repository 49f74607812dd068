//! `kekkai export systemd`: the policy as a systemd `[Service]` drop-in, with comments for what
//! systemd can't express.

use clap::ArgMatches;

use kekkai::error::Error;

use super::{ExportArgs, ExportFormat};

pub(crate) fn export(args: &ExportArgs, m: Option<&ArgMatches>) -> Result<i32, Error> {
    let caller = super::caller()?;
    let source = super::policy_source(&args.policy)?;
    let (_, plan) = super::load_and_compile(&source, &args.policy, m, &caller)?;
    match args.format {
        ExportFormat::Systemd => print!("{}", kekkai::export::systemd(&plan)),
    }
    Ok(0)
}
