//! The host side of an audit: the probe context a plan gives ([`context`]), the fixtures the
//! probes try to reach ([`fixtures`]: a loopback TCP listener, an abstract unix socket, a SysV
//! shared-memory segment, a secret in the launcher's environment, a root-owned file), and a
//! private read-only copy of the probe program for the sandbox to run ([`ProbeCopy`]).
//!
//! [`context`] only reads (the plan, and the host's tree for Landlock targets); what the run
//! will drop from a best-effort policy's limits comes from the cgroup layout the caller
//! detected, and stepping aside in the cgroup tree is the caller's to do before the run.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Ctx, SECRET_PATH};
use crate::launch::cgroup::Layout;
use crate::plan::fs::MountKind;
use crate::plan::landlock::{access, allows};
use crate::plan::{Controller, Plan, Rlimit};
use crate::plan::{Namespace, Network, Scope};

/// The probe context for a plan (the plan-derived part; fixtures are added by the caller).
/// `layout` is where the run will put each cgroup controller ([`crate::launch::cgroup::detect`]
/// for the plan's limits): what it can't place, a best-effort run drops.
pub fn context(plan: &Plan, layout: &Layout) -> Ctx {
    // Writable mounts that no later mount covers.
    let writable: Vec<(&Path, Option<u64>)> = plan
        .mounts
        .iter()
        .enumerate()
        .filter(|(i, m)| {
            !plan
                .mounts
                .iter()
                .skip(i + 1)
                .any(|later| m.target.starts_with(&later.target))
        })
        .filter_map(|(_, m)| match &m.kind {
            MountKind::Tmpfs { size, .. } => Some((m.target.as_path(), Some(*size))),
            MountKind::Bind { writable: true, .. } => Some((m.target.as_path(), None)),
            _ => None,
        })
        .collect();
    let scratch = writable
        .iter()
        .find(|(p, _)| *p == Path::new("/tmp"))
        .or_else(|| writable.first())
        .copied();
    let ll = &plan.landlock;
    let hidden: Vec<&Path> = plan
        .mounts
        .iter()
        .filter(|m| matches!(m.kind, MountKind::Hide))
        .map(|m| m.target.as_path())
        .collect();
    let visible = |p: &Path| {
        !hidden.iter().any(|h| p.starts_with(h))
            && !plan.mounts.iter().any(|m| p.starts_with(&m.target))
    };
    // What the run will drop from a best-effort policy's limits, decided as the run will.
    let dropped = |c: Controller| {
        layout
            .choices
            .iter()
            .find(|(x, r)| *x == c && r.is_err())
            .and_then(|(_, r)| r.clone().err())
    };
    // Targets come from the rules even when Landlock is off, so that a policy that turns it
    // off shows what gets through.
    let (read_target, exec_target) = landlock_targets(plan, &visible);
    Ctx {
        control: false,
        scratch: scratch.map_or_else(|| "/tmp".into(), |(p, _)| p.display().to_string()),
        scratch_size: scratch.and_then(|(_, s)| s),
        host_network: *plan.network == Network::Host,
        user_network: *plan.network == Network::User,
        abstract_scope: ll.enabled && ll.scopes.contains(&Scope::AbstractUnix),
        pid_namespace: plan.has(Namespace::Pid),
        kept_caps: plan.caps.keep,
        pids_limit: plan.limits.pids.as_deref().copied(),
        dropped_pids: dropped(Controller::Pids),
        dropped_memory: dropped(Controller::Memory),
        memory_limit: plan.limits.memory.as_deref().copied(),
        nofile_limit: plan
            .rlimits
            .iter()
            .find(|r| r.limit == Rlimit::Nofile)
            .map(|r| r.value),
        landlock_read_target: read_target,
        landlock_exec_target: exec_target,
        landlock_write_target: scratch.map(|(p, _)| p.display().to_string()),
        landlock_write_denied: writable
            .iter()
            .find(|(p, _)| ll.enabled && !allows(ll, p, access::WRITE_FILE | access::MAKE_REG))
            .map(|(p, _)| p.display().to_string()),
        root_writable: plan.rootfs.writable,
        hidden_path: hidden.first().map(|p| p.display().to_string()),
        writable_mounts: writable
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect(),
        limits: plan.limits.parts().into_iter().map(|(_, t)| t).collect(),
        dropped_limits: layout.missing(),
        as_pid_1: plan.as_pid_1,
        grants: plan.audit_grants.clone(),
        ..Ctx::default()
    }
}

/// A file the mount table shows but Landlock's read rules don't cover, and an executable that
/// Landlock's execute rules don't cover (only when the root is the host's own tree).
fn landlock_targets(
    plan: &Plan,
    visible: &dyn Fn(&Path) -> bool,
) -> (Option<String>, Option<String>) {
    use std::os::unix::fs::PermissionsExt;
    let ll = &plan.landlock;
    let mut read: Option<String> = None;
    let mut exec: Option<String> = None;
    if plan.rootfs.lowers.iter().all(|l| l != Path::new("/")) {
        return (None, None);
    }
    let mut dirs = vec![PathBuf::from("/")];
    let mut seen = 0;
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(Result::ok).take(200) {
            seen += 1;
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                if d.components().count() < 4
                    && !p.starts_with("/proc")
                    && !p.starts_with("/sys")
                    && !p.starts_with("/dev")
                {
                    dirs.insert(0, p);
                }
                continue;
            }
            if !meta.is_file() || !visible(&p) {
                continue;
            }
            if read.is_none() && !allows(ll, &p, access::READ_FILE) {
                read = Some(p.display().to_string());
            }
            let executable = meta.permissions().mode() & 0o111 != 0;
            if exec.is_none()
                && executable
                && allows(ll, &p, access::READ_FILE)
                && !allows(ll, &p, access::EXECUTE)
            {
                exec = Some(p.display().to_string());
            }
        }
        if (read.is_some() && exec.is_some()) || seen > 20_000 {
            break;
        }
    }
    (read, exec)
}

/// Host fixtures, kept alive while the sandbox runs.
pub struct Fixtures {
    _tcp: Option<std::net::TcpListener>,
    _abstract: Option<std::os::unix::net::UnixListener>,
    shm_id: Option<i32>,
    secret_dir: Option<PathBuf>,
}

impl Fixtures {
    /// The root-owned 0600 file on the host, to bind at [`SECRET_PATH`].
    pub fn secret_file(&self) -> Option<PathBuf> {
        self.secret_dir.as_ref().map(|d| d.join("secret"))
    }
}

/// A root-owned 0600 file of random bytes in a fresh 0700 directory (the audit runs as root).
fn make_secret() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = std::env::temp_dir().join(format!(
        "kekkai-audit-secret-{}-{:x}",
        std::process::id(),
        random_u64()
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    let made = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join("secret"))
        .and_then(|mut f| f.write_all(format!("{:016x}\n", random_u64()).as_bytes()));
    if let Err(e) = made {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    Ok(dir)
}

impl Drop for Fixtures {
    fn drop(&mut self) {
        if let Some(dir) = &self.secret_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(id) = self.shm_id {
            let _ = crate::sys::shm_remove(id);
        }
    }
}

/// Sets up the host side and fills the fixture part of the context.
pub fn fixtures(ctx: &mut Ctx) -> Fixtures {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").ok();
    ctx.tcp_port = tcp
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.port());
    let name = format!("kekkai-audit-{}-{}", std::process::id(), random_u64());
    let abstract_sock = {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|a| std::os::unix::net::UnixListener::bind_addr(&a))
            .ok()
    };
    if abstract_sock.is_some() {
        ctx.abstract_name = Some(name);
    }
    let key = i32::try_from(random_u64() & 0x3fff_ffff).map_or(1, |k| k | 1);
    // IPC_CREAT | IPC_EXCL | 0600
    let shm_id = crate::sys::shmget(key, 4096, 0o1000 | 0o2000 | 0o600).ok();
    if shm_id.is_some() {
        ctx.shm_key = Some(key);
    }
    ctx.host_pid = i32::try_from(std::process::id()).ok();
    ctx.secret = Some(format!("kekkai-audit-secret-{:016x}", random_u64()));
    // Root's secrets: a 0600 file only root can make, and the host's own /etc/shadow.
    let secret_dir = if nix::unistd::geteuid().is_root() {
        make_secret().ok()
    } else {
        None
    };
    // A sandbox kekkai builds sees the file at SECRET_PATH (bound read-only); elsewhere the
    // probe looks for it where it is on the host.
    ctx.root_secret = secret_dir.as_ref().map(|d| {
        if ctx.control || ctx.built_by != super::Builder::Kekkai {
            d.join("secret").display().to_string()
        } else {
            SECRET_PATH.to_owned()
        }
    });
    ctx.shadow = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/etc/shadow")
            .ok()
            .filter(|m| m.is_file() && m.uid() == 0 && m.mode() & 0o004 == 0)
            .map(|_| "/etc/shadow".to_owned())
    };
    Fixtures {
        _tcp: tcp,
        _abstract: abstract_sock,
        shm_id,
        secret_dir,
    }
}

/// A random number (from the standard library's randomly keyed hasher).
fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::process::id())
}

/// A private, world-readable copy of the probe program (so the sandbox never sees a writable
/// host binary, and a sandbox run as another user can read it), removed on drop.
pub struct ProbeCopy {
    dir: PathBuf,
    name: String,
}

impl ProbeCopy {
    /// Copies `program` into a new directory of the temp dir. The directory is created with
    /// mode 0700 and opened to everyone (0755) only once the copy is complete; the copy is made
    /// with `O_EXCL | O_NOFOLLOW` through one descriptor: nobody else can put a name there
    /// first, so a link planted in the shared temp dir can't turn the copy into a write to
    /// another file.
    pub fn new(program: &Path) -> std::io::Result<ProbeCopy> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let dir = std::env::temp_dir().join(format!(
            "kekkai-audit-{}-{:x}",
            std::process::id(),
            random_u64()
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let copy = ProbeCopy {
            dir,
            name: super::program::PROBE_NAME.into(),
        };
        let mut exe = std::fs::File::open(program)?;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .custom_flags(libc::O_NOFOLLOW)
            .open(copy.path())?;
        std::io::copy(&mut exe, &mut out)?;
        out.set_permissions(std::fs::Permissions::from_mode(0o555))?;
        std::fs::set_permissions(&copy.dir, std::fs::Permissions::from_mode(0o755))?;
        Ok(copy)
    }

    /// The copy's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// Where the sandbox's run writes its `--report` (beside the copy, which the sandbox sees
    /// alone; the directory is this process's own, writable by nobody else).
    pub fn run_report(&self) -> PathBuf {
        self.dir.join("run-report.json")
    }
}

impl Drop for ProbeCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
