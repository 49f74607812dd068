//! The policy's own expectations for `kekkai audit` (`audit.must-deny`, `audit.must-allow`):
//! `read:/etc/shadow`, `write:/usr`, `exec:/tmp/x`, `connect:127.0.0.1:22`, `bind:8080`, checked
//! when the policy is compiled and tried inside the sandbox by the audit's battery; and the
//! names of the escape probes, which `audit.grants` may name.

use serde::{Deserialize, Serialize};

/// One expectation: an action on a target that must be denied or must be allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectation {
    /// `must-deny` or `must-allow`.
    pub deny: bool,
    /// The action.
    pub action: String,
    /// Its target.
    pub target: String,
}

impl Expectation {
    /// Parses `ACTION:TARGET`.
    pub fn parse(text: &str, deny: bool) -> Result<Expectation, String> {
        let Some((action, target)) = text.split_once(':') else {
            return Err(format!(
                "`{text}`: write ACTION:TARGET, e.g. read:/etc/shadow"
            ));
        };
        match action {
            "read" | "write" | "exec" => {
                if !target.starts_with('/') {
                    return Err(format!("`{text}`: the path must be absolute"));
                }
            }
            "connect" => {
                let port = target
                    .rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok());
                if port.is_none() {
                    return Err(format!("`{text}`: write connect:HOST:PORT"));
                }
            }
            "bind" => {
                if target.parse::<u16>().is_err() {
                    return Err(format!("`{text}`: write bind:PORT"));
                }
            }
            _ => {
                return Err(format!(
                    "`{action}` is not one of read, write, exec, connect, bind"
                ));
            }
        }
        Ok(Expectation {
            deny,
            action: action.to_owned(),
            target: target.to_owned(),
        })
    }

    /// The report name.
    pub fn name(&self) -> String {
        format!(
            "{}:{}:{}",
            if self.deny { "must-deny" } else { "must-allow" },
            self.action,
            self.target
        )
    }
}

/// Every escape probe `kekkai audit` runs, by name (`category.what`), in report order: the
/// names a policy's `audit.grants` may use. The audit's probe tables (`audit/probes/`) are
/// checked against this list by a unit test there, so the two never drift.
pub const PROBES: &[&str] = &[
    "fs.write-root",
    "fs.write-usr",
    "fs.write-etc",
    "fs.write-outside-rules",
    "fs.remount-root",
    "fs.mount-new",
    "fs.bind-mount",
    "fs.umount",
    "fs.umount-to-reveal",
    "fs.fsopen",
    "fs.fsmount",
    "fs.fspick",
    "fs.fsconfig",
    "fs.open-tree",
    "fs.move-mount",
    "fs.mount-setattr",
    "fs.chroot",
    "fs.pivot-root",
    "fs.open-by-handle",
    "fs.name-to-handle",
    "fs.magic-link-reopen",
    "fs.rename-across",
    "fs.hardlink-across",
    "fs.read-outside-rules",
    "fs.exec-outside-rules",
    "proc.core-pattern",
    "proc.sysrq-trigger",
    "proc.sys-vm",
    "proc.kcore",
    "proc.kallsyms-pointers",
    "proc.kernel-cmdline",
    "proc.kernel-config",
    "proc.self-mem-of-pid-1",
    "proc.uid-map-rewrite",
    "sys.uevent-helper",
    "sys.cgroup-release-agent",
    "sys.cgroup-procs",
    "sys.visible",
    "dev.mknod",
    "dev.mem",
    "dev.kmem",
    "dev.port",
    "dev.kmsg",
    "dev.kvm",
    "dev.block-devices",
    "process.ptrace-pid-1",
    "process.ptrace-parent",
    "process.ptrace-traceme",
    "process.vm-readv",
    "process.vm-writev",
    "process.pidfd-getfd",
    "process.kill-host-pid",
    "process.host-pids-visible",
    "process.kcmp",
    "caps.effective",
    "caps.bounding",
    "caps.ambient-raise",
    "caps.no-new-privs",
    "caps.file-capability-xattr",
    "identity.setuid-0",
    "identity.setgroups",
    "identity.setuid-binaries",
    "kernel.keyctl",
    "kernel.add-key",
    "kernel.request-key",
    "kernel.bpf",
    "kernel.perf-event-open",
    "kernel.userfaultfd",
    "kernel.io-uring-setup",
    "kernel.io-uring-enter",
    "kernel.kexec-load",
    "kernel.kexec-file-load",
    "kernel.init-module",
    "kernel.finit-module",
    "kernel.delete-module",
    "kernel.reboot",
    "kernel.swapon",
    "kernel.acct",
    "kernel.settimeofday",
    "kernel.clock-settime",
    "kernel.adjtimex",
    "kernel.syslog",
    "kernel.ioperm",
    "kernel.iopl",
    "kernel.personality",
    "kernel.modify-ldt",
    "kernel.quotactl",
    "kernel.sethostname",
    "ns.unshare-user",
    "ns.unshare-mount",
    "ns.unshare-net",
    "ns.unshare-pid",
    "ns.unshare-ipc",
    "ns.unshare-uts",
    "ns.unshare-cgroup",
    "ns.unshare-time",
    "ns.setns",
    "ns.clone-newuser",
    "ns.clone-newns",
    "ns.clone3",
    "seccomp.i386-int80",
    "seccomp.x32-bit",
    "seccomp.ioctl-upper-bits",
    "net.host-loopback-tcp",
    "net.host-abstract-socket",
    "net.raw-socket",
    "net.packet-socket",
    "net.netlink-changes",
    "net.vsock",
    "net.alg-socket",
    "net.bluetooth",
    "net.xdp",
    "net.egress-rules",
    "net.interfaces",
    "terminal.tiocsti",
    "terminal.tioclinux",
    "terminal.tiocsti-caller",
    "terminal.caller-fds",
    "terminal.dev-tty",
    "resources.fork-bomb",
    "resources.memory",
    "resources.dropped-limits",
    "resources.tmpfs-fill",
    "resources.fd-exhaustion",
    "resources.rlimit-raise",
    "leak.environment",
    "leak.pid-1-environ",
    "leak.pid-1-cmdline",
    "leak.kernel-modules",
    "leak.dmesg",
    "leak.host-mounts",
    "leak.sysv-shm",
    "privilege.setuid-chmod",
    "privilege.setgid-chmod",
    "privilege.setuid-create",
    "privilege.setgid-create",
    "privilege.setuid-tmpfile",
    "privilege.openat2-create",
    "privilege.file-capability",
    "privilege.device-node",
    "leak.root-secret-file",
    "leak.etc-shadow",
    "launcher.leaked-fds",
    "launcher.cwd-outside-root",
    "launcher.self-exe-overwrite",
    "launcher.pid-1-exe-overwrite",
];
