//! `kekkai completions SHELL`: a completion script, generated from the clap definitions.

use std::io::Write;

use clap::CommandFactory;

use kekkai::error::Error;

use super::Cli;

pub(crate) fn completions(shell: clap_complete::Shell) -> Result<i32, Error> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "kekkai", &mut out);
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| Error::io("writing the completions", e))?;
    Ok(0)
}
