//! `kekkai learn`'s observer, the supervisor's side: every syscall the sandbox makes that its
//! policy allows arrives here as a seccomp user notification (`plan::seccomp::observe`); it is
//! recorded and answered CONTINUE. Nothing here decides anything: the policy's own filters,
//! Landlock, the mounts and the namespaces already did, in the kernel.
//!
//! What is recorded: each syscall's number and, for the calls whose arguments a filter can
//! check and that presets condition (socket, ioctl, clone, personality), the argument values;
//! for calls that name a path (open, exec, create, remove, rename, link, truncate) the path,
//! read from the caller's memory (`/proc/TID/mem`) and resolved in the sandbox's root
//! (`openat2(/proc/TID/root, RESOLVE_IN_ROOT)`, so its symbolic links lead where they lead
//! inside); for connect and bind the TCP/UDP port; the threads seen; and for each the first
//! call that needed it.
//!
//! The memory is read while the caller waits, but another of its threads could change it
//! between the read and the kernel's own: for learning this is observation, never a security
//! decision. A wrong path ends up in the learned policy only where the policy it extends
//! allowed it anyway, and the proof run under the learned policy shows whether it works.
//! Reading another process's memory needs ptrace access (PTRACE_MODE_ATTACH): a supervisor
//! that made the sandbox's user namespace has it once the program runs; before its execve the
//! sandbox's first process is not dumpable, and a path it names is then not readable
//! (counted in [`Observations::unreadable`]; its exec is learned from `/proc/TID/exe`).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};

use crate::sys::abi::{len64, register};
use crate::sys::notif::{self, Notif};

/// What a path was used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Use {
    /// Files read, directories listed.
    Read,
    /// A file opened for writing or truncated.
    Write,
    /// An entry created, removed or renamed in this directory (the path is the entry's).
    Create,
    /// Executed.
    Execute,
}

/// The first call that needed something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct First {
    /// The process's name (`/proc/TID/comm`).
    pub comm: String,
    /// Made by kekkai itself (PID 1's reaper, the program's start before its execve).
    pub launcher: bool,
    /// The call, briefly (`openat /data/in.txt`).
    pub call: String,
}

impl std::fmt::Display for First {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.launcher {
            write!(f, "kekkai: {}", self.call)
        } else {
            write!(f, "{}: {}", self.comm, self.call)
        }
    }
}

/// One syscall as seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallSeen {
    /// How many calls.
    pub count: u64,
    /// The first.
    pub first: First,
    /// For conditioned syscalls: each distinct tuple of (argument index, value) seen, with the
    /// first call that made it (at most [`MAX_VALUES`]; `overflow` past that).
    pub values: BTreeMap<Vec<(u8, u64)>, First>,
    /// More distinct values than [`MAX_VALUES`] were seen.
    pub overflow: bool,
}

/// The most distinct argument tuples kept per syscall.
pub const MAX_VALUES: usize = 16;

/// Everything one learning run saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observations {
    /// By syscall number.
    pub syscalls: BTreeMap<i64, SyscallSeen>,
    /// Paths (inside the sandbox, symbolic links resolved), by use, with the first call.
    pub paths: BTreeMap<(PathBuf, Use), First>,
    /// Ports connected to (inet and inet6).
    pub connect: BTreeMap<u16, First>,
    /// Ports bound (0 for "any free port").
    pub bind: BTreeMap<u16, First>,
    /// Distinct threads and processes seen.
    pub threads: BTreeSet<u32>,
    /// Paths that could not be read from the caller's memory.
    pub unreadable: u64,
}

/// The conditioned syscalls: which arguments are recorded, and their width (true: 32 bits).
pub fn recorded_args(nr: i64) -> &'static [(u8, bool)] {
    match nr {
        libc::SYS_socket => &[(0, true), (2, true)],
        libc::SYS_ioctl => &[(1, true)],
        libc::SYS_clone => &[(0, false)],
        libc::SYS_personality => &[(0, true)],
        _ => &[],
    }
}

/// The supervisor's observer of one sandbox.
pub struct Observer {
    listener: OwnedFd,
    /// The sandbox's first process, in our pid namespace.
    init: u32,
    /// An execve was seen: from here the calls are the program's (but PID 1's reaper's).
    program_started: bool,
    /// PID 1 itself called execve (the policy's `as-pid-1`).
    init_execed: bool,
    /// The listener hung up: every process of the sandbox is gone.
    pub closed: bool,
    /// Threads of kekkai's that called execve, with what they ran then (`/proc/TID/exe`, if
    /// readable): at their next call, what they run now is the program.
    pending: Vec<(u32, Option<PathBuf>)>,
    seen: Observations,
}

/// libc's AT_FDCWD (-100), as the 64-bit register of a call's dirfd argument holds it.
const AT_FDCWD: u64 = register(-100);

impl Observer {
    /// Observes through `listener` a sandbox whose first process is `init`.
    pub fn new(listener: OwnedFd, init: u32) -> Observer {
        Observer {
            listener,
            init,
            program_started: false,
            init_execed: false,
            closed: false,
            pending: Vec::new(),
            seen: Observations::default(),
        }
    }

    /// The listener, to poll.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// What was seen.
    pub fn into_observations(self) -> Observations {
        self.seen
    }

    /// One pending notification: record it, let the call go on.
    pub fn handle(&mut self) {
        let n = match notif::recv(self.listener.as_fd()) {
            Ok(n) => n,
            // The caller was killed before we read it, or a signal interrupted us.
            Err(nix::errno::Errno::ENOENT | nix::errno::Errno::EINTR) => return,
            Err(_) => {
                self.closed = true;
                return;
            }
        };
        self.record(&n);
        // ENOENT: the caller is gone meanwhile, nothing waits for the answer.
        let _ = notif::continue_call(self.listener.as_fd(), n.id);
    }

    fn record(&mut self, n: &Notif) {
        self.resolve_pending(n.pid);
        let nr = i64::from(n.nr);
        let name = crate::plan::names::syscall_name(nr).unwrap_or("?");
        let launcher = !self.program_started || (n.pid == self.init && !self.init_execed);
        let exec = nr == libc::SYS_execve || nr == libc::SYS_execveat;
        if exec && launcher {
            // kekkai starting the program: it tries each directory of PATH; what it ran is
            // read at its next call (its memory is not readable before the exec anyway).
            let before = std::fs::read_link(format!("/proc/{}/exe", n.pid)).ok();
            if !self.pending.iter().any(|(p, _)| *p == n.pid) {
                self.pending.push((n.pid, before));
            }
        }
        let first = |call: String| First {
            comm: comm(n.pid),
            launcher,
            call,
        };
        self.seen.threads.insert(n.pid);
        let entry = self.seen.syscalls.entry(nr).or_insert_with(|| SyscallSeen {
            count: 0,
            first: first(name.to_string()),
            values: BTreeMap::new(),
            overflow: false,
        });
        entry.count += 1;
        let wanted = recorded_args(nr);
        if !wanted.is_empty() {
            let mut tuple: Vec<(u8, u64)> = Vec::new();
            for (i, w32) in wanted {
                let v = n.args[usize::from(*i)];
                let v = if *w32 { v & 0xffff_ffff } else { v };
                // The protocol matters for netlink sockets only.
                if nr == libc::SYS_socket && *i == 2 && n.args[0] & 0xffff_ffff != 16 {
                    continue;
                }
                tuple.push((*i, v));
            }
            if !entry.values.contains_key(&tuple) {
                if entry.values.len() < MAX_VALUES {
                    let shown: Vec<String> = tuple
                        .iter()
                        .map(|(i, v)| format!("arg{i}={v:#x}"))
                        .collect();
                    entry
                        .values
                        .insert(tuple, first(format!("{name} {}", shown.join(" "))));
                } else {
                    entry.overflow = true;
                }
            }
        }
        let paths = if exec && launcher {
            Vec::new()
        } else {
            path_args(nr, &n.args)
        };
        for (path_arg, dirfd, usage) in paths {
            let Some(raw) = read_string(n.pid, path_arg) else {
                self.seen.unreadable += 1;
                continue;
            };
            let Some(path) = resolve(n.pid, dirfd, &raw) else {
                continue;
            };
            let call = format!("{name} {}", path.display());
            self.add_path(n.pid, path, usage, first(call));
        }
        if nr == libc::SYS_connect || nr == libc::SYS_bind {
            if let Some(port) = read_port(n.pid, n.args[1], n.args[2]) {
                let map = if nr == libc::SYS_connect {
                    &mut self.seen.connect
                } else {
                    &mut self.seen.bind
                };
                map.entry(port)
                    .or_insert_with(|| first(format!("{name} port {port}")));
            }
        }
    }

    /// Records a path; an executed file brings its interpreter (`#!` or the ELF's PT_INTERP),
    /// which the kernel opens for execution too.
    fn add_path(&mut self, pid: u32, path: PathBuf, usage: Use, first: First) {
        let interp = (usage == Use::Execute)
            .then(|| interpreter_of(pid, &path))
            .flatten();
        if let Some(interp) = interp {
            let via = First {
                call: format!("{} (interpreter of {})", interp.display(), path.display()),
                ..first.clone()
            };
            self.seen.paths.entry((interp, Use::Execute)).or_insert(via);
        }
        self.seen.paths.entry((path, usage)).or_insert(first);
    }

    /// The next call of a thread of kekkai's that called execve: if what it runs changed (or
    /// became readable: the program is dumpable, kekkai's process was not), the exec worked and
    /// this is the program. Otherwise the exec failed and the next directory of PATH follows.
    fn resolve_pending(&mut self, pid: u32) {
        let Some(at) = self.pending.iter().position(|(p, _)| *p == pid) else {
            return;
        };
        let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
            return;
        };
        if self.pending.get(at).and_then(|(_, before)| before.as_ref()) == Some(&exe) {
            return;
        }
        self.pending.remove(at);
        self.program_started = true;
        if pid == self.init {
            self.init_execed = true;
        }
        let first = First {
            comm: comm(pid),
            launcher: false,
            call: format!("execve {} (the program)", exe.display()),
        };
        self.add_path(pid, exe, Use::Execute, first);
    }
}

/// The interpreter the kernel opens to run `path` (inside `pid`'s root): the `#!` line's, or
/// the ELF's PT_INTERP (the dynamic loader), resolved there.
fn interpreter_of(pid: u32, path: &Path) -> Option<PathBuf> {
    let root = File::open(format!("/proc/{pid}/root")).ok()?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let file = File::from(nix::fcntl::openat2(root.as_fd(), path, how).ok()?);
    let mut head = [0u8; 4096];
    let n = file.read_at(&mut head, 0).ok()?;
    let head = head.get(..n)?;
    let named = if let Some(line) = head.strip_prefix(b"#!") {
        let line = line.split(|b| *b == b'\n').next()?;
        let text = std::str::from_utf8(line).ok()?.trim();
        PathBuf::from(text.split_whitespace().next()?)
    } else {
        elf_interp(&file, head)?
    };
    if !named.is_absolute() {
        return None;
    }
    in_root(&root, &named)
}

/// PT_INTERP of a 64-bit little-endian ELF file whose first bytes are `head`.
fn elf_interp(file: &File, head: &[u8]) -> Option<PathBuf> {
    if head.get(..4)? != b"\x7fELF" || *head.get(4)? != 2 || *head.get(5)? != 1 {
        return None;
    }
    let u16_at = |at: usize| Some(u16::from_le_bytes(head.get(at..at + 2)?.try_into().ok()?));
    let u64_at =
        |b: &[u8], at: usize| Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?));
    let phoff = usize::try_from(u64_at(head, 32)?).ok()?;
    let phentsize = usize::from(u16_at(54)?);
    let phnum = usize::from(u16_at(56)?);
    for i in 0..phnum.min(64) {
        let at = phoff.checked_add(i.checked_mul(phentsize)?)?;
        let mut ph = [0u8; 56];
        file.read_exact_at(&mut ph, len64(at)).ok()?;
        if u32::from_le_bytes(ph.get(..4)?.try_into().ok()?) == 3 {
            let offset = u64_at(&ph, 8)?;
            let size = usize::try_from(u64_at(&ph, 32)?).ok()?.min(4096);
            let mut name = vec![0u8; size];
            file.read_exact_at(&mut name, offset).ok()?;
            let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
            name.truncate(end);
            return Some(PathBuf::from(OsString::from_vec(name)));
        }
    }
    None
}

/// Which arguments of a syscall are paths: (the pointer, the directory descriptor it is
/// relative to, what it is used for).
fn path_args(nr: i64, a: &[u64; 6]) -> Vec<(u64, u64, Use)> {
    let open_use = |flags: u64| -> Vec<Use> {
        let flags = flags & 0xffff_ffff;
        let flags = i32::try_from(flags).unwrap_or(0);
        if flags & libc::O_PATH != 0 {
            return vec![];
        }
        let mut out = Vec::new();
        match flags & libc::O_ACCMODE {
            libc::O_RDONLY => out.push(Use::Read),
            libc::O_WRONLY => out.push(Use::Write),
            _ => {
                out.push(Use::Read);
                out.push(Use::Write);
            }
        }
        if flags & (libc::O_CREAT | libc::O_TRUNC) != 0 && !out.contains(&Use::Write) {
            out.push(Use::Write);
        }
        if flags & libc::O_CREAT != 0 {
            out.push(Use::Create);
        }
        out
    };
    let each = |ptr: u64, dirfd: u64, uses: Vec<Use>| -> Vec<(u64, u64, Use)> {
        uses.into_iter().map(|u| (ptr, dirfd, u)).collect()
    };
    match nr {
        libc::SYS_open => each(a[0], AT_FDCWD, open_use(a[1])),
        libc::SYS_openat => each(a[1], a[0], open_use(a[2])),
        libc::SYS_creat => each(a[0], AT_FDCWD, vec![Use::Write, Use::Create]),
        libc::SYS_execve => each(a[0], AT_FDCWD, vec![Use::Execute]),
        libc::SYS_execveat => each(a[1], a[0], vec![Use::Execute]),
        libc::SYS_truncate => each(a[0], AT_FDCWD, vec![Use::Write]),
        libc::SYS_mkdir | libc::SYS_rmdir | libc::SYS_unlink | libc::SYS_mknod => {
            each(a[0], AT_FDCWD, vec![Use::Create])
        }
        libc::SYS_mkdirat | libc::SYS_unlinkat | libc::SYS_mknodat => {
            each(a[1], a[0], vec![Use::Create])
        }
        libc::SYS_rename | libc::SYS_link => {
            vec![(a[0], AT_FDCWD, Use::Create), (a[1], AT_FDCWD, Use::Create)]
        }
        libc::SYS_renameat | libc::SYS_renameat2 | libc::SYS_linkat => {
            vec![(a[1], a[0], Use::Create), (a[3], a[2], Use::Create)]
        }
        libc::SYS_symlink => each(a[1], AT_FDCWD, vec![Use::Create]),
        libc::SYS_symlinkat => each(a[2], a[1], vec![Use::Create]),
        _ => vec![],
    }
}

/// The name of a thread (`/proc/TID/comm`, readable by anyone).
fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|_| format!("pid {pid}"))
}

/// A NUL-terminated string at `addr` in `pid`'s memory (at most PATH_MAX bytes).
fn read_string(pid: u32, addr: u64) -> Option<OsString> {
    if addr == 0 {
        return None;
    }
    let mem = File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut out = Vec::new();
    let mut at = addr;
    let max = usize::try_from(libc::PATH_MAX).unwrap_or(4096);
    while out.len() < max {
        // Never read across a page boundary: the next page may not be mapped.
        let room = 4096 - (at % 4096);
        let mut buf = vec![0u8; usize::try_from(room).ok()?];
        let n = mem.read_at(&mut buf, at).ok()?;
        if n == 0 {
            return None;
        }
        if let Some(end) = buf.get(..n)?.iter().position(|b| *b == 0) {
            out.extend_from_slice(buf.get(..end)?);
            return Some(OsString::from_vec(out));
        }
        out.extend_from_slice(buf.get(..n)?);
        at += len64(n);
    }
    None
}

/// The port of an inet or inet6 socket address at `addr` (`len` bytes) in `pid`'s memory.
fn read_port(pid: u32, addr: u64, len: u64) -> Option<u16> {
    if addr == 0 || len < 4 {
        return None;
    }
    let mem = File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut buf = [0u8; 4];
    mem.read_exact_at(&mut buf, addr).ok()?;
    let family = i32::from(u16::from_ne_bytes([buf[0], buf[1]]));
    if family != libc::AF_INET && family != libc::AF_INET6 {
        return None;
    }
    Some(u16::from_be_bytes([buf[2], buf[3]]))
}

/// A path as the sandbox resolves it: relative to the caller's working directory or `dirfd`,
/// `.` and `..` removed, symbolic links followed inside the sandbox's root. A path that does not
/// exist (yet) is its resolved parent directory with the last name added.
fn resolve(pid: u32, dirfd: u64, raw: &OsString) -> Option<PathBuf> {
    let raw = Path::new(raw);
    let joined = if raw.is_absolute() {
        raw.to_path_buf()
    } else {
        let base = if dirfd & 0xffff_ffff == AT_FDCWD & 0xffff_ffff {
            std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?
        } else {
            std::fs::read_link(format!("/proc/{pid}/fd/{}", dirfd & 0xffff_ffff)).ok()?
        };
        if !base.is_absolute() {
            return None;
        }
        base.join(raw)
    };
    let lexical = normalize(&joined);
    let root = File::open(format!("/proc/{pid}/root")).ok();
    let Some(root) = root else {
        return Some(lexical);
    };
    if let Some(p) = in_root(&root, &lexical) {
        return Some(p);
    }
    // Not there (a file about to be created, a name probed for): the parent, resolved.
    match (lexical.parent(), lexical.file_name()) {
        (Some(parent), Some(name)) => Some(
            in_root(&root, parent)
                .unwrap_or(parent.to_path_buf())
                .join(name),
        ),
        _ => Some(lexical),
    }
}

/// `path` resolved inside the root `root` (a descriptor of `/proc/TID/root`).
fn in_root(root: &File, path: &Path) -> Option<PathBuf> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = nix::fcntl::openat2(root.as_fd(), path, how).ok()?;
    let shown =
        std::fs::read_link(format!("/proc/self/fd/{}", crate::sys::raw(fd.as_fd()))).ok()?;
    // A path the kernel could not show from here is unusable.
    shown.is_absolute().then_some(shown)
}

/// `.` and `..` removed without looking at the filesystem (`..` of `/` is `/`).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("/a/b/../c", "/a/c")]
    #[case("/../x", "/x")]
    #[case("/a/./b/", "/a/b")]
    fn normalizes(#[case] input: &str, #[case] want: &str) {
        assert_eq!(normalize(Path::new(input)), PathBuf::from(want));
    }

    /// What each flag combination of open records.
    #[test]
    fn at_fdcwd_is_libcs() {
        assert_eq!(AT_FDCWD, register(i64::from(libc::AT_FDCWD)));
    }

    #[rstest]
    #[case(libc::O_RDONLY, &[Use::Read])]
    #[case(libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC, &[Use::Write, Use::Create])]
    #[case(libc::O_RDWR, &[Use::Read, Use::Write])]
    #[case(libc::O_PATH, &[])]
    #[case(libc::O_RDONLY | libc::O_DIRECTORY, &[Use::Read])]
    fn open_flags(#[case] flags: i32, #[case] want: &[Use]) {
        let got: Vec<Use> = path_args(libc::SYS_openat, &[0, 1, register(flags.into()), 0, 0, 0])
            .into_iter()
            .map(|(_, _, u)| u)
            .collect();
        assert_eq!(got, want);
    }
}
