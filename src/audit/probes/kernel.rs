//! Kernel attack surface, namespaces and seccomp bypasses: system calls a sandboxed program has
//! no business making (keyctl, bpf, io_uring, kexec, modules, clocks), new namespaces, and the
//! ways around an x86_64 filter (int 0x80, the x32 bit, ioctl's upper bits).

use nix::errno::Errno;

use super::{EPERM, Probe, call, call_forking, int80, nr, ptr, raw_syscall};
use crate::audit::Seen;
use crate::sys::abi::address;

// Constants used below.
const CLONE_NEWNS: u64 = 0x0002_0000;
const CLONE_NEWCGROUP: u64 = 0x0200_0000;
const CLONE_NEWUTS: u64 = 0x0400_0000;
const CLONE_NEWIPC: u64 = 0x0800_0000;
const CLONE_NEWUSER: u64 = 0x1000_0000;
const CLONE_NEWPID: u64 = 0x2000_0000;
const CLONE_NEWNET: u64 = 0x4000_0000;
const CLONE_NEWTIME: u64 = 0x80;
const SIGCHLD: u64 = 17;

probes! {
    "kernel.keyctl", "seccomp", EPERM, true, |_| call("keyctl", [0xffff, 0, 0, 0, 0, 0]);
    "kernel.add-key", "seccomp", EPERM, true, |_| call("add_key", [0, 0, 0, 0, 0, 0]);
    "kernel.request-key", "seccomp", EPERM, true, |_| call("request_key", [0, 0, 0, 0, 0, 0]);
    "kernel.bpf", "seccomp", EPERM, true, |_| call("bpf", [0xffff, 0, 0, 0, 0, 0]);
    "kernel.perf-event-open", "seccomp", EPERM, true, |_| call("perf_event_open", [0, 0, u64::MAX, u64::MAX, 0, 0]);
    "kernel.userfaultfd", "seccomp", EPERM, true, |_| call("userfaultfd", [0xffff_ffff, 0, 0, 0, 0, 0]);
    "kernel.io-uring-setup", "seccomp", EPERM, true, |_| call("io_uring_setup", [0, 0, 0, 0, 0, 0]);
    "kernel.io-uring-enter", "seccomp", EPERM, true, |_| call("io_uring_enter", [u64::MAX, 0, 0, 0, 0, 0]);
    "kernel.kexec-load", "seccomp", EPERM, true, |_| call("kexec_load", [0, 0xffff, 0, 0, 0, 0]);
    "kernel.kexec-file-load", "seccomp", EPERM, true, |_| call("kexec_file_load", [u64::MAX, u64::MAX, 0, 0, 0xffff, 0]);
    "kernel.init-module", "seccomp", EPERM, true, |_| call("init_module", [0, 0, 0, 0, 0, 0]);
    "kernel.finit-module", "seccomp", EPERM, true, |_| call("finit_module", [u64::MAX, 0, 0, 0, 0, 0]);
    "kernel.delete-module", "seccomp", EPERM, true, |_| call("delete_module", [ptr(c"kekkai-no-such-module"), 0, 0, 0, 0, 0]);
    "kernel.reboot", "seccomp", EPERM, true, |_| call("reboot", [0, 0, 0, 0, 0, 0]);
    "kernel.swapon", "seccomp", EPERM, true, |_| call("swapon", [ptr(c"/kekkai-no-such-file"), 0, 0, 0, 0, 0]);
    "kernel.acct", "seccomp", EPERM, true, |_| call("acct", [ptr(c"/kekkai-no-such-file"), 0, 0, 0, 0, 0]);
    "kernel.settimeofday", "seccomp", EPERM, true, |_| call("settimeofday", [0, 0, 0, 0, 0, 0]);
    "kernel.clock-settime", "seccomp", EPERM, true, |_| call("clock_settime", [u64::MAX, 0, 0, 0, 0, 0]);
    "kernel.adjtimex", "seccomp", EPERM, true, |_| call("adjtimex", [0, 0, 0, 0, 0, 0]);
    "kernel.syslog", "seccomp", EPERM, true, |_| call("syslog", [10 /* SIZE_BUFFER */, 0, 0, 0, 0, 0]);
    "kernel.ioperm", "seccomp", EPERM, true, |_| call("ioperm", [0, 0, 0, 0, 0, 0]);
    "kernel.iopl", "seccomp", EPERM, true, |_| call("iopl", [0, 0, 0, 0, 0, 0]);
    "kernel.personality", "seccomp", EPERM, true, |_| call("personality", [0x0040000 /* ADDR_NO_RANDOMIZE */, 0, 0, 0, 0, 0]);
    "kernel.modify-ldt", "seccomp", EPERM, true, |_| call("modify_ldt", [0, 0, 0, 0, 0, 0]);
    "kernel.quotactl", "seccomp", EPERM, true, |_| call("quotactl", [0, 0, 0, 0, 0, 0]);
    "kernel.sethostname", "seccomp", EPERM, true, |_| call("sethostname", [0, 1000, 0, 0, 0, 0]);

    // ── namespaces ──────────────────────────────────────────────────────────────────────────
    "ns.unshare-user", "seccomp", EPERM, true, |_| call("unshare", [CLONE_NEWUSER, 0, 0, 0, 0, 0]);
    "ns.unshare-mount", "seccomp", EPERM, true, |_| call("unshare", [CLONE_NEWNS, 0, 0, 0, 0, 0]);
    "ns.unshare-net", "seccomp", EPERM, true, |_| call("unshare", [CLONE_NEWNET, 0, 0, 0, 0, 0]);
    "ns.unshare-pid", "seccomp", EPERM, true, |_| call("unshare", [CLONE_NEWPID, 0, 0, 0, 0, 0]);
    "ns.unshare-ipc", "seccomp", EPERM, true, |_| call("unshare", [CLONE_NEWIPC, 0, 0, 0, 0, 0]);
    "ns.unshare-uts", "seccomp", EPERM, true, |_| call("unshare", [CLONE_NEWUTS, 0, 0, 0, 0, 0]);
    "ns.unshare-cgroup", "seccomp", EPERM, true, |_| call("unshare", [CLONE_NEWCGROUP, 0, 0, 0, 0, 0]);
    "ns.unshare-time", "seccomp", EPERM, true, |_| call("unshare", [CLONE_NEWTIME, 0, 0, 0, 0, 0]);
    "ns.setns", "seccomp", EPERM, true, |_| call("setns", [u64::MAX, 0, 0, 0, 0, 0]);
    "ns.clone-newuser", "seccomp", EPERM, true, |_| call_forking("clone", [CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0, 0]);
    "ns.clone-newns", "seccomp", EPERM, true, |_| call_forking("clone", [CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0, 0]);
    "ns.clone3", "seccomp", &[Errno::ENOSYS, Errno::EPERM], true, |_| call("clone3", [0, 0, 0, 0, 0, 0]);

    // ── seccomp bypasses ────────────────────────────────────────────────────────────────────
    "seccomp.i386-int80", "seccomp", &[], true, |_| {
        let r = int80(20 /* getpid */, 0, 0, 0);
        if r < 0 { Seen::Errno(Errno::from_raw(r.saturating_neg())) } else { Seen::Done(format!("getpid via int 0x80 returned {r}")) }
    };
    "seccomp.x32-bit", "seccomp", &[Errno::ENOSYS], true, |_| Seen::from(raw_syscall(nr("getpid") | 0x4000_0000, [0; 6]));
    "seccomp.ioctl-upper-bits", "seccomp", &[Errno::EPERM], true, |_| {
        static BYTE: u8 = b'\n';
        call("ioctl", [u64::MAX /* no such fd: EBADF if let through */, 0xdead_beef_0000_5412, address(&raw const BYTE), 0, 0, 0])
    };
}
