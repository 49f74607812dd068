//! Step 7: host name, loopback, rlimits, working directory — still privileged inside the
//! namespaces, after pivot_root (the working directory is a path in the new root).

use nix::sys::resource::Resource;

use super::error::{StepError, Syscall};
use crate::plan::steps::Step;
use crate::plan::{Network, Plan, Rlimit};
use crate::sys::Kernel;

fn resource(limit: Rlimit) -> Resource {
    match limit {
        Rlimit::Nofile => Resource::RLIMIT_NOFILE,
        Rlimit::Nproc => Resource::RLIMIT_NPROC,
        Rlimit::Core => Resource::RLIMIT_CORE,
        Rlimit::Fsize => Resource::RLIMIT_FSIZE,
        Rlimit::As => Resource::RLIMIT_AS,
        Rlimit::Cpu => Resource::RLIMIT_CPU,
        Rlimit::Stack => Resource::RLIMIT_STACK,
        Rlimit::Memlock => Resource::RLIMIT_MEMLOCK,
    }
}

/// Applies step 7. Returns notes on what could not be done as asked but is not a loss of
/// confinement (an rlimit the sandbox may not raise stays at the host's hard limit).
pub fn apply(k: &dyn Kernel, plan: &Plan) -> Result<Vec<String>, StepError> {
    let mut notes = Vec::new();
    let step = Step::Environment;
    if let Some(h) = &plan.hostname {
        k.sethostname(h)
            .step(step, || format!("sethostname({:?})", h.value))
            .map_err(|e| e.key(&h.key))?;
    }
    if *plan.network == Network::None {
        k.loopback_up()
            .step(step, || "ioctl(SIOCSIFFLAGS, \"lo\", IFF_UP)".into())
            .map_err(|e| e.key(&plan.network.key))?;
    }
    for r in &plan.rlimits {
        let key = &r.key;
        let res = resource(r.limit);
        let name = r.limit.name();
        let v = if r.value == u64::MAX {
            libc::RLIM_INFINITY
        } else {
            r.value
        };
        let call = |v: u64| format!("setrlimit(RLIMIT_{}, {v}, {v})", name.to_uppercase());
        match k.setrlimit(res, v, v) {
            Ok(()) => {}
            Err(nix::errno::Errno::EPERM) => {
                // Raising a hard limit needs CAP_SYS_RESOURCE. A limit that can't be raised does
                // not weaken the sandbox: keep the host's hard limit and say so.
                let (_, hard) = k.getrlimit(res).step(step, || {
                    format!("getrlimit(RLIMIT_{})", name.to_uppercase())
                })?;
                if hard >= v {
                    return Err(StepError::sys(step, call(v), nix::errno::Errno::EPERM).key(key));
                }
                k.setrlimit(res, hard, hard)
                    .step(step, || call(hard))
                    .map_err(|e| e.key(key))?;
                notes.push(format!(
                    "{key}: {v} is above the hard limit {hard}, and raising it needs CAP_SYS_RESOURCE; kept {hard}"
                ));
            }
            Err(e) => return Err(StepError::sys(step, call(v), e).key(key)),
        }
    }
    k.chdir(plan.cwd.as_path())
        .step(step, || format!("chdir({:?})", plan.cwd.value))
        .map_err(|e| {
            e.key(&plan.cwd.key)
                .hint("the working directory must exist inside the sandbox")
        })?;
    Ok(notes)
}
