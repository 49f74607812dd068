//! Starting the program from the sandbox's first process as `posix_spawn` does: `clone` with
//! `CLONE_VM | CLONE_VFORK` onto a stack of its own, instead of `fork`.
//!
//! A fork copies the reaper's page tables, and the copy takes copy-on-write faults until its
//! `execve` throws the copied address space away. With `CLONE_VM` the child runs in the
//! reaper's memory, and with `CLONE_VFORK` the reaper stays suspended until the child has
//! called `execve` (successfully) or exited. Everything the child touches is therefore built
//! beforehand ([`Image`]): the candidates' paths, `argv`, `envp` and their pointer arrays, the
//! signal dispositions it restores, the descriptors of its terminal. In the child only raw
//! system calls run (glibc's thin wrappers: no allocation, no lock, no stdio), on the
//! [`Image`]'s data and the child's own stack. A failure before or at `execve` is written into
//! the memory both share (the call and its errno), the child exits with the code the caller
//! chose, and the resumed reaper reads what happened.
//!
//! Ordering: every signal is blocked in the reaper across the clone, so no handler of the
//! reaper runs on the child's stack in the shared memory; the child restores the default
//! disposition of every signal the reaper handles — SIG_IGN where the caller ignored it,
//! SIG_DFL elsewhere ([`super::inherited`]), one `sigaction` each — then (just before `execve`)
//! an empty mask; the reaper restores its own mask once it resumes.

use std::ffi::{CString, c_void};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use nix::errno::Errno;
use nix::unistd::Pid;

use super::Disposition;

/// The call of the program's process that failed before its `execve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `sigaction(signal, SIG_DFL)` or `sigaction(signal, SIG_IGN)`.
    Sigaction,
    /// `prctl(PR_SET_PDEATHSIG, SIGKILL)`.
    Pdeathsig,
    /// `setsid()`.
    Setsid,
    /// `ioctl(terminal, TIOCSCTTY, 0)`.
    Tiocsctty,
    /// `dup2(descriptor, slot)` (0, 1 or 2).
    Dup2(u32),
    /// `rt_sigprocmask(SIG_SETMASK, {})`.
    Sigprocmask,
}

impl Call {
    /// The call as written in an error message.
    pub fn describe(self) -> String {
        match self {
            Call::Sigaction => "sigaction(SIG_DFL or SIG_IGN)".into(),
            Call::Pdeathsig => "prctl(PR_SET_PDEATHSIG, SIGKILL)".into(),
            Call::Setsid => "setsid()".into(),
            Call::Tiocsctty => "ioctl(slave, TIOCSCTTY, 0)".into(),
            Call::Dup2(to) => format!("dup2({to})"),
            Call::Sigprocmask => "sigprocmask(SIG_SETMASK, {})".into(),
        }
    }

    /// As one number in the shared memory (0 is "no failure"; [`EXEC`] is `execve`).
    fn code(self) -> u32 {
        match self {
            Call::Sigaction => 1,
            Call::Pdeathsig => 2,
            Call::Setsid => 3,
            Call::Tiocsctty => 4,
            Call::Sigprocmask => 5,
            Call::Dup2(to) => 16 + to.min(2),
        }
    }

    fn of_code(code: u32) -> Option<Call> {
        Some(match code {
            1 => Call::Sigaction,
            2 => Call::Pdeathsig,
            3 => Call::Setsid,
            4 => Call::Tiocsctty,
            5 => Call::Sigprocmask,
            16..=18 => Call::Dup2(code - 16),
            _ => return None,
        })
    }
}

/// The clone's flags: the child shares the memory, the caller waits until the child has
/// called execve or exited, and SIGCHLD reports its end as a fork's would.
pub const CLONE_FLAGS: libc::c_int = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;

/// The shared memory's code of a failed `execve`.
const EXEC: u32 = 100;

/// Room for a pid in decimal: ten digits (`i32::MAX`) and the terminating NUL.
const PID_ROOM: usize = 11;

/// The child's stack (above its guard page). It runs a few frames of this module and the
/// C library's thin wrappers; posix_spawn makes do with less.
const STACK: usize = 64 * 1024;

/// The program's descriptors 0, 1 and 2, its session and its controlling terminal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stdio {
    /// `setsid()` first.
    pub new_session: bool,
    /// This descriptor (a pseudo-terminal's slave) becomes the controlling terminal.
    pub controlling: Option<RawFd>,
    /// Each of 0, 1, 2 becomes a copy of this descriptor (none: left as it is).
    pub slots: [Option<RawFd>; 3],
}

/// The exit statuses of the program's process when it can't run the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codes {
    /// No candidate exists.
    pub not_found: i32,
    /// A candidate exists but can't be run.
    pub not_executable: i32,
    /// A call before `execve` failed.
    pub setup: i32,
}

/// Everything the program's process needs between clone and `execve`, built before the clone.
#[derive(Debug)]
pub struct Image {
    candidates: Vec<CString>,
    argv: Vec<CString>,
    /// `NAME=VALUE` and its NUL; the pid variables' values are [`PID_ROOM`] NUL bytes.
    env: Vec<Vec<u8>>,
    /// How many of `env`'s entries, at its end, take the child's pid.
    pid_vars: usize,
    signals: Vec<(libc::c_int, Disposition)>,
    stdio: Stdio,
    codes: Codes,
}

/// What became of the program's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spawned {
    /// `execve` succeeded (or the process was killed before it: its end says so).
    Running(Pid),
    /// A call before `execve` failed; the process exited with `Codes::setup`.
    Failed(Pid, Call, Errno),
    /// No candidate could be executed: the decisive errno (`ENOENT` for none found); the
    /// process exited with `Codes::not_found` or `Codes::not_executable`.
    ExecFailed(Pid, Errno),
}

impl Image {
    /// The program's image. `candidates`: the paths to try in order; `env`: `NAME=VALUE`
    /// entries; `pid_vars`: names of variables appended to them whose value is the program's
    /// own pid (systemd's `LISTEN_PID`, `WATCHDOG_PID`); `signals`: the signals whose
    /// disposition is set, each to SIG_DFL or SIG_IGN. Fails with `EINVAL` for a NUL byte
    /// inside any.
    pub fn new(
        candidates: Vec<Vec<u8>>,
        argv: Vec<Vec<u8>>,
        env: Vec<Vec<u8>>,
        pid_vars: &[&str],
        signals: Vec<(libc::c_int, Disposition)>,
        stdio: Stdio,
        codes: Codes,
    ) -> nix::Result<Image> {
        let c_string = |v: Vec<u8>| CString::new(v).map_err(|_| Errno::EINVAL);
        let candidates = candidates
            .into_iter()
            .map(c_string)
            .collect::<nix::Result<_>>()?;
        let argv = argv.into_iter().map(c_string).collect::<nix::Result<_>>()?;
        let mut entries = Vec::with_capacity(env.len() + pid_vars.len());
        for e in env {
            entries.push(c_string(e)?.into_bytes_with_nul());
        }
        for name in pid_vars {
            if name.as_bytes().contains(&0) {
                return Err(Errno::EINVAL);
            }
            let mut e = Vec::with_capacity(name.len() + 1 + PID_ROOM);
            e.extend_from_slice(name.as_bytes());
            e.push(b'=');
            e.resize(name.len() + 1 + PID_ROOM, 0);
            entries.push(e);
        }
        Ok(Image {
            candidates,
            argv,
            env: entries,
            pid_vars: pid_vars.len(),
            signals,
            stdio,
            codes,
        })
    }

    /// Starts the program's process with `clone(CLONE_VM | CLONE_VFORK | SIGCHLD)` and
    /// returns once it has called `execve` successfully or exited. An `Err` means no process
    /// was created (the stack could not be mapped, the signal mask not set, or the clone was
    /// refused, for example by a seccomp filter): the caller may still fork.
    ///
    /// Refuses (`EDEADLK`) in a process with more than one thread: another thread would run
    /// on in the memory the child writes to.
    pub fn spawn(&mut self) -> nix::Result<Spawned> {
        if !super::single_threaded() {
            return Err(Errno::EDEADLK);
        }
        let candidates: Vec<*const libc::c_char> =
            self.candidates.iter().map(|c| c.as_ptr()).collect();
        let argv: Vec<*const libc::c_char> = self
            .argv
            .iter()
            .map(|a| a.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        let first_pid_var = self.env.len().saturating_sub(self.pid_vars);
        let mut pid_slots: Vec<*mut u8> = Vec::with_capacity(self.pid_vars);
        let mut envp: Vec<*const libc::c_char> = Vec::with_capacity(self.env.len() + 1);
        for (n, e) in self.env.iter_mut().enumerate() {
            let start = e.as_mut_ptr();
            if n >= first_pid_var {
                // The value starts after `NAME=`: the entry is NAME, '=', PID_ROOM bytes.
                let value = e.len().saturating_sub(PID_ROOM);
                // SAFETY: `value` is within the entry (its length minus PID_ROOM, which the
                // entry holds: see `new`), so the pointer stays inside the same allocation.
                pid_slots.push(unsafe { start.add(value) });
            }
            envp.push(start.cast_const().cast());
        }
        envp.push(std::ptr::null());
        // SAFETY: `sigaction` is plain old data; all-zero is SIG_DFL, no flags, an empty mask.
        let default: libc::sigaction = unsafe { std::mem::zeroed() };
        let ignore = libc::sigaction {
            sa_sigaction: libc::SIG_IGN,
            ..default
        };
        let shared = Shared {
            candidates: &candidates,
            argv: argv.as_ptr(),
            envp: envp.as_ptr(),
            pid_slots: &pid_slots,
            signals: &self.signals,
            default,
            ignore,
            stdio: self.stdio,
            codes: self.codes,
            failed: AtomicU32::new(0),
            errno: AtomicI32::new(0),
        };
        let stack = Stack::map()?;
        let all: u64 = !0;
        let mut old: u64 = 0;
        // SAFETY: rt_sigprocmask reads the 8-byte set `all` and writes the 8-byte `old`, both
        // on this frame; 8 is the kernel's sigset size on x86_64.
        let blocked = unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &raw const all,
                &raw mut old,
                8usize,
            )
        };
        Errno::result(blocked)?;
        // SAFETY: the child runs `program` on `stack` (mapped above, writable, with a guard
        // page below it; `top` is its 16-byte aligned upper end) in this process's memory.
        // CLONE_VFORK suspends this thread — the only one (checked above) — until the child
        // has called execve or exited, so nothing else runs in the memory while the child
        // does: `shared` and everything it points to (the image's buffers and the pointer
        // arrays above, alive until after the clone returns) are only read, except the
        // atomics and the pid slots, which only the child writes and which this thread reads
        // only after it resumes. Every signal is blocked across the clone (above), so no
        // handler runs in the child before it has reset the dispositions. The child makes only
        // system calls through the C library's thin wrappers, which take no lock and allocate
        // nothing; the only thread-local state they touch is `errno`, this thread's, which
        // nobody reads across the clone. The child never returns into this frame: `program`
        // returns to the C library's clone, which calls exit.
        let ret = unsafe {
            libc::clone(
                program,
                stack.top(),
                CLONE_FLAGS,
                (&raw const shared).cast_mut().cast::<c_void>(),
            )
        };
        let cloned = Errno::result(ret);
        // SAFETY: as above; `old` is the mask saved before the clone.
        let restored = unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &raw const old,
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
        drop(stack);
        let pid = Pid::from_raw(cloned?);
        // The same call with the same sizes succeeded before the clone. Were it refused now,
        // the reaper would keep every signal blocked, which changes nothing for it: it takes
        // its signals from a signalfd, and SIGKILL and SIGSTOP can't be blocked. The program
        // runs by now, so this can't be undone into a fork.
        let _ = restored;
        let errno = Errno::from_raw(shared.errno.load(Ordering::Acquire));
        Ok(match shared.failed.load(Ordering::Acquire) {
            0 => Spawned::Running(pid),
            EXEC => Spawned::ExecFailed(pid, errno),
            code => Spawned::Failed(pid, Call::of_code(code).unwrap_or(Call::Sigaction), errno),
        })
    }
}

/// What the child reads (and the two fields it writes), on the reaper's frame.
struct Shared<'a> {
    candidates: &'a [*const libc::c_char],
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    pid_slots: &'a [*mut u8],
    signals: &'a [(libc::c_int, Disposition)],
    default: libc::sigaction,
    ignore: libc::sigaction,
    stdio: Stdio,
    codes: Codes,
    /// 0, a [`Call`]'s code or [`EXEC`].
    failed: AtomicU32,
    errno: AtomicI32,
}

/// The child's stack: mapped read-write with one inaccessible page below it, unmapped on drop.
struct Stack {
    base: *mut c_void,
    len: usize,
}

impl Stack {
    fn map() -> nix::Result<Stack> {
        let guard = 4096;
        let len = STACK + guard;
        // SAFETY: a new anonymous private mapping at an address the kernel chooses; it
        // replaces nothing, and only this `Stack` refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let stack = Stack { base, len };
        // SAFETY: the lowest page of the mapping just made, which nothing uses: a stack
        // overflow then faults instead of writing below the mapping.
        Errno::result(unsafe { libc::mprotect(base, guard, libc::PROT_NONE) })?;
        Ok(stack)
    }

    /// The upper end, where the stack starts (a page boundary, so 16-byte aligned).
    fn top(&self) -> *mut c_void {
        // SAFETY: one past the end of the mapping, which is what a downward stack starts at.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`; the child that ran on it has called execve or
        // exited (CLONE_VFORK), so nothing uses it any more. A failure would only leak it.
        let _ = unsafe { libc::munmap(self.base, self.len) };
    }
}

/// The program's process, from clone to execve, on its own stack in the reaper's memory.
/// Returns (to the C library's clone, which exits with it) only when the program can't run.
extern "C" fn program(arg: *mut c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Shared` on the suspended reaper's frame (see `Image::spawn`),
    // alive and not written by anyone else until this process has exec'd or exited.
    let s = unsafe { &*arg.cast_const().cast::<Shared<'_>>() };
    match prepare(s) {
        Ok(()) => {}
        Err((call, e)) => {
            s.errno.store(e as i32, Ordering::Release);
            s.failed.store(call.code(), Ordering::Release);
            return s.codes.setup;
        }
    }
    let mut decisive = Errno::ENOENT;
    for &path in s.candidates {
        // SAFETY: `path`, `argv` and `envp` are NUL-terminated strings and NULL-terminated
        // pointer arrays built before the clone and alive until after it.
        unsafe { libc::execve(path, s.argv, s.envp) };
        // As a shell does: a candidate that exists but can't run beats one that does not exist.
        match Errno::last() {
            Errno::ENOENT | Errno::ENOTDIR => {}
            Errno::EACCES => decisive = Errno::EACCES,
            other => {
                decisive = other;
                break;
            }
        }
    }
    s.errno.store(decisive as i32, Ordering::Release);
    s.failed.store(EXEC, Ordering::Release);
    if decisive == Errno::ENOENT {
        s.codes.not_found
    } else {
        s.codes.not_executable
    }
}

/// The program's process before execve: the caller's dispositions, dies with the reaper, its
/// terminal, its pid in the environment, nothing blocked.
fn prepare(s: &Shared<'_>) -> Result<(), (Call, Errno)> {
    let check = |call: Call, ret: libc::c_int| {
        if ret < 0 {
            Err((call, Errno::last()))
        } else {
            Ok(())
        }
    };
    for &(signo, to) in s.signals {
        let action = match to {
            Disposition::Default => &raw const s.default,
            Disposition::Ignore => &raw const s.ignore,
        };
        // SAFETY: `action` is a valid sigaction (SIG_DFL or SIG_IGN, no handler to run) read
        // by the kernel; no old action is written.
        let ret = unsafe { libc::sigaction(signo, action, std::ptr::null_mut()) };
        check(Call::Sigaction, ret)?;
    }
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and reads or writes no memory of ours.
    let ret = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    check(Call::Pdeathsig, ret)?;
    if s.stdio.new_session {
        // SAFETY: setsid takes no argument.
        check(Call::Setsid, unsafe { libc::setsid() })?;
    }
    if let Some(fd) = s.stdio.controlling {
        // SAFETY: TIOCSCTTY takes an integer argument and reads no memory of ours.
        check(Call::Tiocsctty, unsafe {
            libc::ioctl(fd, libc::TIOCSCTTY, 0)
        })?;
    }
    for (to, from) in (0..).zip(s.stdio.slots) {
        if let Some(from) = from {
            // SAFETY: dup2 takes two descriptor numbers; the descriptor it replaces belongs to
            // no object of this process (the program's process owns nothing but its slots).
            let ret = unsafe { libc::dup2(from, to) };
            check(Call::Dup2(to.unsigned_abs()), ret)?;
        }
    }
    if !s.pid_slots.is_empty() {
        // SAFETY: getpid takes no argument and can't fail.
        let pid = unsafe { libc::getpid() };
        let mut digits = [0u8; PID_ROOM];
        let len = decimal(pid.unsigned_abs(), &mut digits);
        for &slot in s.pid_slots {
            for (n, &d) in digits.iter().enumerate().take(len) {
                // SAFETY: `slot` points at PID_ROOM bytes of an environment entry made by
                // `Image::new`, derived from the entry's mutable pointer and read by nobody
                // until execve copies it; `len` < PID_ROOM, so the NUL after it stays.
                unsafe { slot.add(n).write(d) };
            }
        }
    }
    let none: u64 = 0;
    // SAFETY: rt_sigprocmask reads the 8-byte empty set on this frame and writes nothing.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &raw const none,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
    if ret < 0 {
        return Err((Call::Sigprocmask, Errno::last()));
    }
    Ok(())
}

/// Writes `n` in decimal at the start of `out` (without allocating); returns how many digits.
fn decimal(mut n: u32, out: &mut [u8; PID_ROOM]) -> usize {
    let mut rev = [0u8; PID_ROOM];
    let mut len = 0;
    for d in rev.iter_mut() {
        *d = b'0' + u8::try_from(n % 10).unwrap_or(0);
        n /= 10;
        len += 1;
        if n == 0 {
            break;
        }
    }
    for (o, d) in out.iter_mut().zip(rev.iter().take(len).rev()) {
        *o = *d;
    }
    len
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case(0, "0")]
    #[case(2, "2")]
    #[case(10, "10")]
    #[case(4_194_304, "4194304")]
    #[case(u32::MAX, "4294967295")]
    fn decimal_writes_the_digits(#[case] n: u32, #[case] want: &str) {
        let mut out = [0u8; PID_ROOM];
        let len = decimal(n, &mut out);
        assert_eq!(&out[..len], want.as_bytes());
    }

    #[rstest]
    #[case(Call::Sigaction)]
    #[case(Call::Pdeathsig)]
    #[case(Call::Setsid)]
    #[case(Call::Tiocsctty)]
    #[case(Call::Sigprocmask)]
    #[case(Call::Dup2(0))]
    #[case(Call::Dup2(2))]
    fn a_call_survives_the_shared_memory(#[case] call: Call) {
        assert_eq!(Call::of_code(call.code()), Some(call));
    }
}
