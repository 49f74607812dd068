//! `kekkai man`: kekkai(1) and one page per command, rendered ([`kekkai::man`]) from the same
//! clap definitions that parse the command line; `--out DIR` writes them all.

use std::io::Write;

use clap::CommandFactory;

use kekkai::error::Error;
use kekkai::man;

use super::Cli;

pub(crate) fn man(command: Option<&str>, out: Option<&std::path::Path>) -> Result<i32, Error> {
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
