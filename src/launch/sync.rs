//! The typed channel between the supervisor and the sandbox: a SOCK_SEQPACKET socketpair
//! (close-on-exec, so it never reaches the program), one JSON message per packet, a descriptor
//! along with one of them (SCM_RIGHTS).
//!
//! The order the messages follow: the supervisor sends `Mapped` once the id maps are written
//! (step 3) and `Go` once the cgroups are joined and `network: user` is ready (the sandbox waits for it before seccomp);
//! the sandbox sends `RelayEnd` when it has made the program's terminal (step 7), `Failed` if
//! a step fails, else `Enforced` just before exec, then `ExecFailed` or the reaper's
//! `ProgramExited`. The messages carry `report.rs`'s types; the program's start
//! (`exec.rs`), the sandbox's steps and the supervisor use this file, never the other way round.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use serde::{Deserialize, Serialize};

use super::error::StepError;
use super::report::{Ended, Enforced};

/// Largest message.
const MAX_MESSAGE: usize = 64 * 1024;

/// From the supervisor to the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToChild {
    /// The id maps are written: set up the sandbox.
    Mapped,
    /// The cgroups are joined (cgroup v1 only; v2 places the child at clone) and the network
    /// is ready (`network: user`): the program may start.
    Go,
}

/// From the sandbox to the supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToParent {
    /// A setup step failed; the sandbox exits with 125.
    Failed(StepError),
    /// Everything is in place; what was enforced.
    Enforced(Enforced),
    /// execve failed for every candidate path.
    ExecFailed {
        /// The program as given.
        program: String,
        /// The errno that decides the exit code (ENOENT → 127, else 126).
        errno: i32,
    },
    /// The supervisor's end of the program's terminal relay travels with this message
    /// (SCM_RIGHTS): the pseudo-terminal's master, or a pipe's read end.
    RelayEnd,
    /// The program's execve succeeded: the reaper saw the close-on-exec pipe the program
    /// held close without an `ExecFailed` or `Failed` before it. (A program that is PID 1 has
    /// no reaper: its channel end, close-on-exec too, closing says the same.)
    Execed,
    /// The program ended (the reaper reports how).
    ProgramExited(Ended),
    /// `kekkai learn`: the observer filter's listener travels with this message (SCM_RIGHTS),
    /// sent with MSG_NOSIGNAL, the one send the observer lets by unobserved.
    Listener,
}

/// Whether a failed read is worth repeating. EINTR, and ECONNRESET: a peer that exits with
/// messages of ours unread (a sandbox failing before it reads Go) makes the kernel report
/// ECONNRESET once, ahead of the messages the peer sent us, such as the Failed that says why.
/// The report is consumed by the read that returns it; the next read gets the messages, then
/// end of file.
fn retry(e: nix::errno::Errno) -> bool {
    matches!(e, nix::errno::Errno::EINTR | nix::errno::Errno::ECONNRESET)
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel(OwnedFd);

impl Channel {
    /// A connected pair: (supervisor end, sandbox end).
    pub fn pair() -> nix::Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((Channel(a), Channel(b)))
    }

    /// The descriptor (to keep it out of close_range, to poll it).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// Sends one message.
    pub fn send<T: Serialize>(&self, msg: &T) -> nix::Result<()> {
        let bytes = serde_json::to_vec(msg).map_err(|_| nix::errno::Errno::EINVAL)?;
        let n = nix::unistd::write(&self.0, &bytes)?;
        if n == bytes.len() {
            Ok(())
        } else {
            Err(nix::errno::Errno::EMSGSIZE)
        }
    }

    /// Sends one message with a descriptor attached (SCM_RIGHTS).
    pub fn send_with_fd<T: Serialize>(&self, msg: &T, fd: BorrowedFd<'_>) -> nix::Result<()> {
        use std::os::fd::AsRawFd;
        let bytes = serde_json::to_vec(msg).map_err(|_| nix::errno::Errno::EINVAL)?;
        let iov = [std::io::IoSlice::new(&bytes)];
        let fds = [fd.as_raw_fd()];
        let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
        nix::sys::socket::sendmsg::<()>(
            self.0.as_raw_fd(),
            &iov,
            &cmsg,
            nix::sys::socket::MsgFlags::empty(),
            None,
        )?;
        Ok(())
    }

    /// Sends the observer's listener ([`ToParent::Listener`]) with the flags the observer filter
    /// lets by: this call can't wait for the supervisor, which has no listener yet.
    pub fn send_listener(&self, fd: BorrowedFd<'_>) -> nix::Result<()> {
        use std::os::fd::AsRawFd;
        let bytes =
            serde_json::to_vec(&ToParent::Listener).map_err(|_| nix::errno::Errno::EINVAL)?;
        let iov = [std::io::IoSlice::new(&bytes)];
        let fds = [fd.as_raw_fd()];
        let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
        nix::sys::socket::sendmsg::<()>(
            self.0.as_raw_fd(),
            &iov,
            &cmsg,
            nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
            None,
        )?;
        Ok(())
    }

    /// Receives one message and the descriptor sent with it, if any.
    pub fn recv_with_fd<T: for<'de> Deserialize<'de>>(
        &self,
    ) -> nix::Result<Option<(T, Option<OwnedFd>)>> {
        use std::os::fd::AsFd;
        let mut buf = vec![0u8; MAX_MESSAGE];
        let (n, owned) = loop {
            match crate::sys::recv_with_fd(self.0.as_fd(), &mut buf) {
                Err(e) if retry(e) => continue,
                other => break other?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(buf.get(..n).unwrap_or_default())
            .map(|m| Some((m, owned)))
            .map_err(|_| nix::errno::Errno::EBADMSG)
    }

    /// Has the other end closed?
    pub fn peer_gone(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut fds = [PollFd::new(self.fd(), PollFlags::empty())];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => fds[0]
                .revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)),
            Err(_) => false,
        }
    }

    /// Is there nothing (more) to read right now?
    pub fn drained(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut fds = [PollFd::new(self.fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => !fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLIN)),
            Err(_) => true,
        }
    }

    /// Receives one message; `Ok(None)` when the other end is closed.
    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> nix::Result<Option<T>> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let n = loop {
            match nix::unistd::read(&self.0, &mut buf) {
                Err(e) if retry(e) => continue,
                other => break other?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_slice(buf.get(..n).unwrap_or_default())
            .map(Some)
            .map_err(|_| nix::errno::Errno::EBADMSG)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reaper's report arrives as it was sent.
    #[rstest::rstest]
    #[case::exited(Ended::Exited(3))]
    #[case::exited_255(Ended::Exited(255))]
    #[case::killed(Ended::Signaled(9))]
    #[case::realtime_signal(Ended::Signaled(35))]
    fn the_program_s_end_crosses_the_channel(#[case] ended: Ended) {
        let (parent, child) = Channel::pair().unwrap();
        child.send(&ToParent::ProgramExited(ended)).unwrap();
        match parent.recv_with_fd::<ToParent>() {
            Ok(Some((ToParent::ProgramExited(got), None))) => assert_eq!(got, ended),
            other => panic!("{other:?}"),
        }
    }

    /// The supervisor's side of a failed setup: the sandbox sends Failed and exits without
    /// reading Go. The kernel's one-time ECONNRESET is read past; the message arrives.
    #[test]
    fn a_peer_that_dies_with_unread_messages_still_delivers_its_own() {
        let (parent, child) = Channel::pair().unwrap();
        parent.send(&ToChild::Go).unwrap();
        child
            .send(&ToParent::ExecFailed {
                program: "x".into(),
                errno: 2,
            })
            .unwrap();
        drop(child);
        match parent.recv_with_fd::<ToParent>() {
            Ok(Some((ToParent::ExecFailed { errno, .. }, None))) => assert_eq!(errno, 2),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parent.recv_with_fd::<ToParent>(), Ok(None)));
    }
}
