//! Step 8: capabilities and ids.
//!
//! Every capability not in the keep-list leaves the bounding set (looping to the last one the
//! running kernel knows, which may be past what the caps crate names), then the supplementary
//! groups, gid and uid switch to the identity, then effective and permitted hold exactly the
//! keep-list. For a non-root identity the kept capabilities are raised as ambient (which needs
//! them inheritable too), so they survive execve; otherwise inheritable and ambient are empty.
//! Ordering: after the mounts (which needed CAP_SYS_ADMIN); the bounding set first, while
//! CAP_SETPCAP is still held.

use std::collections::HashSet;

use caps::{CapSet, Capability};
use nix::unistd::{Gid, Uid};

use super::error::{StepError, Syscall};
use crate::plan::Plan;
use crate::plan::steps::Step;
use crate::sys::{CapSets, Kernel};

fn caps_err(call: &str, e: caps::errors::CapsError) -> StepError {
    StepError::msg(Step::DropPrivileges, format!("{call}: {e}"))
}

/// The kept capabilities as the caps crate's set.
fn keep_set(keep: u64) -> HashSet<Capability> {
    caps::all()
        .into_iter()
        .filter(|c| keep & (1u64 << c.index()) != 0)
        .collect()
}

/// Applies step 8.
pub fn drop_privileges(k: &dyn Kernel, plan: &Plan) -> Result<(), StepError> {
    let step = Step::DropPrivileges;
    let keep = plan.caps.keep;
    let key = &plan.caps.key;
    // 1. The bounding set, up to the last capability this kernel has (EINVAL past it). Each
    // capability not kept is dropped without reading it first: dropping one that is already
    // out succeeds, with CAP_SETPCAP. Without CAP_SETPCAP (EPERM), the drop is only needed if
    // the capability is still in, so that is when the EPERM stands.
    for cap in 0..64u32 {
        if keep & (1u64 << cap) != 0 {
            continue;
        }
        match k.capbset_drop(cap) {
            Ok(()) => {}
            Err(nix::errno::Errno::EINVAL) => break,
            Err(nix::errno::Errno::EPERM) => match k.capbset_read(cap) {
                Ok(false) => {}
                Ok(true) => {
                    return Err(StepError::sys(
                        step,
                        format!("prctl(PR_CAPBSET_DROP, {cap})"),
                        nix::errno::Errno::EPERM,
                    ));
                }
                Err(nix::errno::Errno::EINVAL) => break,
                Err(e) => {
                    return Err(StepError::sys(
                        step,
                        format!("prctl(PR_CAPBSET_READ, {cap})"),
                        e,
                    ));
                }
            },
            Err(e) => {
                return Err(StepError::sys(
                    step,
                    format!("prctl(PR_CAPBSET_DROP, {cap})"),
                    e,
                ));
            }
        }
    }
    // 2. Ids. Keep the permitted set across the uid change when something is to be kept.
    let id = &plan.identity;
    let non_root = *id.uid != 0;
    if keep != 0 && non_root {
        k.set_keepcaps(true)
            .step(step, || "prctl(PR_SET_KEEPCAPS, 1)".into())?;
    }
    let may_setgroups = plan.userns.as_ref().is_none_or(|ns| !ns.deny_setgroups);
    if may_setgroups {
        let groups: Vec<Gid> = id.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        k.setgroups(&groups)
            .step(step, || format!("setgroups({:?})", id.groups.value))
            .map_err(|e| e.key(&id.groups.key))?;
    }
    let (gid, uid) = (Gid::from_raw(*id.gid), Uid::from_raw(*id.uid));
    k.setresgid(gid, gid, gid)
        .step(step, || format!("setresgid({0}, {0}, {0})", *id.gid))
        .map_err(|e| e.key(&id.gid.key))?;
    k.setresuid(uid, uid, uid)
        .step(step, || format!("setresuid({0}, {0}, {0})", *id.uid))
        .map_err(|e| e.key(&id.uid.key))?;
    // 3. Effective, permitted and inheritable in one capset (the kernel checks the change as
    // a whole: permitted only shrinks, effective within it), then ambient.
    let kept = keep_set(keep);
    let ambient = non_root && keep != 0;
    let want = CapSets {
        effective: keep,
        permitted: keep,
        inheritable: if ambient { keep } else { 0 },
    };
    k.capset(want)
        .step(step, || {
            format!(
                "capset(effective {keep:#x}, permitted {keep:#x}, inheritable {:#x})",
                want.inheritable
            )
        })
        .map_err(|e| e.key(key))?;
    k.cap_clear(CapSet::Ambient)
        .map_err(|e| caps_err("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", e))?;
    if ambient {
        for c in &kept {
            k.cap_raise(CapSet::Ambient, *c)
                .map_err(|e| caps_err(&format!("prctl(PR_CAP_AMBIENT_RAISE, {c})"), e).key(key))?;
        }
    }
    if keep != 0 && non_root {
        k.set_keepcaps(false)
            .step(step, || "prctl(PR_SET_KEEPCAPS, 0)".into())?;
    }
    // Verify what the kernel now holds.
    let held = k.capget().step(step, || "capget".into())?;
    if held != want {
        return Err(StepError::msg(
            step,
            format!(
                "capabilities after the drop are effective {:#x}, permitted {:#x}, inheritable {:#x}; expected {keep:#x}, {keep:#x}, {:#x}",
                held.effective, held.permitted, held.inheritable, want.inheritable
            ),
        ));
    }
    Ok(())
}
