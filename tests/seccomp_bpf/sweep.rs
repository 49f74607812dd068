//! The sweep: every x86_64 number with chosen and plan-derived arguments, the other ABIs, each
//! verdict of the stack compared with the model; every policy (a table of sections, every
//! shipped policy) swept.

use rstest::rstest;

use std::collections::BTreeSet;
use std::path::Path;

use kekkai::caller::Caller;
use kekkai::plan;
use kekkai::policy::{self, PolicySource};

use super::*;

/// Argument vectors for every syscall number: zeros, all ones, mixed halves, and the calls the
/// issue names (TIOCSTI with and without junk above, clone flags, socket families,
/// personality values).
fn base_vectors() -> Vec<[u64; 6]> {
    let mut v = vec![
        ZERO,
        [ONES; 6],
        [1, 2, 3, 4, 5, 6],
        [0xffff_ffff; 6],
        [0x1_0000_0000; 6],
        [HIGH; 6],
        [0x8000_0000_0000_0000; 6],
    ];
    for a0 in [
        0x1000_0000,
        0x0002_0000,
        0x2000_0000,
        0x4000_0000,
        0x7E02_0000,
        0x003D_0F00,
        0x1_0000_0000,
        1,
        2,
        10,
        16,
        17,
        40,
        0x1_0000_0002,
        HIGH | 16,
        8,
        0x0004_0000,
        0x2_0008,
    ] {
        v.push(pad(&[a0]));
    }
    for a1 in [0x5412, 0x1_0000_5412, HIGH | 0x5412, 0x541C, 0x5401, 0x5423] {
        v.push(pad(&[3, a1]));
    }
    v
}

/// Values around a condition's boundary, including junk in the upper half.
fn boundary_values(c: &Cond) -> Vec<u64> {
    let v = c.value;
    let mut out = vec![
        v,
        v.wrapping_add(1),
        v.wrapping_sub(1),
        v | HIGH,
        v ^ 0x1_0000_0000,
        (v.wrapping_add(1)) | HIGH,
        v.wrapping_sub(1) & 0xffff_ffff,
        !v,
        v << 32,
        0,
        ONES,
    ];
    if let Op::MaskedEq(m) = c.op {
        out.extend([v & m, (v & m) | !m, m, !m, m | v]);
        for bit in 0..64 {
            if m & (1 << bit) != 0 {
                out.push((v & m) ^ (1 << bit));
            }
        }
    }
    out
}

/// A value that makes the condition hold (when one exists), for all-conditions-hold vectors.
fn satisfying(c: &Cond) -> u64 {
    let v = c.value;
    match c.op {
        Op::Eq | Op::Le | Op::Ge => v,
        Op::Ne => v ^ 1,
        Op::Lt => v.saturating_sub(1),
        Op::Gt => v.saturating_add(1),
        Op::MaskedEq(m) => v & m,
    }
}

/// Vectors derived from the plan's own conditions: each boundary value alone (with the other
/// arguments zero and all ones), and each condition set with all of it holding, and with one
/// condition broken at a time.
fn condition_vectors(plan: &SeccompPlan) -> Vec<[u64; 6]> {
    let mut out = Vec::new();
    let matchers = plan
        .allowed
        .values()
        .chain(plan.denied.values().flat_map(|r| r.values()));
    for m in matchers {
        let Match::When(sets) = m else { continue };
        for set in sets {
            for c in set {
                for value in boundary_values(c) {
                    for fill in [0, ONES] {
                        let mut args = [fill; 6];
                        args[usize::from(c.arg)] = value;
                        out.push(args);
                    }
                }
            }
            for fill in [0, 0x1_0000_0000] {
                let mut all = [fill; 6];
                for c in set {
                    all[usize::from(c.arg)] = satisfying(c);
                }
                out.push(all);
                for c in set {
                    let mut one_broken = all;
                    one_broken[usize::from(c.arg)] = !satisfying(c);
                    out.push(one_broken);
                    let mut high_junk = all;
                    high_junk[usize::from(c.arg)] ^= HIGH;
                    out.push(high_junk);
                }
            }
        }
    }
    out
}

/// Runs the whole sweep for one plan and returns how many verdicts were compared.
///
/// Every x86_64 number 0..=500 with the base vectors; the syscalls that have argument
/// conditions (and their neighbours) also with every condition-derived vector; every number
/// with the x32 bit; numbers at and above it; every i386 number 0..=460; some aarch64 ones.
fn sweep(label: &str, plan: &SeccompPlan) -> usize {
    check_sizes(label, plan);
    let base = base_vectors();
    let derived: BTreeSet<[u64; 6]> = condition_vectors(plan).into_iter().collect();
    let conditioned: BTreeSet<i32> = plan
        .allowed
        .iter()
        .chain(plan.denied.values().flatten())
        .filter(|(_, m)| matches!(m, Match::When(_)))
        .flat_map(|(n, _)| {
            let n = i32::try_from(*n).unwrap();
            [n - 1, n, n + 1]
        })
        .chain([0, 500])
        .collect();
    let guarded = !plan.filters.is_empty();
    let stack = Stack::new(&plan.filters);
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut compare = |d: Data| {
        let got = stack.run(&d);
        let want = model(plan, &d);
        if got != encode(want) {
            failures.push(format!("{d}: BPF {} ({got:#x}), model {want}", decode(got)));
        }
        checked += 1;
    };
    for n in 0..=500 {
        for args in &base {
            compare(nr(n, args));
        }
        if conditioned.contains(&n) {
            for args in &derived {
                compare(nr(n, args));
            }
        }
    }
    let beyond = [
        501,
        511,
        547,
        1000,
        0x3fff_ffff,
        0x7fff_ffff,
        -1,
        -2,
        i32::MIN,
        int_bits(0x4000_0000 | 0x8000_0000),
    ];
    for n in beyond {
        compare(nr(n, &ZERO));
    }
    // Everything through x32 or i386 kills, whatever the arguments.
    let mut foreign = Vec::new();
    for n in 0..=600u32 {
        foreign.push(nr(int_bits(n | X32_SYSCALL_BIT), &ZERO));
        foreign.push(nr(int_bits(n | X32_SYSCALL_BIT), &[ONES; 6]));
    }
    for n in 0..=460 {
        foreign.push(nr(n, &ZERO).with_arch(AUDIT_ARCH_I386));
        foreign.push(nr(n, &[0x5412; 6]).with_arch(AUDIT_ARCH_I386));
    }
    for n in [0, 63, 93, 220, 435] {
        foreign.push(nr(n, &ZERO).with_arch(AUDIT_ARCH_AARCH64));
    }
    let want = if guarded {
        Action::KillProcess
    } else {
        Action::Allow
    };
    let mut foreign_failures = Vec::new();
    for d in foreign {
        let got = decode(stack.run(&d));
        if got != want {
            foreign_failures.push(format!("{d}: BPF {got}, the architecture rule {want}"));
        }
        compare(d);
    }
    failures.extend(foreign_failures);
    assert!(
        failures.is_empty(),
        "{label}: {} of {checked} verdicts differ from the model or the architecture rule; first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    checked
}

#[test]
fn the_model_reads_conditions_as_documented() {
    let c = |width32, op, value| Cond {
        arg: 1,
        width32,
        op,
        value,
    };
    let a = |v| pad(&[0, v]);
    assert!(holds(&c(true, Op::Eq, 0x5412), &a(0x1_0000_5412)));
    assert!(!holds(&c(false, Op::Eq, 0x5412), &a(0x1_0000_5412)));
    assert!(holds(&c(true, Op::Lt, 5), &a(0x1_0000_0004)));
    assert!(!holds(&c(false, Op::Lt, 5), &a(0x1_0000_0004)));
    assert!(holds(&c(false, Op::Ge, 0x1_0000_0000), &a(0x1_0000_0000)));
    assert!(holds(
        &c(false, Op::MaskedEq(0x7E02_0000), 0),
        &a(0x0001_1200)
    ));
    assert!(!holds(
        &c(false, Op::MaskedEq(0x7E02_0000), 0),
        &a(0x1000_0000)
    ));
}

/// The sweep is not vacuous: one changed constant in a compiled program is found.
#[rstest]
#[case::tiocsti_compare(0, 0x5412, 0x5413)]
#[case::x32_guard(0, X32_SYSCALL_BIT, X32_SYSCALL_BIT + 1)]
#[case::clone_mask(0, 0x7E02_0000, 0x7E00_0000)]
#[case::socket_family(0, 10, 11)]
#[case::setuid_bit(0, 0o4000, 0o4001)]
#[should_panic(expected = "differ from the model or the architecture rule")]
fn the_sweep_finds_a_changed_instruction(
    #[case] filter: usize,
    #[case] from: u32,
    #[case] to: u32,
) {
    let mut plan = compile_yaml("{}");
    let ins = plan.filters[filter]
        .program
        .iter_mut()
        .find(|i| i.k == from)
        .unwrap();
    ins.k = to;
    sweep("mutated", &plan);
}

// ── every policy against its model ───────────────────────────────────────────────────────────

/// A rule with 60 conditions, long enough that seccompiler needs its helper jumps (a classic
/// BPF conditional jump reaches at most 255 instructions).
pub(super) fn long_rule() -> String {
    let conds: Vec<String> = (0..60)
        .map(|i| {
            format!(
                "{{arg: {}, width: 64, ne: {}}}",
                i % 6,
                0x1_0000_0000_u64 + i
            )
        })
        .collect();
    format!(
        "{{allow: [{{syscall: ptrace, args: [{c}]}}, {{syscall: ptrace, args: [{{arg: 0, width: 32, eq: 16}}]}}], deny: [{{syscall: read, args: [{c}], action: trap}}]}}",
        c = conds.join(", ")
    )
}

#[rstest]
#[case::default("{}")]
#[case::strict("{preset: strict}")]
#[case::log("{preset: log}")]
#[case::none("{preset: none}")]
#[case::none_as_denylist(
    "{preset: none, deny: [ptrace, {syscall: kexec_load, action: kill}, {syscall: io_uring_setup, action: errno(ENOSYS)}, {syscall: ioctl, args: [{arg: 1, width: 32, eq: TIOCSTI}], action: kill-thread}]}"
)]
#[case::default_kill("{default-action: kill}")]
#[case::default_kill_thread("{default-action: kill-thread}")]
#[case::default_trap("{default-action: trap}")]
#[case::default_eacces("{default-action: errno(EACCES)}")]
#[case::default_enosys(
    "{default-action: errno(ENOSYS), deny: [{syscall: getpid, action: errno(EPERM)}]}"
)]
#[case::allow_denied_calls("{allow: [ptrace, clone3, mount]}")]
#[case::allow_ioctl_outright("{allow: [ioctl, socket]}")]
#[case::allow_with_args(
    "{allow: [{syscall: personality, args: [{arg: 0, width: 32, eq: 0x0040000}]}, {syscall: ioctl, args: [{arg: 1, width: 32, eq: TIOCSTI}]}]}"
)]
#[case::socket_unix_only("{socket-families: [unix]}")]
#[case::no_sockets("{socket-families: []}")]
#[case::strict_with_sockets("{preset: strict, socket-families: [unix, inet]}")]
#[case::route_only("{socket-families: [netlink-route]}")]
#[case::netlink_and_route("{socket-families: [unix, netlink, netlink-route]}")]
#[case::log_with_a_kill("{preset: log, deny: [{syscall: ptrace, action: kill}]}")]
#[case::deny_ioctl_kill(
    "{deny: [{syscall: ioctl, args: [{arg: 1, width: 32, eq: TIOCSETD}], action: kill}]}"
)]
#[case::deny_actions_stack(
    "{deny: [write, {syscall: getpid, action: kill}, {syscall: getppid, action: errno(EACCES)}, {syscall: kill, args: [{arg: 1, width: 32, eq: 9}], action: trap}, {syscall: clone3, action: kill}]}"
)]
#[case::thirty_two_bit_comparisons(
    "{deny: [{syscall: mmap, args: [{arg: 2, width: 32, gt: 7}], action: errno(EACCES)}, {syscall: mprotect, args: [{arg: 2, width: 32, ge: 4}, {arg: 1, width: 32, lt: 4096}], action: kill}, {syscall: madvise, args: [{arg: 2, width: 32, le: 3}]}, {syscall: fcntl, args: [{arg: 1, width: 32, ne: 4}], action: trap}, {syscall: kill, args: [{arg: 1, width: 32, mask: 0xf0, eq: 0x10}], action: errno(ESRCH)}]}"
)]
#[case::sixty_four_bit_comparisons(
    "{allow: [{syscall: ptrace, args: [{arg: 0, width: 64, lt: 0x100000005}, {arg: 1, width: 64, ge: 0x200000000}]}, {syscall: ptrace, args: [{arg: 2, width: 64, gt: 7}, {arg: 3, width: 64, le: 0xffffffff}]}, {syscall: kcmp, args: [{arg: 4, width: 64, ne: 0x100000001}]}, {syscall: kcmp, args: [{arg: 4, width: 64, eq: 0xffffffff00000000}]}], deny: [{syscall: clone, args: [{arg: 0, width: 64, mask: CLONE_NEWUSER, eq: CLONE_NEWUSER}], action: kill}, {syscall: brk, args: [{arg: 0, width: 64, mask: 0xff00000000000fff, eq: 0x0100000000000001}], action: errno(ENOMEM)}]}"
)]
#[case::two_errnos_on_one_call(
    "{deny: [{syscall: socket, args: [{arg: 0, width: 32, eq: AF_NETLINK}], action: errno(EAFNOSUPPORT)}, {syscall: socket, args: [{arg: 1, width: 32, eq: 3}], action: errno(EACCES)}]}"
)]
#[case::policy_reference_example(
    "{preset: default, default-action: errno(EPERM), allow: [ptrace, {syscall: personality, args: [{arg: 0, width: 32, eq: 0x0040000}]}], deny: [mknod, {syscall: clone, args: [{arg: 0, width: 64, mask: CLONE_NEWUSER, eq: CLONE_NEWUSER}], action: kill}, {syscall: socket, args: [{arg: 0, width: 32, eq: AF_NETLINK}], action: errno(EAFNOSUPPORT)}], socket-families: [unix, inet, inet6, netlink]}"
)]
#[case::design_note_example(
    "{preset: default, default-action: errno(EPERM), deny: [{syscall: ioctl, args: [{arg: 1, width: 32, eq: TIOCSTI}], action: errno(EPERM), why: CVE-2017-5226}]}"
)]
fn every_policy_matches_its_model(#[case] yaml: &str) {
    let plan = compile_yaml(yaml);
    let n = sweep(yaml, &plan);
    println!("{n} verdicts: {yaml}");
}

/// Without the privilege rules (`host-privileges: allow`) the same presets still match.
#[rstest]
#[case::default("{}")]
#[case::strict("{preset: strict}")]
#[case::log("{preset: log}")]
#[case::none_as_denylist("{preset: none, deny: [ptrace, {syscall: chmod, action: kill}]}")]
fn every_policy_matches_its_model_with_host_privileges_allowed(#[case] yaml: &str) {
    let plan = compile_yaml_with(yaml, HostPrivileges::Allow);
    let n = sweep(yaml, &plan);
    println!("{n} verdicts: {yaml} (host-privileges: allow)");
}

#[test]
fn a_long_rule_uses_helper_jumps_and_still_matches_the_model() {
    let yaml = long_rule();
    let plan = compile_yaml(&yaml);
    assert!(plan.filters.iter().any(|f| f.program.len() > 300));
    let n = sweep("long rule", &plan);
    // Each of the 60 conditions broken alone must flip ptrace and read.
    for i in 0..60u64 {
        let mut args = [0u64; 6];
        args[usize::try_from(i % 6).unwrap()] = 0x1_0000_0000 + i;
        expect(&plan, x("ptrace", &args), Action::Errno(1));
        expect(&plan, x("read", &args), Action::Allow);
    }
    expect(&plan, x("ptrace", &[16]), Action::Allow);
    expect(&plan, x("ptrace", &[5]), Action::Allow);
    expect(&plan, x("read", &[5]), Action::Trap);
    println!("{n} verdicts: long rule");
}

#[test]
fn every_shipped_policy_matches_its_model() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
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
    let check = |path: &Path| {
        let label = path.display().to_string();
        let loaded = policy::load(&PolicySource::File(path.to_path_buf()), &caller)
            .unwrap_or_else(|e| panic!("{label}:\n{e}"));
        let plan = plan::compile(&loaded, &caller).unwrap_or_else(|e| panic!("{label}:\n{e}"));
        let s = &plan.seccomp;
        assert!(!s.filters.is_empty(), "{label}: no seccomp filter");
        let n = sweep(&label, s);
        // The headline calls, whatever the preset.
        expect(s, x("ioctl", &[0, TIOCSTI]), EPERM);
        expect(s, x("ioctl", &[0, HIGH | TIOCSTI]), EPERM);
        expect(s, x("clone", &[CLONE_NEWUSER]), EPERM);
        expect(s, x("clone3", &[]), ENOSYS);
        expect(s, x("execve", &[]), ALLOW);
        expect(s, x32("read"), KILL);
        expect(s, i386(3), KILL);
        // host-privileges: deny, in every shipped policy.
        expect(s, x("fchmodat", &[AT_FDCWD, 0, 0o4755]), EPERM);
        expect(
            s,
            x("openat", &[AT_FDCWD, 0, O_CREAT | O_WRONLY, 0o2755]),
            EPERM,
        );
        expect(
            s,
            x("mknodat", &[AT_FDCWD, 0, S_IFCHR | 0o600, 0x103]),
            EPERM,
        );
        expect(s, x("openat2", &[AT_FDCWD, 0, 0, 24]), ENOSYS);
        expect(s, i386_with(I386_CHMOD, &[0, 0o4755]), KILL);
        println!(
            "{n} verdicts: {label} ({:?}, {} filters, {} instructions)",
            s.preset,
            s.filters.len(),
            s.instructions()
        );
    };
    std::thread::scope(|scope| {
        for path in &entries {
            scope.spawn(|| check(path));
        }
    });
    assert!(entries.len() >= 4, "{entries:?}");
}
