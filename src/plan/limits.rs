//! cgroup limits, rlimits and the wall-clock timeout, parsed and checked.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::diags::Diags;
use super::keyed::Keyed;
use super::units::{Amount, format_size, parse_cpu, parse_duration, parse_size};
use super::vocab::{Compat, Oom};
use crate::policy::KeyPath;
use crate::policy::model::{Limits, Rlimits};

/// Default time between the timeout's SIGTERM and SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(2);

/// A cgroup controller: the kernel's resource accounting a limit needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Controller {
    /// memory.max / memory.limit_in_bytes, memory.high, swap.
    Memory,
    /// pids.max.
    Pids,
    /// CPU quota and weight.
    Cpu,
    /// CPUs the sandbox may use.
    Cpuset,
    /// IO weight.
    Io,
}

impl Controller {
    /// Its name on cgroup v2.
    pub fn v2_name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
            Controller::Cpuset => "cpuset",
            Controller::Io => "io",
        }
    }

    /// Its name on cgroup v1.
    pub fn v1_name(self) -> &'static str {
        match self {
            Controller::Io => "blkio",
            other => other.v2_name(),
        }
    }

    /// The policy key a refusal names for it: its first limit's, whichever of its limits the
    /// policy set.
    pub fn key(self) -> KeyPath {
        limit_key(match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
            Controller::Cpuset => "cpuset",
            Controller::Io => "io-weight",
        })
    }
}

/// `limits.NAME`.
fn limit_key(name: &str) -> KeyPath {
    KeyPath::root().key("limits").key(name)
}

/// cgroup limits to enforce, each with its policy key.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LimitsPlan {
    /// memory.max in bytes.
    pub memory: Option<Keyed<u64>>,
    /// memory.high in bytes.
    pub memory_high: Option<Keyed<u64>>,
    /// memory.swap.max in bytes.
    pub swap: Option<Keyed<u64>>,
    /// pids.max.
    pub pids: Option<Keyed<u64>>,
    /// CPU quota in thousandths of a CPU.
    pub cpu_millis: Option<Keyed<u64>>,
    /// cpuset.cpus.
    pub cpuset: Option<Keyed<String>>,
    /// cpu.weight.
    pub cpu_weight: Option<Keyed<u64>>,
    /// io.weight.
    pub io_weight: Option<Keyed<u64>>,
    /// What an OOM kill at `memory` ends (`limits.oom`).
    pub oom: Keyed<Oom>,
    /// Refuse to run (hard, unless the policy says otherwise) or report (best-effort) when
    /// limits can't be enforced.
    pub compat: Keyed<Compat>,
    /// Explicit parent cgroup.
    pub parent: Option<PathBuf>,
    /// The section's own key (`limits`), for what concerns all of its limits.
    pub key: KeyPath,
}

impl Default for LimitsPlan {
    /// The limits of a policy that sets none.
    fn default() -> Self {
        LimitsPlan {
            memory: None,
            memory_high: None,
            swap: None,
            pids: None,
            cpu_millis: None,
            cpuset: None,
            cpu_weight: None,
            io_weight: None,
            oom: Keyed::new(Oom::Process, limit_key("oom")),
            compat: Keyed::new(Compat::Hard, limit_key("compat")),
            parent: None,
            key: KeyPath::root().key("limits"),
        }
    }
}

impl LimitsPlan {
    /// Each limit the policy sets, as (its controller, `name value` as explain and the run
    /// report show it), in a fixed order.
    pub fn parts(&self) -> Vec<(Controller, String)> {
        let size = format_size;
        let mut out = Vec::new();
        let mut add = |controller, text: Option<String>| out.extend(text.map(|t| (controller, t)));
        let v = |l: &Option<Keyed<u64>>| l.as_deref().copied();
        add(
            Controller::Memory,
            v(&self.memory).map(|m| format!("memory {}", size(m))),
        );
        add(
            Controller::Memory,
            v(&self.memory_high).map(|m| format!("memory-high {}", size(m))),
        );
        add(
            Controller::Memory,
            v(&self.swap).map(|m| format!("swap {}", size(m))),
        );
        add(Controller::Pids, v(&self.pids).map(|p| format!("pids {p}")));
        add(
            Controller::Cpu,
            v(&self.cpu_millis).map(|c| format!("cpu {}", c as f64 / 1000.0)),
        );
        add(
            Controller::Cpuset,
            self.cpuset.as_ref().map(|c| format!("cpuset {c}")),
        );
        add(
            Controller::Cpu,
            v(&self.cpu_weight).map(|w| format!("cpu-weight {w}")),
        );
        add(
            Controller::Io,
            v(&self.io_weight).map(|w| format!("io-weight {w}")),
        );
        out
    }

    /// The controllers the limits need, in a fixed order.
    pub fn controllers(&self) -> Vec<Controller> {
        let mut out = Vec::new();
        if self.memory.is_some() || self.memory_high.is_some() || self.swap.is_some() {
            out.push(Controller::Memory);
        }
        if self.pids.is_some() {
            out.push(Controller::Pids);
        }
        if self.cpu_millis.is_some() || self.cpu_weight.is_some() {
            out.push(Controller::Cpu);
        }
        if self.cpuset.is_some() {
            out.push(Controller::Cpuset);
        }
        if self.io_weight.is_some() {
            out.push(Controller::Io);
        }
        out
    }

    /// Does the policy ask for any cgroup limit?
    pub fn any(&self) -> bool {
        self.memory.is_some()
            || self.memory_high.is_some()
            || self.swap.is_some()
            || self.pids.is_some()
            || self.cpu_millis.is_some()
            || self.cpuset.is_some()
            || self.cpu_weight.is_some()
            || self.io_weight.is_some()
    }

    /// The compat level (hard unless the policy says otherwise).
    pub fn compat(&self) -> Compat {
        *self.compat
    }
}

/// A resource limit setrlimit sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Rlimit {
    /// Open files (RLIMIT_NOFILE).
    Nofile,
    /// Processes of the user (RLIMIT_NPROC).
    Nproc,
    /// Core file size (RLIMIT_CORE).
    Core,
    /// Largest file written (RLIMIT_FSIZE).
    Fsize,
    /// Address space (RLIMIT_AS).
    As,
    /// Stack size (RLIMIT_STACK).
    Stack,
    /// Locked memory (RLIMIT_MEMLOCK).
    Memlock,
    /// CPU time in seconds (RLIMIT_CPU).
    Cpu,
}

impl Rlimit {
    /// The policy's name for it (`nofile`), as explain and the run report show it.
    pub fn name(self) -> &'static str {
        match self {
            Rlimit::Nofile => "nofile",
            Rlimit::Nproc => "nproc",
            Rlimit::Core => "core",
            Rlimit::Fsize => "fsize",
            Rlimit::As => "as",
            Rlimit::Stack => "stack",
            Rlimit::Memlock => "memlock",
            Rlimit::Cpu => "cpu",
        }
    }

    /// The RLIMIT_* number.
    pub fn resource(self) -> u32 {
        match self {
            Rlimit::Nofile => libc::RLIMIT_NOFILE,
            Rlimit::Nproc => libc::RLIMIT_NPROC,
            Rlimit::Core => libc::RLIMIT_CORE,
            Rlimit::Fsize => libc::RLIMIT_FSIZE,
            Rlimit::As => libc::RLIMIT_AS,
            Rlimit::Stack => libc::RLIMIT_STACK,
            Rlimit::Memlock => libc::RLIMIT_MEMLOCK,
            Rlimit::Cpu => libc::RLIMIT_CPU,
        }
    }
}

/// A resource limit to set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RlimitPlan {
    /// Which one.
    pub limit: Rlimit,
    /// The value for both soft and hard limit (`u64::MAX` is unlimited).
    pub value: u64,
    /// Its policy key (`rlimits.nofile`).
    pub key: KeyPath,
}

/// Plans the `limits` section.
pub fn plan_limits(spec: Option<&Limits>, diags: &mut Diags) -> LimitsPlan {
    let Some(l) = spec else {
        return LimitsPlan::default();
    };
    let here = LimitsPlan::default().key;
    let size = |key: &str,
                v: &Option<crate::policy::model::Size>,
                min: u64,
                diags: &mut Diags|
     -> Option<u64> {
        let v = v.as_ref()?;
        match parse_size(&v.0) {
            Ok(Amount::Finite(n)) if n >= min => Some(n),
            Ok(Amount::Finite(_)) => {
                diags.push(
                    here.key(key),
                    format!("must be at least {}", format_size(min)),
                );
                None
            }
            Ok(Amount::Unlimited) => Some(u64::MAX),
            Err(e) => {
                diags.push(here.key(key), e);
                None
            }
        }
    };
    let memory = size("memory", &l.memory, 1 << 20, diags);
    let memory_high = size("memory-high", &l.memory_high, 1 << 20, diags);
    let swap = size("swap", &l.swap, 0, diags);
    if let (Some(h), Some(m)) = (memory_high, memory) {
        if h > m {
            diags.push(
                here.key("memory-high"),
                "is above `memory`; it would never apply",
            );
        }
    }
    if l.oom.is_some() && l.memory.is_none() {
        diags.push(
            here.key("oom"),
            "says what an OOM kill at the `memory` limit ends; it needs a `memory` limit",
        );
    }
    if swap.is_some() && l.memory.is_none() {
        diags.push(here.key("swap"), "a swap limit needs a `memory` limit");
    }
    let count =
        |key: &str, v: Option<u64>, range: std::ops::RangeInclusive<u64>, diags: &mut Diags| {
            let v = v?;
            if range.contains(&v) {
                Some(v)
            } else {
                diags.push(
                    here.key(key),
                    format!("{v} is out of range {}..{}", range.start(), range.end()),
                );
                None
            }
        };
    let pids = count("pids", l.pids, 1..=4_194_304, diags);
    let cpu_weight = count("cpu-weight", l.cpu_weight, 1..=10_000, diags);
    let io_weight = count("io-weight", l.io_weight, 1..=10_000, diags);
    let cpu_millis = l.cpu.as_ref().and_then(|c| match parse_cpu(&c.0) {
        Ok(m) => Some(m),
        Err(e) => {
            diags.push(here.key("cpu"), e);
            None
        }
    });
    let cpuset = l.cpuset.as_ref().and_then(|s| match check_cpuset(s) {
        Ok(()) => Some(s.trim().to_owned()),
        Err(e) => {
            diags.push(here.key("cpuset"), e);
            None
        }
    });
    let parent = l
        .parent
        .as_ref()
        .and_then(|p| match super::fs::normalize_abs(p) {
            Ok(path) => Some(path),
            Err(e) => {
                diags.push(
                    here.key("parent"),
                    format!("{e}; write a cgroup path such as /kekkai.slice"),
                );
                None
            }
        });
    let keyed = |key: &str, v: Option<u64>| v.map(|v| Keyed::new(v, here.key(key)));
    let default = LimitsPlan::default();
    LimitsPlan {
        memory: keyed("memory", memory),
        memory_high: keyed("memory-high", memory_high),
        swap: keyed("swap", swap),
        pids: keyed("pids", pids),
        cpu_millis: keyed("cpu", cpu_millis),
        cpuset: cpuset.map(|c| Keyed::new(c, here.key("cpuset"))),
        cpu_weight: keyed("cpu-weight", cpu_weight),
        io_weight: keyed("io-weight", io_weight),
        oom: match l.oom {
            Some(o) => Keyed::new(Oom::from(o), default.oom.key),
            None => default.oom,
        },
        compat: match l.compat {
            Some(c) => Keyed::new(Compat::from(c), default.compat.key),
            None => default.compat,
        },
        parent,
        key: default.key,
    }
}

/// A cpuset list: `0-3,5,7-8`.
fn check_cpuset(s: &str) -> Result<(), String> {
    let bad = || format!("`{s}` is not a CPU list; write e.g. 0-1 or 0,2-3");
    if s.trim().is_empty() {
        return Err(bad());
    }
    for part in s.trim().split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: u32 = a.trim().parse().map_err(|_| bad())?;
        let b: u32 = b.trim().parse().map_err(|_| bad())?;
        if a > b || b > 8191 {
            return Err(bad());
        }
    }
    Ok(())
}

/// Plans the `rlimits` section.
pub fn plan_rlimits(spec: Option<&Rlimits>, diags: &mut Diags) -> Vec<RlimitPlan> {
    let Some(r) = spec else {
        return Vec::new();
    };
    let here = KeyPath::root().key("rlimits");
    let mut out = Vec::new();
    let sized = [
        (Rlimit::Nofile, &r.nofile),
        (Rlimit::Nproc, &r.nproc),
        (Rlimit::Core, &r.core),
        (Rlimit::Fsize, &r.fsize),
        (Rlimit::As, &r.address_space),
        (Rlimit::Stack, &r.stack),
        (Rlimit::Memlock, &r.memlock),
    ];
    for (limit, value) in sized {
        let Some(v) = value else { continue };
        let name = limit.name();
        match parse_size(&v.0) {
            Ok(Amount::Finite(n)) => {
                if limit == Rlimit::Nofile && n < 3 {
                    diags.push(here.key(name), "at least 3 (stdin, stdout, stderr)");
                    continue;
                }
                if limit == Rlimit::Nofile && n > 1 << 30 {
                    diags.push(here.key(name), "more than the kernel allows (nr_open)");
                    continue;
                }
                out.push(RlimitPlan {
                    limit,
                    value: n,
                    key: here.key(name),
                });
            }
            Ok(Amount::Unlimited) => {
                if limit == Rlimit::Nofile {
                    diags.push(here.key(name), "can't be unlimited; give a number");
                    continue;
                }
                out.push(RlimitPlan {
                    limit,
                    value: u64::MAX,
                    key: here.key(name),
                });
            }
            Err(e) => diags.push(here.key(name), e),
        }
    }
    if let Some(cpu) = &r.cpu {
        match parse_duration(&cpu.0) {
            Ok(d) if d.as_secs() >= 1 => out.push(RlimitPlan {
                limit: Rlimit::Cpu,
                value: d.as_secs(),
                key: here.key(Rlimit::Cpu.name()),
            }),
            Ok(_) => diags.push(
                here.key("cpu"),
                "at least 1s (RLIMIT_CPU counts whole seconds)",
            ),
            Err(e) => diags.push(here.key("cpu"), e),
        }
    }
    out
}

/// Plans `timeout` and `timeout-grace`.
pub fn plan_timeout(
    timeout: Option<&crate::policy::model::Duration>,
    grace: Option<&crate::policy::model::Duration>,
    diags: &mut Diags,
) -> (Option<Duration>, Duration) {
    let parse = |key: &str, v: Option<&crate::policy::model::Duration>, diags: &mut Diags| {
        let v = v?;
        match parse_duration(&v.0) {
            Ok(d) if d.is_zero() => {
                diags.push(KeyPath::root().key(key), "must be above 0");
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                diags.push(KeyPath::root().key(key), e);
                None
            }
        }
    };
    let t = parse("timeout", timeout, diags);
    let g = parse("timeout-grace", grace, diags).unwrap_or(DEFAULT_GRACE);
    (t, g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn limits(yaml: &str) -> Result<LimitsPlan, Vec<(String, String)>> {
        let spec: Limits = serde_yaml::from_str(yaml).unwrap();
        let mut d = Diags::default();
        let p = plan_limits(Some(&spec), &mut d);
        if d.is_empty() {
            Ok(p)
        } else {
            Err(d.into_pairs())
        }
    }

    #[test]
    fn parses_every_limit() {
        let p = limits("{memory: 512M, memory-high: 256M, swap: 0, pids: 128, cpu: 1.5, cpuset: 0-1, cpu-weight: 50, io-weight: 200, compat: best-effort, parent: /kekkai.slice}").unwrap();
        let v = |l: &Option<Keyed<u64>>| l.as_ref().map(|l| (l.value, l.key.to_string()));
        assert_eq!(v(&p.memory), Some((512 << 20, "limits.memory".into())));
        assert_eq!(
            v(&p.memory_high),
            Some((256 << 20, "limits.memory-high".into()))
        );
        assert_eq!(v(&p.swap), Some((0, "limits.swap".into())));
        assert_eq!(v(&p.pids), Some((128, "limits.pids".into())));
        assert_eq!(v(&p.cpu_millis), Some((1500, "limits.cpu".into())));
        assert_eq!(p.cpuset.as_deref().map(String::as_str), Some("0-1"));
        assert_eq!(
            p.cpuset.as_ref().map(|c| c.key.to_string()).as_deref(),
            Some("limits.cpuset")
        );
        assert_eq!(v(&p.cpu_weight), Some((50, "limits.cpu-weight".into())));
        assert_eq!(v(&p.io_weight), Some((200, "limits.io-weight".into())));
        assert_eq!(p.compat.key.to_string(), "limits.compat");
        assert_eq!(p.compat(), Compat::BestEffort);
        assert_eq!(p.parent, Some(PathBuf::from("/kekkai.slice")));
        assert!(p.any());
    }

    #[rstest]
    #[case("{memory: 1G}", Oom::Process)]
    #[case("{memory: 1G, oom: process}", Oom::Process)]
    #[case("{memory: 1G, oom: sandbox}", Oom::Sandbox)]
    fn oom_ends_a_process_unless_told(#[case] yaml: &str, #[case] want: Oom) {
        let p = limits(yaml).unwrap();
        assert_eq!(
            (*p.oom, p.oom.key.to_string().as_str()),
            (want, "limits.oom")
        );
    }

    #[test]
    fn needed_controllers_follow_the_limits() {
        let l = limits("{memory: 1M, cpu-weight: 50}").unwrap();
        assert_eq!(l.controllers(), vec![Controller::Memory, Controller::Cpu]);
        assert!(LimitsPlan::default().controllers().is_empty());
    }

    #[rstest]
    #[case("{memory: 10k}", "limits.memory", "at least")]
    #[case("{memory: lots}", "limits.memory", "not a size")]
    #[case(
        "{memory: 1G, memory-high: 2G}",
        "limits.memory-high",
        "above `memory`"
    )]
    #[case("{swap: 1G}", "limits.swap", "needs a `memory`")]
    #[case("{oom: sandbox}", "limits.oom", "needs a `memory`")]
    #[case("{pids: 0}", "limits.pids", "out of range")]
    #[case("{cpu: 0}", "limits.cpu", "above 0")]
    #[case("{cpu: fast}", "limits.cpu", "not a number")]
    #[case("{cpuset: 3-1}", "limits.cpuset", "not a CPU list")]
    #[case("{cpuset: a}", "limits.cpuset", "not a CPU list")]
    #[case("{cpu-weight: 0}", "limits.cpu-weight", "out of range")]
    #[case("{io-weight: 10001}", "limits.io-weight", "out of range")]
    #[case("{parent: kekkai.slice}", "limits.parent", "not an absolute path")]
    fn rejects(#[case] yaml: &str, #[case] path: &str, #[case] contains: &str) {
        let errs = limits(yaml).unwrap_err();
        assert!(
            errs.iter().any(|(p, m)| p == path && m.contains(contains)),
            "{errs:?}"
        );
    }

    #[rstest]
    #[case("{nofile: 1024}", "nofile", 1024)]
    #[case("{core: 0}", "core", 0)]
    #[case("{as: 4G}", "as", 4 << 30)]
    #[case("{fsize: unlimited}", "fsize", u64::MAX)]
    #[case("{cpu: 1m}", "cpu", 60)]
    fn rlimits(#[case] yaml: &str, #[case] name: &str, #[case] value: u64) {
        let spec: Rlimits = serde_yaml::from_str(yaml).unwrap();
        let mut d = Diags::default();
        let p = plan_rlimits(Some(&spec), &mut d);
        assert!(d.is_empty());
        assert_eq!((p[0].limit.name(), p[0].value), (name, value));
        assert_eq!(p[0].key.to_string(), format!("rlimits.{name}"));
    }

    #[rstest]
    #[case("{nofile: 2}", "rlimits.nofile")]
    #[case("{nofile: unlimited}", "rlimits.nofile")]
    #[case("{cpu: 100ms}", "rlimits.cpu")]
    #[case("{stack: 1Q}", "rlimits.stack")]
    fn bad_rlimits(#[case] yaml: &str, #[case] path: &str) {
        let spec: Rlimits = serde_yaml::from_str(yaml).unwrap();
        let mut d = Diags::default();
        plan_rlimits(Some(&spec), &mut d);
        assert_eq!(d.into_pairs()[0].0, path);
    }
}
