//! Another launcher's command line (`kekkai audit --wrap 'LAUNCHER ARGS…'`), split into words
//! as a POSIX shell would split them (quotes and backslashes; no variables, globs or
//! redirections: nothing runs through a shell), with `{probe}` standing for the path of the
//! probe's copy. Without `{probe}` the copy's path is appended as the command; with it, the
//! command line must name the probe as the sandbox sees it (`-v {probe}:/probe:ro IMAGE
//! /probe`). The probe's own arguments always come last.

use std::ffi::OsString;
use std::path::Path;

/// The placeholder for the probe's path on the host.
pub const PLACEHOLDER: &str = "{probe}";

/// A launcher's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrapper {
    /// The words, `{probe}` still in them.
    pub words: Vec<String>,
}

impl Wrapper {
    /// Splits `line`. Errors: unbalanced quotes, an empty line.
    pub fn parse(line: &str) -> Result<Wrapper, String> {
        let words = shlex::split(line)
            .ok_or_else(|| format!("--wrap {line:?}: unbalanced quotes or a trailing backslash"))?;
        if words.is_empty() {
            return Err("--wrap: an empty command line".into());
        }
        Ok(Wrapper { words })
    }

    /// The launcher's program (the first word).
    pub fn program(&self) -> &str {
        self.words.first().map_or("", String::as_str)
    }

    /// A short name: the program's file name.
    pub fn label(&self) -> String {
        Path::new(self.program()).file_name().map_or_else(
            || self.program().to_owned(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    /// The command line as one string, quoted where a word needs it.
    pub fn shown(&self) -> String {
        shlex::try_join(self.words.iter().map(String::as_str))
            .unwrap_or_else(|_| self.words.join(" "))
    }

    /// The command to run: the words with `{probe}` replaced by `probe`, then `probe` itself
    /// unless the placeholder was used, then `args`.
    pub fn command(&self, probe: &Path, args: Vec<OsString>) -> Vec<OsString> {
        let shown = probe.as_os_str().to_string_lossy();
        let mut used = false;
        let mut out: Vec<OsString> = self
            .words
            .iter()
            .map(|w| {
                if w.contains(PLACEHOLDER) {
                    used = true;
                    OsString::from(w.replace(PLACEHOLDER, &shown))
                } else {
                    OsString::from(w)
                }
            })
            .collect();
        if !used {
            out.push(probe.as_os_str().to_owned());
        }
        out.extend(args);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::plain("bwrap --ro-bind / / --dev /dev", &["bwrap", "--ro-bind", "/", "/", "--dev", "/dev"])]
    #[case::quotes("env 'A=b c' \"D=e f\" x\\ y", &["env", "A=b c", "D=e f", "x y"])]
    #[case::no_shell("sh -c 'echo $HOME' ; rm -rf / > x", &["sh", "-c", "echo $HOME", ";", "rm", "-rf", "/", ">", "x"])]
    fn splits_like_a_shell_without_one(#[case] line: &str, #[case] want: &[&str]) {
        assert_eq!(Wrapper::parse(line).unwrap().words, want);
    }

    #[rstest]
    #[case::unbalanced("bwrap 'oops")]
    #[case::empty("   ")]
    fn refuses(#[case] line: &str) {
        assert!(Wrapper::parse(line).is_err());
    }

    #[rstest]
    #[case::appended("firejail --quiet", &["firejail", "--quiet", "/t/p", "--context", "{}"])]
    #[case::placeholder(
        "podman run -v {probe}:/probe:ro img /probe",
        &["podman", "run", "-v", "/t/p:/probe:ro", "img", "/probe", "--context", "{}"]
    )]
    #[case::placeholder_as_command("env {probe}", &["env", "/t/p", "--context", "{}"])]
    fn the_probe_goes_where_the_placeholder_says(#[case] line: &str, #[case] want: &[&str]) {
        let w = Wrapper::parse(line).unwrap();
        let got = w.command(Path::new("/t/p"), vec!["--context".into(), "{}".into()]);
        assert_eq!(got, want.iter().map(OsString::from).collect::<Vec<_>>());
    }

    #[test]
    fn labels_and_shown() {
        let w = Wrapper::parse("/usr/bin/bwrap --setenv A 'b c'").unwrap();
        assert_eq!(w.label(), "bwrap");
        assert_eq!(w.shown(), "/usr/bin/bwrap --setenv A 'b c'");
    }
}
