//! Resources: the cgroup limits (joined at clone, launch steps 1 to 3), the rlimits (step 7) and
//! the timeout (the supervisor's) as Memory*=, TasksMax=, CPU*=, IOWeight=, Limit*= and
//! RuntimeMaxSec=.

use super::directive::{Directive, Unit, Value};
use crate::plan::{Compat, Plan, Rlimit};

pub(super) fn write(plan: &Plan, o: &mut Unit) {
    o.heading("resources");
    let l = &plan.limits;
    if let Some(v) = &l.memory {
        o.set(Directive::MemoryMax, Value::Bytes(**v));
    }
    if let Some(v) = &l.memory_high {
        o.set(Directive::MemoryHigh, Value::Bytes(**v));
    }
    if let Some(v) = &l.swap {
        o.set(Directive::MemorySwapMax, Value::Bytes(**v));
    }
    if let Some(v) = &l.pids {
        o.set(Directive::TasksMax, Value::Number(**v));
    }
    if let Some(m) = &l.cpu_millis {
        o.set(Directive::CPUQuota, Value::CpuQuota(**m));
    }
    if let Some(c) = &l.cpuset {
        o.set(Directive::AllowedCPUs, Value::Text(c.value.clone()));
    }
    if let Some(w) = &l.cpu_weight {
        o.set(Directive::CPUWeight, Value::Number(**w));
    }
    if let Some(w) = &l.io_weight {
        o.set(Directive::IOWeight, Value::Number(**w));
    }
    if l.any() && l.compat() == Compat::BestEffort {
        o.note(
            "The policy's limits are best-effort (dropped when no cgroup can be had); systemd \
             always applies them.",
        );
    }
    if let Some(p) = &l.parent {
        o.note(format!(
            "kekkai places the sandbox below the cgroup {}; for a unit that is Slice=.",
            p.display()
        ));
    }
    for r in &plan.rlimits {
        let (directive, value) = match r.limit {
            Rlimit::Nofile => (Directive::LimitNOFILE, Value::Count(r.value)),
            Rlimit::Nproc => (Directive::LimitNPROC, Value::Count(r.value)),
            Rlimit::Core => (Directive::LimitCORE, Value::Bytes(r.value)),
            Rlimit::Fsize => (Directive::LimitFSIZE, Value::Bytes(r.value)),
            Rlimit::As => (Directive::LimitAS, Value::Bytes(r.value)),
            Rlimit::Stack => (Directive::LimitSTACK, Value::Bytes(r.value)),
            Rlimit::Memlock => (Directive::LimitMEMLOCK, Value::Bytes(r.value)),
            Rlimit::Cpu => (Directive::LimitCPU, Value::Count(r.value)),
        };
        o.set(directive, value);
    }
    if let Some(t) = plan.timeout {
        o.set(Directive::RuntimeMaxSec, Value::Span(t));
        o.set_why(
            Directive::TimeoutStopSec,
            Value::Span(plan.timeout_grace),
            "On timeout kekkai exits with 124; systemd stops the unit (SIGTERM, then SIGKILL \
             after TimeoutStopSec=) and marks it failed with result `timeout`.",
        );
    }
}
