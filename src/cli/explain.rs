//! `kekkai explain`: the merged policy and the numbered launch steps it compiles to, as text or
//! JSON.

use clap::ArgMatches;

use kekkai::error::Error;

use super::ExplainArgs;

pub(crate) fn explain(args: &ExplainArgs, m: Option<&ArgMatches>) -> Result<i32, Error> {
    let caller = super::caller()?;
    let source = super::policy_source(&args.policy)?;
    let (loaded, plan) = super::load_and_compile(&source, &args.policy, m, &caller)?;
    if args.json {
        println!("{:#}", kekkai::explain::json(&loaded, &plan));
    } else {
        print!("{}", kekkai::explain::human(&loaded, &plan));
    }
    Ok(0)
}
