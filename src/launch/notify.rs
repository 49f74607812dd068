//! sd_notify through a network namespace: relaying to an abstract NOTIFY_SOCKET.
//!
//! An abstract unix socket (`NOTIFY_SOCKET=@NAME`) lives in a network namespace, not in the
//! filesystem, so a sandbox with its own network cannot reach the caller's. Before clone the
//! supervisor binds a datagram socket of its own in a fresh private directory; the child
//! binds that socket file into the sandbox at [`crate::plan::NOTIFY_INSIDE`] (step 5, like any
//! bind), and the supervisor, still in the caller's network namespace, sends each message it
//! receives on to `@NAME`.
//!
//! What passes is the message text: READY=1, STATUS=, RELOADING=1, STOPPING=1, WATCHDOG=1,
//! ERRNO=, EXTEND_TIMEOUT_USEC= and the rest. Descriptors sent along (FDSTORE=1) are not
//! received (the kernel closes them), and `MAINPID=` lines are dropped: a pid from inside the
//! sandbox's pid namespace names another process outside, and the messages reach systemd as
//! the supervisor's own, which is the unit's main process.
//!
//! The directory is named after the supervisor (`kekkai-notify-PID-START-XXXXXX`, START its
//! start time): one a SIGKILLed supervisor left behind is removed by the next relay of the
//! same user ([`remove_stale`]).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;

use super::error::StepError;
use crate::plan::steps::Step;
use crate::plan::{MountKind, Notify, Plan};

/// The relay: a socket the sandbox sends to, and where its messages go.
#[derive(Debug)]
pub struct NotifyRelay {
    /// The private directory holding the socket (removed on drop).
    dir: PathBuf,
    /// The socket file, bound into the sandbox.
    path: PathBuf,
    /// Bound at `path`, non-blocking.
    inside: UnixDatagram,
    /// Unbound; sends to `target`.
    outside: UnixDatagram,
    /// `@NAME`.
    target: SocketAddr,
}

/// Largest datagram read; sd_notify messages are far smaller.
const MAX_MESSAGE: usize = 64 * 1024;

impl NotifyRelay {
    /// The relay a plan asks for (an abstract NOTIFY_SOCKET), set up; `None` when there is none.
    pub fn for_plan(plan: &Plan) -> Result<Option<NotifyRelay>, StepError> {
        match &plan.systemd.notify {
            Some(Notify::Relay(name)) => NotifyRelay::open(name).map(Some),
            _ => Ok(None),
        }
    }

    fn open(name: &str) -> Result<NotifyRelay, StepError> {
        let step = Step::Plan;
        let io = |call: String, e: std::io::Error| {
            StepError::sys(
                step,
                call,
                nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            )
            .at(&format!("environment: NOTIFY_SOCKET=@{name}"))
        };
        let target = SocketAddr::from_abstract_name(name.as_bytes())
            .map_err(|e| io(format!("sockaddr_un(@{name})"), e))?;
        // A directory only this user can enter: the socket file in it is reachable from the
        // host only through it, and from the sandbox only through the bind mount.
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        remove_stale(&base);
        let me = std::process::id();
        let start = super::cgroup::start_time(me).unwrap_or(0);
        let template = base.join(format!("{STALE_PREFIX}{me}-{start}-XXXXXX"));
        let dir = nix::unistd::mkdtemp(&template)
            .map_err(|e| io(format!("mkdtemp({template:?})"), e.into()))?;
        let path = dir.join("notify");
        let relay = |dir: PathBuf| -> Result<NotifyRelay, StepError> {
            let inside = UnixDatagram::bind(&path).map_err(|e| io(format!("bind({path:?})"), e))?;
            inside
                .set_nonblocking(true)
                .map_err(|e| io("fcntl(O_NONBLOCK)".into(), e))?;
            // The program may run as any uid inside: sending needs write permission.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))
                .map_err(|e| io(format!("chmod({path:?}, 0666)"), e))?;
            let outside =
                UnixDatagram::unbound().map_err(|e| io("socket(AF_UNIX, SOCK_DGRAM)".into(), e))?;
            outside
                .set_nonblocking(true)
                .map_err(|e| io("fcntl(O_NONBLOCK)".into(), e))?;
            Ok(NotifyRelay {
                dir,
                path: path.clone(),
                inside,
                outside,
                target,
            })
        };
        relay(dir.clone()).inspect_err(|_| {
            let _ = std::fs::remove_file(dir.join("notify"));
            let _ = std::fs::remove_dir(&dir);
        })
    }

    /// The plan with the relay's socket as the source of the NOTIFY_SOCKET bind.
    pub fn bind_into(&self, plan: &Plan) -> Plan {
        use std::os::unix::fs::MetadataExt;
        let mut plan = plan.clone();
        let dev_ino = std::fs::metadata(&self.path)
            .map(|m| (m.dev(), m.ino()))
            .unwrap_or((0, 0));
        for m in &mut plan.mounts {
            if m.target == std::path::Path::new(crate::plan::NOTIFY_INSIDE) {
                if let MountKind::Bind {
                    source,
                    dev_ino: di,
                    ..
                } = &mut m.kind
                {
                    *source = self.path.clone();
                    *di = dev_ino;
                }
            }
        }
        plan
    }

    /// The socket to poll for messages.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inside.as_fd()
    }

    /// Sends on every message waiting. Never blocks: a message systemd can't take right now
    /// is dropped, as sd_notify's own non-blocking senders do.
    pub fn relay(&self) {
        let mut buf = vec![0u8; MAX_MESSAGE];
        while let Ok(n) = self.inside.recv(&mut buf) {
            let msg = filter(buf.get(..n).unwrap_or_default());
            if !msg.is_empty() {
                let _ = self.outside.send_to_addr(&msg, &self.target);
            }
        }
    }
}

impl Drop for NotifyRelay {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The relay directories' names begin so, then the supervisor's pid and start time.
const STALE_PREFIX: &str = "kekkai-notify-";

/// Removes the relay directories of supervisors that are gone (killed before they could
/// remove their own) from `base`. `base` may be /tmp, where anyone may plant names, so
/// nothing is followed: `base` and each directory are opened with O_NOFOLLOW, and one is
/// removed only if it is ours (our euid, mode 0700, so no one else can have put anything in
/// it), its supervisor (pid and start time) is gone, and its socket, if any, is a socket no
/// one receives on (connect refused: no relay of another pid namespace still uses it). Then
/// the socket is unlinked through the directory's descriptor and the directory by name,
/// which removes only an empty directory (and, in a sticky /tmp, only one of ours).
/// Best-effort: whatever can't be checked is left alone.
pub fn remove_stale(base: &std::path::Path) {
    use nix::fcntl::{AtFlags, OFlag, openat};
    use nix::sys::stat::{Mode, SFlag, fstat, fstatat};
    use nix::unistd::{UnlinkatFlags, unlinkat};
    use std::os::unix::ffi::OsStrExt;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let Ok(mut dir) = nix::dir::Dir::open(base, flags, Mode::empty()) else {
        return;
    };
    let names: Vec<std::ffi::CString> = dir
        .iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type() == Some(nix::dir::Type::Directory))
        .map(|e| e.file_name().to_owned())
        .filter(|n| owner_of(n.as_bytes()).is_some_and(|(pid, start)| !alive(pid, start)))
        .collect();
    let me = nix::unistd::geteuid().as_raw();
    for name in names {
        let Ok(fd) = openat(&dir, name.as_c_str(), flags, Mode::empty()) else {
            continue;
        };
        let ours = fstat(&fd).is_ok_and(|st| st.st_uid == me && st.st_mode & 0o7777 == 0o700);
        if !ours {
            continue;
        }
        let socket = fstatat(&fd, "notify", AtFlags::AT_SYMLINK_NOFOLLOW);
        if let Ok(st) = socket {
            let is_socket =
                SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFSOCK;
            // Through the directory's descriptor: no name on the way can be swapped.
            let path = format!("/proc/self/fd/{}/notify", fd.as_raw_fd());
            let listened = UnixDatagram::unbound().is_ok_and(|s| s.connect(&path).is_ok());
            if !is_socket
                || listened
                || unlinkat(&fd, "notify", UnlinkatFlags::NoRemoveDir).is_err()
            {
                continue;
            }
        }
        // Nothing else can be in it: a directory that is not empty stays (ENOTEMPTY).
        // ENOENT: another launch removed it first.
        match unlinkat(&dir, name.as_c_str(), UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => crate::log::warn(&format!(
                "a stale sd_notify relay directory {:?}: {}",
                base.join(std::ffi::OsStr::from_bytes(name.as_bytes())),
                e.desc()
            )),
        }
    }
}

/// The supervisor a relay directory's name says made it: its pid and start time.
fn owner_of(name: &[u8]) -> Option<(u32, u64)> {
    let rest = std::str::from_utf8(name).ok()?.strip_prefix(STALE_PREFIX)?;
    let mut parts = rest.splitn(3, '-');
    let pid = parts.next()?.parse().ok()?;
    let start = parts.next()?.parse().ok()?;
    let _suffix = parts.next()?;
    Some((pid, start))
}

/// Is process `pid`, started at `start`, still alive (the same one: a reused pid has another
/// start time)?
fn alive(pid: u32, start: u64) -> bool {
    super::cgroup::start_time(pid) == Some(start)
}

/// The message without its `MAINPID=` lines.
fn filter(msg: &[u8]) -> Vec<u8> {
    let lines: Vec<&[u8]> = msg
        .split(|b| *b == b'\n')
        .filter(|l| !l.starts_with(b"MAINPID="))
        .collect();
    let out = lines.join(&b'\n');
    if out.iter().all(|b| *b == b'\n') {
        Vec::new()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("READY=1", "READY=1")]
    #[case("READY=1\nSTATUS=up", "READY=1\nSTATUS=up")]
    #[case("MAINPID=7\nREADY=1", "READY=1")]
    #[case("READY=1\nMAINPID=7\n", "READY=1\n")]
    #[case("MAINPID=7", "")]
    #[case("MAINPID=7\n", "")]
    fn drops_mainpid(#[case] msg: &str, #[case] want: &str) {
        assert_eq!(String::from_utf8(filter(msg.as_bytes())).unwrap(), want);
    }

    /// Only `kekkai-notify-PID-START-SUFFIX` names a supervisor; anything else is left alone.
    #[rstest]
    #[case("kekkai-notify-12-345-aB3xYz", Some((12, 345)))]
    #[case("kekkai-notify-12-345-a-b", Some((12, 345)))]
    #[case("kekkai-notify-aB3xYz", None)]
    #[case("kekkai-notify-12-345", None)]
    #[case("kekkai-notify-x-345-aB3xYz", None)]
    #[case("kekkai-notify-12--aB3xYz", None)]
    #[case("other-12-345-aB3xYz", None)]
    fn a_relay_directory_names_its_supervisor(
        #[case] name: &str,
        #[case] want: Option<(i32, u64)>,
    ) {
        let got =
            owner_of(name.as_bytes()).map(|(pid, start)| (i32::try_from(pid).unwrap(), start));
        assert_eq!(got, want);
    }
}
