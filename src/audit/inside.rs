//! The helpers the probes call inside the sandbox: one attempt in a forked process of its own
//! ([`isolated`]), and the attempts that take more than a call: executing a file, forking,
//! allocating, filling a tmpfs or the descriptor table up to the limit, a netlink change, and
//! the policy's own expectations.
//!
//! Every one of them does a bounded amount of work (bytes, processes, descriptors) and cleans up
//! what it made; none measures time.

use std::io::{Read, Write};
use std::path::Path;

use nix::errno::Errno;

use super::Seen;
use crate::plan::expect::Expectation;

/// How long a probe may go without a result before it is taken for hung. A watchdog for hangs
/// only, never a measure of speed: every probe's work is bounded (bytes, processes,
/// descriptors), and the slowest of them takes seconds even under software emulation.
pub const HANG_WATCHDOG_SECS: u32 = 600;

/// Runs one attempt in a forked process, so a probe that is killed can't take the battery
/// with it.
pub fn isolated(f: &dyn Fn() -> Seen) -> Seen {
    let Ok((rd, wr)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        return Seen::Broken("pipe".into());
    };
    match crate::sys::fork() {
        Ok(None) => {
            drop(rd);
            // A probe that hangs is an error, not a pass.
            nix::unistd::alarm::set(HANG_WATCHDOG_SECS);
            let seen = f();
            let bytes = serde_json::to_vec(&seen).unwrap_or_default();
            let _ = nix::unistd::write(&wr, &bytes);
            crate::sys::exit_now(0)
        }
        Ok(Some(pid)) => {
            drop(wr);
            let mut out = Vec::new();
            let mut file = std::fs::File::from(rd);
            let _ = file.read_to_end(&mut out);
            let status = nix::sys::wait::waitpid(pid, None);
            match (serde_json::from_slice::<Seen>(&out), status) {
                (Ok(seen), _) => seen,
                (Err(_), Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _))) => {
                    if sig == nix::sys::signal::Signal::SIGALRM {
                        Seen::Broken(format!("hung: no result after {HANG_WATCHDOG_SECS} s"))
                    } else {
                        Seen::Signal(sig as i32)
                    }
                }
                (Err(_), other) => Seen::Broken(format!("no result ({other:?})")),
            }
        }
        Err(e) => Seen::Broken(format!("fork: {e:?}")),
    }
}

/// Tries what an expectation names (`read:/etc/shadow`: open it for reading).
pub fn attempt(expectation: &Expectation) -> Seen {
    match expectation.action.as_str() {
        "read" => match std::fs::File::open(&expectation.target) {
            Ok(_) => Seen::Done("opened for reading".into()),
            Err(e) => Seen::Errno(errno_of(&e)),
        },
        "write" => {
            let p = Path::new(&expectation.target);
            if p.is_dir() {
                let f = p.join(".kekkai-audit-probe");
                match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&f)
                {
                    Ok(_) => {
                        let _ = std::fs::remove_file(&f);
                        Seen::Done("created a file in it".into())
                    }
                    Err(e) => Seen::Errno(errno_of(&e)),
                }
            } else {
                match std::fs::OpenOptions::new().write(true).open(p) {
                    Ok(_) => Seen::Done("opened for writing".into()),
                    Err(e) => Seen::Errno(errno_of(&e)),
                }
            }
        }
        "exec" => try_exec(&expectation.target),
        "connect" => match std::net::TcpStream::connect(expectation.target.as_str()) {
            Ok(_) => Seen::Done("connected".into()),
            Err(e) => Seen::Errno(errno_of(&e)),
        },
        "bind" => match std::net::TcpListener::bind((
            "0.0.0.0",
            expectation.target.parse::<u16>().unwrap_or(0),
        )) {
            Ok(_) => Seen::Done("bound".into()),
            Err(e) => Seen::Errno(errno_of(&e)),
        },
        _ => Seen::Broken(format!("unknown action {}", expectation.action)),
    }
}

fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
}

/// Executes `path` in a child; the child is killed as soon as the exec has succeeded.
pub fn try_exec(path: &str) -> Seen {
    let Ok(cpath) = std::ffi::CString::new(path) else {
        return Seen::Broken("path with a NUL byte".into());
    };
    let Ok((rd, wr)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        return Seen::Broken("pipe".into());
    };
    match crate::sys::fork() {
        Ok(None) => {
            drop(rd);
            let argv = [cpath.clone()];
            let envp: [std::ffi::CString; 0] = [];
            let e = match nix::unistd::execve(&cpath, &argv, &envp) {
                Err(e) => e,
                Ok(never) => match never {},
            };
            let _ = nix::unistd::write(&wr, &(e as i32).to_ne_bytes());
            crate::sys::exit_now(127)
        }
        Ok(Some(pid)) => {
            drop(wr);
            let mut buf = [0u8; 4];
            let n = nix::unistd::read(&rd, &mut buf).unwrap_or(0);
            if n == 4 {
                let _ = nix::sys::wait::waitpid(pid, None);
                Seen::Errno(Errno::from_raw(i32::from_ne_bytes(buf)))
            } else {
                // The pipe closed on exec: it ran. Stop it at once.
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(pid, None);
                Seen::Done(format!("executed {path}"))
            }
        }
        Err(e) => Seen::Broken(format!("fork: {e:?}")),
    }
}

/// Forks until fork fails (children wait to be killed). Stops at 4096.
pub fn fork_until_limit(limit: Option<u64>) -> Seen {
    let mut kids = Vec::new();
    let result = loop {
        if kids.len() >= 4096 {
            break Seen::Done(format!(
                "forked {} processes (pids limit {limit:?})",
                kids.len()
            ));
        }
        match crate::sys::fork() {
            Ok(None) => loop {
                nix::unistd::pause();
            },
            Ok(Some(pid)) => kids.push(pid),
            Err(e) => break Seen::Errno(e),
        }
    };
    for k in &kids {
        let _ = nix::sys::signal::kill(*k, nix::sys::signal::Signal::SIGKILL);
    }
    for k in &kids {
        let _ = nix::sys::wait::waitpid(*k, None);
    }
    result
}

/// Touches memory up to 64 MiB past the limit (at most 1 GiB + 64 MiB). The work is a fixed
/// number of bytes, never a race with a clock: it ends with the OOM killer's SIGKILL or ENOMEM
/// (the limit holds), or with every byte touched (it does not).
pub fn allocate_past_limit(limit: Option<u64>) -> Seen {
    let Some(limit) = limit else {
        return Seen::NotApplicable("no memory limit in the policy".into());
    };
    if limit > 1 << 30 {
        return Seen::NotApplicable(format!(
            "the {} MiB limit is more than the probe fills (1 GiB)",
            limit >> 20
        ));
    }
    let target = limit.saturating_add(64 << 20);
    let Ok(len) = usize::try_from(target) else {
        return Seen::Broken(format!("{target} bytes do not fit in an address"));
    };
    match crate::sys::touch_anonymous(len) {
        Ok(()) => Seen::Done(format!(
            "touched {} MiB, {} MiB past a {} MiB limit",
            target >> 20,
            (target - limit) >> 20,
            limit >> 20
        )),
        Err(e) => Seen::Errno(e),
    }
}

/// Asks the kernel, over a NETLINK_ROUTE socket, to change a network device (RTM_SETLINK for
/// an interface index that does not exist). Opening the socket and reading the namespace's
/// interfaces is allowed where the policy allows sockets; a change needs CAP_NET_ADMIN, which
/// rtnetlink checks before it looks the device up: EPERM means the sandbox stopped it, ENODEV
/// that the change got through (and harmlessly found no device).
pub fn netlink_change() -> Seen {
    use nix::sys::socket::{AddressFamily, SockFlag, SockProtocol, SockType, socket};
    let fd = match socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    ) {
        Ok(fd) => fd,
        Err(e) => return Seen::Errno(e),
    };
    const RTM_SETLINK: u16 = 19;
    const NLM_F_REQUEST_ACK: u16 = 0x1 | 0x4;
    const NLMSG_ERROR: u16 = 2;
    // struct nlmsghdr, then struct ifinfomsg { family, pad, type, index, flags, change }.
    let mut msg = Vec::with_capacity(32);
    msg.extend_from_slice(&32u32.to_ne_bytes());
    msg.extend_from_slice(&RTM_SETLINK.to_ne_bytes());
    msg.extend_from_slice(&NLM_F_REQUEST_ACK.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&[0, 0, 0, 0]);
    msg.extend_from_slice(&i32::MAX.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    // Unconnected, a netlink socket sends to the kernel.
    if let Err(e) = nix::unistd::write(&fd, &msg) {
        return Seen::Errno(e);
    }
    let mut buf = [0u8; 4096];
    let n = match nix::unistd::read(&fd, &mut buf) {
        Ok(n) => n,
        Err(e) => return Seen::Errno(e),
    };
    let field = |at: usize| -> Option<[u8; 4]> { buf.get(at..at + 4)?.try_into().ok() };
    let kind = buf
        .get(4..6)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map(u16::from_ne_bytes);
    match (n >= 20, kind, field(16).map(i32::from_ne_bytes)) {
        (true, Some(NLMSG_ERROR), Some(0)) => Seen::Done("RTM_SETLINK was accepted".into()),
        (true, Some(NLMSG_ERROR), Some(err)) => Seen::Errno(Errno::from_raw(-err)),
        _ => Seen::Broken(format!("unexpected netlink answer ({n} bytes)")),
    }
}

/// Writes into `dir` until the filesystem is full, at most its size plus 1 MiB.
pub fn fill_tmpfs(dir: &str, size: Option<u64>) -> Seen {
    let Some(size) = size else {
        return Seen::NotApplicable("no tmpfs of known size to fill".into());
    };
    if size > 256 << 20 {
        return Seen::NotApplicable(format!(
            "the {} MiB tmpfs is more than the probe fills (256 MiB)",
            size >> 20
        ));
    }
    let path = format!("{dir}/.kekkai-audit-fill");
    let r = (|| -> std::io::Result<u64> {
        let mut f = std::fs::File::create(&path)?;
        let block = vec![0u8; 1 << 20];
        let mut written = 0u64;
        while written <= size + (1 << 20) {
            f.write_all(&block)?;
            written += 1 << 20;
        }
        Ok(written)
    })();
    let _ = std::fs::remove_file(&path);
    match r {
        Ok(n) => Seen::Done(format!(
            "wrote {} MiB into a {} MiB tmpfs",
            n >> 20,
            size >> 20
        )),
        Err(e) => Seen::Errno(errno_of(&e)),
    }
}

/// Opens /dev/null until that fails, at most 1,048,576 times.
pub fn open_until_limit(limit: Option<u64>) -> Seen {
    let mut fds = Vec::new();
    loop {
        if fds.len() >= 1 << 20 {
            return Seen::Done(format!(
                "opened {} descriptors (limit {limit:?})",
                fds.len()
            ));
        }
        match std::fs::File::open("/dev/null") {
            Ok(f) => fds.push(f),
            Err(e) => return Seen::Errno(errno_of(&e)),
        }
    }
}
