//! `kekkai learn`: run the program once under BASE with the observer on, write the smallest
//! policy that lets it do what it did (`kekkai::learn`), fold in an earlier one (`--merge`),
//! then prove it: run the program again under the learned policy and compare how it ended.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use kekkai::error::Error;
use kekkai::launch::{Ended, Options, Outcome};
use kekkai::learn::{self, Header, RunFacts};
use kekkai::log;
use kekkai::policy::{self, PolicySource};

use super::LearnArgs;

/// The exit status when the proof run ended differently from the learning run.
pub(crate) const PROOF_FAILED: i32 = 1;

pub(crate) fn learn(args: &LearnArgs, verbosity: i8) -> Result<i32, Error> {
    let caller = super::caller()?;
    let quiet = verbosity < 0;
    let duration = match args.duration.as_deref() {
        Some(d) => Some(
            kekkai::plan::units::parse_duration(d)
                .map_err(|e| Error::Usage(format!("--duration: {e}")))?,
        ),
        None => None,
    };
    // An earlier policy to fold in, and the BASE it extends.
    let earlier = match &args.merge {
        Some(old) => {
            let text = std::fs::read_to_string(old).map_err(|e| {
                Error::Host(format!(
                    "--merge {}: {}",
                    old.display(),
                    policy::describe_io(&e)
                ))
            })?;
            let shown = old.display().to_string();
            let (rules, extends) = learn::read_back(&text, &shown).map_err(Error::Host)?;
            Some((rules, extends, commands_of(&text), old.clone()))
        }
        None => None,
    };
    let base_arg = match (&args.policy, &earlier) {
        (Some(p), _) => p.clone(),
        (None, Some((_, Some(ext), _, old))) => resolve_extends(ext, old),
        _ => "default".to_string(),
    };
    let source = PolicySource::from_arg(&base_arg).map_err(policy::Diagnostics::from)?;
    let extends = extends_value(&source)?;
    let loaded = policy::load(&source, &caller)?;
    let mut plan = kekkai::plan::compile(&loaded, &caller)?;
    let base_plan = plan.clone();
    if let Some(d) = duration {
        // A service: stopped after --duration (SIGTERM, then SIGKILL after the grace).
        plan.timeout = Some(d);
    }

    let mut opts = Options::from_env();
    opts.quiet = quiet;
    opts.observe = true;
    if !quiet {
        log::notice(&format!(
            "learning under {base_arg}: {}",
            command_line(&args.command)
        ));
    }
    let seen = kekkai::launch::run(&plan, &args.command, &opts)?;
    if let Some(e) = &seen.setup_error {
        return Err(Error::Launch(e.clone()));
    }
    if let Some((program, errno)) = &seen.exec_error {
        let e = nix::errno::Errno::from_raw(*errno);
        return Err(Error::Host(format!(
            "{program}: {} ({e:?}): nothing to learn",
            e.desc().to_lowercase()
        )));
    }
    let Some(obs) = seen.observations.clone() else {
        return Err(Error::Host(
            "the sandbox never sent the observer's listener: nothing was learned".into(),
        ));
    };
    let stopped = duration.is_some() || by_signal(&seen);
    let facts = RunFacts {
        wall: seen.wall,
        peak_memory: seen.cgroup.stats.peak_memory.unwrap_or(seen.max_rss),
        stopped,
    };
    let mut learned = learn::learn(&obs, &base_plan, &facts);
    let mut commands = vec![format!(
        "{}  (ended: {})",
        command_line(&args.command),
        ended_text(&seen)
    )];
    if let Some((rules, _, old_commands, _)) = earlier {
        learn::merge(&mut learned.rules, rules);
        commands.extend(old_commands);
    }
    let header = Header {
        commands,
        extends,
        replace: learn::replaced_keys(&loaded.policy),
        deny_by_default: matches!(
            base_plan.seccomp.default_action,
            kekkai::plan::seccomp::Action::Log
        ),
    };
    let text = learn::render_checked(&learned.rules, &header).map_err(Error::Host)?;

    // Write it: to -o (opened so that a planted link can't choose the file), or stdout.
    let out_path = match &args.output {
        Some(p) => {
            let mut f = kekkai::hostfs::create_for_writing(p, caller.euid)
                .map_err(|why| Error::Host(format!("-o {}: {why}", p.display())))?;
            use std::io::Write;
            f.set_len(0)
                .and_then(|()| f.write_all(text.as_bytes()))
                .map_err(|e| {
                    Error::Host(format!("-o {}: {}", p.display(), policy::describe_io(&e)))
                })?;
            Some(p.clone())
        }
        None => {
            print!("{text}");
            None
        }
    };
    if !quiet {
        let r = &learned.rules;
        log::notice(&format!(
            "learned {} syscalls, {} read, {} write and {} execute trees, {} connect and {} bind ports{}",
            r.syscalls.len(),
            r.read.len(),
            r.write.len(),
            r.execute.len(),
            r.connect.as_ref().map_or(0, |c| c.len()),
            r.bind.as_ref().map_or(0, |c| c.len()),
            out_path
                .as_ref()
                .map(|p| format!("; wrote {}", p.display()))
                .unwrap_or_default()
        ));
        for r in &learned.refused {
            log::warn(&format!("not learned: {r}"));
        }
        if obs.unreadable > 0 {
            log::notice(&format!(
                "{} path arguments could not be read from the program's memory",
                obs.unreadable
            ));
        }
    }
    if args.no_proof {
        return Ok(0);
    }
    // The proof: the program again, under what was learned: the text written, never the file
    // read back by its path. Whoever may rename in -o's directory (the user whose checkout root
    // learns in) could otherwise swap in a policy of their own between the write and the
    // read, and the proof would launch root's program under it (`host-privileges: allow`...).
    let shown = out_path
        .as_ref()
        .map_or_else(|| "learned.yaml".to_owned(), |p| p.display().to_string());
    let learned_loaded = policy::load_str(&shown, &text, &caller)?;
    let mut learned_plan = kekkai::plan::compile(&learned_loaded, &caller)?;
    if let Some(d) = duration {
        learned_plan.timeout = Some(d);
    }
    let mut proof_opts = Options::from_env();
    proof_opts.quiet = quiet;
    let proof = kekkai::launch::run(&learned_plan, &args.command, &proof_opts)?;
    if let Some(e) = &proof.setup_error {
        return Err(Error::Launch(e.clone()));
    }
    let same = proof.exit_code == seen.exit_code;
    if same {
        if !quiet {
            log::notice(&format!(
                "proof: under the learned policy the program ended as in the learning run ({})",
                ended_text(&proof)
            ));
        }
        Ok(0)
    } else {
        log::error(&format!(
            "proof failed: under the learned policy the program ended with {}, in the learning run with {}",
            ended_text(&proof),
            ended_text(&seen)
        ));
        Ok(PROOF_FAILED)
    }
}

/// Ended by a signal the caller sent (Ctrl-C, SIGTERM), as a service is stopped.
fn by_signal(o: &Outcome) -> bool {
    matches!(o.ended, Ended::Signaled(s) if s == libc::SIGINT || s == libc::SIGTERM)
        || matches!(o.ended, Ended::Exited(130 | 143))
}

fn ended_text(o: &Outcome) -> String {
    if o.timed_out {
        return format!("stopped after the duration, exit status {}", o.exit_code);
    }
    match o.ended {
        Ended::Exited(c) => format!("exit status {c}"),
        Ended::Signaled(s) => format!("signal {s}"),
    }
}

fn command_line(cmd: &[OsString]) -> String {
    cmd.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The commands an earlier learned policy names in its header.
fn commands_of(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("# Learned by"))
        .skip(1)
        .map_while(|l| l.strip_prefix("#   "))
        .map(str::to_string)
        .collect()
}

/// `extends:` of an earlier policy, as `-p` reads it: relative paths are relative to that
/// policy's directory.
fn resolve_extends(ext: &str, old: &Path) -> String {
    let is_path = ext.contains('/') || ext.ends_with(".yaml") || ext.ends_with(".yml");
    if !is_path || Path::new(ext).is_absolute() {
        return ext.to_string();
    }
    let dir = old.parent().unwrap_or(Path::new("."));
    dir.join(ext).to_string_lossy().into_owned()
}

/// How the learned policy names BASE: a shipped name as such, a file by its absolute path (the
/// learned policy may be written elsewhere).
fn extends_value(source: &PolicySource) -> Result<String, Error> {
    let path: PathBuf = match source {
        PolicySource::Shipped(name) => return Ok((*name).to_string()),
        PolicySource::File(p) => p.clone(),
        PolicySource::Found(f) => f.shown(),
    };
    let abs = std::fs::canonicalize(&path)
        .map_err(|e| Error::Host(format!("{}: {}", path.display(), policy::describe_io(&e))))?;
    Ok(abs.to_string_lossy().into_owned())
}
