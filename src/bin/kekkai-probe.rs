//! `kekkai-probe`: runs inside a sandbox and tries one thing, reporting exactly what the kernel
//! answered — `ok <result>` or `errno <NAME>` on stdout, exit status 0 — so tests can assert
//! the errno (or, when the sandbox kills it, the signal). Every operation is harmless when it
//! is allowed.
//!
//! Usage: `kekkai-probe OP [ARGS...]`; see `ops()` below.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::process::ExitCode;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

use kekkai::sys::abi::{address, register, signed};

/// The raw calls: the probe's one use of what `kekkai::sys` marks unsafe.
#[allow(unsafe_code)]
mod raw {
    /// [`kekkai::sys::raw_syscall`] with the number and arguments from the command line.
    pub fn raw_syscall(nr: libc::c_long, args: [u64; 6]) -> nix::Result<i64> {
        // SAFETY: kekkai-probe is a test tool, built only for the tests (required-features
        // `test-probe`) and never installed. It runs the one call its command line names, and
        // the tests choose calls and arguments that are harmless to it (invalid descriptors,
        // NULL or rejected addresses, or the probe's own `'static` bytes, which the kernel only
        // reads); the process reports the result and exits.
        unsafe { kekkai::sys::raw_syscall(nr, args) }
    }

    /// [`kekkai::sys::int80`] with the number from the command line.
    pub fn int80(nr: u32) -> i32 {
        // SAFETY: as for `raw_syscall` above (the tests ask for getpid).
        unsafe { kekkai::sys::int80(nr, 0, 0, 0) }
    }
}

fn report<T: std::fmt::Display>(r: Result<T, Errno>) -> ExitCode {
    match r {
        Ok(v) => println!("ok {v}"),
        Err(e) => println!("errno {e:?}"),
    }
    ExitCode::SUCCESS
}

fn num(s: Option<&String>) -> u64 {
    let Some(s) = s else { return 0 };
    let t = s.trim();
    let parsed = if let Some(h) = t.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else if let Ok(n) = t.parse::<i64>() {
        Some(register(n))
    } else {
        kekkai::plan::names::arg_value(t)
    };
    parsed.unwrap_or(0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(op) = args.first() else {
        eprintln!("usage: kekkai-probe OP [ARGS...]");
        return ExitCode::from(2);
    };
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let mode = Mode::from_bits_truncate(0o644);
    match op.as_str() {
        // Files.
        "read" => report(open(arg(1).as_str(), OFlag::O_RDONLY, mode).map(|fd| fd.as_raw_fd())),
        "write" => report(open(arg(1).as_str(), OFlag::O_WRONLY, mode).map(|fd| fd.as_raw_fd())),
        "create" => report(
            open(arg(1).as_str(), OFlag::O_WRONLY | OFlag::O_CREAT, mode).map(|fd| fd.as_raw_fd()),
        ),
        "mkdir" => {
            report(nix::unistd::mkdir(arg(1).as_str(), Mode::from_bits_truncate(0o755)).map(|()| 0))
        }
        "unlink" => report(nix::unistd::unlink(arg(1).as_str()).map(|()| 0)),
        // `remount PATH` (the file system read-write) or `remount-bind PATH` (the mount).
        op @ ("remount" | "remount-bind") => {
            use nix::mount::MsFlags;
            let mut flags = MsFlags::MS_REMOUNT;
            if op == "remount-bind" {
                flags |= MsFlags::MS_BIND;
            }
            report(
                nix::mount::mount(
                    None::<&str>,
                    arg(1).as_str(),
                    None::<&str>,
                    flags,
                    None::<&str>,
                )
                .map(|()| 0),
            )
        }
        "readdir" => report(
            nix::dir::Dir::open(arg(1).as_str(), OFlag::O_RDONLY, mode)
                .map(|d| d.into_iter().count()),
        ),
        "exec" => {
            let Ok(path) = CString::new(arg(1)) else {
                return report::<i32>(Err(Errno::EINVAL));
            };
            let argv = [path.clone()];
            let envp: [CString; 0] = [];
            report::<i32>(nix::unistd::execve(&path, &argv, &envp).map(|n| match n {}))
        }
        // System calls with integer arguments: `syscall NAME|NR [A0..A5]`.
        "syscall" => {
            let nr = kekkai::plan::names::syscall_number(&arg(1))
                .unwrap_or_else(|| signed(num(args.get(1))));
            let mut a = [0u64; 6];
            for (i, slot) in a.iter_mut().enumerate() {
                *slot = num(args.get(i + 2));
            }
            report(raw::raw_syscall(nr, a))
        }
        // The x32 ABI: the same call with bit 30 set in the number.
        "x32" => {
            let nr = kekkai::plan::names::syscall_number(&arg(1)).unwrap_or(0) | 0x4000_0000;
            report(raw::raw_syscall(nr, [0; 6]))
        }
        // i386 through int 0x80: `int80 NR` (20 is getpid).
        "int80" => {
            let Ok(nr) = u32::try_from(num(args.get(1))) else {
                return report::<i32>(Err(Errno::ENOSYS));
            };
            let r = raw::int80(nr);
            if r < 0 {
                report::<i32>(Err(Errno::from_raw(r.saturating_neg())))
            } else {
                report::<i32>(Ok(r))
            }
        }
        // TIOCSTI on stdin, optionally with junk in the upper 32 bits of the request.
        "tiocsti" => {
            let high = num(args.get(1)) << 32;
            let byte = b"x";
            report(raw::raw_syscall(
                16,
                [0, 0x5412 | high, address(byte.as_ptr()), 0, 0, 0],
            ))
        }
        "socket" => report(
            raw::raw_syscall(
                41,
                [
                    num(args.get(1)),
                    num(args.get(2)).max(1),
                    num(args.get(3)),
                    0,
                    0,
                    0,
                ],
            )
            .inspect(|fd| {
                // The socket was only made to see whether it can be; its close can't fail
                // in a way that matters here.
                if let Ok(fd) = i32::try_from(*fd) {
                    let _ = nix::unistd::close(fd);
                }
            }),
        ),
        // Bind a TCP port on all addresses.
        "tcp-bind" => {
            let Ok(port) = u16::try_from(num(args.get(1))) else {
                return report::<u16>(Err(Errno::EINVAL));
            };
            let r = std::net::TcpListener::bind(("0.0.0.0", port)).map(|_| port);
            report(r.map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0))))
        }
        // The descriptors this process has open.
        "fds" => {
            let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
                .map(|d| {
                    d.filter_map(Result::ok)
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            fds.sort();
            println!("{}", fds.join(" "));
            ExitCode::SUCCESS
        }
        // A TCP listener on loopback and a connection to it.
        "tcp-loopback" => {
            let r = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| {
                let a = l.local_addr()?;
                std::net::TcpStream::connect(a).map(|_| a.port())
            });
            report(r.map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0))))
        }
        "status" => {
            let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            for line in text.lines() {
                if line.starts_with("Cap")
                    || line.starts_with("NoNewPrivs")
                    || line.starts_with("Seccomp")
                {
                    println!("{line}");
                }
            }
            ExitCode::SUCCESS
        }
        // Privileges left on files (`host-privileges`): MODE is octal.
        op @ ("chmod" | "create-mode" | "tmpfile" | "openat2-create" | "mknod-char") => {
            privileged_file(op, &arg(1), &arg(2))
        }
        _ => {
            eprintln!("kekkai-probe: unknown op {op}");
            ExitCode::from(2)
        }
    }
}

/// `chmod PATH MODE`, `create-mode PATH MODE` (O_CREAT|O_EXCL), `tmpfile DIR MODE` (O_TMPFILE),
/// `openat2-create PATH MODE`, `mknod-char PATH` (1:3, mode 0600): `ok MODE` with the mode the
/// file has afterwards (octal), or the errno.
fn privileged_file(op: &str, path: &str, mode: &str) -> ExitCode {
    use nix::sys::stat::{FchmodatFlags, SFlag, fchmodat, fstat, makedev, mknod, stat};
    let mode = Mode::from_bits_truncate(u32::from_str_radix(mode, 8).unwrap_or(0));
    let create = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC;
    let mode_of = |st: nix::sys::stat::FileStat| format!("{:o}", st.st_mode & 0o7777);
    let result = match op {
        "chmod" => fchmodat(
            nix::fcntl::AT_FDCWD,
            path,
            mode,
            FchmodatFlags::FollowSymlink,
        )
        .and_then(|()| stat(path).map(mode_of)),
        "create-mode" => open(path, create, mode).and_then(|fd| fstat(&fd).map(mode_of)),
        "tmpfile" => open(path, OFlag::O_TMPFILE | OFlag::O_WRONLY, mode)
            .and_then(|fd| fstat(&fd).map(mode_of)),
        "openat2-create" => {
            let how = nix::fcntl::OpenHow::new().flags(create).mode(mode);
            nix::fcntl::openat2(nix::fcntl::AT_FDCWD, path, how)
                .and_then(|fd| fstat(&fd).map(mode_of))
        }
        _ => mknod(
            path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            makedev(1, 3),
        )
        .map(|()| "char 1:3".to_owned()),
    };
    report(result)
}
