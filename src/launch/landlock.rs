//! Step 10: Landlock restrict_self.
//!
//! kekkai decides compatibility itself from the kernel's ABI and the plan's requirements
//! (`hard`: refuse, naming what is missing; `best-effort`: drop and report), asks the landlock
//! crate for exactly what the kernel supports, and checks the status it returns: anything but
//! full enforcement of what was asked is an error. Paths are opened after pivot_root, so they
//! name the sandbox's own files; a rule path that does not exist grants nothing and is
//! reported.

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath,
    PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope as LlScope,
};

use super::error::StepError;
use super::report::LandlockReport;
use crate::plan::LandlockPlan;
use crate::plan::landlock::access;
use crate::plan::steps::Step;
use crate::policy::KeyPath;
use crate::policy::model::{Compat, Scope};

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
        if plan.tcp_bind.is_some() {
            out.push(format!(
                "landlock.tcp-bind needs ABI 4, the kernel has {abi}"
            ));
        }
        if plan.tcp_connect.is_some() {
            out.push(format!(
                "landlock.tcp-connect needs ABI 4, the kernel has {abi}"
            ));
        }
    }
    if abi < 6 && !plan.scopes.is_empty() {
        out.push(format!("landlock.scope needs ABI 6, the kernel has {abi}"));
    }
    out
}

/// Applies step 10.
pub fn restrict(plan: &LandlockPlan) -> Result<LandlockReport, StepError> {
    let mut report = LandlockReport::default();
    if !plan.enabled {
        report.status = "disabled".into();
        return Ok(report);
    }
    let abi_n = crate::sys::landlock_abi().unwrap_or(0);
    report.abi = abi_n;
    let missing = missing(plan, abi_n);
    if !missing.is_empty() {
        if plan.compat == Compat::Hard {
            return Err(err(format!("the kernel can't enforce: {}", missing.join("; ")))
                .key(&KeyPath::root().key("landlock").key("compat"))
                .hint("use a newer kernel, drop those rules, or set `landlock.compat: best-effort`"));
        }
        report.dropped = missing;
    }
    if abi_n < 1 {
        report.status = "not-enforced".into();
        return Ok(report);
    }
    let abi = ABI::from(abi_n);
    let fs_handled: BitFlags<AccessFs> = AccessFs::from_all(abi);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(fs_handled)
        .map_err(err)?;
    let net_ok = abi_n >= 4;
    if net_ok && plan.tcp_bind.is_some() {
        ruleset = ruleset.handle_access(AccessNet::BindTcp).map_err(err)?;
    }
    if net_ok && plan.tcp_connect.is_some() {
        ruleset = ruleset.handle_access(AccessNet::ConnectTcp).map_err(err)?;
    }
    if abi_n >= 6 && !plan.scopes.is_empty() {
        let mut scopes: BitFlags<LlScope> = BitFlags::empty();
        for s in &plan.scopes {
            scopes |= match s {
                Scope::AbstractUnix => LlScope::AbstractUnixSocket,
                Scope::Signal => LlScope::Signal,
            };
        }
        ruleset = ruleset.scope(scopes).map_err(err)?;
    }
    let mut created = ruleset.create().map_err(err)?;
    let file_rights = AccessFs::from_file(abi);
    for rule in &plan.rules {
        let fd = match PathFd::new(&rule.path) {
            Ok(fd) => fd,
            Err(_) => {
                let shown = rule.path.display().to_string();
                if !report.absent_paths.contains(&shown) {
                    report.absent_paths.push(shown);
                }
                continue;
            }
        };
        let is_dir = std::fs::metadata(&rule.path)
            .map(|m| m.is_dir())
            .unwrap_or(false);
        let mut rights = BitFlags::<AccessFs>::from_bits_truncate(rule.access) & fs_handled;
        if !is_dir {
            rights &= file_rights;
        }
        if rights.is_empty() {
            continue;
        }
        created = created
            .add_rule(PathBeneath::new(fd, rights))
            .map_err(|e| {
                err(format!(
                    "landlock_add_rule({}, {}): {e}",
                    rule.path.display(),
                    access::summary(rule.access)
                ))
            })?;
    }
    if net_ok {
        for (ports, right) in [
            (&plan.tcp_bind, AccessNet::BindTcp),
            (&plan.tcp_connect, AccessNet::ConnectTcp),
        ] {
            for port in ports.iter().flatten() {
                created = created
                    .add_rule(NetPort::new(*port, right))
                    .map_err(|e| err(format!("landlock_add_rule(port {port}): {e}")))?;
            }
        }
    }
    let status = created
        .restrict_self()
        .map_err(|e| err(format!("landlock_restrict_self: {e}")))?;
    report.status = match status.ruleset {
        RulesetStatus::FullyEnforced => "fully-enforced",
        RulesetStatus::PartiallyEnforced => "partially-enforced",
        RulesetStatus::NotEnforced => "not-enforced",
    }
    .into();
    // We asked only for what this ABI supports, with hard compatibility: anything short of
    // full enforcement means the kernel and the crate disagree — refuse rather than guess.
    if status.ruleset != RulesetStatus::FullyEnforced {
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
