//! The inside of an audit: `kekkai __probe battery CTX [CATEGORY]`, run in the sandbox. Every
//! probe of the table, then every expectation of the policy, each in a forked process of its
//! own ([`inside::isolated`]), prints one JSON line: its name and what it saw. Judging is the
//! host's ([`super::report`]).

use std::io::Write;
use std::os::fd::AsRawFd;

use super::{Ctx, Line, inside, probes};

/// The inside of an audit: `kekkai __probe battery CTX [CATEGORY]`. Prints one JSON line per
/// probe.
pub fn battery(ctx_json: &str, only: Option<&str>) -> i32 {
    let mut ctx: Ctx = match serde_json::from_str(ctx_json) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kekkai-probe: bad context: {e}");
            return 2;
        }
    };
    ctx.initial_fds = open_fds();
    let mut out = std::io::stdout().lock();
    for p in probes::all() {
        if only.is_some_and(|c| c != p.category) || (ctx.control && !p.control_safe) {
            continue;
        }
        let seen = inside::isolated(&|| (p.run)(&ctx));
        let line = Line {
            name: p.name.to_owned(),
            seen,
        };
        let _ = writeln!(out, "{}", serde_json::to_string(&line).unwrap_or_default());
    }
    if only.is_none_or(|c| c == "expect") {
        for e in &ctx.expectations {
            let seen = inside::isolated(&|| inside::attempt(e));
            let line = Line {
                name: e.name(),
                seen,
            };
            let _ = writeln!(out, "{}", serde_json::to_string(&line).unwrap_or_default());
        }
    }
    0
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
