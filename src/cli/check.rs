//! `kekkai check FILE...`: load and compile each policy file; every error is printed with its
//! file, line, column and key path, and the command fails when any file does.

use kekkai::error::Error;
use kekkai::exit;
use kekkai::plan;
use kekkai::policy::{self, PolicySource};

use super::CheckArgs;

pub(crate) fn check(args: &CheckArgs) -> Result<i32, Error> {
    let caller = super::caller()?;
    let mut failed = 0;
    for file in &args.files {
        let result = PolicySource::from_arg(file)
            .map_err(policy::Diagnostics::from)
            .and_then(|source| policy::load(&source, &caller))
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
        Ok(exit::INVALID)
    } else {
        Ok(0)
    }
}
