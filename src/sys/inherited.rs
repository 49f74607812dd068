//! The signal dispositions kekkai inherited from its caller, which the program must inherit.
//!
//! execve keeps a signal that is ignored (SIG_IGN) ignored, and resets a caught one to the
//! default: that is how `nohup` (SIGHUP), a shell's background job (SIGINT, SIGQUIT), `trap ''`
//! and systemd's `IgnoreSIGPIPE=yes` (SIGPIPE) reach the program they start. A program kekkai
//! starts gets what a plain exec by the caller would give it: SIG_IGN where the caller had
//! SIG_IGN, SIG_DFL everywhere else.
//!
//! kekkai changes two dispositions of its own process before the program starts: the Rust
//! runtime sets SIGPIPE to SIG_IGN before `main` (which hides the caller's), and `main` sets
//! an ignored SIGCHLD back to the default (an ignored SIGCHLD makes the kernel reap children
//! at once, without a SIGCHLD: the supervisor would never see the sandbox end). So those two
//! are recorded here before either change, by a constructor in `.init_array`: glibc's
//! `__libc_start_main` runs the executable's `.init_array` before it calls `main`, which is
//! where std's `lang_start` (and its SIGPIPE change) begins, in the dynamically linked debug
//! build as in the static-pie release build (there after `_dl_relocate_static_pie` has
//! relocated the entry); std records argc and argv the same way on glibc. No other
//! disposition changes in the supervisor, so the reaper learns the rest from the previous
//! actions its own handlers replace ([`super::set_noop_handler`]), at no extra call.

use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;

/// What a signal does when it arrives: what execve can pass on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// SIG_DFL (a caught signal becomes this at execve).
    Default,
    /// SIG_IGN.
    Ignore,
}

/// The signals whose caller's disposition is recorded: the ones kekkai itself changes.
const RECORDED: [libc::c_int; 2] = [libc::SIGPIPE, libc::SIGCHLD];

/// Bit `n - 1` set: the caller ignored signal `n` (only [`RECORDED`] ones are ever set).
static CALLER_IGNORED: AtomicU64 = AtomicU64::new(0);

/// Signal `signo`'s bit in a mask (none for a number outside 1..=64).
fn bit(signo: libc::c_int) -> u64 {
    match u32::try_from(signo) {
        Ok(n @ 1..=64) => 1u64 << (n - 1),
        _ => 0,
    }
}

/// The recorded disposition of `signo` in `mask`; `None` for a signal not recorded.
fn recorded_in(mask: u64, signo: libc::c_int) -> Option<Disposition> {
    if !RECORDED.contains(&signo) {
        return None;
    }
    Some(if mask & bit(signo) != 0 {
        Disposition::Ignore
    } else {
        Disposition::Default
    })
}

/// The caller's disposition of `signo`, for SIGPIPE and SIGCHLD; `None` for any other signal,
/// which kekkai leaves as the caller did (its current disposition in the supervisor).
pub fn recorded(signo: libc::c_int) -> Option<Disposition> {
    recorded_in(CALLER_IGNORED.load(Ordering::Relaxed), signo)
}

/// Is `signo` ignored in this process now? (One `sigaction` that changes nothing.)
pub fn ignored_now(signo: libc::c_int) -> nix::Result<bool> {
    // SAFETY: `sigaction` is plain old data; all-zero is a valid value for the kernel to
    // overwrite.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: no new action is read (null pointer); the kernel writes the old one into `old`,
    // which lives on this frame.
    Errno::result(unsafe { libc::sigaction(signo, std::ptr::null(), &raw mut old) })?;
    Ok(old.sa_sigaction == libc::SIG_IGN)
}

/// `main`'s first step: SIGPIPE back to what the caller had (the runtime ignored it), and an
/// ignored SIGCHLD back to the default, so kekkai's waits see its children end. One call for a
/// caller with both at their default (as before), none for one that ignores SIGPIPE.
/// Fails with the signal whose `sigaction` was refused.
pub fn restore_in_main() -> Result<(), (libc::c_int, Errno)> {
    if recorded(libc::SIGPIPE) == Some(Disposition::Default) {
        super::set_disposition(libc::SIGPIPE, Disposition::Default)
            .map_err(|e| (libc::SIGPIPE, e))?;
    }
    if recorded(libc::SIGCHLD) == Some(Disposition::Ignore) {
        super::set_disposition(libc::SIGCHLD, Disposition::Default)
            .map_err(|e| (libc::SIGCHLD, e))?;
    }
    Ok(())
}

/// In the program's own process, just before it execs (not under the reaper): SIGCHLD back to
/// SIG_IGN if the caller ignored it (`main` made it the default); no call otherwise.
pub fn restore_sigchld() -> nix::Result<()> {
    match recorded(libc::SIGCHLD) {
        Some(Disposition::Ignore) => super::set_disposition(libc::SIGCHLD, Disposition::Ignore),
        _ => Ok(()),
    }
}

/// The constructor: records which of [`RECORDED`] the caller ignored. Runs before `main`
/// (module docs); it takes glibc's `(argc, argv, envp)` and reads none of them.
extern "C" fn record(
    _argc: libc::c_int,
    _argv: *const *const libc::c_char,
    _envp: *const *const libc::c_char,
) {
    let mut mask = 0;
    for signo in RECORDED {
        // A refused query (it can't be, for these numbers) counts as the default: SIGPIPE is
        // then set to SIG_DFL, as kekkai always did.
        if ignored_now(signo) == Ok(true) {
            mask |= bit(signo);
        }
    }
    CALLER_IGNORED.store(mask, Ordering::Relaxed);
}

/// The `.init_array` entry for [`record`]. `#[used]` keeps it in the object file, and the
/// object is linked wherever [`recorded`] is (it reads `CALLER_IGNORED`, defined beside it).
// SAFETY: `.init_array` holds pointers to functions glibc calls once each, before `main`, as
// `void (*)(int, char **, char **)`; `record` has that signature and the C ABI, and it is
// sound to run before `main`: it makes two `sigaction` queries (libc is initialised before
// the init array runs) and stores an atomic; it touches nothing of std's runtime.
#[used]
#[unsafe(link_section = ".init_array")]
static RECORD: extern "C" fn(libc::c_int, *const *const libc::c_char, *const *const libc::c_char) =
    record;

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::hup(libc::SIGHUP, 0x1)]
    #[case::pipe(libc::SIGPIPE, 0x1000)]
    #[case::chld(libc::SIGCHLD, 0x1_0000)]
    #[case::last(64, 1 << 63)]
    #[case::zero(0, 0)]
    #[case::above(65, 0)]
    #[case::negative(-1, 0)]
    fn a_signal_is_its_bit_as_in_proc_status(#[case] signo: libc::c_int, #[case] want: u64) {
        assert_eq!(bit(signo), want);
    }

    /// Only SIGPIPE and SIGCHLD are recorded; a bit for anything else is never read.
    #[rstest]
    #[case::pipe_ignored(0x1000, libc::SIGPIPE, Some(Disposition::Ignore))]
    #[case::pipe_default(0x1_0000, libc::SIGPIPE, Some(Disposition::Default))]
    #[case::chld_ignored(0x1_1000, libc::SIGCHLD, Some(Disposition::Ignore))]
    #[case::chld_default(0, libc::SIGCHLD, Some(Disposition::Default))]
    #[case::hup_not_recorded(0x1, libc::SIGHUP, None)]
    #[case::int_not_recorded(!0, libc::SIGINT, None)]
    fn the_record_answers_for_sigpipe_and_sigchld(
        #[case] mask: u64,
        #[case] signo: libc::c_int,
        #[case] want: Option<Disposition>,
    ) {
        assert_eq!(recorded_in(mask, signo), want);
    }
}
