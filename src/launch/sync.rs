//! The typed channel between the supervisor and the sandbox: a SOCK_SEQPACKET socketpair
//! (close-on-exec, so it never reaches the program), one JSON message per packet.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use serde::{Deserialize, Serialize};

use super::error::StepError;
use super::report::Enforced;

/// Largest message.
const MAX_MESSAGE: usize = 64 * 1024;

/// From the supervisor to the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToChild {
    /// The id maps are written and the cgroup joined: go on.
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
    /// The program ended (the reaper reports its raw wait status).
    ProgramExited {
        /// Raw wait status.
        status: i32,
    },
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

    /// Receives one message; `Ok(None)` when the other end is closed.
    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> nix::Result<Option<T>> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let n = loop {
            match nix::unistd::read(&self.0, &mut buf) {
                Err(nix::errno::Errno::EINTR) => continue,
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
