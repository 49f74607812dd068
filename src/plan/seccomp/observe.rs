//! The observer filter of `kekkai learn`: one BPF program that answers `USER_NOTIF` for every
//! x86_64 syscall, so the supervisor (holding the filter's listener) sees each call with its
//! number and arguments, and answers CONTINUE.
//!
//! It is installed *on top of* the policy's own stack, never instead of it: the kernel runs
//! every filter and takes the strictest answer, and an errno, trap or kill outranks
//! `USER_NOTIF`. So a call the policy denies is denied exactly as in `kekkai run` (and never
//! reaches the listener), and a call the policy allows is shown to the supervisor before it
//! goes on. The learning run enforces the policy's seccomp layer unchanged.
//!
//! One exception: `sendmsg(CHANNEL, _, MSG_NOSIGNAL)` on the sandbox's end of the channel gets
//! ALLOW from this filter (the policy's filters still decide), because that is how the
//! listener itself reaches the supervisor: a notification could not be answered before it
//! arrives. The channel is close-on-exec; a program that makes a socket with the same number
//! and that exact flag is not observed for that call, and is still filtered by the policy.
//!
//! Calls of another architecture are not observed (ALLOW here): the architecture guard of the
//! policy's stack kills them.

use seccompiler::sock_filter;

/// AUDIT_ARCH_X86_64.
const ARCH_X86_64: u32 = 0xc000_003e;
/// The flag the channel's one unobserved send carries.
pub const CHANNEL_SEND_FLAGS: u32 = crate::sys::abi::uint_bits(libc::MSG_NOSIGNAL);

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const RET_K: u16 = 0x06;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jeq(k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter {
        code: JEQ_K,
        jt,
        jf,
        k,
    }
}

/// The observer for a sandbox whose end of the channel is descriptor `channel`.
pub fn program(channel: u32) -> Vec<sock_filter> {
    let sendmsg = u32::try_from(libc::SYS_sendmsg).unwrap_or(u32::MAX);
    vec![
        stmt(LD_W_ABS, 4),                         // 0: arch
        jeq(ARCH_X86_64, 0, 7),                    // 1: another arch → 9 (the guard kills it)
        stmt(LD_W_ABS, 0),                         // 2: nr
        jeq(sendmsg, 0, 4),                        // 3: not sendmsg → 8
        stmt(LD_W_ABS, 16),                        // 4: low half of args[0]
        jeq(channel, 0, 2),                        // 5: another descriptor → 8
        stmt(LD_W_ABS, 32),                        // 6: low half of args[2]
        jeq(CHANNEL_SEND_FLAGS, 1, 0),             // 7: the channel's send → 9
        stmt(RET_K, libc::SECCOMP_RET_USER_NOTIF), // 8
        stmt(RET_K, libc::SECCOMP_RET_ALLOW),      // 9
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::seccomp::interp::{SeccompData, run};
    use rstest::rstest;

    /// Every call is shown to the listener but the channel's own send.
    #[rstest]
    #[case::read(libc::SYS_read, [0, 0, 0, 0, 0, 0], ARCH_X86_64, libc::SECCOMP_RET_USER_NOTIF)]
    #[case::execve(libc::SYS_execve, [0; 6], ARCH_X86_64, libc::SECCOMP_RET_USER_NOTIF)]
    #[case::channel_send(libc::SYS_sendmsg, [5, 0, 0x4000, 0, 0, 0], ARCH_X86_64, libc::SECCOMP_RET_ALLOW)]
    #[case::other_fd(libc::SYS_sendmsg, [6, 0, 0x4000, 0, 0, 0], ARCH_X86_64, libc::SECCOMP_RET_USER_NOTIF)]
    #[case::other_flags(libc::SYS_sendmsg, [5, 0, 0, 0, 0, 0], ARCH_X86_64, libc::SECCOMP_RET_USER_NOTIF)]
    #[case::i386(4, [0; 6], 0x4000_0003, libc::SECCOMP_RET_ALLOW)]
    fn observes_all_but_the_channel(
        #[case] nr: i64,
        #[case] args: [u64; 6],
        #[case] arch: u32,
        #[case] want: u32,
    ) {
        let data = SeccompData {
            nr: i32::try_from(nr).unwrap(),
            arch,
            instruction_pointer: 0,
            args,
        };
        assert_eq!(run(&program(5), &data.bytes()), Ok(want));
    }
}
