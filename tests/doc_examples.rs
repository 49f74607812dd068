//! `docs/policy.md`, held to the code: every ```yaml block is loaded and compiled, and the launch
//! step table is compared with the order `kekkai explain` prints. The probe counts in README.md
//! and SECURITY.md are compared with the audit's battery.
//!
//! A block is a full policy when it has a top-level `version:` line; any other block is a
//! fragment, checked as `version: 1` followed by the block. A block whose first line is
//! `# NAME.yaml` is written to a directory under that name before any block is checked, so that
//! another block can `extends: ./NAME.yaml` it. HTML comments on the lines right above a block
//! say how to check it:
//!
//! - `<!-- invalid: PATH, PATH... -->`: loading or compiling must fail, with errors at exactly
//!   these key paths (in any order);
//! - `<!-- caller: root -->` or `<!-- caller: rootless -->`: check it for that caller only
//!   (otherwise for both, unprivileged and root, in-process: nothing is launched);
//! - `<!-- no-check: REASON -->`: not checked (for what can't compile on any machine).
//!
//! A ```console block right after a yaml block is compared with what kekkai prints for it: the
//! error lines of an invalid block (the `$` and `kekkai:` lines aside), or the beginning of
//! `kekkai explain` up to a `...` line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};

use kekkai::caller::Caller;
use kekkai::plan::steps::{ORDER, Side};
use kekkai::policy::{self, PolicySource};

use support::Scratch;

/// The document, as compiled into this test (a change to it rebuilds the test).
const DOC: &str = include_str!("../docs/policy.md");

/// One ```yaml block of the document.
#[derive(Debug)]
struct Block {
    /// Line of the opening fence, from 1.
    line: usize,
    /// The YAML, with a final line break.
    text: String,
    /// `key: value` of the HTML comments right above the fence.
    marks: Vec<(String, String)>,
    /// The lines of a ```console block that follows, if any.
    console: Option<Vec<String>>,
}

impl Block {
    fn mark(&self, key: &str) -> Option<&str> {
        self.marks
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `typo.yaml` for a block that starts with `# typo.yaml`.
    fn file_name(&self) -> Option<&str> {
        let first = self.text.lines().next()?;
        let name = first.strip_prefix("# ")?.trim_end();
        let ok = (name.ends_with(".yaml") || name.ends_with(".yml"))
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        ok.then_some(name)
    }

    /// Does it say `version:` at the top level?
    fn is_full_policy(&self) -> bool {
        self.text.lines().any(|l| l.starts_with("version:"))
    }

    fn what(&self) -> String {
        format!("docs/policy.md:{} (```yaml block)", self.line)
    }
}

const MARK_KEYS: [&str; 3] = ["invalid", "caller", "no-check"];

/// `<!-- key: value -->` → (key, value), for the keys this test knows.
fn parse_mark(line: &str) -> Option<(String, String)> {
    let inner = line
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim();
    let (key, value) = inner.split_once(':')?;
    let key = key.trim();
    MARK_KEYS
        .contains(&key)
        .then(|| (key.to_owned(), value.trim().to_owned()))
}

/// Every ```yaml block, with its marks and the ```console block after it. Panics on an
/// unclosed fence and on a mark that no yaml block follows.
fn blocks(doc: &str) -> Vec<Block> {
    let lines: Vec<&str> = doc.lines().collect();
    let fence_end = |from: usize| {
        (from..lines.len())
            .find(|&j| lines[j].trim() == "```")
            .unwrap_or_else(|| panic!("docs/policy.md:{from}: unclosed code fence"))
    };
    let mut out = Vec::new();
    let mut used_marks = 0;
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = lines[i].trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let end = fence_end(i + 1);
        if info.trim() == "yaml" {
            let mut marks = Vec::new();
            let mut k = i;
            while k > 0 {
                match parse_mark(lines[k - 1]) {
                    Some(m) => marks.insert(0, m),
                    None => break,
                }
                k -= 1;
            }
            used_marks += marks.len();
            let mut text: String = lines[i + 1..end].iter().map(|l| format!("{l}\n")).collect();
            if text.is_empty() {
                text.push('\n');
            }
            let next = (end + 1..lines.len()).find(|&j| !lines[j].trim().is_empty());
            let console = next.filter(|&j| lines[j].trim() == "```console").map(|j| {
                lines[j + 1..fence_end(j + 1)]
                    .iter()
                    .map(|l| (*l).to_owned())
                    .collect()
            });
            out.push(Block {
                line: i + 1,
                text,
                marks,
                console,
            });
        }
        i = end + 1;
    }
    let all_marks = lines.iter().filter(|l| parse_mark(l).is_some()).count();
    assert_eq!(
        used_marks, all_marks,
        "a check mark (<!-- invalid/caller/no-check: ... -->) that is not right above a ```yaml block"
    );
    for l in &lines {
        let t = l.trim();
        if t.starts_with("<!--") && parse_mark(t).is_none() {
            panic!("unknown mark in docs/policy.md: {t} (known: {MARK_KEYS:?})");
        }
    }
    out
}

/// The callers a block is checked for, each with an existing working directory (the examples
/// bind `${PWD}`).
fn callers(block: &Block) -> Vec<(&'static str, Caller)> {
    let pwd = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rootless = ("rootless", support::with_pwd(support::rootless(), pwd));
    let root = ("root", support::with_pwd(support::root(), pwd));
    match block.mark("caller") {
        None => vec![rootless, root],
        Some("root") => vec![root],
        Some("rootless") => vec![rootless],
        Some(other) => panic!("{}: unknown caller `{other}`", block.what()),
    }
}

/// What kekkai prints, with the temporary directory taken out of file names.
fn shown(text: &str, dir: &Path) -> String {
    text.replace(&format!("{}/", dir.display()), "")
}

#[derive(Debug, Default)]
struct Counts {
    blocks: usize,
    full: usize,
    fragments: usize,
    valid: usize,
    invalid: usize,
    skipped: usize,
    consoles: usize,
}

#[test]
fn every_yaml_example_is_true() {
    let blocks = blocks(DOC);
    let fences = DOC.lines().filter(|l| l.trim() == "```yaml").count();
    assert_eq!(blocks.len(), fences, "every ```yaml fence is a block");

    // Named blocks first, so that others can extend them.
    let dir = Scratch::new("doc-examples");
    let mut names: Vec<&str> = Vec::new();
    for b in &blocks {
        if let Some(name) = b.file_name() {
            assert!(
                !names.contains(&name),
                "{}: a second block called {name}",
                b.what()
            );
            names.push(name);
            dir.write(name, &b.text);
        }
    }

    let mut counts = Counts {
        blocks: blocks.len(),
        ..Counts::default()
    };
    let mut failures: Vec<String> = Vec::new();
    for b in &blocks {
        if let Some(reason) = b.mark("no-check") {
            assert!(
                !reason.is_empty(),
                "{}: say why it is not checked",
                b.what()
            );
            counts.skipped += 1;
            continue;
        }
        let path: PathBuf = match b.file_name() {
            Some(name) => dir.path().join(name),
            None if b.is_full_policy() => dir.write(&format!("block-{}.yaml", b.line), &b.text),
            None => dir.write(
                &format!("fragment-{}.yaml", b.line),
                format!("version: 1\n{}", b.text),
            ),
        };
        if b.is_full_policy() {
            counts.full += 1;
        } else {
            counts.fragments += 1;
        }
        let expected: Option<Vec<String>> = b.mark("invalid").map(|paths| {
            let mut v: Vec<String> = paths.split(',').map(|p| p.trim().to_owned()).collect();
            v.sort();
            v
        });
        if expected.is_some() {
            counts.invalid += 1;
        } else {
            counts.valid += 1;
        }
        if b.console.is_some() {
            counts.consoles += 1;
        }
        for (who, caller) in callers(b) {
            let source = PolicySource::File(path.clone());
            let result = policy::load(&source, &caller).and_then(|loaded| {
                kekkai::plan::compile(&loaded, &caller).map(|plan| (loaded, plan))
            });
            let here = format!("{} for the {who} caller", b.what());
            match (&expected, result) {
                (None, Ok((loaded, plan))) => {
                    if let Some(console) = &b.console {
                        let out = shown(&kekkai::explain::human(&loaded, &plan), dir.path());
                        if let Err(e) = explain_matches(console, &out) {
                            failures.push(format!("{here}: {e}"));
                        }
                    }
                }
                (None, Err(diags)) => failures.push(format!(
                    "{here}: should be valid, but:\n{}",
                    shown(&diags.to_string(), dir.path())
                )),
                (Some(want), Ok(_)) => failures.push(format!(
                    "{here}: marked invalid at {want:?}, but it loads and compiles"
                )),
                (Some(want), Err(diags)) => {
                    let mut got: Vec<String> = diags.0.iter().map(|d| d.path.clone()).collect();
                    got.sort();
                    let printed = shown(&diags.to_string(), dir.path());
                    if &got != want {
                        failures.push(format!(
                            "{here}: errors at {got:?}, the doc says {want:?}:\n{printed}"
                        ));
                    }
                    if let Some(console) = &b.console {
                        let doc_lines: Vec<&str> = console
                            .iter()
                            .map(String::as_str)
                            .filter(|l| !l.starts_with("$ ") && !l.starts_with("kekkai: "))
                            .collect();
                        let got_lines: Vec<&str> = printed.lines().collect();
                        if doc_lines != got_lines {
                            failures.push(format!(
                                "{here}: the console block after it says\n{}\nbut kekkai prints\n{}",
                                doc_lines.join("\n"),
                                got_lines.join("\n")
                            ));
                        }
                    }
                }
            }
        }
    }
    println!("{counts:?}");
    assert!(
        failures.is_empty(),
        "{} doc example(s) disagree with the code:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // The parser must have found what the document is made of.
    assert_eq!(
        counts.blocks,
        counts.full + counts.fragments + counts.skipped
    );
    assert!(counts.full > 0 && counts.fragments > 0 && counts.invalid > 0);
}

/// The doc's `kekkai explain` excerpt is the beginning of the real output, up to a `...` line.
/// File names are compared without `./` (the doc runs kekkai from the policy's directory).
fn explain_matches(console: &[String], out: &str) -> Result<(), String> {
    let mut doc = console.iter().map(String::as_str);
    match doc.next() {
        Some(cmd) if cmd.starts_with("$ kekkai explain") => {}
        other => {
            return Err(format!(
                "a console block after a valid policy is `$ kekkai explain ...`, not {other:?}"
            ));
        }
    }
    let mut got = out.lines();
    for (n, want) in doc.enumerate() {
        if want.trim() == "..." {
            return Ok(());
        }
        let line = got.next().unwrap_or("<end of output>");
        if want.replace("./", "") != line.replace("./", "") {
            return Err(format!(
                "line {} of the explain excerpt says\n  {want}\nbut kekkai prints\n  {line}\n\nfull output:\n{out}",
                n + 1
            ));
        }
    }
    Ok(())
}

#[test]
fn the_launch_step_table_is_explains_order() {
    let rows: Vec<Vec<String>> = DOC
        .lines()
        .filter_map(|l| {
            let cells: Vec<String> = l
                .trim()
                .strip_prefix('|')?
                .strip_suffix('|')?
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect();
            (cells.len() == 4
                && cells[0].parse::<u8>().is_ok()
                && (cells[1] == "parent" || cells[1] == "child"))
                .then_some(cells)
        })
        .collect();
    let want: Vec<Vec<String>> = ORDER
        .iter()
        .map(|info| {
            vec![
                info.number.to_string(),
                match info.side {
                    Side::Parent => "parent".to_owned(),
                    Side::Child => "child".to_owned(),
                },
                format!("`{}`", info.step.name()),
                info.what.to_owned(),
            ]
        })
        .collect();
    assert_eq!(
        rows, want,
        "the launch step table in docs/policy.md §1 must list steps::ORDER as `kekkai explain` prints it"
    );
}

/// The probe counts README.md and SECURITY.md give are the battery's: the total, each
/// "`CATEGORY.*` (N)" of the layer table, and the verdicts of every "Audit results" row (each
/// run gives one per probe, and the terminal probes a second with a terminal on stdin).
#[test]
fn the_probe_counts_in_readme_and_security_are_the_batterys() {
    use kekkai::audit::probes;
    const README: &str = include_str!("../README.md");
    const SECURITY: &str = include_str!("../SECURITY.md");
    let all = probes::all();
    let total = all.len();
    assert!(
        README.contains(&format!("runs {total} escape probes")),
        "README.md must say `runs {total} escape probes`"
    );
    assert!(
        SECURITY.contains(&format!("The battery has {total} probes")),
        "SECURITY.md's Audit results must say `The battery has {total} probes`"
    );
    let count = |category: &str| all.iter().filter(|p| p.category == category).count();
    let mut checked = 0;
    for (at, _) in SECURITY.match_indices(".*` (") {
        let before = &SECURITY[..at];
        let category = &before[before.rfind('`').unwrap() + 1..];
        let rest = &SECURITY[at + ".*` (".len()..];
        let n: usize = rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap()]
            .parse()
            .unwrap();
        assert_eq!(n, count(category), "SECURITY.md: `{category}.*` ({n})");
        checked += 1;
    }
    assert!(
        checked >= 5,
        "the layer table's category counts were not found"
    );
    let verdicts = total + count("terminal");
    assert!(
        SECURITY.contains(&format!("every run\ngives {verdicts} verdicts"))
            || SECURITY.contains(&format!("every run gives {verdicts} verdicts")),
        "SECURITY.md must say every run gives {verdicts} verdicts"
    );
    let rows: Vec<Vec<&str>> = SECURITY
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l
                .strip_prefix("| ")?
                .strip_suffix(" |")?
                .split(" | ")
                .collect();
            (cells.len() == 7 && cells[2].parse::<usize>().is_ok()).then_some(cells)
        })
        .collect();
    assert!(rows.len() >= 8, "the Audit results table was not found");
    for row in rows {
        let sum: usize = row[2..6].iter().map(|c| c.parse::<usize>().unwrap()).sum();
        assert_eq!(sum, verdicts, "SECURITY.md, Audit results: {row:?}");
    }
}
