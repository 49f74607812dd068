//! Step 7: host name, loopback, rlimits, working directory — still privileged inside the
//! namespaces, after pivot_root (the working directory is a path in the new root).

use nix::sys::resource::{Resource, setrlimit};

use super::error::{StepError, Syscall};
use crate::plan::Plan;
use crate::plan::steps::Step;
use crate::policy::KeyPath;
use crate::policy::model::Network;

fn resource(n: u32) -> Option<Resource> {
    Some(match n {
        libc::RLIMIT_NOFILE => Resource::RLIMIT_NOFILE,
        libc::RLIMIT_NPROC => Resource::RLIMIT_NPROC,
        libc::RLIMIT_CORE => Resource::RLIMIT_CORE,
        libc::RLIMIT_FSIZE => Resource::RLIMIT_FSIZE,
        libc::RLIMIT_AS => Resource::RLIMIT_AS,
        libc::RLIMIT_CPU => Resource::RLIMIT_CPU,
        libc::RLIMIT_STACK => Resource::RLIMIT_STACK,
        libc::RLIMIT_MEMLOCK => Resource::RLIMIT_MEMLOCK,
        _ => return None,
    })
}

/// Applies step 7.
pub fn apply(plan: &Plan) -> Result<(), StepError> {
    let step = Step::Environment;
    if let Some(h) = &plan.hostname {
        nix::unistd::sethostname(h)
            .step(step, || format!("sethostname({h:?})"))
            .map_err(|e| e.key(&KeyPath::root().key("hostname")))?;
    }
    if plan.network == Network::None {
        crate::sys::loopback_up()
            .step(step, || "ioctl(SIOCSIFFLAGS, \"lo\", IFF_UP)".into())
            .map_err(|e| e.key(&KeyPath::root().key("network")))?;
    }
    for r in &plan.rlimits {
        let Some(res) = resource(r.resource) else {
            return Err(StepError::msg(
                step,
                format!("unknown rlimit {}", r.resource),
            ));
        };
        let v = if r.value == u64::MAX {
            libc::RLIM_INFINITY
        } else {
            r.value
        };
        setrlimit(res, v, v)
            .step(step, || {
                format!("setrlimit(RLIMIT_{}, {v}, {v})", r.name.to_uppercase())
            })
            .map_err(|e| e.key(&KeyPath::root().key("rlimits").key(r.name)))?;
    }
    nix::unistd::chdir(plan.cwd.as_path())
        .step(step, || format!("chdir({:?})", plan.cwd))
        .map_err(|e| {
            e.key(&KeyPath::root().key("cwd"))
                .hint("the working directory must exist inside the sandbox")
        })?;
    Ok(())
}
