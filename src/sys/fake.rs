//! A recording [`Kernel`] for unit tests: every call is kept, in order, with its arguments as
//! data, and succeeds — unless the test said that call number N (or the first call that
//! matches a predicate) fails with an errno. Nothing reaches the kernel but the descriptors it
//! hands out, which are duplicates of one `/dev/null` descriptor, each with the path it was
//! opened as (so a recorded `/proc/self/fd/N` or descriptor reads as that path).
//!
//! `execve` that succeeds and `exit` end the process; here they unwind to the test with an
//! [`Ended`] payload instead (`std::panic::resume_unwind`, which runs no panic hook), so a
//! test runs the steps inside `catch_unwind` and reads where they ended.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use caps::errors::CapsError;
use caps::{CapSet, Capability, CapsHashSet};
use nix::errno::Errno;
use nix::fcntl::{OFlag, ResolveFlag};
use nix::mount::{MntFlags, MsFlags};
use nix::sys::resource::Resource;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

use super::CapSets;
use super::kernel::{Kernel, Stat};
use super::landlock::{Enforcement, LandlockError, LandlockRuleset, LandlockStatus};

/// One recorded call. Descriptors and `/proc/self/fd/N` paths are shown as the paths the fake
/// opened them as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// The start of a launch step (not a system call; not counted).
    Begin(&'static str),
    Mount {
        source: Option<String>,
        target: String,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    Umount2(String, MntFlags),
    PivotRoot(String, String),
    Chdir(PathBuf),
    Fchdir(String),
    Open(PathBuf, OFlag),
    Openat2(String, PathBuf, OFlag, ResolveFlag),
    CreateFile(String, PathBuf),
    WriteFile(String, PathBuf, Vec<u8>),
    Mkdirat(String, PathBuf),
    Symlinkat(PathBuf, String, PathBuf),
    Fstat(String),
    Dup(String),
    OpenTreeClone(String, bool),
    MoveMount(String, String),
    MountSetattr(String, u64, bool),
    Sethostname(String),
    LoopbackUp,
    Setrlimit(Resource, u64, u64),
    Getrlimit(Resource),
    Setgroups(Vec<u32>),
    Setresgid(u32),
    Setresuid(u32),
    CapbsetRead(u32),
    CapbsetDrop(u32),
    SetKeepcaps(bool),
    /// effective, permitted, inheritable.
    Capset(u64, u64, u64),
    CapClear(&'static str),
    CapRaise(&'static str, Capability),
    Capget,
    SetPdeathsig(Signal),
    JoinCgroupV1(String),
    SetDumpable(bool),
    ForgetLauncherArgs,
    /// `umask(mask)` (a call that can't fail: a failure a test asks for is not given).
    Umask(u32),
    SetNoNewPrivs,
    GetNoNewPrivs,
    LandlockAbi,
    LandlockRestrict(LandlockRuleset),
    CloseRange(u32, u32),
    /// How many descriptors.
    CloseOwned(usize),
    SeccompInstall(usize),
    /// A filter with a listener (`kekkai learn`), by length.
    SeccompListen(usize),
    Execve(CString, Vec<CString>),
    Exit(i32),
}

/// What a `.` reads as before the first `chdir` or `fchdir`: the launcher's working directory,
/// which no path of the sandbox's setup may be resolved against.
pub const LAUNCHER_CWD: &str = "(the launcher's working directory)";

/// The fake caller's file mode creation mask: a strict one (systemd's `UMask=0077`), so a
/// directory the launch makes with it would be 0700.
pub const CALLER_UMASK: u32 = 0o077;

/// How the recorded process ended: the payload [`Fake`] unwinds with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// execve succeeded (the program would run now).
    Exec(CString),
    /// exit(code).
    Exit(i32),
}

/// Which call fails.
enum Fail {
    /// The call with this number (0 is the first; step marks are not counted).
    At(usize, Errno),
    /// The first call the predicate accepts.
    First(Box<dyn Fn(&Call) -> bool>, Errno),
}

/// The recording kernel.
pub struct Fake {
    log: RefCell<Vec<Call>>,
    count: Cell<usize>,
    fail: RefCell<Option<Fail>>,
    /// Where the descriptors handed out come from.
    null: OwnedFd,
    /// What each descriptor handed out stands for.
    names: RefCell<HashMap<RawFd, String>>,
    /// What `fstat` answers for a path (anything else: a directory, device and inode 0).
    stats: HashMap<PathBuf, Stat>,
    /// The capability sets as set so far.
    caps: RefCell<HashMap<&'static str, CapsHashSet>>,
    no_new_privs: Cell<bool>,
    /// The number of capabilities the fake kernel knows (capbset_read: EINVAL from here).
    last_cap: u32,
    /// The Landlock ABI it reports.
    abi: i32,
    /// What the working directory stands for (set by `chdir` and `fchdir`), so a `.` target
    /// reads as that path.
    cwd: RefCell<String>,
    /// The file mode creation mask (a caller's 077 to begin with).
    umask: Cell<u32>,
}

impl Fake {
    /// A kernel where everything succeeds, with 41 capabilities and Landlock ABI 6.
    pub fn new() -> std::io::Result<Fake> {
        let null = std::fs::File::open("/dev/null")?.into();
        Ok(Fake {
            log: RefCell::default(),
            count: Cell::new(0),
            fail: RefCell::default(),
            null,
            names: RefCell::default(),
            stats: HashMap::new(),
            caps: RefCell::default(),
            no_new_privs: Cell::new(false),
            last_cap: 41,
            abi: 6,
            cwd: RefCell::new(LAUNCHER_CWD.into()),
            umask: Cell::new(CALLER_UMASK),
        })
    }

    /// `fstat` of a descriptor opened as `path` answers `stat`.
    #[must_use]
    pub fn with_stat(mut self, path: &Path, stat: Stat) -> Fake {
        self.stats.insert(path.to_path_buf(), stat);
        self
    }

    /// Call number `n` (0-based; step marks are not counted) fails with `errno`.
    #[must_use]
    pub fn fail_at(self, n: usize, errno: Errno) -> Fake {
        *self.fail.borrow_mut() = Some(Fail::At(n, errno));
        self
    }

    /// The first call `which` accepts fails with `errno`.
    #[must_use]
    pub fn fail_first(self, which: impl Fn(&Call) -> bool + 'static, errno: Errno) -> Fake {
        *self.fail.borrow_mut() = Some(Fail::First(Box::new(which), errno));
        self
    }

    /// Everything recorded, step marks included.
    pub fn log(&self) -> Vec<Call> {
        self.log.borrow().clone()
    }

    /// The calls, without the step marks.
    pub fn calls(&self) -> Vec<Call> {
        self.log
            .borrow()
            .iter()
            .filter(|c| !matches!(c, Call::Begin(_)))
            .cloned()
            .collect()
    }

    /// Records a call; its result is the injected failure, if this is the one.
    fn act(&self, call: Call) -> nix::Result<()> {
        let n = self.count.get();
        self.count.set(n + 1);
        let failing = match &*self.fail.borrow() {
            Some(Fail::At(at, e)) if *at == n => Some(*e),
            Some(Fail::First(which, e)) if which(&call) => Some(*e),
            _ => None,
        };
        self.log.borrow_mut().push(call);
        match failing {
            Some(e) => {
                // Only once.
                *self.fail.borrow_mut() = None;
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// The path a descriptor the fake handed out stands for (else its number).
    fn name(&self, fd: BorrowedFd<'_>) -> String {
        let raw = fd.as_raw_fd();
        if raw == libc::AT_FDCWD {
            return ".".into();
        }
        self.names
            .borrow()
            .get(&raw)
            .cloned()
            .unwrap_or_else(|| format!("fd {raw}"))
    }

    /// `/proc/self/fd/N` for a descriptor the fake handed out reads as its path, and `.` as
    /// the working directory's.
    fn path_of(&self, path: &str) -> String {
        if path == "." {
            return self.cwd.borrow().clone();
        }
        path.strip_prefix("/proc/self/fd/")
            .and_then(|n| n.parse::<RawFd>().ok())
            .and_then(|n| self.names.borrow().get(&n).cloned())
            .unwrap_or_else(|| path.to_owned())
    }

    /// A new descriptor standing for `name`.
    fn hand_out(&self, name: String) -> nix::Result<OwnedFd> {
        let fd = self
            .null
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
        self.names.borrow_mut().insert(fd.as_raw_fd(), name);
        Ok(fd)
    }

    fn caps_result(r: nix::Result<()>) -> Result<(), CapsError> {
        r.map_err(|e| CapsError::from(format!("{e}")))
    }
}

/// `dir` joined with `path` (an absolute `path` stands alone).
fn joined(dir: &str, path: &Path) -> String {
    if path.is_absolute() || dir == "." {
        path.display().to_string()
    } else if path == Path::new(".") {
        dir.to_owned()
    } else {
        format!("{}/{}", dir.trim_end_matches('/'), path.display())
    }
}

/// A capability set's name (the caps crate's `CapSet` has no equality).
fn set_name(set: CapSet) -> &'static str {
    match set {
        CapSet::Ambient => "ambient",
        CapSet::Bounding => "bounding",
        CapSet::Effective => "effective",
        CapSet::Inheritable => "inheritable",
        CapSet::Permitted => "permitted",
    }
}

fn to_mask(caps: &CapsHashSet) -> u64 {
    caps.iter().fold(0, |m, c| m | (1u64 << c.index()))
}

fn from_mask(mask: u64) -> CapsHashSet {
    caps::all()
        .into_iter()
        .filter(|c| mask & (1u64 << c.index()) != 0)
        .collect()
}

impl Kernel for Fake {
    fn begin(&self, step: &'static str) {
        self.log.borrow_mut().push(Call::Begin(step));
    }

    fn mount(
        &self,
        source: Option<&str>,
        target: &str,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()> {
        self.act(Call::Mount {
            source: source.map(str::to_owned),
            target: self.path_of(target),
            fstype: fstype.map(str::to_owned),
            flags,
            data: data.map(str::to_owned),
        })
    }

    fn umount2(&self, target: &str, flags: MntFlags) -> nix::Result<()> {
        self.act(Call::Umount2(target.to_owned(), flags))
    }

    fn pivot_root(&self, new_root: &str, put_old: &str) -> nix::Result<()> {
        self.act(Call::PivotRoot(new_root.to_owned(), put_old.to_owned()))
    }

    fn chdir(&self, path: &Path) -> nix::Result<()> {
        self.act(Call::Chdir(path.to_path_buf()))?;
        *self.cwd.borrow_mut() = path.display().to_string();
        Ok(())
    }

    fn fchdir(&self, dir: BorrowedFd<'_>) -> nix::Result<()> {
        let name = self.name(dir);
        self.act(Call::Fchdir(name.clone()))?;
        *self.cwd.borrow_mut() = name;
        Ok(())
    }

    fn open(&self, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        self.act(Call::Open(path.to_path_buf(), flags))?;
        self.hand_out(path.display().to_string())
    }

    fn openat2(
        &self,
        dir: BorrowedFd<'_>,
        path: &Path,
        flags: OFlag,
        resolve: ResolveFlag,
    ) -> nix::Result<OwnedFd> {
        let dir = self.name(dir);
        let name = joined(&dir, path);
        self.act(Call::Openat2(dir, path.to_path_buf(), flags, resolve))?;
        self.hand_out(name)
    }

    fn create_file(&self, dir: BorrowedFd<'_>, name: &Path, _mode: Mode) -> nix::Result<OwnedFd> {
        let dir = self.name(dir);
        let file = joined(&dir, name);
        self.act(Call::CreateFile(dir, name.to_path_buf()))?;
        self.hand_out(file)
    }

    fn write_file(
        &self,
        dir: BorrowedFd<'_>,
        name: &Path,
        _mode: Mode,
        contents: &[u8],
    ) -> nix::Result<()> {
        self.act(Call::WriteFile(
            self.name(dir),
            name.to_path_buf(),
            contents.to_vec(),
        ))
    }

    fn mkdirat(&self, dir: BorrowedFd<'_>, name: &Path, _mode: Mode) -> nix::Result<()> {
        self.act(Call::Mkdirat(self.name(dir), name.to_path_buf()))
    }

    fn symlinkat(&self, target: &Path, dir: BorrowedFd<'_>, name: &Path) -> nix::Result<()> {
        self.act(Call::Symlinkat(
            target.to_path_buf(),
            self.name(dir),
            name.to_path_buf(),
        ))
    }

    fn fstat(&self, fd: BorrowedFd<'_>) -> nix::Result<Stat> {
        let name = self.name(fd);
        self.act(Call::Fstat(name.clone()))?;
        Ok(self.stats.get(Path::new(&name)).copied().unwrap_or(Stat {
            dir: true,
            ..Stat::default()
        }))
    }

    fn dup(&self, fd: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
        let name = self.name(fd);
        self.act(Call::Dup(name.clone()))?;
        self.hand_out(name)
    }

    fn open_tree_clone(&self, fd: BorrowedFd<'_>, recursive: bool) -> nix::Result<OwnedFd> {
        let name = self.name(fd);
        self.act(Call::OpenTreeClone(name.clone(), recursive))?;
        self.hand_out(format!("tree of {name}"))
    }

    fn move_mount(&self, tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> nix::Result<()> {
        self.act(Call::MoveMount(self.name(tree), self.name(target)))
    }

    fn move_mount_to_name(
        &self,
        tree: BorrowedFd<'_>,
        dir: BorrowedFd<'_>,
        name: &Path,
    ) -> nix::Result<()> {
        let target = joined(&self.name(dir), name);
        self.act(Call::MoveMount(self.name(tree), target))
    }

    fn mount_setattr(
        &self,
        fd: BorrowedFd<'_>,
        set: u64,
        _clr: u64,
        recursive: bool,
    ) -> nix::Result<()> {
        self.act(Call::MountSetattr(self.name(fd), set, recursive))
    }

    fn sethostname(&self, name: &str) -> nix::Result<()> {
        self.act(Call::Sethostname(name.to_owned()))
    }

    fn loopback_up(&self) -> nix::Result<()> {
        self.act(Call::LoopbackUp)
    }

    fn setrlimit(&self, resource: Resource, soft: u64, hard: u64) -> nix::Result<()> {
        self.act(Call::Setrlimit(resource, soft, hard))
    }

    fn getrlimit(&self, resource: Resource) -> nix::Result<(u64, u64)> {
        self.act(Call::Getrlimit(resource))?;
        Ok((1024, 4096))
    }

    fn setgroups(&self, groups: &[Gid]) -> nix::Result<()> {
        self.act(Call::Setgroups(groups.iter().map(|g| g.as_raw()).collect()))
    }

    fn setresgid(&self, _r: Gid, e: Gid, _s: Gid) -> nix::Result<()> {
        self.act(Call::Setresgid(e.as_raw()))
    }

    fn setresuid(&self, _r: Uid, e: Uid, _s: Uid) -> nix::Result<()> {
        self.act(Call::Setresuid(e.as_raw()))
    }

    fn capbset_read(&self, cap: u32) -> nix::Result<bool> {
        self.act(Call::CapbsetRead(cap))?;
        if cap >= self.last_cap {
            return Err(Errno::EINVAL);
        }
        Ok(true)
    }

    fn capbset_drop(&self, cap: u32) -> nix::Result<()> {
        self.act(Call::CapbsetDrop(cap))?;
        if cap >= self.last_cap {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    fn set_keepcaps(&self, on: bool) -> nix::Result<()> {
        self.act(Call::SetKeepcaps(on))
    }

    fn capset(&self, sets: CapSets) -> nix::Result<()> {
        self.act(Call::Capset(
            sets.effective,
            sets.permitted,
            sets.inheritable,
        ))?;
        let mut held = self.caps.borrow_mut();
        for (name, mask) in [
            ("effective", sets.effective),
            ("permitted", sets.permitted),
            ("inheritable", sets.inheritable),
        ] {
            held.insert(name, from_mask(mask));
        }
        Ok(())
    }

    fn cap_clear(&self, set: CapSet) -> Result<(), CapsError> {
        Self::caps_result(self.act(Call::CapClear(set_name(set))))?;
        self.caps.borrow_mut().remove(set_name(set));
        Ok(())
    }

    fn cap_raise(&self, set: CapSet, cap: Capability) -> Result<(), CapsError> {
        Self::caps_result(self.act(Call::CapRaise(set_name(set), cap)))?;
        self.caps
            .borrow_mut()
            .entry(set_name(set))
            .or_default()
            .insert(cap);
        Ok(())
    }

    fn capget(&self) -> nix::Result<CapSets> {
        self.act(Call::Capget)?;
        let held = self.caps.borrow();
        let mask = |name: &str| held.get(name).map(to_mask).unwrap_or_default();
        Ok(CapSets {
            effective: mask("effective"),
            permitted: mask("permitted"),
            inheritable: mask("inheritable"),
        })
    }

    fn set_pdeathsig(&self, sig: Signal) -> nix::Result<()> {
        self.act(Call::SetPdeathsig(sig))
    }

    fn join_cgroup_v1(&self, tasks: BorrowedFd<'_>) -> nix::Result<()> {
        self.act(Call::JoinCgroupV1(self.name(tasks)))
    }

    fn set_dumpable(&self, on: bool) -> nix::Result<()> {
        self.act(Call::SetDumpable(on))
    }

    fn forget_launcher_args(&self, _shown: &[u8]) -> nix::Result<()> {
        self.act(Call::ForgetLauncherArgs)
    }

    fn umask(&self, mask: Mode) -> Mode {
        // umask(2) always succeeds.
        let _ = self.act(Call::Umask(mask.bits()));
        Mode::from_bits_truncate(self.umask.replace(mask.bits()))
    }

    fn set_no_new_privs(&self) -> nix::Result<()> {
        self.act(Call::SetNoNewPrivs)?;
        self.no_new_privs.set(true);
        Ok(())
    }

    fn get_no_new_privs(&self) -> nix::Result<bool> {
        self.act(Call::GetNoNewPrivs)?;
        Ok(self.no_new_privs.get())
    }

    fn landlock_abi(&self) -> nix::Result<i32> {
        self.act(Call::LandlockAbi)?;
        Ok(self.abi)
    }

    fn landlock_restrict(
        &self,
        ruleset: &LandlockRuleset,
    ) -> Result<LandlockStatus, LandlockError> {
        self.act(Call::LandlockRestrict(ruleset.clone()))
            .map_err(|e| LandlockError::Restrict(format!("{e}")))?;
        Ok(LandlockStatus {
            enforcement: Enforcement::Full,
            no_new_privs: self.no_new_privs.get(),
            absent: Vec::new(),
        })
    }

    fn close_owned(&self, fds: Vec<OwnedFd>) -> nix::Result<()> {
        self.act(Call::CloseOwned(fds.len()))
    }

    unsafe fn close_range(&self, first: u32, last: u32) -> nix::Result<()> {
        self.act(Call::CloseRange(first, last))
    }

    fn seccomp_install(&self, program: &[seccompiler::sock_filter]) -> nix::Result<()> {
        self.act(Call::SeccompInstall(program.len()))
    }

    fn seccomp_install_listener(
        &self,
        program: &[seccompiler::sock_filter],
    ) -> nix::Result<OwnedFd> {
        self.act(Call::SeccompListen(program.len()))?;
        self.hand_out("seccomp listener".into())
    }

    fn execve(&self, path: &CStr, argv: &[CString], _envp: &[CString]) -> Errno {
        if let Err(e) = self.act(Call::Execve(path.to_owned(), argv.to_vec())) {
            return e;
        }
        std::panic::resume_unwind(Box::new(Ended::Exec(path.to_owned())))
    }

    fn exit(&self, code: i32) -> ! {
        let _ = self.act(Call::Exit(code));
        std::panic::resume_unwind(Box::new(Ended::Exit(code)))
    }
}
