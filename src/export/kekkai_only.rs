//! The closing summary: what only kekkai enforces, in one list.

use super::directive::Unit;
use crate::plan::{Namespace, Plan};

pub(super) fn write(plan: &Plan, o: &mut Unit) {
    o.heading("only kekkai enforces");
    o.bullet("The fresh read-only root and the mount order (see filesystem).");
    if plan.landlock.enabled {
        o.bullet("Landlock (see above).");
    }
    if !plan.seccomp.filters.is_empty() {
        o.bullet("seccomp argument filters and per-syscall answers (see seccomp).");
    }
    o.bullet(
        "Bind sources are checked at launch (device and inode, as planned); every inherited \
         descriptor but stdio and socket activation's is closed.",
    );
    if !plan.as_pid_1 && plan.has(Namespace::Pid) {
        o.bullet("A minimal reaper runs as PID 1 of the sandbox.");
    }
}
