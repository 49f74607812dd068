//! Invalid snippets for an unprivileged caller: limits, rlimits, timeouts, capabilities,
//! Landlock.

use rstest::rstest;

use super::invalid_snippet;

#[rstest]
// ── limits ───────────────────────────────────────────────────────────────────────────────────
#[case::limits_memory_small(
    "version: 1\nlimits: {memory: 10k}\n",
    "limits.memory",
    2,
    "must be at least"
)]
#[case::limits_memory_word(
    "version: 1\nlimits: {memory: lots}\n",
    "limits.memory",
    2,
    "`lots` is not a size"
)]
#[case::limits_memory_high_above(
    "version: 1\nlimits:\n  memory: 1G\n  memory-high: 2G\n",
    "limits.memory-high",
    4,
    "is above `memory`"
)]
#[case::limits_swap_alone(
    "version: 1\nlimits: {swap: 1G}\n",
    "limits.swap",
    2,
    "needs a `memory` limit"
)]
#[case::limits_pids_zero("version: 1\nlimits: {pids: 0}\n", "limits.pids", 2, "out of range")]
#[case::limits_pids_negative(
    "version: 1\nlimits: {pids: -1}\n",
    "limits.pids",
    2,
    "expected a whole number"
)]
#[case::limits_pids_huge(
    "version: 1\nlimits: {pids: 99999999999999999999999}\n",
    "limits.pids",
    2,
    "expected a whole number"
)]
#[case::limits_cpu_zero("version: 1\nlimits: {cpu: 0}\n", "limits.cpu", 2, "must be above 0")]
#[case::limits_cpu_word(
    "version: 1\nlimits: {cpu: fast}\n",
    "limits.cpu",
    2,
    "is not a number of CPUs"
)]
#[case::limits_cpu_huge(
    "version: 1\nlimits: {cpu: 5000}\n",
    "limits.cpu",
    2,
    "more CPUs than any machine has"
)]
#[case::limits_cpuset_backwards(
    "version: 1\nlimits: {cpuset: 3-1}\n",
    "limits.cpuset",
    2,
    "is not a CPU list"
)]
#[case::limits_cpuset_empty(
    "version: 1\nlimits: {cpuset: ''}\n",
    "limits.cpuset",
    2,
    "is not a CPU list"
)]
#[case::limits_cpu_weight(
    "version: 1\nlimits: {cpu-weight: 0}\n",
    "limits.cpu-weight",
    2,
    "out of range 1..10000"
)]
#[case::limits_io_weight(
    "version: 1\nlimits: {io-weight: 10001}\n",
    "limits.io-weight",
    2,
    "out of range 1..10000"
)]
#[case::limits_parent_relative(
    "version: 1\nlimits: {parent: kekkai.slice}\n",
    "limits.parent",
    2,
    "write a cgroup path"
)]
#[case::limits_compat(
    "version: 1\nlimits: {compat: soft}\n",
    "limits.compat",
    2,
    "unknown value `soft`"
)]
#[case::limits_key_typo(
    "version: 1\nlimits: {memroy: 1G}\n",
    "limits.memroy",
    2,
    "(did you mean `memory`?)"
)]
// ── rlimits ──────────────────────────────────────────────────────────────────────────────────
#[case::rlimit_nofile_small(
    "version: 1\nrlimits: {nofile: 2}\n",
    "rlimits.nofile",
    2,
    "at least 3"
)]
#[case::rlimit_nofile_unlimited(
    "version: 1\nrlimits: {nofile: unlimited}\n",
    "rlimits.nofile",
    2,
    "can't be unlimited"
)]
#[case::rlimit_nofile_huge(
    "version: 1\nrlimits: {nofile: 2000000000}\n",
    "rlimits.nofile",
    2,
    "nr_open"
)]
#[case::rlimit_cpu_subsecond(
    "version: 1\nrlimits: {cpu: 100ms}\n",
    "rlimits.cpu",
    2,
    "at least 1s"
)]
#[case::rlimit_stack_unit(
    "version: 1\nrlimits: {stack: 1Q}\n",
    "rlimits.stack",
    2,
    "unknown unit `q`"
)]
#[case::rlimit_fsize_overflow(
    "version: 1\nrlimits: {fsize: 99999999999T}\n",
    "rlimits.fsize",
    2,
    "is too large"
)]
#[case::rlimit_key_typo(
    "version: 1\nrlimits: {nofiles: 10}\n",
    "rlimits.nofiles",
    2,
    "(did you mean `nofile`?)"
)]
// ── timeout, timeout-grace ───────────────────────────────────────────────────────────────────
#[case::timeout_zero("version: 1\ntimeout: 0\n", "timeout", 2, "must be above 0")]
#[case::timeout_unit("version: 1\ntimeout: 5x\n", "timeout", 2, "is not a duration")]
#[case::timeout_negative("version: 1\ntimeout: -1\n", "timeout", 2, "is not a duration")]
#[case::timeout_astronomical(
    "version: 1\ntimeout: 1e30\n",
    "timeout",
    2,
    "is too large a duration"
)]
#[case::timeout_list("version: 1\ntimeout: [1]\n", "timeout", 2, "expected a duration")]
#[case::timeout_grace_zero(
    "version: 1\ntimeout: 10s\ntimeout-grace: 0s\n",
    "timeout-grace",
    3,
    "must be above 0"
)]
#[case::timeout_grace_word(
    "version: 1\ntimeout-grace: soon\n",
    "timeout-grace",
    2,
    "is not a duration"
)]
// ── capabilities ─────────────────────────────────────────────────────────────────────────────
#[case::cap_typo(
    "version: 1\ncapabilities: {keep: [chown, net_bind_servic]}\n",
    "capabilities.keep[1]",
    2,
    "unknown capability `net_bind_servic` (did you mean `net_bind_service`?)"
)]
#[case::cap_unknown(
    "version: 1\ncapabilities: {keep: [CAP_BOGUS]}\n",
    "capabilities.keep[0]",
    2,
    "unknown capability `CAP_BOGUS`"
)]
#[case::caps_list(
    "version: 1\ncapabilities: [net_admin]\n",
    "capabilities",
    2,
    "invalid type: sequence"
)]
#[case::caps_unknown_key(
    "version: 1\ncapabilities: {add: [chown]}\n",
    "capabilities.add",
    2,
    "unknown key `add`"
)]
// ── landlock ─────────────────────────────────────────────────────────────────────────────────
#[case::landlock_read_relative(
    "version: 1\nlandlock: {read: [/usr, usr]}\n",
    "landlock.read[1]",
    2,
    "is not an absolute path"
)]
#[case::landlock_write_relative(
    "version: 1\nlandlock: {write: [../x]}\n",
    "landlock.write[0]",
    2,
    "is not an absolute path"
)]
#[case::landlock_execute_dotdot(
    "version: 1\nlandlock: {execute: [/usr/../x]}\n",
    "landlock.execute[0]",
    2,
    "contains `..`"
)]
#[case::landlock_port_zero(
    "version: 1\nlandlock: {tcp-bind: [80, 0]}\n",
    "landlock.tcp-bind[1]",
    2,
    "port 0 is not a port"
)]
#[case::landlock_port_too_big(
    "version: 1\nlandlock: {tcp-connect: [443, 70000]}\n",
    "landlock.tcp-connect[1]",
    2,
    "expected a whole number from 0 to 65535"
)]
#[case::landlock_scope_typo(
    "version: 1\nlandlock: {scope: [signals]}\n",
    "landlock.scope[0]",
    2,
    "(did you mean `signal`?)"
)]
#[case::landlock_compat(
    "version: 1\nlandlock: {compat: soft}\n",
    "landlock.compat",
    2,
    "unknown value `soft`"
)]
#[case::landlock_enabled(
    "version: 1\nlandlock: {enabled: maybe}\n",
    "landlock.enabled",
    2,
    "expected a boolean"
)]
#[case::landlock_key_typo(
    "version: 1\nlandlock: {raed: [/usr]}\n",
    "landlock.raed",
    2,
    "(did you mean `read`?)"
)]
fn invalid_snippets(
    #[case] text: &str,
    #[case] path: &str,
    #[case] line: usize,
    #[case] contains: &str,
) {
    invalid_snippet(text, path, line, contains);
}
