//! Steps 9, 11 and 12: no_new_privs, closing inherited descriptors, and seccomp.
//!
//! no_new_privs comes before Landlock and seccomp because both require it of an unprivileged
//! process (and it makes setuid binaries powerless from here on). Descriptors are closed just
//! before seccomp so the filter never has to allow close_range for the launcher's sake, and
//! seccomp is last of all: it would filter the launcher's own setup calls.

use super::error::{StepError, Syscall};
use super::sync::Channel;
use crate::plan::SeccompPlan;
use crate::plan::steps::Step;
use crate::sys::Kernel;

/// Step 9.
pub fn no_new_privs(k: &dyn Kernel) -> Result<(), StepError> {
    let step = Step::NoNewPrivs;
    k.set_no_new_privs()
        .step(step, || "prctl(PR_SET_NO_NEW_PRIVS, 1)".into())?;
    match k.get_no_new_privs() {
        Ok(true) => Ok(()),
        Ok(false) => Err(StepError::msg(
            step,
            "prctl(PR_GET_NO_NEW_PRIVS) reads 0 after setting it",
        )),
        Err(e) => Err(StepError::sys(step, "prctl(PR_GET_NO_NEW_PRIVS)", e)),
    }
}

/// The ranges `close_range` is called with to close every descriptor above stderr but `keep`.
pub fn ranges(keep: &[u32]) -> Vec<(u32, u32)> {
    let mut keep: Vec<u32> = keep.iter().copied().filter(|f| *f > 2).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut out = Vec::new();
    let mut first = Some(3u32);
    for k in keep {
        let Some(f) = first else { break };
        if k > f {
            out.push((f, k - 1));
        }
        first = k.checked_add(1);
    }
    if let Some(f) = first {
        out.push((f, u32::MAX));
    }
    out
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
pub unsafe fn close_fds(k: &dyn Kernel, keep: &[u32]) -> Result<(), StepError> {
    for (first, last) in ranges(keep) {
        // SAFETY: no descriptor outside `keep` is owned by an object in use (this function's
        // contract).
        unsafe { k.close_range(first, last) }.step(Step::CloseFds, || {
            if last == u32::MAX {
                format!("close_range({first}, ~0U, 0)")
            } else {
                format!("close_range({first}, {last}, 0)")
            }
        })?;
    }
    Ok(())
}

/// Step 12 under `kekkai learn`: the observer filter, on top of the policy's, and its listener
/// sent to the supervisor. From here every call the policy allows waits for the supervisor's
/// CONTINUE; the send itself is the one the observer lets by.
pub fn observe(k: &dyn Kernel, chan: &Channel) -> Result<(), StepError> {
    let channel = u32::try_from(crate::sys::raw(chan.fd())).unwrap_or(u32::MAX);
    let program = crate::plan::seccomp::observe::program(channel);
    let listener = k.seccomp_install_listener(&program).step(Step::Seccomp, || {
        format!(
            "seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, {{len: {}}}) [observer]",
            program.len()
        )
    })?;
    chan.send_listener(std::os::fd::AsFd::as_fd(&listener))
        .step(Step::Seccomp, || {
            "sendmsg(channel, listener, MSG_NOSIGNAL)".into()
        })?;
    // Closed before the program starts (it is close-on-exec too): only the supervisor listens.
    drop(listener);
    Ok(())
}

/// Step 12: installs the filters in plan order.
pub fn seccomp(k: &dyn Kernel, plan: &SeccompPlan) -> Result<Vec<(String, usize)>, StepError> {
    let mut installed = Vec::new();
    for f in &plan.filters {
        k.seccomp_install(&f.program).step(Step::Seccomp, || {
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

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// What stays open: stdio and `keep`; everything else above 2 is in exactly one range.
    #[rstest]
    #[case::nothing_kept(&[], &[(3, u32::MAX)])]
    #[case::the_channel(&[5], &[(3, 4), (6, u32::MAX)])]
    #[case::adjacent_and_first(&[3, 4, 9], &[(5, 8), (10, u32::MAX)])]
    #[case::unsorted_with_stdio_and_duplicates(&[7, 1, 7, 4], &[(3, 3), (5, 6), (8, u32::MAX)])]
    #[case::the_last_number(&[u32::MAX], &[(3, u32::MAX - 1)])]
    fn ranges_close_all_but_keep(#[case] keep: &[u32], #[case] want: &[(u32, u32)]) {
        assert_eq!(ranges(keep), want);
    }
}
