//! A plan handed from one kekkai to the kekkai it starts (`kekkai audit` to its inner
//! `__run-plan`): the plan's record in a sealed memfd the child inherits, so the policy is
//! loaded once, by the process that judges it, and the sandbox runs exactly that plan (no
//! second lookup of `-p NAME` or of its `extends`, which another process could have changed in
//! between).
//!
//! Why this is no new door: the receiving kekkai runs with the ids of whoever started it and
//! refuses to run set-user-ID or set-group-ID, so the plan it is handed acts with its caller's
//! own rights, as any policy that caller could write would; kekkai has no privilege of its own
//! to lend. The memfd is sealed before the child starts (no write, grow or shrink: what the
//! parent judged is what the child reads) and must belong to the receiver's own uid.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use nix::fcntl::{FcntlArg, FdFlag, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};

use kekkai::error::Error;
use kekkai::plan::Plan;

/// The largest plan record read back.
const MAX_RECORD: u64 = 16 << 20;

/// The seals a handed-over plan carries.
fn seals() -> SealFlag {
    SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_SEAL
}

/// A plan in a sealed memfd that the next program this process starts inherits.
pub(crate) struct Handoff(OwnedFd);

impl Handoff {
    /// Writes the plan's record into a new memfd and seals it. The descriptor is inherited by
    /// the next command spawned (not close-on-exec): spawn it, then drop this.
    pub(crate) fn new(plan: &Plan) -> Result<Handoff, Error> {
        let io = |e: nix::errno::Errno| Error::io("handing the plan on (memfd)", e.into());
        let record = plan
            .to_record()
            .map_err(|e| Error::Host(format!("the plan can't be recorded: {e}")))?;
        let fd = memfd_create("kekkai-plan", MFdFlags::MFD_ALLOW_SEALING).map_err(io)?;
        let mut file = File::from(fd);
        file.write_all(&record)
            .map_err(|e| Error::io("handing the plan on (memfd)", e))?;
        fcntl(&file, FcntlArg::F_ADD_SEALS(seals())).map_err(io)?;
        // Inherited by the child (memfd_create without MFD_CLOEXEC already is; said again in
        // case a flag changes).
        fcntl(&file, FcntlArg::F_SETFD(FdFlag::empty())).map_err(io)?;
        Ok(Handoff(file.into()))
    }

    /// The descriptor's number, for `--plan-fd`.
    pub(crate) fn number(&self) -> i32 {
        self.0.as_raw_fd()
    }
}

/// Reads the plan handed over on descriptor `n`: a sealed memfd of this uid's. The inherited
/// descriptor is reopened through /proc/self/fd (a description of this process's own) and
/// checked there; the inherited one stays open and is closed with every other one in the
/// sandbox's step 11.
pub(crate) fn receive(n: i32) -> Result<Plan, Error> {
    let refuse = |why: &str| Error::Host(format!("--plan-fd {n}: {why}"));
    let (ruid, euid, _) = nix::unistd::getresuid()
        .map(|r| (r.real, r.effective, r.saved))
        .map_err(|e| Error::io("getresuid", e.into()))?;
    let (rgid, egid) = (nix::unistd::getgid(), nix::unistd::getegid());
    if ruid != euid || rgid != egid {
        return Err(refuse("refused: kekkai runs set-user-ID or set-group-ID"));
    }
    if n <= 2 {
        return Err(refuse("not a handed-over plan"));
    }
    let mut file = File::open(format!("/proc/self/fd/{n}"))
        .map_err(|e| Error::io(format!("--plan-fd {n}"), e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("--plan-fd {n}"), e))?;
    let sealed = fcntl(file.as_fd(), FcntlArg::F_GET_SEALS)
        .ok()
        .map(SealFlag::from_bits_truncate)
        .is_some_and(|s| s.contains(seals()));
    if !meta.is_file() || !sealed {
        return Err(refuse("not a sealed memfd"));
    }
    if meta.uid() != euid.as_raw() {
        return Err(refuse("made by another user"));
    }
    if meta.len() > MAX_RECORD {
        return Err(refuse("too large"));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("--plan-fd {n}"), e))?;
    Plan::from_record(&bytes).map_err(|e| refuse(&e.to_string()))
}
