//! The plain `run` command line read without clap: `kekkai [-q|-v...] run [-p NAME|--policy
//! NAME] [--report FILE] [--name NAME] [-d] [--] COMMAND [ARGS]...`, the line benches, scripts
//! and systemd units type. Building clap's definitions of every command costs more than the
//! rest of a short launch's start (docs/performance.md, item 17); this reads exactly that
//! grammar into the same [`Cli`] clap would build, and gives up (`None`) on any other word, so
//! that help, errors, completions, the overrides and every other option stay clap's. A unit test
//! parses a table of command lines both ways and requires the same result.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use super::{Cli, Cmd, PolicyArgs, RunArgs};

/// The plain `run` command line, as clap would read it; `None` for anything else (then clap
/// reads it).
pub(crate) fn plain_run(argv: &[OsString]) -> Option<Cli> {
    let mut words = argv.get(1..)?.iter();
    let mut globals = Globals::default();
    // The global flags before the command's name.
    loop {
        let w = words.next()?.to_str()?;
        if w == "run" {
            break;
        }
        globals.flag(w, false)?;
    }
    // A global flag given after the command's name is clap's value for it: `-vv run -v` is
    // one `-v`.
    let before = std::mem::take(&mut globals);
    let mut run = RunWords::default();
    let mut command: Vec<OsString> = Vec::new();
    while let Some(word) = words.next() {
        let Some(w) = word.to_str() else {
            // A word that is not UTF-8 can only be the program (clap refuses an option that
            // is not text).
            if word.as_bytes().starts_with(b"-") {
                return None;
            }
            command.push(word.clone());
            break;
        };
        if w == "--" {
            break;
        }
        if !w.starts_with('-') {
            command.push(word.clone());
            break;
        }
        if let Some((name, value)) = w.split_once('=') {
            run.long(name, value)?;
            continue;
        }
        match w {
            "-p" | "--policy" | "--report" | "--name" => {
                let value = words.next()?.to_str()?;
                run.long(w, value)?;
            }
            _ if globals.flag(w, true).is_some() => {}
            _ => return None,
        }
        // `-d` arrives here too (through `globals.flag`, which takes it after `run`).
    }
    command.extend(words.cloned());
    if globals.verbose == 0 {
        globals.verbose = before.verbose;
    }
    globals.quiet |= before.quiet;
    if command.is_empty() || (globals.quiet && globals.verbose > 0) {
        return None;
    }
    // A program that reads as podman's `-v SRC:DST` is clap's path's to refuse or run.
    if command
        .first()
        .and_then(|c| c.to_str())
        .is_some_and(super::flags::looks_like_a_volume)
    {
        return None;
    }
    Some(Cli {
        verbose: globals.verbose,
        quiet: globals.quiet,
        cmd: Cmd::Run(RunArgs {
            policy: PolicyArgs {
                policy: run.policy,
                bind: Vec::new(),
                ro_bind: Vec::new(),
                tmpfs: Vec::new(),
                setenv: Vec::new(),
                unsetenv: Vec::new(),
                chdir: None,
                hostname: None,
                image: None,
                net: None,
                publish: Vec::new(),
                pty: false,
                no_pty: false,
            },
            report: run.report,
            name: run.name,
            detach: globals.detach,
            command,
        }),
    })
}

/// `-q`, `-v` (counted) anywhere before the command, and `run`'s `-d`.
#[derive(Default)]
struct Globals {
    quiet: bool,
    verbose: u8,
    detach: bool,
}

impl Globals {
    /// Takes a flag word (`--quiet`, `-v`, a cluster such as `-vv` or `-qd`); `None` when it is
    /// not one of these, or one clap refuses (a flag given twice).
    fn flag(&mut self, w: &str, after_run: bool) -> Option<()> {
        match w {
            "--quiet" => return self.quiet(),
            "--verbose" => return self.verbose(),
            "--detach" if after_run => return self.detach(),
            _ => {}
        }
        let letters = w.strip_prefix('-')?;
        if letters.is_empty() || letters.starts_with('-') {
            return None;
        }
        for c in letters.chars() {
            match c {
                'q' => self.quiet()?,
                'v' => self.verbose()?,
                'd' if after_run => self.detach()?,
                _ => return None,
            }
        }
        Some(())
    }

    fn quiet(&mut self) -> Option<()> {
        (!std::mem::replace(&mut self.quiet, true)).then_some(())
    }

    fn verbose(&mut self) -> Option<()> {
        self.verbose = self.verbose.checked_add(1)?;
        Some(())
    }

    fn detach(&mut self) -> Option<()> {
        (!std::mem::replace(&mut self.detach, true)).then_some(())
    }
}

/// `run`'s options that take a value.
#[derive(Default)]
struct RunWords {
    policy: Option<String>,
    report: Option<String>,
    name: Option<String>,
}

impl RunWords {
    /// `NAME VALUE` or `NAME=VALUE`; `None` for another name, a value clap would read
    /// differently (empty, or starting with `-`), or an option given twice.
    fn long(&mut self, name: &str, value: &str) -> Option<()> {
        if value.is_empty() || value.starts_with('-') {
            return None;
        }
        let slot = match name {
            "-p" | "--policy" => &mut self.policy,
            "--report" => &mut self.report,
            "--name" => &mut self.name,
            _ => return None,
        };
        slot.is_none().then(|| *slot = Some(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};
    use std::os::unix::ffi::OsStringExt;

    /// What a parse of `run` gives the launch, comparable.
    fn seen(cli: &Cli, m: Option<&clap::ArgMatches>) -> String {
        let Cmd::Run(r) = &cli.cmd else {
            return "not run".into();
        };
        format!(
            "v={} q={} policy={:?} report={:?} name={:?} detach={} command={:?} overrides={:?}",
            cli.verbose,
            cli.quiet,
            r.policy.policy,
            r.report,
            r.name,
            r.detach,
            r.command,
            super::super::overrides(&r.policy, m),
        )
    }

    fn argv<W: AsRef<[u8]>>(words: &[W]) -> Vec<OsString> {
        std::iter::once(&b"kekkai"[..])
            .chain(words.iter().map(AsRef::as_ref))
            .map(|w| OsString::from_vec(w.to_vec()))
            .collect()
    }

    /// A table's line: words between `|`, `<ff>` and `<fe>` for bytes that are not UTF-8.
    fn words(line: &str) -> Vec<Vec<u8>> {
        if line.is_empty() {
            return Vec::new();
        }
        line.split('|')
            .map(|w| {
                w.replace("<ff>", "\u{1}")
                    .replace("<fe>", "\u{2}")
                    .bytes()
                    .map(|b| match b {
                        1 => 0xff,
                        2 => 0xfe,
                        b => b,
                    })
                    .collect()
            })
            .collect()
    }

    /// Both ways: the fast path's result must be clap's, and every line it takes, clap takes.
    fn both<W: AsRef<[u8]>>(words: &[W]) -> (Option<String>, Result<String, String>) {
        let argv = argv(words);
        let fast = plain_run(&argv).map(|c| seen(&c, None));
        let clap = Cli::command()
            .try_get_matches_from(&argv)
            .map_err(|e| e.kind().to_string())
            .and_then(|m| {
                let cli = Cli::from_arg_matches(&m).map_err(|e| e.to_string())?;
                let sub = m.subcommand().map(|(_, s)| s);
                Ok(seen(&cli, sub))
            });
        (fast, clap)
    }

    #[rstest::rstest]
    #[case("run|/bin/true")]
    #[case("run|--|/bin/true")]
    #[case("-q|run|--|/bin/true")]
    #[case("--quiet|run|true")]
    #[case("run|-q|true")]
    #[case("-v|run|true")]
    #[case("-vv|run|-v|true")]
    #[case("--verbose|-v|run|--verbose|--|true")]
    #[case("-vvvv|run|true")]
    #[case("-vv|run|--|true")]
    #[case("-v|run|-vv|true")]
    #[case("-q|run|-q|true")]
    #[case("--quiet|run|-q|true")]
    #[case("run|-p|default|true")]
    #[case("run|--policy|service|--|/bin/true")]
    #[case("run|--policy=/etc/x.yaml|true")]
    #[case("-q|run|-p|a.yaml|-q|x")]
    #[case("run|-p|a|-p|b|true")]
    #[case("run|-p|a|--policy=b|true")]
    #[case("run|-pdefault|true")]
    #[case("run|-p=default|true")]
    #[case("run|--policy=|true")]
    #[case("run|-p|-|true")]
    #[case("run|-p|--|true")]
    #[case("run|-p")]
    #[case("run|--policy")]
    #[case("run|-p|a")]
    #[case("run")]
    #[case("run|--")]
    #[case("-q|run|-p|default|--")]
    #[case("run|-d|sleep|1")]
    #[case("run|--detach|--name|web|sleep|1")]
    #[case("run|-dq|sleep")]
    #[case("run|-qd|sleep")]
    #[case("run|-d|-d|sleep")]
    #[case("run|-dd|sleep")]
    #[case("-d|run|sleep")]
    #[case("run|--name=web|--report|/tmp/r.json|true")]
    #[case("run|--report=-|true")]
    #[case("run|--report|-|true")]
    #[case("run|--name|a|--name|b|true")]
    #[case("-qv|run|true")]
    #[case("-vq|run|true")]
    #[case("-q|-v|run|true")]
    #[case("-q|run|-v|true")]
    #[case("-q|-q|run|true")]
    #[case("-qq|run|true")]
    #[case("run|ls|-l|--|-p|x")]
    #[case("run|--|--|x")]
    #[case("run|--|-p|x")]
    #[case("run|true|--help")]
    #[case("run|true|-q")]
    #[case("run|-x|true")]
    #[case("run|--frobnicate|true")]
    #[case("run|--die-with-parent|true")]
    #[case("run|-|true")]
    #[case("run|--help")]
    #[case("run|-h")]
    #[case("--version")]
    #[case("-V")]
    #[case("--help")]
    #[case("")]
    #[case("-q")]
    #[case("check|default")]
    #[case("-q|check|run")]
    #[case("run|--ro-bind|/data|/bin/true")]
    #[case("run|--ro-bind=/data|/bin/true")]
    #[case("run|--bind|/a:/b|--|true")]
    #[case("run|--tmpfs|/x|--setenv|A=b|true")]
    #[case("run|--net|user|-p|default|true")]
    #[case("run|--pty|true")]
    #[case("run|--no-pty|true")]
    #[case("run|--image|alpine")]
    #[case("run|--quiet=1|true")]
    #[case("run|--verbose=2|true")]
    #[case("--quiet|run|--quiet|true")]
    #[case("run|-<ff>|true")]
    #[case("run|<ff><fe>|a<ff>")]
    #[case("run|--|<ff>")]
    #[case("run|-p|<ff>|true")]
    #[case("run|--policy=<ff>|true")]
    #[case("ru<ff>n|true")]
    #[case("<ff>|run|true")]
    #[case("RUN|true")]
    #[case("run|-p|default|--name|n|-d|-v|--|sh|-c|exit 3")]
    #[case("run|-vp|default|true")]
    #[case("run|-pv|true")]
    #[case("run|--report")]
    #[case("run|--name|--|true")]
    #[case("run|--name=|true")]
    #[case("run|--pol|default|true")]
    #[case("run|--policy|default=x|true")]
    #[case("run|--policy=a=b|true")]
    #[case("run|-p|a b|true arg")]
    #[case("run||x")]
    #[case("-v||run")]
    fn reads_as_clap_does(#[case] line: &str) {
        let words = words(line);
        let (fast, clap) = both(&words);
        if let Some(fast) = fast {
            assert_eq!(Ok(fast), clap, "{words:?}");
        }
    }

    /// The lines the fast path must take (else it would save nothing where it matters).
    #[rstest::rstest]
    #[case("-q|run|--|/bin/true")]
    #[case("run|-p|service|--|/usr/bin/env")]
    #[case("-v|run|--policy=/etc/kekkai/web.yaml|--name|web|web")]
    #[case("run|<ff>")]
    fn takes_the_plain_lines(#[case] line: &str) {
        assert!(both(&words(line)).0.is_some(), "{line}");
    }

    /// A program that reads as podman's volume is left to clap's path, which refuses it
    /// after `-v` (`parse`).
    #[rstest::rstest]
    #[case("run|-v|/src:/dst|true")]
    #[case("run|./a:/b")]
    fn leaves_a_volume_to_clap(#[case] line: &str) {
        assert!(both(&words(line)).0.is_none(), "{line}");
    }

    /// Every word from a small alphabet, in every order up to three words after `run` (and one
    /// before it): the fast path never reads a line differently from clap.
    #[test]
    fn agrees_with_clap_on_every_short_line() {
        let alphabet: &[&[u8]] = &[
            b"-q",
            b"-v",
            b"-d",
            b"-p",
            b"--",
            b"x",
            b"-qv",
            b"-vv",
            b"--policy=p",
            b"--name",
            b"--report=r",
            b"-",
            b"--bind",
            b"\xff",
        ];
        let mut n = 0;
        for first in [None, Some(&b"-v"[..]), Some(&b"-q"[..])] {
            let mut stack: Vec<Vec<&[u8]>> = vec![Vec::new()];
            while let Some(tail) = stack.pop() {
                let mut words: Vec<&[u8]> = first.into_iter().collect();
                words.push(b"run");
                words.extend(tail.iter().copied());
                let (fast, clap) = both(&words);
                if let Some(fast) = fast {
                    assert_eq!(Ok(fast), clap, "{words:?}");
                    n += 1;
                }
                if tail.len() < 3 {
                    for w in alphabet {
                        let mut t = tail.clone();
                        t.push(w);
                        stack.push(t);
                    }
                }
            }
        }
        assert!(n > 200, "{n} lines taken");
    }
}
