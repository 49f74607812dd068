//! What a running sandbox uses (`ps`, `stats`): from its cgroup where it has one of kekkai's
//! (`memory.current`/`memory.peak`, `pids.current`, `cpu.stat` on cgroup v2; the v1 memory and
//! pids files), else added up over its processes from /proc. The cgroup is the one the sandbox's
//! first process is in now (/proc/PID/cgroup), never a path from the record.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::launch::cgroup::Hierarchies;

/// A sandbox's usage; `None` where it can't be known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Memory in use, bytes.
    pub memory: Option<u64>,
    /// The most memory used, bytes (from the cgroup only).
    pub memory_peak: Option<u64>,
    /// Processes (and, from the pids cgroup, threads).
    pub pids: Option<u64>,
    /// CPU time used, microseconds.
    pub cpu_usec: Option<u64>,
}

/// The kekkai cgroups process `pid` is in: (the v2 directory, the v1 directories by
/// controller). Only cgroups whose directory is named `kekkai-*` count: a sandbox without
/// limits lives in its launcher's cgroup, whose usage is not the sandbox's.
pub fn cgroups_of(pid: i32) -> (Option<PathBuf>, Vec<(String, PathBuf)>) {
    let h = Hierarchies::read();
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let ours = |p: &str| {
        Path::new(p)
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("kekkai-") && !p.contains(".."))
    };
    let (mut v2, mut v1) = (None, Vec::new());
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if !ours(path) {
            continue;
        }
        if ctrls.is_empty() {
            if let Some(m) = &h.v2_mount {
                v2 = Some(crate::launch::cgroup::join_cgroup(m, Path::new(path)));
            }
        } else {
            for (mctrls, mount) in &h.v1_mounts {
                if ctrls.split(',').any(|c| mctrls.iter().any(|m| m == c)) {
                    for c in ctrls.split(',') {
                        v1.push((
                            c.to_owned(),
                            crate::launch::cgroup::join_cgroup(mount, Path::new(path)),
                        ));
                    }
                }
            }
        }
    }
    (v2, v1)
}

fn number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn keyed(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The usage of the sandbox whose first process is `pid` (already checked to be the recorded
/// one).
pub fn of(pid: i32) -> Usage {
    let (v2, v1) = cgroups_of(pid);
    let mut u = Usage::default();
    if let Some(d) = &v2 {
        u.memory = number(&d.join("memory.current"));
        u.memory_peak = number(&d.join("memory.peak"));
        u.pids = number(&d.join("pids.current"));
        u.cpu_usec = keyed(&d.join("cpu.stat"), "usage_usec");
    }
    for (c, d) in &v1 {
        match c.as_str() {
            "memory" => {
                u.memory = u
                    .memory
                    .or_else(|| number(&d.join("memory.usage_in_bytes")));
                u.memory_peak = u
                    .memory_peak
                    .or_else(|| number(&d.join("memory.max_usage_in_bytes")));
            }
            "pids" => u.pids = u.pids.or_else(|| number(&d.join("pids.current"))),
            "cpuacct" => {
                u.cpu_usec = u
                    .cpu_usec
                    .or_else(|| number(&d.join("cpuacct.usage")).map(|ns| ns / 1000))
            }
            _ => {}
        }
    }
    // What the cgroups don't say, the processes do.
    if u.memory.is_none() || u.pids.is_none() || u.cpu_usec.is_none() {
        let procs = tree(pid);
        let page = 4096;
        let tick = 100; // USER_HZ
        let (mut rss, mut cpu) = (0u64, 0u64);
        for p in &procs {
            if let Some(pages) = std::fs::read_to_string(format!("/proc/{p}/statm"))
                .ok()
                .and_then(|t| t.split(' ').nth(1)?.parse::<u64>().ok())
            {
                rss += pages * page;
            }
            if let Some(t) = std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let after = s.rsplit_once(") ")?.1.to_owned();
                    let f: Vec<&str> = after.split(' ').collect();
                    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
                })
            {
                cpu += t * 1_000_000 / tick;
            }
        }
        u.memory = u.memory.or(Some(rss));
        u.pids = u.pids.or(Some(procs.len() as u64));
        u.cpu_usec = u.cpu_usec.or(Some(cpu));
    }
    u
}

/// `pid` and all its descendants (through /proc/PID/task/TID/children).
pub fn tree(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() && out.len() < 100_000 {
        let p = out[i];
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.filter_map(Result::ok) {
                let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
                out.extend(
                    kids.split_whitespace()
                        .filter_map(|k| k.parse::<i32>().ok()),
                );
            }
        }
        i += 1;
    }
    out
}

/// A byte count as `ps` shows it (`12.3M`).
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", UNITS[unit])
    }
}

/// A duration in seconds as `ps` shows it (`5s`, `3m12s`, `2h05m`, `3d04h`).
pub fn uptime(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(0, "0B")]
    #[case(1023, "1023B")]
    #[case(1536, "1.5K")]
    #[case(64 << 20, "64.0M")]
    fn sizes_read_short(#[case] n: u64, #[case] want: &str) {
        assert_eq!(human(n), want);
    }

    #[rstest]
    #[case(5, "5s")]
    #[case(192, "3m12s")]
    #[case(7500, "2h05m")]
    #[case(273600, "3d04h")]
    fn uptimes_read_short(#[case] n: u64, #[case] want: &str) {
        assert_eq!(uptime(n), want);
    }

    #[test]
    fn this_process_has_a_tree_and_a_usage() {
        let me = i32::try_from(std::process::id()).unwrap_or(0);
        assert_eq!(tree(me)[0], me);
        assert!(of(me).memory.is_some_and(|m| m > 0));
    }
}
