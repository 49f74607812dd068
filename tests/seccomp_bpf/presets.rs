//! Chosen calls under each preset (`default`, `strict`, `log`, `none`) and every entry of the
//! presets' lists, each verdict from the filters and from the model.

use rstest::rstest;

use kekkai::plan::seccomp::presets;

use super::*;

#[rstest]
#[case::tiocsti(x("ioctl", &[0, TIOCSTI]), EPERM)]
// The kernel reads ioctl's request as an unsigned int: junk above bit 31 still reaches TIOCSTI
// (CVE-2019-10063), so the filter compares only the low 32 bits.
#[case::tiocsti_bit_32(x("ioctl", &[0, 0x1_0000_0000 | TIOCSTI]), EPERM)]
#[case::tiocsti_high_half_ones(x("ioctl", &[0, 0xffff_ffff_0000_0000 | TIOCSTI]), EPERM)]
#[case::tiocsti_on_any_fd(x("ioctl", &[ONES, TIOCSTI, ONES]), EPERM)]
#[case::tioclinux(x("ioctl", &[0, TIOCLINUX]), EPERM)]
#[case::tioclinux_high_junk(x("ioctl", &[0, HIGH | TIOCLINUX]), EPERM)]
#[case::tcgets(x("ioctl", &[1, TCGETS]), ALLOW)]
#[case::tcgets_high_junk(x("ioctl", &[1, HIGH | TCGETS]), ALLOW)]
#[case::request_0(x("ioctl", &[1, 0]), ALLOW)]
#[case::clone_0(x("clone", &[0]), ALLOW)]
#[case::clone_thread(x("clone", &[THREAD_FLAGS]), ALLOW)]
#[case::clone_fork(x("clone", &[FORK_FLAGS]), ALLOW)]
// clone(2) uses the low 32 bits of its flags (lower_32_bits in kernel/fork.c).
#[case::clone_junk_above(x("clone", &[HIGH | THREAD_FLAGS]), ALLOW)]
#[case::clone_newuser(x("clone", &[CLONE_NEWUSER]), EPERM)]
#[case::clone_newns(x("clone", &[CLONE_NEWNS]), EPERM)]
#[case::clone_newpid(x("clone", &[CLONE_NEWPID]), EPERM)]
#[case::clone_newnet(x("clone", &[CLONE_NEWNET]), EPERM)]
#[case::clone_newuts(x("clone", &[CLONE_NEWUTS]), EPERM)]
#[case::clone_newipc(x("clone", &[CLONE_NEWIPC]), EPERM)]
#[case::clone_newcgroup(x("clone", &[CLONE_NEWCGROUP]), EPERM)]
#[case::clone_thread_newuser(x("clone", &[THREAD_FLAGS | CLONE_NEWUSER]), EPERM)]
#[case::clone_newuser_high_junk(x("clone", &[HIGH | FORK_FLAGS | CLONE_NEWUSER]), EPERM)]
#[case::clone3(x("clone3", &[]), ENOSYS)]
#[case::clone3_any_args(x("clone3", &[ONES, 88]), ENOSYS)]
#[case::socket_unix(x("socket", &[AF_UNIX, 1]), ALLOW)]
#[case::socket_inet(x("socket", &[AF_INET, 1]), ALLOW)]
#[case::socket_inet6(x("socket", &[AF_INET6, 2]), ALLOW)]
// Netlink for routing only: NETLINK_ROUTE (0) is allowed, whatever the type; every other
// protocol is not (audit 9, uevents 15, sock_diag 4, netfilter 12).
#[case::socket_netlink_route(x("socket", &[AF_NETLINK, 3, NETLINK_ROUTE]), ALLOW)]
#[case::socket_netlink_route_dgram(x("socket", &[AF_NETLINK, 2 | SOCK_CLOEXEC, NETLINK_ROUTE]), ALLOW)]
#[case::socket_netlink_audit(x("socket", &[AF_NETLINK, 3, NETLINK_AUDIT]), EPERM)]
#[case::socket_netlink_uevent(x("socket", &[AF_NETLINK, 2, NETLINK_KOBJECT_UEVENT]), EPERM)]
#[case::socket_netlink_sock_diag(x("socket", &[AF_NETLINK, 3, NETLINK_SOCK_DIAG]), EPERM)]
#[case::socket_netlink_netfilter(x("socket", &[AF_NETLINK, 3, NETLINK_NETFILTER]), EPERM)]
// The protocol is an int too: junk above NETLINK_ROUTE is the route protocol for the kernel
// (allowed); junk above another protocol is still that protocol (refused).
#[case::socket_netlink_route_high_junk(x("socket", &[AF_NETLINK, 3, HIGH | NETLINK_ROUTE]), ALLOW)]
#[case::socket_netlink_audit_high_junk(x("socket", &[AF_NETLINK, 3, HIGH | NETLINK_AUDIT]), EPERM)]
#[case::socket_route_protocol_other_family(x("socket", &[AF_PACKET, 3, NETLINK_ROUTE]), EPERM)]
#[case::socket_packet(x("socket", &[AF_PACKET, 3]), EPERM)]
#[case::socket_vsock(x("socket", &[AF_VSOCK, 1]), EPERM)]
#[case::socket_0(x("socket", &[0]), EPERM)]
// socket(2) takes `int family`: the kernel drops the upper half, so 0x1_00000002 creates an
// AF_INET socket. The filter compares the same low 32 bits and allows it — safe, because what
// it allows is exactly the family the kernel will use. Junk above a forbidden family is refused.
#[case::socket_inet_high_junk(x("socket", &[0x1_0000_0000 | AF_INET, 1]), ALLOW)]
#[case::socket_netlink_route_family_high_junk(x("socket", &[0x1_0000_0000 | AF_NETLINK, 3, NETLINK_ROUTE]), ALLOW)]
#[case::socket_netlink_audit_family_high_junk(x("socket", &[0x1_0000_0000 | AF_NETLINK, 3, NETLINK_AUDIT]), EPERM)]
#[case::socket_vsock_high_ones(x("socket", &[HIGH | AF_VSOCK, 1]), EPERM)]
#[case::socketpair(x("socketpair", &[AF_UNIX, 1, 0, 0]), ALLOW)]
#[case::connect(x("connect", &[3]), ALLOW)]
#[case::personality_linux(x("personality", &[0]), ALLOW)]
#[case::personality_query(x("personality", &[0xffff_ffff]), ALLOW)]
#[case::personality_linux32(x("personality", &[8]), ALLOW)]
#[case::personality_uname26(x("personality", &[0x2_0000]), ALLOW)]
#[case::personality_no_randomize(x("personality", &[ADDR_NO_RANDOMIZE]), EPERM)]
#[case::personality_read_implies_exec(x("personality", &[READ_IMPLIES_EXEC]), EPERM)]
// personality(2) takes an unsigned int: junk above is dropped by the kernel, and by the filter.
#[case::personality_high_junk(x("personality", &[HIGH]), ALLOW)]
#[case::personality_all_ones(x("personality", &[ONES]), ALLOW)]
#[case::io_uring_setup(x("io_uring_setup", &[]), EPERM)]
#[case::io_uring_enter(x("io_uring_enter", &[]), EPERM)]
#[case::io_uring_register(x("io_uring_register", &[]), EPERM)]
#[case::bpf(x("bpf", &[]), EPERM)]
#[case::userfaultfd(x("userfaultfd", &[]), EPERM)]
#[case::perf_event_open(x("perf_event_open", &[]), EPERM)]
#[case::keyctl(x("keyctl", &[]), EPERM)]
#[case::add_key(x("add_key", &[]), EPERM)]
#[case::request_key(x("request_key", &[]), EPERM)]
#[case::kexec_load(x("kexec_load", &[]), EPERM)]
#[case::kexec_file_load(x("kexec_file_load", &[]), EPERM)]
#[case::init_module(x("init_module", &[]), EPERM)]
#[case::finit_module(x("finit_module", &[]), EPERM)]
#[case::reboot(x("reboot", &[]), EPERM)]
#[case::swapon(x("swapon", &[]), EPERM)]
#[case::acct(x("acct", &[]), EPERM)]
#[case::settimeofday(x("settimeofday", &[]), EPERM)]
#[case::clock_settime(x("clock_settime", &[]), EPERM)]
#[case::adjtimex(x("adjtimex", &[]), EPERM)]
#[case::fsopen(x("fsopen", &[]), EPERM)]
#[case::fsmount(x("fsmount", &[]), EPERM)]
#[case::open_tree(x("open_tree", &[]), EPERM)]
#[case::move_mount(x("move_mount", &[]), EPERM)]
#[case::mount_setattr(x("mount_setattr", &[]), EPERM)]
#[case::mount(x("mount", &[]), EPERM)]
#[case::umount2(x("umount2", &[]), EPERM)]
#[case::pivot_root(x("pivot_root", &[]), EPERM)]
#[case::chroot(x("chroot", &[]), EPERM)]
#[case::unshare(x("unshare", &[CLONE_NEWUSER]), EPERM)]
#[case::unshare_0(x("unshare", &[0]), EPERM)]
#[case::setns(x("setns", &[]), EPERM)]
#[case::ptrace(x("ptrace", &[]), EPERM)]
#[case::process_vm_readv(x("process_vm_readv", &[]), EPERM)]
#[case::process_vm_writev(x("process_vm_writev", &[]), EPERM)]
#[case::pidfd_getfd(x("pidfd_getfd", &[]), EPERM)]
#[case::syslog(x("syslog", &[]), EPERM)]
#[case::ioperm(x("ioperm", &[]), EPERM)]
#[case::iopl(x("iopl", &[]), EPERM)]
#[case::modify_ldt(x("modify_ldt", &[]), EPERM)]
#[case::name_to_handle_at(x("name_to_handle_at", &[]), EPERM)]
#[case::open_by_handle_at(x("open_by_handle_at", &[]), EPERM)]
#[case::read(x("read", &[0, 0, 4096]), ALLOW)]
#[case::write(x("write", &[1, 0, 12]), ALLOW)]
#[case::execve(x("execve", &[]), ALLOW)]
#[case::exit_group(x("exit_group", &[0]), ALLOW)]
#[case::seccomp(x("seccomp", &[1]), ALLOW)]
#[case::landlock_restrict_self(x("landlock_restrict_self", &[]), ALLOW)]
// Unassigned numbers (x86_64 has a hole from 335 to 423) and future ones.
#[case::unassigned_335(nr(335, &[]), EPERM)]
#[case::unassigned_400(nr(400, &[]), EPERM)]
#[case::future_500(nr(500, &[]), EPERM)]
#[case::just_below_the_x32_bit(nr(0x3fff_ffff, &[]), EPERM)]
#[case::x32_read(x32("read"), KILL)]
#[case::x32_ioctl(x32("ioctl"), KILL)]
#[case::x32_execve_520(nr(0x4000_0000 | 520, &[]), KILL)]
#[case::minus_1(nr(-1, &[]), KILL)]
#[case::i386_read(i386(3), KILL)]
#[case::i386_execve(i386(11), KILL)]
#[case::i386_socketcall(i386(102), KILL)]
#[case::i386_ioctl(i386(54), KILL)]
#[case::aarch64_read(nr(63, &[]).with_arch(AUDIT_ARCH_AARCH64), KILL)]
fn default_preset(#[case] call: Data, #[case] want: Action) {
    expect(&compile_yaml("{}"), call, want);
}

/// Every call the presets name gets its documented answer (zero arguments).
#[rstest]
#[case::default("{}", true)]
#[case::strict("{preset: strict}", false)]
fn every_preset_list_entry(#[case] yaml: &str, #[case] sockets_and_ipc: bool) {
    let plan = compile_yaml(yaml);
    for name in presets::BASE.iter().flat_map(|g| g.syscalls) {
        // openat2 is in the allowlist, and host-privileges answers it ENOSYS.
        let want = if presets::MODE_UNREADABLE.iter().any(|(n, _)| n == name) {
            ENOSYS
        } else {
            ALLOW
        };
        expect(&plan, x(name, &[]), want);
    }
    let default_only = if sockets_and_ipc { ALLOW } else { EPERM };
    for name in presets::DEFAULT_ONLY.iter().flat_map(|g| g.syscalls) {
        expect(&plan, x(name, &[]), default_only);
    }
    for name in presets::DENIED.iter().flat_map(|g| g.syscalls) {
        expect(&plan, x(name, &[]), EPERM);
    }
}

// ── chosen calls: `strict`, `log`, `none` ────────────────────────────────────────────────────

#[rstest]
#[case::socket_unix(x("socket", &[AF_UNIX, 1]), EPERM)]
#[case::socket_inet(x("socket", &[AF_INET, 1]), EPERM)]
#[case::socket_inet6(x("socket", &[AF_INET6, 1]), EPERM)]
#[case::socket_netlink_route(x("socket", &[AF_NETLINK, 3, NETLINK_ROUTE]), EPERM)]
// A connected unix stream or seqpacket pair is the program's own (event loops, the JVM's NIO,
// pipes to children); a datagram pair is not: sendto with an address reaches named sockets.
#[case::socketpair_stream(x("socketpair", &[AF_UNIX, 1]), ALLOW)]
#[case::socketpair_seqpacket(x("socketpair", &[AF_UNIX, 5]), ALLOW)]
#[case::socketpair_stream_cloexec_nonblock(x("socketpair", &[AF_UNIX, 1 | SOCK_CLOEXEC | 0o4000]), ALLOW)]
#[case::socketpair_stream_high_junk(x("socketpair", &[HIGH | AF_UNIX, HIGH | 1]), ALLOW)]
#[case::socketpair_dgram(x("socketpair", &[AF_UNIX, 2]), EPERM)]
#[case::socketpair_dgram_cloexec(x("socketpair", &[AF_UNIX, 2 | SOCK_CLOEXEC]), EPERM)]
#[case::socketpair_raw(x("socketpair", &[AF_UNIX, 3]), EPERM)]
#[case::socketpair_inet(x("socketpair", &[AF_INET, 1]), EPERM)]
#[case::socketpair_tipc(x("socketpair", &[30, 5]), EPERM)]
#[case::socketpair_family_0(x("socketpair", &[0, 1]), EPERM)]
#[case::sendmsg(x("sendmsg", &[3]), ALLOW)]
#[case::recvmsg(x("recvmsg", &[3]), ALLOW)]
#[case::shutdown(x("shutdown", &[3, 1]), ALLOW)]
#[case::getsockopt(x("getsockopt", &[3]), ALLOW)]
#[case::connect(x("connect", &[3]), EPERM)]
#[case::bind(x("bind", &[3]), EPERM)]
#[case::listen(x("listen", &[3]), EPERM)]
#[case::accept4(x("accept4", &[3]), EPERM)]
#[case::shmget(x("shmget", &[]), EPERM)]
#[case::chown(x("chown", &[]), EPERM)]
#[case::io_setup(x("io_setup", &[]), EPERM)]
#[case::sched_setscheduler(x("sched_setscheduler", &[]), EPERM)]
#[case::tiocsti(x("ioctl", &[0, TIOCSTI]), EPERM)]
#[case::tiocsti_high_junk(x("ioctl", &[0, HIGH | TIOCSTI]), EPERM)]
#[case::tcgets(x("ioctl", &[0, TCGETS]), ALLOW)]
#[case::clone_thread(x("clone", &[THREAD_FLAGS]), ALLOW)]
#[case::clone_newuser(x("clone", &[CLONE_NEWUSER]), EPERM)]
#[case::clone3(x("clone3", &[]), ENOSYS)]
#[case::personality_no_randomize(x("personality", &[ADDR_NO_RANDOMIZE]), EPERM)]
#[case::personality_0(x("personality", &[0]), ALLOW)]
#[case::ptrace(x("ptrace", &[]), EPERM)]
#[case::io_uring_setup(x("io_uring_setup", &[]), EPERM)]
#[case::read(x("read", &[]), ALLOW)]
#[case::openat(x("openat", &[]), ALLOW)]
#[case::execve(x("execve", &[]), ALLOW)]
#[case::exit_group(x("exit_group", &[]), ALLOW)]
#[case::unassigned(nr(400, &[]), EPERM)]
#[case::x32_read(x32("read"), KILL)]
#[case::i386_read(i386(3), KILL)]
fn strict_preset(#[case] call: Data, #[case] want: Action) {
    let plan = compile_yaml("{preset: strict}");
    assert_eq!(plan.socket_families, Some(vec![]));
    expect(&plan, call, want);
}

#[rstest]
#[case::ptrace(x("ptrace", &[]), LOG)]
// host-privileges: io_uring's requests carry modes past the filter.
#[case::io_uring_setup(x("io_uring_setup", &[]), ENOSYS)]
#[case::mount(x("mount", &[]), LOG)]
#[case::unassigned(nr(400, &[]), LOG)]
#[case::tiocsti(x("ioctl", &[0, TIOCSTI]), LOG)]
#[case::tiocsti_high_junk(x("ioctl", &[0, HIGH | TIOCSTI]), LOG)]
#[case::tcgets(x("ioctl", &[0, TCGETS]), ALLOW)]
#[case::clone_newuser(x("clone", &[CLONE_NEWUSER]), LOG)]
#[case::clone_thread(x("clone", &[THREAD_FLAGS]), ALLOW)]
#[case::socket_netlink_route(x("socket", &[AF_NETLINK, 3, NETLINK_ROUTE]), ALLOW)]
#[case::socket_netlink_audit(x("socket", &[AF_NETLINK, 3, NETLINK_AUDIT]), LOG)]
#[case::socket_unix(x("socket", &[AF_UNIX]), ALLOW)]
#[case::personality_no_randomize(x("personality", &[ADDR_NO_RANDOMIZE]), LOG)]
// The documented exception: clone3 keeps failing so that libc falls back to clone.
#[case::clone3(x("clone3", &[]), ENOSYS)]
#[case::read(x("read", &[]), ALLOW)]
#[case::execve(x("execve", &[]), ALLOW)]
#[case::x32_read(x32("read"), KILL)]
#[case::i386_read(i386(3), KILL)]
fn log_preset(#[case] call: Data, #[case] want: Action) {
    let plan = compile_yaml("{preset: log}");
    assert_eq!(plan.default_action, LOG);
    expect(&plan, call, want);
}

#[rstest]
#[case::ptrace(x("ptrace", &[]), ALLOW)]
#[case::io_uring_setup(x("io_uring_setup", &[]), ALLOW)]
#[case::tiocsti(x("ioctl", &[0, TIOCSTI]), ALLOW)]
#[case::clone_newuser(x("clone", &[CLONE_NEWUSER]), ALLOW)]
#[case::clone3(x("clone3", &[]), ALLOW)]
#[case::socket_netlink(x("socket", &[AF_NETLINK]), ALLOW)]
#[case::unassigned(nr(400, &[]), ALLOW)]
#[case::chmod_setuid(x("chmod", &[0, 0o4755]), ALLOW)]
#[case::openat2(x("openat2", &[]), ALLOW)]
// No filter, so no architecture guard either.
#[case::x32_read(x32("read"), ALLOW)]
#[case::i386_read(i386(3), ALLOW)]
#[case::minus_1(nr(-1, &[]), ALLOW)]
fn none_preset_with_host_privileges_allowed(#[case] call: Data, #[case] want: Action) {
    let plan = compile_yaml_with("{preset: none}", HostPrivileges::Allow);
    assert!(plan.filters.is_empty());
    expect(&plan, call, want);
}

/// `preset: none` still carries the privilege rules, and with them the architecture guard.
#[rstest]
#[case::ptrace(x("ptrace", &[]), ALLOW)]
#[case::io_uring_setup(x("io_uring_setup", &[]), ENOSYS)]
#[case::clone3(x("clone3", &[]), ALLOW)]
#[case::unassigned(nr(400, &[]), ALLOW)]
#[case::chmod(x("chmod", &[0, 0o755]), ALLOW)]
#[case::chmod_setuid(x("chmod", &[0, 0o4755]), EPERM)]
#[case::openat2(x("openat2", &[]), ENOSYS)]
#[case::x32_read(x32("read"), KILL)]
#[case::i386_read(i386(3), KILL)]
#[case::i386_chmod_setuid(i386_with(I386_CHMOD, &[0, 0o4755]), KILL)]
fn none_preset(#[case] call: Data, #[case] want: Action) {
    let plan = compile_yaml("{preset: none}");
    assert_eq!(plan.filters.len(), 1);
    expect(&plan, call, want);
}
