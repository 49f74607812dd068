//! The inside of an audit, and the probe as a program of its own: every probe of the table, then
//! every expectation of the policy, each in a forked process of its own ([`inside::isolated`]),
//! prints one JSON line: its name, what it saw, and the probe's own verdict. The host judges
//! what it saw again ([`super::report`]), with the policy's grants.
//!
//! The same code runs as `kekkai-audit-probe` (a program of its own, built static by
//! `scripts/build-audit-probe` so that it can be copied into any image or machine and run by
//! hand) and as `kekkai __probe` (kekkai's own binary, when no probe program is installed
//! beside it). The battery makes a temporary directory of its own at the start and removes it
//! at the end: the probes that write, write there (or, in a sandbox kekkai built, in the
//! writable mounts the policy gives, which is what they test); everything else they only try
//! in ways that change nothing when they are allowed.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::AsRawFd;

use super::report::{self, AuditReport, Sandbox};
use super::{Builder, Ctx, Line, inside, probes};

/// The probe program's usage.
pub const USAGE: &str = "\
usage: kekkai-audit-probe [--context JSON] [--only CATEGORY] [--table]

Tries known sandbox escapes from inside whatever sandbox runs it, each in a process of its own
and in a way that changes nothing when it is allowed, and prints one JSON line per probe:
  {\"name\":\"kernel.keyctl\",\"category\":\"kernel\",\"layer\":\"seccomp\",\"verdict\":\"blocked\",\"detail\":\"EPERM\",\"seen\":{\"errno\":1}}
It writes only in a temporary directory of its own ($TMPDIR, /tmp, /var/tmp or /dev/shm),
removed at the end.

  --context JSON   what the host side knows (kekkai audit passes it); without it, the probes
                   that need the host's fixtures are not applicable
  --only CATEGORY  only this category's probes
  --table          a table for people instead of JSON lines

Exit status: without --context, 1 when a probe escaped or could not run, else 0; with it, 0
once every probe has reported (the host judges). 2: bad usage.";

/// The command line of the probe program.
#[derive(Debug, Default, PartialEq, Eq)]
struct Args {
    context: Option<String>,
    only: Option<String>,
    table: bool,
}

fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Args, String> {
    let mut out = Args::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let a = a.into_string().map_err(|a| format!("not UTF-8: {a:?}"))?;
        let mut value = |name: &str| -> Result<String, String> {
            it.next()
                .and_then(|v| v.into_string().ok())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--context" => out.context = Some(value("--context")?),
            "--only" => out.only = Some(value("--only")?),
            "--table" => out.table = true,
            _ => return Err(format!("unknown argument {a:?}")),
        }
    }
    Ok(out)
}

/// The probe program: `ARGS` are its arguments (without the program's name). Returns the exit
/// status.
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("kekkai-audit-probe: {e}\n\n{USAGE}");
            return 2;
        }
    };
    let ctx = match &args.context {
        Some(json) => match serde_json::from_str::<Ctx>(json) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("kekkai-audit-probe: bad context: {e}");
                return 2;
            }
        },
        None => Ctx::foreign(Builder::Unknown),
    };
    let mut out = std::io::stdout().lock();
    let mut shown = Vec::new();
    let (ctx, failed) = battery(ctx, args.only.as_deref(), &mut |line| {
        if args.table {
            shown.push(line);
        } else {
            let _ = writeln!(out, "{}", serde_json::to_string(&line).unwrap_or_default());
        }
    });
    if args.table {
        let text: String = shown
            .iter()
            .map(|l| serde_json::to_string(l).unwrap_or_default() + "\n")
            .collect();
        let sandbox = Sandbox::standalone();
        let r = report::judge(
            AuditReport::new(sandbox, ctx.control),
            &text,
            args.only.as_deref(),
            &ctx,
        );
        let _ = write!(out, "{}", r.table());
        return i32::from(args.context.is_none() && !r.passed());
    }
    if args.context.is_some() {
        return 0;
    }
    // By hand: fail when anything got through or could not be judged.
    i32::from(failed)
}

/// Runs every probe (only `only`'s, if given) and the policy's expectations, handing each line
/// to `emit` as it comes; returns the context as the probes saw it, and whether any probe
/// escaped or could not run (by the probe's own judgement, without a policy's grants).
pub fn battery(mut ctx: Ctx, only: Option<&str>, emit: &mut dyn FnMut(Line)) -> (Ctx, bool) {
    ctx.initial_fds = open_fds();
    let own = prepare(&mut ctx);
    let mut failed = false;
    for p in probes::all() {
        if only.is_some_and(|c| c != p.category) || (ctx.control && !p.control_safe) {
            continue;
        }
        let seen = inside::isolated(&|| (p.run)(&ctx));
        let (verdict, detail) = report::verdict(&p, &seen);
        failed |= matches!(verdict, report::Verdict::Escaped | report::Verdict::Error);
        emit(Line {
            name: p.name.to_owned(),
            category: p.category.to_owned(),
            layer: p.layer.to_owned(),
            verdict: Some(verdict),
            detail,
            seen,
        });
    }
    if only.is_none_or(|c| c == "expect") {
        for e in &ctx.expectations {
            let seen = inside::isolated(&|| inside::attempt(e));
            let (verdict, detail) = report::expectation_verdict(e, &seen);
            failed |= matches!(verdict, report::Verdict::Escaped | report::Verdict::Error);
            emit(Line {
                name: e.name(),
                category: "expect".into(),
                layer: "policy".into(),
                verdict: Some(verdict),
                detail,
                seen,
            });
        }
    }
    if let Some(dir) = own {
        let _ = std::fs::remove_dir_all(dir);
    }
    (ctx, failed)
}

/// What the battery finds out about itself before the first probe: its pid, and a temporary
/// directory of its own (returned, for removal at the end). In a sandbox kekkai did not build,
/// that directory is also where the probes that need a writable mount try their files.
fn prepare(ctx: &mut Ctx) -> Option<std::path::PathBuf> {
    ctx.battery_pid = nix::unistd::getpid().as_raw();
    ctx.as_pid_1 |= ctx.battery_pid == 1;
    let candidates: Vec<std::path::PathBuf> = if ctx.scratch.is_empty() {
        std::env::var_os("TMPDIR")
            .filter(|d| std::path::Path::new(d).is_absolute())
            .into_iter()
            .map(std::path::PathBuf::from)
            .chain(["/tmp", "/var/tmp", "/dev/shm"].map(std::path::PathBuf::from))
            .collect()
    } else {
        vec![std::path::PathBuf::from(&ctx.scratch)]
    };
    let own = candidates
        .iter()
        .find_map(|d| nix::unistd::mkdtemp(&d.join("kekkai-audit-probe.XXXXXX")).ok())?;
    let shown = own.display().to_string();
    if ctx.built_by != Builder::Kekkai {
        ctx.scratch.clone_from(&shown);
        ctx.writable_mounts = vec![shown.clone()];
    }
    ctx.own_dir = Some(shown);
    Some(own)
}

/// This process's open descriptors, not counting the one used to list them.
fn open_fds() -> Vec<String> {
    let Ok(mut dir) = nix::dir::Dir::open(
        "/proc/self/fd",
        nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    ) else {
        return Vec::new();
    };
    let own = dir.as_raw_fd().to_string();
    let mut fds: Vec<String> = dir
        .iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "." && n != ".." && *n != own)
        .collect();
    fds.sort();
    fds
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::nothing(&[], Ok(Args::default()))]
    #[case::all(&["--context", "{}", "--only", "fs", "--table"], Ok(Args { context: Some("{}".into()), only: Some("fs".into()), table: true }))]
    #[case::missing_value(&["--only"], Err("--only needs a value".to_owned()))]
    #[case::unknown(&["battery"], Err("unknown argument \"battery\"".to_owned()))]
    fn arguments(#[case] args: &[&str], #[case] want: Result<Args, String>) {
        assert_eq!(parse(args.iter().map(OsString::from)), want);
    }
}
