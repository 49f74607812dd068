//! The house's one-way layers (README, "Layout"): a module names only modules of the layers
//! below its own, never one beside it or above it, so the import graph between kekkai's
//! top-level modules has no loop. Read from the source: every `crate::NAME` and `kekkai::NAME`
//! outside a comment.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Bottom first. The binaries' own modules (`main.rs` with `cli/`, and `bin/`) are on top.
const LAYERS: &[&[&str]] = &[
    &["sys", "caller", "hostfs", "exit", "log", "man"],
    &["policy", "image"],
    &["plan", "schema"],
    &["launch", "export"],
    &["state"],
    &["explain", "audit", "learn", "error"],
    &["cli", "main", "bin"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`main.rs` and `lib.rs` are their own).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The top-level modules a line of code names: `crate::NAME` or `kekkai::NAME`.
fn named(line: &str) -> Vec<String> {
    let code = line.trim_start();
    if code.starts_with("//") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for prefix in ["crate::", "kekkai::"] {
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn every_module_names_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut seen = BTreeSet::new();
    let mut wrong = Vec::new();
    for file in &files {
        let from = module_of(&src, file);
        if from == "lib" {
            continue;
        }
        let Some(own) = layer(&from) else {
            wrong.push(format!(
                "{}: module `{from}` is on no layer",
                file.display()
            ));
            continue;
        };
        seen.insert(from.clone());
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for to in named(line) {
                if to == from {
                    continue;
                }
                match layer(&to) {
                    Some(l) if l < own => {}
                    Some(_) => wrong.push(format!(
                        "{}:{}: `{from}` names `{to}`, which is not below it",
                        file.display(),
                        n + 1
                    )),
                    None => wrong.push(format!(
                        "{}:{}: `{to}` is on no layer",
                        file.display(),
                        n + 1
                    )),
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Every layer's module exists: the table is the house as it stands.
    for module in LAYERS.iter().flat_map(|l| l.iter()) {
        assert!(
            seen.contains(*module),
            "no src/{module}: drop it from LAYERS"
        );
    }
}

#[test]
fn named_reads_paths_not_words() {
    assert_eq!(named("use crate::plan::Plan;"), ["plan"]);
    assert_eq!(named("let x = kekkai::sys::abi::register(1);"), ["sys"]);
    assert_eq!(named("// crate::launch in a comment"), Vec::<String>::new());
    assert_eq!(named("mycrate::launch::x"), Vec::<String>::new());
    assert_eq!(
        named("(crate::exit::OK, crate::log::emit)"),
        ["exit", "log"]
    );
}
