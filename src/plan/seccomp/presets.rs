//! The seccomp presets, as data with reasons.
//!
//! `default` is modelled on the default profiles of Docker and Podman: what ordinary programs
//! use, and nothing that reaches kernel attack surface a sandboxed program has no business
//! touching. Anything not listed — including syscalls that kernels add in the future — gets the
//! default action. `strict` is a subset for programs that compute and do file I/O.
//!
//! Argument-conditioned entries (ioctl, clone, socket, personality) are built by the compiler
//! in `rules.rs`; their syscalls are deliberately absent from the plain lists here. The names
//! are x86_64's (see `bpf.rs` on other architectures).

/// A group of syscalls allowed together, with the reason.
pub struct Group {
    /// Why these are allowed.
    pub why: &'static str,
    /// x86_64 syscall names.
    pub syscalls: &'static [&'static str],
}

/// Groups both presets allow.
pub const BASE: &[Group] = &[
    Group {
        why: "read and write open files",
        syscalls: &[
            "read",
            "write",
            "readv",
            "writev",
            "pread64",
            "pwrite64",
            "preadv",
            "pwritev",
            "preadv2",
            "pwritev2",
            "lseek",
            "sendfile",
            "splice",
            "tee",
            "vmsplice",
            "copy_file_range",
            "fsync",
            "fdatasync",
            "sync_file_range",
            "syncfs",
            "sync",
            "fallocate",
            "ftruncate",
            "fadvise64",
            "readahead",
            "flock",
            "close",
            "close_range",
            "dup",
            "dup2",
            "dup3",
            "fcntl",
            "pipe",
            "pipe2",
        ],
    },
    Group {
        why: "open, inspect and change paths (Landlock and the mount table decide which)",
        syscalls: &[
            "open",
            "openat",
            "openat2",
            "creat",
            "stat",
            "fstat",
            "lstat",
            "newfstatat",
            "statx",
            "statfs",
            "fstatfs",
            "access",
            "faccessat",
            "faccessat2",
            "readlink",
            "readlinkat",
            "getdents",
            "getdents64",
            "getcwd",
            "chdir",
            "fchdir",
            "mkdir",
            "mkdirat",
            "rmdir",
            "unlink",
            "unlinkat",
            "rename",
            "renameat",
            "renameat2",
            "link",
            "linkat",
            "symlink",
            "symlinkat",
            "chmod",
            "fchmod",
            "fchmodat",
            "fchmodat2",
            "truncate",
            "umask",
            "utime",
            "utimes",
            "utimensat",
            "futimesat",
            "mknod",
            "mknodat",
            "getxattr",
            "lgetxattr",
            "fgetxattr",
            "listxattr",
            "llistxattr",
            "flistxattr",
            "getxattrat",
            "listxattrat",
            "file_getattr",
        ],
    },
    Group {
        why: "memory management",
        syscalls: &[
            "brk",
            "mmap",
            "munmap",
            "mremap",
            "mprotect",
            "madvise",
            "mincore",
            "msync",
            "mlock",
            "mlock2",
            "munlock",
            "mlockall",
            "munlockall",
            "membarrier",
            "mseal",
            "map_shadow_stack",
            "pkey_alloc",
            "pkey_free",
            "pkey_mprotect",
            "memfd_create",
            "remap_file_pages",
            "cachestat",
        ],
    },
    Group {
        why: "processes and threads (clone is allowed separately, without namespace flags)",
        syscalls: &[
            "fork",
            "vfork",
            "execve",
            "execveat",
            "exit",
            "exit_group",
            "wait4",
            "waitid",
            "getpid",
            "getppid",
            "gettid",
            "getpgid",
            "setpgid",
            "getpgrp",
            "getsid",
            "setsid",
            "set_tid_address",
            "set_robust_list",
            "get_robust_list",
            "rseq",
            "arch_prctl",
            "prctl",
            "futex",
            "futex_waitv",
            "futex_wake",
            "futex_wait",
            "futex_requeue",
            "sched_yield",
            "sched_getaffinity",
            "sched_setaffinity",
            "sched_getparam",
            "sched_getscheduler",
            "sched_get_priority_max",
            "sched_get_priority_min",
            "sched_rr_get_interval",
            "sched_getattr",
            "getpriority",
            "setpriority",
            "getrlimit",
            "setrlimit",
            "prlimit64",
            "getrusage",
            "times",
            "sysinfo",
            "uname",
            "getcpu",
            "ioprio_get",
            "ioprio_set",
            "capget",
            "pidfd_open",
        ],
    },
    Group {
        why: "ids (changing them needs capabilities the sandbox does not have)",
        syscalls: &[
            "getuid",
            "geteuid",
            "getgid",
            "getegid",
            "getresuid",
            "getresgid",
            "getgroups",
            "setuid",
            "setgid",
            "setreuid",
            "setregid",
            "setresuid",
            "setresgid",
            "setfsuid",
            "setfsgid",
            "setgroups",
            "capset",
        ],
    },
    Group {
        why: "signals (the pid namespace and Landlock's signal scope limit whom)",
        syscalls: &[
            "rt_sigaction",
            "rt_sigprocmask",
            "rt_sigreturn",
            "rt_sigpending",
            "rt_sigtimedwait",
            "rt_sigqueueinfo",
            "rt_tgsigqueueinfo",
            "rt_sigsuspend",
            "sigaltstack",
            "kill",
            "tkill",
            "tgkill",
            "pidfd_send_signal",
            "signalfd",
            "signalfd4",
            "pause",
        ],
    },
    Group {
        why: "time and timers (reading clocks, never setting them)",
        syscalls: &[
            "clock_gettime",
            "clock_getres",
            "clock_nanosleep",
            "nanosleep",
            "gettimeofday",
            "time",
            "alarm",
            "getitimer",
            "setitimer",
            "timer_create",
            "timer_settime",
            "timer_gettime",
            "timer_getoverrun",
            "timer_delete",
            "timerfd_create",
            "timerfd_settime",
            "timerfd_gettime",
        ],
    },
    Group {
        why: "waiting for events",
        syscalls: &[
            "poll",
            "ppoll",
            "select",
            "pselect6",
            "epoll_create",
            "epoll_create1",
            "epoll_ctl",
            "epoll_wait",
            "epoll_pwait",
            "epoll_pwait2",
            "eventfd",
            "eventfd2",
            "inotify_init",
            "inotify_init1",
            "inotify_add_watch",
            "inotify_rm_watch",
        ],
    },
    Group {
        why: "I/O on sockets the program already holds: the connected pairs of socketpair \
              (`strict` allows it for unix stream and seqpacket pairs alone) and the ones it \
              was given; none of these calls creates a socket or reaches a new peer (a stream or \
              seqpacket socket ignores or refuses an address given to sendto and sendmsg)",
        syscalls: &[
            "getsockname",
            "getpeername",
            "sendto",
            "recvfrom",
            "sendmsg",
            "recvmsg",
            "sendmmsg",
            "recvmmsg",
            "shutdown",
            "setsockopt",
            "getsockopt",
        ],
    },
    Group {
        why: "randomness and restarting interrupted calls",
        syscalls: &["getrandom", "restart_syscall"],
    },
    Group {
        why: "tightening the sandbox further from inside is always allowed",
        syscalls: &[
            "seccomp",
            "landlock_create_ruleset",
            "landlock_add_rule",
            "landlock_restrict_self",
        ],
    },
];

/// Groups only `default` allows.
pub const DEFAULT_ONLY: &[Group] = &[
    Group {
        why: "sockets: creating, naming and connecting them (socket() itself is limited to the \
              allowed families)",
        syscalls: &[
            "socketpair",
            "bind",
            "listen",
            "accept",
            "accept4",
            "connect",
        ],
    },
    Group {
        why: "System V and POSIX IPC (private to the sandbox's ipc namespace)",
        syscalls: &[
            "shmget",
            "shmat",
            "shmdt",
            "shmctl",
            "semget",
            "semop",
            "semtimedop",
            "semctl",
            "msgget",
            "msgsnd",
            "msgrcv",
            "msgctl",
            "mq_open",
            "mq_unlink",
            "mq_timedsend",
            "mq_timedreceive",
            "mq_notify",
            "mq_getsetattr",
        ],
    },
    Group {
        why: "changing owners and extended attributes of files the program may write",
        syscalls: &[
            "chown",
            "fchown",
            "lchown",
            "fchownat",
            "setxattr",
            "lsetxattr",
            "fsetxattr",
            "removexattr",
            "lremovexattr",
            "fremovexattr",
            "setxattrat",
            "removexattrat",
            "file_setattr",
        ],
    },
    Group {
        why: "asynchronous I/O (the old aio interface; io_uring is not allowed)",
        syscalls: &[
            "io_setup",
            "io_destroy",
            "io_submit",
            "io_cancel",
            "io_getevents",
            "io_pgetevents",
        ],
    },
    Group {
        why: "scheduling of the program's own threads, and mlock-style hints",
        syscalls: &[
            "sched_setparam",
            "sched_setscheduler",
            "sched_setattr",
            "process_mrelease",
            "memfd_secret",
        ],
    },
];

/// Calls `default` denies on purpose, with the reason (documentation and `explain`; anything
/// not allowed is denied anyway).
pub const DENIED: &[Group] = &[
    Group {
        why: "kernel attack surface with a long CVE history",
        syscalls: &[
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
            "userfaultfd",
            "bpf",
            "perf_event_open",
            "keyctl",
            "add_key",
            "request_key",
            "modify_ldt",
        ],
    },
    Group {
        why: "changing the machine: modules, kexec, reboot, swap, accounting, clocks",
        syscalls: &[
            "init_module",
            "finit_module",
            "delete_module",
            "kexec_load",
            "kexec_file_load",
            "reboot",
            "swapon",
            "swapoff",
            "acct",
            "settimeofday",
            "clock_settime",
            "adjtimex",
            "clock_adjtime",
            "sethostname",
            "setdomainname",
            "syslog",
            "ioperm",
            "iopl",
            "quotactl",
            "quotactl_fd",
            "vhangup",
        ],
    },
    Group {
        why: "mounts and roots: the sandbox's filesystem is final",
        syscalls: &[
            "mount",
            "umount2",
            "pivot_root",
            "chroot",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "open_tree",
            "open_tree_attr",
            "move_mount",
            "mount_setattr",
            "listmount",
            "statmount",
        ],
    },
    Group {
        why: "namespaces: no way into another one, no new one",
        syscalls: &["unshare", "setns"],
    },
    Group {
        why: "reaching into other processes",
        syscalls: &[
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "pidfd_getfd",
            "kcmp",
            "process_madvise",
        ],
    },
    Group {
        why: "file handles bypass path-based checks",
        syscalls: &["name_to_handle_at", "open_by_handle_at"],
    },
];

/// Personality values `default` lets through: Linux, its 32-bit-uname variants, and the query.
pub const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x2_0000, 0x2_0008, 0xFFFF_FFFF];

/// The `socket-families` entry for `socket(AF_NETLINK, *, NETLINK_ROUTE)` alone: what `ip
/// addr`, `hostname -I`, getifaddrs(3) and if_nameindex(3) read. Only the sandbox's own network
/// namespace (or the host's, under `network: host`) is visible through it, and changing
/// anything needs CAP_NET_ADMIN; other netlink protocols (audit, uevents, sock_diag, ...) stay
/// denied.
pub const NETLINK_ROUTE_NAME: &str = "netlink-route";

/// Socket families `default` allows unless the policy says otherwise.
pub const DEFAULT_FAMILIES: &[&str] = &["unix", "inet", "inet6", NETLINK_ROUTE_NAME];

/// A call whose mode argument can give a file the setuid or setgid bit, or make a device node.
/// Denied with EPERM whatever the preset, unless the policy says `host-privileges: allow`
/// (`rules.rs` turns these into argument conditions).
pub struct ModeRule {
    /// x86_64 syscall name.
    pub syscall: &'static str,
    /// Index of the mode argument (a `umode_t`: compared as 32 bits, the kernel reads 16).
    pub mode_arg: u8,
    /// Index of the open flags, for calls whose mode only counts when they create a file
    /// (`O_CREAT`, or `O_TMPFILE`: an unnamed file that `linkat` can give a name later).
    pub create_flags_arg: Option<u8>,
    /// Also deny character and block device types (`S_IFCHR`, `S_IFBLK`) in the mode.
    pub devices: bool,
    /// Why the call is here.
    pub why: &'static str,
}

/// What `host-privileges: deny` filters. S_ISGID is denied as well as S_ISUID: a setgid
/// program gives anyone who runs it the group that owns it. seccomp can't tell a directory
/// from a file, so this also refuses `chmod g+s DIR` (and GNU chmod on a setgid directory,
/// which passes the bit back); a setgid directory that already exists keeps working, because
/// the kernel hands its group and bit to what is created inside without any mode argument.
pub const MODE_RULES: &[ModeRule] = &[
    ModeRule {
        syscall: "chmod",
        mode_arg: 1,
        create_flags_arg: None,
        devices: false,
        why: "changes a path's mode",
    },
    ModeRule {
        syscall: "fchmod",
        mode_arg: 1,
        create_flags_arg: None,
        devices: false,
        why: "changes an open file's mode",
    },
    ModeRule {
        syscall: "fchmodat",
        mode_arg: 2,
        create_flags_arg: None,
        devices: false,
        why: "changes a path's mode",
    },
    ModeRule {
        syscall: "fchmodat2",
        mode_arg: 2,
        create_flags_arg: None,
        devices: false,
        why: "changes a path's mode (glibc 2.39 and later use it for fchmodat with flags)",
    },
    ModeRule {
        syscall: "open",
        mode_arg: 2,
        create_flags_arg: Some(1),
        devices: false,
        why: "creates a file with this mode (O_CREAT, O_TMPFILE)",
    },
    ModeRule {
        syscall: "openat",
        mode_arg: 3,
        create_flags_arg: Some(2),
        devices: false,
        why: "creates a file with this mode (O_CREAT, O_TMPFILE)",
    },
    ModeRule {
        syscall: "creat",
        mode_arg: 1,
        create_flags_arg: None,
        devices: false,
        why: "creates a file with this mode",
    },
    ModeRule {
        syscall: "mkdir",
        mode_arg: 1,
        create_flags_arg: None,
        devices: false,
        why: "the kernel strips these bits from mkdir today; denied anyway, as systemd's \
              RestrictSUIDSGID= does, so the rule does not rest on that",
    },
    ModeRule {
        syscall: "mkdirat",
        mode_arg: 2,
        create_flags_arg: None,
        devices: false,
        why: "as mkdir",
    },
    ModeRule {
        syscall: "mknod",
        mode_arg: 1,
        create_flags_arg: None,
        devices: true,
        why: "creates a regular file with this mode, or a device node (CAP_MKNOD is never \
              kept either)",
    },
    ModeRule {
        syscall: "mknodat",
        mode_arg: 2,
        create_flags_arg: None,
        devices: true,
        why: "as mknod",
    },
];

/// Calls `host-privileges: deny` answers with ENOSYS whatever their arguments (unless the
/// policy denies them already), with the reason: they create files with a mode kept in memory.
pub const MODE_UNREADABLE: &[(&str, &str)] = &[
    (
        "openat2",
        "its flags and mode are in a struct open_how in memory, which seccomp can't read; ENOSYS \
     is what a kernel before 5.6 answers, and the libraries that use openat2 (filepath-securejoin \
     and other Go code on x/sys, Rust's cap-std and rustix, libpathrs, systemd) take it as an \
     old kernel and fall back to openat, whose mode the filter reads (glibc and musl never call \
     openat2 on their own); systemd's RestrictSUIDSGID= answers the same",
    ),
    (
        "io_uring_setup",
        "a ring's IORING_OP_OPENAT and IORING_OP_OPENAT2 requests create files with modes in \
         shared memory, past any filter; `default` and `strict` deny io_uring anyway, this holds \
         it under `log` and `none` too (ENOSYS: what a kernel without io_uring answers, and \
         liburing's users fall back on)",
    ),
];

#[cfg(test)]
mod tests {
    use crate::plan::names;
    use crate::plan::seccomp::presets;

    #[test]
    fn every_preset_name_is_an_x86_64_syscall() {
        for g in presets::BASE
            .iter()
            .chain(presets::DEFAULT_ONLY)
            .chain(presets::DENIED)
        {
            for name in g.syscalls {
                assert!(names::syscall_number(name).is_some(), "{name} ({})", g.why);
            }
        }
    }

    #[test]
    fn no_syscall_is_both_in_an_allow_group_and_the_denied_list() {
        for d in presets::DENIED.iter().flat_map(|g| g.syscalls) {
            for g in presets::BASE.iter().chain(presets::DEFAULT_ONLY) {
                assert!(!g.syscalls.contains(d), "{d} is allowed by \"{}\"", g.why);
            }
        }
    }
}
