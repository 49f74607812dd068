//! `kekkai export systemd`: a compiled plan as systemd hardening directives, ready for a drop-in.
//!
//! The output is a `[Service]` section that asks systemd to enforce as much of the policy as its
//! own directives can express, for running the program directly under systemd (not under
//! `kekkai run`: these directives would stop kekkai's own setup). Everything systemd can't
//! express (Landlock, the overlay root, seccomp argument filters, ...) is written as a `#`
//! comment in the place it belongs, so the file reads as a diff between the two.
//!
//! Everything is derived from the [`Plan`], so the text is deterministic for a given plan: paths
//! (`${PWD}`, `${HOME}`), ids and kept environment variables are the ones resolved for the caller
//! who ran the export, which the header says. Nothing here runs: there is no launch order to
//! keep, only the order of the sections, which follows the launch's.
//!
//! One module per section, each pushing typed lines ([`directive::Line`]: a directive with its
//! value and the comment that explains it, or a comment) onto a [`directive::Unit`];
//! [`directive`] holds the directive table, the value formats and the one renderer.

pub mod directive;

mod environment;
mod filesystem;
mod header;
mod identity;
mod kekkai_only;
mod landlock;
mod namespaces;
mod privileges;
mod resources;
mod seccomp;
#[cfg(test)]
mod tests;

pub use directive::DIRECTIVES;

use crate::plan::Plan;
use directive::{Line, Unit};

/// The systemd drop-in expressing `plan` as far as systemd can.
pub fn systemd(plan: &Plan) -> String {
    directive::render(&lines(plan))
}

/// The drop-in as typed lines, section by section.
pub fn lines(plan: &Plan) -> Vec<Line> {
    let mut o = Unit::default();
    header::write(plan, &mut o);
    o.section("Service");
    identity::write(plan, &mut o);
    filesystem::write(plan, &mut o);
    namespaces::write(plan, &mut o);
    environment::write(plan, &mut o);
    resources::write(plan, &mut o);
    privileges::write(plan, &mut o);
    seccomp::write(plan, &mut o);
    landlock::write(plan, &mut o);
    kekkai_only::write(plan, &mut o);
    o.lines
}
