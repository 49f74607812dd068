//! The compiled programs, pinned: a fingerprint per filter for every shipped policy and a table
//! of seccomp sections, so that a change to the code generator that changes a program is seen.

use std::path::Path;

use kekkai::caller::Caller;
use kekkai::plan;
use kekkai::policy::{self, PolicySource};
use seccompiler::sock_filter;

use super::sweep::long_rule;
use super::*;

/// Seccomp sections whose compiled programs are pinned, with `host-privileges: allow`?
const PINNED: &[(&str, bool)] = &[
    ("{}", false),
    ("{}", true),
    ("{preset: strict}", false),
    ("{preset: strict}", true),
    ("{preset: log}", false),
    ("{preset: log}", true),
    ("{preset: none}", false),
    ("{preset: none}", true),
    (
        "{preset: none, deny: [ptrace, {syscall: kexec_load, action: kill}, {syscall: io_uring_setup, action: errno(ENOSYS)}, {syscall: ioctl, args: [{arg: 1, width: 32, eq: TIOCSTI}], action: kill-thread}]}",
        false,
    ),
    ("{default-action: kill}", false),
    ("{default-action: trap}", false),
    (
        "{default-action: errno(ENOSYS), deny: [{syscall: getpid, action: errno(EPERM)}]}",
        false,
    ),
    ("{allow: [ptrace, clone3, mount]}", false),
    (
        "{allow: [{syscall: personality, args: [{arg: 0, width: 32, eq: 0x0040000}]}, {syscall: ioctl, args: [{arg: 1, width: 32, eq: TIOCSTI}]}]}",
        false,
    ),
    ("{socket-families: [unix]}", false),
    ("{socket-families: []}", false),
    ("{preset: strict, socket-families: [unix, inet]}", false),
    ("{socket-families: [unix, netlink, netlink-route]}", false),
    (
        "{deny: [write, {syscall: getpid, action: kill}, {syscall: getppid, action: errno(EACCES)}, {syscall: kill, args: [{arg: 1, width: 32, eq: 9}], action: trap}, {syscall: clone3, action: kill}]}",
        false,
    ),
    (
        "{deny: [{syscall: mmap, args: [{arg: 2, width: 32, gt: 7}], action: errno(EACCES)}, {syscall: mprotect, args: [{arg: 2, width: 32, ge: 4}, {arg: 1, width: 32, lt: 4096}], action: kill}, {syscall: madvise, args: [{arg: 2, width: 32, le: 3}]}, {syscall: fcntl, args: [{arg: 1, width: 32, ne: 4}], action: trap}, {syscall: kill, args: [{arg: 1, width: 32, mask: 0xf0, eq: 0x10}], action: errno(ESRCH)}]}",
        false,
    ),
    (
        "{allow: [{syscall: ptrace, args: [{arg: 0, width: 64, lt: 0x100000005}, {arg: 1, width: 64, ge: 0x200000000}]}, {syscall: ptrace, args: [{arg: 2, width: 64, gt: 7}, {arg: 3, width: 64, le: 0xffffffff}]}, {syscall: kcmp, args: [{arg: 4, width: 64, ne: 0x100000001}]}, {syscall: kcmp, args: [{arg: 4, width: 64, eq: 0xffffffff00000000}]}], deny: [{syscall: clone, args: [{arg: 0, width: 64, mask: CLONE_NEWUSER, eq: CLONE_NEWUSER}], action: kill}, {syscall: brk, args: [{arg: 0, width: 64, mask: 0xff00000000000fff, eq: 0x0100000000000001}], action: errno(ENOMEM)}]}",
        false,
    ),
    (
        "{preset: default, default-action: errno(EPERM), allow: [ptrace, {syscall: personality, args: [{arg: 0, width: 32, eq: 0x0040000}]}], deny: [mknod, {syscall: clone, args: [{arg: 0, width: 64, mask: CLONE_NEWUSER, eq: CLONE_NEWUSER}], action: kill}, {syscall: socket, args: [{arg: 0, width: 32, eq: AF_NETLINK}], action: errno(EAFNOSUPPORT)}], socket-families: [unix, inet, inet6, netlink]}",
        false,
    ),
];

/// FNV-1a (64 bits) over the instructions as the kernel reads them: code, jt, jf, k.
fn fingerprint(program: &[sock_filter]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for ins in program {
        let mut bytes = Vec::with_capacity(8);
        bytes.extend(ins.code.to_le_bytes());
        bytes.extend([ins.jt, ins.jf]);
        bytes.extend(ins.k.to_le_bytes());
        for b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// One line per filter: what it is for, its length and its fingerprint.
fn pinned_lines(label: &str, plan: &SeccompPlan) -> String {
    let mut out = String::new();
    if plan.filters.is_empty() {
        out.push_str(&format!("{label}\t(no filter)\n"));
    }
    for f in &plan.filters {
        out.push_str(&format!(
            "{label}\t{}\t{}\t{:016x}\n",
            f.name,
            f.program.len(),
            fingerprint(&f.program)
        ));
    }
    out
}

/// The programs compiled for every shipped policy and for a table of seccomp sections are
/// exactly those in `tests/seccomp_bpf/programs.txt`, instruction for instruction: a change to
/// the code generator that changes a program must be deliberate. After an intended change,
/// regenerate and review:
///
/// ```sh
/// KEKKAI_UPDATE_SNAPSHOTS=1 cargo test --test seccomp_bpf compiled_programs_are_pinned
/// git diff tests/seccomp_bpf/programs.txt
/// ```
#[test]
fn compiled_programs_are_pinned() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut actual = String::new();
    let caller = Caller {
        pwd: root.to_path_buf(),
        ..Caller::for_tests()
    };
    let mut entries: Vec<_> = std::fs::read_dir(root.join("policies"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    entries.sort();
    for path in &entries {
        let label = path.file_name().unwrap().to_string_lossy().into_owned();
        let loaded = policy::load(&PolicySource::File(path.clone()), &caller)
            .unwrap_or_else(|e| panic!("{label}:\n{e}"));
        let plan = plan::compile(&loaded, &caller).unwrap_or_else(|e| panic!("{label}:\n{e}"));
        actual.push_str(&pinned_lines(&format!("policies/{label}"), &plan.seccomp));
    }
    for (yaml, allow) in PINNED {
        let host = if *allow {
            HostPrivileges::Allow
        } else {
            HostPrivileges::Deny
        };
        let label = if *allow {
            format!("{yaml} (host-privileges: allow)")
        } else {
            (*yaml).to_owned()
        };
        actual.push_str(&pinned_lines(&label, &compile_yaml_with(yaml, host)));
    }
    actual.push_str(&pinned_lines("long rule", &compile_yaml(&long_rule())));

    let path = root.join("tests/seccomp_bpf/programs.txt");
    if std::env::var_os("KEKKAI_UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with KEKKAI_UPDATE_SNAPSHOTS=1 cargo test --test seccomp_bpf",
            path.display()
        )
    });
    let differ: Vec<String> = actual
        .lines()
        .zip(expected.lines())
        .filter(|(a, e)| a != e)
        .map(|(a, e)| format!("  pinned: {e}\n  now:    {a}"))
        .collect();
    assert!(
        differ.is_empty() && actual.lines().count() == expected.lines().count(),
        "the compiled programs differ from {}:\n{}\n(if intended: KEKKAI_UPDATE_SNAPSHOTS=1 cargo test --test seccomp_bpf compiled_programs_are_pinned)",
        path.display(),
        differ.join("\n")
    );
}
