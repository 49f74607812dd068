//! The drop-in as typed lines: every systemd directive kekkai may write, the values in their
//! formats, the comments that explain them, and the one place all of it becomes text.
//!
//! Section writers never format a directive or wrap a comment themselves: they push
//! [`Line`]s onto a [`Unit`], and [`render`] writes them. Formats: byte amounts in the largest
//! exact binary unit (`512M` is 512 × 1024², which is how systemd and tmpfs read the suffixes),
//! plain bytes when no unit divides them, `infinity` for no limit; durations in whole seconds
//! (`RuntimeMaxSec=60`), else `ms`/`us`; `CPUQuota=` as a percentage of one CPU (1.5 CPUs →
//! `150%`). Comments are wrapped at [`WIDTH`] columns, control characters replaced.

use std::path::Path;
use std::time::Duration;

use crate::plan::units::format_size;

/// Defines [`Directive`] from the directives' names as systemd spells them.
macro_rules! directives {
    ($($name:ident),* $(,)?) => {
        /// A directive kekkai may write (all of them known to systemd 252 and later).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Directive {
            $(
                #[doc = concat!("`", stringify!($name), "=`")]
                $name,
            )*
        }

        impl Directive {
            /// Every directive, in the order of the sections that write them.
            pub const ALL: &[Directive] = &[$(Directive::$name),*];

            /// The name as systemd spells it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Directive::$name => stringify!($name),)*
                }
            }
        }

        /// Every directive's name (see [`Directive`]).
        pub const DIRECTIVES: &[&str] = &[$(stringify!($name)),*];
    };
}

directives! {
    User,
    Group,
    SupplementaryGroups,
    WorkingDirectory,
    RootDirectory,
    ProtectSystem,
    ProtectHome,
    PrivateTmp,
    TemporaryFileSystem,
    BindPaths,
    BindReadOnlyPaths,
    InaccessiblePaths,
    NoExecPaths,
    ProtectProc,
    ProcSubset,
    PrivateDevices,
    PrivateMounts,
    PrivateNetwork,
    PrivateIPC,
    ProtectHostname,
    PrivateUsers,
    RestrictNamespaces,
    Environment,
    PassEnvironment,
    UnsetEnvironment,
    MemoryMax,
    MemoryHigh,
    MemorySwapMax,
    TasksMax,
    CPUQuota,
    AllowedCPUs,
    CPUWeight,
    IOWeight,
    LimitNOFILE,
    LimitNPROC,
    LimitCORE,
    LimitFSIZE,
    LimitAS,
    LimitCPU,
    LimitSTACK,
    LimitMEMLOCK,
    RuntimeMaxSec,
    TimeoutStopSec,
    CapabilityBoundingSet,
    AmbientCapabilities,
    NoNewPrivileges,
    ProtectKernelTunables,
    ProtectKernelModules,
    ProtectKernelLogs,
    ProtectControlGroups,
    ProtectClock,
    LockPersonality,
    RestrictRealtime,
    RestrictSUIDSGID,
    SystemCallArchitectures,
    SystemCallFilter,
    SystemCallErrorNumber,
    SystemCallLog,
    RestrictAddressFamilies,
    SocketBindAllow,
    SocketBindDeny,
}

/// A directive's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `yes`.
    Yes,
    /// A keyword: `strict`, `tmpfs`, `invisible`, `native`, `none`, `tcp`.
    Word(&'static str),
    /// Text already in unit-file syntax (escaped paths, `path:options`, `~list`).
    Text(String),
    /// Words joined by spaces (capabilities, syscalls, variable names); none: empty.
    Words(Vec<String>),
    /// A number (ids, weights, a task count).
    Number(u64),
    /// A resource limit's count, `infinity` for none.
    Count(u64),
    /// Bytes (see [`bytes`]).
    Bytes(u64),
    /// A time span: whole seconds (`60`), else `ms` or `us`.
    Span(Duration),
    /// CPU time in thousandths of a CPU, written as a percentage of one.
    CpuQuota(u64),
}

impl Value {
    fn render(&self) -> String {
        match self {
            Value::Yes => "yes".into(),
            Value::Word(w) => (*w).into(),
            Value::Text(t) => t.clone(),
            Value::Words(w) => w.join(" "),
            Value::Number(n) => n.to_string(),
            Value::Count(n) => count(*n),
            Value::Bytes(n) => bytes(*n),
            Value::Span(d) => span(*d),
            Value::CpuQuota(m) => cpu_quota(*m),
        }
    }
}

/// `Name=value`, and the comment that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The directive.
    pub directive: Directive,
    /// Its value.
    pub value: Value,
    /// Why it is there or what it leaves out (a comment after it).
    pub why: Option<String>,
}

/// One element of the drop-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `[Name]`.
    Section(&'static str),
    /// A blank line and `# --- title`.
    Heading(&'static str),
    /// A directive.
    Set(Setting),
    /// A comment paragraph, wrapped.
    Note(String),
    /// An indented list item in a comment, wrapped with a hanging indent.
    Item(String),
    /// A `- ` bullet in a comment, wrapped with a hanging indent.
    Bullet(String),
    /// One comment line as is (tables); empty: a bare `#`.
    Verbatim(String),
}

/// The drop-in being built.
#[derive(Debug, Default)]
pub struct Unit {
    /// The lines, in order.
    pub lines: Vec<Line>,
}

impl Unit {
    /// `[name]`.
    pub fn section(&mut self, name: &'static str) {
        self.lines.push(Line::Section(name));
    }

    /// A section of the drop-in's comments: `# --- title`.
    pub fn heading(&mut self, title: &'static str) {
        self.lines.push(Line::Heading(title));
    }

    /// A directive.
    pub fn set(&mut self, directive: Directive, value: Value) {
        self.lines.push(Line::Set(Setting {
            directive,
            value,
            why: None,
        }));
    }

    /// A directive, and the comment that explains it.
    pub fn set_why(&mut self, directive: Directive, value: Value, why: impl Into<String>) {
        self.lines.push(Line::Set(Setting {
            directive,
            value,
            why: Some(why.into()),
        }));
    }

    /// A comment paragraph.
    pub fn note(&mut self, text: impl Into<String>) {
        self.lines.push(Line::Note(text.into()));
    }

    /// An indented list item.
    pub fn item(&mut self, text: impl Into<String>) {
        self.lines.push(Line::Item(text.into()));
    }

    /// A `- ` bullet.
    pub fn bullet(&mut self, text: impl Into<String>) {
        self.lines.push(Line::Bullet(text.into()));
    }

    /// One comment line as is.
    pub fn verbatim(&mut self, text: impl Into<String>) {
        self.lines.push(Line::Verbatim(text.into()));
    }
}

/// Comment lines are wrapped at this width.
pub const WIDTH: usize = 96;

/// The drop-in's text.
pub fn render(lines: &[Line]) -> String {
    let mut out = Text::default();
    for line in lines {
        match line {
            Line::Section(name) => out.line(&format!("[{name}]")),
            Line::Heading(title) => {
                out.line("");
                out.line(&format!("# --- {title}"));
            }
            Line::Set(s) => {
                out.line(&format!("{}={}", s.directive.name(), s.value.render()));
                if let Some(why) = &s.why {
                    out.wrapped("# ", "# ", why);
                }
            }
            Line::Note(text) => out.wrapped("# ", "# ", text),
            Line::Item(text) => out.wrapped("#   ", "#     ", text),
            Line::Bullet(text) => out.wrapped("# - ", "#   ", text),
            Line::Verbatim(text) => {
                let clean = comment_safe(text);
                if clean.is_empty() {
                    out.line("#");
                } else {
                    out.line(&format!("# {clean}"));
                }
            }
        }
    }
    out.0
}

/// The text being written.
#[derive(Default)]
struct Text(String);

impl Text {
    fn line(&mut self, s: &str) {
        self.0.push_str(s);
        self.0.push('\n');
    }

    /// Words of `text` on lines of at most [`WIDTH`], the first starting with `first`, the rest
    /// with `rest`.
    fn wrapped(&mut self, first: &str, rest: &str, text: &str) {
        let clean = comment_safe(text);
        let mut line = first.to_owned();
        let mut empty = true;
        for word in clean.split_whitespace() {
            if !empty && line.len() + 1 + word.len() > WIDTH {
                self.line(&line);
                line = rest.to_owned();
                empty = true;
            }
            if !empty {
                line.push(' ');
            }
            line.push_str(word);
            empty = false;
        }
        if !empty {
            self.line(&line);
        }
    }
}

/// Control characters can't appear in a comment line.
fn comment_safe(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\n' { '?' } else { c })
        .collect()
}

/// Bytes in the largest exact binary unit (`512M`), `infinity` for no limit.
pub fn bytes(n: u64) -> String {
    if n == u64::MAX {
        return "infinity".into();
    }
    format_size(n)
}

/// A count, `infinity` for no limit.
fn count(n: u64) -> String {
    if n == u64::MAX {
        "infinity".into()
    } else {
        n.to_string()
    }
}

/// Millicpus as a percentage of one CPU: 1500 → `150%`, 1555 → `155.5%`.
fn cpu_quota(millis: u64) -> String {
    match millis % 10 {
        0 => format!("{}%", millis / 10),
        tenth => format!("{}.{tenth}%", millis / 10),
    }
}

/// A systemd time span: `60`, `1500ms`, `250us`.
fn span(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else if d.subsec_nanos() % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}us", d.as_micros().max(1))
    }
}

/// `%` starts a specifier in unit files.
pub fn escape_specifiers(s: &str) -> String {
    s.replace('%', "%%")
}

/// A path as one word of a unit file's path list (`bind`: colons escaped, as BindPaths= splits
/// source and target there). None when it can't be written safely: whitespace, quotes and
/// control characters would need quoting rules that differ between directives.
pub fn path_word(p: &Path, bind: bool) -> Option<String> {
    let s = p.to_str()?;
    if s.chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '"' || c == '\'')
    {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%%"),
            '\\' => out.push_str("\\\\"),
            ':' if bind => out.push_str("\\:"),
            c => out.push(c),
        }
    }
    Some(out)
}

/// `"NAME=value"` for Environment=, or None when systemd would reject it (names are letters,
/// digits and `_`, not starting with a digit; values have no control characters).
pub fn env_word(name: &str, value: &str) -> Option<String> {
    let name_ok = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.chars().next().is_some_and(|c| !c.is_ascii_digit());
    if !name_ok || value.chars().any(char::is_control) {
        return None;
    }
    let mut out = String::from("\"");
    for c in format!("{name}={value}").chars() {
        match c {
            '%' => out.push_str("%%"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.push('"');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("/a b", false, None)]
    #[case("/a\"b", false, None)]
    #[case("/a:b", true, Some("/a\\:b"))]
    #[case("/a:b", false, Some("/a:b"))]
    #[case("/50%", false, Some("/50%%"))]
    #[case("/a\\b", false, Some("/a\\\\b"))]
    #[case("/a\nb", false, None)]
    fn path_words(#[case] p: &str, #[case] bind: bool, #[case] want: Option<&str>) {
        assert_eq!(path_word(Path::new(p), bind).as_deref(), want);
    }

    #[rstest]
    #[case(0, "0")]
    #[case(4096, "4K")]
    #[case(512 << 20, "512M")]
    #[case(3 << 29, "1536M")]
    #[case(1 << 30, "1G")]
    #[case(1000, "1000")]
    #[case(u64::MAX, "infinity")]
    fn byte_amounts(#[case] n: u64, #[case] want: &str) {
        assert_eq!(bytes(n), want);
    }

    #[rstest]
    #[case(1000, "100%")]
    #[case(1500, "150%")]
    #[case(250, "25%")]
    #[case(1, "0.1%")]
    fn cpu_quotas(#[case] millis: u64, #[case] want: &str) {
        assert_eq!(cpu_quota(millis), want);
    }

    #[rstest]
    #[case(Duration::from_secs(60), "60")]
    #[case(Duration::from_millis(1500), "1500ms")]
    #[case(Duration::from_micros(250), "250us")]
    #[case(Duration::from_nanos(10), "1us")]
    fn spans(#[case] d: Duration, #[case] want: &str) {
        assert_eq!(span(d), want);
    }

    #[test]
    fn the_names_are_the_directives() {
        assert_eq!(Directive::ALL.len(), DIRECTIVES.len());
        for (d, name) in Directive::ALL.iter().zip(DIRECTIVES) {
            assert_eq!(d.name(), *name);
        }
        assert_eq!(Directive::CPUQuota.name(), "CPUQuota");
    }

    #[test]
    fn a_setting_is_followed_by_its_comment_and_comments_wrap() {
        let mut u = Unit::default();
        u.section("Service");
        u.heading("privileges");
        u.set(Directive::NoNewPrivileges, Value::Yes);
        u.set_why(Directive::MemoryMax, Value::Bytes(512 << 20), "one two");
        u.set(Directive::CapabilityBoundingSet, Value::Words(Vec::new()));
        u.note("word ".repeat(30));
        u.verbatim("");
        u.item("a\u{7}b");
        let text = render(&u.lines);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..6],
            [
                "[Service]",
                "",
                "# --- privileges",
                "NoNewPrivileges=yes",
                "MemoryMax=512M",
                "# one two"
            ]
        );
        assert_eq!(lines[6], "CapabilityBoundingSet=");
        assert!(lines[7].starts_with("# word word") && lines[7].len() <= WIDTH);
        assert!(lines[8].starts_with("# word"));
        assert_eq!(lines[9], "#");
        assert_eq!(lines[10], "#   a?b");
    }
}
