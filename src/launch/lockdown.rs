//! Steps 9, 11 and 12: no_new_privs, closing inherited descriptors, and seccomp.
//!
//! no_new_privs comes before Landlock and seccomp because both require it of an unprivileged
//! process (and it makes setuid binaries powerless from here on). Descriptors are closed just
//! before seccomp so the filter never has to allow close_range for the launcher's sake, and
//! seccomp is last of all: it would filter the launcher's own setup calls.

use super::error::{StepError, Syscall};
use crate::plan::SeccompPlan;
use crate::plan::steps::Step;

/// Step 9.
pub fn no_new_privs() -> Result<(), StepError> {
    let step = Step::NoNewPrivs;
    nix::sys::prctl::set_no_new_privs().step(step, || "prctl(PR_SET_NO_NEW_PRIVS, 1)".into())?;
    match nix::sys::prctl::get_no_new_privs() {
        Ok(true) => Ok(()),
        Ok(false) => Err(StepError::msg(
            step,
            "prctl(PR_GET_NO_NEW_PRIVS) reads 0 after setting it",
        )),
        Err(e) => Err(StepError::sys(step, "prctl(PR_GET_NO_NEW_PRIVS)", e)),
    }
}

/// Step 11: closes every descriptor above stderr except `keep` (the channel, the program's
/// terminal, descriptors passed on purpose such as socket activation's).
///
/// # Safety
///
/// `keep` must hold every descriptor above stderr that an object still in use owns: any other
/// is closed, and an object that later used or dropped it would act on a closed number, or on
/// whatever the number is reused for.
#[allow(unsafe_code)]
pub unsafe fn close_fds(keep: &[u32]) -> Result<(), StepError> {
    let step = Step::CloseFds;
    let mut keep: Vec<u32> = keep.iter().copied().filter(|f| *f > 2).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut first = 3u32;
    for k in keep {
        if k > first {
            // SAFETY: no descriptor outside `keep` is owned by an object in use (this
            // function's contract).
            unsafe { crate::sys::close_range(first, k - 1, false) }
                .step(step, || format!("close_range({first}, {}, 0)", k - 1))?;
        }
        first = k + 1;
    }
    // SAFETY: as above.
    unsafe { crate::sys::close_range(first, u32::MAX, false) }
        .step(step, || format!("close_range({first}, ~0U, 0)"))?;
    Ok(())
}

/// Step 12: installs the filters in plan order.
pub fn seccomp(plan: &SeccompPlan) -> Result<Vec<(String, usize)>, StepError> {
    let mut installed = Vec::new();
    for f in &plan.filters {
        crate::sys::seccomp_install(&f.program).step(Step::Seccomp, || {
            format!(
                "seccomp(SECCOMP_SET_MODE_FILTER, 0, {{len: {}}}) [{}]",
                f.program.len(),
                f.name
            )
        })?;
        installed.push((f.name.clone(), f.program.len()));
    }
    Ok(installed)
}
