//! Step 10: Landlock restrict_self.
//!
//! kekkai decides compatibility itself from the kernel's ABI and the plan's requirements
//! (`hard`: refuse, naming what is missing; `best-effort`: drop and report), asks the kernel
//! (`sys::landlock`, through the landlock crate) for exactly what it supports, and checks the
//! status it returns: anything but full enforcement of what was asked is an error. Paths are
//! opened after pivot_root, so they name the sandbox's own files; a rule path that does not
//! exist grants nothing and is reported.

use super::error::StepError;
use super::report::LandlockReport;
use crate::plan::landlock::access;
use crate::plan::steps::Step;
use crate::plan::{Compat, Keyed, LandlockPlan, Scope};
use crate::sys::Kernel;
use crate::sys::landlock::{Enforcement, LandlockError, LandlockRuleset, scope};

fn err(what: impl std::fmt::Display) -> StepError {
    StepError::msg(Step::Landlock, what.to_string())
}

/// What the plan asks for that this kernel's ABI can't enforce.
pub fn missing(plan: &LandlockPlan, abi: i32) -> Vec<String> {
    let mut out = Vec::new();
    if abi < 1 {
        out.push("Landlock itself (the kernel has no Landlock, or it is not enabled)".into());
        return out;
    }
    if abi < 4 {
        // Connect rules implied by an egress allowlist are a second layer: without ABI 4 the
        // egress rules alone stand.
        let connect = plan
            .tcp_connect
            .as_ref()
            .filter(|_| !plan.tcp_connect_implied);
        for ports in [plan.tcp_bind.as_ref(), connect].into_iter().flatten() {
            out.push(format!("{} needs ABI 4, the kernel has {abi}", ports.key));
        }
    }
    if abi < 6 && !plan.scopes.is_empty() {
        out.push(format!(
            "{} needs ABI 6, the kernel has {abi}",
            plan.scopes.key
        ));
    }
    out
}

/// The ruleset that enforces `plan` on a kernel with Landlock ABI `abi` (at least 1): every
/// filesystem right the ABI has is handled; TCP (ABI 4) and scopes (ABI 6) only where both the
/// plan and the kernel have them.
pub fn ruleset(plan: &LandlockPlan, abi: i32) -> LandlockRuleset {
    let net_ok = abi >= 4;
    let mut scopes = 0;
    if abi >= 6 {
        for s in plan.scopes.iter() {
            scopes |= match s {
                Scope::AbstractUnix => scope::ABSTRACT_UNIX_SOCKET,
                Scope::Signal => scope::SIGNAL,
            };
        }
    }
    let ports = |p: &Option<Keyed<Vec<u16>>>| {
        if net_ok {
            p.iter().flat_map(|p| p.iter()).copied().collect()
        } else {
            Vec::new()
        }
    };
    LandlockRuleset {
        abi,
        tcp_bind: net_ok && plan.tcp_bind.is_some(),
        tcp_connect: net_ok && plan.tcp_connect.is_some(),
        scopes,
        paths: plan
            .rules
            .iter()
            .map(|r| (r.path.clone(), r.access))
            .collect(),
        bind_ports: ports(&plan.tcp_bind),
        connect_ports: ports(&plan.tcp_connect),
    }
}

/// Applies step 10.
pub fn restrict(k: &dyn Kernel, plan: &LandlockPlan) -> Result<LandlockReport, StepError> {
    let mut report = LandlockReport::default();
    if !plan.enabled {
        report.status = "disabled".into();
        return Ok(report);
    }
    let abi_n = k.landlock_abi().unwrap_or(0);
    report.abi = abi_n;
    let missing = missing(plan, abi_n);
    if !missing.is_empty() {
        if *plan.compat == Compat::Hard {
            return Err(err(format!("the kernel can't enforce: {}", missing.join("; ")))
                .key(&plan.compat.key)
                .hint("use a newer kernel, drop those rules, or set `landlock.compat: best-effort`"));
        }
        report.dropped = missing;
    }
    if abi_n < 1 {
        report.status = "not-enforced".into();
        return Ok(report);
    }
    let status = k
        .landlock_restrict(&ruleset(plan, abi_n))
        .map_err(|e| match e {
            LandlockError::Ruleset(e) => err(e),
            LandlockError::Path(path, rights, e) => err(format!(
                "landlock_add_rule({}, {}): {e}",
                path.display(),
                access::summary(rights)
            )),
            LandlockError::Port(port, e) => err(format!("landlock_add_rule(port {port}): {e}")),
            LandlockError::Restrict(e) => err(format!("landlock_restrict_self: {e}")),
        })?;
    for path in &status.absent {
        let shown = path.display().to_string();
        if !report.absent_paths.contains(&shown) {
            report.absent_paths.push(shown);
        }
    }
    report.status = match status.enforcement {
        Enforcement::Full => "fully-enforced",
        Enforcement::Partial => "partially-enforced",
        Enforcement::None => "not-enforced",
    }
    .into();
    // We asked only for what this ABI supports, with hard compatibility: anything short of
    // full enforcement means the kernel and the crate disagree — refuse rather than guess.
    if status.enforcement != Enforcement::Full {
        return Err(err(format!(
            "landlock_restrict_self reported {}",
            report.status
        )));
    }
    if !status.no_new_privs {
        return Err(err("no_new_privs is not set after landlock_restrict_self"));
    }
    Ok(report)
}
