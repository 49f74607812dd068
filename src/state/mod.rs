//! The state directory: what `ps`, `enter`, `stop`, `kill`, `wait`, `logs`, `stats` and `rm`
//! know of the named and detached sandboxes, written by their supervisors.
//!
//! The state directory is a door into the host, so nothing in it is taken on trust. It is per
//! user: root's is `/run/kekkai`; an unprivileged caller's is `$XDG_RUNTIME_DIR/kekkai`, refused
//! when `XDG_RUNTIME_DIR` is unset or is not a directory owned by the caller with mode 0700.
//! Every file in it is opened once, below the directory's descriptor, with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` ([`crate::hostfs::open_beneath`]), and
//! checked on that descriptor (`fstat`: owner, type, mode). Names are validated as container
//! names are (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 64 bytes). One directory per sandbox holds
//! its record (`state.json`, replaced atomically by `renameat`), its plan (`plan.json`, what
//! `enter` locks itself down with) and a detached sandbox's log (`log`, `log.1`).
//!
//! A pid in a record is never used on its own: [`Proc::open`] opens a pidfd for it and then
//! checks that the process behind the pidfd still has the recorded start time (a recycled pid
//! has another), so a signal sent through that pidfd can only reach the recorded process.
//! What is read from /proc/PID/ after that check (a cgroup, a parent, children) is read through
//! [`Proc::read`], which keeps it only if the pidfd's process is still alive after the read: the
//! kernel does not reuse a pid while the process a pidfd names is alive, so the read was of that
//! process, never of one that took its pid in between.

pub mod usage;

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, fstat};
use serde::{Deserialize, Serialize};

use crate::hostfs::{self, is_dir, is_regular};

/// The longest name accepted.
pub const NAME_MAX: usize = 64;

/// The most entries of one state directory `ps` reads (root's `ps` reads every user's).
pub const RECORDS_MAX: usize = 4096;

/// The most a detached sandbox's log holds before it is rotated to `log.1`.
pub const LOG_MAX: u64 = 1 << 20;

/// Why the state directory or an entry in it can't be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// No sandbox of that name.
    #[error("no sandbox named `{0}`")]
    NoSuch(String),
    /// The name is taken.
    #[error("the name `{0}` is in use (kekkai rm {0} removes an exited sandbox)")]
    InUse(String),
    /// The name is not a valid name.
    #[error("`{0}` is not a valid sandbox name: {1}")]
    BadName(String, &'static str),
    /// The state directory or an entry is refused or unusable.
    #[error("{0}")]
    Refused(String),
}

/// Checks a sandbox name: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most [`NAME_MAX`] bytes (so no path
/// separator, no `.` or `..`, nothing that starts like an option).
pub fn check_name(name: &str) -> Result<(), StateError> {
    let bad = |why| Err(StateError::BadName(name.to_owned(), why));
    let mut chars = name.chars();
    match chars.next() {
        None => return bad("it is empty"),
        Some(c) if !c.is_ascii_alphanumeric() => {
            return bad("it must start with a letter or digit");
        }
        Some(_) => {}
    }
    if name.len() > NAME_MAX {
        return bad("it is longer than 64 bytes");
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return bad("only letters, digits, `_`, `.` and `-` are allowed");
    }
    Ok(())
}

/// A fresh name for a sandbox started without `--name`: 12 hex digits from the kernel's random
/// source.
pub fn generated_name() -> String {
    let mut bytes = [0u8; 6];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if random.is_err() {
        // No /dev/urandom: the pid and the time are unique enough on one host.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let v = (u64::from(std::process::id()) << 32) ^ u64::from(t.subsec_nanos()) ^ t.as_secs();
        bytes.copy_from_slice(&v.to_le_bytes()[..6]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A process as a record names it: its pid and its start time (clock ticks after boot, field
/// 22 of /proc/PID/stat), which together name one process for the life of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    /// The pid, in the host's pid namespace.
    pub pid: i32,
    /// Its start time.
    pub start: u64,
}

impl Proc {
    /// The process `pid` as it is now.
    pub fn of(pid: i32) -> Option<Proc> {
        Some(Proc {
            pid,
            start: start_time(pid)?,
        })
    }

    /// A pidfd for this process, if it is still alive: the pidfd is opened first, then the
    /// start time is compared, so the pidfd can't name a process that took the pid later.
    pub fn open(&self) -> Option<OwnedFd> {
        if self.pid <= 0 {
            return None;
        }
        let fd = crate::sys::pidfd_open(nix::unistd::Pid::from_raw(self.pid)).ok()?;
        (start_time(self.pid) == Some(self.start)).then_some(fd)
    }

    /// Is this process still alive (the same one)?
    pub fn alive(&self) -> bool {
        self.open().is_some()
    }

    /// What `read` reads of this process (from /proc/PID/), whose pidfd is `pidfd` (from
    /// [`Proc::open`]), kept only if the process is still alive once it is read: while it is,
    /// its pid is not reused, so the read was of this process. A pidfd checked earlier does not
    /// make a later read by pid right: the process can end and another take its pid between the
    /// check and the read (`stop` then wrote `cgroup.kill` of whatever cgroup that one was in).
    pub fn read<T>(&self, pidfd: BorrowedFd<'_>, read: impl FnOnce(i32) -> T) -> Option<T> {
        let value = read(self.pid);
        (!exited(pidfd)).then_some(value)
    }

    /// [`Proc::open`], and only if the process runs as `uid` (its effective uid, as the state
    /// directory's owner is the caller's): read after the pidfd is opened and before the start
    /// time is compared, so the uid is this process's.
    pub fn open_as(&self, uid: u32) -> Option<OwnedFd> {
        if self.pid <= 0 {
            return None;
        }
        let fd = crate::sys::pidfd_open(nix::unistd::Pid::from_raw(self.pid)).ok()?;
        let owner = effective_uid(self.pid);
        (owner == Some(uid) && start_time(self.pid) == Some(self.start)).then_some(fd)
    }
}

/// Has the process behind `pidfd` exited? A pidfd polls readable once its process has exited
/// (a zombie too); an error counts as exited.
pub fn exited(pidfd: BorrowedFd<'_>) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    loop {
        let mut fds = [PollFd::new(pidfd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(0) => return false,
            Err(Errno::EINTR) => continue,
            _ => return true,
        }
    }
}

/// A process's effective uid (the second of the `Uid:` line of /proc/PID/status).
fn effective_uid(pid: i32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A process's start time in clock ticks after boot; `None` once it is gone (or a zombie, whose
/// stat still reads: a zombie counts as gone).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(") ")?.1;
    let mut fields = after.split(' ');
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// How a sandbox ended, as its supervisor recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// kekkai's exit code for the run (the program's status, 128+N, 124, 125...).
    pub exit_code: i32,
    /// When (seconds since the epoch).
    pub at: u64,
}

/// One sandbox's record (`state.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The kekkai version that wrote it.
    pub kekkai: String,
    /// The sandbox's name.
    pub name: String,
    /// The uid that started it.
    pub owner: u32,
    /// The policy's name (or file).
    pub policy: String,
    /// The command.
    pub command: Vec<String>,
    /// Started with `--detach`: the record stays after the end, until `rm`.
    pub detached: bool,
    /// When it was created (seconds since the epoch).
    pub created: u64,
    /// The supervisor.
    pub supervisor: Option<Proc>,
    /// The sandbox's first process (PID 1 inside, when it has a pid namespace).
    pub sandbox: Option<Proc>,
    /// The program started (the sandbox reported what it enforced).
    pub started: bool,
    /// How it ended.
    pub ended: Option<End>,
}

/// What a record says of a sandbox, checked against the processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum Status {
    /// Its supervisor is being started.
    Created,
    /// Running.
    Running,
    /// Ended; its exit code.
    Exited {
        /// kekkai's exit code for the run.
        exit_code: i32,
    },
    /// Its supervisor is gone without recording an end (killed): the sandbox died with it.
    Dead,
}

impl Status {
    /// How `ps` says it.
    pub fn word(&self) -> String {
        match self {
            Status::Created => "created".into(),
            Status::Running => "running".into(),
            Status::Exited { exit_code } => format!("exited ({exit_code})"),
            Status::Dead => "dead (supervisor killed)".into(),
        }
    }

    /// Still running (or starting)?
    pub fn running(&self) -> bool {
        matches!(self, Status::Created | Status::Running)
    }
}

impl Record {
    /// The recorded supervisor, as a pidfd, if it is still the same live process and runs as
    /// the record's owner. Every supervisor runs as the user whose state directory holds its
    /// record; a record naming another user's process is forged (a user's record naming root's
    /// sandbox was listed as the user's running sandbox in root's `ps`, with root's pids, and
    /// the user's `stop` and `kill -s KILL` of it said they had done it).
    pub fn supervisor_pidfd(&self) -> Option<OwnedFd> {
        self.supervisor?.open_as(self.owner)
    }

    /// Its status: the recorded end, else whether the recorded supervisor is still the same
    /// live process, the owner's ([`Record::supervisor_pidfd`]).
    pub fn status(&self) -> Status {
        if let Some(e) = self.ended {
            return Status::Exited {
                exit_code: e.exit_code,
            };
        }
        match self.supervisor_pidfd() {
            Some(_) => {
                if self.sandbox.is_some() {
                    Status::Running
                } else {
                    Status::Created
                }
            }
            _ => Status::Dead,
        }
    }

    /// The sandbox's first process, as a pidfd, if the sandbox is running: the supervisor and
    /// the first process are both the recorded ones (pid and start time), the supervisor runs
    /// as the record's owner, and the first process is the supervisor's child.
    pub fn sandbox_pidfd(&self) -> Option<(OwnedFd, Proc)> {
        let sup = self.supervisor?;
        let first = self.sandbox?;
        let sup_fd = self.supervisor_pidfd()?;
        let fd = first.open()?;
        let parent = first.read(fd.as_fd(), parent_of)?;
        (parent == Some(sup.pid) && !exited(sup_fd.as_fd())).then_some((fd, first))
    }

    /// The name of the sandbox's cgroups: `kekkai-PID-START` of its supervisor, which creates
    /// them ([`crate::launch::cgroup::name`]). A cgroup of another name is not this sandbox's.
    pub fn cgroup_name(&self) -> Option<String> {
        let sup = self.supervisor?;
        Some(format!("kekkai-{}-{}", sup.pid, sup.start))
    }
}

/// The process `enter` joins in a running sandbox whose first process is `first` (`first_fd`,
/// its pidfd from [`Record::sandbox_pidfd`]): the sandbox's init, as bubblewrap's and nsjail's
/// users expect. With `as_pid_1` (the plan's `as-pid-1`: the first process execs the program)
/// that is the first process itself, whatever children the program has (the first child was
/// taken, and a child may have unshared namespaces of its own; found in review, fixed). Else it
/// is the first process's oldest living child, the program its reaper forked: the first process
/// is then a non-dumpable copy of the launcher that never execs, which only a caller with
/// CAP_SYS_PTRACE in the host's user namespace may join (`setns` checks ptrace access), while
/// the program, after its execve, is an ordinary process of the caller's. Every /proc read is
/// kept only if the process read is still alive after ([`Proc::read`]).
pub fn program_of(first: Proc, first_fd: OwnedFd, as_pid_1: bool) -> Option<(OwnedFd, Proc)> {
    if as_pid_1 {
        return (!exited(first_fd.as_fd())).then_some((first_fd, first));
    }
    let kids = first
        .read(first_fd.as_fd(), |pid| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        })?
        .ok()?;
    let pid = kids
        .split_whitespace()
        .filter_map(|k| k.parse::<i32>().ok())
        .next()?;
    let child = Proc::of(pid)?;
    let fd = child.open()?;
    let parent = child.read(fd.as_fd(), parent_of)?;
    (parent == Some(first.pid)).then_some((fd, child))
}

/// The parent pid of a process (field 4 of /proc/PID/stat).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A caller's state directory, open.
#[derive(Debug)]
pub struct StateDir {
    fd: OwnedFd,
    /// Where it is (for messages).
    pub path: PathBuf,
    /// Whose it is.
    pub owner: u32,
}

fn refused(what: impl Into<String>) -> StateError {
    StateError::Refused(what.into())
}

/// Checks a directory kekkai keeps state in, on its descriptor: a directory, owned by `owner`,
/// no access for group or others.
fn check_private_dir(fd: BorrowedFd<'_>, owner: u32, path: &Path) -> Result<(), StateError> {
    let st = fstat(fd).map_err(|e| refused(format!("fstat({}): {e}", path.display())))?;
    if !is_dir(&st) {
        return Err(refused(format!("{} is not a directory", path.display())));
    }
    if st.st_uid != owner {
        return Err(refused(format!(
            "{} is owned by uid {}, not by uid {owner}",
            path.display(),
            st.st_uid
        )));
    }
    if st.st_mode & 0o077 != 0 {
        return Err(refused(format!(
            "{} is open to other users (mode {:o}; it must be 0700)",
            path.display(),
            st.st_mode & 0o7777
        )));
    }
    Ok(())
}

/// Opens (creating it 0700 if missing) the directory `name` below `parent`, checked.
fn open_private_dir(
    parent: BorrowedFd<'_>,
    parent_path: &Path,
    name: &str,
    owner: u32,
) -> Result<OwnedFd, StateError> {
    let path = parent_path.join(name);
    match nix::sys::stat::mkdirat(parent, name, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(refused(format!("mkdir({}): {e}", path.display()))),
    }
    let fd = hostfs::open_beneath(
        parent,
        Path::new(name),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
    )
    .map_err(|e| refused(format!("open({}): {}", path.display(), hostfs::describe(e))))?;
    check_private_dir(fd.as_fd(), owner, &path)?;
    Ok(fd)
}

impl StateDir {
    /// The state directory of the calling user (created if missing): root's `/run/kekkai`, an
    /// unprivileged caller's `$XDG_RUNTIME_DIR/kekkai`.
    pub fn open(euid: u32, xdg_runtime_dir: Option<&std::ffi::OsStr>) -> Result<Self, StateError> {
        let (base, name) = if euid == 0 {
            (PathBuf::from("/run"), "kekkai")
        } else {
            let Some(dir) = xdg_runtime_dir.filter(|d| !d.is_empty()) else {
                return Err(refused(
                    "XDG_RUNTIME_DIR is not set: an unprivileged caller's sandboxes are kept in \
                     $XDG_RUNTIME_DIR/kekkai (a login session sets it; `loginctl \
                     enable-linger` keeps it)",
                ));
            };
            let dir = PathBuf::from(dir);
            if !dir.is_absolute() {
                return Err(refused(format!(
                    "XDG_RUNTIME_DIR ({}) is not an absolute path",
                    dir.display()
                )));
            }
            (dir, "kekkai")
        };
        let base_fd = nix::fcntl::open(
            &base,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| refused(format!("open({}): {}", base.display(), hostfs::describe(e))))?;
        if euid != 0 {
            // The runtime directory itself must be the caller's alone: anyone else who can
            // write there could plant the `kekkai` entry.
            check_private_dir(base_fd.as_fd(), euid, &base)?;
        }
        let fd = open_private_dir(base_fd.as_fd(), &base, name, euid)?;
        Ok(StateDir {
            fd,
            path: base.join(name),
            owner: euid,
        })
    }

    /// Opens an existing directory as a state directory (tests; root's view of a user's).
    pub fn open_existing(path: &Path, owner: u32) -> Result<Self, StateError> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| refused(format!("open({}): {}", path.display(), hostfs::describe(e))))?;
        check_private_dir(fd.as_fd(), owner, path)?;
        Ok(StateDir {
            fd,
            path: path.to_owned(),
            owner,
        })
    }

    /// Claims `name` for a new sandbox: its directory is created (atomically: a name in use
    /// fails with [`StateError::InUse`]).
    pub fn create(&self, name: &str) -> Result<Entry, StateError> {
        check_name(name)?;
        match nix::sys::stat::mkdirat(self.fd.as_fd(), name, Mode::from_bits_truncate(0o700)) {
            Ok(()) => {}
            Err(Errno::EEXIST) => return Err(StateError::InUse(name.to_owned())),
            Err(e) => {
                return Err(refused(format!(
                    "mkdir({}): {e}",
                    self.path.join(name).display()
                )));
            }
        }
        self.entry(name)
    }

    /// The entry of an existing sandbox.
    pub fn entry(&self, name: &str) -> Result<Entry, StateError> {
        check_name(name)?;
        let path = self.path.join(name);
        let fd = hostfs::open_beneath(
            self.fd.as_fd(),
            Path::new(name),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        )
        .map_err(|e| match e {
            Errno::ENOENT => StateError::NoSuch(name.to_owned()),
            e => refused(format!("open({}): {}", path.display(), hostfs::describe(e))),
        })?;
        check_private_dir(fd.as_fd(), self.owner, &path)?;
        Ok(Entry {
            fd,
            name: name.to_owned(),
            path,
            owner: self.owner,
        })
    }

    /// The names of the sandboxes here, sorted (entries whose names are not valid are passed
    /// over: kekkai never made them).
    pub fn names(&self) -> Vec<String> {
        self.names_at_most(usize::MAX).0
    }

    /// [`StateDir::names`], from at most `limit` directory entries (`.` and `..` aside), and
    /// whether there were more: root's `ps` reads every user's directory, which the user fills
    /// as they like, and reads at most [`RECORDS_MAX`] of each.
    pub fn names_at_most(&self, limit: usize) -> (Vec<String>, bool) {
        let Ok(dup) = nix::unistd::dup(&self.fd) else {
            return (Vec::new(), false);
        };
        let Ok(mut dir) = nix::dir::Dir::from_fd(dup) else {
            return (Vec::new(), false);
        };
        let mut entries = dir
            .iter()
            .filter_map(Result::ok)
            .filter(|e| !matches!(e.file_name().to_bytes(), b"." | b".."));
        let mut names: Vec<String> = entries
            .by_ref()
            .take(limit)
            .filter_map(|e| e.file_name().to_str().ok().map(str::to_owned))
            .filter(|n| check_name(n).is_ok())
            .collect();
        let cut = entries.next().is_some();
        names.sort();
        (names, cut)
    }

    /// Removes a sandbox's entry (its record, plan and log).
    pub fn remove(&self, entry: Entry) -> Result<(), StateError> {
        for f in [
            "state.json",
            "state.json.tmp",
            "plan.json",
            "plan.json.tmp",
            "log",
            "log.1",
        ] {
            match nix::unistd::unlinkat(
                entry.fd.as_fd(),
                f,
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            ) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => {
                    return Err(refused(format!(
                        "unlink({}): {e}",
                        entry.path.join(f).display()
                    )));
                }
            }
        }
        let name = entry.name.clone();
        drop(entry);
        nix::unistd::unlinkat(
            self.fd.as_fd(),
            name.as_str(),
            nix::unistd::UnlinkatFlags::RemoveDir,
        )
        .map_err(|e| refused(format!("rmdir({}): {e}", self.path.join(&name).display())))
    }
}

/// One sandbox's directory, open.
#[derive(Debug)]
pub struct Entry {
    fd: OwnedFd,
    /// The sandbox's name.
    pub name: String,
    /// Where it is (for messages).
    pub path: PathBuf,
    owner: u32,
}

impl Entry {
    /// Opens a regular file of this entry for reading, checked (owner, one link, regular).
    pub fn open_file(&self, file: &str) -> Result<std::fs::File, StateError> {
        let path = self.path.join(file);
        let fd = hostfs::open_beneath(
            self.fd.as_fd(),
            Path::new(file),
            OFlag::O_RDONLY | OFlag::O_NOCTTY | OFlag::O_NONBLOCK,
        )
        .map_err(|e| match e {
            Errno::ENOENT => StateError::NoSuch(self.name.clone()),
            e => refused(format!("open({}): {}", path.display(), hostfs::describe(e))),
        })?;
        let st = fstat(&fd).map_err(|e| refused(format!("fstat({}): {e}", path.display())))?;
        if !is_regular(&st) || st.st_nlink != 1 {
            return Err(refused(format!(
                "{} is not a regular file with one link",
                path.display()
            )));
        }
        if st.st_uid != self.owner || st.st_mode & 0o077 != 0 {
            return Err(refused(format!(
                "{} is owned by uid {} with mode {:o}; kekkai writes it as uid {} with mode 600",
                path.display(),
                st.st_uid,
                st.st_mode & 0o7777,
                self.owner
            )));
        }
        Ok(std::fs::File::from(fd))
    }

    fn read_file(&self, file: &str, limit: u64) -> Result<Vec<u8>, StateError> {
        let mut bytes = Vec::new();
        self.open_file(file)?
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| refused(format!("read({}): {e}", self.path.join(file).display())))?;
        Ok(bytes)
    }

    /// Replaces `file` atomically: written to `file.tmp`, then renamed over it.
    fn write_file(&self, file: &str, bytes: &[u8]) -> Result<(), StateError> {
        let tmp = format!("{file}.tmp");
        let path = self.path.join(&tmp);
        let _ = nix::unistd::unlinkat(
            self.fd.as_fd(),
            tmp.as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
        let fd = nix::fcntl::openat(
            self.fd.as_fd(),
            tmp.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| refused(format!("create({}): {e}", path.display())))?;
        let mut f = std::fs::File::from(fd);
        f.write_all(bytes)
            .and_then(|()| f.sync_data())
            .map_err(|e| refused(format!("write({}): {e}", path.display())))?;
        nix::fcntl::renameat(self.fd.as_fd(), tmp.as_str(), self.fd.as_fd(), file)
            .map_err(|e| refused(format!("rename({}): {e}", path.display())))
    }

    /// The record.
    pub fn record(&self) -> Result<Record, StateError> {
        let bytes = self.read_file("state.json", 1 << 20)?;
        let r: Record = serde_json::from_slice(&bytes)
            .map_err(|e| refused(format!("{}: {e}", self.path.join("state.json").display())))?;
        if r.name != self.name || r.owner != self.owner {
            return Err(refused(format!(
                "{}: the record names another sandbox or owner",
                self.path.join("state.json").display()
            )));
        }
        Ok(r)
    }

    /// Writes the record (atomically).
    pub fn write_record(&self, r: &Record) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(r).map_err(|e| refused(e.to_string()))?;
        self.write_file("state.json", &bytes)
    }

    /// The plan the sandbox runs (what `enter` applies).
    pub fn plan(&self) -> Result<crate::plan::Plan, StateError> {
        let bytes = self.read_file("plan.json", 64 << 20)?;
        crate::plan::Plan::from_record(&bytes)
            .map_err(|e| refused(format!("{}: {e}", self.path.join("plan.json").display())))
    }

    /// Writes the plan.
    pub fn write_plan(&self, plan: &crate::plan::Plan) -> Result<(), StateError> {
        let bytes = plan.to_record().map_err(|e| refused(e.to_string()))?;
        self.write_file("plan.json", &bytes)
    }

    /// Creates the (empty) log a detached sandbox's output goes to; the caller appends.
    pub fn create_log(&self) -> Result<std::fs::File, StateError> {
        let fd = nix::fcntl::openat(
            self.fd.as_fd(),
            "log",
            OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_EXCL
                | OFlag::O_APPEND
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| refused(format!("create({}): {e}", self.path.join("log").display())))?;
        Ok(std::fs::File::from(fd))
    }

    /// Rotates the log: `log` becomes `log.1` (replacing it) and a new, empty `log` is
    /// returned.
    pub fn rotate_log(&self) -> Result<std::fs::File, StateError> {
        nix::fcntl::renameat(self.fd.as_fd(), "log", self.fd.as_fd(), "log.1")
            .map_err(|e| refused(format!("rename({}): {e}", self.path.join("log").display())))?;
        self.create_log()
    }

    /// The log, older part first (`log.1`, then `log`), or `None` if there is none.
    pub fn log_files(&self) -> Vec<std::fs::File> {
        ["log.1", "log"]
            .iter()
            .filter_map(|f| self.open_file(f).ok())
            .collect()
    }

    /// The log, read again by name (`logs -f` after a rotation).
    pub fn open_log(&self) -> Result<std::fs::File, StateError> {
        self.open_file("log")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("web", true)]
    #[case("a", true)]
    #[case("Web_1.2-x", true)]
    #[case("0abc", true)]
    #[case("", false)]
    #[case(".", false)]
    #[case("..", false)]
    #[case(".hidden", false)]
    #[case("-rf", false)]
    #[case("_x", false)]
    #[case("a/b", false)]
    #[case("a b", false)]
    #[case("a\nb", false)]
    #[case("é", false)]
    fn names_are_checked(#[case] name: &str, #[case] ok: bool) {
        assert_eq!(check_name(name).is_ok(), ok, "{name:?}");
    }

    #[test]
    fn names_are_bounded() {
        assert!(check_name(&"a".repeat(64)).is_ok());
        assert!(check_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn generated_names_are_valid_and_differ() {
        let (a, b) = (generated_name(), generated_name());
        assert!(check_name(&a).is_ok());
        assert_eq!(a.len(), 12);
        assert_ne!(a, b);
    }

    /// A state directory is read up to a bound, and says when there was more.
    #[rstest]
    #[case::under(3, 4, 3, false)]
    #[case::at(4, 4, 4, false)]
    #[case::over(6, 4, 4, true)]
    fn a_listing_is_bounded_and_says_it_was_cut(
        #[case] made: usize,
        #[case] limit: usize,
        #[case] listed: usize,
        #[case] cut: bool,
    ) {
        let (dir, sd) = private_tmp();
        for i in 0..made {
            sd.create(&format!("n{i}")).unwrap();
        }
        let (names, was_cut) = sd.names_at_most(limit);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!((names.len(), was_cut), (listed, cut));
    }

    /// `enter` joins the sandbox's init: the first process when the program runs as PID 1
    /// (as-pid-1), even when the program has children (one of which may have namespaces of its
    /// own); else the first process's child, the program under the reaper, and none when the
    /// reaper has no child left (the program is gone).
    #[rstest]
    #[case::as_pid_1_with_a_child("sleep 100 & wait", true, Some(false))]
    #[case::as_pid_1_alone("exec sleep 100", true, Some(false))]
    #[case::under_a_reaper("sleep 100 & wait", false, Some(true))]
    #[case::a_reaper_without_a_program("exec sleep 100", false, None)]
    fn enter_joins_pid_1_or_the_reapers_child(
        #[case] script: &str,
        #[case] as_pid_1: bool,
        #[case] child: Option<bool>,
    ) {
        let mut sh = std::process::Command::new("sh")
            .args(["-c", script])
            .spawn()
            .unwrap();
        let forks = script.contains('&');
        let pid = i32::try_from(sh.id()).unwrap();
        let children = format!("/proc/{pid}/task/{pid}/children");
        let mut kid = None;
        for _ in 0..if forks { 500 } else { 0 } {
            kid = std::fs::read_to_string(&children)
                .ok()
                .and_then(|k| k.split_whitespace().next()?.parse::<i32>().ok());
            if kid.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let first = Proc::of(pid).unwrap();
        let fd = first.open().unwrap();
        let got = program_of(first, fd, as_pid_1).map(|(_, p)| p.pid);
        if let Some(k) = kid {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(k),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = sh.kill();
        let _ = sh.wait();
        assert_eq!(kid.is_some(), forks, "sh's children");
        let want = match child {
            Some(true) => kid,
            Some(false) => Some(pid),
            None => None,
        };
        assert_eq!(got, want);
    }

    /// A read of /proc/PID/ through [`Proc::read`] is kept only while the pidfd's process is
    /// alive: once it has ended (a zombie, or reaped and its pid free for another), what was
    /// read may be another process's and is dropped.
    #[rstest]
    #[case::alive(None, true)]
    #[case::zombie(Some(false), false)]
    #[case::reaped(Some(true), false)]
    fn a_read_is_kept_only_while_the_process_lives(
        #[case] ended: Option<bool>,
        #[case] kept: bool,
    ) {
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let p = Proc::of(pid).unwrap();
        let fd = p.open().unwrap();
        if let Some(reap) = ended {
            child.kill().unwrap();
            if reap {
                child.wait().unwrap();
            } else {
                // Exited, not reaped: the pidfd polls readable.
                let mut fds = [nix::poll::PollFd::new(
                    fd.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap();
            }
        }
        let got = p.read(fd.as_fd(), parent_of);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(got.is_some(), kept);
        if kept {
            assert_eq!(
                got.flatten(),
                Some(i32::try_from(std::process::id()).unwrap())
            );
        }
    }

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = Proc::of(i32::try_from(std::process::id()).unwrap()).unwrap();
        assert!(me.alive());
        let other = Proc {
            start: me.start + 1,
            ..me
        };
        assert!(
            !other.alive(),
            "a recycled pid must not count as the recorded process"
        );
    }

    /// A record counts its supervisor alive only when it runs as the record's owner: one that
    /// names another user's process (here this test's own, under another uid) is dead, and
    /// has no sandbox to signal.
    #[rstest]
    #[case::the_owner(0, true)]
    #[case::another_user(1001, false)]
    fn a_supervisor_of_another_uid_is_not_the_records(#[case] plus: u32, #[case] alive: bool) {
        let me = Proc::of(i32::try_from(std::process::id()).unwrap()).unwrap();
        let mut r = record("web");
        r.owner += plus;
        r.supervisor = Some(me);
        assert_eq!(r.supervisor_pidfd().is_some(), alive);
        assert_eq!(
            r.status(),
            if alive { Status::Created } else { Status::Dead }
        );
    }

    fn private_tmp() -> (PathBuf, StateDir) {
        let dir = std::env::temp_dir().join(format!("kekkai-state-{}", generated_name()));
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let me = nix::unistd::geteuid().as_raw();
        let sd = StateDir::open_existing(&dir, me).unwrap();
        (dir, sd)
    }

    fn record(name: &str) -> Record {
        Record {
            kekkai: crate::plan::VERSION.into(),
            name: name.into(),
            owner: nix::unistd::geteuid().as_raw(),
            policy: "default".into(),
            command: vec!["true".into()],
            detached: true,
            created: now(),
            supervisor: None,
            sandbox: None,
            started: false,
            ended: None,
        }
    }

    #[test]
    fn a_record_round_trips_and_a_name_is_claimed_once() {
        let (dir, sd) = private_tmp();
        let e = sd.create("web").unwrap();
        assert_eq!(
            sd.create("web").unwrap_err(),
            StateError::InUse("web".into())
        );
        let r = record("web");
        e.write_record(&r).unwrap();
        assert_eq!(sd.entry("web").unwrap().record().unwrap(), r);
        assert_eq!(r.status(), Status::Dead);
        assert_eq!(sd.names(), vec!["web".to_string()]);
        sd.remove(e).unwrap();
        assert_eq!(
            sd.entry("web").unwrap_err(),
            StateError::NoSuch("web".into())
        );
        std::fs::remove_dir(dir).unwrap();
    }

    #[test]
    fn a_symlinked_entry_or_record_is_refused() {
        let (dir, sd) = private_tmp();
        std::os::unix::fs::symlink("/etc", dir.join("evil")).unwrap();
        assert!(matches!(sd.entry("evil"), Err(StateError::Refused(_))));
        let e = sd.create("web").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("web/state.json")).unwrap();
        assert!(matches!(e.record(), Err(StateError::Refused(_))));
        std::fs::remove_file(dir.join("web/state.json")).unwrap();
        std::fs::remove_file(dir.join("evil")).unwrap();
        sd.remove(e).unwrap();
        std::fs::remove_dir(dir).unwrap();
    }

    #[test]
    fn a_state_dir_open_to_others_is_refused() {
        let (dir, sd) = private_tmp();
        drop(sd);
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let me = nix::unistd::geteuid().as_raw();
        assert!(matches!(
            StateDir::open_existing(&dir, me),
            Err(StateError::Refused(_))
        ));
        assert!(matches!(
            StateDir::open(1, Some(dir.as_os_str())),
            Err(StateError::Refused(_))
        ));
        assert!(matches!(
            StateDir::open(1, None),
            Err(StateError::Refused(_))
        ));
        std::fs::remove_dir(dir).unwrap();
    }
}
